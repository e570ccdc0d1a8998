//! The `--no-ui` front end: a progress bar on a terminal, one plain line per evaluation
//! otherwise. SIGINT, SIGTERM and SIGHUP ask the trainer to checkpoint and stop; a second one
//! quits at once.

use crate::protocol::{Command, EndReason, Envelope, Event, FinalCheckpoint, RunInfo};
use crate::signals::StopSignals;
use crate::train::Trainer;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code of a run that diverged (NaN or infinite loss).
pub const EXIT_DIVERGED: u8 = 3;
/// Exit code of a run that ended but whose final checkpoint could not be written.
pub const EXIT_FINAL_CHECKPOINT_FAILED: u8 = 4;

/// How the progress is shown.
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines,
}

impl Progress {
    fn say(&self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.println(line),
            Progress::Lines => eprintln!("{line}"),
        }
    }
}

/// Runs the trainer to its end, printing progress; returns the process exit code.
pub fn run(trainer: Trainer) -> ExitCode {
    let signals = StopSignals::install();
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Progress::Bar(bar)
    } else {
        Progress::Lines
    };
    let mut info: Option<RunInfo> = None;
    let mut code = 0;
    let mut stopping = false;
    let mut last_eval = String::new();
    let mut final_checkpoint = FinalCheckpoint::default();
    loop {
        let signalled = signals.received();
        if signalled >= 2 {
            if let Progress::Bar(bar) = &progress {
                bar.finish_and_clear();
            }
            crate::signals::quit_now();
        }
        if signalled == 1 && !stopping {
            progress.say("signal received: writing a checkpoint and stopping (Ctrl-C again quits at once)");
            let _ = trainer.commands.send(Command::Stop);
            stopping = true;
        }
        let Envelope { event, .. } = match trainer.events.recv_timeout(Duration::from_millis(100)) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        final_checkpoint.see(&event);
        match event {
            Event::RunStarted { run, .. } => {
                progress.say(&format!(
                    "run {}: ResNet-{} ({} parameters) on {}, {} iterations from {}, evaluating on {} {:?} images; log {}",
                    run.name,
                    run.config.depth,
                    run.params,
                    run.device,
                    run.config.iters,
                    run.start_iter,
                    run.eval_images,
                    run.eval_set,
                    run.dir.join(crate::runlog::LOG_NAME).display()
                ));
                if let Progress::Bar(bar) = &progress {
                    bar.set_length(run.config.iters);
                    bar.set_position(run.start_iter);
                    bar.set_prefix(format!("ResNet-{}", run.config.depth));
                }
                info = Some(*run);
            }
            Event::Status { message, .. } => progress.say(&message),
            Event::Step { iter, epoch, loss, error, lr, images_per_sec, .. } => {
                if let (Progress::Bar(bar), Some(run)) = (&progress, &info) {
                    bar.set_position(iter);
                    let eta = eta_secs(run.config.iters.saturating_sub(iter), run.config.batch_size, images_per_sec);
                    bar.set_message(format!(
                        "ep {epoch:.2} loss {loss:.3} err {error:.1}% lr {lr:.3e} {images_per_sec:.0} img/s eta {}{last_eval}",
                        format_secs(eta)
                    ));
                }
            }
            Event::Eval { iter, epoch, loss, error, set, elapsed, .. } => {
                last_eval = format!(" | {set:?} err {error:.2}%");
                progress.say(&format!(
                    "iter {iter} epoch {epoch:.2}: {set:?} loss {loss:.4} error {error:.2}% ({} elapsed)",
                    format_secs(elapsed)
                ));
            }
            Event::Checkpoint { path, reason, .. } => {
                if matches!(progress, Progress::Lines) || reason != crate::protocol::CheckpointReason::Best {
                    progress.say(&format!("checkpoint ({reason:?}): {}", path.display()));
                }
            }
            Event::Paused { iter, .. } => progress.say(&format!("paused at iteration {iter}")),
            Event::Resumed { iter, .. } => progress.say(&format!("resumed at iteration {iter}")),
            Event::Diverged { iter, loss, last_good, .. } => {
                progress.say(&format!(
                    "diverged at iteration {iter}: loss is {loss}; last good checkpoint: {}",
                    last_good.map(|p| p.display().to_string()).unwrap_or_else(|| "none".into())
                ));
                let _ = trainer.commands.send(Command::Stop);
                code = EXIT_DIVERGED;
            }
            Event::Finished { summary, .. } => {
                let err = |e: Option<f64>| e.map(|v| format!("{v:.2}%")).unwrap_or_else(|| "-".into());
                progress.say(&format!(
                    "finished ({:?}) after {} iterations in {}: final error {}, best {} at iteration {}",
                    summary.reason,
                    summary.iters,
                    format_secs(summary.train_secs),
                    err(summary.final_error),
                    err(summary.best_error),
                    summary.best_iter.map(|i| i.to_string()).unwrap_or_else(|| "-".into())
                ));
                if summary.reason == EndReason::Diverged {
                    code = EXIT_DIVERGED;
                }
            }
            Event::Error { message, fatal, .. } => {
                if fatal {
                    if let Progress::Bar(bar) = &progress {
                        bar.finish_and_clear();
                    }
                    eprintln!("resnet-tui: error: {message}");
                    code = 1;
                } else {
                    progress.say(&format!("warning: {message}"));
                }
            }
        }
    }
    if let Progress::Bar(bar) = &progress {
        bar.finish_and_clear();
    }
    trainer.join();
    if let Some(iter) = final_checkpoint.missing
        && code == 0
    {
        eprintln!("resnet-tui: error: {}", FinalCheckpoint::missing_message(iter));
        code = EXIT_FINAL_CHECKPOINT_FAILED;
    }
    ExitCode::from(code)
}

/// Seconds left for `iters` iterations at the measured throughput.
pub fn eta_secs(iters: u64, batch_size: usize, images_per_sec: f64) -> f64 {
    if images_per_sec > 0.0 { iters as f64 * batch_size as f64 / images_per_sec } else { f64::NAN }
}

/// `1h02m03s`, `4m05s`, `12s`; `-` when unknown.
pub fn format_secs(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_secs(12.4), "12s");
        assert_eq!(format_secs(245.0), "4m05s");
        assert_eq!(format_secs(3723.0), "1h02m03s");
        assert_eq!(format_secs(f64::NAN), "-");
        assert_eq!(format_secs(eta_secs(100, 128, 1280.0)), "10s");
    }
}
