//! The whole training loop as a user runs it: `Trainer::spawn` on a short run with the real data,
//! augmentation, prefetch thread, events and run log, timed from the events it sends.
//!
//! A step's event is sent when its read-back window is read (`train::window`): on a GPU ten steps
//! at once, after the window's last step has run. Only the event of a window's last step arrives
//! when its step has truly ended, so the clock starts and stops at such events.

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
    /// Steps per read-back, as the trainer is told (`window::default_read_every` of the device).
    pub read_every: u64,
}

/// The iterations the figure is timed between: from the end of the first read-back window that
/// ends at or after `warmup` (and after the first step, whose event is iteration 1), to `steps`
/// later, the run's last step, which is always read back.
pub(super) fn timed_span(warmup: u64, steps: u64, read_every: u64) -> (u64, u64) {
    let from = warmup.max(1).next_multiple_of(read_every.max(1));
    (from, from + steps)
}

/// The clock of the timed steps, from the arrivals of their step events.
struct Clock {
    from: u64,
    to: u64,
    started: Option<Instant>,
    ended: Option<Instant>,
}

impl Clock {
    fn new((from, to): (u64, u64)) -> Clock {
        Clock { from, to, started: None, ended: None }
    }

    /// The event of the step that made `iter` iterations arrived `at`.
    fn step(&mut self, iter: u64, at: Instant) {
        if iter == self.from {
            self.started = Some(at);
        } else if iter == self.to {
            self.ended = Some(at);
        }
    }

    /// Timed steps and their seconds, once both ends have arrived.
    fn span(&self) -> Option<(u64, f64)> {
        let (start, end) = (self.started?, self.ended?);
        Some((self.to - self.from, (end - start).as_secs_f64().max(1e-9)))
    }
}

/// Runs past `warmup` to the first window's end, then `steps` more, in a throw-away runs folder,
/// and times those `steps`.
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
    let span = timed_span(spec.warmup, spec.steps, spec.read_every);
    let iters = span.1;
    crate::config::set_length(&mut config, iters, None);
    // One evaluation at the end, one checkpoint: the timed steps see neither.
    config.eval_every = iters;
    config.checkpoint_every = iters;
    config.keep_checkpoints = 1;
    let options = Options { runs_dir: runs_dir.to_path_buf(), read_every: Some(spec.read_every), ..Options::default() };
    let spawned = Instant::now();
    let (channels, trainer) = train::spawn(Plan::New { config, runs_dir: runs_dir.to_path_buf() }, options);
    let mut first: Option<(f64, Option<f64>)> = None;
    let mut clock = Clock::new(span);
    let mut eval = None;
    for Envelope { event, .. } in channels.events.iter() {
        match event {
            Event::Step(StepRecord { iter, .. }) => {
                let at = Instant::now();
                if first.is_none() {
                    let age = spec.first_in_process.then(procinfo::process_age_secs).flatten();
                    first = Some((spawned.elapsed().as_secs_f64(), age));
                }
                clock.step(iter, at);
            }
            Event::Eval(e) => eval = Some(e.images_per_sec),
            Event::Error { message, fatal: true, .. } => bail!("the training loop failed: {message}"),
            Event::Finished { .. } => break,
            _ => {}
        }
    }
    drop(channels);
    trainer.join();
    let (Some((timed_steps, secs)), Some((spawn_secs, age))) = (clock.span(), first) else {
        bail!("the training loop ended before its timed steps");
    };
    Ok(LoopResult {
        images_per_sec: timed_steps as f64 * spec.batch_size as f64 / secs,
        timed_steps,
        spawn_to_first_step_secs: spawn_secs,
        start_to_first_step_secs: age,
        eval_images_per_sec: eval,
        peak_rss_mib: procinfo::peak_rss_mib(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_timed_steps_run_from_a_window_end_and_number_what_the_clock_covers() {
        // On a CPU every step is its own window: timed from the warm-up's last step, as before.
        assert_eq!(timed_span(5, 100, 1), (5, 105));
        // On a GPU the clock waits for the window that ends at step 10, and the run goes on to
        // 110, itself read back as the run's last step.
        assert_eq!(timed_span(5, 100, 10), (10, 110));
        assert_eq!(timed_span(10, 20, 10), (10, 30));
        assert_eq!(timed_span(0, 3, 1), (1, 4), "no event is iteration 0");
    }

    /// When each step's event arrives on a GPU, in seconds, for a run of `last` steps at one step
    /// a second: a window of 10 steps reaches the host at once when its last step ends, and the
    /// run's last step is read back at once.
    fn gpu_arrival(iter: u64, last: u64) -> u64 {
        (iter.div_ceil(10) * 10).min(last)
    }

    /// The timed steps and seconds of `span`, its step events arriving as on a GPU.
    fn timed_on_a_gpu(span: (u64, u64)) -> (u64, f64) {
        let t0 = Instant::now();
        let mut clock = Clock::new(span);
        for iter in 1..=span.1 {
            clock.step(iter, t0 + Duration::from_secs(gpu_arrival(iter, span.1)));
        }
        clock.span().unwrap()
    }

    #[test]
    fn on_a_gpu_the_figure_counts_the_steps_run_in_its_time() {
        assert_eq!(timed_on_a_gpu(timed_span(5, 100, 10)), (100, 100.0), "one step a second");
        // The clock started at step 5's event, which arrives with step 10's, counted 100 steps
        // in the time of 95.
        assert_eq!(timed_on_a_gpu((5, 105)), (100, 95.0));
    }
}
