//! A trustless gateway client: fetch a block or a whole DAG by CID, verify everything, store it.
//!
//! Trust nothing the gateway says: every block is hashed against its CID ([`Block::verified`]),
//! the CAR must name the requested root, every block must be one the DAG walked so far links to
//! (parents before children, as in the `order=dfs` we ask for), and the DAG must be complete when
//! the stream ends. Sizes are bounded per block and per response. Blocks stream into one
//! blockstore transaction that commits only after all of this holds, so a tampered, truncated or
//! oversized response stores nothing. Gateways are tried in order; the next one is asked when one
//! fails.

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use cid::Cid;
use reqwest::header;
use tokio::sync::mpsc;

use super::{MEDIA_TYPE_CAR, MEDIA_TYPE_RAW};
use crate::block::{Block, BlockError, MAX_BLOCK_SIZE, check_cid};
use crate::blockstore::{Blockstore, StoreError};
use crate::car::{CarError, CarReader};
use crate::dag::block_links;

/// Multihash code of identity CIDs: their data is inline, no gateway sends them.
const IDENTITY: u64 = 0x00;

/// Limits and timeouts of a [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig {
    /// Largest block accepted (at most [`MAX_BLOCK_SIZE`]).
    pub max_block_size: usize,
    /// Largest response body accepted, in bytes (a whole CAR).
    pub max_total_bytes: u64,
    /// Time allowed to connect to a gateway.
    pub connect_timeout: Duration,
    /// Longest silence allowed while reading a response.
    pub read_timeout: Duration,
    /// Longest one request to one gateway may take, response read whole: a gateway that drips
    /// its bytes just inside `read_timeout` is cut off here and the next one asked.
    pub response_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            max_block_size: MAX_BLOCK_SIZE,
            max_total_bytes: 64 * 1024 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_mins(1),
            // A 64 GiB CAR at 40 MiB/s; packages are far smaller.
            response_timeout: Duration::from_hours(1),
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client was built without gateways.
    #[error("no gateway URLs configured")]
    NoGateways,
    /// A gateway URL does not parse or is not http(s).
    #[error("invalid gateway URL `{url}`: {reason}")]
    InvalidGatewayUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CID is not one this store can verify and hold.
    #[error(transparent)]
    UnsupportedCid(BlockError),
    /// The request could not be sent or the response not read.
    #[error("gateway {gateway}: HTTP request failed: {source}")]
    Http {
        /// The gateway asked.
        gateway: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The gateway answered with an error status.
    #[error("gateway {gateway} answered HTTP {status}")]
    Status {
        /// The gateway asked.
        gateway: String,
        /// The HTTP status code.
        status: u16,
    },
    /// A node refused a published block, or acknowledged another CID.
    #[error("node {node} did not take the block: {reason}")]
    PutRejected {
        /// The node asked.
        node: String,
        /// Its answer.
        reason: String,
    },
    /// The response is not the requested media type.
    #[error("gateway {gateway} sent `{content_type}`, not the requested {expected}")]
    UnexpectedContentType {
        /// The gateway asked.
        gateway: String,
        /// The `Content-Type` it sent.
        content_type: String,
        /// The type asked for.
        expected: &'static str,
    },
    /// A block does not hash to its CID.
    #[error("gateway {gateway} sent tampered data: the block does not hash to {cid}")]
    TamperedBlock {
        /// The gateway asked.
        gateway: String,
        /// The CID the bytes claimed to be.
        cid: Cid,
    },
    /// The CAR names other roots than the requested CID.
    #[error("gateway {gateway} sent a CAR for roots {found:?}, not for the requested CID")]
    WrongRoot {
        /// The gateway asked.
        gateway: String,
        /// The roots in the CAR header.
        found: Vec<Cid>,
    },
    /// A valid block that the requested DAG does not (yet) link to.
    #[error("gateway {gateway} sent block {cid}, which is not part of the requested DAG")]
    UnexpectedBlock {
        /// The gateway asked.
        gateway: String,
        /// The stray block.
        cid: Cid,
    },
    /// The response ended before the DAG was complete.
    #[error(
        "gateway {gateway} sent an incomplete DAG: block {missing} (and maybe more) is missing"
    )]
    Incomplete {
        /// The gateway asked.
        gateway: String,
        /// A block the DAG links to that never came.
        missing: Cid,
    },
    /// One request took longer than [`ClientConfig::response_timeout`].
    #[error("gateway {gateway} took more than {} s to answer one request", .limit.as_secs())]
    TooSlow {
        /// The gateway asked.
        gateway: String,
        /// The bound.
        limit: Duration,
    },
    /// A block or the whole response exceeds the configured bound.
    #[error("gateway {gateway} sent a {what} over the {limit}-byte limit")]
    TooLarge {
        /// The gateway asked.
        gateway: String,
        /// What was too large.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
    /// The CAR stream is malformed or truncated.
    #[error("gateway {gateway} sent an invalid CAR: {source}")]
    Car {
        /// The gateway asked.
        gateway: String,
        /// What is wrong with it (boxed: CAR errors can carry a CID).
        source: Box<CarError>,
    },
    /// The local blockstore failed (not the gateway's fault; no other gateway is tried).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every gateway failed; one error per gateway, in the order they were tried.
    #[error("all {} gateways failed: {}", .0.len(), list(.0))]
    AllGatewaysFailed(Vec<ClientError>),
}

