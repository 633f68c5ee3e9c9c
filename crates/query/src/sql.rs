//! The SQL front end: a buyer's `SELECT` is parsed with `sqlparser` and mapped onto the
//! `cohort_stats` template, or refused with an error that says what is allowed.
//!
//! Accepted: `SELECT [g1, g2,] COUNT(*) | SUM(x) | AVG(x) | VAR(x) | STDDEV(x) … FROM <dataset>
//! [WHERE p AND p …] [GROUP BY g1[, g2]]`, where each `p` is `c = 'v'`, `c IN ('v', …)` on a
//! category/bool column; `day >= max_day - N` / `day > max_day - N` (the last days of the data);
//! `day >= 'YYYY-MM-DD'`, `day <= …`, `day BETWEEN … AND …`; or `x op n` / `x BETWEEN n AND m` on an
//! integer column (n in the column's units, e.g. dollars with cents).
//!
//! The other templates are asked as one template function, with the same WHERE conditions:
//! - `SELECT HISTOGRAM(x) FROM <dataset> [WHERE …] [GROUP BY g]` → `histogram` of the integer
//!   column `x` over the buckets its schema declares, per value of `g` if given;
//! - `SELECT FRAUD_MODEL(label[, f1, f2, …][, alpha]) FROM <dataset> [WHERE …] [GROUP BY c]` →
//!   `fraud_model`: fraud rate per value of `c` and a naive-Bayes model on `f1, f2, …` (default:
//!   every feature the schema declares), add-`alpha` smoothing (an integer, default 1);
//! - `SELECT LINEAR_REGRESSION(y, x1[, x2, …]) FROM <dataset> [WHERE …]` → `linear_regression`
//!   of `y` on `x1, x2, …` with an intercept.
//!
//! Every template can also be asked as JSON ([`crate::Query::from_json`]).

use std::collections::BTreeSet;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    ObjectNamePart, SelectItem, SetExpr, Statement, TableFactor, UnaryOperator, Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::error::QueryError;
use crate::ingest::parse_decimal;
use crate::schema::{ColumnKind, Schema};
use crate::template::{
    Aggregate, CohortStats, Filter, FraudModel, Histogram, LinearRegression, Query, TEMPLATES,
};

/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 4096;

const ALLOWED: &str = "SELECT [group columns,] COUNT(*), SUM(x), AVG(x), VAR(x), STDDEV(x) FROM <dataset> \
[WHERE conditions joined by AND: c = 'v', c IN (...), day >= max_day - N, day BETWEEN 'YYYY-MM-DD' AND '...', x > n, x BETWEEN n AND m] \
[GROUP BY up to 2 category columns]; or one template function: \
SELECT HISTOGRAM(x) … [GROUP BY g], SELECT FRAUD_MODEL(label[, features…][, alpha]) … [GROUP BY cohort], \
SELECT LINEAR_REGRESSION(y, x1[, x2…]) … with the same WHERE conditions";

fn unsupported(what: impl std::fmt::Display) -> QueryError {
    QueryError::Unsupported(format!("{what}; allowed: {ALLOWED}"))
}

