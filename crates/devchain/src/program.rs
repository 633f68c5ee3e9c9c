//! Stylus programs on chain: Nitro's code format, the deployment prelude, and activation-time
//! validation.
//!
//! A program's account code is `0xEFF000 ‖ dictionary byte ‖ brotli(wasm)`
//! (Nitro `core/state` `StripStylusPrefix`, stylus-tools `prefixes::EOF_NO_DICT`). Activation
//! decompresses it, validates it as `crates/prover/src/binary.rs::parse_user` does, and caches the
//! compiled module by codehash.

use std::io::{Read, Write};

use alloy_primitives::{Address, B256, keccak256};
use wasmi::{Engine, ExternType, Module};

use crate::{config::ChainConfig, error::ProgramError, host};

/// The EOF-inspired Stylus discriminant of a classic (single-account) program.
pub const STYLUS_PREFIX: [u8; 3] = [0xEF, 0xF0, 0x00];
/// Prefix of a code fragment (stylus-tools `prefixes::FRAGMENT`, the `ArbOS` 50 contract size limit).
pub const FRAGMENT_PREFIX: [u8; 3] = [0xEF, 0xF0, 0x01];
/// Prefix of a root program: `0xEFF002 ‖ dict ‖ u32 BE decompressed length ‖ fragment addresses`
/// (Nitro `state.NewStylusRoot`, `constructRootContract` in the system tests).
pub const ROOT_PREFIX: [u8; 3] = [0xEF, 0xF0, 0x02];
/// Dictionary byte for "no dictionary" (`arbcompress.EmptyDictionary`).
pub const DICTIONARY_NONE: u8 = 0;
/// The export every program must have (`STYLUS_ENTRY_POINT`).
pub const ENTRY_POINT: &str = "user_entrypoint";
/// Brotli quality and window used by stylus-tools / `arbcompress`.
const BROTLI_QUALITY: u32 = 11;
const BROTLI_WINDOW: u32 = 22;
/// Length of the stylus-tools deployment prelude (42 bytes of init code + 1 version byte).
pub const PRELUDE_LENGTH: usize = 43;

/// Whether `code` is a callable Stylus program (classic or root).
#[must_use]
pub fn is_stylus_code(code: &[u8]) -> bool {
    code.starts_with(&STYLUS_PREFIX) || code.starts_with(&ROOT_PREFIX)
}

/// Whether `code` is a fragment of a larger program (data, never callable).
#[must_use]
pub fn is_fragment(code: &[u8]) -> bool {
    code.starts_with(&FRAGMENT_PREFIX)
}

/// Code of one fragment: `0xEFF001 ‖ chunk of brotli(wasm)`.
#[must_use]
pub fn fragment_code(chunk: &[u8]) -> Vec<u8> {
    let mut code = FRAGMENT_PREFIX.to_vec();
    code.extend_from_slice(chunk);
    code
}

/// Code of a root program over `fragments`.
#[must_use]
pub fn root_code(decompressed_len: u32, fragments: &[Address]) -> Vec<u8> {
    let mut code = ROOT_PREFIX.to_vec();
    code.push(DICTIONARY_NONE);
    code.extend_from_slice(&decompressed_len.to_be_bytes());
    for address in fragments {
        code.extend_from_slice(address.as_slice());
    }
    code
}

