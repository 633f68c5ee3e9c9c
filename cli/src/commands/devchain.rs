//! `datacloud devchain`: the embedded chain, served over JSON-RPC until Ctrl-C.

use std::{net::IpAddr, sync::Arc};

use anyhow::Context as _;
use datacloud_agent_core::shutdown_on_signals;
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, rpc, serve};
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
}

/// Serves the devchain until SIGINT/SIGTERM, then stops accepting requests and exits.
pub async fn run(_global: &GlobalArgs, args: Args) -> anyhow::Result<()> {
    let node = Node::new(ChainConfig::default(), args.accounts).context("creating the devchain")?;
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let address = listener.local_addr().context("reading the bound address")?;
    println!("{}", rpc::banner(&node, address));
    let service = Arc::new(Rpc::new(node, RpcConfig::default()));
    let shutdown = CancellationToken::new();
    shutdown_on_signals(&shutdown);
    let stop = shutdown.clone();
    serve(listener, service, async move { stop.cancelled().await })
        .await
        .context("serving JSON-RPC")?;
    println!("devchain stopped");
    Ok(())
}
