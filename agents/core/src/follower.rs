//! The event follower: reads the three contracts' logs in block order from a persisted cursor,
//! waits for confirmations, and hands each event to a handler exactly once.
//!
//! The cursor is the position of the next unhandled log, `(block, log index)`. It is written
//! atomically (temporary file, fsync, rename) after every handled event and after every scanned
//! range, so a restart resumes where the last run stopped: nothing is skipped and nothing seen
//! is delivered again. The one window left is a crash after the handler returned and before
//! the cursor write: that event is delivered again after the restart, which is why handlers act
//! through the [`ActionJournal`](crate::ActionJournal) and a second delivery sends nothing.
//!
//! Reorganizations deeper than the configured confirmations are not handled (events are only
//! read once `confirmations` blocks are on top of them).

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::{
    primitives::{Address, B256},
    rpc::types::{Filter, Log},
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    ChainClient, ChainError, Deployments,
    bindings::{ContractEvent, ContractKind},
};

/// Largest cursor file read.
const MAX_CURSOR_BYTES: u64 = 4096;

/// The position of the next log to handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// Its block.
    pub block: u64,
    /// Its index in the block.
    pub log_index: u64,
}

/// The cursor file: the cursor and the deployment it belongs to.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CursorFile {
    deployments: Deployments,
    cursor: Cursor,
}

/// An event with where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainEvent {
    /// The block.
    pub block_number: u64,
    /// The log's index in the block.
    pub log_index: u64,
    /// The transaction that emitted it.
    pub transaction_hash: B256,
    /// The emitting contract's address.
    pub address: Address,
    /// The decoded event.
    pub event: ContractEvent,
}

impl ChainEvent {
    /// Its position.
    #[must_use]
    pub const fn position(&self) -> Cursor {
        Cursor {
            block: self.block_number,
            log_index: self.log_index,
        }
    }
}

/// The error a handler returns: it stops the follower, and the event is delivered again on
/// the next run.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// What an agent does with each event.
pub trait EventHandler: Send {
    /// Handles one event. Called once per event, in chain order.
    fn handle(
        &mut self,
        event: &ChainEvent,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Why the follower stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    /// The chain could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The cursor file could not be read or written.
    #[error("cursor file {path}: {source}")]
    CursorIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The cursor file is corrupt or belongs to another deployment.
    #[error("cursor file {path}: {reason}")]
    CursorInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The node returned a log that is not what was asked for, or does not decode.
    #[error("invalid log from the node: {0}")]
    InvalidLog(String),
    /// The handler failed on an event.
    #[error("handling the event at block {block}, log {log_index} failed: {source}")]
    Handler {
        /// The event's block.
        block: u64,
        /// The event's log index.
        log_index: u64,
        /// The handler's error.
        source: HandlerError,
    },
}

/// How the follower reads the chain.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// The cursor file.
    pub cursor_path: PathBuf,
    /// Blocks mined on top of an event's block before it is handled (0: at once).
    pub confirmations: u64,
    /// Wait between polls once caught up.
    pub poll_interval: Duration,
    /// Most blocks one `eth_getLogs` spans.
    pub max_block_range: u64,
}

/// Follows the three contracts' events.
#[derive(Debug)]
pub struct EventFollower {
    client: ChainClient,
    deployments: Deployments,
    config: FollowerConfig,
    cursor: Cursor,
    /// The current `eth_getLogs` span (halved when the node refuses a range as too large).
    span: u64,
}

impl EventFollower {
    /// A follower resuming from `config.cursor_path`, or starting at the deployment block when
    /// the file does not exist.
    ///
    /// # Errors
    /// [`FollowerError::CursorIo`] or [`FollowerError::CursorInvalid`] (corrupt, or written
    /// for another deployment).
    pub fn new(
        client: ChainClient,
        deployments: Deployments,
        config: FollowerConfig,
    ) -> Result<Self, FollowerError> {
        let cursor = match read_cursor(&config.cursor_path, &deployments)? {
            Some(cursor) => cursor,
            None => Cursor {
                block: deployments.deploy_block,
                log_index: 0,
            },
        };
        let span = config.max_block_range.max(1);
        Ok(Self {
            client,
            deployments,
            config,
            cursor,
            span,
        })
    }

