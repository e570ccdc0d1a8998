//! The trainer thread: owns the model, the optimizer, the data and the device; reports through
//! events and obeys commands, both over crossbeam channels. It knows nothing of terminals.
pub mod checkpoint;
pub mod device;
pub mod evaluate;
mod run;
pub mod schedule;
pub mod sgd;

use crate::data::cifar::{self, Cifar10, Split};
use crate::protocol::{Command, Envelope, Event, RunConfig, RunId, SwitchMode, now};
use crossbeam_channel::{Receiver, Sender};
use std::path::PathBuf;
use std::thread::JoinHandle;
use tch::Device;

pub use run::Outcome;

/// What the trainer starts with.
#[derive(Clone, Debug)]
pub enum Plan {
    /// A new run in a new directory under `runs_dir`.
    New { config: RunConfig, runs_dir: PathBuf },
    /// Continue the run in `run_dir` from its newest readable checkpoint.
    Resume { run_dir: PathBuf },
}

/// Settings of the session that are not part of a run's recipe.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where runs started by a depth switch go.
    pub runs_dir: PathBuf,
    /// Give inputs and conv weights channels-last strides (faster on oneDNN and cuDNN).
    pub channels_last: bool,
    /// Batches prepared ahead of the running step.
    pub prefetch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { runs_dir: PathBuf::from("runs"), channels_last: true, prefetch: 2 }
    }
}

/// A running trainer: its event stream, its command channel and its thread.
pub struct Trainer {
    pub events: Receiver<Envelope>,
    pub commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Trainer {
    /// Starts the trainer thread. Everything it has to say, errors included, comes as events.
    pub fn spawn(plan: Plan, options: Options) -> Trainer {
        let (event_tx, events) = crossbeam_channel::unbounded();
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("trainer".into())
            .spawn(move || {
                let mut session = Session { events: event_tx, commands: command_rx, options, run_id: 0 };
                session.run(plan);
            })
            .expect("spawn trainer thread");
        Trainer { events, commands, thread: Some(thread) }
    }

    /// Waits for the trainer thread to end (after `Finished` or a fatal `Error`).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The data a session loads once and every run of it shares.
pub(crate) struct SessionData {
    pub train: Split,
    pub eval: Split,
    pub eval_set: crate::protocol::EvalSet,
    pub classes: Vec<String>,
    pub data_dir: PathBuf,
    pub val_split: usize,
}

pub(crate) struct Session {
    pub events: Sender<Envelope>,
    pub commands: Receiver<Command>,
    pub options: Options,
    pub run_id: RunId,
}

impl Session {
    pub fn emit(&self, event: Event) {
        // A front end that has gone away is not the trainer's problem: keep training and logging.
        let _ = self.events.send(Envelope { run: self.run_id, event });
    }

    pub fn status(&self, message: impl Into<String>) {
        self.emit(Event::Status { time: now(), message: message.into() });
    }

    pub fn fatal(&self, message: impl Into<String>) {
        self.emit(Event::Error { time: now(), message: message.into(), fatal: true });
    }

    fn run(&mut self, plan: Plan) {
        let mut next = Some(plan);
        let mut data: Option<SessionData> = None;
        let mut carried = None;
        while let Some(plan) = next.take() {
            let outcome = match run::start(self, plan, &mut data, carried.take()) {
                Ok(outcome) => outcome,
                Err(message) => {
                    self.fatal(message);
                    return;
                }
            };
            match outcome {
                Outcome::Ended => return,
                Outcome::Switch { config, from, mode } => {
                    self.run_id += 1;
                    next = Some(Plan::New { config, runs_dir: self.options.runs_dir.clone() });
                    if mode == SwitchMode::Grow {
                        carried = Some(from);
                    }
                }
                Outcome::Recover { run_dir } => {
                    self.run_id += 1;
                    next = Some(Plan::Resume { run_dir });
                }
            }
        }
    }

    /// Loads the data set once; later runs of the session reuse it (same folder and split).
    pub fn load_data(&self, config: &RunConfig, device: Device, slot: &mut Option<SessionData>) -> Result<(), String> {
        if let Some(d) = slot {
            if d.data_dir == config.data_dir && d.val_split == config.val_split && d.train.images.device() == device {
                return Ok(());
            }
        }
        self.status(format!("loading CIFAR-10 from {}", config.data_dir.display()));
        let Cifar10 { train, test, classes } = cifar::load(&config.data_dir).map_err(|e| e.to_string())?;
        let (train, eval, eval_set) = if config.val_split > 0 {
            let n = train.len();
            if config.val_split >= n {
                return Err(format!("--val-split {} leaves no training images (there are {n})", config.val_split));
            }
            // The last N training images are held out, a fixed and documented choice.
            let keep = n - config.val_split;
            (train.narrow(0, keep), train.narrow(keep, n), crate::protocol::EvalSet::Validation)
        } else {
            (train, test, crate::protocol::EvalSet::Test)
        };
        if device != Device::Cpu {
            self.status(format!("copying the data set to {}", device::describe(device)));
        }
        *slot = Some(SessionData {
            train: train.to_device(device),
            eval: eval.to_device(device),
            eval_set,
            classes,
            data_dir: config.data_dir.clone(),
            val_split: config.val_split,
        });
        Ok(())
    }
}
