//! Column-wise sums of radix numbers that leave their carries for the seller.
//!
//! A scan adds thousands of small radix numbers (masked values, count bits). TFHE-rs'
//! `unchecked_sum_ciphertexts_vec_parallelized` sums one batch into a canonical radix number:
//! it reduces each column of blocks five at a time (two PBS turn five blocks into a message and a
//! carry) and then propagates every carry, ~2 PBS per block of the result, once per batch.
//! Nobody but the seller reads a sum, and the seller decrypts each block's message *and* carry
//! ([`crate::decrypt::decrypt`]), so a sum need not be canonical: an [`Accumulator`] keeps one
//! column of blocks per radix position across every batch of a chunk, reduces a column only when
//! it no longer fits one block, and [`Accumulator::finish`] adds each column into one block
//! (degree ≤ 15, noise within the parameters' maximum) without propagating anything.
//!
//! Exactness: a reduction replaces blocks of value `v` at position `j` by `v mod 4` at `j` and
//! `v div 4` at `j + 1`, which keeps `Σ_j value_j · 4^j`. The top column's carry is dropped: the
//! result widths are chosen so the true sum is below `4^width`, hence every column value at the top
//! is below 4 and its carry is 0 (TFHE-rs' sum drops it the same way).

use rayon::prelude::*;
use tfhe::integer::{IntegerCiphertext, RadixCiphertext};
use tfhe::shortint::Ciphertext as Block;
use tfhe::shortint::ServerKey;
use tfhe::shortint::server_key::LookupTableOwned;

/// The two lookup tables of a reduction, built once per evaluation.
pub struct Reducer<'a> {
    key: &'a ServerKey,
    message: LookupTableOwned,
    carry: LookupTableOwned,
    /// Largest degree a block may reach (message and carry space, less one).
    max_degree: u64,
    max_noise: u64,
}

impl<'a> Reducer<'a> {
    #[must_use]
    pub fn new(key: &'a ServerKey) -> Self {
        let modulus = key.message_modulus.0;
        Reducer {
            key,
            message: key.generate_lookup_table(move |x| x % modulus),
            carry: key.generate_lookup_table(move |x| x / modulus),
            max_degree: modulus * key.carry_modulus.0 - 1,
            max_noise: key.max_noise_level.get(),
        }
    }

    fn fits(&self, degree: u64, noise: u64) -> bool {
        degree <= self.max_degree && noise <= self.max_noise
    }
}

/// Running sums, one column of blocks per radix position.
#[derive(Clone)]
pub struct Accumulator {
    columns: Vec<Vec<Block>>,
}

impl Accumulator {
    /// An empty sum of `width` blocks.
    #[must_use]
    pub fn new(width: usize) -> Self {
        Accumulator {
            columns: vec![Vec::new(); width],
        }
    }

    /// Adds `ct` (at most `width` blocks; trivial zero blocks are skipped). No PBS: call
    /// [`Accumulator::reduce`] before the columns grow large.
    ///
    /// # Panics
    /// When `ct` has a non-zero block beyond the accumulator's width (a planner bug).
    pub fn push(&mut self, ct: &RadixCiphertext) {
        for (j, block) in ct.blocks().iter().enumerate() {
            self.push_at(j, block.clone());
        }
    }

