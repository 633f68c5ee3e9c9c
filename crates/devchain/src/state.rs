//! World state: accounts, storage, logs and activated programs, with a journal so that any call
//! frame can be undone.
//!
//! Every mutation records its inverse in the journal; a frame takes a [`Checkpoint`] and either
//! keeps its changes or [`State::revert_to`]s it, exactly as geth's `StateDB.Snapshot` /
//! `RevertToSnapshot` do for EVM frames (which Nitro reuses for Stylus frames).

use std::collections::{HashMap, HashSet};

use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, Log, U256, keccak256};

use crate::pricing;

/// An account: balance, nonce and code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// Balance in wei.
    pub balance: U256,
    /// Transaction / creation count.
    pub nonce: u64,
    /// Code: for a Stylus program, `0xEFF000 ‖ dict ‖ brotli(wasm)`.
    pub code: Bytes,
    /// `keccak256(code)`.
    pub code_hash: B256,
}

impl Account {
    /// Whether the account is "empty" in the EIP-161 sense.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.balance.is_zero() && self.nonce == 0 && self.code.is_empty()
    }
}

/// What an activation records for a codehash (Nitro: `Programs.programs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Stylus version the program was activated at.
    pub version: u16,
    /// Hash of the validated module (the devchain uses keccak of the decompressed WASM).
    pub module_hash: B256,
    /// Initial memory pages the program opens on each call.
    pub footprint: u16,
    /// Block timestamp of activation.
    pub activated_at: u64,
}

/// The values a set of keys had: the state before a block (a block's *diff*, used to roll the
/// state back to that block), or the values to put back when rolling forward again. `None`
/// means the account or program did not exist; a zero storage value means an empty slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDiff {
    /// Accounts.
    pub accounts: HashMap<Address, Option<Account>>,
    /// Storage slots.
    pub storage: HashMap<(Address, B256), B256>,
    /// Activation records by codehash.
    pub programs: HashMap<B256, Option<ProgramInfo>>,
}

impl StateDiff {
    /// Whether no key is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.storage.is_empty() && self.programs.is_empty()
    }
}

/// A position in the journal.
pub type Checkpoint = usize;

#[derive(Debug, Clone)]
enum Change {
    Account(Address, Option<Account>),
    Storage(Address, B256, B256),
    Transient(Address, B256, B256),
    Log,
    WarmAccount(Address),
    WarmSlot(Address, B256),
    Program(B256, Option<ProgramInfo>),
    Pages(u16, u16),
}

/// The world state, with per-transaction bookkeeping (logs, EIP-2929 warm sets, original
/// storage values for EIP-2200 pricing, open Stylus pages).
#[derive(Debug, Default, Clone)]
pub struct State {
    accounts: HashMap<Address, Account>,
    storage: HashMap<(Address, B256), B256>,
    programs: HashMap<B256, ProgramInfo>,
    journal: Vec<Change>,
    transient: HashMap<(Address, B256), B256>,
    logs: Vec<Log>,
    warm_accounts: HashSet<Address>,
    warm_slots: HashSet<(Address, B256)>,
    original: HashMap<(Address, B256), B256>,
    pages_open: u16,
    pages_ever: u16,
    /// The value every key had before its first change since the last [`State::take_diff`]:
    /// what the node persists after a block and what rolls the state back to a past block.
    diff: StateDiff,
}

impl State {
    /// Starts a transaction: clears the journal, logs, warm sets and transient storage.
    pub fn begin_tx(&mut self) {
        self.journal.clear();
        self.logs.clear();
        self.transient.clear();
        self.warm_accounts.clear();
        self.warm_slots.clear();
        self.original.clear();
        self.pages_open = 0;
        self.pages_ever = 0;
    }

    /// Takes the logs emitted since [`State::begin_tx`].
    pub fn take_logs(&mut self) -> Vec<Log> {
        std::mem::take(&mut self.logs)
    }

    /// Current journal position.
    #[must_use]
    pub fn checkpoint(&self) -> Checkpoint {
        self.journal.len()
    }

