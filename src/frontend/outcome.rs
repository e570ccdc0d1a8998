//! How a watched session ends, read from its events alone: the process's exit status, and the
//! one line that explains a failure once the front end has closed. Headless mode and the
//! dashboard both fold their events through [`Outcome`], so they exit alike.

use crate::protocol::{CheckpointReason, EndReason, Event};

/// The process's exit status (docs/commands.md, "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done, or stopped by the user.
    Success,
    /// An error, said in one line.
    Error,
    /// Bad usage (a flag or a value).
    Usage,
    /// The run diverged (NaN or infinite loss) and was not recovered.
    Diverged,
    /// The run ended but its final checkpoint could not be written.
    FinalCheckpointLost,
    /// A second stop request quit without waiting for the final checkpoint.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Diverged => 3,
            ExitStatus::FinalCheckpointLost => 4,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> std::process::ExitCode {
        std::process::ExitCode::from(status.code())
    }
}

/// What the events of a live session say about how it ends.
#[derive(Debug, Default)]
pub struct Outcome {
    /// A second stop request: the front end quit without waiting for the trainer.
    pub interrupted: bool,
    /// The fatal error that ended the session.
    pub fatal: Option<String>,
    /// The newest run diverged (a recovery starts a new run and clears it).
    diverged: bool,
    /// The newest run started and has not ended.
    open: bool,
    final_written: bool,
    /// The iteration of an ended run whose final checkpoint is missing.
    pub final_missing: Option<u64>,
}

impl Outcome {
    /// Takes in one event; returns the iteration of the run it ended without its final
    /// checkpoint, if it did (worth a line of its own, after the warning that gave the cause).
    pub fn see(&mut self, event: &Event) -> Option<u64> {
        match event {
            Event::RunStarted { .. } => {
                self.final_written = false;
                self.diverged = false;
                self.open = true;
            }
            Event::Checkpoint { reason: CheckpointReason::Final, .. } => self.final_written = true,
            Event::Diverged { .. } => self.diverged = true,
            Event::Finished { summary, .. } => {
                self.open = false;
                // The trainer writes the final checkpoint just before it reports the run
                // completed, stopped or switched; a diverged run keeps its last good one on purpose.
                if summary.reason != EndReason::Diverged && !self.final_written {
                    self.final_missing = Some(summary.iters);
                    return self.final_missing;
                }
            }
            Event::Error { message, fatal: true, .. } => {
                self.open = false;
                self.fatal.get_or_insert_with(|| message.clone());
            }
            _ => {}
        }
        None
    }

    /// The event source closed: a run still open was cut off without a word.
    pub fn source_closed(&mut self) {
        if self.open && self.fatal.is_none() {
            self.fatal = Some("the trainer ended without finishing the run".into());
        }
        self.open = false;
    }

    pub fn status(&self) -> ExitStatus {
        if self.interrupted {
            ExitStatus::Interrupted
        } else if self.fatal.is_some() {
            ExitStatus::Error
        } else if self.diverged {
            ExitStatus::Diverged
        } else if self.final_missing.is_some() {
            ExitStatus::FinalCheckpointLost
        } else {
            ExitStatus::Success
        }
    }

    /// The line to print on stderr once the front end has closed, for an error status.
    pub fn closing_line(&self) -> Option<String> {
        if self.interrupted {
            return None;
        }
        match (&self.fatal, self.final_missing) {
            (Some(message), _) => Some(message.clone()),
            (None, Some(iter)) if !self.diverged => Some(final_missing_line(iter)),
            _ => None,
        }
    }
}

/// The line in a front end's list, after the run's end line, when its final checkpoint is missing.
pub fn final_missing_note(iter: u64) -> String {
    format!("final checkpoint (iteration {iter}) not written: `resume` continues from the newest checkpoint on disk")
}

fn final_missing_line(iter: u64) -> String {
    format!(
        "the final checkpoint (iteration {iter}) was not written (the warning in the run's log says why); \
         `resume` continues from the newest checkpoint on disk"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, started, step};
    use crate::protocol::Summary;
    use std::path::PathBuf;

    fn finished(reason: EndReason, iters: u64) -> Event {
        let summary = Summary { reason, iters, final_error: None, best_error: None, best_iter: None, train_secs: 1.0 };
        Event::Finished { time: 0.0, summary }
    }

    fn final_checkpoint(iter: u64) -> Event {
        Event::Checkpoint { time: 0.0, iter, path: PathBuf::from("ck"), reason: CheckpointReason::Final, secs: 0.1 }
    }

    fn fold(events: &[Event]) -> Outcome {
        let mut o = Outcome::default();
        for e in events {
            o.see(e);
        }
        o
    }

    #[test]
    fn each_ending_has_its_exit_status() {
        let done = fold(&[
            started(20, 0),
            step(1, 50.0),
            eval(1, 40.0),
            final_checkpoint(1),
            finished(EndReason::Completed, 1),
        ]);
        assert_eq!((done.status(), done.closing_line()), (ExitStatus::Success, None));

        let lost = fold(&[started(20, 0), step(1, 50.0), finished(EndReason::Stopped, 1)]);
        assert_eq!(lost.status().code(), 4);
        assert!(lost.closing_line().unwrap().contains("final checkpoint (iteration 1) was not written"));

        let diverged = Event::Diverged { time: 0.0, iter: 2, loss: f64::NAN, last_good: None, layer: None };
        let d = fold(&[started(20, 0), step(1, 50.0), diverged.clone(), finished(EndReason::Diverged, 2)]);
        assert_eq!((d.status().code(), d.closing_line()), (3, None));
        // Recovered: the new run's start clears it.
        let r = fold(&[
            started(20, 0),
            diverged,
            finished(EndReason::Diverged, 2),
            started(20, 0),
            final_checkpoint(3),
            finished(EndReason::Completed, 3),
        ]);
        assert_eq!(r.status(), ExitStatus::Success);

        let fatal = Event::Error { time: 0.0, message: "libtorch: out of memory".into(), fatal: true };
        let f = fold(&[started(20, 0), fatal]);
        assert_eq!((f.status().code(), f.closing_line().as_deref()), (1, Some("libtorch: out of memory")));
    }

    #[test]
    fn a_source_that_closes_on_an_open_run_is_an_error() {
        let mut o = fold(&[started(20, 0), step(1, 50.0)]);
        o.source_closed();
        assert_eq!(o.status(), ExitStatus::Error);
        let mut done = fold(&[started(20, 0), final_checkpoint(1), finished(EndReason::Completed, 1)]);
        done.source_closed();
        assert_eq!(done.status(), ExitStatus::Success);
    }

    #[test]
    fn a_second_run_that_loses_its_final_checkpoint_is_reported_too() {
        let mut o = Outcome::default();
        let first = [started(20, 0), finished(EndReason::Switched, 5)];
        let second = [started(32, 5), finished(EndReason::Stopped, 9)];
        let said: Vec<Option<u64>> = first.iter().chain(&second).map(|e| o.see(e)).collect();
        assert_eq!(said, [None, Some(5), None, Some(9)]);
    }
}
