//! The planner: binds a query to a dataset's layout and picks the cheapest plan that answers it
//! exactly. Every plan computes the same aggregates (COUNT, Σ offset, Σ offset²) per group, so all
//! plans decrypt to identical results; they differ only in the bootstraps (PBS) they spend.
//!
//! - **cube**: the query's groups and category filters lie within the cube's dimensions and its
//!   only other filter is a day window → each output is a sum of prefix cells at the window's end
//!   minus the same at its start. Cost does not depend on the number of rows.
//! - **indicator scan**: category filters and groups only → per row, ANDs of indicator bits
//!   (one PBS per group) and masking of the measure (one PBS per block).
//! - **row scan**: anything else (day windows without a cube, numeric ranges) → per row, encrypted
//!   comparisons against clear bounds, then as the indicator scan.
//!
//! `histogram`, `fraud_model` and `linear_regression` bind to the same machinery: besides COUNT,
//! each output group sums a list of [`Term`]s — stored indicator bits (histogram buckets,
//! fraud-masked feature indicators) or stored integers (values, squares, products). Without
//! filters or groups a term is a plain sum of stored ciphertexts (no PBS per row); with them,
//! each term is masked by the row's filter bit (one PBS per indicator, one per value block).
//! The cube holds none of these sums, so these templates always scan.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::QueryError;
pub use crate::layout::Term;
use crate::layout::{DerivedColumn, LayoutHeader, bits_for_u128};
use crate::schema::{ColumnKind, blocks_for, parse_date};
use crate::template::{
    Aggregate, CohortStats, Filter, FraudModel, Histogram, LinearRegression, Query, category_values,
};

/// Measured here: one PBS with the default parameters takes ~9.4 ms of one core.
pub const DEFAULT_PBS_SECONDS: f64 = 0.0094;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    Totals,
    Cube,
    IndicatorScan,
    RowScan,
}

impl PlanKind {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PlanKind::Totals => "totals",
            PlanKind::Cube => "cube",
            PlanKind::IndicatorScan => "indicator-scan",
            PlanKind::RowScan => "row-scan",
        }
    }
}

/// A query bound to a dataset: column indices, value indices and offsets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub measure: Option<usize>,
    pub want_sum: bool,
    pub want_squares: bool,
    pub aggregates: Vec<Aggregate>,
    /// GROUP BY columns and their cardinalities, in query order.
    pub groups: Vec<(usize, usize)>,
    /// Category filters: column and the allowed value indices (sorted; never all values).
    pub categories: Vec<(usize, Vec<usize>)>,
    /// Day window as offsets from the first day, inclusive; `None` when it covers all days.
    pub days: Option<(u64, u64)>,
    /// Integer ranges as offsets, inclusive; a bound is `None` when it excludes nothing.
    pub ranges: Vec<(usize, Option<u64>, Option<u64>)>,
    /// A filter excludes every row (e.g. a window after the last day).
    pub empty: bool,
    /// Widths of the result aggregates (blocks).
    pub count_blocks: u32,
    pub sum_blocks: u32,
    pub square_blocks: u32,
    /// What each output group sums besides COUNT (empty for `cohort_stats`).
    #[serde(default)]
    pub terms: Vec<Term>,
    /// Width (blocks) of each term's sum.
    #[serde(default)]
    pub term_blocks: Vec<u32>,
    /// The template, and how its decrypted sums become the buyer's result.
    #[serde(default)]
    pub output: Output,
}

/// The template a bound query answers, with what the output policy needs to turn its
/// decrypted sums into the buyer's result. Column indices are schema column indices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Output {
    /// COUNT, Σ and Σ² of the measure per group (no terms).
    #[default]
    CohortStats,
    /// Terms: one indicator per bucket of `column`'s declared histogram (`bounds` its edges).
    Histogram { column: usize, bounds: Vec<i64> },
    /// Terms: `label`, then for each of `columns` (the cohort and the features, each once) and
    /// each of its values: `column = v`, then `column = v AND label`.
    FraudModel {
        label: usize,
        cohort: Option<usize>,
        features: Vec<usize>,
        columns: Vec<usize>,
        alpha: u32,
    },
    /// Terms over `z = features ++ [target]`: `Σ z_i` for each i, then `Σ z_i·z_j` for i ≤ j
    /// (row-major upper triangle, squares on the diagonal). With COUNT these are the sufficient
    /// statistics of OLS: `n`, `Σx`, `XᵀX`, `Xᵀy`, `Σy`, `Σy²`.
    LinearRegression { target: usize, features: Vec<usize> },
}

impl Output {
    /// Term index of `Σ z_i·z_j` (`i ≤ j`) among `k + 1` regression variables.
    #[must_use]
    pub fn pair_term(variables: usize, i: usize, j: usize) -> usize {
        let (i, j) = if i <= j { (i, j) } else { (j, i) };
        // The first `variables` terms are the Σz_i; row r of the upper triangle holds
        // `variables - r` terms, so row i starts at i·v − i(i−1)/2.
        variables + i * variables - i * i.saturating_sub(1) / 2 + (j - i)
    }
}