    /// Undoes every change made after `checkpoint`.
    pub fn revert_to(&mut self, checkpoint: Checkpoint) {
        while self.journal.len() > checkpoint {
            let Some(change) = self.journal.pop() else {
                break;
            };
            match change {
                Change::Account(address, prev) => match prev {
                    Some(account) => {
                        self.accounts.insert(address, account);
                    }
                    None => {
                        self.accounts.remove(&address);
                    }
                },
                Change::Storage(address, key, prev) => {
                    Self::put_slot(&mut self.storage, address, key, prev);
                }
                Change::Transient(address, key, prev) => {
                    Self::put_slot(&mut self.transient, address, key, prev);
                }
                Change::Log => {
                    self.logs.pop();
                }
                Change::WarmAccount(address) => {
                    self.warm_accounts.remove(&address);
                }
                Change::WarmSlot(address, key) => {
                    self.warm_slots.remove(&(address, key));
                }
                Change::Program(codehash, prev) => match prev {
                    Some(info) => {
                        self.programs.insert(codehash, info);
                    }
                    None => {
                        self.programs.remove(&codehash);
                    }
                },
                Change::Pages(open, ever) => {
                    self.pages_open = open;
                    self.pages_ever = ever;
                }
            }
        }
    }

    fn put_slot(
        map: &mut HashMap<(Address, B256), B256>,
        address: Address,
        key: B256,
        value: B256,
    ) {
        if value.is_zero() {
            map.remove(&(address, key));
        } else {
            map.insert((address, key), value);
        }
    }

    /// The account at `address`, if it exists.
    #[must_use]
    pub fn account(&self, address: Address) -> Option<&Account> {
        self.accounts.get(&address)
    }

    /// Balance of `address` (zero if absent).
    #[must_use]
    pub fn balance(&self, address: Address) -> U256 {
        self.accounts
            .get(&address)
            .map_or(U256::ZERO, |a| a.balance)
    }

    /// Nonce of `address` (zero if absent).
    #[must_use]
    pub fn nonce(&self, address: Address) -> u64 {
        self.accounts.get(&address).map_or(0, |a| a.nonce)
    }

    /// Code of `address` (empty if absent).
    #[must_use]
    pub fn code(&self, address: Address) -> Bytes {
        self.accounts
            .get(&address)
            .map(|a| a.code.clone())
            .unwrap_or_default()
    }

    /// `EXTCODEHASH`: zero for a non-existent account, `keccak256("")` for one without code.
    #[must_use]
    pub fn code_hash(&self, address: Address) -> B256 {
        match self.accounts.get(&address) {
            Some(account) if !account.is_empty() => account.code_hash,
            _ => B256::ZERO,
        }
    }

    fn modify(&mut self, address: Address, f: impl FnOnce(&mut Account)) {
        let prev = self.accounts.get(&address).cloned();
        let mut account = prev.clone().unwrap_or(Account {
            code_hash: KECCAK256_EMPTY,
            ..Account::default()
        });
        f(&mut account);
        self.diff
            .accounts
            .entry(address)
            .or_insert_with(|| prev.clone());
        self.journal.push(Change::Account(address, prev));
        self.accounts.insert(address, account);
    }

    /// Sets a balance (journaled).
    pub fn set_balance(&mut self, address: Address, balance: U256) {
        self.modify(address, |a| a.balance = balance);
    }

    /// Sets a nonce (journaled).
    pub fn set_nonce(&mut self, address: Address, nonce: u64) {
        self.modify(address, |a| a.nonce = nonce);
    }

    /// Sets code (journaled).
    pub fn set_code(&mut self, address: Address, code: Bytes) {
        let hash = keccak256(&code);
        self.modify(address, |a| {
            a.code = code;
            a.code_hash = hash;
        });
    }

    /// Moves `value` from `from` to `to`; returns the payer's balance when it is too low.
    ///
    /// # Errors
    /// The payer's balance, when it is below `value`.
    pub fn transfer(&mut self, from: Address, to: Address, value: U256) -> Result<(), U256> {
        let have = self.balance(from);
        if have < value {
            return Err(have);
        }
        if value.is_zero() || from == to {
            return Ok(());
        }
        self.set_balance(from, have - value);
        let to_balance = self.balance(to);
        self.set_balance(to, to_balance.saturating_add(value));
        Ok(())
    }

    /// A storage slot's value.
    #[must_use]
    pub fn storage(&self, address: Address, key: B256) -> B256 {
        self.storage
            .get(&(address, key))
            .copied()
            .unwrap_or_default()
    }

