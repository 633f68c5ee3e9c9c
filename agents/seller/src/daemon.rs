//! The seller daemon: the proving loop and result delivery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::providers::Provider as _;
use alloy::signers::Signer as _;
use cid::Cid;
use datacloud_agent_core::bindings::proof_manager::IProofManager::IProofManagerEvents;
use datacloud_agent_core::bindings::query_market::IQueryMarket::IQueryMarketEvents;
use datacloud_agent_core::bindings::{IDisputeGame, IProofManager, IQueryMarket};
use datacloud_agent_core::follower::HandlerError;
use datacloud_agent_core::journal::ActionRecord;
use datacloud_agent_core::{
    ActionKey, Agent, Attempt, ChainEvent, ContractEvent, EventHandler, Health, OrderRetry,
    OrderStatus, delivery_digest,
};
use datacloud_fhe_query::{
    Answered, CheckError, DifferencingError, EncryptedResult, Passphrase, Policy, SellerKey,
    load_rows, open_result, release,
};
use datacloud_package::{params_cid, query_from_params, read_file, store_file};
use datacloud_pdp::{PieceProver, challenge_leaf_index};
use datacloud_query::{Table, plan};
use datacloud_store::Blockstore;
use datacloud_store::gateway::Client as GatewayClient;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::{OwnedDataset, SellerBook, SellerError};

/// Longest wait for a dataset's proofs before delivering.
const HEALTHY_WAIT: Duration = Duration::from_mins(3);
/// Largest encrypted result read.
const MAX_RESULT_BYTES: u64 = 256 * 1024 * 1024;

/// Seller settings beyond the agent configuration.
#[derive(Debug, Clone)]
pub struct SellerOptions {
    /// The output policy of every release: its minimum cohort (the ε is each order's).
    pub policy: Policy,
    /// Keep the proof sets alive (off only to show what happens when a seller stops).
    pub prove: bool,
    /// How often the proving loop looks at the chain.
    pub tick: Duration,
    /// The passphrase of sealed client keys.
    pub passphrase: Option<Passphrase>,
    /// How often one order's delivery is tried before it is given up.
    pub retry: OrderRetry,
}

impl Default for SellerOptions {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            prove: true,
            tick: Duration::from_millis(500),
            passphrase: None,
            retry: OrderRetry::default(),
        }
    }
}

/// A proof the seller posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRecord {
    /// The proof set.
    pub set_id: u64,
    /// The challenge epoch answered.
    pub epoch: u64,
    /// Leaves proven.
    pub challenges: usize,
    /// The block it landed in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
}

/// A result the seller delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The order.
    pub order_id: U256,
    /// The worker's result that was decrypted.
    pub result_cid: Cid,
    /// The sealed table's CID; `None` when the output policy refused the release (nothing
    /// was sent).
    pub delivery_cid: Option<Cid>,
}

/// `DisputeResolved.outcome` of an upheld result (the market's `outcome::UPHELD`).
const DISPUTE_UPHELD: u8 = 1;

/// What the seller reports as it works.
#[derive(Debug, Clone)]
pub enum SellerNews {
    /// A proof landed.
    Proven(ProofRecord),
    /// A result was delivered.
    Delivered(Delivery),
    /// A computed result was disputed (`dispute`, with a bond; verifiers recompute it): it does
    /// not match its attestation.
    Disputed {
        /// The order.
        order_id: U256,
        /// What was wrong with it.
        reason: String,
    },
    /// An order's delivery failed through the order's own fault on every try (its result
    /// nowhere to be fetched, a key that cannot be sealed to, …): given up, so that the
    /// deliveries after it proceed.
    GaveUp {
        /// The order.
        order_id: U256,
        /// The last failure.
        reason: String,
    },
    /// A result was refused by the output policy.
    Refused {
        /// The order.
        order_id: U256,
        /// Why.
        reason: String,
    },
}

/// The seller daemon. Cloning shares its state.
#[derive(Clone)]
pub struct Seller {
    agent: Agent,
    store: Arc<Blockstore>,
    gateways: GatewayClient,
    options: SellerOptions,
    provers: Arc<Mutex<HashMap<u64, PieceProver<std::fs::File>>>>,
    keys: Arc<Mutex<HashMap<u64, Arc<SellerKey>>>>,
    /// Each dataset's plaintext rows, opened once.
    rows: Arc<Mutex<HashMap<u64, Arc<Table>>>>,
    /// Held while a dataset's record of answered queries is read, checked and written, so two
    /// deliveries cannot both pass the differencing check without seeing each other.
    answered: Arc<Mutex<()>>,
    /// `(challengeWindow, challengeFinality)`: fixed at deployment.
    timing: Arc<std::sync::OnceLock<(u64, u64)>>,
    news: Option<mpsc::UnboundedSender<SellerNews>>,
}

