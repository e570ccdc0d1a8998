//! Where the dashboard's events come from: a live trainer or a replay player, behind one trait,
//! so the loop and the drawing code cannot tell them apart.

use super::app::{Mode, Msg, Playback};
use crate::protocol::{Channels, Command, Envelope, Event, RunId};
use crate::replay::{Player, Speed};
use std::time::Instant;

pub trait Feed {
    fn mode(&self) -> Mode;
    /// Moves at most `max` waiting messages into `out` without blocking; `false` once the source
    /// has ended for good (a live trainer's thread is gone).
    fn drain(&mut self, now: Instant, max: usize, out: &mut Vec<Msg>) -> bool;
    /// A command for run `to` (the current one, where several are shown).
    fn command(&mut self, to: Option<RunId>, command: Command);
    fn playback(&mut self, now: Instant, control: Playback);
}

/// A live trainer: events from its channel, commands to it. When the session resumes a run, its
/// log's events from before the session go first (`Msg::Past`), so the curves show the whole run.
pub struct LiveFeed {
    channels: Channels,
    /// The session's first run has been seen (only it can have a past this dashboard did not see).
    first_seen: bool,
    /// While a resumed run's log is read on a thread of its own (a long run's takes a second or
    /// more, which the dashboard would otherwise spend frozen): its start event, held back so that
    /// the past goes first, and where the past will come from.
    reading: Option<(Envelope, crossbeam_channel::Receiver<PastOrWhyNot>)>,
}

/// A resumed run's earlier events, or why they cannot be read.
type PastOrWhyNot = Result<Vec<Event>, crate::runlog::LogError>;

impl LiveFeed {
    pub fn new(channels: Channels) -> LiveFeed {
        LiveFeed { channels, first_seen: false, reading: None }
    }

    /// Starts reading the past of the run that `start` starts, if it is the session's first and
    /// resumed; `None` when there is nothing to read and `start` can go on at once.
    fn read_past_of(&mut self, start: Envelope) -> Option<Envelope> {
        let Event::RunStarted { run, .. } = &start.event else { return Some(start) };
        if std::mem::replace(&mut self.first_seen, true) || run.start_iter == 0 {
            return Some(start);
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let dir = run.dir.clone();
        let spawned = std::thread::Builder::new().name("past-log".into()).spawn(move || {
            let _ = tx.send(past_of(&dir));
        });
        match spawned {
            Ok(_) => {
                self.reading = Some((start, rx));
                None
            }
            Err(_) => Some(start),
        }
    }
}

/// The events of the log in `run_dir` from before its newest start (the one this session made:
/// the trainer logs its start before it sends it), or why they cannot be read.
fn past_of(run_dir: &std::path::Path) -> PastOrWhyNot {
    let log = crate::runlog::read(run_dir)?;
    let mut events = log.events;
    let newest = events.iter().rposition(|e| matches!(e, Event::RunStarted { .. }));
    events.truncate(newest.unwrap_or(0));
    Ok(events)
}

impl Feed for LiveFeed {
    fn mode(&self) -> Mode {
        Mode::Live
    }

