//! The trustless gateway server: `GET`/`HEAD /ipfs/{cid}[/{path}]` from a local blockstore.
//!
//! It is a non-recursive gateway (path-gateway spec): it serves what the blockstore holds and
//! answers 404 for a root it does not have. CAR responses are produced by a blocking task that
//! walks the DAG depth-first and hands the encoded bytes to the HTTP body through a small bounded
//! channel, so memory per response is a few chunks plus the walk's stack and seen-set, whatever the
//! DAG's size. A block found missing after the 200 was sent ends the stream early (spec:
//! "Streaming and Missing Child Blocks"); clients detect the incomplete CAR.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, Write};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use axum::routing::{get, post};
use bytes::Bytes;
use cid::Cid;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::request::{DagScope, Rejection, ResponseFormat, negotiate};
use super::{IMMUTABLE_CACHE_CONTROL, PROBE_CID};
use crate::block::{Block, Codec, MAX_BLOCK_SIZE, check_cid};
use crate::blockstore::{Blockstore, StoreError};
use crate::car::CarWriter;
use crate::dag::block_links;
use crate::unixfs::{UNIXFS_TYPE_FILE, decode_dag_pb};

/// Multihash code of the identity "hash": its CIDs hold their data inline and are never sent
/// as CAR blocks (spec: a gateway MUST NOT include them).
const IDENTITY: u64 = 0x00;

/// Bytes of CAR output gathered before they are handed to the HTTP body.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks buffered between the DAG walk and a slow client.
const CHANNEL_CHUNKS: usize = 4;

/// Limits of a gateway server.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    /// Longest request URI accepted (414 beyond).
    pub max_uri_len: usize,
    /// Most path segments after the CID.
    pub max_path_segments: usize,
    /// CAR responses streamed at once; more get 503 with `Retry-After` (each holds a blocking
    /// thread while its client reads).
    pub max_concurrent_streams: usize,
    /// Also accept `POST /api/v0/block/put` (Kubo RPC): how buyers publish an order's
    /// parameters to the seller's node. Off by default: a public gateway is read-only.
    pub accept_block_put: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_uri_len: 8 * 1024,
            max_path_segments: 64,
            max_concurrent_streams: 64,
            accept_block_put: false,
        }
    }
}

#[derive(Debug)]
struct GatewayState {
    store: Arc<Blockstore>,
    config: GatewayConfig,
    streams: Arc<Semaphore>,
}

/// The gateway's routes over `store`, for embedding in a larger axum app.
pub fn router(store: Arc<Blockstore>, config: GatewayConfig) -> Router {
    let state = Arc::new(GatewayState {
        store,
        config,
        streams: Arc::new(Semaphore::new(config.max_concurrent_streams)),
    });
    // `get` also routes HEAD; the handler skips body work for it.
    let router = Router::new().route("/ipfs/{*rest}", get(handle));
    let router = if config.accept_block_put {
        router.route(
            "/api/v0/block/put",
            post(block_put).layer(DefaultBodyLimit::max(MAX_BLOCK_SIZE + 64 * 1024)),
        )
    } else {
        router
    };
    router.with_state(state)
}

/// Query arguments of Kubo's `block/put` this node understands.
#[derive(Debug, serde::Deserialize)]
struct BlockPutArgs {
    #[serde(rename = "cid-codec", default = "raw_codec")]
    cid_codec: String,
    #[serde(default = "sha2_256")]
    mhtype: String,
    #[serde(default)]
    pin: bool,
}

fn raw_codec() -> String {
    "raw".to_owned()
}

fn sha2_256() -> String {
    "sha2-256".to_owned()
}

