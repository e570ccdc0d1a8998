//! Resolving a `DeviceSpec` against what libtorch sees, failing loudly when CUDA is asked for and
//! cannot be had (never a silent fall-back to the CPU), and naming the device in use.

use crate::config::DeviceSpec;
use crate::protocol::RunDevice;
use tch::{Cuda, Device};

/// CUDA was asked for and cannot be had.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "--device {0}: no CUDA GPU is visible to libtorch (drivers, CUDA_VISIBLE_DEVICES, or a libtorch \
         without CUDA; libtorch says: {1}); use --device cpu"
    )]
    NoGpu(DeviceSpec, String),
    #[error("--device {spec}: only {count} CUDA device(s) visible (cuda:0..cuda:{})", .count - 1)]
    NoSuchGpu { spec: DeviceSpec, count: usize },
}

/// libtorch's own first line on why a CUDA tensor cannot be made (e.g. no driver found).
fn cuda_failure() -> String {
    match tch::Tensor::f_zeros([1], (tch::Kind::Float, Device::Cuda(0))) {
        Ok(_) => "a CUDA tensor can be made after all".into(),
        Err(e) => e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string(),
    }
}

/// The device to train on.
pub fn resolve(spec: DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        // libtorch_cuda is linked (build.rs), so this is false only for want of a GPU.
        DeviceSpec::Auto => Ok(if Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        DeviceSpec::Cuda(index) => {
            let count = Cuda::device_count() as usize;
            if count == 0 {
                return Err(DeviceError::NoGpu(spec, cuda_failure()));
            }
            let index = index.unwrap_or(0);
            if index >= count {
                return Err(DeviceError::NoSuchGpu { spec, count });
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// The device as a run reports it: the CPU with libtorch's threads, or the GPU's index.
pub fn run_device(device: Device) -> RunDevice {
    match device {
        Device::Cpu => RunDevice::Cpu { threads: usize::try_from(tch::get_num_threads()).ok() },
        Device::Cuda(i) => RunDevice::Cuda { index: i as u32, name: None },
        other => RunDevice::Other(format!("{other:?}")),
    }
}

/// A readable name for the device, e.g. "cpu (2 threads)" or "cuda:0".
pub fn describe(device: Device) -> String {
    run_device(device).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_without_a_gpu_fails_loudly() {
        assert_eq!(resolve(DeviceSpec::Cpu), Ok(Device::Cpu));
        if Cuda::device_count() == 0 {
            let err = resolve(DeviceSpec::Cuda(None)).unwrap_err().to_string();
            assert!(err.contains("--device cuda") && err.contains("no CUDA GPU"), "{err}");
            assert_eq!(resolve(DeviceSpec::Auto), Ok(Device::Cpu));
        } else {
            assert_eq!(resolve(DeviceSpec::Cuda(None)), Ok(Device::Cuda(0)));
            let err = resolve(DeviceSpec::Cuda(Some(99))).unwrap_err().to_string();
            assert!(err.contains("--device cuda:99"), "{err}");
        }
    }
}
