//! Choosing the device: `auto`, `cpu`, `cuda` or `cuda:N`, failing loudly when CUDA is asked
//! for and cannot be had (never a silent fall-back to the CPU).

use tch::{Cuda, Device};

/// The libtorch library that holds the CUDA kernels and registers CUDA with libtorch when loaded.
const TORCH_CUDA: &str = "libtorch_cuda.so";

/// Loads libtorch's CUDA half, once; the error says why it could not be.
///
/// Why at run time and not at link time: linked, it and the CUDA libraries it pulls in cost every
/// CPU run about 235 MB of resident memory and 0.2 s of start-up. Loaded here, before anything
/// asks libtorch about CUDA (it remembers the first answer), it serves a GPU run just the same.
/// It is found through `LD_LIBRARY_PATH`, then the binary's run-path (the libtorch it was built with).
pub fn load_cuda() -> Result<(), String> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED.get_or_init(dlopen_torch_cuda).clone()
}

fn dlopen_torch_cuda() -> Result<(), String> {
    unsafe extern "C" {
        fn dlopen(filename: *const std::ffi::c_char, flags: std::ffi::c_int) -> *mut std::ffi::c_void;
        fn dlerror() -> *const std::ffi::c_char;
    }
    const RTLD_NOW: std::ffi::c_int = 2;
    const RTLD_GLOBAL: std::ffi::c_int = 0x100;
    let name = std::ffi::CString::new(TORCH_CUDA).expect("no NUL in the name");
    // SAFETY: plain C calls with a NUL-terminated name; the handle is kept open for the process's life.
    let handle = unsafe { dlopen(name.as_ptr(), RTLD_NOW | RTLD_GLOBAL) };
    if !handle.is_null() {
        return Ok(());
    }
    // SAFETY: dlerror returns NULL or a NUL-terminated message owned by the C library.
    let why = unsafe {
        let e = dlerror();
        if e.is_null() {
            "unknown error".to_string()
        } else {
            std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    };
    Err(format!("cannot load {TORCH_CUDA} ({why}); point LD_LIBRARY_PATH at a CUDA build of libtorch's lib folder"))
}

/// libtorch's own first line on why a CUDA tensor cannot be made (e.g. no driver found).
fn cuda_failure() -> String {
    match tch::Tensor::f_zeros([1], (tch::Kind::Float, Device::Cuda(0))) {
        Ok(_) => "a CUDA tensor can be made after all".into(),
        Err(e) => e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string(),
    }
}

/// Whether an NVIDIA driver is installed: `auto` loads CUDA only then, so CPU machines pay nothing.
fn nvidia_driver_present() -> bool {
    std::path::Path::new("/proc/driver/nvidia/version").exists() || std::path::Path::new("/dev/nvidiactl").exists()
}

/// Parses and resolves a device string against what libtorch sees.
pub fn resolve(spec: &str) -> Result<Device, String> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            let gpu = nvidia_driver_present() && load_cuda().is_ok() && Cuda::is_available();
            Ok(if gpu { Device::Cuda(0) } else { Device::Cpu })
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
            if spec.starts_with("cuda") {
                load_cuda().map_err(|e| format!("--device {spec}: {e}"))?;
            }
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
