//! # datacloud-buyer — the buyer's side
//!
//! [`Buyer`] is what `datacloud buyer …` and the demo's FinTech B run:
//! - [`Buyer::listings`] / [`Buyer::listing`]: the datasets on offer, each with its manifest
//!   (fetched through the gateways, every block verified), its allowed templates and prices,
//!   and its PDP health;
//! - [`Buyer::place_order`]: checks the query against the listing (a refused query costs
//!   nothing), publishes its parameters block (named by the keccak-256 the order pays for),
//!   generates a delivery key, simulates, then places the order;
//! - [`Buyer::fetch_result`] / [`Buyer::wait_result`]: the order's state from the chain and,
//!   once delivered, the sealed table fetched, verified and opened with the delivery key;
//! - [`Buyer::refund`]: an order not delivered by its deadline (or its delivery window),
//!   credited back;
//! - [`Buyer::verify`]: every link of an order's evidence, from the order to the seller's
//!   signature over the delivery ([`verify`]).
//!
//! Everything read from the chain goes through the typed view ([`Protocol`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider as _;
use alloy::sol_types::SolEvent as _;
use datacloud_agent_core::bindings::query_market::IQueryMarket::{OrderPlaced, OrderRefunded};
use datacloud_agent_core::bindings::{IDatasetRegistry, IQueryMarket};
use datacloud_agent_core::{
    ChainClient, ChainError, Config, Deployments, Epsilon, Health, OrderStatus, PrivacyBudget,
    Protocol, claim_window,
};
use datacloud_delivery::{DeliveryError, DeliveryKey};
use datacloud_fhe_query::{ResultTable, SampleStatistics};
use datacloud_package::{Manifest, PackageError, fetch_manifest, params_block, read_file};
use datacloud_query::{Query, QueryError, Schema, plan, template};
use datacloud_store::Blockstore;
use datacloud_store::gateway::{Client as GatewayClient, ClientError};
use serde::Serialize;

pub mod verify;

pub use verify::{Link, LinkState, Verification};

/// Largest sealed table read.
pub const MAX_DELIVERY_BYTES: u64 = 64 * 1024 * 1024;
/// What a default deadline leaves after one claim window: time for a second worker, the
/// delivery and a dispute.
pub const DEFAULT_DEADLINE_SLACK: u64 = 3600;
/// Seconds a deadline keeps beyond one claim window for the blocks between reading the head
/// and the order's inclusion.
const DEADLINE_MARGIN: u64 = 60;
/// How often [`Buyer::wait_result`] looks at the order.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// Why a buyer step failed, each saying what to do next where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum BuyerError {
    /// The chain failed or refused.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] datacloud_store::StoreError),
    /// A gateway failed or sent bad data.
    #[error(transparent)]
    Gateway(Box<ClientError>),
    /// A dataset package is unusable.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The delivery key or the sealed table.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// A dataset cannot be listed.
    #[error("dataset #{id}: {reason}")]
    Dataset {
        /// The dataset.
        id: u64,
        /// Why.
        reason: String,
    },
    /// The dataset does not allow the query.
    #[error("the dataset does not allow this query; nothing was paid: {0}")]
    QueryRefused(#[source] QueryError),
    /// The market would revert the order (simulated before paying).
    #[error("the market refuses this order; nothing was paid: {0}")]
    OrderRefused(#[source] ChainError),
    /// An order's state or delivery cannot be read.
    #[error("order #{order_id}: {reason}")]
    Order {
        /// The order.
        order_id: U256,
        /// Why.
        reason: String,
    },
    /// The deadline asked leaves no time for one claim on the plan.
    #[error(
        "a deadline {given} s from now is too short for this query: its plan needs about {pbs} bootstraps, so one worker's claim lasts up to {} s; give --deadline {needed} or more (nothing was paid)",
        needed - DEADLINE_MARGIN
    )]
    DeadlineTooShort {
        /// Seconds asked.
        given: u64,
        /// The fewest seconds accepted.
        needed: u64,
        /// The plan's estimated bootstraps.
        pbs: u64,
    },
    /// Waiting for a delivery ran out of time.
    #[error("order #{order_id} is still {status} after {} s", .waited.as_secs())]
    StillWaiting {
        /// The order.
        order_id: U256,
        /// Its status then.
        status: OrderStatus,
        /// How long we waited.
        waited: Duration,
    },
    /// A local file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<ClientError> for BuyerError {
    fn from(e: ClientError) -> Self {
        Self::Gateway(Box::new(e))
    }
}

