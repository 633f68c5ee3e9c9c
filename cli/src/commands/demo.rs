//! `datacloud demo`: the whole journey on one machine, with real components end to end.
//!
//! Bank A (seller) encrypts synthetic card transactions with TFHE, stores them content-addressed,
//! computes the dataset's Filecoin PieceCID, registers it on the chain at 0.05 per query and opens
//! a PDP proof set that it proves from the stored CAR. FinTech B (buyer) orders "AVG amount per
//! age_band, region = APAC, last 90 days" with a fresh HPKE delivery key. A worker claims the
//! order, fetches the dataset through the trustless gateway (verifying every block), evaluates the
//! query on ciphertexts, stores the encrypted result and submits it with its EIP-712 attestation.
//! Bank A decrypts only that aggregate, applies its output policy, seals the table to the buyer's
//! key and delivers it; the market settles. The buyer opens the table.
//!
//! The chain is the embedded devchain executing the contracts' real WASM (or `--rpc URL`); each
//! actor signs its own transactions with its own dev key. The prover and worker steps run in this
//! process, in journey order, rather than as the `seller run` / `worker run` daemons.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::{Signer, local::PrivateKeySigner};
use anyhow::{Context as _, Result, ensure};
use datacloud_agent_core::bindings::{IDatasetRegistry, IProofManager, IQueryMarket};
use datacloud_agent_core::{
    ChainClient, Config, ConfigOverrides, ContractsWasm, Deployments, deploy,
};
use datacloud_delivery::DeliveryKey;
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig};
use datacloud_fhe_query::layout::{EncryptedCube, LayoutOptions};
use datacloud_fhe_query::{
    EncryptedResult, EvaluationKey, Policy, ResultTable, SellerKey, decrypt, encrypt, evaluate,
    plan, reference, release, sql, synth, template,
};
use datacloud_pdp::{PieceProver, challenge_leaf_index};
use datacloud_store::gateway::{Client as GatewayClient, ClientConfig};
use datacloud_store::{Blockstore, DirectoryEntry, directory};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::GlobalArgs;

const ETHER: u128 = 1_000_000_000_000_000_000;
/// The journey query.
const JOURNEY_SQL: &str = "SELECT age_band, COUNT(*), AVG(amount) FROM transactions WHERE region = 'APAC' AND day > max_day - 90 GROUP BY age_band";

/// `datacloud demo` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Synthetic transactions Bank A onboards.
    #[arg(long, default_value_t = 2000)]
    rows: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Days of history the synthetic data spans (the aggregate cube holds one prefix per day).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Use this JSON-RPC endpoint (a devchain with the standard dev accounts) instead of
    /// starting one in this process.
    #[arg(long, value_name = "URL")]
    rpc: Option<String>,
    /// Where the demo keeps its stores, keys and CAR [default: a fresh temporary directory].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// What the demo reports.
#[derive(Debug, Default, Serialize)]
struct Report {
    rows: usize,
    dataset_id: String,
    manifest_cid: String,
    piece_cid: String,
    car_bytes: u64,
    proofs: Vec<ProofReport>,
    order_id: String,
    sql: String,
    plan: String,
    plan_pbs_estimate: u64,
    result_cid: String,
    delivery_cid: String,
    result: Option<ResultTable>,
    matches_plaintext: bool,
    /// What the market credited at settlement (withdrawn afterwards).
    payouts: Vec<Payout>,
    settlement: Vec<Balance>,
    steps: Vec<Step>,
    fraud_model: String,
}

#[derive(Debug, Serialize)]
struct ProofReport {
    proof_set: String,
    challenges: usize,
    block: u64,
    gas_used: u64,
    health: String,
}

#[derive(Debug, Serialize)]
struct Balance {
    who: String,
    address: String,
    before: String,
    after: String,
    change: String,
}

#[derive(Debug, Serialize)]
struct Payout {
    who: String,
    amount: String,
    wei: String,
}

