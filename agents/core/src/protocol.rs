//! The typed view of the protocol: what an order, a dataset and a proof set *are*, read from the
//! contracts in one place.
//!
//! The contracts' views return ABI tuples (`order(id)` is ten unnamed values, three of them
//! `uint256` and three `bytes32`), so a positional read elsewhere would still compile if the
//! tuple were reordered and silently read the wrong field. Each tuple is decoded here, once, into
//! a named struct ([`Order`], [`OrderWork`], [`Dataset`], [`ProofSet`]), and each status byte into
//! an enum ([`OrderStatus`], [`Health`]); agents read them through a [`Protocol`] handle.
//! `tests/devchain.rs` places an order and registers a dataset with a distinct value in every
//! field and checks each one comes back under its name from the real contracts.

use std::fmt;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolStruct, eip712_domain};
use cid::Cid;

use crate::bindings::{IDatasetRegistry, IDisputeGame, IProofManager, IQueryMarket};
use crate::{ChainClient, ChainError, Deployments};

/// Where an order is in its life (`QueryMarket.order(id)`'s last value; the contract's
/// `status` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Paid, waiting for a worker.
    Open,
    /// A worker claimed it.
    Claimed,
    /// The worker submitted an attested result; the seller delivers next.
    Computed,
    /// Delivered on a healthy dataset: seller and worker paid.
    Settled,
    /// Delivered on an unhealthy dataset: the buyer was refunded.
    Failed,
    /// Refunded to the receipt's owner after the deadline.
    Refunded,
    /// Under dispute: a verifier drawn by the market is recomputing the result.
    Disputed,
}

impl OrderStatus {
    /// The name users see.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Open => "Open",
            Self::Claimed => "Claimed",
            Self::Computed => "Computed",
            Self::Settled => "Settled",
            Self::Failed => "Failed (refunded)",
            Self::Refunded => "Refunded",
            Self::Disputed => "Disputed (being verified)",
        }
    }

    /// The order is closed: nothing will change it again.
    #[must_use]
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Settled | Self::Failed | Self::Refunded)
    }

    /// The order was closed with the buyer's money returned.
    #[must_use]
    pub const fn is_refunded(self) -> bool {
        matches!(self, Self::Failed | Self::Refunded)
    }
}

impl TryFrom<u8> for OrderStatus {
    type Error = UnknownCode;

    fn try_from(code: u8) -> Result<Self, UnknownCode> {
        Ok(match code {
            1 => Self::Open,
            2 => Self::Claimed,
            3 => Self::Computed,
            4 => Self::Settled,
            5 => Self::Failed,
            6 => Self::Refunded,
            7 => Self::Disputed,
            _ => {
                return Err(UnknownCode {
                    what: "order status",
                    code,
                });
            }
        })
    }
}

impl From<OrderStatus> for u8 {
    fn from(status: OrderStatus) -> u8 {
        match status {
            OrderStatus::Open => 1,
            OrderStatus::Claimed => 2,
            OrderStatus::Computed => 3,
            OrderStatus::Settled => 4,
            OrderStatus::Failed => 5,
            OrderStatus::Refunded => 6,
            OrderStatus::Disputed => 7,
        }
    }
}

/// As its name, the way users read it (`"Settled"`).
impl serde::Serialize for OrderStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dataset's storage-proof health (`ProofManager.health(datasetId)`): settlement needs
/// [`Health::Healthy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// No proof set.
    None,
    /// Proven within the current period.
    Healthy,
    /// Never proven yet, or behind on its proofs.
    Degraded,
    /// Faults reached the threshold; the stake was slashed.
    Failed,
}

impl Health {
    /// The name users see.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Healthy => "Healthy",
            Self::Degraded => "Degraded",
            Self::Failed => "Failed",
        }
    }
}

impl TryFrom<u8> for Health {
    type Error = UnknownCode;

    fn try_from(code: u8) -> Result<Self, UnknownCode> {
        Ok(match code {
            0 => Self::None,
            1 => Self::Healthy,
            2 => Self::Degraded,
            3 => Self::Failed,
            _ => {
                return Err(UnknownCode {
                    what: "health",
                    code,
                });
            }
        })
    }
}

