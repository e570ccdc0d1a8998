//! `summary` of a sweep (or of a folder of runs): the paper's table as the table screen shows
//! it, one row per depth and swept option, as a table, CSV, Markdown (for a README) or JSON.

use crate::cli::TableFormat;
use crate::frontend::board::{Board, RowFigures};
use anyhow::{Context, Result};

/// The board's rows in one of the output formats, ending with a newline.
pub fn render(board: &Board, format: TableFormat) -> Result<String> {
    let rows: Vec<RowFigures> = board.rows().iter().map(|r| r.figures(board)).collect();
    Ok(match format {
        TableFormat::Json => serde_json::to_string_pretty(&rows).context("writing JSON")? + "\n",
        TableFormat::Csv => csv(&rows)?,
        TableFormat::Markdown => markdown(&rows) + &source_note(&rows, "\n"),
        TableFormat::Table => text(&rows) + &source_note(&rows, ""),
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

const COLUMNS: usize = 9;

const HEADERS: [&str; COLUMNS] = [
    "network",
    "runs",
    "done/running/pending/failed",
    "final err % (mean ± std)",
    "final train err %",
    "best of N %",
    "paper %",
    "reimpl. %",
    "running now",
];

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

fn cells(r: &RowFigures) -> [String; COLUMNS] {
    let finals = match (r.final_mean, r.final_std) {
        (Some(m), Some(s)) => format!("{m:.2} ± {s:.2} (n={})", r.done),
        (Some(m), None) => format!("{m:.2} (n=1)"),
        _ => "-".into(),
    };
    let now = match (r.progress, r.current_error) {
        (Some((i, n)), e) => {
            let eta = r.eta_secs.map(|s| format!(", ETA {}", crate::format::secs(s))).unwrap_or_default();
            let err = e.map(|e| format!(", test err {e:.2}%")).unwrap_or_default();
            format!("iter {}/{}{err}{eta}", crate::format::group_digits(i), crate::format::group_digits(n))
        }
        _ => "-".into(),
    };
    [
        r.label.clone(),
        r.runs.to_string(),
        format!("{}/{}/{}/{}", r.done, r.running, r.pending, r.failed),
        finals,
        pct(r.final_train_mean),
        if r.done > 1 { pct(r.final_best) } else { "-".into() },
        pct(r.paper_error),
        match (r.reimpl_source, r.reimpl_train_error) {
            (Some(source), Some(train)) => format!("{} ({source}; train {train:.2})", pct(r.reimpl_error)),
            _ => pct(r.reimpl_error),
        },
        now,
    ]
}

fn text(rows: &[RowFigures]) -> String {
    let all: Vec<[String; COLUMNS]> = rows.iter().map(cells).collect();
    let widths: Vec<usize> = (0..COLUMNS)
        .map(|i| all.iter().map(|r| r[i].chars().count()).chain([HEADERS[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(s, &w)| format!("{s:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(HEADERS.to_vec());
    for r in &all {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

fn markdown(rows: &[RowFigures]) -> String {
    let mut out = format!("| {} |\n|{}|\n", HEADERS.join(" | "), [":---"; COLUMNS].join("|"));
    for r in rows {
        out += &format!("| {} |\n", cells(r).map(|c| c.replace('|', "\\|")).join(" | "));
    }
    out
}

/// Full-precision numbers under machine-friendly names.
fn csv(rows: &[RowFigures]) -> Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record([
        "network",
        "depth",
        "runs",
        "done",
        "running",
        "pending",
        "failed",
        "final_mean",
        "final_std",
        "final_best",
        "final_train_mean",
        "paper_error",
        "reimpl_error",
        "reimpl_train_error",
        "current_error",
        "eta_secs",
    ])?;
    let s = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        w.write_record([
            r.label.clone(),
            r.depth.map(|d| d.to_string()).unwrap_or_default(),
            r.runs.to_string(),
            r.done.to_string(),
            r.running.to_string(),
            r.pending.to_string(),
            r.failed.to_string(),
            s(r.final_mean),
            s(r.final_std),
            s(r.final_best),
            s(r.final_train_mean),
            s(r.paper_error),
            s(r.reimpl_error),
            s(r.reimpl_train_error),
            s(r.current_error),
            s(r.eta_secs),
        ])?;
    }
    String::from_utf8(w.into_inner().context("writing CSV")?).context("CSV is UTF-8")
}
