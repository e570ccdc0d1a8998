//! Checkpoint files: one safetensors file holding the model's variables, the SGD momentum
//! buffers and, in its header, the run's state as JSON with a checksum of the tensor bytes.
//!
//! Written to a temporary file, synced, renamed over the target and the directory synced, so a
//! kill at any moment leaves the old file or the new one, never a torn one.

use super::schedule::WarmupProgress;
use crate::model::Network;
use crate::protocol::RunConfig;
use crate::schema::{FormerName, Refusal, Schema, Stamp, Version};
use safetensors::{Dtype, View};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The schema stamped in a checkpoint's metadata (`schema` and `version`, as every file of ours);
/// checkpoints of earlier builds said `format: resnet-tui-checkpoint` and `version: "1"`.
pub const CHECKPOINT: Schema = Schema {
    name: "resnet-tui/checkpoint",
    version: Version::new(1, 0),
    former: &[FormerName { name: "resnet-tui-checkpoint", version: None }],
};
/// The metadata key that held the schema's name before the shared scheme.
const FORMER_NAME_KEY: &str = "format";

const MODEL_PREFIX: &str = "model/";
const MOMENTUM_PREFIX: &str = "momentum/";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: cannot read: {}", .0.display(), .1)]
    Unreadable(PathBuf, std::io::Error),
    #[error("{}: not a resnet-tui checkpoint ({})", .0.display(), .1)]
    NotACheckpoint(PathBuf, String),
    #[error("{}: checkpoint version {} is newer than this build reads ({}.x)", .0.display(), .1, CHECKPOINT.version.major)]
    Version(PathBuf, String),
    #[error("{}: damaged (checksum mismatch)", .0.display())]
    Damaged(PathBuf),
    #[error("{}: {}", .0.display(), .1)]
    Mismatch(PathBuf, String),
    #[error("{}: cannot write: {}", .0.display(), .1)]
    Write(PathBuf, std::io::Error),
}

/// The state that travels with the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub config: RunConfig,
    /// Iterations completed: training continues with iteration `iter`.
    pub iter: u64,
    /// Training seconds so far, pauses excluded.
    pub elapsed: f64,
    pub best_error: Option<f64>,
    pub best_iter: Option<u64>,
    /// The run this checkpoint belongs to.
    pub run: String,
    /// How far the warm-up got (absent in checkpoints written before it depended on the error).
    #[serde(default)]
    pub warmup: WarmupProgress,
}

/// A checkpoint read back: state and tensors by variable name, on the CPU.
pub struct Checkpoint {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    pub state: TrainState,
    pub model: HashMap<String, Tensor>,
    pub momentum: HashMap<String, Tensor>,
}

