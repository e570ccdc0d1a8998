//! The table of many runs (a sweep, or a folder of runs): each run's log followed as it grows
//! into its own `History`, whether a process trains it now (its lock), and the rows of the
//! paper's table folded from them: runs done / running / pending / failed, the running ones'
//! progress, the final error as mean ± std over seeds with the best of them, and the paper's.
//! The `Board` is that state and `apply` its only change; the `Collector` does the reading
//! (on a thread of its own for the table screen) and sends `Change`s. The table screen,
//! `watch`, and `summary` of a sweep all read this one fold.

use super::history::{History, RunState};
use crate::protocol::{EndReason, Event};
use crate::runlog::{LogTail, RunLog};
use crate::sweep::{self, Member, SweepError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the collector reads the logs and probes the locks.
pub const POLL: Duration = Duration::from_millis(500);
/// How often a plain folder of runs is listed again for runs started since.
const RESCAN: Duration = Duration::from_secs(3);

/// Where one run of the table stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellState {
    /// Not started, or interrupted and waiting to be resumed.
    Pending,
    Running,
    Paused,
    Done,
    /// Diverged or ended by an error; an executor does not start it again by itself.
    Failed,
}

impl CellState {
    pub fn name(self) -> &'static str {
        match self {
            CellState::Pending => "pending",
            CellState::Running => "running",
            CellState::Paused => "paused",
            CellState::Done => "done",
            CellState::Failed => "failed",
        }
    }
}

/// One run the board follows.
pub struct Followed {
    pub member: Member,
    pub history: History,
    /// A process holds the run's lock.
    pub training: bool,
    /// Lines of its log skipped as damaged or partial.
    pub warnings: usize,
    /// Why the local queue could not start its process (its one line): it will not run.
    pub not_started: Option<String>,
}

impl Followed {
    fn new(member: Member) -> Followed {
        Followed { member, history: History::new(), training: false, warnings: 0, not_started: None }
    }

    pub fn state(&self) -> CellState {
        let h = &self.history;
        if self.training {
            return if h.state == RunState::Paused { CellState::Paused } else { CellState::Running };
        }
        if self.not_started.is_some() {
            return CellState::Failed;
        }
        match (&h.state, h.end()) {
            (_, Some(EndReason::Completed)) => CellState::Done,
            (RunState::Failed, _) | (_, Some(EndReason::Diverged)) => CellState::Failed,
            _ => CellState::Pending,
        }
    }

    /// The final error of a completed run, the quantity the paper reports.
    pub fn final_error(&self) -> Option<f64> {
        (self.state() == CellState::Done).then(|| self.history.finished.as_ref().and_then(|f| f.final_error)).flatten()
    }
}

/// What the collector found since it last looked, for `Board::apply`.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A run appeared in a plain folder of runs (it is `Board::runs`' next one).
    Added(Member),
    /// Run `run`'s log grew by these events, and by `warnings` lines skipped as damaged.
    Read { run: usize, events: Vec<Event>, warnings: usize },
    /// A process took (or let go of) run `run`'s lock.
    Training { run: usize, training: bool },
}

/// Every run of a sweep or folder, as far as its logs have been read: plain state, changed
/// only by `apply`. What reads the logs is the `Collector`.
pub struct Board {
    pub dir: PathBuf,
    pub runs: Vec<Followed>,
}

impl Board {
    /// The runs of `dir` with their logs read as they stand now.
    pub fn open(dir: &Path) -> Result<Board, SweepError> {
        Ok(Board::follow(dir)?.0)
    }

    /// The runs of `dir` with their logs read as they stand now, and the collector that goes on
    /// reading them from there.
    pub fn follow(dir: &Path) -> Result<(Board, Collector), SweepError> {
        let members = sweep::members(dir)?;
        let mut collector = Collector {
            dir: dir.to_path_buf(),
            plain_folder: !dir.join(sweep::SWEEP_FILE).exists(),
            last_scan: Instant::now(),
            runs: members.iter().map(|m| Reader::new(&m.dir)).collect(),
        };
        let mut board = Board { dir: dir.to_path_buf(), runs: members.into_iter().map(Followed::new).collect() };
        board.apply_all(collector.read_runs());
        Ok((board, collector))
    }

