//! The seller's record of its datasets: `<data_dir>/seller/datasets.json`, written atomically.

use std::path::{Path, PathBuf};

use alloy::primitives::{B256, U256};
use datacloud_query::LayoutHeader;
use serde::{Deserialize, Serialize};

use crate::SellerError;

/// Largest book read.
const MAX_BOOK_BYTES: u64 = 16 * 1024 * 1024;

/// One dataset this seller registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedDataset {
    /// The on-chain id.
    pub dataset_id: u64,
    /// Its proof set.
    pub set_id: u64,
    /// Display name.
    pub name: String,
    /// The package root (`manifestCid`).
    pub manifest_cid: String,
    /// The `PieceCID` v2 of the CAR.
    pub piece_cid: String,
    /// The CAR the proofs are built from.
    pub car: PathBuf,
    /// The TFHE client key (mode 0600).
    pub client_key: PathBuf,
    /// The plaintext rows (mode 0600, sealed like the client key): what the seller checks a
    /// decrypted result against before releasing anything of it. A dataset recorded without
    /// them has its results refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<PathBuf>,
    /// The layout (to plan what a worker computed).
    pub layout: LayoutHeader,
    /// The templates allowed.
    pub templates: Vec<String>,
}

/// A dataset whose package, client key and CAR are on disk but whose registration or proof set
/// may not be on chain yet: written before the first transaction, so an onboarding that stops
/// half way (a crash, a lost node) is finished later instead of leaving a registered dataset
/// nobody proves. See [`crate::finish_pending`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDataset {
    /// Display name.
    pub name: String,
    /// The package root (`manifestCid`).
    pub manifest_cid: String,
    /// The `PieceCID` v2 of the CAR.
    pub piece_cid: String,
    /// The CAR the proofs are built from.
    pub car: PathBuf,
    /// The TFHE client key (mode 0600).
    pub client_key: PathBuf,
    /// The plaintext rows (mode 0600, sealed like the client key): what the seller checks a
    /// decrypted result against before releasing anything of it. A dataset recorded without
    /// them has its results refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<PathBuf>,
    /// The layout.
    pub layout: LayoutHeader,
    /// The templates allowed.
    pub templates: Vec<String>,
    /// keccak-256 of the schema TOML, as registered.
    pub schema_hash: B256,
    /// Price per query (wei) of every template.
    pub price: U256,
    /// Stake posted with the registration (wei).
    pub stake: U256,
    /// The dataset's total privacy budget, micro-ε (what `registerDataset` records).
    #[serde(default)]
    pub privacy_budget: u64,
    /// What the published sample statistics spent of it, micro-ε.
    #[serde(default)]
    pub sample_epsilon: u64,
    /// The piece's Merkle root and leaf count, as the proof set records them.
    pub piece_root: B256,
    /// Leaves (32-byte) of the padded piece.
    pub piece_leaves: u64,
}

impl PendingDataset {
    /// The record of the finished dataset.
    #[must_use]
    pub fn owned(&self, dataset_id: u64, set_id: u64) -> OwnedDataset {
        OwnedDataset {
            dataset_id,
            set_id,
            name: self.name.clone(),
            manifest_cid: self.manifest_cid.clone(),
            piece_cid: self.piece_cid.clone(),
            car: self.car.clone(),
            client_key: self.client_key.clone(),
            rows: self.rows.clone(),
            layout: self.layout.clone(),
            templates: self.templates.clone(),
        }
    }
}

/// The seller's datasets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SellerBook {
    /// In registration order.
    pub datasets: Vec<OwnedDataset>,
    /// Onboardings not finished yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingDataset>,
}

impl SellerBook {
    /// The book's path under an agent data directory.
    #[must_use]
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("seller").join("datasets.json")
    }

    /// Reads the book (empty when there is none yet).
    ///
    /// # Errors
    /// [`SellerError::File`] for an unreadable or corrupt book.
    pub fn load(data_dir: &Path) -> Result<Self, SellerError> {
        let path = Self::path(data_dir);
        match datacloud_agent_core::fs::read_bounded(&path, MAX_BOOK_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SellerError::file(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SellerError::file(&path, e)),
        }
    }

    /// Writes the book atomically.
    ///
    /// # Errors
    /// [`SellerError::File`].
    pub fn save(&self, data_dir: &Path) -> Result<(), SellerError> {
        let path = Self::path(data_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SellerError::file(dir, e))?;
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| SellerError::file(&path, e))?;
        datacloud_agent_core::fs::write_atomic(&path, &bytes)
            .map_err(|e| SellerError::file(&path, e))
    }

    /// The dataset with on-chain id `id`.
    #[must_use]
    pub fn get(&self, id: u64) -> Option<&OwnedDataset> {
        self.datasets.iter().find(|d| d.dataset_id == id)
    }
}
