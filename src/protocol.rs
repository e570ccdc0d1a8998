//! The narrow waist: the plain data that the trainer sends (events) and obeys (commands).
//!
//! Every front end (dashboard, headless, replay) consumes `Envelope`s; the run log is the same
//! events serialized one a line. Nothing here knows about tch or a terminal.

use crate::schema::{Schema, Version};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The run log's schema, stamped on the log's first line (`schema`: how every file of ours says
/// its version). Readers take any minor version of their major and skip event kinds they do not
/// know. What each version added (a reader of an older log finds these absent or empty):
///
/// - 1.0: the first shipped run's log;
/// - 1.1: the config's `precision` (absent: fp32);
/// - 1.2: `checkpoint`'s `secs`, `config_changed`, `warmup_ended`;
/// - 1.3: `command_received`, `diverged`'s `layer`, `health`, `eval`'s `confusion` and
///   `misclassified`;
/// - 1.4: `run_started`'s `best_before`;
/// - 1.5: `eval`'s `responses` (Figure 7);
/// - 1.6: `run_started`'s `build` and `cpu`;
/// - 1.7: a stamp line (`schema`, `version`) where each later writer's part begins (before, an
///   appended log kept its first writer's header whatever the later parts held); readers of 1.6
///   and before skip it as a line they cannot read, with a warning.
pub const RUN_LOG: Schema = Schema { name: "resnet-tui/runlog", version: Version::new(1, 7), former: &[] };

pub use crate::config::{ConfigChange, Depth, DeviceSpec, Precision, RunConfig, Setting, Shortcut, Warmup};

/// Which images an evaluation was made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalSet {
    Test,
    Validation,
}

impl EvalSet {
    /// How the set is named in lines, tables and tags: `test`, `validation`.
    pub fn name(self) -> &'static str {
        match self {
            EvalSet::Test => "test",
            EvalSet::Validation => "validation",
        }
    }
}

/// What a run reports about itself when it starts (or resumes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run directory's name, e.g. `20261128-041500-resnet20`.
    pub name: String,
    pub dir: PathBuf,
    pub config: RunConfig,
    /// Trainable parameters (BatchNorm affine included, running statistics not).
    pub params: u64,
    /// The device actually used, written as `train::device::describe` names it: "cpu (2 threads)", "cuda:0".
    pub device: RunDevice,
    pub train_images: usize,
    pub eval_images: usize,
    pub eval_set: EvalSet,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The iteration training starts from: 0 for a new run, the checkpoint's for a resumed one.
    pub start_iter: u64,
    /// Set when this run was grown from a shallower run's weights.
    pub grown_from: Option<String>,
    /// A resumed run's best evaluation before `start_iter`, as its checkpoint recorded it: the
    /// error and its iteration, so that a front end that saw none of them still knows which
    /// later evaluation is a new best (absent in older logs and new runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_before: Option<(f64, u64)>,
    /// The build that trains from `start_iter` on (`provenance::build`; absent in older logs): a
    /// run resumed by another binary says so at that start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// The CPU it trains on (`provenance::cpu`; absent in older logs): a run moved to another machine
    /// says so at that start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
}

/// The device a run trains on, as it reports itself. Written in the log as the words it is shown
/// in ("cpu (2 threads)", "cuda:0"), as logs have always had it; read back from them, so that a
/// front end finds the GPU without parsing a display string itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RunDevice {
    /// The CPU, with libtorch's intra-op threads when known.
    Cpu { threads: Option<usize> },
    /// A CUDA GPU by libtorch's index, and its name when a log gave one ("cuda:0 (NVIDIA H100)").
    Cuda { index: u32, name: Option<String> },
    /// Words that are neither, as a log wrote them.
    Other(String),
}

impl RunDevice {
    /// The CUDA device's index, when the run trains on one.
    pub fn gpu(&self) -> Option<u32> {
        match self {
            RunDevice::Cuda { index, .. } => Some(*index),
            RunDevice::Cpu { .. } | RunDevice::Other(_) => None,
        }
    }

    fn parse(text: &str) -> Option<RunDevice> {
        if text == "cpu" {
            return Some(RunDevice::Cpu { threads: None });
        }
        if let Some(rest) = text.strip_prefix("cpu (") {
            let n = rest.strip_suffix(" threads)").or_else(|| rest.strip_suffix(" thread)"))?;
            return Some(RunDevice::Cpu { threads: Some(n.parse().ok()?) });
        }
        let rest = text.strip_prefix("cuda:")?;
        let (index, name) = match rest.split_once(' ') {
            Some((index, name)) => (index, Some(name.strip_prefix('(')?.strip_suffix(')')?.to_string())),
            None => (rest, None),
        };
        Some(RunDevice::Cuda { index: index.parse().ok()?, name })
    }
}

