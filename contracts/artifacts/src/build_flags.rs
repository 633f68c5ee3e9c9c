// How the contracts are built: the exact flags of `scripts/contracts build`, shared by this
// crate's build script (`include!`) and its tests (which check the script still uses them).
// Identical flags and target directory are what let the build script reuse the script's build
// instead of rebuilding std and the contracts.

/// The contract packages, in the order `scripts/contracts` lists them.
pub const CONTRACT_PACKAGES: [&str; 4] = [
    "datacloud-dataset-registry",
    "datacloud-proof-manager",
    "datacloud-query-market",
    "datacloud-dispute-game",
];

/// `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS` of the contract build.
pub const WASM_RUSTFLAGS: &str = "-C link-arg=-zstack-size=32768 -C target-feature=-reference-types -C target-feature=+bulk-memory -Zunstable-options -Cpanic=immediate-abort";

/// The `-Z build-std` crates.
pub const BUILD_STD: &str = "std,panic_abort";

/// The size profile (`[profile.contract]` in the workspace manifest).
pub const PROFILE: &str = "contract";

/// The WASM target.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// The contracts' own target directory under the workspace target directory.
pub const STYLUS_TARGET_SUBDIR: &str = "stylus";

/// Environment variable naming a directory of prebuilt `datacloud_<contract>.wasm` files.
pub const PREBUILT_WASM_DIR_VAR: &str = "DATACLOUD_CONTRACTS_WASM_DIR";
