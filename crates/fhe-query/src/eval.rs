//! Evaluation on ciphertexts. Never decrypts: the worker holds only the evaluation key.
//!
//! Works with TFHE-rs' integer API and an explicit [`tfhe::integer::ServerKey`] rather than the
//! high-level API, whose server key is thread-local: an explicit key is shared by reference with
//! every rayon worker thread, and the shortint-level steps (indicator ANDs, masking) spend exactly
//! the bootstraps the planner counts.
//!
//! Scans run chunk by chunk and, inside a chunk, in batches of rows in parallel; each batch's
//! contributions are added column by column into running per-group sums that leave their carries
//! for the seller (`accumulate`), so memory stays bounded (a bootstrapped block is ~16 KiB)
//! whatever the dataset size. A chunk's result is a partial aggregate; [`combine`] adds partial
//! aggregates from several chunks or workers, and [`complete`] finishes a complement scan.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::integer::ciphertext::IntegerRadixCiphertext;
use tfhe::integer::{IntegerCiphertext, RadixCiphertext, ServerKey};
use tfhe::named::Named;
use tfhe::safe_serialization::safe_deserialize;
use tfhe::shortint::Ciphertext as Block;
use tfhe::shortint::server_key::{BivariateLookupTableOwned, LookupTableOwned};
use tfhe_versionable::{Upgrade, Version, Versionize, VersionsDispatch};

use datacloud_query::layout::LayoutHeader;
use datacloud_query::plan::{Plan, PlanKind, Term};

use crate::accumulate::{Accumulator, Reducer};
use crate::encrypt::{EncryptedChunk, EncryptedCube, EncryptedDataset, EncryptedTotals};
use crate::error::LayoutError;
use crate::keys::EvaluationKey;

/// Rows evaluated together before their contributions are folded into the running sums.
pub const BATCH_ROWS: usize = 16;
/// Largest serialized result accepted from outside.
pub const MAX_RESULT_BYTES: u64 = 64 << 20;

/// Encrypted aggregates of one output group: COUNT, Σ offset and Σ offset² of the measure, and
/// the sums of the plan's [`Term`]s (other templates).
#[derive(Clone, Serialize, Deserialize, Versionize)]
#[versionize(EncryptedGroupVersions)]
pub struct EncryptedGroup {
    pub count: RadixCiphertext,
    pub sum: Option<RadixCiphertext>,
    pub squares: Option<RadixCiphertext>,
    /// One sum per term of the plan, in its order (empty for `cohort_stats`).
    pub terms: Vec<RadixCiphertext>,
}

/// The first encoding, before templates other than `cohort_stats` summed terms.
#[derive(Version)]
pub struct EncryptedGroupV0 {
    pub count: RadixCiphertext,
    pub sum: Option<RadixCiphertext>,
    pub squares: Option<RadixCiphertext>,
}

impl Upgrade<EncryptedGroup> for EncryptedGroupV0 {
    type Error = std::convert::Infallible;

    fn upgrade(self) -> Result<EncryptedGroup, Self::Error> {
        Ok(EncryptedGroup {
            count: self.count,
            sum: self.sum,
            squares: self.squares,
            terms: Vec::new(),
        })
    }
}

#[derive(VersionsDispatch)]
pub enum EncryptedGroupVersions {
    V0(EncryptedGroupV0),
    V1(EncryptedGroup),
}

/// The encrypted result of a query (or a partial result of some chunks).
#[derive(Clone, Serialize, Deserialize, Versionize)]
#[versionize(EncryptedResultVersions)]
pub struct EncryptedResult {
    /// Rows this result covers (a partial result covers some chunks).
    pub rows: u64,
    pub groups: Vec<EncryptedGroup>,
}

#[derive(VersionsDispatch)]
pub enum EncryptedResultVersions {
    V0(EncryptedResult),
}

impl Named for EncryptedResult {
    const NAME: &'static str = "datacloud::fhe_query::EncryptedResult";
}

