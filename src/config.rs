//! What a run is: its recipe as a `RunConfig` and the value types in it (depth, shortcut,
//! precision, device), the paper's recipe as a config, and the checks a config must pass.
//! Depth and device are checked once, where they are parsed; what holds one is valid.

use crate::reference::{PAPER_DEPTHS, recipe};
use serde::{Deserialize, Serialize};

pub mod setting;
pub use setting::{Setting, SettingError};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Why a config (or one of its values) cannot train.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "depth {0} is not of the form 6n+2 (n >= 1): use 20, 32, 44, 56, 110, 1202 or any of 8, 14, 20, 26, 32, ..."
    )]
    Depth(u32),
    #[error("unknown device {0:?}: use auto, cpu, cuda or cuda:N")]
    Device(String),
    #[error("unknown {what} {given:?}: use {choices}")]
    Choice { what: &'static str, given: String, choices: &'static str },
    /// A value out of range; `flag` names the option that sets it.
    #[error("{flag} {why}")]
    Value { flag: &'static str, why: String },
}

fn bad(flag: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Value { flag, why: why.into() }
}

/// The whole numbers a count may be, with the flag that sets it. Checked where the command line
/// is parsed (before the text can overflow its type) and again in `validate` (for `resume --set`,
/// `--vary` and configs read back), so that no count is multiplied or cast out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    pub flag: &'static str,
    pub min: u64,
    pub max: u64,
}

impl Bound {
    /// "a whole number from 1 to 1024".
    pub fn range(self) -> String {
        format!("a whole number from {} to {}", self.min, self.max)
    }

    /// `value` if it is in range; else the error names the flag and the range.
    pub fn check(self, value: u64) -> Result<u64, ConfigError> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(bad(self.flag, format!("must be {}, got {value}", self.range())))
        }
    }

    /// The same check for a count held as a `usize`.
    pub fn check_usize(self, value: usize) -> Result<usize, ConfigError> {
        self.check(u64::try_from(value).unwrap_or(u64::MAX)).map(|_| value)
    }
}

/// The most iterations a run may have: 10^9, about 15,600 times the paper's 64k, over eleven
/// days even at a millisecond a step. Small enough that no product of it with a batch size (at most
/// `bounds::BATCH_SIZE`) comes near `u64::MAX`.
pub const MAX_ITERS: u64 = 1_000_000_000;
/// CIFAR-10's training set: more images than this in a batch would hold images twice.
const TRAIN_IMAGES: u64 = 50_000;

/// The bounds of a config's counts.
pub mod bounds {
    use super::{Bound, MAX_ITERS, TRAIN_IMAGES};
    pub const ITERS: Bound = Bound { flag: "--iters", min: 1, max: MAX_ITERS };
    pub const EVAL_EVERY: Bound = Bound { flag: "--eval-every", min: 1, max: MAX_ITERS };
    pub const CHECKPOINT_EVERY: Bound = Bound { flag: "--checkpoint-every", min: 1, max: MAX_ITERS };
    /// 0: no warm-up.
    pub const WARMUP_ITERS: Bound = Bound { flag: "--warmup-iters", min: 0, max: MAX_ITERS };
    /// No run writes more checkpoints than it has iterations: the largest count keeps them all.
    pub const KEEP_CHECKPOINTS: Bound = Bound { flag: "--keep-checkpoints", min: 1, max: MAX_ITERS };
    pub const BATCH_SIZE: Bound = Bound { flag: "--batch-size", min: 1, max: TRAIN_IMAGES };
    /// At least one training image is left to train on.
    pub const VAL_SPLIT: Bound = Bound { flag: "--val-split", min: 0, max: TRAIN_IMAGES - 1 };
    /// More than the hardware threads of any one machine today (two 192-core sockets: 768).
    /// libtorch takes the count as an `i32` and libgomp allocates a team of that many threads at
    /// once: an unchecked count ends the run in an allocation failure inside libgomp.
    pub const THREADS: Bound = Bound { flag: "--threads", min: 1, max: 1024 };
}

/// A network depth of the form 6n+2 (n >= 1): three stages of n two-layer blocks, a stem
/// convolution and the classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Depth(u32);

impl Depth {
    /// The depths of the paper's table, in order.
    pub const PAPER: [Depth; 6] = [
        Depth::known(PAPER_DEPTHS[0]),
        Depth::known(PAPER_DEPTHS[1]),
        Depth::known(PAPER_DEPTHS[2]),
        Depth::known(PAPER_DEPTHS[3]),
        Depth::known(PAPER_DEPTHS[4]),
        Depth::known(PAPER_DEPTHS[5]),
    ];

