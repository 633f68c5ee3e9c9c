//! An onboarding that stops half way is finished later, each transaction sent once: the book
//! records the dataset as pending before the first transaction, and `finish_pending` completes
//! the registration and the proof set through the onboarding journal. Real devchain over HTTP,
//! real contract WASM.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use alloy::primitives::{B256, U256, keccak256};
use alloy::providers::Provider;
use datacloud_agent_core::bindings::{IDatasetRegistry, IProofManager};
use datacloud_agent_core::{
    ChainClient, Config, ConfigOverrides, ContractsWasm, Deployments, deploy,
};
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, serve};
use datacloud_prover::{PendingDataset, SellerBook, finish_pending};
use tokio_util::sync::CancellationToken;

const ETHER: u128 = 1_000_000_000_000_000_000;

async fn chain(stop: &CancellationToken) -> String {
    let node = Node::new(ChainConfig::default(), 3).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let token = stop.clone();
    tokio::spawn(serve(listener, rpc, async move { token.cancelled().await }));
    url
}

async fn deployed(url: &str, dir: &Path) -> (Config, ChainClient, Deployments) {
    let env = HashMap::from([("DATACLOUD_POLL_INTERVAL_MS".to_owned(), "20".to_owned())]);
    let config = Config::load_from(
        None,
        &env,
        &ConfigOverrides {
            rpc_url: Some(url.to_owned()),
            data_dir: Some(dir.to_path_buf()),
            ..ConfigOverrides::default()
        },
    )
    .unwrap();
    let client = ChainClient::connect(&config).await.unwrap();
    let wasm = ContractsWasm {
        dataset_registry: datacloud_contract_artifacts::dataset_registry(),
        proof_manager: datacloud_contract_artifacts::proof_manager(),
        query_market: datacloud_contract_artifacts::query_market(),
    };
    let deployments = deploy(&client, &wasm, &config.deploy).await.unwrap();
    (config, client, deployments)
}

/// A dataset as `onboard` records it before its first transaction: a package root and a piece
/// commitment of real bytes (the chain checks CIDs and piece sizes, not the store).
fn pending(dir: &Path, name: &str) -> PendingDataset {
    let payload: Vec<u8> = (0..5000u32)
        .flat_map(|i| (i ^ 0x5a5a).to_le_bytes())
        .chain(name.bytes())
        .collect();
    let commitment = datacloud_pdp::commp(&payload).unwrap();
    let manifest = datacloud_store::block::cid_of(datacloud_store::Codec::Raw, name.as_bytes());
    let table = datacloud_fhe_query::synth::generate(4, 1);
    PendingDataset {
        name: name.into(),
        manifest_cid: manifest.to_string(),
        piece_cid: commitment.to_piece_cid_v2().to_string(),
        car: dir.join(format!("{name}.car")),
        client_key: dir.join(format!("{name}.key")),
        layout: datacloud_fhe_query::layout::header(
            &table,
            &datacloud_fhe_query::LayoutOptions::default(),
        ),
        templates: vec!["cohort_stats".into()],
        schema_hash: keccak256(b"schema"),
        price: U256::from(ETHER / 20),
        stake: U256::from(ETHER),
        piece_root: B256::from(commitment.root()),
        piece_leaves: commitment.size().leaf_count(),
    }
}

fn save_pending(dir: &Path, p: &PendingDataset) {
    let mut book = SellerBook::load(dir).unwrap();
    book.pending.push(p.clone());
    book.save(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_onboarding_is_finished_once() {
    let stop = CancellationToken::new();
    let url = chain(&stop).await;
    let dir = tempfile::tempdir().unwrap();
    let (_config, client, deployments) = deployed(&url, dir.path()).await;
    let registry = IDatasetRegistry::new(deployments.dataset_registry, client.provider());
    let proofs = IProofManager::new(deployments.proof_manager, client.provider());
    let nonce = || async {
        client
            .provider()
            .get_transaction_count(client.address())
            .await
            .unwrap()
    };

    // 1. Stopped before any transaction: both are sent, the book moves it to its datasets.
    let a = pending(dir.path(), "a");
    save_pending(dir.path(), &a);
    let before = nonce().await;
    let done = finish_pending(&client, &deployments, dir.path())
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(nonce().await, before + 2, "register + createProofSet");
    let book = SellerBook::load(dir.path()).unwrap();
    assert!(book.pending.is_empty());
    let owned = book.get(done[0].dataset_id).unwrap();
    assert_eq!(owned.manifest_cid, a.manifest_cid);
    let set = client
        .view("proofSet", &proofs.proofSet(U256::from(owned.set_id)))
        .await
        .unwrap();
    assert_eq!(
        set._0,
        U256::from(owned.dataset_id),
        "the proof set is the dataset's"
    );
    let registered_by = client
        .view(
            "datasetOwner",
            &registry.datasetOwner(U256::from(owned.dataset_id)),
        )
        .await
        .unwrap();
    assert_eq!(registered_by, client.address());
    let proof_set = client
        .view(
            "proofSetOf",
            &proofs.proofSetOf(U256::from(owned.dataset_id)),
        )
        .await
        .unwrap();
    assert_eq!(proof_set, U256::from(owned.set_id));

    // Again: nothing pending, nothing sent.
    assert!(
        finish_pending(&client, &deployments, dir.path())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(nonce().await, before + 2);

    // 2. Stopped after the registration: the proof set step fails (here: a piece the contract
    //    refuses), the dataset stays pending with its registration journaled.
    let mut b = pending(dir.path(), "b");
    let leaves = b.piece_leaves;
    b.piece_leaves = 0;
    save_pending(dir.path(), &b);
    let before = nonce().await;
    assert!(
        finish_pending(&client, &deployments, dir.path())
            .await
            .is_err()
    );
    assert_eq!(
        nonce().await,
        before + 1,
        "registered; the proof set reverted at estimation"
    );
    let mut book = SellerBook::load(dir.path()).unwrap();
    assert_eq!(book.pending.len(), 1);
    assert_eq!(book.datasets.len(), 1);
    // What a restart finds (with the piece fixed): the registration is not sent again.
    book.pending[0].piece_leaves = leaves;
    book.save(dir.path()).unwrap();
    let done = finish_pending(&client, &deployments, dir.path())
        .await
        .unwrap();
    assert_eq!(nonce().await, before + 2, "only the proof set is sent");
    assert_eq!(done.len(), 1);
    assert_ne!(done[0].dataset_id, owned.dataset_id);
    let book = SellerBook::load(dir.path()).unwrap();
    assert!(book.pending.is_empty());
    assert_eq!(book.datasets.len(), 2);
    stop.cancel();
}
