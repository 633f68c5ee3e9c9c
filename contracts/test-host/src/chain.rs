//! Several contracts in one test, each on its own [`TestHost`], calling each other through their
//! routers exactly as a chain calls a Stylus program: calldata in, return or revert data out.

use std::fmt;

use alloy_primitives::{Address, U256};
use stylus_sdk::{host::VM, stylus_core::BlockAccess};

use crate::{CallOutcome, Checkpoint, Entrypoint, TestHost};

/// A contract placed at an address, with its own storage and balance ledger.
#[derive(Clone)]
pub struct Deployed {
    host: TestHost,
    entry: Entrypoint,
}

impl fmt::Debug for Deployed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployed")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Deployed {
    /// Places the contract whose router is `entry` at `address`.
    #[must_use]
    pub fn new(address: Address, entry: Entrypoint) -> Self {
        let host = TestHost::new();
        host.vm().set_contract_address(address);
        Self { host, entry }
    }

    /// The contract's address.
    #[must_use]
    pub fn address(&self) -> Address {
        self.host.contract()
    }

    /// The contract's host (storage, balance, logs).
    #[must_use]
    pub fn host(&self) -> &TestHost {
        &self.host
    }

    /// Runs `calldata` from `from` with `value`; this contract's state is rolled back on revert.
    ///
    /// # Errors
    /// The revert data.
    pub fn call(&self, from: Address, value: U256, calldata: &[u8]) -> CallOutcome {
        self.host.invoke(from, value, || {
            (self.entry)(
                calldata.to_vec(),
                VM {
                    host: Box::new(self.host.clone()),
                },
            )
        })
    }

    /// Makes calls from this contract to `callee`'s address run `callee`.
    pub fn link(&self, callee: &Deployed) {
        let callee = callee.clone();
        self.host.on_call(callee.address(), move |call| {
            callee.call(call.from, call.value, &call.data)
        });
    }
}

/// The contracts of one test, linked to each other, sharing a block number and a clock.
#[derive(Debug, Default)]
pub struct Chain {
    contracts: Vec<Deployed>,
}

impl Chain {
    /// An empty chain.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a contract and links it both ways with every contract already there.
    pub fn deploy(&mut self, address: Address, entry: Entrypoint) -> Deployed {
        let contract = Deployed::new(address, entry);
        for other in &self.contracts {
            other.link(&contract);
            contract.link(other);
            contract.host.set_block(other.host.vm().block_number());
            contract
                .host
                .vm()
                .set_block_timestamp(other.host.vm().block_timestamp());
        }
        self.contracts.push(contract.clone());
        contract
    }

    /// One transaction from an externally owned account: on revert, every contract's state is
    /// rolled back, including what nested calls into other contracts had changed.
    ///
    /// # Errors
    /// The revert data.
    pub fn transact(
        &self,
        from: Address,
        to: &Deployed,
        value: U256,
        calldata: &[u8],
    ) -> CallOutcome {
        let checkpoints: Vec<Checkpoint> =
            self.contracts.iter().map(|c| c.host.checkpoint()).collect();
        let outcome = to.call(from, value, calldata);
        if outcome.is_err() {
            for (contract, checkpoint) in self.contracts.iter().zip(checkpoints) {
                contract.host.restore(checkpoint);
            }
        }
        outcome
    }

    /// Advances every contract's block number by `blocks` and clock by `seconds`.
    pub fn advance(&self, blocks: u64, seconds: u64) {
        for contract in &self.contracts {
            let vm = contract.host.vm();
            vm.set_block_number(vm.block_number() + blocks);
            vm.set_block_timestamp(vm.block_timestamp() + seconds);
        }
    }
}
