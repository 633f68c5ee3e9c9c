//! A devchain over HTTP with the real contract WASM deployed, and datasets as `onboard` records
//! them, for the seller's integration tests.

use std::path::Path;

use alloy::primitives::{B256, U256, keccak256};
use datacloud_seller::PendingDataset;

// Each test binary uses part of it.
#[allow(unused_imports)]
pub use datacloud_agent_core::testing::{ETHER, config, deployed, devchain as chain};

/// A dataset as `onboard` records it before its first transaction: a package root and a piece
/// commitment of real bytes (the chain checks CIDs and piece sizes, not the store).
pub fn pending(dir: &Path, name: &str) -> PendingDataset {
    let payload: Vec<u8> = (0..5000u32)
        .flat_map(|i| (i ^ 0x5a5a).to_le_bytes())
        .chain(name.bytes())
        .collect();
    let commitment = datacloud_pdp::commp(&payload).unwrap();
    let manifest = datacloud_store::block::cid_of(datacloud_store::Codec::Raw, name.as_bytes());
    let table = datacloud_query::synth::generate(4, 1);
    PendingDataset {
        name: name.into(),
        manifest_cid: manifest.to_string(),
        piece_cid: commitment.to_piece_cid_v2().to_string(),
        car: dir.join(format!("{name}.car")),
        client_key: dir.join(format!("{name}.key")),
        rows: None,
        layout: datacloud_query::layout::header(&table, &datacloud_query::LayoutOptions::default()),
        templates: vec!["cohort_stats".into()],
        schema_hash: keccak256(b"schema"),
        price: U256::from(ETHER / 20),
        stake: U256::from(ETHER),
        privacy_budget: 10_000_000,
        sample_epsilon: 1_000_000,
        piece_root: B256::from(commitment.root()),
        piece_leaves: commitment.size().leaf_count(),
    }
}