    /// The position of the next event to handle.
    #[must_use]
    pub const fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Delivers events until `shutdown` is cancelled (then returns `Ok`) or something fails.
    /// A handler call in progress is never interrupted: shutdown takes effect between events.
    ///
    /// # Errors
    /// [`FollowerError`]; the cursor then points at the event that was not handled.
    pub async fn run<H: EventHandler>(
        &mut self,
        handler: &mut H,
        shutdown: &CancellationToken,
    ) -> Result<(), FollowerError> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let caught_up = self.poll_once(handler, shutdown).await?;
            if caught_up {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        }
    }

    /// Reads one range of confirmed blocks and delivers its events. Returns whether the
    /// follower has caught up with the confirmed head.
    ///
    /// # Errors
    /// As [`EventFollower::run`].
    pub async fn poll_once<H: EventHandler>(
        &mut self,
        handler: &mut H,
        shutdown: &CancellationToken,
    ) -> Result<bool, FollowerError> {
        let head = tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            head = self.client.block_number() => head?,
        };
        let Some(confirmed) = head.checked_sub(self.config.confirmations) else {
            return Ok(true);
        };
        if self.cursor.block > confirmed {
            return Ok(true);
        }
        let from = self.cursor.block;
        let to = confirmed.min(from.saturating_add(self.span - 1));
        let filter = Filter::new()
            .address(
                ContractKind::ALL
                    .map(|kind| self.deployments.address(kind))
                    .to_vec(),
            )
            .from_block(from)
            .to_block(to);
        let logs = tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            logs = self.client.logs(&filter) => logs,
        };
        let logs = match logs {
            Ok(logs) => logs,
            // Providers cap how much one request may return; a smaller range gets through.
            Err(ChainError::Rpc { source, .. }) if self.span > 1 && source.is_error_resp() => {
                self.span /= 2;
                tracing::warn!(%source, span = self.span, "eth_getLogs refused, narrowing the range");
                return Ok(false);
            }
            Err(err) => return Err(err.into()),
        };
        for event in self.decode(logs, from, to)? {
            if event.position() < self.cursor {
                continue; // handled before a restart
            }
            handler
                .handle(&event)
                .await
                .map_err(|source| FollowerError::Handler {
                    block: event.block_number,
                    log_index: event.log_index,
                    source,
                })?;
            self.save(Cursor {
                block: event.block_number,
                log_index: event.log_index + 1,
            })?;
            if shutdown.is_cancelled() {
                return Ok(false);
            }
        }
        self.save(Cursor {
            block: to + 1,
            log_index: 0,
        })?;
        Ok(to == confirmed)
    }

    /// Validates and decodes a `eth_getLogs` answer for blocks `from..=to`, in chain order.
    fn decode(&self, logs: Vec<Log>, from: u64, to: u64) -> Result<Vec<ChainEvent>, FollowerError> {
        let mut events = Vec::with_capacity(logs.len());
        for log in logs {
            let (Some(block_number), Some(log_index), Some(transaction_hash)) =
                (log.block_number, log.log_index, log.transaction_hash)
            else {
                return Err(FollowerError::InvalidLog(
                    "a log lacks its block number, index or transaction hash".to_owned(),
                ));
            };
            if log.removed || !(from..=to).contains(&block_number) {
                return Err(FollowerError::InvalidLog(format!(
                    "log at block {block_number} is removed or outside the requested {from}..={to}"
                )));
            }
            let address = log.address();
            let kind = self.deployments.kind_of(address).ok_or_else(|| {
                FollowerError::InvalidLog(format!("log from {address}, not one of the contracts"))
            })?;
            let event = ContractEvent::decode(kind, &log.inner).map_err(|e| {
                FollowerError::InvalidLog(format!(
                    "{kind} log at block {block_number}, index {log_index} does not decode with \
                     the committed ABI ({e}); is the deployments file for these contracts?"
                ))
            })?;
            events.push(ChainEvent {
                block_number,
                log_index,
                transaction_hash,
                address,
                event,
            });
        }
        events.sort_by_key(ChainEvent::position);
        if events
            .windows(2)
            .any(|pair| pair[0].position() == pair[1].position())
        {
            return Err(FollowerError::InvalidLog(
                "two logs at the same position".to_owned(),
            ));
        }
        Ok(events)
    }

    fn save(&mut self, cursor: Cursor) -> Result<(), FollowerError> {
        if cursor == self.cursor {
            return Ok(());
        }
        let file = CursorFile {
            deployments: self.deployments,
            cursor,
        };
        let path = &self.config.cursor_path;
        let mut json = serde_json::to_vec_pretty(&file).map_err(|e| FollowerError::CursorIo {
            path: path.clone(),
            source: e.into(),
        })?;
        json.push(b'\n');
        crate::fs::write_atomic(path, &json).map_err(|source| FollowerError::CursorIo {
            path: path.clone(),
            source,
        })?;
        self.cursor = cursor;
        Ok(())
    }
}

fn read_cursor(path: &Path, deployments: &Deployments) -> Result<Option<Cursor>, FollowerError> {
    let bytes = match crate::fs::read_bounded(path, MAX_CURSOR_BYTES) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FollowerError::CursorIo {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let invalid = |reason: String| FollowerError::CursorInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let file: CursorFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if file.deployments != *deployments {
        return Err(invalid(
            "it was written for another deployment of the contracts; remove it to follow the \
             current one from its deployment block"
                .to_owned(),
        ));
    }
    if file.cursor.block < deployments.deploy_block {
        return Err(invalid("it points before the deployment block".to_owned()));
    }
    Ok(Some(file.cursor))
}
