//! `QueryMarket`: escrowed query orders for DataCloud.
//!
//! A buyer pays a query into escrow with [`QueryMarket::place_order`] and receives an
//! ERC-721-like receipt for it; a registered, bonded worker claims the order, computes the query
//! on ciphertexts and submits the result with an EIP-712 attestation it signed; the dataset's
//! seller delivers the result re-encrypted to the buyer's key, and the market settles: seller and
//! worker are paid only when the `ProofManager` reports the dataset healthy, otherwise the buyer
//! is refunded. After the deadline anyone may close an unfinished order, crediting its escrow to
//! the receipt's owner (so no buyer can hold a seller's stake hostage by never refunding), less
//! the worker's fee when a result was computed and never delivered (the worker did its part).
//!
//! # Who may work an order
//!
//! The worker of an order is neither its buyer, nor its receipt's current owner, nor the dataset's
//! seller (a party that computes its own order can feed the seller crafted ciphertexts). A bond of
//! `minWorkerBond` backs [`CLAIMS_PER_MIN_BOND`] active claims (more bond, more claims); a claim
//! that times out costs its worker an eighth of `minWorkerBond`, credited to the receipt's owner
//! who waited on it, and the worker may not claim that order again.
//!
//! # Disputes: re-execution, not anyone's word
//!
//! Evaluation is deterministic (a result's bytes depend only on the dataset, its server key and
//! the order), so a result is checked by computing it again. The seller or the receipt's owner
//! may dispute a Computed result with [`QueryMarket::dispute`], posting a dispute bond of at least
//! `minWorkerBond`. The market draws a verifier among the listed workers, pseudo-randomly
//! (`keccak(orderId, resultHash, round, timestamp)`), skipping the order's buyer, receipt owner,
//! seller, worker and disputer, and any worker whose bond backs no further claim (an assignment
//! counts as a claim). The verifier recomputes and answers with [`QueryMarket::submit_verdict`]
//! within `claimTimeout`, giving the result's CID and hash (it publishes the bytes too, so an
//! upheld result is available from two places):
//! - it agrees with the worker: the result is **upheld** — the disputer's bond pays the verifier
//!   `workerFee` and the rest goes to the worker; the order is Computed again, and may not be
//!   disputed a second time;
//! - it disagrees: a second verifier is drawn (also skipping the first). If the second agrees with
//!   the worker, the result is upheld and the first verifier, the minority, loses `minWorkerBond`
//!   to the worker. If the second agrees with the first, the result is **overturned**: the worker
//!   loses `minWorkerBond` (at most its bond), which pays each verifier `workerFee`, the rest and
//!   the dispute bond going to the disputer; the order reopens for another worker (not the
//!   slashed one). Three different answers, or no second verifier to draw, are **inconclusive**:
//!   the disputer takes its bond back and the order reopens, nobody slashed.
//!
//! A verifier that does not answer in time forfeits an eighth of `minWorkerBond` to the order's
//! worker (anyone may call [`QueryMarket::timeout_verifier`]) and another is drawn for the round.
//! So one party's word never moves a bond: a disputer loses its bond unless two verifiers agree
//! against the worker, and a worker loses at most `minWorkerBond` per order. The draw is as
//! random as the block's timestamp: a disputer choosing its moment, or a party running many
//! bonded sybil workers, raises its odds of drawing a friendly verifier (see the README's threat
//! model).
//!
//! # Money invariant
//!
//! At the end of every transaction the contract's native balance equals
//! `totalEscrow + totalBonds + totalPayouts + totalDisputeBonds`, where
//! - `totalEscrow` = Σ `escrow` of the orders that are Open, Claimed, Computed or Disputed,
//! - `totalBonds` = Σ `workerBond(w)` over all workers,
//! - `totalPayouts` = Σ `payoutOf(a)` over all accounts (credited, not yet withdrawn),
//! - `totalDisputeBonds` = Σ the bonds of the disputes in progress.
//!
//! Every function that moves value between these buckets moves it whole (checked arithmetic), and
//! value only leaves the contract through [`QueryMarket::withdraw`], which debits `totalPayouts`
//! before it transfers (checks-effects-interactions).
//!
//! Reentrancy: stylus-sdk refuses reentrant calls unless its `reentrant` feature is on, and it is
//! off for this crate, so a payee cannot call back into the market while it is being paid.

#![cfg_attr(not(any(test, feature = "export-abi")), no_main)]
extern crate alloc;

include!("state.rs");
include!("../../deployer.rs");

use alloy_primitives::uint;
use stylus_sdk::{
    ArbResult,
    call::{call, delegate_call, transfer::transfer_eth},
};

/// secp256k1n / 2: signatures with a larger `s` are malleable twins and refused (EIP-2).
const HALF_CURVE_ORDER: U256 =
    uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

#[public]
impl QueryMarket {
    /// Sets the market up; the caller becomes `owner()`. `disputeGame` is the program the market
    /// delegate-calls for the dispute game's functions (see the module documentation).
    ///
    /// Only the account that deployed the program may call it, naming the nonce of its
    /// deploying transaction (`deployNonce`): the program's address must be the `CREATE`
    /// address of `(msg.sender, deployNonce)`, so nobody can front-run the initialization
    /// between the deployment and this call (contracts/deployer.rs).
    ///
    /// # Errors
    /// `AlreadyInitialized`, `NotDeployer`, `InvalidConfig` (zero registry / proof manager /
    /// dispute game / timeouts).
    #[allow(clippy::too_many_arguments)] // the ABI's, one per setting
    pub fn initialize(
        &mut self,
        registry: Address,
        proof_manager: Address,
        worker_fee: U256,
        min_worker_bond: U256,
        claim_timeout: u64,
        max_order_lifetime: u64,
        dispute_game: Address,
        deploy_nonce: u64,
    ) -> Result<(), Error> {
        if self.initialized.get() {
            return Err(Error::AlreadyInitialized(AlreadyInitialized {}));
        }
        if !deployed_by_caller(self.vm(), deploy_nonce) {
            return Err(Error::NotDeployer(NotDeployer {}));
        }
        if registry.is_zero()
            || proof_manager.is_zero()
            || dispute_game.is_zero()
            || claim_timeout == 0
            || max_order_lifetime == 0
        {
            return Err(Error::InvalidConfig(InvalidConfig {}));
        }
        self.initialized.set(true);
        self.owner.set(self.vm().msg_sender());
        self.registry.set(registry);
        self.proof_manager.set(proof_manager);
        self.dispute_game.set(dispute_game);
        self.worker_fee.set(worker_fee);
        self.min_worker_bond.set(min_worker_bond);
        self.claim_timeout.set(U64::from_limbs([claim_timeout]));
        self.max_order_lifetime
            .set(U64::from_limbs([max_order_lifetime]));
        Ok(())
    }

