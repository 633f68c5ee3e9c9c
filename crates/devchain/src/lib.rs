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
//! - [`node`]: blocks, receipts, dev accounts, snapshots ([`Node`]).
//! - [`rpc`]: the Ethereum JSON-RPC server over HTTP ([`serve`]).
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
//! - The node ([`node`]) automines one transaction per block and keeps state for the head
//!   only: block parameters other than the head (or `latest`/`pending`) are refused. Header
//!   `stateRoot` is the empty-trie root (no state trie is built); transaction and receipt roots
//!   are real.
//! - `eth_estimateGas` is the simulated gas plus 20 % (no binary search); `eth_call` runs with
//!   state-changing semantics and undoes everything.
//! - A mined transaction that reverts is reported as Hardhat does in automine: JSON-RPC error
//!   code 3 with the revert data (the transaction stays mined with status 0).

pub mod chain;
pub mod config;
pub mod error;
pub mod host;
pub mod machine;
pub mod node;
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
pub use node::{Node, NodeError};

pub use rpc::{Rpc, RpcConfig, RpcError, serve};
pub use transaction::{SignedTransaction, TxError};
