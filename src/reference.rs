//! The numbers the project is measured against, in one place with their source.
//!
//! Source: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
//! section 4.2 and table 6; the errors of one public PyTorch reimplementation and the parameter
//! counts as the project's brief lists them (its reference sheet, outside this repository).

/// The depths the paper reports, with what it and a public reimplementation measured.
pub struct PaperResult {
    pub depth: u32,
    /// Trainable parameters with option A shortcuts (BatchNorm affine counted, running stats not).
    pub params: u64,
    /// Top-1 test error in percent reported by the paper.
    pub paper_error: f64,
    /// Top-1 test error in percent of one public PyTorch reimplementation, where there is one.
    pub reimpl_error: Option<f64>,
}

pub const PAPER_RESULTS: [PaperResult; 6] = [
    PaperResult { depth: 20, params: 269_722, paper_error: 8.75, reimpl_error: Some(8.57) },
    PaperResult { depth: 32, params: 464_154, paper_error: 7.51, reimpl_error: Some(7.82) },
    PaperResult { depth: 44, params: 658_586, paper_error: 7.17, reimpl_error: Some(7.20) },
    PaperResult { depth: 56, params: 853_018, paper_error: 6.97, reimpl_error: Some(7.50) },
    PaperResult { depth: 110, params: 1_727_962, paper_error: 6.43, reimpl_error: None },
    PaperResult { depth: 1202, params: 19_421_274, paper_error: 7.93, reimpl_error: None },
];

/// One network of a public reproduction of the plain-versus-residual comparison. The paper gives
/// no CIFAR-10 figure for a plain net but "the error of plain-110 is higher than 60%" (Figure 6's
/// caption), so a plain net is compared with this, labelled with its source, never as the paper.
pub struct Reproduction {
    pub depth: u32,
    pub plain: bool,
    /// Final training error in percent.
    pub train_error: f64,
    /// Final test error in percent.
    pub test_error: f64,
}

/// Where [`DEGRADATION`] comes from.
pub const DEGRADATION_SOURCE: &str = "a-martyn/resnet";
/// What [`DEGRADATION_SOURCE`] ran: the paper's recipe, whole.
pub const DEGRADATION_RECIPE: &str = "results/*.csv, 164 epochs of the paper's recipe";

pub const DEGRADATION: [Reproduction; 3] = [
    Reproduction { depth: 20, plain: true, train_error: 0.74, test_error: 9.69 },
    Reproduction { depth: 56, plain: true, train_error: 3.33, test_error: 13.07 },
    Reproduction { depth: 56, plain: false, train_error: 0.038, test_error: 7.46 },
];

/// The paper's result for a network of this depth, with shortcuts or plain: ResNets only.
pub fn paper_result_for(depth: u32, plain: bool) -> Option<&'static PaperResult> {
    paper_result(depth).filter(|_| !plain)
}

/// The public reproduction's figures for a plain net of this depth, if it has them.
pub fn plain_reproduction(depth: u32) -> Option<&'static Reproduction> {
    DEGRADATION.iter().find(|r| r.plain && r.depth == depth)
}

/// The depths offered in the dashboard's depth chooser.
pub const PAPER_DEPTHS: [u32; 6] = [20, 32, 44, 56, 110, 1202];

/// The paper's result for this depth, if it reports one.
pub fn paper_result(depth: u32) -> Option<&'static PaperResult> {
    PAPER_RESULTS.iter().find(|r| r.depth == depth)
}

/// The paper's training recipe (section 4.2).
pub mod recipe {
    pub const LR: f64 = 0.1;
    pub const MOMENTUM: f64 = 0.9;
    pub const WEIGHT_DECAY: f64 = 1e-4;
    pub const BATCH_SIZE: usize = 128;
    /// Learning rate divided by 10 at these iterations; training stops at `ITERS`.
    pub const MILESTONES: [u64; 2] = [32_000, 48_000];
    pub const ITERS: u64 = 64_000;
    /// ResNet-110 only: lr 0.01 until the training error is below 80% ("about 400 iterations"),
    /// then back to 0.1. The cap is ours: a warm-up that has not reached 80% by then ends anyway.
    pub const WARMUP_DEPTH: u32 = 110;
    pub const WARMUP_UNTIL_ERROR: f64 = 80.0;
    pub const WARMUP_CAP: u64 = 1000;
    pub const WARMUP_LR: f64 = 0.01;
    /// Augmentation: zero-pad this many pixels on each side, then take a random 32x32 crop.
    pub const PAD: i64 = 4;
}

/// CIFAR-10 training-set statistics on a 0..1 scale, per channel (R, G, B).
pub const CIFAR_MEAN: [f64; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR_STD: [f64; 3] = [0.2470, 0.2435, 0.2616];
