//! Faults the reliability tests inject through `RESNET_TUI_FAULT` (unset in normal use), each
//! before step N+1: `panic@N` panics, `torch@N` makes libtorch throw, `stall@N` stops for an
//! hour (a step or a write that does not come back, for the tests of quitting without waiting).
//!
//! A stall says that it has begun by creating the file named in `RESNET_TUI_FAULT_NOTE`, so a
//! test acts once the trainer is certainly stuck rather than after a guessed delay. Unset, the
//! hook costs one environment lookup at the start of a run and does nothing else
//! (docs/reliability.md says why it stays in the release binary).

use std::time::Duration;
use tch::{Device, Kind, Tensor};

/// The fault to inject, if any.
const FAULT_VAR: &str = "RESNET_TUI_FAULT";
/// A file a stall creates once it has begun, if set.
const NOTE_VAR: &str = "RESNET_TUI_FAULT_NOTE";

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Fault {
    kind: FaultKind,
    pub iter: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum FaultKind {
    Panic,
    Torch,
    Stall,
}

impl Fault {
    pub fn from_env() -> Option<Fault> {
        let spec = std::env::var(FAULT_VAR).ok()?;
        Fault::parse(&spec)
    }

    /// `KIND@N`; anything else is no fault.
    fn parse(spec: &str) -> Option<Fault> {
        let (kind, iter) = spec.split_once('@')?;
        let kind = match kind {
            "panic" => FaultKind::Panic,
            "torch" => FaultKind::Torch,
            "stall" => FaultKind::Stall,
            _ => return None,
        };
        Some(Fault { kind, iter: iter.parse().ok()? })
    }

    pub fn inject(self) {
        match self.kind {
            FaultKind::Panic => panic!("injected fault at iteration {}", self.iter),
            FaultKind::Torch => {
                let a = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
                let _ = a.matmul(&a);
            }
            FaultKind::Stall => {
                if let Some(note) = std::env::var_os(NOTE_VAR) {
                    // Written before the sleep, on this thread: once the file exists, nothing
                    // of this run moves until the process ends.
                    let _ = std::fs::write(note, format!("stalled before step {}\n", self.iter + 1));
                }
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_known_kind_at_an_iteration_is_a_fault() {
        assert_eq!(Fault::parse("stall@5"), Some(Fault { kind: FaultKind::Stall, iter: 5 }));
        assert_eq!(Fault::parse("panic@0"), Some(Fault { kind: FaultKind::Panic, iter: 0 }));
        assert_eq!(Fault::parse("torch@12"), Some(Fault { kind: FaultKind::Torch, iter: 12 }));
        for spec in ["", "stall", "stall@", "stall@x", "stall@-1", "hang@3", "Stall@3", "@3"] {
            assert_eq!(Fault::parse(spec), None, "{spec:?}");
        }
    }
}
