//! `DatasetRegistry`: the on-chain record of every DataCloud dataset.
//!
//! A seller registers a dataset by its content addresses (the manifest CID and the Filecoin
//! PieceCID), its schema hash and the query templates it allows with a price for each, staking a
//! bond in the chain's native token. The `ProofManager` slashes that stake when the seller stops
//! proving possession, and the `QueryMarket` when the seller leaves a computed result undelivered
//! past its delivery window on a healthy dataset. The market reads the order terms from here and
//! must report no open order before the seller takes the stake back, a cooldown after
//! deactivating.
//!
//! A lapse's slash compensates the buyers it strands first: `slashForBuyers` reserves an equal
//! share of it for every order open on the dataset (the market's `openOrderCount`), advancing the
//! dataset's compensation index; when an order closes, the market has the registry pay the receipt's
//! owner what the index gained since the order was placed, at most the order's price
//! (`compensate`). What is not reserved (no open order, rounding) and what exceeds a price is
//! burned: credited to [`BURN`], whose key nobody holds.
//!
//! Money: the contract holds exactly `Σ stake(dataset) + totalPayouts + reservedCompensation`.
//! Slashed stake becomes a payout that its beneficiary pulls with `withdraw()` (withdraw
//! pattern). Every transfer follows
//! checks-effects-interactions, and reentrancy is refused by the SDK itself: the `reentrant`
//! feature of `stylus-sdk` is off, so a call back into this contract during a transfer reverts.

#![cfg_attr(not(any(test, feature = "export-abi")), no_main)]
extern crate alloc;

use alloc::vec::Vec;

use alloy_primitives::{Address, B256, U8, U64, U256, address};
use alloy_sol_types::{SolEvent, TopicList, abi::token::WordToken, sol};
use datacloud_pdp::PieceRef;
use stylus_sdk::{
    abi::Bytes,
    call::transfer::transfer_eth,
    prelude::*,
    storage::{
        StorageAddress, StorageArray, StorageB256, StorageBool, StorageMap, StorageU8, StorageU64,
        StorageU256, StorageVec,
    },
};

include!("../../deployer.rs");
include!("../../div.rs");

/// Longest CID accepted, in bytes (a `CIDv1` with a 512-bit multihash fits comfortably).
pub const MAX_CID_LEN: usize = 128;
/// Most templates a dataset may register with.
pub const MAX_TEMPLATES_AT_REGISTRATION: usize = 32;
/// Most distinct templates a dataset may ever know, so that `templatesOf` stays bounded.
pub const MAX_TEMPLATES: usize = 64;
/// Privacy budgets and ε are counted in millionths of an ε (micro-ε): ε 0.5 is `500_000`.
pub const EPSILON_SCALE: u64 = 1_000_000;
/// Where burned stake goes: a payout nobody can withdraw (no key is known for this address).
pub const BURN: Address = address!("0x000000000000000000000000000000000000dEaD");

// The events live in src/events.sol, one declaration shared with the exported interface
// (src/main.rs splices them into abi/IDatasetRegistry.sol, which export-abi would otherwise print without
// events). `sol!` tracks the file, so editing it rebuilds the contract.
sol!("src/events.sol");

sol! {
    /// `initialize` was already called.
    #[derive(Debug, PartialEq, Eq)]
    error AlreadyInitialized();
    /// The caller of `initialize` did not deploy this program with the nonce it names.
    #[derive(Debug, PartialEq, Eq)]
    error NotDeployer();
    /// `initialize` has not been called yet.
    #[derive(Debug, PartialEq, Eq)]
    error NotInitialized();
    /// A zero address where a real one is needed.
    #[derive(Debug, PartialEq, Eq)]
    error InvalidAddress();
    /// `caller` does not own dataset `datasetId`.
    #[derive(Debug, PartialEq, Eq)]
    error NotDatasetOwner(uint256 datasetId, address caller);
    /// No dataset has id `datasetId`.
    #[derive(Debug, PartialEq, Eq)]
    error UnknownDataset(uint256 datasetId);
    /// Dataset `datasetId` is deactivated.
    #[derive(Debug, PartialEq, Eq)]
    error DatasetInactive(uint256 datasetId);
    /// Dataset `datasetId` must be deactivated first.
    #[derive(Debug, PartialEq, Eq)]
    error DatasetStillActive(uint256 datasetId);
    /// The stake sent is below the registry's minimum.
    #[derive(Debug, PartialEq, Eq)]
    error StakeTooLow(uint256 sent, uint256 minimum);
    /// A CID is empty or longer than 128 bytes.
    #[derive(Debug, PartialEq, Eq)]
    error InvalidCid();
    /// `templateHashes` and `prices` differ in length.
    #[derive(Debug, PartialEq, Eq)]
    error LengthMismatch();
    /// Templates: none, too many, a zero hash or a duplicate.
    #[derive(Debug, PartialEq, Eq)]
    error InvalidTemplates();
    /// Template `templateHash` is not allowed for dataset `datasetId`.
    #[derive(Debug, PartialEq, Eq)]
    error TemplateNotAllowed(uint256 datasetId, bytes32 templateHash);
    /// Only the proof manager (missed proofs) and the query market (a missed delivery) may
    /// slash; `caller` is neither.
    #[derive(Debug, PartialEq, Eq)]
    error NotSlasher(address caller);
    /// Only the query market may pay an order's compensation; `caller` is not it.
    #[derive(Debug, PartialEq, Eq)]
    error NotMarket(address caller);
    /// The withdrawal cooldown runs until timestamp `until`.
    #[derive(Debug, PartialEq, Eq)]
    error CooldownPending(uint64 until);
    /// The query market still has `count` open orders on the dataset.
    #[derive(Debug, PartialEq, Eq)]
    error OpenOrders(uint256 count);
    /// The amount to withdraw is zero.
    #[derive(Debug, PartialEq, Eq)]
    error NothingToWithdraw();
    /// Sending native tokens failed.
    #[derive(Debug, PartialEq, Eq)]
    error TransferFailed();
    /// The call to `QueryMarket.openOrderCount` failed.
    #[derive(Debug, PartialEq, Eq)]
    error MarketCallFailed();
    /// A money total would overflow (unreachable while the balance invariant holds).
    #[derive(Debug, PartialEq, Eq)]
    error ArithmeticOverflow();
    /// The piece CID is not an FRC-0069 v2 PieceCID (root, height, canonical padding).
    #[derive(Debug, PartialEq, Eq)]
    error InvalidPieceCid();
    /// The piece's tree has `height` levels; proofs need at least `minimum`.
    #[derive(Debug, PartialEq, Eq)]
    error PieceTooSmall(uint8 height, uint8 minimum);
    /// A privacy budget must leave some ε for orders: `sampleEpsilon < budget`.
    #[derive(Debug, PartialEq, Eq)]
    error InvalidPrivacyBudget(uint64 budget, uint64 sampleEpsilon);
}

sol_interface! {
    /// The part of the `QueryMarket` the registry reads.
    interface IQueryMarket {
        function openOrderCount(uint256 dataset_id) external view returns (uint256);
    }
}

/// Every way a registry call reverts.
#[derive(SolidityError, Debug, PartialEq, Eq)]
pub enum Error {
    /// See [`AlreadyInitialized`].
    AlreadyInitialized(AlreadyInitialized),
    /// See [`NotInitialized`].
    NotInitialized(NotInitialized),
    /// See [`InvalidAddress`].
    InvalidAddress(InvalidAddress),
    /// See [`NotDatasetOwner`].
    NotDatasetOwner(NotDatasetOwner),
    /// See [`UnknownDataset`].
    UnknownDataset(UnknownDataset),
    /// See [`DatasetInactive`].
    DatasetInactive(DatasetInactive),
    /// See [`DatasetStillActive`].
    DatasetStillActive(DatasetStillActive),
    /// See [`StakeTooLow`].
    StakeTooLow(StakeTooLow),
    /// See [`InvalidCid`].
    InvalidCid(InvalidCid),
    /// See [`LengthMismatch`].
    LengthMismatch(LengthMismatch),
    /// See [`InvalidTemplates`].
    InvalidTemplates(InvalidTemplates),
    /// See [`TemplateNotAllowed`].
    TemplateNotAllowed(TemplateNotAllowed),
    /// See [`NotDeployer`].
    NotDeployer(NotDeployer),
    /// See [`NotSlasher`].
    NotSlasher(NotSlasher),
    /// See [`NotMarket`].
    NotMarket(NotMarket),
    /// See [`CooldownPending`].
    CooldownPending(CooldownPending),
    /// See [`OpenOrders`].
    OpenOrders(OpenOrders),
    /// See [`NothingToWithdraw`].
    NothingToWithdraw(NothingToWithdraw),
    /// See [`TransferFailed`].
    TransferFailed(TransferFailed),
    /// See [`MarketCallFailed`].
    MarketCallFailed(MarketCallFailed),
    /// See [`ArithmeticOverflow`].
    ArithmeticOverflow(ArithmeticOverflow),
    /// See [`InvalidPieceCid`].
    InvalidPieceCid(InvalidPieceCid),
    /// See [`PieceTooSmall`].
    PieceTooSmall(PieceTooSmall),
    /// See [`InvalidPrivacyBudget`].
    InvalidPrivacyBudget(InvalidPrivacyBudget),
}

/// A template's terms for one dataset.
#[storage]
pub struct TemplateTerms {
    /// Whether the template was ever set for the dataset (it is then in `templates`).
    known: StorageBool,
    /// Whether orders may use the template.
    allowed: StorageBool,
    /// Price per query, in wei.
    price: StorageU256,
}

/// A CID of at most [`MAX_CID_LEN`] bytes: its length and four words, left-aligned. Cheaper in
/// WASM than `StorageBytes`, whose length decoding alone pulls 8 KB of 256-bit division in.
#[storage]
pub struct StoredCid {
    len: StorageU8,
    words: StorageArray<StorageB256, 4>,
}

impl StoredCid {
    /// Stores `cid`, at most [`MAX_CID_LEN`] bytes (checked by the caller).
    fn set(&mut self, cid: &[u8]) {
        self.len.set(U8::from_be_bytes([
            u8::try_from(cid.len()).unwrap_or(u8::MAX)
        ]));
        for (index, chunk) in cid.chunks(32).enumerate() {
            let mut word = B256::ZERO;
            word[..chunk.len()].copy_from_slice(chunk);
            if let Some(mut slot) = self.words.setter(index) {
                slot.set(word);
            }
        }
    }

    fn get(&self) -> Vec<u8> {
        let len = usize::from(self.len.get().to_be_bytes::<1>()[0]);
        let mut cid = Vec::with_capacity(MAX_CID_LEN);
        for index in 0..len.div_ceil(32) {
            if let Some(word) = self.words.get(index) {
                cid.extend_from_slice(word.as_slice());
            }
        }
        cid.truncate(len);
        cid
    }
}

/// One registered dataset.
#[storage]
pub struct DatasetRecord {
    owner: StorageAddress,
    manifest_cid: StoredCid,
    piece_cid: StoredCid,
    schema_hash: StorageB256,
    stake: StorageU256,
    active: StorageBool,
    registered_at: StorageU64,
    deactivated_at: StorageU64,
    /// The piece's Merkle root and tree height, read from `piece_cid` at registration: what
    /// the proof manager proves.
    piece_root: StorageB256,
    piece_height: StorageU8,
    /// The dataset's total differential-privacy budget, in micro-ε (`EPSILON_SCALE`): set at
    /// registration, raised only by `renewPrivacyBudget`. The market charges every order's ε
    /// against `privacyBudget - sampleEpsilon`, for all buyers together.
    privacy_budget: StorageU64,
    /// The ε the published sample statistics spent (micro-ε), charged at registration.
    sample_epsilon: StorageU64,
    /// Every template ever set, in the order first set.
    templates: StorageVec<StorageB256>,
    terms: StorageMap<B256, TemplateTerms>,
    /// Σ over the lapses' slashes of each one's share per then-open order: an order is owed
    /// what this gained since it was placed.
    compensation_index: StorageU256,
}

/// The registry's storage.
#[storage]
#[entrypoint]
pub struct DatasetRegistry {
    owner: StorageAddress,
    initialized: StorageBool,
    proof_manager: StorageAddress,
    query_market: StorageAddress,
    min_stake: StorageU256,
    withdraw_cooldown: StorageU64,
    min_piece_height: StorageU8,
    dataset_count: StorageU256,
    datasets: StorageMap<U256, DatasetRecord>,
    payouts: StorageMap<Address, StorageU256>,
    total_payouts: StorageU256,
    /// Σ over open orders of what each is owed from its dataset's compensation index.
    reserved_compensation: StorageU256,
}

/// What `dataset(uint256)` returns: owner, manifest CID, piece CID, schema hash, stake, active,
/// registered at, deactivated at (timestamps, 0 while active).
pub type DatasetView = (Address, Bytes, Bytes, B256, U256, bool, u64, u64);

