//! `datacloud demo`: the whole journey on one machine, with real components end to end.
//!
//! Bank A (seller) encrypts synthetic card transactions with TFHE, stores them content-addressed,
//! computes the dataset's Filecoin PieceCID, registers it on the chain at 0.05 per query and opens
//! a PDP proof set that it proves from the stored CAR. FinTech B (buyer) orders "AVG amount per
//! age_band, region = APAC, last 90 days" with a fresh HPKE delivery key. A worker claims the
//! order, fetches the dataset through the trustless gateway (verifying every block), evaluates the
//! query on ciphertexts, stores the encrypted result and submits it with its EIP-712 attestation.
//! Bank A decrypts only that aggregate, applies its output policy, seals the table to the buyer's
//! key and delivers it; the market settles. The buyer opens the table, then orders a second
//! query: a naive-Bayes fraud model fitted from encrypted counts. Last, a dishonest worker
//! claims a third order and attests a result it never published: Bank A disputes, two honest
//! workers drawn by the market recompute the order, the cheater loses its bond, and the reopened
//! order completes through an honest worker.
//!
//! The chain is the embedded devchain executing the contracts' real WASM, sealing a block every
//! 200 ms (or `--rpc URL`, a devchain started with `--block-time`); each actor signs its own
//! transactions with its own dev key and keeps its own data directory. Bank A's daemon and the
//! worker daemon are the ones `datacloud seller run` and `datacloud worker run` start, running
//! here as tasks that follow the chain's events; FinTech B uses the `datacloud buyer` functions.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider as _;
use anyhow::{Context as _, Result, bail, ensure};
use datacloud_agent_core::bindings::IQueryMarket;
use datacloud_agent_core::progress::rows_bar;
use datacloud_agent_core::{
    ChainClient, Config, ConfigOverrides, ContractsWasm, Epsilon, OrderStatus, PrivacyBudget,
    Protocol, deploy,
};
use datacloud_buyer::{Buyer, Listing, OrderResult};
use datacloud_devchain::{ChainConfig, Node, NodeConfig, Rpc, RpcConfig};
use datacloud_fhe_query::{EncryptedResult, Passphrase, ResultTable, SellerKey, decrypt};
use datacloud_query::layout::LayoutOptions;
use datacloud_query::{plan, reference, sql, synth};
use datacloud_seller::{OnboardOptions, Seller, SellerNews, SellerOptions, onboard};
use datacloud_store::Blockstore;
use datacloud_store::gateway::GatewayConfig;
use datacloud_worker::{Worker, WorkerOptions};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::common::{WEI_PER_TOKEN, gateway_client, open_store, tokens};
use crate::GlobalArgs;

/// The journey query.
const JOURNEY_SQL: &str = "SELECT age_band, COUNT(*), AVG(amount) FROM transactions WHERE region = 'APAC' AND day > max_day - 90 GROUP BY age_band";
/// The third order, which a dishonest worker claims first (a cube read: cheap to recompute for
/// the dispute's two verifiers and the honest worker that completes it).
const DISPUTE_SQL: &str =
    "SELECT COUNT(*), AVG(amount) FROM transactions WHERE region = 'EMEA' AND day > max_day - 30";
/// The second order: a naive-Bayes fraud model over channel and region, from encrypted counts
/// (sums of the seller's precomputed label-masked indicators; ~10 PBS a row for the sums'
/// carries, so the demo names two features rather than all four: `--explain` shows the cost).
const FRAUD_SQL: &str = "SELECT FRAUD_MODEL(is_fraud, channel, region) FROM transactions";

/// `datacloud demo` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Synthetic transactions Bank A onboards.
    #[arg(long, default_value_t = 1000)]
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
    fraud_model: Option<SecondOrder>,
    dispute: Option<DisputeReport>,
    /// The dataset's privacy budget after the demo's orders (ε).
    privacy: Option<PrivacyReport>,
}

/// A dataset's privacy budget (ε), as the demo reports it.
#[derive(Debug, Serialize)]
struct PrivacyReport {
    /// `{total, sample, orders, left}` in ε.
    #[serde(flatten)]
    budget: PrivacyBudget,
    /// The ε each of the demo's orders spent (its noise).
    per_order: f64,
}

