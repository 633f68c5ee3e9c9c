//! Helpers shared by the integration tests.

/// The contract as `scripts/contracts build` leaves it (under `$CARGO_TARGET_DIR`, or the
/// workspace's `target/`); the README's test command builds it first.
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
