//! The Stylus deployment format, as `cargo stylus deploy` (stylus-tools) sends it.
//!
//! A program's on-chain code is `0xEFF000 ‖ dictionary ‖ brotli(wasm)` (Nitro
//! `StripStylusPrefix`), created by init code that copies it to memory and returns it
//! (stylus-tools `core/deployment/prelude.rs`). This lives here rather than in the devchain
//! because agents deploy to real Arbitrum chains too; the tests check both agree.

use std::io::Write;

/// The classic Stylus program prefix (`0xEFF000`) and "no dictionary" byte.
const PROGRAM_PREFIX: [u8; 4] = [0xEF, 0xF0, 0x00, 0x00];
/// Brotli quality and window used by stylus-tools and Nitro's `arbcompress`.
const BROTLI_QUALITY: u32 = 11;
const BROTLI_WINDOW: u32 = 22;
/// Arbitrum's contract code size limit (24 KiB).
pub const MAX_CODE_SIZE: usize = 24 * 1024;
/// Length of the init-code prelude: 42 bytes of code and a version byte.
const PRELUDE_LENGTH: u8 = 43;

/// Why a WASM module cannot be deployed.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The bytes are not a WASM module.
    #[error("not a WASM module (no \\0asm header)")]
    NotWasm,
    /// Compressed, the program exceeds Arbitrum's code size limit.
    #[error("compressed program is {size} bytes, above the {MAX_CODE_SIZE}-byte contract limit")]
    TooLarge {
        /// Compressed size with prefix.
        size: usize,
    },
    /// Compression failed.
    #[error("brotli compression failed: {0}")]
    Compression(#[from] std::io::Error),
}

/// The on-chain code of `wasm`: `0xEFF000 ‖ 0x00 ‖ brotli(wasm)`.
///
/// # Errors
/// [`CodeError`] if `wasm` is not WASM, compression fails or the result is too large.
pub fn program_code(wasm: &[u8]) -> Result<Vec<u8>, CodeError> {
    if !wasm.starts_with(b"\0asm") {
        return Err(CodeError::NotWasm);
    }
    let mut code = PROGRAM_PREFIX.to_vec();
    {
        let mut writer =
            brotli::CompressorWriter::new(&mut code, 4096, BROTLI_QUALITY, BROTLI_WINDOW);
        writer.write_all(wasm)?;
        writer.flush()?;
    }
    if code.len() > MAX_CODE_SIZE {
        return Err(CodeError::TooLarge { size: code.len() });
    }
    Ok(code)
}

/// Init code that deploys `code`: `PUSH32 len DUP1 PUSH1 43 PUSH1 0 CODECOPY PUSH1 0 RETURN`,
/// a version byte `0x00`, then `code`.
#[must_use]
pub fn deployment_init_code(code: &[u8]) -> Vec<u8> {
    let mut init = Vec::with_capacity(code.len() + usize::from(PRELUDE_LENGTH));
    init.push(0x7f);
    let mut len = [0u8; 32];
    len[24..].copy_from_slice(&(code.len() as u64).to_be_bytes());
    init.extend_from_slice(&len);
    init.extend_from_slice(&[
        0x80,
        0x60,
        PRELUDE_LENGTH,
        0x60,
        0x00,
        0x39,
        0x60,
        0x00,
        0xf3,
    ]);
    init.push(0x00);
    init.extend_from_slice(code);
    init
}

#[cfg(test)]
mod tests {
    use super::*;
    use datacloud_devchain::program;

    #[test]
    fn agrees_with_the_devchain_that_executes_it() {
        let wasm = datacloud_contract_artifacts::query_market();
        let code = program_code(wasm).unwrap();
        let init = deployment_init_code(&code);
        assert_eq!(
            program::runtime_code_of_init_code(&init),
            Some(code.as_slice())
        );
        assert_eq!(program::unwrap(&code, 1 << 20).unwrap(), wasm);
        assert!(matches!(program_code(b"not wasm"), Err(CodeError::NotWasm)));
    }
}
