//! The dataset schema: what each column holds, how it is encoded, and what the seller
//! precomputes (the aggregate cube). Read from a TOML file the seller writes:
//!
//! ```toml
//! name = "transactions"
//!
//! [[column]]
//! name = "region"
//! type = "category"
//! values = ["APAC", "EMEA", "AMER", "LATAM"]
//!
//! [[column]]
//! name = "amount"
//! type = "integer"
//! min = 0
//! max = 2000000        # in units of 10^-scale: cents here
//! scale = 2
//!
//! [[column]]
//! name = "day"
//! type = "day"         # CSV holds YYYY-MM-DD
//!
//! [cube]
//! dimensions = ["age_band", "region"]
//! measures = ["amount"]
//! ```

use serde::{Deserialize, Serialize};

use crate::error::SchemaError;

/// Most values a category column may declare: indicators are one ciphertext per value.
pub const MAX_CATEGORY_VALUES: usize = 256;
/// Most columns a schema may declare.
pub const MAX_COLUMNS: usize = 64;
/// Widest integer range, in bits, an integer column may span (sums of squares must fit in 128).
pub const MAX_INTEGER_BITS: u32 = 40;
/// Most cells (product of dimension cardinalities) an aggregate cube may have, before days.
pub const MAX_CUBE_CELLS: usize = 4096;
/// Largest schema file accepted.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// A validated dataset schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    #[serde(rename = "column")]
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cube: Option<CubeSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(flatten)]
    pub kind: ColumnKind,
}

/// How a column's values are written in the CSV and encoded for encryption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnKind {
    /// One of the declared values; encrypted as one-hot indicator bits.
    Category { values: Vec<String> },
    /// A decimal with `scale` fraction digits, stored as the integer `value * 10^scale` in
    /// `[min, max]`; encrypted as the offset from `min` in the fewest 2-bit blocks that hold it.
    Integer {
        min: i64,
        max: i64,
        #[serde(default)]
        scale: u32,
    },
    /// A calendar date `YYYY-MM-DD`, stored as its day number since 1970-01-01.
    Day,
    /// `true`/`false` (also `1`/`0`); encrypted as one bit.
    Bool,
}

/// The encrypted aggregate cube the seller precomputes: for every combination of the dimension
/// columns' values and every day of the dataset, the COUNT, SUM and sum of squares of each measure
/// over the rows up to that day (prefix sums, so any day window is a difference of two cells).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CubeSpec {
    pub dimensions: Vec<String>,
    #[serde(default)]
    pub measures: Vec<String>,
}

impl Schema {
    /// Parses and validates a schema file's text.
    ///
    /// # Errors
    /// [`SchemaError`] naming the first problem: TOML syntax, duplicate or unknown columns,
    /// empty or oversized categories, bad integer ranges, a cube over non-category columns.
    pub fn from_toml(text: &str) -> Result<Self, SchemaError> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(SchemaError::TooLarge(text.len()));
        }
        let schema: Schema = toml::from_str(text).map_err(|e| SchemaError::Toml(e.to_string()))?;
        schema.validate()?;
        Ok(schema)
    }

    /// The schema as TOML text, as [`Schema::from_toml`] reads it.
    ///
    /// # Panics
    /// Never: a schema is plain strings, integers and arrays.
    #[must_use]
    pub fn to_toml(&self) -> String {
        // Serializing plain strings, integers and arrays cannot fail.
        toml::to_string(self).expect("schema serializes to TOML")
    }

    /// Checks every rule [`Schema::from_toml`] documents.
    ///
    /// # Errors
    /// See [`Schema::from_toml`].
    pub fn validate(&self) -> Result<(), SchemaError> {
        if !is_identifier(&self.name) {
            return Err(SchemaError::BadName(self.name.clone()));
        }
        if self.columns.is_empty() || self.columns.len() > MAX_COLUMNS {
            return Err(SchemaError::ColumnCount(self.columns.len()));
        }
        let mut days = 0;
        for (i, column) in self.columns.iter().enumerate() {
            if !is_identifier(&column.name) {
                return Err(SchemaError::BadName(column.name.clone()));
            }
            if self.columns[..i].iter().any(|c| c.name == column.name) {
                return Err(SchemaError::DuplicateColumn(column.name.clone()));
            }
            match &column.kind {
                ColumnKind::Category { values } => {
                    if values.is_empty() || values.len() > MAX_CATEGORY_VALUES {
                        return Err(SchemaError::CategoryCount {
                            column: column.name.clone(),
                            count: values.len(),
                        });
                    }
                    for (j, v) in values.iter().enumerate() {
                        if v.is_empty() || values[..j].contains(v) {
                            return Err(SchemaError::CategoryValue {
                                column: column.name.clone(),
                                value: v.clone(),
                            });
                        }
                    }
                }
                ColumnKind::Integer { min, max, scale } => {
                    if min > max
                        || *scale > 6
                        || bits_for(range_width(*min, *max)) > MAX_INTEGER_BITS
                    {
                        return Err(SchemaError::IntegerRange {
                            column: column.name.clone(),
                            min: *min,
                            max: *max,
                        });
                    }
                }
                ColumnKind::Day => days += 1,
                ColumnKind::Bool => {}
            }
        }
        if days > 1 {
            return Err(SchemaError::ManyDayColumns);
        }
        if let Some(cube) = &self.cube {
            self.validate_cube(cube)?;
        }
        Ok(())
    }

    fn validate_cube(&self, cube: &CubeSpec) -> Result<(), SchemaError> {
        if self.day_column().is_none() {
            return Err(SchemaError::Cube("a cube needs a day column".into()));
        }
        let mut cells = 1usize;
        for (i, d) in cube.dimensions.iter().enumerate() {
            if cube.dimensions[..i].contains(d) {
                return Err(SchemaError::Cube(format!("dimension `{d}` appears twice")));
            }
            let column = self
                .column(d)
                .ok_or_else(|| SchemaError::UnknownColumn(d.clone()))?;
            let cardinality = column.kind.cardinality().ok_or_else(|| {
                SchemaError::Cube(format!("dimension `{d}` is not a category or bool column"))
            })?;
            cells = cells.saturating_mul(cardinality);
        }
        if cells > MAX_CUBE_CELLS {
            return Err(SchemaError::Cube(format!(
                "{cells} cells per day is over the limit of {MAX_CUBE_CELLS}"
            )));
        }
        for m in &cube.measures {
            let column = self
                .column(m)
                .ok_or_else(|| SchemaError::UnknownColumn(m.clone()))?;
            if !matches!(column.kind, ColumnKind::Integer { .. }) {
                return Err(SchemaError::Cube(format!(
                    "measure `{m}` is not an integer column"
                )));
            }
        }
        Ok(())
    }

    #[must_use]
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    #[must_use]
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The (single) day column, if the schema has one.
    #[must_use]
    pub fn day_column(&self) -> Option<usize> {
        self.columns.iter().position(|c| c.kind == ColumnKind::Day)
    }
}

