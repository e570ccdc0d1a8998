//! Faults during a run: divergence, checkpoints that cannot be written, panics and libtorch
//! errors in the trainer.
mod common;

use common::*;
use resnet_tui::protocol::{EndReason, Event};
use resnet_tui::train::checkpoint;
use std::path::Path;

#[test]
fn an_absurd_learning_rate_diverges_exits_3_and_keeps_the_last_good_checkpoint() {
    let s = Sandbox::new();
    let out =
        output(s.train(&["--iters", "30", "--lr", "1e6", "--checkpoint-every", "1", "--keep-checkpoints", "100"]));
    assert_eq!(out.status.code(), Some(3), "stderr:\n{}", stderr(&out));
    assert!(stderr(&out).contains("diverged at iteration"), "{}", stderr(&out));
    let run = s.only_run();
    let log = events(&run);
    let (at, loss, last_good, layer) = log
        .iter()
        .find_map(|e| match e {
            Event::Diverged { iter, loss, last_good, layer, .. } => {
                Some((*iter, *loss, last_good.clone(), layer.clone()))
            }
            _ => None,
        })
        .expect("a Diverged event in the log");
    assert!(!loss.is_finite(), "diverged with loss {loss}");
    // Where it broke is named: a block of the network or its classifier, or a gradient.
    let layer = layer.expect("the divergence names the first non-finite layer");
    assert!(["stem", "stage", "fc"].iter().any(|p| layer.starts_with(p)), "{layer}");
    assert!(stderr(&out).contains(&format!("first non-finite in {layer}")), "{}", stderr(&out));
    assert!(at > 1 && at < 30, "diverged at {at}");
    let summary = finished(&run).pop().unwrap();
    assert_eq!((summary.reason, summary.iters), (EndReason::Diverged, at));
    // Nothing is written at or after the bad step; every earlier checkpoint is there, whole.
    let after = log.iter().skip_while(|e| !matches!(e, Event::Diverged { .. }));
    assert!(!after.into_iter().any(|e| matches!(e, Event::Checkpoint { .. })));
    assert_eq!(checkpoint_iters(&run), (1..at).collect::<Vec<_>>());
    let last_good = last_good.expect("a last good checkpoint");
    assert_eq!(last_good, run.join(format!("checkpoints/iter-{:08}.safetensors", at - 1)));
    assert_eq!(checkpoint::read(&last_good).unwrap().state.iter, at - 1);
}

/// Sets a run's length in its config.json, as a recovery does with its learning rate.
/// `resume` that continues the run to `iters` (a change of its recipe, asked for by name).
fn resume_to(run: &Path, iters: u64) -> std::process::Command {
    let mut cmd = resume(run);
    cmd.arg("--set").arg(format!("iters={iters}"));
    cmd
}

#[test]
fn a_checkpoint_that_cannot_be_written_is_reported_and_training_goes_on() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "6", "--checkpoint-every", "2", "--eval-every", "3"])));
    let run = s.only_run();
    let dir = run.join("checkpoints");
    assert_eq!(checkpoint_iters(&run), vec![2, 4, 6]);
    let before = snapshot(&dir);
    // Continue the run to 12 with every new checkpoint unwritable: a directory sits where each
    // one's temporary file would go (root ignores permissions, so this is how a write fails).
    let blockers: Vec<_> = (7..=12)
        .map(|i| dir.join(format!(".iter-{i:08}.safetensors.tmp")))
        .chain([dir.join(".best.safetensors.tmp")])
        .collect();
    for b in &blockers {
        std::fs::create_dir(b).unwrap();
    }
    let out = output(resume_to(&run, 12));
    // The final checkpoint (12) is blocked too: the run says so in its exit code (see below).
    assert_eq!(out.status.code(), Some(4), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("checkpoint not written")).collect();
    assert!(!warnings.is_empty(), "{err}");
    assert!(warnings.iter().all(|l| l.starts_with("warning: ") && l.contains("iter-0000")), "{err}");
    let log = events(&run);
    let errors = log
        .iter()
        .filter(
            |e| matches!(e, Event::Error { fatal: false, message, .. } if message.contains("checkpoint not written")),
        )
        .count();
    assert_eq!(errors, warnings.len());
    let summary = finished(&run).pop().unwrap();
    assert_eq!((summary.reason, summary.iters), (EndReason::Completed, 12), "training went on");
    // The older checkpoints are untouched: not pruned, not rewritten.
    let after: Vec<_> =
        snapshot(&dir).into_iter().filter(|(p, _)| !blockers.iter().any(|b| p.starts_with(b))).collect();
    assert_eq!(after, before);

    // With the disk writable again, the run resumes from its newest checkpoint and completes.
    for b in &blockers {
        std::fs::remove_dir(b).unwrap();
    }
    assert_ok(&output(resume(&run)));
    assert_eq!(start_iters(&run), vec![0, 6, 6]);
    assert_eq!(checkpoint_iters(&run), vec![8, 10, 12]);
}

