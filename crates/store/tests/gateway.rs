//! The trustless gateway over real HTTP on loopback: our server, our verifying client, and
//! hostile gateways (tiny axum handlers serving tampered, wrong or incomplete data).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cid::Cid;
use datacloud_store::car::{CarReader, CarWriter, encode_header};
use datacloud_store::gateway::{self, Client, ClientConfig, ClientError};
use datacloud_store::{Block, Blockstore, UnixFsError, import_reader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const CAR_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The file's blocks as the importer makes them (children before parents, root last).
fn blocks_of(data: &[u8], chunk: usize) -> (Cid, Vec<Block>) {
    let mut blocks = Vec::new();
    let file = import_reader(data, chunk, |b| {
        blocks.push(b);
        Ok::<_, UnixFsError>(())
    })
    .unwrap();
    (file.root, blocks)
}

fn temp_store() -> (tempfile::TempDir, Arc<Blockstore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path().join("blocks.redb")).unwrap();
    (dir, Arc::new(store))
}

struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

async fn start_gateway(store: Arc<Blockstore>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway::serve(listener, store, async move {
        let _ = stopped.await;
    }));
    Running {
        base,
        stop: Some(stop),
        task,
    }
}

/// A gateway that answers every `/ipfs/...` request with the same content type and body.
async fn start_hostile(content_type: &'static str, body: Vec<u8>) -> String {
    async fn answer(
        State((content_type, body)): State<(&'static str, Vec<u8>)>,
    ) -> impl IntoResponse {
        ([(header::CONTENT_TYPE, content_type)], body)
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/ipfs/{*rest}", axum::routing::get(answer))
        .with_state((content_type, body));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A server store holding `data` as a file of `chunk`-byte leaves, pinned.
fn server_with(data: &[u8], chunk: usize) -> (tempfile::TempDir, Arc<Blockstore>, Cid) {
    let (dir, store) = temp_store();
    let file = store.import_file(data, chunk, true).unwrap();
    (dir, store, file.root)
}

fn assert_nothing_stored(store: &Blockstore, blocks: &[Block]) {
    for block in blocks {
        assert!(
            !store.has(block.cid()).unwrap(),
            "block {} was stored from a rejected response",
            block.cid()
        );
    }
    assert!(store.pins().unwrap().is_empty());
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(u8::try_from(value & 0x7f).unwrap() | 0x80);
        value >>= 7;
    }
    out.push(u8::try_from(value).unwrap());
}

/// A CAR written by hand, so a section may carry bytes that do not match its CID.
fn raw_car(roots: &[Cid], sections: &[(Cid, &[u8])]) -> Vec<u8> {
    let header = encode_header(roots);
    let mut out = Vec::new();
    varint(header.len() as u64, &mut out);
    out.extend_from_slice(&header);
    for (cid, data) in sections {
        let cid = cid.to_bytes();
        varint((cid.len() + data.len()) as u64, &mut out);
        out.extend_from_slice(&cid);
        out.extend_from_slice(data);
    }
    out
}

/// The blocks in depth-first pre-order (the order the server sends and the client requires).
fn dfs_order(root: Cid, blocks: &[Block]) -> Vec<Block> {
    let by_cid: std::collections::HashMap<Cid, &Block> =
        blocks.iter().map(|b| (*b.cid(), b)).collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let block = by_cid[&cid];
        out.push(block.clone());
        stack.extend(
            datacloud_store::dag::block_links(block)
                .unwrap()
                .into_iter()
                .rev(),
        );
    }
    out
}

#[tokio::test]
async fn a_file_round_trips_through_server_and_client_as_car_and_raw() {
    // 600 KiB in 1 KiB leaves: 600 leaves under 4 internal nodes and a root (two levels).
    let data = sample(600 * 1024, 7);
    let (expected_root, expected_blocks) = blocks_of(&data, 1024);
    let (_sdir, server_store, root) = server_with(&data, 1024);
    assert_eq!(root, expected_root);
    let server = start_gateway(server_store.clone()).await;

    let (_cdir, local) = temp_store();
    let client = Client::new([&server.base], ClientConfig::default()).unwrap();
    let fetched = client.fetch_dag(&root, &local, true).await.unwrap();
    assert_eq!(fetched.blocks, expected_blocks.len() as u64);
    assert_eq!(fetched.gateway.trim_end_matches('/'), server.base);
    for block in &expected_blocks {
        assert_eq!(local.get(block.cid()).unwrap().as_ref(), Some(block));
    }
    assert_eq!(local.pins().unwrap(), vec![root]);
    let mut read_back = Vec::new();
    local.read_file(&root, &mut read_back).unwrap();
    assert_eq!(read_back, data);

    // Raw: one leaf and the root node, each verified and stored.
    let (_rdir, raw_local) = temp_store();
    let leaf = &expected_blocks[3];
    assert_eq!(
        &client.fetch_block(leaf.cid(), &raw_local).await.unwrap(),
        leaf
    );
    let root_block = client.fetch_block(&root, &raw_local).await.unwrap();
    assert_eq!(root_block.cid(), &root);
    assert!(raw_local.has(leaf.cid()).unwrap() && raw_local.has(&root).unwrap());

    server.shutdown().await;
}

#[tokio::test]
async fn raw_and_head_responses_follow_the_trustless_gateway_spec() {
    let data = sample(40 * 1024, 11);
    let (_sdir, store, root) = server_with(&data, 4096);
    let (_, blocks) = blocks_of(&data, 4096);
    let leaf = *blocks[0].cid();
    let server = start_gateway(store).await;
    let http = reqwest::Client::new();
    let url = |rest: &str| format!("{}/ipfs/{rest}", server.base);

    // Raw block: type, strong ETag, immutable caching, nosniff, attachment, exact bytes.
    let response = http
        .get(url(&format!("{leaf}?format=raw")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.ipld.raw");
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{leaf}.raw\""));
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=29030400, immutable"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION].to_str().unwrap(),
        format!("attachment; filename=\"{leaf}.bin\"")
    );
    assert!(!headers.contains_key(header::CONTENT_LOCATION));
    let body = response.bytes().await.unwrap();
    assert_eq!(Block::verified(leaf, body.to_vec()).unwrap(), blocks[0]);

    // Accept alone negotiates, and Content-Location names the format for caches.
    let response = http
        .get(url(&leaf.to_string()))
        .header(header::ACCEPT, "application/vnd.ipld.raw")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_LOCATION]
            .to_str()
            .unwrap(),
        format!("/ipfs/{leaf}?format=raw")
    );

    // If-None-Match with the ETag → 304 without a body.
    let response = http
        .get(url(&format!("{leaf}?format=raw")))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[header::ETAG].to_str().unwrap(), etag);
    assert!(response.bytes().await.unwrap().is_empty());

    // HEAD: the headers of GET, no body.
    let response = http
        .head(url(&format!("{leaf}?format=raw")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH].to_str().unwrap(),
        blocks[0].data().len().to_string()
    );
    assert!(response.bytes().await.unwrap().is_empty());
    let response = http
        .head(url(&format!("{root}?format=car")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], CAR_TYPE);
    assert!(response.bytes().await.unwrap().is_empty());

    server.shutdown().await;
}

