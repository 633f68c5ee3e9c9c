//! The output policy, applied by the seller to decrypted aggregates ([`crate::decrypt`]): cells of
//! fewer than `min_cohort` rows are suppressed (not zeroed), discrete Laplace noise (drawn
//! exactly, [`crate::noise`]) gives ε-DP for the order's ε (charged on chain to the dataset's
//! budget), and means get 95 % t-intervals from COUNT, Σx and
//! Σx², widened by the noise's variance.
//!
//! The other templates release through the same [`ResultTable`]: histogram buckets as rows,
//! fraud rates per cohort as rows (Wilson intervals) with the naive-Bayes [`Model`], and the
//! regression [`Model`] fitted from its sufficient statistics. Small cells are suppressed the
//! same way, and DP noise is calibrated to each template's L1 sensitivity.

use rand::Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use datacloud_query::layout::LayoutHeader;
use datacloud_query::plan::{Bound, Output, Plan};
use datacloud_query::reference::Aggregates;
use datacloud_query::schema::ColumnKind;
use datacloud_query::template::{Aggregate, category_values};

use crate::error::PolicyError;
use crate::model::{CentredStats, FeatureCounts, Model, NaiveBayes, RegressionFit};
use crate::result::{Cell, Estimate, ResultRow, ResultTable};

/// The seller's output policy for one release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Cells with fewer rows are suppressed.
    pub min_cohort: u64,
    /// The ε this release spends: every released number gets discrete Laplace noise calibrated
    /// to its sensitivity over ε. The seller takes it from the order (what the market charged
    /// to the dataset's budget, for every buyer together); `None` (exact figures) is for the
    /// data owner's own local queries only.
    pub epsilon: Option<f64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_cohort: 10,
            epsilon: None,
        }
    }
}

impl Policy {
    /// # Errors
    /// [`PolicyError::Invalid`] for a non-positive or non-finite ε.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.epsilon.is_some_and(|e| !(e.is_finite() && e > 0.0)) {
            return Err(PolicyError::Invalid("ε must be a positive number".into()));
        }
        Ok(())
    }
}

/// Applies the policy to decrypted aggregates: suppression below the minimum cohort, and noise
/// for the policy's ε. The ε is accounted for on chain (`QueryMarket.placeOrder` charges it to
/// the dataset's budget), not here.
///
/// # Errors
/// [`PolicyError::Invalid`].
pub fn release(
    aggregates: &Aggregates,
    plan: &Plan,
    header: &LayoutHeader,
    policy: &Policy,
    rng: &mut impl Rng,
) -> Result<ResultTable, PolicyError> {
    policy.validate()?;
    match &plan.bound.output {
        Output::CohortStats => Ok(release_cohort_stats(aggregates, plan, header, policy, rng)),
        Output::Histogram { column, bounds } => Ok(release_histogram(
            aggregates,
            &plan.bound,
            header,
            policy,
            rng,
            *column,
            bounds,
        )),
        Output::FraudModel {
            label,
            cohort,
            columns,
            features,
            alpha,
        } => Ok(release_fraud_model(
            aggregates,
            header,
            policy,
            rng,
            &FraudShape {
                label: *label,
                cohort: *cohort,
                columns,
                features,
                alpha: *alpha,
            },
        )),
        Output::LinearRegression { target, features } => Ok(release_regression(
            aggregates,
            &plan.bound,
            header,
            policy,
            rng,
            *target,
            features,
        )),
    }
}

