//! # datacloud-package — the dataset package and order parameters
//!
//! A seller publishes a dataset as one `UnixFS` directory whose root CID is the dataset's
//! `manifestCid` on chain:
//!
//! | entry | what |
//! |---|---|
//! | `manifest.json` | [`Manifest`]: name, description, schema, layout (widths, days, cube), templates, provenance |
//! | `server-key.bin` | the compressed TFHE server key ([`datacloud_fhe_query::EvaluationKey`]) |
//! | `cube.bin` | the encrypted aggregate cube, when the layout has one |
//! | `totals.bin` | the encrypted sums over all rows, when the layout has them |
//! | `chunk-00000.bin` … | encrypted row chunks |
//!
//! Workers fetch the manifest first ([`fetch_manifest`]), plan the order on its layout, then
//! fetch through trustless gateways (every block verified against its CID) only the entries
//! their plan reads ([`entries_for`], [`fetch_entries`]) and read them from a [`Package`].
//!
//! An order's parameters travel as one raw block named by `CIDv1(raw, keccak-256)`: its digest
//! is the `paramsHash` the buyer paid for, so anyone holding the order can derive the CID,
//! fetch the block and know it is the right one ([`params_block`], [`params_cid`],
//! [`query_from_params`]).

use std::sync::Arc;

use cid::Cid;
use datacloud_fhe_query::encrypt::{EncryptedChunk, EncryptedCube, EncryptedTotals};
use datacloud_fhe_query::{EncryptedDataset, EvaluationKey};
use datacloud_query::{LayoutHeader, Plan, PlanKind, Query, Schema};
use datacloud_store::block::{keccak_raw_cid, raw_cid_from_keccak};
use datacloud_store::{Block, Blockstore, DirectoryEntry, directory};
use serde::{Deserialize, Serialize};

/// The manifest entry.
pub const MANIFEST: &str = "manifest.json";
/// The compressed server key entry.
pub const SERVER_KEY: &str = "server-key.bin";
/// The aggregate cube entry.
pub const CUBE: &str = "cube.bin";
/// The dataset's sums over all rows (see `datacloud_fhe_query::encrypt::EncryptedTotals`).
pub const TOTALS: &str = "totals.bin";
/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Largest order parameters block.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;
/// Most entries in a dataset directory (chunks included).
#[allow(clippy::cast_possible_truncation)] // 2^16 + 8 fits every usize.
pub const MAX_ENTRIES: usize = datacloud_query::layout::MAX_CHUNKS as usize + 8;

/// The name of chunk `i`.
#[must_use]
pub fn chunk_name(i: usize) -> String {
    format!("chunk-{i:05}.bin")
}

