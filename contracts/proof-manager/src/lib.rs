//! `ProofManager`: proofs of data possession (PDP) for DataCloud datasets.
//!
//! Each dataset registered in the `DatasetRegistry` may have one proof set: the SHA254 roots of
//! its Filecoin pieces and their leaf counts. Its owner opens a proving period
//! ([`ProofManager::next_proving_period`]), which fixes a challenge epoch `challengeFinality`
//! blocks ahead; once that block exists its hash seeds `challengesPerProof` leaf challenges, and
//! anyone may answer them with Merkle proofs ([`ProofManager::prove_possession`]) until the
//! challenge window ends. A missed window or deadline lets anyone record a fault
//! ([`ProofManager::record_fault`]); `faultThreshold` faults within a sliding window of
//! [`FAULT_WINDOW_PERIODS`] proving periods slash the dataset's stake in the registry. Faults are
//! counted over time, not in a row: a proof in between does not forgive them, so a seller that
//! stores part of the data cannot stay clear by proving now and then (audit M-7), and proofs
//! made back to back do not age a fault out any faster.
//!
//! A slash is not a prize: the reporter receives a bounty of `reporterBountyBps` of it (at most
//! [`MAX_REPORTER_BOUNTY_BPS`], 5 %) and the rest goes first to the buyers the lapse strands: the
//! registry's `slashForBuyers` reserves an equal share for each order open on the dataset, paid to
//! the receipt's owner (at most the order's price) when the order closes, and burns what is left
//! (everything when no order is open). A seller that records its own faults, as its daemon does
//! to open the next period, ends with less than before; anyone else is paid enough to watch. The
//! buyers' escrow itself sits in the market, which refunds it (in full, or less the fee of a
//! worker that computed) when the dataset is not healthy at delivery or the deadline passes.
//!
//! Leaf and challenge derivation follow FilOzone's `PDPVerifier` and live in `datacloud-pdp`, the
//! same `no_std` code the seller's prover runs, so a proof the prover builds is checked by exactly
//! that code here (`challenge_leaf_index`, `PieceIndex`, `verify_inclusion`).
//!
//! Block numbers are L2 block numbers from `ArbSys.arbBlockNumber()`: on Arbitrum the Stylus
//! `block_number` hostio is an L1 estimate, while `ArbSys.arbBlockHash` (the challenge seed) takes
//! L2 numbers and only answers for the 256 blocks before the current one — hence
//! `challengeWindow ≤ 255`.
//!
//! Reentrancy: the SDK refuses reentrant calls unless its `reentrant` feature is on, and it is off
//! here, so the registry cannot call back into `recordFault` while we wait on `slash`; the fault's
//! effects are written before that call anyway (checks-effects-interactions).

#![cfg_attr(not(any(test, feature = "export-abi")), no_main)]
extern crate alloc;

use alloc::vec::Vec;

use alloy_primitives::{Address, B256, U16, U64, U256, address};
use alloy_sol_types::{SolEvent, sol};
use datacloud_pdp::{Node, PieceIndex, verify_inclusion};
use stylus_sdk::{
    prelude::*,
    storage::{
        StorageAddress, StorageArray, StorageB256, StorageBool, StorageMap, StorageU16, StorageU64,
        StorageU256, StorageVec,
    },
};

include!("../../deployer.rs");
include!("../../div.rs");

/// Address of Arbitrum's `ArbSys` precompile.
pub const ARB_SYS: Address = address!("0x0000000000000000000000000000000000000064");

/// Most pieces one proof set may hold (bounds the storage a proof reads).
pub const MAX_PIECES: usize = 64;
/// Most challenges per proof the configuration may ask for.
pub const MAX_CHALLENGES_PER_PROOF: u64 = 16;
/// `ArbSys.arbBlockHash` only answers for the 256 blocks before the current one, and a proof may
/// land at `challengeEpoch + challengeWindow`.
pub const MAX_CHALLENGE_WINDOW: u64 = 255;
/// Most faults `faultThreshold` may ask for (the proof set keeps that many fault blocks).
pub const MAX_FAULT_THRESHOLD: u64 = 16;
/// The sliding window faults are counted over, in proving periods.
pub const FAULT_WINDOW_PERIODS: u64 = 8;
/// Basis points in 100 %.
pub const BPS: u16 = 10_000;
/// The largest share of a slash the reporter may receive (5 %).
pub const MAX_REPORTER_BOUNTY_BPS: u16 = 500;

/// `health` answers.
pub const HEALTH_NONE: u8 = 0;
/// The last challenge was proven and no fault is due.
pub const HEALTH_HEALTHY: u8 = 1;
/// Never proven yet, its last period ended in a fault, or a fault is due.
pub const HEALTH_DEGRADED: u8 = 2;
/// At least `faultThreshold` faults in the last `FAULT_WINDOW_PERIODS` proving periods.
pub const HEALTH_FAILED: u8 = 3;

