//! Inclusion proofs for a piece kept on disk, without holding its tree.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::commp::{PieceCommitment, parent_level, read_full, stream_layer, zero_root};
use crate::fr32::{
    FR32_PADDED_CHUNK, FR32_UNPADDED_CHUNK, chunk_array, chunk_array_mut, pad_chunk,
};
use crate::merkle::{NODE_SIZE, Node, verify_inclusion};
use crate::piece::{MIN_PIECE_HEIGHT, PieceError};
use crate::tree::MerkleTree;

/// Height of the layer of subtree roots a [`PieceProver`] keeps: subtrees of 2^15 leaves, i.e.
/// 1 MiB of padded piece (127 · 2^13 = 1 040 384 payload bytes) each.
pub const PROVER_LAYER_HEIGHT: u8 = 15;

/// A challenged leaf with its siblings from the bottom up: what `provePossession` takes and
/// [`verify_inclusion`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf's index inside its piece.
    pub leaf_index: u64,
    /// The leaf: 32 bytes of the fr32-padded piece.
    pub leaf: Node,
    /// Its siblings, bottom first; as many as the piece tree is high.
    pub siblings: Vec<Node>,
}

impl InclusionProof {
    /// Checks the proof against a piece's CommP root.
    #[must_use]
    pub fn verify(&self, root: &Node) -> bool {
        verify_inclusion(root, &self.leaf, self.leaf_index, &self.siblings)
    }
}

/// Answers PDP challenges for a piece stored on disk.
///
/// Why a cached layer at [`PROVER_LAYER_HEIGHT`]: a piece tree holds twice the padded piece in
/// nodes (2 GiB for a 1 GiB piece), too much to keep in memory for every dataset a seller proves,
/// while rebuilding the whole tree for each challenge costs a full read of the piece per proof.
/// Opening the prover makes one pass over the payload (the CommP pass) and keeps only the roots
/// of its 1 MiB subtrees plus the few levels above them: 32 bytes per MiB of piece (32 KiB for
/// 1 GiB, 1 MiB for 32 GiB). A proof then re-reads one segment (about 1 MiB, one sequential
/// read), rebuilds its 2^15-leaf subtree (a few milliseconds of hashing) for the lower 15
/// siblings, and takes the upper siblings from the cache. Lower layers would make proofs cheaper
/// but the cache larger, higher ones the reverse; 1 MiB keeps both small. The rebuilt subtree's
/// root must equal the cached one, so a payload modified since opening is reported
/// ([`PieceError::PieceChanged`]) instead of yielding a proof that fails on-chain.
///
/// Zero-fill past the payload is never read or stored: its subtrees are the precomputed
/// all-zero roots (see [`crate::zero_subtree_root`]).
#[derive(Debug)]
pub struct PieceProver<R> {
    reader: R,
    commitment: PieceCommitment,
    /// Height of `levels[0]`: [`PROVER_LAYER_HEIGHT`], or the piece's height if that is lower.
    layer_height: u32,
    /// `levels[0]` holds the roots of the subtrees that contain payload; each next level the
    /// parents of the one below (missing right nodes are zero subtrees); the last is `[root]`.
    levels: Vec<Vec<Node>>,
}

impl PieceProver<File> {
    /// Opens the payload file at `path` and makes the one pass that commits to it.
    ///
    /// # Errors
    /// [`PieceError::Io`] when the file cannot be read, [`PieceError::PayloadTooLarge`] past the
    /// largest piece.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PieceError> {
        Self::new(File::open(path)?)
    }
}

impl<R: Read + Seek> PieceProver<R> {
    /// Reads the whole payload from `reader` (from its start) once and keeps the cached layer.
    ///
    /// # Errors
    /// As [`PieceProver::open`].
    pub fn new(reader: R) -> Result<Self, PieceError> {
        Self::new_with_progress(reader, |_| {})
    }