#[derive(Debug, Serialize)]
struct Step {
    name: String,
    seconds: f64,
}

struct Actors {
    deployer: ChainClient,
    seller: ChainClient,
    buyer: ChainClient,
    worker: ChainClient,
    worker_signer: PrivateKeySigner,
}

/// Runs the journey and prints the report.
pub async fn run(global: &GlobalArgs, args: Args) -> Result<()> {
    ensure!(
        (16..=1_000_000).contains(&args.rows),
        "--rows must be between 16 and 1,000,000"
    );
    ensure!(
        (1..=3660).contains(&args.days),
        "--days must be between 1 and 3660"
    );
    let temporary;
    let data_dir = if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        dir.clone()
    } else {
        temporary = tempfile::tempdir().context("creating a temporary directory")?;
        temporary.path().to_path_buf()
    };
    let shutdown = CancellationToken::new();
    let mut report = Report {
        rows: args.rows,
        sql: JOURNEY_SQL.into(),
        ..Report::default()
    };
    let mut clock = Clock::new(!args.json);
    let outcome = journey(global, &args, &data_dir, &shutdown, &mut report, &mut clock).await;
    shutdown.cancel();
    outcome?;
    report.steps = clock.steps;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// Step timings, printed as they finish.
struct Clock {
    steps: Vec<Step>,
    started: Instant,
    verbose: bool,
}

impl Clock {
    fn new(verbose: bool) -> Self {
        Clock {
            steps: Vec::new(),
            started: Instant::now(),
            verbose,
        }
    }

    fn done(&mut self, name: &str, detail: &str) {
        let seconds = self.started.elapsed().as_secs_f64();
        if self.verbose {
            eprintln!("[{seconds:7.2} s] {name}: {detail}");
        }
        self.steps.push(Step {
            name: name.into(),
            seconds,
        });
        self.started = Instant::now();
    }
}

