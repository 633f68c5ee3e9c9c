//! The product end to end, as separate processes: `datacloud devchain` (blocks every 200 ms),
//! `deploy`, `seller onboard` / `seller run`, `worker run` and the `buyer` commands, with the
//! failures the agents must survive:
//!
//! - a worker killed with SIGKILL mid-evaluation resumes from its checkpoints: one result, one
//!   payout;
//! - the seller daemon is down while a result is submitted, and delivers it after a restart
//!   (its cursor);
//! - an order over the dataset's privacy budget (shared by every buyer) is refused on chain
//!   before any money moves, and only the seller's logged renewal lets orders in again;
//! - a worker behind a gateway that tampers with blocks claims nothing and submits nothing;
//! - a seller that stops proving has a Degraded dataset: delivery pays the worker its fee and
//!   refunds the buyer the rest;
//! - a worker that attests a result it did not compute (the test itself, a third party on the
//!   chain) is disputed by the seller's daemon, two worker daemons drawn as verifiers recompute
//!   the order, the cheater loses its bond and the order completes through an honest worker;
//! - an order whose recorded PBS estimate understates its plan is claimed by no worker;
//! - a receipt's owner that disputes an honest result loses its bond to the worker and the
//!   verifier, and the order is delivered;
//! - a query the dataset does not allow is refused before any money moves.

use std::future::IntoFuture as _;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use datacloud_agent_core::bindings::dataset_registry::IDatasetRegistry::PrivacyBudgetSet;
use datacloud_agent_core::bindings::query_market::IQueryMarket::{
    DisputeResolved, ResultSubmitted,
};
use datacloud_agent_core::bindings::{IProofManager, IQueryMarket};
use datacloud_agent_core::{
    Deployments, Health, Order, OrderStatus, OrderWork, config::DEVCHAIN_CHAIN_ID,
};

const BIN: &str = env!("CARGO_BIN_EXE_datacloud");
/// The worker fee the default deployment charges (0.01).
const FEE: u128 = 10_000_000_000_000_000;
/// The price `seller onboard` sets by default (0.05).
const PRICE: u128 = 50_000_000_000_000_000;

