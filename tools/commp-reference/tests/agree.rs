//! `datacloud-pdp` against `filecoin-proofs` on random payloads of many sizes: the fr32 and
//! piece-size boundaries (127/128/254 bytes), tiny and non-power-of-two payloads, a few MiB.
//! CommP, padded size, both PieceCIDs, and the streamed commitment all agree.

use datacloud_commp_reference::{reference_commp, unpadded_piece_size};
use datacloud_pdp::{commp, commp_from_reader};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill(&mut data[..]);
    data
}

fn check(data: &[u8]) {
    let len = data.len();
    let reference = reference_commp(data);
    let ours = commp(data).unwrap();
    assert_eq!(ours.root(), reference.root, "CommP of {len} bytes");
    assert_eq!(
        ours.size().padded_size(),
        reference.padded,
        "padded size of {len} bytes"
    );
    assert_eq!(
        ours.size().unpadded_size(),
        reference.unpadded,
        "unpadded size of {len} bytes"
    );
    assert_eq!(
        ours.to_piece_cid_v1(),
        reference.piece_cid_v1(),
        "v1 PieceCID of {len} bytes"
    );
    assert_eq!(
        ours.to_piece_cid_v2(),
        reference.piece_cid_v2(len as u64),
        "v2 PieceCID of {len} bytes"
    );
    assert_eq!(
        commp_from_reader(data).unwrap(),
        ours,
        "streamed CommP of {len} bytes"
    );
}

#[test]
fn boundaries_of_fr32_and_piece_sizes() {
    let sizes = [
        0, 1, 31, 32, 64, 65, 100, 126, 127, 128, 129, 200, 253, 254, 255, 256, 381, 508, 509,
        1016, 1017, 2032, 4064, 4065, 8128, 8129,
    ];
    for (i, len) in sizes.into_iter().enumerate() {
        check(&random(len, i as u64));
    }
}

#[test]
fn random_sizes_up_to_a_few_mib() {
    let mut rng = StdRng::seed_from_u64(0x00c0_33e1);
    for i in 0..24 {
        // Log-uniform from 65 bytes to 4 MiB.
        let len = (65.0 * (f64::from(1u32 << 16)).powf(rng.random::<f64>())) as usize;
        check(&random(len, 1000 + i));
    }
    // Full pieces (no zero fill) and one byte past them.
    for k in [10u32, 17, 22] {
        let unpadded = unpadded_piece_size(1 << k) as usize;
        check(&random(unpadded, u64::from(k)));
        check(&random(unpadded + 1, u64::from(k) + 100));
    }
}

#[test]
fn all_zero_and_all_ones_payloads() {
    for len in [127usize, 1 << 16, 3 << 20] {
        check(&vec![0u8; len]);
        check(&vec![0xffu8; len]);
    }
}