    /// Pays a query on `datasetId` with `templateHash` into escrow and mints its receipt to the
    /// caller. `msg.value` must cover the registry's price plus `workerFee`; any excess is returned
    /// to the receipt's owner at settlement. `pbsEstimate` is the planner's count of the
    /// programmable bootstraps the order's plan needs (recomputable by anyone from the
    /// parameters and the manifest: workers refuse an understated one); a claim lasts
    /// `claimTimeout + pbsEstimate / PBS_PER_SECOND` seconds, and the deadline must leave one
    /// claim that long. `epsilon` (micro-ε, > 0) is what the order spends of the dataset's
    /// privacy budget: the seller releases its result with noise calibrated to it.
    ///
    /// # Errors
    /// `NotInitialized`, `InvalidBuyerKey` (not [`BUYER_KEY_LEN`] bytes), `InvalidDeadline`
    /// (before one claim window from now, or past `maxOrderLifetime`), `DatasetNotOrderable`,
    /// `RegistryCallFailed`, `InvalidEpsilon` (zero, or over what the budget has left),
    /// `PaymentTooLow`.
    ///
    /// # Events
    /// `Transfer(0, buyer, orderId)`, `OrderPlaced`.
    #[payable]
    #[allow(clippy::needless_pass_by_value)] // the router hands over decoded arguments by value
    #[allow(clippy::too_many_arguments)] // the ABI's arguments, one per order field
    pub fn place_order(
        &mut self,
        dataset_id: U256,
        template_hash: B256,
        params_hash: B256,
        buyer_key: Bytes,
        deadline: u64,
        pbs_estimate: u64,
        epsilon: u64,
    ) -> Result<U256, Error> {
        self.require_initialized()?;
        if buyer_key.len() != BUYER_KEY_LEN {
            return Err(Error::InvalidBuyerKey(InvalidBuyerKey {}));
        }
        let now = self.vm().block_timestamp();
        // Long enough for one claim on the plan to run its course.
        let window = claim_window_for(self.claim_timeout.get().as_limbs()[0], pbs_estimate);
        if deadline < now.saturating_add(window)
            || deadline > now.saturating_add(self.max_order_lifetime.get().as_limbs()[0])
        {
            return Err(Error::InvalidDeadline(InvalidDeadline { deadline }));
        }
        let answer = self
            .view_call(
                self.registry.get(),
                ORDER_TERMS_SELECTOR,
                &[dataset_id.to_be_bytes(), template_hash.0],
            )
            .ok_or(Error::DatasetNotOrderable(DatasetNotOrderable {
                datasetId: dataset_id,
                templateHash: template_hash,
            }))?;
        let (seller, manifest_hash, price, compensation_index, budget) =
            decode_order_terms(&answer).ok_or(Error::RegistryCallFailed(RegistryCallFailed {}))?;
        // The budget is the dataset's, for every buyer together: new addresses and receipt
        // transfers do not reset it.
        let spent = self.epsilon_spent.get(dataset_id).as_limbs()[0];
        let left = budget.saturating_sub(spent);
        if epsilon == 0 || epsilon > left {
            return Err(Error::InvalidEpsilon(InvalidEpsilon {
                datasetId: dataset_id,
                asked: epsilon,
                left,
            }));
        }
        self.epsilon_spent
            .insert(dataset_id, U64::from_limbs([spent + epsilon]));
        let worker_fee = self.worker_fee.get();
        let required = checked_add(price, worker_fee)?;
        let value = self.vm().msg_value();
        if value < required {
            return Err(Error::PaymentTooLow(PaymentTooLow {
                sent: value,
                required,
            }));
        }

        let order_id = checked_add(self.order_count.get(), U256::from(1))?;
        self.order_count.set(order_id);
        let buyer = self.vm().msg_sender();
        let mut order = self.orders.setter(order_id);
        order.dataset_id.set(dataset_id);
        order.seller.set(seller);
        order.deadline.set(U64::from_limbs([deadline]));
        order.status.set(status_word(status::OPEN));
        order.holder.set(buyer);
        order.pbs_estimate.set(U64::from_limbs([pbs_estimate]));
        order.buyer.set(buyer);
        order.manifest_hash.set(manifest_hash);
        order.template_hash.set(template_hash);
        order.params_hash.set(params_hash);
        order.price.set(price);
        order.worker_fee.set(worker_fee);
        order.escrow.set(value);
        order.compensation_index.set(compensation_index);
        order.epsilon.set(U64::from_limbs([epsilon]));

        let open = checked_add(self.open_orders.get(dataset_id), U256::from(1))?;
        self.buyer_keys.setter(order_id).set(&buyer_key);
        self.open_orders.insert(dataset_id, open);
        let escrowed = checked_add(self.total_escrow.get(), value)?;
        self.total_escrow.set(escrowed);
        let receipts = checked_add(self.receipt_balances.get(buyer), U256::from(1))?;
        self.receipt_balances.insert(buyer, receipts);

        self.vm().log(Transfer {
            from: Address::ZERO,
            to: buyer,
            tokenId: order_id,
        });
        self.vm().log(OrderPlaced {
            orderId: order_id,
            datasetId: dataset_id,
            buyer,
            templateHash: template_hash,
            paramsHash: params_hash,
            escrow: value,
            deadline,
            epsilon,
        });
        Ok(order_id)
    }

