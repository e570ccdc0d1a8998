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
    /// `None` in a plain network: the block's output is its second BatchNorm's, rectified.
    shortcut: Option<Projection>,
}

impl Block {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64, shortcut: Shortcut) -> Block {
        let shortcut = match shortcut {
            Shortcut::None => None,
            _ if stride == 1 && cin == cout => Some(Projection::Identity),
            Shortcut::A => Some(Projection::SubsamplePad { extra: cout - cin }),
            Shortcut::B => {
                let proj = p / "proj";
                Some(Projection::Conv(Box::new((
                    Conv::new(&proj / "conv", cin, cout, 1, stride),
                    batch_norm(&proj / "bn", cout),
                ))))
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

    /// The block's output; `at` names it for the observer.
    fn forward(&self, xs: &Tensor, norm: Norm, at: Site, observer: &mut dyn Observer) -> Tensor {
        // BatchNorm keeps fp32 parameters and statistics whatever the activations' precision.
        let ys = norm.apply(&self.bn1, &self.conv1.forward(xs));
        observer.response(Layer { at, conv: 1 }, &ys);
        let ys = norm.apply(&self.bn2, &self.conv2.forward(&ys.relu()));
        observer.response(Layer { at, conv: 2 }, &ys);
        let out = match &self.shortcut {
            None => ys,
            Some(Projection::Identity) => ys + xs,
            Some(Projection::SubsamplePad { extra }) => {
                ys + xs.slice(2, 0, None, 2).slice(3, 0, None, 2).constant_pad_nd([0, 0, 0, 0, 0, *extra])
            }
            Some(Projection::Conv(proj)) => ys + norm.apply(&proj.1, &proj.0.forward(xs)),
        };
        out.relu()
    }
}

/// A convolution as a pass written by hand sees it (`crate::fused`): its weight and geometry.
pub struct ConvParts<'a> {
    pub weight: &'a Tensor,
    pub stride: i64,
    pub padding: i64,
}

impl Conv {
    fn parts(&self) -> ConvParts<'_> {
        ConvParts { weight: &self.inner.ws, stride: self.stride, padding: self.padding }
    }
}

/// A block's shortcut, as [`BlockParts`] shows it.
pub enum ShortcutParts<'a> {
    /// A plain network's block: no shortcut.
    None,
    Identity,
    /// Option A: every second pixel, `extra` zero channels appended.
    SubsamplePad {
        extra: i64,
    },
    /// Option B: a 1x1 strided convolution and its BatchNorm.
    Projection(ConvParts<'a>, &'a nn::BatchNorm),
}

/// A block's layers, in forward order, for a pass written by hand.
pub struct BlockParts<'a> {
    pub conv1: ConvParts<'a>,
    pub bn1: &'a nn::BatchNorm,
    pub conv2: ConvParts<'a>,
    pub bn2: &'a nn::BatchNorm,
    pub shortcut: ShortcutParts<'a>,
}

/// The whole network's layers, in forward order: what [`ResNet::forward`] computes, laid open.
pub struct Parts<'a> {
    pub stem_conv: ConvParts<'a>,
    pub stem_bn: &'a nn::BatchNorm,
    pub blocks: Vec<BlockParts<'a>>,
    pub fc: &'a nn::Linear,
}

impl Block {
    fn parts(&self) -> BlockParts<'_> {
        let shortcut = match &self.shortcut {
            None => ShortcutParts::None,
            Some(Projection::Identity) => ShortcutParts::Identity,
            Some(Projection::SubsamplePad { extra }) => ShortcutParts::SubsamplePad { extra: *extra },
            Some(Projection::Conv(proj)) => ShortcutParts::Projection(proj.0.parts(), &proj.1),
        };
        BlockParts { conv1: self.conv1.parts(), bn1: &self.bn1, conv2: self.conv2.parts(), bn2: &self.bn2, shortcut }
    }
}

/// How BatchNorm normalises in a forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Training: the batch's statistics, and the running statistics updated from them.
    Train,
    /// Evaluation: the running statistics.
    Eval,
    /// The batch's statistics with the running ones left as they are: a second look at a
    /// training batch (the divergence report) that must not count it twice.
    Inspect,
}

impl Norm {
    fn apply(self, bn: &nn::BatchNorm, xs: &Tensor) -> Tensor {
        match self {
            Norm::Train => xs.apply_t(bn, true),
            Norm::Eval => xs.apply_t(bn, false),
            Norm::Inspect => {
                // `batch_norm` builds every layer with the default config (tch keeps it private).
                let config = nn::BatchNormConfig::default();
                let (ws, bs) = (bn.ws.as_ref(), bn.bs.as_ref());
                let none = None::<Tensor>;
                Tensor::batch_norm(
                    xs,
                    ws,
                    bs,
                    none.as_ref(),
                    none.as_ref(),
                    true,
                    0.0,
                    config.eps,
                    config.cudnn_enabled,
                )
            }
        }
    }
}

