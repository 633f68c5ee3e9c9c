//! agent-core against the real devchain served over real HTTP on 127.0.0.1:0, with the real
//! contract WASM from `datacloud-contract-artifacts`.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{
    primitives::{B256, Bytes, U256, keccak256},
    providers::Provider,
    rpc::types::Filter,
};
use datacloud_agent_core::{
    ActionJournal, ActionKey, AgentError, ChainClient, ChainError, ChainEvent, Config,
    ConfigOverrides, ContractEvent, ContractsWasm, Cursor, DeployParams, Deployments, Epsilon,
    EventFollower, EventHandler, FollowerConfig, Health, Order, OrderStatus, OrderWork,
    PrivacyBudget, ProofSet, Protocol, RetryPolicy,
    bindings::{IDatasetRegistry, IProofManager, IQueryMarket},
    deploy,
    follower::HandlerError,
    journal::ActionRecord,
    run,
};
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, serve};
use tokio_util::sync::CancellationToken;

const ETHER: u128 = 1_000_000_000_000_000_000;

/// A devchain serving JSON-RPC on a free port until dropped.
struct Devchain {
    url: String,
    /// The dev accounts' private keys, funded at genesis.
    keys: Vec<B256>,
    stop: CancellationToken,
}

impl Drop for Devchain {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn devchain() -> Devchain {
    let node = Node::new(ChainConfig::default(), 3).unwrap();
    let keys = node.dev_keys().into_iter().map(|(_, key)| key).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(serve(listener, rpc, async move { token.cancelled().await }));
    Devchain { url, keys, stop }
}

fn config(url: &str, data_dir: &Path) -> Config {
    let env = HashMap::from([("DATACLOUD_POLL_INTERVAL_MS".to_owned(), "20".to_owned())]);
    Config::load_from(
        None,
        &env,
        &ConfigOverrides {
            rpc_url: Some(url.to_owned()),
            data_dir: Some(data_dir.to_path_buf()),
            ..ConfigOverrides::default()
        },
    )
    .unwrap()
}

fn wasm() -> ContractsWasm<'static> {
    ContractsWasm {
        dataset_registry: datacloud_contract_artifacts::dataset_registry(),
        proof_manager: datacloud_contract_artifacts::proof_manager(),
        query_market: datacloud_contract_artifacts::query_market(),
        dispute_game: datacloud_contract_artifacts::dispute_game(),
    }
}

/// A client of the same chain signing with dev key `index`.
async fn client_with_key(chain: &Devchain, dir: &Path, index: usize) -> ChainClient {
    let env = HashMap::from([("DATACLOUD_POLL_INTERVAL_MS".to_owned(), "20".to_owned())]);
    let config = Config::load_from(
        None,
        &env,
        &ConfigOverrides {
            rpc_url: Some(chain.url.clone()),
            data_dir: Some(dir.to_path_buf()),
            private_key: Some(chain.keys[index].to_string()),
            ..ConfigOverrides::default()
        },
    )
    .unwrap();
    ChainClient::connect(&config).await.unwrap()
}

