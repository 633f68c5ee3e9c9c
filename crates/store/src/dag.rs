//! Following links out of a block, whatever its codec: what pins, GC and DAG export walk.

use cid::Cid;

use crate::block::{Block, Codec};
use crate::unixfs::{UnixFsError, dag_pb_links};

/// Nesting deeper than this in a dag-cbor block is refused (no recursion bombs from untrusted data).
const MAX_CBOR_DEPTH: usize = 64;

/// Why the links of a block could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A dag-pb block is malformed.
    #[error(transparent)]
    DagPb(#[from] UnixFsError),
    /// A dag-cbor block is malformed.
    #[error("malformed dag-cbor block: {0}")]
    DagCbor(&'static str),
    /// A dag-cbor link holds bytes that are not a CID.
    #[error("malformed CID in a dag-cbor link: {0}")]
    Cid(#[from] cid::Error),
}

/// The CIDs `block` links to, in encoding order.
///
/// # Errors
/// [`LinkError`] when the block's bytes do not parse under its codec.
pub fn block_links(block: &Block) -> Result<Vec<Cid>, LinkError> {
    match block.codec() {
        Codec::Raw => Ok(Vec::new()),
        Codec::DagPb => Ok(dag_pb_links(block.data())?),
        Codec::DagCbor => {
            let mut links = Vec::new();
            let mut rest = block.data();
            cbor_item(&mut rest, 0, &mut links)?;
            if !rest.is_empty() {
                return Err(LinkError::DagCbor(
                    "trailing bytes after the top-level item",
                ));
            }
            Ok(links)
        }
    }
}

fn cbor_head(bytes: &mut &[u8]) -> Result<(u8, u64), LinkError> {
    let (&first, rest) = bytes
        .split_first()
        .ok_or(LinkError::DagCbor("ends early"))?;
    *bytes = rest;
    let arg = match first & 0x1f {
        small @ 0..=23 => u64::from(small),
        extra @ 24..=27 => {
            let len = 1usize << (extra - 24);
            if bytes.len() < len {
                return Err(LinkError::DagCbor("ends early"));
            }
            let (arg, rest) = bytes.split_at(len);
            *bytes = rest;
            arg.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        }
        _ => return Err(LinkError::DagCbor("indefinite lengths are not dag-cbor")),
    };
    Ok((first >> 5, arg))
}

fn cbor_bytes<'a>(bytes: &mut &'a [u8], len: u64) -> Result<&'a [u8], LinkError> {
    let len = usize::try_from(len).map_err(|_| LinkError::DagCbor("length overflows"))?;
    if bytes.len() < len {
        return Err(LinkError::DagCbor("ends early"));
    }
    let (body, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(body)
}

/// Skips one CBOR item, collecting tag-42 links.
fn cbor_item(bytes: &mut &[u8], depth: usize, links: &mut Vec<Cid>) -> Result<(), LinkError> {
    if depth > MAX_CBOR_DEPTH {
        return Err(LinkError::DagCbor("nested too deeply"));
    }
    let (major, arg) = cbor_head(bytes)?;
    match major {
        2 | 3 => {
            cbor_bytes(bytes, arg)?;
        }
        4 | 5 => {
            let items = if major == 5 {
                arg.saturating_mul(2)
            } else {
                arg
            };
            // Every item takes at least one byte: a count beyond that is a lie, refuse before looping.
            if items > bytes.len() as u64 {
                return Err(LinkError::DagCbor("container longer than the block"));
            }
            for _ in 0..items {
                cbor_item(bytes, depth + 1, links)?;
            }
        }
        6 if arg == 42 => {
            let (major, len) = cbor_head(bytes)?;
            let link = cbor_bytes(bytes, len)?;
            match link.split_first() {
                Some((0, cid)) if major == 2 => links.push(Cid::try_from(cid)?),
                _ => return Err(LinkError::DagCbor("tag 42 is not 0x00-prefixed CID bytes")),
            }
        }
        6 => cbor_item(bytes, depth + 1, links)?,
        // Unsigned and negative integers, simple values and floats: the head was the whole item.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::cid_of;

    #[test]
    fn dag_cbor_links_are_found_at_any_depth() {
        let a = cid_of(Codec::Raw, b"a");
        let b = cid_of(Codec::Raw, b"b");
        // {"x": [tag42(a)], "y": {"z": tag42(b)}}, built from the CAR header encoder's link form.
        let mut data = vec![0xa2, 0x61, b'x', 0x81];
        for (cid, prefix) in [(a, vec![]), (b, vec![0x61, b'y', 0xa1, 0x61, b'z'])] {
            data.extend_from_slice(&prefix);
            let bytes = cid.to_bytes();
            data.extend_from_slice(&[
                0xd8,
                0x2a,
                0x58,
                u8::try_from(bytes.len() + 1).unwrap(),
                0x00,
            ]);
            data.extend_from_slice(&bytes);
        }
        let block = Block::new(Codec::DagCbor, data).unwrap();
        assert_eq!(block_links(&block).unwrap(), vec![a, b]);
    }

    #[test]
    fn lying_dag_cbor_lengths_are_rejected() {
        let block = Block::new(
            Codec::DagCbor,
            vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        )
        .unwrap();
        assert!(block_links(&block).is_err());
        let deep = Block::new(Codec::DagCbor, vec![0x81; 100]).unwrap();
        assert!(block_links(&deep).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn dag_cbor_link_walk_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let block = Block::new(Codec::DagCbor, bytes).unwrap();
            let _ = block_links(&block);
        }
    }
}
