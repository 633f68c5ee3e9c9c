//! The chain client: alloy's JSON-RPC provider over HTTP, a local signer, and retries.
//!
//! Transient failures (the node unreachable, a timeout, HTTP 5xx or 429) are retried with
//! exponential backoff; everything the node *answered* (a revert, a refused transaction, a bad
//! request) is returned at once, since asking again would get the same answer.
//!
//! Transactions are signed here (nonce, gas and fees filled from the node) and broadcast as raw
//! bytes, so that a retry after a lost response re-sends the *same* transaction, which the node
//! recognizes, instead of a second one.

use std::{future::Future, sync::Arc, time::Duration};

use alloy::{
    consensus::TxEnvelope,
    contract::{CallBuilder, CallDecoder},
    eips::eip2718::Encodable2718,
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, B256, Bytes},
    providers::{Provider, RootProvider},
    rpc::{
        client::RpcClient,
        types::{Filter, Log, TransactionReceipt, TransactionRequest},
    },
    transports::{TransportError, TransportErrorKind, http::reqwest},
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};
use url::Url;

use crate::{Config, bindings::describe_revert};

/// How long one HTTP request may take before it counts as a (transient) failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a broadcast transaction's receipt.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_mins(5);
/// Gas margin over the node's estimate, in percent.
const GAS_MARGIN_PERCENT: u64 = 10;

