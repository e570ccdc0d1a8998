//! Evaluation: the whole test (or validation) split, or a checkpoint's training images, in large
//! batches, eval mode, no gradients.

use crate::config::{Precision, RunConfig};
use crate::confusion_matrix::{EXAMPLES, confusion, examples};
use crate::data::augment::Normalizer;
use crate::data::batches::eval_chunk;
use crate::data::cifar::Split;
use crate::model::{Network, Norm, ResNet, Responses, Unobserved};
use crate::train::TrainError;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Images per forward pass when evaluating: no activations are kept, so large is cheap; but on
/// the CPU 2,500 and 5,000 were slower than 250-1,000 (`bench --only eval-sweep`, docs/performance.md),
/// and 500 halves the peak memory of 1,000 at no loss of speed.
pub const EVAL_BATCH: usize = 500;

/// The evaluation images whose 3x3 layer responses are measured (Figure 7): the split's first
/// ones, the same for every run and every evaluation, observed in the evaluation's own forward
/// passes (no pass of their own).
pub const RESPONSE_IMAGES: usize = 500;

#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    pub loss: f64,
    /// Top-1 error in percent: wrong images over all images.
    pub error: f64,
    pub class_errors: Vec<f64>,
    /// `confusion[true][predicted]`: images of each class by the class they were taken for.
    pub confusion: Vec<Vec<u32>>,
    /// A few wrongly classified images, from the most confused pairs (see [`examples`]).
    pub misclassified: Vec<crate::protocol::Misclassified>,
    pub images: usize,
    /// Each 3x3 layer's response standard deviation over the first [`RESPONSE_IMAGES`] images,
    /// in forward order (see `model::Responses`).
    pub responses: Vec<f64>,
}

pub fn evaluate(
    net: &ResNet,
    split: &Split,
    normalizer: &Normalizer,
    channels_last: bool,
) -> Result<EvalResult, TrainError> {
    evaluate_in_batches(net, split, normalizer, channels_last, EVAL_BATCH)
}

/// [`evaluate`] with a chosen batch size (the benchmark compares several).
pub fn evaluate_in_batches(
    net: &ResNet,
    split: &Split,
    normalizer: &Normalizer,
    channels_last: bool,
    batch: usize,
) -> Result<EvalResult, TrainError> {
    let batch = batch.max(1);
    tch::no_grad(|| {
        let n = split.len();
        let device = split.images.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut wrong_per_class = Tensor::zeros([10], (Kind::Int64, device));
        let mut per_class = Tensor::zeros([10], (Kind::Int64, device));
        let mut predictions = Vec::with_capacity(n);
        let mut responses = Responses::default();
        let mut start = 0;
        while start < n {
            // The chunks that hold the response images end there, so that they are exactly those.
            let limit = if start < RESPONSE_IMAGES { RESPONSE_IMAGES.min(start + batch) } else { start + batch };
            let end = limit.min(n);
            let (images, labels) = eval_chunk(split, start, end, normalizer, channels_last);
            let logits = if start < RESPONSE_IMAGES {
                responses.start_pass();
                net.forward(&images, Norm::Eval, &mut responses)
            } else {
                net.forward(&images, Norm::Eval, &mut Unobserved)
            };
            let loss =
                logits.log_softmax(-1, Kind::Float).nll_loss_nd::<Tensor>(&labels, None, tch::Reduction::Sum, -100);
            loss_sum += loss.to_kind(Kind::Double);
            let predicted = logits.argmax(-1, false);
            predictions.push(predicted.shallow_clone());
            let wrong = predicted.ne_tensor(&labels);
            wrong_per_class += labels.masked_select(&wrong).bincount::<Tensor>(None, 10);
            per_class += labels.bincount::<Tensor>(None, 10);
            start = end;
        }
        // A failed read is an error: read as zeros, it would be a 0 % error saved as the best.
        let failed = |e| TrainError::torch("evaluation", e);
        let wrong: Vec<i64> = read(&wrong_per_class).map_err(failed)?;
        let total: Vec<i64> = read(&per_class).map_err(failed)?;
        let wrong_all: i64 = wrong.iter().sum();
        // One transfer at the end: every prediction (10,000 numbers), for the matrix and examples.
        let predicted: Vec<i64> =
            if predictions.is_empty() { Vec::new() } else { read(&Tensor::cat(&predictions, 0)).map_err(failed)? };
        let labels: Vec<i64> = read(&split.labels).map_err(failed)?;
        let loss: Vec<f64> = read(&loss_sum.reshape([1])).map_err(failed)?;
        let confusion = confusion(&labels, &predicted);
        let misclassified = examples(&labels, &predicted, &confusion, EXAMPLES);
        let responses = responses.std_by_layer().map_err(failed)?;
        Ok(EvalResult {
            loss: loss[0] / n.max(1) as f64,
            error: 100.0 * wrong_all as f64 / n.max(1) as f64,
            class_errors: wrong
                .iter()
                .zip(&total)
                .map(|(&w, &t)| if t > 0 { 100.0 * w as f64 / t as f64 } else { 0.0 })
                .collect(),
            confusion,
            misclassified,
            images: n,
            responses,
        })
    })
}

