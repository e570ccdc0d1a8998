//! One run while it trains: what it holds, how it ends (`Outcome`), and the acts that the loop
//! and the commands share: report an event, write a checkpoint, evaluate, end.

use super::checkpoint::{self, BEST_NAME, TrainState};
use super::evaluate::evaluate;
use super::inbox::Inbox;
use super::schedule::WarmupProgress;
use super::sgd::Sgd;
use super::{Session, SessionData, TrainError};
use crate::data::augment::Normalizer;
use crate::model::Network;
use crate::protocol::*;
use crate::rundir::RunDir;
use crate::runlog::LogWriter;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Tensor};

/// How a run ended, and what the session does next.
// Returned once per run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Ended,
    /// Start a run of another depth: fresh, or grown from this run's network (`grow_from`).
    Switch {
        config: RunConfig,
        grow_from: Option<Box<Carried>>,
    },
    /// Resume this run from its last good checkpoint with these changes of its recipe.
    Recover {
        run_dir: PathBuf,
        set: Vec<Setting>,
    },
}

/// What a grown run takes over from the run it grows out of.
pub struct Carried {
    pub(super) network: Network,
    pub(super) momentum: Vec<(String, Tensor)>,
    pub(super) iter: u64,
    pub(super) from_name: String,
}

/// Training seconds, pauses excluded.
pub(super) struct ActiveClock {
    pub before: f64,
    pub since: Option<Instant>,
}

impl ActiveClock {
    pub fn secs(&self) -> f64 {
        self.before + self.since.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0)
    }
    pub fn stop(&mut self) {
        self.before = self.secs();
        self.since = None;
    }
    pub fn start(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }
}

/// Everything one run holds while it trains.
pub(super) struct Run<'s> {
    pub session: &'s Session,
    pub config: RunConfig,
    pub dir: RunDir,
    pub log: LogWriter,
    pub log_failed: bool,
    pub network: Network,
    pub sgd: Sgd,
    pub device: Device,
    /// Iterations done.
    pub iter: u64,
    pub clock: ActiveClock,
    /// The best evaluation error and its iteration.
    pub best: Option<(f64, u64)>,
    pub warmup: WarmupProgress,
    /// The latest evaluation's iteration and error.
    pub last_eval: Option<(u64, f64)>,
    pub channels_last: bool,
    pub paused: bool,
    /// Commands that came as files, waiting their turn.
    pub inbox: Inbox,
    /// TensorBoard's copy of the curves (`--tensorboard`); `None` after a write failed (said once).
    pub tensorboard: Option<crate::tensorboard::EventWriter>,
}

/// The CUDA device's index, for the memory check.
pub(super) fn gpu_index(device: Device) -> Option<u32> {
    match device {
        Device::Cuda(i) => Some(i as u32),
        _ => None,
    }
}

impl Run<'_> {
    /// Writes `event` to the log (and TensorBoard) and sends it; a failed write is said once.
    pub fn emit(&mut self, event: Event) {
        if let Some(tb) = &mut self.tensorboard
            && let Err(e) = tb.write(&event)
        {
            self.tensorboard = None;
            self.session.emit(Event::Error { time: now(), message: e.to_string(), fatal: false });
        }
        if let Err(e) = self.log.write(&event)
            && !self.log_failed
        {
            self.log_failed = true;
            self.session.emit(Event::Error { time: now(), message: e.to_string(), fatal: false });
        }
        self.session.emit(event);
    }

    /// Reports an error after which training goes on.
    pub fn error(&mut self, message: String) {
        self.emit(Event::Error { time: now(), message, fatal: false });
    }

    pub fn epoch(&self, data: &SessionData) -> f64 {
        self.iter as f64 * self.config.batch_size as f64 / data.train.len().max(1) as f64
    }

    fn state(&self) -> TrainState {
        TrainState {
            config: self.config.clone(),
            iter: self.iter,
            elapsed: self.clock.secs(),
            best_error: self.best.map(|b| b.0),
            best_iter: self.best.map(|b| b.1),
            run: self.dir.name.clone(),
            warmup: self.warmup.clone(),
        }
    }

    /// Writes a checkpoint; a failure is reported and training goes on.
    pub fn save(&mut self, reason: CheckpointReason) {
        let dir = self.dir.checkpoints();
        let path = match reason {
            CheckpointReason::Best => dir.join(BEST_NAME),
            _ => dir.join(checkpoint::periodic_name(self.iter)),
        };
        let mut model: Vec<(String, Tensor)> = self.network.vs.variables().into_iter().collect();
        model.sort_by(|a, b| a.0.cmp(&b.0));
        let started = Instant::now();
        let bytes = checkpoint::encode(&self.state(), &model, &self.sgd.buffers());
        match checkpoint::write(&path, &bytes) {
            Ok(()) => {
                if reason != CheckpointReason::Best {
                    checkpoint::prune(&dir, self.config.keep_checkpoints);
                }
                let secs = started.elapsed().as_secs_f64();
                self.emit(Event::Checkpoint { time: now(), iter: self.iter, path, reason, secs });
            }
            Err(e) => self.error(format!("checkpoint not written: {e}")),
        }
    }

    /// Evaluates, reports it, and keeps a new best as the best checkpoint.
    pub fn eval(&mut self, data: &SessionData, normalizer: &Normalizer) -> Result<(), TrainError> {
        let started = Instant::now();
        let r = evaluate(&self.network.net, &data.eval, normalizer, self.channels_last)?;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        self.last_eval = Some((self.iter, r.error));
        let improved = self.best.is_none_or(|(b, _)| r.error < b);
        let epoch = self.epoch(data);
        self.emit(Event::Eval(EvalRecord {
            time: now(),
            iter: self.iter,
            epoch,
            elapsed: self.clock.secs(),
            set: data.eval_set,
            loss: r.loss,
            error: r.error,
            class_errors: r.class_errors,
            images_per_sec: r.images as f64 / secs,
            confusion: r.confusion,
            misclassified: r.misclassified,
            responses: r.responses,
        }));
        if improved {
            self.best = Some((r.error, self.iter));
            self.save(CheckpointReason::Best);
        }
        Ok(())
    }

    /// Says that the run has ended, with its summary.
    pub fn finish(&mut self, reason: EndReason) {
        let summary = Summary {
            reason,
            iters: self.iter,
            final_error: self.last_eval.map(|e| e.1),
            best_error: self.best.map(|b| b.0),
            best_iter: self.best.map(|b| b.1),
            train_secs: self.clock.secs(),
        };
        self.emit(Event::Finished { time: now(), summary });
    }

    /// Stops the clock, writes the final checkpoint and says the run ended for `reason`.
    pub fn close(&mut self, reason: EndReason) {
        self.clock.stop();
        self.save(CheckpointReason::Final);
        self.finish(reason);
    }

    /// What a run grown out of this one takes over.
    pub fn carried(self) -> Box<Carried> {
        Box::new(Carried {
            momentum: self.sgd.buffers(),
            iter: self.iter,
            from_name: self.dir.name.clone(),
            network: self.network,
        })
    }
}
