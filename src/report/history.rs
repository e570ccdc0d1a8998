//! A run's effective history from its log events: what stands once resumes have replaced the
//! steps and evaluations recorded after the checkpoint they resumed from.

use crate::protocol::{EndReason, EvalSet, Event, RunInfo, StepRecord, Summary};

/// One evaluation as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalPoint {
    pub time: f64,
    pub iter: u64,
    pub epoch: f64,
    pub elapsed: f64,
    pub set: EvalSet,
    pub loss: f64,
    /// Top-1 error in percent.
    pub error: f64,
    pub class_errors: Vec<f64>,
    pub images_per_sec: f64,
}

/// The run as its log tells it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// What the latest `run_started` said (a resume may change the config, e.g. a lower rate).
    pub info: Option<RunInfo>,
    /// How many times the run started: 1, plus one per resume.
    pub starts: usize,
    /// Steps in log order, superseded ones removed.
    pub steps: Vec<StepRecord>,
    /// Evaluations in log order, superseded ones removed.
    pub evals: Vec<EvalPoint>,
    /// The latest start's `finished` summary; `None` for a run killed or still running.
    pub finished: Option<Summary>,
    /// The iteration where the latest start diverged.
    pub diverged_at: Option<u64>,
}

impl History {
    pub fn from_events(events: &[Event]) -> History {
        let mut h = History::default();
        for event in events {
            h.push(event);
        }
        h
    }

    /// Takes in one event, in log order.
    pub fn push(&mut self, event: &Event) {
        match event {
            Event::RunStarted { run, .. } => {
                // A resume from iteration k replays everything after k: the old record of it
                // belongs to a future that did not happen.
                let k = run.start_iter;
                self.steps.retain(|s| s.iter <= k);
                self.evals.retain(|e| e.iter <= k);
                self.finished = None;
                self.diverged_at = None;
                self.starts += 1;
                self.info = Some((**run).clone());
            }
            Event::Step { .. } => self.steps.extend(event.step_record()),
            Event::Eval { time, iter, epoch, elapsed, set, loss, error, class_errors, images_per_sec } => {
                self.evals.push(EvalPoint {
                    time: *time,
                    iter: *iter,
                    epoch: *epoch,
                    elapsed: *elapsed,
                    set: *set,
                    loss: *loss,
                    error: *error,
                    class_errors: class_errors.clone(),
                    images_per_sec: *images_per_sec,
                })
            }
            Event::Diverged { iter, .. } => self.diverged_at = Some(*iter),
            Event::Finished { summary, .. } => self.finished = Some(summary.clone()),
            Event::Status { .. }
            | Event::Checkpoint { .. }
            | Event::Paused { .. }
            | Event::Resumed { .. }
            | Event::Error { .. } => {}
        }
    }

    /// The last iteration the run reached.
    pub fn iters(&self) -> u64 {
        let recorded = self.steps.iter().map(|s| s.iter).chain(self.evals.iter().map(|e| e.iter)).max();
        let started = self.info.as_ref().map(|i| i.start_iter);
        let finished = self.finished.as_ref().map(|f| f.iters);
        recorded.into_iter().chain(started).chain(finished).max().unwrap_or(0)
    }

    /// Training seconds (pauses excluded): the summary's, else the newest record's.
    pub fn train_secs(&self) -> Option<f64> {
        if let Some(f) = &self.finished {
            return Some(f.train_secs);
        }
        let steps = self.steps.iter().map(|s| s.elapsed);
        let evals = self.evals.iter().map(|e| e.elapsed);
        steps.chain(evals).filter(|s| s.is_finite()).reduce(f64::max)
    }

    /// The lowest evaluation error and its iteration (the earliest on a tie).
    pub fn best_eval(&self) -> Option<&EvalPoint> {
        self.evals.iter().filter(|e| e.error.is_finite()).reduce(|best, e| if e.error < best.error { e } else { best })
    }

    pub fn last_eval(&self) -> Option<&EvalPoint> {
        self.evals.last()
    }