    /// Writes a storage slot (journaled).
    pub fn set_storage(&mut self, address: Address, key: B256, value: B256) {
        let prev = self.storage(address, key);
        self.original.entry((address, key)).or_insert(prev);
        self.diff.storage.entry((address, key)).or_insert(prev);
        self.journal.push(Change::Storage(address, key, prev));
        Self::put_slot(&mut self.storage, address, key, value);
    }

    /// A transient storage slot's value (EIP-1153).
    #[must_use]
    pub fn transient(&self, address: Address, key: B256) -> B256 {
        self.transient
            .get(&(address, key))
            .copied()
            .unwrap_or_default()
    }

    /// Writes a transient slot (journaled).
    pub fn set_transient(&mut self, address: Address, key: B256, value: B256) {
        let prev = self.transient(address, key);
        self.journal.push(Change::Transient(address, key, prev));
        Self::put_slot(&mut self.transient, address, key, value);
    }

    /// Appends a log (journaled).
    pub fn add_log(&mut self, log: Log) {
        self.journal.push(Change::Log);
        self.logs.push(log);
    }

    /// EIP-2929 account access: 2600 gas when cold, 100 when warm; marks it warm.
    pub fn access_account(&mut self, address: Address) -> u64 {
        if self.warm_accounts.insert(address) {
            self.journal.push(Change::WarmAccount(address));
            pricing::COLD_ACCOUNT_GAS
        } else {
            pricing::WARM_ACCESS_GAS
        }
    }

    /// Marks an account warm without pricing it (transaction sender and recipient).
    pub fn warm_account(&mut self, address: Address) {
        if self.warm_accounts.insert(address) {
            self.journal.push(Change::WarmAccount(address));
        }
    }

    /// EIP-2929 `SLOAD` price: 2100 gas when cold, 100 when warm; marks it warm.
    pub fn access_slot(&mut self, address: Address, key: B256) -> u64 {
        if self.warm_slots.insert((address, key)) {
            self.journal.push(Change::WarmSlot(address, key));
            pricing::COLD_SLOAD_GAS
        } else {
            pricing::WARM_ACCESS_GAS
        }
    }

    /// `SSTORE` price under EIP-2200/2929/3529 (geth `gasSStoreEIP2929`, which Nitro's
    /// `WasmStateStoreCost` calls), including the cold surcharge; marks the slot warm.
    pub fn sstore_gas(&mut self, address: Address, key: B256, value: B256) -> u64 {
        let cold = if self.warm_slots.contains(&(address, key)) {
            0
        } else {
            self.access_slot(address, key);
            pricing::COLD_SLOAD_GAS
        };
        let current = self.storage(address, key);
        let original = self
            .original
            .get(&(address, key))
            .copied()
            .unwrap_or(current);
        let cost = if current == value || original != current {
            pricing::WARM_ACCESS_GAS
        } else if original.is_zero() {
            20000
        } else {
            5000 - pricing::COLD_SLOAD_GAS
        };
        cost + cold
    }

    /// Activation record of a codehash.
    #[must_use]
    pub fn program(&self, codehash: B256) -> Option<ProgramInfo> {
        self.programs.get(&codehash).copied()
    }

    /// Records an activation (journaled).
    pub fn set_program(&mut self, codehash: B256, info: ProgramInfo) {
        let prev = self.programs.insert(codehash, info);
        self.diff.programs.entry(codehash).or_insert(prev);
        self.journal.push(Change::Program(codehash, prev));
    }

    /// Opens `new` Stylus pages; returns the `(open, ever)` before the change
    /// (geth `StateDB.AddStylusPages`).
    pub fn add_pages(&mut self, new: u16) -> (u16, u16) {
        let (open, ever) = (self.pages_open, self.pages_ever);
        self.journal.push(Change::Pages(open, ever));
        self.pages_open = open.saturating_add(new);
        self.pages_ever = ever.max(self.pages_open);
        (open, ever)
    }

    /// Restores the number of open pages after a program returns
    /// (geth `StateDB.SetStylusPagesOpen`).
    pub fn set_pages_open(&mut self, open: u16) {
        self.journal
            .push(Change::Pages(self.pages_open, self.pages_ever));
        self.pages_open = open;
    }

    /// Takes the keys changed since the last call, with the values they had then.
    pub fn take_diff(&mut self) -> StateDiff {
        std::mem::take(&mut self.diff)
    }

    /// Puts back a diff taken with [`State::take_diff`].
    pub fn set_diff(&mut self, diff: StateDiff) {
        self.diff = diff;
    }