impl Bound {
    /// Blocks of the measure's stored value and square that a scan masks and sums: all of them,
    /// or, when the filter bounds the measure above (`measure ≤ hi`), only those that can be
    /// non-zero in a row that passes it — the others are zero whether the row is kept or not.
    #[must_use]
    pub fn masked_blocks(&self, header: &LayoutHeader) -> (usize, usize) {
        let Some(m) = self.measure else {
            return (0, 0);
        };
        let stored = (
            header.value_blocks[m] as usize,
            header.square_blocks[m] as usize,
        );
        let hi = self
            .ranges
            .iter()
            .filter(|r| r.0 == m)
            .filter_map(|r| r.2)
            .min();
        hi.map_or(stored, |hi| {
            let hi = u128::from(hi);
            (
                stored.0.min(blocks(hi) as usize),
                stored.1.min(blocks(hi * hi) as usize),
            )
        })
    }

    /// Number of output groups (the product of GROUP BY cardinalities; 1 without GROUP BY).
    #[must_use]
    pub fn group_count(&self) -> usize {
        self.groups.iter().map(|g| g.1).product()
    }

    /// The value index of each GROUP BY column in output group `g`.
    #[must_use]
    pub fn group_values(&self, mut g: usize) -> Vec<usize> {
        let mut values = vec![0; self.groups.len()];
        for (i, &(_, k)) in self.groups.iter().enumerate().rev() {
            values[i] = g % k;
            g /= k;
        }
        values
    }
}

/// A plan: its kind, the bound query, and its cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub kind: PlanKind,
    pub bound: Bound,
    /// Estimated programmable bootstraps.
    pub pbs: u64,
    /// A row scan of the complement: the filter has a lower bound `measure ≥ lo`, and the scan
    /// sums the rows with `measure < lo` (and the other filters) instead — whose values are below
    /// `lo`, so fewer blocks are masked and summed — and subtracts them from the query without
    /// that bound, answered by the stored totals or the cube ([`Plan::chunk_scan`],
    /// [`Plan::complement_base`]). The planner lists it beside the direct scan, its base and
    /// subtraction counted in its PBS.
    #[serde(default)]
    pub complement: bool,
}

/// Binds `query` to the dataset described by `header`.
///
/// # Errors
/// [`QueryError`] when a column or value does not exist (call [`Query::validate`] first for the
/// full checks), or [`QueryError::PlanUnavailable`] when the layout lacks the derived columns a
/// template reads.
pub fn bind(query: &Query, header: &LayoutHeader) -> Result<Bound, QueryError> {
    let filters = bind_filters(query.filters(), header)?;
    match query {
        Query::CohortStats(q) => bind_cohort_stats(q, header, filters),
        Query::Histogram(q) => bind_histogram(q, header, filters),
        Query::FraudModel(q) => bind_fraud_model(q, header, filters),
        Query::LinearRegression(q) => bind_regression(q, header, filters),
    }
}

/// The row filters of a query, bound to offsets and value indices.
struct BoundFilters {
    categories: Vec<(usize, Vec<usize>)>,
    days: Option<(u64, u64)>,
    ranges: Vec<(usize, Option<u64>, Option<u64>)>,
    empty: bool,
}

fn column_index(header: &LayoutHeader, name: &str) -> Result<usize, QueryError> {
    header
        .schema
        .column_index(name)
        .ok_or_else(|| QueryError::UnknownColumn(name.into()))
}

fn bind_filters(filters: &[Filter], header: &LayoutHeader) -> Result<BoundFilters, QueryError> {
    let schema = &header.schema;
    let index = |name: &str| column_index(header, name);
    let mut categories: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut days: Option<(u64, u64)> = None;
    let mut ranges: Vec<(usize, Option<u64>, Option<u64>)> = Vec::new();
    let mut empty = false;
    let (first, last) = header.days.unwrap_or((0, 0));
    let mut window = (first, last);
    for f in filters {
        match f {
            Filter::In { column, values } => {
                let c = index(column)?;
                let known = category_values(&schema.columns[c].kind).unwrap_or_default();
                let mut allowed: Vec<usize> = values
                    .iter()
                    .filter_map(|v| known.iter().position(|k| k == v))
                    .collect();
                allowed.sort_unstable();
                allowed.dedup();
                if let Some(existing) = categories.iter_mut().find(|(col, _)| *col == c) {
                    existing.1.retain(|v| allowed.contains(v));
                } else {
                    categories.push((c, allowed));
                }
            }
            Filter::LastDays { days: n } => window.0 = window.0.max(last - i64::from(*n) + 1),
            Filter::DayRange { from, to } => {
                let (Some(a), Some(b)) = (parse_date(from), parse_date(to)) else {
                    return Err(QueryError::Unsupported(format!("day range {from} to {to}")));
                };
                window = (window.0.max(a), window.1.min(b));
            }
            Filter::Range { column, min, max } => {
                let c = index(column)?;
                let ColumnKind::Integer {
                    min: cmin,
                    max: cmax,
                    ..
                } = schema.columns[c].kind
                else {
                    return Err(QueryError::BadColumn {
                        column: column.clone(),
                        reason: "not an integer column".into(),
                    });
                };
                let lo = min.unwrap_or(cmin).max(cmin);
                let hi = max.unwrap_or(cmax).min(cmax);
                if lo > hi {
                    empty = true;
                    continue;
                }
                let lo = (lo > cmin).then(|| lo.abs_diff(cmin));
                let hi = (hi < cmax).then(|| hi.abs_diff(cmin));
                if lo.is_some() || hi.is_some() {
                    ranges.push((c, lo, hi));
                }
            }
        }
    }
    if window != (first, last) {
        if window.0 > window.1 {
            empty = true;
        } else {
            days = Some((window.0.abs_diff(first), window.1.abs_diff(first)));
        }
    }
    if categories.iter().any(|(_, allowed)| allowed.is_empty()) {
        empty = true;
    }
    let k = |c: usize| schema.columns[c].kind.cardinality().unwrap_or(0);
    categories.retain(|(c, allowed)| allowed.len() < k(*c));
    Ok(BoundFilters {
        categories,
        days,
        ranges,
        empty,
    })
}

