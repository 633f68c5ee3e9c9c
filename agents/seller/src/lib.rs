//! # datacloud-seller — the seller's side
//!
//! - [`onboard()`]: encrypt a validated table with a fresh TFHE client key, publish the dataset
//!   package ([`datacloud_package`]) into the seller's store, pack it as a CAR (the Filecoin
//!   piece), compute its `PieceCID`, register the dataset with its templates and price, and open
//!   its PDP proof set. The seller's own record of it goes to the [`SellerBook`], as pending
//!   before the first transaction: [`finish_pending`] completes an onboarding that stopped half
//!   way, sending each transaction at most once.
//! - [`Seller`]: the daemon. A proving loop keeps every proof set alive (open a period, wait out
//!   the challenge finality, prove the challenged leaves from the stored CAR, record a missed
//!   window so the next period can open), and, as an [`EventHandler`], every `ResultSubmitted`
//!   for one of its datasets is fetched, checked against the attested hash, decrypted with the
//!   client key, checked against the seller's own plaintext computation, released under the
//!   output [`Policy`] (minimum cohort, noise for the ε the order spent of the dataset's on-chain
//!   budget), sealed to the buyer's HPKE key, stored by CID and delivered on chain.
//!
//! Every transaction goes through the action journal under a key that names its purpose
//! (`(set, "prove-<epoch>")`, `(order, "deliver")`), so a restart or a repeated event never
//! sends a second one.

mod book;
mod daemon;
mod onboard;

pub use book::{OwnedDataset, PendingDataset, SellerBook};
pub use daemon::{Delivery, ProofRecord, Seller, SellerNews, SellerOptions};
pub use onboard::{OnboardOptions, Onboarded, finish_pending, onboard};

/// Why a seller step failed.
#[derive(Debug, thiserror::Error)]
pub enum SellerError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] datacloud_agent_core::ChainError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] datacloud_agent_core::JournalError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] datacloud_store::StoreError),
    /// A gateway failed or sent bad data.
    #[error(transparent)]
    Gateway(Box<datacloud_store::gateway::ClientError>),
    /// The dataset package or parameters are unusable.
    #[error(transparent)]
    Dataset(#[from] datacloud_package::PackageError),
    /// Keys failed.
    #[error(transparent)]
    Key(#[from] datacloud_fhe_query::KeyError),
    /// A ciphertext container failed.
    #[error(transparent)]
    Layout(#[from] datacloud_fhe_query::LayoutError),
    /// The query does not plan.
    #[error(transparent)]
    Query(#[from] datacloud_query::QueryError),
    /// The output policy refused the release.
    #[error(transparent)]
    Policy(#[from] datacloud_fhe_query::PolicyError),
    /// The piece could not be read or proven.
    #[error(transparent)]
    Piece(#[from] datacloud_pdp::PieceError),
    /// Sealing the result failed.
    #[error(transparent)]
    Delivery(#[from] datacloud_delivery::DeliveryError),
    /// A file of the seller's state failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Something the chain or a peer said does not add up.
    #[error("{0}")]
    Invalid(String),
}

impl From<datacloud_store::gateway::ClientError> for SellerError {
    fn from(e: datacloud_store::gateway::ClientError) -> Self {
        Self::Gateway(Box::new(e))
    }
}

impl SellerError {
    /// The failure is the order's own (a result no gateway serves, parameters or ciphertexts
    /// that do not parse, a key that cannot be sealed to, a transaction the market refuses):
    /// retrying it a bounded number of times is enough. Otherwise it is the seller's own
    /// infrastructure (the node, its store, its files), retried until it recovers.
    #[must_use]
    pub fn is_order_fault(&self) -> bool {
        match self {
            Self::Gateway(_)
            | Self::Dataset(_)
            | Self::Layout(_)
            | Self::Query(_)
            | Self::Delivery(_)
            | Self::Invalid(_) => true,
            Self::Chain(e) | Self::Journal(datacloud_agent_core::JournalError::Chain(e)) => {
                e.is_refusal()
            }
            _ => false,
        }
    }

    pub(crate) fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Self::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}
