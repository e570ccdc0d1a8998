//! `summary` of a sweep (or of a folder of runs): the paper's table as the table screen shows
//! it, one row per depth and swept option, as a table, CSV, Markdown (for a README) or JSON.

use super::tabular::{self, Column, CsvColumn, Tabular, or_empty};
use crate::cli::TableFormat;
use crate::frontend::board::{Board, RowFigures};
use anyhow::Result;

/// The board's rows in one of the output formats, ending with a newline.
pub fn render(board: &Board, format: TableFormat) -> Result<String> {
    let rows: Vec<RowFigures> = board.rows().iter().map(|r| r.figures(board)).collect();
    let table = tabular::render(&rows, format)?;
    Ok(match format {
        TableFormat::Markdown => table + &source_note(&rows, "\n"),
        TableFormat::Table => table + &source_note(&rows, ""),
        TableFormat::Csv | TableFormat::Json => table,
    })
}

/// Where a plain net's reference figures come from, under a table that shows one.
fn source_note(rows: &[RowFigures], before: &str) -> String {
    match rows.iter().find_map(|r| r.reimpl_source) {
        Some(source) => format!(
            "{before}Plain nets: the paper gives no CIFAR-10 figure (only \"plain-110 is higher than 60%\"); \
             reimpl. is {source} ({}), test error with training error.\n",
            crate::reference::DEGRADATION_RECIPE
        ),
        None => String::new(),
    }
}

impl Tabular for RowFigures {
    fn columns() -> &'static [Column<RowFigures>] {
        &COLUMNS
    }

    fn csv_columns() -> &'static [CsvColumn<RowFigures>] {
        &CSV_COLUMNS
    }
}

/// The table as the table screen shows it; all left-aligned, as its cells mix numbers and words.
static COLUMNS: [Column<RowFigures>; 10] = [
    Column { header: "network", right: false, cell: |r| r.label.clone() },
    Column { header: "params", right: false, cell: |r| r.params.map(millions).unwrap_or_else(|| "-".into()) },
    Column { header: "runs", right: false, cell: |r| r.runs.to_string() },
    Column {
        header: "done/running/pending/failed",
        right: false,
        cell: |r| format!("{}/{}/{}/{}", r.done, r.running, r.pending, r.failed),
    },
    Column { header: "final err % (mean ± std)", right: false, cell: finals },
    Column { header: "final train err %", right: false, cell: |r| pct(r.final_train_mean) },
    Column { header: "best of N %", right: false, cell: |r| if r.done > 1 { pct(r.final_best) } else { "-".into() } },
    Column { header: "paper %", right: false, cell: |r| pct(r.paper_error) },
    Column { header: "reimpl. %", right: false, cell: reimpl },
    Column { header: "in progress", right: false, cell: in_progress },
];

/// Full-precision numbers under machine-friendly names.
static CSV_COLUMNS: [CsvColumn<RowFigures>; 18] = [
    ("network", |r| r.label.clone()),
    ("depth", |r| or_empty(r.depth)),
    ("params", |r| or_empty(r.params)),
    ("runs", |r| r.runs.to_string()),
    ("done", |r| r.done.to_string()),
    ("running", |r| r.running.to_string()),
    ("pending", |r| r.pending.to_string()),
    ("failed", |r| r.failed.to_string()),
    ("final_mean", |r| or_empty(r.final_mean)),
    ("final_std", |r| or_empty(r.final_std)),
    ("final_best", |r| or_empty(r.final_best)),
    ("final_train_mean", |r| or_empty(r.final_train_mean)),
    ("paper_error", |r| or_empty(r.paper_error)),
    ("reimpl_error", |r| or_empty(r.reimpl_error)),
    ("reimpl_train_error", |r| or_empty(r.reimpl_train_error)),
    ("current_error", |r| or_empty(r.current_error)),
    ("images_per_sec", |r| or_empty(r.images_per_sec)),
    ("eta_secs", |r| or_empty(r.eta_secs)),
];

/// `0.27M`, `1.7M`: parameters as the paper's Table 6 writes them.
fn millions(params: u64) -> String {
    let m = params as f64 / 1e6;
    if m < 1.0 { format!("{m:.2}M") } else { format!("{m:.1}M") }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

/// `15.02 ± 0.31 (n=3)`: the completed runs' final errors.
fn finals(r: &RowFigures) -> String {
    match (r.final_mean, r.final_std) {
        (Some(m), Some(s)) => format!("{m:.2} ± {s:.2} (n={})", r.done),
        (Some(m), None) => format!("{m:.2} (n=1)"),
        _ => "-".into(),
    }
}

/// A reimplementation's error, with its source and training error where it is a plain net's.
fn reimpl(r: &RowFigures) -> String {
    match (r.reimpl_source, r.reimpl_train_error) {
        (Some(source), Some(train)) => format!("{} ({source}; train {train:.2})", pct(r.reimpl_error)),
        _ => pct(r.reimpl_error),
    }
}

/// `iter 400/1,000, test err 61.20%, 850 img/s, ETA 4m05s`: the least advanced running run, or
/// where the runs stopped when none runs (`stopped at iter 400/1,000, test err 61.20%`).
fn in_progress(r: &RowFigures) -> String {
    match (r.progress, r.current_error) {
        (Some((i, n)), e) => {
            let eta = r.eta_secs.map(|s| format!(", ETA {}", crate::format::eta(s))).unwrap_or_default();
            let speed = r.images_per_sec.map(|v| format!(", {v:.0} img/s")).unwrap_or_default();
            let err = e.map(|e| format!(", test err {e:.2}%")).unwrap_or_default();
            let stopped = if r.stopped { "stopped at " } else { "" };
            let (i, n) = (crate::format::group_digits(i), crate::format::group_digits(n));
            format!("{stopped}iter {i}/{n}{err}{speed}{eta}")
        }
        _ => "-".into(),
    }
}
