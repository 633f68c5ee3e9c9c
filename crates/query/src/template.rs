//! Query templates and their parameters: versioned, canonically encoded and hashed (keccak256) as
//! the `QueryMarket` contract expects (`templateHash`, `paramsHash`).
//!
//! - `cohort_stats`: COUNT / SUM / AVG / VAR / STDDEV of an integer column per group.
//! - `histogram`: row counts per declared bucket of an integer column, optionally per group.
//! - `fraud_model`: fraud rate per cohort (Wilson intervals) and a naive-Bayes scoring model of
//!   categorical features, from counts of `feature = v` and `feature = v AND label`.
//! - `linear_regression`: OLS of one integer column on others, from the sufficient statistics
//!   `n`, `Σx`, `XᵀX`, `Xᵀy` and `Σy²`.
//!
//! Every template takes the same row filters ([`Filter`]). Queries arrive as SQL ([`crate::sql`])
//! or as JSON ([`Query::from_json`]); both are canonicalized before hashing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tiny_keccak::{Hasher, Keccak};

use crate::error::QueryError;
use crate::schema::{ColumnKind, Schema};

/// The templates a seller can enable, by their canonical names.
pub const TEMPLATES: [&str; 4] = [
    "cohort_stats",
    "histogram",
    "fraud_model",
    "linear_regression",
];
/// Version of the canonical encoding; part of every template hash.
pub const TEMPLATE_VERSION: u32 = 1;
/// Most GROUP BY columns in one `cohort_stats` query.
pub const MAX_GROUP_BY: usize = 2;
/// Most filters in one query.
pub const MAX_FILTERS: usize = 8;

/// keccak256 of `"datacloud/<name>/v<version>"`: the on-chain template id.
#[must_use]
pub fn template_hash(name: &str) -> [u8; 32] {
    keccak(format!("datacloud/{name}/v{TEMPLATE_VERSION}").as_bytes())
}

#[must_use]
pub fn keccak(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut k = Keccak::v256();
    k.update(bytes);
    k.finalize(&mut out);
    out
}

/// An aggregate of `cohort_stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Var,
    Stddev,
}

impl Aggregate {
    #[must_use]
    pub fn needs_sum(self) -> bool {
        !matches!(self, Aggregate::Count)
    }
    /// AVG needs Σx² too: its 95 % confidence interval comes from the sample variance.
    #[must_use]
    pub fn needs_squares(self) -> bool {
        matches!(self, Aggregate::Avg | Aggregate::Var | Aggregate::Stddev)
    }
}

/// A row filter. Integer bounds are in the column's scaled units (cents for `amount`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Filter {
    /// The column's value is one of `values` (category or bool columns).
    In { column: String, values: Vec<String> },
    /// The last `days` days of the dataset, counting its last day.
    LastDays { days: u32 },
    /// Days from `from` to `to` inclusive (`YYYY-MM-DD`).
    DayRange { from: String, to: String },
    /// `min <= column <= max` (either bound may be absent).
    Range {
        column: String,
        min: Option<i64>,
        max: Option<i64>,
    },
}

/// `cohort_stats` parameters: aggregates of one integer column (or COUNT alone) per group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortStats {
    /// The integer column aggregated; `None` when only COUNT is asked.
    #[serde(default)]
    pub measure: Option<String>,
    pub aggregates: BTreeSet<Aggregate>,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

/// Most GROUP BY columns of a `histogram`.
pub const MAX_HISTOGRAM_GROUP_BY: usize = 1;
/// Largest add-α smoothing pseudo-count of a `fraud_model`.
pub const MAX_ALPHA: u32 = 1000;
/// Largest query JSON accepted by [`Query::from_json`].
pub const MAX_QUERY_JSON_BYTES: usize = 16 * 1024;

/// `histogram` parameters: rows per bucket of an integer column's declared histogram (the
/// buckets are the schema's `[[histogram]]` edges), per value of the GROUP BY column if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    pub column: String,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

