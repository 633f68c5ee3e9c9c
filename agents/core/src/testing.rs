//! What the role crates' tests share (feature `testing`): a devchain served over real HTTP on
//! 127.0.0.1 with funded dev accounts, agent configurations signing with them, and the three
//! contracts' real WASM deployed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use alloy::primitives::{Address, B256};
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, serve};
use tokio_util::sync::CancellationToken;

use crate::bindings::IQueryMarket;
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

/// The head block's timestamp.
///
/// # Panics
/// When the node cannot answer.
pub async fn head_timestamp(client: &ChainClient) -> u64 {
    use alloy::providers::Provider as _;
    client
        .provider()
        .get_block(alloy::eips::BlockId::latest())
        .await
        .expect("the head block")
        .expect("a head block")
        .header
        .timestamp
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

/// A worker driven by hand: it bonds, claims and submits whatever result a test tells it to,
/// always with a valid attestation (the attacks a dishonest worker can make).
pub struct HandWorker {
    /// Its chain client.
    pub client: ChainClient,
    /// Its key, which signs attestations.
    pub signer: alloy::signers::local::PrivateKeySigner,
}

impl HandWorker {
    /// Dev account `key`, its data under `dir`.
    ///
    /// # Panics
    /// When the node cannot be reached.
    pub async fn connect(url: &str, dir: &Path, key: B256) -> Self {
        let config = config(url, dir, key);
        Self {
            client: ChainClient::connect(&config).await.expect("connected"),
            signer: config.signer(),
        }
    }

    /// Adds `minWorkerBond` to its bond (registering it the first time); returns that amount.
    ///
    /// # Panics
    /// When the market refuses.
    pub async fn bond(&self, deployments: &Deployments) -> alloy::primitives::U256 {
        let bond = crate::Protocol::new(&self.client, deployments)
            .market_config()
            .await
            .expect("the market's configuration")
            .min_worker_bond;
        let market = IQueryMarket::new(deployments.query_market, self.client.provider());
        self.client
            .send(
                "registerWorker",
                market
                    .registerWorker()
                    .value(bond)
                    .from(self.client.address())
                    .into_transaction_request(),
            )
            .await
            .expect("registerWorker");
        bond
    }

    /// Claims `order` and submits `cid` attested as hashing to `hash`, with a valid signature.
    ///
    /// # Panics
    /// When the market refuses either.
    pub async fn submit(
        &self,
        deployments: &Deployments,
        order: alloy::primitives::U256,
        cid: &cid::Cid,
        hash: B256,
    ) {
        use alloy::signers::Signer as _;
        let market = IQueryMarket::new(deployments.query_market, self.client.provider());
        let me = self.client.address();
        self.client
            .send(
                "claimOrder",
                market.claimOrder(order).from(me).into_transaction_request(),
            )
            .await
            .expect("claimOrder");
        let terms = crate::Protocol::new(&self.client, deployments)
            .order(order)
            .await
            .expect("the order");
        let digest = terms.attestation_digest(
            order,
            self.client.chain_id(),
            deployments.query_market,
            hash,
        );
        let signature = self.signer.sign_hash(&digest).await.expect("signing");
        // r ‖ s ‖ v with v = 27 + y-parity, as the market's ecrecover expects.
        self.client
            .send(
                "submitResult",
                market
                    .submitResult(
                        order,
                        alloy::primitives::Bytes::from(cid.to_bytes()),
                        hash,
                        alloy::primitives::Bytes::from(signature.as_bytes().to_vec()),
                    )
                    .from(me)
                    .into_transaction_request(),
            )
            .await
            .expect("submitResult");
    }
}
