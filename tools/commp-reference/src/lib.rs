//! The reference side of the CommP cross-check: Filecoin's `filecoin-proofs` computes the piece
//! commitment of a payload exactly as Lotus and the storage providers do, and a PieceCID is built
//! from it by the letter of FRC-0069, independently of `datacloud-pdp`.

use cid::Cid;
use filecoin_proofs::{PaddedBytesAmount, UnpaddedBytesAmount, generate_piece_commitment};
use multihash::Multihash;

/// `fil-commitment-unsealed` (v1 PieceCID codec).
const FIL_COMMITMENT_UNSEALED: u64 = 0xf101;
/// `sha2-256-trunc254-padded` (v1 PieceCID multihash).
const SHA2_256_TRUNC254_PADDED: u64 = 0x1012;
/// `fr32-sha2-256-trunc254-padded-binary-tree` (v2 PieceCID multihash).
const FR32_SHA256_TRUNC254_PADDED_BINARY_TREE: u64 = 0x1011;
/// `raw` (v2 PieceCID codec).
const RAW: u64 = 0x55;

/// What `filecoin-proofs` says about a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// CommP: the SHA254 tree root.
    pub root: [u8; 32],
    /// The piece's unpadded size (127 · 2ᵏ bytes).
    pub unpadded: u64,
    /// Its padded size (128 · 2ᵏ bytes).
    pub padded: u64,
}

/// The smallest piece that holds `len` payload bytes, as Lotus sizes it: unpadded 127 · 2ᵏ,
/// at least 127 (a 128-byte padded piece).
#[must_use]
pub fn unpadded_piece_size(len: u64) -> u64 {
    let mut padded = 128u64;
    while padded / 128 * 127 < len {
        padded *= 2;
    }
    padded / 128 * 127
}

/// `filecoin-proofs`' CommP of `payload`, zero-filled to its piece size (as Lotus' `commP`
/// does with a null reader after the data).
///
/// # Panics
/// If `filecoin-proofs` refuses the piece (it never should for these sizes).
#[must_use]
pub fn reference_commp(payload: &[u8]) -> Reference {
    let unpadded = unpadded_piece_size(payload.len() as u64);
    let source = std::io::Read::chain(
        payload,
        std::io::Read::take(std::io::repeat(0), unpadded - payload.len() as u64),
    );
    let info = generate_piece_commitment(source, UnpaddedBytesAmount(unpadded))
        .expect("filecoin-proofs computes the piece commitment");
    Reference {
        root: info.commitment,
        unpadded,
        padded: u64::from(PaddedBytesAmount::from(UnpaddedBytesAmount(unpadded))),
    }
}

impl Reference {
    /// The v1 PieceCID: `baga…`, codec `fil-commitment-unsealed`, multihash
    /// `sha2-256-trunc254-padded` of the root.
    #[must_use]
    pub fn piece_cid_v1(&self) -> Cid {
        let mh = Multihash::<64>::wrap(SHA2_256_TRUNC254_PADDED, &self.root)
            .expect("a 32-byte digest fits");
        Cid::new_v1(FIL_COMMITMENT_UNSEALED, mh)
    }

    /// The v2 PieceCID (FRC-0069) of `payload_len` bytes: codec `raw`, multihash
    /// `fr32-sha2-256-trunc254-padded-binary-tree`, digest = uvarint(padding) ‖ height ‖ root,
    /// where padding = unpadded piece size − payload size and height = log₂(padded / 32).
    #[must_use]
    pub fn piece_cid_v2(&self, payload_len: u64) -> Cid {
        let mut digest = Vec::with_capacity(10 + 1 + 32);
        let mut padding = self.unpadded - payload_len;
        loop {
            let byte = (padding & 0x7f) as u8;
            padding >>= 7;
            if padding == 0 {
                digest.push(byte);
                break;
            }
            digest.push(byte | 0x80);
        }
        digest.push((self.padded / 32).trailing_zeros() as u8);
        digest.extend_from_slice(&self.root);
        let mh = Multihash::<64>::wrap(FR32_SHA256_TRUNC254_PADDED_BINARY_TREE, &digest)
            .expect("the digest fits");
        Cid::new_v1(RAW, mh)
    }
}