fn list(errors: &[ClientError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ClientError {
    /// Whether the error is local, so asking another gateway cannot help.
    const fn is_local(&self) -> bool {
        matches!(self, Self::Store(_) | Self::UnsupportedCid(_))
    }
}

/// What a DAG fetch stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagFetch {
    /// The gateway that served it.
    pub gateway: String,
    /// Blocks stored (duplicates counted once).
    pub blocks: u64,
    /// Response bytes read.
    pub bytes: u64,
}

/// A verifying client for one or more trustless gateways.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    gateways: Vec<reqwest::Url>,
    config: ClientConfig,
}

impl Client {
    /// A client for `gateways` (base URLs such as `http://127.0.0.1:8080`), tried in order.
    ///
    /// # Errors
    /// [`ClientError::NoGateways`], [`ClientError::InvalidGatewayUrl`], or
    /// [`ClientError::Http`] if the HTTP client cannot be built.
    pub fn new<S: AsRef<str>>(
        gateways: impl IntoIterator<Item = S>,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let gateways = gateways
            .into_iter()
            .map(|url| {
                let url = url.as_ref();
                let invalid = |reason: String| ClientError::InvalidGatewayUrl {
                    url: url.to_owned(),
                    reason,
                };
                let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("the scheme must be http or https".to_owned()));
                }
                Ok(parsed)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if gateways.is_empty() {
            return Err(ClientError::NoGateways);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .build()
            .map_err(|source| ClientError::Http {
                gateway: String::new(),
                source,
            })?;
        Ok(Self {
            http,
            gateways,
            config: ClientConfig {
                max_block_size: config.max_block_size.min(MAX_BLOCK_SIZE),
                ..config
            },
        })
    }

    /// Fetches the block `cid` (`format=raw`), verifies it and stores it.
    ///
    /// # Errors
    /// [`ClientError::UnsupportedCid`] before any request; otherwise the failing gateway's error,
    /// or [`ClientError::AllGatewaysFailed`] when several were tried. Nothing is stored on error.
    pub async fn fetch_block(
        &self,
        cid: &Cid,
        store: &Arc<Blockstore>,
    ) -> Result<Block, ClientError> {
        check_cid(cid).map_err(ClientError::UnsupportedCid)?;
        let block = self
            .with_fallback(|gateway| self.fetch_block_from(gateway, cid))
            .await?;
        let (store, stored) = (store.clone(), block.clone());
        tokio::task::spawn_blocking(move || store.put(&stored))
            .await
            .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        Ok(block)
    }

    /// Fetches the whole DAG under `root` (`format=car`, `dag-scope=all`), verifies every block
    /// and the DAG's completeness, and stores it in one transaction (pinning `root` if `pin`).
    ///
    /// # Errors
    /// As [`Self::fetch_block`]; nothing is stored on error.
    pub async fn fetch_dag(
        &self,
        root: &Cid,
        store: &Arc<Blockstore>,
        pin: bool,
    ) -> Result<DagFetch, ClientError> {
        check_cid(root).map_err(ClientError::UnsupportedCid)?;
        self.with_fallback(|gateway| self.fetch_dag_from(gateway, root, store, pin))
            .await
    }

    /// The block `cid` from `store` when it holds it, else fetched, verified and stored as
    /// [`Self::fetch_block`] does: the one way every role reads a block it may already have.
    ///
    /// # Errors
    /// [`ClientError::Store`] reading the store; otherwise as [`Self::fetch_block`].
    pub async fn local_or_fetch_block(
        &self,
        cid: &Cid,
        store: &Arc<Blockstore>,
    ) -> Result<Block, ClientError> {
        match store.get(cid)? {
            Some(block) => Ok(block),
            None => self.fetch_block(cid, store).await,
        }
    }

    /// Makes sure the DAG under `root` is in `store`: nothing to do when the store has its root
    /// (a DAG is only ever stored whole), else fetched, verified and stored as
    /// [`Self::fetch_dag`] does, pinned if `pin`. `None` when it was already there.
    ///
    /// # Errors
    /// [`ClientError::Store`] reading the store; otherwise as [`Self::fetch_dag`].
    pub async fn local_or_fetch_dag(
        &self,
        root: &Cid,
        store: &Arc<Blockstore>,
        pin: bool,
    ) -> Result<Option<DagFetch>, ClientError> {
        if store.has(root)? {
            return Ok(None);
        }
        self.fetch_dag(root, store, pin).await.map(Some)
    }

    /// Publishes `block` to the first node that takes it through Kubo's RPC
    /// (`POST /api/v0/block/put`, multipart part `file`, pinned), with the block's own codec and
    /// hash function; the node's answer must name the same CID.
    ///
    /// # Errors
    /// The failing node's error, or [`ClientError::AllGatewaysFailed`].
    pub async fn put_block(&self, block: &Block) -> Result<(), ClientError> {
        self.with_fallback(|node| self.put_block_to(node, block))
            .await
    }

    async fn put_block_to(&self, node: &reqwest::Url, block: &Block) -> Result<(), ClientError> {
        let codec = match block.codec() {
            crate::Codec::Raw => "raw",
            crate::Codec::DagPb => "dag-pb",
            crate::Codec::DagCbor => "dag-cbor",
        };
        let mhtype = if block.cid().hash().code() == crate::block::KECCAK_256 {
            "keccak-256"
        } else {
            "sha2-256"
        };
        let url = format!(
            "{}/api/v0/block/put?cid-codec={codec}&mhtype={mhtype}&pin=true",
            node.as_str().trim_end_matches('/')
        );
        // One form part, built by hand: reqwest's multipart feature would pull in a MIME
        // guesser for a body this simple.
        let boundary = format!("datacloud-{}", block.cid());
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"block\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(block.data());
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let http = |source| ClientError::Http {
            gateway: node.to_string(),
            source,
        };
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        let text = response.text().await.map_err(http)?;
        let rejected = |reason: String| ClientError::PutRejected {
            node: node.to_string(),
            reason,
        };
        if !status.is_success() {
            let excerpt: String = text.chars().take(512).collect();
            return Err(rejected(format!("HTTP {status}: {excerpt}")));
        }
        let key = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["Key"].as_str().map(str::to_owned));
        if key.as_deref() != Some(block.cid().to_string().as_str()) {
            return Err(rejected(format!(
                "acknowledged {key:?} instead of {}",
                block.cid()
            )));
        }
        Ok(())
    }

