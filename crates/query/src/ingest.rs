//! CSV ingest: every row is validated against the schema before anything is encrypted, and every
//! bad row is reported with its line number and reason.

use std::io::Read;

use crate::error::IngestError;
pub use crate::error::RowError;
use crate::schema::{ColumnKind, MAX_ROWS, Schema, parse_date};

/// Most bad rows listed in one error (the count of all of them is still given).
pub const MAX_REPORTED_ERRORS: usize = 50;

/// A validated plaintext table, column-major. Each cell is its column's encoded value: a
/// category's value index, an integer's scaled value (`amount` 12.34 at scale 2 → 1234), a day
/// number, or 0/1 for a bool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub schema: Schema,
    pub columns: Vec<Vec<i64>>,
}

impl Table {
    #[must_use]
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// Checks what [`Table::from_csv`] guarantees, for a table read back from elsewhere (the
    /// seller's own copy on disk): one column per schema column, all of one length, at most
    /// [`MAX_ROWS`] rows, and every cell inside its column's domain.
    ///
    /// # Errors
    /// [`IngestError::Shape`] naming the first column that breaks it.
    pub fn validate(&self) -> Result<(), IngestError> {
        let bad = |what: String| Err(IngestError::Shape(what));
        if self.columns.len() != self.schema.columns.len() {
            return bad(format!(
                "{} columns for a schema of {}",
                self.columns.len(),
                self.schema.columns.len()
            ));
        }
        let rows = self.rows();
        if rows > MAX_ROWS {
            return Err(IngestError::TooManyRows(MAX_ROWS));
        }
        for (column, cells) in self.schema.columns.iter().zip(&self.columns) {
            if cells.len() != rows {
                return bad(format!(
                    "column `{}` has {} rows, not {rows}",
                    column.name,
                    cells.len()
                ));
            }
            let inside = |v: i64| match &column.kind {
                ColumnKind::Category { values } => {
                    usize::try_from(v).is_ok_and(|v| v < values.len())
                }
                ColumnKind::Integer { min, max, .. } => (*min..=*max).contains(&v),
                ColumnKind::Bool => v == 0 || v == 1,
                ColumnKind::Day => true,
            };
            if !cells.iter().copied().all(inside) {
                return bad(format!(
                    "column `{}` has a value outside its domain",
                    column.name
                ));
            }
        }
        Ok(())
    }

    /// The smallest and largest day in the table, if it has a day column and rows.
    #[must_use]
    pub fn day_range(&self) -> Option<(i64, i64)> {
        let days = &self.columns[self.schema.day_column()?];
        Some((*days.iter().min()?, *days.iter().max()?))
    }

    /// Reads and validates a CSV whose header names exactly the schema's columns (any order).
    ///
    /// # Errors
    /// [`IngestError::Header`] for a missing/unknown/duplicate column, [`IngestError::Rows`] with
    /// every bad row (line and reason), [`IngestError::Csv`] for unreadable input,
    /// [`IngestError::TooManyRows`] past [`MAX_ROWS`], [`IngestError::Empty`] for no rows.
    pub fn from_csv(schema: &Schema, input: impl Read) -> Result<Self, IngestError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(input);
        let header = reader
            .headers()
            .map_err(|e| IngestError::Csv(e.to_string()))?
            .clone();
        let mut order = Vec::with_capacity(schema.columns.len());
        for column in &schema.columns {
            let mut found = header
                .iter()
                .enumerate()
                .filter(|(_, h)| h.trim() == column.name);
            let (index, _) = found.next().ok_or_else(|| {
                IngestError::Header(format!("column `{}` is missing", column.name))
            })?;
            if found.next().is_some() {
                return Err(IngestError::Header(format!(
                    "column `{}` appears twice",
                    column.name
                )));
            }
            order.push(index);
        }
        if let Some(extra) = header.iter().find(|h| schema.column(h.trim()).is_none()) {
            return Err(IngestError::Header(format!(
                "column `{extra}` is not in the schema (declare it or drop it from the file)"
            )));
        }
        let mut columns = vec![Vec::new(); schema.columns.len()];
        let mut errors = Vec::new();
        let mut bad = 0usize;
        for (n, record) in reader.records().enumerate() {
            let line = n as u64 + 2;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    bad += 1;
                    if errors.len() < MAX_REPORTED_ERRORS {
                        errors.push(RowError {
                            line,
                            reason: e.to_string(),
                        });
                    }
                    continue;
                }
            };
            if n >= MAX_ROWS {
                return Err(IngestError::TooManyRows(MAX_ROWS));
            }
            match parse_row(schema, &order, &record) {
                Ok(values) => {
                    for (column, v) in columns.iter_mut().zip(values) {
                        column.push(v);
                    }
                }
                Err(reason) => {
                    bad += 1;
                    if errors.len() < MAX_REPORTED_ERRORS {
                        errors.push(RowError { line, reason });
                    }
                }
            }
        }
        if bad > 0 {
            return Err(IngestError::Rows {
                count: bad,
                first: errors,
            });
        }
        if columns[0].is_empty() {
            return Err(IngestError::Empty);
        }
        Ok(Table {
            schema: schema.clone(),
            columns,
        })
    }

    /// Writes the table as CSV (header in schema order), decoding each cell as it was read.
    ///
    /// # Errors
    /// I/O errors of the writer.
    pub fn write_csv(&self, out: impl std::io::Write) -> Result<(), IngestError> {
        let mut w = csv::Writer::from_writer(out);
        let csv_err = |e: csv::Error| IngestError::Csv(e.to_string());
        w.write_record(self.schema.columns.iter().map(|c| c.name.as_str()))
            .map_err(csv_err)?;
        for row in 0..self.rows() {
            let cells = self
                .schema
                .columns
                .iter()
                .zip(&self.columns)
                .map(|(c, values)| format_cell(&c.kind, values[row]));
            w.write_record(cells).map_err(csv_err)?;
        }
        w.flush().map_err(|e| IngestError::Csv(e.to_string()))
    }
}

