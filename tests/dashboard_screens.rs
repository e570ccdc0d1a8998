//! Every area of the dashboard, drawn on ratatui's TestBackend: events and keys go into
//! `App::update`, the screen is rendered, and the test reads what is drawn.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use resnet_tui::frontend::outcome::ExitStatus;
use resnet_tui::protocol::*;
use resnet_tui::ui::app::{App, Effect, Mode, Msg, Playback, SystemSample};
use resnet_tui::ui::runs::CURVE_CAPACITY;
use resnet_tui::ui::theme::Marker;
use resnet_tui::ui::theme::Theme;
use std::path::PathBuf;

const CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

fn info(depth: u32, name: &str) -> RunInfo {
    let mut config =
        resnet_tui::config::paper(resnet_tui::config::Depth::new(depth).unwrap(), PathBuf::from("/data/cifar10"));
    config.iters = 1000;
    config.milestones = vec![500, 750];
    RunInfo {
        name: name.into(),
        dir: PathBuf::from(format!("/runs/{name}")),
        config,
        params: resnet_tui::reference::paper_result(depth).map(|r| r.params).unwrap_or(1),
        device: "cpu (1 threads)".into(),
        train_images: 50_000,
        eval_images: 10_000,
        eval_set: EvalSet::Test,
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        start_iter: 0,
        grown_from: None,
        best_before: None,
        build: None,
        cpu: None,
    }
}

fn started(run: RunId, depth: u32, name: &str) -> Msg {
    Msg::Event(Envelope { run, event: Event::RunStarted { time: 1000.0, run: Box::new(info(depth, name)) } })
}

fn step(run: RunId, iter: u64) -> Msg {
    let i = iter as f64;
    Msg::Event(Envelope {
        run,
        event: Event::Step(StepRecord {
            time: 1000.0 + i,
            iter,
            epoch: i / 391.0,
            elapsed: i * 0.5,
            loss: 2.3 * (-i / 400.0).exp() + 0.1,
            error: 90.0 * (-i / 500.0).exp() + 1.0,
            lr: if iter < 500 { 0.1 } else { 0.01 },
            images_per_sec: 256.0,
        }),
    })
}

fn eval(run: RunId, iter: u64, error: f64) -> Msg {
    Msg::Event(Envelope {
        run,
        event: Event::Eval(EvalRecord {
            time: 1000.0 + iter as f64,
            iter,
            epoch: iter as f64 / 391.0,
            elapsed: iter as f64 * 0.5,
            set: EvalSet::Test,
            loss: 0.9,
            error,
            class_errors: (0..10).map(|c| 5.0 + c as f64 * 3.0).collect(),
            images_per_sec: 2000.0,
            confusion: Vec::new(),
            misclassified: Vec::new(),
            responses: Vec::new(),
        }),
    })
}

fn event(run: RunId, event: Event) -> Msg {
    Msg::Event(Envelope { run, event })
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn live() -> App {
    App::new(Mode::Live, Theme { color: true }, Marker::Braille)
}

/// A live run of ResNet-20 at iteration 300 with two evaluations.
fn running_app() -> App {
    let mut app = live();
    app.update(started(0, 20, "20261128-041500-resnet20"));
    for i in 1..=300 {
        app.update(step(0, i));
        if i % 150 == 0 {
            app.update(eval(0, i, if i == 150 { 40.0 } else { 30.5 }));
        }
    }
    app
}

fn render_sized(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| resnet_tui::ui::view::view(f, app)).unwrap();
    terminal
}