struct Bytes {
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_bytes(t: &Tensor) -> Bytes {
    let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let shape = t.size().iter().map(|&d| d as usize).collect();
    let numel = t.numel();
    let mut values = vec![0f32; numel];
    t.copy_data(&mut values, numel);
    Bytes { shape, data: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
}

/// CRC-32 over names and bytes, in name order.
fn checksum<'a>(items: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = crc32fast::Hasher::new();
    for (name, data) in items {
        h.update(name.as_bytes());
        h.update(data);
    }
    format!("{:08x}", h.finalize())
}

/// Serialises a checkpoint to bytes.
pub fn encode(state: &TrainState, model: &[(String, Tensor)], momentum: &[(String, Tensor)]) -> Vec<u8> {
    encode_stamped(&stamp_entries(), state, model, momentum)
}

/// This build's stamp as metadata entries: `schema` and `version`.
fn stamp_entries() -> [(&'static str, String); 2] {
    let stamp = CHECKPOINT.stamp();
    [("schema", stamp.schema), ("version", stamp.version.unwrap_or_default())]
}

/// Serialises a checkpoint under the given metadata stamp (a test writes an earlier build's).
fn encode_stamped(
    stamp: &[(&str, String)],
    state: &TrainState,
    model: &[(String, Tensor)],
    momentum: &[(String, Tensor)],
) -> Vec<u8> {
    let mut named: Vec<(String, Bytes)> = model
        .iter()
        .map(|(n, t)| (format!("{MODEL_PREFIX}{n}"), to_bytes(t)))
        .chain(momentum.iter().map(|(n, t)| (format!("{MOMENTUM_PREFIX}{n}"), to_bytes(t))))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut meta: HashMap<String, String> = stamp.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    meta.insert("state".to_string(), serde_json::to_string(state).expect("state serialises"));
    meta.insert("checksum".to_string(), checksum(named.iter().map(|(n, b)| (n.as_str(), b.data.as_slice()))));
    let bytes =
        safetensors::serialize(named.iter().map(|(n, b)| (n.as_str(), b)), Some(meta)).expect("tensors serialise");
    with_sorted_header(bytes)
}

/// safetensors writes the metadata in a `HashMap`'s order, which differs from one map to the next:
/// the same checkpoint written twice would differ in its bytes, and a repository would store a
/// snapshot's unchanged final weights again at every snapshot. The same header with its keys in
/// sorted order (serde_json's own maps are sorted), padded with spaces to the same length, as the
/// format pads it.
fn with_sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = &bytes[8..8 + len];
    let value: serde_json::Value = serde_json::from_slice(header).expect("safetensors writes JSON");
    let sorted = serde_json::to_vec(&value).expect("JSON serialises");
    // The same entries written the same way: never longer; kept as written if it were.
    if sorted.len() <= len {
        bytes[8..8 + sorted.len()].copy_from_slice(&sorted);
        bytes[8 + sorted.len()..8 + len].fill(b' ');
    }
    bytes
}

/// Parses checkpoint bytes; `path` is only used in messages. Never panics on bad input.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let not = |why: String| CheckpointError::NotACheckpoint(path.to_path_buf(), why);
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| not(e.to_string()))?;
    let meta = header.metadata().clone().ok_or_else(|| not("no metadata".into()))?;
    let name = meta.get("schema").or_else(|| meta.get(FORMER_NAME_KEY));
    let stamp = Stamp { schema: name.cloned().unwrap_or_default(), version: meta.get("version").cloned() };
    match CHECKPOINT.check(&stamp) {
        Ok(_) => {}
        Err(Refusal::Foreign) => return Err(not("unknown format".into())),
        Err(Refusal::Newer(version)) => return Err(CheckpointError::Version(path.to_path_buf(), version)),
    }
    let state: TrainState = serde_json::from_str(meta.get("state").ok_or_else(|| not("no state".into()))?)
        .map_err(|e| not(e.to_string()))?;
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| not(e.to_string()))?;
    let mut views: Vec<(String, safetensors::tensor::TensorView)> = tensors.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let sum = checksum(views.iter().map(|(n, v)| (n.as_str(), v.data())));
    if meta.get("checksum") != Some(&sum) {
        return Err(CheckpointError::Damaged(path.to_path_buf()));
    }
    let (mut model, mut momentum) = (HashMap::new(), HashMap::new());
    for (name, view) in views {
        if view.dtype() != Dtype::F32 {
            return Err(not(format!("{name} is not float32")));
        }
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, Kind::Float).map_err(|e| not(e.to_string()))?;
        if let Some(n) = name.strip_prefix(MODEL_PREFIX) {
            model.insert(n.to_string(), t);
        } else if let Some(n) = name.strip_prefix(MOMENTUM_PREFIX) {
            momentum.insert(n.to_string(), t);
        }
    }
    Ok(Checkpoint { path: path.to_path_buf(), state, model, momentum })
}

pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::Unreadable(path.to_path_buf(), e))?;
    decode(path, &bytes)
}

impl Checkpoint {
    /// Copies the model tensors into `network`, insisting on the same names and shapes.
    pub fn load_into(&self, network: &Network) -> Result<(), CheckpointError> {
        let not = |why: String| {
            let depth = self.state.config.depth;
            CheckpointError::Mismatch(self.path.clone(), format!("does not hold the ResNet-{depth} it names: {why}"))
        };
        let vars = network.vs.variables();
        for (name, var) in &vars {
            let src = self.model.get(name).ok_or_else(|| not(format!("it has no variable {name}")))?;
            if src.size() != var.size() {
                return Err(not(format!("{name} has shape {:?}, expected {:?}", src.size(), var.size())));
            }
            tch::no_grad(|| var.shallow_clone().copy_(src));
        }
        if let Some(extra) = self.model.keys().find(|k| !vars.contains_key(*k)) {
            return Err(not(format!("it has a variable {extra} this network lacks")));
        }
        Ok(())
    }
}

/// Writes a checkpoint's bytes atomically (see [`crate::atomic::write`]).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::atomic::write(path, bytes).map_err(|e| CheckpointError::Write(path.to_path_buf(), e))
}

/// File name of the periodic checkpoint after `iter` iterations; sorts by iteration.
pub fn periodic_name(iter: u64) -> String {
    format!("iter-{iter:08}.safetensors")
}

pub const BEST_NAME: &str = "best.safetensors";