fn parse_row(
    schema: &Schema,
    order: &[usize],
    record: &csv::StringRecord,
) -> Result<Vec<i64>, String> {
    let mut values = Vec::with_capacity(order.len());
    for (column, &index) in schema.columns.iter().zip(order) {
        let raw = record
            .get(index)
            .ok_or_else(|| format!("`{}` is missing", column.name))?
            .trim();
        let value = parse_cell(&column.kind, raw).ok_or_else(|| {
            format!(
                "`{}` = {raw:?} is not a {}",
                column.name,
                column.kind.describe()
            )
        })?;
        values.push(value);
    }
    Ok(values)
}

/// Parses one cell; `None` when it does not fit the column.
#[must_use]
pub fn parse_cell(kind: &ColumnKind, raw: &str) -> Option<i64> {
    match kind {
        ColumnKind::Category { values } => values
            .iter()
            .position(|v| v == raw)
            .and_then(|i| i64::try_from(i).ok()),
        ColumnKind::Integer { min, max, scale } => {
            parse_decimal(raw, *scale).filter(|v| (*min..=*max).contains(v))
        }
        ColumnKind::Day => parse_date(raw),
        ColumnKind::Bool => match raw {
            "true" | "1" => Some(1),
            "false" | "0" => Some(0),
            _ => None,
        },
    }
}

/// A cell as text, the inverse of [`parse_cell`].
#[must_use]
pub fn format_cell(kind: &ColumnKind, value: i64) -> String {
    match kind {
        ColumnKind::Category { values } => usize::try_from(value)
            .ok()
            .and_then(|i| values.get(i))
            .cloned()
            .unwrap_or_default(),
        ColumnKind::Integer { scale, .. } => format_decimal(value, *scale),
        ColumnKind::Day => crate::schema::format_date(value),
        ColumnKind::Bool => (value != 0).to_string(),
    }
}

/// `"12.3"` at scale 2 → 1230; refuses more fraction digits than the scale, and overflow.
#[must_use]
pub fn parse_decimal(raw: &str, scale: u32) -> Option<i64> {
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > scale as usize
    {
        return None;
    }
    let mut value: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    for _ in 0..scale {
        value = value.checked_mul(10)?;
    }
    let mut frac: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..scale as usize {
        frac *= 10;
    }
    let value = value.checked_add(frac)?;
    Some(if negative { -value } else { value })
}

/// Formats a scaled integer as a decimal with `scale` fraction digits.
#[must_use]
pub fn format_decimal(value: i64, scale: u32) -> String {
    if scale == 0 {
        return value.to_string();
    }
    let unit = 10u64.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = scale as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_toml(
            r#"
name = "t"
[[column]]
name = "region"
type = "category"
values = ["APAC", "EMEA"]
[[column]]
name = "amount"
type = "integer"
min = 0
max = 100000
scale = 2
[[column]]
name = "day"
type = "day"
[[column]]
name = "flag"
type = "bool"
"#,
        )
        .unwrap()
    }

    #[test]
    fn reads_valid_rows_in_any_column_order() {
        let csv = "day,region,flag,amount\n2026-01-02,APAC,true,12.5\n2026-01-03,EMEA,0,7\n";
        let t = Table::from_csv(&schema(), csv.as_bytes()).unwrap();
        assert_eq!(t.rows(), 2);
        assert_eq!(t.columns[0], vec![0, 1]);
        assert_eq!(t.columns[1], vec![1250, 700]);
        assert_eq!(t.columns[3], vec![1, 0]);
        let mut out = Vec::new();
        t.write_csv(&mut out).unwrap();
        assert_eq!(Table::from_csv(&schema(), out.as_slice()).unwrap(), t);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = "region,amount,day,flag\nAPAC,1.5,2026-01-01,true\nMARS,1,2026-01-01,true\nAPAC,1.234,2026-01-01,true\nAPAC,1,2026-02-30,false\nAPAC,2000,2026-01-01,true\n";
        let Err(IngestError::Rows { count, first }) = Table::from_csv(&schema(), csv.as_bytes())
        else {
            panic!("bad rows must be refused")
        };
        assert_eq!(count, 4);
        assert_eq!(
            first.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![3, 4, 5, 6]
        );
        assert!(first[0].reason.contains("region") && first[0].reason.contains("MARS"));
        assert!(first[1].reason.contains("amount"));
        assert!(first[2].reason.contains("day"));
    }

    #[test]
    fn header_problems() {
        let missing = "region,amount,day\nAPAC,1,2026-01-01\n";
        assert!(
            matches!(Table::from_csv(&schema(), missing.as_bytes()), Err(IngestError::Header(m)) if m.contains("flag"))
        );
        let extra = "region,amount,day,flag,ssn\nAPAC,1,2026-01-01,true,1\n";
        assert!(
            matches!(Table::from_csv(&schema(), extra.as_bytes()), Err(IngestError::Header(m)) if m.contains("ssn"))
        );
        let empty = "region,amount,day,flag\n";
        assert!(matches!(
            Table::from_csv(&schema(), empty.as_bytes()),
            Err(IngestError::Empty)
        ));
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal("12.34", 2), Some(1234));
        assert_eq!(parse_decimal("-0.5", 2), Some(-50));
        assert_eq!(parse_decimal("7", 0), Some(7));
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_decimal("1e3", 2), None);
        assert_eq!(parse_decimal(".", 2), None);
        assert_eq!(format_decimal(-1205, 2), "-12.05");
    }
}
