//! Files as `UnixFS` DAGs, laid out exactly as Kubo's default importer does.
//!
//! Settings reproduced: `ipfs add --cid-version=1 --raw-leaves --chunker=size-N` with the balanced
//! layout (boxo `ipld/unixfs/importer/balanced`): fixed-size chunks become raw leaves, internal
//! nodes are `dag-pb` `PBNode`s holding up to [`MAX_LINKS`] links and a `UnixFS` `Data` message of type
//! `File` with `filesize` and one `blocksizes` entry per child. A file of one chunk is that raw leaf;
//! an empty file is the empty raw block.
//!
//! The importer is streaming: it holds at most one chunk plus [`MAX_LINKS`] pending links per tree
//! level, and hands every finished block to the caller immediately.

use std::io::Read;

use cid::Cid;

use crate::block::{Block, BlockError, Codec, MAX_BLOCK_SIZE};

/// Kubo's default chunk size (`size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// Links per internal node in Kubo's balanced layout (boxo `helpers.DefaultLinksPerBlock`:
/// 8 KiB of ~47-byte links, rounded down to 174).
pub const MAX_LINKS: usize = 174;

/// `UnixFS` `Data.DataType.File` (unixfs.proto).
pub const UNIXFS_TYPE_FILE: u64 = 2;

/// Why a file could not be imported or a `dag-pb` node could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UnixFsError {
    /// The chunk size is zero or would make leaves larger than a block may be.
    #[error("chunk size {0} is invalid: it must be between 1 and {MAX_BLOCK_SIZE} bytes")]
    InvalidChunkSize(usize),
    /// A block could not be built (too large).
    #[error(transparent)]
    Block(#[from] BlockError),
    /// Reading the file failed.
    #[error("reading the file to import failed: {0}")]
    Io(#[from] std::io::Error),
    /// A `dag-pb` node is not well-formed `protobuf`.
    #[error("malformed dag-pb node: {0}")]
    MalformedDagPb(&'static str),
    /// A `dag-pb` link holds bytes that are not a CID.
    #[error("malformed CID in a dag-pb link: {0}")]
    MalformedLink(#[from] cid::Error),
    /// A directory entry name is empty, holds `/`, or appears twice.
    #[error("directory entry name {0:?} is empty, holds `/` or appears twice")]
    DuplicateName(String),
}

/// The result of importing a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportedFile {
    /// Root CID: what `ipfs add` prints.
    pub root: Cid,
    /// Bytes of file content.
    pub file_size: u64,
    /// Bytes of all blocks of the DAG (the root link's `Tsize`).
    pub dag_size: u64,
}

/// A link to a finished child: what the parent node needs to know about it.
#[derive(Debug, Clone, Copy)]
struct ChildLink {
    cid: Cid,
    /// Cumulative size of the child's DAG (`dag-pb` `Tsize`).
    dag_size: u64,
    /// File bytes below the child (`UnixFS` `blocksizes` entry).
    file_size: u64,
}

/// Streaming `UnixFS` file importer (balanced layout, raw leaves, `CIDv1`).
///
/// Feed bytes with [`FileImporter::write`], then call [`FileImporter::finish`]; both return the
/// blocks completed so far, children before parents, which the caller stores or streams.
#[derive(Debug)]
pub struct FileImporter {
    chunk_size: usize,
    chunk: Vec<u8>,
    /// `levels[0]` holds links to leaves not yet under a node; `levels[i]` links to depth-`i` nodes.
    levels: Vec<Vec<ChildLink>>,
    leaves: u64,
}

impl FileImporter {
    /// An importer cutting chunks of `chunk_size` bytes (Kubo's `--chunker=size-N`).
    ///
    /// # Errors
    /// [`UnixFsError::InvalidChunkSize`] when `chunk_size` is 0 or over [`MAX_BLOCK_SIZE`].
    pub fn new(chunk_size: usize) -> Result<Self, UnixFsError> {
        if chunk_size == 0 || chunk_size > MAX_BLOCK_SIZE {
            return Err(UnixFsError::InvalidChunkSize(chunk_size));
        }
        Ok(Self {
            chunk_size,
            chunk: Vec::with_capacity(chunk_size),
            levels: vec![Vec::new()],
            leaves: 0,
        })
    }

    /// Adds file bytes; returns the blocks this completed.
    ///
    /// # Errors
    /// [`UnixFsError::Block`] if a node would exceed the block limit (cannot happen with valid
    /// chunk sizes, checked anyway).
    pub fn write(&mut self, mut data: &[u8]) -> Result<Vec<Block>, UnixFsError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let take = (self.chunk_size - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.chunk.len() == self.chunk_size {
                self.flush_chunk(&mut out)?;
            }
        }
        Ok(out)
    }

    /// Ends the file; returns its root and the remaining blocks (the root last).
    ///
    /// # Errors
    /// As [`FileImporter::write`].
    pub fn finish(mut self) -> Result<(ImportedFile, Vec<Block>), UnixFsError> {
        let mut out = Vec::new();
        // Kubo's splitter emits the trailing partial chunk, and an empty file becomes one empty leaf.
        if !self.chunk.is_empty() || self.leaves == 0 {
            self.flush_chunk(&mut out)?;
        }
        if self.leaves == 1 {
            let leaf = self.levels[0][0];
            let file = ImportedFile {
                root: leaf.cid,
                file_size: leaf.file_size,
                dag_size: leaf.dag_size,
            };
            return Ok((file, out));
        }
        let mut level = 0;
        loop {
            if level + 1 == self.levels.len() {
                let links = std::mem::take(&mut self.levels[level]);
                let root = emit_node(&links, &mut out)?;
                let file = ImportedFile {
                    root: root.cid,
                    file_size: root.file_size,
                    dag_size: root.dag_size,
                };
                return Ok((file, out));
            }
            if !self.levels[level].is_empty() {
                let links = std::mem::take(&mut self.levels[level]);
                let node = emit_node(&links, &mut out)?;
                self.push_link(level + 1, node, &mut out)?;
            }
            level += 1;
        }
    }

    fn flush_chunk(&mut self, out: &mut Vec<Block>) -> Result<(), UnixFsError> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(self.chunk_size));
        let block = Block::new(Codec::Raw, data)?;
        let size = block.data().len() as u64;
        let link = ChildLink {
            cid: *block.cid(),
            dag_size: size,
            file_size: size,
        };
        out.push(block);
        self.leaves += 1;
        self.push_link(0, link, out)
    }

    /// Appends a link at `level`, first closing that level's node if it is full. Nodes are closed
    /// lazily so that a file ending exactly on a full node gets no extra level, as in Kubo.
    fn push_link(
        &mut self,
        level: usize,
        link: ChildLink,
        out: &mut Vec<Block>,
    ) -> Result<(), UnixFsError> {
        if self.levels.len() == level {
            self.levels.push(Vec::new());
        }
        if self.levels[level].len() == MAX_LINKS {
            let links = std::mem::take(&mut self.levels[level]);
            let node = emit_node(&links, out)?;
            self.push_link(level + 1, node, out)?;
        }
        self.levels[level].push(link);
        Ok(())
    }
}

