//! Why a run could not start or go on: each cause typed, said in one line.

use super::checkpoint::CheckpointError;
use super::device::DeviceError;
use super::sgd::BufferError;
use crate::config::{ConfigError, Depth, GrowError};
use crate::data::cifar::DataError;
use crate::rundir::RunDirError;
use crate::runlog::LogError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A run directory's `config.json` that reads but cannot train.
    #[error("{}: {}", .0.display(), .1)]
    StoredConfig(PathBuf, ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("--val-split {split} leaves no training images (there are {images})")]
    ValSplit { split: usize, images: usize },
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: no readable checkpoint to resume from{}", .dir.display(), .newest.as_ref().map(|e| format!(" (newest: {e})")).unwrap_or_default())]
    NoCheckpoint { dir: PathBuf, newest: Option<CheckpointError> },
    #[error(
        "{}: differs from the newest checkpoint's recipe in {}: resume continues the checkpoint's recipe; \
         change it on purpose with `resume --set FIELD=VALUE`",
        .file.display(), .fields.join(", ")
    )]
    ConfigEdited { file: PathBuf, fields: Vec<String> },
    #[error("{}: checkpoint is of ResNet-{checkpoint}, the run is ResNet-{run}", .dir.display())]
    DepthMismatch { dir: PathBuf, checkpoint: Depth, run: Depth },
    #[error(transparent)]
    Grow(#[from] GrowError),
    #[error(transparent)]
    Memory(#[from] crate::memory::TooBig),
    #[error(transparent)]
    Interchange(#[from] crate::interchange::InterchangeError),
    #[error("checkpoint does not fit the run: {0}")]
    Buffers(#[from] BufferError),
    #[error("the batch preparation thread stopped{}", .0.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    BatchThread(Option<String>),
}
