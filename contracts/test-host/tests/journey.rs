//! The contracts together, called only through their routers with calldata encoded from their
//! committed Solidity interfaces (`contracts/*/abi/I*.sol`), as a dApp would call them: a seller
//! registers and proves a dataset, a buyer orders, a worker attests, the seller delivers and the
//! market settles; then the same with a dataset whose proofs lapsed, which is slashed and whose
//! buyer is refunded; a wrong result disputed through the market's address (which delegate-calls
//! the dispute game) and overturned by two verifiers; then the seller winds the dataset down and
//! takes back the stake.

use alloy_primitives::{Address, B256, Bytes, U256, address, keccak256};
use alloy_sol_types::{SolCall, SolError, SolInterface, SolStruct, eip712_domain, sol};
use datacloud_contract_test_host::{Chain, Deployed, TestHost, create_address};
use datacloud_dataset_registry::DatasetRegistry;
use datacloud_dispute_game::DisputeGame;
use datacloud_pdp::{MerkleTree, answer_challenges};
use datacloud_proof_manager::ProofManager;
use datacloud_query_market::QueryMarket;
use stylus_sdk::abi::router_entrypoint;

sol!(
    #[sol(all_derives)]
    "../dataset-registry/abi/IDatasetRegistry.sol"
);
// `initialize` takes the ABI's seven parameters and an event eight fields.
#[allow(clippy::too_many_arguments)]
mod proof_manager_abi {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        "../proof-manager/abi/IProofManager.sol"
    );
}
use proof_manager_abi::IProofManager;
// `OrderPlaced` has eight fields.
#[allow(clippy::too_many_arguments)]
mod query_market_abi {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        "../query-market/abi/IQueryMarket.sol"
    );
}
use query_market_abi::IQueryMarket;
sol!(
    #[sol(all_derives)]
    "../dispute-game/abi/IDisputeGame.sol"
);

/// One ε in the contracts' micro-ε; every order here spends one.
const EPSILON: u64 = 1_000_000;
const ETHER: u128 = 1_000_000_000_000_000_000;
const OWNER: Address = address!("0x00000000000000000000000000000000000000a0");
/// The address of `seller_key()`: the seller signs its deliveries.
const SELLER: Address = address!("0xd8291e50e2e68fb2c70d77ccdc707d291a89f209");
const BUYER: Address = address!("0x00000000000000000000000000000000000000c0");
const WATCHER: Address = address!("0x00000000000000000000000000000000000000d0");
/// Where slashed stake is burned (`DatasetRegistry`'s `BURN`).
const BURN: Address = address!("0x000000000000000000000000000000000000dEaD");

fn seller_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_slice(&[0x5e; 32]).unwrap()
}

/// `r ‖ s ‖ v` (v 27/28, low s) over a prehashed digest.
fn sign(key: &k256::ecdsa::SigningKey, digest: B256) -> Bytes {
    let (sig, recid) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
    let mut signature = sig.to_bytes().to_vec();
    signature.push(27 + recid.to_byte());
    signature.into()
}

fn ether(milli: u64) -> U256 {
    U256::from(u128::from(milli) * ETHER / 1000)
}

struct Marketplace {
    chain: Chain,
    registry: Deployed,
    proofs: Deployed,
    market: Deployed,
    /// The dispute game's program at its own address (the market delegate-calls it).
    game: Deployed,
    worker_key: k256::ecdsa::SigningKey,
    worker: Address,
}

