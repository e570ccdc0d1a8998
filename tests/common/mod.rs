//! Shared helpers for the black-box tests: temporary folders, small synthetic data, running the
//! binary, reading run directories back.
#![allow(dead_code)]

pub mod isa;

use resnet_tui::protocol::{Event, StepRecord};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Records per data file: small enough for a step to take milliseconds on one thread.
pub const RECORDS: usize = 64;

/// A scratch area holding a synthetic data set and a runs folder.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = Sandbox { dir };
        write_data(&sandbox.data());
        sandbox
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn runs(&self) -> PathBuf {
        self.dir.path().join("runs")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `train --no-ui` on the synthetic data with a tiny network, plus `extra`.
    pub fn train(&self, extra: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.arg("train").args(tiny_args(&self.data(), &self.runs())).args(extra);
        cmd
    }

    /// The one run directory under the runs folder.
    pub fn only_run(&self) -> PathBuf {
        let runs = run_dirs(&self.runs());
        assert_eq!(runs.len(), 1, "expected exactly one run in {}: {runs:?}", self.runs().display());
        runs.into_iter().next().unwrap()
    }
}

/// Writes a CIFAR-10 shaped data set of `RECORDS` images per file with varied pixels.
pub fn write_data(dir: &Path) {
    resnet_tui::data::cifar::write_synthetic(dir, RECORDS, |f, r, b| {
        ((f * 7919 + r * 104_729 + b * 31 + (b / 97) * r) % 251) as u8
    })
    .expect("write synthetic data");
}

/// The binary under test, with a quiet environment.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resnet-tui"));
    cmd.env_remove("CIFAR10_DIR").env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    // Tests run two at a time: a child on every core then shares them, and OpenMP threads that
    // spin at their barriers while a core is taken run several times slower (docs/performance.md).
    // Waiting passively changes no result, only how a thread waits.
    cmd.env("OMP_WAIT_POLICY", "passive");
    cmd.stdin(Stdio::null());
    cmd
}

/// Options for a small, fast, deterministic run: ResNet-8, batch 16, one CPU thread, fp32 (so that
/// no figure depends on whether this CPU has bf16 units; a later `--precision` overrides it).
pub fn tiny_args(data: &Path, runs: &Path) -> Vec<String> {
    [
        "--no-ui",
        "--depth",
        "8",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--seed",
        "7",
        "--precision",
        "fp32",
        "--data-dir",
        data.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `resume RUN_DIR --no-ui`.
pub fn resume(run: &Path) -> Command {
    let mut cmd = bin();
    cmd.arg("resume").arg(run).arg("--no-ui");
    cmd
}

/// `export RUN --pytorch FILE`, run to the end.
pub fn export_pytorch(run: &Path, file: &Path) -> Output {
    let mut cmd = bin();
    cmd.arg("export").arg(run).arg("--pytorch").arg(file);
    output(cmd)
}

/// Runs to the end, capturing output.
pub fn output(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run resnet-tui")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a successful exit, showing stderr otherwise.
pub fn assert_ok(out: &Output) {
    assert!(out.status.success(), "exit {:?}; stderr:\n{}", out.status, stderr(out));
}

/// Asserts the shape of every refusal: a non-zero exit, a one-line message on stderr that
/// mentions each of `needles`, and no panic or backtrace text.
pub fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "expected a failure, got success; stderr:\n{err}");
    assert_eq!(out.status.code().map(|c| c != 101), Some(true), "exit code 101 is a panic: {err}");
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace", "resnet-tui: internal error", "Exception raised"] {
        assert!(!err.contains(bad), "stderr shows a panic or backtrace ({bad}):\n{err}");
    }
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let error_lines: Vec<&&str> = lines.iter().filter(|l| l.contains("error:")).collect();
    assert_eq!(error_lines.len(), 1, "expected one error line, got:\n{err}");
    let line = error_lines[0];
    for n in needles {
        assert!(line.contains(n), "error line should mention {n:?}: {line}");
    }
    line.to_string()
}

/// Run directories under `runs`, sorted by name.
pub fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(runs).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