    pub const fn is_valid(depth: u32) -> bool {
        depth >= 8 && (depth - 2).is_multiple_of(6)
    }

    pub fn new(depth: u32) -> Result<Depth, ConfigError> {
        if Depth::is_valid(depth) { Ok(Depth(depth)) } else { Err(ConfigError::Depth(depth)) }
    }

    /// For constants: an invalid depth fails the build.
    const fn known(depth: u32) -> Depth {
        assert!(Depth::is_valid(depth));
        Depth(depth)
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// Residual blocks in each of the three stages.
    pub fn blocks_per_stage(self) -> usize {
        ((self.0 - 2) / 6) as usize
    }

    /// The rule for growing a network of this depth: only into a deeper one (growing adds
    /// blocks), and only with shortcuts (a new block starts as an identity through its shortcut).
    pub fn grow_to(self, shortcut: Shortcut, to: Depth) -> Result<Depth, GrowError> {
        if shortcut == Shortcut::None {
            Err(GrowError::Plain { from: self, to })
        } else if to > self {
            Ok(to)
        } else {
            Err(GrowError::NotDeeper { from: self, to })
        }
    }
}

/// Why a network cannot be grown into another.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum GrowError {
    #[error("cannot grow ResNet-{from} into ResNet-{to}: growing adds blocks, choose a deeper network")]
    NotDeeper { from: Depth, to: Depth },
    /// A plain block has no shortcut to pass its input through, so no new block can start as an
    /// identity (a zero BatchNorm scale would cut the signal instead).
    #[error(
        "cannot grow Plain-{from} into Plain-{to}: a plain network has no shortcut for new blocks to start as identities; start Plain-{to} fresh"
    )]
    Plain { from: Depth, to: Depth },
}

impl TryFrom<u32> for Depth {
    type Error = ConfigError;
    fn try_from(depth: u32) -> Result<Depth, ConfigError> {
        Depth::new(depth)
    }
}

impl From<Depth> for u32 {
    fn from(depth: Depth) -> u32 {
        depth.0
    }
}

impl FromStr for Depth {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Depth, ConfigError> {
        let n = s.trim().parse::<u32>().map_err(|_| ConfigError::Depth(0))?;
        Depth::new(n)
    }
}

impl fmt::Display for Depth {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where to train, as asked for; `train::device` resolves it against what libtorch sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// CUDA if libtorch sees a GPU, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// `cuda` (`None`: the first GPU) or `cuda:N`.
    Cuda(Option<usize>),
}

impl FromStr for DeviceSpec {
    type Err = ConfigError;
    fn from_str(spec: &str) -> Result<DeviceSpec, ConfigError> {
        let s = spec.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(None)),
            _ => s
                .strip_prefix("cuda:")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map(|i| DeviceSpec::Cuda(Some(i)))
                .ok_or_else(|| ConfigError::Device(spec.to_string())),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<DeviceSpec, ConfigError> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(None) => f.write_str("cuda"),
            DeviceSpec::Cuda(Some(i)) => write!(f, "cuda:{i}"),
        }
    }
}

/// Shortcut connection used where a residual block changes shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortcut {
    /// Identity; stride-2 subsample and zero-padded channels where the shape changes (no parameters).
    #[default]
    A,
    /// 1x1 strided convolution + BatchNorm projection where the shape changes.
    B,
    /// No shortcut at all: the plain network of the same layers (the paper's baseline, Figure 6).
    None,
}

impl Shortcut {
    /// What the network family is called: "ResNet" with shortcuts, "Plain" without.
    pub fn family(self) -> &'static str {
        match self {
            Shortcut::None => "Plain",
            Shortcut::A | Shortcut::B => "ResNet",
        }
    }
}

/// `a`, `b` or `none`, as the flag and `config.json` say it.
impl fmt::Display for Shortcut {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Shortcut::A => "a",
            Shortcut::B => "b",
            Shortcut::None => "none",
        })
    }
}

/// How a network is named everywhere it is shown: `ResNet-20`, `Plain-56`.
pub fn network_name(depth: Depth, shortcut: Shortcut) -> String {
    format!("{}-{depth}", shortcut.family())
}

impl FromStr for Shortcut {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Shortcut, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "a" => Ok(Shortcut::A),
            "b" => Ok(Shortcut::B),
            "none" => Ok(Shortcut::None),
            _ => Err(ConfigError::Choice { what: "shortcut", given: s.into(), choices: "a, b, none" }),
        }
    }
}

/// The precision asked for: one named outright, or `auto`, chosen where the run trains (bf16
/// where it is clearly faster there, else fp32), each time it starts or resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionChoice {
    Fp32,
    Bf16,
    #[default]
    Auto,
}