#[test]
fn a_run_whose_final_checkpoint_cannot_be_written_exits_4_with_one_line() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "4", "--checkpoint-every", "2", "--eval-every", "2"])));
    let run = s.only_run();
    let dir = run.join("checkpoints");
    let blocker = |iter: u64| {
        let path = dir.join(format!(".iter-{iter:08}.safetensors.tmp"));
        std::fs::create_dir(&path).unwrap();
        path
    };

    // Only a periodic checkpoint (6) fails: a warning, and the run still exits 0.
    let periodic = blocker(6);
    let out = output(resume_to(&run, 8));
    assert_ok(&out);
    assert!(stderr(&out).contains("warning: checkpoint not written"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("error:"), "{}", stderr(&out));
    assert_eq!(checkpoint_iters(&run), vec![2, 4, 8]);
    std::fs::remove_dir(periodic).unwrap();

    // The final checkpoint (10) fails: exit 4 and one line saying so, after the warning.
    let last = blocker(10);
    let out = output(resume_to(&run, 10));
    assert_eq!(out.status.code(), Some(4), "stderr:\n{}", stderr(&out));
    let line = assert_refused(&out, &["final checkpoint (iteration 10) was not written", "resume"]);
    assert!(line.starts_with("resnet-tui: error: "), "{line}");
    let err = stderr(&out);
    let warned = err.find("warning: checkpoint not written").expect("a warning");
    assert!(warned < err.find(&line).unwrap(), "{err}");
    let summary = finished(&run).pop().unwrap();
    assert_eq!((summary.reason, summary.iters), (EndReason::Completed, 10), "the run itself ended");
    assert_eq!(checkpoint_iters(&run), vec![2, 4, 8]);

    // Once the disk takes it, a resume redoes the last steps and writes it.
    std::fs::remove_dir(last).unwrap();
    assert_ok(&output(resume(&run)));
    assert_eq!(start_iters(&run), vec![0, 4, 8, 8]);
    assert_eq!(checkpoint_iters(&run).last(), Some(&10));
}

/// A fault injected before step 4: one error line that says `expect` (and each of `also`), a
/// non-zero exit, the error in the run's log, and the run still resumable from its last
/// checkpoint.
fn a_fault_in_the_trainer_ends_the_run_cleanly(fault: &str, expect: &str, also: &[&str]) {
    let s = Sandbox::new();
    let mut cmd = s.train(&["--iters", "10", "--checkpoint-every", "2"]);
    cmd.env("RESNET_TUI_FAULT", fault);
    let out = output(cmd);
    let needles: Vec<&str> = std::iter::once(expect).chain(also.iter().copied()).collect();
    let line = assert_refused(&out, &needles);
    assert!(line.starts_with("resnet-tui: error: "), "{line}");
    let run = s.only_run();
    let last = events(&run).pop().unwrap();
    assert!(matches!(&last, Event::Error { fatal: true, message, .. } if message.contains(expect)), "{last:?}");
    assert_eq!(checkpoint_iters(&run), vec![2]);
    assert_ok(&output(resume(&run)));
    assert_eq!(start_iters(&run), vec![0, 2]);
    assert_eq!(finished(&run).pop().unwrap().reason, EndReason::Completed);
}

#[test]
fn a_panic_in_the_trainer_is_logged_and_exits_non_zero_with_one_line() {
    a_fault_in_the_trainer_ends_the_run_cleanly(
        "panic@3",
        "injected fault at iteration 3",
        &["internal error in the trainer"],
    );
}

#[test]
fn a_libtorch_error_in_the_trainer_is_logged_and_exits_non_zero_with_one_line() {
    // libtorch's own first line; whether it is called an internal error or a failed step is the
    // trainer's wording, not the guarantee.
    a_fault_in_the_trainer_ends_the_run_cleanly("torch@3", "libtorch: mat1 and mat2 shapes cannot be multiplied", &[]);
}