/// As its name (`"Healthy"`).
impl serde::Serialize for Health {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A status byte the contracts do not define (a contract newer than this agent, or not ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} code {code}")]
pub struct UnknownCode {
    /// Which code.
    pub what: &'static str,
    /// Its value.
    pub code: u8,
}

/// An order's terms and state (`QueryMarket.order(id)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The dataset ordered from.
    pub dataset_id: U256,
    /// The dataset's owner when the order was placed: who delivers.
    pub seller: Address,
    /// The template asked for.
    pub template_hash: B256,
    /// keccak256 of the parameters block (its CID is `CIDv1(raw, keccak-256)` of this digest).
    pub params_hash: B256,
    /// keccak256 of the dataset's manifest CID when the order was placed.
    pub manifest_hash: B256,
    /// The seller's price.
    pub price: U256,
    /// The worker's fee.
    pub worker_fee: U256,
    /// What the market holds for this order now.
    pub escrow: U256,
    /// Block timestamp after which the order can be refunded.
    pub deadline: u64,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// The buyer's estimate of the plan's programmable bootstraps: each claim on the order
    /// lasts `claimTimeout + pbs_estimate / PBS_PER_SECOND` seconds.
    pub pbs_estimate: u64,
    /// What the order spends of its dataset's privacy budget: the seller's noise is calibrated
    /// to it.
    pub epsilon: Epsilon,
}

/// An amount of differential-privacy budget, counted as the contracts count it: in millionths
/// of an ε (micro-ε), so that every party adds and compares the same integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epsilon(pub u64);

impl Epsilon {
    /// Micro-ε in one ε (the contracts' `EPSILON_SCALE`).
    pub const SCALE: u64 = 1_000_000;

    /// The ε `value` (> 0, finite, at most 10⁶) rounded to the nearest micro-ε.
    ///
    /// # Errors
    /// A message for anything else, or a value that rounds to zero.
    pub fn from_f64(value: f64) -> Result<Self, String> {
        if !(value.is_finite() && value > 0.0 && value <= 1e6) {
            return Err(format!("ε must be a number in (0, 1000000], not {value}"));
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )] // bounded above; SCALE is exact in f64
        let micro = (value * Self::SCALE as f64).round() as u64;
        if micro == 0 {
            return Err(format!("ε {value} is below the smallest unit, 0.000001"));
        }
        Ok(Self(micro))
    }

    /// As a number of ε.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // exact below 2^53 micro-ε
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

impl fmt::Display for Epsilon {
    /// Up to six decimals, trailing zeros dropped: `0.25`, `3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Self::SCALE;
        let frac = self.0 % Self::SCALE;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:06}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// A dataset's privacy budget: set at registration, raised only by its owner's logged renewal,
/// spent by the sample statistics and by every order on it, whoever placed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacyBudget {
    /// The total (`DatasetRegistry.privacyBudget`).
    pub total: Epsilon,
    /// What the published sample statistics spent at registration.
    pub sample: Epsilon,
    /// What orders spent (`QueryMarket.epsilonSpent`), less refunds that released nothing.
    pub orders: Epsilon,
}

/// Serialized in ε, as listings and reports print it: `{total, sample, orders, left}`.
impl serde::Serialize for PrivacyBudget {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("PrivacyBudget", 4)?;
        s.serialize_field("total", &self.total.as_f64())?;
        s.serialize_field("sample", &self.sample.as_f64())?;
        s.serialize_field("orders", &self.orders.as_f64())?;
        s.serialize_field("left", &self.left().as_f64())?;
        s.end()
    }
}

impl PrivacyBudget {
    /// What a new order may still spend.
    #[must_use]
    pub fn left(&self) -> Epsilon {
        Epsilon(
            self.total
                .0
                .saturating_sub(self.sample.0)
                .saturating_sub(self.orders.0),
        )
    }
}

/// The market's pace for claims: a claim lasts `claimTimeout` plus a second per this many of
/// the plan's estimated bootstraps (the contract's `PBS_PER_SECOND`).
pub const PBS_PER_SECOND: u64 = 20;

/// How long a claim lasts on an order whose plan bootstraps `pbs` times, under a market whose
/// `claimTimeout` is `claim_timeout` (the contract's rule; a deadline must leave one).
#[must_use]
pub fn claim_window(claim_timeout: u64, pbs: u64) -> u64 {
    claim_timeout.saturating_add(pbs / PBS_PER_SECOND)
}

