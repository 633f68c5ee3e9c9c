//! Deploying the contracts: each WASM (the three contracts and the market's dispute game) is
//! deployed with the Stylus init-code prelude, activated through `ArbWasm` (paying the data
//! fee), and then the three contracts are initialized with each other's addresses (the market
//! also with the game's, which it delegate-calls). The one implementation behind
//! `datacloud deploy` and the tests.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, U256},
    providers::Provider as _,
    rpc::types::TransactionRequest,
};
use serde::{Deserialize, Serialize};

use crate::{
    ChainClient, ChainError, Deployments,
    bindings::{IDatasetRegistry, IProofManager, IQueryMarket, arb_wasm, arb_wasm::ArbWasm},
    stylus::{self, CodeError},
};

const ETHER: u128 = 1_000_000_000_000_000_000;

/// The programs' WASM modules (from `datacloud-contract-artifacts`, or files).
#[derive(Debug, Clone, Copy)]
pub struct ContractsWasm<'a> {
    /// `DatasetRegistry`.
    pub dataset_registry: &'a [u8],
    /// `ProofManager`.
    pub proof_manager: &'a [u8],
    /// `QueryMarket`.
    pub query_market: &'a [u8],
    /// `QueryMarket`'s dispute game.
    pub dispute_game: &'a [u8],
}

/// Contract parameters; every one has a default and may be set in the `[deploy]` table of the
/// configuration file (amounts in wei, as decimal or `0x` strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployParams {
    /// Registry: least stake a dataset registers with (default 1 native token).
    pub min_stake: U256,
    /// Registry: seconds between deactivating a dataset and taking its stake back (1 day).
    pub withdraw_cooldown: u64,
    /// Registry: the smallest piece a dataset registers, as its tree height (2^height leaves of
    /// 32 bytes), 2..=58 (8: an 8 KiB padded piece; a proof over fewer leaves says too little).
    pub min_piece_height: u8,
    /// Proofs: L2 blocks per proving period (57 600: 4 hours of Arbitrum's ~0.25 s blocks).
    /// Periods are counted in L2 blocks because the challenge seed is `ArbSys.arbBlockHash`;
    /// the defaults are sized for Arbitrum's block time (on a devchain mining every 200 ms,
    /// 57 600 blocks are 3.2 hours).
    pub proving_period: u64,
    /// Proofs: L2 blocks a challenge may be answered in, 1..=255 (240: a minute on Arbitrum;
    /// `arbBlockHash` answers for the last 256 blocks only).
    pub challenge_window: u64,
    /// Proofs: L2 blocks between opening a period and its challenge epoch, ≥ 1 (8: 2 seconds
    /// on Arbitrum).
    pub challenge_finality: u64,
    /// Proofs: leaves challenged per proof, 1..=16 (5).
    pub challenges_per_proof: u64,
    /// Proofs: faults within 8 proving periods that slash the stake, 1 to 16 (3).
    pub fault_threshold: u64,
    /// Proofs: share of the stake slashed, in basis points ≤ 10000 (1000 = 10 %).
    pub slash_bps: u16,
    /// Proofs: the reporter's share of a slash, in basis points ≤ 500 (500 = 5 %); the rest
    /// compensates the dataset's open orders, then is burned, so a seller reporting its own
    /// faults ends with less.
    pub reporter_bounty_bps: u16,
    /// Market: fee paid to the worker on top of the price (0.01).
    pub worker_fee: U256,
    /// Market: least bond a worker registers with (0.5).
    pub min_worker_bond: U256,
    /// Market: seconds a claim holds before another worker may take the order (1 hour).
    pub claim_timeout: u64,
    /// Market: longest order deadline, in seconds from placement (7 days).
    pub max_order_lifetime: u64,
    /// Most wei paid to `ArbWasm` per activation (1 native token); the fee the chain asks is
    /// paid with a 10 % margin, which it refunds.
    pub max_activation_fee: U256,
}