impl Marketplace {
    fn new() -> Self {
        let mut chain = Chain::new();
        let registry = chain.deploy(
            create_address(OWNER, 0),
            router_entrypoint::<DatasetRegistry, DatasetRegistry>,
        );
        let proofs = chain.deploy(
            create_address(OWNER, 1),
            router_entrypoint::<ProofManager, ProofManager>,
        );
        let market = chain.deploy(
            create_address(OWNER, 2),
            router_entrypoint::<QueryMarket, QueryMarket>,
        );
        let game = chain.deploy(
            create_address(OWNER, 3),
            router_entrypoint::<DisputeGame, DisputeGame>,
        );
        market.host().on_delegate_call(
            game.address(),
            router_entrypoint::<DisputeGame, DisputeGame>,
        );
        let worker_key = k256::ecdsa::SigningKey::from_slice(&[0x77; 32]).unwrap();
        let worker = Address::from_private_key(&worker_key);
        let m = Self {
            chain,
            registry,
            proofs,
            market,
            game,
            worker_key,
            worker,
        };
        m.ok(
            OWNER,
            &m.registry,
            0,
            IDatasetRegistry::initializeCall {
                proof_manager: m.proofs.address(),
                query_market: m.market.address(),
                min_stake: ether(1000),
                withdraw_cooldown: 86_400,
                min_piece_height: 2,
                deploy_nonce: 0,
            },
        );
        m.ok(
            OWNER,
            &m.proofs,
            0,
            IProofManager::initializeCall {
                registry: m.registry.address(),
                proving_period: 100,
                challenge_window: 20,
                challenge_finality: 2,
                challenges_per_proof: 5,
                fault_threshold: 3,
                slash_bps: 1000,
                reporter_bounty_bps: 500,
                deploy_nonce: 1,
            },
        );
        m.ok(
            OWNER,
            &m.market,
            0,
            IQueryMarket::initializeCall {
                registry: m.registry.address(),
                proof_manager: m.proofs.address(),
                worker_fee: ether(10),
                min_worker_bond: ether(500),
                claim_timeout: 3600,
                max_order_lifetime: 7 * 86_400,
                dispute_game: m.game.address(),
                deploy_nonce: 2,
            },
        );
        m
    }

    fn send<C: SolCall>(
        &self,
        from: Address,
        to: &Deployed,
        value_milli: u64,
        call: &C,
    ) -> Result<C::Return, Vec<u8>> {
        let out = self
            .chain
            .transact(from, to, ether(value_milli), &call.abi_encode())?;
        Ok(C::abi_decode_returns(&out).expect("the contract returns what its ABI says"))
    }

    // Call sites build the call inline; taking it by value keeps them short.
    #[allow(clippy::needless_pass_by_value)]
    fn ok<C: SolCall>(&self, from: Address, to: &Deployed, value_milli: u64, call: C) -> C::Return {
        match self.send(from, to, value_milli, &call) {
            Ok(out) => out,
            Err(revert) => panic!(
                "{} reverted: 0x{}",
                C::SIGNATURE,
                alloy_primitives::hex::encode(revert)
            ),
        }
    }

    fn health(&self, dataset: U256) -> u8 {
        self.ok(
            WATCHER,
            &self.proofs,
            0,
            IProofManager::healthCall {
                dataset_id: dataset,
            },
        )
    }

    /// Registers a dataset under its piece's real PieceCID and opens its proof set (over that
    /// piece: the proof manager reads it from the registry).
    fn onboard(&self, pieces: &[MerkleTree]) -> (U256, U256) {
        let [piece] = pieces else {
            panic!("a dataset registers one piece")
        };
        let dataset = self.ok(
            SELLER,
            &self.registry,
            2000,
            IDatasetRegistry::registerDatasetCall {
                manifest_cid: Bytes::from_static(b"\x01\x71\x12\x20manifest-cid-bytes"),
                piece_cid: Bytes::from(piece.piece_cid_v2().unwrap().to_bytes()),
                schema_hash: keccak256("schema"),
                template_hashes: vec![keccak256("cohort_stats/1"), keccak256("fraud_model/1")],
                prices: vec![ether(50), ether(100)],
                privacy_budget: 10 * EPSILON,
                sample_epsilon: EPSILON,
            },
        );
        let set = self.ok(
            SELLER,
            &self.proofs,
            0,
            IProofManager::createProofSetCall {
                dataset_id: dataset,
            },
        );
        (dataset, set)
    }

