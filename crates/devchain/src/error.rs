//! Typed errors: why a deployment, an activation or a frame failed.

use alloy_primitives::{Address, B256, U256};

/// Errors returned by the [`Devchain`](crate::Devchain) API.
#[derive(Debug, thiserror::Error)]
pub enum DevchainError {
    /// The WASM could not be wrapped into Nitro's deployment format.
    #[error("cannot deploy: {0}")]
    Deploy(#[from] ProgramError),
    /// A call that the API expected to succeed did not (the activation call, for instance).
    #[error("call to {to} failed: {reason}")]
    CallFailed {
        /// The called account.
        to: Address,
        /// The halt reason or the decoded revert.
        reason: String,
        /// Raw revert data, if any.
        revert_data: Vec<u8>,
    },
    /// The sender cannot pay for what it asked.
    #[error("{address} has {have} wei, needs {want}")]
    InsufficientBalance {
        /// The sender.
        address: Address,
        /// Its balance.
        have: U256,
        /// What the call needs.
        want: U256,
    },
}

/// Why a Stylus program cannot be deployed, activated or run.
///
/// The rules come from Nitro: `arbos/programs/programs.go` (`getWasm`, `ActivateProgram`) and
/// `crates/prover/src/binary.rs` (`parse_user`, `check_func`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// The account's code does not start with the Stylus prefix `0xEFF000`.
    #[error("code is not a Stylus program (no 0xEFF000 prefix): ProgramNotWasm")]
    NotWasm,
    /// Only dictionary 0 (none) is supported by the devchain.
    #[error("unsupported brotli dictionary {0} (the devchain supports 0 = none)")]
    UnsupportedDictionary(u8),
    /// Brotli failed, or the decompressed WASM is larger than the limit.
    #[error("brotli decompression failed or exceeded {max_size} bytes")]
    Decompression {
        /// The configured `MaxWasmSize`.
        max_size: usize,
    },
    /// Compression failed while deploying.
    #[error("brotli compression failed: {0}")]
    Compression(String),
    /// The compressed code is larger than the chain's maximum code size.
    #[error("compressed program is {size} bytes, over the {max} byte code size limit")]
    CodeTooLarge {
        /// Size of `0xEFF000 ‖ dict ‖ brotli(wasm)`.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The decompressed WASM exceeds `MaxWasmSize`.
    #[error("decompressed WASM is {size} bytes, over the {max} byte MaxWasmSize")]
    WasmTooLarge {
        /// Decompressed size.
        size: usize,
        /// The configured `MaxWasmSize`.
        max: usize,
    },
    /// wasmi rejected the module (parse or validation error).
    #[error("invalid WASM: {0}")]
    Invalid(String),
    /// A structural rule of `parse_user` was violated.
    #[error("WASM rejected: {0}")]
    Rejected(String),
    /// The module imports something that is not a supported host function.
    #[error("unknown import {module}::{name} (Stylus programs may only import vm_hooks)")]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// The program was already activated at the current Stylus version.
    #[error("program {codehash} is already activated: ProgramUpToDate")]
    UpToDate {
        /// The program's codehash.
        codehash: B256,
    },
    /// The activation call did not pay the data fee.
    #[error("activation needs {want} wei of data fee, got {have}: ProgramInsufficientValue")]
    InsufficientValue {
        /// Value sent.
        have: U256,
        /// Data fee.
        want: U256,
    },
}

/// Why a call frame halted without a program-level revert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Halt {
    /// Ink (or gas) ran out.
    #[error("out of ink")]
    OutOfInk,
    /// The called account holds a Stylus program that was never activated through ArbWasm.
    #[error(
        "program at {0} is not activated: call ArbWasm.activateProgram first (ProgramNotActivated)"
    )]
    ProgramNotActivated(Address),
    /// The called account holds EVM bytecode.
    #[error("EVM bytecode is not supported by the devchain (account {0}); deploy Stylus WASM")]
    EvmBytecode(Address),
    /// The called account holds a fragment of a larger program, which is data.
    #[error("account {0} holds a Stylus code fragment, which cannot be called; call its root")]
    CodeFragment(Address),
    /// A state change was attempted inside a static call.
    #[error("write protection: state change inside a static call")]
    WriteProtection,
    /// The sender of a value transfer lacks the funds.
    #[error("insufficient balance for transfer: {address} has {have}, needs {want}")]
    InsufficientBalance {
        /// The payer.
        address: Address,
        /// Its balance.
        have: U256,
        /// The value.
        want: U256,
    },
    /// The 1024-frame call depth limit was reached.
    #[error("call depth limit reached")]
    CallDepth,
    /// The WASM trapped (unreachable, out-of-bounds memory, ...).
    #[error("WASM trap: {0}")]
    Trap(String),
    /// A host function was called with invalid arguments.
    #[error("bad hostio call: {0}")]
    BadHostio(String),
    /// The program could not be instantiated or activated.
    #[error("{0}")]
    Program(ProgramError),
    /// A precompile rejected its input.
    #[error("precompile failure: {0}")]
    Precompile(String),
    /// CREATE/CREATE2 init code that is not the Stylus deployment prelude.
    #[error("EVM init code is not supported by the devchain; use the Stylus deployment prelude")]
    UnsupportedInitCode,
    /// CREATE/CREATE2 target already has code or a nonce.
    #[error("contract address collision at {0}")]
    AddressCollision(Address),
    /// A halt read back from the node's database, by its message.
    #[error("{0}")]
    Recorded(String),
}