fn text_of(terminal: &Terminal<TestBackend>) -> String {
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn screen(app: &App) -> String {
    text_of(&render_sized(app, 160, 48))
}

fn sent(app: &mut App) -> Vec<Effect> {
    app.take_effects()
}

#[test]
fn header_shows_run_depth_params_device_state_progress_eta_and_speed() {
    let s = screen(&running_app());
    let header: String = s.lines().take(3).collect::<Vec<_>>().join("\n");
    for want in ["ResNet-20", "20261128-041500-resnet20", "269,722 params", "cpu (1 threads)", "RUNNING"] {
        assert!(header.contains(want), "{want} missing from\n{header}");
    }
    assert!(header.contains("iter 300/1,000") && header.contains("30.0%"), "{header}");
    // 700 iterations left at 128 images each and 256 images/s: 350 s; and three evaluations
    // (at 391, 782 and the end) of 10,000 images at 2,000 images/s: 15 s.
    assert!(header.contains("ETA 6m05s") && header.contains("256 img/s"), "{header}");
    assert!(header.contains("elapsed 2m30s"), "{header}");
}

#[test]
fn status_line_says_what_it_waits_for_before_the_first_step() {
    let mut app = live();
    app.update(event(0, Event::Status { time: 1.0, message: "loading CIFAR-10 from /data".into() }));
    let s = screen(&app);
    assert!(s.contains("waiting for the first training step"), "{s}");
    assert!(s.contains("loading CIFAR-10 from /data"), "{s}");
    app.update(started(0, 20, "r"));
    app.update(event(0, Event::Status { time: 2.0, message: "first step (the first is slower)".into() }));
    assert!(screen(&app).contains("first step (the first is slower)"));
    app.update(step(0, 1));
    let s = screen(&app);
    assert!(!s.contains("waiting for the first training step"), "{s}");
    assert!(s.contains("loss (linear"), "{s}");
}

#[test]
fn charts_show_loss_error_and_learning_rate_with_the_papers_reference_lines() {
    let s = screen(&running_app());
    for want in ["loss (linear, smoothing 0.90)", "top-1 error %", "learning rate (log)", "iteration"] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
    // Legend: train and test curves, the paper's and the reimplementation's ResNet-20 errors.
    for want in ["train", "test", "paper 8.75%", "reimpl 8.57%"] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
    // The x axis ends at the newest iteration and the lr axis spans decades.
    assert!(s.contains("300"), "{s}");
    assert!(s.contains("0.01") && s.contains("0.1"), "{s}");
    assert!(s.contains('⣀') || s.contains('⠉'), "Braille curves are drawn");
}

#[test]
fn smoothing_log_scale_and_x_axis_keys_change_the_charts() {
    let mut app = running_app();
    app.update(key('s'));
    assert!(screen(&app).contains("smoothing 0.99"));
    app.update(key('s'));
    assert!(screen(&app).contains("smoothing 0.00"));
    app.update(key('l'));
    assert!(screen(&app).contains("loss (log,"));
    app.update(key('x'));
    assert!(screen(&app).contains("epoch"));
    app.update(key('x'));
    let s = screen(&app);
    assert!(s.contains("training time") && s.contains("2m30s"), "{s}");
    app.update(key('x'));
    assert!(screen(&app).contains("iteration"));
}

#[test]
fn markers_follow_the_option() {
    let mut app = running_app();
    app.marker = Marker::Dot;
    let s = screen(&app);
    assert!(s.contains('•') && !s.contains('⣀'), "dots, no Braille");
}

#[test]
fn side_panel_shows_recipe_best_error_checkpoint_and_recent_events() {
    let mut app = running_app();
    let path = PathBuf::from("/runs/20261128-041500-resnet20/checkpoints/iter-00000300.safetensors");
    app.update(event(
        0,
        Event::Checkpoint { time: 1300.0, iter: 300, path, reason: CheckpointReason::Requested, secs: 0.1 },
    ));
    let s = screen(&app);
    for want in [
        "lr 0.1 mom 0.9 wd 1e-4",
        "batch 128",
        "lr/10 at 500,750",
        "30.50% at iter 300",
        "iter-00000300.safetensors @ 300",
        "started ResNet-20",
        "iter 150: test error 40.00% (best)",
        "checkpoint (requested):",
        "50,000 train",
    ] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
}

#[test]
fn per_class_panel_names_the_classes_with_their_last_errors() {
    let s = screen(&running_app());
    assert!(s.contains("test error by class (iter 300)"), "{s}");
    assert!(s.contains("airplane") && s.contains("5.0%"), "{s}");
    assert!(s.contains("truck") && s.contains("32.0%"), "{s}");
    // A short screen folds the list into two columns.
    let small = text_of(&render_sized(&running_app(), 100, 30));
    assert!(small.contains("truck") && small.contains("airplane"), "{small}");
}

#[test]
fn system_line_shows_process_cpu_memory_and_gpu_memory() {
    let mut app = running_app();
    assert!(screen(&app).contains("process: measuring"));
    app.update(Msg::System(SystemSample {
        cpu_percent: 187.0,
        memory_bytes: 3 << 29,
        gpu_memory: Some((2 << 30, 80 << 30)),
        gpu_note: None,
        available_bytes: Some(20 << 30),
    }));
    let s = screen(&app);
    assert!(s.contains("process cpu 187% · memory 1.50 GiB · gpu memory 2.00 GiB / 80.00 GiB"), "{s}");
}

#[test]
fn key_bar_and_help_overlay_come_from_the_key_table() {
    let mut app = running_app();
    let s = screen(&app);
    let bar = s.lines().nth(47).unwrap();
    let scopes = app.scopes();
    for b in resnet_tui::ui::keys::active(&scopes) {
        if let Some(short) = b.short {
            assert!(bar.contains(&format!("{} {short}", b.label)), "{} missing from {bar}", b.label);
        }
    }
    assert!(!bar.contains("faster"), "replay keys are not offered live: {bar}");
    app.update(key('?'));
    let s = screen(&app);
    use resnet_tui::ui::keys::Scope;
    // Every key of a live run; replay's, an attached run's, overlaid runs' and the table's are for
    // other screens.
    let elsewhere = [Scope::Replay, Scope::Attached, Scope::ConfirmDetach, Scope::Table, Scope::Overlaid];
    for b in resnet_tui::ui::keys::KEYS.iter().filter(|b| !elsewhere.contains(&b.scope)) {
        if b.scope != Scope::Help {
            assert!(s.contains(b.help), "help lacks {:?}:\n{s}", b.help);
        }
    }
    app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    assert!(!screen(&app).contains("keys (esc closes)"));
}

#[test]
fn pause_shows_pausing_at_once_and_paused_when_the_trainer_confirms() {
    let mut app = running_app();
    app.update(key(' '));
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Pause }]);
    assert!(screen(&app).contains("PAUSING…"));
    app.update(event(0, Event::Paused { time: 1301.0, iter: 300 }));
    let s = screen(&app);
    assert!(s.contains("PAUSED") && s.contains("paused at iteration 300"), "{s}");
    app.update(key('p'));
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Resume }]);
    assert!(screen(&app).contains("RESUMING…"));
    app.update(event(0, Event::Resumed { time: 1302.0, iter: 300 }));
    assert!(screen(&app).contains("RUNNING"));
}

