//! Where the fused pass's time goes, by kind of work, when asked (`bench --only profile`). Every
//! part of the pass is synchronous on the CPU (our kernels return after `at::parallel_for` has
//! joined its team), so wall-clock time around each call is the call's own.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// The kinds of work the pass is timed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    ConvForward,
    ConvBackward,
    /// Ours, forward: BatchNorm's statistics, normalisation + shortcut + ReLU.
    KernelsForward,
    /// Ours, backward: the two passes of ReLU + BatchNorm + the residual's gradient.
    KernelsBackward,
    /// Pooling, the classifier, the loss and their backward (autograd).
    Head,
}

/// Names of [`Work`], in its order.
pub const WORK_NAMES: [&str; 5] = [
    "convolutions, forward",
    "convolutions, backward",
    "our kernels, forward",
    "our kernels, backward",
    "pooling, classifier, loss (autograd)",
];

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static TOTALS: RefCell<[Duration; 5]> = const { RefCell::new([Duration::ZERO; 5]) };
}

/// Runs `f`, adding its time to `work` when profiling is on on this thread.
pub fn timed<T>(work: Work, f: impl FnOnce() -> T) -> T {
    if !ON.with(Cell::get) {
        return f();
    }
    let start = Instant::now();
    let out = f();
    let spent = start.elapsed();
    TOTALS.with(|t| t.borrow_mut()[work as usize] += spent);
    out
}

/// Starts profiling on this thread, from zero.
pub fn start() {
    TOTALS.with(|t| *t.borrow_mut() = [Duration::ZERO; 5]);
    ON.with(|on| on.set(true));
}

/// Stops profiling and returns the time spent on each kind of work since [`start`].
pub fn stop() -> [Duration; 5] {
    ON.with(|on| on.set(false));
    TOTALS.with(|t| *t.borrow())
}
