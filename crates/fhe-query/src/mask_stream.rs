//! A faster reader of the AES-CTR stream TFHE-rs draws a seeded ciphertext's mask from.
//!
//! Encrypting one 2-bit block under the default parameters draws a 2 048-element mask, 16 KiB
//! of AES-CTR output. TFHE-rs reads that stream a byte at a time through `tfhe-csprng`'s
//! general generator, whose per-byte bookkeeping (128-bit table indices, bounds for forked
//! children) cost ~6 ns a byte here: ~80 % of the seller's encryption time, though the AES
//! itself runs at several GB/s. TFHE-rs' LWE encryption is generic over the byte generator, so
//! [`MaskStream`] hands it the same bytes from a plain buffer refilled a kilobyte at a time by
//! `tfhe-csprng`'s own AES block cipher.
//!
//! The stream is the one `tfhe-csprng` defines for a plain seed from the first table index —
//! AES-128 keyed by the seed over the counters 0, 1, 2, … (128-bit little-endian) — so a mask
//! drawn here is the mask TFHE-rs' `decompress` regenerates from the seed (tested byte for byte
//! against `tfhe-csprng`, and end to end by decrypting). Any other parameters (an XOF seed, a
//! later first index), and every fork, are served by `tfhe-csprng`'s generator itself.

use tfhe_csprng::generators::aes_ctr::{
    AES_CALLS_PER_BATCH, AesBlockCipher, AesCtrParams, AesIndex, BYTES_PER_AES_CALL,
    BYTES_PER_BATCH, ByteIndex, TableIndex,
};
use tfhe_csprng::generators::default::DefaultAes128BlockCipher;
use tfhe_csprng::generators::{
    ByteCount, BytesPerChild, ChildrenCount, DefaultRandomGenerator, ForkError, RandomGenerator,
};
use tfhe_csprng::seeders::{Seed, SeedKind};

/// AES batches per refill: 8 × 128 bytes.
const BATCHES_PER_REFILL: usize = 8;
const BUFFER_BYTES: usize = BYTES_PER_BATCH * BATCHES_PER_REFILL;

/// A `tfhe-csprng` [`RandomGenerator`] producing exactly `DefaultRandomGenerator`'s bytes.
pub enum MaskStream {
    /// A plain seed from the first table index: the buffered stream.
    Buffered(Buffered),
    /// Anything else: `tfhe-csprng`'s generator.
    Tfhe(DefaultRandomGenerator),
}

/// The buffered AES-CTR stream of one key.
pub struct Buffered {
    seed: u128,
    cipher: DefaultAes128BlockCipher,
    /// The AES counter of the buffer's first block.
    buffer_counter: u128,
    /// The AES counter the next refill starts at.
    next_counter: u128,
    buffer: Box<[u8; BUFFER_BYTES]>,
    /// The next byte of `buffer` to hand out; `BUFFER_BYTES` when it must be refilled.
    position: usize,
}

impl Buffered {
    fn new(seed: u128) -> Self {
        // `tfhe-csprng` keys AES with the seed's little-endian bytes (`AesCtrGenerator::
        // from_params`): the same conversion here.
        let key = tfhe_csprng::generators::aes_ctr::Aes128Key::new(u128::from_le(seed));
        Self {
            seed,
            cipher: DefaultAes128BlockCipher::new(key),
            buffer_counter: 0,
            next_counter: 0,
            buffer: Box::new([0; BUFFER_BYTES]),
            position: BUFFER_BYTES,
        }
    }

    /// The table index (AES counter, byte in its block) of the next byte.
    fn next_index(&self) -> TableIndex {
        if self.position == BUFFER_BYTES {
            return TableIndex::new(AesIndex(self.next_counter), ByteIndex(0));
        }
        let block = (self.position / BYTES_PER_AES_CALL) as u128;
        TableIndex::new(
            AesIndex(self.buffer_counter.wrapping_add(block)),
            ByteIndex(self.position % BYTES_PER_AES_CALL),
        )
    }

    fn refill(&mut self) {
        self.buffer_counter = self.next_counter;
        for (batch, out) in self.buffer.chunks_exact_mut(BYTES_PER_BATCH).enumerate() {
            let first = self
                .buffer_counter
                .wrapping_add((batch * AES_CALLS_PER_BATCH) as u128);
            let inputs = std::array::from_fn(|i| first.wrapping_add(i as u128).to_le());
            out.copy_from_slice(&self.cipher.generate_batch(inputs));
        }
        self.next_counter = self
            .buffer_counter
            .wrapping_add((BUFFER_BYTES / BYTES_PER_AES_CALL) as u128);
        self.position = 0;
    }
}