/// The events of a run's log, read strictly (header required).
pub fn events(run: &Path) -> Vec<Event> {
    resnet_tui::runlog::read_strict(run).unwrap_or_else(|e| panic!("log of {} reads back: {e}", run.display())).events
}

/// `(iter, loss)` of every step in the log, in order.
pub fn step_losses(run: &Path) -> Vec<(u64, f64)> {
    events(run)
        .into_iter()
        .filter_map(|e| match e {
            Event::Step(StepRecord { iter, loss, .. }) => Some((iter, loss)),
            _ => None,
        })
        .collect()
}

/// The summaries of the log's `Finished` events.
pub fn finished(run: &Path) -> Vec<resnet_tui::protocol::Summary> {
    events(run)
        .into_iter()
        .filter_map(|e| match e {
            Event::Finished { summary, .. } => Some(summary),
            _ => None,
        })
        .collect()
}

/// The `start_iter` of each `RunStarted` in the log.
pub fn start_iters(run: &Path) -> Vec<u64> {
    events(run)
        .into_iter()
        .filter_map(|e| match e {
            Event::RunStarted { run, .. } => Some(run.start_iter),
            _ => None,
        })
        .collect()
}

/// Periodic checkpoint iterations present in a run.
pub fn checkpoint_iters(run: &Path) -> Vec<u64> {
    resnet_tui::train::checkpoint::list_periodic(&run.join("checkpoints")).into_iter().map(|(i, _)| i).collect()
}

/// Polls `cond` until it holds; a child that exits first, or a hung one, fails the test. Not a
/// timing assertion: see [`HangWatch`].
pub fn wait_until(child: &mut Child, what: &str, mut cond: impl FnMut() -> bool) {
    let mut watch = HangWatch::new(child.id());
    loop {
        if cond() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            if cond() {
                return;
            }
            panic!("the program exited ({status}) before {what}");
        }
        if let Some(why) = watch.hung() {
            let _ = child.kill();
            panic!("gave up waiting for {what}: {why}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tells a hung child from a slow one: a child (with the processes it started) that has used no
/// CPU time for two minutes is stuck; one still computing may be slow only because the machine
/// is busy (a training run beside the suite), so it is given up on only after an hour, which
/// bounds a busy loop.
pub struct HangWatch {
    pid: u32,
    ticks: u64,
    /// When the ticks last changed, were last read, and when the watch began.
    progressed: Instant,
    looked: Instant,
    started: Instant,
}

impl HangWatch {
    const IDLE: Duration = Duration::from_secs(120);
    const CAP: Duration = Duration::from_secs(3600);

    pub fn new(pid: u32) -> HangWatch {
        let now = Instant::now();
        HangWatch { pid, ticks: tree_cpu_ticks(pid), progressed: now, looked: now, started: now }
    }

    /// Why the child counts as hung now, if it does.
    pub fn hung(&mut self) -> Option<String> {
        // Reading every process's stat file is not free: once a second is enough.
        if self.looked.elapsed() < Duration::from_secs(1) {
            return None;
        }
        self.looked = Instant::now();
        let ticks = tree_cpu_ticks(self.pid);
        if ticks != self.ticks {
            self.ticks = ticks;
            self.progressed = Instant::now();
        }
        if self.progressed.elapsed() > Self::IDLE {
            Some(format!("no CPU time used for {} s", Self::IDLE.as_secs()))
        } else if self.started.elapsed() > Self::CAP {
            Some(format!("still busy after {} s", Self::CAP.as_secs()))
        } else {
            None
        }
    }
}

/// CPU clock ticks used so far by `pid` and every living process below it (from `/proc`).
fn tree_cpu_ticks(pid: u32) -> u64 {
    let stats: Vec<(u32, u32, u64)> = std::fs::read_dir("/proc")
        .map(|dir| dir.flatten().filter_map(|e| proc_stat(&e.path().join("stat"))).collect())
        .unwrap_or_default();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(stats.iter().filter(|s| s.1 == parent).map(|s| s.0));
        i += 1;
    }
    stats.iter().filter(|s| tree.contains(&s.0)).map(|s| s.2).sum()
}

/// A process's pid, parent pid and user + system ticks from its `stat` file.
fn proc_stat(path: &Path) -> Option<(u32, u32, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    // After the name: state (field 3), ppid (4), ..., utime (14), stime (15).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((pid, number(1)? as u32, number(11)? + number(12)?))
}

/// The run directory that appears under `runs` while a child trains.
pub fn wait_for_run(child: &mut Child, runs: &Path) -> PathBuf {
    let mut found = None;
    wait_until(child, "the run directory appears", || {
        found = run_dirs(runs).into_iter().find(|d| d.join(resnet_tui::runlog::LOG_NAME).is_file());
        found.is_some()
    });
    found.unwrap()
}

/// Number of complete `step` lines in a run's log, read tolerantly (the run may be mid-write).
pub fn steps_logged(run: &Path) -> usize {
    resnet_tui::runlog::read(run)
        .map(|log| log.events.iter().filter(|e| matches!(e, Event::Step { .. })).count())
        .unwrap_or(0)
}

/// Sends a signal to a child process.
pub fn signal(child: &Child, sig: i32) {
    let rc = unsafe { libc_kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed", child.id());
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

/// A checkpoint's model and momentum tensors as raw bytes by name, for exact comparison.
pub fn checkpoint_tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("checkpoint parses");
    let mut v: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Every file under `dir` with its bytes, to show that a refused command touched nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// Starts the command in the background, its stderr going to `stderr_to`.
pub fn spawn(mut cmd: Command, stderr_to: &Path) -> Child {
    let file = std::fs::File::create(stderr_to).expect("stderr file");
    cmd.stdout(Stdio::null()).stderr(file).spawn().expect("start resnet-tui")
}

/// A child process that is killed when dropped, so that a test failing part-way leaves no
/// training process behind (one left training a sweep cell takes the machine from what follows).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a child to exit, bounding a hang ([`HangWatch`]).
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let mut watch = HangWatch::new(child.id());
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if let Some(why) = watch.hung() {
            let _ = child.kill();
            panic!("the program did not exit: {why}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies a folder and everything in it.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Rewrites the metadata in a checkpoint's safetensors header (a u64 length, then JSON),
/// keeping the tensors and their checksum as they are.
pub fn rewrite_metadata(path: &Path, change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    change(header["__metadata__"].as_object_mut().expect("metadata"));
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// Every file under `dir`, the compressed log unpacked.
pub fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        let mut bytes = std::fs::read(&entry).unwrap();
        if entry.extension().is_some_and(|e| e == "gz") {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes.as_slice()), &mut plain).unwrap();
            bytes = plain;
        }
        out.push((entry.strip_prefix(dir).unwrap().display().to_string(), bytes));
    }
    out.sort();
    out
}

pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files.extend(walk(&p)) } else { files.push(p) }
    }
    files
}

