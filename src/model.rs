//! The CIFAR-10 ResNet of He et al. (2016), section 4.2: depth 6n+2, three stages of n blocks.
//!
//! Variables are named `stem.conv`, `stem.bn`, `stage{s}.block{b}.{conv1,bn1,conv2,bn2}` and, with
//! option B, `stage{s}.block0.proj.{conv,bn}`; a deeper network of the same family contains every
//! name of a shallower one, which is what growing relies on.

use crate::config::{Depth, GrowError, Precision, Shortcut};
use tch::nn::{self, Init, ModuleT};
use tch::{Device, Kind, Tensor};

/// Filters of the three stages (on 32x32, 16x16 and 8x8 maps).
pub const STAGE_WIDTHS: [i64; 3] = [16, 32, 64];
pub const NUM_CLASSES: i64 = 10;

/// He (Kaiming) normal initialisation, as the paper's conv layers use.
const HE_NORMAL: Init = Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanIn,
    non_linearity: nn::init::NonLinearity::ReLU,
};

/// A bias-free convolution that runs in its input's precision: fp32 input takes tch's own path
/// unchanged; a bf16 or fp16 input gets the (fp32 master) weight cast to it, as autocast would.
#[derive(Debug)]
struct Conv {
    inner: nn::Conv2D,
    stride: i64,
    padding: i64,
}

impl Conv {
    fn new(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> Conv {
        let padding = k / 2;
        let cfg = nn::ConvConfig { stride, padding, bias: false, ws_init: HE_NORMAL, ..Default::default() };
        Conv { inner: nn::conv2d(p, cin, cout, k, cfg), stride, padding }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        if xs.kind() == Kind::Float {
            return xs.apply(&self.inner);
        }
        let ws = self.inner.ws.to_kind(xs.kind());
        xs.conv2d(&ws, None::<Tensor>, [self.stride; 2], [self.padding; 2], [1, 1], 1)
    }
}

fn conv3x3(p: nn::Path, cin: i64, cout: i64, stride: i64) -> Conv {
    Conv::new(p, cin, cout, 3, stride)
}

fn batch_norm(p: nn::Path, c: i64) -> nn::BatchNorm {
    // tch's default scale init is uniform in [0, 1); the paper (and PyTorch) start at 1.
    let cfg = nn::BatchNormConfig { ws_init: Init::Const(1.0), ..Default::default() };
    nn::batch_norm2d(p, c, cfg)
}

/// How a block adds its input when the shape changes.
#[derive(Debug)]
enum Projection {
    /// Same shape: plain identity.
    Identity,
    /// Option A: take every second pixel and zero-pad `extra` new channels.
    SubsamplePad { extra: i64 },
    /// Option B: 1x1 strided conv + BatchNorm (boxed: the other variants are small).
    Conv(Box<(Conv, nn::BatchNorm)>),
}

#[derive(Debug)]
struct Block {
    conv1: Conv,
    bn1: nn::BatchNorm,
    conv2: Conv,
    bn2: nn::BatchNorm,
    shortcut: Projection,
}

impl Block {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64, shortcut: Shortcut) -> Block {
        let shortcut = if stride == 1 && cin == cout {
            Projection::Identity
        } else {
            match shortcut {
                Shortcut::A => Projection::SubsamplePad { extra: cout - cin },
                Shortcut::B => {
                    let proj = p / "proj";
                    Projection::Conv(Box::new((
                        Conv::new(&proj / "conv", cin, cout, 1, stride),
                        batch_norm(&proj / "bn", cout),
                    )))
                }
            }
        };
        Block {
            conv1: conv3x3(p / "conv1", cin, cout, stride),
            bn1: batch_norm(p / "bn1", cout),
            conv2: conv3x3(p / "conv2", cout, cout, 1),
            bn2: batch_norm(p / "bn2", cout),
            shortcut,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // BatchNorm keeps fp32 parameters and statistics whatever the activations' precision.
        let ys = self.conv1.forward(xs).apply_t(&self.bn1, train).relu();
        let ys = self.conv2.forward(&ys).apply_t(&self.bn2, train);
        let short = match &self.shortcut {
            Projection::Identity => xs.shallow_clone(),
            Projection::SubsamplePad { extra } => {
                xs.slice(2, 0, None, 2).slice(3, 0, None, 2).constant_pad_nd([0, 0, 0, 0, 0, *extra])
            }
            Projection::Conv(proj) => proj.0.forward(xs).apply_t(&proj.1, train),
        };
        (ys + short).relu()
    }
}

/// The tensor kind that a run's precision computes convolutions and activations in.
pub fn compute_kind(precision: Precision) -> Kind {
    match precision {
        Precision::Fp32 => Kind::Float,
        Precision::Bf16 => Kind::BFloat16,
    }
}

/// A CIFAR ResNet whose variables live in the given `VarStore` path.
#[derive(Debug)]
pub struct ResNet {
    pub depth: Depth,
    pub shortcut: Shortcut,
    /// Precision of the convolutions and activations: `Kind::Float` (default), or
    /// `Kind::BFloat16` / `Kind::Half` for mixed precision (weights, BatchNorm, the classifier
    /// and the loss stay fp32).
    pub compute: Kind,
    stem_conv: Conv,
    stem_bn: nn::BatchNorm,
    stages: Vec<Vec<Block>>,
    fc: nn::Linear,
}

impl ResNet {
    /// Builds the network: three stages of `depth.blocks_per_stage()` blocks.
    pub fn new(p: &nn::Path, depth: Depth, shortcut: Shortcut) -> ResNet {
        let n = depth.blocks_per_stage();
        let mut cin = STAGE_WIDTHS[0];
        let mut stages = Vec::with_capacity(3);
        for (s, &width) in STAGE_WIDTHS.iter().enumerate() {
            let stage = (0..n)
                .map(|b| {
                    // Downsampling happens in the first block of stages 2 and 3.
                    let stride = if s > 0 && b == 0 { 2 } else { 1 };
                    let block =
                        Block::new(&(p / format!("stage{s}") / format!("block{b}")), cin, width, stride, shortcut);
                    cin = width;
                    block
                })
                .collect();
            stages.push(stage);
        }
        let fc_cfg = nn::LinearConfig { ws_init: HE_NORMAL, bs_init: Some(Init::Const(0.0)), bias: true };
        ResNet {
            depth,
            shortcut,
            compute: Kind::Float,
            stem_conv: conv3x3(p / "stem" / "conv", 3, STAGE_WIDTHS[0], 1),
            stem_bn: batch_norm(p / "stem" / "bn", STAGE_WIDTHS[0]),
            stages,
            fc: nn::linear(p / "fc", STAGE_WIDTHS[2], NUM_CLASSES, fc_cfg),
        }
    }

