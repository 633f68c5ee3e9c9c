//! A registered piece as a proof set needs it: the root and the tree height read from its
//! FRC-0069 v2 PieceCID bytes, with no allocation and no `cid` crate, so the registry contract
//! can parse what a seller registers and the proof manager can prove exactly that piece.
//!
//! A v2 PieceCID is `0x01` (`CIDv1`) ‖ uvarint `0x55` (raw) ‖ uvarint `0x1011`
//! (`fr32-sha256-trunc254-padbintree`) ‖ uvarint digest length ‖ digest, where the digest is
//! uvarint padding ‖ height (one byte) ‖ root (32 bytes) (FRC-0069, "Piece Multihash and v2
//! Piece CID"). The piece holds `2^height` leaves of 32 bytes.

use crate::merkle::{NODE_SIZE, Node};

/// Smallest piece height: one fr32 chunk, 127 payload bytes = 128 padded bytes = 4 leaves.
pub const MIN_PIECE_HEIGHT: u8 = 2;
/// Largest piece height accepted. FRC-0069 writes the padding as an unsigned varint, which the
/// multiformats spec caps at 2^63 − 1, and notes this caps the data size too; height 58 is the
/// largest whose unpadded size (127 · 2^56 bytes) stays below 2^63, so every size here fits a
/// `u64`. (Filecoin's largest sector, 64 GiB, is height 31.)
pub const MAX_PIECE_HEIGHT: u8 = 58;
/// Payload bytes an fr32 chunk of 128 padded bytes holds.
const UNPADDED_CHUNK: u64 = 127;
/// The raw codec.
const RAW: u64 = 0x55;
/// The `fr32-sha256-trunc254-padbintree` multihash.
const PIECE_MULTIHASH: u64 = 0x1011;

/// A piece's root and height, from its v2 PieceCID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceRef {
    /// The SHA254 Merkle root of the padded piece.
    pub root: Node,
    /// The tree height: the piece has `2^height` leaves.
    pub height: u8,
    /// Zero bytes the payload was padded with to fill the piece (before fr32).
    pub padding: u64,
}

/// Why bytes are not a v2 PieceCID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceRefError {
    /// Not a `CIDv1` with the raw codec and the piece multihash.
    NotPieceCidV2,
    /// The varints or the digest's length do not add up.
    Malformed,
    /// The height is outside `MIN_PIECE_HEIGHT..=MAX_PIECE_HEIGHT`.
    HeightOutOfRange,
    /// The padding is not the one a payload of a piece of this height has.
    PaddingOutOfRange,
    /// The root has one of its top two bits set, so no SHA254 tree produced it.
    RootNotSha254,
}

impl PieceRef {
    /// Leaves of the piece's tree (`2^height`).
    #[must_use]
    pub const fn leaves(&self) -> u64 {
        1 << self.height
    }

    /// Parses a v2 PieceCID's bytes, validating every field.
    ///
    /// # Errors
    /// [`PieceRefError`] naming what is wrong.
    pub fn from_cid_bytes(bytes: &[u8]) -> Result<Self, PieceRefError> {
        let (version, rest) = read_uvarint(bytes)?;
        let (codec, rest) = read_uvarint(rest)?;
        let (multihash, rest) = read_uvarint(rest)?;
        if version != 1 || codec != RAW || multihash != PIECE_MULTIHASH {
            return Err(PieceRefError::NotPieceCidV2);
        }
        let (length, digest) = read_uvarint(rest)?;
        if usize::try_from(length).ok() != Some(digest.len()) {
            return Err(PieceRefError::Malformed);
        }
        let (padding, rest) = read_uvarint(digest)?;
        let [height, root @ ..] = rest else {
            return Err(PieceRefError::Malformed);
        };
        let root: Node = root.try_into().map_err(|_| PieceRefError::Malformed)?;
        let height = *height;
        if !(MIN_PIECE_HEIGHT..=MAX_PIECE_HEIGHT).contains(&height) {
            return Err(PieceRefError::HeightOutOfRange);
        }
        // Canonical: the payload fills more than the next smaller piece (or the smallest piece).
        let capacity = |h: u8| UNPADDED_CHUNK << (h - MIN_PIECE_HEIGHT);
        let payload = capacity(height)
            .checked_sub(padding)
            .ok_or(PieceRefError::PaddingOutOfRange)?;
        if height > MIN_PIECE_HEIGHT && payload <= capacity(height - 1) {
            return Err(PieceRefError::PaddingOutOfRange);
        }
        if root[NODE_SIZE - 1] & 0xc0 != 0 {
            return Err(PieceRefError::RootNotSha254);
        }
        Ok(Self {
            root,
            height,
            padding,
        })
    }
}

