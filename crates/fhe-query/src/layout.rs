//! The encrypted layout. The seller knows the plaintext at onboarding, so it encrypts what makes
//! queries cheap, not just the rows:
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
//! Every ciphertext is stored *seeded* and without metadata ([`SeededRadix`]): per block only the
//! body and the seed of the mask, 24 bytes (the mask is regenerated from the seed when
//! decompressing, without bootstrapping; the metadata comes from the parameters).
//! Rows are stored in chunks of [`DEFAULT_CHUNK_ROWS`], so evaluation streams chunk by chunk and
//! chunks can be split across workers.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::named::Named;
use tfhe::safe_serialization::{safe_deserialize, safe_serialize};
use tfhe_versionable::{Versionize, VersionsDispatch};

use crate::error::LayoutError;
use crate::ingest::Table;
use crate::keys::SellerKey;
use crate::plan::Term;
use crate::schema::{ColumnKind, bits_for, blocks_for, range_width};
use crate::seeded::SeededRadix;

pub const DEFAULT_CHUNK_ROWS: usize = 256;
/// Largest serialized chunk accepted from outside.
pub const MAX_CHUNK_BYTES: u64 = 256 << 20;
/// Largest serialized cube accepted from outside.
pub const MAX_CUBE_BYTES: u64 = 2 << 30;

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

    /// Checks the derived columns are those the schema declares (or none): a header read from a
    /// manifest is untrusted, and its derived columns index the schema's.
    ///
    /// # Errors
    /// [`LayoutError::Mismatch`].
    pub fn check_derived(&self) -> Result<(), LayoutError> {
        if self.derived.is_empty() || self.derived == derived_columns(&self.schema) {
            Ok(())
        } else {
            Err(LayoutError::Mismatch(
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

/// A chunk of encrypted rows.
#[derive(Clone, Serialize, Deserialize, Versionize)]
#[versionize(EncryptedChunkVersions)]
pub struct EncryptedChunk {
    pub first_row: u64,
    pub rows: u32,
    /// Per schema column, per declared value, per row: the indicator bit (category/bool
    /// columns; empty for others).
    pub indicators: Vec<Vec<Vec<SeededRadix>>>,
    /// Per schema column, per row: the value's offset from the column minimum (integer and day
    /// columns; empty for others).
    pub values: Vec<Vec<SeededRadix>>,
    /// Per schema column, per row: the square of the offset (integer columns; empty otherwise).
    pub squares: Vec<Vec<SeededRadix>>,
}

#[derive(VersionsDispatch)]
pub enum EncryptedChunkVersions {
    V0(EncryptedChunk),
}

impl Named for EncryptedChunk {
    const NAME: &'static str = "datacloud::fhe_query::EncryptedChunk";
}

/// One cube cell on one day: prefix aggregates of the rows of that cell up to that day.
#[derive(Clone, Serialize, Deserialize, Versionize)]
#[versionize(CubeEntryVersions)]
pub struct CubeEntry {
    pub count: SeededRadix,
    /// Per cube measure.
    pub sums: Vec<SeededRadix>,
    pub squares: Vec<SeededRadix>,
}

#[derive(VersionsDispatch)]
pub enum CubeEntryVersions {
    V0(CubeEntry),
}

/// The encrypted cube: entries indexed by `cell * days + day_offset`.
#[derive(Clone, Serialize, Deserialize, Versionize)]
#[versionize(EncryptedCubeVersions)]
pub struct EncryptedCube {
    pub entries: Vec<CubeEntry>,
}

#[derive(VersionsDispatch)]
pub enum EncryptedCubeVersions {
    V0(EncryptedCube),
}

impl Named for EncryptedCube {
    const NAME: &'static str = "datacloud::fhe_query::EncryptedCube";
}

/// An encrypted dataset: its public header, its chunks, its cube and its totals.
#[derive(Clone)]
pub struct EncryptedDataset {
    pub header: LayoutHeader,
    pub chunks: Vec<EncryptedChunk>,
    pub cube: Option<EncryptedCube>,
    pub totals: Option<EncryptedTotals>,
}

/// The dataset's sums over all rows, precomputed by the seller at encryption: COUNT and one sum
/// per [`LayoutHeader::total_terms`]. Every template's query without filters or GROUP BY (the
/// fraud model of the whole dataset, its histogram, its regression, a column's mean and
/// variance) reads them instead of summing a ciphertext per row: no bootstrapping at all.
#[derive(Clone, Serialize, Deserialize, Versionize)]
#[versionize(EncryptedTotalsVersions)]
pub struct EncryptedTotals {
    pub count: SeededRadix,
    /// One per [`LayoutHeader::total_terms`], in its order.
    pub terms: Vec<SeededRadix>,
}

#[derive(VersionsDispatch)]
pub enum EncryptedTotalsVersions {
    V0(EncryptedTotals),
}

impl Named for EncryptedTotals {
    const NAME: &'static str = "datacloud::fhe_query::EncryptedTotals";
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

pub(crate) fn bits_for_u128(max: u128) -> u32 {
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

/// Encrypts a table into its layout, in parallel; `progress` is called with rows done.
#[must_use]
pub fn encrypt(
    table: &Table,
    key: &SellerKey,
    options: &LayoutOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> EncryptedDataset {
    let header = header(table, options);
    let ck = &key.integer();
    let chunk_rows = options.chunk_rows.max(1);
    let starts: Vec<usize> = (0..table.rows()).step_by(chunk_rows).collect();
    let chunks = starts
        .par_iter()
        .map(|&start| {
            let end = (start + chunk_rows).min(table.rows());
            let chunk = encrypt_chunk(table, &header, ck, start..end);
            progress(u64::from(chunk.rows));
            chunk
        })
        .collect();
    let cube = header
        .cube
        .as_ref()
        .map(|layout| encrypt_cube_with(table, &header, layout, ck));
    let totals = header.totals.then(|| encrypt_totals(table, &header, ck));
    EncryptedDataset {
        header,
        chunks,
        cube,
        totals,
    }
}

/// Encrypts rows `rows` of `table` as one chunk.
fn encrypt_chunk(
    table: &Table,
    header: &LayoutHeader,
    ck: &tfhe::integer::ClientKey,
    rows: std::ops::Range<usize>,
) -> EncryptedChunk {
    let schema = &table.schema;
    let (start, end) = (rows.start, rows.end);
    let mut chunk = EncryptedChunk {
        first_row: start as u64,
        rows: u32::try_from(end - start).unwrap_or(u32::MAX),
        indicators: Vec::new(),
        values: Vec::new(),
        squares: Vec::new(),
    };
    for (c, column) in schema.columns.iter().enumerate() {
        let cells = &table.columns[c][start..end];
        let indicators = match column.kind.cardinality() {
            Some(k) => (0..i64::try_from(k).unwrap_or(i64::MAX))
                .map(|v| {
                    cells
                        .iter()
                        .map(|&x| SeededRadix::encrypt(ck, u128::from(x == v), 1))
                        .collect()
                })
                .collect(),
            None => Vec::new(),
        };
        let vb = header.value_blocks[c] as usize;
        let sb = header.square_blocks[c] as usize;
        let offsets: Vec<u64> = cells
            .iter()
            .map(|&x| offset(&column.kind, x, header.days))
            .collect();
        let values = if vb > 0 {
            offsets
                .iter()
                .map(|&o| SeededRadix::encrypt(ck, u128::from(o), vb))
                .collect()
        } else {
            Vec::new()
        };
        let squares = if sb > 0 {
            offsets
                .iter()
                .map(|&o| SeededRadix::encrypt(ck, u128::from(o) * u128::from(o), sb))
                .collect()
        } else {
            Vec::new()
        };
        chunk.indicators.push(indicators);
        chunk.values.push(values);
        chunk.squares.push(squares);
    }
    for d in &header.derived {
        let row_value = |row: usize| move |c: usize| table.columns[c][row];
        let indicators = (0..d.indicators(schema))
            .map(|v| {
                (start..end)
                    .map(|row| {
                        let bit = d.hot(row_value(row)) == Some(v);
                        SeededRadix::encrypt(ck, u128::from(bit), 1)
                    })
                    .collect()
            })
            .collect();
        let values = match d {
            DerivedColumn::Product { blocks, .. } => (start..end)
                .map(|row| {
                    let offset_of = |c: usize| {
                        offset(&schema.columns[c].kind, table.columns[c][row], header.days)
                    };
                    SeededRadix::encrypt(ck, d.product(offset_of), *blocks as usize)
                })
                .collect(),
            _ => Vec::new(),
        };
        chunk.indicators.push(indicators);
        chunk.values.push(values);
        chunk.squares.push(Vec::new());
    }
    chunk
}

/// Plaintext prefix aggregates of the cube: `[cell][day] -> (count, sums, squares)`.
pub(crate) fn cube_plaintext(
    table: &Table,
    header: &LayoutHeader,
    layout: &CubeLayout,
) -> Vec<(u128, Vec<u128>, Vec<u128>)> {
    let days = layout.days as usize;
    let measures = layout.measures.len();
    let mut entries =
        vec![(0u128, vec![0u128; measures], vec![0u128; measures]); layout.cells() * days];
    let day_column = header.schema.day_column().unwrap_or(0);
    let first = header.days.map_or(0, |d| d.0);
    for row in 0..table.rows() {
        let cell = cell_index(layout, |c| table.columns[c][row]);
        let day = usize::try_from(table.columns[day_column][row] - first).unwrap_or(0);
        let e = &mut entries[cell * days + day];
        e.0 += 1;
        for (m, &column) in layout.measures.iter().enumerate() {
            let o = u128::from(offset(
                &header.schema.columns[column].kind,
                table.columns[column][row],
                header.days,
            ));
            e.1[m] += o;
            e.2[m] += o * o;
        }
    }
    // Prefix sums over days, per cell.
    for cell in 0..layout.cells() {
        for day in 1..days {
            let (before, after) = entries.split_at_mut(cell * days + day);
            let prev = &before[cell * days + day - 1];
            let e = &mut after[0];
            e.0 += prev.0;
            for m in 0..measures {
                e.1[m] += prev.1[m];
                e.2[m] += prev.2[m];
            }
        }
    }
    entries
}

/// The cube cell of a combination of dimension values (`value_of(column)` gives the value index).
pub(crate) fn cell_index(layout: &CubeLayout, value_of: impl Fn(usize) -> i64) -> usize {
    layout.dimensions.iter().fold(0, |acc, &(column, k)| {
        acc * k + usize::try_from(value_of(column)).unwrap_or(0)
    })
}

fn encrypt_cube_with(
    table: &Table,
    header: &LayoutHeader,
    layout: &CubeLayout,
    ck: &tfhe::integer::ClientKey,
) -> EncryptedCube {
    let plain = cube_plaintext(table, header, layout);
    let entries = plain
        .par_iter()
        .map(|(count, sums, squares)| CubeEntry {
            count: SeededRadix::encrypt(ck, *count, layout.count_blocks as usize),
            sums: sums
                .iter()
                .zip(&layout.sum_blocks)
                .map(|(s, &b)| SeededRadix::encrypt(ck, *s, b as usize))
                .collect(),
            squares: squares
                .iter()
                .zip(&layout.square_blocks)
                .map(|(s, &b)| SeededRadix::encrypt(ck, *s, b as usize))
                .collect(),
        })
        .collect();
    EncryptedCube { entries }
}

fn encrypt_totals(
    table: &Table,
    header: &LayoutHeader,
    ck: &tfhe::integer::ClientKey,
) -> EncryptedTotals {
    let terms = header.total_terms();
    // The plaintext reference of a query with every term and no filter is exactly the totals.
    let all = crate::plan::Bound::unfiltered(header, terms.clone());
    let plain = crate::policy::reference(table, &all, header);
    let sums = &plain.terms[0];
    EncryptedTotals {
        count: SeededRadix::encrypt(ck, plain.groups[0].0, header.count_blocks() as usize),
        terms: terms
            .par_iter()
            .zip(sums)
            .map(|(&t, &sum)| SeededRadix::encrypt(ck, sum, header.term_blocks(t) as usize))
            .collect(),
    }
}

impl EncryptedChunk {
    /// Safe-serializes the chunk (versioned, size-limited).
    ///
    /// # Errors
    /// [`LayoutError::Serialize`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, LayoutError> {
        to_bytes_bounded(self, MAX_CHUNK_BYTES)
    }

    /// Reads a chunk from untrusted bytes and checks its shape against the header.
    ///
    /// # Errors
    /// [`LayoutError::Deserialize`] or [`LayoutError::Mismatch`].
    pub fn from_bytes(bytes: &[u8], header: &LayoutHeader) -> Result<Self, LayoutError> {
        let chunk: EncryptedChunk =
            safe_deserialize(bytes, MAX_CHUNK_BYTES).map_err(LayoutError::Deserialize)?;
        chunk.check(header)?;
        Ok(chunk)
    }

    /// Checks every column has one ciphertext per row with the header's block counts.
    ///
    /// # Errors
    /// [`LayoutError::Mismatch`] naming the first column that does not fit.
    pub fn check(&self, header: &LayoutHeader) -> Result<(), LayoutError> {
        header.check_derived()?;
        let n = header.stored_columns();
        if self.indicators.len() != n || self.values.len() != n || self.squares.len() != n {
            return Err(LayoutError::Mismatch("column count".into()));
        }
        if u64::from(self.rows) > u64::from(header.chunk_rows)
            || self.first_row.saturating_add(u64::from(self.rows)) > header.rows
        {
            return Err(LayoutError::Mismatch("chunk rows".into()));
        }
        let rows = self.rows as usize;
        let shape = |cts: &[SeededRadix], blocks: usize| {
            cts.len() == if blocks == 0 { 0 } else { rows } && cts.iter().all(|c| c.fits(blocks))
        };
        for c in 0..n {
            let ok = self.indicators[c].len() == header.indicator_count(c)
                && self.indicators[c].iter().all(|v| shape(v, 1))
                && shape(&self.values[c], header.value_width(c) as usize)
                && shape(&self.squares[c], header.square_width(c) as usize);
            if !ok {
                let name = header
                    .schema
                    .columns
                    .get(c)
                    .map_or_else(|| format!("derived column {c}"), |col| col.name.clone());
                return Err(LayoutError::Mismatch(format!("column `{name}`")));
            }
        }
        Ok(())
    }
}

/// Safe-serializes (versioned, named, at most `limit` bytes) what this crate sends out.
pub(crate) fn to_bytes_bounded<T>(value: &T, limit: u64) -> Result<Vec<u8>, LayoutError>
where
    T: Serialize + Versionize + Named,
{
    let mut out = Vec::new();
    safe_serialize(value, &mut out, limit).map_err(|e| LayoutError::Serialize(e.to_string()))?;
    Ok(out)
}

impl EncryptedTotals {
    /// Safe-serializes the totals.
    ///
    /// # Errors
    /// [`LayoutError::Serialize`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, LayoutError> {
        to_bytes_bounded(self, MAX_CHUNK_BYTES)
    }

    /// Reads totals from untrusted bytes and checks their shape against the header.
    ///
    /// # Errors
    /// [`LayoutError::Deserialize`] or [`LayoutError::Mismatch`].
    pub fn from_bytes(bytes: &[u8], header: &LayoutHeader) -> Result<Self, LayoutError> {
        header.check_derived()?;
        let totals: EncryptedTotals =
            safe_deserialize(bytes, MAX_CHUNK_BYTES).map_err(LayoutError::Deserialize)?;
        let terms = header.total_terms();
        let ok = header.totals
            && totals.count.fits(header.count_blocks() as usize)
            && totals.terms.len() == terms.len()
            && totals
                .terms
                .par_iter()
                .zip(&terms)
                .all(|(c, &t)| c.fits(header.term_blocks(t) as usize));
        if !ok {
            return Err(LayoutError::Mismatch("totals shape".into()));
        }
        Ok(totals)
    }
}

impl EncryptedCube {
    /// Safe-serializes the cube.
    ///
    /// # Errors
    /// [`LayoutError::Serialize`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, LayoutError> {
        to_bytes_bounded(self, MAX_CUBE_BYTES)
    }

    /// Reads a cube from untrusted bytes and checks its shape.
    ///
    /// # Errors
    /// [`LayoutError::Deserialize`] or [`LayoutError::Mismatch`].
    pub fn from_bytes(bytes: &[u8], layout: &CubeLayout) -> Result<Self, LayoutError> {
        let cube: EncryptedCube =
            safe_deserialize(bytes, MAX_CUBE_BYTES).map_err(LayoutError::Deserialize)?;
        let m = layout.measures.len();
        let ok = cube.entries.len() == layout.cells() * layout.days as usize
            && cube.entries.par_iter().all(|e| {
                e.count.fits(layout.count_blocks as usize)
                    && e.sums.len() == m
                    && e.squares.len() == m
                    && e.sums
                        .iter()
                        .zip(&layout.sum_blocks)
                        .all(|(c, &b)| c.fits(b as usize))
                    && e.squares
                        .iter()
                        .zip(&layout.square_blocks)
                        .all(|(c, &b)| c.fits(b as usize))
            });
        if !ok {
            return Err(LayoutError::Mismatch("cube shape".into()));
        }
        Ok(cube)
    }
}
