//! The replay player: reads one or several run logs tolerantly and hands their events back as
//! `Envelope`s (the run id is the log's index), as fast as possible or at a multiple of the
//! recorded pace, optionally following logs still being written. It knows nothing of terminals.

use crate::protocol::{Envelope, Event, RunId};
use crate::runlog::{self, LogError, LogTail, RunLog};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A recorded gap longer than this (a pause, a run resumed days later) plays as this long.
const MAX_GAP_SECS: f64 = 5.0;
/// How long a followed log on standard input may take to send its first line.
const STDIN_HEADER_WAIT: Duration = Duration::from_secs(30);
/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as the reader takes them.
    Max,
    /// This many times the recorded pace.
    Times(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub played: usize,
    pub total: usize,
}

/// One log being played.
struct Log {
    path: PathBuf,
    tail: LogTail,
    read: RunLog,
    /// Playback time of each event read: recorded seconds since the log's first event, long gaps
    /// shortened to `MAX_GAP_SECS`.
    offsets: Vec<f64>,
    /// Next event to hand out.
    next: usize,
    warned: usize,
}

impl Log {
    fn open(path: &Path, follow: bool) -> Result<Log, LogError> {
        if path == Path::new(runlog::STDIN) {
            return Log::open_stdin(follow);
        }
        let path = runlog::log_path(path);
        let meta = std::fs::metadata(&path).map_err(|e| LogError::Unreadable(path.clone(), e))?;
        if meta.len() == 0 {
            return Err(LogError::Empty(path));
        }
        let mut log =
            Log { tail: LogTail::open(&path)?, path, read: RunLog::default(), offsets: Vec::new(), next: 0, warned: 0 };
        log.poll()?;
        if !log.tail.header_seen() {
            return Err(LogError::NotARunLog(log.path));
        }
        if !follow {
            // Nothing more will come: a partial last line is reported now.
            log.tail.finish(&mut log.read);
        }
        Ok(log)
    }

