//! `histogram`, `fraud_model` and `linear_regression` on real ciphertexts (TFHE-rs default
//! parameters): every plan decrypts to exactly the plaintext computation of the same query, and
//! the released models agree with models computed directly from the rows.

// Test statistics: small counts are exact as floats; t, f, k read like the formulas.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::float_cmp,
    clippy::many_single_char_names
)]

use std::sync::OnceLock;

use datacloud_fhe_query::encrypt::{EncryptedChunk, EncryptedTotals};
use datacloud_fhe_query::result::Cell;
use datacloud_fhe_query::{
    EncryptedDataset, EncryptedResult, EvaluationKey, Model, Policy, ResultTable, SellerKey,
    combine, decrypt, encrypt, evaluate, evaluate_chunk, release,
};
use datacloud_query::{
    Aggregates, LayoutHeader, LayoutOptions, PlanKind, Query, Table, plan, plan_with, reference,
    sql, synth,
};

const ROWS: usize = 40;
const ALL: [&str; 4] = [
    "cohort_stats",
    "histogram",
    "fraud_model",
    "linear_regression",
];

struct Fixture {
    key: SellerKey,
    eval: EvaluationKey,
    table: Table,
    dataset: EncryptedDataset,
}

/// The demo's transactions, with every sixth row also marked fraudulent so 40 rows hold enough
/// fraud to fit on. One key and one encryption (chunks of 16, 16 and 8 rows, so `combine` runs)
/// for the whole file. Each template runs once per plan it can use: an indicator scan without
/// filters (sums of stored ciphertexts) and a row scan with a comparison (every term masked).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SellerKey::generate();
        let eval = EvaluationKey::from_bytes(&key.server_key_bytes().unwrap()).unwrap();
        let mut table = synth::generate_with_history(ROWS, 23, 60);
        let fraud = table.schema.column_index("is_fraud").unwrap();
        for (r, cell) in table.columns[fraud].iter_mut().enumerate() {
            if r % 6 == 0 {
                *cell = 1;
            }
        }
        let options = LayoutOptions {
            chunk_rows: 16,
            cube: false,
            derived: true,
            totals: true,
        };
        let dataset = encrypt(&table, &key, &options, &|_| {});
        Fixture {
            key,
            eval,
            table,
            dataset,
        }
    })
}

fn query(sql_text: &str) -> Query {
    let schema = synth::schema();
    let q = sql::parse(sql_text, &schema).unwrap();
    let allowed: Vec<String> = ALL.iter().map(|t| (*t).to_string()).collect();
    q.validate(&schema, &allowed).unwrap();
    q
}

/// Evaluates `q` with the plan `kind` on ciphertexts; returns (decrypted, plaintext reference).
fn run(q: &Query, kind: PlanKind) -> (Aggregates, Aggregates) {
    let f = fixture();
    let p = plan_with(q, &f.dataset.header, kind).unwrap();
    assert_eq!(p.kind, kind);
    let result = evaluate(&p, &f.dataset, &f.eval, &|_| {}).unwrap();
    // The result crosses a trust boundary (worker → seller): round-trip it through bytes.
    let result = EncryptedResult::from_bytes(&result.to_bytes().unwrap(), &p).unwrap();
    (
        decrypt(&result, &f.key),
        reference(&f.table, &p.bound, &f.dataset.header),
    )
}

/// A query without filters or groups: the planner reads the stored totals, and the totals and
/// an indicator scan of every row both decrypt to the plaintext computation.
fn unfiltered_plans_agree(q: &Query) -> Aggregates {
    let f = fixture();
    let p = plan(q, &f.dataset.header).unwrap();
    assert_eq!((p.kind, p.pbs), (PlanKind::Totals, 0));
    let (totals, plain) = run(q, PlanKind::Totals);
    assert_eq!(totals, plain);
    let (scan, _) = run(q, PlanKind::IndicatorScan);
    assert_eq!(scan, plain);
    totals
}