// The events live in src/events.sol, one declaration shared with the exported interface
// (src/main.rs splices them into abi/IProofManager.sol, which export-abi would otherwise print without
// events). `sol!` tracks the file, so editing it rebuilds the contract.
sol!(#![sol(all_derives)] "src/events.sol");

sol! {
    #![sol(all_derives)]

    /// `initialize` was already called.
    error AlreadyInitialized();
    /// The caller of `initialize` did not deploy this program with the nonce it names.
    error NotDeployer();
    /// `initialize` has not been called yet.
    error NotInitialized();
    /// A configuration value is out of range.
    error InvalidConfig();
    /// Only the dataset's owner may do this.
    error NotDatasetOwner(uint256 datasetId, address caller);
    /// No proof set has this id.
    error UnknownProofSet(uint256 setId);
    /// The proof set has no piece at this position.
    error UnknownPiece(uint256 setId, uint64 piece);
    /// The dataset already has proof set `setId`.
    error ProofSetExists(uint256 setId);
    /// The pieces are empty, too many, of mismatched lengths, or a leaf count is not a power of two.
    error InvalidPieces();
    /// A challenge is already open: prove it or record its fault first.
    error ChallengeOpen();
    /// No challenge is open.
    error NoChallengeOpen();
    /// A challenge scheduled now would end after the current deadline.
    error TooLateToChallenge(uint64 deadline);
    /// The challenge epoch's block is not past yet.
    error ChallengeNotReady(uint64 challengeEpoch);
    /// The challenge window ended at `windowEnd`.
    error ChallengeWindowClosed(uint64 windowEnd);
    /// A proof must answer exactly `expected` challenges.
    error WrongProofCount(uint64 expected, uint64 got);
    /// The proof of challenge `index` does not verify.
    error InvalidProof(uint64 index);
    /// Nothing is overdue before `deadline` (and no challenge window has closed unproven).
    error DeadlineNotPassed(uint64 deadline);
    /// A call to the dataset registry failed (unknown dataset, or the registry reverted).
    error RegistryCallFailed();
    /// A call to `ArbSys` failed.
    error ArbSysCallFailed();
}

sol_interface! {
    /// The part of Arbitrum's `ArbSys` precompile (0x64) used here.
    interface IArbSys {
        function arbBlockNumber() external view returns (uint256);
        function arbBlockHash(uint256 arb_block_num) external view returns (bytes32);
    }

    /// The part of the `DatasetRegistry` used here.
    interface IDatasetRegistry {
        function datasetOwner(uint256 dataset_id) external view returns (address);
        function pieceOf(uint256 dataset_id) external view returns (bytes32, uint8);
        function stakeOf(uint256 dataset_id) external view returns (uint256);
        function slash(uint256 dataset_id, uint256 amount, address to) external returns (uint256);
        function slashForBuyers(uint256 dataset_id, uint256 amount) external returns (uint256);
    }
}

/// Everything `ProofManager` reverts with.
#[derive(SolidityError, Debug)]
pub enum Error {
    AlreadyInitialized(AlreadyInitialized),
    /// See [`NotDeployer`].
    NotDeployer(NotDeployer),
    NotInitialized(NotInitialized),
    InvalidConfig(InvalidConfig),
    NotDatasetOwner(NotDatasetOwner),
    UnknownProofSet(UnknownProofSet),
    UnknownPiece(UnknownPiece),
    ProofSetExists(ProofSetExists),
    InvalidPieces(InvalidPieces),
    ChallengeOpen(ChallengeOpen),
    NoChallengeOpen(NoChallengeOpen),
    TooLateToChallenge(TooLateToChallenge),
    ChallengeNotReady(ChallengeNotReady),
    ChallengeWindowClosed(ChallengeWindowClosed),
    WrongProofCount(WrongProofCount),
    InvalidProof(InvalidProof),
    DeadlineNotPassed(DeadlineNotPassed),
    RegistryCallFailed(RegistryCallFailed),
    ArbSysCallFailed(ArbSysCallFailed),
}

/// One dataset's proof set.
#[storage]
pub struct ProofSet {
    dataset_id: StorageU256,
    /// The dataset owner when the set was created (fixed in the registry, so kept here rather than
    /// asked for on every proving period).
    owner: StorageAddress,
    /// Piece roots (SHA254 digests), in order.
    roots: StorageVec<StorageB256>,
    /// Running sums of the pieces' leaf counts (`PieceIndex::cumulative`).
    cumulative: StorageVec<StorageU64>,
    /// Block whose hash seeds the open challenge; 0 when no challenge is open (an epoch is always
    /// at least `challengeFinality ≥ 1` blocks past a real block).
    challenge_epoch: StorageU64,
    /// A fault becomes recordable after this block.
    deadline: StorageU64,
    last_proven_block: StorageU64,
    faults: StorageU64,
    /// Whether its last period ended in a fault (a proof clears it).
    faulted_last: StorageBool,
    /// The blocks of its last `faultThreshold` faults: fault `n` (from 0) at `n % threshold`.
    fault_blocks: StorageArray<StorageU64, 16>,
}

/// The `ProofManager` contract.
#[storage]
#[entrypoint]
pub struct ProofManager {
    owner: StorageAddress,
    /// The `DatasetRegistry`; non-zero once initialized.
    registry: StorageAddress,
    proving_period: StorageU64,
    challenge_window: StorageU64,
    challenge_finality: StorageU64,
    challenges_per_proof: StorageU64,
    fault_threshold: StorageU64,
    slash_bps: StorageU16,
    reporter_bounty_bps: StorageU16,
    proof_set_count: StorageU256,
    proof_set_of: StorageMap<U256, StorageU256>,
    proof_sets: StorageMap<U256, ProofSet>,
}

#[public]
impl ProofManager {
    /// Configures the contract once; the caller becomes `owner()`.
    ///
    /// Periods are in L2 blocks. A proving period must fit the finality delay and the window:
    /// `provingPeriod ≥ challengeFinality + challengeWindow`.
    ///
    /// Only the account that deployed the program may call it, naming the nonce of its
    /// deploying transaction (`deployNonce`): the program's address must be the `CREATE`
    /// address of `(msg.sender, deployNonce)`, so nobody can front-run the initialization
    /// between the deployment and this call (contracts/deployer.rs).
    ///
    /// # Errors
    /// `AlreadyInitialized`; `NotDeployer`; `InvalidConfig` unless `challengeWindow ∈ 1..=255`,
    /// `challengeFinality ≥ 1`, `provingPeriod ≥ challengeFinality + challengeWindow`,
    /// `challengesPerProof ∈ 1..=16`, `faultThreshold ≥ 1`, `slashBps ≤ 10000`,
    /// `reporterBountyBps ≤ MAX_REPORTER_BOUNTY_BPS` and `registry ≠ 0`.
    ///
    /// # Events
    /// `Initialized`.
    #[allow(clippy::too_many_arguments)] // The ABI fixes the configuration as one call.
    pub fn initialize(
        &mut self,
        registry: Address,
        proving_period: u64,
        challenge_window: u64,
        challenge_finality: u64,
        challenges_per_proof: u64,
        fault_threshold: u64,
        slash_bps: u16,
        reporter_bounty_bps: u16,
        deploy_nonce: u64,
    ) -> Result<(), Error> {
        if self.is_initialized() {
            return Err(Error::AlreadyInitialized(AlreadyInitialized {}));
        }
        if !deployed_by_caller(self.vm(), deploy_nonce) {
            return Err(Error::NotDeployer(NotDeployer {}));
        }
        let fits_period = challenge_finality
            .checked_add(challenge_window)
            .is_some_and(|needed| proving_period >= needed);
        let valid = (1..=MAX_CHALLENGE_WINDOW).contains(&challenge_window)
            && challenge_finality >= 1
            && fits_period
            && (1..=MAX_CHALLENGES_PER_PROOF).contains(&challenges_per_proof)
            && (1..=MAX_FAULT_THRESHOLD).contains(&fault_threshold)
            && slash_bps <= BPS
            && reporter_bounty_bps <= MAX_REPORTER_BOUNTY_BPS
            && registry != Address::ZERO;
        if !valid {
            return Err(Error::InvalidConfig(InvalidConfig {}));
        }
        let owner = self.vm().msg_sender();
        self.owner.set(owner);
        self.registry.set(registry);
        self.proving_period.set(U64::from(proving_period));
        self.challenge_window.set(U64::from(challenge_window));
        self.challenge_finality.set(U64::from(challenge_finality));
        self.challenges_per_proof
            .set(U64::from(challenges_per_proof));
        self.fault_threshold.set(U64::from(fault_threshold));
        self.slash_bps.set(U16::from(slash_bps));
        self.reporter_bounty_bps.set(U16::from(reporter_bounty_bps));
        self.emit(&Initialized {
            owner,
            registry,
            provingPeriod: proving_period,
            challengeWindow: challenge_window,
            challengeFinality: challenge_finality,
            challengesPerProof: challenges_per_proof,
            faultThreshold: fault_threshold,
            slashBps: slash_bps,
            reporterBountyBps: reporter_bounty_bps,
        });
        Ok(())
    }

    /// Creates the proof set of `datasetId` over the piece the registry holds for it (the root
    /// and height its PieceCID names, `DatasetRegistry.pieceOf`): the seller chooses nothing, so
    /// a proof set proves the registered piece or nothing. The first proving period's deadline
    /// is `provingPeriod` blocks from now. Set ids start at 1.
    ///
    /// # Errors
    /// `NotInitialized`; `RegistryCallFailed` when the registry does not know the dataset;
    /// `InvalidPieces` for a height the proofs cannot cover; `NotDatasetOwner` unless the
    /// caller owns it; `ProofSetExists` when it already has one; `ArbSysCallFailed`.
    ///
    /// # Events
    /// `ProofSetCreated`.
    pub fn create_proof_set(&mut self, dataset_id: U256) -> Result<U256, Error> {
        let registry = self.require_initialized()?;
        let (root, height) = IDatasetRegistry::new(registry)
            .piece_of(self.vm(), Call::new(), dataset_id)
            .map_err(|_| Error::RegistryCallFailed(RegistryCallFailed {}))?;
        let leaves = 1u64
            .checked_shl(u32::from(height))
            .ok_or(Error::InvalidPieces(InvalidPieces {}))?;
        let (roots, leaf_counts) = ([root], [leaves]);
        let index =
            PieceIndex::new(&leaf_counts).map_err(|_| Error::InvalidPieces(InvalidPieces {}))?;
        let caller = self.vm().msg_sender();
        let owner = IDatasetRegistry::new(registry)
            .dataset_owner(self.vm(), Call::new(), dataset_id)
            .map_err(|_| Error::RegistryCallFailed(RegistryCallFailed {}))?;
        if owner != caller {
            return Err(Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: dataset_id,
                caller,
            }));
        }
        let existing = self.proof_set_of.get(dataset_id);
        if !existing.is_zero() {
            return Err(Error::ProofSetExists(ProofSetExists { setId: existing }));
        }
        let now = self.now()?;

        let set_id = self.proof_set_count.get() + U256::from(1);
        self.proof_set_count.set(set_id);
        self.proof_set_of.setter(dataset_id).set(set_id);
        let deadline = now.saturating_add(self.proving_period.get().to::<u64>());
        let mut set = self.proof_sets.setter(set_id);
        set.dataset_id.set(dataset_id);
        set.owner.set(owner);
        for (root, &end) in roots.iter().zip(index.cumulative()) {
            set.roots.push(*root);
            set.cumulative.push(U64::from(end));
        }
        set.deadline.set(U64::from(deadline));
        self.emit(&ProofSetCreated {
            setId: set_id,
            datasetId: dataset_id,
            // At most `MAX_PIECES`.
            pieceCount: roots.len() as u64,
            totalLeaves: index.total_leaves(),
        });
        Ok(set_id)
    }

    /// Opens the next challenge: its seed is the hash of block `now + challengeFinality`, and it
    /// may be proven in the `challengeWindow` blocks after that one. Returns the challenge epoch.
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownProofSet`; `NotDatasetOwner` unless the caller owns the dataset;
    /// `ChallengeOpen` while a challenge is open (prove it or record its fault first);
    /// `TooLateToChallenge` when the window would end after the deadline (record the fault once
    /// the deadline passes); `ArbSysCallFailed`.
    ///
    /// # Events
    /// `ProvingPeriodStarted`.
    pub fn next_proving_period(&mut self, set_id: U256) -> Result<u64, Error> {
        self.require_initialized()?;
        self.require_proof_set(set_id)?;
        let caller = self.vm().msg_sender();
        let set = self.proof_sets.getter(set_id);
        if set.owner.get() != caller {
            return Err(Error::NotDatasetOwner(NotDatasetOwner {
                datasetId: set.dataset_id.get(),
                caller,
            }));
        }
        if set.challenge_epoch.get() != U64::ZERO {
            return Err(Error::ChallengeOpen(ChallengeOpen {}));
        }
        let deadline = set.deadline.get().to::<u64>();
        let now = self.now()?;
        let epoch = now.saturating_add(self.challenge_finality.get().to::<u64>());
        let window_end = epoch.saturating_add(self.challenge_window.get().to::<u64>());
        if window_end > deadline {
            return Err(Error::TooLateToChallenge(TooLateToChallenge { deadline }));
        }
        self.proof_sets
            .setter(set_id)
            .challenge_epoch
            .set(U64::from(epoch));
        self.emit(&ProvingPeriodStarted {
            setId: set_id,
            challengeEpoch: epoch,
            windowEnd: window_end,
        });
        Ok(epoch)
    }

    /// Answers the open challenge. Challenge `i` is leaf
    /// `keccak256(seed ‖ setId ‖ uint64 i) mod totalLeaves` of the whole set (seed = hash of the
    /// challenge epoch's block), mapped onto a piece and an offset in it; `leaves[i]` with the
    /// siblings `proofs[i]` (bottom first, one per level of that piece's tree) must lead to the
    /// piece's root. Anyone may submit: the proof is what matters. The next deadline is
    /// `provingPeriod` blocks from now.
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownProofSet`; `NoChallengeOpen`; `ChallengeNotReady` until the
    /// epoch's block is past; `ChallengeWindowClosed` after `epoch + challengeWindow`;
    /// `WrongProofCount` unless exactly `challengesPerProof` leaves and proofs are given;
    /// `InvalidProof(i)` for the first challenge whose proof fails; `ArbSysCallFailed`.
    ///
    /// # Events
    /// `PossessionProven`.
    #[allow(clippy::needless_pass_by_value)] // The router passes decoded calldata by value.
    pub fn prove_possession(
        &mut self,
        set_id: U256,
        leaves: Vec<B256>,
        proofs: Vec<Vec<B256>>,
    ) -> Result<(), Error> {
        self.require_initialized()?;
        self.require_proof_set(set_id)?;
        let set = self.proof_sets.getter(set_id);
        let epoch = set.challenge_epoch.get().to::<u64>();
        if epoch == 0 {
            return Err(Error::NoChallengeOpen(NoChallengeOpen {}));
        }
        let now = self.now()?;
        if now <= epoch {
            return Err(Error::ChallengeNotReady(ChallengeNotReady {
                challengeEpoch: epoch,
            }));
        }
        let window_end = epoch.saturating_add(self.challenge_window.get().to::<u64>());
        if now > window_end {
            return Err(Error::ChallengeWindowClosed(ChallengeWindowClosed {
                windowEnd: window_end,
            }));
        }
        let expected = self.challenges_per_proof.get().to::<u64>();
        for got in [leaves.len(), proofs.len()] {
            // Lengths beyond u64 cannot be decoded from calldata anyway.
            let got = got as u64;
            if got != expected {
                return Err(Error::WrongProofCount(WrongProofCount { expected, got }));
            }
        }
        let seed = IArbSys::new(ARB_SYS)
            .arb_block_hash(self.vm(), Call::new(), U256::from(epoch))
            .map_err(|_| Error::ArbSysCallFailed(ArbSysCallFailed {}))?;
        self.verify_challenges(set_id, &seed.0, &leaves, &proofs)?;

        let deadline = now.saturating_add(self.proving_period.get().to::<u64>());
        let mut set = self.proof_sets.setter(set_id);
        set.last_proven_block.set(U64::from(now));
        set.faulted_last.set(false);
        set.challenge_epoch.set(U64::ZERO);
        set.deadline.set(U64::from(deadline));
        self.emit(&PossessionProven {
            setId: set_id,
            blockNumber: now,
        });
        Ok(())
    }

    /// Records a fault: allowed once the open challenge's window has closed unproven, or the
    /// deadline has passed. Anyone may call it. The challenge is closed and the next deadline is
    /// `provingPeriod` blocks from now. A fault that makes `faultThreshold` within the last
    /// [`FAULT_WINDOW_PERIODS`] proving periods (itself included) slashes `slashBps` of the dataset's stake in the registry: `reporterBountyBps` of the
    /// slash is credited to the caller, the rest reserved for the buyers of the dataset's open
    /// orders (burned when there is none; `DatasetRegistry.slashForBuyers`).
    ///
    /// # Errors
    /// `NotInitialized`; `UnknownProofSet`; `DeadlineNotPassed` when no fault is due;
    /// `RegistryCallFailed` when reading the stake or slashing fails (the fault is then not
    /// recorded either); `ArbSysCallFailed`.
    ///
    /// # Events
    /// `FaultRecorded`; `ProofSetSlashed` when stake was slashed.
    pub fn record_fault(&mut self, set_id: U256) -> Result<(), Error> {
        let registry = self.require_initialized()?;
        self.require_proof_set(set_id)?;
        let now = self.now()?;
        let window = self.challenge_window.get().to::<u64>();
        let set = self.proof_sets.getter(set_id);
        let deadline = set.deadline.get().to::<u64>();
        if !fault_due(set.challenge_epoch.get().to::<u64>(), window, deadline, now) {
            return Err(Error::DeadlineNotPassed(DeadlineNotPassed { deadline }));
        }
        let dataset_id = set.dataset_id.get();
        // Counters are bounded by the number of blocks, far below u64::MAX.
        let before = set.faults.get().to::<u64>();
        let faults = before.saturating_add(1);
        let threshold = self.fault_threshold.get().to::<u64>();

        // Effects before the registry call (checks-effects-interactions).
        let next_deadline = now.saturating_add(self.proving_period.get().to::<u64>());
        let mut set = self.proof_sets.setter(set_id);
        set.faults.set(U64::from(faults));
        set.faulted_last.set(true);
        // `threshold <= 16`, so the slot exists.
        if let Some(mut slot) = set.fault_blocks.setter(ring_slot(before, threshold)) {
            slot.set(U64::from(now));
        }
        set.challenge_epoch.set(U64::ZERO);
        set.deadline.set(U64::from(next_deadline));
        let recent = self.recent_faults(set_id, now);
        self.emit(&FaultRecorded {
            setId: set_id,
            recentFaults: recent,
            totalFaults: faults,
        });

        if recent >= threshold {
            let stake = IDatasetRegistry::new(registry)
                .stake_of(self.vm(), Call::new(), dataset_id)
                .map_err(|_| Error::RegistryCallFailed(RegistryCallFailed {}))?;
            let amount = bps_of(stake, self.slash_bps.get().to::<u16>());
            let bounty = bps_of(amount, self.reporter_bounty_bps.get().to::<u16>());
            let reporter = self.vm().msg_sender();
            // Two slashes of the registry: the bounty to the reporter, the rest for the buyers.
            let failed = |_| Error::RegistryCallFailed(RegistryCallFailed {});
            let mut slashed = U256::ZERO;
            if !bounty.is_zero() {
                let context = Call::new_mutating(self);
                slashed += IDatasetRegistry::new(registry)
                    .slash(self.vm(), context, dataset_id, bounty, reporter)
                    .map_err(failed)?;
            }
            if amount > bounty {
                let context = Call::new_mutating(self);
                slashed += IDatasetRegistry::new(registry)
                    .slash_for_buyers(self.vm(), context, dataset_id, amount - bounty)
                    .map_err(failed)?;
            }
            if !slashed.is_zero() {
                self.emit(&ProofSetSlashed {
                    setId: set_id,
                    amount: slashed,
                    reporter,
                    bounty,
                });
            }
        }
        Ok(())
    }

    /// Health of `datasetId`'s proof set: 0 None (no proof set), 1 Healthy (proven, its last
    /// period proven and no fault due), 2 Degraded (otherwise), 3 Failed (`faultThreshold` faults
    /// within the last [`FAULT_WINDOW_PERIODS`] proving periods).
    ///
    /// # Errors
    /// `ArbSysCallFailed`.
    pub fn health(&self, dataset_id: U256) -> Result<u8, Error> {
        let set_id = self.proof_set_of.get(dataset_id);
        if set_id.is_zero() {
            return Ok(HEALTH_NONE);
        }
        let now = self.now()?;
        if self.recent_faults(set_id, now) >= self.fault_threshold.get().to::<u64>() {
            return Ok(HEALTH_FAILED);
        }
        let set = self.proof_sets.getter(set_id);
        if set.faulted_last.get() || set.last_proven_block.get().is_zero() {
            return Ok(HEALTH_DEGRADED);
        }
        let epoch = set.challenge_epoch.get().to::<u64>();
        let deadline = set.deadline.get().to::<u64>();
        if fault_due(
            epoch,
            self.challenge_window.get().to::<u64>(),
            deadline,
            now,
        ) {
            Ok(HEALTH_DEGRADED)
        } else {
            Ok(HEALTH_HEALTHY)
        }
    }

    /// The proof set of `datasetId`, 0 when it has none.
    #[must_use]
    pub fn proof_set_of(&self, dataset_id: U256) -> U256 {
        self.proof_set_of.get(dataset_id)
    }

    /// A proof set's state: dataset, pieces, leaves, `challengeEpoch` (0 when no challenge is
    /// open), deadline, last proven block, faults in all, faults within the sliding window.
    ///
    /// # Errors
    /// `UnknownProofSet`; `ArbSysCallFailed`.
    #[allow(clippy::type_complexity)] // The ABI's return tuple.
    pub fn proof_set(
        &self,
        set_id: U256,
    ) -> Result<(U256, u64, u64, u64, u64, u64, u64, u64), Error> {
        self.require_proof_set(set_id)?;
        let recent = self.recent_faults(set_id, self.now()?);
        let set = self.proof_sets.getter(set_id);
        let pieces = set.cumulative.len();
        let total = match pieces.checked_sub(1) {
            Some(last) => set.cumulative.get(last).unwrap_or_default().to::<u64>(),
            None => 0,
        };
        Ok((
            set.dataset_id.get(),
            // At most `MAX_PIECES`.
            pieces as u64,
            total,
            set.challenge_epoch.get().to::<u64>(),
            set.deadline.get().to::<u64>(),
            set.last_proven_block.get().to::<u64>(),
            set.faults.get().to::<u64>(),
            recent,
        ))
    }

    /// The block of the set's last accepted proof, 0 if never proven.
    ///
    /// # Errors
    /// `UnknownProofSet`.
    pub fn last_proven_block(&self, set_id: U256) -> Result<u64, Error> {
        self.require_proof_set(set_id)?;
        Ok(self
            .proof_sets
            .getter(set_id)
            .last_proven_block
            .get()
            .to::<u64>())
    }

    /// The number of leaves challenges range over (the set's total leaf count).
    ///
    /// # Errors
    /// `UnknownProofSet`.
    pub fn challenge_range(&self, set_id: U256) -> Result<u64, Error> {
        self.proof_set(set_id).map(|state| state.2)
    }

    /// Root and leaf count of piece `piece` of a set.
    ///
    /// # Errors
    /// `UnknownProofSet`; `UnknownPiece` past the set's last piece.
    pub fn piece_root(&self, set_id: U256, piece: u64) -> Result<(B256, u64), Error> {
        self.require_proof_set(set_id)?;
        let set = self.proof_sets.getter(set_id);
        let unknown = || {
            Error::UnknownPiece(UnknownPiece {
                setId: set_id,
                piece,
            })
        };
        let at = usize::try_from(piece).map_err(|_| unknown())?;
        let root = set.roots.get(at).ok_or_else(unknown)?;
        let end = set.cumulative.get(at).ok_or_else(unknown)?.to::<u64>();
        let start = match at.checked_sub(1) {
            Some(before) => set.cumulative.get(before).unwrap_or_default().to::<u64>(),
            None => 0,
        };
        Ok((root, end - start))
    }

    /// Number of proof sets created (the last set id).
    #[must_use]
    pub fn proof_set_count(&self) -> U256 {
        self.proof_set_count.get()
    }

    /// The caller of `initialize`.
    #[must_use]
    pub fn owner(&self) -> Address {
        self.owner.get()
    }

    /// The `DatasetRegistry`.
    #[must_use]
    pub fn registry(&self) -> Address {
        self.registry.get()
    }

    /// Blocks from a proof (or a fault) to the next deadline.
    #[must_use]
    pub fn proving_period(&self) -> u64 {
        self.proving_period.get().to::<u64>()
    }

    /// Blocks after the challenge epoch in which a proof is accepted.
    #[must_use]
    pub fn challenge_window(&self) -> u64 {
        self.challenge_window.get().to::<u64>()
    }

    /// Blocks from `nextProvingPeriod` to the challenge epoch.
    #[must_use]
    pub fn challenge_finality(&self) -> u64 {
        self.challenge_finality.get().to::<u64>()
    }

    /// Leaves challenged per proof.
    #[must_use]
    pub fn challenges_per_proof(&self) -> u64 {
        self.challenges_per_proof.get().to::<u64>()
    }

    /// Consecutive faults from which the set is Failed and each fault slashes.
    #[must_use]
    pub fn fault_threshold(&self) -> u64 {
        self.fault_threshold.get().to::<u64>()
    }

    /// Share of the stake slashed per fault at or past the threshold, in basis points.
    #[must_use]
    pub fn slash_bps(&self) -> u16 {
        self.slash_bps.get().to::<u16>()
    }

    /// The reporter's share of a slash, in basis points (the rest is burned).
    #[must_use]
    pub fn reporter_bounty_bps(&self) -> u16 {
        self.reporter_bounty_bps.get().to::<u16>()
    }
}

