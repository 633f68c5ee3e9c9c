//! Prints the contract's Solidity interface (`cargo run -p datacloud-proof-manager --features export-abi`).

fn main() {
    datacloud_proof_manager::print_from_args();
}
