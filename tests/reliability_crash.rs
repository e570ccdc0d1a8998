//! Crash safety: SIGKILL at random moments never loses the run, and a run directory is locked
//! while a process trains in it.
//!
//! The kill test runs 5 kills here; `RESNET_TUI_KILL_ROUNDS=200` runs a longer one, and
//! `RESNET_TUI_KILL_SEED` replays a given sequence of kill moments.
mod common;

use common::*;
use rand::{Rng, SeedableRng};
use resnet_tui::protocol::{EndReason, Event};
use resnet_tui::train::checkpoint;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ITERS: u64 = 40;

fn recipe() -> Vec<&'static str> {
    vec!["--iters", "40", "--checkpoint-every", "2", "--eval-every", "10"]
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What must hold after any kill: every checkpoint on disk reads back whole, and the log reads
/// back with at most one skipped line per kill so far.
fn check_after_kill(run: &Path, kills: usize) {
    let dir = run.join("checkpoints");
    for (iter, path) in checkpoint::list_periodic(&dir) {
        let ck = checkpoint::read(&path).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        assert_eq!(ck.state.iter, iter);
    }
    let best = dir.join(checkpoint::BEST_NAME);
    if best.exists() {
        checkpoint::read(&best).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
    }
    let log = run.join(resnet_tui::runlog::LOG_NAME);
    if std::fs::metadata(&log).map(|m| m.len() > 0).unwrap_or(false) {
        let read = resnet_tui::runlog::read_strict(run).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        assert!(read.warnings.len() <= kills, "after kill {kills}: {:?}", read.warnings);
    }
}

/// The run directory that holds a config (a kill can come before there is one) and is not
/// one of the runs already `done`.
fn the_run(runs: &Path, done: &[PathBuf]) -> Option<PathBuf> {
    run_dirs(runs).into_iter().find(|d| d.join(resnet_tui::rundir::CONFIG_NAME).is_file() && !done.contains(d))
}

fn completed(run: &Path) -> bool {
    finished(run).last().is_some_and(|s| s.reason == EndReason::Completed && s.iters == ITERS)
}

/// A run finished after kills equals the run done in one go: steps redone after a kill give
/// the same losses as the first time, every step is logged, and the final weights are the same.
fn assert_same_as(run: &Path, reference: &Path) {
    let expected = step_losses(reference);
    let got = step_losses(run);
    for (iter, loss) in &got {
        let want = expected[*iter as usize - 1];
        assert_eq!((*iter, *loss), want, "step {iter} after kills differs from the run done in one go");
    }
    let mut iters: Vec<u64> = got.iter().map(|s| s.0).collect();
    iters.sort();
    iters.dedup();
    assert_eq!(iters, (1..=ITERS).collect::<Vec<_>>(), "every step is logged");
    let name = format!("checkpoints/iter-{ITERS:08}.safetensors");
    assert!(checkpoint_tensors(&reference.join(&name)) == checkpoint_tensors(&run.join(&name)));
}

#[test]
fn sigkill_at_random_moments_never_loses_the_run() {
    let rounds = env_u64("RESNET_TUI_KILL_ROUNDS").unwrap_or(5) as usize;
    let seed = env_u64("RESNET_TUI_KILL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kill moments from RESNET_TUI_KILL_SEED={seed}");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);

    let one_go = Sandbox::new();
    assert_ok(&output(one_go.train(&recipe())));
    let reference = one_go.only_run();
    // How long a whole run takes here, start-up included: kills fall anywhere in it.
    let span = finished(&reference).pop().unwrap().train_secs;
    let span_ms = ((span * 1000.0) as u64 + 800).max(500);

    // Kill, resume, kill... until the run completes; then start another run, and so on.
    let s = Sandbox::new();
    let mut done: Vec<PathBuf> = Vec::new();
    let mut run: Option<PathBuf> = None;
    let mut kills_of_run = 0;
    for kill in 1..=rounds {
        let cmd = match &run {
            Some(r) => resume(r),
            None => s.train(&recipe()),
        };
        let mut child = spawn(cmd, &s.path("stderr"));
        std::thread::sleep(Duration::from_millis(rng.random_range(0..span_ms)));
        signal(&child, SIGKILL);
        let status = wait_exit(&mut child);
        if run.is_none() {
            run = the_run(&s.runs(), &done);
            kills_of_run = 0;
        }
        let Some(r) = run.clone() else { continue };
        kills_of_run += 1;
        check_after_kill(&r, kills_of_run);
        eprintln!("kill {kill}: {status}, checkpoints {:?}", checkpoint_iters(&r));
        if completed(&r) {
            assert_same_as(&r, &reference);
            done.push(r);
            run = None;
        }
    }

    // The run in progress finishes with one more resume (or a first start, if every kill of
    // this one came before it had a directory).
    let run = match run {
        Some(r) => r,
        None => {
            assert_ok(&output(s.train(&recipe())));
            the_run(&s.runs(), &done).unwrap()
        }
    };
    assert_ok(&output(resume(&run)));
    assert!(completed(&run));
    assert_same_as(&run, &reference);
    eprintln!("{} runs completed after kills", done.len() + 1);
}

