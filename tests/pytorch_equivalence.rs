//! resnet-tui computes what PyTorch computes: from identical weights (exported in PyTorch's
//! names) and an identical batch of real CIFAR-10 test images, the project's PyTorch model
//! (`scripts/pytorch_reference.py`, with the PyTorch the set-up installs) gives the same logits in
//! eval mode, and over two SGD steps (momentum and weight decay at work from the second) the same
//! losses, every gradient, and every weight and BatchNorm statistic after each update: for the
//! ResNet and for the plain net of the same layers.

use resnet_tui::config::{Depth, Shortcut};
use resnet_tui::data::augment::Normalizer;
use resnet_tui::interchange::{pytorch_name, to_pytorch, write};
use resnet_tui::model::{Network, loss_and_correct};
use resnet_tui::train::sgd::Sgd;
use std::path::{Path, PathBuf};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

const DEPTH: u32 = 20;
const BATCH: i64 = 64;

fn cifar_dir() -> PathBuf {
    PathBuf::from(std::env::var("CIFAR10_DIR").expect("CIFAR10_DIR must point at the real CIFAR-10 binary files"))
}

fn python() -> PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(py.is_file(), "{} missing: run ./scripts/setup", py.display());
    py
}

#[test]
fn one_batch_forward_backward_and_two_sgd_steps_equal_pytorchs() {
    equal_to_pytorch(Shortcut::A);
}

#[test]
fn a_plain_nets_forward_backward_and_two_sgd_steps_equal_pytorchs() {
    equal_to_pytorch(Shortcut::None);
}

/// The two tests of this file draw their weights from libtorch's one global generator after
/// seeding it: run at once, they would interleave their draws and start from other weights each
/// time (and a step's last-bit differences grow with some initialisations more than others).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn equal_to_pytorch(shortcut: Shortcut) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::set_num_threads(1);
    let data = resnet_tui::data::cifar::load(&cifar_dir()).expect("CIFAR-10 loads");
    let x = Normalizer::new(Device::Cpu).apply(&data.test.images.narrow(0, 0, BATCH));
    let y = data.test.labels.narrow(0, 0, BATCH);
    let depth = Depth::new(DEPTH).unwrap();
    tch::manual_seed(11);
    let network = Network::new(depth, shortcut, Device::Cpu);
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init.safetensors");
    write(&init, &to_pytorch(&network.vs.variables(), depth, shortcut, 0).unwrap()).unwrap();

    let mut ours: Vec<(String, Tensor)> = vec![
        ("input".into(), x.shallow_clone()),
        ("labels".into(), y.to_kind(Kind::Int64)),
        ("eval.logits".into(), tch::no_grad(|| network.net.forward_t(&x, false))),
    ];
    let mut trainable: Vec<(String, Tensor)> =
        network.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    trainable.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sgd = Sgd::new(trainable.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(), 0.9, 1e-4);
    for k in 0..2 {
        let logits = network.net.forward_t(&x, true);
        let (loss, _) = loss_and_correct(&logits, &y);
        sgd.zero_grad();
        loss.backward();
        ours.push((format!("step{k}.loss"), loss.detach()));
        for (name, var) in &trainable {
            ours.push((format!("step{k}.grad.{}", pytorch_name(name, depth).unwrap()), var.grad().copy()));
        }
        sgd.step(0.1);
        for (name, var) in network.vs.variables() {
            ours.push((format!("step{k}.after.{}", pytorch_name(&name, depth).unwrap()), var.copy()));
        }
    }
    let ours_file = dir.path().join("ours.safetensors");
    write(&ours_file, &ours.into_iter().map(|(n, t)| (n, t.contiguous())).collect::<Vec<_>>()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pytorch_equivalence.py");
    let mut py = std::process::Command::new(python());
    py.arg(script).arg(DEPTH.to_string()).arg(&init).arg(&ours_file);
    if shortcut == Shortcut::None {
        py.arg("--plain");
    }
    let out = py.output().expect("run the PyTorch side");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{said}");
    assert!(out.status.success(), "resnet-tui and PyTorch differ:\n{said}");
    assert!(said.contains("step1 gradients (") && said.contains("agree"), "{said}");
}