struct Cluster {
    dir: tempfile::TempDir,
    rpc: String,
    /// The gateways every command uses unless told otherwise.
    gateways: String,
    keys: Vec<B256>,
    children: Vec<(String, Child)>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Proving windows of 100 blocks (20 s): room for a loaded machine; one proof every
        // ~80 s.
        std::fs::write(
            dir.path().join("config.toml"),
            "poll_interval_ms = 100\n[deploy]\nchallenge_window = 100\nproving_period = 600\n",
        )
        .unwrap();
        let port = free_port();
        let keys = datacloud_devchain::Node::new(datacloud_devchain::ChainConfig::default(), 6)
            .unwrap()
            .dev_keys()
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        let mut cluster = Self {
            gateways: String::new(),
            rpc: format!("http://127.0.0.1:{port}"),
            dir,
            keys,
            children: Vec::new(),
        };
        let devchain = Command::new(BIN)
            .args([
                "devchain",
                "--port",
                &port.to_string(),
                "--block-time",
                "0.2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        cluster.children.push(("devchain".into(), devchain));
        wait_for(Duration::from_secs(30), "the devchain", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        cluster.run_ok(0, "deployer", &["deploy"]);
        cluster
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `datacloud ARGS` as `role` (its own data directory) signing with dev key `key`. A
    /// seller's client keys are sealed under the role's passphrase (onboarding seals them, the
    /// daemon opens them).
    fn command(&self, key: usize, role: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("DATACLOUD_CONFIG", self.path("config.toml"))
            .env("DATACLOUD_RPC_URL", &self.rpc)
            .env("DATACLOUD_PRIVATE_KEY", self.keys[key].to_string())
            .env("DATACLOUD_DATA_DIR", self.path(role))
            .env("DATACLOUD_DEPLOYMENTS", self.path("deployments.json"))
            .env("DATACLOUD_LOG", "info")
            .env(
                "DATACLOUD_KEY_PASSPHRASE",
                format!("the {role}'s passphrase"),
            )
            .env_remove("RUST_BACKTRACE");
        if !self.gateways.is_empty() {
            command.env("DATACLOUD_GATEWAYS", &self.gateways);
        }
        command
    }

    fn run(&self, key: usize, role: &str, args: &[&str]) -> std::process::Output {
        self.command(key, role, args).output().unwrap()
    }

    fn run_ok(&self, key: usize, role: &str, args: &[&str]) -> String {
        let out = self.run(key, role, args);
        assert!(
            out.status.success(),
            "datacloud {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Places `SELECT COUNT(*)` on dataset 1 through the CLI and returns the order's id.
    fn order_count(&self, key: usize, role: &str) -> u64 {
        let out = self.run_ok(
            key,
            role,
            &[
                "buyer",
                "order",
                "1",
                "--template",
                "cohort_stats",
                "--param",
                "aggregates=count",
                "--json",
            ],
        );
        order_id(&out)
    }

    /// Starts a daemon; its log goes to `<dir>/<name>.log`.
    fn spawn(&mut self, name: &str, key: usize, role: &str, args: &[&str], gateway: &str) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let child = self
            .command(key, role, args)
            .env("DATACLOUD_GATEWAYS", gateway)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((name.into(), child));
    }

    /// SIGKILL (`graceful`: SIGTERM and wait).
    fn stop(&mut self, name: &str, graceful: bool) {
        let i = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"));
        let (_, mut child) = self.children.remove(i);
        if graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        } else {
            child.kill().unwrap();
        }
        child.wait().unwrap();
    }

    fn log(&self, name: &str) -> String {
        let mut s = String::new();
        std::fs::File::open(self.path(&format!("{name}.log")))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    fn deployments(&self) -> Deployments {
        Deployments::read(&self.path("deployments.json")).unwrap()
    }

    fn address(&self, key: usize) -> Address {
        alloy::signers::local::PrivateKeySigner::from_bytes(&self.keys[key])
            .unwrap()
            .address()
    }
}

fn wait_for(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The chain as the test reads it (directly, not through the CLI under test).
struct Chain {
    runtime: tokio::runtime::Runtime,
    provider: alloy::providers::DynProvider,
    deployments: Deployments,
}

impl Chain {
    fn new(cluster: &Cluster) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let provider = ProviderBuilder::new()
            .connect_http(cluster.rpc.parse().unwrap())
            .erased();
        Self {
            runtime,
            provider,
            deployments: cluster.deployments(),
        }
    }

    fn status(&self, order: u64) -> OrderStatus {
        let market = IQueryMarket::new(self.deployments.query_market, &self.provider);
        let raw = self
            .runtime
            .block_on(market.order(U256::from(order)).call().into_future())
            .unwrap();
        Order::try_from(raw).unwrap().status
    }

    fn worker_of(&self, order: u64) -> Option<Address> {
        let market = IQueryMarket::new(self.deployments.query_market, &self.provider);
        let raw = self
            .runtime
            .block_on(market.orderWork(U256::from(order)).call().into_future())
            .unwrap();
        OrderWork::from(raw).worker
    }

    fn health(&self, dataset: u64) -> Health {
        let proofs = IProofManager::new(self.deployments.proof_manager, &self.provider);
        let code = self
            .runtime
            .block_on(proofs.health(U256::from(dataset)).call().into_future())
            .unwrap();
        Health::try_from(code).unwrap()
    }

    fn payout(&self, who: Address) -> U256 {
        let market = IQueryMarket::new(self.deployments.query_market, &self.provider);
        self.runtime
            .block_on(market.payoutOf(who).call().into_future())
            .unwrap()
    }

    fn worker_bond(&self, who: Address) -> U256 {
        let market = IQueryMarket::new(self.deployments.query_market, &self.provider);
        self.runtime
            .block_on(market.workerBond(who).call().into_future())
            .unwrap()
    }

    /// The outcomes of the order's resolved disputes (1 upheld, 2 overturned, 3 inconclusive).
    fn dispute_outcomes(&self, order: u64) -> Vec<u8> {
        self.events::<DisputeResolved>(self.deployments.query_market, order)
            .iter()
            .map(|e| e.outcome)
            .collect()
    }

    /// Every `E` that `contract` logged with `id` as its first indexed topic, in order.
    fn events<E: SolEvent>(&self, contract: Address, id: u64) -> Vec<E> {
        let filter = Filter::new()
            .address(contract)
            .event_signature(E::SIGNATURE_HASH)
            .topic1(U256::from(id))
            .from_block(0);
        self.runtime
            .block_on(self.provider.get_logs(&filter))
            .unwrap()
            .iter()
            .map(|log| E::decode_log_data(log.data()).unwrap())
            .collect()
    }

    fn balance(&self, who: Address) -> U256 {
        self.runtime
            .block_on(self.provider.get_balance(who).into_future())
            .unwrap()
    }

    fn order_count(&self) -> u64 {
        let market = IQueryMarket::new(self.deployments.query_market, &self.provider);
        self.runtime
            .block_on(market.orderCount().call().into_future())
            .unwrap()
            .to::<u64>()
    }

    /// The privacy budget totals (micro-ε) dataset `dataset` was given, in order: at
    /// registration, then at each renewal (`PrivacyBudgetSet`).
    fn budget_renewals(&self, dataset: u64) -> Vec<u64> {
        self.events::<PrivacyBudgetSet>(self.deployments.dataset_registry, dataset)
            .iter()
            .map(|e| e.budget)
            .collect()
    }

    fn results_submitted(&self, order: u64) -> usize {
        self.events::<ResultSubmitted>(self.deployments.query_market, order)
            .len()
    }

    fn wait_status(&self, order: u64, want: OrderStatus, timeout: Duration) {
        wait_for(
            timeout,
            &format!("order {order} to reach status {want}"),
            || self.status(order) == want,
        );
    }
}

fn order_id(stdout: &str) -> u64 {
    let placed: serde_json::Value = serde_json::from_str(stdout).unwrap();
    placed["order_id"]
        .as_str()
        .map(|s| {
            if let Some(hex) = s.strip_prefix("0x") {
                u64::from_str_radix(hex, 16).unwrap()
            } else {
                s.parse().unwrap()
            }
        })
        .unwrap()
}

/// A gateway that tampers with everything it serves, one bit flipped inside a block's data: a
/// CAR request gets the dataset's CAR, a raw block request the block — well-formed responses
/// whose content is not what their CIDs say.
fn start_tampering_gateway(mut car: Vec<u8>) -> String {
    let blocks: std::collections::HashMap<String, Vec<u8>> =
        datacloud_store::CarReader::new(car.as_slice())
            .unwrap()
            .map(|b| {
                let (cid, mut data) = b.unwrap().into_parts();
                if let Some(last) = data.last_mut() {
                    *last ^= 0x01;
                }
                (cid.to_string(), data)
            })
            .collect();
    let blocks = std::sync::Arc::new(blocks);
    let middle = car.len() / 2;
    car[middle] ^= 0x01;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
                let car = car.clone();
                let blocks = blocks.clone();
                async move {
                    let cid = uri.path().trim_start_matches("/ipfs/").to_owned();
                    let raw = uri.query().is_some_and(|q| q.contains("format=raw"));
                    match blocks.get(&cid).filter(|_| raw) {
                        Some(data) => {
                            ([("content-type", "application/vnd.ipld.raw")], data.clone())
                        }
                        None => (
                            [(
                                "content-type",
                                "application/vnd.ipld.car; version=1; order=dfs; dups=n",
                            )],
                            car,
                        ),
                    }
                }
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{address}")
}

#[test]
#[allow(clippy::too_many_lines)] // one cluster, the scenarios in order
fn daemons_survive_crashes_and_refuse_what_they_must() {
    let mut cluster = Cluster::start();
    let chain = Chain::new(&cluster);
    assert_eq!(chain.deployments.chain_id, DEVCHAIN_CHAIN_ID);
    let (seller, buyer, worker, spy, seller_b) = (1, 2, 3, 4, 5);
    let csv = cluster.path("transactions.csv");
    let schema = cluster.path("transactions.schema.toml");
    cluster.run_ok(
        buyer,
        "buyer",
        &[
            "data",
            "synth",
            "--rows",
            "16",
            "--seed",
            "9",
            "--days",
            "30",
            "-o",
            csv.to_str().unwrap(),
        ],
    );
    let onboard = |cluster: &Cluster, key: usize, role: &str, name: &str| {
        cluster.run_ok(
            key,
            role,
            &[
                "seller",
                "onboard",
                csv.to_str().unwrap(),
                "--schema",
                schema.to_str().unwrap(),
                "--name",
                name,
                "--templates",
                "cohort_stats",
                "--no-cube",
                "--chunk-rows",
                "4",
                // 1 of it spent by the sample statistics: 2.5 left for orders of ε 1.
                "--privacy-budget",
                "3.5",
                "--json",
            ],
        )
    };
    onboard(&cluster, seller, "seller", "Bank A");
    // The client key on disk is sealed under the seller's passphrase (Argon2id, v2), and so are
    // the seller's plaintext rows.
    let keys: Vec<PathBuf> = std::fs::read_dir(cluster.path("seller").join("seller"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "key"))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        std::fs::read(&keys[0])
            .unwrap()
            .starts_with(b"datacloud-key-v2")
    );
    let rows = keys[0].with_extension("rows");
    assert!(
        std::fs::read(&rows)
            .unwrap()
            .starts_with(b"datacloud-key-v2")
    );
    // Without it, the daemon refuses to start, saying why.
    let refused = cluster
        .command(
            seller,
            "seller",
            &["seller", "run", "--listen", "127.0.0.1:0"],
        )
        .env_remove("DATACLOUD_KEY_PASSPHRASE")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("sealed with a passphrase"), "{stderr}");
    let node_port = free_port();
    let node = format!("http://127.0.0.1:{node_port}");
    let listen = format!("127.0.0.1:{node_port}");
    // A second, writable node (an IPFS node everyone can publish to): it holds what is
    // published while the seller's own node is down.
    let backup_port = free_port();
    let backup = format!("http://127.0.0.1:{backup_port}");
    let backup_store = cluster.path("backup.redb");
    cluster.gateways = format!("{node},{backup}");
    let gateways = cluster.gateways.clone();
    cluster.spawn(
        "backup",
        buyer,
        "backup",
        &[
            "store",
            "serve",
            "--writable",
            "--listen",
            &format!("127.0.0.1:{backup_port}"),
            "--store",
            backup_store.to_str().unwrap(),
        ],
        &gateways,
    );
    let seller_args = ["seller", "run", "--listen", &listen, "--min-cohort", "1"];
    cluster.spawn("seller", seller, "seller", &seller_args, &gateways);
    wait_for(Duration::from_mins(2), "dataset 1 to be Healthy", || {
        chain.health(1) == Health::Healthy
    });
    // The listing shows the sample statistics `onboard` published (ε = 1 by default).
    let shown = cluster.run_ok(buyer, "buyer", &["buyer", "show", "1"]);
    assert!(
        shown.contains("sample statistics (Laplace noise, ε = 1)") && shown.contains("region:"),
        "{shown}"
    );
    let listing: serde_json::Value =
        serde_json::from_str(&cluster.run_ok(buyer, "buyer", &["buyer", "show", "1", "--json"]))
            .unwrap();
    assert_eq!(listing["sample"]["epsilon"], serde_json::json!(1.0));

    // A query the dataset does not allow is refused before any money moves.
    let before = chain.balance(cluster.address(buyer));
    let refused = cluster.run(
        buyer,
        "buyer",
        &[
            "buyer",
            "order",
            "1",
            "--sql",
            "SELECT no_such_column, COUNT(*) FROM transactions GROUP BY no_such_column",
        ],
    );
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("no_such_column"), "{why}");
    assert_eq!(
        chain.balance(cluster.address(buyer)),
        before,
        "no money moved"
    );

    // 1. The worker is killed mid-evaluation and resumes: one result, one payout. A lower bound
    //    alone on the measure: the worker scans its complement and subtracts it from the totals.
    let order_env = |sql: &str, deadline: &str| -> Vec<String> {
        [
            "buyer",
            "order",
            "1",
            "--sql",
            sql,
            "--deadline",
            deadline,
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };
    let args = order_env(
        "SELECT COUNT(*), SUM(amount) FROM transactions WHERE amount > 30",
        "86400",
    );
    let first = order_id(&cluster.run_ok(
        buyer,
        "buyer",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    cluster.spawn(
        "worker",
        worker,
        "worker",
        &["worker", "run", "--quiet"],
        &gateways,
    );
    let checkpoint = cluster
        .path("worker")
        .join("worker-work")
        .join(format!("order-{first}"))
        .join("chunk-00000.partial");
    wait_for(Duration::from_mins(5), "the first checkpoint", || {
        checkpoint.exists()
    });
    cluster.stop("worker", false);
    assert!(
        cluster.log("worker").contains("complement=true"),
        "the worker scans the complement: {}",
        cluster.log("worker")
    );
    assert_eq!(
        chain.status(first),
        OrderStatus::Claimed,
        "claimed, not yet computed, when killed"
    );
    cluster.spawn(
        "worker-2",
        worker,
        "worker",
        &["worker", "run", "--quiet"],
        &gateways,
    );
    chain.wait_status(first, OrderStatus::Settled, Duration::from_mins(10));
    assert_eq!(chain.results_submitted(first), 1, "exactly one result");
    assert_eq!(
        chain.payout(cluster.address(worker)),
        U256::from(FEE),
        "exactly one payout"
    );
    let table = cluster.run_ok(
        buyer,
        "buyer",
        &["buyer", "result", &first.to_string(), "--json"],
    );
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let rows = table["table"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one cohort: no GROUP BY");
    // Every link of its evidence holds, the seller's signature over the delivery included.
    let verified = cluster.run_ok(buyer, "buyer", &["buyer", "verify", &first.to_string()]);
    assert!(verified.contains("every link holds"), "{verified}");
    assert!(verified.contains("signature"), "{verified}");

    // 2. The seller daemon is down while the result arrives; it delivers after a restart.
    cluster.stop("seller", true);
    let args = order_env(
        "SELECT region, COUNT(*) FROM transactions GROUP BY region",
        "86400",
    );
    let second = order_id(&cluster.run_ok(
        buyer,
        "buyer",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    // The seller's node is down with it: the buyer's parameters and the worker's result go to
    // the other node, and the worker computes while the seller is away.
    chain.wait_status(second, OrderStatus::Computed, Duration::from_mins(10));
    cluster.spawn("seller-2", seller, "seller", &seller_args, &gateways);
    chain.wait_status(second, OrderStatus::Settled, Duration::from_mins(10));
    // Settled on chain as the delivery lands; the daemon logs it once the receipt is back.
    wait_for(
        Duration::from_mins(1),
        "the restarted seller's delivery log",
        || cluster.log("seller-2").contains("result delivered"),
    );

    // 3. Over the dataset's privacy budget (3.5 in all, 1 spent by the sample statistics, 1
    //    by each of the two orders above): an order for ε 1 is refused on chain before any
    //    money moves, whoever asks, with an error that says what is left. `buyer show` prints
    //    it. The seller's explicit renewal, logged on chain, lets orders in again.
    let shown = cluster.run_ok(buyer, "buyer", &["buyer", "show", "1"]);
    assert!(
        shown.contains("privacy budget: ε 0.5 left of 3.5 (sample statistics 1, orders 2"),
        "{shown}"
    );
    let args = order_env(
        "SELECT channel, COUNT(*) FROM transactions GROUP BY channel",
        "86400",
    );
    let orders_before = chain.order_count();
    // Another address is no fresh budget (the budget is the dataset's, not a buyer's).
    for (who, role) in [(buyer, "buyer"), (seller_b, "buyer-c")] {
        let before = chain.balance(cluster.address(who));
        let over = cluster.run(
            who,
            role,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(!over.status.success());
        let why = String::from_utf8_lossy(&over.stderr);
        assert!(
            why.contains("InvalidEpsilon")
                && why.contains("has ε 0.5 of its privacy budget left")
                && why.contains("nothing was paid"),
            "{why}"
        );
        assert_eq!(
            chain.balance(cluster.address(who)),
            before,
            "no money moved"
        );
    }
    assert_eq!(chain.order_count(), orders_before, "no order was placed");
    let renewed = cluster.run_ok(
        seller,
        "seller",
        &["seller", "renew-budget", "1", "--add", "10", "--json"],
    );
    let renewed: serde_json::Value = serde_json::from_str(&renewed).unwrap();
    assert_eq!(renewed["after"]["total"], serde_json::json!(13.5));
    assert_eq!(renewed["after"]["left"], serde_json::json!(10.5));
    let listing: serde_json::Value =
        serde_json::from_str(&cluster.run_ok(buyer, "buyer", &["buyer", "show", "1", "--json"]))
            .unwrap();
    assert_eq!(listing["privacy"]["left"], serde_json::json!(10.5));
    // The renewal is on the chain's record, for anyone to see.
    assert_eq!(chain.budget_renewals(1), vec![3_500_000, 13_500_000]);

    // 4. A worker behind a tampering gateway claims nothing and submits nothing.
    cluster.stop("worker-2", true);
    // The spy has its own, empty store: it must fetch the dataset through the hostile gateway.
    let car = std::fs::read_dir(cluster.path("seller").join("seller"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "car"))
        .expect("the seller's CAR");
    let hostile = start_tampering_gateway(std::fs::read(car).unwrap());
    cluster.spawn("spy", spy, "spy", &["worker", "run", "--quiet"], &hostile);
    let args = order_env(
        "SELECT age_band, COUNT(*) FROM transactions GROUP BY age_band",
        "86400",
    );
    let fourth = order_id(&cluster.run_ok(
        buyer,
        "buyer",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let started = Instant::now();
    while !cluster
        .log("spy")
        .contains(&format!("order skipped order={fourth}"))
    {
        assert!(
            started.elapsed() < Duration::from_mins(3),
            "the spy never finished with order {fourth}:\n{}",
            cluster.log("spy")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(chain.status(fourth), OrderStatus::Open, "nothing claimed");
    assert_eq!(chain.worker_of(fourth), None);
    assert_eq!(chain.results_submitted(fourth), 0);
    assert!(
        cluster.log("spy").contains("tampered"),
        "{}",
        cluster.log("spy")
    );
    cluster.stop("spy", true);

    // 5. A seller that stops proving: Degraded, and delivery refunds the buyer (less the fee of
    //    the worker, which did its part).
    onboard(&cluster, seller_b, "seller-b", "Bank B");
    assert_eq!(chain.health(2), Health::Degraded, "never proven");
    let port_b = free_port();
    let node_b = format!("http://127.0.0.1:{port_b}");
    cluster.spawn(
        "seller-b",
        seller_b,
        "seller-b",
        &[
            "seller",
            "run",
            "--listen",
            &format!("127.0.0.1:{port_b}"),
            "--no-prove",
            "--min-cohort",
            "1",
        ],
        &node_b,
    );
    cluster.spawn(
        "worker-3",
        worker,
        "worker",
        &["worker", "run", "--quiet"],
        &format!("{node_b},{node},{backup}"),
    );
    wait_for(Duration::from_mins(1), "seller B's node", || {
        std::net::TcpStream::connect(("127.0.0.1", port_b)).is_ok()
    });
    let balance_before = chain.balance(cluster.address(buyer));
    let credited_before = chain.payout(cluster.address(buyer));
    let worker_before = chain.payout(cluster.address(worker));
    let out = cluster.run_ok(
        buyer,
        "buyer",
        &[
            "buyer",
            "order",
            "2",
            // The command-line form of `SELECT region, COUNT(*) … GROUP BY region`.
            "--template",
            "cohort_stats",
            "--param",
            "aggregates=count",
            "--param",
            "group_by=region",
            "--json",
            "--gateway",
            &node_b,
            "--gateway",
            &backup,
        ],
    );
    let fifth = order_id(&out);
    chain.wait_status(fifth, OrderStatus::Failed, Duration::from_mins(10));
    assert_eq!(
        chain.payout(cluster.address(seller_b)),
        U256::ZERO,
        "an unproven dataset earns nothing"
    );
    assert_eq!(
        chain.payout(cluster.address(buyer)) - credited_before,
        U256::from(PRICE),
        "the buyer is credited its escrow back, less the fee of the worker that computed"
    );
    assert_eq!(
        chain.payout(cluster.address(worker)) - worker_before,
        U256::from(FEE),
        "the worker did its part and is paid"
    );
    assert!(
        chain.balance(cluster.address(buyer)) < balance_before,
        "only gas was spent"
    );

    // 6. A dishonest worker, a dispute, re-execution by two verifiers, an honest completion.
    //    The cheater is the test itself (dev key 0, a party to nothing); the buyer is key 5,
    //    whose DP budget on dataset 1 is untouched; the verifiers are the worker and spy daemons.
    cluster.stop("worker-3", true);
    let (cheater, buyer_c) = (0, seller_b);
    let sixth = cluster.order_count(buyer_c, "buyer-c");
    let deployments = cluster.deployments();
    let forged = datacloud_store::Block::new(
        datacloud_store::Codec::Raw,
        b"not the answer to order six".to_vec(),
    )
    .unwrap();
    let seller_credited = chain.payout(cluster.address(seller));
    chain.runtime.block_on(async {
        let hand = datacloud_agent_core::testing::HandWorker::connect(
            &cluster.rpc,
            &cluster.path("cheater"),
            cluster.keys[cheater],
        )
        .await;
        hand.bond(&deployments).await;
        // Published where the seller looks, and attested as hashing to something else.
        datacloud_store::gateway::Client::new(
            [backup.as_str()],
            datacloud_store::gateway::ClientConfig::default(),
        )
        .unwrap()
        .put_block(&forged)
        .await
        .unwrap();
        hand.submit(
            &deployments,
            U256::from(sixth),
            forged.cid(),
            alloy::primitives::keccak256(b"a hash of nothing"),
        )
        .await;
    });
    for (name, key, role) in [("verifier-1", worker, "worker"), ("verifier-2", spy, "spy")] {
        cluster.spawn(name, key, role, &["worker", "run", "--quiet"], &gateways);
    }
    chain.wait_status(sixth, OrderStatus::Settled, Duration::from_mins(10));
    let honest = chain.worker_of(sixth).unwrap();
    assert!(
        [cluster.address(worker), cluster.address(spy)].contains(&honest),
        "completed by {honest}"
    );
    assert_eq!(
        chain.worker_bond(cluster.address(cheater)),
        U256::ZERO,
        "the cheater lost its bond"
    );
    assert_eq!(
        chain.results_submitted(sixth),
        2,
        "the forgery, then the honest result"
    );
    assert_eq!(chain.dispute_outcomes(sixth), vec![2], "overturned once");
    assert!(
        chain.payout(cluster.address(seller)) - seller_credited > U256::from(PRICE),
        "the seller is paid the price and the disputer's share of the slash"
    );

    // 7. An order whose recorded PBS estimate understates its plan (a GROUP BY on a dataset
    //    without a cube is a row scan; the order says 0): no worker claims it, since its claim
    //    window would lapse mid-evaluation and cost the worker part of its bond.
    let query = datacloud_query::template::Query::from_json(
        r#"{"template": "cohort_stats", "aggregates": ["count"], "group_by": ["region"]}"#,
    )
    .unwrap();
    let params = datacloud_package::params_block(&query).unwrap();
    let seventh = chain.runtime.block_on(async {
        datacloud_store::gateway::Client::new(
            [backup.as_str()],
            datacloud_store::gateway::ClientConfig::default(),
        )
        .unwrap()
        .put_block(&params)
        .await
        .unwrap();
        let buyer = datacloud_agent_core::testing::HandWorker::connect(
            &cluster.rpc,
            &cluster.path("cheater"),
            cluster.keys[cheater],
        )
        .await
        .client;
        let now = datacloud_agent_core::testing::head_timestamp(&buyer).await;
        let market = IQueryMarket::new(deployments.query_market, buyer.provider());
        buyer
            .send(
                "placeOrder",
                market
                    .placeOrder(
                        U256::from(1),
                        B256::from(datacloud_query::template::template_hash("cohort_stats")),
                        B256::from(query.params_hash()),
                        alloy::primitives::Bytes::from(vec![9u8; 32]),
                        now + 7200,
                        0,
                        1_000_000,
                    )
                    .value(U256::from(PRICE + FEE))
                    .from(buyer.address())
                    .into_transaction_request(),
            )
            .await
            .unwrap();
        market.orderCount().call().await.unwrap().to::<u64>()
    });
    wait_for(
        Duration::from_mins(2),
        "both workers to skip order 7",
        || {
            ["verifier-1", "verifier-2"]
                .iter()
                .all(|name| cluster.log(name).contains("is below its plan's"))
        },
    );
    assert_eq!(
        chain.status(seventh),
        OrderStatus::Open,
        "nobody claimed it"
    );
    assert_eq!(chain.worker_of(seventh), None);

    // 8. The other way round: a receipt's owner (the test, with buyer C's key) disputes an
    //    honest result to take the worker's bond. The drawn verifier recomputes the same bytes,
    //    the result is upheld, and the disputer's bond goes to the verifier (its fee) and the
    //    worker (the rest). The seller daemon is down meanwhile, so that the order waits
    //    Computed; once back, it delivers.
    cluster.stop("seller-2", true);
    let eighth = cluster.order_count(buyer_c, "buyer-c");
    chain.wait_status(eighth, OrderStatus::Computed, Duration::from_mins(5));
    let honest = chain.worker_of(eighth).unwrap();
    let honest_credited = chain.payout(honest);
    let bond = chain.runtime.block_on(async {
        let disputer = datacloud_agent_core::testing::HandWorker::connect(
            &cluster.rpc,
            &cluster.path("disputer"),
            cluster.keys[buyer_c],
        )
        .await
        .client;
        let bond = datacloud_agent_core::Protocol::new(&disputer, &deployments)
            .market_config()
            .await
            .unwrap()
            .min_worker_bond;
        // The dispute game's functions are called at the market's address.
        let game = datacloud_agent_core::bindings::IDisputeGame::new(
            deployments.query_market,
            disputer.provider(),
        );
        disputer
            .send(
                "dispute",
                game.dispute(U256::from(eighth))
                    .value(bond)
                    .from(disputer.address())
                    .into_transaction_request(),
            )
            .await
            .unwrap();
        bond
    });
    wait_for(
        Duration::from_mins(5),
        "the dispute on order 8 to end",
        || !chain.dispute_outcomes(eighth).is_empty(),
    );
    assert_eq!(chain.dispute_outcomes(eighth), vec![1], "upheld");
    assert_eq!(chain.status(eighth), OrderStatus::Computed);
    assert_eq!(
        chain.payout(honest) - honest_credited,
        bond - U256::from(FEE),
        "the disputer's bond, less the verifier's fee, went to the honest worker"
    );
    cluster.spawn("seller-3", seller, "seller", &seller_args, &gateways);
    chain.wait_status(eighth, OrderStatus::Settled, Duration::from_mins(3));
}
