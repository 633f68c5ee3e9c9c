//! Prints the contract's Solidity interface (`cargo run -p datacloud-query-market --features export-abi`)
//! with its events, which `export-abi` leaves out: they are spliced in from src/events.sol, the
//! file the contract's own `sol!` reads, so the printed interface and the code cannot disagree.

use std::fmt;

use datacloud_query_market::QueryMarket;
use stylus_sdk::abi::{GenerateAbi, export};

/// The declarations the contract emits, exactly as it compiles them.
const EVENTS: &str = include_str!("events.sol");

/// The interface as `export-abi` writes it (`interface IQueryMarket { … }`).
struct Exported;

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        <QueryMarket as GenerateAbi>::fmt_abi(f)
    }
}

/// Inserts each event of `events` (blocks of lines separated by blank lines; the leading `//`
/// header is skipped) right after the interface's opening brace, indented and spaced as
/// `export-abi` writes its own items (`"\n    item;\n"`). `None` if there is no opening brace.
fn with_events(interface: &str, events: &str) -> Option<String> {
    let body = events.lines().skip_while(|line| {
        line.trim().is_empty() || (line.starts_with("//") && !line.starts_with("///"))
    });
    let mut items = String::new();
    let mut in_item = false;
    for line in body {
        if line.trim().is_empty() {
            in_item = false;
            continue;
        }
        if !in_item {
            items.push('\n');
            in_item = true;
        }
        items.push_str("    ");
        items.push_str(line);
        items.push('\n');
    }
    // `export-abi` opens the interface body with the first `{` it prints (names hold no braces).
    let (head, rest) = interface.split_at(interface.find('{')? + 1);
    Some(format!("{head}{items}{rest}"))
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