/// Writes a file as `mailbox::send` does: a hidden temporary file in the same folder, renamed
/// into place, so that a reader polling the folder sees it whole or not at all.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The real CIFAR-10 binary files, as `CIFAR10_DIR` names them.
pub fn real_data() -> PathBuf {
    std::env::var_os("CIFAR10_DIR").map(PathBuf::from).expect(
        "CIFAR10_DIR must name the real CIFAR-10 binary files (the README's test command sets it to ../shared/cifar10)",
    )
}

/// The test error `eval` prints for a checkpoint (or a run directory: its best checkpoint), on
/// the real CIFAR-10 test set named by `CIFAR10_DIR`.
pub fn eval_error(target: &Path) -> f64 {
    eval_said(target, &real_data(), &[]).1
}

/// What `eval` of `target` on the data in `data` prints after "test error " (its error, the
/// images and the precision), and the error; `extra`: more arguments.
pub fn eval_said(target: &Path, data: &Path, extra: &[&str]) -> (String, f64) {
    let mut cmd = bin();
    cmd.arg("eval").arg(target).args(["--device", "cpu"]).arg("--data-dir").arg(data).args(extra);
    let out = output(cmd);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find("test error ").unwrap_or_else(|| panic!("no test error in {text}")) + 11;
    let said = text[start..].trim().to_string();
    let error = said[..said.find('%').unwrap()].parse().unwrap();
    (said, error)
}
