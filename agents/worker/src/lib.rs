//! # datacloud-worker — the compute worker
//!
//! [`Worker`] is an [`EventHandler`]: for every `OrderPlaced` it
//! 1. reads the order and its dataset from the chain, fetches the dataset's manifest and the
//!    order's parameters through the configured gateways (every block verified against its CID;
//!    the parameters against the order's `paramsHash`), plans the query on the manifest's layout
//!    and fetches only the package entries the plan reads (the totals, the cube, or the chunks) —
//!    an order it cannot serve is left for others, unclaimed;
//! 2. claims it (one transaction, ever, through the action journal);
//! 3. evaluates on ciphertexts chunk by chunk, writing each chunk's encrypted partial result to
//!    `<work_dir>/order-<id>/` atomically, so a worker killed mid-evaluation resumes where it
//!    stopped;
//! 4. stores the encrypted result by CID, publishes its blocks to the first gateway node that
//!    accepts them (Kubo `block/put`), signs the market's EIP-712 attestation digest and submits
//!    (once, through the journal).
//!
//! The follower only moves its cursor past an order once this handler returned, so a restart
//! after `kill -9` delivers the same `OrderPlaced` again: the journal turns the claim into a
//! no-op and the checkpoints skip the finished chunks — the order completes exactly once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::providers::Provider as _;
use alloy::signers::{Signer as _, local::PrivateKeySigner};
use cid::Cid;
use datacloud_agent_core::bindings::query_market::IQueryMarket::IQueryMarketEvents;
use datacloud_agent_core::bindings::{IDisputeGame, IQueryMarket};
use datacloud_agent_core::follower::HandlerError;
use datacloud_agent_core::{
    ActionKey, Agent, Attempt, ChainEvent, ContractEvent, EventHandler, Order, OrderRetry,
    OrderStatus,
};
use datacloud_fhe_query::{EncryptedResult, combine, complete, evaluate};
use datacloud_package::{
    Package, entries_for, fetch_entries, fetch_manifest, params_cid, query_from_params,
};
use datacloud_query::{Plan, PlanKind, plan};
use datacloud_store::gateway::Client as GatewayClient;
use datacloud_store::{Block, Blockstore};

/// `DisputeResolved.outcome` of an upheld result (the market's `outcome::UPHELD`).
const UPHELD: u8 = 1;

/// Why a worker step failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] datacloud_agent_core::ChainError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] datacloud_agent_core::JournalError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] datacloud_store::StoreError),
    /// A gateway failed or sent bad data.
    #[error(transparent)]
    Gateway(Box<datacloud_store::gateway::ClientError>),
    /// The dataset package or parameters are unusable.
    #[error(transparent)]
    Dataset(#[from] datacloud_package::PackageError),
    /// Evaluation failed.
    #[error(transparent)]
    Layout(#[from] datacloud_fhe_query::LayoutError),
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {source}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Signing the attestation failed.
    #[error("signing the attestation: {0}")]
    Sign(String),
    /// A node request outside the retrying client failed.
    #[error("JSON-RPC: {0}")]
    Rpc(String),
    /// A blocking task panicked.
    #[error("{0}")]
    Task(String),
    /// The chain holds something this worker cannot read.
    #[error("{0}")]
    Invalid(String),
    /// A transaction reverted.
    #[error("{0} reverted")]
    Reverted(String),
}

impl From<datacloud_store::gateway::ClientError> for WorkerError {
    fn from(e: datacloud_store::gateway::ClientError) -> Self {
        Self::Gateway(Box::new(e))
    }
}

/// What the worker does with an order it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Evaluated and submitted (or found already submitted by this worker).
    Submitted {
        /// The result's CID.
        result_cid: Cid,
        /// Its keccak-256, attested.
        result_hash: B256,
        /// The plan used.
        plan: String,
    },
    /// Left alone, with the reason.
    Skipped(String),
}

/// Worker settings beyond the agent configuration.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Where partial results are checkpointed.
    pub work_dir: PathBuf,
    /// Show a progress bar while evaluating.
    pub progress: bool,
    /// How often one order is tried before it is given up.
    pub retry: OrderRetry,
}

