//! The action journal: every on-chain action an agent takes is keyed by `(order id, step)` and
//! recorded in a redb database *before* its transaction is broadcast, so no retry, duplicate
//! event or restart ever signs a second transaction for the same step.
//!
//! A step goes `absent → Signed { transaction } → Done { receipt summary }`:
//! - absent: the transaction is signed (under the client's nonce lock), recorded as `Signed`
//!   and committed, and only then broadcast;
//! - `Signed` (a crash or a lost answer after recording): the *same* signed bytes are sent
//!   again — a node that has them already says so — and the receipt awaited;
//! - `Done`: nothing is sent; the recorded outcome is returned as a replay.
//!
//! If gas estimation reverts, nothing is signed or recorded: the step may be tried again later.

use std::{path::Path, sync::Arc};

use alloy::{
    primitives::{B256, U256},
    rpc::types::TransactionRequest,
};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{ChainClient, ChainError, client::SignedTransaction};

const ACTIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("actions");
/// Longest step name.
pub const MAX_STEP_LEN: usize = 64;
/// Largest record read back (a signed transaction of a Stylus deployment is the largest).
const MAX_RECORD_BYTES: usize = 256 * 1024;

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database failed (I/O, corruption, another process holding it).
    #[error("action journal: {0}")]
    Database(#[from] redb::Error),
    /// A stored record does not decode (corruption).
    #[error("action journal: corrupt record for {key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The step name is empty, too long or not `[a-z0-9_.-]`.
    #[error("invalid action step {0:?}: use 1..=64 characters of a-z, 0-9, '_', '.', '-'")]
    InvalidStep(String),
    /// The transaction could not be signed, sent or confirmed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

macro_rules! redb_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for JournalError {
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

/// One action: a step of an order (`claim`, `submit-result`, `deliver`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionKey {
    /// The order (or dataset, proof set: whatever the step acts on).
    pub order_id: U256,
    /// The step.
    pub step: String,
}

impl ActionKey {
    /// A key; the step is checked when used.
    #[must_use]
    pub fn new(order_id: U256, step: impl Into<String>) -> Self {
        Self {
            order_id,
            step: step.into(),
        }
    }

    fn bytes(&self) -> Result<Vec<u8>, JournalError> {
        let valid = (1..=MAX_STEP_LEN).contains(&self.step.len())
            && self
                .step
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if !valid {
            return Err(JournalError::InvalidStep(self.step.clone()));
        }
        let mut key = self.order_id.to_be_bytes::<32>().to_vec();
        key.extend_from_slice(self.step.as_bytes());
        Ok(key)
    }
}

impl std::fmt::Display for ActionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order {} step {}", self.order_id, self.step)
    }
}

/// What the journal knows of an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionRecord {
    /// Signed and (maybe) broadcast; no receipt seen yet.
    Signed(SignedTransaction),
    /// Mined.
    Done {
        /// The transaction.
        tx_hash: B256,
        /// Its block.
        block_number: u64,
        /// Whether it succeeded (status 1).
        success: bool,
    },
}

/// The result of [`ActionJournal::perform`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The action's one transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// Whether it succeeded. A failed action is final too: it is not sent again.
    pub success: bool,
    /// Whether the transaction was signed by an earlier call: this call signed nothing (it
    /// returned the recorded outcome, or re-sent the recorded transaction and awaited it).
    pub replayed: bool,
}

/// The journal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ActionJournal {
    db: Arc<Database>,
}

impl ActionJournal {
    /// Opens (or creates) the journal at `path`.
    ///
    /// # Errors
    /// [`JournalError::Database`], e.g. when another process holds the file.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| JournalError::Database(e.into()))?;
        }
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(ACTIONS)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The record of `key`.
    ///
    /// # Errors
    /// [`JournalError::Database`], [`JournalError::Corrupt`], [`JournalError::InvalidStep`].
    pub fn get(&self, key: &ActionKey) -> Result<Option<ActionRecord>, JournalError> {
        let bytes = key.bytes()?;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ACTIONS)?;
        let Some(value) = table.get(bytes.as_slice())? else {
            return Ok(None);
        };
        let value = value.value();
        if value.len() > MAX_RECORD_BYTES {
            return Err(JournalError::Corrupt {
                key: key.to_string(),
                reason: format!("{} bytes", value.len()),
            });
        }
        serde_json::from_slice(value)
            .map(Some)
            .map_err(|e| JournalError::Corrupt {
                key: key.to_string(),
                reason: e.to_string(),
            })
    }

    /// Records `record` for `key` (durably: committed before this returns).
    ///
    /// # Errors
    /// [`JournalError::Database`], [`JournalError::InvalidStep`].
    pub fn put(&self, key: &ActionKey, record: &ActionRecord) -> Result<(), JournalError> {
        let bytes = key.bytes()?;
        let value = serde_json::to_vec(record).map_err(|e| JournalError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ACTIONS)?;
            table.insert(bytes.as_slice(), value.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Performs `key`'s action with `tx` — at most one transaction for the key, ever — and
    /// waits for its receipt. See the module documentation for the states.
    ///
    /// # Errors
    /// [`JournalError::Chain`] (a revert at estimation sends nothing and records nothing),
    /// or a database error.
    pub async fn perform(
        &self,
        client: &ChainClient,
        key: &ActionKey,
        tx: TransactionRequest,
    ) -> Result<ActionOutcome, JournalError> {
        let what = key.to_string();
        let (signed, replayed) = {
            // The nonce lock also serializes concurrent performs of one key: the second sees
            // the first one's record.
            let held = client.send_lock().await;
            let (signed, replayed) = match self.get(key)? {
                Some(ActionRecord::Done {
                    tx_hash,
                    block_number,
                    success,
                }) => {
                    tracing::debug!(%key, %tx_hash, "action already done; nothing sent");
                    return Ok(ActionOutcome {
                        tx_hash,
                        block_number,
                        success,
                        replayed: true,
                    });
                }
                Some(ActionRecord::Signed(signed)) => {
                    tracing::info!(%key, tx = %signed.hash, "re-sending the action's recorded transaction");
                    (signed, true)
                }
                None => {
                    let signed = client.sign(&held, &what, tx).await?;
                    self.put(key, &ActionRecord::Signed(signed.clone()))?;
                    (signed, false)
                }
            };
            // Broadcast before releasing the lock: the next nonce is read from the node.
            match client.broadcast(&what, &signed).await {
                Ok(()) | Err(ChainError::Reverted { .. }) => {} // a mined revert has a receipt too
                Err(err) => return Err(err.into()),
            }
            (signed, replayed)
        };
        let receipt = client.wait_receipt(&what, signed.hash).await?;
        let outcome = ActionOutcome {
            tx_hash: signed.hash,
            // `wait_receipt` refuses receipts without a block number.
            block_number: receipt.block_number.unwrap_or_default(),
            success: receipt.status(),
            replayed,
        };
        self.put(
            key,
            &ActionRecord::Done {
                tx_hash: outcome.tx_hash,
                block_number: outcome.block_number,
                success: outcome.success,
            },
        )?;
        Ok(outcome)
    }
}
