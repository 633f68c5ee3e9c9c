//! A [`Devchain`] with blocks: automine (one transaction per block) or interval mining (an
//! open block sealed every `block_time`), receipts, transaction lookup, prefunded dev
//! accounts, snapshots, past-block state, and optional persistence ([`crate::persist`]). The
//! JSON-RPC server ([`crate::rpc`]) sits on top.

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use alloy_consensus::{Header, TxEip1559, TxEnvelope, proofs};
use alloy_primitives::{Address, B256, Bloom, Bytes, Log, TxKind, U256, logs_bloom};
use alloy_signer::SignerSync;
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};

use crate::{
    ChainConfig, Devchain, ExitStatus, Outcome,
    chain::{ChainSnapshot, TxExecution},
    persist::{ChainDatabase, DatabaseError, Meta, SealedBlock},
    state::StateDiff,
    transaction::{SignedTransaction, TxError},
};

/// The standard development mnemonic (anvil, Hardhat).
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Errors of the node API.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The transaction was refused before execution; nothing changed.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The dev mnemonic could not be derived.
    #[error("cannot derive dev account {index}: {reason}")]
    DevAccount {
        /// Derivation index.
        index: u32,
        /// Why.
        reason: String,
    },
    /// `eth_sendTransaction` from an account the node holds no key for.
    #[error("no key for {0}: eth_sendTransaction only signs for the dev accounts")]
    UnknownAccount(Address),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The database could not be opened, read or written.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// An earlier commit failed, so memory and disk disagree; the node accepts no more
    /// changes.
    #[error("an earlier database commit failed ({0}); restart the node from its data directory")]
    Broken(String),
}

/// A mined transaction and its receipt.
#[derive(Debug, Clone)]
pub struct MinedTransaction {
    /// The transaction.
    pub tx: SignedTransaction,
    /// Its position in the block.
    pub index: u64,
    /// Whether it succeeded.
    pub success: bool,
    /// Gas it used.
    pub gas_used: u64,
    /// Gas used by the block up to and including it.
    pub cumulative_gas_used: u64,
    /// The price per gas it paid.
    pub effective_gas_price: u128,
    /// Its logs.
    pub logs: Vec<Log>,
    /// Index in the block of its first log.
    pub first_log_index: u64,
    /// The created contract.
    pub contract_address: Option<Address>,
    /// Return data, or revert data when it failed.
    pub output: Bytes,
    /// How the execution ended.
    pub status: ExitStatus,
}

/// A sealed block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The header (hash = keccak256 of its RLP).
    pub header: Header,
    /// `header.hash_slow()`, cached.
    pub hash: B256,
    /// Its transactions, in order.
    pub transactions: Vec<MinedTransaction>,
}

/// How a node is run: the chain, the dev accounts, where it keeps its data and how it mines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Chain parameters.
    pub chain: ChainConfig,
    /// Dev accounts derived from [`DEV_MNEMONIC`] and funded at genesis.
    pub dev_accounts: u32,
    /// Where the database lives; `None` is the ephemeral mode (everything in memory, lost at
    /// exit), the default.
    pub data_dir: Option<PathBuf>,
    /// Interval mining: transactions execute into an open block that is sealed every
    /// `block_time` (by [`crate::serve`]'s miner, or [`Node::mine`]); `None` is automine (one
    /// block per transaction), the default.
    pub block_time: Option<Duration>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            chain: ChainConfig::default(),
            dev_accounts: 10,
            data_dir: None,
            block_time: None,
        }
    }
}

impl NodeConfig {
    /// Whether everything stays in memory.
    #[must_use]
    pub fn is_ephemeral(&self) -> bool {
        self.data_dir.is_none()
    }
}

/// Transactions executed into a block that is not sealed yet (interval mining).
#[derive(Debug, Clone, Default)]
struct OpenBlock {
    transactions: Vec<MinedTransaction>,
    hashes: HashMap<B256, usize>,
    gas_used: u64,
    log_count: u64,
    /// The state diff from before the block opened (changes made outside blocks); merged into
    /// the block's diff when it is sealed.
    before_open: StateDiff,
}

/// Saved node state for `evm_snapshot` / `evm_revert`.
#[derive(Debug, Clone)]
struct Snapshot {
    chain: ChainSnapshot,
    blocks: Vec<Arc<Block>>,
    diffs: Vec<StateDiff>,
    open: Option<OpenBlock>,
    time_offset: u64,
}