    /// The feature maps after the stem and after each stage, for inspection and tests.
    pub fn stage_outputs(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let mut out = Vec::with_capacity(4);
        let mut ys = self.stem_conv.forward(&xs.to_kind(self.compute)).apply_t(&self.stem_bn, train).relu();
        out.push(ys.shallow_clone());
        for stage in &self.stages {
            for block in stage {
                ys = block.forward_t(&ys, train);
            }
            out.push(ys.shallow_clone());
        }
        out
    }

    /// Names of the variables of the blocks that growing from `from_depth` adds, whose last
    /// BatchNorm scale is set to zero so that each new block starts as an exact identity.
    fn new_block_scales(&self, from_depth: Depth) -> Vec<String> {
        let old_n = from_depth.blocks_per_stage();
        let mut names = Vec::new();
        for (s, stage) in self.stages.iter().enumerate() {
            for b in old_n..stage.len() {
                names.push(format!("stage{s}.block{b}.bn2.weight"));
            }
        }
        names
    }
}

impl ResNet {
    /// Where, in forward order, the activations of `xs` first hold a NaN or an infinity: after
    /// the stem (`stem`), a block (`stage1.block3`, the variables' names) or the classifier
    /// (`fc`); `None` when they are finite throughout.
    pub fn first_non_finite(&self, xs: &Tensor, train: bool) -> Option<String> {
        let finite = |t: &Tensor| bool::try_from(t.isfinite().all()).unwrap_or(false);
        tch::no_grad(|| {
            let mut ys = self.stem_conv.forward(&xs.to_kind(self.compute)).apply_t(&self.stem_bn, train).relu();
            if !finite(&ys) {
                return Some("stem".to_string());
            }
            for (s, stage) in self.stages.iter().enumerate() {
                for (b, block) in stage.iter().enumerate() {
                    ys = block.forward_t(&ys, train);
                    if !finite(&ys) {
                        return Some(format!("stage{s}.block{b}"));
                    }
                }
            }
            let logits = ys.adaptive_avg_pool2d([1, 1]).flatten(1, -1).to_kind(Kind::Float).apply(&self.fc);
            (!finite(&logits)).then(|| "fc".to_string())
        })
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // `to_kind` to the input's own kind returns it unchanged (no copy) in fp32.
        let mut ys = self.stem_conv.forward(&xs.to_kind(self.compute)).apply_t(&self.stem_bn, train).relu();
        for stage in &self.stages {
            for block in stage {
                ys = block.forward_t(&ys, train);
            }
        }
        ys.adaptive_avg_pool2d([1, 1]).flatten(1, -1).to_kind(Kind::Float).apply(&self.fc)
    }
}

/// Trainable parameters of a network: what the paper's table counts.
pub fn trainable_params(vs: &nn::VarStore) -> u64 {
    vs.trainable_variables().iter().map(|t| t.numel() as u64).sum()
}

/// A network together with the store that owns its variables.
pub struct Network {
    pub vs: nn::VarStore,
    pub net: ResNet,
}

impl Network {
    pub fn new(depth: Depth, shortcut: Shortcut, device: Device) -> Network {
        let vs = nn::VarStore::new(device);
        let net = ResNet::new(&vs.root(), depth, shortcut);
        Network { vs, net }
    }

