//! Prints the contract's Solidity interface (`cargo run -p datacloud-query-market --features export-abi`)
//! with its events, which `export-abi` leaves out: they are spliced in from src/events.sol, the
//! file the contract's own `sol!` reads, so the printed interface and the code cannot disagree.

use std::fmt;

use datacloud_query_market::QueryMarket;
use stylus_sdk::abi::{GenerateAbi, export};

// The splicing is the same for the three contracts: one file, included by each export-abi binary.
#[path = "../../export_abi_events.rs"]
mod export_abi_events;
use export_abi_events::with_events;

/// The declarations the contract emits, exactly as it compiles them.
const EVENTS: &str = include_str!("events.sol");

/// The interface as `export-abi` writes it (`interface IQueryMarket { … }`).
struct Exported;

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        <QueryMarket as GenerateAbi>::fmt_abi(f)
    }
}

fn main() {
    export::handle_license_and_pragma();
    let exported = Exported.to_string();
    let Some(interface) = with_events(&exported, EVENTS) else {
        eprintln!("error: export-abi printed no interface body:\n{exported}");
        std::process::exit(1);
    };
    print!("{interface}");
}
