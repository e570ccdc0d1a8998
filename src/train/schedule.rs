//! The learning rate at each iteration: warm-up, then step decay by 10 at each milestone.

use crate::config::RunConfig;

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
}
