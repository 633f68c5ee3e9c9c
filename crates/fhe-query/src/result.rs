//! The buyer's result: a typed table ([`ResultTable`]) of released cells and an optional model,
//! rendered as aligned text here and as JSON through serde.

use std::fmt::Write as _;

use datacloud_query::template::Aggregate;
use serde::{Deserialize, Serialize};

use crate::model::Model;

/// An estimate with its 95 % confidence interval (when one can be computed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub ci95: Option<(f64, f64)>,
}

/// One output group's statistics, or why it is withheld.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cell {
    Suppressed {
        reason: String,
    },
    Released {
        count: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        sum: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        avg: Option<Estimate>,
        #[serde(skip_serializing_if = "Option::is_none")]
        var: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stddev: Option<f64>,
        /// A proportion (the fraud rate of a cohort) with its Wilson 95 % interval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<Estimate>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub group: Vec<String>,
    pub cell: Cell,
}

/// The buyer's result: a typed table that renders as text and JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultTable {
    pub template: String,
    pub measure: Option<String>,
    pub aggregates: Vec<Aggregate>,
    pub group_by: Vec<String>,
    pub rows: Vec<ResultRow>,
    pub min_cohort: u64,
    /// ε of the Laplace noise added, when differential privacy was applied.
    pub epsilon: Option<f64>,
    /// The model a `fraud_model` or `linear_regression` query releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
}

impl ResultTable {
    /// Renders the table as aligned text.
    #[must_use]
    #[allow(clippy::too_many_lines)] // one column per aggregate
    pub fn render(&self) -> String {
        let mut header: Vec<String> = self.group_by.clone();
        header.push("count".into());
        let measure = self.measure.clone().unwrap_or_default();
        for a in &self.aggregates {
            match a {
                Aggregate::Count => {}
                Aggregate::Sum => header.push(format!("sum({measure})")),
                Aggregate::Avg => {
                    header.push(format!("avg({measure})"));
                    header.push("95% CI".into());
                }
                Aggregate::Var => header.push(format!("var({measure})")),
                Aggregate::Stddev => header.push(format!("stddev({measure})")),
            }
        }
        let rates = self
            .rows
            .iter()
            .any(|r| matches!(r.cell, Cell::Released { rate: Some(_), .. }));
        if rates {
            header.push(format!("count({measure})"));
            header.push(format!("rate({measure})"));
            header.push("95% CI (Wilson)".into());
        }
        let mut lines = vec![header];
        for row in &self.rows {
            let mut line = row.group.clone();
            match &row.cell {
                Cell::Suppressed { reason } => {
                    line.push(format!("suppressed ({reason})"));
                }
                Cell::Released {
                    count,
                    sum,
                    avg,
                    var,
                    stddev,
                    rate,
                } => {
                    line.push(if self.epsilon.is_some() {
                        format!("{count:.1}")
                    } else {
                        format!("{count:.0}")
                    });
                    if let Some(r) = rate {
                        line.push(sum.map_or("-".into(), |v| format!("{v:.0}")));
                        line.push(format!("{:.4}", r.value));
                        line.push(
                            r.ci95
                                .map_or("-".into(), |(lo, hi)| format!("[{lo:.4}, {hi:.4}]")),
                        );
                    }
                    for a in &self.aggregates {
                        match a {
                            Aggregate::Count => {}
                            Aggregate::Sum => {
                                line.push(sum.map_or("-".into(), |v| format!("{v:.2}")));
                            }
                            Aggregate::Avg => {
                                line.push(
                                    avg.as_ref()
                                        .map_or("-".into(), |e| format!("{:.2}", e.value)),
                                );
                                line.push(
                                    avg.as_ref()
                                        .and_then(|e| e.ci95)
                                        .map_or("-".into(), |(lo, hi)| {
                                            format!("[{lo:.2}, {hi:.2}]")
                                        }),
                                );
                            }
                            Aggregate::Var => {
                                line.push(var.map_or("-".into(), |v| format!("{v:.2}")));
                            }
                            Aggregate::Stddev => {
                                line.push(stddev.map_or("-".into(), |v| format!("{v:.2}")));
                            }
                        }
                    }
                }
            }
            lines.push(line);
        }
        let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                lines
                    .iter()
                    .filter_map(|l| l.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (n, line) in lines.iter().enumerate() {
            let cells: Vec<String> = line
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            if n == 0 {
                let _ = writeln!(
                    out,
                    "{}",
                    widths
                        .iter()
                        .map(|w| "-".repeat(*w))
                        .collect::<Vec<_>>()
                        .join("  ")
                );
            }
        }
        if let Some(model) = &self.model {
            out.push('\n');
            model.render(&mut out);
            out.push('\n');
        }
        let _ = write!(out, "cells under {} rows suppressed", self.min_cohort);
        if let Some(e) = self.epsilon {
            let _ = write!(out, "; Laplace noise at ε = {e}");
        }
        out
    }
}