#[test]
fn key_releases_do_nothing() {
    let mut app = running_app();
    let mut release = KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    app.update(Msg::Key(release));
    assert!(sent(&mut app).is_empty());
}

#[test]
fn checkpoint_key_asks_the_trainer_and_the_path_shows_when_written() {
    let mut app = running_app();
    app.update(key('c'));
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Checkpoint }]);
    assert!(screen(&app).contains("checkpoint requested"));
}

#[test]
fn depth_chooser_switches_fresh_or_grown_and_refuses_to_grow_shallower() {
    let mut app = running_app();
    app.update(key('d'));
    let s = screen(&app);
    for d in ["ResNet-32", "ResNet-44", "ResNet-56", "ResNet-110", "ResNet-1202", "464,154 params"] {
        assert!(s.contains(d), "{d} missing:\n{s}");
    }
    app.update(key('g'));
    assert_eq!(
        sent(&mut app),
        vec![Effect::Send {
            to: Some(0),
            command: Command::SwitchDepth { depth: Depth::new(32).unwrap(), mode: SwitchMode::Grow }
        }]
    );
    let s = screen(&app);
    assert!(s.contains("switching to ResNet-32 (grown from") && s.contains("this one)…"), "{s}");
    app.update(key('d'));
    app.update(Msg::Key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)));
    app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    assert_eq!(
        sent(&mut app),
        vec![Effect::Send {
            to: Some(0),
            command: Command::SwitchDepth { depth: Depth::new(44).unwrap(), mode: SwitchMode::Fresh }
        }]
    );
    app.update(key('d'));
    app.update(Msg::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)));
    app.update(key('g'));
    assert!(sent(&mut app).is_empty(), "ResNet-20 cannot grow into ResNet-20");
    assert!(screen(&app).contains("cannot grow ResNet-20 into ResNet-20"));
    app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    assert!(!screen(&app).contains("switch depth "));
}

