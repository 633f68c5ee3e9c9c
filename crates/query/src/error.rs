//! Typed errors, one enum per stage, each saying what to do next.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SchemaError {
    #[error("schema is {0} bytes; the limit is 64 KiB")]
    TooLarge(usize),
    #[error("schema TOML: {0}")]
    Toml(String),
    #[error("`{0}` is not a valid name (letters, digits and `_`, starting with a letter, ≤ 64)")]
    BadName(String),
    #[error("a schema needs 1 to 64 columns, this one has {0}")]
    ColumnCount(usize),
    #[error("column `{0}` is declared twice")]
    DuplicateColumn(String),
    #[error("no column `{0}` in the schema")]
    UnknownColumn(String),
    #[error("category column `{column}` declares {count} values; 1 to 256 are allowed")]
    CategoryCount { column: String, count: usize },
    #[error("category column `{column}`: value {value:?} is empty or repeated")]
    CategoryValue { column: String, value: String },
    #[error(
        "integer column `{column}`: range [{min}, {max}] is empty or wider than 2^40 (or scale > 6)"
    )]
    IntegerRange { column: String, min: i64, max: i64 },
    #[error("at most one day column is allowed")]
    ManyDayColumns,
    #[error("cube: {0}")]
    Cube(String),
    #[error("histogram: {0}")]
    Histogram(String),
    #[error("fraud: {0}")]
    Fraud(String),
    #[error("regression: {0}")]
    Regression(String),
}

/// One rejected CSV row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("CSV: {0}")]
    Csv(String),
    #[error("CSV header: {0}")]
    Header(String),
    #[error("{count} bad row(s); nothing was encrypted. First ones:\n{}", first.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rows { count: usize, first: Vec<RowError> },
    #[error("the CSV has no rows")]
    Empty,
    #[error("more than {0} rows")]
    TooManyRows(usize),
    #[error("not a table of its schema: {0}")]
    Shape(String),
}

/// A query that cannot be run as asked.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("SQL: {0}")]
    Sql(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("no column `{0}` in the dataset")]
    UnknownColumn(String),
    #[error("column `{column}`: {reason}")]
    BadColumn { column: String, reason: String },
    #[error("template `{0}` is not allowed on this dataset (allowed: {1})")]
    TemplateNotAllowed(String, String),
    #[error("the dataset was encrypted without {0}; this plan cannot run")]
    PlanUnavailable(String),
    #[error("this complement plan's query has no complement on this layout")]
    NoComplement,
}

/// A layout header that does not describe its own schema (a corrupt or hostile manifest).
#[derive(Debug, Error)]
#[error("the layout header does not match its schema: {0}")]
pub struct HeaderError(pub String);