#[tokio::test]
async fn car_and_error_responses_follow_the_trustless_gateway_spec() {
    let data = sample(40 * 1024, 11);
    let (_sdir, store, root) = server_with(&data, 4096);
    let (_, blocks) = blocks_of(&data, 4096);
    let server = start_gateway(store).await;
    let http = reqwest::Client::new();
    let url = |rest: &str| format!("{}/ipfs/{rest}", server.base);

    // CAR: the whole DAG, depth-first, root named in the header; ETag differs per scope.
    let response = http
        .get(url(&format!("{root}?format=car")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], CAR_TYPE);
    let car_etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(car_etag.starts_with(&format!("\"{root}.car")));
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap(),
        format!("attachment; filename=\"{root}.car\"")
    );
    let body = response.bytes().await.unwrap();
    let mut reader = CarReader::new(body.as_ref()).unwrap();
    assert_eq!(reader.roots(), &[root]);
    let got: Vec<Block> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(got, dfs_order(root, &blocks));

    // dag-scope=block: the root block alone.
    let response = http
        .get(url(&format!("{root}?format=car&dag-scope=block")))
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()[header::ETAG].to_str().unwrap(), car_etag);
    let body = response.bytes().await.unwrap();
    let got: Vec<Cid> = CarReader::new(body.as_ref())
        .unwrap()
        .map(|b| *b.unwrap().cid())
        .collect();
    assert_eq!(got, vec![root]);

    server.shutdown().await;
}

