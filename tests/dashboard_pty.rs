//! The real binary in a pseudo-terminal on a tiny run: the dashboard draws its charts, `p`
//! pauses (the iteration count stops), `c` writes a checkpoint file, `q` then `y` quits with exit
//! code 0 and the terminal is given back (alternate screen left, cursor shown); a Ctrl-C while
//! the run stops quits at once, with code 130, and gives the terminal back too.

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Long enough for a loaded machine; every wait ends as soon as its condition holds.
const PATIENCE: Duration = Duration::from_secs(180);

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `cond` holds for the screen's text; fails with the screen shown.
    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if cond(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The iteration shown in the header's progress line.
fn shown_iter(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_start().starts_with("iter "))?;
    let n = line.trim_start()["iter ".len()..].split('/').next()?;
    n.replace(',', "").parse().ok()
}

fn requested_checkpoints(runs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for run in std::fs::read_dir(runs).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(run.path().join("checkpoints")).into_iter().flatten().flatten() {
            if f.file_name().to_string_lossy().starts_with("iter-") {
                out.push(f.path());
            }
        }
    }
    out
}

/// The real binary in a pseudo-terminal on a tiny run that does not end by itself.
struct Dashboard {
    _dir: tempfile::TempDir,
    runs: PathBuf,
    /// The file an injected stall creates once the trainer is stuck.
    stalled: PathBuf,
    screen: Screen,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    /// Dropped once the program has exited, which ends the output pump.
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
    pump: Option<std::thread::JoinHandle<()>>,
}

impl Dashboard {
    /// Starts it; `fault` goes to `RESNET_TUI_FAULT`, and a stall announces itself in `stalled`.
    fn start(fault: Option<&str>) -> Dashboard {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let runs = dir.path().join("runs");
        let stalled = dir.path().join("stalled");
        resnet_tui::data::cifar::write_synthetic(&data, 64, |f, r, b| ((f * 31 + r * 7 + b) % 251) as u8).unwrap();

        let pty = native_pty_system();
        let pair = pty.openpty(PtySize { rows: 40, cols: 140, pixel_width: 0, pixel_height: 0 }).unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_resnet-tui"));
        for a in [
            "--data-dir",
            data.to_str().unwrap(),
            "--runs-dir",
            runs.to_str().unwrap(),
            "--depth",
            "8",
            "--batch-size",
            "16",
            "--iters",
            "1000000",
            "--checkpoint-every",
            "1000000",
            "--device",
            "cpu",
            "--threads",
            "1",
        ] {
            cmd.arg(a);
        }
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("RESNET_TUI_FAULT");
        if let Some(fault) = fault {
            cmd.env("RESNET_TUI_FAULT", fault);
            cmd.env("RESNET_TUI_FAULT_NOTE", &stalled);
        }
        cmd.cwd(dir.path());
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let keys = pair.master.take_writer().unwrap();
        let screen = Screen {
            parser: Arc::new(Mutex::new(vt100::Parser::new(40, 140, 0))),
            raw: Arc::new(Mutex::new(Vec::new())),
        };
        let (parser, raw) = (Arc::clone(&screen.parser), Arc::clone(&screen.raw));
        let pump = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buf[..n]);
                raw.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Dashboard { _dir: dir, runs, stalled, screen, child, keys, master: Some(pair.master), pump: Some(pump) }
    }

    fn press(&mut self, k: &[u8]) {
        self.keys.write_all(k).unwrap();
        self.keys.flush().unwrap();
    }

    /// Waits for the program to exit and for the last of its output.
    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the dashboard did not quit; screen:\n{}", self.screen.text());
            std::thread::sleep(Duration::from_millis(100));
        };
        drop(self.master.take());
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
        status
    }

    /// The alternate screen was left, by the escape sequence itself.
    fn assert_terminal_restored(&self) {
        assert!(!self.screen.parser.lock().unwrap().screen().alternate_screen(), "alternate screen left");
        let raw = self.screen.raw.lock().unwrap();
        let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(400)..]).to_string();
        assert!(tail.contains("\x1b[?1049l"), "leaves the alternate screen: {tail:?}");
    }

    /// The last characters the program wrote, for failure messages.
    fn last_output(&self) -> String {
        let raw = self.screen.raw.lock().unwrap();
        String::from_utf8_lossy(&raw[raw.len().saturating_sub(400)..]).to_string()
    }
}

