//! Prints the contract's Solidity interface (`cargo run -p datacloud-query-market --features export-abi`).

fn main() {
    datacloud_query_market::print_from_args();
}
