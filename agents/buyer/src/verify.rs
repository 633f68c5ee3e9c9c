//! [`Buyer::verify`]: every link of an order's evidence, checked from the chain and content
//! addresses alone, in the order each depends on the one before:
//!
//! order → manifest → params → plan → result → attestation → delivery → signature
//!
//! - **order**: the market's record (dataset, template, parameters hash, manifest hash, status);
//! - **manifest**: the dataset's manifest CID hashes to the order's `manifestHash`, and the
//!   manifest is fetched with every block verified;
//! - **params**: the parameters block named by the order's `paramsHash` is fetched (its CID is
//!   that hash) and is a query of the order's template;
//! - **plan**: the planner binds that query to the manifest's layout (the plan any party
//!   recomputes from the order and the manifest);
//! - **result**: the attested result's bytes hash to the attested `resultHash` and have the
//!   plan's shape;
//! - **attestation**: the worker's EIP-712 signature over the order's terms and that hash
//!   recovers the worker that held the claim;
//! - **delivery**: the sealed table opens with this buyer's key, whose HPKE context binds the
//!   chain, the market, the order and the result hash;
//! - **signature**: the seller's EIP-712 signature in `ResultDelivered` over the order, the
//!   result hash and the delivery CID recovers the dataset's seller.
//!
//! The first link that fails stops the walk (the later ones depend on it); a link not reached
//! yet (no result, no delivery) is reported pending.

use alloy::primitives::{B256, Signature, U256, keccak256};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent as _;
use datacloud_agent_core::bindings::query_market::IQueryMarket::ResultDelivered;
use datacloud_agent_core::{OrderStatus, delivery_digest};
use datacloud_delivery::DeliveryKey;
use datacloud_fhe_query::{EncryptedResult, ResultTable};
use datacloud_package::{fetch_manifest, params_cid, query_from_params, read_file};
use datacloud_query::plan;
use serde::Serialize;

use crate::{Buyer, BuyerError, MAX_DELIVERY_BYTES};

/// Largest encrypted result read (as the seller reads it).
pub const MAX_RESULT_BYTES: u64 = 256 * 1024 * 1024;

/// How a link of the evidence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Checked and holds.
    Ok,
    /// Checked and does not hold: the evidence is broken here.
    Failed,
    /// Not there yet (no result computed, nothing delivered).
    Pending,
}

/// One link of an order's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// Which link (`order`, `manifest`, `params`, `plan`, `result`, `attestation`, `delivery`,
    /// `signature`).
    pub name: &'static str,
    /// How it stands.
    pub state: LinkState,
    /// What was checked, or why it fails.
    pub detail: String,
}

/// The evidence of an order, link by link.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The order.
    pub order_id: U256,
    /// Its status.
    pub status: OrderStatus,
    /// The links walked, in order; the walk stops at the first that fails or is pending.
    pub links: Vec<Link>,
    /// The opened table, when the delivery link holds.
    pub table: Option<ResultTable>,
}

impl Verification {
    /// The first link that fails, if any.
    #[must_use]
    pub fn failure(&self) -> Option<&Link> {
        self.links.iter().find(|l| l.state == LinkState::Failed)
    }

    /// Whether every link holds, up to the delivery's signature.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.links.len() == LINKS.len() && self.links.iter().all(|l| l.state == LinkState::Ok)
    }
}

/// Every link, in the order the walk checks them.
pub const LINKS: [&str; 8] = [
    "order",
    "manifest",
    "params",
    "plan",
    "result",
    "attestation",
    "delivery",
    "signature",
];

/// The walk so far: each check pushes its link and says whether to go on.
struct Walk {
    links: Vec<Link>,
}

impl Walk {
    fn ok(&mut self, name: &'static str, detail: String) {
        self.links.push(Link {
            name,
            state: LinkState::Ok,
            detail,
        });
    }

    fn stop(&mut self, name: &'static str, state: LinkState, detail: String) {
        self.links.push(Link {
            name,
            state,
            detail,
        });
    }
}