    /// [`PieceProver::new`], reporting the payload bytes hashed so far to `progress`.
    ///
    /// # Errors
    /// As [`PieceProver::open`].
    pub fn new_with_progress<F: FnMut(u64)>(
        mut reader: R,
        mut progress: F,
    ) -> Result<Self, PieceError> {
        reader.seek(SeekFrom::Start(0))?;
        let layer = stream_layer(&mut reader, u32::from(PROVER_LAYER_HEIGHT), &mut progress)?;
        let piece_height = u32::from(layer.size.height());
        let mut levels = vec![layer.roots];
        let mut height = layer.height;
        while height < piece_height {
            let below = levels.last().map_or(&[][..], Vec::as_slice);
            let above = parent_level(below, height);
            levels.push(above);
            height += 1;
        }
        let root = levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or(*zero_root(piece_height));
        Ok(Self {
            reader,
            commitment: PieceCommitment::new(root, layer.size),
            layer_height: layer.height,
            levels,
        })
    }

    /// The commitment (CommP root and size) of the payload as it was read when opening.
    #[must_use]
    pub fn commitment(&self) -> PieceCommitment {
        self.commitment
    }

    /// The proof for leaf `leaf_index` of the padded piece, built by re-reading only the segment
    /// that holds it.
    ///
    /// # Errors
    /// [`PieceError::LeafOutOfRange`] past the piece's last leaf; [`PieceError::Io`] when the
    /// read fails; [`PieceError::PieceChanged`] when the payload differs from what was committed.
    pub fn proof(&mut self, leaf_index: u64) -> Result<InclusionProof, PieceError> {
        let size = self.commitment.size();
        if leaf_index >= size.leaf_count() {
            return Err(PieceError::LeafOutOfRange {
                index: leaf_index,
                leaf_count: size.leaf_count(),
            });
        }
        let layer_height = self.layer_height;
        let segment = leaf_index >> layer_height;
        let local = leaf_index & ((1 << layer_height) - 1);
        // At most 1 MiB of padded piece (`layer_height <= 15`).
        let segment_bytes = FR32_UNPADDED_CHUNK << (layer_height - u32::from(MIN_PIECE_HEIGHT));
        let segment_payload = segment_bytes as u64;

        let length = self.reader.seek(SeekFrom::End(0))?;
        if length != size.payload_size() {
            return Err(PieceError::PieceChanged { what: "its length" });
        }
        let mut unpadded = vec![0u8; segment_bytes];
        let start = segment * segment_payload;
        let available = size
            .payload_size()
            .saturating_sub(start)
            .min(segment_payload);
        // `available <= segment_bytes`, a usize.
        let available = usize::try_from(available).unwrap_or(segment_bytes);
        if available > 0 {
            self.reader.seek(SeekFrom::Start(start))?;
            if read_full(&mut self.reader, &mut unpadded[..available])? != available {
                return Err(PieceError::PieceChanged { what: "its length" });
            }
        }
        let mut leaves = Vec::with_capacity(1 << layer_height);
        let mut padded = [0u8; FR32_PADDED_CHUNK];
        for chunk in unpadded.chunks_exact(FR32_UNPADDED_CHUNK) {
            pad_chunk(chunk_array(chunk), chunk_array_mut(&mut padded));
            leaves.extend(padded.chunks_exact(NODE_SIZE).map(chunk_array::<NODE_SIZE>));
        }
        let subtree = MerkleTree::new(leaves);

        let cached = stored(&self.levels[0], segment).unwrap_or(zero_root(layer_height));
        if subtree.root() != *cached {
            return Err(PieceError::PieceChanged {
                what: "the bytes of the challenged segment",
            });
        }
        // `local < 2^layer_height`, the subtree's leaf count, so both are `Some`.
        let (Some(leaf), Some(mut siblings)) = (subtree.leaf(local), subtree.proof(local)) else {
            return Err(PieceError::LeafOutOfRange {
                index: leaf_index,
                leaf_count: size.leaf_count(),
            });
        };
        let mut position = segment;
        for (height, level) in (layer_height..).zip(&self.levels[..self.levels.len() - 1]) {
            siblings.push(*stored(level, position ^ 1).unwrap_or(zero_root(height)));
            position >>= 1;
        }
        Ok(InclusionProof {
            leaf_index,
            leaf,
            siblings,
        })
    }
}

