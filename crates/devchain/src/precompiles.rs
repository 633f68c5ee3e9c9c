//! Precompiles: Ethereum's `ecrecover` (0x01), `sha256` (0x02), `identity` (0x04), and
//! Arbitrum's `ArbSys` (0x64) and `ArbWasm` (0x71).
//!
//! Gas follows geth `core/vm/contracts.go`; ArbSys and ArbWasm follow Nitro
//! `precompiles/ArbSys.go` and `precompiles/ArbWasm.go`.

use std::sync::Arc;

use alloy_primitives::{Address, B256, Log, U256, address};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolInterface, sol};
use sha2::{Digest, Sha256};

use crate::{
    error::{Halt, ProgramError},
    machine::{CallResult, ExitStatus, Message, Runtime, World},
    program,
    state::ProgramInfo,
};

/// `ecrecover`.
pub const ECRECOVER: Address = address!("0000000000000000000000000000000000000001");
/// `sha256`.
pub const SHA256: Address = address!("0000000000000000000000000000000000000002");
/// `identity`.
pub const IDENTITY: Address = address!("0000000000000000000000000000000000000004");
/// `ArbSys`.
pub const ARB_SYS: Address = address!("0000000000000000000000000000000000000064");
/// `ArbWasm`.
pub const ARB_WASM: Address = address!("0000000000000000000000000000000000000071");

/// Fixed gas Nitro burns before activating (`ArbWasm.ActivateProgram`).
const ACTIVATION_FIXED_GAS: u64 = 1_659_168;

sol! {
    /// ArbSys at 0x64 (the subset the devchain implements).
    #[sol(all_derives)]
    interface ArbSys {
        function arbBlockNumber() external view returns (uint256);
        function arbBlockHash(uint256 arbBlockNum) external view returns (bytes32);
        function arbChainID() external view returns (uint256);
        error InvalidBlockNumber(uint256 requested, uint256 current);
    }

    /// ArbWasm at 0x71 (the subset the devchain implements).
    #[sol(all_derives)]
    interface ArbWasm {
        function activateProgram(address program) external payable returns (uint16 version, uint256 dataFee);
        function stylusVersion() external view returns (uint16 version);
        function inkPrice() external view returns (uint32 price);
        function codehashVersion(bytes32 codehash) external view returns (uint16 version);
        function programVersion(address program) external view returns (uint16 version);
        event ProgramActivated(bytes32 indexed codehash, bytes32 moduleHash, address program, uint256 dataFee, uint16 version);
        error ProgramNotWasm();
        error ProgramNotActivated();
        error ProgramNeedsUpgrade(uint16 version, uint16 stylusVersion);
        error ProgramExpired(uint64 ageInSeconds);
        error ProgramUpToDate();
        error ProgramKeepaliveTooSoon(uint64 ageInSeconds);
        error ProgramInsufficientValue(uint256 have, uint256 want);
    }
}

/// Revert data of `ProgramNotActivated()`, returned when an unactivated program is called.
#[must_use]
pub fn program_not_activated_error() -> Vec<u8> {
    ArbWasm::ProgramNotActivated {}.abi_encode()
}

fn words(len: usize) -> u64 {
    (len as u64).div_ceil(32)
}

fn success(output: Vec<u8>, gas: u64, cost: u64) -> CallResult {
    if cost > gas {
        return CallResult::halt(Halt::OutOfInk);
    }
    CallResult {
        status: ExitStatus::Success,
        output,
        gas_left: gas - cost,
    }
}

fn revert(output: Vec<u8>, gas: u64, cost: u64) -> CallResult {
    CallResult {
        status: ExitStatus::Revert,
        output,
        gas_left: gas.saturating_sub(cost),
    }
}

/// Runs the precompile at `msg.code_address`, if there is one.
pub fn run(world: &mut World, rt: &Arc<Runtime>, msg: &Message) -> Option<CallResult> {
    let input = &msg.input;
    let gas = msg.gas;
    let result = match msg.code_address {
        ECRECOVER => success(ecrecover(input), gas, 3000),
        SHA256 => success(
            Sha256::digest(input).to_vec(),
            gas,
            60 + 12 * words(input.len()),
        ),
        IDENTITY => success(input.clone(), gas, 15 + 3 * words(input.len())),
        ARB_SYS => arb_sys(world, input, gas),
        ARB_WASM => arb_wasm(world, rt, msg),
        _ => return None,
    };
    Some(result)
}

