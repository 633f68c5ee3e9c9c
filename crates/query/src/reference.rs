//! The plaintext reference: the aggregates a bound query computes, summed over the clear rows.
//! Every encrypted plan must decrypt to exactly these (the tests check it), the seller
//! encrypts the totals from them at onboarding, and (in the privacy work) checks a worker's
//! decrypted result against them before releasing anything.

use serde::{Deserialize, Serialize};

use crate::ingest::Table;
use crate::layout::{LayoutHeader, offset};
use crate::plan::{Bound, Term};

/// Decrypted aggregates per output group: (COUNT, Σ offset, Σ offset²), and per group the sums
/// of the plan's terms (empty for `cohort_stats`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregates {
    pub groups: Vec<(u128, Option<u128>, Option<u128>)>,
    #[serde(default)]
    pub terms: Vec<Vec<u128>>,
}

/// The output group row `row` counts in, `None` when the bound query's filters exclude it.
#[must_use]
pub fn group_of(table: &Table, bound: &Bound, header: &LayoutHeader, row: usize) -> Option<usize> {
    if bound.empty {
        return None;
    }
    let schema = &table.schema;
    let value = |c: usize| table.columns[c][row];
    let offset = |c: usize| offset(&schema.columns[c].kind, value(c), header.days);
    let category_ok = bound
        .categories
        .iter()
        .all(|(c, allowed)| allowed.contains(&usize::try_from(value(*c)).unwrap_or(usize::MAX)));
    let day_ok = match (bound.days, schema.day_column()) {
        (Some((lo, hi)), Some(d)) => (lo..=hi).contains(&offset(d)),
        _ => true,
    };
    let range_ok = bound.ranges.iter().all(|&(c, lo, hi)| {
        lo.is_none_or(|lo| offset(c) >= lo) && hi.is_none_or(|hi| offset(c) <= hi)
    });
    (category_ok && day_ok && range_ok).then(|| {
        bound.groups.iter().fold(0, |acc, &(c, k)| {
            acc * k + usize::try_from(value(c)).unwrap_or(0)
        })
    })
}

/// The rows a bound query reads, as sets of row indices (bitsets of `u64` words): the rows its
/// filters select, and those of each output group. Two answered queries whose sets differ in a
/// few rows reveal those rows by subtraction: the seller compares them before releasing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cohorts {
    /// Every row the filters select.
    pub selected: RowSet,
    /// Per output group, the selected rows in it.
    pub groups: Vec<RowSet>,
}

/// A set of rows of one table, one bit a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowSet(Vec<u64>);

impl RowSet {
    fn empty(rows: usize) -> Self {
        Self(vec![0; rows.div_ceil(64)])
    }

    fn insert(&mut self, row: usize) {
        self.0[row / 64] |= 1 << (row % 64);
    }

    /// Rows in the set.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Whether no row is in it.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// Rows in exactly one of the two sets (of the same table).
    #[must_use]
    pub fn difference_len(&self, other: &RowSet) -> u64 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| u64::from((a ^ b).count_ones()))
            .sum()
    }
}

/// The row sets of a bound query on `table`.
#[must_use]
pub fn cohorts(table: &Table, bound: &Bound, header: &LayoutHeader) -> Cohorts {
    let rows = table.rows();
    let mut selected = RowSet::empty(rows);
    let mut groups = vec![RowSet::empty(rows); bound.group_count()];
    for row in 0..rows {
        if let Some(g) = group_of(table, bound, header, row) {
            selected.insert(row);
            groups[g].insert(row);
        }
    }
    Cohorts { selected, groups }
}

/// The same aggregates computed on plaintext (the reference every plan must match exactly).
#[must_use]
pub fn reference(table: &Table, bound: &Bound, header: &LayoutHeader) -> Aggregates {
    let schema = &table.schema;
    let mut groups = vec![
        (
            0u128,
            bound.want_sum.then_some(0u128),
            bound.want_squares.then_some(0u128)
        );
        bound.group_count()
    ];
    let mut terms = vec![vec![0u128; bound.terms.len()]; bound.group_count()];
    if bound.empty {
        return Aggregates { groups, terms };
    }
    for row in 0..table.rows() {
        let value = |c: usize| table.columns[c][row];
        let offset = |c: usize| offset(&schema.columns[c].kind, value(c), header.days);
        let Some(g) = group_of(table, bound, header, row) else {
            continue;
        };
        let e = &mut groups[g];
        e.0 += 1;
        if let Some(m) = bound.measure {
            let o = u128::from(offset(m));
            if let Some(s) = e.1.as_mut() {
                *s += o;
            }
            if let Some(q) = e.2.as_mut() {
                *q += o * o;
            }
        }
        for (t, sum) in bound.terms.iter().zip(&mut terms[g]) {
            *sum += match *t {
                Term::Indicator { column, value: v } => {
                    let hot = match header.derived_column(column) {
                        Some(d) => d.hot(value),
                        None => usize::try_from(value(column)).ok(),
                    };
                    u128::from(hot == Some(v))
                }
                Term::Value { column } => match header.derived_column(column) {
                    Some(d) => d.product(offset),
                    None => u128::from(offset(column)),
                },
                Term::Square { column } => u128::from(offset(column)) * u128::from(offset(column)),
            };
        }
    }
    Aggregates { groups, terms }
}
