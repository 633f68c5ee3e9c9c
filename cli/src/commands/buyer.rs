//! `datacloud buyer …`: browse datasets, order a query, read the result, get a refund.
//!
//! The functions below the commands ([`listings`], [`place_order`], [`fetch_result`]) are what
//! the demo runs as FinTech B.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider as _;
use alloy::sol_types::SolEvent as _;
use anyhow::{Context as _, Result, bail, ensure};
use cid::Cid;
use clap::Subcommand;
use datacloud_agent_core::bindings::query_market::IQueryMarket::OrderPlaced;
use datacloud_agent_core::bindings::{IDatasetRegistry, IProofManager, IQueryMarket};
use datacloud_agent_core::{ChainClient, Deployments};
use datacloud_dataset::{Manifest, fetch_manifest, params_block, read_file};
use datacloud_delivery::DeliveryKey;
use datacloud_fhe_query::{Query, ResultTable, sql, template};
use datacloud_store::Blockstore;
use datacloud_store::gateway::Client as GatewayClient;
use serde::Serialize;

use super::common::{
    ChainArgs, connect, gateway_client, health_name, open_store, status_name, tokens,
};
use crate::GlobalArgs;

/// Order status `SETTLED`.
const SETTLED: u8 = 4;
/// Order status `FAILED` (delivered on an unhealthy dataset: refunded).
const FAILED: u8 = 5;
/// Largest sealed table read.
const MAX_DELIVERY_BYTES: u64 = 64 * 1024 * 1024;

/// The buyer's commands.
#[derive(Debug, Subcommand)]
pub enum BuyerCommand {
    /// The datasets on offer: name, schema, templates, price, PDP health, last proof, seller.
    Datasets(DatasetsArgs),
    /// One dataset in detail: its schema, layout and templates.
    Show(ShowArgs),
    /// Order a query on a dataset, paying price + worker fee into escrow. The parameters are
    /// published by their hash; a delivery key is generated and kept in the data directory.
    Order(OrderArgs),
    /// The result of an order: decrypted with the delivery key, with counts and 95 % CIs.
    Result(ResultArgs),
    /// Refund an order that was not delivered by its deadline.
    Refund(RefundArgs),
    /// Withdraw what the market credited this buyer (refunds, unspent payment).
    Withdraw(super::seller::ListArgs),
}

/// `buyer datasets` options.
#[derive(Debug, clap::Args)]
pub struct DatasetsArgs {
    /// Only datasets whose name or description contains this (case-insensitive).
    #[arg(long)]
    search: Option<String>,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `buyer show` options.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The dataset id.
    id: u64,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has no key"));
    }
    Ok((key.trim().to_owned(), value.to_owned()))
}

