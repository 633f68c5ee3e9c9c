//! The whole order lifecycle over JSON-RPC, as a dApp would drive it: alloy (HTTP provider with
//! local signers) deploys and activates the real WASM of all three contracts, initializes them,
//! and then mirrors `contracts/test-host/tests/journey.rs` on the devchain's blocks:
//!
//! - a seller registers a dataset, opens the proof set over its registered piece, and proves it with
//!   challenges drawn from the challenge epoch's block hash as the chain reports it;
//! - a buyer orders, a worker claims and signs the EIP-712 attestation, the seller delivers, the
//!   market settles and the seller withdraws exactly its payout (less the gas it paid);
//! - a second order passes its deadline and its buyer takes the escrow back;
//! - a dataset whose proving deadline passed is Degraded: delivery fails the order and the buyer
//!   gets the escrow back;
//! - a custom error (`PaymentTooLow`) decodes from a reverting `eth_call`.
//!
//! Needs the contract WASM: run `scripts/contracts build` first.

mod common;

use std::sync::Arc;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256, address, keccak256},
    providers::{Provider, ProviderBuilder},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::{Signer, local::PrivateKeySigner},
    sol,
    sol_types::{SolError, SolStruct as _},
};
use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, precompiles, program, serve};
use datacloud_pdp::{MerkleTree, PieceIndex, answer_challenges};

// `registerDataset` takes the ABI's seven parameters.
#[allow(clippy::too_many_arguments)]
mod registry_abi {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        "../../contracts/dataset-registry/abi/IDatasetRegistry.sol"
    );
}
use registry_abi::IDatasetRegistry;
// `initialize` takes the ABI's seven parameters.
#[allow(clippy::too_many_arguments)]
mod proof_manager_abi {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        "../../contracts/proof-manager/abi/IProofManager.sol"
    );
}
use proof_manager_abi::IProofManager;
// `initialize` and `placeOrder` take the ABI's parameters.
#[allow(clippy::too_many_arguments)]
mod query_market_abi {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        "../../contracts/query-market/abi/IQueryMarket.sol"
    );
}
use query_market_abi::IQueryMarket;
sol!(
    #[sol(rpc, all_derives)]
    "../../contracts/dispute-game/abi/IDisputeGame.sol"
);
sol! {
    #[sol(rpc)]
    interface ArbWasm {
        function activateProgram(address program) external payable returns (uint16 version, uint256 dataFee);
    }
}

const ETHER: u128 = 1_000_000_000_000_000_000;
const HEALTHY: u8 = 1;
const DEGRADED: u8 = 2;
const STATUS_FAILED: u8 = 5;
const STATUS_REFUNDED: u8 = 6;
const PROVING_PERIOD: u64 = 100;
const CHALLENGE_FINALITY: u64 = 2;

fn ether(milli: u64) -> U256 {
    U256::from(u128::from(milli) * ETHER / 1000)
}

/// Sends a contract call (from the account its builder names), fetches the receipt of the
/// automined transaction and checks that it succeeded; a revert panics with its data.
macro_rules! mined {
    ($provider:expr, $call:expr, $what:literal) => {{
        let pending = match $call.send().await {
            Ok(pending) => pending,
            Err(err) => panic!(
                "{} failed: {err}; revert data {:?}",
                $what,
                err.as_revert_data()
            ),
        };
        receipt($provider, *pending.tx_hash(), $what).await
    }};
}

async fn receipt(provider: &impl Provider, hash: B256, what: &str) -> TransactionReceipt {
    let receipt = provider
        .get_transaction_receipt(hash)
        .await
        .expect("receipt rpc")
        .unwrap_or_else(|| panic!("{what}: no receipt"));
    assert!(receipt.status(), "{what}: status 0");
    receipt
}