/// The worker: an [`EventHandler`] over a connected [`Agent`].
#[derive(Clone)]
pub struct Worker {
    agent: Agent,
    store: Arc<Blockstore>,
    gateways: GatewayClient,
    signer: PrivateKeySigner,
    options: WorkerOptions,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("address", &self.agent.client.address())
            .field("work_dir", &self.options.work_dir)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker for `agent`, keeping fetched datasets and results in `store`, fetching from
    /// and publishing to `gateways`.
    #[must_use]
    pub fn new(
        agent: &Agent,
        store: Arc<Blockstore>,
        gateways: GatewayClient,
        options: WorkerOptions,
    ) -> Self {
        Self {
            signer: agent.config.signer(),
            agent: agent.clone(),
            store,
            gateways,
            options,
        }
    }

    fn market(
        &self,
    ) -> IQueryMarket::IQueryMarketInstance<impl alloy::providers::Provider + Clone> {
        IQueryMarket::new(
            self.agent.deployments.query_market,
            self.agent.client.provider(),
        )
    }

    /// Posts the market's minimum bond unless this worker already has it.
    ///
    /// # Errors
    /// [`WorkerError`] from the chain.
    pub async fn ensure_registered(&self) -> Result<U256, WorkerError> {
        let client = &self.agent.client;
        let market = self.market();
        let min = self.agent.protocol().market_config().await?.min_worker_bond;
        let bond = client
            .view("workerBond", &market.workerBond(client.address()))
            .await?;
        if bond >= min {
            return Ok(bond);
        }
        let missing = min - bond;
        tracing::info!(%missing, "registering as a worker with a bond");
        client
            .send(
                "registerWorker",
                market
                    .registerWorker()
                    .value(missing)
                    .from(client.address())
                    .into_transaction_request(),
            )
            .await?;
        Ok(min)
    }

