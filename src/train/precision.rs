//! `--precision auto`: bf16 where it is clearly faster on this device, fp32 elsewhere.
//!
//! On a GPU, bf16 on compute capability 8.0 or later (tensor cores with bf16). On a CPU, the
//! flags only decide whether bf16 is worth measuring (`avx512_bf16` or `amx_bf16`; without them
//! bf16 is emulated and several times slower); with them, a few training steps in each precision
//! decide, measured once per machine and cached. The choice and its reason, with the figures,
//! are recorded in the run's config.

use super::sgd::Sgd;
use super::step::train_step;
use crate::config::{Depth, Precision, Shortcut};
use crate::model::Network;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// bf16 must be at least this much faster than fp32 to be chosen: within it, run-to-run noise
/// and the cost of a precision change outweigh the gain.
pub const MARGIN: f64 = 1.15;
/// CPU flags of bf16 arithmetic units.
pub const BF16_FLAGS: [&str; 2] = ["avx512_bf16", "amx_bf16"];

/// Training throughput of both precisions, measured on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub fp32_images_per_sec: f64,
    pub bf16_images_per_sec: f64,
}

/// What the device is, as far as the choice goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Hardware {
    /// A CPU and the bf16 flags it has.
    Cpu { model: String, bf16_flags: Vec<String> },
    /// A CUDA GPU and its compute capability, when it could be read.
    Cuda { capability: Option<(u32, u32)> },
}

/// The precision chosen and why, in words for the header, the log and `summary`.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub precision: Precision,
    pub why: String,
}

/// Whether bf16 needs measuring on this hardware (a CPU with bf16 units).
pub fn worth_measuring(hw: &Hardware) -> bool {
    matches!(hw, Hardware::Cpu { bf16_flags, .. } if !bf16_flags.is_empty())
}

/// The decision, from the hardware and (on a CPU with bf16 units) the measured speeds.
pub fn decide(hw: &Hardware, measured: Option<Measured>) -> Choice {
    match hw {
        Hardware::Cuda { capability: Some((major, minor)) } if *major >= 8 => Choice {
            precision: Precision::Bf16,
            why: format!(
                "auto: bf16 on a GPU of compute capability {major}.{minor} (8.0 or later has bf16 tensor cores)"
            ),
        },
        Hardware::Cuda { capability: Some((major, minor)) } => Choice {
            precision: Precision::Fp32,
            why: format!("auto: fp32 on a GPU of compute capability {major}.{minor} (bf16 needs 8.0 or later)"),
        },
        Hardware::Cuda { capability: None } => Choice {
            precision: Precision::Fp32,
            why: "auto: fp32 (the GPU's compute capability could not be read)".into(),
        },
        Hardware::Cpu { model, bf16_flags } if bf16_flags.is_empty() => Choice {
            precision: Precision::Fp32,
            why: format!(
                "auto: fp32 on {model}: no bf16 units (neither avx512_bf16 nor amx_bf16), bf16 would be emulated"
            ),
        },
        Hardware::Cpu { model, bf16_flags } => match measured {
            None => Choice { precision: Precision::Fp32, why: format!("auto: fp32 on {model}: bf16 not measured") },
            Some(m) => {
                let ratio = m.bf16_images_per_sec / m.fp32_images_per_sec.max(1e-9);
                let faster = ratio >= MARGIN;
                let figures = format!(
                    "bf16 {:.0} vs fp32 {:.0} img/s, {ratio:.2}x, on {model} ({})",
                    m.bf16_images_per_sec,
                    m.fp32_images_per_sec,
                    bf16_flags.join(", ")
                );
                if faster {
                    Choice { precision: Precision::Bf16, why: format!("auto: bf16: {figures}") }
                } else {
                    Choice { precision: Precision::Fp32, why: format!("auto: fp32: {figures}, under {MARGIN}x") }
                }
            }
        },
    }
}

/// This machine's hardware for `device`.
pub fn hardware(device: Device) -> Hardware {
    match device {
        Device::Cuda(i) => Hardware::Cuda { capability: cuda_capability(i) },
        _ => cpu_from_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()),
    }
}