impl std::fmt::Display for RunDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            RunDevice::Cpu { threads: None } => f.write_str("cpu"),
            RunDevice::Cpu { threads: Some(1) } => f.write_str("cpu (1 thread)"),
            RunDevice::Cpu { threads: Some(n) } => write!(f, "cpu ({n} threads)"),
            RunDevice::Cuda { index, name: None } => write!(f, "cuda:{index}"),
            RunDevice::Cuda { index, name: Some(name) } => write!(f, "cuda:{index} ({name})"),
            RunDevice::Other(text) => f.write_str(text),
        }
    }
}

/// The words a log holds, read as the device they name; words it does not know (or says
/// otherwise than this program would) are kept as they were, so a log reads back unchanged.
impl From<String> for RunDevice {
    fn from(text: String) -> RunDevice {
        match RunDevice::parse(&text) {
            Some(device) if device.to_string() == text => device,
            _ => RunDevice::Other(text),
        }
    }
}

impl From<&str> for RunDevice {
    fn from(text: &str) -> RunDevice {
        RunDevice::from(text.to_string())
    }
}

impl From<RunDevice> for String {
    fn from(device: RunDevice) -> String {
        device.to_string()
    }
}

/// Why a checkpoint was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointReason {
    Periodic,
    Requested,
    Best,
    Final,
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndReason {
    /// All iterations done.
    Completed,
    /// Stopped by the user (key, Ctrl-C, signal) before the end.
    Stopped,
    /// Closed to start a run of another depth.
    Switched,
    /// The loss became NaN or infinite.
    Diverged,
}

/// The numbers a finished run is remembered by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub reason: EndReason,
    pub iters: u64,
    pub final_error: Option<f64>,
    pub best_error: Option<f64>,
    pub best_iter: Option<u64>,
    /// Seconds spent training (pauses excluded).
    pub train_secs: f64,
}

/// What the trainer reports. `time` is seconds since the Unix epoch; `elapsed` is training
/// seconds since the run first started, pauses excluded (it continues across resumes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        time: f64,
        run: Box<RunInfo>,
    },
    /// What the trainer is busy with before the first step (loading data, building the model).
    Status {
        time: f64,
        message: String,
    },
    Step(StepRecord),
    Eval(EvalRecord),
    Checkpoint {
        time: f64,
        iter: u64,
        path: PathBuf,
        reason: CheckpointReason,
        /// Seconds the write took (0 in older logs).
        #[serde(default)]
        secs: f64,
    },
    /// The recipe changed on purpose as the run resumed (`resume --set`, a recovery's lower rate);
    /// the `run_started` before it carries the new config.
    ConfigChanged {
        time: f64,
        iter: u64,
        changes: Vec<ConfigChange>,
    },
    /// The warm-up's lower learning rate ends after `iter` iterations.
    WarmupEnded {
        time: f64,
        iter: u64,
        /// Mean training error, in percent, over the last steps when it ended.
        window_error: f64,
        /// It reached its cap of iterations rather than the training-error bar.
        capped: bool,
    },
    /// A command that came as a file in the run directory (`attach`, the table of a sweep),
    /// answered before it is acted on: `ignored` says why it was not.
    CommandReceived {
        time: f64,
        iter: u64,
        id: String,
        /// What it asked for: pause, resume, checkpoint, stop (or what could be read of it).
        request: String,
        /// Who sent it (user@host), when known.
        #[serde(default)]
        from: String,
        #[serde(default)]
        ignored: Option<String>,
    },
    Paused {
        time: f64,
        iter: u64,
    },
    Resumed {
        time: f64,
        iter: u64,
    },
    Diverged {
        time: f64,
        iter: u64,
        #[serde(with = "non_finite")]
        loss: f64,
        /// The newest checkpoint written before the divergence, kept untouched.
        last_good: Option<PathBuf>,
        /// The first variable, in forward order, whose values or gradient became non-finite
        /// (absent in older logs): where to look.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layer: Option<String>,
    },
    /// Optimizer health every few steps.
    Health(HealthRecord),
    Finished {
        time: f64,
        summary: Summary,
    },
    /// Something went wrong. A fatal error ends the run; otherwise training goes on.
    Error {
        time: f64,
        message: String,
        fatal: bool,
    },
}

/// One training step, as the `Step` event carries it (field order is the log's).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub time: f64,
    pub iter: u64,
    pub epoch: f64,
    pub elapsed: f64,
    #[serde(with = "non_finite")]
    pub loss: f64,
    /// Top-1 error on the step's batch, in percent.
    pub error: f64,
    pub lr: f64,
    pub images_per_sec: f64,
}