/// Retries of transient RPC failures: `max_attempts` tries in all, waiting `initial_backoff`,
/// then twice as long each time, at most `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node refused the request, or stayed unreachable through every retry.
    #[error("{what} failed after {attempts} attempt(s): {source}")]
    Rpc {
        /// The operation.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        source: TransportError,
    },
    /// The call or transaction reverted.
    #[error("{what} reverted: {reason}")]
    Reverted {
        /// The operation.
        what: String,
        /// The decoded custom error, or the raw data.
        reason: String,
        /// The revert data, when the node gave it.
        data: Option<Bytes>,
    },
    /// A mined transaction failed (status 0).
    #[error("{what}: transaction {tx_hash} was mined but failed (status 0)")]
    Failed {
        /// The operation.
        what: String,
        /// The transaction.
        tx_hash: B256,
    },
    /// The endpoint serves another chain than configured.
    #[error(
        "the node at {url} reports chain id {actual}, but the configuration expects {expected}; \
         point rpc_url at the right node or set chain_id"
    )]
    WrongChain {
        /// The endpoint.
        url: Url,
        /// Configured chain id.
        expected: u64,
        /// Reported chain id.
        actual: u64,
    },
    /// No receipt came within [`RECEIPT_TIMEOUT`].
    #[error("{what}: no receipt for {tx_hash} after {waited:?}")]
    ReceiptTimeout {
        /// The operation.
        what: String,
        /// The transaction.
        tx_hash: B256,
        /// How long we waited.
        waited: Duration,
    },
    /// Signing, or a contract call's encoding or decoding, failed locally.
    #[error("{what}: {message}")]
    Local {
        /// The operation.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The node answered something impossible (a receipt without a block, …).
    #[error("{what}: the node's answer is invalid: {message}")]
    InvalidAnswer {
        /// The operation.
        what: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ChainError {
    /// The revert data, if this is a revert that carried some.
    #[must_use]
    pub fn revert_data(&self) -> Option<&Bytes> {
        match self {
            Self::Reverted { data, .. } => data.as_ref(),
            _ => None,
        }
    }

    /// The chain answered no (a revert, a mined failure): asking again against the same state
    /// gets the same answer, unlike a node that could not be reached.
    #[must_use]
    pub const fn is_refusal(&self) -> bool {
        matches!(self, Self::Reverted { .. } | Self::Failed { .. })
    }
}

/// Whether asking again may succeed: the node could not be reached or was overloaded, as opposed
/// to an answer from it.
#[must_use]
pub fn is_transient(err: &TransportError) -> bool {
    match err {
        TransportError::Transport(kind) => match kind {
            TransportErrorKind::HttpError(http) => http.status >= 500 || http.status == 429,
            // Connection refused or reset, DNS, timeouts: reqwest's errors arrive as `Custom`.
            TransportErrorKind::Custom(_)
            | TransportErrorKind::BackendGone
            | TransportErrorKind::MissingBatchResponse(_) => true,
            _ => false,
        },
        // An answer: a revert, a refused transaction, a malformed request.
        _ => false,
    }
}

fn classify(what: &str, attempts: u32, err: TransportError) -> ChainError {
    if let Some(payload) = err.as_error_resp() {
        // Code 3 is "execution reverted" (geth, Nitro, Hardhat automine, the devchain).
        let data = payload.as_revert_data();
        if payload.code == 3 || data.is_some() {
            let reason = data
                .as_ref()
                .map_or_else(|| payload.message.to_string(), describe_revert);
            return ChainError::Reverted {
                what: what.to_owned(),
                reason,
                data,
            };
        }
    }
    ChainError::Rpc {
        what: what.to_owned(),
        attempts,
        source: err,
    }
}

/// A transaction signed once, kept so that it can be re-sent byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// Its hash.
    pub hash: B256,
    /// Its EIP-2718 encoding, as `eth_sendRawTransaction` takes it.
    pub raw: Bytes,
    /// Its nonce.
    pub nonce: u64,
}

/// A connected, signing chain client. Cheap to clone; clones share the nonce lock.
#[derive(Debug, Clone)]
pub struct ChainClient {
    provider: RootProvider,
    wallet: EthereumWallet,
    address: Address,
    chain_id: u64,
    url: Url,
    retry: RetryPolicy,
    poll_interval: Duration,
    /// Held from choosing a nonce until the signed transaction is broadcast, so that two
    /// transactions of this client never get the same nonce.
    send_lock: Arc<Mutex<()>>,
}

impl ChainClient {
    /// Connects to `config.rpc_url` with `config`'s key, and checks the chain id.
    ///
    /// # Errors
    /// [`ChainError::Rpc`] if the node cannot be reached (after retries),
    /// [`ChainError::WrongChain`] if it serves another chain.
    pub async fn connect(config: &Config) -> Result<Self, ChainError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ChainError::Local {
                what: "building the HTTP client".to_owned(),
                message: e.to_string(),
            })?;
        let provider = RootProvider::new(RpcClient::new_http_with_client(
            http,
            config.rpc_url.clone(),
        ));
        let signer = config.signer();
        let address = signer.address();
        let mut client = Self {
            provider,
            wallet: EthereumWallet::from(signer),
            address,
            chain_id: config.chain_id,
            url: config.rpc_url.clone(),
            retry: config.retry,
            poll_interval: config.poll_interval,
            send_lock: Arc::new(Mutex::new(())),
        };
        let actual = client
            .with_retry("eth_chainId", || client.provider.get_chain_id())
            .await?;
        if actual != config.chain_id {
            return Err(ChainError::WrongChain {
                url: client.url,
                expected: config.chain_id,
                actual,
            });
        }
        client.chain_id = actual;
        Ok(client)
    }

    /// The underlying provider, for contract bindings (`IQueryMarket::new(addr, client.provider())`).
    #[must_use]
    pub const fn provider(&self) -> &RootProvider {
        &self.provider
    }

    /// The signer's address.
    #[must_use]
    pub const fn address(&self) -> Address {
        self.address
    }

    /// The chain id (checked against the node at connect).
    #[must_use]
    pub const fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The endpoint.
    #[must_use]
    pub const fn url(&self) -> &Url {
        &self.url
    }

    /// The poll interval of receipt waits and the follower.
    #[must_use]
    pub const fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// Runs `op`, retrying transient failures with exponential backoff.
    ///
    /// # Errors
    /// The first non-transient error, or the last transient one when attempts run out.
    pub async fn with_retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ChainError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let mut backoff = self.retry.initial_backoff;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if is_transient(&err) && attempt < self.retry.max_attempts => {
                    tracing::warn!(%err, attempt, ?backoff, "{what}: transient RPC failure, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                Err(err) => return Err(classify(what, attempt, err)),
            }
        }
    }

    /// A contract view call (`client.view("minStake", &registry.minStake())`), retried like
    /// any RPC.
    ///
    /// # Errors
    /// [`ChainError::Reverted`] with the decoded custom error, [`ChainError::Rpc`], or
    /// [`ChainError::Local`] if the answer does not decode.
    pub async fn view<P, D>(
        &self,
        what: &str,
        call: &CallBuilder<P, D>,
    ) -> Result<D::CallOutput, ChainError>
    where
        P: Provider,
        D: CallDecoder,
    {
        // Contract errors other than transport ones are local (encoding/decoding): not retried.
        let result = self
            .with_retry(what, || async {
                match call.call().await {
                    Ok(value) => Ok(Ok(value)),
                    Err(alloy::contract::Error::TransportError(err)) => Err(err),
                    Err(other) => Ok(Err(other.to_string())),
                }
            })
            .await?;
        result.map_err(|message| ChainError::Local {
            what: what.to_owned(),
            message,
        })
    }

    /// The latest block number.
    ///
    /// # Errors
    /// [`ChainError::Rpc`].
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.with_retry("eth_blockNumber", || self.provider.get_block_number())
            .await
    }

    /// The code at `address`.
    ///
    /// # Errors
    /// [`ChainError::Rpc`].
    pub async fn code_at(&self, address: Address) -> Result<Bytes, ChainError> {
        self.with_retry("eth_getCode", || async {
            self.provider.get_code_at(address).await
        })
        .await
    }

    /// Logs matching `filter`.
    ///
    /// # Errors
    /// [`ChainError::Rpc`] (a node refusing a too-large range answers; that is not retried).
    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, ChainError> {
        self.with_retry("eth_getLogs", || self.provider.get_logs(filter))
            .await
    }

    /// Takes the nonce lock; hold it from [`ChainClient::sign`] until the broadcast.
    pub async fn send_lock(&self) -> MutexGuard<'_, ()> {
        self.send_lock.lock().await
    }

    /// Fills `tx` (sender, chain id, nonce, gas with a margin, EIP-1559 fees) and signs it.
    /// `_held` proves the caller holds [`ChainClient::send_lock`] until it broadcasts.
    ///
    /// # Errors
    /// [`ChainError::Reverted`] when gas estimation reverts (nothing is signed then),
    /// [`ChainError::Rpc`], or [`ChainError::Local`] if signing fails.
    pub async fn sign(
        &self,
        _held: &MutexGuard<'_, ()>,
        what: &str,
        tx: TransactionRequest,
    ) -> Result<SignedTransaction, ChainError> {
        let tx = tx.with_from(self.address).with_chain_id(self.chain_id);
        let nonce = self
            .with_retry(what, || async {
                self.provider
                    .get_transaction_count(self.address)
                    .pending()
                    .await
            })
            .await?;
        let gas = self
            .with_retry(what, || async {
                self.provider.estimate_gas(tx.clone()).await
            })
            .await?;
        let fees = self
            .with_retry(what, || self.provider.estimate_eip1559_fees())
            .await?;
        let tx = tx
            .with_nonce(nonce)
            .with_gas_limit(gas.saturating_add(gas / 100 * GAS_MARGIN_PERCENT))
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope: TxEnvelope = tx
            .build(&self.wallet)
            .await
            .map_err(|e| ChainError::Local {
                what: what.to_owned(),
                message: format!("signing failed: {e}"),
            })?;
        Ok(SignedTransaction {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718().into(),
            nonce,
        })
    }

    /// Broadcasts `signed`. Sending it again is harmless: a node that already has it is
    /// answered from its own records.
    ///
    /// # Errors
    /// [`ChainError::Reverted`] when the node mined it and it reverted (automining nodes say so
    /// at once), [`ChainError::Rpc`] when the node refuses it.
    pub async fn broadcast(
        &self,
        what: &str,
        signed: &SignedTransaction,
    ) -> Result<(), ChainError> {
        let result = self
            .with_retry(what, || async {
                self.provider
                    .send_raw_transaction(&signed.raw)
                    .await
                    .map(|_| ())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(err @ ChainError::Reverted { .. }) => Err(err),
            Err(err) => {
                // "already known" / "nonce too low" after an earlier attempt got through:
                // the node has our transaction, which is all a broadcast must achieve.
                let known = self
                    .with_retry(what, || async {
                        self.provider.get_transaction_by_hash(signed.hash).await
                    })
                    .await?;
                if known.is_some() { Ok(()) } else { Err(err) }
            }
        }
    }

    /// Waits for the receipt of `tx_hash`, polling every [`Config::poll_interval`].
    ///
    /// # Errors
    /// [`ChainError::ReceiptTimeout`] after [`RECEIPT_TIMEOUT`], or [`ChainError::Rpc`].
    pub async fn wait_receipt(
        &self,
        what: &str,
        tx_hash: B256,
    ) -> Result<TransactionReceipt, ChainError> {
        let started = tokio::time::Instant::now();
        loop {
            let receipt = self
                .with_retry(what, || self.provider.get_transaction_receipt(tx_hash))
                .await?;
            if let Some(receipt) = receipt {
                if receipt.block_number.is_none() {
                    return Err(ChainError::InvalidAnswer {
                        what: what.to_owned(),
                        message: format!("receipt of {tx_hash} has no block number"),
                    });
                }
                return Ok(receipt);
            }
            if started.elapsed() >= RECEIPT_TIMEOUT {
                return Err(ChainError::ReceiptTimeout {
                    what: what.to_owned(),
                    tx_hash,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Signs, broadcasts and waits for `tx`; a mined failure is an error.
    ///
    /// # Errors
    /// As [`ChainClient::sign`], [`ChainClient::broadcast`], [`ChainClient::wait_receipt`], and
    /// [`ChainError::Failed`] for status 0.
    pub async fn send(
        &self,
        what: &str,
        tx: TransactionRequest,
    ) -> Result<TransactionReceipt, ChainError> {
        let signed = {
            let held = self.send_lock().await;
            let signed = self.sign(&held, what, tx).await?;
            self.broadcast(what, &signed).await?;
            signed
        };
        tracing::debug!(tx = %signed.hash, nonce = signed.nonce, "{what}: sent");
        let receipt = self.wait_receipt(what, signed.hash).await?;
        if !receipt.status() {
            return Err(ChainError::Failed {
                what: what.to_owned(),
                tx_hash: signed.hash,
            });
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use alloy::transports::HttpError;

    use super::*;

    #[test]
    fn only_unreachable_or_overloaded_nodes_are_retried() {
        let http = |status| {
            TransportError::Transport(TransportErrorKind::HttpError(HttpError {
                status,
                body: String::new(),
            }))
        };
        assert!(is_transient(&http(502)));
        assert!(is_transient(&http(429)));
        assert!(!is_transient(&http(400)));
        assert!(is_transient(&TransportErrorKind::custom_str(
            "connection refused"
        )));
        let revert: TransportError = TransportError::ErrorResp(
            serde_json::from_str(r#"{"code":3,"message":"execution reverted","data":"0x"}"#)
                .unwrap(),
        );
        assert!(!is_transient(&revert));
        assert!(matches!(
            classify("x", 1, revert),
            ChainError::Reverted { .. }
        ));
    }
}