    /// How the run ended, as far as the log tells.
    pub fn end(&self) -> Option<EndReason> {
        match (&self.finished, self.diverged_at) {
            (Some(f), _) => Some(f.reason),
            (None, Some(_)) => Some(EndReason::Diverged),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::*;
    use std::path::PathBuf;

    pub fn info(depth: u32, start_iter: u64) -> RunInfo {
        let mut config = crate::config::paper(depth, PathBuf::from("data"));
        config.iters = 100;
        RunInfo {
            name: format!("run-resnet{depth}"),
            dir: PathBuf::from("runs"),
            config,
            params: 269_722,
            device: "cpu (2 threads)".into(),
            train_images: 50_000,
            eval_images: 10_000,
            eval_set: EvalSet::Test,
            classes: (0..10).map(|c| format!("class{c}")).collect(),
            start_iter,
            grown_from: None,
        }
    }

    pub fn started(depth: u32, start_iter: u64) -> Event {
        Event::RunStarted { time: 0.0, run: Box::new(info(depth, start_iter)) }
    }

    pub fn step(iter: u64, error: f64) -> Event {
        Event::Step {
            time: iter as f64,
            iter,
            epoch: iter as f64 / 391.0,
            elapsed: iter as f64 * 0.5,
            loss: 2.0,
            error,
            lr: 0.1,
            images_per_sec: 800.0,
        }
    }

    pub fn eval(iter: u64, error: f64) -> Event {
        Event::Eval {
            time: iter as f64,
            iter,
            epoch: iter as f64 / 391.0,
            elapsed: iter as f64 * 0.5 + 0.1,
            set: EvalSet::Test,
            loss: 1.5,
            error,
            class_errors: vec![error; 10],
            images_per_sec: 3000.0,
        }
    }

    #[test]
    fn a_resume_replaces_what_came_after_its_checkpoint() {
        let events = vec![
            started(20, 0),
            step(1, 90.0),
            step(2, 80.0),
            eval(2, 70.0),
            step(3, 75.0),
            eval(3, 10.0),
            // Killed after iteration 3; resumed from the checkpoint at 2.
            started(20, 2),
            step(3, 60.0),
            eval(3, 50.0),
        ];
        let h = History::from_events(&events);
        assert_eq!(h.starts, 2);
        assert_eq!(h.steps.iter().map(|s| (s.iter, s.error)).collect::<Vec<_>>(), [(1, 90.0), (2, 80.0), (3, 60.0)]);
        assert_eq!(h.evals.iter().map(|e| (e.iter, e.error)).collect::<Vec<_>>(), [(2, 70.0), (3, 50.0)]);
        assert_eq!(h.best_eval().map(|e| e.iter), Some(3));
        assert_eq!(h.iters(), 3);
        assert_eq!(h.end(), None);
    }

    #[test]
    fn a_finished_run_is_only_finished_if_not_resumed_after() {
        let summary = Summary {
            reason: EndReason::Stopped,
            iters: 2,
            final_error: Some(70.0),
            best_error: Some(70.0),
            best_iter: Some(2),
            train_secs: 1.0,
        };
        let mut events = vec![started(20, 0), step(1, 90.0), step(2, 80.0), eval(2, 70.0)];
        events.push(Event::Finished { time: 3.0, summary });
        let h = History::from_events(&events);
        assert_eq!(h.end(), Some(EndReason::Stopped));
        assert_eq!(h.train_secs(), Some(1.0));
        events.push(started(20, 2));
        events.push(step(3, 70.0));
        let h = History::from_events(&events);
        assert_eq!(h.end(), None);
        assert_eq!(h.train_secs(), Some(1.5));
    }

    #[test]
    fn best_is_the_earliest_of_equal_errors() {
        let h = History::from_events(&[started(20, 0), eval(1, 50.0), eval(2, 40.0), eval(3, 40.0), eval(4, 45.0)]);
        assert_eq!(h.best_eval().map(|e| e.iter), Some(2));
        assert_eq!(h.last_eval().map(|e| e.iter), Some(4));
    }
}