impl TryFrom<IQueryMarket::orderReturn> for Order {
    type Error = UnknownCode;

    fn try_from(t: IQueryMarket::orderReturn) -> Result<Self, UnknownCode> {
        Ok(Self {
            dataset_id: t._0,
            seller: t._1,
            template_hash: t._2,
            params_hash: t._3,
            manifest_hash: t._4,
            price: t._5,
            worker_fee: t._6,
            escrow: t._7,
            deadline: t._8,
            status: OrderStatus::try_from(t._9)?,
            pbs_estimate: t._10,
            epsilon: Epsilon(t._11),
        })
    }
}

/// Who works an order and what came of it (`QueryMarket.orderWork(id)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderWork {
    /// The claiming worker, `None` before any claim.
    pub worker: Option<Address>,
    /// Block timestamp of the claim (0 before any).
    pub claimed_at: u64,
    /// The result's CID bytes (empty before `submitResult`).
    pub result_cid: Bytes,
    /// keccak256 of the result's bytes (zero before `submitResult`).
    pub result_hash: B256,
    /// The delivery's CID bytes (empty before `deliverResult`).
    pub delivery_cid: Bytes,
}

impl From<IQueryMarket::orderWorkReturn> for OrderWork {
    fn from(t: IQueryMarket::orderWorkReturn) -> Self {
        Self {
            worker: (t._0 != Address::ZERO).then_some(t._0),
            claimed_at: t._1,
            result_cid: t._2,
            result_hash: t._3,
            delivery_cid: t._4,
        }
    }
}

/// The market's configuration (`QueryMarket.config()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketConfig {
    /// Who initialized the market.
    pub owner: Address,
    /// The `DatasetRegistry` it reads.
    pub registry: Address,
    /// The `ProofManager` it reads.
    pub proof_manager: Address,
    /// The fee charged on new orders, paid to their worker.
    pub worker_fee: U256,
    /// The bond a worker needs to claim (and a disputer posts).
    pub min_worker_bond: U256,
    /// Seconds a claim, or a verifier's assignment, lasts.
    pub claim_timeout: u64,
    /// The latest deadline a new order may have, in seconds from placement.
    pub max_order_lifetime: u64,
    /// The program the market delegate-calls for the dispute game.
    pub dispute_game: Address,
}

impl From<IQueryMarket::configReturn> for MarketConfig {
    fn from(t: IQueryMarket::configReturn) -> Self {
        Self {
            owner: t._0,
            registry: t._1,
            proof_manager: t._2,
            worker_fee: t._3,
            min_worker_bond: t._4,
            claim_timeout: t._5,
            max_order_lifetime: t._6,
            dispute_game: t._7,
        }
    }
}

/// An order's dispute (`disputeOf(id)` of the dispute game, at the market's address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    /// Who disputed (the seller or the receipt's owner); `None` when no dispute is in progress.
    pub disputer: Option<Address>,
    /// The dispute bond it posted.
    pub bond: U256,
    /// 1 or 2 while a verifier is drawn; [`Dispute::UPHELD`] once the result survived a
    /// dispute; 0 otherwise.
    pub round: u8,
    /// The verifier drawn for the current round.
    pub verifier: Option<Address>,
    /// Block timestamp by which the verifier answers.
    pub deadline: u64,
}

impl Dispute {
    /// `round` of an order whose result was upheld (the contract's `UPHELD_ROUND`).
    pub const UPHELD: u8 = 3;
}

impl From<IDisputeGame::disputeOfReturn> for Dispute {
    fn from(t: IDisputeGame::disputeOfReturn) -> Self {
        Self {
            disputer: (t._0 != Address::ZERO).then_some(t._0),
            bond: t._1,
            round: t._2,
            verifier: (t._3 != Address::ZERO).then_some(t._3),
            deadline: t._4,
        }
    }
}