    /// Folds one change in; true when it added a run (the table's lines change).
    pub fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::Added(member) => {
                self.runs.push(Followed::new(member));
                return true;
            }
            Change::Read { run, events, warnings } => {
                if let Some(r) = self.runs.get_mut(run) {
                    r.warnings += warnings;
                    for event in &events {
                        r.history.push(event);
                    }
                }
            }
            Change::Training { run, training } => {
                if let Some(r) = self.runs.get_mut(run) {
                    r.training = training;
                }
            }
        }
        false
    }

    /// Folds the changes in, in order; true when a run was added.
    pub fn apply_all(&mut self, changes: impl IntoIterator<Item = Change>) -> bool {
        changes.into_iter().fold(false, |added, c| self.apply(c) | added)
    }

    /// The local queue could not start `cell`'s process, for the reason `why`: it counts as
    /// failed (it will not run), not as pending.
    pub fn failed_to_start(&mut self, cell: &str, why: String) {
        if let Some(r) = self.runs.iter_mut().find(|r| r.member.name == cell) {
            r.not_started = Some(why);
        }
    }

    /// The table's rows, in the order their first run appears.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        for (i, run) in self.runs.iter().enumerate() {
            match rows.iter_mut().find(|r| r.group == run.member.group) {
                Some(row) => row.runs.push(i),
                None => rows.push(Row { group: run.member.group.clone(), runs: vec![i] }),
            }
        }
        rows
    }
}

/// Reads a board's logs and probes its locks, and says what changed: the file work of the
/// table, done off the thread that draws it (`spawn`).
pub struct Collector {
    dir: PathBuf,
    plain_folder: bool,
    last_scan: Instant,
    /// One per `Board::runs`, in the same order.
    runs: Vec<Reader>,
}

/// Where the reading of one run's log stands.
struct Reader {
    dir: PathBuf,
    tail: Option<LogTail>,
    training: bool,
}

impl Reader {
    fn new(dir: &Path) -> Reader {
        Reader { dir: dir.to_path_buf(), tail: None, training: false }
    }

    /// Probes the lock and reads what was appended to the log (opening it once it exists).
    fn read(&mut self, run: usize, out: &mut Vec<Change>) {
        let training = crate::rundir::is_training(&self.dir);
        if training != self.training {
            self.training = training;
            out.push(Change::Training { run, training });
        }
        if self.tail.is_none() {
            let path = crate::runlog::log_path(&self.dir);
            if path.is_file() {
                self.tail = LogTail::open(&path).ok();
            }
        }
        let Some(tail) = &mut self.tail else { return };
        let mut read = RunLog::default();
        if tail.poll(&mut read).is_err() {
            // Not a run log (yet): try again from its start next time.
            self.tail = None;
            return;
        }
        if !read.events.is_empty() || !read.warnings.is_empty() {
            out.push(Change::Read { run, events: read.events, warnings: read.warnings.len() });
        }
    }
}

/// Changes waiting for the table beyond these batches hold the collector up (it reads again
/// once they are taken; nothing is lost, the logs stay where they are).
const BATCHES_QUEUED: usize = 4;

impl Collector {
    /// What changed since the last look: runs that appeared in a plain folder (listed again
    /// every `RESCAN`), then each run's lock and log.
    pub fn collect(&mut self, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.plain_folder && now.saturating_duration_since(self.last_scan) >= RESCAN {
            self.last_scan = now;
            if let Ok(found) = sweep::members(&self.dir) {
                for member in found {
                    if !self.runs.iter().any(|r| r.dir == member.dir) {
                        self.runs.push(Reader::new(&member.dir));
                        changes.push(Change::Added(member));
                    }
                }
            }
        }
        changes.extend(self.read_runs());
        changes
    }

    fn read_runs(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for (i, reader) in self.runs.iter_mut().enumerate() {
            reader.read(i, &mut changes);
        }
        changes
    }

