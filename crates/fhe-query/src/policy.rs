//! Seller-side decryption and the output policy: only aggregates are ever decrypted, cells of
//! fewer than `min_cohort` rows are suppressed (not zeroed), optional Laplace noise gives ε-DP
//! with a per-buyer budget ledger, and means get 95 % t-intervals from COUNT, Σx and Σx².

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::PolicyError;
use crate::eval::EncryptedResult;
use crate::keys::SellerKey;
use crate::layout::LayoutHeader;
use crate::plan::{Bound, Plan};
use crate::schema::ColumnKind;
use crate::template::{Aggregate, category_values};

/// Decrypted aggregates per output group: (COUNT, Σ offset, Σ offset²).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregates {
    pub groups: Vec<(u128, Option<u128>, Option<u128>)>,
}

/// Decrypts an encrypted result with the seller's key. Only aggregates exist to decrypt.
#[must_use]
pub fn decrypt(result: &EncryptedResult, key: &SellerKey) -> Aggregates {
    let ck = key.integer();
    let dec = |ct: &tfhe::integer::RadixCiphertext| ck.decrypt_radix::<u128>(ct);
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
    }
}

/// The seller's output policy for a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Cells with fewer rows are suppressed.
    pub min_cohort: u64,
    /// ε spent per query when differential privacy is on.
    pub epsilon: Option<f64>,
    /// Total ε a buyer may spend on the dataset.
    pub budget: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_cohort: 10,
            epsilon: None,
            budget: 10.0,
        }
    }
}

impl Policy {
    /// # Errors
    /// [`PolicyError::Invalid`] for a non-positive ε or budget.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.epsilon.is_some_and(|e| !(e.is_finite() && e > 0.0))
            || !(self.budget.is_finite() && self.budget > 0.0)
        {
            return Err(PolicyError::Invalid(
                "ε and the budget must be positive numbers".into(),
            ));
        }
        Ok(())
    }
}

/// Per-buyer ε spent on one dataset, persisted as JSON (written atomically).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetLedger {
    pub spent: BTreeMap<String, f64>,
}

impl BudgetLedger {
    /// Loads the ledger, or an empty one if the file does not exist.
    ///
    /// # Errors
    /// [`PolicyError::Ledger`] for an unreadable or corrupt file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| PolicyError::Ledger(path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(PolicyError::Ledger(
                path.display().to_string(),
                e.to_string(),
            )),
        }
    }

    /// Writes the ledger atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`PolicyError::Ledger`].
    pub fn save(&self, path: &Path) -> Result<(), PolicyError> {
        let err =
            |e: std::io::Error| PolicyError::Ledger(path.display().to_string(), e.to_string());
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| PolicyError::Ledger(path.display().to_string(), e.to_string()))?;
        {
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            std::io::Write::write_all(&mut f, &bytes).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Records `epsilon` against `buyer`, refusing when it would exceed `budget`.
    ///
    /// # Errors
    /// [`PolicyError::BudgetExceeded`]; the ledger is unchanged then.
    pub fn charge(&mut self, buyer: &str, epsilon: f64, budget: f64) -> Result<(), PolicyError> {
        let spent = self.spent.get(buyer).copied().unwrap_or(0.0);
        if spent + epsilon > budget + 1e-12 {
            return Err(PolicyError::BudgetExceeded {
                buyer: buyer.into(),
                spent,
                asked: epsilon,
                budget,
            });
        }
        self.spent.insert(buyer.into(), spent + epsilon);
        Ok(())
    }
}

/// An estimate with its 95 % confidence interval (when one can be computed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub ci95: Option<(f64, f64)>,
}

/// One output group's statistics, or why it is withheld.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cell {
    Suppressed {
        reason: String,
    },
    Released {
        count: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        sum: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        avg: Option<Estimate>,
        #[serde(skip_serializing_if = "Option::is_none")]
        var: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stddev: Option<f64>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub group: Vec<String>,
    pub cell: Cell,
}

/// The buyer's result: a typed table that renders as text and JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultTable {
    pub template: String,
    pub measure: Option<String>,
    pub aggregates: Vec<Aggregate>,
    pub group_by: Vec<String>,
    pub rows: Vec<ResultRow>,
    pub min_cohort: u64,
    /// ε of the Laplace noise added, when differential privacy was applied.
    pub epsilon: Option<f64>,
}

