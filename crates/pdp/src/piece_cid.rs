//! Piece CIDs: the two CID forms of a piece commitment.
//!
//! - **v2** (FRC-0069, "Piece Multihash and v2 Piece CID"): `CIDv1`, codec raw (`0x55`), multihash
//!   `fr32-sha2-256-trunc254-padded-binary-tree` (`0x1011`) whose digest is
//!   `uvarint(padding) ‖ height (1 byte) ‖ root (32 bytes)`. It carries the piece's size, so it
//!   names a piece on its own; this is the form DataCloud registers.
//! - **v1** (Lotus / `go-fil-commcid`): `CIDv1`, codec `fil-commitment-unsealed` (`0xf101`),
//!   multihash `sha2-256-trunc254-padded` (`0x1012`), digest = the root alone. It needs the size
//!   beside it (Lotus' `PieceInfo`), so it is offered for interoperability only.

use std::fmt;
use std::str::FromStr;

use cid::Cid;
use multihash::Multihash;
use thiserror::Error;

use crate::commp::PieceCommitment;
use crate::merkle::{NODE_SIZE, Node};
use crate::piece::{MAX_PIECE_HEIGHT, MIN_PIECE_HEIGHT, PieceSize};

/// Multicodec `raw`: the codec of a v2 PieceCID (a piece's bytes have no IPLD meaning).
pub const RAW: u64 = 0x55;
/// Multicodec `fil-commitment-unsealed`: the codec of a v1 PieceCID.
pub const FIL_COMMITMENT_UNSEALED: u64 = 0xf101;
/// Multihash `fr32-sha2-256-trunc254-padded-binary-tree` (FRC-0069): the v2 PieceCID's hash.
pub const FR32_SHA256_TRUNC254_PADDED_BINARY_TREE: u64 = 0x1011;
/// Multihash `sha2-256-trunc254-padded`: the v1 PieceCID's hash.
pub const SHA2_256_TRUNC254_PADDED: u64 = 0x1012;

/// The longest unsigned varint the multiformats spec allows (63 bits of value).
const MAX_UVARINT_LEN: usize = 9;

/// Why a CID is not a valid PieceCID.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PieceCidError {
    /// The text or bytes are not a CID at all.
    #[error("not a CID: {0}")]
    NotACid(String),
    /// A `CIDv0` (piece CIDs are always `CIDv1`).
    #[error("a PieceCID is a CIDv1, this is a CIDv0")]
    NotCidV1,
    /// The CID's codec is not the one this PieceCID version uses.
    #[error("codec {found:#x} is not a PieceCID's (expected {expected:#x})")]
    WrongCodec {
        /// The codec this version needs.
        expected: u64,
        /// The CID's codec.
        found: u64,
    },
    /// The multihash is not the one this PieceCID version uses.
    #[error("multihash {found:#x} is not a PieceCID's (expected {expected:#x})")]
    WrongMultihash {
        /// The multihash this version needs.
        expected: u64,
        /// The CID's multihash code.
        found: u64,
    },
    /// The digest does not have the layout of this PieceCID version.
    #[error("malformed PieceCID digest: {0}")]
    MalformedDigest(&'static str),
    /// The tree height is outside what a piece can have.
    #[error(
        "tree height {height} is outside {MIN_PIECE_HEIGHT}..={MAX_PIECE_HEIGHT} (a piece is at least one 128-byte fr32 chunk)"
    )]
    HeightOutOfRange {
        /// The digest's height byte.
        height: u8,
    },
    /// The padding does not fit the tree: FRC-0069 requires the payload to be more than half of
    /// the piece (else a lower tree would have been used), except that payloads under 127 bytes
    /// are padded to 127.
    #[error("padding {padding} does not fit a piece of height {height}")]
    PaddingOutOfRange {
        /// The digest's padding.
        padding: u64,
        /// The digest's height.
        height: u8,
    },
    /// The payload size given with a v1 PieceCID exceeds the largest piece.
    #[error("a {size}-byte payload exceeds the largest piece")]
    PayloadTooLarge {
        /// The payload size given.
        size: u64,
    },
    /// The root has one of its top two bits set, so no SHA254 tree produced it.
    #[error("the root is not a SHA254 digest (a top bit of its last byte is set)")]
    RootNotSha254,
}