/// Why a package or parameters cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] datacloud_store::StoreError),
    /// Building the directory failed.
    #[error(transparent)]
    UnixFs(#[from] datacloud_store::UnixFsError),
    /// A gateway failed or sent bad data.
    #[error(transparent)]
    Gateway(Box<datacloud_store::gateway::ClientError>),
    /// A block is malformed.
    #[error(transparent)]
    Block(#[from] datacloud_store::BlockError),
    /// A ciphertext container is malformed.
    #[error(transparent)]
    Layout(#[from] datacloud_fhe_query::LayoutError),
    /// The server key is malformed.
    #[error(transparent)]
    Key(#[from] datacloud_fhe_query::KeyError),
    /// The plan does not apply to the package's layout.
    #[error(transparent)]
    Plan(#[from] datacloud_query::QueryError),
    /// The package is not a dataset directory, or lacks an entry.
    #[error("dataset {root}: {reason}")]
    Invalid {
        /// The package root.
        root: Cid,
        /// What is wrong.
        reason: String,
    },
    /// The order parameters are not what the order paid for.
    #[error("order parameters: {0}")]
    Params(String),
}

impl From<datacloud_store::gateway::ClientError> for PackageError {
    fn from(e: datacloud_store::gateway::ClientError) -> Self {
        Self::Gateway(Box::new(e))
    }
}

/// Where the data came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// What produced the rows (`datacloud data synth`, a CSV file name, …).
    pub source: String,
    /// Rows encrypted.
    pub rows: u64,
    /// The chain the dataset was registered on.
    pub chain_id: u64,
}

/// The public description of a dataset: all a buyer sees and all a worker needs to plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Display name.
    pub name: String,
    /// What the data is.
    pub description: String,
    /// The schema file (TOML), as the seller wrote it.
    pub schema: String,
    /// The encrypted layout: widths, day coverage, chunking, cube.
    pub layout: LayoutHeader,
    /// The templates the seller allows.
    pub templates: Vec<String>,
    /// The encryption parameters, in words.
    pub encryption: String,
    /// Where the data came from.
    pub provenance: Provenance,
    /// Statistics of the rows released under differential privacy, for buyers deciding
    /// whether to query (absent when the seller chose not to publish any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<datacloud_fhe_query::SampleStatistics>,
}

impl Manifest {
    /// Checks a manifest read from outside before anything is sized from it: its layout header
    /// within bounds ([`LayoutHeader::validate`]) and its schema text the schema of that layout
    /// (what a buyer reads is what the planner plans on).
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn validate(&self) -> Result<(), String> {
        self.layout.validate().map_err(|e| e.to_string())?;
        if self.parsed_schema()? == self.layout.schema {
            Ok(())
        } else {
            Err("the schema text is not the layout's schema".into())
        }
    }

    /// The schema, parsed.
    ///
    /// # Errors
    /// [`PackageError::Invalid`]-like message in a `String` when the schema does not parse.
    pub fn parsed_schema(&self) -> Result<Schema, String> {
        Schema::from_toml(&self.schema).map_err(|e| e.to_string())
    }
}

/// Stores `bytes` as a `UnixFS` file (1 MiB chunks, raw leaves, pinned when `pin`).
///
/// # Errors
/// [`PackageError::Store`].
pub fn store_file(store: &Blockstore, bytes: &[u8], pin: bool) -> Result<Cid, PackageError> {
    Ok(store
        .import_file(bytes, datacloud_store::DEFAULT_CHUNK_SIZE, pin)?
        .root)
}

/// Reads the `UnixFS` file `cid` from `store`, refusing more than `max` bytes.
///
/// # Errors
/// [`PackageError::Store`] for a missing block; [`PackageError::Params`] never.
pub fn read_file(store: &Blockstore, cid: &Cid, max: u64) -> Result<Vec<u8>, PackageError> {
    let mut out = Vec::new();
    store.read_file(
        cid,
        LimitedWriter {
            out: &mut out,
            left: max,
        },
    )?;
    Ok(out)
}

/// A writer that fails past a byte budget, so a hostile DAG cannot exhaust memory.
struct LimitedWriter<'a> {
    out: &'a mut Vec<u8>,
    left: u64,
}

impl std::io::Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::other("file larger than the limit"));
        }
        self.left -= buf.len() as u64;
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Publishes a dataset into `store` as one pinned directory; returns its root (the
/// `manifestCid`).
///
/// # Errors
/// [`PackageError`] from serialization or the store.
pub fn publish(
    store: &Blockstore,
    manifest: &Manifest,
    server_key: &[u8],
    dataset: &EncryptedDataset,
) -> Result<Cid, PackageError> {
    let manifest_bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| PackageError::Params(format!("manifest does not serialize: {e}")))?;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (MANIFEST.into(), manifest_bytes),
        (SERVER_KEY.into(), server_key.to_vec()),
    ];
    if let Some(cube) = &dataset.cube {
        files.push((CUBE.into(), cube.to_bytes()?));
    }
    if let Some(totals) = &dataset.totals {
        files.push((TOTALS.into(), totals.to_bytes()?));
    }
    for (i, chunk) in dataset.chunks.iter().enumerate() {
        files.push((chunk_name(i), chunk.to_bytes()?));
    }
    let mut entries = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let file =
            store.import_file(bytes.as_slice(), datacloud_store::DEFAULT_CHUNK_SIZE, false)?;
        entries.push(DirectoryEntry {
            name,
            cid: file.root,
            dag_size: file.dag_size,
        });
    }
    let (block, _) = directory(&entries)?;
    store.put(&block)?;
    store.pin(block.cid())?;
    Ok(*block.cid())
}