/// Which images `eval` computes a checkpoint's error on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalImages {
    /// The 10,000 test images.
    #[default]
    Test,
    /// The training images the run trained on (those its `val_split` did not hold out), as
    /// they are, without crops or flips: the error of the weights on what they were fitted to,
    /// where the training error the log records is each step's batch, augmented, with the
    /// batch's own BatchNorm statistics and the weights of that step.
    Train,
}

impl EvalImages {
    pub fn name(self) -> &'static str {
        match self {
            EvalImages::Test => "test",
            EvalImages::Train => "train",
        }
    }
}

/// A checkpoint's weights evaluated on the test split (or the training images).
pub struct CheckpointEval {
    pub config: RunConfig,
    /// Iterations done when it was written.
    pub iter: u64,
    /// What it was computed in.
    pub precision: Precision,
    pub result: EvalResult,
}

/// Evaluates the weights in the checkpoint at `path` on the test split as the run evaluated
/// itself while training, so that they give the errors and layer responses its log records: in
/// the precision it last trained in (bf16 rounds activations, which moves a few borderline
/// images; `precision` chooses another) and channels-last, the layout training keeps. The data is
/// read from `data_dir`, by default the folder the run trained on where it is, else this
/// machine's configured one; `images` chooses the test split or the training images.
pub fn evaluate_checkpoint(
    path: &Path,
    device: Device,
    precision: Option<Precision>,
    data_dir: Option<&Path>,
    images: EvalImages,
) -> Result<CheckpointEval, TrainError> {
    let ck = crate::train::checkpoint::read(path)?;
    let config = ck.state.config.clone();
    let mut network = Network::new(config.depth, config.shortcut, device);
    ck.load_into(&network)?;
    let precision = precision.unwrap_or(config.precision);
    network.to_channels_last();
    network.net.compute = crate::model::compute_kind(precision);
    let data_dir =
        data_dir.map(Path::to_path_buf).unwrap_or_else(|| crate::data::fetch::recorded_or_configured(&config.data_dir));
    let data = crate::data::cifar::load(&data_dir)?;
    let split = match images {
        EvalImages::Test => data.test,
        EvalImages::Train => crate::train::session_data::hold_out(&data.train, config.val_split)?.0,
    };
    let result = evaluate(&network.net, &split.to_device(device), &Normalizer::new(device), true)?;
    Ok(CheckpointEval { config, iter: ck.state.iter, precision, result })
}

/// A tensor's values on the host.
fn read<T: tch::kind::Element + Copy>(t: &Tensor) -> Result<Vec<T>, tch::TchError> {
    Vec::<T>::try_from(&t.f_to_device(tch::Device::Cpu)?)
}