/// A development node: a chain, its blocks and the dev keys.
#[derive(Debug)]
pub struct Node {
    chain: Devchain,
    blocks: Vec<Arc<Block>>,
    /// The state before each block (index = block number): rolls the state back to a past
    /// block.
    diffs: Vec<StateDiff>,
    tx_index: HashMap<B256, (u64, usize)>,
    signers: Vec<PrivateKeySigner>,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    time_offset: u64,
    block_time: Option<Duration>,
    open: Option<OpenBlock>,
    database: Option<ChainDatabase>,
    /// Set when a commit failed: memory and disk disagree, so nothing more is accepted.
    broken: Option<String>,
}

fn dev_signers(count: u32) -> Result<Vec<PrivateKeySigner>, NodeError> {
    (0..count)
        .map(|index| {
            MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(index)
                .and_then(|builder| builder.build())
                .map_err(|e| NodeError::DevAccount {
                    index,
                    reason: e.to_string(),
                })
        })
        .collect()
}

impl Node {
    /// An ephemeral, automining node at genesis with `dev_accounts` accounts from
    /// [`DEV_MNEMONIC`], each funded with 10 000 ether.
    ///
    /// # Errors
    /// [`NodeError::DevAccount`] if derivation fails.
    pub fn new(config: ChainConfig, dev_accounts: u32) -> Result<Self, NodeError> {
        let signers = dev_signers(dev_accounts)?;
        let mut chain = Devchain::new(config);
        for signer in &signers {
            chain.set_balance(
                signer.address(),
                U256::from(10_000_u64) * U256::from(10_u64).pow(U256::from(18)),
            );
        }
        let mut node = Self {
            chain,
            blocks: Vec::new(),
            diffs: Vec::new(),
            tx_index: HashMap::new(),
            signers,
            snapshots: HashMap::new(),
            next_snapshot: 1,
            time_offset: 0,
            block_time: None,
            open: None,
            database: None,
            broken: None,
        };
        let genesis = node.seal(B256::ZERO, Vec::new());
        node.blocks.push(Arc::new(genesis));
        let genesis_diff = node.chain.state_mut().take_diff();
        node.diffs.push(genesis_diff);
        Ok(node)
    }

    /// A node as `config` describes it. With a data directory, a new database starts at
    /// genesis and an existing one resumes at its last committed block: accounts, storage,
    /// code, activations, blocks, receipts, nonces and the clock.
    ///
    /// # Errors
    /// [`NodeError::DevAccount`], or [`NodeError::Database`] if the database cannot be opened,
    /// belongs to another chain or is corrupt.
    pub fn open(config: NodeConfig) -> Result<Self, NodeError> {
        let mut node = Self::new(config.chain, config.dev_accounts)?;
        node.block_time = config.block_time.filter(|t| !t.is_zero());
        let Some(dir) = config.data_dir else {
            return Ok(node);
        };
        let database = ChainDatabase::open(&dir)?;
        let chain_id = node.chain.config().chain_id;
        if let Some(loaded) = database.load(chain_id)? {
            let hashes = loaded.blocks.iter().map(|b| b.hash).collect();
            let config = node.chain.config().clone();
            node.chain = Devchain::resume(config, loaded.state, loaded.meta.timestamp, hashes);
            node.time_offset = loaded.meta.time_offset;
            node.blocks = loaded.blocks.into_iter().map(Arc::new).collect();
            node.diffs = loaded.diffs;
            node.reindex();
            tracing::info!(
                head = node.head().header.number,
                dir = %dir.display(),
                "devchain resumed from its database"
            );
        } else {
            database.rewrite(
                node.chain.state(),
                None,
                &node.blocks,
                &node.diffs,
                &node.meta(),
            )?;
            tracing::info!(dir = %dir.display(), "devchain database created at genesis");
        }
        node.database = Some(database);
        Ok(node)
    }

    fn meta(&self) -> Meta {
        Meta {
            chain_id: self.chain.config().chain_id,
            // While a block is open the chain's clock is the open block's; the sealed head's
            // is what a restart resumes from.
            timestamp: if self.open.is_some() {
                self.head().header.timestamp
            } else {
                self.chain.timestamp()
            },
            time_offset: self.time_offset,
        }
    }

    /// The chain.
    #[must_use]
    pub fn chain(&self) -> &Devchain {
        &self.chain
    }

    /// The chain, mutably (balances, code). Changes made here reach the database with the
    /// next block, or at [`Node::flush`].
    pub fn chain_mut(&mut self) -> &mut Devchain {
        &mut self.chain
    }

