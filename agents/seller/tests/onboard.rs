//! An onboarding that stops half way is finished later, each transaction sent once: the book
//! records the dataset as pending before the first transaction, and `finish_pending` completes
//! the registration and the proof set through the onboarding journal. Real devchain over HTTP,
//! real contract WASM.

mod common;

use std::path::Path;

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use common::{chain, deployed, pending};
use datacloud_agent_core::bindings::{IDatasetRegistry, IProofManager};
use datacloud_agent_core::{ActionJournal, ActionKey, Protocol};
use datacloud_query::template::template_hash;
use datacloud_seller::{PendingDataset, SellerBook, finish_pending};
use tokio_util::sync::CancellationToken;

fn save_pending(dir: &Path, p: &PendingDataset) {
    let mut book = SellerBook::load(dir).unwrap();
    book.pending.push(p.clone());
    book.save(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // two interruptions, each finished and checked
async fn an_interrupted_onboarding_is_finished_once() {
    let stop = CancellationToken::new();
    let (url, keys) = chain(&stop).await;
    let dir = tempfile::tempdir().unwrap();
    let (_config, client, deployments) = deployed(&url, dir.path(), keys[0].1).await;
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
    let set = Protocol::new(&client, &deployments)
        .proof_set(U256::from(owned.set_id))
        .await
        .unwrap();
    assert_eq!(
        set.dataset_id,
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

    // 2. Stopped after the registration: its transaction is in the onboarding journal, the
    //    proof set was never sent (the registration is replayed here through the journal, as
    //    `finish_pending` would have sent it).
    let b = pending(dir.path(), "b");
    save_pending(dir.path(), &b);
    {
        let journal =
            ActionJournal::open(&dir.path().join("seller").join("onboard.journal.redb")).unwrap();
        let id = U256::from_be_bytes(keccak256(b.manifest_cid.as_bytes()).0);
        let manifest: cid::Cid = b.manifest_cid.parse().unwrap();
        let piece: cid::Cid = b.piece_cid.parse().unwrap();
        let hashes: Vec<B256> = b
            .templates
            .iter()
            .map(|t| B256::from(template_hash(t)))
            .collect();
        let register = registry
            .registerDataset(
                Bytes::from(manifest.to_bytes()),
                Bytes::from(piece.to_bytes()),
                b.schema_hash,
                hashes.clone(),
                vec![b.price; hashes.len()],
                b.privacy_budget,
                b.sample_epsilon,
            )
            .value(b.stake)
            .from(client.address())
            .into_transaction_request();
        let outcome = journal
            .perform(&client, &ActionKey::new(id, "register"), register)
            .await
            .unwrap();
        assert!(outcome.success);
    }
    let before = nonce().await;
    let book = SellerBook::load(dir.path()).unwrap();
    assert_eq!(book.pending.len(), 1);
    assert_eq!(book.datasets.len(), 1);
    // What a restart finds: the registration is not sent again.
    let done = finish_pending(&client, &deployments, dir.path())
        .await
        .unwrap();
    assert_eq!(nonce().await, before + 1, "only the proof set is sent");
    assert_eq!(done.len(), 1);
    assert_ne!(done[0].dataset_id, owned.dataset_id);
    let book = SellerBook::load(dir.path()).unwrap();
    assert!(book.pending.is_empty());
    assert_eq!(book.datasets.len(), 2);
    stop.cancel();
}