#[allow(clippy::too_many_lines)] // the journey, told in order
async fn journey(
    global: &GlobalArgs,
    args: &Args,
    data_dir: &Path,
    shutdown: &CancellationToken,
    report: &mut Report,
    clock: &mut Clock,
) -> Result<()> {
    // 1. The chain.
    let keys = dev_keys()?;
    let rpc_url = match &args.rpc {
        Some(url) => url.clone(),
        None => start_devchain(shutdown).await?,
    };
    let actors = actors(global, &rpc_url, data_dir, &keys).await?;
    clock.done("chain", &format!("JSON-RPC at {rpc_url}"));

    // 2. Contracts.
    let wasm = ContractsWasm {
        dataset_registry: datacloud_contract_artifacts::dataset_registry(),
        proof_manager: datacloud_contract_artifacts::proof_manager(),
        query_market: datacloud_contract_artifacts::query_market(),
    };
    let params = datacloud_agent_core::DeployParams::default();
    let deployments = deploy(&actors.deployer, &wasm, &params)
        .await
        .context("deploying the contracts")?;
    clock.done(
        "deploy",
        &format!(
            "registry {}, proofs {}, market {}",
            deployments.dataset_registry, deployments.proof_manager, deployments.query_market
        ),
    );

    // 3. Bank A's data, encrypted.
    let table = synth::generate_with_history(args.rows, args.seed, i64::from(args.days));
    let csv_path = data_dir.join("transactions.csv");
    table.write_csv(std::io::BufWriter::new(std::fs::File::create(&csv_path)?))?;
    clock.done(
        "synthesize",
        &format!("{} rows → {}", table.rows(), csv_path.display()),
    );
    // The seller's client key stays with the seller (mode 0600); a rerun in the same data dir
    // keeps using it.
    let key_path = data_dir.join("seller-client.key");
    let seller_key = if key_path.exists() {
        SellerKey::load(&key_path)?
    } else {
        let key = SellerKey::generate();
        key.save(&key_path)?;
        key
    };
    let bar = progress(table.rows() as u64, "encrypting", !args.json);
    let dataset = encrypt(&table, &seller_key, &LayoutOptions::default(), &|n| {
        bar.inc(n);
    });
    bar.finish_and_clear();
    clock.done(
        "keygen + encrypt",
        &format!("{} chunks and the aggregate cube", dataset.chunks.len()),
    );

    // 4. Content addressing and the Filecoin piece.
    let seller_store = Arc::new(Blockstore::open(data_dir.join("seller-store.redb"))?);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "manifest.json".into(),
            manifest(&dataset.header, &deployments)?,
        ),
        ("server-key.bin".into(), seller_key.server_key_bytes()?),
    ];
    if let Some(cube) = &dataset.cube {
        files.push(("cube.bin".into(), cube.to_bytes()?));
    }
    for (i, chunk) in dataset.chunks.iter().enumerate() {
        files.push((format!("chunk-{i:05}.bin"), chunk.to_bytes()?));
    }
    let root = store_directory(&seller_store, &files)?;
    let car_path = data_dir.join("dataset.car");
    seller_store
        .export_car(
            &root,
            std::io::BufWriter::new(std::fs::File::create(&car_path)?),
        )?
        .flush()?;
    let mut prover = PieceProver::open(&car_path).context("computing the piece commitment")?;
    let commitment = prover.commitment();
    let piece_cid = commitment.to_piece_cid_v2();
    report.manifest_cid = root.to_string();
    report.piece_cid = piece_cid.to_string();
    report.car_bytes = std::fs::metadata(&car_path)?.len();
    clock.done(
        "store",
        &format!(
            "dataset {root}, CAR {} bytes, PieceCID {piece_cid}",
            report.car_bytes
        ),
    );

    // 5. Register at 0.05 per query with a stake of 1, and open the proof set.
    let registry = IDatasetRegistry::new(deployments.dataset_registry, actors.seller.provider());
    let cohort = B256::from(template::template_hash("cohort_stats"));
    let fraud = B256::from(template::template_hash("fraud_model"));
    let price = U256::from(ETHER / 20);
    let register = registry
        .registerDataset(
            Bytes::from(root.to_bytes()),
            Bytes::from(piece_cid.to_bytes()),
            keccak256(table.schema.to_toml()),
            vec![cohort, fraud],
            vec![price, price],
        )
        .value(U256::from(ETHER))
        .from(actors.seller.address());
    let dataset_id = actors.seller.view("registerDataset", &register).await?;
    actors
        .seller
        .send("registerDataset", register.into_transaction_request())
        .await?;
    report.dataset_id = dataset_id.to_string();
    let proofs = IProofManager::new(deployments.proof_manager, actors.seller.provider());
    let create = proofs
        .createProofSet(
            dataset_id,
            vec![B256::from(commitment.root())],
            vec![commitment.size().leaf_count()],
        )
        .from(actors.seller.address());
    let set_id = actors.seller.view("createProofSet", &create).await?;
    actors
        .seller
        .send("createProofSet", create.into_transaction_request())
        .await?;
    clock.done(
        "register",
        &format!("dataset #{dataset_id} at 0.05 per query, proof set #{set_id}"),
    );

    // 6. The prover answers a proving period's challenges from the stored CAR.
    let proof = prove_period(&actors.seller, &proofs, set_id, &mut prover).await?;
    let health = health_name(
        actors
            .seller
            .view("health", &proofs.health(dataset_id))
            .await?,
    );
    report.proofs.push(ProofReport {
        health: health.clone(),
        ..proof
    });
    clock.done(
        "prove",
        &format!(
            "{} challenged leaves proven, health {health}",
            report.proofs[0].challenges
        ),
    );

    // 7. FinTech B orders the journey query.
    let market_address = deployments.query_market;
    let balances_before = balances(&actors, market_address).await?;
    let query = sql::parse(JOURNEY_SQL, &table.schema)?;
    query.validate(
        &table.schema,
        &["cohort_stats".into(), "fraud_model".into()],
    )?;
    let delivery_key = DeliveryKey::generate();
    let market = IQueryMarket::new(market_address, actors.buyer.provider());
    let fee = actors.buyer.view("workerFee", &market.workerFee()).await?;
    let head = actors
        .buyer
        .provider()
        .get_block(alloy::eips::BlockId::latest())
        .await?
        .context("no head block")?;
    let place = market
        .placeOrder(
            dataset_id,
            cohort,
            B256::from(query.params_hash()),
            Bytes::copy_from_slice(&delivery_key.public_bytes()),
            head.header.timestamp + 3600,
        )
        .value(price + fee)
        .from(actors.buyer.address());
    let order_id = actors.buyer.view("placeOrder", &place).await?;
    actors
        .buyer
        .send("placeOrder", place.into_transaction_request())
        .await?;
    report.order_id = order_id.to_string();
    clock.done("order", &format!("order #{order_id}: {JOURNEY_SQL}"));

    // 8. The worker: bond, claim, fetch through the gateway, evaluate, attest.
    let seller_gateway = start_gateway(seller_store.clone(), shutdown).await?;
    let worker_store = Arc::new(Blockstore::open(data_dir.join("worker-store.redb"))?);
    let worker_market = IQueryMarket::new(market_address, actors.worker.provider());
    let bond = actors
        .worker
        .view("minWorkerBond", &worker_market.minWorkerBond())
        .await?;
    actors
        .worker
        .send(
            "registerWorker",
            worker_market
                .registerWorker()
                .value(bond)
                .from(actors.worker.address())
                .into_transaction_request(),
        )
        .await?;
    actors
        .worker
        .send(
            "claimOrder",
            worker_market
                .claimOrder(order_id)
                .from(actors.worker.address())
                .into_transaction_request(),
        )
        .await?;
    let (on_chain_params, _) = order_hashes(&actors.worker, &worker_market, order_id).await?;
    ensure!(
        on_chain_params == B256::from(query.params_hash()),
        "the order's params hash is not the query's"
    );
    let gateway = GatewayClient::new([seller_gateway.as_str()], ClientConfig::default())?;
    let fetched = gateway
        .fetch_dag(&root, &worker_store, true)
        .await
        .context("fetching the dataset through the gateway")?;
    let entries = read_directory(&worker_store, &root)?;
    let header: datacloud_fhe_query::LayoutHeader = {
        let manifest: serde_json::Value =
            serde_json::from_slice(&read_entry(&worker_store, &entries, "manifest.json")?)?;
        serde_json::from_value(manifest["layout"].clone()).context("manifest layout")?
    };
    let eval_key =
        EvaluationKey::from_bytes(&read_entry(&worker_store, &entries, "server-key.bin")?)?;
    let chosen = plan(&query, &header)?;
    report.plan = chosen.kind.name().into();
    report.plan_pbs_estimate = chosen.pbs;
    let worker_dataset = datacloud_fhe_query::EncryptedDataset {
        cube: match (&header.cube, chosen.kind) {
            (Some(layout), datacloud_fhe_query::PlanKind::Cube) => Some(EncryptedCube::from_bytes(
                &read_entry(&worker_store, &entries, "cube.bin")?,
                layout,
            )?),
            _ => None,
        },
        chunks: if chosen.kind == datacloud_fhe_query::PlanKind::Cube {
            Vec::new()
        } else {
            (0..header.rows.div_ceil(u64::from(header.chunk_rows)))
                .map(|i| {
                    Ok(datacloud_fhe_query::layout::EncryptedChunk::from_bytes(
                        &read_entry(&worker_store, &entries, &format!("chunk-{i:05}.bin"))?,
                        &header,
                    )?)
                })
                .collect::<Result<Vec<_>>>()?
        },
        header,
    };
    clock.done(
        "worker fetch",
        &format!(
            "{} verified blocks ({} bytes) from {}; plan {}",
            fetched.blocks,
            fetched.bytes,
            seller_gateway,
            chosen.kind.name()
        ),
    );
    let bar = progress(worker_dataset.header.rows, "evaluating", !args.json);
    let result = tokio::task::block_in_place(|| {
        evaluate(&chosen, &worker_dataset, &eval_key, &|n| bar.inc(n))
    })?;
    bar.finish_and_clear();
    let result_bytes = result.to_bytes()?;
    let result_cid = store_file(&worker_store, &result_bytes)?;
    let result_hash = keccak256(&result_bytes);
    let digest = actors
        .worker
        .view(
            "attestationDigest",
            &worker_market.attestationDigest(order_id, result_hash),
        )
        .await?;
    let signature = actors.worker_signer.sign_hash(&digest).await?;
    let mut signature_bytes = Vec::with_capacity(65);
    signature_bytes.extend_from_slice(&signature.r().to_be_bytes::<32>());
    signature_bytes.extend_from_slice(&signature.s().to_be_bytes::<32>());
    signature_bytes.push(27 + u8::from(signature.v()));
    actors
        .worker
        .send(
            "submitResult",
            worker_market
                .submitResult(
                    order_id,
                    Bytes::from(result_cid.to_bytes()),
                    result_hash,
                    Bytes::from(signature_bytes),
                )
                .from(actors.worker.address())
                .into_transaction_request(),
        )
        .await?;
    report.result_cid = result_cid.to_string();
    clock.done(
        "worker evaluate + attest",
        &format!(
            "encrypted result {result_cid} ({} bytes) submitted",
            result_bytes.len()
        ),
    );

    // 9. Bank A decrypts only the aggregate, applies its policy and delivers to the buyer's key.
    let worker_gateway = start_gateway(worker_store.clone(), shutdown).await?;
    let seller_fetch = GatewayClient::new([worker_gateway.as_str()], ClientConfig::default())?;
    seller_fetch
        .fetch_dag(&result_cid, &seller_store, true)
        .await
        .context("fetching the result")?;
    let mut fetched_result = Vec::new();
    seller_store.read_file(&result_cid, &mut fetched_result)?;
    let (_, attested_hash) = order_hashes(
        &actors.seller,
        &IQueryMarket::new(market_address, actors.seller.provider()),
        order_id,
    )
    .await?;
    ensure!(
        keccak256(&fetched_result) == attested_hash,
        "the stored result is not the one the worker attested"
    );
    let seller_plan = plan(&query, &dataset.header)?;
    let encrypted = EncryptedResult::from_bytes(&fetched_result, &seller_plan)?;
    let aggregates = decrypt(&encrypted, &seller_key);
    report.matches_plaintext = aggregates == reference(&table, &seller_plan.bound, &dataset.header);
    let released = release(
        &aggregates,
        &seller_plan,
        &dataset.header,
        &Policy::default(),
        None,
        &mut rand::rng(),
    )?;
    let buyer_key = IQueryMarket::new(market_address, actors.seller.provider());
    let buyer_public = actors
        .seller
        .view("buyerKey", &buyer_key.buyerKey(order_id))
        .await?;
    let envelope = datacloud_delivery::seal(
        &buyer_public,
        &order_id.to_be_bytes::<32>(),
        &serde_json::to_vec(&released)?,
    )?;
    let delivery_cid = store_file(&seller_store, &envelope)?;
    actors
        .seller
        .send(
            "deliverResult",
            buyer_key
                .deliverResult(order_id, Bytes::from(delivery_cid.to_bytes()))
                .from(actors.seller.address())
                .into_transaction_request(),
        )
        .await?;
    report.delivery_cid = delivery_cid.to_string();
    let status = actors
        .seller
        .view("order", &buyer_key.order(order_id))
        .await?
        ._9;
    ensure!(status == 4, "the order did not settle (status {status})");
    clock.done(
        "seller decrypt + deliver",
        &format!("table sealed to the buyer ({delivery_cid}); order settled"),
    );

    // 10. FinTech B opens the table.
    let buyer_store = Arc::new(Blockstore::open(data_dir.join("buyer-store.redb"))?);
    GatewayClient::new([seller_gateway.as_str()], ClientConfig::default())?
        .fetch_dag(&delivery_cid, &buyer_store, true)
        .await?;
    let mut sealed = Vec::new();
    buyer_store.read_file(&delivery_cid, &mut sealed)?;
    let table_out: ResultTable =
        serde_json::from_slice(&delivery_key.open(&order_id.to_be_bytes::<32>(), &sealed)?)?;
    report.result = Some(table_out);
    for (who, client) in [
        ("Bank A (seller)", &actors.seller),
        ("worker", &actors.worker),
    ] {
        let market = IQueryMarket::new(market_address, client.provider());
        let owed = client
            .view("payoutOf", &market.payoutOf(client.address()))
            .await?;
        report.payouts.push(Payout {
            who: who.into(),
            amount: tokens(owed),
            wei: owed.to_string(),
        });
        client
            .send(
                "withdraw",
                market
                    .withdraw()
                    .from(client.address())
                    .into_transaction_request(),
            )
            .await?;
    }
    let balances_after = balances(&actors, market_address).await?;
    report.settlement = settlement(&balances_before, &balances_after);
    report.fraud_model = "not yet available: the fraud_model template is registered but not implemented by the query engine".into();
    clock.done(
        "buyer open + withdrawals",
        "table opened with the delivery key; seller and worker withdrew",
    );
    Ok(())
}

