//! The library learns: a small ResNet overfits one batch with our SGD, and the real data set
//! loads whole and fast (CIFAR10_DIR names the folder; the README's test command sets it).

mod common;

use resnet_tui::data::augment::Normalizer;
use resnet_tui::model::{Network, loss_and_correct};
use resnet_tui::protocol::Shortcut;
use resnet_tui::train::sgd::Sgd;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

#[test]
fn small_network_overfits_one_batch() {
    tch::manual_seed(11);
    let net = Network::new(resnet_tui::config::Depth::new(8).unwrap(), Shortcut::A, Device::Cpu);
    let vars: Vec<(String, Tensor)> = net.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let mut sgd = Sgd::new(vars, 0.9, 0.0);
    let images = Tensor::randn([32, 3, 32, 32], (Kind::Float, Device::Cpu));
    let labels = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(10);
    let mut first = None;
    let mut last = (f64::NAN, 0);
    for _ in 0..80 {
        let logits = net.net.forward_t(&images, true);
        let (loss, correct) = loss_and_correct(&logits, &labels);
        sgd.zero_grad();
        loss.backward();
        sgd.step(0.05);
        let l = loss.double_value(&[]);
        first.get_or_insert(l);
        last = (l, correct.int64_value(&[]));
    }
    assert!(first.unwrap() > 2.0, "starts near chance: {first:?}");
    assert!(last.0 < 0.05, "loss after 80 steps: {}", last.0);
    assert_eq!(last.1, 32, "every image of the batch right");
}

#[test]
fn real_cifar10_loads_whole_with_balanced_classes() {
    let dir = common::real_data();
    let started = std::time::Instant::now();
    let data = resnet_tui::data::cifar::load(&dir).unwrap();
    eprintln!("loaded 60,000 images in {:.3} s", started.elapsed().as_secs_f64());
    assert_eq!(data.train.len(), 50_000);
    assert_eq!(data.test.len(), 10_000);
    let per_class: Vec<i64> = Vec::try_from(data.test.labels.bincount::<Tensor>(None, 10)).unwrap();
    assert_eq!(per_class, vec![1000; 10]);
    let per_class: Vec<i64> = Vec::try_from(data.train.labels.bincount::<Tensor>(None, 10)).unwrap();
    assert_eq!(per_class, vec![5000; 10]);
    // The first training image is the first record of data_batch_1.bin: its bytes, in plane order.
    let raw = std::fs::read(dir.join("data_batch_1.bin")).unwrap();
    assert_eq!(data.train.labels.int64_value(&[0]), i64::from(raw[0]));
    let first: Vec<u8> = Vec::try_from(data.train.images.get(0).flatten(0, -1)).unwrap();
    assert_eq!(&first[..], &raw[1..3073]);
    // Normalised with the training statistics, the training set has mean about 0 and std about 1.
    let sample = Normalizer::new(Device::Cpu).apply(&data.train.images.narrow(0, 0, 5000));
    let mean = sample.mean_dim(&[0i64, 2, 3][..], false, Kind::Float);
    let mean: Vec<f32> = Vec::try_from(mean).unwrap();
    assert!(mean.iter().all(|m| m.abs() < 0.05), "{mean:?}");
    assert_eq!(data.classes[0], "airplane");
}

/// The whole program learns on the real data: `train --no-ui` as a user runs it, the paper's
/// recipe shortened to 400 iterations (lr 0.1, drops at 200 and 300) on a small ResNet, must
/// reach a test accuracy far above chance (10 %).
#[test]
fn training_on_real_cifar10_learns_far_above_chance() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::bin()
        .args(["train", "--no-ui", "--depth", "8", "--iters", "400", "--eval-every", "400"])
        .args(["--checkpoint-every", "400", "--seed", "1", "--data-dir"])
        .arg(common::real_data())
        .arg("--runs-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let run = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    let log = resnet_tui::runlog::read_strict(&run).unwrap();
    let history = resnet_tui::frontend::history::History::from_events(&log.events);
    let last = history.last_eval().expect("an evaluation at the end");
    assert_eq!((last.iter, last.set), (400, resnet_tui::protocol::EvalSet::Test));
    eprintln!("ResNet-8, 400 iterations: test error {:.2}% ({})", last.error, stderr.lines().last().unwrap_or(""));
    assert!(last.error < 60.0, "test error {:.2}% after 400 iterations: not learning", last.error);
}
