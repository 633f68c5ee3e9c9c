//! How a daemon retries one order's work without letting that order stall the others.
//!
//! A failure is either the order's own (a result no gateway serves, parameters that do not
//! parse, a key the seller cannot seal to, a dataset whose ciphertexts do not deserialize) or
//! the daemon's own infrastructure's (the node unreachable, its store). The first kind is tried
//! a bounded number of times and then given up, so a malicious or broken order costs the
//! daemon a few backoffs and every later order proceeds; the second kind is retried until it
//! recovers or the daemon stops, since giving up then would drop honest orders.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use alloy::primitives::U256;
use tokio_util::sync::CancellationToken;

/// The retry budget of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRetry {
    /// Tries in all for failures that are the order's own.
    pub attempts: u32,
    /// Wait before the second try.
    pub first_backoff: Duration,
    /// Longest wait between tries.
    pub max_backoff: Duration,
}

impl Default for OrderRetry {
    /// Five tries over about 30 s.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// How an order's work ended.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// It succeeded.
    Done(T),
    /// It failed through its own fault on every try: the last error.
    GaveUp(E),
    /// The daemon is stopping: the last error (the order is tried again after a restart).
    Stopped(E),
}

impl OrderRetry {
    /// Runs `op` for `order` until it succeeds, it has failed `attempts` times through the
    /// order's own fault (`is_order_fault`), or `shutdown` is cancelled while waiting to retry.
    pub async fn run<T, E, F, Fut>(
        &self,
        order: U256,
        shutdown: &CancellationToken,
        is_order_fault: impl Fn(&E) -> bool,
        mut op: F,
    ) -> Attempt<T, E>
    where
        E: Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut backoff = self.first_backoff;
        let mut order_faults = 0;
        loop {
            let error = match op().await {
                Ok(value) => return Attempt::Done(value),
                Err(error) => error,
            };
            if is_order_fault(&error) {
                order_faults += 1;
                if order_faults >= self.attempts {
                    tracing::warn!(%order, %error, attempts = order_faults, "giving the order up");
                    return Attempt::GaveUp(error);
                }
            }
            tracing::warn!(%order, %error, retry_in = ?backoff, "the order's work failed; retrying");
            tokio::select! {
                () = shutdown.cancelled() => return Attempt::Stopped(error),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const FAST: OrderRetry = OrderRetry {
        attempts: 3,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };

    #[tokio::test]
    async fn an_order_at_fault_is_given_up_after_its_attempts() {
        let tries = Cell::new(0);
        let outcome = FAST
            .run(
                U256::from(1),
                &CancellationToken::new(),
                |_: &String| true,
                || async {
                    tries.set(tries.get() + 1);
                    Err::<(), _>("the result is nowhere".to_owned())
                },
            )
            .await;
        assert!(matches!(outcome, Attempt::GaveUp(e) if e == "the result is nowhere"));
        assert_eq!(tries.get(), 3);
    }

    #[tokio::test]
    async fn infrastructure_failures_are_retried_until_they_recover() {
        let tries = Cell::new(0);
        let outcome = FAST
            .run(
                U256::from(1),
                &CancellationToken::new(),
                |e: &String| e != "node down",
                || async {
                    tries.set(tries.get() + 1);
                    if tries.get() < 10 {
                        Err("node down".to_owned())
                    } else {
                        Ok(tries.get())
                    }
                },
            )
            .await;
        assert!(matches!(outcome, Attempt::Done(10)));
    }

    #[tokio::test]
    async fn a_stopping_daemon_stops_retrying() {
        let stop = CancellationToken::new();
        stop.cancel();
        let outcome = FAST
            .run(
                U256::from(1),
                &stop,
                |_: &String| false,
                || async { Err::<(), _>("node down".to_owned()) },
            )
            .await;
        assert!(matches!(outcome, Attempt::Stopped(_)));
    }
}
