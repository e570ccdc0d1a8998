//! The parts measured alone, in this process: loading the data set, building batches, the bare
//! training step (variants interleaved round by round, so they share the machine's noise), the
//! optimizer step, and evaluation.

use crate::config::{Depth, Precision, Shortcut};
use crate::data::augment::Normalizer;
use crate::data::batches::{Batch, Batcher};
use crate::data::cifar::{self, Split};
use crate::model::{Network, compute_kind};
use crate::train::evaluate::evaluate_in_batches;
use crate::train::sgd::Sgd;
use crate::train::step::train_step;
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Waits for queued GPU work, so wall-clock time covers it (a no-op on the CPU).
pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Median of the times of `runs` loads of the data set, in seconds.
pub fn load_secs(dir: &Path, runs: usize) -> Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let data = cifar::load(dir)?;
        times.push(started.elapsed().as_secs_f64());
        drop(data);
    }
    Ok(median(&mut times))
}

/// The median of a benchmark's measurements; 0 for none.
pub fn median(values: &mut [f64]) -> f64 {
    crate::stats::median(values).unwrap_or(0.0)
}

/// Training batches (gather, crop, flip, normalise, layout) per second, on one thread.
pub fn augment_images_per_sec(train: &Split, batch_size: usize, batches: u64, channels_last: bool) -> f64 {
    let mut batcher = Batcher::new(train, 0, batch_size, channels_last);
    let device = batcher.device();
    let _ = batcher.batch(0);
    sync(device);
    let started = Instant::now();
    for iter in 1..=batches {
        let _ = batcher.batch(iter);
    }
    sync(device);
    (batches as f64 * batch_size as f64) / started.elapsed().as_secs_f64().max(1e-9)
}

/// One configuration of the bare step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub channels_last: bool,
    pub compute: Kind,
    pub flat_sgd: bool,
}

impl Variant {
    pub fn name(&self) -> String {
        let layout = if self.channels_last { "channels-last" } else { "NCHW" };
        let precision = match self.compute {
            Kind::BFloat16 => "bf16",
            Kind::Half => "fp16",
            _ => "fp32",
        };
        let sgd = if self.flat_sgd { "" } else { ", per-variable SGD" };
        format!("{layout} {precision}{sgd}")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    pub variant: String,
    pub channels_last: bool,
    pub precision: String,
    pub flat_sgd: bool,
    pub images_per_sec: f64,
    pub median_step_ms: f64,
}

/// A network, its optimizer and one batch in memory: everything the bare step needs.
struct Rig {
    variant: Variant,
    net: Network,
    sgd: Sgd,
    batch: Batch,
    times: Vec<f64>,
}

impl Rig {
    fn new(variant: Variant, depth: Depth, device: Device, train: &Split, batch_size: usize) -> Result<Rig> {
        tch::manual_seed(0);
        let mut net = Network::new(depth, Shortcut::A, device);
        if variant.channels_last {
            net.to_channels_last();
        }
        net.net.compute = variant.compute;
        let vars: Vec<(String, Tensor)> = net.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        let sgd = if variant.flat_sgd { Sgd::new(vars, 0.9, 1e-4) } else { Sgd::unfused(vars, 0.9, 1e-4) };
        let batch = Batcher::new(train, 0, batch_size, variant.channels_last).batch(0);
        Ok(Rig { variant, net, sgd, batch, times: Vec::new() })
    }

    /// The trainer's own step (`train::step`), on a batch already in memory.
    fn step(&mut self) -> Result<f64> {
        Ok(train_step(&self.net.net, &mut self.sgd, &self.batch.images, &self.batch.labels, 0.1)?.loss)
    }
}

/// How the bare step is timed: `warmup` untimed steps per variant, then `steps` timed steps
/// each, in `rounds` interleaved rounds (so every variant sees the same machine noise).
pub struct StepPlan<'a> {
    pub depth: Depth,
    pub device: Device,
    pub train: &'a Split,
    pub batch_size: usize,
    pub warmup: usize,
    pub steps: usize,
    pub rounds: usize,
}

/// Bare-step throughput of each variant.
pub fn bare_steps(variants: &[Variant], plan: &StepPlan) -> Result<Vec<StepResult>> {
    let StepPlan { depth, device, train, batch_size, warmup, steps, rounds } = *plan;
    let mut rigs =
        variants.iter().map(|&v| Rig::new(v, depth, device, train, batch_size)).collect::<Result<Vec<_>>>()?;
    for rig in &mut rigs {
        for _ in 0..warmup {
            rig.step()?;
        }
    }
    let rounds = rounds.clamp(1, steps.max(1));
    for round in 0..rounds {
        let n = steps / rounds + usize::from(round < steps % rounds);
        for rig in &mut rigs {
            for _ in 0..n {
                let started = Instant::now();
                rig.step()?;
                sync(device);
                rig.times.push(started.elapsed().as_secs_f64());
            }
        }
    }
    Ok(rigs
        .into_iter()
        .map(|mut rig| {
            let total: f64 = rig.times.iter().sum();
            let v = rig.variant;
            StepResult {
                variant: v.name(),
                channels_last: v.channels_last,
                precision: v.name().split(' ').nth(1).unwrap_or("fp32").trim_end_matches(',').to_string(),
                flat_sgd: v.flat_sgd,
                images_per_sec: rig.times.len() as f64 * batch_size as f64 / total.max(1e-9),
                median_step_ms: 1e3 * median(&mut rig.times),
            }
        })
        .collect())
}

#[derive(Clone, Debug, Serialize)]
pub struct HealthCost {
    /// Milliseconds per training step without, and with, the health figures computed after it.
    pub plain_ms: f64,
    pub with_health_ms: f64,
    /// Microseconds of the health figures alone (median of 200 calls after a step).
    pub health_us: f64,
}