    /// Whether the node keeps everything in memory only.
    #[must_use]
    pub fn is_ephemeral(&self) -> bool {
        self.database.is_none()
    }

    /// The interval-mining block time; `None` when automining.
    #[must_use]
    pub fn block_time(&self) -> Option<Duration> {
        self.block_time
    }

    /// The dev accounts' addresses.
    #[must_use]
    pub fn accounts(&self) -> Vec<Address> {
        self.signers.iter().map(PrivateKeySigner::address).collect()
    }

    /// The dev accounts' private keys (printed at start, as anvil does).
    #[must_use]
    pub fn dev_keys(&self) -> Vec<(Address, B256)> {
        self.signers
            .iter()
            .map(|s| (s.address(), B256::from(s.to_bytes())))
            .collect()
    }

    /// The latest sealed block.
    ///
    /// # Panics
    /// Never: `new` pushes the genesis block and nothing removes it.
    #[must_use]
    pub fn head(&self) -> &Block {
        // Proven non-empty: `new` pushes the genesis block, a database holds at least
        // genesis (`load` checks `head + 1` blocks), and `revert` restores a non-empty list.
        self.blocks.last().expect("genesis block exists")
    }

    /// A block by number.
    #[must_use]
    pub fn block(&self, number: u64) -> Option<&Block> {
        self.blocks
            .get(usize::try_from(number).ok()?)
            .map(AsRef::as_ref)
    }

    /// A block by number, shared.
    #[must_use]
    pub fn block_arc(&self, number: u64) -> Option<Arc<Block>> {
        self.blocks.get(usize::try_from(number).ok()?).cloned()
    }

    /// A block by hash.
    #[must_use]
    pub fn block_by_hash(&self, hash: B256) -> Option<&Block> {
        self.blocks
            .iter()
            .rev()
            .find(|b| b.hash == hash)
            .map(AsRef::as_ref)
    }

    /// A mined transaction and its block by hash.
    #[must_use]
    pub fn transaction(&self, hash: B256) -> Option<(&Block, &MinedTransaction)> {
        let &(number, index) = self.tx_index.get(&hash)?;
        let block = self.block(number)?;
        Some((block, block.transactions.get(index)?))
    }

    /// Hashes of the transactions executed into the open (not yet sealed) block.
    #[must_use]
    pub fn pending_transactions(&self) -> Vec<B256> {
        self.open.as_ref().map_or_else(Vec::new, |open| {
            open.transactions.iter().map(|t| t.tx.hash).collect()
        })
    }

    fn usable(&self) -> Result<(), NodeError> {
        match &self.broken {
            Some(reason) => Err(NodeError::Broken(reason.clone())),
            None => Ok(()),
        }
    }

    /// Validates and mines a raw signed transaction (in its own block when automining, into
    /// the open block when interval mining).
    ///
    /// # Errors
    /// [`NodeError::Invalid`] if it is refused; nothing changes then.
    pub fn send_raw_transaction(&mut self, raw: &[u8]) -> Result<MinedTransaction, NodeError> {
        let tx = SignedTransaction::decode(raw)?;
        self.submit(tx)
    }

    /// Validates and executes a decoded transaction: automining seals it in its own block;
    /// interval mining adds it to the open block (sealed by [`Node::mine`]).
    ///
    /// # Errors
    /// [`NodeError::Invalid`] if it is refused; nothing changes then. [`NodeError::Database`]
    /// if the block could not be committed.
    pub fn submit(&mut self, tx: SignedTransaction) -> Result<MinedTransaction, NodeError> {
        self.usable()?;
        let pending = self
            .open
            .as_ref()
            .is_some_and(|open| open.hashes.contains_key(&tx.hash));
        if pending || self.tx_index.contains_key(&tx.hash) {
            return Err(TxError::AlreadyKnown(tx.hash).into());
        }
        let valid = tx.validate(&self.chain)?;
        let block_gas_limit = self.chain.config().block_gas_limit;
        if self.open.as_ref().is_some_and(|open| {
            open.gas_used.saturating_add(valid.execution.gas_limit) > block_gas_limit
        }) {
            // The open block is full: seal it and start the next one now.
            self.seal_open()?;
        }
        if self.open.is_none() {
            self.open_block();
        }
        let (outcome, contract_address) = self
            .chain
            .transact(&valid.execution, U256::from(valid.effective_gas_price));
        let Outcome {
            status,
            return_data,
            logs,
            gas_used,
        } = outcome;
        let open = self.open.get_or_insert_with(OpenBlock::default);
        let index = open.transactions.len();
        let mined = MinedTransaction {
            tx,
            index: index as u64,
            success: status.is_success(),
            gas_used,
            cumulative_gas_used: open.gas_used + gas_used,
            effective_gas_price: valid.effective_gas_price,
            first_log_index: open.log_count,
            logs,
            contract_address,
            output: return_data,
            status,
        };
        open.gas_used += gas_used;
        open.log_count += mined.logs.len() as u64;
        open.hashes.insert(mined.tx.hash, index);
        open.transactions.push(mined.clone());
        if self.block_time.is_none() {
            self.seal_open()?;
        }
        Ok(mined)
    }

