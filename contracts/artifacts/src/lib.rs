//! # datacloud-contract-artifacts — the DataCloud contracts' deployable WASM
//!
//! The WASM of `DatasetRegistry`, `ProofManager` and `QueryMarket`, built by this crate's build
//! script exactly as `scripts/contracts build` builds it (see `build.rs` for why, and for
//! `DATACLOUD_CONTRACTS_WASM_DIR`), and embedded so that deploying needs no file on disk.
//! These are the raw modules; deployment compresses them into Stylus code.

/// One contract's WASM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractWasm {
    /// The contract's name as its Solidity interface calls it (`DatasetRegistry`).
    pub name: &'static str,
    /// The WASM module.
    pub wasm: &'static [u8],
}

/// `DatasetRegistry`'s WASM.
#[must_use]
pub fn dataset_registry() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/datacloud_dataset_registry.wasm"))
}

/// `ProofManager`'s WASM.
#[must_use]
pub fn proof_manager() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/datacloud_proof_manager.wasm"))
}

/// `QueryMarket`'s WASM.
#[must_use]
pub fn query_market() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/datacloud_query_market.wasm"))
}

/// `QueryMarket`'s dispute game, the program the market delegate-calls for disputes.
#[must_use]
pub fn dispute_game() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/datacloud_dispute_game.wasm"))
}

/// The four programs, in deployment order.
#[must_use]
pub fn all() -> [ContractWasm; 4] {
    [
        ContractWasm {
            name: "DatasetRegistry",
            wasm: dataset_registry(),
        },
        ContractWasm {
            name: "ProofManager",
            wasm: proof_manager(),
        },
        ContractWasm {
            name: "DisputeGame",
            wasm: dispute_game(),
        },
        ContractWasm {
            name: "QueryMarket",
            wasm: query_market(),
        },
    ]
}

#[cfg(test)]
mod tests {
    // The build script's constants; the tests check only those the script shares.
    #[allow(dead_code)]
    mod build_flags {
        include!("build_flags.rs");
    }
    use build_flags::{
        BUILD_STD, CONTRACT_PACKAGES, PROFILE, STYLUS_TARGET_SUBDIR, TARGET, WASM_RUSTFLAGS,
    };

    const SCRIPT: &str = include_str!("../../../scripts/contracts");

    #[test]
    fn build_script_flags_match_scripts_contracts() {
        // Drift here would make the two builds fight over one target directory.
        for needle in [
            format!("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS=\"{WASM_RUSTFLAGS}\""),
            format!("--profile {PROFILE} --target {TARGET}"),
            format!("-Z build-std={BUILD_STD}"),
            format!("STYLUS_TARGET_DIR=\"$TARGET_DIR/{STYLUS_TARGET_SUBDIR}\""),
            "RUSTC_BOOTSTRAP=1".to_owned(),
            "cargo build --locked --lib".to_owned(),
        ] {
            assert!(SCRIPT.contains(&needle), "scripts/contracts lacks {needle}");
        }
        for package in CONTRACT_PACKAGES {
            let short = package.trim_start_matches("datacloud-");
            assert!(
                SCRIPT.contains(short),
                "scripts/contracts does not build {package}"
            );
        }
    }

    #[test]
    fn embedded_modules_are_the_three_distinct_contracts() {
        let all = super::all();
        for contract in all {
            assert!(
                contract.wasm.starts_with(b"\0asm\x01\0\0\0"),
                "{}",
                contract.name
            );
            // Every Stylus program exports its entry point by name.
            assert!(
                contract.wasm.windows(15).any(|w| w == b"user_entrypoint"),
                "{} has no user_entrypoint",
                contract.name
            );
        }
        assert_ne!(all[0].wasm, all[1].wasm);
        assert_ne!(all[1].wasm, all[2].wasm);
        assert_ne!(all[0].wasm, all[2].wasm);
    }
}