/// Deploys `wasm` with a signed CREATE whose init code is the stylus-tools prelude and activates
/// it through `ArbWasm` (overpaying: the excess is refunded).
async fn deploy_and_activate(provider: &impl Provider, wasm: &[u8]) -> Address {
    let init = program::deployment_init_code(&program::wrap(wasm).expect("wrap"));
    let deploy = TransactionRequest::default().with_deploy_code(Bytes::from(init));
    let hash = *provider
        .send_transaction(deploy)
        .await
        .expect("deploy")
        .tx_hash();
    let address = receipt(provider, hash, "deploy")
        .await
        .contract_address
        .expect("contract address");
    let arb_wasm = ArbWasm::new(precompiles::ARB_WASM, provider);
    mined!(
        provider,
        arb_wasm.activateProgram(address).value(ether(1000)),
        "activateProgram"
    );
    address
}

async fn mine(provider: &impl Provider, blocks: u64) {
    for _ in 0..blocks {
        let _: String = provider
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
    }
}

async fn head(provider: &impl Provider) -> (u64, u64) {
    let number = provider.get_block_number().await.expect("block number");
    let block = provider
        .get_block_by_number(number.into())
        .await
        .expect("block rpc")
        .expect("head");
    (block.header.number, block.header.timestamp)
}

/// Pieces of `1 << height` fr32-valid leaves each, as journey.rs builds them.
fn pieces(seed: u8, heights: &[u32]) -> Vec<MerkleTree> {
    heights
        .iter()
        .enumerate()
        .map(|(p, &h)| {
            let leaves = (0..1u64 << h)
                .map(|i| {
                    keccak256([&[seed, u8::try_from(p).unwrap()][..], &i.to_be_bytes()].concat()).0
                })
                .map(|mut leaf| {
                    leaf[31] &= 0x3F; // fr32-padded data: every leaf is a field element
                    leaf
                })
                .collect();
            MerkleTree::new(leaves)
        })
        .collect()
}

struct Deployment<P> {
    provider: P,
    registry: Address,
    proofs: Address,
    market: Address,
    seller: Address,
    /// The seller's key: it signs its deliveries.
    seller_key: PrivateKeySigner,
    buyer: Address,
    worker: PrivateKeySigner,
}

impl<P: Provider> Deployment<P> {
    fn registry(&self) -> IDatasetRegistry::IDatasetRegistryInstance<&P> {
        IDatasetRegistry::new(self.registry, &self.provider)
    }

    fn proofs(&self) -> IProofManager::IProofManagerInstance<&P> {
        IProofManager::new(self.proofs, &self.provider)
    }

    fn market(&self) -> IQueryMarket::IQueryMarketInstance<&P> {
        IQueryMarket::new(self.market, &self.provider)
    }

    /// The dispute game's functions, at the market's address (it delegate-calls the game).
    fn game(&self) -> IDisputeGame::IDisputeGameInstance<&P> {
        IDisputeGame::new(self.market, &self.provider)
    }

    async fn health(&self, dataset: U256) -> u8 {
        self.proofs().health(dataset).call().await.expect("health")
    }

    async fn payout(&self, of: Address) -> U256 {
        self.market().payoutOf(of).call().await.expect("payoutOf")
    }

    /// `of`'s payout at the registry (slashes and compensation).
    async fn registry_payout(&self, of: Address) -> U256 {
        self.registry().payoutOf(of).call().await.expect("payoutOf")
    }

    async fn status(&self, order: U256) -> u8 {
        self.market().order(order).call().await.expect("order")._9
    }

    /// Registers a dataset with a 2-ether stake under its piece's PieceCID and opens its proof
    /// set (over that piece: the proof manager reads it from the registry).
    async fn onboard(&self, trees: &[MerkleTree]) -> (U256, U256) {
        let [piece] = trees else {
            panic!("a dataset registers one piece")
        };
        let registry = self.registry();
        let register = registry
            .registerDataset(
                Bytes::from_static(b"\x01\x71\x12\x20manifest-cid-bytes"),
                Bytes::from(piece.piece_cid_v2().expect("a piece").to_bytes()),
                keccak256("schema"),
                vec![keccak256("cohort_stats/1"), keccak256("fraud_model/1")],
                vec![ether(50), ether(100)],
                10_000_000,
                1_000_000,
            )
            .value(ether(2000))
            .from(self.seller);
        let dataset = register.call().await.expect("registerDataset (eth_call)");
        mined!(&self.provider, register, "registerDataset");
        assert_eq!(
            registry.stakeOf(dataset).call().await.expect("stakeOf"),
            ether(2000)
        );

        let proofs = self.proofs();
        let create = proofs.createProofSet(dataset).from(self.seller);
        let set = create.call().await.expect("createProofSet (eth_call)");
        mined!(&self.provider, create, "createProofSet");
        (dataset, set)
    }

