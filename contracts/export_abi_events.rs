//! Splices a contract's `src/events.sol` into the interface `export-abi` prints (shared by the
//! three contracts' `src/main.rs`).

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
