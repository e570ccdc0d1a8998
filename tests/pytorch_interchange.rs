//! Weights between resnet-tui and PyTorch: `export --pytorch` writes a file that the project's
//! PyTorch model loads with `load_state_dict(strict=True)`, and `train --init-from` starts a run
//! from such a file.
mod common;

use common::*;
use std::path::Path;

fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn an_exported_run_loads_into_pytorch_and_a_run_starts_from_it() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "6", "--eval-every", "6"])));
    let run = s.only_run();
    let file = s.path("resnet8.safetensors");
    let out = export_pytorch(&run, &file);
    assert_ok(&out);
    assert!(stderr(&out).contains("wrote ResNet-8 at iteration 6"), "{}", stderr(&out));

    // The README's lines, run by the PyTorch the set-up installs.
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let code = "import sys, torch\n\
                from safetensors.torch import load_file\n\
                sys.path.insert(0, sys.argv[1])\n\
                from pytorch_reference import ResNet\n\
                model = ResNet(8)\n\
                model.load_state_dict(load_file(sys.argv[2]), strict=True)\n\
                model.eval()\n\
                print(tuple(model(torch.zeros(2, 3, 32, 32)).shape), int(model.bn.num_batches_tracked))\n";
    let py = std::process::Command::new(&python).arg("-c").arg(code).arg(&scripts).arg(&file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));
    assert!(py.status.success(), "PyTorch did not load the export:\n{said}");
    assert_eq!(said.trim(), "(2, 10) 6");

    // A run from those weights: at a learning rate of 1e-30 one step moves no weight by a bit.
    let again = Sandbox::new();
    let mut train = again.train(&["--iters", "1", "--lr", "1e-30", "--eval-every", "1"]);
    train.arg("--init-from").arg(&file);
    assert_ok(&output(train));
    let started = again.only_run();
    let config = std::fs::read_to_string(started.join("config.json")).unwrap();
    assert!(config.contains("\"init_from\"") && config.contains("resnet8.safetensors"), "{config}");
    let back = again.path("back.safetensors");
    assert_ok(&export_pytorch(&started, &back));
    let weights = |path: &Path| -> Vec<(String, Vec<u8>)> {
        tensors(path).into_iter().filter(|(n, _)| !n.contains("running_") && !n.contains("num_batches")).collect()
    };
    assert_eq!(weights(&back), weights(&file));

    // Weights of another network are refused in one line.
    let other = Sandbox::new();
    let mut train = bin();
    train.args(["train", "--no-ui", "--depth", "14", "--iters", "1", "--batch-size", "16", "--device", "cpu"]);
    train.arg("--data-dir").arg(other.data()).arg("--runs-dir").arg(other.runs()).arg("--init-from").arg(&file);
    assert_refused(&output(train), &["not the ResNet-14 weights"]);
}

#[test]
fn a_plain_run_exports_to_pytorchs_plain_model_and_a_plain_run_starts_from_it() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "4", "--eval-every", "4", "--plain"])));
    let run = s.only_run();
    let file = s.path("plain8.safetensors");
    let out = export_pytorch(&run, &file);
    assert_ok(&out);
    assert!(stderr(&out).contains("wrote Plain-8 at iteration 4"), "{}", stderr(&out));

    // PyTorch's plain model takes the file as it is, and computes another function than the
    // ResNet of the same weights (the shortcuts are really gone).
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let code = "import sys, torch\n\
                from safetensors.torch import load_file\n\
                sys.path.insert(0, sys.argv[1])\n\
                from pytorch_reference import ResNet\n\
                x = torch.randn(4, 3, 32, 32)\n\
                out = []\n\
                for plain in (True, False):\n\
                \x20   model = ResNet(8, plain=plain)\n\
                \x20   model.load_state_dict(load_file(sys.argv[2]), strict=True)\n\
                \x20   model.eval()\n\
                \x20   out.append(model(x))\n\
                print(tuple(out[0].shape), bool((out[0] - out[1]).abs().max() > 1e-3))\n";
    let py = std::process::Command::new(&python).arg("-c").arg(code).arg(&scripts).arg(&file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));
    assert!(py.status.success(), "PyTorch did not load the export:\n{said}");
    assert_eq!(said.trim(), "(4, 10) True");

    let again = Sandbox::new();
    let mut train = again.train(&["--iters", "1", "--eval-every", "1", "--plain"]);
    train.arg("--init-from").arg(&file);
    assert_ok(&output(train));
    let config = std::fs::read_to_string(again.only_run().join("config.json")).unwrap();
    assert!(config.contains("\"shortcut\": \"none\"") && config.contains("plain8.safetensors"), "{config}");
}