    /// Opens a proving period and answers it the way the prover agent will.
    fn prove(&self, set: U256, pieces: &[MerkleTree]) {
        let epoch = self.ok(
            SELLER,
            &self.proofs,
            0,
            IProofManager::nextProvingPeriodCall { set_id: set },
        );
        self.chain.advance(3, 36);
        let seed = TestHost::block_hash(epoch).0;
        let (leaves, proofs) = answer_challenges(pieces, &seed, set, 5).unwrap();
        let leaves = leaves.into_iter().map(B256::from).collect();
        let proofs = proofs
            .into_iter()
            .map(|path| path.into_iter().map(B256::from).collect())
            .collect();
        self.ok(
            WATCHER,
            &self.proofs,
            0,
            IProofManager::provePossessionCall {
                set_id: set,
                leaves,
                proofs,
            },
        );
    }

    /// Places an order, lets the worker claim it and submit a signed result.
    fn order_and_compute(&self, dataset: U256) -> U256 {
        let deadline = self.market.host().vm().block_timestamp_now() + 86_400;
        let order = self.ok(
            BUYER,
            &self.market,
            70, // price 50 + fee 10, and 10 too much: refunded at settlement
            IQueryMarket::placeOrderCall {
                dataset_id: dataset,
                template_hash: keccak256("cohort_stats/1"),
                params_hash: keccak256("region = APAC, last 90 days"),
                buyer_key: Bytes::from_static(&[0x42; 32]),
                deadline,
                pbs_estimate: 0,
                epsilon: EPSILON,
            },
        );
        if self
            .ok(
                WATCHER,
                &self.market,
                0,
                IQueryMarket::workerBondCall {
                    worker: self.worker,
                },
            )
            .is_zero()
        {
            self.ok(
                self.worker,
                &self.market,
                500,
                IQueryMarket::registerWorkerCall {},
            );
        }
        self.ok(
            self.worker,
            &self.market,
            0,
            IQueryMarket::claimOrderCall { order_id: order },
        );
        let result_hash = keccak256("encrypted result");
        // The worker computes what it signs from the order's terms (the market exports no digest).
        let terms = self.ok(
            WATCHER,
            &self.market,
            0,
            IQueryMarket::orderCall { order_id: order },
        );
        let digest = IQueryMarket::Attestation {
            orderId: order,
            datasetId: terms._0,
            manifestHash: terms._4,
            templateHash: terms._2,
            paramsHash: terms._3,
            resultHash: result_hash,
        }
        .eip712_signing_hash(&self.domain());
        let signature = sign(&self.worker_key, digest);
        self.ok(
            self.worker,
            &self.market,
            0,
            IQueryMarket::submitResultCall {
                order_id: order,
                result_cid: Bytes::from_static(b"\x01\x55\x12\x20result"),
                result_hash,
                signature,
            },
        );
        order
    }

    /// The market's EIP-712 domain.
    fn domain(&self) -> alloy_sol_types::Eip712Domain {
        eip712_domain! {
            name: "DataCloud QueryMarket",
            version: "1",
            chain_id: stylus_sdk::stylus_core::ChainAccess::chain_id(self.market.host().vm()),
            verifying_contract: self.market.address(),
        }
    }

    /// The seller delivers a sealed table for the order's result, signing what it delivers.
    fn deliver(&self, order: U256) {
        let delivery_cid = Bytes::from_static(b"\x01\x55\x12\x20delivery");
        let work = self.ok(
            WATCHER,
            &self.market,
            0,
            IQueryMarket::orderWorkCall { order_id: order },
        );
        let digest = IQueryMarket::Delivery {
            orderId: order,
            resultHash: work._3,
            deliveryCid: delivery_cid.clone(),
        }
        .eip712_signing_hash(&self.domain());
        self.ok(
            SELLER,
            &self.market,
            0,
            IQueryMarket::deliverResultCall {
                order_id: order,
                delivery_cid,
                signature: sign(&seller_key(), digest),
            },
        );
    }