    /// Serves order `order_id`: claim, fetch, evaluate with checkpoints, attest, submit.
    ///
    /// # Errors
    /// [`WorkerError`]; the follower then retries the event on the next run.
    #[allow(clippy::too_many_lines)] // the order's life, step by step
    pub async fn serve(&self, order_id: U256) -> Result<Outcome, WorkerError> {
        let client = &self.agent.client;
        let me = client.address();
        let view = self.agent.protocol();
        let order = view.order(order_id).await?;
        let work = view.order_work(order_id).await?;
        let head = client
            .provider()
            .get_block(alloy::eips::BlockId::latest())
            .await
            .map_err(|e| WorkerError::Rpc(format!("reading the head block: {e}")))?;
        if head.is_some_and(|b| b.header.timestamp >= order.deadline)
            && order.status == OrderStatus::Open
        {
            return Ok(Outcome::Skipped("the order's deadline has passed".into()));
        }
        let mine = work.worker == Some(me);
        match order.status {
            OrderStatus::Open => {}
            OrderStatus::Claimed if mine => {}
            _ if mine && !work.result_cid.is_empty() => {
                let result_cid = work
                    .result()
                    .map_err(|e| WorkerError::Invalid(format!("own result CID unreadable: {e}")))?
                    .ok_or_else(|| WorkerError::Invalid("own result CID missing".into()))?;
                return Ok(Outcome::Submitted {
                    result_cid,
                    result_hash: work.result_hash,
                    plan: String::new(),
                });
            }
            other => return Ok(Outcome::Skipped(format!("order status {other}, not open"))),
        }

        // The market refuses a party to the order as its worker; asking would only cost gas.
        if order.status == OrderStatus::Open {
            let holder = client
                .view("ownerOf", &self.market().ownerOf(order_id))
                .await?;
            if me == order.seller || me == holder {
                return Ok(Outcome::Skipped(
                    "this worker is a party to the order (its seller or buyer)".into(),
                ));
            }
        }

        // What to compute, checked before claiming: an order this worker cannot serve stays
        // open for others.
        let (chosen, package) = match self.prepare(order_id, &order, Purpose::Claim).await? {
            Prepared::Ready(ready) => *ready,
            Prepared::Skip(reason) => return Ok(Outcome::Skipped(reason)),
        };
        // Claim, once.
        let market = self.market();
        if order.status == OrderStatus::Open {
            let claim = self
                .agent
                .journal
                .perform(
                    client,
                    &ActionKey::new(order_id, "claim"),
                    market
                        .claimOrder(order_id)
                        .from(me)
                        .into_transaction_request(),
                )
                .await?;
            if !claim.success {
                return Ok(Outcome::Skipped(
                    "the claim reverted (claimed by another worker?)".into(),
                ));
            }
            tracing::info!(%order_id, plan = chosen.kind.name(), complement = chosen.complement, "claimed");
        }

        // Evaluate with checkpoints.
        let dir = self.options.work_dir.join(format!("order-{order_id}"));
        let (result_cid, result_hash) = self.compute(order_id, &chosen, &package, &dir).await?;

        // Attest and submit, once. The digest is computed here from the order's terms, not
        // asked of the node (a node could hand over any digest to sign).
        let digest = order.attestation_digest(
            order_id,
            client.chain_id(),
            self.agent.deployments.query_market,
            result_hash,
        );
        let signature = self
            .signer
            .sign_hash(&digest)
            .await
            .map_err(|e| WorkerError::Sign(e.to_string()))?;
        // r ‖ s ‖ v with v = 27 + y-parity, as the market's ecrecover expects.
        let sig = signature.as_bytes().to_vec();
        let submitted = self
            .agent
            .journal
            .perform(
                client,
                &ActionKey::new(order_id, "submit"),
                market
                    .submitResult(
                        order_id,
                        Bytes::from(result_cid.to_bytes()),
                        result_hash,
                        Bytes::from(sig),
                    )
                    .from(me)
                    .into_transaction_request(),
            )
            .await?;
        if !submitted.success {
            return Err(WorkerError::Reverted(format!(
                "submitResult of order {order_id}"
            )));
        }
        remove_checkpoints(&dir);
        tracing::info!(%order_id, %result_cid, "result submitted");
        Ok(Outcome::Submitted {
            result_cid,
            result_hash,
            plan: chosen.kind.name().into(),
        })
    }

