//! `datacloud devchain`: the embedded chain, served over JSON-RPC until Ctrl-C.

use std::{net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use datacloud_agent_core::shutdown_on_signals;
use datacloud_devchain::{ChainConfig, Node, NodeConfig, Rpc, RpcConfig, rpc, serve};
use tokio_util::sync::CancellationToken;

use crate::GlobalArgs;

/// Most dev accounts (each is derived from the dev mnemonic at start).
const MAX_ACCOUNTS: u32 = 1000;

/// `datacloud devchain` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8545)]
    port: u16,
    /// Prefunded dev accounts (derived from the `test … junk` mnemonic, as anvil's).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_ACCOUNTS)))]
    accounts: u32,
    /// Keep the chain (state, blocks, receipts, logs) in this directory and restart at the same
    /// head [default: in memory, lost at exit].
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory (the default; the explicit form of no --data-dir).
    #[arg(long)]
    ephemeral: bool,
    /// Seal a block every this many seconds (fractions allowed) instead of one block per
    /// transaction; a chain with a block time advances by itself, as a real one does.
    #[arg(long, value_name = "SECONDS", value_parser = parse_block_time)]
    block_time: Option<Duration>,
}

fn parse_block_time(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.01..=3600.0).contains(&seconds) {
        return Err("the block time must be between 0.01 and 3600 seconds".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Serves the devchain until SIGINT/SIGTERM, then stops accepting requests and exits.
pub async fn run(_global: &GlobalArgs, args: Args) -> anyhow::Result<()> {
    let node = Node::open(NodeConfig {
        chain: ChainConfig::default(),
        dev_accounts: args.accounts,
        data_dir: args.data_dir.clone(),
        block_time: args.block_time,
    })
    .with_context(|| match &args.data_dir {
        Some(dir) => format!("opening the devchain in {}", dir.display()),
        None => "creating the devchain".to_owned(),
    })?;
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let address = listener.local_addr().context("reading the bound address")?;
    // Signals are handled before the banner says the chain is up: whoever reads it may stop us.
    let shutdown = CancellationToken::new();
    shutdown_on_signals(&shutdown);
    say(&rpc::banner(&node, address));
    let service = Arc::new(Rpc::new(node, RpcConfig::default()));
    let stop = shutdown.clone();
    serve(listener, service, async move { stop.cancelled().await })
        .await
        .context("serving JSON-RPC")?;
    say("devchain stopped");
    Ok(())
}

/// Prints to stdout, ignoring a closed stdout: the chain keeps serving when whoever started it
/// stops reading (`println!` would panic on the broken pipe).
fn say(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
