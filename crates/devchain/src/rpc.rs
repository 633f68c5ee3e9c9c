//! Ethereum JSON-RPC 2.0 over HTTP, served with axum.
//!
//! axum rather than jsonrpsee: the method set is small and synchronous (every call locks the
//! node and runs to completion), batches and the revert error shape (`code: 3`, `data` = revert
//! bytes, as geth returns it so clients decode Solidity custom errors) are a few lines by hand,
//! and axum is lighter to compile. Requests run on tokio's blocking pool because WASM execution
//! is CPU-bound.
//!
//! Everything read from the network is bounded: the body size ([`RpcConfig::max_body_bytes`],
//! answered with HTTP 413), the batch length, the `eth_getLogs` block range and result count,
//! and raw transactions ([`crate::transaction::MAX_TX_SIZE`]).

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_consensus::transaction::Recovered;
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, hex};
use alloy_rpc_types_eth::{
    BlockTransactions, FeeHistory, Filter, FilterBlockOption, TransactionRequest,
};
use axum::{
    Json, Router,
    extract::{
        DefaultBodyLimit, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::{
    ExitStatus, Outcome, TxExecution,
    node::{self, Block, MinedTransaction, Node, NodeError},
    transaction::{self, MAX_TX_SIZE, SignedTransaction},
};

/// Limits of the JSON-RPC server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Largest request body (HTTP 413 above it).
    pub max_body_bytes: usize,
    /// Most requests in one batch.
    pub max_batch: usize,
    /// Most blocks one `eth_getLogs` may scan.
    pub max_log_block_range: u64,
    /// Most logs one `eth_getLogs` may return.
    pub max_logs: usize,
    /// Most filters installed at once (`eth_newFilter` & co).
    pub max_filters: usize,
    /// A filter not polled for this long is removed (geth: 5 minutes).
    pub filter_timeout: Duration,
    /// Most subscriptions one WebSocket connection may hold.
    pub max_subscriptions: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 5 * 1024 * 1024,
            max_batch: 100,
            max_log_block_range: 10_000,
            max_logs: 10_000,
            max_filters: 1_000,
            filter_timeout: Duration::from_mins(5),
            max_subscriptions: 100,
        }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// Error code (-32700 parse, -32600 invalid request, -32601 no method, -32602 bad
    /// params, -32000 transaction refused or failed, 3 execution reverted).
    pub code: i64,
    /// Human-readable message.
    pub message: String,
    /// Revert data for code 3.
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }

    fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

impl From<NodeError> for RpcError {
    /// A refused transaction (or unknown signer) is `-32000`, as geth reports txpool errors.
    fn from(err: NodeError) -> Self {
        Self::new(-32000, err.to_string())
    }
}

/// The error for a failed execution: a revert is code 3 with the revert bytes as `data`.
fn execution_error(status: &ExitStatus, output: &Bytes) -> RpcError {
    match status {
        ExitStatus::Revert => RpcError {
            code: 3,
            message: format!("execution reverted: {}", crate::describe_revert(output)),
            data: Some(Value::String(hex::encode_prefixed(output))),
        },
        ExitStatus::Halt(halt) => RpcError::new(-32000, format!("execution halted: {halt}")),
        ExitStatus::Success => RpcError::new(-32603, "internal error: success reported as error"),
    }
}

/// The JSON-RPC service: a node behind a lock, the limits, the installed filters, and the
/// stream of sealed blocks that WebSocket subscriptions follow.
#[derive(Debug)]
pub struct Rpc {
    node: Mutex<Node>,
    config: RpcConfig,
    filters: Mutex<Filters>,
    /// Sealed blocks, in order, for `eth_subscribe`.
    blocks: broadcast::Sender<Arc<Block>>,
    /// The last block number sent on `blocks` (updated under the node lock).
    published: AtomicU64,
}

/// How many sealed blocks a slow subscriber may fall behind before it misses some.
const BLOCK_CHANNEL: usize = 1024;

/// What an installed filter reports.
#[derive(Debug, Clone)]
enum FilterKind {
    /// Hashes of new blocks.
    Blocks,
    /// New logs matching the filter.
    Logs(Box<Filter>),
    /// Pending transactions: the devchain reports none (the open block is not a mempool).
    PendingTransactions,
}

#[derive(Debug)]
struct InstalledFilter {
    kind: FilterKind,
    /// The last block whose changes were reported.
    reported: u64,
    polled: Instant,
}

/// Installed filters by id.
#[derive(Debug, Default)]
struct Filters {
    next_id: u64,
    installed: HashMap<u64, InstalledFilter>,
}

fn hex_u64(n: u64) -> Value {
    Value::String(format!("{n:#x}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::new(-32603, e.to_string()))
}

/// A quantity given as a JSON number or a hex (or decimal) string.
fn quantity(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok()),
        _ => None,
    }
}

fn param<T: DeserializeOwned>(params: &[Value], index: usize, name: &str) -> Result<T, RpcError> {
    let value = params
        .get(index)
        .ok_or_else(|| RpcError::invalid_params(format!("missing parameter {index} ({name})")))?;
    // Deserialized from the borrowed value: no copy of the parameter first.
    T::deserialize(value)
        .map_err(|e| RpcError::invalid_params(format!("invalid parameter {index} ({name}): {e}")))
}

fn optional_param<T: DeserializeOwned>(
    params: &[Value],
    index: usize,
    name: &str,
) -> Result<Option<T>, RpcError> {
    match params.get(index) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => param(params, index, name).map(Some),
    }
}

fn quantity_param(params: &[Value], index: usize, name: &str) -> Result<u64, RpcError> {
    params.get(index).and_then(quantity).ok_or_else(|| {
        RpcError::invalid_params(format!("parameter {index} ({name}) must be a quantity"))
    })
}