/// The standard development accounts (as the devchain funds them).
fn dev_keys() -> Result<Vec<(Address, B256)>> {
    Ok(Node::new(ChainConfig::default(), 4)?.dev_keys())
}

async fn start_devchain(shutdown: &CancellationToken) -> Result<String> {
    let node = Node::new(ChainConfig::default(), 10)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) =
            datacloud_devchain::serve(listener, rpc, async move { stop.cancelled().await }).await
        {
            tracing::error!("devchain stopped: {e}");
        }
    });
    Ok(format!("http://{address}"))
}

async fn start_gateway(store: Arc<Blockstore>, shutdown: &CancellationToken) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) =
            datacloud_store::gateway::serve(listener, store, async move { stop.cancelled().await })
                .await
        {
            tracing::error!("gateway stopped: {e}");
        }
    });
    Ok(format!("http://{address}"))
}

async fn actors(
    global: &GlobalArgs,
    rpc_url: &str,
    data_dir: &Path,
    keys: &[(Address, B256)],
) -> Result<Actors> {
    let client = |i: usize| {
        let overrides = ConfigOverrides {
            rpc_url: Some(rpc_url.into()),
            private_key: Some(keys[i].1.to_string()),
            data_dir: Some(data_dir.join(format!("agent-{i}"))),
            ..ConfigOverrides::default()
        };
        async move {
            let config = Config::load(global.config.as_deref(), &overrides)?;
            ChainClient::connect(&config)
                .await
                .with_context(|| format!("connecting to {rpc_url}"))
        }
    };
    Ok(Actors {
        deployer: client(0).await?,
        seller: client(1).await?,
        buyer: client(2).await?,
        worker: client(3).await?,
        worker_signer: PrivateKeySigner::from_bytes(&keys[3].1)?,
    })
}