    /// Opens a proving period, mines past its epoch, and proves it from the epoch's block hash
    /// as `eth_getBlockByNumber` reports it. Returns the receipt of `provePossession`.
    async fn prove(&self, set: U256, trees: &[MerkleTree]) -> TransactionReceipt {
        let proofs = self.proofs();
        let next = proofs.nextProvingPeriod(set).from(self.seller);
        let receipt = mined!(&self.provider, next, "nextProvingPeriod");
        let opened_in = receipt.block_number.expect("block number");
        let epoch = proofs.proofSet(set).call().await.expect("proofSet")._3;
        assert_eq!(epoch, opened_in + CHALLENGE_FINALITY);
        mine(&self.provider, CHALLENGE_FINALITY + 1).await;
        assert!(head(&self.provider).await.0 > epoch);

        let seed = self
            .provider
            .get_block_by_number(epoch.into())
            .await
            .expect("block rpc")
            .expect("epoch block")
            .header
            .hash
            .0;
        let counts: Vec<u64> = trees.iter().map(MerkleTree::leaf_count).collect();
        let index = PieceIndex::new(&counts).unwrap();
        assert_eq!(
            proofs
                .challengeRange(set)
                .call()
                .await
                .expect("challengeRange"),
            index.total_leaves()
        );
        let (leaves, paths) = answer_challenges(trees, &seed, set, 5).unwrap();
        let leaves: Vec<B256> = leaves.into_iter().map(B256::from).collect();
        let paths: Vec<Vec<B256>> = paths
            .into_iter()
            .map(|path| path.into_iter().map(B256::from).collect())
            .collect();
        // Anyone may submit the proof: the buyer does here.
        let prove = proofs.provePossession(set, leaves, paths).from(self.buyer);
        let receipt = mined!(&self.provider, prove, "provePossession");
        assert_eq!(
            proofs
                .lastProvenBlock(set)
                .call()
                .await
                .expect("lastProvenBlock"),
            receipt.block_number.expect("block number")
        );
        receipt
    }

    /// Places an order for `cohort_stats/1` paying price + fee exactly, due `lifetime` seconds
    /// from the head's timestamp. Returns the order id and the receipt.
    async fn place_order(&self, dataset: U256, lifetime: u64) -> (U256, TransactionReceipt) {
        let deadline = head(&self.provider).await.1 + lifetime;
        let market = self.market();
        let place = market
            .placeOrder(
                dataset,
                keccak256("cohort_stats/1"),
                keccak256("region = APAC, last 90 days"),
                Bytes::from_static(&[0x42; 32]),
                deadline,
                0,
                1_000_000,
            )
            .value(ether(60))
            .from(self.buyer);
        let order = place.call().await.expect("placeOrder (eth_call)");
        let receipt = mined!(&self.provider, place, "placeOrder");
        assert_eq!(
            market.ownerOf(order).call().await.expect("ownerOf"),
            self.buyer,
            "the buyer holds the receipt"
        );
        (order, receipt)
    }

