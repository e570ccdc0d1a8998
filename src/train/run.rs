//! One run from start to end: what to run (`plan`), the run built (`build`), then the step loop,
//! which obeys commands between steps (`commands`), evaluates, checkpoints and reports.

use super::build;
use super::commands::{self, Divergence, Flow};
use super::fault::Fault;
use super::plan;
use super::schedule::{WarmupEnd, lr_at};
use super::state::{Carried, Outcome, Run};
use super::step::{StepStats, train_step};
use super::{Plan, Session, SessionData, TrainError};
use crate::data::augment::Normalizer;
use crate::data::batches::{Batch, Batcher, Prefetcher};
use crate::protocol::*;
use std::collections::VecDeque;
use std::time::Instant;

/// Steps between two optimizer health reports (docs/performance.md measures their cost).
pub const HEALTH_EVERY: u64 = 10;

/// Sets up the run that `plan` describes and trains it until it ends.
pub fn start(
    session: &Session,
    plan: Plan,
    data: &mut Option<SessionData>,
    carried: Option<Carried>,
) -> Result<Outcome, TrainError> {
    let resolved = plan::resolve(session, plan)?;
    let run = build::build(session, resolved, data, carried)?;
    train(run, data.as_ref().expect("loaded by build"))
}

/// Images per second over the last few steps, from the steps' own durations: evaluations,
/// checkpoints and pauses between steps do not count.
struct Throughput {
    durations: VecDeque<f64>,
    batch: usize,
}

impl Throughput {
    const WINDOW: usize = 20;
    fn record(&mut self, secs: f64) -> f64 {
        self.durations.push_back(secs);
        if self.durations.len() > Self::WINDOW {
            self.durations.pop_front();
        }
        let total: f64 = self.durations.iter().sum();
        if total > 0.0 { self.durations.len() as f64 * self.batch as f64 / total } else { 0.0 }
    }
}

/// What the steps draw on: batches prepared ahead, the normalisation, the step times.
struct Steps {
    normalizer: Normalizer,
    prefetch: Prefetcher,
    throughput: Throughput,
    fault: Option<Fault>,
}

/// The step loop: commands are obeyed at step boundaries.
fn train(mut run: Run, data: &SessionData) -> Result<Outcome, TrainError> {
    let batcher = Batcher::new(&data.train, run.config.seed, run.config.batch_size, run.channels_last);
    let mut steps = Steps {
        normalizer: Normalizer::new(run.device),
        prefetch: Prefetcher::spawn(batcher, run.iter, run.config.iters, run.session.options.prefetch),
        throughput: Throughput { durations: VecDeque::new(), batch: run.config.batch_size },
        fault: Fault::from_env(),
    };
    run.session.status("first step (the first is slower: kernels are chosen and memory allocated)");
    run.clock.start();
    while run.iter < run.config.iters {
        match commands::obey_arrived(&mut run) {
            Flow::Go => {}
            Flow::Stopped => return Ok(Outcome::Ended),
            Flow::Switch { config, mode } => {
                drop(steps);
                return Ok(Outcome::Switch { config, from: run.carried(), mode });
            }
        }
        if let Some(divergence) = step(&mut run, &mut steps, data)? {
            drop(steps);
            return Ok(commands::diverged(run, divergence));
        }
    }
    run.clock.stop();
    if run.last_eval.map(|e| e.0) != Some(run.iter) {
        run.eval(data, &steps.normalizer)?;
    }
    run.close(EndReason::Completed);
    Ok(Outcome::Ended)
}

/// One training step and what is due after it: its report, the optimizer's health, the
/// warm-up's end, an evaluation, a checkpoint. `Some` when the loss stopped being finite.
fn step(run: &mut Run, steps: &mut Steps, data: &SessionData) -> Result<Option<Divergence>, TrainError> {
    let started = Instant::now();
    let Some(batch) = steps.prefetch.next() else {
        return Err(TrainError::BatchThread(crate::panics::take_panic_note()));
    };
    if let Some(fault) = steps.fault.filter(|f| f.iter == run.iter) {
        fault.inject();
    }
    debug_assert_eq!(batch.iter, run.iter);
    let warming = run.warmup.warming(&run.config, run.iter);
    let lr = lr_at(&run.config, run.iter, warming);
    let StepStats { loss, correct } = train_step(&run.network.net, &mut run.sgd, &batch.images, &batch.labels, lr)?;
    run.iter += 1;
    if !loss.is_finite() {
        return Ok(Some(divergence(run, &batch, loss)?));
    }
    let images_per_sec = steps.throughput.record(started.elapsed().as_secs_f64());
    let error = 100.0 * (1.0 - correct / batch.labels.size()[0] as f64);
    let (epoch, elapsed) = (run.epoch(data), run.clock.secs());
    run.emit(Event::Step(StepRecord { time: now(), iter: run.iter, epoch, elapsed, loss, error, lr, images_per_sec }));
    report_health(run, lr);
    if warming && let Some(WarmupEnd { iter, window_error, capped }) = run.warmup.record(&run.config, run.iter, error) {
        run.emit(Event::WarmupEnded { time: now(), iter, window_error, capped });
    }
    if run.iter.is_multiple_of(run.config.eval_every) || run.iter == run.config.iters {
        run.eval(data, &steps.normalizer)?;
    }
    if run.iter.is_multiple_of(run.config.checkpoint_every) && run.iter != run.config.iters {
        run.save(CheckpointReason::Periodic);
    }
    Ok(None)
}

/// The optimizer's health, every `HEALTH_EVERY` steps.
fn report_health(run: &mut Run, lr: f64) {
    if run.iter.is_multiple_of(HEALTH_EVERY)
        && let Some((grad_norm, weight_norm, update_ratio)) = run.sgd.health(lr)
    {
        run.emit(Event::Health(HealthRecord { time: now(), iter: run.iter, grad_norm, weight_norm, update_ratio }));
    }
}

/// Where the step broke: the first activations that are not finite on its batch, else the first
/// gradient.
fn divergence(run: &Run, batch: &Batch, loss: f64) -> Result<Divergence, TrainError> {
    let failed = |e| TrainError::torch("the divergence report", e);
    let layer = match run.network.net.first_non_finite(&batch.images).map_err(failed)? {
        Some(layer) => Some(layer),
        None => run.sgd.first_non_finite().map_err(failed)?,
    };
    Ok(Divergence { loss, layer })
}
