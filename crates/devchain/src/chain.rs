//! The [`Devchain`] API: deploy, activate, call, and the clock.
//!
//! Each `call` is executed like a transaction's execution (nonce bump, intrinsic gas, fresh
//! EIP-2929 warm sets, logs collected). Signed transactions enter through
//! [`Devchain::transact`] (see [`crate::transaction`]); blocks and receipts live in
//! [`crate::node`].

use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use alloy_sol_types::{SolCall, SolError, SolInterface};

use crate::{
    config::ChainConfig,
    error::{DevchainError, Halt, ProgramError},
    machine::{self, CallKind, ExitStatus, Message, Runtime, World},
    precompiles::{self, ArbWasm},
    program,
    state::State,
};

/// The result of a call.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How the outermost frame ended.
    pub status: ExitStatus,
    /// Return data on success, revert data otherwise.
    pub return_data: Bytes,
    /// Logs emitted (empty unless the call succeeded).
    pub logs: Vec<Log>,
    /// Gas used, including the `21_000` + calldata intrinsic cost.
    pub gas_used: u64,
}

impl Outcome {
    /// Whether the call succeeded.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

/// What an activation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// Stylus version.
    pub version: u16,
    /// Data fee paid, in wei.
    pub data_fee: U256,
}

/// A validated transaction, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxExecution {
    /// The recovered sender.
    pub from: Address,
    /// The callee; `None` creates a contract.
    pub to: Option<Address>,
    /// Wei sent along.
    pub value: U256,
    /// Calldata, or init code for a creation.
    pub input: Bytes,
    /// The transaction's gas limit.
    pub gas_limit: u64,
    /// Intrinsic gas, already checked to be at most `gas_limit`.
    pub intrinsic_gas: u64,
}

/// A saved copy of a chain's state and block context ([`Devchain::snapshot`]).
#[derive(Debug, Clone)]
pub struct ChainSnapshot {
    state: State,
    env: machine::Env,
}

/// An in-memory chain that runs Stylus programs.
#[derive(Debug)]
pub struct Devchain {
    world: World,
    rt: Arc<Runtime>,
}

/// `21000 + 16 × non-zero bytes + 4 × zero bytes` (`core.IntrinsicGas`).
pub(crate) fn intrinsic_gas(calldata: &[u8]) -> u64 {
    let non_zeros: u64 = calldata.iter().map(|&b| u64::from(b != 0)).sum();
    let zeros = calldata.len() as u64 - non_zeros;
    21000 + 16 * non_zeros + 4 * zeros
}

fn block_hash(number: u64, parent: B256, timestamp: u64) -> B256 {
    let mut preimage = Vec::with_capacity(48);
    preimage.extend_from_slice(parent.as_slice());
    preimage.extend_from_slice(&number.to_be_bytes());
    preimage.extend_from_slice(&timestamp.to_be_bytes());
    keccak256(preimage)
}

impl Devchain {
    /// A new chain at block 0 with no accounts.
    #[must_use]
    pub fn new(config: ChainConfig) -> Self {
        let timestamp = config.genesis_timestamp;
        let mut world = World {
            config,
            ..World::default()
        };
        world.env.timestamp = timestamp;
        world.env.block_hashes = vec![block_hash(0, B256::ZERO, timestamp)];
        Self {
            world,
            rt: Runtime::new(),
        }
    }

    /// A chain resumed from a database: its state, clock and the hashes of blocks
    /// `0..=head` (the head's number is the last index).
    pub(crate) fn resume(
        config: ChainConfig,
        state: State,
        timestamp: u64,
        block_hashes: Vec<B256>,
    ) -> Self {
        let mut chain = Self::new(config);
        chain.world.state = state;
        chain.world.env.number = (block_hashes.len() as u64).saturating_sub(1);
        chain.world.env.timestamp = timestamp;
        chain.world.env.block_hashes = block_hashes;
        chain
    }

    /// The world state, mutably (the node takes block diffs and rolls back to past blocks).
    pub(crate) fn state_mut(&mut self) -> &mut State {
        &mut self.world.state
    }

