//! The `vm_hooks` host interface: every hostio a Stylus program can import, with Nitro's ink
//! prices and semantics (`crates/wasm-libraries/user-host-trait/lib.rs`).
//!
//! Ink lives in wasmi's fuel counter (one fuel unit = [`pricing::INK_PER_FUEL`] ink) plus a
//! sub-unit remainder kept in the [`Frame`], so host functions charge exact ink amounts while
//! the interpreter charges Nitro's per-operator prices.

use std::{collections::BTreeMap, fmt, sync::Arc};

use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use alloy_sol_types::SolError;
use wasmi::{Caller, Engine, Error, Linker, Memory, Module, Store, StoreLimits, TrapCode};

use crate::{
    error::{Halt, ProgramError},
    machine::{self, CallKind, ExitStatus, Message, Runtime, World},
    pricing::{self, INK_PER_FUEL},
    program,
};

/// The `vm_hooks` functions the devchain implements.
pub const VM_HOOKS: &[&str] = &[
    "read_args",
    "write_result",
    "exit_early",
    "storage_load_bytes32",
    "storage_cache_bytes32",
    "storage_flush_cache",
    "transient_load_bytes32",
    "transient_store_bytes32",
    "call_contract",
    "delegate_call_contract",
    "static_call_contract",
    "read_return_data",
    "return_data_size",
    "create1",
    "create2",
    "emit_log",
    "account_balance",
    "account_code",
    "account_code_size",
    "account_codehash",
    "block_basefee",
    "block_coinbase",
    "block_gas_limit",
    "block_number",
    "block_timestamp",
    "chainid",
    "contract_address",
    "msg_sender",
    "msg_value",
    "msg_reentrant",
    "native_keccak256",
    "evm_gas_left",
    "evm_ink_left",
    "pay_for_memory_grow",
    "tx_gas_price",
    "tx_ink_price",
    "tx_origin",
];

/// The `console` functions (debug chains only), all no-ops.
pub const CONSOLE: &[&str] = &["log_txt", "log_i32", "log_i64", "log_f32", "log_f64"];

/// Why a program stopped other than by returning from `user_entrypoint`.
#[derive(Debug, Clone)]
pub enum Escape {
    /// Ink ran out.
    OutOfInk,
    /// `exit_early(status)`.
    Exit(u32),
    /// A hostio failed.
    Halt(Halt),
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfInk => f.write_str("out of ink"),
            Self::Exit(status) => write!(f, "exit_early({status})"),
            Self::Halt(halt) => write!(f, "{halt}"),
        }
    }
}

impl wasmi::errors::HostError for Escape {}

fn escape(e: Escape) -> Error {
    Error::host(e)
}

fn halt(h: Halt) -> Error {
    Error::host(Escape::Halt(h))
}

/// Read-only facts about a frame.
#[derive(Debug, Clone)]
pub struct FrameContext {
    /// `contract_address`: the acting account.
    pub address: Address,
    /// `msg_sender`.
    pub caller: Address,
    /// `msg_value`.
    pub value: U256,
    /// Whether writes are forbidden.
    pub is_static: bool,
    /// `msg_reentrant`.
    pub reentrant: bool,
    /// Call depth.
    pub depth: usize,
}

/// Nitro's `StorageWord`: the current value and the value known to be in state.
#[derive(Debug, Clone, Copy)]
struct StorageWord {
    value: B256,
    known: Option<B256>,
}