/// A link's own failure (the walk stops there) or the buyer's (the node or store failed).
enum Broken {
    Link(&'static str, LinkState, String),
    Buyer(BuyerError),
}

impl<E: Into<BuyerError>> From<E> for Broken {
    fn from(e: E) -> Self {
        Self::Buyer(e.into())
    }
}

fn failed(name: &'static str, detail: impl Into<String>) -> Broken {
    Broken::Link(name, LinkState::Failed, detail.into())
}

fn pending(name: &'static str, detail: impl Into<String>) -> Broken {
    Broken::Link(name, LinkState::Pending, detail.into())
}

impl Buyer {
    /// Checks every link of order `order_id`'s evidence (see the module documentation).
    ///
    /// # Errors
    /// [`BuyerError`] when the order does not exist or the chain, the store or the gateways
    /// fail; a link that does not hold is a [`LinkState::Failed`] link, not an error.
    pub async fn verify(&self, order_id: U256) -> Result<Verification, BuyerError> {
        let order = self.protocol().order(order_id).await?;
        let mut walk = Walk { links: Vec::new() };
        let mut table = None;
        match self.walk(order_id, &order, &mut walk, &mut table).await {
            Ok(()) => {}
            Err(Broken::Link(name, state, detail)) => walk.stop(name, state, detail),
            Err(Broken::Buyer(e)) => return Err(e),
        }
        Ok(Verification {
            order_id,
            status: order.status,
            links: walk.links,
            table,
        })
    }

