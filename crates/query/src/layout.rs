//! The encrypted layout's public description: what a worker, a buyer and the planner may know of
//! an encrypted dataset ([`LayoutHeader`]), computed from the plaintext table at onboarding
//! ([`header`]). The seller knows the plaintext then, so it stores what makes queries cheap, not
//! just the rows:
//!
//! - category and bool columns as **one-hot indicator bits** (an `IN` filter is then a sum of
//!   indicators, with no bootstrapping);
//! - integer and day columns as **offsets from the column minimum in the fewest 2-bit blocks**
//!   that hold the range (comparisons and masking cost one bootstrap per block, so narrow is fast);
//! - **squares** of integer columns (variance needs Σx² and squaring ciphertexts is expensive);
//! - an optional **aggregate cube** (see [`crate::schema::CubeSpec`]): COUNT, Σx and Σx² per
//!   dimension cell and day, as prefix sums over days, so a day window is two cell reads;
//! - **derived columns** for the other templates, only where the schema declares them (see
//!   [`DerivedColumn`]): bucket indicators of a histogram, fraud-label-masked indicators of the
//!   fraud features, and pairwise products of the regression columns. Each turns a template's
//!   per-row work into a plain sum of stored ciphertexts.
//!
//! Rows are stored in chunks of [`DEFAULT_CHUNK_ROWS`], so evaluation streams chunk by chunk and
//! chunks can be split across workers. The ciphertexts themselves are `datacloud-fhe-query`'s.

use serde::{Deserialize, Serialize};

use crate::error::HeaderError;
use crate::ingest::Table;
use crate::schema::{ColumnKind, MAX_ROWS, bits_for, blocks_for, range_width};

pub const DEFAULT_CHUNK_ROWS: usize = 256;
/// Most chunks a dataset may have (a package directory lists every one).
pub const MAX_CHUNKS: u64 = 1 << 16;
/// Widest stored value, in 2-bit radix blocks (128 bits: any sum of squares of
/// [`MAX_ROWS`] offsets of the widest column fits).
pub const MAX_VALUE_BLOCKS: u32 = 64;
/// Most cube entries (cells × days) a dataset may have.
pub const MAX_CUBE_ENTRIES: u64 = 1 << 24;
/// Longest span of days a dataset may cover.
pub const MAX_DAY_SPAN: u64 = 1 << 20;

/// What a worker (and a buyer) may know of an encrypted dataset: the public part of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutHeader {
    pub schema: crate::schema::Schema,
    pub rows: u64,
    pub chunk_rows: u32,
    /// First and last day of the data (coverage metadata; `None` without a day column).
    pub days: Option<(i64, i64)>,
    /// Per schema column: radix blocks of its encrypted value (0 for category/bool columns).
    pub value_blocks: Vec<u32>,
    /// Per schema column: radix blocks of its square (0 when not stored).
    pub square_blocks: Vec<u32>,
    pub cube: Option<CubeLayout>,
    /// Columns derived from the schema's template declarations, stored after the schema's
    /// columns: column index `schema.columns.len() + i` is `derived[i]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<DerivedColumn>,
    /// The dataset carries [`EncryptedTotals`]: every sum [`LayoutHeader::total_terms`] lists,
    /// over all rows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub totals: bool,
}

/// One per-row quantity a template sums (masked by the row's filter and group bit).
/// Columns are stored column indices: schema columns, then [`LayoutHeader::derived`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Term {
    /// An indicator bit: value `value` of a category/bool column or of a derived indicator column.
    Indicator { column: usize, value: usize },
    /// A stored integer: an integer column's offset, or a derived product of offsets.
    Value { column: usize },
    /// An integer column's stored square of its offset.
    Square { column: usize },
}

/// A column the seller computes from others at encryption, because it knows the plaintext then:
/// what would cost bootstraps per row on ciphertexts is one more stored ciphertext per row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DerivedColumn {
    /// One indicator bit per bucket of a declared histogram of the integer `column` (edges in
    /// the column's units; see [`crate::schema::HistogramSpec`]).
    Buckets { column: usize, bounds: Vec<i64> },
    /// One indicator bit per value of the category/bool `column`, masked by the bool `label`:
    /// `column = v AND label`.
    Labelled { column: usize, label: usize },
    /// The product of two integer columns' offsets, in `blocks` radix blocks.
    Product {
        left: usize,
        right: usize,
        blocks: u32,
    },
}

