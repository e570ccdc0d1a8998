//! A sweep on a real Slurm: Debian's slurmctld, slurmd and munge started as a single-node
//! cluster by `scripts/slurm-test-cluster` (installed first when missing). The test fails, never
//! skips, when the cluster cannot start. One task is requeued by Slurm mid-run (`scontrol
//! requeue`: SIGTERM, checkpoint, restart), one gets the time-limit warning (SIGUSR1: checkpoint,
//! then it requeues itself); every cell finishes, and the interrupted ones' per-step losses equal
//! runs done in one go.
mod common;

use common::*;
use resnet_tui::frontend::history::History;
use resnet_tui::protocol::EndReason;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The cluster, stopped when the test ends however it ends.
struct Cluster {
    state: PathBuf,
    conf: String,
}

impl Cluster {
    fn start(state: &Path) -> Cluster {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-test-cluster");
        let out = Command::new(&script).arg("start").arg(state).output().expect("run scripts/slurm-test-cluster");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the Slurm test cluster did not start:\n{}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = stdout.lines().last().and_then(|l| l.strip_prefix("SLURM_CONF=")).expect("SLURM_CONF= line");
        Cluster { state: state.to_path_buf(), conf: conf.to_string() }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the job still has tasks queued, running or completing.
    fn job_alive(&self, job: &str) -> bool {
        let out = self.command("squeue").args(["-h", "-j", job]).output().expect("squeue");
        // An unknown job id (already purged) is a finished job.
        out.status.success() && !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-test-cluster");
        let _ = Command::new(script).arg("stop").arg(&self.state).output();
    }
}

/// Polls `cond` until it holds, failing after `secs` with what was awaited.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The run's steps as they stand after resumes replaced what followed their checkpoints.
fn effective_losses(run: &Path) -> Vec<(u64, f64)> {
    History::from_events(&events(run)).steps.iter().map(|s| (s.iter, s.loss)).collect()
}

fn outcome(run: &Path) -> (Option<EndReason>, usize) {
    let h = History::from_events(&events(run));
    (h.end(), h.starts)
}

#[test]
fn a_sweep_on_slurm_survives_a_requeue_and_a_time_limit_warning() {
    let s = Sandbox::new();
    let cluster = Cluster::start(&s.path("slurm"));
    let sweep = s.path("table");
    let data = s.data();
    let create = output({
        let mut c = bin();
        c.args(["sweep", "create"]).arg(&sweep).args([
            "--depths",
            "8",
            "--seeds",
            "1,2,3",
            "--iters",
            "800",
            "--batch-size",
            "16",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--checkpoint-every",
            "50",
            "--eval-every",
            "400",
        ]);
        c.arg("--data-dir").arg(&data);
        c
    });
    assert_ok(&create);
    let submit = output({
        let mut c = bin();
        c.env("SLURM_CONF", &cluster.conf).args(["sweep", "slurm"]).arg(&sweep).args(["--cpus-per-task", "1"]);
        c
    });
    assert_ok(&submit);
    let said = String::from_utf8_lossy(&submit.stdout).into_owned();
    let job = said
        .split_whitespace()
        .skip_while(|w| *w != "job")
        .nth(1)
        .unwrap_or_else(|| panic!("no job id in {said:?}"))
        .trim_end_matches(':')
        .to_string();
    let cells: Vec<PathBuf> =
        ["resnet8-seed1", "resnet8-seed2", "resnet8-seed3"].iter().map(|c| sweep.join(c)).collect();

    // Task 0: Slurm takes it back (as for a preemption): SIGTERM, a checkpoint, a restart.
    wait_for(120, "task 0 to train", || steps_logged(&cells[0]) >= 150);
    cluster.run("scontrol", &["requeue", &format!("{job}_0")]);
    // Task 1: the warning before the time limit: it checkpoints and requeues itself.
    wait_for(120, "task 1 to train", || steps_logged(&cells[1]) >= 150);
    cluster.run("scancel", &["--signal=USR1", "--batch", &format!("{job}_1")]);

    wait_for(600, "the array to finish", || !cluster.job_alive(&job));
    for (i, cell) in cells.iter().enumerate() {
        let (end, starts) = outcome(cell);
        assert_eq!(
            end,
            Some(EndReason::Completed),
            "cell {i} finished; its output:\n{}",
            slurm_output(&sweep, &job, i)
        );
        let expected_starts = if i < 2 { 2 } else { 1 };
        assert!(starts >= expected_starts, "cell {i}: {starts} starts");
    }
    let warned = slurm_output(&sweep, &job, 1);
    assert!(warned.contains("SIGUSR1") && warned.contains("requeued Slurm task"), "{warned}");

    // The interrupted cells equal the same runs done in one go.
    for cell in &cells[..2] {
        let alone = s.path(&format!("alone-{}", cell.file_name().unwrap().to_string_lossy()));
        std::fs::create_dir_all(&alone).unwrap();
        std::fs::copy(cell.join("config.json"), alone.join("config.json")).unwrap();
        assert_ok(&output(resume(&alone)));
        let (got, want) = (effective_losses(cell), effective_losses(&alone));
        assert_eq!(got.len(), 800);
        assert_eq!(got, want, "{}: per-step losses differ from the uninterrupted run", cell.display());
    }
    // The table of the sweep, as `summary` prints it.
    let table = output({
        let mut c = bin();
        c.arg("summary").arg(&sweep);
        c
    });
    assert_ok(&table);
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(text.lines().any(|l| l.starts_with("ResNet-8") && l.contains("3/0/0/0")), "{text}");
}

fn slurm_output(sweep: &Path, job: &str, task: usize) -> String {
    std::fs::read_to_string(sweep.join("slurm").join(format!("{job}_{task}.out"))).unwrap_or_default()
}