impl ProofManager {
    fn is_initialized(&self) -> bool {
        self.registry.get() != Address::ZERO
    }

    /// The registry, or `NotInitialized`.
    fn require_initialized(&self) -> Result<Address, Error> {
        let registry = self.registry.get();
        if registry == Address::ZERO {
            return Err(Error::NotInitialized(NotInitialized {}));
        }
        Ok(registry)
    }

    fn require_proof_set(&self, set_id: U256) -> Result<(), Error> {
        if set_id.is_zero() || set_id > self.proof_set_count.get() {
            return Err(Error::UnknownProofSet(UnknownProofSet { setId: set_id }));
        }
        Ok(())
    }

    /// Emits `event`. (`self.vm().log` unwraps an alloy error, which drags `Debug` formatting
    /// into the contract; `encode_log_data` cannot fail.)
    fn emit<E: SolEvent>(&self, event: &E) {
        let log = event.encode_log_data();
        // `raw_log` refuses more than four topics only; no event has more than three.
        let _ = self.vm().raw_log(log.topics(), &log.data);
    }

    /// The current L2 block number.
    /// How many of the set's last `faultThreshold` faults lie within the sliding window ending
    /// at `now` (`FAULT_WINDOW_PERIODS` proving periods): `faultThreshold` of them is a lapse.
    fn recent_faults(&self, set_id: U256, now: u64) -> u64 {
        let set = self.proof_sets.getter(set_id);
        let threshold = self.fault_threshold.get().to::<u64>();
        let window = self
            .proving_period
            .get()
            .to::<u64>()
            .saturating_mul(FAULT_WINDOW_PERIODS);
        let kept = set.faults.get().to::<u64>().min(threshold);
        (0..kept)
            .filter(|&slot| {
                let block = set
                    .fault_blocks
                    .get(usize::try_from(slot).unwrap_or(usize::MAX))
                    .unwrap_or_default()
                    .to::<u64>();
                block.saturating_add(window) >= now
            })
            .count() as u64
    }

    fn now(&self) -> Result<u64, Error> {
        let number = IArbSys::new(ARB_SYS)
            .arb_block_number(self.vm(), Call::new())
            .map_err(|_| Error::ArbSysCallFailed(ArbSysCallFailed {}))?;
        u64::try_from(number).map_err(|_| Error::ArbSysCallFailed(ArbSysCallFailed {}))
    }

