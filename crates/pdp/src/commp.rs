//! CommP: the SHA254 binary Merkle root over the 32-byte leaves of a fr32-padded piece
//! (`filecoin-proofs`' `compute_comm_d` / `generate_piece_commitment`, Lotus' `commp` writer).
//!
//! Three things make it fast without changing the result:
//! - the zero-fill that tops a payload up to its piece size is never hashed: an all-zero subtree
//!   of height `h` has the root `z(h)` ([`zero_subtree_root`]), precomputed once;
//! - each 127-byte payload chunk is padded on the stack and reduced straight to its height-2
//!   node, and subtrees of 2^8 chunks (32 KiB of payload, cache-sized) are the unit of work that
//!   rayon spreads over the cores;
//! - a node is one call to SHA-256's compression function over the two 64-byte blocks of
//!   `left ‖ right ‖ padding` (`sha2::compress256`, which picks the x86 SHA-NI or `ARMv8` SHA
//!   instructions at run time), skipping the streaming hasher's buffering.

use std::io::{ErrorKind, Read};
use std::sync::LazyLock;

use rayon::prelude::*;
#[allow(deprecated)]
use sha2::digest::generic_array::GenericArray;

use crate::fr32::{FR32_PADDED_CHUNK, FR32_UNPADDED_CHUNK, pad_chunk};
use crate::merkle::{NODE_SIZE, Node};
use crate::piece::{MAX_PIECE_HEIGHT, MIN_PIECE_HEIGHT, PieceError, PieceSize};

/// A piece commitment: the CommP root together with the piece's size, i.e. everything a
/// PieceCID v2 (FRC-0069) says about a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceCommitment {
    root: Node,
    size: PieceSize,
}

impl PieceCommitment {
    /// Pairs a root with the size of the piece it commits to.
    #[must_use]
    pub const fn new(root: Node, size: PieceSize) -> Self {
        Self { root, size }
    }

    /// The CommP root (the root of the piece tree, the digest of a PieceCID v1).
    #[must_use]
    pub const fn root(&self) -> Node {
        self.root
    }

    /// The piece's size.
    #[must_use]
    pub const fn size(&self) -> PieceSize {
        self.size
    }
}

/// Height of the subtrees each rayon task hashes: 2^8 chunks = 32 KiB of payload, whose 2^10
/// leaves (32 KiB) stay in L1 while they are folded.
const BLOCK_HEIGHT: u32 = 10;

/// Height of the segments the streaming path reads at a time: 2^15 chunks = 127 · 2^15 bytes
/// (≈ 4 MiB) of payload, one root each.
pub(crate) const STREAM_SEGMENT_HEIGHT: u32 = 17;

/// Segments per read batch; two batches (one hashed while the next is read) bound the memory of
/// a streaming CommP to ≈ 32 MiB however large the payload.
const STREAM_BATCH_SEGMENTS: usize = 4;

/// The SHA-256 initial state (FIPS 180-4 §5.3.3).
pub(crate) const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The second SHA-256 block of every 64-byte message: the `0x80` terminator, zeros, and the
/// message length (512 bits) big-endian (FIPS 180-4 §5.1.1).
const LENGTH_BLOCK: [u8; 64] = {
    let mut block = [0u8; 64];
    block[0] = 0x80;
    block[62] = 0x02;
    block
};

/// [`crate::sha254`] through the raw compression function: same result (tested), less overhead.
// `sha2` 0.10's `compress256` takes `generic-array` 0.14 blocks, which that crate now marks
// deprecated in favour of 1.x; the type is still what the API requires.
#[allow(deprecated)]
pub(crate) fn hash_pair(left: &Node, right: &Node) -> Node {
    let mut message = [0u8; 64];
    message[..NODE_SIZE].copy_from_slice(left);
    message[NODE_SIZE..].copy_from_slice(right);
    let blocks = [
        GenericArray::from(message),
        GenericArray::from(LENGTH_BLOCK),
    ];
    let mut state = SHA256_IV;
    sha2::compress256(&mut state, &blocks);
    let mut out = [0u8; NODE_SIZE];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out[31] &= 0x3f;
    out
}

