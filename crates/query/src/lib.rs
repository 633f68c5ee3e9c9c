//! # datacloud-query — what a query means, before any ciphertext
//!
//! The query front end of DataCloud's encrypted engine, with nothing of TFHE in it: the seller
//! declares a schema, the buyer asks in SQL, the planner binds the query to the dataset's
//! published layout and prices its plans in bootstraps. It builds for `wasm32-unknown-unknown`,
//! so a web page can show a plan and its cost before the buyer pays. `datacloud-fhe-query`
//! encrypts, evaluates and decrypts on top of it.
//!
//! Table of contents, in the order data flows:
//! - [`schema`]: the dataset schema (TOML) — columns, types, ranges, the aggregate cube.
//! - [`ingest`]: CSV → validated [`ingest::Table`] (every bad row reported).
//! - [`synth`]: the seeded generator of Bank A-like transactions.
//! - [`layout`]: the encrypted layout's public header — block widths, derived columns, the cube.
//! - [`template`]: the four templates (`cohort_stats`, `histogram`, `fraud_model`,
//!   `linear_regression`) and their canonical, keccak256-hashed parameters.
//! - [`sql`]: SQL → a template query, or a refusal that says what is allowed.
//! - [`plan`]: binding and the planner (totals, cube, indicator scan, row scan) with `explain`.
//! - [`reference`]: the plaintext computation every encrypted plan must match exactly.

pub mod error;
pub mod ingest;
pub mod layout;
pub mod plan;
pub mod reference;
pub mod schema;
pub mod sql;
pub mod synth;
pub mod template;

pub use error::{HeaderError, IngestError, QueryError, SchemaError};
pub use ingest::Table;
pub use layout::{DerivedColumn, LayoutHeader, LayoutOptions};
pub use plan::{Plan, PlanKind, plan, plan_with};
pub use reference::{Aggregates, reference};
pub use schema::Schema;
pub use template::{
    Aggregate, CohortStats, Filter, FraudModel, Histogram, LinearRegression, Query,
};

/// Message bits per radix block with TFHE-rs' default parameters (`PARAM_MESSAGE_2_CARRY_2`):
/// the unit every width in a layout is counted in.
pub const BLOCK_BITS: u32 = 2;