impl PrecisionChoice {
    /// The precision named outright; `None` for `auto`.
    pub fn named(self) -> Option<Precision> {
        match self {
            PrecisionChoice::Fp32 => Some(Precision::Fp32),
            PrecisionChoice::Bf16 => Some(Precision::Bf16),
            PrecisionChoice::Auto => None,
        }
    }
}

impl fmt::Display for PrecisionChoice {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.named() {
            Some(p) => p.fmt(f),
            None => f.write_str("auto"),
        }
    }
}

impl FromStr for PrecisionChoice {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<PrecisionChoice, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(PrecisionChoice::Auto),
            _ => match s.parse::<Precision>() {
                Ok(p) => Ok(p.into()),
                Err(_) => Err(ConfigError::Choice { what: "precision", given: s.into(), choices: "fp32, bf16, auto" }),
            },
        }
    }
}

impl From<Precision> for PrecisionChoice {
    fn from(p: Precision) -> PrecisionChoice {
        match p {
            Precision::Fp32 => PrecisionChoice::Fp32,
            Precision::Bf16 => PrecisionChoice::Bf16,
        }
    }
}

/// Precision of the convolutions and activations. Weights, BatchNorm, the classifier and the
/// loss stay fp32 in both (see `model::ResNet::compute`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    /// bfloat16: fp32's range, so no loss scaling. Whether it is faster than fp32 depends on the
    /// CPU or GPU (docs/performance.md).
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Precision, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(ConfigError::Choice { what: "precision", given: s.into(), choices: "fp32, bf16" }),
        }
    }
}

/// The ResNet-110 style warm-up: a lower learning rate until the training error is low enough,
/// for at most `iters` iterations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// The cap: the warm-up never lasts longer.
    pub iters: u64,
    pub lr: f64,
    /// End the warm-up once the mean training error over the last `WARMUP_WINDOW` steps is below
    /// this (percent). `None`, as in configs written before it existed: exactly `iters` iterations.
    #[serde(default)]
    pub until_error: Option<f64>,
}

/// Steps over which the warm-up's training error is averaged: one batch's error is noisy (a
/// batch of 128 images moves it by almost a point per image).
pub const WARMUP_WINDOW: usize = 20;

/// Everything that defines a training run. Written to the run directory and sent in `RunStarted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub depth: Depth,
    pub shortcut: Shortcut,
    /// Total number of SGD iterations.
    pub iters: u64,
    /// Iterations at which the learning rate is divided by 10.
    pub milestones: Vec<u64>,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub warmup: Option<Warmup>,
    /// Training images held out for validation (0: train on all, evaluate on the test set).
    pub val_split: usize,
    pub eval_every: u64,
    pub checkpoint_every: u64,
    /// How many periodic checkpoints to keep besides the best one.
    pub keep_checkpoints: usize,
    pub seed: u64,
    pub device: DeviceSpec,
    /// Intra-op threads for libtorch on CPU (None: libtorch's default).
    pub threads: Option<usize>,
    pub data_dir: PathBuf,
    /// Absent in logs and run folders written before run-log schema 1.1: those ran in fp32.
    #[serde(default)]
    pub precision: Precision,
    /// Weights in PyTorch's names the run started from (`--init-from`), instead of He
    /// initialisation; a resume takes its checkpoint's weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Why `precision` is what it is, when `--precision auto` chose it (with the figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision_why: Option<String>,
    /// `--precision auto`: `precision` is chosen where the run trains, each time it starts or
    /// resumes, on that machine (absent, false, in runs that named their precision or predate it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub precision_auto: bool,
}

impl RunConfig {
    /// The network's name as shown everywhere: `ResNet-20`, `Plain-56`.
    pub fn network_name(&self) -> String {
        network_name(self.depth, self.shortcut)
    }
}

/// Iterations in one pass over `images` training images at `batch_size`.
pub fn iters_per_epoch(images: usize, batch_size: usize) -> u64 {
    (images as u64).div_ceil(batch_size.max(1) as u64)
}