    /// Checks every challenge's proof against the set's pieces (`datacloud-pdp`, the prover's
    /// code). The caller has checked that there are as many leaves as proofs.
    fn verify_challenges(
        &self,
        set_id: U256,
        seed: &[u8; 32],
        leaves: &[B256],
        proofs: &[Vec<B256>],
    ) -> Result<(), Error> {
        let set = self.proof_sets.getter(set_id);
        let cumulative: Vec<u64> = (0..set.cumulative.len())
            .map(|i| set.cumulative.get(i).unwrap_or_default().to::<u64>())
            .collect();
        let index = PieceIndex::from_cumulative(cumulative);
        let total = index.total_leaves();
        for (i, (leaf, proof)) in (0u64..).zip(leaves.iter().zip(proofs)) {
            let invalid = Error::InvalidProof(InvalidProof { index: i });
            let challenged = datacloud_pdp::challenge_leaf_index(seed, set_id, i, total);
            let (piece, offset) = index.locate(challenged).ok_or(invalid)?;
            let height = index.leaf_count(piece).map_or(0, u64::trailing_zeros);
            let root = set.roots.get(piece).unwrap_or_default();
            if proof.len() != height as usize {
                return Err(Error::InvalidProof(InvalidProof { index: i }));
            }
            let siblings: Vec<Node> = proof.iter().map(|sibling| sibling.0).collect();
            if !verify_inclusion(&root.0, &leaf.0, offset, &siblings) {
                return Err(Error::InvalidProof(InvalidProof { index: i }));
            }
        }
        Ok(())
    }
}

/// Whether a fault may be recorded at `now`: the open challenge (`epoch ≠ 0`) went unproven
/// through its window, or the deadline has passed.
/// The `fault_blocks` slot of fault number `fault` (from 0) among the last `threshold`.
fn ring_slot(fault: u64, threshold: u64) -> usize {
    usize::try_from(fault % threshold.max(1)).unwrap_or(0)
}

fn fault_due(epoch: u64, window: u64, deadline: u64, now: u64) -> bool {
    let window_missed = epoch != 0 && now > epoch.saturating_add(window);
    window_missed || now > deadline
}

