//! # datacloud-agent-core — what every DataCloud agent shares
//!
//! Agents are thin daemons over this crate: they read a [`Config`], connect a [`ChainClient`],
//! find the contracts in a [`Deployments`] file, follow contract events from a persisted cursor
//! ([`follower`]) and act on them idempotently ([`ActionJournal`]), until a
//! [`CancellationToken`](tokio_util::sync::CancellationToken) asks them to stop ([`run`]).
//!
//! Table of contents:
//! - [`bindings`]: `alloy::sol!` bindings generated from the committed `contracts/*/abi/I*.sol`,
//!   and [`ContractEvent`], a decoded log of any of the three contracts.
//! - [`config`]: [`Config`] from defaults, a TOML file, `DATACLOUD_*` variables and overrides.
//! - [`client`]: [`ChainClient`], alloy over HTTP with a local signer, retrying transient RPC
//!   failures with exponential backoff (never reverts).
//! - [`stylus`]: Stylus deployment format (compressed program code, init-code prelude).
//! - [`deploy`]: deploy, activate and initialize the three contracts ([`deploy()`]).
//! - [`deployments`]: the deployments file others read ([`Deployments`]).
//! - [`follower`]: the event follower and its cursor.
//! - [`journal`]: the action journal: one transaction per `(order, step)`, ever.
//! - [`protocol`]: the typed view of orders, datasets and proof sets ([`Protocol`]): every
//!   contract tuple is decoded there and nowhere else.
//! - [`agent`]: [`run`], the daemon loop with graceful shutdown.
//! - [`retry`]: one order's retries, bounded for the order's own faults ([`OrderRetry`]).
//! - [`fs`]: atomic writes and bounded reads.
//! - [`progress`]: the progress bar of long work.
//! - `testing` (feature `testing`): a served devchain with the contracts deployed, for tests.

pub mod agent;
pub mod bindings;
pub mod client;
pub mod config;
pub mod deploy;
pub mod deployments;
pub mod follower;
pub mod fs;
pub mod journal;
pub mod progress;
pub mod protocol;
pub mod retry;
pub mod stylus;
#[cfg(feature = "testing")]
pub mod testing;

pub use agent::{Agent, AgentError, run, shutdown_on_signals};
pub use bindings::{ContractEvent, ContractKind};
pub use client::{ChainClient, ChainError, RetryPolicy};
pub use config::{Config, ConfigError, ConfigOverrides};
pub use deploy::{ContractsWasm, DeployError, DeployParams, deploy};
pub use deployments::{Deployments, DeploymentsError};
pub use follower::{
    ChainEvent, Cursor, EventFollower, EventHandler, FollowerConfig, FollowerError,
};
pub use journal::{ActionJournal, ActionKey, ActionOutcome, JournalError};
pub use protocol::{
    Dataset, Dispute, Epsilon, Health, MarketConfig, Order, OrderStatus, OrderWork, PBS_PER_SECOND,
    PrivacyBudget, ProofSet, Protocol, claim_window, delivery_digest, market_domain,
};
pub use retry::{Attempt, OrderRetry};