impl ColumnKind {
    /// Number of distinct values of a category or bool column.
    #[must_use]
    pub fn cardinality(&self) -> Option<usize> {
        match self {
            ColumnKind::Category { values } => Some(values.len()),
            ColumnKind::Bool => Some(2),
            _ => None,
        }
    }

    /// A short human description, for help and error text.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            ColumnKind::Category { values } => format!("category of {} values", values.len()),
            ColumnKind::Integer { min, max, scale } => {
                format!("integer in [{min}, {max}] (scale {scale})")
            }
            ColumnKind::Day => "day (YYYY-MM-DD)".into(),
            ColumnKind::Bool => "bool".into(),
        }
    }
}

/// Number of values in `[min, max]` minus one: the largest offset from `min`.
#[must_use]
pub fn range_width(min: i64, max: i64) -> u64 {
    max.abs_diff(min)
}

/// Bits needed to hold every integer in `0..=max`.
#[must_use]
pub fn bits_for(max: u64) -> u32 {
    (u64::BITS - max.leading_zeros()).max(1)
}

/// Radix blocks (2 message bits each, TFHE-rs' default parameters) needed for `bits`.
#[must_use]
pub fn blocks_for(bits: u32) -> usize {
    bits.div_ceil(crate::BLOCK_BITS) as usize
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Written out (Howard Hinnant's
/// `days_from_civil`, <http://howardhinnant.github.io/date_algorithms.html>) rather than pulling a
/// calendar crate for one function.
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
#[must_use]
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and positive by construction (1..=31, 1..=12).
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses `YYYY-MM-DD` into a day number, checking the date exists.
#[must_use]
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let n = days_from_civil(year, month, day);
    (civil_from_days(n) == (year, month, day)).then_some(n)
}

/// Formats a day number as `YYYY-MM-DD`.
#[must_use]
pub fn format_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = r#"
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
[cube]
dimensions = ["region", "flag"]
measures = ["amount"]
"#;

    #[test]
    fn parses_and_round_trips() {
        let s = Schema::from_toml(GOOD).unwrap();
        assert_eq!(s.columns.len(), 4);
        assert_eq!(s.day_column(), Some(2));
        assert_eq!(Schema::from_toml(&s.to_toml()).unwrap(), s);
    }

    #[test]
    fn bad_schemas_say_what_is_wrong() {
        let dup = GOOD.replace("name = \"flag\"", "name = \"region\"");
        assert!(
            matches!(Schema::from_toml(&dup), Err(SchemaError::DuplicateColumn(c)) if c == "region")
        );
        let range = GOOD.replace("max = 100000", "max = -1");
        assert!(matches!(
            Schema::from_toml(&range),
            Err(SchemaError::IntegerRange { .. })
        ));
        let cube = GOOD.replace(
            "dimensions = [\"region\", \"flag\"]",
            "dimensions = [\"amount\"]",
        );
        assert!(
            matches!(Schema::from_toml(&cube), Err(SchemaError::Cube(m)) if m.contains("amount"))
        );
        let unknown = GOOD.replace("measures = [\"amount\"]", "measures = [\"nope\"]");
        assert!(
            matches!(Schema::from_toml(&unknown), Err(SchemaError::UnknownColumn(c)) if c == "nope")
        );
        assert!(matches!(
            Schema::from_toml("name = ["),
            Err(SchemaError::Toml(_))
        ));
        let typo = GOOD.replace("type = \"bool\"", "type = \"boolean\"");
        assert!(matches!(
            Schema::from_toml(&typo),
            Err(SchemaError::Toml(_))
        ));
    }

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(
            parse_date("2024-02-29").map(format_date).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(parse_date("2024-13-01"), None);
    }

    proptest! {
        #[test]
        fn civil_round_trip(n in -100_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(n);
            prop_assert_eq!(days_from_civil(y, m, d), n);
        }
    }
}
