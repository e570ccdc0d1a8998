//! Steps launched and not yet read back. Reading a step's loss makes the host wait until the
//! device has run everything queued before it; on a GPU that idles the device once a step. So the
//! loop keeps each step's readings (its loss and correct count) on the device and reads a window
//! of them in one transfer: every `read_every` steps, and before anything that needs them (an
//! evaluation, a checkpoint, a command, the warm-up's end, the run's end).

use super::sgd::HEALTH_SQUARES;
use super::step::Guard;
use crate::data::batches::Batch;
use std::time::Instant;
use tch::{Device, Tensor};

/// Steps per read-back on a GPU. The log and the dashboard lag the device by at most this
/// many steps (a fraction of a second for ResNet-20 on a GPU).
pub const GPU_READ_EVERY: u64 = 10;

/// Steps per read-back on `device` unless the session says otherwise: one on a CPU, whose
/// operations have all run by the time they return, so reading at once costs nothing and keeps
/// the dashboard current; [`GPU_READ_EVERY`] on a GPU.
pub fn default_read_every(device: Device) -> u64 {
    if device.is_cuda() { GPU_READ_EVERY } else { 1 }
}

/// One step launched: what its report needs once its readings are read back.
pub(super) struct Launched {
    /// Iterations done after it.
    pub iter: u64,
    pub lr: f64,
    pub warming: bool,
    pub epoch: f64,
    /// Training seconds when it was launched.
    pub elapsed: f64,
    /// Its readings, its loss and correct count, on the device (f64).
    pub readings: Tensor,
    /// The optimizer's health squares after it, on the device, on a health step.
    pub health: Option<Tensor>,
    /// Its batch, for the divergence report should its loss not be finite.
    pub batch: Batch,
}

/// The steps launched since the last read-back, with the guard that stops updates after a
/// non-finite loss among them.
pub(super) struct Window {
    pub read_every: u64,
    pub guard: Guard,
    launched: Vec<Launched>,
    /// When the window's first step began (batch wait included): throughput is timed from here
    /// to the read-back.
    started: Option<Instant>,
}

/// A step's readings as read back.
pub(super) struct Read {
    pub loss: f64,
    /// Images of its batch classified correctly.
    pub correct: f64,
    /// The optimizer's health squares after it, on a health step.
    pub health: Option<[f64; HEALTH_SQUARES]>,
}

/// A window read back: its steps, each with its readings, and the seconds each step took on
/// average.
pub(super) struct ReadWindow {
    pub steps: Vec<(Launched, Read)>,
    pub secs_per_step: f64,
}

impl Window {
    pub fn new(read_every: u64) -> Window {
        Window {
            read_every: read_every.max(1),
            guard: Guard::for_window(read_every),
            launched: Vec::new(),
            started: None,
        }
    }

    /// Adds a step that began at `began`.
    pub fn push(&mut self, step: Launched, began: Instant) {
        self.started.get_or_insert(began);
        self.launched.push(step);
    }

    pub fn is_empty(&self) -> bool {
        self.launched.is_empty()
    }

    /// Whether the window has reached its size.
    pub fn full(&self) -> bool {
        self.launched.len() as u64 >= self.read_every
    }

    /// The tensors to read, in order: each step's readings, then its health squares if any.
    pub fn parts(&self) -> Vec<Tensor> {
        let mut parts = Vec::new();
        for step in &self.launched {
            parts.push(step.readings.shallow_clone());
            parts.extend(step.health.as_ref().map(Tensor::shallow_clone));
        }
        parts
    }

    /// Empties the window once its readings are read back: `values` are [`Window::parts`]'
    /// values in order, each step's taken as its readings.
    pub fn take(&mut self, values: &[f64]) -> ReadWindow {
        let launched = std::mem::take(&mut self.launched);
        let secs = self.started.take().map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        let secs_per_step = secs / launched.len().max(1) as f64;
        let mut values = values.iter().copied();
        let mut next = || values.next().expect("a value read back for every reading");
        let steps = launched
            .into_iter()
            .map(|step| {
                let (loss, correct) = (next(), next());
                let health = step.health.as_ref().map(|_| std::array::from_fn(|_| next()));
                (step, Read { loss, correct, health })
            })
            .collect();
        ReadWindow { steps, secs_per_step }
    }
}
