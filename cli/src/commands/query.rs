//! `datacloud query local` and `datacloud data synth`: the encrypted query engine without a chain.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use datacloud_agent_core::progress::rows_bar;
use datacloud_fhe_query::{EvaluationKey, Policy, SellerKey, decrypt, encrypt, evaluate, release};
use datacloud_query::plan::DEFAULT_PBS_SECONDS;
use datacloud_query::{LayoutOptions, Schema, Table, plan, plan_with, reference, sql, synth};

/// Synthetic data.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate Bank A-like card transactions (seeded, reproducible) and their schema.
    Synth(SynthArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of rows.
    #[arg(long, default_value_t = 1000)]
    pub rows: usize,
    /// Random seed: the same rows and seed always give the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of history the transactions span, ending today.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3660))]
    pub days: i64,
    /// Output CSV file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Where to write the schema (default: the output path with `.schema.toml`).
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

/// Queries on encrypted data.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Run a query end to end on this machine: keygen, encryption, planning, FHE evaluation,
    /// decryption and output policy.
    Local(LocalArgs),
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// The dataset as CSV.
    #[arg(long)]
    pub data: PathBuf,
    /// The dataset's schema (TOML).
    #[arg(long)]
    pub schema: PathBuf,
    /// The query, e.g. "SELECT age_band, AVG(amount) FROM transactions WHERE region = 'APAC' AND day > max_day - 90 GROUP BY age_band".
    #[arg(long)]
    pub sql: String,
    /// Print the plan (kind, PBS count, estimated time) and stop.
    #[arg(long)]
    pub explain: bool,
    /// Force a plan: totals, cube, indicator-scan or row-scan (default: the cheapest).
    #[arg(long)]
    pub plan: Option<String>,
    /// Minimum cohort size: smaller cells are suppressed.
    #[arg(long, default_value_t = 10)]
    pub min_cohort: u64,
    /// Add discrete Laplace noise for ε-differential privacy (this local query runs on your own
    /// data and is exact without it; orders on the market always carry their ε).
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// Also compute the query on the plaintext and check the decrypted result equals it.
    #[arg(long)]
    pub verify: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn synth_command(command: DataCommand) -> Result<()> {
    let DataCommand::Synth(args) = command;
    let table = synth::generate_with_history(args.rows, args.seed, args.days);
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    table.write_csv(std::io::BufWriter::new(file))?;
    let schema_path = args
        .schema
        .unwrap_or_else(|| args.output.with_extension("schema.toml"));
    std::fs::write(&schema_path, table.schema.to_toml())
        .with_context(|| format!("writing {}", schema_path.display()))?;
    println!(
        "wrote {} rows to {} and the schema to {}",
        table.rows(),
        args.output.display(),
        schema_path.display()
    );
    Ok(())
}

/// Reads the schema file and the CSV, validating every row (errors name the line) before
/// anything is encrypted.
pub fn load_table(data: &Path, schema: &Path) -> Result<Table> {
    let schema_text =
        std::fs::read_to_string(schema).with_context(|| format!("reading {}", schema.display()))?;
    let schema =
        Schema::from_toml(&schema_text).with_context(|| format!("schema {}", schema.display()))?;
    let file = std::fs::File::open(data).with_context(|| format!("opening {}", data.display()))?;
    Table::from_csv(&schema, std::io::BufReader::new(file))
        .with_context(|| format!("validating {}", data.display()))
}

#[allow(clippy::too_many_lines)] // the local journey, step by step
pub fn query_command(command: QueryCommand) -> Result<()> {
    let QueryCommand::Local(args) = command;
    let table = load_table(&args.data, &args.schema)?;
    let schema = table.schema.clone();
    let query = sql::parse(&args.sql, &schema)?;
    let enabled: Vec<String> = datacloud_query::template::TEMPLATES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    query.validate(&schema, &enabled)?;
    let options = LayoutOptions::default();
    let header = datacloud_query::layout::header(&table, &options);
    let chosen = match args.plan.as_deref() {
        None => plan(&query, &header)?,
        Some("totals") => plan_with(&query, &header, datacloud_query::PlanKind::Totals)?,
        Some("cube") => plan_with(&query, &header, datacloud_query::PlanKind::Cube)?,
        Some("indicator-scan") => {
            plan_with(&query, &header, datacloud_query::PlanKind::IndicatorScan)?
        }
        Some("row-scan") => plan_with(&query, &header, datacloud_query::PlanKind::RowScan)?,
        Some(other) => {
            bail!("unknown plan `{other}`: use totals, cube, indicator-scan or row-scan")
        }
    };
    let cores = rayon::current_num_threads();
    if args.explain {
        println!("{}", chosen.explain(&header, DEFAULT_PBS_SECONDS, cores));
        return Ok(());
    }
    let t = Instant::now();
    let key = SellerKey::generate();
    let eval = EvaluationKey::from_compressed(&key.server_key());
    let keygen = t.elapsed();
    let t = Instant::now();
    let progress = rows_bar(table.rows() as u64, "encrypting", true);
    let dataset = encrypt(
        &table,
        &key,
        &LayoutOptions {
            cube: chosen.kind == datacloud_query::PlanKind::Cube,
            ..options
        },
        &|n| progress.inc(n),
    );
    progress.finish_and_clear();
    let encryption = t.elapsed();
    let t = Instant::now();
    let progress = rows_bar(table.rows() as u64, "evaluating", true);
    let result = evaluate(&chosen, &dataset, &eval, &|n| progress.inc(n))?;
    progress.finish_and_clear();
    let evaluation = t.elapsed();
    let aggregates = decrypt(&result, &key);
    if args.verify {
        let plain = reference(&table, &chosen.bound, &dataset.header);
        if plain != aggregates {
            bail!("the decrypted result differs from the plaintext computation");
        }
    }
    let policy = Policy {
        min_cohort: args.min_cohort,
        epsilon: args.epsilon,
    };
    let table_out = release(
        &aggregates,
        &chosen,
        &dataset.header,
        &policy,
        &mut rand::rng(),
    )?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "plan": chosen.kind.name(),
                "result": table_out,
                "seconds": { "keygen": keygen.as_secs_f64(), "encryption": encryption.as_secs_f64(), "evaluation": evaluation.as_secs_f64() },
                "verified": args.verify,
            }))?
        );
    } else {
        println!("{}", table_out.render());
        println!();
        println!(
            "plan {} · keygen {:.1} s · encryption {:.1} s ({} rows) · evaluation {:.2} s{}",
            chosen.kind.name(),
            keygen.as_secs_f64(),
            encryption.as_secs_f64(),
            table.rows(),
            evaluation.as_secs_f64(),
            if args.verify {
                " · equals the plaintext computation"
            } else {
                ""
            }
        );
    }
    Ok(())
}
