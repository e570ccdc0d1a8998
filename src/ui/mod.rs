//! The dashboard: one `App` state changed only by `update`, a `view` that only draws, and a loop
//! that feeds it from a live trainer or a replay (it cannot tell which, except for the keys).
pub mod app;
pub(crate) mod charts;
pub(crate) mod event_loop;
pub mod feed;
pub(crate) mod images;
pub(crate) mod confusion;
pub mod keys;
pub(crate) mod panels;
pub(crate) mod responses;
pub mod runs;
pub(crate) mod system;
pub mod table;
pub(crate) mod terminal;
pub mod theme;
pub mod view;

pub use app::{App, Mode, Msg};

use crate::frontend::outcome::{ExitStatus, Outcome};
use crate::protocol::Channels;
use crate::replay::Player;
use crate::signals::StopSignals;
use feed::{Feed, LiveFeed, ReplayFeed};
use theme::Marker;

/// Watches a live trainer until the user quits; returns how the session ended. The caller,
/// who spawned the trainer, joins it (or, after a second stop request, does not wait for it).
pub fn run_live(channels: Channels, marker: Marker) -> anyhow::Result<Outcome> {
    let mut feed = LiveFeed::new(channels);
    show(&mut feed, marker).map(|app| app.outcome)
}

/// Follows a run started elsewhere and steers it through command files until the user leaves.
pub fn run_attached(run_dir: &std::path::Path, marker: Marker) -> anyhow::Result<ExitStatus> {
    let mut feed = feed::AttachFeed::open(&[run_dir.to_path_buf()], std::time::Instant::now())?;
    show(&mut feed, marker).map(|app| app.exit_status())
}

/// Plays recorded runs until the user quits.
pub fn run_replay(player: Player, marker: Marker) -> anyhow::Result<ExitStatus> {
    let mut feed = ReplayFeed::new(player);
    show(&mut feed, marker).map(|app| app.exit_status())
}

fn show(feed: &mut dyn Feed, marker: Marker) -> anyhow::Result<App> {
    let signals = StopSignals::install();
    let mut app = App::new(feed.mode(), theme::Theme::from_env(), marker);
    let mut terminal = terminal::enter().map_err(|e| anyhow::anyhow!("cannot set up the terminal: {e}"))?;
    let input = event_loop::spawn_input();
    let result = event_loop::run(&mut terminal, &mut app, feed, &signals, &input);
    terminal::leave();
    // Not dropped: ratatui's drop prints to stderr when the cursor cannot be shown, and printing
    // to a terminal that has hung up panics (losing the run's final checkpoint). `leave` has
    // already shown the cursor where there is a terminal to show it on.
    std::mem::forget(terminal);
    result.map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    Ok(app)
}