/// The disputed order.
#[derive(Debug, Serialize)]
struct DisputeReport {
    order_id: String,
    sql: String,
    cheater: String,
    /// The cheater's bond before and after.
    cheater_bond_before: String,
    cheater_bond_after: String,
    disputer: String,
    /// The verifiers drawn, in order.
    verifiers: Vec<String>,
    outcome: String,
    /// The honest worker whose result settled the order.
    completed_by: String,
    result: Option<ResultTable>,
}

/// The `fraud_model` order.
#[derive(Debug, Serialize)]
struct SecondOrder {
    order_id: String,
    sql: String,
    plan: String,
    plan_pbs_estimate: u64,
    result: Option<ResultTable>,
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
    let outcome = Box::pin(journey(
        global,
        &args,
        &data_dir,
        &shutdown,
        &mut report,
        &mut clock,
    ))
    .await;
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

    /// Steps timed elsewhere, with what they did; the clock restarts.
    fn record(&mut self, steps: &[(&str, f64)], detail: &str) {
        for (name, seconds) in steps {
            if self.verbose {
                eprintln!("[{seconds:7.2} s] {name}");
            }
            self.steps.push(Step {
                name: (*name).into(),
                seconds: *seconds,
            });
        }
        if self.verbose {
            eprintln!("            {detail}");
        }
        self.started = Instant::now();
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
    // 1. The chain: in this process with a block time (a chain that advances by itself, as a
    //    real one does: proving periods need blocks), or the given endpoint.
    let keys = dev_keys()?;
    let rpc_url = match &args.rpc {
        Some(url) => url.clone(),
        None => start_devchain(shutdown).await?,
    };
    let deployments_path = data_dir.join("deployments.json");
    let config_of = |i: usize, role: &str, gateways: Option<Vec<String>>| {
        Config::load(
            global.config.as_deref(),
            &ConfigOverrides {
                rpc_url: Some(rpc_url.clone()),
                private_key: Some(keys[i].1.to_string()),
                data_dir: Some(data_dir.join(role)),
                deployments: Some(deployments_path.clone()),
                gateways,
                poll_interval_ms: Some(50),
                ..ConfigOverrides::default()
            },
        )
    };
    let deployer = ChainClient::connect(&config_of(0, "deployer", None)?)
        .await
        .with_context(|| format!("connecting to {rpc_url}"))?;
    clock.done("chain", &format!("JSON-RPC at {rpc_url}"));

    // 2. Contracts.
    let wasm = ContractsWasm {
        dataset_registry: datacloud_contract_artifacts::dataset_registry(),
        proof_manager: datacloud_contract_artifacts::proof_manager(),
        query_market: datacloud_contract_artifacts::query_market(),
        dispute_game: datacloud_contract_artifacts::dispute_game(),
    };
    let deployments = deploy(
        &deployer,
        &wasm,
        &datacloud_agent_core::DeployParams::default(),
    )
    .await
    .context("deploying the contracts")?;
    deployments.write(&deployments_path)?;
    clock.done(
        "deploy",
        &format!(
            "registry {}, proofs {}, market {}",
            deployments.dataset_registry, deployments.proof_manager, deployments.query_market
        ),
    );

    // 3. Bank A's data.
    let table = synth::generate_with_history(args.rows, args.seed, i64::from(args.days));
    let csv_path = data_dir.join("transactions.csv");
    table.write_csv(std::io::BufWriter::new(std::fs::File::create(&csv_path)?))?;
    clock.done(
        "synthesize",
        &format!("{} rows → {}", table.rows(), csv_path.display()),
    );

    // 4. Bank A onboards: keys, encryption, package, CAR, PieceCID, registration, proof set.
    let seller_config = config_of(1, "seller", None)?;
    let seller_client = ChainClient::connect(&seller_config).await?;
    let seller_store = open_store(&seller_config, "seller")?;
    // The client key and the rows are sealed, as `seller onboard` seals them, under a passphrase
    // this run draws and forgets.
    let passphrase = {
        use rand::RngCore as _;
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        Passphrase::new(alloy::hex::encode(bytes))
    };
    let bar = rows_bar(table.rows() as u64, "encrypting", !args.json);
    let onboarded = onboard(
        &seller_client,
        &deployments,
        &seller_config.data_dir,
        &seller_store,
        &table,
        &OnboardOptions {
            name: "Bank A card transactions (synthetic)".into(),
            description: "Card transactions with age band, region, merchant category, channel and fraud label".into(),
            price: U256::from(WEI_PER_TOKEN / 20),
            templates: vec!["cohort_stats".into(), "fraud_model".into()],
            stake: U256::from(WEI_PER_TOKEN),
            source: "datacloud data synth".into(),
            layout: LayoutOptions::default(),
            passphrase: Some(passphrase.clone()),
            sample_epsilon: Some(1.0),
            privacy_budget: PRIVACY_BUDGET,
            min_cohort: 10,
        },
        &|n| bar.inc(n),
    )
    .await
    .context("onboarding Bank A's dataset")?;
    bar.finish_and_clear();
    let owned = onboarded.dataset.clone();
    let piece_prover = onboarded.prover;
    report.dataset_id = owned.dataset_id.to_string();
    report.manifest_cid.clone_from(&owned.manifest_cid);
    report.piece_cid.clone_from(&owned.piece_cid);
    report.car_bytes = onboarded.car_bytes;
    clock.record(
        &onboarded.steps,
        &format!(
            "dataset #{} at 0.05 per query: {} chunks, CAR {} bytes, PieceCID {}, proof set #{}",
            owned.dataset_id, onboarded.chunks, onboarded.car_bytes, owned.piece_cid, owned.set_id
        ),
    );

    // 5. The seller's node (gateway + block/put) and the two daemons.
    let node_url = start_node(seller_store.clone(), shutdown).await?;
    let gateways = Some(vec![node_url.clone()]);
    let seller_config = config_of(1, "seller", gateways.clone())?;
    let worker_config = config_of(3, "worker", gateways.clone())?;
    let buyer_config = config_of(2, "buyer", gateways)?;
    let (news_tx, mut news) = mpsc::unbounded_channel();
    let seller_gateways = gateway_client(&seller_config)?;
    let seller_store_for_agent = seller_store.clone();
    let set_id = owned.set_id;
    let seller_passphrase = passphrase.clone();
    let agents = TaskTracker::new();
    let stop_agents = shutdown.child_token();
    let stop = stop_agents.clone();
    agents.spawn(async move {
        datacloud_agent_core::run(seller_config, "seller", stop, move |agent| {
            let seller = Seller::new(
                agent,
                seller_store_for_agent,
                seller_gateways,
                SellerOptions {
                    tick: Duration::from_millis(100),
                    passphrase: Some(seller_passphrase),
                    ..SellerOptions::default()
                },
                Some(news_tx),
            );
            let proving = seller.clone();
            let stop = agent.shutdown.clone();
            agent.tasks.spawn(async move {
                proving.adopt_prover(set_id, piece_prover).await;
                proving.prove_forever(stop).await;
            });
            seller
        })
        .await
    });
    let worker_store = open_store(&worker_config, "worker")?;
    let worker_gateways = gateway_client(&worker_config)?;
    let worker_options = WorkerOptions {
        work_dir: worker_config.data_dir.join("worker-work"),
        progress: !args.json,
        retry: datacloud_agent_core::OrderRetry::default(),
    };
    {
        let agent = datacloud_agent_core::Agent::connect(
            worker_config.clone(),
            "worker",
            stop_agents.clone(),
        )
        .await?;
        Worker::new(
            &agent,
            worker_store.clone(),
            worker_gateways.clone(),
            worker_options.clone(),
        )
        .ensure_registered()
        .await
        .context("bonding the worker")?;
    }
    let honest = HonestWorker {
        config: worker_config,
        store: worker_store,
        gateways: worker_gateways,
        options: worker_options,
    };
    let worker_stop = stop_agents.child_token();
    let worker_task = honest.spawn(&agents, worker_stop.clone());
    agents.close();

    // 6. The prover answers the first proving period's challenges from the stored CAR.
    let proof = loop {
        tokio::select! {
            item = news.recv() => match item {
                Some(SellerNews::Proven(p)) => break p,
                Some(_) => {}
                None => bail!("the seller daemon stopped before proving"),
            },
            () = tokio::time::sleep(Duration::from_mins(2)) => bail!("no proof within 2 minutes"),
        }
    };
    let health = Protocol::new(&deployer, &deployments)
        .health(U256::from(owned.dataset_id))
        .await?;
    report.proofs.push(ProofReport {
        proof_set: proof.set_id.to_string(),
        challenges: proof.challenges,
        block: proof.block,
        gas_used: proof.gas_used,
        health: health.name().into(),
    });
    clock.done(
        "prove",
        &format!(
            "{} challenged leaves proven in block {}, health {health}",
            proof.challenges, proof.block
        ),
    );

    // 7. FinTech B browses and orders the journey query.
    let buyer = Buyer {
        client: ChainClient::connect(&buyer_config).await?,
        deployments,
        store: open_store(&buyer_config, "buyer")?,
        gateways: gateway_client(&buyer_config)?,
        config: buyer_config,
    };
    let actors = [
        ("Bank A (seller)", seller_client.clone()),
        ("FinTech B (buyer)", buyer.client.clone()),
        (
            "worker",
            ChainClient::connect(&config_of(3, "worker", None)?).await?,
        ),
    ];
    let balances_before = balances(&actors).await?;
    let listing = buyer.listing(owned.dataset_id).await?;
    let query = sql::parse(JOURNEY_SQL, &table.schema)?;
    let chosen = plan(&query, &owned.layout)?;
    report.plan = chosen.kind.name().into();
    report.plan_pbs_estimate = chosen.pbs;

    // 8–9. The worker claims, fetches, evaluates and attests; Bank A decrypts, polices and
    //      delivers. The demo watches the order move on chain.
    let (order_id, outcome) = buy(&buyer, &listing, &query, JOURNEY_SQL, clock, "").await?;
    report.order_id = order_id.to_string();
    report.result_cid = outcome.result_cid.clone().unwrap_or_default();
    report.delivery_cid = outcome.delivery_cid.clone().unwrap_or_default();
    report.result.clone_from(&outcome.table);
    // The demo also plays Bank A: decrypt the attested result once more and compare it with the
    // plaintext computation on the same rows.
    let result_cid: cid::Cid = report.result_cid.parse()?;
    let result_bytes = datacloud_package::read_file(&seller_store, &result_cid, 1 << 28)?;
    let encrypted = EncryptedResult::from_bytes(&result_bytes, &chosen)?;
    let aggregates = decrypt(
        &encrypted,
        &SellerKey::load_with(&owned.client_key, Some(&passphrase))?,
    );
    report.matches_plaintext = aggregates == reference(&table, &chosen.bound, &owned.layout);
    clock.done(
        "buyer open",
        &format!(
            "table opened with the delivery key ({})",
            report.delivery_cid
        ),
    );

    // 10. FinTech B's second order: the fraud model.
    let fraud = sql::parse(FRAUD_SQL, &table.schema)?;
    let fraud_plan = plan(&fraud, &owned.layout)?;
    let (order_id, outcome) =
        buy(&buyer, &listing, &fraud, FRAUD_SQL, clock, "fraud_model: ").await?;
    report.fraud_model = Some(SecondOrder {
        order_id: order_id.to_string(),
        sql: FRAUD_SQL.into(),
        plan: fraud_plan.kind.name().into(),
        plan_pbs_estimate: fraud_plan.pbs,
        result: outcome.table,
    });
    clock.done(
        "fraud_model: buyer open",
        "model opened with the delivery key",
    );

    // 11. Settlement: what the market credited, withdrawn.
    for (who, client) in [("Bank A (seller)", &actors[0].1), ("worker", &actors[2].1)] {
        let market = IQueryMarket::new(deployments.query_market, client.provider());
        let credited = client
            .view("payoutOf", &market.payoutOf(client.address()))
            .await?;
        report.payouts.push(Payout {
            who: who.into(),
            amount: tokens(credited),
            wei: credited.to_string(),
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
    let balances_after = balances(&actors).await?;
    report.settlement = settlement(&balances_before, &balances_after);
    clock.done("withdrawals", "seller and worker withdrew");

    // 12. A dishonest worker, a dispute, re-execution by two verifiers, an honest completion.
    worker_stop.cancel();
    let _ = worker_task.await;
    let second = HonestWorker {
        config: config_of(5, "worker-2", Some(vec![node_url.clone()]))?,
        store: open_store(&config_of(5, "worker-2", None)?, "worker-2")?,
        gateways: gateway_client(&config_of(5, "worker-2", Some(vec![node_url.clone()]))?)?,
        options: WorkerOptions {
            work_dir: data_dir.join("worker-2").join("worker-work"),
            progress: false,
            retry: datacloud_agent_core::OrderRetry::default(),
        },
    };
    let cheater = Cheater {
        client: ChainClient::connect(&config_of(4, "cheater", None)?).await?,
        signer: config_of(4, "cheater", None)?.signer(),
        gateways: gateway_client(&config_of(4, "cheater", Some(vec![node_url.clone()]))?)?,
    };
    report.dispute = Some(
        dispute(
            &buyer,
            &listing,
            &table.schema,
            &cheater,
            [&honest, &second],
            &agents,
            &stop_agents,
            clock,
        )
        .await
        .context("the dispute")?,
    );

    report.privacy = Some(PrivacyReport {
        budget: Protocol::new(&deployer, &deployments)
            .privacy_budget(U256::from(owned.dataset_id))
            .await?,
        per_order: ORDER_EPSILON,
    });

    stop_agents.cancel();
    agents.wait().await;
    Ok(())
}

/// A worker daemon's parts, to start (and restart) it.
#[derive(Clone)]
struct HonestWorker {
    config: Config,
    store: Arc<Blockstore>,
    gateways: datacloud_store::gateway::Client,
    options: WorkerOptions,
}

impl HonestWorker {
    fn spawn(
        &self,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<Result<(), datacloud_agent_core::AgentError>> {
        let me = self.clone();
        tasks.spawn(async move {
            datacloud_agent_core::run(me.config, "worker", stop, move |agent| {
                Worker::new(agent, me.store, me.gateways, me.options)
            })
            .await
        })
    }
}

/// A worker that claims orders and attests results it never computed.
struct Cheater {
    client: ChainClient,
    signer: alloy::signers::local::PrivateKeySigner,
    gateways: datacloud_store::gateway::Client,
}

/// Step 12: with no honest worker running, FinTech B orders [`DISPUTE_SQL`] and the cheater claims it,
/// publishes some bytes and attests the hash of others. Then the honest worker comes back and a
/// second one starts. Bank A's daemon finds the bytes do not hash to the attestation and disputes
/// with a bond; the market draws the two honest workers in turn, each recomputes the order and
/// answers with the same result; the cheater loses `minWorkerBond` and the order reopens; an
/// honest worker claims it, and it settles.
#[allow(clippy::too_many_arguments, clippy::too_many_lines)] // one story, told in order
async fn dispute(
    buyer: &Buyer,
    listing: &Listing,
    schema: &datacloud_query::schema::Schema,
    cheater: &Cheater,
    honest: [&HonestWorker; 2],
    agents: &TaskTracker,
    stop: &CancellationToken,
    clock: &mut Clock,
) -> Result<DisputeReport> {
    use alloy::signers::Signer as _;
    let deployments = &buyer.deployments;
    let view = Protocol::new(&buyer.client, deployments);
    let config = view.market_config().await?;
    let market = IQueryMarket::new(deployments.query_market, cheater.client.provider());
    let me = cheater.client.address();
    cheater
        .client
        .send(
            "registerWorker",
            market
                .registerWorker()
                .value(config.min_worker_bond)
                .from(me)
                .into_transaction_request(),
        )
        .await?;
    for worker in honest {
        Worker::new(
            &datacloud_agent_core::Agent::connect(worker.config.clone(), "worker", stop.clone())
                .await?,
            worker.store.clone(),
            worker.gateways.clone(),
            worker.options.clone(),
        )
        .ensure_registered()
        .await?;
    }
    let bond_before = view_bond(&cheater.client, deployments, me).await?;

    let query = sql::parse(DISPUTE_SQL, schema)?;
    let placed = buyer
        .place_order(listing, &query, order_epsilon()?, None)
        .await?;
    let order_id = placed.order_id;
    cheater
        .client
        .send(
            "claimOrder",
            market
                .claimOrder(order_id)
                .from(me)
                .into_transaction_request(),
        )
        .await?;
    let published = datacloud_store::Block::new(
        datacloud_store::Codec::Raw,
        b"bytes the cheater published".to_vec(),
    )?;
    cheater.gateways.put_block(&published).await?;
    let attested = alloy::primitives::keccak256(b"a result it never computed");
    let terms = view.order(order_id).await?;
    let digest = terms.attestation_digest(
        order_id,
        cheater.client.chain_id(),
        deployments.query_market,
        attested,
    );
    let signature = cheater.signer.sign_hash(&digest).await?;
    cheater
        .client
        .send(
            "submitResult",
            market
                .submitResult(
                    order_id,
                    alloy::primitives::Bytes::from(published.cid().to_bytes()),
                    attested,
                    alloy::primitives::Bytes::from(signature.as_bytes().to_vec()),
                )
                .from(me)
                .into_transaction_request(),
        )
        .await?;
    clock.done(
        "dispute: cheater attests",
        &format!("order #{order_id}: worker {me} claimed and attested a result it never published"),
    );

    // The honest workers (back) follow the chain from where they stopped.
    for worker in honest {
        worker.spawn(agents, stop.clone());
    }
    let mut verifiers: Vec<Address> = Vec::new();
    let mut disputer = None;
    let started = Instant::now();
    loop {
        ensure!(
            started.elapsed() < Duration::from_mins(30),
            "order #{order_id}: the dispute did not end"
        );
        let status = view.order_status(order_id).await?;
        if status == OrderStatus::Disputed {
            let d = view.dispute(order_id).await?;
            disputer = disputer.or(d.disputer);
            if let Some(v) = d.verifier.filter(|v| !verifiers.contains(v)) {
                clock.done(
                    &format!("dispute: verifier {}", verifiers.len() + 1),
                    &format!("{v} drawn to recompute (round {})", d.round),
                );
                verifiers.push(v);
            }
        }
        if verifiers.len() == 2 && status != OrderStatus::Disputed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bond_after = view_bond(&cheater.client, deployments, me).await?;
    ensure!(
        bond_before.saturating_sub(bond_after) == config.min_worker_bond,
        "the cheater kept its bond ({bond_before} → {bond_after})"
    );
    clock.done(
        "dispute: overturned",
        &format!(
            "both verifiers recomputed the same result: the cheater lost {} of its bond; the order reopened",
            tokens(config.min_worker_bond)
        ),
    );
    let result = buyer.wait_result(order_id, Duration::from_mins(30)).await?;
    ensure!(
        result.status == OrderStatus::Settled,
        "order #{order_id} ended {}",
        result.status
    );
    let completed_by = view
        .order_work(order_id)
        .await?
        .worker
        .context("a settled order has a worker")?;
    ensure!(completed_by != me, "the cheater completed the order");
    clock.done(
        "dispute: honest completion",
        &format!("order #{order_id} settled with the result of worker {completed_by}"),
    );
    Ok(DisputeReport {
        order_id: order_id.to_string(),
        sql: DISPUTE_SQL.into(),
        cheater: me.to_string(),
        cheater_bond_before: tokens(bond_before),
        cheater_bond_after: tokens(bond_after),
        disputer: disputer.map(|d| d.to_string()).unwrap_or_default(),
        verifiers: verifiers.iter().map(ToString::to_string).collect(),
        outcome: "overturned".into(),
        completed_by: completed_by.to_string(),
        result: result.table,
    })
}

async fn view_bond(
    client: &ChainClient,
    deployments: &datacloud_agent_core::Deployments,
    worker: Address,
) -> Result<U256> {
    let market = IQueryMarket::new(deployments.query_market, client.provider());
    Ok(client
        .view("workerBond", &market.workerBond(worker))
        .await?)
}

/// FinTech B pays for `query` (`sql` is how the demo prints it), follows the order on chain until
/// it settles, and opens the delivered result.
/// The dataset's total privacy budget in the demo (ε).
const PRIVACY_BUDGET: f64 = 10.0;
/// What each of the demo's orders spends of it (ε).
const ORDER_EPSILON: f64 = 1.0;

fn order_epsilon() -> Result<Epsilon> {
    Epsilon::from_f64(ORDER_EPSILON).map_err(|e| anyhow::anyhow!(e))
}

async fn buy(
    buyer: &Buyer,
    listing: &Listing,
    query: &datacloud_query::template::Query,
    sql: &str,
    clock: &mut Clock,
    label: &str,
) -> Result<(U256, OrderResult)> {
    let placed = buyer
        .place_order(listing, query, order_epsilon()?, None)
        .await?;
    clock.done(
        &format!("{label}order"),
        &format!(
            "order #{} paid {} and ε {}: {sql}",
            placed.order_id,
            tokens(placed.paid),
            placed.epsilon
        ),
    );
    watch(
        &buyer.client,
        &buyer.deployments,
        placed.order_id,
        clock,
        label,
    )
    .await?;
    let outcome = buyer.fetch_result(placed.order_id).await?;
    let evidence = buyer.verify(placed.order_id).await?;
    if let Some(link) = evidence.failure() {
        bail!(
            "order #{}: the {} link of its evidence fails: {}",
            placed.order_id,
            link.name,
            link.detail
        );
    }
    ensure!(
        evidence.complete(),
        "order #{}: its evidence stops at {:?}",
        placed.order_id,
        evidence.links.last().map(|l| l.name)
    );
    clock.done(
        &format!("{label}verify"),
        "every link of the evidence holds: order → manifest → params → plan → result → attestation → delivery → the seller's signature",
    );
    Ok((placed.order_id, outcome))
}

/// Follows order `order` on chain until it settles, timing each status it passes.
async fn watch(
    buyer: &ChainClient,
    deployments: &datacloud_agent_core::Deployments,
    order: U256,
    clock: &mut Clock,
    label: &str,
) -> Result<()> {
    let view = Protocol::new(buyer, deployments);
    let mut last = OrderStatus::Open;
    let started = Instant::now();
    while last != OrderStatus::Settled {
        ensure!(
            started.elapsed() < Duration::from_hours(1),
            "order #{order} stuck in status {last}"
        );
        let status = view.order_status(order).await?;
        if status != last {
            let (step, detail) = match status {
                OrderStatus::Claimed => (
                    "worker fetch + claim",
                    "the worker fetched and verified the dataset and the order's parameters, and claimed",
                ),
                OrderStatus::Computed => (
                    "worker evaluate + attest",
                    "encrypted result stored by CID and submitted with its EIP-712 attestation",
                ),
                OrderStatus::Settled => (
                    "seller decrypt + deliver",
                    "Bank A decrypted the aggregate, applied its policy, sealed it to the buyer's key; the order settled",
                ),
                other => bail!("order #{order} ended in status {other}"),
            };
            clock.done(&format!("{label}{step}"), detail);
            last = status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The standard development accounts (as the devchain funds them).
fn dev_keys() -> Result<Vec<(Address, B256)>> {
    Ok(Node::new(ChainConfig::default(), 6)?.dev_keys())
}

/// A devchain in this process, sealing a block every 200 ms.
async fn start_devchain(shutdown: &CancellationToken) -> Result<String> {
    let node = Node::open(NodeConfig {
        block_time: Some(Duration::from_millis(200)),
        ..NodeConfig::default()
    })?;
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

/// The seller's node: its store as a trustless gateway that also takes `block/put`.
async fn start_node(store: Arc<Blockstore>, shutdown: &CancellationToken) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let config = GatewayConfig {
            accept_block_put: true,
            ..GatewayConfig::default()
        };
        if let Err(e) =
            datacloud_store::gateway::serve_with_config(listener, store, config, async move {
                stop.cancelled().await;
            })
            .await
        {
            tracing::error!("seller node stopped: {e}");
        }
    });
    Ok(format!("http://{address}"))
}

async fn balances(actors: &[(&str, ChainClient)]) -> Result<Vec<(String, Address, U256)>> {
    let mut out = Vec::new();
    for (who, client) in actors {
        out.push((
            (*who).to_string(),
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

/// The privacy paragraph of the report.
fn render_privacy(p: &PrivacyReport) -> String {
    format!(
        "privacy: every released figure carries discrete Laplace noise for its order's ε ({} \
         each); the dataset's budget, shared by every buyer, has ε {} left of {} (sample \
         statistics {}, orders {})\n\n",
        p.per_order,
        p.budget.left(),
        p.budget.total,
        p.budget.sample,
        p.budget.orders
    )
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
    if let Some(fraud) = &report.fraud_model {
        let _ = writeln!(s, "order #{}: {}", fraud.order_id, fraud.sql);
        let _ = writeln!(
            s,
            "plan {} (~{} PBS)\n",
            fraud.plan, fraud.plan_pbs_estimate
        );
        if let Some(table) = &fraud.result {
            let _ = writeln!(s, "{}", table.render());
        }
    }
    if let Some(d) = &report.dispute {
        let _ = writeln!(s, "order #{}: {}", d.order_id, d.sql);
        let _ = writeln!(
            s,
            "a dishonest worker {} attested a result it never published; {} disputed;",
            d.cheater, d.disputer
        );
        let _ = writeln!(
            s,
            "verifiers {} recomputed it: {}, the cheater's bond {} → {}; settled by {}\n",
            d.verifiers.join(" and "),
            d.outcome,
            d.cheater_bond_before,
            d.cheater_bond_after,
            d.completed_by
        );
        if let Some(table) = &d.result {
            let _ = writeln!(s, "{}", table.render());
        }
    }
    if let Some(p) = &report.privacy {
        s.push_str(&render_privacy(p));
    }
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