/// `z(h)` for every height a piece can have: `z(0) = [0; 32]`, `z(h+1) = sha254(z(h), z(h))`.
static ZERO_ROOTS: LazyLock<[Node; MAX_PIECE_HEIGHT as usize + 1]> = LazyLock::new(|| {
    let mut roots = [[0u8; NODE_SIZE]; MAX_PIECE_HEIGHT as usize + 1];
    for h in 1..roots.len() {
        roots[h] = hash_pair(&roots[h - 1], &roots[h - 1]);
    }
    roots
});

/// The root of an all-zero subtree of `height` (2^height zero leaves), or `None` above
/// [`MAX_PIECE_HEIGHT`]. Fr32 padding maps zero bytes to zero bytes, so this is also the CommP
/// of an all-zero piece of that height (Filecoin's "zero commitments").
#[must_use]
pub fn zero_subtree_root(height: u8) -> Option<Node> {
    ZERO_ROOTS.get(usize::from(height)).copied()
}

/// `z(height)` for heights the callers have already bounded by a piece's height.
pub(crate) fn zero_root(height: u32) -> &'static Node {
    &ZERO_ROOTS[height as usize]
}

/// The level above `level`, whose nodes sit at `height`: pairs are hashed, and a node without a
/// right sibling (the rest of the level is zero-fill) is paired with `z(height)`.
pub(crate) fn parent_level(level: &[Node], height: u32) -> Vec<Node> {
    let mut above = Vec::with_capacity(level.len().div_ceil(2));
    let (pairs, last) = level.as_chunks::<2>();
    hash_pairs(pairs, &mut above);
    if let [last] = last {
        above.push(hash_pair(last, zero_root(height)));
    }
    above
}

/// Appends `sha254(left, right)` of every pair to `out`, two pairs at a time through the
/// SHA-NI kernel where the CPU has it ([`crate::sha_ni`]).
fn hash_pairs(mut pairs: &[[Node; 2]], out: &mut Vec<Node>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(kernel) = crate::sha_ni::ShaNi::detect() {
        let (twos, rest) = pairs.as_chunks::<2>();
        for [a, b] in twos {
            out.extend(kernel.hash_two_pairs(a, b));
        }
        pairs = rest;
    }
    out.extend(pairs.iter().map(|[left, right]| hash_pair(left, right)));
}

/// Folds the leftmost nodes of a level at `height` (the rest implicitly zero subtrees) up to the
/// root at `target`.
pub(crate) fn fold_to_root(mut level: Vec<Node>, mut height: u32, target: u32) -> Node {
    debug_assert!(level.len() as u64 <= 1u64 << (target - height));
    while height < target {
        if level.is_empty() {
            break;
        }
        level = parent_level(&level, height);
        height += 1;
    }
    level.first().copied().unwrap_or(*zero_root(target))
}

/// The four leaves (height 0) of one 127-byte payload chunk (zero-filled if shorter), appended
/// to `leaves`.
fn chunk_leaves(payload: &[u8], leaves: &mut Vec<Node>) {
    let mut input = [0u8; FR32_UNPADDED_CHUNK];
    input[..payload.len()].copy_from_slice(payload);
    let mut padded = [0u8; FR32_PADDED_CHUNK];
    pad_chunk(&input, &mut padded);
    let (nodes, _) = padded.as_chunks::<NODE_SIZE>();
    leaves.extend_from_slice(nodes);
}

/// The root of the subtree of `height` (≥ 2) whose payload starts with `payload` and is
/// zero-filled to `127 · 2^(height − 2)` bytes; parallel above [`BLOCK_HEIGHT`].
pub(crate) fn subtree_root(payload: &[u8], height: u32) -> Node {
    debug_assert!(height >= u32::from(MIN_PIECE_HEIGHT));
    debug_assert!(payload.len() as u64 <= (FR32_UNPADDED_CHUNK as u64) << (height - 2));
    if height <= BLOCK_HEIGHT {
        let mut leaves = Vec::with_capacity(payload.len().div_ceil(FR32_UNPADDED_CHUNK) * 4);
        for chunk in payload.chunks(FR32_UNPADDED_CHUNK) {
            chunk_leaves(chunk, &mut leaves);
        }
        fold_to_root(leaves, 0, height)
    } else {
        let block = FR32_UNPADDED_CHUNK << (BLOCK_HEIGHT - 2);
        let blocks = payload
            .par_chunks(block)
            .map(|b| subtree_root(b, BLOCK_HEIGHT))
            .collect();
        fold_to_root(blocks, BLOCK_HEIGHT, height)
    }
}

