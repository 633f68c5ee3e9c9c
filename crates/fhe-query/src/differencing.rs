//! The seller's differencing defense (issue 17 item 4): two answers whose cohorts differ in a few
//! rows reveal those rows by subtraction, whatever the minimum cohort of each. A cohort of 40
//! fraudulent card payments `WHERE amount <= 100.00` and another `WHERE amount <= 100.01` are
//! both released, and their difference is the one payment of 100.01.
//!
//! The seller holds the rows, so it compares row sets, not query texts: before releasing an
//! answer it computes the rows the order reads (the rows its filters select, and each released
//! group's), and refuses the order when one of them differs from a set it already released by
//! more than zero and fewer than `k` rows. It records the plan of every answer it releases
//! ([`Answered`]), and recomputes their sets from the rows when it checks: the record stays a
//! few hundred bytes an answer however large the dataset.
//!
//! Only sets of at least `k` rows count (smaller cells are suppressed anyway), and a set
//! identical to an answered one is no differencing (the same rows asked again; the privacy
//! budget accounts for that).

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use datacloud_query::ingest::Table;
use datacloud_query::layout::LayoutHeader;
use datacloud_query::plan::Bound;
use datacloud_query::reference::{Cohorts, RowSet, cohorts};

/// Most answers one dataset's record keeps; past it, the seller refuses new orders until the
/// owner renews the dataset (each check recomputes every recorded answer's rows).
pub const MAX_ANSWERED: usize = 4096;

/// Why a query is not answered.
#[derive(Debug, Error)]
pub enum DifferencingError {
    /// The query reads a set of rows that differs from an answered one in `rows` rows.
    #[error(
        "its rows differ from those of an answered query in {rows} rows, fewer than the minimum \
         cohort of {k}: answering both would reveal those rows by subtraction"
    )]
    Differs {
        /// How many rows the two sets differ in.
        rows: u64,
        /// The minimum cohort.
        k: u64,
    },
    /// The record is full ([`MAX_ANSWERED`]).
    #[error("the dataset has answered {0} queries, as many as its record keeps")]
    Full(usize),
    /// The record cannot be read or written.
    #[error("the record of answered queries {0}: {1}")]
    Record(String, String),
}

/// The plans of the answers a seller released on one dataset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    pub bounds: Vec<Bound>,
}

