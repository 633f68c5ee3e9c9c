//! A standard client against the JSON-RPC server: alloy (HTTP provider + local signer)
//! deploys the real `DatasetRegistry` WASM with a signed CREATE, activates it through ArbWasm
//! with a signed transaction, initializes it, registers a dataset with a stake, reads it back,
//! fetches the receipt and its log, and decodes a custom error from a reverting `eth_call`.
//!
//! Needs the contract WASM: run `scripts/contracts build` first.

mod common;

use std::sync::Arc;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::{Filter, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{SolError, SolEvent},
};
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, precompiles, program, serve};

// `registerDataset` takes the ABI's seven parameters (eight with the instance).
#[allow(clippy::too_many_arguments)]
mod registry_abi {
    use super::sol;

    sol! {
        #[sol(rpc)]
        interface IDatasetRegistry {
            function initialize(address proofManager, address queryMarket, uint256 minStake, uint64 withdrawCooldown, uint8 minPieceHeight, uint64 deployNonce) external;
            function registerDataset(bytes manifestCid, bytes pieceCid, bytes32 schemaHash, bytes32[] templateHashes, uint256[] prices, uint64 privacyBudget, uint64 sampleEpsilon) external payable returns (uint256);
            function datasetCount() external view returns (uint256);
            function datasetOwner(uint256 datasetId) external view returns (address);
            function stakeOf(uint256 datasetId) external view returns (uint256);
            event DatasetRegistered(uint256 indexed datasetId, address indexed owner, bytes manifestCid, bytes pieceCid, bytes32 schemaHash, uint256 stake);
            error StakeTooLow(uint256 sent, uint256 minimum);
        }

        #[sol(rpc)]
        interface ArbWasm {
            function activateProgram(address program) external payable returns (uint16 version, uint256 dataFee);
        }
    }
}
use registry_abi::{ArbWasm, IDatasetRegistry};

const MIN_STAKE: u64 = 1_000_000_000_000_000;

/// Deploys the registry with a signed CREATE whose init code is the stylus-tools prelude,
/// activates it through ArbWasm (overpaying: the excess is refunded) and initializes it.
/// A real v2 PieceCID (a registration refuses anything else).
fn piece_cid() -> Bytes {
    Bytes::from(
        datacloud_pdp::commp(&[7u8; 4096])
            .expect("a piece")
            .to_piece_cid_v2()
            .to_bytes(),
    )
}

async fn deploy_activate_initialize(provider: &impl Provider, wasm: &[u8]) -> Address {
    // A real signed CREATE whose init code is the stylus-tools prelude.
    let init = program::deployment_init_code(&program::wrap(wasm).expect("wrap"));
    let deploy = TransactionRequest::default().with_deploy_code(Bytes::from(init));
    let hash = *provider
        .send_transaction(deploy)
        .await
        .expect("deploy")
        .tx_hash();
    let receipt = provider
        .get_transaction_receipt(hash)
        .await
        .expect("receipt rpc")
        .expect("deploy receipt");
    assert!(receipt.status());
    let registry = receipt.contract_address.expect("contract address");
    let deployer = receipt.from;
    assert!(
        !provider
            .get_code_at(registry)
            .await
            .expect("code")
            .is_empty()
    );

    // Activation through ArbWasm, overpaying: the excess is refunded.
    let arb_wasm = ArbWasm::new(precompiles::ARB_WASM, provider);
    let activation = arb_wasm
        .activateProgram(registry)
        .value(U256::from(10_u64).pow(U256::from(18)))
        .send()
        .await
        .expect("activate")
        .tx_hash()
        .to_owned();
    let receipt = provider
        .get_transaction_receipt(activation)
        .await
        .expect("receipt rpc")
        .expect("activation receipt");
    assert!(receipt.status());

    let contract = IDatasetRegistry::new(registry, provider);
    let init = contract
        .initialize(
            Address::repeat_byte(0x11),
            Address::repeat_byte(0x22),
            U256::from(MIN_STAKE),
            3600,
            2,
            common::deploy_nonce(deployer, registry),
        )
        .send()
        .await
        .expect("initialize");
    assert!(
        provider
            .get_transaction_receipt(*init.tx_hash())
            .await
            .expect("receipt rpc")
            .expect("init receipt")
            .status()
    );

    registry
}

