//! Only the trainer thread may run parallel libtorch kernels on the CPU.
//!
//! Why: libgomp gives every thread that opens a parallel region its own team of workers, and when
//! it manages more threads than there are CPUs it stops spinning at barriers and sleeps on a futex
//! instead. A second team (the prefetch thread's, from one `torch::zeros` fill per batch) made the
//! training step's threads sleep and wake about 700 times a step and cost the loop a fifth of its
//! speed. Worker threads inherit the name of the thread that made them, so a second thread named
//! "prefetch" is that team.
//!
//! This file holds one test so that it has its process, and its thread list, to itself.

use resnet_tui::data::cifar::write_synthetic;
use resnet_tui::protocol::{Envelope, Event, StepRecord};
use resnet_tui::train::{Options, Plan};
use std::collections::BTreeMap;

/// How many threads of this process carry each name.
fn thread_names() -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").expect("read /proc/self/task") {
        let comm = std::fs::read_to_string(task.expect("task entry").path().join("comm")).unwrap_or_default();
        *names.entry(comm.trim().to_string()).or_insert(0) += 1;
    }
    names
}

#[test]
fn the_prefetch_thread_starts_no_openmp_team() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 200 images per file: a batch of 128 (393,216 floats) is far above libtorch's grain size,
    // so a fill or copy of it would run in parallel.
    write_synthetic(&data, 200, |f, r, b| (f * 31 + r * 7 + b) as u8).unwrap();
    let mut config = resnet_tui::config::paper(resnet_tui::config::Depth::new(8).unwrap(), data);
    config.threads = Some(2);
    config.warmup = None;
    resnet_tui::config::set_length(&mut config, 12, None);
    config.eval_every = 1000;
    config.checkpoint_every = 1000;
    let runs = dir.path().join("runs");
    let options = Options { runs_dir: runs.clone(), ..Options::default() };
    let (channels, trainer) = resnet_tui::train::spawn(Plan::New { config, runs_dir: runs }, options);

    // Look while the prefetch thread is alive and has built several batches.
    let mut seen = None;
    for Envelope { event, .. } in channels.events.iter() {
        match event {
            Event::Step(StepRecord { iter: 6, .. }) => seen = Some(thread_names()),
            Event::Error { message, fatal: true, .. } => panic!("training failed: {message}"),
            Event::Finished { .. } => break,
            _ => {}
        }
    }
    drop(channels);
    trainer.join();
    let names = seen.expect("the run reached step 6");
    assert_eq!(names.get("prefetch"), Some(&1), "one prefetch thread and no OpenMP workers of its own: {names:?}");
    // Teams do form in this set-up: the trainer has its OpenMP worker (and libtorch's idle
    // pthreadpool thread, which it starts from the trainer thread too).
    assert!(names.get("trainer").is_some_and(|&n| n >= 2), "the trainer thread and its OpenMP worker: {names:?}");
}
