//! The local queue: a sweep's cells as child processes on this machine, at most `jobs` at once,
//! the CPU's threads split between them (a GPU of its own for each cell whose config asks for
//! one), a cell started only when its memory estimate fits beside the runs already going. Each child runs
//! `resnet-tui sweep cell`, the same idempotent start a Slurm task makes, with its output in the
//! cell's `output.log`. When fewer cells are left than `jobs`, the threads of the empty slots go
//! to the runs left: a cell starts on them, and a CPU run going on fewer is checkpointed and
//! started again on them (the tail of a long sweep would otherwise leave cores idle for hours).

use super::cell::{Start, decide};
use crate::config::{Bound, DeviceSpec};
use crate::frontend::history::{History, RunState};
use crate::sweep::{Cell, Sweep, SweepError};
use crossbeam_channel::{Receiver, Sender};
use std::collections::VecDeque;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often children are checked on and new ones started.
const TICK: Duration = Duration::from_millis(300);
/// A run is restarted on more threads only with at least this much training left at its pace:
/// a restart costs its start-up (the data loaded, `--precision auto` measured again).
const WORTH_WIDENING: Duration = Duration::from_secs(600);
/// How often the log of a run that could take more threads is read again for what it has left.
const LOOK_AGAIN: Duration = Duration::from_secs(30);
/// Runs at once: as for `--threads`, more than any machine's hardware threads, since every run
/// gets at least one of them.
pub const JOBS: Bound = Bound { flag: "--jobs", min: 1, max: 1024 };
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
    /// GPUs to give one run each, to the cells whose config asks for CUDA (0: none; such a
    /// cell then finds out for itself that there is no GPU).
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
    /// A CPU run started again on more threads, after the checkpoint it wrote when asked: cores
    /// had been freed and no cell was left to take them.
    Widened {
        cell: String,
        pid: u32,
        threads: usize,
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
    /// It could not be started: its config is unreadable, or its process would not start (said
    /// once; the queue goes on without it, and the cell counts as failed).
    FailedToStart {
        cell: String,
        why: String,
    },
    /// A child ended, with its exit status (`None`: killed by a signal).
    Ended {
        cell: String,
        code: Option<i32>,
    },
    /// Every cell has been started, skipped or failed to start, and every child has ended.
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
            QueueEvent::Widened { cell, pid, threads } => {
                format!(
                    "restarted {cell} on {threads} threads (pid {pid}) from the checkpoint it just wrote: no cell is left for the freed cores"
                )
            }
            QueueEvent::Waiting { cell, why } => format!("{cell} waits: {why}"),
            QueueEvent::Skipped { cell, why } => format!("skipped {cell}: {why}"),
            QueueEvent::FailedToStart { cell, why } => format!("{cell} failed to start: {why}"),
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

/// Why a cell's process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot open {}: {source}", .path.display())]
    Output { path: PathBuf, source: std::io::Error },
    #[error("cannot run {}: {source}", .exe.display())]
    Run { exe: PathBuf, source: std::io::Error },
}

/// A cell taken off the queue whose process could not be started.
#[derive(Debug, thiserror::Error)]
#[error("{cell} failed to start: {source}")]
pub struct NotStarted {
    pub cell: String,
    pub source: SpawnError,
}

/// Where a cell trains, as its config asks and the queue can give.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Placement {
    /// The CPU, or no GPU to give: no GPU is set aside for it.
    NoGpu,
    /// Any GPU: the queue gives it a free one, the only one it sees.
    AnyGpu,
    /// GPU N as this process numbers them: it waits for N and sees what this process sees.
    Gpu(usize),
}

