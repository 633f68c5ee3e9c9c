//! A seeded generator of Bank A-like card transactions, for the demo, tests and benches.
//!
//! The same `(rows, seed)` always gives the same table. Amounts are log-normal in cents with
//! regional and merchant effects; fraud (~1.5 %) is drawn from a logistic model of channel,
//! merchant, amount and age, so cohort fraud rates and a naive-Bayes model have signal to find.

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, LogNormal};

use crate::ingest::Table;
use crate::schema::{
    Column, ColumnKind, CubeSpec, FraudSpec, HistogramSpec, RegressionSpec, Schema, days_from_civil,
};

pub const AGE_BANDS: [&str; 8] = [
    "18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+",
];
pub const REGIONS: [&str; 4] = ["APAC", "EMEA", "AMER", "LATAM"];
pub const MERCHANTS: [&str; 8] = [
    "grocery",
    "dining",
    "fuel",
    "travel",
    "electronics",
    "online_retail",
    "gaming",
    "luxury",
];
pub const CHANNELS: [&str; 3] = ["card_present", "online", "mobile"];
/// Largest amount, in cents ($10,000.00): 20 bits, 10 radix blocks.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000;
/// Days of history generated, ending on [`last_day`].
pub const HISTORY_DAYS: i64 = 365;

/// The last day of generated history: 2026-10-31.
#[must_use]
pub fn last_day() -> i64 {
    days_from_civil(2026, 10, 31)
}

/// Edges of the declared `amount` histogram, in cents: $10, $25, $50, $100, $250, $1,000.
pub const AMOUNT_BUCKET_CENTS: [i64; 6] = [1_000, 2_500, 5_000, 10_000, 25_000, 100_000];

/// The schema of the generated transactions, with an aggregate cube over age band × region, and
/// all four templates enabled: an `amount` histogram, the `is_fraud` label with its categorical
/// features, and `amount` / `customer_age` as regression columns.
#[must_use]
pub fn schema() -> Schema {
    let category = |name: &str, values: &[&str]| Column {
        name: name.into(),
        kind: ColumnKind::Category {
            values: values.iter().map(|v| (*v).to_string()).collect(),
        },
    };
    Schema {
        name: "transactions".into(),
        columns: vec![
            Column {
                name: "customer_age".into(),
                kind: ColumnKind::Integer {
                    min: 18,
                    max: 99,
                    scale: 0,
                },
            },
            category("age_band", &AGE_BANDS),
            category("region", &REGIONS),
            Column {
                name: "day".into(),
                kind: ColumnKind::Day,
            },
            Column {
                name: "amount".into(),
                kind: ColumnKind::Integer {
                    min: 0,
                    max: MAX_AMOUNT_CENTS,
                    scale: 2,
                },
            },
            category("merchant_category", &MERCHANTS),
            category("channel", &CHANNELS),
            Column {
                name: "is_fraud".into(),
                kind: ColumnKind::Bool,
            },
        ],
        cube: Some(CubeSpec {
            dimensions: vec!["age_band".into(), "region".into()],
            measures: vec!["amount".into()],
        }),
        histograms: vec![HistogramSpec {
            column: "amount".into(),
            bounds: AMOUNT_BUCKET_CENTS.to_vec(),
        }],
        fraud: Some(FraudSpec {
            label: "is_fraud".into(),
            features: ["channel", "merchant_category", "age_band", "region"]
                .map(String::from)
                .to_vec(),
        }),
        regression: Some(RegressionSpec {
            columns: vec!["amount".into(), "customer_age".into()],
        }),
    }
}

/// The age band index of an age (18–24 → 0 … 85+ → 7).
#[must_use]
pub fn age_band(age: i64) -> usize {
    match age {
        ..=24 => 0,
        25..=34 => 1,
        35..=44 => 2,
        45..=54 => 3,
        55..=64 => 4,
        65..=74 => 5,
        75..=84 => 6,
        _ => 7,
    }
}

