//! A local blockstore on redb: verified blocks, recursive pins and garbage collection.
//!
//! Crash safety comes from redb transactions: a block, a batch of blocks or a pin is either fully
//! committed or absent. File imports commit in batches of at most [`IMPORT_BATCH_BYTES`] and write
//! the pin in the same transaction as the last blocks, so a crash mid-import leaves only complete,
//! unpinned blocks that the next [`Blockstore::gc`] removes; memory stays bounded by one batch.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use cid::Cid;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::block::{Block, BlockError, Codec, check_cid};
use crate::car::{CarError, CarReader, CarWriter, encode_header, put_uvarint};
use crate::dag::{LinkError, block_links};
use crate::unixfs::{FileImporter, ImportedFile, UnixFsError, dag_pb_links};

/// CID bytes → block bytes.
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// Recursively pinned root CID bytes → unit.
const PINS: TableDefinition<&[u8], ()> = TableDefinition::new("pins");

/// Blocks of an import are committed once this many bytes are pending.
pub const IMPORT_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// Why a blockstore operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption, another process holding it).
    #[error("blockstore database error: {0}")]
    Database(#[from] redb::Error),
    /// A stored or offered block is invalid (for stored blocks: disk corruption).
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A block's links could not be read while walking a DAG.
    #[error(transparent)]
    Links(#[from] LinkError),
    /// Importing a file failed.
    #[error(transparent)]
    Import(#[from] UnixFsError),
    /// A DAG to pin is incomplete.
    #[error("block {0} is missing from the blockstore; fetch the whole DAG before pinning it")]
    MissingBlock(Cid),
    /// A CAR stream is invalid (nothing from it was stored).
    #[error(transparent)]
    Car(#[from] CarError),
    /// Writing file content out failed.
    #[error("writing the exported data failed: {0}")]
    Io(#[from] std::io::Error),
    /// A `dag-pb` node carries inline data, which files imported with raw leaves never do.
    #[error("block {0} is a dag-pb leaf with inline data; only raw-leaf files are supported")]
    UnsupportedFileNode(Cid),
    /// A file's DAG visits far more nodes than it yields bytes (repeated links to empty or tiny
    /// leaves): a hostile or degenerate DAG, refused before it costs unbounded time.
    #[error(
        "file {0}: its DAG has far more nodes than its bytes justify (repeated or tiny leaves); refused"
    )]
    DegenerateDag(Cid),
    /// Stored key bytes are not a CID (corruption).
    #[error("corrupt blockstore key: {0}")]
    CorruptKey(#[from] cid::Error),
}

macro_rules! redb_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                Self::Database(e.into())
            }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What a garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blocks deleted.
    pub removed_blocks: u64,
    /// Bytes of block data deleted.
    pub removed_bytes: u64,
}

/// A redb-backed blockstore.
#[derive(Debug)]
pub struct Blockstore {
    db: Database,
    /// Held by imports and GC so that a collection never deletes an import's unpinned batches.
    gc_lock: Mutex<()>,
}

impl Blockstore {
    /// Opens the store at `path`, creating it if needed.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the file cannot be opened or created (or is locked by another
    /// process).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(BLOCKS)?;
        txn.open_table(PINS)?;
        txn.commit()?;
        Ok(Self {
            db,
            gc_lock: Mutex::new(()),
        })
    }

    /// Stores one block (atomically; a no-op if present).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn put(&self, block: &Block) -> Result<(), StoreError> {
        self.put_many(std::slice::from_ref(block))
    }

    /// Stores blocks in one transaction: all of them or none.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn put_many(&self, blocks: &[Block]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        insert_blocks(&txn, blocks)?;
        txn.commit()?;
        Ok(())
    }

    /// The block named `cid`, re-verified against its CID (so disk corruption is caught).
    ///
    /// # Errors
    /// [`StoreError::Database`], or [`StoreError::Block`] if the stored bytes no longer match.
    pub fn get(&self, cid: &Cid) -> Result<Option<Block>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let Some(data) = table.get(cid.to_bytes().as_slice())? else {
            return Ok(None);
        };
        Ok(Some(Block::verified(*cid, data.value().to_vec())?))
    }

    /// Whether the block named `cid` is stored.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        Ok(table.get(cid.to_bytes().as_slice())?.is_some())
    }

    /// Pins the DAG under `root` recursively, after checking that every block of it is stored.
    ///
    /// # Errors
    /// [`StoreError::MissingBlock`] if the DAG is incomplete (nothing is pinned then),
    /// [`StoreError::Links`], [`StoreError::Block`] or [`StoreError::Database`].
    pub fn pin(&self, root: &Cid) -> Result<(), StoreError> {
        check_cid(root)?;
        let txn = self.db.begin_write()?;
        {
            let blocks = txn.open_table(BLOCKS)?;
            reachable(&blocks, [*root], true)?;
            txn.open_table(PINS)?
                .insert(root.to_bytes().as_slice(), ())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Removes the pin on `root`; returns whether there was one. Blocks stay until [`Self::gc`].
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn unpin(&self, root: &Cid) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let removed = txn
            .open_table(PINS)?
            .remove(root.to_bytes().as_slice())?
            .is_some();
        txn.commit()?;
        Ok(removed)
    }

    /// The pinned roots.
    ///
    /// # Errors
    /// [`StoreError::Database`] or [`StoreError::CorruptKey`].
    pub fn pins(&self) -> Result<Vec<Cid>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PINS)?;
        let mut pins = Vec::new();
        for entry in table.iter()? {
            pins.push(Cid::try_from(entry?.0.value())?);
        }
        Ok(pins)
    }

    /// Deletes every block not reachable from a pin, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Database`], or [`StoreError::Links`] if a pinned block cannot be parsed
    /// (then nothing is deleted).
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let _guard = self.gc_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let txn = self.db.begin_write()?;
        let mut report = GcReport::default();
        {
            let pins = {
                let table = txn.open_table(PINS)?;
                let mut pins = Vec::new();
                for entry in table.iter()? {
                    pins.push(Cid::try_from(entry?.0.value())?);
                }
                pins
            };
            let mut blocks = txn.open_table(BLOCKS)?;
            let live = reachable(&blocks, pins, false)?;
            blocks.retain(|key, data| {
                let keep = live.contains(key);
                if !keep {
                    report.removed_blocks += 1;
                    report.removed_bytes += data.len() as u64;
                }
                keep
            })?;
        }
        txn.commit()?;
        Ok(report)
    }

    /// Imports a file as a `UnixFS` DAG (see [`crate::unixfs`]) and optionally pins its root.
    ///
    /// Streams: at most one chunk and one batch of [`IMPORT_BATCH_BYTES`] are held in memory.
    ///
    /// # Errors
    /// [`StoreError::Import`] for read or chunking errors, or [`StoreError::Database`].
    pub fn import_file<R: Read>(
        &self,
        reader: R,
        chunk_size: usize,
        pin: bool,
    ) -> Result<ImportedFile, StoreError> {
        self.import_file_in_batches(reader, chunk_size, pin, IMPORT_BATCH_BYTES)
    }

    fn import_file_in_batches<R: Read>(
        &self,
        mut reader: R,
        chunk_size: usize,
        pin: bool,
        batch_bytes: usize,
    ) -> Result<ImportedFile, StoreError> {
        let _guard = self.gc_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut importer = FileImporter::new(chunk_size)?;
        let mut pending: Vec<Block> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnixFsError::Io(e).into()),
            };
            for block in importer.write(&buf[..read])? {
                pending_bytes += block.data().len();
                pending.push(block);
            }
            if pending_bytes >= batch_bytes {
                self.put_many(&pending)?;
                pending.clear();
                pending_bytes = 0;
            }
        }
        let (file, last) = importer.finish()?;
        pending.extend(last);
        let txn = self.db.begin_write()?;
        insert_blocks(&txn, &pending)?;
        if pin {
            txn.open_table(PINS)?
                .insert(file.root.to_bytes().as_slice(), ())?;
        }
        txn.commit()?;
        Ok(file)
    }
}

