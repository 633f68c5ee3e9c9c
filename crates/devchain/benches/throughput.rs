//! Devchain throughput and gas figures, printed as a table:
//!
//! ```text
//! scripts/contracts build
//! cargo bench -p datacloud-devchain --bench throughput
//! ```
//!
//! - transaction throughput in process ([`Node::send_raw_transaction`]) and over JSON-RPC
//!   (`eth_sendRawTransaction`, one HTTP request per transaction from several concurrent
//!   clients): signed EIP-1559 simple transfers and `DatasetRegistry.setPrice` (a storage write
//!   in the real contract), automining in memory, automining to a redb data directory (one
//!   durable commit per block), and interval mining to a data directory;
//! - `eth_call` throughput (`DatasetRegistry.priceOf`), in process and over JSON-RPC;
//! - gas of `ProofManager.provePossession` (5 challenges on one piece of 2^25 leaves, 1 GiB)
//!   and of `QueryMarket.placeOrder`, `submitResult` and `deliverResult`.
//!
//! Transactions are signed before the clock starts: the figures measure the node (decoding,
//! sender recovery, validation, WASM execution, sealing, persistence), not the client's
//! signing. `DEVCHAIN_BENCH_TXS` sets the number of transactions per run (default 3000); a
//! filter argument (`-- eth_call`) runs one group of figures.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    providers::{Provider, ProviderBuilder},
    rpc::{client::RpcClient, types::TransactionRequest},
};
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolStruct as _, sol};
use datacloud_devchain::{
    Address, B256, Bytes, ChainConfig, ExitStatus, Node, NodeConfig, Rpc, RpcConfig, U256, serve,
};
use datacloud_pdp::{challenge_leaf_index, verify_inclusion, zero_subtree_root};

sol!("../../contracts/dataset-registry/abi/IDatasetRegistry.sol");
#[path = "../tests/common/mod.rs"]
mod common;

// `initialize` takes the ABI's seven parameters.
#[allow(clippy::too_many_arguments)]
mod proof_manager_abi {
    alloy_sol_types::sol!("../../contracts/proof-manager/abi/IProofManager.sol");
}
use proof_manager_abi::IProofManager;
// `OrderPlaced` has eight fields.
#[allow(clippy::too_many_arguments)]
mod query_market_abi {
    alloy_sol_types::sol!("../../contracts/query-market/abi/IQueryMarket.sol");
}
use query_market_abi::IQueryMarket;

const ETHER: u128 = 1_000_000_000_000_000_000;
const PIECE_HEIGHT: u8 = 25;
const CHALLENGES: u64 = 5;
const CHALLENGE_COUNT: usize = 5;
const CHALLENGE_FINALITY: u64 = 2;

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(ETHER)
}

fn contract_wasm(name: &str) -> Vec<u8> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        std::path::PathBuf::from,
    );
    let path = target
        .join("stylus/wasm32-unknown-unknown/contract")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}; build the contracts first with `scripts/contracts build`",
            path.display()
        )
    })
}

/// A signed EIP-1559 transaction, EIP-2718 encoded.
fn sign(
    signer: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    value: U256,
    input: Vec<u8>,
) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 300_000,
        max_fee_per_gas: 200_000_000,
        max_priority_fee_per_gas: 0,
        to: to.into(),
        value,
        input: input.into(),
        access_list: alloy_eips::eip2930::AccessList::default(),
    };
    let signature = signer
        .sign_hash_sync(&tx.signature_hash())
        .expect("signing with a local key");
    TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
}

fn template() -> B256 {
    alloy_primitives::keccak256("cohort_stats/1")
}

/// A real v2 PieceCID (a registration refuses anything else): a small piece of random-looking
/// bytes.
fn piece_cid() -> Bytes {
    Bytes::from(
        datacloud_pdp::commp(&[7u8; 4096])
            .expect("a piece")
            .to_piece_cid_v2()
            .to_bytes(),
    )
}