#[test]
fn after_a_switch_the_earlier_run_stays_dimmed_in_the_legend() {
    let mut app = running_app();
    app.update(event(
        0,
        Event::Finished {
            time: 1400.0,
            summary: Summary {
                reason: EndReason::Switched,
                iters: 300,
                final_error: Some(30.5),
                best_error: Some(30.5),
                best_iter: Some(300),
                train_secs: 150.0,
            },
        },
    ));
    app.update(started(1, 32, "20261128-042000-resnet32"));
    for i in 301..=400 {
        app.update(step(1, i));
    }
    let t = render_sized(&app, 160, 48);
    let s = text_of(&t);
    assert!(s.contains("R20 train") && s.contains("R32 train"), "{s}");
    assert!(s.contains("paper R20 8.75%") && s.contains("paper R32 7.51%"), "{s}");
    assert!(s.contains("ResNet-32") && s.contains("2 runs"), "{s}");
    let buf = t.backend().buffer();
    let (line, col) =
        s.lines().enumerate().find_map(|(y, l)| l.find("R20 train").map(|x| (y, l[..x].chars().count()))).unwrap();
    assert!(buf[(col as u16, line as u16)].modifier.contains(Modifier::DIM), "earlier run is dimmed");
    let col32 = s.lines().nth(line + 2).unwrap();
    let x = col32[..col32.find("R32 train").unwrap()].chars().count();
    assert!(!buf[(x as u16, (line + 2) as u16)].modifier.contains(Modifier::DIM), "current run is not dimmed");
}

#[test]
fn quit_while_running_asks_once_and_y_or_a_second_q_checkpoints_and_stops() {
    for confirm in ['y', 'q'] {
        let mut app = running_app();
        app.update(key('q'));
        assert!(sent(&mut app).is_empty());
        assert!(screen(&app).contains("Write a checkpoint, stop it and quit?"));
        app.update(key(confirm));
        assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Stop }]);
        assert!(screen(&app).contains("STOPPING…"));
        assert!(!app.should_quit(), "waits for the checkpoint and the trainer's end");
        app.update(Msg::SourceClosed);
        assert!(app.should_quit());
        assert_eq!(app.exit_status().code(), 0);
    }
    let mut app = running_app();
    app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    assert!(screen(&app).contains("quit?"));
    app.update(key('n'));
    assert!(!app.should_quit() && sent(&mut app).is_empty());
    assert!(screen(&app).contains("quit cancelled"));
}

#[test]
fn a_signal_checkpoints_and_quits_without_asking() {
    let mut app = running_app();
    app.update(Msg::Signal);
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Stop }]);
    app.update(Msg::SourceClosed);
    assert!(app.should_quit());
}

