//! Resolving a `DeviceSpec` against what libtorch sees, failing loudly when CUDA is asked for and
//! cannot be had (never a silent fall-back to the CPU), and naming the device in use.

use crate::config::DeviceSpec;
use crate::nvidia_smi::Listing;
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

/// Why `--device auto` chose the CPU, in one line, where `nvidia-smi` lists GPUs that libtorch
/// cannot use (most often a driver older than libtorch's CUDA build needs): training then runs
/// many times slower, and whoever started it must hear why. `None` where the choice needs no word.
pub fn auto_fallback(spec: DeviceSpec, device: Device) -> Option<String> {
    if spec != DeviceSpec::Auto || device != Device::Cpu {
        return None;
    }
    let listed = crate::nvidia_smi::listing()?;
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    fallback_note(&listed, visible.as_deref(), cuda_build(), &cuda_failure())
}

/// The line for a CPU chosen while `listed` GPUs are there: none when `CUDA_VISIBLE_DEVICES`
/// (`visible`) hides them on purpose; else what `nvidia-smi` lists, the CUDA version libtorch was
/// built for (`build`), and libtorch's own `reason`.
fn fallback_note(listed: &Listing, visible: Option<&str>, build: Option<String>, reason: &str) -> Option<String> {
    if hidden_on_purpose(visible) {
        return None;
    }
    let (gpus, them) =
        if listed.gpus == 1 { ("1 GPU".to_string(), "it") } else { (format!("{} GPUs", listed.gpus), "them") };
    let libtorch = build.as_ref().map_or("libtorch".to_string(), |v| format!("libtorch (built for CUDA {v})"));
    let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
    let driver = build.map_or("a newer driver".to_string(), |v| format!("a driver for CUDA {v}"));
    Some(format!(
        "--device auto is training on the CPU, though nvidia-smi lists {gpus} (driver {}): {libtorch} cannot use \
         {them}{why}; install {driver} to train on the GPU, or pass --device cpu",
        listed.driver
    ))
}

/// Whether `CUDA_VISIBLE_DEVICES` leaves CUDA no device by design: empty, or led by an invalid
/// entry (`-1`; Slurm's `NoDevFiles` for a job given no GPU), after which CUDA sees nothing.
fn hidden_on_purpose(visible: Option<&str>) -> bool {
    visible.is_some_and(|v| {
        let first = v.split(',').next().unwrap_or("").trim();
        first.is_empty() || first.starts_with('-') || first.eq_ignore_ascii_case("NoDevFiles")
    })
}

/// The CUDA version libtorch was built for, e.g. "13.0"; `None` for a libtorch without CUDA.
fn cuda_build() -> Option<String> {
    if !tch::utils::has_cudart() {
        return None;
    }
    // CUDART_VERSION: major * 1000 + minor * 10.
    let v = tch::utils::version_cudart();
    (v > 0).then(|| format!("{}.{}", v / 1000, v % 1000 / 10))
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

    #[test]
    fn a_cpu_chosen_beside_gpus_libtorch_cannot_use_is_said_in_one_line_with_libtorchs_reason() {
        let listed = Listing { gpus: 1, driver: "535.104.05".into() };
        let reason = "The NVIDIA driver on your system is too old (found version 12020)";
        let note = fallback_note(&listed, None, Some("13.0".into()), reason).unwrap();
        assert_eq!(
            note,
            "--device auto is training on the CPU, though nvidia-smi lists 1 GPU (driver 535.104.05): libtorch \
             (built for CUDA 13.0) cannot use it: The NVIDIA driver on your system is too old (found version \
             12020); install a driver for CUDA 13.0 to train on the GPU, or pass --device cpu"
        );
        let eight = Listing { gpus: 8, driver: "550.54".into() };
        let note = fallback_note(&eight, Some("0,1"), None, "").unwrap();
        assert!(note.contains("lists 8 GPUs (driver 550.54): libtorch cannot use them; install a newer"), "{note}");
        assert!(!note.contains('\n'));
    }

    #[test]
    fn gpus_hidden_on_purpose_or_a_choice_not_auto_need_no_word() {
        let listed = Listing { gpus: 2, driver: "570.86".into() };
        for hidden in ["", " ", "-1", "-1,0", "NoDevFiles"] {
            assert_eq!(fallback_note(&listed, Some(hidden), None, "no device"), None, "{hidden:?}");
        }
        assert_eq!(auto_fallback(DeviceSpec::Cpu, Device::Cpu), None);
        assert_eq!(auto_fallback(DeviceSpec::Auto, Device::Cuda(0)), None);
        // The CUDA version of the linked libtorch reads without a GPU (build.rs links libtorch_cuda).
        let build = cuda_build().unwrap();
        assert!(build.split('.').all(|p| p.parse::<u32>().is_ok()), "{build}");
    }
}
