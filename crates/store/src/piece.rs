//! Filecoin piece commitments of stored DAGs.
//!
//! A dataset's CAR is its Filecoin piece (DESIGN, "Storage and proofs"): the commitment is CommP
//! over the CAR bytes exactly as [`Blockstore::export_car`] writes them. It is computed streaming
//! from the blockstore through [`Blockstore::car_export`], so memory stays at one block plus the
//! CommP hasher's bounded layers, whatever the DAG's size.

use cid::Cid;
use datacloud_pdp::{PieceCommitment, PieceError, commp_from_reader};

use crate::blockstore::Blockstore;

/// The piece commitment (CommP root and padded size; PieceCID v2 via
/// [`PieceCommitment::to_piece_cid_v2`]) of the CAR of the DAG under `root`.
///
/// # Errors
/// [`PieceError::Io`] wrapping a [`crate::StoreError`] when a block is missing or unreadable,
/// [`PieceError::PayloadTooLarge`] past the largest piece.
pub fn car_piece_commitment(store: &Blockstore, root: &Cid) -> Result<PieceCommitment, PieceError> {
    commp_from_reader(store.car_export(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_commitment_is_commp_of_the_exported_car() {
        let dir = tempfile::tempdir().unwrap();
        let store = Blockstore::open(dir.path().join("blocks.redb")).unwrap();
        let data: Vec<u8> = (0..700_000u32)
            .map(|i| (i * 131 % 253).to_le_bytes()[0])
            .collect();
        let file = store.import_file(data.as_slice(), 16 * 1024, true).unwrap();
        let car = store.export_car(&file.root, Vec::new()).unwrap();

        let streamed = car_piece_commitment(&store, &file.root).unwrap();
        assert_eq!(streamed, datacloud_pdp::commp(&car).unwrap());
        let cid = streamed.to_piece_cid_v2();
        assert_eq!(PieceCommitment::from_piece_cid_v2(&cid).unwrap(), streamed);

        // Another DAG is another piece.
        let other = store.import_file(&data[1..], 16 * 1024, false).unwrap();
        assert_ne!(car_piece_commitment(&store, &other.root).unwrap(), streamed);
    }
}