/// The public manifest: schema, layout (widths, day coverage, cube), templates and provenance.
fn manifest(
    header: &datacloud_fhe_query::LayoutHeader,
    deployments: &Deployments,
) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec_pretty(&serde_json::json!({
        "name": "Bank A card transactions (synthetic)",
        "description": "Card transactions with age band, region, merchant category, channel and fraud label",
        "layout": header,
        "templates": ["cohort_stats", "fraud_model"],
        "encryption": "TFHE-rs integer radix, PARAM_MESSAGE_2_CARRY_2_KS_PBS (128-bit), seeded compressed ciphertexts",
        "provenance": { "generator": "datacloud synth", "chain_id": deployments.chain_id },
    }))?)
}

fn store_file(store: &Blockstore, bytes: &[u8]) -> Result<cid::Cid> {
    Ok(store
        .import_file(bytes, datacloud_store::DEFAULT_CHUNK_SIZE, true)?
        .root)
}

fn store_directory(store: &Blockstore, files: &[(String, Vec<u8>)]) -> Result<cid::Cid> {
    let mut entries = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let file =
            store.import_file(bytes.as_slice(), datacloud_store::DEFAULT_CHUNK_SIZE, false)?;
        entries.push(DirectoryEntry {
            name: name.clone(),
            cid: file.root,
            dag_size: file.dag_size,
        });
    }
    let (block, _) = directory(&entries)?;
    store.put(&block)?;
    store.pin(block.cid())?;
    Ok(*block.cid())
}

