//! The Slurm executor: an `sbatch` array script with one task per cell, each task running the
//! idempotent `resnet-tui sweep cell`, with `--requeue` and a signal before the time limit
//! (`--signal=B:USR1@N`): the task checkpoints at once and requeues itself (`scontrol requeue`
//! of its own array task, as Python's submitit does), and a task that Slurm requeues or restarts
//! by itself resumes from its newest checkpoint. Slurm does the scheduling; nothing here waits.

use crate::config::Bound;
use crate::sweep::{Sweep, SweepError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of a sweep with the script and the tasks' output.
pub const SLURM_DIR: &str = "slurm";
pub const SCRIPT_NAME: &str = "submit.sbatch";

/// The counts an array task may ask for. sbatch refuses a task of no CPU and an array throttled
/// to no task at once only after the script is written, and `--signal` takes at most 65535
/// seconds: each is refused where it is typed instead.
pub const CPUS_PER_TASK: Bound = Bound { flag: "--cpus-per-task", min: 1, max: 1024 };
pub const GPUS_PER_TASK: Bound = Bound { flag: "--gpus-per-task", min: 0, max: 64 };
pub const MAX_PARALLEL: Bound = Bound { flag: "--max-parallel", min: 1, max: 1_000_000 };
pub const SIGNAL_SECS: Bound = Bound { flag: "--signal-secs", min: 1, max: 65_535 };

/// What the array asks of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmOptions {
    /// The program the tasks run, as the compute nodes see it (on the shared file system).
    pub exe: PathBuf,
    /// `--time` (e.g. `4:00:00`); the cluster's default when `None`.
    pub time: Option<String>,
    pub partition: Option<String>,
    pub cpus_per_task: u32,
    /// GPUs per task (0: CPU only).
    pub gpus_per_task: u32,
    /// `--mem` (e.g. `8G`); `submit` asks for the largest cell's estimate when `None`.
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=0-N%K`).
    pub max_parallel: Option<usize>,
    /// Seconds before the time limit at which the task is told to checkpoint and requeue.
    pub signal_secs: u32,
    /// More `#SBATCH` options, as written on sbatch's command line (`--account=x`).
    pub extra: Vec<String>,
}

/// The array script for `sweep` in `sweep_dir` (an absolute path, as the nodes see it).
pub fn script(sweep_dir: &Path, sweep: &Sweep, o: &SlurmOptions) -> String {
    let dir = sweep_dir.display();
    let name = sweep_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "sweep".into());
    let last = sweep.cells.len().saturating_sub(1);
    let throttle = o.max_parallel.map(|k| format!("%{k}")).unwrap_or_default();
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("# resnet-tui sweep {dir}: one array task per cell (task i = cell i of sweep.json)."),
        "# Written by `resnet-tui sweep slurm`; submitting it again is safe: done cells are skipped,".to_string(),
        "# interrupted ones resume from their newest checkpoint.".to_string(),
        format!("#SBATCH --job-name=resnet-tui-{name}"),
        format!("#SBATCH --array=0-{last}{throttle}"),
        format!("#SBATCH --output={dir}/{SLURM_DIR}/%A_%a.out"),
        "#SBATCH --open-mode=append".to_string(),
        "#SBATCH --requeue".to_string(),
        // B: the batch shell only, which `exec` below makes resnet-tui itself.
        format!("#SBATCH --signal=B:USR1@{}", o.signal_secs),
        "#SBATCH --ntasks=1".to_string(),
        format!("#SBATCH --cpus-per-task={}", o.cpus_per_task),
    ];
    if o.gpus_per_task > 0 {
        lines.push(format!("#SBATCH --gpus-per-task={}", o.gpus_per_task));
    }
    let optional = [("time", &o.time), ("partition", &o.partition), ("mem", &o.mem)];
    lines.extend(optional.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("#SBATCH --{k}={v}"))));
    lines.extend(o.extra.iter().map(|e| format!("#SBATCH {e}")));
    lines.push(String::new());
    lines.push("# libtorch sizes its thread pools from these.".to_string());
    lines
        .push("export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} MKL_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}".to_string());
    lines.push(format!(
        "exec {} sweep cell {} \"$SLURM_ARRAY_TASK_ID\"",
        shell_quote(&o.exe.display().to_string()),
        shell_quote(&dir.to_string())
    ));
    lines.join("\n") + "\n"
}

/// `'it''s'` quoting for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=@".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What `sweep slurm` did.
#[derive(Debug, PartialEq)]
pub enum Submission {
    /// `sbatch` accepted the array: its job id.
    Submitted { job: String, script: PathBuf, tasks: usize },
    /// Not submitted (no `sbatch` here, or asked to print): the script, written to `script`.
    Written { script: PathBuf, text: String },
}

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error("{}: cannot write: {}", .0.display(), .1)]
    Write(PathBuf, std::io::Error),
    #[error("sbatch refused the array: {0}")]
    Refused(String),
    #[error("cannot requeue: {0}")]
    Requeue(String),
}

