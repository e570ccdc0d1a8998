//! Replay through the dashboard: a generated 64k-iteration log plays to its end through the same
//! `App` a live run feeds, overlays keep one run per log, and the `replay` command's edges (not a
//! log, `--no-ui`) behave as a user expects.

use resnet_tui::protocol::*;
use resnet_tui::replay::{Player, Speed};
use resnet_tui::runlog::LogWriter;
use resnet_tui::ui::app::{App, Mode, Msg};
use resnet_tui::ui::theme::Marker;
use resnet_tui::ui::theme::Theme;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Writes the log of a full paper-length run: 64,000 steps, an evaluation every 391.
fn write_full_run(dir: &Path, depth: u32) -> PathBuf {
    write_run(dir, depth, 64_000, true)
}

/// Writes the log of a paper-recipe run's first `iters` steps, ended by its `finished` line or
/// not (the process was killed).
fn write_run(dir: &Path, depth: u32, iters: u64, finished: bool) -> PathBuf {
    let run_dir = dir.join(format!("run-resnet{depth}"));
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut w = LogWriter::open(&run_dir.join(resnet_tui::runlog::LOG_NAME)).unwrap();
    let config = resnet_tui::config::paper(resnet_tui::config::Depth::new(depth).unwrap(), PathBuf::from("/data"));
    let info = RunInfo {
        name: format!("run-resnet{depth}"),
        dir: run_dir.clone(),
        config,
        params: 269_722,
        device: "cuda:0 (NVIDIA H100)".into(),
        train_images: 50_000,
        eval_images: 10_000,
        eval_set: EvalSet::Test,
        classes: (0..10).map(|c| format!("class{c}")).collect(),
        start_iter: 0,
        grown_from: None,
        best_before: None,
        build: None,
        cpu: None,
    };
    w.write(&Event::RunStarted { time: 0.0, run: Box::new(info) }).unwrap();
    for iter in 1..=iters {
        let t = iter as f64 * 0.01;
        let lr = if iter < 32_000 {
            0.1
        } else if iter < 48_000 {
            0.01
        } else {
            0.001
        };
        let loss = 2.3 * (-(iter as f64) / 8000.0).exp() + 0.01;
        let step = Event::Step(StepRecord {
            time: t,
            iter,
            epoch: iter as f64 / 391.0,
            elapsed: t,
            loss,
            error: loss * 20.0,
            lr,
            images_per_sec: 12_800.0,
        });
        w.write(&step).unwrap();
        if iter % 391 == 0 || iter == iters {
            let error = 8.0 + 80.0 * (-(iter as f64) / 6000.0).exp();
            let eval = Event::Eval(EvalRecord {
                time: t,
                iter,
                epoch: iter as f64 / 391.0,
                elapsed: t,
                set: EvalSet::Test,
                loss: loss + 0.2,
                error,
                class_errors: vec![error; 10],
                images_per_sec: 50_000.0,
                confusion: Vec::new(),
                misclassified: Vec::new(),
                responses: Vec::new(),
            });
            w.write(&eval).unwrap();
        }
    }
    if !finished {
        return run_dir;
    }
    let summary = Summary {
        reason: EndReason::Completed,
        iters: 64_000,
        final_error: Some(8.0),
        best_error: Some(8.0),
        best_iter: Some(64_000),
        train_secs: 640.0,
    };
    w.write(&Event::Finished { time: 640.0, summary }).unwrap();
    run_dir
}

/// Plays everything through an `App` in the chunks the UI loop uses; returns the app.
fn play(paths: &[PathBuf]) -> App {
    let started = Instant::now();
    let mut player = Player::open(paths, Speed::Max, false, Instant::now()).unwrap();
    let opened = started.elapsed();
    let mut app = App::new(Mode::Replay, Theme { color: true }, Marker::Braille);
    let mut chunks = 0;
    while !player.finished() {
        for e in player.next_batch(Instant::now(), 2048) {
            app.update(Msg::Event(e));
        }
        chunks += 1;
    }
    // A figure for the report, not an assertion: timings on a shared machine are noisy.
    eprintln!("replayed {:?} in {:?} (reading {:?}, {chunks} chunks)", paths, started.elapsed(), opened);
    app
}

#[test]
fn a_64k_iteration_log_replays_to_its_end_with_the_final_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_full_run(dir.path(), 20);
    let app = play(&[run]);
    let r = app.current().unwrap();
    assert_eq!(r.history.last_step.unwrap().iter, 64_000);
    // The best evaluation is the last one (the curve falls to the end), as the summary says.
    assert_eq!(r.history.best_eval().map(|e| e.iter), Some(64_000));
    assert_eq!(r.history.finished.as_ref().and_then(|f| f.best_error), Some(8.0));
    assert_eq!(r.history.state, resnet_tui::frontend::history::RunState::Finished(EndReason::Completed));
    assert!(r.loss.len() <= resnet_tui::ui::runs::CURVE_CAPACITY + 1);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| resnet_tui::ui::view::view(f, &app)).unwrap();
    let text: String = terminal.backend().buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("iter 64,000/64,000") && text.contains("FINISHED") && text.contains("8.00% at iter 64000"));
}

#[test]
fn a_log_that_ends_before_its_run_did_replays_as_unfinished_and_says_so_once() {
    use resnet_tui::ui::feed::{Feed, ReplayFeed};
    let dir = tempfile::tempdir().unwrap();
    let run = write_run(dir.path(), 20, 1_000, false);
    let mut feed = ReplayFeed::new(Player::open(&[run], Speed::Max, false, Instant::now()).unwrap());
    let mut app = App::new(Mode::Replay, Theme { color: true }, Marker::Braille);
    for _ in 0..100 {
        let mut msgs = Vec::new();
        feed.drain(Instant::now(), 2048, &mut msgs);
        msgs.into_iter().for_each(|m| app.update(m));
    }
    assert!(app.playback.as_ref().is_some_and(|p| p.at_end && p.total > 1_000));
    let notes: Vec<&str> =
        app.events.iter().map(|l| l.text.as_str()).filter(|t| t.contains("without the run's end")).collect();
    assert_eq!(
        notes,
        vec![
            "run-resnet20: the log ends at iteration 1,000 without the run's end: it was killed \
         (`resnet-tui resume` continues it) or is still training (`replay --follow` follows it)"
        ]
    );
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| resnet_tui::ui::view::view(f, &app)).unwrap();
    let text: String = terminal.backend().buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("UNFINISHED") && !text.contains("RUNNING") && text.contains("ETA - "), "{text}");
}

#[test]
fn two_logs_overlay_as_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_full_run(dir.path(), 20);
    let b = write_full_run(dir.path(), 56);
    let app = play(&[a, b]);
    let depths: Vec<Option<u32>> = app.runs.iter().map(|r| r.depth().map(|d| d.get())).collect();
    assert_eq!(depths, vec![Some(20), Some(56)]);
    assert!(app.runs.iter().all(|r| r.history.last_step.unwrap().iter == 64_000));
}

#[test]
fn replay_of_something_else_is_a_one_line_error_and_no_ui_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "shopping list\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resnet-tui")).arg("replay").arg(&notes).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a resnet-tui run log"), "{err}");

    let run = write_full_run(dir.path(), 20);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resnet-tui"))
        .args(["replay", "--no-ui"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("run-resnet20") && table.contains("8.75"), "{table}");
}
