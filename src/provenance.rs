//! Which build is running and on which CPU: what each start of a run records, so that a run
//! trained over many sessions on many machines says which binary and which CPU trained each stretch.

use std::sync::OnceLock;

/// This binary, named so that two builds of the same version differ:
/// `resnet-tui 0.1.0 (binary 3f2a9c01d4e5b6a7, libtorch 2.11.0)`. The hash is of the executable
/// file itself, so a rebuild with any change is another build, and the same file on another
/// machine is the same one.
pub fn build() -> &'static str {
    static BUILD: OnceLock<String> = OnceLock::new();
    BUILD.get_or_init(|| {
        let binary = std::env::current_exe()
            .and_then(std::fs::read)
            .map(|bytes| format!("{:016x}", fnv1a(&bytes)))
            .unwrap_or_else(|_| "unreadable".into());
        format!(
            "resnet-tui {} (binary {binary}, libtorch {})",
            env!("CARGO_PKG_VERSION"),
            env!("RESNET_TUI_LIBTORCH_VERSION")
        )
    })
}

/// This machine's CPU as `/proc/cpuinfo` names it, with its family and model (which tell the
/// generations of one brand name apart) and the flags that decide our kernels and bf16:
/// `Intel(R) Xeon(R) Processor (family 6 model 207; avx512f, avx512_bf16)`.
pub fn cpu() -> &'static str {
    static CPU: OnceLock<String> = OnceLock::new();
    CPU.get_or_init(|| cpu_from_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()))
}

/// The flags that change what we compute or how fast: the fused kernels' levels, oneDNN's bf16.
const TELLING_FLAGS: [&str; 5] = ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"];

/// The value of the first `key : value` line of a `/proc/cpuinfo` text (the first CPU's), or
/// an empty string. The key is matched whole: `model` is not `model name`.
pub fn cpuinfo_field(info: &str, key: &str) -> String {
    info.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

fn cpu_from_cpuinfo(info: &str) -> String {
    let field = |key: &str| cpuinfo_field(info, key);
    let name = Some(field("model name")).filter(|m| !m.is_empty()).unwrap_or_else(|| "unknown CPU".into());
    let flags = field("flags");
    let listed: Vec<&str> = TELLING_FLAGS.into_iter().filter(|f| flags.split(' ').any(|x| x == *f)).collect();
    let listed = if listed.is_empty() { "no AVX2".to_string() } else { listed.join(", ") };
    match (field("cpu family"), field("model")) {
        (family, model) if !family.is_empty() && !model.is_empty() => {
            format!("{name} (family {family} model {model}; {listed})")
        }
        _ => format!("{name} ({listed})"),
    }
}

/// FNV-1a, 64 bits: stable across Rust versions (unlike `DefaultHasher`), and enough to tell
/// builds apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_is_named_with_its_family_model_and_the_flags_that_matter() {
        let xeon = "processor\t: 0\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n\
                    flags\t\t: fpu avx2 avx512f avx512_bf16 avx512vl\n";
        assert_eq!(
            cpu_from_cpuinfo(xeon),
            "Intel(R) Xeon(R) Processor (family 6 model 207; avx2, avx512f, avx512_bf16)"
        );
        let bare = "model name\t: Old CPU\nflags\t\t: fpu sse2\n";
        assert_eq!(cpu_from_cpuinfo(bare), "Old CPU (no AVX2)");
        assert_eq!(cpu_from_cpuinfo(""), "unknown CPU (no AVX2)");
    }

    #[test]
    fn the_build_names_this_binary_by_its_contents() {
        let build = build();
        assert!(build.starts_with(&format!("resnet-tui {} (binary ", env!("CARGO_PKG_VERSION"))), "{build}");
        assert!(!build.contains("unreadable"), "{build}");
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
