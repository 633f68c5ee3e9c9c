//! Onboarding: from a validated table to a registered, provable dataset.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use alloy::primitives::{B256, Bytes, U256, keccak256};
use datacloud_agent_core::bindings::{IDatasetRegistry, IProofManager};
use datacloud_agent_core::{ChainClient, Deployments};
use datacloud_dataset::{Manifest, Provenance, publish};
use datacloud_fhe_query::layout::LayoutOptions;
use datacloud_fhe_query::{SellerKey, Table, encrypt, template};
use datacloud_pdp::PieceProver;
use datacloud_store::Blockstore;

use crate::{OwnedDataset, SellerBook, SellerError};

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
        encryption: "TFHE-rs integer radix, PARAM_MESSAGE_2_CARRY_2_KS_PBS (128-bit), seeded compressed ciphertexts".into(),
        provenance: Provenance {
            source: options.source.clone(),
            rows: table.rows() as u64,
            chain_id: deployments.chain_id,
        },
    };
    let server_key = key.server_key_bytes()?;
    let root = tokio::task::block_in_place(|| publish(store, &manifest, &server_key, &dataset))?;
    let key_path = dir.join(format!("{root}.key"));
    key.save(&key_path)?;
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

    // On chain: the dataset, then its proof set.
    let registry = IDatasetRegistry::new(deployments.dataset_registry, client.provider());
    let hashes: Vec<B256> = options
        .templates
        .iter()
        .map(|t| B256::from(template::template_hash(t)))
        .collect();
    let register = registry
        .registerDataset(
            Bytes::from(root.to_bytes()),
            Bytes::from(piece_cid.to_bytes()),
            keccak256(manifest.schema.as_bytes()),
            hashes.clone(),
            vec![options.price; hashes.len()],
        )
        .value(options.stake)
        .from(client.address());
    let dataset_id = client.view("registerDataset", &register).await?;
    client
        .send("registerDataset", register.into_transaction_request())
        .await?;
    let proofs = IProofManager::new(deployments.proof_manager, client.provider());
    let create = proofs
        .createProofSet(
            dataset_id,
            vec![B256::from(commitment.root())],
            vec![commitment.size().leaf_count()],
        )
        .from(client.address());
    let set_id = client.view("createProofSet", &create).await?;
    client
        .send("createProofSet", create.into_transaction_request())
        .await?;
    steps.push(("register", lap(&mut clock)));

    let owned = OwnedDataset {
        dataset_id: dataset_id.to(),
        set_id: set_id.to(),
        name: options.name.clone(),
        manifest_cid: root.to_string(),
        piece_cid: piece_cid.to_string(),
        car: car_path,
        client_key: key_path,
        layout: dataset.header.clone(),
        templates: options.templates.clone(),
    };
    let mut book = SellerBook::load(data_dir)?;
    book.datasets.push(owned.clone());
    book.save(data_dir)?;
    tracing::info!(dataset = owned.dataset_id, set = owned.set_id, %root, %piece_cid, "dataset onboarded");
    Ok(Onboarded {
        dataset: owned,
        car_bytes,
        chunks: dataset.chunks.len(),
        steps,
        prover,
    })
}

fn lap(clock: &mut Instant) -> f64 {
    let seconds = clock.elapsed().as_secs_f64();
    *clock = Instant::now();
    seconds
}