async fn deployed(chain: &Devchain, dir: &Path) -> (Config, ChainClient, Deployments) {
    let config = config(&chain.url, dir);
    let client = ChainClient::connect(&config).await.unwrap();
    let deployments = deploy(&client, &wasm(), &config.deploy).await.unwrap();
    (config, client, deployments)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_initializes_the_contracts_with_the_parameters() {
    let chain = devchain().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&chain.url, dir.path());
    config.deploy = DeployParams {
        proving_period: 600,
        claim_timeout: 600,
        min_stake: U256::from(3 * ETHER),
        min_piece_height: 12,
        ..DeployParams::default()
    };
    let client = ChainClient::connect(&config).await.unwrap();
    let d = deploy(&client, &wasm(), &config.deploy).await.unwrap();
    assert_eq!(d.chain_id, 412_346);
    assert!(d.deploy_block >= 1);
    let p = client.provider();
    let registry = IDatasetRegistry::new(d.dataset_registry, p);
    let proofs = IProofManager::new(d.proof_manager, p);
    let owner = client.view("owner", &registry.owner()).await.unwrap();
    assert_eq!(owner, client.address());
    assert_eq!(
        client.view("pm", &registry.proofManager()).await.unwrap(),
        d.proof_manager
    );
    assert_eq!(
        client.view("minStake", &registry.minStake()).await.unwrap(),
        U256::from(3 * ETHER)
    );
    assert_eq!(
        client
            .view("minPieceHeight", &registry.minPieceHeight())
            .await
            .unwrap(),
        12
    );
    assert_eq!(
        client.view("registry", &proofs.registry()).await.unwrap(),
        d.dataset_registry
    );
    assert_eq!(
        client
            .view("provingPeriod", &proofs.provingPeriod())
            .await
            .unwrap(),
        600
    );
    let market_config = Protocol::new(&client, &d).market_config().await.unwrap();
    assert_eq!(market_config.claim_timeout, 600);
    assert_eq!(market_config.worker_fee, DeployParams::default().worker_fee);
    assert_eq!(
        (
            market_config.registry,
            market_config.proof_manager,
            market_config.owner
        ),
        (d.dataset_registry, d.proof_manager, client.address())
    );
    assert_eq!(
        market_config.min_worker_bond,
        DeployParams::default().min_worker_bond
    );
    assert_eq!(
        market_config.max_order_lifetime,
        DeployParams::default().max_order_lifetime
    );

    // A revert is an error with the decoded custom error, and is not retried.
    let again = client
        .send(
            "initialize again",
            registry
                .initialize(d.proof_manager, d.query_market, U256::ZERO, 0, 2, 0)
                .into_transaction_request(),
        )
        .await
        .unwrap_err();
    let text = again.to_string();
    assert!(text.contains("AlreadyInitialized"), "{text}");

    // The deployments file round-trips.
    d.write(&config.deployments).unwrap();
    assert_eq!(Deployments::read(&config.deployments).unwrap(), d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_retried_then_reported_and_wrong_chains_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config(&format!("http://127.0.0.1:{port}"), dir.path());
    config.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    match ChainClient::connect(&config).await {
        Err(ChainError::Rpc { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected a connection error after 3 attempts, got {other:?}"),
    }

    let chain = devchain().await;
    let mut config = self::config(&chain.url, dir.path());
    config.chain_id = 1;
    match ChainClient::connect(&config).await {
        Err(ChainError::WrongChain { actual, .. }) => assert_eq!(actual, 412_346),
        other => panic!("expected WrongChain, got {other:?}"),
    }
}

/// Records every event; cancels `stop` once `stop_after` events were handled in this run.
struct Recorder {
    seen: Arc<Mutex<Vec<ChainEvent>>>,
    stop: CancellationToken,
    stop_after: usize,
    handled: usize,
}

impl EventHandler for Recorder {
    async fn handle(&mut self, event: &ChainEvent) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push(event.clone());
        self.handled += 1;
        if self.handled == self.stop_after {
            self.stop.cancel();
        }
        Ok(())
    }
}

async fn follow_until(
    client: &ChainClient,
    deployments: Deployments,
    cursor_path: &Path,
    stop_after: usize,
) -> (Vec<ChainEvent>, Cursor) {
    let mut follower = EventFollower::new(
        client.clone(),
        deployments,
        FollowerConfig {
            cursor_path: cursor_path.to_path_buf(),
            confirmations: 1,
            poll_interval: Duration::from_millis(20),
            max_block_range: 3,
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut recorder = Recorder {
        seen: seen.clone(),
        stop: stop.clone(),
        stop_after,
        handled: 0,
    };
    tokio::time::timeout(Duration::from_mins(1), follower.run(&mut recorder, &stop))
        .await
        .expect("follower did not reach its events in time")
        .unwrap();
    let events = seen.lock().unwrap().clone();
    (events, follower.cursor())
}

async fn mine(client: &ChainClient) {
    let _: String = client
        .provider()
        .raw_request("evm_mine".into(), ())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, read top to bottom
async fn follower_delivers_each_event_exactly_once_across_restarts() {
    let chain = devchain().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, client, d) = deployed(&chain, dir.path()).await;
    let registry = IDatasetRegistry::new(d.dataset_registry, client.provider());
    // One transaction, several logs in one block: DatasetRegistered, then per template
    // TemplateSet and PriceSet.
    client
        .send(
            "registerDataset",
            registry
                .registerDataset(
                    Bytes::from_static(b"\x01\x71\x12\x20manifest"),
                    Bytes::from(
                        datacloud_pdp::commp(&[7u8; 4096])
                            .unwrap()
                            .to_piece_cid_v2()
                            .to_bytes(),
                    ),
                    keccak256("schema"),
                    vec![keccak256("cohort_stats/1"), keccak256("fraud_score/1")],
                    vec![U256::from(ETHER / 20), U256::from(ETHER / 10)],
                    10 * Epsilon::SCALE,
                    0,
                )
                .value(U256::from(ETHER))
                .into_transaction_request(),
        )
        .await
        .unwrap();
    mine(&client).await; // one confirmation on top
    let cursor_path = config.data_dir.join("test.cursor.json");

    // Run 1 stops in the middle of the registerDataset block: the registry's and the proof
    // manager's Initialized (the market emits none), then 2 of that block's logs.
    let (first, cursor) = follow_until(&client, d, &cursor_path, 4).await;
    assert_eq!(first.len(), 4);
    assert!(matches!(
        first[2].event,
        ContractEvent::DatasetRegistry(
            IDatasetRegistry::IDatasetRegistryEvents::DatasetRegistered(_)
        )
    ));
    assert_eq!(first[3].block_number, first[2].block_number);
    assert_eq!(
        cursor,
        Cursor {
            block: first[3].block_number,
            log_index: first[3].log_index + 1
        }
    );

    // While no follower runs, more happens.
    let market = IQueryMarket::new(d.query_market, client.provider());
    client
        .send(
            "registerWorker",
            market
                .registerWorker()
                .value(U256::from(ETHER))
                .into_transaction_request(),
        )
        .await
        .unwrap();
    mine(&client).await;

    // Ground truth, read independently: every log of the three contracts.
    let head = client.block_number().await.unwrap();
    let all_logs = client
        .provider()
        .get_logs(
            &Filter::new()
                .address(vec![d.dataset_registry, d.proof_manager, d.query_market])
                .from_block(d.deploy_block)
                .to_block(head - 1),
        )
        .await
        .unwrap();
    let expected: Vec<(u64, u64, B256)> = all_logs
        .iter()
        .map(|log| {
            (
                log.block_number.unwrap(),
                log.log_index.unwrap(),
                log.topics()[0],
            )
        })
        .collect();
    // 2 Initialized, DatasetRegistered, PrivacyBudgetSet, 2 × (TemplateSet, PriceSet),
    // WorkerRegistered.
    assert_eq!(expected.len(), 9, "{expected:?}");

    // Run 2 resumes from the cursor file and stops after the rest.
    let rest = expected.len() - first.len();
    let (second, _) = follow_until(&client, d, &cursor_path, rest).await;
    let delivered: Vec<(u64, u64, B256)> = first
        .iter()
        .chain(&second)
        .map(|e| {
            let log = all_logs
                .iter()
                .find(|l| {
                    l.block_number == Some(e.block_number) && l.log_index == Some(e.log_index)
                })
                .expect("delivered an event the chain does not have");
            assert_eq!(
                ContractEvent::decode(d.kind_of(e.address).unwrap(), &log.inner).unwrap(),
                e.event
            );
            (e.block_number, e.log_index, log.topics()[0])
        })
        .collect();
    assert_eq!(
        delivered, expected,
        "each event exactly once, in chain order"
    );
    assert!(matches!(
        second.last().unwrap().event,
        ContractEvent::QueryMarket(IQueryMarket::IQueryMarketEvents::WorkerRegistered(_))
    ));

    // A third run has nothing left to deliver: it stays caught up until stopped.
    let mut follower = EventFollower::new(
        client.clone(),
        d,
        FollowerConfig {
            cursor_path: cursor_path.clone(),
            confirmations: 1,
            poll_interval: Duration::from_millis(20),
            max_block_range: 100,
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut recorder = Recorder {
        seen: seen.clone(),
        stop: stop.clone(),
        stop_after: usize::MAX,
        handled: 0,
    };
    // Polled until it reports itself caught up with the confirmed head: the condition, not a
    // wall-clock wait.
    while !follower.poll_once(&mut recorder, &stop).await.unwrap() {}
    assert!(
        seen.lock().unwrap().is_empty(),
        "re-delivered after a restart"
    );

    // A cursor written for another deployment is refused, not silently reused.
    let other = Deployments {
        deploy_block: d.deploy_block + 1,
        ..d
    };
    let err = EventFollower::new(
        client.clone(),
        other,
        FollowerConfig {
            cursor_path,
            confirmations: 0,
            poll_interval: Duration::from_millis(20),
            max_block_range: 100,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("another deployment"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_never_sends_a_second_transaction_for_an_action() {
    let chain = devchain().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, client, d) = deployed(&chain, dir.path()).await;
    let journal = ActionJournal::open(&config.data_dir.join("journal.redb")).unwrap();
    let market = IQueryMarket::new(d.query_market, client.provider());
    let register = || {
        market
            .registerWorker()
            .value(U256::from(ETHER))
            .into_transaction_request()
    };
    let nonce = || async {
        client
            .provider()
            .get_transaction_count(client.address())
            .await
            .unwrap()
    };

    let key = ActionKey::new(U256::from(7), "register-worker");
    let before = nonce().await;
    let first = journal.perform(&client, &key, register()).await.unwrap();
    assert!(first.success && !first.replayed);
    assert_eq!(nonce().await, before + 1);
    // A duplicate (a retry, a re-delivered event) sends nothing and reports the same outcome.
    let again = journal.perform(&client, &key, register()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.tx_hash, first.tx_hash);
    assert_eq!(nonce().await, before + 1);
    let bond = client
        .view("workerBond", &market.workerBond(client.address()))
        .await
        .unwrap();
    assert_eq!(bond, U256::from(ETHER), "bonded once, not twice");

    // A crash after recording the signed transaction but before broadcasting it: the next
    // perform sends exactly that transaction, not a newly signed one.
    let crashed = ActionKey::new(U256::from(8), "register-worker");
    let signed = {
        let held = client.send_lock().await;
        client.sign(&held, "pre-crash", register()).await.unwrap()
    };
    journal
        .put(&crashed, &ActionRecord::Signed(signed.clone()))
        .unwrap();
    // Reopen, as a restarted process would.
    drop(journal);
    let journal = ActionJournal::open(&config.data_dir.join("journal.redb")).unwrap();
    let resumed = journal
        .perform(&client, &crashed, register())
        .await
        .unwrap();
    assert_eq!(resumed.tx_hash, signed.hash);
    assert!(resumed.success);
    assert_eq!(nonce().await, before + 2);
    assert!(matches!(
        journal.get(&crashed).unwrap(),
        Some(ActionRecord::Done { success: true, .. })
    ));

    // A step name the journal cannot key is refused before anything is signed.
    let bad = ActionKey::new(U256::from(9), "Has Spaces");
    assert!(journal.perform(&client, &bad, register()).await.is_err());
    assert_eq!(nonce().await, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_follows_until_shutdown_and_needs_a_deployments_file() {
    let chain = devchain().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _client, d) = deployed(&chain, dir.path()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = |stop: &CancellationToken| Recorder {
        seen: seen.clone(),
        stop: stop.clone(),
        stop_after: 2,
        handled: 0,
    };

    let stop = CancellationToken::new();
    let err = run(config.clone(), "test", stop.clone(), |_| recorder(&stop))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Deployments(_)), "{err}");
    assert!(err.to_string().contains("datacloud deploy"), "{err}");

    d.write(&config.deployments).unwrap();
    let result = tokio::time::timeout(
        Duration::from_mins(1),
        run(config.clone(), "test", stop.clone(), |agent| {
            assert_eq!(agent.deployments, d);
            recorder(&stop)
        }),
    )
    .await
    .expect("the agent did not stop on shutdown");
    result.unwrap();
    // The two Initialized events, then shutdown between events; the cursor is on disk.
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(config.data_dir.join("test.cursor.json").is_file());
}

/// A real HTTP hop in front of the devchain that answers 503 to the first `eth_chainId` and
/// 502 to the first `eth_sendRawTransaction` *after* forwarding it: the transaction reaches
/// the chain, its answer is lost.
/// Returns its URL, its stop token and the counts of `eth_chainId` and
/// `eth_sendRawTransaction` requests it saw.
async fn lossy_proxy(
    upstream: String,
) -> (
    String,
    CancellationToken,
    Arc<std::sync::atomic::AtomicU32>,
    Arc<std::sync::atomic::AtomicU32>,
) {
    use axum::{
        Router,
        body::Bytes as Body,
        extract::State,
        http::{StatusCode, header},
        response::{IntoResponse, Response},
        routing::post,
    };
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Clone)]
    struct Proxy {
        upstream: String,
        http: alloy::transports::http::reqwest::Client,
        chain_ids: Arc<AtomicU32>,
        sends: Arc<AtomicU32>,
    }

    async fn forward(State(proxy): State<Proxy>, body: Body) -> Response {
        let text = String::from_utf8_lossy(&body).into_owned();
        if text.contains("eth_chainId") && proxy.chain_ids.fetch_add(1, Ordering::SeqCst) == 0 {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let answer = proxy
            .http
            .post(&proxy.upstream)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if text.contains("eth_sendRawTransaction")
            && proxy.sends.fetch_add(1, Ordering::SeqCst) == 0
        {
            return StatusCode::BAD_GATEWAY.into_response();
        }
        (
            [(header::CONTENT_TYPE, "application/json")],
            answer.to_vec(),
        )
            .into_response()
    }

    let proxy = Proxy {
        upstream,
        http: alloy::transports::http::reqwest::Client::new(),
        chain_ids: Arc::default(),
        sends: Arc::default(),
    };
    let (chain_ids, sends) = (proxy.chain_ids.clone(), proxy.sends.clone());
    let app = Router::new().route("/", post(forward)).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });
    (url, stop, chain_ids, sends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_a_lost_send_answer_sends_nothing_twice() {
    let chain = devchain().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, _proxy, chain_ids, sends) = lossy_proxy(chain.url.clone()).await;
    let mut config = config(&url, dir.path());
    config.retry.initial_backoff = Duration::from_millis(10);
    // The first eth_chainId gets a 503: connect retries and succeeds.
    let client = ChainClient::connect(&config).await.unwrap();
    assert_eq!(chain_ids.load(std::sync::atomic::Ordering::SeqCst), 2);
    let to = alloy::primitives::address!("00000000000000000000000000000000000000aa");
    let before = client
        .provider()
        .get_transaction_count(client.address())
        .await
        .unwrap();
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(to)
        .value(U256::from(12_345));
    // The first broadcast's answer is lost after the chain took it: the retry finds the
    // transaction already there, and nothing is sent twice.
    let receipt = client.send("transfer", tx).await.unwrap();
    assert!(receipt.status());
    assert_eq!(
        sends.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one lost answer, one retry"
    );
    assert_eq!(
        client
            .provider()
            .get_transaction_count(client.address())
            .await
            .unwrap(),
        before + 1
    );
    assert_eq!(
        client.provider().get_balance(to).await.unwrap(),
        U256::from(12_345)
    );
}

/// Every field of the typed view comes from the contract field of the same name: the dataset,
/// proof set, order and claim below are made with a distinct value in every field (fields of one
/// type included), so a reordered ABI tuple without a matching change to `protocol.rs` fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // register, prove, order, claim: each read back field by field
async fn the_typed_view_reads_each_field_from_its_namesake() {
    let chain = devchain().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, seller, d) = deployed(&chain, dir.path()).await;
    let buyer = client_with_key(&chain, dir.path(), 1).await;
    let worker = client_with_key(&chain, dir.path(), 2).await;
    let view = Protocol::new(&seller, &d);

    let piece_commitment = datacloud_pdp::commp(&[7u8; 4096]).unwrap();
    let (manifest, piece) = (
        Bytes::from_static(b"\x01\x71\x12\x20manifest"),
        Bytes::from(piece_commitment.to_piece_cid_v2().to_bytes()),
    );
    let template = keccak256("cohort_stats/1");
    let (price, stake) = (U256::from(ETHER / 20), U256::from(3 * ETHER));
    let registry = IDatasetRegistry::new(d.dataset_registry, seller.provider());
    seller
        .send(
            "registerDataset",
            registry
                .registerDataset(
                    manifest.clone(),
                    piece.clone(),
                    keccak256("schema"),
                    vec![template],
                    vec![price],
                    5 * Epsilon::SCALE,
                    Epsilon::SCALE / 2,
                )
                .value(stake)
                .into_transaction_request(),
        )
        .await
        .unwrap();
    let dataset_id = U256::from(1);
    let dataset = view.dataset(dataset_id).await.unwrap();
    let registered_at = dataset.registered_at;
    assert!(registered_at > 0);
    assert_eq!(
        dataset,
        datacloud_agent_core::Dataset {
            owner: seller.address(),
            manifest_cid: manifest,
            piece_cid: piece,
            schema_hash: keccak256("schema"),
            stake,
            active: true,
            registered_at,
            deactivated_at: 0,
        }
    );

    let proofs = IProofManager::new(d.proof_manager, seller.provider());
    seller
        .send(
            "createProofSet",
            proofs.createProofSet(dataset_id).into_transaction_request(),
        )
        .await
        .unwrap();
    let set_id = view.proof_set_of(dataset_id).await.unwrap().unwrap();
    let set = view.proof_set(set_id).await.unwrap();
    // The set is the registered piece: one piece of 2^height leaves.
    assert_eq!(
        (set.dataset_id, set.pieces, set.leaves, set.faults),
        (dataset_id, 1, piece_commitment.size().leaf_count(), 0),
        "{set:?}"
    );
    assert_eq!(
        set,
        ProofSet {
            challenge_epoch: set.challenge_epoch,
            deadline: set.deadline,
            ..set
        }
    );
    assert!(set.deadline > set.challenge_epoch, "{set:?}");
    assert_eq!(view.health(dataset_id).await.unwrap(), Health::Degraded);

    let market = IQueryMarket::new(d.query_market, buyer.provider());
    let fee = view.market_config().await.unwrap().worker_fee;
    let now = buyer
        .provider()
        .get_block(alloy::eips::BlockId::latest())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    let deadline = now + 7_200;
    let params = keccak256("params");
    buyer
        .send(
            "placeOrder",
            market
                .placeOrder(
                    dataset_id,
                    template,
                    params,
                    Bytes::from(vec![7u8; 32]),
                    deadline,
                    0,
                    Epsilon::SCALE / 4,
                )
                .value(price + fee)
                .into_transaction_request(),
        )
        .await
        .unwrap();
    let order_id = U256::from(1);
    let order = view.order(order_id).await.unwrap();
    assert_eq!(
        order,
        Order {
            dataset_id,
            seller: seller.address(),
            template_hash: template,
            params_hash: params,
            manifest_hash: order.manifest_hash,
            price,
            worker_fee: fee,
            escrow: price + fee,
            deadline,
            status: OrderStatus::Open,
            pbs_estimate: 0,
            epsilon: Epsilon(Epsilon::SCALE / 4),
        }
    );
    // Every field of the privacy budget under its name: the total, the sample statistics'
    // share, and the order's.
    assert_eq!(
        view.privacy_budget(dataset_id).await.unwrap(),
        PrivacyBudget {
            total: Epsilon(5 * Epsilon::SCALE),
            sample: Epsilon(Epsilon::SCALE / 2),
            orders: Epsilon(Epsilon::SCALE / 4),
        }
    );
    assert_ne!(order.manifest_hash, B256::ZERO);
    assert_ne!(order.manifest_hash, template);
    assert_ne!(order.manifest_hash, params);
    assert_ne!(price, fee, "distinct amounts, or a swap would go unseen");
    assert_eq!(
        view.order_work(order_id).await.unwrap(),
        OrderWork {
            worker: None,
            claimed_at: 0,
            result_cid: Bytes::new(),
            result_hash: B256::ZERO,
            delivery_cid: Bytes::new(),
        }
    );

    let market = IQueryMarket::new(d.query_market, worker.provider());
    let bond = view.market_config().await.unwrap().min_worker_bond;
    worker
        .send(
            "registerWorker",
            market
                .registerWorker()
                .value(bond)
                .into_transaction_request(),
        )
        .await
        .unwrap();
    worker
        .send(
            "claimOrder",
            market.claimOrder(order_id).into_transaction_request(),
        )
        .await
        .unwrap();
    let work = view.order_work(order_id).await.unwrap();
    assert_eq!(work.worker, Some(worker.address()));
    assert!(work.claimed_at >= now, "{work:?}");
    assert_eq!(
        view.order_status(order_id).await.unwrap(),
        OrderStatus::Claimed
    );
}