impl Blockstore {
    /// Imports a `CARv1` stream: every block is verified, and all of them (plus the pins of its
    /// roots, if `pin_roots`) are committed in one transaction, so a tampered, truncated or
    /// incomplete CAR stores nothing.
    ///
    /// # Errors
    /// [`StoreError::Car`] for any invalid stream, [`StoreError::MissingBlock`] if `pin_roots` and
    /// a root's DAG is incomplete, or [`StoreError::Database`].
    pub fn import_car<R: Read>(&self, reader: R, pin_roots: bool) -> Result<Vec<Cid>, StoreError> {
        let _guard = self.gc_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut car = CarReader::new(reader)?;
        let roots = car.roots().to_vec();
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(BLOCKS)?;
            while let Some(block) = car.next_block()? {
                table.insert(block.cid().to_bytes().as_slice(), block.data())?;
            }
            if pin_roots {
                reachable(&table, roots.iter().copied(), true)?;
                let mut pins = txn.open_table(PINS)?;
                for root in &roots {
                    pins.insert(root.to_bytes().as_slice(), ())?;
                }
            }
        }
        txn.commit()?;
        Ok(roots)
    }

    /// Stores a stream of blocks in one transaction, committed only if the stream ends without
    /// an error: a stream that fails part-way (a tampered block, a dropped connection) leaves
    /// the store exactly as it was. With `pin`, that root is pinned in the same transaction after
    /// checking its DAG is complete. Returns the number of blocks stored.
    ///
    /// Memory stays at one block: redb spills the uncommitted transaction to disk.
    ///
    /// # Errors
    /// The stream's first error (nothing is stored then), [`StoreError::MissingBlock`] if `pin`'s
    /// DAG is incomplete, or [`StoreError::Database`].
    pub fn import_blocks<E: From<StoreError>>(
        &self,
        blocks: impl IntoIterator<Item = Result<Block, E>>,
        pin: Option<&Cid>,
    ) -> Result<u64, E> {
        let _guard = self.gc_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        let mut count = 0u64;
        {
            let mut table = txn.open_table(BLOCKS).map_err(StoreError::from)?;
            for block in blocks {
                // An early return drops `txn` uncommitted, which aborts it.
                let block = block?;
                table
                    .insert(block.cid().to_bytes().as_slice(), block.data())
                    .map_err(StoreError::from)?;
                count += 1;
            }
            if let Some(root) = pin {
                reachable(&table, [*root], true)?;
                txn.open_table(PINS)
                    .map_err(StoreError::from)?
                    .insert(root.to_bytes().as_slice(), ())
                    .map_err(StoreError::from)?;
            }
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(count)
    }

    /// Writes the DAG under `root` as a `CARv1` with that single root, blocks in depth-first
    /// pre-order and each block once (the order of Kubo's `ipfs dag export`).
    ///
    /// # Errors
    /// [`StoreError::MissingBlock`] if the DAG is incomplete, [`StoreError::Car`] on write errors,
    /// [`StoreError::Links`], [`StoreError::Block`] or [`StoreError::Database`].
    pub fn export_car<W: std::io::Write>(&self, root: &Cid, writer: W) -> Result<W, StoreError> {
        let mut car = CarWriter::new(writer, &[*root])?;
        let mut seen = HashSet::new();
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let block = self.get(&cid)?.ok_or(StoreError::MissingBlock(cid))?;
            car.write_block(&block)?;
            stack.extend(block_links(&block)?.into_iter().rev());
        }
        Ok(car.finish()?)
    }

    /// Writes the content of the `UnixFS` file `root` (raw leaves) to `out`; returns its size.
    ///
    /// # Errors
    /// [`StoreError::MissingBlock`], [`StoreError::UnsupportedFileNode`], [`StoreError::Io`],
    /// [`StoreError::Import`] for malformed nodes, [`StoreError::Block`] or
    /// [`StoreError::Database`].
    pub fn read_file<W: std::io::Write>(&self, root: &Cid, mut out: W) -> Result<u64, StoreError> {
        let mut written = 0u64;
        let mut visited = 0u64;
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            // A DAG of repeated links to empty leaves writes nothing, so no output limit trips:
            // the walk itself is bounded by the bytes it yields (an honest file's leaves are
            // whole chunks; this allows an average leaf down to `MIN_AVERAGE_LEAF` bytes).
            visited += 1;
            if visited > FILE_NODE_ALLOWANCE + written / MIN_AVERAGE_LEAF
                || stack.len() > MAX_PENDING_LINKS
            {
                return Err(StoreError::DegenerateDag(*root));
            }
            let block = self.get(&cid)?.ok_or(StoreError::MissingBlock(cid))?;
            match block.codec() {
                Codec::Raw => {
                    out.write_all(block.data())?;
                    written += block.data().len() as u64;
                }
                Codec::DagPb => {
                    let links = dag_pb_links(block.data())?;
                    if links.is_empty() {
                        return Err(StoreError::UnsupportedFileNode(cid));
                    }
                    stack.extend(links.into_iter().rev());
                }
                Codec::DagCbor => return Err(StoreError::UnsupportedFileNode(cid)),
            }
        }
        Ok(written)
    }
}

