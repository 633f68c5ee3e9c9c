//! Query templates and their parameters: versioned, canonically encoded and hashed (keccak256) as
//! the `QueryMarket` contract expects (`templateHash`, `paramsHash`).
//!
//! Only `cohort_stats` is evaluated today; `histogram`, `fraud_model` and `linear_regression` are
//! named so a seller can list them, and are refused at planning with a clear error.

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
    pub measure: Option<String>,
    pub aggregates: BTreeSet<Aggregate>,
    pub group_by: Vec<String>,
    pub filters: Vec<Filter>,
}

/// A query: a template and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Query {
    CohortStats(CohortStats),
}

impl Query {
    #[must_use]
    pub fn template(&self) -> &'static str {
        match self {
            Query::CohortStats(_) => "cohort_stats",
        }
    }

    /// The canonical form: IN values sorted and deduplicated, filters sorted. Two queries that
    /// mean the same thing have the same canonical form, hence the same params hash.
    #[must_use]
    pub fn canonical(&self) -> Query {
        match self {
            Query::CohortStats(q) => {
                let mut q = q.clone();
                for f in &mut q.filters {
                    if let Filter::In { values, .. } = f {
                        values.sort();
                        values.dedup();
                    }
                }
                q.filters.sort();
                q.filters.dedup();
                Query::CohortStats(q)
            }
        }
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
        let Query::CohortStats(q) = self;
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
        if q.filters.len() > MAX_FILTERS {
            return Err(QueryError::Unsupported(format!(
                "at most {MAX_FILTERS} filters"
            )));
        }
        for f in &q.filters {
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
        let Query::CohortStats(mut by_amount) = q.clone();
        by_amount.group_by = vec!["amount".into()];
        assert!(
            Query::CohortStats(by_amount)
                .validate(&schema, &allowed)
                .is_err()
        );
    }
}
