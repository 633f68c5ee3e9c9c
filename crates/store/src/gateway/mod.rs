//! The IPFS trustless gateway (ipfs/specs `http-gateways/trustless-gateway.md`): a server that
//! answers `GET`/`HEAD /ipfs/{cid}[/{path}]` with verifiable raw blocks or CAR streams from a
//! [`Blockstore`](crate::Blockstore), and a client that fetches blocks and DAGs from one or more
//! gateways, trusting none of them: every block is checked against its CID before anything is
//! stored.
//!
//! - [`request`]: what a request asks for (`format`, `Accept`, `dag-scope`, `entity-bytes`, CAR
//!   `version`, `order` and `dups`), negotiated once into a [`request::ResponseFormat`].
//! - [`server`]: the axum router and [`serve`].
//! - [`client`]: [`Client`], with fallback across gateways and typed [`ClientError`]s.

pub mod client;
pub mod request;
pub mod server;

pub use client::{Client, ClientConfig, ClientError, DagFetch};
pub use request::{DagScope, ResponseFormat};
pub use server::{GatewayConfig, router, serve, serve_with_config};

/// Media type of a single raw block.
pub const MEDIA_TYPE_RAW: &str = "application/vnd.ipld.raw";
/// Media type of a CAR stream.
pub const MEDIA_TYPE_CAR: &str = "application/vnd.ipld.car";
/// `Cache-Control` for every immutable `/ipfs/` response (path-gateway spec: MUST).
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=29030400, immutable";
/// The identity CID of empty data: the spec's probe path `/ipfs/bafkqaaa`.
pub const PROBE_CID: &str = "bafkqaaa";