/// Nodes any file may be read through whatever its size (a few thousand: a small file's
/// internal nodes and leaves).
const FILE_NODE_ALLOWANCE: u64 = 4096;
/// The smallest average leaf, in bytes, a file read through more nodes than
/// [`FILE_NODE_ALLOWANCE`] may have.
const MIN_AVERAGE_LEAF: u64 = 64;
/// Most links waiting to be read at once (an honest file has a few hundred per level).
const MAX_PENDING_LINKS: usize = 1 << 20;

impl Blockstore {
    /// The DAG under `root` as a `CARv1` byte stream to pull through [`Read`]: the same bytes as
    /// [`Self::export_car`], produced one block at a time, for consumers that read (hashing a
    /// stored CAR into a piece commitment, an upload body).
    #[must_use]
    pub fn car_export(&self, root: &Cid) -> CarExport<'_> {
        let header = encode_header(&[*root]);
        let mut buf = Vec::with_capacity(header.len() + 10);
        put_uvarint(&mut buf, header.len() as u64);
        buf.extend_from_slice(&header);
        CarExport {
            store: self,
            stack: vec![*root],
            seen: HashSet::new(),
            buf,
            pos: 0,
        }
    }
}

/// A `CARv1` export being read (see [`Blockstore::car_export`]). Memory: one block, the walk's
/// stack and the set of CIDs already written.
///
/// A missing or unreadable block surfaces as an [`std::io::Error`] wrapping the
/// [`StoreError`], so the reader fails instead of producing a short CAR.
#[derive(Debug)]
pub struct CarExport<'a> {
    store: &'a Blockstore,
    stack: Vec<Cid>,
    seen: HashSet<Cid>,
    buf: Vec<u8>,
    pos: usize,
}

