//! Challenge derivation and the mapping of a proof set's leaves onto its pieces.

use alloc::vec::Vec;
use core::fmt;

use alloy_primitives::{U256, keccak256};

/// The leaf of the whole proof set that challenge `index` points at:
/// `keccak256(abi.encodePacked(uint256 seed, uint256 setId, uint64 index)) mod totalLeaves`,
/// exactly as FilOzone's `PDPVerifier.generateChallengeIndex` computes it.
///
/// The 256-bit remainder is folded over 32-bit words in native 128-bit arithmetic rather than with
/// ruint's generic `U256 % U256`: the `ProofManager` contract runs this code, and the generic
/// division costs about 8 KB of its 24 KiB code budget. `total_leaves` must be non-zero (a proof
/// set always holds at least one leaf); zero is treated as one.
#[must_use]
pub fn challenge_leaf_index(seed: &[u8; 32], set_id: U256, index: u64, total_leaves: u64) -> u64 {
    debug_assert!(total_leaves > 0, "a proof set holds at least one leaf");
    let mut packed = [0u8; 32 + 32 + 8];
    packed[..32].copy_from_slice(seed);
    packed[32..64].copy_from_slice(&set_id.to_be_bytes::<32>());
    packed[64..].copy_from_slice(&index.to_be_bytes());
    let digest = keccak256(packed);
    let modulus = u128::from(total_leaves.max(1));
    let mut rest = 0u128;
    for word in digest.0.chunks_exact(4) {
        // `rest < modulus ≤ 2^64`, so `rest · 2^32 + word < 2^96` fits.
        rest = ((rest << 32)
            | u128::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]])))
            % modulus;
    }
    // The remainder is below `total_leaves`, a u64.
    u64::try_from(rest).unwrap_or_default()
}

/// Why a list of piece leaf counts cannot form a proof set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceIndexError {
    /// No pieces at all.
    Empty,
    /// A piece's leaf count is zero or not a power of two (Filecoin pieces are padded to a power
    /// of two, so their trees are perfect binary trees).
    NotPowerOfTwo {
        /// Position of the offending piece.
        piece: usize,
    },
    /// The set's total leaf count overflows a u64.
    TooManyLeaves,
}

impl fmt::Display for PieceIndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a proof set needs at least one piece"),
            Self::NotPowerOfTwo { piece } => {
                write!(
                    f,
                    "piece {piece}: leaf count must be a non-zero power of two"
                )
            }
            Self::TooManyLeaves => f.write_str("the pieces' leaf counts overflow 2^64"),
        }
    }
}

impl core::error::Error for PieceIndexError {}

/// The pieces of a proof set as a running sum of their leaf counts: entry `p` is the number of
/// leaves in pieces `0..=p`. `PDPVerifier` keeps a Fenwick sum tree because roots can be added and
/// removed; a DataCloud proof set is fixed when it is created, so the prefix sums are that tree's
/// final state and a binary search answers the same `findOneRoot` query in O(log n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceIndex {
    cumulative: Vec<u64>,
}

impl PieceIndex {
    /// Builds the index from each piece's leaf count.
    ///
    /// # Errors
    /// [`PieceIndexError`] when there are no pieces, a count is not a power of two, or the total
    /// overflows.
    pub fn new(leaf_counts: &[u64]) -> Result<Self, PieceIndexError> {
        if leaf_counts.is_empty() {
            return Err(PieceIndexError::Empty);
        }
        let mut total = 0u64;
        let mut cumulative = Vec::with_capacity(leaf_counts.len());
        for (piece, &count) in leaf_counts.iter().enumerate() {
            if !count.is_power_of_two() {
                return Err(PieceIndexError::NotPowerOfTwo { piece });
            }
            total = total
                .checked_add(count)
                .ok_or(PieceIndexError::TooManyLeaves)?;
            cumulative.push(total);
        }
        Ok(Self { cumulative })
    }

    /// Rebuilds an index from stored prefix sums (as the contract keeps them), trusting them to be
    /// strictly increasing.
    #[must_use]
    pub fn from_cumulative(cumulative: Vec<u64>) -> Self {
        Self { cumulative }
    }

    /// The running sums, one per piece.
    #[must_use]
    pub fn cumulative(&self) -> &[u64] {
        &self.cumulative
    }