/// The v2 PieceCID of the all-zero piece of `PIECE_HEIGHT` the proof figures prove.
fn zero_piece_cid() -> Bytes {
    let root = zero_subtree_root(PIECE_HEIGHT).expect("height within limits");
    let size = datacloud_pdp::PieceSize::full(PIECE_HEIGHT).expect("a piece height");
    Bytes::from(
        datacloud_pdp::PieceCommitment::new(root, size)
            .to_piece_cid_v2()
            .to_bytes(),
    )
}

/// The registry deployed, activated and initialized (outside blocks), and one dataset
/// registered per dev account; returns the registry and the dev signers.
fn registry_node(config: NodeConfig) -> (Node, Address, Vec<PrivateKeySigner>) {
    let mut node = Node::open(config).expect("node");
    let signers: Vec<PrivateKeySigner> = node
        .dev_keys()
        .iter()
        .map(|(_, key)| PrivateKeySigner::from_bytes(key).expect("dev key"))
        .collect();
    let owner = signers[0].address();
    let chain = node.chain_mut();
    let registry = chain
        .deploy(owner, &contract_wasm("datacloud_dataset_registry"))
        .expect("deploy");
    chain.activate(owner, registry).expect("activate");
    let init = IDatasetRegistry::initializeCall {
        proof_manager: Address::repeat_byte(0x11),
        query_market: Address::repeat_byte(0x22),
        min_stake: ether(1),
        withdraw_cooldown: 3600,
        min_piece_height: 2,
        deploy_nonce: common::deploy_nonce(owner, registry),
    };
    let outcome = chain.call(owner, registry, U256::ZERO, &init.abi_encode());
    assert!(outcome.is_success(), "{outcome:?}");
    for signer in &signers {
        let register = IDatasetRegistry::registerDatasetCall {
            manifest_cid: Bytes::from_static(b"bafy-manifest"),
            piece_cid: piece_cid(),
            schema_hash: B256::repeat_byte(0x5c),
            template_hashes: vec![template()],
            prices: vec![U256::from(5)],
            privacy_budget: 1_000_000_000,
            sample_epsilon: 0,
        };
        let outcome = chain.call(signer.address(), registry, ether(1), &register.abi_encode());
        assert!(outcome.is_success(), "{outcome:?}");
    }
    node.flush().expect("flush");
    (node, registry, signers)
}

/// `count` signed `setPrice` transactions, spread over the dev accounts (account `i` owns
/// dataset `i + 1`), in submission order per account; `transfers` makes them simple
/// transfers instead.
fn signed_batch(
    node: &Node,
    registry: Address,
    signers: &[PrivateKeySigner],
    count: usize,
    transfers: bool,
) -> Vec<Vec<Vec<u8>>> {
    let chain_id = node.chain().config().chain_id;
    let per = count.div_ceil(signers.len());
    signers
        .iter()
        .enumerate()
        .map(|(i, signer)| {
            let start = node.chain().nonce(signer.address());
            (0..per as u64)
                .map(|n| {
                    if transfers {
                        sign(
                            signer,
                            chain_id,
                            start + n,
                            Address::repeat_byte(0x77),
                            U256::from(1),
                            Vec::new(),
                        )
                    } else {
                        let call = IDatasetRegistry::setPriceCall {
                            dataset_id: U256::from(i + 1),
                            template_hash: template(),
                            price: U256::from(start + n + 10),
                        };
                        sign(
                            signer,
                            chain_id,
                            start + n,
                            registry,
                            U256::ZERO,
                            call.abi_encode(),
                        )
                    }
                })
                .collect()
        })
        .collect()
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)] // a rate for display
    let count = count as f64;
    count / elapsed.as_secs_f64()
}

