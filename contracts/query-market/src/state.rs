// The market's state, shared by the two programs that run on it: `QueryMarket` (this crate) and
// its extension `DisputeGame` (contracts/dispute-game), which the market delegate-calls for the
// dispute selectors so that the game runs on the market's storage and balance. Both crates
// `include!` this file, so both lay the storage out from the one declaration below; each compiles
// only the helpers it calls. Not a module of its own: both routers `impl QueryMarket`, which
// needs the private fields in scope.

use alloc::vec::Vec;

use alloy_primitives::{
    Address, B256, U256, address,
    aliases::{U8, U64},
    b256,
};
use alloy_sol_types::sol;
use stylus_sdk::{
    abi::Bytes,
    prelude::*,
    storage::{
        StorageAddress, StorageB256, StorageBool, StorageMap, StorageU8, StorageU64, StorageU256,
    },
};

// The events live in src/events.sol, one declaration shared with the exported interface
// (src/main.rs splices them into abi/IQueryMarket.sol, which export-abi would otherwise print without
// events). `sol!` tracks the file, so editing it rebuilds the contract. The path is relative to the
// including crate's manifest, and works from both crates.
sol!("../query-market/src/events.sol");

sol! {
    error AlreadyInitialized();
    error NotDeployer();
    error NotInitialized();
    error InvalidConfig();
    error UnknownOrder(uint256 orderId);
    error DatasetNotOrderable(uint256 datasetId, bytes32 templateHash);
    error RegistryCallFailed();
    error ProofManagerCallFailed();
    error PaymentTooLow(uint256 sent, uint256 required);
    error InvalidDeadline(uint64 deadline);
    error InvalidBuyerKey();
    error InvalidCid();
    error BondTooLow(uint256 bond, uint256 required);
    error WorkerBusy(uint64 activeClaims);
    error PartyCannotWork(uint256 orderId, address account);
    error NotWorker(address account);
    error OrderNotClaimable(uint256 orderId, uint8 status);
    error OrderExpired(uint256 orderId, uint64 deadline);
    error InvalidOrderStatus(uint256 orderId, uint8 status);
    error Unauthorized(uint256 orderId, address account);
    error ClaimExpired(uint256 orderId);
    error InvalidAttestation();
    error InvalidDeliverySignature();
    error NoVerifier(uint256 orderId);
    error NotReceiptOwner(uint256 orderId, address account);
    error DeadlineNotPassed(uint64 deadline);
    error ZeroAddress();
    error NothingToWithdraw();
    error TransferFailed();
    error ArithmeticOverflow();
    error InvalidEpsilon(uint256 datasetId, uint64 asked, uint64 left);
}