impl CarExport<'_> {
    /// Encodes the next block's section into `buf`; `false` when the walk is over.
    fn refill(&mut self) -> Result<bool, StoreError> {
        while let Some(cid) = self.stack.pop() {
            if !self.seen.insert(cid) {
                continue;
            }
            let block = self.store.get(&cid)?.ok_or(StoreError::MissingBlock(cid))?;
            let cid_bytes = cid.to_bytes();
            self.buf.clear();
            self.pos = 0;
            put_uvarint(&mut self.buf, (cid_bytes.len() + block.data().len()) as u64);
            self.buf.extend_from_slice(&cid_bytes);
            self.buf.extend_from_slice(block.data());
            self.stack.extend(block_links(&block)?.into_iter().rev());
            return Ok(true);
        }
        Ok(false)
    }
}

impl Read for CarExport<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() && !self.refill().map_err(std::io::Error::other)? {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn insert_blocks(txn: &WriteTransaction, blocks: &[Block]) -> Result<(), StoreError> {
    let mut table = txn.open_table(BLOCKS)?;
    for block in blocks {
        table.insert(block.cid().to_bytes().as_slice(), block.data())?;
    }
    Ok(())
}

/// CID bytes of every block reachable from `roots`. With `require_all`, a missing block is an
/// error; without (GC), missing blocks are skipped.
fn reachable(
    blocks: &impl ReadableTable<&'static [u8], &'static [u8]>,
    roots: impl IntoIterator<Item = Cid>,
    require_all: bool,
) -> Result<HashSet<Vec<u8>>, StoreError> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Cid> = roots.into_iter().collect();
    while let Some(cid) = stack.pop() {
        let key = cid.to_bytes();
        if seen.contains(&key) {
            continue;
        }
        let Some(data) = blocks.get(key.as_slice())? else {
            if require_all {
                return Err(StoreError::MissingBlock(cid));
            }
            continue;
        };
        let block = Block::verified(cid, data.value().to_vec())?;
        stack.extend(block_links(&block)?);
        seen.insert(key);
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three levels of a thousand links each to one empty raw block: a billion visits that
    /// write nothing, refused after a few thousand.
    #[test]
    fn a_file_of_repeated_links_to_an_empty_leaf_is_refused_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let store = Blockstore::open(dir.path().join("blocks.redb")).unwrap();
        let empty = Block::new(Codec::Raw, Vec::new()).unwrap();
        store.put(&empty).unwrap();
        let mut below = *empty.cid();
        for _ in 0..3 {
            let entries: Vec<crate::DirectoryEntry> = (0..1000)
                .map(|i| crate::DirectoryEntry {
                    name: format!("{i}"),
                    cid: below,
                    dag_size: 0,
                })
                .collect();
            let (node, _) = crate::directory(&entries).unwrap();
            store.put(&node).unwrap();
            below = *node.cid();
        }
        let started = std::time::Instant::now();
        let refused = store.read_file(&below, std::io::sink());
        assert!(
            matches!(refused, Err(StoreError::DegenerateDag(root)) if root == below),
            "{refused:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // An honest multi-chunk file still reads whole.
        let data = vec![5u8; 3 << 20];
        let file = store
            .import_file(data.as_slice(), 16 * 1024, false)
            .unwrap();
        let mut back = Vec::new();
        assert_eq!(store.read_file(&file.root, &mut back).unwrap(), 3 << 20);
        assert_eq!(back, data);
    }
    use crate::block::Codec;

    fn open_temp() -> (tempfile::TempDir, Blockstore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Blockstore::open(dir.path().join("blocks.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn car_export_reads_the_same_bytes_as_export_car() {
        let (_dir, store) = open_temp();
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i * 31 % 251).to_le_bytes()[0])
            .collect();
        let file = store.import_file(data.as_slice(), 4096, true).unwrap();
        let written = store.export_car(&file.root, Vec::new()).unwrap();
        let mut read = Vec::new();
        // Odd-sized reads cross section boundaries.
        let mut export = store.car_export(&file.root);
        let mut buf = [0u8; 1000];
        loop {
            let n = export.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            read.extend_from_slice(&buf[..n]);
        }
        assert_eq!(read, written);

        // A missing block fails the read instead of ending the CAR early.
        let missing = Block::new(Codec::Raw, b"absent".to_vec()).unwrap();
        let err = store
            .car_export(missing.cid())
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn put_get_has() {
        let (_dir, store) = open_temp();
        let block = Block::new(Codec::Raw, b"hello".to_vec()).unwrap();
        assert!(!store.has(block.cid()).unwrap());
        assert_eq!(store.get(block.cid()).unwrap(), None);
        store.put(&block).unwrap();
        assert!(store.has(block.cid()).unwrap());
        assert_eq!(store.get(block.cid()).unwrap(), Some(block));
    }

    #[test]
    fn pinned_dags_survive_gc_and_unpinned_blocks_do_not() {
        let (_dir, store) = open_temp();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 253).to_le_bytes()[0]).collect();
        let file = store.import_file(data.as_slice(), 1024, true).unwrap();
        let stray = Block::new(Codec::Raw, b"stray".to_vec()).unwrap();
        store.put(&stray).unwrap();
        assert_eq!(store.pins().unwrap(), vec![file.root]);

        let report = store.gc().unwrap();
        assert_eq!(
            report,
            GcReport {
                removed_blocks: 1,
                removed_bytes: 5
            }
        );
        assert!(store.has(&file.root).unwrap());
        assert!(!store.has(stray.cid()).unwrap());

        assert!(store.unpin(&file.root).unwrap());
        assert!(!store.unpin(&file.root).unwrap());
        let report = store.gc().unwrap();
        // 40 leaves (distinct contents) and 1 root node.
        assert_eq!(report.removed_blocks, 41);
        assert!(!store.has(&file.root).unwrap());
    }

