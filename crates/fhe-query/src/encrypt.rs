//! Encryption of a table into its layout ([`datacloud_query::layout`] describes it): the
//! indicator bits, narrow offsets, squares, derived columns, cube and totals, each a fresh TFHE
//! encryption under the seller's client key.
//!
//! Every ciphertext is stored *seeded* and without metadata ([`SeededRadix`]): per block only the
//! body and the seed of the mask, 24 bytes (the mask is regenerated from the seed when
//! decompressing, without bootstrapping; the metadata comes from the parameters).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::named::Named;
use tfhe::safe_serialization::{safe_deserialize, safe_serialize};
use tfhe_versionable::{Versionize, VersionsDispatch};

use datacloud_query::ingest::Table;
use datacloud_query::layout::{
    CubeLayout, DerivedColumn, LayoutHeader, LayoutOptions, header, offset,
};

use crate::error::LayoutError;
use crate::keys::SellerKey;
use crate::seeded::SeededRadix;

/// Largest serialized chunk accepted from outside.
pub const MAX_CHUNK_BYTES: u64 = 256 << 20;
/// Largest serialized cube accepted from outside.
pub const MAX_CUBE_BYTES: u64 = 2 << 30;

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
    let all = datacloud_query::plan::Bound::unfiltered(header, terms.clone());
    let plain = datacloud_query::reference::reference(table, &all, header);
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