/// A place in the network's forward order whose output an observer sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Stem,
    /// Block `block` of stage `stage`, both from 0 as in the variables' names.
    Block {
        stage: usize,
        block: usize,
    },
    /// The classifier's logits.
    Fc,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Site::Stem => f.write_str("stem"),
            Site::Block { stage, block } => write!(f, "stage{stage}.block{block}"),
            Site::Fc => f.write_str("fc"),
        }
    }
}

/// A 3x3 convolution of the network: the stem's (`conv` 1) or a block's first or second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    pub at: Site,
    pub conv: u8,
}

/// What looks inside the one forward pass. Every method defaults to looking away, so the
/// training step pays nothing for what it does not observe.
pub trait Observer {
    /// A 3x3 layer's response: its BatchNorm's output, before the ReLU or the addition.
    fn response(&mut self, _layer: Layer, _ys: &Tensor) {}
    /// The activations leaving the stem, a block, or the classifier.
    fn output(&mut self, _at: Site, _ys: &Tensor) {}
}

/// The observer of a plain forward pass.
pub struct Unobserved;
impl Observer for Unobserved {}

/// Records where the activations first hold a NaN or an infinity, or the read that failed.
#[derive(Default)]
pub struct FirstNonFinite {
    pub site: Option<Site>,
    pub failed: Option<tch::TchError>,
}

impl Observer for FirstNonFinite {
    fn output(&mut self, at: Site, ys: &Tensor) {
        if self.site.is_some() || self.failed.is_some() {
            return;
        }
        match ys.f_isfinite().and_then(|t| t.f_all()).and_then(|t| bool::try_from(&t)) {
            Ok(true) => {}
            Ok(false) => self.site = Some(at),
            Err(e) => self.failed = Some(e),
        }
    }
}

/// Accumulates, for every 3x3 layer in forward order, each channel's sum and sum of squares over
/// images and positions, so that the responses' standard deviation (the paper's Figure 7) pools
/// any number of forward passes exactly.
#[derive(Default)]
pub struct Responses {
    /// Per layer: (per-channel sums, per-channel sums of squares, values per channel), in fp64.
    sums: Vec<(Tensor, Tensor, f64)>,
    /// Which layer the next response is (reset at the start of each pass).
    next: usize,
}

impl Responses {
    /// Call before each pass that this observer is given.
    pub fn start_pass(&mut self) {
        self.next = 0;
    }

    /// Each layer's response standard deviation: the population std of each channel over the
    /// images and positions seen, then the mean over the layer's channels. One read-back.
    pub fn std_by_layer(&self) -> Result<Vec<f64>, tch::TchError> {
        if self.sums.is_empty() {
            return Ok(Vec::new());
        }
        let per_layer: Vec<Tensor> = self
            .sums
            .iter()
            .map(|(sum, sq, n)| {
                let mean = sum / *n;
                (sq / *n - &mean * &mean).clamp_min(0.0).sqrt().mean(Kind::Double)
            })
            .collect();
        Vec::try_from(&Tensor::stack(&per_layer, 0).f_to_device(Device::Cpu)?)
    }
}

impl Observer for Responses {
    fn response(&mut self, _layer: Layer, ys: &Tensor) {
        let ys = ys.detach().to_kind(Kind::Double);
        let size = ys.size();
        let per_channel = (size[0] * size[2] * size[3]) as f64;
        let sum = ys.sum_dim_intlist([0, 2, 3].as_slice(), false, Kind::Double);
        let sq = (&ys * &ys).sum_dim_intlist([0, 2, 3].as_slice(), false, Kind::Double);
        match self.sums.get_mut(self.next) {
            Some((s, q, n)) => {
                *s += sum;
                *q += sq;
                *n += per_channel;
            }
            None => self.sums.push((sum, sq, per_channel)),
        }
        self.next += 1;
    }
}

/// Keeps the feature maps after the stem and after each stage.
pub struct StageOutputs {
    blocks_per_stage: usize,
    pub maps: Vec<Tensor>,
}