/// `fraud_model` parameters: the fraud rate of each `cohort` value (or overall) and a
/// naive-Bayes model of `label` on the categorical `features`, with add-`alpha` smoothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudModel {
    /// The bool label column (the schema's `[fraud] label`).
    pub label: String,
    /// The column whose values are the cohorts of the rate table; `None` gives one overall rate.
    #[serde(default)]
    pub cohort: Option<String>,
    /// Categorical features of the model, among the schema's `[fraud] features`.
    pub features: Vec<String>,
    /// Laplace (add-α) smoothing pseudo-count, 1 to [`MAX_ALPHA`].
    #[serde(default = "default_alpha")]
    pub alpha: u32,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

fn default_alpha() -> u32 {
    1
}

/// `linear_regression` parameters: OLS of `target` on `features` (with an intercept), all
/// among the schema's `[regression] columns`. Feature order is the coefficients' order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearRegression {
    pub target: String,
    pub features: Vec<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

/// A query: a template and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Query {
    CohortStats(CohortStats),
    Histogram(Histogram),
    FraudModel(FraudModel),
    LinearRegression(LinearRegression),
}

impl Query {
    #[must_use]
    pub fn template(&self) -> &'static str {
        match self {
            Query::CohortStats(_) => "cohort_stats",
            Query::Histogram(_) => "histogram",
            Query::FraudModel(_) => "fraud_model",
            Query::LinearRegression(_) => "linear_regression",
        }
    }

    /// The query's row filters.
    #[must_use]
    pub fn filters(&self) -> &[Filter] {
        match self {
            Query::CohortStats(q) => &q.filters,
            Query::Histogram(q) => &q.filters,
            Query::FraudModel(q) => &q.filters,
            Query::LinearRegression(q) => &q.filters,
        }
    }

    fn filters_mut(&mut self) -> &mut Vec<Filter> {
        match self {
            Query::CohortStats(q) => &mut q.filters,
            Query::Histogram(q) => &mut q.filters,
            Query::FraudModel(q) => &mut q.filters,
            Query::LinearRegression(q) => &mut q.filters,
        }
    }

    /// Reads a query from its JSON form (`{"template": "histogram", "column": "amount", …}`),
    /// the non-SQL way to ask any template. Call [`Query::validate`] next.
    ///
    /// # Errors
    /// [`QueryError::Unsupported`] for JSON over [`MAX_QUERY_JSON_BYTES`] or that is not a query,
    /// naming the templates and what serde could not read.
    pub fn from_json(text: &str) -> Result<Query, QueryError> {
        if text.len() > MAX_QUERY_JSON_BYTES {
            return Err(QueryError::Unsupported(format!(
                "query JSON is over {MAX_QUERY_JSON_BYTES} bytes"
            )));
        }
        serde_json::from_str(text).map_err(|e| {
            QueryError::Unsupported(format!(
                "query JSON: {e}; expected {{\"template\": one of {}, …parameters}}",
                TEMPLATES.join(", ")
            ))
        })
    }

    /// The canonical form: IN values sorted and deduplicated, filters sorted, fraud features
    /// sorted (a set). Two queries that mean the same thing have the same canonical form, hence
    /// the same params hash. Regression features keep their order: it is the output's order.
    #[must_use]
    pub fn canonical(&self) -> Query {
        let mut q = self.clone();
        let filters = q.filters_mut();
        for f in filters.iter_mut() {
            if let Filter::In { values, .. } = f {
                values.sort();
                values.dedup();
            }
        }
        filters.sort();
        filters.dedup();
        if let Query::FraudModel(m) = &mut q {
            m.features.sort();
            m.features.dedup();
        }
        q
    }

    /// The canonical JSON encoding hashed into `paramsHash`.
    ///
    /// # Panics
    /// Never: a query is plain strings, integers and enums.
    #[must_use]
    pub fn canonical_json(&self) -> String {
        // Plain data (strings, integers, enums) always serializes.
        serde_json::to_string(&self.canonical()).expect("query serializes")
    }

    /// keccak256 of [`Query::canonical_json`].
    #[must_use]
    pub fn params_hash(&self) -> [u8; 32] {
        keccak(self.canonical_json().as_bytes())
    }

    /// Checks the query against the dataset's schema and allowed templates.
    ///
    /// # Errors
    /// [`QueryError`] naming the unknown column, wrong column type, disallowed template or limit.
    #[allow(clippy::too_many_lines)] // one check per filter kind, in order
    pub fn validate(&self, schema: &Schema, allowed: &[String]) -> Result<(), QueryError> {
        if !allowed.iter().any(|t| t == self.template()) {
            return Err(QueryError::TemplateNotAllowed(
                self.template().into(),
                allowed.join(", "),
            ));
        }
        validate_filters(self.filters(), schema)?;
        match self {
            Query::CohortStats(q) => validate_cohort_stats(q, schema),
            Query::Histogram(q) => validate_histogram(q, schema),
            Query::FraudModel(q) => validate_fraud_model(q, schema),
            Query::LinearRegression(q) => validate_regression(q, schema),
        }
    }
}

