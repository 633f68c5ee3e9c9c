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
//!
//! # Optional: what the `histogram`, `fraud_model` and `linear_regression` templates need
//! # precomputed per row (each section is opt-in; a schema without them stays valid).
//! [[histogram]]
//! column = "amount"
//! bounds = [1000, 5000, 20000]   # bucket edges in the column's units (cents): 4 buckets
//!
//! [fraud]
//! label = "is_fraud"              # a bool column
//! features = ["region", "channel"]
//!
//! [regression]
//! columns = ["amount", "customer_age"]   # integer columns; their pairwise products are stored
//! ```

use serde::{Deserialize, Serialize};

use crate::error::SchemaError;

/// Most rows one dataset may hold (ingest refuses more; widths are sized for it).
pub const MAX_ROWS: usize = 10_000_000;

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
/// Most bucket edges one histogram declares (one indicator per bucket is stored per row).
pub const MAX_HISTOGRAM_BOUNDS: usize = 63;
/// Most histograms one schema declares.
pub const MAX_HISTOGRAMS: usize = 8;
/// Most features a fraud declaration lists (each stores one label-masked indicator per value).
pub const MAX_FRAUD_FEATURES: usize = 16;
/// Most regression columns: products of every pair are stored per row, and the buyer's solve is
/// a dense (p + 1)² system, so a handful keeps both small.
pub const MAX_REGRESSION_COLUMNS: usize = 6;
/// Widest encrypted sum the seller can decrypt (`u128`).
pub const MAX_SUM_BITS: u32 = 128;

/// A validated dataset schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    #[serde(rename = "column")]
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cube: Option<CubeSpec>,
    /// Declared histograms (`[[histogram]]`): bucket indicators stored per row.
    #[serde(default, rename = "histogram", skip_serializing_if = "Vec::is_empty")]
    pub histograms: Vec<HistogramSpec>,
    /// The fraud label and features (`[fraud]`): label-masked indicators stored per row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraud: Option<FraudSpec>,
    /// Regression columns (`[regression]`): pairwise products stored per row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionSpec>,
}

/// A histogram the seller precomputes: each row stores one indicator bit per bucket, so a
/// histogram is a sum of bits (no bootstrapping without filters).
///
/// `bounds` are strictly increasing edges in the column's units, inside `(min, max]`: bucket 0
/// is `< bounds[0]`, bucket i is `[bounds[i-1], bounds[i])`, the last is `>= bounds[last]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramSpec {
    pub column: String,
    pub bounds: Vec<i64>,
}

/// The fraud label (a bool column) and the categorical features whose label-masked indicators
/// (`feature = v AND label`) the seller precomputes, so fraud counts are sums of bits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudSpec {
    pub label: String,
    pub features: Vec<String>,
}

