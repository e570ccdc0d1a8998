//! Exact resume and clean stops: a run stopped by a signal and resumed is the run done in one go.
mod common;

use common::*;
use resnet_tui::protocol::{CheckpointReason, EndReason, Event, StepRecord};
use std::path::Path;

const ITERS: u64 = 40;

fn recipe() -> Vec<String> {
    ["--iters", &ITERS.to_string(), "--checkpoint-every", "5", "--eval-every", "20"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Which training pass a run takes.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Pass {
    /// fp32 on libtorch's autograd (`RESNET_TUI_FUSED=0`).
    Autograd,
    /// fp32 on the fused CPU pass: as the tests' runs train by default.
    FusedFp32,
    /// bf16 on the fused CPU pass.
    FusedBf16,
    /// bf16 on libtorch's autograd (`RESNET_TUI_FUSED=0`).
    AutogradBf16,
}

impl Pass {
    /// The recipe's options for this pass.
    fn recipe(self) -> Vec<String> {
        let mut r = recipe();
        if matches!(self, Pass::FusedBf16 | Pass::AutogradBf16) {
            r.extend(["--precision".to_string(), "bf16".to_string()]);
        }
        r
    }

    /// `cmd` with the switch this pass needs.
    fn command(self, mut cmd: std::process::Command) -> std::process::Command {
        cmd.env_remove(resnet_tui::fused::SWITCH);
        if matches!(self, Pass::Autograd | Pass::AutogradBf16) {
            cmd.env(resnet_tui::fused::SWITCH, "0");
        }
        cmd
    }
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Starts a run, waits for `steps` logged steps, sends `sig`; returns the run and the exit.
fn stop_after(s: &Sandbox, extra: &[&str], steps: usize, sig: i32) -> (std::path::PathBuf, std::process::ExitStatus) {
    stop_after_on(s, extra, steps, sig, Pass::FusedFp32)
}

fn stop_after_on(
    s: &Sandbox,
    extra: &[&str],
    steps: usize,
    sig: i32,
    pass: Pass,
) -> (std::path::PathBuf, std::process::ExitStatus) {
    let mut child = spawn(pass.command(s.train(extra)), &s.path("train.stderr"));
    let run = wait_for_run(&mut child, &s.runs());
    wait_until(&mut child, "steps are logged", || steps_logged(&run) >= steps);
    signal(&child, sig);
    (run, wait_exit(&mut child))
}

#[test]
fn a_stopped_and_resumed_run_on_autograd_equals_the_run_done_in_one_go() {
    stopped_and_resumed_equals_one_go(Pass::Autograd);
}

/// Checks that `fused` trained on another pass than `autograd` (same precision): its first
/// loss is autograd's within `tolerance` (relative), not bit for bit.
fn took_another_pass(fused: Pass, autograd: Pass, tolerance: f64) {
    let (_kept, reference) = stopped_and_resumed_equals_one_go(fused);
    let other = Sandbox::new();
    assert_ok(&output(autograd.command(other.train(&args(&autograd.recipe())))));
    let (ours, theirs) = (step_losses(&reference), step_losses(&other.only_run()));
    assert!((ours[0].1 - theirs[0].1).abs() <= tolerance * theirs[0].1.abs(), "step 0: {:?} {:?}", ours[0], theirs[0]);
    assert_ne!(ours, theirs, "{fused:?} trained on the same pass as {autograd:?}");
}

#[test]
fn a_stopped_and_resumed_run_equals_the_run_done_in_one_go() {
    common::isa::at_each_level("a_stopped_and_resumed_run_equals_the_run_done_in_one_go", || {
        took_another_pass(Pass::FusedFp32, Pass::Autograd, 1e-4);
    });
}

#[test]
fn a_stopped_and_resumed_bf16_run_on_the_fused_pass_equals_the_run_done_in_one_go() {
    common::isa::at_each_level(
        "a_stopped_and_resumed_bf16_run_on_the_fused_pass_equals_the_run_done_in_one_go",
        || {
            // bf16 rounds every activation to 8 bits of mantissa, at other places in the two passes.
            took_another_pass(Pass::FusedBf16, Pass::AutogradBf16, 1e-2);
        },
    );
}

/// Trains once in one go and once stopped by SIGTERM and resumed, and checks that the two are
/// the same run bit for bit; returns the one-go run with the sandbox that holds it.
fn stopped_and_resumed_equals_one_go(pass: Pass) -> (Sandbox, std::path::PathBuf) {
    let recipe = pass.recipe();
    let one_go = Sandbox::new();
    assert_ok(&output(pass.command(one_go.train(&args(&recipe)))));
    let reference = one_go.only_run();

    let s = Sandbox::new();
    let (run, status) = stop_after_on(&s, &args(&recipe), 8, SIGTERM, pass);
    assert!(status.success(), "stopped run exits 0: {status}");
    let stopped = finished(&run);
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].reason, EndReason::Stopped);
    let k = stopped[0].iters;
    assert!((8..ITERS).contains(&k), "stopped mid-run, at {k}");
    assert_ok(&output(pass.command(resume(&run))));
    assert_eq!(start_iters(&run), vec![0, k]);

    // The same losses at every step, bit for bit, and each step once.
    let expected = step_losses(&reference);
    assert_eq!(expected.len() as u64, ITERS);
    assert_eq!(step_losses(&run), expected);
    // The same final weights, BatchNorm statistics and momentum buffers.
    let name = format!("checkpoints/iter-{ITERS:08}.safetensors");
    let (a, b) = (checkpoint_tensors(&reference.join(&name)), checkpoint_tensors(&run.join(&name)));
    assert!(a.iter().any(|(n, _)| n.contains("running_mean")), "BatchNorm statistics are saved");
    assert!(a.iter().any(|(n, _)| n.starts_with("momentum/")), "momentum buffers are saved");
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta == tb, "tensor {na} differs after stop and resume");
    }
    let last = finished(&run).pop().unwrap();
    assert_eq!((last.reason, last.iters), (EndReason::Completed, ITERS));
    (one_go, reference)
}

