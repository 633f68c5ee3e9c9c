//! Onboarding: from a validated table to a registered, provable dataset.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use alloy::primitives::{B256, Bytes, U256, keccak256};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolEvent as _;
use cid::Cid;
use datacloud_agent_core::bindings::{IDatasetRegistry, IProofManager};
use datacloud_agent_core::journal::{ActionJournal, ActionKey};
use datacloud_agent_core::{ChainClient, Deployments, Epsilon};
use datacloud_fhe_query::{Passphrase, SellerKey, encrypt, sample_statistics, save_rows};
use datacloud_package::{Manifest, Provenance, publish};
use datacloud_pdp::PieceProver;
use datacloud_query::layout::LayoutOptions;
use datacloud_query::{Table, template};
use datacloud_store::Blockstore;

use crate::{OwnedDataset, PendingDataset, SellerBook, SellerError};

/// What the seller offers.
#[derive(Debug, Clone)]
pub struct OnboardOptions {
    /// Display name.
    pub name: String,
    /// What the data is.
    pub description: String,
    /// Price per query in wei, for every template.
    pub price: U256,
    /// Templates allowed (canonical names).
    pub templates: Vec<String>,
    /// Stake posted with the registration, in wei.
    pub stake: U256,
    /// Where the rows came from (file name, generator).
    pub source: String,
    /// Layout choices (chunk size, cube).
    pub layout: LayoutOptions,
    /// Seal the client key file under this passphrase (`None`: mode 0600 only).
    pub passphrase: Option<Passphrase>,
    /// Publish sample statistics in the manifest under this total ε (`None`: publish none).
    /// It is charged to the privacy budget at registration.
    pub sample_epsilon: Option<f64>,
    /// The dataset's total privacy budget (ε), shared by every buyer and the sample
    /// statistics; only an explicit renewal raises it.
    pub privacy_budget: f64,
    /// Smallest number of rows any published figure is derived from (the sample statistics').
    pub min_cohort: u64,
}

