//! SIGINT, SIGTERM and SIGHUP as stop requests the front ends poll, so a first signal becomes a
//! clean stop (checkpoint, summary, exit) instead of killing the process mid-write, and a second
//! request (a user who will not wait for that) can end the process at once.
//!
//! One request can arrive as several signals: `timeout`, a shell script's trap or a scheduler
//! that signals both a process and its process group deliver the same SIGTERM twice within
//! microseconds (GNU `timeout` forwards a signal to its child and then to its group). Counting
//! each as a request turned a plain `kill` of `timeout resnet-tui ...` into "quit without the
//! final checkpoint" whenever both landed before the front end looked. So signals that arrive
//! within [`ECHO_WINDOW`] of the first one seen are that same request.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long after the first signal is seen further signals still count as its echoes. Far
/// longer than a forwarded duplicate takes (microseconds) or a front end's poll (at most
/// 200 ms), far shorter than a person reaching for Ctrl-C again after reading the stop line.
pub const ECHO_WINDOW: Duration = Duration::from_millis(500);

pub struct StopSignals {
    received: Arc<AtomicUsize>,
    requests: Mutex<Requests>,
}

/// The signals received so far folded into stop requests.
#[derive(Default)]
struct Requests {
    /// Signals already folded in.
    signals: usize,
    /// When the first request was seen: the start of its echo window.
    first_seen: Option<Instant>,
    count: usize,
    /// Requests already handed out by [`StopSignals::take`].
    taken: usize,
}

impl Requests {
    /// Folds in the signal count `received` as seen at `now`.
    fn fold(&mut self, received: usize, now: Instant) -> usize {
        let new = received.saturating_sub(self.signals);
        self.signals = received.max(self.signals);
        if new > 0 {
            match self.first_seen {
                None => {
                    self.first_seen = Some(now);
                    self.count = 1;
                }
                Some(first) if now.duration_since(first) < ECHO_WINDOW => {}
                Some(_) => self.count += new,
            }
        }
        self.count
    }
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
        StopSignals { received, requests: Mutex::new(Requests::default()) }
    }

    /// Stop requests received since `install`: the first signal and its echoes are one.
    pub fn requests(&self) -> usize {
        let received = self.received.load(Ordering::SeqCst);
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).fold(received, Instant::now())
    }

    /// Stop requests received since the last call, for a front end that handles them one by one.
    pub fn take(&self) -> usize {
        let now = self.requests();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        now - std::mem::replace(&mut requests.taken, now)
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

    fn signals(received: usize) -> StopSignals {
        StopSignals { received: Arc::new(AtomicUsize::new(received)), requests: Mutex::new(Requests::default()) }
    }

    #[test]
    fn take_hands_out_each_request_once() {
        let signals = signals(0);
        assert_eq!(signals.take(), 0);
        signals.received.fetch_add(1, Ordering::SeqCst);
        assert_eq!((signals.take(), signals.take(), signals.requests()), (1, 0, 1));
    }

    #[test]
    fn signals_arriving_together_are_one_request() {
        // `timeout` forwarding a SIGTERM to its child and then to its process group.
        let signals = signals(2);
        assert_eq!(signals.requests(), 1);
        assert_eq!(signals.take(), 1);
    }

    #[test]
    fn a_signal_within_the_echo_window_is_the_same_request_and_one_after_it_is_a_second() {
        let start = Instant::now();
        let mut requests = Requests::default();
        assert_eq!(requests.fold(1, start), 1);
        assert_eq!(requests.fold(2, start + ECHO_WINDOW / 2), 1, "an echo seen by a later poll");
        assert_eq!(requests.fold(2, start + ECHO_WINDOW * 4), 1, "no new signal, no new request");
        assert_eq!(requests.fold(3, start + ECHO_WINDOW * 4), 2, "a second Ctrl-C after the window");
        assert_eq!(requests.fold(5, start + ECHO_WINDOW * 5), 4, "each later signal counts");
    }
}
