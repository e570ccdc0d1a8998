//! Steering a run from another process: commands written as files into the run directory's
//! `commands/` folder, which the trainer picks up at step boundaries and confirms with a
//! `command_received` event in the run's log. No network port: whoever can write the run
//! directory (a shared file system on a cluster included) can steer the run, nobody else.
//!
//! A command file is written atomically (hidden temporary file, then a rename), so the trainer
//! never reads half of one. Each carries a unique id, the run's name and when it was issued; the
//! trainer logs its verdict *before* removing the file, and knows the ids its log confirms, so a
//! command is never acted on twice, even when the trainer is killed between the two.

use crate::protocol::Command;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The folder of a run directory that command files go into.
pub const COMMANDS_DIR: &str = "commands";
/// A command older than this when the trainer sees it is not acted on: a pause asked for while
/// the run was down (a requeued cluster task) must not stop it hours later.
pub const STALE_SECS: f64 = 600.0;

/// One command file's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Letter {
    pub id: String,
    /// One of the commands that steer (`Command::steers`): `"pause"`, `"stop"`.
    pub request: Command,
    /// The run directory's name it is meant for: a copied run does not obey its original's mail.
    pub run: String,
    /// Seconds since the Unix epoch when it was written.
    pub issued: f64,
    /// Who sent it (user and host), for the log.
    #[serde(default)]
    pub from: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{}: cannot write a command: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
    #[error("only pause, resume, checkpoint and stop reach a run started elsewhere")]
    NotSteering(Command),
}

/// Writes `command` for the run in `run_dir`; returns the command's id. Only commands that steer
/// travel as files.
pub fn send(run_dir: &Path, command: &Command) -> Result<String, SendError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    if !command.steers() {
        return Err(SendError::NotSteering(command.clone()));
    }
    let dir = run_dir.join(COMMANDS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| SendError::Io(dir.clone(), e))?;
    let issued = crate::protocol::now();
    // Sorts by time of issue; the process id and a counter make it unique across senders.
    let id = format!("{:013}-{}-{}", (issued * 1000.0) as u64, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    let letter = Letter { id: id.clone(), request: command.clone(), run: run_name(run_dir), issued, from: sender() };
    let path = dir.join(format!("{id}.json"));
    let json = serde_json::to_vec(&letter).expect("a command serialises");
    crate::atomic::write(&path, &json).map_err(|e| SendError::Io(path, e))?;
    Ok(id)
}

fn run_name(run_dir: &Path) -> String {
    let canonical = run_dir.canonicalize().unwrap_or_else(|_| run_dir.to_path_buf());
    canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn sender() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    match (user.is_empty(), host.is_empty()) {
        (false, false) => format!("{user}@{host}"),
        (false, true) => user,
        (true, _) => host,
    }
}

/// What the trainer makes of one command file.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The file's id: its name without `.json`.
    pub id: String,
    /// The request's name as written, or what could be read of it.
    pub request: String,
    pub from: String,
    /// What to do, or why nothing is done.
    pub verdict: Result<Command, Refusal>,
    file: PathBuf,
}

/// Why a command file is not obeyed, as its `command_received` event says.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("not understood ({0})")]
    NotUnderstood(String),
    #[error("already answered: a duplicate")]
    Duplicate,
    #[error("meant for run {0:?}, not this one")]
    Foreign(String),
    /// Issued this many seconds before it was seen.
    #[error("stale: issued {} ago", crate::format::secs(*.0))]
    Stale(f64),
    #[error("{} does not come as a file: only pause, resume, checkpoint and stop do", .0.name())]
    NotSteering(Command),
}