impl EncryptedResult {
    /// Safe-serializes the result.
    ///
    /// # Errors
    /// [`LayoutError::Serialize`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, LayoutError> {
        crate::encrypt::to_bytes_bounded(self, MAX_RESULT_BYTES)
    }

    /// Reads a result from untrusted bytes and checks its shape against the plan.
    ///
    /// # Errors
    /// [`LayoutError::Deserialize`] or [`LayoutError::Mismatch`].
    pub fn from_bytes(bytes: &[u8], plan: &Plan) -> Result<Self, LayoutError> {
        let result: EncryptedResult =
            safe_deserialize(bytes, MAX_RESULT_BYTES).map_err(LayoutError::Deserialize)?;
        let b = &plan.bound;
        let fits = |ct: &RadixCiphertext, w: u32| {
            ct.blocks().len() == w as usize && ct.blocks().iter().all(conformant)
        };
        let ok = result.groups.len() == b.group_count()
            && result.groups.iter().all(|g| {
                fits(&g.count, b.count_blocks)
                    && g.sum
                        .as_ref()
                        .map_or(!b.want_sum, |s| fits(s, b.sum_blocks))
                    && g.squares
                        .as_ref()
                        .map_or(!b.want_squares, |s| fits(s, b.square_blocks))
                    && g.terms.len() == b.terms.len()
                    && g.terms.iter().zip(&b.term_blocks).all(|(t, &w)| fits(t, w))
            });
        if !ok {
            return Err(LayoutError::Mismatch(
                "result shape does not match the plan, or a block is not a ciphertext of the dataset's parameters".into(),
            ));
        }
        Ok(result)
    }
}

/// A block of a worker's result is a ciphertext of the dataset's parameters: TFHE-rs'
/// conformance check for [`crate::keys::PARAMETERS`] (LWE dimension and modulus, message and
/// carry moduli, atomic pattern), with the metadata a computation may leave — a degree within
/// the block's message and carry space, a noise level the server key would still bootstrap —
/// instead of a fresh block's. A block claiming a wider message space (so that decryption
/// would return more phase bits, noise included) or another key's dimension is refused before
/// anything is decrypted.
fn conformant(block: &Block) -> bool {
    use tfhe::conformance::ParameterSetConformant as _;
    use tfhe::integer::parameters::RadixCiphertextConformanceParams;
    let params = crate::keys::PARAMETERS;
    let fresh = RadixCiphertextConformanceParams::from_pbs_parameters(params, 1).shortint_params;
    let max_degree = fresh.message_modulus.0 * fresh.carry_modulus.0 - 1;
    block.degree.get() <= max_degree
        && block.noise_level().get() <= params.max_noise_level.get()
        && block.is_conformant(&tfhe::shortint::parameters::CiphertextConformanceParams {
            degree: block.degree,
            noise_level: block.noise_level(),
            ..fresh
        })
}

/// Evaluates `plan` on a whole dataset; `progress(rows_done)` is called as chunks finish.
///
/// # Errors
/// [`LayoutError::Mismatch`] when the dataset lacks what the plan reads (e.g. no cube).
pub fn evaluate(
    plan: &Plan,
    dataset: &EncryptedDataset,
    key: &EvaluationKey,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<EncryptedResult, LayoutError> {
    match plan.kind {
        PlanKind::Totals => {
            let totals = dataset
                .totals
                .as_ref()
                .ok_or_else(|| LayoutError::Mismatch("the dataset has no totals".into()))?;
            let result = evaluate_totals(plan, &dataset.header, totals)?;
            progress(dataset.header.rows);
            Ok(result)
        }
        PlanKind::Cube => {
            let cube = dataset
                .cube
                .as_ref()
                .ok_or_else(|| LayoutError::Mismatch("the dataset has no cube".into()))?;
            let result = evaluate_cube(plan, &dataset.header, cube, key)?;
            progress(dataset.header.rows);
            Ok(result)
        }
        PlanKind::IndicatorScan | PlanKind::RowScan => {
            let mut partials = Vec::with_capacity(dataset.chunks.len());
            for chunk in &dataset.chunks {
                partials.push(evaluate_chunk(plan, &dataset.header, chunk, key)?);
                progress(u64::from(chunk.rows));
            }
            complete(plan, combine(plan, &partials, key), dataset, key)
        }
    }
}

/// The shortint-level tools a scan uses, built once per evaluation.
struct Scan<'a> {
    sks: &'a ServerKey,
    plan: &'a Plan,
    header: &'a LayoutHeader,
    /// `[n]`: 1 when the sum of n bits equals n (the AND of n bits).
    all_ones: Vec<LookupTableOwned>,
    /// A fresh copy of a bit: 1 when the input (a bit, or a sum of one-hot bits) is non-zero.
    bit_copy: LookupTableOwned,
    /// (bit, block) → block when bit is 1, else 0.
    mask: BivariateLookupTableOwned,
    /// Blocks of the measure's value and square that can be non-zero in a row the filter keeps.
    masked_blocks: (usize, usize),
}