fn release_cohort_stats(
    aggregates: &Aggregates,
    plan: &Plan,
    header: &LayoutHeader,
    policy: &Policy,
    rng: &mut impl Rng,
) -> ResultTable {
    let b = &plan.bound;
    let schema = &header.schema;
    let (min, width) = b.measure.map_or((0, 0), |m| match schema.columns[m].kind {
        ColumnKind::Integer { min, max, .. } => {
            (min, datacloud_query::schema::range_width(min, max))
        }
        _ => (0, 0),
    });
    let unit = b.measure.map_or(1.0, |m| schema.columns[m].kind.unit());
    let labels: Vec<Vec<String>> = b
        .groups
        .iter()
        .map(|&(c, _)| category_values(&schema.columns[c].kind).unwrap_or_default())
        .collect();
    // Laplace noise: ε split over the released quantities; sensitivities 1, width, width².
    let released = 1 + usize::from(b.want_sum) + usize::from(b.want_squares);
    // The noise's scale per unit of sensitivity (0 without DP).
    #[allow(clippy::cast_precision_loss)] // noise scales
    let per_unit = policy.epsilon.map_or(0.0, |e| released as f64 / e);
    let noise = |rng: &mut dyn rand::RngCore, sensitivity: f64| -> f64 {
        if per_unit > 0.0 {
            laplace(rng, sensitivity * per_unit)
        } else {
            0.0
        }
    };
    let mut rows = Vec::with_capacity(aggregates.groups.len());
    for (g, &(count, sum, squares)) in aggregates.groups.iter().enumerate() {
        let group = b
            .group_values(g)
            .iter()
            .zip(&labels)
            .map(|(&v, l)| l.get(v).cloned().unwrap_or_default())
            .collect();
        #[allow(clippy::cast_precision_loss)] // statistics are reported as floating point
        let (n, s, q) = {
            let w = width as f64;
            (
                (count as f64 + noise(rng, 1.0)).max(0.0),
                sum.map(|s| s as f64 + noise(rng, w)),
                squares.map(|q| q as f64 + noise(rng, w * w)),
            )
        };
        #[allow(clippy::cast_precision_loss)]
        let cell = if n < policy.min_cohort as f64 {
            Cell::Suppressed {
                reason: format!("fewer than {} rows", policy.min_cohort),
            }
        } else {
            let min_f = min as f64;
            let real_sum = s.map(|s| (s + n * min_f) / unit);
            let mean = real_sum.map(|t| t / n);
            let var = match (s, q) {
                (Some(s), Some(q)) if n > 1.0 => {
                    Some(((q - s * s / n) / (n - 1.0)).max(0.0) / (unit * unit))
                }
                _ => None,
            };
            // The mean s/n carries the noise of both (delta method): Var ≈ (2b_s² + (s/n)²·2b_n²)/n²
            // for Laplace scales b_s = width·per_unit and b_n = per_unit, in the sum's units.
            #[allow(clippy::cast_precision_loss)]
            let noise_sd = s.map_or(0.0, |s| {
                let (b_s, b_n) = (width as f64 * per_unit, per_unit);
                let shifted = s / n;
                (2.0 * b_s * b_s + shifted * shifted * 2.0 * b_n * b_n).sqrt() / n / unit
            });
            let avg = mean.map(|m| Estimate {
                value: m,
                ci95: var
                    .and_then(|v| t_interval(m, v, n))
                    .map(|ci| widen_for_noise(m, ci, noise_sd)),
            });
            let wants = |a: Aggregate| b.aggregates.contains(&a);
            Cell::Released {
                count: if policy.epsilon.is_some() {
                    n
                } else {
                    n.round()
                },
                sum: real_sum.filter(|_| wants(Aggregate::Sum)),
                avg: avg.filter(|_| wants(Aggregate::Avg)),
                var: var.filter(|_| wants(Aggregate::Var)),
                stddev: var.map(f64::sqrt).filter(|_| wants(Aggregate::Stddev)),
                rate: None,
            }
        };
        rows.push(ResultRow { group, cell });
    }
    ResultTable {
        template: "cohort_stats".into(),
        measure: b.measure.map(|m| schema.columns[m].name.clone()),
        aggregates: b.aggregates.clone(),
        group_by: b
            .groups
            .iter()
            .map(|&(c, _)| schema.columns[c].name.clone())
            .collect(),
        rows,
        min_cohort: policy.min_cohort,
        epsilon: policy.epsilon,
        model: None,
    }
}

/// Laplace noise of scale `sensitivity / ε` (none without DP).
fn dp_noise(policy: &Policy, rng: &mut impl Rng, sensitivity: f64) -> f64 {
    policy
        .epsilon
        .map_or(0.0, |e| laplace(rng, sensitivity / e))
}

#[allow(clippy::cast_precision_loss)] // counts are reported as floating point
fn noisy_count(policy: &Policy, rng: &mut impl Rng, count: u128, sensitivity: f64) -> f64 {
    let n = (count as f64 + dp_noise(policy, rng, sensitivity)).max(0.0);
    if policy.epsilon.is_some() {
        n
    } else {
        n.round()
    }
}