    /// Collects every `POLL` on a thread of its own, sending each look's changes; it ends when
    /// the `Collecting` is dropped.
    pub fn spawn(mut self) -> Collecting {
        let (tx, changes) = crossbeam_channel::bounded(BATCHES_QUEUED);
        let (stop, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let _ = std::thread::Builder::new().name("board".into()).spawn(move || {
            // Only a timeout goes on: a dropped `Collecting` disconnects the stop channel.
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(POLL) {
                let batch = self.collect(Instant::now());
                if !batch.is_empty() && tx.send(batch).is_err() {
                    return;
                }
            }
        });
        Collecting { changes, _stop: stop }
    }
}

/// A collector at work on its thread: its changes, in order.
pub struct Collecting {
    pub changes: crossbeam_channel::Receiver<Vec<Change>>,
    _stop: crossbeam_channel::Sender<()>,
}

/// One row of the table: the runs that share everything but the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub group: Vec<(String, String)>,
    /// Indices into `Board::runs`.
    pub runs: Vec<usize>,
}

/// What a row shows, computed from its runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RowFigures {
    /// `ResNet-20`, `ResNet-20, lr 0.05`.
    pub label: String,
    pub depth: Option<u32>,
    /// Trainable parameters, as a started run counted them, or as the network with option A
    /// shortcuts or none has them before any run started; unknown for option B until then.
    pub params: Option<u64>,
    pub runs: usize,
    pub done: usize,
    pub running: usize,
    pub pending: usize,
    pub failed: usize,
    /// The least advanced run in progress: its iteration and planned iterations. The runs in
    /// progress are the running ones, or where none runs, those stopped part way (`stopped`).
    pub progress: Option<(u64, u64)>,
    /// No run of the row trains now: `progress` and `current_error` are where its runs stopped.
    pub stopped: bool,
    /// Seconds until the last running run ends, at their current pace.
    pub eta_secs: Option<f64>,
    /// Mean of the newest evaluation of the runs in progress.
    pub current_error: Option<f64>,
    /// Mean training speed of the running runs now (each one's newest step), in images a second.
    pub images_per_sec: Option<f64>,
    /// Final errors of the completed runs: mean, standard deviation (n - 1), lowest.
    pub final_mean: Option<f64>,
    pub final_std: Option<f64>,
    pub final_best: Option<f64>,
    /// Training error of the completed runs over their last epoch (mean over seeds): Figure 6's
    /// thin line at its end.
    pub final_train_mean: Option<f64>,
    /// The paper's error: ResNets only (it gives no CIFAR figure for a plain net).
    pub paper_error: Option<f64>,
    /// A public reimplementation's error: for a ResNet the paper's table's (reference.rs), for a
    /// plain net the degradation reproduction's (`reimpl_source` names it).
    pub reimpl_error: Option<f64>,
    pub reimpl_train_error: Option<f64>,
    pub reimpl_source: Option<&'static str>,
}