/// geth `ecrecover.Run`: 128 bytes (hash, v, r, s), right-padded; empty output on failure
/// (v other than 27 or 28, r or s zero or not below the curve order, no such point). A high
/// s is accepted, as geth's precompile does.
fn ecrecover(input: &[u8]) -> Vec<u8> {
    let mut data = [0u8; 128];
    let n = input.len().min(128);
    data[..n].copy_from_slice(&input[..n]);
    let v = U256::from_be_slice(&data[32..64]);
    let parity = if v == U256::from(27) {
        false
    } else if v == U256::from(28) {
        true
    } else {
        return Vec::new();
    };
    let r = U256::from_be_slice(&data[64..96]);
    let s = U256::from_be_slice(&data[96..128]);
    let signature = alloy_primitives::Signature::new(r, s, parity);
    let hash = B256::from_slice(&data[..32]);
    match alloy_consensus::crypto::secp256k1::recover_signer_unchecked(&signature, hash) {
        Ok(signer) => {
            let mut out = vec![0u8; 32];
            out[12..].copy_from_slice(signer.as_slice());
            out
        }
        Err(_) => Vec::new(),
    }
}

fn arb_sys(world: &World, input: &[u8], gas: u64) -> CallResult {
    // Nitro precompiles charge a small base cost; view methods here cost a warm SLOAD.
    let cost = 100;
    let Ok(call) = ArbSys::ArbSysCalls::abi_decode(input) else {
        return revert(Vec::new(), gas, gas);
    };
    let current = world.env.number;
    match call {
        ArbSys::ArbSysCalls::arbBlockNumber(_) => success(
            ArbSys::arbBlockNumberCall::abi_encode_returns(&U256::from(current)),
            gas,
            cost,
        ),
        ArbSys::ArbSysCalls::arbChainID(_) => success(
            ArbSys::arbChainIDCall::abi_encode_returns(&U256::from(world.config.chain_id)),
            gas,
            cost,
        ),
        ArbSys::ArbSysCalls::arbBlockHash(call) => {
            let requested = call.arbBlockNum;
            let valid = u64::try_from(requested)
                .ok()
                .filter(|&n| n < current && n.saturating_add(256) >= current);
            match valid.and_then(|n| world.env.block_hashes.get(usize::try_from(n).ok()?)) {
                Some(hash) => success(
                    ArbSys::arbBlockHashCall::abi_encode_returns(hash),
                    gas,
                    cost,
                ),
                None => revert(
                    ArbSys::InvalidBlockNumber {
                        requested,
                        current: U256::from(current),
                    }
                    .abi_encode(),
                    gas,
                    cost,
                ),
            }
        }
    }
}

fn arb_wasm(world: &mut World, rt: &Arc<Runtime>, msg: &Message) -> CallResult {
    let gas = msg.gas;
    let cost = 100;
    let Ok(call) = ArbWasm::ArbWasmCalls::abi_decode(&msg.input) else {
        return revert(Vec::new(), gas, gas);
    };
    match call {
        ArbWasm::ArbWasmCalls::stylusVersion(_) => success(
            ArbWasm::stylusVersionCall::abi_encode_returns(&world.config.stylus_version),
            gas,
            cost,
        ),
        ArbWasm::ArbWasmCalls::inkPrice(_) => success(
            ArbWasm::inkPriceCall::abi_encode_returns(&world.config.ink_price),
            gas,
            cost,
        ),
        ArbWasm::ArbWasmCalls::codehashVersion(call) => version_of(world, call.codehash, gas),
        ArbWasm::ArbWasmCalls::programVersion(call) => {
            let codehash = world.state.code_hash(call.program);
            version_of(world, codehash, gas)
        }
        ArbWasm::ArbWasmCalls::activateProgram(call) => activate(world, rt, msg, call.program),
    }
}

fn version_of(world: &World, codehash: B256, gas: u64) -> CallResult {
    match world.state.program(codehash) {
        Some(info) => success(
            ArbWasm::codehashVersionCall::abi_encode_returns(&info.version),
            gas,
            100,
        ),
        None => revert(ArbWasm::ProgramNotActivated {}.abi_encode(), gas, 100),
    }
}

