//! `datacloud buyer …`: browse datasets, order a query, read the result, get a refund. The
//! buyer's logic is `datacloud-buyer`'s; this module parses the flags and prints.

use std::time::Duration;

use alloy::primitives::U256;
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;
use datacloud_agent_core::Epsilon;
use datacloud_buyer::{Buyer, LinkState, Listing, OrderResult, RefundReason, Verification};
use datacloud_query::{Query, sql};

use super::common::{ChainArgs, connect, gateway_client, open_store, tokens};
use crate::GlobalArgs;

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
    /// Refund an order that was not delivered by its deadline, or whose computed result its
    /// seller left undelivered past the delivery window (the market's claim timeout; the
    /// seller's stake then pays the price to the buyer): its escrow goes to the receipt's owner,
    /// less the fee of a worker that computed it. Anyone may close such an order.
    Refund(RefundArgs),
    /// Check every link of an order's evidence and say which fails: order → manifest → params →
    /// plan → result → attestation → delivery → the seller's signature. Exits 1 when a link
    /// fails.
    Verify(VerifyArgs),
    /// Withdraw what the market credited this buyer (refunds, unspent payment) and what the
    /// registry did (a seller's penalty for a result it left undelivered).
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
    /// The ε this order spends of the dataset's privacy budget (shared by every buyer; `buyer
    /// show` prints what is left). Smaller means more noise in the result; the market refuses
    /// an order over what is left.
    #[arg(long, default_value_t = 1.0, value_name = "EPSILON")]
    epsilon: f64,
    /// Seconds until the order may be refunded if not delivered. At least one claim window:
    /// the market's claim timeout plus a second per 20 of the plan's estimated bootstraps (a
    /// shorter one is refused before paying). Default: one claim window plus an hour.
    #[arg(long, value_name = "SECONDS")]
    deadline: Option<u64>,
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

/// `buyer verify` options.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The order id.
    order: u64,
    #[command(flatten)]
    chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Dispatches `buyer …`.
#[allow(clippy::too_many_lines)] // one arm per command, each short
pub async fn run(global: &GlobalArgs, command: BuyerCommand) -> Result<()> {
    match command {
        BuyerCommand::Datasets(args) => {
            let buyer = open_buyer(&args.chain, global).await?;
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
                    print!("{}", render_listing(l, false));
                }
            }
            Ok(())
        }
        BuyerCommand::Show(args) => {
            let buyer = open_buyer(&args.chain, global).await?;
            let listing = buyer.listing(args.id).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                print!("{}", render_listing(&listing, true));
            }
            Ok(())
        }
        BuyerCommand::Order(args) => {
            let buyer = open_buyer(&args.chain, global).await?;
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
            let epsilon = Epsilon::from_f64(args.epsilon).map_err(|e| anyhow!("--epsilon: {e}"))?;
            let placed = buyer
                .place_order(&listing, &query, epsilon, args.deadline)
                .await?;
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
                println!(
                    "  privacy: spends ε {} of the dataset's budget ({} left for every buyer)",
                    epsilon,
                    Epsilon(listing.privacy.left().0.saturating_sub(epsilon.0))
                );
                println!(
                    "  plan: ~{} bootstraps; refundable after timestamp {} if not delivered",
                    placed.pbs_estimate, placed.deadline
                );
                println!("  delivery key {}", placed.delivery_key.display());
                println!("next: `datacloud buyer result {} --wait`", placed.order_id);
            }
            Ok(())
        }
        BuyerCommand::Result(args) => {
            let buyer = open_buyer(&args.chain, global).await?;
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
                print!("{}", render_result(&outcome));
            }
            Ok(())
        }
        BuyerCommand::Withdraw(args) => super::seller::earnings(global, args, true).await,
        BuyerCommand::Refund(args) => {
            let buyer = open_buyer(&args.chain, global).await?;
            let refund = buyer.refund(U256::from(args.order)).await?;
            let why = match refund.reason {
                RefundReason::Expired => "its deadline passed",
                RefundReason::Refused => "its seller refused it",
                RefundReason::Undelivered => "its seller did not deliver the result in time",
            };
            println!(
                "order #{} refunded ({why}): {} credited to {} (`datacloud buyer withdraw` pays it out; tx {})",
                refund.order_id,
                tokens(refund.credited),
                refund.to,
                refund.tx
            );
            if !refund.penalty.is_zero() {
                println!(
                    "  the seller's stake paid {} more to {} as a penalty",
                    tokens(refund.penalty),
                    refund.to
                );
            }
            Ok(())
        }
        BuyerCommand::Verify(args) => {
            let buyer = open_buyer(&args.chain, global).await?;
            let verification = buyer.verify(U256::from(args.order)).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&verification)?);
            } else {
                print!("{}", render_verification(&verification));
            }
            if let Some(link) = verification.failure() {
                bail!("order #{}: the {} link fails", args.order, link.name);
            }
            Ok(())
        }
    }
}