#[public]
impl DatasetRegistry {
    /// Sets the registry up; the caller becomes its owner. `minPieceHeight` is the smallest
    /// piece tree (2^height leaves of 32 bytes) a dataset may register: a proof over fewer
    /// leaves says too little about the data.
    ///
    /// Only the account that deployed the program may call it, naming the nonce of its
    /// deploying transaction (`deployNonce`): the program's address must be the `CREATE`
    /// address of `(msg.sender, deployNonce)`, so nobody can front-run the initialization
    /// between the deployment and this call (contracts/deployer.rs).
    ///
    /// # Errors
    /// `AlreadyInitialized` on a second call; `NotDeployer`; `InvalidAddress` for a zero proof
    /// manager or market.
    ///
    /// # Events
    /// `Initialized`.
    pub fn initialize(
        &mut self,
        proof_manager: Address,
        query_market: Address,
        min_stake: U256,
        withdraw_cooldown: u64,
        min_piece_height: u8,
        deploy_nonce: u64,
    ) -> Result<(), Error> {
        if self.initialized.get() {
            return Err(Error::AlreadyInitialized(AlreadyInitialized {}));
        }
        if !deployed_by_caller(self.vm(), deploy_nonce) {
            return Err(Error::NotDeployer(NotDeployer {}));
        }
        if proof_manager.is_zero() || query_market.is_zero() {
            return Err(Error::InvalidAddress(InvalidAddress {}));
        }
        let owner = self.vm().msg_sender();
        self.initialized.set(true);
        self.owner.set(owner);
        self.proof_manager.set(proof_manager);
        self.query_market.set(query_market);
        self.min_stake.set(min_stake);
        self.withdraw_cooldown
            .set(U64::from_limbs([withdraw_cooldown]));
        self.min_piece_height
            .set(U8::from_be_bytes([min_piece_height]));
        emit(
            self.vm(),
            &Initialized {
                owner,
                proofManager: proof_manager,
                queryMarket: query_market,
                minStake: min_stake,
                withdrawCooldown: withdraw_cooldown,
            },
        );
        Ok(())
    }

    /// Registers a dataset owned by the caller, staking `msg.value`; ids start at 1.
    ///
    /// # Errors
    /// `NotInitialized`; `StakeTooLow` when `msg.value < minStake`; `InvalidCid` for a CID that
    /// is empty or over 128 bytes; `InvalidPieceCid` for a piece CID that is not an FRC-0069 v2
    /// PieceCID; `PieceTooSmall` below `minPieceHeight`; `LengthMismatch` when templates and
    /// prices differ in length;
    /// `InvalidTemplates` for none, more than 32, a zero hash or a duplicate;
    /// `InvalidPrivacyBudget` unless `sampleEpsilon < privacyBudget`.
    ///
    /// `privacyBudget` is the dataset's total ε in micro-ε ([`EPSILON_SCALE`]), shared by every
    /// buyer; `sampleEpsilon` is what the published sample statistics already spent of it.
    ///
    /// # Events
    /// `DatasetRegistered`, `PrivacyBudgetSet`, then `TemplateSet` and `PriceSet` per template.
    #[payable]
    #[allow(clippy::too_many_arguments)] // the ABI's arguments, one per registration field
    pub fn register_dataset(
        &mut self,
        manifest_cid: Bytes,
        piece_cid: Bytes,
        schema_hash: B256,
        template_hashes: Vec<B256>,
        prices: Vec<U256>,
        privacy_budget: u64,
        sample_epsilon: u64,
    ) -> Result<U256, Error> {
        self.require_initialized()?;
        if sample_epsilon >= privacy_budget {
            return Err(Error::InvalidPrivacyBudget(InvalidPrivacyBudget {
                budget: privacy_budget,
                sampleEpsilon: sample_epsilon,
            }));
        }
        let stake = self.vm().msg_value();
        let minimum = self.min_stake.get();
        if stake < minimum {
            return Err(Error::StakeTooLow(StakeTooLow {
                sent: stake,
                minimum,
            }));
        }
        if !valid_cid(&manifest_cid) || !valid_cid(&piece_cid) {
            return Err(Error::InvalidCid(InvalidCid {}));
        }
        // The proof set is opened over exactly this piece (`pieceOf`), so it must parse.
        let piece = PieceRef::from_cid_bytes(&piece_cid)
            .map_err(|_| Error::InvalidPieceCid(InvalidPieceCid {}))?;
        let minimum = self.min_piece_height.get().byte(0);
        if piece.height < minimum {
            return Err(Error::PieceTooSmall(PieceTooSmall {
                height: piece.height,
                minimum,
            }));
        }
        if template_hashes.len() != prices.len() {
            return Err(Error::LengthMismatch(LengthMismatch {}));
        }
        if template_hashes.is_empty() || template_hashes.len() > MAX_TEMPLATES_AT_REGISTRATION {
            return Err(Error::InvalidTemplates(InvalidTemplates {}));
        }

        let id = checked(self.dataset_count.get().checked_add(U256::from(1)))?;
        self.dataset_count.set(id);
        let owner = self.vm().msg_sender();
        let now = self.vm().block_timestamp();
        let mut record = self.datasets.setter(id);
        record.owner.set(owner);
        record.manifest_cid.set(&manifest_cid);
        record.piece_cid.set(&piece_cid);
        record.piece_root.set(B256::from(piece.root));
        record.piece_height.set(U8::from_be_bytes([piece.height]));
        record.schema_hash.set(schema_hash);
        record.stake.set(stake);
        record.active.set(true);
        record.registered_at.set(U64::from_limbs([now]));
        record.privacy_budget.set(U64::from_limbs([privacy_budget]));
        record.sample_epsilon.set(U64::from_limbs([sample_epsilon]));
        emit(
            self.vm(),
            &DatasetRegistered {
                datasetId: id,
                owner,
                manifestCid: manifest_cid.0.into(),
                pieceCid: piece_cid.0.into(),
                schemaHash: schema_hash,
                stake,
            },
        );
        emit(
            self.vm(),
            &PrivacyBudgetSet {
                datasetId: id,
                budget: privacy_budget,
                sampleEpsilon: sample_epsilon,
            },
        );
        for (template, price) in template_hashes.into_iter().zip(prices) {
            // A duplicate finds its first copy already known (the whole call then reverts).
            if template.is_zero() || self.datasets.getter(id).terms.getter(template).known.get() {
                return Err(Error::InvalidTemplates(InvalidTemplates {}));
            }
            self.store_template(id, template, true);
            self.datasets
                .setter(id)
                .terms
                .setter(template)
                .price
                .set(price);
            emit(
                self.vm(),
                &PriceSet {
                    datasetId: id,
                    templateHash: template,
                    price,
                },
            );
        }
        Ok(id)
    }

    /// Raises the dataset's privacy budget by `added` micro-ε: the owner's explicit, logged
    /// decision to answer more queries about the same rows (each answer spends privacy that
    /// does not come back). Allowed on an inactive dataset too (it takes no orders).
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownDataset`; `NotDatasetOwner`; `ArithmeticOverflow`.
    ///
    /// # Events
    /// `PrivacyBudgetSet` with the new total.
    pub fn renew_privacy_budget(&mut self, dataset_id: U256, added: u64) -> Result<(), Error> {
        self.require_owner(dataset_id)?;
        let mut record = self.datasets.setter(dataset_id);
        let budget = record.privacy_budget.get().as_limbs()[0]
            .checked_add(added)
            .ok_or(Error::ArithmeticOverflow(ArithmeticOverflow {}))?;
        record.privacy_budget.set(U64::from_limbs([budget]));
        let sample_epsilon = record.sample_epsilon.get().as_limbs()[0];
        emit(
            self.vm(),
            &PrivacyBudgetSet {
                datasetId: dataset_id,
                budget,
                sampleEpsilon: sample_epsilon,
            },
        );
        Ok(())
    }

    /// The dataset's privacy budget and what its sample statistics spent, in micro-ε (zeros for
    /// an unknown dataset). What orders have spent is `QueryMarket.epsilonSpent`.
    #[must_use]
    pub fn privacy_budget(&self, dataset_id: U256) -> (u64, u64) {
        let record = self.datasets.getter(dataset_id);
        (
            record.privacy_budget.get().as_limbs()[0],
            record.sample_epsilon.get().as_limbs()[0],
        )
    }

    /// Changes the price of an allowed template.
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownDataset`; `NotDatasetOwner`; `DatasetInactive`;
    /// `TemplateNotAllowed` when the template is not allowed.
    ///
    /// # Events
    /// `PriceSet`.
    pub fn set_price(
        &mut self,
        dataset_id: U256,
        template_hash: B256,
        price: U256,
    ) -> Result<(), Error> {
        self.require_active_owner(dataset_id)?;
        let mut terms = self.datasets.setter(dataset_id);
        let mut terms = terms.terms.setter(template_hash);
        if !terms.allowed.get() {
            return Err(not_allowed(dataset_id, template_hash));
        }
        terms.price.set(price);
        emit(
            self.vm(),
            &PriceSet {
                datasetId: dataset_id,
                templateHash: template_hash,
                price,
            },
        );
        Ok(())
    }

    /// Allows or disallows a template; allowing one again keeps its stored price (0 if it never
    /// had one).
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownDataset`; `NotDatasetOwner`; `DatasetInactive`;
    /// `InvalidTemplates` for a zero hash, or a new template past the 64 a dataset may know.
    ///
    /// # Events
    /// `TemplateSet`.
    pub fn set_template(
        &mut self,
        dataset_id: U256,
        template_hash: B256,
        allowed: bool,
    ) -> Result<(), Error> {
        self.require_active_owner(dataset_id)?;
        let record = self.datasets.getter(dataset_id);
        let new = !record.terms.getter(template_hash).known.get();
        if template_hash.is_zero() || (new && record.templates.len() >= MAX_TEMPLATES) {
            return Err(Error::InvalidTemplates(InvalidTemplates {}));
        }
        self.store_template(dataset_id, template_hash, allowed);
        Ok(())
    }

    /// Stops the dataset accepting orders and starts the stake's withdrawal cooldown.
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownDataset`; `NotDatasetOwner`; `DatasetInactive` when already
    /// deactivated.
    ///
    /// # Events
    /// `DatasetDeactivated`.
    pub fn deactivate(&mut self, dataset_id: U256) -> Result<(), Error> {
        self.require_active_owner(dataset_id)?;
        let now = self.vm().block_timestamp();
        let mut record = self.datasets.setter(dataset_id);
        record.active.set(false);
        record.deactivated_at.set(U64::from_limbs([now]));
        emit(
            self.vm(),
            &DatasetDeactivated {
                datasetId: dataset_id,
            },
        );
        Ok(())
    }

