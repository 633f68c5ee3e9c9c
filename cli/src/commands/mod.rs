//! One module per subcommand: its clap `Args` and its `run`.

pub mod buyer;
pub mod common;
pub mod demo;
pub mod deploy;
pub mod devchain;
pub mod query;
pub mod seller;
pub mod store;
pub mod worker;