/// The WASM of a program's code: a classic program is decompressed directly
/// (`getWasmFromClassicStylus`); a root program's fragments are read with `code_of`,
/// concatenated and decompressed (`getWasmFromRootStylus`).
///
/// # Errors
/// A [`ProgramError`] naming the broken rule.
pub fn load_wasm(
    code: &[u8],
    max_wasm_size: usize,
    max_fragments: usize,
    code_of: impl Fn(Address) -> Vec<u8>,
) -> Result<Vec<u8>, ProgramError> {
    if !code.starts_with(&ROOT_PREFIX) {
        return unwrap(code, max_wasm_size);
    }
    if code.len() < 8 || !(code.len() - 8).is_multiple_of(20) {
        return Err(ProgramError::Rejected("malformed root program".into()));
    }
    if code[3] != DICTIONARY_NONE {
        return Err(ProgramError::UnsupportedDictionary(code[3]));
    }
    let declared = u32::from_be_bytes([code[4], code[5], code[6], code[7]]) as usize;
    if declared > max_wasm_size {
        return Err(ProgramError::WasmTooLarge {
            size: declared,
            max: max_wasm_size,
        });
    }
    let addresses: Vec<Address> = code[8..]
        .chunks_exact(20)
        .map(Address::from_slice)
        .collect();
    if addresses.is_empty() {
        return Err(ProgramError::Rejected(
            "fragment count cannot be zero".into(),
        ));
    }
    if addresses.len() > max_fragments {
        return Err(ProgramError::Rejected(format!(
            "fragment count exceeds limit of {max_fragments}"
        )));
    }
    let mut compressed = vec![0xEF, 0xF0, 0x00, DICTIONARY_NONE];
    for address in addresses {
        let fragment = code_of(address);
        if !is_fragment(&fragment) {
            return Err(ProgramError::Rejected(format!(
                "{address} is not a Stylus code fragment"
            )));
        }
        compressed.extend_from_slice(&fragment[FRAGMENT_PREFIX.len()..]);
    }
    let wasm = unwrap(&compressed, declared)?;
    if wasm.len() != declared {
        return Err(ProgramError::Rejected(format!(
            "decompressed length {} differs from the declared {declared}",
            wasm.len()
        )));
    }
    Ok(wasm)
}

/// Wraps WASM into on-chain code: `0xEFF000 ‖ 0x00 ‖ brotli(wasm)`.
///
/// # Errors
/// [`ProgramError::Compression`] if brotli fails.
pub fn wrap(wasm: &[u8]) -> Result<Vec<u8>, ProgramError> {
    let mut code = STYLUS_PREFIX.to_vec();
    code.push(DICTIONARY_NONE);
    {
        let mut writer =
            brotli::CompressorWriter::new(&mut code, 4096, BROTLI_QUALITY, BROTLI_WINDOW);
        writer
            .write_all(wasm)
            .map_err(|e| ProgramError::Compression(e.to_string()))?;
        writer
            .flush()
            .map_err(|e| ProgramError::Compression(e.to_string()))?;
    }
    Ok(code)
}

/// The init code stylus-tools sends in a deployment transaction
/// (`stylus-tools/src/core/deployment/prelude.rs`): `PUSH32 len DUP1 PUSH1 43 PUSH1 0 CODECOPY
/// PUSH1 0 RETURN 0x00 ‖ code`.
#[must_use]
pub fn deployment_init_code(code: &[u8]) -> Vec<u8> {
    let mut init = Vec::with_capacity(code.len() + PRELUDE_LENGTH);
    init.push(0x7f);
    let mut len = [0u8; 32];
    len[24..].copy_from_slice(&(code.len() as u64).to_be_bytes());
    init.extend_from_slice(&len);
    // PRELUDE_LENGTH is 43 and fits a PUSH1 immediate.
    init.extend_from_slice(&[0x80, 0x60, 43, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3, 0x00]);
    init.extend_from_slice(code);
    init
}

/// The runtime code returned by init code, when the init code is the stylus-tools prelude (the
/// devchain has no EVM to run anything else).
#[must_use]
pub fn runtime_code_of_init_code(init: &[u8]) -> Option<&[u8]> {
    if init.len() < PRELUDE_LENGTH || init[0] != 0x7f {
        return None;
    }
    let expected_tail = [0x80, 0x60, 43, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3, 0x00];
    if init[33..PRELUDE_LENGTH] != expected_tail {
        return None;
    }
    let len_bytes = &init[1..33];
    if len_bytes[..24].iter().any(|&b| b != 0) {
        return None;
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&len_bytes[24..]);
    let len = usize::try_from(u64::from_be_bytes(len)).ok()?;
    let code = &init[PRELUDE_LENGTH..];
    // CODECOPY pads with zeros past the end; the prelude always copies exactly its payload.
    (code.len() == len).then_some(code)
}

