//! Signed transactions: decoding (legacy, EIP-2930, EIP-1559), sender recovery and the
//! validity checks a node makes before executing one.
//!
//! The rules follow go-ethereum's `core/state_transition.go` (`preCheck`, `IntrinsicGas`) and
//! `core/txpool` (nonce and funds), which Nitro inherits.

use alloy_consensus::{Transaction as _, TxEnvelope, transaction::SignerRecoverable};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, U256};

use crate::{Devchain, chain::TxExecution};

/// Largest raw transaction accepted (go-ethereum's txpool `txMaxSize` is 128 KiB; Stylus
/// programs need up to 24 KiB of code plus the prelude, so this is ample).
pub const MAX_TX_SIZE: usize = 128 * 1024;

/// Why a transaction is refused before execution. Nothing changes state when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The raw bytes exceed [`MAX_TX_SIZE`].
    #[error("transaction is {size} bytes, over the {max} byte limit")]
    TooLarge {
        /// Raw size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid EIP-2718 envelope.
    #[error("transaction could not be decoded: {0}")]
    Decode(String),
    /// EIP-4844 / EIP-7702 and other types are not supported.
    #[error("transaction type {0} is not supported (legacy, EIP-2930 and EIP-1559 only)")]
    UnsupportedType(u8),
    /// The signature does not recover to an address.
    #[error("invalid transaction signature: {0}")]
    Signature(String),
    /// Signed for another chain.
    #[error("invalid chain id: transaction is for chain {got}, this chain is {expected}")]
    ChainId {
        /// The transaction's chain id.
        got: u64,
        /// This chain's id.
        expected: u64,
    },
    /// This exact transaction was already mined.
    #[error("already known: transaction {0} is already mined")]
    AlreadyKnown(B256),
    /// The nonce was already used.
    #[error("nonce too low: {address} is at nonce {state}, transaction has {tx}")]
    NonceTooLow {
        /// The sender.
        address: Address,
        /// The sender's next nonce.
        state: u64,
        /// The transaction's nonce.
        tx: u64,
    },
    /// The nonce leaves a gap (the devchain has no queue of future transactions).
    #[error("nonce too high: {address} is at nonce {state}, transaction has {tx}")]
    NonceTooHigh {
        /// The sender.
        address: Address,
        /// The sender's next nonce.
        state: u64,
        /// The transaction's nonce.
        tx: u64,
    },
    /// The sender cannot pay `gas_limit × max_fee + value`.
    #[error("insufficient funds for gas * price + value: {address} has {have} wei, needs {want}")]
    InsufficientFunds {
        /// The sender.
        address: Address,
        /// Its balance.
        have: U256,
        /// What it would need.
        want: U256,
    },
    /// The gas limit does not cover the intrinsic gas.
    #[error("intrinsic gas too low: gas limit {gas_limit}, needs at least {intrinsic}")]
    IntrinsicGasTooLow {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// Its intrinsic gas.
        intrinsic: u64,
    },
    /// The gas limit is above the block gas limit.
    #[error("exceeds block gas limit: gas limit {gas_limit}, block limit {block_gas_limit}")]
    GasLimitTooHigh {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// The block gas limit.
        block_gas_limit: u64,
    },
    /// The fee cap is below the block's base fee.
    #[error("max fee per gas less than block base fee: max fee {max_fee}, base fee {base_fee}")]
    FeeCapTooLow {
        /// `max_fee_per_gas` (or `gas_price`).
        max_fee: u128,
        /// The base fee.
        base_fee: U256,
    },
    /// The tip is above the fee cap.
    #[error("max priority fee per gas higher than max fee per gas: tip {tip}, max fee {max_fee}")]
    TipAboveFeeCap {
        /// `max_priority_fee_per_gas`.
        tip: u128,
        /// `max_fee_per_gas`.
        max_fee: u128,
    },
}

/// A decoded transaction with its recovered sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The signed envelope.
    pub envelope: TxEnvelope,
    /// The recovered sender.
    pub sender: Address,
    /// The transaction hash (keccak of the EIP-2718 encoding).
    pub hash: B256,
}

