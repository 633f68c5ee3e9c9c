//! `datacloud seller …`: onboard datasets, run the seller daemon (proofs and deliveries), see
//! datasets and earnings, withdraw.

use std::net::SocketAddr;
use std::path::PathBuf;

use alloy::primitives::U256;
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use datacloud_agent_core::bindings::{IDatasetRegistry, IQueryMarket};
use datacloud_agent_core::progress::rows_bar;
use datacloud_agent_core::shutdown_on_signals;
use datacloud_agent_core::{Epsilon, Health, PrivacyBudget, Protocol};
use datacloud_fhe_query::{Passphrase, Policy, SellerKey};
use datacloud_query::layout::LayoutOptions;
use datacloud_seller::{
    OnboardOptions, Seller, SellerBook, SellerOptions, finish_pending, onboard,
};
use datacloud_store::gateway::GatewayConfig;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::common::{ChainArgs, connect, gateway_client, open_store, parse_tokens, tokens};
use crate::GlobalArgs;

/// The seller's commands.
#[derive(Debug, Subcommand)]
pub enum SellerCommand {
    /// Validate a CSV, encrypt it, publish it by CID, compute its PieceCID, register it on
    /// chain with its templates and price, and open its PDP proof set.
    Onboard(OnboardArgs),
    /// Run the seller daemon: serve the store to workers and buyers, keep the proof sets alive,
    /// decrypt, police and deliver results. Stops on Ctrl-C / SIGTERM.
    Run(RunArgs),
    /// The datasets this seller registered, with their health and price.
    Datasets(ListArgs),
    /// What the market owes this seller.
    Earnings(ListArgs),
    /// Withdraw what the market owes this seller.
    Withdraw(ListArgs),
    /// Raise a dataset's privacy budget: every answer spends privacy that does not come back,
    /// so answering more queries about the same rows is an explicit decision, logged on chain
    /// (`PrivacyBudgetSet`).
    RenewBudget(RenewArgs),
}

/// `seller renew-budget` options.
#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    /// The dataset (its on-chain id).
    dataset: u64,
    /// The ε to add to its budget.
    #[arg(long, value_name = "EPSILON")]
    add: f64,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `seller onboard` options.
#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)] // independent command-line switches
pub struct OnboardArgs {
    /// The data, as CSV with a header row.
    data: PathBuf,
    /// The dataset's schema (TOML).
    #[arg(long, value_name = "FILE")]
    schema: PathBuf,
    /// Display name.
    #[arg(long)]
    name: String,
    /// What the data is.
    #[arg(long, default_value = "")]
    description: String,
    /// Price per query, in whole tokens.
    #[arg(long, default_value = "0.05")]
    price: String,
    /// Templates buyers may use (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "cohort_stats,fraud_model"
    )]
    templates: Vec<String>,
    /// Stake posted with the registration, in whole tokens (slashed on repeated missed proofs).
    #[arg(long, default_value = "1")]
    stake: String,
    /// Rows per encrypted chunk (the unit of streaming and of checkpoints).
    #[arg(long, default_value_t = LayoutOptions::default().chunk_rows)]
    chunk_rows: usize,
    /// Skip the encrypted aggregate cube (smaller upload; every query then scans rows).
    #[arg(long)]
    no_cube: bool,
    /// Total ε of the sample statistics published in the manifest (row count, category
    /// shares, means, flag rates; Laplace noise).
    #[arg(long, default_value_t = 1.0, value_name = "EPSILON")]
    sample_epsilon: f64,
    /// Publish no sample statistics.
    #[arg(long)]
    no_sample: bool,
    /// Smallest number of rows a published sample statistic is derived from (a category value
    /// or a flag on fewer rows is withheld).
    #[arg(long, default_value_t = 10)]
    min_cohort: u64,
    /// The dataset's total differential-privacy budget (ε), shared by every buyer: the market
    /// refuses an order whose ε exceeds what is left, and the sample statistics' ε is charged
    /// to it at registration. Only `seller renew-budget` raises it.
    #[arg(long, default_value_t = 10.0, value_name = "EPSILON")]
    privacy_budget: f64,
    #[command(flatten)]
    key: KeyPassphrase,
    /// Write the client key and the plaintext rows unsealed (mode 0600 only) when no passphrase
    /// is given, instead of refusing: anyone who reads the files reads the data.
    #[arg(long)]
    unsealed: bool,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// `seller run` options.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where the seller's store is served (trustless gateway, and Kubo `block/put` for results
    /// and order parameters).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Smallest cohort released; smaller cells are suppressed. (Every release also gets noise
    /// for the ε its order spent of the dataset's budget.)
    #[arg(long, default_value_t = 10)]
    min_cohort: u64,
    /// Do not submit PDP proofs (results are still delivered): shows what buyers get from a
    /// seller whose storage proofs lapse.
    #[arg(long)]
    no_prove: bool,
    #[command(flatten)]
    key: KeyPassphrase,
    #[command(flatten)]
    chain: ChainArgs,
}