#[tokio::test]
async fn error_responses_follow_the_trustless_gateway_spec() {
    let data = sample(40 * 1024, 11);
    let (_sdir, store, root) = server_with(&data, 4096);
    let server = start_gateway(store).await;
    let http = reqwest::Client::new();
    let url = |rest: &str| format!("{}/ipfs/{rest}", server.base);

    // Errors: unknown CID 404, malformed CID 400, unsupported format 406, strict mode 400.
    let missing = *Block::new(datacloud_store::Codec::Raw, b"not stored".to_vec())
        .unwrap()
        .cid();
    let status = |response: reqwest::Response| response.status();
    let get = |path: String| http.get(url(&path)).send();
    assert_eq!(
        status(get(format!("{missing}?format=raw")).await.unwrap()),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(get(format!("{missing}?format=car")).await.unwrap()),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(
            http.head(url(&format!("{missing}?format=raw")))
                .send()
                .await
                .unwrap()
        ),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(get("not-a-cid?format=raw".to_owned()).await.unwrap()),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(
            get(format!("{root}?format=car&dag-scope=some"))
                .await
                .unwrap()
        ),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(get(format!("{root}/a/path?format=raw")).await.unwrap()),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(get(root.to_string()).await.unwrap()),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(get(format!("{root}?format=dag-json")).await.unwrap()),
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(
        status(
            http.get(url(&root.to_string()))
                .header(header::ACCEPT, "text/html")
                .send()
                .await
                .unwrap()
        ),
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(
        status(
            get(format!("{root}?format=car&car-version=2"))
                .await
                .unwrap()
        ),
        StatusCode::NOT_ACCEPTABLE
    );
    let long = "a".repeat(10_000);
    assert_eq!(
        status(get(format!("{root}?format=car&x={long}")).await.unwrap()),
        StatusCode::URI_TOO_LONG
    );

    // The spec's probe path.
    let response = get(format!("{}?format=raw", gateway::PROBE_CID))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().is_empty());

    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_blocks_are_sent_only_when_asked() {
    // Ten identical 1 KiB leaves: one distinct leaf under the root.
    let data = vec![0u8; 10 * 1024];
    let (_sdir, store, root) = server_with(&data, 1024);
    let server = start_gateway(store).await;
    let http = reqwest::Client::new();
    let count = |dups: &'static str| {
        let request = http
            .get(format!("{}/ipfs/{root}?format=car", server.base))
            .header(
                header::ACCEPT,
                format!("application/vnd.ipld.car; version=1; order=dfs; dups={dups}"),
            )
            .send();
        async move {
            let response = request.await.unwrap();
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .ends_with(&format!("dups={dups}"))
            );
            let body = response.bytes().await.unwrap();
            CarReader::new(body.as_ref()).unwrap().count()
        }
    };
    assert_eq!(count("n").await, 2);
    assert_eq!(count("y").await, 11);

    // The client takes a dups=y stream too, storing each block once.
    let (_cdir, local) = temp_store();
    let client = Client::new([&server.base], ClientConfig::default()).unwrap();
    assert_eq!(
        client.fetch_dag(&root, &local, false).await.unwrap().blocks,
        2
    );
    server.shutdown().await;
}

/// A two-level DAG and its blocks in depth-first order, for the hostile-gateway tests.
fn victim() -> (Cid, Vec<Block>) {
    let data = sample(300 * 1024, 3);
    let (root, blocks) = blocks_of(&data, 1024);
    let ordered = dfs_order(root, &blocks);
    (root, ordered)
}