/// A transaction that passed [`SignedTransaction::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTransaction {
    /// What to execute.
    pub execution: TxExecution,
    /// The price per gas paid: `min(max_fee, base_fee + tip)` for EIP-1559.
    pub effective_gas_price: u128,
}

/// Intrinsic gas (`core.IntrinsicGas`): 21 000, plus 32 000 and 2 per init-code word
/// (EIP-3860) for a creation, 4 per zero and 16 per non-zero calldata byte, and 2 400 per
/// access-list address and 1 900 per storage key (EIP-2930).
#[must_use]
pub fn intrinsic_gas(create: bool, input: &[u8], addresses: u64, storage_keys: u64) -> u64 {
    let mut gas = crate::chain::intrinsic_gas(input);
    if create {
        gas += 32_000 + 2 * (input.len() as u64).div_ceil(32);
    }
    gas + 2_400 * addresses + 1_900 * storage_keys
}

impl SignedTransaction {
    /// Decodes an EIP-2718 transaction and recovers its sender.
    ///
    /// # Errors
    /// [`TxError::TooLarge`], [`TxError::Decode`], [`TxError::UnsupportedType`] or
    /// [`TxError::Signature`].
    pub fn decode(raw: &[u8]) -> Result<Self, TxError> {
        if raw.len() > MAX_TX_SIZE {
            return Err(TxError::TooLarge {
                size: raw.len(),
                max: MAX_TX_SIZE,
            });
        }
        let mut buf = raw;
        let envelope =
            TxEnvelope::decode_2718(&mut buf).map_err(|e| TxError::Decode(e.to_string()))?;
        if !buf.is_empty() {
            return Err(TxError::Decode(format!("{} trailing bytes", buf.len())));
        }
        Self::from_envelope(envelope)
    }

    /// Recovers the sender of a signed envelope.
    ///
    /// # Errors
    /// [`TxError::UnsupportedType`] or [`TxError::Signature`].
    pub fn from_envelope(envelope: TxEnvelope) -> Result<Self, TxError> {
        match envelope {
            TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => {}
            TxEnvelope::Eip4844(_) => return Err(TxError::UnsupportedType(3)),
            TxEnvelope::Eip7702(_) => return Err(TxError::UnsupportedType(4)),
        }
        let sender = envelope
            .recover_signer()
            .map_err(|e| TxError::Signature(e.to_string()))?;
        let hash = *envelope.tx_hash();
        Ok(Self {
            envelope,
            sender,
            hash,
        })
    }