fn released(q: &Query, aggregates: &Aggregates, min_cohort: u64) -> ResultTable {
    let f = fixture();
    let p = plan(q, &f.dataset.header).unwrap();
    let table = release(
        aggregates,
        &p,
        &f.dataset.header,
        &Policy {
            min_cohort,
            ..Policy::default()
        },
        &mut rand::rng(),
    )
    .unwrap();
    // Renders as text, and round-trips as JSON (what the buyer receives).
    assert!(!table.render().is_empty());
    let json = serde_json::to_string(&table).unwrap();
    let again: ResultTable = serde_json::from_str(&json).unwrap();
    // serde_json's default float parsing may differ in the last bit: compare what is shown.
    assert_eq!(again.render(), table.render());
    table
}

fn column(name: &str) -> usize {
    synth::schema().column_index(name).unwrap()
}

#[test]
fn histogram_without_filters_is_a_sum_of_stored_bits() {
    let q = query("SELECT HISTOGRAM(amount) FROM transactions");
    let f = fixture();
    let p = plan(&q, &f.dataset.header).unwrap();
    assert_eq!((p.kind, p.pbs), (PlanKind::Totals, 0));
    assert!(
        plan_with(&q, &f.dataset.header, PlanKind::IndicatorScan)
            .unwrap()
            .explain(&f.dataset.header, 0.01, 2)
            .contains("no PBS per row")
    );
    let fhe = unfiltered_plans_agree(&q);
    // The buckets partition the rows, and agree with the amounts themselves.
    let amount = column("amount");
    let mut expected = [0u128; synth::AMOUNT_BUCKET_CENTS.len() + 1];
    for &a in &f.table.columns[amount] {
        expected[synth::AMOUNT_BUCKET_CENTS.partition_point(|&b| b <= a)] += 1;
    }
    assert_eq!(fhe.terms[0], expected);
    let table = released(&q, &fhe, 1);
    assert_eq!(table.rows.len(), expected.len());
    assert_eq!(table.rows[0].group, vec!["< 10.00".to_string()]);
    assert!(table.render().contains("amount bucket"));
}

#[test]
fn histogram_per_group_with_a_day_window_scans_rows() {
    let q = query(
        "SELECT is_fraud, HISTOGRAM(amount) FROM transactions WHERE day >= max_day - 30 GROUP BY is_fraud",
    );
    let f = fixture();
    assert_eq!(plan(&q, &f.dataset.header).unwrap().kind, PlanKind::RowScan);
    let (fhe, plain) = run(&q, PlanKind::RowScan);
    assert_eq!(fhe, plain);
    let selected: u128 = plain.terms.iter().flatten().sum();
    assert!(
        selected > 0 && selected < ROWS as u128,
        "the window selects some rows"
    );
    // The same histogram by indicator scan needs no window: refused with the window.
    assert!(plan_with(&q, &f.dataset.header, PlanKind::IndicatorScan).is_err());
    assert!(plan_with(&q, &f.dataset.header, PlanKind::Cube).is_err());
    // Small cells are suppressed, not zeroed.
    let table = released(&q, &fhe, 3);
    assert!(
        table
            .rows
            .iter()
            .any(|r| matches!(r.cell, Cell::Suppressed { .. }))
    );
}