/// Integer columns a linear regression may use (as target or features): the seller stores the
/// product of every pair per row (squares are stored for every integer column already).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegressionSpec {
    pub columns: Vec<String>,
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
        self.validate_histograms()?;
        if let Some(fraud) = &self.fraud {
            self.validate_fraud(fraud)?;
        }
        if let Some(regression) = &self.regression {
            self.validate_regression(regression)?;
        }
        Ok(())
    }

    fn validate_histograms(&self) -> Result<(), SchemaError> {
        if self.histograms.len() > MAX_HISTOGRAMS {
            return Err(SchemaError::Histogram(format!(
                "{} histograms declared; at most {MAX_HISTOGRAMS}",
                self.histograms.len()
            )));
        }
        for (i, h) in self.histograms.iter().enumerate() {
            let column = self
                .column(&h.column)
                .ok_or_else(|| SchemaError::UnknownColumn(h.column.clone()))?;
            let ColumnKind::Integer { min, max, .. } = column.kind else {
                return Err(SchemaError::Histogram(format!(
                    "`{}` is not an integer column",
                    h.column
                )));
            };
            if self.histograms[..i].iter().any(|o| o.column == h.column) {
                return Err(SchemaError::Histogram(format!(
                    "`{}` has two histograms; declare one with all its edges",
                    h.column
                )));
            }
            if h.bounds.is_empty() || h.bounds.len() > MAX_HISTOGRAM_BOUNDS {
                return Err(SchemaError::Histogram(format!(
                    "`{}` declares {} edges; 1 to {MAX_HISTOGRAM_BOUNDS} are allowed",
                    h.column,
                    h.bounds.len()
                )));
            }
            if h.bounds.windows(2).any(|w| w[0] >= w[1])
                || h.bounds.iter().any(|&b| b <= min || b > max)
            {
                return Err(SchemaError::Histogram(format!(
                    "`{}`: edges must increase strictly and lie in ({min}, {max}] (the column's units)",
                    h.column
                )));
            }
        }
        Ok(())
    }

    fn validate_fraud(&self, fraud: &FraudSpec) -> Result<(), SchemaError> {
        let label = self
            .column(&fraud.label)
            .ok_or_else(|| SchemaError::UnknownColumn(fraud.label.clone()))?;
        if label.kind != ColumnKind::Bool {
            return Err(SchemaError::Fraud(format!(
                "the label `{}` must be a bool column",
                fraud.label
            )));
        }
        if fraud.features.is_empty() || fraud.features.len() > MAX_FRAUD_FEATURES {
            return Err(SchemaError::Fraud(format!(
                "{} features declared; 1 to {MAX_FRAUD_FEATURES} are allowed",
                fraud.features.len()
            )));
        }
        for (i, f) in fraud.features.iter().enumerate() {
            let column = self
                .column(f)
                .ok_or_else(|| SchemaError::UnknownColumn(f.clone()))?;
            if column.kind.cardinality().is_none() || *f == fraud.label {
                return Err(SchemaError::Fraud(format!(
                    "feature `{f}` must be a category or bool column other than the label"
                )));
            }
            if fraud.features[..i].contains(f) {
                return Err(SchemaError::Fraud(format!("feature `{f}` appears twice")));
            }
        }
        Ok(())
    }

    /// Every regression sum (Σ x·y over up to [`MAX_ROWS`] rows of offsets) must
    /// fit the [`MAX_SUM_BITS`] the seller decrypts; checked here, before anything is encrypted.
    fn validate_regression(&self, regression: &RegressionSpec) -> Result<(), SchemaError> {
        let columns = &regression.columns;
        if columns.len() < 2 || columns.len() > MAX_REGRESSION_COLUMNS {
            return Err(SchemaError::Regression(format!(
                "{} columns declared; 2 to {MAX_REGRESSION_COLUMNS} are allowed (a target and features)",
                columns.len()
            )));
        }
        let mut widths = Vec::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            let column = self
                .column(c)
                .ok_or_else(|| SchemaError::UnknownColumn(c.clone()))?;
            let ColumnKind::Integer { min, max, .. } = column.kind else {
                return Err(SchemaError::Regression(format!(
                    "`{c}` is not an integer column"
                )));
            };
            if columns[..i].contains(c) {
                return Err(SchemaError::Regression(format!("`{c}` appears twice")));
            }
            widths.push((c, range_width(min, max)));
        }
        let rows = MAX_ROWS as u128;
        for (i, &(a, wa)) in widths.iter().enumerate() {
            for &(b, wb) in &widths[i..] {
                let bits = u128::from(wa)
                    .checked_mul(u128::from(wb))
                    .and_then(|p| p.checked_mul(rows))
                    .map_or(u32::MAX, |m| u128::BITS - m.leading_zeros());
                if bits > MAX_SUM_BITS {
                    return Err(SchemaError::Regression(format!(
                        "Σ {a}·{b} over up to {rows} rows needs {bits} bits, over the {MAX_SUM_BITS} \
                         that can be decrypted: declare a coarser scale or a narrower range"
                    )));
                }
            }
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

    /// What one stored integer step is worth in the column's units: `10^scale` for an integer
    /// column (amounts in cents have scale 2), 1 for every other kind.
    #[must_use]
    pub fn unit(&self) -> f64 {
        match self {
            ColumnKind::Integer { scale, .. } => 10f64.powi(i32::try_from(*scale).unwrap_or(0)),
            _ => 1.0,
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
    fn template_sections_are_optional_validated_and_round_trip() {
        // The demo schema declares all four templates and survives TOML.
        let demo = crate::synth::schema();
        assert_eq!(Schema::from_toml(&demo.to_toml()).unwrap(), demo);
        let with = |extra: &str| Schema::from_toml(&format!("{GOOD}\n{extra}"));
        let ok = with(
            "[[histogram]]\ncolumn = \"amount\"\nbounds = [100, 5000]\n\
             [fraud]\nlabel = \"flag\"\nfeatures = [\"region\"]\n",
        )
        .unwrap();
        assert_eq!(ok.histograms[0].bounds, vec![100, 5000]);
        for (extra, needle) in [
            (
                "[[histogram]]\ncolumn = \"amount\"\nbounds = [5000, 100]",
                "increase",
            ),
            (
                "[[histogram]]\ncolumn = \"amount\"\nbounds = [0]",
                "increase",
            ),
            (
                "[[histogram]]\ncolumn = \"region\"\nbounds = [1]",
                "integer",
            ),
            ("[[histogram]]\ncolumn = \"amount\"\nbounds = []", "1 to"),
            ("[fraud]\nlabel = \"region\"\nfeatures = [\"flag\"]", "bool"),
            (
                "[fraud]\nlabel = \"flag\"\nfeatures = [\"amount\"]",
                "category",
            ),
            (
                "[fraud]\nlabel = \"flag\"\nfeatures = [\"flag\"]",
                "other than the label",
            ),
            ("[regression]\ncolumns = [\"amount\"]", "2 to"),
            (
                "[regression]\ncolumns = [\"amount\", \"region\"]",
                "not an integer",
            ),
        ] {
            let err = with(extra).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
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