    /// Signs `request` with the dev key of `from` as an EIP-1559 transaction (nonce and fees
    /// filled in when absent) and mines it.
    ///
    /// # Errors
    /// [`NodeError::UnknownAccount`], [`NodeError::Signing`] or [`NodeError::Invalid`].
    pub fn send_transaction(
        &mut self,
        from: Address,
        mut tx: TxEip1559,
        nonce: Option<u64>,
    ) -> Result<MinedTransaction, NodeError> {
        let signer = self
            .signers
            .iter()
            .find(|s| s.address() == from)
            .ok_or(NodeError::UnknownAccount(from))?;
        tx.chain_id = self.chain.config().chain_id;
        tx.nonce = nonce.unwrap_or_else(|| self.chain.nonce(from));
        let signature = signer
            .sign_hash_sync(&alloy_consensus::SignableTransaction::signature_hash(&tx))
            .map_err(|e| NodeError::Signing(e.to_string()))?;
        let envelope = TxEnvelope::from(alloy_consensus::SignableTransaction::into_signed(
            tx, signature,
        ));
        let transaction = SignedTransaction::from_envelope(envelope)?;
        self.submit(transaction)
    }

    /// Runs a call or creation against the current state (the open block included) and
    /// undoes it.
    pub fn simulate(&mut self, tx: &TxExecution) -> (Outcome, Option<Address>) {
        self.chain.simulate(tx)
    }

    /// Runs `f` on the chain as it was when block `number` was sealed (changes made outside
    /// blocks since then, and the open block, are rolled back too), then restores the
    /// current state; `None` if there is no such block. State is rolled back with the diffs
    /// kept per block, so the cost grows with the changes made since `number`.
    pub fn at_block<R>(&mut self, number: u64, f: impl FnOnce(&mut Devchain) -> R) -> Option<R> {
        let head = self.head().header.number;
        if number > head {
            return None;
        }
        if number == head && self.open.is_none() {
            return Some(f(&mut self.chain));
        }
        let block = self.block_arc(number)?;
        // The diffs of the blocks after `number` (none when `number` is the head); looked up
        // before anything changes, so that a `None` leaves the state untouched.
        let later = self.diffs.get(usize::try_from(number + 1).ok()?..)?;
        let state = self.chain.state_mut();
        let pending = state.take_diff();
        let mut redo = vec![state.apply(&pending)];
        if number < head {
            if let Some(open) = &self.open {
                redo.push(state.apply(&open.before_open));
            }
            for diff in later.iter().rev() {
                redo.push(state.apply(diff));
            }
        }
        let mut env = self.chain.env().clone();
        env.number = number;
        env.timestamp = block.header.timestamp;
        env.block_hashes
            .truncate(usize::try_from(number + 1).unwrap_or(usize::MAX));
        let saved = self.chain.replace_env(env);
        let result = f(&mut self.chain);
        self.chain.replace_env(saved);
        let state = self.chain.state_mut();
        // `f` changed nothing that should stay: simulations revert, and what they recorded
        // in the diff is dropped here.
        state.take_diff();
        for values in redo.iter().rev() {
            state.apply(values);
        }
        state.set_diff(pending);
        Some(result)
    }

    /// Seals the open block (interval mining), or mines an empty block.
    ///
    /// # Errors
    /// [`NodeError::Database`] if the block could not be committed.
    pub fn mine(&mut self) -> Result<Arc<Block>, NodeError> {
        self.usable()?;
        if self.open.is_none() {
            self.open_block();
        }
        self.seal_open()
    }

