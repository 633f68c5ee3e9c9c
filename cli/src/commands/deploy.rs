//! `datacloud deploy`: deploys the contracts embedded in this binary and writes the
//! deployments file agents read.

use std::path::PathBuf;

use anyhow::Context as _;
use datacloud_agent_core::{ChainClient, Config, ConfigOverrides, ContractsWasm, deploy};

use crate::GlobalArgs;

/// `datacloud deploy` options (contract parameters: the `[deploy]` table of `--config`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON-RPC endpoint [default: http://127.0.0.1:8545, or the config's rpc_url].
    #[arg(long, value_name = "URL")]
    rpc: Option<String>,
    /// Deployer private key, hex [default: the devchain's first dev key, on the devchain only].
    /// Prefer DATACLOUD_PRIVATE_KEY: a flag is visible to other local users.
    #[arg(long, value_name = "HEX")]
    key: Option<String>,
    /// Expected chain id [default: the devchain's, 412346].
    #[arg(long)]
    chain_id: Option<u64>,
    /// Where to write the deployments file [default: <data_dir>/deployments.json].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the deployments as JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Deploys, writes the file, prints the addresses.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<()> {
    let overrides = ConfigOverrides {
        rpc_url: args.rpc,
        chain_id: args.chain_id,
        private_key: args.key,
        deployments: args.out,
        ..ConfigOverrides::default()
    };
    let config = Config::load(global.config.as_deref(), &overrides)?;
    let client = ChainClient::connect(&config)
        .await
        .with_context(|| format!("connecting to {}", config.rpc_url))?;
    let wasm = ContractsWasm {
        dataset_registry: datacloud_contract_artifacts::dataset_registry(),
        proof_manager: datacloud_contract_artifacts::proof_manager(),
        query_market: datacloud_contract_artifacts::query_market(),
        dispute_game: datacloud_contract_artifacts::dispute_game(),
    };
    let deployments = deploy(&client, &wasm, &config.deploy)
        .await
        .context("deploying the contracts")?;
    deployments.write(&config.deployments)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&deployments)?);
    } else {
        println!(
            "Deployed on chain {} (block {}) by {}",
            deployments.chain_id,
            deployments.deploy_block,
            client.address()
        );
        println!("DatasetRegistry  {}", deployments.dataset_registry);
        println!("ProofManager     {}", deployments.proof_manager);
        println!("QueryMarket      {}", deployments.query_market);
        let game = datacloud_agent_core::Protocol::new(&client, &deployments)
            .market_config()
            .await?
            .dispute_game;
        println!("  dispute game   {game} (delegate-called by QueryMarket)");
        println!("Wrote {}", config.deployments.display());
    }
    Ok(())
}