impl Rpc {
    /// A service over `node`.
    #[must_use]
    pub fn new(node: Node, config: RpcConfig) -> Self {
        let published = AtomicU64::new(node.head().header.number);
        Self {
            node: Mutex::new(node),
            config,
            filters: Mutex::new(Filters::default()),
            blocks: broadcast::channel(BLOCK_CHANNEL).0,
            published,
        }
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// Runs `f` with the node locked (a panic in another request does not wedge the node: the
    /// state it left is still consistent because every mutation is a whole transaction), then
    /// sends the blocks it sealed to the subscribers.
    pub fn with_node<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let mut node = self.node.lock().unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut node);
        self.publish(&node);
        result
    }

    /// Sends the blocks sealed since the last call (under the node lock, so in order).
    fn publish(&self, node: &Node) {
        let head = node.head().header.number;
        let last = self.published.swap(head, Ordering::Relaxed);
        if head <= last || self.blocks.receiver_count() == 0 {
            return;
        }
        let first = (last + 1).max(head.saturating_sub(BLOCK_CHANNEL as u64));
        for number in first..=head {
            if let Some(block) = node.block_arc(number) {
                // No receiver left is not an error: nobody is subscribed any more.
                let _ = self.blocks.send(block);
            }
        }
    }

    fn filters(&self) -> std::sync::MutexGuard<'_, Filters> {
        self.filters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn install_filter(&self, head: u64, kind: FilterKind) -> Result<Value, RpcError> {
        let mut filters = self.filters();
        let timeout = self.config.filter_timeout;
        filters
            .installed
            .retain(|_, filter| filter.polled.elapsed() < timeout);
        if filters.installed.len() >= self.config.max_filters {
            return Err(RpcError::new(
                -32000,
                format!(
                    "too many filters installed ({}); uninstall some first",
                    self.config.max_filters
                ),
            ));
        }
        filters.next_id += 1;
        let id = filters.next_id;
        filters.installed.insert(
            id,
            InstalledFilter {
                kind,
                reported: head,
                polled: Instant::now(),
            },
        );
        Ok(hex_u64(id))
    }

    /// `eth_getFilterChanges`: what happened since the last poll (at most
    /// `max_log_block_range` blocks per poll; the rest comes with the next one).
    fn filter_changes(&self, node: &Node, id: u64) -> Result<Value, RpcError> {
        let head = node.head().header.number;
        let mut filters = self.filters();
        let timeout = self.config.filter_timeout;
        filters
            .installed
            .retain(|_, filter| filter.polled.elapsed() < timeout);
        let filter = filters
            .installed
            .get_mut(&id)
            .ok_or_else(|| RpcError::new(-32000, "filter not found"))?;
        filter.polled = Instant::now();
        // After `evm_revert` the head can be below what was reported.
        filter.reported = filter.reported.min(head);
        let from = filter.reported + 1;
        let to = head.min(
            filter
                .reported
                .saturating_add(self.config.max_log_block_range),
        );
        let changes = match &filter.kind {
            FilterKind::PendingTransactions => json!([]),
            FilterKind::Blocks => to_json(
                &(from..=to)
                    .filter_map(|n| node.block(n).map(|b| b.hash))
                    .collect::<Vec<_>>(),
            )?,
            FilterKind::Logs(wanted) => {
                let (lo, hi) = match wanted.block_option {
                    FilterBlockOption::Range {
                        from_block,
                        to_block,
                    } => (
                        from_block.map_or(0, |t| resolve_number(node, t)),
                        to_block.map_or(u64::MAX, |t| resolve_number(node, t)),
                    ),
                    FilterBlockOption::AtBlockHash(_) => (0, u64::MAX),
                };
                to_json(&logs_in(
                    node,
                    wanted,
                    from.max(lo),
                    to.min(hi),
                    self.config.max_logs,
                )?)?
            }
        };
        filter.reported = to.max(filter.reported);
        Ok(changes)
    }

    /// Answers one HTTP body: a request or a batch.
    #[must_use]
    pub fn handle_body(&self, body: &[u8]) -> Value {
        let request: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => return error_response(&Value::Null, &RpcError::new(-32700, e.to_string())),
        };
        match request {
            Value::Array(items) if items.is_empty() => {
                error_response(&Value::Null, &RpcError::new(-32600, "empty batch"))
            }
            Value::Array(items) if items.len() > self.config.max_batch => error_response(
                &Value::Null,
                &RpcError::new(
                    -32600,
                    format!(
                        "batch of {} requests, over the limit of {}",
                        items.len(),
                        self.config.max_batch
                    ),
                ),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|r| self.handle_request(r)).collect())
            }
            single => self.handle_request(&single),
        }
    }

    fn handle_request(&self, request: &Value) -> Value {
        let Value::Object(object) = request else {
            return error_response(
                &Value::Null,
                &RpcError::new(-32600, "request must be an object"),
            );
        };
        let id = object.get("id").cloned().unwrap_or(Value::Null);
        if !matches!(id, Value::Null | Value::Number(_) | Value::String(_)) {
            return error_response(&Value::Null, &RpcError::new(-32600, "invalid id"));
        }
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return error_response(&id, &RpcError::new(-32600, "jsonrpc must be \"2.0\""));
        }
        let Some(method) = object.get("method").and_then(Value::as_str) else {
            return error_response(&id, &RpcError::new(-32600, "method must be a string"));
        };
        let params: &[Value] = match object.get("params") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(params)) => params,
            Some(_) => {
                return error_response(&id, &RpcError::invalid_params("params must be an array"));
            }
        };
        match self.dispatch(method, params) {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(err) => error_response(&id, &err),
        }
    }

    /// Executes one method.
    ///
    /// # Errors
    /// The JSON-RPC error to answer with.
    #[allow(clippy::too_many_lines)] // one arm per method: a table, clearer in one place
    pub fn dispatch(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        // What needs no chain state — parsing a call request, decoding a transaction and
        // recovering its sender — runs before the node is locked: the lock covers execution only
        // (callers on several threads do that work in parallel).
        match method {
            "eth_call" => {
                let request: TransactionRequest = param(params, 0, "transaction")?;
                return self.with_node(|node| {
                    let block = state_block(node, params.get(1))?;
                    let execution = execution_of(node, &request)?;
                    let (outcome, _) = with_state(node, block, |c| c.simulate(&execution))?;
                    if outcome.is_success() {
                        to_json(&outcome.return_data)
                    } else {
                        Err(execution_error(&outcome.status, &outcome.return_data))
                    }
                });
            }
            "eth_estimateGas" => {
                let request: TransactionRequest = param(params, 0, "transaction")?;
                return self.with_node(|node| {
                    let block = state_block(node, params.get(1))?;
                    estimate_gas(node, block, &request).map(hex_u64)
                });
            }
            "eth_sendRawTransaction" => {
                let raw: Bytes = param(params, 0, "raw transaction")?;
                if raw.len() > MAX_TX_SIZE {
                    return Err(RpcError::new(
                        -32000,
                        format!(
                            "transaction is {} bytes, over the {MAX_TX_SIZE} byte limit",
                            raw.len()
                        ),
                    ));
                }
                let tx = SignedTransaction::decode(&raw).map_err(NodeError::from)?;
                return self.with_node(|node| {
                    let mined = node.submit(tx)?;
                    mined_result(node, &mined)
                });
            }
            _ => {}
        }
        self.with_node(|node| {
            let config = node.chain().config().clone();
            match method {
                "web3_clientVersion" => Ok(json!(concat!(
                    "datacloud-devchain/",
                    env!("CARGO_PKG_VERSION")
                ))),
                "eth_chainId" => Ok(hex_u64(config.chain_id)),
                "net_version" => Ok(json!(config.chain_id.to_string())),
                "net_listening" => Ok(json!(true)),
                "eth_syncing" => Ok(json!(false)),
                "eth_accounts" => to_json(&node.accounts()),
                "eth_blockNumber" => Ok(hex_u64(node.head().header.number)),
                "eth_gasPrice" => to_json(&config.basefee),
                "eth_maxPriorityFeePerGas" => Ok(hex_u64(0)),
                "eth_getBalance" => {
                    let address: Address = param(params, 0, "address")?;
                    let block = state_block(node, params.get(1))?;
                    to_json(&with_state(node, block, |c| c.balance(address))?)
                }
                "eth_getTransactionCount" => {
                    let address: Address = param(params, 0, "address")?;
                    let block = state_block(node, params.get(1))?;
                    Ok(hex_u64(with_state(node, block, |c| c.nonce(address))?))
                }
                "eth_getCode" => {
                    let address: Address = param(params, 0, "address")?;
                    let block = state_block(node, params.get(1))?;
                    to_json(&with_state(node, block, |c| c.code(address))?)
                }
                "eth_getStorageAt" => {
                    let address: Address = param(params, 0, "address")?;
                    let slot: U256 = param(params, 1, "slot")?;
                    let block = state_block(node, params.get(2))?;
                    to_json(&with_state(node, block, |c| {
                        c.storage(address, B256::from(slot))
                    })?)
                }
                "eth_feeHistory" => fee_history(node, params),
                "eth_sendTransaction" => {
                    let request: TransactionRequest = param(params, 0, "transaction")?;
                    let mined = send_transaction(node, &request)?;
                    mined_result(node, &mined)
                }
                "eth_getTransactionByHash" => {
                    let hash: B256 = param(params, 0, "hash")?;
                    match node.transaction(hash) {
                        Some((block, mined)) => to_json(&rpc_transaction(block, mined)),
                        None => Ok(Value::Null),
                    }
                }
                "eth_getTransactionReceipt" => {
                    let hash: B256 = param(params, 0, "hash")?;
                    match node.transaction(hash) {
                        Some((block, mined)) => to_json(&rpc_receipt(block, mined)),
                        None => Ok(Value::Null),
                    }
                }
                "eth_getBlockByNumber" => {
                    let tag: BlockNumberOrTag = param(params, 0, "block")?;
                    let full: bool = optional_param(params, 1, "full")?.unwrap_or(false);
                    match node.block(resolve_number(node, tag)) {
                        Some(block) => to_json(&rpc_block(block, full)),
                        None => Ok(Value::Null),
                    }
                }
                "eth_getBlockByHash" => {
                    let hash: B256 = param(params, 0, "hash")?;
                    let full: bool = optional_param(params, 1, "full")?.unwrap_or(false);
                    match node.block_by_hash(hash) {
                        Some(block) => to_json(&rpc_block(block, full)),
                        None => Ok(Value::Null),
                    }
                }
                "eth_getLogs" => {
                    let filter: Filter = param(params, 0, "filter")?;
                    get_logs(node, &filter, &self.config)
                }
                "eth_newFilter" => {
                    let filter: Filter = param(params, 0, "filter")?;
                    self.install_filter(node.head().header.number, FilterKind::Logs(filter.into()))
                }
                "eth_newBlockFilter" => {
                    self.install_filter(node.head().header.number, FilterKind::Blocks)
                }
                "eth_newPendingTransactionFilter" => {
                    self.install_filter(node.head().header.number, FilterKind::PendingTransactions)
                }
                "eth_getFilterChanges" => {
                    let id = quantity_param(params, 0, "filter id")?;
                    self.filter_changes(node, id)
                }
                "eth_getFilterLogs" => {
                    let id = quantity_param(params, 0, "filter id")?;
                    let kind = {
                        let mut filters = self.filters();
                        let filter = filters
                            .installed
                            .get_mut(&id)
                            .ok_or_else(|| RpcError::new(-32000, "filter not found"))?;
                        filter.polled = Instant::now();
                        filter.kind.clone()
                    };
                    match kind {
                        FilterKind::Logs(filter) => get_logs(node, &filter, &self.config),
                        _ => Err(RpcError::invalid_params("filter is not a log filter")),
                    }
                }
                "eth_uninstallFilter" => {
                    let id = quantity_param(params, 0, "filter id")?;
                    Ok(json!(self.filters().installed.remove(&id).is_some()))
                }
                "evm_mine" => {
                    node.mine()?;
                    Ok(json!("0x0"))
                }
                "evm_increaseTime" => {
                    let seconds = quantity_param(params, 0, "seconds")?;
                    Ok(hex_u64(node.increase_time(seconds)?))
                }
                "evm_snapshot" => Ok(hex_u64(node.snapshot())),
                "evm_revert" => {
                    let id = quantity_param(params, 0, "snapshot id")?;
                    Ok(json!(node.revert(id)?))
                }
                "anvil_setBalance" | "hardhat_setBalance" => {
                    let address: Address = param(params, 0, "address")?;
                    let balance: U256 = param(params, 1, "balance")?;
                    node.set_balance(address, balance)?;
                    Ok(Value::Null)
                }
                _ => Err(RpcError::new(-32601, format!("method not found: {method}"))),
            }
        })
    }
}

