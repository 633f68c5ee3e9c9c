//! SHA254 binary Merkle trees: node hashing and inclusion proofs.

use sha2::{Digest, Sha256};

/// Size of a leaf and of every tree node, in bytes.
pub const NODE_SIZE: usize = 32;

/// A leaf or an inner node of a piece tree.
pub type Node = [u8; NODE_SIZE];

/// Hashes two children into their parent: SHA-256 of `left ‖ right`, truncated to 254 bits by
/// clearing the top two bits of the last byte (`out[31] &= 0x3F`), as Filecoin's piece
/// commitments and FilOzone's `Proofs.sol` (`orderedHash`) do.
#[must_use]
pub fn sha254(left: &Node, right: &Node) -> Node {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    let mut out: Node = hasher.finalize().into();
    out[31] &= 0x3F;
    out
}

/// Walks from `leaf` at position `index` up through `siblings` (bottom first) and returns the
/// root it implies. Bit `k` of `index` tells whether the running node is a right child at level
/// `k`; bits above the proof's height must be zero (checked by [`verify_inclusion`]).
#[must_use]
pub fn compute_root(leaf: &Node, index: u64, siblings: &[Node]) -> Node {
    let mut node = *leaf;
    let mut position = index;
    for sibling in siblings {
        node = if position & 1 == 0 {
            sha254(&node, sibling)
        } else {
            sha254(sibling, &node)
        };
        position >>= 1;
    }
    node
}

/// Checks that `leaf` sits at `index` in the tree with root `root`. The proof's length is the
/// tree's height, so an index that does not fit in `siblings.len()` bits is refused rather than
/// silently truncated (a proof for leaf 1 must not also pass for leaf `1 + 2^height`).
#[must_use]
pub fn verify_inclusion(root: &Node, leaf: &Node, index: u64, siblings: &[Node]) -> bool {
    let fits = u32::try_from(siblings.len())
        .ok()
        .is_some_and(|height| height >= 64 || index >> height == 0);
    fits && compute_root(leaf, index, siblings) == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha254_clears_the_top_two_bits_and_matches_sha256_elsewhere() {
        let left = [0xAB; 32];
        let right = [0xCD; 32];
        let mut full: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(left);
            h.update(right);
            h.finalize().into()
        };
        let node = sha254(&left, &right);
        assert_eq!(node[31] & 0xC0, 0);
        full[31] &= 0x3F;
        assert_eq!(node, full);
        // The order of the children matters.
        assert_ne!(sha254(&right, &left), node);
    }

    #[test]
    fn a_single_leaf_tree_is_its_own_root() {
        let leaf = [7; 32];
        assert!(verify_inclusion(&leaf, &leaf, 0, &[]));
        assert!(!verify_inclusion(&leaf, &leaf, 1, &[]));
    }

    #[test]
    fn the_known_zero_tree_roots_match_filecoin() {
        // Root of a 64-byte all-zero piece (two zero leaves): the first entry of the
        // zero-commitment table in Filecoin's `fr32`/CommP code.
        let root = sha254(&[0; 32], &[0; 32]);
        assert_eq!(
            alloy_primitives::hex::encode(root),
            "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb0b"
        );
    }
}