    /// `of`'s payout in the registry (slashed stake credited to it).
    fn registry_payout(&self, of: Address) -> U256 {
        self.ok(
            WATCHER,
            &self.registry,
            0,
            IDatasetRegistry::payoutOfCall { account: of },
        )
    }

    fn payout(&self, of: Address) -> U256 {
        self.ok(
            WATCHER,
            &self.market,
            0,
            IQueryMarket::payoutOfCall { account: of },
        )
    }

    fn reserved_compensation(&self) -> U256 {
        self.ok(
            WATCHER,
            &self.registry,
            0,
            IDatasetRegistry::reservedCompensationCall {},
        )
    }

    /// The registry holds `Σ stake + totalPayouts + reservedCompensation` (all of `datasets`).
    fn assert_registry_holds_what_it_owes(&self, datasets: &[U256]) {
        let staked: U256 = datasets
            .iter()
            .map(|&dataset_id| {
                self.ok(
                    WATCHER,
                    &self.registry,
                    0,
                    IDatasetRegistry::stakeOfCall { dataset_id },
                )
            })
            .sum();
        let payouts = self.ok(
            WATCHER,
            &self.registry,
            0,
            IDatasetRegistry::totalPayoutsCall {},
        );
        assert_eq!(
            self.registry.host().balance(self.registry.address()),
            staked + payouts + self.reserved_compensation()
        );
    }

    fn assert_market_holds_what_it_owes(&self) {
        let totals = self.ok(WATCHER, &self.market, 0, IQueryMarket::totalsCall {});
        assert_eq!(
            self.market.host().balance(self.market.address()),
            totals._0 + totals._1 + totals._2 + totals._3
        );
    }
}

trait Clock {
    fn block_timestamp_now(&self) -> u64;
}

impl Clock for stylus_sdk::testing::TestVM {
    fn block_timestamp_now(&self) -> u64 {
        stylus_sdk::stylus_core::BlockAccess::block_timestamp(self)
    }
}

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

#[test]
fn a_proven_dataset_is_sold_and_the_market_settles() {
    let m = Marketplace::new();
    let trees = pieces(1, &[6]);
    let (dataset, set) = m.onboard(&trees);
    assert_eq!(m.health(dataset), 2, "no proof yet: Degraded");
    m.prove(set, &trees);
    assert_eq!(m.health(dataset), 1, "proven: Healthy");

    let order = m.order_and_compute(dataset);
    assert_eq!(
        m.ok(
            BUYER,
            &m.market,
            0,
            IQueryMarket::ownerOfCall { token_id: order }
        ),
        BUYER,
        "the buyer holds the receipt"
    );
    m.assert_market_holds_what_it_owes();
    m.deliver(order);
    assert_eq!(m.payout(SELLER), ether(50));
    assert_eq!(m.payout(m.worker), ether(10));
    assert_eq!(m.payout(BUYER), ether(10), "the overpayment comes back");
    m.assert_market_holds_what_it_owes();

    let before = m.market.host().balance(SELLER);
    m.ok(SELLER, &m.market, 0, IQueryMarket::withdrawCall {});
    assert_eq!(m.market.host().balance(SELLER) - before, ether(50));
    assert!(m.payout(SELLER).is_zero());
    m.assert_market_holds_what_it_owes();
    // Nothing left to pull: a second withdrawal reverts and changes nothing.
    assert!(
        m.send(SELLER, &m.market, 0, &IQueryMarket::withdrawCall {})
            .is_err()
    );
    m.assert_market_holds_what_it_owes();
}