    /// Total number of leaves in the set (the challenge range).
    #[must_use]
    pub fn total_leaves(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// Number of leaves of piece `piece`.
    #[must_use]
    pub fn leaf_count(&self, piece: usize) -> Option<u64> {
        let end = *self.cumulative.get(piece)?;
        let start = if piece == 0 {
            0
        } else {
            self.cumulative[piece - 1]
        };
        Some(end - start)
    }

    /// Maps a leaf of the whole set to `(piece, leaf offset inside the piece)`, or `None` when the
    /// leaf is past the end of the set.
    #[must_use]
    pub fn locate(&self, leaf: u64) -> Option<(usize, u64)> {
        // The first piece whose running sum exceeds `leaf` holds it.
        let piece = self.cumulative.partition_point(|&end| end <= leaf);
        let end = *self.cumulative.get(piece)?;
        let start = end - self.leaf_count(piece)?;
        Some((piece, leaf - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_index_is_keccak_of_the_packed_fields_mod_total() {
        let seed = [0x11; 32];
        let set_id = U256::from(7);
        let mut packed = alloc::vec::Vec::new();
        packed.extend_from_slice(&seed);
        packed.extend_from_slice(&set_id.to_be_bytes::<32>());
        packed.extend_from_slice(&3u64.to_be_bytes());
        assert_eq!(packed.len(), 72);
        let expected = U256::from_be_bytes(keccak256(&packed).0) % U256::from(1000u64);
        assert_eq!(
            U256::from(challenge_leaf_index(&seed, set_id, 3, 1000)),
            expected
        );
        // Each field changes the answer.
        let base = challenge_leaf_index(&seed, set_id, 3, 1 << 40);
        assert_ne!(base, challenge_leaf_index(&[0x12; 32], set_id, 3, 1 << 40));
        assert_ne!(base, challenge_leaf_index(&seed, U256::from(8), 3, 1 << 40));
        assert_ne!(base, challenge_leaf_index(&seed, set_id, 4, 1 << 40));
    }

    proptest::proptest! {
        #[test]
        fn the_folded_remainder_equals_the_256_bit_one(
            seed in proptest::prelude::any::<[u8; 32]>(),
            set_id in proptest::prelude::any::<[u8; 32]>(),
            index in proptest::prelude::any::<u64>(),
            total in 1u64..,
            small in 1u64..100,
        ) {
            let set_id = U256::from_be_bytes(set_id);
            let mut packed = alloc::vec::Vec::new();
            packed.extend_from_slice(&seed);
            packed.extend_from_slice(&set_id.to_be_bytes::<32>());
            packed.extend_from_slice(&index.to_be_bytes());
            let digest = U256::from_be_bytes(keccak256(&packed).0);
            for total in [total, small, 1, u64::MAX] {
                proptest::prop_assert_eq!(
                    U256::from(challenge_leaf_index(&seed, set_id, index, total)),
                    digest % U256::from(total)
                );
            }
        }
    }

    #[test]
    fn locate_maps_set_leaves_onto_pieces() {
        let index = PieceIndex::new(&[4, 1, 8]).unwrap();
        assert_eq!(index.total_leaves(), 13);
        assert_eq!(index.locate(0), Some((0, 0)));
        assert_eq!(index.locate(3), Some((0, 3)));
        assert_eq!(index.locate(4), Some((1, 0)));
        assert_eq!(index.locate(5), Some((2, 0)));
        assert_eq!(index.locate(12), Some((2, 7)));
        assert_eq!(index.locate(13), None);
    }

    #[test]
    fn bad_leaf_counts_are_refused() {
        assert_eq!(PieceIndex::new(&[]), Err(PieceIndexError::Empty));
        assert_eq!(
            PieceIndex::new(&[4, 3]),
            Err(PieceIndexError::NotPowerOfTwo { piece: 1 })
        );
        assert_eq!(
            PieceIndex::new(&[0]),
            Err(PieceIndexError::NotPowerOfTwo { piece: 0 })
        );
        assert_eq!(
            PieceIndex::new(&[1 << 63, 1 << 63]),
            Err(PieceIndexError::TooManyLeaves)
        );
    }
}