/// Node `position` of a cached level, `None` when it is a zero subtree past the payload.
fn stored(level: &[Node], position: u64) -> Option<&Node> {
    level.get(usize::try_from(position).ok()?)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::{commp, fr32};

    fn random_payload(len: usize, seed: u64) -> Vec<u8> {
        let mut data = vec![0u8; len];
        StdRng::seed_from_u64(seed).fill(&mut data[..]);
        data
    }

    fn full_tree(payload: &[u8]) -> MerkleTree {
        let size = crate::PieceSize::for_payload(payload.len() as u64).unwrap();
        let mut unpadded = payload.to_vec();
        unpadded.resize(usize::try_from(size.unpadded_size()).unwrap(), 0);
        let padded = fr32::pad(&unpadded).unwrap();
        MerkleTree::new(
            padded
                .chunks_exact(32)
                .map(|c| c.try_into().unwrap())
                .collect(),
        )
    }

    #[test]
    fn proofs_verify_and_equal_the_in_memory_trees() {
        for (seed, len) in [0usize, 1, 126, 127, 128, 255, 1000, (1 << 16) + 3]
            .into_iter()
            .enumerate()
        {
            let data = random_payload(len, seed as u64);
            let tree = full_tree(&data);
            let mut prover = PieceProver::new(Cursor::new(data.clone())).unwrap();
            assert_eq!(prover.commitment(), commp(&data).unwrap(), "{len} bytes");
            assert_eq!(prover.commitment().root(), tree.root());
            let leaves = tree.leaf_count();
            let picks = [0, 1, leaves / 2, leaves - 1, leaves / 3 + 1];
            for index in picks.into_iter().filter(|&i| i < leaves) {
                let proof = prover.proof(index).unwrap();
                assert!(proof.verify(&tree.root()), "{len} bytes, leaf {index}");
                assert_eq!(Some(proof.leaf), tree.leaf(index));
                assert_eq!(Some(proof.siblings), tree.proof(index));
            }
            assert!(matches!(
                prover.proof(leaves),
                Err(PieceError::LeafOutOfRange { .. })
            ));
        }
    }

    #[test]
    fn a_piece_of_several_segments_proves_from_a_file() {
        // Five and a bit 1 MiB segments: a height-18 piece (8 segments) whose last two segments
        // are zero-fill, so cached siblings come both from stored roots and from the zero table.
        let segment = 127usize << 13;
        let data = random_payload(5 * segment + 1234, 5);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&data).unwrap();
        file.flush().unwrap();
        let mut prover = PieceProver::open(file.path()).unwrap();
        let tree = full_tree(&data);
        assert_eq!(prover.commitment().root(), tree.root());
        let per_segment = 1u64 << PROVER_LAYER_HEIGHT;
        for index in [
            0,
            per_segment - 1,
            per_segment,
            5 * per_segment + 17,
            6 * per_segment,
            tree.leaf_count() - 1,
        ] {
            let proof = prover.proof(index).unwrap();
            assert!(verify_inclusion(
                &tree.root(),
                &proof.leaf,
                index,
                &proof.siblings
            ));
            assert_eq!(Some(proof.siblings), tree.proof(index), "leaf {index}");
        }
    }

    #[test]
    fn a_changed_payload_is_reported() {
        let data = random_payload(5000, 3);
        let mut cursor = Cursor::new(data.clone());
        let mut prover = PieceProver::new(&mut cursor).unwrap();
        prover.proof(3).unwrap();
        drop(prover);
        cursor.get_mut()[10] ^= 1;
        let mut prover_after = PieceProver {
            reader: &mut cursor,
            commitment: commp(&data).unwrap(),
            layer_height: u32::from(commp(&data).unwrap().size().height()),
            levels: vec![vec![commp(&data).unwrap().root()]],
        };
        assert!(matches!(
            prover_after.proof(3),
            Err(PieceError::PieceChanged { .. })
        ));
        cursor.get_mut().push(0);
        let mut prover_longer = PieceProver {
            reader: &mut cursor,
            commitment: commp(&data).unwrap(),
            layer_height: 7,
            levels: vec![vec![commp(&data).unwrap().root()]],
        };
        assert!(matches!(
            prover_longer.proof(3),
            Err(PieceError::PieceChanged { what: "its length" })
        ));
    }
}