fn read_directory(store: &Blockstore, root: &cid::Cid) -> Result<Vec<(String, cid::Cid)>> {
    let block = store
        .get(root)?
        .context("the dataset root is not in the store")?;
    let node = datacloud_store::unixfs::decode_dag_pb(block.data())?;
    Ok(node
        .links
        .iter()
        .map(|l| {
            (
                String::from_utf8_lossy(l.name.unwrap_or_default()).into_owned(),
                l.cid,
            )
        })
        .collect())
}

fn read_entry(store: &Blockstore, entries: &[(String, cid::Cid)], name: &str) -> Result<Vec<u8>> {
    let (_, cid) = entries
        .iter()
        .find(|(n, _)| n == name)
        .with_context(|| format!("the dataset has no {name}"))?;
    let mut out = Vec::new();
    store.read_file(cid, &mut out)?;
    Ok(out)
}

/// Opens a proving period, waits out the challenge finality, and proves it.
async fn prove_period<P: Provider>(
    seller: &ChainClient,
    proofs: &IProofManager::IProofManagerInstance<P>,
    set_id: U256,
    prover: &mut PieceProver<std::fs::File>,
) -> Result<ProofReport> {
    seller
        .send(
            "nextProvingPeriod",
            proofs
                .nextProvingPeriod(set_id)
                .from(seller.address())
                .into_transaction_request(),
        )
        .await?;
    let set = seller.view("proofSet", &proofs.proofSet(set_id)).await?;
    let epoch = set._3;
    // The challenge seed is the epoch block's hash: mine past it (on the devchain; a live chain
    // gets there by itself).
    while seller.block_number().await? <= epoch {
        let _: String = seller
            .provider()
            .raw_request("evm_mine".into(), ())
            .await
            .context("evm_mine")?;
    }
    let block = seller
        .provider()
        .get_block(epoch.into())
        .await?
        .context("the epoch block")?;
    let seed = block.header.hash.0;
    let challenges = usize::try_from(
        seller
            .view("challengesPerProof", &proofs.challengesPerProof())
            .await?,
    )?;
    let leaves_total = seller
        .view("challengeRange", &proofs.challengeRange(set_id))
        .await?;
    let mut leaves = Vec::with_capacity(challenges);
    let mut paths = Vec::with_capacity(challenges);
    for i in 0..challenges as u64 {
        let leaf = challenge_leaf_index(&seed, set_id, i, leaves_total);
        let proof = prover.proof(leaf)?;
        leaves.push(B256::from(proof.leaf));
        paths.push(
            proof
                .siblings
                .into_iter()
                .map(B256::from)
                .collect::<Vec<_>>(),
        );
    }
    let receipt = seller
        .send(
            "provePossession",
            proofs
                .provePossession(set_id, leaves, paths)
                .from(seller.address())
                .into_transaction_request(),
        )
        .await?;
    Ok(ProofReport {
        proof_set: set_id.to_string(),
        challenges,
        block: receipt.block_number.unwrap_or_default(),
        gas_used: receipt.gas_used,
        health: String::new(),
    })
}

