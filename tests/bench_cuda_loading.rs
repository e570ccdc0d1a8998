//! The binary loads libtorch's CUDA half at run time: asked for CUDA, it must either use it or
//! fail loudly with libtorch's reason, never report a libtorch built without CUDA.

use std::process::Command;

#[test]
fn cuda_is_loaded_on_demand_and_fails_loudly_without_a_gpu() {
    let out = Command::new(env!("CARGO_BIN_EXE_resnet-tui"))
        .args(["bench", "--device", "cuda", "--only", "load", "--data-dir", "/nonexistent"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("no CUDA GPU") {
        assert!(!out.status.success());
        // With the CUDA half loaded, libtorch's reason is about the driver or devices, not the build.
        assert!(!stderr.contains("not linked") && !stderr.contains("not compiled"), "{stderr}");
    } else {
        // A GPU machine: device resolved, then the missing data set is what stops it.
        assert!(stderr.contains("not found"), "{stderr}");
    }
}
