// DatasetRegistry's events, declared once. The contract's `sol!` reads this file (src/lib.rs), and its
// `export-abi` binary (src/main.rs) splices these declarations into the interface it prints, so the
// committed abi/IDatasetRegistry.sol that agents bind carries exactly the events the contract emits.
// Keep one blank line between events: the splice indents each block as one interface item.

/// The registry was initialized by `owner`.
event Initialized(address indexed owner, address proofManager, address queryMarket, uint256 minStake, uint64 withdrawCooldown);

/// A dataset was registered with `stake` as its bond.
event DatasetRegistered(uint256 indexed datasetId, address indexed owner, bytes manifestCid, bytes pieceCid, bytes32 schemaHash, uint256 stake);

/// A dataset's privacy budget was set at registration or raised by its owner
/// (`renewPrivacyBudget`): `budget` is the new total, `sampleEpsilon` what the sample statistics
/// spent of it, both in micro-ε.
event PrivacyBudgetSet(uint256 indexed datasetId, uint64 budget, uint64 sampleEpsilon);

/// A template was allowed or disallowed for a dataset.
event TemplateSet(uint256 indexed datasetId, bytes32 indexed templateHash, bool allowed);

/// A template's price per query changed.
event PriceSet(uint256 indexed datasetId, bytes32 indexed templateHash, uint256 price);

/// A dataset stopped accepting orders.
event DatasetDeactivated(uint256 indexed datasetId);

/// The owner took a deactivated dataset's stake back.
event StakeWithdrawn(uint256 indexed datasetId, address indexed to, uint256 amount);

/// The proof manager (a reporter's bounty) or the query market (a missed delivery's penalty)
/// slashed `amount` of a dataset's stake, credited to `to`'s payout.
event StakeSlashed(uint256 indexed datasetId, address indexed to, uint256 amount);

/// A lapse's slash of `amount`: `perOrder` reserved for each of the `orders` open on the dataset,
/// `burned` credited to the burn address.
event StakeSlashedForBuyers(uint256 indexed datasetId, uint256 amount, uint256 perOrder, uint256 orders, uint256 burned);

/// A closing order's share of its dataset's lapses: `amount` to the receipt's owner `to`, `burned`
/// above the order's price.
event Compensated(uint256 indexed datasetId, address indexed to, uint256 amount, uint256 burned);

/// `to` pulled its payout.
event Withdrawn(address indexed to, uint256 amount);