/// Encodes a `dag-pb` `UnixFS` `File` node over `links`, pushes it to `out`, returns its link.
fn emit_node(links: &[ChildLink], out: &mut Vec<Block>) -> Result<ChildLink, UnixFsError> {
    let bytes = encode_file_node(links);
    let node_size = bytes.len() as u64;
    let block = Block::new(Codec::DagPb, bytes)?;
    let link = ChildLink {
        cid: *block.cid(),
        dag_size: node_size + links.iter().map(|l| l.dag_size).sum::<u64>(),
        file_size: links.iter().map(|l| l.file_size).sum(),
    };
    out.push(block);
    Ok(link)
}

/// An entry of a directory built by [`directory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub name: String,
    pub cid: Cid,
    /// Bytes of the entry's whole DAG (the link's `Tsize`).
    pub dag_size: u64,
}

/// A basic (unsharded) `UnixFS` directory node over `entries`, links sorted by name as Kubo
/// writes them: `PBNode { Links: [PBLink { Hash, Name, Tsize }], Data: unixfs.Data { Type:
/// Directory } }`. Returns the block and the directory's `dag_size`.
///
/// # Errors
/// [`UnixFsError::DuplicateName`] when two entries share a name or a name is empty or holds
/// `/`; a block error when the node exceeds the block size limit.
pub fn directory(entries: &[DirectoryEntry]) -> Result<(Block, u64), UnixFsError> {
    let mut sorted: Vec<&DirectoryEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for (i, e) in sorted.iter().enumerate() {
        if e.name.is_empty() || e.name.contains('/') || (i > 0 && sorted[i - 1].name == e.name) {
            return Err(UnixFsError::DuplicateName(e.name.clone()));
        }
    }
    let mut node = Vec::with_capacity(entries.len() * 64 + 4);
    let mut pb_link = Vec::with_capacity(64);
    for e in &sorted {
        pb_link.clear();
        put_bytes(&mut pb_link, 1, &e.cid.to_bytes());
        put_bytes(&mut pb_link, 2, e.name.as_bytes());
        put_uint(&mut pb_link, 3, e.dag_size);
        put_bytes(&mut node, 2, &pb_link);
    }
    let mut data = Vec::with_capacity(2);
    put_uint(&mut data, 1, UNIXFS_TYPE_DIRECTORY);
    put_bytes(&mut node, 1, &data);
    let size = node.len() as u64 + sorted.iter().map(|e| e.dag_size).sum::<u64>();
    Ok((Block::new(Codec::DagPb, node)?, size))
}