/// The passphrase of the seller's client keys.
#[derive(Debug, clap::Args)]
pub struct KeyPassphrase {
    /// Seal the client key and the plaintext rows under this passphrase (`onboard`:
    /// ChaCha20-Poly1305 with an Argon2id-derived key) and open them with it (`run`). Set it in
    /// the environment, not on the command line, where other users of the machine can read it.
    #[arg(
        long = "key-passphrase",
        env = "DATACLOUD_KEY_PASSPHRASE",
        hide_env_values = true,
        value_name = "PASSPHRASE"
    )]
    passphrase: Option<String>,
    /// Read the passphrase from this file (its first line) instead.
    #[arg(
        long = "key-passphrase-file",
        env = "DATACLOUD_KEY_PASSPHRASE_FILE",
        value_name = "FILE",
        conflicts_with = "passphrase"
    )]
    passphrase_file: Option<PathBuf>,
}

impl KeyPassphrase {
    /// The passphrase, from the flag, the environment or the file.
    fn get(self) -> Result<Option<Passphrase>> {
        if let Some(file) = &self.passphrase_file {
            let text = datacloud_agent_core::fs::read_bounded(file, 4096)
                .with_context(|| format!("reading the passphrase file {}", file.display()))?;
            let text = zeroize::Zeroizing::new(
                String::from_utf8(text)
                    .with_context(|| format!("{} is not UTF-8", file.display()))?,
            );
            let line = text.lines().next().unwrap_or_default();
            anyhow::ensure!(!line.is_empty(), "{} holds no passphrase", file.display());
            return Ok(Some(Passphrase::new(line)));
        }
        Ok(self.passphrase.map(Passphrase::new))
    }
}

/// Options of the listing commands.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Dispatches `seller …`.
pub async fn run(global: &GlobalArgs, command: SellerCommand) -> Result<()> {
    match command {
        SellerCommand::Onboard(args) => onboard_command(global, args).await,
        SellerCommand::Run(args) => run_command(global, args).await,
        SellerCommand::Datasets(args) => datasets_command(global, args).await,
        SellerCommand::Earnings(args) => earnings(global, args, false).await,
        SellerCommand::Withdraw(args) => earnings(global, args, true).await,
        SellerCommand::RenewBudget(args) => renew_budget(global, args).await,
    }
}