/// Submits every transaction in process (interleaving the accounts) and checks each
/// succeeded.
fn in_process(label: &str, config: NodeConfig, count: usize, transfers: bool) {
    let (mut node, registry, signers) = registry_node(config);
    let batch = signed_batch(&node, registry, &signers, count, transfers);
    let total: usize = batch.iter().map(Vec::len).sum();
    let start = Instant::now();
    for round in 0..batch[0].len() {
        for account in &batch {
            let mined = node
                .send_raw_transaction(&account[round])
                .expect("accepted");
            assert!(mined.success, "{:?}", mined.status);
        }
    }
    if node.block_time().is_some() {
        node.mine().expect("seal");
    }
    let elapsed = start.elapsed();
    println!(
        "{label:<58} {:>9.0} tx/s  ({total} txs in {elapsed:.2?}, head {})",
        per_second(total, elapsed),
        node.head().header.number
    );
}

/// Starts a server over `node` on its own runtime and threads (named `devchain`, as if it
/// were another process; the clients run on the bench's runtime); returns its URL and a stop
/// handle.
fn start(node: Node) -> (String, tokio::sync::oneshot::Sender<()>) {
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("devchain")
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            serve(listener, rpc, async {
                let _ = stopped.await;
            })
            .await
        })
    });
    (url, stop)
}