    /// The worker (bonded once) claims `order` and submits a result with a signed attestation;
    /// the `submitResult` receipt.
    async fn compute(&self, order: U256) -> TransactionReceipt {
        let market = self.market();
        let worker = self.worker.address();
        if market
            .workerBond(worker)
            .call()
            .await
            .expect("workerBond")
            .is_zero()
        {
            mined!(
                &self.provider,
                market.registerWorker().value(ether(500)).from(worker),
                "registerWorker"
            );
        }
        mined!(
            &self.provider,
            market.claimOrder(order).from(worker),
            "claimOrder"
        );
        let result_hash = keccak256("encrypted result");
        let terms = market.order(order).call().await.expect("order");
        let chain_id = self.provider.get_chain_id().await.expect("chain id");
        let digest = IQueryMarket::Attestation {
            orderId: order,
            datasetId: terms._0,
            manifestHash: terms._4,
            templateHash: terms._2,
            paramsHash: terms._3,
            resultHash: result_hash,
        }
        .eip712_signing_hash(&common::market_domain(chain_id, self.market));
        let signature = self.worker.sign_hash(&digest).await.expect("sign");
        // r ‖ s ‖ v with v = 27 + y-parity, as the market's ecrecover expects.
        let bytes = signature.as_bytes().to_vec();
        assert_eq!(
            signature.recover_address_from_prehash(&digest).unwrap(),
            worker
        );
        mined!(
            &self.provider,
            market
                .submitResult(
                    order,
                    Bytes::from_static(b"\x01\x55\x12\x20result"),
                    result_hash,
                    Bytes::from(bytes),
                )
                .from(worker),
            "submitResult"
        )
    }

    /// The seller delivers a sealed table for the order's result, with its EIP-712 signature
    /// over what it delivers.
    async fn deliver(&self, order: U256) -> TransactionReceipt {
        let delivery_cid = Bytes::from_static(b"\x01\x55\x12\x20delivery");
        let market = self.market();
        let result_hash = market.orderWork(order).call().await.expect("orderWork")._3;
        let chain_id = self.provider.get_chain_id().await.expect("chain id");
        let digest = IQueryMarket::Delivery {
            orderId: order,
            resultHash: result_hash,
            deliveryCid: delivery_cid.clone(),
        }
        .eip712_signing_hash(&common::market_domain(chain_id, self.market));
        let signature = self.seller_key.sign_hash(&digest).await.expect("sign");
        mined!(
            &self.provider,
            market
                .deliverResult(
                    order,
                    delivery_cid,
                    Bytes::from(signature.as_bytes().to_vec())
                )
                .from(self.seller),
            "deliverResult"
        )
    }

