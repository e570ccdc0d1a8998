//! Faults the reliability tests inject through `RESNET_TUI_FAULT` (unset in normal use), each
//! before step N+1: `panic@N` panics, `torch@N` makes libtorch throw, `stall@N` stops for an
//! hour (a step or a write that does not come back, for the tests of quitting without waiting).

use std::time::Duration;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy)]
pub(super) struct Fault {
    kind: FaultKind,
    pub iter: u64,
}

#[derive(Clone, Copy)]
enum FaultKind {
    Panic,
    Torch,
    Stall,
}

impl Fault {
    pub fn from_env() -> Option<Fault> {
        let spec = std::env::var("RESNET_TUI_FAULT").ok()?;
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
            FaultKind::Stall => std::thread::sleep(Duration::from_secs(3600)),
        }
    }
}
