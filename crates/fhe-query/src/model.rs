//! Models the buyer receives, computed by the seller from decrypted aggregates only: the
//! naive-Bayes fraud model of `fraud_model` and the OLS fit of `linear_regression`. Both carry a
//! small scoring helper, so the buyer can use them on rows it holds without seeing any of ours.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A model released with a [`crate::result::ResultTable`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Model {
    NaiveBayes(NaiveBayes),
    LinearRegression(RegressionFit),
}

/// A naive-Bayes scoring model: the log-odds of the label for a row is the prior log-odds plus,
/// for each feature, the weight of the row's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NaiveBayes {
    pub label: String,
    /// Add-α (Laplace) smoothing pseudo-count used in every ratio.
    pub alpha: u32,
    /// Rows the model was fitted on, and how many had the label; `None` when the model is
    /// withheld (either count, or the rows without the label, under the minimum cohort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positives: Option<f64>,
    /// `ln((positives + α) / (negatives + α))`; `None` when the whole model is withheld.
    pub prior_log_odds: Option<f64>,
    pub weights: Vec<FeatureWeight>,
    /// Why some or all of the model is withheld (minimum cohort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `ln(P(feature = value | label) / P(feature = value | not label))`, smoothed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureWeight {
    pub feature: String,
    pub value: String,
    /// Rows with this value, and those of them with the label (after DP noise, if any); `None`
    /// when the weight is withheld.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positives: Option<f64>,
    /// `None` when the value's rows, or those of them with or without the label, are under the
    /// minimum cohort: the weight is derived from them (scored as no evidence).
    pub log_odds: Option<f64>,
}

/// Counts behind a naive-Bayes model: `(feature, values, per value (rows, positives))`.
pub(crate) struct FeatureCounts {
    pub feature: String,
    pub values: Vec<String>,
    pub counts: Vec<(f64, f64)>,
}

impl NaiveBayes {
    /// Fits the model from (possibly noisy) counts. Every released figure is derived from at
    /// least `min_rows` rows: a value gets a weight (and its counts are shown) only if its rows
    /// with the label and its rows without it each number `min_rows` or more — one fraudster in
    /// a cohort of 84 is a cell of 1 — and the whole model (prior, counts, weights) is withheld
    /// unless the rows with and without the label do.
    pub(crate) fn fit(
        label: &str,
        alpha: u32,
        rows: f64,
        positives: f64,
        features: &[FeatureCounts],
        min_rows: f64,
    ) -> NaiveBayes {
        let a = f64::from(alpha);
        let positives = positives.clamp(0.0, rows.max(0.0));
        let negatives = (rows - positives).max(0.0);
        let whole = positives >= min_rows && negatives >= min_rows;
        let mut withheld = 0;
        let mut weights = Vec::new();
        for f in features {
            #[allow(clippy::cast_precision_loss)] // a category has at most 256 values
            let k = f.values.len() as f64;
            for (value, &(n, p)) in f.values.iter().zip(&f.counts) {
                let p = p.clamp(0.0, n.max(0.0));
                let given_label = (p + a) / (positives + a * k);
                let given_other = ((n - p).max(0.0) + a) / (negatives + a * k);
                let released = whole && p >= min_rows && n - p >= min_rows;
                withheld += usize::from(!released);
                weights.push(FeatureWeight {
                    feature: f.feature.clone(),
                    value: value.clone(),
                    rows: released.then_some(n),
                    positives: released.then_some(p),
                    log_odds: released.then(|| (given_label / given_other).ln()),
                });
            }
        }
        let note = if whole {
            (withheld > 0).then(|| {
                format!(
                    "{withheld} value(s) with fewer than {min_rows} rows with or without the label have no weight (scored as 0)"
                )
            })
        } else {
            Some(format!(
                "fewer than {min_rows} rows with or without the label: the model is withheld"
            ))
        };
        NaiveBayes {
            label: label.into(),
            alpha,
            rows: whole.then_some(rows),
            positives: whole.then_some(positives),
            prior_log_odds: whole.then(|| ((positives + a) / (negatives + a)).ln()),
            weights,
            note,
        }
    }