fn group_labels(bound: &Bound, header: &LayoutHeader, g: usize) -> Vec<String> {
    bound
        .group_values(g)
        .iter()
        .zip(&bound.groups)
        .map(|(&v, &(c, _))| {
            category_values(&header.schema.columns[c].kind)
                .and_then(|l| l.get(v).cloned())
                .unwrap_or_default()
        })
        .collect()
}

/// `[lo, hi)` labels of a histogram's buckets, in the column's display units.
#[must_use]
pub fn bucket_labels(kind: &ColumnKind, bounds: &[i64]) -> Vec<String> {
    let scale = match kind {
        ColumnKind::Integer { scale, .. } => *scale,
        _ => 0,
    };
    let show = |v: i64| datacloud_query::ingest::format_decimal(v, scale);
    (0..=bounds.len())
        .map(
            |i| match (i.checked_sub(1).map(|j| bounds[j]), bounds.get(i)) {
                (None, Some(&hi)) => format!("< {}", show(hi)),
                (Some(lo), Some(&hi)) => format!("[{}, {})", show(lo), show(hi)),
                (Some(lo), None) => format!(">= {}", show(lo)),
                (None, None) => "all".into(),
            },
        )
        .collect()
}

/// A histogram: one row per group and bucket. Each row falls in exactly one cell, so the L1
/// sensitivity of all the counts together is 1.
fn release_histogram(
    aggregates: &Aggregates,
    bound: &Bound,
    header: &LayoutHeader,
    policy: &Policy,
    rng: &mut impl Rng,
    column: usize,
    bounds: &[i64],
) -> ResultTable {
    let schema = &header.schema;
    let labels = bucket_labels(&schema.columns[column].kind, bounds);
    let mut rows = Vec::new();
    for (g, sums) in aggregates.terms.iter().enumerate() {
        let group = group_labels(bound, header, g);
        for (bucket, &count) in sums.iter().enumerate() {
            let n = noisy_count(policy, rng, count, 1.0);
            let mut labelled = group.clone();
            labelled.push(labels.get(bucket).cloned().unwrap_or_default());
            rows.push(ResultRow {
                group: labelled,
                cell: released_count(policy, n),
            });
        }
    }
    let name = schema.columns[column].name.clone();
    ResultTable {
        template: "histogram".into(),
        measure: Some(name.clone()),
        aggregates: vec![Aggregate::Count],
        group_by: bound
            .groups
            .iter()
            .map(|&(c, _)| schema.columns[c].name.clone())
            .chain([format!("{name} bucket")])
            .collect(),
        rows,
        min_cohort: policy.min_cohort,
        epsilon: policy.epsilon,
        model: None,
    }
}

#[allow(clippy::cast_precision_loss)] // the minimum cohort is a small count
fn released_count(policy: &Policy, n: f64) -> Cell {
    if n < policy.min_cohort as f64 {
        Cell::Suppressed {
            reason: format!("fewer than {} rows", policy.min_cohort),
        }
    } else {
        Cell::Released {
            count: n,
            sum: None,
            avg: None,
            var: None,
            stddev: None,
            rate: None,
        }
    }
}

/// A model column, its values, and `(rows, positives)` per value.
type ValueCounts = (usize, Vec<String>, Vec<(f64, f64)>);

/// The columns of a bound `fraud_model` (see [`Output::FraudModel`]).
struct FraudShape<'a> {
    label: usize,
    cohort: Option<usize>,
    columns: &'a [usize],
    features: &'a [usize],
    alpha: u32,
}