/// The placement of a cell whose config asks for `device`, on a queue with `gpus` GPUs.
fn placement(device: DeviceSpec, gpus: usize) -> Placement {
    match device {
        DeviceSpec::Cpu => Placement::NoGpu,
        DeviceSpec::Auto | DeviceSpec::Cuda(None) if gpus > 0 => Placement::AnyGpu,
        DeviceSpec::Cuda(Some(n)) if n < gpus => Placement::Gpu(n),
        // No such GPU: the cell's own start says so in its output.
        DeviceSpec::Auto | DeviceSpec::Cuda(_) => Placement::NoGpu,
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
        // Unbounded, and bounded all the same: each cell is said at most three times (waits,
        // started or skipped or failed to start, ended), then `Drained` once. A bounded channel
        // would stop the queue, children unreaped and cells unstarted, while the table shows a
        // run's dashboard and does not read it.
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
    /// The CPU threads it was started on.
    threads: usize,
    /// Asked to checkpoint and stop (one SIGINT) so as to start again on this many threads.
    widening_to: Option<usize>,
    /// When its log was last read to see whether widening it is worth a restart.
    looked_at: Option<Instant>,
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
        Worker { dir, todo: sweep.cells.into(), running: Vec::new(), options, events, said_waiting: None }
    }

    fn emit(&self, event: QueueEvent) {
        let _ = self.events.send(event);
    }

    fn run(mut self, stop: Receiver<()>) {
        self.skip_finished();
        loop {
            self.reap();
            // Each failure took its cell off the queue: this ends.
            while let Err(e) = self.start_what_fits() {
                self.emit(QueueEvent::FailedToStart { cell: e.cell, why: e.source.to_string() });
            }
            self.widen();
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
        // SIGINT, once: the child checkpoints and ends (a second one would quit at once, so a
        // run already asked, to widen it, is not asked again).
        for r in self.running.iter().filter(|r| r.widening_to.is_none()) {
            interrupt(&r.child);
        }
        for mut r in std::mem::take(&mut self.running) {
            let code = r.child.wait().ok().and_then(|s| s.code());
            self.emit(QueueEvent::Ended { cell: r.cell, code });
        }
    }

    /// Takes the cells with nothing left to do off the queue at once, so that the threads are
    /// split between the cells that will run.
    fn skip_finished(&mut self) {
        let mut keep = VecDeque::new();
        for cell in std::mem::take(&mut self.todo) {
            match decide(&self.dir.join(&cell.name)) {
                Start::Skip(why) => self.emit(QueueEvent::Skipped { cell: cell.name, why }),
                Start::Train(_) => keep.push_back(cell),
            }
        }
        self.todo = keep;
    }

    fn reap(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            match self.running[i].child.try_wait() {
                Ok(Some(status)) => {
                    let r = self.running.remove(i);
                    match r.widening_to.filter(|_| self.ended_to_widen(&r.cell, status)) {
                        Some(threads) => {
                            if let Some(r) = self.restart(r, threads) {
                                self.running.insert(i, r);
                                i += 1;
                            }
                        }
                        None => self.emit(QueueEvent::Ended { cell: r.cell, code: status.code() }),
                    }
                }
                _ => i += 1,
            }
        }
    }

    /// Starts a run that stopped to be widened again on `threads`; `None` when it cannot be
    /// started (said once, as for any cell).
    fn restart(&self, r: Running, threads: usize) -> Option<Running> {
        match self.spawn(&r.cell, threads, None) {
            Ok(child) => {
                self.emit(QueueEvent::Widened { cell: r.cell.clone(), pid: child.id(), threads });
                Some(Running { child, threads, widening_to: None, looked_at: None, ..r })
            }
            Err(source) => {
                self.emit(QueueEvent::FailedToStart { cell: r.cell, why: source.to_string() });
                None
            }
        }
    }

    /// Whether a run asked to stop for widening stopped as asked with training left to do: it
    /// checkpointed and ended (status 0), or the signal came before its handler and ended it
    /// (no status; it resumes from its last periodic checkpoint). A run that failed, or finished
    /// or diverged meanwhile, ends as any other.
    fn ended_to_widen(&self, cell: &str, status: std::process::ExitStatus) -> bool {
        (status.success() || status.code().is_none()) && matches!(decide(&self.dir.join(cell)), Start::Train(_))
    }

    /// The CPU threads for a run: the cores split between the runs going and the cells still to
    /// start, at most `jobs` of them.
    fn threads(&self) -> usize {
        let runs = (self.running.len() + self.todo.len()).clamp(1, self.options.jobs);
        (self.options.cores / runs).max(1)
    }

    /// When no cell is left to start, asks each CPU run going on fewer threads than it would get
    /// now (half as many again at least) and with training enough left to pay for a restart to
    /// checkpoint and stop; `reap` starts it again on them.
    fn widen(&mut self) {
        if !self.todo.is_empty() {
            return;
        }
        let threads = self.threads();
        for r in &mut self.running {
            if r.gpu.is_some() || r.widening_to.is_some() || 2 * threads < 3 * r.threads {
                continue;
            }
            if r.looked_at.is_some_and(|t| t.elapsed() < LOOK_AGAIN) {
                continue;
            }
            r.looked_at = Some(Instant::now());
            if worth_widening(&self.dir.join(&r.cell)) {
                interrupt(&r.child);
                r.widening_to = Some(threads);
            }
        }
    }

    /// Says once, for the cell at the head of the queue, why it waits.
    fn wait(&mut self, cell: &str, why: String) {
        if self.said_waiting.as_deref() != Some(cell) {
            self.said_waiting = Some(cell.to_string());
            self.emit(QueueEvent::Waiting { cell: cell.to_string(), why });
        }
    }

    fn gpu_taken(&self, g: usize) -> bool {
        self.running.iter().any(|r| r.gpu == Some(g))
    }

    /// Starts cells from the head of the queue while they fit; a cell that waits keeps its place.
    fn start_what_fits(&mut self) -> Result<(), NotStarted> {
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
                    // It cannot be started as it stands: failed, not skipped as if it were done.
                    self.todo.pop_front();
                    self.emit(QueueEvent::FailedToStart { cell: cell.name, why: e.to_string() });
                    continue;
                }
            };
            // The GPU set aside for it, and whether it sees that one only.
            let (gpu, only) = match placement(config.device, self.options.gpus) {
                Placement::NoGpu => (None, false),
                Placement::AnyGpu => match (0..self.options.gpus).find(|&g| !self.gpu_taken(g)) {
                    Some(g) => (Some(g), true),
                    None => {
                        self.wait(&cell.name, "every GPU is taken".into());
                        return Ok(());
                    }
                },
                Placement::Gpu(g) if self.gpu_taken(g) => {
                    self.wait(&cell.name, format!("GPU {g}, which its config names, is taken"));
                    return Ok(());
                }
                Placement::Gpu(g) => (Some(g), false),
            };
            let estimate = crate::memory::estimate(config.depth, config.batch_size, config.precision, gpu.is_some());
            // Alone, a run is let through: the cell itself refuses one that cannot fit at all.
            if !self.options.force && !self.running.is_empty() {
                let going: Vec<(u64, u64)> =
                    self.running.iter().map(|r| (r.estimate, crate::memory::resident_bytes_of(r.child.id()))).collect();
                let available = crate::memory::available_host();
                if !crate::memory::fits_beside(estimate.host, available, &going) {
                    let why = format!(
                        "needs {} of memory, not free beside the {} run(s) going",
                        crate::format::bytes(estimate.host),
                        self.running.len()
                    );
                    self.wait(&cell.name, why);
                    return Ok(());
                }
            }
            let threads = self.threads();
            // Taken off the queue whether or not it starts: a cell that cannot start is said once.
            self.todo.pop_front();
            let child = self
                .spawn(&cell.name, threads, gpu.filter(|_| only))
                .map_err(|source| NotStarted { cell: cell.name.clone(), source })?;
            self.emit(QueueEvent::Started { cell: cell.name.clone(), pid: child.id(), threads, gpu });
            self.running.push(Running {
                cell: cell.name,
                child,
                estimate: estimate.host,
                gpu,
                threads,
                widening_to: None,
                looked_at: None,
            });
        }
        Ok(())
    }

    /// Starts the cell's process; with `only`, it sees that GPU of this process's and no other.
    fn spawn(&self, cell: &str, threads: usize, only: Option<usize>) -> Result<Child, SpawnError> {
        let path = self.dir.join(cell).join(OUTPUT_NAME);
        let open = || std::fs::OpenOptions::new().create(true).append(true).open(&path);
        let (out, err) = match open().and_then(|f| Ok((f.try_clone()?, f))) {
            Ok(files) => files,
            Err(source) => return Err(SpawnError::Output { path, source }),
        };
        let mut command = Command::new(&self.options.exe);
        command.arg("sweep").arg("cell").arg(&self.dir).arg(cell);
        if self.options.force {
            command.arg("--force");
        }
        // libtorch sizes its thread pools from these.
        command.env("OMP_NUM_THREADS", threads.to_string()).env("MKL_NUM_THREADS", threads.to_string());
        if let Some(g) = only {
            let parent = std::env::var("CUDA_VISIBLE_DEVICES").ok();
            command.env("CUDA_VISIBLE_DEVICES", child_visible_devices(parent.as_deref(), g));
        }
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: a Ctrl-C at the terminal reaches the queue only, which
            // passes exactly one SIGINT on (two would quit without the final checkpoint).
            .process_group(0)
            .spawn()
            .map_err(|source| SpawnError::Run { exe: self.options.exe.clone(), source })
    }
}

