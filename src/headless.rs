//! The `--no-ui` front end, the smallest one: a progress bar on a terminal (plain lines
//! otherwise), and the shared line of every event worth one. SIGINT, SIGTERM and SIGHUP ask the
//! trainer to checkpoint and stop; a second one quits at once. A sweep's cell adds SIGUSR1, a
//! cluster's notice before the time limit, which stops the same way.

use crate::format::eta;
use crate::frontend::describe::describe;
use crate::frontend::history::History;
use crate::frontend::outcome::Outcome;
use crate::protocol::{Channels, Command, Envelope, Event};
use crate::signals::StopSignals;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How the progress is shown.
enum Progress<'a> {
    Bar(indicatif::ProgressBar),
    Lines(&'a mut dyn Write),
}

impl Progress<'_> {
    fn bar() -> Progress<'static> {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Progress::Bar(bar)
    }

    fn say(&mut self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.println(line),
            Progress::Lines(out) => {
                let _ = writeln!(out, "{line}");
            }
        }
    }

    fn done(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Watches the trainer to its end, printing progress on stderr (a bar on a terminal, lines
/// otherwise); returns how the session ended.
pub fn run(channels: Channels) -> Outcome {
    run_until(channels, None)
}

/// As [`run`]; when `requeue` becomes true (a cluster's signal before the time limit), the run
/// checkpoints and stops as for a first Ctrl-C, and the caller requeues it.
pub fn run_until(channels: Channels, requeue: Option<&AtomicBool>) -> Outcome {
    if std::io::stderr().is_terminal() {
        watch(channels, Progress::bar(), requeue)
    } else {
        watch(channels, Progress::Lines(&mut std::io::stderr()), requeue)
    }
}

/// As [`run`], writing one line per event worth one to `out` (no bar).
pub fn run_to(channels: Channels, out: &mut dyn Write) -> Outcome {
    watch(channels, Progress::Lines(out), None)
}

fn watch(channels: Channels, mut progress: Progress, requeue: Option<&AtomicBool>) -> Outcome {
    let signals = StopSignals::install();
    let mut history = History::new();
    let mut outcome = Outcome::default();
    let mut stopping = false;
    loop {
        let signalled = signals.requests();
        if signalled >= 2 {
            progress.done();
            outcome.interrupted = true;
            return outcome;
        }
        if signalled == 1 && !stopping {
            progress.say("signal received: writing a checkpoint and stopping (Ctrl-C again quits at once)");
            let _ = channels.commands.send(Command::Stop);
            stopping = true;
        }
        if !stopping && requeue.is_some_and(|r| r.load(Ordering::SeqCst)) {
            progress.say("the scheduler asks for the node back (SIGUSR1): writing a checkpoint, then requeueing");
            let _ = channels.commands.send(Command::Stop);
            stopping = true;
        }
        let Envelope { event, .. } = match channels.events.recv_timeout(Duration::from_millis(100)) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        if matches!(event, Event::RunStarted { .. }) && history.info.is_some() && !history.is_active() {
            // A new run of the session (headless never switches depth, but stay correct).
            history = History::new();
        }
        // A lost final checkpoint and a fatal error are said in the closing line, once the
        // trainer has ended.
        outcome.see(&event);
        if let Some(said) = describe(&event, &history).filter(|_| !matches!(event, Event::Error { fatal: true, .. })) {
            progress.say(&said.text);
        }
        history.push(&event);
        match &event {
            Event::RunStarted { run, .. } => {
                if let Progress::Bar(bar) = &progress {
                    bar.set_length(run.config.iters);
                    bar.set_position(run.start_iter);
                    bar.set_prefix(run.config.network_name());
                }
            }
            Event::Step(s) => {
                if let Progress::Bar(bar) = &progress {
                    bar.set_position(s.iter);
                    let eval = history
                        .last_eval()
                        .map(|e| format!(" | {} err {:.2}%", e.set.name(), e.error))
                        .unwrap_or_default();
                    bar.set_message(format!(
                        "ep {:.2} loss {:.3} err {:.1}% lr {:.3e} {:.0} img/s eta {}{eval}",
                        s.epoch,
                        s.loss,
                        s.error,
                        s.lr,
                        s.images_per_sec,
                        history.eta_secs().map(eta).unwrap_or_else(|| "-".into())
                    ));
                }
            }
            // Nobody here can choose to recover: end the run (exit status 3).
            Event::Diverged { .. } => {
                let _ = channels.commands.send(Command::Stop);
            }
            _ => {}
        }
    }
    progress.done();
    outcome.source_closed();
    outcome
}