fn validate_cohort_stats(q: &CohortStats, schema: &Schema) -> Result<(), QueryError> {
    if q.aggregates.is_empty() {
        return Err(QueryError::Unsupported("no aggregate asked".into()));
    }
    let needs_measure = q.aggregates.iter().any(|a| a.needs_sum());
    match (&q.measure, needs_measure) {
        (Some(m), _) => {
            let column = schema
                .column(m)
                .ok_or_else(|| QueryError::UnknownColumn(m.clone()))?;
            if !matches!(column.kind, ColumnKind::Integer { .. }) {
                return Err(bad(m, "SUM/AVG/VAR need an integer column"));
            }
        }
        (None, true) => {
            return Err(QueryError::Unsupported("SUM/AVG/VAR need a column".into()));
        }
        (None, false) => {}
    }
    if q.group_by.len() > MAX_GROUP_BY {
        return Err(QueryError::Unsupported(format!(
            "GROUP BY takes at most {MAX_GROUP_BY} columns"
        )));
    }
    for (i, g) in q.group_by.iter().enumerate() {
        let column = schema
            .column(g)
            .ok_or_else(|| QueryError::UnknownColumn(g.clone()))?;
        if column.kind.cardinality().is_none() {
            return Err(bad(g, "GROUP BY needs a category or bool column"));
        }
        if q.group_by[..i].contains(g) {
            return Err(bad(g, "grouped by twice"));
        }
    }
    Ok(())
}

fn validate_filters(filters: &[Filter], schema: &Schema) -> Result<(), QueryError> {
    if filters.len() > MAX_FILTERS {
        return Err(QueryError::Unsupported(format!(
            "at most {MAX_FILTERS} filters"
        )));
    }
    for f in filters {
        match f {
            Filter::In { column, values } => {
                let c = schema
                    .column(column)
                    .ok_or_else(|| QueryError::UnknownColumn(column.clone()))?;
                let known = category_values(&c.kind)
                    .ok_or_else(|| bad(column, "IN needs a category or bool column"))?;
                if values.is_empty() {
                    return Err(bad(column, "IN () is empty"));
                }
                if let Some(v) = values.iter().find(|v| !known.contains(v)) {
                    return Err(bad(
                        column,
                        &format!("{v:?} is not one of {}", known.join(", ")),
                    ));
                }
            }
            Filter::LastDays { days } => {
                schema.day_column().ok_or_else(|| {
                    QueryError::Unsupported("the dataset has no day column".into())
                })?;
                if *days == 0 {
                    return Err(QueryError::Unsupported(
                        "last 0 days selects nothing".into(),
                    ));
                }
            }
            Filter::DayRange { from, to } => {
                schema.day_column().ok_or_else(|| {
                    QueryError::Unsupported("the dataset has no day column".into())
                })?;
                let (Some(a), Some(b)) = (
                    crate::schema::parse_date(from),
                    crate::schema::parse_date(to),
                ) else {
                    return Err(QueryError::Unsupported(format!(
                        "day range {from} to {to}: dates are YYYY-MM-DD"
                    )));
                };
                if a > b {
                    return Err(QueryError::Unsupported(format!(
                        "day range {from} to {to} is empty"
                    )));
                }
            }
            Filter::Range { column, min, max } => {
                let c = schema
                    .column(column)
                    .ok_or_else(|| QueryError::UnknownColumn(column.clone()))?;
                if !matches!(c.kind, ColumnKind::Integer { .. }) {
                    return Err(bad(column, "a range filter needs an integer column"));
                }
                if min.is_none() && max.is_none()
                    || matches!((min, max), (Some(a), Some(b)) if a > b)
                {
                    return Err(bad(column, "the range is empty or unbounded"));
                }
            }
        }
    }
    Ok(())
}

