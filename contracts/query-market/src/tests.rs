//! `QueryMarket` tests on `TestHost`: every public function and error, the events, real EIP-712
//! attestations signed with k256, and a property test of the money invariant.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
};

use alloy_primitives::{Address, B256, U256, address, keccak256};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolStruct, eip712_domain};
use datacloud_contract_test_host::{TestHost, create_address};
use k256::ecdsa::SigningKey;
use proptest::prelude::*;

use super::*;

mod ext {
    alloy_sol_types::sol! {
        interface Registry {
            function orderTerms(uint256 datasetId, bytes32 templateHash) external view returns (address seller, bytes32 manifestHash, uint256 price, uint256 compensationIndex, uint64 orderBudget);
            function slash(uint256 datasetId, uint256 amount, address to) external returns (uint256);
            function compensate(uint256 datasetId, uint256 since, address to, uint256 cap) external returns (uint256);
        }
        interface ProofManager {
            function health(uint256 datasetId) external view returns (uint8);
        }
    }
}

const REGISTRY: Address = address!("0x00000000000000000000000000000000000000aa");
const PROOF_MANAGER: Address = address!("0x00000000000000000000000000000000000000bb");
const DISPUTE_GAME: Address = address!("0x00000000000000000000000000000000000000cc");
/// The nonce of OWNER's transaction that deployed the market.
const DEPLOY_NONCE: u64 = 0x80;
const OWNER: Address = address!("0x0000000000000000000000000000000000000e0e");
const BUYER: Address = address!("0x000000000000000000000000000000000000b0b1");
/// `addr_of(&seller_key())`: the seller signs its deliveries.
const SELLER: Address = address!("0xd8291e50e2e68fb2c70d77ccdc707d291a89f209");
const STRANGER: Address = address!("0x0000000000000000000000000000000000007777");
const FEE: u64 = 10;
const MIN_BOND: u64 = 50;
const CLAIM_TIMEOUT: u64 = 100;
const LIFETIME: u64 = 1000;
const DS: u64 = 7;
const PRICE: u64 = 100;
const TEMPLATE: B256 = B256::repeat_byte(0x7e);
const PARAMS: B256 = B256::repeat_byte(0x9a);
const RESULT: B256 = B256::repeat_byte(0x4e);
const STAKE: u64 = 1_000;
const DELIVERY_CID: &[u8] = b"bafy-delivery";
/// The ε every test order spends (micro-ε: 0.25 ε).
const EPS: u64 = 250_000;
/// The ε the mock registry lets orders on a dataset spend in all: enough for every sequence the
/// property test draws.
const BUDGET: u64 = 1_000 * EPS;

type Terms = Rc<RefCell<HashMap<(U256, B256), (Address, B256, U256)>>>;
/// `DatasetRegistry.slash` calls the market made: (dataset, amount asked, to, amount slashed).
type Slashes = Rc<RefCell<Vec<(U256, U256, Address, U256)>>>;
/// `DatasetRegistry.compensate` calls the market made: (dataset, since, to, cap, paid).
type Compensations = Rc<RefCell<Vec<(U256, U256, Address, U256, U256)>>>;

/// The seller's key: it signs its deliveries.
fn seller_key() -> SigningKey {
    key(0x5e)
}

fn u(n: u64) -> U256 {
    U256::from(n)
}

fn manifest_hash() -> B256 {
    keccak256(b"bafy-manifest")
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_slice(&[n; 32]).expect("a valid secp256k1 scalar")
}

fn addr_of(key: &SigningKey) -> Address {
    Address::from_private_key(key)
}

/// `r ‖ s ‖ v` with v = 27/28 and a low s (k256 normalizes s).
fn sign(key: &SigningKey, digest: B256) -> Vec<u8> {
    let (sig, recid) = key
        .sign_prehash_recoverable(digest.as_slice())
        .expect("signing a prehash");
    let mut out = sig.to_bytes().to_vec();
    out.push(27 + recid.to_byte());
    out
}

/// The malleable twin of a low-s signature: s' = n - s, parity flipped. It recovers the same
/// signer, so only the EIP-2 check can refuse it.
fn high_s(signature: &[u8]) -> Vec<u8> {
    let n = U256::from_be_slice(&hex_literal(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
    ));
    let s = U256::from_be_slice(&signature[32..64]);
    let mut out = signature[..32].to_vec();
    out.extend_from_slice(&(n - s).to_be_bytes::<32>());
    out.push(if signature[64] == 27 { 28 } else { 27 });
    out
}

fn hex_literal(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn err<T>(result: Result<T, Error>) -> Error {
    match result {
        Ok(_) => panic!("expected the call to revert"),
        Err(error) => error,
    }
}

fn ok<T>(result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("unexpected revert: 0x{}", hex(&Vec::<u8>::from(error))),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn events<E: SolEvent>(host: &TestHost) -> Vec<E> {
    host.logs()
        .into_iter()
        .filter(|(topics, _)| topics.first() == Some(&E::SIGNATURE_HASH))
        .map(|(topics, data)| E::decode_raw_log(topics, &data).expect("decodable event"))
        .collect()
}

struct Env {
    host: TestHost,
    market: QueryMarket,
    terms: Terms,
    health: Rc<Cell<u8>>,
    /// The dataset's stake at the registry (what a slash can take).
    stake: Rc<Cell<u64>>,
    slashes: Slashes,
    /// The dataset's compensation index at the registry (`orderTerms` answers it).
    compensation_index: Rc<Cell<u64>>,
    compensations: Compensations,
    /// The ε (micro-ε) the registry lets orders on any dataset spend (`orderTerms` answers it).
    budget: Rc<Cell<u64>>,
}

impl Env {
    fn uninitialized() -> Self {
        let host = TestHost::new();
        // Deployed by OWNER with its DEPLOY_NONCE-th transaction.
        host.vm()
            .set_contract_address(create_address(OWNER, DEPLOY_NONCE));
        let market = QueryMarket::from(&host);
        let terms: Terms = Rc::default();
        terms
            .borrow_mut()
            .insert((u(DS), TEMPLATE), (SELLER, manifest_hash(), u(PRICE)));
        let registry_terms = terms.clone();
        let stake = Rc::new(Cell::new(STAKE));
        let slashes: Slashes = Rc::default();
        let (staked, recorded) = (stake.clone(), slashes.clone());
        let compensation_index = Rc::new(Cell::new(0));
        let compensations: Compensations = Rc::default();
        let (index, paid_out) = (compensation_index.clone(), compensations.clone());
        let budget = Rc::new(Cell::new(BUDGET));
        let order_budget = budget.clone();
        host.on_call(REGISTRY, move |call| {
            if let Ok(request) = ext::Registry::compensateCall::abi_decode(&call.data) {
                // As the registry: what the index gained since placement, at most the price.
                if call.is_static {
                    return Err(Vec::new());
                }
                let owed = u(index.get())
                    .checked_sub(request.since)
                    .ok_or_else(|| b"ArithmeticOverflow".to_vec())?;
                let paid = owed.min(request.cap);
                paid_out.borrow_mut().push((
                    request.datasetId,
                    request.since,
                    request.to,
                    request.cap,
                    paid,
                ));
                return Ok(ext::Registry::compensateCall::abi_encode_returns(&paid));
            }
            if let Ok(slash) = ext::Registry::slashCall::abi_decode(&call.data) {
                // As the registry: only a mutating call, at most the stake.
                if call.is_static {
                    return Err(Vec::new());
                }
                let taken = slash.amount.min(u(staked.get()));
                staked.set(staked.get() - taken.to::<u64>());
                recorded
                    .borrow_mut()
                    .push((slash.datasetId, slash.amount, slash.to, taken));
                return Ok(ext::Registry::slashCall::abi_encode_returns(&taken));
            }
            let Ok(request) = ext::Registry::orderTermsCall::abi_decode(&call.data) else {
                return Err(Vec::new());
            };
            match registry_terms
                .borrow()
                .get(&(request.datasetId, request.templateHash))
            {
                Some(&(seller, manifest, price)) => {
                    Ok(ext::Registry::orderTermsCall::abi_encode_returns(
                        &ext::Registry::orderTermsReturn {
                            seller,
                            manifestHash: manifest,
                            price,
                            compensationIndex: u(index.get()),
                            orderBudget: order_budget.get(),
                        },
                    ))
                }
                None => Err(b"UnknownDataset".to_vec()),
            }
        });
        let health = Rc::new(Cell::new(HEALTHY));
        let reported = health.clone();
        host.on_call(PROOF_MANAGER, move |call| {
            let Ok(_request) = ext::ProofManager::healthCall::abi_decode(&call.data) else {
                return Err(Vec::new());
            };
            Ok(ext::ProofManager::healthCall::abi_encode_returns(
                &reported.get(),
            ))
        });
        Self {
            host,
            market,
            terms,
            health,
            stake,
            slashes,
            compensation_index,
            compensations,
            budget,
        }
    }

    fn new() -> Self {
        let mut env = Self::uninitialized();
        ok(env.call(OWNER, 0, |m| {
            m.initialize(
                REGISTRY,
                PROOF_MANAGER,
                u(FEE),
                u(MIN_BOND),
                CLAIM_TIMEOUT,
                LIFETIME,
                DISPUTE_GAME,
                DEPLOY_NONCE,
            )
        }));
        env
    }

    fn call<T>(
        &mut self,
        sender: Address,
        value: u64,
        f: impl FnOnce(&mut QueryMarket) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let host = self.host.clone();
        let market = &mut self.market;
        host.invoke(sender, u(value), || f(market))
    }

    fn now(&self) -> u64 {
        self.host.vm().block_timestamp()
    }

    fn advance(&self, seconds: u64) {
        self.host.vm().set_block_timestamp(self.now() + seconds);
    }

    fn place(&mut self, buyer: Address, value: u64) -> U256 {
        ok(self.place_spending(buyer, value, EPS))
    }

    /// Places an order on dataset `DS` as `buyer`, paying `value` and spending `epsilon` micro-ε.
    fn place_spending(&mut self, buyer: Address, value: u64, epsilon: u64) -> Result<U256, Error> {
        let deadline = self.now() + 500;
        self.call(buyer, value, |m| {
            m.place_order(
                u(DS),
                TEMPLATE,
                PARAMS,
                Bytes::from(vec![0xAB; 32]),
                deadline,
                0,
                epsilon,
            )
        })
    }

    fn register(&mut self, worker: Address, value: u64) {
        ok(self.call(worker, value, QueryMarket::register_worker));
    }

    fn claim(&mut self, worker: Address, order_id: U256) -> Result<(), Error> {
        self.call(worker, 0, |m| m.claim_order(order_id))
    }

    fn digest(&self, order_id: U256, result_hash: B256) -> B256 {
        ok(self.market.attestation_digest(order_id, result_hash))
    }

    fn submit_signed(
        &mut self,
        worker: Address,
        order_id: U256,
        signature: Vec<u8>,
    ) -> Result<(), Error> {
        self.call(worker, 0, |m| {
            m.submit_result(
                order_id,
                Bytes::from(b"bafy-result".to_vec()),
                RESULT,
                Bytes::from(signature),
            )
        })
    }

    fn submit(&mut self, signer: &SigningKey, order_id: U256) -> Result<(), Error> {
        let signature = sign(signer, self.digest(order_id, RESULT));
        self.submit_signed(addr_of(signer), order_id, signature)
    }

    /// The seller's EIP-712 signature over `Delivery(orderId, resultHash, deliveryCid)`, computed
    /// with alloy from the order's current result hash (independently of the contract's code).
    fn delivery_signature(&self, signer: &SigningKey, order_id: U256, cid: &[u8]) -> Vec<u8> {
        let delivery = Delivery {
            orderId: order_id,
            resultHash: ok(self.market.order_work(order_id)).3,
            deliveryCid: Bytes::copy_from_slice(cid),
        };
        sign(signer, delivery.eip712_signing_hash(&self.domain()))
    }

    fn domain(&self) -> alloy_sol_types::Eip712Domain {
        eip712_domain! {
            name: "DataCloud QueryMarket",
            version: "1",
            chain_id: self.host.vm().chain_id(),
            verifying_contract: self.host.contract(),
        }
    }

    /// `caller` delivers `DELIVERY_CID` with the seller's signature.
    fn deliver(&mut self, caller: Address, order_id: U256) -> Result<(), Error> {
        self.deliver_signed(caller, order_id, &seller_key())
    }

    /// `caller` delivers `DELIVERY_CID` with `signer`'s signature.
    fn deliver_signed(
        &mut self,
        caller: Address,
        order_id: U256,
        signer: &SigningKey,
    ) -> Result<(), Error> {
        let signature = match self.market.order_work(order_id) {
            Ok(_) => self.delivery_signature(signer, order_id, DELIVERY_CID),
            Err(_) => vec![0; 65],
        };
        self.call(caller, 0, |m| {
            m.deliver_result(order_id, Bytes::from(DELIVERY_CID), Bytes::from(signature))
        })
    }

    /// An order paid with `value`, claimed and computed by worker key 1 (bond `MIN_BOND`).
    fn computed(&mut self, value: u64) -> (U256, SigningKey) {
        let worker = key(1);
        let id = self.place(BUYER, value);
        if self.market.worker_bond(addr_of(&worker)).is_zero() {
            self.register(addr_of(&worker), MIN_BOND);
        }
        ok(self.claim(addr_of(&worker), id));
        ok(self.submit(&worker, id));
        (id, worker)
    }

    /// Registers workers key(2)..=key(n + 1) with `MIN_BOND`, the verifiers of the tests.
    fn register_verifiers(&mut self, n: u8) {
        for k in 2..=n + 1 {
            self.register(addr_of(&key(k)), MIN_BOND);
        }
    }

    /// The verifier drawn for `order_id`'s dispute.
    fn verifier(&self, order_id: U256) -> Address {
        ok(self.market.dispute_of(order_id)).3
    }

    /// The drawn verifier answers.
    fn verdict(&mut self, order_id: U256, cid: Bytes, hash: B256) -> Result<(), Error> {
        let verifier = self.verifier(order_id);
        self.call(verifier, 0, |m| m.submit_verdict(order_id, cid, hash))
    }

    /// The seller disputes and two verifiers agree against the worker.
    fn overturn(&mut self, order_id: U256) {
        ok(self.call(SELLER, MIN_BOND, |m| m.dispute(order_id)));
        ok(self.verdict(order_id, wrong_cid(), WRONG));
        ok(self.verdict(order_id, wrong_cid(), WRONG));
        assert_eq!(self.status(order_id), status::OPEN);
    }

    fn status(&self, order_id: U256) -> u8 {
        ok(self.market.order(order_id)).9
    }

    fn assert_solvent(&self) {
        let m = &self.market;
        assert_eq!(
            self.host.balance(self.host.contract()),
            m.total_escrow() + m.total_bonds() + m.total_payouts() + m.total_dispute_bonds(),
            "balance == totalEscrow + totalBonds + totalPayouts + totalDisputeBonds"
        );
    }
}

// ----- Constants and EIP-712 -----

#[test]
fn hash_constants_match_their_preimages() {
    assert_eq!(
        DOMAIN_TYPEHASH,
        keccak256(
            b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
        )
    );
    assert_eq!(NAME_HASH, keccak256(b"DataCloud QueryMarket"));
    assert_eq!(VERSION_HASH, keccak256(b"1"));
    assert_eq!(
        ORDER_TERMS_SELECTOR,
        ext::Registry::orderTermsCall::SELECTOR
    );
    assert_eq!(HEALTH_SELECTOR, ext::ProofManager::healthCall::SELECTOR);
    assert_eq!(
        ATTESTATION_TYPEHASH,
        keccak256(
            b"Attestation(uint256 orderId,uint256 datasetId,bytes32 manifestHash,bytes32 templateHash,bytes32 paramsHash,bytes32 resultHash)"
        )
    );
    assert_eq!(
        DELIVERY_TYPEHASH,
        keccak256(b"Delivery(uint256 orderId,bytes32 resultHash,bytes deliveryCid)")
    );
    assert_eq!(SLASH_SELECTOR, ext::Registry::slashCall::SELECTOR);
    assert_eq!(COMPENSATE_SELECTOR, ext::Registry::compensateCall::SELECTOR);
    assert_eq!(SELLER, addr_of(&seller_key()));
    assert_eq!(
        HALF_CURVE_ORDER,
        U256::from_be_slice(&hex_literal(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        )) >> 1
    );
}

#[test]
fn domain_separator_and_digest_match_an_independent_eip712_computation() {
    let mut env = Env::new();
    let id = env.place(BUYER, PRICE + FEE);
    let domain = eip712_domain! {
        name: "DataCloud QueryMarket",
        version: "1",
        chain_id: env.host.vm().chain_id(),
        verifying_contract: env.host.contract(),
    };
    assert_eq!(env.market.domain_separator(), domain.hash_struct());
    let attestation = Attestation {
        orderId: id,
        datasetId: u(DS),
        manifestHash: manifest_hash(),
        templateHash: TEMPLATE,
        paramsHash: PARAMS,
        resultHash: RESULT,
    };
    assert_eq!(
        env.digest(id, RESULT),
        attestation.eip712_signing_hash(&domain)
    );
    // Every field is bound: another result hash gives another digest.
    assert_ne!(env.digest(id, RESULT), env.digest(id, B256::ZERO));
    assert!(matches!(
        err(env.market.attestation_digest(u(99), RESULT)),
        Error::UnknownOrder(UnknownOrder { orderId }) if orderId == u(99)
    ));
}

// ----- initialize -----

#[test]
fn initialize_sets_the_config_once() {
    let mut env = Env::new();
    let m = &env.market;
    assert_eq!(m.owner(), OWNER);
    assert_eq!(m.registry(), REGISTRY);
    assert_eq!(m.proof_manager(), PROOF_MANAGER);
    assert_eq!(m.worker_fee(), u(FEE));
    assert_eq!(m.min_worker_bond(), u(MIN_BOND));
    assert_eq!(m.claim_timeout(), CLAIM_TIMEOUT);
    assert_eq!(m.max_order_lifetime(), LIFETIME);
    assert_eq!(m.order_count(), U256::ZERO);
    assert!(matches!(
        err(env.call(STRANGER, 0, |m| m.initialize(
            REGISTRY,
            PROOF_MANAGER,
            U256::ZERO,
            U256::ZERO,
            1,
            1,
            DISPUTE_GAME,
            DEPLOY_NONCE
        ))),
        Error::AlreadyInitialized(_)
    ));
    assert_eq!(env.market.owner(), OWNER);
    assert_eq!(
        env.market.config().7,
        DISPUTE_GAME,
        "config() names the dispute game"
    );
}

#[test]
fn only_the_deployer_initializes() {
    let mut env = Env::uninitialized();
    // Front-running the deployer's initialize (a stranger, even naming the right nonce), or the
    // deployer naming a nonce that did not create this program.
    for (sender, nonce) in [
        (STRANGER, DEPLOY_NONCE),
        (OWNER, DEPLOY_NONCE + 1),
        (OWNER, 0),
    ] {
        assert!(matches!(
            err(env.call(sender, 0, |m| m.initialize(
                STRANGER,
                STRANGER,
                U256::ZERO,
                U256::ZERO,
                1,
                1,
                STRANGER,
                nonce
            ))),
            Error::NotDeployer(_)
        ));
    }
    assert_eq!(env.market.owner(), Address::ZERO);
}

#[test]
fn initialize_refuses_zero_addresses_and_timeouts() {
    let mut env = Env::uninitialized();
    let bad = [
        (Address::ZERO, PROOF_MANAGER, 1, 1, DISPUTE_GAME),
        (REGISTRY, Address::ZERO, 1, 1, DISPUTE_GAME),
        (REGISTRY, PROOF_MANAGER, 0, 1, DISPUTE_GAME),
        (REGISTRY, PROOF_MANAGER, 1, 0, DISPUTE_GAME),
        (REGISTRY, PROOF_MANAGER, 1, 1, Address::ZERO),
    ];
    for (registry, proof_manager, timeout, lifetime, game) in bad {
        assert!(matches!(
            err(env.call(OWNER, 0, |m| m.initialize(
                registry,
                proof_manager,
                u(FEE),
                u(MIN_BOND),
                timeout,
                lifetime,
                game,
                DEPLOY_NONCE
            ))),
            Error::InvalidConfig(_)
        ));
    }
    assert_eq!(env.market.owner(), Address::ZERO);
}

#[test]
fn every_mutating_function_refuses_before_initialize() {
    let mut env = Env::uninitialized();
    let id = u(1);
    let results: Vec<Result<(), Error>> = vec![
        env.call(BUYER, PRICE + FEE, |m| {
            m.place_order(
                u(DS),
                TEMPLATE,
                PARAMS,
                Bytes::from(vec![1]),
                1_700_000_100,
                0,
                EPS,
            )
            .map(|_| ())
        }),
        env.call(STRANGER, MIN_BOND, QueryMarket::register_worker),
        env.call(STRANGER, 0, QueryMarket::withdraw_bond),
        env.call(STRANGER, 0, |m| m.claim_order(id)),
        env.call(STRANGER, 0, |m| {
            m.submit_result(id, Bytes::from(vec![1]), RESULT, Bytes::from(vec![0; 65]))
        }),
        env.call(SELLER, 0, |m| {
            m.deliver_result(id, Bytes::from(vec![1]), Bytes::from(vec![0; 65]))
        }),
        env.call(SELLER, MIN_BOND, |m| m.dispute(id)),
        env.call(STRANGER, 0, |m| {
            m.submit_verdict(id, Bytes::from(vec![1]), RESULT)
        }),
        env.call(STRANGER, 0, |m| m.timeout_verifier(id)),
        env.call(BUYER, 0, |m| m.refund(id)),
        env.call(BUYER, 0, QueryMarket::withdraw),
        env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, id)),
    ];
    for result in results {
        assert!(matches!(err(result), Error::NotInitialized(_)));
    }
    assert_eq!(env.host.balance(env.host.contract()), U256::ZERO);
}

