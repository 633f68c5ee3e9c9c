//! Filters over HTTP, subscriptions over WebSocket (alloy's WS provider) and interval
//! mining, against the real server.

mod common;

use std::{sync::Arc, time::Duration};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::{Provider, ProviderBuilder, WsConnect},
    rpc::types::{Filter, Log, TransactionRequest},
};
use common::{STORE_PROGRAM, store_calldata};
use datacloud_devchain::{Node, NodeConfig, Rpc, RpcConfig, serve};

/// A server on a free port; dropping the returned sender stops it.
struct Server {
    rpc: Arc<Rpc>,
    address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(node: Node, config: RpcConfig) -> Self {
        let rpc = Arc::new(Rpc::new(node, config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&rpc), async {
            let _ = stopped.await;
        }));
        Self {
            rpc,
            address,
            stop: Some(stop),
            task,
        }
    }

    fn http(&self) -> impl Provider + use<> {
        ProviderBuilder::new()
            .connect_http(format!("http://{}", self.address).parse().expect("url"))
    }

    /// Deploys and activates [`STORE_PROGRAM`] (outside blocks).
    fn deploy_store_program(&self) -> (Address, Address) {
        self.rpc.with_node(|node| {
            let from = node.accounts()[0];
            let wasm = wat::parse_str(STORE_PROGRAM).expect("wat");
            let chain = node.chain_mut();
            let program = chain.deploy(from, &wasm).expect("deploy");
            chain.activate(from, program).expect("activate");
            (from, program)
        })
    }

    async fn stop(mut self) {
        drop(self.stop.take());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops (WebSocket connections and the miner included)")
            .expect("server task")
            .expect("server io");
    }
}

fn store_request(from: Address, program: Address, slot: u64, value: u64) -> TransactionRequest {
    TransactionRequest::default()
        .with_from(from)
        .with_to(program)
        .with_input(Bytes::from(store_calldata(slot, value)))
        .with_gas_limit(1_000_000)
}

