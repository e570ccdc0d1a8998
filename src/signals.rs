//! SIGINT, SIGTERM and SIGHUP as a flag the front ends poll, so a signal becomes a clean stop
//! (checkpoint, summary, exit) instead of killing the process mid-write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct StopSignals {
    flag: Arc<AtomicBool>,
}

impl StopSignals {
    /// Registers the handlers. Registration failing (it does not on Linux) leaves the default
    /// behaviour, which is still safe: checkpoints are atomic and the log is flushed per line.
    pub fn install() -> StopSignals {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        StopSignals { flag }
    }

    pub fn raised(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Clears the flag, for a front end that asks before acting on a signal.
    pub fn clear(&self) {
        self.flag.store(false, Ordering::Relaxed);
    }
}
