//! A test host for the DataCloud contracts, on top of stylus-sdk's `TestVM`.
//!
//! `TestVM` is enough for one contract in isolation, but the DataCloud contracts call each other,
//! move native tokens and recover signatures, and its mocks fall short there: a mocked call's
//! return data is whatever mock was registered *last*, a call that returns an error keeps its
//! storage writes, and value transfers move no balance. [`TestHost`] wraps a `TestVM` and fixes
//! exactly that:
//!
//! - [`TestHost::invoke`] runs one external call the way a chain does: it sets the sender and the
//!   value, credits the value to the contract, and on an `Err` rolls back storage, balances and
//!   logs, so adversarial call sequences see real revert semantics;
//! - outgoing calls are dispatched to per-address handlers ([`TestHost::on_call`]), each answer
//!   becoming that call's own return data; a call with value moves balance from the contract to
//!   the callee, and fails when the contract cannot pay;
//! - a delegate call to an address registered with [`TestHost::on_delegate_call`] runs that
//!   program's router on this host (its storage, balance, sender and value), rolled back if it
//!   reverts, as `DELEGATECALL` does;
//! - the `ecrecover` precompile (0x01) really recovers the signer (k256), and `ArbSys` (0x64)
//!   answers `arbBlockNumber`, `arbBlockHash` and `arbChainID` from the host's block state.

// Implementing stylus-core's host traits means implementing its `unsafe` hostio signatures; the
// pointers come from the SDK and are used only with the lengths it passes alongside them.
#![allow(unsafe_code)]

use std::{cell::RefCell, collections::HashMap, rc::Rc, slice};

use alloy_primitives::{Address, B256, U256, address, keccak256};
use alloy_sol_types::{SolCall, sol};
use stylus_sdk::{
    host::VM,
    stylus_core::{
        AccountAccess, BlockAccess, CalldataAccess, ChainAccess, CryptographyAccess, Host,
        MemoryAccess, MessageAccess, MeteringAccess, RawLogAccess, StorageAccess, UnsafeCallAccess,
        UnsafeDeploymentAccess,
    },
    testing::TestVM,
};

mod chain;
pub use chain::{Chain, Deployed};

/// A contract's router entrypoint: `stylus_sdk::abi::router_entrypoint::<C, C>`.
pub type Entrypoint = fn(Vec<u8>, VM) -> stylus_sdk::ArbResult;

/// Address of the `ecrecover` precompile.
pub const ECRECOVER: Address = address!("0x0000000000000000000000000000000000000001");
/// Address of Arbitrum's `ArbSys` precompile.
pub const ARB_SYS: Address = address!("0x0000000000000000000000000000000000000064");

sol! {
    /// The part of `ArbSys` the contracts use (nitro `precompiles/ArbSys.go`).
    interface ArbSys {
        function arbBlockNumber() external view returns (uint256);
        function arbBlockHash(uint256 arbBlockNum) external view returns (bytes32);
        function arbChainID() external view returns (uint256);
    }
}

/// One outgoing call as a handler sees it.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    /// The calling contract.
    pub from: Address,
    /// The callee.
    pub to: Address,
    /// Calldata.
    pub data: Vec<u8>,
    /// Value sent along (always zero for static calls).
    pub value: U256,
    /// Whether the call was a `STATICCALL`.
    pub is_static: bool,
}

/// What a handler answers: return data, or revert data.
pub type CallOutcome = Result<Vec<u8>, Vec<u8>>;

type Handler = Box<dyn FnMut(&OutgoingCall) -> CallOutcome>;

/// A log as emitted: topics and data.
pub type Log = (Vec<B256>, Vec<u8>);

#[derive(Default)]
struct Shared {
    handlers: HashMap<Address, Handler>,
    delegates: HashMap<Address, Entrypoint>,
    return_data: Vec<u8>,
    logs: Vec<Log>,
    calls: Vec<OutgoingCall>,
}

/// What [`TestHost::checkpoint`] captures.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    storage: HashMap<U256, B256>,
    balances: HashMap<Address, U256>,
    logs: usize,
}

