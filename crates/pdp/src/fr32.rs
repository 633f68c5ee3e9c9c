//! Fr32 padding: how Filecoin turns arbitrary bytes into BLS12-381 field elements.
//!
//! A piece tree's leaves must each be a valid field element (below the 255-bit BLS12-381 scalar
//! modulus), so Filecoin inserts two zero bits after every 254 bits of payload: every 127 input
//! bytes (1016 bits = 4 × 254) become 128 output bytes (4 × 32-byte words whose top two bits are
//! clear). Bits are taken least-significant first within each byte. The byte-level transcription
//! below is Lotus' `storage/sealer/fr32/fr32.go` (`pad`/`unpad`), itself the fast path of
//! `filecoin-proofs`' `fr32` module; the tests check it against a bit-by-bit reference.

use thiserror::Error;

/// Bytes of payload in one fr32 chunk (4 × 254 bits).
pub const FR32_UNPADDED_CHUNK: usize = 127;

/// Bytes of one padded fr32 chunk (4 leaves of 32 bytes).
pub const FR32_PADDED_CHUNK: usize = 128;

/// Why a buffer cannot be fr32-padded or unpadded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Fr32Error {
    /// The buffer is not a whole number of chunks (127 bytes to pad, 128 to unpad).
    #[error("{len} bytes is not a whole number of {chunk}-byte fr32 chunks")]
    NotWholeChunks {
        /// The buffer's length.
        len: usize,
        /// The chunk size it must be a multiple of.
        chunk: usize,
    },
    /// A 32-byte word of padded data has one of its top two bits set, so it is not the output of
    /// fr32 padding (and not a field element the proofs would accept).
    #[error("padded word {word} has its top two bits set: the data is not fr32-padded")]
    NotFieldElement {
        /// Index of the offending 32-byte word.
        word: usize,
    },
}

/// Pads one 127-byte chunk into 128 bytes, exactly as Lotus' `fr32.Pad` does: after each 254
/// bits of input, two zero bits; the carry `t` moves the bits that spill into the next word.
pub fn pad_chunk(input: &[u8; FR32_UNPADDED_CHUNK], out: &mut [u8; FR32_PADDED_CHUNK]) {
    // Word 0: 248 bits verbatim plus the low 6 bits of byte 31.
    out[..31].copy_from_slice(&input[..31]);
    let mut t = input[31] >> 6;
    out[31] = input[31] & 0x3f;
    // Word 1: shifted by 2 bits.
    let mut v = 0u8;
    for i in 32..64 {
        v = input[i];
        out[i] = (v << 2) | t;
        t = v >> 6;
    }
    t = v >> 4;
    out[63] &= 0x3f;
    // Word 2: shifted by 4 bits.
    for i in 64..96 {
        v = input[i];
        out[i] = (v << 4) | t;
        t = v >> 4;
    }
    t = v >> 2;
    out[95] &= 0x3f;
    // Word 3: shifted by 6 bits; its last byte holds the final 6 bits.
    for i in 96..127 {
        v = input[i];
        out[i] = (v << 6) | t;
        t = v >> 2;
    }
    out[127] = t & 0x3f;
}

/// Inverse of [`pad_chunk`]: drops the two zero bits after every 254 bits (the bits dropped are
/// not checked here; [`unpad`] checks them).
pub fn unpad_chunk(input: &[u8; FR32_PADDED_CHUNK], out: &mut [u8; FR32_UNPADDED_CHUNK]) {
    out[..31].copy_from_slice(&input[..31]);
    out[31] = (input[31] & 0x3f) | (input[32] << 6);
    for i in 32..63 {
        out[i] = (input[i] >> 2) | (input[i + 1] << 6);
    }
    out[63] = ((input[63] & 0x3f) >> 2) | (input[64] << 4);
    for i in 64..95 {
        out[i] = (input[i] >> 4) | (input[i + 1] << 4);
    }
    out[95] = ((input[95] & 0x3f) >> 4) | (input[96] << 2);
    for i in 96..126 {
        out[i] = (input[i] >> 6) | (input[i + 1] << 2);
    }
    out[126] = (input[126] >> 6) | ((input[127] & 0x3f) << 2);
}

/// Pads `unpadded`, a whole number of 127-byte chunks, into 128-byte chunks.
///
/// # Errors
/// [`Fr32Error::NotWholeChunks`] when the length is not a multiple of 127 (zero-fill the payload
/// to its piece size first, see [`crate::PieceSize`]).
pub fn pad(unpadded: &[u8]) -> Result<Vec<u8>, Fr32Error> {
    if !unpadded.len().is_multiple_of(FR32_UNPADDED_CHUNK) {
        return Err(Fr32Error::NotWholeChunks {
            len: unpadded.len(),
            chunk: FR32_UNPADDED_CHUNK,
        });
    }
    let mut padded = vec![0u8; unpadded.len() / FR32_UNPADDED_CHUNK * FR32_PADDED_CHUNK];
    for (input, out) in unpadded
        .chunks_exact(FR32_UNPADDED_CHUNK)
        .zip(padded.chunks_exact_mut(FR32_PADDED_CHUNK))
    {
        pad_chunk(chunk_array(input), chunk_array_mut(out));
    }
    Ok(padded)
}