/// `POST /api/v0/block/put?cid-codec=raw&mhtype=keccak-256&pin=true` with the block as the
/// multipart part `file`, as Kubo's RPC takes it; answers `{"Key": CID, "Size": bytes}`.
/// Errors answer 400 with Kubo's `{"Message", "Code", "Type"}` shape.
async fn block_put(
    State(state): State<Arc<GatewayState>>,
    Query(args): Query<BlockPutArgs>,
    mut multipart: Multipart,
) -> Response<Body> {
    let kubo_error = |message: String| {
        let body = serde_json::json!({ "Message": message, "Code": 0, "Type": "error" });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let codec = match args.cid_codec.as_str() {
        "raw" => Codec::Raw,
        "dag-pb" => Codec::DagPb,
        "dag-cbor" => Codec::DagCbor,
        other => {
            return kubo_error(format!(
                "unsupported cid-codec {other:?}: raw, dag-pb or dag-cbor"
            ));
        }
    };
    let data = match multipart.next_field().await {
        Ok(Some(field)) => match field.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => return kubo_error(format!("reading the block: {e}")),
        },
        Ok(None) => return kubo_error("no file part in the request".to_owned()),
        Err(e) => return kubo_error(format!("malformed multipart body: {e}")),
    };
    let block = match (args.mhtype.as_str(), codec) {
        ("sha2-256", _) => Block::new(codec, data),
        ("keccak-256", Codec::Raw) => Block::verified(crate::block::keccak_raw_cid(&data), data),
        (other, _) => {
            return kubo_error(format!(
                "unsupported mhtype {other:?}: sha2-256, or keccak-256 for raw blocks"
            ));
        }
    };
    let block = match block {
        Ok(block) => block,
        Err(e) => return kubo_error(e.to_string()),
    };
    let (cid, size) = (*block.cid(), block.data().len());
    let store = state.store.clone();
    let stored = tokio::task::spawn_blocking(move || {
        store.put(&block)?;
        if args.pin {
            store.pin(block.cid())?;
        }
        Ok::<_, StoreError>(())
    })
    .await;
    match stored {
        Ok(Ok(())) => {
            tracing::info!(%cid, size, "block put");
            let body = serde_json::json!({ "Key": cid.to_string(), "Size": size });
            let mut response = Response::new(Body::from(body.to_string()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Ok(Err(e)) => internal(&e),
        Err(e) => internal(&StoreError::Io(io::Error::other(e))),
    }
}

/// Serves the gateway with the default [`GatewayConfig`] on `listener` until `shutdown`
/// completes, then finishes the requests in flight.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Blockstore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with_config(listener, store, GatewayConfig::default(), shutdown).await
}

/// [`serve`] with explicit limits.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve_with_config(
    listener: TcpListener,
    store: Arc<Blockstore>,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "trustless gateway listening");
    }
    axum::serve(listener, router(store, config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An error response (plain text, never cached as content).
fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Body::from(message.into() + "\n"));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn rejection(r: &Rejection) -> Response<Body> {
    match r {
        Rejection::BadRequest(m) => error(StatusCode::BAD_REQUEST, m.clone()),
        Rejection::NotAcceptable(m) => error(StatusCode::NOT_ACCEPTABLE, m.clone()),
    }
}

fn internal(e: &StoreError) -> Response<Body> {
    tracing::error!(error = %e, "gateway blockstore failure");
    error(StatusCode::INTERNAL_SERVER_ERROR, "blockstore failure")
}

/// Decodes `%XX` escapes (RFC 3986 §2.1); `None` on a malformed escape.
fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The parsed `/ipfs/{cid}[/{path}]`.
struct ContentPath {
    /// The CID as requested (for headers and the CAR root).
    requested: Cid,
    /// The CID to look up: a `CIDv0` is the `dag-pb` `CIDv1` with the same multihash.
    root: Cid,
    segments: Vec<Vec<u8>>,
}

/// The path after `/ipfs/`, or the reason it is a bad request.
fn parse_content_path(rest: &str, config: &GatewayConfig) -> Result<ContentPath, String> {
    let mut parts = rest.split('/');
    let cid_text = parts.next().unwrap_or_default();
    let requested =
        Cid::try_from(cid_text).map_err(|e| format!("`{cid_text}` is not a valid CID: {e}"))?;
    let root = if requested.version() == cid::Version::V0 {
        Cid::new_v1(Codec::DagPb.code(), *requested.hash())
    } else {
        requested
    };
    let mut segments = Vec::new();
    for part in parts.filter(|p| !p.is_empty()) {
        if segments.len() == config.max_path_segments {
            return Err(format!(
                "content path has more than {} segments",
                config.max_path_segments
            ));
        }
        let segment = percent_decode(part)
            .ok_or_else(|| "malformed percent-escape in the path".to_owned())?;
        if segment == b"." || segment == b".." {
            return Err("`.` and `..` are not allowed in an immutable content path".to_owned());
        }
        segments.push(segment);
    }
    Ok(ContentPath {
        requested,
        root,
        segments,
    })
}

/// Strong `ETag` (path-gateway spec): the CID plus the response format; for CAR also the scope,
/// order and duplicates, and a digest of the path when there is one. Strong because the bytes are
/// deterministic: the same DAG is always walked in the same order.
fn etag(path: &ContentPath, format: ResponseFormat) -> String {
    match format {
        ResponseFormat::Raw => format!("\"{}.raw\"", path.requested),
        ResponseFormat::Car { dups, scope } => {
            let mut tag = format!(
                "\"{}.car.v1.dfs.dups-{}.{}",
                path.requested,
                if dups { "y" } else { "n" },
                scope.etag_part()
            );
            if !path.segments.is_empty() {
                let mut hasher = Sha256::new();
                for segment in &path.segments {
                    hasher.update((segment.len() as u64).to_be_bytes());
                    hasher.update(segment);
                }
                let digest = hasher.finalize();
                tag.push('.');
                for byte in &digest[..8] {
                    // Writing to a String cannot fail.
                    let _ = write!(tag, "{byte:02x}");
                }
            }
            tag.push('"');
            tag
        }
    }
}

/// Whether `If-None-Match` names `etag` (RFC 9110 §13.1.2: weak comparison, `*` matches).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    // Every value set here is built from CIDs, fixed strings and ASCII digits.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Headers every successful (and 304) response carries.
fn content_headers(
    headers: &mut HeaderMap,
    path: &ContentPath,
    format: ResponseFormat,
    etag: &str,
    uri: &Uri,
    query_has_format: bool,
) {
    set(headers, header::ETAG, etag);
    set(headers, header::CACHE_CONTROL, IMMUTABLE_CACHE_CONTROL);
    set(headers, header::VARY, "Accept");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::CONTENT_TYPE, &format.content_type());
    let extension = match format {
        ResponseFormat::Raw => "bin",
        ResponseFormat::Car { .. } => "car",
    };
    set(
        headers,
        header::CONTENT_DISPOSITION,
        &format!("attachment; filename=\"{}.{extension}\"", path.requested),
    );
    if matches!(format, ResponseFormat::Car { .. }) {
        set(headers, header::ACCEPT_RANGES, "none");
    }
    if !query_has_format {
        // Spec: negotiated by Accept alone → point caches at the URL that names the format.
        let separator = if uri.query().is_some() { "&" } else { "?" };
        set(
            headers,
            header::CONTENT_LOCATION,
            &format!(
                "{}{}{separator}format={}",
                uri.path(),
                uri.query().map(|q| format!("?{q}")).unwrap_or_default(),
                format.format_param()
            ),
        );
    }
}