/// Everything that makes a `QueryMarket` call revert.
#[derive(SolidityError)]
pub enum Error {
    /// `initialize` was called twice.
    AlreadyInitialized(AlreadyInitialized),
    /// The caller of `initialize` did not deploy this program with the nonce it names.
    NotDeployer(NotDeployer),
    /// A mutating function was called before `initialize`.
    NotInitialized(NotInitialized),
    /// `initialize` got a zero address or a zero timeout.
    InvalidConfig(InvalidConfig),
    /// No order has this id.
    UnknownOrder(UnknownOrder),
    /// The registry refused `orderTerms` (unknown or inactive dataset, template not allowed).
    DatasetNotOrderable(DatasetNotOrderable),
    /// The registry answered something that is not `(address, bytes32, uint256)`.
    RegistryCallFailed(RegistryCallFailed),
    /// `ProofManager.health` reverted or answered something that is not a `uint8`.
    ProofManagerCallFailed(ProofManagerCallFailed),
    /// `msg.value` is below `price + workerFee`.
    PaymentTooLow(PaymentTooLow),
    /// The deadline is not in `(now, now + maxOrderLifetime]`.
    InvalidDeadline(InvalidDeadline),
    /// The buyer key is not an X25519 public key's 32 bytes.
    InvalidBuyerKey(InvalidBuyerKey),
    /// A result or delivery CID is empty or longer than 128 bytes.
    InvalidCid(InvalidCid),
    /// The worker's bond would stay below `minWorkerBond`.
    BondTooLow(BondTooLow),
    /// The worker still holds claims (withdrawing its bond), or its bond backs no more.
    WorkerBusy(WorkerBusy),
    /// The caller is the order's buyer, receipt owner or seller: it may not work it.
    PartyCannotWork(PartyCannotWork),
    /// The caller is not a registered worker with at least `minWorkerBond`.
    NotWorker(NotWorker),
    /// The order is neither Open nor Claimed with an expired claim.
    OrderNotClaimable(OrderNotClaimable),
    /// The order's deadline has passed.
    OrderExpired(OrderExpired),
    /// The order is not in the status this function needs.
    InvalidOrderStatus(InvalidOrderStatus),
    /// The caller is not who this function needs for this order: its seller (`deliverResult`),
    /// the worker holding its claim (`submitResult`), the verifier drawn for its dispute
    /// (`submitVerdict`), or its seller or receipt owner (`dispute`).
    Unauthorized(Unauthorized),
    /// The worker's claim (or the verifier's assignment) timed out.
    ClaimExpired(ClaimExpired),
    /// The attestation is malformed, high-s, or not signed by the claiming worker.
    InvalidAttestation(InvalidAttestation),
    /// The delivery's signature is malformed, high-s, or not the seller's over this order's
    /// result and this delivery CID.
    InvalidDeliverySignature(InvalidDeliverySignature),
    /// No listed worker is eligible to verify the order (none bonded and free, or all parties).
    NoVerifier(NoVerifier),
    /// The caller (or `from`) does not own the receipt.
    NotReceiptOwner(NotReceiptOwner),
    /// The order's deadline (or the verifier's) has not passed yet.
    DeadlineNotPassed(DeadlineNotPassed),
    /// The zero address is not a receipt owner.
    ZeroAddress(ZeroAddress),
    /// The caller has no payouts.
    NothingToWithdraw(NothingToWithdraw),
    /// Sending the payout failed.
    TransferFailed(TransferFailed),
    /// An amount overflowed (cannot happen with real balances; checked anyway).
    ArithmeticOverflow(ArithmeticOverflow),
    /// The order's ε (micro-ε) is zero, or more than what is left of the dataset's privacy
    /// budget (`left`, for every buyer together): differential privacy is not optional, and a
    /// dataset answers no more than its owner's budget allows.
    InvalidEpsilon(InvalidEpsilon),
}

/// Order status values, as `order(...).status` reports them.
pub mod status {
    /// No such order.
    pub const NONE: u8 = 0;
    /// Paid, waiting for a worker.
    pub const OPEN: u8 = 1;
    /// A worker claimed it.
    pub const CLAIMED: u8 = 2;
    /// The worker submitted an attested result.
    pub const COMPUTED: u8 = 3;
    /// Delivered on a healthy dataset: seller and worker paid.
    pub const SETTLED: u8 = 4;
    /// Delivered on an unhealthy dataset: buyer refunded.
    pub const FAILED: u8 = 5;
    /// Refunded to the receipt's owner (after the deadline, refused by the seller, or not
    /// delivered in time: `OrderRefunded.reason`).
    pub const REFUNDED: u8 = 6;
    /// Under dispute: a verifier is recomputing the result.
    pub const DISPUTED: u8 = 7;
}

/// How a dispute ended, as `DisputeResolved.outcome` reports it.
pub mod outcome {
    /// The worker's result stands; the order is Computed again.
    pub const UPHELD: u8 = 1;
    /// Two verifiers agreed against the worker: it was slashed and the order reopened.
    pub const OVERTURNED: u8 = 2;
    /// No majority (or no verifier): the order reopened, nobody slashed.
    pub const INCONCLUSIVE: u8 = 3;
}

/// Why an order was refunded, as `OrderRefunded.reason` reports it.
pub mod refund_reason {
    /// Its deadline passed unfinished (anyone may close it).
    pub const EXPIRED: u8 = 1;
    /// Its seller refused it while Open or Computed (a poison pill, a release its output policy
    /// refuses): the receipt's owner need not wait for the deadline.
    pub const REFUSED: u8 = 2;
    /// Its result was computed and the seller did not deliver it within `claimTimeout`: on a
    /// healthy dataset the seller's stake pays the order's price to the receipt's owner.
    pub const UNDELIVERED: u8 = 3;
}