/// The paper's recipe for `depth`: 64k iterations, drops at 32k and 48k, the ResNet-110 warm-up.
pub fn paper(depth: Depth, data_dir: PathBuf) -> RunConfig {
    RunConfig {
        depth,
        shortcut: Shortcut::A,
        iters: recipe::ITERS,
        milestones: recipe::MILESTONES.to_vec(),
        lr: recipe::LR,
        momentum: recipe::MOMENTUM,
        weight_decay: recipe::WEIGHT_DECAY,
        batch_size: recipe::BATCH_SIZE,
        warmup: paper_warmup(depth),
        val_split: 0,
        eval_every: iters_per_epoch(TRAIN_IMAGES as usize, recipe::BATCH_SIZE),
        checkpoint_every: 1000,
        keep_checkpoints: 3,
        seed: 0,
        device: DeviceSpec::Auto,
        threads: None,
        data_dir,
        precision: Precision::Fp32,
        init_from: None,
        precision_why: None,
        precision_auto: false,
    }
}

/// The paper warms up ResNet-110 (and we, deeper ones too, where the same instability appears).
pub fn paper_warmup(depth: Depth) -> Option<Warmup> {
    (depth.get() >= recipe::WARMUP_DEPTH).then_some(PAPER_WARMUP)
}

/// The paper's warm-up of ResNet-110.
pub const PAPER_WARMUP: Warmup =
    Warmup { iters: recipe::WARMUP_CAP, lr: recipe::WARMUP_LR, until_error: Some(recipe::WARMUP_UNTIL_ERROR) };

/// Sets the run length, keeping the paper's schedule shape (drops at 1/2 and 3/4) unless the
/// milestones were given explicitly.
pub fn set_length(config: &mut RunConfig, iters: u64, milestones: Option<Vec<u64>>) {
    config.iters = iters;
    config.milestones = milestones
        .unwrap_or_else(|| if iters == recipe::ITERS { recipe::MILESTONES.to_vec() } else { scaled_milestones(iters) });
    if let Some(w) = &mut config.warmup {
        w.iters = w.iters.min(iters);
    }
}

/// One field of a config changed on purpose (`resume --set`, a recovery's lower rate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// The field's name; nested fields dotted (`warmup.lr`).
    pub field: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// Fields that say where this machine keeps things, not how the run trains: a run resumed on
/// another machine reads its data set from there without changing its recipe.
const LOCATION_FIELDS: [&str; 1] = ["data_dir"];

/// The recipe fields (dotted for nested ones) in which two configs differ, with their values;
/// where the data set lies is not one of them.
pub fn differences(a: &RunConfig, b: &RunConfig) -> Vec<ConfigChange> {
    fn walk(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<ConfigChange>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = serde_json::Value::Null;
                    let field = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&field, x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), out);
                }
            }
            _ if LOCATION_FIELDS.contains(&prefix) => {}
            _ if a != b => out.push(ConfigChange { field: prefix.to_string(), from: a.clone(), to: b.clone() }),
            _ => {}
        }
    }
    let (a, b) =
        (serde_json::to_value(a).expect("a config serialises"), serde_json::to_value(b).expect("a config serialises"));
    let mut out = Vec::new();
    walk("", &a, &b, &mut out);
    out
}

/// `config` with `settings` applied in order, then checked: how a run resumes with `--set`. A
/// nested setting needs its parent (`warmup.lr` a run with a warm-up); depth and shortcut fix the
/// network's shape, which a checkpoint holds.
pub fn apply_settings(config: &RunConfig, settings: &[Setting]) -> Result<RunConfig, ConfigError> {
    let mut changed = config.clone();
    for setting in settings {
        if setting.fixes_shape() {
            let why = format!("{setting}: {} fixes the network's shape and cannot change on resume", setting.field());
            return Err(bad("--set", why));
        }
        setting.apply(&mut changed)?;
    }
    validate(&changed)?;
    Ok(changed)
}

/// The depth of a run that names none: the paper's first, ResNet-20.
pub const DEFAULT_DEPTH: Depth = Depth::PAPER[0];

/// A new run's config: the paper's recipe for its depth (the last depth among `settings`, else
/// `DEFAULT_DEPTH`) with `settings` applied in order, then checked. Its length is a setting, or
/// `epochs` at its batch size, else the paper's; what follows from the length and was not given
/// follows it: the milestones at 1/2 and 3/4, a warm-up no longer than the run, and an evaluation
/// each epoch. A part of the warm-up (its rate, its error bar) changes nothing in a run without
/// one: a run warms up by its depth, or by a whole `warmup`.
pub fn new_run(settings: &[Setting], epochs: Option<f64>, data_dir: PathBuf) -> Result<RunConfig, ConfigError> {
    let depth = settings.iter().rev().find_map(|s| s.value(&setting::DEPTH)).copied().unwrap_or(DEFAULT_DEPTH);
    let mut config = paper(depth, data_dir);
    for s in settings {
        // False: a part of the warm-up, and this run has none.
        s.put(&mut config);
    }
    let given = |name: &str| settings.iter().any(|s| s.field() == name);
    let train_images = (TRAIN_IMAGES as usize).saturating_sub(config.val_split).max(1);
    let per_epoch = iters_per_epoch(train_images, config.batch_size);
    let iters = match epochs {
        Some(epochs) if !given(setting::ITERS.name) => iters_of_epochs(epochs, per_epoch, config.batch_size)?,
        _ => config.iters,
    };
    let milestones = given(setting::MILESTONES.name).then(|| config.milestones.clone());
    set_length(&mut config, iters, milestones);
    if !given(setting::EVAL_EVERY.name) {
        config.eval_every = per_epoch;
    }
    config.eval_every = config.eval_every.min(config.iters.max(1));
    validate(&config)?;
    Ok(config)
}