/// Parses `sql` into a query on `schema`.
///
/// # Errors
/// [`QueryError::Sql`] for a syntax error, [`QueryError::Unsupported`] (with the allowed forms)
/// for SQL outside the templates, [`QueryError::UnknownColumn`] / [`QueryError::BadColumn`].
#[allow(clippy::too_many_lines)] // the clauses of a SELECT, in order
pub fn parse(sql: &str, schema: &Schema) -> Result<Query, QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::Sql(format!(
            "the query is over {MAX_SQL_BYTES} bytes"
        )));
    }
    let mut statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| QueryError::Sql(e.to_string()))?;
    if statements.len() != 1 {
        return Err(unsupported("exactly one SELECT statement"));
    }
    let Statement::Query(query) = statements.remove(0) else {
        return Err(unsupported("only SELECT is allowed"));
    };
    if query.with.is_some() || query.order_by.is_some() || query.limit_clause.is_some() {
        return Err(unsupported("WITH, ORDER BY and LIMIT are not supported"));
    }
    let SetExpr::Select(select) = *query.body else {
        return Err(unsupported("UNION and subqueries are not supported"));
    };
    if select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return Err(unsupported("exactly one table, without joins"));
    }
    if let TableFactor::Table { name, .. } = &select.from[0].relation {
        let table = name.0.iter().map(part).collect::<Vec<_>>().join(".");
        if table != schema.name {
            return Err(QueryError::Sql(format!(
                "unknown table `{table}`; this dataset is `{}`",
                schema.name
            )));
        }
    } else {
        return Err(unsupported("FROM must name the dataset"));
    }
    if select.having.is_some() || select.distinct.is_some() {
        return Err(unsupported("HAVING and DISTINCT are not supported"));
    }
    let group_by: Vec<String> = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
            exprs.iter().map(identifier).collect::<Result<_, _>>()?
        }
        GroupByExpr::Expressions(..) | GroupByExpr::All(_) => {
            return Err(unsupported("GROUP BY takes column names"));
        }
    };
    let mut filters = Vec::new();
    if let Some(selection) = &select.selection {
        let mut conjuncts = Vec::new();
        split_and(selection, &mut conjuncts);
        for c in conjuncts {
            filters.push(predicate(c, schema)?);
        }
    }
    merge_day_ranges(&mut filters);
    if let Some(query) = template_function(&select.projection, &group_by, &filters, schema)? {
        return Ok(query);
    }
    let mut measure: Option<String> = None;
    let mut aggregates = BTreeSet::new();
    for item in &select.projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            return Err(unsupported("`*` in SELECT"));
        };
        if let Expr::Function(f) = expr {
            let name = f
                .name
                .0
                .iter()
                .map(part)
                .collect::<Vec<_>>()
                .join(".")
                .to_ascii_lowercase();
            let aggregate = match name.as_str() {
                "count" => Aggregate::Count,
                "sum" => Aggregate::Sum,
                "avg" => Aggregate::Avg,
                "var" | "variance" | "var_samp" => Aggregate::Var,
                "stddev" | "stddev_samp" | "std" => Aggregate::Stddev,
                other => return Err(unsupported(format!("function {other}()"))),
            };
            let FunctionArguments::List(list) = &f.args else {
                return Err(unsupported(format!("{name} without arguments")));
            };
            if list.args.len() != 1 || list.duplicate_treatment.is_some() {
                return Err(unsupported(format!("{name}() takes one column")));
            }
            match &list.args[0] {
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard)
                    if aggregate == Aggregate::Count => {}
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                    let column = identifier(e)?;
                    if aggregate != Aggregate::Count {
                        if measure.as_ref().is_some_and(|m| *m != column) {
                            return Err(unsupported("aggregates of one column per query"));
                        }
                        measure = Some(column);
                    } else if schema.column(&column).is_none() {
                        return Err(QueryError::UnknownColumn(column));
                    }
                }
                _ => return Err(unsupported(format!("{name}() takes one column"))),
            }
            aggregates.insert(aggregate);
        } else {
            let column = identifier(expr)?;
            if !group_by.contains(&column) {
                return Err(QueryError::Sql(format!(
                    "`{column}` is selected but not in GROUP BY"
                )));
            }
        }
    }
    if aggregates.is_empty() {
        return Err(unsupported("at least one aggregate"));
    }
    if aggregates.iter().any(|a| a.needs_sum()) {
        aggregates.insert(Aggregate::Count);
    }
    Ok(Query::CohortStats(CohortStats {
        measure,
        aggregates,
        group_by,
        filters,
    }))
}

/// The template functions besides `cohort_stats`' aggregates.
const TEMPLATE_FUNCTIONS: [&str; 3] = ["histogram", "fraud_model", "linear_regression"];