impl DerivedColumn {
    /// Number of indicator bits per row (0 for a product).
    #[must_use]
    pub fn indicators(&self, schema: &crate::schema::Schema) -> usize {
        match self {
            DerivedColumn::Buckets { bounds, .. } => bounds.len() + 1,
            DerivedColumn::Labelled { column, .. } => schema
                .columns
                .get(*column)
                .and_then(|c| c.kind.cardinality())
                .unwrap_or(0),
            DerivedColumn::Product { .. } => 0,
        }
    }

    /// The indicator that is 1 in a row (`None`: all are 0), given the row's cell values.
    #[must_use]
    pub fn hot(&self, value_of: impl Fn(usize) -> i64) -> Option<usize> {
        match self {
            DerivedColumn::Buckets { column, bounds } => {
                let x = value_of(*column);
                Some(bounds.partition_point(|&b| b <= x))
            }
            DerivedColumn::Labelled { column, label } => (value_of(*label) == 1)
                .then(|| usize::try_from(value_of(*column)).ok())
                .flatten(),
            DerivedColumn::Product { .. } => None,
        }
    }

    /// The stored product of offsets in a row (0 for indicator columns).
    #[must_use]
    pub fn product(&self, offset_of: impl Fn(usize) -> u64) -> u128 {
        match self {
            DerivedColumn::Product { left, right, .. } => {
                u128::from(offset_of(*left)) * u128::from(offset_of(*right))
            }
            _ => 0,
        }
    }
}

impl LayoutHeader {
    /// Schema columns plus derived columns: the length of a chunk's column vectors.
    #[must_use]
    pub fn stored_columns(&self) -> usize {
        self.schema.columns.len() + self.derived.len()
    }

    /// The derived column at stored column index `c`, if `c` is past the schema's columns.
    #[must_use]
    pub fn derived_column(&self, c: usize) -> Option<&DerivedColumn> {
        c.checked_sub(self.schema.columns.len())
            .and_then(|i| self.derived.get(i))
    }

    /// The stored column index of a derived column.
    #[must_use]
    pub fn derived_index(&self, wanted: &DerivedColumn) -> Option<usize> {
        self.derived
            .iter()
            .position(|d| d == wanted)
            .map(|i| self.schema.columns.len() + i)
    }

    /// Indicator bits per row of stored column `c`.
    #[must_use]
    pub fn indicator_count(&self, c: usize) -> usize {
        match self.derived_column(c) {
            Some(d) => d.indicators(&self.schema),
            None => self
                .schema
                .columns
                .get(c)
                .and_then(|col| col.kind.cardinality())
                .unwrap_or(0),
        }
    }

    /// Radix blocks of stored column `c`'s value (0 when it has none).
    #[must_use]
    pub fn value_width(&self, c: usize) -> u32 {
        match self.derived_column(c) {
            Some(DerivedColumn::Product { blocks, .. }) => *blocks,
            Some(_) => 0,
            None => self.value_blocks.get(c).copied().unwrap_or(0),
        }
    }

    /// Radix blocks of stored column `c`'s square (0 when it has none).
    #[must_use]
    pub fn square_width(&self, c: usize) -> u32 {
        self.square_blocks.get(c).copied().unwrap_or(0)
    }

    /// Radix blocks of a count of rows (up to all of them).
    #[must_use]
    pub fn count_blocks(&self) -> u32 {
        u32::try_from(blocks_for(bits_for_u128(u128::from(self.rows)))).unwrap_or(u32::MAX)
    }

    /// Largest offset of integer column `c` from its minimum (0 for other columns).
    #[must_use]
    pub fn offset_width(&self, c: usize) -> u128 {
        match self.schema.columns.get(c).map(|col| &col.kind) {
            Some(ColumnKind::Integer { min, max, .. }) => u128::from(range_width(*min, *max)),
            _ => 0,
        }
    }

    /// Radix blocks that hold the sum of `term` over every row of the dataset.
    #[must_use]
    pub fn term_blocks(&self, term: Term) -> u32 {
        let rows = u128::from(self.rows);
        let blocks = |max: u128| u32::try_from(blocks_for(bits_for_u128(max))).unwrap_or(u32::MAX);
        match term {
            Term::Indicator { .. } => blocks(rows),
            Term::Value { column } => match self.derived_column(column) {
                Some(DerivedColumn::Product { left, right, .. }) => {
                    blocks(self.offset_width(*left) * self.offset_width(*right) * rows)
                }
                _ => blocks(self.offset_width(column) * rows),
            },
            Term::Square { column } => {
                let w = self.offset_width(column);
                blocks(w * w * rows)
            }
        }
    }

