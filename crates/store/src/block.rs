//! Blocks: bytes plus the `CIDv1` that names them: sha2-256 for everything this crate creates,
//! and keccak-256 for raw blocks whose digest the contracts already hold (an order's
//! `paramsHash` is the keccak-256 of its canonical parameters, so `CIDv1(raw, keccak-256)` of
//! those bytes is an address anyone can derive from the chain and verify).

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multihash code of sha2-256 (multicodec table).
pub const SHA2_256: u64 = 0x12;
/// Multihash code of keccak-256 (multicodec table), accepted for raw blocks only.
pub const KECCAK_256: u64 = 0x1b;

/// Largest block this crate creates or accepts: 2 MiB.
///
/// Same bound as Kubo: `SoftBlockLimit = 2 * 1024 * 1024` in `core/commands/cmdutils/utils.go`,
/// "the maximum block size for bitswap transfer" per the Bitswap spec
/// (<https://specs.ipfs.tech/bitswap-protocol/#block-sizes>); Kubo refuses bigger blocks unless
/// `--allow-big-block`. A 1 MiB chunk plus `dag-pb` framing always fits. Larger inputs are
/// rejected before hashing.
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// The IPLD codecs a DataCloud block may use (multicodec table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opaque bytes (0x55): `UnixFS` leaves, encrypted chunks.
    Raw,
    /// Protobuf DAG nodes (0x70): `UnixFS` files and directories.
    DagPb,
    /// Deterministic CBOR (0x71): manifests and CAR headers.
    DagCbor,
}

impl Codec {
    /// The multicodec code of this codec.
    #[must_use]
    pub const fn code(self) -> u64 {
        match self {
            Self::Raw => 0x55,
            Self::DagPb => 0x70,
            Self::DagCbor => 0x71,
        }
    }

    /// The codec for a multicodec code.
    ///
    /// # Errors
    /// [`BlockError::UnknownCodec`] for any code other than raw, `dag-pb` or dag-cbor.
    pub const fn from_code(code: u64) -> Result<Self, BlockError> {
        match code {
            0x55 => Ok(Self::Raw),
            0x70 => Ok(Self::DagPb),
            0x71 => Ok(Self::DagCbor),
            other => Err(BlockError::UnknownCodec(other)),
        }
    }
}

/// Why a block or CID was rejected.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The block is over [`MAX_BLOCK_SIZE`].
    #[error(
        "block of {size} bytes exceeds the {MAX_BLOCK_SIZE}-byte limit; use a smaller chunk size"
    )]
    TooLarge {
        /// Size of the rejected block.
        size: usize,
    },
    /// The CID names a codec this crate does not handle.
    #[error(
        "unsupported codec 0x{0:x}: only raw (0x55), dag-pb (0x70) and dag-cbor (0x71) are accepted"
    )]
    UnknownCodec(u64),
    /// The CID is not `CIDv1` with a 32-byte sha2-256 multihash (or keccak-256 for raw).
    #[error(
        "unsupported CID {0}: only CIDv1 with sha2-256 (or keccak-256 for raw blocks) is accepted"
    )]
    UnsupportedCid(Cid),
    /// The data does not hash to the CID.
    #[error("block data does not hash to {cid}: the block is corrupt or was tampered with")]
    HashMismatch {
        /// The CID the data was supposed to match.
        cid: Cid,
    },
}

/// The `CIDv1` of `data` under `codec`, hashed with sha2-256.
///
/// # Panics
/// Never: a sha2-256 digest always fits the multihash buffer.
#[must_use]
pub fn cid_of(codec: Codec, data: &[u8]) -> Cid {
    let digest = Sha256::digest(data);
    // A 32-byte digest always fits the 64-byte multihash buffer, so wrap cannot fail.
    let hash =
        Multihash::<64>::wrap(SHA2_256, &digest).expect("32-byte digest fits a 64-byte multihash");
    Cid::new_v1(codec.code(), hash)
}

/// The `CIDv1` of raw `data` hashed with keccak-256: its digest is the `keccak256(data)` a
/// contract stores.
///
/// # Panics
/// Never: a 32-byte digest always fits the multihash buffer.
#[must_use]
pub fn keccak_raw_cid(data: &[u8]) -> Cid {
    raw_cid_from_keccak(keccak256(data))
}

/// The raw keccak-256 `CIDv1` whose digest is `digest` (for example an order's `paramsHash`).
///
/// # Panics
/// Never: a 32-byte digest always fits the multihash buffer.
#[must_use]
pub fn raw_cid_from_keccak(digest: [u8; 32]) -> Cid {
    let hash = Multihash::<64>::wrap(KECCAK_256, &digest)
        .expect("32-byte digest fits a 64-byte multihash");
    Cid::new_v1(Codec::Raw.code(), hash)
}

fn keccak256(data: &[u8]) -> [u8; 32] {
    use tiny_keccak::Hasher as _;
    let mut out = [0u8; 32];
    let mut hasher = tiny_keccak::Keccak::v256();
    hasher.update(data);
    hasher.finalize(&mut out);
    out
}