impl Order {
    /// The EIP-712 digest a worker signs to attest `result_hash` for this order (order
    /// `order_id` of the market at `market` on chain `chain_id`), computed here from the order's
    /// terms: a worker never signs a digest a node handed it.
    #[must_use]
    pub fn attestation_digest(
        &self,
        order_id: U256,
        chain_id: u64,
        market: Address,
        result_hash: B256,
    ) -> B256 {
        IQueryMarket::Attestation {
            orderId: order_id,
            datasetId: self.dataset_id,
            manifestHash: self.manifest_hash,
            templateHash: self.template_hash,
            paramsHash: self.params_hash,
            resultHash: result_hash,
        }
        .eip712_signing_hash(&market_domain(chain_id, market))
    }
}

/// The market's EIP-712 domain: name `"DataCloud QueryMarket"`, version `"1"`, this chain, the
/// market's address.
#[must_use]
pub fn market_domain(chain_id: u64, market: Address) -> alloy::sol_types::Eip712Domain {
    eip712_domain! {
        name: "DataCloud QueryMarket",
        version: "1",
        chain_id: chain_id,
        verifying_contract: market,
    }
}

/// The EIP-712 digest a seller signs to deliver `delivery_cid` (the sealed table's CID bytes)
/// as its answer to the result `result_hash` of order `order_id` (`deliverResult` recovers the
/// seller from it, and `ResultDelivered` carries the signature as the buyer's evidence).
#[must_use]
pub fn delivery_digest(
    chain_id: u64,
    market: Address,
    order_id: U256,
    result_hash: B256,
    delivery_cid: &[u8],
) -> B256 {
    IQueryMarket::Delivery {
        orderId: order_id,
        resultHash: result_hash,
        deliveryCid: Bytes::copy_from_slice(delivery_cid),
    }
    .eip712_signing_hash(&market_domain(chain_id, market))
}

impl OrderWork {
    /// The submitted result's CID, `None` before one was submitted.
    ///
    /// # Errors
    /// The bytes on chain are not a CID.
    pub fn result(&self) -> Result<Option<Cid>, cid::Error> {
        optional_cid(&self.result_cid)
    }

    /// The delivery's CID, `None` before one was delivered.
    ///
    /// # Errors
    /// The bytes on chain are not a CID.
    pub fn delivery(&self) -> Result<Option<Cid>, cid::Error> {
        optional_cid(&self.delivery_cid)
    }
}

fn optional_cid(bytes: &[u8]) -> Result<Option<Cid>, cid::Error> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        Cid::try_from(bytes).map(Some)
    }
}

/// A registered dataset (`DatasetRegistry.dataset(id)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// The seller.
    pub owner: Address,
    /// The package's root CID bytes (the manifest directory).
    pub manifest_cid: Bytes,
    /// The Filecoin PieceCID bytes of the package's CAR.
    pub piece_cid: Bytes,
    /// keccak256 of the schema.
    pub schema_hash: B256,
    /// The stake left.
    pub stake: U256,
    /// Open to new orders.
    pub active: bool,
    /// Block timestamp of registration.
    pub registered_at: u64,
    /// Block timestamp of deactivation (0 while active).
    pub deactivated_at: u64,
}

impl From<IDatasetRegistry::datasetReturn> for Dataset {
    fn from(t: IDatasetRegistry::datasetReturn) -> Self {
        Self {
            owner: t._0,
            manifest_cid: t._1,
            piece_cid: t._2,
            schema_hash: t._3,
            stake: t._4,
            active: t._5,
            registered_at: t._6,
            deactivated_at: t._7,
        }
    }
}

impl Dataset {
    /// The package's root CID.
    ///
    /// # Errors
    /// The bytes on chain are not a CID.
    pub fn manifest(&self) -> Result<Cid, cid::Error> {
        Cid::try_from(self.manifest_cid.as_ref())
    }

    /// The PieceCID.
    ///
    /// # Errors
    /// The bytes on chain are not a CID.
    pub fn piece(&self) -> Result<Cid, cid::Error> {
        Cid::try_from(self.piece_cid.as_ref())
    }
}

/// A PDP proof set's state (`ProofManager.proofSet(setId)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofSet {
    /// The dataset it proves.
    pub dataset_id: U256,
    /// Pieces in the set.
    pub pieces: u64,
    /// Leaves over all pieces (the challenge range).
    pub leaves: u64,
    /// The block whose hash seeds the open challenge (0 when none is open).
    pub challenge_epoch: u64,
    /// The last block a proof for the open challenge is accepted in.
    pub deadline: u64,
    /// The block of the last accepted proof (0 if never proven).
    pub last_proven_block: u64,
    /// Faults ever recorded.
    pub faults: u64,
    /// Faults within the sliding window of the last `FAULT_WINDOW_PERIODS` (8) proving periods
    /// (at most `faultThreshold`): the threshold of them is a lapse.
    pub recent_faults: u64,
}