impl std::fmt::Debug for Seller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seller")
            .field("address", &self.agent.client.address())
            .finish_non_exhaustive()
    }
}

impl Seller {
    /// The seller over `agent`, its `store` (where workers publish results and buyers their
    /// parameters) and `gateways` to fetch from when something is not there.
    #[must_use]
    pub fn new(
        agent: &Agent,
        store: Arc<Blockstore>,
        gateways: GatewayClient,
        options: SellerOptions,
        news: Option<mpsc::UnboundedSender<SellerNews>>,
    ) -> Self {
        Self {
            agent: agent.clone(),
            store,
            gateways,
            options,
            provers: Arc::default(),
            keys: Arc::default(),
            rows: Arc::default(),
            answered: Arc::default(),
            timing: Arc::default(),
            news,
        }
    }

    /// Starts with these datasets' client keys already opened (dataset id → key), so a caller
    /// that checked them at start-up does not pay for opening a sealed key twice.
    #[must_use]
    pub fn with_keys(mut self, keys: impl IntoIterator<Item = (u64, SellerKey)>) -> Self {
        let keys = keys
            .into_iter()
            .map(|(id, key)| (id, Arc::new(key)))
            .collect();
        self.keys = Arc::new(Mutex::new(keys));
        self
    }

    /// Uses `prover` (built at onboarding) for proof set `set_id` instead of re-reading its CAR.
    pub async fn adopt_prover(&self, set_id: u64, prover: PieceProver<std::fs::File>) {
        self.provers.lock().await.insert(set_id, prover);
    }

    fn tell(&self, news: SellerNews) {
        if let Some(tx) = &self.news {
            let _ = tx.send(news);
        }
    }