#[test]
fn the_registrys_privacy_budget_bounds_every_buyers_orders_at_the_market() {
    // The budget set at registration (10 ε, 1 of it spent by the sample statistics) reaches
    // the market through `orderTerms`; the market charges each order against it, whoever
    // places it, and only the owner's renewal lets more in.
    let m = Marketplace::new();
    let trees = pieces(3, &[6]);
    let (dataset, set) = m.onboard(&trees);
    m.prove(set, &trees);
    let place = |from: Address, epsilon: u64| {
        m.send(
            from,
            &m.market,
            60,
            &IQueryMarket::placeOrderCall {
                dataset_id: dataset,
                template_hash: keccak256("cohort_stats/1"),
                params_hash: keccak256("anything"),
                buyer_key: Bytes::from_static(&[0x42; 32]),
                deadline: m.market.host().vm().block_timestamp_now() + 86_400,
                pbs_estimate: 0,
                epsilon,
            },
        )
    };
    place(BUYER, 5 * EPSILON).unwrap();
    place(WATCHER, 4 * EPSILON).unwrap();
    let spent = |m: &Marketplace| {
        m.ok(
            WATCHER,
            &m.market,
            0,
            IQueryMarket::epsilonSpentCall {
                dataset_id: dataset,
            },
        )
    };
    assert_eq!(spent(&m), 9 * EPSILON);
    // A third address is no fresh budget: nothing is left.
    let refused = place(address!("0x00000000000000000000000000000000000000e1"), 1).unwrap_err();
    assert_eq!(
        IQueryMarket::InvalidEpsilon::abi_decode(&refused).unwrap(),
        IQueryMarket::InvalidEpsilon {
            _0: dataset,
            _1: 1,
            _2: 0,
        }
    );
    // A stranger cannot renew it; the owner can, and the market sees it at once.
    assert!(
        m.send(
            BUYER,
            &m.registry,
            0,
            &IDatasetRegistry::renewPrivacyBudgetCall {
                dataset_id: dataset,
                added: EPSILON,
            },
        )
        .is_err()
    );
    m.ok(
        SELLER,
        &m.registry,
        0,
        IDatasetRegistry::renewPrivacyBudgetCall {
            dataset_id: dataset,
            added: EPSILON,
        },
    );
    place(BUYER, EPSILON).unwrap();
    assert_eq!(spent(&m), 10 * EPSILON);
    m.assert_market_holds_what_it_owes();
}

#[test]
fn a_dataset_whose_proofs_lapse_is_slashed_and_its_open_orders_compensated() {
    // Issue 16 item 2: slashed stake refunds the dataset's open orders' buyers first, then is
    // burned; the reporter's bounty is small.
    let m = Marketplace::new();
    let trees = pieces(2, &[4]);
    let (dataset, set) = m.onboard(&trees);
    m.prove(set, &trees);
    let order = m.order_and_compute(dataset);

    // The seller stops proving: three deadlines pass, each recorded by a watcher.
    for _ in 0..3 {
        m.chain.advance(101, 1212);
        m.ok(
            WATCHER,
            &m.proofs,
            0,
            IProofManager::recordFaultCall { set_id: set },
        );
    }
    assert_eq!(
        m.health(dataset),
        3,
        "three faults within the window: Failed"
    );
    // The third fault slashed 10 % of the 2-token stake: 5 % of that to the watcher, the rest
    // (190) reserved for the one open order.
    let stake = m.ok(
        WATCHER,
        &m.registry,
        0,
        IDatasetRegistry::stakeOfCall {
            dataset_id: dataset,
        },
    );
    assert_eq!(stake, ether(1800));
    assert_eq!(m.registry_payout(WATCHER), ether(10));
    assert!(m.registry_payout(BURN).is_zero());
    assert_eq!(m.reserved_compensation(), ether(190));
    m.assert_registry_holds_what_it_owes(&[dataset]);
    // An order placed after the lapse is owed nothing for it.
    let later = m.ok(
        BUYER,
        &m.market,
        60,
        IQueryMarket::placeOrderCall {
            dataset_id: dataset,
            template_hash: keccak256("cohort_stats/1"),
            params_hash: keccak256("region = EMEA"),
            buyer_key: Bytes::from_static(&[0x42; 32]),
            deadline: m.market.host().vm().block_timestamp_now() + 86_400,
            pbs_estimate: 0,
            epsilon: EPSILON,
        },
    );

    // Delivery on a failed dataset: the worker is paid its fee (it did its part), the seller
    // nothing, the buyer the rest of its escrow in the market, and its compensation in the
    // registry: its share of the slash, at most its price (50); the rest of the share burned.
    m.deliver(order);
    assert!(m.payout(SELLER).is_zero());
    assert_eq!(m.payout(m.worker), ether(10));
    assert_eq!(m.payout(BUYER), ether(60));
    assert_eq!(m.registry_payout(BUYER), ether(50));
    assert_eq!(m.registry_payout(BURN), ether(140));
    assert!(m.reserved_compensation().is_zero());
    m.assert_market_holds_what_it_owes();
    m.assert_registry_holds_what_it_owes(&[dataset]);

    // The later order, refused by the seller, gets its escrow back and no compensation.
    m.ok(
        SELLER,
        &m.market,
        0,
        IQueryMarket::refundCall { order_id: later },
    );
    assert_eq!(m.payout(BUYER), ether(120));
    assert_eq!(m.registry_payout(BUYER), ether(50));
    m.assert_registry_holds_what_it_owes(&[dataset]);
}

