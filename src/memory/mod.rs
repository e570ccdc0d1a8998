//! How much memory a run needs, estimated before it starts from the network's shapes, and
//! whether that fits beside what the machine has free: a run that would be killed by the kernel's
//! out-of-memory killer (the one way to lose a run without a word) is refused with one line.
//!
//! The estimate is a model fitted from above to measured peaks (docs/memory.md): a run it lets
//! through must not be killed, so it is never below a measured peak. A fixed base (libtorch and
//! its CUDA libraries, the data set as bytes), a few copies of the parameters (weights, gradients,
//! momentum, their flat and channels-last forms), and per image of the batch the activations kept
//! for the backward pass: about 5 feature maps per residual block on the CPU (BatchNorm inputs,
//! ReLU outputs, the allocator's slack; 6 on a GPU, not yet measured) at its stage's size, and two
//! for the stem; and on the CPU never less than what a small run measured. Where a control group limits
//! the process (a container, a scheduler's job), its limit counts, not the machine's (`cgroup`).
//! Measured and estimated figures side by side: docs/memory.md.

pub mod cgroup;

use crate::config::{Depth, Precision};
use crate::model::STAGE_WIDTHS;

/// Resident memory of a process before any batch, where the activations grow on it: libtorch with
/// its CUDA libraries (linked even on the CPU) and the 60,000 images as bytes.
const BASE_BYTES: u64 = 572 << 20;
/// The least a training process holds at its peak on the CPU, however small the network and batch
/// (ResNet-8 at batch 1 to ResNet-110 at 64 all peaked between 1.15 and 1.31 GB, with mimalloc).
const FLOOR_BYTES: u64 = 1335 << 20;
/// What a CUDA context adds to the host process: the driver's and the runtime's host side, and
/// the pages of libtorch_cuda, cuDNN and cuBLAS that a run touches (their kernels load at first
/// use). Not measured here (no GPU was lent): PyTorch processes on a GPU hold about 1.5 to 3 GiB
/// of host memory, the libraries and the data set's host copy (in `BASE_BYTES`) included; this
/// takes the upper end of the rest.
const CUDA_HOST_BYTES: u64 = 2 << 30;
/// Resident memory of the host process beside a GPU run: the CPU's base (libtorch, the data set's
/// host copy before it goes to the GPU) and the CUDA context's, with a quarter more for headroom,
/// since an estimate below the peak gets a Slurm task killed (`sweep slurm` asks for this).
const HOST_BESIDE_GPU_BYTES: u64 = (BASE_BYTES + CUDA_HOST_BYTES) / 4 * 5;
/// Copies of the parameters alive at once.
const PARAMETER_COPIES: f64 = 9.5;
/// Feature maps kept per residual block and image for the backward pass, on the CPU (fitted to the
/// peaks measured with mimalloc) and on a GPU (the CPU's figure under glibc's allocator, kept
/// until a GPU is measured).
const MAPS_PER_BLOCK: f64 = 4.8;
const MAPS_PER_BLOCK_GPU: f64 = 6.0;
/// Feature maps kept by the stem (its BatchNorm input and ReLU output).
const STEM_MAPS: f64 = 2.0;
/// A CUDA context with cuDNN's workspace, on the device (not measured here: no GPU was lent).
const CUDA_CONTEXT_BYTES: u64 = 600 << 20;
/// Each stage's map side: 32, 16, 8.
const MAP_SIDES: [i64; 3] = [32, 16, 8];

/// The memory a run needs, in bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Resident memory of the process.
    pub host: u64,
    /// Memory on the GPU, for a run on CUDA.
    pub device: Option<u64>,
}

/// Bytes of the activations one image keeps for the backward pass.
fn activations_per_image(depth: Depth, precision: Precision, cuda: bool) -> f64 {
    // Bytes per kept element. On the CPU bf16 keeps two (the fused pass stores its activations in
    // bf16); on a GPU 0.85 of fp32's, as autograd's bf16 kept on the CPU, until measured.
    let element = match (precision, cuda) {
        (Precision::Fp32, _) => 4.0,
        (Precision::Bf16, false) => 2.0,
        (Precision::Bf16, true) => 3.4,
    };
    let maps = if cuda { MAPS_PER_BLOCK_GPU } else { MAPS_PER_BLOCK };
    let row: i64 = STAGE_WIDTHS.iter().zip(MAP_SIDES).map(|(&c, s)| c * s * s).sum();
    let stem = (STAGE_WIDTHS[0] * MAP_SIDES[0] * MAP_SIDES[0]) as f64;
    (maps * depth.blocks_per_stage() as f64 * row as f64 + STEM_MAPS * stem) * element
}

