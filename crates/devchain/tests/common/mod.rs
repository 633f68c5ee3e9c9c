//! Helpers shared by the integration tests.

/// The contract as `scripts/contracts build` leaves it (under `$CARGO_TARGET_DIR`, or the
/// workspace's `target/`); the README's test command builds it first.
#[allow(dead_code)] // used by some of the test crates that include this module
pub fn contract_wasm(name: &str) -> Vec<u8> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        std::path::PathBuf::from,
    );
    let path = target
        .join("stylus/wasm32-unknown-unknown/contract")
        .join(format!("{name}.wasm"));
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) => panic!(
            "{}: {err}; build the contracts first with `scripts/contracts build` (scripts/test does)",
            path.display()
        ),
    }
}

/// A Stylus program that stores calldata word 1 at the slot named by calldata word 0 and
/// emits a log with that slot as its topic and the value as its data.
#[allow(dead_code)] // used by some of the test crates that include this module
pub const STORE_PROGRAM: &str = r#"
(module
  (import "vm_hooks" "read_args" (func $read_args (param i32)))
  (import "vm_hooks" "storage_cache_bytes32" (func $cache (param i32 i32)))
  (import "vm_hooks" "storage_flush_cache" (func $flush (param i32)))
  (import "vm_hooks" "emit_log" (func $emit_log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "user_entrypoint") (param $len i32) (result i32)
    (call $read_args (i32.const 0))
    (call $cache (i32.const 0) (i32.const 32))
    (call $flush (i32.const 0))
    (call $emit_log (i32.const 0) (i32.const 64) (i32.const 1))
    (i32.const 0)))
"#;

/// Calldata for [`STORE_PROGRAM`]: `slot ‖ value`.
#[allow(dead_code)] // used by some of the test crates that include this module
pub fn store_calldata(slot: u64, value: u64) -> Vec<u8> {
    let mut data = vec![0; 64];
    data[24..32].copy_from_slice(&slot.to_be_bytes());
    data[56..64].copy_from_slice(&value.to_be_bytes());
    data
}

/// The EIP-712 domain of the market at `market` on chain `chain_id`: a worker signs
/// `IQueryMarket::Attestation` (declared in the market's interface) under it. Workers compute
/// the digest themselves: the market exports no digest to sign.
#[allow(dead_code)] // used by some of the test crates that include this module
pub fn market_domain(
    chain_id: u64,
    market: alloy_primitives::Address,
) -> alloy_sol_types::Eip712Domain {
    alloy_sol_types::eip712_domain! {
        name: "DataCloud QueryMarket",
        version: "1",
        chain_id: chain_id,
        verifying_contract: market,
    }
}

/// The nonce with which `deployer` deployed `program` (its `CREATE` address is
/// `deployer.create(nonce)`): what the contracts' `initialize` asks of their deployer.
///
/// # Panics
/// When no nonce below 2^16 gives that address.
#[allow(dead_code)] // used by some of the test crates that include this module
pub fn deploy_nonce(
    deployer: alloy_primitives::Address,
    program: alloy_primitives::Address,
) -> u64 {
    (0..1 << 16)
        .find(|&nonce| deployer.create(nonce) == program)
        .expect("a CREATE address of the deployer")
}