fn error_response(id: &Value, err: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": err.to_json() })
}

/// The state a block parameter names: `None` for the current state (`pending`: the open
/// block included), otherwise a sealed block's number (absent, `latest`, `safe` and
/// `finalized` name the head).
fn state_block(node: &Node, block: Option<&Value>) -> Result<Option<u64>, RpcError> {
    let head = node.head().header.number;
    let number = match block {
        None | Some(Value::Null) => head,
        Some(Value::String(s)) if s == "pending" => return Ok(None),
        Some(Value::String(s)) if matches!(s.as_str(), "latest" | "safe" | "finalized") => head,
        Some(Value::String(s)) if s == "earliest" => 0,
        Some(Value::Object(object)) => {
            if let Some(hash) = object.get("blockHash") {
                let hash: B256 = serde_json::from_value(hash.clone())
                    .map_err(|e| RpcError::invalid_params(format!("invalid blockHash: {e}")))?;
                node.block_by_hash(hash)
                    .ok_or_else(|| RpcError::invalid_params(format!("unknown block {hash}")))?
                    .header
                    .number
            } else {
                object
                    .get("blockNumber")
                    .and_then(quantity)
                    .ok_or_else(|| {
                        RpcError::invalid_params("a block object needs blockHash or blockNumber")
                    })?
            }
        }
        Some(other) => quantity(other).ok_or_else(|| {
            RpcError::invalid_params("the block must be a number, a tag or a block object")
        })?,
    };
    if number > head {
        return Err(RpcError::invalid_params(format!(
            "block {number} is not mined yet (the head is {head})"
        )));
    }
    Ok(Some(number))
}

