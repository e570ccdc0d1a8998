//! `resnet-tui summary`: one row per run (depth, parameters, iterations, best and final error,
//! the paper's and a reimplementation's error, training time, device, the CPU and speed of its
//! newest start) as a table, CSV, Markdown or JSON, whose JSON also lists every start.

use super::tabular::{self, Column, CsvColumn, Tabular, or_dash, or_empty};
use crate::cli::{SummaryArgs, TableFormat};
use crate::frontend::history::History;
use crate::protocol::{EndReason, EvalSet, Precision, Shortcut};
use crate::reference;
use crate::runlog::RunLog;
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// What a run is remembered by, derived from its log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    pub name: String,
    pub depth: Option<u32>,
    pub shortcut: Option<Shortcut>,
    pub params: Option<u64>,
    /// Iterations run.
    pub iters: u64,
    /// Iterations the run was set up for.
    pub planned_iters: Option<u64>,
    pub epochs: Option<f64>,
    /// What the errors were measured on (test, or a validation split).
    pub eval_set: Option<EvalSet>,
    /// Errors in percent.
    pub best_error: Option<f64>,
    pub best_iter: Option<u64>,
    pub final_error: Option<f64>,
    pub paper_error: Option<f64>,
    pub reimpl_error: Option<f64>,
    /// Training seconds, pauses excluded.
    pub train_secs: Option<f64>,
    pub device: Option<String>,
    pub precision: Option<Precision>,
    /// Why it ran in that precision: `--precision auto`'s reason, with its figures; `None` when
    /// the precision was named.
    pub precision_why: Option<String>,
    /// Iterations trained in each precision, the most first: more than one entry for a run
    /// resumed where `auto` chose the other precision.
    pub precision_iters: Vec<(Precision, u64)>,
    /// How the run ended; `None` (written "unfinished"): killed, or still running.
    #[serde(serialize_with = "end_name")]
    pub status: Option<EndReason>,
    /// 1, plus one per resume.
    pub starts: usize,
    /// Recipe changes made on purpose, or by `--precision auto` on another machine: `lr 0.1 ->
    /// 0.05 at 3000`, `precision "fp32" -> "bf16" at 5000`.
    pub changes: Vec<String>,
    /// Each start that still counts, in iteration order: what trained from where, and how fast.
    pub stretches: Vec<StartSummary>,
}

/// One start of a run: the iteration it trained from and how many it trained, in what
/// precision, by which build on which CPU, at how many images a second (the median of its
/// steps' rates, evaluations excluded).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StartSummary {
    pub from: u64,
    pub iters: u64,
    pub precision: Precision,
    pub build: Option<String>,
    pub cpu: Option<String>,
    pub images_per_sec: Option<f64>,
}

impl RunSummary {
    /// The newest start: what trains the run now, or trained it last.
    fn newest(&self) -> Option<&StartSummary> {
        self.stretches.last()
    }
}

/// Each start that still counts, with the iterations it trained.
fn starts(h: &History) -> Vec<StartSummary> {
    h.stretch_iters()
        .map(|(s, iters)| StartSummary {
            from: s.from,
            iters,
            precision: s.precision,
            build: s.build.clone(),
            cpu: s.cpu.clone(),
            images_per_sec: h.median_images_per_sec(s.from, s.from + iters),
        })
        .collect()
}

/// Summarises a log read with `runlog::read_strict`. A log killed before its run started is
/// named "?": use [`summarize_named`] to give it a better name.
pub fn summarize(log: &RunLog) -> RunSummary {
    summarize_named(log, "?")
}

