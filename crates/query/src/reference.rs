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
        let category_ok = bound.categories.iter().all(|(c, allowed)| {
            allowed.contains(&usize::try_from(value(*c)).unwrap_or(usize::MAX))
        });
        let day_ok = match (bound.days, schema.day_column()) {
            (Some((lo, hi)), Some(d)) => (lo..=hi).contains(&offset(d)),
            _ => true,
        };
        let range_ok = bound.ranges.iter().all(|&(c, lo, hi)| {
            lo.is_none_or(|lo| offset(c) >= lo) && hi.is_none_or(|hi| offset(c) <= hi)
        });
        if !(category_ok && day_ok && range_ok) {
            continue;
        }
        let g = bound.groups.iter().fold(0, |acc, &(c, k)| {
            acc * k + usize::try_from(value(c)).unwrap_or(0)
        });
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