/// Whether the run in `run_dir` trains with enough left, at the pace its log shows, for a
/// restart on more threads to pay (not before its first step: its pace is not known yet; not
/// while paused: a restart would resume it).
fn worth_widening(run_dir: &Path) -> bool {
    let Ok(log) = crate::runlog::read(run_dir) else { return false };
    let history = History::from_events(&log.events);
    history.state == RunState::Running && history.eta_secs().is_some_and(|secs| secs >= WORTH_WIDENING.as_secs_f64())
}

/// Asks a child to checkpoint and end: SIGINT, as a first Ctrl-C.
fn interrupt(child: &Child) {
    // SAFETY: kill has no memory effects; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
}

/// What `CUDA_VISIBLE_DEVICES` a child training on this process's GPU `ordinal` gets: that
/// ordinal's entry in this process's own list, where it has one (under a scheduler's allocation
/// of GPUs 2 and 3, ordinal 0 is GPU 2), else the ordinal itself (this process sees them all).
fn child_visible_devices(parent: Option<&str>, ordinal: usize) -> String {
    let own = parent.and_then(|list| list.split(',').map(str::trim).filter(|e| !e.is_empty()).nth(ordinal));
    own.map_or_else(|| ordinal.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Depth, DeviceSpec};
    use crate::executor::cell::tests::{finished, log};
    use crate::protocol::{EndReason, Event};

    #[test]
    fn a_childs_gpu_is_its_ordinal_mapped_through_the_parents_own_list() {
        // An allocation of GPUs 2 and 3: the parent's ordinals 0 and 1 are GPUs 2 and 3.
        assert_eq!(child_visible_devices(Some("2,3"), 0), "2");
        assert_eq!(child_visible_devices(Some("2,3"), 1), "3");
        // UUIDs (and MIG instances) pass through as the parent names them.
        assert_eq!(child_visible_devices(Some("GPU-8f2a, MIG-41c0"), 1), "MIG-41c0");
        // No list of its own: the parent sees every GPU, and ordinal N is GPU N.
        assert_eq!(child_visible_devices(None, 1), "1");
        assert_eq!(child_visible_devices(Some(""), 0), "0");
    }

    /// A sweep of one CPU cell and one CUDA cell in a temporary folder, as a queue on a machine
    /// with two GPUs and a program that exits at once.
    fn cpu_and_cuda_sweep(dir: &Path) -> (Worker, Receiver<QueueEvent>) {
        let axes = vec![crate::sweep::Axis::read("device", &["cpu", "cuda"]).unwrap()];
        let sweep = Sweep::grid(axes).unwrap();
        sweep
            .create(dir, |cell| {
                let mut c = crate::config::paper(Depth::new(8).unwrap(), "data".into());
                cell.settings.iter().try_for_each(|s| s.apply(&mut c)).map(|()| c)
            })
            .unwrap();
        let options = QueueOptions { jobs: 2, exe: "/bin/true".into(), cores: 2, gpus: 2, force: true };
        let (tx, rx) = crossbeam_channel::unbounded();
        (Worker::new(dir.to_path_buf(), sweep, options, tx), rx)
    }

    #[test]
    fn each_cell_gets_a_gpu_only_when_its_own_config_asks_for_one() {
        let dir = tempfile::tempdir().unwrap();
        let (mut worker, events) = cpu_and_cuda_sweep(dir.path());
        let _ = worker.start_what_fits();
        for r in &mut worker.running {
            let _ = r.child.wait();
        }
        let started: Vec<(String, Option<usize>)> = events
            .try_iter()
            .filter_map(|e| match e {
                QueueEvent::Started { cell, gpu, .. } => Some((cell, gpu)),
                _ => None,
            })
            .collect();
        let gpu_of = |device: &str| started.iter().find(|(c, _)| c.ends_with(device)).map(|(_, g)| *g);
        assert_eq!(gpu_of("cpu"), Some(None), "{started:?}");
        assert_eq!(gpu_of("cuda"), Some(Some(0)), "{started:?}");
    }

    #[test]
    fn a_cell_asks_for_the_cpu_any_gpu_or_one_gpu_by_its_own_config() {
        assert_eq!(placement(DeviceSpec::Cpu, 2), Placement::NoGpu);
        assert_eq!(placement(DeviceSpec::Auto, 2), Placement::AnyGpu);
        assert_eq!(placement(DeviceSpec::Cuda(None), 2), Placement::AnyGpu);
        assert_eq!(placement(DeviceSpec::Cuda(Some(1)), 2), Placement::Gpu(1));
        // No GPU to give: the cell's own start refuses CUDA, in its output.
        assert_eq!(placement(DeviceSpec::Cuda(Some(2)), 2), Placement::NoGpu);
        assert_eq!(placement(DeviceSpec::Auto, 0), Placement::NoGpu);
    }

    #[test]
    fn a_program_that_cannot_run_fails_each_cell_once_and_the_queue_drains() {
        let dir = tempfile::tempdir().unwrap();
        let (mut worker, events) = cpu_and_cuda_sweep(dir.path());
        worker.options.exe = dir.path().join("no-such-program");
        let (_stop, stop_rx) = crossbeam_channel::bounded(1);
        worker.run(stop_rx);
        let events: Vec<QueueEvent> = events.try_iter().collect();
        let failed: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                QueueEvent::FailedToStart { cell, why } if why.contains("no-such-program") => Some(cell.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(failed, ["devicecpu", "devicecuda"], "{events:?}");
        assert_eq!(events.last(), Some(&QueueEvent::Drained), "{events:?}");
    }

    /// A sweep of `seeds` cells (`seed1`, `seed2`, ...) on the CPU, in `dir`.
    fn cpu_sweep(dir: &Path, seeds: &[&str]) -> Sweep {
        let sweep = Sweep::grid(vec![crate::sweep::Axis::read("seed", seeds).unwrap()]).unwrap();
        sweep
            .create(dir, |cell| {
                let mut c = crate::config::paper(Depth::new(8).unwrap(), "data".into());
                c.device = DeviceSpec::Cpu;
                cell.settings.iter().try_for_each(|s| s.apply(&mut c)).map(|()| c)
            })
            .unwrap();
        sweep
    }

    /// A log of a run of `iters` iterations at its step `at`, at 800 images a second.
    fn write_log(run_dir: &Path, iters: u64, at: u64) {
        use crate::frontend::history::tests::{info, step};
        let mut run = info(8, 0);
        run.config.iters = iters;
        log(run_dir, &[Event::RunStarted { time: 0.0, run: Box::new(run) }, step(at, 50.0)]);
    }

    #[test]
    fn only_a_run_with_minutes_of_training_left_is_worth_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (long, short, fresh) = (dir.path().join("long"), dir.path().join("short"), dir.path().join("fresh"));
        for d in [&long, &short, &fresh] {
            std::fs::create_dir(d).unwrap();
        }
        // 63,990 steps of 128 images left at 800 a second: hours.
        write_log(&long, 64_000, 10);
        // 10 steps left: seconds.
        write_log(&short, 100, 90);
        assert!(worth_widening(&long));
        assert!(!worth_widening(&short));
        // No step yet: its pace is unknown.
        assert!(!worth_widening(&fresh));
        // Paused through `attach`: a restart would resume it.
        log(&long, &[Event::Paused { time: 9.0, iter: 10 }]);
        assert!(!worth_widening(&long));
    }

    fn two_core_options(exe: PathBuf) -> QueueOptions {
        QueueOptions { jobs: 2, exe, cores: 2, gpus: 0, force: true }
    }

    fn started_threads(events: &[QueueEvent]) -> Vec<(String, usize)> {
        events
            .iter()
            .filter_map(|e| match e {
                QueueEvent::Started { cell, threads, .. } => Some((cell.clone(), *threads)),
                _ => None,
            })
            .collect()
    }

    /// Runs the queue over the sweep in `dir` to its end, with a program that exits at once.
    fn drain(dir: &Path) -> Vec<QueueEvent> {
        let (_stop, stop_rx) = crossbeam_channel::bounded(1);
        let (tx, rx) = crossbeam_channel::unbounded();
        let sweep = Sweep::load(dir).unwrap();
        Worker::new(dir.to_path_buf(), sweep, two_core_options("/bin/true".into()), tx).run(stop_rx);
        rx.try_iter().collect()
    }

    #[test]
    fn cells_share_the_cores_while_as_many_as_jobs_are_left() {
        let dir = tempfile::tempdir().unwrap();
        cpu_sweep(dir.path(), &["1", "2", "3"]);
        let events = drain(dir.path());
        let threads = started_threads(&events);
        assert_eq!(threads.len(), 3, "{events:?}");
        assert_eq!(threads[..2], [("seed1".into(), 1), ("seed2".into(), 1)], "{events:?}");
    }

    #[test]
    fn a_finished_cell_leaves_its_cores_to_the_cells_that_train() {
        use crate::frontend::history::tests::{started, step};
        let dir = tempfile::tempdir().unwrap();
        cpu_sweep(dir.path(), &["1", "2"]);
        log(&dir.path().join("seed1"), &[started(8, 0), step(9, 50.0), finished(EndReason::Completed)]);
        let events = drain(dir.path());
        assert!(matches!(&events[0], QueueEvent::Skipped { cell, .. } if cell == "seed1"), "{events:?}");
        assert_eq!(started_threads(&events), [("seed2".into(), 2)], "{events:?}");
    }

    #[test]
    fn a_cpu_run_left_alone_is_checkpointed_and_restarted_on_the_freed_cores() {
        let dir = tempfile::tempdir().unwrap();
        cpu_sweep(dir.path(), &["1", "2"]);
        // A stand-in for `resnet-tui sweep cell DIR CELL`: it notes its thread count; seed1 ends
        // at once, seed2 runs until its SIGINT, then ends as a checkpointed run does (status 0).
        write_log(&dir.path().join("seed2"), 64_000, 10);
        let exe = dir.path().join("cell.sh");
        std::fs::write(
            &exe,
            "#!/bin/sh\ntrap 'exit 0' INT\necho \"$OMP_NUM_THREADS\" >> \"$3/$4/threads\"\ncase \"$4\" in seed1) exit 0;; esac\nwhile :; do sleep 0.05; done\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut queue = Queue::start(dir.path(), two_core_options(exe)).unwrap();
        let mut events = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !events.iter().any(|e| matches!(e, QueueEvent::Widened { .. })) {
            assert!(std::time::Instant::now() < deadline, "not widened: {events:?}");
            if let Ok(e) = queue.events.recv_timeout(Duration::from_millis(100)) {
                events.push(e);
            }
        }
        // The restarted process really runs on two threads: it says so in its file.
        let threads_file = dir.path().join("seed2").join("threads");
        while std::fs::read_to_string(&threads_file).unwrap_or_default().lines().last() != Some("2") {
            assert!(std::time::Instant::now() < deadline, "{:?}", std::fs::read_to_string(&threads_file));
            std::thread::sleep(Duration::from_millis(50));
        }
        queue.stop();
        events.extend(queue.events.try_iter());
        assert_eq!(started_threads(&events), [("seed1".into(), 1), ("seed2".into(), 1)], "{events:?}");
        let widened: Vec<(&str, usize)> = events
            .iter()
            .filter_map(|e| match e {
                QueueEvent::Widened { cell, threads, .. } => Some((cell.as_str(), *threads)),
                _ => None,
            })
            .collect();
        assert_eq!(widened, [("seed2", 2)], "{events:?}");
        // seed2 ends once, when the queue is stopped, after its restart: never as a run done.
        let ends: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, QueueEvent::Ended { cell, .. } if cell == "seed2"))
            .map(|(i, _)| i)
            .collect();
        let widened_at = events.iter().position(|e| matches!(e, QueueEvent::Widened { .. })).unwrap();
        assert!(ends.len() == 1 && ends[0] > widened_at, "{events:?}");
    }
}
