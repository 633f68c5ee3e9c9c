//! # datacloud-devchain — an embedded chain that runs Arbitrum Stylus programs
//!
//! The contracts' real WASM executes here as Nitro would execute it: the same `vm_hooks` host
//! interface, the same ink prices, the same deployment format (`0xEFF000 ‖ dict ‖ brotli(wasm)`)
//! and the same activation step through `ArbWasm`.
//!
//! Table of contents:
//! - [`chain`]: the [`Devchain`] API — `deploy`, `activate`, `call`, `static_call`, balances,
//!   the block clock.
//! - [`machine`]: call frames — value transfer, precompile dispatch, program execution with
//!   wasmi, journal checkpoints that undo failed frames.
//! - [`host`]: the `vm_hooks` host functions with Nitro's semantics and ink costs.
//! - [`program`]: Nitro's code format, the stylus-tools deployment prelude, and activation-time
//!   validation of WASM.
//! - [`precompiles`]: `ecrecover`, `sha256`, `identity`, `ArbSys`, `ArbWasm`.
//! - [`transaction`]: signed transactions — decoding, sender recovery, validation.
//! - [`node`]: blocks (automine or interval mining), receipts, dev accounts, snapshots,
//!   past-block state ([`Node`], [`NodeConfig`]).
//! - [`persist`]: the redb database of a node with a data directory: one write transaction
//!   per block, so a `kill -9` never leaves half a block.
//! - [`rpc`]: the Ethereum JSON-RPC server over HTTP and WebSocket ([`serve`]): filters,
//!   `eth_subscribe` (`newHeads`, `logs`), the interval-mining timer.
//! - [`state`]: accounts, storage, logs and activations, journaled.
//! - [`pricing`]: ink and gas constants transcribed from Nitro.
//! - [`config`]: chain parameters ([`ChainConfig`]).
//! - [`error`]: typed errors ([`DevchainError`], [`ProgramError`], [`Halt`]).
//!
//! ## Why wasmi
//!
//! Programs run in [wasmi](https://docs.rs/wasmi): a deterministic interpreter with built-in
//! fuel metering and no JIT. The same program, input and state consume the same ink on every
//! machine, untrusted WASM is never compiled to native code, and wasmi's per-operator fuel table
//! carries Nitro's `pricing_v1` ink prices (see [`pricing::operator_costs`]).
//!
//! ## Where the devchain differs from Nitro (known, deliberate)
//!
//! - Per-operator ink is Nitro's price rounded to 50-ink units (wasmi costs are `u8`), and
//!   `br_table` / `call_indirect` are charged their base price only; hostio ink is exact.
//! - Program init cost is Nitro's minimum (`PROGRAM_INIT_GAS`), not the per-module estimate;
//!   the module hash is keccak256 of the WASM; the activation data fee prices the WASM size at
//!   the data pricer's minimum price (Nitro prices the native-code estimate under demand).
//! - Only brotli dictionary 0 (none) is supported; fragment reads are not charged gas.
//! - No EVM: EVM bytecode and non-Stylus init code are refused with a clear error.
//! - The node ([`node`]) automines one transaction per block by default; with a `block_time`
//!   it executes each transaction at once into an open block (so nonces and `pending` state
//!   advance immediately, there is no mempool ordering by fee) and seals that block every
//!   `block_time`, or earlier when the next transaction would pass the block gas limit.
//!   Block timestamps are the parent's + 1 s (+ `evm_increaseTime`), not the wall clock.
//! - Past-block state (`eth_call`, `eth_getBalance`, ... at a block number or hash) is
//!   rebuilt by rolling the head state back through per-block diffs: exact, but its cost grows
//!   with the changes made since that block. `latest` is the last sealed block; `pending`
//!   includes the open block. Header `stateRoot` is the empty-trie root (no state trie is
//!   built); transaction and receipt roots are real.
//! - Persistence ([`NodeConfig::data_dir`]; in memory by default): blocks, receipts, logs,
//!   state, per-block diffs and the clock. Changes made outside blocks (`anvil_setBalance`,
//!   [`Node::chain_mut`]) are committed at once when no block is open, else with that block.
//!   `evm_snapshot` ids live in memory only (a restart forgets them); `evm_revert` rewrites
//!   the database.
//! - `eth_newPendingTransactionFilter` never reports anything (the open block is not a
//!   mempool); `eth_subscribe` supports `newHeads` and `logs` only, and only in a single
//!   (non-batch) WebSocket request.
//! - `eth_estimateGas` is the simulated gas plus 20 % (no binary search); `eth_call` runs with
//!   state-changing semantics and undoes everything.
//! - A mined transaction that reverts is reported as Hardhat does in automine: JSON-RPC error
//!   code 3 with the revert data (the transaction stays mined with status 0). With interval
//!   mining the hash is returned, and the receipt, once sealed, has status 0.

pub mod chain;
pub mod config;
pub mod error;
pub mod host;
pub mod machine;
pub mod node;
pub mod persist;
pub mod precompiles;
pub mod pricing;
pub mod program;
pub mod rpc;
pub mod state;
pub mod transaction;

pub use alloy_primitives::{Address, B256, Bytes, Log, U256};
pub use chain::{Activation, ChainSnapshot, Devchain, Outcome, TxExecution, describe_revert};
pub use config::ChainConfig;
pub use error::{DevchainError, Halt, ProgramError};
pub use machine::ExitStatus;
pub use node::{Node, NodeConfig, NodeError};
pub use persist::DatabaseError;

pub use rpc::{Rpc, RpcConfig, RpcError, serve};
pub use transaction::{SignedTransaction, TxError};