/// Strips the prefix and decompresses (`getWasmFromClassicStylus`).
///
/// # Errors
/// [`ProgramError::NotWasm`], [`ProgramError::UnsupportedDictionary`] or
/// [`ProgramError::Decompression`].
pub fn unwrap(code: &[u8], max_wasm_size: usize) -> Result<Vec<u8>, ProgramError> {
    if !code.starts_with(&STYLUS_PREFIX) || code.len() < 4 {
        return Err(ProgramError::NotWasm);
    }
    let dictionary = code[3];
    if dictionary != DICTIONARY_NONE {
        return Err(ProgramError::UnsupportedDictionary(dictionary));
    }
    let mut wasm = Vec::new();
    let limit = u64::try_from(max_wasm_size).unwrap_or(u64::MAX);
    let mut reader = brotli::Decompressor::new(&code[4..], 4096).take(limit + 1);
    reader
        .read_to_end(&mut wasm)
        .map_err(|_| ProgramError::Decompression {
            max_size: max_wasm_size,
        })?;
    if wasm.len() > max_wasm_size {
        return Err(ProgramError::Decompression {
            max_size: max_wasm_size,
        });
    }
    Ok(wasm)
}

/// A validated program, ready to instantiate.
#[derive(Debug, Clone)]
pub struct ValidatedProgram {
    /// The compiled module.
    pub module: Module,
    /// keccak256 of the decompressed WASM (stands in for Nitro's module hash).
    pub module_hash: B256,
    /// Initial memory pages.
    pub footprint: u16,
    /// Decompressed size, used for the data fee.
    pub wasm_len: usize,
}

/// Validates decompressed WASM as Nitro's `parse_user` does: a single memory exported as
/// `memory` within the page limit, `user_entrypoint: (i32) -> i32`, no start function, imports
/// only from `vm_hooks` (and `console` in debug mode) that the devchain implements, and the
/// anti-DoS limits on counts.
///
/// # Errors
/// A [`ProgramError`] naming the rule broken.
pub fn validate(
    engine: &Engine,
    wasm: &[u8],
    config: &ChainConfig,
) -> Result<ValidatedProgram, ProgramError> {
    if wasm.len() > config.max_wasm_size {
        return Err(ProgramError::WasmTooLarge {
            size: wasm.len(),
            max: config.max_wasm_size,
        });
    }
    if has_start_section(wasm) {
        return Err(ProgramError::Rejected(
            "wasm start functions not allowed".into(),
        ));
    }
    let module = Module::new(engine, wasm).map_err(|e| ProgramError::Invalid(e.to_string()))?;

    let mut imports = 0usize;
    for import in module.imports() {
        imports += 1;
        let (m, n) = (import.module(), import.name());
        let allowed = match m {
            "vm_hooks" => host::VM_HOOKS.contains(&n),
            "console" => config.debug_mode && host::CONSOLE.contains(&n),
            _ => false,
        };
        if !allowed || !matches!(import.ty(), ExternType::Func(_)) {
            return Err(ProgramError::UnknownImport {
                module: m.to_owned(),
                name: n.to_owned(),
            });
        }
    }
    if imports > 513 {
        return Err(ProgramError::Rejected(format!(
            "too many wasm imports: {imports} > 513"
        )));
    }

    let Some(ExternType::Memory(memory)) = module.get_export("memory") else {
        return Err(ProgramError::Rejected(
            "missing memory with export name \"memory\"".into(),
        ));
    };
    let pages = memory.minimum();
    if pages > u64::from(config.page_limit) {
        return Err(ProgramError::Rejected(format!(
            "memory exceeds limit: {pages} > {}",
            config.page_limit
        )));
    }
    let footprint = u16::try_from(pages).unwrap_or(u16::MAX);

    match module.get_export(ENTRY_POINT) {
        Some(ExternType::Func(ty)) => {
            let ok = ty.params() == [wasmi::ValType::I32] && ty.results() == [wasmi::ValType::I32];
            if !ok {
                return Err(ProgramError::Rejected(format!(
                    "wrong type for {ENTRY_POINT}: {ty:?}"
                )));
            }
        }
        Some(_) => {
            return Err(ProgramError::Rejected(format!(
                "export {ENTRY_POINT} must be a function"
            )));
        }
        None => {
            return Err(ProgramError::Rejected(format!(
                "missing export with name {ENTRY_POINT}"
            )));
        }
    }
    let exports = module.exports().count();
    if exports > 1024 {
        return Err(ProgramError::Rejected(format!(
            "too many wasm exports: {exports} > 1024"
        )));
    }

    Ok(ValidatedProgram {
        module,
        module_hash: keccak256(wasm),
        footprint,
        wasm_len: wasm.len(),
    })
}

