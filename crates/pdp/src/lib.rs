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
//! - [`PieceRef`]: a registered piece's root and tree height, parsed from its FRC-0069 v2
//!   PieceCID bytes (what binds a proof set to the piece the registry holds).
//!
//! Host-side only (the `std` feature, off in the contract's WASM build):
//!
//! - [`fr32`]: Filecoin's fr32 padding (Lotus `fr32.Pad`), 127 payload bytes → 128 bytes.
//! - [`PieceSize`], [`commp`], [`commp_from_reader`]: the piece a payload makes and its CommP root
//!   (`filecoin-proofs`' piece commitment), in memory or streamed from disk with bounded memory.
//! - [`PieceCommitment::to_piece_cid_v2`] / [`piece_cid_v1`]: the FRC-0069 PieceCID v2 and the
//!   legacy v1 form, and their parsers.
//! - [`PieceProver`]: inclusion proofs for a piece on disk without holding its tree.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod challenge;
#[cfg(feature = "std")]
mod commp;
#[cfg(feature = "std")]
pub mod fr32;
mod merkle;
#[cfg(feature = "std")]
mod piece;
#[cfg(feature = "std")]
mod piece_cid;
mod piece_ref;
#[cfg(feature = "std")]
mod prover;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod sha_ni;
#[cfg(feature = "std")]
mod tree;

pub use challenge::{PieceIndex, PieceIndexError, challenge_leaf_index};
#[cfg(feature = "std")]
pub use commp::{
    PieceCommitment, commp, commp_from_reader, commp_from_reader_with_progress, zero_subtree_root,
};
pub use merkle::{NODE_SIZE, Node, compute_root, sha254, verify_inclusion};
#[cfg(feature = "std")]
pub use piece::{PieceError, PieceSize};
#[cfg(feature = "std")]
pub use piece_cid::{
    FIL_COMMITMENT_UNSEALED, FR32_SHA256_TRUNC254_PADDED_BINARY_TREE, PieceCidError, RAW,
    SHA2_256_TRUNC254_PADDED, piece_cid_v1, piece_root_from_cid_v1,
};
pub use piece_ref::{MAX_PIECE_HEIGHT, MIN_PIECE_HEIGHT, PieceRef, PieceRefError};
#[cfg(feature = "std")]
pub use prover::{InclusionProof, PROVER_LAYER_HEIGHT, PieceProver};
#[cfg(feature = "std")]
pub use tree::{MerkleTree, answer_challenges};
