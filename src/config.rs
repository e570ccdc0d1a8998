//! Building a run's config from the paper's recipe and checking one before it is used.

use crate::model::blocks_per_stage;
use crate::protocol::{Precision, RunConfig, Shortcut, Warmup};
use crate::reference::recipe;
use crate::train::schedule::scaled_milestones;
use std::path::PathBuf;

/// Iterations in one pass over `images` training images at `batch_size`.
pub fn iters_per_epoch(images: usize, batch_size: usize) -> u64 {
    (images as u64).div_ceil(batch_size.max(1) as u64)
}

/// The paper's recipe for `depth`: 64k iterations, drops at 32k and 48k, the ResNet-110 warm-up.
pub fn paper(depth: u32, data_dir: PathBuf) -> RunConfig {
    RunConfig {
        depth,
        shortcut: Shortcut::A,
        iters: recipe::ITERS,
        milestones: recipe::MILESTONES.to_vec(),
        lr: recipe::LR,
        momentum: recipe::MOMENTUM,
        weight_decay: recipe::WEIGHT_DECAY,
        batch_size: recipe::BATCH_SIZE,
        warmup: paper_warmup(depth),
        val_split: 0,
        eval_every: iters_per_epoch(50_000, recipe::BATCH_SIZE),
        checkpoint_every: 1000,
        keep_checkpoints: 3,
        seed: 0,
        device: "auto".into(),
        threads: None,
        data_dir,
        precision: Precision::Fp32,
    }
}

/// The paper warms up ResNet-110 (and we, deeper ones too, where the same instability appears).
pub fn paper_warmup(depth: u32) -> Option<Warmup> {
    (depth >= recipe::WARMUP_DEPTH).then_some(Warmup { iters: recipe::WARMUP_ITERS, lr: recipe::WARMUP_LR })
}

/// Sets the run length, keeping the paper's schedule shape (drops at 1/2 and 3/4) unless the
/// milestones were given explicitly.
pub fn set_length(config: &mut RunConfig, iters: u64, milestones: Option<Vec<u64>>) {
    config.iters = iters;
    config.milestones = milestones
        .unwrap_or_else(|| if iters == recipe::ITERS { recipe::MILESTONES.to_vec() } else { scaled_milestones(iters) });
    if let Some(w) = &mut config.warmup {
        w.iters = w.iters.min(iters);
    }
}

/// Checks a config for values that cannot train; the message names the flag.
pub fn validate(c: &RunConfig) -> Result<(), String> {
    blocks_per_stage(c.depth).map_err(|e| format!("--depth: {e}"))?;
    if c.iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return Err(format!("--lr must be a positive number, got {}", c.lr));
    }
    if !(c.momentum.is_finite() && (0.0..1.0).contains(&c.momentum)) {
        return Err(format!("--momentum must be in [0, 1), got {}", c.momentum));
    }
    if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
        return Err(format!("--weight-decay must be zero or positive, got {}", c.weight_decay));
    }
    if c.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    if c.eval_every == 0 || c.checkpoint_every == 0 {
        return Err("--eval-every and --checkpoint-every must be at least 1".into());
    }
    if c.keep_checkpoints == 0 {
        return Err("--keep-checkpoints must be at least 1".into());
    }
    if c.milestones.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("--milestones must be increasing, got {:?}", c.milestones));
    }
    if let Some(&last) = c.milestones.last()
        && last >= c.iters
    {
        return Err(format!("--milestones: {last} is not before the last iteration ({})", c.iters));
    }
    if c.milestones.first() == Some(&0) {
        return Err("--milestones must be after iteration 0".into());
    }
    if let Some(w) = c.warmup
        && !(w.lr.is_finite() && w.lr > 0.0)
    {
        return Err(format!("warm-up lr must be positive, got {}", w.lr));
    }
    if c.threads == Some(0) {
        return Err("--threads must be at least 1".into());
    }
    crate::train::device::validate(&c.device).map_err(|e| format!("--device: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_recipe_is_the_default() {
        let c = paper(20, "d".into());
        assert_eq!((c.iters, c.milestones.clone(), c.lr, c.batch_size), (64_000, vec![32_000, 48_000], 0.1, 128));
        assert_eq!(c.warmup, None);
        assert_eq!(paper(110, "d".into()).warmup, Some(Warmup { iters: 400, lr: 0.01 }));
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn shorter_runs_scale_the_milestones_unless_given() {
        let mut c = paper(20, "d".into());
        set_length(&mut c, 2000, None);
        assert_eq!(c.milestones, vec![1000, 1500]);
        set_length(&mut c, 2000, Some(vec![1500, 1800]));
        assert_eq!(c.milestones, vec![1500, 1800]);
    }

    #[test]
    fn bad_values_are_named() {
        let base = paper(20, "d".into());
        type Change = Box<dyn Fn(&mut RunConfig)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.depth = 21), "--depth"),
            (Box::new(|c| c.lr = -0.1), "--lr"),
            (Box::new(|c| c.lr = f64::NAN), "--lr"),
            (Box::new(|c| c.batch_size = 0), "--batch-size"),
            (Box::new(|c| c.milestones = vec![48_000, 32_000]), "increasing"),
            (Box::new(|c| c.milestones = vec![32_000, 64_000]), "not before the last iteration"),
            (Box::new(|c| c.device = "gpu".into()), "--device"),
            (Box::new(|c| c.momentum = 1.5), "--momentum"),
        ];
        for (change, expect) in cases {
            let mut c = base.clone();
            change(&mut c);
            let err = validate(&c).unwrap_err();
            assert!(err.contains(expect), "{err} should mention {expect}");
        }
    }
}
