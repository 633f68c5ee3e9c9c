//! What the seller's check of a worker's result costs (`check::open_result`): before releasing
//! anything it recomputes the order's plan on its own plaintext rows. Printed for 100k and 1M
//! synthetic rows: writing and reading the rows file (plain and sealed), and the plaintext
//! computation of the journey query and of a numeric filter. The anchor, in the same run: the
//! time per row of the encrypted row scan of the numeric query (a 16-row chunk), extrapolated
//! to the dataset — what the worker spends on the order the check guards. Last, the
//! differencing check (`differencing::check`) of the journey query against 100 answered
//! queries (numeric thresholds a unit apart), whose rows it recomputes.
//!
//! `cargo bench -p datacloud-fhe-query --bench seller_check [-- --sizes 100000,1000000]`

use std::time::Instant;

use datacloud_fhe_query::{
    EvaluationKey, Passphrase, SellerKey, differencing, encrypt, evaluate, load_rows, save_rows,
};
use datacloud_query::{LayoutOptions, PlanKind, plan_with, reference, sql, synth};

const JOURNEY: &str = "SELECT age_band, AVG(amount) FROM transactions WHERE region = 'APAC' AND day > max_day - 90 GROUP BY age_band";
const NUMERIC: &str = "SELECT COUNT(*), SUM(amount) FROM transactions WHERE amount > 100";

#[allow(clippy::cast_precision_loss)] // sizes and times as floating point
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map_or(vec![100_000, 1_000_000], |s| {
            s.split(',').filter_map(|x| x.parse().ok()).collect()
        });
    let schema = synth::schema();
    let journey = sql::parse(JOURNEY, &schema).expect("journey SQL");
    let numeric = sql::parse(NUMERIC, &schema).expect("numeric SQL");

    // The anchor: one encrypted row scan of the numeric query, per row.
    let key = SellerKey::generate();
    let eval = EvaluationKey::from_compressed(&key.server_key());
    let small = synth::generate(16, 42);
    let options = LayoutOptions {
        chunk_rows: 16,
        cube: false,
        derived: false,
        totals: false,
    };
    let dataset = encrypt(&small, &key, &options, &|_| {});
    let scan = plan_with(&numeric, &dataset.header, PlanKind::RowScan).expect("row scan");
    let t = Instant::now();
    evaluate(&scan, &dataset, &eval, &|_| {}).expect("scan");
    let per_row = t.elapsed().as_secs_f64() / 16.0;
    println!(
        "# seller's plaintext check, {} threads; anchor: encrypted row scan (amount > 100) {per_row:.3} s/row",
        rayon::current_num_threads()
    );
    println!(
        "| rows | rows file MiB | save s | load s | load sealed s | check journey s | check numeric s | differencing vs 100 answered s | scan of all rows s | check / scan |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let dir = tempfile::tempdir().expect("temp dir");
    for &rows in &sizes {
        let table = synth::generate(rows, 42);
        let header = datacloud_query::layout::header(&table, &LayoutOptions::default());
        let plain = dir.path().join(format!("{rows}.rows"));
        let sealed = dir.path().join(format!("{rows}.sealed"));
        let passphrase = Passphrase::new("bench");
        let t = Instant::now();
        save_rows(&table, &plain, None).expect("save");
        let save_s = t.elapsed().as_secs_f64();
        save_rows(&table, &sealed, Some(&passphrase)).expect("save sealed");
        let t = Instant::now();
        let loaded = load_rows(&plain, None, &header).expect("load");
        let load_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        load_rows(&sealed, Some(&passphrase), &header).expect("load sealed");
        let sealed_s = t.elapsed().as_secs_f64();
        let mib = std::fs::metadata(&plain).map_or(0, |m| m.len()) as f64 / f64::from(1 << 20);
        let time = |q: &datacloud_query::Query| {
            let p = datacloud_query::plan(q, &header).expect("plan");
            let t = Instant::now();
            std::hint::black_box(reference(&loaded, &p.bound, &header));
            t.elapsed().as_secs_f64()
        };
        let (journey_s, numeric_s) = (time(&journey), time(&numeric));
        // 100 answered queries: COUNT(*) WHERE amount > t for t = 1.00, 2.00, … 100.00.
        let answered: Vec<_> = (1..=100)
            .map(|t| {
                let q = sql::parse(
                    &format!("SELECT COUNT(*) FROM transactions WHERE amount > {t}.00"),
                    &schema,
                )
                .expect("threshold SQL");
                datacloud_query::plan(&q, &header).expect("plan").bound
            })
            .collect();
        let asked = datacloud_query::plan(&journey, &header)
            .expect("plan")
            .bound;
        let t = Instant::now();
        let verdict = differencing::check(&loaded, &header, &answered, &asked, 10);
        let differencing_s = t.elapsed().as_secs_f64();
        std::hint::black_box(verdict.is_ok());
        let scan_all = per_row * rows as f64;
        println!(
            "| {rows} | {mib:.1} | {save_s:.2} | {load_s:.2} | {sealed_s:.2} | {journey_s:.3} | {numeric_s:.3} | {differencing_s:.2} | {scan_all:.0} | {:.1e} |",
            (load_s + numeric_s + differencing_s) / scan_all
        );
    }
}