impl<'a> Scan<'a> {
    fn new(plan: &'a Plan, header: &'a LayoutHeader, key: &'a EvaluationKey) -> Self {
        let sks = &key.integer;
        let short: &tfhe::shortint::ServerKey = sks.as_ref();
        Scan {
            sks,
            plan,
            header,
            all_ones: (0..=3u64)
                .map(|n| short.generate_lookup_table(move |x| u64::from(x == n)))
                .collect(),
            // Not the identity: its output degree would be the whole block (carries "full"),
            // which radix sums refuse; a bit's copy has degree 1.
            bit_copy: short.generate_lookup_table(|x| u64::from(x != 0)),
            mask: short.generate_lookup_table_bivariate(|bit, x| if bit == 1 { x } else { 0 }),
            masked_blocks: plan.bound.masked_blocks(header),
        }
    }

    fn short(&self) -> &tfhe::shortint::ServerKey {
        self.sks.as_ref()
    }

    /// A clean copy of a bit whose noise is above nominal (one PBS).
    fn clean(&self, bit: Block) -> Block {
        if bit.noise_level().get() > 1 {
            self.short().apply_lookup_table(&bit, &self.bit_copy)
        } else {
            bit
        }
    }

    /// The AND of bits (each 0 or 1): sums of up to 3 bits — which fit the 2-bit message — go
    /// through one PBS that tests "sum == count". Noise is kept within the parameters' maximum.
    /// The result is clean (usable as the left input of a bivariate PBS).
    fn and_all(&self, mut terms: Vec<Block>) -> Option<Block> {
        let max = self.short().max_noise_level.get();
        while terms.len() > 1 {
            let first = terms.remove(0);
            let mut noise = first.noise_level().get();
            let mut sum = first;
            let mut count = 1;
            while count < 3 && !terms.is_empty() && noise + terms[0].noise_level().get() <= max {
                let next = terms.remove(0);
                noise += next.noise_level().get();
                self.short().unchecked_add_assign(&mut sum, &next);
                count += 1;
            }
            let reduced = if count == 1 {
                self.clean(sum)
            } else {
                self.short().apply_lookup_table(&sum, &self.all_ones[count])
            };
            terms.push(reduced);
        }
        terms.pop().map(|t| self.clean(t))
    }

    /// The sum of one-hot indicator bits of the allowed values (0 or 1), without PBS while the
    /// noise allows, cleaning in between otherwise.
    fn any_of(&self, bits: Vec<Block>) -> Block {
        let max = self.short().max_noise_level.get();
        let mut iter = bits.into_iter();
        // Filters never allow zero values (the planner marks those queries empty).
        let mut acc = iter.next().expect("an IN filter allows at least one value");
        for bit in iter {
            if acc.noise_level().get() + bit.noise_level().get() > max {
                acc = self.clean(acc);
            }
            self.short().unchecked_add_assign(&mut acc, &bit);
        }
        acc
    }