/// Whether a binary module has a start section (id 8), walking the section headers.
fn has_start_section(wasm: &[u8]) -> bool {
    let mut i = 8usize;
    while i < wasm.len() {
        let id = wasm[i];
        i += 1;
        let Some((size, next)) = read_leb_u32(wasm, i) else {
            return false;
        };
        if id == 8 {
            return true;
        }
        i = next.saturating_add(size as usize);
    }
    false
}

fn read_leb_u32(bytes: &[u8], mut i: usize) -> Option<(u32, usize)> {
    let mut result = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(i)?;
        i += 1;
        result |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((result, i));
        }
    }
    None
}

/// The activation data fee in wei: `minPrice × bytes` at rest demand
/// (`arbos/programs/data_pricer.go`, `initialMinPrice` = `82_928_201` wei per byte). Nitro prices
/// the native-code size estimate; the devchain prices the decompressed WASM size.
#[must_use]
pub fn data_fee(wasm_len: usize) -> alloy_primitives::U256 {
    alloy_primitives::U256::from(82_928_201_u64) * alloy_primitives::U256::from(wasm_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip() {
        let wasm = b"\0asm\x01\0\0\0 some bytes that compress".repeat(10);
        let code = wrap(&wasm).unwrap();
        assert!(code.starts_with(&[0xEF, 0xF0, 0x00, 0x00]));
        assert_eq!(unwrap(&code, 1 << 20).unwrap(), wasm);
        assert!(matches!(
            unwrap(&code, 10),
            Err(ProgramError::Decompression { .. })
        ));
        assert_eq!(unwrap(b"\x60\x00", 100), Err(ProgramError::NotWasm));
    }

    #[test]
    fn root_program_reassembles_its_fragments() {
        let wasm = (0..4000u32).flat_map(u32::to_le_bytes).collect::<Vec<u8>>();
        let code = wrap(&wasm).unwrap();
        let (a, b) = code[4..].split_at(code.len() / 3);
        let fragments = [Address::repeat_byte(1), Address::repeat_byte(2)];
        let root = root_code(u32::try_from(wasm.len()).unwrap(), &fragments);
        let code_of = |address: Address| {
            if address == fragments[0] {
                fragment_code(a)
            } else {
                fragment_code(b)
            }
        };
        assert_eq!(load_wasm(&root, 1 << 20, 2, code_of).unwrap(), wasm);
        assert!(
            load_wasm(&root, 1 << 20, 1, code_of).is_err(),
            "fragment limit"
        );
        assert!(load_wasm(&root, 100, 2, code_of).is_err(), "size limit");
        let bad = root_code(7, &fragments);
        assert!(
            load_wasm(&bad, 1 << 20, 2, code_of).is_err(),
            "declared length"
        );
    }

    #[test]
    fn prelude_round_trip() {
        let code = wrap(b"\0asm\x01\0\0\0").unwrap();
        let init = deployment_init_code(&code);
        assert_eq!(runtime_code_of_init_code(&init), Some(&code[..]));
        assert_eq!(runtime_code_of_init_code(&init[1..]), None);
    }
}
