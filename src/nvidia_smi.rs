//! What `nvidia-smi` says about the machine's CUDA devices: libtorch's figures for them are not
//! reachable through tch (free memory, the driver's version) or not kept (compute capability
//! without a context). A hung driver hangs `nvidia-smi` with it, so each call has [`TIMEOUT`].

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long `nvidia-smi` may take. It answers in well under a second; one that takes longer is
/// waiting on a hung driver, and the trainer's start must not wait with it.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Set once `nvidia-smi` has timed out in this process: later questions get no answer at once
/// rather than waiting again on the same hung driver.
static HUNG: AtomicBool = AtomicBool::new(false);

/// Why `nvidia-smi` gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum SmiError {
    #[error("{program}: {error}")]
    Run { program: String, error: std::io::Error },
    #[error("{program} did not answer within {} s (a hung GPU driver?) and was killed", .timeout.as_secs_f64())]
    TimedOut { program: String, timeout: Duration },
    #[error("{program} failed ({status})")]
    Failed { program: String, status: ExitStatus },
}

/// What `nvidia-smi` lists: how many GPUs, and the driver's version.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    pub gpus: usize,
    pub driver: String,
}

/// The GPUs `nvidia-smi` lists, whatever libtorch or `CUDA_VISIBLE_DEVICES` make of them; `None`
/// when there is no `nvidia-smi` or it gives no answer.
pub fn listing() -> Option<Listing> {
    parse_listing(&nvidia_smi(&["--query-gpu=driver_version", "--format=csv,noheader"])?)
}

/// One line a GPU, each its driver's version.
fn parse_listing(text: &str) -> Option<Listing> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let driver = lines.first()?.to_string();
    Some(Listing { gpus: lines.len(), driver })
}

/// The CSV answer of `nvidia-smi --query-gpu=FIELDS` for CUDA device `index` as libtorch numbers
/// it: `nvidia-smi` numbers GPUs ignoring `CUDA_VISIBLE_DEVICES`, so the ordinal is mapped
/// through it. `None` when there is no such device or no answer from `nvidia-smi`.
pub fn query(index: usize, fields: &str, format: &str) -> Option<String> {
    let physical = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(list) => list.split(',').nth(index)?.trim().to_string(),
        Err(_) => index.to_string(),
    };
    nvidia_smi(&[&format!("--query-gpu={fields}"), &format!("--format={format}"), "-i", &physical])
}

/// `nvidia-smi ARGS`, found through `PATH`, with [`TIMEOUT`]; `None` for any failure. These
/// answers are extras (a memory check, a precision choice, a warning), so a failure goes unsaid.
fn nvidia_smi(args: &[&str]) -> Option<String> {
    if HUNG.load(Ordering::Relaxed) {
        return None;
    }
    match run(Path::new("nvidia-smi"), args, TIMEOUT) {
        Ok(out) => Some(out),
        Err(SmiError::TimedOut { .. }) => {
            HUNG.store(true, Ordering::Relaxed);
            None
        }
        Err(_) => None,
    }
}

/// Runs `program ARGS` and returns its standard output, trimmed; past `timeout` the program is
/// killed and the error says so.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<String, SmiError> {
    let name = program.display().to_string();
    let failed = |error| SmiError::Run { program: name.clone(), error };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(failed)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Read on a thread of its own: a program that fills the pipe would otherwise never exit, and
    // one that hangs must not hold the caller.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let Some(status) = wait_for(&mut child, timeout).map_err(failed)? else {
        let _ = child.kill();
        // Reaped on a thread of its own: a process stuck inside a driver dies only once the
        // driver lets it go, which may be never.
        std::thread::spawn(move || child.wait());
        return Err(SmiError::TimedOut { program: name, timeout });
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(SmiError::Failed { program: name, status });
    }
    Ok(text.trim().to_string())
}

/// The child's exit status, or `None` once `timeout` has passed without one.
fn wait_for(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: &str = "/bin/sh";

    #[test]
    fn a_hung_nvidia_smi_is_killed_at_its_timeout_and_the_error_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // A stand-in for nvidia-smi on a hung driver: it notes its process id, then never answers.
        let script = format!("echo $$ > '{}'; exec sleep 30", pid_file.display());
        let started = Instant::now();
        let err = run(Path::new(SH), &["-c", &script], Duration::from_secs(1)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "it waited {:?}", started.elapsed());
        assert!(matches!(err, SmiError::TimedOut { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("did not answer within 1 s") && text.contains("killed"), "{text}");
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
        let gone = || !Path::new(&format!("/proc/{pid}")).exists();
        let until = Instant::now() + Duration::from_secs(5);
        while !gone() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "process {pid} was neither killed nor reaped");
    }

    #[test]
    fn an_answer_in_time_is_the_programs_output_and_a_failure_is_an_error() {
        let answer = run(Path::new(SH), &["-c", "echo ' 570.86.15'; echo 570.86.15"], TIMEOUT).unwrap();
        assert_eq!(answer, "570.86.15\n570.86.15");
        assert_eq!(parse_listing(&answer), Some(Listing { gpus: 2, driver: "570.86.15".into() }));
        assert_eq!(parse_listing("\n"), None, "no GPU listed");
        let failed = run(Path::new(SH), &["-c", "exit 9"], TIMEOUT).unwrap_err();
        assert!(matches!(failed, SmiError::Failed { .. }), "{failed}");
        let missing = run(Path::new("/nonexistent/nvidia-smi"), &[], TIMEOUT).unwrap_err();
        assert!(missing.to_string().starts_with("/nonexistent/nvidia-smi: "), "{missing}");
    }
}
