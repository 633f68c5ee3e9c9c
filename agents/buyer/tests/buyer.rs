//! The buyer library against a real devchain running the contracts' WASM and a real seller node
//! (a trustless gateway that accepts `block/put`) over HTTP on 127.0.0.1.

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider as _;
use datacloud_agent_core::bindings::IDatasetRegistry;
use datacloud_agent_core::testing::{
    ETHER, HandWorker, advance_time, config, deployed, devchain, head_timestamp,
};
use datacloud_agent_core::{ChainClient, Deployments, Epsilon, Health, OrderStatus};
use datacloud_buyer::{Buyer, BuyerError, LinkState};
use datacloud_package::{MANIFEST, Manifest, Provenance, params_cid};
use datacloud_query::template::template_hash;
use datacloud_query::{LayoutOptions, Query, layout, synth};
use datacloud_store::gateway::{ClientConfig, GatewayConfig};
use datacloud_store::{Blockstore, DirectoryEntry, directory};
use tokio_util::sync::CancellationToken;

const PRICE: u128 = ETHER / 20;
/// What each test order spends of the dataset's 10 ε.
const EPSILON: Epsilon = Epsilon(Epsilon::SCALE);

/// A market with one dataset: its package (a manifest alone: listing and ordering read nothing
/// else) on a seller node, registered by dev account 0 with `cohort_stats` and `fraud_model`.
struct Market {
    _stop: CancellationToken,
    _dir: tempfile::TempDir,
    buyer: Buyer,
    seller: ChainClient,
    seller_store: Arc<Blockstore>,
    deployments: Deployments,
    /// A bonded worker (dev account 2), to submit results by hand.
    worker: HandWorker,
}

async fn market() -> Market {
    let stop = CancellationToken::new();
    let (url, keys) = devchain(&stop).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, seller, deployments) = deployed(&url, &dir.path().join("seller"), keys[0].1).await;

    let table = synth::generate(40, 3);
    let manifest = Manifest {
        name: "Bank A".into(),
        description: "card transactions".into(),
        schema: table.schema.to_toml(),
        layout: layout::header(&table, &LayoutOptions::default()),
        templates: vec!["cohort_stats".into(), "fraud_model".into()],
        encryption: "TFHE-rs".into(),
        provenance: Provenance {
            source: "synth".into(),
            rows: 40,
            chain_id: deployments.chain_id,
        },
        sample: None,
    };
    let seller_store = Arc::new(Blockstore::open(dir.path().join("seller-store")).unwrap());
    let file = seller_store
        .import_file(
            serde_json::to_vec(&manifest).unwrap().as_slice(),
            datacloud_store::DEFAULT_CHUNK_SIZE,
            true,
        )
        .unwrap();
    let (root, _) = directory(&[DirectoryEntry {
        name: MANIFEST.into(),
        cid: file.root,
        dag_size: file.dag_size,
    }])
    .unwrap();
    seller_store.put(&root).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = format!("http://{}", listener.local_addr().unwrap());
    let (served, token) = (seller_store.clone(), stop.clone());
    tokio::spawn(async move {
        datacloud_store::gateway::serve_with_config(
            listener,
            served,
            GatewayConfig {
                accept_block_put: true,
                ..GatewayConfig::default()
            },
            async move { token.cancelled().await },
        )
        .await
    });

    let piece = datacloud_pdp::commp(&[7u8; 4096])
        .unwrap()
        .to_piece_cid_v2();
    let registry = IDatasetRegistry::new(deployments.dataset_registry, seller.provider());
    let templates = ["cohort_stats", "fraud_model"].map(|t| B256::from(template_hash(t)));
    seller
        .send(
            "registerDataset",
            registry
                .registerDataset(
                    Bytes::from(root.cid().to_bytes()),
                    Bytes::from(piece.to_bytes()),
                    keccak256(manifest.schema.as_bytes()),
                    templates.to_vec(),
                    vec![U256::from(PRICE), U256::from(2 * PRICE)],
                    10 * Epsilon::SCALE,
                    0,
                )
                .value(U256::from(ETHER))
                .into_transaction_request(),
        )
        .await
        .unwrap();

    let buyer_config = config(&url, &dir.path().join("buyer"), keys[1].1);
    let buyer = Buyer {
        client: ChainClient::connect(&buyer_config).await.unwrap(),
        deployments,
        store: Arc::new(Blockstore::open(dir.path().join("buyer-store")).unwrap()),
        gateways: datacloud_store::gateway::Client::new([node], ClientConfig::default()).unwrap(),
        config: buyer_config,
    };
    let worker = HandWorker::connect(&url, &dir.path().join("worker"), keys[2].1).await;
    worker.bond(&deployments).await;
    Market {
        _stop: stop,
        _dir: dir,
        buyer,
        seller,
        seller_store,
        deployments,
        worker,
    }
}