    /// Checks chain id, fees, gas limit, nonce and funds against `chain`'s current state.
    ///
    /// # Errors
    /// The first [`TxError`] that applies.
    pub fn validate(&self, chain: &Devchain) -> Result<ValidTransaction, TxError> {
        let tx = &self.envelope;
        let config = chain.config();
        if let Some(got) = tx.chain_id()
            && got != config.chain_id
        {
            return Err(TxError::ChainId {
                got,
                expected: config.chain_id,
            });
        }
        let base_fee = config.basefee;
        let max_fee = tx.max_fee_per_gas();
        if U256::from(max_fee) < base_fee {
            return Err(TxError::FeeCapTooLow { max_fee, base_fee });
        }
        if let Some(tip) = tx.max_priority_fee_per_gas()
            && tip > max_fee
        {
            return Err(TxError::TipAboveFeeCap { tip, max_fee });
        }
        let (addresses, storage_keys) = tx.access_list().map_or((0, 0), |list| {
            let keys: usize = list.iter().map(|item| item.storage_keys.len()).sum();
            (list.len() as u64, keys as u64)
        });
        let to = tx.to();
        let intrinsic = intrinsic_gas(to.is_none(), tx.input(), addresses, storage_keys);
        let gas_limit = tx.gas_limit();
        if gas_limit < intrinsic {
            return Err(TxError::IntrinsicGasTooLow {
                gas_limit,
                intrinsic,
            });
        }
        if gas_limit > config.block_gas_limit {
            return Err(TxError::GasLimitTooHigh {
                gas_limit,
                block_gas_limit: config.block_gas_limit,
            });
        }
        let address = self.sender;
        let state = chain.nonce(address);
        match tx.nonce() {
            n if n < state => {
                return Err(TxError::NonceTooLow {
                    address,
                    state,
                    tx: n,
                });
            }
            n if n > state => {
                return Err(TxError::NonceTooHigh {
                    address,
                    state,
                    tx: n,
                });
            }
            _ => {}
        }
        let want = U256::from(gas_limit) * U256::from(max_fee) + tx.value();
        let have = chain.balance(address);
        if have < want {
            return Err(TxError::InsufficientFunds {
                address,
                have,
                want,
            });
        }
        // The base fee fits u64 on every real chain; saturate rather than fail if configured
        // absurdly high (the fee-cap check above already passed).
        let base_fee_u64 = u64::try_from(base_fee).unwrap_or(u64::MAX);
        Ok(ValidTransaction {
            execution: TxExecution {
                from: address,
                to,
                value: tx.value(),
                input: tx.input().clone(),
                gas_limit,
                intrinsic_gas: intrinsic,
            },
            effective_gas_price: tx.effective_gas_price(Some(base_fee_u64)),
        })
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{Bytes, TxKind};
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    use super::*;
    use crate::ChainConfig;

    fn signer() -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).unwrap()
    }

    fn transfer(nonce: u64, gas_limit: u64, chain_id: u64, value: u64) -> TxEip1559 {
        TxEip1559 {
            chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::repeat_byte(9)),
            value: U256::from(value),
            ..TxEip1559::default()
        }
    }

    fn sign<T: SignableTransaction<alloy_primitives::Signature>>(tx: T) -> Vec<u8>
    where
        TxEnvelope: From<alloy_consensus::Signed<T>>,
    {
        let signature = signer().sign_hash_sync(&tx.signature_hash()).unwrap();
        TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
    }

    /// A chain where the signer has 1 ether.
    fn chain() -> Devchain {
        let mut chain = Devchain::new(ChainConfig::default());
        chain.set_balance(
            signer().address(),
            U256::from(1_000_000_000_000_000_000_u64),
        );
        chain
    }

    fn check(chain: &Devchain, raw: &[u8]) -> Result<ValidTransaction, TxError> {
        SignedTransaction::decode(raw)?.validate(chain)
    }

    #[test]
    fn a_valid_eip1559_transfer_recovers_its_sender() {
        let chain = chain();
        let raw = sign(transfer(0, 21_000, 412_346, 5));
        let tx = SignedTransaction::decode(&raw).unwrap();
        assert_eq!(tx.sender, signer().address());
        let valid = tx.validate(&chain).unwrap();
        assert_eq!(valid.execution.intrinsic_gas, 21_000);
        assert_eq!(valid.execution.value, U256::from(5));
        // base fee 0.1 gwei + tip 1 wei, under the 1 gwei cap.
        assert_eq!(valid.effective_gas_price, 100_000_001);
    }

    #[test]
    fn a_legacy_eip155_transaction_is_accepted() {
        let chain = chain();
        let raw = sign(TxLegacy {
            chain_id: Some(412_346),
            nonce: 0,
            gas_price: 1_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(Address::repeat_byte(9)),
            value: U256::from(1),
            input: Bytes::new(),
        });
        let valid = check(&chain, &raw).unwrap();
        assert_eq!(valid.execution.from, signer().address());
        assert_eq!(valid.effective_gas_price, 1_000_000_000);
    }

    #[test]
    fn an_eip2930_transaction_pays_for_its_access_list() {
        let chain = chain();
        let raw = sign(alloy_consensus::TxEip2930 {
            chain_id: 412_346,
            nonce: 0,
            gas_price: 1_000_000_000,
            gas_limit: 30_000,
            to: TxKind::Call(Address::repeat_byte(9)),
            value: U256::ZERO,
            access_list: alloy_eips::eip2930::AccessList(vec![
                alloy_eips::eip2930::AccessListItem {
                    address: Address::repeat_byte(9),
                    storage_keys: vec![B256::ZERO],
                },
            ]),
            input: Bytes::new(),
        });
        let valid = check(&chain, &raw).unwrap();
        assert_eq!(valid.execution.intrinsic_gas, 21_000 + 2_400 + 1_900);
    }

    #[test]
    fn wrong_chain_id_is_refused() {
        let err = check(&chain(), &sign(transfer(0, 21_000, 1, 0))).unwrap_err();
        assert_eq!(
            err,
            TxError::ChainId {
                got: 1,
                expected: 412_346
            }
        );
    }

    #[test]
    fn nonce_too_low_and_too_high_are_refused() {
        let mut chain = chain();
        let outcome = chain.call(signer().address(), Address::repeat_byte(9), U256::ZERO, &[]);
        assert!(outcome.is_success());
        let low = check(&chain, &sign(transfer(0, 21_000, 412_346, 0))).unwrap_err();
        assert!(
            matches!(
                low,
                TxError::NonceTooLow {
                    state: 1,
                    tx: 0,
                    ..
                }
            ),
            "{low}"
        );
        let high = check(&chain, &sign(transfer(5, 21_000, 412_346, 0))).unwrap_err();
        assert!(
            matches!(
                high,
                TxError::NonceTooHigh {
                    state: 1,
                    tx: 5,
                    ..
                }
            ),
            "{high}"
        );
        assert!(check(&chain, &sign(transfer(1, 21_000, 412_346, 0))).is_ok());
    }

    #[test]
    fn insufficient_funds_counts_gas_and_value() {
        let chain = chain();
        // 1 ether - 21000 × 1 gwei + 1 wei is just too much.
        let value = 1_000_000_000_000_000_000 - 21_000 * 1_000_000_000 + 1;
        let err = check(&chain, &sign(transfer(0, 21_000, 412_346, value))).unwrap_err();
        assert!(matches!(err, TxError::InsufficientFunds { .. }), "{err}");
        assert!(check(&chain, &sign(transfer(0, 21_000, 412_346, value - 1))).is_ok());
    }

    #[test]
    fn intrinsic_gas_too_low_is_refused() {
        let err = check(&chain(), &sign(transfer(0, 20_999, 412_346, 0))).unwrap_err();
        assert_eq!(
            err,
            TxError::IntrinsicGasTooLow {
                gas_limit: 20_999,
                intrinsic: 21_000
            }
        );
    }

    #[test]
    fn fee_cap_below_base_fee_and_tip_above_cap_are_refused() {
        let chain = chain();
        let mut cheap = transfer(0, 21_000, 412_346, 0);
        cheap.max_fee_per_gas = 1;
        cheap.max_priority_fee_per_gas = 0;
        assert!(matches!(
            check(&chain, &sign(cheap)).unwrap_err(),
            TxError::FeeCapTooLow { max_fee: 1, .. }
        ));
        let mut greedy = transfer(0, 21_000, 412_346, 0);
        greedy.max_priority_fee_per_gas = greedy.max_fee_per_gas + 1;
        assert!(matches!(
            check(&chain, &sign(greedy)).unwrap_err(),
            TxError::TipAboveFeeCap { .. }
        ));
    }

    #[test]
    fn garbage_and_oversized_input_are_refused() {
        assert!(matches!(
            SignedTransaction::decode(&[0x02, 0xc0]).unwrap_err(),
            TxError::Decode(_)
        ));
        let mut raw = sign(transfer(0, 21_000, 412_346, 0));
        raw.push(0);
        assert!(matches!(
            SignedTransaction::decode(&raw).unwrap_err(),
            TxError::Decode(_)
        ));
        assert!(matches!(
            SignedTransaction::decode(&vec![0; MAX_TX_SIZE + 1]).unwrap_err(),
            TxError::TooLarge { .. }
        ));
    }

    #[test]
    fn intrinsic_gas_prices_creation_calldata_and_access_lists() {
        assert_eq!(intrinsic_gas(false, &[], 0, 0), 21_000);
        assert_eq!(intrinsic_gas(false, &[0, 1], 0, 0), 21_000 + 4 + 16);
        // 33 bytes of init code = 2 words.
        assert_eq!(
            intrinsic_gas(true, &[1; 33], 0, 0),
            21_000 + 33 * 16 + 32_000 + 2 * 2
        );
        assert_eq!(intrinsic_gas(false, &[], 2, 3), 21_000 + 4_800 + 5_700);
    }
}