    /// Reduces every column that does not fit one block, in rounds of parallel PBS, until each
    /// fits. In each column the blocks, largest degree first, are grouped greedily into sums that
    /// fit one block; every group that is full (the next block would not fit) becomes a message
    /// block and a carry into the next column (2 PBS; 1 at the top). A column's last, open group
    /// waits for the next round or the next batch.
    pub fn reduce(&mut self, r: &Reducer<'_>) {
        let top = self.columns.len().saturating_sub(1);
        loop {
            // (column, the blocks of one full group)
            let mut full: Vec<(usize, Vec<Block>)> = Vec::new();
            for (j, column) in self.columns.iter_mut().enumerate() {
                column.sort_by_key(|b| std::cmp::Reverse(b.degree.get()));
                let mut open: Vec<Block> = Vec::new();
                let (mut degree, mut noise) = (0u64, 0u64);
                for block in column.drain(..) {
                    let (d, n) = (block.degree.get(), block.noise_level().get());
                    if !open.is_empty() && !r.fits(degree + d, noise + n) {
                        full.push((j, std::mem::take(&mut open)));
                        (degree, noise) = (0, 0);
                    }
                    degree += d;
                    noise += n;
                    open.push(block);
                }
                // A lone block above the limits (e.g. a partial result's column) is full too.
                if !r.fits(degree, noise) {
                    full.push((j, std::mem::take(&mut open)));
                }
                *column = open;
            }
            if full.is_empty() {
                return;
            }
            let reduced: Vec<(usize, Block, Option<Block>)> = full
                .into_par_iter()
                .map(|(j, group)| {
                    let mut blocks = group.into_iter();
                    let mut sum = blocks.next().expect("a group holds a block");
                    for b in blocks {
                        r.key.unchecked_add_assign(&mut sum, &b);
                    }
                    if j == top {
                        (j, r.key.apply_lookup_table(&sum, &r.message), None)
                    } else {
                        let (message, carry) = rayon::join(
                            || r.key.apply_lookup_table(&sum, &r.message),
                            || r.key.apply_lookup_table(&sum, &r.carry),
                        );
                        (j, message, Some(carry))
                    }
                })
                .collect();
            for (j, message, carry) in reduced {
                self.push_at(j, message);
                if let Some(carry) = carry {
                    self.push_at(j + 1, carry);
                }
            }
        }
    }

    /// Adds one block at position `j`, unless it is a trivial zero.
    fn push_at(&mut self, j: usize, block: Block) {
        if block.degree.get() == 0 {
            return;
        }
        assert!(
            j < self.columns.len(),
            "a block beyond the sum's width (the planner's widths are wrong)"
        );
        self.columns[j].push(block);
    }

    /// The sum as a radix number of `width` blocks whose carries are not propagated (each block
    /// decrypts to its message and carry). Reduces first.
    #[must_use]
    pub fn finish(mut self, r: &Reducer<'_>) -> RadixCiphertext {
        self.reduce(r);
        let blocks = self
            .columns
            .into_iter()
            .map(|column| {
                let mut blocks = column.into_iter();
                match blocks.next() {
                    None => r.key.create_trivial(0),
                    Some(mut sum) => {
                        for b in blocks {
                            r.key.unchecked_add_assign(&mut sum, &b);
                        }
                        sum
                    }
                }
            })
            .collect();
        RadixCiphertext::from_blocks(blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{EvaluationKey, SellerKey};

    fn decrypt(key: &SellerKey, ct: &RadixCiphertext) -> u128 {
        key.integer().decrypt_radix::<u128>(ct)
    }

    #[test]
    fn sums_of_many_numbers_stay_exact_without_propagation() {
        let key = SellerKey::generate();
        let eval = EvaluationKey::from_compressed(&key.server_key());
        let short: &ServerKey = eval.integer.as_ref();
        let r = Reducer::new(short);
        let ck = key.integer();
        // 40 numbers of up to 3 blocks into 7 blocks (their sum needs 6), pushed in batches of 7 with reductions in
        // between, plus a few one-bit blocks: as a scan pushes masked values and count bits.
        let values: Vec<u64> = (0..40u64).map(|i| (i * 37 + 11) % 64).collect();
        let mut acc = Accumulator::new(7);
        for batch in values.chunks(7) {
            for &v in batch {
                acc.push(&ck.encrypt_radix(v, 3));
            }
            acc.push(&ck.encrypt_radix(1u64, 1));
            acc.reduce(&r);
            assert!(
                acc.columns.iter().all(|c| {
                    let degree: u64 = c.iter().map(|b| b.degree.get()).sum();
                    let noise: u64 = c.iter().map(|b| b.noise_level().get()).sum();
                    r.fits(degree, noise)
                }),
                "after a reduction every column fits one block"
            );
        }
        let batches = values.len().div_ceil(7) as u64;
        let want = u128::from(values.iter().sum::<u64>() + batches);
        let sum = acc.clone().finish(&r);
        assert!(
            sum.blocks()
                .iter()
                .all(|b| r.fits(b.degree.get(), b.noise_level().get()))
        );
        assert_eq!(decrypt(&key, &sum), want);
        // Finished sums (carries in every block) accumulate again, as partial results combine.
        let mut both = Accumulator::new(7);
        both.push(&sum);
        both.push(&sum);
        assert_eq!(decrypt(&key, &both.finish(&r)), 2 * want);
    }
}