#[test]
fn fraud_model_without_filters_matches_a_model_fitted_on_the_rows() {
    let q = query("SELECT FRAUD_MODEL(is_fraud, channel) FROM transactions GROUP BY region");
    let fhe = unfiltered_plans_agree(&q);
    let f = fixture();
    let table = released(&q, &fhe, 1);
    // Cohort rates: one row per region, Wilson intervals around the rate.
    let (region, label, channel) = (column("region"), column("is_fraud"), column("channel"));
    let t = &f.table.columns;
    for (v, row) in table.rows.iter().enumerate() {
        let rows: Vec<usize> = (0..ROWS).filter(|&r| t[region][r] == v as i64).collect();
        let frauds = rows.iter().filter(|&&r| t[label][r] == 1).count();
        match &row.cell {
            Cell::Released {
                count, sum, rate, ..
            } => {
                assert_eq!(*count, rows.len() as f64);
                assert_eq!(*sum, Some(frauds as f64));
                let rate = rate.as_ref().unwrap();
                assert!((rate.value - frauds as f64 / rows.len() as f64).abs() < 1e-12);
                let (lo, hi) = rate.ci95.unwrap();
                assert!(lo <= rate.value && rate.value <= hi);
            }
            // Minimum cohort 1: a region with no rows, no fraud or nothing but fraud.
            Cell::Suppressed { .. } => assert!(frauds == 0 || frauds == rows.len()),
        }
    }
    // Naive Bayes, computed here straight from the rows with add-1 smoothing.
    let Some(Model::NaiveBayes(model)) = &table.model else {
        panic!("a fraud model releases a naive-Bayes model")
    };
    let positives = (0..ROWS).filter(|&r| t[label][r] == 1).count() as f64;
    let negatives = ROWS as f64 - positives;
    let prior = ((positives + 1.0) / (negatives + 1.0)).ln();
    assert!((model.prior_log_odds.unwrap() - prior).abs() < 1e-9);
    let k = synth::CHANNELS.len() as f64;
    for (v, name) in synth::CHANNELS.iter().enumerate() {
        let with = |fraud: i64| {
            (0..ROWS)
                .filter(|&r| t[channel][r] == v as i64 && t[label][r] == fraud)
                .count() as f64
        };
        let expected =
            ((with(1) + 1.0) / (positives + k)).ln() - ((with(0) + 1.0) / (negatives + k)).ln();
        let w = model
            .weights
            .iter()
            .find(|w| w.feature == "channel" && w.value == *name)
            .unwrap();
        // A weight needs rows with and without the label (minimum cohort 1).
        if with(1) < 1.0 || with(0) < 1.0 {
            assert_eq!(w.log_odds, None, "{name}");
            continue;
        }
        assert!((w.log_odds.unwrap() - expected).abs() < 1e-9, "{name}");
        let score = model.score([("channel", *name)]).unwrap();
        assert!((score - prior - expected).abs() < 1e-9);
    }
    // Only the channel is a feature: region (the cohort) carries no weight.
    assert!(model.weights.iter().all(|w| w.feature == "channel"));
}

#[test]
fn fraud_model_with_a_day_window_masks_every_count() {
    let q = query(
        "SELECT FRAUD_MODEL(is_fraud, channel, 2) FROM transactions WHERE day >= max_day - 30 AND region IN ('APAC', 'EMEA', 'AMER')",
    );
    let f = fixture();
    let p = plan(&q, &f.dataset.header).unwrap();
    assert_eq!(p.kind, PlanKind::RowScan);
    assert!(p.explain(&f.dataset.header, 0.01, 2).contains("masked"));
    let (fhe, plain) = run(&q, PlanKind::RowScan);
    assert_eq!(fhe, plain);
    assert!(fhe.groups[0].0 > 0 && fhe.groups[0].0 < ROWS as u128);
    let table = released(&q, &fhe, 1);
    assert_eq!(table.rows.len(), 1, "one overall rate without a cohort");
    let Some(Model::NaiveBayes(model)) = table.model else {
        panic!("naive Bayes")
    };
    assert_eq!(model.alpha, 2);
    assert_eq!(model.weights.len(), synth::CHANNELS.len());
    assert_eq!(model.rows, Some(fhe.groups[0].0 as f64));
}

/// OLS of `y` on `xs` straight from the selected rows (normal equations, real units).
fn ols_from_rows(rows: &[usize], y: usize, xs: &[usize], scales: &[f64]) -> Vec<f64> {
    let t = &fixture().table.columns;
    let p = xs.len() + 1;
    let mut xtx = vec![vec![0.0; p]; p];
    let mut xty = vec![0.0; p];
    for &r in rows {
        let mut x = vec![1.0];
        x.extend(xs.iter().zip(scales).map(|(&c, s)| t[c][r] as f64 / s));
        for i in 0..p {
            xty[i] += x[i] * t[y][r] as f64 / 100.0;
            for j in 0..p {
                xtx[i][j] += x[i] * x[j];
            }
        }
    }
    let inv = datacloud_fhe_query::model::invert(&xtx).unwrap();
    (0..p)
        .map(|i| (0..p).map(|j| inv[i][j] * xty[j]).sum())
        .collect()
}