/// A `TestVM` with revert semantics, balance-moving calls, per-call return data and real
/// precompiles. Clones share state, as a host shared by a contract's storage fields must.
#[derive(Clone)]
pub struct TestHost {
    vm: TestVM,
    shared: Rc<RefCell<Shared>>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

/// The address `CREATE` gives the program `deployer` deploys with its `nonce`-th transaction
/// (alloy's RLP and keccak: the reference the contracts' own `create_preimage` is checked
/// against). The contracts' `initialize` accepts only its deployer.
#[must_use]
pub fn create_address(deployer: Address, nonce: u64) -> Address {
    deployer.create(nonce)
}

impl TestHost {
    /// A fresh host at block 1 with the contract at `TestVM`'s default address.
    #[must_use]
    pub fn new() -> Self {
        let vm = TestVM::new();
        vm.set_block_number(1);
        vm.set_block_timestamp(1_700_000_000);
        Self {
            vm,
            shared: Rc::default(),
        }
    }

    /// The underlying `TestVM`, for block, sender and storage controls.
    #[must_use]
    pub fn vm(&self) -> &TestVM {
        &self.vm
    }

    /// The contract's own address.
    #[must_use]
    pub fn contract(&self) -> Address {
        self.vm.contract_address()
    }

    /// Answers calls to `to` with `handler` from now on.
    pub fn on_call(
        &self,
        to: Address,
        handler: impl FnMut(&OutgoingCall) -> CallOutcome + 'static,
    ) {
        self.shared
            .borrow_mut()
            .handlers
            .insert(to, Box::new(handler));
    }

    /// Runs `entry` (a program's router) on this host when the contract delegate-calls `to`.
    pub fn on_delegate_call(&self, to: Address, entry: Entrypoint) {
        self.shared.borrow_mut().delegates.insert(to, entry);
    }

    /// Runs `call` as one transaction from `sender` carrying `value`: the value is credited to the
    /// contract first, and if `call` returns `Err`, storage, balances and logs are rolled back.
    ///
    /// # Errors
    /// Whatever `call` returns.
    pub fn invoke<T, E>(
        &self,
        sender: Address,
        value: U256,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let checkpoint = self.checkpoint();
        self.vm.set_sender(sender);
        self.vm.set_value(value);
        let me = self.contract();
        self.vm.set_balance(me, self.vm.balance(me) + value);
        let outcome = call();
        self.vm.set_value(U256::ZERO);
        if outcome.is_err() {
            self.restore(checkpoint);
        }
        outcome
    }

    /// Captures storage, balances and the log count, for [`TestHost::restore`].
    #[must_use]
    pub fn checkpoint(&self) -> Checkpoint {
        let state = self.vm.snapshot();
        Checkpoint {
            storage: state.storage,
            balances: state.balances,
            logs: self.shared.borrow().logs.len(),
        }
    }

    /// Rolls storage, balances and logs back to `checkpoint`, as a revert does.
    pub fn restore(&self, checkpoint: Checkpoint) {
        self.vm.clear_storage();
        for (key, word) in checkpoint.storage {
            self.vm.set_storage(key, word);
        }
        // Accounts first funded after the checkpoint go back to zero.
        let now_funded: Vec<Address> = self.vm.snapshot().balances.into_keys().collect();
        for account in now_funded {
            let balance = checkpoint
                .balances
                .get(&account)
                .copied()
                .unwrap_or_default();
            self.vm.set_balance(account, balance);
        }
        self.shared.borrow_mut().logs.truncate(checkpoint.logs);
    }

    /// Sets the current block number.
    pub fn set_block(&self, number: u64) {
        self.vm.set_block_number(number);
    }

    /// Advances the block number by `blocks`.
    pub fn mine(&self, blocks: u64) {
        self.vm.set_block_number(self.vm.block_number() + blocks);
    }

    /// The hash `ArbSys.arbBlockHash` reports for block `number`: a deterministic stand-in for a
    /// real block hash, distinct per block.
    #[must_use]
    pub fn block_hash(number: u64) -> B256 {
        keccak256(number.to_be_bytes())
    }

    /// Native balance of `account`.
    #[must_use]
    pub fn balance(&self, account: Address) -> U256 {
        self.vm.balance(account)
    }

    /// Sets the native balance of `account`.
    pub fn set_balance(&self, account: Address, balance: U256) {
        self.vm.set_balance(account, balance);
    }

    /// Logs emitted by calls that did not revert, oldest first.
    #[must_use]
    pub fn logs(&self) -> Vec<Log> {
        self.shared.borrow().logs.clone()
    }

    /// Forgets the logs seen so far.
    pub fn clear_logs(&self) {
        self.shared.borrow_mut().logs.clear();
    }

    /// Outgoing calls made so far, oldest first.
    #[must_use]
    pub fn calls(&self) -> Vec<OutgoingCall> {
        self.shared.borrow().calls.clone()
    }