impl Answered {
    /// Loads the record, or an empty one when the file does not exist.
    ///
    /// # Errors
    /// [`DifferencingError::Record`] for an unreadable or corrupt file.
    pub fn load(path: &Path) -> Result<Self, DifferencingError> {
        let err = |e: String| DifferencingError::Record(path.display().to_string(), e);
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Writes the record atomically (a temporary file, fsync, rename): a crash leaves the old
    /// record or the new one.
    ///
    /// # Errors
    /// [`DifferencingError::Record`].
    pub fn save(&self, path: &Path) -> Result<(), DifferencingError> {
        let err = |e: String| DifferencingError::Record(path.display().to_string(), e);
        let bytes = serde_json::to_vec(self).map_err(|e| err(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        {
            let mut file = std::fs::File::create(&tmp).map_err(|e| err(e.to_string()))?;
            std::io::Write::write_all(&mut file, &bytes).map_err(|e| err(e.to_string()))?;
            file.sync_all().map_err(|e| err(e.to_string()))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }

    /// Refuses `asked` when it would difference an answered query on `table` ([`check`]),
    /// and records it otherwise (once: a plan already recorded is admitted as it is).
    ///
    /// # Errors
    /// [`DifferencingError`]; the record is unchanged then.
    pub fn admit(
        &mut self,
        table: &Table,
        header: &LayoutHeader,
        asked: &Bound,
        k: u64,
    ) -> Result<(), DifferencingError> {
        // The same plan again (a delivery retried after a restart) reads the same rows.
        if self.bounds.contains(asked) {
            return Ok(());
        }
        if self.bounds.len() >= MAX_ANSWERED {
            return Err(DifferencingError::Full(self.bounds.len()));
        }
        check(table, header, &self.bounds, asked, k)?;
        self.bounds.push(asked.clone());
        Ok(())
    }
}

/// The sets of at least `k` rows a query's answer releases: the filtered rows, and each group's.
fn released(c: &Cohorts, k: u64) -> Vec<&RowSet> {
    std::iter::once(&c.selected)
        .chain(&c.groups)
        .filter(|set| set.len() >= k)
        .collect()
}

/// Checks that no set of rows `asked` releases differs from one an `answered` query released
/// by more than zero and fewer than `k` rows.
///
/// # Errors
/// [`DifferencingError::Differs`] with the smallest such difference.
pub fn check(
    table: &Table,
    header: &LayoutHeader,
    answered: &[Bound],
    asked: &Bound,
    k: u64,
) -> Result<(), DifferencingError> {
    let asked = cohorts(table, asked, header);
    let new = released(&asked, k);
    let sizes: Vec<u64> = new.iter().map(|s| s.len()).collect();
    let mut smallest: Option<u64> = None;
    for bound in answered {
        let old = cohorts(table, bound, header);
        for before in released(&old, k) {
            let len = before.len();
            for (set, &size) in new.iter().zip(&sizes) {
                // The difference is at least the difference of the sizes.
                if size.abs_diff(len) >= k {
                    continue;
                }
                let rows = set.difference_len(before);
                if rows > 0 && rows < k {
                    smallest = Some(smallest.map_or(rows, |s| s.min(rows)));
                }
            }
        }
    }
    match smallest {
        Some(rows) => Err(DifferencingError::Differs { rows, k }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datacloud_query::layout::{LayoutOptions, header};
    use datacloud_query::plan::plan;
    use datacloud_query::{sql, synth};

    fn bound(table: &Table, header: &LayoutHeader, text: &str) -> Bound {
        let q = sql::parse(text, &table.schema).unwrap();
        plan(&q, header).unwrap().bound
    }

    /// An amount (in cents, as the table stores it) that exactly one row has: the thresholds
    /// just below it and at it select cohorts that differ in that row alone.
    fn lonely_amount(table: &Table) -> i64 {
        let column = table.schema.column_index("amount").unwrap();
        let mut amounts = table.columns[column].clone();
        amounts.sort_unstable();
        // From the median up, so that the cohorts below it are hundreds of rows.
        amounts[amounts.len() / 2..]
            .windows(3)
            .find(|w| w[0] < w[1] && w[1] < w[2])
            .map(|w| w[1])
            .unwrap()
    }

    #[test]
    fn the_two_cohort_attack_is_refused() {
        let table = synth::generate(2_000, 7);
        let header = header(&table, &LayoutOptions::default());
        let lonely = lonely_amount(&table);
        // Two cohorts of hundreds of rows each, one row apart (amounts are cents).
        let below = format!(
            "SELECT COUNT(*), SUM(amount) FROM transactions WHERE amount <= {}.{:02}",
            (lonely - 1) / 100,
            (lonely - 1) % 100
        );
        let at = format!(
            "SELECT COUNT(*), SUM(amount) FROM transactions WHERE amount <= {}.{:02}",
            lonely / 100,
            lonely % 100
        );
        let mut answered = Answered::default();
        answered
            .admit(&table, &header, &bound(&table, &header, &below), 10)
            .unwrap();
        let refused = answered
            .admit(&table, &header, &bound(&table, &header, &at), 10)
            .unwrap_err();
        assert!(
            matches!(refused, DifferencingError::Differs { rows: 1, k: 10 }),
            "{refused}"
        );
        assert_eq!(answered.bounds.len(), 1, "a refused query is not recorded");
        // The same rows asked again are no differencing; nor are cohorts k rows apart or more.
        answered
            .admit(&table, &header, &bound(&table, &header, &below), 10)
            .unwrap();
        answered
            .admit(
                &table,
                &header,
                &bound(
                    &table,
                    &header,
                    "SELECT COUNT(*) FROM transactions WHERE amount <= 10000.00",
                ),
                10,
            )
            .unwrap();
    }

    #[test]
    fn a_group_cell_one_row_from_an_answered_cohort_is_refused() {
        // The attacker asks the region cells, then the same with one more row in a filter: the
        // cells themselves differ in one row though the texts look unrelated.
        let table = synth::generate(2_000, 7);
        let header = header(&table, &LayoutOptions::default());
        let lonely = lonely_amount(&table);
        let mut answered = Answered::default();
        let first = format!(
            "SELECT region, COUNT(*) FROM transactions WHERE amount < {}.{:02} GROUP BY region",
            lonely / 100,
            lonely % 100
        );
        answered
            .admit(&table, &header, &bound(&table, &header, &first), 10)
            .unwrap();
        let second = format!(
            "SELECT region, COUNT(*) FROM transactions WHERE amount <= {}.{:02} GROUP BY region",
            lonely / 100,
            lonely % 100
        );
        assert!(matches!(
            answered.admit(&table, &header, &bound(&table, &header, &second), 10),
            Err(DifferencingError::Differs { rows: 1, .. })
        ));
    }

    #[test]
    fn the_record_survives_a_restart_and_is_bounded() {
        let table = synth::generate(300, 2);
        let header = header(&table, &LayoutOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answered.json");
        let mut answered = Answered::load(&path).unwrap();
        let q = bound(&table, &header, "SELECT COUNT(*) FROM transactions");
        answered.admit(&table, &header, &q, 10).unwrap();
        answered.save(&path).unwrap();
        assert_eq!(Answered::load(&path).unwrap(), answered);
        std::fs::write(&path, b"{nope").unwrap();
        assert!(Answered::load(&path).is_err());
        let mut full = Answered {
            bounds: vec![q.clone(); MAX_ANSWERED],
        };
        let other = bound(
            &table,
            &header,
            "SELECT COUNT(*) FROM transactions WHERE amount <= 50.00",
        );
        assert!(matches!(
            full.admit(&table, &header, &other, 10),
            Err(DifferencingError::Full(MAX_ANSWERED))
        ));
        // A plan already recorded (a retried delivery) is admitted, and not recorded twice.
        full.admit(&table, &header, &q, 10).unwrap();
        assert_eq!(full.bounds.len(), MAX_ANSWERED);
    }
}