/// Summarises a log; `fallback_name` names a run whose log never said its name.
pub fn summarize_named(log: &RunLog, fallback_name: &str) -> RunSummary {
    let h = History::from_events(&log.events);
    let info = h.info.as_ref();
    let depth = info.map(|i| i.config.depth.get());
    let paper =
        info.and_then(|i| reference::paper_result_for(i.config.depth.get(), i.config.shortcut == Shortcut::None));
    let best = h.best();
    let finished = h.finished.as_ref();
    RunSummary {
        name: info.map(|i| i.name.clone()).unwrap_or_else(|| fallback_name.to_string()),
        depth,
        shortcut: info.map(|i| i.config.shortcut),
        params: info.map(|i| i.params),
        iters: h.iters(),
        planned_iters: info.map(|i| i.config.iters),
        epochs: h.steps.last().map(|s| s.epoch),
        eval_set: h.evals.last().map(|e| e.set).or(info.map(|i| i.eval_set)),
        best_error: best.map(|b| b.0),
        best_iter: best.map(|b| b.1),
        final_error: h.last_eval().map(|e| e.error).or(finished.and_then(|f| f.final_error)),
        paper_error: paper.map(|p| p.paper_error),
        reimpl_error: paper.and_then(|p| p.reimpl_error),
        train_secs: h.train_secs(),
        device: info.map(|i| i.device.to_string()),
        precision: info.map(|i| i.config.precision),
        precision_why: info.and_then(|i| i.config.precision_why.clone()),
        precision_iters: h.precision_shares(),
        status: h.end(),
        starts: h.starts,
        changes: h
            .changes
            .iter()
            // `auto`'s reason is no recipe: its measured figures differ at every resume (the log
            // keeps them); the precision it chose is a change, and the precision column's shares.
            .filter(|(_, c)| c.field != "precision_why")
            .map(|(at, c)| format!("{} at {at}", crate::frontend::describe::change_text(c)))
            .collect(),
        stretches: starts(&h),
    }
}

/// Reads and summarises one run directory or log, printing skipped lines as warnings.
pub fn summarize_path(run: &Path) -> Result<RunSummary, crate::runlog::LogError> {
    let log = crate::report::load(run)?;
    Ok(summarize_named(&log, &crate::report::fallback_name(run)))
}

/// The summary command: prints the runs in the asked format.
pub fn run(args: &SummaryArgs) -> Result<()> {
    // A sweep, or a folder of runs: the paper's table, one row per network.
    if let [dir] = args.runs.as_slice()
        && is_table(dir)
    {
        let board = crate::frontend::board::Board::open(dir)?;
        print!("{}", super::table::render(&board, args.format)?);
        return Ok(());
    }
    let runs = args.runs.iter().map(|r| summarize_path(r)).collect::<Result<Vec<_>, _>>()?;
    print!("{}", render(&runs, args.format)?);
    Ok(())
}

/// A folder that is not one run but holds runs: a sweep, or a `--runs-dir`.
fn is_table(dir: &Path) -> bool {
    dir.is_dir()
        && (dir.join(crate::sweep::SWEEP_FILE).is_file()
            || (!dir.join(crate::rundir::CONFIG_NAME).exists() && !crate::runlog::log_path(dir).exists()))
}

/// The runs in one of the output formats, ending with a newline.
pub fn render(runs: &[RunSummary], format: TableFormat) -> Result<String> {
    tabular::render(runs, format)
}

impl Tabular for RunSummary {
    fn columns() -> &'static [Column<RunSummary>] {
        &COLUMNS
    }

    fn csv_columns() -> &'static [CsvColumn<RunSummary>] {
        &CSV_COLUMNS
    }
}

static COLUMNS: [Column<RunSummary>; 14] = [
    Column { header: "run", right: false, cell: |r| r.name.clone() },
    Column { header: "depth", right: true, cell: |r| or_dash(r.depth.map(|d| d.to_string())) },
    Column { header: "params", right: true, cell: |r| or_dash(r.params.map(crate::format::group_digits)) },
    Column { header: "iters", right: true, cell: |r| crate::format::group_digits(r.iters) },
    // The final error is the paper's quantity; the best is chosen on the evaluated set.
    Column { header: "final err %", right: true, cell: final_cell },
    Column { header: "best seen %", right: true, cell: |r| percent(r.best_error, r.eval_set) },
    Column { header: "paper %", right: true, cell: |r| percent(r.paper_error, None) },
    Column { header: "reimpl. %", right: true, cell: |r| percent(r.reimpl_error, None) },
    Column { header: "train time", right: true, cell: |r| or_dash(r.train_secs.map(crate::format::secs)) },
    Column { header: "device", right: false, cell: |r| or_dash(r.device.clone()) },
    // Where and how fast the newest start trains (each start's are in the JSON).
    Column { header: "cpu", right: false, cell: |r| or_dash(r.newest().and_then(|s| s.cpu.clone())) },
    Column { header: "img/s", right: true, cell: |r| or_dash(newest_speed(r).map(|v| format!("{v:.0}"))) },
    Column { header: "precision", right: false, cell: precision_cell },
    Column { header: "status", right: false, cell: status },
];