/// Checks that `cid` is a `CIDv1` with a 32-byte sha2-256 multihash and a supported codec, or a
/// raw block named by keccak-256.
///
/// # Errors
/// [`BlockError::UnsupportedCid`] or [`BlockError::UnknownCodec`].
pub fn check_cid(cid: &Cid) -> Result<Codec, BlockError> {
    let hash = cid.hash();
    let supported = cid.version() == cid::Version::V1
        && hash.size() == 32
        && (hash.code() == SHA2_256 || (hash.code() == KECCAK_256 && cid.codec() == 0x55));
    if !supported {
        return Err(BlockError::UnsupportedCid(*cid));
    }
    Codec::from_code(cid.codec())
}

/// The CID `data` has under `like`'s codec and hash function.
fn rehash(like: &Cid, codec: Codec, data: &[u8]) -> Cid {
    if like.hash().code() == KECCAK_256 {
        keccak_raw_cid(data)
    } else {
        cid_of(codec, data)
    }
}

/// A block: data that is known to hash to its CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    data: Vec<u8>,
}

impl Block {
    /// Hashes `data` and names it with a new CID.
    ///
    /// # Errors
    /// [`BlockError::TooLarge`] when `data` is over [`MAX_BLOCK_SIZE`].
    pub fn new(codec: Codec, data: Vec<u8>) -> Result<Self, BlockError> {
        if data.len() > MAX_BLOCK_SIZE {
            return Err(BlockError::TooLarge { size: data.len() });
        }
        Ok(Self {
            cid: cid_of(codec, &data),
            data,
        })
    }

    /// Accepts `data` claimed to be the block `cid` (from a CAR, a peer, a disk) after checking it.
    ///
    /// # Errors
    /// [`BlockError::TooLarge`], [`BlockError::UnsupportedCid`], [`BlockError::UnknownCodec`] or
    /// [`BlockError::HashMismatch`].
    pub fn verified(cid: Cid, data: Vec<u8>) -> Result<Self, BlockError> {
        if data.len() > MAX_BLOCK_SIZE {
            return Err(BlockError::TooLarge { size: data.len() });
        }
        let codec = check_cid(&cid)?;
        if rehash(&cid, codec, &data) != cid {
            return Err(BlockError::HashMismatch { cid });
        }
        Ok(Self { cid, data })
    }

    /// The block's CID.
    #[must_use]
    pub const fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The block's bytes.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The block's codec (always supported: checked on construction).
    ///
    /// # Panics
    /// Never: every constructor chose or checked the codec.
    #[must_use]
    pub fn codec(&self) -> Codec {
        // Every constructor either chose the codec or checked it with `check_cid`.
        Codec::from_code(self.cid.codec()).expect("codec checked on construction")
    }

    /// Splits the block into its CID and bytes.
    #[must_use]
    pub fn into_parts(self) -> (Cid, Vec<u8>) {
        (self.cid, self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_raw_block_has_the_well_known_cid() {
        let block = Block::new(Codec::Raw, Vec::new()).unwrap();
        assert_eq!(
            block.cid().to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn hello_ipfs_matches_kubo_fixture() {
        // kubo test/sharness/t0124-gateway-ipns-record/README.md:
        // `echo "Hello IPFS" | ipfs add --cid-version 1` (ipfs 0.18.1).
        let block = Block::new(Codec::Raw, b"Hello IPFS\n".to_vec()).unwrap();
        assert_eq!(
            block.cid().to_string(),
            "bafkreidfdrlkeq4m4xnxuyx6iae76fdm4wgl5d4xzsb77ixhyqwumhz244"
        );
    }

    #[test]
    fn keccak_raw_blocks_carry_the_contract_digest() {
        // keccak256("") as every EVM knows it.
        let cid = keccak_raw_cid(b"");
        assert_eq!(
            cid.hash().digest(),
            hex_digest("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        );
        assert_eq!(cid, raw_cid_from_keccak(keccak256(b"")));
        let block = Block::verified(keccak_raw_cid(b"params"), b"params".to_vec()).unwrap();
        assert_eq!(block.codec(), Codec::Raw);
        assert!(matches!(
            Block::verified(keccak_raw_cid(b"params"), b"paramz".to_vec()),
            Err(BlockError::HashMismatch { .. })
        ));
        // keccak-256 names raw blocks only: a dag-pb node must stay sha2-256.
        let dag_pb = Cid::new_v1(Codec::DagPb.code(), *keccak_raw_cid(b"x").hash());
        assert!(matches!(
            check_cid(&dag_pb),
            Err(BlockError::UnsupportedCid(_))
        ));
    }

    fn hex_digest(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn verified_rejects_tampered_data() {
        let block = Block::new(Codec::DagCbor, b"abc".to_vec()).unwrap();
        let err = Block::verified(*block.cid(), b"abd".to_vec()).unwrap_err();
        assert!(matches!(err, BlockError::HashMismatch { .. }));
        assert!(Block::verified(*block.cid(), b"abc".to_vec()).is_ok());
    }

    #[test]
    fn oversized_blocks_are_rejected() {
        let err = Block::new(Codec::Raw, vec![0; MAX_BLOCK_SIZE + 1]).unwrap_err();
        assert!(matches!(err, BlockError::TooLarge { size } if size == MAX_BLOCK_SIZE + 1));
        assert!(Block::new(Codec::Raw, vec![0; MAX_BLOCK_SIZE]).is_ok());
    }

    #[test]
    fn unknown_codecs_are_rejected() {
        let cid = Cid::new_v1(0x0129, *cid_of(Codec::Raw, b"x").hash());
        assert!(matches!(
            Block::verified(cid, b"x".to_vec()),
            Err(BlockError::UnknownCodec(0x0129))
        ));
    }
}