/// `buyer order` options.
#[derive(Debug, clap::Args)]
pub struct OrderArgs {
    /// The dataset id.
    id: u64,
    /// The query as SQL, e.g. "SELECT age_band, AVG(amount) FROM transactions WHERE region =
    /// 'APAC' AND day > max_day - 90 GROUP BY age_band".
    #[arg(long, conflicts_with_all = ["params", "template"])]
    sql: Option<String>,
    /// The query as template parameters (JSON, as `datacloud query local --explain` prints).
    #[arg(long, value_name = "JSON", conflicts_with = "template")]
    params: Option<String>,
    /// The query as a template and its parameters (with --param), e.g. `--template
    /// cohort_stats --param measure=amount --param aggregates=count,avg --param
    /// group_by=age_band --param "where=region = 'APAC'"`.
    #[arg(long, value_name = "NAME")]
    template: Option<String>,
    /// A parameter of --template as key=value: a JSON value or text; `group_by`, `features` and
    /// `aggregates` also take comma-separated names, `where` a SQL condition. Repeat it.
    #[arg(long = "param", value_name = "KEY=VALUE", requires = "template", value_parser = parse_param)]
    params_kv: Vec<(String, String)>,
    /// Seconds until the order may be refunded if not delivered.
    #[arg(long, default_value_t = 3600)]
    deadline: u64,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `buyer result` options.
#[derive(Debug, clap::Args)]
pub struct ResultArgs {
    /// The order id.
    order: u64,
    /// Wait until the result is delivered (or the order fails).
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `buyer refund` options.
#[derive(Debug, clap::Args)]
pub struct RefundArgs {
    /// The order id.
    order: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Dispatches `buyer …`.
#[allow(clippy::too_many_lines)] // one arm per command, each short
pub async fn run(global: &GlobalArgs, command: BuyerCommand) -> Result<()> {
    match command {
        BuyerCommand::Datasets(args) => {
            let buyer = Buyer::open(&args.chain, global).await?;
            let mut all = buyer.listings().await?;
            if let Some(text) = &args.search {
                let text = text.to_lowercase();
                all.retain(|l| {
                    l.name.to_lowercase().contains(&text)
                        || l.description.to_lowercase().contains(&text)
                });
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no datasets on offer");
            } else {
                for l in &all {
                    print!("{}", l.render(false));
                }
            }
            Ok(())
        }
        BuyerCommand::Show(args) => {
            let buyer = Buyer::open(&args.chain, global).await?;
            let listing = buyer.listing(args.id).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                print!("{}", listing.render(true));
            }
            Ok(())
        }
        BuyerCommand::Order(args) => {
            let buyer = Buyer::open(&args.chain, global).await?;
            let listing = buyer.listing(args.id).await?;
            let query = match (&args.sql, &args.params, &args.template) {
                (Some(text), None, None) => {
                    sql::parse(text, &listing.parsed_schema()?).context("--sql")?
                }
                (None, Some(json), None) => Query::from_json(json)
                    .context("--params is not a query (see `datacloud query local --explain`)")?,
                (None, None, Some(name)) => {
                    Query::from_params(name, &args.params_kv, &listing.parsed_schema()?)
                        .context("--template/--param")?
                }
                _ => bail!(
                    "give the query as --sql \"SELECT …\", --params JSON, or --template NAME --param KEY=VALUE …"
                ),
            };
            let placed = buyer.place_order(&listing, &query, args.deadline).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&placed)?);
            } else {
                println!(
                    "order #{} placed on dataset #{}: paid {} ({} price + {} worker fee) into escrow",
                    placed.order_id,
                    args.id,
                    tokens(placed.paid),
                    tokens(placed.price),
                    tokens(placed.paid - placed.price)
                );
                println!("  parameters {}", placed.params_cid);
                println!("  delivery key {}", placed.delivery_key.display());
                println!("next: `datacloud buyer result {} --wait`", placed.order_id);
            }
            Ok(())
        }
        BuyerCommand::Result(args) => {
            let buyer = Buyer::open(&args.chain, global).await?;
            let order = U256::from(args.order);
            let outcome = if args.wait {
                buyer
                    .wait_result(order, Duration::from_secs(args.timeout))
                    .await?
            } else {
                buyer.fetch_result(order).await?
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                print!("{}", outcome.render());
            }
            Ok(())
        }
        BuyerCommand::Withdraw(args) => super::seller::earnings(global, args, true).await,
        BuyerCommand::Refund(args) => {
            let config = args.chain.config(global)?;
            let (client, deployments) = connect(&config).await?;
            let market = IQueryMarket::new(deployments.query_market, client.provider());
            let order = U256::from(args.order);
            let escrow = client.view("order", &market.order(order)).await?._7;
            let receipt = client
                .send(
                    "refund",
                    market
                        .refund(order)
                        .from(client.address())
                        .into_transaction_request(),
                )
                .await?;
            println!(
                "order #{order} refunded: {} credited to {} (`datacloud buyer withdraw` pays it out; tx {})",
                tokens(escrow),
                client.address(),
                receipt.transaction_hash
            );
            Ok(())
        }
    }
}

/// The buyer's side of the market: the configuration, the chain, the buyer's store and the
/// gateways, opened once for every buyer command (and the demo's buyer).
#[derive(Clone)]
pub struct Buyer {
    pub config: datacloud_agent_core::Config,
    pub client: ChainClient,
    pub deployments: Deployments,
    pub store: Arc<Blockstore>,
    pub gateways: GatewayClient,
}

