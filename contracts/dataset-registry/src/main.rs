//! Prints the contract's Solidity interface (`cargo run -p datacloud-dataset-registry --features export-abi`).

fn main() {
    datacloud_dataset_registry::print_from_args();
}