/// `ProofManager.health` value that allows settlement.
pub const HEALTHY: u8 = 1;
/// Longest result CID or delivery CID accepted.
pub const MAX_BLOB_LEN: usize = 128;
/// A buyer key is an X25519 public key (HPKE `DHKEM(X25519, HKDF-SHA256)`): exactly 32 bytes, so
/// no seller is handed a key it cannot seal to.
pub const BUYER_KEY_LEN: usize = 32;
/// The pace a claim is given, in programmable bootstraps a second: a claim (and a verifier's
/// assignment) lasts `claimTimeout + pbsEstimate / PBS_PER_SECOND` seconds, so an order whose plan
/// bootstraps a lot is not taken from its worker mid-evaluation. A 2-core worker bootstraps
/// ~60 a second on the default parameters (measured by the engine's bench); 20 leaves it a
/// threefold margin.
pub const PBS_PER_SECOND: u64 = 20;
/// Active claims one `minWorkerBond` backs.
pub const CLAIMS_PER_MIN_BOND: u64 = 4;
/// `Dispute.round` of an order whose result was upheld (`disputeOf` reports it as is).
pub const UPHELD_ROUND: u8 = 3;
/// Listed workers a verifier draw looks at, from its pseudo-random start, before it gives up.
pub const MAX_VERIFIER_PROBES: u64 = 32;
/// Selector of `DatasetRegistry.orderTerms(uint256,bytes32)`.
pub const ORDER_TERMS_SELECTOR: [u8; 4] = [0x7e, 0x4f, 0x72, 0x62];
/// Selector of `ProofManager.health(uint256)`.
pub const HEALTH_SELECTOR: [u8; 4] = [0x78, 0x3b, 0x6d, 0x60];
/// The `ecrecover` precompile.
pub const ECRECOVER: Address = address!("0x0000000000000000000000000000000000000001");
/// `keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")`.
pub const DOMAIN_TYPEHASH: B256 =
    b256!("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f");
/// `keccak256("DataCloud QueryMarket")`.
pub const NAME_HASH: B256 =
    b256!("0xe299334eb7330ea3bda80efb30f3168d9fe730973930c9a9f61a67ed7b66c04d");
/// `keccak256("1")`.
pub const VERSION_HASH: B256 =
    b256!("0xc89efdaa54c0f20c7adf612882df0950f5a951637e0307cdcb4c672f298b8bc6");
/// `keccak256("Attestation(uint256 orderId,uint256 datasetId,bytes32 manifestHash,bytes32 templateHash,bytes32 paramsHash,bytes32 resultHash)")`.
pub const ATTESTATION_TYPEHASH: B256 =
    b256!("0xa61defeef7326701ef2140620df05761692050d17be452166ba2c82d1a4ae52b");
/// `keccak256("Delivery(uint256 orderId,bytes32 resultHash,bytes deliveryCid)")`.
pub const DELIVERY_TYPEHASH: B256 =
    b256!("0x17f237025edb0828c1d363e4ff7bce3590c9cb71a92ccedf08b76e62f2e670f2");
/// Selector of `DatasetRegistry.slash(uint256,uint256,address)`.
pub const SLASH_SELECTOR: [u8; 4] = [0x48, 0xfd, 0x06, 0x4a];
/// Selector of `DatasetRegistry.compensate(uint256,uint256,address,uint256)`.
pub const COMPENSATE_SELECTOR: [u8; 4] = [0xdb, 0x06, 0x03, 0xf4];

/// `order(uint256)`: datasetId, seller, templateHash, paramsHash, manifestHash, price, workerFee,
/// escrow, deadline, status, pbsEstimate, epsilon.
pub type OrderView = (U256, Address, B256, B256, B256, U256, U256, U256, u64, u8, u64, u64);
/// `orderWork(uint256)`: worker, claimedAt, resultCid, resultHash, deliveryCid.
pub type OrderWorkView = (Address, u64, Bytes, B256, Bytes);
/// `disputeOf(uint256)`: disputer, bond, round (0: none), verifier, the verifier's deadline.
pub type DisputeView = (Address, U256, u8, Address, u64);