#[test]
fn a_second_stop_request_while_stopping_quits_at_once_with_130() {
    // Two signals: the first stops cleanly and says how to quit at once, the second does.
    let mut app = running_app();
    app.update(Msg::Signal);
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Stop }]);
    let s = screen(&app);
    assert!(s.contains("STOPPING…") && s.contains("ctrl-c again quits at once"), "{s}");
    assert!(!app.should_quit());
    app.update(Msg::Signal);
    assert!(app.should_quit() && app.outcome.interrupted);
    assert_eq!(app.exit_status(), ExitStatus::Interrupted);
    assert!(sent(&mut app).is_empty());

    // Keys: ctrl-c asks, ctrl-c confirms, and while stopping the key bar offers ctrl-c to quit now.
    let ctrl_c = || Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    let mut app = running_app();
    app.update(ctrl_c());
    app.update(ctrl_c());
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Stop }]);
    assert!(!app.should_quit());
    let s = screen(&app);
    assert!(s.contains("ctrl-c quit now"), "{s}");
    app.update(ctrl_c());
    assert!(app.should_quit());
    assert_eq!(app.exit_status().code(), 130);
}

fn final_checkpoint(iter: u64) -> Msg {
    let path = PathBuf::from(format!("/runs/r/checkpoints/iter-{iter:08}.safetensors"));
    event(0, Event::Checkpoint { time: 1999.0, iter, path, reason: CheckpointReason::Final, secs: 0.1 })
}

/// A run that completed after `iters` iterations.
fn summary(iters: u64) -> Summary {
    Summary {
        reason: EndReason::Completed,
        iters,
        final_error: Some(9.1),
        best_error: Some(8.9),
        best_iter: Some(950),
        train_secs: 500.0,
    }
}

fn completed(iters: u64) -> Msg {
    event(0, Event::Finished { time: 2000.0, summary: summary(iters) })
}

#[test]
fn a_finished_run_stays_on_screen_until_q() {
    let mut app = running_app();
    app.update(final_checkpoint(1000));
    app.update(completed(1000));
    app.update(Msg::SourceClosed);
    assert!(!app.should_quit());
    let s = screen(&app);
    assert!(
        s.contains("FINISHED") && s.contains("8.90% at iter 950") && s.contains("run completed after 1000 iterations"),
        "{s}"
    );
    assert!(!s.contains("space/p pause"), "nothing left to pause: {s}");
    app.update(key('q'));
    assert!(app.should_quit());
    assert!(sent(&mut app).is_empty());
}

#[test]
fn a_run_that_ends_without_its_final_checkpoint_says_so_and_exits_4() {
    let mut app = running_app();
    let message = "checkpoint not written: No space left on device".to_string();
    app.update(event(0, Event::Error { time: 1999.0, message, fatal: false }));
    app.update(completed(1000));
    app.update(Msg::SourceClosed);
    let s = screen(&app);
    let said = s.find("final checkpoint (iteration 1000) not").unwrap_or_else(|| panic!("{s}"));
    assert!(s.find("run completed after 1000 iterations").is_some_and(|ended| ended < said), "{s}");
    app.update(key('q'));
    assert!(app.should_quit());
    assert_eq!(app.exit_status(), ExitStatus::FinalCheckpointLost);

    // Each run that loses its final checkpoint gets its line, the second after a depth switch too.
    let mut app = running_app();
    app.update(completed(1000));
    app.update(started(1, 32, "20261128-042000-resnet32"));
    app.update(event(1, Event::Finished { time: 2100.0, summary: summary(40) }));
    let s = screen(&app);
    assert!(s.contains("final checkpoint (iteration 1000) not"), "{s}");
    assert!(s.contains("final checkpoint (iteration 40) not"), "{s}");

    // A replay of such a run only shows it: replaying is not failing.
    let mut replay = App::new(Mode::Replay, Theme { color: true }, Marker::Braille);
    replay.update(started(0, 20, "20261128-041500-resnet20"));
    replay.update(completed(1000));
    assert_eq!(replay.exit_status(), ExitStatus::Success);
}