    fn drain(&mut self, _now: Instant, max: usize, out: &mut Vec<Msg>) -> bool {
        if let Some((_, rx)) = &self.reading {
            // The trainer's later events wait in their channel until the past is read.
            let past = match rx.try_recv() {
                Ok(past) => Some(past),
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => None,
            };
            let (start, _) = self.reading.take().expect("reading");
            let not_shown = |why: &dyn std::fmt::Display| format!("the run's earlier history is not shown: {why}");
            match past {
                Some(Ok(events)) if !events.is_empty() => out.push(Msg::Past(start.run, events)),
                Some(Ok(_)) => {}
                Some(Err(why)) => out.push(Msg::Warning(not_shown(&why))),
                None => out.push(Msg::Warning(not_shown(&"the reading thread failed"))),
            }
            out.push(Msg::Event(start));
        }
        for _ in 0..max {
            match self.channels.events.try_recv() {
                Ok(e) => match self.read_past_of(e) {
                    Some(e) => out.push(Msg::Event(e)),
                    None => return true,
                },
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    fn command(&mut self, _to: Option<RunId>, command: Command) {
        // One trainer, whose newest run is the only one still going. One that has ended needs
        // no more commands.
        let _ = self.channels.commands.send(command);
    }

    fn playback(&mut self, _now: Instant, _control: Playback) {}
}

/// A replay: events from the player at its pace, playback controls to it, and its warnings.
pub struct ReplayFeed {
    pub player: Player,
    last_status: Option<super::app::PlaybackStatus>,
}

impl ReplayFeed {
    pub fn new(player: Player) -> ReplayFeed {
        ReplayFeed { player, last_status: None }
    }
}

/// The speeds `+` and `-` step through, in times the recorded pace; past the last comes "as fast
/// as possible".
const SPEEDS: [f64; 9] = [0.25, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0, 300.0, 1000.0];

impl Feed for ReplayFeed {
    fn mode(&self) -> Mode {
        Mode::Replay
    }

    fn drain(&mut self, now: Instant, max: usize, out: &mut Vec<Msg>) -> bool {
        for w in self.player.take_warnings() {
            out.push(Msg::Warning(w));
        }
        out.extend(self.player.next_batch(now, max).into_iter().map(Msg::Event));
        let p = self.player.progress();
        let status = super::app::PlaybackStatus {
            speed: match self.player.speed() {
                Speed::Max => None,
                Speed::Times(s) => Some(s),
            },
            paused: self.player.is_paused(),
            at_end: p.played == p.total,
            following: self.player.is_following(),
            played: p.played,
            total: p.total,
        };
        if self.last_status.as_ref() != Some(&status) {
            self.last_status = Some(status.clone());
            out.push(Msg::Playback(status));
        }
        true
    }

    fn command(&mut self, _to: Option<RunId>, _command: Command) {}

    fn playback(&mut self, now: Instant, control: Playback) {
        let p = &mut self.player;
        match control {
            Playback::TogglePause => p.set_paused(now, !p.is_paused()),
            Playback::Start => p.restart(now),
            Playback::End => p.skip_to_end(),
            Playback::Faster => {
                let next = match p.speed() {
                    Speed::Max => Speed::Max,
                    Speed::Times(s) => SPEEDS.iter().find(|&&v| v > s).map_or(Speed::Max, |&v| Speed::Times(v)),
                };
                p.set_speed(now, next);
            }
            Playback::Slower => {
                let next = match p.speed() {
                    Speed::Max => Speed::Times(SPEEDS[SPEEDS.len() - 1]),
                    Speed::Times(s) => {
                        Speed::Times(SPEEDS.iter().rev().find(|&&v| v < s).copied().unwrap_or(SPEEDS[0]))
                    }
                };
                p.set_speed(now, next);
            }
        }
    }
}

/// A run started elsewhere: its log followed as it grows (what is there already is shown at
/// once), and the steering keys written as command files into its run directory, which its
/// trainer answers in the log.
pub struct AttachFeed {
    player: Player,
    /// The runs followed, by run id (the player numbers its logs in this order).
    run_dirs: Vec<std::path::PathBuf>,
    notes: Vec<String>,
}

impl AttachFeed {
    /// Follows the logs of `run_dirs`; the keys steer whichever is current in the dashboard.
    pub fn open(run_dirs: &[std::path::PathBuf], now: Instant) -> Result<AttachFeed, crate::runlog::LogError> {
        let player = Player::open(run_dirs, Speed::Max, true, now)?;
        let idle: Vec<String> =
            run_dirs.iter().filter(|d| !crate::rundir::is_training(d)).map(|d| d.display().to_string()).collect();
        let mut notes = Vec::new();
        if !idle.is_empty() {
            notes.push(format!(
                "no process trains {} now: keys are written for it and go stale after {} minutes",
                idle.join(", "),
                crate::mailbox::STALE_SECS as u64 / 60
            ));
        }
        Ok(AttachFeed { player, run_dirs: run_dirs.to_vec(), notes })
    }
}

impl Feed for AttachFeed {
    fn mode(&self) -> Mode {
        Mode::Attached
    }

    fn drain(&mut self, now: Instant, max: usize, out: &mut Vec<Msg>) -> bool {
        out.extend(self.notes.drain(..).map(Msg::Warning));
        for w in self.player.take_warnings() {
            out.push(Msg::Warning(w));
        }
        out.extend(self.player.next_batch(now, max).into_iter().map(Msg::Event));
        true
    }

    fn command(&mut self, to: Option<RunId>, command: Command) {
        let Some(run_dir) = (match to {
            Some(id) => self.run_dirs.get(id as usize),
            None => self.run_dirs.last(),
        }) else {
            let which = to.map(|id| format!("#{id}")).unwrap_or_default();
            self.notes.push(format!("run {which} is not followed here: nothing sent"));
            return;
        };
        match crate::mailbox::send(run_dir, &command) {
            Ok(_) => self.notes.push(format!("{} sent: the run answers in its log", command.name())),
            Err(e) => self.notes.push(e.to_string()),
        }
    }

    fn playback(&mut self, _now: Instant, _control: Playback) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, info, step};
    use crate::protocol::RunInfo;
    use crate::ui::app::App;
    use crate::ui::theme::{Marker, Theme};

    fn start(dir: &std::path::Path, start_iter: u64) -> Event {
        Event::RunStarted { time: 0.0, run: Box::new(RunInfo { dir: dir.to_path_buf(), ..info(20, start_iter) }) }
    }

    #[test]
    fn an_attached_command_goes_to_the_run_it_was_given_for() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<_> = ["a", "b"].iter().map(|n| tmp.path().join(n)).collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
            let mut log = crate::runlog::LogWriter::open(&d.join(crate::runlog::LOG_NAME)).unwrap();
            log.write(&start(d, 0)).unwrap();
        }
        let letters = |d: &std::path::Path| {
            std::fs::read_dir(d.join(crate::mailbox::COMMANDS_DIR)).map(|r| r.count()).unwrap_or(0)
        };
        let mut feed = AttachFeed::open(&dirs, Instant::now()).unwrap();
        feed.command(Some(0), Command::Pause);
        assert_eq!((letters(&dirs[0]), letters(&dirs[1])), (1, 0));
        feed.command(Some(1), Command::Checkpoint);
        feed.command(None, Command::Stop);
        assert_eq!((letters(&dirs[0]), letters(&dirs[1])), (1, 2), "no run given: the newest");
        feed.command(Some(2), Command::Stop);
        assert_eq!((letters(&dirs[0]), letters(&dirs[1])), (1, 2), "a run not followed: nothing sent");
        let mut out = Vec::new();
        feed.drain(Instant::now(), 100, &mut out);
        assert!(out.iter().any(|m| matches!(m, Msg::Warning(w) if w == "run #2 is not followed here: nothing sent")));
    }

