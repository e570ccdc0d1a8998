//! One run from start to end: what to run (`plan`), the run built (`build`), then the step loop,
//! which obeys commands between steps (`commands`), evaluates, checkpoints and reports.

use super::build;
use super::commands::{self, Divergence, Flow};
use super::fault::Fault;
use super::plan;
use super::schedule::{WarmupEnd, lr_at};
use super::sgd::health_from;
use super::state::{Carried, Outcome, Run};
use super::step::{launch_step, read_back};
use super::window::{Launched, Read, Window, default_read_every};
use super::{Plan, Session, SessionData, TrainError};
use crate::data::augment::Normalizer;
use crate::data::batches::{Batch, Batcher, Prefetcher};
use crate::protocol::*;
use std::collections::VecDeque;
use std::time::Instant;
use tch::nn::ModuleT;

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

/// What the steps draw on: batches prepared ahead, the normalisation, the step times, the
/// steps not yet read back.
struct Steps {
    normalizer: Normalizer,
    prefetch: Prefetcher,
    throughput: Throughput,
    fault: Option<Fault>,
    window: Window,
}

/// How the step loop ended.
// Returned once per run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum LoopEnd {
    /// Completed or stopped: the run is closed.
    Ended,
    Diverged(Divergence),
    Switch {
        config: RunConfig,
        mode: SwitchMode,
    },
}

/// The run's steps, then what its end asks for. The batch thread and the batches it prepared
/// go first: before a diverged run waits for the user's word, and before the next run's network.
fn train(mut run: Run, data: &SessionData) -> Result<Outcome, TrainError> {
    let mut steps = Steps::new(&run, data);
    let end = step_loop(&mut run, &mut steps, data);
    drop(steps);
    Ok(match end? {
        LoopEnd::Ended => Outcome::Ended,
        LoopEnd::Diverged(divergence) => commands::diverged(run, divergence),
        LoopEnd::Switch { config, mode } => {
            let grow_from = (mode == SwitchMode::Grow).then(|| run.carried());
            Outcome::Switch { config, grow_from }
        }
    })
}

impl Steps {
    fn new(run: &Run, data: &SessionData) -> Steps {
        let batcher = Batcher::new(&data.train, run.config.seed, run.config.batch_size, run.channels_last);
        let read_every = run.session.options.read_every.unwrap_or_else(|| default_read_every(run.device));
        Steps {
            normalizer: Normalizer::new(run.device),
            prefetch: Prefetcher::spawn(batcher, run.iter, run.config.iters, run.session.options.prefetch),
            throughput: Throughput { durations: VecDeque::new(), batch: run.config.batch_size },
            fault: Fault::from_env(),
            window: Window::new(read_every),
        }
    }
}

/// The step loop: commands are obeyed at step boundaries, once the steps before are read back.
fn step_loop(run: &mut Run, steps: &mut Steps, data: &SessionData) -> Result<LoopEnd, TrainError> {
    run.session.status("first step (the first is slower: kernels are chosen and memory allocated)");
    run.clock.start();
    while run.iter < run.config.iters {
        // Only unread steps need settling first: on a CPU every step is read at once, and the
        // commands are left to `obey_arrived` alone.
        if !steps.window.is_empty()
            && commands::waiting(run)
            && let Some(divergence) = settle(run, steps)?
        {
            return Ok(LoopEnd::Diverged(divergence));
        }
        match commands::obey_arrived(run) {
            Flow::Go => {}
            Flow::Stopped => return Ok(LoopEnd::Ended),
            Flow::Switch { config, mode } => return Ok(LoopEnd::Switch { config, mode }),
        }
        if let Some(divergence) = step(run, steps, data)? {
            return Ok(LoopEnd::Diverged(divergence));
        }
    }
    run.clock.stop();
    if run.last_eval.map(|e| e.0) != Some(run.iter) {
        run.eval(data, &steps.normalizer)?;
    }
    run.close(EndReason::Completed);
    Ok(LoopEnd::Ended)
}

