//! The local queue: a sweep's cells as child processes on this machine, at most `jobs` at once,
//! the CPU's threads split between them (one GPU each on a machine with several), a cell started
//! only when its memory estimate fits beside the runs already going. Each child runs
//! `resnet-tui sweep cell`, the same idempotent start a Slurm task makes, with its output in the
//! cell's `output.log`.

use super::cell::{Start, decide};
use crate::sweep::{Cell, Sweep, SweepError};
use crossbeam_channel::{Receiver, Sender};
use std::collections::VecDeque;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often children are checked on and new ones started.
const TICK: Duration = Duration::from_millis(300);
/// A cell's output file, in its run directory.
pub const OUTPUT_NAME: &str = "output.log";

#[derive(Clone, Debug)]
pub struct QueueOptions {
    /// Runs at once.
    pub jobs: usize,
    /// The program the children run (this one).
    pub exe: PathBuf,
    /// CPU threads to split between the runs.
    pub cores: usize,
    /// GPUs to give one run each (0: none, the runs share the CPU).
    pub gpus: usize,
    /// Start cells whose memory estimate does not fit (`--force`), and let them through.
    pub force: bool,
}

/// What the queue reports.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueEvent {
    Started {
        cell: String,
        pid: u32,
        threads: usize,
        gpu: Option<usize>,
    },
    /// Not started yet: the memory it needs is not free beside the runs going (said once).
    Waiting {
        cell: String,
        why: String,
    },
    Skipped {
        cell: String,
        why: String,
    },
    /// A child ended, with its exit status (`None`: killed by a signal).
    Ended {
        cell: String,
        code: Option<i32>,
    },
    /// Every cell has been started or skipped and every child has ended.
    Drained,
}

impl QueueEvent {
    /// The line `--no-ui` prints for it.
    pub fn line(&self, sweep_dir: &Path) -> String {
        match self {
            QueueEvent::Started { cell, pid, threads, gpu } => {
                let gpu = gpu.map(|g| format!(", GPU {g}")).unwrap_or_default();
                let plural = if *threads == 1 { "" } else { "s" };
                format!("started {cell} (pid {pid}, {threads} thread{plural}{gpu})")
            }
            QueueEvent::Waiting { cell, why } => format!("{cell} waits: {why}"),
            QueueEvent::Skipped { cell, why } => format!("skipped {cell}: {why}"),
            QueueEvent::Ended { cell, code: Some(0) } => format!("{cell} ended"),
            QueueEvent::Ended { cell, code } => {
                let how = code.map(|c| format!("exit status {c}")).unwrap_or_else(|| "killed".into());
                let out = sweep_dir.join(cell).join(OUTPUT_NAME);
                format!("{cell} ended with {how}: see {}", out.display())
            }
            QueueEvent::Drained => "every cell has been run".into(),
        }
    }
}

/// The queue's thread; dropping it (or `stop`) stops the runs, each with a final checkpoint.
pub struct Queue {
    pub events: Receiver<QueueEvent>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Queue {
    pub fn start(sweep_dir: &Path, options: QueueOptions) -> Result<Queue, SweepError> {
        let sweep = Sweep::load(sweep_dir)?;
        let (events_tx, events) = crossbeam_channel::unbounded();
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let dir = sweep_dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("sweep-queue".into())
            .spawn(move || Worker::new(dir, sweep, options, events_tx).run(stop_rx))
            .expect("spawn the queue thread");
        Ok(Queue { events, stop: Some(stop), thread: Some(thread) })
    }

    /// Asks every running child to checkpoint and stop, and waits for them; cells not started
    /// stay pending, to be run another time.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Running {
    cell: String,
    child: Child,
    estimate: u64,
    gpu: Option<usize>,
}

struct Worker {
    dir: PathBuf,
    todo: VecDeque<Cell>,
    running: Vec<Running>,
    options: QueueOptions,
    events: Sender<QueueEvent>,
    said_waiting: Option<String>,
}

impl Worker {
    fn new(dir: PathBuf, sweep: Sweep, options: QueueOptions, events: Sender<QueueEvent>) -> Worker {
        let mut options = options;
        options.jobs = options.jobs.max(1);
        if options.gpus > 0 {
            options.jobs = options.jobs.min(options.gpus);
        }
        Worker { dir, todo: sweep.cells.into(), running: Vec::new(), options, events, said_waiting: None }
    }

    fn emit(&self, event: QueueEvent) {
        let _ = self.events.send(event);
    }