/// `epochs` passes over the training images in iterations, `per_epoch` a pass at `batch_size`.
fn iters_of_epochs(epochs: f64, per_epoch: u64, batch_size: usize) -> Result<u64, ConfigError> {
    let iters = epochs * per_epoch as f64;
    if epochs.is_finite() && epochs > 0.0 && iters <= MAX_ITERS as f64 {
        return Ok(iters.round().max(1.0) as u64);
    }
    // As many epochs as make the most iterations a run may have, at this batch size.
    let most = MAX_ITERS / per_epoch;
    let why = format!(
        "must be positive and at most {most} ({MAX_ITERS} iterations at batch size {batch_size}), got {epochs}"
    );
    Err(bad("--epochs", why))
}

/// The paper's milestones (32k and 48k of 64k) scaled to a run of `iters`: 1/2 and 3/4 of it.
/// Very short runs get fewer drops: milestones are distinct and after iteration 0.
pub fn scaled_milestones(iters: u64) -> Vec<u64> {
    // In u128: three quarters of any u64 is a u64, three times it need not be.
    let three_quarters = (u128::from(iters) * 3 / 4) as u64;
    let mut milestones = vec![iters / 2, three_quarters];
    milestones.retain(|&m| m > 0);
    milestones.dedup();
    milestones
}