async fn handle(
    State(state): State<Arc<GatewayState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if uri.to_string().len() > state.config.max_uri_len {
        return error(
            StatusCode::URI_TOO_LONG,
            format!("request URI longer than {} bytes", state.config.max_uri_len),
        );
    }
    let rest = uri.path().strip_prefix("/ipfs/").unwrap_or_default();
    let accept = match headers.get(header::ACCEPT).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(accept)) => Some(accept),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "Accept header is not ASCII"),
    };
    let format = match negotiate(uri.query(), accept) {
        Ok(format) => format,
        Err(r) => return rejection(&r),
    };
    if rest.split('/').next() == Some(PROBE_CID) {
        return probe(format, &method);
    }
    let path = match parse_content_path(rest, &state.config) {
        Ok(path) => path,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if format == ResponseFormat::Raw && !path.segments.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "raw block requests take no path: request /ipfs/{cid} of the block itself, or use \
             format=car",
        );
    }
    if check_cid(&path.root).is_err() {
        // A well-formed CID this store cannot hold (another hash or codec): not here.
        return error(
            StatusCode::NOT_FOUND,
            format!("{} is not in this gateway's blockstore", path.requested),
        );
    }
    let query_has_format = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("format=")));
    let tag = etag(&path, format);
    let only_if_cached = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|d| d.trim() == "only-if-cached"));

    let resolved = match resolve_task(&state, &path, only_if_cached).await {
        Ok(resolved) => resolved,
        Err(response) => return response,
    };

    let mut response = Response::new(Body::empty());
    content_headers(
        response.headers_mut(),
        &path,
        format,
        &tag,
        &uri,
        query_has_format,
    );
    if if_none_match(&headers, &tag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response.headers_mut().remove(header::CONTENT_TYPE);
        return response;
    }
    match format {
        ResponseFormat::Raw => {
            let data = resolved.terminus.data().len();
            set(
                response.headers_mut(),
                header::CONTENT_LENGTH,
                &data.to_string(),
            );
            if method != Method::HEAD {
                *response.body_mut() = Body::from(resolved.terminus.into_parts().1);
            }
        }
        ResponseFormat::Car { dups, scope } => {
            if method == Method::HEAD {
                return response;
            }
            let walk = CarWalk {
                store: state.store.clone(),
                header_root: path.requested,
                resolved,
                dups,
                scope,
            };
            match stream_car(&state, walk) {
                Ok(body) => *response.body_mut() = body,
                Err(busy) => return busy,
            }
        }
    }
    response
}