// Protobuf is written by hand here rather than with prost or quick-protobuf: dag-pb's canonical form
// (ipld/specs `dag-pb.md`) puts field 2 (`Links`) before field 1 (`Data`), the reverse of the
// field-number order generated encoders use, and go-merkledag always writes `Name` even when empty.
// Both would need custom encoding anyway; the message set is three small messages.

const WIRE_VARINT: u8 = 0;
const WIRE_LEN: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation keeps the low 7 bits, which is the point of LEB128.
        #[allow(clippy::cast_possible_truncation)]
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    out.push(value as u8);
}

const fn key(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(key(field, WIRE_LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_uint(out: &mut Vec<u8>, field: u8, value: u64) {
    out.push(key(field, WIRE_VARINT));
    put_varint(out, value);
}

/// Encodes `PBNode { Links: [PBLink { Hash, Name: "", Tsize }], Data: unixfs.Data { Type: File,
/// filesize, blocksizes } }`, Links first (`dag-pb` canonical order).
fn encode_file_node(links: &[ChildLink]) -> Vec<u8> {
    let mut node = Vec::with_capacity(links.len() * 48 + 16);
    let mut pb_link = Vec::with_capacity(48);
    for link in links {
        pb_link.clear();
        put_bytes(&mut pb_link, 1, &link.cid.to_bytes());
        put_bytes(&mut pb_link, 2, b"");
        put_uint(&mut pb_link, 3, link.dag_size);
        put_bytes(&mut node, 2, &pb_link);
    }
    let mut data = Vec::with_capacity(links.len() * 4 + 12);
    put_uint(&mut data, 1, UNIXFS_TYPE_FILE);
    put_uint(&mut data, 3, links.iter().map(|l| l.file_size).sum());
    for link in links {
        // proto2 `repeated uint64 blocksizes = 4` is not packed: one key per entry.
        put_uint(&mut data, 4, link.file_size);
    }
    put_bytes(&mut node, 1, &data);
    node
}

/// Reads one `protobuf` varint from the front of `bytes`.
fn take_varint(bytes: &mut &[u8]) -> Result<u64, UnixFsError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes
            .split_first()
            .ok_or(UnixFsError::MalformedDagPb("truncated varint"))?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(UnixFsError::MalformedDagPb("varint longer than 10 bytes"))
}

/// Reads one length-delimited field body from the front of `bytes`.
fn take_len<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], UnixFsError> {
    let len = usize::try_from(take_varint(bytes)?)
        .map_err(|_| UnixFsError::MalformedDagPb("length overflows"))?;
    if len > bytes.len() {
        return Err(UnixFsError::MalformedDagPb(
            "field runs past the end of the node",
        ));
    }
    let (body, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(body)
}

/// One link of a `dag-pb` node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagPbLink<'a> {
    /// The child's CID (`PBLink.Hash`).
    pub cid: Cid,
    /// The link's name (`PBLink.Name`): a directory entry's file name, empty or absent in files.
    pub name: Option<&'a [u8]>,
}

/// A decoded `dag-pb` node, borrowing from the block bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagPbNode<'a> {
    /// `PBNode.Data`: for `UnixFS`, a serialized `unixfs.Data` message.
    pub data: Option<&'a [u8]>,
    /// `PBNode.Links`, in order.
    pub links: Vec<DagPbLink<'a>>,
}