/// One evaluation, as the `Eval` event carries it (field order is the log's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub time: f64,
    pub iter: u64,
    pub epoch: f64,
    pub elapsed: f64,
    pub set: EvalSet,
    #[serde(with = "non_finite")]
    pub loss: f64,
    /// Top-1 error in percent: wrong images over all images.
    pub error: f64,
    /// Error in percent for each class, in label order.
    pub class_errors: Vec<f64>,
    pub images_per_sec: f64,
    /// `confusion[true][predicted]` image counts (empty in older logs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confusion: Vec<Vec<u32>>,
    /// A few misclassified images of the most confused pairs (empty in older logs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misclassified: Vec<Misclassified>,
    /// The standard deviation of each 3x3 layer's response (after BatchNorm, before the ReLU or
    /// the addition), in forward order, on the first `RESPONSE_IMAGES` evaluation images in
    /// evaluation mode: the paper's Figure 7 (empty in older logs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<f64>,
}

/// The groups of variables health is reported for, in forward order.
/// Named as the variables and the divergence report name them (`stage0.block2`): one stage, one name.
pub const HEALTH_GROUPS: [&str; 5] = ["stem", "stage0", "stage1", "stage2", "fc"];

/// The optimizer's view of the network after a step: how large the gradients and weights are,
/// and how far the step moved each group of variables relative to its size (the update-to-weight
/// ratio, around 1e-3 in healthy SGD training; much larger means trouble).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthRecord {
    pub time: f64,
    pub iter: u64,
    /// L2 norm of all gradients (weight decay excluded).
    pub grad_norm: f64,
    /// L2 norm of all trainable weights.
    pub weight_norm: f64,
    /// ||lr * momentum buffer|| / ||weights|| of each of `HEALTH_GROUPS`.
    pub update_ratio: Vec<f64>,
}

/// One misclassified image of an evaluation: its index in the evaluated split, its class and the
/// class it was taken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Misclassified {
    pub index: u32,
    pub label: u8,
    pub predicted: u8,
}

impl Event {
    pub fn time(&self) -> f64 {
        match self {
            Event::RunStarted { time, .. }
            | Event::Status { time, .. }
            | Event::Checkpoint { time, .. }
            | Event::WarmupEnded { time, .. }
            | Event::ConfigChanged { time, .. }
            | Event::CommandReceived { time, .. }
            | Event::Paused { time, .. }
            | Event::Resumed { time, .. }
            | Event::Diverged { time, .. }
            | Event::Finished { time, .. }
            | Event::Error { time, .. } => *time,
            Event::Step(step) => step.time,
            Event::Eval(eval) => eval.time,
            Event::Health(h) => h.time,
        }
    }

    /// The event kind's name as written in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::Status { .. } => "status",
            Event::Step(_) => "step",
            Event::Eval(_) => "eval",
            Event::Health(_) => "health",
            Event::Checkpoint { .. } => "checkpoint",
            Event::WarmupEnded { .. } => "warmup_ended",
            Event::ConfigChanged { .. } => "config_changed",
            Event::CommandReceived { .. } => "command_received",
            Event::Paused { .. } => "paused",
            Event::Resumed { .. } => "resumed",
            Event::Diverged { .. } => "diverged",
            Event::Finished { .. } => "finished",
            Event::Error { .. } => "error",
        }
    }
}

/// Identifies one run among those a front end watches: a live session numbers its runs as
/// it starts them (a depth switch starts a new one), replay numbers the logs it reads.
pub type RunId = u32;

/// An event together with the run it belongs to: what travels on the channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub run: RunId,
    pub event: Event,
}

/// A front end's two ends of a live trainer: its events in, commands out. Dropping it tells
/// the trainer that nobody is watching any more: it checkpoints and ends the run.
pub struct Channels {
    pub events: crossbeam_channel::Receiver<Envelope>,
    pub commands: crossbeam_channel::Sender<Command>,
}

/// How a depth switch builds the new network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchMode {
    /// A freshly initialised network of the new depth.
    Fresh,
    /// The current weights, with the extra blocks added as exact identities.
    Grow,
}

/// What a front end can ask of a live trainer. A command file in a run directory (`mailbox`)
/// holds one as JSON: `"pause"`, `{"switch_depth":{"depth":32,"mode":"grow"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Pause,
    Resume,
    /// Write a checkpoint at the next step boundary.
    Checkpoint,
    /// Checkpoint and close the current run, then start one of another depth with the same recipe.
    SwitchDepth {
        depth: Depth,
        mode: SwitchMode,
    },
    /// After a divergence: go back to the last good checkpoint with the learning rate
    /// multiplied by `lr_factor` (a fresh start at that rate if there is no checkpoint yet).
    Recover {
        lr_factor: f64,
    },
    /// Checkpoint, write the summary and end.
    Stop,
}