/// A `SELECT` of one template function (and, optionally, its GROUP BY columns): the query it
/// asks, or `None` when the SELECT has no template function (a `cohort_stats` SELECT).
#[allow(clippy::too_many_lines)] // the projection, the arguments, then one arm per template
fn template_function(
    projection: &[SelectItem],
    group_by: &[String],
    filters: &[Filter],
    schema: &Schema,
) -> Result<Option<Query>, QueryError> {
    let mut call = None;
    for item in projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            continue;
        };
        let Expr::Function(f) = expr else { continue };
        let name = f
            .name
            .0
            .iter()
            .map(part)
            .collect::<Vec<_>>()
            .join(".")
            .to_ascii_lowercase();
        if TEMPLATE_FUNCTIONS.contains(&name.as_str()) {
            if call.is_some() {
                return Err(unsupported("one template function per query"));
            }
            call = Some((name, f));
        }
    }
    let Some((name, f)) = call else {
        return Ok(None);
    };
    for item in projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            return Err(unsupported("`*` in SELECT"));
        };
        match expr {
            Expr::Function(g) if std::ptr::eq(g, f) => {}
            Expr::Function(_) => {
                return Err(unsupported(format!(
                    "{}() cannot be combined with other aggregates",
                    name.to_ascii_uppercase()
                )));
            }
            other => {
                let column = identifier(other)?;
                if !group_by.contains(&column) {
                    return Err(QueryError::Sql(format!(
                        "`{column}` is selected but not in GROUP BY"
                    )));
                }
            }
        }
    }
    let FunctionArguments::List(list) = &f.args else {
        return Err(unsupported(format!("{name} without arguments")));
    };
    if list.duplicate_treatment.is_some() {
        return Err(unsupported(format!("DISTINCT in {name}()")));
    }
    let mut columns = Vec::new();
    let mut number = None;
    for arg in &list.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg else {
            return Err(unsupported(format!("{name}() takes column names")));
        };
        match (literal(e), number) {
            (Some(n), None) if name == "fraud_model" && !columns.is_empty() => {
                number = Some(n.parse::<u32>().map_err(|_| {
                    unsupported(format!("{n} as the smoothing alpha (a whole number)"))
                })?);
            }
            (Some(_), _) => {
                return Err(unsupported(format!(
                    "{name}() takes column names (FRAUD_MODEL may end with a whole-number alpha)"
                )));
            }
            (None, Some(_)) => {
                return Err(unsupported("the alpha of FRAUD_MODEL() comes last"));
            }
            (None, None) => {
                let column = identifier(e)?;
                if schema.column(&column).is_none() {
                    return Err(QueryError::UnknownColumn(column));
                }
                columns.push(column);
            }
        }
    }
    let filters = filters.to_vec();
    let query = match name.as_str() {
        "histogram" => {
            let [column] = <[String; 1]>::try_from(columns)
                .map_err(|_| unsupported("HISTOGRAM() takes one integer column"))?;
            Query::Histogram(Histogram {
                column,
                group_by: group_by.to_vec(),
                filters,
            })
        }
        "fraud_model" => {
            let mut columns = columns.into_iter();
            let label = columns
                .next()
                .ok_or_else(|| unsupported("FRAUD_MODEL() takes the label column first"))?;
            if group_by.len() > 1 {
                return Err(unsupported(
                    "FRAUD_MODEL() groups by at most one cohort column",
                ));
            }
            let mut features: Vec<String> = columns.collect();
            if features.is_empty() {
                features = schema
                    .fraud
                    .as_ref()
                    .map(|f| f.features.clone())
                    .unwrap_or_default();
            }
            Query::FraudModel(FraudModel {
                label,
                cohort: group_by.first().cloned(),
                features,
                alpha: number.unwrap_or(1),
                filters,
            })
        }
        _ => {
            if !group_by.is_empty() {
                return Err(unsupported("LINEAR_REGRESSION() takes no GROUP BY"));
            }
            let mut columns = columns.into_iter();
            let target = columns.next().ok_or_else(|| {
                unsupported("LINEAR_REGRESSION() takes the target column, then the features")
            })?;
            Query::LinearRegression(LinearRegression {
                target,
                features: columns.collect(),
                filters,
            })
        }
    };
    Ok(Some(query))
}

fn part(p: &ObjectNamePart) -> String {
    match p {
        ObjectNamePart::Identifier(i) => i.value.clone(),
        ObjectNamePart::Function(f) => f.name.value.clone(),
    }
}

fn split_and<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

fn identifier(expr: &Expr) -> Result<String, QueryError> {
    match expr {
        Expr::Identifier(i) => Ok(i.value.clone()),
        Expr::CompoundIdentifier(parts) if !parts.is_empty() => {
            Ok(parts[parts.len() - 1].value.clone())
        }
        other => Err(unsupported(format!(
            "`{other}` where a column name was expected"
        ))),
    }
}

fn literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => literal(expr).map(|s| format!("-{s}")),
        _ => None,
    }
}

/// `max_day - N` → N.
fn max_day_minus(expr: &Expr) -> Option<u32> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if matches!(&**left, Expr::Identifier(i) if i.value.eq_ignore_ascii_case("max_day")) => {
            literal(right)?.parse().ok()
        }
        Expr::Identifier(i) if i.value.eq_ignore_ascii_case("max_day") => Some(0),
        _ => None,
    }
}