async fn onboard_command(global: &GlobalArgs, args: OnboardArgs) -> Result<()> {
    let config = args.chain.config(global)?;
    // Sealed by default: the client key decrypts every chunk, and the rows are the data.
    let passphrase = args.key.get()?;
    anyhow::ensure!(
        passphrase.is_some() || args.unsealed,
        "no passphrase to seal the client key and the rows under: set DATACLOUD_KEY_PASSPHRASE, \
         --key-passphrase-file or --key-passphrase (or pass --unsealed to write them in the clear, \
         mode 0600)"
    );
    let table = super::query::load_table(&args.data, &args.schema)?;
    let options = OnboardOptions {
        name: args.name,
        description: args.description,
        price: parse_tokens(&args.price).context("--price")?,
        templates: args.templates,
        stake: parse_tokens(&args.stake).context("--stake")?,
        source: args
            .data
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        layout: LayoutOptions {
            chunk_rows: args.chunk_rows,
            cube: !args.no_cube,
            ..LayoutOptions::default()
        },
        passphrase,
        sample_epsilon: (!args.no_sample).then_some(args.sample_epsilon),
        privacy_budget: args.privacy_budget,
        min_cohort: args.min_cohort,
    };
    anyhow::ensure!(
        (1..=65_536).contains(&args.chunk_rows),
        "--chunk-rows must be between 1 and 65536"
    );
    let (client, deployments) = connect(&config).await?;
    finish_interrupted(&client, &deployments, &config).await?;
    let store = open_store(&config, "seller")?;
    let bar = rows_bar(table.rows() as u64, "encrypting", !args.json);
    let onboarded = onboard(
        &client,
        &deployments,
        &config.data_dir,
        &store,
        &table,
        &options,
        &|n| bar.inc(n),
    )
    .await?;
    bar.finish_and_clear();
    let d = &onboarded.dataset;
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            dataset: &'a datacloud_seller::OwnedDataset,
            car_bytes: u64,
            chunks: usize,
            steps: Vec<(&'static str, f64)>,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Out {
                dataset: d,
                car_bytes: onboarded.car_bytes,
                chunks: onboarded.chunks,
                steps: onboarded.steps.clone(),
            })?
        );
    } else {
        println!("dataset #{} \"{}\" registered", d.dataset_id, d.name);
        println!("  manifest   {}", d.manifest_cid);
        println!(
            "  piece      {} ({} bytes of CAR)",
            d.piece_cid, onboarded.car_bytes
        );
        println!("  proof set  #{}", d.set_id);
        println!(
            "  templates  {} at {} per query",
            d.templates.join(", "),
            tokens(options.price)
        );
        println!(
            "  privacy    ε {} in all ({} spent by the sample statistics)",
            options.privacy_budget,
            options.sample_epsilon.unwrap_or(0.0)
        );
        println!(
            "  client key {} (never leaves this machine)",
            d.client_key.display()
        );
        for (step, seconds) in &onboarded.steps {
            println!("  {step:<18} {seconds:8.2} s");
        }
        println!("next: `datacloud seller run` keeps its proofs fresh and delivers results");
    }
    Ok(())
}