/// Writes the array script into the sweep and submits it when `sbatch` is on the PATH (and
/// `print_only` is not set).
pub fn submit(sweep_dir: &Path, options: &SlurmOptions, print_only: bool) -> Result<Submission, SlurmError> {
    let sweep_dir = sweep_dir.canonicalize().map_err(|_| SweepError::NotASweep(sweep_dir.to_path_buf()))?;
    let sweep = Sweep::load(&sweep_dir)?;
    let folder = sweep_dir.join(SLURM_DIR);
    std::fs::create_dir_all(&folder).map_err(|e| SlurmError::Write(folder.clone(), e))?;
    let mut options = options.clone();
    if options.mem.is_none() {
        options.mem = memory_request(&sweep_dir, &sweep, options.gpus_per_task > 0);
    }
    let text = script(&sweep_dir, &sweep, &options);
    let path = folder.join(SCRIPT_NAME);
    crate::atomic::write(&path, text.as_bytes()).map_err(|e| SlurmError::Write(path.clone(), e))?;
    if print_only || on_path("sbatch").is_none() {
        return Ok(Submission::Written { script: path, text });
    }
    let out =
        Command::new("sbatch").arg("--parsable").arg(&path).output().map_err(|e| SlurmError::Refused(e.to_string()))?;
    if !out.status.success() {
        return Err(SlurmError::Refused(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    // `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job = stdout.trim().split(';').next().unwrap_or_default().to_string();
    Ok(Submission::Submitted { job, script: path, tasks: sweep.cells.len() })
}

/// `--mem` for the array: the largest cell's memory estimate, in MiB rounded up. The estimate is
/// an upper bound of the peak, so a cluster that enforces `--mem` (its cgroup plugin) does not
/// kill a cell for going over, and one that cannot offer that much refuses at submission.
/// `None` when no cell's config can be read (the cluster's default then applies).
pub fn memory_request(sweep_dir: &Path, sweep: &Sweep, cuda: bool) -> Option<String> {
    let configs = sweep.cells.iter().filter_map(|c| crate::rundir::read_config(&sweep_dir.join(&c.name)).ok());
    let need = configs.map(|c| crate::memory::estimate(c.depth, c.batch_size, c.precision, cuda).host).max()?;
    Some(format!("{}M", need.div_ceil(1 << 20)))
}

/// The program `name` as the PATH finds it.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The Slurm job id of this task: `JOB_TASK` for an array task, else the job's.
pub fn own_job_id() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// Puts this task back in the queue (`scontrol requeue`), after its run has checkpointed.
pub fn requeue_self() -> Result<String, SlurmError> {
    let job = own_job_id().ok_or_else(|| SlurmError::Requeue("not inside a Slurm job (no SLURM_JOB_ID)".into()))?;
    let out = Command::new("scontrol")
        .args(["requeue", &job])
        .output()
        .map_err(|e| SlurmError::Requeue(format!("scontrol: {e}")))?;
    if !out.status.success() {
        return Err(SlurmError::Requeue(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::Axis;

    fn options() -> SlurmOptions {
        SlurmOptions {
            exe: "/shared/bin/resnet-tui".into(),
            time: Some("4:00:00".into()),
            partition: None,
            cpus_per_task: 8,
            gpus_per_task: 1,
            mem: None,
            max_parallel: Some(2),
            signal_secs: 120,
            extra: vec!["--account=lab".into()],
        }
    }

    #[test]
    fn the_script_runs_one_cell_per_array_task_and_asks_for_the_warning_signal() {
        let axes = vec![Axis::read("depth", &["20", "32"]).unwrap(), Axis::read("seed", &["1", "2"]).unwrap()];
        let sweep = Sweep::grid(axes).unwrap();
        let text = script(Path::new("/shared/sweeps/my table"), &sweep, &options());
        for line in [
            "#SBATCH --array=0-3%2",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR1@120",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --time=4:00:00",
            "#SBATCH --account=lab",
            "#SBATCH --open-mode=append",
            "exec /shared/bin/resnet-tui sweep cell '/shared/sweeps/my table' \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("--partition") && !text.contains("--mem"), "{text}");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_memory_asked_for_is_the_largest_cells_estimate() {
        let dir = tempfile::tempdir().unwrap();
        let axes = vec![Axis::read("depth", &["20", "1202"]).unwrap()];
        let sweep = Sweep::grid(axes).unwrap();
        let base: crate::config::RunConfig =
            serde_json::from_str(include_str!("../../tests/data/config.json")).unwrap();
        let config_of = |cell: &crate::sweep::Cell| {
            let mut config = base.clone();
            cell.settings.iter().try_for_each(|s| s.apply(&mut config)).map(|()| config)
        };
        sweep.create(dir.path(), config_of).unwrap();
        let need =
            crate::memory::estimate(crate::config::Depth::new(1202).unwrap(), base.batch_size, base.precision, false);
        let mem = memory_request(dir.path(), &sweep, false).unwrap();
        assert_eq!(mem, format!("{}M", need.host.div_ceil(1 << 20)));
        let mib: u64 = mem.trim_end_matches('M').parse().unwrap();
        assert!(mib << 20 >= need.host && (mib - 1) << 20 < need.host, "{mem} rounds the estimate up");
        assert_eq!(memory_request(Path::new("/nonexistent"), &sweep, false), None);
    }
}
