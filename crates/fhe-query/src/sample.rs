//! Sample statistics a seller publishes with a listing, under ε-differential privacy.
//!
//! A buyer deciding whether a dataset is worth a query wants to know roughly what is in it: how
//! many rows, how the categories split, the typical value of each number, how often a flag is
//! set. The seller computes those on the plaintext at onboarding and releases them with discrete
//! Laplace noise (the mechanism [`crate::policy`] uses for query results), so the listing says what the
//! data looks like without saying anything reliable about any one row.
//!
//! Privacy accounting (neighbouring datasets differ by one row, added or removed): the total ε is
//! split evenly over the released groups — the row count, then one group per category, integer
//! or boolean column (a day column's range is already public in the layout). A category's
//! histogram is one group (one row changes one cell by one: L1 sensitivity 1); an integer
//! column's sum of offsets from its declared minimum has sensitivity `max − min`; a flag's count
//! of `true` has sensitivity 1. Means and rates are post-processing of those noisy sums and the
//! noisy row count, so they cost nothing more.
//!
//! Minimum cohort: no figure is derived from fewer than `min_cohort` rows, judged on the noisy
//! counts (a decision on the true ones would itself leak): a category value's share, a flag's
//! rate when the rows with or without it are that few, and every mean and rate of a table that
//! small, are withheld.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use datacloud_query::ingest::Table;
use datacloud_query::schema::ColumnKind;

use crate::policy::laplace;

/// What the listing says about the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleStatistics {
    /// The total privacy budget these statistics spent.
    pub epsilon: f64,
    /// The row count, noised and rounded.
    pub rows: u64,
    /// One summary per released column, in schema order.
    pub columns: Vec<ColumnSample>,
}

/// One column's noisy summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnSample {
    /// The column's name.
    pub name: String,
    /// Its summary.
    #[serde(flatten)]
    pub summary: Summary,
}

/// A column's summary, by the column's kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "summary", rename_all = "snake_case")]
pub enum Summary {
    /// Each declared value's share of the rows, in percent; `None` for a value of fewer rows
    /// than the minimum cohort.
    Shares { shares: Vec<(String, Option<f64>)> },
    /// The mean, in the column's units (decimals applied); `None` in a table under the minimum
    /// cohort.
    Mean { mean: Option<f64> },
    /// The share of rows where the flag is set, in percent; `None` when the rows with the flag
    /// or those without it are under the minimum cohort.
    Rate { percent: Option<f64> },
}

