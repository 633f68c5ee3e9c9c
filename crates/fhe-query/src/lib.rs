//! # datacloud-fhe-query — queries computed on TFHE ciphertexts
//!
//! A seller encrypts a table once; workers answer buyers' aggregate queries on the ciphertexts;
//! the seller decrypts only the aggregates and applies its output policy. Nobody but the seller
//! ever sees a plaintext row, and the seller sees only aggregates of the queries it serves.
//! What a query means and how it is planned is `datacloud-query`'s; this crate holds everything
//! that touches TFHE-rs, and the policy applied to what is decrypted.
//!
//! Table of contents, in the order data flows:
//! - [`keys`]: the seller's client key (mode 0600) and the published compressed server key.
//! - [`seeded`]: seeded, metadata-free radix ciphertexts (what every stored value is).
//! - [`encrypt`]: a table into its layout — indicators, narrow integers, squares, the cube,
//!   the totals, chunks.
//! - [`eval`]: parallel, streaming evaluation on ciphertexts; partial results combine (their sums
//!   keep their carries for the seller: `accumulate`).
//! - [`decrypt`]: a worker's encrypted result into aggregates, with the seller's key.
//! - [`check`]: the seller's plaintext rows, and the check that a decrypted result is the
//!   order's computation before anything of it is released.
//! - [`differencing`]: the seller's refusal of a query whose rows differ from an answered
//!   one's in fewer than the minimum cohort.
//! - [`policy`]: minimum cohort, DP noise for the order's ε, confidence intervals that account
//!   for it.
//! - [`noise`]: the discrete Laplace mechanism, sampled exactly from uniform integers.
//! - [`result`]: the released table and its rendering.
//! - [`model`]: what `fraud_model` and `linear_regression` release — a naive-Bayes scoring model
//!   and an OLS fit with standard errors — computed from decrypted aggregates only.
//! - [`sample`]: the sample statistics a manifest publishes, under ε-differential privacy.
//!
//! TFHE-rs' default parameters (`PARAM_MESSAGE_2_CARRY_2_KS_PBS`, 128-bit security) are used
//! everywhere, tests included: radix integers of 2-bit blocks ([`datacloud_query::BLOCK_BITS`]).

mod accumulate;
pub mod check;
pub mod decrypt;
pub mod differencing;
pub mod encrypt;
pub mod error;
pub mod eval;
pub mod keys;
mod mask;
pub mod model;
pub mod noise;
pub mod policy;
pub mod result;
pub mod sample;
pub mod seeded;

pub use check::{load_rows, open_result, save_rows};
pub use decrypt::decrypt;
pub use differencing::{Answered, DifferencingError};
pub use encrypt::{EncryptedDataset, encrypt};
pub use error::{CheckError, KeyError, LayoutError, PolicyError};
pub use eval::{
    EncryptedResult, combine, complete, evaluate, evaluate_chunk, evaluate_cube, evaluate_totals,
};
pub use keys::{EvaluationKey, Passphrase, SellerKey};
pub use model::{Model, NaiveBayes, RegressionFit};
pub use policy::{Policy, release};
pub use result::ResultTable;
pub use sample::{SampleStatistics, sample_statistics};