/// Fraud rates per cohort and the naive-Bayes model. A row adds 1 to COUNT, to the label count
/// and, per model column, to one value's count and one masked count: L1 sensitivity
/// `2 + 2 · columns`.
#[allow(clippy::cast_precision_loss)] // counts are reported as floating point
fn release_fraud_model(
    aggregates: &Aggregates,
    header: &LayoutHeader,
    policy: &Policy,
    rng: &mut impl Rng,
    shape: &FraudShape<'_>,
) -> ResultTable {
    let schema = &header.schema;
    let sensitivity = 2.0 + 2.0 * shape.columns.len() as f64;
    let (count, _, _) = aggregates
        .groups
        .first()
        .copied()
        .unwrap_or((0, None, None));
    let sums = aggregates.terms.first().cloned().unwrap_or_default();
    let mut noisy = |c: u128| noisy_count(policy, rng, c, sensitivity);
    let rows_all = noisy(count);
    let positives = noisy(sums.first().copied().unwrap_or(0));
    // Per model column: its values and (rows, positives) per value, in term order.
    let mut next = 1;
    let mut per_column: Vec<ValueCounts> = Vec::new();
    for &c in shape.columns {
        let values = category_values(&schema.columns[c].kind).unwrap_or_default();
        let counts = values
            .iter()
            .map(|_| {
                let pair = (
                    noisy(sums.get(next).copied().unwrap_or(0)),
                    noisy(sums.get(next + 1).copied().unwrap_or(0)),
                );
                next += 2;
                pair
            })
            .collect();
        per_column.push((c, values, counts));
    }
    let rate_row = |group: Vec<String>, n: f64, p: f64| ResultRow {
        group,
        cell: rate_cell(
            policy,
            n,
            p,
            policy.epsilon.map_or(0.0, |e| sensitivity / e),
        ),
    };
    let rows = match shape.cohort {
        Some(cohort) => per_column
            .iter()
            .find(|(c, _, _)| *c == cohort)
            .map(|(_, values, counts)| {
                values
                    .iter()
                    .zip(counts)
                    .map(|(v, &(n, p))| rate_row(vec![v.clone()], n, p))
                    .collect()
            })
            .unwrap_or_default(),
        None => vec![rate_row(Vec::new(), rows_all, positives)],
    };
    let features: Vec<FeatureCounts> = per_column
        .iter()
        .filter(|(c, _, _)| shape.features.contains(c))
        .map(|(c, values, counts)| FeatureCounts {
            feature: schema.columns[*c].name.clone(),
            values: values.clone(),
            counts: counts.clone(),
        })
        .collect();
    let label = schema.columns[shape.label].name.clone();
    let model = NaiveBayes::fit(
        &label,
        shape.alpha,
        rows_all,
        positives,
        &features,
        policy.min_cohort as f64,
    );
    ResultTable {
        template: "fraud_model".into(),
        measure: Some(label),
        aggregates: vec![Aggregate::Count],
        group_by: shape
            .cohort
            .map(|c| schema.columns[c].name.clone())
            .into_iter()
            .collect(),
        rows,
        min_cohort: policy.min_cohort,
        epsilon: policy.epsilon,
        model: Some(Model::NaiveBayes(model)),
    }
}

/// A cohort's rate of the label, with its Wilson interval. A rate is derived from the cohort's
/// rows with the label and those without it: both must be cohorts (a rate of 1/84 names the one
/// fraudster as surely as a cell of 1 does).
#[allow(clippy::cast_precision_loss)] // the minimum cohort is a small count
fn rate_cell(policy: &Policy, n: f64, p: f64, noise_scale: f64) -> Cell {
    let k = policy.min_cohort as f64;
    let p = p.clamp(0.0, n.max(0.0));
    if n < k {
        Cell::Suppressed {
            reason: format!("fewer than {} rows", policy.min_cohort),
        }
    } else if p < k || n - p < k {
        Cell::Suppressed {
            reason: format!(
                "fewer than {} rows with or without the label",
                policy.min_cohort
            ),
        }
    } else {
        Cell::Released {
            count: n,
            sum: Some(p),
            avg: None,
            var: None,
            stddev: None,
            rate: Some({
                let value = if n > 0.0 { p / n } else { 0.0 };
                // p/n with Laplace noise of scale b on both: Var ≈ 2b²(1 + (p/n)²)/n².
                let noise_sd = (2.0 * noise_scale * noise_scale * (1.0 + value * value)).sqrt() / n;
                Estimate {
                    value,
                    ci95: wilson(p, n).map(|(lo, hi)| {
                        let (lo, hi) = widen_for_noise(value, (lo, hi), noise_sd);
                        (lo.max(0.0), hi.min(1.0))
                    }),
                }
            }),
        }
    }
}