impl DagPbNode<'_> {
    /// The `UnixFS` `Data.Type` of this node (1 directory, 2 file, 5 HAMT shard, ...), if its
    /// `Data` is a `unixfs.Data` message carrying one.
    ///
    /// # Errors
    /// [`UnixFsError::MalformedDagPb`] if `Data` is not well-formed `protobuf`.
    pub fn unixfs_type(&self) -> Result<Option<u64>, UnixFsError> {
        let Some(mut data) = self.data else {
            return Ok(None);
        };
        while !data.is_empty() {
            let field_key = take_varint(&mut data)?;
            match (field_key >> 3, field_key & 7) {
                (1, 0) => return Ok(Some(take_varint(&mut data)?)),
                (_, 0) => {
                    take_varint(&mut data)?;
                }
                (_, 2) => {
                    take_len(&mut data)?;
                }
                _ => return Err(UnixFsError::MalformedDagPb("unknown UnixFS Data wire type")),
            }
        }
        Ok(None)
    }
}

/// How a `UnixFS` file node's bytes are laid out: its own inline bytes first, then its children's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLayout {
    /// Bytes held inline in the node (`Data.Data`), before the children's.
    pub inline_len: u64,
    /// The file size the node declares (`Data.filesize`), if any.
    pub file_size: Option<u64>,
    /// File bytes under each child, in link order (`Data.blocksizes`).
    pub block_sizes: Vec<u64>,
}

impl FileLayout {
    /// The node's file size: declared, or inline bytes plus every child's.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.file_size
            .unwrap_or_else(|| self.inline_len + self.block_sizes.iter().sum::<u64>())
    }
}

impl DagPbNode<'_> {
    /// The byte layout of this node if it is a `UnixFS` file (or raw) node, else `None`.
    ///
    /// # Errors
    /// [`UnixFsError::MalformedDagPb`] if `Data` is not well-formed `protobuf`.
    pub fn unixfs_file_layout(&self) -> Result<Option<FileLayout>, UnixFsError> {
        let Some(mut data) = self.data else {
            return Ok(None);
        };
        let mut kind = None;
        let mut layout = FileLayout {
            inline_len: 0,
            file_size: None,
            block_sizes: Vec::new(),
        };
        while !data.is_empty() {
            let field_key = take_varint(&mut data)?;
            match (field_key >> 3, field_key & 7) {
                (1, 0) => kind = Some(take_varint(&mut data)?),
                (2, 2) => layout.inline_len = take_len(&mut data)?.len() as u64,
                (3, 0) => layout.file_size = Some(take_varint(&mut data)?),
                (4, 0) => layout.block_sizes.push(take_varint(&mut data)?),
                // Some encoders pack `blocksizes`.
                (4, 2) => {
                    let mut packed = take_len(&mut data)?;
                    while !packed.is_empty() {
                        layout.block_sizes.push(take_varint(&mut packed)?);
                    }
                }
                (_, 0) => {
                    take_varint(&mut data)?;
                }
                (_, 2) => {
                    take_len(&mut data)?;
                }
                _ => return Err(UnixFsError::MalformedDagPb("unknown UnixFS Data wire type")),
            }
        }
        // `Raw` (0) and `File` (2) nodes hold file bytes; anything else is not a file.
        Ok(matches!(kind, Some(0 | UNIXFS_TYPE_FILE)).then_some(layout))
    }
}

/// `UnixFS` `Data.DataType.Directory` (unixfs.proto).
pub const UNIXFS_TYPE_DIRECTORY: u64 = 1;

/// Decodes a `dag-pb` node (ipld/specs `dag-pb.md`): `Data` and the links with their names.
///
/// # Errors
/// [`UnixFsError::MalformedDagPb`] or [`UnixFsError::MalformedLink`] on bytes that are not a
/// `dag-pb` node.
pub fn decode_dag_pb(mut node: &[u8]) -> Result<DagPbNode<'_>, UnixFsError> {
    let mut decoded = DagPbNode {
        data: None,
        links: Vec::new(),
    };
    while !node.is_empty() {
        let field_key = take_varint(&mut node)?;
        match field_key {
            // PBNode.Data (field 1, bytes)
            0x0a => decoded.data = Some(take_len(&mut node)?),
            // PBNode.Links (field 2, PBLink)
            0x12 => {
                let mut link = take_len(&mut node)?;
                let mut hash = None;
                let mut name = None;
                while !link.is_empty() {
                    match take_varint(&mut link)? {
                        0x0a => hash = Some(Cid::try_from(take_len(&mut link)?)?),
                        0x12 => name = Some(take_len(&mut link)?),
                        0x18 => {
                            take_varint(&mut link)?;
                        }
                        _ => return Err(UnixFsError::MalformedDagPb("unknown PBLink field")),
                    }
                }
                decoded.links.push(DagPbLink {
                    cid: hash.ok_or(UnixFsError::MalformedDagPb("PBLink without Hash"))?,
                    name,
                });
            }
            _ => return Err(UnixFsError::MalformedDagPb("unknown PBNode field")),
        }
    }
    Ok(decoded)
}

