//! Hand-written WAT programs: ink metering, static-call write protection, reentrancy, nested
//! reverts, validation at activation, and EVM bytecode refusal.

use datacloud_devchain::{Address, B256, Bytes, ChainConfig, Devchain, ExitStatus, Halt, U256};

const ALICE: Address = Address::repeat_byte(0xa1);

/// Op byte then operands:
/// 1: cache slot 0 := 1 and flush; 2: return `msg_reentrant`; 3/4 ‖ address ‖ payload:
/// static call / call and return `status ‖ return data`; anything else: revert.
const PROBE: &str = r#"
(module
  (import "vm_hooks" "read_args" (func $read_args (param i32)))
  (import "vm_hooks" "write_result" (func $write_result (param i32 i32)))
  (import "vm_hooks" "storage_cache_bytes32" (func $cache (param i32 i32)))
  (import "vm_hooks" "storage_flush_cache" (func $flush (param i32)))
  (import "vm_hooks" "msg_reentrant" (func $reentrant (result i32)))
  (import "vm_hooks" "static_call_contract" (func $static_call (param i32 i32 i32 i64 i32) (result i32)))
  (import "vm_hooks" "call_contract" (func $call (param i32 i32 i32 i32 i64 i32) (result i32)))
  (import "vm_hooks" "read_return_data" (func $read_return_data (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "user_entrypoint") (param $len i32) (result i32)
    (local $op i32) (local $status i32) (local $rlen i32)
    (call $read_args (i32.const 0))
    (local.set $op (i32.load8_u (i32.const 0)))
    (if (i32.eq (local.get $op) (i32.const 1))
      (then
        (i32.store8 (i32.const 2079) (i32.const 1))
        (call $cache (i32.const 2080) (i32.const 2048))
        (call $flush (i32.const 0))
        (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 2))
      (then
        (i32.store8 (i32.const 3000) (call $reentrant))
        (call $write_result (i32.const 3000) (i32.const 1))
        (return (i32.const 0))))
    (if (i32.or (i32.eq (local.get $op) (i32.const 3)) (i32.eq (local.get $op) (i32.const 4)))
      (then
        (if (i32.eq (local.get $op) (i32.const 3))
          (then (local.set $status (call $static_call (i32.const 1) (i32.const 21)
                  (i32.sub (local.get $len) (i32.const 21)) (i64.const -1) (i32.const 3004))))
          (else (local.set $status (call $call (i32.const 1) (i32.const 21)
                  (i32.sub (local.get $len) (i32.const 21)) (i32.const 4000) (i64.const -1) (i32.const 3004)))))
        (i32.store8 (i32.const 5000) (local.get $status))
        (local.set $rlen (call $read_return_data (i32.const 5001) (i32.const 0) (i32.load (i32.const 3004))))
        (call $write_result (i32.const 5000) (i32.add (local.get $rlen) (i32.const 1)))
        (return (i32.const 0))))
    (i32.const 1)))
"#;

const SPIN: &str = r#"
(module
  (import "vm_hooks" "read_args" (func $read_args (param i32)))
  (memory (export "memory") 1)
  (func (export "user_entrypoint") (param i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
"#;

fn chain() -> Devchain {
    let mut chain = Devchain::new(ChainConfig::default());
    chain.set_balance(ALICE, U256::from(10).pow(U256::from(20)));
    chain
}

fn install(chain: &mut Devchain, wat_text: &str) -> Address {
    let wasm = wat::parse_str(wat_text).expect("valid WAT");
    let address = chain.deploy(ALICE, &wasm).expect("deploy");
    // Activation is per codehash: a second copy of the same program is already activated.
    if chain.program_version(address).is_none() {
        chain.activate(ALICE, address).expect("activate");
    }
    address
}

fn via(op: u8, target: Address, payload: &[u8]) -> Vec<u8> {
    let mut args = vec![op];
    args.extend_from_slice(target.as_slice());
    args.extend_from_slice(payload);
    args
}

fn slot0(chain: &Devchain, address: Address) -> B256 {
    chain.storage(address, B256::ZERO)
}

#[test]
fn infinite_loop_runs_out_of_ink_and_reverts_the_frame() {
    // A small gas limit keeps the debug-build interpreter quick.
    let mut chain = Devchain::new(ChainConfig {
        call_gas_limit: 2_000_000,
        ..ChainConfig::default()
    });
    chain.set_balance(ALICE, U256::from(10).pow(U256::from(20)));
    let spin = install(&mut chain, SPIN);
    let before = chain.balance(ALICE);
    let outcome = chain.call(ALICE, spin, U256::from(5), &[]);
    assert_eq!(outcome.status, ExitStatus::Halt(Halt::OutOfInk));
    assert_eq!(outcome.gas_used, chain.config().call_gas_limit);
    assert_eq!(chain.balance(ALICE), before, "value transfer undone");
    assert_eq!(chain.balance(spin), U256::ZERO);
}

#[test]
fn storage_write_commits_and_costs_an_sstore() {
    let mut chain = chain();
    let probe = install(&mut chain, PROBE);
    let outcome = chain.call(ALICE, probe, U256::ZERO, &[1]);
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(slot0(&chain, probe), B256::with_last_byte(1));
    // 21_000 intrinsic + 20_000 SSTORE + 2_100 cold slot + init/ink overhead.
    assert!(
        outcome.gas_used > 43_100 && outcome.gas_used < 80_000,
        "{}",
        outcome.gas_used
    );
    // A reverting call (op 0) leaves the chain alone.
    let outcome = chain.call(ALICE, probe, U256::ZERO, &[0]);
    assert_eq!(outcome.status, ExitStatus::Revert);
}

#[test]
fn write_inside_static_call_fails_but_plain_call_succeeds() {
    let mut chain = chain();
    let outer = install(&mut chain, PROBE);
    let inner = install(&mut chain, PROBE);

    let outcome = chain.call(ALICE, outer, U256::ZERO, &via(3, inner, &[1]));
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(
        outcome.return_data[0], 2,
        "static frame halted on the write"
    );
    assert_eq!(slot0(&chain, inner), B256::ZERO);

    let outcome = chain.call(ALICE, outer, U256::ZERO, &via(4, inner, &[1]));
    assert_eq!(outcome.return_data[0], 0);
    assert_eq!(slot0(&chain, inner), B256::with_last_byte(1));

    // The top-level static_call API refuses writes too.
    let other = install(&mut chain, PROBE);
    let outcome = chain.static_call(ALICE, other, &[1]);
    assert_eq!(outcome.status, ExitStatus::Halt(Halt::WriteProtection));
    assert_eq!(slot0(&chain, other), B256::ZERO);
}

#[test]
fn nested_revert_is_reported_as_status_one() {
    let mut chain = chain();
    let outer = install(&mut chain, PROBE);
    let inner = install(&mut chain, PROBE);
    let outcome = chain.call(ALICE, outer, U256::ZERO, &via(4, inner, &[0]));
    assert!(outcome.is_success());
    assert_eq!(outcome.return_data.as_ref(), &[1]);
}

#[test]
fn reentrancy_flag_is_set_only_when_already_on_the_stack() {
    let mut chain = chain();
    let a = install(&mut chain, PROBE);
    let b = install(&mut chain, PROBE);
    let direct = chain.call(ALICE, a, U256::ZERO, &[2]);
    assert_eq!(direct.return_data.as_ref(), &[0]);
    let a_to_b = chain.call(ALICE, a, U256::ZERO, &via(4, b, &[2]));
    assert_eq!(a_to_b.return_data.as_ref(), &[0, 0]);
    let a_to_a = chain.call(ALICE, a, U256::ZERO, &via(4, a, &[2]));
    assert_eq!(a_to_a.return_data.as_ref(), &[0, 1]);
    let a_b_a = chain.call(ALICE, a, U256::ZERO, &via(4, b, &via(4, a, &[2])));
    assert_eq!(a_b_a.return_data.as_ref(), &[0, 0, 1]);
}

#[test]
fn activation_rejects_unknown_imports_and_missing_entrypoint() {
    let mut chain = chain();
    let bad_import = wat::parse_str(
        r#"(module (import "vm_hooks" "teleport" (func (param i32)))
             (memory (export "memory") 1)
             (func (export "user_entrypoint") (param i32) (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let address = chain.deploy(ALICE, &bad_import).unwrap();
    let err = chain.activate(ALICE, address).unwrap_err().to_string();
    assert!(err.contains("unknown import vm_hooks::teleport"), "{err}");

    let no_entry =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "main")))"#).unwrap();
    let address = chain.deploy(ALICE, &no_entry).unwrap();
    let err = chain.activate(ALICE, address).unwrap_err().to_string();
    assert!(
        err.contains("missing export with name user_entrypoint"),
        "{err}"
    );

    let big_memory = wat::parse_str(
        r#"(module (memory (export "memory") 129)
             (func (export "user_entrypoint") (param i32) (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let address = chain.deploy(ALICE, &big_memory).unwrap();
    let err = chain.activate(ALICE, address).unwrap_err().to_string();
    assert!(err.contains("memory exceeds limit"), "{err}");
}

#[test]
fn evm_bytecode_is_refused_with_a_clear_error() {
    let mut chain = chain();
    let evm = Address::repeat_byte(0xee);
    chain.set_code(evm, Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]));
    let outcome = chain.call(ALICE, evm, U256::ZERO, &[]);
    assert_eq!(outcome.status, ExitStatus::Halt(Halt::EvmBytecode(evm)));
    let ExitStatus::Halt(halt) = outcome.status else {
        unreachable!()
    };
    assert!(halt.to_string().contains("EVM bytecode is not supported"));
}

#[test]
fn plain_transfers_and_precompiles() {
    let mut chain = chain();
    let bob = Address::repeat_byte(0xb0);
    let outcome = chain.call(ALICE, bob, U256::from(7), &[]);
    assert!(outcome.is_success());
    assert_eq!(chain.balance(bob), U256::from(7));
    assert_eq!(outcome.gas_used, 21_000);

    let identity = Address::with_last_byte(4);
    assert_eq!(
        chain
            .static_call(ALICE, identity, b"echo")
            .return_data
            .as_ref(),
        b"echo"
    );
    let sha = chain.static_call(ALICE, Address::with_last_byte(2), b"abc");
    assert_eq!(
        sha.return_data,
        Bytes::from_static(&[
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad
        ])
    );
}

#[test]
fn arb_sys_block_number_chain_id_and_recent_hashes() {
    use alloy_sol_types::{SolCall, SolError};
    use datacloud_devchain::precompiles::{ARB_SYS, ArbSys};
    let mut chain = chain();
    chain.set_block_number(300);
    let n = chain.static_call(ALICE, ARB_SYS, &ArbSys::arbBlockNumberCall {}.abi_encode());
    assert_eq!(
        ArbSys::arbBlockNumberCall::abi_decode_returns(&n.return_data).unwrap(),
        U256::from(300)
    );
    let id = chain.static_call(ALICE, ARB_SYS, &ArbSys::arbChainIDCall {}.abi_encode());
    assert_eq!(
        ArbSys::arbChainIDCall::abi_decode_returns(&id.return_data).unwrap(),
        U256::from(chain.config().chain_id)
    );
    let recent = chain.static_call(
        ALICE,
        ARB_SYS,
        &ArbSys::arbBlockHashCall {
            arbBlockNum: U256::from(299),
        }
        .abi_encode(),
    );
    assert_eq!(
        ArbSys::arbBlockHashCall::abi_decode_returns(&recent.return_data).unwrap(),
        chain.block_hash(299).unwrap()
    );
    let old = chain.static_call(
        ALICE,
        ARB_SYS,
        &ArbSys::arbBlockHashCall {
            arbBlockNum: U256::from(43),
        }
        .abi_encode(),
    );
    assert_eq!(old.status, ExitStatus::Revert);
    assert!(ArbSys::InvalidBlockNumber::abi_decode(&old.return_data).is_ok());
}

/// Deploys its calldata (init code) with `create1` and returns the new address, or
/// `0x00…00 ‖ revert data` when creation failed.
const FACTORY: &str = r#"
(module
  (import "vm_hooks" "read_args" (func $read_args (param i32)))
  (import "vm_hooks" "write_result" (func $write_result (param i32 i32)))
  (import "vm_hooks" "create1" (func $create1 (param i32 i32 i32 i32 i32)))
  (import "vm_hooks" "read_return_data" (func $read_return_data (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "user_entrypoint") (param $len i32) (result i32)
    (local $rlen i32)
    (call $read_args (i32.const 0))
    (call $create1 (i32.const 0) (local.get $len) (i32.const 100000) (i32.const 100100) (i32.const 100200))
    (local.set $rlen (call $read_return_data (i32.const 100120) (i32.const 0) (i32.load (i32.const 100200))))
    (call $write_result (i32.const 100100) (i32.add (i32.const 20) (local.get $rlen)))
    (i32.const 0)))
"#;

#[test]
fn create1_deploys_a_stylus_program_from_a_program() {
    use datacloud_devchain::program;
    let mut chain = chain();
    let probe = install(&mut chain, PROBE);
    let factory = install(&mut chain, FACTORY);
    let probe_wasm = wat::parse_str(PROBE).unwrap();
    let init = program::deployment_init_code(&program::wrap(&probe_wasm).unwrap());

    let outcome = chain.call(ALICE, factory, U256::ZERO, &init);
    assert!(outcome.is_success(), "{outcome:?}");
    let created = Address::from_slice(&outcome.return_data[..20]);
    assert_eq!(
        created,
        factory.create(1),
        "CREATE address from the factory's nonce"
    );
    assert_eq!(chain.nonce(factory), 2);
    assert_eq!(chain.code(created), chain.code(probe));
    // Same codehash as the probe, which is activated: the copy runs at once.
    let outcome = chain.call(ALICE, created, U256::ZERO, &[2]);
    assert_eq!(outcome.return_data.as_ref(), &[0]);

    // Init code that is not the Stylus prelude would need an EVM: address zero and a reason.
    let outcome = chain.call(ALICE, factory, U256::ZERO, &[0x60, 0x00, 0x60, 0x00, 0xf3]);
    assert!(outcome.is_success());
    assert_eq!(&outcome.return_data[..20], Address::ZERO.as_slice());
    let reason = datacloud_devchain::describe_revert(&outcome.return_data[20..]);
    assert!(
        reason.contains("EVM init code is not supported"),
        "{reason}"
    );
}

#[test]
fn memory_cannot_grow_past_the_page_limit() {
    let mut chain = chain();
    let grow = install(
        &mut chain,
        r#"(module
             (import "vm_hooks" "write_result" (func $write_result (param i32 i32)))
             (memory (export "memory") 1)
             (func (export "user_entrypoint") (param i32) (result i32)
               (i32.store (i32.const 0) (memory.grow (i32.const 200)))
               (call $write_result (i32.const 0) (i32.const 4))
               (i32.const 0)))"#,
    );
    let outcome = chain.call(ALICE, grow, U256::ZERO, &[]);
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.return_data.as_ref(), &(-1i32).to_le_bytes());
}

/// Writes the frame's context: sender, value, address, origin, chain id, block number and
/// timestamp, own balance and code size, `keccak256("")`, gas left, ink price.
const CONTEXT: &str = r#"
(module
  (import "vm_hooks" "write_result" (func $write_result (param i32 i32)))
  (import "vm_hooks" "msg_sender" (func $msg_sender (param i32)))
  (import "vm_hooks" "msg_value" (func $msg_value (param i32)))
  (import "vm_hooks" "contract_address" (func $contract_address (param i32)))
  (import "vm_hooks" "tx_origin" (func $tx_origin (param i32)))
  (import "vm_hooks" "chainid" (func $chainid (result i64)))
  (import "vm_hooks" "block_number" (func $block_number (result i64)))
  (import "vm_hooks" "block_timestamp" (func $block_timestamp (result i64)))
  (import "vm_hooks" "account_balance" (func $account_balance (param i32 i32)))
  (import "vm_hooks" "account_code_size" (func $account_code_size (param i32) (result i32)))
  (import "vm_hooks" "native_keccak256" (func $keccak (param i32 i32 i32)))
  (import "vm_hooks" "evm_gas_left" (func $gas_left (result i64)))
  (import "vm_hooks" "tx_ink_price" (func $ink_price (result i32)))
  (import "console" "log_i32" (func $log (param i32)))
  (memory (export "memory") 1)
  (func (export "user_entrypoint") (param i32) (result i32)
    (call $log (i32.const 7))
    (call $msg_sender (i32.const 0))
    (call $msg_value (i32.const 20))
    (call $contract_address (i32.const 52))
    (call $tx_origin (i32.const 72))
    (i64.store (i32.const 92) (call $chainid))
    (i64.store (i32.const 100) (call $block_number))
    (i64.store (i32.const 108) (call $block_timestamp))
    (call $account_balance (i32.const 52) (i32.const 116))
    (i32.store (i32.const 148) (call $account_code_size (i32.const 52)))
    (call $keccak (i32.const 0) (i32.const 0) (i32.const 152))
    (i64.store (i32.const 184) (call $gas_left))
    (i32.store (i32.const 192) (call $ink_price))
    (call $write_result (i32.const 0) (i32.const 196))
    (i32.const 0)))
"#;

#[test]
fn context_hostios_report_the_frame() {
    let mut chain = chain();
    let program = install(&mut chain, CONTEXT);
    chain.set_block_number(5);
    chain.set_timestamp(1_800_000_000);
    let outcome = chain.call(ALICE, program, U256::from(9), &[]);
    assert!(outcome.is_success(), "{outcome:?}");
    let out = outcome.return_data;
    let u64_at = |i: usize| u64::from_le_bytes(out[i..i + 8].try_into().unwrap());
    assert_eq!(&out[0..20], ALICE.as_slice());
    assert_eq!(U256::from_be_slice(&out[20..52]), U256::from(9));
    assert_eq!(&out[52..72], program.as_slice());
    assert_eq!(&out[72..92], ALICE.as_slice());
    assert_eq!(u64_at(92), chain.config().chain_id);
    assert_eq!(u64_at(100), 5);
    assert_eq!(u64_at(108), 1_800_000_000);
    assert_eq!(U256::from_be_slice(&out[116..148]), U256::from(9));
    let code_size = u32::from_le_bytes(out[148..152].try_into().unwrap());
    assert_eq!(code_size as usize, chain.code(program).len());
    assert_eq!(
        B256::from_slice(&out[152..184]),
        alloy_primitives::KECCAK256_EMPTY
    );
    let gas_left = u64_at(184);
    assert!(gas_left > 29_000_000 && gas_left < chain.config().call_gas_limit);
    assert_eq!(
        u32::from_le_bytes(out[192..196].try_into().unwrap()),
        chain.config().ink_price
    );
}
