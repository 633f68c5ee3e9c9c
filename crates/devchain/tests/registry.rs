//! The real `DatasetRegistry` WASM on the devchain: deploy, activate, initialize, register a
//! dataset with a stake, read it back, events, and a custom-error revert that changes nothing.
//!
//! Needs the contract WASM: run `scripts/contracts build` first (`scripts/test` does); without it
//! the tests fail and say so.

use alloy_sol_types::{SolCall, SolError, SolEvent, sol};
use datacloud_devchain::{
    Address, B256, Bytes, ChainConfig, Devchain, ExitStatus, Halt, U256, precompiles,
};

sol! {
    interface IDatasetRegistry {
        function initialize(address proofManager, address queryMarket, uint256 minStake, uint64 withdrawCooldown, uint8 minPieceHeight, uint64 deployNonce) external;
        function registerDataset(bytes manifestCid, bytes pieceCid, bytes32 schemaHash, bytes32[] templateHashes, uint256[] prices, uint64 privacyBudget, uint64 sampleEpsilon) external payable returns (uint256);
        function datasetCount() external view returns (uint256);
        function datasetOwner(uint256 datasetId) external view returns (address);
        function stakeOf(uint256 datasetId) external view returns (uint256);
        function owner() external view returns (address);
        event DatasetRegistered(uint256 indexed datasetId, address indexed owner, bytes manifestCid, bytes pieceCid, bytes32 schemaHash, uint256 stake);
        error StakeTooLow(uint256 sent, uint256 minimum);
        error AlreadyInitialized();
        error NotDeployer();
    }
}

mod common;
use common::contract_wasm;

const SELLER: Address = Address::repeat_byte(0x5e);
const DEPLOYER: Address = Address::repeat_byte(0xde);
const MIN_STAKE: u64 = 1_000_000_000_000_000;

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000_000_000_000_000_u128)
}

/// A chain with the registry deployed, activated and initialized.
fn registry_chain(wasm: &[u8]) -> (Devchain, Address) {
    let mut chain = Devchain::new(ChainConfig::default());
    chain.set_balance(DEPLOYER, ether(100));
    chain.set_balance(SELLER, ether(100));
    let registry = chain.deploy(DEPLOYER, wasm).expect("deploy");
    let activation = chain.activate(DEPLOYER, registry).expect("activate");
    assert_eq!(activation.version, chain.config().stylus_version);
    assert!(activation.data_fee > U256::ZERO);
    let init = IDatasetRegistry::initializeCall {
        proofManager: Address::repeat_byte(0x11),
        queryMarket: Address::repeat_byte(0x22),
        minStake: U256::from(MIN_STAKE),
        withdrawCooldown: 3600,
        minPieceHeight: 2,
        deployNonce: common::deploy_nonce(DEPLOYER, registry),
    };
    // Between the deployment and the deployer's initialize, a stranger (here the seller) tries
    // to configure the registry its own way: the program is not its CREATE address.
    let front_run = IDatasetRegistry::initializeCall {
        proofManager: SELLER,
        queryMarket: SELLER,
        ..init.clone()
    };
    let outcome = chain.call(SELLER, registry, U256::ZERO, &front_run.abi_encode());
    assert_eq!(outcome.status, ExitStatus::Revert);
    assert!(IDatasetRegistry::NotDeployer::abi_decode(&outcome.return_data).is_ok());
    let outcome = chain.call(DEPLOYER, registry, U256::ZERO, &init.abi_encode());
    assert_eq!(outcome.status, ExitStatus::Success, "{outcome:?}");
    assert_eq!(outcome.logs.len(), 1, "Initialized event");
    (chain, registry)
}

/// A real v2 PieceCID (a registration refuses anything else).
fn piece_cid() -> Bytes {
    Bytes::from(
        datacloud_pdp::commp(&[7u8; 4096])
            .expect("a piece")
            .to_piece_cid_v2()
            .to_bytes(),
    )
}

fn register_call() -> IDatasetRegistry::registerDatasetCall {
    IDatasetRegistry::registerDatasetCall {
        manifestCid: Bytes::from_static(b"bafy-manifest"),
        pieceCid: piece_cid(),
        schemaHash: B256::repeat_byte(0x5c),
        templateHashes: vec![B256::repeat_byte(1), B256::repeat_byte(2)],
        prices: vec![U256::from(5), U256::from(7)],
        privacyBudget: 10_000_000,
        sampleEpsilon: 1_000_000,
    }
}

#[test]
fn registry_registers_a_dataset_with_stake_and_emits() {
    let wasm = contract_wasm("datacloud_dataset_registry");
    let (mut chain, registry) = registry_chain(&wasm);

    let stake = U256::from(MIN_STAKE) * U256::from(3);
    let before = chain.balance(SELLER);
    let outcome = chain.call(SELLER, registry, stake, &register_call().abi_encode());
    assert_eq!(outcome.status, ExitStatus::Success, "{outcome:?}");
    let id = IDatasetRegistry::registerDatasetCall::abi_decode_returns(&outcome.return_data)
        .expect("uint256");
    assert_eq!(id, U256::from(1));
    assert_eq!(chain.balance(SELLER), before - stake);
    assert_eq!(chain.balance(registry), stake);
    eprintln!("registerDataset gas used: {}", outcome.gas_used);
    assert!(
        outcome.gas_used > 21_000 && outcome.gas_used < 2_000_000,
        "{}",
        outcome.gas_used
    );

    let registered = outcome
        .logs
        .iter()
        .find_map(|log| IDatasetRegistry::DatasetRegistered::decode_log(log).ok())
        .expect("DatasetRegistered");
    assert_eq!(registered.datasetId, U256::from(1));
    assert_eq!(registered.owner, SELLER);
    assert_eq!(registered.stake, stake);
    assert_eq!(registered.manifestCid, Bytes::from_static(b"bafy-manifest"));
    assert_eq!(registered.address, registry);

    let owner = chain.static_call(
        SELLER,
        registry,
        &IDatasetRegistry::datasetOwnerCall { datasetId: id }.abi_encode(),
    );
    assert!(owner.is_success(), "{owner:?}");
    assert_eq!(
        IDatasetRegistry::datasetOwnerCall::abi_decode_returns(&owner.return_data).unwrap(),
        SELLER
    );
    let staked = chain.static_call(
        SELLER,
        registry,
        &IDatasetRegistry::stakeOfCall { datasetId: id }.abi_encode(),
    );
    assert_eq!(
        IDatasetRegistry::stakeOfCall::abi_decode_returns(&staked.return_data).unwrap(),
        stake
    );
}