/// Applies the policy to decrypted aggregates. With DP on, the buyer's budget is charged in
/// `ledger` first (and the query refused when over budget).
///
/// # Errors
/// [`PolicyError::BudgetExceeded`] / [`PolicyError::Invalid`].
pub fn release(
    aggregates: &Aggregates,
    plan: &Plan,
    header: &LayoutHeader,
    policy: &Policy,
    ledger: Option<(&mut BudgetLedger, &str)>,
    rng: &mut impl Rng,
) -> Result<ResultTable, PolicyError> {
    policy.validate()?;
    if let (Some(epsilon), Some((ledger, buyer))) = (policy.epsilon, ledger) {
        ledger.charge(buyer, epsilon, policy.budget)?;
    }
    let b = &plan.bound;
    let schema = &header.schema;
    let (min, scale, width) = b
        .measure
        .map_or((0, 0, 0), |m| match schema.columns[m].kind {
            ColumnKind::Integer { min, max, scale } => {
                (min, scale, crate::schema::range_width(min, max))
            }
            _ => (0, 0, 0),
        });
    let unit = 10f64.powi(i32::try_from(scale).unwrap_or(0));
    let labels: Vec<Vec<String>> = b
        .groups
        .iter()
        .map(|&(c, _)| category_values(&schema.columns[c].kind).unwrap_or_default())
        .collect();
    // Laplace noise: ε split over the released quantities; sensitivities 1, width, width².
    let released = 1 + usize::from(b.want_sum) + usize::from(b.want_squares);
    #[allow(clippy::cast_precision_loss)] // noise scales
    let noise = |rng: &mut dyn rand::RngCore, sensitivity: f64| -> f64 {
        policy
            .epsilon
            .map_or(0.0, |e| laplace(rng, sensitivity * released as f64 / e))
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
            let avg = mean.map(|m| Estimate {
                value: m,
                ci95: var.and_then(|v| t_interval(m, v, n)),
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
            }
        };
        rows.push(ResultRow { group, cell });
    }
    Ok(ResultTable {
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
    })
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

/// A Laplace(0, b) sample by inverse CDF of a uniform.
fn laplace(rng: &mut dyn rand::RngCore, b: f64) -> f64 {
    let u: f64 = rng.random::<f64>() - 0.5;
    -b * u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()
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

impl ResultTable {
    /// Renders the table as aligned text.
    #[must_use]
    #[allow(clippy::too_many_lines)] // one column per aggregate
    pub fn render(&self) -> String {
        let mut header: Vec<String> = self.group_by.clone();
        header.push("count".into());
        let measure = self.measure.clone().unwrap_or_default();
        for a in &self.aggregates {
            match a {
                Aggregate::Count => {}
                Aggregate::Sum => header.push(format!("sum({measure})")),
                Aggregate::Avg => {
                    header.push(format!("avg({measure})"));
                    header.push("95% CI".into());
                }
                Aggregate::Var => header.push(format!("var({measure})")),
                Aggregate::Stddev => header.push(format!("stddev({measure})")),
            }
        }
        let mut lines = vec![header];
        for row in &self.rows {
            let mut line = row.group.clone();
            match &row.cell {
                Cell::Suppressed { reason } => {
                    line.push(format!("suppressed ({reason})"));
                }
                Cell::Released {
                    count,
                    sum,
                    avg,
                    var,
                    stddev,
                } => {
                    line.push(if self.epsilon.is_some() {
                        format!("{count:.1}")
                    } else {
                        format!("{count:.0}")
                    });
                    for a in &self.aggregates {
                        match a {
                            Aggregate::Count => {}
                            Aggregate::Sum => {
                                line.push(sum.map_or("-".into(), |v| format!("{v:.2}")));
                            }
                            Aggregate::Avg => {
                                line.push(
                                    avg.as_ref()
                                        .map_or("-".into(), |e| format!("{:.2}", e.value)),
                                );
                                line.push(
                                    avg.as_ref()
                                        .and_then(|e| e.ci95)
                                        .map_or("-".into(), |(lo, hi)| {
                                            format!("[{lo:.2}, {hi:.2}]")
                                        }),
                                );
                            }
                            Aggregate::Var => {
                                line.push(var.map_or("-".into(), |v| format!("{v:.2}")));
                            }
                            Aggregate::Stddev => {
                                line.push(stddev.map_or("-".into(), |v| format!("{v:.2}")));
                            }
                        }
                    }
                }
            }
            lines.push(line);
        }
        let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                lines
                    .iter()
                    .filter_map(|l| l.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (n, line) in lines.iter().enumerate() {
            let cells: Vec<String> = line
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            if n == 0 {
                let _ = writeln!(
                    out,
                    "{}",
                    widths
                        .iter()
                        .map(|w| "-".repeat(*w))
                        .collect::<Vec<_>>()
                        .join("  ")
                );
            }
        }
        let _ = write!(out, "cells under {} rows suppressed", self.min_cohort);
        if let Some(e) = self.epsilon {
            let _ = write!(out, "; Laplace noise at ε = {e}");
        }
        out
    }
}

/// The same aggregates computed on plaintext (the reference every plan must match exactly).
#[must_use]
pub fn reference(table: &crate::ingest::Table, bound: &Bound, header: &LayoutHeader) -> Aggregates {
    let schema = &table.schema;
    let mut groups = vec![
        (
            0u128,
            bound.want_sum.then_some(0u128),
            bound.want_squares.then_some(0u128)
        );
        bound.group_count()
    ];
    if bound.empty {
        return Aggregates { groups };
    }
    for row in 0..table.rows() {
        let value = |c: usize| table.columns[c][row];
        let offset =
            |c: usize| crate::layout::offset(&schema.columns[c].kind, value(c), header.days);
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
    }
    Aggregates { groups }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_refuses_over_budget_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let mut ledger = BudgetLedger::load(&path).unwrap();
        ledger.charge("0xb", 0.6, 1.0).unwrap();
        assert!(matches!(
            ledger.charge("0xb", 0.6, 1.0),
            Err(PolicyError::BudgetExceeded { .. })
        ));
        ledger.charge("0xc", 0.6, 1.0).unwrap();
        ledger.save(&path).unwrap();
        let again = BudgetLedger::load(&path).unwrap();
        assert_eq!(again, ledger);
        std::fs::write(&path, b"{nope").unwrap();
        assert!(BudgetLedger::load(&path).is_err());
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

    #[test]
    fn laplace_noise_has_the_right_scale() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let n = 20_000;
        let mean_abs = (0..n).map(|_| laplace(&mut rng, 2.0).abs()).sum::<f64>() / f64::from(n);
        assert!(
            (mean_abs - 2.0).abs() < 0.1,
            "E|X| of Laplace(b) is b, got {mean_abs}"
        );
    }
}
