//! One table of events and the line each is said in: headless mode prints exactly these lines
//! and the dashboard lists exactly these lines, so the two front ends say the same words.

use resnet_tui::config::{Depth, paper};
use resnet_tui::frontend::outcome::ExitStatus;
use resnet_tui::protocol::*;
use resnet_tui::ui::app::{App, Mode, Msg};
use resnet_tui::ui::theme::{Marker, Theme};
use std::path::PathBuf;

fn info(start_iter: u64, grown_from: Option<&str>) -> RunInfo {
    let mut config = paper(Depth::new(20).unwrap(), PathBuf::from("/data"));
    config.iters = 1000;
    RunInfo {
        name: "20261129-010000-resnet20".into(),
        dir: PathBuf::from("/runs/20261129-010000-resnet20"),
        config,
        params: 269_722,
        device: "cpu (2 threads)".into(),
        train_images: 50_000,
        eval_images: 10_000,
        eval_set: EvalSet::Test,
        classes: (0..10).map(|c| format!("class{c}")).collect(),
        start_iter,
        grown_from: grown_from.map(str::to_string),
        best_before: None,
        build: None,
        cpu: None,
    }
}

fn eval(iter: u64, error: f64) -> Event {
    let e = EvalRecord {
        time: 5.0,
        iter,
        epoch: 1.0,
        elapsed: 60.0,
        set: EvalSet::Test,
        loss: 0.5,
        error,
        class_errors: vec![error; 10],
        images_per_sec: 2000.0,
        confusion: Vec::new(),
        misclassified: Vec::new(),
        responses: Vec::new(),
    };
    Event::Eval(e)
}

fn checkpoint(iter: u64, reason: CheckpointReason) -> Event {
    let path = PathBuf::from(format!("/runs/r/checkpoints/iter-{iter:08}.safetensors"));
    Event::Checkpoint { time: 6.0, iter, path, reason, secs: 0.2 }
}

