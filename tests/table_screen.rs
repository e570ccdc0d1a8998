//! The table of runs and the attached dashboard, on ratatui's TestBackend: the table is laid out
//! like the paper's, Enter opens runs, and an attached run is steered without being owned.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use resnet_tui::frontend::board::Board;
use resnet_tui::protocol::*;
use resnet_tui::runlog::LogWriter;
use resnet_tui::sweep::{Axis, Sweep};
use resnet_tui::ui::app::{App, Effect, Mode, Msg};
use resnet_tui::ui::table::app::{TableApp, TableEffect, TableMsg};
use resnet_tui::ui::theme::{Marker, Theme};
use std::path::{Path, PathBuf};

fn press(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn info(depth: u32, dir: &Path) -> RunInfo {
    let mut config = resnet_tui::config::paper(resnet_tui::config::Depth::new(depth).unwrap(), "/data".into());
    config.iters = 1000;
    RunInfo {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        dir: dir.to_path_buf(),
        config,
        params: 1,
        device: "cpu (1 thread)".into(),
        train_images: 50_000,
        eval_images: 10_000,
        eval_set: EvalSet::Test,
        classes: (0..10).map(|c| c.to_string()).collect(),
        start_iter: 0,
        grown_from: None,
        best_before: None,
        build: None,
        cpu: None,
    }
}

fn step(iter: u64) -> Event {
    Event::Step(StepRecord {
        time: 1.0,
        iter,
        epoch: 0.0,
        elapsed: iter as f64,
        loss: 1.0,
        error: 50.0,
        lr: 0.1,
        images_per_sec: 128.0,
    })
}

fn done(final_error: f64) -> Event {
    let summary = Summary {
        reason: EndReason::Completed,
        iters: 1000,
        final_error: Some(final_error),
        best_error: Some(final_error),
        best_iter: Some(1000),
        train_secs: 100.0,
    };
    Event::Finished { time: 2.0, summary }
}

fn write(dir: &Path, events: &[Event]) {
    let mut log = LogWriter::open(&dir.join("events.jsonl")).unwrap();
    for e in events {
        log.write(e).unwrap();
    }
}

/// ResNet-20 × 2 seeds done (8.60, 8.90), ResNet-32 seed 1 stopped mid-way, seed 2 not started.
fn sweep() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("table");
    let axes = vec![Axis::read("depth", &["20", "32"]).unwrap(), Axis::read("seed", &["1", "2"]).unwrap()];
    Sweep::grid(axes)
        .unwrap()
        .create(&dir, |cell| {
            let settings = &cell.settings;
            resnet_tui::config::new_run(settings, None, "/data".into())
        })
        .unwrap();
    for (cell, error) in [("resnet20-seed1", 8.6), ("resnet20-seed2", 8.9)] {
        let d = dir.join(cell);
        write(&d, &[Event::RunStarted { time: 0.0, run: Box::new(info(20, &d)) }, step(1000), done(error)]);
    }
    let d = dir.join("resnet32-seed1");
    write(&d, &[Event::RunStarted { time: 0.0, run: Box::new(info(32, &d)) }, step(400)]);
    (tmp, dir)
}

fn screen(app: &TableApp) -> String {
    let mut terminal = Terminal::new(TestBackend::new(150, 24)).unwrap();
    terminal.draw(|f| resnet_tui::ui::table::view::view(f, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..buffer.area.height)
        .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>() + "\n")
        .collect()
}

/// The screen's line that starts with `start` inside the table's border.
fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines().find(|l| l.trim_start_matches('│').starts_with(start)).unwrap_or_else(|| panic!("{start}:\n{text}"))
}

#[test]
fn the_table_shows_rows_like_the_papers_with_each_rows_runs() {
    let (_tmp, dir) = sweep();
    let app = TableApp::new(Board::open(&dir).unwrap(), Theme { color: false }, false);
    let text = screen(&app);
    let line = |start: &str| line_of(&text, start);
    let r20 = line("ResNet-20");
    assert!(r20.contains("2/0/0/0") && r20.contains("8.75 ± 0.21") && r20.contains("8.60"), "{r20}");
    assert!(r20.contains("8.75") && r20.contains("8.57"), "paper and reimplementation: {r20}");
    let r32 = line("ResNet-32");
    assert!(r32.contains("0/0/2/0") && r32.contains("7.51"), "{r32}");
    assert!(line("  resnet32-seed1").contains("pending") && line("  resnet32-seed1").contains("400/1k"), "{text}");
    assert!(text.contains("4 runs: 2 done, 0 running, 2 pending, 0 failed"), "{text}");
    assert!(text.contains("enter open") && text.contains("space mark"), "{text}");
}