    async fn with_fallback<'a, T, F, Fut>(&'a self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(&'a reqwest::Url) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut failures = Vec::new();
        for gateway in &self.gateways {
            let limit = self.config.response_timeout;
            let answered = tokio::time::timeout(limit, attempt(gateway))
                .await
                .unwrap_or_else(|_| {
                    Err(ClientError::TooSlow {
                        gateway: gateway.to_string(),
                        limit,
                    })
                });
            match answered {
                Ok(value) => return Ok(value),
                Err(e) if e.is_local() => return Err(e),
                Err(e) => {
                    tracing::warn!(%gateway, error = %e, "gateway failed; trying the next one");
                    failures.push(e);
                }
            }
        }
        if failures.len() == 1 {
            // Only one gateway: its error is the answer.
            return Err(failures.remove(0));
        }
        Err(ClientError::AllGatewaysFailed(failures))
    }

    fn url(gateway: &reqwest::Url, cid: &Cid, query: &str) -> String {
        format!(
            "{}/ipfs/{cid}?{query}",
            gateway.as_str().trim_end_matches('/')
        )
    }

    async fn send(
        &self,
        gateway: &reqwest::Url,
        url: String,
        accept: &'static str,
        expected: &'static str,
    ) -> Result<reqwest::Response, ClientError> {
        let name = gateway.to_string();
        let response = self
            .http
            .get(url)
            .header(header::ACCEPT, accept)
            .send()
            .await
            .map_err(|source| ClientError::Http {
                gateway: name.clone(),
                source,
            })?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ClientError::Status {
                gateway: name,
                status: response.status().as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut parts = content_type.split(';').map(str::trim);
        let media_type_ok = parts
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case(expected));
        // A CAR must be version 1 if the gateway says which (spec: MUST include it).
        let version_ok = parts.all(|p| !p.starts_with("version=") || p == "version=1");
        if !media_type_ok || !version_ok {
            return Err(ClientError::UnexpectedContentType {
                gateway: name,
                content_type,
                expected,
            });
        }
        if let Some(len) = response.content_length() {
            let limit = if expected == MEDIA_TYPE_RAW {
                self.config.max_block_size as u64
            } else {
                self.config.max_total_bytes
            };
            if len > limit {
                return Err(ClientError::TooLarge {
                    gateway: name,
                    what: "response",
                    limit,
                });
            }
        }
        Ok(response)
    }