/// Periodic checkpoints in `dir`, oldest first.
pub fn list_periodic(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let iter = name.strip_prefix("iter-")?.strip_suffix(".safetensors")?.parse().ok()?;
            Some((iter, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Removes all but the newest `keep` periodic checkpoints.
pub fn prune(dir: &Path, keep: usize) {
    let all = list_periodic(dir);
    let excess = all.len().saturating_sub(keep.max(1));
    for (_, path) in all.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Depth, DeviceSpec, Precision, Shortcut};

    pub fn config() -> RunConfig {
        RunConfig {
            depth: Depth::PAPER[0],
            shortcut: Shortcut::A,
            iters: 100,
            milestones: vec![50, 75],
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            batch_size: 8,
            warmup: None,
            val_split: 0,
            eval_every: 10,
            checkpoint_every: 10,
            keep_checkpoints: 3,
            seed: 1,
            device: DeviceSpec::Cpu,
            threads: None,
            data_dir: "/data".into(),
            // Not the default, so the round trips below show that it is kept.
            precision: Precision::Bf16,
            precision_auto: false,
            init_from: None,
            precision_why: None,
        }
    }

    fn sample() -> Vec<u8> {
        sample_stamped(&stamp_entries())
    }

    fn sample_stamped(stamp: &[(&str, String)]) -> Vec<u8> {
        let state = TrainState {
            config: config(),
            iter: 42,
            elapsed: 1.5,
            best_error: Some(12.5),
            best_iter: Some(40),
            run: "r".into(),
            warmup: Default::default(),
        };
        let model = vec![("w".to_string(), Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]))];
        let momentum = vec![("w".to_string(), Tensor::from_slice(&[0.5f32, 0.25, 0.0, -1.0]).view([2, 2]))];
        encode_stamped(stamp, &state, &model, &momentum)
    }

    #[test]
    fn the_same_checkpoint_is_written_as_the_same_bytes_every_time() {
        // Each map of metadata has its own random order: five writes agree only if it is sorted.
        let first = sample();
        for _ in 0..4 {
            assert!(sample() == first, "a second write of the same checkpoint differs");
        }
        let (_, header) = safetensors::SafeTensors::read_metadata(&first).unwrap();
        let keys: Vec<&String> = header.metadata().as_ref().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
    }

    #[test]
    fn round_trip_keeps_state_weights_and_momentum() {
        let ck = decode(Path::new("x"), &sample()).unwrap();
        assert_eq!(ck.state.iter, 42);
        assert_eq!(ck.state.config, config());
        assert_eq!(Vec::<f32>::try_from(ck.model["w"].flatten(0, -1)).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(Vec::<f32>::try_from(ck.momentum["w"].flatten(0, -1)).unwrap(), vec![0.5, 0.25, 0.0, -1.0]);
    }

    #[test]
    fn an_earlier_builds_stamp_reads_and_a_newer_major_or_another_format_is_refused_by_name() {
        let earlier = sample_stamped(&[("format", "resnet-tui-checkpoint".into()), ("version", "1".into())]);
        assert_eq!(decode(Path::new("x"), &earlier).unwrap().state.iter, 42);
        let minor = sample_stamped(&[("schema", "resnet-tui/checkpoint".into()), ("version", "1.4".into())]);
        assert_eq!(decode(Path::new("x"), &minor).unwrap().state.iter, 42);
        let newer = sample_stamped(&[("schema", "resnet-tui/checkpoint".into()), ("version", "2.0".into())]);
        let err = decode(Path::new("ck"), &newer).err().unwrap().to_string();
        assert_eq!(err, "ck: checkpoint version 2.0 is newer than this build reads (1.x)");
        let other = sample_stamped(&[("schema", "resnet-tui/sweep".into()), ("version", "1.0".into())]);
        let err = decode(Path::new("ck"), &other).err().unwrap().to_string();
        assert_eq!(err, "ck: not a resnet-tui checkpoint (unknown format)");
    }

    #[test]
    fn truncated_and_flipped_files_are_refused() {
        let bytes = sample();
        for cut in [0, 7, 8, 100, bytes.len() - 1] {
            assert!(decode(Path::new("x"), &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        let err = decode(Path::new("ck"), &flipped).err().unwrap().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for iter in [10, 20, 30, 40] {
            write(&dir.path().join(periodic_name(iter)), &sample()).unwrap();
        }
        prune(dir.path(), 2);
        let left: Vec<u64> = list_periodic(dir.path()).iter().map(|(i, _)| *i).collect();
        assert_eq!(left, vec![30, 40]);
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode(Path::new("x"), &bytes);
        }

        #[test]
        fn corrupted_checkpoints_never_panic(pos in 0usize..10_000, val in proptest::num::u8::ANY) {
            let mut bytes = sample();
            let at = pos % bytes.len();
            bytes[at] = val;
            let _ = decode(Path::new("x"), &bytes);
        }
    }
}