/// The buyer: its configuration, the chain, its store and the gateways.
#[derive(Debug, Clone)]
pub struct Buyer {
    /// The configuration (the delivery keys live under `<data_dir>/buyer/`).
    pub config: Config,
    /// The chain client, signing as the buyer.
    pub client: ChainClient,
    /// Where the contracts are.
    pub deployments: Deployments,
    /// The buyer's store (fetched manifests and deliveries).
    pub store: Arc<Blockstore>,
    /// The gateways it reads from and publishes parameters to.
    pub gateways: GatewayClient,
}

impl Buyer {
    fn protocol(&self) -> Protocol<'_> {
        Protocol::new(&self.client, &self.deployments)
    }

    fn registry(
        &self,
    ) -> IDatasetRegistry::IDatasetRegistryInstance<&alloy::providers::RootProvider> {
        IDatasetRegistry::new(self.deployments.dataset_registry, self.client.provider())
    }

    fn market(&self) -> IQueryMarket::IQueryMarketInstance<&alloy::providers::RootProvider> {
        IQueryMarket::new(self.deployments.query_market, self.client.provider())
    }

    /// The order's plan's estimated bootstraps, its deadline in seconds from now (`asked`, or
    /// one claim window plus [`DEFAULT_DEADLINE_SLACK`]), and the market's configuration.
    async fn timing(
        &self,
        listing: &Listing,
        query: &Query,
        asked: Option<u64>,
    ) -> Result<(u64, u64, datacloud_agent_core::MarketConfig), BuyerError> {
        let layout = &listing
            .manifest
            .as_ref()
            .ok_or_else(|| BuyerError::Dataset {
                id: listing.id,
                reason: "its manifest was not fetched".into(),
            })?
            .layout;
        let pbs = plan(query, layout).map_err(BuyerError::QueryRefused)?.pbs;
        let config = self.protocol().market_config().await?;
        let window = claim_window(config.claim_timeout, pbs);
        // Blocks come and go between the head read and the order's inclusion.
        let needed = window + DEADLINE_MARGIN;
        let seconds = asked.unwrap_or(window + DEFAULT_DEADLINE_SLACK);
        if seconds < needed {
            return Err(BuyerError::DeadlineTooShort {
                given: seconds,
                needed,
                pbs,
            });
        }
        Ok((pbs, seconds, config))
    }

    /// The delivery key file of `order_id`.
    #[must_use]
    pub fn delivery_key_path(&self, order_id: U256) -> PathBuf {
        self.keys_dir().join(format!("order-{order_id}.key"))
    }

    fn keys_dir(&self) -> PathBuf {
        self.config.data_dir.join("buyer")
    }

    /// Every dataset registered whose manifest can be read (the others are logged and skipped).
    ///
    /// # Errors
    /// [`BuyerError::Chain`] reading the dataset count.
    pub async fn listings(&self) -> Result<Vec<Listing>, BuyerError> {
        let count: u64 = self
            .client
            .view("datasetCount", &self.registry().datasetCount())
            .await?
            .to();
        let mut out = Vec::new();
        for id in 1..=count {
            match self.listing(id).await {
                Ok(l) => out.push(l),
                Err(e) => {
                    tracing::warn!(dataset = id, error = %e, "skipping a dataset whose manifest cannot be read");
                }
            }
        }
        Ok(out)
    }

    /// Dataset `id`, its manifest fetched and verified.
    ///
    /// # Errors
    /// [`BuyerError`]: an unknown dataset, an unreadable manifest, the chain.
    pub async fn listing(&self, id: u64) -> Result<Listing, BuyerError> {
        let key = U256::from(id);
        let view = self.protocol();
        let dataset = view.dataset(key).await.map_err(|e| BuyerError::Dataset {
            id,
            reason: e.to_string(),
        })?;
        let root = dataset.manifest().map_err(|e| BuyerError::Dataset {
            id,
            reason: format!("the manifest CID does not parse: {e}"),
        })?;
        let piece = dataset
            .piece()
            .map_or_else(|_| "?".into(), |c| c.to_string());
        let manifest = fetch_manifest(&self.gateways, &self.store, &root)
            .await
            .map_err(|e| BuyerError::Dataset {
                id,
                reason: format!("fetching its manifest: {e}"),
            })?;
        let registry = self.registry();
        let mut templates = Vec::new();
        for name in &manifest.templates {
            let hash = B256::from(template::template_hash(name));
            if self
                .client
                .view("isTemplateAllowed", &registry.isTemplateAllowed(key, hash))
                .await?
            {
                let price = self
                    .client
                    .view("priceOf", &registry.priceOf(key, hash))
                    .await?;
                templates.push((name.clone(), price.to_string()));
            }
        }
        let health = view.health(key).await?;
        let last_proof_block = match view.proof_set_of(key).await? {
            Some(set) => view.proof_set(set).await?.last_proven_block,
            None => 0,
        };
        let privacy = view.privacy_budget(key).await?;
        Ok(Listing {
            id,
            privacy,
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            seller: dataset.owner,
            manifest_cid: root.to_string(),
            piece_cid: piece,
            rows: manifest.layout.rows,
            templates,
            health,
            last_proof_block,
            active: dataset.active,
            schema: manifest.schema.clone(),
            sample: manifest.sample.clone(),
            manifest: Some(manifest),
        })
    }

    /// Checks `query` against the listing (so a refused query costs nothing), plans it on the
    /// manifest (the order carries the plan's PBS estimate, which sets how long a claim lasts),
    /// publishes its parameters, generates the delivery key and places the order, paying the
    /// price and the worker fee. The deadline is `deadline_seconds` from now, by default one
    /// claim window plus [`DEFAULT_DEADLINE_SLACK`].
    ///
    /// # Errors
    /// [`BuyerError::QueryRefused`], [`BuyerError::DeadlineTooShort`] and
    /// [`BuyerError::OrderRefused`] before anything is paid; otherwise the chain, the gateways
    /// or the key file.
    pub async fn place_order(
        &self,
        listing: &Listing,
        query: &Query,
        epsilon: Epsilon,
        deadline_seconds: Option<u64>,
    ) -> Result<PlacedOrder, BuyerError> {
        let allowed: Vec<String> = listing.templates.iter().map(|(t, _)| t.clone()).collect();
        query
            .validate(&listing.parsed_schema()?, &allowed)
            .map_err(BuyerError::QueryRefused)?;
        let (pbs_estimate, deadline_seconds, config) =
            self.timing(listing, query, deadline_seconds).await?;
        if !listing.active {
            return Err(BuyerError::Dataset {
                id: listing.id,
                reason: "it is not taking orders".into(),
            });
        }
        let market = self.market();
        let template_hash = B256::from(template::template_hash(query.template()));
        let price = self
            .client
            .view(
                "priceOf",
                &self
                    .registry()
                    .priceOf(U256::from(listing.id), template_hash),
            )
            .await?;
        let fee = config.worker_fee;
        // The parameters first: a worker must find them as soon as the order exists.
        let block = params_block(query)?;
        self.gateways.put_block(&block).await?;
        let delivery = DeliveryKey::generate();
        let keys = self.keys_dir();
        std::fs::create_dir_all(&keys).map_err(|source| BuyerError::Io {
            path: keys.clone(),
            source,
        })?;
        let head = self
            .client
            .provider()
            .get_block(alloy::eips::BlockId::latest())
            .await
            .map_err(|e| ChainError::Local {
                what: "reading the head block".into(),
                message: e.to_string(),
            })?
            .ok_or_else(|| ChainError::Local {
                what: "reading the head block".into(),
                message: "the node has no head block".into(),
            })?;
        let place = market
            .placeOrder(
                U256::from(listing.id),
                template_hash,
                B256::from(query.params_hash()),
                Bytes::copy_from_slice(&delivery.public_bytes()),
                head.header.timestamp + deadline_seconds,
                pbs_estimate,
                epsilon.0,
            )
            .value(price + fee)
            .from(self.client.address());
        // Simulate first: a refusal (wrong price, a deadline out of range, …) is reported
        // before paying.
        self.client
            .view("placeOrder", &place)
            .await
            .map_err(BuyerError::OrderRefused)?;
        // The key is saved before the money moves, under the parameters' CID; it is renamed to
        // the order id once the receipt names it.
        let pending = keys.join(format!("pending-{}.key", block.cid()));
        delivery.save(&pending)?;
        let receipt = self
            .client
            .send("placeOrder", place.into_transaction_request())
            .await?;
        let order_id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| OrderPlaced::decode_log_data(log.data()).ok())
            .map(|placed| placed.orderId)
            .ok_or_else(|| ChainError::Local {
                what: "placeOrder".into(),
                message: "the receipt has no OrderPlaced event".into(),
            })?;
        let key_path = self.delivery_key_path(order_id);
        std::fs::rename(&pending, &key_path).map_err(|source| BuyerError::Io {
            path: key_path.clone(),
            source,
        })?;
        Ok(PlacedOrder {
            order_id,
            paid: price + fee,
            price,
            params_cid: block.cid().to_string(),
            pbs_estimate,
            epsilon: epsilon.as_f64(),
            deadline: head.header.timestamp + deadline_seconds,
            delivery_key: key_path,
            tx: receipt.transaction_hash,
        })
    }

    /// The order's state, and its table once delivered (fetched, verified, opened).
    ///
    /// # Errors
    /// [`BuyerError`]: an unknown order, a delivery that cannot be fetched or opened (a
    /// missing key file: the order is another buyer's, or was placed from another data
    /// directory).
    pub async fn fetch_result(&self, order_id: U256) -> Result<OrderResult, BuyerError> {
        let view = self.protocol();
        let order = view.order(order_id).await?;
        let work = view.order_work(order_id).await?;
        let privacy = view.privacy_budget(order.dataset_id).await?;
        let mut out = OrderResult {
            order_id,
            status: order.status,
            dataset_id: order.dataset_id,
            epsilon: order.epsilon.as_f64(),
            privacy,
            worker: work.worker,
            result_cid: work.result().ok().flatten().map(|c| c.to_string()),
            result_hash: (work.result_hash != B256::ZERO).then_some(work.result_hash),
            delivery_cid: None,
            table: None,
        };
        if !matches!(order.status, OrderStatus::Settled | OrderStatus::Failed) {
            return Ok(out);
        }
        let invalid = |reason: String| BuyerError::Order { order_id, reason };
        let Some(delivery) = work
            .delivery()
            .map_err(|e| invalid(format!("the delivery CID does not parse: {e}")))?
        else {
            return Ok(out);
        };
        self.gateways
            .local_or_fetch_dag(&delivery, &self.store, true)
            .await?;
        let sealed = read_file(&self.store, &delivery, MAX_DELIVERY_BYTES)?;
        let key = DeliveryKey::load(&self.delivery_key_path(order_id))?;
        let context = datacloud_delivery::context(
            self.client.chain_id(),
            &self.deployments.query_market.0.0,
            &order_id.to_be_bytes::<32>(),
            &work.result_hash.0,
        );
        let opened = key.open(&context, &sealed)?;
        out.table = Some(
            serde_json::from_slice(&opened)
                .map_err(|e| invalid(format!("the delivered table does not parse: {e}")))?,
        );
        out.delivery_cid = Some(delivery.to_string());
        Ok(out)
    }

    /// [`Buyer::fetch_result`] once the order is delivered or refunded.
    ///
    /// # Errors
    /// [`BuyerError::StillWaiting`] after `timeout`; as [`Buyer::fetch_result`].
    pub async fn wait_result(
        &self,
        order_id: U256,
        timeout: Duration,
    ) -> Result<OrderResult, BuyerError> {
        let started = std::time::Instant::now();
        loop {
            let result = self.fetch_result(order_id).await?;
            if result.table.is_some() || result.status.is_refunded() {
                return Ok(result);
            }
            if started.elapsed() > timeout {
                return Err(BuyerError::StillWaiting {
                    order_id,
                    status: result.status,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Closes an unfinished order: after its deadline, or once its seller has left a computed
    /// result undelivered past the delivery window (then the seller's stake also pays the
    /// order's price to the receipt's owner, at the registry). Its escrow is credited to the
    /// receipt's owner (`withdraw` pays it out), less the fee of a worker that computed it.
    /// Anyone may close such an order, so the caller need not own the receipt.
    ///
    /// # Errors
    /// [`BuyerError::Chain`], a revert saying why the market refuses.
    pub async fn refund(&self, order_id: U256) -> Result<Refund, BuyerError> {
        let receipt = self
            .client
            .send(
                "refund",
                self.market()
                    .refund(order_id)
                    .from(self.client.address())
                    .into_transaction_request(),
            )
            .await?;
        let refunded = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| OrderRefunded::decode_log_data(log.data()).ok())
            .ok_or_else(|| ChainError::Local {
                what: "refund".into(),
                message: "the receipt has no OrderRefunded event".into(),
            })?;
        Ok(Refund {
            order_id,
            credited: refunded.amount,
            to: refunded.to,
            reason: match refunded.reason {
                2 => RefundReason::Refused,
                3 => RefundReason::Undelivered,
                _ => RefundReason::Expired,
            },
            penalty: refunded.penalty,
            tx: receipt.transaction_hash,
        })
    }
}

/// A dataset on offer.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// On-chain id.
    pub id: u64,
    /// Display name (from the manifest).
    pub name: String,
    /// Description.
    pub description: String,
    /// The seller.
    pub seller: Address,
    /// The package root.
    pub manifest_cid: String,
    /// The Filecoin piece.
    pub piece_cid: String,
    /// Rows.
    pub rows: u64,
    /// Templates and their prices (wei).
    pub templates: Vec<(String, String)>,
    /// PDP health.
    pub health: Health,
    /// Block of the last accepted proof (0: never).
    pub last_proof_block: u64,
    /// Whether it takes orders.
    pub active: bool,
    /// The schema (TOML).
    pub schema: String,
    /// The seller's sample statistics (differentially private), when published.
    pub sample: Option<SampleStatistics>,
    /// The dataset's privacy budget: what the sample statistics and every order spent of it,
    /// and what is left for new orders (every buyer together).
    pub privacy: PrivacyBudget,
    /// The whole manifest.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
}

impl Listing {
    /// The published schema, parsed.
    ///
    /// # Errors
    /// [`BuyerError::Dataset`] when it does not parse.
    pub fn parsed_schema(&self) -> Result<Schema, BuyerError> {
        Schema::from_toml(&self.schema).map_err(|e| BuyerError::Dataset {
            id: self.id,
            reason: format!("its published schema does not parse: {e}"),
        })
    }
}

/// A placed order.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedOrder {
    /// The order (and receipt token) id.
    pub order_id: U256,
    /// Paid into escrow (wei).
    pub paid: U256,
    /// The dataset's price for the template (wei).
    pub price: U256,
    /// The parameters' CID (keccak-256 of the canonical parameters: the order's paramsHash).
    pub params_cid: String,
    /// The plan's estimated bootstraps, recorded with the order (it sets the claim window).
    pub pbs_estimate: u64,
    /// The ε the order spends of the dataset's privacy budget (the result's noise).
    pub epsilon: f64,
    /// The block timestamp after which the order can be refunded.
    pub deadline: u64,
    /// The delivery key file.
    pub delivery_key: PathBuf,
    /// The transaction.
    pub tx: B256,
}

/// What a buyer learns about an order.
#[derive(Debug, Clone, Serialize)]
pub struct OrderResult {
    /// The order.
    pub order_id: U256,
    /// Its status.
    pub status: OrderStatus,
    /// The dataset it asks.
    pub dataset_id: U256,
    /// The ε it spends of the dataset's privacy budget.
    pub epsilon: f64,
    /// The dataset's privacy budget now (what is left for every buyer together).
    pub privacy: PrivacyBudget,
    /// The worker that computed it.
    pub worker: Option<Address>,
    /// The attested encrypted result.
    pub result_cid: Option<String>,
    /// Its keccak-256, as attested.
    pub result_hash: Option<B256>,
    /// The sealed table.
    pub delivery_cid: Option<String>,
    /// The table, opened with the delivery key.
    pub table: Option<ResultTable>,
}

/// Why an order was refunded (`OrderRefunded.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// Its deadline passed.
    Expired,
    /// Its seller refused it.
    Refused,
    /// Its seller left the computed result undelivered past the delivery window.
    Undelivered,
}

/// A refunded order.
#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    /// The order.
    pub order_id: U256,
    /// The escrow credited (less the fee of a worker that computed the result).
    pub credited: U256,
    /// To whom: the receipt's owner.
    pub to: Address,
    /// Why the market let it be refunded.
    pub reason: RefundReason,
    /// What the seller's stake paid the receipt's owner for a missed delivery (at the
    /// registry).
    pub penalty: U256,
    /// The transaction.
    pub tx: B256,
}