/// Trainable parameters of the network with option A shortcuts, or none (B adds two small
/// projections), counted without building it.
pub fn params(depth: Depth) -> u64 {
    let [c1, c2, c3] = STAGE_WIDTHS.map(|c| c as u64);
    let stem = 3 * 9 * c1 + 2 * c1;
    // Each block: two 3x3 convolutions and two BatchNorms at its stage's width...
    let blocks: u64 = [c1, c2, c3].iter().map(|&c| 18 * c * c + 4 * c).sum::<u64>() * depth.blocks_per_stage() as u64;
    // ...but the first of stages 2 and 3 convolves the narrower maps of the stage before.
    let narrower = 9 * (c2 * c2 - c1 * c2) + 9 * (c3 * c3 - c2 * c3);
    let classifier = c3 * 10 + 10;
    stem + blocks - narrower + classifier
}

/// The estimate for a run of `depth` at `batch` images a step.
pub fn estimate(depth: Depth, batch: usize, precision: Precision, cuda: bool) -> Estimate {
    let parameters = PARAMETER_COPIES * 4.0 * params(depth) as f64;
    // A float too large for a u64 becomes u64::MAX, and the sums saturate there: an absurd
    // batch needs "more than there is", never a wrapped-around small number that would fit.
    let training = (parameters + batch as f64 * activations_per_image(depth, precision, cuda)) as u64;
    if cuda {
        // The data set and the training state live on the GPU; the host keeps the libraries.
        let data = 60_000 * 3 * 32 * 32;
        let device = CUDA_CONTEXT_BYTES.saturating_add(data).saturating_add(training);
        Estimate { host: HOST_BESIDE_GPU_BYTES, device: Some(device) }
    } else {
        Estimate { host: BASE_BYTES.saturating_add(training).max(FLOOR_BYTES), device: None }
    }
}

/// The largest batch (a power of two, at least 1) whose estimate fits in `available` bytes.
pub fn largest_batch(depth: Depth, precision: Precision, cuda: bool, available: u64) -> Option<usize> {
    let need = |b| {
        let e = estimate(depth, b, precision, cuda);
        e.device.unwrap_or(e.host)
    };
    (0..16).map(|p| 1usize << p).take_while(|&b| need(b) <= available).last()
}

/// A run that will not fit.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "ResNet-{depth} at batch {batch} needs about {} of {where_} memory (estimate), only {} is available: {hint}; \
     --force starts it anyway",
    crate::format::bytes(*.need), crate::format::bytes(*.available)
)]
pub struct TooBig {
    pub depth: Depth,
    pub batch: usize,
    pub need: u64,
    pub available: u64,
    /// "host" or "GPU".
    pub where_: &'static str,
    /// What would fit.
    pub hint: String,
}

/// Checks an estimate against what is free: `available` is the host's free memory and, on
/// CUDA, the GPU's.
pub fn check(depth: Depth, batch: usize, precision: Precision, cuda: bool, available: u64) -> Result<Estimate, TooBig> {
    let e = estimate(depth, batch, precision, cuda);
    let need = e.device.unwrap_or(e.host);
    if need <= available {
        return Ok(e);
    }
    let mut ways = Vec::new();
    if let Some(b) = largest_batch(depth, precision, cuda, available) {
        ways.push(format!("--batch-size {b}"));
    }
    if precision == Precision::Fp32 && check(depth, batch, Precision::Bf16, cuda, available).is_ok() {
        ways.push("--precision bf16".to_string());
    }
    if !cuda {
        ways.push("a GPU".to_string());
    }
    let hint = if ways.is_empty() { "nothing smaller fits".to_string() } else { format!("try {}", ways.join(", or ")) };
    Err(TooBig { depth, batch, need, available, where_: if cuda { "GPU" } else { "host" }, hint })
}

/// Memory this process can still take without being killed, in bytes: what the kernel can give
/// without swapping (`MemAvailable`), or less where a control group's limit (a container's, a
/// scheduler job's) leaves less.
pub fn available_host() -> u64 {
    machine_available().min(cgroup::headroom().map_or(u64::MAX, |r| r.free))
}