// ----- placeOrder -----

#[test]
fn place_order_escrows_and_mints_a_receipt() {
    let mut env = Env::new();
    let deadline = env.now() + LIFETIME;
    let value = PRICE + FEE + 5;
    let id = ok(env.call(BUYER, value, |m| {
        m.place_order(
            u(DS),
            TEMPLATE,
            PARAMS,
            Bytes::from(vec![0xAB; 32]),
            deadline,
            1234,
            EPS,
        )
    }));
    assert_eq!(id, u(1));
    let m = &env.market;
    assert_eq!(
        ok(m.order(id)),
        (
            u(DS),
            SELLER,
            TEMPLATE,
            PARAMS,
            manifest_hash(),
            u(PRICE),
            u(FEE),
            u(value),
            deadline,
            status::OPEN,
            1234,
            EPS
        )
    );
    assert_eq!(m.epsilon_spent(u(DS)), EPS);
    assert_eq!(
        ok(m.order_work(id)),
        (Address::ZERO, 0, Bytes::new(), B256::ZERO, Bytes::new())
    );
    assert_eq!(ok(m.buyer_key(id)), Bytes::from(vec![0xAB; 32]));
    assert_eq!(ok(m.attestation_signature(id)), Bytes::new());
    assert_eq!(m.order_count(), u(1));
    assert_eq!(m.open_order_count(u(DS)), u(1));
    assert_eq!(m.total_escrow(), u(value));
    assert_eq!(ok(m.owner_of(id)), BUYER);
    assert_eq!(ok(m.balance_of(BUYER)), u(1));
    env.assert_solvent();

    let transfers = events::<Transfer>(&env.host);
    assert_eq!(transfers.len(), 1);
    assert_eq!(
        (transfers[0].from, transfers[0].to, transfers[0].tokenId),
        (Address::ZERO, BUYER, id)
    );
    let placed = events::<OrderPlaced>(&env.host);
    assert_eq!(placed.len(), 1);
    let e = &placed[0];
    assert_eq!(
        (
            e.orderId,
            e.datasetId,
            e.buyer,
            e.templateHash,
            e.paramsHash,
            e.escrow,
            e.deadline,
            e.epsilon
        ),
        (id, u(DS), BUYER, TEMPLATE, PARAMS, u(value), deadline, EPS)
    );
    // The registry was asked with a static call.
    let calls = env.host.calls();
    assert!(calls.iter().any(|c| c.to == REGISTRY && c.is_static));
    // Ids count up.
    assert_eq!(env.place(STRANGER, PRICE + FEE), u(2));
    assert_eq!(env.market.open_order_count(u(DS)), u(2));
}

#[test]
fn place_order_keeps_the_fee_in_force_when_placed() {
    let mut env = Env::new();
    env.terms
        .borrow_mut()
        .insert((u(8), TEMPLATE), (STRANGER, B256::ZERO, U256::ZERO));
    let deadline = env.now() + CLAIM_TIMEOUT;
    let id = ok(env.call(BUYER, FEE, |m| {
        m.place_order(
            u(8),
            TEMPLATE,
            PARAMS,
            Bytes::from(vec![1; 32]),
            deadline,
            0,
            EPS,
        )
    }));
    let order = ok(env.market.order(id));
    assert_eq!((order.1, order.5, order.6), (STRANGER, U256::ZERO, u(FEE)));
}

#[test]
fn place_order_refuses_bad_input() {
    let mut env = Env::new();
    let now = env.now();
    let place =
        |env: &mut Env, dataset: u64, template: B256, key_len: usize, deadline: u64, value: u64| {
            env.call(BUYER, value, |m| {
                m.place_order(
                    u(dataset),
                    template,
                    PARAMS,
                    Bytes::from(vec![7; key_len]),
                    deadline,
                    0,
                    EPS,
                )
            })
        };
    let soon = now + CLAIM_TIMEOUT;
    let full = PRICE + FEE;
    assert!(matches!(
        err(place(&mut env, DS, TEMPLATE, 32, soon, full - 1)),
        Error::PaymentTooLow(PaymentTooLow { sent, required }) if sent == u(full - 1) && required == u(full)
    ));
    assert!(matches!(
        err(place(&mut env, 99, TEMPLATE, 32, soon, full)),
        Error::DatasetNotOrderable(DatasetNotOrderable { datasetId, templateHash })
            if datasetId == u(99) && templateHash == TEMPLATE
    ));
    assert!(matches!(
        err(place(&mut env, DS, B256::ZERO, 32, soon, full)),
        Error::DatasetNotOrderable(_)
    ));
    // Before one claim could run its course (`claimTimeout` for a plan of no bootstraps), or
    // past the order lifetime.
    for deadline in [now - 1, now, now + 1, soon - 1, now + LIFETIME + 1] {
        assert!(matches!(
            err(place(&mut env, DS, TEMPLATE, 32, deadline, full)),
            Error::InvalidDeadline(InvalidDeadline { deadline: d }) if d == deadline
        ));
    }
    // A buyer key is an X25519 public key: a seller cannot seal to anything else.
    for key_len in [0, 1, 31, 33, 128, 129] {
        assert!(matches!(
            err(place(&mut env, DS, TEMPLATE, key_len, soon, full)),
            Error::InvalidBuyerKey(_)
        ));
    }
    // Nothing was kept from the refused calls.
    assert_eq!(env.market.order_count(), U256::ZERO);
    assert_eq!(env.host.balance(env.host.contract()), U256::ZERO);
    assert!(env.host.logs().is_empty());
    // Bounds are inclusive where they should be.
    ok(place(&mut env, DS, TEMPLATE, 32, now + LIFETIME, full));
    ok(place(&mut env, DS, TEMPLATE, 32, soon, full));
}

#[test]
fn a_deadline_too_short_for_the_plan_is_refused_and_a_long_plan_gets_a_long_claim() {
    let mut env = Env::new();
    let now = env.now();
    // A plan of 2 000 bootstraps: 100 s more than `claimTimeout` for one claim.
    let pbs = 100 * PBS_PER_SECOND;
    let window = CLAIM_TIMEOUT + 100;
    let place = |env: &mut Env, deadline: u64| {
        env.call(BUYER, PRICE + FEE, |m| {
            m.place_order(
                u(DS),
                TEMPLATE,
                PARAMS,
                Bytes::from(vec![7; 32]),
                deadline,
                pbs,
                EPS,
            )
        })
    };
    assert!(matches!(
        err(place(&mut env, now + window - 1)),
        Error::InvalidDeadline(_)
    ));
    let id = ok(place(&mut env, now + window + 50));
    assert_eq!(ok(env.market.order(id)).10, pbs);
    // Its claim outlasts `claimTimeout` by the plan's time: no other worker takes it over, and
    // its worker still submits, until the window has passed.
    let (first, second) = (key(1), key(2));
    env.register(addr_of(&first), MIN_BOND);
    env.register(addr_of(&second), MIN_BOND);
    ok(env.claim(addr_of(&first), id));
    env.advance(window);
    assert!(matches!(
        err(env.claim(addr_of(&second), id)),
        Error::OrderNotClaimable(_)
    ));
    let checkpoint = env.host.checkpoint();
    ok(env.submit(&first, id));
    env.host.restore(checkpoint);
    env.advance(1);
    assert!(matches!(
        err(env.submit(&first, id)),
        Error::ClaimExpired(_)
    ));
    ok(env.claim(addr_of(&second), id));
}

#[test]
fn place_order_reports_a_registry_answering_garbage() {
    let mut env = Env::new();
    env.host.on_call(REGISTRY, |_| Ok(vec![1, 2, 3]));
    let deadline = env.now() + CLAIM_TIMEOUT;
    assert!(matches!(
        err(env.call(BUYER, PRICE + FEE, |m| m.place_order(
            u(DS),
            TEMPLATE,
            PARAMS,
            Bytes::from(vec![1; 32]),
            deadline,
            0,
            EPS,
        ))),
        Error::RegistryCallFailed(_)
    ));
}

#[test]
fn errors_encode_as_their_solidity_selectors() {
    let error = Error::DatasetNotOrderable(DatasetNotOrderable {
        datasetId: u(3),
        templateHash: TEMPLATE,
    });
    let encoded = Vec::<u8>::from(error);
    assert_eq!(
        encoded,
        DatasetNotOrderable {
            datasetId: u(3),
            templateHash: TEMPLATE
        }
        .abi_encode()
    );
    assert_eq!(
        &encoded[..4],
        &keccak256(b"DatasetNotOrderable(uint256,bytes32)")[..4]
    );
}

// ----- Workers -----

#[test]
fn workers_register_top_up_and_withdraw_their_bond() {
    let mut env = Env::new();
    let worker = addr_of(&key(1));
    assert!(matches!(
        err(env.call(worker, MIN_BOND - 1, QueryMarket::register_worker)),
        Error::BondTooLow(BondTooLow { bond, required }) if bond == u(MIN_BOND - 1) && required == u(MIN_BOND)
    ));
    assert!(matches!(
        err(env.call(worker, 0, QueryMarket::withdraw_bond)),
        Error::NotWorker(NotWorker { account }) if account == worker
    ));
    env.register(worker, MIN_BOND);
    env.register(worker, 0);
    env.register(worker, 7);
    assert_eq!(env.market.worker_bond(worker), u(MIN_BOND + 7));
    assert_eq!(env.market.total_bonds(), u(MIN_BOND + 7));
    let registered = events::<WorkerRegistered>(&env.host);
    assert_eq!(
        registered
            .iter()
            .map(|e| (e.worker, e.bond))
            .collect::<Vec<_>>(),
        vec![
            (worker, u(MIN_BOND)),
            (worker, u(MIN_BOND)),
            (worker, u(MIN_BOND + 7))
        ]
    );
    env.assert_solvent();

    // Busy while holding a claim.
    let id = env.place(BUYER, PRICE + FEE);
    ok(env.claim(worker, id));
    assert_eq!(env.market.active_claims(worker), 1);
    assert!(matches!(
        err(env.call(worker, 0, QueryMarket::withdraw_bond)),
        Error::WorkerBusy(WorkerBusy { activeClaims: 1 })
    ));
    env.advance(LIFETIME);
    ok(env.call(BUYER, 0, |m| m.refund(id)));
    assert_eq!(env.market.active_claims(worker), 0);

    ok(env.call(worker, 0, QueryMarket::withdraw_bond));
    assert_eq!(env.market.worker_bond(worker), U256::ZERO);
    assert_eq!(env.market.total_bonds(), U256::ZERO);
    // The claim had timed out before the refund: an eighth of the minimum bond went to the buyer.
    let forfeit = MIN_BOND >> 3;
    assert_eq!(env.market.payout_of(worker), u(MIN_BOND + 7 - forfeit));
    assert_eq!(env.market.payout_of(BUYER), u(PRICE + FEE + forfeit));
    let withdrawn = events::<WorkerBondWithdrawn>(&env.host);
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(
        (withdrawn[0].worker, withdrawn[0].amount),
        (worker, u(MIN_BOND + 7 - forfeit))
    );
    env.assert_solvent();
    // Unregistered now: no second withdrawal, no claims.
    assert!(matches!(
        err(env.call(worker, 0, QueryMarket::withdraw_bond)),
        Error::NotWorker(_)
    ));
    let next = env.place(BUYER, PRICE + FEE);
    assert!(matches!(err(env.claim(worker, next)), Error::NotWorker(_)));
}