impl Market {
    /// The worker claims `order` and submits `bytes` (published on the seller's node) attested
    /// as hashing to `hash`.
    async fn submit(&self, order: U256, bytes: &[u8], hash: B256) {
        let cid = datacloud_package::store_file(&self.seller_store, bytes, true).unwrap();
        self.worker
            .submit(&self.deployments, order, &cid, hash)
            .await;
    }
}

fn cohort_query(schema: &datacloud_query::Schema) -> Query {
    Query::from_params(
        "cohort_stats",
        &[
            ("measure".to_owned(), "amount".to_owned()),
            ("aggregates".to_owned(), "count,avg".to_owned()),
            ("group_by".to_owned(), "age_band".to_owned()),
        ],
        schema,
    )
    .unwrap()
}

async fn nonce(client: &ChainClient, who: Address) -> u64 {
    client.provider().get_transaction_count(who).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_joins_the_registry_the_verified_manifest_and_the_proof_health() {
    let m = market().await;
    let all = m.buyer.listings().await.unwrap();
    assert_eq!(all.len(), 1);
    let listing = &all[0];
    assert_eq!(
        (listing.id, listing.name.as_str(), listing.rows),
        (1, "Bank A", 40)
    );
    assert_eq!(listing.seller, m.seller.address());
    assert_eq!(
        listing.templates,
        vec![
            ("cohort_stats".to_owned(), PRICE.to_string()),
            ("fraud_model".to_owned(), (2 * PRICE).to_string()),
        ]
    );
    assert_eq!(listing.health, Health::None, "no proof set yet");
    assert_eq!(listing.last_proof_block, 0);
    assert!(listing.active);
    assert!(listing.parsed_schema().is_ok());
    // The manifest came through the gateway and was verified into the buyer's store.
    let root: cid::Cid = listing.manifest_cid.parse().unwrap();
    assert!(m.buyer.store.has(&root).unwrap());
    // An unknown dataset says which.
    let unknown = m.buyer.listing(9).await.unwrap_err();
    assert!(
        matches!(unknown, BuyerError::Dataset { id: 9, .. }),
        "{unknown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_the_dataset_does_not_allow_costs_nothing() {
    let m = market().await;
    let listing = m.buyer.listing(1).await.unwrap();
    let schema = listing.parsed_schema().unwrap();
    let histogram = Query::from_params(
        "histogram",
        &[("column".to_owned(), "amount".to_owned())],
        &schema,
    )
    .unwrap();
    let before = nonce(&m.buyer.client, m.buyer.client.address()).await;
    let refused = m
        .buyer
        .place_order(&listing, &histogram, EPSILON, None)
        .await
        .unwrap_err();
    assert!(matches!(refused, BuyerError::QueryRefused(_)), "{refused}");
    // A deadline past the market's longest order lifetime is refused by the simulation.
    let too_late = m
        .buyer
        .place_order(
            &listing,
            &cohort_query(&schema),
            EPSILON,
            Some(365 * 86_400),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(too_late, BuyerError::OrderRefused(_)),
        "{too_late}"
    );
    // One too short for a claim on the plan is refused before anything is sent, saying what
    // would do.
    let too_soon = m
        .buyer
        .place_order(&listing, &cohort_query(&schema), EPSILON, Some(600))
        .await
        .unwrap_err();
    assert!(
        matches!(too_soon, BuyerError::DeadlineTooShort { given: 600, .. }),
        "{too_soon}"
    );
    assert!(too_soon.to_string().contains("--deadline"), "{too_soon}");
    // More ε than the dataset's whole budget: refused by the market's simulation, in ε.
    assert_eq!(listing.privacy.left(), Epsilon(10 * Epsilon::SCALE));
    let greedy = m
        .buyer
        .place_order(
            &listing,
            &cohort_query(&schema),
            Epsilon(11 * Epsilon::SCALE),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(greedy, BuyerError::OrderRefused(_))
            && greedy
                .to_string()
                .contains("has ε 10 of its privacy budget left"),
        "{greedy}"
    );
    assert_eq!(
        nonce(&m.buyer.client, m.buyer.client.address()).await,
        before,
        "no transaction was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_placed_followed_and_refunded_after_its_deadline() {
    let m = market().await;
    let listing = m.buyer.listing(1).await.unwrap();
    let query = cohort_query(&listing.parsed_schema().unwrap());
    let placed = m
        .buyer
        .place_order(&listing, &query, EPSILON, None)
        .await
        .unwrap();

    // The parameters were published to the seller's node under the hash the order pays for.
    let order = datacloud_agent_core::Protocol::new(&m.seller, &m.deployments)
        .order(placed.order_id)
        .await
        .unwrap();
    assert_eq!(order.params_hash, B256::from(query.params_hash()));
    let published = params_cid(order.params_hash.0);
    assert_eq!(published.to_string(), placed.params_cid);
    assert!(m.seller_store.has(&published).unwrap());
    assert_eq!(order.escrow, placed.paid);
    // The order carries the plan's estimate, and the default deadline leaves one claim window
    // (the market's claim timeout plus the plan's time) and an hour.
    assert_eq!(order.pbs_estimate, placed.pbs_estimate);
    assert_eq!(order.deadline, placed.deadline);
    let timeout = datacloud_agent_core::Protocol::new(&m.seller, &m.deployments)
        .market_config()
        .await
        .unwrap()
        .claim_timeout;
    let window = datacloud_agent_core::claim_window(timeout, placed.pbs_estimate);
    assert!(
        placed.deadline >= head_timestamp(&m.buyer.client).await + window,
        "{placed:?}"
    );
    assert_eq!(
        placed.delivery_key,
        m.buyer.delivery_key_path(placed.order_id)
    );

    let open = m.buyer.fetch_result(placed.order_id).await.unwrap();
    assert_eq!(open.status, OrderStatus::Open);
    assert!(open.worker.is_none() && open.table.is_none());

    // Not before the deadline; after it, the escrow comes back.
    assert!(m.buyer.refund(placed.order_id).await.is_err());
    let now = head_timestamp(&m.buyer.client).await;
    advance_time(&m.buyer.client, placed.deadline - now + 1).await;
    let refund = m.buyer.refund(placed.order_id).await.unwrap();
    assert_eq!(refund.credited, placed.paid);
    let done = m
        .buyer
        .wait_result(placed.order_id, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(done.status, OrderStatus::Refunded);
    assert!(done.table.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_walks_the_evidence_and_names_the_link_that_fails() {
    let m = market().await;
    let listing = m.buyer.listing(1).await.unwrap();
    let query = cohort_query(&listing.parsed_schema().unwrap());
    let names = |v: &datacloud_buyer::Verification| -> Vec<(&'static str, LinkState)> {
        v.links.iter().map(|l| (l.name, l.state)).collect()
    };

    // Placed: the order, its manifest, its parameters and its plan hold; no result yet.
    let open = m
        .buyer
        .place_order(&listing, &query, EPSILON, None)
        .await
        .unwrap();
    let v = m.buyer.verify(open.order_id).await.unwrap();
    assert_eq!(
        names(&v),
        [
            ("order", LinkState::Ok),
            ("manifest", LinkState::Ok),
            ("params", LinkState::Ok),
            ("plan", LinkState::Ok),
            ("result", LinkState::Pending),
        ]
    );
    assert!(v.failure().is_none() && !v.complete());

    // A worker attests a hash its published bytes do not have: the result link fails, and
    // the walk stops there.
    m.submit(
        open.order_id,
        b"an encrypted result",
        keccak256(b"something else"),
    )
    .await;
    let v = m.buyer.verify(open.order_id).await.unwrap();
    let failure = v.failure().expect("a broken link");
    assert_eq!(failure.name, "result");
    assert!(
        failure.detail.contains("not to the attested"),
        "{}",
        failure.detail
    );
    assert_eq!(v.links.last().unwrap().name, "result");

    // Bytes that hash as attested but are no answer to the order's plan fail it too.
    let other = m
        .buyer
        .place_order(&listing, &query, EPSILON, None)
        .await
        .unwrap();
    m.submit(
        other.order_id,
        b"not a ciphertext",
        keccak256(b"not a ciphertext"),
    )
    .await;
    let v = m.buyer.verify(other.order_id).await.unwrap();
    let failure = v.failure().expect("a broken link");
    assert_eq!(failure.name, "result");
    assert!(
        failure.detail.contains("not an answer to the plan"),
        "{}",
        failure.detail
    );

    // An unknown order is an error, not a verification.
    assert!(m.buyer.verify(U256::from(99)).await.is_err());
}