/// Every kind of event, in an order a run can produce, and its line (`None`: no line).
fn table() -> Vec<(Event, Option<&'static str>)> {
    let log = "log /runs/20261129-010000-resnet20/events.jsonl";
    let step = StepRecord {
        time: 2.0,
        iter: 1,
        epoch: 0.01,
        elapsed: 1.0,
        loss: 2.3,
        error: 90.0,
        lr: 0.1,
        images_per_sec: 500.0,
    };
    let finished = |reason, iters, final_error| Event::Finished {
        time: 9.0,
        summary: Summary {
            reason,
            iters,
            final_error,
            best_error: Some(30.0),
            best_iter: Some(391),
            train_secs: 3723.0,
        },
    };
    let started =
        |start_iter, grown: Option<&str>| Event::RunStarted { time: 1.0, run: Box::new(info(start_iter, grown)) };
    let leaked: &'static str = Box::leak(
        format!(
            "started ResNet-20 (20261129-010000-resnet20): 269,722 parameters on cpu (2 threads), 1,000 iterations \
             in fp32, evaluating on 10,000 test images; {log}"
        )
        .into_boxed_str(),
    );
    let resumed: &'static str = Box::leak(
        format!(
            "resumed 20261129-010000-resnet20 (ResNet-20) at iteration 400: 269,722 parameters on cpu (2 threads), \
             1,000 iterations in fp32, evaluating on 10,000 test images; {log}"
        )
        .into_boxed_str(),
    );
    let grown: &'static str = Box::leak(
        format!(
            "started ResNet-20 grown from parent at iteration 500: 269,722 parameters on cpu (2 threads), \
             1,000 iterations in fp32, evaluating on 10,000 test images; {log}"
        )
        .into_boxed_str(),
    );
    vec![
        (started(0, None), Some(leaked)),
        (Event::Status { time: 1.5, message: "first step".into() }, Some("first step")),
        (Event::Step(step), None),
        (
            Event::WarmupEnded { time: 2.5, iter: 300, window_error: 83.25, capped: true },
            Some("warm-up ended at iteration 300 (its cap): training error 83.2% over the last 20 steps"),
        ),
        (eval(391, 30.0), Some("iter 391: test error 30.00% (best), loss 0.5000")),
        (checkpoint(391, CheckpointReason::Best), None),
        (eval(400, 31.5), Some("iter 400: test error 31.50%, loss 0.5000")),
        (
            checkpoint(400, CheckpointReason::Periodic),
            Some("checkpoint (periodic): /runs/r/checkpoints/iter-00000400.safetensors"),
        ),
        (
            checkpoint(401, CheckpointReason::Requested),
            Some("checkpoint (requested): /runs/r/checkpoints/iter-00000401.safetensors"),
        ),
        (
            Event::CommandReceived {
                time: 6.9,
                iter: 401,
                id: "1764000000000-42-0".into(),
                request: "pause".into(),
                from: "ana@login1".into(),
                ignored: None,
            },
            Some("command file from ana@login1: pause (at iteration 401)"),
        ),
        (Event::Paused { time: 7.0, iter: 401 }, Some("paused at iteration 401")),
        (
            Event::CommandReceived {
                time: 7.1,
                iter: 401,
                id: "1764000000000-42-1".into(),
                request: "stop".into(),
                from: String::new(),
                ignored: Some("stale: issued 12m ago".into()),
            },
            Some("warning: ignored a command file (stop): stale: issued 12m ago"),
        ),
        (Event::Resumed { time: 8.0, iter: 401 }, Some("resumed at iteration 401")),
        (
            Event::Error { time: 8.5, message: "checkpoint not written: disk full".into(), fatal: false },
            Some("warning: checkpoint not written: disk full"),
        ),
        (
            checkpoint(402, CheckpointReason::Final),
            Some("checkpoint (closing): /runs/r/checkpoints/iter-00000402.safetensors"),
        ),
        (
            finished(EndReason::Stopped, 402, Some(31.5)),
            Some(
                "run stopped after 402 iterations in 1h02m03s: latest test error 31.50%, best 30.00% at iteration 391",
            ),
        ),
        // Resumed in a new process: its checkpoint knew the best before the resume, so the first
        // evaluation after it is not called the best though it is the first this process sees.
        (
            Event::RunStarted {
                time: 1.0,
                run: Box::new(RunInfo { best_before: Some((30.0, 391)), ..info(400, None) }),
            },
            Some(resumed),
        ),
        (
            Event::ConfigChanged {
                time: 9.2,
                iter: 400,
                changes: vec![ConfigChange { field: "lr".into(), from: 0.1.into(), to: 0.05.into() }],
            },
            Some("recipe changed at iteration 400: lr 0.1 -> 0.05"),
        ),
        (eval(410, 30.5), Some("iter 410: test error 30.50%, loss 0.5000")),
        (eval(420, 29.5), Some("iter 420: test error 29.50% (best), loss 0.5000")),
        (
            Event::Diverged {
                time: 9.5,
                iter: 450,
                loss: f64::NAN,
                last_good: Some("/runs/r/checkpoints/iter-00000400.safetensors".into()),
                layer: Some("stage2.block0.bn1.weight (gradient)".into()),
            },
            Some(
                "diverged at iteration 450: loss is NaN, first non-finite in stage2.block0.bn1.weight (gradient); last good checkpoint: /runs/r/checkpoints/iter-00000400.safetensors",
            ),
        ),
        (
            finished(EndReason::Diverged, 450, None),
            Some(
                "run ended: diverged after 450 iterations in 1h02m03s: latest test error -, best 30.00% at iteration 391",
            ),
        ),
        (started(500, Some("parent")), Some(grown)),
        (
            finished(EndReason::Switched, 500, Some(29.0)),
            Some(
                "run closed for a depth switch after 500 iterations in 1h02m03s: latest test error 29.00%, best 30.00% at iteration 391",
            ),
        ),
        (
            finished(EndReason::Completed, 1000, Some(9.0)),
            Some(
                "run completed after 1000 iterations in 1h02m03s: final test error 9.00%, best 30.00% at iteration 391",
            ),
        ),
    ]
}

fn expected() -> Vec<&'static str> {
    table().into_iter().filter_map(|(_, line)| line).collect()
}

#[test]
fn headless_prints_the_line_of_every_event_from_the_table() {
    let (tx, events) = crossbeam_channel::unbounded();
    let (commands, _command_rx) = crossbeam_channel::unbounded();
    for (event, _) in table() {
        tx.send(Envelope { run: 0, event }).unwrap();
    }
    drop(tx);
    let mut out = Vec::new();
    let outcome = resnet_tui::headless::run_to(Channels { events, commands }, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().collect::<Vec<_>>(), expected());
    // The last run completed with its final checkpoint missing: both front ends exit 4 for it.
    assert_eq!(outcome.status(), ExitStatus::FinalCheckpointLost);
}

#[test]
fn the_dashboard_lists_the_same_lines_for_the_same_events() {
    let mut app = App::new(Mode::Live, Theme { color: false }, Marker::Braille);
    for (event, _) in table() {
        app.update(Msg::Event(Envelope { run: 0, event }));
    }
    let mut lines: Vec<String> = app.events.iter().map(|l| l.text.clone()).collect();
    // The dashboard adds one line of its own after a run that ended without its final checkpoint.
    let notes: Vec<String> = lines.iter().filter(|l| l.starts_with("final checkpoint (iteration")).cloned().collect();
    lines.retain(|l| !l.starts_with("final checkpoint (iteration"));
    assert_eq!(lines, expected());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(app.exit_status(), ExitStatus::FinalCheckpointLost);
}