fn health_name(health: u8) -> String {
    match health {
        0 => "None",
        1 => "Healthy",
        2 => "Degraded",
        3 => "Failed",
        _ => "unknown",
    }
    .into()
}

/// The order's params hash and the attested result hash.
async fn order_hashes<P: Provider>(
    client: &ChainClient,
    market: &IQueryMarket::IQueryMarketInstance<P>,
    order: U256,
) -> Result<(B256, B256)> {
    let o = client.view("order", &market.order(order)).await?;
    let work = client.view("orderWork", &market.orderWork(order)).await?;
    Ok((o._3, work._3))
}

async fn balances(actors: &Actors, _market: Address) -> Result<Vec<(String, Address, U256)>> {
    let mut out = Vec::new();
    for (who, client) in [
        ("Bank A (seller)", &actors.seller),
        ("FinTech B (buyer)", &actors.buyer),
        ("worker", &actors.worker),
    ] {
        out.push((
            who.to_string(),
            client.address(),
            client.provider().get_balance(client.address()).await?,
        ));
    }
    Ok(out)
}

fn settlement(
    before: &[(String, Address, U256)],
    after: &[(String, Address, U256)],
) -> Vec<Balance> {
    before
        .iter()
        .zip(after)
        .map(|((who, address, b), (_, _, a))| Balance {
            who: who.clone(),
            address: address.to_string(),
            before: tokens(*b),
            after: tokens(*a),
            change: if a >= b {
                format!("+{}", tokens(*a - *b))
            } else {
                format!("-{}", tokens(*b - *a))
            },
        })
        .collect()
}

