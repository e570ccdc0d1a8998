//! The whole training loop as a user runs it: `Trainer::spawn` on a short run with the real data,
//! augmentation, prefetch thread, events and run log, timed from the events it sends.

use super::procinfo;
use crate::protocol::{Envelope, Event, Precision, StepRecord};
use crate::train::{self, Options, Plan};
use anyhow::{Result, bail};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// What one short run shows.
#[derive(Clone, Debug, Serialize)]
pub struct LoopResult {
    /// Images per second between the first and the last timed step, everything included.
    pub images_per_sec: f64,
    pub timed_steps: u64,
    /// Seconds from `Trainer::spawn` to the first step's event (data load, model, first step).
    pub spawn_to_first_step_secs: f64,
    /// Seconds from the process's start to the first step's event (libtorch loading included),
    /// when this was the first thing the process did.
    pub start_to_first_step_secs: Option<f64>,
    /// Evaluation speed the trainer reported for its final evaluation.
    pub eval_images_per_sec: Option<f64>,
    /// Peak resident memory of the process at the end of the run.
    pub peak_rss_mib: Option<f64>,
}

pub struct LoopSpec<'a> {
    pub depth: crate::config::Depth,
    pub device: crate::config::DeviceSpec,
    pub threads: Option<usize>,
    pub batch_size: usize,
    pub warmup: u64,
    pub steps: u64,
    pub data_dir: &'a Path,
    pub precision: Precision,
    pub first_in_process: bool,
}

/// Runs `warmup + steps` iterations in a throw-away runs folder and times the last `steps`.
pub fn full_loop(spec: &LoopSpec) -> Result<LoopResult> {
    let runs_dir = std::env::temp_dir().join(format!("resnet-tui-bench-{}", std::process::id()));
    let result = run_in(spec, &runs_dir);
    let _ = std::fs::remove_dir_all(&runs_dir);
    result
}

fn run_in(spec: &LoopSpec, runs_dir: &Path) -> Result<LoopResult> {
    let mut config = crate::config::paper(spec.depth, spec.data_dir.to_path_buf());
    config.batch_size = spec.batch_size;
    config.device = spec.device;
    config.threads = spec.threads;
    config.warmup = None;
    config.precision = spec.precision;
    let iters = spec.warmup + spec.steps;
    crate::config::set_length(&mut config, iters, None);
    // One evaluation at the end, one checkpoint: the timed steps see neither.
    config.eval_every = iters;
    config.checkpoint_every = iters;
    config.keep_checkpoints = 1;
    let options = Options { runs_dir: runs_dir.to_path_buf(), ..Options::default() };
    let spawned = Instant::now();
    let (channels, trainer) = train::spawn(Plan::New { config, runs_dir: runs_dir.to_path_buf() }, options);
    let mut first: Option<(f64, Option<f64>)> = None;
    let mut timed_from: Option<(u64, Instant)> = None;
    let mut timed_to: Option<(u64, Instant)> = None;
    let mut eval = None;
    for Envelope { event, .. } in channels.events.iter() {
        match event {
            Event::Step(StepRecord { iter, .. }) => {
                let at = Instant::now();
                if first.is_none() {
                    let age = spec.first_in_process.then(procinfo::process_age_secs).flatten();
                    first = Some((spawned.elapsed().as_secs_f64(), age));
                }
                if iter == spec.warmup {
                    timed_from = Some((iter, at));
                } else if iter > spec.warmup {
                    timed_to = Some((iter, at));
                }
            }
            Event::Eval(e) => eval = Some(e.images_per_sec),
            Event::Error { message, fatal: true, .. } => bail!("the training loop failed: {message}"),
            Event::Finished { .. } => break,
            _ => {}
        }
    }
    drop(channels);
    trainer.join();
    let (Some((i0, t0)), Some((i1, t1)), Some((spawn_secs, age))) = (timed_from, timed_to, first) else {
        bail!("the training loop ended before its timed steps");
    };
    let secs = (t1 - t0).as_secs_f64().max(1e-9);
    Ok(LoopResult {
        images_per_sec: (i1 - i0) as f64 * spec.batch_size as f64 / secs,
        timed_steps: i1 - i0,
        spawn_to_first_step_secs: spawn_secs,
        start_to_first_step_secs: age,
        eval_images_per_sec: eval,
        peak_rss_mib: procinfo::peak_rss_mib(),
    })
}
