//! The system line's collector: a small thread that samples this process's CPU and memory once
//! a second (and the GPU's memory on CUDA runs) and sends the figures to the UI, so sampling never
//! delays a frame.

use super::app::SystemSample;
use crate::protocol::RunDevice;
use crossbeam_channel::{Receiver, Sender};
use std::time::Duration;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

const PERIOD: Duration = Duration::from_secs(1);

/// The handle the UI keeps: samples arrive on `samples`; `gpu` says which CUDA device to watch.
pub struct Sampler {
    pub samples: Receiver<SystemSample>,
    gpu: Sender<Option<u32>>,
    watched: Option<u32>,
}

impl Sampler {
    pub fn spawn() -> Sampler {
        let (tx, samples) = crossbeam_channel::bounded(4);
        let (gpu, gpu_rx) = crossbeam_channel::unbounded();
        let _ = std::thread::Builder::new().name("system-sampler".into()).spawn(move || collect(tx, gpu_rx));
        Sampler { samples, gpu, watched: None }
    }

    /// Watches the GPU the run trains on, or none.
    pub fn watch_device(&mut self, device: &RunDevice) {
        let index = device.gpu();
        if index != self.watched {
            self.watched = index;
            let _ = self.gpu.send(index);
        }
    }
}

fn collect(tx: Sender<SystemSample>, gpu_rx: Receiver<Option<u32>>) {
    let Ok(pid) = sysinfo::get_current_pid() else { return };
    let mut system = System::new();
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
    let mut gpu: Option<u32> = None;
    loop {
        system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind);
        while let Ok(g) = gpu_rx.try_recv() {
            gpu = g;
        }
        let mut sample = SystemSample::default();
        system.refresh_memory();
        if let Some(p) = system.process(pid) {
            sample.cpu_percent = p.cpu_usage();
            sample.memory_bytes = p.memory();
        }
        // Stored so that available + held is what the trainer's check counts (`memory::fits_now`).
        let room = crate::memory::room_beside(system.available_memory(), sample.memory_bytes);
        sample.available_bytes = Some(room.saturating_sub(sample.memory_bytes));
        if let Some(index) = gpu {
            match crate::memory::gpu_memory(index) {
                Some(m) => sample.gpu_memory = Some(m),
                None => sample.gpu_note = Some("n/a (nvidia-smi gave no figure)".into()),
            }
        }
        if tx.send(sample).is_err() {
            return;
        }
        std::thread::sleep(PERIOD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gpu_watched_is_the_one_the_run_reports_and_no_other() {
        let (gpu, watched) = crossbeam_channel::unbounded();
        let (_samples_tx, samples) = crossbeam_channel::bounded(1);
        let mut sampler = Sampler { samples, gpu, watched: None };
        sampler.watch_device(&RunDevice::from("cuda:3 (NVIDIA H100)"));
        assert_eq!(watched.try_recv(), Ok(Some(3)));
        // Words that only begin like a GPU's: parsed back from the text, they were GPU 0.
        sampler.watch_device(&RunDevice::from("cudafake"));
        assert_eq!(watched.try_recv(), Ok(None));
        sampler.watch_device(&RunDevice::from("cpu (2 threads)"));
        assert!(watched.try_recv().is_err(), "still none: nothing to tell the collector");
    }
}