    /// Adds `msg.value` to the caller's worker bond and registers it as a worker.
    ///
    /// # Errors
    /// `NotInitialized`, `BondTooLow` (the resulting bond is below `minWorkerBond`).
    ///
    /// # Events
    /// `WorkerRegistered(worker, bond)`.
    #[payable]
    pub fn register_worker(&mut self) -> Result<(), Error> {
        self.require_initialized()?;
        let worker = self.vm().msg_sender();
        let value = self.vm().msg_value();
        let bond = checked_add(self.workers.getter(worker).bond.get(), value)?;
        let required = self.min_worker_bond.get();
        if bond < required {
            return Err(Error::BondTooLow(BondTooLow { bond, required }));
        }
        let listed = self.workers.getter(worker).registered.get();
        let count = self.worker_count.get();
        let mut entry = self.workers.setter(worker);
        entry.bond.set(bond);
        entry.registered.set(true);
        if !listed {
            entry.index.set(count);
            self.worker_list.setter(U256::from(count)).set(worker);
            self.worker_count.set(count + U64::from(1));
        }
        let bonds = checked_add(self.total_bonds.get(), value)?;
        self.total_bonds.set(bonds);
        self.vm().log(WorkerRegistered { worker, bond });
        Ok(())
    }

    /// Unregisters the caller and moves its whole bond to its payouts (then `withdraw()`).
    ///
    /// # Errors
    /// `NotInitialized`, `NotWorker`, `WorkerBusy` (it still holds claimed or computed orders).
    ///
    /// # Events
    /// `WorkerBondWithdrawn(worker, amount)`.
    pub fn withdraw_bond(&mut self) -> Result<(), Error> {
        self.require_initialized()?;
        let worker = self.vm().msg_sender();
        let entry = self.workers.getter(worker);
        if !entry.registered.get() {
            return Err(Error::NotWorker(NotWorker { account: worker }));
        }
        let active = entry.active_claims.get().as_limbs()[0];
        if active > 0 {
            return Err(Error::WorkerBusy(WorkerBusy {
                activeClaims: active,
            }));
        }
        let bond = entry.bond.get();
        let index = entry.index.get();
        let mut entry = self.workers.setter(worker);
        entry.bond.set(U256::ZERO);
        entry.registered.set(false);
        // Swap-remove from the verifier list: the last worker takes this one's place.
        let last = self.worker_count.get() - U64::from(1);
        let moved = self.worker_list.get(U256::from(last));
        self.worker_list.setter(U256::from(index)).set(moved);
        self.worker_list.setter(U256::from(last)).set(Address::ZERO);
        self.workers.setter(moved).index.set(index);
        self.worker_count.set(last);
        let bonds = checked_sub(self.total_bonds.get(), bond)?;
        self.total_bonds.set(bonds);
        self.credit(worker, bond)?;
        self.vm().log(WorkerBondWithdrawn {
            worker,
            amount: bond,
        });
        Ok(())
    }

    /// Claims an Open order, or takes over another worker's claim that timed out
    /// (`claimedAt + claimTimeout < now`; that worker forfeits an eighth of `minWorkerBond` to
    /// the receipt's owner). The caller may not be the order's buyer, receipt owner or seller,
    /// and its bond must back one more claim (`CLAIMS_PER_MIN_BOND` per `minWorkerBond`).
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `NotWorker`, `PartyCannotWork`, `OrderNotClaimable`
    /// (including the worker's own timed-out claim), `OrderExpired`, `WorkerBusy`.
    ///
    /// # Events
    /// `ClaimForfeited` (a taken-over claim), `OrderClaimed(orderId, worker, claimedAt)`.
    pub fn claim_order(&mut self, order_id: U256) -> Result<(), Error> {
        self.require_initialized()?;
        let current = self.status_of(order_id)?;
        let worker = self.vm().msg_sender();
        let entry = self.workers.getter(worker);
        if !entry.registered.get() || entry.bond.get() < self.min_worker_bond.get() {
            return Err(Error::NotWorker(NotWorker { account: worker }));
        }
        let bond = entry.bond.get();
        let active = entry.active_claims.get().as_limbs()[0];
        let now = self.vm().block_timestamp();
        let order = self.orders.getter(order_id);
        if worker == order.buyer.get()
            || worker == order.holder.get()
            || worker == order.seller.get()
        {
            return Err(Error::PartyCannotWork(PartyCannotWork {
                orderId: order_id,
                account: worker,
            }));
        }
        let previous = order.worker.get();
        let holder = order.holder.get();
        let deadline = order.deadline.get().as_limbs()[0];
        // A worker whose claim timed out, or whose result was overturned, does not get the order
        // back.
        let claimable = previous != worker
            && (current == status::OPEN
                || (current == status::CLAIMED && self.claim_expired(order_id, now)));
        if !claimable {
            return Err(Error::OrderNotClaimable(OrderNotClaimable {
                orderId: order_id,
                status: current,
            }));
        }
        if now > deadline {
            return Err(Error::OrderExpired(OrderExpired {
                orderId: order_id,
                deadline,
            }));
        }
        if !self.backs_another_claim(bond, active) {
            return Err(Error::WorkerBusy(WorkerBusy {
                activeClaims: active,
            }));
        }
        if current == status::CLAIMED {
            self.release_claim(previous)?;
            self.forfeit_expired_claim(order_id, previous, holder)?;
        }
        let mut entry = self.workers.setter(worker);
        entry.active_claims.set(U64::from_limbs([active + 1]));
        let mut order = self.orders.setter(order_id);
        order.worker.set(worker);
        order.claimed_at.set(U64::from_limbs([now]));
        order.status.set(status_word(status::CLAIMED));
        self.vm().log(OrderClaimed {
            orderId: order_id,
            worker,
            claimedAt: now,
        });
        Ok(())
    }