/// One query order. Small fields follow an address so that they share its slot.
#[storage]
#[allow(dead_code)] // each of the two programs reads only its part of the one layout
pub struct Order {
    dataset_id: StorageU256,
    seller: StorageAddress,
    deadline: StorageU64,
    status: StorageU8,
    /// The receipt's current owner: refunds and excess go here.
    holder: StorageAddress,
    /// The buyer's estimate of the plan's programmable bootstraps (anyone recomputes it from
    /// the parameters and the manifest; a worker refuses an understated one): it lengthens the
    /// claim.
    pbs_estimate: StorageU64,
    worker: StorageAddress,
    claimed_at: StorageU64,
    /// Who placed the order (it may have sold the receipt since, and still may not work it).
    buyer: StorageAddress,
    /// When its current result was submitted (or upheld by a dispute): the seller's delivery
    /// window runs `claimTimeout` from here.
    computed_at: StorageU64,
    manifest_hash: StorageB256,
    template_hash: StorageB256,
    params_hash: StorageB256,
    price: StorageU256,
    /// The worker fee in force when the order was placed.
    worker_fee: StorageU256,
    escrow: StorageU256,
    result_hash: StorageB256,
    /// The dataset's compensation index at placement (`orderTerms`): the order is owed what
    /// the lapses slashed from the dataset while it was open (`DatasetRegistry.compensate`).
    compensation_index: StorageU256,
    /// The ε the order spends of its dataset's privacy budget (micro-ε): the seller calibrates
    /// the released result's noise to it.
    epsilon: StorageU64,
}

/// Up to [`MAX_BLOB_LEN`] bytes (a CID, a key, a signature): a length and four words. Cheaper in
/// code than `StorageBytes`, whose length arithmetic pulls U256 division (8 KB) into the WASM.
/// A blob rewritten shorter (a result cleared by an overturned dispute, then resubmitted) keeps
/// stale words past its length, which `get` never reads.
#[storage]
pub struct Blob {
    len: StorageU8,
    word0: StorageB256,
    word1: StorageB256,
    word2: StorageB256,
    word3: StorageB256,
}

/// A worker's bond, the number of orders it holds claimed, computed or assigned to verify, and
/// its place in the list verifiers are drawn from.
#[storage]
#[allow(dead_code)] // each of the two programs reads only its part of the one layout
pub struct Worker {
    bond: StorageU256,
    active_claims: StorageU64,
    registered: StorageBool,
    index: StorageU64,
}

/// A dispute over an order's result (cleared when it ends).
#[storage]
#[allow(dead_code)] // the market program leaves disputes to the game's
pub struct Dispute {
    disputer: StorageAddress,
    deadline: StorageU64,
    /// 1 or 2 while a verifier is drawn, [`UPHELD_ROUND`] once the result survived a dispute
    /// (it may not be disputed again), 0 otherwise.
    round: StorageU8,
    verifier: StorageAddress,
    first_verifier: StorageAddress,
    bond: StorageU256,
    /// `keccak(resultHash ‖ resultCid)` of the first verifier's answer.
    first_vote: StorageB256,
}