    #[test]
    fn pinning_an_incomplete_dag_fails_and_pins_nothing() {
        let (_dir, store) = open_temp();
        let mut importer = FileImporter::new(4).unwrap();
        let mut blocks = importer.write(b"0123456789").unwrap();
        let (file, rest) = importer.finish().unwrap();
        blocks.extend(rest);
        // Store the root but not its first leaf.
        store.put_many(&blocks[1..]).unwrap();
        assert!(
            matches!(store.pin(&file.root), Err(StoreError::MissingBlock(cid)) if cid == *blocks[0].cid())
        );
        assert!(store.pins().unwrap().is_empty());
        store.put(&blocks[0]).unwrap();
        store.pin(&file.root).unwrap();
        assert_eq!(store.pins().unwrap(), vec![file.root]);
    }

    #[test]
    fn car_export_import_round_trip_and_read_back() {
        let (_dir, source) = open_temp();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i / 3).to_le_bytes()[0]).collect();
        let file = source.import_file(data.as_slice(), 1000, true).unwrap();
        let car = source.export_car(&file.root, Vec::new()).unwrap();

        let (_dir2, target) = open_temp();
        assert_eq!(
            target.import_car(car.as_slice(), true).unwrap(),
            vec![file.root]
        );
        assert_eq!(target.pins().unwrap(), vec![file.root]);
        let mut out = Vec::new();
        assert_eq!(
            target.read_file(&file.root, &mut out).unwrap(),
            data.len() as u64
        );
        assert_eq!(out, data);
        // Re-export is byte-identical (deterministic order).
        assert_eq!(target.export_car(&file.root, Vec::new()).unwrap(), car);
    }

    #[test]
    fn a_bad_car_stores_nothing() {
        let (_dir, source) = open_temp();
        let data = vec![9u8; 10_000];
        let file = source.import_file(data.as_slice(), 1000, true).unwrap();
        let car = source.export_car(&file.root, Vec::new()).unwrap();

        let (_dir2, target) = open_temp();
        let mut tampered = car.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            target.import_car(tampered.as_slice(), false),
            Err(StoreError::Car(_))
        ));
        assert!(target.import_car(&car[..car.len() - 10], false).is_err());
        assert!(!target.has(&file.root).unwrap());
        assert_eq!(target.gc().unwrap(), GcReport::default());
    }

    /// A reader that fails after `limit` bytes, standing in for a crash mid-import.
    struct FailingReader {
        data: Vec<u8>,
        position: usize,
        limit: usize,
    }

    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.position >= self.limit {
                return Err(std::io::Error::other("disk unplugged"));
            }
            let n = buf
                .len()
                .min(self.limit - self.position)
                .min(self.data.len() - self.position);
            buf[..n].copy_from_slice(&self.data[self.position..self.position + n]);
            self.position += n;
            Ok(n)
        }
    }

    #[test]
    fn batched_import_matches_and_an_interrupted_one_leaves_only_collectable_blocks() {
        let (_dir, store) = open_temp();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i / 7).to_le_bytes()[0]).collect();
        let expected =
            crate::unixfs::import_reader(data.as_slice(), 1024, |_| Ok::<_, UnixFsError>(()))
                .unwrap();
        // Batches of ~16 KiB: many commits before the root is written.
        let file = store
            .import_file_in_batches(data.as_slice(), 1024, true, 16 * 1024)
            .unwrap();
        assert_eq!(file, expected);
        let mut out = Vec::new();
        store.read_file(&file.root, &mut out).unwrap();
        assert_eq!(out, data);

        let (_dir2, store) = open_temp();
        let failing = FailingReader {
            data: data.clone(),
            position: 0,
            limit: 150_000,
        };
        let err = store
            .import_file_in_batches(failing, 1024, true, 16 * 1024)
            .unwrap_err();
        assert!(matches!(err, StoreError::Import(UnixFsError::Io(_))));
        assert!(store.pins().unwrap().is_empty());
        assert!(!store.has(&file.root).unwrap());
        // The committed batches are whole blocks, unpinned, and GC removes them all.
        assert!(store.gc().unwrap().removed_blocks > 0);
        assert_eq!(store.gc().unwrap(), GcReport::default());
    }

    #[test]
    fn store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.redb");
        let block = Block::new(Codec::DagCbor, vec![0xa0]).unwrap();
        {
            let store = Blockstore::open(&path).unwrap();
            store.put(&block).unwrap();
            store.pin(block.cid()).unwrap();
        }
        let store = Blockstore::open(&path).unwrap();
        assert_eq!(store.get(block.cid()).unwrap(), Some(block.clone()));
        assert_eq!(store.pins().unwrap(), vec![*block.cid()]);
    }
}
