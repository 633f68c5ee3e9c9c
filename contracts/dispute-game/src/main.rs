//! Prints the dispute game's Solidity interface (`cargo run -p datacloud-dispute-game --features
//! export-abi`); its events are the market's (`IQueryMarket.sol`), emitted from the market's
//! address. See `contracts/export_abi.rs`.

#[path = "../../export_abi.rs"]
mod export_abi;

fn main() {
    export_abi::print_interface::<datacloud_dispute_game::DisputeGame>("");
}
