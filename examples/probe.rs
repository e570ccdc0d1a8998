use resnet_tui::data::batches::Batcher;
use resnet_tui::model::{Network, loss_and_correct, to_channels_last};
use resnet_tui::protocol::Shortcut;
use resnet_tui::train::sgd::Sgd;
use std::time::Instant;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};
fn main() {
    let data = resnet_tui::data::cifar::load(std::path::Path::new("../shared/cifar10")).unwrap();
    for cl in [false, true] {
        let mut net = Network::new(20, Shortcut::A, Device::Cpu).unwrap();
        if cl {
            net.to_channels_last();
        }
        let vars: Vec<(String, Tensor)> = net.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        let mut sgd = Sgd::new(vars, 0.9, 1e-4);
        let mut b = Batcher::new(&data.train, 0, 128, cl);
        let batch = b.batch(0);
        let t = Instant::now();
        for i in 0..20 {
            let _ = b.batch(i);
        }
        println!("cl={cl} batch build {:.2} ms", t.elapsed().as_secs_f64() * 50.0);
        let x = if cl {
            to_channels_last(&Tensor::randn([128, 3, 32, 32], (Kind::Float, Device::Cpu)))
        } else {
            Tensor::randn([128, 3, 32, 32], (Kind::Float, Device::Cpu))
        };
        for (name, imgs) in [("random", &x), ("batch", &batch.images)] {
            for _ in 0..3 {
                let l = net.net.forward_t(imgs, true);
                let (loss, _) = loss_and_correct(&l, &batch.labels);
                sgd.zero_grad();
                loss.backward();
                sgd.step(0.1);
            }
            let t = Instant::now();
            let n = 10;
            let mut fwd = 0.0;
            let mut bwd = 0.0;
            let mut st = 0.0;
            for _ in 0..n {
                let t0 = Instant::now();
                let l = net.net.forward_t(imgs, true);
                let (loss, _) = loss_and_correct(&l, &batch.labels);
                let _ = loss.double_value(&[]);
                let t1 = Instant::now();
                sgd.zero_grad();
                loss.backward();
                let t2 = Instant::now();
                sgd.step(0.1);
                let _ = loss.double_value(&[]);
                fwd += (t1 - t0).as_secs_f64();
                bwd += (t2 - t1).as_secs_f64();
                st += t2.elapsed().as_secs_f64();
            }
            println!(
                "cl={cl} {name}: {:.0} img/s  fwd {:.1}ms bwd {:.1}ms sgd {:.1}ms stride {:?}",
                128.0 * n as f64 / t.elapsed().as_secs_f64(),
                fwd * 100.0,
                bwd * 100.0,
                st * 100.0,
                imgs.stride()
            );
        }
    }
}