impl Delivery {
    /// Removes the command's file, once its verdict is in the log.
    pub fn discard(&self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The trainer's side: the commands folder of the run it trains.
pub struct Mailbox {
    dir: PathBuf,
    run: String,
    /// Ids already answered in the run's log, read from it the first time a file is found.
    answered: Option<HashSet<String>>,
    log: PathBuf,
}

impl Mailbox {
    pub fn new(run_dir: &Path, run: &str, log: &Path) -> Mailbox {
        Mailbox { dir: run_dir.join(COMMANDS_DIR), run: run.to_string(), answered: None, log: log.to_path_buf() }
    }

    /// The command files in the folder, by id, in no order.
    fn files(&self) -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                // Hidden files are a sender's temporary ones, not yet renamed into place.
                let id = name.strip_suffix(".json").filter(|_| !name.starts_with('.'))?.to_string();
                Some((id, e.path()))
            })
            .collect()
    }

    /// Whether a command file is there, without reading or judging it.
    pub fn has_mail(&self) -> bool {
        !self.files().is_empty()
    }

    /// The command files waiting, oldest first, each with its verdict at time `now`. Each must be
    /// logged, then `discard`ed.
    pub fn collect(&mut self, now: f64) -> Vec<Delivery> {
        let mut files = self.files();
        if files.is_empty() {
            return Vec::new();
        }
        files.sort();
        let answered = self.answered.get_or_insert_with(|| answered_ids(&self.log));
        let mut out = Vec::new();
        for (id, file) in files {
            let delivery = judge(&id, &file, &self.run, now, answered);
            answered.insert(id);
            out.push(delivery);
        }
        out
    }
}

/// The verdict on one file.
fn judge(id: &str, file: &Path, run: &str, now: f64, answered: &HashSet<String>) -> Delivery {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let parsed: Result<Letter, _> = serde_json::from_str(&text);
    let (request, from, verdict) = match parsed {
        Err(e) => {
            // Say what it seemed to ask for, if anything.
            let guess = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("request").and_then(|r| r.as_str()).map(str::to_string))
                .unwrap_or_else(|| "?".into());
            (guess, String::new(), Err(Refusal::NotUnderstood(e.to_string())))
        }
        Ok(letter) => {
            let verdict = if answered.contains(id) || letter.id != id && answered.contains(&letter.id) {
                Err(Refusal::Duplicate)
            } else if letter.run != run {
                Err(Refusal::Foreign(letter.run.clone()))
            } else if now - letter.issued > STALE_SECS {
                Err(Refusal::Stale(now - letter.issued))
            } else if !letter.request.steers() {
                Err(Refusal::NotSteering(letter.request.clone()))
            } else {
                Ok(letter.request.clone())
            };
            (letter.request.name().to_string(), letter.from, verdict)
        }
    };
    Delivery { id: id.to_string(), request, from, verdict, file: file.to_path_buf() }
}

