//! A worker leaves the orders it cannot serve open for others: nothing claimed, no bond at
//! stake. Real devchain, real contracts' WASM, a real (empty) gateway over HTTP on 127.0.0.1.

use std::sync::Arc;

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::providers::Provider as _;
use datacloud_agent_core::bindings::{IDatasetRegistry, IQueryMarket};
use datacloud_agent_core::testing::{
    ETHER, advance_time, config, deployed, devchain, head_timestamp,
};
use datacloud_agent_core::{Agent, ChainClient, OrderStatus, Protocol};
use datacloud_query::template::template_hash;
use datacloud_store::Blockstore;
use datacloud_store::gateway::ClientConfig;
use datacloud_worker::{Outcome, Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // a dataset, two orders, a worker, three refusals
async fn an_order_it_is_a_party_to_on_an_unavailable_dataset_or_expired_is_never_claimed() {
    let stop = CancellationToken::new();
    let (url, keys) = devchain(&stop).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, seller, deployments) = deployed(&url, &dir.path().join("seller"), keys[0].1).await;

    // A dataset whose package no node serves.
    let missing = datacloud_store::block::cid_of(datacloud_store::Codec::Raw, b"never published");
    let piece = datacloud_pdp::commp(&[3u8; 4096])
        .unwrap()
        .to_piece_cid_v2();
    let template = B256::from(template_hash("cohort_stats"));
    let price = U256::from(ETHER / 20);
    seller
        .send(
            "registerDataset",
            IDatasetRegistry::new(deployments.dataset_registry, seller.provider())
                .registerDataset(
                    Bytes::from(missing.to_bytes()),
                    Bytes::from(piece.to_bytes()),
                    keccak256("schema"),
                    vec![template],
                    vec![price],
                    10_000_000,
                    0,
                )
                .value(U256::from(ETHER))
                .into_transaction_request(),
        )
        .await
        .unwrap();

    // A buyer's order on it.
    let buyer = ChainClient::connect(&config(&url, &dir.path().join("buyer"), keys[1].1))
        .await
        .unwrap();
    let market = IQueryMarket::new(deployments.query_market, buyer.provider());
    let fee = buyer.view("config", &market.config()).await.unwrap()._3;
    let now = head_timestamp(&buyer).await;
    // An order on dataset 1 paid by `client`, due in two hours (one claim window is the
    // market's hour and the plan's time).
    let place = |client: &ChainClient, params: &'static str| {
        let call = IQueryMarket::new(deployments.query_market, client.provider())
            .placeOrder(
                U256::from(1),
                template,
                keccak256(params),
                Bytes::from(vec![9u8; 32]),
                now + 7200,
                0,
                1_000_000,
            )
            .value(price + fee)
            .into_transaction_request();
        let client = client.clone();
        async move { client.send("placeOrder", call).await.unwrap() }
    };
    place(&buyer, "params").await;
    let order = U256::from(1);

    // A bonded worker reading from an empty node.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = format!("http://{}", listener.local_addr().unwrap());
    let empty = Arc::new(Blockstore::open(dir.path().join("node-store")).unwrap());
    let token = stop.clone();
    tokio::spawn(datacloud_store::gateway::serve(
        listener,
        empty,
        async move {
            token.cancelled().await;
        },
    ));
    let worker_config = config(&url, &dir.path().join("worker"), keys[2].1);
    deployments.write(&worker_config.deployments).unwrap();
    let agent = Agent::connect(worker_config, "worker", stop.clone())
        .await
        .unwrap();
    let worker = Worker::new(
        &agent,
        Arc::new(Blockstore::open(dir.path().join("worker-store")).unwrap()),
        datacloud_store::gateway::Client::new([node], ClientConfig::default()).unwrap(),
        WorkerOptions {
            work_dir: dir.path().join("worker-work"),
            progress: false,
            retry: datacloud_agent_core::OrderRetry::default(),
        },
    );
    worker.ensure_registered().await.unwrap();
    let sent = || async {
        agent
            .client
            .provider()
            .get_transaction_count(agent.client.address())
            .await
            .unwrap()
    };

    let view = Protocol::new(&agent.client, &deployments);
    match worker.serve(order).await.unwrap() {
        Outcome::Skipped(reason) => assert!(reason.contains("dataset unavailable"), "{reason}"),
        other @ Outcome::Submitted { .. } => panic!("served an unavailable dataset: {other:?}"),
    }
    assert_eq!(view.order_status(order).await.unwrap(), OrderStatus::Open);
    assert_eq!(view.order_work(order).await.unwrap().worker, None);

    // Its own order: the market would refuse it as the worker, so it does not even try.
    place(&agent.client, "own params").await;
    let registered = sent().await;
    match worker.serve(U256::from(2)).await.unwrap() {
        Outcome::Skipped(reason) => assert!(reason.contains("party"), "{reason}"),
        other @ Outcome::Submitted { .. } => panic!("worked its own order: {other:?}"),
    }
    assert_eq!(
        view.order_status(U256::from(2)).await.unwrap(),
        OrderStatus::Open
    );

    advance_time(&agent.client, 7201).await;
    match worker.serve(order).await.unwrap() {
        Outcome::Skipped(reason) => assert!(reason.contains("deadline"), "{reason}"),
        other @ Outcome::Submitted { .. } => panic!("served an expired order: {other:?}"),
    }
    assert_eq!(view.order_status(order).await.unwrap(), OrderStatus::Open);
    assert_eq!(sent().await, registered, "no claim was ever sent");
}