    /// The row's filter conditions, as bits.
    fn conditions(&self, chunk: &EncryptedChunk, row: usize) -> Vec<Block> {
        let b = &self.plan.bound;
        let mut bits = Vec::new();
        for (c, allowed) in &b.categories {
            let chosen = allowed
                .iter()
                .map(|&v| first_block(chunk.indicators[*c][v][row].decompress()))
                .collect();
            bits.push(self.any_of(chosen));
        }
        let mut compare = |column: usize, lo: Option<u64>, hi: Option<u64>| {
            let value = chunk.values[column][row].decompress();
            let (ge, le) = rayon::join(
                || lo.map(|lo| self.sks.scalar_ge_parallelized(&value, lo)),
                || hi.map(|hi| self.sks.scalar_le_parallelized(&value, hi)),
            );
            bits.extend(
                ge.into_iter()
                    .chain(le)
                    .map(tfhe::integer::BooleanBlock::into_raw_parts),
            );
        };
        if let (Some((lo, hi)), Some(day)) = (b.days, self.header.schema.day_column()) {
            let last = self.header.days.map_or(0, |d| d.1.abs_diff(d.0));
            compare(day, (lo > 0).then_some(lo), (hi < last).then_some(hi));
        }
        for &(c, lo, hi) in &b.ranges {
            compare(c, lo, hi);
        }
        bits
    }

    /// One row's contribution to every group: the slots (count bit, masked value, masked
    /// square, then each masked term) as radix numbers, least significant block first. A `None`
    /// count means "every row counts" (no filter, no group).
    fn row(&self, chunk: &EncryptedChunk, row: usize) -> Vec<Vec<Option<RadixCiphertext>>> {
        let b = &self.plan.bound;
        let mut conditions = self.conditions(chunk, row);
        if conditions.len() > 1 && conditions.len() + b.groups.len() > 3 {
            conditions = self.and_all(conditions).into_iter().collect();
        }
        let value = (b.want_sum)
            .then(|| b.measure.map(|m| chunk.values[m][row].decompress()))
            .flatten();
        let square = (b.want_squares)
            .then(|| b.measure.map(|m| chunk.squares[m][row].decompress()))
            .flatten();
        // Each term's stored ciphertext, decompressed once for every group.
        let terms: Vec<RadixCiphertext> = b
            .terms
            .par_iter()
            .map(|t| match *t {
                Term::Indicator { column, value } => {
                    chunk.indicators[column][value][row].decompress()
                }
                Term::Value { column } => chunk.values[column][row].decompress(),
                Term::Square { column } => chunk.squares[column][row].decompress(),
            })
            .collect();
        (0..b.group_count())
            .into_par_iter()
            .map(|g| {
                let mut bits = conditions.clone();
                for (&(column, _), v) in b.groups.iter().zip(b.group_values(g)) {
                    bits.push(first_block(chunk.indicators[column][v][row].decompress()));
                }
                let bit = self.and_all(bits);
                // The low `keep` blocks masked by the row's bit (the others are zero in every row
                // the bit keeps).
                let masked = |ct: &RadixCiphertext, keep: usize| {
                    RadixCiphertext::from_blocks(match &bit {
                        Some(bit) => ct.blocks()[..keep.min(ct.blocks().len())]
                            .par_iter()
                            .map(|x| {
                                self.short()
                                    .unchecked_apply_lookup_table_bivariate(bit, x, &self.mask)
                            })
                            .collect(),
                        None => ct.blocks().to_vec(),
                    })
                };
                let count = bit
                    .as_ref()
                    .map(|bit| RadixCiphertext::from_blocks(vec![bit.clone()]));
                let (value_blocks, square_blocks) = self.masked_blocks;
                let mut slots = vec![
                    count,
                    value.as_ref().map(|v| masked(v, value_blocks)),
                    square.as_ref().map(|q| masked(q, square_blocks)),
                ];
                slots.par_extend(b.terms.par_iter().zip(&terms).map(|(t, ct)| {
                    Some(match (t, &bit) {
                        // An indicator ANDed with the row's bit: one PBS.
                        (Term::Indicator { .. }, Some(bit)) => {
                            let one = first_block(ct.clone());
                            let and = self.and_all(vec![bit.clone(), one]);
                            // Two bits always give one (`and_all` of a non-empty list).
                            let and = and.expect("the AND of two bits");
                            RadixCiphertext::from_blocks(vec![and])
                        }
                        _ => masked(ct, ct.blocks().len()),
                    })
                }));
                slots
            })
            .collect()
    }
}

