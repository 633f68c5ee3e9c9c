//! Call frames: value transfer, precompile dispatch, program execution, and the journal
//! checkpoint that makes a failed frame leave no trace.
//!
//! The semantics follow Nitro's `arbos/programs/api.go` (`doCall`: EIP-150 63/64 rule, call
//! stipend, write protection) and `programs.go` (`CallProgram`: activation check, init cost,
//! memory footprint).

use std::{collections::HashMap, sync::Arc};

use alloy_primitives::{Address, B256, U256};
use wasmi::{Engine, Linker, Module, Store};

use crate::{
    config::ChainConfig,
    error::Halt,
    host::{self, Escape, Frame, FrameContext},
    precompiles, pricing, program,
    state::State,
};

/// Block and transaction context seen by programs.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Block number.
    pub number: u64,
    /// Block timestamp.
    pub timestamp: u64,
    /// Transaction origin.
    pub origin: Address,
    /// Hashes of past blocks, index = block number.
    pub block_hashes: Vec<B256>,
}

/// Everything a frame can read or change. Moved into the wasmi store while a program runs and
/// moved back when it returns (`std::mem::take`), so nested calls need no shared references.
#[derive(Debug, Default)]
pub struct World {
    /// Accounts, storage, logs.
    pub state: State,
    /// Block / tx context.
    pub env: Env,
    /// Chain parameters.
    pub config: ChainConfig,
    /// Compiled modules by codehash (a cache; whether a program may run is `state.program`).
    pub modules: HashMap<B256, Module>,
    /// Addresses of the programs currently executing, outermost first.
    pub call_stack: Vec<Address>,
}

/// The engine and the `vm_hooks` linker, shared by all frames.
pub struct Runtime {
    /// wasmi engine configured with Nitro's per-operator ink table.
    pub engine: Engine,
    /// Host functions.
    pub linker: Linker<Frame>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine: fuel metering on, eager compilation (so translation never consumes a
    /// caller's fuel), Nitro's operator prices.
    ///
    /// wasmi is used because it is a deterministic interpreter with built-in fuel metering and
    /// no JIT: the same program, input and state always consume the same ink, on any machine,
    /// and nothing is compiled to native code from untrusted input.
    #[must_use]
    pub fn new() -> Arc<Self> {
        let mut config = wasmi::Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(wasmi::CompilationMode::Eager)
            .operator_cost(pricing::operator_costs());
        let engine = Engine::new(&config);
        let linker = host::linker(&engine);
        Arc::new(Self { engine, linker })
    }
}

/// How a frame was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `CALL`.
    Call,
    /// `DELEGATECALL`.
    DelegateCall,
    /// `STATICCALL`.
    StaticCall,
}

/// A message to execute.
#[derive(Debug, Clone)]
pub struct Message {
    /// Kind of call.
    pub kind: CallKind,
    /// `msg.sender`.
    pub caller: Address,
    /// The account whose storage and balance the frame acts on.
    pub address: Address,
    /// The account whose code runs.
    pub code_address: Address,
    /// `msg.value` (for delegate calls, the parent's value; nothing is transferred).
    pub value: U256,
    /// Calldata.
    pub input: Vec<u8>,
    /// Gas given to the frame.
    pub gas: u64,
    /// Whether state changes are forbidden.
    pub is_static: bool,
    /// Call depth (0 for the transaction's frame).
    pub depth: usize,
}

/// How a frame ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The frame succeeded and its changes are kept.
    Success,
    /// The program reverted (status 1 or `exit_early(1)`); its changes are undone.
    Revert,
    /// The frame halted; its changes are undone and its gas consumed.
    Halt(Halt),
}

impl ExitStatus {
    /// Whether the frame succeeded.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }
}

/// The result of a frame.
#[derive(Debug, Clone)]
pub struct CallResult {
    /// Exit status.
    pub status: ExitStatus,
    /// Return or revert data.
    pub output: Vec<u8>,
    /// Gas left to return to the caller.
    pub gas_left: u64,
}

impl CallResult {
    pub(crate) fn halt(halt: Halt) -> Self {
        Self {
            status: ExitStatus::Halt(halt),
            output: Vec::new(),
            gas_left: 0,
        }
    }
}

/// Maximum call depth (`params.CallCreateDepth`).
pub const MAX_DEPTH: usize = 1024;

/// Executes `msg`, undoing its changes unless it succeeds.
pub fn call(world: &mut World, rt: &Arc<Runtime>, msg: &Message) -> CallResult {
    if msg.depth > MAX_DEPTH {
        return CallResult {
            status: ExitStatus::Halt(Halt::CallDepth),
            output: Vec::new(),
            gas_left: msg.gas,
        };
    }
    let checkpoint = world.state.checkpoint();
    let result = execute(world, rt, msg);
    if !result.status.is_success() {
        world.state.revert_to(checkpoint);
    }
    result
}

