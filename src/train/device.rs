//! Choosing the device: `auto`, `cpu`, `cuda` or `cuda:N`, failing loudly when CUDA is asked
//! for and cannot be had (never a silent fall-back to the CPU).

use tch::{Cuda, Device};

/// libtorch's own first line on why a CUDA tensor cannot be made (e.g. no driver found).
fn cuda_failure() -> String {
    match tch::Tensor::f_zeros([1], (tch::Kind::Float, Device::Cuda(0))) {
        Ok(_) => "a CUDA tensor can be made after all".into(),
        Err(e) => e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string(),
    }
}

/// Parses and resolves a device string against what libtorch sees.
pub fn resolve(spec: &str) -> Result<Device, String> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            // libtorch_cuda is linked (build.rs), so this is false only for want of a GPU.
            Ok(if Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu })
        }
        _ => {
            let index = match spec.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| format!("unknown device {spec:?}: use auto, cpu, cuda or cuda:N"))?,
                None => return Err(format!("unknown device {spec:?}: use auto, cpu, cuda or cuda:N")),
            };
            let count = Cuda::device_count() as usize;
            if count == 0 {
                return Err(format!(
                    "--device {spec}: no CUDA GPU is visible to libtorch (drivers, CUDA_VISIBLE_DEVICES, \
                     or a libtorch without CUDA; libtorch says: {}); use --device cpu",
                    cuda_failure()
                ));
            }
            if index >= count {
                return Err(format!(
                    "--device {spec}: only {count} CUDA device(s) visible (cuda:0..cuda:{})",
                    count - 1
                ));
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// Checks the form of a device string without touching libtorch's CUDA state.
pub fn validate(spec: &str) -> Result<(), String> {
    let s = spec.trim().to_ascii_lowercase();
    let ok = s == "auto"
        || s == "cpu"
        || s == "cuda"
        || s.strip_prefix("cuda:").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if ok { Ok(()) } else { Err(format!("unknown device {spec:?}: use auto, cpu, cuda or cuda:N")) }
}

/// A readable name for the device, e.g. "cpu (2 threads)" or "cuda:0".
pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => match tch::get_num_threads() {
            1 => "cpu (1 thread)".to_string(),
            n => format!("cpu ({n} threads)"),
        },
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_are_checked() {
        for good in ["auto", "cpu", "cuda", "cuda:0", "CUDA:12"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["gpu", "cuda:", "cuda:x", "tpu", "cuda0", ""] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert_eq!(resolve("cpu"), Ok(Device::Cpu));
    }

    #[test]
    fn cuda_without_a_gpu_fails_loudly() {
        if Cuda::device_count() == 0 {
            let err = resolve("cuda").unwrap_err();
            assert!(err.contains("no CUDA GPU"), "{err}");
            assert_eq!(resolve("auto"), Ok(Device::Cpu));
        } else {
            assert_eq!(resolve("cuda"), Ok(Device::Cuda(0)));
        }
    }
}