/// OLS from the sufficient statistics. Without DP the centred cross-products are computed from
/// the exact integer sums (`n·Σab − Σa·Σb`, exact in `u128`, rounded once); with DP each sum gets
/// Laplace noise scaled to the L1 sensitivity of the whole vector of sums.
#[allow(clippy::cast_precision_loss, clippy::too_many_lines)] // statistics are floating point
fn release_regression(
    aggregates: &Aggregates,
    bound: &Bound,
    header: &LayoutHeader,
    policy: &Policy,
    rng: &mut impl Rng,
    target: usize,
    features: &[usize],
) -> ResultTable {
    let schema = &header.schema;
    let variables: Vec<usize> = features.iter().copied().chain([target]).collect();
    let v = variables.len();
    let (count, _, _) = aggregates
        .groups
        .first()
        .copied()
        .unwrap_or((0, None, None));
    let sums = aggregates.terms.first().cloned().unwrap_or_default();
    let sum = |t: usize| sums.get(t).copied().unwrap_or(0);
    let width = |c: usize| match schema.columns[c].kind {
        ColumnKind::Integer { min, max, .. } => {
            datacloud_query::schema::range_width(min, max) as f64
        }
        _ => 0.0,
    };
    let (min_of, unit_of) = (
        |c: usize| match schema.columns[c].kind {
            ColumnKind::Integer { min, .. } => min as f64,
            _ => 0.0,
        },
        |c: usize| schema.columns[c].kind.unit(),
    );
    // Centred statistics in offset units.
    let (rows, means, cross): (f64, Vec<f64>, Vec<Vec<f64>>) = if policy.epsilon.is_none() {
        {
            let n = count;
            let centred = |ab: u128, a: u128, b: u128| -> f64 {
                match (n.checked_mul(ab), a.checked_mul(b)) {
                    (Some(x), Some(y)) if x >= y => (x - y) as f64 / n.max(1) as f64,
                    (Some(x), Some(y)) => -((y - x) as f64) / n.max(1) as f64,
                    _ => ab as f64 - a as f64 * b as f64 / n.max(1) as f64,
                }
            };
            let means = (0..v).map(|i| sum(i) as f64 / n.max(1) as f64).collect();
            let cross = (0..v)
                .map(|i| {
                    (0..v)
                        .map(|j| centred(sum(Output::pair_term(v, i, j)), sum(i), sum(j)))
                        .collect()
                })
                .collect();
            (n as f64, means, cross)
        }
    } else {
        {
            let sensitivity = 1.0
                + variables.iter().map(|&c| width(c)).sum::<f64>()
                + (0..v)
                    .flat_map(|i| (i..v).map(move |j| (i, j)))
                    .map(|(i, j)| width(variables[i]) * width(variables[j]))
                    .sum::<f64>();
            let noisy: Vec<f64> = sums
                .iter()
                .map(|&s| s as f64 + dp_noise(policy, rng, sensitivity))
                .collect();
            let n = (count as f64 + dp_noise(policy, rng, sensitivity)).max(1.0);
            let at = |t: usize| noisy.get(t).copied().unwrap_or(0.0);
            let means = (0..v).map(|i| at(i) / n).collect();
            let cross = (0..v)
                .map(|i| {
                    (0..v)
                        .map(|j| at(Output::pair_term(v, i, j)) - at(i) * at(j) / n)
                        .collect()
                })
                .collect();
            (n, means, cross)
        }
    };
    // Real units: z = (min + offset) / 10^scale.
    let stats = CentredStats {
        rows,
        means: (0..v)
            .map(|i| {
                let c = variables[i];
                (min_of(c) + means[i]) / unit_of(c)
            })
            .collect(),
        cross: (0..v)
            .map(|i| {
                (0..v)
                    .map(|j| cross[i][j] / (unit_of(variables[i]) * unit_of(variables[j])))
                    .collect()
            })
            .collect(),
    };
    let names: Vec<String> = features
        .iter()
        .map(|&c| schema.columns[c].name.clone())
        .collect();
    let target_name = schema.columns[target].name.clone();
    let fit = RegressionFit::fit(&target_name, &names, &stats, policy.min_cohort as f64);
    let n = if policy.epsilon.is_some() {
        rows
    } else {
        rows.round()
    };
    ResultTable {
        template: "linear_regression".into(),
        measure: Some(target_name),
        aggregates: vec![Aggregate::Count],
        group_by: bound
            .groups
            .iter()
            .map(|&(c, _)| schema.columns[c].name.clone())
            .collect(),
        rows: vec![ResultRow {
            group: Vec::new(),
            cell: released_count(policy, n),
        }],
        min_cohort: policy.min_cohort,
        epsilon: policy.epsilon,
        model: Some(Model::LinearRegression(fit)),
    }
}

