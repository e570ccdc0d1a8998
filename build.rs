//! Links libtorch so that the built binary runs with no environment variable and can use CUDA.
//!
//! The linker's as-needed default drops `libtorch_cuda` because no symbol of ours names it; CUDA
//! then reports unavailable even on a GPU machine. We link it explicitly, and add a run-path to the
//! libtorch we built against (a RUNPATH, so `LD_LIBRARY_PATH` still overrides it on another machine).
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
    let lib = root.canonicalize().unwrap_or(root).join("lib");
    // `rustc-link-arg` reaches every linked target: the binary, the test harnesses, benches.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags");
    // Linked whatever the machine: one build serves CPU here and CUDA on a GPU machine. It costs a
    // CPU run about 350 MB of resident memory and 0.25 s of start-up (README, Performance).
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
