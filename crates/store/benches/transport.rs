//! Transport throughput on the redb blockstore: CAR import, CAR export, and a verified DAG fetch
//! through the trustless gateway over loopback HTTP.
//!
//! Input: one pseudo-random file of `DATACLOUD_BENCH_MIB` MiB (default 128), imported as `UnixFS`
//! with Kubo's default 256 KiB chunks. Every iteration writes to a fresh store, so imports pay for
//! redb's commit (fsync) as a real import does. Criterion reports the throughput in MiB/s of CAR
//! bytes. Run: `cargo bench -p datacloud-store --bench transport`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use datacloud_store::gateway::{self, Client, ClientConfig};
use datacloud_store::{Blockstore, DEFAULT_CHUNK_SIZE};

fn file_mib() -> usize {
    std::env::var("DATACLOUD_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

/// Pseudo-random bytes (xorshift64, 8 bytes per step): incompressible, reproducible.
fn sample(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn fresh_store() -> (tempfile::TempDir, Arc<Blockstore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Blockstore::open(dir.path().join("blocks.redb")).expect("open store");
    (dir, Arc::new(store))
}

fn transport(c: &mut Criterion) {
    let mib = file_mib();
    let data = sample(mib * 1024 * 1024);
    let (_source_dir, source) = fresh_store();
    let file = source
        .import_file(data.as_slice(), DEFAULT_CHUNK_SIZE, true)
        .expect("import");
    drop(data);
    let car = source
        .export_car(&file.root, Vec::new())
        .expect("export to memory");
    eprintln!(
        "transport bench: {mib} MiB file, {} MiB CAR, root {}",
        car.len() / (1024 * 1024),
        file.root
    );

    let mut group = c.benchmark_group(format!("transport_{mib}MiB"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(car.len() as u64));

    group.bench_function("car_import_redb", |b| {
        b.iter_batched(
            fresh_store,
            |(dir, store)| {
                let roots = store.import_car(car.as_slice(), true).expect("import CAR");
                black_box(roots);
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });

    group.bench_function("car_export_redb", |b| {
        b.iter(|| {
            source
                .export_car(&file.root, std::io::sink())
                .expect("export CAR");
        });
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let base = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(gateway::serve(listener, source.clone(), async move {
            let _ = stopped.await;
        }));
        base
    });
    let client = Client::new([base], ClientConfig::default()).expect("client");
    group.bench_function("gateway_fetch_verified_loopback", |b| {
        b.iter_batched(
            fresh_store,
            |(dir, store)| {
                let fetched = runtime
                    .block_on(client.fetch_dag(&file.root, &store, true))
                    .expect("fetch DAG");
                black_box(fetched);
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    let _ = stop.send(());
}

criterion_group!(benches, transport);
criterion_main!(benches);
