// QueryMarket's events (and the attestation struct workers sign), declared once. The contract's `sol!` reads this file (src/lib.rs), and its
// `export-abi` binary (src/main.rs) splices these declarations into the interface it prints, so the
// committed abi/IQueryMarket.sol that agents bind carries exactly the events the contract emits.
// Keep one blank line between events: the splice indents each block as one interface item.

/// What a worker signs to attest a result (EIP-712; domain name "DataCloud QueryMarket", version
/// "1", this chain, this market): `submitResult` recovers the signer from it.
struct Attestation {
    uint256 orderId;
    uint256 datasetId;
    bytes32 manifestHash;
    bytes32 templateHash;
    bytes32 paramsHash;
    bytes32 resultHash;
}

/// What a seller signs for a delivery (EIP-712, the same domain): `deliverResult` recovers the
/// seller from it, and `ResultDelivered` carries it, so the buyer holds the seller's word that
/// this sealed table (`deliveryCid`, the hash of its bytes) is its answer to this result.
struct Delivery {
    uint256 orderId;
    bytes32 resultHash;
    bytes deliveryCid;
}

/// A receipt changed hands (ERC-721 `Transfer`; `from` is zero on mint).
event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

/// A buyer paid `escrow` for a query on `datasetId`, spending `epsilon` (micro-ε) of its privacy
/// budget.
event OrderPlaced(uint256 indexed orderId, uint256 indexed datasetId, address indexed buyer, bytes32 templateHash, bytes32 paramsHash, uint256 escrow, uint64 deadline, uint64 epsilon);

/// A worker registered or topped up; `bond` is its bond afterwards.
event WorkerRegistered(address indexed worker, uint256 bond);

/// A worker moved its whole bond to its payouts.
event WorkerBondWithdrawn(address indexed worker, uint256 amount);

/// A worker's claim (or a verifier's assignment) on an order timed out: `amount` of its bond went to the party that waited on it (the receipt's owner; for a verifier, the order's worker).
event ClaimForfeited(uint256 indexed orderId, address indexed worker, uint256 amount);

/// A worker claimed an order (possibly taking over an expired claim).
event OrderClaimed(uint256 indexed orderId, address indexed worker, uint64 claimedAt);

/// The claiming worker submitted an attested result.
event ResultSubmitted(uint256 indexed orderId, address indexed worker, bytes resultCid, bytes32 resultHash);

/// The seller delivered the result, encrypted to the buyer's key; `signature` is the seller's over `Delivery(orderId, resultHash, deliveryCid)`.
event ResultDelivered(uint256 indexed orderId, bytes deliveryCid, bytes signature);

/// The order settled on a healthy dataset: who was credited what.
event OrderSettled(uint256 indexed orderId, uint256 sellerAmount, uint256 workerAmount, uint256 excess);

/// The dataset was not healthy at delivery (`health` as `ProofManager.health`): buyer refunded.
event OrderFailed(uint256 indexed orderId, uint8 health);

/// `verifier` was drawn to recompute the disputed order (`round` 1 or 2) before `deadline`.
event VerifierAssigned(uint256 indexed orderId, address indexed verifier, uint8 round, uint64 deadline);

/// A verifier recomputed the order: `resultCid`/`resultHash` are what it got.
event VerdictSubmitted(uint256 indexed orderId, address indexed verifier, bytes resultCid, bytes32 resultHash);

/// The dispute ended: `outcome` 1 upheld (the worker's result stands), 2 overturned (the worker was slashed, the order reopened), 3 inconclusive (the order reopened, nobody slashed).
event DisputeResolved(uint256 indexed orderId, uint8 outcome);

/// `account` lost `amount` of its bond on the losing side of a dispute over `orderId`.
event WorkerSlashed(uint256 indexed orderId, address indexed account, uint256 amount);

/// The order closed unfinished and `amount` of its escrow went back to the receipt's owner (the rest, for a computed result, to its worker). `reason` 1: the deadline passed; 2: the seller refused it; 3: the seller did not deliver the computed result within its window, and `penalty` of its stake went to the receipt's owner too.
event OrderRefunded(uint256 indexed orderId, address indexed to, uint256 amount, uint8 reason, uint256 penalty);

/// `account` withdrew its payouts.
event Withdrawn(address indexed account, uint256 amount);
