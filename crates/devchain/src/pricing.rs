//! Ink and gas prices, transcribed from Nitro.
//!
//! - hostio base costs: `crates/arbutil/src/pricing.rs`
//! - EVM gas constants: `crates/arbutil/src/evm/mod.rs`
//! - per-opcode ink: `crates/prover/src/programs/meter.rs` (`pricing_v1`)
//! - memory pages: `arbos/programs/memory.go` (`MemoryModel::GasCost`)

/// For hostios that may return something.
pub const HOSTIO_INK: u64 = 8400;
/// For hostios that include pointers.
pub const PTR_INK: u64 = 13440 - HOSTIO_INK;
/// For hostios that involve an API cost.
pub const EVM_API_INK: u64 = 59673;

/// `READ_ARGS_BASE_INK`, `WRITE_RESULT_BASE_INK`, `RETURN_DATA_SIZE_BASE_INK`, and the other
/// hostios that only return a number.
pub const SIMPLE_INK: u64 = HOSTIO_INK;
/// `STORAGE_LOAD_BASE_INK` and `STORAGE_CACHE_BASE_INK`.
pub const STORAGE_ACCESS_INK: u64 = HOSTIO_INK + 2 * PTR_INK;
/// `STORAGE_FLUSH_BASE_INK`, `READ_RETURN_DATA_BASE_INK`, `EMIT_LOG_BASE_INK`,
/// `ACCOUNT_CODE_BASE_INK`, `ACCOUNT_CODE_SIZE_BASE_INK`.
pub const API_INK: u64 = HOSTIO_INK + EVM_API_INK;
/// `CALL_CONTRACT_BASE_INK` and `CREATE1_BASE_INK`.
pub const CALL_INK: u64 = HOSTIO_INK + 3 * PTR_INK + EVM_API_INK;
/// `CREATE2_BASE_INK`.
pub const CREATE2_INK: u64 = HOSTIO_INK + 4 * PTR_INK + EVM_API_INK;
/// `ACCOUNT_BALANCE_BASE_INK` and `ACCOUNT_CODE_HASH_BASE_INK`.
pub const ACCOUNT_PTR_INK: u64 = HOSTIO_INK + 2 * PTR_INK + EVM_API_INK;
/// Hostios writing one pointer (`msg_sender`, `block_basefee`, `contract_address`, ...).
pub const PTR_HOSTIO_INK: u64 = HOSTIO_INK + PTR_INK;

/// `params.SstoreSentryGasEIP2200`.
pub const SSTORE_SENTRY_GAS: u64 = 2300;
/// `params.ColdAccountAccessCostEIP2929`.
pub const COLD_ACCOUNT_GAS: u64 = 2600;
/// `params.ColdSloadCostEIP2929`.
pub const COLD_SLOAD_GAS: u64 = 2100;
/// `params.WarmStorageReadCostEIP2929`.
pub const WARM_ACCESS_GAS: u64 = 100;
/// `StorageCache::REQUIRED_ACCESS_GAS`.
pub const STORAGE_CACHE_ACCESS_GAS: u64 = 10;
/// `params.LogGas` (per topic, plus one) and `params.LogDataGas` (per byte).
pub const LOG_TOPIC_GAS: u64 = 375;
/// `params.LogDataGas`.
pub const LOG_DATA_GAS: u64 = 8;
/// `params.CallValueTransferGas`.
pub const CALL_VALUE_GAS: u64 = 9000;
/// `params.CallNewAccountGas`.
pub const NEW_ACCOUNT_GAS: u64 = 25000;
/// `params.CallStipend`.
pub const CALL_STIPEND: u64 = 2300;
/// `params.CreateGas`.
pub const CREATE_GAS: u64 = 32000;
/// `params.CreateDataGas` (code deposit, per byte).
pub const CODE_DEPOSIT_GAS: u64 = 200;
/// `params.Keccak256WordGas` (CREATE2 hashes its init code).
pub const KECCAK_WORD_GAS: u64 = 6;
/// Minimum program init cost: `v2MinInitGas * MinInitGasUnits + initialMinCachedGas *
/// MinCachedGasUnits` (`arbos/programs/params.go`).
pub const PROGRAM_INIT_GAS: u64 = 69 * 128 + 11 * 32;

/// `write_price`: ink to write `bytes` into WASM memory.
#[must_use]
pub fn write_price(bytes: u32) -> u64 {
    5040 + 30 * u64::from(bytes.saturating_sub(32))
}

/// `read_price`: ink to read `bytes` out of WASM memory.
#[must_use]
pub fn read_price(bytes: u32) -> u64 {
    16381 + 55 * u64::from(bytes.saturating_sub(32))
}