/// A dataset package in a local store (fetched and verified, or published here).
#[derive(Debug)]
pub struct Package {
    store: Arc<Blockstore>,
    root: Cid,
    entries: Vec<(String, Cid)>,
    /// The manifest.
    pub manifest: Manifest,
}

impl Package {
    /// Opens the package `root` (all its blocks must be in `store`).
    ///
    /// # Errors
    /// [`PackageError::Invalid`] when `root` is not a dataset directory or the manifest is bad.
    pub fn open(store: Arc<Blockstore>, root: Cid) -> Result<Self, PackageError> {
        let invalid = |reason: String| PackageError::Invalid { root, reason };
        let block = store
            .get(&root)?
            .ok_or_else(|| invalid("the root block is not in the store".into()))?;
        let entries = directory_links(&root, block.data())?;
        let manifest_cid = entry(&entries, &root, MANIFEST)?;
        let bytes = read_file(&store, &manifest_cid, MAX_MANIFEST_BYTES as u64)?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("{MANIFEST} does not parse: {e}")))?;
        manifest.validate().map_err(invalid)?;
        Ok(Self {
            store,
            root,
            entries,
            manifest,
        })
    }

    /// The package root.
    #[must_use]
    pub const fn root(&self) -> &Cid {
        &self.root
    }

    /// Reads entry `name`, at most `max` bytes.
    ///
    /// # Errors
    /// [`PackageError::Invalid`] for a missing entry; [`PackageError::Store`].
    pub fn read(&self, name: &str, max: u64) -> Result<Vec<u8>, PackageError> {
        let cid = entry(&self.entries, &self.root, name)?;
        read_file(&self.store, &cid, max)
    }

    /// The evaluation (server) key.
    ///
    /// # Errors
    /// [`PackageError`] for a missing or malformed key.
    pub fn evaluation_key(&self) -> Result<EvaluationKey, PackageError> {
        Ok(EvaluationKey::from_bytes(&self.read(SERVER_KEY, 1 << 30)?)?)
    }

    /// Chunks in the layout.
    #[must_use]
    pub fn chunk_count(&self) -> usize {
        let header = &self.manifest.layout;
        usize::try_from(header.rows.div_ceil(u64::from(header.chunk_rows.max(1)))).unwrap_or(0)
    }

    /// Chunk `i`.
    ///
    /// # Errors
    /// [`PackageError`] for a missing or malformed chunk.
    pub fn chunk(&self, i: usize) -> Result<EncryptedChunk, PackageError> {
        Ok(EncryptedChunk::from_bytes(
            &self.read(&chunk_name(i), 1 << 31)?,
            &self.manifest.layout,
        )?)
    }

    /// What `plan` reads: the totals alone for a totals plan, the cube alone for a cube plan,
    /// every chunk otherwise (with, for a complement scan, the totals or cube of its base).
    ///
    /// # Errors
    /// [`PackageError`] for a missing or malformed entry.
    pub fn load_for(&self, plan: &Plan) -> Result<EncryptedDataset, PackageError> {
        let mut dataset = EncryptedDataset {
            header: self.manifest.layout.clone(),
            chunks: Vec::new(),
            cube: None,
            totals: None,
        };
        match plan.kind {
            PlanKind::Totals => dataset.totals = Some(self.totals()?),
            PlanKind::Cube => dataset.cube = Some(self.cube()?),
            PlanKind::IndicatorScan | PlanKind::RowScan => {
                dataset.chunks = (0..self.chunk_count())
                    .map(|i| self.chunk(i))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(base) = plan.complement_base(&dataset.header)? {
                    let base = self.load_for(&base)?;
                    (dataset.totals, dataset.cube) = (base.totals, base.cube);
                }
            }
        }
        Ok(dataset)
    }

    /// The totals over every row (stored at encryption).
    ///
    /// # Errors
    /// [`PackageError`] for a missing or malformed entry.
    pub fn totals(&self) -> Result<EncryptedTotals, PackageError> {
        Ok(EncryptedTotals::from_bytes(
            &self.read(TOTALS, 1 << 24)?,
            &self.manifest.layout,
        )?)
    }

    /// The aggregate cube.
    ///
    /// # Errors
    /// [`PackageError`] for a dataset without a cube, or a missing or malformed entry.
    pub fn cube(&self) -> Result<EncryptedCube, PackageError> {
        let layout = self
            .manifest
            .layout
            .cube
            .as_ref()
            .ok_or_else(|| PackageError::Invalid {
                root: self.root,
                reason: "a cube plan on a dataset without a cube".into(),
            })?;
        Ok(EncryptedCube::from_bytes(
            &self.read(CUBE, 1 << 31)?,
            layout,
        )?)
    }
}

