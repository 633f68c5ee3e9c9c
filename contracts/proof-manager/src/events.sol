// ProofManager's events, declared once. The contract's `sol!` reads this file (src/lib.rs), and its
// `export-abi` binary (src/main.rs) splices these declarations into the interface it prints, so the
// committed abi/IProofManager.sol that agents bind carries exactly the events the contract emits.
// Keep one blank line between events: the splice indents each block as one interface item.

/// The contract was configured; `owner` is the caller of `initialize`.
event Initialized(
    address indexed owner,
    address indexed registry,
    uint64 provingPeriod,
    uint64 challengeWindow,
    uint64 challengeFinality,
    uint64 challengesPerProof,
    uint64 faultThreshold,
    uint16 slashBps,
    uint16 reporterBountyBps
);

/// A dataset's proof set was created.
event ProofSetCreated(uint256 indexed setId, uint256 indexed datasetId, uint64 pieceCount, uint64 totalLeaves);

/// A challenge was scheduled: seeded by the hash of block `challengeEpoch`, provable in
/// blocks `challengeEpoch + 1 ..= windowEnd`.
event ProvingPeriodStarted(uint256 indexed setId, uint64 challengeEpoch, uint64 windowEnd);

/// The open challenge was answered at `blockNumber`.
event PossessionProven(uint256 indexed setId, uint64 blockNumber);

/// A missed window or deadline was recorded: `recentFaults` within the sliding window (this one
/// included), `totalFaults` ever.
event FaultRecorded(uint256 indexed setId, uint64 recentFaults, uint64 totalFaults);

/// The dataset's stake was slashed by `amount`: `bounty` of it to `reporter` (a payout in the
/// registry), the rest burned.
event ProofSetSlashed(uint256 indexed setId, uint256 amount, address indexed reporter, uint256 bounty);