#[test]
fn linear_regression_without_filters_matches_ols_on_the_rows() {
    let q = query("SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions");
    let fhe = unfiltered_plans_agree(&q);
    let table = released(&q, &fhe, 1);
    let Some(Model::LinearRegression(fit)) = &table.model else {
        panic!("a regression releases a fit")
    };
    let all: Vec<usize> = (0..ROWS).collect();
    let beta = ols_from_rows(&all, column("amount"), &[column("customer_age")], &[1.0]);
    for (c, b) in fit.coefficients.iter().zip(&beta) {
        assert!(
            (c.estimate - b).abs() <= 1e-6 * b.abs().max(1.0),
            "{}: {} vs {b}",
            c.name,
            c.estimate
        );
        let se = c.std_error.unwrap();
        assert!(se > 0.0 && se.is_finite());
    }
    assert_eq!(fit.coefficients[1].name, "customer_age");
    assert!(fit.predict(&[40.0]).is_some());
}

#[test]
fn regression_row_scan_masks_values_squares_and_products() {
    // A numeric range needs encrypted comparisons: a row scan; every sum is masked per block.
    // Asked as JSON (the non-SQL way), customer_age on amount (in dollars).
    let q = Query::from_json(
        r#"{"template": "linear_regression", "target": "customer_age", "features": ["amount"],
            "filters": [{"kind": "range", "column": "customer_age", "min": 30}]}"#,
    )
    .unwrap();
    q.validate(&synth::schema(), &["linear_regression".into()])
        .unwrap();
    let f = fixture();
    let p = plan(&q, &f.dataset.header).unwrap();
    assert_eq!(p.kind, PlanKind::RowScan);
    // Two workers each evaluate a chunk (the first, 16 rows, and the last, 8 rows); the seller
    // combines their partial results. The middle chunk is left out to keep the test short.
    let partials: Vec<EncryptedResult> = [0, 2]
        .iter()
        .map(|&i| {
            let partial =
                evaluate_chunk(&p, &f.dataset.header, &f.dataset.chunks[i], &f.eval).unwrap();
            EncryptedResult::from_bytes(&partial.to_bytes().unwrap(), &p).unwrap()
        })
        .collect();
    let fhe = decrypt(&combine(&p, &partials, &f.eval), &f.key);
    let covered: Vec<usize> = (0..16).chain(32..ROWS).collect();
    let subset = Table {
        schema: f.table.schema.clone(),
        columns: f
            .table
            .columns
            .iter()
            .map(|c| covered.iter().map(|&r| c[r]).collect())
            .collect(),
    };
    assert_eq!(fhe, reference(&subset, &p.bound, &f.dataset.header));
    let t = &f.table.columns;
    let (age, amount) = (column("customer_age"), column("amount"));
    let rows: Vec<usize> = covered.into_iter().filter(|&r| t[age][r] >= 30).collect();
    assert_eq!(fhe.groups[0].0, rows.len() as u128);
    assert!(rows.len() > 2 && rows.len() < ROWS);
    let table = released(&q, &fhe, 1);
    let Some(Model::LinearRegression(fit)) = &table.model else {
        panic!("a regression releases a fit")
    };
    // The same OLS, computed here from the selected rows.
    let n = rows.len() as f64;
    let mx = rows
        .iter()
        .map(|&r| t[amount][r] as f64 / 100.0)
        .sum::<f64>()
        / n;
    let my = rows.iter().map(|&r| t[age][r] as f64).sum::<f64>() / n;
    let sxx: f64 = rows
        .iter()
        .map(|&r| (t[amount][r] as f64 / 100.0 - mx).powi(2))
        .sum();
    let sxy: f64 = rows
        .iter()
        .map(|&r| (t[amount][r] as f64 / 100.0 - mx) * (t[age][r] as f64 - my))
        .sum();
    let slope = sxy / sxx;
    assert!((fit.coefficients[1].estimate - slope).abs() < 1e-9 * slope.abs().max(1.0));
    assert!((fit.coefficients[0].estimate - (my - slope * mx)).abs() < 1e-6);
}

