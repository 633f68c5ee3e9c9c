//! What the role crates' tests share (feature `testing`): a devchain served over real HTTP on
//! 127.0.0.1 with funded dev accounts, agent configurations signing with them, and the three
//! contracts' real WASM deployed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use alloy::primitives::{Address, B256};
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, serve};
use tokio_util::sync::CancellationToken;

use crate::{ChainClient, Config, ConfigOverrides, ContractsWasm, Deployments, deploy};

/// Wei per whole token.
pub const ETHER: u128 = 1_000_000_000_000_000_000;

/// An automining devchain with three funded dev accounts, served until `stop`: its URL and the
/// accounts with their keys.
///
/// # Panics
/// When no local port can be bound (a test environment problem).
pub async fn devchain(stop: &CancellationToken) -> (String, Vec<(Address, B256)>) {
    let node = Node::new(ChainConfig::default(), 6).expect("a devchain node");
    let keys = node.dev_keys();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let token = stop.clone();
    tokio::spawn(serve(listener, rpc, async move { token.cancelled().await }));
    (url, keys)
}

/// The configuration of an agent signing with `key`, its data under `dir`, polling fast.
///
/// # Panics
/// Never for a URL from [`devchain`].
#[must_use]
pub fn config(url: &str, dir: &Path, key: B256) -> Config {
    let env = HashMap::from([("DATACLOUD_POLL_INTERVAL_MS".to_owned(), "20".to_owned())]);
    Config::load_from(
        None,
        &env,
        &ConfigOverrides {
            rpc_url: Some(url.to_owned()),
            data_dir: Some(dir.to_path_buf()),
            private_key: Some(key.to_string()),
            ..ConfigOverrides::default()
        },
    )
    .expect("a test configuration")
}

/// The three contracts deployed by `key`'s account, the deployments file written where its
/// configuration reads it.
///
/// # Panics
/// When the devchain refuses the deployment.
pub async fn deployed(url: &str, dir: &Path, key: B256) -> (Config, ChainClient, Deployments) {
    let config = config(url, dir, key);
    let client = ChainClient::connect(&config).await.expect("connected");
    let wasm = ContractsWasm {
        dataset_registry: datacloud_contract_artifacts::dataset_registry(),
        proof_manager: datacloud_contract_artifacts::proof_manager(),
        query_market: datacloud_contract_artifacts::query_market(),
        dispute_game: datacloud_contract_artifacts::dispute_game(),
    };
    let deployments = deploy(&client, &wasm, &config.deploy)
        .await
        .expect("deployed");
    deployments
        .write(&config.deployments)
        .expect("the deployments file");
    (config, client, deployments)
}

/// Moves the devchain's clock `seconds` ahead and mines a block at the new time.
///
/// # Panics
/// When the node refuses.
pub async fn advance_time(client: &ChainClient, seconds: u64) {
    use alloy::providers::Provider as _;
    let _: serde_json::Value = client
        .provider()
        .raw_request("evm_increaseTime".into(), [seconds])
        .await
        .expect("evm_increaseTime");
    let _: serde_json::Value = client
        .provider()
        .raw_request("evm_mine".into(), Vec::<u64>::new())
        .await
        .expect("evm_mine");
}