fn column_of<'a>(schema: &'a Schema, name: &str) -> Result<&'a ColumnKind, QueryError> {
    schema
        .column(name)
        .map(|c| &c.kind)
        .ok_or_else(|| QueryError::UnknownColumn(name.into()))
}

fn validate_histogram(q: &Histogram, schema: &Schema) -> Result<(), QueryError> {
    column_of(schema, &q.column)?;
    if !schema.histograms.iter().any(|h| h.column == q.column) {
        let declared: Vec<&str> = schema
            .histograms
            .iter()
            .map(|h| h.column.as_str())
            .collect();
        return Err(bad(
            &q.column,
            &format!(
                "no histogram is declared for it (declared: {})",
                if declared.is_empty() {
                    "none".into()
                } else {
                    declared.join(", ")
                }
            ),
        ));
    }
    if q.group_by.len() > MAX_HISTOGRAM_GROUP_BY {
        return Err(QueryError::Unsupported(format!(
            "a histogram groups by at most {MAX_HISTOGRAM_GROUP_BY} column"
        )));
    }
    for g in &q.group_by {
        if column_of(schema, g)?.cardinality().is_none() {
            return Err(bad(g, "GROUP BY needs a category or bool column"));
        }
    }
    Ok(())
}

fn validate_fraud_model(q: &FraudModel, schema: &Schema) -> Result<(), QueryError> {
    let Some(fraud) = &schema.fraud else {
        return Err(QueryError::Unsupported(
            "the dataset declares no fraud label ([fraud] in its schema)".into(),
        ));
    };
    column_of(schema, &q.label)?;
    if q.label != fraud.label {
        return Err(bad(
            &q.label,
            &format!("not the dataset's fraud label; use `{}`", fraud.label),
        ));
    }
    let declared = || fraud.features.join(", ");
    if q.features.is_empty() {
        return Err(QueryError::Unsupported(format!(
            "a fraud model needs features, among: {}",
            declared()
        )));
    }
    for f in q.features.iter().chain(&q.cohort) {
        column_of(schema, f)?;
        if !fraud.features.contains(f) {
            return Err(bad(
                f,
                &format!(
                    "not a declared fraud feature (features and cohorts: {})",
                    declared()
                ),
            ));
        }
    }
    if !(1..=MAX_ALPHA).contains(&q.alpha) {
        return Err(QueryError::Unsupported(format!(
            "smoothing alpha {} is outside 1..={MAX_ALPHA}",
            q.alpha
        )));
    }
    Ok(())
}

