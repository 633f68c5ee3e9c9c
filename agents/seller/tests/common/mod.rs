//! A devchain over HTTP with the real contract WASM deployed, and datasets as `onboard` records
//! them, for the prover's integration tests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256, keccak256};
use datacloud_agent_core::{
    ChainClient, Config, ConfigOverrides, ContractsWasm, Deployments, deploy,
};
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, serve};
use datacloud_seller::PendingDataset;
use tokio_util::sync::CancellationToken;

pub const ETHER: u128 = 1_000_000_000_000_000_000;

/// An automining devchain with three dev accounts, served until `stop`: its URL and the
/// accounts' keys.
pub async fn chain(stop: &CancellationToken) -> (String, Vec<(Address, B256)>) {
    let node = Node::new(ChainConfig::default(), 3).unwrap();
    let keys = node.dev_keys();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let token = stop.clone();
    tokio::spawn(serve(listener, rpc, async move { token.cancelled().await }));
    (url, keys)
}

/// The configuration of an agent signing with `key`, its data under `dir`.
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
    .unwrap()
}

/// The three contracts deployed by `key`'s account, the deployments file written where its
/// configuration reads it.
pub async fn deployed(url: &str, dir: &Path, key: B256) -> (Config, ChainClient, Deployments) {
    let config = config(url, dir, key);
    let client = ChainClient::connect(&config).await.unwrap();
    let wasm = ContractsWasm {
        dataset_registry: datacloud_contract_artifacts::dataset_registry(),
        proof_manager: datacloud_contract_artifacts::proof_manager(),
        query_market: datacloud_contract_artifacts::query_market(),
    };
    let deployments = deploy(&client, &wasm, &config.deploy).await.unwrap();
    deployments.write(&config.deployments).unwrap();
    (config, client, deployments)
}

/// A dataset as `onboard` records it before its first transaction: a package root and a piece
/// commitment of real bytes (the chain checks CIDs and piece sizes, not the store).
pub fn pending(dir: &Path, name: &str) -> PendingDataset {
    let payload: Vec<u8> = (0..5000u32)
        .flat_map(|i| (i ^ 0x5a5a).to_le_bytes())
        .chain(name.bytes())
        .collect();
    let commitment = datacloud_pdp::commp(&payload).unwrap();
    let manifest = datacloud_store::block::cid_of(datacloud_store::Codec::Raw, name.as_bytes());
    let table = datacloud_query::synth::generate(4, 1);
    PendingDataset {
        name: name.into(),
        manifest_cid: manifest.to_string(),
        piece_cid: commitment.to_piece_cid_v2().to_string(),
        car: dir.join(format!("{name}.car")),
        client_key: dir.join(format!("{name}.key")),
        layout: datacloud_query::layout::header(&table, &datacloud_query::LayoutOptions::default()),
        templates: vec!["cohort_stats".into()],
        schema_hash: keccak256(b"schema"),
        price: U256::from(ETHER / 20),
        stake: U256::from(ETHER),
        piece_root: B256::from(commitment.root()),
        piece_leaves: commitment.size().leaf_count(),
    }
}