/// The buyer of these flags: its configuration, chain, store and gateways.
async fn open_buyer(chain: &ChainArgs, global: &GlobalArgs) -> Result<Buyer> {
    let config = chain.config(global)?;
    let (client, deployments) = connect(&config).await?;
    let store = open_store(&config, "buyer")?;
    let gateways = gateway_client(&config)?;
    Ok(Buyer {
        config,
        client,
        deployments,
        store,
        gateways,
    })
}

/// A listing as text: one paragraph, with the layout, sample statistics and schema in `detail`.
fn render_listing(listing: &Listing, detail: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#{} {}  [{}{}]  {} rows  seller {}",
        listing.id,
        listing.name,
        listing.health,
        if listing.active { "" } else { ", inactive" },
        listing.rows,
        listing.seller
    );
    if !listing.description.is_empty() {
        let _ = writeln!(s, "  {}", listing.description);
    }
    for (t, wei) in &listing.templates {
        let price = U256::from_str_radix(wei, 10).unwrap_or_default();
        let _ = writeln!(s, "  {t:<18} {} per query", tokens(price));
    }
    let p = &listing.privacy;
    let _ = writeln!(
        s,
        "  privacy budget: ε {} left of {} (sample statistics {}, orders {}; every buyer together)",
        p.left(),
        p.total,
        p.sample,
        p.orders
    );
    let _ = writeln!(
        s,
        "  last proof block {}  manifest {}",
        listing.last_proof_block, listing.manifest_cid
    );
    if detail {
        let _ = writeln!(s, "  piece {}", listing.piece_cid);
        if let Some(m) = &listing.manifest {
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
        if let Some(sample) = &listing.sample {
            s.push_str(&sample.render());
        }
        let _ = writeln!(s, "  schema:\n{}", indent(&listing.schema));
    }
    s
}

fn indent(text: &str) -> String {
    text.lines().fold(String::new(), |mut out, l| {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
        out
    })
}

/// An order's evidence as text: one line per link, then what was not checked.
fn render_verification(v: &Verification) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "order #{}: {}", v.order_id, v.status);
    for link in &v.links {
        let mark = match link.state {
            LinkState::Ok => "ok     ",
            LinkState::Failed => "FAILED ",
            LinkState::Pending => "pending",
        };
        let _ = writeln!(s, "  {mark} {:<12} {}", link.name, link.detail);
    }
    let rest = &datacloud_buyer::verify::LINKS[v.links.len()..];
    if !rest.is_empty() {
        let _ = writeln!(s, "  not checked: {}", rest.join(", "));
    }
    if v.complete() {
        let _ = writeln!(s, "every link holds");
    }
    s
}

/// An order's state as text, with its table once delivered.
fn render_result(result: &OrderResult) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "order #{}: {}", result.order_id, result.status);
    let _ = writeln!(
        s,
        "  spends ε {} of dataset #{}'s privacy budget; ε {} left for every buyer",
        result.epsilon,
        result.dataset_id,
        result.privacy.left()
    );
    if let (Some(worker), Some(cid), Some(hash)) =
        (result.worker, &result.result_cid, result.result_hash)
    {
        let _ = writeln!(
            s,
            "  computed by worker {worker}; encrypted result {cid} (keccak {hash}), attested on chain"
        );
    }
    if let Some(cid) = &result.delivery_cid {
        let _ = writeln!(s, "  delivered as {cid}, opened with this buyer's key");
    }
    if let Some(table) = &result.table {
        let _ = writeln!(s, "\n{}", table.render());
    }
    s
}