impl PieceCommitment {
    /// The v2 PieceCID (FRC-0069) of this commitment.
    #[must_use]
    pub fn to_piece_cid_v2(&self) -> Cid {
        let size = self.size();
        let mut digest = Vec::with_capacity(MAX_UVARINT_LEN + 1 + NODE_SIZE);
        write_uvarint(size.padding(), &mut digest);
        digest.push(size.height());
        digest.extend_from_slice(&self.root());
        Cid::new_v1(RAW, wrap(FR32_SHA256_TRUNC254_PADDED_BINARY_TREE, &digest))
    }

    /// The v1 PieceCID of this commitment's root (the size is not part of it).
    #[must_use]
    pub fn to_piece_cid_v1(&self) -> Cid {
        piece_cid_v1(&self.root())
    }

    /// Reads a v2 PieceCID back, validating every field.
    ///
    /// # Errors
    /// [`PieceCidError`] naming the first field that is wrong.
    pub fn from_piece_cid_v2(cid: &Cid) -> Result<Self, PieceCidError> {
        let digest = expect_piece_cid(cid, RAW, FR32_SHA256_TRUNC254_PADDED_BINARY_TREE)?;
        let (padding, rest) = read_uvarint(digest)?;
        let [height, root @ ..] = rest else {
            return Err(PieceCidError::MalformedDigest("no tree height"));
        };
        let root: Node = root
            .try_into()
            .map_err(|_| PieceCidError::MalformedDigest("the root is not 32 bytes"))?;
        if !(MIN_PIECE_HEIGHT..=MAX_PIECE_HEIGHT).contains(height) {
            return Err(PieceCidError::HeightOutOfRange { height: *height });
        }
        let out_of_range = PieceCidError::PaddingOutOfRange {
            padding,
            height: *height,
        };
        let unpadded = (crate::fr32::FR32_UNPADDED_CHUNK as u64) << (height - MIN_PIECE_HEIGHT);
        let payload = unpadded.checked_sub(padding).ok_or(out_of_range.clone())?;
        // The padding is canonical only if this payload makes a piece of exactly this height.
        let size = PieceSize::for_payload(payload).map_err(|_| out_of_range.clone())?;
        if size.height() != *height {
            return Err(out_of_range);
        }
        check_root(&root)?;
        Ok(Self::new(root, size))
    }

    /// Pairs a v1 PieceCID with the payload size it was computed from (Lotus' `PieceInfo` plus
    /// the unpadded length), giving what a v2 PieceCID says.
    ///
    /// # Errors
    /// [`PieceCidError`] when the CID is not a v1 PieceCID, or the size exceeds the largest piece.
    pub fn from_piece_cid_v1(cid: &Cid, payload_size: u64) -> Result<Self, PieceCidError> {
        let root = piece_root_from_cid_v1(cid)?;
        let size = PieceSize::for_payload(payload_size)
            .map_err(|_| PieceCidError::PayloadTooLarge { size: payload_size })?;
        Ok(Self::new(root, size))
    }
}

/// Displays the v2 PieceCID in its canonical text form (base32, `bafkzcib…`).
impl fmt::Display for PieceCommitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_piece_cid_v2(), f)
    }
}

/// Parses a v2 PieceCID from any multibase text form.
impl FromStr for PieceCommitment {
    type Err = PieceCidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cid = Cid::try_from(s).map_err(|e| PieceCidError::NotACid(e.to_string()))?;
        Self::from_piece_cid_v2(&cid)
    }
}

/// The v1 PieceCID (`fil-commitment-unsealed`, `sha2-256-trunc254-padded`) of a CommP root.
#[must_use]
pub fn piece_cid_v1(root: &Node) -> Cid {
    Cid::new_v1(
        FIL_COMMITMENT_UNSEALED,
        wrap(SHA2_256_TRUNC254_PADDED, root),
    )
}

/// The CommP root inside a v1 PieceCID.
///
/// # Errors
/// [`PieceCidError`] when the CID is not a v1 PieceCID.
pub fn piece_root_from_cid_v1(cid: &Cid) -> Result<Node, PieceCidError> {
    let digest = expect_piece_cid(cid, FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED)?;
    let root: Node = digest
        .try_into()
        .map_err(|_| PieceCidError::MalformedDigest("the root is not 32 bytes"))?;
    check_root(&root)?;
    Ok(root)
}

/// Wraps a digest of at most 42 bytes into a multihash (capacity 64, so it cannot fail).
fn wrap(code: u64, digest: &[u8]) -> Multihash<64> {
    Multihash::wrap(code, digest).expect("PieceCID digests are at most 42 bytes")
}