/// CommP of a payload held in memory: the payload is zero-filled to its piece size
/// ([`PieceSize::for_payload`]), fr32-padded, and its SHA254 tree's root taken.
///
/// # Errors
/// [`PieceError::PayloadTooLarge`] beyond [`PieceSize::max_payload`].
pub fn commp(payload: &[u8]) -> Result<PieceCommitment, PieceError> {
    let size = PieceSize::for_payload(payload.len() as u64)?;
    let root = subtree_root(payload, u32::from(size.height()));
    Ok(PieceCommitment::new(root, size))
}

/// CommP of a payload read to its end from `reader` (a file on disk), with bounded memory: the
/// same result as [`commp`] on the same bytes.
///
/// # Errors
/// [`PieceError::Io`] when reading fails, [`PieceError::PayloadTooLarge`] past the largest piece.
pub fn commp_from_reader<R: Read>(reader: R) -> Result<PieceCommitment, PieceError> {
    commp_from_reader_with_progress(reader, |_| {})
}

/// [`commp_from_reader`], calling `progress` with the number of payload bytes hashed so far after
/// each batch (about every 16 MiB) and once at the end.
///
/// # Errors
/// As [`commp_from_reader`].
pub fn commp_from_reader_with_progress<R: Read, F: FnMut(u64)>(
    reader: R,
    mut progress: F,
) -> Result<PieceCommitment, PieceError> {
    let layer = stream_layer(reader, STREAM_SEGMENT_HEIGHT, &mut progress)?;
    let root = fold_to_root(layer.roots, layer.height, u32::from(layer.size.height()));
    Ok(PieceCommitment::new(root, layer.size))
}

/// The roots of a piece's consecutive subtrees at one height, as one streaming pass leaves them.
pub(crate) struct StreamedLayer {
    /// Roots of the subtrees holding payload, left to right (those past the payload are zero
    /// subtrees and not stored).
    pub roots: Vec<Node>,
    /// Their height: the segment height, or the piece's own height if that is lower (then
    /// `roots` is the piece root alone).
    pub height: u32,
    /// The piece the payload makes.
    pub size: PieceSize,
}

/// Reads `reader` to its end in segments of `127 · 2^(segment_height − 2)` bytes and returns the
/// roots of those segments; the next batch is read while the current one is hashed.
pub(crate) fn stream_layer<R: Read>(
    mut reader: R,
    segment_height: u32,
    progress: &mut dyn FnMut(u64),
) -> Result<StreamedLayer, PieceError> {
    let segment = FR32_UNPADDED_CHUNK << (segment_height - 2);
    let batch = segment * STREAM_BATCH_SEGMENTS;
    let mut current = vec![0u8; batch];
    let mut next = vec![0u8; batch];
    let mut filled = read_full(&mut reader, &mut current)?;
    if filled < batch && filled <= segment {
        // The whole payload fits one segment: its piece may be lower than a segment.
        let size = PieceSize::for_payload(filled as u64)?;
        let height = u32::from(size.height()).min(segment_height);
        progress(filled as u64);
        return Ok(StreamedLayer {
            roots: vec![subtree_root(&current[..filled], height)],
            height,
            size,
        });
    }
    let max = PieceSize::max_payload();
    let mut total = 0u64;
    let mut roots = Vec::new();
    while filled > 0 {
        total += filled as u64;
        if total > max {
            return Err(PieceError::PayloadTooLarge { size: total, max });
        }
        let at_end = filled < batch;
        let mut hashed = Vec::new();
        let mut read = Ok(0);
        rayon::in_place_scope(|scope| {
            let data = &current[..filled];
            let hashed = &mut hashed;
            scope.spawn(move |_| {
                *hashed = data
                    .par_chunks(segment)
                    .map(|s| subtree_root(s, segment_height))
                    .collect();
            });
            if !at_end {
                read = read_full(&mut reader, &mut next);
            }
        });
        roots.extend(hashed);
        progress(total);
        filled = read?;
        std::mem::swap(&mut current, &mut next);
    }
    Ok(StreamedLayer {
        roots,
        height: segment_height,
        size: PieceSize::for_payload(total)?,
    })
}

