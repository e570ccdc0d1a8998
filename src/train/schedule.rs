//! The learning rate at each iteration: a warm-up while it lasts, then step decay by 10 at each
//! milestone. How long the warm-up lasts depends on the training error, so its progress is state
//! that checkpoints carry.

use crate::config::{RunConfig, WARMUP_WINDOW};
use serde::{Deserialize, Serialize};

/// Learning rate for iteration `iter` (0-based); `warming`: the warm-up is still on.
pub fn lr_at(config: &RunConfig, iter: u64, warming: bool) -> f64 {
    if let Some(w) = config.warmup.filter(|_| warming) {
        return w.lr;
    }
    let drops = config.milestones.iter().filter(|&&m| iter >= m).count() as i32;
    config.lr * 0.1f64.powi(drops)
}

/// Where the warm-up stands: ended (and when), or the training errors of the latest steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WarmupProgress {
    /// Iterations done when the warm-up ended.
    pub ended: Option<u64>,
    /// Training errors of the latest steps, at most `WARMUP_WINDOW`, oldest first.
    pub recent_errors: Vec<f64>,
}

/// Why a warm-up ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupEnd {
    pub iter: u64,
    /// Mean training error over the window when it ended.
    pub window_error: f64,
    /// It reached its cap rather than the error rule.
    pub capped: bool,
}

impl WarmupProgress {
    /// Whether iteration `iter` (0-based) still trains at the warm-up rate.
    pub fn warming(&self, config: &RunConfig, iter: u64) -> bool {
        config.warmup.is_some_and(|w| self.ended.is_none() && iter < w.iters)
    }

    /// Takes in the training error of the step that made `done` iterations; returns the end of
    /// the warm-up if this step ended it.
    pub fn record(&mut self, config: &RunConfig, done: u64, error: f64) -> Option<WarmupEnd> {
        let w = config.warmup?;
        if self.ended.is_some() {
            return None;
        }
        self.recent_errors.push(error);
        if self.recent_errors.len() > WARMUP_WINDOW {
            self.recent_errors.remove(0);
        }
        let window_error = self.recent_errors.iter().sum::<f64>() / self.recent_errors.len() as f64;
        let low = w.until_error.is_some_and(|e| self.recent_errors.len() == WARMUP_WINDOW && window_error < e);
        let capped = done >= w.iters;
        if !(low || capped) {
            return None;
        }
        self.ended = Some(done);
        self.recent_errors.clear();
        Some(WarmupEnd { iter: done, window_error, capped: !low })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Depth, DeviceSpec, Shortcut, Warmup};

    fn config(milestones: Vec<u64>, warmup: Option<Warmup>) -> RunConfig {
        RunConfig {
            depth: Depth::PAPER[4],
            shortcut: Shortcut::A,
            iters: 64_000,
            milestones,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            batch_size: 128,
            warmup,
            val_split: 0,
            eval_every: 391,
            checkpoint_every: 1000,
            keep_checkpoints: 3,
            seed: 0,
            device: DeviceSpec::Cpu,
            threads: None,
            data_dir: "d".into(),
            precision: Default::default(),
            precision_auto: false,
            init_from: None,
            precision_why: None,
        }
    }

    #[test]
    fn paper_schedule_divides_by_ten_at_32k_and_48k() {
        let c = config(vec![32_000, 48_000], None);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(lr_at(&c, 0, false), 0.1));
        assert!(close(lr_at(&c, 31_999, false), 0.1));
        assert!(close(lr_at(&c, 32_000, false), 0.01));
        assert!(close(lr_at(&c, 47_999, false), 0.01));
        assert!(close(lr_at(&c, 48_000, false), 0.001));
        assert!(close(lr_at(&c, 63_999, false), 0.001));
    }

    #[test]
    fn a_fixed_warmup_holds_a_low_rate_for_its_length() {
        let c = config(vec![32_000, 48_000], Some(Warmup { iters: 400, lr: 0.01, until_error: None }));
        let mut p = WarmupProgress::default();
        for done in 1..400 {
            assert!(p.warming(&c, done - 1));
            assert_eq!(lr_at(&c, done - 1, p.warming(&c, done - 1)), 0.01);
            assert_eq!(p.record(&c, done, 10.0), None, "a fixed warm-up ignores the error");
        }
        let end = p.record(&c, 400, 10.0).unwrap();
        assert_eq!((end.iter, end.capped), (400, true));
        assert!(!p.warming(&c, 400));
        assert_eq!(lr_at(&c, 400, p.warming(&c, 400)), 0.1);
    }

    #[test]
    fn the_warmup_ends_once_the_windowed_training_error_is_below_the_bar() {
        let c = config(vec![32_000, 48_000], Some(Warmup { iters: 1000, lr: 0.01, until_error: Some(80.0) }));
        let mut p = WarmupProgress::default();
        // 90% for 30 steps, then 70%: the mean of the last 20 falls below 80 once 11 of them are 70.
        let mut ended = None;
        for done in 1..=100 {
            let error = if done <= 30 { 90.0 } else { 70.0 };
            if let Some(end) = p.record(&c, done, error) {
                ended = Some(end);
                break;
            }
        }
        let end = ended.expect("the warm-up ends");
        assert_eq!((end.iter, end.capped), (41, false));
        assert!((end.window_error - 79.0).abs() < 1e-9, "{}", end.window_error);
        assert_eq!(p.ended, Some(41));
        assert!(!p.warming(&c, 41) && p.record(&c, 42, 50.0).is_none());
        // A network that never gets there is released at the cap.
        let mut q = WarmupProgress::default();
        let end = (1..=1000).find_map(|done| q.record(&c, done, 95.0)).unwrap();
        assert_eq!((end.iter, end.capped), (1000, true));
    }

    #[test]
    fn warmup_progress_survives_a_checkpoint() {
        let p = WarmupProgress { ended: None, recent_errors: vec![88.0, 86.5] };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<WarmupProgress>(&json).unwrap(), p);
        assert_eq!(serde_json::from_str::<WarmupProgress>("{}").unwrap(), WarmupProgress::default());
    }
}