/// The training step with the optimizer health figures after every step against the bare
/// step, same network and batch, alternating in 10 rounds of `steps / 10` (the trainer computes
/// them every `HEALTH_EVERY` steps: a tenth of this cost).
pub fn health_cost(depth: Depth, device: Device, train: &Split, batch_size: usize, steps: usize) -> Result<HealthCost> {
    let variant = Variant { channels_last: true, compute: Kind::Float, flat_sgd: true };
    let mut rig = Rig::new(variant, depth, device, train, batch_size)?;
    for _ in 0..3 {
        rig.step()?;
    }
    let per_round = steps.div_ceil(10).max(1);
    let (mut plain, mut with) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        for health in [false, true] {
            sync(device);
            let started = Instant::now();
            for _ in 0..per_round {
                rig.step()?;
                if health {
                    std::hint::black_box(rig.sgd.health(0.1));
                }
            }
            sync(device);
            let ms = started.elapsed().as_secs_f64() * 1e3 / per_round as f64;
            if health { with.push(ms) } else { plain.push(ms) }
        }
    }
    let mut alone: Vec<f64> = (0..200)
        .map(|_| {
            sync(device);
            let started = Instant::now();
            std::hint::black_box(rig.sgd.health(0.1));
            sync(device);
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    Ok(HealthCost { plain_ms: median(&mut plain), with_health_ms: median(&mut with), health_us: median(&mut alone) })
}

#[derive(Clone, Debug, Serialize)]
pub struct SgdResult {
    /// Microseconds for zero_grad + step with the flat storage.
    pub flat_us: f64,
    /// The same with one set of kernels per variable.
    pub per_variable_us: f64,
}

/// The optimizer alone (zero_grad + step), flat against per variable, interleaved.
pub fn sgd_step_us(depth: Depth, device: Device, train: &Split, batch_size: usize, calls: usize) -> Result<SgdResult> {
    let mut rigs = Vec::new();
    for flat in [true, false] {
        let mut rig = Rig::new(
            Variant { channels_last: true, compute: Kind::Float, flat_sgd: flat },
            depth,
            device,
            train,
            batch_size,
        )?;
        rig.step()?; // gradients and momentum buffers exist from here on
        rigs.push(rig);
    }
    let per_round = calls.div_ceil(10).max(1);
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..10 {
        for (rig, times) in rigs.iter_mut().zip(times.iter_mut()) {
            sync(device);
            let started = Instant::now();
            for _ in 0..per_round {
                rig.sgd.zero_grad();
                rig.sgd.step(0.1);
            }
            sync(device);
            times.push(started.elapsed().as_secs_f64() * 1e6 / per_round as f64);
        }
    }
    Ok(SgdResult { flat_us: median(&mut times[0]), per_variable_us: median(&mut times[1]) })
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalSpeed {
    pub batch: usize,
    pub images_per_sec: f64,
}

/// Evaluation of `split` (normally the 10k test images) at each batch size, channels-last.
pub fn eval_speeds(depth: Depth, device: Device, split: &Split, batches: &[usize]) -> Result<Vec<EvalSpeed>> {
    tch::manual_seed(0);
    let mut net = Network::new(depth, Shortcut::A, device);
    net.to_channels_last();
    let normalizer = Normalizer::new(device);
    // One small warm-up pass chooses the kernels.
    evaluate_in_batches(&net.net, &split.narrow(0, split.len().min(500)), &normalizer, true, 500)?;
    let mut out = Vec::new();
    for &batch in batches {
        sync(device);
        let started = Instant::now();
        let r = evaluate_in_batches(&net.net, split, &normalizer, true, batch)?;
        sync(device);
        out.push(EvalSpeed { batch, images_per_sec: r.images as f64 / started.elapsed().as_secs_f64().max(1e-9) });
    }
    Ok(out)
}

/// The fused step's time by kind of work (`fused::profile`), per step, channels-last, in one
/// precision.
#[derive(Clone, Debug, Serialize)]
pub struct FusedProfile {
    /// What the activations and convolutions compute in.
    pub precision: Precision,
    pub step_ms: f64,
    /// (kind of work, ms per step); the last is the rest of the step (the optimizer, zeroing,
    /// layout copies, writing the gradients).
    pub parts_ms: Vec<(String, f64)>,
}

/// Profiles `steps` steps of the trainer's step on the fused pass in `precision`, after a warm-up.
pub fn fused_profile(
    depth: Depth,
    device: Device,
    precision: Precision,
    train: &Split,
    batch_size: usize,
    steps: usize,
) -> Result<FusedProfile> {
    let variant = Variant { channels_last: true, compute: compute_kind(precision), flat_sgd: true };
    let mut rig = Rig::new(variant, depth, device, train, batch_size)?;
    if !crate::fused::applies(&rig.net.net, &rig.batch.images) {
        anyhow::bail!("the fused pass does not train {precision} on {device:?}");
    }
    for _ in 0..super::WARMUP {
        rig.step()?;
    }
    crate::fused::profile::start();
    let start = Instant::now();
    for _ in 0..steps {
        rig.step()?;
    }
    let total = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let spent = crate::fused::profile::stop();
    let mut parts_ms: Vec<(String, f64)> = crate::fused::profile::WORK_NAMES
        .iter()
        .zip(spent)
        .map(|(name, d)| (name.to_string(), d.as_secs_f64() * 1e3 / steps as f64))
        .collect();
    let known: f64 = parts_ms.iter().map(|p| p.1).sum();
    parts_ms.push(("the rest (optimizer, zeroing, layout copies, gradients written)".into(), total - known));
    Ok(FusedProfile { precision, step_ms: total, parts_ms })
}
