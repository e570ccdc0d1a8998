//! Every kind of event survives the run log: written with `LogWriter`, read back equal with
//! `read_strict`, which summary, plot, export and replay all use.

use resnet_tui::protocol::*;
use resnet_tui::runlog::{LOG_NAME, LogWriter, read_strict};
use std::path::PathBuf;

fn run_info() -> RunInfo {
    let mut config =
        resnet_tui::config::paper(resnet_tui::config::Depth::new(110).unwrap(), PathBuf::from("/data/cifar10"));
    config.val_split = 5000;
    config.threads = Some(2);
    RunInfo {
        name: "20261128-041500-resnet110".into(),
        dir: PathBuf::from("runs/20261128-041500-resnet110"),
        config,
        params: 1_727_962,
        device: "cuda:0 (NVIDIA H100)".into(),
        train_images: 45_000,
        eval_images: 5_000,
        eval_set: EvalSet::Validation,
        classes: vec!["airplane".into(), "automobile".into()],
        start_iter: 4_000,
        grown_from: Some("20261127-101010-resnet56".into()),
        best_before: Some((12.5, 400)),
        build: Some("resnet-tui 0.1.0 (binary 0123456789abcdef, libtorch 2.11.0)".into()),
        cpu: Some("Intel(R) Xeon(R) Processor (family 6 model 207; avx2, avx512f)".into()),
    }
}

/// One event of every kind, with awkward values where a format could lose them: fractions that
/// do not round-trip through short decimals, empty and non-ASCII strings, every enum variant.
fn every_kind() -> Vec<Event> {
    let mut events = vec![
        Event::RunStarted { time: 1_795_839_437.272_054_7, run: Box::new(run_info()) },
        Event::Status { time: 1.0, message: "loading CIFAR-10 — 60 000 images, \"quoted\"\n".into() },
        Event::Step(StepRecord {
            time: 2.0,
            iter: 4_001,
            epoch: 11.380_266_666_666_667,
            elapsed: 1.797_152_431_999_999_9,
            loss: 0.1 + 0.2,
            error: 7.8125,
            lr: 0.01,
            images_per_sec: 1_098.5,
        }),
        Event::Eval(EvalRecord {
            time: 3.0,
            iter: 4_001,
            epoch: 11.38,
            elapsed: 99.5,
            set: EvalSet::Validation,
            loss: 0.35,
            error: 9.12,
            class_errors: vec![5.5, 1e-300],
            images_per_sec: 12_000.0,
            confusion: Vec::new(),
            misclassified: Vec::new(),
            responses: Vec::new(),
        }),
        Event::Eval(EvalRecord {
            time: 3.5,
            iter: 4_001,
            epoch: 11.38,
            elapsed: 99.6,
            set: EvalSet::Test,
            loss: 0.36,
            error: 9.5,
            class_errors: vec![],
            images_per_sec: 11_000.0,
            confusion: Vec::new(),
            misclassified: Vec::new(),
            responses: Vec::new(),
        }),
        Event::Paused { time: 4.0, iter: 4_001 },
        Event::Resumed { time: 5.0, iter: 4_001 },
        Event::Diverged {
            time: 6.0,
            iter: 4_002,
            loss: 1e308,
            last_good: Some(PathBuf::from("ck/iter-4000.st")),
            layer: Some("stage1.block0.conv1.weight (gradient)".into()),
        },
        Event::Diverged { time: 6.5, iter: 4_002, loss: -0.0, last_good: None, layer: None },
        Event::Error { time: 7.0, message: String::new(), fatal: false },
        Event::Error { time: 7.5, message: "disk full: ünïcödé".into(), fatal: true },
    ];
    for reason in
        [CheckpointReason::Periodic, CheckpointReason::Requested, CheckpointReason::Best, CheckpointReason::Final]
    {
        events.push(Event::Checkpoint {
            time: 8.0,
            iter: 4_002,
            path: PathBuf::from("ck/best.st"),
            reason,
            secs: 0.25,
        });
    }
    for reason in [EndReason::Completed, EndReason::Stopped, EndReason::Switched, EndReason::Diverged] {
        events.push(Event::Finished {
            time: 9.0,
            summary: Summary {
                reason,
                iters: 64_000,
                final_error: Some(6.61),
                best_error: None,
                best_iter: Some(63_000),
                train_secs: 12_345.678_9,
            },
        });
    }
    events
}

#[test]
fn every_event_kind_reads_back_exactly_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG_NAME);
    let events = every_kind();
    let kinds: std::collections::BTreeSet<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds.len(), 10, "the test must cover every kind: {kinds:?}");
    let mut writer = LogWriter::open(&path).unwrap();
    for e in &events {
        writer.write(e).unwrap();
    }
    drop(writer);
    let log = read_strict(&path).unwrap();
    assert!(log.warnings.is_empty(), "{:?}", log.warnings);
    assert_eq!(log.events, events);
    // A run directory reads the same as its log file.
    assert_eq!(read_strict(dir.path()).unwrap().events, events);
}

#[test]
fn reopening_a_log_stamps_the_part_it_appends_and_every_event_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOG_NAME);
    let events = every_kind();
    let (first, second) = events.split_at(5);
    for part in [first, second] {
        let mut writer = LogWriter::open(&path).unwrap();
        for e in part {
            writer.write(e).unwrap();
        }
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let stamps: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.contains("\"resnet-tui/runlog\"")).map(|(i, _)| i).collect();
    assert_eq!(stamps, [0, 1 + first.len()], "a stamp first and one where the second writer's part begins");
    let log = read_strict(&path).unwrap();
    assert_eq!((log.events, log.warnings.len()), (events, 0));
}
