//! The training pass written out for the CPU, activations in fp32 or bf16: the network's forward
//! and backward by hand, convolutions by libtorch (oneDNN), BatchNorm, the shortcut's addition and
//! the ReLUs by our fused kernels, the classifier and the loss by autograd. Leaves every
//! variable's gradient in its `.grad` and the BatchNorm running statistics updated, as
//! `loss.backward()` after `forward_t(images, true)` does. In bf16, as the autograd path: the
//! convolutions take the fp32 master weights cast to bf16, BatchNorm keeps fp32 parameters and
//! statistics, and the pooled features are cast to fp32 for the classifier.

use super::ffi::{accumulate_grad, conv_backward};
use super::kernels::{self, GradCoefficients, Lanes, Level, Residual, bf16};
use super::profile::{Work, timed};
use crate::model::{BlockParts, ConvParts, ResNet, ShortcutParts, loss_and_correct, to_channels_last};
use tch::nn::{self, BatchNormConfig};
use tch::{Device, Kind, TchError, Tensor};

/// Whether `t` is a dense CPU tensor of `kind`, four dimensions, in channels-last order.
fn is_dense_channels_last(t: &Tensor, kind: Kind) -> bool {
    if t.dim() != 4 || t.kind() != kind || t.device() != Device::Cpu {
        return false;
    }
    let (size, stride) = (t.size(), t.stride());
    let (c, h, w) = (size[1], size[2], size[3]);
    let want = [h * w * c, 1, w * c, c];
    (0..4).all(|d| size[d] == 1 || stride[d] == want[d])
}

/// `t` itself when dense channels-last of `E`'s kind, else a channels-last copy of that kind.
fn conform<E: Lanes>(t: Tensor) -> Tensor {
    if is_dense_channels_last(&t, E::KIND) { t } else { to_channels_last(&t.to_kind(E::KIND)) }
}

/// The values of a dense CPU tensor of `E`'s kind (fp32 parameters: `f32`), in memory order.
///
/// # Safety
/// `t` is dense, on the CPU and of `E`'s kind, and nothing writes it while the slice lives.
unsafe fn values<E>(t: &Tensor) -> &[E] {
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const E, t.numel()) }
}

/// The values of a dense CPU tensor of `E`'s kind, to write.
///
/// # Safety
/// As [`values`], and nothing else reads or writes it while the slice lives.
#[allow(clippy::mut_from_ref)]
unsafe fn values_mut<E>(t: &Tensor) -> &mut [E] {
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut E, t.numel()) }
}

fn f32s(v: impl IntoIterator<Item = f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

fn bn_params(bn: &nn::BatchNorm) -> Result<(&Tensor, &Tensor), TchError> {
    match (bn.ws.as_ref(), bn.bs.as_ref()) {
        (Some(w), Some(b)) => Ok((w, b)),
        _ => Err(TchError::Torch("the fused pass needs BatchNorm with scale and shift".into())),
    }
}

/// A BatchNorm's forward on a batch: its input (the convolution's output, which its backward
/// overwrites with its own gradient), the batch's statistics, and the coefficients of
/// `a * y + b`.
struct BnForward<'a, E> {
    bn: &'a nn::BatchNorm,
    y: Tensor,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    stored: std::marker::PhantomData<E>,
}