async fn run_command(global: &GlobalArgs, args: RunArgs) -> Result<()> {
    let config = args.chain.config(global)?;
    let policy = Policy {
        min_cohort: args.min_cohort,
        epsilon: None,
    };
    {
        let (client, deployments) = connect(&config).await?;
        finish_interrupted(&client, &deployments, &config).await?;
    }
    let book = SellerBook::load(&config.data_dir)?;
    if book.datasets.is_empty() {
        bail!(
            "no datasets in {}: run `datacloud seller onboard` first",
            SellerBook::path(&config.data_dir).display()
        );
    }
    // Every client key must open before anything is served: a sealed key without its passphrase
    // fails here, not at the first delivery.
    let passphrase = args.key.get()?;
    let keys = book
        .datasets
        .iter()
        .map(|dataset| {
            SellerKey::load_with(&dataset.client_key, passphrase.as_ref())
                .map(|key| (dataset.dataset_id, key))
                .with_context(|| {
                    format!(
                        "the client key of dataset #{} ({}); a sealed key needs --key-passphrase or DATACLOUD_KEY_PASSPHRASE",
                        dataset.dataset_id,
                        dataset.client_key.display()
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let store = open_store(&config, "seller")?;
    let gateways = gateway_client(&config)?;
    let shutdown = CancellationToken::new();
    shutdown_on_signals(&shutdown);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let stop = shutdown.clone();
    let served = store.clone();
    let node = tokio::spawn(async move {
        datacloud_store::gateway::serve_with_config(
            listener,
            served,
            GatewayConfig {
                accept_block_put: true,
                ..GatewayConfig::default()
            },
            async move { stop.cancelled().await },
        )
        .await
    });
    eprintln!(
        "seller node on http://{} (gateway + block/put)",
        args.listen
    );
    let options = SellerOptions {
        policy,
        prove: !args.no_prove,
        passphrase,
        ..SellerOptions::default()
    };
    let result = datacloud_agent_core::run(config, "seller", shutdown.clone(), |agent| {
        let seller = Seller::new(agent, store, gateways, options, None).with_keys(keys);
        agent
            .tasks
            .spawn(seller.clone().prove_forever(agent.shutdown.clone()));
        seller
    })
    .await;
    shutdown.cancel();
    node.await.context("the seller node task")??;
    result?;
    Ok(())
}

/// Finishes the onboardings an earlier run left half way (registered but no proof set, or
/// signed but not mined), before anything else: a registered dataset nobody proves loses its
/// stake.
async fn finish_interrupted(
    client: &datacloud_agent_core::ChainClient,
    deployments: &datacloud_agent_core::Deployments,
    config: &datacloud_agent_core::Config,
) -> Result<()> {
    let finished = finish_pending(client, deployments, &config.data_dir)
        .await
        .context("finishing an interrupted onboarding")?;
    for d in finished {
        eprintln!(
            "finished the interrupted onboarding of #{} {} (manifest {})",
            d.dataset_id, d.name, d.manifest_cid
        );
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct DatasetRow {
    dataset_id: u64,
    name: String,
    manifest_cid: String,
    piece_cid: String,
    health: Health,
    last_proven_block: u64,
    faults: u64,
    prices: Vec<(String, String)>,
    open_orders: String,
    privacy: PrivacyBudget,
}

async fn datasets_command(global: &GlobalArgs, args: ListArgs) -> Result<()> {
    let config = args.chain.config(global)?;
    let (client, deployments) = connect(&config).await?;
    let book = SellerBook::load(&config.data_dir)?;
    for p in &book.pending {
        eprintln!(
            "onboarding of {} (manifest {}) stopped half way: `datacloud seller run` or `seller onboard` finishes it",
            p.name, p.manifest_cid
        );
    }
    let registry = IDatasetRegistry::new(deployments.dataset_registry, client.provider());
    let market = IQueryMarket::new(deployments.query_market, client.provider());
    let view = Protocol::new(&client, &deployments);
    let mut rows = Vec::new();
    for d in &book.datasets {
        let id = U256::from(d.dataset_id);
        let health = view.health(id).await?;
        let set = view.proof_set(U256::from(d.set_id)).await?;
        let mut prices = Vec::new();
        for t in &d.templates {
            let hash = datacloud_query::template::template_hash(t).into();
            let price = client.view("priceOf", &registry.priceOf(id, hash)).await?;
            prices.push((t.clone(), tokens(price)));
        }
        let open = client
            .view("openOrderCount", &market.openOrderCount(id))
            .await?;
        rows.push(DatasetRow {
            dataset_id: d.dataset_id,
            name: d.name.clone(),
            manifest_cid: d.manifest_cid.clone(),
            piece_cid: d.piece_cid.clone(),
            health,
            last_proven_block: set.last_proven_block,
            faults: set.faults,
            prices,
            open_orders: open.to_string(),
            privacy: view.privacy_budget(id).await?,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no datasets yet: `datacloud seller onboard DATA.csv --schema S.toml --name …`");
    }
    for r in rows {
        println!("#{} {}  [{}]", r.dataset_id, r.name, r.health);
        println!("  manifest {}  piece {}", r.manifest_cid, r.piece_cid);
        println!(
            "  last proof block {}  faults {}  open orders {}",
            r.last_proven_block, r.faults, r.open_orders
        );
        println!(
            "  privacy budget ε {} left of {} (sample statistics {}, orders {})",
            r.privacy.left(),
            r.privacy.total,
            r.privacy.sample,
            r.privacy.orders
        );
        for (t, p) in r.prices {
            println!("  {t:<18} {p} per query");
        }
    }
    Ok(())
}

/// `seller renew-budget`: raises a dataset's privacy budget by `--add` ε.
async fn renew_budget(global: &GlobalArgs, args: RenewArgs) -> Result<()> {
    let added = Epsilon::from_f64(args.add).map_err(|e| anyhow::anyhow!("--add: {e}"))?;
    let config = args.chain.config(global)?;
    let (client, deployments) = connect(&config).await?;
    let id = U256::from(args.dataset);
    let view = Protocol::new(&client, &deployments);
    let before = view.privacy_budget(id).await?;
    let registry = IDatasetRegistry::new(deployments.dataset_registry, client.provider());
    let request = registry
        .renewPrivacyBudget(id, added.0)
        .from(client.address())
        .into_transaction_request();
    let receipt = client.send("renewPrivacyBudget", request).await?;
    let after = view.privacy_budget(id).await?;
    tracing::info!(
        dataset = args.dataset,
        added = %added,
        total = %after.total,
        tx = %receipt.transaction_hash,
        "privacy budget renewed"
    );
    if args.json {
        #[derive(Serialize)]
        struct Out {
            dataset: u64,
            added: f64,
            before: PrivacyBudget,
            after: PrivacyBudget,
            tx: String,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Out {
                dataset: args.dataset,
                added: added.as_f64(),
                before,
                after,
                tx: receipt.transaction_hash.to_string(),
            })?
        );
    } else {
        println!(
            "dataset #{}: privacy budget ε {} → {} ({} left), logged on chain in {}",
            args.dataset,
            before.total,
            after.total,
            after.left(),
            receipt.transaction_hash
        );
    }
    Ok(())
}

/// What the market and the registry owe this account, and (`withdraw`) paying it out.
pub async fn earnings(global: &GlobalArgs, args: ListArgs, withdraw: bool) -> Result<()> {
    let config = args.chain.config(global)?;
    let (client, deployments) = connect(&config).await?;
    let me = client.address();
    let market = IQueryMarket::new(deployments.query_market, client.provider());
    let registry = IDatasetRegistry::new(deployments.dataset_registry, client.provider());
    // The market owes payments, refunds and bonds; the registry owes slashed stake (a seller's
    // penalty for a missed delivery, paid to the buyer; a reporter's bounty).
    let from_market = client.view("payoutOf", &market.payoutOf(me)).await?;
    let from_registry = client.view("payoutOf", &registry.payoutOf(me)).await?;
    let owed = from_market + from_registry;
    if withdraw {
        if owed.is_zero() {
            bail!("nothing to withdraw: neither the market nor the registry owes {me} anything");
        }
        let mut txs = Vec::new();
        if !from_market.is_zero() {
            let request = market.withdraw().from(me).into_transaction_request();
            txs.push(
                client
                    .send("market withdraw", request)
                    .await?
                    .transaction_hash,
            );
        }
        if !from_registry.is_zero() {
            let request = registry.withdraw().from(me).into_transaction_request();
            txs.push(
                client
                    .send("registry withdraw", request)
                    .await?
                    .transaction_hash,
            );
        }
        let txs: Vec<String> = txs.iter().map(ToString::to_string).collect();
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "withdrawn": owed.to_string(),
                    "from_market": from_market.to_string(),
                    "from_registry": from_registry.to_string(),
                    "txs": txs,
                })
            );
        } else {
            println!("withdrew {} to {me} (tx {})", tokens(owed), txs.join(", "));
        }
    } else if args.json {
        println!(
            "{}",
            serde_json::json!({
                "account": me.to_string(),
                "owed": owed.to_string(),
                "from_market": from_market.to_string(),
                "from_registry": from_registry.to_string(),
            })
        );
    } else {
        println!(
            "{me} is owed {} ({} by the market, {} by the registry)",
            tokens(owed),
            tokens(from_market),
            tokens(from_registry)
        );
    }
    Ok(())
}