    /// The sums [`EncryptedTotals`] hold, in storage order: per stored column, one per indicator
    /// value, then the value (integer columns and products), then the square (integer columns).
    /// With COUNT they answer every query without filters or groups.
    #[must_use]
    pub fn total_terms(&self) -> Vec<Term> {
        let mut terms = Vec::new();
        for column in 0..self.stored_columns() {
            terms.extend(
                (0..self.indicator_count(column)).map(|value| Term::Indicator { column, value }),
            );
            let integer = self.offset_width(column) > 0
                || matches!(
                    self.derived_column(column),
                    Some(DerivedColumn::Product { .. })
                );
            if integer && self.value_width(column) > 0 {
                terms.push(Term::Value { column });
            }
            if integer && self.square_width(column) > 0 {
                terms.push(Term::Square { column });
            }
        }
        terms
    }

    /// Checks a header read from an untrusted manifest before anything is sized from it: the
    /// schema is valid, the rows and chunks within bounds, every width within
    /// [`MAX_VALUE_BLOCKS`], the cube's dimensions and measures the schema's with at most
    /// [`MAX_CUBE_ENTRIES`] entries, and the derived columns those the schema declares. A
    /// hostile header then cannot make a worker allocate, loop or overflow without bound.
    ///
    /// # Errors
    /// [`HeaderError`] naming the first bound broken.
    pub fn validate(&self) -> Result<(), HeaderError> {
        let bad = |what: String| Err(HeaderError(what));
        self.schema
            .validate()
            .map_err(|e| HeaderError(format!("schema: {e}")))?;
        let columns = self.schema.columns.len();
        if self.rows == 0 || self.rows > MAX_ROWS as u64 {
            return bad(format!("{} rows; 1 to {MAX_ROWS} are allowed", self.rows));
        }
        let chunks = self.rows.div_ceil(u64::from(self.chunk_rows.max(1)));
        if self.chunk_rows == 0 || chunks > MAX_CHUNKS {
            return bad(format!(
                "{} chunks of {} rows; at most {MAX_CHUNKS} chunks of at least 1 row",
                chunks, self.chunk_rows
            ));
        }
        if self.value_blocks.len() != columns || self.square_blocks.len() != columns {
            return bad("widths are not given once per column".into());
        }
        let wide = |blocks: &u32| *blocks > MAX_VALUE_BLOCKS;
        if self.value_blocks.iter().any(wide) || self.square_blocks.iter().any(wide) {
            return bad(format!("a width over {MAX_VALUE_BLOCKS} blocks"));
        }
        if let Some((first, last)) = self.days
            && (last < first || last.abs_diff(first) > MAX_DAY_SPAN)
        {
            return bad(format!("days {first}..={last}"));
        }
        if let Some(cube) = &self.cube {
            self.validate_cube(cube)?;
        }
        self.check_derived()
    }

    fn validate_cube(&self, cube: &CubeLayout) -> Result<(), HeaderError> {
        let bad = |what: &str| Err(HeaderError(format!("cube: {what}")));
        let schema = &self.schema;
        let dimension_ok = |&(c, cardinality): &(usize, usize)| {
            schema.columns.get(c).and_then(|col| col.kind.cardinality()) == Some(cardinality)
        };
        if !cube.dimensions.iter().all(dimension_ok) {
            return bad("a dimension is not a category or bool column of the schema");
        }
        let integer = |&c: &usize| {
            matches!(
                schema.columns.get(c).map(|col| &col.kind),
                Some(ColumnKind::Integer { .. })
            )
        };
        if !cube.measures.iter().all(integer)
            || cube.sum_blocks.len() != cube.measures.len()
            || cube.square_blocks.len() != cube.measures.len()
        {
            return bad("measures are not integer columns with one width each");
        }
        let entries = cube
            .dimensions
            .iter()
            .try_fold(u64::from(cube.days), |n, &(_, k)| {
                n.checked_mul(u64::try_from(k).ok()?)
            });
        if cube.days == 0 || entries.is_none_or(|n| n > MAX_CUBE_ENTRIES) {
            return bad("more cells × days than a cube may hold");
        }
        let wide = |blocks: &u32| *blocks > MAX_VALUE_BLOCKS;
        if wide(&cube.count_blocks)
            || cube.sum_blocks.iter().any(wide)
            || cube.square_blocks.iter().any(wide)
        {
            return bad("a width over the limit");
        }
        Ok(())
    }