/// What the kernel can give without swapping (`MemAvailable`), in bytes, whatever the cgroups say.
fn machine_available() -> u64 {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    system.available_memory()
}

/// What a process holding `resident` bytes could hold in all, given the machine's `available`
/// memory: both together, capped by its control group's room and limit (shared library pages
/// charged to another group make the process's resident figure larger than its group's charge).
pub fn room_beside(available: u64, resident: u64) -> u64 {
    match cgroup::headroom() {
        Some(room) => available.min(room.free).saturating_add(resident).min(room.limit),
        None => available.saturating_add(resident),
    }
}

/// Resident memory of this process now (`VmRSS`), in bytes; 0 off Linux.
pub fn resident_bytes() -> u64 {
    resident_bytes_in("/proc/self/status")
}

/// Resident memory of process `pid` now, in bytes; 0 when it cannot be read.
pub fn resident_bytes_of(pid: u32) -> u64 {
    resident_bytes_in(&format!("/proc/{pid}/status"))
}

/// Whether a run needing `need` bytes fits beside runs already going: `available` is what is
/// free now, and each running run, given as (its estimate, what it holds now), will still take
/// the difference as it grows to its peak.
pub fn fits_beside(need: u64, available: u64, running: &[(u64, u64)]) -> bool {
    let growth: u64 = running.iter().map(|&(estimate, resident)| estimate.saturating_sub(resident)).sum();
    need <= available.saturating_sub(growth)
}

fn resident_bytes_in(status_file: &str) -> u64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(|v| v.trim().trim_end_matches("kB").trim());
    kib.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0).saturating_mul(1024)
}

/// Used and total memory of CUDA device `index` in bytes, from `nvidia-smi` (libtorch's allocator
/// statistics are not reachable through tch): the whole device's, other processes included.
pub fn gpu_memory(index: u32) -> Option<(u64, u64)> {
    let text = crate::nvidia_smi::query(index as usize, "memory.used,memory.total", "csv,noheader,nounits")?;
    let mut parts = text.split(',').map(|p| p.trim().parse::<u64>());
    match (parts.next(), parts.next()) {
        (Some(Ok(used)), Some(Ok(total))) => Some((used.saturating_mul(1 << 20), total.saturating_mul(1 << 20))),
        _ => None,
    }
}