    /// Sends a deactivated dataset's whole remaining stake to its owner, once the cooldown has
    /// passed and the query market holds no open order on it.
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownDataset`; `NotDatasetOwner`; `DatasetStillActive`;
    /// `NothingToWithdraw` when the stake is zero; `CooldownPending` before
    /// `deactivatedAt + withdrawCooldown`; `MarketCallFailed` when `openOrderCount` fails;
    /// `OpenOrders` when it is not zero; `TransferFailed`.
    ///
    /// # Events
    /// `StakeWithdrawn`.
    pub fn withdraw_stake(&mut self, dataset_id: U256) -> Result<(), Error> {
        let owner = self.require_owner(dataset_id)?;
        let record = self.datasets.getter(dataset_id);
        if record.active.get() {
            return Err(Error::DatasetStillActive(DatasetStillActive {
                datasetId: dataset_id,
            }));
        }
        let amount = record.stake.get();
        if amount.is_zero() {
            return Err(Error::NothingToWithdraw(NothingToWithdraw {}));
        }
        let until =
            word(record.deactivated_at.get()).saturating_add(word(self.withdraw_cooldown.get()));
        if self.vm().block_timestamp() < until {
            return Err(Error::CooldownPending(CooldownPending { until }));
        }
        let market = IQueryMarket::new(self.query_market.get());
        let open = market
            .open_order_count(self.vm(), Call::new(), dataset_id)
            .map_err(|_| Error::MarketCallFailed(MarketCallFailed {}))?;
        if !open.is_zero() {
            return Err(Error::OpenOrders(OpenOrders { count: open }));
        }
        // Effects before the interaction.
        self.datasets.setter(dataset_id).stake.set(U256::ZERO);
        emit(
            self.vm(),
            &StakeWithdrawn {
                datasetId: dataset_id,
                to: owner,
                amount,
            },
        );
        transfer_eth(self.vm(), owner, amount).map_err(|_| Error::TransferFailed(TransferFailed {}))
    }

    /// Slashes up to `amount` of a dataset's stake (active or not) into `to`'s payout.
    /// Returns the amount slashed: `min(amount, stake)`. The proof manager slashes for missed
    /// proofs; the query market for a result its seller did not deliver in time (the order's
    /// price, to the receipt's owner).
    ///
    /// # Errors
    /// `NotInitialized`; `NotSlasher` for any other caller; `UnknownDataset`;
    /// `InvalidAddress` for a zero `to`.
    ///
    /// # Events
    /// `StakeSlashed`.
    pub fn slash(&mut self, dataset_id: U256, amount: U256, to: Address) -> Result<U256, Error> {
        self.require_initialized()?;
        let caller = self.vm().msg_sender();
        if caller != self.proof_manager.get() && caller != self.query_market.get() {
            return Err(Error::NotSlasher(NotSlasher { caller }));
        }
        self.require_known(dataset_id)?;
        if to.is_zero() {
            return Err(Error::InvalidAddress(InvalidAddress {}));
        }
        let stake = self.datasets.getter(dataset_id).stake.get();
        let slashed = amount.min(stake);
        // `slashed <= stake`, so neither the subtraction nor the payout totals can really fail.
        let remaining = checked(stake.checked_sub(slashed))?;
        self.datasets.setter(dataset_id).stake.set(remaining);
        self.credit(to, slashed)?;
        emit(
            self.vm(),
            &StakeSlashed {
                datasetId: dataset_id,
                to,
                amount: slashed,
            },
        );
        Ok(slashed)
    }

    /// Slashes up to `amount` of a dataset's stake for the buyers its lapse strands: an equal
    /// share of the slash is reserved for each order open on the dataset now (the market's
    /// `openOrderCount`), paid to the order's receipt owner when it closes (`compensate`); the
    /// rest (all of it with no open order, the rounding otherwise) is burned. Returns the amount
    /// slashed: `min(amount, stake)`. The proof manager calls it for a lapse's slash, less the
    /// reporter's bounty.
    ///
    /// # Errors
    /// `NotInitialized`; `NotSlasher` for any caller but the proof manager; `UnknownDataset`;
    /// `MarketCallFailed` when `openOrderCount` fails.
    ///
    /// # Events
    /// `StakeSlashedForBuyers`.
    pub fn slash_for_buyers(&mut self, dataset_id: U256, amount: U256) -> Result<U256, Error> {
        self.require_initialized()?;
        let caller = self.vm().msg_sender();
        if caller != self.proof_manager.get() {
            return Err(Error::NotSlasher(NotSlasher { caller }));
        }
        self.require_known(dataset_id)?;
        let orders = IQueryMarket::new(self.query_market.get())
            .open_order_count(self.vm(), Call::new(), dataset_id)
            .map_err(|_| Error::MarketCallFailed(MarketCallFailed {}))?;
        let stake = self.datasets.getter(dataset_id).stake.get();
        let slashed = amount.min(stake);
        let (per_order, burned) = match u32::try_from(orders) {
            Ok(orders) if orders != 0 => div_small(slashed, orders),
            // More open orders than that cannot happen; the slash is then burned whole.
            _ => (U256::ZERO, slashed),
        };
        // `per_order · orders = slashed − burned`; `slashed <= stake`: nothing here can fail.
        let reserved = checked(slashed.checked_sub(burned))?;
        let index = self.datasets.getter(dataset_id).compensation_index.get();
        let mut record = self.datasets.setter(dataset_id);
        record.stake.set(checked(stake.checked_sub(slashed))?);
        record
            .compensation_index
            .set(checked(index.checked_add(per_order))?);
        let total_reserved = checked(self.reserved_compensation.get().checked_add(reserved))?;
        self.reserved_compensation.set(total_reserved);
        self.credit(BURN, burned)?;
        emit(
            self.vm(),
            &StakeSlashedForBuyers {
                datasetId: dataset_id,
                amount: slashed,
                perOrder: per_order,
                orders,
                burned,
            },
        );
        Ok(slashed)
    }

    /// Pays a closing order its compensation: what the dataset's compensation index gained
    /// since `since` (the index the order was placed at, from `orderTerms`), at most `cap` (the
    /// order's price) to `to` (the receipt's owner) and the excess burned. Returns the amount
    /// paid to `to`. Only the query market calls it, once per order as the order closes.
    ///
    /// # Errors
    /// `NotInitialized`; `NotMarket` for any other caller; `UnknownDataset`; `InvalidAddress`
    /// for a zero `to`; `ArithmeticOverflow` for a `since` above the index (no order was placed
    /// at it).
    ///
    /// # Events
    /// `Compensated` when anything was owed.
    pub fn compensate(
        &mut self,
        dataset_id: U256,
        since: U256,
        to: Address,
        cap: U256,
    ) -> Result<U256, Error> {
        self.require_initialized()?;
        let caller = self.vm().msg_sender();
        if caller != self.query_market.get() {
            return Err(Error::NotMarket(NotMarket { caller }));
        }
        self.require_known(dataset_id)?;
        if to.is_zero() {
            return Err(Error::InvalidAddress(InvalidAddress {}));
        }
        let index = self.datasets.getter(dataset_id).compensation_index.get();
        let owed = checked(index.checked_sub(since))?;
        if owed.is_zero() {
            return Ok(U256::ZERO);
        }
        let paid = owed.min(cap);
        let reserved = checked(self.reserved_compensation.get().checked_sub(owed))?;
        self.reserved_compensation.set(reserved);
        self.credit(to, paid)?;
        self.credit(BURN, owed - paid)?;
        emit(
            self.vm(),
            &Compensated {
                datasetId: dataset_id,
                to,
                amount: paid,
                burned: owed - paid,
            },
        );
        Ok(paid)
    }

    /// Sends the caller its whole payout.
    ///
    /// # Errors
    /// `NotInitialized`; `NothingToWithdraw` for a zero payout; `TransferFailed`.
    ///
    /// # Events
    /// `Withdrawn`.
    pub fn withdraw(&mut self) -> Result<(), Error> {
        self.require_initialized()?;
        let to = self.vm().msg_sender();
        let amount = self.payouts.get(to);
        if amount.is_zero() {
            return Err(Error::NothingToWithdraw(NothingToWithdraw {}));
        }
        // Effects before the interaction.
        let total = checked(self.total_payouts.get().checked_sub(amount))?;
        self.payouts.setter(to).set(U256::ZERO);
        self.total_payouts.set(total);
        emit(self.vm(), &Withdrawn { to, amount });
        transfer_eth(self.vm(), to, amount).map_err(|_| Error::TransferFailed(TransferFailed {}))
    }

    /// The registry's owner (whoever initialized it).
    #[must_use]
    pub fn owner(&self) -> Address {
        self.owner.get()
    }

    /// The only address allowed to slash.
    #[must_use]
    pub fn proof_manager(&self) -> Address {
        self.proof_manager.get()
    }

    /// The query market asked for open orders before a stake leaves.
    #[must_use]
    pub fn query_market(&self) -> Address {
        self.query_market.get()
    }

    /// The smallest stake a registration accepts, in wei.
    #[must_use]
    pub fn min_stake(&self) -> U256 {
        self.min_stake.get()
    }

    /// Seconds between deactivation and stake withdrawal.
    #[must_use]
    pub fn withdraw_cooldown(&self) -> u64 {
        word(self.withdraw_cooldown.get())
    }

    /// The smallest piece tree height a registration accepts.
    #[must_use]
    pub fn min_piece_height(&self) -> u8 {
        self.min_piece_height.get().byte(0)
    }

    /// A dataset's piece as its PieceCID names it: the Merkle root and the tree height
    /// (2^height leaves). The proof manager proves exactly this.
    ///
    /// # Errors
    /// `UnknownDataset`.
    pub fn piece_of(&self, dataset_id: U256) -> Result<(B256, u8), Error> {
        self.require_known(dataset_id)?;
        let record = self.datasets.getter(dataset_id);
        Ok((record.piece_root.get(), record.piece_height.get().byte(0)))
    }

    /// How many datasets were registered (also the highest id).
    #[must_use]
    pub fn dataset_count(&self) -> U256 {
        self.dataset_count.get()
    }

    /// Everything stored about a dataset.
    ///
    /// # Errors
    /// `UnknownDataset`.
    pub fn dataset(&self, dataset_id: U256) -> Result<DatasetView, Error> {
        self.require_known(dataset_id)?;
        let record = self.datasets.getter(dataset_id);
        Ok((
            record.owner.get(),
            record.manifest_cid.get().into(),
            record.piece_cid.get().into(),
            record.schema_hash.get(),
            record.stake.get(),
            record.active.get(),
            word(record.registered_at.get()),
            word(record.deactivated_at.get()),
        ))
    }

    /// A dataset's owner.
    ///
    /// # Errors
    /// `UnknownDataset`.
    pub fn dataset_owner(&self, dataset_id: U256) -> Result<Address, Error> {
        self.require_known(dataset_id)?;
        Ok(self.datasets.getter(dataset_id).owner.get())
    }

    /// A dataset's remaining stake.
    ///
    /// # Errors
    /// `UnknownDataset`.
    pub fn stake_of(&self, dataset_id: U256) -> Result<U256, Error> {
        self.require_known(dataset_id)?;
        Ok(self.datasets.getter(dataset_id).stake.get())
    }

    /// Every template ever set for a dataset, allowed or not, in the order first set.
    ///
    /// # Errors
    /// `UnknownDataset`.
    pub fn templates_of(&self, dataset_id: U256) -> Result<Vec<B256>, Error> {
        self.require_known(dataset_id)?;
        let record = self.datasets.getter(dataset_id);
        Ok((0..record.templates.len())
            .filter_map(|i| record.templates.get(i))
            .collect())
    }

    /// Whether orders on the dataset may use the template (false for an unknown dataset).
    #[must_use]
    pub fn is_template_allowed(&self, dataset_id: U256, template_hash: B256) -> bool {
        self.datasets
            .getter(dataset_id)
            .terms
            .getter(template_hash)
            .allowed
            .get()
    }

    /// The price per query of an allowed template.
    ///
    /// # Errors
    /// `TemplateNotAllowed` (also for an unknown dataset).
    pub fn price_of(&self, dataset_id: U256, template_hash: B256) -> Result<U256, Error> {
        let record = self.datasets.getter(dataset_id);
        let terms = record.terms.getter(template_hash);
        if !terms.allowed.get() {
            return Err(not_allowed(dataset_id, template_hash));
        }
        Ok(terms.price.get())
    }

    /// What the query market needs to take an order: the seller, `keccak256(manifestCid)`, the
    /// price, the dataset's compensation index (what `compensate` later counts from) and the ε
    /// its orders may spend in all (`privacyBudget - sampleEpsilon`, micro-ε).
    ///
    /// # Errors
    /// `UnknownDataset`; `DatasetInactive`; `TemplateNotAllowed`.
    pub fn order_terms(
        &self,
        dataset_id: U256,
        template_hash: B256,
    ) -> Result<(Address, B256, U256, U256, u64), Error> {
        self.require_known(dataset_id)?;
        let record = self.datasets.getter(dataset_id);
        if !record.active.get() {
            return Err(inactive(dataset_id));
        }
        let terms = record.terms.getter(template_hash);
        if !terms.allowed.get() {
            return Err(not_allowed(dataset_id, template_hash));
        }
        let manifest_hash = self.vm().native_keccak256(&record.manifest_cid.get());
        Ok((
            record.owner.get(),
            manifest_hash,
            terms.price.get(),
            record.compensation_index.get(),
            // Registration checked `sampleEpsilon < privacyBudget`, and the budget only grows.
            record.privacy_budget.get().as_limbs()[0]
                .saturating_sub(record.sample_epsilon.get().as_limbs()[0]),
        ))
    }

    /// What `account` may pull with `withdraw()`.
    #[must_use]
    pub fn payout_of(&self, account: Address) -> U256 {
        self.payouts.get(account)
    }

    /// Σ payouts not yet withdrawn.
    #[must_use]
    pub fn total_payouts(&self) -> U256 {
        self.total_payouts.get()
    }

    /// What an order open on `datasetId` since its placement is owed per lapse so far, summed:
    /// an order placed at index `i` is owed `compensationIndex − i` (at most its price).
    #[must_use]
    pub fn compensation_index(&self, dataset_id: U256) -> U256 {
        self.datasets.getter(dataset_id).compensation_index.get()
    }

    /// Σ compensation reserved for orders still open.
    #[must_use]
    pub fn reserved_compensation(&self) -> U256 {
        self.reserved_compensation.get()
    }
}

impl DatasetRegistry {
    fn require_initialized(&self) -> Result<(), Error> {
        if self.initialized.get() {
            Ok(())
        } else {
            Err(Error::NotInitialized(NotInitialized {}))
        }
    }

    fn require_known(&self, dataset_id: U256) -> Result<(), Error> {
        if dataset_id.is_zero() || dataset_id > self.dataset_count.get() {
            return Err(Error::UnknownDataset(UnknownDataset {
                datasetId: dataset_id,
            }));
        }
        Ok(())
    }

    /// Checks that the registry is initialized, the dataset exists and the caller owns it;
    /// returns the owner.
    fn require_owner(&self, dataset_id: U256) -> Result<Address, Error> {
        self.require_initialized()?;
        self.require_known(dataset_id)?;
        let owner = self.datasets.getter(dataset_id).owner.get();
        let caller = self.vm().msg_sender();
        if caller != owner {
            return Err(Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: dataset_id,
                caller,
            }));
        }
        Ok(owner)
    }

    /// [`Self::require_owner`], and the dataset must still be active.
    fn require_active_owner(&self, dataset_id: U256) -> Result<(), Error> {
        self.require_owner(dataset_id)?;
        if !self.datasets.getter(dataset_id).active.get() {
            return Err(inactive(dataset_id));
        }
        Ok(())
    }

    /// Adds `amount` to `to`'s payout and to `totalPayouts`.
    fn credit(&mut self, to: Address, amount: U256) -> Result<(), Error> {
        let total = checked(self.total_payouts.get().checked_add(amount))?;
        let payout = checked(self.payouts.get(to).checked_add(amount))?;
        self.total_payouts.set(total);
        self.payouts.setter(to).set(payout);
        Ok(())
    }

    /// Records `allowed` for a template, appending it to the dataset's list the first time.
    fn store_template(&mut self, dataset_id: U256, template_hash: B256, allowed: bool) {
        let mut record = self.datasets.setter(dataset_id);
        if !record.terms.getter(template_hash).known.get() {
            record.templates.push(template_hash);
        }
        let mut terms = record.terms.setter(template_hash);
        terms.known.set(true);
        terms.allowed.set(allowed);
        emit(
            self.vm(),
            &TemplateSet {
                datasetId: dataset_id,
                templateHash: template_hash,
                allowed,
            },
        );
    }
}

/// Emits `event` as `LogAccess::log` does, minus its `unwrap()`: that one drags the `Debug`
/// formatting of every ABI error into the WASM (kilobytes, against the 24 KiB limit).
fn emit<E: SolEvent>(vm: &impl RawLogAccess, event: &E) {
    let mut topics = [WordToken::default(); 4];
    // Only fails when `topics` is shorter than the event's topic list; an event has at most 4.
    if event.encode_topics_raw(&mut topics).is_err() {
        return;
    }
    let count = E::TopicList::COUNT;
    let mut log = Vec::with_capacity(32 * count + event.abi_encoded_size());
    for topic in &topics[..count] {
        log.extend_from_slice(topic.as_slice());
    }
    event.encode_data_to(&mut log);
    vm.emit_log(&log, count);
}

/// A `uint64` storage word as `u64`, without `Uint::to`'s panicking conversion.
fn word(value: U64) -> u64 {
    value.as_limbs()[0]
}

fn valid_cid(cid: &[u8]) -> bool {
    (1..=MAX_CID_LEN).contains(&cid.len())
}

fn inactive(dataset_id: U256) -> Error {
    Error::DatasetInactive(DatasetInactive {
        datasetId: dataset_id,
    })
}

fn not_allowed(dataset_id: U256, template_hash: B256) -> Error {
    Error::TemplateNotAllowed(TemplateNotAllowed {
        datasetId: dataset_id,
        templateHash: template_hash,
    })
}

fn checked(value: Option<U256>) -> Result<U256, Error> {
    value.ok_or(Error::ArithmeticOverflow(ArithmeticOverflow {}))
}

#[cfg(test)]
mod tests {
    use std::{
        cell::{Cell, RefCell},
        collections::HashMap,
        rc::Rc,
    };

    use alloy_primitives::{Address, B256, U256, address, keccak256};
    use alloy_sol_types::{SolCall, SolError, SolEvent, sol};
    use datacloud_contract_test_host::{OutgoingCall, TestHost, create_address};
    use proptest::prelude::*;
    use stylus_sdk::abi::Bytes;

    use super::*;

    sol! {
        interface Market {
            function openOrderCount(uint256 datasetId) external view returns (uint256);
        }
    }

    const OWNER: Address = Address::repeat_byte(0x0A);
    /// The nonce of OWNER's transaction that deployed the registry.
    const DEPLOY_NONCE: u64 = 0x1234;
    /// Every test dataset's privacy budget (10 ε), nothing spent on sample statistics.
    const BUDGET: u64 = 10 * EPSILON_SCALE;
    const PROOF_MANAGER: Address = Address::repeat_byte(0x0B);
    const MARKET: Address = Address::repeat_byte(0x0C);
    const SELLER: Address = Address::repeat_byte(0x51);
    const OTHER: Address = Address::repeat_byte(0x52);
    const BENEFICIARY: Address = Address::repeat_byte(0x53);
    const MIN_STAKE: u64 = 1_000;
    const COOLDOWN: u64 = 3_600;
    const START: u64 = 1_700_000_000;

    fn wei(amount: u64) -> U256 {
        U256::from(amount)
    }

    fn id(n: u64) -> U256 {
        U256::from(n)
    }

    fn template(n: u8) -> B256 {
        B256::repeat_byte(n)
    }

    fn cid(tag: &[u8]) -> Bytes {
        Bytes::from(tag.to_vec())
    }

    /// The smallest piece tree the test registry accepts.
    const MIN_HEIGHT: u8 = 5;

    /// A real v2 PieceCID: a piece of `2^height` leaves with a root derived from `seed`.
    fn piece_cid_of(height: u8, seed: u8) -> Bytes {
        let mut root = [seed; 32];
        root[31] &= 0x3f;
        let payload = 127u64 << (height - datacloud_pdp::MIN_PIECE_HEIGHT);
        let size = datacloud_pdp::PieceSize::for_payload(payload).unwrap();
        Bytes::from(
            datacloud_pdp::PieceCommitment::new(root, size)
                .to_piece_cid_v2()
                .to_bytes(),
        )
    }

    fn piece_cid() -> Bytes {
        piece_cid_of(8, 0x42)
    }

    /// A registry and its host; `open_orders` is what the market answers per dataset (absent:
    /// zero), `market_down` makes it revert.
    struct Fixture {
        host: TestHost,
        reg: DatasetRegistry,
        open_orders: Rc<RefCell<HashMap<U256, U256>>>,
        market_down: Rc<Cell<bool>>,
        /// The market's open orders in the property test: dataset, index placed at.
        orders: Vec<(U256, U256)>,
    }

    impl Fixture {
        /// An uninitialized registry whose market answers zero open orders.
        fn bare() -> Self {
            let host = TestHost::new();
            // Deployed by OWNER with its DEPLOY_NONCE-th transaction.
            host.vm()
                .set_contract_address(create_address(OWNER, DEPLOY_NONCE));
            let reg = DatasetRegistry::from(&host);
            let open_orders = Rc::new(RefCell::new(HashMap::new()));
            let market_down = Rc::new(Cell::new(false));
            let (answer, down) = (Rc::clone(&open_orders), Rc::clone(&market_down));
            host.on_call(MARKET, move |call: &OutgoingCall| {
                let request =
                    Market::openOrderCountCall::abi_decode(&call.data).map_err(|_| Vec::new())?;
                if down.get() {
                    return Err(b"market down".to_vec());
                }
                let count = answer
                    .borrow()
                    .get(&request.datasetId)
                    .copied()
                    .unwrap_or_default();
                Ok(Market::openOrderCountCall::abi_encode_returns(&count))
            });
            Self {
                host,
                reg,
                open_orders,
                market_down,
                orders: Vec::new(),
            }
        }

        fn new() -> Self {
            let mut f = Self::bare();
            f.host
                .invoke(OWNER, U256::ZERO, || {
                    f.reg.initialize(
                        PROOF_MANAGER,
                        MARKET,
                        wei(MIN_STAKE),
                        COOLDOWN,
                        MIN_HEIGHT,
                        DEPLOY_NONCE,
                    )
                })
                .unwrap();
            f.host.clear_logs();
            f
        }

        fn register_with(
            &mut self,
            seller: Address,
            stake: U256,
            templates: &[B256],
            prices: &[U256],
        ) -> Result<U256, Error> {
            let reg = &mut self.reg;
            self.host.invoke(seller, stake, || {
                reg.register_dataset(
                    cid(b"bafy-manifest"),
                    piece_cid(),
                    template(0xEE),
                    templates.to_vec(),
                    prices.to_vec(),
                    BUDGET,
                    0,
                )
            })
        }

        /// SELLER registers a one-template dataset with this privacy budget.
        fn register_budget(&mut self, budget: u64, sample: u64) -> Result<U256, Error> {
            let reg = &mut self.reg;
            self.host.invoke(SELLER, wei(MIN_STAKE), || {
                reg.register_dataset(
                    cid(b"m"),
                    piece_cid(),
                    B256::ZERO,
                    vec![template(1)],
                    vec![wei(1)],
                    budget,
                    sample,
                )
            })
        }

        /// Registers a dataset with templates 1 and 2 priced 10 and 20.
        fn register(&mut self, seller: Address, stake: u64) -> U256 {
            self.register_with(
                seller,
                wei(stake),
                &[template(1), template(2)],
                &[wei(10), wei(20)],
            )
            .unwrap()
        }

        fn as_sender<T>(
            &mut self,
            sender: Address,
            call: impl FnOnce(&mut DatasetRegistry) -> Result<T, Error>,
        ) -> Result<T, Error> {
            let reg = &mut self.reg;
            self.host.invoke(sender, U256::ZERO, || call(reg))
        }

        fn set_time(&self, timestamp: u64) {
            self.host.vm().set_block_timestamp(timestamp);
        }

        fn balance(&self) -> U256 {
            self.host.balance(self.host.contract())
        }

        fn events<E: SolEvent>(&self) -> Vec<E> {
            self.host
                .logs()
                .into_iter()
                .filter(|(topics, _)| topics.first() == Some(&E::SIGNATURE_HASH))
                .map(|(topics, data)| E::decode_raw_log(topics, &data).unwrap())
                .collect()
        }

        fn market_calls(&self) -> Vec<OutgoingCall> {
            self.host
                .calls()
                .into_iter()
                .filter(|call| call.to == MARKET)
                .collect()
        }
    }

    #[test]
    fn initialize_stores_the_configuration_and_emits() {
        let mut f = Fixture::bare();
        f.host
            .invoke(OWNER, U256::ZERO, || {
                f.reg.initialize(
                    PROOF_MANAGER,
                    MARKET,
                    wei(MIN_STAKE),
                    COOLDOWN,
                    MIN_HEIGHT,
                    DEPLOY_NONCE,
                )
            })
            .unwrap();
        assert_eq!(f.reg.owner(), OWNER);
        assert_eq!(f.reg.proof_manager(), PROOF_MANAGER);
        assert_eq!(f.reg.query_market(), MARKET);
        assert_eq!(f.reg.min_stake(), wei(MIN_STAKE));
        assert_eq!(f.reg.withdraw_cooldown(), COOLDOWN);
        assert_eq!(f.reg.min_piece_height(), MIN_HEIGHT);
        assert_eq!(f.reg.dataset_count(), U256::ZERO);
        assert_eq!(f.reg.total_payouts(), U256::ZERO);
        let events = f.events::<Initialized>();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.owner, OWNER);
        assert_eq!(event.proofManager, PROOF_MANAGER);
        assert_eq!(event.queryMarket, MARKET);
        assert_eq!(event.minStake, wei(MIN_STAKE));
        assert_eq!(event.withdrawCooldown, COOLDOWN);
    }

    #[test]
    fn a_stranger_cannot_front_run_initialize() {
        let mut f = Fixture::bare();
        // Between the deployment and OWNER's initialize, another account (knowing OWNER's
        // nonce, or guessing) tries to configure the registry its own way.
        for (sender, nonce) in [
            (OTHER, DEPLOY_NONCE),
            (OTHER, 0),
            (OWNER, DEPLOY_NONCE + 1),
            (OWNER, 0),
        ] {
            let err = f
                .as_sender(sender, |reg| {
                    reg.initialize(OTHER, OTHER, U256::ZERO, 0, 0, nonce)
                })
                .unwrap_err();
            assert_eq!(err, Error::NotDeployer(NotDeployer {}), "{sender} {nonce}");
        }
        assert!(f.host.logs().is_empty());
        f.as_sender(OWNER, |reg| {
            reg.initialize(PROOF_MANAGER, MARKET, U256::ZERO, 0, 0, DEPLOY_NONCE)
        })
        .unwrap();
        assert_eq!(f.reg.owner(), OWNER);
    }

    #[test]
    fn create_preimage_hashes_to_the_create_address() {
        // Every length of nonce encoding: 0 (the empty string), one byte below 0x80, 0x80 (a
        // one-byte string), up to eight bytes.
        let mut nonces = vec![0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, u64::MAX];
        nonces.extend((0..64).map(|shift| 1u64 << shift));
        for sender in [OWNER, OTHER, Address::ZERO, Address::repeat_byte(0xff)] {
            for &nonce in &nonces {
                let (preimage, len) = create_preimage(sender, nonce);
                assert_eq!(
                    Address::from_slice(&keccak256(&preimage[..len])[12..]),
                    create_address(sender, nonce),
                    "{sender} {nonce}"
                );
            }
        }
        // A published vector: the first contracts of 0x6ac7…dbf0.
        let sender = address!("0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0");
        let (preimage, len) = create_preimage(sender, 1);
        assert_eq!(
            Address::from_slice(&keccak256(&preimage[..len])[12..]),
            address!("0x343c43a37d37dff08ae8c4a11544c718abb4fcf8")
        );
    }

    #[test]
    fn initialize_runs_once() {
        let mut f = Fixture::new();
        let err = f
            .as_sender(OTHER, |reg| {
                reg.initialize(OTHER, OTHER, U256::ZERO, 0, 0, DEPLOY_NONCE)
            })
            .unwrap_err();
        assert_eq!(err, Error::AlreadyInitialized(AlreadyInitialized {}));
        assert_eq!(f.reg.owner(), OWNER);
        assert_eq!(f.reg.proof_manager(), PROOF_MANAGER);
        assert_eq!(f.reg.min_stake(), wei(MIN_STAKE));
        assert!(f.host.logs().is_empty());
    }

    #[test]
    fn initialize_refuses_zero_addresses() {
        let mut f = Fixture::bare();
        for (pm, market) in [(Address::ZERO, MARKET), (PROOF_MANAGER, Address::ZERO)] {
            let err = f
                .as_sender(OWNER, |reg| {
                    reg.initialize(pm, market, U256::ZERO, 0, 0, DEPLOY_NONCE)
                })
                .unwrap_err();
            assert_eq!(err, Error::InvalidAddress(InvalidAddress {}));
        }
        // Still initializable afterwards.
        f.as_sender(OWNER, |reg| {
            reg.initialize(PROOF_MANAGER, MARKET, U256::ZERO, 0, 0, DEPLOY_NONCE)
        })
        .unwrap();
    }

    type RegistryCall = dyn Fn(&mut DatasetRegistry) -> Result<(), Error>;

    #[test]
    fn mutating_functions_refuse_before_initialize() {
        let mut f = Fixture::bare();
        let not_initialized = Error::NotInitialized(NotInitialized {});
        let err = f
            .register_with(SELLER, wei(MIN_STAKE), &[template(1)], &[wei(1)])
            .unwrap_err();
        assert_eq!(err, not_initialized);
        assert_eq!(f.balance(), U256::ZERO);
        let calls: [&RegistryCall; 6] = [
            &|reg| reg.set_price(id(1), template(1), wei(1)),
            &|reg| reg.set_template(id(1), template(1), true),
            &|reg| reg.deactivate(id(1)),
            &|reg| reg.withdraw_stake(id(1)),
            &|reg| reg.slash(id(1), wei(1), BENEFICIARY).map(|_| ()),
            &DatasetRegistry::withdraw,
        ];
        for call in calls {
            // Zero is the proof manager before initialization: it must not pass as one.
            for sender in [SELLER, Address::ZERO] {
                assert_eq!(f.as_sender(sender, call).unwrap_err(), not_initialized);
            }
        }
    }

    #[test]
    fn register_dataset_stores_the_record_templates_and_stake() {
        let mut f = Fixture::new();
        f.set_time(START + 5);
        let first = f.register(SELLER, MIN_STAKE + 1);
        assert_eq!(first, id(1));
        assert_eq!(f.reg.dataset_count(), id(1));
        assert_eq!(f.balance(), wei(MIN_STAKE + 1));
        let (owner, manifest, piece, schema, stake, active, registered_at, deactivated_at) =
            f.reg.dataset(first).unwrap();
        assert_eq!(owner, SELLER);
        assert_eq!(manifest.0, b"bafy-manifest".to_vec());
        assert_eq!(piece, piece_cid());
        assert_eq!(schema, template(0xEE));
        assert_eq!(stake, wei(MIN_STAKE + 1));
        assert!(active);
        assert_eq!(registered_at, START + 5);
        assert_eq!(deactivated_at, 0);
        assert_eq!(f.reg.dataset_owner(first).unwrap(), SELLER);
        assert_eq!(f.reg.stake_of(first).unwrap(), wei(MIN_STAKE + 1));
        assert_eq!(
            f.reg.templates_of(first).unwrap(),
            vec![template(1), template(2)]
        );
        assert!(f.reg.is_template_allowed(first, template(1)));
        assert!(f.reg.is_template_allowed(first, template(2)));
        assert!(!f.reg.is_template_allowed(first, template(3)));
        assert_eq!(f.reg.price_of(first, template(1)).unwrap(), wei(10));
        assert_eq!(f.reg.price_of(first, template(2)).unwrap(), wei(20));

        let second = f.register(OTHER, MIN_STAKE);
        assert_eq!(second, id(2));
        assert_eq!(f.reg.dataset_owner(second).unwrap(), OTHER);
        assert_eq!(f.reg.dataset_count(), id(2));
        assert_eq!(f.balance(), wei(2 * MIN_STAKE + 1));
    }

    #[test]
    fn a_privacy_budget_must_leave_epsilon_for_orders() {
        let mut f = Fixture::new();
        for (budget, sample) in [(0, 0), (EPSILON_SCALE, EPSILON_SCALE), (5, 6)] {
            let err = f.register_budget(budget, sample).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidPrivacyBudget(InvalidPrivacyBudget {
                    budget,
                    sampleEpsilon: sample,
                })
            );
        }
        assert_eq!(f.reg.dataset_count(), U256::ZERO);
    }

    #[test]
    fn the_sample_statistics_epsilon_is_charged_at_registration() {
        let mut f = Fixture::new();
        let dataset = f.register_budget(3 * EPSILON_SCALE, EPSILON_SCALE).unwrap();
        assert_eq!(
            f.reg.privacy_budget(dataset),
            (3 * EPSILON_SCALE, EPSILON_SCALE)
        );
        // What orders may spend is the rest.
        assert_eq!(
            f.reg.order_terms(dataset, template(1)).unwrap().4,
            2 * EPSILON_SCALE
        );
        let set = f.events::<PrivacyBudgetSet>();
        assert_eq!(
            (set[0].datasetId, set[0].budget, set[0].sampleEpsilon),
            (dataset, 3 * EPSILON_SCALE, EPSILON_SCALE)
        );
    }

    #[test]
    fn only_the_owner_renews_a_budget_and_every_renewal_is_logged() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.host.clear_logs();
        assert_eq!(
            f.as_sender(OTHER, |reg| reg
                .renew_privacy_budget(dataset, EPSILON_SCALE))
                .unwrap_err(),
            Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: dataset,
                caller: OTHER,
            })
        );
        assert_eq!(f.reg.privacy_budget(dataset), (BUDGET, 0));
        f.as_sender(SELLER, |reg| {
            reg.renew_privacy_budget(dataset, EPSILON_SCALE)
        })
        .unwrap();
        assert_eq!(f.reg.privacy_budget(dataset), (BUDGET + EPSILON_SCALE, 0));
        assert_eq!(
            f.reg.order_terms(dataset, template(1)).unwrap().4,
            BUDGET + EPSILON_SCALE
        );
        let set = f.events::<PrivacyBudgetSet>();
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].budget, BUDGET + EPSILON_SCALE);
        assert_eq!(
            f.as_sender(SELLER, |reg| reg.renew_privacy_budget(dataset, u64::MAX))
                .unwrap_err(),
            Error::ArithmeticOverflow(ArithmeticOverflow {})
        );
        assert_eq!(
            f.as_sender(SELLER, |reg| reg.renew_privacy_budget(id(9), 1))
                .unwrap_err(),
            Error::UnknownDataset(UnknownDataset { datasetId: id(9) })
        );
    }

    #[test]
    fn register_dataset_emits_registration_then_template_and_price_per_template() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let logs = f.host.logs();
        let topic0: Vec<B256> = logs.iter().map(|(topics, _)| topics[0]).collect();
        assert_eq!(
            topic0,
            vec![
                DatasetRegistered::SIGNATURE_HASH,
                PrivacyBudgetSet::SIGNATURE_HASH,
                TemplateSet::SIGNATURE_HASH,
                PriceSet::SIGNATURE_HASH,
                TemplateSet::SIGNATURE_HASH,
                PriceSet::SIGNATURE_HASH,
            ]
        );
        let registered = &f.events::<DatasetRegistered>()[0];
        assert_eq!(registered.datasetId, dataset);
        assert_eq!(registered.owner, SELLER);
        assert_eq!(registered.manifestCid.to_vec(), b"bafy-manifest".to_vec());
        assert_eq!(registered.pieceCid.to_vec(), piece_cid().to_vec());
        assert_eq!(registered.schemaHash, template(0xEE));
        assert_eq!(registered.stake, wei(MIN_STAKE));
        let templates = f.events::<TemplateSet>();
        assert_eq!(
            templates
                .iter()
                .map(|e| (e.datasetId, e.templateHash, e.allowed))
                .collect::<Vec<_>>(),
            vec![(dataset, template(1), true), (dataset, template(2), true)]
        );
        let prices = f.events::<PriceSet>();
        assert_eq!(
            prices
                .iter()
                .map(|e| (e.datasetId, e.templateHash, e.price))
                .collect::<Vec<_>>(),
            vec![
                (dataset, template(1), wei(10)),
                (dataset, template(2), wei(20))
            ]
        );
    }

    #[test]
    fn register_dataset_refuses_a_stake_below_the_minimum() {
        let mut f = Fixture::new();
        let err = f
            .register_with(SELLER, wei(MIN_STAKE - 1), &[template(1)], &[wei(1)])
            .unwrap_err();
        assert_eq!(
            err,
            Error::StakeTooLow(StakeTooLow {
                sent: wei(MIN_STAKE - 1),
                minimum: wei(MIN_STAKE),
            })
        );
        assert_eq!(f.balance(), U256::ZERO);
        assert_eq!(f.reg.dataset_count(), U256::ZERO);
        assert!(f.host.logs().is_empty());
    }

    #[test]
    fn register_dataset_checks_cid_lengths() {
        let mut f = Fixture::new();
        let long = Bytes::from(vec![7u8; MAX_CID_LEN + 1]);
        let longest = Bytes::from(vec![7u8; MAX_CID_LEN]);
        for (manifest, piece) in [
            (Bytes::from(Vec::new()), piece_cid()),
            (cid(b"m"), Bytes::from(Vec::new())),
            (long.clone(), piece_cid()),
            (cid(b"m"), long.clone()),
        ] {
            let err = f
                .host
                .invoke(SELLER, wei(MIN_STAKE), || {
                    f.reg.register_dataset(
                        manifest,
                        piece,
                        B256::ZERO,
                        vec![template(1)],
                        vec![wei(1)],
                        BUDGET,
                        0,
                    )
                })
                .unwrap_err();
            assert_eq!(err, Error::InvalidCid(InvalidCid {}));
        }
        let dataset = f
            .host
            .invoke(SELLER, wei(MIN_STAKE), || {
                f.reg.register_dataset(
                    longest.clone(),
                    piece_cid(),
                    B256::ZERO,
                    vec![template(1)],
                    vec![wei(1)],
                    BUDGET,
                    0,
                )
            })
            .unwrap();
        assert_eq!(f.reg.dataset(dataset).unwrap().1, longest);
        assert_eq!(f.balance(), wei(MIN_STAKE));
    }

    #[test]
    fn cids_of_every_length_round_trip() {
        let mut f = Fixture::new();
        for len in [1, 31, 32, 33, 63, 64, 65, 100, MAX_CID_LEN] {
            let manifest: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i % 251).unwrap() + 1)
                .collect();
            let piece = piece_cid().0.to_vec();
            let dataset = f
                .host
                .invoke(SELLER, wei(MIN_STAKE), || {
                    f.reg.register_dataset(
                        Bytes::from(manifest.clone()),
                        Bytes::from(piece.clone()),
                        B256::ZERO,
                        vec![template(1)],
                        vec![wei(1)],
                        BUDGET,
                        0,
                    )
                })
                .unwrap();
            let view = f.reg.dataset(dataset).unwrap();
            assert_eq!(view.1.0, manifest, "manifest of {len} bytes");
            assert_eq!(view.2.0, piece, "piece of {len} bytes");
            assert_eq!(
                f.reg.order_terms(dataset, template(1)).unwrap().1,
                keccak256(&manifest)
            );
        }
    }

    #[test]
    fn a_piece_cid_that_names_no_piece_is_refused() {
        let mut f = Fixture::new();
        let v1 = {
            let mut root = [9u8; 32];
            root[31] = 0;
            Bytes::from(datacloud_pdp::piece_cid_v1(&root).to_bytes())
        };
        // Bytes that are no CID, a v1 PieceCID (no height: nothing to bind a proof set to), a
        // raw sha2-256 CID, a v2 PieceCID cut short.
        let cut = Bytes::from(piece_cid().0[..20].to_vec());
        for piece in [cid(b"baga-piece"), v1, cid(&[0x01, 0x55, 0x12, 0x20]), cut] {
            let err = f
                .host
                .invoke(SELLER, wei(MIN_STAKE), || {
                    f.reg.register_dataset(
                        cid(b"m"),
                        piece,
                        B256::ZERO,
                        vec![template(1)],
                        vec![wei(1)],
                        BUDGET,
                        0,
                    )
                })
                .unwrap_err();
            assert_eq!(err, Error::InvalidPieceCid(InvalidPieceCid {}));
        }
        assert_eq!(f.reg.dataset_count(), U256::ZERO);
        assert_eq!(f.balance(), U256::ZERO);
    }

    #[test]
    fn a_piece_below_the_minimum_height_is_refused() {
        let mut f = Fixture::new();
        let register = |f: &mut Fixture, height: u8| {
            f.host.invoke(SELLER, wei(MIN_STAKE), || {
                f.reg.register_dataset(
                    cid(b"m"),
                    piece_cid_of(height, 1),
                    B256::ZERO,
                    vec![template(1)],
                    vec![wei(1)],
                    BUDGET,
                    0,
                )
            })
        };
        assert_eq!(
            register(&mut f, MIN_HEIGHT - 1).unwrap_err(),
            Error::PieceTooSmall(PieceTooSmall {
                height: MIN_HEIGHT - 1,
                minimum: MIN_HEIGHT,
            })
        );
        let dataset = register(&mut f, MIN_HEIGHT).unwrap();
        assert_eq!(f.reg.piece_of(dataset).unwrap().1, MIN_HEIGHT);
    }

    #[test]
    fn piece_of_names_the_registered_root_and_height() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let expected = datacloud_pdp::PieceRef::from_cid_bytes(&piece_cid()).unwrap();
        assert_eq!(
            f.reg.piece_of(dataset).unwrap(),
            (B256::from(expected.root), 8)
        );
        assert_eq!(
            f.reg.piece_of(id(9)).unwrap_err(),
            Error::UnknownDataset(UnknownDataset { datasetId: id(9) })
        );
    }

    #[test]
    fn register_dataset_needs_one_price_per_template() {
        let mut f = Fixture::new();
        let err = f
            .register_with(
                SELLER,
                wei(MIN_STAKE),
                &[template(1), template(2)],
                &[wei(1)],
            )
            .unwrap_err();
        assert_eq!(err, Error::LengthMismatch(LengthMismatch {}));
        let err = f
            .register_with(SELLER, wei(MIN_STAKE), &[template(1)], &[wei(1), wei(2)])
            .unwrap_err();
        assert_eq!(err, Error::LengthMismatch(LengthMismatch {}));
    }

    #[test]
    fn register_dataset_checks_the_templates() {
        let mut f = Fixture::new();
        let invalid = Error::InvalidTemplates(InvalidTemplates {});
        let too_many: Vec<B256> = (1..=33).map(template).collect();
        let cases: [Vec<B256>; 4] = [
            vec![],
            too_many.clone(),
            vec![template(1), B256::ZERO],
            vec![template(1), template(2), template(1)],
        ];
        for templates in cases {
            let prices = vec![wei(1); templates.len()];
            let err = f
                .register_with(SELLER, wei(MIN_STAKE), &templates, &prices)
                .unwrap_err();
            assert_eq!(err, invalid);
            assert!(f.host.logs().is_empty());
        }
        assert_eq!(f.balance(), U256::ZERO);
        let most = &too_many[..32];
        let dataset = f
            .register_with(SELLER, wei(MIN_STAKE), most, &vec![wei(1); 32])
            .unwrap();
        assert_eq!(dataset, id(1));
        assert_eq!(f.reg.templates_of(dataset).unwrap(), most.to_vec());
    }

    #[test]
    fn set_price_changes_an_allowed_template_price() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.host.clear_logs();
        f.as_sender(SELLER, |reg| reg.set_price(dataset, template(1), wei(77)))
            .unwrap();
        assert_eq!(f.reg.price_of(dataset, template(1)).unwrap(), wei(77));
        assert_eq!(f.reg.price_of(dataset, template(2)).unwrap(), wei(20));
        let events = f.events::<PriceSet>();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].datasetId, events[0].templateHash, events[0].price),
            (dataset, template(1), wei(77))
        );
        // Free queries are allowed.
        f.as_sender(SELLER, |reg| {
            reg.set_price(dataset, template(1), U256::ZERO)
        })
        .unwrap();
        assert_eq!(f.reg.price_of(dataset, template(1)).unwrap(), U256::ZERO);
    }

    #[test]
    fn set_price_errors() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let err = f
            .as_sender(OTHER, |reg| reg.set_price(dataset, template(1), wei(1)))
            .unwrap_err();
        assert_eq!(
            err,
            Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: dataset,
                caller: OTHER,
            })
        );
        for unknown in [U256::ZERO, id(2)] {
            let err = f
                .as_sender(SELLER, |reg| reg.set_price(unknown, template(1), wei(1)))
                .unwrap_err();
            assert_eq!(
                err,
                Error::UnknownDataset(UnknownDataset { datasetId: unknown })
            );
        }
        let err = f
            .as_sender(SELLER, |reg| reg.set_price(dataset, template(3), wei(1)))
            .unwrap_err();
        assert_eq!(
            err,
            Error::TemplateNotAllowed(TemplateNotAllowed {
                datasetId: dataset,
                templateHash: template(3),
            })
        );
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(1), false))
            .unwrap();
        let err = f
            .as_sender(SELLER, |reg| reg.set_price(dataset, template(1), wei(1)))
            .unwrap_err();
        assert!(matches!(err, Error::TemplateNotAllowed(_)));
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        let err = f
            .as_sender(SELLER, |reg| reg.set_price(dataset, template(2), wei(1)))
            .unwrap_err();
        assert_eq!(
            err,
            Error::DatasetInactive(DatasetInactive { datasetId: dataset })
        );
        assert_eq!(f.reg.price_of(dataset, template(2)).unwrap(), wei(20));
    }

    #[test]
    fn set_template_disallows_and_reallows_keeping_the_price() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.host.clear_logs();
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(1), false))
            .unwrap();
        assert!(!f.reg.is_template_allowed(dataset, template(1)));
        assert!(matches!(
            f.reg.price_of(dataset, template(1)).unwrap_err(),
            Error::TemplateNotAllowed(_)
        ));
        assert!(matches!(
            f.reg.order_terms(dataset, template(1)).unwrap_err(),
            Error::TemplateNotAllowed(_)
        ));
        // Still listed.
        assert_eq!(
            f.reg.templates_of(dataset).unwrap(),
            vec![template(1), template(2)]
        );
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(1), true))
            .unwrap();
        assert_eq!(f.reg.price_of(dataset, template(1)).unwrap(), wei(10));
        // A new template starts at price 0 and is appended once.
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(9), true))
            .unwrap();
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(9), false))
            .unwrap();
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(9), true))
            .unwrap();
        assert_eq!(f.reg.price_of(dataset, template(9)).unwrap(), U256::ZERO);
        assert_eq!(
            f.reg.templates_of(dataset).unwrap(),
            vec![template(1), template(2), template(9)]
        );
        let events: Vec<_> = f
            .events::<TemplateSet>()
            .iter()
            .map(|e| (e.datasetId, e.templateHash, e.allowed))
            .collect();
        assert_eq!(
            events,
            vec![
                (dataset, template(1), false),
                (dataset, template(1), true),
                (dataset, template(9), true),
                (dataset, template(9), false),
                (dataset, template(9), true),
            ]
        );
        // A template never set but disallowed is still recorded as set.
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(8), false))
            .unwrap();
        assert_eq!(f.reg.templates_of(dataset).unwrap().len(), 4);
    }

    #[test]
    fn set_template_errors() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let err = f
            .as_sender(OTHER, |reg| reg.set_template(dataset, template(3), true))
            .unwrap_err();
        assert_eq!(
            err,
            Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: dataset,
                caller: OTHER,
            })
        );
        let err = f
            .as_sender(SELLER, |reg| reg.set_template(id(5), template(3), true))
            .unwrap_err();
        assert_eq!(
            err,
            Error::UnknownDataset(UnknownDataset { datasetId: id(5) })
        );
        let err = f
            .as_sender(SELLER, |reg| reg.set_template(dataset, B256::ZERO, true))
            .unwrap_err();
        assert_eq!(err, Error::InvalidTemplates(InvalidTemplates {}));
        // At most MAX_TEMPLATES distinct templates, but known ones may still change.
        for n in 3..=u8::try_from(MAX_TEMPLATES).unwrap() {
            f.as_sender(SELLER, |reg| reg.set_template(dataset, template(n), true))
                .unwrap();
        }
        assert_eq!(f.reg.templates_of(dataset).unwrap().len(), MAX_TEMPLATES);
        let err = f
            .as_sender(SELLER, |reg| {
                reg.set_template(dataset, template(0xF0), true)
            })
            .unwrap_err();
        assert_eq!(err, Error::InvalidTemplates(InvalidTemplates {}));
        f.as_sender(SELLER, |reg| reg.set_template(dataset, template(3), false))
            .unwrap();
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        let err = f
            .as_sender(SELLER, |reg| reg.set_template(dataset, template(3), true))
            .unwrap_err();
        assert_eq!(
            err,
            Error::DatasetInactive(DatasetInactive { datasetId: dataset })
        );
        assert!(!f.reg.is_template_allowed(dataset, template(3)));
    }

    #[test]
    fn deactivate_stops_orders_once() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        assert_eq!(
            f.reg.order_terms(dataset, template(2)).unwrap(),
            (
                SELLER,
                keccak256(b"bafy-manifest"),
                wei(20),
                U256::ZERO,
                BUDGET
            )
        );
        f.host.clear_logs();
        f.set_time(START + 100);
        let err = f
            .as_sender(OTHER, |reg| reg.deactivate(dataset))
            .unwrap_err();
        assert_eq!(
            err,
            Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: dataset,
                caller: OTHER,
            })
        );
        let err = f
            .as_sender(SELLER, |reg| reg.deactivate(id(2)))
            .unwrap_err();
        assert_eq!(
            err,
            Error::UnknownDataset(UnknownDataset { datasetId: id(2) })
        );
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        let view = f.reg.dataset(dataset).unwrap();
        assert!(!view.5);
        assert_eq!(view.7, START + 100);
        let events = f.events::<DatasetDeactivated>();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].datasetId, dataset);
        assert_eq!(
            f.reg.order_terms(dataset, template(2)).unwrap_err(),
            Error::DatasetInactive(DatasetInactive { datasetId: dataset })
        );
        // The template itself stays allowed; only orders stop.
        assert!(f.reg.is_template_allowed(dataset, template(2)));
        let err = f
            .as_sender(SELLER, |reg| reg.deactivate(dataset))
            .unwrap_err();
        assert_eq!(
            err,
            Error::DatasetInactive(DatasetInactive { datasetId: dataset })
        );
        assert_eq!(f.reg.dataset(dataset).unwrap().7, START + 100);
    }

    #[test]
    fn views_of_unknown_datasets() {
        let mut f = Fixture::new();
        f.register(SELLER, MIN_STAKE);
        for unknown in [U256::ZERO, id(2), U256::MAX] {
            let expected = Error::UnknownDataset(UnknownDataset { datasetId: unknown });
            assert_eq!(f.reg.dataset(unknown).unwrap_err(), expected);
            assert_eq!(f.reg.dataset_owner(unknown).unwrap_err(), expected);
            assert_eq!(f.reg.stake_of(unknown).unwrap_err(), expected);
            assert_eq!(f.reg.templates_of(unknown).unwrap_err(), expected);
            assert_eq!(
                f.reg.order_terms(unknown, template(1)).unwrap_err(),
                expected
            );
            assert!(!f.reg.is_template_allowed(unknown, template(1)));
            assert_eq!(
                f.reg.price_of(unknown, template(1)).unwrap_err(),
                Error::TemplateNotAllowed(TemplateNotAllowed {
                    datasetId: unknown,
                    templateHash: template(1),
                })
            );
        }
        assert_eq!(f.reg.payout_of(SELLER), U256::ZERO);
    }

    #[test]
    fn order_terms_reports_seller_manifest_hash_and_price() {
        let mut f = Fixture::new();
        let dataset = f
            .host
            .invoke(SELLER, wei(MIN_STAKE), || {
                f.reg.register_dataset(
                    cid(b"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"),
                    piece_cid(),
                    B256::ZERO,
                    vec![template(4)],
                    vec![wei(50)],
                    BUDGET,
                    0,
                )
            })
            .unwrap();
        assert_eq!(
            f.reg.order_terms(dataset, template(4)).unwrap(),
            (
                SELLER,
                keccak256(b"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"),
                wei(50),
                U256::ZERO,
                BUDGET
            )
        );
        assert_eq!(
            f.reg.order_terms(dataset, template(5)).unwrap_err(),
            Error::TemplateNotAllowed(TemplateNotAllowed {
                datasetId: dataset,
                templateHash: template(5),
            })
        );
    }

    #[test]
    fn withdraw_stake_after_cooldown_sends_the_stake_to_the_owner() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE + 5);
        let other = f.register(OTHER, MIN_STAKE);
        f.set_time(START + 10);
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        let until = START + 10 + COOLDOWN;
        f.set_time(until - 1);
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(err, Error::CooldownPending(CooldownPending { until }));
        assert!(f.market_calls().is_empty());
        f.set_time(until);
        f.host.clear_logs();
        f.as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap();
        assert_eq!(f.host.balance(SELLER), wei(MIN_STAKE + 5));
        assert_eq!(f.balance(), wei(MIN_STAKE));
        assert_eq!(f.reg.stake_of(dataset).unwrap(), U256::ZERO);
        assert_eq!(f.reg.stake_of(other).unwrap(), wei(MIN_STAKE));
        let events = f.events::<StakeWithdrawn>();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].datasetId, events[0].to, events[0].amount),
            (dataset, SELLER, wei(MIN_STAKE + 5))
        );
        // The market was asked, statically, about this dataset.
        let calls = f.market_calls();
        assert_eq!(calls.len(), 1);
        assert!(calls[0].is_static);
        assert_eq!(
            Market::openOrderCountCall::abi_decode(&calls[0].data)
                .unwrap()
                .datasetId,
            dataset
        );
        // Once only.
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(err, Error::NothingToWithdraw(NothingToWithdraw {}));
        assert_eq!(f.host.balance(SELLER), wei(MIN_STAKE + 5));
    }

    #[test]
    fn withdraw_stake_errors() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(
            err,
            Error::DatasetStillActive(DatasetStillActive { datasetId: dataset })
        );
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        f.set_time(START + COOLDOWN + 1);
        let err = f
            .as_sender(OTHER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(
            err,
            Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: dataset,
                caller: OTHER,
            })
        );
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(id(9)))
            .unwrap_err();
        assert_eq!(
            err,
            Error::UnknownDataset(UnknownDataset { datasetId: id(9) })
        );

        f.open_orders.borrow_mut().insert(dataset, id(3));
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(err, Error::OpenOrders(OpenOrders { count: id(3) }));

        f.market_down.set(true);
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(err, Error::MarketCallFailed(MarketCallFailed {}));

        // A market answering garbage fails the same way.
        f.host.on_call(MARKET, |_| Ok(vec![1, 2, 3]));
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(err, Error::MarketCallFailed(MarketCallFailed {}));

        assert_eq!(f.reg.stake_of(dataset).unwrap(), wei(MIN_STAKE));
        assert_eq!(f.balance(), wei(MIN_STAKE));
        assert_eq!(f.host.balance(SELLER), U256::ZERO);
        assert!(f.events::<StakeWithdrawn>().is_empty());
    }

    #[test]
    fn withdraw_stake_to_an_owner_that_refuses_payment_reverts() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        f.set_time(START + COOLDOWN);
        f.host.on_call(SELLER, |_| Err(b"no thanks".to_vec()));
        f.host.clear_logs();
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(err, Error::TransferFailed(TransferFailed {}));
        assert_eq!(f.reg.stake_of(dataset).unwrap(), wei(MIN_STAKE));
        assert_eq!(f.balance(), wei(MIN_STAKE));
        assert_eq!(f.host.balance(SELLER), U256::ZERO);
        assert!(f.host.logs().is_empty());
    }

    #[test]
    fn withdraw_stake_zeroes_the_stake_before_sending() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        f.set_time(START + COOLDOWN);
        // The owner's code reads the registry's storage while it is being paid.
        let seen = Rc::new(Cell::new(None));
        let probe = DatasetRegistry::from(&f.host);
        let record = Rc::clone(&seen);
        f.host.on_call(SELLER, move |call: &OutgoingCall| {
            record.set(Some((call.value, probe.stake_of(id(1)).unwrap())));
            Ok(Vec::new())
        });
        f.as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap();
        assert_eq!(seen.get(), Some((wei(MIN_STAKE), U256::ZERO)));
    }

    #[test]
    fn slash_only_by_the_proof_manager_and_the_market() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        for caller in [SELLER, OWNER, BENEFICIARY] {
            let err = f
                .as_sender(caller, |reg| reg.slash(dataset, wei(1), BENEFICIARY))
                .unwrap_err();
            assert_eq!(err, Error::NotSlasher(NotSlasher { caller }));
        }
        // The market slashes a missed delivery's penalty into the receipt owner's payout.
        let slashed = f
            .as_sender(MARKET, |reg| reg.slash(dataset, wei(3), BENEFICIARY))
            .unwrap();
        assert_eq!(slashed, wei(3));
        assert_eq!(f.reg.payout_of(BENEFICIARY), wei(3));
        assert_eq!(f.reg.stake_of(dataset).unwrap(), wei(MIN_STAKE) - wei(3));
        let err = f
            .as_sender(PROOF_MANAGER, |reg| reg.slash(id(2), wei(1), BENEFICIARY))
            .unwrap_err();
        assert_eq!(
            err,
            Error::UnknownDataset(UnknownDataset { datasetId: id(2) })
        );
        let err = f
            .as_sender(PROOF_MANAGER, |reg| {
                reg.slash(dataset, wei(1), Address::ZERO)
            })
            .unwrap_err();
        assert_eq!(err, Error::InvalidAddress(InvalidAddress {}));
        // Only the market's slash moved anything.
        assert_eq!(f.reg.stake_of(dataset).unwrap(), wei(MIN_STAKE) - wei(3));
        assert_eq!(f.reg.total_payouts(), wei(3));
    }

    #[test]
    fn slash_moves_stake_into_payouts_capped_at_the_stake() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let slashed = f
            .as_sender(PROOF_MANAGER, |reg| {
                reg.slash(dataset, wei(300), BENEFICIARY)
            })
            .unwrap();
        assert_eq!(slashed, wei(300));
        assert_eq!(f.reg.stake_of(dataset).unwrap(), wei(MIN_STAKE - 300));
        assert_eq!(f.reg.payout_of(BENEFICIARY), wei(300));
        let slashed = f
            .as_sender(PROOF_MANAGER, |reg| {
                reg.slash(dataset, U256::MAX, BENEFICIARY)
            })
            .unwrap();
        assert_eq!(slashed, wei(MIN_STAKE - 300));
        assert_eq!(f.reg.stake_of(dataset).unwrap(), U256::ZERO);
        assert_eq!(f.reg.payout_of(BENEFICIARY), wei(MIN_STAKE));
        assert_eq!(f.reg.total_payouts(), wei(MIN_STAKE));
        // Nothing left: a further slash takes nothing.
        let slashed = f
            .as_sender(PROOF_MANAGER, |reg| reg.slash(dataset, wei(1), OTHER))
            .unwrap();
        assert_eq!(slashed, U256::ZERO);
        assert_eq!(f.reg.payout_of(OTHER), U256::ZERO);
        let events: Vec<_> = f
            .events::<StakeSlashed>()
            .iter()
            .map(|e| (e.datasetId, e.to, e.amount))
            .collect();
        assert_eq!(
            events,
            vec![
                (dataset, BENEFICIARY, wei(300)),
                (dataset, BENEFICIARY, wei(MIN_STAKE - 300)),
                (dataset, OTHER, U256::ZERO),
            ]
        );
        // No money left the contract.
        assert_eq!(f.balance(), wei(MIN_STAKE));
        // A fully slashed dataset has no stake to withdraw.
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        f.set_time(START + COOLDOWN);
        let err = f
            .as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap_err();
        assert_eq!(err, Error::NothingToWithdraw(NothingToWithdraw {}));
    }

    #[test]
    fn a_lapse_is_shared_by_the_open_orders_and_the_rounding_burned() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let (_, _, _, placed_at, _) = f.reg.order_terms(dataset, template(1)).unwrap();
        assert_eq!(placed_at, U256::ZERO);
        f.open_orders.borrow_mut().insert(dataset, id(3));
        let slashed = f
            .as_sender(PROOF_MANAGER, |reg| reg.slash_for_buyers(dataset, wei(500)))
            .unwrap();
        assert_eq!(slashed, wei(500));
        // 166 for each of the three orders, 2 burned.
        assert_eq!(f.reg.compensation_index(dataset), wei(166));
        assert_eq!(f.reg.reserved_compensation(), wei(498));
        assert_eq!(f.reg.payout_of(BURN), wei(2));
        assert_eq!(f.reg.stake_of(dataset).unwrap(), wei(MIN_STAKE - 500));
        assert_eq!(f.balance(), wei(MIN_STAKE));
        let events = f.events::<StakeSlashedForBuyers>();
        assert_eq!(
            (
                events[0].datasetId,
                events[0].amount,
                events[0].perOrder,
                events[0].orders,
                events[0].burned
            ),
            (dataset, wei(500), wei(166), id(3), wei(2))
        );
        // An order placed now counts from the new index: it is owed nothing for this lapse.
        assert_eq!(f.reg.order_terms(dataset, template(1)).unwrap().3, wei(166));

        // With nothing open, a lapse is burned whole; the slash is capped at the stake.
        f.open_orders.borrow_mut().clear();
        let slashed = f
            .as_sender(PROOF_MANAGER, |reg| {
                reg.slash_for_buyers(dataset, U256::MAX)
            })
            .unwrap();
        assert_eq!(slashed, wei(MIN_STAKE - 500));
        assert_eq!(f.reg.compensation_index(dataset), wei(166));
        assert_eq!(f.reg.payout_of(BURN), wei(MIN_STAKE - 500 + 2));
        assert_eq!(f.reg.stake_of(dataset).unwrap(), U256::ZERO);
    }

    proptest! {
        #[test]
        fn div_small_is_exact(low in any::<u128>(), high in any::<u128>(), divisor in 1u32..) {
            let amount = (U256::from(high) << 128) | U256::from(low);
            let (quotient, rest) = div_small(amount, divisor);
            prop_assert_eq!(quotient, amount / U256::from(divisor));
            prop_assert_eq!(rest, amount % U256::from(divisor));
        }
    }

    #[test]
    fn a_closing_order_is_paid_its_share_once_at_most_its_price() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.open_orders.borrow_mut().insert(dataset, id(2));
        f.as_sender(PROOF_MANAGER, |reg| reg.slash_for_buyers(dataset, wei(400)))
            .unwrap();
        // Only the market pays compensation, and only the proof manager slashes for buyers.
        for caller in [SELLER, PROOF_MANAGER, BENEFICIARY] {
            let err = f
                .as_sender(caller, |reg| {
                    reg.compensate(dataset, U256::ZERO, BENEFICIARY, wei(500))
                })
                .unwrap_err();
            assert_eq!(err, Error::NotMarket(NotMarket { caller }));
        }
        for caller in [SELLER, MARKET] {
            let err = f
                .as_sender(caller, |reg| reg.slash_for_buyers(dataset, wei(1)))
                .unwrap_err();
            assert_eq!(err, Error::NotSlasher(NotSlasher { caller }));
        }
        // An index no order was placed at.
        let err = f
            .as_sender(MARKET, |reg| {
                reg.compensate(dataset, wei(201), OTHER, wei(1))
            })
            .unwrap_err();
        assert_eq!(err, Error::ArithmeticOverflow(ArithmeticOverflow {}));
        // The first order's price is 150: it is paid 150 of its 200, and 50 are burned.
        let paid = f
            .as_sender(MARKET, |reg| {
                reg.compensate(dataset, U256::ZERO, BENEFICIARY, wei(150))
            })
            .unwrap();
        assert_eq!(paid, wei(150));
        assert_eq!(f.reg.payout_of(BENEFICIARY), wei(150));
        assert_eq!(f.reg.payout_of(BURN), wei(50));
        assert_eq!(f.reg.reserved_compensation(), wei(200));
        let events = f.events::<Compensated>();
        assert_eq!(
            (events[0].to, events[0].amount, events[0].burned),
            (BENEFICIARY, wei(150), wei(50))
        );
        // The second is paid in full; an order placed after the lapse is owed nothing.
        let paid = f
            .as_sender(MARKET, |reg| {
                reg.compensate(dataset, U256::ZERO, OTHER, wei(1_000))
            })
            .unwrap();
        assert_eq!(paid, wei(200));
        let paid = f
            .as_sender(MARKET, |reg| {
                reg.compensate(dataset, wei(200), OTHER, wei(1_000))
            })
            .unwrap();
        assert_eq!(paid, U256::ZERO);
        assert_eq!(f.reg.reserved_compensation(), U256::ZERO);
        assert_eq!(
            f.balance(),
            f.reg.stake_of(dataset).unwrap() + f.reg.total_payouts()
        );
        // The buyer pulls its compensation like any payout.
        f.as_sender(BENEFICIARY, DatasetRegistry::withdraw).unwrap();
        assert_eq!(f.host.balance(BENEFICIARY), wei(150));
    }

    #[test]
    fn slash_during_the_cooldown_reduces_what_the_owner_withdraws() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.as_sender(SELLER, |reg| reg.deactivate(dataset)).unwrap();
        f.as_sender(PROOF_MANAGER, |reg| reg.slash(dataset, wei(400), SELLER))
            .unwrap();
        f.set_time(START + COOLDOWN);
        f.as_sender(SELLER, |reg| reg.withdraw_stake(dataset))
            .unwrap();
        assert_eq!(f.host.balance(SELLER), wei(MIN_STAKE - 400));
        assert_eq!(f.balance(), wei(400));
        f.as_sender(SELLER, DatasetRegistry::withdraw).unwrap();
        assert_eq!(f.host.balance(SELLER), wei(MIN_STAKE));
        assert_eq!(f.balance(), U256::ZERO);
    }

    #[test]
    fn withdraw_pays_out_once() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        let err = f
            .as_sender(BENEFICIARY, DatasetRegistry::withdraw)
            .unwrap_err();
        assert_eq!(err, Error::NothingToWithdraw(NothingToWithdraw {}));
        f.as_sender(PROOF_MANAGER, |reg| {
            reg.slash(dataset, wei(250), BENEFICIARY)
        })
        .unwrap();
        f.host.clear_logs();
        f.as_sender(BENEFICIARY, DatasetRegistry::withdraw).unwrap();
        assert_eq!(f.host.balance(BENEFICIARY), wei(250));
        assert_eq!(f.reg.payout_of(BENEFICIARY), U256::ZERO);
        assert_eq!(f.reg.total_payouts(), U256::ZERO);
        assert_eq!(f.balance(), wei(MIN_STAKE - 250));
        let events = f.events::<Withdrawn>();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].to, events[0].amount), (BENEFICIARY, wei(250)));
        let err = f
            .as_sender(BENEFICIARY, DatasetRegistry::withdraw)
            .unwrap_err();
        assert_eq!(err, Error::NothingToWithdraw(NothingToWithdraw {}));
        assert_eq!(f.host.balance(BENEFICIARY), wei(250));
    }

    #[test]
    fn withdraw_to_a_recipient_that_refuses_payment_keeps_the_payout() {
        let mut f = Fixture::new();
        let dataset = f.register(SELLER, MIN_STAKE);
        f.as_sender(PROOF_MANAGER, |reg| {
            reg.slash(dataset, wei(250), BENEFICIARY)
        })
        .unwrap();
        f.host.on_call(BENEFICIARY, |_| Err(Vec::new()));
        let err = f
            .as_sender(BENEFICIARY, DatasetRegistry::withdraw)
            .unwrap_err();
        assert_eq!(err, Error::TransferFailed(TransferFailed {}));
        assert_eq!(f.reg.payout_of(BENEFICIARY), wei(250));
        assert_eq!(f.reg.total_payouts(), wei(250));
        assert_eq!(f.balance(), wei(MIN_STAKE));
        assert_eq!(f.host.balance(BENEFICIARY), U256::ZERO);
    }

    #[test]
    fn errors_encode_as_solidity_custom_errors() {
        let data: Vec<u8> = Error::StakeTooLow(StakeTooLow {
            sent: wei(1),
            minimum: wei(2),
        })
        .into();
        assert_eq!(data[..4], StakeTooLow::SELECTOR);
        let decoded = StakeTooLow::abi_decode(&data).unwrap();
        assert_eq!((decoded.sent, decoded.minimum), (wei(1), wei(2)));
        let data: Vec<u8> = Error::CooldownPending(CooldownPending { until: 42 }).into();
        assert_eq!(CooldownPending::abi_decode(&data).unwrap().until, 42);
    }

    /// One step of a random session against the registry.
    #[derive(Debug, Clone)]
    enum Op {
        Register {
            seller: usize,
            stake: u64,
        },
        Deactivate {
            sender: usize,
            dataset: u64,
        },
        Slash {
            by_proof_manager: bool,
            dataset: u64,
            amount: u64,
            to: usize,
        },
        WithdrawStake {
            sender: usize,
            dataset: u64,
        },
        Withdraw {
            account: usize,
        },
        Wait {
            seconds: u64,
        },
        /// The proof manager slashes a lapse for the dataset's buyers.
        SlashForBuyers {
            dataset: u64,
            amount: u64,
        },
        /// The market takes an order on the dataset (at its current compensation index).
        OpenOrder {
            dataset: u64,
        },
        /// The market closes its `order`-th open order (modulo their number) with price `cap`,
        /// paying `to`.
        CloseOrder {
            order: usize,
            cap: u64,
            to: usize,
        },
    }

    /// Senders and beneficiaries; a sender index past the end stands for the dataset's owner.
    const ACCOUNTS: [Address; 3] = [SELLER, OTHER, BENEFICIARY];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..3usize, 0..3 * MIN_STAKE)
                .prop_map(|(seller, stake)| Op::Register { seller, stake }),
            3 => (0..6usize, 0..5u64)
                .prop_map(|(sender, dataset)| Op::Deactivate { sender, dataset }),
            3 => (any::<bool>(), 0..6u64, 0..2 * MIN_STAKE, 0..3usize).prop_map(
                |(by_proof_manager, dataset, amount, to)| Op::Slash {
                    by_proof_manager,
                    dataset,
                    amount,
                    to,
                }
            ),
            4 => (0..6usize, 0..5u64)
                .prop_map(|(sender, dataset)| Op::WithdrawStake { sender, dataset }),
            2 => (0..3usize).prop_map(|account| Op::Withdraw { account }),
            2 => (0..2 * COOLDOWN).prop_map(|seconds| Op::Wait { seconds }),
            3 => (1..4u64, 0..2 * MIN_STAKE)
                .prop_map(|(dataset, amount)| Op::SlashForBuyers { dataset, amount }),
            3 => (1..4u64).prop_map(|dataset| Op::OpenOrder { dataset }),
            3 => (any::<usize>(), 0..MIN_STAKE, 0..3usize)
                .prop_map(|(order, cap, to)| Op::CloseOrder { order, cap, to }),
        ]
    }

    #[derive(Debug, Clone)]
    struct ModelDataset {
        owner: Address,
        stake: U256,
        active: bool,
        deactivated_at: u64,
        compensation_index: U256,
    }

    /// What the registry should hold and what every account should have received.
    #[derive(Default)]
    struct Model {
        datasets: Vec<ModelDataset>,
        payouts: HashMap<Address, U256>,
        received: HashMap<Address, U256>,
        /// Open orders: dataset and the compensation index each was placed at.
        orders: Vec<(u64, U256)>,
        now: u64,
    }

    impl Model {
        /// `op` with a sender index past [`ACCOUNTS`] replaced by the dataset's owner, so that
        /// random sequences reach the owner-only success paths often.
        fn resolve(&self, op: &Op) -> Op {
            let owner_of = |sender: usize, dataset: u64| {
                if sender < ACCOUNTS.len() {
                    return sender;
                }
                usize::try_from(dataset)
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|index| self.datasets.get(index))
                    .and_then(|record| ACCOUNTS.iter().position(|a| *a == record.owner))
                    .unwrap_or(sender % ACCOUNTS.len())
            };
            match *op {
                Op::Deactivate { sender, dataset } => Op::Deactivate {
                    sender: owner_of(sender, dataset),
                    dataset,
                },
                Op::WithdrawStake { sender, dataset } => Op::WithdrawStake {
                    sender: owner_of(sender, dataset),
                    dataset,
                },
                ref other => other.clone(),
            }
        }

        fn open_on(&self, dataset: u64) -> u64 {
            self.orders.iter().filter(|(d, _)| *d == dataset).count() as u64
        }

        fn dataset(&mut self, dataset: u64) -> Result<&mut ModelDataset, Error> {
            usize::try_from(dataset)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|index| self.datasets.get_mut(index))
                .ok_or(Error::UnknownDataset(UnknownDataset {
                    datasetId: id(dataset),
                }))
        }

        fn owned(&mut self, dataset: u64, sender: Address) -> Result<&mut ModelDataset, Error> {
            let record = self.dataset(dataset)?;
            if record.owner != sender {
                return Err(Error::NotDatasetOwner(NotDatasetOwner {
                    datasetId: id(dataset),
                    caller: sender,
                }));
            }
            Ok(record)
        }

        /// Applies `op` to the model; returns the outcome the contract must give.
        #[allow(clippy::too_many_lines)] // one arm per operation
        fn apply(&mut self, op: &Op) -> Result<U256, Error> {
            match *op {
                Op::Register { seller, stake } => {
                    if stake < MIN_STAKE {
                        return Err(Error::StakeTooLow(StakeTooLow {
                            sent: wei(stake),
                            minimum: wei(MIN_STAKE),
                        }));
                    }
                    self.datasets.push(ModelDataset {
                        owner: ACCOUNTS[seller],
                        stake: wei(stake),
                        active: true,
                        deactivated_at: 0,
                        compensation_index: U256::ZERO,
                    });
                    Ok(U256::from(self.datasets.len()))
                }
                Op::Deactivate { sender, dataset } => {
                    let now = self.now;
                    let record = self.owned(dataset, ACCOUNTS[sender])?;
                    if !record.active {
                        return Err(Error::DatasetInactive(DatasetInactive {
                            datasetId: id(dataset),
                        }));
                    }
                    record.active = false;
                    record.deactivated_at = now;
                    Ok(U256::ZERO)
                }
                Op::Slash {
                    by_proof_manager,
                    dataset,
                    amount,
                    to,
                } => {
                    if !by_proof_manager {
                        return Err(Error::NotSlasher(NotSlasher { caller: OTHER }));
                    }
                    let record = self.dataset(dataset)?;
                    let slashed = wei(amount).min(record.stake);
                    record.stake -= slashed;
                    *self.payouts.entry(ACCOUNTS[to]).or_default() += slashed;
                    Ok(slashed)
                }
                Op::WithdrawStake { sender, dataset } => {
                    let now = self.now;
                    let open = self.open_on(dataset);
                    let record = self.owned(dataset, ACCOUNTS[sender])?;
                    if record.active {
                        return Err(Error::DatasetStillActive(DatasetStillActive {
                            datasetId: id(dataset),
                        }));
                    }
                    if record.stake.is_zero() {
                        return Err(Error::NothingToWithdraw(NothingToWithdraw {}));
                    }
                    let until = record.deactivated_at + COOLDOWN;
                    if now < until {
                        return Err(Error::CooldownPending(CooldownPending { until }));
                    }
                    if open > 0 {
                        return Err(Error::OpenOrders(OpenOrders { count: wei(open) }));
                    }
                    let amount = core::mem::take(&mut record.stake);
                    let owner = record.owner;
                    *self.received.entry(owner).or_default() += amount;
                    Ok(U256::ZERO)
                }
                Op::Withdraw { account } => {
                    let account = ACCOUNTS[account];
                    let amount = self.payouts.remove(&account).unwrap_or_default();
                    if amount.is_zero() {
                        return Err(Error::NothingToWithdraw(NothingToWithdraw {}));
                    }
                    *self.received.entry(account).or_default() += amount;
                    Ok(U256::ZERO)
                }
                Op::SlashForBuyers { dataset, amount } => {
                    let orders = self.open_on(dataset);
                    let record = self.dataset(dataset)?;
                    let slashed = wei(amount).min(record.stake);
                    record.stake -= slashed;
                    let per_order = if orders == 0 {
                        U256::ZERO
                    } else {
                        slashed / wei(orders)
                    };
                    record.compensation_index += per_order;
                    *self.payouts.entry(BURN).or_default() += slashed - per_order * wei(orders);
                    Ok(slashed)
                }
                Op::OpenOrder { dataset } => {
                    let index = self.dataset(dataset)?.compensation_index;
                    self.orders.push((dataset, index));
                    Ok(U256::ZERO)
                }
                Op::CloseOrder { order, cap, to } => {
                    if self.orders.is_empty() {
                        return Ok(U256::ZERO);
                    }
                    let (dataset, since) = self.orders.remove(order % self.orders.len());
                    let owed = self.dataset(dataset)?.compensation_index - since;
                    let paid = owed.min(wei(cap));
                    *self.payouts.entry(ACCOUNTS[to]).or_default() += paid;
                    *self.payouts.entry(BURN).or_default() += owed - paid;
                    Ok(paid)
                }
                Op::Wait { .. } => Ok(U256::ZERO),
            }
        }
    }

    /// Runs `op` against the contract.
    fn execute(f: &mut Fixture, op: &Op) -> Result<U256, Error> {
        match *op {
            Op::Register { seller, stake } => {
                f.register_with(ACCOUNTS[seller], wei(stake), &[template(1)], &[wei(1)])
            }
            Op::Deactivate { sender, dataset } => f
                .as_sender(ACCOUNTS[sender], |reg| reg.deactivate(id(dataset)))
                .map(|()| U256::ZERO),
            Op::Slash {
                by_proof_manager,
                dataset,
                amount,
                to,
            } => {
                let caller = if by_proof_manager {
                    PROOF_MANAGER
                } else {
                    OTHER
                };
                f.as_sender(caller, |reg| {
                    reg.slash(id(dataset), wei(amount), ACCOUNTS[to])
                })
            }
            Op::WithdrawStake { sender, dataset } => f
                .as_sender(ACCOUNTS[sender], |reg| reg.withdraw_stake(id(dataset)))
                .map(|()| U256::ZERO),
            Op::Withdraw { account } => f
                .as_sender(ACCOUNTS[account], DatasetRegistry::withdraw)
                .map(|()| U256::ZERO),
            Op::Wait { seconds } => {
                let now = f.host.vm().block_timestamp() + seconds;
                f.set_time(now);
                Ok(U256::ZERO)
            }
            Op::SlashForBuyers { dataset, amount } => f.as_sender(PROOF_MANAGER, |reg| {
                reg.slash_for_buyers(id(dataset), wei(amount))
            }),
            // The market reads the index from `orderTerms` and counts the order as open.
            Op::OpenOrder { dataset } => {
                let index = f
                    .reg
                    .order_terms(id(dataset), template(1))
                    .map(|terms| terms.3)
                    .or_else(|err| match err {
                        // Orders outlive their dataset's deactivation.
                        Error::DatasetInactive(_) => Ok(f.reg.compensation_index(id(dataset))),
                        err => Err(err),
                    })?;
                f.orders.push((id(dataset), index));
                *f.open_orders.borrow_mut().entry(id(dataset)).or_default() += U256::from(1);
                Ok(U256::ZERO)
            }
            Op::CloseOrder { order, cap, to } => {
                if f.orders.is_empty() {
                    return Ok(U256::ZERO);
                }
                let (dataset, since) = f.orders.remove(order % f.orders.len());
                *f.open_orders.borrow_mut().entry(dataset).or_default() -= U256::from(1);
                f.as_sender(MARKET, |reg| {
                    reg.compensate(dataset, since, ACCOUNTS[to], wei(cap))
                })
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// After every step the contract holds exactly Σ stakes + totalPayouts, the stakes and
        /// payouts are the model's, and each account has received exactly what it was owed.
        #[test]
        fn money_is_conserved(ops in proptest::collection::vec(op(), 1..40)) {
            let mut f = Fixture::new();
            let mut model = Model { now: START, ..Model::default() };
            for op in &ops {
                let op = &model.resolve(op);
                if let Op::Wait { seconds } = op {
                    model.now += seconds;
                }
                let expected = model.apply(op);
                let actual = execute(&mut f, op);
                prop_assert_eq!(&actual, &expected, "{:?}", op);

                let count = f.reg.dataset_count();
                prop_assert_eq!(count, U256::from(model.datasets.len()));
                let mut staked = U256::ZERO;
                for (index, record) in model.datasets.iter().enumerate() {
                    let stake = f.reg.stake_of(U256::from(index + 1)).unwrap();
                    prop_assert_eq!(stake, record.stake);
                    staked += stake;
                }
                let total_payouts = f.reg.total_payouts();
                // Reserved: what the open orders are owed.
                let mut reserved = U256::ZERO;
                for (dataset, since) in &model.orders {
                    reserved += model.datasets[usize::try_from(*dataset).unwrap() - 1]
                        .compensation_index
                        - since;
                }
                prop_assert_eq!(f.reg.reserved_compensation(), reserved);
                prop_assert_eq!(f.balance(), staked + total_payouts + reserved);
                let mut owed = model.payouts.get(&BURN).copied().unwrap_or_default();
                prop_assert_eq!(f.reg.payout_of(BURN), owed);
                for account in ACCOUNTS {
                    let payout = model.payouts.get(&account).copied().unwrap_or_default();
                    prop_assert_eq!(f.reg.payout_of(account), payout);
                    owed += payout;
                    let received = model.received.get(&account).copied().unwrap_or_default();
                    prop_assert_eq!(f.host.balance(account), received);
                }
                prop_assert_eq!(total_payouts, owed);
            }
        }
    }
}
