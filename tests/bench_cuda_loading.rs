//! The binary links libtorch's CUDA half: asked for CUDA, it must either use it or fail loudly
//! with libtorch's reason, never report a libtorch built without CUDA.

use std::process::Command;

#[test]
fn cuda_asked_for_without_a_gpu_fails_loudly_with_the_reason() {
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

#[test]
fn the_binary_really_links_libtorch_cuda() {
    // The as-needed default would drop it and CUDA would silently report unavailable on a GPU.
    let out = Command::new("readelf").args(["-d", env!("CARGO_BIN_EXE_resnet-tui")]).output().unwrap();
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(dynamic.contains("[libtorch_cuda.so]"), "no NEEDED libtorch_cuda.so in:\n{dynamic}");
    assert!(dynamic.contains("RUNPATH"), "no run-path to libtorch in:\n{dynamic}");
}