impl From<IProofManager::proofSetReturn> for ProofSet {
    fn from(t: IProofManager::proofSetReturn) -> Self {
        Self {
            dataset_id: t._0,
            pieces: t._1,
            leaves: t._2,
            challenge_epoch: t._3,
            deadline: t._4,
            last_proven_block: t._5,
            faults: t._6,
            recent_faults: t._7,
        }
    }
}

/// Reads the protocol's state through a [`ChainClient`], typed.
#[derive(Debug, Clone, Copy)]
pub struct Protocol<'a> {
    client: &'a ChainClient,
    deployments: &'a Deployments,
}

impl<'a> Protocol<'a> {
    /// A view of the contracts in `deployments`, read through `client`.
    #[must_use]
    pub const fn new(client: &'a ChainClient, deployments: &'a Deployments) -> Self {
        Self {
            client,
            deployments,
        }
    }

    fn market(&self) -> IQueryMarket::IQueryMarketInstance<&'a alloy::providers::RootProvider> {
        IQueryMarket::new(self.deployments.query_market, self.client.provider())
    }

    /// The dispute game's functions, called at the market's address.
    fn dispute_game(
        &self,
    ) -> IDisputeGame::IDisputeGameInstance<&'a alloy::providers::RootProvider> {
        IDisputeGame::new(self.deployments.query_market, self.client.provider())
    }

    fn registry(
        &self,
    ) -> IDatasetRegistry::IDatasetRegistryInstance<&'a alloy::providers::RootProvider> {
        IDatasetRegistry::new(self.deployments.dataset_registry, self.client.provider())
    }

    fn proofs(&self) -> IProofManager::IProofManagerInstance<&'a alloy::providers::RootProvider> {
        IProofManager::new(self.deployments.proof_manager, self.client.provider())
    }

    /// Order `id`'s terms and status.
    ///
    /// # Errors
    /// [`ChainError`]: the node, a revert (`UnknownOrder`), or a status this agent does not know.
    pub async fn order(&self, id: U256) -> Result<Order, ChainError> {
        let raw = self.client.view("order", &self.market().order(id)).await?;
        Order::try_from(raw).map_err(|e| ChainError::Local {
            what: format!("order {id}"),
            message: e.to_string(),
        })
    }

    /// Order `id`'s status alone.
    ///
    /// # Errors
    /// As [`Protocol::order`].
    pub async fn order_status(&self, id: U256) -> Result<OrderStatus, ChainError> {
        Ok(self.order(id).await?.status)
    }

    /// Order `id`'s worker, result and delivery.
    ///
    /// # Errors
    /// [`ChainError`]: the node, or a revert (`UnknownOrder`).
    pub async fn order_work(&self, id: U256) -> Result<OrderWork, ChainError> {
        let raw = self
            .client
            .view("orderWork", &self.market().orderWork(id))
            .await?;
        Ok(raw.into())
    }

    /// The market's configuration.
    ///
    /// # Errors
    /// [`ChainError`].
    pub async fn market_config(&self) -> Result<MarketConfig, ChainError> {
        Ok(self
            .client
            .view("config", &self.market().config())
            .await?
            .into())
    }

    /// Order `id`'s dispute.
    ///
    /// # Errors
    /// [`ChainError`]: the node, or a revert (`UnknownOrder`).
    pub async fn dispute(&self, id: U256) -> Result<Dispute, ChainError> {
        Ok(self
            .client
            .view("disputeOf", &self.dispute_game().disputeOf(id))
            .await?
            .into())
    }

    /// Dataset `id`'s registration.
    ///
    /// # Errors
    /// [`ChainError`]: the node, or a revert (`UnknownDataset`).
    pub async fn dataset(&self, id: U256) -> Result<Dataset, ChainError> {
        let raw = self
            .client
            .view("dataset", &self.registry().dataset(id))
            .await?;
        Ok(raw.into())
    }

    /// Dataset `id`'s privacy budget and what was spent of it.
    ///
    /// # Errors
    /// [`ChainError`].
    pub async fn privacy_budget(&self, dataset_id: U256) -> Result<PrivacyBudget, ChainError> {
        let budget = self
            .client
            .view("privacyBudget", &self.registry().privacyBudget(dataset_id))
            .await?;
        let orders = self
            .client
            .view("epsilonSpent", &self.market().epsilonSpent(dataset_id))
            .await?;
        Ok(PrivacyBudget {
            total: Epsilon(budget._0),
            sample: Epsilon(budget._1),
            orders: Epsilon(orders),
        })
    }

    /// Dataset `id`'s storage-proof health.
    ///
    /// # Errors
    /// [`ChainError`]: the node, or a health code this agent does not know.
    pub async fn health(&self, dataset_id: U256) -> Result<Health, ChainError> {
        let code = self
            .client
            .view("health", &self.proofs().health(dataset_id))
            .await?;
        Health::try_from(code).map_err(|e| ChainError::Local {
            what: format!("health of dataset {dataset_id}"),
            message: e.to_string(),
        })
    }

    /// The proof set of dataset `dataset_id`, `None` when it has none.
    ///
    /// # Errors
    /// [`ChainError`].
    pub async fn proof_set_of(&self, dataset_id: U256) -> Result<Option<U256>, ChainError> {
        let id = self
            .client
            .view("proofSetOf", &self.proofs().proofSetOf(dataset_id))
            .await?;
        Ok((id != U256::ZERO).then_some(id))
    }

    /// Proof set `set_id`'s state.
    ///
    /// # Errors
    /// [`ChainError`]: the node, or a revert (`UnknownProofSet`).
    pub async fn proof_set(&self, set_id: U256) -> Result<ProofSet, ChainError> {
        let raw = self
            .client
            .view("proofSet", &self.proofs().proofSet(set_id))
            .await?;
        Ok(raw.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_round_trips_and_others_are_refused() {
        for code in 1..=7u8 {
            let status = OrderStatus::try_from(code).unwrap();
            assert_eq!(u8::from(status), code);
        }
        for code in [0u8, 8, 255] {
            assert_eq!(
                OrderStatus::try_from(code),
                Err(UnknownCode {
                    what: "order status",
                    code
                })
            );
        }
        assert_eq!(Health::try_from(1), Ok(Health::Healthy));
        assert!(Health::try_from(4).is_err());
        assert!(OrderStatus::Settled.is_final() && !OrderStatus::Computed.is_final());
        assert!(OrderStatus::Refunded.is_refunded() && !OrderStatus::Settled.is_refunded());
    }

    #[test]
    fn epsilon_is_counted_in_micro_units_and_bad_values_are_refused() {
        assert_eq!(Epsilon::from_f64(0.25), Ok(Epsilon(250_000)));
        assert_eq!(Epsilon::from_f64(3.0), Ok(Epsilon(3 * Epsilon::SCALE)));
        assert_eq!(Epsilon(250_000).to_string(), "0.25");
        assert_eq!(Epsilon(3 * Epsilon::SCALE).to_string(), "3");
        assert_eq!(Epsilon(1).to_string(), "0.000001");
        assert!((Epsilon(1_500_000).as_f64() - 1.5).abs() < 1e-12);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e7, 1e-9] {
            assert!(Epsilon::from_f64(bad).is_err(), "{bad}");
        }
        let budget = PrivacyBudget {
            total: Epsilon(10),
            sample: Epsilon(3),
            orders: Epsilon(4),
        };
        assert_eq!(budget.left(), Epsilon(3));
        let overspent = PrivacyBudget {
            orders: Epsilon(8),
            ..budget
        };
        assert_eq!(overspent.left(), Epsilon(0));
    }

    #[test]
    fn an_empty_cid_field_is_none_and_a_bad_one_an_error() {
        let work = OrderWork {
            worker: None,
            claimed_at: 0,
            result_cid: Bytes::new(),
            result_hash: B256::ZERO,
            delivery_cid: Bytes::from_static(b"not a cid"),
        };
        assert_eq!(work.result().unwrap(), None);
        assert!(work.delivery().is_err());
    }
}
