//! The CPU fp32 training pass with fused elementwise kernels (issue 26): where libtorch makes
//! several passes over the activations (BatchNorm's statistics, its normalisation, the
//! shortcut's addition, the ReLU; and their backward), ours make one or two. Convolutions stay
//! libtorch's (oneDNN). CUDA, bf16 and NCHW batches keep the autograd path. It is off unless
//! `RESNET_TUI_FUSED=1`: measured side by side it is no faster than libtorch's autograd in the
//! whole training loop and it holds more memory (docs/performance.md, "The fused CPU pass").

mod ffi;
pub mod kernels;
pub mod profile;
mod step;

pub use step::forward_backward;

use crate::model::ResNet;
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// The environment variable that turns the fused pass on (`1`).
pub const SWITCH: &str = "RESNET_TUI_FUSED";

/// Whether the fused pass is switched on for this process (read once; off unless `SWITCH` is `1`).
pub fn switched_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(SWITCH).is_ok_and(|v| v.trim() == "1"))
}

/// Whether [`forward_backward`] computes `net`'s training pass on `images`: fp32 activations on
/// the CPU in channels-last order.
pub fn handles(net: &ResNet, images: &Tensor) -> bool {
    let size = images.size();
    let stride = images.stride();
    let channels_last = size.len() == 4 && stride[1] == 1 && size[1] > 1;
    net.compute == Kind::Float && images.kind() == Kind::Float && images.device() == Device::Cpu && channels_last
}

/// Whether the training step takes the fused pass: switched on and handled.
pub fn applies(net: &ResNet, images: &Tensor) -> bool {
    switched_on() && handles(net, images)
}