impl Row {
    pub fn figures(&self, board: &Board) -> RowFigures {
        let runs: Vec<&Followed> = self.runs.iter().map(|&i| &board.runs[i]).collect();
        let count = |s: &[CellState]| runs.iter().filter(|r| s.contains(&r.state())).count();
        let active: Vec<&&Followed> =
            runs.iter().filter(|r| matches!(r.state(), CellState::Running | CellState::Paused)).collect();
        let eta_secs = active.iter().filter_map(|r| r.history.eta_secs()).reduce(f64::max);
        let speeds: Vec<f64> = active.iter().filter_map(|r| r.history.current_images_per_sec()).collect();
        // Runs waiting to be resumed part way (a stopped sweep, a snapshot), when none runs.
        let stopped: Vec<&&Followed> =
            runs.iter().filter(|r| r.state() == CellState::Pending && r.history.iters() > 0).collect();
        let in_progress = if active.is_empty() { &stopped } else { &active };
        let progress = in_progress
            .iter()
            .filter_map(|r| Some((r.history.iters(), r.history.info.as_ref()?.config.iters)))
            .min_by(|a, b| (a.0 as f64 / a.1.max(1) as f64).total_cmp(&(b.0 as f64 / b.1.max(1) as f64)));
        let current: Vec<f64> = in_progress.iter().filter_map(|r| r.history.last_eval().map(|e| e.error)).collect();
        let finals: Vec<f64> = runs.iter().filter_map(|r| r.final_error()).collect();
        let (final_mean, final_std) = mean_std(&finals);
        let depth = self.group.iter().find(|(f, _)| f == "depth").and_then(|(_, d)| d.parse().ok());
        let shortcut = self.group.iter().find(|(f, _)| f == "shortcut").map(|(_, v)| v.as_str());
        let plain = shortcut == Some("none");
        let counted = runs.iter().find_map(|r| r.history.info.as_ref().map(|i| i.params));
        let params = counted.or_else(|| {
            let depth = crate::config::Depth::new(depth?).ok()?;
            // Option B's projections add parameters the formula does not count.
            (shortcut != Some("b")).then(|| crate::memory::params(depth))
        });
        let paper = depth.and_then(crate::reference::paper_result).filter(|_| !plain);
        let reproduction = depth.and_then(crate::reference::plain_reproduction).filter(|_| plain);
        let trains: Vec<f64> = runs
            .iter()
            .filter(|r| r.final_error().is_some())
            .filter_map(|r| r.history.last_epoch_train_error())
            .collect();
        RowFigures {
            label: label(&self.group),
            depth,
            params,
            runs: runs.len(),
            done: count(&[CellState::Done]),
            running: active.len(),
            pending: count(&[CellState::Pending]),
            failed: count(&[CellState::Failed]),
            progress,
            stopped: active.is_empty() && progress.is_some(),
            eta_secs,
            current_error: mean_std(&current).0,
            images_per_sec: mean_std(&speeds).0,
            final_mean,
            final_std,
            final_best: finals.iter().copied().reduce(f64::min),
            final_train_mean: mean_std(&trains).0,
            paper_error: paper.map(|p| p.paper_error),
            reimpl_error: paper.and_then(|p| p.reimpl_error).or(reproduction.map(|r| r.test_error)),
            reimpl_train_error: reproduction.map(|r| r.train_error),
            reimpl_source: reproduction.map(|_| crate::reference::DEGRADATION_SOURCE),
        }
    }
}

/// `ResNet-20, lr 0.05, shortcut b`.
pub fn label(group: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    let depth = group.iter().find(|(f, _)| f == "depth").map(|(_, d)| d);
    let plain = group.iter().any(|(f, v)| f == "shortcut" && v == "none");
    if let Some(d) = depth {
        parts.push(format!("{}-{d}", if plain { "Plain" } else { "ResNet" }));
    }
    // The family says what the shortcut none is, and a is the paper's ResNet; b stays spelled out.
    let named = |f: &str, v: &str| f == "depth" || (depth.is_some() && f == "shortcut" && v != "b");
    parts.extend(group.iter().filter(|(f, v)| !named(f, v)).map(|(f, v)| format!("{f} {v}")));
    if parts.is_empty() { "runs".into() } else { parts.join(", ") }
}