    /// The log-odds of the label for a row given as `(feature, value)` pairs; features the model
    /// does not know, and withheld weights, add nothing. `None` when the model is withheld.
    #[must_use]
    pub fn score<'a>(&self, row: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<f64> {
        let mut score = self.prior_log_odds?;
        for (feature, value) in row {
            score += self
                .weights
                .iter()
                .find(|w| w.feature == feature && w.value == value)
                .and_then(|w| w.log_odds)
                .unwrap_or(0.0);
        }
        Some(score)
    }

    /// The probability of the label for a row: the logistic function of [`NaiveBayes::score`].
    #[must_use]
    pub fn probability<'a>(
        &self,
        row: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<f64> {
        self.score(row).map(|s| 1.0 / (1.0 + (-s).exp()))
    }

    fn render(&self, out: &mut String) {
        match (self.rows, self.positives) {
            (Some(rows), Some(positives)) => {
                let _ = writeln!(
                    out,
                    "naive-Bayes model of {} (add-{} smoothing) over {rows:.0} rows, {positives:.0} with the label",
                    self.label, self.alpha
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "naive-Bayes model of {} (add-{} smoothing)",
                    self.label, self.alpha
                );
            }
        }
        match self.prior_log_odds {
            Some(p) => {
                let _ = writeln!(out, "  prior log-odds: {p:.4}");
            }
            None => {
                let _ = writeln!(out, "  withheld");
            }
        }
        for w in &self.weights {
            let _ = match (w.log_odds, w.rows, w.positives) {
                (Some(l), Some(rows), Some(positives)) => writeln!(
                    out,
                    "  {}={}: {l:+.4} ({rows:.0} rows, {positives:.0} with the label)",
                    w.feature, w.value
                ),
                _ => writeln!(out, "  {}={}: withheld", w.feature, w.value),
            };
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "  note: {note}");
        }
        let _ = writeln!(
            out,
            "  score(row) = prior + Σ weight(feature=value); P = 1 / (1 + e^-score)"
        );
    }
}

/// An ordinary-least-squares fit with an intercept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionFit {
    pub target: String,
    pub features: Vec<String>,
    /// Rows fitted on; `None` when the fit is withheld (fewer than the minimum cohort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<f64>,
    /// The intercept first, then one per feature, in the query's order. Empty when withheld.
    pub coefficients: Vec<Coefficient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r_squared: Option<f64>,
    /// σ̂ = √(RSS / (n − p)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual_std_error: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    pub name: String,
    pub estimate: f64,
    /// `√(σ̂² · [(XᵀX)⁻¹]_jj)`; `None` without residual degrees of freedom.
    pub std_error: Option<f64>,
    /// `estimate ± t(0.975, n − p) · std_error`.
    pub ci95: Option<(f64, f64)>,
}

/// Sufficient statistics of a regression in real units, centred: the means of the variables
/// `z = features ++ [target]` and their centred cross-products `Σ (z_i − z̄_i)(z_j − z̄_j)`.
pub(crate) struct CentredStats {
    pub rows: f64,
    pub means: Vec<f64>,
    pub cross: Vec<Vec<f64>>,
}

