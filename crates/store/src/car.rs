//! `CARv1` streams (ipld/specs `transport/car/carv1`): a varint-framed dag-cbor header
//! `{roots: [CID], version: 1}` followed by varint-framed `CID ‖ block` sections.
//!
//! The writer streams blocks as they come; the reader checks every block against its CID, bounds
//! every length before allocating, and tells truncation apart from a clean end.

use std::io::{self, Read, Write};

use cid::Cid;

use crate::block::{Block, BlockError, MAX_BLOCK_SIZE};

/// Longest CID a section may start with: `CIDv1` varints plus a 64-byte multihash, generously.
pub const MAX_CID_LEN: usize = 128;

/// Largest section body accepted: one maximal block plus its CID.
pub const MAX_SECTION_LEN: usize = MAX_BLOCK_SIZE + MAX_CID_LEN;

/// Largest header accepted; real headers with a handful of roots are under 200 bytes.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// Why a CAR stream was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// Reading or writing the underlying stream failed.
    #[error("CAR I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The stream ended inside the header or a section.
    #[error("CAR stream is truncated: it ended inside {0}")]
    Truncated(&'static str),
    /// The header is not the dag-cbor map `{roots, version}`.
    #[error("invalid CAR header: {0}")]
    InvalidHeader(&'static str),
    /// The header names a version other than 1.
    #[error("unsupported CAR version {0}: only CARv1 is read")]
    UnsupportedVersion(u64),
    /// A header or section length is over its bound.
    #[error("CAR {what} of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Which length was too large.
        what: &'static str,
        /// The announced length.
        len: u64,
        /// The bound.
        max: usize,
    },
    /// A length varint is malformed.
    #[error("malformed varint in the CAR stream")]
    BadVarint,
    /// A section does not start with a valid CID.
    #[error("invalid CID in a CAR section: {0}")]
    Cid(#[from] cid::Error),
    /// A block is invalid or does not hash to its CID.
    #[error(transparent)]
    Block(#[from] BlockError),
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation keeps the low 7 bits, which is the point of LEB128.
        #[allow(clippy::cast_possible_truncation)]
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    out.push(value as u8);
}

/// CBOR major-type head with a minimal-length argument (RFC 8949 §3; dag-cbor requires minimal).
fn put_cbor_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    match arg {
        // Each arm's range proves the casts lossless.
        #[allow(clippy::cast_possible_truncation)]
        0..=23 => out.push(major | arg as u8),
        #[allow(clippy::cast_possible_truncation)]
        24..=0xff => out.extend_from_slice(&[major | 0x18, arg as u8]),
        #[allow(clippy::cast_possible_truncation)]
        0x100..=0xffff => {
            out.push(major | 0x19);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        #[allow(clippy::cast_possible_truncation)]
        0x1_0000..=0xffff_ffff => {
            out.push(major | 0x1a);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 0x1b);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

/// The dag-cbor header `{"roots": [...], "version": 1}`; keys in dag-cbor order (length first).
#[must_use]
pub fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + roots.len() * 42);
    put_cbor_head(&mut out, 5, 2);
    put_cbor_head(&mut out, 3, 5);
    out.extend_from_slice(b"roots");
    put_cbor_head(&mut out, 4, roots.len() as u64);
    for root in roots {
        let bytes = root.to_bytes();
        put_cbor_head(&mut out, 6, 42);
        // dag-cbor links are tag 42 over the CID bytes prefixed by the identity multibase 0x00.
        put_cbor_head(&mut out, 2, bytes.len() as u64 + 1);
        out.push(0);
        out.extend_from_slice(&bytes);
    }
    put_cbor_head(&mut out, 3, 7);
    out.extend_from_slice(b"version");
    put_cbor_head(&mut out, 0, 1);
    out
}

/// Streaming `CARv1` writer.
#[derive(Debug)]
pub struct CarWriter<W: Write> {
    inner: W,
    frame: Vec<u8>,
}

impl<W: Write> CarWriter<W> {
    /// Writes the header naming `roots` and returns a writer for the blocks.
    ///
    /// # Errors
    /// [`CarError::Io`] if writing fails.
    pub fn new(mut inner: W, roots: &[Cid]) -> Result<Self, CarError> {
        let header = encode_header(roots);
        let mut frame = Vec::with_capacity(10);
        put_uvarint(&mut frame, header.len() as u64);
        inner.write_all(&frame)?;
        inner.write_all(&header)?;
        Ok(Self { inner, frame })
    }

    /// Appends one block section.
    ///
    /// # Errors
    /// [`CarError::Io`] if writing fails.
    pub fn write_block(&mut self, block: &Block) -> Result<(), CarError> {
        let cid = block.cid().to_bytes();
        self.frame.clear();
        put_uvarint(&mut self.frame, (cid.len() + block.data().len()) as u64);
        self.inner.write_all(&self.frame)?;
        self.inner.write_all(&cid)?;
        self.inner.write_all(block.data())?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    ///
    /// # Errors
    /// [`CarError::Io`] if flushing fails.
    pub fn finish(mut self) -> Result<W, CarError> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Reads a uvarint; `Ok(None)` on a clean end of stream before its first byte.
fn read_uvarint<R: Read>(reader: &mut R, context: &'static str) -> Result<Option<u64>, CarError> {
    let mut value = 0u64;
    for (index, shift) in (0..64).step_by(7).enumerate() {
        let mut byte = [0u8];
        loop {
            match reader.read(&mut byte) {
                Ok(0) if index == 0 => return Ok(None),
                Ok(0) => return Err(CarError::Truncated(context)),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(CarError::BadVarint)
}

fn read_exact_or_truncated<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    context: &'static str,
) -> Result<(), CarError> {
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            CarError::Truncated(context)
        } else {
            CarError::Io(e)
        }
    })
}

/// A bounded cursor over the header bytes, reading just the CBOR the header may hold.
struct CborCursor<'a>(&'a [u8]);

impl<'a> CborCursor<'a> {
    fn head(&mut self) -> Result<(u8, u64), CarError> {
        let (&first, rest) = self
            .0
            .split_first()
            .ok_or(CarError::InvalidHeader("ends early"))?;
        self.0 = rest;
        let major = first >> 5;
        let arg = match first & 0x1f {
            small @ 0..=23 => u64::from(small),
            extra @ 24..=27 => {
                let len = 1usize << (extra - 24);
                if self.0.len() < len {
                    return Err(CarError::InvalidHeader("ends early"));
                }
                let (bytes, rest) = self.0.split_at(len);
                self.0 = rest;
                bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            _ => {
                return Err(CarError::InvalidHeader(
                    "indefinite lengths are not dag-cbor",
                ));
            }
        };
        Ok((major, arg))
    }

    fn bytes(&mut self, len: u64) -> Result<&'a [u8], CarError> {
        let len = usize::try_from(len).map_err(|_| CarError::InvalidHeader("length overflows"))?;
        if self.0.len() < len {
            return Err(CarError::InvalidHeader("ends early"));
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(bytes)
    }
}

/// Parses the header, returning its roots.
fn decode_header(bytes: &[u8]) -> Result<Vec<Cid>, CarError> {
    let mut cbor = CborCursor(bytes);
    let (major, entries) = cbor.head()?;
    if major != 5 || entries != 2 {
        return Err(CarError::InvalidHeader(
            "expected a map of two entries {roots, version}",
        ));
    }
    let (mut roots, mut version) = (None, None);
    for _ in 0..2 {
        let (major, len) = cbor.head()?;
        if major != 3 {
            return Err(CarError::InvalidHeader("map keys must be strings"));
        }
        match cbor.bytes(len)? {
            b"version" if version.is_none() => {
                let (major, value) = cbor.head()?;
                if major != 0 {
                    return Err(CarError::InvalidHeader(
                        "version must be an unsigned integer",
                    ));
                }
                version = Some(value);
            }
            b"roots" if roots.is_none() => {
                let (major, count) = cbor.head()?;
                if major != 4 {
                    return Err(CarError::InvalidHeader("roots must be an array"));
                }
                let mut list = Vec::new();
                for _ in 0..count {
                    if cbor.head()? != (6, 42) {
                        return Err(CarError::InvalidHeader("roots must be tag-42 links"));
                    }
                    let (major, len) = cbor.head()?;
                    let link = cbor.bytes(len)?;
                    match link.split_first() {
                        Some((0, cid)) if major == 2 => list.push(Cid::try_from(cid)?),
                        _ => {
                            return Err(CarError::InvalidHeader(
                                "a root link is not 0x00-prefixed CID bytes",
                            ));
                        }
                    }
                }
                roots = Some(list);
            }
            _ => return Err(CarError::InvalidHeader("unexpected or repeated key")),
        }
    }
    if !cbor.0.is_empty() {
        return Err(CarError::InvalidHeader(
            "trailing bytes after the header map",
        ));
    }
    match version {
        Some(1) => {}
        Some(other) => return Err(CarError::UnsupportedVersion(other)),
        None => return Err(CarError::InvalidHeader("missing version")),
    }
    roots.ok_or(CarError::InvalidHeader("missing roots"))
}

/// Streaming `CARv1` reader that verifies every block.
#[derive(Debug)]
pub struct CarReader<R: Read> {
    inner: R,
    roots: Vec<Cid>,
    done: bool,
}

impl<R: Read> CarReader<R> {
    /// Reads and checks the header.
    ///
    /// # Errors
    /// [`CarError::Truncated`], [`CarError::TooLarge`], [`CarError::InvalidHeader`],
    /// [`CarError::UnsupportedVersion`] or [`CarError::Io`].
    pub fn new(mut inner: R) -> Result<Self, CarError> {
        let len = read_uvarint(&mut inner, "the header length")?
            .ok_or(CarError::Truncated("the header length"))?;
        if len == 0 || len > MAX_HEADER_LEN as u64 {
            return Err(CarError::TooLarge {
                what: "header",
                len,
                max: MAX_HEADER_LEN,
            });
        }
        // Bounded just above.
        #[allow(clippy::cast_possible_truncation)]
        let mut header = vec![0u8; len as usize];
        read_exact_or_truncated(&mut inner, &mut header, "the header")?;
        let roots = decode_header(&header)?;
        Ok(Self {
            inner,
            roots,
            done: false,
        })
    }

    /// The roots the header names.
    #[must_use]
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next verified block, or `None` at a clean end of the stream.
    ///
    /// # Errors
    /// [`CarError::Truncated`], [`CarError::TooLarge`], [`CarError::Cid`], [`CarError::Block`]
    /// (including a block that does not hash to its CID) or [`CarError::Io`].
    pub fn next_block(&mut self) -> Result<Option<Block>, CarError> {
        if self.done {
            return Ok(None);
        }
        let Some(len) = read_uvarint(&mut self.inner, "a section length")? else {
            self.done = true;
            return Ok(None);
        };
        if len > MAX_SECTION_LEN as u64 {
            return Err(CarError::TooLarge {
                what: "section",
                len,
                max: MAX_SECTION_LEN,
            });
        }
        // Bounded just above.
        #[allow(clippy::cast_possible_truncation)]
        let mut section = vec![0u8; len as usize];
        read_exact_or_truncated(&mut self.inner, &mut section, "a section")?;
        let mut cursor = io::Cursor::new(section.as_slice());
        let cid = Cid::read_bytes(&mut cursor)?;
        // The cursor never goes past the section, whose length fits usize.
        #[allow(clippy::cast_possible_truncation)]
        let data = section.split_off(cursor.position() as usize);
        Ok(Some(Block::verified(cid, data)?))
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<Block, CarError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_block() {
            Ok(block) => block.map(Ok),
            Err(e) => {
                // Stop after the first error: the stream position is no longer trustworthy.
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Codec;
    use crate::unixfs::{UnixFsError, import_reader};

    fn sample_car() -> (Cid, Vec<Block>, Vec<u8>) {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7).to_le_bytes()[0]).collect();
        let mut blocks = Vec::new();
        let file = import_reader(data.as_slice(), 4096, |b| {
            blocks.push(b);
            Ok::<_, UnixFsError>(())
        })
        .unwrap();
        let mut writer = CarWriter::new(Vec::new(), &[file.root]).unwrap();
        for block in blocks.iter().rev() {
            writer.write_block(block).unwrap();
        }
        (file.root, blocks, writer.finish().unwrap())
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<Cid>, Vec<Block>), CarError> {
        let mut reader = CarReader::new(bytes)?;
        let roots = reader.roots().to_vec();
        let blocks = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
        Ok((roots, blocks))
    }

    #[test]
    fn header_matches_the_carv1_spec_layout() {
        let root = crate::block::cid_of(Codec::Raw, b"");
        let header = encode_header(&[root]);
        assert_eq!(
            &header[..8],
            &[0xa2, 0x65, b'r', b'o', b'o', b't', b's', 0x81]
        );
        assert_eq!(&header[8..12], &[0xd8, 0x2a, 0x58, 0x25]);
        assert_eq!(
            &header[header.len() - 9..],
            &[0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x01]
        );
        assert_eq!(decode_header(&header).unwrap(), vec![root]);
    }

    #[test]
    fn round_trip_keeps_roots_and_blocks() {
        let (root, blocks, car) = sample_car();
        let (roots, read) = read_all(&car).unwrap();
        assert_eq!(roots, vec![root]);
        assert_eq!(read.len(), blocks.len());
        assert!(read.iter().rev().zip(&blocks).all(|(a, b)| a == b));
    }

    #[test]
    fn a_flipped_byte_is_rejected() {
        let (_, _, car) = sample_car();
        // Flip a byte in the last block's data, and separately in the middle of the stream.
        for position in [car.len() - 1, car.len() / 2] {
            let mut tampered = car.clone();
            tampered[position] ^= 0x01;
            assert!(read_all(&tampered).is_err(), "flip at {position} accepted");
        }
        let mut tampered = car.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x80;
        assert!(matches!(
            read_all(&tampered),
            Err(CarError::Block(BlockError::HashMismatch { .. }))
        ));
    }

    #[test]
    fn truncation_is_rejected_everywhere() {
        let (_, _, car) = sample_car();
        for cut in [1, 5, 40, 61, 100, car.len() / 2, car.len() - 1] {
            let err = read_all(&car[..cut]).unwrap_err();
            assert!(matches!(err, CarError::Truncated(_)), "cut at {cut}: {err}");
        }
        assert!(matches!(read_all(&[]), Err(CarError::Truncated(_))));
    }

    #[test]
    fn oversized_sections_are_refused_before_allocation() {
        let root = crate::block::cid_of(Codec::Raw, b"");
        let mut car = CarWriter::new(Vec::new(), &[root])
            .unwrap()
            .finish()
            .unwrap();
        put_uvarint(&mut car, u64::MAX >> 1);
        assert!(matches!(
            read_all(&car),
            Err(CarError::TooLarge {
                what: "section",
                ..
            })
        ));
    }

    #[test]
    fn bad_headers_are_rejected() {
        let root = crate::block::cid_of(Codec::Raw, b"");
        let mut header = encode_header(&[root]);
        let last = header.len() - 1;
        header[last] = 0x02;
        assert!(matches!(
            decode_header(&header),
            Err(CarError::UnsupportedVersion(2))
        ));
        assert!(decode_header(&[0xa1, 0x65]).is_err());
        assert!(decode_header(&[0x80]).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::block::Codec;

    fn car_of(payloads: &[Vec<u8>]) -> (Vec<Block>, Vec<u8>, usize) {
        let blocks: Vec<Block> = payloads
            .iter()
            .map(|p| Block::new(Codec::Raw, p.clone()).unwrap())
            .collect();
        let root = *blocks[0].cid();
        let header_len = {
            let mut framed = Vec::new();
            let header = encode_header(&[root]);
            put_uvarint(&mut framed, header.len() as u64);
            framed.len() + header.len()
        };
        let mut writer = CarWriter::new(Vec::new(), &[root]).unwrap();
        for block in &blocks {
            writer.write_block(block).unwrap();
        }
        (blocks, writer.finish().unwrap(), header_len)
    }

    proptest! {
        #[test]
        fn round_trip(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8)) {
            let (blocks, car, _) = car_of(&payloads);
            let read = CarReader::new(car.as_slice()).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
            prop_assert_eq!(read, blocks);
        }

        #[test]
        fn any_flipped_section_byte_is_rejected(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 1..8),
            position in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let (_, mut car, header_len) = car_of(&payloads);
            let at = header_len + position.index(car.len() - header_len);
            car[at] ^= 1 << bit;
            let result = CarReader::new(car.as_slice()).unwrap().collect::<Result<Vec<_>, _>>();
            prop_assert!(result.is_err());
        }

        #[test]
        fn any_truncation_is_rejected(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 1..8),
            position in any::<prop::sample::Index>(),
        ) {
            let (_, car, header_len) = car_of(&payloads);
            // Cut strictly inside the stream, but not at a section boundary (a clean shorter CAR).
            let cut = position.index(car.len());
            let mut boundaries = vec![header_len];
            let mut offset = header_len;
            for payload in &payloads {
                offset += 1 + 36 + payload.len() + usize::from(36 + payload.len() >= 128);
                boundaries.push(offset);
            }
            prop_assume!(!boundaries.contains(&cut));
            let result = CarReader::new(&car[..cut]).and_then(Iterator::collect::<Result<Vec<_>, _>>);
            prop_assert!(matches!(result, Err(CarError::Truncated(_))), "{:?}", result.map(|b| b.len()));
        }
    }
}
