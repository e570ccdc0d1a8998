//! The CPU training pass with fused elementwise kernels (issue 26), activations in fp32 or bf16:
//! where libtorch makes several passes over the activations (BatchNorm's statistics, its
//! normalisation, the shortcut's addition, the ReLU; and their backward), ours make one or two.
//! Convolutions stay libtorch's (oneDNN). CUDA and NCHW batches keep the autograd path.
//!
//! It is the CPU's training pass by default: measured side by side it is faster than libtorch's
//! autograd in fp32 and in bf16, with the same peak memory (docs/performance.md, "The fused CPU
//! pass"). `RESNET_TUI_FUSED=0` (read once) trains with autograd instead.

mod ffi;
pub mod kernels;
pub mod profile;
mod step;

/// Held by the tests that set libtorch's thread count, which is one for the whole process: a test
/// setting 1 while another runs on 2 would make that one fail now and then, on a busy machine.
#[cfg(test)]
pub(crate) fn thread_count_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding it leaves it poisoned; the count is set again anyway.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub use ffi::aten_cpu_capability;
pub use step::forward_backward;

use crate::model::ResNet;
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// The environment variable that turns the fused pass off (`0`).
pub const SWITCH: &str = "RESNET_TUI_FUSED";

/// What [`SWITCH`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// Unset (or anything but `0`): the fused pass, in fp32 and bf16.
    On,
    /// `0`: libtorch's autograd.
    Off,
}

impl Switch {
    fn read(value: Option<&str>) -> Switch {
        if value.map(str::trim) == Some("0") { Switch::Off } else { Switch::On }
    }
}

/// This process's switch (read once).
pub fn switch() -> Switch {
    static SET: OnceLock<Switch> = OnceLock::new();
    *SET.get_or_init(|| Switch::read(std::env::var(SWITCH).ok().as_deref()))
}

/// Which pass the CPU trains with in this process, in words.
pub fn passes() -> &'static str {
    match switch() {
        Switch::On => "fused pass",
        Switch::Off => "autograd",
    }
}

/// Whether [`forward_backward`] computes `net`'s training pass on `images`: a channels-last batch
/// on the CPU (fp32, or already in the network's compute kind), computed in fp32 or bf16.
pub fn handles(net: &ResNet, images: &Tensor) -> bool {
    let size = images.size();
    let stride = images.stride();
    let channels_last = size.len() == 4 && stride[1] == 1 && size[1] > 1;
    let computes = matches!(net.compute, Kind::Float | Kind::BFloat16);
    let arrives = images.kind() == Kind::Float || images.kind() == net.compute;
    computes && arrives && images.device() == Device::Cpu && channels_last
}

/// Whether the training step takes the fused pass: switched on, handled, and on a CPU with
/// vector kernels (the scalar level is a reference, far slower than libtorch's own passes).
pub fn applies(net: &ResNet, images: &Tensor) -> bool {
    switch() == Switch::On && kernels::Level::best() != kernels::Level::Scalar && handles(net, images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fused_pass_is_the_default_and_only_0_turns_it_off() {
        assert_eq!(Switch::read(None), Switch::On);
        assert_eq!(Switch::read(Some("")), Switch::On);
        assert_eq!(Switch::read(Some("1")), Switch::On);
        assert_eq!(Switch::read(Some("0")), Switch::Off);
        assert_eq!(Switch::read(Some(" 0\n")), Switch::Off);
    }
}