async fn fetch_from_hostile(
    body: Vec<u8>,
    root: Cid,
) -> (ClientError, tempfile::TempDir, Arc<Blockstore>) {
    let base = start_hostile(CAR_TYPE, body).await;
    let (dir, local) = temp_store();
    let client = Client::new([base], ClientConfig::default()).unwrap();
    let error = client.fetch_dag(&root, &local, true).await.unwrap_err();
    (error, dir, local)
}

#[tokio::test]
async fn a_tampered_block_in_a_car_is_rejected_and_nothing_is_stored() {
    let (root, blocks) = victim();
    // Flip one byte of the LAST block, so every block before it had already passed.
    let mut sections: Vec<(Cid, Vec<u8>)> = blocks
        .iter()
        .map(|b| (*b.cid(), b.data().to_vec()))
        .collect();
    let last = sections.len() - 1;
    sections[last].1[0] ^= 1;
    let refs: Vec<(Cid, &[u8])> = sections.iter().map(|(c, d)| (*c, d.as_slice())).collect();
    let (error, _dir, local) = fetch_from_hostile(raw_car(&[root], &refs), root).await;
    assert!(
        matches!(&error, ClientError::TamperedBlock { cid, .. } if *cid == sections[last].0),
        "{error}"
    );
    assert_nothing_stored(&local, &blocks);
}

#[tokio::test]
async fn a_car_for_another_root_is_rejected() {
    let (root, blocks) = victim();
    let (other_root, other_blocks) = blocks_of(&sample(10 * 1024, 99), 1024);
    let mut car = CarWriter::new(Vec::new(), &[other_root]).unwrap();
    for block in dfs_order(other_root, &other_blocks) {
        car.write_block(&block).unwrap();
    }
    let (error, _dir, local) = fetch_from_hostile(car.finish().unwrap(), root).await;
    assert!(
        matches!(&error, ClientError::WrongRoot { found, .. } if found == &[other_root]),
        "{error}"
    );
    assert_nothing_stored(&local, &blocks);
    assert_nothing_stored(&local, &other_blocks);
}

#[tokio::test]
async fn a_car_with_a_foreign_block_or_a_missing_block_is_rejected() {
    let (root, blocks) = victim();
    // Right root in the header, but a valid block that is not part of the DAG.
    let stranger = Block::new(datacloud_store::Codec::Raw, b"stranger".to_vec()).unwrap();
    let mut car = CarWriter::new(Vec::new(), &[root]).unwrap();
    for block in blocks.iter().take(5).chain([&stranger]) {
        car.write_block(block).unwrap();
    }
    let (error, _dir, local) = fetch_from_hostile(car.finish().unwrap(), root).await;
    assert!(
        matches!(&error, ClientError::UnexpectedBlock { cid, .. } if cid == stranger.cid()),
        "{error}"
    );
    assert_nothing_stored(&local, &blocks);
    assert!(!local.has(stranger.cid()).unwrap());

    // Every block valid, but the last one never comes: incomplete.
    let mut car = CarWriter::new(Vec::new(), &[root]).unwrap();
    for block in &blocks[..blocks.len() - 1] {
        car.write_block(block).unwrap();
    }
    let (error, _dir, local) = fetch_from_hostile(car.finish().unwrap(), root).await;
    assert!(
        matches!(&error, ClientError::Incomplete { missing, .. } if missing == blocks.last().unwrap().cid()),
        "{error}"
    );
    assert_nothing_stored(&local, &blocks);

    // A stream cut inside a section: truncated CAR.
    let mut car = CarWriter::new(Vec::new(), &[root]).unwrap();
    for block in &blocks {
        car.write_block(block).unwrap();
    }
    let mut bytes = car.finish().unwrap();
    bytes.truncate(bytes.len() - 10);
    let (error, _dir, local) = fetch_from_hostile(bytes, root).await;
    assert!(matches!(&error, ClientError::Car { .. }), "{error}");
    assert_nothing_stored(&local, &blocks);
}