fn slot_topic(slot: u64) -> B256 {
    B256::from(U256::from(slot))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_report_new_blocks_and_logs_once_and_expire() {
    let node = Node::new(datacloud_devchain::ChainConfig::default(), 2).expect("node");
    let server = Server::start(
        node,
        RpcConfig {
            max_filters: 4,
            filter_timeout: Duration::from_secs(2),
            ..RpcConfig::default()
        },
    )
    .await;
    let (from, program) = server.deploy_store_program();
    let provider = server.http();

    let blocks = provider.new_block_filter().await.expect("block filter");
    let slot_1 = Filter::new()
        .address(program)
        .event_signature(slot_topic(1))
        .from_block(0);
    let logs = provider.new_filter(&slot_1).await.expect("log filter");
    let pending = provider
        .new_pending_transactions_filter(false)
        .await
        .expect("pending filter");
    let mut hashes = Vec::new();
    for (slot, value) in [(1, 10), (2, 20), (1, 30)] {
        let sent = provider
            .send_transaction(store_request(from, program, slot, value))
            .await
            .expect("send");
        hashes.push(*sent.tx_hash());
    }
    let new_blocks: Vec<B256> = provider.get_filter_changes(blocks).await.expect("changes");
    assert_eq!(new_blocks.len(), 3);
    for (number, hash) in (1..=3).zip(&new_blocks) {
        let block = provider
            .get_block_by_number(number.into())
            .await
            .expect("block rpc")
            .expect("block");
        assert_eq!(block.header.hash, *hash);
    }
    let new_logs: Vec<Log> = provider.get_filter_changes(logs).await.expect("changes");
    assert_eq!(new_logs.len(), 2, "only slot 1's logs match");
    assert_eq!(new_logs[0].transaction_hash, Some(hashes[0]));
    assert_eq!(new_logs[1].transaction_hash, Some(hashes[2]));
    assert_eq!(
        new_logs[1].inner.data.data.as_ref(),
        &store_calldata(1, 30)[32..]
    );
    // Reported once: the next poll is empty until something new is mined.
    let again: Vec<Log> = provider.get_filter_changes(logs).await.expect("changes");
    assert!(again.is_empty());
    let no_blocks: Vec<B256> = provider.get_filter_changes(blocks).await.expect("changes");
    assert!(no_blocks.is_empty());
    let pending_changes: Vec<B256> = provider.get_filter_changes(pending).await.expect("changes");
    assert!(pending_changes.is_empty());
    // `eth_getFilterLogs` answers the whole filter (from block 0 here) every time.
    assert_eq!(provider.get_filter_logs(logs).await.expect("logs").len(), 2);

    // The cap: three installed, one more fits, the fifth is refused.
    provider.new_block_filter().await.expect("fourth filter");
    let refused = provider.new_block_filter().await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(provider.uninstall_filter(pending).await.expect("uninstall"));
    assert!(!provider.uninstall_filter(pending).await.expect("uninstall"));
    assert!(provider.get_filter_changes::<B256>(pending).await.is_err());

    // A filter nobody polls expires.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = provider.get_filter_changes::<B256>(blocks).await;
    assert!(expired.is_err(), "{expired:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscriptions_follow_new_heads_and_matching_logs() {
    let node = Node::new(datacloud_devchain::ChainConfig::default(), 2).expect("node");
    let server = Server::start(node, RpcConfig::default()).await;
    let (from, program) = server.deploy_store_program();
    let ws = ProviderBuilder::new()
        .connect_ws(WsConnect::new(format!("ws://{}", server.address)))
        .await
        .expect("ws connect");
    assert_eq!(ws.get_chain_id().await.expect("chain id over ws"), 412_346);

    let mut heads = ws.subscribe_blocks().await.expect("newHeads");
    let slot_2 = Filter::new()
        .address(program)
        .event_signature(slot_topic(2));
    let mut logs = ws.subscribe_logs(&slot_2).await.expect("logs");
    let mut sent = Vec::new();
    for (slot, value) in [(1, 1), (2, 2), (2, 3), (3, 4)] {
        let tx = ws
            .send_transaction(store_request(from, program, slot, value))
            .await
            .expect("send over ws");
        sent.push(*tx.tx_hash());
    }
    let wait = Duration::from_secs(10);
    for number in 1..=4 {
        let head = tokio::time::timeout(wait, heads.recv())
            .await
            .expect("a head in time")
            .expect("head");
        assert_eq!(head.number, number);
        let block = ws
            .get_block_by_number(number.into())
            .await
            .expect("block")
            .expect("block");
        assert_eq!(head.hash, block.header.hash);
    }
    for (index, value) in [(1, 2_u64), (2, 3)] {
        let log = tokio::time::timeout(wait, logs.recv())
            .await
            .expect("a log in time")
            .expect("log");
        assert_eq!(log.transaction_hash, Some(sent[index]));
        assert_eq!(
            log.inner.data.data.as_ref(),
            &store_calldata(2, value)[32..]
        );
    }
    // Nothing else matched: the next log only comes from a new matching store.
    let _sent = ws
        .send_transaction(store_request(from, program, 2, 5))
        .await
        .expect("send");
    let log = tokio::time::timeout(wait, logs.recv())
        .await
        .expect("a log in time")
        .expect("log");
    assert_eq!(log.inner.data.data.as_ref(), &store_calldata(2, 5)[32..]);
    ws.unsubscribe(heads.local_id().to_owned())
        .await
        .expect("unsubscribe");
    drop(ws);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_mining_pools_transactions_into_one_block() {
    let node = Node::open(NodeConfig {
        dev_accounts: 2,
        // Long enough that only `evm_mine` seals here.
        block_time: Some(Duration::from_hours(1)),
        ..NodeConfig::default()
    })
    .expect("node");
    let server = Server::start(node, RpcConfig::default()).await;
    let (from, program) = server.deploy_store_program();
    let provider = server.http();
    let mut hashes = Vec::new();
    for value in 1..=3 {
        let sent = provider
            .send_transaction(store_request(from, program, 0, value))
            .await
            .expect("send");
        hashes.push(*sent.tx_hash());
    }
    assert_eq!(provider.get_block_number().await.expect("number"), 0);
    assert!(
        provider
            .get_transaction_receipt(hashes[0])
            .await
            .expect("receipt rpc")
            .is_none(),
        "not mined before the block is sealed"
    );
    let latest = provider
        .get_storage_at(program, U256::ZERO)
        .await
        .expect("latest");
    let pending = provider
        .get_storage_at(program, U256::ZERO)
        .pending()
        .await
        .expect("pending");
    assert_eq!(latest, U256::ZERO);
    assert_eq!(pending, U256::from(3));
    let _: String = provider
        .raw_request("evm_mine".into(), ())
        .await
        .expect("evm_mine");
    assert_eq!(provider.get_block_number().await.expect("number"), 1);
    for (index, hash) in hashes.iter().enumerate() {
        let receipt = provider
            .get_transaction_receipt(*hash)
            .await
            .expect("receipt rpc")
            .expect("receipt");
        assert_eq!(receipt.block_number, Some(1));
        assert_eq!(receipt.transaction_index, Some(index as u64));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_time_seals_blocks_on_its_own() {
    let node = Node::open(NodeConfig {
        dev_accounts: 2,
        block_time: Some(Duration::from_millis(200)),
        ..NodeConfig::default()
    })
    .expect("node");
    let server = Server::start(node, RpcConfig::default()).await;
    let (from, program) = server.deploy_store_program();
    let provider = server.http();
    let sent = provider
        .send_transaction(store_request(from, program, 0, 7))
        .await
        .expect("send");
    let receipt = tokio::time::timeout(Duration::from_secs(20), sent.get_receipt())
        .await
        .expect("mined by the block timer")
        .expect("receipt");
    assert!(receipt.status());
    let mined_in = receipt.block_number.expect("block number");
    // Empty blocks keep coming.
    tokio::time::timeout(Duration::from_secs(20), async {
        while provider.get_block_number().await.expect("number") < mined_in + 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the timer keeps sealing blocks");
    server.stop().await;
}
