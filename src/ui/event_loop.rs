//! The UI loop: drains the feed within a time budget (a burst of events never freezes the
//! screen, and the trainer never waits for the terminal), carries out the app's effects, draws
//! at most every frame period and only when something changed, and reads keys in between.

use super::app::{App, Effect, Msg};
use super::feed::Feed;
use super::system::Sampler;
use crate::signals::StopSignals;
use crossterm::event::{self, Event as TermEvent};
use ratatui::DefaultTerminal;
use std::time::{Duration, Instant};

/// At most 25 frames a second.
const FRAME: Duration = Duration::from_millis(40);
/// Time per frame spent folding events in; the rest is for drawing and keys.
const DRAIN_BUDGET: Duration = Duration::from_millis(15);
/// Events handed over per feed call.
const CHUNK: usize = 2048;

pub fn run(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    feed: &mut dyn Feed,
    signals: &StopSignals,
    input: &crossbeam_channel::Receiver<TermEvent>,
) -> std::io::Result<()> {
    let mut sampler = Sampler::spawn();
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut closed = false;
    let mut msgs = Vec::with_capacity(CHUNK);
    loop {
        let started = Instant::now();
        loop {
            msgs.clear();
            let open = feed.drain(Instant::now(), CHUNK, &mut msgs);
            let n = msgs.len();
            for m in msgs.drain(..) {
                app.update(m);
            }
            dirty |= n > 0;
            if !open && !closed {
                closed = true;
                app.update(Msg::SourceClosed);
                dirty = true;
            }
            if n < CHUNK || started.elapsed() >= DRAIN_BUDGET {
                break;
            }
        }
        // One message per stop request: a second one while stopping quits at once.
        for _ in 0..signals.take() {
            app.update(Msg::Signal);
            dirty = true;
        }
        while let Ok(sample) = sampler.samples.try_recv() {
            app.update(Msg::System(sample));
            dirty = true;
        }
        if let Some(info) = app.current().and_then(|r| r.history.info.as_ref()) {
            sampler.watch_device(&info.device);
        }
        for effect in app.take_effects() {
            match effect {
                Effect::Send { to, command } => feed.command(to, command),
                Effect::Playback(control) => feed.playback(Instant::now(), control),
                // A few reads of 3 kB: quick enough for the UI thread.
                Effect::LoadImages { data_dir, set, val_split, indices } => {
                    let dir = crate::data::fetch::recorded_or_configured(&data_dir);
                    app.update(Msg::Images(super::images::load(&dir, set, val_split, &indices)))
                }
            }
            dirty = true;
        }
        if app.should_quit() {
            return Ok(());
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            terminal.draw(|frame| super::view::view(frame, app))?;
            dirty = false;
            last_draw = Some(Instant::now());
        }
        let wait =
            last_draw.map_or(Duration::ZERO, |t| FRAME.saturating_sub(t.elapsed())).max(Duration::from_millis(5));
        let first = match input.recv_timeout(wait) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other("the terminal's input has closed"));
            }
        };
        // Every key already typed, then back to the events.
        for e in std::iter::once(first).chain(input.try_iter()) {
            match e {
                TermEvent::Key(key) => app.update(Msg::Key(key)),
                TermEvent::Resize(..) => terminal.autoresize()?,
                _ => {}
            }
            dirty = true;
        }
    }
}

/// Terminal events read ahead of the screen that takes them.
const KEYS_QUEUED: usize = 256;

/// Reads terminal events on their own thread. crossterm's reader never returns once the
/// terminal has hung up (it retries the end of file forever), so the loop must not wait inside
/// it: this way signals are still seen and a failed draw still ends the dashboard cleanly. One
/// reader for the whole session: screens that follow each other (the table, then a run) share it.
/// Bounded: while a screen is busy the reader waits, and what is typed meanwhile waits in the
/// terminal's own buffer instead of ours (a held key, or a pasted page, repeats fast).
pub fn spawn_input() -> crossbeam_channel::Receiver<TermEvent> {
    let (tx, rx) = crossbeam_channel::bounded(KEYS_QUEUED);
    let _ = std::thread::Builder::new().name("keys".into()).spawn(move || {
        while let Ok(e) = event::read() {
            if tx.send(e).is_err() {
                return;
            }
        }
    });
    rx
}