#[tokio::test]
async fn a_tampered_raw_block_is_rejected() {
    let (_, blocks) = victim();
    let wanted = &blocks[1];
    let base = start_hostile("application/vnd.ipld.raw", blocks[2].data().to_vec()).await;
    let (_dir, local) = temp_store();
    let client = Client::new([base], ClientConfig::default()).unwrap();
    let error = client.fetch_block(wanted.cid(), &local).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::TamperedBlock { cid, .. } if cid == wanted.cid()),
        "{error}"
    );
    assert!(!local.has(wanted.cid()).unwrap());
}

#[tokio::test]
async fn the_client_falls_back_to_the_next_gateway_and_reports_every_failure() {
    let data = sample(100 * 1024, 5);
    let (_sdir, store, root) = server_with(&data, 4096);
    let server = start_gateway(store).await;
    let (_, blocks) = blocks_of(&data, 4096);

    // First a gateway that serves garbage, then one whose store lacks the DAG (404), then ours.
    let hostile = start_hostile(CAR_TYPE, b"garbage".to_vec()).await;
    let (_edir, empty) = temp_store();
    let empty_gateway = start_gateway(empty).await;
    let (_cdir, local) = temp_store();
    let client = Client::new(
        [
            hostile.clone(),
            empty_gateway.base.clone(),
            server.base.clone(),
        ],
        ClientConfig::default(),
    )
    .unwrap();
    let fetched = client.fetch_dag(&root, &local, true).await.unwrap();
    assert_eq!(fetched.gateway.trim_end_matches('/'), server.base);
    assert_eq!(fetched.blocks, blocks.len() as u64);
    let mut read_back = Vec::new();
    local.read_file(&root, &mut read_back).unwrap();
    assert_eq!(read_back, data);

    // Without a good gateway: one typed error per gateway, in order.
    let (_ldir, local) = temp_store();
    let client = Client::new(
        [hostile, empty_gateway.base.clone()],
        ClientConfig::default(),
    )
    .unwrap();
    let error = client.fetch_dag(&root, &local, true).await.unwrap_err();
    let ClientError::AllGatewaysFailed(errors) = &error else {
        panic!("expected AllGatewaysFailed, got {error}");
    };
    assert!(
        matches!(errors[0], ClientError::Car { .. }),
        "{}",
        errors[0]
    );
    assert!(
        matches!(errors[1], ClientError::Status { status: 404, .. }),
        "{}",
        errors[1]
    );
    assert_nothing_stored(&local, &blocks);

    empty_gateway.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn responses_over_the_configured_bounds_are_refused() {
    let data = sample(200 * 1024, 9);
    let (_sdir, store, root) = server_with(&data, 4096);
    let server = start_gateway(store).await;
    let (_, blocks) = blocks_of(&data, 4096);
    let (_cdir, local) = temp_store();

    let small_total = ClientConfig {
        max_total_bytes: 50 * 1024,
        ..ClientConfig::default()
    };
    let client = Client::new([&server.base], small_total).unwrap();
    let error = client.fetch_dag(&root, &local, true).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::TooLarge {
                what: "response",
                ..
            }
        ),
        "{error}"
    );
    assert_nothing_stored(&local, &blocks);

    let small_blocks = ClientConfig {
        max_block_size: 1024,
        ..ClientConfig::default()
    };
    let client = Client::new([&server.base], small_blocks).unwrap();
    let error = client.fetch_dag(&root, &local, true).await.unwrap_err();
    assert!(
        matches!(error, ClientError::TooLarge { what: "block", .. }),
        "{error}"
    );
    let error = client
        .fetch_block(blocks[0].cid(), &local)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::TooLarge { .. }), "{error}");
    assert_nothing_stored(&local, &blocks);
    server.shutdown().await;
}

/// A CAR answer that starts with `prefix`, then drips one zero byte every 100 ms, forever.
async fn drip(State(prefix): State<Vec<u8>>) -> impl IntoResponse {
    let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(prefix) });
    let rest = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(vec![0u8]), ()))
    });
    (
        [(header::CONTENT_TYPE, "application/vnd.ipld.car")],
        axum::body::Body::from_stream(futures_util::StreamExt::chain(first, rest)),
    )
}