/// Whole tokens with 6 decimals (18-decimal native token, shown as FIL on the devchain).
fn tokens(wei: U256) -> String {
    let micro = wei / U256::from(1_000_000_000_000u64);
    let micro = u128::try_from(micro).unwrap_or(u128::MAX);
    format!("{}.{:06} FIL", micro / 1_000_000, micro % 1_000_000)
}

fn progress(len: u64, message: &'static str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} rows ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nDataCloud demo — {} synthetic transactions of Bank A\n",
        report.rows
    );
    let _ = writeln!(
        s,
        "dataset #{}  manifest {}  ",
        report.dataset_id, report.manifest_cid
    );
    let _ = writeln!(
        s,
        "piece {} ({} bytes of CAR)",
        report.piece_cid, report.car_bytes
    );
    for p in &report.proofs {
        let _ = writeln!(
            s,
            "PDP: proof set #{} proven in block {} ({} challenges, {} gas), health {}",
            p.proof_set, p.block, p.challenges, p.gas_used, p.health
        );
    }
    let _ = writeln!(s, "\norder #{}: {}", report.order_id, report.sql);
    let _ = writeln!(
        s,
        "plan {} (~{} PBS); result {}; delivery {}\n",
        report.plan, report.plan_pbs_estimate, report.result_cid, report.delivery_cid
    );
    if let Some(table) = &report.result {
        let _ = writeln!(s, "{}", table.render());
    }
    let _ = writeln!(
        s,
        "decrypted aggregates equal the plaintext computation: {}\n",
        if report.matches_plaintext {
            "yes"
        } else {
            "NO"
        }
    );
    let _ = writeln!(s, "fraud_model: {}\n", report.fraud_model);
    let _ = writeln!(s, "settlement: the market paid");
    for p in &report.payouts {
        let _ = writeln!(s, "  {:<18} {}", p.who, p.amount);
    }
    let _ = writeln!(
        s,
        "native balances from the order to the withdrawals (gas and the worker's bond included):"
    );
    for b in &report.settlement {
        let _ = writeln!(
            s,
            "  {:<18} {}  {:>22} → {:>22}  ({})",
            b.who, b.address, b.before, b.after, b.change
        );
    }
    let _ = writeln!(s, "\nsteps:");
    for step in &report.steps {
        let _ = writeln!(s, "  {:<26} {:8.2} s", step.name, step.seconds);
    }
    let total: f64 = report.steps.iter().map(|x| x.seconds).sum();
    let _ = writeln!(s, "  {:<26} {total:8.2} s", "total");
    s
}
