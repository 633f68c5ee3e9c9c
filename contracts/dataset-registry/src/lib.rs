//! `DatasetRegistry`: the on-chain record of every DataCloud dataset.
//!
//! A seller registers a dataset by its content addresses (the manifest CID and the Filecoin
//! PieceCID), its schema hash and the query templates it allows with a price for each, staking a
//! bond in the chain's native token. The `ProofManager` slashes that stake when the seller stops
//! proving possession; the `QueryMarket` reads the order terms from here and must report no open
//! order before the seller takes the stake back, a cooldown after deactivating.
//!
//! Money: the contract holds exactly `Σ stake(dataset) + totalPayouts`. Slashed stake becomes a
//! payout that its beneficiary pulls with `withdraw()` (withdraw pattern). Every transfer follows
//! checks-effects-interactions, and reentrancy is refused by the SDK itself: the `reentrant`
//! feature of `stylus-sdk` is off, so a call back into this contract during a transfer reverts.

#![cfg_attr(not(any(test, feature = "export-abi")), no_main)]
extern crate alloc;

use alloc::vec::Vec;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::sol;
use stylus_sdk::{
    abi::Bytes,
    call::transfer::transfer_eth,
    prelude::*,
    storage::{
        StorageAddress, StorageB256, StorageBool, StorageBytes, StorageMap, StorageU64,
        StorageU256, StorageVec,
    },
};

/// Longest CID accepted, in bytes (a CIDv1 with a 512-bit multihash fits comfortably).
pub const MAX_CID_LEN: usize = 128;
/// Most templates a dataset may register with.
pub const MAX_TEMPLATES_AT_REGISTRATION: usize = 32;
/// Most distinct templates a dataset may ever know, so that `templatesOf` stays bounded.
pub const MAX_TEMPLATES: usize = 64;

