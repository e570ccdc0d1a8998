//! Links libtorch so that the built binary runs with no environment variable and can use CUDA.
//!
//! The linker's as-needed default drops `libtorch_cuda` because no symbol of ours names it; CUDA
//! then reports unavailable even on a GPU machine. We link it explicitly, and add a run-path to the
//! libtorch we built against (a RUNPATH, so `LD_LIBRARY_PATH` still overrides it on another machine).
//! It also compiles the fused CPU step's C++ shim (`csrc/fused_shim.cpp`) against libtorch's headers.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set: run scripts/setup first");
        return;
    };
    let root = PathBuf::from(libtorch);
    // Resolve the symlink so the run-path names the real directory.
    let root = root.canonicalize().unwrap_or(root);
    let lib = root.join("lib");
    // The version `--version` reports: the wheel's own record of it (tch does not expose it).
    let version = std::fs::read_to_string(root.join("version.py")).ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        Some(line.split('\'').nth(1)?.to_string())
    });
    println!("cargo:rustc-env=RESNET_TUI_LIBTORCH_VERSION={}", version.as_deref().unwrap_or("unknown"));
    // `rustc-link-arg` reaches every linked target: the binary, the test harnesses, benches.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags");
    // Linked whatever the machine: one build serves CPU here and CUDA on a GPU machine. It costs a
    // CPU run about 350 MB of resident memory and 0.25 s of start-up (docs/performance.md).
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    shim(&root);
    // The shim's OpenMP regions (`at::parallel_for`) run on libtorch's own OpenMP runtime, the
    // wheel's `libgomp.so.1`: one runtime, one thread team for oneDNN and our kernels alike.
    let gomp = lib.join("libgomp.so.1");
    if gomp.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,{},--as-needed", gomp.display());
    } else {
        println!("cargo:rustc-link-arg=-fopenmp");
    }
}

/// The C++ shim of `src/fused`: the few libtorch functions tch does not bind, built with the
/// wheel's ABI (the C++11 one) and headers, and with OpenMP: `at::parallel_for` is a header
/// template whose parallel region (`#pragma omp parallel`, under `_OPENMP`) is compiled here, so
/// without `-fopenmp` it runs the whole range on the calling thread.
fn shim(root: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/fused_shim.cpp");
    cc::Build::new()
        .cpp(true)
        .file("csrc/fused_shim.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-fopenmp")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("resnet_tui_fused_shim");
}
