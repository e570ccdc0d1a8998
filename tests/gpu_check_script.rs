//! `scripts/gpu_check`, the end-to-end check for a lent GPU machine, checked where there is none:
//! it parses, its timeouts fit the device tool's one command of 600 s, and its CPU mode makes a
//! data set the binary learns from while only a few small text files land in `$OUT`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu_check")
}

fn script_text() -> String {
    std::fs::read_to_string(script()).expect("read scripts/gpu_check")
}

#[test]
fn the_script_parses_as_bash() {
    let out = Command::new("bash").arg("-n").arg(script()).output().expect("run bash -n");
    assert!(out.status.success(), "bash -n: {}", String::from_utf8_lossy(&out.stderr));
}

/// The seconds of every `timeout $((N * SCALE))` in the script's commands; panics on a `timeout`
/// written any other way, which the sum would miss.
fn timeouts(text: &str) -> Vec<u64> {
    let mut found = Vec::new();
    for line in text.lines().map(str::trim_start).filter(|l| !l.starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("timeout ") {
            let after = &rest[at + "timeout ".len()..];
            let seconds = after
                .strip_prefix("$((")
                .and_then(|a| a.split_once(" * SCALE))"))
                .and_then(|(n, _)| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("a timeout not written as `timeout $((N * SCALE))`: {line}"));
            found.push(seconds);
            rest = after;
        }
    }
    found
}

#[test]
fn every_timeout_together_stays_under_480_seconds() {
    let found = timeouts(&script_text());
    assert!(found.len() >= 15, "each step has its timeout; found only {found:?}");
    let total: u64 = found.iter().sum();
    assert!(total < 480, "the timeouts add up to {total} s: {found:?}");
}

#[test]
fn a_timeout_written_another_way_is_noticed() {
    let caught = std::panic::catch_unwind(|| timeouts("timeout 900 sleep 1"));
    assert!(caught.is_err(), "a bare `timeout 900` must not escape the sum");
    assert_eq!(timeouts("# timeout 900 in a comment\ntimeout $((45 * SCALE)) x"), vec![45]);
}

/// The checks the CPU mode runs for real (the CUDA ones are skipped there).
const CPU_CHECKS: [&str; 7] = ["device-auto", "learn-fp32", "learn-auto", "precision", "resume", "eval", "diverge"];

#[test]
fn its_cpu_mode_learns_from_the_data_it_makes_and_leaves_only_small_files_in_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, work) = (dir.path().join("out"), dir.path().join("work"));
    let run = Command::new("bash")
        .arg(script())
        .env("DEVICE", "cpu")
        // A check of the script's steps, not of speed: a busy machine gets more time.
        .env("TIMEOUT_SCALE", "6")
        .env("BIN", env!("CARGO_BIN_EXE_resnet-tui"))
        .env("OUT", &out)
        .env("WORK", &work)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env_remove("CIFAR10_DIR")
        .output()
        .expect("run scripts/gpu_check");
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "exit {:?}\nsummary:\n{summary}\nstderr:\n{stderr}", run.status);
    for check in CPU_CHECKS {
        assert!(summary.contains(&format!("PASS {check}:")), "{check} passes:\n{summary}");
    }
    assert_eq!(summary.matches("PASS bench: ResNet-").count(), 2, "both depths benchmarked:\n{summary}");
    assert!(!summary.contains("FAIL"), "{summary}");

    // The data set: CIFAR-10's layout, the six files of equal size, every class in the test file.
    let data = work.join("data");
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"] {
        let len = std::fs::metadata(data.join(format!("{name}.bin"))).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 200 * 3073, "{name}.bin holds 200 records of 3,073 bytes");
    }
    let test = std::fs::read(data.join("test_batch.bin")).expect("read test_batch.bin");
    let mut labels: Vec<u8> = test.chunks_exact(3073).map(|r| r[0]).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels, (0..10).collect::<Vec<u8>>(), "every class, and only labels 0-9");

    // $OUT: a few small files, no folders, no data set, no runs.
    let entries: Vec<_> = std::fs::read_dir(&out).expect("read $OUT").flatten().collect();
    assert!(
        entries.len() < 8,
        "at most 7 files under $OUT: {:?}",
        entries.iter().map(|e| e.file_name()).collect::<Vec<_>>()
    );
    for entry in &entries {
        let meta = entry.metadata().expect("stat");
        assert!(meta.is_file(), "{:?} is a plain file", entry.file_name());
        assert!(meta.len() < 1 << 20, "{:?} is small: {} bytes", entry.file_name(), meta.len());
        let text = std::fs::read(entry.path()).expect("read");
        assert!(std::str::from_utf8(&text).is_ok(), "{:?} is text", entry.file_name());
    }
}
