//! Decryption of a worker's result with the seller's client key: only aggregates exist to
//! decrypt, and each comes back as the plain sums the output policy then releases.

use datacloud_query::reference::Aggregates;

use crate::eval::EncryptedResult;
use crate::keys::SellerKey;

/// Decrypts an encrypted result with the seller's key. Only aggregates exist to decrypt.
///
/// Each value is a radix number of `w` blocks (2 message bits each); a worker may leave carries unpropagated
/// (the cube plan's window subtraction does), so every block is decrypted with its carry,
/// the blocks recomposed, and the value taken modulo 4^w: what propagating the carries would
/// have left in the `w` blocks.
#[must_use]
pub fn decrypt(result: &EncryptedResult, key: &SellerKey) -> Aggregates {
    use tfhe::integer::IntegerCiphertext as _;
    let ck = key.integer();
    let block_bits = ck.parameters().message_modulus().0.ilog2() as usize;
    let dec = |ct: &tfhe::integer::RadixCiphertext| {
        let bits = block_bits * ct.blocks().len();
        let value = ck.decrypt_radix::<u128>(ct);
        if bits >= 128 {
            value
        } else {
            value & ((1u128 << bits) - 1)
        }
    };
    Aggregates {
        groups: result
            .groups
            .iter()
            .map(|g| {
                (
                    dec(&g.count),
                    g.sum.as_ref().map(dec),
                    g.squares.as_ref().map(dec),
                )
            })
            .collect(),
        terms: result
            .groups
            .iter()
            .map(|g| g.terms.iter().map(dec).collect())
            .collect(),
    }
}
