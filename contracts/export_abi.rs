//! The three contracts' `export-abi` binaries (`src/main.rs`, each including this file): print the
//! contract's Solidity interface with its events, which `export-abi` leaves out. They are spliced
//! in from `src/events.sol`, the file the contract's own `sol!` reads, so the printed interface
//! and the code cannot disagree.

use std::fmt;

use stylus_sdk::abi::{GenerateAbi, export};

/// Prints contract `C`'s interface with `events` (its `src/events.sol`) spliced in; exits 1 if
/// `export-abi` printed no interface body.
pub fn print_interface<C: GenerateAbi>(events: &str) {
    /// The interface as `export-abi` writes it (`interface IName { … }`).
    struct Exported<C>(std::marker::PhantomData<C>);
    impl<C: GenerateAbi> fmt::Display for Exported<C> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            C::fmt_abi(f)
        }
    }
    export::handle_license_and_pragma();
    let exported = Exported::<C>(std::marker::PhantomData).to_string();
    let Some(interface) = with_events(&exported, events) else {
        eprintln!("error: export-abi printed no interface body:\n{exported}");
        std::process::exit(1);
    };
    print!("{interface}");
}

/// Inserts each event of `events` (blocks of lines separated by blank lines; the leading `//`
/// header is skipped) right after the interface's opening brace, indented and spaced as
/// `export-abi` writes its own items (`"\n    item;\n"`). `None` if there is no opening brace.
pub fn with_events(interface: &str, events: &str) -> Option<String> {
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