// ----- claimOrder -----

#[test]
fn claims_are_exclusive_until_they_time_out() {
    let mut env = Env::new();
    let first = addr_of(&key(1));
    let second = addr_of(&key(2));
    env.register(first, MIN_BOND);
    env.register(second, MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    assert!(matches!(
        err(env.claim(STRANGER, id)),
        Error::NotWorker(NotWorker { account }) if account == STRANGER
    ));
    assert!(matches!(
        err(env.claim(first, u(9))),
        Error::UnknownOrder(UnknownOrder { orderId }) if orderId == u(9)
    ));
    ok(env.claim(first, id));
    let claimed_at = env.now();
    assert_eq!(ok(env.market.order_work(id)).0, first);
    assert_eq!(ok(env.market.order_work(id)).1, claimed_at);
    assert_eq!(env.status(id), status::CLAIMED);
    let claims = events::<OrderClaimed>(&env.host);
    assert_eq!(
        (claims[0].orderId, claims[0].worker, claims[0].claimedAt),
        (id, first, claimed_at)
    );

    // Double claim, by the same or another worker, until the timeout has passed.
    for worker in [first, second] {
        assert!(matches!(
            err(env.claim(worker, id)),
            Error::OrderNotClaimable(OrderNotClaimable { orderId, status: 2 }) if orderId == id
        ));
    }
    env.advance(CLAIM_TIMEOUT);
    assert!(matches!(
        err(env.claim(second, id)),
        Error::OrderNotClaimable(_)
    ));
    env.advance(1);
    ok(env.claim(second, id));
    assert_eq!(ok(env.market.order_work(id)).0, second);
    assert_eq!(env.market.active_claims(first), 0);
    assert_eq!(env.market.active_claims(second), 1);
    // The first worker lost the claim: it can neither submit nor withdraw-block anything.
    assert!(matches!(
        err(env.submit(&key(1), id)),
        Error::Unauthorized(Unauthorized { orderId, account }) if orderId == id && account == first
    ));
    ok(env.call(first, 0, QueryMarket::withdraw_bond));
    // The first worker let its claim lapse: an eighth of the minimum bond went to the buyer.
    let forfeit = MIN_BOND >> 3;
    assert_eq!(env.market.payout_of(first), u(MIN_BOND - forfeit));
    assert_eq!(env.market.payout_of(BUYER), u(forfeit));
    assert_eq!(events::<ClaimForfeited>(&env.host).len(), 1);
    env.assert_solvent();
}

#[test]
fn a_worker_cannot_reclaim_its_own_expired_claim() {
    let mut env = Env::new();
    let (lazy, other) = (addr_of(&key(1)), addr_of(&key(2)));
    env.register(lazy, MIN_BOND);
    env.register(other, MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    ok(env.claim(lazy, id));
    // It lets the claim time out and tries to claim again (keeping the order from everyone
    // else at no cost): refused.
    env.advance(CLAIM_TIMEOUT + 1);
    assert!(matches!(
        err(env.claim(lazy, id)),
        Error::OrderNotClaimable(OrderNotClaimable { orderId, status: 2 }) if orderId == id
    ));
    assert_eq!(env.market.worker_bond(lazy), u(MIN_BOND), "nothing changed");
    // Another worker takes it over, and the lapsed claim is paid for.
    ok(env.claim(other, id));
    assert_eq!(env.market.worker_bond(lazy), u(MIN_BOND - (MIN_BOND >> 3)));
    assert_eq!(env.market.active_claims(lazy), 0);
    env.assert_solvent();
}

#[test]
fn an_expired_claim_costs_its_worker_part_of_the_bond() {
    let mut env = Env::new();
    let lazy = addr_of(&key(1));
    env.register(lazy, MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    ok(env.claim(lazy, id));
    ok(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, id)));
    let deadline = ok(env.market.order(id)).8;
    env.advance(deadline - env.now() + 1);
    env.host.clear_logs();
    // Nobody took the order over; at the deadline the lapsed claim is charged on refund, to
    // the receipt's owner.
    ok(env.call(SELLER, 0, |m| m.refund(id)));
    let forfeit = MIN_BOND >> 3;
    assert_eq!(env.market.worker_bond(lazy), u(MIN_BOND - forfeit));
    assert_eq!(env.market.payout_of(STRANGER), u(PRICE + FEE + forfeit));
    let forfeited = events::<ClaimForfeited>(&env.host);
    assert_eq!(
        (
            forfeited[0].orderId,
            forfeited[0].worker,
            forfeited[0].amount
        ),
        (id, lazy, u(forfeit))
    );
    // Its bond is now below the minimum: no more claims until it tops up.
    let next = env.place(BUYER, PRICE + FEE);
    assert!(matches!(err(env.claim(lazy, next)), Error::NotWorker(_)));
    env.register(lazy, forfeit);
    ok(env.claim(lazy, next));
    env.assert_solvent();
}

#[test]
fn a_buyer_cannot_work_its_own_order() {
    let mut env = Env::new();
    let buyer = addr_of(&key(1));
    let sybil = addr_of(&key(2));
    env.register(buyer, MIN_BOND);
    env.register(sybil, MIN_BOND);
    let id = env.place(buyer, PRICE + FEE);
    assert!(matches!(
        err(env.claim(buyer, id)),
        Error::PartyCannotWork(PartyCannotWork { orderId, account }) if orderId == id && account == buyer
    ));
    // Selling the receipt to a second address does not let either of them work it.
    ok(env.call(buyer, 0, |m| m.transfer_from(buyer, sybil, id)));
    for party in [buyer, sybil] {
        assert!(matches!(
            err(env.claim(party, id)),
            Error::PartyCannotWork(_)
        ));
    }
    assert_eq!(env.status(id), status::OPEN);
}

#[test]
fn a_seller_cannot_work_an_order_on_its_own_dataset() {
    let mut env = Env::new();
    env.register(SELLER, MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    assert!(matches!(
        err(env.claim(SELLER, id)),
        Error::PartyCannotWork(PartyCannotWork { account, .. }) if account == SELLER
    ));
    assert_eq!(env.status(id), status::OPEN);
}

#[test]
fn one_bond_backs_a_bounded_number_of_claims() {
    let mut env = Env::new();
    let worker = addr_of(&key(1));
    env.register(worker, MIN_BOND);
    let orders: Vec<U256> = (0..=CLAIMS_PER_MIN_BOND)
        .map(|_| env.place(BUYER, PRICE + FEE))
        .collect();
    for &id in &orders[..orders.len() - 1] {
        ok(env.claim(worker, id));
    }
    let last = orders[orders.len() - 1];
    assert!(matches!(
        err(env.claim(worker, last)),
        Error::WorkerBusy(WorkerBusy { activeClaims }) if activeClaims == CLAIMS_PER_MIN_BOND
    ));
    // More bond backs more claims.
    env.register(worker, MIN_BOND);
    ok(env.claim(worker, last));
    assert_eq!(env.market.active_claims(worker), CLAIMS_PER_MIN_BOND + 1);
}

#[test]
fn claims_refuse_expired_and_computed_orders() {
    let mut env = Env::new();
    let worker = addr_of(&key(1));
    env.register(worker, MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    let deadline = ok(env.market.order(id)).8;
    env.advance(deadline - env.now());
    let late = env.place(BUYER, PRICE + FEE);
    env.advance(1);
    assert!(matches!(
        err(env.claim(worker, id)),
        Error::OrderExpired(OrderExpired { orderId, deadline: d }) if orderId == id && d == deadline
    ));
    ok(env.claim(worker, late));
    ok(env.submit(&key(1), late));
    env.advance(CLAIM_TIMEOUT + 1);
    let other = addr_of(&key(2));
    env.register(other, MIN_BOND);
    assert!(matches!(
        err(env.claim(other, late)),
        Error::OrderNotClaimable(OrderNotClaimable { status: 3, .. })
    ));
}

#[test]
fn a_slashed_worker_cannot_claim_until_it_tops_up() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(2);
    env.overturn(id);
    let next = env.place(BUYER, PRICE + FEE);
    assert!(matches!(
        err(env.claim(addr_of(&worker), next)),
        Error::NotWorker(_)
    ));
    env.register(addr_of(&worker), MIN_BOND);
    ok(env.claim(addr_of(&worker), next));
}

// ----- submitResult -----

#[test]
fn submit_result_accepts_the_claimants_attestation() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    assert_eq!(env.status(id), status::COMPUTED);
    let work = ok(env.market.order_work(id));
    assert_eq!(work.2, Bytes::from(b"bafy-result".to_vec()));
    assert_eq!(work.3, RESULT);
    let signature = ok(env.market.attestation_signature(id));
    assert_eq!(signature.to_vec(), sign(&worker, env.digest(id, RESULT)));
    let submitted = events::<ResultSubmitted>(&env.host);
    assert_eq!(submitted.len(), 1);
    assert_eq!(
        (
            submitted[0].orderId,
            submitted[0].worker,
            submitted[0].resultCid.to_vec(),
            submitted[0].resultHash
        ),
        (id, addr_of(&worker), b"bafy-result".to_vec(), RESULT)
    );
    // The signature went through the ecrecover precompile.
    assert!(
        env.host
            .calls()
            .iter()
            .any(|c| c.to == datacloud_contract_test_host::ECRECOVER && c.is_static)
    );
    // Computed orders take no second result.
    assert!(matches!(
        err(env.submit(&worker, id)),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 3, .. })
    ));
}

#[test]
fn submit_result_accepts_v_as_zero_or_one() {
    let mut env = Env::new();
    let worker = key(1);
    env.register(addr_of(&worker), MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    ok(env.claim(addr_of(&worker), id));
    let mut signature = sign(&worker, env.digest(id, RESULT));
    signature[64] -= 27;
    ok(env.submit_signed(addr_of(&worker), id, signature));
}

#[test]
fn submit_result_refuses_bad_attestations() {
    let mut env = Env::new();
    let worker = key(1);
    let w = addr_of(&worker);
    env.register(w, MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    ok(env.claim(w, id));
    let good = sign(&worker, env.digest(id, RESULT));

    let foreign = sign(&key(2), env.digest(id, RESULT));
    let wrong_digest = sign(&worker, env.digest(id, B256::ZERO));
    let mut bad_v = good.clone();
    bad_v[64] = 29;
    let mut zero_r = good.clone();
    zero_r[..32].fill(0);
    let cases = vec![
        ("foreign signer", foreign),
        ("other result hash", wrong_digest),
        ("high s", high_s(&good)),
        ("v = 29", bad_v),
        ("r = 0", zero_r),
        ("64 bytes", good[..64].to_vec()),
        ("66 bytes", [good.as_slice(), &[0]].concat()),
        ("empty", Vec::new()),
    ];
    for (what, signature) in cases {
        assert!(
            matches!(
                err(env.submit_signed(w, id, signature)),
                Error::InvalidAttestation(_)
            ),
            "{what}"
        );
    }
    assert_eq!(env.status(id), status::CLAIMED);
    // The high-s twin really is the same signer's signature: only EIP-2 refuses it.
    let twin = high_s(&good);
    let recovered = alloy_primitives::Signature::from_raw(&twin)
        .expect("65 bytes")
        .recover_address_from_prehash(&env.digest(id, RESULT))
        .expect("recovers");
    assert_eq!(recovered, w);
    ok(env.submit_signed(w, id, good));
}

#[test]
fn submit_result_checks_caller_status_time_and_cid() {
    let mut env = Env::new();
    let worker = key(1);
    let w = addr_of(&worker);
    env.register(w, MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    assert!(matches!(
        err(env.submit(&worker, id)),
        Error::InvalidOrderStatus(InvalidOrderStatus { orderId, status: 1 }) if orderId == id
    ));
    assert!(matches!(
        err(env.submit_signed(w, u(42), vec![0; 65])),
        Error::UnknownOrder(_)
    ));
    ok(env.claim(w, id));
    // Another worker, even with a valid signature of its own.
    let other = key(2);
    env.register(addr_of(&other), MIN_BOND);
    assert!(matches!(
        err(env.submit(&other, id)),
        Error::Unauthorized(_)
    ));
    for cid_len in [0, 129] {
        let signature = sign(&worker, env.digest(id, RESULT));
        assert!(matches!(
            err(env.call(w, 0, |m| m.submit_result(
                id,
                Bytes::from(vec![1; cid_len]),
                RESULT,
                Bytes::from(signature)
            ))),
            Error::InvalidCid(_)
        ));
    }
    env.advance(CLAIM_TIMEOUT + 1);
    assert!(matches!(
        err(env.submit(&worker, id)),
        Error::ClaimExpired(ClaimExpired { orderId }) if orderId == id
    ));
}

#[test]
fn submit_result_refuses_after_the_deadline() {
    let mut env = Env::new();
    let worker = key(1);
    env.register(addr_of(&worker), MIN_BOND);
    let id = env.place(BUYER, PRICE + FEE);
    // Claimed late: the claim would run past the order's deadline (500 s from placement).
    env.advance(450);
    ok(env.claim(addr_of(&worker), id));
    env.advance(51);
    assert!(matches!(
        err(env.submit(&worker, id)),
        Error::OrderExpired(OrderExpired { orderId, .. }) if orderId == id
    ));
}

// ----- deliverResult -----

#[test]
fn deliver_result_settles_on_a_healthy_dataset() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE + 3);
    // The receipt moved: the excess goes to its owner now.
    ok(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, id)));
    assert!(matches!(
        err(env.deliver(STRANGER, id)),
        Error::Unauthorized(Unauthorized { orderId, account }) if orderId == id && account == STRANGER
    ));
    for cid_len in [0, 129] {
        assert!(matches!(
            err(env.call(SELLER, 0, |m| m.deliver_result(
                id,
                Bytes::from(vec![1; cid_len]),
                Bytes::new()
            ))),
            Error::InvalidCid(_)
        ));
    }
    env.host.clear_logs();
    ok(env.deliver(SELLER, id));
    let m = &env.market;
    assert_eq!(env.status(id), status::SETTLED);
    assert_eq!(m.payout_of(SELLER), u(PRICE));
    assert_eq!(m.payout_of(addr_of(&worker)), u(FEE));
    assert_eq!(m.payout_of(STRANGER), u(3));
    assert_eq!(m.payout_of(BUYER), U256::ZERO);
    assert_eq!(m.total_escrow(), U256::ZERO);
    assert_eq!(m.open_order_count(u(DS)), U256::ZERO);
    assert_eq!(m.active_claims(addr_of(&worker)), 0);
    assert_eq!(m.worker_bond(addr_of(&worker)), u(MIN_BOND));
    assert_eq!(
        ok(m.order_work(id)).4,
        Bytes::from(b"bafy-delivery".to_vec())
    );
    env.assert_solvent();
    let delivered = events::<ResultDelivered>(&env.host);
    assert_eq!(
        (delivered[0].orderId, delivered[0].deliveryCid.to_vec()),
        (id, b"bafy-delivery".to_vec())
    );
    let settled = events::<OrderSettled>(&env.host);
    assert_eq!(
        (
            settled[0].orderId,
            settled[0].sellerAmount,
            settled[0].workerAmount,
            settled[0].excess
        ),
        (id, u(PRICE), u(FEE), u(3))
    );
    assert!(events::<OrderFailed>(&env.host).is_empty());
    // The proof manager was asked with a static call.
    assert!(
        env.host
            .calls()
            .iter()
            .any(|c| c.to == PROOF_MANAGER && c.is_static)
    );
    // Settled orders are final.
    assert!(matches!(
        err(env.deliver(SELLER, id)),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 4, .. })
    ));
    env.advance(LIFETIME);
    assert!(matches!(
        err(env.call(STRANGER, 0, |m| m.refund(id))),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 4, .. })
    ));
}