#[test]
fn long_row_labels_and_run_names_are_shown_whole_where_the_terminal_has_room() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bf16");
    let axes = vec![
        Axis::read("depth", &["20"]).unwrap(),
        Axis::read("seed", &["1"]).unwrap(),
        Axis::read("precision", &["fp32", "bf16"]).unwrap(),
    ];
    Sweep::grid(axes)
        .unwrap()
        .create(&dir, |_| Ok(resnet_tui::config::paper(resnet_tui::config::Depth::new(20).unwrap(), "/data".into())))
        .unwrap();
    let app = TableApp::new(Board::open(&dir).unwrap(), Theme { color: false }, false);
    let text = screen(&app);
    for whole in ["ResNet-20, precision fp32", "ResNet-20, precision bf16", "resnet20-seed1-precisionfp32"] {
        assert!(text.contains(whole), "{whole}:\n{text}");
    }
}

#[test]
fn enter_opens_a_run_a_row_or_the_marked_runs_that_have_started() {
    let (_tmp, dir) = sweep();
    let mut app = TableApp::new(Board::open(&dir).unwrap(), Theme { color: false }, false);
    // Line 0 is the ResNet-20 row: its two runs open overlaid.
    app.update(TableMsg::Key(press(KeyCode::Enter)));
    assert_eq!(
        app.take_effects(),
        vec![TableEffect::Open(vec![dir.join("resnet20-seed1"), dir.join("resnet20-seed2")])]
    );
    // Down to resnet20-seed2, mark it, down to the ResNet-32 row's first run, mark it: both open.
    for code in [KeyCode::Down, KeyCode::Down, KeyCode::Char(' '), KeyCode::Down, KeyCode::Down, KeyCode::Char(' ')] {
        app.update(TableMsg::Key(press(code)));
    }
    assert!(screen(&app).contains("● resnet20-seed2"));
    app.update(TableMsg::Key(press(KeyCode::Enter)));
    assert_eq!(
        app.take_effects(),
        vec![TableEffect::Open(vec![dir.join("resnet20-seed2"), dir.join("resnet32-seed1")])]
    );
    // A run that has not started has nothing to show: said, not opened.
    app.update(TableMsg::Key(press(KeyCode::Down)));
    app.update(TableMsg::Key(press(KeyCode::Enter)));
    assert!(app.take_effects().is_empty());
    assert!(app.notes.back().unwrap().contains("not started yet, nothing to show: resnet32-seed2"));
    app.update(TableMsg::Key(press(KeyCode::Char('q'))));
    assert!(app.should_quit(), "no queue of ours runs: q quits at once");
}

#[test]
fn quitting_the_table_of_a_running_queue_asks_then_stops_its_runs() {
    let (_tmp, dir) = sweep();
    let mut app = TableApp::new(Board::open(&dir).unwrap(), Theme { color: false }, true);
    app.update(TableMsg::Key(press(KeyCode::Char('q'))));
    assert!(!app.should_quit());
    assert!(screen(&app).contains("Stop them (each writes a checkpoint) and quit?"));
    app.update(TableMsg::Key(press(KeyCode::Char('x'))));
    assert!(!app.should_quit(), "any other key cancels");
    app.update(TableMsg::Key(press(KeyCode::Char('q'))));
    app.update(TableMsg::Key(press(KeyCode::Char('y'))));
    assert!(app.should_quit());
    assert_eq!(app.take_effects(), vec![TableEffect::StopQueue]);
}

