//! The instruction-set caps that let the numerical tests stand in for other CPUs take effect:
//! at each level this CPU can stand in for (`common::isa`), oneDNN says it is capped to that
//! level and its convolutions run that level's kernels (`ONEDNN_VERBOSE`), ATen dispatches its
//! own kernels at the level's capability, and our fused kernels choose the level's.
mod common;

use common::isa::{Level, child, here};
use resnet_tui::model::to_channels_last;
use tch::{Device, Kind, Tensor};

/// What a level must show: oneDNN's words for its instruction set, ATen's capability, our
/// kernels' level, and the instruction-set tags no convolution may run with.
struct Expected {
    onednn_isa: &'static str,
    aten: &'static str,
    kernels: &'static str,
    above: &'static [&'static str],
}

fn expected(level: &Level) -> Expected {
    match level.onednn {
        "AVX2" => Expected { onednn_isa: "AVX2", aten: "AVX2", kernels: "avx2", above: &["avx512", "amx"] },
        "AVX512_CORE" => Expected {
            onednn_isa: "AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions",
            aten: "AVX512",
            kernels: "avx512",
            above: &["avx512_core_bf16", "amx"],
        },
        "AVX512_CORE_BF16" => {
            Expected { onednn_isa: "bfloat16 support", aten: "AVX512", kernels: "avx512", above: &["amx"] }
        }
        _ => Expected { onednn_isa: "Intel AMX", aten: "AVX512", kernels: "avx512", above: &[] },
    }
}

#[test]
fn each_instruction_set_cap_takes_effect_in_onednn_aten_and_our_kernels() {
    let levels = here();
    assert!(!levels.is_empty(), "this CPU runs no level to stand in for");
    for level in &levels {
        let want = expected(level);
        let out = child("convolutions_at_this_level", level)
            .arg("--include-ignored")
            .env("ONEDNN_VERBOSE", "1")
            .output()
            .expect("start this test binary again");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains("1 passed"), "at {}:\n{said}", level.name);
        let info = said.lines().find(|l| l.contains(",info,cpu,isa:")).unwrap_or_default();
        assert!(info.contains(want.onednn_isa), "at {}: oneDNN says {info:?}", level.name);
        assert!(said.contains(&format!("aten capability: {}\n", want.aten)), "at {}:\n{said}", level.name);
        assert!(said.contains(&format!("fused kernels: {}\n", want.kernels)), "at {}:\n{said}", level.name);
        let kernels = convolution_kernels(&said);
        assert!(kernels.len() >= 2, "at {}: no convolution in oneDNN's lines:\n{said}", level.name);
        for kernel in &kernels {
            let tag = want.above.iter().find(|t| kernel.contains(*t));
            assert!(tag.is_none(), "at {}: oneDNN ran {kernel}, above the cap", level.name);
        }
        println!("{}: oneDNN {info:?}; convolutions {kernels:?}", level.name);
    }
}

/// The implementation names of the convolutions oneDNN ran: the field after `convolution`.
fn convolution_kernels(said: &str) -> Vec<String> {
    let mut kernels: Vec<String> = said
        .lines()
        .filter(|l| l.contains(",exec,cpu,"))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            let at = fields.iter().position(|f| *f == "convolution")?;
            fields.get(at + 1).map(|k| k.to_string())
        })
        .collect();
    kernels.dedup();
    kernels
}

/// Run by the test above in a child process at one level (its caps in the environment): a
/// training-shaped convolution forward and backward in fp32 and bf16, channels-last as the
/// trainer's CPU pass runs them, and what ATen and our kernels chose.
#[test]
#[ignore = "a child's part: each_instruction_set_cap_takes_effect_in_onednn_aten_and_our_kernels runs it at each level"]
fn convolutions_at_this_level() {
    for kind in [Kind::Float, Kind::BFloat16] {
        let x = to_channels_last(&Tensor::randn([8, 16, 32, 32], (kind, Device::Cpu))).set_requires_grad(true);
        let w = to_channels_last(&Tensor::randn([16, 16, 3, 3], (kind, Device::Cpu))).set_requires_grad(true);
        x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1).sum(Kind::Float).backward();
    }
    println!("aten capability: {}", resnet_tui::fused::aten_cpu_capability());
    println!("fused kernels: {}", resnet_tui::fused::kernels::Level::best().name());
}
