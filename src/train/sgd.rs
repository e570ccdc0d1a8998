//! SGD with momentum and weight decay, written out so its momentum buffers can be checkpointed
//! (tch's optimizer keeps them out of reach). Same update as PyTorch's `torch.optim.SGD`:
//! g += wd * p; buf = momentum * buf + g (buf = g at the first step); p -= lr * buf.

//!
//! The variables, their gradients and their momentum buffers are views into three flat tensors,
//! so an update is a handful of kernels on ~all parameters at once instead of a handful per
//! variable (about 60 for ResNet-20): less dispatch on the CPU, far fewer launches on a GPU.
//! tch exposes neither PyTorch's for-each nor its fused SGD kernels; views give the same effect.

use std::collections::HashMap;
use tch::Tensor;

/// Saved momentum buffers that do not fit the network's variables.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("momentum buffer {0} has no matching variable")]
    Unknown(String),
    #[error("momentum buffer {name} has shape {saved:?}, expected {variable:?}")]
    Shape { name: String, saved: Vec<i64>, variable: Vec<i64> },
}

pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// Trainable variables by name, with their momentum buffers (None before the first step).
    params: Vec<(String, Tensor, Option<Tensor>)>,
    /// The flat storage, when every variable has one kind and device (always, for our networks).
    flat: Option<Flat>,
}

/// Three flat tensors holding every variable, gradient and momentum buffer, each variable's
/// elements in its own memory order (so channels-last weights stay channels-last).
struct Flat {
    values: Tensor,
    grads: Tensor,
    bufs: Tensor,
    /// Offset, length and memory-order permutation of each variable; its data pointer, to notice
    /// a variable whose storage was replaced behind our back (then we rebuild).
    spans: Vec<(i64, i64, Vec<i64>, usize)>,
    /// Whether the gradients already live in `grads` (after the first backward).
    grads_adopted: bool,
}

/// The permutation that lists `t`'s dimensions from the largest stride to the smallest: permuted
/// by it, a dense tensor is contiguous.
/// Which of `protocol::HEALTH_GROUPS` a variable belongs to: `stem.*`, `stage0.*`,
/// ..., `fc.*`.
fn health_group(name: &str) -> Option<usize> {
    let first = name.split('.').next()?;
    match first {
        "stem" => Some(0),
        "fc" => Some(4),
        _ => first.strip_prefix("stage")?.parse::<usize>().ok().filter(|&s| s < 3).map(|s| s + 1),
    }
}

/// How many values [`Sgd::health_squares`] holds: the squared norms of all gradients and all
/// weights, then each group's weights and momentum buffer.
pub const HEALTH_SQUARES: usize = 2 + 2 * crate::protocol::HEALTH_GROUPS.len();

/// Gradient norm, weight norm and each group's update-to-weight ratio after a step at `lr`, from
/// [`Sgd::health_squares`] read back.
pub fn health_from(squares: &[f64], lr: f64) -> (f64, f64, Vec<f64>) {
    let ratios = (0..crate::protocol::HEALTH_GROUPS.len())
        .map(|g| {
            let (w, b) = (squares[2 + 2 * g].sqrt(), squares[3 + 2 * g].sqrt());
            if w > 0.0 { lr * b / w } else { 0.0 }
        })
        .collect();
    (squares[0].sqrt(), squares[1].sqrt(), ratios)
}

/// Weights and momentum buffers as they were before a step that may be undone.
enum State {
    Flat { values: Tensor, bufs: Tensor },
    PerVariable(Vec<(Tensor, Option<Tensor>)>),
}

fn forward_key(name: &str) -> (usize, usize, String) {
    let block = name.split('.').nth(1).and_then(|b| b.strip_prefix("block")).and_then(|b| b.parse().ok());
    (health_group(name).unwrap_or(usize::MAX), block.unwrap_or(0), name.to_string())
}

fn memory_order(t: &Tensor) -> Vec<i64> {
    let stride = t.stride();
    let mut perm: Vec<i64> = (0..stride.len() as i64).collect();
    perm.sort_by_key(|&d| std::cmp::Reverse(stride[d as usize]));
    perm
}

