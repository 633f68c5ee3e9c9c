//! Proofs of data possession (PDP) over Filecoin pieces.
//!
//! The `no_std` core is shared by the `ProofManager` contract (compiled to WASM) and the seller's
//! prover, so a proof the prover builds is checked by exactly the code that checks it on-chain.
//! Every rule follows FilOzone's `PDPVerifier` (`src/PDPVerifier.sol`, `src/Proofs.sol`):
//!
//! - [`sha254`]: a tree node is SHA-256 of its two children with the top two bits of the last
//!   byte cleared, so every node is a valid BLS12-381 field element (Filecoin's "SHA254").
//! - [`challenge_leaf_index`]: challenge `i` is `keccak256(abi.encodePacked(uint256 seed,
//!   uint256 setId, uint64 i)) mod totalLeaves`.
//! - [`PieceIndex`]: a challenged leaf of the whole proof set is mapped to a piece and a leaf
//!   offset inside it through the running sum of the pieces' leaf counts.
//! - [`verify_inclusion`]: a proof is the challenged leaf plus its siblings from the bottom up.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod challenge;
mod merkle;
#[cfg(feature = "std")]
mod tree;

pub use challenge::{PieceIndex, PieceIndexError, challenge_leaf_index};
pub use merkle::{NODE_SIZE, Node, compute_root, sha254, verify_inclusion};
#[cfg(feature = "std")]
pub use tree::MerkleTree;