/// The 95 % half-width of Laplace noise per unit of its standard deviation: `P(|X| > t) =
/// exp(−t/b) = 0.05` gives `t = b·ln 20`, and `sd = b·√2`.
const LAPLACE_95_PER_SD: f64 = 2.118_244_611_104_3;

/// Widens a 95 % sampling interval around `value` for DP noise of standard deviation `sd` on the
/// estimate: on each side the sampling half-width and the noise's 95 % half-width add in
/// quadrature. Without noise (`sd` 0) the interval is unchanged.
fn widen_for_noise(value: f64, (lo, hi): (f64, f64), sd: f64) -> (f64, f64) {
    let noise = LAPLACE_95_PER_SD * sd;
    (
        value - (value - lo).hypot(noise),
        value + (hi - value).hypot(noise),
    )
}

/// Mean ± t(0.975, n−1)·√(var/n).
fn t_interval(mean: f64, var: f64, n: f64) -> Option<(f64, f64)> {
    if n < 2.0 {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, n - 1.0).ok()?.inverse_cdf(0.975);
    let half = t * (var / n).sqrt();
    Some((mean - half, mean + half))
}

/// Laplace noise of scale `b` on an integer aggregate: the discrete Laplace mechanism, drawn
/// exactly in integer arithmetic ([`crate::noise`]), not by a floating-point inverse CDF.
pub(crate) fn laplace(rng: &mut dyn rand::RngCore, b: f64) -> f64 {
    crate::noise::discrete_laplace(rng, b)
}