/// Sends every transaction with `eth_sendRawTransaction`, one client task per account: one
/// HTTP request per transaction, or JSON-RPC batches of `batch` requests.
async fn over_rpc(label: &str, count: usize, transfers: bool, batch: usize) {
    let (node, registry, signers) = registry_node(NodeConfig::default());
    let signed = signed_batch(&node, registry, &signers, count, transfers);
    let total: usize = signed.iter().map(Vec::len).sum();
    let (url, stop) = start(node);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for account in signed {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url.parse().expect("url"));
        let client = RpcClient::new_http(url.parse().expect("url"));
        tasks.push(tokio::spawn(async move {
            for chunk in account.chunks(batch) {
                if let [raw] = chunk {
                    // Automine: the transaction is mined when the call returns.
                    let _mined = provider
                        .send_raw_transaction(raw)
                        .await
                        .expect("eth_sendRawTransaction");
                    continue;
                }
                let mut requests = client.new_batch();
                let waiters: Vec<_> = chunk
                    .iter()
                    .map(|raw| {
                        requests
                            .add_call::<_, B256>(
                                "eth_sendRawTransaction",
                                &(Bytes::copy_from_slice(raw),),
                            )
                            .expect("serialize")
                    })
                    .collect();
                requests.send().await.expect("batch");
                for waiter in waiters {
                    waiter.await.expect("eth_sendRawTransaction in a batch");
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    let elapsed = start.elapsed();
    println!(
        "{label:<58} {:>9.0} tx/s  ({total} txs in {elapsed:.2?})",
        per_second(total, elapsed)
    );
    drop(stop);
}

fn price_of_call() -> Vec<u8> {
    IDatasetRegistry::priceOfCall {
        dataset_id: U256::from(1),
        template_hash: template(),
    }
    .abi_encode()
}

fn calls_in_process(count: usize) {
    let (mut node, registry, _) = registry_node(NodeConfig::default());
    let execution = datacloud_devchain::TxExecution {
        from: Address::ZERO,
        to: Some(registry),
        value: U256::ZERO,
        input: price_of_call().into(),
        gas_limit: 10_000_000,
        intrinsic_gas: 21_000,
    };
    let start = Instant::now();
    for _ in 0..count {
        let (outcome, _) = node.simulate(&execution);
        assert_eq!(
            outcome.return_data.as_ref(),
            U256::from(5).to_be_bytes::<32>()
        );
    }
    let elapsed = start.elapsed();
    println!(
        "{:<58} {:>9.0} call/s ({count} calls in {elapsed:.2?})",
        "eth_call priceOf, in process (Node::simulate)",
        per_second(count, elapsed)
    );
}

/// `eth_call`s from `clients` concurrent clients: one HTTP request per call, or JSON-RPC
/// batches of `batch` calls.
async fn calls_over_rpc(count: usize, clients: usize, batch: usize) {
    let (node, registry, _) = registry_node(NodeConfig::default());
    let (url, stop) = start(node);
    let request = TransactionRequest::default()
        .to(registry)
        .input(Bytes::from(price_of_call()).into());
    let rounds = count / clients / batch;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url.parse().expect("url"));
        let client = RpcClient::new_http(url.parse().expect("url"));
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                if batch == 1 {
                    let out = provider.call(request.clone()).await.expect("eth_call");
                    assert_eq!(out.len(), 32);
                    continue;
                }
                let mut requests = client.new_batch();
                let waiters: Vec<_> = (0..batch)
                    .map(|_| {
                        requests
                            .add_call::<_, Bytes>("eth_call", &(request.clone(), "latest"))
                            .expect("serialize")
                    })
                    .collect();
                requests.send().await.expect("batch");
                for waiter in waiters {
                    let out = waiter.await.expect("eth_call in a batch");
                    assert_eq!(out.len(), 32);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    let elapsed = start.elapsed();
    let total = rounds * batch * clients;
    println!(
        "{:<58} {:>9.0} call/s ({total} calls in {elapsed:.2?}, {clients} clients)",
        if batch == 1 {
            "eth_call priceOf, JSON-RPC over HTTP, 1 call/request".to_owned()
        } else {
            format!("eth_call priceOf, JSON-RPC over HTTP, batches of {batch}")
        },
        per_second(total, elapsed),
    );
    drop(stop);
}

/// The JSON-RPC body of an `eth_call` of `priceOf` on `registry`.
fn price_of_request(registry: Address) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_call",
        "params": [{ "to": registry, "data": Bytes::from(price_of_call()) }, "latest"],
    })
    .to_string()
}

/// `eth_call`s through the JSON-RPC handler on one thread, without HTTP: the request body parsed,
/// dispatched, executed and answered as the server does, so that, against the in-process and the
/// HTTP figures, it tells what JSON costs and what the transport costs.
fn calls_through_handler(count: usize) {
    let (node, registry, _) = registry_node(NodeConfig::default());
    let rpc = Rpc::new(node, RpcConfig::default());
    let body = price_of_request(registry);
    let expected = serde_json::json!(Bytes::from(U256::from(5).to_be_bytes_vec()));
    let start = Instant::now();
    for _ in 0..count {
        let answer = serde_json::to_vec(&rpc.handle_body(body.as_bytes())).expect("JSON answer");
        let answer: serde_json::Value = serde_json::from_slice(&answer).expect("JSON answer");
        assert_eq!(answer["result"], expected, "{answer}");
    }
    let elapsed = start.elapsed();
    println!(
        "{:<58} {:>9.0} call/s ({count} calls in {elapsed:.2?})",
        "eth_call priceOf, JSON-RPC handler in process (no HTTP)",
        per_second(count, elapsed)
    );
}

/// `eth_call`s from `clients` concurrent keep-alive HTTP/1.1 connections, one request per
/// call, each posting the same prepared JSON-RPC body and checking the answer's result. The
/// load generator is a bare hyper client so that the figure measures the node, not the
/// client library: alloy's provider (above) spends as much CPU per call as the node, and
/// both share the same two cores.
async fn calls_over_lean_http(count: usize, clients: usize) {
    use http_body_util::{BodyExt, Full};
    use hyper::{Request, header};

    let (node, registry, _) = registry_node(NodeConfig::default());
    let (url, stop) = start(node);
    let address = url.trim_start_matches("http://").to_owned();
    let body = price_of_request(registry);
    let expected = format!(
        "\"result\":\"{}\"",
        Bytes::from(U256::from(5).to_be_bytes_vec())
    );
    let rounds = count / clients;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(connection);
        let (body, expected) = (body.clone(), expected.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let request = Request::post("/")
                    .header(header::HOST, "127.0.0.1")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(hyper::body::Bytes::from(body.clone())))
                    .expect("request");
                sender.ready().await.expect("connection ready");
                let response = sender.send_request(request).await.expect("eth_call");
                assert!(response.status().is_success(), "{}", response.status());
                let answer = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                let answer = std::str::from_utf8(&answer).expect("UTF-8 answer");
                assert!(answer.contains(&expected), "{answer}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    let elapsed = start.elapsed();
    let total = rounds * clients;
    println!(
        "{:<58} {:>9.0} call/s ({total} calls in {elapsed:.2?}, {clients} connections)",
        "eth_call priceOf, JSON-RPC over HTTP, 1 call/request, lean",
        per_second(total, elapsed),
    );
    drop(stop);
}

/// Gas of `provePossession` on one all-zero piece of 2^25 leaves (1 GiB): every leaf is zero
/// and every sibling at height `h` is the zero-subtree root of height `h` (crates/pdp), so
/// the proofs are those of the real piece without building its tree. Then `placeOrder` on
/// the dataset the proof made healthy.
#[allow(clippy::too_many_lines)] // one setup journey, read top to bottom
fn proof_and_order_gas() {
    let mut node = Node::new(ChainConfig::default(), 3).expect("node");
    let accounts = node.accounts();
    let (owner, seller, buyer) = (accounts[0], accounts[1], accounts[2]);
    let chain = node.chain_mut();
    let mut deploy = |name: &str| {
        let address = chain.deploy(owner, &contract_wasm(name)).expect("deploy");
        chain.activate(owner, address).expect("activate");
        address
    };
    let registry = deploy("datacloud_dataset_registry");
    let proofs = deploy("datacloud_proof_manager");
    let game = deploy("datacloud_dispute_game");
    let market = deploy("datacloud_query_market");
    let call = |node: &mut Node, from: Address, to: Address, value: U256, data: Vec<u8>| {
        let outcome = node.chain_mut().call(from, to, value, &data);
        assert_eq!(outcome.status, ExitStatus::Success, "{outcome:?}");
        outcome
    };
    let init_registry = IDatasetRegistry::initializeCall {
        proof_manager: proofs,
        query_market: market,
        min_stake: ether(1),
        withdraw_cooldown: 86_400,
        min_piece_height: 2,
        deploy_nonce: common::deploy_nonce(owner, registry),
    };
    call(
        &mut node,
        owner,
        registry,
        U256::ZERO,
        init_registry.abi_encode(),
    );
    let init_proofs = IProofManager::initializeCall {
        registry,
        proving_period: 100,
        challenge_window: 20,
        challenge_finality: CHALLENGE_FINALITY,
        challenges_per_proof: CHALLENGES,
        fault_threshold: 3,
        slash_bps: 1000,
        reporter_bounty_bps: 500,
        deploy_nonce: common::deploy_nonce(owner, proofs),
    };
    call(
        &mut node,
        owner,
        proofs,
        U256::ZERO,
        init_proofs.abi_encode(),
    );
    let init_market = IQueryMarket::initializeCall {
        registry,
        proof_manager: proofs,
        worker_fee: ether(1),
        min_worker_bond: ether(5),
        claim_timeout: 3600,
        max_order_lifetime: 7 * 86_400,
        dispute_game: game,
        deploy_nonce: common::deploy_nonce(owner, market),
    };
    call(
        &mut node,
        owner,
        market,
        U256::ZERO,
        init_market.abi_encode(),
    );
    let register = IDatasetRegistry::registerDatasetCall {
        manifest_cid: Bytes::from_static(b"\x01\x71\x12\x20manifest-cid-bytes"),
        piece_cid: zero_piece_cid(),
        schema_hash: B256::repeat_byte(0x5c),
        template_hashes: vec![template()],
        prices: vec![ether(2)],
        privacy_budget: 10_000_000,
        sample_epsilon: 1_000_000,
    };
    let out = call(&mut node, seller, registry, ether(2), register.abi_encode());
    let dataset = U256::from_be_slice(&out.return_data);

    let root = zero_subtree_root(PIECE_HEIGHT).expect("height within limits");
    let create = IProofManager::createProofSetCall {
        dataset_id: dataset,
    };
    let out = call(&mut node, seller, proofs, U256::ZERO, create.abi_encode());
    let set = U256::from_be_slice(&out.return_data);
    let next = IProofManager::nextProvingPeriodCall { set_id: set };
    call(&mut node, seller, proofs, U256::ZERO, next.abi_encode());
    let epoch = node.chain().block_number() + CHALLENGE_FINALITY;
    for _ in 0..=CHALLENGE_FINALITY {
        node.mine().expect("mine");
    }
    let seed = node.chain().block_hash(epoch).expect("epoch block").0;
    let siblings: Vec<B256> = (0..PIECE_HEIGHT)
        .map(|h| B256::from(zero_subtree_root(h).expect("height within limits")))
        .collect();
    let raw_siblings: Vec<[u8; 32]> = siblings.iter().map(|s| s.0).collect();
    for challenge in 0..CHALLENGES {
        let leaf = challenge_leaf_index(&seed, set, challenge, 1 << PIECE_HEIGHT);
        assert!(verify_inclusion(&root, &[0; 32], leaf, &raw_siblings));
    }
    let prove = IProofManager::provePossessionCall {
        set_id: set,
        leaves: vec![B256::ZERO; CHALLENGE_COUNT],
        proofs: vec![siblings; CHALLENGE_COUNT],
    };
    let proved = call(&mut node, buyer, proofs, U256::ZERO, prove.abi_encode());
    println!(
        "{:<58} {:>9} gas  ({} bytes of calldata)",
        format!("gas: provePossession, {CHALLENGES} challenges, 2^{PIECE_HEIGHT}-leaf piece"),
        proved.gas_used,
        prove.abi_encode().len()
    );
    let deadline = node.chain().timestamp() + 86_400;
    let place = IQueryMarket::placeOrderCall {
        dataset_id: dataset,
        template_hash: template(),
        params_hash: B256::repeat_byte(0x42),
        buyer_key: Bytes::from_static(&[0x42; 32]),
        deadline,
        pbs_estimate: 0,
        epsilon: 1_000_000,
    };
    let placed = call(&mut node, buyer, market, ether(3), place.abi_encode());
    println!(
        "{:<58} {:>9} gas",
        "gas: placeOrder (price 2 ether + worker fee 1 ether)", placed.gas_used
    );
    let order = U256::from_be_slice(&placed.return_data);

    // A bonded worker claims the order and submits a result attested with its EIP-712
    // signature; the seller delivers, and the market settles on the healthy dataset.
    let worker = node.dev_keys()[0].1;
    let worker = PrivateKeySigner::from_bytes(&worker).expect("a dev key");
    let bond = IQueryMarket::registerWorkerCall {};
    call(&mut node, owner, market, ether(5), bond.abi_encode());
    let claim = IQueryMarket::claimOrderCall { order_id: order };
    call(&mut node, owner, market, U256::ZERO, claim.abi_encode());
    let result_hash = B256::repeat_byte(0x77);
    let terms = IQueryMarket::orderCall { order_id: order };
    let terms = call(&mut node, owner, market, U256::ZERO, terms.abi_encode());
    let terms =
        IQueryMarket::orderCall::abi_decode_returns(&terms.return_data).expect("order's terms");
    let digest = IQueryMarket::Attestation {
        orderId: order,
        datasetId: terms._0,
        manifestHash: terms._4,
        templateHash: terms._2,
        paramsHash: terms._3,
        resultHash: result_hash,
    }
    .eip712_signing_hash(&common::market_domain(
        node.chain().config().chain_id,
        market,
    ));
    let signature = worker
        .sign_hash_sync(&digest)
        .expect("signing the attestation");
    let sig = signature.as_bytes().to_vec();
    let submit = IQueryMarket::submitResultCall {
        order_id: order,
        result_cid: Bytes::from_static(b"\x01\x55\x12\x20encrypted-result-cid-bytes"),
        result_hash,
        signature: Bytes::from(sig),
    };
    let submitted = call(&mut node, owner, market, U256::ZERO, submit.abi_encode());
    println!(
        "{:<58} {:>9} gas",
        "gas: submitResult (EIP-712 attestation, ecrecover)", submitted.gas_used
    );
    // The seller signs what it delivers (EIP-712 over the order, the result and the CID).
    let seller_key = PrivateKeySigner::from_bytes(&node.dev_keys()[1].1).expect("a dev key");
    assert_eq!(seller_key.address(), seller);
    let delivery_cid = Bytes::from_static(b"\x01\x55\x12\x20sealed-table-cid-bytes");
    let digest = IQueryMarket::Delivery {
        orderId: order,
        resultHash: result_hash,
        deliveryCid: delivery_cid.clone(),
    }
    .eip712_signing_hash(&common::market_domain(
        node.chain().config().chain_id,
        market,
    ));
    let signature = seller_key
        .sign_hash_sync(&digest)
        .expect("signing the delivery");
    let deliver = IQueryMarket::deliverResultCall {
        order_id: order,
        delivery_cid,
        signature: Bytes::from(signature.as_bytes().to_vec()),
    };
    let delivered = call(&mut node, seller, market, U256::ZERO, deliver.abi_encode());
    println!(
        "{:<58} {:>9} gas",
        "gas: deliverResult (signature, health check, settlement)", delivered.gas_used
    );
}

/// The figure groups a filter argument selects: `cargo bench --bench throughput -- eth_call`
/// runs the groups whose name contains `eth_call`; no argument runs them all.
const GROUPS: [&str; 4] = ["transfer", "setPrice", "eth_call", "gas"];

fn main() {
    let count: usize = std::env::var("DEVCHAIN_BENCH_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    // `cargo bench` passes `--bench`; the first other argument is a filter.
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--"))
        .unwrap_or_default();
    let wanted = |group: &str| group.contains(filter.as_str());
    if !GROUPS.iter().any(|group| wanted(group)) {
        eprintln!("no figure group matches {filter:?}; the groups are {GROUPS:?}");
        std::process::exit(2);
    }
    println!(
        "devchain throughput ({} CPUs visible; the figures depend on the machine's load)",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if wanted("transfer") {
        in_process(
            "transfer, in process, automine, ephemeral",
            NodeConfig::default(),
            count,
            true,
        );
        runtime.block_on(over_rpc(
            "transfer, eth_sendRawTransaction over HTTP, automine",
            count,
            true,
            1,
        ));
    }
    if wanted("setPrice") {
        in_process(
            "setPrice, in process, automine, ephemeral",
            NodeConfig::default(),
            count,
            false,
        );
        let dir = tempfile::tempdir().expect("tempdir");
        in_process(
            "setPrice, in process, automine, data dir (1 commit/tx)",
            NodeConfig {
                data_dir: Some(dir.path().join("automine")),
                ..NodeConfig::default()
            },
            count.min(500),
            false,
        );
        in_process(
            "setPrice, in process, interval mining, data dir",
            NodeConfig {
                data_dir: Some(dir.path().join("interval")),
                block_time: Some(Duration::from_hours(1)),
                ..NodeConfig::default()
            },
            count,
            false,
        );
        runtime.block_on(over_rpc(
            "setPrice, eth_sendRawTransaction over HTTP, automine",
            count,
            false,
            1,
        ));
        runtime.block_on(over_rpc(
            "setPrice, eth_sendRawTransaction over HTTP, batches of 100",
            count,
            false,
            100,
        ));
    }
    if wanted("eth_call") {
        calls_in_process(count * 10);
        calls_through_handler(count * 10);
        runtime.block_on(calls_over_rpc(count * 4, 8, 1));
        // 8 connections leave the node waiting between requests; 32 keep it busy.
        runtime.block_on(calls_over_lean_http(count * 4, 8));
        runtime.block_on(calls_over_lean_http(count * 4, 32));
        runtime.block_on(calls_over_rpc(count * 10, 4, 100));
    }
    if wanted("gas") {
        proof_and_order_gas();
    }
}