#[tokio::test]
async fn a_gateway_that_drips_its_answer_is_cut_off_and_the_next_one_asked() {
    let data = sample(20 * 1024, 12);
    let (_sdir, store, root) = server_with(&data, 4096);
    // A hostile gateway sends a valid CAR header for the root and the length of a first
    // section, then that section one byte every 100 ms: never silent long enough for the read
    // timeout, never done.
    let mut prefix = raw_car(&[root], &[]);
    varint(1000, &mut prefix);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dripping = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/ipfs/{*rest}", axum::routing::get(drip))
        .with_state(prefix);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let honest = start_gateway(store).await;
    let (_cdir, local) = temp_store();
    let config = ClientConfig {
        read_timeout: std::time::Duration::from_secs(10),
        response_timeout: std::time::Duration::from_secs(1),
        ..ClientConfig::default()
    };

    let started = std::time::Instant::now();
    let alone = Client::new([&dripping], config).unwrap();
    let error = alone.fetch_dag(&root, &local, true).await.unwrap_err();
    assert!(matches!(error, ClientError::TooSlow { .. }), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let (_, blocks) = blocks_of(&data, 4096);
    assert_nothing_stored(&local, &blocks);

    // With an honest gateway after it, the fetch completes from that one.
    let both = Client::new([&dripping, &honest.base], config).unwrap();
    let fetched = both.fetch_dag(&root, &local, true).await.unwrap();
    assert_eq!(fetched.gateway.trim_end_matches('/'), honest.base);
    honest.shutdown().await;
}

/// A `UnixFS` directory node (`dag-pb`, `Data.Type = Directory`) naming `entries`, encoded by
/// hand as go-merkledag does: Links (Hash, Name, Tsize) before Data.
fn directory(entries: &[(&str, Cid)]) -> Block {
    fn field(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
        out.push(key);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    let mut node = Vec::new();
    for (name, cid) in entries {
        let mut link = Vec::new();
        field(&mut link, 0x0a, &cid.to_bytes());
        field(&mut link, 0x12, name.as_bytes());
        link.extend_from_slice(&[0x18, 0x00]);
        field(&mut node, 0x12, &link);
    }
    field(&mut node, 0x0a, &[0x08, 0x01]);
    Block::new(datacloud_store::Codec::DagPb, node).unwrap()
}

#[tokio::test]
async fn car_requests_resolve_paths_through_directories() {
    let data = sample(20 * 1024, 21);
    let (_sdir, store, file_root) = server_with(&data, 4096);
    let (_, file_blocks) = blocks_of(&data, 4096);
    let dir = directory(&[("data set.csv", file_root)]);
    store.put(&dir).unwrap();
    let server = start_gateway(store).await;
    let http = reqwest::Client::new();
    let car = |path: String| {
        let request = http.get(format!("{}/ipfs/{path}", server.base)).send();
        async move {
            let response = request.await.unwrap();
            let status = response.status();
            let body = response.bytes().await.unwrap();
            let cids = if status == StatusCode::OK {
                let mut reader = CarReader::new(body.as_ref()).unwrap();
                assert_eq!(reader.roots().len(), 1);
                reader.by_ref().map(|b| *b.unwrap().cid()).collect()
            } else {
                Vec::new()
            };
            (status, cids)
        }
    };

    // The path's blocks first, then the file's whole DAG; the name is percent-decoded.
    let (status, cids) = car(format!("{}/data%20set.csv?format=car", dir.cid())).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = vec![*dir.cid()];
    expected.extend(dfs_order(file_root, &file_blocks).iter().map(|b| *b.cid()));
    assert_eq!(cids, expected);

    // dag-scope=entity on a directory is the directory node alone; on a file, the whole file.
    let (_, cids) = car(format!("{}?format=car&dag-scope=entity", dir.cid())).await;
    assert_eq!(cids, vec![*dir.cid()]);
    let (_, cids) = car(format!("{file_root}?format=car&dag-scope=entity")).await;
    assert_eq!(cids, expected[1..].to_vec());

    // An absent name is 404.
    let (status, _) = car(format!("{}/nope.csv?format=car", dir.cid())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test]
async fn entity_bytes_sends_only_the_blocks_that_cover_the_range() {
    // 600 leaves of 1 KiB under 4 internal nodes (174 links each) and the root.
    let data = sample(600 * 1024, 33);
    let (_sdir, store, root) = server_with(&data, 1024);
    let (_, blocks) = blocks_of(&data, 1024);
    let leaves: Vec<Cid> = blocks
        .iter()
        .filter(|b| b.codec() == datacloud_store::Codec::Raw)
        .map(|b| *b.cid())
        .collect();
    assert_eq!(leaves.len(), 600);
    let server = start_gateway(store).await;
    let http = reqwest::Client::new();

    for (range, first, last) in [
        ("0:0", 0, 0),
        ("1000:1100", 0, 1),
        ("-1024:*", 599, 599),
        ("178000:179000", 173, 174),
        ("0:*", 0, 599),
        ("614000:99999999", 599, 599),
    ] {
        let response = http
            .get(format!(
                "{}/ipfs/{root}?format=car&entity-bytes={range}",
                server.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{range}");
        let etag = response.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(etag.contains("entity-bytes"), "{etag}");
        let body = response.bytes().await.unwrap();
        let got: Vec<Block> = CarReader::new(body.as_ref())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got[0].cid(), &root, "{range}");
        let got_leaves: Vec<Cid> = got
            .iter()
            .filter(|b| b.codec() == datacloud_store::Codec::Raw)
            .map(|b| *b.cid())
            .collect();
        assert_eq!(got_leaves, leaves[first..=last].to_vec(), "{range}");
        let parents = last / 174 - first / 174 + 1;
        assert_eq!(got.len(), 1 + parents + got_leaves.len(), "{range}");
    }

    // Nothing of the file in the range: the root block alone.
    let response = http
        .get(format!(
            "{}/ipfs/{root}?format=car&entity-bytes=700000:*",
            server.base
        ))
        .send()
        .await
        .unwrap();
    let body = response.bytes().await.unwrap();
    let got: Vec<Cid> = CarReader::new(body.as_ref())
        .unwrap()
        .map(|b| *b.unwrap().cid())
        .collect();
    assert_eq!(got, vec![root]);
    server.shutdown().await;
}

#[tokio::test]
async fn block_put_publishes_keccak_named_params_only_where_enabled() {
    let params = br#"{"template":"cohort_stats"}"#.to_vec();
    let block = Block::verified(
        datacloud_store::block::keccak_raw_cid(&params),
        params.clone(),
    )
    .unwrap();

    // A read-only gateway (the default) has no RPC route.
    let (_dir, read_only) = temp_store();
    let gateway = start_gateway(read_only.clone()).await;
    let client = Client::new([gateway.base.as_str()], ClientConfig::default()).unwrap();
    assert!(matches!(
        client.put_block(&block).await,
        Err(ClientError::PutRejected { .. })
    ));
    assert!(!read_only.has(block.cid()).unwrap());
    gateway.shutdown().await;

    // A node that accepts puts stores and pins the block; anyone can then fetch and verify it.
    let (_dir, node) = temp_store();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = gateway::GatewayConfig {
        accept_block_put: true,
        ..gateway::GatewayConfig::default()
    };
    tokio::spawn(gateway::serve_with_config(
        listener,
        node.clone(),
        config,
        std::future::pending(),
    ));
    let client = Client::new([base.as_str()], ClientConfig::default()).unwrap();
    client.put_block(&block).await.unwrap();
    assert!(node.pins().unwrap().contains(block.cid()));
    let (_dir, reader) = temp_store();
    let fetched = client.fetch_block(block.cid(), &reader).await.unwrap();
    assert_eq!(fetched.data(), params.as_slice());

    // Bad arguments are refused with Kubo's error shape, and nothing is stored.
    let http = reqwest::Client::new();
    let refused = http
        .post(format!("{base}/api/v0/block/put?mhtype=md5"))
        .header("content-type", "multipart/form-data; boundary=b")
        .body("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxyz\r\n--b--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("unsupported mhtype")
    );
    assert_eq!(node.pins().unwrap().len(), 1);
}