    fn dispatch(&self, call: &OutgoingCall) -> CallOutcome {
        self.shared.borrow_mut().calls.push(call.clone());
        // A handler registered for a precompile's address replaces it (to test its failures).
        let overridden = self.shared.borrow().handlers.contains_key(&call.to);
        if call.to == ECRECOVER && !overridden {
            return Ok(ecrecover(&call.data));
        }
        if call.to == ARB_SYS && !overridden {
            return self.arb_sys(&call.data);
        }
        let me = self.contract();
        if call.value > U256::ZERO {
            let balance = self.vm.balance(me);
            if balance < call.value {
                return Err(Vec::new());
            }
            self.vm.set_balance(me, balance - call.value);
            self.vm
                .set_balance(call.to, self.vm.balance(call.to) + call.value);
        }
        // Take the handler out while it runs so it may use this host itself.
        let handler = self.shared.borrow_mut().handlers.remove(&call.to);
        let Some(mut handler) = handler else {
            // An account without code: a plain transfer succeeds with no return data.
            return Ok(Vec::new());
        };
        let outcome = handler(call);
        self.shared
            .borrow_mut()
            .handlers
            .entry(call.to)
            .or_insert(handler);
        if outcome.is_err() && call.value > U256::ZERO {
            self.vm.set_balance(me, self.vm.balance(me) + call.value);
            self.vm
                .set_balance(call.to, self.vm.balance(call.to) - call.value);
        }
        outcome
    }

    fn arb_sys(&self, data: &[u8]) -> CallOutcome {
        let number = self.vm.block_number();
        if let Ok(_call) = ArbSys::arbBlockNumberCall::abi_decode(data) {
            return Ok(ArbSys::arbBlockNumberCall::abi_encode_returns(&U256::from(
                number,
            )));
        }
        if let Ok(call) = ArbSys::arbBlockHashCall::abi_decode(data) {
            // As nitro: only the 256 blocks before the current one have a hash.
            let wanted = call.arbBlockNum;
            let current = U256::from(number);
            if wanted >= current || current - wanted > U256::from(256) {
                return Err(b"invalid block number".to_vec());
            }
            return Ok(ArbSys::arbBlockHashCall::abi_encode_returns(
                &Self::block_hash(wanted.to::<u64>()),
            ));
        }
        if ArbSys::arbChainIDCall::abi_decode(data).is_ok() {
            return Ok(ArbSys::arbChainIDCall::abi_encode_returns(&U256::from(
                self.vm.chain_id(),
            )));
        }
        Err(Vec::new())
    }

    /// The call the SDK describes by raw pointers.
    ///
    /// # Safety
    /// `to` points at 20 bytes and `data` at `data_len` bytes, as the SDK passes them.
    unsafe fn outgoing(
        &self,
        to: *const u8,
        data: *const u8,
        data_len: usize,
        value: U256,
        is_static: bool,
    ) -> OutgoingCall {
        // SAFETY: as the caller guarantees.
        unsafe {
            OutgoingCall {
                from: self.contract(),
                to: Address::from_slice(slice::from_raw_parts(to, 20)),
                data: slice::from_raw_parts(data, data_len).to_vec(),
                value,
                is_static,
            }
        }
    }

