//! The node's database: accounts, storage, activations, blocks (with receipts and logs), each
//! block's state diff, and the clock, in one redb file.
//!
//! Crash safety comes from redb: a sealed block, every state change it made, its receipts and
//! the clock are written in **one** write transaction committed with `Durability::Immediate`,
//! so after a `kill -9` at any moment the database holds the last committed block, whole, and
//! nothing of the next one.
//!
//! Everything read back is bounded ([`MAX_RECORD_BYTES`]) and validated (key and value
//! lengths, block numbers contiguous from 0, parent links, header hashes, transaction roots):
//! a corrupt database is a [`DatabaseError`], never a panic.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use alloy_consensus::{Header, TxEnvelope, proofs};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::{
    ExitStatus, Halt,
    node::{Block, MinedTransaction},
    state::{Account, ProgramInfo, State, StateDiff},
    transaction::SignedTransaction,
};

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "devchain.redb";

/// Largest record read back (a block with its receipts, or a diff); anything larger is
/// corruption.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Version of the layout below; a database written by another layout is refused.
const FORMAT_VERSION: u64 = 1;

/// Meta key → big-endian `u64`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Address (20 bytes) → balance (32) ‖ nonce (8) ‖ code.
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
/// Address (20) ‖ slot (32) → value (32); zero slots are absent.
const STORAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("storage");
/// Codehash (32) → version (2) ‖ module hash (32) ‖ footprint (2) ‖ activation time (8).
const PROGRAMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("programs");
/// Block number → JSON [`StoredBlock`].
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
/// Block number → JSON [`StoredDiff`]: the state before the block, for past-block queries.
const DIFFS: TableDefinition<u64, &[u8]> = TableDefinition::new("diffs");

const ACCOUNT_HEADER: usize = 40;
const PROGRAM_RECORD: usize = 44;

/// Why the database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// redb failed (I/O, a file that is not a redb database, another process holding it).
    #[error("devchain database error: {0}")]
    Redb(#[from] redb::Error),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// What was read back is not what the devchain writes.
    #[error("corrupt devchain database: {0}; start with a fresh data directory")]
    Corrupt(String),
    /// The database belongs to another chain.
    #[error(
        "the data directory holds chain {stored}, not the configured chain {configured}; use another directory"
    )]
    ChainId {
        /// Chain id in the database.
        stored: u64,
        /// Chain id of the configuration.
        configured: u64,
    },
}

macro_rules! redb_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for DatabaseError {
            fn from(e: $ty) -> Self {
                Self::Redb(e.into())
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

fn corrupt(what: impl Into<String>) -> DatabaseError {
    DatabaseError::Corrupt(what.into())
}

/// The clock and counters kept next to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The chain's current timestamp.
    pub timestamp: u64,
    /// The pending `evm_increaseTime` offset.
    pub time_offset: u64,
}

/// Everything a database holds, read back and validated.
#[derive(Debug)]
pub struct Loaded {
    /// World state at the last committed block (plus committed out-of-block changes).
    pub state: State,
    /// Blocks `0..=head`.
    pub blocks: Vec<Block>,
    /// The state diff of each block (index = block number).
    pub diffs: Vec<StateDiff>,
    /// The clock.
    pub meta: Meta,
}

/// What a block writes besides the state: the block itself and its diff.
#[derive(Debug, Clone, Copy)]
pub struct SealedBlock<'a> {
    /// The block.
    pub block: &'a Block,
    /// The state before it.
    pub diff: &'a StateDiff,
}

/// The node's redb database.
#[derive(Debug)]
pub struct ChainDatabase {
    db: Database,
}

#[derive(Serialize, Deserialize)]
struct StoredBlock {
    header: Header,
    transactions: Vec<StoredTransaction>,
}