    /// The claiming worker submits the result's CID and hash with its EIP-712 signature over
    /// `attestationDigest(orderId, resultHash)` (65 bytes `r ‖ s ‖ v`, `v` 27/28 or 0/1, low `s`).
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `InvalidOrderStatus` (not Claimed), `Unauthorized`,
    /// `ClaimExpired`, `OrderExpired`, `InvalidCid`, `InvalidAttestation`.
    ///
    /// # Events
    /// `ResultSubmitted(orderId, worker, resultCid, resultHash)`.
    #[allow(clippy::needless_pass_by_value)] // the router hands over decoded arguments by value
    pub fn submit_result(
        &mut self,
        order_id: U256,
        result_cid: Bytes,
        result_hash: B256,
        signature: Bytes,
    ) -> Result<(), Error> {
        self.require_initialized()?;
        let current = self.status_of(order_id)?;
        if current != status::CLAIMED {
            return Err(invalid_status(order_id, current));
        }
        let order = self.orders.getter(order_id);
        let worker = order.worker.get();
        let deadline = order.deadline.get().as_limbs()[0];
        if self.vm().msg_sender() != worker {
            return Err(unauthorized(order_id, self.vm().msg_sender()));
        }
        let now = self.vm().block_timestamp();
        if self.claim_expired(order_id, now) {
            return Err(Error::ClaimExpired(ClaimExpired { orderId: order_id }));
        }
        if now > deadline {
            return Err(Error::OrderExpired(OrderExpired {
                orderId: order_id,
                deadline,
            }));
        }
        check_cid(&result_cid)?;
        let digest = self.digest(order_id, result_hash);
        if self.recover_signer(digest, &signature) != Some(worker) {
            return Err(Error::InvalidAttestation(InvalidAttestation {}));
        }
        self.orders.setter(order_id).result_hash.set(result_hash);
        self.mark_computed(order_id);
        self.result_cids.setter(order_id).set(&result_cid);
        self.signatures.setter(order_id).set(&signature);
        self.vm().log(ResultSubmitted {
            orderId: order_id,
            worker,
            resultCid: result_cid,
            resultHash: result_hash,
        });
        Ok(())
    }

    /// The seller delivers the result encrypted to the buyer's key, with its EIP-712 signature
    /// over `Delivery(orderId, resultHash, deliveryCid)` (65 bytes `r ‖ s ‖ v`, low `s`), and the
    /// order settles: on a Healthy dataset the seller gets `price`, the worker its fee and the
    /// receipt's owner any excess (status Settled); otherwise the worker gets its fee (it did its
    /// part) and the receipt's owner the rest of the escrow (status Failed). `ResultDelivered`
    /// carries the signature: the buyer's evidence of what the seller delivered for which
    /// result. Last, the registry pays the receipt's owner the order's compensation (its share
    /// of the lapses slashed from the dataset while it was open, at most its price).
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `Unauthorized`, `InvalidOrderStatus` (not Computed),
    /// `InvalidCid`, `InvalidDeliverySignature`, `ProofManagerCallFailed`,
    /// `RegistryCallFailed`.
    ///
    /// # Events
    /// `ResultDelivered(orderId, deliveryCid, signature)`, then `OrderSettled` or `OrderFailed`.
    #[allow(clippy::needless_pass_by_value)] // the router hands over decoded arguments by value
    pub fn deliver_result(
        &mut self,
        order_id: U256,
        delivery_cid: Bytes,
        signature: Bytes,
    ) -> Result<(), Error> {
        self.require_initialized()?;
        let current = self.status_of(order_id)?;
        self.require_seller(order_id)?;
        if current != status::COMPUTED {
            return Err(invalid_status(order_id, current));
        }
        check_cid(&delivery_cid)?;
        let digest = self.delivery_digest(order_id, &delivery_cid);
        if self.recover_signer(digest, &signature) != Some(self.vm().msg_sender()) {
            return Err(Error::InvalidDeliverySignature(InvalidDeliverySignature {}));
        }
        let order = self.orders.getter(order_id);
        let dataset_id = order.dataset_id.get();
        let seller = order.seller.get();
        let worker = order.worker.get();
        let holder = order.holder.get();
        let price = order.price.get();
        let fee = order.worker_fee.get();
        let escrow = order.escrow.get();
        let health = self.health(dataset_id)?;

        self.close_order(dataset_id, worker, escrow)?;
        self.delivery_cids.setter(order_id).set(&delivery_cid);
        let mut order = self.orders.setter(order_id);
        if health == HEALTHY {
            order.status.set(status_word(status::SETTLED));
            let excess = checked_sub(checked_sub(escrow, price)?, fee)?;
            self.credit(seller, price)?;
            self.credit(worker, fee)?;
            self.credit(holder, excess)?;
            self.log_delivery(order_id, delivery_cid, signature);
            self.vm().log(OrderSettled {
                orderId: order_id,
                sellerAmount: price,
                workerAmount: fee,
                excess,
            });
        } else {
            // The worker did its part; the buyer gets the rest back.
            order.status.set(status_word(status::FAILED));
            self.credit(worker, fee)?;
            self.credit(holder, checked_sub(escrow, fee)?)?;
            self.log_delivery(order_id, delivery_cid, signature);
            self.vm().log(OrderFailed {
                orderId: order_id,
                health,
            });
        }
        self.compensate(order_id, holder)
    }