#[test]
fn a_seller_reporting_its_own_faults_ends_with_less() {
    // Audit H-2: the slash used to go to whoever recorded the fault, so a seller that stopped
    // storing reported itself and took its stake back. Now the reporter gets 5 % of the slash.
    let m = Marketplace::new();
    let trees = pieces(4, &[2]);
    let (dataset, set) = m.onboard(&trees);
    m.prove(set, &trees);
    let stake_of = |m: &Marketplace| {
        m.ok(
            WATCHER,
            &m.registry,
            0,
            IDatasetRegistry::stakeOfCall {
                dataset_id: dataset,
            },
        )
    };
    let held_before = stake_of(&m) + m.registry_payout(SELLER);
    for _ in 0..4 {
        m.chain.advance(101, 1212);
        m.ok(
            SELLER,
            &m.proofs,
            0,
            IProofManager::recordFaultCall { set_id: set },
        );
    }
    assert_eq!(m.health(dataset), 3);
    let held_after = stake_of(&m) + m.registry_payout(SELLER);
    // Two slashes (10 % of 2000, then of 1800): 380 taken, 19 back as the reporter's bounty.
    assert_eq!(held_before - held_after, ether(361));
    assert_eq!(m.registry_payout(SELLER), ether(19));
    assert_eq!(m.registry_payout(BURN), ether(361));
}

#[test]
fn a_wrong_result_disputed_through_the_market_is_overturned_and_the_order_reopens() {
    let m = Marketplace::new();
    let trees = pieces(4, &[3]);
    let (dataset, set) = m.onboard(&trees);
    m.prove(set, &trees);
    let order = m.order_and_compute(dataset);
    let verifiers = [
        address!("0x00000000000000000000000000000000000000e1"),
        address!("0x00000000000000000000000000000000000000e2"),
    ];
    for verifier in verifiers {
        m.ok(
            verifier,
            &m.market,
            500,
            IQueryMarket::registerWorkerCall {},
        );
    }
    // Called at the game's own address, the game sees only its own empty storage.
    let direct = m.send(
        SELLER,
        &m.game,
        500,
        &IDisputeGame::disputeCall { order_id: order },
    );
    let Err(revert) = direct else {
        panic!("the game's own storage has no market")
    };
    assert!(matches!(
        IDisputeGame::IDisputeGameErrors::abi_decode(&revert),
        Ok(IDisputeGame::IDisputeGameErrors::NotInitialized(_))
    ));
    // A stranger may not dispute; the seller does, through the market's address.
    assert!(
        m.send(
            WATCHER,
            &m.market,
            500,
            &IDisputeGame::disputeCall { order_id: order }
        )
        .is_err()
    );
    m.ok(
        SELLER,
        &m.market,
        500,
        IDisputeGame::disputeCall { order_id: order },
    );
    m.assert_market_holds_what_it_owes();
    let right = keccak256("the result the plan yields");
    for round in 1..=2u8 {
        let state = m.ok(
            WATCHER,
            &m.market,
            0,
            IDisputeGame::disputeOfCall { order_id: order },
        );
        assert_eq!((state._0, state._2), (SELLER, round));
        assert!(verifiers.contains(&state._3), "a bonded bystander verifies");
        m.ok(
            state._3,
            &m.market,
            0,
            IDisputeGame::submitVerdictCall {
                order_id: order,
                result_cid: Bytes::from_static(b"\x01\x55\x12\x20recomputed"),
                result_hash: right,
            },
        );
    }
    // Both verifiers recomputed the same other result: overturned. The worker's bond pays each
    // verifier the fee and the rest goes to the seller with its dispute bond back.
    assert_eq!(
        m.ok(
            WATCHER,
            &m.market,
            0,
            IQueryMarket::workerBondCall { worker: m.worker }
        ),
        U256::ZERO
    );
    for verifier in verifiers {
        assert_eq!(m.payout(verifier), ether(10));
    }
    assert_eq!(m.payout(SELLER), ether(980));
    let terms = m.ok(
        WATCHER,
        &m.market,
        0,
        IQueryMarket::orderCall { order_id: order },
    );
    assert_eq!(terms._9, 1, "Open again, for an honest worker");
    m.assert_market_holds_what_it_owes();
}