    /// Runs the proving loop until `shutdown`.
    pub async fn prove_forever(self, shutdown: CancellationToken) {
        if !self.options.prove {
            return;
        }
        loop {
            if let Err(e) = self.prove_tick().await {
                tracing::warn!(error = %e, "proving step failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.options.tick) => {}
            }
        }
    }

    /// One look at every proof set: open a period, prove an open challenge, or record a
    /// missed window so the next period can open.
    ///
    /// # Errors
    /// [`SellerError`] from the chain or the piece.
    pub async fn prove_tick(&self) -> Result<(), SellerError> {
        // Read each tick (a small file): a `seller onboard` run while the daemon serves adds a
        // dataset it must start proving without a restart.
        let book = SellerBook::load(&self.agent.config.data_dir)?;
        let client = &self.agent.client;
        let proofs = IProofManager::new(self.agent.deployments.proof_manager, client.provider());
        let (window, finality) = self.challenge_timing().await?;
        for dataset in &book.datasets {
            let set_id = U256::from(dataset.set_id);
            let set = self.agent.protocol().proof_set(set_id).await?;
            let (epoch, deadline) = (set.challenge_epoch, set.deadline);
            let now = client.block_number().await?;
            if epoch == 0 {
                if now > deadline {
                    self.record_fault(set_id, deadline).await?;
                } else if now + finality + window <= deadline
                    && (set.last_proven_block == 0 || now + finality + 2 * window >= deadline)
                {
                    // Never proven: open at once (the dataset is Degraded until its first
                    // proof). Otherwise as late as leaves a whole spare window: one proof per
                    // proving period, not one per block.
                    self.agent
                        .journal
                        .perform(
                            client,
                            &ActionKey::new(set_id, format!("open-{deadline}")),
                            proofs
                                .nextProvingPeriod(set_id)
                                .from(client.address())
                                .into_transaction_request(),
                        )
                        .await?;
                }
            } else if now > epoch + window {
                self.record_fault(set_id, epoch).await?;
            } else if now > epoch {
                self.prove(dataset, epoch).await?;
            }
        }
        Ok(())
    }

    /// Records the fault of a missed window or deadline (`at` names it), once.
    async fn record_fault(&self, set_id: U256, at: u64) -> Result<(), SellerError> {
        let client = &self.agent.client;
        let proofs = IProofManager::new(self.agent.deployments.proof_manager, client.provider());
        self.agent
            .journal
            .perform(
                client,
                &ActionKey::new(set_id, format!("fault-{at}")),
                proofs
                    .recordFault(set_id)
                    .from(client.address())
                    .into_transaction_request(),
            )
            .await?;
        Ok(())
    }

    /// The market's fixed challenge window and finality (blocks), read once.
    async fn challenge_timing(&self) -> Result<(u64, u64), SellerError> {
        if let Some(timing) = self.timing.get() {
            return Ok(*timing);
        }
        let client = &self.agent.client;
        let proofs = IProofManager::new(self.agent.deployments.proof_manager, client.provider());
        let window = client
            .view("challengeWindow", &proofs.challengeWindow())
            .await?;
        let finality = client
            .view("challengeFinality", &proofs.challengeFinality())
            .await?;
        Ok(*self.timing.get_or_init(|| (window, finality)))
    }

    async fn prove(&self, dataset: &OwnedDataset, epoch: u64) -> Result<(), SellerError> {
        let client = &self.agent.client;
        let key = ActionKey::new(U256::from(dataset.set_id), format!("prove-{epoch}"));
        if matches!(
            self.agent.journal.get(&key)?,
            Some(ActionRecord::Done { .. })
        ) {
            return Ok(());
        }
        let proofs = IProofManager::new(self.agent.deployments.proof_manager, client.provider());
        let set_id = U256::from(dataset.set_id);
        let block = client
            .provider()
            .get_block(epoch.into())
            .await
            .map_err(|e| SellerError::Invalid(format!("reading the epoch block: {e}")))?
            .ok_or_else(|| SellerError::Invalid(format!("no block {epoch}")))?;
        let seed = block.header.hash.0;
        let challenges = client
            .view("challengesPerProof", &proofs.challengesPerProof())
            .await?;
        let total = client
            .view("challengeRange", &proofs.challengeRange(set_id))
            .await?;
        let (leaves, paths) = {
            let mut provers = self.provers.lock().await;
            let prover = match provers.entry(dataset.set_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(tokio::task::block_in_place(|| {
                        PieceProver::open(&dataset.car)
                    })?)
                }
            };
            let mut leaves = Vec::new();
            let mut paths = Vec::new();
            for i in 0..challenges {
                let proof = prover.proof(challenge_leaf_index(&seed, set_id, i, total))?;
                leaves.push(B256::from(proof.leaf));
                paths.push(
                    proof
                        .siblings
                        .into_iter()
                        .map(B256::from)
                        .collect::<Vec<_>>(),
                );
            }
            (leaves, paths)
        };
        let outcome = self
            .agent
            .journal
            .perform(
                client,
                &key,
                proofs
                    .provePossession(set_id, leaves, paths)
                    .from(client.address())
                    .into_transaction_request(),
            )
            .await?;
        if outcome.success && !outcome.replayed {
            let receipt = client
                .provider()
                .get_transaction_receipt(outcome.tx_hash)
                .await
                .ok()
                .flatten();
            tracing::info!(
                set = dataset.set_id,
                epoch,
                block = outcome.block_number,
                "possession proven"
            );
            self.tell(SellerNews::Proven(ProofRecord {
                set_id: dataset.set_id,
                epoch,
                challenges: usize::try_from(challenges).unwrap_or(usize::MAX),
                block: outcome.block_number,
                gas_used: receipt.map_or(0, |r| r.gas_used),
            }));
        }
        Ok(())
    }

    async fn key_of(&self, dataset: &OwnedDataset) -> Result<Arc<SellerKey>, SellerError> {
        let mut keys = self.keys.lock().await;
        if let Some(key) = keys.get(&dataset.dataset_id) {
            return Ok(key.clone());
        }
        let key = Arc::new(SellerKey::load_with(
            &dataset.client_key,
            self.options.passphrase.as_ref(),
        )?);
        keys.insert(dataset.dataset_id, key.clone());
        Ok(key)
    }

    async fn rows_of(&self, dataset: &OwnedDataset) -> Result<Arc<Table>, SellerError> {
        let mut rows = self.rows.lock().await;
        if let Some(table) = rows.get(&dataset.dataset_id) {
            return Ok(table.clone());
        }
        let path = dataset.rows.as_ref().ok_or_else(|| {
            SellerError::Invalid(format!(
                "dataset {} was recorded without its plaintext rows, so no result can be checked and none is released",
                dataset.dataset_id
            ))
        })?;
        let table = tokio::task::block_in_place(|| {
            load_rows(path, self.options.passphrase.as_ref(), &dataset.layout)
        })
        .map_err(|e| match e {
            CheckError::Key(e) => SellerError::Key(e),
            e => SellerError::file(path, e),
        })?;
        let table = Arc::new(table);
        rows.insert(dataset.dataset_id, table.clone());
        Ok(table)
    }