#[test]
fn divergence_is_shown_and_r_recovers_at_a_lower_learning_rate() {
    let mut app = running_app();
    let last_good = Some(PathBuf::from("/runs/r/checkpoints/iter-00000200.safetensors"));
    app.update(event(0, Event::Diverged { time: 1301.0, iter: 301, loss: f64::NAN, last_good, layer: None }));
    let s = screen(&app);
    assert!(s.contains("Training diverged at iteration 301") && s.contains("iter-00000200.safetensors"), "{s}");
    assert!(s.contains("DIVERGED") && s.contains("r recover"), "{s}");
    app.update(key('r'));
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Recover { lr_factor: 0.1 } }]);
    // The trainer goes back to the checkpoint: the same run starts again at iteration 200.
    let mut resumed = info(20, "20261128-041500-resnet20");
    resumed.start_iter = 200;
    app.update(Msg::Event(Envelope { run: 1, event: Event::RunStarted { time: 1302.0, run: Box::new(resumed) } }));
    app.update(step(1, 201));
    let s = screen(&app);
    assert!(s.contains("RUNNING") && s.contains("iter 201/1,000"), "{s}");
    assert!(!s.contains("Training diverged"), "{s}");
}

#[test]
fn diverged_then_quit_exits_with_the_divergence_code() {
    let mut app = running_app();
    app.update(event(
        0,
        Event::Diverged { time: 1301.0, iter: 301, loss: f64::INFINITY, last_good: None, layer: None },
    ));
    app.update(key('q'));
    assert_eq!(sent(&mut app), vec![Effect::Send { to: Some(0), command: Command::Stop }]);
    assert!(app.should_quit());
    assert_eq!(app.exit_status(), ExitStatus::Diverged);
}

#[test]
fn a_fatal_error_is_shown_and_gives_exit_code_one() {
    let mut app = live();
    app.update(event(0, Event::Error { time: 1.0, message: "CUDA out of memory".into(), fatal: true }));
    app.update(Msg::SourceClosed);
    let s = screen(&app);
    assert!(s.contains("CUDA out of memory") && s.contains("q quits"), "{s}");
    app.update(key('q'));
    assert!(app.should_quit());
    assert_eq!(app.exit_status().code(), 1);
}

#[test]
fn a_resumed_run_redraws_from_its_checkpoint() {
    let mut app = running_app();
    let mut again = info(20, "20261128-041500-resnet20");
    again.start_iter = 150;
    app.update(Msg::Event(Envelope { run: 0, event: Event::RunStarted { time: 1400.0, run: Box::new(again) } }));
    let run = app.current().unwrap();
    assert_eq!(run.loss.last().unwrap().iter, 150.0);
    assert_eq!(app.runs.len(), 1);
    let s = screen(&app);
    assert!(s.contains("resumed 20261128-041500-resnet20") && s.contains("iteration 150"), "{s}");
}

