//! One SGD step on one batch, the same function for the trainer and for `bench`: forward, loss,
//! backward and the update, launched without waiting for the device; the step's loss and number of
//! correct predictions stay on the device until they are read back, several steps at once.

use super::TrainError;
use super::sgd::Sgd;
use crate::model::{ResNet, loss_and_correct};
use std::sync::atomic::{AtomicU64, Ordering};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// Read-backs of step figures in this process: the tests check that a run makes one per window.
static READ_BACKS: AtomicU64 = AtomicU64::new(0);

/// How many times step figures have been read back to the host in this process.
pub fn read_backs() -> u64 {
    READ_BACKS.load(Ordering::Relaxed)
}

/// What one step measured on its batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The batch's mean cross-entropy, NaN or infinite when training diverged.
    pub loss: f64,
    /// Images of the batch classified right (top-1).
    pub correct: f64,
}

/// Whether every step since the guard was made had a finite loss. A step whose loss is not
/// finite updates nothing, and neither does any step after it: the weights stay those the first
/// failing step started from, for the divergence report to look at.
pub enum Guard {
    /// Checked on the host at once, for a window of one step (a CPU, `bench`): reading the loss
    /// costs nothing there, and a plain update skipped on the host spares copying every weight.
    OnHost { healthy: bool },
    /// Kept as a boolean on the device, for longer windows: the update is applied under it
    /// (`Sgd::step_where`), so the host learns of a failure only when it reads the figures back.
    OnDevice { healthy: Option<Tensor> },
}

impl Guard {
    /// The guard for a window of `read_every` steps.
    pub fn for_window(read_every: u64) -> Guard {
        if read_every <= 1 { Guard::OnHost { healthy: true } } else { Guard::OnDevice { healthy: None } }
    }

    /// Updates `sgd` at `lr` if this step's `loss` and every step's before it were finite.
    fn update(&mut self, sgd: &mut Sgd, lr: f64, loss: &Tensor) -> Result<(), tch::TchError> {
        let finite = loss.f_isfinite()?;
        match self {
            Guard::OnHost { healthy } => {
                *healthy = *healthy && bool::try_from(&finite)?;
                if *healthy {
                    sgd.step(lr);
                }
            }
            Guard::OnDevice { healthy } => {
                let apply = match healthy.as_ref() {
                    Some(h) => h.f_logical_and(&finite)?,
                    None => finite,
                };
                sgd.step_where(lr, &apply);
                *healthy = Some(apply);
            }
        }
        Ok(())
    }
}

/// Launches one training step on `net` with `images` at learning rate `lr` and returns its
/// figures, unread: the loss and the correct count as two f64 values on the device
/// ([`read_back`] turns them into [`StepStats`]). The update is kept only while `guard` holds.
pub fn launch_step(
    net: &ResNet,
    sgd: &mut Sgd,
    images: &Tensor,
    labels: &Tensor,
    lr: f64,
    guard: &mut Guard,
) -> Result<Tensor, TrainError> {
    let failed = |e| TrainError::torch("a training step", e);
    sgd.zero_grad();
    let (loss, correct) = if crate::fused::applies(net, images) {
        crate::fused::forward_backward(net, images, labels)
            .map_err(|e| TrainError::torch("the fused training pass", e))?
    } else {
        let logits = net.forward_t(images, true);
        let (loss, correct) = loss_and_correct(&logits, labels);
        loss.f_backward().map_err(failed)?;
        (loss, correct)
    };
    let loss = loss.detach();
    guard.update(sgd, lr, &loss).map_err(failed)?;
    Tensor::f_stack(&[loss.to_kind(Kind::Double), correct.to_kind(Kind::Double)], 0).map_err(failed)
}

/// Reads `parts` (f64 tensors on the device: step figures, health squares) back to the host as
/// one transfer: the only point where the host waits for the device's queue.
/// A failed read-back is an error, not a NaN: it would be reported as a divergence.
pub fn read_back(parts: &[Tensor]) -> Result<Vec<f64>, TrainError> {
    READ_BACKS.fetch_add(1, Ordering::Relaxed);
    let read = Tensor::f_cat(parts, 0).and_then(|t| t.f_to_device(Device::Cpu)).and_then(|t| Vec::<f64>::try_from(&t));
    read.map_err(|e| TrainError::torch("reading training steps' losses back", e))
}

/// Trains `net` on one batch and reads its figures back at once: for `bench` and the precision
/// probe, which time single steps. A non-finite loss updates nothing.
pub fn train_step(
    net: &ResNet,
    sgd: &mut Sgd,
    images: &Tensor,
    labels: &Tensor,
    lr: f64,
) -> Result<StepStats, TrainError> {
    let figures = launch_step(net, sgd, images, labels, lr, &mut Guard::for_window(1))?;
    let read = read_back(&[figures])?;
    Ok(StepStats { loss: read[0], correct: read[1] })
}