    /// Closes an unfinished order (Open, Claimed or Computed; a Disputed order waits for its
    /// dispute to end): its escrow is credited to the receipt's owner (status Refunded), less
    /// the worker's fee when a result was computed (the worker did its part). Allowed
    /// - to anyone once the seller has left a computed result undelivered for `claimTimeout`
    ///   (reason 3): on a Healthy dataset the seller's stake also pays the order's price to the
    ///   receipt's owner (`DatasetRegistry.slash`, a payout withdrawn from the registry);
    /// - to the seller, for an Open or Computed order (reason 2): its refusal (a poison pill, a
    ///   release its output policy refuses) frees the buyer at once, at no penalty;
    /// - to anyone after the deadline (reason 1), so no buyer can hold a seller's stake hostage
    ///   by never refunding.
    ///
    /// A claim that had timed out costs its worker as in `claimOrder`. Last, the registry pays
    /// the receipt's owner the order's compensation, as in `deliverResult`.
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `InvalidOrderStatus`, `DeadlineNotPassed`,
    /// `ProofManagerCallFailed`, `RegistryCallFailed`.
    ///
    /// The order's ε returns to its dataset's budget, unless the seller refused a computed
    /// result (a refusal that may depend on the data).
    ///
    /// # Events
    /// `ClaimForfeited` (a timed-out claim), `OrderRefunded(orderId, to, amount, reason,
    /// penalty)`.
    pub fn refund(&mut self, order_id: U256) -> Result<(), Error> {
        self.require_initialized()?;
        let current = self.status_of(order_id)?;
        let order = self.orders.getter(order_id);
        let holder = order.holder.get();
        if !is_active(current) || current == status::DISPUTED {
            return Err(invalid_status(order_id, current));
        }
        let deadline = order.deadline.get().as_limbs()[0];
        let now = self.vm().block_timestamp();
        let computed = current == status::COMPUTED;
        let reason = if computed
            && order.computed_at.get().as_limbs()[0]
                .saturating_add(self.claim_timeout.get().as_limbs()[0])
                < now
        {
            refund_reason::UNDELIVERED
        } else if self.vm().msg_sender() == order.seller.get() && current != status::CLAIMED {
            refund_reason::REFUSED
        } else if now > deadline {
            refund_reason::EXPIRED
        } else {
            return Err(Error::DeadlineNotPassed(DeadlineNotPassed { deadline }));
        };
        let claim_lapsed = current == status::CLAIMED && self.claim_expired(order_id, now);
        let dataset_id = order.dataset_id.get();
        let worker = order.worker.get();
        let escrow = order.escrow.get();
        let price = order.price.get();
        let fee = if computed {
            order.worker_fee.get()
        } else {
            U256::ZERO
        };
        // An Open order has no worker holding it (a taken-over or reopened claim names only the
        // last worker).
        let claimant = if current == status::OPEN {
            Address::ZERO
        } else {
            worker
        };
        self.close_order(dataset_id, claimant, escrow)?;
        if claim_lapsed {
            self.forfeit_expired_claim(order_id, worker, holder)?;
        }
        let amount = checked_sub(escrow, fee)?;
        self.credit(worker, fee)?;
        self.credit(holder, amount)?;
        self.set_status(order_id, status::REFUNDED);
        // Nothing about the data was released: the ε goes back to the dataset's budget. Except
        // when the seller refused a computed result, since that refusal may depend on the data.
        if !(computed && reason == refund_reason::REFUSED) {
            let spent = self.epsilon_spent.get(dataset_id).as_limbs()[0];
            let epsilon = self.orders.getter(order_id).epsilon.get().as_limbs()[0];
            self.epsilon_spent
                .insert(dataset_id, U64::from_limbs([spent.saturating_sub(epsilon)]));
        }
        // Interactions last: the health read and the registry's slash (which calls nobody).
        let penalty = if reason == refund_reason::UNDELIVERED && self.health(dataset_id)? == HEALTHY
        {
            self.slash_stake(dataset_id, price, holder)?
        } else {
            U256::ZERO
        };
        self.compensate(order_id, holder)?;
        self.vm().log(OrderRefunded {
            orderId: order_id,
            to: holder,
            amount,
            reason,
            penalty,
        });
        Ok(())
    }

    /// Sends the caller all of its payouts.
    ///
    /// # Errors
    /// `NotInitialized`, `NothingToWithdraw`, `TransferFailed`.
    ///
    /// # Events
    /// `Withdrawn(account, amount)`.
    pub fn withdraw(&mut self) -> Result<(), Error> {
        self.require_initialized()?;
        let account = self.vm().msg_sender();
        let amount = self.payouts.get(account);
        if amount.is_zero() {
            return Err(Error::NothingToWithdraw(NothingToWithdraw {}));
        }
        // Effects before the interaction: the payout is gone before the value leaves.
        self.payouts.insert(account, U256::ZERO);
        let owed = checked_sub(self.total_payouts.get(), amount)?;
        self.total_payouts.set(owed);
        self.vm().log(Withdrawn { account, amount });
        transfer_eth(self.vm(), account, amount)
            .map_err(|_| Error::TransferFailed(TransferFailed {}))
    }

    /// Any other call is the dispute game's (`IDisputeGame`: `dispute`, `submitVerdict`,
    /// `timeoutVerifier`, `disputeOf`): delegate-called to `disputeGame`, which runs it on this
    /// market's storage and balance with the caller and value preserved.
    ///
    /// # Errors
    /// `NotInitialized`, or whatever the game reverts with (an unknown selector: empty data).
    #[fallback]
    #[payable]
    #[allow(unsafe_code)] // delegate_call is unsafe: see SAFETY
    pub fn forward(&mut self, calldata: &[u8]) -> ArbResult {
        self.require_initialized()?;
        let game = self.dispute_game.get();
        // SAFETY: the game lays its storage out from the same declaration (state.rs), and the
        // SDK flushes this call's storage cache before delegating and clears it, so the game's
        // writes are what this contract reads afterwards.
        let context = Call::new_mutating(self);
        unsafe { delegate_call(self.vm(), context, game, calldata) }.map_err(Into::into)
    }

    // ----- Receipts (ERC-721-like) -----

    /// The owner of order `tokenId`'s receipt.
    ///
    /// # Errors
    /// `UnknownOrder`.
    pub fn owner_of(&self, token_id: U256) -> Result<Address, Error> {
        self.status_of(token_id)?;
        Ok(self.orders.getter(token_id).holder.get())
    }

    /// How many receipts `owner` holds.
    ///
    /// # Errors
    /// `ZeroAddress`.
    pub fn balance_of(&self, owner: Address) -> Result<U256, Error> {
        if owner.is_zero() {
            return Err(Error::ZeroAddress(ZeroAddress {}));
        }
        Ok(self.receipt_balances.get(owner))
    }