    fn finish_call(&self, outcome: CallOutcome, outs_len: &mut usize) -> u8 {
        let (status, data) = match outcome {
            Ok(data) => (0, data),
            Err(data) => (1, data),
        };
        *outs_len = data.len();
        self.shared.borrow_mut().return_data = data;
        status
    }
}

/// The `ecrecover` precompile: `hash ‖ v ‖ r ‖ s` (32 bytes each) → the signer's address
/// left-padded to 32 bytes, or empty output when the input does not recover.
fn ecrecover(input: &[u8]) -> Vec<u8> {
    let mut padded = [0u8; 128];
    let n = input.len().min(128);
    padded[..n].copy_from_slice(&input[..n]);
    let hash = B256::from_slice(&padded[..32]);
    let v = U256::from_be_bytes::<32>(padded[32..64].try_into().expect("32 bytes"));
    let parity = match v.to::<u64>() {
        27 if v < U256::from(256) => false,
        28 if v < U256::from(256) => true,
        _ => return Vec::new(),
    };
    let r = U256::from_be_slice(&padded[64..96]);
    let s = U256::from_be_slice(&padded[96..128]);
    let signature = alloy_primitives::Signature::new(r, s, parity);
    match signature.recover_address_from_prehash(&hash) {
        Ok(signer) => {
            let mut out = vec![0u8; 32];
            out[12..].copy_from_slice(signer.as_slice());
            out
        }
        Err(_) => Vec::new(),
    }
}

impl Host for TestHost {}

impl CryptographyAccess for TestHost {
    fn native_keccak256(&self, input: &[u8]) -> B256 {
        keccak256(input)
    }
}

impl CalldataAccess for TestHost {
    fn read_args(&self, len: usize) -> Vec<u8> {
        self.vm.read_args(len)
    }
    fn read_return_data(&self, offset: usize, size: Option<usize>) -> Vec<u8> {
        let shared = self.shared.borrow();
        let data = &shared.return_data;
        let start = offset.min(data.len());
        let end = size.map_or(data.len(), |size| (start + size).min(data.len()));
        data[start..end].to_vec()
    }
    fn return_data_size(&self) -> usize {
        self.shared.borrow().return_data.len()
    }
    fn write_result(&self, data: &[u8]) {
        self.vm.write_result(data);
    }
}

unsafe impl UnsafeDeploymentAccess for TestHost {
    unsafe fn create1(
        &self,
        code: *const u8,
        code_len: usize,
        endowment: *const u8,
        contract: *mut u8,
        revert_data_len: *mut usize,
    ) {
        unsafe {
            self.vm
                .create1(code, code_len, endowment, contract, revert_data_len);
        }
    }
    unsafe fn create2(
        &self,
        code: *const u8,
        code_len: usize,
        endowment: *const u8,
        salt: *const u8,
        contract: *mut u8,
        revert_data_len: *mut usize,
    ) {
        unsafe {
            self.vm
                .create2(code, code_len, endowment, salt, contract, revert_data_len);
        }
    }
}

impl StorageAccess for TestHost {
    fn storage_load_bytes32(&self, key: U256) -> B256 {
        self.vm.storage_load_bytes32(key)
    }
    unsafe fn storage_cache_bytes32(&self, key: U256, value: B256) {
        unsafe { self.vm.storage_cache_bytes32(key, value) }
    }
    fn flush_cache(&self, clear: bool) {
        self.vm.flush_cache(clear);
    }
}

unsafe impl UnsafeCallAccess for TestHost {
    unsafe fn call_contract(
        &self,
        to: *const u8,
        data: *const u8,
        data_len: usize,
        value: *const u8,
        _gas: u64,
        outs_len: &mut usize,
    ) -> u8 {
        // SAFETY: the SDK passes a 32-byte big-endian value.
        let value = U256::from_be_slice(unsafe { slice::from_raw_parts(value, 32) });
        // SAFETY: as `outgoing` requires.
        let call = unsafe { self.outgoing(to, data, data_len, value, false) };
        let outcome = self.dispatch(&call);
        self.finish_call(outcome, outs_len)
    }
    unsafe fn static_call_contract(
        &self,
        to: *const u8,
        data: *const u8,
        data_len: usize,
        _gas: u64,
        outs_len: &mut usize,
    ) -> u8 {
        // SAFETY: as `outgoing` requires.
        let call = unsafe { self.outgoing(to, data, data_len, U256::ZERO, true) };
        let outcome = self.dispatch(&call);
        self.finish_call(outcome, outs_len)
    }
    unsafe fn delegate_call_contract(
        &self,
        to: *const u8,
        data: *const u8,
        data_len: usize,
        _gas: u64,
        outs_len: &mut usize,
    ) -> u8 {
        // SAFETY: as `outgoing` requires.
        let call = unsafe { self.outgoing(to, data, data_len, U256::ZERO, false) };
        self.shared.borrow_mut().calls.push(call.clone());
        let entry = self.shared.borrow().delegates.get(&call.to).copied();
        let outcome = match entry {
            // As on a chain, delegating to an account without code succeeds and does nothing.
            None => Ok(Vec::new()),
            Some(entry) => {
                let checkpoint = self.checkpoint();
                let host = Box::new(self.clone());
                let outcome = entry(call.data, VM { host });
                if outcome.is_err() {
                    self.restore(checkpoint);
                }
                outcome
            }
        };
        self.finish_call(outcome, outs_len)
    }
}

impl BlockAccess for TestHost {
    fn block_basefee(&self) -> U256 {
        self.vm.block_basefee()
    }
    fn block_coinbase(&self) -> Address {
        self.vm.block_coinbase()
    }
    fn block_gas_limit(&self) -> u64 {
        self.vm.block_gas_limit()
    }
    fn block_number(&self) -> u64 {
        self.vm.block_number()
    }
    fn block_timestamp(&self) -> u64 {
        self.vm.block_timestamp()
    }
}

impl ChainAccess for TestHost {
    fn chain_id(&self) -> u64 {
        self.vm.chain_id()
    }
}

impl AccountAccess for TestHost {
    fn balance(&self, account: Address) -> U256 {
        self.vm.balance(account)
    }
    fn contract_address(&self) -> Address {
        self.vm.contract_address()
    }
    fn code(&self, account: Address) -> Vec<u8> {
        self.vm.code(account)
    }
    fn code_size(&self, account: Address) -> usize {
        self.vm.code_size(account)
    }
    fn code_hash(&self, account: Address) -> B256 {
        self.vm.code_hash(account)
    }
}

impl MemoryAccess for TestHost {
    fn pay_for_memory_grow(&self, pages: u16) {
        self.vm.pay_for_memory_grow(pages);
    }
}

impl MessageAccess for TestHost {
    fn msg_sender(&self) -> Address {
        self.vm.msg_sender()
    }
    fn msg_reentrant(&self) -> bool {
        self.vm.msg_reentrant()
    }
    fn msg_value(&self) -> U256 {
        self.vm.msg_value()
    }
    fn tx_origin(&self) -> Address {
        self.vm.tx_origin()
    }
}

impl MeteringAccess for TestHost {
    fn evm_gas_left(&self) -> u64 {
        self.vm.evm_gas_left()
    }
    fn evm_ink_left(&self) -> u64 {
        self.vm.evm_ink_left()
    }
    fn tx_gas_price(&self) -> U256 {
        self.vm.tx_gas_price()
    }
    fn tx_ink_price(&self) -> u32 {
        self.vm.tx_ink_price()
    }
}

impl RawLogAccess for TestHost {
    fn emit_log(&self, input: &[u8], num_topics: usize) {
        let (topics, data) = input.split_at(num_topics * 32);
        let topics = topics.chunks_exact(32).map(B256::from_slice).collect();
        self.shared.borrow_mut().logs.push((topics, data.to_vec()));
    }
    fn raw_log(&self, topics: &[B256], data: &[u8]) -> Result<(), &'static str> {
        self.shared
            .borrow_mut()
            .logs
            .push((topics.to_vec(), data.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecrecover_recovers_a_real_signature() {
        let key = k256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
        let signer = alloy_primitives::Address::from_private_key(&key);
        let hash = keccak256(b"attestation");
        let (sig, recid) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
        let mut input = hash.to_vec();
        input.extend_from_slice(&U256::from(27 + u64::from(recid.to_byte())).to_be_bytes::<32>());
        input.extend_from_slice(&sig.to_bytes());
        let out = ecrecover(&input);
        assert_eq!(Address::from_slice(&out[12..]), signer);
        // A different hash recovers someone else (or nothing).
        input[0] ^= 1;
        let other = ecrecover(&input);
        assert!(other.is_empty() || Address::from_slice(&other[12..]) != signer);
    }

    #[test]
    fn a_failed_invoke_rolls_back_storage_balance_and_logs() {
        let host = TestHost::new();
        host.vm().set_storage(U256::from(1), B256::repeat_byte(1));
        let sender = Address::repeat_byte(9);
        let result: Result<(), ()> = host.invoke(sender, U256::from(5), || {
            host.vm().set_storage(U256::from(1), B256::repeat_byte(2));
            host.raw_log(&[B256::ZERO], b"x").unwrap();
            Err(())
        });
        assert!(result.is_err());
        assert_eq!(host.vm().get_storage(U256::from(1)), B256::repeat_byte(1));
        assert_eq!(host.balance(host.contract()), U256::ZERO);
        assert!(host.logs().is_empty());
        let ok: Result<(), ()> = host.invoke(sender, U256::from(5), || Ok(()));
        assert!(ok.is_ok());
        assert_eq!(host.balance(host.contract()), U256::from(5));
    }

    #[test]
    fn each_call_gets_its_own_return_data() {
        let host = TestHost::new();
        let a = Address::repeat_byte(0xA);
        let b = Address::repeat_byte(0xB);
        host.on_call(a, |_| Ok(vec![1]));
        host.on_call(b, |_| Err(vec![2, 2]));
        let mut len = 0;
        let value = [0u8; 32];
        let status =
            unsafe { host.call_contract(a.as_ptr(), [].as_ptr(), 0, value.as_ptr(), 0, &mut len) };
        assert_eq!((status, host.read_return_data(0, None)), (0, vec![1]));
        let status = unsafe { host.static_call_contract(b.as_ptr(), [].as_ptr(), 0, 0, &mut len) };
        assert_eq!((status, host.read_return_data(0, None)), (1, vec![2, 2]));
    }
}