fn first_block(ct: RadixCiphertext) -> Block {
    // Indicators are encrypted as one-block radix numbers (checked by `EncryptedChunk::check`).
    ct.into_blocks().swap_remove(0)
}

/// Evaluates a scan plan on one chunk: a partial result over its rows.
///
/// # Errors
/// [`LayoutError::Mismatch`] when the chunk does not fit the header.
pub fn evaluate_chunk(
    plan: &Plan,
    header: &LayoutHeader,
    chunk: &EncryptedChunk,
    key: &EvaluationKey,
) -> Result<EncryptedResult, LayoutError> {
    chunk.check(header)?;
    let plan = &plan.chunk_scan(header)?;
    let b = &plan.bound;
    let scan = Scan::new(plan, header, key);
    let reducer = Reducer::new(key.integer.as_ref());
    let widths = slot_widths(plan);
    let rows = chunk.rows as usize;
    let mut running: Vec<Vec<Accumulator>> = (0..b.group_count())
        .map(|_| widths.iter().map(|&w| Accumulator::new(w)).collect())
        .collect();
    // Whether a slot received anything: a count that never does means "every row counts".
    let mut seen = vec![false; widths.len()];
    if !b.empty {
        for start in (0..rows).step_by(BATCH_ROWS) {
            let end = (start + BATCH_ROWS).min(rows);
            let contributions: Vec<_> = (start..end)
                .into_par_iter()
                .map(|r| scan.row(chunk, r))
                .collect();
            for row in contributions {
                for (group, slots) in running.iter_mut().zip(row) {
                    for ((acc, slot), seen) in group.iter_mut().zip(slots).zip(&mut seen) {
                        if let Some(ct) = slot {
                            acc.push(&ct);
                            *seen = true;
                        }
                    }
                }
            }
            running
                .par_iter_mut()
                .flat_map(IntoParallelRefMutIterator::par_iter_mut)
                .for_each(|acc| acc.reduce(&reducer));
        }
    }
    let sums: Vec<Vec<RadixCiphertext>> = running
        .into_par_iter()
        .map(|g| g.into_par_iter().map(|acc| acc.finish(&reducer)).collect())
        .collect();
    let groups = sums
        .into_iter()
        .map(|mut slots| {
            let terms = slots.split_off(3);
            let mut slots = slots.into_iter();
            let (count, sum, squares) = (slots.next(), slots.next(), slots.next());
            EncryptedGroup {
                // No condition at all: every row counts, and the count is the public row count.
                count: match count {
                    Some(count) if seen[0] || b.empty => count,
                    _ => key
                        .integer
                        .create_trivial_radix(u64::from(chunk.rows), b.count_blocks as usize),
                },
                sum: sum.filter(|_| b.want_sum),
                squares: squares.filter(|_| b.want_squares),
                terms,
            }
        })
        .collect();
    Ok(EncryptedResult {
        rows: u64::from(chunk.rows),
        groups,
    })
}

/// Widths (blocks) of a scan's slots: count, Σ, Σ², then each term.
fn slot_widths(plan: &Plan) -> Vec<usize> {
    let b = &plan.bound;
    [b.count_blocks, b.sum_blocks, b.square_blocks]
        .iter()
        .chain(&b.term_blocks)
        .map(|&w| w as usize)
        .collect()
}