#[test]
fn templates_need_their_derived_columns() {
    let f = fixture();
    let plain = datacloud_query::layout::header(
        &f.table,
        &LayoutOptions {
            derived: false,
            ..LayoutOptions::default()
        },
    );
    for sql_text in [
        "SELECT HISTOGRAM(amount) FROM transactions",
        "SELECT FRAUD_MODEL(is_fraud) FROM transactions",
        "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions",
    ] {
        let err = plan(&query(sql_text), &plain).unwrap_err();
        assert!(err.to_string().contains("declare"), "{sql_text}: {err}");
    }
    // A chunk with derived columns does not fit a layout without them, and vice versa.
    let bytes = f.dataset.chunks[0].to_bytes().unwrap();
    assert!(EncryptedChunk::from_bytes(&bytes, &f.dataset.header).is_ok());
    assert!(EncryptedChunk::from_bytes(&bytes, &plain).is_err());
    // A manifest whose derived columns are not the schema's is refused, not trusted.
    let mut hostile = f.dataset.header.clone();
    hostile.derived.swap(0, 1);
    assert!(EncryptedChunk::from_bytes(&bytes, &hostile).is_err());
}

#[test]
fn totals_answer_only_unfiltered_queries_and_refuse_hostile_bytes() {
    let f = fixture();
    let header = &f.dataset.header;
    // COUNT, mean and spread of a column over all rows are totals too.
    let q = query("SELECT COUNT(*), AVG(amount), STDDEV(amount) FROM transactions");
    unfiltered_plans_agree(&q);
    // Any filter or group needs the rows.
    for sql_text in [
        "SELECT HISTOGRAM(amount) FROM transactions WHERE region = 'APAC'",
        "SELECT region, HISTOGRAM(amount) FROM transactions GROUP BY region",
        "SELECT FRAUD_MODEL(is_fraud, channel) FROM transactions WHERE amount >= 1000",
        "SELECT COUNT(*) FROM transactions WHERE day >= max_day - 7",
    ] {
        let q = query(sql_text);
        assert_ne!(
            plan(&q, header).unwrap().kind,
            PlanKind::Totals,
            "{sql_text}"
        );
        assert!(
            plan_with(&q, header, PlanKind::Totals).is_err(),
            "{sql_text}"
        );
    }
    // Without stored totals the planner scans.
    let without = LayoutHeader {
        totals: false,
        ..header.clone()
    };
    let q = query("SELECT HISTOGRAM(amount) FROM transactions");
    assert_eq!(plan(&q, &without).unwrap().kind, PlanKind::IndicatorScan);
    // Totals cross a trust boundary (the seller's package → a worker): their shape is checked.
    let totals = f.dataset.totals.as_ref().unwrap();
    let bytes = totals.to_bytes().unwrap();
    assert!(EncryptedTotals::from_bytes(&bytes, header).is_ok());
    assert!(EncryptedTotals::from_bytes(&bytes, &without).is_err());
    let mut short = totals.clone();
    short.terms.pop();
    assert!(EncryptedTotals::from_bytes(&short.to_bytes().unwrap(), header).is_err());
    let mut swapped = totals.clone();
    let last = swapped.terms.len() - 1;
    // The first term is a one-block count of an indicator; the last a wider integer sum.
    swapped.terms.swap(0, last);
    assert!(EncryptedTotals::from_bytes(&swapped.to_bytes().unwrap(), header).is_err());
    assert!(EncryptedTotals::from_bytes(&bytes[..bytes.len() / 2], header).is_err());
}

#[test]
fn derived_columns_cost_stored_bytes_per_row() {
    let f = fixture();
    let size = |derived: bool| {
        let options = LayoutOptions {
            chunk_rows: 16,
            cube: false,
            derived,
            totals: false,
        };
        let dataset = encrypt(&f.table, &f.key, &options, &|_| {});
        dataset
            .chunks
            .iter()
            .map(|c| c.to_bytes().unwrap().len())
            .sum::<usize>()
            / ROWS
    };
    let (before, after) = (size(false), size(true));
    // Printed for the record (`--nocapture`): the demo schema's bytes per row.
    eprintln!("bytes per row: {before} without derived columns, {after} with them");
    assert!(after > before);
}