/// Plain numbers with full precision and machine-friendly names: for spreadsheets and pandas.
static CSV_COLUMNS: [CsvColumn<RunSummary>; 23] = [
    ("run", |r| r.name.clone()),
    ("depth", |r| or_empty(r.depth)),
    ("shortcut", |r| or_empty(r.shortcut.map(lower_name))),
    ("params", |r| or_empty(r.params)),
    ("iters", |r| r.iters.to_string()),
    ("planned_iters", |r| or_empty(r.planned_iters)),
    ("epochs", |r| or_empty(r.epochs)),
    ("eval_set", |r| or_empty(r.eval_set.map(lower_name))),
    ("best_error", |r| or_empty(r.best_error)),
    ("best_iter", |r| or_empty(r.best_iter)),
    ("final_error", |r| or_empty(r.final_error)),
    ("paper_error", |r| or_empty(r.paper_error)),
    ("reimpl_error", |r| or_empty(r.reimpl_error)),
    ("train_secs", |r| or_empty(r.train_secs)),
    ("device", |r| or_empty(r.device.as_ref())),
    ("cpu", |r| or_empty(r.newest().and_then(|s| s.cpu.as_ref()))),
    ("images_per_sec", |r| or_empty(newest_speed(r))),
    ("precision", |r| or_empty(r.precision.map(lower_name))),
    ("precision_why", |r| or_empty(r.precision_why.as_ref())),
    ("precision_iters", |r| r.precision_iters.iter().map(|&(p, n)| format!("{p}:{n}")).collect::<Vec<_>>().join(";")),
    ("status", |r| status_name(r.status).to_string()),
    ("starts", |r| r.starts.to_string()),
    ("changes", |r| r.changes.join("; ")),
];

fn newest_speed(r: &RunSummary) -> Option<f64> {
    r.newest().and_then(|s| s.images_per_sec)
}

/// `a`, `validation`, `bf16`: a value's variant name in lower case, as the CSV writes it.
fn lower_name(v: impl std::fmt::Debug) -> String {
    format!("{v:?}").to_lowercase()
}

/// The precision that ran, marked "(auto)" where `--precision auto` chose it (its reason is in
/// the JSON and CSV, and in the run's first line).
fn precision_cell(r: &RunSummary) -> String {
    let Some(p) = r.precision else { return "-".into() };
    let name = mixed_precisions(r).unwrap_or_else(|| p.to_string());
    if r.precision_why.is_some() { format!("{name} (auto)") } else { name }
}

/// `bf16 72 % / fp32 28 %` for a run whose steps were trained in more than one precision, by
/// share of its iterations; `None` for a run trained in one.
fn mixed_precisions(r: &RunSummary) -> Option<String> {
    let total: u64 = r.precision_iters.iter().map(|&(_, n)| n).sum();
    if r.precision_iters.len() < 2 || total == 0 {
        return None;
    }
    let shares: Vec<String> =
        r.precision_iters.iter().map(|&(p, n)| format!("{p} {:.0} %", 100.0 * n as f64 / total as f64)).collect();
    Some(shares.join(" / "))
}

/// An error in percent; a validation-set error is marked so it is not taken for a test error.
fn percent(e: Option<f64>, set: Option<EvalSet>) -> String {
    match (e, set) {
        (Some(e), Some(EvalSet::Validation)) => format!("{e:.2} (val)"),
        (Some(e), _) => format!("{e:.2}"),
        (None, _) => "-".into(),
    }
}

/// The last evaluation's error; only a completed run's is the paper's final one, so any other
/// run's is marked as the latest (the machine formats keep the bare number and the status).
fn final_cell(r: &RunSummary) -> String {
    let cell = percent(r.final_error, r.eval_set);
    match (r.final_error, r.status) {
        (None, _) | (_, Some(EndReason::Completed)) => cell,
        (Some(_), _) if cell.ends_with(')') => cell.replace(')', ", latest)"),
        (Some(_), _) => format!("{cell} (latest)"),
    }
}

/// How a run's end reads in a table: its reason, or "unfinished".
pub fn status_name(status: Option<EndReason>) -> &'static str {
    match status {
        Some(EndReason::Completed) => "completed",
        Some(EndReason::Stopped) => "stopped",
        Some(EndReason::Switched) => "switched",
        Some(EndReason::Diverged) => "diverged",
        None => "unfinished",
    }
}

fn end_name<S: serde::Serializer>(status: &Option<EndReason>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status_name(*status))
}