impl RegressionFit {
    /// OLS from centred statistics. The slopes solve `S_xx β = S_xy`; the intercept is
    /// `ȳ − β·x̄`; `σ̂² = (S_yy − β·S_xy) / (n − p)`; standard errors come from `σ̂² S_xx⁻¹`
    /// and, for the intercept, `σ̂² (1/n + x̄ᵀ S_xx⁻¹ x̄)` — the diagonal of `σ̂² (XᵀX)⁻¹`.
    pub(crate) fn fit(
        target: &str,
        features: &[String],
        stats: &CentredStats,
        min_rows: f64,
    ) -> RegressionFit {
        let k = features.len();
        let mut fit = RegressionFit {
            target: target.into(),
            features: features.to_vec(),
            rows: None,
            coefficients: Vec::new(),
            r_squared: None,
            residual_std_error: None,
            note: None,
        };
        if stats.rows < min_rows {
            fit.note = Some(format!("fewer than {min_rows} rows: the fit is withheld"));
            return fit;
        }
        fit.rows = Some(stats.rows);
        let sxx: Vec<Vec<f64>> = (0..k).map(|i| stats.cross[i][..k].to_vec()).collect();
        let sxy: Vec<f64> = (0..k).map(|i| stats.cross[i][k]).collect();
        let syy = stats.cross[k][k];
        let Some(inverse) = invert(&sxx) else {
            fit.note = Some(
                "the features are collinear (or constant) in the selected rows: no unique fit"
                    .into(),
            );
            return fit;
        };
        let beta: Vec<f64> = (0..k)
            .map(|i| (0..k).map(|j| inverse[i][j] * sxy[j]).sum())
            .collect();
        let intercept = stats.means[k] - (0..k).map(|i| beta[i] * stats.means[i]).sum::<f64>();
        let rss = (syy - (0..k).map(|i| beta[i] * sxy[i]).sum::<f64>()).max(0.0);
        #[allow(clippy::cast_precision_loss)] // at most 6 parameters
        let df = stats.rows - (k + 1) as f64;
        let sigma2 = (df > 0.0).then(|| rss / df);
        let t = sigma2
            .and_then(|_| StudentsT::new(0.0, 1.0, df).ok())
            .map(|d| d.inverse_cdf(0.975));
        let coefficient = |name: String, estimate: f64, variance: Option<f64>| {
            let std_error = variance.map(|v| v.max(0.0).sqrt());
            Coefficient {
                name,
                estimate,
                std_error,
                ci95: std_error
                    .zip(t)
                    .map(|(se, t)| (estimate - t * se, estimate + t * se)),
            }
        };
        let quadratic: f64 = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| stats.means[i] * inverse[i][j] * stats.means[j])
                    .sum::<f64>()
            })
            .sum();
        fit.coefficients.push(coefficient(
            "(intercept)".into(),
            intercept,
            sigma2.map(|s| s * (1.0 / stats.rows + quadratic)),
        ));
        for (i, name) in features.iter().enumerate() {
            fit.coefficients.push(coefficient(
                name.clone(),
                beta[i],
                sigma2.map(|s| s * inverse[i][i]),
            ));
        }
        fit.r_squared = (syy > 0.0).then(|| 1.0 - rss / syy);
        fit.residual_std_error = sigma2.map(f64::sqrt);
        fit
    }

    /// The fitted value for features in the query's order (real units); `None` when withheld
    /// or when `features` has the wrong length.
    #[must_use]
    pub fn predict(&self, features: &[f64]) -> Option<f64> {
        let (intercept, slopes) = self.coefficients.split_first()?;
        (features.len() == slopes.len()).then(|| {
            intercept.estimate
                + slopes
                    .iter()
                    .zip(features)
                    .map(|(c, x)| c.estimate * x)
                    .sum::<f64>()
        })
    }

    fn render(&self, out: &mut String) {
        let _ = match self.rows {
            Some(rows) => writeln!(
                out,
                "OLS of {} on {} over {rows:.0} rows",
                self.target,
                self.features.join(", ")
            ),
            None => writeln!(
                out,
                "OLS of {} on {}",
                self.target,
                self.features.join(", ")
            ),
        };
        for c in &self.coefficients {
            let _ = writeln!(
                out,
                "  {:<16} {:>14.6}  se {}  95% CI {}",
                c.name,
                c.estimate,
                c.std_error
                    .map_or_else(|| "-".into(), |s| format!("{s:.6}")),
                c.ci95
                    .map_or_else(|| "-".into(), |(lo, hi)| format!("[{lo:.6}, {hi:.6}]"))
            );
        }
        if let Some(r2) = self.r_squared {
            let _ = writeln!(out, "  R² = {r2:.4}");
        }
        if let Some(s) = self.residual_std_error {
            let _ = writeln!(out, "  residual standard error = {s:.6}");
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "  note: {note}");
        }
    }
}

