//! The trainer thread: owns the model, the optimizer, the data and the device; reports through
//! events and obeys commands, both over crossbeam channels. It knows nothing of terminals.
mod build;
pub mod checkpoint;
mod commands;
pub(crate) mod device;
mod error;
pub(crate) mod evaluate;
mod fault;
mod inbox;
mod outbox;
mod plan;
pub mod precision; // --precision auto: bf16 where it is clearly faster on this device
mod run;
mod session_data;
pub(crate) mod schedule;
pub mod sgd;
mod state;
pub mod step;
pub(crate) mod window;

pub(crate) use session_data::SessionData;

use crate::protocol::{Channels, Command, Envelope, Event, RunConfig, RunId, Setting, now};
use crossbeam_channel::Receiver;
use std::cell::RefCell;
use std::path::PathBuf;
use std::thread::JoinHandle;

pub use error::TrainError;
pub use outbox::{CAPACITY as EVENTS_CAPACITY, STEP_ROOM};
pub use run::HEALTH_EVERY;
pub use state::Outcome;

/// What the trainer starts with.
// Made once per run and moved once: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Plan {
    /// A new run in a new directory under `runs_dir`.
    New { config: RunConfig, runs_dir: PathBuf },
    /// Continue the run in `run_dir` from its newest readable checkpoint, with the recipe changes
    /// in `set` (as `resume --set` parsed them, or a recovery's lower rates), reading the data set
    /// from `data_dir` (`None`: the folder it recorded when the data set is there, else this
    /// machine's configured one).
    Resume { run_dir: PathBuf, set: Vec<Setting>, data_dir: Option<PathBuf> },
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
    /// Start runs whose memory estimate does not fit (`--force`).
    pub force: bool,
    /// Also write TensorBoard event files, in the run directory's `tensorboard/` (`--tensorboard`).
    pub tensorboard: bool,
    /// Steps between two read-backs of the steps' losses (`None`: the device's default, one on a
    /// CPU and `window::GPU_READ_EVERY` on a GPU).
    pub read_every: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs_dir: PathBuf::from("runs"),
            channels_last: true,
            prefetch: 2,
            force: false,
            tensorboard: false,
            read_every: None,
        }
    }
}

/// The trainer's thread; whoever spawned it joins it.
pub struct TrainerThread(JoinHandle<()>);

/// The trainer thread's stack (`spawn` says why it is large).
pub(crate) const TRAINER_STACK_BYTES: usize = 64 << 20;

/// Starts the trainer thread and returns the front end's channels to it. Everything it has to
/// say, errors included, comes as events.
pub fn spawn(plan: Plan, options: Options) -> (Channels, TrainerThread) {
    // Bounded: a front end that stops reading costs steps, never memory (outbox.rs says how).
    let (event_tx, events) = outbox::channel();
    // Unbounded: commands are a person's keys or files, a few bytes each, and the trainer takes
    // them at every step boundary; a bound would only make a key wait inside the dashboard.
    let (commands, command_rx) = crossbeam_channel::unbounded();
    let thread = std::thread::Builder::new()
        .name("trainer".into())
        // Rust's default of 2 MiB is too little for what may run here: cuDNN's autotuner (on for
        // every CUDA run) tries each convolution's algorithms on this thread, inside libtorch's
        // own calls. Stack never touched costs address space, not memory.
        .stack_size(TRAINER_STACK_BYTES)
        .spawn(move || {
            crate::panics::report_panics_here();
            let mut session =
                Session { events: event_tx, commands: command_rx, options, run_id: 0, current_log: RefCell::default() };
            // A panic (libtorch's errors included: tch's non-`f_` functions panic on them) ends
            // the session like any fatal error: an event for the front end, a line in the run log.
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.run(plan)));
            if let Err(payload) = caught {
                let message =
                    crate::panics::take_panic_note().unwrap_or_else(|| crate::panics::panic_text(payload.as_ref()));
                session.fatal(panic_line(&message));
            }
        })
        .expect("spawn trainer thread");
    (Channels { events, commands }, TrainerThread(thread))
}

/// What a panic of the trainer says: a libtorch failure (tch's non-`f_` functions panic on them:
/// the forward and backward passes) as libtorch's line with what to try, anything else as the
/// internal error it is.
fn panic_line(message: &str) -> String {
    match message.strip_prefix("libtorch: ") {
        Some(rest) => format!("training failed: libtorch: {rest}{}", error::torch_hint(rest)),
        None => format!("internal error in the trainer: {message}"),
    }
}

impl TrainerThread {
    /// Waits for the trainer to end (after `Finished` or a fatal `Error`, or once the front
    /// end's channels are dropped and it has written its final checkpoint).
    pub fn join(self) {
        let _ = self.0.join();
    }
}

pub(crate) struct Session {
    pub events: outbox::Outbox,
    pub commands: Receiver<Command>,
    pub options: Options,
    pub run_id: RunId,
    /// The log of the run in progress, once it has started: where a fatal error is recorded.
    pub current_log: RefCell<Option<PathBuf>>,
}

impl Session {
    pub fn emit(&self, event: Event) {
        self.events.send(Envelope { run: self.run_id, event });
    }

    pub fn status(&self, message: impl Into<String>) {
        self.emit(Event::Status { time: now(), message: message.into() });
    }

    /// Reports an error that ends the session, in the current run's log too (its own writer is
    /// gone by now: the run ended by returning the error or by unwinding).
    pub fn fatal(&self, message: impl Into<String>) {
        let event = Event::Error { time: now(), message: message.into(), fatal: true };
        if let Some(path) = self.current_log.borrow_mut().take() {
            let _ = crate::runlog::LogWriter::open(&path).and_then(|mut log| log.write(&event));
        }
        self.emit(event);
    }

    fn run(&mut self, plan: Plan) {
        let mut next = Some(plan);
        let mut data: Option<SessionData> = None;
        let mut carried = None;
        while let Some(plan) = next.take() {
            self.current_log.replace(None);
            let outcome = match run::start(self, plan, &mut data, carried.take()) {
                Ok(outcome) => outcome,
                Err(e) => {
                    self.fatal(e.to_string());
                    return;
                }
            };
            match outcome {
                Outcome::Ended => return,
                Outcome::Switch { config, grow_from } => {
                    self.run_id += 1;
                    next = Some(Plan::New { config, runs_dir: self.options.runs_dir.clone() });
                    carried = grow_from.map(|from| *from);
                }
                Outcome::Recover { run_dir, set } => {
                    self.run_id += 1;
                    next = Some(Plan::Resume { run_dir, set, data_dir: None });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_panic_in_the_trainer_is_its_line_with_what_to_try_not_an_internal_error() {
        let payload = "called `Result::unwrap()` on an `Err` value: Torch(\"CUDA out of memory. Tried to allocate 20.00 MiB\\nException raised from\")";
        let line = panic_line(&crate::panics::one_line(payload));
        assert!(
            line.starts_with("training failed: libtorch: CUDA out of memory. Tried to allocate 20.00 MiB"),
            "{line}"
        );
        assert!(line.contains("--batch-size") && !line.contains("internal error"), "{line}");
        assert_eq!(panic_line("index out of bounds"), "internal error in the trainer: index out of bounds");
    }
}