    /// The log on standard input: waits for its header (a pipe from ssh takes a moment); without
    /// `follow`, reads it to its end.
    fn open_stdin(follow: bool) -> Result<Log, LogError> {
        let path = PathBuf::from(runlog::STDIN);
        let mut log =
            Log { tail: LogTail::stdin(), path, read: RunLog::default(), offsets: Vec::new(), next: 0, warned: 0 };
        let deadline = Instant::now() + STDIN_HEADER_WAIT;
        loop {
            log.poll()?;
            // Closed: all of it is read. Following: go on once it has begun, or give up.
            if log.tail.ended() || (follow && (log.tail.header_seen() || Instant::now() > deadline)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !log.tail.header_seen() {
            return Err(LogError::NotARunLog(log.path));
        }
        if !follow {
            log.tail.finish(&mut log.read);
        }
        Ok(log)
    }

    /// Reads what was appended and gives the new events their playback times.
    fn poll(&mut self) -> Result<(), LogError> {
        self.tail.poll(&mut self.read)?;
        for i in self.offsets.len()..self.read.events.len() {
            let offset = if i == 0 {
                0.0
            } else {
                let gap = self.read.events[i].time() - self.read.events[i - 1].time();
                self.offsets[i - 1] + gap.clamp(0.0, MAX_GAP_SECS)
            };
            self.offsets.push(offset);
        }
        Ok(())
    }

    fn next_offset(&self) -> Option<f64> {
        self.offsets.get(self.next).copied()
    }
}

pub struct Player {
    logs: Vec<Log>,
    speed: Speed,
    paused: bool,
    follow: bool,
    /// Playback position in recorded seconds at `anchor`.
    position: f64,
    anchor: Instant,
    /// Play everything read so far at once, then go on at the chosen speed.
    rushing: bool,
    last_poll: Instant,
}

impl Player {
    /// Opens every log; the first that cannot be read, is empty or is not a run log is the error.
    pub fn open(paths: &[PathBuf], speed: Speed, follow: bool, now: Instant) -> Result<Player, LogError> {
        let logs = paths.iter().map(|p| Log::open(p, follow)).collect::<Result<Vec<_>, _>>()?;
        Ok(Player { logs, speed, paused: false, follow, position: 0.0, anchor: now, rushing: false, last_poll: now })
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn is_following(&self) -> bool {
        self.follow
    }

    pub fn progress(&self) -> Progress {
        Progress {
            played: self.logs.iter().map(|l| l.next).sum(),
            total: self.logs.iter().map(|l| l.read.events.len()).sum(),
        }
    }

    /// Every event read has been played and no more will come.
    pub fn finished(&self) -> bool {
        !self.follow && self.logs.iter().all(|l| l.next == l.read.events.len())
    }

    /// The playback position, in recorded seconds, at `now`.
    fn clock(&self, now: Instant) -> f64 {
        match (self.paused, self.speed) {
            (false, Speed::Times(s)) => self.position + now.saturating_duration_since(self.anchor).as_secs_f64() * s,
            _ => self.position,
        }
    }

    /// Moves the anchor to `now`, keeping the position, before the pace changes.
    fn rebase(&mut self, now: Instant) {
        self.position = self.clock(now);
        self.anchor = now;
    }

    pub fn set_paused(&mut self, now: Instant, paused: bool) {
        self.rebase(now);
        self.paused = paused;
    }

    pub fn set_speed(&mut self, now: Instant, speed: Speed) {
        self.rebase(now);
        self.speed = speed;
    }

    /// Plays again from the first event.
    pub fn restart(&mut self, now: Instant) {
        for l in &mut self.logs {
            l.next = 0;
        }
        self.position = 0.0;
        self.anchor = now;
        self.rushing = false;
    }

    /// Plays everything read so far at once.
    pub fn skip_to_end(&mut self) {
        self.rushing = true;
    }

    /// Warnings of tolerant reading (skipped lines) not handed out yet, each naming its log.
    pub fn take_warnings(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &mut self.logs {
            for w in &l.read.warnings[l.warned..] {
                out.push(format!("{}: {w}", l.path.display()));
            }
            l.warned = l.read.warnings.len();
        }
        out
    }

    /// The events due at `now`, at most `max`, in playback order across the logs.
    pub fn next_batch(&mut self, now: Instant, max: usize) -> Vec<Envelope> {
        if self.follow && now.saturating_duration_since(self.last_poll) >= FOLLOW_POLL {
            self.last_poll = now;
            for l in &mut self.logs {
                if let Err(e) = l.poll() {
                    l.read.warnings.push(format!("stopped following: {e}"));
                }
            }
        }
        let due = if self.rushing || self.speed == Speed::Max {
            f64::INFINITY
        } else if self.paused {
            self.position
        } else {
            self.clock(now)
        };
        if self.paused && !self.rushing {
            return Vec::new();
        }
        let mut out = Vec::new();
        while out.len() < max {
            // The log whose next event comes first: overlaid runs grow together.
            let pick = self
                .logs
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.next_offset().map(|o| (i, o)))
                .filter(|&(_, o)| o <= due)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let Some((i, offset)) = pick else { break };
            let log = &mut self.logs[i];
            let event: Event = log.read.events[log.next].clone();
            log.next += 1;
            out.push(Envelope { run: i as RunId, event });
            if self.rushing || self.speed == Speed::Max {
                // Keep the clock with the events, so slowing down later goes on from here.
                self.position = self.position.max(offset);
                self.anchor = now;
            }
        }
        if self.rushing && self.logs.iter().all(|l| l.next == l.read.events.len()) {
            self.rushing = false;
            self.anchor = now;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;
    use crate::runlog::LogWriter;

    fn step(time: f64, iter: u64) -> Event {
        Event::Step(StepRecord {
            time,
            iter,
            epoch: 0.0,
            elapsed: time,
            loss: 2.0,
            error: 50.0,
            lr: 0.1,
            images_per_sec: 1.0,
        })
    }

    fn write_log(dir: &Path, name: &str, times: &[f64]) -> PathBuf {
        let path = dir.join(name);
        let mut w = LogWriter::open(&path).unwrap();
        for (i, t) in times.iter().enumerate() {
            w.write(&step(*t, i as u64 + 1)).unwrap();
        }
        path
    }

    #[test]
    fn as_fast_as_possible_plays_everything_in_chunks_merged_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_log(dir.path(), "a.jsonl", &[100.0, 101.0, 102.0]);
        let b = write_log(dir.path(), "b.jsonl", &[500.0, 500.5, 501.5, 502.5]);
        let now = Instant::now();
        let mut p = Player::open(&[a, b], Speed::Max, false, now).unwrap();
        let first = p.next_batch(now, 4);
        assert_eq!(first.len(), 4);
        // Both logs start at their own time zero, so they interleave.
        assert_eq!(first.iter().map(|e| e.run).collect::<Vec<_>>(), vec![0, 1, 1, 0]);
        let rest = p.next_batch(now, 100);
        assert_eq!(rest.len(), 3);
        assert!(p.finished());
        assert_eq!(p.progress(), Progress { played: 7, total: 7 });
    }

    #[test]
    fn recorded_pace_pause_speed_and_jumps() {
        let dir = tempfile::tempdir().unwrap();
        // A gap of an hour (a run resumed later) plays as a few seconds.
        let a = write_log(dir.path(), "a.jsonl", &[0.0, 1.0, 2.0, 3602.0]);
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut p = Player::open(&[a], Speed::Times(1.0), false, t0).unwrap();
        assert_eq!(p.next_batch(at(0.5), 100).len(), 1);
        assert_eq!(p.next_batch(at(1.5), 100).len(), 1);
        p.set_paused(at(1.5), true);
        assert!(p.next_batch(at(30.0), 100).is_empty(), "paused playback stays put");
        p.set_paused(at(30.0), false);
        p.set_speed(at(30.0), Speed::Times(2.0));
        assert_eq!(p.next_batch(at(30.3), 100).len(), 1, "position 2.1 s");
        assert!(p.next_batch(at(31.0), 100).is_empty(), "the gap is shortened, not skipped");
        assert_eq!(p.next_batch(at(33.0), 100).len(), 1, "position 7.5 s, past 2 + 5");
        p.restart(at(40.0));
        assert_eq!(p.progress().played, 0);
        p.skip_to_end();
        assert_eq!(p.next_batch(at(40.0), 100).len(), 4);
    }

    #[test]
    fn following_picks_up_appended_events_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path(), "a.jsonl", &[0.0]);
        let t0 = Instant::now();
        let mut p = Player::open(std::slice::from_ref(&path), Speed::Max, true, t0).unwrap();
        assert_eq!(p.next_batch(t0, 100).len(), 1);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        let line = serde_json::to_string(&step(1.0, 2)).unwrap();
        f.write_all(&line.as_bytes()[..10]).unwrap();
        assert!(p.next_batch(t0 + FOLLOW_POLL, 100).is_empty());
        f.write_all(&line.as_bytes()[10..]).unwrap();
        f.write_all(b"\n").unwrap();
        assert_eq!(p.next_batch(t0 + FOLLOW_POLL * 2, 100).len(), 1);
        assert!(p.take_warnings().is_empty(), "a line being written is not damage");
        assert!(!p.finished());
    }

    #[test]
    fn not_a_run_log_is_an_error_and_damage_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "hello\n").unwrap();
        let err = Player::open(&[other], Speed::Max, false, Instant::now()).err().unwrap();
        assert!(err.to_string().contains("not a resnet-tui run log"), "{err}");
        let path = write_log(dir.path(), "a.jsonl", &[0.0]);
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"step\":{\"ti").unwrap();
        let mut p = Player::open(&[path], Speed::Max, false, Instant::now()).unwrap();
        let w = p.take_warnings();
        assert!(w.len() == 1 && w[0].contains("partial last line"), "{w:?}");
    }
}