impl<'a, E: Lanes> BnForward<'a, E> {
    /// The batch's statistics of `y`, and the running statistics updated from them as PyTorch
    /// does: `(1 - momentum) * running + momentum * batch`, the variance unbiased.
    fn new(level: Level, bn: &'a nn::BatchNorm, y: Tensor) -> Result<BnForward<'a, E>, TchError> {
        let config = BatchNormConfig::default();
        let (gamma, beta) = bn_params(bn)?;
        let c = y.size()[1] as usize;
        let rows = y.numel() / c;
        // SAFETY: `conform`ed activations, read only.
        let moments = timed(Work::KernelsForward, || unsafe { kernels::moments::<E>(level, values(&y), c) });
        // SAFETY: the BatchNorm's own dense fp32 CPU vectors, read only.
        let (gamma, beta) = unsafe { (values::<f32>(gamma), values::<f32>(beta)) };
        let invstd: Vec<f64> = moments.var.iter().map(|v| 1.0 / (v + config.eps).sqrt()).collect();
        let a: Vec<f64> = gamma.iter().zip(&invstd).map(|(&g, s)| f64::from(g) * s).collect();
        let b: Vec<f64> = beta.iter().zip(&a).zip(&moments.mean).map(|((&bt, a), m)| f64::from(bt) - m * a).collect();
        let m = config.momentum;
        let unbias = rows as f64 / (rows as f64 - 1.0).max(1.0);
        // SAFETY: the running statistics are dense fp32 CPU vectors of `c` values, ours alone here.
        let (rm, rv) = unsafe { (values_mut(&bn.running_mean), values_mut(&bn.running_var)) };
        for ch in 0..c {
            rm[ch] = ((1.0 - m) * f64::from(rm[ch]) + m * moments.mean[ch]) as f32;
            rv[ch] = ((1.0 - m) * f64::from(rv[ch]) + m * moments.var[ch] * unbias) as f32;
        }
        let (mean, invstd) = (f32s(moments.mean), f32s(invstd.iter().copied()));
        Ok(BnForward { bn, y, mean, invstd, a: f32s(a), b: f32s(b), stored: std::marker::PhantomData })
    }

    /// `max(a * y + b + residual, 0)`, a new channels-last tensor.
    fn relu_of(&self, level: Level, residual: &Residual<E>) -> Tensor {
        let out = self.y.empty_like();
        let c = self.a.len();
        // SAFETY: `out` is a fresh tensor of `y`'s (dense channels-last) layout.
        timed(Work::KernelsForward, || unsafe {
            let norm = kernels::Affine { a: &self.a, b: &self.b };
            kernels::normalize::<E>(level, values(&self.y), norm, residual, values_mut(&out), c)
        });
        out
    }

    /// The backward pass: `g` becomes `gz = (g + res) * (out > 0)` (with `out` the ReLU's output,
    /// `mask`), the scale's and shift's gradients are accumulated, and `self.y` becomes the
    /// gradient of the BatchNorm's input, which is returned.
    fn backward(
        self,
        level: Level,
        g: &Tensor,
        res: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<Tensor, TchError> {
        let c = self.a.len();
        let rows = (self.y.numel() / c) as f64;
        let (gamma, beta) = bn_params(self.bn)?;
        // SAFETY: every tensor is a distinct dense channels-last CPU tensor of `E`'s kind (`conform`ed).
        let (sg, sgx) = timed(Work::KernelsBackward, || unsafe {
            let res = res.map(|r| values(r));
            let mask = mask.map(|m| values(m));
            let x = kernels::Normalised { y: values(&self.y), mean: &self.mean, invstd: &self.invstd };
            kernels::grad_reduce::<E>(level, values_mut(g), res, mask, &x, c)
        });
        tch::no_grad(|| -> Result<(), TchError> {
            accumulate_grad(gamma, &Tensor::from_slice(&f32s(sgx.iter().copied())))?;
            accumulate_grad(beta, &Tensor::from_slice(&f32s(sg.iter().copied())))
        })?;
        // SAFETY: the BatchNorm's dense fp32 scale, read only.
        let gamma = unsafe { values::<f32>(gamma) };
        let k: Vec<f32> = gamma.iter().zip(&self.invstd).map(|(g, s)| g * s).collect();
        let mg = f32s(sg.iter().map(|s| s / rows));
        let mgx = f32s(sgx.iter().map(|s| s / rows));
        let co = GradCoefficients { mean: &self.mean, invstd: &self.invstd, k: &k, mg: &mg, mgx: &mgx };
        // SAFETY: `g` (now gz) and `self.y` are distinct; `self.y` is ours alone from here.
        timed(Work::KernelsBackward, || unsafe {
            kernels::grad_apply::<E>(level, values(g), values_mut(&self.y), &co, c)
        });
        Ok(self.y)
    }
}

/// The convolution's weight in `E`'s kind: the fp32 master weight itself, or a bf16 copy of it.
fn weight<E: Lanes>(p: &ConvParts) -> Result<Tensor, TchError> {
    p.weight.f_to_kind(E::KIND)
}

fn conv<E: Lanes>(x: &Tensor, p: &ConvParts) -> Result<Tensor, TchError> {
    let w = weight::<E>(p)?;
    let y = timed(Work::ConvForward, || x.f_conv2d(&w, None::<Tensor>, [p.stride; 2], [p.padding; 2], [1, 1], 1))?;
    Ok(conform::<E>(y))
}

/// The convolution's weight gradient accumulated into its `.grad`; its input's gradient returned
/// when `need_input`.
fn conv_back<E: Lanes>(g: &Tensor, x: &Tensor, p: &ConvParts, need_input: bool) -> Result<Option<Tensor>, TchError> {
    let w = weight::<E>(p)?;
    let (gx, gw) = timed(Work::ConvBackward, || conv_backward(g, x, &w, p.stride, p.padding, need_input))?;
    tch::no_grad(|| accumulate_grad(p.weight, &gw))?;
    Ok(gx.map(conform::<E>))
}

/// What a block's forward keeps for its backward.
struct BlockSaved<'a, E> {
    parts: BlockParts<'a>,
    input: Tensor,
    bn1: BnForward<'a, E>,
    hidden: Tensor,
    bn2: BnForward<'a, E>,
    projection: Option<BnForward<'a, E>>,
    output: Tensor,
}

fn block_forward<'a, E: Lanes>(level: Level, parts: BlockParts<'a>, x: Tensor) -> Result<BlockSaved<'a, E>, TchError> {
    let bn1 = BnForward::new(level, parts.bn1, conv::<E>(&x, &parts.conv1)?)?;
    let hidden = bn1.relu_of(level, &Residual::None);
    let bn2 = BnForward::new(level, parts.bn2, conv::<E>(&hidden, &parts.conv2)?)?;
    let mut projection = None;
    let output = {
        // SAFETY: `x` and the projection's output are dense channels-last and only read here.
        let xs = unsafe { values(&x) };
        let residual = match &parts.shortcut {
            ShortcutParts::None => Residual::None,
            ShortcutParts::Identity => Residual::Same(xs),
            ShortcutParts::SubsamplePad { .. } => {
                let (xsize, ysize) = (x.size(), bn2.y.size());
                let [cin, hin, win] = [xsize[1], xsize[2], xsize[3]].map(|v| v as usize);
                let [h, w] = [ysize[2], ysize[3]].map(|v| v as usize);
                Residual::Subsample { x: xs, cin, h, w, hin, win }
            }
            ShortcutParts::Projection(conv_parts, bn) => {
                projection = Some(BnForward::new(level, bn, conv::<E>(&x, conv_parts)?)?);
                let p = projection.as_ref().expect("just set");
                // SAFETY: as above.
                Residual::Affine { y: unsafe { values(&p.y) }, a: &p.a, b: &p.b }
            }
        };
        bn2.relu_of(level, &residual)
    };
    Ok(BlockSaved { parts, input: x, bn1, hidden, bn2, projection, output })
}