/// The Wilson score interval of a proportion (95 %), for rates such as fraud per cohort.
#[must_use]
pub fn wilson(successes: f64, n: f64) -> Option<(f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let p = successes / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datacloud_query::reference::reference;

    /// How often the released 95 % intervals of a noisy release cover the exact figures, over
    /// `draws` releases of `sql` at `epsilon`, counting only released cells (the mean's
    /// interval, or the rate's when `rate`).
    fn coverage(sql: &str, epsilon: f64, draws: usize, rate: bool) -> f64 {
        use rand::SeedableRng;
        let table = datacloud_query::synth::generate(3_000, 17);
        let header = datacloud_query::layout::header(
            &table,
            &datacloud_query::layout::LayoutOptions::default(),
        );
        let q = datacloud_query::sql::parse(sql, &table.schema).unwrap();
        let p = datacloud_query::plan::plan(&q, &header).unwrap();
        let plain = reference(&table, &p.bound, &header);
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pick = |cell: &Cell| match cell {
            Cell::Released { avg, rate: r, .. } => {
                if rate {
                    r.clone()
                } else {
                    avg.clone()
                }
            }
            Cell::Suppressed { .. } => None,
        };
        let exact = release(&plain, &p, &header, &Policy::default(), &mut rng).unwrap();
        let truth: Vec<Option<f64>> = exact
            .rows
            .iter()
            .map(|r| pick(&r.cell).map(|e| e.value))
            .collect();
        let noisy = Policy {
            min_cohort: 10,
            epsilon: Some(epsilon),
        };
        let (mut covered, mut seen) = (0u32, 0u32);
        for _ in 0..draws {
            let table = release(&plain, &p, &header, &noisy, &mut rng).unwrap();
            for (row, truth) in table.rows.iter().zip(&truth) {
                if let (Some(estimate), Some(truth)) = (pick(&row.cell), truth) {
                    let (lo, hi) = estimate.ci95.unwrap();
                    seen += 1;
                    covered += u32::from(lo <= *truth && *truth <= hi);
                }
            }
        }
        assert!(seen > 0, "{sql}: nothing released");
        f64::from(covered) / f64::from(seen)
    }

    #[test]
    fn intervals_account_for_the_noise() {
        // At a small ε the noise dominates the sampling error: an interval computed from the
        // noisy sums as if they were exact covers the exact figure far less than 95 % of the
        // time. The released interval adds the noise's spread and covers it at least that often.
        let means = coverage(
            "SELECT region, AVG(amount) FROM transactions GROUP BY region",
            0.05,
            300,
            false,
        );
        assert!(means >= 0.95, "means covered {means}");
        let rates = coverage(
            "SELECT FRAUD_MODEL(is_fraud) FROM transactions GROUP BY channel",
            0.05,
            300,
            true,
        );
        assert!(rates >= 0.95, "rates covered {rates}");
    }

    #[test]
    fn intervals() {
        let (lo, hi) = t_interval(10.0, 4.0, 30.0).unwrap();
        // t(0.975, 29) = 2.045; half-width 2.045 * sqrt(4/30).
        assert!((hi - 10.0 - 2.045 * (4.0f64 / 30.0).sqrt()).abs() < 1e-3);
        assert!((10.0 - lo - (hi - 10.0)).abs() < 1e-9);
        let (wl, wh) = wilson(2.0, 100.0).unwrap();
        assert!((wl - 0.0055).abs() < 1e-3 && (wh - 0.0700).abs() < 1e-3);
    }

    /// A cell of 1 in every template, released under the default policy (k = 10): one row of
    /// region APAC, and one fraudster among the EMEA rows. No released figure is derived from
    /// it: the cohort's statistics, its histogram buckets, its fraud rate and model weight, and
    /// a regression on it are all withheld, counts included.
    #[test]
    #[allow(clippy::too_many_lines)] // one paragraph per template
    fn every_template_withholds_a_cell_of_one() {
        let mut table = datacloud_query::synth::generate(2_000, 4);
        let column = |name: &str| {
            table
                .schema
                .columns
                .iter()
                .position(|c| c.name == name)
                .unwrap()
        };
        let (region, fraud) = (column("region"), column("is_fraud"));
        for v in &mut table.columns[region] {
            if *v == 0 {
                *v = 2;
            }
        }
        table.columns[region][3] = 0;
        let regions = table.columns[region].clone();
        for (v, &g) in table.columns[fraud].iter_mut().zip(&regions) {
            if g == 1 {
                *v = 0;
            }
        }
        let emea = table.columns[region].iter().position(|&v| v == 1).unwrap();
        table.columns[fraud][emea] = 1;
        let header = datacloud_query::layout::header(
            &table,
            &datacloud_query::layout::LayoutOptions::default(),
        );
        let mut rng = rand::rng();
        let mut release_sql = |sql: &str| {
            let q = datacloud_query::sql::parse(sql, &table.schema).unwrap();
            let p = datacloud_query::plan::plan(&q, &header).unwrap();
            let plain = reference(&table, &p.bound, &header);
            release(&plain, &p, &header, &Policy::default(), &mut rng).unwrap()
        };
        let suppressed = |t: &ResultTable, label: &str| {
            t.rows
                .iter()
                .filter(|r| r.group.first().map(String::as_str) == Some(label))
                .all(|r| matches!(r.cell, Cell::Suppressed { .. }))
        };
        let released = |t: &ResultTable, label: &str| {
            t.rows.iter().any(|r| {
                r.group.first().map(String::as_str) == Some(label)
                    && matches!(r.cell, Cell::Released { .. })
            })
        };
        // cohort_stats: APAC's one row.
        let stats =
            release_sql("SELECT region, COUNT(*), AVG(amount) FROM transactions GROUP BY region");
        assert!(suppressed(&stats, "APAC") && released(&stats, "AMER"));
        // histogram: every APAC bucket.
        let histogram =
            release_sql("SELECT region, HISTOGRAM(amount) FROM transactions GROUP BY region");
        assert!(suppressed(&histogram, "APAC") && released(&histogram, "AMER"));
        // fraud_model: APAC's rate (one row) and EMEA's (one fraudster), and their weights.
        let model = release_sql("SELECT FRAUD_MODEL(is_fraud) FROM transactions GROUP BY region");
        assert!(suppressed(&model, "APAC") && suppressed(&model, "EMEA"));
        let Some(Model::NaiveBayes(nb)) = &model.model else {
            panic!("naive Bayes")
        };
        for value in ["APAC", "EMEA"] {
            let w = nb
                .weights
                .iter()
                .find(|w| w.feature == "region" && w.value == value)
                .unwrap();
            assert_eq!(
                (w.log_odds, w.rows, w.positives),
                (None, None, None),
                "{value}"
            );
        }
        assert!(!model.render().contains(", 1 with the label"));
        // linear_regression on APAC's one row: the fit, its row count and the cell.
        let fit = release_sql(
            "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions WHERE region = 'APAC'",
        );
        let Some(Model::LinearRegression(ols)) = &fit.model else {
            panic!("a fit")
        };
        assert!(ols.coefficients.is_empty() && ols.rows.is_none());
        assert!(matches!(fit.rows[0].cell, Cell::Suppressed { .. }));
        // The sample statistics: see `sample::tests::a_value_or_flag_of_one_row_is_withheld`.
    }

    /// The new templates released from plaintext aggregates of 5,000 demo rows: the tables
    /// render, the models are usable, small cells are suppressed, and DP charges the budget.
    #[test]
    #[allow(clippy::too_many_lines)] // one paragraph per template, then the policy's limits
    fn template_releases_render_and_respect_the_policy() {
        use rand::SeedableRng;
        let table = datacloud_query::synth::generate(5_000, 9);
        let header = datacloud_query::layout::header(
            &table,
            &datacloud_query::layout::LayoutOptions::default(),
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let release_sql = |sql: &str, policy: &Policy, rng: &mut rand::rngs::StdRng| {
            let q = datacloud_query::sql::parse(sql, &table.schema).unwrap();
            let p = datacloud_query::plan::plan(&q, &header).unwrap();
            let plain = reference(&table, &p.bound, &header);
            release(&plain, &p, &header, policy, rng).unwrap()
        };
        let exact = Policy::default();
        let histogram = release_sql(
            "SELECT region, HISTOGRAM(amount) FROM transactions GROUP BY region",
            &exact,
            &mut rng,
        );
        assert_eq!(histogram.rows.len(), 4 * 7);
        assert!(histogram.render().contains("[10.00, 25.00)"));
        let fraud = release_sql(
            "SELECT FRAUD_MODEL(is_fraud) FROM transactions GROUP BY channel",
            &exact,
            &mut rng,
        );
        let text = fraud.render();
        assert!(
            text.contains("rate(is_fraud)") && text.contains("prior log-odds"),
            "{text}"
        );
        let Some(Model::NaiveBayes(model)) = &fraud.model else {
            panic!("naive Bayes")
        };
        // The generator makes online fraud likelier than card-present fraud.
        let online = model.score([("channel", "online")]).unwrap();
        let present = model.score([("channel", "card_present")]).unwrap();
        assert!(online > present, "{online} vs {present}");
        let regression = release_sql(
            "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions",
            &exact,
            &mut rng,
        );
        assert!(regression.render().contains("(intercept)"));
        // A minimum cohort above the row count withholds the models and suppresses the cells.
        let strict = Policy {
            min_cohort: 10_000,
            ..Policy::default()
        };
        let withheld = release_sql(
            "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions",
            &strict,
            &mut rng,
        );
        let Some(Model::LinearRegression(fit)) = &withheld.model else {
            panic!("a fit")
        };
        assert!(fit.coefficients.is_empty() && fit.note.is_some());
        let hidden = release_sql(
            "SELECT HISTOGRAM(amount) FROM transactions",
            &strict,
            &mut rng,
        );
        assert!(
            hidden
                .rows
                .iter()
                .all(|r| matches!(r.cell, Cell::Suppressed { .. }))
        );
        // With DP, every template's outputs are noisy and say their ε.
        let dp = Policy {
            min_cohort: 10,
            epsilon: Some(1.0),
        };
        for sql in [
            "SELECT HISTOGRAM(amount) FROM transactions",
            "SELECT FRAUD_MODEL(is_fraud, channel) FROM transactions",
            "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions",
        ] {
            let q = datacloud_query::sql::parse(sql, &table.schema).unwrap();
            let p = datacloud_query::plan::plan(&q, &header).unwrap();
            let plain = reference(&table, &p.bound, &header);
            let noisy = release(&plain, &p, &header, &dp, &mut rng).unwrap();
            assert!(noisy.render().contains("ε = 1"), "{sql}");
        }
        assert!(matches!(
            Policy {
                min_cohort: 10,
                epsilon: Some(0.0),
            }
            .validate(),
            Err(PolicyError::Invalid(_))
        ));
    }
}