impl Model {
    /// Appends the model as text.
    pub fn render(&self, out: &mut String) {
        match self {
            Model::NaiveBayes(m) => m.render(out),
            Model::LinearRegression(m) => m.render(out),
        }
    }
}

/// The inverse of a small symmetric positive-definite matrix by Gauss–Jordan elimination with
/// partial pivoting, or `None` when it is (numerically) singular. Written out rather than adding
/// a linear-algebra dependency: regressions have at most 5 features, so this is a ≤ 5×5 solve.
#[must_use]
pub fn invert(matrix: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = matrix.len();
    let scale = matrix
        .iter()
        .enumerate()
        .map(|(i, r)| r[i].abs())
        .fold(0.0, f64::max);
    if n == 0 || scale <= 0.0 {
        return None;
    }
    let mut a: Vec<Vec<f64>> = matrix.to_vec();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() <= scale * 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..n {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..n {
            if row != col {
                let f = a[row][col];
                if f != 0.0 {
                    for j in 0..n {
                        a[row][j] -= f * a[col][j];
                        inv[row][j] -= f * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // matrix products read best with indices
mod tests {
    use super::*;

    #[test]
    fn inverse_of_a_small_matrix() {
        let m = vec![
            vec![4.0, 2.0, 0.6],
            vec![2.0, 5.0, 1.0],
            vec![0.6, 1.0, 3.0],
        ];
        let inv = invert(&m).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| m[i][k] * inv[k][j]).sum();
                assert!((p - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        assert!(invert(&[vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }

    #[test]
    fn ols_recovers_an_exact_line_and_a_textbook_fit() {
        // y = 3 + 2x exactly: slope 2, intercept 3, zero residual.
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        let stats = |ys: &[f64]| {
            let n = 5.0;
            let mx = xs.iter().sum::<f64>() / n;
            let my = ys.iter().sum::<f64>() / n;
            let c = |a: &[f64], ma: f64, b: &[f64], mb: f64| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - ma) * (y - mb))
                    .sum::<f64>()
            };
            CentredStats {
                rows: n,
                means: vec![mx, my],
                cross: vec![
                    vec![c(&xs, mx, &xs, mx), c(&xs, mx, ys, my)],
                    vec![c(&xs, mx, ys, my), c(ys, my, ys, my)],
                ],
            }
        };
        let exact = RegressionFit::fit(
            "y",
            &["x".into()],
            &stats(&[5.0, 7.0, 9.0, 11.0, 13.0]),
            1.0,
        );
        assert!((exact.coefficients[0].estimate - 3.0).abs() < 1e-12);
        assert!((exact.coefficients[1].estimate - 2.0).abs() < 1e-12);
        assert!(exact.coefficients[1].std_error.unwrap() < 1e-6);
        assert_eq!(exact.predict(&[10.0]).map(f64::round), Some(23.0));
        // y = 2, 4, 5, 4, 5: slope 0.6, intercept 2.2, SE(slope) = √(2.4/3 / 10) ≈ 0.2828,
        // SE(intercept) = √(0.8 · (1/5 + 9/10)) ≈ 0.9381.
        let fit = RegressionFit::fit("y", &["x".into()], &stats(&[2.0, 4.0, 5.0, 4.0, 5.0]), 1.0);
        assert!((fit.coefficients[1].estimate - 0.6).abs() < 1e-12);
        assert!((fit.coefficients[0].estimate - 2.2).abs() < 1e-12);
        assert!((fit.coefficients[1].std_error.unwrap() - 0.282_842_7).abs() < 1e-6);
        assert!((fit.coefficients[0].std_error.unwrap() - 0.938_083_2).abs() < 1e-6);
        assert!((fit.r_squared.unwrap() - 0.6).abs() < 1e-12);
        let withheld =
            RegressionFit::fit("y", &["x".into()], &stats(&[2.0, 4.0, 5.0, 4.0, 5.0]), 10.0);
        assert!(withheld.coefficients.is_empty() && withheld.predict(&[1.0]).is_none());
    }

    #[test]
    fn naive_bayes_weights_and_scores() {
        // 100 rows, 10 positive; channel online: 20 rows, 6 positive.
        let features = [FeatureCounts {
            feature: "channel".into(),
            values: vec!["card".into(), "online".into()],
            counts: vec![(80.0, 4.0), (20.0, 6.0)],
        }];
        let m = NaiveBayes::fit("is_fraud", 1, 100.0, 10.0, &features, 5.0);
        let prior = (11.0f64 / 91.0).ln();
        assert!((m.prior_log_odds.unwrap() - prior).abs() < 1e-12);
        let online = ((7.0 / 12.0) / (15.0 / 92.0f64)).ln();
        assert!((m.weights[1].log_odds.unwrap() - online).abs() < 1e-12);
        let s = m.score([("channel", "online"), ("unknown", "x")]).unwrap();
        assert!((s - prior - online).abs() < 1e-12);
        let p = m.probability([("channel", "online")]).unwrap();
        assert!((p - 1.0 / (1.0 + (-(prior + online)).exp())).abs() < 1e-12);
        // Under the minimum cohort: the value gets no weight; the whole model can be withheld.
        let small = NaiveBayes::fit("is_fraud", 1, 100.0, 10.0, &features, 50.0);
        assert!(small.weights[1].log_odds.is_none() && small.note.is_some());
        assert!(
            NaiveBayes::fit("is_fraud", 1, 100.0, 10.0, &features, 500.0)
                .score([])
                .is_none()
        );
    }

    /// The demo's old `region=LATAM: +0.4550 (84 rows, 1 with the label)`: 84 rows is a cohort,
    /// but the weight is derived from one labelled row. It is withheld, counts included, as is
    /// the weight of a value whose rows all carry the label.
    #[test]
    fn a_weight_from_one_labelled_row_is_withheld_with_its_counts() {
        let features = [FeatureCounts {
            feature: "region".into(),
            values: vec!["EU".into(), "LATAM".into(), "APAC".into()],
            counts: vec![(400.0, 40.0), (84.0, 1.0), (12.0, 12.0)],
        }];
        let m = NaiveBayes::fit("is_fraud", 1, 496.0, 53.0, &features, 10.0);
        let [eu, latam, apac] = &m.weights[..] else {
            panic!("three weights")
        };
        assert!(eu.log_odds.is_some() && eu.rows == Some(400.0) && eu.positives == Some(40.0));
        for w in [latam, apac] {
            assert_eq!(
                (w.log_odds, w.rows, w.positives),
                (None, None, None),
                "{}",
                w.value
            );
        }
        let text = {
            let mut out = String::new();
            m.render(&mut out);
            out
        };
        assert!(text.contains("region=LATAM: withheld"), "{text}");
        assert!(!text.contains("1 with the label"), "{text}");
        // A model over one labelled row releases nothing, not even its counts.
        let one = NaiveBayes::fit("is_fraud", 1, 496.0, 1.0, &features, 10.0);
        assert_eq!(
            (one.rows, one.positives, one.prior_log_odds),
            (None, None, None)
        );
        assert!(
            one.weights
                .iter()
                .all(|w| w.rows.is_none() && w.log_odds.is_none())
        );
    }
}