/// Runs `f` on the state [`state_block`] named.
fn with_state<R>(
    node: &mut Node,
    block: Option<u64>,
    f: impl FnOnce(&mut crate::Devchain) -> R,
) -> Result<R, RpcError> {
    match block {
        None => Ok(f(node.chain_mut())),
        Some(number) => node
            .at_block(number, f)
            .ok_or_else(|| RpcError::invalid_params(format!("unknown block {number}"))),
    }
}

fn resolve_number(node: &Node, tag: BlockNumberOrTag) -> u64 {
    match tag {
        BlockNumberOrTag::Number(n) => n,
        BlockNumberOrTag::Earliest => 0,
        _ => node.head().header.number,
    }
}

/// The execution an `eth_call` / `eth_estimateGas` request describes.
fn execution_of(node: &Node, request: &TransactionRequest) -> Result<TxExecution, RpcError> {
    let config = node.chain().config();
    let input = request.input.input().cloned().unwrap_or_default();
    if input.len() > MAX_TX_SIZE {
        return Err(RpcError::invalid_params(format!(
            "calldata is {} bytes, over the {MAX_TX_SIZE} byte limit",
            input.len()
        )));
    }
    let to = match request.to {
        Some(TxKind::Call(address)) => Some(address),
        Some(TxKind::Create) | None => None,
    };
    let (addresses, keys) = request.access_list.as_ref().map_or((0, 0), |list| {
        let keys: usize = list.iter().map(|item| item.storage_keys.len()).sum();
        (list.len() as u64, keys as u64)
    });
    let intrinsic_gas = transaction::intrinsic_gas(to.is_none(), &input, addresses, keys);
    let gas_limit = request.gas.unwrap_or(config.block_gas_limit);
    if gas_limit > config.block_gas_limit {
        return Err(RpcError::invalid_params(format!(
            "gas {gas_limit} exceeds the block gas limit {}",
            config.block_gas_limit
        )));
    }
    if gas_limit < intrinsic_gas {
        return Err(RpcError::new(
            -32000,
            format!("intrinsic gas too low: gas {gas_limit}, needs {intrinsic_gas}"),
        ));
    }
    Ok(TxExecution {
        from: request.from.unwrap_or_default(),
        to,
        value: request.value.unwrap_or_default(),
        input,
        gas_limit,
        intrinsic_gas,
    })
}

/// Gas used by a simulation plus a 20 % margin (Stylus calls forward 63/64 of the gas left,
/// so a limit equal to the used gas can starve nested frames), capped at the block limit.
fn estimate_gas(
    node: &mut Node,
    block: Option<u64>,
    request: &TransactionRequest,
) -> Result<u64, RpcError> {
    let execution = execution_of(node, request)?;
    let (
        Outcome {
            status,
            return_data,
            gas_used,
            ..
        },
        _,
    ) = with_state(node, block, |c| c.simulate(&execution))?;
    if !status.is_success() {
        return Err(execution_error(&status, &return_data));
    }
    let block_limit = node.chain().config().block_gas_limit;
    Ok(gas_used.saturating_add(gas_used / 5).min(block_limit))
}

fn send_transaction(
    node: &mut Node,
    request: &TransactionRequest,
) -> Result<MinedTransaction, RpcError> {
    let from = request
        .from
        .ok_or_else(|| RpcError::invalid_params("eth_sendTransaction needs `from`"))?;
    let gas_limit = match request.gas {
        Some(gas) => gas,
        None => estimate_gas(node, None, request)?,
    };
    let base_fee = u128::try_from(node.chain().config().basefee).unwrap_or(u128::MAX);
    let max_fee = request
        .max_fee_per_gas
        .or(request.gas_price)
        .unwrap_or(base_fee.saturating_mul(2));
    let tip = request.max_priority_fee_per_gas.unwrap_or(0).min(max_fee);
    let to = match request.to {
        Some(TxKind::Call(address)) => Some(address),
        _ => None,
    };
    let tx = node::eip1559_request(
        to,
        request.value.unwrap_or_default(),
        request.input.input().cloned().unwrap_or_default(),
        gas_limit,
        max_fee,
        tip,
    );
    Ok(node.send_transaction(from, tx, request.nonce)?)
}

/// The transaction hash, or, when the mined transaction failed, the error a Hardhat-style
/// automining node returns (the transaction stays mined with status 0). With interval mining
/// the hash is returned either way, as the block is not sealed yet.
fn mined_result(node: &Node, mined: &MinedTransaction) -> Result<Value, RpcError> {
    if mined.success || node.block_time().is_some() {
        return to_json(&mined.tx.hash);
    }
    let mut err = execution_error(&mined.status, &mined.output);
    err.message = format!(
        "{} (transaction {} mined with status 0)",
        err.message, mined.tx.hash
    );
    Err(err)
}

fn fee_history(node: &Node, params: &[Value]) -> Result<Value, RpcError> {
    let count = quantity_param(params, 0, "block count")?.clamp(1, 1024);
    let newest: BlockNumberOrTag = param(params, 1, "newest block")?;
    let percentiles: Option<Vec<f64>> = optional_param(params, 2, "reward percentiles")?;
    let newest = resolve_number(node, newest).min(node.head().header.number);
    let count = count.min(newest + 1);
    let oldest = newest + 1 - count;
    let base_fee = u128::try_from(node.chain().config().basefee).unwrap_or(u128::MAX);
    let gas_used_ratio = (oldest..=newest)
        .map(|n| {
            node.block(n).map_or(0.0, |b| {
                #[allow(clippy::cast_precision_loss)] // a ratio for display
                let ratio = b.header.gas_used as f64 / b.header.gas_limit.max(1) as f64;
                ratio
            })
        })
        .collect();
    let history = FeeHistory {
        base_fee_per_gas: vec![base_fee; usize::try_from(count + 1).unwrap_or(1)],
        gas_used_ratio,
        base_fee_per_blob_gas: Vec::new(),
        blob_gas_used_ratio: Vec::new(),
        oldest_block: oldest,
        reward: percentiles.map(|p| vec![vec![0; p.len()]; usize::try_from(count).unwrap_or(0)]),
    };
    to_json(&history)
}

