//! Reading, pinning and re-exporting a CAR written by Kubo's `ipfs dag export`
//! (provenance: `tests/fixtures/kubo-car/README.md`).

use std::path::PathBuf;

use cid::Cid;
use datacloud_store::{Blockstore, CarReader};

const ROOT1: &str = "bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui";
const FILE: &str = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am";

fn fixture() -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/kubo-car/t0116-gateway-cache.car",
    ]
    .iter()
    .collect();
    std::fs::read(path).unwrap()
}

#[test]
fn kubo_car_reads_and_verifies() {
    let car = fixture();
    let mut reader = CarReader::new(car.as_slice()).unwrap();
    assert_eq!(reader.roots(), [ROOT1.parse::<Cid>().unwrap()]);
    let blocks = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    // Wrapping directory, root2, root3, root4 and the file.
    assert_eq!(blocks.len(), 5);
    assert_eq!(blocks[0].cid().to_string(), ROOT1);
}

#[test]
fn kubo_car_pins_reads_back_and_re_exports_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path().join("blocks.redb")).unwrap();
    let car = fixture();
    let root: Cid = ROOT1.parse().unwrap();
    assert_eq!(store.import_car(car.as_slice(), true).unwrap(), vec![root]);

    let mut content = Vec::new();
    store
        .read_file(&FILE.parse().unwrap(), &mut content)
        .unwrap();
    assert_eq!(content, b"hello\n");

    // Same header encoding, same depth-first block order as `ipfs dag export`.
    assert_eq!(store.export_car(&root, Vec::new()).unwrap(), car);
    assert_eq!(store.gc().unwrap().removed_blocks, 0);
}
