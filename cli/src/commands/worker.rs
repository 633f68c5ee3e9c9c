//! `datacloud worker run`: the compute worker daemon.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use datacloud_agent_core::shutdown_on_signals;
use datacloud_worker::{Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;

use super::common::{ChainArgs, gateway_client, open_store, tokens};
use crate::GlobalArgs;

/// The worker's commands.
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Post the bond if needed, then follow orders: claim those this worker can serve, fetch
    /// and verify the encrypted dataset, evaluate on ciphertexts (checkpointed: a restart
    /// resumes), and submit the attested result. Stops on Ctrl-C / SIGTERM.
    Run(RunArgs),
}

/// `worker run` options.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where partial results are checkpointed [default: <data_dir>/worker-work].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// No progress bar (logs only).
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Dispatches `worker …`.
pub async fn run(global: &GlobalArgs, command: WorkerCommand) -> Result<()> {
    let WorkerCommand::Run(args) = command;
    let config = args.chain.config(global)?;
    let store = open_store(&config, "worker")?;
    let gateways = gateway_client(&config)?;
    let options = WorkerOptions {
        work_dir: args
            .work_dir
            .unwrap_or_else(|| config.data_dir.join("worker-work")),
        progress: !args.quiet,
        retry: datacloud_agent_core::OrderRetry::default(),
    };
    let shutdown = CancellationToken::new();
    shutdown_on_signals(&shutdown);
    // Bond first: an unbonded worker cannot claim.
    let agent =
        datacloud_agent_core::Agent::connect(config.clone(), "worker", shutdown.clone()).await?;
    let bond = Worker::new(&agent, store.clone(), gateways.clone(), options.clone())
        .ensure_registered()
        .await
        .context("posting the worker bond")?;
    eprintln!(
        "worker {} bonded with {}",
        agent.client.address(),
        tokens(bond)
    );
    drop(agent);
    datacloud_agent_core::run(config, "worker", shutdown, |agent| {
        Worker::new(agent, store, gateways, options)
    })
    .await?;
    Ok(())
}