impl Buyer {
    async fn open(chain: &ChainArgs, global: &GlobalArgs) -> Result<Self> {
        let config = chain.config(global)?;
        let (client, deployments) = connect(&config).await?;
        let store = open_store(&config, "buyer")?;
        let gateways = gateway_client(&config)?;
        Ok(Self {
            config,
            client,
            deployments,
            store,
            gateways,
        })
    }

    /// Every dataset registered (manifests fetched and verified through the gateways).
    pub async fn listings(&self) -> Result<Vec<Listing>> {
        let registry =
            IDatasetRegistry::new(self.deployments.dataset_registry, self.client.provider());
        let count: u64 = self
            .client
            .view("datasetCount", &registry.datasetCount())
            .await?
            .to();
        let mut out = Vec::new();
        for id in 1..=count {
            match self.listing(id).await {
                Ok(l) => out.push(l),
                Err(e) => {
                    tracing::warn!(dataset = id, error = %e, "skipping a dataset whose manifest cannot be read");
                }
            }
        }
        Ok(out)
    }

    /// Dataset `id`.
    pub async fn listing(&self, id: u64) -> Result<Listing> {
        let registry =
            IDatasetRegistry::new(self.deployments.dataset_registry, self.client.provider());
        let proofs = IProofManager::new(self.deployments.proof_manager, self.client.provider());
        let key = U256::from(id);
        let d = self
            .client
            .view("dataset", &registry.dataset(key))
            .await
            .with_context(|| format!("dataset #{id}"))?;
        let root = Cid::try_from(d._1.as_ref()).context("the dataset's manifest CID")?;
        let piece = Cid::try_from(d._2.as_ref()).map_or_else(|_| "?".into(), |c| c.to_string());
        let manifest = fetch_manifest(&self.gateways, &self.store, &root)
            .await
            .with_context(|| format!("fetching the manifest of dataset #{id}"))?;
        let mut templates = Vec::new();
        for name in &manifest.templates {
            let hash = B256::from(template::template_hash(name));
            if self
                .client
                .view("isTemplateAllowed", &registry.isTemplateAllowed(key, hash))
                .await?
            {
                let price = self
                    .client
                    .view("priceOf", &registry.priceOf(key, hash))
                    .await?;
                templates.push((name.clone(), price.to_string()));
            }
        }
        let health = self.client.view("health", &proofs.health(key)).await?;
        let set = self
            .client
            .view("proofSetOf", &proofs.proofSetOf(key))
            .await?;
        let last_proof_block = if set.is_zero() {
            0
        } else {
            self.client
                .view("lastProvenBlock", &proofs.lastProvenBlock(set))
                .await?
        };
        Ok(Listing {
            id,
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            seller: d._0,
            manifest_cid: root.to_string(),
            piece_cid: piece,
            rows: manifest.layout.rows,
            templates,
            health: health_name(health),
            last_proof_block,
            active: d._5,
            schema: manifest.schema.clone(),
            sample: manifest.sample.clone(),
            manifest: Some(manifest),
        })
    }

