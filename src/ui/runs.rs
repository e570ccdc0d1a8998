//! What the dashboard keeps of one run: the shared history of its events, and bounded curves.

use crate::config::{Depth, Shortcut};
use crate::frontend::history::History;
use crate::frontend::series::{Merge, Series};
use crate::protocol::{Event, RunId};

/// Points kept per curve: a few times the widest chart's Braille resolution.
pub const CURVE_CAPACITY: usize = 2048;

#[derive(Clone, Debug)]
pub struct RunView {
    pub id: RunId,
    /// Without every step: the curves below keep what the charts need, bounded.
    pub history: History,
    pub loss: Series,
    pub train_error: Series,
    pub lr: Series,
    pub eval_loss: Series,
    pub eval_error: Series,
    /// Update-to-weight ratio of each of `protocol::HEALTH_GROUPS`, every few steps.
    pub update_ratio: Vec<Series>,
}

impl RunView {
    pub fn new(id: RunId) -> RunView {
        let curve = |m| Series::new(CURVE_CAPACITY, m);
        RunView {
            id,
            history: History::new(),
            loss: curve(Merge::Mean),
            train_error: curve(Merge::Mean),
            lr: curve(Merge::Last),
            eval_loss: curve(Merge::Mean),
            eval_error: curve(Merge::Mean),
            update_ratio: crate::protocol::HEALTH_GROUPS.iter().map(|_| curve(Merge::Mean)).collect(),
        }
    }

    /// Another run of the same network (depth and shortcut).
    pub fn same_network(&self, other: &RunView) -> bool {
        self.depth() == other.depth() && self.shortcut() == other.shortcut()
    }

    pub fn depth(&self) -> Option<Depth> {
        self.history.info.as_ref().map(|i| i.config.depth)
    }

    /// The run's shortcut (its network family); the default a before the run has started.
    pub fn shortcut(&self) -> Shortcut {
        self.history.info.as_ref().map(|i| i.config.shortcut).unwrap_or_default()
    }

    pub fn total_iters(&self) -> Option<u64> {
        self.history.info.as_ref().map(|i| i.config.iters)
    }

    /// Folds one event of this run into its history and curves.
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
                for s in &mut self.update_ratio {
                    s.truncate_after(from);
                }
            }
            Event::Step(s) => {
                let x = s.iter as f64;
                self.loss.push(x, s.epoch, s.elapsed, s.loss);
                self.train_error.push(x, s.epoch, s.elapsed, s.error);
                self.lr.push(x, s.epoch, s.elapsed, s.lr);
            }
            Event::Eval(e) => {
                let x = e.iter as f64;
                self.eval_loss.push(x, e.epoch, e.elapsed, e.loss);
                self.eval_error.push(x, e.epoch, e.elapsed, e.error);
            }
            Event::Health(h) => {
                let (x, at) = (h.iter as f64, self.history.last_step);
                let (epoch, secs) = at.map_or((0.0, 0.0), |s| (s.epoch, s.elapsed));
                for (series, &r) in self.update_ratio.iter_mut().zip(&h.update_ratio) {
                    series.push(x, epoch, secs, r);
                }
            }
            _ => {}
        }
        self.history.push(event);
    }

    /// A short name for legends: `R20` (`P20` for Plain-20), or `R20#2` when another shown run
    /// is the same network.
    pub fn label(&self, same_depth_before: usize) -> String {
        let family = if self.shortcut() == Shortcut::None { "P" } else { "R" };
        let base = self.depth().map(|d| format!("{family}{d}")).unwrap_or_else(|| format!("run{}", self.id));
        if same_depth_before == 0 { base } else { format!("{base}#{}", same_depth_before + 1) }
    }
}