#[test]
fn a_run_being_trained_cannot_be_resumed_by_a_second_process() {
    let s = Sandbox::new();
    let mut child = spawn(s.train(&["--iters", "400", "--checkpoint-every", "1"]), &s.path("stderr"));
    let run = wait_for_run(&mut child, &s.runs());
    wait_until(&mut child, "a checkpoint is written", || !checkpoint_iters(&run).is_empty());
    let out = output(resume(&run));
    assert_refused(&out, &["another resnet-tui process is training in this run", &run.display().to_string()]);
    signal(&child, SIGINT);
    assert!(wait_exit(&mut child).success());
    // The refused process wrote nothing into the run's log.
    let log = events(&run);
    assert_eq!(log.iter().filter(|e| matches!(e, Event::RunStarted { .. })).count(), 1);
    assert!(!log.iter().any(|e| matches!(e, Event::Error { .. })), "{log:?}");
    // Once the first process is gone, the run resumes.
    let mut again = spawn(resume(&run), &s.path("stderr2"));
    wait_until(&mut again, "the resumed run starts", || start_iters(&run).len() == 2);
    signal(&again, SIGTERM);
    assert!(wait_exit(&mut again).success());
}

#[test]
fn a_second_sigint_quits_at_once_with_130_and_the_run_stays_resumable() {
    let s = Sandbox::new();
    // The trainer stalls before step 6, as a very long step or a hung disk would: the clean
    // stop the first SIGINT asks for cannot finish, and the second must not wait for it. The
    // first is sent once the stall has said it began, never while step 6 could still start.
    let mut cmd = s.train(&recipe());
    let stalled = s.path("stalled");
    cmd.env("RESNET_TUI_FAULT", "stall@5").env("RESNET_TUI_FAULT_NOTE", &stalled);
    let stderr_path = s.path("stderr");
    let said = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let mut child = spawn(cmd, &stderr_path);
    let run = wait_for_run(&mut child, &s.runs());
    wait_until(&mut child, "the trainer stalls before step 6", || stalled.exists());
    assert_eq!(steps_logged(&run), 5);
    signal(&child, SIGINT);
    wait_until(&mut child, "the stop is announced", || said().contains("Ctrl-C again quits at once"));
    // Signals within the echo window of the first are that same request; past it, a second.
    std::thread::sleep(resnet_tui::signals::ECHO_WINDOW * 2);
    assert!(child.try_wait().unwrap().is_none(), "the first SIGINT waits for the final checkpoint");
    signal(&child, SIGINT);
    let status = wait_exit(&mut child);
    let err = said();
    assert_eq!(status.code(), Some(130), "stderr:\n{err}");
    assert!(err.lines().last().is_some_and(|l| l.starts_with("resnet-tui: interrupted: ")), "{err}");
    for bad in ["panicked", "stack backtrace", "internal error"] {
        assert!(!err.contains(bad), "{err}");
    }
    // Nothing was waited for (no final checkpoint, no summary), and what is on disk reads back.
    assert!(finished(&run).is_empty());
    assert_eq!(checkpoint_iters(&run), vec![2, 4]);
    check_after_kill(&run, 1);
    assert_ok(&output(resume(&run)));
    assert_eq!(start_iters(&run), vec![0, 4]);
    assert!(completed(&run));
}

#[test]
fn one_sigterm_delivered_twice_at_once_as_timeout_does_is_one_clean_stop() {
    // GNU `timeout` forwards a SIGTERM to its child and then to its process group: the run
    // receives it twice within microseconds. That is one request to stop, not a second Ctrl-C.
    let s = Sandbox::new();
    let stderr_path = s.path("stderr");
    let mut child = spawn(s.train(&["--iters", "400", "--checkpoint-every", "1000"]), &stderr_path);
    let run = wait_for_run(&mut child, &s.runs());
    wait_until(&mut child, "a few steps are logged", || steps_logged(&run) >= 3);
    signal(&child, SIGTERM);
    signal(&child, SIGTERM);
    let status = wait_exit(&mut child);
    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "{status}; stderr:\n{err}");
    assert!(!err.contains("interrupted"), "{err}");
    let stopped_at = finished(&run).last().map(|f| f.iters).expect("a summary of the stopped run");
    assert_eq!(checkpoint_iters(&run).last(), Some(&stopped_at), "the final checkpoint is written");
}

#[test]
fn temporary_files_left_by_a_kill_mid_write_are_removed_when_the_run_resumes() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "4", "--checkpoint-every", "2"])));
    let run = s.only_run();
    let dir = run.join("checkpoints");
    // What a kill between creating a temporary file and renaming it leaves behind.
    let stale =
        [dir.join(".iter-00000006.safetensors.tmp"), dir.join(".best.safetensors.tmp"), run.join(".config.json.tmp")];
    // Files of other names are the user's: they stay.
    let others = [dir.join("notes.tmp"), dir.join("iter-00000006.safetensors.tmp"), run.join(".notes.tmp")];
    for file in stale.iter().chain(&others) {
        std::fs::write(file, b"half a checkpoint").unwrap();
    }
    assert_ok(&output(resume(&run)));
    for file in &stale {
        assert!(!file.exists(), "{} is still there", file.display());
    }
    for file in &others {
        assert_eq!(std::fs::read(file).unwrap(), b"half a checkpoint", "{}", file.display());
    }
    assert_eq!(start_iters(&run), vec![0, 4]);
}