    /// Sets a balance (`anvil_setBalance`) and commits it.
    ///
    /// # Errors
    /// [`NodeError::Database`] if the commit failed.
    pub fn set_balance(&mut self, address: Address, balance: U256) -> Result<(), NodeError> {
        self.usable()?;
        self.chain.set_balance(address, balance);
        self.flush()
    }

    /// Commits the changes made outside blocks (through [`Node::chain_mut`]) and the clock.
    /// While a block is open they wait for it, so that the database never holds part of a
    /// block.
    ///
    /// # Errors
    /// [`NodeError::Database`] if the commit failed.
    pub fn flush(&mut self) -> Result<(), NodeError> {
        self.usable()?;
        if self.open.is_some() {
            return Ok(());
        }
        let head = self.head().header.number;
        let meta = self.meta();
        if let Some(database) = &self.database
            && let Err(err) = database.commit(
                self.chain.state(),
                self.chain.state().diff(),
                None,
                &meta,
                head,
            )
        {
            return Err(self.break_on(err));
        }
        Ok(())
    }

    /// Moves the clock forward by `seconds` for the next block; returns the total offset.
    ///
    /// # Errors
    /// [`NodeError::Database`] if the clock could not be committed.
    pub fn increase_time(&mut self, seconds: u64) -> Result<u64, NodeError> {
        self.time_offset = self.time_offset.saturating_add(seconds);
        self.flush()?;
        Ok(self.time_offset)
    }

    /// Saves the whole node state (in memory); returns the snapshot id.
    pub fn snapshot(&mut self) -> u64 {
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        self.snapshots.insert(
            id,
            Snapshot {
                chain: self.chain.snapshot(),
                blocks: self.blocks.clone(),
                diffs: self.diffs.clone(),
                open: self.open.clone(),
                time_offset: self.time_offset,
            },
        );
        id
    }

    /// Restores snapshot `id` (and drops it and every later one, as anvil does), rewriting
    /// the database to match; `Ok(false)` if it does not exist.
    ///
    /// # Errors
    /// [`NodeError::Database`] if the rewrite failed.
    pub fn revert(&mut self, id: u64) -> Result<bool, NodeError> {
        self.usable()?;
        let Some(snapshot) = self.snapshots.remove(&id) else {
            return Ok(false);
        };
        self.snapshots.retain(|&other, _| other < id);
        self.chain.restore(snapshot.chain);
        self.blocks = snapshot.blocks;
        self.diffs = snapshot.diffs;
        self.open = snapshot.open;
        self.time_offset = snapshot.time_offset;
        self.reindex();
        if let Some(database) = &self.database {
            // With a block open, its changes are not on disk: write the values from before.
            let overlay = self.open.as_ref().map(|open| {
                let mut before = self.chain.state().diff().clone();
                for (k, v) in &open.before_open.accounts {
                    before.accounts.insert(*k, v.clone());
                }
                for (k, v) in &open.before_open.storage {
                    before.storage.insert(*k, *v);
                }
                for (k, v) in &open.before_open.programs {
                    before.programs.insert(*k, *v);
                }
                before
            });
            if let Err(err) = database.rewrite(
                self.chain.state(),
                overlay.as_ref(),
                &self.blocks,
                &self.diffs,
                &self.meta(),
            ) {
                return Err(self.break_on(err));
            }
        }
        Ok(true)
    }

    fn reindex(&mut self) {
        self.tx_index = self
            .blocks
            .iter()
            .flat_map(|b| {
                b.transactions
                    .iter()
                    .enumerate()
                    .map(move |(i, t)| (t.tx.hash, (b.header.number, i)))
            })
            .collect();
    }

    fn break_on(&mut self, err: DatabaseError) -> NodeError {
        tracing::error!(%err, "devchain database commit failed; the node stops accepting changes");
        self.broken = Some(err.to_string());
        NodeError::Database(err)
    }

    /// Opens the next block: advances the clock, and sets aside the diff of the changes made
    /// outside blocks so that "latest" can still be read while the block is open.
    fn open_block(&mut self) {
        let before_open = self.chain.state_mut().take_diff();
        self.advance_clock();
        self.open = Some(OpenBlock {
            before_open,
            ..OpenBlock::default()
        });
    }