    /// Checks `query` against the listing (so a refused query costs nothing), publishes its
    /// parameters, generates the delivery key and places the order.
    pub async fn place_order(
        &self,
        listing: &Listing,
        query: &Query,
        deadline_seconds: u64,
    ) -> Result<PlacedOrder> {
        let allowed: Vec<String> = listing.templates.iter().map(|(t, _)| t.clone()).collect();
        query
            .validate(&listing.parsed_schema()?, &allowed)
            .context("the dataset does not allow this query; nothing was paid")?;
        ensure!(
            listing.active,
            "dataset #{} is not taking orders",
            listing.id
        );
        let market = IQueryMarket::new(self.deployments.query_market, self.client.provider());
        let template_hash = B256::from(template::template_hash(query.template()));
        let registry =
            IDatasetRegistry::new(self.deployments.dataset_registry, self.client.provider());
        let price = self
            .client
            .view(
                "priceOf",
                &registry.priceOf(U256::from(listing.id), template_hash),
            )
            .await?;
        let fee = self.client.view("workerFee", &market.workerFee()).await?;
        // The parameters first: a worker must find them as soon as the order exists.
        let block = params_block(query)?;
        self.gateways
            .put_block(&block)
            .await
            .context("publishing the order parameters")?;
        let delivery = DeliveryKey::generate();
        let keys = self.config.data_dir.join("buyer");
        std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
        let head = self
            .client
            .provider()
            .get_block(alloy::eips::BlockId::latest())
            .await?
            .context("no head block")?;
        let place = market
            .placeOrder(
                U256::from(listing.id),
                template_hash,
                B256::from(query.params_hash()),
                Bytes::copy_from_slice(&delivery.public_bytes()),
                head.header.timestamp + deadline_seconds,
            )
            .value(price + fee)
            .from(self.client.address());
        // Simulate first: a refusal (unhealthy dataset, wrong price, …) is reported before paying.
        self.client
            .view("placeOrder", &place)
            .await
            .context("the market refuses this order; nothing was paid")?;
        // The key is saved before the money moves, under the parameters' hash; it is renamed
        // to the order id once the receipt names it.
        let pending = keys.join(format!("pending-{}.key", block.cid()));
        delivery.save(&pending)?;
        let receipt = self
            .client
            .send("placeOrder", place.into_transaction_request())
            .await?;
        let order_id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| OrderPlaced::decode_log_data(log.data()).ok())
            .map(|placed| placed.orderId)
            .context("the receipt has no OrderPlaced event")?;
        let key_path = keys.join(format!("order-{order_id}.key"));
        std::fs::rename(&pending, &key_path)
            .with_context(|| format!("moving the delivery key to {}", key_path.display()))?;
        Ok(PlacedOrder {
            order_id,
            paid: price + fee,
            price,
            params_cid: block.cid().to_string(),
            delivery_key: key_path,
            tx: receipt.transaction_hash,
        })
    }

    /// The order's state, and its table if delivered.
    pub async fn fetch_result(&self, order_id: U256) -> Result<OrderResult> {
        let market = IQueryMarket::new(self.deployments.query_market, self.client.provider());
        let order = self
            .client
            .view("order", &market.order(order_id))
            .await
            .with_context(|| format!("order #{order_id}"))?;
        let work = self
            .client
            .view("orderWork", &market.orderWork(order_id))
            .await?;
        let mut out = OrderResult {
            order_id,
            status: status_name(order._9),
            worker: (work._0 != Address::ZERO).then_some(work._0),
            result_cid: Cid::try_from(work._2.as_ref()).ok().map(|c| c.to_string()),
            result_hash: (work._3 != B256::ZERO).then_some(work._3),
            delivery_cid: None,
            table: None,
        };
        if !matches!(order._9, SETTLED | FAILED) || work._4.is_empty() {
            return Ok(out);
        }
        let delivery = Cid::try_from(work._4.as_ref()).context("the delivery CID")?;
        if !self.store.has(&delivery)? {
            self.gateways
                .fetch_dag(&delivery, &self.store, true)
                .await
                .context("fetching the delivered table")?;
        }
        let sealed = read_file(&self.store, &delivery, MAX_DELIVERY_BYTES)?;
        let key_path = self
            .config
            .data_dir
            .join("buyer")
            .join(format!("order-{order_id}.key"));
        let key = DeliveryKey::load(&key_path)
            .with_context(|| format!("the delivery key {}", key_path.display()))?;
        let opened = key
            .open(&order_id.to_be_bytes::<32>(), &sealed)
            .context("opening the delivered table")?;
        out.table = Some(serde_json::from_slice(&opened).context("the delivered table")?);
        out.delivery_cid = Some(delivery.to_string());
        Ok(out)
    }

    /// [`fetch_result`] once the order is delivered (settled or failed) or refunded.
    pub async fn wait_result(&self, order_id: U256, timeout: Duration) -> Result<OrderResult> {
        let started = std::time::Instant::now();
        loop {
            let result = self.fetch_result(order_id).await?;
            if result.table.is_some() || matches!(result.status, "Refunded" | "Disputed (refunded)")
            {
                return Ok(result);
            }
            if started.elapsed() > timeout {
                bail!(
                    "order #{order_id} is still {} after {} s",
                    result.status,
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A dataset on offer.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// On-chain id.
    pub id: u64,
    /// Display name (from the manifest).
    pub name: String,
    /// Description.
    pub description: String,
    /// The seller.
    pub seller: Address,
    /// The package root.
    pub manifest_cid: String,
    /// The Filecoin piece.
    pub piece_cid: String,
    /// Rows.
    pub rows: u64,
    /// Templates and their prices (wei).
    pub templates: Vec<(String, String)>,
    /// PDP health.
    pub health: &'static str,
    /// Block of the last accepted proof (0: never).
    pub last_proof_block: u64,
    /// Whether it takes orders.
    pub active: bool,
    /// The schema (TOML).
    pub schema: String,
    /// The seller's sample statistics (differentially private), when published.
    pub sample: Option<datacloud_fhe_query::SampleStatistics>,
    #[serde(skip)]
    manifest: Option<Manifest>,
}

impl Listing {
    fn parsed_schema(&self) -> Result<datacloud_fhe_query::Schema> {
        datacloud_fhe_query::Schema::from_toml(&self.schema)
            .context("the dataset's published schema does not parse")
    }

    fn render(&self, detail: bool) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "#{} {}  [{}{}]  {} rows  seller {}",
            self.id,
            self.name,
            self.health,
            if self.active { "" } else { ", inactive" },
            self.rows,
            self.seller
        );
        if !self.description.is_empty() {
            let _ = writeln!(s, "  {}", self.description);
        }
        for (t, wei) in &self.templates {
            let price = U256::from_str_radix(wei, 10).unwrap_or_default();
            let _ = writeln!(s, "  {t:<18} {} per query", tokens(price));
        }
        let _ = writeln!(
            s,
            "  last proof block {}  manifest {}",
            self.last_proof_block, self.manifest_cid
        );
        if detail {
            let _ = writeln!(s, "  piece {}", self.piece_cid);
            if let Some(m) = &self.manifest {
                if let Some((first, last)) = m.layout.days {
                    let _ = writeln!(s, "  days {first}..={last} (day numbers)");
                }
                let _ = writeln!(
                    s,
                    "  layout: {} rows in chunks of {}, cube {}",
                    m.layout.rows,
                    m.layout.chunk_rows,
                    if m.layout.cube.is_some() { "yes" } else { "no" }
                );
            }
            if let Some(sample) = &self.sample {
                s.push_str(&sample.render());
            }
            let _ = writeln!(s, "  schema:\n{}", indent(&self.schema));
        }
        s
    }
}

fn indent(text: &str) -> String {
    text.lines().fold(String::new(), |mut out, l| {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
        out
    })
}

/// A placed order.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedOrder {
    /// The order (and receipt token) id.
    pub order_id: U256,
    /// Paid into escrow (wei).
    pub paid: U256,
    /// The dataset's price for the template (wei).
    pub price: U256,
    /// The parameters' CID (keccak-256 of the canonical parameters: the order's paramsHash).
    pub params_cid: String,
    /// The delivery key file.
    pub delivery_key: PathBuf,
    /// The transaction.
    pub tx: B256,
}

/// What a buyer learns about an order.
#[derive(Debug, Clone, Serialize)]
pub struct OrderResult {
    /// The order.
    pub order_id: U256,
    /// Its status.
    pub status: &'static str,
    /// The worker that computed it.
    pub worker: Option<Address>,
    /// The attested encrypted result.
    pub result_cid: Option<String>,
    /// Its keccak-256, as attested.
    pub result_hash: Option<B256>,
    /// The sealed table.
    pub delivery_cid: Option<String>,
    /// The table, opened with the delivery key.
    pub table: Option<ResultTable>,
}

impl OrderResult {
    fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "order #{}: {}", self.order_id, self.status);
        if let (Some(worker), Some(cid), Some(hash)) =
            (self.worker, &self.result_cid, self.result_hash)
        {
            let _ = writeln!(
                s,
                "  computed by worker {worker}; encrypted result {cid} (keccak {hash}), attested on chain"
            );
        }
        if let Some(cid) = &self.delivery_cid {
            let _ = writeln!(s, "  delivered as {cid}, opened with this buyer's key");
        }
        if let Some(table) = &self.table {
            let _ = writeln!(s, "\n{}", table.render());
        }
        s
    }
}
