//! CommP throughput of `datacloud-pdp` and of `filecoin-proofs` on the same random payload in the
//! same run, and the time to answer one 5-challenge proof on the largest piece from its file.
//!
//! `scripts/commp-reference bench [MIB ...]` (release build; 256 and 1024 MiB by default).
//! Both run on every core the machine has (ours with rayon; the reference is single-threaded by
//! design of its streaming hasher), so note the machine's load with the figures.

use std::io::Write as _;
use std::time::Instant;

use datacloud_commp_reference::reference_commp;
use datacloud_pdp::{PieceProver, commp};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are MiB counts"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![256, 1024]
    } else {
        sizes
    };
    println!(
        "| payload MiB | datacloud-pdp MiB/s | filecoin-proofs MiB/s | ratio | 5-challenge proof ms |"
    );
    println!("|---|---|---|---|---|");
    for mib in sizes {
        let mut data = vec![0u8; mib << 20];
        StdRng::seed_from_u64(0x00da_7ac1).fill(&mut data[..]);
        let started = Instant::now();
        let ours = commp(&data).expect("the payload fits a piece");
        let ours_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let reference = reference_commp(&data);
        let reference_s = started.elapsed().as_secs_f64();
        assert_eq!(ours.root(), reference.root, "the two CommPs differ");
        // The prover answers from the payload file, with its cached upper layers.
        let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
        file.write_all(&data).expect("write the payload");
        file.flush().expect("flush the payload");
        drop(data);
        let mut prover = PieceProver::open(file.path()).expect("open the piece");
        let leaves = prover.commitment().size().leaf_count();
        let mut rng = StdRng::seed_from_u64(5);
        let started = Instant::now();
        for _ in 0..5 {
            let proof = prover
                .proof(rng.random_range(0..leaves))
                .expect("a proof for a leaf of the piece");
            assert!(proof.verify(&ours.root()));
        }
        let proof_ms = started.elapsed().as_secs_f64() * 1000.0;
        let rate = |s: f64| mib as f64 / s;
        println!(
            "| {mib} | {:.0} | {:.0} | {:.2}x | {proof_ms:.1} |",
            rate(ours_s),
            rate(reference_s),
            reference_s / ours_s
        );
    }
}
