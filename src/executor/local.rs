//! The local queue: a sweep's cells as child processes on this machine, at most `jobs` at once,
//! the CPU's threads split between them (a GPU of its own for each cell whose config asks for
//! one), a cell started only when its memory estimate fits beside the runs already going. Each child runs
//! `resnet-tui sweep cell`, the same idempotent start a Slurm task makes, with its output in the
//! cell's `output.log`.

use super::cell::{Start, decide};
use crate::config::{Bound, DeviceSpec};
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
        loop {
            self.reap();
            // Each failure took its cell off the queue: this ends.
            while let Err(e) = self.start_what_fits() {
                self.emit(QueueEvent::FailedToStart { cell: e.cell, why: e.source.to_string() });
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
                .spawn(&cell, &run_dir, threads, gpu.filter(|_| only))
                .map_err(|source| NotStarted { cell: cell.name.clone(), source })?;
            self.emit(QueueEvent::Started { cell: cell.name.clone(), pid: child.id(), threads, gpu });
            self.running.push(Running { cell: cell.name, child, estimate: estimate.host, gpu });
        }
        Ok(())
    }

    /// Starts the cell's process; with `only`, it sees that GPU of this process's and no other.
    fn spawn(&self, cell: &Cell, run_dir: &Path, threads: usize, only: Option<usize>) -> Result<Child, SpawnError> {
        let path = run_dir.join(OUTPUT_NAME);
        let open = || std::fs::OpenOptions::new().create(true).append(true).open(&path);
        let (out, err) = match open().and_then(|f| Ok((f.try_clone()?, f))) {
            Ok(files) => files,
            Err(source) => return Err(SpawnError::Output { path, source }),
        };
        let mut command = Command::new(&self.options.exe);
        command.arg("sweep").arg("cell").arg(&self.dir).arg(&cell.name);
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
}
