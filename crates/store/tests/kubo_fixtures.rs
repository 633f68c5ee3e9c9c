//! Root CIDs of `UnixFS` imports checked against Kubo's own output on the js-unixfs convergence
//! fixtures (see `tests/fixtures/kubo-convergence/README.md` for provenance).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use datacloud_store::{ImportedFile, UnixFsError, import_reader};

const KIB_256: usize = 256 * 1024;
const MIB_1: usize = 1024 * 1024;

fn import_fixture(name: &str, chunk_size: usize) -> ImportedFile {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/kubo-convergence",
        name,
    ]
    .iter()
    .collect();
    let compressed = BufReader::new(File::open(&path).unwrap());
    // Streaming: the 45 MB file is never held in memory, which also exercises bounded imports.
    let file = ruzstd::decoding::StreamingDecoder::new(compressed).unwrap();
    import_reader(file, chunk_size, |_block| Ok::<_, UnixFsError>(())).unwrap()
}

fn check(name: &str, chunk_size: usize, size: u64, kubo_root: &str) {
    let file = import_fixture(name, chunk_size);
    assert_eq!(file.file_size, size, "{name}");
    assert_eq!(
        file.root.to_string(),
        kubo_root,
        "{name} with size-{chunk_size}"
    );
}

#[test]
fn exactly_174_leaves_is_one_full_node() {
    check(
        "repeat_0.04GiB_174.zst",
        KIB_256,
        45_613_056,
        "bafybeibzhntdcjvtchx5f3o6a2cpghfgsvd7n2nrbb7i6xs6jbytsprysa",
    );
}

#[test]
fn one_byte_past_174_leaves_adds_a_level() {
    check(
        "repeat_0.04GiB_174_1.zst",
        KIB_256,
        45_613_057,
        "bafybeiew6fbjstpum5e2h3hdnmgoj2alduuxc557ndc66fsvu7ozb6ykj4",
    );
}

#[test]
fn one_mib_chunks_match_kubo() {
    check(
        "repeat_0.04GiB_174.zst",
        MIB_1,
        45_613_056,
        "bafybeiff6k22jrlyyjuxc6aalah4om6cmpszu7uez5mdnybfqgtlmnx5su",
    );
    check(
        "repeat_0.04GiB_175_1.zst",
        MIB_1,
        45_875_201,
        "bafybeifracyyslxxdve3bkus6uqzlqhxz44j2zlh4lq7yicemvlp2msikq",
    );
}

#[test]
fn exactly_175_leaves_matches_kubo() {
    check(
        "repeat_0.04GiB_175.zst",
        KIB_256,
        45_875_200,
        "bafybeigfj4x3diznwfcblarkwl2f5mk25m7zc62duf2xbharmy4pv5lxe4",
    );
}

#[test]
fn one_byte_past_175_leaves_matches_kubo() {
    check(
        "repeat_0.04GiB_175_1.zst",
        KIB_256,
        45_875_201,
        "bafybeigdosbtqahmfa4v3l2w4d66ayijgl3l4nby2siz6vewx7wkslgb5i",
    );
}