fn execute(world: &mut World, rt: &Arc<Runtime>, msg: &Message) -> CallResult {
    if msg.kind == CallKind::Call && !msg.value.is_zero() {
        if msg.is_static {
            return CallResult::halt(Halt::WriteProtection);
        }
        if let Err(have) = world.state.transfer(msg.caller, msg.address, msg.value) {
            return CallResult {
                status: ExitStatus::Halt(Halt::InsufficientBalance {
                    address: msg.caller,
                    have,
                    want: msg.value,
                }),
                output: Vec::new(),
                gas_left: msg.gas,
            };
        }
    }
    if let Some(result) = precompiles::run(world, rt, msg) {
        return result;
    }
    let code = world.state.code(msg.code_address);
    if code.is_empty() {
        return CallResult {
            status: ExitStatus::Success,
            output: Vec::new(),
            gas_left: msg.gas,
        };
    }
    if program::is_fragment(&code) {
        return CallResult::halt(Halt::CodeFragment(msg.code_address));
    }
    if !program::is_stylus_code(&code) {
        return CallResult::halt(Halt::EvmBytecode(msg.code_address));
    }
    let codehash = world.state.code_hash(msg.code_address);
    let Some(info) = world.state.program(codehash) else {
        return CallResult {
            status: ExitStatus::Halt(Halt::ProgramNotActivated(msg.code_address)),
            output: precompiles::program_not_activated_error(),
            gas_left: 0,
        };
    };
    let module = if let Some(module) = world.modules.get(&codehash) {
        module.clone()
    } else {
        // Activated in a state this process did not compile (not reachable today, kept for
        // persistence): recompile from the code.
        match load_wasm(world, &code)
            .and_then(|wasm| program::validate(&rt.engine, &wasm, &world.config))
        {
            Ok(validated) => {
                world.modules.insert(codehash, validated.module.clone());
                validated.module
            }
            Err(e) => return CallResult::halt(Halt::Program(e)),
        }
    };
    run_program(world, rt, msg, &module, info.footprint)
}

/// The WASM behind `code`, reading fragments from the state.
pub(crate) fn load_wasm(world: &World, code: &[u8]) -> Result<Vec<u8>, crate::ProgramError> {
    program::load_wasm(
        code,
        world.config.max_wasm_size,
        world.config.max_fragment_count,
        |address| world.state.code(address).to_vec(),
    )
}

fn run_program(
    world: &mut World,
    rt: &Arc<Runtime>,
    msg: &Message,
    module: &Module,
    footprint: u16,
) -> CallResult {
    // Program init cost and memory footprint (`programs.go` `CallProgram`).
    let (open, ever) = world.state.add_pages(footprint);
    let memory_gas = pricing::memory_gas(
        world.config.free_pages,
        world.config.page_gas,
        footprint,
        open,
        ever,
    );
    let upfront = pricing::PROGRAM_INIT_GAS.saturating_add(memory_gas);
    if upfront > msg.gas {
        world.state.set_pages_open(open);
        return CallResult::halt(Halt::OutOfInk);
    }
    let gas = msg.gas - upfront;
    let ink_price = u64::from(world.config.ink_price);
    let ink = gas.saturating_mul(ink_price);

    // Nitro counts a program's open frames by acting address, leaving out delegate calls
    // (`TxProcessor::PushContract`): a program delegate-calling its extension is not reentrant.
    let delegated = msg.kind == CallKind::DelegateCall;
    let reentrant = !delegated && world.call_stack.contains(&msg.address);
    if !delegated {
        world.call_stack.push(msg.address);
    }
    let frame = Frame::new(
        std::mem::take(world),
        Arc::clone(rt),
        FrameContext {
            address: msg.address,
            caller: msg.caller,
            value: msg.value,
            is_static: msg.is_static,
            reentrant,
            depth: msg.depth,
        },
        msg.input.clone(),
    );
    let mut store = Store::new(&rt.engine, frame);
    let outcome = host::run_entrypoint(&mut store, &rt.linker, module, ink);
    let ink_left = host::ink_left(&store);
    let frame = store.into_data();
    let outs = frame.outs;
    *world = frame.world;
    if !delegated {
        world.call_stack.pop();
    }
    world.state.set_pages_open(open);

    let gas_left = ink_left / ink_price;
    match outcome {
        Ok(0) | Err(Escape::Exit(0)) => CallResult {
            status: ExitStatus::Success,
            output: outs,
            gas_left,
        },
        Ok(_) | Err(Escape::Exit(_)) => CallResult {
            status: ExitStatus::Revert,
            output: outs,
            gas_left,
        },
        Err(Escape::OutOfInk) => CallResult::halt(Halt::OutOfInk),
        Err(Escape::Halt(halt)) => CallResult::halt(halt),
    }
}
