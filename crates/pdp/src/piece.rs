//! Piece sizes: how a payload of any length becomes a Filecoin piece whose fr32-padded form is a
//! perfect binary tree of 32-byte leaves.

use thiserror::Error;

use crate::fr32::{FR32_PADDED_CHUNK, FR32_UNPADDED_CHUNK};
use crate::merkle::NODE_SIZE;

pub use crate::piece_ref::{MAX_PIECE_HEIGHT, MIN_PIECE_HEIGHT};

/// Why a payload cannot be committed to or proven.
#[derive(Debug, Error)]
pub enum PieceError {
    /// The payload is larger than the largest piece (see [`MAX_PIECE_HEIGHT`]).
    #[error("a {size}-byte payload exceeds the largest piece ({max} bytes)")]
    PayloadTooLarge {
        /// The payload's size (or the bytes read so far).
        size: u64,
        /// The largest payload a piece can hold.
        max: u64,
    },
    /// Reading the payload failed.
    #[error("reading the piece payload failed: {0}")]
    Io(#[from] std::io::Error),
    /// A tree of fewer leaves than the smallest piece (4).
    #[error("a tree of {leaf_count} leaves is smaller than the smallest piece (4 leaves)")]
    TreeTooSmall {
        /// Its leaves.
        leaf_count: u64,
    },
    /// A proof was asked for a leaf the piece does not have.
    #[error("leaf {index} is outside the piece's {leaf_count} leaves")]
    LeafOutOfRange {
        /// The requested leaf.
        index: u64,
        /// The piece's leaf count.
        leaf_count: u64,
    },
    /// The payload on disk no longer matches the commitment it was opened with (its length or a
    /// segment's bytes changed): re-open the prover, and re-register the piece if it is meant to
    /// change.
    #[error("the piece payload changed since it was committed to ({what})")]
    PieceChanged {
        /// What differs.
        what: &'static str,
    },
}

/// The size of a piece built from a payload: the payload is zero-filled to the smallest unpadded
/// piece size `127 · 2^k ≥ max(payload, 127)`, whose fr32-padded form is `128 · 2^k` bytes, a
/// perfect binary tree of `4 · 2^k` leaves (FRC-0069; Lotus' `abi.PaddedPieceSize`).
///
/// An empty payload is accepted: FRC-0069's test cases define its piece (127 bytes of padding,
/// height 2), so refusing it would reject a CID other implementations produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceSize {
    payload: u64,
    height: u8,
}

impl PieceSize {
    /// The piece of `height` whose payload fills it exactly (no padding), as a tree of
    /// `2^height` leaves describes it.
    ///
    /// # Errors
    /// [`PieceError::TreeTooSmall`] / [`PieceError::PayloadTooLarge`] outside
    /// `MIN_PIECE_HEIGHT..=MAX_PIECE_HEIGHT`.
    pub fn full(height: u8) -> Result<Self, PieceError> {
        let payload = height
            .checked_sub(MIN_PIECE_HEIGHT)
            .and_then(|shift| (FR32_UNPADDED_CHUNK as u64).checked_shl(u32::from(shift)))
            .ok_or(PieceError::TreeTooSmall {
                leaf_count: 1u64.checked_shl(u32::from(height)).unwrap_or(0),
            })?;
        Self::for_payload(payload)
    }

    /// The piece a payload of `payload` bytes is padded into.
    ///
    /// # Errors
    /// [`PieceError::PayloadTooLarge`] beyond [`PieceSize::max_payload`].
    pub fn for_payload(payload: u64) -> Result<Self, PieceError> {
        let max = Self::max_payload();
        if payload > max {
            return Err(PieceError::PayloadTooLarge { size: payload, max });
        }
        let chunks = payload
            .div_ceil(FR32_UNPADDED_CHUNK as u64)
            .max(1)
            .next_power_of_two();
        // `chunks <= 2^56`, so its log2 fits a u8 with room to spare.
        #[allow(clippy::cast_possible_truncation)]
        let height = MIN_PIECE_HEIGHT + chunks.trailing_zeros() as u8;
        Ok(Self { payload, height })
    }

    /// The largest payload a piece can hold: the unpadded size at [`MAX_PIECE_HEIGHT`].
    #[must_use]
    pub const fn max_payload() -> u64 {
        (FR32_UNPADDED_CHUNK as u64) << (MAX_PIECE_HEIGHT - MIN_PIECE_HEIGHT)
    }

    /// Bytes of payload (before zero-filling).
    #[must_use]
    pub const fn payload_size(&self) -> u64 {
        self.payload
    }

    /// Height of the piece tree: log2 of its leaf count.
    #[must_use]
    pub const fn height(&self) -> u8 {
        self.height
    }

    /// Number of 32-byte leaves of the padded piece.
    #[must_use]
    pub const fn leaf_count(&self) -> u64 {
        1 << self.height
    }

    /// Size after fr32 padding (Filecoin's `PaddedPieceSize`): `32 · 2^height`.
    #[must_use]
    pub const fn padded_size(&self) -> u64 {
        (NODE_SIZE as u64) << self.height
    }

    /// Size before fr32 padding (Filecoin's `UnpaddedPieceSize`): `127 · 2^(height − 2)`.
    #[must_use]
    pub const fn unpadded_size(&self) -> u64 {
        self.padded_size() / FR32_PADDED_CHUNK as u64 * FR32_UNPADDED_CHUNK as u64
    }

    /// Zero bytes appended to the payload to fill the piece (FRC-0069's "padding").
    #[must_use]
    pub const fn padding(&self) -> u64 {
        self.unpadded_size() - self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_smallest_power_of_two_piece() {
        let cases: [(u64, u8, u64); 10] = [
            (0, 2, 127),
            (1, 2, 127),
            (126, 2, 127),
            (127, 2, 127),
            (128, 3, 254),
            (254, 3, 254),
            (255, 4, 508),
            (256, 4, 508),
            (1000, 5, 1016),
            ((1 << 16) + 3, 12, 127 << 10),
        ];
        for (payload, height, unpadded) in cases {
            let size = PieceSize::for_payload(payload).unwrap();
            assert_eq!(size.height(), height, "payload {payload}");
            assert_eq!(size.unpadded_size(), unpadded, "payload {payload}");
            assert_eq!(size.padded_size(), unpadded / 127 * 128);
            assert_eq!(size.leaf_count() * 32, size.padded_size());
            assert_eq!(size.padding(), unpadded - payload);
        }
        // FRC-0069's examples: 12 bytes → 115 of padding; 256 bytes → 252.
        assert_eq!(PieceSize::for_payload(12).unwrap().padding(), 115);
        assert_eq!(PieceSize::for_payload(256).unwrap().padding(), 252);
    }

    #[test]
    fn the_largest_piece_is_bounded() {
        let max = PieceSize::max_payload();
        let size = PieceSize::for_payload(max).unwrap();
        assert_eq!(size.height(), MAX_PIECE_HEIGHT);
        assert!(size.unpadded_size() < 1 << 63);
        assert!(matches!(
            PieceSize::for_payload(max + 1),
            Err(PieceError::PayloadTooLarge { .. })
        ));
    }
}