    /// Checks the derived columns are those the schema declares (or none): a header read from a
    /// manifest is untrusted, and its derived columns index the schema's.
    ///
    /// # Errors
    /// [`HeaderError`].
    pub fn check_derived(&self) -> Result<(), HeaderError> {
        if self.derived.is_empty() || self.derived == derived_columns(&self.schema) {
            Ok(())
        } else {
            Err(HeaderError(
                "derived columns are not the ones the schema declares".into(),
            ))
        }
    }

    /// The stored product of the regression columns `a` and `b` (either order).
    #[must_use]
    pub fn product_index(&self, a: usize, b: usize) -> Option<usize> {
        self.derived
            .iter()
            .position(|d| {
                matches!(d, DerivedColumn::Product { left, right, .. }
                    if (*left, *right) == (a, b) || (*left, *right) == (b, a))
            })
            .map(|i| self.schema.columns.len() + i)
    }
}

/// The derived columns a schema declares, in storage order: histograms, fraud features,
/// regression products.
#[must_use]
pub fn derived_columns(schema: &crate::schema::Schema) -> Vec<DerivedColumn> {
    let index = |name: &str| schema.column_index(name);
    let mut derived = Vec::new();
    for h in &schema.histograms {
        if let Some(column) = index(&h.column) {
            derived.push(DerivedColumn::Buckets {
                column,
                bounds: h.bounds.clone(),
            });
        }
    }
    if let Some(fraud) = &schema.fraud
        && let Some(label) = index(&fraud.label)
    {
        for f in &fraud.features {
            if let Some(column) = index(f) {
                derived.push(DerivedColumn::Labelled { column, label });
            }
        }
    }
    if let Some(regression) = &schema.regression {
        let columns: Vec<usize> = regression.columns.iter().filter_map(|c| index(c)).collect();
        let width = |c: usize| match schema.columns[c].kind {
            ColumnKind::Integer { min, max, .. } => u128::from(range_width(min, max)),
            _ => 0,
        };
        for (i, &left) in columns.iter().enumerate() {
            for &right in &columns[i + 1..] {
                let blocks = blocks_for(bits_for_u128(width(left) * width(right)));
                derived.push(DerivedColumn::Product {
                    left,
                    right,
                    blocks: u32::try_from(blocks).unwrap_or(u32::MAX),
                });
            }
        }
    }
    derived
}

/// Widths of the cube's aggregates, fixed at onboarding from the row count and ranges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CubeLayout {
    /// Schema column indices of the dimensions, and their cardinalities.
    pub dimensions: Vec<(usize, usize)>,
    /// Schema column indices of the measures.
    pub measures: Vec<usize>,
    pub days: u32,
    pub count_blocks: u32,
    pub sum_blocks: Vec<u32>,
    pub square_blocks: Vec<u32>,
}

impl CubeLayout {
    #[must_use]
    pub fn cells(&self) -> usize {
        self.dimensions.iter().map(|d| d.1).product()
    }
}

/// Options of [`encrypt`].
#[derive(Clone, Debug)]
pub struct LayoutOptions {
    pub chunk_rows: usize,
    /// Build the schema's cube (when it declares one).
    pub cube: bool,
    /// Store the derived columns the schema's template declarations ask for (histogram
    /// buckets, fraud-masked indicators, regression products). Off, those templates cannot run.
    pub derived: bool,
    /// Store [`EncryptedTotals`]: queries without filters or groups become lookups.
    pub totals: bool,
}

impl Default for LayoutOptions {
    fn default() -> Self {
        LayoutOptions {
            chunk_rows: DEFAULT_CHUNK_ROWS,
            cube: true,
            derived: true,
            totals: true,
        }
    }
}