/// A block's backward from the gradient of its output, `g + res`; returns the gradient of its
/// input in the same two parts (the second, the shortcut's, `None` when folded in already).
fn block_backward<E: Lanes>(
    level: Level,
    s: BlockSaved<E>,
    g: Tensor,
    res: Option<Tensor>,
) -> Result<(Tensor, Option<Tensor>), TchError> {
    let BlockSaved { parts, input, bn1, hidden, bn2, projection, output } = s;
    // `g` becomes the gradient at the addition (gz), which the shortcut passes on.
    let d2 = bn2.backward(level, &g, res.as_ref(), Some(&output))?;
    let gh = conv_back::<E>(&d2, &hidden, &parts.conv2, true)?.expect("asked for");
    let d1 = bn1.backward(level, &gh, None, Some(&hidden))?;
    let gx = conv_back::<E>(&d1, &input, &parts.conv1, true)?.expect("asked for");
    match parts.shortcut {
        ShortcutParts::None => Ok((gx, None)),
        ShortcutParts::Identity => Ok((gx, Some(g))),
        ShortcutParts::SubsamplePad { extra } => {
            let cin = g.size()[1] - extra;
            tch::no_grad(|| {
                let mut at = gx.slice(2, 0, None, 2).slice(3, 0, None, 2).narrow(1, 0, cin);
                at.f_add_(&g.narrow(1, 0, cin)).map(|_| ())
            })?;
            Ok((gx, None))
        }
        ShortcutParts::Projection(conv_parts, _) => {
            let p = projection.expect("a projection block keeps its projection's BatchNorm");
            let dp = p.backward(level, &g, None, None)?;
            let gp = conv_back::<E>(&dp, &input, &conv_parts, true)?.expect("asked for");
            Ok((gx, Some(gp)))
        }
    }
}