fn inverse(perm: &[i64]) -> Vec<i64> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p as usize] = i as i64;
    }
    inv
}

/// A view of `flat[off..off+len]` with the sizes of `like` and the strides of its memory order.
fn shaped_view(flat: &Tensor, off: i64, len: i64, perm: &[i64], like: &Tensor) -> Tensor {
    let size = like.size();
    let permuted: Vec<i64> = perm.iter().map(|&d| size[d as usize]).collect();
    flat.narrow(0, off, len).view(permuted.as_slice()).permute(inverse(perm))
}

impl Flat {
    /// Moves every variable into one flat tensor; None when they do not share a kind and device
    /// or one is not dense (then the per-variable update is used).
    fn build(params: &[(String, Tensor, Option<Tensor>)]) -> Option<Flat> {
        let first = &params.first()?.1;
        let (kind, device) = (first.kind(), first.device());
        let mut spans = Vec::with_capacity(params.len());
        let mut total = 0;
        for (_, p, _) in params {
            let perm = memory_order(p);
            if p.kind() != kind || p.device() != device || !p.permute(perm.as_slice()).is_contiguous() {
                return None;
            }
            let n = p.numel() as i64;
            spans.push((total, n, perm, 0));
            total += n;
        }
        let values = Tensor::zeros([total], (kind, device));
        let grads = Tensor::zeros([total], (kind, device));
        let bufs = Tensor::zeros([total], (kind, device));
        tch::no_grad(|| {
            for ((_, p, buf), span) in params.iter().zip(spans.iter_mut()) {
                let view = shaped_view(&values, span.0, span.1, &span.2, p);
                view.shallow_clone().copy_(p);
                p.shallow_clone().set_data(&view);
                span.3 = p.data_ptr() as usize;
                if let Some(b) = buf {
                    shaped_view(&bufs, span.0, span.1, &span.2, p).copy_(b);
                }
            }
        });
        Some(Flat { values, grads, bufs, spans, grads_adopted: false })
    }

    /// Whether every variable still lives where `build` put it.
    fn intact(&self, params: &[(String, Tensor, Option<Tensor>)]) -> bool {
        params.iter().zip(&self.spans).all(|((_, p, _), s)| p.data_ptr() as usize == s.3)
    }

    /// Makes each gradient a view into `grads`: backward then accumulates into it in place, and
    /// zeroing is one kernel. Needs every gradient to exist (after the first backward).
    fn adopt_grads(&mut self, params: &[(String, Tensor, Option<Tensor>)]) -> bool {
        let grads: Vec<Tensor> = params.iter().map(|(_, p, _)| p.grad()).collect();
        if grads.iter().any(|g| !g.defined()) {
            return false;
        }
        tch::no_grad(|| {
            for ((mut g, (_, p, _)), span) in grads.into_iter().zip(params).zip(&self.spans) {
                let view = shaped_view(&self.grads, span.0, span.1, &span.2, p);
                view.shallow_clone().copy_(&g);
                g.set_data(&view);
            }
        });
        self.grads_adopted = true;
        true
    }
}

/// The variables in forward order (see [`forward_key`]), whatever order they came in
/// (`VarStore::variables` gives hash order): each health group is then one run of them.
fn in_forward_order(trainable: Vec<(String, Tensor)>) -> Vec<(String, Tensor, Option<Tensor>)> {
    let mut params: Vec<_> = trainable.into_iter().map(|(n, t)| (n, t, None)).collect();
    params.sort_by_cached_key(|(name, _, _)| forward_key(name));
    params
}

impl Sgd {
    pub fn new(trainable: Vec<(String, Tensor)>, momentum: f64, weight_decay: f64) -> Sgd {
        let params = in_forward_order(trainable);
        let flat = Flat::build(&params);
        let mut sgd = Sgd { momentum, weight_decay, params, flat };
        sgd.point_buffers_at_flat();
        sgd
    }

