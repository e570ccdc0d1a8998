//! `--precision bf16`: the run computes in bf16, records it, and a resumed run keeps it.

mod common;

use common::*;
use resnet_tui::protocol::{Event, Precision};

/// The precision each start of the run (first start, resumes) reported.
fn started_precisions(run: &std::path::Path) -> Vec<Precision> {
    events(run)
        .into_iter()
        .filter_map(|e| match e {
            Event::RunStarted { run, .. } => Some(run.config.precision),
            _ => None,
        })
        .collect()
}

#[test]
fn bf16_computes_in_bf16_is_recorded_and_survives_a_resume() {
    let fp32 = Sandbox::new();
    assert_ok(&output(fp32.train(&["--iters", "6", "--checkpoint-every", "2"])));
    let bf16 = Sandbox::new();
    // The trainer dies after step 4 (an injected panic); checkpoints at 2 and 4 remain.
    let mut cmd = bf16.train(&["--iters", "6", "--checkpoint-every", "2", "--precision", "bf16"]);
    cmd.env("RESNET_TUI_FAULT", "panic@4");
    let out = output(cmd);
    assert!(!out.status.success(), "the injected fault ends the run");
    let run = bf16.only_run();
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains(r#""precision": "bf16""#), "config.json: {config}");

    assert_ok(&output(resume(&run)));
    assert_eq!(started_precisions(&run), vec![Precision::Bf16, Precision::Bf16]);
    assert_eq!(started_precisions(&fp32.only_run()), vec![Precision::Fp32]);

    // Same seed, same data, same first batch: the first loss differs only by the rounding of
    // bf16 activations, so it is close to fp32's but not equal to it.
    let first = |run: &std::path::Path| step_losses(run).first().copied().expect("a step").1;
    let (a, b) = (first(&fp32.only_run()), first(&run));
    assert!(a != b, "bf16 must not compute in fp32: both gave {a}");
    assert!((a - b).abs() < 0.05 * a.abs(), "fp32 {a} vs bf16 {b}");
    let last = step_losses(&run).last().copied().expect("steps");
    assert_eq!(last.0, 6, "the resumed bf16 run reaches its end");
    assert!(last.1.is_finite());
}

#[test]
fn an_unknown_precision_is_refused_in_one_line() {
    let s = Sandbox::new();
    let out = output(s.train(&["--iters", "2", "--precision", "fp8"]));
    assert_refused(&out, &["--precision", "fp8"]);
}