    async fn fetch_block_from(
        &self,
        gateway: &reqwest::Url,
        cid: &Cid,
    ) -> Result<Block, ClientError> {
        let url = Self::url(gateway, cid, "format=raw");
        let mut response = self
            .send(gateway, url, MEDIA_TYPE_RAW, MEDIA_TYPE_RAW)
            .await?;
        let name = gateway.to_string();
        let mut data = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| ClientError::Http {
            gateway: name.clone(),
            source,
        })? {
            if data.len() + chunk.len() > self.config.max_block_size {
                return Err(ClientError::TooLarge {
                    gateway: name,
                    what: "block",
                    limit: self.config.max_block_size as u64,
                });
            }
            data.extend_from_slice(&chunk);
        }
        Block::verified(*cid, data).map_err(|e| match e {
            BlockError::HashMismatch { cid } => ClientError::TamperedBlock { gateway: name, cid },
            other => ClientError::UnsupportedCid(other),
        })
    }

    async fn fetch_dag_from(
        &self,
        gateway: &reqwest::Url,
        root: &Cid,
        store: &Arc<Blockstore>,
        pin: bool,
    ) -> Result<DagFetch, ClientError> {
        let url = Self::url(
            gateway,
            root,
            "format=car&dag-scope=all&car-order=dfs&car-dups=n",
        );
        let mut response = self
            .send(
                gateway,
                url,
                "application/vnd.ipld.car; version=1; order=dfs; dups=n",
                MEDIA_TYPE_CAR,
            )
            .await?;
        let name = gateway.to_string();

        // The CAR is parsed, verified and stored on a blocking thread (redb and the CAR reader
        // are synchronous); this task feeds it the body through a small bounded channel.
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let import_task = {
            let store = store.clone();
            let verifier = DagVerifier::new(*root, name.clone(), self.config.max_block_size);
            let pin = pin.then_some(*root);
            tokio::task::spawn_blocking(move || {
                verifier.import(ChannelReader::new(rx), &store, pin)
            })
        };
        let mut total = 0u64;
        let mut transport_error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    total += chunk.len() as u64;
                    if total > self.config.max_total_bytes {
                        transport_error = Some(ClientError::TooLarge {
                            gateway: name.clone(),
                            what: "response",
                            limit: self.config.max_total_bytes,
                        });
                        break;
                    }
                    if tx.send(chunk).await.is_err() {
                        // The importer stopped (it found a bad block); its error is the answer.
                        break;
                    }
                }
                Ok(None) => break,
                Err(source) => {
                    transport_error = Some(ClientError::Http {
                        gateway: name.clone(),
                        source,
                    });
                    break;
                }
            }
        }
        // Closing the channel ends the importer's input: a clean end after a complete DAG, an
        // early one (truncation) after a transport error, which then takes precedence.
        drop(tx);
        let imported = import_task
            .await
            .map_err(|e| StoreError::Io(io::Error::other(e)))?;
        if let Some(e) = transport_error {
            return Err(e);
        }
        let blocks = imported?;
        Ok(DagFetch {
            gateway: name,
            blocks,
            bytes: total,
        })
    }
}