/// Mean and sample standard deviation (`None` with fewer than two values).
pub fn mean_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    let n = values.len();
    if n == 0 {
        return (None, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (Some(mean), None);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (Some(mean), Some(var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, started, step, step_at};
    use crate::protocol::Summary;
    use crate::runlog::LogWriter;
    use crate::sweep::{Axis, Sweep};

    fn finished(iters: u64, final_error: f64) -> Event {
        let summary = Summary {
            reason: EndReason::Completed,
            iters,
            final_error: Some(final_error),
            best_error: Some(final_error),
            best_iter: Some(iters),
            train_secs: 10.0,
        };
        Event::Finished { time: 10.0, summary }
    }

    fn write_log(dir: &Path, events: &[Event]) {
        let mut log = LogWriter::open(&dir.join(crate::runlog::LOG_NAME)).unwrap();
        for e in events {
            log.write(e).unwrap();
        }
    }

    fn sweep(dir: &Path) {
        let axes = vec![Axis::read("depth", &["20", "32"]).unwrap(), Axis::read("seed", &["1", "2", "3"]).unwrap()];
        let config: crate::config::RunConfig =
            serde_json::from_str(include_str!("../../tests/data/config.json")).unwrap();
        Sweep::grid(axes)
            .unwrap()
            .create(dir, |cell| {
                let mut config = config.clone();
                cell.settings.iter().try_for_each(|s| s.apply(&mut config)).map(|()| config)
            })
            .unwrap();
    }

    #[test]
    fn rows_count_states_and_fold_final_errors_over_seeds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        sweep(&dir);
        // ResNet-20: two done (8.0 and 9.0), one diverged. ResNet-32: one interrupted, one
        // training now (lock held), one not started.
        write_log(&dir.join("resnet20-seed1"), &[started(20, 0), step(100, 50.0), finished(100, 8.0)]);
        write_log(&dir.join("resnet20-seed2"), &[started(20, 0), finished(100, 9.0)]);
        let diverged = Event::Diverged { time: 3.0, iter: 5, loss: f64::NAN, last_good: None, layer: None };
        write_log(&dir.join("resnet20-seed3"), &[started(20, 0), step(5, 90.0), diverged]);
        write_log(&dir.join("resnet32-seed1"), &[started(32, 0), step_at(40, 60.0, 200.0), eval(40, 45.0)]);
        write_log(&dir.join("resnet32-seed2"), &[started(32, 0), step(70, 50.0), eval(60, 30.0)]);
        let _lock = crate::rundir::RunDir::open(&dir.join("resnet32-seed2")).unwrap();

        let board = Board::open(&dir).unwrap();
        let rows = board.rows();
        assert_eq!(rows.len(), 2);
        let r20 = rows[0].figures(&board);
        assert_eq!((r20.label.as_str(), r20.done, r20.running, r20.pending, r20.failed), ("ResNet-20", 2, 0, 0, 1));
        assert_eq!((r20.final_mean, r20.final_best), (Some(8.5), Some(8.0)));
        assert!((r20.final_std.unwrap() - 0.5f64.sqrt()).abs() < 1e-12);
        assert_eq!((r20.paper_error, r20.reimpl_error), (Some(8.75), Some(8.57)));
        let r32 = rows[1].figures(&board);
        assert_eq!((r32.done, r32.running, r32.pending, r32.failed), (0, 1, 2, 0));
        assert_eq!((r32.current_error, r32.progress, r32.stopped), (Some(30.0), Some((70, 100)), false));
        assert_eq!(r32.images_per_sec, Some(800.0), "the running run's speed (800), not the interrupted one's (200)");
        assert_eq!(r32.final_mean, None);
        assert_eq!(board.runs[4].state(), CellState::Running);
        assert_eq!(board.runs[3].state(), CellState::Pending);
    }

    #[test]
    fn a_row_with_no_run_training_shows_where_its_runs_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        sweep(&dir);
        write_log(&dir.join("resnet32-seed1"), &[started(32, 0), step(40, 60.0), eval(40, 45.0)]);
        write_log(&dir.join("resnet32-seed2"), &[started(32, 0), step(70, 50.0), eval(60, 30.0)]);
        let board = Board::open(&dir).unwrap();
        let r32 = board.rows()[1].figures(&board);
        assert_eq!((r32.running, r32.pending), (0, 3));
        assert_eq!((r32.progress, r32.stopped, r32.current_error), (Some((40, 100)), true, Some(37.5)));
        assert_eq!((r32.eta_secs, r32.images_per_sec), (None, None), "a stopped run has no time left to count down");
        let r20 = board.rows()[0].figures(&board);
        assert_eq!((r20.progress, r20.stopped, r20.current_error), (None, false, None), "not started");
        assert_eq!(r20.params, Some(269_722), "counted from the depth before any run started");
    }

    #[test]
    fn a_rows_parameters_are_its_runs_count_and_unknown_for_projections_before_any_started() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        let axes = vec![Axis::read("depth", &["32"]).unwrap(), Axis::read("shortcut", &["none", "b"]).unwrap()];
        Sweep::grid(axes)
            .unwrap()
            .create(&dir, |cell| {
                let mut config = crate::config::paper(crate::config::Depth::new(32).unwrap(), PathBuf::from("data"));
                cell.settings.iter().try_for_each(|s| s.apply(&mut config)).map(|()| config)
            })
            .unwrap();
        let board = Board::open(&dir).unwrap();
        let params: Vec<(String, Option<u64>)> =
            board.rows().iter().map(|r| r.figures(&board)).map(|f| (f.label, f.params)).collect();
        assert_eq!(params, [("Plain-32".into(), Some(464_154)), ("ResNet-32, shortcut b".into(), None)]);
        // Once a run of the row has started, its log's count: option B's projections included.
        let mut run = crate::frontend::history::tests::info(32, 0);
        run.params = 470_000;
        let cell = board.runs.iter().find(|r| r.member.name.contains("shortcutb")).unwrap().member.name.clone();
        write_log(&dir.join(cell), &[Event::RunStarted { time: 0.0, run: Box::new(run) }]);
        let board = Board::open(&dir).unwrap();
        assert_eq!(board.rows()[1].figures(&board).params, Some(470_000));
    }

    #[test]
    fn a_log_that_grows_and_a_cut_last_line_are_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        sweep(&dir);
        let cell = dir.join("resnet20-seed1");
        let (mut board, mut collector) = Board::follow(&dir).unwrap();
        assert_eq!(board.runs[0].history.info, None);
        write_log(&cell, &[started(20, 0), step(1, 90.0)]);
        // Half a line, as a writer killed mid-write leaves it.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(cell.join("events.jsonl")).unwrap();
        f.write_all(br#"{"step":{"time":1.0,"it"#).unwrap();
        board.apply_all(collector.collect(Instant::now()));
        assert_eq!(board.runs[0].history.iters(), 1);
        f.write_all(b"\n").unwrap();
        write_log(&cell, &[finished(2, 70.0)]);
        board.apply_all(collector.collect(Instant::now()));
        assert_eq!(board.runs[0].state(), CellState::Done);
        assert_eq!(board.runs[0].warnings, 1);
        assert_eq!(board.rows()[0].figures(&board).final_mean, Some(70.0));
    }

    #[test]
    fn a_run_that_appears_in_a_plain_folder_is_added_by_the_collector_at_its_next_listing() {
        let tmp = tempfile::tempdir().unwrap();
        let run = |name: &str| {
            let d = tmp.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join(crate::rundir::CONFIG_NAME), include_str!("../../tests/data/config.json")).unwrap();
            d
        };
        write_log(&run("a"), &[started(20, 0), step(3, 90.0)]);
        let (mut board, mut collector) = Board::follow(tmp.path()).unwrap();
        assert_eq!((board.runs.len(), board.runs[0].history.iters()), (1, 3));
        write_log(&run("b"), &[started(20, 0), step(7, 80.0)]);
        assert!(!board.apply_all(collector.collect(Instant::now())), "not listed again before RESCAN");
        assert!(board.apply_all(collector.collect(Instant::now() + RESCAN)));
        assert_eq!(
            board.runs.iter().map(|r| (r.member.name.as_str(), r.history.iters())).collect::<Vec<_>>(),
            [("a", 3), ("b", 7)]
        );
        assert_eq!(collector.collect(Instant::now() + RESCAN), [], "nothing new: no change");
    }

    #[test]
    fn a_cell_that_failed_to_start_counts_as_failed_not_pending() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        sweep(&dir);
        let mut board = Board::open(&dir).unwrap();
        board.failed_to_start("resnet20-seed2", "cannot open output.log: Is a directory".into());
        assert_eq!(board.runs[1].state(), CellState::Failed);
        assert_eq!(board.runs[0].state(), CellState::Pending);
        let r20 = board.rows()[0].figures(&board);
        assert_eq!((r20.pending, r20.failed), (2, 1));
    }

    #[test]
    fn mean_and_sample_deviation() {
        assert_eq!(mean_std(&[]), (None, None));
        assert_eq!(mean_std(&[4.0]), (Some(4.0), None));
        let (m, s) = mean_std(&[2.0, 4.0, 6.0]);
        assert_eq!((m, s), (Some(4.0), Some(2.0)));
    }
}