/// What onboarding produced.
#[derive(Debug)]
pub struct Onboarded {
    /// The seller's record (also saved in the book).
    pub dataset: OwnedDataset,
    /// Bytes of the CAR (the piece's payload).
    pub car_bytes: u64,
    /// Encrypted chunks.
    pub chunks: usize,
    /// Seconds per step: encrypt, store, register.
    pub steps: Vec<(&'static str, f64)>,
    /// The piece prover with its cached layers (hand it to [`crate::Seller::adopt_prover`] to
    /// skip re-reading the CAR).
    pub prover: PieceProver<std::fs::File>,
}

/// Onboards `table`: keys, encryption, package, CAR, `PieceCID`, registration, proof set.
///
/// # Errors
/// [`SellerError`] naming the failing step; nothing is registered before the package, the CAR
/// and the piece commitment exist on disk.
#[allow(clippy::too_many_lines)] // the onboarding steps, in order
pub async fn onboard(
    client: &ChainClient,
    deployments: &Deployments,
    data_dir: &Path,
    store: &Blockstore,
    table: &Table,
    options: &OnboardOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Onboarded, SellerError> {
    for name in &options.templates {
        if !template::TEMPLATES.contains(&name.as_str()) {
            return Err(SellerError::Invalid(format!(
                "unknown template {name:?}; known: {}",
                template::TEMPLATES.join(", ")
            )));
        }
    }
    if options.templates.is_empty() {
        return Err(SellerError::Invalid("enable at least one template".into()));
    }
    let budget = Epsilon::from_f64(options.privacy_budget)
        .map_err(|e| SellerError::Invalid(format!("the privacy budget: {e}")))?;
    let sample_epsilon = match options.sample_epsilon {
        Some(epsilon) => Epsilon::from_f64(epsilon)
            .map_err(|e| SellerError::Invalid(format!("the sample statistics' ε: {e}")))?,
        None => Epsilon(0),
    };
    if sample_epsilon >= budget {
        return Err(SellerError::Invalid(format!(
            "the sample statistics' ε ({sample_epsilon}) must leave some of the privacy budget \
             ({budget}) for orders"
        )));
    }
    let mut steps = Vec::new();
    let mut clock = Instant::now();
    let dir = data_dir.join("seller");
    std::fs::create_dir_all(&dir).map_err(|e| SellerError::file(&dir, e))?;

    // Keys and ciphertexts.
    let key = SellerKey::generate();
    let dataset = tokio::task::block_in_place(|| encrypt(table, &key, &options.layout, progress));
    steps.push(("keygen + encrypt", lap(&mut clock)));

    // The package, its CAR and the piece.
    let manifest = Manifest {
        name: options.name.clone(),
        description: options.description.clone(),
        schema: table.schema.to_toml(),
        layout: dataset.header.clone(),
        templates: options.templates.clone(),
        encryption: "TFHE-rs integer radix, PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128 (128-bit), seeded ciphertexts of 24 bytes a block (mask seed and body)".into(),
        provenance: Provenance {
            source: options.source.clone(),
            rows: table.rows() as u64,
            chain_id: deployments.chain_id,
        },
        sample: options
            .sample_epsilon
            .map(|epsilon| {
                sample_statistics(table, epsilon, options.min_cohort, &mut rand::rng())
            }),
    };
    let server_key = key.server_key_bytes()?;
    let root = tokio::task::block_in_place(|| publish(store, &manifest, &server_key, &dataset))?;
    let key_path = dir.join(format!("{root}.key"));
    match &options.passphrase {
        Some(passphrase) => key.save_sealed(&key_path, passphrase)?,
        None => key.save(&key_path)?,
    }
    let rows_path = dir.join(format!("{root}.rows"));
    save_rows(table, &rows_path, options.passphrase.as_ref())?;
    let car_path = dir.join(format!("{root}.car"));
    let file = std::fs::File::create(&car_path).map_err(|e| SellerError::file(&car_path, e))?;
    store
        .export_car(&root, std::io::BufWriter::new(file))?
        .flush()
        .map_err(|e| SellerError::file(&car_path, e))?;
    let car_bytes = std::fs::metadata(&car_path)
        .map_err(|e| SellerError::file(&car_path, e))?
        .len();
    let prover = tokio::task::block_in_place(|| PieceProver::open(&car_path))?;
    let commitment = prover.commitment();
    let piece_cid = commitment.to_piece_cid_v2();
    steps.push(("store + CommP", lap(&mut clock)));

    // Recorded before any transaction: from here on, a stop is finished by `finish_pending`.
    let pending = PendingDataset {
        name: options.name.clone(),
        manifest_cid: root.to_string(),
        piece_cid: piece_cid.to_string(),
        car: car_path,
        client_key: key_path,
        rows: Some(rows_path),
        layout: dataset.header.clone(),
        templates: options.templates.clone(),
        schema_hash: keccak256(manifest.schema.as_bytes()),
        price: options.price,
        stake: options.stake,
        privacy_budget: budget.0,
        sample_epsilon: sample_epsilon.0,
        piece_root: B256::from(commitment.root()),
        piece_leaves: commitment.size().leaf_count(),
    };
    let mut book = SellerBook::load(data_dir)?;
    book.pending.push(pending.clone());
    book.save(data_dir)?;
    let owned = finish(client, deployments, data_dir, &pending).await?;
    steps.push(("register", lap(&mut clock)));
    Ok(Onboarded {
        dataset: owned,
        car_bytes,
        chunks: dataset.chunks.len(),
        steps,
        prover,
    })
}

/// Finishes every onboarding the book records as pending (registration and proof set, each
/// sent at most once: the onboarding journal `<data_dir>/seller/onboard.journal.redb` re-sends
/// a signed transaction rather than signing another). Returns the datasets finished.
///
/// # Errors
/// [`SellerError`] for the first that cannot be finished now (it stays pending).
pub async fn finish_pending(
    client: &ChainClient,
    deployments: &Deployments,
    data_dir: &Path,
) -> Result<Vec<OwnedDataset>, SellerError> {
    let mut done = Vec::new();
    for pending in SellerBook::load(data_dir)?.pending {
        tracing::info!(name = %pending.name, root = %pending.manifest_cid, "finishing an interrupted onboarding");
        done.push(finish(client, deployments, data_dir, &pending).await?);
    }
    Ok(done)
}

/// Registers `pending` and opens its proof set, then moves it from `pending` to `datasets`.
async fn finish(
    client: &ChainClient,
    deployments: &Deployments,
    data_dir: &Path,
    pending: &PendingDataset,
) -> Result<OwnedDataset, SellerError> {
    let journal = ActionJournal::open(&data_dir.join("seller").join("onboard.journal.redb"))?;
    // Journal keys name the package: its root CID hashed to a 256-bit id.
    let id = U256::from_be_bytes(keccak256(pending.manifest_cid.as_bytes()).0);
    let root = pending
        .manifest_cid
        .parse::<Cid>()
        .map_err(|e| SellerError::Invalid(format!("pending manifest CID: {e}")))?;
    let piece = pending
        .piece_cid
        .parse::<Cid>()
        .map_err(|e| SellerError::Invalid(format!("pending piece CID: {e}")))?;
    let hashes: Vec<B256> = pending
        .templates
        .iter()
        .map(|t| B256::from(template::template_hash(t)))
        .collect();
    let registry = IDatasetRegistry::new(deployments.dataset_registry, client.provider());
    let register = registry
        .registerDataset(
            Bytes::from(root.to_bytes()),
            Bytes::from(piece.to_bytes()),
            pending.schema_hash,
            hashes.clone(),
            vec![pending.price; hashes.len()],
            pending.privacy_budget,
            pending.sample_epsilon,
        )
        .value(pending.stake)
        .from(client.address())
        .into_transaction_request();
    let receipt = perform(client, &journal, id, "register", register).await?;
    // The id comes from the receipt's event: a `view` before sending could be overtaken by
    // another seller's registration in between.
    let dataset_id = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == deployments.dataset_registry)
        .find_map(|l| {
            IDatasetRegistry::DatasetRegistered::decode_raw_log(l.topics(), &l.data().data).ok()
        })
        .map(|e| e.datasetId)
        .ok_or_else(|| {
            SellerError::Invalid("registerDataset emitted no DatasetRegistered".into())
        })?;
    let proofs = IProofManager::new(deployments.proof_manager, client.provider());
    // The proof manager reads the piece (root and height) from the registry: what was
    // registered is what gets proven.
    let create = proofs
        .createProofSet(dataset_id)
        .from(client.address())
        .into_transaction_request();
    let receipt = perform(client, &journal, id, "create-proof-set", create).await?;
    let set_id = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == deployments.proof_manager)
        .find_map(|l| {
            IProofManager::ProofSetCreated::decode_raw_log(l.topics(), &l.data().data).ok()
        })
        .map(|e| e.setId)
        .ok_or_else(|| SellerError::Invalid("createProofSet emitted no ProofSetCreated".into()))?;
    let owned = pending.owned(to_u64(dataset_id)?, to_u64(set_id)?);
    let mut book = SellerBook::load(data_dir)?;
    book.pending
        .retain(|p| p.manifest_cid != pending.manifest_cid);
    if book.get(owned.dataset_id).is_none() {
        book.datasets.push(owned.clone());
    }
    book.save(data_dir)?;
    tracing::info!(dataset = owned.dataset_id, set = owned.set_id, root = %owned.manifest_cid, piece = %owned.piece_cid, "dataset onboarded");
    Ok(owned)
}

/// Performs `step` of the onboarding of package `id` through the journal; a mined revert is an
/// error, and final (the journal will not send it again; the pending entry says so).
async fn perform(
    client: &ChainClient,
    journal: &ActionJournal,
    id: U256,
    step: &str,
    tx: TransactionRequest,
) -> Result<TransactionReceipt, SellerError> {
    let outcome = journal
        .perform(client, &ActionKey::new(id, step), tx)
        .await?;
    if !outcome.success {
        return Err(SellerError::Invalid(format!(
            "{step} reverted in transaction {}",
            outcome.tx_hash
        )));
    }
    Ok(client.wait_receipt(step, outcome.tx_hash).await?)
}

fn to_u64(x: U256) -> Result<u64, SellerError> {
    u64::try_from(x).map_err(|_| SellerError::Invalid(format!("id {x} out of range")))
}

fn lap(clock: &mut Instant) -> f64 {
    let seconds = clock.elapsed().as_secs_f64();
    *clock = Instant::now();
    seconds
}