/// Checks a config for values that cannot train; the error names the flag. Depth and device
/// need no check: their types hold only valid values.
pub fn validate(c: &RunConfig) -> Result<(), ConfigError> {
    bounds::ITERS.check(c.iters)?;
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return Err(bad("--lr", format!("must be a positive number, got {}", c.lr)));
    }
    if !(c.momentum.is_finite() && (0.0..1.0).contains(&c.momentum)) {
        return Err(bad("--momentum", format!("must be in [0, 1), got {}", c.momentum)));
    }
    if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
        return Err(bad("--weight-decay", format!("must be zero or positive, got {}", c.weight_decay)));
    }
    bounds::BATCH_SIZE.check_usize(c.batch_size)?;
    bounds::VAL_SPLIT.check_usize(c.val_split)?;
    bounds::EVAL_EVERY.check(c.eval_every)?;
    bounds::CHECKPOINT_EVERY.check(c.checkpoint_every)?;
    bounds::KEEP_CHECKPOINTS.check_usize(c.keep_checkpoints)?;
    if let Some(w) = c.warmup {
        bounds::WARMUP_ITERS.check(w.iters)?;
    }
    if let Some(t) = c.threads {
        bounds::THREADS.check_usize(t)?;
    }
    if c.milestones.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("--milestones", format!("must be increasing, got {:?}", c.milestones)));
    }
    if let Some(&last) = c.milestones.last()
        && last >= c.iters
    {
        return Err(bad("--milestones", format!("{last} is not before the last iteration ({})", c.iters)));
    }
    if c.milestones.first() == Some(&0) {
        return Err(bad("--milestones", "must be after iteration 0"));
    }
    if let Some(w) = c.warmup
        && !(w.lr.is_finite() && w.lr > 0.0)
    {
        return Err(bad("--warmup-lr", format!("must be positive, got {}", w.lr)));
    }
    if let Some(Some(e)) = c.warmup.map(|w| w.until_error)
        && !(e.is_finite() && e > 0.0 && e <= 100.0)
    {
        return Err(bad("--warmup-until-error", format!("must be a percentage above 0, got {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_recipe_is_the_default() {
        let c = paper(Depth::PAPER[0], "d".into());
        assert_eq!((c.iters, c.milestones.clone(), c.lr, c.batch_size), (64_000, vec![32_000, 48_000], 0.1, 128));
        assert_eq!(c.warmup, None);
        let warmup = Some(Warmup { iters: 1000, lr: 0.01, until_error: Some(80.0) });
        assert_eq!(paper(Depth::PAPER[4], "d".into()).warmup, warmup);
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn shorter_runs_scale_the_milestones_unless_given() {
        let mut c = paper(Depth::PAPER[0], "d".into());
        set_length(&mut c, 2000, None);
        assert_eq!(c.milestones, vec![1000, 1500]);
        set_length(&mut c, 2000, Some(vec![1500, 1800]));
        assert_eq!(c.milestones, vec![1500, 1800]);
    }

    type Change = Box<dyn Fn(&mut RunConfig)>;

    /// Each change to the paper's ResNet-20 recipe is refused, the error mentioning its text.
    fn assert_each_refused(cases: Vec<(Change, &str)>) {
        let base = paper(Depth::PAPER[0], "d".into());
        for (change, expect) in cases {
            let mut c = base.clone();
            change(&mut c);
            let err = validate(&c).unwrap_err().to_string();
            assert!(err.contains(expect), "{err} should mention {expect}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.lr = -0.1), "--lr"),
            (Box::new(|c| c.lr = f64::NAN), "--lr"),
            (Box::new(|c| c.batch_size = 0), "--batch-size"),
            (Box::new(|c| c.milestones = vec![48_000, 32_000]), "increasing"),
            (Box::new(|c| c.milestones = vec![32_000, 64_000]), "not before the last iteration"),
            (Box::new(|c| c.momentum = 1.5), "--momentum"),
        ];
        assert_each_refused(cases);
    }

    #[test]
    fn where_the_data_set_lies_is_not_a_recipe_difference() {
        let here = paper(Depth::PAPER[0], "/home/a/cifar10".into());
        let there = RunConfig { data_dir: "cifar10".into(), ..here.clone() };
        assert!(differences(&here, &there).is_empty());
        let faster = RunConfig { lr: 0.2, ..there };
        assert_eq!(differences(&here, &faster).into_iter().map(|d| d.field).collect::<Vec<_>>(), ["lr"]);
    }

    /// `config` with the settings of `texts` (each `FIELD=VALUE`), parsed then applied.
    fn set(config: &RunConfig, texts: &[&str]) -> Result<RunConfig, ConfigError> {
        let settings = texts.iter().map(|t| t.parse::<Setting>()).collect::<Result<Vec<_>, _>>()?;
        apply_settings(config, &settings)
    }

    #[test]
    fn settings_change_named_fields_and_are_checked() {
        let c = paper(Depth::PAPER[4], "d".into());
        let changed = set(&c, &["lr=0.05", "warmup.lr=0.005", "milestones=30000,45000", "device=cpu"]).unwrap();
        assert_eq!(set(&c, &["milestones=40000"]).unwrap().milestones, vec![40_000]);
        assert_eq!(set(&c, &["milestones=[40000,50000]"]).unwrap().milestones, vec![40_000, 50_000]);
        assert_eq!((changed.lr, changed.warmup.unwrap().lr, changed.device), (0.05, 0.005, DeviceSpec::Cpu));
        assert_eq!(changed.milestones, vec![30_000, 45_000]);
        let fields: Vec<String> = differences(&c, &changed).into_iter().map(|d| d.field).collect();
        assert_eq!(fields, ["device", "lr", "milestones", "warmup.lr"]);
        assert!(differences(&c, &c).is_empty());
        assert_eq!(set(&c, &["warmup=null", "threads=2"]).unwrap().warmup, None);
        for (bad, says) in [
            ("depth=32", "cannot change"),
            ("shortcut=b", "cannot change"),
            ("speed=3", "no field speed"),
            ("lr", "FIELD=VALUE"),
            ("lr=-1", "--lr"),
            ("lr=fast", "--set lr=fast: expected a number"),
            ("device=tpu", "unknown device"),
            ("milestones=1,x", "numbers"),
            ("iters=99999999999999999999999", "--set iters=99999999999999999999999: must be a whole number from 1 to"),
            ("threads=0", "--set threads=0: must be a whole number from 1 to 1024"),
        ] {
            let err = set(&c, &[bad]).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_setting_reads_back_from_the_text_it_is_said_in() {
        let warmup = Some(Warmup { iters: 500, lr: 0.01, until_error: Some(80.0) });
        use setting::*;
        for setting in [
            LR.to(0.1 * 0.1),
            MILESTONES.to(vec![30_000, 45_000]),
            MILESTONES.to(Vec::new()),
            WARMUP.to(warmup),
            WARMUP.to(None),
            WARMUP_UNTIL_ERROR.to(None),
            THREADS.to(Some(4)),
            DEVICE.to(DeviceSpec::Cuda(Some(1))),
            PRECISION.to(PrecisionChoice::Bf16),
            PRECISION.to(PrecisionChoice::Auto),
            INIT_FROM.to(Some("/w/resnet20.safetensors".into())),
            DATA_DIR.to("/data/cifar10".into()),
            DEPTH.to(Depth::PAPER[5]),
            SHORTCUT.to(Shortcut::None),
        ] {
            let text = setting.to_string();
            assert_eq!(text.parse::<Setting>(), Ok(setting), "{text}");
        }
    }

    #[test]
    fn every_field_of_a_config_is_a_setting() {
        let mut c = paper(Depth::PAPER[4], "d".into());
        c.init_from = Some("w".into());
        c.precision_why = Some("why".into());
        let value = serde_json::to_value(&c).unwrap();
        let mut fields = Vec::new();
        for (k, v) in value.as_object().unwrap() {
            match v.as_object() {
                Some(inner) => fields.extend(inner.keys().map(|i| format!("{k}.{i}"))),
                None => fields.push(k.clone()),
            }
            fields.push(k.clone());
        }
        for field in fields {
            let err = Setting::new(&field, "1").err().map(|e| e.why).unwrap_or_default();
            assert!(!err.contains("no field"), "{field}: {err}");
        }
    }

    #[test]
    fn a_new_run_is_the_papers_recipe_for_its_depth_with_its_settings_on_top() {
        let texts = ["depth=110", "batch_size=64", "iters=2000", "warmup.lr=0.02", "precision=auto"];
        let settings: Vec<Setting> = texts.iter().map(|t| t.parse().unwrap()).collect();
        let c = new_run(&settings, None, "d".into()).unwrap();
        assert_eq!((c.depth.get(), c.batch_size, c.iters, c.milestones.clone()), (110, 64, 2000, vec![1000, 1500]));
        assert_eq!(
            c.warmup,
            Some(Warmup { iters: 1000, lr: 0.02, ..PAPER_WARMUP }),
            "the paper's warm-up, its rate changed"
        );
        assert_eq!((c.eval_every, c.precision_auto), (782, true), "an evaluation each epoch of 64 images a step");
        // ResNet-20 has no warm-up: its rate is no warm-up's, and changes nothing.
        let shallow = new_run(&settings[1..], Some(1.0), "d".into()).unwrap();
        assert_eq!((shallow.depth, shallow.warmup, shallow.iters), (DEFAULT_DEPTH, None, 2000), "iters over epochs");
        let by_epochs = new_run(&settings[1..2], Some(2.0), "d".into()).unwrap();
        assert_eq!(by_epochs.iters, 2 * 782);
        assert!(new_run(&["lr=-1".parse().unwrap()], None, "d".into()).unwrap_err().to_string().contains("--lr"));
    }

    #[test]
    fn a_precision_named_on_resume_drops_autos_reason_for_the_old_one() {
        // `resume --set precision=fp32` on a run auto put in bf16: its start line said
        // "fp32 (auto: bf16: ...)", and `summary` called the precision auto's.
        let mut c = paper(Depth::PAPER[4], "d".into());
        (c.precision, c.precision_auto) = (Precision::Bf16, true);
        c.precision_why = Some("auto: bf16: bf16 219 vs fp32 117 img/s".into());
        let named = set(&c, &["precision=fp32"]).unwrap();
        assert_eq!((named.precision, named.precision_auto, named.precision_why), (Precision::Fp32, false, None));
        let auto = set(&c, &["precision=auto"]).unwrap();
        assert_eq!(auto.precision_why, c.precision_why, "auto keeps its reason until it chooses again");
    }

    #[test]
    fn a_data_folder_named_by_digits_is_a_folder() {
        // Read as JSON, `2024` was a number, and a number is no folder: the setting was refused.
        let c = paper(Depth::PAPER[0], "d".into());
        assert_eq!(set(&c, &["data_dir=2024"]).unwrap().data_dir, PathBuf::from("2024"));
        assert_eq!(set(&c, &["init_from=7"]).unwrap().init_from, Some(PathBuf::from("7")));
    }

    #[test]
    fn a_warmup_without_an_error_bar_can_be_given_one() {
        // A warm-up of exactly its iterations (`until_error` null, as older configs have it): the
        // JSON walk took the null for a missing field and refused `warmup.until_error=...`.
        let mut c = paper(Depth::PAPER[4], "d".into());
        c.warmup = Some(Warmup { iters: 400, lr: 0.01, until_error: None });
        assert_eq!(set(&c, &["warmup.until_error=80"]).unwrap().warmup.unwrap().until_error, Some(80.0));
        let none = RunConfig { warmup: None, ..c };
        let err = set(&none, &["warmup.lr=0.005"]).unwrap_err().to_string();
        assert!(err.contains("warmup.lr=0.005") && err.contains("no warm-up"), "{err}");
    }

    #[test]
    fn counts_beyond_their_bounds_name_the_flag_and_the_range() {
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.threads = Some(99_999_999_999)), "--threads must be a whole number from 1 to 1024"),
            (Box::new(|c| c.threads = Some(0)), "--threads"),
            (Box::new(|c| c.iters = u64::MAX), "--iters must be a whole number from 1 to 1000000000"),
            (Box::new(|c| c.batch_size = usize::MAX), "--batch-size must be a whole number from 1 to 50000"),
            (Box::new(|c| c.eval_every = u64::MAX), "--eval-every"),
            (Box::new(|c| c.checkpoint_every = u64::MAX), "--checkpoint-every"),
            (Box::new(|c| c.keep_checkpoints = usize::MAX), "--keep-checkpoints"),
            (Box::new(|c| c.val_split = 50_000), "--val-split must be a whole number from 0 to 49999"),
            (Box::new(|c| c.warmup = Some(Warmup { iters: u64::MAX, lr: 0.01, until_error: None })), "--warmup-iters"),
        ];
        assert_each_refused(cases);
    }

    #[test]
    fn scaled_milestones_of_the_largest_count_do_not_overflow() {
        assert_eq!(scaled_milestones(u64::MAX), vec![u64::MAX / 2, (u64::MAX / 4) * 3 + 2]);
    }

    #[test]
    fn short_runs_keep_the_papers_shape() {
        assert_eq!(scaled_milestones(64_000), vec![32_000, 48_000]);
        assert_eq!(scaled_milestones(2000), vec![1000, 1500]);
        assert_eq!(scaled_milestones(2), vec![1]);
        assert_eq!(scaled_milestones(1), Vec::<u64>::new());
    }

    #[test]
    fn only_depths_of_the_form_6n_plus_2_exist() {
        for bad in [0, 2, 7, 9, 21, 1203] {
            let err = Depth::new(bad).unwrap_err().to_string();
            assert!(err.contains("20, 32, 44, 56, 110, 1202"), "{err}");
        }
        assert_eq!(Depth::new(20).map(Depth::blocks_per_stage), Ok(3));
        assert_eq!(Depth::new(1202).map(Depth::blocks_per_stage), Ok(200));
        assert!("deep".parse::<Depth>().is_err());
        assert!(serde_json::from_str::<Depth>("21").is_err());
        assert_eq!(serde_json::to_string(&Depth::PAPER[4]).unwrap(), "110");
    }

    #[test]
    fn growing_goes_only_deeper() {
        let [d20, d32, ..] = Depth::PAPER;
        assert_eq!(d20.grow_to(Shortcut::A, d32), Ok(d32));
        let err = d32.grow_to(Shortcut::A, d20).unwrap_err().to_string();
        assert!(err.contains("ResNet-32 into ResNet-20") && err.contains("deeper"), "{err}");
        assert!(d20.grow_to(Shortcut::B, d20).is_err());
    }

    #[test]
    fn a_plain_network_is_never_grown_and_the_refusal_says_to_start_fresh() {
        let [d20, d32, ..] = Depth::PAPER;
        let err = d20.grow_to(Shortcut::None, d32).unwrap_err().to_string();
        assert!(err.contains("Plain-20 into Plain-32") && err.contains("fresh"), "{err}");
    }

    #[test]
    fn networks_without_shortcuts_are_named_plain() {
        let d56 = Depth::new(56).unwrap();
        assert_eq!(network_name(d56, Shortcut::None), "Plain-56");
        assert_eq!(network_name(d56, Shortcut::A), "ResNet-56");
        assert_eq!(network_name(d56, Shortcut::B), "ResNet-56");
        assert_eq!("none".parse::<Shortcut>(), Ok(Shortcut::None));
    }

    #[test]
    fn device_strings_are_parsed_once_and_written_back_as_given() {
        for (text, spec) in [
            ("auto", DeviceSpec::Auto),
            ("cpu", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(None)),
            ("cuda:0", DeviceSpec::Cuda(Some(0))),
            ("CUDA:12", DeviceSpec::Cuda(Some(12))),
        ] {
            assert_eq!(text.parse::<DeviceSpec>(), Ok(spec), "{text}");
            assert_eq!(spec.to_string(), text.to_ascii_lowercase());
        }
        for bad in ["gpu", "cuda:", "cuda:x", "tpu", "cuda0", ""] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&DeviceSpec::Cuda(Some(1))).unwrap(), r#""cuda:1""#);
    }
}
