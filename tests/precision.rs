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

/// `train` as a user runs it, with no `--precision`: `tiny_args` without its pinned fp32.
fn train_default_precision(s: &Sandbox, extra: &[&str]) -> std::process::Command {
    let mut args = tiny_args(&s.data(), &s.runs());
    let at = args.iter().position(|a| a == "--precision").expect("tiny_args pins the precision");
    args.drain(at..at + 2);
    let mut cmd = bin();
    cmd.arg("train").args(args).args(extra).env("XDG_CACHE_HOME", own_cache(s));
    cmd
}

/// A cache folder of the sandbox's own for auto's measurements: tests that run at once would
/// otherwise write theirs into one file under $HOME, and a resume read another test's.
fn own_cache(s: &Sandbox) -> std::path::PathBuf {
    s.path("cache")
}

fn has_bf16_units() -> bool {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.split_whitespace().any(|w| w == "avx512_bf16" || w == "amx_bf16")
}

#[test]
fn a_new_run_is_auto_by_default_and_records_the_choice_this_machine_made_and_why() {
    let s = Sandbox::new();
    assert_ok(&output(train_default_precision(&s, &["--iters", "2"])));
    let config = resnet_tui::rundir::read_config(&s.only_run()).unwrap();
    assert!(config.precision_auto, "auto is the default");
    let why = config.precision_why.expect("auto says why");
    assert!(why.starts_with(&format!("auto: {}", config.precision)), "{why}");
    if has_bf16_units() {
        assert!(why.contains("img/s"), "a CPU with bf16 units is measured: {why}");
    } else {
        assert_eq!(config.precision, Precision::Fp32, "{why}");
        assert!(why.contains("no bf16 units"), "{why}");
    }
    // Named outright, the precision is not auto's.
    let named = Sandbox::new();
    assert_ok(&output(named.train(&["--iters", "2"])));
    let config = resnet_tui::rundir::read_config(&named.only_run()).unwrap();
    assert!(!config.precision_auto && config.precision_why.is_none(), "{config:?}");
}

#[test]
fn a_resumed_auto_run_decides_again_on_the_machine_that_resumes_it_and_logs_the_change() {
    let s = Sandbox::new();
    let mut cmd = train_default_precision(&s, &["--iters", "6", "--checkpoint-every", "2"]);
    cmd.env("RESNET_TUI_FAULT", "panic@4");
    assert!(!output(cmd).status.success(), "the injected fault ends the run");
    let run = s.only_run();
    let here = resnet_tui::rundir::read_config(&run).unwrap();
    // As if another machine, one with fast bf16 units, had trained it so far: its checkpoints
    // and config.json record that machine's choice.
    let elsewhere = |c: &mut resnet_tui::protocol::RunConfig| {
        c.precision = Precision::Bf16;
        c.precision_why = Some("auto: bf16: bf16 900 vs fp32 500 img/s, 1.80x, on another CPU".into());
    };
    for (_, path) in resnet_tui::train::checkpoint::list_periodic(&run.join("checkpoints")) {
        let mut ck = resnet_tui::train::checkpoint::read(&path).unwrap();
        elsewhere(&mut ck.state.config);
        let sorted = |m: &std::collections::HashMap<String, tch::Tensor>| {
            let mut v: Vec<(String, tch::Tensor)> = m.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let bytes = resnet_tui::train::checkpoint::encode(&ck.state, &sorted(&ck.model), &sorted(&ck.momentum));
        resnet_tui::train::checkpoint::write(&path, &bytes).unwrap();
    }
    let mut recorded = here.clone();
    elsewhere(&mut recorded);
    std::fs::write(run.join("config.json"), serde_json::to_string_pretty(&recorded).unwrap()).unwrap();

    let mut again = resume(&run);
    again.env("XDG_CACHE_HOME", own_cache(&s));
    assert_ok(&output(again));
    let events = events(&run);
    let resumed = events
        .iter()
        .filter_map(|e| match e {
            Event::RunStarted { run, .. } => Some(run.config.clone()),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert_eq!(
        (resumed.precision, &resumed.precision_why),
        (here.precision, &here.precision_why),
        "this machine's choice again"
    );
    let changed: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::ConfigChanged { changes, .. } => Some(changes.iter().map(|c| c.field.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(changed.contains(&"precision_why".to_string()), "the new choice is logged: {changed:?}");
    assert_eq!(changed.contains(&"precision".to_string()), here.precision != Precision::Bf16, "{changed:?}");
    assert!(resnet_tui::rundir::read_config(&run).unwrap().precision_why == here.precision_why, "config.json too");
}

#[test]
fn an_auto_sweep_cell_interrupted_after_a_checkpoint_resumes_on_the_next_sweep_run() {
    let s = Sandbox::new();
    let sweep = s.path("auto");
    // A sweep cell is a prepared run directory: its first start decides the precision, and its
    // config.json must then agree with its checkpoints, or the resume is refused as an edit.
    let run = |fault: Option<&str>| {
        let mut c = bin();
        c.args(["sweep", "run"]).arg(&sweep);
        c.args(["--depths", "8", "--seeds", "1", "--iters", "6", "--checkpoint-every", "2", "--batch-size", "16"]);
        c.args(["--device", "cpu", "--eval-every", "3", "--jobs", "1", "--no-ui"]).arg("--data-dir").arg(s.data());
        c.env("XDG_CACHE_HOME", own_cache(&s));
        if let Some(f) = fault {
            c.env("RESNET_TUI_FAULT", f);
        }
        output(c)
    };
    assert!(!run(Some("panic@4")).status.success(), "the injected fault ends the cell");
    let cell = sweep.join("resnet8-seed1");
    assert!(!resnet_tui::train::checkpoint::list_periodic(&cell.join("checkpoints")).is_empty(), "a checkpoint");
    let out = run(None);
    assert_ok(&out);
    let history = resnet_tui::frontend::history::History::from_events(&events(&cell));
    assert_eq!(history.end(), Some(resnet_tui::protocol::EndReason::Completed), "{}", stderr(&out));
    assert_eq!(history.starts, 2);
    let config = resnet_tui::rundir::read_config(&cell).unwrap();
    assert!(config.precision_auto && config.precision_why.is_some(), "{config:?}");
}
