//! The dashboard: one `App` state changed only by `update`, a `view` that only draws, and a loop
//! that feeds it from a live trainer or a replay (it cannot tell which, except for the keys).
pub mod app;
pub mod charts;
pub mod event_loop;
pub mod feed;
pub mod keys;
pub mod panels;
pub mod runs;
pub mod series;
pub mod system;
pub mod terminal;
pub mod theme;
pub mod view;

pub use app::{App, Mode, Msg};

use crate::cli::MarkerArg;
use crate::replay::Player;
use crate::signals::StopSignals;
use crate::train::Trainer;
use feed::{Feed, LiveFeed, ReplayFeed};
use std::process::ExitCode;

/// Watches a live trainer until the user quits; returns the process exit code.
pub fn run_live(trainer: Trainer, marker: MarkerArg) -> anyhow::Result<ExitCode> {
    let mut feed = LiveFeed { trainer };
    let shown = show(&mut feed, marker);
    if shown.as_ref().is_ok_and(|app| app.interrupted) {
        // The terminal is restored; the trainer, busy with a step or the checkpoint, is not waited for.
        crate::signals::quit_now();
    }
    // A trainer that still waits (after a divergence, or the terminal failed) is told to stop
    // and ends cleanly: checkpoint, summary, log.
    let _ = feed.trainer.commands.send(crate::protocol::Command::Stop);
    feed.trainer.join();
    let app = shown?;
    let code = app.exit_code();
    if let Some(message) = &app.fatal {
        eprintln!("resnet-tui: error: {message}");
    } else if let Some(iter) = app.final_checkpoint.missing
        && code == crate::headless::EXIT_FINAL_CHECKPOINT_FAILED
    {
        eprintln!("resnet-tui: error: {}", crate::protocol::FinalCheckpoint::missing_message(iter));
    }
    Ok(ExitCode::from(code))
}

/// Plays recorded runs until the user quits.
pub fn run_replay(player: Player, marker: MarkerArg) -> anyhow::Result<ExitCode> {
    let mut feed = ReplayFeed::new(player);
    let app = show(&mut feed, marker)?;
    Ok(ExitCode::from(app.exit_code()))
}

fn show(feed: &mut dyn Feed, marker: MarkerArg) -> anyhow::Result<App> {
    let signals = StopSignals::install();
    let mut app = App::new(feed.mode(), theme::Theme::from_env(), marker);
    let mut terminal = terminal::enter().map_err(|e| anyhow::anyhow!("cannot set up the terminal: {e}"))?;
    let result = event_loop::run(&mut terminal, &mut app, feed, &signals);
    terminal::leave();
    // Not dropped: ratatui's drop prints to stderr when the cursor cannot be shown, and printing
    // to a terminal that has hung up panics (losing the run's final checkpoint). `leave` has
    // already shown the cursor where there is a terminal to show it on.
    std::mem::forget(terminal);
    result.map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    Ok(app)
}
