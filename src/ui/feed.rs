//! Where the dashboard's events come from: a live trainer or a replay player, behind one trait,
//! so the loop and the drawing code cannot tell them apart.

use super::app::{Mode, Msg, Playback};
use crate::protocol::{Channels, Command};
use crate::replay::{Player, Speed};
use std::time::Instant;

pub trait Feed {
    fn mode(&self) -> Mode;
    /// Moves at most `max` waiting messages into `out` without blocking; `false` once the source
    /// has ended for good (a live trainer's thread is gone).
    fn drain(&mut self, now: Instant, max: usize, out: &mut Vec<Msg>) -> bool;
    fn command(&mut self, command: Command);
    fn playback(&mut self, now: Instant, control: Playback);
}

/// A live trainer: events from its channel, commands to it.
pub struct LiveFeed {
    pub channels: Channels,
}

impl Feed for LiveFeed {
    fn mode(&self) -> Mode {
        Mode::Live
    }

    fn drain(&mut self, _now: Instant, max: usize, out: &mut Vec<Msg>) -> bool {
        for _ in 0..max {
            match self.channels.events.try_recv() {
                Ok(e) => out.push(Msg::Event(e)),
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    fn command(&mut self, command: Command) {
        // A trainer that has ended needs no more commands.
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

    fn command(&mut self, _command: Command) {}

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
    /// The run the keys steer (the current one when several are open overlaid).
    run_dir: std::path::PathBuf,
    notes: Vec<String>,
}

impl AttachFeed {
    /// Follows the logs of `run_dirs`; the last is the one steered.
    pub fn open(run_dirs: &[std::path::PathBuf], now: Instant) -> Result<AttachFeed, crate::runlog::LogError> {
        let player = Player::open(run_dirs, Speed::Max, true, now)?;
        let run_dir = run_dirs.last().cloned().unwrap_or_default();
        let mut notes = Vec::new();
        if !crate::rundir::is_training(&run_dir) {
            notes.push(format!(
                "no process trains {} now: keys are written for it and go stale after {} minutes",
                run_dir.display(),
                crate::mailbox::STALE_SECS as u64 / 60
            ));
        }
        Ok(AttachFeed { player, run_dir, notes })
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

    fn command(&mut self, command: Command) {
        let Some(request) = crate::mailbox::Request::from_command(&command) else {
            self.notes.push("only pause, resume, checkpoint and stop reach a run started elsewhere".into());
            return;
        };
        match crate::mailbox::send(&self.run_dir, request) {
            Ok(_) => self.notes.push(format!("{} sent: the run answers in its log", request.name())),
            Err(e) => self.notes.push(e.to_string()),
        }
    }

    fn playback(&mut self, _now: Instant, _control: Playback) {}
}
