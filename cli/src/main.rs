//! `datacloud`: the DataCloud command line.
//!
//! Each subcommand lives in its own module under `commands/` with its `Args` and `run`; this
//! file only parses and dispatches.

// Doc comments on the clap types are the help text users read, where Markdown backticks would
// show literally.
#![allow(clippy::doc_markdown)]

mod commands;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// DataCloud: a decentralized data marketplace that sells privacy-preserving queries, never
/// raw data.
#[derive(Debug, Parser)]
#[command(name = "datacloud", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML); defaults point at the local devchain.
    #[arg(long, global = true, env = "DATACLOUD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter (`info`, `debug`, `datacloud_agent_core=debug`, …).
    #[arg(
        long,
        global = true,
        env = "DATACLOUD_LOG",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a development chain that executes the Stylus contracts (JSON-RPC over HTTP).
    Devchain(commands::devchain::Args),
    /// Deploy, activate and initialize the three contracts; write the deployments file.
    Deploy(commands::deploy::Args),
    /// The whole journey on this machine: Bank A sells, FinTech B buys, a worker computes on
    /// ciphertexts, the chain settles.
    Demo(commands::demo::Args),
    /// Sell: onboard a dataset, run the seller daemon (proofs, deliveries), earnings.
    #[command(subcommand)]
    Seller(commands::seller::SellerCommand),
    /// Buy: browse datasets, order a query, read the result, get a refund.
    #[command(subcommand)]
    Buyer(commands::buyer::BuyerCommand),
    /// Compute: run the worker daemon that evaluates orders on ciphertexts.
    #[command(subcommand)]
    Worker(commands::worker::WorkerCommand),
    /// Queries on encrypted data (`query local`: the engine without a chain).
    #[command(subcommand)]
    Query(commands::query::QueryCommand),
    /// Synthetic data (`data synth`).
    #[command(subcommand)]
    Data(commands::query::DataCommand),
    /// Content addressing: add files as UnixFS DAGs, get them through gateways, serve the store.
    #[command(subcommand)]
    Store(commands::store::StoreCommand),
    /// Filecoin piece commitment of a file (PieceCID v2/v1), and PDP proofs (`piece prove`).
    Piece(commands::store::PieceArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&cli.global.log)
                .with_context(|| format!("invalid --log filter {:?}", cli.global.log))?,
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal: logs redirected to a file stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Devchain(args) => commands::devchain::run(&cli.global, args).await,
            Command::Deploy(args) => commands::deploy::run(&cli.global, args).await,
            Command::Demo(args) => Box::pin(commands::demo::run(&cli.global, args)).await,
            Command::Seller(command) => commands::seller::run(&cli.global, command).await,
            Command::Buyer(command) => commands::buyer::run(&cli.global, command).await,
            Command::Worker(command) => commands::worker::run(&cli.global, command).await,
            Command::Query(command) => {
                tokio::task::block_in_place(|| commands::query::query_command(command))
            }
            Command::Data(command) => commands::query::synth_command(command),
            Command::Store(command) => commands::store::store(command).await,
            Command::Piece(args) => commands::store::piece(args),
        }
    })
}
