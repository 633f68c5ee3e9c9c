#![allow(clippy::cast_precision_loss)] // counts in the report are JSON numbers
//! The README's main command, end to end at a small size: the real binary runs the whole journey
//! (devchain executing the contracts' WASM, TFHE-rs default parameters, gateway, PDP, HPKE) and
//! its JSON report is checked against a plaintext computation of the same query and the privacy
//! budget its orders spent.

use std::process::Command;

use datacloud_query::{plan, reference, sql, synth};

#[test]
fn demo_settles_a_private_encrypted_journey() {
    let rows = 48;
    let out = Command::new(env!("CARGO_BIN_EXE_datacloud"))
        .args([
            "demo",
            "--rows",
            &rows.to_string(),
            "--seed",
            "5",
            "--days",
            "45",
            "--json",
        ])
        .env("DATACLOUD_LOG", "warn")
        .output()
        .expect("run datacloud demo");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["matches_plaintext"], true);
    assert_eq!(report["plan"], "cube");
    assert_eq!(report["proofs"][0]["health"], "Healthy");
    // Two orders settled: the seller is paid the price (0.05) and the worker the fee (0.01),
    // once per order.
    let payouts = report["payouts"].as_array().expect("payouts");
    assert_eq!(payouts[0]["wei"], "100000000000000000");
    assert_eq!(payouts[1]["wei"], "20000000000000000");
    // The second order is the fraud model, delivered as a table of the fraud_model template.
    assert_eq!(report["fraud_model"]["result"]["template"], "fraud_model");
    // The third order: a cheater's attested result overturned by two verifiers' re-execution,
    // the cheater's bond gone, and the order settled by one of the honest workers.
    let dispute = &report["dispute"];
    assert_eq!(dispute["outcome"], "overturned");
    let verifiers = dispute["verifiers"].as_array().expect("verifiers");
    assert_eq!(verifiers.len(), 2);
    assert_ne!(verifiers[0], verifiers[1]);
    assert!(!verifiers.contains(&dispute["cheater"]));
    assert!(verifiers.contains(&dispute["completed_by"]));
    assert_ne!(
        dispute["cheater_bond_before"],
        dispute["cheater_bond_after"]
    );
    assert_eq!(dispute["result"]["template"], "cohort_stats");
    // Differential privacy is on for every order: each spent ε 1 of the dataset's budget of 10
    // (1 went to the sample statistics), every buyer together, and the tables say their ε.
    let privacy = &report["privacy"];
    assert_eq!(privacy["total"], 10.0);
    assert_eq!(privacy["sample"], 1.0);
    assert_eq!(privacy["orders"], 3.0);
    assert_eq!(privacy["left"], 6.0);
    assert_eq!(report["result"]["epsilon"], 1.0);
    assert_eq!(report["fraud_model"]["result"]["epsilon"], 1.0);
    assert_eq!(dispute["result"]["epsilon"], 1.0);
    // The buyer's table: one row per age band, each released count the plaintext count plus
    // noise (a Laplace scale of 3 here: 3 released quantities at ε 1; 40 is past the 10⁻⁵
    // quantile), the decrypted aggregates themselves equal to it (`matches_plaintext`).
    let table = synth::generate_with_history(rows, 5, 45);
    let query =
        sql::parse(report["sql"].as_str().expect("sql"), &table.schema).expect("journey SQL");
    let header =
        datacloud_query::layout::header(&table, &datacloud_query::LayoutOptions::default());
    let expected = reference(&table, &plan(&query, &header).expect("plan").bound, &header);
    let result_rows = report["result"]["rows"].as_array().expect("rows");
    assert_eq!(result_rows.len(), 8);
    for (row, (count, _, _)) in result_rows.iter().zip(&expected.groups) {
        match row["cell"]["status"].as_str() {
            Some("released") => {
                let noisy = row["cell"]["count"].as_f64().expect("a count");
                assert!((noisy - *count as f64).abs() < 40.0, "{noisy} vs {count}");
            }
            Some("suppressed") => assert!(*count < 50, "only small cohorts are suppressed"),
            other => panic!("unexpected cell {other:?}"),
        }
    }
}