#[allow(clippy::too_many_lines)] // one arm per predicate form and column type
fn predicate(expr: &Expr, schema: &Schema) -> Result<Filter, QueryError> {
    let column_of = |e: &Expr| -> Result<(String, ColumnKind), QueryError> {
        let name = identifier(e)?;
        let column = schema
            .column(&name)
            .ok_or_else(|| QueryError::UnknownColumn(name.clone()))?;
        Ok((name, column.kind.clone()))
    };
    let bad = |column: &str, reason: String| QueryError::BadColumn {
        column: column.into(),
        reason,
    };
    match expr {
        Expr::InList {
            expr,
            list,
            negated: false,
        } => {
            let (column, kind) = column_of(expr)?;
            if kind.cardinality().is_none() {
                return Err(bad(&column, "IN needs a category or bool column".into()));
            }
            let values = list
                .iter()
                .map(|v| {
                    literal(v).ok_or_else(|| unsupported(format!("`{v}` in IN (only literals)")))
                })
                .collect::<Result<_, _>>()?;
            Ok(Filter::In { column, values })
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => {
            let (column, kind) = column_of(expr)?;
            let (lo, hi) = (literal(low), literal(high));
            match kind {
                ColumnKind::Day => Ok(Filter::DayRange {
                    from: lo.ok_or_else(|| unsupported("BETWEEN takes literal dates"))?,
                    to: hi.ok_or_else(|| unsupported("BETWEEN takes literal dates"))?,
                }),
                ColumnKind::Integer { scale, .. } => {
                    let parse = |s: Option<String>| {
                        s.and_then(|s| parse_decimal(&s, scale)).ok_or_else(|| {
                            bad(
                                &column,
                                format!("bounds must be numbers with at most {scale} decimals"),
                            )
                        })
                    };
                    Ok(Filter::Range {
                        column: column.clone(),
                        min: Some(parse(lo)?),
                        max: Some(parse(hi)?),
                    })
                }
                _ => Err(bad(&column, "BETWEEN needs a day or integer column".into())),
            }
        }
        Expr::BinaryOp { left, op, right } => {
            let (column, kind) = column_of(left)?;
            match kind {
                ColumnKind::Category { .. } | ColumnKind::Bool if *op == BinaryOperator::Eq => {
                    let value = literal(right).ok_or_else(|| {
                        unsupported(format!("`{right}` (compare with a literal)"))
                    })?;
                    Ok(Filter::In {
                        column,
                        values: vec![value],
                    })
                }
                ColumnKind::Day => {
                    if let Some(n) = max_day_minus(right) {
                        return match op {
                            BinaryOperator::GtEq => Ok(Filter::LastDays { days: n + 1 }),
                            BinaryOperator::Gt if n > 0 => Ok(Filter::LastDays { days: n }),
                            _ => Err(unsupported(
                                "day compared with max_day: use `day >= max_day - N` or `day > max_day - N`",
                            )),
                        };
                    }
                    let date = literal(right).ok_or_else(|| {
                        unsupported(format!("`{right}` (a 'YYYY-MM-DD' date or max_day - N)"))
                    })?;
                    let day = crate::schema::parse_date(&date).ok_or_else(|| {
                        bad(&column, format!("{date:?} is not a YYYY-MM-DD date"))
                    })?;
                    let (from, to) = match op {
                        BinaryOperator::GtEq => (day, i64::MAX),
                        BinaryOperator::Gt => (day + 1, i64::MAX),
                        BinaryOperator::LtEq => (i64::MIN, day),
                        BinaryOperator::Lt => (i64::MIN, day - 1),
                        BinaryOperator::Eq => (day, day),
                        _ => return Err(unsupported(format!("day {op} …"))),
                    };
                    let clamp = |d: i64| {
                        crate::schema::format_date(d.clamp(
                            crate::schema::days_from_civil(1, 1, 1),
                            crate::schema::days_from_civil(9999, 12, 31),
                        ))
                    };
                    Ok(Filter::DayRange {
                        from: clamp(from),
                        to: clamp(to),
                    })
                }
                ColumnKind::Integer { scale, .. } => {
                    let text = literal(right)
                        .ok_or_else(|| unsupported(format!("`{right}` (compare with a number)")))?;
                    let v = parse_decimal(&text, scale).ok_or_else(|| {
                        bad(
                            &column,
                            format!("{text} is not a number with at most {scale} decimals"),
                        )
                    })?;
                    let (min, max) = match op {
                        BinaryOperator::Gt => (v.checked_add(1), None),
                        BinaryOperator::GtEq => (Some(v), None),
                        BinaryOperator::Lt => (None, v.checked_sub(1)),
                        BinaryOperator::LtEq => (None, Some(v)),
                        BinaryOperator::Eq => (Some(v), Some(v)),
                        _ => return Err(unsupported(format!("{column} {op} …"))),
                    };
                    Ok(Filter::Range { column, min, max })
                }
                _ => Err(unsupported(format!("`{expr}`"))),
            }
        }
        other => Err(unsupported(format!("the condition `{other}`"))),
    }
}

/// `day >= a AND day <= b` arrive as two ranges; intersect them into one.
fn merge_day_ranges(filters: &mut Vec<Filter>) {
    let mut range: Option<(String, String)> = None;
    filters.retain(|f| {
        if let Filter::DayRange { from, to } = f {
            range = Some(match range.take() {
                None => (from.clone(), to.clone()),
                // ISO dates compare correctly as strings.
                Some((a, b)) => (a.max(from.clone()), b.min(to.clone())),
            });
            false
        } else {
            true
        }
    });
    if let Some((from, to)) = range {
        filters.push(Filter::DayRange { from, to });
    }
}

/// The command-line form of a query lives here, beside the SQL it reads its `where` with.
impl Query {
    /// Reads a query from a template name and `key=value` parameters, the command-line form
    /// (`--template cohort_stats --param measure=amount --param aggregates=count,avg`). A value
    /// is JSON when it parses as JSON, else a string; the list parameters (`group_by`,
    /// `features`, `aggregates`) also take comma-separated names; `where` takes a SQL condition
    /// (`region = 'APAC' AND day >= max_day - 90`), read with the schema like a query's WHERE.
    ///
    /// # Errors
    /// [`QueryError::Unsupported`] for an unknown template, a repeated or malformed parameter,
    /// or parameters that are not the template's (serde names the field).
    pub fn from_params(
        template: &str,
        params: &[(String, String)],
        schema: &crate::schema::Schema,
    ) -> Result<Query, QueryError> {
        const LISTS: [&str; 3] = ["group_by", "features", "aggregates"];
        if !TEMPLATES.contains(&template) {
            return Err(QueryError::Unsupported(format!(
                "unknown template `{template}`; one of {}",
                TEMPLATES.join(", ")
            )));
        }
        let mut object = serde_json::Map::new();
        object.insert("template".into(), template.into());
        for (key, value) in params {
            let json = if key == "where" {
                let sql = format!("SELECT COUNT(*) FROM {} WHERE {value}", schema.name);
                let filters = parse(&sql, schema)?.filters().to_vec();
                (
                    "filters".to_owned(),
                    serde_json::to_value(filters).unwrap_or_default(),
                )
            } else {
                let parsed = serde_json::from_str::<serde_json::Value>(value).ok();
                let v = match parsed {
                    Some(v) if !(v.is_string() && LISTS.contains(&key.as_str())) => v,
                    _ if LISTS.contains(&key.as_str()) => value
                        .split(',')
                        .map(|x| serde_json::Value::from(x.trim()))
                        .collect(),
                    _ => value.as_str().into(),
                };
                (key.clone(), v)
            };
            if object.insert(json.0.clone(), json.1).is_some() {
                return Err(QueryError::Unsupported(format!(
                    "parameter `{}` given twice (`where` sets `filters`)",
                    json.0
                )));
            }
        }
        let text = serde_json::Value::Object(object).to_string();
        Query::from_json(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        crate::synth::schema()
    }

    #[test]
    fn journey_sql_maps_onto_cohort_stats() {
        let q = parse("SELECT age_band, AVG(amount) FROM transactions WHERE region = 'APAC' AND day >= max_day - 90 GROUP BY age_band", &schema()).unwrap();
        let Query::CohortStats(q) = q else {
            unreachable!()
        };
        assert_eq!(q.measure.as_deref(), Some("amount"));
        assert_eq!(q.aggregates, [Aggregate::Count, Aggregate::Avg].into());
        assert_eq!(q.group_by, vec!["age_band"]);
        assert!(q.filters.contains(&Filter::In {
            column: "region".into(),
            values: vec!["APAC".into()]
        }));
        assert!(q.filters.contains(&Filter::LastDays { days: 91 }));
    }

    #[test]
    fn numeric_and_date_filters() {
        let Query::CohortStats(q) = parse("SELECT COUNT(*), SUM(amount) FROM transactions WHERE amount > 100 AND day >= '2026-01-01' AND day <= '2026-03-31'", &schema()).unwrap() else {
            unreachable!()
        };
        assert!(q.filters.contains(&Filter::Range {
            column: "amount".into(),
            min: Some(10_001),
            max: None
        }));
        assert!(q.filters.contains(&Filter::DayRange {
            from: "2026-01-01".into(),
            to: "2026-03-31".into()
        }));
    }

    #[test]
    fn template_functions_map_onto_their_templates() {
        let s = schema();
        let q = parse("SELECT region, HISTOGRAM(amount) FROM transactions WHERE channel = 'online' GROUP BY region", &s).unwrap();
        assert_eq!(
            q,
            Query::Histogram(Histogram {
                column: "amount".into(),
                group_by: vec!["region".into()],
                filters: vec![Filter::In {
                    column: "channel".into(),
                    values: vec!["online".into()]
                }],
            })
        );
        let Query::FraudModel(m) = parse(
            "SELECT FRAUD_MODEL(is_fraud) FROM transactions WHERE day >= max_day - 29 GROUP BY region",
            &s,
        )
        .unwrap() else {
            panic!("a fraud model")
        };
        assert_eq!(m.cohort.as_deref(), Some("region"));
        assert_eq!(
            m.features,
            s.fraud.as_ref().unwrap().features,
            "all declared features"
        );
        assert_eq!(m.alpha, 1);
        assert_eq!(m.filters, vec![Filter::LastDays { days: 30 }]);
        let Query::FraudModel(m) = parse(
            "SELECT FRAUD_MODEL(is_fraud, channel, 3) FROM transactions",
            &s,
        )
        .unwrap() else {
            panic!("a fraud model")
        };
        assert_eq!(
            (m.features, m.alpha, m.cohort),
            (vec!["channel".into()], 3, None)
        );
        let Query::LinearRegression(r) = parse(
            "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions WHERE amount BETWEEN 1 AND 500",
            &s,
        )
        .unwrap() else {
            panic!("a regression")
        };
        assert_eq!(
            (r.target.as_str(), r.features.as_slice()),
            ("amount", ["customer_age".to_string()].as_slice())
        );
        assert_eq!(r.filters.len(), 1);
    }

    #[test]
    fn template_function_refusals_say_what_is_allowed() {
        let s = schema();
        for (sql, needle) in [
            (
                "SELECT HISTOGRAM(amount), COUNT(*) FROM transactions",
                "cannot be combined",
            ),
            (
                "SELECT HISTOGRAM(amount, day) FROM transactions",
                "one integer column",
            ),
            ("SELECT HISTOGRAM(nope) FROM transactions", "nope"),
            (
                "SELECT FRAUD_MODEL(is_fraud, 1.5) FROM transactions",
                "whole number",
            ),
            (
                "SELECT FRAUD_MODEL(is_fraud, 2, channel) FROM transactions",
                "comes last",
            ),
            (
                "SELECT FRAUD_MODEL(is_fraud) FROM transactions GROUP BY region, channel",
                "at most one",
            ),
            (
                "SELECT LINEAR_REGRESSION(amount, customer_age) FROM transactions GROUP BY region",
                "no GROUP BY",
            ),
            ("SELECT LINEAR_REGRESSION() FROM transactions", "target"),
            (
                "SELECT channel, HISTOGRAM(amount) FROM transactions",
                "GROUP BY",
            ),
            (
                "SELECT HISTOGRAM(amount), FRAUD_MODEL(is_fraud) FROM transactions",
                "one template function",
            ),
        ] {
            let Err(e) = parse(sql, &s) else {
                panic!("{sql} must be refused")
            };
            assert!(e.to_string().contains(needle), "{sql}: {e}");
        }
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        let s = schema();
        for (sql, needle) in [
            ("SELECT * FROM transactions", "allowed"),
            ("SELECT customer_age FROM transactions", "GROUP BY"),
            ("SELECT AVG(amount) FROM other", "unknown table"),
            ("SELECT MEDIAN(amount) FROM transactions", "median"),
            (
                "SELECT AVG(amount) FROM transactions WHERE region = 'APAC' OR region = 'EMEA'",
                "allowed",
            ),
            ("SELECT AVG(nope) FROM transactions", ""),
            ("DELETE FROM transactions", "allowed"),
            ("SELEC", "SQL"),
            (
                "SELECT AVG(amount) FROM transactions t JOIN x ON 1 = 1",
                "joins",
            ),
        ] {
            let err =
                parse(sql, &s).and_then(|q| q.validate(&s, &["cohort_stats".into()]).map(|()| q));
            let Err(e) = err else {
                panic!("{sql} must be refused")
            };
            assert!(e.to_string().contains(needle), "{sql}: {e}");
        }
    }
}