/// The CPU as a `/proc/cpuinfo` text describes it: its first model name and which bf16 flags its
/// first flags line lists.
fn cpu_from_cpuinfo(info: &str) -> Hardware {
    let field = |key: &str| crate::provenance::cpuinfo_field(info, key);
    let flags = field("flags");
    let bf16_flags = BF16_FLAGS.iter().filter(|f| flags.split(' ').any(|x| x == **f)).map(|f| f.to_string());
    let model = Some(field("model name")).filter(|m| !m.is_empty()).unwrap_or_else(|| "this CPU".into());
    Hardware::Cpu { model, bf16_flags: bf16_flags.collect() }
}

/// Compute capability of CUDA device `index`, from `nvidia-smi`.
fn cuda_capability(index: usize) -> Option<(u32, u32)> {
    let text = crate::nvidia_smi::query(index, "compute_cap", "csv,noheader")?;
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Rounds of the timing; each precision's figure is its best round.
const ROUNDS: usize = 3;
/// Timed steps a round, after two untimed ones per precision.
const STEPS_A_ROUND: usize = 3;

/// A network and optimizer training in one precision on random images (the time of a step does
/// not depend on the pixels), for timing.
struct Trial {
    network: Network,
    sgd: Sgd,
    images: Tensor,
    labels: Tensor,
}

impl Trial {
    fn new(depth: Depth, batch: usize, precision: Precision) -> Trial {
        tch::manual_seed(0);
        let mut network = Network::new(depth, Shortcut::A, Device::Cpu);
        network.to_channels_last();
        network.net.compute = crate::model::compute_kind(precision);
        let vars: Vec<(String, Tensor)> =
            network.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        let sgd = Sgd::new(vars, 0.9, 1e-4);
        let images =
            crate::model::to_channels_last(&Tensor::randn([batch as i64, 3, 32, 32], (Kind::Float, Device::Cpu)));
        let labels = Tensor::randint(10, [batch as i64], (Kind::Int64, Device::Cpu));
        Trial { network, sgd, images, labels }
    }

    /// Images a second over `steps` steps.
    fn run(&mut self, steps: usize) -> Result<f64, super::TrainError> {
        let started = Instant::now();
        for _ in 0..steps {
            train_step(&self.network.net, &mut self.sgd, &self.images, &self.labels, 0.01)?;
        }
        let images = steps * self.images.size()[0] as usize;
        Ok(images as f64 / started.elapsed().as_secs_f64().max(1e-9))
    }
}

/// Training images a second in fp32 and in bf16: the two alternate over [`ROUNDS`] rounds and
/// each keeps its best, so that a stretch in which the machine was busy with something else (or a
/// first call's set-up) decides nothing.
fn measure(depth: Depth, batch: usize) -> Result<Measured, super::TrainError> {
    let mut fp32 = Trial::new(depth, batch, Precision::Fp32);
    let mut bf16 = Trial::new(depth, batch, Precision::Bf16);
    fp32.run(2)?;
    bf16.run(2)?;
    let mut best = Measured { fp32_images_per_sec: 0.0, bf16_images_per_sec: 0.0 };
    for _ in 0..ROUNDS {
        best.fp32_images_per_sec = best.fp32_images_per_sec.max(fp32.run(STEPS_A_ROUND)?);
        best.bf16_images_per_sec = best.bf16_images_per_sec.max(bf16.run(STEPS_A_ROUND)?);
    }
    Ok(best)
}

/// Where measurements are kept: one per CPU (its model and its bf16 units), thread count,
/// libtorch, the pass the CPU trains with (fused or libtorch's autograd: they differ in speed),
/// depth and batch.
fn cache_file() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("resnet-tui").join("precision.json"))
}

/// The key of a measurement. The bf16 flags belong to it beside the model's name: a virtual
/// machine may name a Xeon with AMX and one whose AMX it hides alike ("Intel(R) Xeon(R)
/// Processor"), and a home folder shared by a cluster's nodes keeps one cache for all of them.
fn cache_key(model: &str, bf16_flags: &[String], depth: Depth, batch: usize) -> String {
    let threads = tch::get_num_threads();
    let passes = crate::fused::passes();
    format!(
        "{model} ({}) | {threads} threads | libtorch {} | {passes} | ResNet-{depth} batch {batch}",
        bf16_flags.join(", "),
        env!("RESNET_TUI_LIBTORCH_VERSION")
    )
}