/// A stop signal: final checkpoint at the current iteration, summary, exit 0; then a resume
/// continues at that iteration (and is itself stopped by SIGINT).
fn stop_signal_checkpoints_and_resume_continues(sig: i32) {
    let s = Sandbox::new();
    let (run, status) = stop_after(&s, &["--iters", "400", "--checkpoint-every", "100"], 3, sig);
    assert!(status.success(), "signal {sig}: exit {status}");
    let err = std::fs::read_to_string(s.path("train.stderr")).unwrap();
    assert!(err.contains("signal received"), "{err}");
    let summary = finished(&run).pop().expect("a Finished event");
    assert_eq!(summary.reason, EndReason::Stopped);
    let k = summary.iters;
    assert!((3..400).contains(&k), "stopped at {k}");
    let finals: Vec<u64> = events(&run)
        .iter()
        .filter_map(|e| match e {
            Event::Checkpoint { iter, reason: CheckpointReason::Final, .. } => Some(*iter),
            _ => None,
        })
        .collect();
    assert_eq!(finals, vec![k]);
    assert_eq!(checkpoint_iters(&run), vec![k]);
    let saved = resnet_tui::train::checkpoint::read(&run.join(format!("checkpoints/iter-{k:08}.safetensors"))).unwrap();
    assert_eq!(saved.state.iter, k);

    let mut child = spawn(resume(&run), &s.path("resume.stderr"));
    wait_until(&mut child, "the resumed run steps", || first_step_after_restart(&run).is_some());
    signal(&child, SIGINT);
    assert!(wait_exit(&mut child).success());
    assert_eq!(start_iters(&run), vec![0, k]);
    assert_eq!(first_step_after_restart(&run), Some(k + 1));
    let again = finished(&run).pop().unwrap();
    assert_eq!(again.reason, EndReason::Stopped);
    assert!(again.iters > k);
    assert_eq!(checkpoint_iters(&run).last(), Some(&again.iters));
}

/// The iteration of the first step logged after the second `RunStarted`.
fn first_step_after_restart(run: &Path) -> Option<u64> {
    let log = resnet_tui::runlog::read(run).ok()?;
    let mut starts = 0;
    for e in log.events {
        match e {
            Event::RunStarted { .. } => starts += 1,
            Event::Step(StepRecord { iter, .. }) if starts == 2 => return Some(iter),
            _ => {}
        }
    }
    None
}

#[test]
fn sigint_checkpoints_summarises_exits_and_resume_continues() {
    stop_signal_checkpoints_and_resume_continues(SIGINT);
}

#[test]
fn sigterm_checkpoints_summarises_exits_and_resume_continues() {
    stop_signal_checkpoints_and_resume_continues(SIGTERM);
}

#[test]
fn sighup_checkpoints_summarises_exits_and_resume_continues() {
    stop_signal_checkpoints_and_resume_continues(SIGHUP);
}