#[test]
fn runs_that_start_and_progress_reach_the_table_through_its_collector_and_update_reads_no_file() {
    let (_tmp, dir) = sweep();
    let (board, collector) = Board::follow(&dir).unwrap();
    let mut app = TableApp::new(board, Theme { color: false }, false);
    let collecting = collector.spawn();
    let line = |app: &TableApp, run: &str| line_of(&screen(app), run).to_string();
    // resnet32-seed2 starts and resnet32-seed1 moves on, after the table has read the folder.
    let d = dir.join("resnet32-seed2");
    write(&d, &[Event::RunStarted { time: 0.0, run: Box::new(info(32, &d)) }, step(250)]);
    write(&dir.join("resnet32-seed1"), &[step(700)]);
    // The table's own update reads nothing: keys leave it as it was read.
    app.update(TableMsg::Key(press(KeyCode::Down)));
    app.update(TableMsg::Key(press(KeyCode::Up)));
    assert!(line(&app, "  resnet32-seed2").contains("pending  ") && line(&app, "  resnet32-seed2").contains(" -  "));
    assert!(line(&app, "  resnet32-seed1").contains("400/1k"));
    // The collector's batches bring both.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(line(&app, "  resnet32-seed2").contains("250/1k") && line(&app, "  resnet32-seed1").contains("700/1k")) {
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        let changes = collecting.changes.recv_timeout(wait).expect("the collector sends what the logs gained");
        app.update(TableMsg::Board(changes));
    }
}

#[test]
fn a_running_run_and_its_row_show_how_fast_it_trains_and_a_stopped_one_does_not() {
    let (_tmp, dir) = sweep();
    // resnet32-seed2 trains now (its lock is held) at the 128 img/s its steps logged.
    let d = dir.join("resnet32-seed2");
    write(&d, &[Event::RunStarted { time: 0.0, run: Box::new(info(32, &d)) }, step(250)]);
    let _lock = resnet_tui::rundir::RunDir::open(&d).unwrap();
    let app = TableApp::new(Board::open(&dir).unwrap(), Theme { color: false }, false);
    let text = screen(&app);
    let line = |start: &str| line_of(&text, start);
    // The cell right of the ETA's, which is right of the iteration's.
    let speed_of = |l: &str, iteration: &str| {
        let after = l.split(iteration).nth(1).unwrap_or_else(|| panic!("{iteration}: {l}"));
        after.split_whitespace().nth(1).map(str::to_string)
    };
    assert!(text.lines().any(|l| l.contains("ETA") && l.contains("img/s")), "{text}");
    assert_eq!(speed_of(line("  resnet32-seed2"), "250/1k").as_deref(), Some("128"), "{text}");
    assert_eq!(speed_of(line("ResNet-32"), "250/1k").as_deref(), Some("128"), "{text}");
    assert_eq!(speed_of(line("  resnet32-seed1"), "400/1k").as_deref(), Some("-"), "stopped:\n{text}");
}

#[test]
fn a_cell_the_queue_could_not_start_shows_as_failed_with_its_reason() {
    let (_tmp, dir) = sweep();
    let mut app = TableApp::new(Board::open(&dir).unwrap(), Theme { color: false }, true);
    let why = "cannot open /s/resnet32-seed2/output.log: Is a directory (os error 21)".to_string();
    app.update(TableMsg::Queue(resnet_tui::executor::local::QueueEvent::FailedToStart {
        cell: "resnet32-seed2".into(),
        why: why.clone(),
    }));
    let text = screen(&app);
    let seed2 = line_of(&text, "  resnet32-seed2");
    // Its line says it as far as the column goes; the queue's note below says it whole.
    assert!(seed2.contains("failed ") && seed2.contains("failed to start: ca"), "{text}");
    assert!(text.contains(&format!("resnet32-seed2 failed to start: {why}")), "{text}");
    assert!(text.contains("4 runs: 2 done, 0 running, 1 pending, 1 failed"), "{text}");
}

fn attached_running() -> App {
    let mut app = App::new(Mode::Attached, Theme { color: false }, Marker::Braille);
    let run = Box::new(info(20, Path::new("/runs/r")));
    app.update(Msg::Event(Envelope { run: 0, event: Event::RunStarted { time: 0.0, run } }));
    app.update(Msg::Event(Envelope { run: 0, event: step(1) }));
    app
}

