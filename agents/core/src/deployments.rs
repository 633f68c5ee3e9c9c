//! The deployments file: where the three contracts live on which chain, and from which block
//! their history starts. `datacloud deploy` writes it; agents and the CLI read it.
//!
//! ```json
//! { "chainId": 412346, "datasetRegistry": "0x…", "proofManager": "0x…",
//!   "queryMarket": "0x…", "deployBlock": 1 }
//! ```

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::bindings::ContractKind;

/// Largest deployments file read.
pub const MAX_DEPLOYMENTS_BYTES: u64 = 64 * 1024;

/// Why a deployments file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentsError {
    /// Reading or writing failed.
    #[error("deployments file {path}: {source}; run `datacloud deploy` to create it")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a deployments file.
    #[error("deployments file {path} is invalid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where the contracts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployments {
    /// The chain they were deployed on.
    pub chain_id: u64,
    /// `DatasetRegistry`.
    pub dataset_registry: Address,
    /// `ProofManager`.
    pub proof_manager: Address,
    /// `QueryMarket`.
    pub query_market: Address,
    /// The block of the first deployment transaction: no contract event is older.
    pub deploy_block: u64,
}

impl Deployments {
    /// The address of `kind`.
    #[must_use]
    pub const fn address(&self, kind: ContractKind) -> Address {
        match kind {
            ContractKind::DatasetRegistry => self.dataset_registry,
            ContractKind::ProofManager => self.proof_manager,
            ContractKind::QueryMarket => self.query_market,
        }
    }

    /// Which contract lives at `address`, if any of the three.
    #[must_use]
    pub fn kind_of(&self, address: Address) -> Option<ContractKind> {
        ContractKind::ALL
            .into_iter()
            .find(|&kind| self.address(kind) == address)
    }

    /// Checks what a file could get wrong: a zero chain id, zero or repeated addresses.
    ///
    /// # Errors
    /// A description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.chain_id == 0 {
            return Err("chainId is 0".to_owned());
        }
        let addresses = ContractKind::ALL.map(|kind| self.address(kind));
        if addresses.iter().any(|address| address.is_zero()) {
            return Err("a contract address is zero".to_owned());
        }
        if addresses[0] == addresses[1]
            || addresses[1] == addresses[2]
            || addresses[0] == addresses[2]
        {
            return Err("two contracts share an address".to_owned());
        }
        Ok(())
    }

    /// Reads and validates the file at `path`.
    ///
    /// # Errors
    /// [`DeploymentsError`].
    pub fn read(path: &Path) -> Result<Self, DeploymentsError> {
        let bytes = crate::fs::read_bounded(path, MAX_DEPLOYMENTS_BYTES).map_err(|source| {
            DeploymentsError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let invalid = |reason: String| DeploymentsError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let deployments: Self =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        deployments.validate().map_err(invalid)?;
        Ok(deployments)
    }

    /// Writes the file atomically (readers see the old file or the new one, never a mix).
    ///
    /// # Errors
    /// [`DeploymentsError::Io`].
    pub fn write(&self, path: &Path) -> Result<(), DeploymentsError> {
        let io = |source| DeploymentsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| io(e.into()))?;
        json.push(b'\n');
        crate::fs::write_atomic(path, &json).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::address;

    use super::*;

    #[test]
    fn round_trips_and_refuses_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployments.json");
        let deployments = Deployments {
            chain_id: 412_346,
            dataset_registry: address!("00000000000000000000000000000000000000a1"),
            proof_manager: address!("00000000000000000000000000000000000000a2"),
            query_market: address!("00000000000000000000000000000000000000a3"),
            deploy_block: 7,
        };
        deployments.write(&path).unwrap();
        assert_eq!(Deployments::read(&path).unwrap(), deployments);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"queryMarket\""), "{text}");

        let same = Deployments {
            proof_manager: deployments.dataset_registry,
            ..deployments
        };
        same.write(&path).unwrap();
        let err = Deployments::read(&path).unwrap_err().to_string();
        assert!(err.contains("share an address"), "{err}");

        std::fs::write(&path, b"{\"chainId\": 1}").unwrap();
        assert!(matches!(
            Deployments::read(&path),
            Err(DeploymentsError::Invalid { .. })
        ));
        let missing = Deployments::read(&dir.path().join("none.json")).unwrap_err();
        assert!(
            missing.to_string().contains("datacloud deploy"),
            "{missing}"
        );
    }
}