/// Resolves the content path on a blocking thread; an error response if it cannot be served.
#[allow(clippy::result_large_err)] // the error is the response itself, built once
async fn resolve_task(
    state: &GatewayState,
    path: &ContentPath,
    only_if_cached: bool,
) -> Result<Resolved, Response<Body>> {
    let store = state.store.clone();
    let root = path.root;
    let segments = path.segments.clone();
    match tokio::task::spawn_blocking(move || resolve(&store, root, &segments)).await {
        Ok(Ok(resolved)) => Ok(resolved),
        Ok(Err(Resolve::NotFound(message))) => {
            // Spec: `only-if-cached` and the root is not here → 412.
            let status = if only_if_cached {
                StatusCode::PRECONDITION_FAILED
            } else {
                StatusCode::NOT_FOUND
            };
            Err(error(status, message))
        }
        Ok(Err(Resolve::NotImplemented(message))) => {
            Err(error(StatusCode::NOT_IMPLEMENTED, message))
        }
        Ok(Err(Resolve::Store(e))) => Err(internal(&e)),
        Err(join) => {
            tracing::error!(error = %join, "gateway resolve task failed");
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
        }
    }
}

/// Starts the DAG walk for a CAR response; 503 when too many streams are in flight.
#[allow(clippy::result_large_err)] // the error is the response itself, built once
fn stream_car(state: &GatewayState, walk: CarWalk) -> Result<Body, Response<Body>> {
    let Ok(permit) = state.streams.clone().try_acquire_owned() else {
        let mut busy = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many CAR streams in flight; retry shortly",
        );
        set(busy.headers_mut(), header::RETRY_AFTER, "1");
        return Err(busy);
    };
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || walk.run(&tx, permit));
    Ok(Body::from_stream(ChunkStream(rx)))
}

/// The spec's probe: `bafkqaaa` is the empty identity CID, served without touching the store.
fn probe(format: ResponseFormat, method: &Method) -> Response<Body> {
    let body = match format {
        ResponseFormat::Raw => Vec::new(),
        ResponseFormat::Car { .. } => {
            // Parsing a constant; the identity CID has no block to send (spec: MAY be skipped).
            let car = Cid::try_from(PROBE_CID)
                .map_err(|e| e.to_string())
                .and_then(|cid| {
                    CarWriter::new(Vec::new(), &[cid])
                        .and_then(CarWriter::finish)
                        .map_err(|e| e.to_string())
                });
            match car {
                Ok(car) => car,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
            }
        }
    };
    let mut response = Response::new(if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    });
    set(
        response.headers_mut(),
        header::CONTENT_TYPE,
        &format.content_type(),
    );
    set(
        response.headers_mut(),
        header::CACHE_CONTROL,
        IMMUTABLE_CACHE_CONTROL,
    );
    response
}

/// A content path resolved down to its terminus block.
struct Resolved {
    /// Blocks along the path before the terminus, in order (sent first in a CAR).
    path_blocks: Vec<Block>,
    terminus: Block,
}

enum Resolve {
    NotFound(String),
    NotImplemented(String),
    Store(StoreError),
}