    /// Moves a receipt; only its owner may, as `from` (no approvals). Refunds and excess of the
    /// order go to the receipt's owner at the time they are credited.
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `NotReceiptOwner`, `ZeroAddress` (`to` is zero).
    ///
    /// # Events
    /// `Transfer(from, to, tokenId)`.
    pub fn transfer_from(
        &mut self,
        from: Address,
        to: Address,
        token_id: U256,
    ) -> Result<(), Error> {
        self.require_initialized()?;
        self.status_of(token_id)?;
        let sender = self.vm().msg_sender();
        if sender != from || self.orders.getter(token_id).holder.get() != from {
            return Err(Error::NotReceiptOwner(NotReceiptOwner {
                orderId: token_id,
                account: sender,
            }));
        }
        if to.is_zero() {
            return Err(Error::ZeroAddress(ZeroAddress {}));
        }
        let from_balance = checked_sub(self.receipt_balances.get(from), U256::from(1))?;
        self.receipt_balances.insert(from, from_balance);
        let to_balance = checked_add(self.receipt_balances.get(to), U256::from(1))?;
        self.receipt_balances.insert(to, to_balance);
        self.orders.setter(token_id).holder.set(to);
        self.vm().log(Transfer {
            from,
            to,
            tokenId: token_id,
        });
        Ok(())
    }

    // ----- Views -----

    /// An order's terms and status.
    ///
    /// # Errors
    /// `UnknownOrder`.
    pub fn order(&self, order_id: U256) -> Result<OrderView, Error> {
        let current = self.status_of(order_id)?;
        let order = self.orders.getter(order_id);
        Ok((
            order.dataset_id.get(),
            order.seller.get(),
            order.template_hash.get(),
            order.params_hash.get(),
            order.manifest_hash.get(),
            order.price.get(),
            order.worker_fee.get(),
            order.escrow.get(),
            order.deadline.get().as_limbs()[0],
            current,
            order.pbs_estimate.get().as_limbs()[0],
            order.epsilon.get().as_limbs()[0],
        ))
    }

    /// An order's worker, claim time, result and delivery.
    ///
    /// # Errors
    /// `UnknownOrder`.
    pub fn order_work(&self, order_id: U256) -> Result<OrderWorkView, Error> {
        self.status_of(order_id)?;
        let order = self.orders.getter(order_id);
        Ok((
            order.worker.get(),
            order.claimed_at.get().as_limbs()[0],
            self.result_cids.getter(order_id).get(),
            order.result_hash.get(),
            self.delivery_cids.getter(order_id).get(),
        ))
    }

    /// The worker's attestation signature for an order (empty before `submitResult`).
    ///
    /// # Errors
    /// `UnknownOrder`.
    pub fn attestation_signature(&self, order_id: U256) -> Result<Bytes, Error> {
        self.status_of(order_id)?;
        Ok(self.signatures.getter(order_id).get())
    }

    /// The buyer's delivery public key for an order.
    ///
    /// # Errors
    /// `UnknownOrder`.
    pub fn buyer_key(&self, order_id: U256) -> Result<Bytes, Error> {
        self.status_of(order_id)?;
        Ok(self.buyer_keys.getter(order_id).get())
    }

    /// How many orders were ever placed (the last order id).
    #[must_use]
    pub fn order_count(&self) -> U256 {
        self.order_count.get()
    }

    /// Orders on `datasetId` that are Open, Claimed, Computed or Disputed (the registry refuses
    /// to release the seller's stake while any are).
    #[must_use]
    pub fn open_order_count(&self, dataset_id: U256) -> U256 {
        self.open_orders.get(dataset_id)
    }

    /// The ε (micro-ε) orders on `datasetId` have spent of its privacy budget, every buyer
    /// together: what is left is `orderTerms`' last value (`privacyBudget - sampleEpsilon`)
    /// less this.
    #[must_use]
    pub fn epsilon_spent(&self, dataset_id: U256) -> u64 {
        self.epsilon_spent.get(dataset_id).as_limbs()[0]
    }

    /// Payouts credited to `account` and not withdrawn yet.
    #[must_use]
    pub fn payout_of(&self, account: Address) -> U256 {
        self.payouts.get(account)
    }

    /// `worker`'s bond.
    #[must_use]
    pub fn worker_bond(&self, worker: Address) -> U256 {
        self.workers.getter(worker).bond.get()
    }

    /// How many orders `worker` holds Claimed or Computed, or is drawn to verify.
    #[must_use]
    pub fn active_claims(&self, worker: Address) -> u64 {
        self.workers.getter(worker).active_claims.get().as_limbs()[0]
    }

    /// The money the market holds, by bucket: `(totalEscrow, totalBonds, totalPayouts,
    /// totalDisputeBonds)`; their sum is the market's balance (see the money invariant).
    #[must_use]
    pub fn totals(&self) -> (U256, U256, U256, U256) {
        (
            self.total_escrow.get(),
            self.total_bonds.get(),
            self.total_payouts.get(),
            self.total_dispute_bonds.get(),
        )
    }

    /// The market's configuration: `(owner, registry, proofManager, workerFee, minWorkerBond,
    /// claimTimeout, maxOrderLifetime, disputeGame)` — who initialized it, the `DatasetRegistry`
    /// and `ProofManager` it reads, the fee charged on new orders, the bond a worker needs to
    /// claim (and a disputer posts), the seconds a claim or a verifier's assignment lasts, the
    /// latest deadline a new order may have, in seconds from now, and the program it
    /// delegate-calls for the dispute game. One view, not eight: each exported function costs
    /// WASM.
    #[must_use]
    pub fn config(&self) -> (Address, Address, Address, U256, U256, u64, u64, Address) {
        (
            self.owner.get(),
            self.registry.get(),
            self.proof_manager.get(),
            self.worker_fee.get(),
            self.min_worker_bond.get(),
            self.claim_timeout.get().as_limbs()[0],
            self.max_order_lifetime.get().as_limbs()[0],
            self.dispute_game.get(),
        )
    }
}