/// Generates `rows` transactions from `seed` over [`HISTORY_DAYS`] days.
#[must_use]
pub fn generate(rows: usize, seed: u64) -> Table {
    generate_with_history(rows, seed, HISTORY_DAYS)
}

/// Generates `rows` transactions from `seed` over the last `history_days` days (small histories
/// keep the aggregate cube small in tests).
///
/// # Panics
/// Never: the log-normal parameters are constants that are valid.
#[must_use]
// Amounts are clamped to [1, MAX_AMOUNT_CENTS] before the cast; value indices are below 8.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
pub fn generate_with_history(rows: usize, seed: u64, history_days: i64) -> Table {
    let history_days = history_days.max(1);
    let schema = schema();
    let mut rng = StdRng::seed_from_u64(seed);
    // Median ~$45, a long right tail (sigma 1.1).
    let amounts = LogNormal::new(4500f64.ln(), 1.1).expect("valid log-normal parameters");
    let first_day = last_day() - history_days + 1;
    let mut columns = vec![Vec::with_capacity(rows); schema.columns.len()];
    for _ in 0..rows {
        // Ages skew young-to-middle: the sum of two uniforms is triangular.
        let age = 18 + (rng.random_range(0..=40) + rng.random_range(0..=41)).min(81);
        let region = weighted(&mut rng, &[35, 30, 25, 10]);
        let merchant = weighted(&mut rng, &[30, 20, 12, 8, 10, 12, 5, 3]);
        let channel = weighted(&mut rng, &[55, 30, 15]);
        let day = first_day + rng.random_range(0..history_days);
        let regional = [1.0, 1.15, 1.3, 0.8][region];
        let merchant_scale = [0.8, 0.9, 1.0, 3.5, 2.5, 1.2, 0.7, 6.0][merchant];
        let amount = (amounts.sample(&mut rng) * regional * merchant_scale).round() as i64;
        let amount = amount.clamp(1, MAX_AMOUNT_CENTS);
        let logit = -5.4
            + 1.3 * f64::from(u8::from(channel == 1))
            + 0.7 * f64::from(u8::from(channel == 2))
            + 1.1 * f64::from(u8::from(matches!(merchant, 4 | 6 | 7)))
            + 0.9 * f64::from(u8::from(amount > 50_000))
            + 0.6 * f64::from(u8::from(age < 25))
            + 0.4 * f64::from(u8::from(age >= 75));
        let fraud = rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp());
        for (column, value) in columns.iter_mut().zip([
            age,
            age_band(age) as i64,
            region as i64,
            day,
            amount,
            merchant as i64,
            channel as i64,
            i64::from(fraud),
        ]) {
            column.push(value);
        }
    }
    Table { schema, columns }
}

fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.random_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_valid_and_plausible() {
        let a = generate(20_000, 7);
        assert_eq!(a, generate(20_000, 7));
        assert_ne!(a, generate(20_000, 8));
        // Everything generated passes ingest's validation.
        let mut csv = Vec::new();
        a.write_csv(&mut csv).unwrap();
        assert_eq!(Table::from_csv(&a.schema, csv.as_slice()).unwrap(), a);
        let fraud = a.columns[7].iter().sum::<i64>() as f64 / 20_000.0;
        assert!((0.008..0.03).contains(&fraud), "fraud rate {fraud}");
        // Fraud correlates with the online channel.
        let rate = |channel: i64| {
            let rows: Vec<usize> = (0..20_000)
                .filter(|&r| a.columns[6][r] == channel)
                .collect();
            rows.iter().map(|&r| a.columns[7][r]).sum::<i64>() as f64 / rows.len() as f64
        };
        assert!(rate(1) > 2.0 * rate(0));
        // Age bands agree with ages.
        assert!((0..20_000).all(|r| a.columns[1][r] == age_band(a.columns[0][r]) as i64));
    }
}
