//! The data set a session loads once, onto its device, and every run of the session shares.

use super::{Session, TrainError, device};
use crate::data::cifar::{self, Cifar10, Split};
use crate::protocol::{Event, RunConfig, now};
use std::path::PathBuf;
use tch::Device;

/// The data a session loads once and every run of it shares.
pub(crate) struct SessionData {
    pub train: Split,
    pub eval: Split,
    pub eval_set: crate::protocol::EvalSet,
    pub classes: Vec<String>,
    pub data_dir: PathBuf,
    pub val_split: usize,
}

impl Session {
    /// Loads the data set once; later runs of the session reuse it (same folder and split).
    /// The first load onto a CPU that `--device auto` chose beside GPUs libtorch cannot use
    /// says why first, as a warning: the session is about to train many times slower.
    pub fn load_data(
        &self,
        config: &RunConfig,
        device: Device,
        slot: &mut Option<SessionData>,
    ) -> Result<(), TrainError> {
        if let Some(d) = slot
            && d.data_dir == config.data_dir
            && d.val_split == config.val_split
            && d.train.images.device() == device
        {
            return Ok(());
        }
        if let Some(note) = device::auto_fallback(config.device, device) {
            self.emit(Event::Error { time: now(), message: note, fatal: false });
        }
        self.status(format!("loading CIFAR-10 from {}", config.data_dir.display()));
        let Cifar10 { train, test, classes } = cifar::load(&config.data_dir)?;
        let (train, eval, eval_set) = if config.val_split > 0 {
            let (trained, held_out) = hold_out(&train, config.val_split)?;
            (trained, held_out, crate::protocol::EvalSet::Validation)
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

/// The training images a run trains on and the ones its `val_split` holds out: the last
/// `val_split`, a fixed and documented choice.
pub(crate) fn hold_out(train: &Split, val_split: usize) -> Result<(Split, Split), TrainError> {
    let n = train.len();
    if val_split >= n {
        return Err(TrainError::ValSplit { split: val_split, images: n });
    }
    let keep = n - val_split;
    Ok((train.narrow(0, keep), train.narrow(keep, n)))
}