/// The CIDs a `dag-pb` node links to, in order (used to walk DAGs for pins, GC and CAR export).
///
/// # Errors
/// [`UnixFsError::MalformedDagPb`] or [`UnixFsError::MalformedLink`] on bytes that are not a
/// `dag-pb` node.
pub fn dag_pb_links(node: &[u8]) -> Result<Vec<Cid>, UnixFsError> {
    Ok(decode_dag_pb(node)?
        .links
        .into_iter()
        .map(|link| link.cid)
        .collect())
}

/// Imports everything `reader` yields, handing each block to `sink` as soon as it is complete.
///
/// Memory stays bounded by one chunk plus the pending links, whatever the file size.
///
/// # Errors
/// Whatever `sink` returns, or an [`UnixFsError`] (converted into `E`) from reading or chunking.
pub fn import_reader<R, E, S>(
    mut reader: R,
    chunk_size: usize,
    mut sink: S,
) -> Result<ImportedFile, E>
where
    R: Read,
    E: From<UnixFsError>,
    S: FnMut(Block) -> Result<(), E>,
{
    let mut importer = FileImporter::new(chunk_size)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnixFsError::Io(e).into()),
        };
        for block in importer.write(&buf[..read])? {
            sink(block)?;
        }
    }
    let (file, blocks) = importer.finish()?;
    for block in blocks {
        sink(block)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(data: &[u8], chunk_size: usize) -> (ImportedFile, Vec<Block>) {
        let mut blocks = Vec::new();
        let file = import_reader(data, chunk_size, |b| {
            blocks.push(b);
            Ok::<_, UnixFsError>(())
        })
        .unwrap();
        (file, blocks)
    }

    #[test]
    fn directory_lists_its_entries_sorted() {
        // The shape of Kubo's basic directory: links sorted by name, Data = unixfs Type 1.
        let file = |bytes: &[u8]| import(bytes, 1024).0;
        let (a, b) = (file(b"a\n"), file(b"b\n"));
        let entry = |name: &str, f: ImportedFile| DirectoryEntry {
            name: name.into(),
            cid: f.root,
            dag_size: f.dag_size,
        };
        let (dir, size) = directory(&[entry("b.txt", b), entry("a.txt", a)]).unwrap();
        let node = decode_dag_pb(dir.data()).unwrap();
        assert_eq!(node.unixfs_type().unwrap(), Some(UNIXFS_TYPE_DIRECTORY));
        let names: Vec<&[u8]> = node.links.iter().map(|l| l.name.unwrap()).collect();
        assert_eq!(names, vec![b"a.txt".as_slice(), b"b.txt"]);
        assert_eq!(node.links[0].cid, a.root);
        assert_eq!(size, dir.data().len() as u64 + a.dag_size + b.dag_size);
        assert!(directory(&[entry("a.txt", a), entry("a.txt", b)]).is_err());
        assert!(directory(&[entry("x/y", a)]).is_err());
    }

    #[test]
    fn empty_file_is_the_empty_raw_block() {
        let (file, blocks) = import(b"", DEFAULT_CHUNK_SIZE);
        assert_eq!(
            file.root.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert_eq!(blocks.len(), 1);
        assert_eq!(file.file_size, 0);
    }

    #[test]
    fn single_chunk_file_is_its_raw_leaf() {
        // kubo test/sharness/t0124-gateway-ipns-record/README.md (ipfs 0.18.1):
        // `echo "Hello IPFS" | ipfs add --cid-version 1` (raw leaves are the CIDv1 default).
        let (file, blocks) = import(b"Hello IPFS\n", DEFAULT_CHUNK_SIZE);
        assert_eq!(
            file.root.to_string(),
            "bafkreidfdrlkeq4m4xnxuyx6iae76fdm4wgl5d4xzsb77ixhyqwumhz244"
        );
        assert_eq!(blocks.len(), 1);
        let full = vec![7u8; DEFAULT_CHUNK_SIZE];
        let (file, _) = import(&full, DEFAULT_CHUNK_SIZE);
        assert_eq!(file.root, crate::block::cid_of(Codec::Raw, &full));
    }

    #[test]
    fn three_chunk_file_matches_kubo() {
        // discuss.ipfs.tech/t/member-data-of-root-node/15252: Kubo output of
        // `echo "Hello World" | ipfs add --cid-version 1 --chunker=size-4`, whose root Data decodes
        // to base64 "CAIYDCAEIAQgBA" (Type File, filesize 12, blocksizes 4, 4, 4).
        let (file, blocks) = import(b"Hello World\n", 4);
        assert_eq!(
            file.root.to_string(),
            "bafybeiag43jli67lcov4ytqhpfxbodmhp6hjvjh73jrjid7zf73p7a6nqa"
        );
        assert_eq!(blocks.len(), 4);
        let root = blocks.last().unwrap();
        assert!(
            root.data()
                .ends_with(&[0x0a, 10, 0x08, 0x02, 0x18, 12, 0x20, 4, 0x20, 4, 0x20, 4])
        );
        assert_eq!(
            dag_pb_links(root.data()).unwrap(),
            blocks[..3].iter().map(|b| *b.cid()).collect::<Vec<_>>()
        );
        assert_eq!(file.file_size, 12);
    }

    #[test]
    fn balanced_layout_adds_a_level_only_past_174_leaves() {
        let (file, blocks) = import(&[1u8; MAX_LINKS], 1);
        // 174 leaves (only 1 distinct block value, but every leaf is emitted) + 1 root.
        assert_eq!(blocks.len(), MAX_LINKS + 1);
        assert_eq!(
            dag_pb_links(blocks.last().unwrap().data()).unwrap().len(),
            MAX_LINKS
        );
        assert_eq!(file.file_size, MAX_LINKS as u64);

        let (_, blocks) = import(&[1u8; MAX_LINKS + 1], 1);
        // 175 leaves, a full node, a one-leaf node, and a root over both.
        assert_eq!(blocks.len(), MAX_LINKS + 1 + 3);
        assert_eq!(
            dag_pb_links(blocks.last().unwrap().data()).unwrap().len(),
            2
        );
    }

    #[test]
    fn dag_size_is_the_sum_of_all_blocks() {
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| (i % 251).to_le_bytes()[0])
            .collect();
        let (file, blocks) = import(&data, 1000);
        assert_eq!(
            file.dag_size,
            blocks.iter().map(|b| b.data().len() as u64).sum::<u64>()
        );
        assert_eq!(file.file_size, data.len() as u64);
    }

    #[test]
    fn invalid_chunk_sizes_are_rejected() {
        assert!(matches!(
            FileImporter::new(0),
            Err(UnixFsError::InvalidChunkSize(0))
        ));
        assert!(FileImporter::new(MAX_BLOCK_SIZE + 1).is_err());
    }

    #[test]
    fn malformed_dag_pb_is_rejected() {
        assert!(dag_pb_links(&[0x12, 0x05, 0x0a]).is_err());
        assert!(dag_pb_links(&[0x22, 0x00]).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn root_does_not_depend_on_how_writes_are_split(
            data in prop::collection::vec(any::<u8>(), 0..5000),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            chunk_size in 1usize..700,
        ) {
            let mut whole = FileImporter::new(chunk_size).unwrap();
            let mut expected = whole.write(&data).unwrap();
            let (expected_file, rest) = whole.finish().unwrap();
            expected.extend(rest);

            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut split = FileImporter::new(chunk_size).unwrap();
            let mut blocks = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                blocks.extend(split.write(&data[start..cut]).unwrap());
                start = cut;
            }
            let (file, rest) = split.finish().unwrap();
            blocks.extend(rest);
            prop_assert_eq!(file, expected_file);
            prop_assert_eq!(blocks, expected);
            prop_assert_eq!(file.file_size, data.len() as u64);
        }

        #[test]
        fn dag_pb_links_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = dag_pb_links(&bytes);
        }
    }
}