    /// Delivers order `order_id`'s result if it is for one of this seller's datasets and
    /// waits for delivery; `None` when the order is not this seller's to deliver, or when its
    /// result does not match the worker's attestation (its hash, or the shape of the order's
    /// plan) or does not decrypt to the plan's computation on the seller's own rows: that result
    /// is disputed instead ([`SellerNews::Disputed`]: verifiers recompute it), and nothing of it
    /// is released.
    ///
    /// # Errors
    /// [`SellerError`].
    #[allow(clippy::too_many_lines)] // fetch, check, decrypt, police, seal, deliver
    pub async fn deliver(&self, order_id: U256) -> Result<Option<Delivery>, SellerError> {
        let client = &self.agent.client;
        let me = client.address();
        let view = self.agent.protocol();
        let order = view.order(order_id).await?;
        if order.seller != me {
            return Ok(None);
        }
        let key = ActionKey::new(order_id, "deliver");
        if matches!(
            self.agent.journal.get(&key)?,
            Some(ActionRecord::Done { .. })
        ) {
            return Ok(None);
        }
        if order.status != OrderStatus::Computed {
            return Ok(None);
        }
        let book = SellerBook::load(&self.agent.config.data_dir)?;
        let Some(dataset) = book.get(order.dataset_id.to()).cloned() else {
            tracing::warn!(%order_id, dataset = %order.dataset_id, "an order for a dataset this seller has no record of");
            return Ok(None);
        };
        if self.options.prove {
            self.await_healthy(order.dataset_id).await?;
        }
        let work = view.order_work(order_id).await?;
        let result_cid = work
            .result()
            .map_err(|e| SellerError::Invalid(format!("result CID of order {order_id}: {e}")))?
            .ok_or_else(|| {
                SellerError::Invalid(format!("order {order_id} is Computed without a result"))
            })?;
        self.gateways
            .local_or_fetch_dag(&result_cid, &self.store, true)
            .await?;
        let bytes = read_file(&self.store, &result_cid, MAX_RESULT_BYTES)?;
        if keccak256(&bytes) != work.result_hash {
            // The bytes under that CID will never change: the attestation is false for good.
            let reason = format!(
                "the result under {result_cid} hashes to {}, not to the attested {}",
                keccak256(&bytes),
                work.result_hash
            );
            return self.dispute(order_id, reason).await;
        }
        let params = params_cid(order.params_hash.0);
        let params_block = self
            .gateways
            .local_or_fetch_block(&params, &self.store)
            .await?;
        let query = query_from_params(
            params_block.data(),
            order.params_hash.0,
            order.template_hash.0,
        )?;
        let chosen = plan(&query, &dataset.layout)?;
        let encrypted = match EncryptedResult::from_bytes(&bytes, &chosen) {
            Ok(encrypted) => encrypted,
            // The plan is a function of the order and the manifest, which the worker read too:
            // a result that is not the plan's shape was not computed by it.
            Err(e) => {
                let reason =
                    format!("the attested result is not an answer to the order's plan: {e}");
                return self.dispute(order_id, reason).await;
            }
        };
        let secret = self.key_of(&dataset).await?;
        let rows = self.rows_of(&dataset).await?;
        // Nothing decrypted is released unless it is the order's computation on the seller's
        // own rows: anything else (a victim row's blocks, key-probing blocks) is disputed.
        let opened = tokio::task::block_in_place(|| {
            open_result(&encrypted, &chosen, &dataset.layout, &secret, &rows)
        });
        let aggregates = match opened {
            Ok(aggregates) => aggregates,
            Err(CheckError::NotTheComputation(what)) => {
                let reason = format!("the attested result is not the order's computation: {what}");
                return self.dispute(order_id, reason).await;
            }
            Err(CheckError::Key(e)) => return Err(e.into()),
            Err(e @ CheckError::Rows(_)) => return Err(SellerError::Invalid(e.to_string())),
        };
        // No answer whose rows, subtracted from an answered query's, name fewer than the minimum
        // cohort (the two-cohort attack): recorded before anything is released.
        let differencing = {
            let _record = self.answered.lock().await;
            let path = dataset
                .rows
                .as_ref()
                .map(|rows| rows.with_extension("answered.json"))
                .unwrap_or_default();
            tokio::task::block_in_place(|| {
                let mut answered = Answered::load(&path)?;
                answered.admit(
                    &rows,
                    &dataset.layout,
                    &chosen.bound,
                    self.options.policy.min_cohort,
                )?;
                answered.save(&path)
            })
        };
        let market = IQueryMarket::new(self.agent.deployments.query_market, client.provider());
        // Noise for the ε the order paid for: the market charged it to the dataset's budget,
        // for every buyer together, before anyone could claim the order.
        let policy = Policy {
            epsilon: Some(order.epsilon.as_f64()),
            ..self.options.policy.clone()
        };
        let released = match differencing {
            Ok(()) => release(
                &aggregates,
                &chosen,
                &dataset.layout,
                &policy,
                &mut rand::rng(),
            )
            .map_err(|e| e.to_string()),
            Err(e @ DifferencingError::Record(..)) => {
                return Err(SellerError::Invalid(e.to_string()));
            }
            Err(e) => Err(format!("the differencing defense refuses it: {e}")),
        };
        let table = match released {
            Ok(table) => table,
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "output policy refused the release; nothing delivered");
                self.refuse(order_id).await;
                self.tell(SellerNews::Refused {
                    order_id,
                    reason: e,
                });
                return Ok(Some(Delivery {
                    order_id,
                    result_cid,
                    delivery_cid: None,
                }));
            }
        };
        let buyer_key = client.view("buyerKey", &market.buyerKey(order_id)).await?;
        let plaintext = serde_json::to_vec(&table)
            .map_err(|e| SellerError::Invalid(format!("result table: {e}")))?;
        // Sealed for this result of this order on this market: the envelope opens as nothing else.
        let context = datacloud_delivery::context(
            client.chain_id(),
            &self.agent.deployments.query_market.0.0,
            &order_id.to_be_bytes::<32>(),
            &work.result_hash.0,
        );
        let envelope = datacloud_delivery::seal(&buyer_key, &context, &plaintext)?;
        let delivery_cid = store_file(&self.store, &envelope, true)?;
        // Signed: the buyer's evidence that this sealed table is the seller's answer to this
        // result (the market checks the signature and logs it).
        let digest = delivery_digest(
            client.chain_id(),
            self.agent.deployments.query_market,
            order_id,
            work.result_hash,
            &delivery_cid.to_bytes(),
        );
        let signature = self
            .agent
            .config
            .signer()
            .sign_hash(&digest)
            .await
            .map_err(|e| SellerError::Invalid(format!("signing the delivery: {e}")))?;
        let outcome = self
            .agent
            .journal
            .perform(
                client,
                &key,
                market
                    .deliverResult(
                        order_id,
                        Bytes::from(delivery_cid.to_bytes()),
                        Bytes::copy_from_slice(&signature.as_bytes()),
                    )
                    .from(me)
                    .into_transaction_request(),
            )
            .await?;
        if !outcome.success {
            return Err(SellerError::Invalid(format!(
                "deliverResult of order {order_id} reverted"
            )));
        }
        tracing::info!(%order_id, %delivery_cid, "result delivered");
        let delivery = Delivery {
            order_id,
            result_cid,
            delivery_cid: Some(delivery_cid),
        };
        self.tell(SellerNews::Delivered(delivery.clone()));
        Ok(Some(delivery))
    }
}