/// The package entries `plan` reads on a dataset of layout `layout`: the evaluation key, and the
/// totals, the cube, or every chunk (with, for a complement scan, its base's totals or cube).
#[must_use]
pub fn entries_for(plan: &Plan, layout: &LayoutHeader) -> Vec<String> {
    let mut names = vec![SERVER_KEY.to_owned()];
    match plan.kind {
        PlanKind::Totals => names.push(TOTALS.to_owned()),
        PlanKind::Cube => names.push(CUBE.to_owned()),
        PlanKind::IndicatorScan | PlanKind::RowScan => {
            let chunks = layout.rows.div_ceil(u64::from(layout.chunk_rows.max(1)));
            names.extend((0..usize::try_from(chunks).unwrap_or(0)).map(chunk_name));
            if let Ok(Some(base)) = plan.complement_base(layout) {
                names.extend(entries_for(&base, layout).into_iter().skip(1));
            }
        }
    }
    names
}

/// Fetches through `gateways` the entries `names` of package `root` that `store` lacks, each a
/// verified `UnixFS` file, pinned. Returns the bytes fetched.
///
/// # Errors
/// [`PackageError`] for a root that is not a package directory, a name it lacks, or a gateway
/// failure (a tampered block fails its CID check; nothing of that file is stored).
pub async fn fetch_entries(
    gateways: &datacloud_store::gateway::Client,
    store: &Arc<Blockstore>,
    root: &Cid,
    names: &[String],
) -> Result<u64, PackageError> {
    let entries = fetch_directory(gateways, store, root).await?;
    let mut bytes = 0;
    for name in names {
        let cid = entry(&entries, root, name)?;
        if let Some(fetched) = gateways.local_or_fetch_dag(&cid, store, true).await? {
            bytes += fetched.bytes;
        }
    }
    Ok(bytes)
}

/// The (name, CID) links of package directory `root`, its block fetched and verified if missing.
async fn fetch_directory(
    gateways: &datacloud_store::gateway::Client,
    store: &Arc<Blockstore>,
    root: &Cid,
) -> Result<Vec<(String, Cid)>, PackageError> {
    let block = gateways.local_or_fetch_block(root, store).await?;
    directory_links(root, block.data())
}

/// The (name, CID) links of the package directory block `data` (at most [`MAX_ENTRIES`]).
fn directory_links(root: &Cid, data: &[u8]) -> Result<Vec<(String, Cid)>, PackageError> {
    let invalid = |reason: String| PackageError::Invalid {
        root: *root,
        reason,
    };
    let node = datacloud_store::unixfs::decode_dag_pb(data)
        .map_err(|e| invalid(format!("not a UnixFS directory: {e}")))?;
    if node.links.len() > MAX_ENTRIES {
        return Err(invalid(format!("more than {MAX_ENTRIES} entries")));
    }
    Ok(node
        .links
        .iter()
        .map(|l| {
            (
                String::from_utf8_lossy(l.name.unwrap_or_default()).into_owned(),
                l.cid,
            )
        })
        .collect())
}

