//! One field of a run's recipe given a value. `FIELDS` is the table of the recipe's fields, a row
//! each: its name, how its value reads from text, and where the value goes in a config. A new
//! run's flags, `resume --set`, a sweep's `--vary` and a recovery's lower rates all speak it.

use super::{Bound, ConfigError, Depth, DeviceSpec, PrecisionChoice, RunConfig, Shortcut, Warmup, bounds};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// A value a field holds, and its text: what `FIELD=VALUE` writes and the field reads back.
pub trait Shown: Any + Clone + PartialEq + Send + Sync {
    fn shown(&self) -> String;
}

/// Values whose `Display` is their text (for f64: Rust writes the shortest text that reads back
/// as the same number).
macro_rules! shown_as_displayed {
    ($($t:ty),*) => {$(
        impl Shown for $t {
            fn shown(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

shown_as_displayed!(u64, usize, f64, Depth, Shortcut, DeviceSpec, PrecisionChoice);

impl Shown for String {
    fn shown(&self) -> String {
        self.clone()
    }
}

impl Shown for PathBuf {
    fn shown(&self) -> String {
        self.display().to_string()
    }
}

impl Shown for Vec<u64> {
    fn shown(&self) -> String {
        format!("[{}]", self.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
    }
}

impl Shown for Warmup {
    fn shown(&self) -> String {
        serde_json::to_string(self).expect("a warm-up serialises")
    }
}

/// `null` for none.
impl<T: Shown> Shown for Option<T> {
    fn shown(&self) -> String {
        self.as_ref().map_or_else(|| "null".to_string(), T::shown)
    }
}

/// One field of a run's recipe: its name as `--set` and `--vary` say it (nested fields dotted:
/// `warmup.lr`), how its value reads from text, and how the value is put into a config (false: a
/// part of the warm-up, and the config has none).
pub struct Field<T> {
    pub name: &'static str,
    read: fn(&str) -> Result<T, String>,
    put: fn(&mut RunConfig, T) -> bool,
}

impl<T: Shown> Field<T> {
    /// This field set to `value`.
    pub fn to(&'static self, value: T) -> Setting {
        Setting { field: self, value: Arc::new(value) }
    }

    /// `text` read as this field's value; the error says why not.
    pub fn read(&self, text: &str) -> Result<T, String> {
        (self.read)(text)
    }
}

/// Puts `value` in `slot`: the `put` of most fields.
fn set<T>(slot: &mut T, value: T) -> bool {
    *slot = value;
    true
}

/// Puts `value` in a part of the config's warm-up, if it has one.
fn set_in_warmup<T>(config: &mut RunConfig, value: T, slot: fn(&mut Warmup) -> &mut T) -> bool {
    config.warmup.as_mut().is_some_and(|w| set(slot(w), value))
}

/// A whole number in `bound`; the error gives the range. Whoever shows it names the text and
/// where it came from (clap: the flag, or `--set`'s FIELD=VALUE; a sweep: its FIELD=VALUE).
fn count(text: &str, bound: Bound) -> Result<u64, String> {
    let value = text.trim();
    value.parse::<u64>().ok().filter(|&n| bound.check(n).is_ok()).ok_or_else(|| format!("must be {}", bound.range()))
}

/// A count held as a `usize`: its bound keeps it far below `usize::MAX`.
fn size(text: &str, bound: Bound) -> Result<usize, String> {
    count(text, bound).map(|n| n as usize)
}

fn number(text: &str) -> Result<f64, String> {
    text.trim().parse().map_err(|_| "expected a number".to_string())
}

/// `null` for none, else what `read` reads.
fn maybe<T>(text: &str, read: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if text.trim() == "null" { Ok(None) } else { read(text).map(Some) }
}

/// A value of one of the config's own types, read by its `FromStr`.
fn typed<T: FromStr<Err = ConfigError>>(text: &str) -> Result<T, String> {
    text.parse().map_err(|e: ConfigError| e.to_string())
}

fn depth(text: &str) -> Result<Depth, String> {
    match text.trim().parse::<u32>() {
        Ok(n) => Depth::new(n).map_err(|e| e.to_string()),
        Err(_) => Err(format!("must be a number, got {text:?}")),
    }
}

/// `30000,45000` or `[30000,45000]`; `[]` is no milestones at all.
fn milestones(text: &str) -> Result<Vec<u64>, String> {
    let text = text.trim();
    let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    let list = match inner {
        Some(list) if list.trim().is_empty() => Some(Vec::new()),
        _ => inner.unwrap_or(text).split(',').map(|t| t.trim().parse().ok()).collect(),
    };
    list.ok_or_else(|| "expected numbers separated by commas".to_string())
}

fn warmup(text: &str) -> Result<Option<Warmup>, String> {
    let warmup: Option<Warmup> = serde_json::from_str(text.trim())
        .map_err(|e| format!(r#"expected null or {{"iters":N,"lr":X,"until_error":E}} ({e})"#))?;
    if let Some(w) = warmup {
        // A part of the value: named, since the text shown is the whole warm-up.
        count(&w.iters.to_string(), bounds::WARMUP_ITERS).map_err(|why| format!("iters {why}"))?;
    }
    Ok(warmup)
}

/// The warm-up's error bar: a percentage, or `null` (or 0) for a warm-up of exactly its iterations.
fn until_error(text: &str) -> Result<Option<f64>, String> {
    Ok(maybe(text, number)?.filter(|&e| e != 0.0))
}

pub static DEPTH: Field<Depth> = Field { name: "depth", read: depth, put: |c, v| set(&mut c.depth, v) };
pub static SHORTCUT: Field<Shortcut> = Field { name: "shortcut", read: typed, put: |c, v| set(&mut c.shortcut, v) };
pub static ITERS: Field<u64> =
    Field { name: "iters", read: |t| count(t, bounds::ITERS), put: |c, v| set(&mut c.iters, v) };
pub static MILESTONES: Field<Vec<u64>> =
    Field { name: "milestones", read: milestones, put: |c, v| set(&mut c.milestones, v) };
pub static LR: Field<f64> = Field { name: "lr", read: number, put: |c, v| set(&mut c.lr, v) };
pub static MOMENTUM: Field<f64> = Field { name: "momentum", read: number, put: |c, v| set(&mut c.momentum, v) };
pub static WEIGHT_DECAY: Field<f64> =
    Field { name: "weight_decay", read: number, put: |c, v| set(&mut c.weight_decay, v) };
pub static BATCH_SIZE: Field<usize> =
    Field { name: "batch_size", read: |t| size(t, bounds::BATCH_SIZE), put: |c, v| set(&mut c.batch_size, v) };
/// The whole warm-up: `warmup=null` for none, or `warmup={"iters":1000,"lr":0.01}`.
pub static WARMUP: Field<Option<Warmup>> = Field { name: "warmup", read: warmup, put: |c, v| set(&mut c.warmup, v) };
pub static WARMUP_ITERS: Field<u64> = Field {
    name: "warmup.iters",
    read: |t| count(t, bounds::WARMUP_ITERS),
    put: |c, v| set_in_warmup(c, v, |w| &mut w.iters),
};
pub static WARMUP_LR: Field<f64> =
    Field { name: "warmup.lr", read: number, put: |c, v| set_in_warmup(c, v, |w| &mut w.lr) };
pub static WARMUP_UNTIL_ERROR: Field<Option<f64>> =
    Field { name: "warmup.until_error", read: until_error, put: |c, v| set_in_warmup(c, v, |w| &mut w.until_error) };
pub static VAL_SPLIT: Field<usize> =
    Field { name: "val_split", read: |t| size(t, bounds::VAL_SPLIT), put: |c, v| set(&mut c.val_split, v) };
pub static EVAL_EVERY: Field<u64> =
    Field { name: "eval_every", read: |t| count(t, bounds::EVAL_EVERY), put: |c, v| set(&mut c.eval_every, v) };
pub static CHECKPOINT_EVERY: Field<u64> = Field {
    name: "checkpoint_every",
    read: |t| count(t, bounds::CHECKPOINT_EVERY),
    put: |c, v| set(&mut c.checkpoint_every, v),
};
pub static KEEP_CHECKPOINTS: Field<usize> = Field {
    name: "keep_checkpoints",
    read: |t| size(t, bounds::KEEP_CHECKPOINTS),
    put: |c, v| set(&mut c.keep_checkpoints, v),
};
pub static SEED: Field<u64> = Field {
    name: "seed",
    read: |t| t.trim().parse().map_err(|_| "expected a whole number".to_string()),
    put: |c, v| set(&mut c.seed, v),
};
pub static DEVICE: Field<DeviceSpec> = Field { name: "device", read: typed, put: |c, v| set(&mut c.device, v) };
pub static THREADS: Field<Option<usize>> =
    Field { name: "threads", read: |t| maybe(t, |t| size(t, bounds::THREADS)), put: |c, v| set(&mut c.threads, v) };
/// Where the data set lies: any text is a folder's name (`data_dir=2024` included).
pub static DATA_DIR: Field<PathBuf> =
    Field { name: "data_dir", read: |t| Ok(PathBuf::from(t)), put: |c, v| set(&mut c.data_dir, v) };
/// `auto` is decided where the run trains, once its threads are set (`train::build`): fp32 until
/// then. A precision named outright is no longer auto's to change, and auto's reason for its
/// earlier choice no longer says why the run trains in it.
pub static PRECISION: Field<PrecisionChoice> = Field {
    name: "precision",
    read: typed,
    put: |c, v| {
        c.precision_auto = v == PrecisionChoice::Auto;
        if !c.precision_auto {
            c.precision_why = None;
        }
        set(&mut c.precision, v.named().unwrap_or_default())
    },
};
pub static INIT_FROM: Field<Option<PathBuf>> =
    Field { name: "init_from", read: |t| maybe(t, |t| Ok(PathBuf::from(t))), put: |c, v| set(&mut c.init_from, v) };
pub static PRECISION_WHY: Field<Option<String>> = Field {
    name: "precision_why",
    read: |t| maybe(t, |t| Ok(t.to_string())),
    put: |c, v| set(&mut c.precision_why, v),
};

/// Every field of a run's recipe, as `FIELD=VALUE` names it.
static FIELDS: [&dyn AnyField; 23] = [
    &DEPTH,
    &SHORTCUT,
    &ITERS,
    &MILESTONES,
    &LR,
    &MOMENTUM,
    &WEIGHT_DECAY,
    &BATCH_SIZE,
    &WARMUP,
    &WARMUP_ITERS,
    &WARMUP_LR,
    &WARMUP_UNTIL_ERROR,
    &VAL_SPLIT,
    &EVAL_EVERY,
    &CHECKPOINT_EVERY,
    &KEEP_CHECKPOINTS,
    &SEED,
    &DEVICE,
    &THREADS,
    &DATA_DIR,
    &PRECISION,
    &INIT_FROM,
    &PRECISION_WHY,
];

/// A field whatever its value's type: what a `Setting` holds, so that settings of every field
/// go in one list.
trait AnyField: Sync {
    fn name(&self) -> &'static str;
    fn read_setting(&'static self, text: &str) -> Result<Setting, String>;
    fn put_value(&self, config: &mut RunConfig, value: &dyn Any) -> bool;
    fn show(&self, value: &dyn Any) -> String;
    fn same(&self, a: &dyn Any, b: &dyn Any) -> bool;
}

impl<T: Shown> AnyField for Field<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn read_setting(&'static self, text: &str) -> Result<Setting, String> {
        self.read(text).map(|v| self.to(v))
    }
    // A setting's value is of its field's type: `Field::to` is the only way to make one.
    fn put_value(&self, config: &mut RunConfig, value: &dyn Any) -> bool {
        value.downcast_ref::<T>().is_some_and(|v| (self.put)(config, v.clone()))
    }
    fn show(&self, value: &dyn Any) -> String {
        value.downcast_ref::<T>().map(T::shown).unwrap_or_default()
    }
    fn same(&self, a: &dyn Any, b: &dyn Any) -> bool {
        a.downcast_ref::<T>() == b.downcast_ref::<T>()
    }
}

/// One field of a run's recipe given a value: what a flag, `resume --set FIELD=VALUE` and
/// `--vary` ask for and what a recovery lowers the learning rates with. Parsed once, where it is
/// typed; applied as the value it holds, never written out as text to be read back.
#[derive(Clone)]
pub struct Setting {
    field: &'static dyn AnyField,
    value: Arc<dyn Any + Send + Sync>,
}

/// Why a `FIELD=VALUE` is not a setting: the text as given and the reason.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{text}: {why}")]
pub struct SettingError {
    pub text: String,
    pub why: String,
}

/// As `resume --set` refuses it.
impl From<SettingError> for ConfigError {
    fn from(e: SettingError) -> ConfigError {
        ConfigError::Value { flag: "--set", why: e.to_string() }
    }
}

impl Setting {
    /// `field` set to the value `text` reads as. Counts are checked against their bounds here,
    /// before they can overflow their type; the rest of a config's checks come when it is applied.
    pub fn new(field: &str, text: &str) -> Result<Setting, SettingError> {
        let refuse = |why: String| SettingError { text: format!("{field}={text}"), why };
        let known = FIELDS.iter().find(|f| f.name() == field);
        known.ok_or_else(|| refuse(format!("no field {field} in a run's config")))?.read_setting(text).map_err(refuse)
    }

    /// The field it sets, as `--set` names it.
    pub fn field(&self) -> &'static str {
        self.field.name()
    }

    /// Its value as text, as `FIELD=VALUE` writes it.
    pub fn value_text(&self) -> String {
        self.field.show(self.value.as_ref())
    }

    /// Its value, if it sets `field`.
    pub fn value<T: Shown>(&self, field: &Field<T>) -> Option<&T> {
        (self.field() == field.name).then(|| self.value.downcast_ref()).flatten()
    }

    /// Whether it sets `field`.
    pub fn sets<T>(&self, field: &Field<T>) -> bool {
        self.field() == field.name
    }

    /// Whether it changes the network's shape: no checkpoint can be resumed with another.
    pub fn fixes_shape(&self) -> bool {
        self.sets(&DEPTH) || self.sets(&SHORTCUT)
    }

    /// Puts the value in `config`, unchecked; false: a part of the warm-up, and there is none.
    pub(super) fn put(&self, config: &mut RunConfig) -> bool {
        self.field.put_value(config, self.value.as_ref())
    }

    /// Sets the field in `config`, unchecked (`apply_settings` checks the whole). A part of the
    /// warm-up needs the warm-up.
    pub fn apply(&self, config: &mut RunConfig) -> Result<(), ConfigError> {
        if self.put(config) {
            return Ok(());
        }
        let why = format!(r#"{self}: the run has no warm-up; give it one whole: warmup={{"iters":N,"lr":X}}"#);
        Err(ConfigError::Value { flag: "--set", why })
    }
}

impl PartialEq for Setting {
    fn eq(&self, other: &Setting) -> bool {
        self.field() == other.field() && self.field.same(self.value.as_ref(), other.value.as_ref())
    }
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Setting({self})")
    }
}

/// `FIELD=VALUE`, read back by `FromStr` as the same setting.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}={}", self.field(), self.value_text())
    }
}

/// `FIELD=VALUE`, as `resume --set` takes it.
impl FromStr for Setting {
    type Err = SettingError;
    fn from_str(text: &str) -> Result<Setting, SettingError> {
        let (field, value) = text
            .split_once('=')
            .ok_or_else(|| SettingError { text: text.to_string(), why: "expected FIELD=VALUE".into() })?;
        Setting::new(field.trim(), value)
    }
}

/// `["lr", "0.05"]`, as a sweep's cells are written in `sweep.json`.
impl Serialize for Setting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.field(), self.value_text()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Setting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Setting, D::Error> {
        let (field, value) = <(String, String)>::deserialize(deserializer)?;
        Setting::new(&field, &value).map_err(serde::de::Error::custom)
    }
}