    /// Gives the 4-D conv weights channels-last strides (oneDNN and cuDNN pick faster kernels
    /// from the strides alone; tch has no memory-format argument).
    pub fn to_channels_last(&mut self) {
        tch::no_grad(|| {
            for (_, mut var) in self.vs.variables() {
                if var.dim() == 4 {
                    let cl = to_channels_last(&var);
                    var.set_data(&cl);
                }
            }
        });
    }

    /// A deeper network of the same family that computes exactly the same function: shared
    /// variables are copied, and each added block's last BatchNorm scale starts at zero, so the
    /// block adds nothing to its (non-negative, post-ReLU) input and passes it through unchanged.
    pub fn grow(&self, depth: Depth) -> Result<Network, GrowError> {
        let mut grown = Network::new(self.net.depth.grow_to(depth)?, self.net.shortcut, self.vs.device());
        let old = self.vs.variables();
        tch::no_grad(|| {
            for (name, mut var) in grown.vs.variables() {
                if let Some(src) = old.get(&name) {
                    var.copy_(src);
                }
            }
            let vars = grown.vs.variables();
            for name in grown.net.new_block_scales(self.net.depth) {
                if let Some(scale) = vars.get(&name) {
                    let _ = scale.shallow_clone().fill_(0.0);
                }
            }
        });
        if self.is_channels_last() {
            grown.to_channels_last();
        }
        Ok(grown)
    }

    fn is_channels_last(&self) -> bool {
        self.vs.variables().values().any(|v| v.dim() == 4 && v.stride()[1] == 1 && v.size()[1] > 1)
    }

