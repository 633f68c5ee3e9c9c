//! CommP throughput and on-disk proof latency on a payload of random bytes (256 MiB by default).
//!
//! Run with `cargo bench -p datacloud-pdp --bench commp` (release; never part of `cargo test`);
//! `DATACLOUD_COMMP_MIB=1024` runs the same benches on a 1 GiB payload.
//! Throughput is reported in payload MiB/s; rayon uses every core, so note the machine's load.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use datacloud_pdp::{PieceProver, commp, commp_from_reader};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Payload size in MiB: `DATACLOUD_COMMP_MIB`, 256 by default.
fn payload_mib() -> usize {
    std::env::var("DATACLOUD_COMMP_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn random_payload(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(0x00da_7ac1).fill(&mut data[..]);
    data
}

fn benches(c: &mut Criterion) {
    let mib = payload_mib();
    let data = random_payload(mib << 20);
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(&data).expect("write the payload");
    file.flush().expect("flush the payload");
    let expected = commp(&data).expect("the payload fits a piece");
    assert_eq!(
        commp_from_reader(std::fs::File::open(file.path()).expect("open")).expect("stream"),
        expected,
        "streaming and in-memory CommP must agree"
    );

    let mut group = c.benchmark_group(format!("commp_{mib}MiB"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("in_memory", |b| b.iter(|| commp(black_box(&data))));
    group.bench_function("streaming_file", |b| {
        b.iter(|| commp_from_reader(std::fs::File::open(file.path()).expect("open")));
    });
    group.bench_function("prover_open_file", |b| {
        b.iter(|| PieceProver::open(file.path()).expect("open the prover"));
    });
    group.finish();

    let mut prover = PieceProver::open(file.path()).expect("open the prover");
    let root = prover.commitment().root();
    let leaves = prover.commitment().size().leaf_count();
    let mut proofs = c.benchmark_group(format!("prover_{mib}MiB"));
    proofs.sample_size(20);
    proofs.bench_function("five_proofs", |b| {
        b.iter_batched(
            || {
                let mut rng = StdRng::seed_from_u64(7);
                [(); 5].map(|()| rng.random_range(0..leaves))
            },
            |challenges| {
                for leaf in challenges {
                    let proof = prover.proof(leaf).expect("prove");
                    assert!(proof.verify(&root));
                }
            },
            BatchSize::SmallInput,
        );
    });
    proofs.finish();
}

criterion_group!(commp_benches, benches);
criterion_main!(commp_benches);
