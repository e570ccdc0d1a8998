//! One cell of a sweep, started idempotently: a finished cell is skipped, a cell with a
//! checkpoint resumes from it, any other starts from iteration 0 in its prepared directory. A
//! cluster's signal before the time limit (SIGUSR1) checkpoints at once and requeues the task.

use crate::frontend::history::{History, RunState};
use crate::frontend::outcome::{ExitStatus, Outcome};
use crate::protocol::EndReason;
use crate::sweep::{Sweep, SweepError};
use crate::train::{self, Options, Plan};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a starting cell waits for a previous process of the same cell to let go of the run
/// (a requeued task may start while the old one still writes its final checkpoint).
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// What starting a cell comes to.
#[derive(Debug, PartialEq)]
pub enum Start {
    /// Nothing to do, and why.
    Skip(String),
    /// Train (resume, or start at 0) in this run directory.
    Train(PathBuf),
}

/// Decides what starting the cell in `run_dir` does, from its log.
pub fn decide(run_dir: &Path) -> Start {
    let history = match crate::runlog::read(run_dir) {
        Ok(log) => History::from_events(&log.events),
        Err(_) => History::new(),
    };
    match (history.end(), &history.state) {
        (Some(EndReason::Completed), _) => {
            let error = history.finished.as_ref().and_then(|f| f.final_error);
            let error = error.map(|e| format!(": final error {e:.2}%")).unwrap_or_default();
            Start::Skip(format!("already done{error}"))
        }
        (Some(EndReason::Diverged), _) | (_, RunState::Diverged { .. }) => Start::Skip(format!(
            "diverged at iteration {}: not started again (resume it by hand with a lower rate: \
             resnet-tui resume {} --set lr=0.01)",
            history.iters(),
            run_dir.display()
        )),
        _ => Start::Train(run_dir.to_path_buf()),
    }
}

/// What became of a cell's process.
pub struct CellEnd {
    pub status: ExitStatus,
    /// The trainer stopped for the scheduler's signal: the caller requeues the task.
    pub requeue: bool,
}

/// Runs cell `which` (an index or a name) of the sweep in `sweep_dir` to its end with plain
/// progress on stderr.
pub fn run(sweep_dir: &Path, which: &str, force: bool) -> Result<CellEnd, SweepError> {
    let sweep = Sweep::load(sweep_dir)?;
    let cell = sweep.cell(sweep_dir, which)?;
    let run_dir = sweep_dir.join(&cell.name);
    let requeue = Arc::new(AtomicBool::new(false));
    // Registered before anything slow: the signal may come at any time once the task runs.
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&requeue));
    eprintln!("resnet-tui: cell {} of {}: {}", cell.name, sweep.cells.len(), run_dir.display());
    let run_dir = match decide(&run_dir) {
        Start::Skip(why) => {
            eprintln!("resnet-tui: cell {}: {why}", cell.name);
            return Ok(CellEnd { status: ExitStatus::Success, requeue: false });
        }
        Start::Train(dir) => dir,
    };
    wait_for_lock(&run_dir);
    let options = Options { runs_dir: sweep_dir.to_path_buf(), force, ..Options::default() };
    let (channels, trainer) = train::spawn(Plan::Resume { run_dir, set: Vec::new(), data_dir: None }, options);
    let outcome: Outcome = crate::headless::run_until(channels, Some(&requeue));
    if outcome.interrupted {
        crate::signals::quit_now();
    }
    trainer.join();
    if let Some(line) = outcome.closing_line() {
        eprintln!("resnet-tui: error: {line}");
    }
    Ok(CellEnd { status: outcome.status(), requeue: requeue.load(Ordering::SeqCst) })
}

fn wait_for_lock(run_dir: &Path) {
    let deadline = Instant::now() + LOCK_WAIT;
    if crate::rundir::is_training(run_dir) {
        eprintln!("resnet-tui: another process still holds {}: waiting for it to end", run_dir.display());
    }
    while crate::rundir::is_training(run_dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::frontend::history::tests::{started, step};
    use crate::protocol::{Event, Summary};

    /// Appends `events` to the log of the run in `dir` (created with its stamp when new).
    pub fn log(dir: &Path, events: &[Event]) {
        let mut w = crate::runlog::LogWriter::open(&dir.join(crate::runlog::LOG_NAME)).unwrap();
        for e in events {
            w.write(e).unwrap();
        }
    }

    /// The end of a run of 9 iterations for `reason`, with a final error of 12.5 %.
    pub fn finished(reason: EndReason) -> Event {
        let summary =
            Summary { reason, iters: 9, final_error: Some(12.5), best_error: None, best_iter: None, train_secs: 1.0 };
        Event::Finished { time: 2.0, summary }
    }

    #[test]
    fn a_cell_trains_unless_it_is_done_or_diverged() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("fresh");
        std::fs::create_dir(&fresh).unwrap();
        assert_eq!(decide(&fresh), Start::Train(fresh.clone()));

        let stopped = tmp.path().join("stopped");
        std::fs::create_dir(&stopped).unwrap();
        log(&stopped, &[started(20, 0), step(9, 50.0), finished(EndReason::Stopped)]);
        assert_eq!(decide(&stopped), Start::Train(stopped.clone()));

        let done = tmp.path().join("done");
        std::fs::create_dir(&done).unwrap();
        log(&done, &[started(20, 0), step(9, 50.0), finished(EndReason::Completed)]);
        assert_eq!(decide(&done), Start::Skip("already done: final error 12.50%".into()));

        let diverged = tmp.path().join("diverged");
        std::fs::create_dir(&diverged).unwrap();
        let event = Event::Diverged { time: 1.0, iter: 9, loss: f64::NAN, last_good: None, layer: None };
        log(&diverged, &[started(20, 0), event, finished(EndReason::Diverged)]);
        assert!(matches!(decide(&diverged), Start::Skip(why) if why.starts_with("diverged at iteration 9")));
    }
}