/// Checks a CAR stream block by block against the DAG under `root`.
struct DagVerifier {
    root: Cid,
    gateway: String,
    max_block_size: usize,
    /// Linked from a received block (or the root), not received yet.
    pending: HashSet<Cid>,
    received: HashSet<Cid>,
}

impl DagVerifier {
    fn new(root: Cid, gateway: String, max_block_size: usize) -> Self {
        Self {
            root,
            gateway,
            max_block_size,
            pending: HashSet::from([root]),
            received: HashSet::new(),
        }
    }

    fn car_error(&self, e: CarError) -> ClientError {
        match e {
            CarError::Block(BlockError::HashMismatch { cid }) => ClientError::TamperedBlock {
                gateway: self.gateway.clone(),
                cid,
            },
            CarError::Block(BlockError::TooLarge { .. }) | CarError::TooLarge { .. } => {
                ClientError::TooLarge {
                    gateway: self.gateway.clone(),
                    what: "block",
                    limit: self.max_block_size as u64,
                }
            }
            source => ClientError::Car {
                gateway: self.gateway.clone(),
                source: Box::new(source),
            },
        }
    }

    /// Accepts `block` if the DAG so far links to it; `Ok(false)` for a harmless duplicate.
    fn accept(&mut self, block: &Block) -> Result<bool, ClientError> {
        if block.data().len() > self.max_block_size {
            return Err(ClientError::TooLarge {
                gateway: self.gateway.clone(),
                what: "block",
                limit: self.max_block_size as u64,
            });
        }
        let cid = *block.cid();
        if self.received.contains(&cid) {
            return Ok(false);
        }
        if !self.pending.remove(&cid) {
            return Err(ClientError::UnexpectedBlock {
                gateway: self.gateway.clone(),
                cid,
            });
        }
        self.received.insert(cid);
        let links = block_links(block).map_err(StoreError::Links)?;
        for link in links {
            if link.hash().code() != IDENTITY && !self.received.contains(&link) {
                self.pending.insert(link);
            }
        }
        Ok(true)
    }

    /// Reads, verifies and stores the CAR in one transaction; returns the blocks stored.
    fn import(
        mut self,
        reader: ChannelReader,
        store: &Blockstore,
        pin: Option<Cid>,
    ) -> Result<u64, ClientError> {
        let mut car = CarReader::new(reader).map_err(|e| self.car_error(e))?;
        if !car.roots().contains(&self.root) {
            return Err(ClientError::WrongRoot {
                gateway: self.gateway.clone(),
                found: car.roots().to_vec(),
            });
        }
        let mut failed = false;
        let blocks = std::iter::from_fn(|| {
            if failed {
                return None;
            }
            let next = match car.next_block() {
                Ok(Some(block)) => match self.accept(&block) {
                    Ok(true) => Some(Ok(block)),
                    // A duplicate: skip it and go on with the next block.
                    Ok(false) => Some(Err(None)),
                    Err(e) => Some(Err(Some(e))),
                },
                Ok(None) => match self.pending.iter().next() {
                    None => None,
                    Some(missing) => Some(Err(Some(ClientError::Incomplete {
                        gateway: self.gateway.clone(),
                        missing: *missing,
                    }))),
                },
                Err(e) => Some(Err(Some(self.car_error(e)))),
            };
            failed = matches!(next, Some(Err(Some(_))));
            next
        })
        .filter_map(|item| match item {
            Ok(block) => Some(Ok(block)),
            Err(None) => None,
            Err(Some(e)) => Some(Err(e)),
        });
        store.import_blocks(blocks, pin.as_ref())
    }
}

/// `Read` over body chunks arriving on a channel (for the blocking CAR reader).
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    const fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                // Closed channel: end of the body.
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