    fn run(mut self, stop: Receiver<()>) {
        loop {
            self.reap();
            if let Err(e) = self.start_what_fits() {
                self.emit(QueueEvent::Skipped { cell: "?".into(), why: e });
            }
            if self.todo.is_empty() && self.running.is_empty() {
                self.emit(QueueEvent::Drained);
                return;
            }
            match stop.recv_timeout(TICK) {
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                // Told to stop, or the queue's owner is gone.
                _ => break,
            }
        }
        for r in &self.running {
            // SIGINT, once: the child checkpoints and ends (a second one would quit at once).
            // SAFETY: kill has no memory effects; the pid is our own child's, not yet reaped.
            unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGINT) };
        }
        for mut r in std::mem::take(&mut self.running) {
            let code = r.child.wait().ok().and_then(|s| s.code());
            self.emit(QueueEvent::Ended { cell: r.cell, code });
        }
    }

    fn reap(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            match self.running[i].child.try_wait() {
                Ok(Some(status)) => {
                    let r = self.running.remove(i);
                    self.emit(QueueEvent::Ended { cell: r.cell, code: status.code() });
                }
                _ => i += 1,
            }
        }
    }

    fn threads(&self) -> usize {
        (self.options.cores / self.options.jobs).max(1)
    }

    fn start_what_fits(&mut self) -> Result<(), String> {
        while self.running.len() < self.options.jobs {
            let Some(cell) = self.todo.front().cloned() else { return Ok(()) };
            let run_dir = self.dir.join(&cell.name);
            if let Start::Skip(why) = decide(&run_dir) {
                self.todo.pop_front();
                self.emit(QueueEvent::Skipped { cell: cell.name, why });
                continue;
            }
            if crate::rundir::is_training(&run_dir) {
                self.todo.pop_front();
                self.emit(QueueEvent::Skipped { cell: cell.name, why: "another process trains it".into() });
                continue;
            }
            let config = match crate::rundir::read_config(&run_dir) {
                Ok(c) => c,
                Err(e) => {
                    self.todo.pop_front();
                    self.emit(QueueEvent::Skipped { cell: cell.name, why: e.to_string() });
                    continue;
                }
            };
            let gpu = (0..self.options.gpus).find(|g| !self.running.iter().any(|r| r.gpu == Some(*g)));
            let estimate = crate::memory::estimate(config.depth, config.batch_size, config.precision, gpu.is_some());
            // Alone, a run is let through: the cell itself refuses one that cannot fit at all.
            if !self.options.force && !self.running.is_empty() {
                let going: Vec<(u64, u64)> =
                    self.running.iter().map(|r| (r.estimate, crate::memory::resident_bytes_of(r.child.id()))).collect();
                let available = crate::memory::available_host();
                if !crate::memory::fits_beside(estimate.host, available, &going) {
                    if self.said_waiting.as_deref() != Some(cell.name.as_str()) {
                        let why = format!(
                            "needs {} of memory, not free beside the {} run(s) going",
                            crate::format::bytes(estimate.host),
                            self.running.len()
                        );
                        self.said_waiting = Some(cell.name.clone());
                        self.emit(QueueEvent::Waiting { cell: cell.name, why });
                    }
                    return Ok(());
                }
            }
            let threads = self.threads();
            let child =
                self.spawn(&cell, &run_dir, threads, gpu).map_err(|e| format!("cannot start {}: {e}", cell.name))?;
            self.todo.pop_front();
            self.emit(QueueEvent::Started { cell: cell.name.clone(), pid: child.id(), threads, gpu });
            self.running.push(Running { cell: cell.name, child, estimate: estimate.host, gpu });
        }
        Ok(())
    }

    fn spawn(&self, cell: &Cell, run_dir: &Path, threads: usize, gpu: Option<usize>) -> std::io::Result<Child> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(run_dir.join(OUTPUT_NAME))?;
        let mut command = Command::new(&self.options.exe);
        command.arg("sweep").arg("cell").arg(&self.dir).arg(&cell.name);
        if self.options.force {
            command.arg("--force");
        }
        // libtorch sizes its thread pools from these.
        command.env("OMP_NUM_THREADS", threads.to_string()).env("MKL_NUM_THREADS", threads.to_string());
        if let Some(g) = gpu {
            command.env("CUDA_VISIBLE_DEVICES", g.to_string());
        }
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Its own process group: a Ctrl-C at the terminal reaches the queue only, which
            // passes exactly one SIGINT on (two would quit without the final checkpoint).
            .process_group(0)
            .spawn()
    }
}