    /// What order `order_id` computes: its dataset's manifest, its parameters (checked against
    /// the templates), the plan, and the package entries the plan reads, fetched and verified.
    /// An order this worker cannot compute is [`Prepared::Skip`]ped with the reason; so is one
    /// to claim whose recorded estimate is below its plan's, before anything is downloaded.
    async fn prepare(
        &self,
        order_id: U256,
        order: &Order,
        purpose: Purpose,
    ) -> Result<Prepared, WorkerError> {
        let view = self.agent.protocol();
        let dataset = view.dataset(order.dataset_id).await?;
        let Ok(root) = dataset.manifest() else {
            return Ok(Prepared::Skip(
                "the dataset's manifest CID does not parse".into(),
            ));
        };
        // The manifest first: the plan says which entries to fetch (the totals or the cube alone
        // are a small part of a package; scans need every chunk).
        let manifest = match fetch_manifest(&self.gateways, &self.store, &root).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "cannot fetch the dataset's manifest; not claiming");
                return Ok(Prepared::Skip(format!("dataset unavailable: {e}")));
            }
        };
        let query = match self
            .fetch_params(order.params_hash.0, order.template_hash.0)
            .await
        {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "cannot get the order's parameters; not claiming");
                return Ok(Prepared::Skip(format!("parameters unavailable: {e}")));
            }
        };
        let schema = manifest
            .parsed_schema()
            .map_err(datacloud_package::PackageError::Params)?;
        if let Err(e) = query.validate(&schema, &manifest.templates) {
            return Ok(Prepared::Skip(format!("query refused: {e}")));
        }
        let chosen = match plan(&query, &manifest.layout) {
            Ok(p) => p,
            Err(e) => return Ok(Prepared::Skip(format!("no plan: {e}"))),
        };
        // The claim lasts as long as the order's estimate says: an understated one would expire
        // mid-evaluation and cost this worker part of its bond. (A verifier drawn for such an
        // order computes anyway: skipping would cost it its assignment's forfeit for sure.)
        if purpose == Purpose::Claim && order.pbs_estimate < chosen.pbs {
            return Ok(Prepared::Skip(format!(
                "the order's PBS estimate {} is below its plan's {}: its claim would lapse mid-evaluation",
                order.pbs_estimate, chosen.pbs
            )));
        }
        let package = match self
            .fetch_package(root, &entries_for(&chosen, &manifest.layout))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "cannot fetch the dataset; not claiming");
                return Ok(Prepared::Skip(format!("dataset unavailable: {e}")));
            }
        };

        Ok(Prepared::Ready(Box::new((chosen, package))))
    }

    /// Evaluates `chosen` on `package` with checkpoints in `dir`, then stores and publishes the
    /// result: its CID and keccak-256. Deterministic: any worker computing the same order gets
    /// the same bytes, which is what a dispute's verifier relies on.
    async fn compute(
        &self,
        order_id: U256,
        chosen: &Plan,
        package: &Package,
        dir: &Path,
    ) -> Result<(Cid, B256), WorkerError> {
        let result = self.evaluate(order_id, chosen, package, dir)?;
        let result_bytes = result.to_bytes()?;
        let result_hash = keccak256(&result_bytes);
        let result_cid = self.publish_result(&result_bytes).await?;
        Ok((result_cid, result_hash))
    }

    /// Verifies order `order_id` if the market drew this worker for its dispute: recomputes the
    /// order as its worker should have, publishes the result (so an upheld result is available
    /// from this worker too) and answers `submitVerdict` with its CID and hash, once per round.
    ///
    /// # Errors
    /// [`WorkerError`]; the follower then retries the event on the next run.
    pub async fn verify(&self, order_id: U256) -> Result<Outcome, WorkerError> {
        let client = &self.agent.client;
        let me = client.address();
        let view = self.agent.protocol();
        let dispute = view.dispute(order_id).await?;
        let order = view.order(order_id).await?;
        if order.status != OrderStatus::Disputed || dispute.verifier != Some(me) {
            return Ok(Outcome::Skipped(
                "this worker is not the order's verifier now".into(),
            ));
        }
        let (chosen, package) = match self.prepare(order_id, &order, Purpose::Verify).await? {
            Prepared::Ready(ready) => *ready,
            // The verifier's assignment lapses and another is drawn: that costs this worker an
            // eighth of the minimum bond, less than a wrong verdict would.
            Prepared::Skip(reason) => return Ok(Outcome::Skipped(reason)),
        };
        let dir = self.options.work_dir.join(format!("verify-{order_id}"));
        let (result_cid, result_hash) = self.compute(order_id, &chosen, &package, &dir).await?;
        let answered = self
            .agent
            .journal
            .perform(
                client,
                &ActionKey::new(
                    order_id,
                    format!("verdict-{}-{}", dispute.round, dispute.deadline),
                ),
                IDisputeGame::new(self.agent.deployments.query_market, client.provider())
                    .submitVerdict(order_id, Bytes::from(result_cid.to_bytes()), result_hash)
                    .from(me)
                    .into_transaction_request(),
            )
            .await?;
        if !answered.success {
            return Err(WorkerError::Reverted(format!(
                "submitVerdict of order {order_id}"
            )));
        }
        remove_checkpoints(&dir);
        tracing::info!(%order_id, %result_cid, round = dispute.round, "verdict submitted");
        Ok(Outcome::Submitted {
            result_cid,
            result_hash,
            plan: chosen.kind.name().into(),
        })
    }

    /// Fetches (verified) the package entries `names` the store lacks, and opens the package.
    async fn fetch_package(&self, root: Cid, names: &[String]) -> Result<Package, WorkerError> {
        let bytes = fetch_entries(&self.gateways, &self.store, &root, names).await?;
        if bytes > 0 {
            tracing::info!(%root, entries = names.len(), bytes, "dataset entries fetched and verified");
        }
        let store = self.store.clone();
        Ok(
            tokio::task::spawn_blocking(move || Package::open(store, root))
                .await
                .map_err(|e| WorkerError::Task(format!("reading the package: {e}")))??,
        )
    }

    async fn fetch_params(
        &self,
        params_hash: [u8; 32],
        template_hash: [u8; 32],
    ) -> Result<datacloud_query::Query, WorkerError> {
        let cid = params_cid(params_hash);
        let block = self
            .gateways
            .local_or_fetch_block(&cid, &self.store)
            .await?;
        Ok(query_from_params(block.data(), params_hash, template_hash)?)
    }

    fn evaluate(
        &self,
        order_id: U256,
        chosen: &Plan,
        package: &Package,
        dir: &Path,
    ) -> Result<EncryptedResult, WorkerError> {
        std::fs::create_dir_all(dir).map_err(|source| WorkerError::Checkpoint {
            path: dir.to_path_buf(),
            source,
        })?;
        let key = package.evaluation_key()?;
        let bar = datacloud_agent_core::progress::rows_bar(
            package.manifest.layout.rows,
            "evaluating",
            self.options.progress,
        );
        let chosen = chosen.clone();
        let result = tokio::task::block_in_place(|| -> Result<EncryptedResult, WorkerError> {
            if matches!(chosen.kind, PlanKind::Cube | PlanKind::Totals) {
                let dataset = package.load_for(&chosen)?;
                return Ok(evaluate(&chosen, &dataset, &key, &|n| bar.inc(n))?);
            }
            let mut partials = Vec::with_capacity(package.chunk_count());
            for i in 0..package.chunk_count() {
                let path = dir.join(format!("chunk-{i:05}.partial"));
                let partial = if let Some(done) = read_checkpoint(&path, &chosen)? {
                    done
                } else {
                    {
                        let chunk = package.chunk(i)?;
                        let partial = datacloud_fhe_query::evaluate_chunk(
                            &chosen,
                            &package.manifest.layout,
                            &chunk,
                            &key,
                        )?;
                        let bytes = partial.to_bytes()?;
                        datacloud_agent_core::fs::write_atomic(&path, &bytes).map_err(
                            |source| WorkerError::Checkpoint {
                                path: path.clone(),
                                source,
                            },
                        )?;
                        tracing::debug!(%order_id, chunk = i, "chunk evaluated");
                        partial
                    }
                };
                bar.inc(partial.rows);
                partials.push(partial);
            }
            let combined = combine(&chosen, &partials, &key);
            // A complement scan is subtracted from its base (the totals or the cube).
            match chosen
                .complement_base(&package.manifest.layout)
                .map_err(datacloud_fhe_query::LayoutError::from)?
            {
                Some(base) => Ok(complete(
                    &chosen,
                    combined,
                    &package.load_for(&base)?,
                    &key,
                )?),
                None => Ok(combined),
            }
        })?;
        bar.finish_and_clear();
        Ok(result)
    }

    /// Stores the result (pinned) and publishes its blocks to the first gateway node that takes
    /// them, so the seller can fetch it by CID.
    async fn publish_result(&self, bytes: &[u8]) -> Result<Cid, WorkerError> {
        let mut blocks: Vec<Block> = Vec::new();
        let file =
            datacloud_store::import_reader(bytes, datacloud_store::DEFAULT_CHUNK_SIZE, |b| {
                blocks.push(b);
                Ok::<_, datacloud_store::UnixFsError>(())
            })
            .map_err(datacloud_store::StoreError::from)?;
        self.store.put_many(&blocks)?;
        self.store.pin(&file.root)?;
        for block in &blocks {
            self.gateways.put_block(block).await?;
        }
        Ok(file.root)
    }
}