#[test]
fn a_buyer_cannot_lock_the_sellers_stake_by_never_refunding() {
    let m = Marketplace::new();
    let trees = pieces(3, &[2]);
    let (dataset, set) = m.onboard(&trees);
    m.prove(set, &trees);
    let order = m.order_and_compute(dataset);
    m.ok(
        SELLER,
        &m.registry,
        0,
        IDatasetRegistry::deactivateCall {
            dataset_id: dataset,
        },
    );
    m.chain.advance(10, 86_401);
    // The order is still open in the market: the registry asks it and refuses.
    let refused = m.send(
        SELLER,
        &m.registry,
        0,
        &IDatasetRegistry::withdrawStakeCall {
            dataset_id: dataset,
        },
    );
    let Err(revert) = refused else {
        panic!("an open order must block the stake");
    };
    assert!(matches!(
        IDatasetRegistry::IDatasetRegistryErrors::abi_decode(&revert),
        Ok(IDatasetRegistry::IDatasetRegistryErrors::OpenOrders(_))
    ));
    // The deadline passes and the buyer never refunds (keeping the stake locked at no cost):
    // the seller closes the order itself, the escrow going to the buyer less the fee of the
    // worker, which did compute the result; now the stake can go. The seller had left that
    // result undelivered past its window on a healthy dataset, so the registry pays the
    // order's price from the stake to the buyer (the market's `slash`, a real cross-contract
    // call).
    m.chain.advance(10, 86_400);
    let buyer_payout = |m: &Marketplace| {
        m.ok(
            WATCHER,
            &m.market,
            0,
            IQueryMarket::payoutOfCall { account: BUYER },
        )
    };
    let owed = buyer_payout(&m);
    let worker_owed = m.payout(m.worker);
    m.ok(
        SELLER,
        &m.market,
        0,
        IQueryMarket::refundCall { order_id: order },
    );
    assert_eq!(
        buyer_payout(&m) - owed,
        ether(60),
        "the escrow less the worker's fee, to the buyer"
    );
    assert_eq!(
        m.payout(m.worker) - worker_owed,
        ether(10),
        "the worker's fee"
    );
    assert_eq!(
        m.registry_payout(BUYER),
        ether(50),
        "the penalty, the price"
    );
    let before = m.registry.host().balance(SELLER);
    m.ok(
        SELLER,
        &m.registry,
        0,
        IDatasetRegistry::withdrawStakeCall {
            dataset_id: dataset,
        },
    );
    assert_eq!(m.registry.host().balance(SELLER) - before, ether(1950));
    m.ok(BUYER, &m.registry, 0, IDatasetRegistry::withdrawCall {});
    assert!(m.registry.host().balance(m.registry.address()).is_zero());
}