/// One forward and backward pass of `net` on a channels-last CPU batch, in the network's compute
/// precision (fp32 or bf16): the loss and the number of correct predictions (tensors, not read
/// back), every variable's gradient added to its `.grad` (zero them first), and the BatchNorm
/// running statistics updated.
pub fn forward_backward(net: &ResNet, images: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor), TchError> {
    match net.compute {
        Kind::Float => forward_backward_as::<f32>(net, images, labels),
        Kind::BFloat16 => forward_backward_as::<bf16>(net, images, labels),
        other => Err(TchError::Torch(format!("the fused pass computes in fp32 or bf16, not {other:?}"))),
    }
}

fn forward_backward_as<E: Lanes>(net: &ResNet, images: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor), TchError> {
    let level = Level::best();
    let parts = net.parts();
    let images = conform::<E>(images.shallow_clone());
    let (stem, h0, blocks, last) = tch::no_grad(|| -> Result<_, TchError> {
        let stem = BnForward::<E>::new(level, parts.stem_bn, conv::<E>(&images, &parts.stem_conv)?)?;
        let h0 = stem.relu_of(level, &Residual::None);
        let mut blocks = Vec::with_capacity(parts.blocks.len());
        let mut x = h0.shallow_clone();
        for block in parts.blocks {
            let saved = block_forward::<E>(level, block, x)?;
            x = saved.output.shallow_clone();
            blocks.push(saved);
        }
        Ok((stem, h0, blocks, x))
    })?;
    // The classifier and the loss by autograd, from the pooled features as a leaf.
    let (pooled, loss, correct) = timed(Work::Head, || -> Result<_, TchError> {
        // Pooled in the activations' precision, then cast to the classifier's, as `ResNet::forward`.
        let pooled = tch::no_grad(|| last.adaptive_avg_pool2d([1, 1]).flatten(1, -1).to_kind(parts.fc.ws.kind()))
            .set_requires_grad(true);
        let logits = pooled.apply(parts.fc);
        let (loss, correct) = loss_and_correct(&logits, labels);
        loss.f_backward()?;
        Ok((pooled, loss, correct))
    })?;
    tch::no_grad(|| -> Result<(), TchError> {
        let size = last.size();
        let g = (pooled.grad() / (size[2] * size[3])).to_kind(E::KIND);
        let mut g = conform::<E>(g.view([size[0], size[1], 1, 1]).expand(&size, false));
        let mut res = None;
        for saved in blocks.into_iter().rev() {
            (g, res) = block_backward(level, saved, g, res)?;
        }
        let d0 = stem.backward(level, &g, res.as_ref(), Some(&h0))?;
        conv_back::<E>(&d0, &images, &parts.stem_conv, false)?;
        Ok(())
    })?;
    Ok((loss.detach(), correct))
}
