//! What the dashboard remembers of one run: its description, bounded curves and latest numbers,
//! folded from the run's events.

use super::series::{Merge, Series};
use crate::protocol::{EndReason, EvalSet, Event, RunId, RunInfo, StepRecord, Summary};
use std::path::PathBuf;

/// Points kept per curve: a few times the widest chart's Braille resolution.
pub const CURVE_CAPACITY: usize = 2048;

#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// Known, but no step yet (loading data, first step).
    Starting,
    Running,
    Paused,
    Diverged {
        iter: u64,
        loss: f64,
        last_good: Option<PathBuf>,
    },
    Finished(EndReason),
    /// A fatal error ended it.
    Failed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LastEval {
    pub iter: u64,
    pub set: EvalSet,
    pub loss: f64,
    pub error: f64,
    pub class_errors: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct RunView {
    pub id: RunId,
    pub info: Option<RunInfo>,
    pub state: RunState,
    pub loss: Series,
    pub train_error: Series,
    pub lr: Series,
    pub eval_loss: Series,
    pub eval_error: Series,
    pub last_step: Option<StepRecord>,
    pub last_eval: Option<LastEval>,
    /// Best evaluation error and its iteration.
    pub best: Option<(f64, u64)>,
    pub last_checkpoint: Option<(PathBuf, u64)>,
    pub summary: Option<Summary>,
}

impl RunView {
    pub fn new(id: RunId) -> RunView {
        let curve = |m| Series::new(CURVE_CAPACITY, m);
        RunView {
            id,
            info: None,
            state: RunState::Starting,
            loss: curve(Merge::Mean),
            train_error: curve(Merge::Mean),
            lr: curve(Merge::Last),
            eval_loss: curve(Merge::Mean),
            eval_error: curve(Merge::Mean),
            last_step: None,
            last_eval: None,
            best: None,
            last_checkpoint: None,
            summary: None,
        }
    }

    pub fn depth(&self) -> Option<u32> {
        self.info.as_ref().map(|i| i.config.depth)
    }

    /// Still training (or about to): pause, checkpoint and depth switch make sense.
    pub fn is_active(&self) -> bool {
        matches!(self.state, RunState::Starting | RunState::Running | RunState::Paused)
    }

    pub fn total_iters(&self) -> Option<u64> {
        self.info.as_ref().map(|i| i.config.iters)
    }

    /// Folds one event of this run into what is shown.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::RunStarted { run, .. } => {
                // The same run again: resumed from a checkpoint, so later iterations are redone.
                let from = run.start_iter as f64;
                for s in
                    [&mut self.loss, &mut self.train_error, &mut self.lr, &mut self.eval_loss, &mut self.eval_error]
                {
                    s.truncate_after(from);
                }
                if self.last_step.is_some_and(|s| s.iter > run.start_iter) {
                    self.last_step = None;
                }
                self.info = Some((**run).clone());
                self.state = RunState::Starting;
                self.summary = None;
            }
            Event::Step { iter, epoch, elapsed, loss, error, lr, .. } => {
                let x = *iter as f64;
                self.loss.push(x, *epoch, *elapsed, *loss);
                self.train_error.push(x, *epoch, *elapsed, *error);
                self.lr.push(x, *epoch, *elapsed, *lr);
                self.last_step = event.step_record();
                if self.state == RunState::Starting {
                    self.state = RunState::Running;
                }
            }
            Event::Eval { iter, epoch, elapsed, set, loss, error, class_errors, .. } => {
                let x = *iter as f64;
                self.eval_loss.push(x, *epoch, *elapsed, *loss);
                self.eval_error.push(x, *epoch, *elapsed, *error);
                self.last_eval = Some(LastEval {
                    iter: *iter,
                    set: *set,
                    loss: *loss,
                    error: *error,
                    class_errors: class_errors.clone(),
                });
                if self.best.is_none_or(|(b, _)| *error < b) {
                    self.best = Some((*error, *iter));
                }
            }
            Event::Checkpoint { iter, path, reason, .. } => {
                if *reason != crate::protocol::CheckpointReason::Best {
                    self.last_checkpoint = Some((path.clone(), *iter));
                }
            }
            Event::Paused { .. } => self.state = RunState::Paused,
            Event::Resumed { .. } => self.state = RunState::Running,
            Event::Diverged { iter, loss, last_good, .. } => {
                self.state = RunState::Diverged { iter: *iter, loss: *loss, last_good: last_good.clone() }
            }
            Event::Finished { summary, .. } => {
                if !matches!(self.state, RunState::Diverged { .. }) {
                    self.state = RunState::Finished(summary.reason);
                }
                if let (Some(b), Some(i)) = (summary.best_error, summary.best_iter) {
                    self.best = Some((b, i));
                }
                self.summary = Some(summary.clone());
            }
            Event::Error { fatal: true, .. } => self.state = RunState::Failed,
            Event::Error { .. } | Event::Status { .. } => {}
        }
    }

    /// A short name for legends: `R20`, or `R20#2` when another shown run has the same depth.
    pub fn label(&self, same_depth_before: usize) -> String {
        let base = self.depth().map(|d| format!("R{d}")).unwrap_or_else(|| format!("run{}", self.id));
        if same_depth_before == 0 { base } else { format!("{base}#{}", same_depth_before + 1) }
    }
}