/// The data of a wasmi store running one program.
pub struct Frame {
    pub(crate) world: World,
    rt: Arc<Runtime>,
    ctx: FrameContext,
    args: Vec<u8>,
    pub(crate) outs: Vec<u8>,
    return_data: Vec<u8>,
    ink_remainder: u64,
    memory: Option<Memory>,
    // BTreeMap: flushes happen in key order, so gas and out-of-gas points are deterministic.
    cache: BTreeMap<B256, StorageWord>,
    reads: u64,
    writes: u64,
    /// `memory.grow` beyond the page limit fails (returns -1), as Nitro's `heap.rs` bound does.
    limits: StoreLimits,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl Frame {
    pub(crate) fn new(world: World, rt: Arc<Runtime>, ctx: FrameContext, args: Vec<u8>) -> Self {
        let max_memory = usize::from(world.config.page_limit) * 65536;
        Self {
            limits: wasmi::StoreLimitsBuilder::new()
                .memory_size(max_memory)
                .memories(1)
                .build(),
            world,
            rt,
            ctx,
            args,
            outs: Vec::new(),
            return_data: Vec::new(),
            ink_remainder: 0,
            memory: None,
            cache: BTreeMap::new(),
            reads: 0,
            writes: 0,
        }
    }
}

type Ctx<'a> = Caller<'a, Frame>;

/// Instantiates `module` and calls `user_entrypoint(args_len)` with `ink`.
pub(crate) fn run_entrypoint(
    store: &mut Store<Frame>,
    linker: &Linker<Frame>,
    module: &Module,
    ink: u64,
) -> Result<i32, Escape> {
    store
        .set_fuel(ink / INK_PER_FUEL)
        .map_err(|e| Escape::Halt(Halt::Trap(e.to_string())))?;
    store.data_mut().ink_remainder = ink % INK_PER_FUEL;
    store.limiter(|frame| &mut frame.limits);
    let instance = linker
        .instantiate_and_start(&mut *store, module)
        .map_err(|e| Escape::Halt(Halt::Program(ProgramError::Invalid(e.to_string()))))?;
    let memory = instance.get_memory(&*store, "memory");
    store.data_mut().memory = memory;
    let entry = instance
        .get_typed_func::<i32, i32>(&*store, program::ENTRY_POINT)
        .map_err(|e| Escape::Halt(Halt::Program(ProgramError::Rejected(e.to_string()))))?;
    let args_len = i32::try_from(store.data().args.len())
        .map_err(|_| Escape::Halt(Halt::BadHostio("calldata too large".into())))?;
    entry.call(&mut *store, args_len).map_err(|e| classify(&e))
}

fn classify(e: &Error) -> Escape {
    if let Some(escape) = e.downcast_ref::<Escape>() {
        return escape.clone();
    }
    if e.as_trap_code() == Some(TrapCode::OutOfFuel) {
        return Escape::OutOfInk;
    }
    Escape::Halt(Halt::Trap(e.to_string()))
}

/// Ink left in a store.
pub(crate) fn ink_left(store: &Store<Frame>) -> u64 {
    store.get_fuel().unwrap_or(0) * INK_PER_FUEL + store.data().ink_remainder
}

// ---- metering (Nitro `MeteredMachine` / `GasMeteredMachine`) ----

fn ink(c: &Ctx<'_>) -> u64 {
    c.get_fuel().unwrap_or(0) * INK_PER_FUEL + c.data().ink_remainder
}

fn set_ink(c: &mut Ctx<'_>, ink: u64) -> Result<(), Error> {
    c.set_fuel(ink / INK_PER_FUEL)?;
    c.data_mut().ink_remainder = ink % INK_PER_FUEL;
    Ok(())
}

fn buy_ink(c: &mut Ctx<'_>, cost: u64) -> Result<(), Error> {
    let left = ink(c);
    if left < cost {
        set_ink(c, 0)?;
        return Err(escape(Escape::OutOfInk));
    }
    set_ink(c, left - cost)
}

fn require_ink(c: &Ctx<'_>, cost: u64) -> Result<(), Error> {
    if ink(c) < cost {
        return Err(escape(Escape::OutOfInk));
    }
    Ok(())
}

fn ink_price(c: &Ctx<'_>) -> u64 {
    u64::from(c.data().world.config.ink_price)
}

fn gas_left(c: &Ctx<'_>) -> u64 {
    ink(c) / ink_price(c)
}

fn buy_gas(c: &mut Ctx<'_>, gas: u64) -> Result<(), Error> {
    let cost = gas.saturating_mul(ink_price(c));
    buy_ink(c, cost)
}

fn require_gas(c: &Ctx<'_>, gas: u64) -> Result<(), Error> {
    require_ink(c, gas.saturating_mul(ink_price(c)))
}

// ---- guest memory ----

fn memory(c: &Ctx<'_>) -> Result<Memory, Error> {
    c.data()
        .memory
        .ok_or_else(|| halt(Halt::BadHostio("program has no memory".into())))
}

fn read(c: &Ctx<'_>, ptr: u32, len: u32) -> Result<Vec<u8>, Error> {
    let mem = memory(c)?;
    let data = mem.data(c);
    let start = ptr as usize;
    let end = start.saturating_add(len as usize);
    data.get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| halt(Halt::Trap(format!("out of bounds read at {ptr}+{len}"))))
}

