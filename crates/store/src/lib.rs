//! Content addressing and transport for DataCloud datasets.
//!
//! - [`block`]: `CIDv1` (sha2-256) blocks with the raw, `dag-pb` and dag-cbor codecs, verified on
//!   construction and bounded to [`block::MAX_BLOCK_SIZE`].
//! - [`unixfs`]: files as `UnixFS` DAGs whose root CIDs equal Kubo's
//!   `ipfs add --cid-version=1 --raw-leaves --chunker=size-N`.
//! - [`car`]: streaming `CARv1` writer and a reader that verifies every block and bounds every length.
//! - [`dag`]: the links out of raw, `dag-pb` and dag-cbor blocks.
//! - [`blockstore`]: a redb blockstore with recursive pins, GC and bounded-memory file imports.
//! - [`gateway`]: the IPFS trustless gateway: a server over the blockstore and a client that
//!   verifies every block it fetches before storing it.

pub mod block;
pub mod blockstore;
pub mod car;
pub mod dag;
pub mod gateway;
pub mod unixfs;

pub use block::{Block, BlockError, Codec, MAX_BLOCK_SIZE};
pub use blockstore::{Blockstore, CarExport, GcReport, StoreError};
pub use car::{CarError, CarReader, CarWriter};
pub use unixfs::{
    DEFAULT_CHUNK_SIZE, DirectoryEntry, FileImporter, ImportedFile, UnixFsError, directory,
    import_reader,
};