#[test]
fn an_attached_run_is_steered_and_left_running_unless_asked_to_stop() {
    let mut app = attached_running();
    app.update(Msg::Key(press(KeyCode::Char('p'))));
    app.update(Msg::Key(press(KeyCode::Char('c'))));
    assert_eq!(
        app.take_effects(),
        vec![
            Effect::Send { to: Some(0), command: Command::Pause },
            Effect::Send { to: Some(0), command: Command::Checkpoint }
        ]
    );
    // No depth switch: that run's trainer is not ours.
    app.update(Msg::Key(press(KeyCode::Char('d'))));
    assert!(app.take_effects().is_empty());
    // q asks; d leaves the run going, sending nothing.
    app.update(Msg::Key(press(KeyCode::Char('q'))));
    assert!(!app.should_quit());
    app.update(Msg::Key(press(KeyCode::Char('d'))));
    assert!(app.should_quit() && app.take_effects().is_empty());

    // q then y: stop it, and leave once its log says it has stopped.
    let mut app = attached_running();
    app.update(Msg::Key(press(KeyCode::Char('q'))));
    app.update(Msg::Key(press(KeyCode::Char('y'))));
    assert_eq!(app.take_effects(), vec![Effect::Send { to: Some(0), command: Command::Stop }]);
    assert!(!app.should_quit());
    let summary = Summary {
        reason: EndReason::Stopped,
        iters: 1,
        final_error: None,
        best_error: None,
        best_iter: None,
        train_secs: 1.0,
    };
    app.update(Msg::Event(Envelope { run: 0, event: Event::Finished { time: 3.0, summary } }));
    assert!(app.should_quit());

    // The system line measures this viewer, not the run it watches.
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| resnet_tui::ui::view::view(f, &app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let bottom: String = (0..160).map(|x| buffer[(x, 46)].symbol().to_string()).collect();
    assert!(bottom.starts_with("this viewer: measuring"), "{bottom}");

    // Esc, Ctrl-C or a signal: leave at once, the run untouched.
    for msg in
        [Msg::Key(press(KeyCode::Esc)), Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Msg::Signal]
    {
        let mut app = attached_running();
        app.update(msg);
        assert!(app.should_quit() && app.take_effects().is_empty());
    }
}

#[test]
fn with_runs_overlaid_tab_chooses_the_run_the_header_names_and_the_keys_steer() {
    let mut app = App::new(Mode::Attached, Theme { color: false }, Marker::Braille);
    for (id, name) in [(0, "/runs/seed1"), (1, "/runs/seed2")] {
        let run = Box::new(info(20, Path::new(name)));
        app.update(Msg::Event(Envelope { run: id, event: Event::RunStarted { time: 0.0, run } }));
        app.update(Msg::Event(Envelope { run: id, event: step(1) }));
    }
    let header = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
        terminal.draw(|f| resnet_tui::ui::view::view(f, app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..160).map(|x| buffer[(x, 0)].symbol().to_string()).collect::<String>()
    };
    // The newest is current at first: named in the header, and the one paused.
    assert!(header(&app).contains("seed2") && header(&app).contains("2 runs, the keys steer this one"));
    app.update(Msg::Key(press(KeyCode::Char('p'))));
    assert_eq!(app.take_effects(), vec![Effect::Send { to: Some(1), command: Command::Pause }]);
    // Tab: the other run, whatever the order its events come in.
    app.update(Msg::Key(press(KeyCode::Tab)));
    app.update(Msg::Event(Envelope { run: 1, event: step(2) }));
    assert!(header(&app).contains("seed1") && !header(&app).contains("seed2"), "{}", header(&app));
    app.update(Msg::Key(press(KeyCode::Char('c'))));
    assert_eq!(app.take_effects(), vec![Effect::Send { to: Some(0), command: Command::Checkpoint }]);
    assert!(app.events.iter().any(|l| l.text == "the keys steer seed1"));
    // And round again.
    app.update(Msg::Key(press(KeyCode::Tab)));
    assert_eq!(app.current().map(|r| r.id), Some(1));

    // Stopping the chosen run: only its end ends the watching, not the other run's.
    app.update(Msg::Key(press(KeyCode::Tab)));
    app.update(Msg::Key(press(KeyCode::Char('q'))));
    app.update(Msg::Key(press(KeyCode::Char('y'))));
    assert_eq!(app.take_effects(), vec![Effect::Send { to: Some(0), command: Command::Stop }]);
    let finished = |id: RunId| {
        let summary = Summary {
            reason: EndReason::Stopped,
            iters: 2,
            final_error: None,
            best_error: None,
            best_iter: None,
            train_secs: 1.0,
        };
        Msg::Event(Envelope { run: id, event: Event::Finished { time: 3.0, summary } })
    };
    app.update(finished(1));
    assert!(!app.should_quit(), "the other run ended, not the one told to stop");
    app.update(finished(0));
    assert!(app.should_quit());

    // One run alone: tab does nothing.
    let mut app = attached_running();
    app.update(Msg::Key(press(KeyCode::Tab)));
    assert_eq!(app.current().map(|r| r.id), Some(0));
    assert!(!header(&app).contains("runs"));
}