    /// Seals the open block (which must exist), keeps its diff, and commits it all in one
    /// database transaction.
    fn seal_open(&mut self) -> Result<Arc<Block>, NodeError> {
        let open = self.open.take().unwrap_or_default();
        let parent = self.head().hash;
        let block = Arc::new(self.seal(parent, open.transactions));
        let mut diff = self.chain.state_mut().take_diff();
        // Values from before the block opened are older than those recorded since.
        diff.accounts.extend(open.before_open.accounts);
        diff.storage.extend(open.before_open.storage);
        diff.programs.extend(open.before_open.programs);
        for (i, t) in block.transactions.iter().enumerate() {
            self.tx_index.insert(t.tx.hash, (block.header.number, i));
        }
        let meta = self.meta();
        let committed = self.database.as_ref().map_or(Ok(()), |database| {
            let sealed = SealedBlock {
                block: &block,
                diff: &diff,
            };
            database.commit(
                self.chain.state(),
                &diff,
                Some(sealed),
                &meta,
                block.header.number,
            )
        });
        // Memory keeps the block either way, so that the node stays consistent with itself;
        // a failed commit stops it from accepting more.
        self.blocks.push(Arc::clone(&block));
        self.diffs.push(diff);
        if let Err(err) = committed {
            return Err(self.break_on(err));
        }
        Ok(block)
    }

    /// Opens the next block in the chain's clock: number + 1, timestamp + 1 s + any
    /// `evm_increaseTime` offset.
    fn advance_clock(&mut self) {
        self.chain.mine();
        let offset = std::mem::take(&mut self.time_offset);
        if offset > 0 {
            let timestamp = self.chain.timestamp() + offset;
            self.chain.set_timestamp(timestamp);
        }
    }

    /// Builds the header of the chain's current block over `transactions` and records its
    /// hash in the chain (so `BLOCKHASH` and `ArbSys.arbBlockHash` see real hashes).
    fn seal(&mut self, parent_hash: B256, transactions: Vec<MinedTransaction>) -> Block {
        let config = self.chain.config();
        let envelopes: Vec<TxEnvelope> =
            transactions.iter().map(|t| t.tx.envelope.clone()).collect();
        let receipts: Vec<_> = transactions
            .iter()
            .map(|t| receipt_envelope(t, t.logs.clone()))
            .collect();
        let header = Header {
            parent_hash,
            beneficiary: config.coinbase,
            transactions_root: proofs::calculate_transaction_root(&envelopes),
            receipts_root: proofs::calculate_receipt_root(&receipts),
            logs_bloom: transactions
                .iter()
                .fold(Bloom::default(), |acc, t| acc | logs_bloom(t.logs.iter())),
            number: self.chain.block_number(),
            gas_limit: config.block_gas_limit,
            gas_used: transactions.last().map_or(0, |t| t.cumulative_gas_used),
            timestamp: self.chain.timestamp(),
            base_fee_per_gas: Some(u64::try_from(config.basefee).unwrap_or(u64::MAX)),
            ..Header::default()
        };
        let hash = header.hash_slow();
        self.chain.set_block_hash(header.number, hash);
        Block {
            header,
            hash,
            transactions,
        }
    }
}

/// The consensus receipt of a mined transaction (EIP-658 status, bloom), typed like it.
#[must_use]
pub fn receipt_envelope<L>(
    tx: &MinedTransaction,
    logs: Vec<L>,
) -> alloy_consensus::ReceiptEnvelope<L> {
    let receipt = alloy_consensus::Receipt {
        status: alloy_consensus::Eip658Value::Eip658(tx.success),
        cumulative_gas_used: tx.cumulative_gas_used,
        logs,
    };
    let with_bloom = alloy_consensus::ReceiptWithBloom {
        logs_bloom: logs_bloom(tx.logs.iter()),
        receipt,
    };
    match tx.tx.envelope {
        TxEnvelope::Legacy(_) => alloy_consensus::ReceiptEnvelope::Legacy(with_bloom),
        TxEnvelope::Eip2930(_) => alloy_consensus::ReceiptEnvelope::Eip2930(with_bloom),
        _ => alloy_consensus::ReceiptEnvelope::Eip1559(with_bloom),
    }
}

/// An EIP-1559 transaction for `eth_sendTransaction` (nonce and chain id filled at signing).
#[must_use]
pub fn eip1559_request(
    to: Option<Address>,
    value: U256,
    input: Bytes,
    gas_limit: u64,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
) -> TxEip1559 {
    TxEip1559 {
        to: to.map_or(TxKind::Create, TxKind::Call),
        value,
        input,
        gas_limit,
        max_fee_per_gas,
        max_priority_fee_per_gas,
        ..TxEip1559::default()
    }
}
