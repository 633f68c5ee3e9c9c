//! The daemon shape every agent shares: [`run`] connects, follows events with a handler until
//! the [`CancellationToken`] is cancelled, and returns once every task it tracked has finished.
//! A binary's `main` is [`shutdown_on_signals`] plus `run`.

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    ActionJournal, ChainClient, ChainError, Config, Deployments, DeploymentsError, EventFollower,
    EventHandler, FollowerConfig, FollowerError, JournalError, bindings::ContractKind,
};

/// Why an agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The chain could not be reached or used.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The deployments file is missing or invalid.
    #[error(transparent)]
    Deployments(#[from] DeploymentsError),
    /// The deployments file does not match the chain.
    #[error("deployments file {path}: {reason}")]
    StaleDeployments {
        /// The file.
        path: std::path::PathBuf,
        /// What does not match, and what to do.
        reason: String,
    },
    /// The action journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The follower stopped on an error.
    #[error(transparent)]
    Follower(#[from] FollowerError),
    /// A tracked task panicked.
    #[error("the event follower task panicked")]
    Panicked,
}

/// A connected agent: what its handler works with.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The configuration.
    pub config: Config,
    /// The chain client.
    pub client: ChainClient,
    /// Where the contracts are.
    pub deployments: Deployments,
    /// The action journal (`<data_dir>/<name>.journal.redb`).
    pub journal: ActionJournal,
    /// Tasks the handler starts go here: [`run`] waits for them before returning.
    pub tasks: TaskTracker,
    /// Cancelled when the agent stops; tracked tasks watch it.
    pub shutdown: CancellationToken,
    name: String,
}

impl Agent {
    /// The typed view of the protocol's state, read through this agent's client.
    #[must_use]
    pub const fn protocol(&self) -> crate::Protocol<'_> {
        crate::Protocol::new(&self.client, &self.deployments)
    }

    /// Connects agent `name` (which names its cursor and journal files): checks the chain id,
    /// reads the deployments file and checks the contracts are on this chain.
    ///
    /// # Errors
    /// [`AgentError`] telling what is missing (no node, no deployments, a reset devchain).
    pub async fn connect(
        config: Config,
        name: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, AgentError> {
        let client = ChainClient::connect(&config).await?;
        let deployments = Deployments::read(&config.deployments)?;
        let stale = |reason: String| AgentError::StaleDeployments {
            path: config.deployments.clone(),
            reason,
        };
        if deployments.chain_id != client.chain_id() {
            return Err(stale(format!(
                "written for chain {}, but the node serves chain {}",
                deployments.chain_id,
                client.chain_id()
            )));
        }
        for kind in ContractKind::ALL {
            let address = deployments.address(kind);
            if client.code_at(address).await?.is_empty() {
                return Err(stale(format!(
                    "no {kind} code at {address} (was the devchain restarted?); run `datacloud deploy`"
                )));
            }
        }
        let journal = ActionJournal::open(&config.data_dir.join(format!("{name}.journal.redb")))?;
        Ok(Self {
            config,
            client,
            deployments,
            journal,
            tasks: TaskTracker::new(),
            shutdown,
            name: name.to_owned(),
        })
    }

    /// The event follower of this agent (`<data_dir>/<name>.cursor.json`).
    ///
    /// # Errors
    /// [`FollowerError`] for an unreadable or foreign cursor file.
    pub fn follower(&self) -> Result<EventFollower, FollowerError> {
        EventFollower::new(
            self.client.clone(),
            self.deployments,
            FollowerConfig {
                cursor_path: self
                    .config
                    .data_dir
                    .join(format!("{}.cursor.json", self.name)),
                confirmations: self.config.confirmations,
                poll_interval: self.config.poll_interval,
                max_block_range: self.config.max_log_block_range,
            },
        )
    }
}

/// Runs agent `name`: connects, builds the handler with `make_handler`, and follows events
/// until `shutdown` is cancelled. Returns after the follower and every task in
/// [`Agent::tasks`] have finished; when the follower fails, the tracked tasks are cancelled
/// first (through a child of `shutdown`, which the caller's token does not see).
///
/// # Errors
/// [`AgentError`].
pub async fn run<H, F>(
    config: Config,
    name: &str,
    shutdown: CancellationToken,
    make_handler: F,
) -> Result<(), AgentError>
where
    H: EventHandler + 'static,
    F: FnOnce(&Agent) -> H,
{
    let stop = shutdown.child_token();
    let agent = Agent::connect(config, name, stop.clone()).await?;
    let mut follower = agent.follower()?;
    let mut handler = make_handler(&agent);
    tracing::info!(agent = name, cursor = ?follower.cursor(), "following contract events");
    let token = stop.clone();
    let follow = agent
        .tasks
        .spawn(async move { follower.run(&mut handler, &token).await });
    let result = follow.await;
    stop.cancel();
    agent.tasks.close();
    agent.tasks.wait().await;
    tracing::info!(agent = name, "stopped");
    match result {
        Ok(result) => result.map_err(AgentError::from),
        Err(_) => Err(AgentError::Panicked),
    }
}

/// Cancels `shutdown` on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed before this
/// returns, so a signal that arrives right after (say, once a banner is printed) is never lost to
/// the default action; the listening task ends as soon as `shutdown` is cancelled, by a signal or
/// otherwise, so it never outlives the shutdown. Must be called within a Tokio runtime.
pub fn shutdown_on_signals(shutdown: &CancellationToken) {
    let shutdown = shutdown.clone();
    let signals = Signals::install();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = signals.received() => {
                tracing::info!("shutdown requested");
                shutdown.cancel();
            }
        }
    });
}

/// SIGINT and SIGTERM listeners, registered when built (Ctrl-C only where there are no Unix
/// signals).
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| match signal(kind) {
            Ok(listener) => Some(listener),
            Err(err) => {
                tracing::warn!(%err, ?kind, "cannot listen for a signal");
                None
            }
        };
        Self {
            interrupt: listen(SignalKind::interrupt()),
            terminate: listen(SignalKind::terminate()),
        }
    }

    #[cfg(not(unix))]
    fn install() -> Self {
        Self {}
    }

    #[cfg(unix)]
    async fn received(mut self) {
        async fn next(listener: Option<&mut tokio::signal::unix::Signal>) {
            match listener {
                Some(listener) => {
                    listener.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = next(self.interrupt.as_mut()) => {}
            () = next(self.terminate.as_mut()) => {}
        }
    }

    #[cfg(not(unix))]
    async fn received(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