/// Why [`Worker::prepare`] is asked: to claim the order, or to verify a disputed result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Claim,
    Verify,
}

/// What [`Worker::prepare`] found.
enum Prepared {
    /// The plan and the package it reads (boxed: together they are kilobytes).
    Ready(Box<(Plan, Package)>),
    /// Why this worker cannot compute the order.
    Skip(String),
}

fn remove_checkpoints(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::debug!(dir = %dir.display(), error = %e, "checkpoints not removed");
    }
}

fn read_checkpoint(path: &Path, chosen: &Plan) -> Result<Option<EncryptedResult>, WorkerError> {
    match std::fs::read(path) {
        Ok(bytes) => match EncryptedResult::from_bytes(&bytes, chosen) {
            Ok(partial) => Ok(Some(partial)),
            Err(e) => {
                // Written atomically, so a bad file is not a torn write: recompute it.
                tracing::warn!(path = %path.display(), error = %e, "unreadable checkpoint; recomputing");
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(WorkerError::Checkpoint {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl WorkerError {
    /// A contract refused the transaction: asking again against the same state refuses again
    /// (expired order, claimed by someone else, …).
    #[must_use]
    pub fn is_revert(&self) -> bool {
        matches!(
            self,
            Self::Chain(datacloud_agent_core::ChainError::Reverted { .. })
                | Self::Journal(datacloud_agent_core::JournalError::Chain(
                    datacloud_agent_core::ChainError::Reverted { .. }
                ))
                | Self::Reverted(_)
        )
    }

    /// The failure is the order's own (its dataset, parameters or result unusable; an
    /// evaluation that panicked on its ciphertexts): a bounded number of tries is enough.
    /// Otherwise it is the worker's own node, store or files, retried until they recover.
    #[must_use]
    pub fn is_order_fault(&self) -> bool {
        matches!(
            self,
            Self::Gateway(_)
                | Self::Dataset(_)
                | Self::Layout(_)
                | Self::Invalid(_)
                | Self::Task(_)
        ) || self.is_revert()
    }
}

impl EventHandler for Worker {
    /// Serves every `OrderPlaced`. A refusal by the market leaves the order; a failure that is
    /// the order's own (its dataset or result unusable) is tried [`WorkerOptions::retry`] times,
    /// then given up, so that a poisoned dataset never wedges the worker; a failure of the
    /// worker's own node or files is retried until it recovers or the worker stops (the
    /// follower's cursor stays on the order, so a restart serves it again).
    async fn handle(&mut self, event: &ChainEvent) -> Result<(), HandlerError> {
        let ContractEvent::QueryMarket(market_event) = &event.event else {
            return Ok(());
        };
        let me = self.agent.client.address();
        let (order, verifying) = match market_event {
            IQueryMarketEvents::OrderPlaced(placed) => (placed.orderId, false),
            // A dispute that did not uphold the result reopens the order for another worker.
            IQueryMarketEvents::DisputeResolved(resolved) if resolved.outcome != UPHELD => {
                (resolved.orderId, false)
            }
            IQueryMarketEvents::VerifierAssigned(assigned) if assigned.verifier == me => {
                (assigned.orderId, true)
            }
            _ => return Ok(()),
        };
        let outcome = self
            .options
            .retry
            .run(
                order,
                &self.agent.shutdown,
                WorkerError::is_order_fault,
                || async {
                    let served = if verifying {
                        self.verify(order).await
                    } else {
                        self.serve(order).await
                    };
                    match served {
                        Err(e) if e.is_revert() => {
                            tracing::warn!(%order, error = %e, "the market refused; leaving the order");
                            Ok(Outcome::Skipped(format!("the market refused: {e}")))
                        }
                        other => other,
                    }
                },
            )
            .await;
        match outcome {
            Attempt::Done(Outcome::Submitted { result_cid, .. }) => {
                tracing::info!(%order, %result_cid, "order served");
            }
            Attempt::Done(Outcome::Skipped(reason)) => {
                tracing::info!(%order, %reason, "order skipped");
            }
            Attempt::GaveUp(e) => {
                tracing::error!(%order, error = %e, "order given up");
            }
            Attempt::Stopped(e) => return Err(e.into()),
        }
        Ok(())
    }
}
