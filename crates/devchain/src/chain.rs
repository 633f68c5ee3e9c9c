//! The [`Devchain`] API: deploy, activate, call, and the clock.
//!
//! Each `call` is executed like a transaction's execution (nonce bump, intrinsic gas, fresh
//! EIP-2929 warm sets, logs collected); signed transactions, blocks and receipts come in a later
//! slice and will sit on top of this.

use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use alloy_sol_types::{SolCall, SolError, SolInterface};

use crate::{
    config::ChainConfig,
    error::{DevchainError, ProgramError},
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

/// An in-memory chain that runs Stylus programs.
#[derive(Debug)]
pub struct Devchain {
    world: World,
    rt: Arc<Runtime>,
}

/// `21000 + 16 × non-zero bytes + 4 × zero bytes` (`core.IntrinsicGas`).
fn intrinsic_gas(calldata: &[u8]) -> u64 {
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
        let runtime = program::runtime_code_of_init_code(&init)
            .map(Bytes::copy_from_slice)
            .ok_or(ProgramError::NotWasm)?;
        let state = &mut self.world.state;
        state.begin_tx();
        let nonce = state.nonce(from);
        let address = from.create(nonce);
        state.set_nonce(from, nonce + 1);
        state.set_nonce(address, 1);
        state.set_code(address, runtime);
        Ok(address)
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
        let intrinsic = intrinsic_gas(calldata);
        let gas_limit = self.world.config.call_gas_limit;
        let state = &mut self.world.state;
        if !is_static {
            state.begin_tx();
        }
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