impl Seller {
    /// Disputes order `order_id`'s computed result instead of delivering it, posting the
    /// market's `minWorkerBond` as the dispute bond: verifiers drawn by the market recompute the
    /// order, and the bond comes back (with the worker's slash) only if two of them agree that
    /// the result is wrong. Sent once (journaled under `(order, dispute)`); for faults anyone can
    /// check from the attested CID and hash and the order's plan, and for a decryption that is
    /// not the plan's computation (any honest verifier's result differs from it).
    async fn dispute(
        &self,
        order_id: U256,
        reason: String,
    ) -> Result<Option<Delivery>, SellerError> {
        let client = &self.agent.client;
        // The dispute game's functions are called at the market's address.
        let game = IDisputeGame::new(self.agent.deployments.query_market, client.provider());
        let bond = self.agent.protocol().market_config().await?.min_worker_bond;
        tracing::error!(%order_id, %reason, %bond, "disputing the worker's result: verifiers will recompute it");
        let outcome = self
            .agent
            .journal
            .perform(
                client,
                &ActionKey::new(order_id, "dispute"),
                game.dispute(order_id)
                    .value(bond)
                    .from(client.address())
                    .into_transaction_request(),
            )
            .await?;
        if !outcome.success {
            return Err(SellerError::Invalid(format!(
                "dispute of order {order_id} reverted"
            )));
        }
        self.tell(SellerNews::Disputed { order_id, reason });
        Ok(None)
    }

