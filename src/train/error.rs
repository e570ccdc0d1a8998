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
    /// A libtorch operation failed: what the trainer was doing, libtorch's first line, and what
    /// to try when the device ran out of memory.
    #[error("{what} failed: libtorch: {message}{}", torch_hint(.message))]
    Torch { what: &'static str, message: String },
}

impl TrainError {
    /// `what` failed with libtorch's `error`, said in one line.
    pub fn torch(what: &'static str, error: tch::TchError) -> TrainError {
        let text = error.to_string();
        let text = text.strip_prefix("Internal torch error: ").unwrap_or(&text);
        TrainError::Torch { what, message: text.lines().next().unwrap_or("").trim().to_string() }
    }
}

/// What to try after a libtorch failure: out of memory is the one a user can act on.
pub fn torch_hint(message: &str) -> &'static str {
    if message.to_ascii_lowercase().contains("out of memory") {
        "; try a smaller --batch-size, a shallower --depth or --precision bf16 (or free the device)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_failure_is_one_line_that_says_what_failed_and_out_of_memory_says_what_to_try() {
        let oom = tch::TchError::Torch("CUDA out of memory. Tried to allocate 2.00 GiB\nException raised from".into());
        let text = TrainError::torch("evaluation", oom).to_string();
        assert!(
            text.starts_with("evaluation failed: libtorch: CUDA out of memory. Tried to allocate 2.00 GiB"),
            "{text}"
        );
        assert!(text.contains("--batch-size") && !text.contains('\n') && !text.contains("Exception"), "{text}");
        let other = TrainError::torch("a training step", tch::TchError::Shape("bad".into())).to_string();
        assert_eq!(other, "a training step failed: libtorch: invalid shape: bad");
    }
}