#[test]
fn replay_overlays_two_depths_with_both_in_the_legend_and_its_own_keys() {
    let mut app = App::new(Mode::Replay, Theme { color: true }, Marker::Braille);
    app.update(started(0, 20, "a-resnet20"));
    app.update(started(1, 56, "b-resnet56"));
    for i in 1..=200 {
        app.update(step(0, i));
        app.update(step(1, i));
    }
    app.update(eval(0, 200, 30.0));
    app.update(eval(1, 200, 25.0));
    app.update(Msg::Playback(resnet_tui::ui::app::PlaybackStatus {
        speed: Some(10.0),
        played: 804,
        total: 1000,
        ..Default::default()
    }));
    let t = render_sized(&app, 160, 48);
    let s = text_of(&t);
    for want in [
        "R20 train",
        "R56 train",
        "R20 test",
        "R56 test",
        "paper R20 8.75%",
        "paper R56 6.97%",
        "replay",
        "playing 10x recorded pace",
        "804/1000 events",
    ] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
    // Each run has its own colour.
    let buf = t.backend().buffer();
    let color_of = |name: &str| {
        let (y, l) = s.lines().enumerate().find(|(_, l)| l.contains(name)).unwrap();
        buf[(l[..l.find(name).unwrap()].chars().count() as u16, y as u16)].fg
    };
    assert_ne!(color_of("R20 train"), color_of("R56 train"));
    let bar = s.lines().nth(47).unwrap();
    assert!(bar.contains("faster") && bar.contains("end") && !bar.contains("checkpoint"), "{bar}");
    app.update(key(' '));
    app.update(key('+'));
    app.update(key('c'));
    assert_eq!(sent(&mut app), vec![Effect::Playback(Playback::TogglePause), Effect::Playback(Playback::Faster)]);
    app.update(Msg::Key(KeyEvent::new(KeyCode::Home, KeyModifiers::NONE)));
    assert_eq!(sent(&mut app), vec![Effect::Playback(Playback::Start)]);
    assert!(app.runs.is_empty(), "jumping to the start forgets what was played");
    app.update(key('q'));
    assert!(app.should_quit(), "replay quits at once");
}

#[test]
fn replay_warnings_are_listed() {
    let mut app = App::new(Mode::Replay, Theme { color: true }, Marker::Braille);
    app.update(Msg::Warning("runs/a/events.jsonl: line 9: skipped partial last line".into()));
    let s = screen(&app);
    assert!(s.contains("line 9: skipped") && s.contains("partial last line"), "{s}");
}

#[test]
fn too_small_a_terminal_gets_one_line_saying_how_big() {
    let s = text_of(&render_sized(&running_app(), 60, 20));
    assert!(s.starts_with("terminal too small: 60x20, resnet-tui needs at least 80x24"), "{s}");
    // And at the minimum everything fits.
    let s = text_of(&render_sized(&running_app(), 80, 24));
    assert!(s.contains("ResNet-20") && s.contains("q quit") && s.contains("loss"), "{s}");
}