    /// Replaces the block context; returns the previous one (past-block queries).
    pub(crate) fn replace_env(&mut self, env: machine::Env) -> machine::Env {
        std::mem::replace(&mut self.world.env, env)
    }

    /// The block context.
    pub(crate) fn env(&self) -> &machine::Env {
        &self.world.env
    }

    /// Chain parameters.
    #[must_use]
    pub fn config(&self) -> &ChainConfig {
        &self.world.config
    }

    /// Read access to the world state.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.world.state
    }

    /// Sets an account's balance.
    pub fn set_balance(&mut self, address: Address, balance: U256) {
        self.world.state.set_balance(address, balance);
    }

    /// Replaces an account's code (like `anvil_setCode`); a Stylus program still needs
    /// activation.
    pub fn set_code(&mut self, address: Address, code: Bytes) {
        self.world.state.set_code(address, code);
    }

    /// An account's balance.
    #[must_use]
    pub fn balance(&self, address: Address) -> U256 {
        self.world.state.balance(address)
    }

    /// An account's nonce.
    #[must_use]
    pub fn nonce(&self, address: Address) -> u64 {
        self.world.state.nonce(address)
    }

    /// An account's code.
    #[must_use]
    pub fn code(&self, address: Address) -> Bytes {
        self.world.state.code(address)
    }

    /// A storage slot.
    #[must_use]
    pub fn storage(&self, address: Address, key: B256) -> B256 {
        self.world.state.storage(address, key)
    }

    /// Current block number.
    #[must_use]
    pub fn block_number(&self) -> u64 {
        self.world.env.number
    }

    /// Current block timestamp.
    #[must_use]
    pub fn timestamp(&self) -> u64 {
        self.world.env.timestamp
    }

    /// Hash of block `number`, if it exists.
    #[must_use]
    pub fn block_hash(&self, number: u64) -> Option<B256> {
        self.world
            .env
            .block_hashes
            .get(usize::try_from(number).ok()?)
            .copied()
    }

    /// Advances one block (timestamp + 1 s); returns the new block number.
    pub fn mine(&mut self) -> u64 {
        let env = &mut self.world.env;
        let parent = env.block_hashes.last().copied().unwrap_or_default();
        env.number += 1;
        env.timestamp += 1;
        env.block_hashes
            .push(block_hash(env.number, parent, env.timestamp));
        env.number
    }

    /// Mines empty blocks up to `number` (never goes back).
    pub fn set_block_number(&mut self, number: u64) {
        while self.world.env.number < number {
            self.mine();
        }
    }

    /// Sets the timestamp seen by the next calls.
    pub fn set_timestamp(&mut self, timestamp: u64) {
        self.world.env.timestamp = timestamp;
    }

    /// Deploys `wasm` from `from` as stylus-tools does: the code `0xEFF000 ‖ 0x00 ‖
    /// brotli(wasm)` is created at `from.create(nonce)` through the deployment prelude; when it
    /// is over the code size limit, the compressed WASM is split into `0xEFF001` fragments
    /// deployed first and a `0xEFF002` root program is deployed last (stylus-tools
    /// `Code::split_if_large`). Returns the program's (root's) address.
    ///
    /// # Errors
    /// [`DevchainError::Deploy`] if compression fails or the program needs more fragments than
    /// `max_fragment_count`.
    pub fn deploy(&mut self, from: Address, wasm: &[u8]) -> Result<Address, DevchainError> {
        let code = program::wrap(wasm)?;
        let max = self.world.config.max_code_size;
        if code.len() <= max {
            return self.create_code(from, &code);
        }
        let compressed = &code[4..];
        let chunk = max.saturating_sub(program::FRAGMENT_PREFIX.len()).max(1);
        let count = compressed.len().div_ceil(chunk);
        if count > self.world.config.max_fragment_count {
            return Err(ProgramError::CodeTooLarge {
                size: code.len(),
                max: max * self.world.config.max_fragment_count,
            }
            .into());
        }
        let decompressed_len =
            u32::try_from(wasm.len()).map_err(|_| ProgramError::WasmTooLarge {
                size: wasm.len(),
                max: self.world.config.max_wasm_size,
            })?;
        let mut fragments = Vec::with_capacity(count);
        for piece in compressed.chunks(chunk) {
            fragments.push(self.create_code(from, &program::fragment_code(piece))?);
        }
        self.create_code(from, &program::root_code(decompressed_len, &fragments))
    }

    /// CREATE of the stylus-tools prelude returning `code`.
    fn create_code(&mut self, from: Address, code: &[u8]) -> Result<Address, DevchainError> {
        let init = program::deployment_init_code(code);
        self.world.state.begin_tx();
        let nonce = self.world.state.nonce(from);
        let gas_limit = self.world.config.call_gas_limit;
        let (outcome, created) = self.run_create(
            from,
            U256::ZERO,
            &init,
            gas_limit,
            intrinsic_gas(&init),
            nonce,
        );
        match (outcome.status, created) {
            (ExitStatus::Success, Some(address)) => {
                self.world.state.set_nonce(from, nonce + 1);
                Ok(address)
            }
            (ExitStatus::Halt(Halt::Program(err)), _) => Err(err.into()),
            (status, _) => Err(DevchainError::CallFailed {
                to: from.create(nonce),
                reason: format!("{status:?}"),
                revert_data: Vec::new(),
            }),
        }
    }

    /// Contract creation as a transaction runs it: the init code must be the stylus-tools
    /// deployment prelude (no EVM runs here), whose returned code is stored at
    /// `from.create(nonce)` with `value`; code deposit costs 200 gas per byte (EIP-170 era
    /// `CreateDataGas`). A halt consumes all gas, as an exceptional halt does in the EVM.
    fn run_create(
        &mut self,
        from: Address,
        value: U256,
        init: &[u8],
        gas_limit: u64,
        intrinsic: u64,
        nonce: u64,
    ) -> (Outcome, Option<Address>) {
        let halt = |halt: Halt| Outcome {
            status: ExitStatus::Halt(halt),
            return_data: Bytes::new(),
            logs: Vec::new(),
            gas_used: gas_limit,
        };
        let Some(runtime) = program::runtime_code_of_init_code(init) else {
            return (halt(Halt::UnsupportedInitCode), None);
        };
        let address = from.create(nonce);
        let state = &mut self.world.state;
        if !state.code(address).is_empty() || state.nonce(address) != 0 {
            return (halt(Halt::AddressCollision(address)), None);
        }
        let max = self.world.config.max_code_size;
        if runtime.len() > max {
            let err = ProgramError::CodeTooLarge {
                size: runtime.len(),
                max,
            };
            return (halt(Halt::Program(err)), None);
        }
        let gas_used = intrinsic.saturating_add(200 * runtime.len() as u64);
        if gas_used > gas_limit {
            return (halt(Halt::OutOfInk), None);
        }
        let checkpoint = state.checkpoint();
        if let Err(have) = state.transfer(from, address, value) {
            state.revert_to(checkpoint);
            return (
                halt(Halt::InsufficientBalance {
                    address: from,
                    have,
                    want: value,
                }),
                None,
            );
        }
        state.set_nonce(address, 1);
        state.set_code(address, Bytes::copy_from_slice(runtime));
        let outcome = Outcome {
            status: ExitStatus::Success,
            return_data: Bytes::new(),
            logs: Vec::new(),
            gas_used,
        };
        (outcome, Some(address))
    }

    /// Executes a validated transaction (the caller checked signature, chain id, nonce, fees
    /// and funds): bumps the sender's nonce, runs the call or the creation, and charges
    /// `gas_used × gas_price` (the tip above the base fee goes to the coinbase, the base fee is
    /// burnt). Returns the outcome and the created contract's address.
    pub fn transact(&mut self, tx: &TxExecution, gas_price: U256) -> (Outcome, Option<Address>) {
        self.world.state.begin_tx();
        let nonce = self.world.state.nonce(tx.from);
        let result = self.run_tx(tx, nonce);
        let state = &mut self.world.state;
        state.set_nonce(tx.from, nonce + 1);
        // Fees are charged after execution: validation guaranteed `gas_limit × price + value`
        // up front and an externally owned sender can only lose `value` while it runs.
        let gas_used = U256::from(result.0.gas_used);
        let fee = gas_used * gas_price;
        let balance = state.balance(tx.from);
        state.set_balance(tx.from, balance.saturating_sub(fee));
        let tip = gas_used * gas_price.saturating_sub(self.world.config.basefee);
        let coinbase = self.world.config.coinbase;
        if !tip.is_zero() {
            let balance = state.balance(coinbase);
            state.set_balance(coinbase, balance + tip);
        }
        result
    }

    /// Runs `tx` as [`Devchain::transact`] would, then undoes every change (`eth_call` with
    /// state-changing semantics, `eth_estimateGas`). No fee is charged.
    pub fn simulate(&mut self, tx: &TxExecution) -> (Outcome, Option<Address>) {
        // The diff records keys changed since the last block; a simulation changes nothing,
        // so whatever it records is dropped.
        let diff = self.world.state.take_diff();
        self.world.state.begin_tx();
        let checkpoint = self.world.state.checkpoint();
        let nonce = self.world.state.nonce(tx.from);
        let result = self.run_tx(tx, nonce);
        self.world.state.revert_to(checkpoint);
        self.world.state.set_diff(diff);
        result
    }

    fn run_tx(&mut self, tx: &TxExecution, nonce: u64) -> (Outcome, Option<Address>) {
        match tx.to {
            Some(to) => (
                self.run_call(
                    tx.from,
                    to,
                    tx.value,
                    &tx.input,
                    tx.gas_limit,
                    tx.intrinsic_gas,
                    false,
                ),
                None,
            ),
            None => self.run_create(
                tx.from,
                tx.value,
                &tx.input,
                tx.gas_limit,
                tx.intrinsic_gas,
                nonce,
            ),
        }
    }

    /// A copy of the state and block context, for `evm_snapshot`.
    #[must_use]
    pub fn snapshot(&self) -> ChainSnapshot {
        ChainSnapshot {
            state: self.world.state.clone(),
            env: self.world.env.clone(),
        }
    }

    /// Restores a [`Devchain::snapshot`].
    pub fn restore(&mut self, snapshot: ChainSnapshot) {
        self.world.state = snapshot.state;
        self.world.env = snapshot.env;
    }

    /// Replaces the hash of block `number` (the node seals blocks with their header hash).
    pub(crate) fn set_block_hash(&mut self, number: u64, hash: B256) {
        if let Some(slot) = usize::try_from(number)
            .ok()
            .and_then(|n| self.world.env.block_hashes.get_mut(n))
        {
            *slot = hash;
        }
    }

    /// The activation data fee `address` would pay now.
    ///
    /// # Errors
    /// A [`ProgramError`] if the code is not a valid Stylus program.
    pub fn activation_fee(&self, address: Address) -> Result<U256, ProgramError> {
        let code = self.world.state.code(address);
        let wasm = machine::load_wasm(&self.world, &code)?;
        Ok(program::data_fee(wasm.len()))
    }

    /// The Stylus version `address`'s code is activated at, if it is.
    #[must_use]
    pub fn program_version(&self, address: Address) -> Option<u16> {
        let codehash = self.world.state.code_hash(address);
        self.world.state.program(codehash).map(|p| p.version)
    }

    /// Calls `ArbWasm.activateProgram(address)` from `from`, paying exactly the data fee.
    ///
    /// # Errors
    /// [`DevchainError::CallFailed`] with the reason (invalid WASM, already activated, ...).
    pub fn activate(
        &mut self,
        from: Address,
        address: Address,
    ) -> Result<Activation, DevchainError> {
        let fee = self.activation_fee(address).unwrap_or_default();
        let calldata = ArbWasm::activateProgramCall { program: address }.abi_encode();
        let outcome = self.call(from, precompiles::ARB_WASM, fee, &calldata);
        match &outcome.status {
            ExitStatus::Success => {
                let ret = ArbWasm::activateProgramCall::abi_decode_returns(&outcome.return_data)
                    .map_err(|e| DevchainError::CallFailed {
                        to: precompiles::ARB_WASM,
                        reason: e.to_string(),
                        revert_data: outcome.return_data.to_vec(),
                    })?;
                Ok(Activation {
                    version: ret.version,
                    data_fee: ret.dataFee,
                })
            }
            ExitStatus::Revert => Err(DevchainError::CallFailed {
                to: precompiles::ARB_WASM,
                reason: ArbWasm::ArbWasmErrors::abi_decode(&outcome.return_data).map_or_else(
                    |_| describe_revert(&outcome.return_data),
                    |e| format!("ArbWasm error {e:?}"),
                ),
                revert_data: outcome.return_data.to_vec(),
            }),
            ExitStatus::Halt(halt) => Err(DevchainError::CallFailed {
                to: precompiles::ARB_WASM,
                reason: halt.to_string(),
                revert_data: outcome.return_data.to_vec(),
            }),
        }
    }

    /// Executes a call as a transaction from `from`: bumps its nonce, transfers `value`, runs
    /// the target, and keeps the state changes only if it succeeds.
    pub fn call(&mut self, from: Address, to: Address, value: U256, calldata: &[u8]) -> Outcome {
        let outcome = self.execute(from, to, value, calldata, false);
        if outcome.is_success() {
            let nonce = self.world.state.nonce(from);
            self.world.state.set_nonce(from, nonce + 1);
        }
        outcome
    }

    /// Executes a read-only call (like `eth_call` with a static frame); never changes state.
    pub fn static_call(&mut self, from: Address, to: Address, calldata: &[u8]) -> Outcome {
        let checkpoint = self.world.state.checkpoint();
        let outcome = self.execute(from, to, U256::ZERO, calldata, true);
        self.world.state.revert_to(checkpoint);
        outcome
    }

    fn execute(
        &mut self,
        from: Address,
        to: Address,
        value: U256,
        calldata: &[u8],
        is_static: bool,
    ) -> Outcome {
        if !is_static {
            self.world.state.begin_tx();
        }
        let gas_limit = self.world.config.call_gas_limit;
        self.run_call(
            from,
            to,
            value,
            calldata,
            gas_limit,
            intrinsic_gas(calldata),
            is_static,
        )
    }

    #[allow(clippy::too_many_arguments)] // one frame's whole context, passed once
    fn run_call(
        &mut self,
        from: Address,
        to: Address,
        value: U256,
        calldata: &[u8],
        gas_limit: u64,
        intrinsic: u64,
        is_static: bool,
    ) -> Outcome {
        let state = &mut self.world.state;
        state.warm_account(from);
        state.warm_account(to);
        self.world.env.origin = from;
        self.world.call_stack.clear();
        let gas = gas_limit.saturating_sub(intrinsic);
        let result = machine::call(
            &mut self.world,
            &self.rt,
            &Message {
                kind: CallKind::Call,
                caller: from,
                address: to,
                code_address: to,
                value,
                input: calldata.to_vec(),
                gas,
                is_static,
                depth: 0,
            },
        );
        let logs = self.world.state.take_logs();
        let gas_used = intrinsic + (gas - result.gas_left.min(gas));
        Outcome {
            logs: if result.status.is_success() {
                logs
            } else {
                Vec::new()
            },
            status: result.status,
            return_data: result.output.into(),
            gas_used,
        }
    }
}

/// Human-readable revert: `Error(string)` decoded, otherwise the selector.
#[must_use]
pub fn describe_revert(data: &[u8]) -> String {
    if let Ok(revert) = alloy_sol_types::Revert::abi_decode(data) {
        return revert.reason;
    }
    match data.get(..4) {
        Some(selector) => format!(
            "custom error 0x{} ({} bytes)",
            alloy_primitives::hex::encode(selector),
            data.len()
        ),
        None => "empty revert".to_owned(),
    }
}
