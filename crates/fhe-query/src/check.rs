//! The seller's check of a worker's result before anything decrypted leaves it (audit C-1).
//!
//! The dataset's ciphertexts and the server key are public, so whoever claims an order (a buyer
//! that bonded as a worker, say) can submit any well-shaped ciphertexts as its result: one victim
//! row's `amount` blocks copied from a chunk as the `sum` over a trivial `count` of 1000, or
//! blocks crafted to decrypt to bits of the secret key. Decrypting that and releasing it makes
//! the seller a decryption oracle.
//!
//! The seller is the data owner: it keeps its rows ([`save_rows`]: a private file, sealed under
//! its passphrase like its client key), recomputes the order's plan in the clear with
//! [`reference`] (the function every plan's evaluation is tested against, bit for bit), and
//! releases a decryption only when it equals that computation in every cell ([`open_result`]).
//! Before that, [`EncryptedResult::from_bytes`] has refused any block that is not TFHE-rs
//! conformant for the dataset's parameters. A decryption that differs releases nothing, and the
//! error says where it differs, never what it holds; the seller then disputes the result. What
//! the attacker learns is one bit per order, whether its forgery equals the true answer: nothing
//! the true answer would not have told it.

use std::path::Path;

use bincode::Options as _;
use datacloud_query::ingest::Table;
use datacloud_query::layout::LayoutHeader;
use datacloud_query::plan::Plan;
use datacloud_query::reference::{Aggregates, reference};
use datacloud_query::schema::Schema;

use crate::error::{CheckError, KeyError};
use crate::eval::EncryptedResult;
use crate::keys::{Passphrase, SellerKey, read_private, write_private};

/// Largest rows file read (10 M rows of a few dozen columns).
pub const MAX_ROWS_FILE_BYTES: u64 = 4 << 30;

fn codec() -> impl bincode::Options {
    bincode::DefaultOptions::new().with_limit(MAX_ROWS_FILE_BYTES)
}

/// The rows file's content: the schema as its TOML (the schema's own format, validated again
/// when read) and the encoded columns.
#[derive(serde::Serialize, serde::Deserialize)]
struct RowsFile {
    schema: String,
    columns: Vec<Vec<i64>>,
}

/// Writes the seller's plaintext rows to a new private file at `path` (mode 0600, sealed under
/// `passphrase` when there is one, never overwriting).
///
/// # Errors
/// [`KeyError::Io`] (the file exists, or cannot be written), [`KeyError::Serialize`].
pub fn save_rows(
    table: &Table,
    path: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<(), KeyError> {
    let bytes = zeroize::Zeroizing::new(
        codec()
            .serialize(&RowsFile {
                schema: table.schema.to_toml(),
                columns: table.columns.clone(),
            })
            .map_err(|e| KeyError::Serialize(e.to_string()))?,
    );
    write_private(path, &bytes, passphrase)
}

/// Reads rows written by [`save_rows`] and checks that they are the table `header` describes
/// (its schema, its row count, every cell in its column's domain).
///
/// # Errors
/// [`CheckError::Key`] for the file (permissions, size, passphrase), [`CheckError::Rows`] for
/// content that is not that table.
pub fn load_rows(
    path: &Path,
    passphrase: Option<&Passphrase>,
    header: &LayoutHeader,
) -> Result<Table, CheckError> {
    let bytes = read_private(path, passphrase, MAX_ROWS_FILE_BYTES)?;
    let file: RowsFile = codec()
        .deserialize(&bytes)
        .map_err(|e| CheckError::Rows(format!("{}: {e}", path.display())))?;
    let table = Table {
        schema: Schema::from_toml(&file.schema)
            .map_err(|e| CheckError::Rows(format!("{}: {e}", path.display())))?,
        columns: file.columns,
    };
    table
        .validate()
        .map_err(|e| CheckError::Rows(e.to_string()))?;
    if table.schema != header.schema || table.rows() as u64 != header.rows {
        return Err(CheckError::Rows(format!(
            "{} holds {} rows of schema `{}`, not the dataset's {} rows of `{}`",
            path.display(),
            table.rows(),
            table.schema.name,
            header.rows,
            header.schema.name
        )));
    }
    Ok(table)
}

/// Decrypts a worker's result and returns its aggregates only if they are exactly what `plan`
/// computes on the seller's `rows`.
///
/// # Errors
/// [`CheckError::NotTheComputation`] naming the first cell that differs (a count above the
/// dataset's rows is named as such); nothing decrypted is returned then.
pub fn open_result(
    result: &EncryptedResult,
    plan: &Plan,
    header: &LayoutHeader,
    key: &SellerKey,
    rows: &Table,
) -> Result<Aggregates, CheckError> {
    let decrypted = crate::decrypt(result, key);
    let expected = reference(rows, &plan.bound, header);
    if let Some(g) = decrypted
        .groups
        .iter()
        .position(|&(count, _, _)| count > u128::from(header.rows))
    {
        return Err(CheckError::NotTheComputation(format!(
            "group {g}'s count exceeds the dataset's {} rows",
            header.rows
        )));
    }
    if let Some(cell) = first_difference(&decrypted, &expected) {
        return Err(CheckError::NotTheComputation(format!(
            "{cell} differs from the seller's own computation of the plan"
        )));
    }
    Ok(expected)
}

/// Where two sets of aggregates first differ, in words (no values).
fn first_difference(got: &Aggregates, want: &Aggregates) -> Option<String> {
    if got.groups.len() != want.groups.len() || got.terms.len() != want.terms.len() {
        return Some("the number of groups".into());
    }
    for (g, (a, b)) in got.groups.iter().zip(&want.groups).enumerate() {
        for (name, differs) in [
            ("count", a.0 != b.0),
            ("sum", a.1 != b.1),
            ("sum of squares", a.2 != b.2),
        ] {
            if differs {
                return Some(format!("group {g}'s {name}"));
            }
        }
    }
    for (g, (a, b)) in got.terms.iter().zip(&want.terms).enumerate() {
        if a.len() != b.len() {
            return Some(format!("group {g}'s number of terms"));
        }
        if let Some(t) = a.iter().zip(b).position(|(x, y)| x != y) {
            return Some(format!("group {g}'s term {t}"));
        }
    }
    None
}
