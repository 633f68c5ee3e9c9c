//! `DisputeGame`: the `QueryMarket`'s dispute game, as a program of its own.
//!
//! The market and its dispute game did not fit one Stylus program (24 KiB compressed each), so
//! the game is a second program that the market runs by delegate call: the market's fallback
//! forwards `dispute`, `submitVerdict`, `timeoutVerifier` and `disputeOf` to it, and the game
//! executes them on the market's storage and balance, with the caller and the value preserved.
//! Users and agents call these functions **at the market's address**; this program's own
//! address holds no state (called directly, it answers `NotInitialized`).
//!
//! Both programs lay out the same storage because both include the one declaration in
//! `contracts/query-market/src/state.rs`; the game's logic lives in `src/game.rs`, which the
//! market's tests include too, so the money invariant is checked over markets and disputes
//! together. How a dispute is played is described in the market's documentation
//! (`datacloud_query_market`, "Disputes: re-execution, not anyone's word").
//!
//! Nitro does not count a delegate call as reentrant (`TxProcessor::PushContract` leaves
//! delegate frames out), so the SDK's reentrancy guard lets the game run; the game itself makes
//! no external call.

#![cfg_attr(not(any(test, feature = "export-abi")), no_main)]
extern crate alloc;

include!("../../query-market/src/state.rs");

mod game {
    #[allow(clippy::wildcard_imports)] // game.rs is written against the whole shared state
    use super::*;

    include!("game.rs");
}

/// The market's state as the dispute game's router sees it (the exported interface is named
/// after this alias: `IDisputeGame`).
pub type DisputeGame = QueryMarket;

#[public]
impl DisputeGame {
    /// The order's seller or its receipt's owner disputes the Computed result, posting
    /// `msg.value` (at least `minWorkerBond`) as its dispute bond; a verifier is drawn.
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `Unauthorized`, `InvalidOrderStatus`, `BondTooLow`,
    /// `NoVerifier`.
    #[payable]
    #[selector(name = "dispute")]
    pub fn open_dispute(&mut self, order_id: U256) -> Result<(), Error> {
        self.dispute(order_id)
    }

    /// The drawn verifier answers with the result it computed (CID and keccak-256).
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `InvalidOrderStatus`, `Unauthorized`, `ClaimExpired`,
    /// `InvalidCid`.
    #[selector(name = "submitVerdict")]
    #[allow(clippy::needless_pass_by_value)] // the router hands over decoded arguments by value
    pub fn answer(
        &mut self,
        order_id: U256,
        result_cid: Bytes,
        result_hash: B256,
    ) -> Result<(), Error> {
        self.submit_verdict(order_id, result_cid, result_hash)
    }

    /// After a verifier's deadline, anyone replaces it (it forfeits part of its bond).
    ///
    /// # Errors
    /// `NotInitialized`, `UnknownOrder`, `InvalidOrderStatus`, `DeadlineNotPassed`.
    #[selector(name = "timeoutVerifier")]
    pub fn replace_verifier(&mut self, order_id: U256) -> Result<(), Error> {
        self.timeout_verifier(order_id)
    }

    /// An order's dispute: disputer, bond, round (1 or 2 while in progress; 3 once its result
    /// was upheld; 0 otherwise), the verifier drawn and its deadline.
    ///
    /// # Errors
    /// `UnknownOrder`.
    #[selector(name = "disputeOf")]
    pub fn dispute_view(&self, order_id: U256) -> Result<DisputeView, Error> {
        self.dispute_of(order_id)
    }
}