#[derive(Serialize, Deserialize)]
struct StoredTransaction {
    raw: Bytes,
    sender: Address,
    success: bool,
    gas_used: u64,
    cumulative_gas_used: u64,
    effective_gas_price: u128,
    logs: Vec<Log>,
    contract_address: Option<Address>,
    output: Bytes,
    /// `None` for success, `Some("")` for a revert, otherwise the halt's message.
    halt: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredDiff {
    accounts: Vec<(Address, Option<StoredAccount>)>,
    storage: Vec<(Address, B256, B256)>,
    programs: Vec<(B256, Option<StoredProgram>)>,
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    balance: U256,
    nonce: u64,
    code: Bytes,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct StoredProgram {
    version: u16,
    module_hash: B256,
    footprint: u16,
    activated_at: u64,
}

impl From<&ProgramInfo> for StoredProgram {
    fn from(p: &ProgramInfo) -> Self {
        Self {
            version: p.version,
            module_hash: p.module_hash,
            footprint: p.footprint,
            activated_at: p.activated_at,
        }
    }
}

impl From<StoredProgram> for ProgramInfo {
    fn from(p: StoredProgram) -> Self {
        Self {
            version: p.version,
            module_hash: p.module_hash,
            footprint: p.footprint,
            activated_at: p.activated_at,
        }
    }
}

fn account_of(balance: U256, nonce: u64, code: Bytes) -> Account {
    let code_hash = keccak256(&code);
    Account {
        balance,
        nonce,
        code,
        code_hash,
    }
}

fn encode_account(account: &Account) -> Vec<u8> {
    let mut out = Vec::with_capacity(ACCOUNT_HEADER + account.code.len());
    out.extend_from_slice(&account.balance.to_be_bytes::<32>());
    out.extend_from_slice(&account.nonce.to_be_bytes());
    out.extend_from_slice(&account.code);
    out
}

fn decode_account(bytes: &[u8]) -> Result<Account, DatabaseError> {
    if bytes.len() < ACCOUNT_HEADER || bytes.len() > MAX_RECORD_BYTES {
        return Err(corrupt(format!("account record of {} bytes", bytes.len())));
    }
    let balance = U256::from_be_slice(&bytes[..32]);
    let mut nonce = [0; 8];
    nonce.copy_from_slice(&bytes[32..40]);
    Ok(account_of(
        balance,
        u64::from_be_bytes(nonce),
        Bytes::copy_from_slice(&bytes[40..]),
    ))
}

fn encode_program(info: &ProgramInfo) -> [u8; PROGRAM_RECORD] {
    let mut out = [0; PROGRAM_RECORD];
    out[..2].copy_from_slice(&info.version.to_be_bytes());
    out[2..34].copy_from_slice(info.module_hash.as_slice());
    out[34..36].copy_from_slice(&info.footprint.to_be_bytes());
    out[36..].copy_from_slice(&info.activated_at.to_be_bytes());
    out
}

fn decode_program(bytes: &[u8]) -> Result<ProgramInfo, DatabaseError> {
    let bytes: &[u8; PROGRAM_RECORD] = bytes
        .try_into()
        .map_err(|_| corrupt(format!("program record of {} bytes", bytes.len())))?;
    let mut activated_at = [0; 8];
    activated_at.copy_from_slice(&bytes[36..]);
    Ok(ProgramInfo {
        version: u16::from_be_bytes([bytes[0], bytes[1]]),
        module_hash: B256::from_slice(&bytes[2..34]),
        footprint: u16::from_be_bytes([bytes[34], bytes[35]]),
        activated_at: u64::from_be_bytes(activated_at),
    })
}

fn storage_key(address: Address, slot: B256) -> [u8; 52] {
    let mut key = [0; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(slot.as_slice());
    key
}

fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], DatabaseError> {
    bytes
        .try_into()
        .map_err(|_| corrupt(format!("{what} of {} bytes, expected {N}", bytes.len())))
}

fn stored_block(block: &Block) -> StoredBlock {
    StoredBlock {
        header: block.header.clone(),
        transactions: block
            .transactions
            .iter()
            .map(|t| StoredTransaction {
                raw: t.tx.envelope.encoded_2718().into(),
                sender: t.tx.sender,
                success: t.success,
                gas_used: t.gas_used,
                cumulative_gas_used: t.cumulative_gas_used,
                effective_gas_price: t.effective_gas_price,
                logs: t.logs.clone(),
                contract_address: t.contract_address,
                output: t.output.clone(),
                halt: match &t.status {
                    ExitStatus::Success => None,
                    ExitStatus::Revert => Some(String::new()),
                    ExitStatus::Halt(halt) => Some(halt.to_string()),
                },
            })
            .collect(),
    }
}

fn block_of(number: u64, stored: StoredBlock) -> Result<Block, DatabaseError> {
    let header = stored.header;
    if header.number != number {
        return Err(corrupt(format!(
            "block record {number} holds block {}",
            header.number
        )));
    }
    let mut transactions = Vec::with_capacity(stored.transactions.len());
    let mut log_index = 0_u64;
    for (index, t) in (0_u64..).zip(stored.transactions) {
        let mut buf = t.raw.as_ref();
        let envelope = TxEnvelope::decode_2718(&mut buf)
            .map_err(|e| corrupt(format!("transaction {index} of block {number}: {e}")))?;
        // The sender was recovered when the transaction was accepted; recovering it again
        // for every stored transaction would make start-up cost a signature check per
        // transaction. The transactions root below still binds the envelopes to the header.
        let hash = *envelope.tx_hash();
        let logs_len = t.logs.len() as u64;
        transactions.push(MinedTransaction {
            tx: SignedTransaction {
                envelope,
                sender: t.sender,
                hash,
            },
            index,
            success: t.success,
            gas_used: t.gas_used,
            cumulative_gas_used: t.cumulative_gas_used,
            effective_gas_price: t.effective_gas_price,
            logs: t.logs,
            first_log_index: log_index,
            contract_address: t.contract_address,
            output: t.output,
            status: match t.halt {
                None => ExitStatus::Success,
                Some(reason) if reason.is_empty() => ExitStatus::Revert,
                Some(reason) => ExitStatus::Halt(Halt::Recorded(reason)),
            },
        });
        log_index += logs_len;
    }
    let envelopes: Vec<TxEnvelope> = transactions.iter().map(|t| t.tx.envelope.clone()).collect();
    if proofs::calculate_transaction_root(&envelopes) != header.transactions_root {
        return Err(corrupt(format!(
            "block {number}: transactions do not match the header's root"
        )));
    }
    let hash = header.hash_slow();
    Ok(Block {
        header,
        hash,
        transactions,
    })
}

fn stored_diff(diff: &StateDiff) -> StoredDiff {
    StoredDiff {
        accounts: diff
            .accounts
            .iter()
            .map(|(address, account)| {
                (
                    *address,
                    account.as_ref().map(|a| StoredAccount {
                        balance: a.balance,
                        nonce: a.nonce,
                        code: a.code.clone(),
                    }),
                )
            })
            .collect(),
        storage: diff
            .storage
            .iter()
            .map(|(&(address, slot), &value)| (address, slot, value))
            .collect(),
        programs: diff
            .programs
            .iter()
            .map(|(hash, info)| (*hash, info.as_ref().map(StoredProgram::from)))
            .collect(),
    }
}

fn diff_of(stored: StoredDiff) -> StateDiff {
    StateDiff {
        accounts: stored
            .accounts
            .into_iter()
            .map(|(address, account)| {
                (
                    address,
                    account.map(|a| account_of(a.balance, a.nonce, a.code)),
                )
            })
            .collect(),
        storage: stored
            .storage
            .into_iter()
            .map(|(address, slot, value)| ((address, slot), value))
            .collect(),
        programs: stored
            .programs
            .into_iter()
            .map(|(hash, info)| (hash, info.map(ProgramInfo::from)))
            .collect(),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, DatabaseError> {
    serde_json::to_vec(value).map_err(|e| corrupt(format!("cannot encode a record: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, DatabaseError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(corrupt(format!(
            "{what} record of {} bytes, over {MAX_RECORD_BYTES}",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("{what}: {e}")))
}

/// Writes the current value of every key of `keys` (`state` holds the value; absent or zero
/// values are deleted).
fn write_keys(
    txn: &WriteTransaction,
    state: &State,
    keys: &StateDiff,
) -> Result<(), DatabaseError> {
    let mut accounts = txn.open_table(ACCOUNTS)?;
    for address in keys.accounts.keys() {
        match state.account(*address) {
            Some(account) => {
                accounts.insert(address.as_slice(), encode_account(account).as_slice())?;
            }
            None => {
                accounts.remove(address.as_slice())?;
            }
        }
    }
    let mut storage = txn.open_table(STORAGE)?;
    for &(address, slot) in keys.storage.keys() {
        let key = storage_key(address, slot);
        let value = state.storage(address, slot);
        if value.is_zero() {
            storage.remove(key.as_slice())?;
        } else {
            storage.insert(key.as_slice(), value.as_slice())?;
        }
    }
    let mut programs = txn.open_table(PROGRAMS)?;
    for codehash in keys.programs.keys() {
        match state.program(*codehash) {
            Some(info) => {
                programs.insert(codehash.as_slice(), encode_program(&info).as_slice())?;
            }
            None => {
                programs.remove(codehash.as_slice())?;
            }
        }
    }
    Ok(())
}

/// Writes `values` as they are (the overlay of [`ChainDatabase::rewrite`]).
fn write_values(txn: &WriteTransaction, values: &StateDiff) -> Result<(), DatabaseError> {
    let mut accounts = txn.open_table(ACCOUNTS)?;
    for (address, account) in &values.accounts {
        match account {
            Some(account) => {
                accounts.insert(address.as_slice(), encode_account(account).as_slice())?;
            }
            None => {
                accounts.remove(address.as_slice())?;
            }
        }
    }
    let mut storage = txn.open_table(STORAGE)?;
    for (&(address, slot), value) in &values.storage {
        let key = storage_key(address, slot);
        if value.is_zero() {
            storage.remove(key.as_slice())?;
        } else {
            storage.insert(key.as_slice(), value.as_slice())?;
        }
    }
    let mut programs = txn.open_table(PROGRAMS)?;
    for (codehash, info) in &values.programs {
        match info {
            Some(info) => {
                programs.insert(codehash.as_slice(), encode_program(info).as_slice())?;
            }
            None => {
                programs.remove(codehash.as_slice())?;
            }
        }
    }
    Ok(())
}

fn write_meta(txn: &WriteTransaction, meta: &Meta, head: u64) -> Result<(), DatabaseError> {
    let mut table = txn.open_table(META)?;
    table.insert("version", FORMAT_VERSION)?;
    table.insert("chain_id", meta.chain_id)?;
    table.insert("timestamp", meta.timestamp)?;
    table.insert("time_offset", meta.time_offset)?;
    table.insert("head", head)?;
    Ok(())
}

fn write_block(txn: &WriteTransaction, sealed: SealedBlock<'_>) -> Result<(), DatabaseError> {
    let number = sealed.block.header.number;
    let block = to_json(&stored_block(sealed.block))?;
    let diff = to_json(&stored_diff(sealed.diff))?;
    txn.open_table(BLOCKS)?.insert(number, block.as_slice())?;
    txn.open_table(DIFFS)?.insert(number, diff.as_slice())?;
    Ok(())
}

impl ChainDatabase {
    /// Opens (creating if needed) the database in `dir`.
    ///
    /// # Errors
    /// [`DatabaseError::Io`] if the directory cannot be created, [`DatabaseError::Redb`] if
    /// the file cannot be opened (not a redb file, or held by another process).
    pub fn open(dir: &Path) -> Result<Self, DatabaseError> {
        std::fs::create_dir_all(dir).map_err(|source| DatabaseError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let db = Database::create(dir.join(DATABASE_FILE))?;
        let txn = db.begin_write()?;
        txn.open_table(META)?;
        txn.open_table(ACCOUNTS)?;
        txn.open_table(STORAGE)?;
        txn.open_table(PROGRAMS)?;
        txn.open_table(BLOCKS)?;
        txn.open_table(DIFFS)?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// Reads everything back; `None` for a new (empty) database.
    ///
    /// # Errors
    /// [`DatabaseError::ChainId`] for another chain's database, [`DatabaseError::Corrupt`] if
    /// a record is malformed or the blocks do not chain, [`DatabaseError::Redb`] on I/O.
    pub fn load(&self, chain_id: u64) -> Result<Option<Loaded>, DatabaseError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let get = |key: &str| -> Result<Option<u64>, DatabaseError> {
            Ok(meta.get(key)?.map(|v| v.value()))
        };
        let Some(version) = get("version")? else {
            return Ok(None);
        };
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {version}, this devchain reads {FORMAT_VERSION}"
            )));
        }
        let need = |key: &str| get(key)?.ok_or_else(|| corrupt(format!("no `{key}` entry")));
        let stored_chain = need("chain_id")?;
        if stored_chain != chain_id {
            return Err(DatabaseError::ChainId {
                stored: stored_chain,
                configured: chain_id,
            });
        }
        let meta = Meta {
            chain_id,
            timestamp: need("timestamp")?,
            time_offset: need("time_offset")?,
        };
        let head = need("head")?;

        let mut accounts = HashMap::new();
        for entry in txn.open_table(ACCOUNTS)?.iter()? {
            let (key, value) = entry?;
            let address = Address::from(fixed::<20>(key.value(), "account key")?);
            accounts.insert(address, decode_account(value.value())?);
        }
        let mut storage = HashMap::new();
        for entry in txn.open_table(STORAGE)?.iter()? {
            let (key, value) = entry?;
            let key = fixed::<52>(key.value(), "storage key")?;
            let value = B256::from(fixed::<32>(value.value(), "storage value")?);
            storage.insert(
                (
                    Address::from_slice(&key[..20]),
                    B256::from_slice(&key[20..]),
                ),
                value,
            );
        }
        let mut programs = HashMap::new();
        for entry in txn.open_table(PROGRAMS)?.iter()? {
            let (key, value) = entry?;
            let codehash = B256::from(fixed::<32>(key.value(), "program key")?);
            programs.insert(codehash, decode_program(value.value())?);
        }

        let blocks_table = txn.open_table(BLOCKS)?;
        let diffs_table = txn.open_table(DIFFS)?;
        let count = head
            .checked_add(1)
            .ok_or_else(|| corrupt(format!("head block {head}")))?;
        if blocks_table.len()? != count || diffs_table.len()? != count {
            return Err(corrupt(format!(
                "head is block {head} but {} blocks and {} diffs are stored",
                blocks_table.len()?,
                diffs_table.len()?
            )));
        }
        let mut blocks: Vec<Block> = Vec::new();
        let mut diffs = Vec::new();
        for number in 0..=head {
            let block = blocks_table
                .get(number)?
                .ok_or_else(|| corrupt(format!("block {number} is missing")))?;
            let block = block_of(number, from_json(block.value(), "block")?)?;
            let parent = blocks.last().map_or(B256::ZERO, |b| b.hash);
            if block.header.parent_hash != parent {
                return Err(corrupt(format!(
                    "block {number} does not link to block {}",
                    number.saturating_sub(1)
                )));
            }
            blocks.push(block);
            let diff = diffs_table
                .get(number)?
                .ok_or_else(|| corrupt(format!("the diff of block {number} is missing")))?;
            diffs.push(diff_of(from_json(diff.value(), "diff")?));
        }
        Ok(Some(Loaded {
            state: State::from_parts(accounts, storage, programs),
            blocks,
            diffs,
            meta,
        }))
    }

    /// Commits, in one write transaction: the current value of every key of `changed`, the
    /// sealed block and its diff (if any), and the clock.
    ///
    /// # Errors
    /// [`DatabaseError::Redb`]; nothing is written then.
    pub fn commit(
        &self,
        state: &State,
        changed: &StateDiff,
        block: Option<SealedBlock<'_>>,
        meta: &Meta,
        head: u64,
    ) -> Result<(), DatabaseError> {
        let txn = self.db.begin_write()?;
        write_keys(&txn, state, changed)?;
        if let Some(sealed) = block {
            write_block(&txn, sealed)?;
        }
        write_meta(&txn, meta, head)?;
        txn.commit()?;
        Ok(())
    }

    /// Replaces the whole content (after `evm_revert`, or at genesis) in one write
    /// transaction: `state` with `overlay` written over it (the values from before an open,
    /// unsealed block), every block and diff, the clock.
    ///
    /// # Errors
    /// [`DatabaseError::Redb`]; nothing is written then.
    pub fn rewrite(
        &self,
        state: &State,
        overlay: Option<&StateDiff>,
        blocks: &[std::sync::Arc<Block>],
        diffs: &[StateDiff],
        meta: &Meta,
    ) -> Result<(), DatabaseError> {
        let txn = self.db.begin_write()?;
        for table in [ACCOUNTS, STORAGE, PROGRAMS] {
            txn.delete_table(table)?;
        }
        txn.delete_table(BLOCKS)?;
        txn.delete_table(DIFFS)?;
        {
            let mut accounts = txn.open_table(ACCOUNTS)?;
            for (address, account) in state.accounts() {
                accounts.insert(address.as_slice(), encode_account(account).as_slice())?;
            }
            let mut storage = txn.open_table(STORAGE)?;
            for (&(address, slot), value) in state.storage_slots() {
                storage.insert(storage_key(address, slot).as_slice(), value.as_slice())?;
            }
            let mut programs = txn.open_table(PROGRAMS)?;
            for (codehash, info) in state.programs() {
                programs.insert(codehash.as_slice(), encode_program(info).as_slice())?;
            }
        }
        if let Some(overlay) = overlay {
            write_values(&txn, overlay)?;
        }
        for (block, diff) in blocks.iter().zip(diffs) {
            write_block(&txn, SealedBlock { block, diff })?;
        }
        let head = blocks.last().map_or(0, |b| b.header.number);
        write_meta(&txn, meta, head)?;
        txn.commit()?;
        Ok(())
    }

    /// Writes one corrupt account record (tests of the error path).
    #[cfg(test)]
    pub(crate) fn corrupt_an_account(&self) -> Result<(), DatabaseError> {
        let txn = self.db.begin_write()?;
        txn.open_table(ACCOUNTS)?
            .insert(Address::repeat_byte(9).as_slice(), [1_u8, 2, 3].as_slice())?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Node, NodeConfig, NodeError};

    #[test]
    fn a_corrupt_record_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig {
            dev_accounts: 1,
            data_dir: Some(dir.path().to_path_buf()),
            ..NodeConfig::default()
        };
        drop(Node::open(config.clone()).unwrap());
        ChainDatabase::open(dir.path())
            .unwrap()
            .corrupt_an_account()
            .unwrap();
        let err = Node::open(config).expect_err("a corrupt account is refused");
        assert!(
            matches!(err, NodeError::Database(DatabaseError::Corrupt(ref what)) if what.contains("account record of 3 bytes")),
            "{err}"
        );
    }

    #[test]
    fn records_are_length_checked() {
        assert!(decode_account(&[0; 39]).is_err());
        assert!(decode_program(&[0; 43]).is_err());
        assert!(fixed::<20>(&[0; 21], "key").is_err());
        let info = ProgramInfo {
            version: 2,
            module_hash: B256::repeat_byte(3),
            footprint: 4,
            activated_at: 5,
        };
        assert_eq!(decode_program(&encode_program(&info)).unwrap(), info);
        let account = account_of(U256::from(7), 8, Bytes::from_static(b"code"));
        assert_eq!(decode_account(&encode_account(&account)).unwrap(), account);
        assert!(from_json::<StoredDiff>(b"{not json", "diff").is_err());
    }
}