impl Iterator for MaskStream {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        match self {
            Self::Buffered(stream) => {
                if stream.position == BUFFER_BYTES {
                    stream.refill();
                }
                let byte = stream.buffer[stream.position];
                stream.position += 1;
                Some(byte)
            }
            Self::Tfhe(generator) => generator.next(),
        }
    }
}

/// The children of a fork: always `tfhe-csprng`'s generators.
pub type Children = std::iter::Map<
    <DefaultRandomGenerator as RandomGenerator>::ChildrenIter,
    fn(DefaultRandomGenerator) -> MaskStream,
>;

impl RandomGenerator for MaskStream {
    type ChildrenIter = Children;

    fn new(params: impl Into<AesCtrParams>) -> Self {
        let params = params.into();
        match params {
            AesCtrParams {
                seed: SeedKind::Ctr(Seed(seed)),
                first_index,
            } if first_index == TableIndex::FIRST => Self::Buffered(Buffered::new(seed)),
            params => Self::Tfhe(DefaultRandomGenerator::new(params)),
        }
    }

    fn remaining_bytes(&self) -> ByteCount {
        match self {
            // An unbounded stream has 2^132 bytes; `ByteCount` saturates at 2^128 - 1.
            Self::Buffered(_) => ByteCount(u128::MAX),
            Self::Tfhe(generator) => generator.remaining_bytes(),
        }
    }

    fn next_table_index(&self) -> Option<TableIndex> {
        match self {
            Self::Buffered(stream) => Some(stream.next_index()),
            Self::Tfhe(generator) => generator.next_table_index(),
        }
    }

    fn try_fork(
        &mut self,
        n_children: ChildrenCount,
        n_bytes: BytesPerChild,
    ) -> Result<Self::ChildrenIter, ForkError> {
        if let Self::Buffered(stream) = self {
            // Hand the position over to `tfhe-csprng`'s generator, which forks as TFHE-rs
            // expects; this stream continues through it.
            let resumed = DefaultRandomGenerator::new(AesCtrParams {
                seed: SeedKind::Ctr(Seed(stream.seed)),
                first_index: stream.next_index(),
            });
            *self = Self::Tfhe(resumed);
        }
        let Self::Tfhe(generator) = self else {
            unreachable!("converted above")
        };
        let wrap: fn(DefaultRandomGenerator) -> MaskStream = MaskStream::Tfhe;
        Ok(generator.try_fork(n_children, n_bytes)?.map(wrap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(params: AesCtrParams, bytes: usize) -> Vec<u8> {
        DefaultRandomGenerator::new(params).take(bytes).collect()
    }

    fn plain(seed: u128) -> AesCtrParams {
        AesCtrParams {
            seed: SeedKind::Ctr(Seed(seed)),
            first_index: TableIndex::FIRST,
        }
    }

    #[test]
    fn the_stream_is_tfhe_csprngs_byte_for_byte() {
        for seed in [0, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            let ours: Vec<u8> = MaskStream::new(plain(seed))
                .take(3 * BUFFER_BYTES + 77)
                .collect();
            assert_eq!(
                ours,
                reference(plain(seed), 3 * BUFFER_BYTES + 77),
                "seed {seed:#x}"
            );
        }
    }

    #[test]
    fn table_indices_and_forks_continue_the_same_stream() {
        let seed = 0xdead_beef;
        for drawn in [
            0,
            1,
            15,
            16,
            17,
            BUFFER_BYTES - 1,
            BUFFER_BYTES,
            BUFFER_BYTES + 5,
        ] {
            let mut ours = MaskStream::new(plain(seed));
            let mut theirs = DefaultRandomGenerator::new(plain(seed));
            for _ in 0..drawn {
                assert_eq!(ours.next(), theirs.next());
            }
            assert_eq!(
                ours.next_table_index(),
                theirs.next_table_index(),
                "{drawn}"
            );
            let ours_children: Vec<Vec<u8>> = ours
                .try_fork(ChildrenCount(3), BytesPerChild(40))
                .unwrap()
                .map(Iterator::collect)
                .collect();
            let theirs_children: Vec<Vec<u8>> = theirs
                .try_fork(ChildrenCount(3), BytesPerChild(40))
                .unwrap()
                .map(Iterator::collect)
                .collect();
            assert_eq!(ours_children, theirs_children, "{drawn}");
            let after: Vec<u8> = ours.by_ref().take(100).collect();
            let expected: Vec<u8> = theirs.by_ref().take(100).collect();
            assert_eq!(after, expected, "{drawn}");
        }
    }

    #[test]
    fn other_parameters_are_tfhe_csprngs_generator() {
        let later = AesCtrParams {
            seed: SeedKind::Ctr(Seed(7)),
            first_index: TableIndex::new(AesIndex(3), ByteIndex(5)),
        };
        let ours: Vec<u8> = MaskStream::new(later.clone()).take(500).collect();
        assert_eq!(ours, reference(later, 500));
    }
}