    async fn assert_market_holds_what_it_owes(&self) {
        let market = self.market();
        let totals = market.totals().call().await.expect("totals");
        assert_eq!(
            self.provider
                .get_balance(self.market)
                .await
                .expect("balance"),
            totals._0 + totals._1 + totals._2 + totals._3
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One journey, told in order.
async fn orders_settle_refund_and_fail_over_json_rpc() {
    let node = Node::new(ChainConfig::default(), 6).expect("dev accounts");
    let keys = node.dev_keys();
    let rpc = Arc::new(Rpc::new(node, RpcConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, rpc, async {
        let _ = stopped.await;
    }));

    let signers: Vec<PrivateKeySigner> = keys
        .iter()
        .map(|(_, key)| PrivateKeySigner::from_bytes(key).expect("dev key"))
        .collect();
    // Account 0 deploys and owns the contracts; 1 sells, 2 buys, 3 computes, 4 and 5 verify.
    let mut wallet = EthereumWallet::from(signers[0].clone());
    for signer in &signers[1..] {
        wallet.register_signer(signer.clone());
    }
    let provider = ProviderBuilder::new()
        .wallet(wallet)
        .connect_http(format!("http://{address}").parse().expect("url"));

    let registry = deploy_and_activate(
        &provider,
        &common::contract_wasm("datacloud_dataset_registry"),
    )
    .await;
    let proofs =
        deploy_and_activate(&provider, &common::contract_wasm("datacloud_proof_manager")).await;
    let game =
        deploy_and_activate(&provider, &common::contract_wasm("datacloud_dispute_game")).await;
    let market =
        deploy_and_activate(&provider, &common::contract_wasm("datacloud_query_market")).await;
    let m = Deployment {
        provider,
        registry,
        proofs,
        market,
        seller: signers[1].address(),
        seller_key: signers[1].clone(),
        buyer: signers[2].address(),
        worker: signers[3].clone(),
    };

    mined!(
        &m.provider,
        m.registry().initialize(
            proofs,
            market,
            ether(1000),
            86_400,
            2,
            common::deploy_nonce(signers[0].address(), registry)
        ),
        "registry initialize"
    );
    mined!(
        &m.provider,
        m.proofs().initialize(
            registry,
            PROVING_PERIOD,
            20,
            CHALLENGE_FINALITY,
            5,
            3,
            1000,
            500,
            common::deploy_nonce(signers[0].address(), proofs)
        ),
        "proof manager initialize"
    );
    mined!(
        &m.provider,
        m.market().initialize(
            registry,
            proofs,
            ether(10),
            ether(500),
            3600,
            7 * 86_400,
            game,
            common::deploy_nonce(signers[0].address(), market)
        ),
        "market initialize"
    );

    // ----- A proven dataset is sold and the market settles -----
    let trees = pieces(1, &[6]);
    let (dataset, set) = m.onboard(&trees).await;
    assert_eq!(m.health(dataset).await, DEGRADED, "no proof yet");
    let proved = m.prove(set, &trees).await;
    assert_eq!(m.health(dataset).await, HEALTHY, "proven");

    // Too little value: PaymentTooLow decodes from the reverting eth_call.
    let deadline = head(&m.provider).await.1 + 86_400;
    let err = m
        .market()
        .placeOrder(
            dataset,
            keccak256("cohort_stats/1"),
            keccak256("region = APAC, last 90 days"),
            Bytes::from_static(&[0x42; 32]),
            deadline,
            0,
            1_000_000,
        )
        .value(ether(59))
        .from(m.buyer)
        .call()
        .await
        .expect_err("price + fee not paid");
    let revert = err.as_revert_data().expect("revert data");
    let too_low = IQueryMarket::PaymentTooLow::abi_decode(&revert).expect("PaymentTooLow");
    assert_eq!(too_low._0, ether(59));
    assert_eq!(too_low._1, ether(60));

    let (order, placed) = m.place_order(dataset, 86_400).await;
    let submitted = m.compute(order).await;
    m.assert_market_holds_what_it_owes().await;
    let buyer_payout_before = m.payout(m.buyer).await;
    let delivered = m.deliver(order).await;
    assert_eq!(m.payout(m.seller).await, ether(50));
    assert_eq!(m.payout(m.worker.address()).await, ether(10));
    assert_eq!(
        m.payout(m.buyer).await,
        buyer_payout_before,
        "exact payment: no excess"
    );
    m.assert_market_holds_what_it_owes().await;

    let before = m.provider.get_balance(m.seller).await.expect("balance");
    let withdrawn = mined!(
        &m.provider,
        m.market().withdraw().from(m.seller),
        "seller withdraw"
    );
    let gas_paid = U256::from(withdrawn.gas_used) * U256::from(withdrawn.effective_gas_price);
    let after = m.provider.get_balance(m.seller).await.expect("balance");
    assert_eq!(after + gas_paid - before, ether(50));
    assert!(m.payout(m.seller).await.is_zero());
    m.assert_market_holds_what_it_owes().await;

    eprintln!("gas used: provePossession {}", proved.gas_used);
    eprintln!("gas used: placeOrder {}", placed.gas_used);
    eprintln!("gas used: submitResult {}", submitted.gas_used);
    eprintln!("gas used: deliverResult (settled) {}", delivered.gas_used);

    // ----- An order nobody computes passes its deadline and is refunded -----
    let (late, _) = m.place_order(dataset, 3700).await;
    let Err(refused) = m.market().refund(late).from(m.buyer).call().await else {
        panic!("refund before the deadline must revert");
    };
    assert!(
        IQueryMarket::DeadlineNotPassed::abi_decode(&refused.as_revert_data().expect("data"))
            .is_ok()
    );
    let _: String = m
        .provider
        .raw_request("evm_increaseTime".into(), (3701_u64,))
        .await
        .expect("evm_increaseTime");
    mine(&m.provider, 1).await;
    let buyer_payout_before = m.payout(m.buyer).await;
    mined!(&m.provider, m.market().refund(late).from(m.buyer), "refund");
    assert_eq!(m.status(late).await, STATUS_REFUNDED);
    assert_eq!(m.payout(m.buyer).await - buyer_payout_before, ether(60));
    m.assert_market_holds_what_it_owes().await;

    // ----- A dataset whose proving deadline passed is Degraded: delivery fails the order -----
    let lapsing = pieces(2, &[4]);
    let (weak, weak_set) = m.onboard(&lapsing).await;
    m.prove(weak_set, &lapsing).await;
    assert_eq!(m.health(weak).await, HEALTHY);
    let (doomed, _) = m.place_order(weak, 86_400).await;
    m.compute(doomed).await;
    mine(&m.provider, PROVING_PERIOD + 1).await;
    assert_eq!(m.health(weak).await, DEGRADED, "deadline passed unproven");
    // A watcher records three faults: the third slashes 10 % of the stake, 5 % of that its
    // bounty and the rest reserved for the one open order's buyer.
    let watcher = signers[5].address();
    let mut slashing = None;
    for fault in 1..=3 {
        if fault > 1 {
            mine(&m.provider, PROVING_PERIOD + 1).await;
        }
        slashing = Some(mined!(
            &m.provider,
            m.proofs().recordFault(weak_set).from(watcher),
            "recordFault"
        ));
    }
    eprintln!(
        "gas used: recordFault (slash for buyers) {}",
        slashing.expect("three faults").gas_used
    );
    assert_eq!(m.registry_payout(watcher).await, ether(10));
    assert_eq!(
        m.registry()
            .reservedCompensation()
            .call()
            .await
            .expect("reservedCompensation"),
        ether(190)
    );
    let seller_before = m.payout(m.seller).await;
    let worker_before = m.payout(m.worker.address()).await;
    let buyer_payout_before = m.payout(m.buyer).await;
    let failed = m.deliver(doomed).await;
    eprintln!("gas used: deliverResult (failed) {}", failed.gas_used);
    assert_eq!(m.status(doomed).await, STATUS_FAILED);
    // The worker did its part and is paid its fee; the buyer gets the rest.
    assert_eq!(m.payout(m.seller).await, seller_before);
    assert_eq!(
        m.payout(m.worker.address()).await - worker_before,
        ether(10)
    );
    assert_eq!(m.payout(m.buyer).await - buyer_payout_before, ether(50));
    // And the registry pays the buyer its share of the slash, at most the price; the rest burns.
    assert_eq!(m.registry_payout(m.buyer).await, ether(50));
    assert_eq!(
        m.registry_payout(address!("0x000000000000000000000000000000000000dEaD"))
            .await,
        ether(140)
    );
    m.assert_market_holds_what_it_owes().await;

    // ----- A disputed result is recomputed by two drawn verifiers and overturned -----
    let (disputed, _) = m.place_order(dataset, 86_400).await;
    m.compute(disputed).await;
    for verifier in &signers[4..] {
        mined!(
            &m.provider,
            m.market()
                .registerWorker()
                .value(ether(500))
                .from(verifier.address()),
            "registerWorker (verifier)"
        );
    }
    let opened = mined!(
        &m.provider,
        m.game().dispute(disputed).value(ether(500)).from(m.seller),
        "dispute"
    );
    let mut verdicts = Vec::new();
    for round in 1..=2u8 {
        let dispute = m
            .game()
            .disputeOf(disputed)
            .call()
            .await
            .expect("disputeOf");
        assert_eq!(dispute._2, round);
        verdicts.push(mined!(
            &m.provider,
            m.game()
                .submitVerdict(
                    disputed,
                    Bytes::from_static(b"\x01\x55\x12\x20recomputed"),
                    keccak256("the recomputed result"),
                )
                .from(dispute._3),
            "submitVerdict"
        ));
    }
    assert_eq!(m.status(disputed).await, 1, "overturned: open again");
    assert!(
        m.market()
            .workerBond(m.worker.address())
            .call()
            .await
            .expect("workerBond")
            .is_zero(),
        "the worker lost minWorkerBond"
    );
    m.assert_market_holds_what_it_owes().await;
    eprintln!("gas used: dispute (draws verifier 1) {}", opened.gas_used);
    eprintln!(
        "gas used: submitVerdict (disagrees, draws verifier 2) {}",
        verdicts[0].gas_used
    );
    eprintln!(
        "gas used: submitVerdict (overturns: slash, pay, reopen) {}",
        verdicts[1].gas_used
    );

    let _ = stop.send(());
    server.await.expect("server task").expect("server");
}