fn read_fixed<const N: usize>(c: &Ctx<'_>, ptr: u32) -> Result<[u8; N], Error> {
    let mem = memory(c)?;
    let data = mem.data(c);
    let start = ptr as usize;
    data.get(start..start.saturating_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| halt(Halt::Trap(format!("out of bounds read at {ptr}+{N}"))))
}

fn read_address(c: &Ctx<'_>, ptr: u32) -> Result<Address, Error> {
    read_fixed::<20>(c, ptr).map(Address::from)
}

fn read_b256(c: &Ctx<'_>, ptr: u32) -> Result<B256, Error> {
    read_fixed::<32>(c, ptr).map(B256::from)
}

fn write(c: &mut Ctx<'_>, ptr: u32, bytes: &[u8]) -> Result<(), Error> {
    let mem = memory(c)?;
    let data = mem.data_mut(&mut *c);
    let start = ptr as usize;
    let end = start.saturating_add(bytes.len());
    let dest = data
        .get_mut(start..end)
        .ok_or_else(|| halt(Halt::Trap(format!("out of bounds write at {ptr}"))))?;
    dest.copy_from_slice(bytes);
    Ok(())
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// `arbutil::slice_with_runoff`: the overlap of `data` with `start..end`.
fn slice_with_runoff(data: &[u8], start: u32, end: u32) -> &[u8] {
    let start = (start as usize).min(data.len());
    let end = (end as usize).clamp(start, data.len());
    &data[start..end]
}

// ---- the hostios ----

fn read_args(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    let args = c.data().args.clone();
    buy_ink(&mut c, pricing::write_price(len_u32(args.len())))?;
    write(&mut c, ptr, &args)
}

fn write_result(mut c: Ctx<'_>, ptr: u32, len: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    buy_ink(&mut c, pricing::read_price(len))?;
    buy_ink(&mut c, pricing::read_price(len))?; // read from geth
    let outs = read(&c, ptr, len)?;
    c.data_mut().outs = outs;
    Ok(())
}

fn exit_early(_c: Ctx<'_>, status: u32) -> Result<(), Error> {
    Err(escape(Escape::Exit(status)))
}

fn storage_load_bytes32(mut c: Ctx<'_>, key: u32, dest: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::STORAGE_ACCESS_INK)?;
    let api_gas = pricing::EVM_API_INK / ink_price(&c);
    require_gas(
        &c,
        pricing::COLD_SLOAD_GAS + pricing::STORAGE_CACHE_ACCESS_GAS + api_gas,
    )?;
    let key = read_b256(&c, key)?;
    let frame = c.data_mut();
    frame.reads += 1;
    let mut cost = match frame.reads {
        0..=32 => 0,
        33..=128 => 2,
        _ => 10,
    };
    let value = if let Some(word) = frame.cache.get(&key) {
        word.value
    } else {
        let address = frame.ctx.address;
        cost += frame.world.state.access_slot(address, key) + api_gas;
        let value = frame.world.state.storage(address, key);
        frame.cache.insert(
            key,
            StorageWord {
                value,
                known: Some(value),
            },
        );
        value
    };
    buy_gas(&mut c, cost)?;
    write(&mut c, dest, value.as_slice())
}

fn storage_cache_bytes32(mut c: Ctx<'_>, key: u32, value: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::STORAGE_ACCESS_INK)?;
    require_gas(
        &c,
        pricing::SSTORE_SENTRY_GAS + pricing::STORAGE_CACHE_ACCESS_GAS,
    )?;
    let key = read_b256(&c, key)?;
    let value = read_b256(&c, value)?;
    let frame = c.data_mut();
    frame.writes += 1;
    let cost = match frame.writes {
        0..=8 => 0,
        9..=64 => 7,
        _ => 10,
    };
    frame
        .cache
        .entry(key)
        .and_modify(|w| w.value = value)
        .or_insert(StorageWord { value, known: None });
    buy_gas(&mut c, cost)
}

fn storage_flush_cache(mut c: Ctx<'_>, clear: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::API_INK)?;
    require_gas(&c, pricing::SSTORE_SENTRY_GAS)?;
    let mut gas_left = gas_left(&c);
    let frame = c.data_mut();
    let address = frame.ctx.address;
    let dirty: Vec<(B256, B256)> = frame
        .cache
        .iter()
        .filter(|(_, w)| Some(w.value) != w.known)
        .map(|(k, w)| (*k, w.value))
        .collect();
    if !dirty.is_empty() && frame.ctx.is_static {
        return Err(halt(Halt::WriteProtection));
    }
    let mut spent = 0u64;
    for (key, value) in dirty {
        let cost = frame.world.state.sstore_gas(address, key, value);
        if cost > gas_left {
            return Err(escape(Escape::OutOfInk));
        }
        gas_left -= cost;
        spent += cost;
        frame.world.state.set_storage(address, key, value);
        if let Some(word) = frame.cache.get_mut(&key) {
            word.known = Some(value);
        }
    }
    if clear != 0 {
        frame.cache.clear();
    }
    buy_gas(&mut c, spent)
}

fn transient_load_bytes32(mut c: Ctx<'_>, key: u32, dest: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::STORAGE_ACCESS_INK + pricing::EVM_API_INK)?;
    buy_gas(&mut c, pricing::WARM_ACCESS_GAS)?;
    let key = read_b256(&c, key)?;
    let frame = c.data();
    let value = frame.world.state.transient(frame.ctx.address, key);
    write(&mut c, dest, value.as_slice())
}

fn transient_store_bytes32(mut c: Ctx<'_>, key: u32, value: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::STORAGE_ACCESS_INK + pricing::EVM_API_INK)?;
    buy_gas(&mut c, pricing::WARM_ACCESS_GAS)?;
    let key = read_b256(&c, key)?;
    let value = read_b256(&c, value)?;
    let frame = c.data_mut();
    if frame.ctx.is_static {
        return Err(halt(Halt::WriteProtection));
    }
    let address = frame.ctx.address;
    frame.world.state.set_transient(address, key, value);
    Ok(())
}

/// Nitro `doCall` (`arbos/programs/api.go`): access and value-transfer costs, the 63/64 rule,
/// the stipend, then the nested frame. Returns `(return data length, status)`.
fn do_call(
    c: &mut Ctx<'_>,
    kind: CallKind,
    contract: Address,
    input: Vec<u8>,
    gas_req: u64,
    value: U256,
) -> Result<(u32, u32), Error> {
    let gas_left = gas_left(c);
    let gas_req = gas_req.min(gas_left);
    let frame = c.data_mut();
    if frame.ctx.is_static && !value.is_zero() {
        frame.return_data.clear();
        return Ok((0, 2));
    }
    let mut base = frame.world.state.access_account(contract);
    if !value.is_zero() {
        base += pricing::CALL_VALUE_GAS;
        if frame
            .world
            .state
            .account(contract)
            .is_none_or(crate::state::Account::is_empty)
        {
            base += pricing::NEW_ACCOUNT_GAS;
        }
    }
    if base > gas_left {
        frame.return_data.clear();
        buy_gas(c, gas_left)?;
        return Ok((0, 2));
    }
    let start_gas = (gas_left - base) / 64 * 63 + (gas_left - base) % 64 * 63 / 64;
    let gas = start_gas.min(gas_req);
    let stipend = if value.is_zero() {
        0
    } else {
        pricing::CALL_STIPEND
    };
    let ctx = frame.ctx.clone();
    let msg = match kind {
        CallKind::Call => Message {
            kind,
            caller: ctx.address,
            address: contract,
            code_address: contract,
            value,
            input,
            gas: gas + stipend,
            is_static: ctx.is_static,
            depth: ctx.depth + 1,
        },
        CallKind::DelegateCall => Message {
            kind,
            caller: ctx.caller,
            address: ctx.address,
            code_address: contract,
            value: ctx.value,
            input,
            gas,
            is_static: ctx.is_static,
            depth: ctx.depth + 1,
        },
        CallKind::StaticCall => Message {
            kind,
            caller: ctx.address,
            address: contract,
            code_address: contract,
            value: U256::ZERO,
            input,
            gas,
            is_static: true,
            depth: ctx.depth + 1,
        },
    };
    let rt = Arc::clone(&frame.rt);
    let result = machine::call(&mut frame.world, &rt, &msg);
    let status = match result.status {
        ExitStatus::Success => 0,
        ExitStatus::Revert => 1,
        ExitStatus::Halt(_) => 2,
    };
    let cost = (base + gas).saturating_sub(result.gas_left);
    let len = len_u32(result.output.len());
    frame.return_data = result.output;
    buy_gas(c, cost)?;
    Ok((len, status))
}

fn call_contract(
    c: Ctx<'_>,
    contract: u32,
    data: u32,
    data_len: u32,
    value: u32,
    gas: u64,
    ret_len: u32,
) -> Result<u32, Error> {
    call_hostio(
        c,
        CallKind::Call,
        contract,
        data,
        data_len,
        Some(value),
        gas,
        ret_len,
    )
}

fn delegate_call_contract(
    c: Ctx<'_>,
    contract: u32,
    data: u32,
    data_len: u32,
    gas: u64,
    ret_len: u32,
) -> Result<u32, Error> {
    call_hostio(
        c,
        CallKind::DelegateCall,
        contract,
        data,
        data_len,
        None,
        gas,
        ret_len,
    )
}

fn static_call_contract(
    c: Ctx<'_>,
    contract: u32,
    data: u32,
    data_len: u32,
    gas: u64,
    ret_len: u32,
) -> Result<u32, Error> {
    call_hostio(
        c,
        CallKind::StaticCall,
        contract,
        data,
        data_len,
        None,
        gas,
        ret_len,
    )
}

/// The shared body of the three call hostios: Nitro charges the same ink for each (the call
/// itself plus reading the calldata twice), then reads the callee and calldata from guest memory.
/// Only `call_contract` carries a value; the others pass zero.
#[allow(clippy::too_many_arguments)] // the hostio's own arguments, plus the call kind
fn call_hostio(
    mut c: Ctx<'_>,
    kind: CallKind,
    contract: u32,
    data: u32,
    data_len: u32,
    value: Option<u32>,
    gas: u64,
    ret_len: u32,
) -> Result<u32, Error> {
    buy_ink(&mut c, pricing::CALL_INK)?;
    buy_ink(&mut c, pricing::read_price(data_len))?;
    buy_ink(&mut c, pricing::read_price(data_len))?;
    let contract = read_address(&c, contract)?;
    let input = read(&c, data, data_len)?;
    let value = match value {
        Some(ptr) => U256::from_be_bytes(read_fixed::<32>(&c, ptr)?),
        None => U256::ZERO,
    };
    let (len, status) = do_call(&mut c, kind, contract, input, gas, value)?;
    write(&mut c, ret_len, &len.to_le_bytes())?;
    Ok(status)
}

fn read_return_data(mut c: Ctx<'_>, dest: u32, offset: u32, size: u32) -> Result<u32, Error> {
    buy_ink(&mut c, pricing::API_INK)?;
    let max = len_u32(c.data().return_data.len()).saturating_sub(offset);
    buy_ink(&mut c, pricing::write_price(size.min(max)))?;
    if max == 0 {
        return Ok(0);
    }
    let out =
        slice_with_runoff(&c.data().return_data, offset, offset.saturating_add(size)).to_vec();
    if !out.is_empty() {
        write(&mut c, dest, &out)?;
    }
    Ok(len_u32(out.len()))
}

fn return_data_size(mut c: Ctx<'_>) -> Result<u32, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(len_u32(c.data().return_data.len()))
}

/// CREATE / CREATE2 of a Stylus program. The devchain has no EVM, so the init code must be the
/// stylus-tools deployment prelude; any other init code fails the creation (address 0).
fn do_create(
    c: &mut Ctx<'_>,
    init: &[u8],
    endowment: U256,
    salt: Option<B256>,
) -> Result<Address, Error> {
    if c.data().ctx.is_static {
        return Err(halt(Halt::WriteProtection));
    }
    let Some(runtime) = program::runtime_code_of_init_code(init) else {
        c.data_mut().return_data = alloy_sol_types::Revert::from(
            "EVM init code is not supported by the devchain; use the Stylus deployment prelude",
        )
        .abi_encode();
        return Ok(Address::ZERO);
    };
    let words = u64::from(len_u32(init.len()).div_ceil(32));
    let mut cost = pricing::CREATE_GAS + pricing::CODE_DEPOSIT_GAS * runtime.len() as u64;
    if salt.is_some() {
        cost += pricing::KECCAK_WORD_GAS * words;
    }
    buy_gas(c, cost)?;
    let runtime = Bytes::copy_from_slice(runtime);
    let frame = c.data_mut();
    frame.return_data.clear();
    let creator = frame.ctx.address;
    let state = &mut frame.world.state;
    if state.balance(creator) < endowment {
        return Ok(Address::ZERO);
    }
    let nonce = state.nonce(creator);
    state.set_nonce(creator, nonce + 1);
    let address = match salt {
        None => creator.create(nonce),
        Some(salt) => creator.create2(salt, keccak256(init)),
    };
    if state
        .account(address)
        .is_some_and(|a| a.nonce != 0 || !a.code.is_empty())
    {
        return Ok(Address::ZERO);
    }
    state.set_nonce(address, 1);
    state.set_code(address, runtime);
    if state.transfer(creator, address, endowment).is_err() {
        return Ok(Address::ZERO);
    }
    Ok(address)
}

fn create1(
    mut c: Ctx<'_>,
    code: u32,
    code_len: u32,
    endowment: u32,
    contract: u32,
    revert_data_len: u32,
) -> Result<(), Error> {
    buy_ink(&mut c, pricing::CALL_INK)?;
    buy_ink(&mut c, pricing::read_price(code_len))?;
    buy_ink(&mut c, pricing::read_price(code_len))?;
    let init = read(&c, code, code_len)?;
    let endowment = U256::from_be_bytes(read_fixed::<32>(&c, endowment)?);
    let address = do_create(&mut c, &init, endowment, None)?;
    let len = len_u32(c.data().return_data.len());
    write(&mut c, revert_data_len, &len.to_le_bytes())?;
    write(&mut c, contract, address.as_slice())
}

fn create2(
    mut c: Ctx<'_>,
    code: u32,
    code_len: u32,
    endowment: u32,
    salt: u32,
    contract: u32,
    revert_data_len: u32,
) -> Result<(), Error> {
    buy_ink(&mut c, pricing::CREATE2_INK)?;
    buy_ink(&mut c, pricing::read_price(code_len))?;
    buy_ink(&mut c, pricing::read_price(code_len))?;
    let init = read(&c, code, code_len)?;
    let endowment = U256::from_be_bytes(read_fixed::<32>(&c, endowment)?);
    let salt = read_b256(&c, salt)?;
    let address = do_create(&mut c, &init, endowment, Some(salt))?;
    let len = len_u32(c.data().return_data.len());
    write(&mut c, revert_data_len, &len.to_le_bytes())?;
    write(&mut c, contract, address.as_slice())
}

fn emit_log(mut c: Ctx<'_>, data: u32, len: u32, topics: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::API_INK)?;
    if topics > 4 || len < topics * 32 {
        return Err(halt(Halt::BadHostio("bad topic data".into())));
    }
    buy_ink(&mut c, pricing::read_price(len))?;
    buy_gas(&mut c, pricing::log_gas(topics, len - topics * 32))?;
    let bytes = read(&c, data, len)?;
    let frame = c.data_mut();
    if frame.ctx.is_static {
        return Err(halt(Halt::WriteProtection));
    }
    let split = topics as usize * 32;
    let topics = bytes[..split]
        .chunks_exact(32)
        .map(B256::from_slice)
        .collect();
    let log = Log::new_unchecked(
        frame.ctx.address,
        topics,
        Bytes::copy_from_slice(&bytes[split..]),
    );
    frame.world.state.add_log(log);
    Ok(())
}

fn account_balance(mut c: Ctx<'_>, address: u32, dest: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::ACCOUNT_PTR_INK)?;
    require_gas(&c, pricing::COLD_ACCOUNT_GAS)?;
    let address = read_address(&c, address)?;
    let state = &mut c.data_mut().world.state;
    let cost = state.access_account(address);
    let balance = state.balance(address);
    buy_gas(&mut c, cost)?;
    write(&mut c, dest, &balance.to_be_bytes::<32>())
}

fn account_code(
    mut c: Ctx<'_>,
    address: u32,
    offset: u32,
    size: u32,
    dest: u32,
) -> Result<u32, Error> {
    buy_ink(&mut c, pricing::API_INK)?;
    require_gas(&c, pricing::COLD_ACCOUNT_GAS)?;
    let address = read_address(&c, address)?;
    let state = &mut c.data_mut().world.state;
    let cost = state.access_account(address);
    let code = state.code(address);
    buy_gas(&mut c, cost)?;
    buy_ink(&mut c, pricing::write_price(len_u32(code.len())))?;
    let out = slice_with_runoff(&code, offset, offset.saturating_add(size));
    write(&mut c, dest, out)?;
    Ok(len_u32(out.len()))
}

fn account_code_size(mut c: Ctx<'_>, address: u32) -> Result<u32, Error> {
    buy_ink(&mut c, pricing::API_INK)?;
    require_gas(&c, pricing::COLD_ACCOUNT_GAS)?;
    let address = read_address(&c, address)?;
    let state = &mut c.data_mut().world.state;
    let cost = state.access_account(address);
    let len = len_u32(state.code(address).len());
    buy_gas(&mut c, cost)?;
    Ok(len)
}

fn account_codehash(mut c: Ctx<'_>, address: u32, dest: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::ACCOUNT_PTR_INK)?;
    require_gas(&c, pricing::COLD_ACCOUNT_GAS)?;
    let address = read_address(&c, address)?;
    let state = &mut c.data_mut().world.state;
    let cost = state.access_account(address);
    let hash = state.code_hash(address);
    buy_gas(&mut c, cost)?;
    write(&mut c, dest, hash.as_slice())
}

fn write_ptr_value(c: &mut Ctx<'_>, ptr: u32, bytes: &[u8]) -> Result<(), Error> {
    buy_ink(c, pricing::PTR_HOSTIO_INK)?;
    write(c, ptr, bytes)
}

fn block_basefee(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    let fee = c.data().world.config.basefee.to_be_bytes::<32>();
    write_ptr_value(&mut c, ptr, &fee)
}

fn block_coinbase(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    let coinbase = c.data().world.config.coinbase;
    write_ptr_value(&mut c, ptr, coinbase.as_slice())
}

fn block_gas_limit(mut c: Ctx<'_>) -> Result<u64, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(c.data().world.config.block_gas_limit)
}

fn block_number(mut c: Ctx<'_>) -> Result<u64, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(c.data().world.env.number)
}

fn block_timestamp(mut c: Ctx<'_>) -> Result<u64, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(c.data().world.env.timestamp)
}

fn chainid(mut c: Ctx<'_>) -> Result<u64, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(c.data().world.config.chain_id)
}

fn contract_address(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    let address = c.data().ctx.address;
    write_ptr_value(&mut c, ptr, address.as_slice())
}

fn msg_sender(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    let caller = c.data().ctx.caller;
    write_ptr_value(&mut c, ptr, caller.as_slice())
}

fn msg_value(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    let value = c.data().ctx.value.to_be_bytes::<32>();
    write_ptr_value(&mut c, ptr, &value)
}

fn msg_reentrant(mut c: Ctx<'_>) -> Result<u32, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(u32::from(c.data().ctx.reentrant))
}

fn native_keccak256(mut c: Ctx<'_>, input: u32, len: u32, output: u32) -> Result<(), Error> {
    buy_ink(&mut c, pricing::keccak_price(len))?;
    let preimage = read(&c, input, len)?;
    write(&mut c, output, keccak256(&preimage).as_slice())
}

fn evm_gas_left(mut c: Ctx<'_>) -> Result<u64, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(gas_left(&c))
}

fn evm_ink_left(mut c: Ctx<'_>) -> Result<u64, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(ink(&c))
}

fn pay_for_memory_grow(mut c: Ctx<'_>, pages: u32) -> Result<(), Error> {
    let pages = u16::try_from(pages).unwrap_or(u16::MAX);
    if pages == 0 {
        return buy_ink(&mut c, pricing::SIMPLE_INK);
    }
    let world = &mut c.data_mut().world;
    let (open, ever) = world.state.add_pages(pages);
    let cost = pricing::memory_gas(
        world.config.free_pages,
        world.config.page_gas,
        pages,
        open,
        ever,
    );
    buy_gas(&mut c, cost)
}

fn tx_gas_price(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    // On Arbitrum the gas price equals the basefee.
    let price = c.data().world.config.basefee.to_be_bytes::<32>();
    write_ptr_value(&mut c, ptr, &price)
}

fn tx_ink_price(mut c: Ctx<'_>) -> Result<u32, Error> {
    buy_ink(&mut c, pricing::SIMPLE_INK)?;
    Ok(c.data().world.config.ink_price)
}

fn tx_origin(mut c: Ctx<'_>, ptr: u32) -> Result<(), Error> {
    let origin = c.data().world.env.origin;
    write_ptr_value(&mut c, ptr, origin.as_slice())
}

/// Builds the linker with every hostio of [`VM_HOOKS`] and [`CONSOLE`].
///
/// # Panics
/// Never in practice: each name is defined once, so `func_wrap` cannot fail.
#[must_use]
pub fn linker(engine: &Engine) -> Linker<Frame> {
    let mut l = Linker::new(engine);
    let results = [
        l.func_wrap("vm_hooks", "read_args", read_args).map(|_| ()),
        l.func_wrap("vm_hooks", "write_result", write_result)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "exit_early", exit_early)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "storage_load_bytes32", storage_load_bytes32)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "storage_cache_bytes32", storage_cache_bytes32)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "storage_flush_cache", storage_flush_cache)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "transient_load_bytes32", transient_load_bytes32)
            .map(|_| ()),
        l.func_wrap(
            "vm_hooks",
            "transient_store_bytes32",
            transient_store_bytes32,
        )
        .map(|_| ()),
        l.func_wrap("vm_hooks", "call_contract", call_contract)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "delegate_call_contract", delegate_call_contract)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "static_call_contract", static_call_contract)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "read_return_data", read_return_data)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "return_data_size", return_data_size)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "create1", create1).map(|_| ()),
        l.func_wrap("vm_hooks", "create2", create2).map(|_| ()),
        l.func_wrap("vm_hooks", "emit_log", emit_log).map(|_| ()),
        l.func_wrap("vm_hooks", "account_balance", account_balance)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "account_code", account_code)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "account_code_size", account_code_size)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "account_codehash", account_codehash)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "block_basefee", block_basefee)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "block_coinbase", block_coinbase)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "block_gas_limit", block_gas_limit)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "block_number", block_number)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "block_timestamp", block_timestamp)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "chainid", chainid).map(|_| ()),
        l.func_wrap("vm_hooks", "contract_address", contract_address)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "msg_sender", msg_sender)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "msg_value", msg_value).map(|_| ()),
        l.func_wrap("vm_hooks", "msg_reentrant", msg_reentrant)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "native_keccak256", native_keccak256)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "evm_gas_left", evm_gas_left)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "evm_ink_left", evm_ink_left)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "pay_for_memory_grow", pay_for_memory_grow)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "tx_gas_price", tx_gas_price)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "tx_ink_price", tx_ink_price)
            .map(|_| ()),
        l.func_wrap("vm_hooks", "tx_origin", tx_origin).map(|_| ()),
        // console: debug-only printing, no-ops here.
        l.func_wrap("console", "log_txt", |_: Ctx<'_>, _: u32, _: u32| {})
            .map(|_| ()),
        l.func_wrap("console", "log_i32", |_: Ctx<'_>, _: i32| {})
            .map(|_| ()),
        l.func_wrap("console", "log_i64", |_: Ctx<'_>, _: i64| {})
            .map(|_| ()),
        l.func_wrap("console", "log_f32", |_: Ctx<'_>, _: f32| {})
            .map(|_| ()),
        l.func_wrap("console", "log_f64", |_: Ctx<'_>, _: f64| {})
            .map(|_| ()),
    ];
    for result in results {
        // Each name above is distinct, so defining it cannot collide.
        result.expect("hostio names are unique");
    }
    l
}