impl Default for DeployParams {
    fn default() -> Self {
        Self {
            min_stake: U256::from(ETHER),
            withdraw_cooldown: 86_400,
            min_piece_height: 8,
            proving_period: 4 * 3600 * 4,
            challenge_window: 240,
            challenge_finality: 8,
            challenges_per_proof: 5,
            fault_threshold: 3,
            slash_bps: 1000,
            reporter_bounty_bps: 500,
            worker_fee: U256::from(ETHER / 100),
            min_worker_bond: U256::from(ETHER / 2),
            claim_timeout: 3600,
            max_order_lifetime: 7 * 86_400,
            max_activation_fee: U256::from(ETHER),
        }
    }
}

impl DeployParams {
    /// The ranges the contracts' `initialize` accept, checked before anything is sent.
    ///
    /// # Errors
    /// The first parameter out of range, named as in the configuration file.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                (datacloud_pdp::MIN_PIECE_HEIGHT..=datacloud_pdp::MAX_PIECE_HEIGHT)
                    .contains(&self.min_piece_height),
                "min_piece_height must be 2..=58",
            ),
            (
                (1..=255).contains(&self.challenge_window),
                "challenge_window must be 1..=255",
            ),
            (
                self.challenge_finality >= 1,
                "challenge_finality must be ≥ 1",
            ),
            (
                self.challenge_finality
                    .checked_add(self.challenge_window)
                    .is_some_and(|needed| self.proving_period >= needed),
                "proving_period must be ≥ challenge_finality + challenge_window",
            ),
            (
                (1..=16).contains(&self.challenges_per_proof),
                "challenges_per_proof must be 1..=16",
            ),
            (self.fault_threshold >= 1, "fault_threshold must be ≥ 1"),
            (self.slash_bps <= 10_000, "slash_bps must be ≤ 10000"),
            (
                self.reporter_bounty_bps <= 500,
                "reporter_bounty_bps must be ≤ 500",
            ),
            (self.claim_timeout > 0, "claim_timeout must be > 0"),
            (
                self.max_order_lifetime > 0,
                "max_order_lifetime must be > 0",
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, reason)) => Err(reason.to_owned()),
            None => Ok(()),
        }
    }
}

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A parameter is out of range.
    #[error("invalid deploy parameter: {0}")]
    Params(String),
    /// A WASM module cannot be deployed.
    #[error("{contract}: {source}")]
    Code {
        /// The contract.
        contract: &'static str,
        /// Why.
        source: CodeError,
    },
    /// A transaction or call failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The deployment receipt names no contract.
    #[error("{contract}: the deployment receipt has no contract address")]
    NoContractAddress {
        /// The contract.
        contract: &'static str,
    },
    /// `ArbWasm` asks more than `max_activation_fee`.
    #[error("{contract}: activation costs {fee} wei, above max_activation_fee {max}")]
    ActivationFeeTooHigh {
        /// The contract.
        contract: &'static str,
        /// The fee asked.
        fee: U256,
        /// The configured cap.
        max: U256,
    },
}

