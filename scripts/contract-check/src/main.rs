//! `datacloud-contract-check FILE.wasm...`: prints each contract's raw WASM size and the size of
//! the code a Stylus deployment puts on chain, and fails when any exceeds the limit.
//!
//! The deployed code is `0xEFF000` (Stylus' EOF-inspired prefix), one dictionary byte (0 = no
//! dictionary) and the WASM brotli-compressed at quality 11, as `cargo stylus deploy` produces it
//! (stylus-sdk-rs `stylus-tools/src/core/code/wasm.rs`). Nitro refuses deployed code above
//! EIP-170's 24 KiB (`MaxCodeSize` = 24576 bytes).

use std::{fs, io::Write, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, bail};

/// EIP-170's code size limit, which Nitro applies to a Stylus program's compressed code.
const MAX_CODE_SIZE: usize = 24 * 1024;
/// `0xEFF000` plus the dictionary byte.
const PREFIX_LEN: usize = 4;

fn compressed_len(wasm: &[u8]) -> Result<usize> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        writer.write_all(wasm).context("compressing")?;
    }
    Ok(out.len())
}

fn run() -> Result<bool> {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        bail!("usage: datacloud-contract-check FILE.wasm...");
    }
    let mut all_fit = true;
    println!(
        "{:<28} {:>10} {:>12} {:>10}  limit {MAX_CODE_SIZE} B",
        "contract", "wasm B", "deployed B", "headroom"
    );
    for file in files {
        let wasm = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        if !wasm.starts_with(b"\0asm") {
            bail!("{} is not a WASM module", file.display());
        }
        let deployed = PREFIX_LEN + compressed_len(&wasm)?;
        let fits = deployed <= MAX_CODE_SIZE;
        all_fit &= fits;
        let name = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        #[allow(clippy::cast_possible_wrap)] // sizes are far below i64::MAX
        let headroom = MAX_CODE_SIZE as i64 - deployed as i64;
        println!(
            "{name:<28} {:>10} {deployed:>12} {headroom:>10}{}",
            wasm.len(),
            if fits { "" } else { "  OVER THE LIMIT" }
        );
    }
    Ok(all_fit)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: a contract exceeds Stylus' {MAX_CODE_SIZE}-byte code limit");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