#[test]
fn a_delivery_on_an_unhealthy_dataset_pays_the_worker_and_refunds_the_buyer_the_rest() {
    for health in [0u8, 2, 3] {
        let mut env = Env::new();
        let (id, worker) = env.computed(PRICE + FEE + 3);
        env.health.set(health);
        env.host.clear_logs();
        ok(env.deliver(SELLER, id));
        assert_eq!(env.status(id), status::FAILED);
        // The worker did its part and is paid; the buyer gets the rest, the seller nothing.
        assert_eq!(env.market.payout_of(BUYER), u(PRICE + 3));
        assert_eq!(env.market.payout_of(SELLER), U256::ZERO);
        assert_eq!(env.market.payout_of(addr_of(&worker)), u(FEE));
        assert_eq!(env.market.worker_bond(addr_of(&worker)), u(MIN_BOND));
        assert_eq!(env.market.active_claims(addr_of(&worker)), 0);
        assert_eq!(env.market.open_order_count(u(DS)), U256::ZERO);
        env.assert_solvent();
        let failed = events::<OrderFailed>(&env.host);
        assert_eq!((failed[0].orderId, failed[0].health), (id, health));
        assert!(events::<OrderSettled>(&env.host).is_empty());
        assert_eq!(events::<ResultDelivered>(&env.host).len(), 1);
    }
}

#[test]
fn a_closing_order_is_compensated_for_the_lapses_while_it_was_open() {
    // Slashed stake refunds the stranded buyers first (issue 16 item 2): each order carries the
    // registry's compensation index from its placement and, closing however it closes, has the
    // registry pay its receipt's owner what the index gained since.
    let mut env = Env::new();
    let refused = env.place(BUYER, PRICE + FEE);
    env.compensation_index.set(40);
    let (delivered, _worker) = env.computed(PRICE + FEE);
    env.compensation_index.set(70);
    ok(env.call(SELLER, 0, |m| m.refund(refused)));
    ok(env.deliver(SELLER, delivered));
    assert_eq!(
        *env.compensations.borrow(),
        vec![
            // Open through both lapses: 70, at most its price.
            (u(DS), U256::ZERO, BUYER, u(PRICE), u(70)),
            // Placed after the first: 30.
            (u(DS), u(40), BUYER, u(PRICE), u(30)),
        ]
    );
    // A registry that refuses the compensation refuses the close: nothing is half done.
    let (stuck, _) = env.computed(PRICE + FEE);
    env.compensation_index.set(0);
    assert!(matches!(
        err(env.deliver(SELLER, stuck)),
        Error::RegistryCallFailed(_)
    ));
    assert_eq!(env.status(stuck), status::COMPUTED);
    env.assert_solvent();
}

#[test]
fn deliver_result_needs_a_computed_order_and_a_working_proof_manager() {
    let mut env = Env::new();
    let id = env.place(BUYER, PRICE + FEE);
    assert!(matches!(
        err(env.deliver(SELLER, id)),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 1, .. })
    ));
    assert!(matches!(
        err(env.deliver(SELLER, u(5))),
        Error::UnknownOrder(_)
    ));
    let (id, _) = env.computed(PRICE + FEE);
    env.host.on_call(PROOF_MANAGER, |_| Err(b"boom".to_vec()));
    assert!(matches!(
        err(env.deliver(SELLER, id)),
        Error::ProofManagerCallFailed(_)
    ));
    env.host.on_call(PROOF_MANAGER, |_| Ok(Vec::new()));
    assert!(matches!(
        err(env.deliver(SELLER, id)),
        Error::ProofManagerCallFailed(_)
    ));
    assert_eq!(env.status(id), status::COMPUTED);
}

// ----- Delivery evidence, refusals and the delivery window -----

#[test]
fn a_delivery_not_signed_by_the_seller_is_refused() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    let good = env.delivery_signature(&seller_key(), id, DELIVERY_CID);
    // Signed by the seller, but over something else than this order's result and this CID.
    let other_result = {
        let delivery = Delivery {
            orderId: id,
            resultHash: WRONG,
            deliveryCid: Bytes::from(DELIVERY_CID),
        };
        sign(&seller_key(), delivery.eip712_signing_hash(&env.domain()))
    };
    let forged = [
        env.delivery_signature(&key(0x77), id, DELIVERY_CID),
        env.delivery_signature(&worker, id, DELIVERY_CID),
        env.delivery_signature(&seller_key(), id, b"bafy-other"),
        other_result,
        high_s(&good),
        good[..64].to_vec(),
        Vec::new(),
    ];
    for signature in forged {
        assert!(matches!(
            err(env.call(SELLER, 0, |m| m.deliver_result(
                id,
                Bytes::from(DELIVERY_CID),
                Bytes::from(signature)
            ))),
            Error::InvalidDeliverySignature(_)
        ));
        assert_eq!(env.status(id), status::COMPUTED);
    }
    env.host.clear_logs();
    ok(env.call(SELLER, 0, |m| {
        m.deliver_result(id, Bytes::from(DELIVERY_CID), Bytes::from(good.clone()))
    }));
    assert_eq!(env.status(id), status::SETTLED);
    // The buyer's evidence: the event carries the signature, which recovers the seller.
    let delivered = events::<ResultDelivered>(&env.host);
    assert_eq!(delivered[0].signature.to_vec(), good);
    let digest = Delivery {
        orderId: id,
        resultHash: RESULT,
        deliveryCid: delivered[0].deliveryCid.clone(),
    }
    .eip712_signing_hash(&env.domain());
    let recovered = alloy_primitives::Signature::try_from(good.as_slice())
        .expect("65 bytes")
        .recover_address_from_prehash(&digest)
        .expect("recovers");
    assert_eq!(recovered, SELLER);
}

#[test]
fn a_seller_that_leaves_a_result_undelivered_pays_the_worker_and_a_penalty() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE + 4);
    // Within the window (and before the deadline) nobody but the seller closes it.
    env.advance(CLAIM_TIMEOUT);
    for caller in [BUYER, STRANGER, addr_of(&worker)] {
        assert!(matches!(
            err(env.call(caller, 0, |m| m.refund(id))),
            Error::DeadlineNotPassed(_)
        ));
    }
    env.advance(1);
    assert!(
        env.now() <= ok(env.market.order(id)).8,
        "before the deadline"
    );
    env.host.clear_logs();
    ok(env.call(STRANGER, 0, |m| m.refund(id)));
    assert_eq!(env.status(id), status::REFUNDED);
    assert_eq!(env.market.payout_of(addr_of(&worker)), u(FEE));
    assert_eq!(env.market.payout_of(BUYER), u(PRICE + 4));
    assert_eq!(env.market.payout_of(SELLER), U256::ZERO);
    assert_eq!(env.market.open_order_count(u(DS)), U256::ZERO);
    env.assert_solvent();
    // The seller's stake pays the price to the receipt's owner, by a mutating call.
    assert_eq!(
        *env.slashes.borrow(),
        vec![(u(DS), u(PRICE), BUYER, u(PRICE))]
    );
    assert!(
        env.host
            .calls()
            .iter()
            .any(|c| c.to == REGISTRY && !c.is_static)
    );
    let refunded = events::<OrderRefunded>(&env.host);
    assert_eq!(
        (refunded[0].reason, refunded[0].penalty, refunded[0].amount),
        (refund_reason::UNDELIVERED, u(PRICE), u(PRICE + 4))
    );

    // The seller closing its own late order pays the same: a late refusal is no refusal.
    let (late, _) = env.computed(PRICE + FEE);
    env.advance(CLAIM_TIMEOUT + 1);
    env.host.clear_logs();
    ok(env.call(SELLER, 0, |m| m.refund(late)));
    let refunded = events::<OrderRefunded>(&env.host);
    // What is left of the stake (STAKE - PRICE) still covers the price.
    assert_eq!(
        (refunded[0].reason, refunded[0].penalty),
        (refund_reason::UNDELIVERED, u(PRICE))
    );

    // The stake pays at most what it holds.
    env.stake.set(7);
    let (poor, _) = env.computed(PRICE + FEE);
    env.advance(CLAIM_TIMEOUT + 1);
    env.host.clear_logs();
    ok(env.call(BUYER, 0, |m| m.refund(poor)));
    assert_eq!(events::<OrderRefunded>(&env.host)[0].penalty, u(7));

    // On a dataset that is not healthy the proofs' slashing is the seller's penalty: the
    // order is refunded (worker paid) without a second one.
    env.health.set(2);
    let (unhealthy, _) = env.computed(PRICE + FEE);
    env.advance(CLAIM_TIMEOUT + 1);
    env.host.clear_logs();
    let slashes = env.slashes.borrow().len();
    ok(env.call(BUYER, 0, |m| m.refund(unhealthy)));
    let refunded = events::<OrderRefunded>(&env.host);
    assert_eq!(
        (refunded[0].reason, refunded[0].penalty),
        (refund_reason::UNDELIVERED, U256::ZERO)
    );
    assert_eq!(env.slashes.borrow().len(), slashes);
    env.assert_solvent();
}

#[test]
fn the_seller_refuses_an_order_and_its_buyer_is_refunded_at_once() {
    let mut env = Env::new();
    let worker = key(1);
    env.register(addr_of(&worker), MIN_BOND);
    let open = env.place(BUYER, PRICE + FEE);
    let claimed = env.place(BUYER, PRICE + FEE);
    ok(env.claim(addr_of(&worker), claimed));
    let (computed, _) = env.computed(PRICE + FEE + 1);
    // Nobody else refuses for the seller.
    for caller in [BUYER, STRANGER, addr_of(&worker)] {
        assert!(matches!(
            err(env.call(caller, 0, |m| m.refund(open))),
            Error::DeadlineNotPassed(_)
        ));
    }
    // A claimed order is the worker's to finish: the seller waits for its result.
    assert!(matches!(
        err(env.call(SELLER, 0, |m| m.refund(claimed))),
        Error::DeadlineNotPassed(_)
    ));
    env.host.clear_logs();
    ok(env.call(SELLER, 0, |m| m.refund(open)));
    ok(env.call(SELLER, 0, |m| m.refund(computed)));
    assert_eq!(env.status(open), status::REFUNDED);
    assert_eq!(env.status(computed), status::REFUNDED);
    assert_eq!(env.status(claimed), status::CLAIMED);
    // The buyer gets everything back, less the fee of the worker that computed.
    assert_eq!(env.market.payout_of(BUYER), u(PRICE + FEE + PRICE + 1));
    assert_eq!(env.market.payout_of(addr_of(&worker)), u(FEE));
    assert_eq!(env.market.active_claims(addr_of(&worker)), 1);
    assert!(
        env.slashes.borrow().is_empty(),
        "a refusal costs no penalty"
    );
    let refunded = events::<OrderRefunded>(&env.host);
    assert_eq!(
        refunded
            .iter()
            .map(|e| (e.orderId, e.reason, e.penalty))
            .collect::<Vec<_>>(),
        vec![
            (open, refund_reason::REFUSED, U256::ZERO),
            (computed, refund_reason::REFUSED, U256::ZERO)
        ]
    );
    env.assert_solvent();
}

/// `(datasetId, asked, left)` of an `InvalidEpsilon` refusal.
fn refused_epsilon(error: Error) -> (U256, u64, u64) {
    match error {
        Error::InvalidEpsilon(e) => (e.datasetId, e.asked, e.left),
        _ => panic!("expected InvalidEpsilon"),
    }
}

#[test]
fn the_privacy_budget_is_the_datasets_for_every_buyer_together() {
    // The sybil attack on a per-address budget: each fresh address (or each receipt holder)
    // would get a fresh budget. The market counts ε per dataset, whoever places the order.
    let mut env = Env::new();
    env.budget.set(2 * EPS);
    let first = ok(env.place_spending(BUYER, PRICE + FEE, EPS));
    ok(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, first)));
    ok(env.place_spending(STRANGER, PRICE + FEE, EPS));
    for sybil in [BUYER, STRANGER, Address::repeat_byte(0x5b)] {
        assert_eq!(
            refused_epsilon(err(env.place_spending(sybil, PRICE + FEE, 1))),
            (u(DS), 1, 0)
        );
    }
    assert_eq!(env.market.epsilon_spent(u(DS)), 2 * EPS);
    assert_eq!(env.market.order_count(), u(2));
    // The owner's renewal (the registry answers a larger budget) lets orders in again, and
    // differential privacy is not optional: an order spending no ε is refused whatever is left.
    env.budget.set(3 * EPS);
    assert_eq!(
        refused_epsilon(err(env.place_spending(BUYER, PRICE + FEE, 0))),
        (u(DS), 0, EPS)
    );
    assert_eq!(
        refused_epsilon(err(env.place_spending(BUYER, PRICE + FEE, EPS + 1))),
        (u(DS), EPS + 1, EPS)
    );
    let third = ok(env.place_spending(BUYER, PRICE + FEE, EPS));
    assert_eq!(ok(env.market.order(third)).11, EPS);
    assert_eq!(env.market.epsilon_spent(u(DS)), 3 * EPS);
    env.assert_solvent();
}

#[test]
fn an_order_gives_its_epsilon_back_only_when_nothing_about_the_data_was_released() {
    let mut env = Env::new();
    // Refused while open (the refusal reads only the public plan): given back.
    let open = env.place(BUYER, PRICE + FEE);
    assert_eq!(env.market.epsilon_spent(u(DS)), EPS);
    ok(env.call(SELLER, 0, |m| m.refund(open)));
    assert_eq!(env.market.epsilon_spent(u(DS)), 0);
    // Expired: given back.
    let expired = env.place(BUYER, PRICE + FEE);
    env.advance(501);
    ok(env.call(STRANGER, 0, |m| m.refund(expired)));
    assert_eq!(env.market.epsilon_spent(u(DS)), 0);
    // Computed and left undelivered: nothing was released, given back.
    let (undelivered, _) = env.computed(PRICE + FEE);
    env.advance(CLAIM_TIMEOUT + 1);
    ok(env.call(STRANGER, 0, |m| m.refund(undelivered)));
    assert_eq!(env.market.epsilon_spent(u(DS)), 0);
    // A computed result the seller refuses (its policy read the decrypted data): kept.
    let (refused, _) = env.computed(PRICE + FEE);
    ok(env.call(SELLER, 0, |m| m.refund(refused)));
    assert_eq!(env.market.epsilon_spent(u(DS)), EPS);
    // Delivered, settled or failed: kept.
    let (settled, _) = env.computed(PRICE + FEE);
    ok(env.deliver(SELLER, settled));
    assert_eq!(env.market.epsilon_spent(u(DS)), 2 * EPS);
    let (failed, _) = env.computed(PRICE + FEE);
    env.health.set(2);
    ok(env.deliver(SELLER, failed));
    assert_eq!(env.status(failed), status::FAILED);
    assert_eq!(env.market.epsilon_spent(u(DS)), 3 * EPS);
    env.assert_solvent();
}

