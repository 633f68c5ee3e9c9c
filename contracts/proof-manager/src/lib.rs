//! `ProofManager`: proofs of data possession (PDP) for DataCloud datasets.
//!
//! Each dataset registered in the `DatasetRegistry` may have one proof set: the SHA254 roots of
//! its Filecoin pieces and their leaf counts. Its owner opens a proving period
//! ([`ProofManager::next_proving_period`]), which fixes a challenge epoch `challengeFinality`
//! blocks ahead; once that block exists its hash seeds `challengesPerProof` leaf challenges, and
//! anyone may answer them with Merkle proofs ([`ProofManager::prove_possession`]) until the
//! challenge window ends. A missed window or deadline lets anyone record a fault
//! ([`ProofManager::record_fault`]); `faultThreshold` consecutive faults slash the dataset's stake
//! in the registry, paying the reporter.
//!
//! Leaf and challenge derivation follow FilOzone's `PDPVerifier` and live in `datacloud-pdp`, the
//! same `no_std` code the seller's prover runs, so a proof the prover builds is checked by exactly
//! that code here.
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
use alloy_sol_types::sol;
use datacloud_pdp::{Node, PieceIndex, challenge_leaf_index, verify_inclusion};
use stylus_sdk::{
    prelude::*,
    storage::{
        StorageAddress, StorageB256, StorageMap, StorageU16, StorageU64, StorageU256, StorageVec,
    },
};

/// Address of Arbitrum's `ArbSys` precompile.
pub const ARB_SYS: Address = address!("0x0000000000000000000000000000000000000064");

/// Most pieces one proof set may hold (bounds the storage a proof reads).
pub const MAX_PIECES: usize = 64;
/// Most challenges per proof the configuration may ask for.
pub const MAX_CHALLENGES_PER_PROOF: u64 = 16;
/// `ArbSys.arbBlockHash` only answers for the 256 blocks before the current one, and a proof may
/// land at `challengeEpoch + challengeWindow`.
pub const MAX_CHALLENGE_WINDOW: u64 = 255;
/// Basis points in 100 %.
pub const BPS: u16 = 10_000;

/// `health` answers.
pub const HEALTH_NONE: u8 = 0;
/// The last challenge was proven and no fault is due.
pub const HEALTH_HEALTHY: u8 = 1;
/// Never proven yet, faulted fewer than `faultThreshold` times in a row, or a fault is due.
pub const HEALTH_DEGRADED: u8 = 2;
/// At least `faultThreshold` consecutive faults.
pub const HEALTH_FAILED: u8 = 3;

sol! {
    #![sol(all_derives)]

    /// The contract was configured; `owner` is the caller of `initialize`.
    event Initialized(
        address indexed owner,
        address indexed registry,
        uint64 provingPeriod,
        uint64 challengeWindow,
        uint64 challengeFinality,
        uint64 challengesPerProof,
        uint64 faultThreshold,
        uint16 slashBps
    );
    /// A dataset's proof set was created.
    event ProofSetCreated(uint256 indexed setId, uint256 indexed datasetId, uint64 pieceCount, uint64 totalLeaves);
    /// A challenge was scheduled: seeded by the hash of block `challengeEpoch`, provable in
    /// blocks `challengeEpoch + 1 ..= windowEnd`.
    event ProvingPeriodStarted(uint256 indexed setId, uint64 challengeEpoch, uint64 windowEnd);
    /// The open challenge was answered at `blockNumber`.
    event PossessionProven(uint256 indexed setId, uint64 blockNumber);
    /// A missed window or deadline was recorded.
    event FaultRecorded(uint256 indexed setId, uint64 consecutiveFaults, uint64 totalFaults);
    /// The dataset's stake was slashed by `amount` (paid to the reporter through the registry).
    event ProofSetSlashed(uint256 indexed setId, uint256 amount);

    /// `initialize` was already called.
    error AlreadyInitialized();
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
        function arbBlockHash(uint256 arbBlockNum) external view returns (bytes32);
    }

    /// The part of the `DatasetRegistry` used here.
    interface IDatasetRegistry {
        function datasetOwner(uint256 datasetId) external view returns (address);
        function stakeOf(uint256 datasetId) external view returns (uint256);
        function slash(uint256 datasetId, uint256 amount, address to) external returns (uint256);
    }
}