/// Computes the header (widths) of a table's encrypted layout.
#[must_use]
pub fn header(table: &Table, options: &LayoutOptions) -> LayoutHeader {
    let schema = &table.schema;
    let days = table.day_range();
    let mut value_blocks = Vec::new();
    let mut square_blocks = Vec::new();
    for column in &schema.columns {
        let (v, s) = match column.kind {
            ColumnKind::Integer { min, max, .. } => {
                let w = range_width(min, max);
                let bits = bits_for(w);
                (blocks_for(bits), blocks_for(2 * bits))
            }
            ColumnKind::Day => {
                let span = days.map_or(0, |(a, b)| b.abs_diff(a));
                (blocks_for(bits_for(span)), 0)
            }
            _ => (0, 0),
        };
        value_blocks.push(u32::try_from(v).unwrap_or(u32::MAX));
        square_blocks.push(u32::try_from(s).unwrap_or(u32::MAX));
    }
    let rows = table.rows() as u64;
    let cube = schema
        .cube
        .as_ref()
        .filter(|_| options.cube)
        .and_then(|spec| {
            let (first, last) = days?;
            let dimensions = spec
                .dimensions
                .iter()
                .filter_map(|d| {
                    let i = schema.column_index(d)?;
                    Some((i, schema.columns[i].kind.cardinality()?))
                })
                .collect();
            let measures: Vec<usize> = spec
                .measures
                .iter()
                .filter_map(|m| schema.column_index(m))
                .collect();
            let width = |i: usize| match schema.columns[i].kind {
                ColumnKind::Integer { min, max, .. } => u128::from(range_width(min, max)),
                _ => 0,
            };
            let blocks =
                |max: u128| u32::try_from(blocks_for(bits_for_u128(max))).unwrap_or(u32::MAX);
            Some(CubeLayout {
                dimensions,
                sum_blocks: measures
                    .iter()
                    .map(|&m| blocks(width(m) * u128::from(rows)))
                    .collect(),
                square_blocks: measures
                    .iter()
                    .map(|&m| blocks(width(m) * width(m) * u128::from(rows)))
                    .collect(),
                measures,
                days: u32::try_from(last - first + 1).unwrap_or(u32::MAX),
                count_blocks: blocks(u128::from(rows)),
            })
        });
    LayoutHeader {
        schema: schema.clone(),
        rows,
        chunk_rows: u32::try_from(options.chunk_rows).unwrap_or(u32::MAX),
        days,
        value_blocks,
        square_blocks,
        cube,
        derived: if options.derived {
            derived_columns(schema)
        } else {
            Vec::new()
        },
        totals: options.totals,
    }
}

/// Bits needed to hold values up to `max` (at least one).
#[must_use]
pub fn bits_for_u128(max: u128) -> u32 {
    (u128::BITS - max.leading_zeros()).max(1)
}

/// The encoded offset of a cell from its column's minimum (what is encrypted).
#[must_use]
pub fn offset(kind: &ColumnKind, value: i64, days: Option<(i64, i64)>) -> u64 {
    match kind {
        ColumnKind::Integer { min, .. } => value.abs_diff(*min),
        ColumnKind::Day => days.map_or(0, |(first, _)| value.abs_diff(first)),
        _ => value.unsigned_abs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> LayoutHeader {
        header(&crate::synth::generate(300, 4), &LayoutOptions::default())
    }

    /// Every hostile header of a manifest is refused before anything is sized from it.
    #[test]
    fn a_hostile_header_is_refused() {
        type Break = fn(&mut LayoutHeader);
        assert!(valid().validate().is_ok());
        let cases: Vec<(&str, Break)> = vec![
            ("no rows", |h| h.rows = 0),
            ("u64::MAX rows", |h| h.rows = u64::MAX),
            ("chunks of 0 rows", |h| h.chunk_rows = 0),
            ("a million chunks", |h| {
                h.rows = 1_000_000;
                h.chunk_rows = 1;
            }),
            ("a missing width", |h| {
                h.value_blocks.pop();
            }),
            ("a 2^32-block value", |h| h.value_blocks[0] = u32::MAX),
            ("days backwards", |h| h.days = Some((10, 1))),
            ("days over millennia", |h| h.days = Some((0, i64::MAX))),
            ("a cube dimension that is no category of the schema", |h| {
                h.cube.as_mut().unwrap().dimensions.push((0, 256));
            }),
            ("a cube of 2^32 days", |h| {
                h.cube.as_mut().unwrap().days = u32::MAX;
            }),
            ("a cube over a measure that is no integer", |h| {
                let region = h.schema.column_index("region").unwrap();
                h.cube.as_mut().unwrap().measures[0] = region;
            }),
            ("a cube of zero days", |h| h.cube.as_mut().unwrap().days = 0),
            ("derived columns the schema does not declare", |h| {
                h.derived.push(DerivedColumn::Buckets {
                    column: 0,
                    bounds: vec![1],
                });
            }),
        ];
        for (what, break_it) in cases {
            let mut h = valid();
            break_it(&mut h);
            assert!(h.validate().is_err(), "{what} accepted");
        }
    }
}
