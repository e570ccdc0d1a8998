//! The table of many runs (`watch`, `sweep run`): the paper's table as it fills in, from the
//! shared board of run histories; Enter opens runs in the full dashboard, following their logs
//! and steering them as `attach` does, and Esc there comes back to the table.
pub mod app;
pub mod view;

use super::event_loop;
use super::feed::AttachFeed;
use super::theme::{Marker, Theme};
use super::{App, Mode};
use crate::executor::local::Queue;
use crate::frontend::board::{Board, Collecting, Collector};
use crate::signals::StopSignals;
use app::{TableApp, TableEffect, TableMsg};
use crossterm::event::Event as TermEvent;
use std::time::{Duration, Instant};

/// The table redraws at most this often (the collector reads the logs every `board::POLL`).
const FRAME: Duration = Duration::from_millis(100);

/// Shows the table of `board` until the user quits, `collector` reading its logs on a thread of
/// its own; with a local queue, quitting stops its runs (each writes a checkpoint) before
/// returning.
pub fn run(board: Board, collector: Collector, mut queue: Option<Queue>, marker: Marker) -> anyhow::Result<TableApp> {
    let signals = StopSignals::install();
    let mut app = TableApp::new(board, Theme::from_env(), queue.is_some());
    let collecting = collector.spawn();
    let mut terminal = super::terminal::enter().map_err(|e| anyhow::anyhow!("cannot set up the terminal: {e}"))?;
    let input = event_loop::spawn_input();
    let result = (|| -> anyhow::Result<()> {
        loop {
            table_loop(&mut terminal, &mut app, &collecting, queue.as_ref(), &signals, &input)?;
            for effect in app.take_effects() {
                match effect {
                    TableEffect::Open(dirs) => {
                        let mut feed = AttachFeed::open(&dirs, Instant::now())?;
                        let mut run_app = App::new(Mode::Attached, app.theme, marker);
                        // Same terminal, same buffers: the table's next frame is drawn as a diff
                        // over the dashboard's. (No `clear`: it asks the terminal for the cursor
                        // position, and the answer would go to the key reader.)
                        event_loop::run(&mut terminal, &mut run_app, &mut feed, &signals, &input)?;
                    }
                    TableEffect::StopQueue => {
                        if let Some(mut q) = queue.take() {
                            terminal.draw(|f| {
                                let text = "stopping the queue's runs: each writes a checkpoint…";
                                f.render_widget(ratatui::widgets::Paragraph::new(text), f.area())
                            })?;
                            q.stop();
                        }
                    }
                }
            }
            if app.should_quit() {
                return Ok(());
            }
        }
    })();
    super::terminal::leave();
    std::mem::forget(terminal);
    result.map(|()| app)
}

/// Runs the table until it quits or has effects to carry out.
fn table_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut TableApp,
    collecting: &Collecting,
    queue: Option<&Queue>,
    signals: &StopSignals,
    input: &crossbeam_channel::Receiver<TermEvent>,
) -> std::io::Result<()> {
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        for changes in collecting.changes.try_iter() {
            app.update(TableMsg::Board(changes));
            dirty = true;
        }
        for _ in 0..signals.take() {
            app.update(TableMsg::Signal);
        }
        if let Some(q) = queue {
            for event in q.events.try_iter() {
                app.update(TableMsg::Queue(event));
                dirty = true;
            }
        }
        if app.should_quit() || app.has_effects() {
            return Ok(());
        }
        // Ticks change the figures (ETA, progress) without a key: redraw every frame period.
        if dirty || last_draw.is_none_or(|t| t.elapsed() >= FRAME * 5) {
            terminal.draw(|frame| view::view(frame, app))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        match input.recv_timeout(FRAME) {
            Ok(e) => {
                for e in std::iter::once(e).chain(input.try_iter()) {
                    match e {
                        TermEvent::Key(key) => app.update(TableMsg::Key(key)),
                        TermEvent::Resize(..) => terminal.autoresize()?,
                        _ => {}
                    }
                }
                dirty = true;
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other("the terminal's input has closed"));
            }
        }
    }
}