/// Chooses the precision for a run on `device`: measures (a few seconds, once per machine and
/// thread count) only on a CPU with bf16 units, with the threads libtorch has now, so the caller
/// sets the run's first. `say` reports what takes time.
pub fn choose(device: Device, depth: Depth, batch: usize, say: &dyn Fn(&str)) -> Choice {
    let hw = hardware(device);
    if !worth_measuring(&hw) {
        return decide(&hw, None);
    }
    let Hardware::Cpu { model, bf16_flags } = &hw else { return decide(&hw, None) };
    let key = cache_key(model, bf16_flags, depth, batch);
    let file = cache_file();
    let mut cache: BTreeMap<String, Measured> = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let measured = match cache.get(&key) {
        Some(m) => *m,
        None => {
            say("choosing the precision: timing a few steps in fp32 and bf16, alternating (once on this machine)");
            // A timing that libtorch could not run decides nothing: fp32, as without bf16 units.
            let Ok(m) = measure(depth, batch) else {
                return decide(&hw, None);
            };
            cache.insert(key, m);
            if let Some(f) = &file {
                let _ = std::fs::create_dir_all(f.parent().unwrap_or(f));
                let _ = crate::atomic::write(f, &serde_json::to_vec_pretty(&cache).unwrap_or_default());
            }
            m
        }
    };
    decide(&hw, Some(measured))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_units_are_read_from_the_flags_and_a_cpu_without_a_model_name_is_this_cpu() {
        let zen4 = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512vl\n\n\
                    processor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512vl\n";
        let sapphire = "model name\t: Intel(R) Xeon(R) Platinum 8488C\nflags\t\t: avx512_bf16 amx_bf16 amx_tile\n";
        let zen3 = "flags\t\t: fpu avx2 fma\n";
        let read = |text: &str| match cpu_from_cpuinfo(text) {
            Hardware::Cpu { model, bf16_flags } => (model, bf16_flags),
            other => panic!("{other:?}"),
        };
        assert_eq!(read(zen4), ("AMD EPYC 9R14".to_string(), vec!["avx512_bf16".to_string()]));
        assert_eq!(read(sapphire).1, vec!["avx512_bf16".to_string(), "amx_bf16".to_string()]);
        assert_eq!(read(zen3), ("this CPU".to_string(), Vec::<String>::new()));
        // A flag that merely contains the name is not the flag.
        assert!(read("flags\t: xavx512_bf16y\n").1.is_empty());
    }

    #[test]
    fn a_measurement_is_kept_per_cpu_model_and_bf16_units() {
        let depth = Depth::new(20).unwrap();
        let flags = |f: &[&str]| f.iter().map(|f| f.to_string()).collect::<Vec<_>>();
        let name = "Intel(R) Xeon(R) Processor";
        let amx = cache_key(name, &flags(&["avx512_bf16", "amx_bf16"]), depth, 128);
        let hidden_amx = cache_key(name, &flags(&["avx512_bf16"]), depth, 128);
        assert_ne!(amx, hidden_amx, "one name, other bf16 units: two measurements");
        assert!(amx.starts_with("Intel(R) Xeon(R) Processor (avx512_bf16, amx_bf16) |"), "{amx}");
        assert_eq!(amx, cache_key(name, &flags(&["avx512_bf16", "amx_bf16"]), depth, 128));
        assert_ne!(amx, cache_key(name, &flags(&["avx512_bf16", "amx_bf16"]), depth, 64));
    }

    fn cpu(flags: &[&str]) -> Hardware {
        Hardware::Cpu { model: "Some CPU".into(), bf16_flags: flags.iter().map(|f| f.to_string()).collect() }
    }

    fn m(fp32: f64, bf16: f64) -> Option<Measured> {
        Some(Measured { fp32_images_per_sec: fp32, bf16_images_per_sec: bf16 })
    }

    #[test]
    fn auto_takes_bf16_only_where_it_is_clearly_faster() {
        // Zen 4 as measured in the issue: bf16 795 img/s against fp32 560: bf16.
        let zen4 = decide(&cpu(&["avx512_bf16"]), m(560.0, 795.0));
        assert_eq!(zen4.precision, Precision::Bf16);
        assert!(
            zen4.why.contains("bf16 795 vs fp32 560 img/s, 1.42x") && zen4.why.contains("avx512_bf16"),
            "{}",
            zen4.why
        );
        // A Xeon with the flag where bf16 was 5x slower: fp32, with the figures.
        let xeon = decide(&cpu(&["avx512_bf16"]), m(500.0, 100.0));
        assert_eq!(xeon.precision, Precision::Fp32);
        assert!(xeon.why.contains("0.20x") && xeon.why.contains("under 1.15x"), "{}", xeon.why);
        // Faster, but within the margin: fp32.
        assert_eq!(decide(&cpu(&["amx_bf16"]), m(500.0, 560.0)).precision, Precision::Fp32);
        assert_eq!(decide(&cpu(&["amx_bf16"]), m(500.0, 575.0)).precision, Precision::Bf16);
        // No bf16 units (this project's Zen 3): fp32 without measuring.
        let zen3 = cpu(&[]);
        assert!(!worth_measuring(&zen3));
        let c = decide(&zen3, None);
        assert_eq!(c.precision, Precision::Fp32);
        assert!(c.why.contains("no bf16 units"), "{}", c.why);
        // GPUs by compute capability.
        assert_eq!(decide(&Hardware::Cuda { capability: Some((9, 0)) }, None).precision, Precision::Bf16);
        assert_eq!(decide(&Hardware::Cuda { capability: Some((7, 5)) }, None).precision, Precision::Fp32);
        assert_eq!(decide(&Hardware::Cuda { capability: None }, None).precision, Precision::Fp32);
        assert!(!worth_measuring(&Hardware::Cuda { capability: Some((8, 0)) }));
    }

    /// The bf16 flags as the CPU itself reports them (CPUID, and for AMX whether the kernel
    /// enabled the tile state, as it must before listing the flag), not as /proc/cpuinfo lists
    /// them.
    #[cfg(target_arch = "x86_64")]
    fn bf16_flags_by_cpuid() -> Vec<String> {
        use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
        #[target_feature(enable = "xsave")]
        fn xcr0() -> u64 {
            // SAFETY: only called once OSXSAVE says the OS enabled XSAVE, so `xgetbv` cannot fault.
            unsafe { _xgetbv(0) }
        }
        let mut flags = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            flags.push("avx512_bf16".to_string());
        }
        #[allow(unused_unsafe)] // `__cpuid` is safe from Rust 1.87, not before.
        let (max_leaf, os_xsave, amx_bf16) =
            unsafe { (__cpuid(0).eax, __cpuid(1).ecx & (1 << 27) != 0, __cpuid_count(7, 0).edx & (1 << 22) != 0) };
        // SAFETY: XSAVE is there (OSXSAVE), the one feature `xcr0` is compiled for.
        let tiles = os_xsave && (unsafe { xcr0() } >> 17) & 0b11 == 0b11;
        if max_leaf >= 7 && amx_bf16 && tiles {
            flags.push("amx_bf16".to_string());
        }
        flags
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn bf16_flags_by_cpuid() -> Vec<String> {
        Vec::new()
    }

    #[test]
    fn this_machines_cpu_is_read_with_its_model_and_bf16_flags() {
        let Hardware::Cpu { model, bf16_flags } = hardware(Device::Cpu) else { panic!("a CPU") };
        assert_eq!(bf16_flags, bf16_flags_by_cpuid(), "the bf16 flags, against CPUID");
        // The model, against sysinfo's own reading of it.
        let sys = sysinfo::System::new_with_specifics(
            sysinfo::RefreshKind::nothing().with_cpu(sysinfo::CpuRefreshKind::nothing()),
        );
        let brand = sys.cpus().first().map(|c| c.brand().trim().to_string()).unwrap_or_default();
        assert_eq!(model, if brand.is_empty() { "this CPU".to_string() } else { brand });
    }
}