fn validate_regression(q: &LinearRegression, schema: &Schema) -> Result<(), QueryError> {
    let Some(regression) = &schema.regression else {
        return Err(QueryError::Unsupported(
            "the dataset declares no regression columns ([regression] in its schema)".into(),
        ));
    };
    if q.features.is_empty() || q.features.len() >= regression.columns.len() {
        return Err(QueryError::Unsupported(format!(
            "a regression takes 1 to {} features besides its target",
            regression.columns.len() - 1
        )));
    }
    for (i, c) in std::iter::once(&q.target).chain(&q.features).enumerate() {
        column_of(schema, c)?;
        if !regression.columns.contains(c) {
            return Err(bad(
                c,
                &format!(
                    "not a declared regression column (declared: {})",
                    regression.columns.join(", ")
                ),
            ));
        }
        if q.features[..i.saturating_sub(1)].contains(c) || (i > 0 && *c == q.target) {
            return Err(bad(c, "used twice"));
        }
    }
    Ok(())
}

/// The values of a category column, or `["false", "true"]` for a bool column.
#[must_use]
pub fn category_values(kind: &ColumnKind) -> Option<Vec<String>> {
    match kind {
        ColumnKind::Category { values } => Some(values.clone()),
        ColumnKind::Bool => Some(vec!["false".into(), "true".into()]),
        _ => None,
    }
}