fn status(r: &RunSummary) -> String {
    let mut notes = Vec::new();
    if r.starts > 1 {
        notes.push(format!("{} starts", r.starts));
    }
    if !r.changes.is_empty() {
        notes.push(format!("recipe changed: {}", r.changes.join(", ")));
    }
    match notes.is_empty() {
        true => status_name(r.status).to_string(),
        false => format!("{} ({})", status_name(r.status), notes.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, started, step};
    use crate::protocol::{Event, Summary};

    fn log(events: Vec<Event>) -> RunLog {
        RunLog { events, warnings: Vec::new() }
    }

    #[test]
    fn a_finished_run_reports_its_numbers_and_the_papers() {
        let summary = Summary {
            reason: EndReason::Completed,
            iters: 4,
            final_error: Some(30.0),
            best_error: Some(25.0),
            best_iter: Some(2),
            train_secs: 42.0,
        };
        let r = summarize(&log(vec![
            started(20, 0),
            step(1, 90.0),
            step(2, 80.0),
            eval(2, 25.0),
            step(3, 70.0),
            step(4, 60.0),
            eval(4, 30.0),
            Event::Finished { time: 5.0, summary },
        ]));
        assert_eq!((r.name.as_str(), r.depth, r.params, r.iters), ("run-resnet20", Some(20), Some(269_722), 4));
        assert_eq!((r.best_error, r.best_iter, r.final_error), (Some(25.0), Some(2), Some(30.0)));
        assert_eq!((r.paper_error, r.reimpl_error), (Some(8.75), Some(8.57)));
        assert_eq!((r.train_secs, r.status), (Some(42.0), Some(EndReason::Completed)));
    }

    #[test]
    fn a_killed_run_is_summarised_from_its_last_events() {
        let r = summarize(&log(vec![started(44, 0), step(1, 90.0), eval(1, 80.0), step(2, 85.0)]));
        assert_eq!((r.iters, r.final_error, r.status), (2, Some(80.0), None));
        assert_eq!(r.train_secs, Some(1.0));
        assert_eq!((r.paper_error, r.reimpl_error), (Some(7.17), Some(7.20)));
    }

    #[test]
    fn a_log_without_a_start_still_summarises() {
        let r = summarize_named(&log(vec![]), "dir");
        assert_eq!((r.name.as_str(), r.depth, r.iters, r.status), ("dir", None, 0, None));
        let text = render(&[r], TableFormat::Table).unwrap();
        assert!(text.lines().nth(1).unwrap().starts_with("dir"), "{text}");
    }

    #[test]
    fn validation_errors_are_marked() {
        assert_eq!(percent(Some(7.5), Some(EvalSet::Validation)), "7.50 (val)");
    }

    #[test]
    fn only_a_completed_runs_last_error_reads_as_final() {
        let killed = summarize(&log(vec![started(20, 0), step(1, 90.0), eval(1, 80.0)]));
        assert_eq!(final_cell(&killed), "80.00 (latest)");
        let mut on_val = killed.clone();
        on_val.eval_set = Some(EvalSet::Validation);
        assert_eq!(final_cell(&on_val), "80.00 (val, latest)");
        let done = RunSummary { status: Some(EndReason::Completed), ..killed };
        assert_eq!(final_cell(&done), "80.00");
        let text = render(&[done.clone(), RunSummary { status: None, ..done }], TableFormat::Markdown).unwrap();
        assert!(text.contains("| 80.00 |") && text.contains("| 80.00 (latest) |"), "{text}");
    }

    #[test]
    fn the_precision_column_says_which_ran_and_marks_autos_choice() {
        let named = summarize(&log(vec![started(20, 0), step(1, 90.0)]));
        assert_eq!((named.precision, precision_cell(&named).as_str()), (Some(Precision::Fp32), "fp32"));
        let chose = RunSummary {
            precision: Some(Precision::Bf16),
            precision_why: Some("auto: bf16: bf16 856 vs fp32 547 img/s, 1.56x".into()),
            ..named
        };
        assert_eq!(precision_cell(&chose), "bf16 (auto)");
        let csv = render(&[chose], TableFormat::Csv).unwrap();
        assert!(csv.contains(r#"bf16,"auto: bf16: bf16 856 vs fp32 547 img/s, 1.56x""#), "{csv}");
    }

    #[test]
    fn a_run_trained_in_two_precisions_shows_each_share_never_one_precision() {
        let mut bf16 = crate::frontend::history::tests::info(20, 72);
        bf16.config.precision = Precision::Bf16;
        let resumed = Event::RunStarted { time: 1.0, run: Box::new(bf16) };
        let r = summarize(&log(vec![started(20, 0), step(72, 90.0), resumed, step(100, 80.0)]));
        assert_eq!(r.precision_iters, [(Precision::Fp32, 72), (Precision::Bf16, 28)]);
        assert_eq!(precision_cell(&r), "fp32 72 % / bf16 28 %");
        let csv = render(&[r], TableFormat::Csv).unwrap();
        assert!(csv.contains(",fp32:72;bf16:28,"), "{csv}");
    }

    #[test]
    fn a_run_resumed_on_another_cpu_shows_where_and_how_fast_its_newest_start_trains() {
        let on = |start: u64, cpu: &str| {
            let mut run = crate::frontend::history::tests::info(20, start);
            run.cpu = Some(cpu.into());
            Event::RunStarted { time: 0.0, run: Box::new(run) }
        };
        let zen4 = "AMD EPYC (family 25 model 17; avx2, avx512f, avx512_bf16)";
        // The test steps log 800 img/s.
        let r = summarize(&log(vec![
            on(0, "Xeon (family 6 model 143; avx2)"),
            step(40, 90.0),
            on(30, zen4),
            step(50, 80.0),
        ]));
        let starts: Vec<(u64, u64, Option<&str>)> =
            r.stretches.iter().map(|s| (s.from, s.iters, s.cpu.as_deref())).collect();
        assert_eq!(starts, [(0, 30, Some("Xeon (family 6 model 143; avx2)")), (30, 20, Some(zen4))]);
        assert_eq!(r.stretches[1].images_per_sec, Some(800.0));
        let text = render(std::slice::from_ref(&r), TableFormat::Table).unwrap();
        let row = text.lines().nth(1).unwrap();
        let after_cpu = row.split(zen4).nth(1).map(|rest| rest.split_whitespace().next());
        assert!(after_cpu == Some(Some("800")) && !row.contains("Xeon"), "{text}");
        let csv = render(std::slice::from_ref(&r), TableFormat::Csv).unwrap();
        assert!(csv.contains(&format!(",\"{zen4}\",800,")), "{csv}");
        let json = render(&[r], TableFormat::Json).unwrap();
        assert!(json.contains("\"from\": 30") && json.contains("Xeon"), "{json}");
        // Before its first step a run has no speed to show.
        let fresh = summarize(&log(vec![started(20, 0)]));
        assert_eq!((fresh.stretches.len(), newest_speed(&fresh)), (1, None));
    }

    #[test]
    fn auto_choosing_again_on_another_machine_lists_the_precision_it_chose_not_its_measured_reason() {
        let mut bf16 = crate::frontend::history::tests::info(20, 72);
        bf16.config.precision = Precision::Bf16;
        let change = |field: &str, from: &str, to: &str| crate::config::ConfigChange {
            field: field.into(),
            from: serde_json::json!(from),
            to: serde_json::json!(to),
        };
        let changes = vec![
            change("precision", "fp32", "bf16"),
            change("precision_why", "auto: fp32: bf16 31 vs fp32 31 img/s", "auto: bf16: bf16 219 vs fp32 117 img/s"),
        ];
        let events = vec![
            started(20, 0),
            step(72, 90.0),
            Event::RunStarted { time: 1.0, run: Box::new(bf16) },
            Event::ConfigChanged { time: 1.0, iter: 72, changes },
            step(100, 80.0),
        ];
        let r = summarize(&log(events));
        assert_eq!(r.changes, [r#"precision "fp32" -> "bf16" at 72"#]);
        assert_eq!(status(&r), r#"unfinished (2 starts; recipe changed: precision "fp32" -> "bf16" at 72)"#);
    }

    #[test]
    fn the_text_table_aligns_its_columns() {
        let a = summarize(&log(vec![started(20, 0), step(1, 90.0), eval(1, 80.0)]));
        let mut b = summarize(&log(vec![started(110, 0), step(1, 90.0), eval(1, 8.0)]));
        b.name = "a-much-longer-run-name".into();
        let text = render(&[a, b], TableFormat::Table).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Where the second cell (depth, right-aligned) ends on each line.
        let depth_end = |l: &str| {
            let start = l.find(char::is_whitespace).unwrap();
            let rest = &l[start..];
            let from = start + rest.find(|c: char| !c.is_whitespace()).unwrap();
            from + l[from..].find(char::is_whitespace).unwrap()
        };
        assert_eq!(lines.len(), 3);
        assert_eq!(depth_end(lines[0]), depth_end(lines[1]), "{text}");
        assert_eq!(depth_end(lines[0]), depth_end(lines[2]), "{text}");
        assert!(lines[2].contains("6.43"), "{text}");
    }
}