fn get_logs(node: &Node, filter: &Filter, limits: &RpcConfig) -> Result<Value, RpcError> {
    let head = node.head().header.number;
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let block = node
                .block_by_hash(hash)
                .ok_or_else(|| RpcError::invalid_params(format!("unknown block {hash}")))?;
            (block.header.number, block.header.number)
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => (
            from_block.map_or(head, |t| resolve_number(node, t)),
            to_block.map_or(head, |t| resolve_number(node, t)).min(head),
        ),
    };
    if from > to {
        return Ok(json!([]));
    }
    if to - from >= limits.max_log_block_range {
        return Err(RpcError::invalid_params(format!(
            "block range {from}..={to} is over the limit of {} blocks",
            limits.max_log_block_range
        )));
    }
    to_json(&logs_in(node, filter, from, to, limits.max_logs)?)
}

/// The logs of blocks `from..=to` that match `filter`'s addresses and topics, at most `max`.
fn logs_in(
    node: &Node,
    filter: &Filter,
    from: u64,
    to: u64,
    max: usize,
) -> Result<Vec<alloy_rpc_types_eth::Log>, RpcError> {
    let mut logs = Vec::new();
    for number in from..=to {
        let Some(block) = node.block(number) else {
            continue;
        };
        for mined in &block.transactions {
            for log in rpc_logs(block, mined) {
                if filter.matches(&log.inner) {
                    if logs.len() == max {
                        return Err(RpcError::invalid_params(format!(
                            "query returns more than {max} logs; narrow the range"
                        )));
                    }
                    logs.push(log);
                }
            }
        }
    }
    Ok(logs)
}

fn rpc_logs(block: &Block, mined: &MinedTransaction) -> Vec<alloy_rpc_types_eth::Log> {
    mined
        .logs
        .iter()
        .zip(mined.first_log_index..)
        .map(|(log, index)| alloy_rpc_types_eth::Log {
            inner: log.clone(),
            block_hash: Some(block.hash),
            block_number: Some(block.header.number),
            block_timestamp: Some(block.header.timestamp),
            transaction_hash: Some(mined.tx.hash),
            transaction_index: Some(mined.index),
            log_index: Some(index),
            removed: false,
        })
        .collect()
}

fn rpc_transaction(block: &Block, mined: &MinedTransaction) -> alloy_rpc_types_eth::Transaction {
    alloy_rpc_types_eth::Transaction {
        inner: Recovered::new_unchecked(mined.tx.envelope.clone(), mined.tx.sender),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        transaction_index: Some(mined.index),
        effective_gas_price: Some(mined.effective_gas_price),
    }
}

fn rpc_receipt(block: &Block, mined: &MinedTransaction) -> alloy_rpc_types_eth::TransactionReceipt {
    alloy_rpc_types_eth::TransactionReceipt {
        inner: node::receipt_envelope(mined, rpc_logs(block, mined)),
        transaction_hash: mined.tx.hash,
        transaction_index: Some(mined.index),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        gas_used: mined.gas_used,
        effective_gas_price: mined.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: mined.tx.sender,
        to: alloy_consensus::Transaction::to(&mined.tx.envelope),
        contract_address: mined.contract_address,
    }
}

fn rpc_header(block: &Block) -> alloy_rpc_types_eth::Header {
    alloy_rpc_types_eth::Header {
        hash: block.hash,
        inner: block.header.clone(),
        total_difficulty: Some(U256::ZERO),
        size: None,
    }
}

fn rpc_block(block: &Block, full: bool) -> alloy_rpc_types_eth::Block {
    let transactions = if full {
        BlockTransactions::Full(
            block
                .transactions
                .iter()
                .map(|t| rpc_transaction(block, t))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(block.transactions.iter().map(|t| t.tx.hash).collect())
    };
    alloy_rpc_types_eth::Block {
        header: rpc_header(block),
        uncles: Vec::new(),
        transactions,
        withdrawals: None,
    }
}

/// What the HTTP and WebSocket handlers share.
#[derive(Clone)]
struct App {
    rpc: Arc<Rpc>,
    /// Hands request bodies to the executor thread.
    executor: Executor,
    /// Turns `true` at shutdown: WebSocket connections and the miner end.
    stop: watch::Receiver<bool>,
}

/// Serves JSON-RPC on `listener` until `shutdown` completes: HTTP POST to `/`, and WebSocket
/// on the same path (JSON-RPC plus `eth_subscribe` / `eth_unsubscribe` for `newHeads` and
/// `logs`). With interval mining ([`Node::block_time`]) a task seals a block every
/// `block_time`.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    rpc: Arc<Rpc>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_sender, stop) = watch::channel(false);
    let limit = rpc.config.max_body_bytes;
    let miner = rpc
        .with_node(|node| node.block_time())
        .map(|every| tokio::spawn(mine_every(Arc::clone(&rpc), every, stop.clone())));
    let app = Router::new()
        .route("/", get(upgrade).post(handle))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(App {
            executor: Executor::start(Arc::clone(&rpc)),
            rpc,
            stop,
        });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Nobody listening means every connection and the miner are gone already.
            let _ = stop_sender.send(true);
        })
        .await;
    if let Some(miner) = miner {
        // The miner watches the same stop signal; waiting for it keeps no task alive after
        // `serve` returns. A panicked miner has nothing left to clean up.
        let _ = miner.await;
    }
    result
}

/// Interval mining: seals the open block (or an empty one) every `every` until stopped.
async fn mine_every(rpc: Arc<Rpc>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let rpc = Arc::clone(&rpc);
                match tokio::task::spawn_blocking(move || rpc.with_node(Node::mine)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => tracing::error!(%err, "interval mining failed"),
                    Err(err) => tracing::error!(%err, "interval mining panicked"),
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// One thread that runs every JSON-RPC request body, in arrival order.
///
/// Execution is serialized by the node anyway; what a thread per request (`spawn_blocking`)
/// added was a hand-off of the node's lock between sleeping threads on every request, each one
/// a wake-up on the critical path (~50–100 µs on a virtual machine's cores, as long as an
/// `eth_call` itself). This thread takes the next queued request as soon as it finishes one, and
/// only the answer crosses back to the connection's task.
#[derive(Clone)]
struct Executor {
    jobs: std::sync::mpsc::Sender<Job>,
}

struct Job {
    body: axum::body::Bytes,
    answer: tokio::sync::oneshot::Sender<Value>,
}

impl Executor {
    /// Starts the thread; it ends when the last `Executor` is dropped.
    fn start(rpc: Arc<Rpc>) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("devchain-rpc".into())
            .spawn(move || {
                for job in queue {
                    let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        rpc.handle_body(&job.body)
                    }))
                    .unwrap_or_else(|_| {
                        error_response(
                            &Value::Null,
                            &RpcError::new(-32603, "request handler panicked"),
                        )
                    });
                    // The connection may have gone: nobody to answer.
                    let _ = job.answer.send(value);
                }
            })
            .expect("spawn the JSON-RPC executor thread");
        Self { jobs }
    }

    /// Runs `body` on the executor thread; `None` when it is gone.
    async fn run(&self, body: axum::body::Bytes) -> Option<Value> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs.send(Job { body, answer }).ok()?;
        answered.await.ok()
    }
}