/// `keccak_price`: ink for `native_keccak256` over `bytes`.
#[must_use]
pub fn keccak_price(bytes: u32) -> u64 {
    let words = u64::from(bytes.div_ceil(32)).saturating_sub(2);
    121_800 + 21000 * words
}

/// Gas of the EVM log opcodes: `(1 + topics) * LogGas + data * LogDataGas`.
#[must_use]
pub fn log_gas(topics: u32, data_len: u32) -> u64 {
    (1 + u64::from(topics)) * LOG_TOPIC_GAS + u64::from(data_len) * LOG_DATA_GAS
}

/// `memoryExponents` of `arbos/programs/memory.go`.
const MEMORY_EXPONENTS: [u32; 129] = [
    1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 7, 8, 9, 11, 12, 14, 17, 19, 22, 25, 29, 33, 38,
    43, 50, 57, 65, 75, 85, 98, 112, 128, 147, 168, 193, 221, 253, 289, 331, 379, 434, 497, 569,
    651, 745, 853, 976, 1117, 1279, 1463, 1675, 1917, 2194, 2511, 2874, 3290, 3765, 4309, 4932,
    5645, 6461, 7395, 8464, 9687, 11087, 12689, 14523, 16621, 19024, 21773, 24919, 28521, 32642,
    37359, 42758, 48938, 56010, 64104, 73368, 83971, 96106, 109_994, 125_890, 144_082, 164_904,
    188_735, 216_010, 247_226, 282_953, 323_844, 370_643, 424_206, 485_509, 555_672, 635_973,
    727_880, 833_067, 953_456, 1_091_243, 1_248_941, 1_429_429, 1_636_000, 1_872_423, 2_143_012,
    2_452_704, 2_807_151, 3_212_820, 3_677_113, 4_208_502, 4_816_684, 5_512_756, 6_309_419,
    7_221_210, 8_264_766, 9_459_129, 10_826_093, 12_390_601, 14_181_199, 16_230_562, 18_576_084,
    21_260_563, 24_332_984, 27_849_408, 31_873_999,
];

fn memory_exp(pages: u16) -> u64 {
    MEMORY_EXPONENTS
        .get(usize::from(pages))
        .map_or(u64::MAX, |&e| u64::from(e))
}

/// `MemoryModel::GasCost(new, open, ever)`: gas to open `new` pages when `open` are open in
/// this transaction and at most `ever` were.
#[must_use]
pub fn memory_gas(free_pages: u16, page_gas: u16, new: u16, open: u16, ever: u16) -> u64 {
    let new_open = open.saturating_add(new);
    let new_ever = ever.max(new_open);
    if new_ever <= free_pages {
        return 0;
    }
    let sub_free = |pages: u16| pages.saturating_sub(free_pages);
    let adding = sub_free(new_open).saturating_sub(sub_free(open));
    let linear = u64::from(adding) * u64::from(page_gas);
    let expand = memory_exp(new_ever).saturating_sub(memory_exp(ever));
    linear.saturating_add(expand)
}

/// Ink represented by one unit of wasmi fuel.
///
/// wasmi charges a `u8` fuel cost per operator, Nitro charges up to `13_610` ink per operator
/// (`pricing_v1`), so one fuel unit stands for 50 ink and each Nitro price is rounded to the
/// nearest multiple of 50 (capped at 255 units). Host functions keep the sub-unit remainder, so
/// hostio prices are exact.
pub const INK_PER_FUEL: u64 = 50;

fn units(ink: u64) -> u8 {
    u8::try_from((ink + INK_PER_FUEL / 2) / INK_PER_FUEL).unwrap_or(u8::MAX)
}