    #[test]
    fn a_resumed_runs_dashboard_first_gets_its_history_from_the_log_and_it_does_not_decide_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        // Two earlier sessions: the first ended in a fatal error after iteration 3.
        let fatal = Event::Error { time: 1.0, message: "killed".into(), fatal: true };
        let earlier = [start(dir.path(), 0), step(1, 90.0), step(2, 80.0), eval(2, 70.0), step(3, 75.0), fatal];
        let this_start = start(dir.path(), 2);
        let mut log = crate::runlog::LogWriter::open(&dir.path().join(crate::runlog::LOG_NAME)).unwrap();
        for e in earlier.iter().chain([&this_start, &step(3, 60.0)]) {
            log.write(e).unwrap();
        }
        let (event_tx, events) = crossbeam_channel::unbounded();
        let (commands, _command_rx) = crossbeam_channel::unbounded();
        let mut feed = LiveFeed::new(Channels { events, commands });
        for e in [this_start.clone(), step(3, 60.0), this_start] {
            event_tx.send(Envelope { run: 0, event: e }).unwrap();
        }
        // The log is read on a thread; the live events wait for it.
        let mut out = Vec::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while out.len() < 4 && Instant::now() < deadline {
            assert!(feed.drain(Instant::now(), 10, &mut out));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let kinds: Vec<&str> = out
            .iter()
            .map(|m| match m {
                Msg::Past(0, past) if past[..] == earlier[..] => "the past",
                Msg::Event(_) => "event",
                _ => "something else",
            })
            .collect();
        assert_eq!(kinds, ["the past", "event", "event", "event"], "the past once, then the live events");

        let mut app = App::new(Mode::Live, Theme { color: false }, Marker::Braille);
        for m in out.into_iter().take(3) {
            app.update(m);
        }
        let run = app.current().unwrap();
        assert_eq!(run.history.evals.len(), 1, "the evaluation before the resume is kept");
        assert_eq!(run.loss.iter().map(|p| p.iter).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0]);
        assert_eq!(run.train_error.last().map(|p| p.y), Some(60.0), "iteration 3 is the resumed session's");
        let lines: Vec<&str> = app.events.iter().map(|l| l.text.as_str()).collect();
        assert!(
            lines.contains(&"earlier in this run (from its log): 1 start, 1 evaluations, best 70.00% at iteration 2")
        );
        assert!(!lines.iter().any(|l| l.contains("killed")), "past events get no lines: {lines:?}");
        app.update(Msg::Event(Envelope {
            run: 0,
            event: Event::Checkpoint {
                time: 2.0,
                iter: 3,
                path: dir.path().join("c"),
                reason: crate::protocol::CheckpointReason::Final,
                secs: 0.1,
            },
        }));
        let summary = crate::protocol::Summary {
            reason: crate::protocol::EndReason::Completed,
            iters: 3,
            final_error: None,
            best_error: None,
            best_iter: None,
            train_secs: 1.0,
        };
        app.update(Msg::Event(Envelope { run: 0, event: Event::Finished { time: 3.0, summary } }));
        assert_eq!(
            app.exit_status(),
            crate::frontend::outcome::ExitStatus::Success,
            "an old fatal error is not this session's"
        );
    }
}
