//! Figure 7's layer responses, as the trainer logs them with each evaluation, equal what PyTorch
//! computes with forward hooks on the same weights and images: for a ResNet and a plain net.
mod common;

use common::*;
use resnet_tui::protocol::Event;
use std::path::Path;

/// The responses of the run's last evaluation, from its log.
fn logged_responses(run: &Path) -> Vec<f64> {
    let last = events(run).into_iter().rev().find_map(|e| match e {
        Event::Eval(r) => Some(r),
        _ => None,
    });
    last.expect("the run evaluated").responses
}

/// The same responses by `scripts/pytorch_responses.py` from the run's exported weights.
fn pytorch_responses(s: &Sandbox, run: &Path, plain: bool) -> Vec<f64> {
    let weights = s.path("weights.safetensors");
    assert_ok(&export_pytorch(run, &weights));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut py = std::process::Command::new(root.join(".venv/bin/python"));
    py.arg(root.join("scripts/pytorch_responses.py")).arg("8").arg(&weights).arg(s.data());
    // Every test image of the synthetic set: fewer than the 500 the trainer measures.
    py.arg(RECORDS.to_string());
    if plain {
        py.arg("--plain");
    }
    let out = py.output().expect("run the PyTorch side");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "PyTorch failed:\n{said}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not a JSON list ({e}):\n{said}"))
}

fn responses_agree(plain: bool) {
    let s = Sandbox::new();
    let mut train = s.train(&["--iters", "6", "--eval-every", "3"]);
    if plain {
        train.arg("--plain");
    }
    assert_ok(&output(train));
    let run = s.only_run();
    let ours = logged_responses(&run);
    // ResNet-8: the stem's 3x3 layer and two in each of three blocks.
    assert_eq!(ours.len(), 7, "{ours:?}");
    let theirs = pytorch_responses(&s, &run, plain);
    assert_eq!(theirs.len(), ours.len(), "ours {ours:?}, PyTorch {theirs:?}");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!((a - b).abs() < 1e-4, "layer {}: ours {a}, PyTorch {b}", i + 1);
    }
    assert!(ours.iter().all(|v| v.is_finite() && *v > 0.0), "{ours:?}");
}

#[test]
fn a_resnets_logged_layer_responses_equal_pytorch_forward_hooks() {
    common::isa::at_each_level("a_resnets_logged_layer_responses_equal_pytorch_forward_hooks", || {
        responses_agree(false);
    });
}

#[test]
fn a_plain_nets_logged_layer_responses_equal_pytorch_forward_hooks() {
    responses_agree(true);
}
