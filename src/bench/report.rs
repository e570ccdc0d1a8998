//! The benchmark's results: one serialisable record, printed as a table or written as JSON.

use super::measure::{EvalSpeed, SgdResult, StepResult};
use super::pipeline::LoopResult;
use super::procinfo;
use crate::cli::BenchArgs;
use serde::Serialize;
use std::fmt;
use tch::Device;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The CPU with its family, model and the flags that decide bf16 (`provenance::cpu`).
    pub cpu: String,
    pub cores: usize,
    pub threads: i32,
    pub device: String,
    pub depth: u32,
    pub batch_size: usize,
    pub timed_steps: usize,
    pub full_loop: Option<LoopResult>,
    pub full_loop_bf16: Option<LoopResult>,
    pub load_secs: Option<f64>,
    pub augment_images_per_sec: Option<f64>,
    pub steps: Vec<StepResult>,
    pub sgd: Option<SgdResult>,
    pub health: Option<super::measure::HealthCost>,
    pub fused_profiles: Vec<super::measure::FusedProfile>,
    pub eval: Vec<EvalSpeed>,
    /// Full loop over the bare channels-last fp32 step (the trainer's own configuration).
    pub loop_over_step: Option<f64>,
    /// Channels-last over NCHW, bare fp32 step.
    pub channels_last_over_nchw: Option<f64>,
    /// Peak resident memory of the whole benchmark process, in MiB.
    pub peak_rss_mib: Option<f64>,
}

impl Report {
    pub fn new(args: &BenchArgs, device: Device) -> Report {
        Report {
            cpu: crate::provenance::cpu().to_string(),
            cores: procinfo::logical_cpus(),
            threads: tch::get_num_threads(),
            device: crate::train::device::describe(device),
            depth: args.depth.get(),
            batch_size: args.batch_size,
            timed_steps: args.steps,
            full_loop: None,
            full_loop_bf16: None,
            load_secs: None,
            augment_images_per_sec: None,
            steps: Vec::new(),
            sgd: None,
            health: None,
            fused_profiles: Vec::new(),
            eval: Vec::new(),
            loop_over_step: None,
            channels_last_over_nchw: None,
            peak_rss_mib: None,
        }
    }

    fn step(&self, channels_last: bool) -> Option<f64> {
        self.steps
            .iter()
            .find(|s| s.channels_last == channels_last && s.precision == "fp32" && s.flat_sgd)
            .map(|s| s.images_per_sec)
    }

    /// Derived ratios and the final peak memory.
    pub fn finish(&mut self) {
        let cl = self.step(true);
        self.loop_over_step = self.full_loop.as_ref().zip(cl).map(|(l, s)| l.images_per_sec / s);
        self.channels_last_over_nchw = cl.zip(self.step(false)).map(|(c, n)| c / n);
        self.peak_rss_mib = procinfo::peak_rss_mib();
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serialises")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The CPU device's description names its threads already; a GPU's does not.
        let threads =
            if self.device.starts_with("cpu") { String::new() } else { format!(", {} CPU threads", self.threads) };
        writeln!(
            f,
            "ResNet-{}, batch {}, {}{threads}; {}, {} logical CPUs",
            self.depth, self.batch_size, self.device, self.cpu, self.cores
        )?;
        let row = |f: &mut fmt::Formatter<'_>, what: &str, value: String| writeln!(f, "  {what:<44} {value}");
        for s in &self.steps {
            row(
                f,
                &format!("bare step, {}", s.variant),
                format!("{:8.1} img/s  ({:.1} ms/step)", s.images_per_sec, s.median_step_ms),
            )?;
        }
        if let Some(r) = self.channels_last_over_nchw {
            row(f, "  channels-last / NCHW", format!("{r:8.3}x"))?;
        }
        if let Some(l) = &self.full_loop {
            row(
                f,
                "full training loop (channels-last fp32)",
                format!("{:8.1} img/s  ({} steps)", l.images_per_sec, l.timed_steps),
            )?;
            if let Some(r) = self.loop_over_step {
                row(f, "  full loop / bare step", format!("{r:8.3}x"))?;
            }
            row(f, "spawn to first step", format!("{:8.2} s", l.spawn_to_first_step_secs))?;
            if let Some(s) = l.start_to_first_step_secs {
                row(f, "process start to first step", format!("{s:8.2} s"))?;
            }
            if let Some(e) = l.eval_images_per_sec {
                row(f, "evaluation inside the trainer", format!("{e:8.1} img/s"))?;
            }
            if let Some(m) = l.peak_rss_mib {
                row(f, "peak memory after the training loop", format!("{m:8.1} MiB"))?;
            }
        }
        if let Some(l) = &self.full_loop_bf16 {
            row(
                f,
                "full training loop (channels-last bf16)",
                format!("{:8.1} img/s  ({} steps)", l.images_per_sec, l.timed_steps),
            )?;
        }
        for (name, l) in [("fp32", &self.full_loop), ("bf16", &self.full_loop_bf16)] {
            if let Some(l) = l {
                // What a user waits for: one pass over CIFAR-10's 50,000 training images.
                row(
                    f,
                    &format!("  one 50k-image epoch at that speed, {name}"),
                    format!("{:8.2} s", 50_000.0 / l.images_per_sec),
                )?;
            }
        }
        if let Some(s) = &self.sgd {
            row(f, "optimizer step (zero_grad + step), flat", format!("{:8.1} us", s.flat_us))?;
            row(f, "optimizer step, per variable", format!("{:8.1} us", s.per_variable_us))?;
        }
        if let Some(h) = &self.health {
            row(f, "training step, bare", format!("{:8.2} ms", h.plain_ms))?;
            row(f, "training step + health figures every step", format!("{:8.2} ms", h.with_health_ms))?;
            let every = crate::train::HEALTH_EVERY as f64;
            let cost = 100.0 * (h.with_health_ms / h.plain_ms - 1.0);
            row(
                f,
                "  difference, every step / as the trainer does it (1 in 10)",
                format!("{cost:+.2} % / {:+.3} %", cost / every),
            )?;
            let share = 100.0 * h.health_us / (h.plain_ms * 1e3);
            row(f, "health figures alone, and share of a bare step", format!("{:8.1} us ({share:.3} %)", h.health_us))?;
        }
        for p in &self.fused_profiles {
            row(f, &format!("fused step (channels-last {}), profiled", p.precision), format!("{:8.2} ms", p.step_ms))?;
            for (what, ms) in &p.parts_ms {
                row(f, &format!("  {what}"), format!("{ms:8.2} ms ({:4.1} %)", 100.0 * ms / p.step_ms))?;
            }
        }
        for e in &self.eval {
            row(f, &format!("evaluation, batch {}", e.batch), format!("{:8.1} img/s", e.images_per_sec))?;
        }
        if let Some(a) = self.augment_images_per_sec {
            row(f, "batch building (one thread)", format!("{a:8.1} img/s"))?;
        }
        if let Some(s) = self.load_secs {
            row(f, "loading the data set (median of 3)", format!("{s:8.3} s"))?;
        }
        if let Some(m) = self.peak_rss_mib {
            row(f, "peak memory of the benchmark process", format!("{m:8.1} MiB"))?;
        }
        Ok(())
    }
}