/// Fills `buf` from `reader` until it is full or the reader ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::{MerkleTree, fr32, sha254};

    /// The definition, spelled out: zero-fill, fr32-pad, build the whole tree in memory.
    fn commp_reference(payload: &[u8]) -> Node {
        let size = PieceSize::for_payload(payload.len() as u64).unwrap();
        let mut unpadded = payload.to_vec();
        unpadded.resize(usize::try_from(size.unpadded_size()).unwrap(), 0);
        let padded = fr32::pad(&unpadded).unwrap();
        let leaves: Vec<Node> = padded
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap())
            .collect();
        MerkleTree::new(leaves).root()
    }

    fn random_payload(len: usize, seed: u64) -> Vec<u8> {
        let mut data = vec![0u8; len];
        StdRng::seed_from_u64(seed).fill(&mut data[..]);
        data
    }

    const SIZES: [usize; 12] = [
        0,
        1,
        126,
        127,
        128,
        253,
        254,
        255,
        1000,
        (1 << 16) + 3,
        127 << 13,
        (1 << 20) + 17,
    ];

    #[test]
    fn hash_pair_is_sha254() {
        let (a, b) = ([0x5a; 32], [0xc3; 32]);
        assert_eq!(hash_pair(&a, &b), sha254(&a, &b));
        assert_eq!(hash_pair(&[0; 32], &[0; 32]), sha254(&[0; 32], &[0; 32]));
    }

    #[test]
    fn in_memory_and_streaming_match_the_definition_for_many_sizes() {
        for (i, &len) in SIZES.iter().enumerate() {
            let data = random_payload(len, i as u64);
            let expected = commp_reference(&data);
            let got = commp(&data).unwrap();
            assert_eq!(got.root(), expected, "in memory, {len} bytes");
            assert_eq!(got.size().payload_size(), len as u64);
            let streamed = commp_from_reader(&data[..]).unwrap();
            assert_eq!(streamed, got, "streaming, {len} bytes");
        }
    }

    #[test]
    fn streaming_spans_several_batches_and_reports_progress() {
        // Small segments (8 chunks) so that many batches and a partial last one are cheap to
        // cover, through a reader that returns short reads.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1_003);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let segment_height = 5;
        let segment = 127 << (segment_height - 2);
        let batch = segment * STREAM_BATCH_SEGMENTS;
        for len in [batch, batch + 1, batch * 5 / 2 + 5, batch * 3] {
            let data = random_payload(len, len as u64);
            let mut reports = Vec::new();
            let layer =
                stream_layer(Trickle(&data), segment_height, &mut |n| reports.push(n)).unwrap();
            let expected = commp(&data).unwrap();
            assert_eq!(layer.size, expected.size());
            assert_eq!(layer.height, segment_height);
            assert_eq!(layer.roots.len(), len.div_ceil(segment));
            let root = fold_to_root(layer.roots, segment_height, u32::from(layer.size.height()));
            assert_eq!(root, expected.root(), "{len} bytes");
            assert_eq!(reports.last(), Some(&(len as u64)));
            assert_eq!(reports.len(), len.div_ceil(batch));
            assert!(reports.is_sorted());
        }
    }

    #[test]
    fn a_changed_byte_changes_commp() {
        let data = random_payload(5000, 7);
        let root = commp(&data).unwrap().root();
        for at in [0, 126, 127, 2500, 4999] {
            let mut changed = data.clone();
            changed[at] ^= 0x01;
            assert_ne!(commp(&changed).unwrap().root(), root, "byte {at}");
        }
        // Appending a zero keeps the root (it was zero-fill) but not the size.
        let mut longer = data.clone();
        longer.push(0);
        let (a, b) = (commp(&data).unwrap(), commp(&longer).unwrap());
        assert_eq!(a.root(), b.root());
        assert_ne!(a.size(), b.size());
    }

    #[test]
    fn zero_pieces_are_zero_subtree_roots() {
        assert_eq!(
            commp(&[0; 127]).unwrap().root(),
            zero_subtree_root(2).unwrap()
        );
        assert_eq!(commp(&[]).unwrap().root(), zero_subtree_root(2).unwrap());
        assert_eq!(
            commp(&vec![0; 127 << 6]).unwrap().root(),
            zero_subtree_root(8).unwrap()
        );
        assert_eq!(zero_subtree_root(0), Some([0; 32]));
        assert_eq!(zero_subtree_root(1), Some(sha254(&[0; 32], &[0; 32])));
        assert_eq!(zero_subtree_root(MAX_PIECE_HEIGHT + 1), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn commp_matches_the_definition(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(commp(&data).unwrap().root(), commp_reference(&data));
        }
    }
}