#[test]
fn an_upheld_dispute_restarts_the_delivery_window() {
    let mut env = Env::new();
    env.register_verifiers(2);
    let (id, _) = env.computed(PRICE + FEE);
    env.advance(CLAIM_TIMEOUT - 10);
    ok(env.call(BUYER, MIN_BOND, |m| m.dispute(id)));
    ok(env.verdict(id, Bytes::from(b"bafy-result".to_vec()), RESULT));
    assert_eq!(env.status(id), status::COMPUTED);
    // Past the first window, but the seller could not deliver while the order was disputed.
    env.advance(20);
    assert!(matches!(
        err(env.call(STRANGER, 0, |m| m.refund(id))),
        Error::DeadlineNotPassed(_)
    ));
    env.advance(CLAIM_TIMEOUT);
    env.host.clear_logs();
    ok(env.call(STRANGER, 0, |m| m.refund(id)));
    assert_eq!(
        events::<OrderRefunded>(&env.host)[0].reason,
        refund_reason::UNDELIVERED
    );
    env.assert_solvent();
}

// ----- Disputes -----

/// A wrong answer, and another one.
const WRONG: B256 = B256::repeat_byte(0x66);
const OTHER: B256 = B256::repeat_byte(0x67);

/// The order's worker's result CID (what `Env::submit_signed` submits).
fn result_cid() -> Bytes {
    Bytes::from(b"bafy-result".to_vec())
}

fn wrong_cid() -> Bytes {
    Bytes::from(b"bafy-wrong".to_vec())
}

#[test]
fn a_seller_cannot_take_an_honest_workers_bond_by_disputing() {
    // The attack of audit C-2: the seller buys its own dataset from a second address, lets an
    // honest worker compute, then disputes. A verifier recomputes, agrees with the worker, and
    // the seller's dispute bond pays the verifier and the worker; the worker keeps its bond.
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    let w = addr_of(&worker);
    env.register_verifiers(1);
    env.host.clear_logs();
    ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
    assert_eq!(env.status(id), status::DISPUTED);
    let verifier = env.verifier(id);
    assert_eq!(verifier, addr_of(&key(2)));
    assert_eq!(env.market.active_claims(verifier), 1);
    assert_eq!(env.market.total_dispute_bonds(), u(MIN_BOND));
    env.assert_solvent();
    let (disputer, bond, round, _, deadline) = ok(env.market.dispute_of(id));
    assert_eq!((disputer, bond, round), (SELLER, u(MIN_BOND), 1));
    assert_eq!(deadline, env.now() + CLAIM_TIMEOUT);
    let assigned = events::<VerifierAssigned>(&env.host);
    assert_eq!(
        (
            assigned[0].orderId,
            assigned[0].verifier,
            assigned[0].round,
            assigned[0].deadline
        ),
        (id, verifier, 1, deadline)
    );
    // Neither delivery nor refund while the verifier works.
    assert!(matches!(
        err(env.deliver(SELLER, id)),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 7, .. })
    ));
    env.advance(LIFETIME);
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.refund(id))),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 7, .. })
    ));
    env.host.vm().set_block_timestamp(deadline);
    ok(env.verdict(id, result_cid(), RESULT));
    assert_eq!(env.status(id), status::COMPUTED);
    assert_eq!(env.market.payout_of(verifier), u(FEE));
    assert_eq!(env.market.payout_of(w), u(MIN_BOND - FEE));
    assert_eq!(env.market.payout_of(SELLER), U256::ZERO);
    assert_eq!(env.market.worker_bond(w), u(MIN_BOND));
    assert_eq!(env.market.active_claims(verifier), 0);
    assert_eq!(env.market.total_dispute_bonds(), U256::ZERO);
    assert_eq!(ok(env.market.dispute_of(id)).2, UPHELD_ROUND);
    let resolved = events::<DisputeResolved>(&env.host);
    assert_eq!(
        (resolved[0].orderId, resolved[0].outcome),
        (id, outcome::UPHELD)
    );
    assert!(events::<WorkerSlashed>(&env.host).is_empty());
    env.assert_solvent();
    // An upheld result is not disputed again; the seller delivers (or the buyer refunds).
    assert!(matches!(
        err(env.call(SELLER, MIN_BOND, |m| m.dispute(id))),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 3, .. })
    ));
    ok(env.deliver(SELLER, id));
    assert_eq!(env.status(id), status::SETTLED);
    env.assert_solvent();
}

#[test]
fn two_verifiers_agreeing_against_a_worker_slash_it_and_reopen_the_order() {
    let mut env = Env::new();
    let w = addr_of(&key(1));
    env.register(w, MIN_BOND + 20);
    let id = env.place(BUYER, PRICE + FEE);
    ok(env.claim(w, id));
    let signature = sign(&key(1), env.digest(id, WRONG));
    ok(env.call(w, 0, |m| {
        m.submit_result(id, wrong_cid(), WRONG, Bytes::from(signature))
    }));
    env.register_verifiers(2);
    // The buyer disputes (the receipt's owner may, as the seller may).
    ok(env.call(BUYER, MIN_BOND + 5, |m| m.dispute(id)));
    let first = env.verifier(id);
    ok(env.verdict(id, result_cid(), RESULT));
    // One verifier's word is not enough: a second is drawn, never the first.
    assert_eq!(env.status(id), status::DISPUTED);
    let (_, _, round, second, _) = ok(env.market.dispute_of(id));
    assert_eq!(round, 2);
    assert_ne!(second, first);
    assert_eq!(env.market.worker_bond(w), u(MIN_BOND + 20));
    env.host.clear_logs();
    ok(env.verdict(id, result_cid(), RESULT));
    assert_eq!(env.status(id), status::OPEN);
    // The worker loses minWorkerBond (not its whole bond); it pays each verifier the fee, and the
    // disputer gets the rest with its bond back.
    assert_eq!(env.market.worker_bond(w), u(20));
    assert_eq!(env.market.payout_of(first), u(FEE));
    assert_eq!(env.market.payout_of(second), u(FEE));
    assert_eq!(
        env.market.payout_of(BUYER),
        u(MIN_BOND + 5 + MIN_BOND - 2 * FEE)
    );
    assert_eq!(env.market.active_claims(w), 0);
    let slashed = events::<WorkerSlashed>(&env.host);
    assert_eq!(
        (slashed[0].orderId, slashed[0].account, slashed[0].amount),
        (id, w, u(MIN_BOND))
    );
    let resolved = events::<DisputeResolved>(&env.host);
    assert_eq!(resolved[0].outcome, outcome::OVERTURNED);
    // The result is gone; the escrow is still the order's.
    let work = ok(env.market.order_work(id));
    assert_eq!((work.2.len(), work.3), (0, B256::ZERO));
    assert_eq!(env.market.total_escrow(), u(PRICE + FEE));
    env.assert_solvent();
    // The slashed worker does not get the order back (even topped up); an honest one does.
    env.register(w, MIN_BOND);
    assert!(matches!(err(env.claim(w, id)), Error::OrderNotClaimable(_)));
    let honest = key(5);
    env.register(addr_of(&honest), MIN_BOND);
    ok(env.claim(addr_of(&honest), id));
    ok(env.submit(&honest, id));
    ok(env.deliver(SELLER, id));
    assert_eq!(env.status(id), status::SETTLED);
    assert_eq!(env.market.payout_of(addr_of(&honest)), u(FEE));
    env.assert_solvent();
}

#[test]
fn a_lying_first_verifier_is_the_minority_and_is_slashed() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(2);
    ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
    let liar = env.verifier(id);
    ok(env.verdict(id, wrong_cid(), WRONG));
    let honest = env.verifier(id);
    ok(env.verdict(id, result_cid(), RESULT));
    assert_eq!(env.status(id), status::COMPUTED);
    assert_eq!(env.market.worker_bond(liar), U256::ZERO);
    assert_eq!(env.market.payout_of(liar), U256::ZERO);
    assert_eq!(env.market.payout_of(honest), u(FEE));
    // The worker gets the disputer's bond less the fee, and the liar's slash.
    assert_eq!(
        env.market.payout_of(addr_of(&worker)),
        u(MIN_BOND - FEE + MIN_BOND)
    );
    env.assert_solvent();
}

#[test]
fn a_verdict_must_match_the_workers_cid_as_well_as_its_hash() {
    // Two verifiers agreeing on the hash under another CID: the worker named bytes it did not
    // publish, and loses.
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(2);
    ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
    let published = Bytes::from(b"bafy-published".to_vec());
    ok(env.verdict(id, published.clone(), RESULT));
    ok(env.verdict(id, published, RESULT));
    assert_eq!(env.status(id), status::OPEN);
    assert_eq!(env.market.worker_bond(addr_of(&worker)), U256::ZERO);
    env.assert_solvent();
}

#[test]
fn three_different_answers_are_inconclusive() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(2);
    ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
    ok(env.verdict(id, wrong_cid(), WRONG));
    ok(env.verdict(id, wrong_cid(), OTHER));
    assert_eq!(env.status(id), status::OPEN);
    // Nobody slashed, the disputer refunded, nobody paid.
    assert_eq!(env.market.worker_bond(addr_of(&worker)), u(MIN_BOND));
    assert_eq!(env.market.payout_of(SELLER), u(MIN_BOND));
    assert_eq!(env.market.total_payouts(), u(MIN_BOND));
    let resolved = events::<DisputeResolved>(&env.host);
    assert_eq!(resolved[0].outcome, outcome::INCONCLUSIVE);
    env.assert_solvent();
}

#[test]
fn a_single_verifier_cannot_overturn_a_result_alone() {
    // With one eligible verifier, a disagreement finds no second opinion: inconclusive.
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(1);
    ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
    ok(env.verdict(id, wrong_cid(), WRONG));
    assert_eq!(env.status(id), status::OPEN);
    assert_eq!(env.market.worker_bond(addr_of(&worker)), u(MIN_BOND));
    assert_eq!(env.market.payout_of(SELLER), u(MIN_BOND));
    env.assert_solvent();
}

#[test]
fn verifiers_are_never_the_orders_parties_nor_busy_workers() {
    let mut env = Env::new();
    // The buyer, the seller and a friend of nobody all register as workers; so does the worker.
    env.register(BUYER, MIN_BOND);
    env.register(SELLER, MIN_BOND);
    let (id, _) = env.computed(PRICE + FEE);
    // Nobody else is bonded: no verifier, and the dispute is refused whole.
    assert!(matches!(
        err(env.call(SELLER, MIN_BOND, |m| m.dispute(id))),
        Error::NoVerifier(NoVerifier { orderId }) if orderId == id
    ));
    assert_eq!(env.status(id), status::COMPUTED);
    // A worker whose bond backs no further claim is skipped too.
    let busy = addr_of(&key(2));
    env.register(busy, MIN_BOND);
    for _ in 0..CLAIMS_PER_MIN_BOND {
        let other = env.place(STRANGER, PRICE + FEE);
        ok(env.claim(busy, other));
    }
    assert!(matches!(
        err(env.call(SELLER, MIN_BOND, |m| m.dispute(id))),
        Error::NoVerifier(_)
    ));
    // Over many draws (different orders and times), every verifier is an outsider (never the
    // busy worker).
    let outsiders: Vec<Address> = (3..=5).map(|n| addr_of(&key(n))).collect();
    for &outsider in &outsiders {
        env.register(outsider, MIN_BOND);
    }
    let mut drawn = std::collections::HashSet::new();
    for _ in 0..24 {
        let (id, _) = env.computed(PRICE + FEE);
        ok(env.call(BUYER, MIN_BOND, |m| m.dispute(id)));
        let verifier = env.verifier(id);
        assert!(outsiders.contains(&verifier), "{verifier} drawn");
        drawn.insert(verifier);
        ok(env.verdict(id, result_cid(), RESULT));
        ok(env.deliver(SELLER, id));
        env.advance(7);
    }
    assert!(drawn.len() > 1, "the draw always picked the same verifier");
    env.assert_solvent();
}

#[test]
fn only_the_seller_or_the_receipt_owner_disputes_with_a_full_bond() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(1);
    for caller in [STRANGER, addr_of(&worker), addr_of(&key(2))] {
        assert!(matches!(
            err(env.call(caller, MIN_BOND, |m| m.dispute(id))),
            Error::Unauthorized(Unauthorized { account, .. }) if account == caller
        ));
    }
    assert!(matches!(
        err(env.call(SELLER, MIN_BOND - 1, |m| m.dispute(id))),
        Error::BondTooLow(_)
    ));
    // The buyer sold its receipt: the new owner may dispute, the buyer no longer.
    ok(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, id)));
    assert!(matches!(
        err(env.call(BUYER, MIN_BOND, |m| m.dispute(id))),
        Error::Unauthorized(_)
    ));
    ok(env.call(STRANGER, MIN_BOND, |m| m.dispute(id)));
    // Not twice at once.
    assert!(matches!(
        err(env.call(SELLER, MIN_BOND, |m| m.dispute(id))),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 7, .. })
    ));
    // Only a Computed order is disputed.
    let open = env.place(BUYER, PRICE + FEE);
    assert!(matches!(
        err(env.call(SELLER, MIN_BOND, |m| m.dispute(open))),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 1, .. })
    ));
    env.assert_solvent();
}

#[test]
fn only_the_drawn_verifier_answers_and_only_in_time() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(2);
    assert!(matches!(
        err(env.call(STRANGER, 0, |m| m.submit_verdict(id, result_cid(), RESULT))),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 3, .. })
    ));
    ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
    let verifier = env.verifier(id);
    for caller in [addr_of(&worker), SELLER, BUYER, STRANGER] {
        assert!(matches!(
            err(env.call(caller, 0, |m| m.submit_verdict(id, result_cid(), RESULT))),
            Error::Unauthorized(_)
        ));
    }
    assert!(matches!(
        err(env.call(verifier, 0, |m| m.submit_verdict(id, Bytes::new(), RESULT))),
        Error::InvalidCid(_)
    ));
    let deadline = ok(env.market.dispute_of(id)).4;
    assert!(matches!(
        err(env.call(STRANGER, 0, |m| m.timeout_verifier(id))),
        Error::DeadlineNotPassed(DeadlineNotPassed { deadline: d }) if d == deadline
    ));
    env.host.vm().set_block_timestamp(deadline + 1);
    assert!(matches!(
        err(env.verdict(id, result_cid(), RESULT)),
        Error::ClaimExpired(_)
    ));
}

#[test]
fn an_unresponsive_verifier_forfeits_to_the_worker_and_is_replaced() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    env.register_verifiers(2);
    ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
    let sleeper = env.verifier(id);
    env.advance(CLAIM_TIMEOUT + 1);
    env.host.clear_logs();
    // Anyone may replace it.
    ok(env.call(STRANGER, 0, |m| m.timeout_verifier(id)));
    let forfeit = MIN_BOND >> 3;
    assert_eq!(env.market.worker_bond(sleeper), u(MIN_BOND - forfeit));
    assert_eq!(env.market.payout_of(addr_of(&worker)), u(forfeit));
    assert_eq!(env.market.active_claims(sleeper), 0);
    let forfeited = events::<ClaimForfeited>(&env.host);
    assert_eq!(
        (forfeited[0].worker, forfeited[0].amount),
        (sleeper, u(forfeit))
    );
    let (_, _, round, replacement, _) = ok(env.market.dispute_of(id));
    assert_eq!(round, 1);
    assert_ne!(replacement, sleeper);
    // The replacement also sleeps: nobody is left to draw (the sleeper is skipped once, and its
    // bond no longer reaches minWorkerBond): inconclusive.
    env.advance(CLAIM_TIMEOUT + 1);
    ok(env.call(STRANGER, 0, |m| m.timeout_verifier(id)));
    assert_eq!(env.status(id), status::OPEN);
    assert_eq!(env.market.payout_of(SELLER), u(MIN_BOND));
    env.assert_solvent();
}

#[test]
fn a_worker_that_withdraws_its_bond_leaves_the_draw() {
    let mut env = Env::new();
    env.register_verifiers(3);
    let gone = addr_of(&key(2));
    ok(env.call(gone, 0, QueryMarket::withdraw_bond));
    for _ in 0..12 {
        let (id, _) = env.computed(PRICE + FEE);
        ok(env.call(SELLER, MIN_BOND, |m| m.dispute(id)));
        assert_ne!(env.verifier(id), gone);
        ok(env.verdict(id, result_cid(), RESULT));
        ok(env.deliver(SELLER, id));
        env.advance(3);
    }
    // Registering again lists it again, once.
    env.register(gone, MIN_BOND);
    env.register(gone, 1);
    ok(env.call(gone, 0, QueryMarket::withdraw_bond));
    ok(env.call(addr_of(&key(3)), 0, QueryMarket::withdraw_bond));
    ok(env.call(addr_of(&key(4)), 0, QueryMarket::withdraw_bond));
    let (id, _) = env.computed(PRICE + FEE);
    assert!(matches!(
        err(env.call(SELLER, MIN_BOND, |m| m.dispute(id))),
        Error::NoVerifier(_)
    ));
}