fn blocks(max: u128) -> u32 {
    u32::try_from(blocks_for(bits_for_u128(max))).unwrap_or(u32::MAX)
}

fn group_columns(
    header: &LayoutHeader,
    group_by: &[String],
) -> Result<Vec<(usize, usize)>, QueryError> {
    group_by
        .iter()
        .map(|g| {
            let c = column_index(header, g)?;
            let k = header.schema.columns[c].kind.cardinality().ok_or_else(|| {
                QueryError::BadColumn {
                    column: g.clone(),
                    reason: "GROUP BY needs a category or bool column".into(),
                }
            })?;
            Ok((c, k))
        })
        .collect()
}

fn bind_cohort_stats(
    q: &CohortStats,
    header: &LayoutHeader,
    filters: BoundFilters,
) -> Result<Bound, QueryError> {
    let measure = q
        .measure
        .as_deref()
        .map(|m| column_index(header, m))
        .transpose()?;
    let rows = u128::from(header.rows);
    let width = measure.map_or(0, |m| header.offset_width(m));
    Ok(Bound {
        measure,
        want_sum: q.aggregates.iter().any(|a| a.needs_sum()),
        want_squares: q.aggregates.iter().any(|a| a.needs_squares()),
        aggregates: q.aggregates.iter().copied().collect(),
        groups: group_columns(header, &q.group_by)?,
        categories: filters.categories,
        days: filters.days,
        ranges: filters.ranges,
        empty: filters.empty,
        count_blocks: blocks(rows),
        sum_blocks: blocks(width * rows),
        square_blocks: blocks(width * width * rows),
        terms: Vec::new(),
        term_blocks: Vec::new(),
        output: Output::CohortStats,
    })
}

/// A bound query of a term-summing template: COUNT plus `terms` per group.
fn term_bound(
    header: &LayoutHeader,
    groups: Vec<(usize, usize)>,
    filters: BoundFilters,
    terms: Vec<Term>,
    output: Output,
) -> Bound {
    Bound {
        measure: None,
        want_sum: false,
        want_squares: false,
        aggregates: vec![Aggregate::Count],
        groups,
        categories: filters.categories,
        days: filters.days,
        ranges: filters.ranges,
        empty: filters.empty,
        count_blocks: header.count_blocks(),
        sum_blocks: 0,
        square_blocks: 0,
        term_blocks: terms.iter().map(|&t| header.term_blocks(t)).collect(),
        terms,
        output,
    }
}

impl Bound {
    /// COUNT and `terms` over every row: no filter, no group (what the dataset's totals hold).
    #[must_use]
    pub fn unfiltered(header: &LayoutHeader, terms: Vec<Term>) -> Bound {
        let none = BoundFilters {
            categories: Vec::new(),
            days: None,
            ranges: Vec::new(),
            empty: false,
        };
        term_bound(header, Vec::new(), none, terms, Output::CohortStats)
    }
}

fn bind_histogram(
    q: &Histogram,
    header: &LayoutHeader,
    filters: BoundFilters,
) -> Result<Bound, QueryError> {
    let column = column_index(header, &q.column)?;
    let (stored, bounds) = header
        .derived
        .iter()
        .enumerate()
        .find_map(|(i, d)| match d {
            DerivedColumn::Buckets { column: c, bounds } if *c == column => {
                Some((header.schema.columns.len() + i, bounds.clone()))
            }
            _ => None,
        })
        .ok_or_else(|| {
            QueryError::PlanUnavailable(format!(
                "the histogram buckets of `{}` (declare them in the schema's [[histogram]])",
                q.column
            ))
        })?;
    let terms = (0..=bounds.len())
        .map(|value| Term::Indicator {
            column: stored,
            value,
        })
        .collect();
    Ok(term_bound(
        header,
        group_columns(header, &q.group_by)?,
        filters,
        terms,
        Output::Histogram { column, bounds },
    ))
}