/// Adds partial results (from chunks or workers) into one.
#[must_use]
pub fn combine(plan: &Plan, partials: &[EncryptedResult], key: &EvaluationKey) -> EncryptedResult {
    let b = &plan.bound;
    let reducer = Reducer::new(key.integer.as_ref());
    let rows = partials.iter().map(|p| p.rows).sum();
    let add = |items: Vec<&RadixCiphertext>, width: u32| {
        let mut acc = Accumulator::new(width as usize);
        for ct in items {
            acc.push(ct);
        }
        acc.finish(&reducer)
    };
    let groups = (0..b.group_count())
        .into_par_iter()
        .map(|g| {
            let pick = |f: &dyn Fn(&EncryptedGroup) -> Option<&RadixCiphertext>| {
                partials
                    .iter()
                    .filter_map(|p| p.groups.get(g).and_then(f))
                    .collect::<Vec<_>>()
            };
            EncryptedGroup {
                count: add(pick(&|x| Some(&x.count)), b.count_blocks),
                sum: b
                    .want_sum
                    .then(|| add(pick(&|x| x.sum.as_ref()), b.sum_blocks)),
                squares: b
                    .want_squares
                    .then(|| add(pick(&|x| x.squares.as_ref()), b.square_blocks)),
                terms: b
                    .term_blocks
                    .par_iter()
                    .enumerate()
                    .map(|(t, &w)| add(pick(&|x| x.terms.get(t)), w))
                    .collect(),
            }
        })
        .collect();
    EncryptedResult { rows, groups }
}

/// Finishes a scan's combined result: for a complement plan ([`Plan::complement`]), its base
/// ([`Plan::complement_base`]: the query without its lower bound, from the totals or the cube
/// of `base`) minus the scanned complement, group by group; any other result is returned as it
/// is.
///
/// # Errors
/// [`LayoutError::Mismatch`] when a complement plan comes without the totals or cube it needs.
pub fn complete(
    plan: &Plan,
    result: EncryptedResult,
    base: &EncryptedDataset,
    key: &EvaluationKey,
) -> Result<EncryptedResult, LayoutError> {
    let Some(base_plan) = plan.complement_base(&base.header)? else {
        return Ok(result);
    };
    let all = evaluate(&base_plan, base, key, &|_| {})?;
    let sks = &key.integer;
    // The complement's sums keep their carries, so the subtraction propagates them (a few dozen
    // PBS per group, once per query). Widths match: the planner checks the base's against the
    // result's.
    let sub = |total: &RadixCiphertext, part: &RadixCiphertext| sks.sub_parallelized(total, part);
    let groups = all
        .groups
        .par_iter()
        .zip(&result.groups)
        .map(|(all, part)| EncryptedGroup {
            count: sub(&all.count, &part.count),
            sum: all
                .sum
                .as_ref()
                .zip(part.sum.as_ref())
                .map(|(a, p)| sub(a, p)),
            squares: all
                .squares
                .as_ref()
                .zip(part.squares.as_ref())
                .map(|(a, p)| sub(a, p)),
            terms: Vec::new(),
        })
        .collect();
    Ok(EncryptedResult {
        rows: result.rows,
        groups,
    })
}

/// Evaluates a totals plan: the stored sums the query needs, decompressed. No bootstrapping.
///
/// # Errors
/// [`LayoutError::Mismatch`] when the plan needs a sum the totals do not hold.
pub fn evaluate_totals(
    plan: &Plan,
    header: &LayoutHeader,
    totals: &EncryptedTotals,
) -> Result<EncryptedResult, LayoutError> {
    let b = &plan.bound;
    let stored = header.total_terms();
    let read = |term: Term| {
        stored
            .iter()
            .position(|&t| t == term)
            .and_then(|i| totals.terms.get(i))
            .map(crate::seeded::SeededRadix::decompress)
            .ok_or_else(|| LayoutError::Mismatch("the totals lack a sum the plan reads".into()))
    };
    let measure = |want: bool, term: fn(usize) -> Term| match (want, b.measure) {
        (false, _) => Ok(None),
        (true, Some(column)) => read(term(column)).map(Some),
        (true, None) => Err(LayoutError::Mismatch("a sum without a measure".into())),
    };
    let group = EncryptedGroup {
        count: totals.count.decompress(),
        sum: measure(b.want_sum, |column| Term::Value { column })?,
        squares: measure(b.want_squares, |column| Term::Square { column })?,
        terms: b.terms.iter().map(|&t| read(t)).collect::<Result<_, _>>()?,
    };
    Ok(EncryptedResult {
        rows: header.rows,
        groups: vec![group],
    })
}