impl From<StoreError> for Resolve {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Follows `segments` from `root` through `dag-pb` named links (`UnixFS` directories).
fn resolve(store: &Blockstore, root: Cid, segments: &[Vec<u8>]) -> Result<Resolved, Resolve> {
    let mut current = store
        .get(&root)?
        .ok_or_else(|| Resolve::NotFound(format!("{root} is not in this gateway's blockstore")))?;
    let mut path_blocks = Vec::with_capacity(segments.len());
    for segment in segments {
        let name = String::from_utf8_lossy(segment).into_owned();
        let next = match current.codec() {
            Codec::DagPb => {
                let node = decode_dag_pb(current.data()).map_err(|e| Resolve::Store(e.into()))?;
                node.links
                    .iter()
                    .find(|link| link.name == Some(segment.as_slice()))
                    .map(|link| link.cid)
                    .ok_or_else(|| {
                        Resolve::NotFound(format!("no link named `{name}` under {}", current.cid()))
                    })?
            }
            Codec::Raw => {
                return Err(Resolve::NotFound(format!(
                    "{} is a raw block: it has no `{name}` below it",
                    current.cid()
                )));
            }
            Codec::DagCbor => {
                return Err(Resolve::NotImplemented(
                    "paths through dag-cbor blocks are not supported; request the CID directly"
                        .to_owned(),
                ));
            }
        };
        let block = store.get(&next)?.ok_or_else(|| {
            Resolve::NotFound(format!(
                "{next} (at `{name}`) is not in this gateway's blockstore"
            ))
        })?;
        path_blocks.push(std::mem::replace(&mut current, block));
    }
    Ok(Resolved {
        path_blocks,
        terminus: current,
    })
}

/// A CAR response being produced on a blocking thread.
struct CarWalk {
    store: Arc<Blockstore>,
    header_root: Cid,
    resolved: Resolved,
    dups: bool,
    scope: DagScope,
}

impl CarWalk {
    /// Writes the CAR into `tx`; holds `_permit` (a stream slot) until done.
    fn run(self, tx: &mpsc::Sender<io::Result<Bytes>>, _permit: OwnedSemaphorePermit) {
        let sink = ChunkSink {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK_BYTES),
        };
        if let Err(e) = self.write(sink) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                tracing::debug!("CAR client went away");
            } else {
                tracing::warn!(error = %e, root = %self.header_root, "CAR stream cut short");
                // Fails the body so the client sees a broken transfer, not a clean short CAR.
                let _ = tx.blocking_send(Err(e));
            }
        }
    }

    fn write(&self, sink: ChunkSink) -> io::Result<()> {
        let mut car = CarWriter::new(sink, &[self.header_root]).map_err(io::Error::other)?;
        for block in &self.resolved.path_blocks {
            car.write_block(block).map_err(io::Error::other)?;
        }
        let terminus = &self.resolved.terminus;
        let walk = match self.scope {
            DagScope::Block => None,
            DagScope::All => Some(None),
            DagScope::Entity => is_unixfs_file(terminus).then_some(None),
            DagScope::EntityBytes { from, to } => match file_size(terminus) {
                // Not a file: the parameter is ignored and the scope is the entity (spec).
                None => is_unixfs_file(terminus).then_some(None),
                // A range outside the file or empty: the root block alone (spec).
                Some(size) => byte_range(size, from, to).map(Some),
            },
        };
        match walk {
            Some(range) => self.walk(&mut car, range)?,
            None => car.write_block(terminus).map_err(io::Error::other)?,
        }
        car.finish().map_err(io::Error::other)?.flush_all()
    }

    /// Depth-first pre-order from the terminus; each block once unless `dups`. With a byte
    /// range (inclusive), only the children of file nodes whose bytes overlap it are followed.
    fn walk(&self, car: &mut CarWriter<ChunkSink>, range: Option<(u64, u64)>) -> io::Result<()> {
        let mut seen = HashSet::new();
        // Each entry: a block and the file offset its bytes start at (used only with a range).
        let mut stack = vec![(*self.resolved.terminus.cid(), 0u64)];
        while let Some((cid, start)) = stack.pop() {
            if cid.hash().code() == IDENTITY || (!self.dups && !seen.insert(cid)) {
                continue;
            }
            let block = if cid == *self.resolved.terminus.cid() {
                self.resolved.terminus.clone()
            } else {
                self.store
                    .get(&cid)
                    .map_err(io::Error::other)?
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("block {cid} is missing"))
                    })?
            };
            car.write_block(&block).map_err(io::Error::other)?;
            match range {
                None => stack.extend(
                    block_links(&block)
                        .map_err(io::Error::other)?
                        .into_iter()
                        .rev()
                        .map(|link| (link, 0)),
                ),
                Some((first, last)) if block.codec() == Codec::DagPb => {
                    let node = decode_dag_pb(block.data()).map_err(io::Error::other)?;
                    let Some(layout) = node.unixfs_file_layout().map_err(io::Error::other)? else {
                        continue;
                    };
                    let mut child_start = start + layout.inline_len;
                    let mut wanted = Vec::new();
                    for (link, size) in node.links.iter().zip(&layout.block_sizes) {
                        let child_end = child_start + size;
                        if child_start <= last && child_end > first {
                            wanted.push((link.cid, child_start));
                        }
                        child_start = child_end;
                    }
                    stack.extend(wanted.into_iter().rev());
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The byte size of a `UnixFS` file terminus (a raw block is a whole file), else `None`.
fn file_size(block: &Block) -> Option<u64> {
    match block.codec() {
        Codec::Raw => Some(block.data().len() as u64),
        Codec::DagPb => decode_dag_pb(block.data())
            .ok()?
            .unixfs_file_layout()
            .ok()
            .flatten()
            .map(|layout| layout.size()),
        Codec::DagCbor => None,
    }
}

/// `entity-bytes=from:to` resolved against a file of `size` bytes into an inclusive range that
/// is clamped to the file; `None` when nothing of the file is in it.
fn byte_range(size: u64, from: i64, to: Option<i64>) -> Option<(u64, u64)> {
    let resolve = |offset: i64| {
        if offset < 0 {
            size.saturating_sub(offset.unsigned_abs())
        } else {
            offset.unsigned_abs()
        }
    };
    let last_byte = size.checked_sub(1)?;
    let first = resolve(from);
    let last = to.map_or(last_byte, resolve).min(last_byte);
    (first <= last).then_some((first, last))
}

fn is_unixfs_file(block: &Block) -> bool {
    match block.codec() {
        // A raw block is a whole (single-chunk) file.
        Codec::Raw => true,
        Codec::DagPb => {
            decode_dag_pb(block.data())
                .ok()
                .and_then(|node| node.unixfs_type().ok().flatten())
                == Some(UNIXFS_TYPE_FILE)
        }
        Codec::DagCbor => false,
    }
}

/// `Write` end of the channel to the HTTP body: gathers [`CHUNK_BYTES`] and sends them.
struct ChunkSink {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkSink {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    fn flush_all(mut self) -> io::Result<()> {
        self.send()
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks go out when full or at the end; flushing early would only shrink them.
        Ok(())
    }
}

/// The receiving end as a body stream.
struct ChunkStream(mpsc::Receiver<io::Result<Bytes>>);

impl futures_util::Stream for ChunkStream {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_byte_ranges_resolve_like_the_spec_says() {
        assert_eq!(byte_range(1000, 0, None), Some((0, 999)));
        assert_eq!(byte_range(1000, 10, Some(20)), Some((10, 20)));
        assert_eq!(byte_range(1000, -100, None), Some((900, 999)));
        assert_eq!(byte_range(1000, 499, Some(-100)), Some((499, 900)));
        // Partly outside: clamped; fully outside, empty or a zero-size file: nothing.
        assert_eq!(byte_range(1000, 900, Some(5000)), Some((900, 999)));
        assert_eq!(byte_range(1000, -5000, Some(10)), Some((0, 10)));
        assert_eq!(byte_range(1000, 1000, None), None);
        assert_eq!(byte_range(1000, 20, Some(10)), None);
        assert_eq!(byte_range(0, 0, None), None);
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some(&b"a b"[..]));
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€".as_bytes()));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }

    #[test]
    fn content_paths_are_parsed_and_bounded() {
        let config = GatewayConfig {
            max_path_segments: 2,
            ..GatewayConfig::default()
        };
        let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
        let path = parse_content_path(&format!("{cid}/a%20b/c/"), &config).unwrap();
        assert_eq!(path.requested.to_string(), cid);
        assert_eq!(path.segments, vec![b"a b".to_vec(), b"c".to_vec()]);
        assert!(parse_content_path(&format!("{cid}/a/b/c"), &config).is_err());
        assert!(parse_content_path(&format!("{cid}/.."), &config).is_err());
        assert!(parse_content_path(&format!("{cid}/%2e"), &config).is_err());
        assert!(parse_content_path("not-a-cid/a", &config).is_err());
        // A CIDv0 is looked up as the dag-pb CIDv1 with the same multihash.
        let v0 =
            parse_content_path("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", &config).unwrap();
        assert_eq!(v0.root.version(), cid::Version::V1);
        assert_eq!(v0.root.codec(), Codec::DagPb.code());
        assert_eq!(v0.root.hash(), v0.requested.hash());
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = "\"bafy.raw\"";
        let mut headers = HeaderMap::new();
        assert!(!if_none_match(&headers, tag));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"other\", W/\"bafy.raw\""),
        );
        assert!(if_none_match(&headers, tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!if_none_match(&headers, tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&headers, tag));
    }
}