impl Drop for Dashboard {
    /// A failed test does not leave the program running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}

#[test]
fn dashboard_pauses_checkpoints_and_quits_in_a_real_terminal() {
    let mut d = Dashboard::start(None);
    let runs = d.runs.clone();

    // The charts appear once steps arrive.
    d.screen.wait_for("the charts and a running run", |t| {
        t.contains("loss (linear") && t.contains("RUNNING") && shown_iter(t).is_some_and(|i| i >= 3)
    });
    assert!(d.screen.parser.lock().unwrap().screen().alternate_screen(), "the dashboard uses the alternate screen");

    // Pause: said at once, then confirmed; the iteration count stops.
    d.press(b"p");
    let text = d.screen.wait_for("PAUSED", |t| t.contains("PAUSED"));
    let paused_at = shown_iter(&text).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let text = d.screen.text();
    assert_eq!(shown_iter(&text), Some(paused_at), "the count stops while paused:\n{text}");

    // Checkpoint: a file appears on disk and the event list names it.
    assert!(requested_checkpoints(&runs).is_empty());
    d.press(b"c");
    let deadline = Instant::now() + PATIENCE;
    while requested_checkpoints(&runs).is_empty() {
        assert!(Instant::now() < deadline, "no checkpoint file appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let file = requested_checkpoints(&runs).remove(0);
    assert_eq!(file.file_name().unwrap().to_string_lossy(), format!("iter-{paused_at:08}.safetensors"));
    d.screen.wait_for("the checkpoint in the event list", |t| t.contains("checkpoint (requested)"));

    // Quit: asked once, confirmed with y; exit code 0 and the terminal restored.
    d.press(b"q");
    d.screen.wait_for("the quit question", |t| t.contains("quit?"));
    d.press(b"y");
    let status = d.wait_exit();
    assert!(status.success(), "exit status {status:?}; last output: {:?}", d.last_output());
    d.assert_terminal_restored();
    // The run ended as stopped, with its final checkpoint, in its log.
    let run_dir = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let log = resnet_tui::runlog::read_strict(&run_dir).unwrap();
    assert!(log.events.iter().any(|e| matches!(e, resnet_tui::protocol::Event::Paused { .. })));
    assert!(matches!(
        log.events.last(),
        Some(resnet_tui::protocol::Event::Finished { summary, .. }) if summary.reason == resnet_tui::protocol::EndReason::Stopped
    ));
}

#[test]
fn ctrl_c_while_stopping_quits_at_once_with_130_and_restores_the_terminal() {
    // The trainer stalls before step 4 (a very long step or a hung disk): the clean stop cannot
    // finish, and the dashboard must not wait for it once asked twice. The keys come once the
    // stall has said it began: a stop asked for before it would be obeyed.
    let mut d = Dashboard::start(Some("stall@3"));
    let deadline = Instant::now() + PATIENCE;
    while !d.stalled.exists() {
        assert!(Instant::now() < deadline, "the trainer did not stall; screen:\n{}", d.screen.text());
        std::thread::sleep(Duration::from_millis(50));
    }
    d.screen.wait_for("three steps", |t| shown_iter(t) == Some(3));
    d.press(b"\x03");
    d.screen.wait_for("the quit question", |t| t.contains("quit?"));
    d.press(b"\x03");
    d.screen.wait_for("the stop and how to quit at once", |t| t.contains("STOPPING") && t.contains("ctrl-c quit now"));
    d.press(b"\x03");
    let status = d.wait_exit();
    assert_eq!(status.exit_code(), 130, "last output: {:?}", d.last_output());
    d.assert_terminal_restored();
    assert!(d.last_output().contains("resnet-tui: interrupted: "), "{:?}", d.last_output());
    // The log reads back; the run ended without its summary, as after a kill.
    let run_dir = std::fs::read_dir(&d.runs).unwrap().next().unwrap().unwrap().path();
    let log = resnet_tui::runlog::read_strict(&run_dir).unwrap();
    assert!(!log.events.iter().any(|e| matches!(e, resnet_tui::protocol::Event::Finished { .. })));
}