/// Deploys, activates and initializes the contracts from `client`'s account, which
/// becomes their owner, and returns where they are. Each `initialize` names the nonce that
/// deployed its program: the contracts accept it only from their deployer, so nobody can
/// configure them between the two transactions.
///
/// # Errors
/// [`DeployError`]; contracts deployed before the failure stay on chain, unused.
pub async fn deploy(
    client: &ChainClient,
    wasm: &ContractsWasm<'_>,
    params: &DeployParams,
) -> Result<Deployments, DeployError> {
    params.validate().map_err(DeployError::Params)?;
    let (dataset_registry, deploy_block, registry_nonce) =
        deploy_program(client, "DatasetRegistry", wasm.dataset_registry, params).await?;
    let (proof_manager, _, proofs_nonce) =
        deploy_program(client, "ProofManager", wasm.proof_manager, params).await?;
    let (dispute_game, _, _) =
        deploy_program(client, "DisputeGame", wasm.dispute_game, params).await?;
    let (query_market, _, market_nonce) =
        deploy_program(client, "QueryMarket", wasm.query_market, params).await?;

    let provider = client.provider();
    let registry = IDatasetRegistry::new(dataset_registry, provider);
    client
        .send(
            "DatasetRegistry.initialize",
            registry
                .initialize(
                    proof_manager,
                    query_market,
                    params.min_stake,
                    params.withdraw_cooldown,
                    params.min_piece_height,
                    registry_nonce,
                )
                .into_transaction_request(),
        )
        .await?;
    let proofs = IProofManager::new(proof_manager, provider);
    client
        .send(
            "ProofManager.initialize",
            proofs
                .initialize(
                    dataset_registry,
                    params.proving_period,
                    params.challenge_window,
                    params.challenge_finality,
                    params.challenges_per_proof,
                    params.fault_threshold,
                    params.slash_bps,
                    params.reporter_bounty_bps,
                    proofs_nonce,
                )
                .into_transaction_request(),
        )
        .await?;
    let market = IQueryMarket::new(query_market, provider);
    client
        .send(
            "QueryMarket.initialize",
            market
                .initialize(
                    dataset_registry,
                    proof_manager,
                    params.worker_fee,
                    params.min_worker_bond,
                    params.claim_timeout,
                    params.max_order_lifetime,
                    dispute_game,
                    market_nonce,
                )
                .into_transaction_request(),
        )
        .await?;

    let deployments = Deployments {
        chain_id: client.chain_id(),
        dataset_registry,
        proof_manager,
        query_market,
        deploy_block,
    };
    tracing::info!(?deployments, "deployed and initialized the contracts");
    Ok(deployments)
}

/// Deploys and activates one program; returns its address, the deployment's block and the
/// nonce of the deploying transaction (its `initialize` asks for it).
async fn deploy_program(
    client: &ChainClient,
    contract: &'static str,
    wasm: &[u8],
    params: &DeployParams,
) -> Result<(Address, u64, u64), DeployError> {
    let code =
        stylus::program_code(wasm).map_err(|source| DeployError::Code { contract, source })?;
    let deploy =
        TransactionRequest::default().with_deploy_code(stylus::deployment_init_code(&code));
    let receipt = client.send(&format!("deploy {contract}"), deploy).await?;
    let address = receipt
        .contract_address
        .ok_or(DeployError::NoContractAddress { contract })?;
    // `wait_receipt` refuses receipts without a block number.
    let block = receipt.block_number.unwrap_or_default();
    // The address is `CREATE(me, nonce)`; the nonce is a recent one of ours (the client may
    // have retried), found from the account's current count down.
    let me = client.address();
    let count = client
        .with_retry("reading the deployer's nonce", || async {
            client.provider().get_transaction_count(me).await
        })
        .await?;
    let nonce = (0..count)
        .rev()
        .find(|&nonce| me.create(nonce) == address)
        .ok_or(DeployError::NoContractAddress { contract })?;

    // Ask the chain what activation costs (a call with the cap as value), then pay that with
    // a margin: the data fee can rise between the call and the transaction, and ArbWasm
    // refunds what it does not need.
    let arb_wasm = ArbWasm::new(arb_wasm::ADDRESS, client.provider());
    let estimate = client
        .view(
            &format!("estimate {contract} activation"),
            &arb_wasm
                .activateProgram(address)
                .value(params.max_activation_fee)
                .from(client.address()),
        )
        .await?;
    let fee = estimate.dataFee;
    let with_margin = fee.saturating_add(fee / U256::from(10));
    if fee > params.max_activation_fee {
        return Err(DeployError::ActivationFeeTooHigh {
            contract,
            fee,
            max: params.max_activation_fee,
        });
    }
    client
        .send(
            &format!("activate {contract}"),
            arb_wasm
                .activateProgram(address)
                .value(with_margin.min(params.max_activation_fee))
                .into_transaction_request(),
        )
        .await?;
    tracing::info!(%address, version = estimate.version, %fee, "{contract} deployed and activated");
    Ok((address, block, nonce))
}