/// Unpads `padded`, a whole number of 128-byte chunks, refusing data that fr32 padding could not
/// have produced (a word with a top bit set) rather than silently dropping those bits.
///
/// # Errors
/// [`Fr32Error::NotWholeChunks`] when the length is not a multiple of 128;
/// [`Fr32Error::NotFieldElement`] when a 32-byte word has one of its top two bits set.
pub fn unpad(padded: &[u8]) -> Result<Vec<u8>, Fr32Error> {
    if !padded.len().is_multiple_of(FR32_PADDED_CHUNK) {
        return Err(Fr32Error::NotWholeChunks {
            len: padded.len(),
            chunk: FR32_PADDED_CHUNK,
        });
    }
    if let Some(word) = padded.chunks_exact(32).position(|w| w[31] & 0xc0 != 0) {
        return Err(Fr32Error::NotFieldElement { word });
    }
    let mut unpadded = vec![0u8; padded.len() / FR32_PADDED_CHUNK * FR32_UNPADDED_CHUNK];
    for (input, out) in padded
        .chunks_exact(FR32_PADDED_CHUNK)
        .zip(unpadded.chunks_exact_mut(FR32_UNPADDED_CHUNK))
    {
        unpad_chunk(chunk_array(input), chunk_array_mut(out));
    }
    Ok(unpadded)
}

/// A slice of exactly `N` bytes as an array reference; callers pass `chunks_exact(N)` items, so
/// the conversion cannot fail.
pub(crate) fn chunk_array<const N: usize>(chunk: &[u8]) -> &[u8; N] {
    chunk.try_into().expect("chunks_exact yields N-byte slices")
}

/// Mutable counterpart of [`chunk_array`].
pub(crate) fn chunk_array_mut<const N: usize>(chunk: &mut [u8]) -> &mut [u8; N] {
    chunk
        .try_into()
        .expect("chunks_exact_mut yields N-byte slices")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Bit-by-bit reference: copy 254 bits, write 2 zero bits, repeat (LSB-first bit order), as
    /// `filecoin-proofs`' `fr32::write_padded` describes the transform.
    fn pad_reference(input: &[u8]) -> Vec<u8> {
        let bit = |i: usize| (input[i / 8] >> (i % 8)) & 1;
        let total_in = input.len() * 8;
        let mut out = vec![0u8; input.len() / 127 * 128];
        let (mut read, mut written) = (0, 0);
        while read < total_in {
            for _ in 0..254 {
                out[written / 8] |= bit(read) << (written % 8);
                read += 1;
                written += 1;
            }
            written += 2;
        }
        out
    }

    fn whole_chunks() -> impl Strategy<Value = Vec<u8>> {
        (0usize..6).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 127))
    }

    proptest! {
        #[test]
        fn unpad_inverts_pad_and_words_are_field_elements(data in whole_chunks()) {
            let padded = pad(&data).unwrap();
            prop_assert_eq!(padded.len(), data.len() / 127 * 128);
            for word in padded.chunks_exact(32) {
                prop_assert_eq!(word[31] & 0xc0, 0);
            }
            prop_assert_eq!(unpad(&padded).unwrap(), data);
        }

        #[test]
        fn pad_matches_the_bit_level_definition(data in whole_chunks()) {
            prop_assert_eq!(pad(&data).unwrap(), pad_reference(&data));
        }
    }

    #[test]
    fn all_ones_keeps_exactly_the_two_inserted_bits_clear() {
        let padded = pad(&[0xff; 127]).unwrap();
        for word in padded.chunks_exact(32) {
            assert!(word[..31].iter().all(|&b| b == 0xff));
            assert_eq!(word[31], 0x3f);
        }
    }

    #[test]
    fn bad_lengths_and_set_top_bits_are_refused() {
        assert_eq!(
            pad(&[0; 128]),
            Err(Fr32Error::NotWholeChunks {
                len: 128,
                chunk: 127
            })
        );
        assert_eq!(
            unpad(&[0; 127]),
            Err(Fr32Error::NotWholeChunks {
                len: 127,
                chunk: 128
            })
        );
        let mut padded = pad(&[7; 254]).unwrap();
        padded[32 * 5 + 31] |= 0x80;
        assert_eq!(unpad(&padded), Err(Fr32Error::NotFieldElement { word: 5 }));
        assert_eq!(pad(&[]).unwrap(), Vec::<u8>::new());
    }
}
