//! Typed errors, one enum per stage, each saying what to do next.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(
        "{0} has mode {1:o}; a client key or the seller's rows must be readable by their owner only (chmod 600)"
    )]
    Permissions(String, u32),
    #[error("private file is {0} bytes, over the limit")]
    TooLarge(u64),
    #[error("not a valid key: {0}")]
    Deserialize(String),
    #[error("serializing a key: {0}")]
    Serialize(String),
    #[error("{0} is sealed with a passphrase, and none was given")]
    PassphraseRequired(String),
    #[error("sealed key: {0}")]
    Sealed(String),
}

/// Encrypted data that does not match its layout (corrupt or hostile input).
#[derive(Debug, Error)]
pub enum LayoutError {
    #[error("ciphertext data: {0}")]
    Deserialize(String),
    #[error("serializing ciphertexts: {0}")]
    Serialize(String),
    #[error("ciphertext data does not match the layout: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Plan(#[from] datacloud_query::QueryError),
    #[error(transparent)]
    Header(#[from] datacloud_query::HeaderError),
}

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("invalid policy: {0}")]
    Invalid(String),
}

/// Why the seller releases nothing of a worker's result: what it decrypted is not the
/// computation the order paid for (audit C-1), or the seller cannot tell.
#[derive(Debug, Error)]
pub enum CheckError {
    #[error("the seller's plaintext rows: {0}")]
    Rows(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the decrypted result is not the order's computation: {0}")]
    NotTheComputation(String),
}
