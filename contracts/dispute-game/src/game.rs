// The dispute game's logic: `impl QueryMarket` over the market's state (state.rs), included by
// this crate's router and by the market's tests.

impl QueryMarket {
    /// The order's seller or its receipt's owner disputes the Computed result, posting
    /// `msg.value` (at least `minWorkerBond`) as its dispute bond; a verifier is drawn to
    /// recompute it (see the module documentation for how the dispute ends).
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `Unauthorized`, `InvalidOrderStatus` (not Computed, or
    /// a result already upheld once), `BondTooLow`, `NoVerifier`.
    ///
    /// # Events
    /// `DisputeOpened(orderId, disputer, bond)`, `VerifierAssigned(orderId, verifier, 1, deadline)`.
    pub fn dispute(&mut self, order_id: U256) -> Result<(), Error> {
        self.require_initialized()?;
        let current = self.status_of(order_id)?;
        let disputer = self.vm().msg_sender();
        let order = self.orders.getter(order_id);
        if disputer != order.seller.get() && disputer != order.holder.get() {
            return Err(unauthorized(order_id, disputer));
        }
        if current != status::COMPUTED
            || self.disputes.getter(order_id).round.get().byte(0) == UPHELD_ROUND
        {
            return Err(invalid_status(order_id, current));
        }
        let bond = self.vm().msg_value();
        let required = self.min_worker_bond.get();
        if bond < required {
            return Err(Error::BondTooLow(BondTooLow { bond, required }));
        }
        let held = checked_add(self.total_dispute_bonds.get(), bond)?;
        self.total_dispute_bonds.set(held);
        let mut entry = self.disputes.setter(order_id);
        entry.disputer.set(disputer);
        entry.bond.set(bond);
        entry.round.set(U8::from(1));
        self.set_status(order_id, status::DISPUTED);
        if self.assign_verifier(order_id, Address::ZERO) {
            Ok(())
        } else {
            Err(Error::NoVerifier(NoVerifier { orderId: order_id }))
        }
    }

    /// The verifier drawn for a disputed order answers with the result it computed (its CID and
    /// keccak-256; it publishes the bytes as the worker did). The answer is compared with the
    /// worker's (hash and CID): it upholds the result, overturns it, or draws a second verifier.
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `InvalidOrderStatus` (not Disputed), `Unauthorized`,
    /// `ClaimExpired` (the verifier's time is up), `InvalidCid`.
    ///
    /// # Events
    /// `VerdictSubmitted`, then `VerifierAssigned` (round 2) or `DisputeResolved` (with
    /// `WorkerSlashed` for the losing side).
    pub fn submit_verdict(
        &mut self,
        order_id: U256,
        result_cid: Bytes,
        result_hash: B256,
    ) -> Result<(), Error> {
        self.require_initialized()?;
        let current = self.status_of(order_id)?;
        if current != status::DISPUTED {
            return Err(invalid_status(order_id, current));
        }
        check_cid(&result_cid)?;
        let entry = self.disputes.getter(order_id);
        let verifier = entry.verifier.get();
        let caller = self.vm().msg_sender();
        if caller != verifier {
            return Err(unauthorized(order_id, caller));
        }
        if self.vm().block_timestamp() > entry.deadline.get().as_limbs()[0] {
            return Err(Error::ClaimExpired(ClaimExpired { orderId: order_id }));
        }
        let round = entry.round.get().byte(0);
        let first_verifier = entry.first_verifier.get();
        let first_vote = entry.first_vote.get();
        let vote = self.vote(result_hash, &result_cid);
        let worker_vote = self.vote(
            self.orders.getter(order_id).result_hash.get(),
            &self.result_cids.getter(order_id).get(),
        );
        self.release_claim(verifier)?;
        self.vm().log(VerdictSubmitted {
            orderId: order_id,
            verifier,
            resultCid: result_cid,
            resultHash: result_hash,
        });
        if vote == worker_vote {
            return self.uphold(order_id, verifier, first_verifier);
        }
        if round == 1 {
            let mut entry = self.disputes.setter(order_id);
            entry.round.set(U8::from(2));
            entry.first_verifier.set(verifier);
            entry.first_vote.set(vote);
            if self.assign_verifier(order_id, Address::ZERO) {
                return Ok(());
            }
            return self.reopen(order_id, outcome::INCONCLUSIVE, &[]);
        }
        if vote == first_vote {
            return self.reopen(order_id, outcome::OVERTURNED, &[first_verifier, verifier]);
        }
        self.reopen(order_id, outcome::INCONCLUSIVE, &[])
    }

    /// After a verifier's deadline, anyone replaces it: it forfeits an eighth of
    /// `minWorkerBond` to the order's worker and another verifier is drawn for the same round
    /// (none left: the dispute is inconclusive).
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `InvalidOrderStatus` (not Disputed),
    /// `DeadlineNotPassed` (the verifier still has time).
    ///
    /// # Events
    /// `ClaimForfeited(orderId, verifier, amount)`, then `VerifierAssigned` or
    /// `DisputeResolved`.
    pub fn timeout_verifier(&mut self, order_id: U256) -> Result<(), Error> {
        self.require_initialized()?;
        let current = self.status_of(order_id)?;
        if current != status::DISPUTED {
            return Err(invalid_status(order_id, current));
        }
        let entry = self.disputes.getter(order_id);
        let deadline = entry.deadline.get().as_limbs()[0];
        if self.vm().block_timestamp() <= deadline {
            return Err(Error::DeadlineNotPassed(DeadlineNotPassed { deadline }));
        }
        let verifier = entry.verifier.get();
        let worker = self.orders.getter(order_id).worker.get();
        self.release_claim(verifier)?;
        self.forfeit_expired_claim(order_id, verifier, worker)?;
        if self.assign_verifier(order_id, verifier) {
            return Ok(());
        }
        self.reopen(order_id, outcome::INCONCLUSIVE, &[])
    }

    /// An order's dispute: disputer, bond, round (1 or 2 while in progress; [`UPHELD_ROUND`]
    /// once its result was upheld; 0 otherwise), the verifier drawn and its deadline.
    ///
    /// # Errors
    /// `UnknownOrder`.
    pub fn dispute_of(&self, order_id: U256) -> Result<DisputeView, Error> {
        self.status_of(order_id)?;
        let entry = self.disputes.getter(order_id);
        Ok((
            entry.disputer.get(),
            entry.bond.get(),
            entry.round.get().byte(0),
            entry.verifier.get(),
            entry.deadline.get().as_limbs()[0],
        ))
    }

    /// Draws the verifier of the dispute's current round: from a pseudo-random start in the
    /// worker list, the first of [`MAX_VERIFIER_PROBES`] workers that is none of the order's
    /// parties, its worker, its disputer, the round-1 verifier or `skip`, and whose bond backs
    /// one more claim. The assignment counts as a claim and is due in `claimTimeout`. `false`
    /// when nobody qualifies.
    fn assign_verifier(&mut self, order_id: U256, skip: Address) -> bool {
        let count = self.worker_count.get().as_limbs()[0];
        if count == 0 {
            return false;
        }
        let order = self.orders.getter(order_id);
        let entry = self.disputes.getter(order_id);
        let round = entry.round.get().byte(0);
        let excluded = [
            order.buyer.get(),
            order.holder.get(),
            order.seller.get(),
            order.worker.get(),
            entry.disputer.get(),
            entry.first_verifier.get(),
            skip,
        ];
        let now = self.vm().block_timestamp();
        let mut seed = [0u8; 73];
        seed[..32].copy_from_slice(&order_id.to_be_bytes::<32>());
        seed[32..64].copy_from_slice(order.result_hash.get().as_slice());
        seed[64] = round;
        seed[65..].copy_from_slice(&now.to_be_bytes());
        let draw = self.vm().native_keccak256(&seed);
        let mut low = [0u8; 8];
        low.copy_from_slice(&draw[24..]);
        let start = u64::from_be_bytes(low) % count;
        for step in 0..count.min(MAX_VERIFIER_PROBES) {
            let candidate = self.worker_list.get(U256::from((start + step) % count));
            let worker = self.workers.getter(candidate);
            let active = worker.active_claims.get().as_limbs()[0];
            if excluded.contains(&candidate) || !self.backs_another_claim(worker.bond.get(), active)
            {
                continue;
            }
            self.workers
                .setter(candidate)
                .active_claims
                .set(U64::from_limbs([active + 1]));
            let deadline = now.saturating_add(self.claim_window(order_id));
            let mut entry = self.disputes.setter(order_id);
            entry.verifier.set(candidate);
            entry.deadline.set(U64::from_limbs([deadline]));
            self.vm().log(VerifierAssigned {
                orderId: order_id,
                verifier: candidate,
                round,
                deadline,
            });
            return true;
        }
        false
    }

    /// What a verifier's answer is compared by: `keccak256(resultHash ‖ resultCid)`.
    fn vote(&self, result_hash: B256, result_cid: &[u8]) -> B256 {
        let cid = &result_cid[..result_cid.len().min(MAX_BLOB_LEN)];
        let mut encoded = [0u8; 32 + MAX_BLOB_LEN];
        encoded[..32].copy_from_slice(result_hash.as_slice());
        encoded[32..32 + cid.len()].copy_from_slice(cid);
        self.vm().native_keccak256(&encoded[..32 + cid.len()])
    }

    /// Ends the order's dispute (its bond leaves `totalDisputeBonds`, returned for the caller to
    /// credit) and records whether the result was upheld.
    fn end_dispute(&mut self, order_id: U256, upheld: bool) -> Result<U256, Error> {
        let bond = self.disputes.getter(order_id).bond.get();
        let held = checked_sub(self.total_dispute_bonds.get(), bond)?;
        self.total_dispute_bonds.set(held);
        let mut entry = self.disputes.setter(order_id);
        entry.disputer.set(Address::ZERO);
        entry.bond.set(U256::ZERO);
        entry
            .round
            .set(U8::from(if upheld { UPHELD_ROUND } else { 0 }));
        entry.verifier.set(Address::ZERO);
        entry.first_verifier.set(Address::ZERO);
        entry.first_vote.set(B256::ZERO);
        entry.deadline.set(U64::ZERO);
        Ok(bond)
    }

    /// The worker's result stands: the dispute bond pays `verifier` the order's fee and the
    /// rest goes to the worker, with the slash of `minority` (a round-1 verifier that answered
    /// otherwise; zero: none). The order is Computed again, its delivery window restarted.
    fn uphold(
        &mut self,
        order_id: U256,
        verifier: Address,
        minority: Address,
    ) -> Result<(), Error> {
        let order = self.orders.getter(order_id);
        let worker = order.worker.get();
        let fee = order.worker_fee.get();
        let bond = self.end_dispute(order_id, true)?;
        let paid = fee.min(bond);
        self.credit(verifier, paid)?;
        let mut owed = bond - paid;
        if !minority.is_zero() {
            owed = checked_add(owed, self.slash(order_id, minority)?)?;
        }
        self.credit(worker, owed)?;
        // The seller's delivery window starts again: it could not deliver while disputed.
        self.mark_computed(order_id);
        self.vm().log(DisputeResolved {
            orderId: order_id,
            outcome: outcome::UPHELD,
        });
        Ok(())
    }

    /// The order reopens for another worker (not this one): the worker's claim is released and
    /// its result cleared. Overturned, the worker is slashed and that pays each of `verifiers`
    /// the order's fee, the rest going to the disputer with its bond; inconclusive, the disputer
    /// takes its bond back.
    fn reopen(&mut self, order_id: U256, result: u8, verifiers: &[Address]) -> Result<(), Error> {
        let order = self.orders.getter(order_id);
        let worker = order.worker.get();
        let fee = order.worker_fee.get();
        let disputer = self.disputes.getter(order_id).disputer.get();
        let mut owed = self.end_dispute(order_id, false)?;
        if result == outcome::OVERTURNED {
            let mut slashed = self.slash(order_id, worker)?;
            for &verifier in verifiers {
                let paid = fee.min(slashed);
                self.credit(verifier, paid)?;
                slashed -= paid;
            }
            owed = checked_add(owed, slashed)?;
        }
        self.credit(disputer, owed)?;
        self.release_claim(worker)?;
        self.orders.setter(order_id).result_hash.set(B256::ZERO);
        self.result_cids.setter(order_id).set(&[]);
        self.signatures.setter(order_id).set(&[]);
        self.set_status(order_id, status::OPEN);
        self.vm().log(DisputeResolved {
            orderId: order_id,
            outcome: result,
        });
        Ok(())
    }


    /// The losing side of a dispute loses `minWorkerBond` (at most its bond); returns it.
    fn slash(&mut self, order_id: U256, account: Address) -> Result<U256, Error> {
        let amount = self.take_bond(account, self.min_worker_bond.get())?;
        self.vm().log(WorkerSlashed {
            orderId: order_id,
            account,
            amount,
        });
        Ok(amount)
    }
}
