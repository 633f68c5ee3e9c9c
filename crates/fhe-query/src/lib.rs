//! # datacloud-fhe-query — queries computed on TFHE ciphertexts
//!
//! A seller encrypts a table once; workers answer buyers' aggregate queries on the ciphertexts;
//! the seller decrypts only the aggregates and applies its output policy. Nobody but the seller
//! ever sees a plaintext row, and the seller sees only aggregates of the queries it serves.
//!
//! Table of contents, in the order data flows:
//! - [`schema`]: the dataset schema (TOML) — columns, types, ranges, the aggregate cube.
//! - [`ingest`]: CSV → validated [`ingest::Table`] (every bad row reported, nothing encrypted).
//! - [`synth`]: the seeded generator of Bank A-like transactions.
//! - [`keys`]: the seller's client key (mode 0600) and the published compressed server key.
//! - [`layout`]: the encrypted layout — indicators, narrow integers, squares, the cube, chunks.
//! - [`template`]: the four templates (`cohort_stats`, `histogram`, `fraud_model`,
//!   `linear_regression`) and their canonical, keccak256-hashed parameters.
//! - [`sql`]: SQL → a template query, or a refusal that says what is allowed.
//! - [`plan`]: binding and the planner (cube, indicator scan, row scan) with `explain`.
//! - [`eval`]: parallel, streaming evaluation on ciphertexts; partial results combine (their sums
//!   keep their carries for the seller: `accumulate`).
//! - [`policy`]: decryption of aggregates, minimum cohort, DP budget, confidence intervals.
//! - [`model`]: what `fraud_model` and `linear_regression` release — a naive-Bayes scoring model
//!   and an OLS fit with standard errors — computed from decrypted aggregates only.
//!
//! TFHE-rs' default parameters (`PARAM_MESSAGE_2_CARRY_2_KS_PBS`, 128-bit security) are used
//! everywhere, tests included: radix integers of 2-bit blocks.

mod accumulate;
pub mod error;
pub mod eval;
pub mod ingest;
pub mod keys;
pub mod layout;
mod mask;
pub mod model;
pub mod plan;
pub mod policy;
pub mod sample;
pub mod schema;
pub mod seeded;
pub mod sql;
pub mod synth;
pub mod template;

pub use error::{IngestError, KeyError, LayoutError, PolicyError, QueryError, SchemaError};
pub use eval::{
    EncryptedResult, combine, complete, evaluate, evaluate_chunk, evaluate_cube, evaluate_totals,
};
pub use ingest::Table;
pub use keys::{EvaluationKey, Passphrase, SellerKey};
pub use layout::{DerivedColumn, EncryptedDataset, LayoutHeader, LayoutOptions, encrypt};
pub use model::{Model, NaiveBayes, RegressionFit};
pub use plan::{Plan, PlanKind, plan, plan_with};
pub use policy::{Aggregates, BudgetLedger, Policy, ResultTable, decrypt, reference, release};
pub use sample::{SampleStatistics, sample_statistics};
pub use schema::Schema;
pub use template::{
    Aggregate, CohortStats, Filter, FraudModel, Histogram, LinearRegression, Query,
};

/// Message bits per radix block with the default parameters.
pub const BLOCK_BITS: u32 = 2;