/// The buckets of [`QueryMarket::totals`] one by one, and the attestation digest, for the tests
/// (not exported: each exported view costs WASM, and agents compute the digest themselves).
#[cfg(test)]
impl QueryMarket {
    /// Who initialized the market.
    #[must_use]
    fn owner(&self) -> Address {
        self.owner.get()
    }

    /// The `DatasetRegistry`.
    #[must_use]
    fn registry(&self) -> Address {
        self.registry.get()
    }

    /// The `ProofManager`.
    #[must_use]
    fn proof_manager(&self) -> Address {
        self.proof_manager.get()
    }

    /// The worker fee charged on new orders.
    #[must_use]
    fn worker_fee(&self) -> U256 {
        self.worker_fee.get()
    }

    /// The bond a worker needs to claim orders.
    #[must_use]
    fn min_worker_bond(&self) -> U256 {
        self.min_worker_bond.get()
    }

    /// Seconds a claim lasts before another worker may take it over.
    #[must_use]
    fn claim_timeout(&self) -> u64 {
        self.claim_timeout.get().as_limbs()[0]
    }

    /// The latest deadline a new order may have, in seconds from now.
    #[must_use]
    fn max_order_lifetime(&self) -> u64 {
        self.max_order_lifetime.get().as_limbs()[0]
    }

    /// Σ escrow of the orders that are Open, Claimed, Computed or Disputed.
    #[must_use]
    fn total_escrow(&self) -> U256 {
        self.total_escrow.get()
    }

    /// Σ worker bonds.
    #[must_use]
    fn total_bonds(&self) -> U256 {
        self.total_bonds.get()
    }

    /// Σ payouts not withdrawn yet.
    #[must_use]
    fn total_payouts(&self) -> U256 {
        self.total_payouts.get()
    }

    /// Σ bonds of the disputes in progress.
    #[must_use]
    fn total_dispute_bonds(&self) -> U256 {
        self.total_dispute_bonds.get()
    }

    /// The EIP-712 digest a worker signs for `resultHash` on `orderId`.
    ///
    /// # Errors
    /// `UnknownOrder`.
    fn attestation_digest(&self, order_id: U256, result_hash: B256) -> Result<B256, Error> {
        self.status_of(order_id)?;
        Ok(self.digest(order_id, result_hash))
    }
}

impl QueryMarket {
    /// The EIP-712 domain separator (name `"DataCloud QueryMarket"`, version "1", this chain, this
    /// contract).
    fn domain_separator(&self) -> B256 {
        let mut encoded = [0u8; 160];
        encoded[..32].copy_from_slice(DOMAIN_TYPEHASH.as_slice());
        encoded[32..64].copy_from_slice(NAME_HASH.as_slice());
        encoded[64..96].copy_from_slice(VERSION_HASH.as_slice());
        encoded[96..128].copy_from_slice(&U256::from(self.vm().chain_id()).to_be_bytes::<32>());
        encoded[140..].copy_from_slice(self.vm().contract_address().as_slice());
        self.vm().native_keccak256(&encoded)
    }

    fn require_seller(&self, order_id: U256) -> Result<(), Error> {
        let caller = self.vm().msg_sender();
        if caller == self.orders.getter(order_id).seller.get() {
            Ok(())
        } else {
            Err(unauthorized(order_id, caller))
        }
    }

    /// Whether the order's claim is older than its claim window.
    fn claim_expired(&self, order_id: U256, now: u64) -> bool {
        let claimed_at = self.orders.getter(order_id).claimed_at.get().as_limbs()[0];
        claimed_at.saturating_add(self.claim_window(order_id)) < now
    }

    /// Takes an order's escrow out of `totalEscrow` and the order out of the open count and the
    /// claimant's active claims (`claimant` zero: none). The caller credits the escrow.
    fn close_order(
        &mut self,
        dataset_id: U256,
        claimant: Address,
        escrow: U256,
    ) -> Result<(), Error> {
        let escrowed = checked_sub(self.total_escrow.get(), escrow)?;
        self.total_escrow.set(escrowed);
        let open = checked_sub(self.open_orders.get(dataset_id), U256::from(1))?;
        self.open_orders.insert(dataset_id, open);
        if !claimant.is_zero() {
            self.release_claim(claimant)?;
        }
        Ok(())
    }

    /// `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(Attestation))` (EIP-712).
    fn digest(&self, order_id: U256, result_hash: B256) -> B256 {
        let order = self.orders.getter(order_id);
        let mut encoded = [0u8; 224];
        encoded[..32].copy_from_slice(ATTESTATION_TYPEHASH.as_slice());
        encoded[32..64].copy_from_slice(&order_id.to_be_bytes::<32>());
        encoded[64..96].copy_from_slice(&order.dataset_id.get().to_be_bytes::<32>());
        encoded[96..128].copy_from_slice(order.manifest_hash.get().as_slice());
        encoded[128..160].copy_from_slice(order.template_hash.get().as_slice());
        encoded[160..192].copy_from_slice(order.params_hash.get().as_slice());
        encoded[192..].copy_from_slice(result_hash.as_slice());
        self.typed_digest(&encoded)
    }

    /// `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(Delivery))` (EIP-712) for the order's
    /// current result: a `bytes` member is hashed into its word.
    fn delivery_digest(&self, order_id: U256, delivery_cid: &[u8]) -> B256 {
        let mut encoded = [0u8; 128];
        encoded[..32].copy_from_slice(DELIVERY_TYPEHASH.as_slice());
        encoded[32..64].copy_from_slice(&order_id.to_be_bytes::<32>());
        encoded[64..96].copy_from_slice(self.orders.getter(order_id).result_hash.get().as_slice());
        encoded[96..].copy_from_slice(self.vm().native_keccak256(delivery_cid).as_slice());
        self.typed_digest(&encoded)
    }

    /// `keccak256(0x1901 ‖ domainSeparator ‖ keccak256(encoded))`.
    fn typed_digest(&self, encoded: &[u8]) -> B256 {
        let struct_hash = self.vm().native_keccak256(encoded);
        let mut message = [0u8; 66];
        message[0] = 0x19;
        message[1] = 0x01;
        message[2..34].copy_from_slice(self.domain_separator().as_slice());
        message[34..].copy_from_slice(struct_hash.as_slice());
        self.vm().native_keccak256(&message)
    }

