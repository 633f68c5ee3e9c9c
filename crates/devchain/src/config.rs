//! Chain parameters; defaults follow Nitro's initial Stylus parameters.

use alloy_primitives::{Address, U256};

/// Parameters of a devchain.
///
/// Stylus defaults come from Nitro `arbos/programs/params.go` (`initialInkPrice`,
/// `initialMaxWasmSize`, `initialPageLimit`, `InitialFreePages`, `InitialPageGas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// EIP-155 chain id (`412_346` is the Nitro dev node's).
    pub chain_id: u64,
    /// Ink per gas: "1 evm gas buys 10k ink" (`initialInkPrice`).
    pub ink_price: u32,
    /// Maximum decompressed WASM size (`initialMaxWasmSize` = 128 KiB).
    pub max_wasm_size: usize,
    /// Maximum contract code size (`0xEFF000 ‖ dict ‖ brotli(wasm)`), Arbitrum's 24 KiB.
    pub max_code_size: usize,
    /// Maximum number of code fragments of a root program (`initialMaxFragmentCount`).
    pub max_fragment_count: usize,
    /// Maximum WASM memory pages (`initialPageLimit` = 128 pages, 8 MiB).
    pub page_limit: u16,
    /// Pages each transaction gets for free (`InitialFreePages`).
    pub free_pages: u16,
    /// Linear gas per page (`InitialPageGas`).
    pub page_gas: u16,
    /// Stylus version stamped on activation (`params.Version`).
    pub stylus_version: u16,
    /// Debug mode: the `console` imports are allowed (Nitro: `ChainConfig().DebugMode()`).
    pub debug_mode: bool,
    /// Gas limit given to API calls.
    pub call_gas_limit: u64,
    /// Block gas limit reported by `block_gas_limit`.
    pub block_gas_limit: u64,
    /// Base fee (and, on Arbitrum, gas price) in wei.
    pub basefee: U256,
    /// Coinbase reported by `block_coinbase`.
    pub coinbase: Address,
    /// Timestamp of the genesis block.
    pub genesis_timestamp: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            chain_id: 412_346,
            ink_price: 10_000,
            max_wasm_size: 128 * 1024,
            max_code_size: 24 * 1024,
            max_fragment_count: 2,
            page_limit: 128,
            free_pages: 2,
            page_gas: 1000,
            stylus_version: 2,
            debug_mode: true,
            call_gas_limit: 30_000_000,
            block_gas_limit: 32_000_000,
            basefee: U256::from(100_000_000_u64),
            coinbase: Address::ZERO,
            genesis_timestamp: 1_700_000_000,
        }
    }
}
