//! Evaluation: the whole test (or validation) split in large batches, eval mode, no gradients.

use crate::data::augment::Normalizer;
use crate::data::batches::eval_chunk;
use crate::data::cifar::Split;
use crate::model::ResNet;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

/// Images per forward pass when evaluating: no activations are kept, so large is cheap; but on
/// the CPU 2,500 and 5,000 were slower than 250-1,000 (`bench --only eval-sweep`, README Performance),
/// and 500 halves the peak memory of 1,000 at no loss of speed.
pub const EVAL_BATCH: usize = 500;

#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    pub loss: f64,
    /// Top-1 error in percent: wrong images over all images.
    pub error: f64,
    pub class_errors: Vec<f64>,
    pub images: usize,
}

pub fn evaluate(net: &ResNet, split: &Split, normalizer: &Normalizer, channels_last: bool) -> EvalResult {
    evaluate_in_batches(net, split, normalizer, channels_last, EVAL_BATCH)
}

/// [`evaluate`] with a chosen batch size (the benchmark compares several).
pub fn evaluate_in_batches(
    net: &ResNet,
    split: &Split,
    normalizer: &Normalizer,
    channels_last: bool,
    batch: usize,
) -> EvalResult {
    let batch = batch.max(1);
    tch::no_grad(|| {
        let n = split.len();
        let device = split.images.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut wrong_per_class = Tensor::zeros([10], (Kind::Int64, device));
        let mut per_class = Tensor::zeros([10], (Kind::Int64, device));
        let mut start = 0;
        while start < n {
            let end = (start + batch).min(n);
            let (images, labels) = eval_chunk(split, start, end, normalizer, channels_last);
            let logits = net.forward_t(&images, false);
            let loss =
                logits.log_softmax(-1, Kind::Float).nll_loss_nd::<Tensor>(&labels, None, tch::Reduction::Sum, -100);
            loss_sum += loss.to_kind(Kind::Double);
            let wrong = logits.argmax(-1, false).ne_tensor(&labels);
            wrong_per_class += labels.masked_select(&wrong).bincount::<Tensor>(None, 10);
            per_class += labels.bincount::<Tensor>(None, 10);
            start = end;
        }
        let wrong: Vec<i64> = Vec::try_from(wrong_per_class.to_device(tch::Device::Cpu)).unwrap_or_default();
        let total: Vec<i64> = Vec::try_from(per_class.to_device(tch::Device::Cpu)).unwrap_or_default();
        let wrong_all: i64 = wrong.iter().sum();
        EvalResult {
            loss: loss_sum.double_value(&[]) / n.max(1) as f64,
            error: 100.0 * wrong_all as f64 / n.max(1) as f64,
            class_errors: wrong
                .iter()
                .zip(&total)
                .map(|(&w, &t)| if t > 0 { 100.0 * w as f64 / t as f64 } else { 0.0 })
                .collect(),
            images: n,
        }
    })
}