// ----- refund -----

#[test]
fn refund_after_the_deadline_pays_the_current_receipt_owner() {
    let mut env = Env::new();
    let worker = addr_of(&key(1));
    env.register(worker, MIN_BOND);
    let open = env.place(BUYER, PRICE + FEE);
    let claimed = env.place(BUYER, PRICE + FEE + 1);
    ok(env.claim(worker, claimed));
    let (computed, _) = env.computed(PRICE + FEE + 2);
    assert_eq!(env.market.active_claims(worker), 2);
    let deadline = ok(env.market.order(open)).8;
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.refund(open))),
        Error::DeadlineNotPassed(DeadlineNotPassed { deadline: d }) if d == deadline
    ));
    env.advance(deadline - env.now());
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.refund(open))),
        Error::DeadlineNotPassed(_)
    ));
    env.advance(1);
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.refund(u(77)))),
        Error::UnknownOrder(_)
    ));
    // The receipt of the claimed order changes hands before the refund.
    ok(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, claimed)));
    env.host.clear_logs();
    // Anyone closes an expired order (a buyer cannot keep a seller's stake locked by never
    // refunding); the escrow goes to the receipt's current owner, whoever calls.
    ok(env.call(STRANGER, 0, |m| m.refund(open)));
    ok(env.call(BUYER, 0, |m| m.refund(claimed)));
    ok(env.call(SELLER, 0, |m| m.refund(computed)));
    for id in [open, claimed, computed] {
        assert_eq!(env.status(id), status::REFUNDED);
    }
    // The claim on `claimed` had long timed out: its worker paid for it, to the receipt's owner.
    // The computed order's worker did its part and is paid its fee; the seller never delivered.
    let forfeit = MIN_BOND >> 3;
    assert_eq!(env.market.payout_of(BUYER), u(2 * (PRICE + FEE) + 2 - FEE));
    assert_eq!(env.market.payout_of(addr_of(&key(1))), u(FEE));
    assert_eq!(env.market.payout_of(STRANGER), u(PRICE + FEE + 1 + forfeit));
    assert_eq!(env.market.worker_bond(worker), u(MIN_BOND - forfeit));
    assert_eq!(env.market.active_claims(worker), 0);
    assert_eq!(env.market.open_order_count(u(DS)), U256::ZERO);
    assert_eq!(env.market.total_escrow(), U256::ZERO);
    env.assert_solvent();
    let refunds = events::<OrderRefunded>(&env.host);
    // The computed order's result also sat undelivered past its window on a healthy dataset:
    // the seller closing it does not make it a refusal, and its stake pays the price.
    assert_eq!(
        refunds
            .iter()
            .map(|e| (e.orderId, e.to, e.amount, e.reason, e.penalty))
            .collect::<Vec<_>>(),
        vec![
            (
                open,
                BUYER,
                u(PRICE + FEE),
                refund_reason::EXPIRED,
                U256::ZERO
            ),
            (
                claimed,
                STRANGER,
                u(PRICE + FEE + 1),
                refund_reason::EXPIRED,
                U256::ZERO
            ),
            (
                computed,
                BUYER,
                u(PRICE + 2),
                refund_reason::UNDELIVERED,
                u(PRICE)
            ),
        ]
    );
    assert_eq!(
        *env.slashes.borrow(),
        vec![(u(DS), u(PRICE), BUYER, u(PRICE))]
    );
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.refund(open))),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 6, .. })
    ));
    // A refunded order can no longer be delivered or claimed (by a worker topped up again).
    assert!(matches!(
        err(env.deliver(SELLER, computed)),
        Error::InvalidOrderStatus(InvalidOrderStatus { status: 6, .. })
    ));
    env.register(worker, forfeit);
    assert!(matches!(
        err(env.claim(worker, open)),
        Error::OrderNotClaimable(OrderNotClaimable { status: 6, .. })
    ));
}

// ----- withdraw -----

#[test]
fn withdraw_pays_out_once() {
    let mut env = Env::new();
    let (id, worker) = env.computed(PRICE + FEE);
    ok(env.deliver(SELLER, id));
    assert!(matches!(
        err(env.call(BUYER, 0, QueryMarket::withdraw)),
        Error::NothingToWithdraw(_)
    ));
    env.host.clear_logs();
    ok(env.call(SELLER, 0, QueryMarket::withdraw));
    assert_eq!(env.host.balance(SELLER), u(PRICE));
    assert_eq!(env.market.payout_of(SELLER), U256::ZERO);
    assert_eq!(env.market.total_payouts(), u(FEE));
    let withdrawn = events::<Withdrawn>(&env.host);
    assert_eq!(
        (withdrawn[0].account, withdrawn[0].amount),
        (SELLER, u(PRICE))
    );
    assert!(matches!(
        err(env.call(SELLER, 0, QueryMarket::withdraw)),
        Error::NothingToWithdraw(_)
    ));
    ok(env.call(addr_of(&worker), 0, QueryMarket::withdraw));
    assert_eq!(env.host.balance(addr_of(&worker)), u(FEE));
    env.assert_solvent();
    // Only the bond is left.
    assert_eq!(env.host.balance(env.host.contract()), u(MIN_BOND));
}

#[test]
fn a_failed_payout_transfer_reverts_everything() {
    let mut env = Env::new();
    let (id, _) = env.computed(PRICE + FEE);
    ok(env.deliver(SELLER, id));
    env.host.on_call(SELLER, |_| Err(b"no thanks".to_vec()));
    env.host.clear_logs();
    assert!(matches!(
        err(env.call(SELLER, 0, QueryMarket::withdraw)),
        Error::TransferFailed(_)
    ));
    assert_eq!(env.market.payout_of(SELLER), u(PRICE));
    assert_eq!(env.host.balance(SELLER), U256::ZERO);
    assert!(env.host.logs().is_empty());
    env.assert_solvent();
}

// ----- Receipts -----

#[test]
fn receipts_behave_like_erc721_tokens() {
    let mut env = Env::new();
    assert!(matches!(
        err(env.market.owner_of(u(1))),
        Error::UnknownOrder(_)
    ));
    assert!(matches!(
        err(env.market.balance_of(Address::ZERO)),
        Error::ZeroAddress(_)
    ));
    assert_eq!(ok(env.market.balance_of(BUYER)), U256::ZERO);
    let id = env.place(BUYER, PRICE + FEE);
    // The caller must be `from`, and `from` must own it.
    assert!(matches!(
        err(env.call(STRANGER, 0, |m| m.transfer_from(BUYER, STRANGER, id))),
        Error::NotReceiptOwner(NotReceiptOwner { orderId, account }) if orderId == id && account == STRANGER
    ));
    assert!(matches!(
        err(env.call(STRANGER, 0, |m| m.transfer_from(STRANGER, BUYER, id))),
        Error::NotReceiptOwner(_)
    ));
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.transfer_from(BUYER, Address::ZERO, id))),
        Error::ZeroAddress(_)
    ));
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, u(2)))),
        Error::UnknownOrder(_)
    ));
    env.host.clear_logs();
    ok(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, id)));
    assert_eq!(ok(env.market.owner_of(id)), STRANGER);
    assert_eq!(ok(env.market.balance_of(BUYER)), U256::ZERO);
    assert_eq!(ok(env.market.balance_of(STRANGER)), u(1));
    let (topics, data) = &env.host.logs()[0];
    // ERC-721 shape: three indexed arguments, no data.
    assert_eq!(topics.len(), 4);
    assert!(data.is_empty());
    assert_eq!(topics[0], keccak256(b"Transfer(address,address,uint256)"));
    let transfer = &events::<Transfer>(&env.host)[0];
    assert_eq!(
        (transfer.from, transfer.to, transfer.tokenId),
        (BUYER, STRANGER, id)
    );
    assert!(matches!(
        err(env.call(BUYER, 0, |m| m.transfer_from(BUYER, STRANGER, id))),
        Error::NotReceiptOwner(_)
    ));
    // To oneself: allowed, balance unchanged.
    ok(env.call(STRANGER, 0, |m| m.transfer_from(STRANGER, STRANGER, id)));
    assert_eq!(ok(env.market.balance_of(STRANGER)), u(1));
}

#[test]
fn views_refuse_unknown_orders() {
    let env = Env::new();
    let id = u(1);
    assert!(matches!(err(env.market.order(id)), Error::UnknownOrder(_)));
    assert!(matches!(
        err(env.market.order_work(id)),
        Error::UnknownOrder(_)
    ));
    assert!(matches!(
        err(env.market.buyer_key(id)),
        Error::UnknownOrder(_)
    ));
    assert!(matches!(
        err(env.market.attestation_signature(id)),
        Error::UnknownOrder(_)
    ));
    assert_eq!(env.market.payout_of(BUYER), U256::ZERO);
    assert_eq!(env.market.worker_bond(BUYER), U256::ZERO);
    assert_eq!(env.market.active_claims(BUYER), 0);
    assert_eq!(env.market.open_order_count(u(DS)), U256::ZERO);
    assert_eq!(env.market.total_escrow(), U256::ZERO);
    assert_eq!(env.market.total_bonds(), U256::ZERO);
    assert_eq!(env.market.total_payouts(), U256::ZERO);
}

// ----- Property: money is conserved under random call sequences -----

const ACTORS: u8 = 6;

#[derive(Debug, Clone, Copy)]
enum Sig {
    Good,
    Foreign,
    HighS,
}

#[derive(Debug, Clone)]
enum Op {
    Place {
        buyer: usize,
        dataset: usize,
        delta: i64,
        offset: u64,
        /// The plan's estimated bootstraps (each `PBS_PER_SECOND` of them a second of claim).
        pbs: u64,
    },
    Register {
        worker: usize,
        value: u64,
    },
    Claim {
        worker: usize,
        order: usize,
    },
    Submit {
        worker: usize,
        order: usize,
        sig: Sig,
    },
    Deliver {
        caller: usize,
        order: usize,
        health: u8,
    },
    OpenDispute {
        caller: usize,
        order: usize,
        value: u64,
    },
    /// The drawn verifier (or, for `caller` 0, `actors[0]`) answers: 0 the worker's result, 1 or
    /// 2 two different wrong ones.
    Verdict {
        caller: usize,
        order: usize,
        answer: u8,
    },
    TimeoutVerifier {
        caller: usize,
        order: usize,
    },
    Refund {
        caller: usize,
        order: usize,
    },
    Withdraw {
        actor: usize,
    },
    WithdrawBond {
        worker: usize,
    },
    Transfer {
        caller: usize,
        from: usize,
        to: Option<usize>,
        order: usize,
    },
    Advance {
        seconds: u64,
    },
    /// A lapse at the registry: the compensation index of every dataset grows by `per_order`.
    Lapse {
        per_order: u64,
    },
    // Compound operations: they pick an order and actors that fit from the model (deterministically
    // from their indices) and expand into the single operations above, so that the deep states get
    // reached. Each expanded step is checked against the model like any other.
    /// Claim an open (or timed-out) order as `worker`, registering first where needed and placing an
    /// order where none is claimable, then sign and submit its result.
    Work {
        worker: usize,
        order: usize,
        sig: Sig,
    },
    /// Deliver a computed order (working one first where none is computed).
    Settle {
        caller: usize,
        order: usize,
        health: u8,
    },
    /// Dispute a computed order (working one first where none is computed, and bonding an
    /// outsider where nobody could verify).
    Dispute {
        caller: usize,
        order: usize,
    },
    /// Answer (or time out) the verifier of a disputed order (disputing one first where none is).
    Judge {
        order: usize,
        answer: u8,
        /// The answer of the round-2 verifier, if the first answer draws one.
        then: u8,
        late: bool,
    },
    /// Let an active order pass its deadline, then refund it.
    Expire {
        caller: usize,
        order: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let actor = 0..usize::from(ACTORS);
    let order = 0usize..8;
    prop_oneof![
        3 => (actor.clone(), 0usize..3, -5i64..40, 0u64..1100, prop_oneof![2 => Just(0u64), 1 => 0u64..4000]).prop_map(|(buyer, dataset, delta, offset, pbs)| Op::Place { buyer, dataset, delta, offset, pbs }),
        2 => (actor.clone(), 0u64..80).prop_map(|(worker, value)| Op::Register { worker, value }),
        3 => (actor.clone(), order.clone()).prop_map(|(worker, order)| Op::Claim { worker, order }),
        3 => (actor.clone(), order.clone(), prop_oneof![4 => Just(Sig::Good), 1 => Just(Sig::Foreign), 1 => Just(Sig::HighS)]).prop_map(|(worker, order, sig)| Op::Submit { worker, order, sig }),
        2 => (actor.clone(), order.clone(), prop_oneof![3 => Just(1u8), 1 => 0u8..4]).prop_map(|(caller, order, health)| Op::Deliver { caller, order, health }),
        1 => (actor.clone(), order.clone(), 40u64..60).prop_map(|(caller, order, value)| Op::OpenDispute { caller, order, value }),
        1 => (actor.clone(), order.clone(), 0u8..3).prop_map(|(caller, order, answer)| Op::Verdict { caller, order, answer }),
        1 => (actor.clone(), order.clone()).prop_map(|(caller, order)| Op::TimeoutVerifier { caller, order }),
        2 => (actor.clone(), order.clone()).prop_map(|(caller, order)| Op::Refund { caller, order }),
        2 => actor.clone().prop_map(|actor| Op::Withdraw { actor }),
        1 => actor.clone().prop_map(|worker| Op::WithdrawBond { worker }),
        1 => (actor.clone(), actor.clone(), proptest::option::weighted(0.9, actor.clone()), order).prop_map(|(caller, from, to, order)| Op::Transfer { caller, from, to, order }),
        2 => (0u64..200).prop_map(|seconds| Op::Advance { seconds }),
        1 => (1u64..80).prop_map(|per_order| Op::Lapse { per_order }),
        2 => (actor.clone(), any::<usize>(), prop_oneof![8 => Just(Sig::Good), 1 => Just(Sig::Foreign), 1 => Just(Sig::HighS)]).prop_map(|(worker, order, sig)| Op::Work { worker, order, sig }),
        2 => (actor.clone(), any::<usize>(), prop_oneof![1 => Just(HEALTHY), 1 => 0u8..4]).prop_map(|(caller, order, health)| Op::Settle { caller, order, health }),
        2 => (actor.clone(), any::<usize>()).prop_map(|(caller, order)| Op::Dispute { caller, order }),
        3 => (any::<usize>(), prop_oneof![1 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)], 0u8..3, proptest::bool::weighted(0.15)).prop_map(|(order, answer, then, late)| Op::Judge { order, answer, then, late }),
        1 => (actor.clone(), any::<usize>()).prop_map(|(caller, order)| Op::Expire { caller, order }),
    ]
}

#[derive(Debug, Clone, Default)]
struct ModelOrder {
    dataset: u64,
    seller: Address,
    price: u64,
    fee: u64,
    escrow: u64,
    deadline: u64,
    status: u8,
    holder: Address,
    buyer: Address,
    worker: Address,
    claimed_at: u64,
    /// When its result was submitted or upheld: the delivery window runs from here.
    computed_at: u64,
    /// The plan's estimated bootstraps: they lengthen its claims.
    pbs: u64,
    dispute: Option<ModelDispute>,
    upheld: bool,
    /// The registry's compensation index when it was placed.
    placed_at_index: u64,
    /// Refunded before anything about the data was released: its ε went back to the budget.
    epsilon_returned: bool,
}

#[derive(Debug, Clone, Default)]
struct ModelDispute {
    disputer: Address,
    bond: u64,
    round: u8,
    verifier: Address,
    deadline: u64,
    first_verifier: Address,
    first_vote: u8,
}