fn bind_fraud_model(
    q: &FraudModel,
    header: &LayoutHeader,
    filters: BoundFilters,
) -> Result<Bound, QueryError> {
    let label = column_index(header, &q.label)?;
    let cohort = q
        .cohort
        .as_deref()
        .map(|c| column_index(header, c))
        .transpose()?;
    let features = q
        .features
        .iter()
        .map(|f| column_index(header, f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut columns: Vec<usize> = cohort.into_iter().collect();
    for &f in &features {
        if !columns.contains(&f) {
            columns.push(f);
        }
    }
    let mut terms = vec![Term::Indicator {
        column: label,
        value: 1,
    }];
    for &c in &columns {
        let masked = header
            .derived_index(&DerivedColumn::Labelled { column: c, label })
            .ok_or_else(|| {
                QueryError::PlanUnavailable(format!(
                    "the fraud-masked indicators of `{}` (declare it in the schema's [fraud] features)",
                    header.schema.columns[c].name
                ))
            })?;
        for value in 0..header.indicator_count(c) {
            terms.push(Term::Indicator { column: c, value });
            terms.push(Term::Indicator {
                column: masked,
                value,
            });
        }
    }
    Ok(term_bound(
        header,
        Vec::new(),
        filters,
        terms,
        Output::FraudModel {
            label,
            cohort,
            features,
            columns,
            alpha: q.alpha,
        },
    ))
}

fn bind_regression(
    q: &LinearRegression,
    header: &LayoutHeader,
    filters: BoundFilters,
) -> Result<Bound, QueryError> {
    let target = column_index(header, &q.target)?;
    let features = q
        .features
        .iter()
        .map(|f| column_index(header, f))
        .collect::<Result<Vec<_>, _>>()?;
    let variables: Vec<usize> = features.iter().copied().chain([target]).collect();
    let mut terms: Vec<Term> = variables
        .iter()
        .map(|&column| Term::Value { column })
        .collect();
    for (i, &a) in variables.iter().enumerate() {
        for &b in &variables[i..] {
            terms.push(if a == b {
                Term::Square { column: a }
            } else {
                let column = header.product_index(a, b).ok_or_else(|| {
                    QueryError::PlanUnavailable(format!(
                        "the products of `{}` and `{}` (declare both in the schema's [regression] columns)",
                        header.schema.columns[a].name, header.schema.columns[b].name
                    ))
                })?;
                Term::Value { column }
            });
        }
    }
    if variables
        .iter()
        .any(|&v| header.value_width(v) == 0 || header.square_width(v) == 0)
    {
        return Err(QueryError::PlanUnavailable(
            "regression values and squares (integer columns)".into(),
        ));
    }
    Ok(term_bound(
        header,
        Vec::new(),
        filters,
        terms,
        Output::LinearRegression { target, features },
    ))
}

/// Which plans can answer `bound` on this layout, cheapest first.
#[must_use]
pub fn candidates(bound: &Bound, header: &LayoutHeader) -> Vec<Plan> {
    let mut plans = Vec::new();
    if let Some(pbs) = totals_pbs(bound, header) {
        plans.push(Plan {
            kind: PlanKind::Totals,
            bound: bound.clone(),
            pbs,
            complement: false,
        });
    }
    if cube_applies(bound, header) {
        plans.push(Plan {
            kind: PlanKind::Cube,
            bound: bound.clone(),
            pbs: cube_pbs(bound, header),
            complement: false,
        });
    }
    let scan = if bound.days.is_none() && bound.ranges.is_empty() {
        PlanKind::IndicatorScan
    } else {
        PlanKind::RowScan
    };
    plans.push(Plan {
        kind: scan,
        bound: bound.clone(),
        pbs: scan_pbs(bound, header),
        complement: false,
    });
    if let Some((complement, base)) = complement(bound, header) {
        plans.push(Plan {
            kind: scan,
            bound: bound.clone(),
            pbs: scan_pbs(&complement, header) + base.pbs + subtraction_pbs(bound),
            complement: true,
        });
    }
    // Stable: of equal costs, the direct scan first.
    plans.sort_by_key(|p| p.pbs);
    plans
}

/// PBS of a complement plan's subtraction from its base, once per query and group: the
/// complement's sums keep their carries, so each result block is cleaned (message and carry)
/// and the subtraction propagates its borrows — ~6 PBS a block (measured: 122–138 PBS for a
/// 5-block count and a 13-block sum, with the combination of two chunks).
fn subtraction_pbs(bound: &Bound) -> u64 {
    let per_group: u64 = outputs(bound).iter().map(|&w| 6 * u64::from(w)).sum();
    per_group * bound.group_count() as u64
}

/// The complement scan of `bound` and its base, when `bound` can be answered as the base minus
/// the scan: a lower bound `measure ≥ lo` and no term, where the query without that bound — the
/// base — is answered by the stored totals or the cube (so its other filters and groups are the
/// cube's). The scan keeps `measure ≤ lo − 1` and every other filter.
fn complement(bound: &Bound, header: &LayoutHeader) -> Option<(Bound, Plan)> {
    let m = bound.measure?;
    let [(column, Some(lo), None)] = bound.ranges[..] else {
        return None;
    };
    if column != m || lo == 0 || bound.empty || !bound.terms.is_empty() {
        return None;
    }
    let base = base_plan(bound, header)?;
    let scan = Bound {
        ranges: vec![(column, None, Some(lo - 1))],
        ..bound.clone()
    };
    Some((scan, base))
}

/// The plan that answers `bound` without its measure's range, from the totals or the cube, if
/// either holds what it needs at the result's widths.
fn base_plan(bound: &Bound, header: &LayoutHeader) -> Option<Plan> {
    let base = Bound {
        ranges: Vec::new(),
        ..bound.clone()
    };
    let plan = |kind, pbs| Plan {
        kind,
        bound: base.clone(),
        pbs,
        complement: false,
    };
    if let Some(pbs) = totals_pbs(&base, header) {
        let widths =
            |want: bool, term: Term, width: u32| !want || header.term_blocks(term) == width;
        let fits = header.count_blocks() == base.count_blocks
            && base.measure.is_some_and(|column| {
                widths(base.want_sum, Term::Value { column }, base.sum_blocks)
                    && widths(
                        base.want_squares,
                        Term::Square { column },
                        base.square_blocks,
                    )
            });
        if fits {
            return Some(plan(PlanKind::Totals, pbs));
        }
    }
    cube_applies(&base, header).then(|| plan(PlanKind::Cube, cube_pbs(&base, header)))
}

impl Plan {
    /// What a scan evaluates on each chunk: this plan, or for a complement plan the scan of the
    /// rows it leaves out (whose combined result the evaluator subtracts from the base,
    /// [`Plan::complement_base`]).
    ///
    /// # Errors
    /// [`QueryError::NoComplement`] for a complement plan of a query that has no complement on
    /// this layout (a plan not made by [`candidates`]).
    pub fn chunk_scan(&self, header: &LayoutHeader) -> Result<Plan, QueryError> {
        if !self.complement {
            return Ok(self.clone());
        }
        let (bound, _) = complement(&self.bound, header).ok_or(QueryError::NoComplement)?;
        Ok(Plan {
            bound,
            complement: false,
            ..self.clone()
        })
    }

    /// For a complement plan, the totals or cube plan its scan is subtracted from (the query
    /// without its lower bound); `None` for any other plan.
    ///
    /// # Errors
    /// As [`Plan::chunk_scan`].
    pub fn complement_base(&self, header: &LayoutHeader) -> Result<Option<Plan>, QueryError> {
        if !self.complement {
            return Ok(None);
        }
        let (_, base) = complement(&self.bound, header).ok_or(QueryError::NoComplement)?;
        Ok(Some(base))
    }
}

/// The cheapest plan for `query`.
///
/// # Errors
/// See [`bind`].
pub fn plan(query: &Query, header: &LayoutHeader) -> Result<Plan, QueryError> {
    let bound = bind(query, header)?;
    Ok(candidates(&bound, header).swap_remove(0))
}

/// The plan of the given kind, for comparing plans (all give identical results).
///
/// # Errors
/// [`QueryError::PlanUnavailable`] when that plan cannot answer this query on this layout.
pub fn plan_with(query: &Query, header: &LayoutHeader, kind: PlanKind) -> Result<Plan, QueryError> {
    let bound = bind(query, header)?;
    let mut plans = candidates(&bound, header);
    if matches!(kind, PlanKind::IndicatorScan | PlanKind::RowScan) {
        // A scan can always run; the indicator scan is the row scan without comparisons.
        let last = plans
            .iter()
            .position(|p| matches!(p.kind, PlanKind::IndicatorScan | PlanKind::RowScan));
        if let Some(i) = last {
            plans[i].kind = if kind == PlanKind::IndicatorScan
                && (bound.days.is_some() || !bound.ranges.is_empty())
            {
                return Err(QueryError::PlanUnavailable(
                    "an indicator scan (the query compares values)".into(),
                ));
            } else {
                kind
            };
        }
    }
    plans.into_iter().find(|p| p.kind == kind).ok_or_else(|| {
        QueryError::PlanUnavailable(format!("a {} plan for this query", kind.name()))
    })
}

/// The PBS of answering `bound` from the dataset's totals, when it can be: no filter and no
/// group, and every sum it needs stored. Reading is free; only subtracting nothing, so 0.
fn totals_pbs(bound: &Bound, header: &LayoutHeader) -> Option<u64> {
    if !header.totals
        || bound.empty
        || !bound.groups.is_empty()
        || !bound.categories.is_empty()
        || bound.days.is_some()
        || !bound.ranges.is_empty()
    {
        return None;
    }
    let stored = header.total_terms();
    let measure = bound.measure.map(|column| {
        [
            (bound.want_sum, Term::Value { column }),
            (bound.want_squares, Term::Square { column }),
        ]
    });
    let needed = bound
        .terms
        .iter()
        .copied()
        .chain(measure.into_iter().flatten().filter(|w| w.0).map(|w| w.1));
    needed.into_iter().all(|t| stored.contains(&t)).then_some(0)
}

fn cube_applies(bound: &Bound, header: &LayoutHeader) -> bool {
    let Some(cube) = &header.cube else {
        return false;
    };
    let in_cube = |c: usize| cube.dimensions.iter().any(|d| d.0 == c);
    bound.terms.is_empty()
        && bound.ranges.is_empty()
        && bound.groups.iter().all(|g| in_cube(g.0))
        && bound.categories.iter().all(|f| in_cube(f.0))
        && bound
            .measure
            .is_none_or(|m| cube.measures.contains(&m) || !bound.want_sum)
}

fn outputs(bound: &Bound) -> Vec<u32> {
    let mut widths = vec![bound.count_blocks];
    if bound.want_sum {
        widths.push(bound.sum_blocks);
    }
    if bound.want_squares {
        widths.push(bound.square_blocks);
    }
    widths
}

/// PBS of summing `n` clean radix numbers of `w` blocks: ~2/3 PBS per block per number
/// (columns of ≤ 5 blocks reduce to a message and a carry: 2 PBS remove 3 blocks), then one
/// carry propagation of the result (~2 w).
fn sum_pbs(n: u64, w: u64) -> u64 {
    if n <= 1 {
        0
    } else {
        (n * w * 2).div_ceil(3) + 2 * w
    }
}

fn cube_pbs(bound: &Bound, header: &LayoutHeader) -> u64 {
    let Some(cube) = &header.cube else {
        return u64::MAX;
    };
    let grouped: usize = bound.groups.iter().map(|g| g.1).product();
    let cells: usize = cube
        .dimensions
        .iter()
        .filter(|d| !bound.groups.iter().any(|g| g.0 == d.0))
        .map(|d| {
            bound
                .categories
                .iter()
                .find(|f| f.0 == d.0)
                .map_or(d.1, |f| f.1.len())
        })
        .product();
    let reads = if bound.days.is_some_and(|d| d.0 > 0) {
        2
    } else {
        1
    };
    let per_group: u64 = outputs(bound)
        .iter()
        // The window's subtraction leaves its carries for the seller's decryption: no PBS.
        .map(|&w| reads * sum_pbs(cells as u64, u64::from(w)))
        .sum();
    per_group * grouped as u64
}

/// Blocks of a radix comparison against a clear bound: ~one PBS per block (blocks compared in
/// pairs, then a reduction tree).
fn compare_pbs(blocks: u64) -> u64 {
    blocks + blocks.div_ceil(2)
}

fn scan_pbs(bound: &Bound, header: &LayoutHeader) -> u64 {
    let rows = header.rows;
    let day_blocks = header
        .schema
        .day_column()
        .map_or(0, |c| u64::from(header.value_blocks[c]));
    let mut per_row = 0u64;
    let mut conditions = 0u64;
    if let Some((lo, hi)) = bound.days {
        let last = header.days.map_or(0, |d| d.1.abs_diff(d.0));
        conditions += u64::from(lo > 0) + u64::from(hi < last);
        per_row += (u64::from(lo > 0) + u64::from(hi < last)) * compare_pbs(day_blocks);
    }
    for (c, lo, hi) in &bound.ranges {
        let n = u64::from(lo.is_some()) + u64::from(hi.is_some());
        conditions += n;
        per_row += n * compare_pbs(u64::from(header.value_blocks[*c]));
    }
    conditions += bound.categories.len() as u64;
    let groups = bound.group_count() as u64;
    // AND of the conditions once per row when they are more than one per group can absorb.
    let terms = conditions + bound.groups.len() as u64;
    if conditions > 1 && terms > 3 {
        per_row += (conditions - 1).div_ceil(2);
    }
    let and_per_group = u64::from(terms > 1);
    let (measure_blocks, square_blocks) = bound.masked_blocks(header);
    let (measure_blocks, square_blocks) = (measure_blocks as u64, square_blocks as u64);
    let masked = u64::from(terms > 0);
    let mut per_group = and_per_group;
    if bound.want_sum {
        per_group += masked * measure_blocks;
    }
    if bound.want_squares {
        per_group += masked * square_blocks;
    }
    // Accumulation: ~2/3 PBS per non-trivial block summed.
    let mut accumulated = u64::from(terms > 0);
    if bound.want_sum {
        accumulated += measure_blocks;
    }
    if bound.want_squares {
        accumulated += square_blocks;
    }
    for term in &bound.terms {
        // A masked indicator is one AND (1 PBS); a masked integer one PBS per block.
        let width = match *term {
            Term::Indicator { .. } => 1,
            Term::Value { column } => u64::from(header.value_width(column)),
            Term::Square { column } => u64::from(header.square_width(column)),
        };
        per_group += masked * width;
        accumulated += width;
    }
    per_group += (accumulated * 2).div_ceil(3);
    rows * (per_row + groups * per_group)
}

impl Plan {
    /// Estimated seconds on `cores` cores with `pbs_seconds` per PBS per core.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // an estimate
    pub fn estimated_seconds(&self, pbs_seconds: f64, cores: usize) -> f64 {
        self.pbs as f64 * pbs_seconds / cores.max(1) as f64
    }

    /// Human-readable description: what the plan does, its PBS count and estimated time.
    #[must_use]
    #[allow(clippy::too_many_lines)] // one paragraph per part of the plan, in order
    pub fn explain(&self, header: &LayoutHeader, pbs_seconds: f64, cores: usize) -> String {
        let schema = &header.schema;
        let name = |c: usize| schema.columns[c].name.as_str();
        let b = &self.bound;
        let mut s = String::new();
        let _ = writeln!(s, "plan: {}", self.kind.name());
        let _ = writeln!(
            s,
            "  groups: {} ({})",
            b.group_count(),
            if b.groups.is_empty() {
                "none".into()
            } else {
                b.groups
                    .iter()
                    .map(|g| name(g.0))
                    .collect::<Vec<_>>()
                    .join(" × ")
            }
        );
        for (c, values) in &b.categories {
            let _ = writeln!(
                s,
                "  filter: {} IN {} of {} values (sum of indicators, no PBS)",
                name(*c),
                values.len(),
                schema.columns[*c].kind.cardinality().unwrap_or(0)
            );
        }
        if let Some((lo, hi)) = b.days {
            let first = header.days.map_or(0, |d| d.0);
            let (from, to) = (
                first + i64::try_from(lo).unwrap_or(0),
                first + i64::try_from(hi).unwrap_or(0),
            );
            let how = if self.kind == PlanKind::Cube {
                "prefix cells"
            } else {
                "encrypted comparisons"
            };
            let _ = writeln!(
                s,
                "  filter: day in [{}, {}] ({how})",
                crate::schema::format_date(from),
                crate::schema::format_date(to)
            );
        }
        for (c, lo, hi) in &b.ranges {
            let _ = writeln!(
                s,
                "  filter: {} offset in [{}, {}] (encrypted comparisons)",
                name(*c),
                lo.unwrap_or(0),
                hi.map_or("max".into(), |h| h.to_string())
            );
        }
        let masked = !b.categories.is_empty()
            || b.days.is_some()
            || !b.ranges.is_empty()
            || !b.groups.is_empty();
        let how = if self.kind == PlanKind::Totals {
            "stored totals"
        } else if masked {
            "each masked per row by the filter/group bit"
        } else {
            "plain sums of stored ciphertexts, no PBS per row"
        };
        match &b.output {
            Output::CohortStats => {}
            Output::Histogram { column, bounds } => {
                let _ = writeln!(
                    s,
                    "  sums: {} bucket indicators of {} stored at encryption ({how})",
                    bounds.len() + 1,
                    name(*column)
                );
            }
            Output::FraudModel { label, columns, .. } => {
                let _ = writeln!(
                    s,
                    "  sums: {}, and per value of {}: its indicator and its {}-masked indicator ({} sums; {how})",
                    name(*label),
                    columns
                        .iter()
                        .map(|&c| name(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                    name(*label),
                    b.terms.len()
                );
            }
            Output::LinearRegression { target, features } => {
                let _ = writeln!(
                    s,
                    "  sums: n, Σx, XᵀX, Xᵀy, Σy, Σy² of {} on {} ({} sums of stored values, squares and products; {how})",
                    name(*target),
                    features
                        .iter()
                        .map(|&c| name(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                    b.terms.len()
                );
            }
        }
        match self.kind {
            PlanKind::Totals => {
                let _ = writeln!(
                    s,
                    "  reads: {} of the {} totals over all rows the seller stored at encryption (no scan)",
                    b.terms.len() + 1 + usize::from(b.want_sum) + usize::from(b.want_squares),
                    header.total_terms().len() + 1
                );
            }
            PlanKind::Cube => {
                let _ = writeln!(
                    s,
                    "  reads: cube cells at the window's end{}",
                    if b.days.is_some_and(|d| d.0 > 0) {
                        " minus the window's start"
                    } else {
                        ""
                    }
                );
            }
            PlanKind::IndicatorScan | PlanKind::RowScan => {
                let _ = writeln!(
                    s,
                    "  scans: {} rows in {} chunks",
                    header.rows,
                    header.rows.div_ceil(u64::from(header.chunk_rows.max(1)))
                );
                if let (Ok(Some(base)), Some(m)) = (self.complement_base(header), b.measure) {
                    let _ = writeln!(
                        s,
                        "  complement: sums the rows with `{}` below the bound (fewer blocks to mask) and subtracts them from the query without it, read from the {}",
                        name(m),
                        if base.kind == PlanKind::Cube {
                            "cube"
                        } else {
                            "stored totals"
                        }
                    );
                }
                let (value_blocks, square_blocks) = self
                    .chunk_scan(header)
                    .map_or((0, 0), |p| p.bound.masked_blocks(header));
                let filtered = !b.groups.is_empty()
                    || !b.categories.is_empty()
                    || b.days.is_some()
                    || !b.ranges.is_empty();
                if let Some(m) = b.measure.filter(|_| b.want_sum && filtered && !b.empty) {
                    let _ = writeln!(
                        s,
                        "  masks: {value_blocks} of {} blocks of `{}` per row{}",
                        header.value_blocks[m],
                        name(m),
                        if b.want_squares {
                            format!(
                                ", {square_blocks} of {} of its square",
                                header.square_blocks[m]
                            )
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
        let _ = writeln!(s, "  PBS (estimated): {}", self.pbs);
        let _ = write!(
            s,
            "  time (estimated): {:.2} s on {cores} core(s) at {:.1} ms/PBS",
            self.estimated_seconds(pbs_seconds, cores),
            pbs_seconds * 1e3
        );
        if b.empty {
            let _ = write!(
                s,
                "\n  note: a filter excludes every row; the result is empty"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{LayoutOptions, header};
    use crate::template::CohortStats;
    use proptest::prelude::*;

    fn journey(days: u32) -> Query {
        Query::CohortStats(CohortStats {
            measure: Some("amount".into()),
            aggregates: [Aggregate::Avg, Aggregate::Count].into(),
            group_by: vec!["age_band".into()],
            filters: vec![
                Filter::In {
                    column: "region".into(),
                    values: vec!["APAC".into()],
                },
                Filter::LastDays { days },
            ],
        })
    }

    #[test]
    fn journey_query_uses_the_cube_and_a_numeric_filter_scans() {
        let table = crate::synth::generate(1000, 1);
        let h = header(&table, &LayoutOptions::default());
        let p = plan(&journey(90), &h).unwrap();
        assert_eq!(p.kind, PlanKind::Cube);
        assert_eq!(p.bound.days.unwrap().1, 364);
        assert!(p.explain(&h, DEFAULT_PBS_SECONDS, 2).contains("cube"));
        let Query::CohortStats(mut q) = journey(90) else {
            unreachable!()
        };
        q.filters.push(Filter::Range {
            column: "amount".into(),
            min: Some(10_001),
            max: None,
        });
        let p = plan(&Query::CohortStats(q), &h).unwrap();
        assert_eq!(p.kind, PlanKind::RowScan);
        let no_cube = header(
            &table,
            &LayoutOptions {
                cube: false,
                ..LayoutOptions::default()
            },
        );
        assert_eq!(
            plan(&journey(90), &no_cube).unwrap().kind,
            PlanKind::RowScan
        );
        assert!(plan_with(&journey(90), &no_cube, PlanKind::Cube).is_err());
    }

    #[test]
    fn a_lower_bound_alone_on_the_measure_scans_its_complement() {
        let table = crate::synth::generate(1000, 1);
        let h = header(&table, &LayoutOptions::default());
        let numeric = |min: i64, extra: Option<Filter>| {
            Query::CohortStats(CohortStats {
                measure: Some("amount".into()),
                aggregates: [Aggregate::Count, Aggregate::Sum].into(),
                group_by: Vec::new(),
                filters: std::iter::once(Filter::Range {
                    column: "amount".into(),
                    min: Some(min),
                    max: None,
                })
                .chain(extra)
                .collect(),
            })
        };
        // amount > $100: the complement's values are below 10 001 cents, 7 blocks of 10.
        let p = plan(&numeric(10_001, None), &h).unwrap();
        assert_eq!((p.kind, p.complement), (PlanKind::RowScan, true));
        let scan = p.chunk_scan(&h).unwrap();
        assert_eq!(scan.bound.ranges, vec![(4, None, Some(10_000))]);
        assert_eq!(scan.bound.masked_blocks(&h).0, 7);
        let direct = candidates(&p.bound, &h)
            .into_iter()
            .find(|c| !c.complement && c.kind == PlanKind::RowScan)
            .unwrap();
        assert!(direct.pbs > p.pbs);
        assert!(p.explain(&h, DEFAULT_PBS_SECONDS, 2).contains("complement"));
        assert_eq!(
            p.complement_base(&h).unwrap().map(|b| b.kind),
            Some(PlanKind::Totals)
        );
        // A bound near the top leaves nothing to gain.
        assert!(!plan(&numeric(900_000, None), &h).unwrap().complement);
        // With a day window the base is the cube's; without totals and cube there is none.
        let window = || Some(Filter::LastDays { days: 30 });
        let p = plan(&numeric(10_001, window()), &h).unwrap();
        assert!(p.complement);
        assert_eq!(
            p.complement_base(&h).unwrap().map(|b| b.kind),
            Some(PlanKind::Cube)
        );
        let bare = header(
            &table,
            &LayoutOptions {
                totals: false,
                cube: false,
                ..LayoutOptions::default()
            },
        );
        assert!(!plan(&numeric(10_001, None), &bare).unwrap().complement);
        assert!(!plan(&numeric(10_001, window()), &bare).unwrap().complement);
        let direct = Plan {
            complement: false,
            ..p
        };
        assert!(direct.chunk_scan(&h).unwrap().bound.ranges[0].1.is_some());
    }

    #[test]
    fn regression_terms_index_the_upper_triangle() {
        // 3 variables: Σz0 Σz1 Σz2, then (0,0) (0,1) (0,2) (1,1) (1,2) (2,2).
        let expected = [
            ((0, 0), 3),
            ((0, 1), 4),
            ((0, 2), 5),
            ((1, 1), 6),
            ((1, 2), 7),
            ((2, 2), 8),
        ];
        for ((i, j), t) in expected {
            assert_eq!(Output::pair_term(3, i, j), t);
            assert_eq!(Output::pair_term(3, j, i), t);
        }
    }

    #[test]
    fn unfiltered_templates_spend_no_pbs_per_row_and_never_use_the_cube() {
        let table = crate::synth::generate(1000, 1);
        let h = header(&table, &LayoutOptions::default());
        let schema = crate::synth::schema();
        for sql_text in [
            "SELECT HISTOGRAM(amount) FROM transactions",
            "SELECT FRAUD_MODEL(is_fraud) FROM transactions GROUP BY region",
            "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions",
        ] {
            let q = crate::sql::parse(sql_text, &schema).unwrap();
            // The seller's stored totals answer it outright; without them, plain sums.
            let totals = plan(&q, &h).unwrap();
            assert_eq!((totals.kind, totals.pbs), (PlanKind::Totals, 0));
            assert!(
                totals
                    .explain(&h, DEFAULT_PBS_SECONDS, 2)
                    .contains("totals over all rows")
            );
            let bare = plan_with(&q, &h, PlanKind::IndicatorScan).unwrap();
            assert!(bare.pbs > 0);
            assert!(plan_with(&q, &h, PlanKind::Cube).is_err());
            assert!(
                bare.explain(&h, DEFAULT_PBS_SECONDS, 2)
                    .contains("no PBS per row")
            );
            // A filter masks every term: it costs more.
            let filtered = crate::sql::parse(
                &format!("{sql_text} WHERE channel = 'online'").replace(
                    "GROUP BY region WHERE channel = 'online'",
                    "WHERE channel = 'online' GROUP BY region",
                ),
                &schema,
            )
            .unwrap();
            let masked = plan(&filtered, &h).unwrap();
            assert!(masked.pbs > bare.pbs, "{sql_text}");
            assert_eq!(bare.bound.terms.len(), bare.bound.term_blocks.len());
        }
    }

    proptest! {
        /// The cube's cost does not grow with rows; a scan's grows linearly; the planner takes
        /// the cheapest of its candidates.
        #[test]
        fn planner_picks_the_cheapest(rows in 50usize..400, days in 1u32..400, grouped: bool) {
            let table = crate::synth::generate(rows, 3);
            let h = header(&table, &LayoutOptions::default());
            let Query::CohortStats(mut q) = journey(days) else { unreachable!() };
            if !grouped { q.group_by.clear(); }
            let q = Query::CohortStats(q);
            let bound = bind(&q, &h).unwrap();
            let all = candidates(&bound, &h);
            let best = plan(&q, &h).unwrap();
            prop_assert!(all.iter().all(|p| p.pbs >= best.pbs));
            let cube = all.iter().find(|p| p.kind == PlanKind::Cube).unwrap();
            let scan = all.iter().find(|p| p.kind != PlanKind::Cube).unwrap();
            prop_assert_eq!(scan.pbs % rows as u64, 0);
            prop_assert!(cube.pbs < scan.pbs || rows < 64);
        }
    }
}
