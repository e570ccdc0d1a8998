//! Instruction-set levels this machine can stand in for. A numerical test run at a level
//! computes as a CPU of that level would: oneDNN's convolutions (`ONEDNN_MAX_CPU_ISA`), ATen's
//! own kernels (`ATEN_CPU_CAPABILITY`) and our fused kernels (which obey oneDNN's cap) are all
//! capped to it. Both libraries read their caps once, when first used, so each level runs in a
//! child process: the test binary itself, asked to run that one test with the caps set.

use std::process::Command;

/// One level: which CPUs compute this way, and the caps that make this machine do so.
#[derive(Clone, Copy, Debug)]
pub struct Level {
    /// The CPUs this level stands in for, as the tests print it.
    pub name: &'static str,
    pub onednn: &'static str,
    pub aten: &'static str,
    /// The `/proc/cpuinfo` flags a CPU needs to run at this level.
    needs: &'static [&'static str],
}

/// From the lowest up. Each is a kind of CPU we have met: Zen 3 (AVX2), a Xeon without bf16
/// (AVX-512), Zen 4 and 5 or a Xeon without AMX (AVX-512 with bf16), a Xeon with AMX.
pub const LEVELS: [Level; 4] = [
    Level { name: "avx2 (as Zen 3)", onednn: "AVX2", aten: "avx2", needs: &["avx2", "fma"] },
    Level {
        name: "avx512 (as a Xeon without bf16)",
        onednn: "AVX512_CORE",
        aten: "avx512",
        needs: &["avx512f", "avx512bw", "avx512vl", "avx512dq"],
    },
    Level {
        name: "avx512_bf16 (as Zen 4)",
        onednn: "AVX512_CORE_BF16",
        aten: "avx512",
        needs: &["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"],
    },
    Level {
        name: "amx (as a Xeon with AMX)",
        onednn: "AVX512_CORE_AMX",
        aten: "avx512",
        needs: &["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "amx_bf16", "amx_tile"],
    },
];

/// Set in a child: the level it runs at (its caps are set beside it).
const CHILD: &str = "RESNET_TUI_TEST_ISA_LEVEL";

/// The levels this CPU runs, from the lowest up: every level at or below its own.
pub fn here() -> Vec<Level> {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().collect())
        .unwrap_or_default();
    LEVELS.into_iter().filter(|l| l.needs.iter().all(|n| flags.contains(n))).collect()
}

/// The level this process runs at, when it is a child that `at_each_level` started.
pub fn current() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// Runs `body` at every level this machine can stand in for. In the parent, starts this test
/// binary once per level for the test `name` (its full path, as `cargo test` lists it) and fails
/// with every failing level's output; in such a child, runs `body` itself.
pub fn at_each_level(name: &str, body: impl FnOnce()) {
    at_levels_from(LEVELS[0].onednn, name, body)
}

/// As [`at_each_level`], from the level whose oneDNN cap is `lowest` up.
pub fn at_levels_from(lowest: &str, name: &str, body: impl FnOnce()) {
    if current().is_some() {
        body();
        return;
    }
    let from = LEVELS.iter().position(|l| l.onednn == lowest).expect("a level of LEVELS");
    let levels: Vec<Level> =
        here().into_iter().filter(|l| LEVELS[from..].iter().any(|k| k.onednn == l.onednn)).collect();
    assert!(!levels.is_empty(), "this CPU runs none of the levels from {lowest} up: no level to stand in for");
    let mut failed = Vec::new();
    for level in &levels {
        let out = child(name, level).output().expect("start this test binary again");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // A filter that matched nothing passes too: make sure the test really ran.
        let ran = said.contains("1 passed") || said.contains("1 failed");
        println!("== {} at {}: {}", name, level.name, if out.status.success() && ran { "passed" } else { "FAILED" });
        if !out.status.success() || !ran {
            failed.push(format!("at {}:\n{said}", level.name));
        }
    }
    assert!(failed.is_empty(), "{name} failed\n{}", failed.join("\n"));
}

/// This test binary, asked to run test `name` alone at `level`.
pub fn child(name: &str, level: &Level) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, level.name)
        .env("ONEDNN_MAX_CPU_ISA", level.onednn)
        .env("ATEN_CPU_CAPABILITY", level.aten);
    cmd
}