impl ModelOrder {
    /// Whether `account` may not work this order (its buyer, receipt owner or seller).
    fn is_party(&self, account: Address) -> bool {
        account == self.buyer || account == self.holder || account == self.seller
    }
}

#[derive(Default)]
struct Model {
    orders: Vec<ModelOrder>,
    bonds: HashMap<Address, u64>,
    registered: HashMap<Address, bool>,
    active: HashMap<Address, u64>,
    /// Everything ever credited to each account.
    owed: HashMap<Address, u64>,
    /// The stake the registry's mock holds (one for every dataset), and every penalty it paid.
    stake: u64,
    penalties: Vec<(U256, U256, Address, U256)>,
    /// The registry mock's compensation index, and the compensations each closing order asked.
    compensation_index: u64,
    compensations: Vec<(U256, U256, Address, U256, U256)>,
}

impl Model {
    fn credit(&mut self, account: Address, amount: u64) {
        *self.owed.entry(account).or_default() += amount;
    }
    fn order(&self, id: U256) -> Option<&ModelOrder> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.orders.get(index)
    }
    /// An expired claim's forfeit: an eighth of the minimum bond (at most the bond) from
    /// `worker` to `holder`.
    fn forfeit(&mut self, worker: Address, holder: Address) {
        let bond = self.bonds.entry(worker).or_default();
        let amount = (MIN_BOND >> 3).min(*bond);
        *bond -= amount;
        self.credit(holder, amount);
    }
    /// Whether `account` could be drawn to verify order `index` (skipping `skip` too).
    fn eligible(&self, index: usize, skip: Address, actors: &[Address]) -> Vec<Address> {
        let o = &self.orders[index];
        let d = o.dispute.clone().unwrap_or_default();
        actors
            .iter()
            .copied()
            .filter(|&a| {
                let bond = self.bonds.get(&a).copied().unwrap_or(0);
                let active = self.active.get(&a).copied().unwrap_or(0);
                self.registered.get(&a) == Some(&true)
                    && bond >= MIN_BOND
                    && (active + 1) * MIN_BOND <= CLAIMS_PER_MIN_BOND * bond
                    && !o.is_party(a)
                    && ![o.worker, d.disputer, d.first_verifier, skip].contains(&a)
            })
            .collect()
    }
    /// Takes up to `amount` of `account`'s bond; returns what it took.
    fn take(&mut self, account: Address, amount: u64) -> u64 {
        let bond = self.bonds.entry(account).or_default();
        let taken = amount.min(*bond);
        *bond -= taken;
        taken
    }
    /// The dispute of order `index` ends with the result standing (its verifier paid the fee
    /// from the bond, the rest and the minority's slash to the worker).
    fn uphold(&mut self, index: usize, verifier: Address, minority: Option<Address>, now: u64) {
        let o = self.orders[index].clone();
        let d = o.dispute.expect("disputed");
        let paid = o.fee.min(d.bond);
        self.credit(verifier, paid);
        let slashed = minority.map_or(0, |m| self.take(m, MIN_BOND));
        self.credit(o.worker, d.bond - paid + slashed);
        let o = &mut self.orders[index];
        o.status = status::COMPUTED;
        o.computed_at = now;
        o.dispute = None;
        o.upheld = true;
    }
    /// The dispute of order `index` ends with the order reopened; `verifiers` (overturned) are
    /// paid from the worker's slash.
    fn reopen(&mut self, index: usize, verifiers: Option<[Address; 2]>) {
        let o = self.orders[index].clone();
        let d = o.dispute.expect("disputed");
        let mut owed = d.bond;
        if let Some(verifiers) = verifiers {
            let mut slashed = self.take(o.worker, MIN_BOND);
            for v in verifiers {
                let paid = o.fee.min(slashed);
                self.credit(v, paid);
                slashed -= paid;
            }
            owed += slashed;
        }
        self.credit(d.disputer, owed);
        *self.active.get_mut(&o.worker).expect("the worker's claim") -= 1;
        let o = &mut self.orders[index];
        o.status = status::OPEN;
        o.dispute = None;
        o.upheld = false;
    }
    /// Closes an order: its claimant's claim ends and the registry pays its receipt's owner its
    /// compensation (what the index gained since placement, at most the price).
    fn close(&mut self, index: usize, claimant: Address, status: u8) {
        self.orders[index].status = status;
        if !claimant.is_zero() {
            *self.active.get_mut(&claimant).expect("an active worker") -= 1;
        }
        let o = &self.orders[index];
        let owed = self.compensation_index - o.placed_at_index;
        self.compensations.push((
            u(o.dataset),
            u(o.placed_at_index),
            o.holder,
            u(o.price),
            u(owed.min(o.price)),
        ));
    }
}

/// Datasets in the property test: two sellers, one free dataset, one unknown.
fn datasets(actors: &[Address]) -> [(u64, Option<(Address, u64)>); 3] {
    [
        (1, Some((actors[0], 100))),
        (2, Some((actors[1], 0))),
        (3, None),
    ]
}

/// How long a claim (or a verifier's assignment) on an order of `pbs` estimated bootstraps lasts.
fn window(pbs: u64) -> u64 {
    CLAIM_TIMEOUT + pbs / PBS_PER_SECOND
}

/// An `order` index at or above this names order id `order - EXACT` (compound operations use it).
const EXACT: usize = 1 << 32;

fn pick_order(count: usize, order: usize) -> U256 {
    if let Some(id) = order.checked_sub(EXACT) {
        return U256::from(id);
    }
    // Mostly one of the three latest orders (so that claims, results and deliveries meet the
    // same order), sometimes an unknown id.
    let back = order % 4;
    if back < 3 && back < count {
        U256::from(count - back)
    } else {
        U256::from(count + 1)
    }
}

/// Mostly the order's seller (so that deliveries and disputes happen), else `actors[caller]`.
fn seller_or(model: &Model, id: U256, actors: &[Address], caller: usize) -> Address {
    match model.order(id) {
        Some(o) if caller > 0 => o.seller,
        _ => actors[caller],
    }
}

/// Index of `account` in `actors`.
fn actor_index(actors: &[Address], account: Address) -> usize {
    actors.iter().position(|&a| a == account).expect("an actor")
}

/// The steps of a [`Op::Work`], and the id of the order it works on.
fn work(
    model: &Model,
    now: u64,
    worker: usize,
    order: usize,
    sig: Sig,
    actors: &[Address],
) -> (Vec<Op>, usize) {
    let mut steps = Vec::new();
    let account = actors[worker];
    let bond = model.bonds.get(&account).copied().unwrap_or(0);
    if model.registered.get(&account) != Some(&true) || bond < MIN_BOND {
        steps.push(Op::Register {
            worker,
            value: MIN_BOND.saturating_sub(bond),
        });
    }
    let claimable: Vec<usize> = model
        .orders
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.worker != account
                && (o.status == status::OPEN
                    || (o.status == status::CLAIMED && o.claimed_at + window(o.pbs) < now))
                && now <= o.deadline
                && !o.is_party(account)
        })
        .map(|(index, _)| index + 1)
        .collect();
    let id = if claimable.is_empty() {
        // An order the worker may work: another actor buys it on a dataset of another seller.
        let dataset = if datasets(actors)[order % 2]
            .1
            .is_some_and(|(seller, _)| seller == account)
        {
            (order + 1) % 2
        } else {
            order % 2
        };
        steps.push(Op::Place {
            buyer: (worker + 1) % actors.len(),
            dataset,
            delta: 0,
            offset: LIFETIME,
            pbs: (order % 3) as u64 * 1000,
        });
        model.orders.len() + 1
    } else {
        claimable[order % claimable.len()]
    };
    steps.push(Op::Claim {
        worker,
        order: EXACT + id,
    });
    steps.push(Op::Submit {
        worker,
        order: EXACT + id,
        sig,
    });
    (steps, id)
}

/// A computed order's id, with the steps that compute one first where there is none.
fn computed_order(model: &Model, now: u64, order: usize, actors: &[Address]) -> (Vec<Op>, usize) {
    let computed: Vec<usize> = model
        .orders
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status == status::COMPUTED)
        .map(|(index, _)| index + 1)
        .collect();
    if computed.is_empty() {
        work(
            model,
            now,
            order % actors.len(),
            order / actors.len(),
            Sig::Good,
            actors,
        )
    } else {
        (Vec::new(), computed[order % computed.len()])
    }
}

/// The steps of a [`Op::Dispute`]: a computed order (worked first where none is), an outsider
/// bonded where nobody could verify it, and the dispute by its seller or receipt owner.
fn dispute(model: &Model, now: u64, caller: usize, order: usize, actors: &[Address]) -> Vec<Op> {
    let (mut steps, id) = computed_order(model, now, order, actors);
    // An order the steps place first has no parties in the model yet: its dispute may find no
    // verifier, which the model expects too.
    let Some(o) = model.order(U256::from(id)).cloned() else {
        steps.push(Op::OpenDispute {
            caller,
            order: EXACT + id,
            value: MIN_BOND,
        });
        return steps;
    };
    let disputer = if caller.is_multiple_of(2) {
        o.seller
    } else {
        o.holder
    };
    let busy = [o.buyer, o.holder, o.seller, o.worker, disputer];
    let eligible = actors.iter().any(|&a| {
        let bond = model.bonds.get(&a).copied().unwrap_or(0);
        let active = model.active.get(&a).copied().unwrap_or(0);
        model.registered.get(&a) == Some(&true)
            && bond >= MIN_BOND
            && (active + 1) * MIN_BOND <= CLAIMS_PER_MIN_BOND * bond
            && !busy.contains(&a)
    });
    // Two outsiders bonded where none could verify, so that disputes reach a second round.
    if !eligible {
        for outsider in (0..actors.len())
            .filter(|&a| !busy.contains(&actors[a]))
            .take(2)
        {
            let bond = model.bonds.get(&actors[outsider]).copied().unwrap_or(0);
            let active = model.active.get(&actors[outsider]).copied().unwrap_or(0);
            steps.push(Op::Register {
                worker: outsider,
                value: ((active + 1) * MIN_BOND)
                    .div_ceil(CLAIMS_PER_MIN_BOND)
                    .max(MIN_BOND)
                    .saturating_sub(bond)
                    .max(1),
            });
        }
    }
    steps.push(Op::OpenDispute {
        caller: actor_index(actors, disputer),
        order: EXACT + id,
        value: MIN_BOND,
    });
    steps
}

/// The single operations `op` stands for: itself, or a compound operation's steps.
fn expand(op: &Op, model: &Model, now: u64, actors: &[Address]) -> Vec<Op> {
    match *op {
        Op::Work { worker, order, sig } => work(model, now, worker, order, sig, actors).0,
        Op::Settle {
            caller,
            order,
            health,
        } => {
            let (mut steps, id) = computed_order(model, now, order, actors);
            steps.push(Op::Deliver {
                caller,
                order: EXACT + id,
                health,
            });
            steps
        }
        Op::Dispute { caller, order } => dispute(model, now, caller, order, actors),
        Op::Judge {
            order,
            answer,
            then,
            late,
        } => {
            let disputed: Vec<usize> = model
                .orders
                .iter()
                .enumerate()
                .filter(|(_, o)| o.status == status::DISPUTED)
                .map(|(index, _)| index)
                .collect();
            let Some(&index) = disputed.get(order % disputed.len().max(1)) else {
                return dispute(model, now, 1, order, actors);
            };
            let d = model.orders[index].dispute.clone().expect("disputed");
            if late {
                let mut steps = Vec::new();
                if now <= d.deadline {
                    steps.push(Op::Advance {
                        seconds: d.deadline - now + 1,
                    });
                }
                steps.push(Op::TimeoutVerifier {
                    caller: 0,
                    order: EXACT + index + 1,
                });
                return steps;
            }
            // The second verdict goes to whoever is drawn next (refused if nobody is).
            vec![
                Op::Verdict {
                    caller: 1,
                    order: EXACT + index + 1,
                    answer,
                },
                Op::Verdict {
                    caller: 1,
                    order: EXACT + index + 1,
                    answer: then,
                },
            ]
        }
        Op::Expire { caller, order } => {
            let active: Vec<usize> = model
                .orders
                .iter()
                .enumerate()
                .filter(|(_, o)| is_active(o.status))
                .map(|(index, _)| index)
                .collect();
            if active.is_empty() {
                return vec![Op::Refund { caller, order }];
            }
            let index = active[order % active.len()];
            let o = &model.orders[index];
            let mut steps = Vec::new();
            if now <= o.deadline {
                steps.push(Op::Advance {
                    seconds: o.deadline - now + 1,
                });
            }
            // Mostly the receipt's holder, else `actors[caller]`.
            let caller = if caller > 0 {
                actor_index(actors, o.holder)
            } else {
                caller
            };
            steps.push(Op::Refund {
                caller,
                order: EXACT + index + 1,
            });
            steps
        }
        _ => vec![op.clone()],
    }
}

