//! One SGD step on one batch, the same function for the trainer and for `bench`: forward, loss,
//! backward, the loss and the number of correct predictions read back, then the update.

use super::TrainError;
use super::sgd::Sgd;
use crate::model::{ResNet, loss_and_correct};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// What one step measured on its batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The batch's mean cross-entropy, NaN or infinite when training diverged.
    pub loss: f64,
    /// Images of the batch classified right (top-1).
    pub correct: f64,
}

/// Trains `net` on one batch at learning rate `lr`. Reading the two numbers back is the step's
/// only synchronisation with the device, done as one transfer.
/// A non-finite loss updates nothing: the weights stay those the failing step started from, for
/// the divergence report to look at.
/// A failed read-back is an error, not a NaN: it would be reported as a divergence.
pub fn train_step(
    net: &ResNet,
    sgd: &mut Sgd,
    images: &Tensor,
    labels: &Tensor,
    lr: f64,
) -> Result<StepStats, TrainError> {
    let logits = net.forward_t(images, true);
    let (loss, correct) = loss_and_correct(&logits, labels);
    sgd.zero_grad();
    loss.backward();
    let stats = Tensor::stack(&[loss.detach().to_kind(Kind::Double), correct.to_kind(Kind::Double)], 0);
    let read = stats.f_to_device(Device::Cpu).and_then(|t| Vec::<f64>::try_from(&t));
    let read = read.map_err(|e| TrainError::torch("reading a training step's loss", e))?;
    let stats = StepStats { loss: read[0], correct: read[1] };
    if stats.loss.is_finite() {
        sgd.step(lr);
    }
    Ok(stats)
}