/// The `QueryMarket` contract.
#[storage]
#[entrypoint]
#[allow(dead_code)] // each of the two programs reads only its part of the one layout
pub struct QueryMarket {
    initialized: StorageBool,
    owner: StorageAddress,
    claim_timeout: StorageU64,
    registry: StorageAddress,
    max_order_lifetime: StorageU64,
    proof_manager: StorageAddress,
    worker_fee: StorageU256,
    min_worker_bond: StorageU256,
    order_count: StorageU256,
    total_escrow: StorageU256,
    total_bonds: StorageU256,
    total_payouts: StorageU256,
    total_dispute_bonds: StorageU256,
    worker_count: StorageU64,
    orders: StorageMap<U256, Order>,
    disputes: StorageMap<U256, Dispute>,
    /// The registered workers, `0..workerCount` (swap-removed when one withdraws its bond).
    worker_list: StorageMap<U256, StorageAddress>,
    // An order's variable-length parts live outside `Order`, which keeps the code that lays
    // `Order` out in storage small.
    buyer_keys: StorageMap<U256, Blob>,
    result_cids: StorageMap<U256, Blob>,
    signatures: StorageMap<U256, Blob>,
    delivery_cids: StorageMap<U256, Blob>,
    workers: StorageMap<Address, Worker>,
    receipt_balances: StorageMap<Address, StorageU256>,
    open_orders: StorageMap<U256, StorageU256>,
    /// Per dataset, the ε (micro-ε) its orders spent of its privacy budget (`orderTerms`' last
    /// word), every buyer together; an order refunded before anything about the data was
    /// released gives its ε back.
    epsilon_spent: StorageMap<U256, StorageU64>,
    payouts: StorageMap<Address, StorageU256>,
    /// The `DisputeGame` program the market delegate-calls (set by `initialize`).
    dispute_game: StorageAddress,
}

impl QueryMarket {

    fn require_initialized(&self) -> Result<(), Error> {
        if self.initialized.get() {
            Ok(())
        } else {
            Err(Error::NotInitialized(NotInitialized {}))
        }
    }


    /// The order's status, refusing orders that do not exist.
    fn status_of(&self, order_id: U256) -> Result<u8, Error> {
        // `byte(0)` is the whole value of a `uint8` (no panicking conversion in the WASM).
        let current = self.orders.getter(order_id).status.get().byte(0);
        if current == status::NONE {
            return Err(Error::UnknownOrder(UnknownOrder { orderId: order_id }));
        }
        Ok(current)
    }


    /// An expired claim costs its worker an eighth of `minWorkerBond` (what is left of its bond,
    /// if less), credited to `to`, who waited on it (the receipt's owner; for a verifier, the
    /// order's worker).
    fn forfeit_expired_claim(
        &mut self,
        order_id: U256,
        worker: Address,
        to: Address,
    ) -> Result<(), Error> {
        // A shift, not a division: U256 division would add kilobytes to the WASM.
        let amount = self.take_bond(worker, self.min_worker_bond.get() >> 3_usize)?;
        self.credit(to, amount)?;
        self.vm().log(ClaimForfeited {
            orderId: order_id,
            worker,
            amount,
        });
        Ok(())
    }


    /// Takes `amount` of `worker`'s bond (what is left of it, if less) out of the bonds and
    /// returns what it took; the caller credits it.
    fn take_bond(&mut self, worker: Address, amount: U256) -> Result<U256, Error> {
        let mut entry = self.workers.setter(worker);
        let bond = entry.bond.get();
        let taken = amount.min(bond);
        entry.bond.set(bond - taken);
        let bonds = checked_sub(self.total_bonds.get(), taken)?;
        self.total_bonds.set(bonds);
        Ok(taken)
    }


    /// Whether a worker with `bond` and `active` claims may take one more:
    /// `bond ≥ minWorkerBond` and `(active + 1) · minWorkerBond ≤ CLAIMS_PER_MIN_BOND · bond`.
    fn backs_another_claim(&self, bond: U256, active: u64) -> bool {
        // Saturating u128 (no real amount of wei reaches 2^128; U256 multiplication would add
        // kilobytes to the WASM).
        let wei = |amount: U256| u128::try_from(amount).unwrap_or(u128::MAX);
        let min = self.min_worker_bond.get();
        let needed = u128::from(active)
            .saturating_add(1)
            .saturating_mul(wei(min));
        bond >= min && needed <= wei(bond).saturating_mul(u128::from(CLAIMS_PER_MIN_BOND))
    }


    fn set_status(&mut self, order_id: U256, value: u8) {
        self.orders.setter(order_id).status.set(status_word(value));
    }