#[test]
fn registry_custom_error_reverts_and_changes_nothing() {
    let wasm = contract_wasm("datacloud_dataset_registry");
    let (mut chain, registry) = registry_chain(&wasm);
    let seller_before = chain.balance(SELLER);
    let count_slot_probe = chain.static_call(
        SELLER,
        registry,
        &IDatasetRegistry::datasetCountCall {}.abi_encode(),
    );

    let too_little = U256::from(MIN_STAKE - 1);
    let outcome = chain.call(SELLER, registry, too_little, &register_call().abi_encode());
    assert_eq!(outcome.status, ExitStatus::Revert);
    let error =
        IDatasetRegistry::StakeTooLow::abi_decode(&outcome.return_data).expect("StakeTooLow");
    assert_eq!(error.sent, too_little);
    assert_eq!(error.minimum, U256::from(MIN_STAKE));
    assert!(outcome.logs.is_empty());
    assert_eq!(
        chain.balance(SELLER),
        seller_before,
        "value transfer undone"
    );
    assert_eq!(chain.balance(registry), U256::ZERO);
    let count = chain.static_call(
        SELLER,
        registry,
        &IDatasetRegistry::datasetCountCall {}.abi_encode(),
    );
    assert_eq!(count.return_data, count_slot_probe.return_data);

    // A second initialize reverts with AlreadyInitialized and leaves the owner unchanged.
    let again = IDatasetRegistry::initializeCall {
        proofManager: Address::repeat_byte(0x33),
        queryMarket: Address::repeat_byte(0x44),
        minStake: U256::ZERO,
        withdrawCooldown: 0,
        minPieceHeight: 0,
        deployNonce: 0,
    };
    let outcome = chain.call(SELLER, registry, U256::ZERO, &again.abi_encode());
    assert_eq!(outcome.status, ExitStatus::Revert);
    assert!(IDatasetRegistry::AlreadyInitialized::abi_decode(&outcome.return_data).is_ok());
    let owner = chain.static_call(
        SELLER,
        registry,
        &IDatasetRegistry::ownerCall {}.abi_encode(),
    );
    assert_eq!(
        IDatasetRegistry::ownerCall::abi_decode_returns(&owner.return_data).unwrap(),
        DEPLOYER
    );
}

#[test]
fn unactivated_program_cannot_be_called_and_activation_is_once() {
    let wasm = contract_wasm("datacloud_dataset_registry");
    let mut chain = Devchain::new(ChainConfig::default());
    chain.set_balance(DEPLOYER, ether(1));
    let registry = chain.deploy(DEPLOYER, &wasm).unwrap();
    assert!(chain.code(registry).starts_with(&[0xEF, 0xF0, 0x00, 0x00]));
    let outcome = chain.call(
        DEPLOYER,
        registry,
        U256::ZERO,
        &IDatasetRegistry::datasetCountCall {}.abi_encode(),
    );
    assert_eq!(
        outcome.status,
        ExitStatus::Halt(Halt::ProgramNotActivated(registry))
    );
    assert!(precompiles::ArbWasm::ProgramNotActivated::abi_decode(&outcome.return_data).is_ok());
    chain.activate(DEPLOYER, registry).unwrap();
    let err = chain.activate(DEPLOYER, registry).unwrap_err();
    assert!(err.to_string().contains("ProgramUpToDate"), "{err}");
}

/// Every contract deploys as stylus-tools would (fragments + root when over 24 KiB) and
/// activates under Nitro's default limits; a fragment on its own cannot be called.
#[test]
fn all_contracts_deploy_and_activate_with_nitro_limits() {
    for name in [
        "datacloud_dataset_registry",
        "datacloud_proof_manager",
        "datacloud_query_market",
        "datacloud_dispute_game",
    ] {
        let wasm = contract_wasm(name);
        let mut chain = Devchain::new(ChainConfig::default());
        chain.set_balance(DEPLOYER, ether(1));
        let address = chain.deploy(DEPLOYER, &wasm).unwrap();
        let root = chain.code(address);
        let fragmented = root.starts_with(&[0xEF, 0xF0, 0x02]);
        let activation = chain.activate(DEPLOYER, address);
        eprintln!(
            "{name}: {} bytes of WASM, {} fragments, activation {activation:?}",
            wasm.len(),
            if fragmented { (root.len() - 8) / 20 } else { 0 },
        );
        activation.unwrap();
        if fragmented {
            let fragment = Address::from_slice(&root[8..28]);
            let outcome = chain.call(DEPLOYER, fragment, U256::ZERO, &[]);
            assert_eq!(
                outcome.status,
                ExitStatus::Halt(Halt::CodeFragment(fragment))
            );
        }
        // The program answers (an unknown selector reverts rather than halting).
        let outcome = chain.call(DEPLOYER, address, U256::ZERO, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(outcome.status, ExitStatus::Revert, "{name}: {outcome:?}");
    }
}