/// The per-operator fuel table for wasmi, derived from Nitro's `pricing_v1`.
///
/// `wasmi::OperatorCost` is `#[non_exhaustive]`, so it cannot be built with a struct literal
/// outside wasmi: the fields are assigned one by one, mirroring Nitro's table line by line.
#[must_use]
#[allow(clippy::too_many_lines, clippy::field_reassign_with_default)]
pub fn operator_costs() -> wasmi::OperatorCost {
    let mut c = wasmi::OperatorCost::default();
    // Unreachable, Return, Nop, consts, Block, Loop, Else, End: 1 ink.
    c.unreachable = units(1);
    c.return_ = units(1);
    c.nop = units(1);
    c.i32_const = units(1);
    c.i64_const = units(1);
    c.block = units(1);
    c.loop_ = units(1);
    c.else_ = units(1);
    c.end = units(1);
    c.drop = units(9);
    c.br = units(765);
    c.br_if = units(765);
    c.if_ = units(765);
    c.select = units(1250);
    c.call = units(3800);
    c.local_get = units(75);
    c.local_tee = units(75);
    c.local_set = units(210);
    c.global_get = units(225);
    c.global_set = units(575);
    for load in [
        &mut c.i32_load,
        &mut c.i32_load8_s,
        &mut c.i32_load8_u,
        &mut c.i32_load16_s,
        &mut c.i32_load16_u,
    ] {
        *load = units(670);
    }
    for load in [
        &mut c.i64_load,
        &mut c.i64_load8_s,
        &mut c.i64_load8_u,
        &mut c.i64_load16_s,
        &mut c.i64_load16_u,
        &mut c.i64_load32_s,
        &mut c.i64_load32_u,
    ] {
        *load = units(680);
    }
    for store in [&mut c.i32_store, &mut c.i32_store8, &mut c.i32_store16] {
        *store = units(825);
    }
    for store in [
        &mut c.i64_store,
        &mut c.i64_store8,
        &mut c.i64_store16,
        &mut c.i64_store32,
    ] {
        *store = units(950);
    }
    c.memory_size = units(3000);
    c.memory_grow = units(8050);
    for op in [
        &mut c.i32_eqz,
        &mut c.i32_eq,
        &mut c.i32_ne,
        &mut c.i32_lt_s,
        &mut c.i32_lt_u,
        &mut c.i32_gt_s,
        &mut c.i32_gt_u,
        &mut c.i32_le_s,
        &mut c.i32_le_u,
        &mut c.i32_ge_s,
        &mut c.i32_ge_u,
    ] {
        *op = units(170);
    }
    for op in [
        &mut c.i64_eqz,
        &mut c.i64_eq,
        &mut c.i64_ne,
        &mut c.i64_lt_s,
        &mut c.i64_lt_u,
        &mut c.i64_gt_s,
        &mut c.i64_gt_u,
        &mut c.i64_le_s,
        &mut c.i64_le_u,
        &mut c.i64_ge_s,
        &mut c.i64_ge_u,
    ] {
        *op = units(225);
    }
    for op in [
        &mut c.i32_clz,
        &mut c.i32_ctz,
        &mut c.i64_clz,
        &mut c.i64_ctz,
    ] {
        *op = units(210);
    }
    for op in [
        &mut c.i32_add,
        &mut c.i32_sub,
        &mut c.i32_and,
        &mut c.i32_or,
        &mut c.i32_xor,
        &mut c.i32_shl,
        &mut c.i32_shr_s,
        &mut c.i32_shr_u,
        &mut c.i32_rotl,
        &mut c.i32_rotr,
    ] {
        *op = units(70);
    }
    for op in [
        &mut c.i64_add,
        &mut c.i64_sub,
        &mut c.i64_and,
        &mut c.i64_or,
        &mut c.i64_xor,
        &mut c.i64_shl,
        &mut c.i64_shr_s,
        &mut c.i64_shr_u,
        &mut c.i64_rotl,
        &mut c.i64_rotr,
        &mut c.i32_wrap_i64,
        &mut c.i64_extend_i32_s,
        &mut c.i64_extend_i32_u,
        &mut c.i32_extend8_s,
        &mut c.i32_extend16_s,
        &mut c.i64_extend8_s,
        &mut c.i64_extend16_s,
        &mut c.i64_extend32_s,
    ] {
        *op = units(100);
    }
    c.i32_mul = units(160);
    c.i64_mul = units(160);
    for op in [
        &mut c.i32_div_s,
        &mut c.i32_div_u,
        &mut c.i32_rem_s,
        &mut c.i32_rem_u,
    ] {
        *op = units(1120);
    }
    for op in [
        &mut c.i64_div_s,
        &mut c.i64_div_u,
        &mut c.i64_rem_s,
        &mut c.i64_rem_u,
    ] {
        *op = units(1270);
    }
    c.i32_popcnt = units(2650);
    c.i64_popcnt = units(6000);
    c.memory_copy = units(950);
    c.memory_fill = units(950);
    // `2400 + 325 * targets` and `13610 + 650 * inputs`: wasmi prices per operator, not per
    // immediate, so the base price is used.
    c.br_table = units(2400);
    c.call_indirect = units(13610);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_model_matches_nitro() {
        // Two free pages: opening them costs nothing.
        assert_eq!(memory_gas(2, 1000, 2, 0, 0), 0);
        // A third page: 1000 linear + exp(3) - exp(0) = 1000.
        assert_eq!(memory_gas(2, 1000, 1, 2, 2), 1000);
        assert_eq!(memory_gas(2, 1000, 200, 0, 0), u64::MAX);
    }

    #[test]
    fn prices() {
        assert_eq!(read_price(32), 16381);
        assert_eq!(write_price(64), 5040 + 30 * 32);
        assert_eq!(keccak_price(64), 121_800);
        assert_eq!(keccak_price(96), 121_800 + 21000);
        assert_eq!(units(3800), 76);
        assert_eq!(units(13610), 255);
    }
}