/// Everything `ProofManager` reverts with.
#[derive(SolidityError, Debug)]
pub enum Error {
    AlreadyInitialized(AlreadyInitialized),
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
    consecutive_faults: StorageU64,
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
    /// # Errors
    /// `AlreadyInitialized`; `InvalidConfig` unless `challengeWindow ∈ 1..=255`,
    /// `challengeFinality ≥ 1`, `provingPeriod ≥ challengeFinality + challengeWindow`,
    /// `challengesPerProof ∈ 1..=16`, `faultThreshold ≥ 1`, `slashBps ≤ 10000` and `registry ≠ 0`.
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
    ) -> Result<(), Error> {
        if self.is_initialized() {
            return Err(Error::AlreadyInitialized(AlreadyInitialized {}));
        }
        let fits_period = challenge_finality
            .checked_add(challenge_window)
            .is_some_and(|needed| proving_period >= needed);
        let valid = (1..=MAX_CHALLENGE_WINDOW).contains(&challenge_window)
            && challenge_finality >= 1
            && fits_period
            && (1..=MAX_CHALLENGES_PER_PROOF).contains(&challenges_per_proof)
            && fault_threshold >= 1
            && slash_bps <= BPS
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
        self.vm().log(Initialized {
            owner,
            registry,
            provingPeriod: proving_period,
            challengeWindow: challenge_window,
            challengeFinality: challenge_finality,
            challengesPerProof: challenges_per_proof,
            faultThreshold: fault_threshold,
            slashBps: slash_bps,
        });
        Ok(())
    }

    /// Creates the proof set of `datasetId` from its pieces' roots and leaf counts; the first
    /// proving period's deadline is `provingPeriod` blocks from now. Set ids start at 1.
    ///
    /// # Errors
    /// `NotInitialized`; `InvalidPieces` unless there are 1..=64 pieces, as many counts as roots,
    /// each a power of two, summing below 2^64; `RegistryCallFailed` when the registry does not
    /// know the dataset; `NotDatasetOwner` unless the caller owns it; `ProofSetExists` when it
    /// already has one; `ArbSysCallFailed`.
    ///
    /// # Events
    /// `ProofSetCreated`.
    pub fn create_proof_set(
        &mut self,
        dataset_id: U256,
        roots: Vec<B256>,
        leaf_counts: Vec<u64>,
    ) -> Result<U256, Error> {
        let registry = self.require_initialized()?;
        if roots.is_empty() || roots.len() > MAX_PIECES || roots.len() != leaf_counts.len() {
            return Err(Error::InvalidPieces(InvalidPieces {}));
        }
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
        drop(set);
        self.vm().log(ProofSetCreated {
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
        drop(set);
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
        self.vm().log(ProvingPeriodStarted {
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
        drop(set);
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
        set.consecutive_faults.set(U64::ZERO);
        set.challenge_epoch.set(U64::ZERO);
        set.deadline.set(U64::from(deadline));
        drop(set);
        self.vm().log(PossessionProven {
            setId: set_id,
            blockNumber: now,
        });
        Ok(())
    }

    /// Records a fault: allowed once the open challenge's window has closed unproven, or the
    /// deadline has passed. Anyone may call it. The challenge is closed and the next deadline is
    /// `provingPeriod` blocks from now. From `faultThreshold` consecutive faults on, each fault
    /// slashes `slashBps` of the dataset's stake in the registry, credited to the caller.
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
        let faults = set.faults.get().to::<u64>().saturating_add(1);
        let consecutive = set.consecutive_faults.get().to::<u64>().saturating_add(1);
        drop(set);

        // Effects before the registry call (checks-effects-interactions).
        let next_deadline = now.saturating_add(self.proving_period.get().to::<u64>());
        let mut set = self.proof_sets.setter(set_id);
        set.faults.set(U64::from(faults));
        set.consecutive_faults.set(U64::from(consecutive));
        set.challenge_epoch.set(U64::ZERO);
        set.deadline.set(U64::from(next_deadline));
        drop(set);
        self.vm().log(FaultRecorded {
            setId: set_id,
            consecutiveFaults: consecutive,
            totalFaults: faults,
        });

        if consecutive >= self.fault_threshold.get().to::<u64>() {
            let stake = IDatasetRegistry::new(registry)
                .stake_of(self.vm(), Call::new(), dataset_id)
                .map_err(|_| Error::RegistryCallFailed(RegistryCallFailed {}))?;
            let amount = bps_of(stake, self.slash_bps.get().to::<u16>());
            if !amount.is_zero() {
                let reporter = self.vm().msg_sender();
                let context = Call::new_mutating(self);
                let slashed = IDatasetRegistry::new(registry)
                    .slash(self.vm(), context, dataset_id, amount, reporter)
                    .map_err(|_| Error::RegistryCallFailed(RegistryCallFailed {}))?;
                self.vm().log(ProofSetSlashed {
                    setId: set_id,
                    amount: slashed,
                });
            }
        }
        Ok(())
    }

    /// Health of `datasetId`'s proof set: 0 None (no proof set), 1 Healthy (proven, no fault in a
    /// row and none due), 2 Degraded (otherwise), 3 Failed (`faultThreshold` consecutive faults).
    ///
    /// # Errors
    /// `ArbSysCallFailed`.
    pub fn health(&self, dataset_id: U256) -> Result<u8, Error> {
        let set_id = self.proof_set_of.get(dataset_id);
        if set_id.is_zero() {
            return Ok(HEALTH_NONE);
        }
        let set = self.proof_sets.getter(set_id);
        let consecutive = set.consecutive_faults.get().to::<u64>();
        if consecutive >= self.fault_threshold.get().to::<u64>() {
            return Ok(HEALTH_FAILED);
        }
        if consecutive > 0 || set.last_proven_block.get().is_zero() {
            return Ok(HEALTH_DEGRADED);
        }
        let epoch = set.challenge_epoch.get().to::<u64>();
        let deadline = set.deadline.get().to::<u64>();
        let now = self.now()?;
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
    pub fn proof_set_of(&self, dataset_id: U256) -> U256 {
        self.proof_set_of.get(dataset_id)
    }

    /// A proof set's state. `challengeEpoch` is 0 when no challenge is open.
    ///
    /// # Errors
    /// `UnknownProofSet`.
    #[allow(clippy::type_complexity)] // The ABI's return tuple.
    pub fn proof_set(
        &self,
        set_id: U256,
    ) -> Result<(U256, u64, u64, u64, u64, u64, u64, u64), Error> {
        self.require_proof_set(set_id)?;
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
            set.consecutive_faults.get().to::<u64>(),
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
    pub fn proof_set_count(&self) -> U256 {
        self.proof_set_count.get()
    }

    /// The caller of `initialize`.
    pub fn owner(&self) -> Address {
        self.owner.get()
    }

    /// The `DatasetRegistry`.
    pub fn registry(&self) -> Address {
        self.registry.get()
    }

    /// Blocks from a proof (or a fault) to the next deadline.
    pub fn proving_period(&self) -> u64 {
        self.proving_period.get().to::<u64>()
    }

    /// Blocks after the challenge epoch in which a proof is accepted.
    pub fn challenge_window(&self) -> u64 {
        self.challenge_window.get().to::<u64>()
    }

    /// Blocks from `nextProvingPeriod` to the challenge epoch.
    pub fn challenge_finality(&self) -> u64 {
        self.challenge_finality.get().to::<u64>()
    }

    /// Leaves challenged per proof.
    pub fn challenges_per_proof(&self) -> u64 {
        self.challenges_per_proof.get().to::<u64>()
    }

    /// Consecutive faults from which the set is Failed and each fault slashes.
    pub fn fault_threshold(&self) -> u64 {
        self.fault_threshold.get().to::<u64>()
    }

    /// Share of the stake slashed per fault at or past the threshold, in basis points.
    pub fn slash_bps(&self) -> u16 {
        self.slash_bps.get().to::<u16>()
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

    /// The current L2 block number.
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
            let challenged = challenge_leaf_index(seed, set_id, i, total);
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
fn fault_due(epoch: u64, window: u64, deadline: u64, now: u64) -> bool {
    let window_missed = epoch != 0 && now > epoch.saturating_add(window);
    window_missed || now > deadline
}

/// `amount · bps / 10000`, rounded down, without overflow: with `amount = q·10000 + r`, that is
/// `q·bps + r·bps / 10000` exactly, and neither product can overflow.
fn bps_of(amount: U256, bps: u16) -> U256 {
    let scale = U256::from(BPS);
    let bps = U256::from(bps);
    (amount / scale) * bps + (amount % scale) * bps / scale
}
