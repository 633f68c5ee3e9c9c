//! Builds the three Stylus contracts to WASM so that this crate can embed them.
//!
//! Why a build script: `datacloud deploy` and the agents' tests need the contracts' bytes, and a
//! fresh clone must work with a plain `cargo run -p datacloud-cli -- deploy`, without a separate
//! `scripts/contracts build` step to forget. The contracts cannot be ordinary dependencies: they
//! are built for another target, with std rebuilt from source and their own flags, so this
//! script runs a nested cargo, as substrate's `wasm-builder` does.
//!
//! The nested build is exactly `scripts/contracts build` (same flags, see `src/build_flags.rs`,
//! and the same `<target dir>/stylus` target directory), so whichever of the two runs first, the
//! other finds everything fresh. Its own target directory also keeps the nested cargo off the
//! lock of the outer build's directory.
//!
//! `DATACLOUD_CONTRACTS_WASM_DIR` names a directory of prebuilt `datacloud_<contract>.wasm`
//! files instead (a CI artifact, or a machine without the `rust-src` component).

use std::{
    env,
    error::Error,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

include!("src/build_flags.rs");

/// Largest WASM accepted: Stylus' decompressed program limit (`initialMaxWasmSize`, 128 KiB).
const MAX_WASM_BYTES: usize = 128 * 1024;

/// Sources the contract WASM depends on, relative to the workspace root. A new path dependency
/// of a contract must be added here.
const CONTRACT_INPUTS: [&str; 13] = [
    "contracts/dataset-registry/src",
    "contracts/dataset-registry/Cargo.toml",
    "contracts/proof-manager/src",
    "contracts/proof-manager/Cargo.toml",
    "contracts/query-market/src",
    "contracts/query-market/Cargo.toml",
    "contracts/dispute-game/src",
    "contracts/dispute-game/Cargo.toml",
    "crates/pdp/src",
    "crates/pdp/Cargo.toml",
    "Cargo.toml",
    "Cargo.lock",
    ".cargo/config.toml",
];

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("cargo did not set OUT_DIR")?);
    let manifest_dir = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR").ok_or("cargo did not set CARGO_MANIFEST_DIR")?,
    );
    // This crate sits at contracts/artifacts in the workspace.
    let workspace = manifest_dir.join("../..").canonicalize()?;

    println!("cargo:rerun-if-env-changed={PREBUILT_WASM_DIR_VAR}");
    let prebuilt = env::var_os(PREBUILT_WASM_DIR_VAR);
    let wasm_dir = if let Some(dir) = &prebuilt {
        let dir = PathBuf::from(dir);
        for package in CONTRACT_PACKAGES {
            println!(
                "cargo:rerun-if-changed={}",
                dir.join(wasm_file(package)).display()
            );
        }
        dir
    } else {
        for input in CONTRACT_INPUTS {
            println!("cargo:rerun-if-changed={}", workspace.join(input).display());
        }
        let stylus_dir = target_dir(&out_dir, &workspace).join(STYLUS_TARGET_SUBDIR);
        build_contracts(&workspace, &stylus_dir)?;
        stylus_dir.join(TARGET).join(PROFILE)
    };

    for package in CONTRACT_PACKAGES {
        let path = wasm_dir.join(wasm_file(package));
        let wasm = fs::read(&path).map_err(|e| {
            let from = if prebuilt.is_some() {
                format!(" (named by {PREBUILT_WASM_DIR_VAR})")
            } else {
                String::new()
            };
            format!("{}{from}: {e}", path.display())
        })?;
        if !wasm.starts_with(b"\0asm") || wasm.len() > MAX_WASM_BYTES {
            return Err(format!(
                "{}: not a WASM module of at most {MAX_WASM_BYTES} bytes ({} bytes)",
                path.display(),
                wasm.len()
            )
            .into());
        }
        fs::write(out_dir.join(wasm_file(package)), wasm)?;
    }
    Ok(())
}

/// `datacloud-proof-manager` → `datacloud_proof_manager.wasm`.
fn wasm_file(package: &str) -> String {
    format!("{}.wasm", package.replace('-', "_"))
}

/// The target directory of the cargo invocation running this script: the ancestor of `OUT_DIR`
/// holding cargo's `CACHEDIR.TAG` (right whether the directory came from `CARGO_TARGET_DIR`,
/// `--target-dir` or a config file); else `CARGO_TARGET_DIR` as the script reads it (relative to
/// the workspace root); else the workspace's `target/`.
fn target_dir(out_dir: &Path, workspace: &Path) -> PathBuf {
    if let Some(dir) = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
    {
        return dir.to_path_buf();
    }
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Runs `scripts/contracts build` as a nested cargo.
fn build_contracts(workspace: &Path, stylus_dir: &Path) -> Result<(), Box<dyn Error>> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--locked", "--lib", "--profile", PROFILE])
        .args(["--target", TARGET, "-Z"])
        .arg(format!("build-std={BUILD_STD}"))
        .arg("--target-dir")
        .arg(stylus_dir);
    for package in CONTRACT_PACKAGES {
        command.args(["-p", package]);
    }
    // `-Zbuild-std` and `-Cpanic=immediate-abort` are unstable: the pinned stable toolchain is
    // told to accept them for this build only, as the script does.
    command
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            WASM_RUSTFLAGS,
        )
        // Flags cargo hands this script for the host build would override the WASM flags (and
        // change the fingerprint the script's build left), and `cargo clippy` passes its driver
        // as a workspace wrapper: none of them belong in the contract build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!(
            "building the contracts failed ({}); `scripts/contracts build` shows the same, or set \
             {PREBUILT_WASM_DIR_VAR} to a directory of prebuilt WASM:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}