/// `ArbWasm.ActivateProgram` + `Programs.ActivateProgram`: decompress, validate, record the
/// activation by codehash, charge the data fee from `msg.value` and refund the rest.
fn activate(world: &mut World, rt: &Arc<Runtime>, msg: &Message, target: Address) -> CallResult {
    let gas = msg.gas;
    if gas < ACTIVATION_FIXED_GAS {
        return CallResult::halt(Halt::OutOfInk);
    }
    if msg.is_static {
        return CallResult::halt(Halt::WriteProtection);
    }
    let code = world.state.code(target);
    if !program::is_stylus_code(&code) {
        return revert(
            ArbWasm::ProgramNotWasm {}.abi_encode(),
            gas,
            ACTIVATION_FIXED_GAS,
        );
    }
    let codehash = world.state.code_hash(target);
    if world
        .state
        .program(codehash)
        .is_some_and(|p| p.version == world.config.stylus_version)
    {
        return revert(
            ArbWasm::ProgramUpToDate {}.abi_encode(),
            gas,
            ACTIVATION_FIXED_GAS,
        );
    }
    // Validation failures take all gas (`takeAllGas` in ArbWasm.ActivateProgram).
    let validated = match crate::machine::load_wasm(world, &code)
        .and_then(|wasm| program::validate(&rt.engine, &wasm, &world.config))
    {
        Ok(v) => v,
        Err(e) => return CallResult::halt(Halt::Program(e)),
    };
    let data_fee = program::data_fee(validated.wasm_len);
    if msg.value < data_fee {
        return CallResult {
            status: ExitStatus::Halt(Halt::Program(ProgramError::InsufficientValue {
                have: msg.value,
                want: data_fee,
            })),
            output: ArbWasm::ProgramInsufficientValue {
                have: msg.value,
                want: data_fee,
            }
            .abi_encode(),
            gas_left: gas - ACTIVATION_FIXED_GAS,
        };
    }
    // The value already sits at 0x71: the fee goes to the network account (the coinbase on the
    // devchain), the change back to the caller.
    let network = world.config.coinbase;
    let refund = msg.value - data_fee;
    if world.state.transfer(ARB_WASM, network, data_fee).is_err()
        || world.state.transfer(ARB_WASM, msg.caller, refund).is_err()
    {
        return CallResult::halt(Halt::Precompile("activation fee accounting".into()));
    }
    let version = world.config.stylus_version;
    world.state.set_program(
        codehash,
        ProgramInfo {
            version,
            module_hash: validated.module_hash,
            footprint: validated.footprint,
            activated_at: world.env.timestamp,
        },
    );
    world.modules.insert(codehash, validated.module);
    let event = ArbWasm::ProgramActivated {
        codehash,
        moduleHash: validated.module_hash,
        program: target,
        dataFee: data_fee,
        version,
    };
    world.state.add_log(Log {
        address: ARB_WASM,
        data: event.encode_log_data(),
    });
    success(
        ArbWasm::activateProgramCall::abi_encode_returns(&ArbWasm::activateProgramReturn {
            version,
            dataFee: data_fee,
        }),
        gas,
        ACTIVATION_FIXED_GAS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;

    #[test]
    fn ecrecover_recovers_a_k256_signature() {
        let key = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let hash = keccak256(b"datacloud");
        let (sig, rec) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
        let mut input = hash.to_vec();
        let mut v = [0u8; 32];
        v[31] = 27 + rec.to_byte();
        input.extend_from_slice(&v);
        input.extend_from_slice(&sig.to_bytes());
        let point = key.verifying_key().to_encoded_point(false);
        let expected = Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..]);
        let out = ecrecover(&input);
        assert_eq!(Address::from_slice(&out[12..]), expected);
        assert!(ecrecover(&[0u8; 10]).is_empty());

        // The same signature with a high s (n - s) and the other parity: geth's precompile
        // accepts it and recovers the same key.
        let order = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let s = U256::from_be_slice(&input[96..128]);
        let mut high = input.clone();
        high[63] = if input[63] == 27 { 28 } else { 27 };
        high[96..128].copy_from_slice(&(order - s).to_be_bytes::<32>());
        assert_eq!(Address::from_slice(&ecrecover(&high)[12..]), expected);

        // r or s zero or not below the order, or v not 27/28: no output.
        for (range, value) in [
            (64..96, U256::ZERO),
            (64..96, order),
            (96..128, U256::ZERO),
            (96..128, order),
            (32..64, U256::from(29)),
        ] {
            let mut bad = input.clone();
            bad[range].copy_from_slice(&value.to_be_bytes::<32>());
            assert!(ecrecover(&bad).is_empty(), "{value}");
        }
    }
}