#[allow(clippy::too_many_lines)] // One match arm per operation reads best as one function.
fn run_sequence(ops: &[Op]) -> Result<(), TestCaseError> {
    let keys: Vec<SigningKey> = (1..=ACTORS).map(key).collect();
    let actors: Vec<Address> = keys.iter().map(addr_of).collect();
    let mut env = Env::uninitialized();
    for (id, terms) in datasets(&actors) {
        if let Some((seller, price)) = terms {
            env.terms.borrow_mut().insert(
                (u(id), TEMPLATE),
                (seller, keccak256(id.to_be_bytes()), u(price)),
            );
        }
    }
    ok(env.call(OWNER, 0, |m| {
        m.initialize(
            REGISTRY,
            PROOF_MANAGER,
            u(FEE),
            u(MIN_BOND),
            CLAIM_TIMEOUT,
            LIFETIME,
            DISPUTE_GAME,
            DEPLOY_NONCE,
        )
    }));
    let mut model = Model {
        stake: STAKE,
        ..Model::default()
    };

    for op in ops {
        for op in &expand(op, &model, env.now(), &actors) {
            let now = env.now();
            let count = model.orders.len();
            match *op {
                Op::Place {
                    buyer,
                    dataset,
                    delta,
                    offset,
                    pbs,
                } => {
                    let (dataset_id, terms) = datasets(&actors)[dataset];
                    let price = terms.map_or(0, |(_, price)| price);
                    let value = (i64::try_from(price + FEE).expect("small") + delta).max(0);
                    let value = u64::try_from(value).expect("non-negative");
                    let deadline = now + offset;
                    let buyer = actors[buyer];
                    let result = env.call(buyer, value, |m| {
                        m.place_order(
                            u(dataset_id),
                            TEMPLATE,
                            PARAMS,
                            Bytes::from(vec![1; 32]),
                            deadline,
                            pbs,
                            EPS,
                        )
                    });
                    let expected = terms.is_some()
                        && value >= price + FEE
                        && offset >= window(pbs)
                        && offset <= LIFETIME;
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if let Ok(id) = result {
                        prop_assert_eq!(id, u(count as u64 + 1));
                        model.orders.push(ModelOrder {
                            dataset: dataset_id,
                            seller: terms.expect("known").0,
                            price,
                            fee: FEE,
                            escrow: value,
                            deadline,
                            status: status::OPEN,
                            holder: buyer,
                            buyer,
                            pbs,
                            placed_at_index: model.compensation_index,
                            ..ModelOrder::default()
                        });
                    }
                }
                Op::Register { worker, value } => {
                    let worker = actors[worker];
                    let result = env.call(worker, value, QueryMarket::register_worker);
                    let bond = model.bonds.get(&worker).copied().unwrap_or(0) + value;
                    prop_assert_eq!(result.is_ok(), bond >= MIN_BOND, "{:?}", op);
                    if result.is_ok() {
                        model.bonds.insert(worker, bond);
                        model.registered.insert(worker, true);
                    }
                }
                Op::WithdrawBond { worker } => {
                    let worker = actors[worker];
                    let result = env.call(worker, 0, QueryMarket::withdraw_bond);
                    let expected = model.registered.get(&worker) == Some(&true)
                        && model.active.get(&worker).copied().unwrap_or(0) == 0;
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if result.is_ok() {
                        let bond = model.bonds.insert(worker, 0).unwrap_or(0);
                        model.registered.insert(worker, false);
                        model.credit(worker, bond);
                    }
                }
                Op::Claim { worker, order } => {
                    let worker = actors[worker];
                    let id = pick_order(count, order);
                    let result = env.claim(worker, id);
                    let bond = model.bonds.get(&worker).copied().unwrap_or(0);
                    let is_worker =
                        model.registered.get(&worker) == Some(&true) && bond >= MIN_BOND;
                    let backed = (model.active.get(&worker).copied().unwrap_or(0) + 1) * MIN_BOND
                        <= CLAIMS_PER_MIN_BOND * bond;
                    let expected = model.order(id).is_some_and(|o| {
                        is_worker
                            && !o.is_party(worker)
                            && o.worker != worker
                            && (o.status == status::OPEN
                                || (o.status == status::CLAIMED
                                    && o.claimed_at + window(o.pbs) < now))
                            && now <= o.deadline
                            && backed
                    });
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if result.is_ok() {
                        let o = &mut model.orders[usize::try_from(id).expect("small") - 1];
                        let previous = (o.status == status::CLAIMED).then_some(o.worker);
                        let holder = o.holder;
                        o.worker = worker;
                        o.claimed_at = now;
                        o.status = status::CLAIMED;
                        if let Some(previous) = previous {
                            *model.active.get_mut(&previous).expect("claimed") -= 1;
                            model.forfeit(previous, holder);
                        }
                        *model.active.entry(worker).or_default() += 1;
                    }
                }
                Op::Submit { worker, order, sig } => {
                    let id = pick_order(count, order);
                    // Mostly the claimant itself, so that results get submitted.
                    let worker = match model.order(id) {
                        Some(o) if worker > 0 && !o.worker.is_zero() => {
                            actors.iter().position(|&a| a == o.worker).unwrap_or(worker)
                        }
                        _ => worker,
                    };
                    let signer = &keys[worker];
                    let foreign = &keys[(worker + 1) % usize::from(ACTORS)];
                    let worker = actors[worker];
                    let signature = if model.order(id).is_some() {
                        let digest = env.digest(id, RESULT);
                        match sig {
                            Sig::Good => sign(signer, digest),
                            Sig::Foreign => sign(foreign, digest),
                            Sig::HighS => high_s(&sign(signer, digest)),
                        }
                    } else {
                        vec![0; 65]
                    };
                    let result = env.submit_signed(worker, id, signature);
                    let expected = model.order(id).is_some_and(|o| {
                        o.status == status::CLAIMED
                            && o.worker == worker
                            && o.claimed_at + window(o.pbs) >= now
                            && now <= o.deadline
                            && matches!(sig, Sig::Good)
                    });
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if result.is_ok() {
                        let o = &mut model.orders[usize::try_from(id).expect("small") - 1];
                        o.status = status::COMPUTED;
                        o.computed_at = now;
                    }
                }
                Op::Deliver {
                    caller,
                    order,
                    health,
                } => {
                    let id = pick_order(count, order);
                    let caller = seller_or(&model, id, &actors, caller);
                    env.health.set(health);
                    // Signed with the order's seller's key (another caller is refused anyway).
                    let signer = model
                        .order(id)
                        .map_or(&keys[0], |o| &keys[actor_index(&actors, o.seller)]);
                    let result = env.deliver_signed(caller, id, signer);
                    let expected = model
                        .order(id)
                        .is_some_and(|o| o.seller == caller && o.status == status::COMPUTED);
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if result.is_ok() {
                        let index = usize::try_from(id).expect("small") - 1;
                        let o = model.orders[index].clone();
                        if health == HEALTHY {
                            model.credit(o.seller, o.price);
                            model.credit(o.worker, o.fee);
                            model.credit(o.holder, o.escrow - o.price - o.fee);
                            model.close(index, o.worker, status::SETTLED);
                        } else {
                            // The worker is paid; the buyer gets the rest.
                            model.credit(o.worker, o.fee);
                            model.credit(o.holder, o.escrow - o.fee);
                            model.close(index, o.worker, status::FAILED);
                        }
                    }
                }
                Op::OpenDispute {
                    caller,
                    order,
                    value,
                } => {
                    let id = pick_order(count, order);
                    let caller = actors[caller];
                    let result = env.call(caller, value, |m| m.dispute(id));
                    let index = usize::try_from(id).expect("small").wrapping_sub(1);
                    let allowed = model.order(id).is_some_and(|o| {
                        (o.seller == caller || o.holder == caller)
                            && o.status == status::COMPUTED
                            && !o.upheld
                            && value >= MIN_BOND
                    });
                    let eligible = if allowed {
                        model.orders[index].dispute = Some(ModelDispute {
                            disputer: caller,
                            ..ModelDispute::default()
                        });
                        let eligible = model.eligible(index, Address::ZERO, &actors);
                        model.orders[index].dispute = None;
                        eligible
                    } else {
                        Vec::new()
                    };
                    prop_assert_eq!(result.is_ok(), !eligible.is_empty(), "{:?}", op);
                    if result.is_ok() {
                        let verifier = env.verifier(id);
                        prop_assert!(eligible.contains(&verifier), "{verifier} drawn");
                        *model.active.entry(verifier).or_default() += 1;
                        let o = &mut model.orders[index];
                        o.status = status::DISPUTED;
                        o.dispute = Some(ModelDispute {
                            disputer: caller,
                            bond: value,
                            round: 1,
                            verifier,
                            deadline: now + window(o.pbs),
                            ..ModelDispute::default()
                        });
                    }
                }
                Op::Verdict {
                    caller,
                    order,
                    answer,
                } => {
                    let id = pick_order(count, order);
                    let index = usize::try_from(id).expect("small").wrapping_sub(1);
                    let dispute = model.order(id).and_then(|o| o.dispute.clone());
                    let caller = match &dispute {
                        Some(d) if caller > 0 => d.verifier,
                        _ => actors[caller],
                    };
                    let (cid, hash) = match answer {
                        0 => (result_cid(), RESULT),
                        1 => (wrong_cid(), WRONG),
                        _ => (wrong_cid(), OTHER),
                    };
                    let result = env.call(caller, 0, |m| m.submit_verdict(id, cid, hash));
                    let expected = dispute
                        .as_ref()
                        .is_some_and(|d| d.verifier == caller && now <= d.deadline);
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if let (Ok(()), Some(d)) = (result, dispute) {
                        *model.active.get_mut(&caller).expect("assigned") -= 1;
                        if answer == 0 {
                            let minority = (d.round == 2).then_some(d.first_verifier);
                            model.uphold(index, caller, minority, now);
                        } else if d.round == 1 {
                            let o = &mut model.orders[index];
                            let entry = o.dispute.as_mut().expect("disputed");
                            entry.round = 2;
                            entry.first_verifier = caller;
                            entry.first_vote = answer;
                            let eligible = model.eligible(index, Address::ZERO, &actors);
                            if eligible.is_empty() {
                                model.reopen(index, None);
                            } else {
                                let verifier = env.verifier(id);
                                prop_assert!(eligible.contains(&verifier), "{verifier} drawn");
                                *model.active.entry(verifier).or_default() += 1;
                                let pbs = model.orders[index].pbs;
                                let entry = model.orders[index].dispute.as_mut().expect("disputed");
                                entry.verifier = verifier;
                                entry.deadline = now + window(pbs);
                            }
                        } else if answer == d.first_vote {
                            model.reopen(index, Some([d.first_verifier, caller]));
                        } else {
                            model.reopen(index, None);
                        }
                    }
                }
                Op::TimeoutVerifier { caller, order } => {
                    let id = pick_order(count, order);
                    let index = usize::try_from(id).expect("small").wrapping_sub(1);
                    let dispute = model.order(id).and_then(|o| o.dispute.clone());
                    let result = env.call(actors[caller], 0, |m| m.timeout_verifier(id));
                    let expected = dispute.as_ref().is_some_and(|d| now > d.deadline);
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if let (Ok(()), Some(d)) = (result, dispute) {
                        let worker = model.orders[index].worker;
                        *model.active.get_mut(&d.verifier).expect("assigned") -= 1;
                        model.forfeit(d.verifier, worker);
                        let eligible = model.eligible(index, d.verifier, &actors);
                        if eligible.is_empty() {
                            model.reopen(index, None);
                        } else {
                            let verifier = env.verifier(id);
                            prop_assert!(eligible.contains(&verifier), "{verifier} drawn");
                            *model.active.entry(verifier).or_default() += 1;
                            let pbs = model.orders[index].pbs;
                            let entry = model.orders[index].dispute.as_mut().expect("disputed");
                            entry.verifier = verifier;
                            entry.deadline = now + window(pbs);
                        }
                    }
                }
                Op::Refund { caller, order } => {
                    let caller = actors[caller];
                    let id = pick_order(count, order);
                    let result = env.call(caller, 0, |m| m.refund(id));
                    let reason = model.order(id).and_then(|o| {
                        if !is_active(o.status) || o.status == status::DISPUTED {
                            None
                        } else if o.status == status::COMPUTED
                            && o.computed_at + CLAIM_TIMEOUT < now
                        {
                            Some(refund_reason::UNDELIVERED)
                        } else if caller == o.seller && o.status != status::CLAIMED {
                            Some(refund_reason::REFUSED)
                        } else if now > o.deadline {
                            Some(refund_reason::EXPIRED)
                        } else {
                            None
                        }
                    });
                    prop_assert_eq!(result.is_ok(), reason.is_some(), "{:?}", op);
                    if let Some(reason) = reason {
                        let index = usize::try_from(id).expect("small") - 1;
                        let o = model.orders[index].clone();
                        // A computed order's worker did its part: its fee, the rest to the holder.
                        let fee = if o.status == status::COMPUTED {
                            o.fee
                        } else {
                            0
                        };
                        let claimant = if o.status == status::OPEN {
                            Address::ZERO
                        } else {
                            o.worker
                        };
                        if o.status == status::CLAIMED && o.claimed_at + window(o.pbs) < now {
                            model.forfeit(o.worker, o.holder);
                        }
                        model.credit(o.worker, fee);
                        model.credit(o.holder, o.escrow - fee);
                        model.orders[index].epsilon_returned =
                            !(o.status == status::COMPUTED && reason == refund_reason::REFUSED);
                        model.close(index, claimant, status::REFUNDED);
                        // A result left undelivered on a healthy dataset costs the seller's
                        // stake the order's price, paid at the registry to the holder.
                        let penalty = if reason == refund_reason::UNDELIVERED
                            && env.health.get() == HEALTHY
                        {
                            let taken = o.price.min(model.stake);
                            model.stake -= taken;
                            model
                                .penalties
                                .push((u(o.dataset), u(o.price), o.holder, u(taken)));
                            taken
                        } else {
                            0
                        };
                        let event = events::<OrderRefunded>(&env.host)
                            .pop()
                            .expect("OrderRefunded");
                        prop_assert_eq!((event.reason, event.penalty), (reason, u(penalty)));
                    }
                    prop_assert_eq!(&*env.slashes.borrow(), &model.penalties);
                }
                Op::Withdraw { actor } => {
                    let actor = actors[actor];
                    let owed = model.owed.get(&actor).copied().unwrap_or(0);
                    let withdrawn = env.host.balance(actor);
                    let result = env.call(actor, 0, QueryMarket::withdraw);
                    prop_assert_eq!(result.is_ok(), u(owed) > withdrawn, "{:?}", op);
                    if result.is_ok() {
                        // Withdrawing everything leaves exactly what the model says was owed.
                        prop_assert_eq!(env.host.balance(actor), u(owed));
                    }
                }
                Op::Transfer {
                    caller,
                    from,
                    to,
                    order,
                } => {
                    let caller = actors[caller];
                    let from = actors[from];
                    let to = to.map_or(Address::ZERO, |to| actors[to]);
                    let id = pick_order(count, order);
                    let result = env.call(caller, 0, |m| m.transfer_from(from, to, id));
                    let expected = model
                        .order(id)
                        .is_some_and(|o| caller == from && o.holder == from && !to.is_zero());
                    prop_assert_eq!(result.is_ok(), expected, "{:?}", op);
                    if result.is_ok() {
                        model.orders[usize::try_from(id).expect("small") - 1].holder = to;
                    }
                }
                Op::Advance { seconds } => env.advance(seconds),
                Op::Lapse { per_order } => {
                    model.compensation_index += per_order;
                    env.compensation_index.set(model.compensation_index);
                }
                Op::Work { .. }
                | Op::Settle { .. }
                | Op::Dispute { .. }
                | Op::Judge { .. }
                | Op::Expire { .. } => {
                    unreachable!("expanded above")
                }
            }

            // The invariant, and the market's books against the model, after every step.
            let m = &env.market;
            prop_assert_eq!(
                env.host.balance(env.host.contract()),
                m.total_escrow() + m.total_bonds() + m.total_payouts() + m.total_dispute_bonds()
            );
            let held: u64 = model
                .orders
                .iter()
                .filter_map(|o| o.dispute.as_ref().map(|d| d.bond))
                .sum();
            prop_assert_eq!(m.total_dispute_bonds(), u(held));
            let escrow: u64 = model
                .orders
                .iter()
                .filter(|o| is_active(o.status))
                .map(|o| o.escrow)
                .sum();
            prop_assert_eq!(m.total_escrow(), u(escrow));
            // The privacy ledger: a dataset's spent ε is the ε of its orders that were not
            // refunded before a release.
            for (id, _) in datasets(&actors) {
                let kept = model
                    .orders
                    .iter()
                    .filter(|o| o.dataset == id && !o.epsilon_returned)
                    .count() as u64;
                prop_assert_eq!(m.epsilon_spent(u(id)), kept * EPS);
            }
            // Every closed order asked the registry for its compensation, once, from its index.
            prop_assert_eq!(&*env.compensations.borrow(), &model.compensations);
            prop_assert_eq!(m.total_bonds(), u(model.bonds.values().sum::<u64>()));
            let mut unwithdrawn = U256::ZERO;
            for &actor in &actors {
                let owed = u(model.owed.get(&actor).copied().unwrap_or(0));
                let withdrawn = env.host.balance(actor);
                prop_assert!(withdrawn <= owed, "{actor} withdrew more than it was owed");
                prop_assert_eq!(m.payout_of(actor), owed - withdrawn);
                unwithdrawn += owed - withdrawn;
                prop_assert_eq!(
                    m.worker_bond(actor),
                    u(model.bonds.get(&actor).copied().unwrap_or(0))
                );
                prop_assert_eq!(
                    m.active_claims(actor),
                    model.active.get(&actor).copied().unwrap_or(0)
                );
                prop_assert_eq!(
                    ok(m.balance_of(actor)),
                    u(model.orders.iter().filter(|o| o.holder == actor).count() as u64)
                );
            }
            prop_assert_eq!(m.total_payouts(), unwithdrawn);
            for (dataset_id, _) in datasets(&actors) {
                let open = model
                    .orders
                    .iter()
                    .filter(|o| o.dataset == dataset_id && is_active(o.status))
                    .count();
                prop_assert_eq!(m.open_order_count(u(dataset_id)), u(open as u64));
            }
            for (index, o) in model.orders.iter().enumerate() {
                prop_assert_eq!(ok(m.order(u(index as u64 + 1))).9, o.status);
            }
        }
    }
    // Finally everyone withdraws everything (bonds too, where no claim is pending).
    for &actor in &actors {
        if model.active.get(&actor).copied().unwrap_or(0) == 0
            && model.registered.get(&actor) == Some(&true)
        {
            ok(env.call(actor, 0, QueryMarket::withdraw_bond));
            let bond = model.bonds.insert(actor, 0).unwrap_or(0);
            model.credit(actor, bond);
        }
        let owed = u(model.owed.get(&actor).copied().unwrap_or(0));
        if owed > env.host.balance(actor) {
            ok(env.call(actor, 0, QueryMarket::withdraw));
        }
        prop_assert_eq!(env.host.balance(actor), owed);
    }
    env.assert_solvent();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn money_is_conserved_under_random_call_sequences(ops in proptest::collection::vec(op(), 15..30)) {
        run_sequence(&ops)?;
    }
}
