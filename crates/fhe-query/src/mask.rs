//! The mask of a seeded LWE ciphertext, drawn in bulk from its seed.
//!
//! Encrypting one 2-bit block under the default parameters draws a 2 048-element mask: 16 KiB of
//! AES-CTR output. TFHE-rs' seeded encryption reads it through its generic byte generator, one
//! byte and one call at a time (`RandomGenerable<Uniform>::generate_one` for `u64` assembles
//! eight single-byte draws): perf put ~80 % of the seller's encryption in that loop, though the
//! AES itself runs at several GB/s. [`fill`] writes the same mask a whole AES batch at a time.
//!
//! The stream is the one `tfhe-csprng` defines for a plain seed from the first table index —
//! AES-128 keyed by the seed over the counters 0, 1, 2, … (128-bit little-endian), each mask
//! element the next eight bytes read little-endian — so the mask written here is the mask TFHE-rs'
//! `decompress` regenerates from the seed (tested against `tfhe-csprng`'s generator, and end to
//! end by decrypting through TFHE-rs).

use tfhe_csprng::generators::aes_ctr::{
    AES_CALLS_PER_BATCH, Aes128Key, AesBlockCipher, BYTES_PER_BATCH,
};
use tfhe_csprng::generators::default::DefaultAes128BlockCipher;

/// Mask elements one AES batch yields.
const ELEMENTS_PER_BATCH: usize = BYTES_PER_BATCH / size_of::<u64>();

/// Writes the mask of `seed` into `mask` (its first `mask.len()` elements).
pub(crate) fn fill(seed: u128, mask: &mut [u64]) {
    // `tfhe-csprng` keys AES with the seed's little-endian bytes (`AesCtrGenerator::from_params`)
    // and encrypts the counters' little-endian bytes: the same conversions here.
    let mut cipher = DefaultAes128BlockCipher::new(Aes128Key::new(u128::from_le(seed)));
    for (batch, out) in mask.chunks_mut(ELEMENTS_PER_BATCH).enumerate() {
        let first = (batch * AES_CALLS_PER_BATCH) as u128;
        let bytes = cipher.generate_batch(std::array::from_fn(|i| (first + i as u128).to_le()));
        for (element, word) in out.iter_mut().zip(bytes.chunks_exact(size_of::<u64>())) {
            *element = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        }
    }
}

#[cfg(test)]
mod tests {
    use tfhe::core_crypto::commons::math::random::RandomGenerator;
    use tfhe::core_crypto::prelude::DefaultRandomGenerator;
    use tfhe_csprng::seeders::Seed;

    #[test]
    fn the_mask_is_the_one_tfhe_rs_draws_from_the_seed() {
        for seed in [0, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            // Lengths within a batch, at its edge, and across many (the default mask: 2 048).
            for len in [1, 15, 16, 17, 100, 2048] {
                let mut ours = vec![0u64; len];
                super::fill(seed, &mut ours);
                let mut theirs = vec![0u64; len];
                RandomGenerator::<DefaultRandomGenerator>::new(Seed(seed))
                    .fill_slice_with_random_uniform(&mut theirs);
                assert_eq!(ours, theirs, "seed {seed:#x}, {len} elements");
            }
        }
    }
}