/// `StakeTooLow` comes back as code 3 with its bytes from both `eth_estimateGas` (a send)
/// and `eth_call`, and alloy decodes it.
async fn assert_custom_errors_decode(provider: &impl Provider, registry: Address, me: Address) {
    let contract = IDatasetRegistry::new(registry, provider);
    // Sending a reverting transaction fails at gas estimation with the decodable error.
    let err = contract
        .registerDataset(
            Bytes::from_static(b"m"),
            piece_cid(),
            B256::ZERO,
            vec![],
            vec![],
            10_000_000,
            0,
        )
        .value(U256::from(2))
        .send()
        .await
        .expect_err("estimateGas reverts");
    let data = err
        .as_revert_data()
        .expect("revert data from eth_estimateGas");
    let decoded = IDatasetRegistry::StakeTooLow::abi_decode(&data).expect("StakeTooLow");
    assert_eq!(decoded.sent, U256::from(2));

    // A custom error from eth_call arrives as code 3 with the revert bytes.
    let err = contract
        .registerDataset(
            Bytes::from_static(b"m"),
            piece_cid(),
            B256::ZERO,
            vec![],
            vec![],
            10_000_000,
            0,
        )
        .value(U256::from(1))
        .from(me)
        .call()
        .await
        .expect_err("stake too low");
    let data = err.as_revert_data().expect("revert data");
    let decoded = IDatasetRegistry::StakeTooLow::abi_decode(&data).expect("StakeTooLow");
    assert_eq!(decoded.sent, U256::from(1));
    assert_eq!(decoded.minimum, U256::from(MIN_STAKE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alloy_deploys_activates_and_calls_the_registry() {
    let wasm = common::contract_wasm("datacloud_dataset_registry");
    let node = Node::new(ChainConfig::default(), 10).expect("dev accounts");
    let (_, key) = node.dev_keys()[0];
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, rpc, async {
        let _ = stopped.await;
    }));

    let signer = PrivateKeySigner::from_bytes(&key).expect("dev key");
    let me = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(format!("http://{address}").parse().expect("url"));
    assert_eq!(provider.get_chain_id().await.expect("chain id"), 412_346);

    let registry = deploy_activate_initialize(&provider, &wasm).await;
    let contract = IDatasetRegistry::new(registry, &provider);

    let stake = U256::from(MIN_STAKE) * U256::from(3);
    let register = contract
        .registerDataset(
            Bytes::from_static(b"bafy-manifest"),
            piece_cid(),
            B256::repeat_byte(0x5c),
            vec![B256::repeat_byte(1)],
            vec![U256::from(5)],
            10_000_000,
            0,
        )
        .value(stake);
    let pending = register.send().await.expect("register");
    let receipt = provider
        .get_transaction_receipt(*pending.tx_hash())
        .await
        .expect("receipt rpc")
        .expect("register receipt");
    assert!(receipt.status());
    assert!(receipt.gas_used > 21_000);
    let logs = receipt.inner.logs();
    let registered = logs
        .iter()
        .find_map(|log| IDatasetRegistry::DatasetRegistered::decode_log(&log.inner).ok())
        .expect("DatasetRegistered in the receipt");
    assert_eq!(registered.datasetId, U256::from(1));
    assert_eq!(registered.owner, me);
    assert_eq!(registered.stake, stake);
    assert_eq!(logs[0].transaction_hash, Some(*pending.tx_hash()));
    assert_eq!(logs[0].block_number, receipt.block_number);

    // Read back through eth_call.
    assert_eq!(
        contract.datasetCount().call().await.expect("count"),
        U256::from(1)
    );
    assert_eq!(
        contract
            .datasetOwner(U256::from(1))
            .call()
            .await
            .expect("owner"),
        me
    );
    assert_eq!(
        contract.stakeOf(U256::from(1)).call().await.expect("stake"),
        stake
    );
    assert_eq!(
        provider.get_balance(registry).await.expect("balance"),
        stake
    );

    // The block holds the transaction and links to its parent.
    let number = receipt.block_number.expect("block number");
    let block = provider
        .get_block_by_number(number.into())
        .await
        .expect("block rpc")
        .expect("block");
    assert_eq!(Some(block.header.hash), receipt.block_hash);
    let parent = provider
        .get_block_by_number((number - 1).into())
        .await
        .expect("parent rpc")
        .expect("parent");
    assert_eq!(block.header.parent_hash, parent.header.hash);

    // The log is found again through eth_getLogs.
    let filter = Filter::new()
        .address(registry)
        .event_signature(IDatasetRegistry::DatasetRegistered::SIGNATURE_HASH)
        .from_block(0);
    let found = provider.get_logs(&filter).await.expect("eth_getLogs");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].transaction_hash, Some(*pending.tx_hash()));

    assert_custom_errors_decode(&provider, registry, me).await;

    let _ = stop.send(());
    server.await.expect("server task").expect("server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413() {
    let node = Node::new(ChainConfig::default(), 1).expect("dev accounts");
    let config = RpcConfig {
        max_body_bytes: 1024,
        ..RpcConfig::default()
    };
    let rpc = Arc::new(Rpc::new(node, config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, rpc, async {
        let _ = stopped.await;
    }));
    let status_line = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        let body = vec![b' '; 2048];
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .expect("headers");
        stream.write_all(&body).expect("body");
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .expect("status line");
        line
    })
    .await
    .expect("client");
    assert!(status_line.contains(" 413 "), "{status_line}");
    let _ = stop.send(());
    server.await.expect("server task").expect("server");
}
