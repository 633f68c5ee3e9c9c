//! A worker whose result does not match its attestation is disputed, once: the seller posts a
//! dispute bond instead of delivering, two verifiers drawn by the market answer with the result
//! they computed, and the worker is slashed while the order reopens. Two faults, both facts
//! about the bytes under the attested CID: they do not hash to the attested hash; they hash right
//! but are not an answer to the order's plan. A third is disputed too, with nothing released: a
//! well-formed result that does not decrypt to the plan's computation on the seller's rows.
//! Real devchain over HTTP, real contract WASM.

mod common;

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider as _;
use common::{ETHER, chain, config, deployed, pending};
use datacloud_agent_core::bindings::{IDisputeGame, IQueryMarket};
use datacloud_agent_core::testing::HandWorker;
use datacloud_agent_core::{Agent, ChainClient, OrderRetry, OrderStatus, Protocol};
use datacloud_fhe_query::eval::EncryptedGroup;
use datacloud_fhe_query::{EncryptedResult, EvaluationKey, SellerKey, save_rows};
use datacloud_query::template::{Query, template_hash};
use datacloud_seller::{Seller, SellerBook, SellerNews, SellerOptions, finish_pending};
use datacloud_store::Blockstore;
use datacloud_store::gateway::{Client as GatewayClient, ClientConfig};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story: a market, a seller, a worker, two disputes, a poison order
async fn a_result_that_does_not_match_its_attestation_slashes_the_worker_once_and_a_poison_order_is_given_up()
 {
    let stop = CancellationToken::new();
    let (url, keys) = chain(&stop).await;
    let dir = tempfile::tempdir().unwrap();
    let seller_dir = dir.path().join("seller");
    let (seller_config, seller_client, deployments) = deployed(&url, &seller_dir, keys[0].1).await;
    let market = IQueryMarket::new(deployments.query_market, seller_client.provider());

    // A registered dataset in the seller's book.
    std::fs::create_dir_all(&seller_dir).unwrap();
    let mut book = SellerBook::load(&seller_dir).unwrap();
    // A real client key and the seller's plaintext rows (the 4 rows `pending` lays out).
    let mut bank = pending(&seller_dir, "bank-a");
    let key = SellerKey::generate();
    key.save(&bank.client_key).unwrap();
    let rows = seller_dir.join("bank-a.rows");
    save_rows(&datacloud_query::synth::generate(4, 1), &rows, None).unwrap();
    bank.rows = Some(rows);
    book.pending.push(bank);
    book.save(&seller_dir).unwrap();
    let dataset = finish_pending(&seller_client, &deployments, &seller_dir)
        .await
        .unwrap()
        .remove(0);
    let layout = SellerBook::load(&seller_dir)
        .unwrap()
        .get(dataset.dataset_id)
        .unwrap()
        .layout
        .clone();

    // A buyer and a bonded worker.
    let buyer = ChainClient::connect(&config(&url, &dir.path().join("buyer"), keys[1].1))
        .await
        .unwrap();
    let worker = HandWorker::connect(&url, &dir.path().join("worker"), keys[2].1).await;
    // Two bonded verifiers, neither a party to the orders.
    let mut verifiers = Vec::new();
    for key in [keys[3].1, keys[4].1] {
        let verifier = HandWorker::connect(&url, &dir.path().join("verifier"), key).await;
        verifier.bond(&deployments).await;
        verifiers.push(verifier.client);
    }
    let bond = Protocol::new(&worker.client, &deployments)
        .market_config()
        .await
        .unwrap()
        .min_worker_bond;
    let top_up = || async {
        worker.bond(&deployments).await;
    };

    // The seller's side: its store holds what the worker published, and the order parameters.
    let store = Arc::new(Blockstore::open(seller_dir.join("store")).unwrap());
    let query = Query::from_params(
        "cohort_stats",
        &[
            ("aggregates".to_owned(), "count,avg".to_owned()),
            ("measure".to_owned(), "amount".to_owned()),
        ],
        &layout.schema,
    )
    .unwrap();
    store
        .put(&datacloud_package::params_block(&query).unwrap())
        .unwrap();
    let place = || async {
        let m = IQueryMarket::new(deployments.query_market, buyer.provider());
        let price = U256::from(ETHER / 20);
        let fee = buyer.view("config", &m.config()).await.unwrap()._3;
        let head = buyer
            .provider()
            .get_block(alloy::eips::BlockId::latest())
            .await
            .unwrap()
            .unwrap();
        let call = m
            .placeOrder(
                U256::from(dataset.dataset_id),
                B256::from(template_hash("cohort_stats")),
                B256::from(query.params_hash()),
                Bytes::from(vec![7u8; 32]),
                head.header.timestamp + 7200,
                0,
                1_000_000,
            )
            .value(price + fee)
            .from(buyer.address());
        let id = buyer.view("placeOrder", &call).await.unwrap();
        buyer
            .send("placeOrder", call.into_transaction_request())
            .await
            .unwrap();
        (id, price + fee)
    };

    let agent = Agent::connect(seller_config, "seller", stop.clone())
        .await
        .unwrap();
    let (news, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let gateways = GatewayClient::new(["http://127.0.0.1:9"], ClientConfig::default()).unwrap();
    let options = SellerOptions {
        prove: false,
        retry: OrderRetry {
            attempts: 2,
            first_backoff: std::time::Duration::from_millis(10),
            max_backoff: std::time::Duration::from_millis(20),
        },
        ..SellerOptions::default()
    };
    let seller = Seller::new(&agent, store.clone(), gateways, options, Some(news));
    let seller_nonce = || async {
        seller_client
            .provider()
            .get_transaction_count(seller_client.address())
            .await
            .unwrap()
    };
    let payout = |who: Address| {
        let market = &market;
        let client = &seller_client;
        async move {
            client
                .view("payoutOf", &market.payoutOf(who))
                .await
                .unwrap()
        }
    };

    // 1. Bytes that do not hash to the attested hash; 2. bytes that hash right but are no
    //    answer to the plan. The worker tops its bond up again before each order.
    let cases: [(&[u8], Option<B256>, &str); 2] = [
        (
            b"an encrypted result",
            Some(keccak256(b"something else")),
            "hashes to",
        ),
        (b"not a ciphertext", None, "not an answer"),
    ];
    let view = Protocol::new(&seller_client, &deployments);
    for (bytes, attested, why) in cases {
        top_up().await;
        let (order, _) = place().await;
        let published = datacloud_package::store_file(&store, bytes, true).unwrap();
        let hash = attested.unwrap_or_else(|| keccak256(bytes));
        worker.submit(&deployments, order, &published, hash).await;
        let before = payout(seller_client.address()).await;
        let nonce = seller_nonce().await;
        assert!(seller.deliver(order).await.unwrap().is_none());
        assert_eq!(seller_nonce().await, nonce + 1, "one dispute");
        match heard.try_recv().unwrap() {
            SellerNews::Disputed { order_id, reason } => {
                assert_eq!(order_id, order);
                assert!(reason.contains(why), "{reason}");
            }
            _ => panic!("order {order}: no dispute"),
        }
        assert_eq!(
            view.order_status(order).await.unwrap(),
            OrderStatus::Disputed
        );
        let dispute = view.dispute(order).await.unwrap();
        assert_eq!(
            (dispute.disputer, dispute.bond, dispute.round),
            (Some(seller_client.address()), bond, 1)
        );
        // The seller's word moved nothing yet: the worker keeps its bond until two verifiers
        // agree against it. Both answer with the (same) result they computed.
        let worker_bond = || async {
            seller_client
                .view("workerBond", &market.workerBond(worker.client.address()))
                .await
                .unwrap()
        };
        assert_eq!(worker_bond().await, bond);
        let recomputed = datacloud_store::block::cid_of(datacloud_store::Codec::Raw, b"the answer");
        for round in 1..=2u8 {
            let dispute = view.dispute(order).await.unwrap();
            assert_eq!(dispute.round, round);
            let drawn = verifiers
                .iter()
                .find(|v| Some(v.address()) == dispute.verifier)
                .expect("a bonded outsider is drawn");
            // The dispute game's functions are called at the market's address.
            let m = IDisputeGame::new(deployments.query_market, drawn.provider());
            drawn
                .send(
                    "submitVerdict",
                    m.submitVerdict(
                        order,
                        Bytes::from(recomputed.to_bytes()),
                        keccak256(b"the answer"),
                    )
                    .from(drawn.address())
                    .into_transaction_request(),
                )
                .await
                .unwrap();
        }
        // Overturned: the worker lost minWorkerBond, which paid each verifier the fee; the
        // seller has its dispute bond back with the rest; the order is open for another worker.
        assert_eq!(worker_bond().await, U256::ZERO);
        let fee = view.order(order).await.unwrap().worker_fee;
        assert_eq!(
            payout(seller_client.address()).await,
            before + bond + bond - fee - fee
        );
        assert_eq!(view.order_status(order).await.unwrap(), OrderStatus::Open);
        // Again (a duplicate event, a restart): nothing more is sent.
        assert!(seller.deliver(order).await.unwrap().is_none());
        assert_eq!(seller_nonce().await, nonce + 1);
        assert!(heard.try_recv().is_err());
    }

    // 3. A result with the plan's shape, conformant blocks, published, hashed and attested
    //    right, that is not the plan's computation: trivial ciphertexts of the largest count the
    //    plan's width holds and a chosen sum, the shape of the decryption-oracle attack. The seller decrypts it, finds
    //    it differs from its own computation on its rows, releases nothing and disputes.
    top_up().await;
    let (order, _) = place().await;
    let chosen = datacloud_query::plan(&query, &layout).unwrap();
    let b = &chosen.bound;
    let sk = EvaluationKey::from_compressed(&key.server_key());
    let trivial = |value: u64, blocks: u32| -> tfhe::integer::RadixCiphertext {
        sk.integer_key()
            .create_trivial_radix(value, blocks as usize)
    };
    let forged = EncryptedResult {
        rows: 4,
        groups: vec![EncryptedGroup {
            count: trivial((1 << (2 * b.count_blocks)) - 1, b.count_blocks),
            sum: b.want_sum.then(|| trivial(123_456, b.sum_blocks)),
            squares: b.want_squares.then(|| trivial(7, b.square_blocks)),
            terms: Vec::new(),
        }],
    };
    let bytes = forged.to_bytes().unwrap();
    let published = datacloud_package::store_file(&store, &bytes, true).unwrap();
    worker
        .submit(&deployments, order, &published, keccak256(&bytes))
        .await;
    let nonce = seller_nonce().await;
    assert!(seller.deliver(order).await.unwrap().is_none());
    assert_eq!(seller_nonce().await, nonce + 1, "one dispute, no delivery");
    match heard.try_recv().unwrap() {
        SellerNews::Disputed { order_id, reason } => {
            assert_eq!(order_id, order);
            assert!(
                reason.contains("not the order's computation")
                    && reason.contains("exceeds the dataset's 4 rows"),
                "{reason}"
            );
        }
        _ => panic!("order {order}: no dispute"),
    }
    assert_eq!(
        view.order_status(order).await.unwrap(),
        OrderStatus::Disputed
    );
    assert!(
        view.order_work(order)
            .await
            .unwrap()
            .delivery_cid
            .is_empty()
    );

    // 4. A poison order: a result nobody published, so no gateway serves it. Each try fails
    //    through the order's own fault; after its tries the delivery is given up and the order
    //    refused on-chain (one transaction, no delivery): its buyer is refunded at once, and
    //    the seller is free for the next order.
    top_up().await;
    let (poisoned, _) = place().await;
    let never_published = datacloud_store::block::cid_of(datacloud_store::Codec::Raw, b"nowhere");
    worker
        .submit(
            &deployments,
            poisoned,
            &never_published,
            keccak256(b"nowhere"),
        )
        .await;
    let nonce = seller_nonce().await;
    seller.deliver_or_give_up(poisoned).await.unwrap();
    assert_eq!(
        seller_nonce().await,
        nonce + 1,
        "one refusal sent for the poisoned order, nothing delivered"
    );
    match heard.try_recv().unwrap() {
        SellerNews::GaveUp { order_id, reason } => {
            assert_eq!(order_id, poisoned);
            assert!(!reason.is_empty());
        }
        _ => panic!("order {poisoned}: not given up"),
    }
    let status = Protocol::new(&seller_client, &deployments)
        .order_status(poisoned)
        .await
        .unwrap();
    assert_eq!(
        status,
        OrderStatus::Refunded,
        "refused: the buyer need not wait"
    );
    assert!(
        view.order_work(poisoned)
            .await
            .unwrap()
            .delivery_cid
            .is_empty()
    );
    // Given up again (a restart replays the event): the journal sends nothing more.
    seller.deliver_or_give_up(poisoned).await.unwrap();
    assert_eq!(seller_nonce().await, nonce + 1);
    stop.cancel();
}