#[test]
fn no_color_draws_without_colours() {
    let mut app = running_app();
    app.theme = Theme { color: false };
    let t = render_sized(&app, 160, 48);
    let buf = t.backend().buffer();
    assert!(buf.content().iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    let coloured = render_sized(&running_app(), 160, 48);
    assert!(coloured.backend().buffer().content().iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn a_64k_iteration_run_keeps_bounded_curves_and_draws() {
    let mut app = live();
    let mut i = info(20, "long");
    i.config.iters = 64_000;
    app.update(Msg::Event(Envelope { run: 0, event: Event::RunStarted { time: 0.0, run: Box::new(i) } }));
    for iter in 1..=64_000 {
        app.update(step(0, iter));
        if iter % 391 == 0 {
            app.update(eval(0, iter, 10.0));
        }
    }
    let run = app.current().unwrap();
    for s in [&run.loss, &run.train_error, &run.lr, &run.eval_loss, &run.eval_error] {
        assert!(s.len() <= CURVE_CAPACITY + 1, "{} points", s.len());
    }
    assert!(run.loss.len() >= CURVE_CAPACITY / 2);
    assert_eq!(run.loss.iter().map(|p| p.n as u64).sum::<u64>(), 64_000);
    let s = screen(&app);
    assert!(s.contains("iter 64,000/64,000") && s.contains("64k"), "{s}");
}

#[test]
fn optimizer_health_is_charted_beside_the_learning_rate_and_summed_up_in_the_side_panel() {
    let mut app = running_app();
    assert!(!screen(&app).contains("update/weight"));
    for iter in [290, 300] {
        let health = HealthRecord {
            time: 1000.0 + iter as f64,
            iter,
            grad_norm: 1.25,
            weight_norm: 27.5,
            update_ratio: vec![2e-3, 1e-3, 1e-3, 1e-3, 4e-3],
        };
        app.update(event(0, Event::Health(health)));
    }
    let s = screen(&app);
    assert!(s.contains("learning rate (log) · update/weight: stem stage0 stage1 stage2 fc"), "{s}");
    assert!(s.contains("|grad| 1.250 · |w| 27.5 @ 300"), "{s}");
}

#[test]
fn the_learning_rate_chart_says_where_the_warmup_ended() {
    let mut app = running_app();
    assert!(!screen(&app).contains("(log) · warm-up ended"));
    app.update(event(0, Event::WarmupEnded { time: 1100.0, iter: 212, window_error: 79.5, capped: false }));
    let s = screen(&app);
    assert!(s.contains("learning rate (log) · warm-up ended at iteration 212"), "{s}");
    // A resume from before that point trains the warm-up again: the mark goes.
    let mut resumed = info(20, "20261128-041500-resnet20");
    resumed.start_iter = 150;
    app.update(event(0, Event::RunStarted { time: 1200.0, run: Box::new(resumed) }));
    assert!(!screen(&app).contains("(log) · warm-up ended"));
}

#[test]
fn the_depth_chooser_shows_each_depths_memory_and_marks_what_will_not_fit() {
    let mut app = running_app();
    app.update(Msg::System(SystemSample {
        cpu_percent: 100.0,
        memory_bytes: 1 << 30,
        gpu_memory: None,
        gpu_note: None,
        available_bytes: Some(3 << 30),
    }));
    app.update(key('d'));
    let s = screen(&app);
    let line = |depth: &str| {
        let chooser_line = |l: &&str| l.contains(&format!("ResNet-{depth} ")) && l.contains("params  paper");
        s.lines().find(chooser_line).unwrap_or("").to_string()
    };
    // At batch 128: ResNet-20 (about 1.3 GiB) fits in 4 GiB; ResNet-1202 (about 15 GiB) does not.
    assert!(line("20").contains("1.30 GiB") && !line("20").contains("won't fit"), "{s}");
    assert!(line("1202").contains("won't fit"), "{s}");
}

#[test]
fn a_plain_run_is_named_plain_and_v_draws_its_layer_responses_at_each_evaluation() {
    let mut app = live();
    let mut plain = info(20, "20261202-050000-plain20");
    plain.config.shortcut = Shortcut::None;
    app.update(event(0, Event::RunStarted { time: 1000.0, run: Box::new(plain) }));
    let profile = |iter: u64, scale: f64| {
        let Msg::Event(Envelope { event: Event::Eval(mut e), .. }) = eval(0, iter, 50.0) else { unreachable!() };
        e.responses = (0..19).map(|i| scale * (1.0 + i as f64 / 10.0)).collect();
        event(0, Event::Eval(e))
    };
    for i in 1..=100 {
        app.update(step(0, i));
    }
    let before = screen(&app);
    assert!(before.contains("Plain-20"), "{before}");
    assert!(!before.contains("paper 8.75%"), "no paper line for a plain net:\n{before}");
    app.update(key('v'));
    assert!(screen(&app).contains("after the first evaluation"));
    app.update(profile(100, 1.0));
    let first = screen(&app);
    assert!(first.contains("layer responses, iteration 100") && first.contains("P20"), "{first}");
    assert!(first.contains("by layer index") && first.contains("sorted by magnitude"), "{first}");
    // The largest value labels the y axis: 1.05 x the largest std (2.8).
    assert!(first.contains("2.94"), "{first}");
    app.update(profile(200, 2.0));
    let second = screen(&app);
    assert!(second.contains("layer responses, iteration 200") && second.contains("5.88"), "{second}");
    app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    assert!(!screen(&app).contains("layer responses"));
}
