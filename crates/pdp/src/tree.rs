//! An in-memory SHA254 tree, for small pieces and tests. (Multi-GiB pieces are proven from disk by
//! the prover's layered tree; both produce the same roots and proofs.)

use alloc::vec::Vec;

use alloy_primitives::U256;

use crate::{
    PieceCommitment, PieceError, PieceIndex, PieceIndexError, PieceSize, challenge_leaf_index,
    merkle::{Node, sha254},
};

/// A perfect binary SHA254 Merkle tree held in memory, all levels from the leaves up.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Node>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`, whose count must be a non-zero power of two.
    ///
    /// # Panics
    /// When the leaf count is zero or not a power of two.
    #[must_use]
    pub fn new(leaves: Vec<Node>) -> Self {
        assert!(
            leaves.len().is_power_of_two(),
            "a piece tree has a power-of-two number of leaves"
        );
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|level| level.len() > 1) {
            let below = levels.last().expect("at least the leaf level");
            let above = below
                .chunks_exact(2)
                .map(|pair| sha254(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// The root (the piece commitment's digest).
    #[must_use]
    pub fn root(&self) -> Node {
        self.levels[self.levels.len() - 1][0]
    }

    /// Number of leaves.
    #[must_use]
    pub fn leaf_count(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// The FRC-0069 v2 PieceCID of a piece whose payload fills this tree (no padding): what a
    /// seller registers for it, so that the proof set opened over the registration is this tree.
    ///
    /// # Errors
    /// [`PieceError`] when the tree has fewer than 4 leaves (below the smallest piece).
    pub fn piece_cid_v2(&self) -> Result<cid::Cid, PieceError> {
        let height = u8::try_from(self.leaf_count().trailing_zeros()).unwrap_or(u8::MAX);
        Ok(PieceCommitment::new(self.root(), PieceSize::full(height)?).to_piece_cid_v2())
    }

    /// Leaf `index`.
    #[must_use]
    pub fn leaf(&self, index: u64) -> Option<Node> {
        self.levels[0].get(usize::try_from(index).ok()?).copied()
    }

    /// The siblings of leaf `index`, bottom first: the proof [`crate::verify_inclusion`] checks.
    #[must_use]
    pub fn proof(&self, index: u64) -> Option<Vec<Node>> {
        let mut position = usize::try_from(index).ok()?;
        if position >= self.levels[0].len() {
            return None;
        }
        let mut siblings = Vec::with_capacity(self.levels.len() - 1);
        for level in &self.levels[..self.levels.len() - 1] {
            siblings.push(level[position ^ 1]);
            position >>= 1;
        }
        Some(siblings)
    }
}

/// The answers to one proving period over in-memory piece trees, in the order
/// `ProofManager.provePossession(setId, leaves, proofs)` takes them: for each challenge
/// `0..count`, the challenged leaf and its siblings. (Pieces on disk are answered by the
/// prover's `PieceProver` instead.)
///
/// # Errors
/// [`PieceIndexError`] when `pieces` is empty or its leaf counts overflow.
pub fn answer_challenges(
    pieces: &[MerkleTree],
    seed: &[u8; 32],
    set_id: U256,
    count: u64,
) -> Result<(Vec<Node>, Vec<Vec<Node>>), PieceIndexError> {
    let counts: Vec<u64> = pieces.iter().map(MerkleTree::leaf_count).collect();
    let index = PieceIndex::new(&counts)?;
    let mut leaves = Vec::new();
    let mut proofs = Vec::new();
    for challenge in 0..count {
        let leaf = challenge_leaf_index(seed, set_id, challenge, index.total_leaves());
        // `leaf < total_leaves`, so it lies in some piece, at an offset inside that piece.
        if let Some((piece, offset)) = index.locate(leaf) {
            let tree = &pieces[piece];
            if let (Some(value), Some(siblings)) = (tree.leaf(offset), tree.proof(offset)) {
                leaves.push(value);
                proofs.push(siblings);
            }
        }
    }
    Ok((leaves, proofs))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_trees_piece_cid_names_its_root_and_height() {
        for height in [2u32, 3, 8] {
            let leaves: Vec<Node> = (0..1u32 << height)
                .map(|i| [u8::try_from(i % 64).unwrap(); 32])
                .collect();
            let tree = MerkleTree::new(leaves);
            let cid = tree.piece_cid_v2().unwrap();
            let piece = crate::PieceRef::from_cid_bytes(&cid.to_bytes()).unwrap();
            assert_eq!(
                (piece.root, u32::from(piece.height), piece.padding),
                (tree.root(), height, 0)
            );
        }
        assert!(MerkleTree::new(vec![[0; 32]; 2]).piece_cid_v2().is_err());
    }
    use crate::{PieceIndex, challenge_leaf_index, verify_inclusion};

    fn leaves_strategy() -> impl Strategy<Value = Vec<Node>> {
        (0u32..7)
            .prop_flat_map(|height| proptest::collection::vec(any::<[u8; 32]>(), 1usize << height))
    }

    proptest! {
        #[test]
        fn every_leaf_proof_verifies(leaves in leaves_strategy()) {
            let tree = MerkleTree::new(leaves.clone());
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = tree.proof(i as u64).unwrap();
                prop_assert!(verify_inclusion(&tree.root(), leaf, i as u64, &proof));
            }
        }

        #[test]
        fn any_tampering_fails(
            leaves in leaves_strategy(),
            pick in any::<prop::sample::Index>(),
            byte in 0usize..32,
            flip in 1u8..=255,
            what in 0u8..4,
        ) {
            let tree = MerkleTree::new(leaves.clone());
            let index = pick.index(leaves.len()) as u64;
            let mut leaf = tree.leaf(index).unwrap();
            let mut proof = tree.proof(index).unwrap();
            let mut at = index;
            match what {
                // A changed leaf byte.
                0 => leaf[byte] ^= flip,
                // A changed sibling byte (when the tree has any sibling).
                1 if !proof.is_empty() => {
                    let level = byte % proof.len();
                    proof[level][byte] ^= flip;
                }
                // Another index inside or outside the tree.
                2 => at = if leaves.len() > 1 { index ^ 1 } else { index + 1 },
                // The root of another tree.
                _ => {
                    let mut other = leaves.clone();
                    other[0][byte] ^= flip;
                    let other = MerkleTree::new(other);
                    prop_assert!(!verify_inclusion(&other.root(), &leaf, at, &proof)
                        || other.root() == tree.root());
                    return Ok(());
                }
            }
            let changed = what == 0 || (what == 1 && !proof.is_empty()) || what == 2;
            if changed {
                let unchanged_leaf = what == 2 && tree.leaf(at) == Some(leaf);
                prop_assert!(unchanged_leaf || !verify_inclusion(&tree.root(), &leaf, at, &proof));
            }
        }

        #[test]
        fn a_proof_for_one_piece_fails_against_another(a in leaves_strategy(), b in leaves_strategy()) {
            let (ta, tb) = (MerkleTree::new(a), MerkleTree::new(b));
            prop_assume!(ta.root() != tb.root());
            let proof = ta.proof(0).unwrap();
            prop_assert!(!verify_inclusion(&tb.root(), &ta.leaf(0).unwrap(), 0, &proof));
        }

        #[test]
        fn challenges_of_a_set_land_inside_its_pieces(
            heights in proptest::collection::vec(0u32..20, 1..8),
            seed in any::<[u8; 32]>(),
            set_id in any::<u64>(),
        ) {
            let counts: Vec<u64> = heights.iter().map(|h| 1u64 << h).collect();
            let index = PieceIndex::new(&counts).unwrap();
            for i in 0..5 {
                let leaf = challenge_leaf_index(&seed, alloy_primitives::U256::from(set_id), i, index.total_leaves());
                let (piece, offset) = index.locate(leaf).unwrap();
                prop_assert!(offset < counts[piece]);
            }
        }
    }
}
