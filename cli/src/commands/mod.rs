//! One module per subcommand: its clap `Args` and its `run`.

pub mod demo;
pub mod deploy;
pub mod devchain;
pub mod query;
pub mod store;