/// The statistics of `table` under a total budget `epsilon` (> 0), noise drawn from `rng`,
/// nothing derived from fewer than `min_cohort` rows.
///
/// # Panics
/// If `epsilon` is not a positive finite number (callers validate it at the edge).
#[must_use]
pub fn sample_statistics(
    table: &Table,
    epsilon: f64,
    min_cohort: u64,
    rng: &mut dyn RngCore,
) -> SampleStatistics {
    assert!(
        epsilon.is_finite() && epsilon > 0.0,
        "ε must be positive and finite"
    );
    let released = table
        .schema
        .columns
        .iter()
        .filter(|c| !matches!(c.kind, ColumnKind::Day))
        .count();
    #[allow(clippy::cast_precision_loss)] // a handful of groups
    let each = epsilon / (1 + released) as f64;
    #[allow(clippy::cast_precision_loss)] // row counts are far below 2^52
    let noisy_rows = (table.rows() as f64 + laplace(rng, 1.0 / each)).max(0.0);
    #[allow(clippy::cast_precision_loss)] // a small count
    let k = min_cohort as f64;
    let table_ok = noisy_rows >= k;
    let mut columns = Vec::with_capacity(released);
    for (column, values) in table.schema.columns.iter().zip(&table.columns) {
        let summary = match &column.kind {
            ColumnKind::Day => continue,
            ColumnKind::Category { values: names } => {
                let mut counts = vec![0u64; names.len()];
                for &v in values {
                    if let Some(count) = usize::try_from(v).ok().and_then(|v| counts.get_mut(v)) {
                        *count += 1;
                    }
                }
                #[allow(clippy::cast_precision_loss)]
                let noisy: Vec<f64> = counts
                    .iter()
                    .map(|&c| (c as f64 + laplace(rng, 1.0 / each)).max(0.0))
                    .collect();
                let total: f64 = noisy.iter().sum();
                Summary::Shares {
                    shares: names
                        .iter()
                        .zip(&noisy)
                        .map(|(name, &c)| {
                            let share = if total > 0.0 { 100.0 * c / total } else { 0.0 };
                            (name.clone(), (table_ok && c >= k).then(|| round2(share)))
                        })
                        .collect(),
                }
            }
            kind @ ColumnKind::Integer { min, max, .. } => {
                #[allow(clippy::cast_precision_loss)]
                let (offsets, range) = (
                    values.iter().map(|&v| (v - min) as f64).sum::<f64>(),
                    (max - min) as f64,
                );
                let noisy_sum = (offsets + laplace(rng, range.max(1.0) / each)).max(0.0);
                let mean_offset = (noisy_sum / noisy_rows.max(1.0)).min(range);
                #[allow(clippy::cast_precision_loss)]
                let mean = (*min as f64 + mean_offset) / kind.unit();
                Summary::Mean {
                    mean: table_ok.then(|| round2(mean)),
                }
            }
            ColumnKind::Bool => {
                #[allow(clippy::cast_precision_loss)]
                let set = values.iter().filter(|&&v| v != 0).count() as f64;
                let noisy = (set + laplace(rng, 1.0 / each)).max(0.0);
                let cohorts = table_ok && noisy >= k && noisy_rows - noisy >= k;
                Summary::Rate {
                    percent: cohorts
                        .then(|| round2((100.0 * noisy / noisy_rows.max(1.0)).min(100.0))),
                }
            }
        };
        columns.push(ColumnSample {
            name: column.name.clone(),
            summary,
        });
    }
    SampleStatistics {
        epsilon,
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ≥ 0, rounded
        rows: noisy_rows.round() as u64,
        columns,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl SampleStatistics {
    /// A few indented lines for a listing.
    #[must_use]
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  sample statistics (Laplace noise, ε = {}): ~{} rows",
            self.epsilon, self.rows
        );
        for column in &self.columns {
            let _ = match &column.summary {
                Summary::Shares { shares } => writeln!(
                    s,
                    "    {}: {}",
                    column.name,
                    shares
                        .iter()
                        .map(|(v, p)| match p {
                            Some(p) => format!("{v} {p:.1} %"),
                            None => format!("{v} (too few rows)"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Summary::Mean { mean: Some(mean) } => {
                    writeln!(s, "    {}: mean ~{mean:.2}", column.name)
                }
                Summary::Rate {
                    percent: Some(percent),
                } => writeln!(s, "    {}: {percent:.2} % of rows", column.name),
                Summary::Mean { mean: None } | Summary::Rate { percent: None } => {
                    writeln!(s, "    {}: withheld (too few rows)", column.name)
                }
            };
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datacloud_query::synth;
    use rand::SeedableRng;

    fn shares(stats: &SampleStatistics, name: &str) -> Vec<f64> {
        let column = stats.columns.iter().find(|c| c.name == name).unwrap();
        match &column.summary {
            Summary::Shares { shares } => shares.iter().map(|s| s.1.unwrap()).collect(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn a_huge_budget_releases_the_true_statistics() {
        let table = synth::generate(2_000, 7);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let stats = sample_statistics(&table, 1e9, 10, &mut rng);
        assert_eq!(stats.rows, 2_000);
        // Every column but the day column, in schema order.
        let names: Vec<&str> = stats.columns.iter().map(|c| c.name.as_str()).collect();
        let expected: Vec<&str> = table
            .schema
            .columns
            .iter()
            .filter(|c| !matches!(c.kind, ColumnKind::Day))
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, expected);
        for (column, values) in table.schema.columns.iter().zip(&table.columns) {
            let Some(sample) = stats.columns.iter().find(|c| c.name == column.name) else {
                continue;
            };
            #[allow(clippy::cast_precision_loss)]
            match (&column.kind, &sample.summary) {
                (ColumnKind::Category { values: names }, Summary::Shares { shares }) => {
                    for (i, (name, share)) in shares.iter().enumerate() {
                        assert_eq!(name, &names[i]);
                        let truth = 100.0
                            * values
                                .iter()
                                .filter(|&&v| v == i64::try_from(i).unwrap())
                                .count() as f64
                            / 2_000.0;
                        let share = share.unwrap();
                        assert!((share - truth).abs() < 0.01, "{name}: {share} vs {truth}");
                    }
                }
                (ColumnKind::Integer { scale, .. }, Summary::Mean { mean: Some(mean) }) => {
                    let truth = values.iter().sum::<i64>() as f64
                        / 2_000.0
                        / 10f64.powi(i32::try_from(*scale).unwrap());
                    assert!(
                        (mean - truth).abs() < 0.01,
                        "{}: {mean} vs {truth}",
                        column.name
                    );
                }
                (
                    ColumnKind::Bool,
                    Summary::Rate {
                        percent: Some(percent),
                    },
                ) => {
                    let truth = 100.0 * values.iter().filter(|&&v| v != 0).count() as f64 / 2_000.0;
                    assert!((percent - truth).abs() < 0.01, "{}", column.name);
                }
                (kind, summary) => panic!("{kind:?} summarised as {summary:?}"),
            }
        }
    }

    #[test]
    fn a_small_budget_noises_the_statistics_and_a_larger_one_less() {
        let table = synth::generate(2_000, 7);
        let truth = shares(
            &sample_statistics(&table, 1e9, 10, &mut rand::rng()),
            "region",
        );
        let error = |epsilon: f64| {
            let mut total = 0.0;
            for seed in 0..20 {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let noisy = shares(&sample_statistics(&table, epsilon, 0, &mut rng), "region");
                total += noisy
                    .iter()
                    .zip(&truth)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f64>();
            }
            total
        };
        let (small, large) = (error(0.05), error(5.0));
        assert!(small > 0.0, "noise is added");
        assert!(small > 10.0 * large, "ε = 0.05: {small}, ε = 5: {large}");
    }

    /// A cell of 1: one row with a category value, one flagged row. Neither is released, and a
    /// table under the minimum cohort releases no mean or rate at all.
    #[test]
    fn a_value_or_flag_of_one_row_is_withheld() {
        let mut table = synth::generate(500, 5);
        let schema = table.schema.clone();
        let column = |name: &str| schema.columns.iter().position(|c| c.name == name).unwrap();
        let (region, fraud) = (column("region"), column("is_fraud"));
        // Region 0 on one row only; the fraud flag on one row only.
        for v in &mut table.columns[region] {
            if *v == 0 {
                *v = 1;
            }
        }
        table.columns[region][7] = 0;
        for v in &mut table.columns[fraud] {
            *v = 0;
        }
        table.columns[fraud][7] = 1;
        let stats = sample_statistics(&table, 1e9, 10, &mut rand::rngs::StdRng::seed_from_u64(2));
        let summary = |name: &str| {
            &stats
                .columns
                .iter()
                .find(|c| c.name == name)
                .unwrap()
                .summary
        };
        let Summary::Shares { shares } = summary("region") else {
            panic!("shares")
        };
        assert_eq!(shares[0].1, None, "one row: withheld");
        assert!(shares[1..].iter().all(|s| s.1.is_some()));
        assert_eq!(summary("is_fraud"), &Summary::Rate { percent: None });
        assert!(stats.render().contains("(too few rows)"));
        // Five rows in all: nothing but the noisy row count.
        let tiny = synth::generate(5, 5);
        let stats = sample_statistics(&tiny, 1e9, 10, &mut rand::rngs::StdRng::seed_from_u64(2));
        for c in &stats.columns {
            match &c.summary {
                Summary::Shares { shares } => assert!(shares.iter().all(|s| s.1.is_none())),
                Summary::Mean { mean } => assert!(mean.is_none()),
                Summary::Rate { percent } => assert!(percent.is_none()),
            }
        }
    }

    #[test]
    fn statistics_round_trip_through_json_and_render() {
        let table = synth::generate(300, 3);
        let stats = sample_statistics(&table, 1.0, 10, &mut rand::rngs::StdRng::seed_from_u64(9));
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(
            serde_json::from_str::<SampleStatistics>(&json).unwrap(),
            stats
        );
        let text = stats.render();
        assert!(text.contains("ε = 1"), "{text}");
        assert!(text.contains("region:"), "{text}");
    }
}