    #[allow(clippy::too_many_lines)] // one section per link, in the order they depend on
    async fn walk(
        &self,
        order_id: U256,
        order: &datacloud_agent_core::Order,
        walk: &mut Walk,
        table: &mut Option<ResultTable>,
    ) -> Result<(), Broken> {
        let view = self.protocol();
        let market = self.deployments.query_market;
        let chain_id = self.client.chain_id();
        walk.ok(
            "order",
            format!(
                "dataset #{}, template {}, {} (deadline {})",
                order.dataset_id, order.template_hash, order.status, order.deadline
            ),
        );

        let dataset = view.dataset(order.dataset_id).await?;
        let root = dataset
            .manifest()
            .map_err(|e| failed("manifest", format!("the dataset's manifest CID: {e}")))?;
        if keccak256(root.to_bytes()) != order.manifest_hash {
            return Err(failed(
                "manifest",
                format!(
                    "the dataset's manifest {root} does not hash to the order's manifestHash {}",
                    order.manifest_hash
                ),
            ));
        }
        let manifest = fetch_manifest(&self.gateways, &self.store, &root)
            .await
            .map_err(|e| failed("manifest", format!("fetching {root}: {e}")))?;
        walk.ok(
            "manifest",
            format!(
                "{root} hashes to the order's manifestHash; {} rows, every block verified",
                manifest.layout.rows
            ),
        );

        let params = params_cid(order.params_hash.0);
        let block = self
            .gateways
            .local_or_fetch_block(&params, &self.store)
            .await
            .map_err(|e| failed("params", format!("{params}: {e}")))?;
        let query = query_from_params(block.data(), order.params_hash.0, order.template_hash.0)
            .map_err(|e| failed("params", format!("{params}: {e}")))?;
        walk.ok(
            "params",
            format!(
                "{params} (the order's paramsHash): a `{}` query",
                query.template()
            ),
        );

        let chosen = plan(&query, &manifest.layout).map_err(|e| {
            failed(
                "plan",
                format!("the query does not plan on the manifest: {e}"),
            )
        })?;
        walk.ok(
            "plan",
            format!("{:?}, {} PBS estimated", chosen.kind, chosen.pbs),
        );

        let work = view.order_work(order_id).await?;
        let result = work
            .result()
            .map_err(|e| failed("result", format!("the result CID on chain: {e}")))?
            .ok_or_else(|| pending("result", "no result submitted yet"))?;
        self.gateways
            .local_or_fetch_dag(&result, &self.store, true)
            .await
            .map_err(|e| failed("result", format!("{result}: {e}")))?;
        let bytes = read_file(&self.store, &result, MAX_RESULT_BYTES)
            .map_err(|e| failed("result", format!("{result}: {e}")))?;
        let hash = keccak256(&bytes);
        if hash != work.result_hash {
            return Err(failed(
                "result",
                format!(
                    "{result} hashes to {hash}, not to the attested {}",
                    work.result_hash
                ),
            ));
        }
        EncryptedResult::from_bytes(&bytes, &chosen).map_err(|e| {
            failed(
                "result",
                format!("{result} is not an answer to the plan: {e}"),
            )
        })?;
        walk.ok(
            "result",
            format!(
                "{result}: {} bytes hashing to the attested {hash}, the plan's shape",
                bytes.len()
            ),
        );

        let worker = work
            .worker
            .ok_or_else(|| failed("attestation", "a result with no worker"))?;
        let signature = self
            .client
            .view(
                "attestationSignature",
                &self.market().attestationSignature(order_id),
            )
            .await?;
        let digest = order.attestation_digest(order_id, chain_id, market, work.result_hash);
        let signer = recover(&signature, digest)
            .map_err(|e| failed("attestation", format!("the worker's signature: {e}")))?;
        if signer != worker {
            return Err(failed(
                "attestation",
                format!("signed by {signer}, not by the order's worker {worker}"),
            ));
        }
        walk.ok(
            "attestation",
            format!("worker {worker} signed the order's terms and the result hash (EIP-712)"),
        );

        let delivery = work
            .delivery()
            .map_err(|e| failed("delivery", format!("the delivery CID on chain: {e}")))?
            .ok_or_else(|| {
                pending(
                    "delivery",
                    if order.status.is_refunded() {
                        "nothing delivered: the order was refunded".to_owned()
                    } else {
                        format!("not delivered yet ({})", order.status)
                    },
                )
            })?;
        self.gateways
            .local_or_fetch_dag(&delivery, &self.store, true)
            .await
            .map_err(|e| failed("delivery", format!("{delivery}: {e}")))?;
        let sealed = read_file(&self.store, &delivery, MAX_DELIVERY_BYTES)
            .map_err(|e| failed("delivery", format!("{delivery}: {e}")))?;
        let key_path = self.delivery_key_path(order_id);
        let key = DeliveryKey::load(&key_path).map_err(|e| {
            failed(
                "delivery",
                format!(
                    "no delivery key for this order here ({e}): it is another buyer's, or was placed from another data directory"
                ),
            )
        })?;
        let context = datacloud_delivery::context(
            chain_id,
            &market.0.0,
            &order_id.to_be_bytes::<32>(),
            &work.result_hash.0,
        );
        let opened = key.open(&context, &sealed).map_err(|e| {
            failed(
                "delivery",
                format!("{delivery} does not open as this order's result: {e}"),
            )
        })?;
        let parsed: ResultTable = serde_json::from_slice(&opened).map_err(|e| {
            failed(
                "delivery",
                format!("{delivery} opens to something that is not a table: {e}"),
            )
        })?;
        *table = Some(parsed);
        walk.ok(
            "delivery",
            format!(
                "{delivery} opens with this buyer's key, sealed for this chain, market, order and result"
            ),
        );

        let filter = Filter::new()
            .address(market)
            .event_signature(ResultDelivered::SIGNATURE_HASH)
            .topic1(B256::from(order_id))
            .from_block(self.deployments.deploy_block);
        let logs = self.client.logs(&filter).await?;
        let logged = logs
            .iter()
            .find_map(|log| ResultDelivered::decode_log_data(log.data()).ok())
            .ok_or_else(|| failed("signature", "no ResultDelivered event for this order"))?;
        if logged.deliveryCid != work.delivery_cid {
            return Err(failed(
                "signature",
                "the ResultDelivered event names another delivery than the order's",
            ));
        }
        let digest = delivery_digest(
            chain_id,
            market,
            order_id,
            work.result_hash,
            &work.delivery_cid,
        );
        let signer = recover(&logged.signature, digest)
            .map_err(|e| failed("signature", format!("the seller's signature: {e}")))?;
        if signer != order.seller {
            return Err(failed(
                "signature",
                format!("signed by {signer}, not by the seller {}", order.seller),
            ));
        }
        walk.ok(
            "signature",
            format!("seller {signer} signed this delivery as its answer to this result (EIP-712)"),
        );
        Ok(())
    }
}

/// The signer of `digest` from a 65-byte `r ‖ s ‖ v` signature.
fn recover(signature: &[u8], digest: B256) -> Result<alloy::primitives::Address, String> {
    Signature::try_from(signature)
        .map_err(|e| e.to_string())?
        .recover_address_from_prehash(&digest)
        .map_err(|e| e.to_string())
}