sol! {
    /// The registry was initialized by `owner`.
    event Initialized(address indexed owner, address proofManager, address queryMarket, uint256 minStake, uint64 withdrawCooldown);
    /// A dataset was registered with `stake` as its bond.
    event DatasetRegistered(uint256 indexed datasetId, address indexed owner, bytes manifestCid, bytes pieceCid, bytes32 schemaHash, uint256 stake);
    /// A template was allowed or disallowed for a dataset.
    event TemplateSet(uint256 indexed datasetId, bytes32 indexed templateHash, bool allowed);
    /// A template's price per query changed.
    event PriceSet(uint256 indexed datasetId, bytes32 indexed templateHash, uint256 price);
    /// A dataset stopped accepting orders.
    event DatasetDeactivated(uint256 indexed datasetId);
    /// The owner took a deactivated dataset's stake back.
    event StakeWithdrawn(uint256 indexed datasetId, address indexed to, uint256 amount);
    /// The proof manager slashed `amount` of a dataset's stake, credited to `to`'s payout.
    event StakeSlashed(uint256 indexed datasetId, address indexed to, uint256 amount);
    /// `to` pulled its payout.
    event Withdrawn(address indexed to, uint256 amount);

    /// `initialize` was already called.
    #[derive(Debug, PartialEq, Eq)]
    error AlreadyInitialized();
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
    /// Only the proof manager may slash; `caller` is not it.
    #[derive(Debug, PartialEq, Eq)]
    error NotProofManager(address caller);
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
    /// See [`NotProofManager`].
    NotProofManager(NotProofManager),
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

/// One registered dataset.
#[storage]
pub struct DatasetRecord {
    owner: StorageAddress,
    manifest_cid: StorageBytes,
    piece_cid: StorageBytes,
    schema_hash: StorageB256,
    stake: StorageU256,
    active: StorageBool,
    registered_at: StorageU64,
    deactivated_at: StorageU64,
    /// Every template ever set, in the order first set.
    templates: StorageVec<StorageB256>,
    terms: StorageMap<B256, TemplateTerms>,
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
    dataset_count: StorageU256,
    datasets: StorageMap<U256, DatasetRecord>,
    payouts: StorageMap<Address, StorageU256>,
    total_payouts: StorageU256,
}

/// What `dataset(uint256)` returns: owner, manifest CID, piece CID, schema hash, stake, active,
/// registered at, deactivated at (timestamps, 0 while active).
pub type DatasetView = (Address, Bytes, Bytes, B256, U256, bool, u64, u64);

#[public]
impl DatasetRegistry {
    /// Sets the registry up; the caller becomes its owner.
    ///
    /// # Errors
    /// `AlreadyInitialized` on a second call; `InvalidAddress` for a zero proof manager or market.
    ///
    /// # Events
    /// `Initialized`.
    pub fn initialize(
        &mut self,
        proof_manager: Address,
        query_market: Address,
        min_stake: U256,
        withdraw_cooldown: u64,
    ) -> Result<(), Error> {
        if self.initialized.get() {
            return Err(Error::AlreadyInitialized(AlreadyInitialized {}));
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
        self.withdraw_cooldown.set(U64::from(withdraw_cooldown));
        self.vm().log(Initialized {
            owner,
            proofManager: proof_manager,
            queryMarket: query_market,
            minStake: min_stake,
            withdrawCooldown: withdraw_cooldown,
        });
        Ok(())
    }

    /// Registers a dataset owned by the caller, staking `msg.value`; ids start at 1.
    ///
    /// # Errors
    /// `NotInitialized`; `StakeTooLow` when `msg.value < minStake`; `InvalidCid` for a CID that
    /// is empty or over 128 bytes; `LengthMismatch` when templates and prices differ in length;
    /// `InvalidTemplates` for none, more than 32, a zero hash or a duplicate.
    ///
    /// # Events
    /// `DatasetRegistered`, then `TemplateSet` and `PriceSet` per template.
    #[payable]
    pub fn register_dataset(
        &mut self,
        manifest_cid: Bytes,
        piece_cid: Bytes,
        schema_hash: B256,
        template_hashes: Vec<B256>,
        prices: Vec<U256>,
    ) -> Result<U256, Error> {
        self.require_initialized()?;
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
        if template_hashes.len() != prices.len() {
            return Err(Error::LengthMismatch(LengthMismatch {}));
        }
        if template_hashes.is_empty() || template_hashes.len() > MAX_TEMPLATES_AT_REGISTRATION {
            return Err(Error::InvalidTemplates(InvalidTemplates {}));
        }

        let id = self.dataset_count.get() + U256::from(1);
        self.dataset_count.set(id);
        let owner = self.vm().msg_sender();
        let now = self.vm().block_timestamp();
        let mut record = self.datasets.setter(id);
        record.owner.set(owner);
        record.manifest_cid.set_bytes(&manifest_cid);
        record.piece_cid.set_bytes(&piece_cid);
        record.schema_hash.set(schema_hash);
        record.stake.set(stake);
        record.active.set(true);
        record.registered_at.set(U64::from(now));
        self.vm().log(DatasetRegistered {
            datasetId: id,
            owner,
            manifestCid: manifest_cid.0.into(),
            pieceCid: piece_cid.0.into(),
            schemaHash: schema_hash,
            stake,
        });
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
            self.vm().log(PriceSet {
                datasetId: id,
                templateHash: template,
                price,
            });
        }
        Ok(id)
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
        self.vm().log(PriceSet {
            datasetId: dataset_id,
            templateHash: template_hash,
            price,
        });
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
        record.deactivated_at.set(U64::from(now));
        self.vm().log(DatasetDeactivated {
            datasetId: dataset_id,
        });
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
        let until = record
            .deactivated_at
            .get()
            .to::<u64>()
            .saturating_add(self.withdraw_cooldown.get().to::<u64>());
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
        self.vm().log(StakeWithdrawn {
            datasetId: dataset_id,
            to: owner,
            amount,
        });
        transfer_eth(self.vm(), owner, amount).map_err(|_| Error::TransferFailed(TransferFailed {}))
    }

    /// Slashes up to `amount` of a dataset's stake (active or not) into `to`'s payout.
    /// Returns the amount slashed: `min(amount, stake)`.
    ///
    /// # Errors
    /// `NotInitialized`; `NotProofManager` for any other caller; `UnknownDataset`;
    /// `InvalidAddress` for a zero `to`.
    ///
    /// # Events
    /// `StakeSlashed`.
    pub fn slash(&mut self, dataset_id: U256, amount: U256, to: Address) -> Result<U256, Error> {
        self.require_initialized()?;
        let caller = self.vm().msg_sender();
        if caller != self.proof_manager.get() {
            return Err(Error::NotProofManager(NotProofManager { caller }));
        }
        self.require_known(dataset_id)?;
        if to.is_zero() {
            return Err(Error::InvalidAddress(InvalidAddress {}));
        }
        let stake = self.datasets.getter(dataset_id).stake.get();
        let slashed = amount.min(stake);
        // `slashed <= stake`, so neither subtraction nor the payout totals can really fail.
        let total = checked(self.total_payouts.get().checked_add(slashed))?;
        let payout = checked(self.payouts.get(to).checked_add(slashed))?;
        let remaining = checked(stake.checked_sub(slashed))?;
        self.datasets.setter(dataset_id).stake.set(remaining);
        self.total_payouts.set(total);
        self.payouts.setter(to).set(payout);
        self.vm().log(StakeSlashed {
            datasetId: dataset_id,
            to,
            amount: slashed,
        });
        Ok(slashed)
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
        self.vm().log(Withdrawn { to, amount });
        transfer_eth(self.vm(), to, amount).map_err(|_| Error::TransferFailed(TransferFailed {}))
    }

    /// The registry's owner (whoever initialized it).
    pub fn owner(&self) -> Address {
        self.owner.get()
    }

    /// The only address allowed to slash.
    pub fn proof_manager(&self) -> Address {
        self.proof_manager.get()
    }

    /// The query market asked for open orders before a stake leaves.
    pub fn query_market(&self) -> Address {
        self.query_market.get()
    }

    /// The smallest stake a registration accepts, in wei.
    pub fn min_stake(&self) -> U256 {
        self.min_stake.get()
    }

    /// Seconds between deactivation and stake withdrawal.
    pub fn withdraw_cooldown(&self) -> u64 {
        self.withdraw_cooldown.get().to::<u64>()
    }

    /// How many datasets were registered (also the highest id).
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
            record.manifest_cid.get_bytes().into(),
            record.piece_cid.get_bytes().into(),
            record.schema_hash.get(),
            record.stake.get(),
            record.active.get(),
            record.registered_at.get().to::<u64>(),
            record.deactivated_at.get().to::<u64>(),
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

    /// What the query market needs to take an order: the seller, `keccak256(manifestCid)` and
    /// the price.
    ///
    /// # Errors
    /// `UnknownDataset`; `DatasetInactive`; `TemplateNotAllowed`.
    pub fn order_terms(
        &self,
        dataset_id: U256,
        template_hash: B256,
    ) -> Result<(Address, B256, U256), Error> {
        self.require_known(dataset_id)?;
        let record = self.datasets.getter(dataset_id);
        if !record.active.get() {
            return Err(inactive(dataset_id));
        }
        let terms = record.terms.getter(template_hash);
        if !terms.allowed.get() {
            return Err(not_allowed(dataset_id, template_hash));
        }
        let manifest_hash = self.vm().native_keccak256(&record.manifest_cid.get_bytes());
        Ok((record.owner.get(), manifest_hash, terms.price.get()))
    }

    /// What `account` may pull with `withdraw()`.
    pub fn payout_of(&self, account: Address) -> U256 {
        self.payouts.get(account)
    }

    /// Σ payouts not yet withdrawn.
    pub fn total_payouts(&self) -> U256 {
        self.total_payouts.get()
    }
}

/// `U64` storage values are `Uint<64, 1>`.
type U64 = alloy_primitives::U64;

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

    /// Records `allowed` for a template, appending it to the dataset's list the first time.
    fn store_template(&mut self, dataset_id: U256, template_hash: B256, allowed: bool) {
        let mut record = self.datasets.setter(dataset_id);
        if !record.terms.getter(template_hash).known.get() {
            record.templates.push(template_hash);
        }
        let mut terms = record.terms.setter(template_hash);
        terms.known.set(true);
        terms.allowed.set(allowed);
        self.vm().log(TemplateSet {
            datasetId: dataset_id,
            templateHash: template_hash,
            allowed,
        });
    }
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
