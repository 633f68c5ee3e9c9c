//! A [`Devchain`] with blocks: automine (one transaction per block), receipts, transaction
//! lookup, prefunded dev accounts, snapshots. The JSON-RPC server ([`crate::rpc`]) sits on top.

use std::collections::HashMap;

use alloy_consensus::{Header, TxEip1559, TxEnvelope, proofs};
use alloy_primitives::{Address, B256, Bloom, Bytes, Log, TxKind, U256, logs_bloom};
use alloy_signer::SignerSync;
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};

use crate::{
    ChainConfig, Devchain, ExitStatus, Outcome,
    chain::{ChainSnapshot, TxExecution},
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

/// Saved node state for `evm_snapshot` / `evm_revert`.
#[derive(Debug, Clone)]
struct Snapshot {
    chain: ChainSnapshot,
    blocks: Vec<Block>,
    time_offset: u64,
}

/// A development node: a chain, its blocks and the dev keys.
#[derive(Debug)]
pub struct Node {
    chain: Devchain,
    blocks: Vec<Block>,
    tx_index: HashMap<B256, (u64, usize)>,
    signers: Vec<PrivateKeySigner>,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    time_offset: u64,
}

impl Node {
    /// A node at genesis with `dev_accounts` accounts from [`DEV_MNEMONIC`], each funded with
    /// 10 000 ether.
    ///
    /// # Errors
    /// [`NodeError::DevAccount`] if derivation fails.
    pub fn new(config: ChainConfig, dev_accounts: u32) -> Result<Self, NodeError> {
        let mut chain = Devchain::new(config);
        let mut signers = Vec::new();
        for index in 0..dev_accounts {
            let signer = MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(index)
                .and_then(|builder| builder.build())
                .map_err(|e| NodeError::DevAccount {
                    index,
                    reason: e.to_string(),
                })?;
            chain.set_balance(
                signer.address(),
                U256::from(10_000_u64) * U256::from(10_u64).pow(U256::from(18)),
            );
            signers.push(signer);
        }
        let mut node = Self {
            chain,
            blocks: Vec::new(),
            tx_index: HashMap::new(),
            signers,
            snapshots: HashMap::new(),
            next_snapshot: 1,
            time_offset: 0,
        };
        let genesis = node.seal(B256::ZERO, Vec::new());
        node.blocks.push(genesis);
        Ok(node)
    }

    /// The chain.
    #[must_use]
    pub fn chain(&self) -> &Devchain {
        &self.chain
    }

    /// The chain, mutably (balances, code).
    pub fn chain_mut(&mut self) -> &mut Devchain {
        &mut self.chain
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

    /// The latest block.
    ///
    /// # Panics
    /// Never: `new` pushes the genesis block and nothing removes it.
    #[must_use]
    pub fn head(&self) -> &Block {
        // Proven non-empty: `new` pushes the genesis block and nothing removes it.
        self.blocks.last().expect("genesis block exists")
    }

    /// A block by number.
    #[must_use]
    pub fn block(&self, number: u64) -> Option<&Block> {
        self.blocks.get(usize::try_from(number).ok()?)
    }

    /// A block by hash.
    #[must_use]
    pub fn block_by_hash(&self, hash: B256) -> Option<&Block> {
        self.blocks.iter().rev().find(|b| b.hash == hash)
    }

    /// A mined transaction and its block by hash.
    #[must_use]
    pub fn transaction(&self, hash: B256) -> Option<(&Block, &MinedTransaction)> {
        let &(number, index) = self.tx_index.get(&hash)?;
        let block = self.block(number)?;
        Some((block, block.transactions.get(index)?))
    }

    /// Validates and mines a raw signed transaction in its own block.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] if it is refused; nothing changes then.
    pub fn send_raw_transaction(&mut self, raw: &[u8]) -> Result<MinedTransaction, NodeError> {
        let tx = SignedTransaction::decode(raw)?;
        self.submit(tx)
    }

    /// Validates and mines a decoded transaction in its own block.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] if it is refused; nothing changes then.
    pub fn submit(&mut self, tx: SignedTransaction) -> Result<MinedTransaction, NodeError> {
        if self.tx_index.contains_key(&tx.hash) {
            return Err(TxError::AlreadyKnown(tx.hash).into());
        }
        let valid = tx.validate(&self.chain)?;
        self.advance_clock();
        let (outcome, contract_address) = self
            .chain
            .transact(&valid.execution, U256::from(valid.effective_gas_price));
        let Outcome {
            status,
            return_data,
            logs,
            gas_used,
        } = outcome;
        let mined = MinedTransaction {
            tx,
            index: 0,
            success: status.is_success(),
            gas_used,
            cumulative_gas_used: gas_used,
            effective_gas_price: valid.effective_gas_price,
            logs,
            first_log_index: 0,
            contract_address,
            output: return_data,
            status,
        };
        let parent = self.head().hash;
        let block = self.seal(parent, vec![mined.clone()]);
        self.tx_index
            .insert(mined.tx.hash, (block.header.number, 0));
        self.blocks.push(block);
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

    /// Runs a call or creation against the latest state and undoes it.
    pub fn simulate(&mut self, tx: &TxExecution) -> (Outcome, Option<Address>) {
        self.chain.simulate(tx)
    }

    /// Mines an empty block.
    pub fn mine(&mut self) -> &Block {
        self.advance_clock();
        let parent = self.head().hash;
        let block = self.seal(parent, Vec::new());
        self.blocks.push(block);
        self.head()
    }

    /// Moves the clock forward by `seconds` for the next block; returns the total offset.
    pub fn increase_time(&mut self, seconds: u64) -> u64 {
        self.time_offset = self.time_offset.saturating_add(seconds);
        self.time_offset
    }

    /// Saves the whole node state; returns the snapshot id.
    pub fn snapshot(&mut self) -> u64 {
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        self.snapshots.insert(
            id,
            Snapshot {
                chain: self.chain.snapshot(),
                blocks: self.blocks.clone(),
                time_offset: self.time_offset,
            },
        );
        id
    }

    /// Restores snapshot `id` (and drops it and every later one, as anvil does); `false` if
    /// it does not exist.
    pub fn revert(&mut self, id: u64) -> bool {
        let Some(snapshot) = self.snapshots.remove(&id) else {
            return false;
        };
        self.snapshots.retain(|&other, _| other < id);
        self.chain.restore(snapshot.chain);
        self.blocks = snapshot.blocks;
        self.time_offset = snapshot.time_offset;
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
        true
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