async fn handle(State(app): State<App>, body: axum::body::Bytes) -> Response {
    match app.executor.run(body).await {
        Some(value) => Json(value).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down").into_response(),
    }
}

async fn upgrade(State(app): State<App>, ws: WebSocketUpgrade) -> Response {
    let limit = app.rpc.config.max_body_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| ws_connection(socket, app))
}

/// What a subscription reports.
#[derive(Debug)]
enum Subscription {
    NewHeads,
    Logs(Box<Filter>),
}

/// One WebSocket connection: requests are answered in order; sealed blocks become
/// `eth_subscription` notifications for this connection's subscriptions.
async fn ws_connection(mut socket: WebSocket, app: App) {
    let mut blocks = app.rpc.blocks.subscribe();
    let mut stop = app.stop.clone();
    let mut subscriptions: HashMap<String, Subscription> = HashMap::new();
    let mut next_id = 0_u64;
    loop {
        tokio::select! {
            message = socket.recv() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text,
                        Err(_) => break,
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                let reply = ws_request(&app, &mut subscriptions, &mut next_id, text).await;
                if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                    break;
                }
            }
            block = blocks.recv() => {
                let block = match block {
                    Ok(block) => block,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a WebSocket subscriber fell behind; blocks skipped");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                for notification in notifications(&subscriptions, &block) {
                    if socket.send(Message::Text(notification.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// Answers one WebSocket message: `eth_subscribe` / `eth_unsubscribe` here, anything else
/// (batches included) as over HTTP.
async fn ws_request(
    app: &App,
    subscriptions: &mut HashMap<String, Subscription>,
    next_id: &mut u64,
    text: String,
) -> Value {
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&text) {
        let method = object.get("method").and_then(Value::as_str);
        if matches!(method, Some("eth_subscribe" | "eth_unsubscribe")) {
            let id = object.get("id").cloned().unwrap_or(Value::Null);
            let params = match object.get("params") {
                Some(Value::Array(params)) => params.clone(),
                _ => Vec::new(),
            };
            let result = if method == Some("eth_subscribe") {
                subscribe(&app.rpc, subscriptions, next_id, &params)
            } else {
                param::<String>(&params, 0, "subscription id")
                    .map(|id| json!(subscriptions.remove(&id).is_some()))
            };
            return match result {
                Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
                Err(err) => error_response(&id, &err),
            };
        }
    }
    app.executor
        .run(text.into_bytes().into())
        .await
        .unwrap_or_else(|| {
            error_response(
                &Value::Null,
                &RpcError::new(-32603, "the node is shutting down"),
            )
        })
}

fn subscribe(
    rpc: &Rpc,
    subscriptions: &mut HashMap<String, Subscription>,
    next_id: &mut u64,
    params: &[Value],
) -> Result<Value, RpcError> {
    if subscriptions.len() >= rpc.config.max_subscriptions {
        return Err(RpcError::new(
            -32000,
            format!(
                "too many subscriptions on this connection ({})",
                rpc.config.max_subscriptions
            ),
        ));
    }
    let kind: String = param(params, 0, "subscription kind")?;
    let subscription = match kind.as_str() {
        "newHeads" => Subscription::NewHeads,
        "logs" => {
            let filter: Filter = optional_param(params, 1, "filter")?.unwrap_or_default();
            Subscription::Logs(filter.into())
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "unsupported subscription {other:?}: use newHeads or logs"
            )));
        }
    };
    *next_id += 1;
    let id = format!("{:#x}", *next_id);
    subscriptions.insert(id.clone(), subscription);
    Ok(json!(id))
}

/// The notifications a sealed block triggers: its header for `newHeads`, each matching log
/// for `logs`.
fn notifications(subscriptions: &HashMap<String, Subscription>, block: &Block) -> Vec<Value> {
    let notification = |id: &str, result: Value| {
        json!({
            "jsonrpc": "2.0",
            "method": "eth_subscription",
            "params": { "subscription": id, "result": result },
        })
    };
    let mut out = Vec::new();
    for (id, subscription) in subscriptions {
        match subscription {
            Subscription::NewHeads => {
                if let Ok(header) = serde_json::to_value(rpc_header(block)) {
                    out.push(notification(id, header));
                }
            }
            Subscription::Logs(filter) => {
                for mined in &block.transactions {
                    for log in rpc_logs(block, mined) {
                        if filter.matches(&log.inner)
                            && let Ok(log) = serde_json::to_value(&log)
                        {
                            out.push(notification(id, log));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The anvil-style banner: dev accounts and their private keys.
#[must_use]
pub fn banner(node: &Node, address: std::net::SocketAddr) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("Available Accounts\n==================\n");
    let keys = node.dev_keys();
    for (i, (address, _)) in keys.iter().enumerate() {
        let _ = writeln!(out, "({i}) {address} (10000 ETH)");
    }
    out.push_str("\nPrivate Keys\n==================\n");
    for (i, (_, key)) in keys.iter().enumerate() {
        let _ = writeln!(out, "({i}) {key}");
    }
    let _ = writeln!(
        out,
        "\nChain ID: {}\nListening on {address}",
        node.chain().config().chain_id
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChainConfig;

    fn rpc() -> Rpc {
        Rpc::new(
            Node::new(ChainConfig::default(), 2).unwrap(),
            RpcConfig {
                max_batch: 3,
                max_log_block_range: 10,
                ..RpcConfig::default()
            },
        )
    }

    fn call(rpc: &Rpc, method: &str, params: &Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        rpc.handle_body(body.to_string().as_bytes())
    }

    fn error_code(response: &Value) -> i64 {
        response["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error in {response}"))
    }

    #[test]
    fn malformed_requests_get_standard_codes() {
        let rpc = rpc();
        assert_eq!(error_code(&rpc.handle_body(b"{not json")), -32700);
        assert_eq!(error_code(&rpc.handle_body(b"42")), -32600);
        assert_eq!(
            error_code(&rpc.handle_body(br#"{"id":1,"method":"eth_chainId"}"#)),
            -32600
        );
        assert_eq!(
            error_code(
                &rpc.handle_body(br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{}}"#)
            ),
            -32602
        );
        assert_eq!(error_code(&call(&rpc, "eth_nope", &json!([]))), -32601);
        assert_eq!(
            error_code(&call(&rpc, "eth_getBalance", &json!(["0x12"]))),
            -32602
        );
        assert_eq!(
            error_code(&call(&rpc, "eth_getBalance", &json!([]))),
            -32602
        );
        assert_eq!(
            error_code(&call(
                &rpc,
                "eth_getBalance",
                &json!([Address::ZERO, "0x99"])
            )),
            -32602,
            "block 0x99 is not mined yet"
        );
    }

    #[test]
    fn batches_answer_each_request_and_are_bounded() {
        let rpc = rpc();
        let batch = json!([
            { "jsonrpc": "2.0", "id": 1, "method": "eth_chainId" },
            { "jsonrpc": "2.0", "id": "two", "method": "eth_nope" },
            { "jsonrpc": "2.0", "id": 3, "method": "net_version", "params": [] },
        ]);
        let response = rpc.handle_body(batch.to_string().as_bytes());
        let items = response.as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["result"], json!("0x64aba"));
        assert_eq!(items[1]["id"], json!("two"));
        assert_eq!(error_code(&items[1]), -32601);
        assert_eq!(items[2]["result"], json!("412346"));
        assert_eq!(error_code(&rpc.handle_body(b"[]")), -32600);
        let too_many = Value::Array(vec![batch[0].clone(); 4]);
        assert_eq!(
            error_code(&rpc.handle_body(too_many.to_string().as_bytes())),
            -32600
        );
    }

    #[test]
    fn send_transaction_mines_a_block_with_a_receipt() {
        let rpc = rpc();
        let accounts = call(&rpc, "eth_accounts", &json!([]));
        let from = accounts["result"][0].clone();
        let to = Address::repeat_byte(0x42);
        let sent = call(
            &rpc,
            "eth_sendTransaction",
            &json!([{ "from": from, "to": to, "value": "0x1000" }]),
        );
        let hash = sent["result"].clone();
        assert!(hash.is_string(), "{sent}");
        assert_eq!(
            call(&rpc, "eth_blockNumber", &json!([]))["result"],
            json!("0x1")
        );
        let receipt = call(&rpc, "eth_getTransactionReceipt", &json!([hash]))["result"].clone();
        assert_eq!(receipt["status"], json!("0x1"));
        assert_eq!(receipt["gasUsed"], json!("0x5208"));
        assert_eq!(receipt["cumulativeGasUsed"], json!("0x5208"));
        assert_eq!(receipt["blockNumber"], json!("0x1"));
        let balance = call(&rpc, "eth_getBalance", &json!([to, "latest"]));
        assert_eq!(balance["result"], json!("0x1000"));
        // 10 000 ether - value - 21 000 gas at the base fee (no tip was asked for).
        let expected = U256::from(10_000_u64) * U256::from(10_u64).pow(U256::from(18))
            - U256::from(0x1000)
            - U256::from(21_000_u64 * 100_000_000);
        let paid = call(&rpc, "eth_getBalance", &json!([from, "latest"]));
        assert_eq!(paid["result"], to_json(&expected).unwrap());
        assert_eq!(receipt["effectiveGasPrice"], json!("0x5f5e100"));
        let tx = call(&rpc, "eth_getTransactionByHash", &json!([hash]))["result"].clone();
        assert_eq!(tx["from"], from);
        let block = call(&rpc, "eth_getBlockByNumber", &json!(["latest", false]))["result"].clone();
        assert_eq!(block["transactions"], json!([hash]));
        let genesis = call(&rpc, "eth_getBlockByNumber", &json!(["0x0", false]))["result"].clone();
        assert_eq!(block["parentHash"], genesis["hash"]);
        let by_hash =
            call(&rpc, "eth_getBlockByHash", &json!([block["hash"], true]))["result"].clone();
        assert_eq!(by_hash["transactions"][0]["hash"], hash);
        // Past-block state: before the transfer, by number, tag and hash.
        for before in [
            json!("0x0"),
            json!("earliest"),
            json!({ "blockHash": genesis["hash"] }),
        ] {
            let past = call(&rpc, "eth_getBalance", &json!([to, before]));
            assert_eq!(past["result"], json!("0x0"), "{before}");
            let nonce = call(&rpc, "eth_getTransactionCount", &json!([from, before]));
            assert_eq!(nonce["result"], json!("0x0"), "{before}");
        }
        let at_1 = call(&rpc, "eth_getBalance", &json!([to, "0x1"]));
        assert_eq!(at_1["result"], json!("0x1000"));
        let nonce = call(&rpc, "eth_getTransactionCount", &json!([from, "latest"]));
        assert_eq!(nonce["result"], json!("0x1"));
    }

    #[test]
    fn refused_transactions_change_nothing() {
        let rpc = rpc();
        let unknown = call(
            &rpc,
            "eth_sendTransaction",
            &json!([{ "from": Address::repeat_byte(1), "to": Address::ZERO }]),
        );
        assert_eq!(error_code(&unknown), -32000);
        let garbage = call(&rpc, "eth_sendRawTransaction", &json!(["0x02c0"]));
        assert_eq!(error_code(&garbage), -32000);
        let not_hex = call(&rpc, "eth_sendRawTransaction", &json!(["zz"]));
        assert_eq!(error_code(&not_hex), -32602);
        assert_eq!(
            call(&rpc, "eth_blockNumber", &json!([]))["result"],
            json!("0x0")
        );
    }

    #[test]
    fn snapshots_revert_state_and_blocks() {
        let rpc = rpc();
        let target = Address::repeat_byte(0x77);
        let id = call(&rpc, "evm_snapshot", &json!([]))["result"].clone();
        call(&rpc, "anvil_setBalance", &json!([target, "0x10"]));
        call(&rpc, "evm_increaseTime", &json!([100]));
        call(&rpc, "evm_mine", &json!([]));
        assert_eq!(
            call(&rpc, "eth_blockNumber", &json!([]))["result"],
            json!("0x1")
        );
        let block = call(&rpc, "eth_getBlockByNumber", &json!(["latest", false]))["result"].clone();
        let genesis = ChainConfig::default().genesis_timestamp;
        assert_eq!(block["timestamp"], hex_u64(genesis + 101));
        assert_eq!(
            call(&rpc, "evm_revert", &json!([id]))["result"],
            json!(true)
        );
        assert_eq!(
            call(&rpc, "eth_blockNumber", &json!([]))["result"],
            json!("0x0")
        );
        assert_eq!(
            call(&rpc, "eth_getBalance", &json!([target]))["result"],
            json!("0x0")
        );
        assert_eq!(
            call(&rpc, "evm_revert", &json!([id]))["result"],
            json!(false)
        );
    }

    #[test]
    fn log_queries_are_bounded() {
        let rpc = rpc();
        let wide = call(
            &rpc,
            "eth_getLogs",
            &json!([{ "fromBlock": "0x0", "toBlock": "0x100000" }]),
        );
        // The range is clamped to the head first, so only a real wide range fails.
        assert_eq!(wide["result"], json!([]));
        for _ in 0..11 {
            call(&rpc, "evm_mine", &json!([]));
        }
        let too_wide = call(
            &rpc,
            "eth_getLogs",
            &json!([{ "fromBlock": "0x0", "toBlock": "latest" }]),
        );
        assert_eq!(error_code(&too_wide), -32602);
    }

    /// A Stylus program that always reverts with `0xdeadbeef`.
    const REVERTER: &str = r#"
        (module
          (import "vm_hooks" "write_result" (func $write_result (param i32 i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "\de\ad\be\ef")
          (func (export "user_entrypoint") (param i32) (result i32)
            (call $write_result (i32.const 0) (i32.const 4))
            (i32.const 1)))"#;

    #[test]
    fn a_reverting_transaction_is_mined_with_status_0_and_reported_as_code_3() {
        let rpc = rpc();
        let (from, program) = rpc.with_node(|node| {
            let from = node.accounts()[0];
            let wasm = wat::parse_str(REVERTER).unwrap();
            let chain = node.chain_mut();
            let program = chain.deploy(from, &wasm).unwrap();
            chain.activate(from, program).unwrap();
            (from, program)
        });
        let called = call(&rpc, "eth_call", &json!([{ "from": from, "to": program }]));
        assert_eq!(error_code(&called), 3);
        assert_eq!(called["error"]["data"], json!("0xdeadbeef"));
        let estimated = call(
            &rpc,
            "eth_estimateGas",
            &json!([{ "from": from, "to": program }]),
        );
        assert_eq!(error_code(&estimated), 3);
        let sent = call(
            &rpc,
            "eth_sendTransaction",
            &json!([{ "from": from, "to": program, "gas": "0x100000" }]),
        );
        assert_eq!(error_code(&sent), 3);
        assert_eq!(sent["error"]["data"], json!("0xdeadbeef"));
        let block = call(&rpc, "eth_getBlockByNumber", &json!(["latest", false]))["result"].clone();
        assert_eq!(block["number"], json!("0x1"));
        let hash = block["transactions"][0].clone();
        let receipt = call(&rpc, "eth_getTransactionReceipt", &json!([hash]))["result"].clone();
        assert_eq!(receipt["status"], json!("0x0"));
        assert_eq!(receipt["logs"], json!([]));
    }

    /// A Stylus program that emits one log whose topic is calldata word 0.
    const EMITTER: &str = r#"
        (module
          (import "vm_hooks" "read_args" (func $read_args (param i32)))
          (import "vm_hooks" "emit_log" (func $emit_log (param i32 i32 i32)))
          (memory (export "memory") 1)
          (func (export "user_entrypoint") (param i32) (result i32)
            (call $read_args (i32.const 0))
            (call $emit_log (i32.const 0) (i32.const 32) (i32.const 1))
            (i32.const 0)))"#;

    #[test]
    fn subscriptions_are_checked_capped_and_notify_only_matching_logs() {
        let rpc = Rpc::new(
            Node::new(ChainConfig::default(), 1).unwrap(),
            RpcConfig {
                max_subscriptions: 2,
                ..RpcConfig::default()
            },
        );
        let mut subscriptions = HashMap::new();
        let mut next = 0;
        let unsupported = subscribe(
            &rpc,
            &mut subscriptions,
            &mut next,
            &[json!("newPendingTransactions")],
        );
        assert_eq!(unsupported.unwrap_err().code, -32602);
        let program = rpc.with_node(|node| {
            let from = node.accounts()[0];
            let chain = node.chain_mut();
            let program = chain
                .deploy(from, &wat::parse_str(EMITTER).unwrap())
                .unwrap();
            chain.activate(from, program).unwrap();
            program
        });
        let wanted = B256::repeat_byte(0xaa);
        let heads = subscribe(&rpc, &mut subscriptions, &mut next, &[json!("newHeads")]).unwrap();
        let logs = subscribe(
            &rpc,
            &mut subscriptions,
            &mut next,
            &[
                json!("logs"),
                json!({ "address": program, "topics": [wanted] }),
            ],
        )
        .unwrap();
        let over = subscribe(&rpc, &mut subscriptions, &mut next, &[json!("newHeads")]);
        assert_eq!(
            over.unwrap_err().code,
            -32000,
            "capped at two per connection"
        );

        let from = rpc.with_node(|node| node.accounts()[0]);
        for topic in [B256::repeat_byte(0xbb), wanted] {
            let sent = call(
                &rpc,
                "eth_sendTransaction",
                &json!([{ "from": from, "to": program, "data": topic, "gas": "0x100000" }]),
            );
            assert!(sent["result"].is_string(), "{sent}");
        }
        let (other, matching) =
            rpc.with_node(|node| (node.block_arc(1).unwrap(), node.block_arc(2).unwrap()));
        let for_other = notifications(&subscriptions, &other);
        assert_eq!(for_other.len(), 1, "the head only: its log does not match");
        assert_eq!(for_other[0]["params"]["subscription"], heads);
        assert_eq!(for_other[0]["params"]["result"]["number"], json!("0x1"));
        let for_matching = notifications(&subscriptions, &matching);
        assert_eq!(for_matching.len(), 2);
        let log = for_matching
            .iter()
            .find(|n| n["params"]["subscription"] == logs)
            .expect("a log notification");
        assert_eq!(log["params"]["result"]["topics"], json!([wanted]));
        assert_eq!(log["params"]["result"]["blockNumber"], json!("0x2"));
    }

    #[test]
    fn reverts_are_code_3_with_data() {
        let err = execution_error(
            &ExitStatus::Revert,
            &Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
        );
        assert_eq!(err.code, 3);
        assert_eq!(err.data, Some(json!("0xdeadbeef")));
    }
}