fn entry(entries: &[(String, Cid)], root: &Cid, name: &str) -> Result<Cid, PackageError> {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, cid)| *cid)
        .ok_or_else(|| PackageError::Invalid {
            root: *root,
            reason: format!("no entry {name}"),
        })
}

/// Fetches just the manifest of package `root` through `gateways` (the root block and the
/// manifest file, each verified), for browsing without downloading ciphertexts.
///
/// # Errors
/// [`PackageError`] for a gateway failure or a package without a readable manifest.
pub async fn fetch_manifest(
    gateways: &datacloud_store::gateway::Client,
    store: &Arc<Blockstore>,
    root: &Cid,
) -> Result<Manifest, PackageError> {
    let invalid = |reason: String| PackageError::Invalid {
        root: *root,
        reason,
    };
    let manifest = entry(
        &fetch_directory(gateways, store, root).await?,
        root,
        MANIFEST,
    )?;
    gateways.local_or_fetch_dag(&manifest, store, false).await?;
    let bytes = read_file(store, &manifest, MAX_MANIFEST_BYTES as u64)?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("{MANIFEST} does not parse: {e}")))?;
    manifest.validate().map_err(invalid)?;
    Ok(manifest)
}

/// The parameters block of `query`: its canonical JSON, named by keccak-256.
///
/// # Errors
/// [`PackageError::Block`] when the parameters exceed the block limit.
pub fn params_block(query: &Query) -> Result<Block, PackageError> {
    let bytes = query.canonical_json().into_bytes();
    if bytes.len() > MAX_PARAMS_BYTES {
        return Err(PackageError::Params(format!(
            "{} bytes of parameters (at most {MAX_PARAMS_BYTES})",
            bytes.len()
        )));
    }
    Ok(Block::verified(keccak_raw_cid(&bytes), bytes)?)
}

/// The CID of the parameters an order paid for.
#[must_use]
pub fn params_cid(params_hash: [u8; 32]) -> Cid {
    raw_cid_from_keccak(params_hash)
}

/// The query in a parameters block fetched for an order with `params_hash` and template
/// `template_hash`: parses it, and checks that it is canonical and of the paid template.
///
/// # Errors
/// [`PackageError::Params`].
pub fn query_from_params(
    bytes: &[u8],
    params_hash: [u8; 32],
    template_hash: [u8; 32],
) -> Result<Query, PackageError> {
    if bytes.len() > MAX_PARAMS_BYTES {
        return Err(PackageError::Params(format!(
            "{} bytes (at most {MAX_PARAMS_BYTES})",
            bytes.len()
        )));
    }
    let query: Query = serde_json::from_slice(bytes)
        .map_err(|e| PackageError::Params(format!("not a query: {e}")))?;
    if query.params_hash() != params_hash {
        return Err(PackageError::Params(
            "the parameters are not canonical or not the ones the order paid for".into(),
        ));
    }
    if datacloud_query::template::template_hash(query.template()) != template_hash {
        return Err(PackageError::Params(format!(
            "the parameters are for {}, not the order's template",
            query.template()
        )));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use datacloud_query::{LayoutOptions, layout, synth};

    use super::*;

    fn manifest() -> Manifest {
        let table = synth::generate(50, 2);
        Manifest {
            name: "Bank A".into(),
            description: String::new(),
            schema: table.schema.to_toml(),
            layout: layout::header(&table, &LayoutOptions::default()),
            templates: vec!["cohort_stats".into()],
            encryption: String::new(),
            provenance: Provenance {
                source: "synth".into(),
                rows: 50,
                chain_id: 1,
            },
            sample: None,
        }
    }

    #[test]
    fn a_manifest_whose_schema_text_is_not_its_layouts_is_refused() {
        assert!(manifest().validate().is_ok());
        // What a buyer reads must be what the planner plans on.
        let mut lying = manifest();
        lying.schema = lying.schema.replace("APAC", "ASIA");
        assert!(lying.validate().is_err());
        // A header sized to exhaust a worker is refused before anything is sized from it.
        let mut hostile = manifest();
        hostile.layout.rows = u64::MAX;
        assert!(hostile.validate().is_err());
    }
}