    fn log_delivery(&self, order_id: U256, delivery_cid: Bytes, signature: Bytes) {
        self.vm().log(ResultDelivered {
            orderId: order_id,
            deliveryCid: delivery_cid,
            signature,
        });
    }

    /// `ProofManager.health(datasetId)`.
    fn health(&self, dataset_id: U256) -> Result<u8, Error> {
        self.view_call(
            self.proof_manager.get(),
            HEALTH_SELECTOR,
            &[dataset_id.to_be_bytes()],
        )
        .as_deref()
        .and_then(decode_health)
        .ok_or(Error::ProofManagerCallFailed(ProofManagerCallFailed {}))
    }

    /// `DatasetRegistry.slash(datasetId, amount, to)`: up to `amount` of the dataset's stake
    /// into `to`'s payout at the registry; returns what it slashed.
    fn slash_stake(&mut self, dataset_id: U256, amount: U256, to: Address) -> Result<U256, Error> {
        self.registry_call(
            SLASH_SELECTOR,
            &[
                dataset_id.to_be_bytes(),
                amount.to_be_bytes(),
                address_word(to),
            ],
        )
    }

    /// `DatasetRegistry.compensate(...)`, as a closing order's last step: its share of the
    /// lapses slashed from its dataset while it was open, at most its price, into `holder`'s
    /// payout at the registry.
    fn compensate(&mut self, order_id: U256, holder: Address) -> Result<(), Error> {
        let order = self.orders.getter(order_id);
        let words = [
            order.dataset_id.get().to_be_bytes(),
            order.compensation_index.get().to_be_bytes(),
            address_word(holder),
            order.price.get().to_be_bytes(),
        ];
        self.registry_call(COMPENSATE_SELECTOR, &words).map(drop)
    }

    /// Calls the registry with `selector ‖ words` (hand-encoded, as [`Self::view_call`]) and
    /// returns the first word of its answer.
    fn registry_call(&mut self, selector: [u8; 4], words: &[[u8; 32]]) -> Result<U256, Error> {
        let mut calldata = Vec::with_capacity(4 + 32 * words.len());
        calldata.extend_from_slice(&selector);
        for word in words {
            calldata.extend_from_slice(word);
        }
        let registry = self.registry.get();
        let context = Call::new_mutating(self);
        let answer = call(self.vm(), context, registry, &calldata)
            .map_err(|_| Error::RegistryCallFailed(RegistryCallFailed {}))?;
        answer
            .get(..32)
            .map(U256::from_be_slice)
            .ok_or(Error::RegistryCallFailed(RegistryCallFailed {}))
    }

    /// Static-calls `to` with `selector ‖ words` and returns its answer, `None` when it reverts.
    /// Hand-encoded: the two views the market reads take only static words, and `sol_interface!`'s
    /// generic encoders and decoders cost more WASM than these few lines.
    fn view_call(&self, to: Address, selector: [u8; 4], words: &[[u8; 32]]) -> Option<Vec<u8>> {
        let mut calldata = Vec::with_capacity(4 + 32 * words.len());
        calldata.extend_from_slice(&selector);
        for word in words {
            calldata.extend_from_slice(word);
        }
        static_call(self.vm(), Call::new(), to, &calldata).ok()
    }

    /// The signer of `digest` per the `ecrecover` precompile, for a 65-byte `r ‖ s ‖ v`
    /// signature with `v` in {27, 28} (or {0, 1}) and a low `s` (EIP-2); `None` otherwise.
    fn recover_signer(&self, digest: B256, signature: &[u8]) -> Option<Address> {
        let (rs, v) = signature.split_at_checked(64)?;
        let v = match v {
            [v @ (27 | 28)] => *v,
            [v @ (0 | 1)] => *v + 27,
            _ => return None,
        };
        let s = U256::from_be_slice(rs.get(32..)?);
        if s > HALF_CURVE_ORDER {
            return None;
        }
        let mut input = [0u8; 128];
        input[..32].copy_from_slice(digest.as_slice());
        input[63] = v;
        input[64..].copy_from_slice(rs);
        let output = static_call(self.vm(), Call::new(), ECRECOVER, &input).ok()?;
        // The precompile answers nothing for a signature that does not recover.
        let word: [u8; 32] = output.as_slice().try_into().ok()?;
        Some(Address::from_slice(&word[12..]))
    }
}

/// `(address seller, bytes32 manifestHash, uint256 price, uint256 compensationIndex, uint64
/// orderBudget)` from `orderTerms`' return data.
fn decode_order_terms(answer: &[u8]) -> Option<(Address, B256, U256, U256, u64)> {
    let words = answer.get(..160)?;
    if words[..12]
        .iter()
        .chain(&words[128..152])
        .any(|&byte| byte != 0)
    {
        return None;
    }
    Some((
        Address::from_slice(&words[12..32]),
        B256::from_slice(&words[32..64]),
        U256::from_be_slice(&words[64..96]),
        U256::from_be_slice(&words[96..128]),
        u64::from_be_bytes(words[152..160].try_into().ok()?),
    ))
}

/// `address` as an ABI word.
fn address_word(address: Address) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(address.as_slice());
    word
}

/// The `uint8` from `health`'s return data.
fn decode_health(answer: &[u8]) -> Option<u8> {
    let word = answer.get(..32)?;
    if word[..31].iter().any(|&byte| byte != 0) {
        return None;
    }
    Some(word[31])
}

/// Whether the order still holds its escrow (and counts as open for the seller's stake).
fn is_active(current: u8) -> bool {
    matches!(
        current,
        status::OPEN | status::CLAIMED | status::COMPUTED | status::DISPUTED
    )
}

/// The dispute game's functions, for the tests: the market runs them by delegate call to the
/// `DisputeGame` program, whose crate compiles this same file.
#[cfg(test)]
mod game {
    use super::*;

    include!("../../dispute-game/src/game.rs");
}

#[cfg(test)]
mod tests;