/// Evaluates a cube plan: per output group, Σ of the matching cells' prefix aggregates at the
/// window's last day, minus the same at the day before the window.
///
/// # Errors
/// [`LayoutError::Mismatch`] when the header has no cube layout.
pub fn evaluate_cube(
    plan: &Plan,
    header: &LayoutHeader,
    cube: &EncryptedCube,
    key: &EvaluationKey,
) -> Result<EncryptedResult, LayoutError> {
    let layout = header
        .cube
        .as_ref()
        .ok_or_else(|| LayoutError::Mismatch("the layout has no cube".into()))?;
    let b = &plan.bound;
    let sks = &key.integer;
    let days = layout.days as usize;
    let (lo, hi) = b.days.map_or((0, days - 1), |(lo, hi)| {
        (
            usize::try_from(lo).unwrap_or(0),
            usize::try_from(hi).unwrap_or(days - 1).min(days - 1),
        )
    });
    let measure = b
        .measure
        .and_then(|m| layout.measures.iter().position(|&x| x == m));
    let groups = (0..b.group_count())
        .into_par_iter()
        .map(|g| {
            let fixed: Vec<(usize, usize)> = b
                .groups
                .iter()
                .map(|gr| gr.0)
                .zip(b.group_values(g))
                .collect();
            // Every combination of the cube's dimension values that this group and the filters allow.
            let mut cells = vec![0usize];
            for &(column, k) in &layout.dimensions {
                let values: Vec<usize> = if let Some(&(_, v)) = fixed.iter().find(|f| f.0 == column)
                {
                    vec![v]
                } else if let Some((_, allowed)) = b.categories.iter().find(|f| f.0 == column) {
                    allowed.clone()
                } else {
                    (0..k).collect()
                };
                cells = cells
                    .iter()
                    .flat_map(|&c| values.iter().map(move |&v| c * k + v))
                    .collect();
            }
            let window = |pick: &(dyn Fn(&crate::encrypt::CubeEntry) -> RadixCiphertext + Sync),
                          width: u32| {
                let total = |day: usize| {
                    let items: Vec<RadixCiphertext> = cells
                        .iter()
                        .map(|&c| pick(&cube.entries[c * days + day]))
                        .collect();
                    if items.len() == 1 {
                        items.into_iter().next()
                    } else {
                        sks.unchecked_sum_ciphertexts_vec_parallelized(items)
                    }
                };
                let zero = || sks.create_trivial_zero_radix(width as usize);
                if b.empty {
                    return zero();
                }
                let end = total(hi).unwrap_or_else(zero);
                if lo == 0 {
                    end
                } else {
                    let start = total(lo - 1).unwrap_or_else(zero);
                    // Only the seller reads the window, and it decrypts each block's message
                    // and carry (`policy::decrypt` keeps the low 2·width bits), so the worker
                    // leaves the subtraction's carries where they are: no PBS. Two clean
                    // operands always leave room for it; the propagating form is the fallback.
                    if sks.is_sub_possible(&end, &start).is_ok() {
                        sks.unchecked_sub(&end, &start)
                    } else {
                        sks.sub_parallelized(&end, &start)
                    }
                }
            };
            EncryptedGroup {
                count: window(&|e| e.count.decompress(), b.count_blocks),
                sum: b.want_sum.then(|| {
                    measure.map_or_else(
                        || sks.create_trivial_zero_radix(b.sum_blocks as usize),
                        |m| window(&|e| e.sums[m].decompress(), b.sum_blocks),
                    )
                }),
                squares: b.want_squares.then(|| {
                    measure.map_or_else(
                        || sks.create_trivial_zero_radix(b.square_blocks as usize),
                        |m| window(&|e| e.squares[m].decompress(), b.square_blocks),
                    )
                }),
                // The planner sends only `cohort_stats` (no terms) to the cube.
                terms: Vec::new(),
            }
        })
        .collect();
    Ok(EncryptedResult {
        rows: header.rows,
        groups,
    })
}
