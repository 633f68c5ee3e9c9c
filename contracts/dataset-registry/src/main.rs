//! Prints the contract's Solidity interface with its events
//! (`cargo run -p datacloud-dataset-registry --features export-abi`); see `contracts/export_abi.rs`.

#[path = "../../export_abi.rs"]
mod export_abi;

fn main() {
    export_abi::print_interface::<datacloud_dataset_registry::DatasetRegistry>(include_str!(
        "events.sol"
    ));
}