fn expect_piece_cid(cid: &Cid, codec: u64, hash: u64) -> Result<&[u8], PieceCidError> {
    if cid.version() != cid::Version::V1 {
        return Err(PieceCidError::NotCidV1);
    }
    if cid.codec() != codec {
        return Err(PieceCidError::WrongCodec {
            expected: codec,
            found: cid.codec(),
        });
    }
    if cid.hash().code() != hash {
        return Err(PieceCidError::WrongMultihash {
            expected: hash,
            found: cid.hash().code(),
        });
    }
    Ok(cid.hash().digest())
}

fn check_root(root: &Node) -> Result<(), PieceCidError> {
    if root[NODE_SIZE - 1] & 0xc0 == 0 {
        Ok(())
    } else {
        Err(PieceCidError::RootNotSha254)
    }
}

/// Unsigned LEB128 varint, as multiformats' `unsigned-varint` writes it.
#[allow(clippy::cast_possible_truncation)] // Each cast keeps the low 7 bits, by design.
fn write_uvarint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        // The low 7 bits, with the continuation bit.
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint from the front of `bytes`, refusing over-long and non-minimal encodings (the
/// `unsigned-varint` spec requires the minimal form, at most 9 bytes).
fn read_uvarint(bytes: &[u8]) -> Result<(u64, &[u8]), PieceCidError> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(MAX_UVARINT_LEN) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(PieceCidError::MalformedDigest(
                    "the padding varint is not minimal",
                ));
            }
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err(PieceCidError::MalformedDigest(
        "the padding varint is truncated or longer than 9 bytes",
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{commp, zero_subtree_root};

    /// FRC-0069's first test payload: 127 bytes of each of 0, 1, 2, 3.
    fn frc_quads() -> Vec<u8> {
        (0u8..4).flat_map(|b| [b; 127]).collect()
    }

    fn v2(payload: &[u8]) -> String {
        commp(payload).unwrap().to_string()
    }

    #[test]
    fn frc_0069_test_cases() {
        // Every value below is quoted from FRC-0069 § Test Cases (filecoin-project/FIPs,
        // FRCs/frc-0069.md).
        let quads = frc_quads();
        let c = commp(&quads).unwrap();
        assert_eq!(
            c.to_piece_cid_v1().to_string(),
            "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"
        );
        assert_eq!(
            c.to_string(),
            "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"
        );
        assert_eq!(
            c.to_piece_cid_v2()
                .to_string_of_base(cid::multibase::Base::Base16Lower)
                .unwrap(),
            "f01559120220004496dae0cc9e265efe5a006e80626a5dc5c409e5d3155c13984caf6c8d5cfd605"
        );
        // Empty payload: 127 bytes of padding.
        assert_eq!(
            v2(&[]),
            "bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"
        );
        // 127 zeros: no padding, height 2.
        let zeros = commp(&[0; 127]).unwrap();
        assert_eq!((zeros.size().padding(), zeros.size().height()), (0, 2));
        assert_eq!(
            zeros.to_string(),
            "bafkzcibcaabdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"
        );
        // 128 zeros: 126 bytes of padding, height 3.
        let zeros = commp(&[0; 128]).unwrap();
        assert_eq!((zeros.size().padding(), zeros.size().height()), (126, 3));
        assert_eq!(
            zeros.to_string(),
            "bafkzcibcpybwiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy"
        );
        // 127·8 bytes: the quads then 127·4 zeros; no padding.
        let mut eight = quads.clone();
        eight.resize(127 * 8, 0);
        let c8 = commp(&eight).unwrap();
        assert_eq!(
            c8.to_piece_cid_v1().to_string(),
            "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa"
        );
        assert_eq!(
            c8.to_string(),
            "bafkzcibcaac542av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa"
        );
        // 128·4 bytes (quads + 4 zeros): 504 bytes of padding, same root.
        let mut c512 = quads.clone();
        c512.resize(128 * 4, 0);
        let c512 = commp(&c512).unwrap();
        assert_eq!(c512.root(), c8.root());
        assert_eq!(c512.size().padding(), 504);
        assert_eq!(
            c512.to_string(),
            "bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4"
        );
        // One more zero: 503 bytes of padding.
        let mut c513 = quads;
        c513.resize(128 * 4 + 1, 0);
        assert_eq!(
            v2(&c513),
            "bafkzcibd64bqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4"
        );
    }

    #[test]
    fn frc_0069_empty_32_and_64_gib_pieces() {
        for (height, v1, v2) in [
            (
                30,
                "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
                "bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
            ),
            (
                31,
                "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq",
                "bafkzcibcaap6mqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq",
            ),
        ] {
            let root = zero_subtree_root(height).unwrap();
            assert_eq!(piece_cid_v1(&root).to_string(), v1);
            let v1_cid = Cid::try_from(v1).unwrap();
            let full = 127u64 << (height - 2);
            let c = PieceCommitment::from_piece_cid_v1(&v1_cid, full).unwrap();
            assert_eq!(c.to_string(), v2);
            assert_eq!(v2.parse::<PieceCommitment>().unwrap(), c);
        }
    }

    #[test]
    fn text_forms_have_the_expected_prefixes() {
        let c = commp(&[9; 3000]).unwrap();
        assert!(c.to_string().starts_with("bafkzcib"));
        assert!(c.to_piece_cid_v1().to_string().starts_with("baga6ea4sea"));
    }

    #[test]
    fn bad_cids_are_refused() {
        let c = commp(&frc_quads()).unwrap();
        let v1 = c.to_piece_cid_v1();
        let v2 = c.to_piece_cid_v2();
        assert!(matches!(
            PieceCommitment::from_piece_cid_v2(&v1),
            Err(PieceCidError::WrongCodec { .. })
        ));
        assert!(matches!(
            piece_root_from_cid_v1(&v2),
            Err(PieceCidError::WrongCodec { .. })
        ));
        let raw_sha256 = Cid::new_v1(RAW, wrap(0x12, &[0; 32]));
        assert!(matches!(
            PieceCommitment::from_piece_cid_v2(&raw_sha256),
            Err(PieceCidError::WrongMultihash { .. })
        ));
        assert!(matches!(
            "bafkzcibnotacid".parse::<PieceCommitment>(),
            Err(PieceCidError::NotACid(_))
        ));
        let root = c.root();
        let with = |digest: &[u8]| {
            PieceCommitment::from_piece_cid_v2(&Cid::new_v1(
                RAW,
                wrap(FR32_SHA256_TRUNC254_PADDED_BINARY_TREE, digest),
            ))
        };
        let digest = |padding: &[u8], height: u8, root: &[u8]| {
            let mut d = padding.to_vec();
            d.push(height);
            d.extend_from_slice(root);
            d
        };
        assert_eq!(with(&digest(&[0], 4, &root)).unwrap(), c);
        assert_eq!(
            with(&digest(&[0], 1, &root)),
            Err(PieceCidError::HeightOutOfRange { height: 1 })
        );
        assert_eq!(
            with(&digest(&[0], 64, &root)),
            Err(PieceCidError::HeightOutOfRange { height: 64 })
        );
        // Height 4 holds 508 bytes; padding 254 leaves 254, which a height-3 piece holds.
        assert!(matches!(
            with(&digest(&[0xfe, 0x01], 4, &root)),
            Err(PieceCidError::PaddingOutOfRange { padding: 254, .. })
        ));
        assert!(matches!(
            with(&digest(&[0x80, 0x00], 4, &root)),
            Err(PieceCidError::MalformedDigest(_))
        ));
        assert!(matches!(
            with(&digest(&[0], 4, &root[..31])),
            Err(PieceCidError::MalformedDigest(_))
        ));
        assert!(matches!(
            with(&[0x80]),
            Err(PieceCidError::MalformedDigest(_))
        ));
        let mut bad_root = root;
        bad_root[31] |= 0x80;
        assert_eq!(
            with(&digest(&[0], 4, &bad_root)),
            Err(PieceCidError::RootNotSha254)
        );
    }

    proptest! {
        #[test]
        fn v2_and_v1_round_trip(
            payload in 0u64..=PieceSize::max_payload(),
            mut root in any::<[u8; 32]>(),
        ) {
            root[31] &= 0x3f;
            let c = PieceCommitment::new(root, PieceSize::for_payload(payload).unwrap());
            prop_assert_eq!(PieceCommitment::from_piece_cid_v2(&c.to_piece_cid_v2()).unwrap(), c);
            prop_assert_eq!(c.to_string().parse::<PieceCommitment>().unwrap(), c);
            let bytes = c.to_piece_cid_v2().to_bytes();
            prop_assert_eq!(PieceCommitment::from_piece_cid_v2(&Cid::try_from(bytes).unwrap()).unwrap(), c);
            prop_assert_eq!(piece_root_from_cid_v1(&c.to_piece_cid_v1()).unwrap(), root);
            prop_assert_eq!(PieceCommitment::from_piece_cid_v1(&c.to_piece_cid_v1(), payload).unwrap(), c);
        }
    }
}
