//! One writer of tables in `--format`'s four formats, for every table `summary` prints (of runs,
//! and of a sweep as the paper's table): aligned text and Markdown for people, CSV for
//! spreadsheets and pandas, JSON of the rows themselves.

use crate::cli::TableFormat;
use anyhow::{Context, Result};
use serde::Serialize;

/// A column people read: its header, whether its cells are right-aligned (numbers are), and how
/// a row fills it.
pub(super) struct Column<R> {
    pub header: &'static str,
    pub right: bool,
    pub cell: fn(&R) -> String,
}

/// A CSV column: a machine-friendly name, and the row's plain value with full precision (empty
/// when unknown).
pub(super) type CsvColumn<R> = (&'static str, fn(&R) -> String);

/// A row type that can be printed as a table: its columns for people and for machines.
pub(super) trait Tabular: Serialize + Sized + 'static {
    fn columns() -> &'static [Column<Self>];
    fn csv_columns() -> &'static [CsvColumn<Self>];
}

/// The rows in `format`, ending with a newline.
pub(super) fn render<R: Tabular>(rows: &[R], format: TableFormat) -> Result<String> {
    Ok(match format {
        TableFormat::Table => text(R::columns(), &cells(rows)),
        TableFormat::Markdown => markdown(R::columns(), &cells(rows)),
        TableFormat::Csv => csv(rows)?,
        TableFormat::Json => serde_json::to_string_pretty(rows).context("writing JSON")? + "\n",
    })
}

/// A value, or nothing: a CSV cell.
pub(super) fn or_empty<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A value, or `-`: a cell people read.
pub(super) fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

fn cells<R: Tabular>(rows: &[R]) -> Vec<Vec<String>> {
    rows.iter().map(|r| R::columns().iter().map(|c| (c.cell)(r)).collect()).collect()
}

/// Columns padded to their widest cell, two spaces apart, without trailing blanks.
fn text<R>(columns: &[Column<R>], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|r| r[i].chars().count()).chain([c.header.chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(columns.iter().zip(&widths))
            .map(|(s, (c, &w))| if c.right { format!("{s:>w$}") } else { format!("{s:<w$}") })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&mut columns.iter().map(|c| c.header));
    for row in rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

fn markdown<R>(columns: &[Column<R>], rows: &[Vec<String>]) -> String {
    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    let aligns: Vec<&str> = columns.iter().map(|c| if c.right { "---:" } else { ":---" }).collect();
    let mut out = format!("| {} |\n|{}|\n", headers.join(" | "), aligns.join("|"));
    for row in rows {
        let escaped: Vec<String> = row.iter().map(|s| s.replace('|', "\\|")).collect();
        out += &format!("| {} |\n", escaped.join(" | "));
    }
    out
}

fn csv<R: Tabular>(rows: &[R]) -> Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(R::csv_columns().iter().map(|(name, _)| name))?;
    for r in rows {
        w.write_record(R::csv_columns().iter().map(|(_, value)| value(r)))?;
    }
    String::from_utf8(w.into_inner().context("writing CSV")?).context("CSV is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Fruit {
        name: &'static str,
        grams: Option<u32>,
    }

    impl Tabular for Fruit {
        fn columns() -> &'static [Column<Fruit>] {
            static COLUMNS: [Column<Fruit>; 2] = [
                Column { header: "fruit", right: false, cell: |f| f.name.to_string() },
                Column { header: "g ± 1", right: true, cell: |f| or_dash(f.grams.map(|g| g.to_string())) },
            ];
            &COLUMNS
        }
        fn csv_columns() -> &'static [CsvColumn<Fruit>] {
            static CSV: [CsvColumn<Fruit>; 2] = [("name", |f| f.name.to_string()), ("grams", |f| or_empty(f.grams))];
            &CSV
        }
    }

    fn fruit() -> [Fruit; 2] {
        [Fruit { name: "fig", grams: Some(50) }, Fruit { name: "a|b", grams: None }]
    }

    #[test]
    fn text_aligns_numbers_right_and_counts_characters_not_bytes() {
        let text = render(&fruit(), TableFormat::Table).unwrap();
        assert_eq!(text, "fruit  g ± 1\nfig       50\na|b        -\n");
    }

    #[test]
    fn markdown_marks_alignment_and_escapes_bars() {
        let text = render(&fruit(), TableFormat::Markdown).unwrap();
        assert_eq!(text, "| fruit | g ± 1 |\n|:---|---:|\n| fig | 50 |\n| a\\|b | - |\n");
    }

    #[test]
    fn csv_and_json_keep_plain_values() {
        assert_eq!(render(&fruit(), TableFormat::Csv).unwrap(), "name,grams\nfig,50\na|b,\n");
        let json = render(&fruit(), TableFormat::Json).unwrap();
        assert!(json.ends_with("]\n") && json.contains("\"grams\": null"), "{json}");
    }
}