impl Command {
    /// Its name, as a command file and the log write it: `pause`, `switch_depth`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Checkpoint => "checkpoint",
            Command::SwitchDepth { .. } => "switch_depth",
            Command::Recover { .. } => "recover",
            Command::Stop => "stop",
        }
    }

    /// Whether it may come from another process, as a file: the steering keys. A switch starts
    /// a run in the trainer's own session and a recovery answers a divergence seen live; both
    /// stay with the front end that runs the trainer.
    pub fn steers(&self) -> bool {
        matches!(self, Command::Pause | Command::Resume | Command::Checkpoint | Command::Stop)
    }
}

/// A loss that may be NaN or infinite (a diverged run's): JSON has no such numbers, so they are
/// written as the strings "NaN", "inf" and "-inf" (and a `null` reads back as NaN).
mod non_finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_str(&v.to_string()) }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Value(f64),
        Text(String),
        Null(()),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Number::deserialize(d)? {
            Number::Value(v) => Ok(v),
            Number::Text(t) => t.parse().map_err(|_| serde::de::Error::custom(format!("not a number: {t:?}"))),
            Number::Null(()) => Ok(f64::NAN),
        }
    }
}

/// Seconds since the Unix epoch, as events carry it.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_written_before_precision_existed_reads_as_fp32() {
        // A config as schema 1.0 wrote it (the first shipped run's), without a precision field.
        let old = r#"{"depth":20,"shortcut":"a","iters":3000,"milestones":[1500,2250],"lr":0.1,
            "momentum":0.9,"weight_decay":0.0001,"batch_size":128,"warmup":null,"val_split":0,
            "eval_every":250,"checkpoint_every":500,"keep_checkpoints":3,"seed":0,"device":"auto",
            "threads":1,"data_dir":"/data/cifar10"}"#;
        let config: RunConfig = serde_json::from_str(old).unwrap();
        assert_eq!(config.precision, Precision::Fp32);
        let bf16 = RunConfig { precision: Precision::Bf16, ..config };
        let line = serde_json::to_string(&bf16).unwrap();
        assert!(line.contains(r#""precision":"bf16""#), "{line}");
        assert_eq!(serde_json::from_str::<RunConfig>(&line).unwrap(), bf16);
    }

    #[test]
    fn a_device_reads_back_from_the_words_a_log_holds_and_names_its_gpu() {
        for (words, gpu) in [
            ("cpu (2 threads)", None),
            ("cpu (1 thread)", None),
            ("cpu", None),
            ("cuda:0", Some(0)),
            ("cuda:3 (NVIDIA H100)", Some(3)),
            ("cpu (1 threads)", None),
            ("mps", None),
        ] {
            let json = serde_json::to_string(words).unwrap();
            let device: RunDevice = serde_json::from_str(&json).unwrap();
            assert_eq!(device.gpu(), gpu, "{words}");
            assert_eq!(serde_json::to_string(&device).unwrap(), json, "{words} is written back as it was");
        }
        assert_eq!(RunDevice::from("cuda:12"), RunDevice::Cuda { index: 12, name: None });
        assert_eq!(RunDevice::from("cpu (8 threads)"), RunDevice::Cpu { threads: Some(8) });
        // Words this program would not write stay words: no GPU is guessed from them.
        assert_eq!(RunDevice::from("cudafake"), RunDevice::Other("cudafake".into()));
    }

    #[test]
    fn commands_are_written_as_command_files_always_wrote_them() {
        for (command, json) in [
            (Command::Pause, r#""pause""#),
            (Command::Resume, r#""resume""#),
            (Command::Checkpoint, r#""checkpoint""#),
            (Command::Stop, r#""stop""#),
        ] {
            assert_eq!(serde_json::to_string(&command).unwrap(), json);
            assert_eq!(serde_json::from_str::<Command>(json).unwrap(), command);
            assert_eq!(format!("\"{}\"", command.name()), json);
            assert!(command.steers());
        }
        let switch = Command::SwitchDepth { depth: Depth::PAPER[1], mode: SwitchMode::Grow };
        let json = serde_json::to_string(&switch).unwrap();
        assert_eq!(json, r#"{"switch_depth":{"depth":32,"mode":"grow"}}"#);
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), switch);
        assert!(!switch.steers() && !Command::Recover { lr_factor: 0.1 }.steers());
    }

    #[test]
    fn a_non_finite_loss_survives_the_log() {
        for loss in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.5] {
            let event = Event::Diverged { time: 1.0, iter: 3, loss, last_good: None, layer: None };
            let line = serde_json::to_string(&event).unwrap();
            let Event::Diverged { loss: back, .. } = serde_json::from_str(&line).unwrap() else { panic!("{line}") };
            assert!(back == loss || (back.is_nan() && loss.is_nan()), "{line}");
        }
        let old = r#"{"diverged":{"time":1.0,"iter":3,"loss":null,"last_good":null}}"#;
        assert!(matches!(serde_json::from_str(old).unwrap(), Event::Diverged { loss, .. } if loss.is_nan()));
    }
}