impl Observer for StageOutputs {
    fn output(&mut self, at: Site, ys: &Tensor) {
        let stage_end = match at {
            Site::Stem => true,
            Site::Block { block, .. } => block + 1 == self.blocks_per_stage,
            Site::Fc => false,
        };
        if stage_end {
            self.maps.push(ys.shallow_clone());
        }
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

    /// The one forward pass: the logits of `xs`, with `observer` shown every 3x3 layer's
    /// response and the output of the stem, of each block and of the classifier.
    pub fn forward(&self, xs: &Tensor, norm: Norm, observer: &mut dyn Observer) -> Tensor {
        // `to_kind` to the input's own kind returns it unchanged (no copy) in fp32.
        let ys = norm.apply(&self.stem_bn, &self.stem_conv.forward(&xs.to_kind(self.compute)));
        observer.response(Layer { at: Site::Stem, conv: 1 }, &ys);
        let mut ys = ys.relu();
        observer.output(Site::Stem, &ys);
        for (stage, blocks) in self.stages.iter().enumerate() {
            for (block, b) in blocks.iter().enumerate() {
                let at = Site::Block { stage, block };
                ys = b.forward(&ys, norm, at, observer);
                observer.output(at, &ys);
            }
        }
        // The classifier runs in its own precision (fp32, or fp64 for a reference computation).
        let logits = ys.adaptive_avg_pool2d([1, 1]).flatten(1, -1).to_kind(self.fc.ws.kind()).apply(&self.fc);
        observer.output(Site::Fc, &logits);
        logits
    }

    /// The layers in forward order, for a forward and backward pass written by hand.
    pub fn parts(&self) -> Parts<'_> {
        Parts {
            stem_conv: self.stem_conv.parts(),
            stem_bn: &self.stem_bn,
            blocks: self.stages.iter().flatten().map(Block::parts).collect(),
            fc: &self.fc,
        }
    }

    /// The feature maps after the stem and after each stage, for inspection and tests.
    pub fn stage_outputs(&self, xs: &Tensor, norm: Norm) -> Vec<Tensor> {
        let mut stages = StageOutputs { blocks_per_stage: self.depth.blocks_per_stage(), maps: Vec::new() };
        let _ = self.forward(xs, norm, &mut stages);
        stages.maps
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
    /// Where, in forward order, a training batch's activations first hold a NaN or an infinity:
    /// after the stem (`stem`), a block (`stage1.block3`, the variables' names) or the classifier
    /// (`fc`); `None` when they are finite throughout. BatchNorm normalises by the batch, as the
    /// step did, without counting the batch in its running statistics a second time.
    pub fn first_non_finite(&self, xs: &Tensor) -> Result<Option<String>, tch::TchError> {
        let mut first = FirstNonFinite::default();
        let _ = tch::no_grad(|| self.forward(xs, Norm::Inspect, &mut first));
        match first.failed {
            Some(e) => Err(e),
            None => Ok(first.site.map(|s| s.to_string())),
        }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward(xs, if train { Norm::Train } else { Norm::Eval }, &mut Unobserved)
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
        let depth = self.net.depth.grow_to(self.net.shortcut, depth)?;
        let mut grown = Network::new(depth, self.net.shortcut, self.vs.device());
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
    fn plain_networks_have_exactly_the_parameters_of_option_a() {
        for r in PAPER_RESULTS.iter().filter(|r| r.depth <= 110) {
            let net = Network::new(Depth::new(r.depth).unwrap(), Shortcut::None, Device::Cpu);
            assert_eq!(net.params(), r.params, "Plain-{}", r.depth);
        }
    }

    #[test]
    fn a_plain_block_adds_nothing_to_its_output() {
        // With the second BatchNorm's scale and shift at zero, a residual block passes its input
        // (non-negative, after a ReLU) through its shortcut; a plain block outputs zeros.
        tch::manual_seed(5);
        let xs = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        for (shortcut, expect_zero) in [(Shortcut::A, false), (Shortcut::None, true)] {
            let net = Network::new(d(8), shortcut, Device::Cpu);
            let vars = net.vs.variables();
            tch::no_grad(|| {
                let _ = vars["stage0.block0.bn2.weight"].shallow_clone().fill_(0.0);
            });
            let maps = net.net.stage_outputs(&xs, Norm::Eval);
            let after = maps[1].abs().max().double_value(&[]);
            assert_eq!(after == 0.0, expect_zero, "{shortcut:?}: stage 1 output up to {after}");
        }
    }

    #[test]
    fn the_divergence_report_leaves_batchnorm_statistics_as_they_were() {
        let net = Network::new(d(8), Shortcut::A, Device::Cpu);
        let xs = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let before = net.vs.variables()["stem.bn.running_mean"].copy();
        assert_eq!(net.net.first_non_finite(&xs).unwrap(), None);
        assert!(net.vs.variables()["stem.bn.running_mean"].equal(&before));
        let bad = xs.copy();
        let _ = bad.narrow(0, 0, 1).fill_(f64::NAN);
        assert_eq!(net.net.first_non_finite(&bad).unwrap().as_deref(), Some("stem"));
        assert!(net.vs.variables()["stem.bn.running_mean"].equal(&before));
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
        for shortcut in [Shortcut::A, Shortcut::B, Shortcut::None] {
            let net = Network::new(d(20), shortcut, Device::Cpu);
            let xs = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
            let shapes: Vec<Vec<i64>> = net.net.stage_outputs(&xs, Norm::Eval).iter().map(|t| t.size()).collect();
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