    /// How long a claim on (or a verifier's assignment to) an order lasts: `claimTimeout` plus
    /// a second per [`PBS_PER_SECOND`] of its plan's estimated bootstraps.
    fn claim_window(&self, order_id: U256) -> u64 {
        let pbs = self.orders.getter(order_id).pbs_estimate.get().as_limbs()[0];
        claim_window_for(self.claim_timeout.get().as_limbs()[0], pbs)
    }


    /// The order holds a result (submitted, or upheld by a dispute); the seller's delivery
    /// window starts now.
    fn mark_computed(&mut self, order_id: U256) {
        let now = self.vm().block_timestamp();
        let mut order = self.orders.setter(order_id);
        order.status.set(status_word(status::COMPUTED));
        order.computed_at.set(U64::from_limbs([now]));
    }


    fn release_claim(&mut self, worker: Address) -> Result<(), Error> {
        let mut entry = self.workers.setter(worker);
        let active = entry.active_claims.get().as_limbs()[0]
            .checked_sub(1)
            .ok_or(Error::ArithmeticOverflow(ArithmeticOverflow {}))?;
        entry.active_claims.set(U64::from_limbs([active]));
        Ok(())
    }


    /// Adds `amount` to `account`'s payouts (and to `totalPayouts`).
    fn credit(&mut self, account: Address, amount: U256) -> Result<(), Error> {
        if amount.is_zero() {
            return Ok(());
        }
        let balance = checked_add(self.payouts.get(account), amount)?;
        self.payouts.insert(account, balance);
        let owed = checked_add(self.total_payouts.get(), amount)?;
        self.total_payouts.set(owed);
        Ok(())
    }
}

impl Blob {
    /// Stores `bytes`; the callers have checked that it holds at most [`MAX_BLOB_LEN`] bytes.
    // A slice, not `impl AsRef<[u8]>`: one copy of this code in the WASM instead of one per caller's type.
    fn set(&mut self, bytes: &[u8]) {
        let len = bytes.len().min(MAX_BLOB_LEN);
        self.len.set(U8::from_limbs([len as u64]));
        let slots = [
            &mut self.word0,
            &mut self.word1,
            &mut self.word2,
            &mut self.word3,
        ];
        for (slot, chunk) in slots.into_iter().zip(bytes[..len].chunks(32)) {
            let mut word = B256::ZERO;
            word[..chunk.len()].copy_from_slice(chunk);
            slot.set(word);
        }
    }

    fn get(&self) -> Bytes {
        let len = usize::from(self.len.get().byte(0)).min(MAX_BLOB_LEN);
        let mut out = Vec::with_capacity(len);
        for slot in [&self.word0, &self.word1, &self.word2, &self.word3] {
            if out.len() >= len {
                break;
            }
            let word = slot.get();
            let take = (len - out.len()).min(32);
            out.extend_from_slice(&word[..take]);
        }
        out.into()
    }
}

/// `timeout + pbs / PBS_PER_SECOND`, saturating (a u64 division: no U256 arithmetic).
fn claim_window_for(timeout: u64, pbs: u64) -> u64 {
    timeout.saturating_add(pbs / PBS_PER_SECOND)
}

fn status_word(value: u8) -> U8 {
    U8::from_limbs([u64::from(value)])
}

fn check_cid(cid: &[u8]) -> Result<(), Error> {
    if cid.is_empty() || cid.len() > MAX_BLOB_LEN {
        return Err(Error::InvalidCid(InvalidCid {}));
    }
    Ok(())
}

fn unauthorized(order_id: U256, account: Address) -> Error {
    Error::Unauthorized(Unauthorized {
        orderId: order_id,
        account,
    })
}

fn invalid_status(order_id: U256, current: u8) -> Error {
    Error::InvalidOrderStatus(InvalidOrderStatus {
        orderId: order_id,
        status: current,
    })
}

fn checked_add(a: U256, b: U256) -> Result<U256, Error> {
    a.checked_add(b)
        .ok_or(Error::ArithmeticOverflow(ArithmeticOverflow {}))
}

fn checked_sub(a: U256, b: U256) -> Result<U256, Error> {
    a.checked_sub(b)
        .ok_or(Error::ArithmeticOverflow(ArithmeticOverflow {}))
}
