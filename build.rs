//! Links libtorch so that the built binary runs with no environment variable and can use CUDA.
//!
//! The linker's as-needed default drops `libtorch_cuda` because no symbol of ours names it; CUDA
//! would then report unavailable even on a GPU machine. The binary loads it at run time instead,
//! only when CUDA is asked for; here we add a run-path to the libtorch we built against (a RUNPATH,
//! so `LD_LIBRARY_PATH` still overrides it on another machine, and `dlopen` searches it too).
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
    // libtorch_cuda is deliberately not linked (the as-needed default drops it): the binary loads
    // it at run time when a CUDA device is asked for (src/train/device.rs, `load_cuda`), so CPU
    // runs do not carry it. A CUDA device that cannot be had is an error, never a silent CPU run.
}
