//! SGD with momentum and weight decay, written out so its momentum buffers can be checkpointed
//! (tch's optimizer keeps them out of reach). Same update as PyTorch's `torch.optim.SGD`:
//! g += wd * p; buf = momentum * buf + g (buf = g at the first step); p -= lr * buf.

use std::collections::HashMap;
use tch::Tensor;

pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// Trainable variables by name, with their momentum buffers (None before the first step).
    params: Vec<(String, Tensor, Option<Tensor>)>,
}

impl Sgd {
    pub fn new(trainable: Vec<(String, Tensor)>, momentum: f64, weight_decay: f64) -> Sgd {
        let params = trainable.into_iter().map(|(n, t)| (n, t, None)).collect();
        Sgd { momentum, weight_decay, params }
    }

    pub fn zero_grad(&mut self) {
        for (_, p, _) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update with learning rate `lr`, from the gradients left by `backward`.
    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for (_, p, buf) in &mut self.params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if self.weight_decay != 0.0 { g + (&*p * self.weight_decay) } else { g };
                let update = match buf {
                    Some(b) => {
                        let _ = b.g_mul_scalar_(self.momentum).g_add_(&d);
                        b.shallow_clone()
                    }
                    None => {
                        let b = d.detach().copy();
                        *buf = Some(b.shallow_clone());
                        b
                    }
                };
                let _ = p.g_sub_(&(update * lr));
            }
        });
    }

    /// Momentum buffers by variable name (only those that exist yet).
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        self.params.iter().filter_map(|(n, _, b)| b.as_ref().map(|b| (n.clone(), b.shallow_clone()))).collect()
    }

    /// Restores buffers saved by [`Sgd::buffers`]; names it does not know are an error.
    pub fn load_buffers(&mut self, saved: &HashMap<String, Tensor>) -> Result<(), String> {
        for name in saved.keys() {
            if !self.params.iter().any(|(n, _, _)| n == name) {
                return Err(format!("momentum buffer {name} has no matching variable"));
            }
        }
        for (name, p, buf) in &mut self.params {
            if let Some(src) = saved.get(name) {
                if src.size() != p.size() {
                    return Err(format!("momentum buffer {name} has shape {:?}, expected {:?}", src.size(), p.size()));
                }
                let mut b = p.zeros_like();
                tch::no_grad(|| b.copy_(src));
                *buf = Some(b);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn matches_the_pytorch_update_rule() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let mut sgd = Sgd::new(vec![("p".into(), p.shallow_clone())], 0.9, 0.1);
        // Loss = sum(p * c): gradient c.
        let c = Tensor::from_slice(&[0.5f32, 1.0]);
        let mut expect_p = [1.0f64, -2.0];
        let mut expect_buf = [0.0f64; 2];
        for step in 0..3 {
            sgd.zero_grad();
            (&p * &c).sum(Kind::Float).backward();
            sgd.step(0.1);
            for i in 0..2 {
                let g = [0.5, 1.0][i] + 0.1 * expect_p[i];
                expect_buf[i] = if step == 0 { g } else { 0.9 * expect_buf[i] + g };
                expect_p[i] -= 0.1 * expect_buf[i];
            }
        }
        for i in 0..2 {
            assert!((p.double_value(&[i as i64]) - expect_p[i]).abs() < 1e-6);
        }
        let bufs = sgd.buffers();
        assert!((bufs[0].1.double_value(&[1]) - expect_buf[1]).abs() < 1e-6);
    }

    #[test]
    fn buffers_round_trip() {
        let p = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut sgd = Sgd::new(vec![("p".into(), p)], 0.9, 0.0);
        let mut saved = HashMap::new();
        saved.insert("p".to_string(), Tensor::from_slice(&[1.0f32, 2.0, 3.0]));
        sgd.load_buffers(&saved).unwrap();
        assert_eq!(Vec::<f32>::try_from(&sgd.buffers()[0].1).unwrap(), vec![1.0, 2.0, 3.0]);
        saved.insert("q".to_string(), Tensor::from_slice(&[1.0f32]));
        assert!(sgd.load_buffers(&saved).is_err());
    }
}