/// Whether a run fits now: on the CPU, against what is free plus what this process already holds
/// (the estimate counts the libraries and the data set, which a running process has loaded; at a
/// depth switch, the old run's memory too, which the new one takes over). On CUDA the GPU's free
/// memory decides, plus what the run being replaced (`releasing`) holds there; where the GPU's
/// figure cannot be read, the run is let through.
pub fn fits_now(
    depth: Depth,
    batch: usize,
    precision: Precision,
    gpu: Option<u32>,
    releasing: Option<Estimate>,
) -> Result<Estimate, TooBig> {
    match gpu {
        Some(index) => match gpu_memory(index) {
            Some((used, total)) => {
                let held = releasing.and_then(|e| e.device).unwrap_or(0);
                check(depth, batch, precision, true, total.saturating_sub(used) + held)
            }
            None => Ok(estimate(depth, batch, precision, true)),
        },
        // The process's own memory counts as available: the estimate includes it.
        None => check(depth, batch, precision, false, room_beside(machine_available(), resident_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::PAPER_RESULTS;

    fn d(depth: u32) -> Depth {
        Depth::new(depth).unwrap()
    }

    #[test]
    fn the_parameter_count_is_the_papers() {
        for r in PAPER_RESULTS.iter() {
            assert_eq!(params(d(r.depth)), r.params, "ResNet-{}", r.depth);
        }
    }

    /// Peak resident memory measured on an Intel Xeon with AMX (family 6 model 207, 2 cores; KiB
    /// from `/usr/bin/time -f %M`, a 3-iteration run, 4 for ResNet-1202 at 128; docs/memory.md),
    /// with mimalloc: the estimate is never below a measured peak (a run it lets through is not
    /// killed) and at most 25 % above it in fp32; in bf16 the small run's floor is 41 % above.
    #[test]
    fn the_estimate_bounds_the_measured_peaks_from_above() {
        let measured = [
            (8, 1, 1_160_084),
            (20, 64, 1_199_744),
            (20, 128, 1_278_796),
            (56, 64, 1_179_508),
            (56, 128, 1_221_072),
            (110, 64, 1_196_396),
            (110, 128, 1_784_788),
            (1202, 16, 2_569_684),
            (1202, 32, 4_194_692),
            (1202, 64, 7_341_676),
            (1202, 128, 13_862_908),
        ];
        let bf16 = [(20, 128, 970_248), (110, 128, 1_203_976), (1202, 16, 1_776_808)];
        let runs = measured.iter().map(|m| (Precision::Fp32, *m)).chain(bf16.iter().map(|m| (Precision::Bf16, *m)));
        for (precision, (depth, batch, kib)) in runs {
            let est = estimate(d(depth), batch, precision, false).host as f64;
            let ratio = est / (kib as f64 * 1024.0);
            let most = if precision == Precision::Bf16 { 1.45 } else { 1.25 };
            assert!((1.0..most).contains(&ratio), "ResNet-{depth} batch {batch} {precision:?}: {ratio:.3}");
        }
    }

    /// Unmeasured (no GPU was lent): pinned above the 3 GiB that PyTorch processes on a GPU
    /// are seen to hold on the host, whatever the network, since the training state is on the GPU.
    #[test]
    fn the_host_beside_a_gpu_run_holds_the_cuda_libraries_with_headroom() {
        for (depth, batch) in [(20, 128), (1202, 16)] {
            let e = estimate(d(depth), batch, Precision::Fp32, true);
            assert_eq!(e.host, ((572 + 2048) * 5 / 4) << 20, "ResNet-{depth} at {batch}");
            assert!(e.host > 3 << 30, "above the most seen: {} MiB", e.host >> 20);
        }
    }

    #[test]
    fn a_queued_run_waits_for_what_running_runs_will_still_take() {
        let gib = 1u64 << 30;
        // 10 GiB free; one run estimated at 6 GiB holds 2 GiB so far: 4 GiB more will go to it.
        assert!(fits_beside(6 * gib, 10 * gib, &[(6 * gib, 2 * gib)]));
        assert!(!fits_beside(7 * gib, 10 * gib, &[(6 * gib, 2 * gib)]));
        // A run past its estimate reserves nothing more.
        assert!(fits_beside(10 * gib, 10 * gib, &[(gib, 3 * gib)]));
        assert!(fits_beside(10 * gib, 10 * gib, &[]));
        assert!(resident_bytes_of(std::process::id()) > 0);
        assert_eq!(resident_bytes_of(u32::MAX), 0);
    }

    #[test]
    fn an_absurd_batch_needs_more_than_there_is_instead_of_wrapping_around() {
        for cuda in [false, true] {
            let e = estimate(d(1202), usize::MAX, Precision::Fp32, cuda);
            assert_eq!(e.device.unwrap_or(e.host), u64::MAX, "cuda {cuda}: {e:?}");
            assert!(check(d(1202), usize::MAX, Precision::Fp32, cuda, u64::MAX - 1).is_err(), "cuda {cuda}");
        }
        // What is free plus what a process holds does not wrap either.
        assert!(room_beside(u64::MAX, u64::MAX) >= u64::MAX / 2);
    }

    #[test]
    fn a_run_that_does_not_fit_is_refused_with_what_would() {
        let gib = 1u64 << 30;
        let e = check(d(1202), 128, Precision::Fp32, false, 12 * gib).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("ResNet-1202 at batch 128") && text.contains("--force"), "{text}");
        assert!(text.contains("--batch-size 64") && text.contains("a GPU"), "{text}");
        assert!(e.need > 12 * gib);
        // The suggested batch does fit; the next power of two does not.
        assert!(check(d(1202), 64, Precision::Fp32, false, 12 * gib).is_ok());
        assert!(check(d(20), 128, Precision::Fp32, false, 12 * gib).is_ok());
        // On a GPU the device's memory decides.
        let on_gpu = check(d(1202), 128, Precision::Fp32, true, 4 * gib).unwrap_err().to_string();
        assert!(on_gpu.contains("GPU memory") && !on_gpu.contains("a GPU"), "{on_gpu}");
        assert_eq!(largest_batch(d(20), Precision::Fp32, false, 1 << 20), None, "below the base nothing fits");
    }
}