    pub fn params(&self) -> u64 {
        trainable_params(&self.vs)
    }
}

/// The same values with NHWC strides, seen through NCHW sizes.
pub fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Cross-entropy loss and the number of correct top-1 predictions.
pub fn loss_and_correct(logits: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
    let loss = logits.cross_entropy_for_logits(labels);
    let correct = logits.argmax(-1, false).eq_tensor(labels).to_kind(Kind::Int64).sum(Kind::Int64);
    (loss, correct)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::PAPER_RESULTS;

    fn d(depth: u32) -> Depth {
        Depth::new(depth).unwrap()
    }

    #[test]
    fn parameter_counts_match_the_paper_table_for_every_depth() {
        for r in PAPER_RESULTS.iter() {
            let net = Network::new(Depth::new(r.depth).unwrap(), Shortcut::A, Device::Cpu);
            assert_eq!(net.params(), r.params, "ResNet-{}", r.depth);
        }
    }

    #[test]
    fn option_b_adds_two_projections() {
        let a = Network::new(d(20), Shortcut::A, Device::Cpu).params();
        let b = Network::new(d(20), Shortcut::B, Device::Cpu).params();
        // 1x1 convs 16->32 and 32->64, each followed by a BatchNorm (scale and shift).
        assert_eq!(b - a, 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64);
    }

    #[test]
    fn stages_halve_the_maps_and_widen_the_filters() {
        for shortcut in [Shortcut::A, Shortcut::B] {
            let net = Network::new(d(20), shortcut, Device::Cpu);
            let xs = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
            let shapes: Vec<Vec<i64>> = net.net.stage_outputs(&xs, false).iter().map(|t| t.size()).collect();
            assert_eq!(shapes, vec![vec![2, 16, 32, 32], vec![2, 16, 32, 32], vec![2, 32, 16, 16], vec![2, 64, 8, 8]]);
            assert_eq!(net.net.forward_t(&xs, false).size(), vec![2, 10]);
        }
    }

    #[test]
    fn convolutions_have_no_bias_and_batchnorm_starts_at_one() {
        let net = Network::new(d(20), Shortcut::A, Device::Cpu);
        let vars = net.vs.variables();
        assert!(!vars.keys().any(|k| k.contains("conv") && k.ends_with(".bias")));
        let scale = &vars["stage1.block0.bn1.weight"];
        assert_eq!(scale.min().double_value(&[]), 1.0);
        assert_eq!(scale.max().double_value(&[]), 1.0);
    }

    #[test]
    fn grown_network_computes_the_same_function() {
        tch::manual_seed(3);
        for shortcut in [Shortcut::A, Shortcut::B] {
            let small = Network::new(d(20), shortcut, Device::Cpu);
            // Non-trivial BatchNorm statistics, as after some training.
            let xs = Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu));
            let _ = small.net.forward_t(&xs, true);
            let grown = small.grow(d(32)).unwrap();
            assert_eq!(grown.net.depth, d(32));
            let before = small.net.forward_t(&xs, false);
            let after = grown.net.forward_t(&xs, false);
            // Relative: with other tests drawing from the shared generator in parallel, the
            // weights (and so the logits' size) vary from run to run; float rounding scales with it.
            let scale = before.abs().max().double_value(&[]).max(1.0);
            let diff = (before - after).abs().max().double_value(&[]);
            assert!(diff < 1e-5 * scale, "outputs differ by {diff} (logits up to {scale})");
        }
    }

    #[test]
    fn bf16_compute_stays_close_to_fp32_and_trains_fp32_weights() {
        let mut net = Network::new(d(8), Shortcut::A, Device::Cpu);
        let xs = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let exact = net.net.forward_t(&xs, false);
        net.net.compute = Kind::BFloat16;
        let mixed = net.net.forward_t(&xs, false);
        assert_eq!(mixed.kind(), Kind::Float, "logits and loss stay fp32");
        let scale = exact.abs().max().double_value(&[]);
        let diff = (&mixed - exact).abs().max().double_value(&[]);
        let (loss, _) = loss_and_correct(&mixed, &Tensor::from_slice(&[1i64, 2, 3, 4]));
        loss.backward();
        for (name, v) in net.vs.variables() {
            assert_eq!(v.kind(), Kind::Float, "{name}");
            assert!(!v.requires_grad() || v.grad().kind() == Kind::Float, "{name} gradient");
        }
        assert!(diff < 0.05 * scale.max(1.0), "bf16 differs by {diff} (scale {scale})");
    }

    #[test]
    fn channels_last_weights_give_the_same_outputs() {
        let mut net = Network::new(d(20), Shortcut::A, Device::Cpu);
        let xs = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let before = net.net.forward_t(&xs, false);
        net.to_channels_last();
        assert!(net.is_channels_last());
        let after = net.net.forward_t(&to_channels_last(&xs), false);
        let diff = (before - after).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "outputs differ by {diff}");
    }
}