fn bad(column: &str, reason: &str) -> QueryError {
    QueryError::BadColumn {
        column: column.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn query(values: Vec<String>, flip: bool) -> Query {
        let mut filters = vec![
            Filter::In {
                column: "region".into(),
                values,
            },
            Filter::LastDays { days: 90 },
        ];
        if flip {
            filters.reverse();
        }
        Query::CohortStats(CohortStats {
            measure: Some("amount".into()),
            aggregates: [Aggregate::Avg, Aggregate::Count].into(),
            group_by: vec!["age_band".into()],
            filters,
        })
    }

    proptest! {
        #[test]
        fn params_hash_ignores_order_and_repeats(mut values in proptest::collection::vec("[A-Z]{1,4}", 1..6), flip: bool) {
            let a = query(values.clone(), false);
            values.reverse();
            values.push(values[0].clone());
            let b = query(values, flip);
            prop_assert_eq!(a.params_hash(), b.params_hash());
        }

        #[test]
        fn different_params_hash_differently(days in 1u32..1000, other in 1u32..1000) {
            prop_assume!(days != other);
            let mk = |d| Query::CohortStats(CohortStats { measure: None, aggregates: [Aggregate::Count].into(), group_by: vec![], filters: vec![Filter::LastDays { days: d }] });
            prop_assert_ne!(mk(days).params_hash(), mk(other).params_hash());
        }
    }

    #[test]
    fn template_hashes_are_distinct_and_versioned() {
        let hashes: BTreeSet<_> = TEMPLATES.iter().map(|t| template_hash(t)).collect();
        assert_eq!(hashes.len(), TEMPLATES.len());
        assert_eq!(
            template_hash("cohort_stats"),
            keccak(b"datacloud/cohort_stats/v1")
        );
    }

    #[test]
    fn command_line_parameters_read_like_sql() {
        let schema = crate::synth::schema();
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let same = |template: &str, pairs: &[(&str, &str)], sql_text: &str| {
            let from_params = Query::from_params(template, &p(pairs), &schema).unwrap();
            let from_sql = crate::sql::parse(sql_text, &schema).unwrap();
            assert_eq!(from_params.canonical(), from_sql.canonical(), "{sql_text}");
            assert_eq!(from_params.params_hash(), from_sql.params_hash());
        };
        same(
            "cohort_stats",
            &[
                ("measure", "amount"),
                ("aggregates", "count,avg"),
                ("group_by", "age_band"),
                ("where", "region = 'APAC' AND day >= max_day - 90"),
            ],
            "SELECT age_band, COUNT(*), AVG(amount) FROM transactions WHERE region = 'APAC' AND day >= max_day - 90 GROUP BY age_band",
        );
        same(
            "fraud_model",
            &[
                ("label", "is_fraud"),
                ("features", r#"["channel", "region"]"#),
                ("alpha", "2"),
            ],
            "SELECT FRAUD_MODEL(is_fraud, channel, region, 2) FROM transactions",
        );
        same(
            "cohort_stats",
            &[("aggregates", "count"), ("group_by", "region")],
            "SELECT region, COUNT(*) FROM transactions GROUP BY region",
        );
        same(
            "histogram",
            &[("column", "amount"), ("group_by", "region")],
            "SELECT region, HISTOGRAM(amount) FROM transactions GROUP BY region",
        );
        // Refusals say what is wrong.
        let err = |template: &str, pairs: &[(&str, &str)]| {
            Query::from_params(template, &p(pairs), &schema)
                .unwrap_err()
                .to_string()
        };
        assert!(err("nope", &[]).contains("cohort_stats"));
        assert!(err("histogram", &[("colum", "amount")]).contains("colum"));
        assert!(err("histogram", &[("column", "amount"), ("column", "day")]).contains("twice"));
        assert!(err("histogram", &[("column", "amount"), ("where", "amount >")]).contains("SQL"));
        let alpha = err(
            "fraud_model",
            &[
                ("label", "is_fraud"),
                ("features", "channel"),
                ("alpha", "x"),
            ],
        );
        assert!(alpha.contains("\"x\"") && alpha.contains("u32"), "{alpha}");
    }

    #[test]
    fn validation_names_the_problem() {
        let schema = crate::synth::schema();
        let allowed = vec!["cohort_stats".to_string()];
        let q = query(vec!["APAC".into()], false);
        q.validate(&schema, &allowed).unwrap();
        assert!(matches!(
            q.validate(&schema, &["fraud_model".into()]),
            Err(QueryError::TemplateNotAllowed(..))
        ));
        let mars = query(vec!["MARS".into()], false);
        assert!(
            matches!(mars.validate(&schema, &allowed), Err(QueryError::BadColumn { column, reason }) if column == "region" && reason.contains("MARS"))
        );
        let Query::CohortStats(mut by_amount) = q.clone() else {
            unreachable!()
        };
        by_amount.group_by = vec!["amount".into()];
        assert!(
            Query::CohortStats(by_amount)
                .validate(&schema, &allowed)
                .is_err()
        );
    }

    fn fraud(features: Vec<String>, values: Vec<String>, alpha: u32) -> Query {
        Query::FraudModel(FraudModel {
            label: "is_fraud".into(),
            cohort: Some("region".into()),
            features,
            alpha,
            filters: vec![
                Filter::In {
                    column: "channel".into(),
                    values,
                },
                Filter::LastDays { days: 30 },
            ],
        })
    }

    proptest! {
        #[test]
        fn fraud_model_hash_ignores_feature_and_value_order(
            mut features in proptest::collection::vec("[a-z]{1,6}", 1..5),
            mut values in proptest::collection::vec("[a-z]{1,6}", 1..4),
            alpha in 1u32..5,
        ) {
            let a = fraud(features.clone(), values.clone(), alpha);
            features.reverse();
            features.push(features[0].clone());
            values.reverse();
            let b = fraud(features.clone(), values.clone(), alpha);
            prop_assert_eq!(a.params_hash(), b.params_hash());
            // The canonical JSON is the hashed text, and reads back to the canonical query.
            prop_assert_eq!(Query::from_json(&b.canonical_json()).unwrap(), b.canonical());
            prop_assert_ne!(a.params_hash(), fraud(features, values, alpha + 1).params_hash());
        }

        #[test]
        fn templates_with_the_same_filters_hash_apart(days in 1u32..1000) {
            let filters = vec![Filter::LastDays { days }];
            let queries = [
                Query::CohortStats(CohortStats { measure: None, aggregates: [Aggregate::Count].into(), group_by: vec![], filters: filters.clone() }),
                Query::Histogram(Histogram { column: "amount".into(), group_by: vec![], filters: filters.clone() }),
                Query::LinearRegression(LinearRegression { target: "amount".into(), features: vec!["customer_age".into()], filters: filters.clone() }),
                Query::LinearRegression(LinearRegression { target: "customer_age".into(), features: vec!["amount".into()], filters }),
            ];
            let hashes: BTreeSet<_> = queries.iter().map(Query::params_hash).collect();
            prop_assert_eq!(hashes.len(), queries.len());
        }
    }

    #[test]
    fn json_queries_default_and_refuse_clearly() {
        let q = Query::from_json(
            r#"{"template": "fraud_model", "label": "is_fraud", "features": ["channel"]}"#,
        )
        .unwrap();
        let Query::FraudModel(m) = &q else {
            panic!("a fraud model")
        };
        assert_eq!((m.alpha, m.cohort.as_deref()), (1, None));
        let err = Query::from_json(r#"{"template": "median", "column": "amount"}"#).unwrap_err();
        assert!(err.to_string().contains("histogram"), "{err}");
        assert!(Query::from_json(&"x".repeat(MAX_QUERY_JSON_BYTES + 1)).is_err());
    }

    #[test]
    fn new_templates_validate_against_the_schema_declarations() {
        let schema = crate::synth::schema();
        let all: Vec<String> = TEMPLATES.iter().map(|t| (*t).to_string()).collect();
        let check = |q: &Query, needle: &str| {
            let err = q.validate(&schema, &all).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        };
        let hist = |column: &str, group_by: Vec<String>| {
            Query::Histogram(Histogram {
                column: column.into(),
                group_by,
                filters: vec![],
            })
        };
        hist("amount", vec!["region".into()])
            .validate(&schema, &all)
            .unwrap();
        check(&hist("customer_age", vec![]), "declared: amount");
        check(&hist("amount", vec!["customer_age".into()]), "category");
        check(
            &hist("amount", vec!["region".into(), "channel".into()]),
            "at most",
        );
        check(&hist("nope", vec![]), "nope");
        fraud(vec!["channel".into()], vec!["online".into()], 1)
            .validate(&schema, &all)
            .unwrap();
        check(&fraud(vec![], vec!["online".into()], 1), "needs features");
        check(
            &fraud(vec!["day".into()], vec!["online".into()], 1),
            "fraud feature",
        );
        check(
            &fraud(vec!["channel".into()], vec!["online".into()], 0),
            "alpha",
        );
        let Query::FraudModel(mut wrong_label) =
            fraud(vec!["channel".into()], vec!["online".into()], 1)
        else {
            unreachable!()
        };
        wrong_label.label = "channel".into();
        check(&Query::FraudModel(wrong_label), "is_fraud");
        let reg = |target: &str, features: &[&str]| {
            Query::LinearRegression(LinearRegression {
                target: target.into(),
                features: features.iter().map(|f| (*f).to_string()).collect(),
                filters: vec![],
            })
        };
        reg("amount", &["customer_age"])
            .validate(&schema, &all)
            .unwrap();
        check(&reg("amount", &[]), "1 to 1 features");
        check(&reg("amount", &["amount"]), "used twice");
        check(&reg("day", &["amount"]), "declared: amount, customer_age");
        check(
            &reg("amount", &["region"]),
            "not a declared regression column",
        );
        // A schema without the declarations refuses each template with what is missing.
        let mut bare = schema.clone();
        bare.histograms.clear();
        bare.fraud = None;
        bare.regression = None;
        for (q, needle) in [
            (hist("amount", vec![]), "none"),
            (
                fraud(vec!["channel".into()], vec!["online".into()], 1),
                "[fraud]",
            ),
            (reg("amount", &["customer_age"]), "[regression]"),
        ] {
            let err = q.validate(&bare, &all).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(matches!(
            hist("amount", vec![]).validate(&schema, &["cohort_stats".into()]),
            Err(QueryError::TemplateNotAllowed(..))
        ));
    }
}