/// `amount · bps / 10000`, rounded down, without overflow: with `amount = q·10000 + r`, that is
/// `q·bps + r·bps / 10000` exactly, and neither term can overflow (`div_small`: no 256-bit
/// division in the program).
fn bps_of(amount: U256, bps: u16) -> U256 {
    let (quotient, rest) = div_small(amount, u32::from(BPS));
    let bps = u64::from(bps);
    quotient * U256::from(bps) + U256::from(rest.as_limbs()[0] * bps / u64::from(BPS))
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, collections::HashMap, rc::Rc};

    use alloy_primitives::keccak256;
    use alloy_sol_types::{SolCall, SolEvent};
    use datacloud_contract_test_host::{
        ARB_SYS as HOST_ARB_SYS, OutgoingCall, TestHost, create_address,
    };
    use datacloud_pdp::{MerkleTree, answer_challenges, challenge_leaf_index};
    use proptest::prelude::*;

    use super::*;

    sol! {
        /// The registry as the test model answers it.
        interface Registry {
            function datasetOwner(uint256 datasetId) external view returns (address);
            function pieceOf(uint256 datasetId) external view returns (bytes32, uint8);
            function stakeOf(uint256 datasetId) external view returns (uint256);
            function slash(uint256 datasetId, uint256 amount, address to) external returns (uint256);
            function slashForBuyers(uint256 datasetId, uint256 amount) external returns (uint256);
        }
    }

    /// How the test registry model records a `slashForBuyers` call in its `slashes`.
    const FOR_BUYERS: Address = Address::ZERO;

    /// The nonce of DEPLOYER's transaction that deployed the proof manager.
    const DEPLOY_NONCE: u64 = 3;
    const REGISTRY: Address = Address::repeat_byte(0x5E);
    const DEPLOYER: Address = Address::repeat_byte(0xD0);
    const SELLER: Address = Address::repeat_byte(0xA1);
    const STRANGER: Address = Address::repeat_byte(0xB2);
    const REPORTER: Address = Address::repeat_byte(0xC3);
    const DATASET: u64 = 7;
    const OTHER_DATASET: u64 = 8;
    const UNKNOWN_DATASET: u64 = 99;

    const PERIOD: u64 = 100;
    const WINDOW: u64 = 20;
    const FINALITY: u64 = 5;
    const CHALLENGES: u64 = 5;
    const THRESHOLD: u64 = 3;
    const SLASH_BPS: u16 = 1_000;
    const BOUNTY_BPS: u16 = MAX_REPORTER_BOUNTY_BPS;
    const STAKE: u64 = 1_000_000;

    /// Tree height of the test datasets' pieces (64 leaves); both datasets' pieces have it, so a
    /// proof from one has the right length for the other.
    const PIECE_HEIGHT: u8 = 6;

    /// The registry as far as the proof manager sees it.
    #[derive(Default)]
    struct RegistryModel {
        owners: HashMap<U256, Address>,
        /// `pieceOf`: each dataset's registered piece root and height.
        pieces: HashMap<U256, (B256, u8)>,
        stakes: HashMap<U256, U256>,
        /// `(datasetId, amount asked, to, slashed)` per `slash` call; `to` is [`FOR_BUYERS`] for
        /// a `slashForBuyers` call.
        slashes: Vec<(U256, U256, Address, U256)>,
        refuse_slash: bool,
        refuse_stake: bool,
    }

    impl RegistryModel {
        fn answer(&mut self, call: &OutgoingCall) -> Result<Vec<u8>, Vec<u8>> {
            let unknown = || b"UnknownDataset".to_vec();
            if let Ok(c) = Registry::datasetOwnerCall::abi_decode(&call.data) {
                assert!(call.is_static, "datasetOwner is a view");
                let owner = self.owners.get(&c.datasetId).ok_or_else(unknown)?;
                return Ok(Registry::datasetOwnerCall::abi_encode_returns(owner));
            }
            if let Ok(c) = Registry::pieceOfCall::abi_decode(&call.data) {
                assert!(call.is_static, "pieceOf is a view");
                let &(root, height) = self.pieces.get(&c.datasetId).ok_or_else(unknown)?;
                return Ok(Registry::pieceOfCall::abi_encode_returns(
                    &Registry::pieceOfReturn {
                        _0: root,
                        _1: height,
                    },
                ));
            }
            if let Ok(c) = Registry::stakeOfCall::abi_decode(&call.data) {
                assert!(call.is_static, "stakeOf is a view");
                if self.refuse_stake {
                    return Err(b"down".to_vec());
                }
                let stake = self.stakes.get(&c.datasetId).ok_or_else(unknown)?;
                return Ok(Registry::stakeOfCall::abi_encode_returns(stake));
            }
            if let Ok(c) = Registry::slashCall::abi_decode(&call.data) {
                assert!(!call.is_static, "slash changes state");
                assert_eq!(call.value, U256::ZERO);
                if self.refuse_slash {
                    return Err(b"NotProofManager".to_vec());
                }
                let stake = self.stakes.get_mut(&c.datasetId).ok_or_else(unknown)?;
                let slashed = c.amount.min(*stake);
                *stake -= slashed;
                self.slashes.push((c.datasetId, c.amount, c.to, slashed));
                return Ok(Registry::slashCall::abi_encode_returns(&slashed));
            }
            if let Ok(c) = Registry::slashForBuyersCall::abi_decode(&call.data) {
                assert!(!call.is_static, "slashForBuyers changes state");
                assert_eq!(call.value, U256::ZERO);
                if self.refuse_slash {
                    return Err(b"NotSlasher".to_vec());
                }
                let stake = self.stakes.get_mut(&c.datasetId).ok_or_else(unknown)?;
                let slashed = c.amount.min(*stake);
                *stake -= slashed;
                self.slashes
                    .push((c.datasetId, c.amount, FOR_BUYERS, slashed));
                return Ok(Registry::slashForBuyersCall::abi_encode_returns(&slashed));
            }
            Err(Vec::new())
        }
    }

    /// Deterministic pseudo-random 32-byte leaves.
    fn random_leaves(tag: u64, count: usize) -> Vec<Node> {
        (0..count as u64)
            .map(|i| keccak256([tag.to_be_bytes(), i.to_be_bytes()].concat()).0)
            .collect()
    }

    /// A dataset's piece: `2^PIECE_HEIGHT` random leaves.
    fn build_tree(tag: u64) -> MerkleTree {
        MerkleTree::new(random_leaves(tag, 1 << PIECE_HEIGHT))
    }

    /// The challenged leaves and their proofs, derived as the prover derives them.
    fn prove(trees: &[MerkleTree], set_id: U256, seed: B256) -> (Vec<B256>, Vec<Vec<B256>>) {
        let (leaves, proofs) = answer_challenges(trees, &seed.0, set_id, CHALLENGES).unwrap();
        (
            leaves.into_iter().map(B256::from).collect(),
            proofs
                .into_iter()
                .map(|path| path.into_iter().map(B256::from).collect())
                .collect(),
        )
    }

    /// `(piece, offset)` of challenge `i`.
    fn challenged(trees: &[MerkleTree], set_id: U256, seed: B256, i: u64) -> (usize, u64) {
        let counts: Vec<u64> = trees.iter().map(MerkleTree::leaf_count).collect();
        let index = PieceIndex::new(&counts).unwrap();
        index
            .locate(challenge_leaf_index(
                &seed.0,
                set_id,
                i,
                index.total_leaves(),
            ))
            .unwrap()
    }

    struct Fixture {
        host: TestHost,
        pm: ProofManager,
        registry: Rc<RefCell<RegistryModel>>,
        /// `DATASET`'s piece, the one set 1 proves (a proof set has the registered piece only).
        trees: Vec<MerkleTree>,
        /// `OTHER_DATASET`'s piece.
        other: MerkleTree,
    }

    impl Fixture {
        /// A host with the registry model (two datasets owned by `SELLER`), not initialized.
        fn bare() -> Self {
            let host = TestHost::new();
            host.set_block(1_000);
            // Deployed by DEPLOYER with its DEPLOY_NONCE-th transaction.
            host.vm()
                .set_contract_address(create_address(DEPLOYER, DEPLOY_NONCE));
            let pm = ProofManager::from(&host);
            let registry = Rc::new(RefCell::new(RegistryModel::default()));
            let (tree, other) = (build_tree(1), build_tree(2));
            for (dataset, piece) in [(DATASET, &tree), (OTHER_DATASET, &other)] {
                let mut model = registry.borrow_mut();
                model.owners.insert(U256::from(dataset), SELLER);
                model.stakes.insert(U256::from(dataset), U256::from(STAKE));
                model.pieces.insert(
                    U256::from(dataset),
                    (B256::from(piece.root()), PIECE_HEIGHT),
                );
            }
            let model = Rc::clone(&registry);
            host.on_call(REGISTRY, move |call| model.borrow_mut().answer(call));
            Self {
                host,
                pm,
                registry,
                trees: vec![tree],
                other,
            }
        }

        fn initialized() -> Self {
            let mut f = Self::bare();
            f.initialize(
                REGISTRY, PERIOD, WINDOW, FINALITY, CHALLENGES, THRESHOLD, SLASH_BPS,
            )
            .unwrap();
            f
        }

        /// Initialized, with the test pieces' set created for `DATASET` (set 1).
        fn with_set() -> Self {
            let mut f = Self::initialized();
            let set = f.create(SELLER, DATASET).unwrap();
            assert_eq!(set, U256::from(1));
            f
        }

        #[allow(clippy::too_many_arguments)]
        fn initialize(
            &mut self,
            registry: Address,
            period: u64,
            window: u64,
            finality: u64,
            challenges: u64,
            threshold: u64,
            bps: u16,
        ) -> Result<(), Error> {
            let pm = &mut self.pm;
            self.host.invoke(DEPLOYER, U256::ZERO, || {
                pm.initialize(
                    registry,
                    period,
                    window,
                    finality,
                    challenges,
                    threshold,
                    bps,
                    BOUNTY_BPS,
                    DEPLOY_NONCE,
                )
            })
        }

        fn create(&mut self, sender: Address, dataset: u64) -> Result<U256, Error> {
            let pm = &mut self.pm;
            self.host.invoke(sender, U256::ZERO, || {
                pm.create_proof_set(U256::from(dataset))
            })
        }

        fn next(&mut self, sender: Address, set: u64) -> Result<u64, Error> {
            let pm = &mut self.pm;
            self.host.invoke(sender, U256::ZERO, || {
                pm.next_proving_period(U256::from(set))
            })
        }

        fn submit(
            &mut self,
            sender: Address,
            set: u64,
            leaves: Vec<B256>,
            proofs: Vec<Vec<B256>>,
        ) -> Result<(), Error> {
            let pm = &mut self.pm;
            self.host.invoke(sender, U256::ZERO, || {
                pm.prove_possession(U256::from(set), leaves, proofs)
            })
        }

        /// A valid answer to set 1's challenge at `epoch`.
        fn valid_proof(&self, epoch: u64) -> (Vec<B256>, Vec<Vec<B256>>) {
            prove(&self.trees, U256::from(1), TestHost::block_hash(epoch))
        }

        fn fault(&mut self, sender: Address, set: u64) -> Result<(), Error> {
            let pm = &mut self.pm;
            self.host
                .invoke(sender, U256::ZERO, || pm.record_fault(U256::from(set)))
        }

        fn health(&self, dataset: u64) -> u8 {
            self.pm.health(U256::from(dataset)).unwrap()
        }

        fn state(&self) -> (U256, u64, u64, u64, u64, u64, u64, u64) {
            self.pm.proof_set(U256::from(1)).unwrap()
        }

        fn now(&self) -> u64 {
            self.host.vm().block_number()
        }

        /// Opens a challenge on set 1 and mines to the first block it can be proven in.
        fn open_and_ripen(&mut self) -> u64 {
            let epoch = self.next(SELLER, 1).unwrap();
            self.host.set_block(epoch + 1);
            epoch
        }

        fn events<E: SolEvent>(&self) -> Vec<E> {
            self.host
                .logs()
                .into_iter()
                .filter(|(topics, _)| topics.first() == Some(&E::SIGNATURE_HASH))
                .map(|(topics, data)| E::decode_raw_log(topics, &data).unwrap())
                .collect()
        }

        fn last_event<E: SolEvent>(&self) -> E {
            self.events::<E>().pop().expect("event emitted")
        }
    }

    fn flip(word: &mut B256) {
        word.0[3] ^= 0x10;
    }

    // ---- initialize ----

    #[test]
    fn initialize_stores_the_config_and_emits() {
        let f = Fixture::initialized();
        assert_eq!(f.pm.owner(), DEPLOYER);
        assert_eq!(f.pm.registry(), REGISTRY);
        assert_eq!(f.pm.proving_period(), PERIOD);
        assert_eq!(f.pm.challenge_window(), WINDOW);
        assert_eq!(f.pm.challenge_finality(), FINALITY);
        assert_eq!(f.pm.challenges_per_proof(), CHALLENGES);
        assert_eq!(f.pm.fault_threshold(), THRESHOLD);
        assert_eq!(f.pm.slash_bps(), SLASH_BPS);
        assert_eq!(f.pm.reporter_bounty_bps(), BOUNTY_BPS);
        assert_eq!(f.pm.proof_set_count(), U256::ZERO);
        let event = f.last_event::<Initialized>();
        assert_eq!(
            (event.owner, event.registry),
            (DEPLOYER, REGISTRY),
            "indexed fields"
        );
        assert_eq!(
            (
                event.provingPeriod,
                event.challengeWindow,
                event.challengeFinality,
                event.challengesPerProof,
                event.faultThreshold,
                event.slashBps,
                event.reporterBountyBps
            ),
            (
                PERIOD, WINDOW, FINALITY, CHALLENGES, THRESHOLD, SLASH_BPS, BOUNTY_BPS
            )
        );
    }

    #[test]
    fn initialize_only_once() {
        let mut f = Fixture::initialized();
        let err = f.initialize(REGISTRY, PERIOD, WINDOW, FINALITY, CHALLENGES, THRESHOLD, 0);
        assert!(matches!(err, Err(Error::AlreadyInitialized(_))));
        assert_eq!(f.pm.slash_bps(), SLASH_BPS);
        assert_eq!(f.pm.owner(), DEPLOYER);
    }

    #[test]
    fn only_the_deployer_initializes() {
        let mut f = Fixture::bare();
        // Another account front-running the deployer's initialize, and the deployer naming a
        // nonce that did not deploy this program.
        for (sender, nonce) in [(SELLER, DEPLOY_NONCE), (DEPLOYER, DEPLOY_NONCE - 1)] {
            let pm = &mut f.pm;
            let err = f.host.invoke(sender, U256::ZERO, || {
                pm.initialize(REGISTRY, 100, 20, 5, 5, 3, 1_000, 0, nonce)
            });
            assert!(
                matches!(err, Err(Error::NotDeployer(_))),
                "{sender} {nonce}"
            );
        }
        assert!(f.host.logs().is_empty());
        f.initialize(REGISTRY, PERIOD, WINDOW, FINALITY, CHALLENGES, THRESHOLD, 0)
            .unwrap();
        assert_eq!(f.pm.owner(), DEPLOYER);
    }

    #[test]
    fn initialize_rejects_out_of_range_config() {
        let bad: [(Address, u64, u64, u64, u64, u64, u16); 11] = [
            (Address::ZERO, 100, 20, 5, 5, 3, 1_000),
            (REGISTRY, 100, 0, 5, 5, 3, 1_000),
            (REGISTRY, 400, 256, 5, 5, 3, 1_000),
            (REGISTRY, 100, 20, 0, 5, 3, 1_000),
            (REGISTRY, 24, 20, 5, 5, 3, 1_000),
            (REGISTRY, u64::MAX, 20, u64::MAX, 5, 3, 1_000),
            (REGISTRY, 100, 20, 5, 0, 3, 1_000),
            (REGISTRY, 100, 20, 5, 17, 3, 1_000),
            (REGISTRY, 100, 20, 5, 5, 0, 1_000),
            // More faults than the set keeps blocks for.
            (REGISTRY, 100, 20, 5, 5, MAX_FAULT_THRESHOLD + 1, 1_000),
            (REGISTRY, 100, 20, 5, 5, 3, 10_001),
        ];
        let mut f = Fixture::bare();
        for (registry, period, window, finality, challenges, threshold, bps) in bad {
            let err = f.initialize(
                registry, period, window, finality, challenges, threshold, bps,
            );
            assert!(
                matches!(err, Err(Error::InvalidConfig(_))),
                "{registry} {period} {window} {finality} {challenges} {threshold} {bps}"
            );
        }
        // A reporter's bounty above 5 % of the slash.
        let pm = &mut f.pm;
        let err = f.host.invoke(DEPLOYER, U256::ZERO, || {
            pm.initialize(
                REGISTRY,
                100,
                20,
                5,
                5,
                3,
                1_000,
                MAX_REPORTER_BOUNTY_BPS + 1,
                DEPLOY_NONCE,
            )
        });
        assert!(matches!(err, Err(Error::InvalidConfig(_))));
        assert!(f.host.logs().is_empty());
        assert_eq!(f.pm.registry(), Address::ZERO);
        // The boundaries themselves are fine.
        f.initialize(REGISTRY, 260, 255, 5, 16, 1, 10_000).unwrap();
        assert_eq!(f.pm.challenge_window(), 255);
    }

    #[test]
    fn everything_mutating_needs_initialize() {
        let mut f = Fixture::bare();
        assert!(matches!(
            f.create(SELLER, DATASET),
            Err(Error::NotInitialized(_))
        ));
        assert!(matches!(f.next(SELLER, 1), Err(Error::NotInitialized(_))));
        assert!(matches!(
            f.submit(SELLER, 1, vec![], vec![]),
            Err(Error::NotInitialized(_))
        ));
        assert!(matches!(f.fault(SELLER, 1), Err(Error::NotInitialized(_))));
        assert_eq!(f.health(DATASET), HEALTH_NONE);
        assert!(f.host.calls().is_empty());
    }

    // ---- createProofSet ----

    #[test]
    fn create_proof_set_stores_the_pieces() {
        let f = Fixture::with_set();
        let set = U256::from(1);
        assert_eq!(f.pm.proof_set_of(U256::from(DATASET)), set);
        assert_eq!(f.pm.proof_set_of(U256::from(OTHER_DATASET)), U256::ZERO);
        assert_eq!(f.pm.proof_set_count(), set);
        let total = 1u64 << PIECE_HEIGHT;
        assert_eq!(
            f.state(),
            (U256::from(DATASET), 1, total, 0, 1_000 + PERIOD, 0, 0, 0)
        );
        assert_eq!(f.pm.challenge_range(set).unwrap(), total);
        assert_eq!(f.pm.last_proven_block(set).unwrap(), 0);
        for (piece, tree) in (0u64..).zip(&f.trees) {
            assert_eq!(
                f.pm.piece_root(set, piece).unwrap(),
                (B256::from(tree.root()), tree.leaf_count())
            );
        }
        assert!(matches!(
            f.pm.piece_root(set, 1),
            Err(Error::UnknownPiece(UnknownPiece { piece: 1, .. }))
        ));
        let event = f.last_event::<ProofSetCreated>();
        assert_eq!(
            (
                event.setId,
                event.datasetId,
                event.pieceCount,
                event.totalLeaves
            ),
            (set, U256::from(DATASET), 1, total)
        );
        // The piece and the ownership were asked of the registry with static calls.
        let asked: Vec<_> = f
            .host
            .calls()
            .into_iter()
            .filter(|c| c.to == REGISTRY)
            .collect();
        assert_eq!(asked.len(), 2);
        assert!(asked.iter().all(|c| c.is_static));
        let piece = Registry::pieceOfCall::abi_decode(&asked[0].data).unwrap();
        assert_eq!(piece.datasetId, U256::from(DATASET));
        let decoded = Registry::datasetOwnerCall::abi_decode(&asked[1].data).unwrap();
        assert_eq!(decoded.datasetId, U256::from(DATASET));
    }

    #[test]
    fn one_proof_set_per_dataset_and_ids_count_up() {
        let mut f = Fixture::with_set();
        let err = f.create(SELLER, DATASET);
        assert!(matches!(
            err,
            Err(Error::ProofSetExists(ProofSetExists { setId })) if setId == U256::from(1)
        ));
        let second = f.create(SELLER, OTHER_DATASET).unwrap();
        assert_eq!(second, U256::from(2));
        assert_eq!(f.pm.proof_set_of(U256::from(OTHER_DATASET)), second);
        assert_eq!(f.pm.challenge_range(second).unwrap(), 1 << PIECE_HEIGHT);
    }

    #[test]
    fn a_seller_cannot_prove_a_piece_it_did_not_register() {
        let mut f = Fixture::initialized();
        // The seller no longer names roots or leaf counts: the set is the registered piece.
        f.create(SELLER, DATASET).unwrap();
        assert_eq!(
            f.pm.piece_root(U256::from(1), 0).unwrap(),
            (B256::from(f.trees[0].root()), 1 << PIECE_HEIGHT)
        );
        // The attack of an unbound set: one "leaf" as the root, proven by that leaf with an
        // empty path. Every challenge needs PIECE_HEIGHT siblings of the registered tree.
        f.open_and_ripen();
        let fake = B256::repeat_byte(0x0f);
        let n = usize::try_from(CHALLENGES).unwrap();
        assert!(matches!(
            f.submit(SELLER, 1, vec![fake; n], vec![Vec::new(); n]),
            Err(Error::InvalidProof(_))
        ));
        assert_eq!(f.state().5, 0, "never proven");
        // A dataset the registry has no piece for gets no set.
        assert!(matches!(
            f.create(SELLER, UNKNOWN_DATASET),
            Err(Error::RegistryCallFailed(_))
        ));
    }

    #[test]
    fn only_the_dataset_owner_creates_its_set() {
        let mut f = Fixture::initialized();
        let err = f.create(STRANGER, DATASET);
        assert!(matches!(
            err,
            Err(Error::NotDatasetOwner(NotDatasetOwner { datasetId, caller }))
                if datasetId == U256::from(DATASET) && caller == STRANGER
        ));
        assert!(matches!(
            f.create(SELLER, UNKNOWN_DATASET),
            Err(Error::RegistryCallFailed(_))
        ));
        assert_eq!(f.pm.proof_set_count(), U256::ZERO);
        assert_eq!(f.pm.proof_set_of(U256::from(DATASET)), U256::ZERO);
        assert!(
            f.host
                .logs()
                .iter()
                .all(|(topics, _)| topics[0] != ProofSetCreated::SIGNATURE_HASH)
        );
    }

    // ---- nextProvingPeriod ----

    #[test]
    fn next_proving_period_schedules_a_challenge() {
        let mut f = Fixture::with_set();
        f.host.mine(3);
        let epoch = f.next(SELLER, 1).unwrap();
        assert_eq!(epoch, 1_003 + FINALITY);
        assert_eq!(f.state().3, epoch);
        let event = f.last_event::<ProvingPeriodStarted>();
        assert_eq!(
            (event.setId, event.challengeEpoch, event.windowEnd),
            (U256::from(1), epoch, epoch + WINDOW)
        );
        assert!(matches!(f.next(SELLER, 1), Err(Error::ChallengeOpen(_))));
    }

    #[test]
    fn next_proving_period_is_for_the_owner_of_a_known_set() {
        let mut f = Fixture::with_set();
        assert!(matches!(
            f.next(STRANGER, 1),
            Err(Error::NotDatasetOwner(NotDatasetOwner { datasetId, caller }))
                if datasetId == U256::from(DATASET) && caller == STRANGER
        ));
        for set in [0, 2] {
            assert!(matches!(
                f.next(SELLER, set),
                Err(Error::UnknownProofSet(UnknownProofSet { setId })) if setId == U256::from(set)
            ));
        }
        assert_eq!(f.state().3, 0);
    }

    #[test]
    fn a_challenge_must_end_by_the_deadline() {
        let mut f = Fixture::with_set();
        let deadline = 1_000 + PERIOD;
        // The last block a challenge still fits in.
        f.host.set_block(deadline - FINALITY - WINDOW + 1);
        let err = f.next(SELLER, 1);
        assert!(matches!(
            err,
            Err(Error::TooLateToChallenge(TooLateToChallenge { deadline: d })) if d == deadline
        ));
        f.host.set_block(deadline - FINALITY - WINDOW);
        let epoch = f.next(SELLER, 1).unwrap();
        assert_eq!(epoch + WINDOW, deadline);
    }

    // ---- provePossession ----

    #[test]
    fn a_valid_proof_passes() {
        let mut f = Fixture::with_set();
        assert_eq!(f.health(DATASET), HEALTH_DEGRADED, "never proven yet");
        let epoch = f.open_and_ripen();
        let (leaves, proofs) = f.valid_proof(epoch);
        // The challenges land on distinct leaves of the piece.
        let spots: std::collections::HashSet<u64> = (0..CHALLENGES)
            .map(|i| challenged(&f.trees, U256::from(1), TestHost::block_hash(epoch), i).1)
            .collect();
        assert!(spots.len() > 1, "{spots:?}");
        f.submit(REPORTER, 1, leaves, proofs).unwrap();
        let now = f.now();
        assert_eq!(
            f.state(),
            (
                U256::from(DATASET),
                1,
                1 << PIECE_HEIGHT,
                0,
                now + PERIOD,
                now,
                0,
                0
            )
        );
        assert_eq!(f.pm.last_proven_block(U256::from(1)).unwrap(), now);
        let event = f.last_event::<PossessionProven>();
        assert_eq!((event.setId, event.blockNumber), (U256::from(1), now));
        assert_eq!(f.health(DATASET), HEALTH_HEALTHY);
        // The seed came from ArbSys for the epoch block.
        assert!(f.host.calls().iter().any(|c| {
            c.to == HOST_ARB_SYS
                && IArbSysTest::arbBlockHashCall::abi_decode(&c.data)
                    .is_ok_and(|call| call.arbBlockNum == U256::from(epoch))
        }));
    }

    sol! {
        interface IArbSysTest {
            function arbBlockHash(uint256 arbBlockNum) external view returns (bytes32);
        }
    }

    #[test]
    fn the_challenges_are_pdp_verifier_challenges() {
        // An independent reading of PDPVerifier: keccak256(abi.encodePacked(seed, setId, uint64 i))
        // mod totalLeaves, mapped onto the pieces by a linear scan.
        let f = Fixture::with_set();
        let seed = TestHost::block_hash(1_234);
        let counts: Vec<u64> = f.trees.iter().map(MerkleTree::leaf_count).collect();
        let total: u64 = counts.iter().sum();
        for i in 0..CHALLENGES {
            let mut packed = seed.to_vec();
            packed.extend_from_slice(&U256::from(1).to_be_bytes::<32>());
            packed.extend_from_slice(&i.to_be_bytes());
            let leaf = (U256::from_be_bytes(keccak256(&packed).0) % U256::from(total)).to::<u64>();
            let mut start = 0;
            let mut expected = None;
            for (piece, &count) in counts.iter().enumerate() {
                if leaf < start + count {
                    expected = Some((piece, leaf - start));
                    break;
                }
                start += count;
            }
            assert_eq!(Some(challenged(&f.trees, U256::from(1), seed, i)), expected);
        }
    }

    /// The first challenge whose piece has more than one leaf (so its proof has siblings).
    fn deep_challenge(f: &Fixture, epoch: u64) -> usize {
        (0..CHALLENGES)
            .find(|&i| {
                let (piece, _) =
                    challenged(&f.trees, U256::from(1), TestHost::block_hash(epoch), i);
                f.trees[piece].leaf_count() > 1
            })
            .map(|i| usize::try_from(i).unwrap())
            .expect("some challenge lands in a multi-leaf piece")
    }

    fn assert_invalid(f: &mut Fixture, leaves: Vec<B256>, proofs: Vec<Vec<B256>>, at: usize) {
        let before = f.state();
        let logs = f.host.logs().len();
        let err = f.submit(REPORTER, 1, leaves, proofs);
        assert!(
            matches!(err, Err(Error::InvalidProof(InvalidProof { index })) if index == at as u64),
            "{err:?}, expected InvalidProof({at})"
        );
        assert_eq!(f.state(), before);
        assert_eq!(f.host.logs().len(), logs);
    }

    #[test]
    fn a_wrong_sibling_fails() {
        let mut f = Fixture::with_set();
        let epoch = f.open_and_ripen();
        let at = deep_challenge(&f, epoch);
        for level in 0..f.valid_proof(epoch).1[at].len() {
            let (leaves, mut proofs) = f.valid_proof(epoch);
            flip(&mut proofs[at][level]);
            assert_invalid(&mut f, leaves, proofs, at);
        }
        // The untouched proof still passes afterwards.
        let (leaves, proofs) = f.valid_proof(epoch);
        f.submit(REPORTER, 1, leaves, proofs).unwrap();
    }

    #[test]
    fn a_wrong_leaf_fails() {
        let mut f = Fixture::with_set();
        let epoch = f.open_and_ripen();
        for at in 0..usize::try_from(CHALLENGES).unwrap() {
            let (mut leaves, proofs) = f.valid_proof(epoch);
            flip(&mut leaves[at]);
            assert_invalid(&mut f, leaves, proofs, at);
        }
    }

    #[test]
    fn a_proof_for_another_leaf_fails() {
        let mut f = Fixture::with_set();
        let epoch = f.open_and_ripen();
        let at = deep_challenge(&f, epoch);
        let (piece, offset) = challenged(
            &f.trees,
            U256::from(1),
            TestHost::block_hash(epoch),
            at as u64,
        );
        // A genuine leaf and proof of the same piece, for the neighbouring index.
        let (mut leaves, mut proofs) = f.valid_proof(epoch);
        let tree = &f.trees[piece];
        leaves[at] = B256::from(tree.leaf(offset ^ 1).unwrap());
        proofs[at] = tree
            .proof(offset ^ 1)
            .unwrap()
            .into_iter()
            .map(B256::from)
            .collect();
        assert_invalid(&mut f, leaves, proofs, at);
    }

    #[test]
    fn a_proof_from_another_piece_fails() {
        let mut f = Fixture::with_set();
        let epoch = f.open_and_ripen();
        let seed = TestHost::block_hash(epoch);
        // Another dataset's piece of the same height: its proofs have the right length.
        assert_eq!(f.other.leaf_count(), f.trees[0].leaf_count());
        for at in 0..usize::try_from(CHALLENGES).unwrap() {
            let (_, offset) = challenged(&f.trees, U256::from(1), seed, at as u64);
            let (mut leaves, mut proofs) = f.valid_proof(epoch);
            leaves[at] = B256::from(f.other.leaf(offset).unwrap());
            proofs[at] = f
                .other
                .proof(offset)
                .unwrap()
                .into_iter()
                .map(B256::from)
                .collect();
            assert_invalid(&mut f, leaves, proofs, at);
        }
    }

    #[test]
    fn a_proof_of_the_wrong_length_fails() {
        let mut f = Fixture::with_set();
        let epoch = f.open_and_ripen();
        let at = deep_challenge(&f, epoch);
        let (leaves, mut proofs) = f.valid_proof(epoch);
        proofs[at].pop();
        assert_invalid(&mut f, leaves, proofs, at);
        let (leaves, mut proofs) = f.valid_proof(epoch);
        proofs[at].push(B256::ZERO);
        assert_invalid(&mut f, leaves, proofs, at);
    }

    #[test]
    fn exactly_challenges_per_proof_answers() {
        let mut f = Fixture::with_set();
        let epoch = f.open_and_ripen();
        let (mut leaves, mut proofs) = f.valid_proof(epoch);
        leaves.pop();
        proofs.pop();
        let err = f.submit(REPORTER, 1, leaves.clone(), proofs.clone());
        assert!(matches!(
            err,
            Err(Error::WrongProofCount(WrongProofCount {
                expected: 5,
                got: 4
            }))
        ));
        let (full_leaves, full_proofs) = f.valid_proof(epoch);
        let err = f.submit(REPORTER, 1, full_leaves.clone(), proofs);
        assert!(matches!(
            err,
            Err(Error::WrongProofCount(WrongProofCount {
                expected: 5,
                got: 4
            }))
        ));
        let mut more = full_proofs.clone();
        more.push(vec![]);
        let err = f.submit(REPORTER, 1, full_leaves.clone(), more);
        assert!(matches!(
            err,
            Err(Error::WrongProofCount(WrongProofCount {
                expected: 5,
                got: 6
            }))
        ));
        assert_eq!(f.state().5, 0);
        f.submit(REPORTER, 1, full_leaves, full_proofs).unwrap();
    }

    #[test]
    fn proofs_only_inside_the_window() {
        let mut f = Fixture::with_set();
        let (leaves, proofs) = f.valid_proof(1_000 + FINALITY);
        assert!(matches!(
            f.submit(REPORTER, 1, leaves.clone(), proofs.clone()),
            Err(Error::NoChallengeOpen(_))
        ));
        let epoch = f.next(SELLER, 1).unwrap();
        for block in [epoch - 1, epoch] {
            f.host.set_block(block);
            let err = f.submit(REPORTER, 1, leaves.clone(), proofs.clone());
            assert!(
                matches!(err, Err(Error::ChallengeNotReady(ChallengeNotReady { challengeEpoch })) if challengeEpoch == epoch),
                "{block}: {err:?}"
            );
        }
        f.host.set_block(epoch + WINDOW + 1);
        let err = f.submit(REPORTER, 1, leaves.clone(), proofs.clone());
        assert!(matches!(
            err,
            Err(Error::ChallengeWindowClosed(ChallengeWindowClosed { windowEnd })) if windowEnd == epoch + WINDOW
        ));
        assert_eq!(f.state().5, 0);
        // The window's last block still counts.
        f.host.set_block(epoch + WINDOW);
        f.submit(REPORTER, 1, leaves.clone(), proofs.clone())
            .unwrap();
        assert_eq!(f.state().5, epoch + WINDOW);
        // Once answered, the same challenge is closed.
        assert!(matches!(
            f.submit(REPORTER, 1, leaves, proofs),
            Err(Error::NoChallengeOpen(_))
        ));
    }

    #[test]
    fn each_period_has_its_own_challenges() {
        let mut f = Fixture::with_set();
        let first = f.open_and_ripen();
        let (leaves, proofs) = f.valid_proof(first);
        f.submit(REPORTER, 1, leaves.clone(), proofs.clone())
            .unwrap();
        let second = f.open_and_ripen();
        assert_ne!(first, second);
        // The last period's answer does not answer this one.
        let err = f.submit(REPORTER, 1, leaves, proofs);
        assert!(matches!(err, Err(Error::InvalidProof(_))), "{err:?}");
        let (leaves, proofs) = f.valid_proof(second);
        f.submit(SELLER, 1, leaves, proofs).unwrap();
        assert_eq!(f.events::<PossessionProven>().len(), 2);
    }

    #[test]
    fn unknown_sets_are_refused() {
        let mut f = Fixture::with_set();
        for set in [0u64, 2] {
            let id = U256::from(set);
            let unknown = |e: Option<Error>| matches!(e, Some(Error::UnknownProofSet(UnknownProofSet { setId })) if setId == id);
            assert!(unknown(f.submit(REPORTER, set, vec![], vec![]).err()));
            assert!(unknown(f.fault(REPORTER, set).err()));
            assert!(unknown(f.pm.proof_set(id).err()));
            assert!(unknown(f.pm.last_proven_block(id).err()));
            assert!(unknown(f.pm.challenge_range(id).err()));
            assert!(unknown(f.pm.piece_root(id, 0).err()));
        }
        assert_eq!(f.health(UNKNOWN_DATASET), HEALTH_NONE);
    }

    // ---- recordFault, health, slashing ----

    #[test]
    fn anyone_records_a_fault_after_the_deadline() {
        let mut f = Fixture::with_set();
        let deadline = 1_000 + PERIOD;
        for block in [1_000, deadline] {
            f.host.set_block(block);
            assert!(matches!(
                f.fault(REPORTER, 1),
                Err(Error::DeadlineNotPassed(DeadlineNotPassed { deadline: d })) if d == deadline
            ));
        }
        f.host.set_block(deadline + 1);
        f.fault(STRANGER, 1).unwrap();
        assert_eq!(
            f.state(),
            (
                U256::from(DATASET),
                1,
                1 << PIECE_HEIGHT,
                0,
                deadline + 1 + PERIOD,
                0,
                1,
                1
            )
        );
        let event = f.last_event::<FaultRecorded>();
        assert_eq!(
            (event.setId, event.recentFaults, event.totalFaults),
            (U256::from(1), 1, 1)
        );
        // The new deadline must pass again before the next fault.
        assert!(matches!(
            f.fault(STRANGER, 1),
            Err(Error::DeadlineNotPassed(_))
        ));
        assert!(f.registry.borrow().slashes.is_empty());
    }

    #[test]
    fn a_missed_window_is_a_fault_before_the_deadline() {
        let mut f = Fixture::with_set();
        let epoch = f.next(SELLER, 1).unwrap();
        f.host.set_block(epoch + WINDOW);
        assert!(matches!(
            f.fault(REPORTER, 1),
            Err(Error::DeadlineNotPassed(_))
        ));
        f.host.set_block(epoch + WINDOW + 1);
        assert!(f.now() <= 1_000 + PERIOD);
        f.fault(REPORTER, 1).unwrap();
        let state = f.state();
        assert_eq!(
            (state.3, state.4, state.6, state.7),
            (0, f.now() + PERIOD, 1, 1)
        );
        // The challenge is closed: its proof is no longer accepted.
        let (leaves, proofs) = f.valid_proof(epoch);
        assert!(matches!(
            f.submit(REPORTER, 1, leaves, proofs),
            Err(Error::NoChallengeOpen(_))
        ));
    }

    #[test]
    fn health_goes_healthy_degraded_failed_and_slashes() {
        let mut f = Fixture::with_set();
        assert_eq!(f.health(UNKNOWN_DATASET), HEALTH_NONE);
        assert_eq!(f.health(DATASET), HEALTH_DEGRADED);
        let epoch = f.open_and_ripen();
        let (leaves, proofs) = f.valid_proof(epoch);
        f.submit(REPORTER, 1, leaves, proofs).unwrap();
        assert_eq!(f.health(DATASET), HEALTH_HEALTHY);

        // A challenge open and unanswered inside its window keeps it healthy...
        let epoch = f.next(SELLER, 1).unwrap();
        f.host.set_block(epoch + WINDOW);
        assert_eq!(f.health(DATASET), HEALTH_HEALTHY);
        // ...until the window closes: a fault is now due.
        f.host.mine(1);
        assert_eq!(f.health(DATASET), HEALTH_DEGRADED);

        let mut remaining = U256::from(STAKE);
        let mut expected_slashes = Vec::new();
        let mut fault_blocks = Vec::new();
        for fault in 1..=THRESHOLD + 1 {
            if fault > 1 {
                f.host.mine(PERIOD + 1);
            }
            fault_blocks.push(f.now());
            f.fault(REPORTER, 1).unwrap();
            let state = f.state();
            // Faults in all, and within the window (the last THRESHOLD are kept).
            assert_eq!((state.6, state.7), (fault, fault.min(THRESHOLD)));
            if fault < THRESHOLD {
                assert_eq!(f.health(DATASET), HEALTH_DEGRADED, "fault {fault}");
                assert!(f.events::<ProofSetSlashed>().is_empty());
            } else {
                assert_eq!(f.health(DATASET), HEALTH_FAILED, "fault {fault}");
                let amount = remaining * U256::from(SLASH_BPS) / U256::from(10_000);
                remaining -= amount;
                // 5 % of the slash to the reporter, the rest for the buyers.
                let bounty = amount * U256::from(BOUNTY_BPS) / U256::from(10_000);
                expected_slashes.push((U256::from(DATASET), bounty, REPORTER, bounty));
                let rest = amount - bounty;
                expected_slashes.push((U256::from(DATASET), rest, FOR_BUYERS, rest));
                let event = f.last_event::<ProofSetSlashed>();
                assert_eq!(
                    (event.setId, event.amount, event.reporter, event.bounty),
                    (U256::from(1), amount, REPORTER, bounty)
                );
            }
        }
        assert_eq!(f.registry.borrow().slashes, expected_slashes);
        assert_eq!(expected_slashes[0].1, U256::from(5_000));
        assert_eq!(expected_slashes[1].1, U256::from(95_000));
        assert_eq!(expected_slashes[2].1, U256::from(4_500));
        assert_eq!(expected_slashes[3].1, U256::from(85_500));
        assert_eq!(f.registry.borrow().stakes[&U256::from(DATASET)], remaining);

        // A new valid proof does not forgive recent faults: still Failed.
        let oldest_recent = fault_blocks[fault_blocks.len() - usize::try_from(THRESHOLD).unwrap()];
        let epoch = f.open_and_ripen();
        let (leaves, proofs) = f.valid_proof(epoch);
        f.submit(SELLER, 1, leaves, proofs).unwrap();
        assert_eq!(f.state().7, THRESHOLD);
        assert_eq!(f.health(DATASET), HEALTH_FAILED);
        // Proving every period, it is Healthy again once the oldest of them leaves the window.
        while f.now() <= oldest_recent + FAULT_WINDOW_PERIODS * PERIOD {
            assert_eq!(f.health(DATASET), HEALTH_FAILED);
            f.host.mine(PERIOD / 2);
            let epoch = f.open_and_ripen();
            let (leaves, proofs) = f.valid_proof(epoch);
            f.submit(SELLER, 1, leaves, proofs).unwrap();
        }
        let state = f.state();
        assert_eq!(state.6, THRESHOLD + 1);
        assert!(state.7 < THRESHOLD);
        assert_eq!(f.health(DATASET), HEALTH_HEALTHY);
        // And the deadline passing degrades it again.
        f.host.mine(PERIOD + 1);
        assert_eq!(f.health(DATASET), HEALTH_DEGRADED);
    }

    #[test]
    fn a_seller_storing_part_of_the_data_cannot_reroll_past_the_threshold() {
        // Audit M-7: with faults counted in a row, a seller that answers some challenges (it
        // stores part of the data) faulted twice, proved once when its luck held, and started
        // over: Healthy between lapses, never slashed. Counted over a window, the third fault
        // within it slashes, proofs in between or not.
        let mut f = Fixture::with_set();
        for round in 0..2 {
            for _ in 0..THRESHOLD - 1 {
                f.host.mine(PERIOD + 1);
                f.fault(REPORTER, 1).unwrap();
            }
            // A lucky proof: it would have reset a consecutive count.
            let epoch = f.open_and_ripen();
            let (leaves, proofs) = f.valid_proof(epoch);
            f.submit(SELLER, 1, leaves, proofs).unwrap();
            if round == 0 {
                assert_eq!(
                    f.health(DATASET),
                    HEALTH_HEALTHY,
                    "two faults, then a proof"
                );
                assert!(f.events::<ProofSetSlashed>().is_empty());
            }
        }
        // The third fault came with the second round: Failed, and slashed.
        assert_eq!(f.health(DATASET), HEALTH_FAILED);
        assert_eq!(
            f.events::<ProofSetSlashed>().len(),
            2,
            "two faults over the threshold"
        );
        assert!(f.registry.borrow().stakes[&U256::from(DATASET)] < U256::from(STAKE));
    }

    #[test]
    fn proofs_made_back_to_back_do_not_age_a_fault_out() {
        let mut f = Fixture::with_set();
        for _ in 0..THRESHOLD - 1 {
            f.host.mine(PERIOD + 1);
            f.fault(REPORTER, 1).unwrap();
        }
        // Ten proofs in a row, as fast as challenges ripen: time, not proofs, ages faults out.
        for _ in 0..10 {
            let epoch = f.open_and_ripen();
            let (leaves, proofs) = f.valid_proof(epoch);
            f.submit(SELLER, 1, leaves, proofs).unwrap();
        }
        assert_eq!(f.state().7, THRESHOLD - 1);
        f.host.mine(PERIOD + 1);
        f.fault(REPORTER, 1).unwrap();
        assert_eq!(f.health(DATASET), HEALTH_FAILED);
        assert_eq!(f.events::<ProofSetSlashed>().len(), 1);
    }

    #[test]
    fn nothing_to_slash_means_no_slash_call() {
        let mut f = Fixture::with_set();
        f.registry
            .borrow_mut()
            .stakes
            .insert(U256::from(DATASET), U256::from(9));
        for _ in 0..THRESHOLD {
            f.host.mine(PERIOD + 1);
            f.fault(REPORTER, 1).unwrap();
        }
        assert_eq!(f.health(DATASET), HEALTH_FAILED);
        // 10 % of 9 rounds down to nothing.
        assert!(f.registry.borrow().slashes.is_empty());
        assert!(f.events::<ProofSetSlashed>().is_empty());
    }

    #[test]
    fn a_failed_slash_reverts_the_fault() {
        let mut f = Fixture::with_set();
        for _ in 1..THRESHOLD {
            f.host.mine(PERIOD + 1);
            f.fault(REPORTER, 1).unwrap();
        }
        f.host.mine(PERIOD + 1);
        let before = f.state();
        let logs = f.host.logs().len();
        f.registry.borrow_mut().refuse_slash = true;
        assert!(matches!(
            f.fault(REPORTER, 1),
            Err(Error::RegistryCallFailed(_))
        ));
        f.registry.borrow_mut().refuse_slash = false;
        f.registry.borrow_mut().refuse_stake = true;
        assert!(matches!(
            f.fault(REPORTER, 1),
            Err(Error::RegistryCallFailed(_))
        ));
        assert_eq!(f.state(), before);
        assert_eq!(f.host.logs().len(), logs);
        assert_eq!(f.health(DATASET), HEALTH_DEGRADED);
        f.registry.borrow_mut().refuse_stake = false;
        f.fault(REPORTER, 1).unwrap();
        assert_eq!(f.health(DATASET), HEALTH_FAILED);
        // One slash: the bounty and the burn.
        assert_eq!(f.registry.borrow().slashes.len(), 2);
    }

    proptest! {
        #[test]
        fn bps_of_is_exact(amount in any::<u128>(), high in any::<u128>(), bps in 0u16..=10_000) {
            let amount = (U256::from(high) << 128) | U256::from(amount);
            // A 512-bit reference.
            let wide = alloy_primitives::U512::from(amount) * alloy_primitives::U512::from(bps)
                / alloy_primitives::U512::from(10_000u64);
            prop_assert_eq!(alloy_primitives::U512::from(bps_of(amount, bps)), wide);
        }
    }

    #[test]
    fn bps_of_handles_the_extremes() {
        assert_eq!(bps_of(U256::MAX, 10_000), U256::MAX);
        assert_eq!(bps_of(U256::MAX, 0), U256::ZERO);
        assert_eq!(bps_of(U256::from(9_999), 1), U256::ZERO);
        assert_eq!(bps_of(U256::from(10_000), 1), U256::from(1));
    }

    // ---- a random walk against a model ----

    #[derive(Debug, Clone)]
    enum Op {
        Mine(u64),
        Next,
        ProveValid,
        /// A corrupted proof: `(what, which challenge)`.
        ProveCorrupt(u8, usize),
        Fault,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u64..=60).prop_map(Op::Mine),
            2 => Just(Op::Next),
            2 => Just(Op::ProveValid),
            2 => (0u8..4, 0usize..5).prop_map(|(what, at)| Op::ProveCorrupt(what, at)),
            2 => Just(Op::Fault),
        ]
    }

    /// What the contract should hold for set 1.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Model {
        epoch: u64,
        deadline: u64,
        last_proven: u64,
        faults: u64,
        /// The block of every fault, in order.
        fault_blocks: Vec<u64>,
        /// Whether the last period ended in a fault.
        faulted_last: bool,
        stake: U256,
        slashed: U256,
        /// Of which the reporter's bounties.
        bounty: U256,
    }

    impl Model {
        fn fault_due(&self, now: u64) -> bool {
            (self.epoch != 0 && now > self.epoch + WINDOW) || now > self.deadline
        }

        /// Faults within the last `FAULT_WINDOW_PERIODS` proving periods, at most the threshold.
        fn recent(&self, now: u64) -> u64 {
            let within = self
                .fault_blocks
                .iter()
                .rev()
                .take(usize::try_from(THRESHOLD).unwrap())
                .filter(|&&block| block + FAULT_WINDOW_PERIODS * PERIOD >= now)
                .count();
            within as u64
        }

        fn health(&self, now: u64) -> u8 {
            if self.recent(now) >= THRESHOLD {
                HEALTH_FAILED
            } else if !self.faulted_last && self.last_proven > 0 && !self.fault_due(now) {
                HEALTH_HEALTHY
            } else {
                HEALTH_DEGRADED
            }
        }

        /// The error a proof submitted now should get before its content is looked at.
        fn proof_timing(&self, now: u64) -> Option<Error> {
            if self.epoch == 0 {
                Some(Error::NoChallengeOpen(NoChallengeOpen {}))
            } else if now <= self.epoch {
                Some(Error::ChallengeNotReady(ChallengeNotReady {
                    challengeEpoch: self.epoch,
                }))
            } else if now > self.epoch + WINDOW {
                Some(Error::ChallengeWindowClosed(ChallengeWindowClosed {
                    windowEnd: self.epoch + WINDOW,
                }))
            } else {
                None
            }
        }
    }

    /// A well-formed but unprovable answer, for when no seed exists yet.
    fn dummy_proof() -> (Vec<B256>, Vec<Vec<B256>>) {
        (vec![B256::ZERO; 5], vec![vec![]; 5])
    }

    fn corrupt(f: &Fixture, epoch: u64, what: u8, at: usize) -> (Vec<B256>, Vec<Vec<B256>>) {
        let (mut leaves, mut proofs) = f.valid_proof(epoch);
        match what {
            0 => flip(&mut leaves[at]),
            1 if !proofs[at].is_empty() => {
                let level = proofs[at].len() - 1;
                flip(&mut proofs[at][level]);
            }
            1 | 2 => proofs[at].push(B256::ZERO),
            _ => {
                // Answers swapped between challenges (unless both are the same leaf).
                let other = (at + 1) % leaves.len();
                if leaves[other] == leaves[at] {
                    flip(&mut leaves[at]);
                } else {
                    leaves.swap(at, other);
                    proofs.swap(at, other);
                }
            }
        }
        (leaves, proofs)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn a_random_walk_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            let mut f = Fixture::with_set();
            let mut model = Model {
                epoch: 0,
                deadline: 1_000 + PERIOD,
                last_proven: 0,
                faults: 0,
                fault_blocks: Vec::new(),
                faulted_last: false,
                stake: U256::from(STAKE),
                slashed: U256::ZERO,
                bounty: U256::ZERO,
            };
            for op in ops {
                let now = f.now();
                let before = f.state();
                match op {
                    Op::Mine(k) => f.host.mine(k),
                    Op::Next => {
                        let result = f.next(SELLER, 1);
                        let epoch = now + FINALITY;
                        if model.epoch != 0 {
                            prop_assert!(matches!(result, Err(Error::ChallengeOpen(_))));
                        } else if epoch + WINDOW > model.deadline {
                            prop_assert!(matches!(result, Err(Error::TooLateToChallenge(_))));
                        } else {
                            prop_assert_eq!(result.unwrap(), epoch);
                            model.epoch = epoch;
                        }
                    }
                    Op::ProveValid => {
                        let timing = model.proof_timing(now);
                        let (leaves, proofs) = if timing.is_none() {
                            f.valid_proof(model.epoch)
                        } else {
                            dummy_proof()
                        };
                        let result = f.submit(REPORTER, 1, leaves, proofs);
                        if let Some(expected) = timing {
                            prop_assert_eq!(
                                core::mem::discriminant(&result.unwrap_err()),
                                core::mem::discriminant(&expected)
                            );
                        } else {
                            prop_assert!(result.is_ok(), "{:?}", result);
                            model.last_proven = now;
                            model.faulted_last = false;
                            model.epoch = 0;
                            model.deadline = now + PERIOD;
                        }
                    }
                    Op::ProveCorrupt(what, at) => {
                        let timing = model.proof_timing(now);
                        let (leaves, proofs) = if timing.is_none() {
                            corrupt(&f, model.epoch, what, at)
                        } else {
                            dummy_proof()
                        };
                        let err = f.submit(REPORTER, 1, leaves, proofs).unwrap_err();
                        match timing {
                            Some(expected) => prop_assert_eq!(
                                core::mem::discriminant(&err),
                                core::mem::discriminant(&expected)
                            ),
                            None => prop_assert!(matches!(err, Error::InvalidProof(_)), "{:?}", err),
                        }
                        // A rejected proof changes nothing.
                        prop_assert_eq!(f.state(), before);
                    }
                    Op::Fault => {
                        let result = f.fault(REPORTER, 1);
                        if model.fault_due(now) {
                            prop_assert!(result.is_ok(), "{:?}", result);
                            model.faults += 1;
                            model.fault_blocks.push(now);
                            model.faulted_last = true;
                            model.epoch = 0;
                            model.deadline = now + PERIOD;
                            if model.recent(now) >= THRESHOLD {
                                let amount = model.stake * U256::from(SLASH_BPS) / U256::from(10_000);
                                model.stake -= amount;
                                model.slashed += amount;
                                model.bounty += amount * U256::from(BOUNTY_BPS) / U256::from(10_000);
                            }
                        } else {
                            prop_assert!(matches!(result, Err(Error::DeadlineNotPassed(_))), "{:?}", result);
                        }
                    }
                }
                let state = f.state();
                prop_assert_eq!(
                    (state.3, state.4, state.5, state.6, state.7),
                    (model.epoch, model.deadline, model.last_proven, model.faults, model.recent(f.now()))
                );
                prop_assert_eq!(f.health(DATASET), model.health(f.now()));
                let registry = f.registry.borrow();
                prop_assert_eq!(registry.stakes[&U256::from(DATASET)], model.stake);
                let paid: U256 = registry.slashes.iter().map(|s| s.3).sum();
                prop_assert_eq!(paid, model.slashed);
                prop_assert!(registry.slashes.iter().all(|s| s.2 == REPORTER || s.2 == FOR_BUYERS));
                let bounty: U256 = registry.slashes.iter().filter(|s| s.2 == REPORTER).map(|s| s.3).sum();
                prop_assert_eq!(bounty, model.bounty);
            }
        }
    }
}