    /// The per-variable update, for comparison in the benchmark (same arithmetic, more kernels).
    pub fn unfused(trainable: Vec<(String, Tensor)>, momentum: f64, weight_decay: f64) -> Sgd {
        let params = in_forward_order(trainable);
        Sgd { momentum, weight_decay, params, flat: None }
    }

    /// Whether the update runs on the flat tensors.
    pub fn is_flat(&self) -> bool {
        self.flat.is_some()
    }

    /// Existing momentum buffers become views into the flat buffer tensor.
    fn point_buffers_at_flat(&mut self) {
        let Some(flat) = &self.flat else { return };
        for ((_, p, buf), span) in self.params.iter_mut().zip(&flat.spans) {
            if buf.is_some() {
                *buf = Some(shaped_view(&flat.bufs, span.0, span.1, &span.2, p));
            }
        }
    }

    /// Rebuilds the flat storage if a variable was given new storage (e.g. re-strided) since.
    fn check_flat(&mut self) {
        if self.flat.as_ref().is_some_and(|f| !f.intact(&self.params)) {
            self.flat = Flat::build(&self.params);
            self.point_buffers_at_flat();
        }
    }

    pub fn zero_grad(&mut self) {
        self.check_flat();
        if let Some(flat) = self.flat.as_mut().filter(|f| f.grads_adopted) {
            let _ = flat.grads.zero_();
            return;
        }
        for (_, p, _) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update with learning rate `lr`, from the gradients left by `backward`.
    pub fn step(&mut self, lr: f64) {
        self.check_flat();
        let flat_ready = match self.flat.as_mut() {
            Some(f) if f.grads_adopted => true,
            Some(f) => f.adopt_grads(&self.params),
            None => false,
        };
        if flat_ready {
            self.flat_step(lr);
        } else {
            self.per_variable_step(lr);
        }
    }

    /// The update on the flat tensors: element for element the same operations, in the same
    /// order, as [`Sgd::per_variable_step`].
    fn flat_step(&mut self, lr: f64) {
        let flat = self.flat.as_mut().expect("flat_step needs the flat storage");
        tch::no_grad(|| {
            let g = flat.grads.shallow_clone();
            let d = if self.weight_decay != 0.0 { g + (&flat.values * self.weight_decay) } else { g };
            if self.params.iter().all(|(_, _, b)| b.is_some()) {
                let _ = flat.bufs.g_mul_scalar_(self.momentum).g_add_(&d);
            } else {
                // Variables without a buffer yet take the gradient as their buffer (PyTorch's rule).
                for ((_, p, buf), span) in self.params.iter_mut().zip(&flat.spans) {
                    let mut b = flat.bufs.narrow(0, span.0, span.1);
                    let d = d.narrow(0, span.0, span.1);
                    if buf.is_some() {
                        let _ = b.g_mul_scalar_(self.momentum).g_add_(&d);
                    } else {
                        b.copy_(&d);
                        *buf = Some(shaped_view(&flat.bufs, span.0, span.1, &span.2, p));
                    }
                }
            }
            let _ = flat.values.g_sub_(&(&flat.bufs * lr));
        });
    }

    fn per_variable_step(&mut self, lr: f64) {
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

    /// Gradient and weight norms and each group's update-to-weight ratio after a step at `lr`
    /// (`protocol::HEALTH_GROUPS`, by the variable name's first part), with one read back.
    pub fn health(&self, lr: f64) -> Option<(f64, f64, Vec<f64>)> {
        let squares = self.health_squares()?;
        let v: Vec<f64> = Vec::try_from(squares.to_device(tch::Device::Cpu)).ok()?;
        Some(health_from(&v, lr))
    }

    /// What [`Sgd::health`] is computed from, left on the device (f64, for [`health_from`]):
    /// the squared norms of all gradients and all weights, then each group's weights and
    /// momentum buffer. Groups are contiguous in the flat buffers (`Sgd::new` puts the
    /// variables in forward order), so it is a few reductions over slices.
    pub fn health_squares(&self) -> Option<Tensor> {
        let flat = self.flat.as_ref().filter(|f| f.grads_adopted)?;
        let groups = crate::protocol::HEALTH_GROUPS;
        // (offset, length) of each group's run of variables.
        let mut spans: Vec<Option<(i64, i64)>> = vec![None; groups.len()];
        for ((name, _, _), span) in self.params.iter().zip(&flat.spans) {
            let g = health_group(name)?;
            let slot = spans[g].get_or_insert((span.0, 0));
            slot.1 = span.0 + span.1 - slot.0;
        }
        let sq = |t: &Tensor| t.square().sum(tch::Kind::Float);
        let mut parts = vec![sq(&flat.grads), sq(&flat.values)];
        for span in &spans {
            let (off, len) = span.unwrap_or((0, 0));
            parts.push(sq(&flat.values.narrow(0, off, len)));
            parts.push(sq(&flat.bufs.narrow(0, off, len)));
        }
        Some(Tensor::stack(&parts, 0).to_kind(tch::Kind::Double))
    }

    /// [`Sgd::step`], kept only where `apply` (a boolean scalar on the device) is true: where it
    /// is false the weights and momentum buffers stay as they were. Nothing is read back, so a
    /// step whose loss is not finite is skipped without the host waiting for the device.
    pub fn step_where(&mut self, lr: f64, apply: &Tensor) {
        let before = self.copy_state();
        self.step(lr);
        tch::no_grad(|| match before {
            State::Flat { values, bufs } => {
                let flat = self.flat.as_mut().expect("copied from the flat storage");
                flat.values.copy_(&flat.values.where_self(apply, &values));
                flat.bufs.copy_(&flat.bufs.where_self(apply, &bufs));
            }
            State::PerVariable(old) => {
                for ((_, p, buf), (old_p, old_buf)) in self.params.iter_mut().zip(old) {
                    p.shallow_clone().copy_(&p.where_self(apply, &old_p));
                    if let Some(b) = buf {
                        // A buffer the step created stands for zeros before it: its next update,
                        // momentum times zero plus the gradient, is the gradient, as a first one.
                        let old_b = old_buf.unwrap_or_else(|| b.zeros_like());
                        b.shallow_clone().copy_(&b.where_self(apply, &old_b));
                    }
                }
            }
        });
    }

    fn copy_state(&mut self) -> State {
        self.check_flat();
        match &self.flat {
            Some(f) => State::Flat { values: f.values.copy(), bufs: f.bufs.copy() },
            None => State::PerVariable(
                self.params.iter().map(|(_, p, b)| (p.detach().copy(), b.as_ref().map(Tensor::copy))).collect(),
            ),
        }
    }

    /// The first variable in forward order (stem, stages, classifier) whose values or gradient
    /// hold a NaN or an infinity, as "name" or "name (gradient)".
    pub fn first_non_finite(&self) -> Result<Option<String>, tch::TchError> {
        let order = &self.params;
        let bad = |t: &Tensor| -> Result<bool, tch::TchError> {
            Ok(t.defined() && !bool::try_from(&t.f_isfinite()?.f_all()?)?)
        };
        for (name, p, _) in order {
            if bad(p)? {
                return Ok(Some(name.clone()));
            }
            if bad(&p.grad())? {
                return Ok(Some(format!("{name} (gradient)")));
            }
        }
        Ok(None)
    }

    /// Momentum buffers by variable name (only those that exist yet).
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        self.params.iter().filter_map(|(n, _, b)| b.as_ref().map(|b| (n.clone(), b.shallow_clone()))).collect()
    }

    /// Restores buffers saved by [`Sgd::buffers`]; names it does not know are an error.
    pub fn load_buffers(&mut self, saved: &HashMap<String, Tensor>) -> Result<(), BufferError> {
        for name in saved.keys() {
            if !self.params.iter().any(|(n, _, _)| n == name) {
                return Err(BufferError::Unknown(name.clone()));
            }
        }
        for (name, p, buf) in &mut self.params {
            if let Some(src) = saved.get(name) {
                if src.size() != p.size() {
                    return Err(BufferError::Shape { name: name.clone(), saved: src.size(), variable: p.size() });
                }
                let mut b = p.zeros_like();
                tch::no_grad(|| b.copy_(src));
                *buf = Some(b);
            }
        }
        if let Some(flat) = &self.flat {
            tch::no_grad(|| {
                for ((_, p, buf), span) in self.params.iter().zip(&flat.spans) {
                    if let Some(b) = buf {
                        shaped_view(&flat.bufs, span.0, span.1, &span.2, p).copy_(b);
                    }
                }
            });
            self.point_buffers_at_flat();
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
            for ((c, p), buf) in [0.5, 1.0].iter().zip(expect_p.iter_mut()).zip(expect_buf.iter_mut()) {
                let g = c + 0.1 * *p;
                *buf = if step == 0 { g } else { 0.9 * *buf + g };
                *p -= 0.1 * *buf;
            }
        }
        for (i, want) in expect_p.iter().enumerate() {
            assert!((p.double_value(&[i as i64]) - want).abs() < 1e-6);
        }
        let bufs = sgd.buffers();
        assert!((bufs[0].1.double_value(&[1]) - expect_buf[1]).abs() < 1e-6);
    }

    /// Trains a small ResNet a few steps with one optimizer and returns its variables and buffers.
    /// Starts from `init`'s weights and uses fixed inputs: the global generator is shared with
    /// tests running in parallel.
    fn train_a_little(
        init: &crate::model::Network,
        flat: bool,
        channels_last: bool,
        restride_after: bool,
    ) -> Vec<(String, Tensor)> {
        train_steps(init, flat, channels_last, restride_after, &[Update::Plain; 4])
    }

    /// How a test step updates: `step`, or `step_where` kept, or `step_where` on poisoned
    /// (NaN) gradients and not kept.
    #[derive(Clone, Copy, PartialEq)]
    enum Update {
        Plain,
        Kept,
        Skipped,
    }

    fn train_steps(
        init: &crate::model::Network,
        flat: bool,
        channels_last: bool,
        restride_after: bool,
        updates: &[Update],
    ) -> Vec<(String, Tensor)> {
        use crate::model::{Network, loss_and_correct};
        use tch::nn::ModuleT;
        let mut net = Network::new(crate::config::Depth::new(8).unwrap(), crate::protocol::Shortcut::A, Device::Cpu);
        let src = init.vs.variables();
        tch::no_grad(|| {
            for (name, mut v) in net.vs.variables() {
                v.copy_(&src[&name]);
            }
        });
        if channels_last && !restride_after {
            net.to_channels_last();
        }
        let mut vars: Vec<(String, Tensor)> =
            net.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let mut sgd = if flat { Sgd::new(vars, 0.9, 1e-3) } else { Sgd::unfused(vars, 0.9, 1e-3) };
        assert_eq!(sgd.is_flat(), flat);
        let xs = (Tensor::arange(8 * 3 * 32 * 32, (Kind::Float, Device::Cpu)).remainder(97.0) / 48.0 - 1.0)
            .view([8, 3, 32, 32]);
        let ys = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 7]);
        for (step, update) in updates.iter().enumerate() {
            if restride_after && step == 2 {
                net.to_channels_last();
            }
            let (loss, _) = loss_and_correct(&net.net.forward_t(&xs, true), &ys);
            sgd.zero_grad();
            if *update == Update::Skipped {
                (loss * f64::NAN).backward();
            } else {
                loss.backward();
            }
            match update {
                Update::Plain => sgd.step(0.05),
                Update::Kept => sgd.step_where(0.05, &Tensor::from(true)),
                Update::Skipped => sgd.step_where(0.05, &Tensor::from(false)),
            }
        }
        let mut out = net.vs.variables().into_iter().collect::<Vec<_>>();
        out.extend(sgd.buffers().into_iter().map(|(n, b)| (format!("buf.{n}"), b)));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn flat_update_is_bit_identical_to_the_per_variable_one() {
        let init = crate::model::Network::new(
            crate::config::Depth::new(8).unwrap(),
            crate::protocol::Shortcut::A,
            Device::Cpu,
        );
        for channels_last in [false, true] {
            let a = train_a_little(&init, true, channels_last, false);
            let b = train_a_little(&init, false, channels_last, false);
            assert_eq!(a.len(), b.len());
            for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
                assert_eq!(na, nb);
                assert!(ta.equal(tb), "{na} differs (channels_last {channels_last})");
            }
        }
    }

    #[test]
    fn an_update_not_kept_leaves_weights_and_momentum_exactly_as_they_were() {
        use Update::*;
        let init = crate::model::Network::new(
            crate::config::Depth::new(8).unwrap(),
            crate::protocol::Shortcut::A,
            Device::Cpu,
        );
        for flat in [true, false] {
            let plain = train_steps(&init, flat, true, false, &[Plain; 3]);
            // A skipped first step (no momentum buffer yet) and a skipped later one: the same
            // weights and buffers as the steps that were kept, bit for bit. BatchNorm's running
            // statistics are the forward's and do move; the test leaves them out.
            for updates in [[Skipped, Kept, Kept, Kept], [Kept, Kept, Skipped, Kept]] {
                let skipped = train_steps(&init, flat, true, false, &updates);
                for ((name, a), (_, b)) in plain.iter().zip(&skipped) {
                    if !name.contains("running") && !name.contains("num_batches") {
                        assert!(a.equal(b), "{name} differs (flat {flat})");
                    }
                }
            }
        }
    }

    #[test]
    fn restrided_variables_are_noticed_and_still_trained() {
        let init = crate::model::Network::new(
            crate::config::Depth::new(8).unwrap(),
            crate::protocol::Shortcut::A,
            Device::Cpu,
        );
        let a = train_a_little(&init, true, true, true);
        let b = train_a_little(&init, false, true, true);
        for ((na, ta), (_, tb)) in a.iter().zip(&b) {
            assert!(ta.equal(tb), "{na} differs");
        }
    }

    #[test]
    fn health_groups_are_right_whatever_order_the_variables_come_in() {
        use crate::model::{Network, loss_and_correct};
        use tch::nn::ModuleT;
        let net = Network::new(crate::config::Depth::new(8).unwrap(), crate::protocol::Shortcut::A, Device::Cpu);
        // Hash order, as `VarStore::variables` gives it, reversed for good measure.
        let mut vars: Vec<(String, Tensor)> =
            net.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.reverse();
        let mut sgd = Sgd::new(vars, 0.9, 1e-4);
        let xs = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        for _ in 0..2 {
            let (loss, _) = loss_and_correct(&net.net.forward_t(&xs, true), &Tensor::from_slice(&[1i64, 2, 3, 4]));
            sgd.zero_grad();
            loss.backward();
            sgd.step(0.1);
        }
        let (_, _, ratios) = sgd.health(0.1).expect("health after two steps");
        // Each group's ratio, straight from the variables by name.
        let buffers: HashMap<String, Tensor> = sgd.buffers().into_iter().collect();
        let vars = net.vs.variables();
        for (g, ratio) in ratios.iter().enumerate() {
            let (mut w, mut b) = (0.0, 0.0);
            for (name, v) in vars.iter().filter(|(n, v)| v.requires_grad() && health_group(n) == Some(g)) {
                w += v.square().sum(Kind::Double).double_value(&[]);
                b += buffers[name].square().sum(Kind::Double).double_value(&[]);
            }
            let want = 0.1 * b.sqrt() / w.sqrt();
            assert!(
                (ratio - want).abs() <= 1e-4 * want,
                "{}: {ratio} against {want}",
                crate::protocol::HEALTH_GROUPS[g]
            );
        }
    }

    #[test]
    fn a_stage_has_one_name_in_health_and_in_the_variables() {
        for (g, name) in crate::protocol::HEALTH_GROUPS.iter().enumerate() {
            assert_eq!(health_group(&format!("{name}.block0.conv1.weight")), Some(g), "{name}");
        }
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