/// Unsigned LEB128 (multiformats' `unsigned-varint`): at most 9 bytes, minimal encoding.
fn read_uvarint(bytes: &[u8]) -> Result<(u64, &[u8]), PieceRefError> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // A trailing zero group is a non-minimal encoding.
            if byte == 0 && i > 0 {
                return Err(PieceRefError::Malformed);
            }
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err(PieceRefError::Malformed)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{PieceCommitment, PieceSize};

    fn commitment(payload: u64, fill: u8) -> PieceCommitment {
        let mut root = [fill; NODE_SIZE];
        root[NODE_SIZE - 1] &= 0x3f;
        PieceCommitment::new(root, PieceSize::for_payload(payload).unwrap())
    }

    proptest! {
        /// Whatever the `cid` crate writes for a v2 PieceCID, this parser reads back exactly.
        #[test]
        fn reads_what_the_cid_crate_writes(payload in 127u64..(1 << 40), fill: u8) {
            let c = commitment(payload, fill);
            let parsed = PieceRef::from_cid_bytes(&c.to_piece_cid_v2().to_bytes()).unwrap();
            prop_assert_eq!(parsed.root, c.root());
            prop_assert_eq!(parsed.height, c.size().height());
            prop_assert_eq!(parsed.padding, c.size().padding());
            prop_assert_eq!(parsed.leaves(), 1u64 << c.size().height());
        }

        /// No truncation or byte flip of a valid PieceCID parses as another piece's.
        #[test]
        fn a_changed_cid_is_refused_or_names_another_piece(
            payload in 127u64..(1 << 30),
            cut in 0usize..48,
            at in 0usize..48,
            flip in 1u8..=255,
        ) {
            let c = commitment(payload, 7);
            let bytes = c.to_piece_cid_v2().to_bytes();
            prop_assert!(PieceRef::from_cid_bytes(&bytes[..cut.min(bytes.len() - 1)]).is_err());
            let mut changed = bytes.clone();
            let at = at % changed.len();
            changed[at] ^= flip;
            if let Ok(parsed) = PieceRef::from_cid_bytes(&changed) {
                // Only a flip in the digest can parse, and then it describes another piece
                // (another root, or another payload size in the same tree).
                prop_assert!(parsed != PieceRef::from_cid_bytes(&bytes).unwrap());
            }
        }
    }

    #[test]
    fn non_piece_cids_and_bad_fields_are_refused() {
        let c = commitment(1000, 1);
        let good = c.to_piece_cid_v2().to_bytes();
        // A v1 PieceCID (another multihash and codec), a raw sha2-256 CID.
        let v1 = c.to_piece_cid_v1().to_bytes();
        assert_eq!(
            PieceRef::from_cid_bytes(&v1),
            Err(PieceRefError::NotPieceCidV2)
        );
        let mut wrong_version = good.clone();
        wrong_version[0] = 0x00;
        assert_eq!(
            PieceRef::from_cid_bytes(&wrong_version),
            Err(PieceRefError::NotPieceCidV2)
        );
        // The digest: 1 byte of padding varint, the height, the root.
        let header = good.len() - (1 + 1 + NODE_SIZE);
        let with_digest = |padding: &[u8], height: u8, top: u8| {
            let mut out = good[..header - 1].to_vec();
            out.push(u8::try_from(padding.len() + 1 + NODE_SIZE).unwrap());
            out.extend_from_slice(padding);
            out.push(height);
            let mut root = [0u8; NODE_SIZE];
            root[NODE_SIZE - 1] = top;
            out.extend_from_slice(&root);
            out
        };
        assert!(PieceRef::from_cid_bytes(&with_digest(&[0], 3, 0)).is_ok());
        assert_eq!(
            PieceRef::from_cid_bytes(&with_digest(&[0], 1, 0)),
            Err(PieceRefError::HeightOutOfRange)
        );
        assert_eq!(
            PieceRef::from_cid_bytes(&with_digest(&[0], 59, 0)),
            Err(PieceRefError::HeightOutOfRange)
        );
        // Height 3 holds 254 payload bytes; a payload of 127 or less is a height-2 piece.
        assert_eq!(
            PieceRef::from_cid_bytes(&with_digest(&[127], 3, 0)),
            Err(PieceRefError::PaddingOutOfRange)
        );
        assert_eq!(
            PieceRef::from_cid_bytes(&with_digest(&[0x80, 0x02], 3, 0)),
            Err(PieceRefError::PaddingOutOfRange)
        );
        assert_eq!(
            PieceRef::from_cid_bytes(&with_digest(&[0], 3, 0x40)),
            Err(PieceRefError::RootNotSha254)
        );
        // A non-minimal varint.
        assert_eq!(
            PieceRef::from_cid_bytes(&with_digest(&[0x80, 0x00], 3, 0)),
            Err(PieceRefError::Malformed)
        );
        assert_eq!(PieceRef::from_cid_bytes(&[]), Err(PieceRefError::Malformed));
    }
}
