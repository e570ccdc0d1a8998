//! The learning rate at each iteration: warm-up, then step decay by 10 at each milestone.

use crate::protocol::RunConfig;

/// Learning rate for iteration `iter` (0-based).
pub fn lr_at(config: &RunConfig, iter: u64) -> f64 {
    if let Some(w) = config.warmup
        && iter < w.iters
    {
        return w.lr;
    }
    let drops = config.milestones.iter().filter(|&&m| iter >= m).count() as i32;
    config.lr * 0.1f64.powi(drops)
}

/// The paper's milestones (32k and 48k of 64k) scaled to a run of `iters`: 1/2 and 3/4 of it.
/// Very short runs get fewer drops: milestones are distinct and after iteration 0.
pub fn scaled_milestones(iters: u64) -> Vec<u64> {
    let mut milestones = vec![iters / 2, iters * 3 / 4];
    milestones.retain(|&m| m > 0);
    milestones.dedup();
    milestones
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Shortcut, Warmup};

    fn config(milestones: Vec<u64>, warmup: Option<Warmup>) -> RunConfig {
        RunConfig {
            depth: 110,
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
            device: "cpu".into(),
            threads: None,
            data_dir: "d".into(),
            precision: Default::default(),
        }
    }

    #[test]
    fn paper_schedule_divides_by_ten_at_32k_and_48k() {
        let c = config(vec![32_000, 48_000], None);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(lr_at(&c, 0), 0.1));
        assert!(close(lr_at(&c, 31_999), 0.1));
        assert!(close(lr_at(&c, 32_000), 0.01));
        assert!(close(lr_at(&c, 47_999), 0.01));
        assert!(close(lr_at(&c, 48_000), 0.001));
        assert!(close(lr_at(&c, 63_999), 0.001));
    }

    #[test]
    fn warmup_holds_a_low_rate_first() {
        let c = config(vec![32_000, 48_000], Some(Warmup { iters: 400, lr: 0.01 }));
        assert_eq!(lr_at(&c, 0), 0.01);
        assert_eq!(lr_at(&c, 399), 0.01);
        assert_eq!(lr_at(&c, 400), 0.1);
    }

    #[test]
    fn short_runs_keep_the_papers_shape() {
        assert_eq!(scaled_milestones(64_000), vec![32_000, 48_000]);
        assert_eq!(scaled_milestones(2000), vec![1000, 1500]);
        assert_eq!(scaled_milestones(2), vec![1]);
        assert_eq!(scaled_milestones(1), Vec::<u64>::new());
    }
}