/// The command ids a run's log has answered already.
fn answered_ids(log: &Path) -> HashSet<String> {
    let Ok(read) = crate::runlog::read(log) else { return HashSet::new() };
    read.events
        .iter()
        .filter_map(|e| match e {
            crate::protocol::Event::CommandReceived { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, now};

    fn run_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("20261129-000000-resnet20");
        std::fs::create_dir(&dir).unwrap();
        (tmp, dir)
    }

    fn mailbox(dir: &Path) -> Mailbox {
        Mailbox::new(dir, "20261129-000000-resnet20", &dir.join("events.jsonl"))
    }

    #[test]
    fn commands_arrive_in_the_order_they_were_sent_and_each_once() {
        let (_tmp, dir) = run_dir();
        let a = send(&dir, &Command::Pause).unwrap();
        let b = send(&dir, &Command::Checkpoint).unwrap();
        let mut mb = mailbox(&dir);
        let got = mb.collect(now());
        assert_eq!(got.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(got[0].verdict, Ok(Command::Pause));
        assert_eq!(got[1].verdict, Ok(Command::Checkpoint));
        // Not discarded (the trainer died before removing them): the second look calls them duplicates.
        let again = mb.collect(now());
        assert!(again.iter().all(|d| d.verdict == Err(Refusal::Duplicate)), "{again:?}");
        for d in again {
            d.discard();
        }
        assert!(mb.collect(now()).is_empty());
    }

    #[test]
    fn a_command_the_log_has_answered_is_a_duplicate_after_a_restart() {
        let (_tmp, dir) = run_dir();
        let id = send(&dir, &Command::Stop).unwrap();
        let mut log = crate::runlog::LogWriter::open(&dir.join("events.jsonl")).unwrap();
        let answer = Event::CommandReceived {
            time: now(),
            iter: 7,
            id: id.clone(),
            request: "stop".into(),
            from: String::new(),
            ignored: None,
        };
        log.write(&answer).unwrap();
        let got = mailbox(&dir).collect(now());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].verdict, Err(Refusal::Duplicate), "{got:?}");
    }

    #[test]
    fn stale_foreign_and_garbled_commands_are_refused_with_the_reason() {
        let (_tmp, dir) = run_dir();
        send(&dir, &Command::Pause).unwrap();
        let commands = dir.join(COMMANDS_DIR);
        let foreign =
            Letter { id: "x1".into(), request: Command::Stop, run: "other".into(), issued: now(), from: "".into() };
        std::fs::write(commands.join("x1.json"), serde_json::to_vec(&foreign).unwrap()).unwrap();
        std::fs::write(commands.join("x2.json"), br#"{"request":"dance"}"#).unwrap();
        // A sender's temporary file is not a command yet.
        std::fs::write(commands.join(".x3.json.tmp"), b"{").unwrap();
        let got = mailbox(&dir).collect(now() + STALE_SECS + 5.0);
        let verdicts: Vec<String> = got.iter().map(|d| d.verdict.clone().unwrap_err().to_string()).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(verdicts[0].starts_with("stale"), "{verdicts:?}");
        assert!(verdicts[1].contains("meant for run \"other\""), "{verdicts:?}");
        assert!(verdicts[2].starts_with("not understood"), "{verdicts:?}");
        assert_eq!(got[2].request, "dance");
    }

    #[test]
    fn only_steering_commands_travel_as_files() {
        let (_tmp, dir) = run_dir();
        let switch =
            Command::SwitchDepth { depth: crate::config::Depth::PAPER[1], mode: crate::protocol::SwitchMode::Fresh };
        for command in [Command::Recover { lr_factor: 0.1 }, switch.clone()] {
            let err = send(&dir, &command).unwrap_err().to_string();
            assert_eq!(err, "only pause, resume, checkpoint and stop reach a run started elsewhere");
        }
        // Written by hand, a switch is read as what it is and refused by name.
        let letter = Letter {
            id: "x1".into(),
            request: switch,
            run: "20261129-000000-resnet20".into(),
            issued: now(),
            from: "".into(),
        };
        std::fs::create_dir_all(dir.join(COMMANDS_DIR)).unwrap();
        std::fs::write(dir.join(COMMANDS_DIR).join("x1.json"), serde_json::to_vec(&letter).unwrap()).unwrap();
        let got = mailbox(&dir).collect(now());
        assert_eq!(got[0].request, "switch_depth");
        let why = got[0].verdict.clone().unwrap_err().to_string();
        assert_eq!(why, "switch_depth does not come as a file: only pause, resume, checkpoint and stop do");
    }

    #[test]
    fn a_command_file_written_before_commands_were_one_type_reads_the_same() {
        let (_tmp, dir) = run_dir();
        let old = r#"{"id":"x1","request":"checkpoint","run":"20261129-000000-resnet20","issued":NOW,"from":"a@b"}"#;
        std::fs::create_dir_all(dir.join(COMMANDS_DIR)).unwrap();
        std::fs::write(dir.join(COMMANDS_DIR).join("x1.json"), old.replace("NOW", &now().to_string())).unwrap();
        let got = mailbox(&dir).collect(now());
        assert_eq!((got[0].verdict.clone(), got[0].request.as_str()), (Ok(Command::Checkpoint), "checkpoint"));
    }
}
