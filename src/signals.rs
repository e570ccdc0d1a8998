//! SIGINT, SIGTERM and SIGHUP as a count the front ends poll, so a first signal becomes a clean
//! stop (checkpoint, summary, exit) instead of killing the process mid-write, and a second one
//! (a user who will not wait for that) can end the process at once.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct StopSignals {
    received: Arc<AtomicUsize>,
    taken: AtomicUsize,
}

impl StopSignals {
    /// Registers the handlers. Registration failing (it does not on Linux) leaves the default
    /// behaviour, which is still safe: checkpoints are atomic and the log is flushed per line.
    pub fn install() -> StopSignals {
        let received = Arc::new(AtomicUsize::new(0));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
            let count = Arc::clone(&received);
            // A count, not signal-hook's flag: a flag cannot tell a second signal from the first.
            // SAFETY: the handler only increments an atomic, which is async-signal-safe.
            let _ = unsafe {
                signal_hook::low_level::register(sig, move || {
                    count.fetch_add(1, Ordering::SeqCst);
                })
            };
        }
        StopSignals { received, taken: AtomicUsize::new(0) }
    }

    /// Signals received since `install`.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    /// Signals received since the last call, for a front end that handles them one by one.
    pub fn take(&self) -> usize {
        let now = self.received();
        now - self.taken.swap(now, Ordering::SeqCst)
    }
}

/// Ends the process now with exit status 130 (128 + SIGINT, as shells report a process that
/// Ctrl-C ended), after one line on stderr, without waiting
/// for the trainer thread: what it may be writing is safe to lose (checkpoints are written
/// atomically, the log line by line). `_exit`, not `exit`: no destructor of libtorch or its
/// thread pools may run under a thread that is still computing.
pub fn quit_now() -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "resnet-tui: interrupted: quit without the final checkpoint; `resume` continues from the last one written"
    );
    signal_hook::low_level::exit(crate::frontend::outcome::ExitStatus::Interrupted.code() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_counts_each_signal_once() {
        let signals = StopSignals { received: Arc::new(AtomicUsize::new(0)), taken: AtomicUsize::new(0) };
        assert_eq!(signals.take(), 0);
        signals.received.fetch_add(2, Ordering::SeqCst);
        assert_eq!((signals.take(), signals.take(), signals.received()), (2, 0, 2));
        signals.received.fetch_add(1, Ordering::SeqCst);
        assert_eq!(signals.take(), 1);
    }
}