    /// Refuses order `order_id` on-chain (the seller's `refund`): its escrow goes back to the
    /// receipt's owner at once, less the fee of a worker that computed it, at no penalty —
    /// instead of the buyer waiting for the deadline and the seller paying for a missed
    /// delivery. Sent once (journaled under `(order, refuse)`); a refusal the market does not
    /// take (the order was closed meanwhile) is logged, not retried.
    async fn refuse(&self, order_id: U256) {
        let client = &self.agent.client;
        let market = IQueryMarket::new(self.agent.deployments.query_market, client.provider());
        let sent = self
            .agent
            .journal
            .perform(
                client,
                &ActionKey::new(order_id, "refuse"),
                market
                    .refund(order_id)
                    .from(client.address())
                    .into_transaction_request(),
            )
            .await;
        match sent {
            Ok(outcome) if outcome.success => {
                tracing::info!(%order_id, "order refused on-chain: its buyer is refunded");
            }
            Ok(_) => tracing::warn!(%order_id, "the market did not take the refusal"),
            Err(e) => tracing::warn!(%order_id, error = %e, "refusing the order failed"),
        }
    }

    /// [`Seller::deliver`], retried: the order's own faults [`SellerOptions::retry`] times,
    /// then given up ([`SellerNews::GaveUp`]) so that one poisoned order never stalls the
    /// deliveries after it; the seller's own failures (its node, its store) until they recover.
    ///
    /// # Errors
    /// The last error when the daemon stops while retrying (the cursor stays on the event, so
    /// a restart tries again).
    pub async fn deliver_or_give_up(&self, order_id: U256) -> Result<(), SellerError> {
        let outcome = self
            .options
            .retry
            .run(
                order_id,
                &self.agent.shutdown,
                SellerError::is_order_fault,
                || self.deliver(order_id),
            )
            .await;
        match outcome {
            Attempt::Done(_) => Ok(()),
            Attempt::GaveUp(e) => {
                tracing::error!(%order_id, error = %e, "delivery given up; refusing the order so that its buyer is refunded now");
                self.refuse(order_id).await;
                self.tell(SellerNews::GaveUp {
                    order_id,
                    reason: e.to_string(),
                });
                Ok(())
            }
            Attempt::Stopped(e) => Err(e),
        }
    }

    /// Waits (up to [`HEALTHY_WAIT`]) for the dataset's proofs to be fresh: delivering on an
    /// unhealthy dataset refunds the buyer, so a seller that is catching up on its proofs
    /// proves first.
    async fn await_healthy(&self, dataset_id: U256) -> Result<(), SellerError> {
        let view = self.agent.protocol();
        let started = std::time::Instant::now();
        loop {
            if view.health(dataset_id).await? == Health::Healthy {
                return Ok(());
            }
            if started.elapsed() > HEALTHY_WAIT || self.agent.shutdown.is_cancelled() {
                tracing::warn!(dataset = %dataset_id, "the dataset is not healthy; delivering anyway (the buyer will be refunded)");
                return Ok(());
            }
            tokio::time::sleep(self.options.tick).await;
        }
    }
}

impl EventHandler for Seller {
    async fn handle(&mut self, event: &ChainEvent) -> Result<(), HandlerError> {
        match &event.event {
            ContractEvent::QueryMarket(IQueryMarketEvents::ResultSubmitted(submitted)) => {
                self.deliver_or_give_up(submitted.orderId).await?;
            }
            // Verifiers agreed with the worker: the result is Computed again and is delivered
            // (its blocks are now published by the verifiers too).
            ContractEvent::QueryMarket(IQueryMarketEvents::DisputeResolved(resolved))
                if resolved.outcome == DISPUTE_UPHELD =>
            {
                self.deliver_or_give_up(resolved.orderId).await?;
            }
            ContractEvent::ProofManager(IProofManagerEvents::FaultRecorded(fault)) => {
                tracing::warn!(set = %fault.setId, recent = fault.recentFaults, "fault recorded");
            }
            _ => {}
        }
        Ok(())
    }
}