    /// The keys changed since the last [`State::take_diff`], with the values they had then.
    #[must_use]
    pub fn diff(&self) -> &StateDiff {
        &self.diff
    }

    /// Puts the values of `values` in place (outside the journal and the diff) and returns the
    /// values they replaced, so that applying the result undoes this call.
    pub fn apply(&mut self, values: &StateDiff) -> StateDiff {
        let mut replaced = StateDiff::default();
        for (&address, account) in &values.accounts {
            let prev = match account {
                Some(account) => self.accounts.insert(address, account.clone()),
                None => self.accounts.remove(&address),
            };
            replaced.accounts.insert(address, prev);
        }
        for (&(address, key), &value) in &values.storage {
            replaced
                .storage
                .insert((address, key), self.storage(address, key));
            Self::put_slot(&mut self.storage, address, key, value);
        }
        for (&codehash, info) in &values.programs {
            let prev = match info {
                Some(info) => self.programs.insert(codehash, *info),
                None => self.programs.remove(&codehash),
            };
            replaced.programs.insert(codehash, prev);
        }
        replaced
    }

    /// Every account.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// Every non-empty storage slot.
    pub fn storage_slots(&self) -> impl Iterator<Item = (&(Address, B256), &B256)> {
        self.storage.iter()
    }

    /// Every activation record.
    pub fn programs(&self) -> impl Iterator<Item = (&B256, &ProgramInfo)> {
        self.programs.iter()
    }

    /// A state holding exactly these accounts, slots and activations (read back from a
    /// database); zero slots are dropped.
    #[must_use]
    pub fn from_parts(
        accounts: HashMap<Address, Account>,
        mut storage: HashMap<(Address, B256), B256>,
        programs: HashMap<B256, ProgramInfo>,
    ) -> Self {
        storage.retain(|_, value| !value.is_zero());
        Self {
            accounts,
            storage,
            programs,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_undoes_storage_balances_and_logs() {
        let mut state = State::default();
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        state.set_balance(a, U256::from(10));
        let cp = state.checkpoint();
        state.transfer(a, b, U256::from(4)).unwrap();
        state.set_storage(a, B256::repeat_byte(7), B256::repeat_byte(9));
        state.add_log(Log::new_unchecked(a, vec![], Bytes::new()));
        state.revert_to(cp);
        assert_eq!(state.balance(a), U256::from(10));
        assert_eq!(state.balance(b), U256::ZERO);
        assert!(state.account(b).is_none());
        assert_eq!(state.storage(a, B256::repeat_byte(7)), B256::ZERO);
        assert!(state.take_logs().is_empty());
    }

    #[test]
    fn the_diff_records_first_values_and_apply_rolls_back_and_forth() {
        let mut state = State::default();
        let a = Address::repeat_byte(1);
        let slot = B256::repeat_byte(7);
        state.set_balance(a, U256::from(10));
        state.set_storage(a, slot, B256::repeat_byte(1));
        let first = state.take_diff();
        assert_eq!(first.accounts[&a], None);
        assert_eq!(first.storage[&(a, slot)], B256::ZERO);
        state.set_balance(a, U256::from(20));
        state.set_balance(a, U256::from(30));
        state.set_storage(a, slot, B256::repeat_byte(2));
        let second = state.take_diff();
        assert_eq!(
            second.accounts[&a].as_ref().unwrap().balance,
            U256::from(10)
        );
        assert_eq!(second.storage[&(a, slot)], B256::repeat_byte(1));
        let redo = state.apply(&second);
        assert_eq!(state.balance(a), U256::from(10));
        assert_eq!(state.storage(a, slot), B256::repeat_byte(1));
        let redo_first = state.apply(&first);
        assert!(state.account(a).is_none());
        assert_eq!(state.storage(a, slot), B256::ZERO);
        state.apply(&redo_first);
        state.apply(&redo);
        assert_eq!(state.balance(a), U256::from(30));
        assert_eq!(state.storage(a, slot), B256::repeat_byte(2));
        assert!(state.diff().is_empty(), "apply is not a change to persist");
    }

    #[test]
    fn transfer_refuses_overdraft() {
        let mut state = State::default();
        let a = Address::repeat_byte(1);
        assert_eq!(
            state.transfer(a, Address::ZERO, U256::from(1)),
            Err(U256::ZERO)
        );
    }
}