/// One training step launched, and what is due after it: the window read back when it is full
/// or something below needs its figures (the warm-up's end, an evaluation, a checkpoint, a fault
/// to inject), then that. `Some` when a loss stopped being finite.
fn step(run: &mut Run, steps: &mut Steps, data: &SessionData) -> Result<Option<Divergence>, TrainError> {
    let began = Instant::now();
    let Some(batch) = steps.prefetch.next() else {
        return Err(TrainError::BatchThread(crate::panics::take_panic_note()));
    };
    if let Some(fault) = steps.fault.filter(|f| f.iter == run.iter) {
        fault.inject();
    }
    debug_assert_eq!(batch.iter, run.iter);
    let warming = run.warmup.warming(&run.config, run.iter);
    let lr = lr_at(&run.config, run.iter, warming);
    let net = &run.network.net;
    let readings = launch_step(net, &mut run.sgd, &batch.images, &batch.labels, lr, &mut steps.window.guard)?;
    run.iter += 1;
    let health = if run.iter.is_multiple_of(HEALTH_EVERY) { run.sgd.health_squares() } else { None };
    let (epoch, elapsed) = (run.epoch(data), run.clock.secs());
    steps.window.push(Launched { iter: run.iter, lr, warming, epoch, elapsed, readings, health, batch }, began);
    let evaluate = run.iter.is_multiple_of(run.config.eval_every) || run.iter == run.config.iters;
    let checkpoint = run.iter.is_multiple_of(run.config.checkpoint_every) && run.iter != run.config.iters;
    // A fault fires before the next step: the log is to show every step before it.
    let fault_next = steps.fault.is_some_and(|f| f.iter == run.iter);
    if (steps.window.full() || warming || evaluate || checkpoint || fault_next)
        && let Some(divergence) = settle(run, steps)?
    {
        return Ok(Some(divergence));
    }
    if evaluate {
        run.eval(data, &steps.normalizer)?;
    }
    if checkpoint {
        run.save(CheckpointReason::Periodic);
    }
    Ok(None)
}

/// Reads the window's figures back in one transfer and reports its steps in order: each step,
/// its optimizer health, the warm-up's end. At the first loss that is not finite it stops there,
/// as if no step had been launched after it, and says where training broke.
fn settle(run: &mut Run, steps: &mut Steps) -> Result<Option<Divergence>, TrainError> {
    if steps.window.is_empty() {
        return Ok(None);
    }
    let values = read_back(&steps.window.parts())?;
    let read = steps.window.take(&values);
    let last = read.steps.len() - 1;
    for (i, (launched, Read { loss, correct, health })) in read.steps.iter().enumerate() {
        let (loss, correct) = (*loss, *correct);
        if !loss.is_finite() {
            run.iter = launched.iter;
            return Ok(Some(divergence(run, &launched.batch, loss, i != last)?));
        }
        let images_per_sec = steps.throughput.record(read.secs_per_step);
        let error = 100.0 * (1.0 - correct / launched.batch.labels.size()[0] as f64);
        let Launched { iter, lr, epoch, elapsed, .. } = *launched;
        run.emit(Event::Step(StepRecord { time: now(), iter, epoch, elapsed, loss, error, lr, images_per_sec }));
        if let Some(squares) = health {
            let (grad_norm, weight_norm, update_ratio) = health_from(squares, lr);
            run.emit(Event::Health(HealthRecord { time: now(), iter, grad_norm, weight_norm, update_ratio }));
        }
        if launched.warming
            && let Some(WarmupEnd { iter, window_error, capped }) = run.warmup.record(&run.config, iter, error)
        {
            run.emit(Event::WarmupEnded { time: now(), iter, window_error, capped });
        }
    }
    Ok(None)
}

/// Where the step broke: the first activations that are not finite on its batch, else the first
/// gradient. When steps were launched after it (`later`), their backward passes have replaced its
/// gradients: they are computed again from its batch and the same weights, which the guard kept
/// as they were. (That forward pass moves BatchNorm's running statistics once more; a diverged
/// run is never checkpointed or evaluated again, so nothing reads them.)
fn divergence(run: &mut Run, batch: &Batch, loss: f64, later: bool) -> Result<Divergence, TrainError> {
    let failed = |e| TrainError::torch("the divergence report", e);
    if later {
        let logits = run.network.net.forward_t(&batch.images, true);
        let (again, _) = crate::model::loss_and_correct(&logits, &batch.labels);
        run.sgd.zero_grad();
        again.f_backward().map_err(failed)?;
    }
    let layer = match run.network.net.first_non_finite(&batch.images).map_err(failed)? {
        Some(layer) => Some(layer),
        None => run.sgd.first_non_finite().map_err(failed)?,
    };
    Ok(Divergence { loss, layer })
}
