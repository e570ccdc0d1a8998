//! Bad input: each gives one line naming the problem, a non-zero exit, no panic or backtrace,
//! and touches no existing run.
mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A sandbox holding one finished ResNet-8 run (checkpoints at 2 and 4, and a best one).
struct WithRun {
    s: Sandbox,
    run: PathBuf,
}

fn with_run() -> WithRun {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "4", "--checkpoint-every", "2", "--eval-every", "2"])));
    let run = s.only_run();
    WithRun { s, run }
}

/// `train` with the tiny recipe; `case`'s flags replace the defaults they name.
fn train_case(s: &Sandbox, data: &Path, case: &[&str]) -> std::process::Command {
    let mut args: Vec<String> =
        vec!["train".into(), "--no-ui".into(), "--runs-dir".into(), s.runs().display().to_string()];
    let defaults = [
        ("--depth", "8"),
        ("--batch-size", "16"),
        ("--threads", "1"),
        ("--device", "cpu"),
        ("--iters", "4"),
        ("--data-dir", data.to_str().unwrap()),
    ];
    for (flag, value) in defaults {
        let given = case.contains(&flag) || (flag == "--iters" && case.contains(&"--epochs"));
        if !given {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args.extend(case.iter().map(|a| a.to_string()));
    let mut cmd = bin();
    cmd.args(args);
    cmd
}

/// Runs each case, checks the refusal and that the runs folder is exactly as it was.
fn refuse_all(w: &WithRun, cases: &[(Vec<&str>, Vec<&str>)], command: impl Fn(&[&str]) -> std::process::Command) {
    let before = snapshot(&w.s.runs());
    for (case, needles) in cases {
        let out = output(command(case));
        let line = assert_refused(&out, needles);
        eprintln!("{case:?} -> {line}");
        assert!(snapshot(&w.s.runs()) == before, "{case:?} touched the runs folder");
    }
}

#[test]
fn bad_flags_and_values_are_refused_in_one_line() {
    let w = with_run();
    let depths = "20, 32, 44, 56, 110, 1202";
    let mut cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--bogus"], vec!["unexpected argument '--bogus'"]),
        (vec!["--deph", "8"], vec!["--deph", "--depth"]),
        (vec!["--shortcut", "c"], vec!["'c'", "--shortcut", "a, b"]),
        (vec!["--depth", "21"], vec!["--depth", "21", depths]),
        (vec!["--depth", "0"], vec!["--depth", depths]),
        (vec!["--depth", "deep"], vec!["'deep'", "--depth"]),
        (vec!["--lr", "0"], vec!["--lr", "positive"]),
        (vec!["--lr", "-0.1"], vec!["--lr", "positive"]),
        (vec!["--lr", "nan"], vec!["--lr", "positive"]),
        (vec!["--lr", "fast"], vec!["'fast'", "--lr"]),
        (vec!["--batch-size", "0"], vec!["--batch-size", "from 1 to 50000"]),
        (vec!["--batch-size", "-16"], vec!["'-16'", "--batch-size"]),
        (vec!["--iters", "0"], vec!["--iters", "from 1 to 1000000000"]),
        (vec!["--epochs", "-1"], vec!["--epochs", "positive"]),
        (vec!["--milestones", "3,2"], vec!["--milestones", "increasing"]),
        (vec!["--milestones", "2,2"], vec!["--milestones", "increasing"]),
        (vec!["--milestones", "2,4"], vec!["--milestones", "not before the last iteration"]),
        (vec!["--milestones", "2,90"], vec!["--milestones", "90"]),
        (vec!["--momentum", "1.5"], vec!["--momentum"]),
        (vec!["--threads", "0"], vec!["--threads"]),
        (vec!["--checkpoint-every", "0"], vec!["--checkpoint-every"]),
        (vec!["--device", "tpu"], vec!["unknown device", "tpu", "cuda:N"]),
        (vec!["--depth", "1202", "--batch-size", "4096"], vec!["ResNet-1202 at batch 4096 needs about", "--force"]),
        (vec!["--device", "cuda:99"], vec!["--device cuda:99"]),
    ];
    if tch::Cuda::device_count() == 0 {
        cases.push((vec!["--device", "cuda"], vec!["--device cuda", "no CUDA GPU"]));
    }
    let data = w.s.data();
    refuse_all(&w, &cases, |case| train_case(&w.s, &data, case));
    let out = output({
        let mut c = bin();
        c.arg("fly");
        c
    });
    assert_refused(&out, &["'fly'"]);
}

/// Writes a data set into `name` and damages one file of it.
fn damaged_data(s: &Sandbox, name: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let dir = s.path(name);
    write_data(&dir);
    damage(&dir);
    dir
}

#[test]
fn bad_data_is_named_in_one_line() {
    use resnet_tui::data::cifar::RECORD_BYTES;
    let w = with_run();
    let s = &w.s;
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (s.path("nowhere"), vec!["data_batch_1.bin", "not found", "--data-dir"]),
        (
            damaged_data(s, "missing", |d| std::fs::remove_file(d.join("data_batch_3.bin")).unwrap()),
            vec!["data_batch_3.bin", "not found"],
        ),
        (
            damaged_data(s, "truncated", |d| {
                let p = d.join("test_batch.bin");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() - 1000]).unwrap();
            }),
            vec!["test_batch.bin", "not a whole number", "truncated"],
        ),
        (
            damaged_data(s, "short", |d| {
                let p = d.join("data_batch_4.bin");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..10 * RECORD_BYTES]).unwrap();
            }),
            vec!["data_batch_4.bin", "holds 10 records", "truncated"],
        ),
        (
            damaged_data(s, "oversized", |d| {
                std::fs::write(d.join("data_batch_1.bin"), vec![1u8; 10_001 * RECORD_BYTES]).unwrap()
            }),
            vec!["data_batch_1.bin", "10001 records", "more than"],
        ),
        (
            damaged_data(s, "label", |d| {
                let p = d.join("data_batch_2.bin");
                let mut b = std::fs::read(&p).unwrap();
                b[7 * RECORD_BYTES] = 10;
                std::fs::write(&p, b).unwrap();
            }),
            vec!["data_batch_2.bin", "record 7 has label 10", "0 to 9"],
        ),
        (
            damaged_data(s, "empty", |d| std::fs::write(d.join("data_batch_5.bin"), b"").unwrap()),
            vec!["data_batch_5.bin", "empty"],
        ),
    ];
    let cases: Vec<(Vec<&str>, Vec<&str>)> =
        cases.iter().map(|(dir, needles)| (vec!["--data-dir", dir.to_str().unwrap()], needles.clone())).collect();
    refuse_all(&w, &cases, |case| train_case(&w.s, &w.s.data(), case));
}

/// A copy of the finished run whose checkpoints `damage` spoils; returns the copy.
fn spoiled_copy(w: &WithRun, name: &str, damage: impl Fn(&Path)) -> PathBuf {
    let copy = w.s.path(name).join(w.run.file_name().unwrap());
    copy_dir(&w.run, &copy);
    for (_, path) in resnet_tui::train::checkpoint::list_periodic(&copy.join("checkpoints")) {
        damage(&path);
    }
    damage(&copy.join("checkpoints/best.safetensors"));
    copy
}

fn truncate(p: &Path) {
    let b = std::fs::read(p).unwrap();
    std::fs::write(p, &b[..b.len() / 2]).unwrap();
}

fn flip_a_weight(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let at = b.len() - 10;
    b[at] ^= 0x55;
    std::fs::write(p, b).unwrap();
}

fn set_version(p: &Path) {
    rewrite_metadata(p, |m| {
        m.insert("version".into(), "2.0".into());
    });
}

/// The state claims ResNet-14; the tensors are ResNet-8's.
fn claim_depth_14(p: &Path) {
    rewrite_metadata(p, |m| {
        let mut state: serde_json::Value = serde_json::from_str(m["state"].as_str().unwrap()).unwrap();
        state["config"]["depth"] = 14.into();
        m.insert("state".into(), state.to_string().into());
    });
}

fn eval(target: &Path) -> std::process::Command {
    let mut c = bin();
    c.arg("eval").arg(target).args(["--device", "cpu"]);
    c
}

#[test]
fn bad_checkpoints_are_refused_by_eval_and_resume() {
    let w = with_run();
    // The good run evaluates and its checkpoint is what the damaged copies start from.
    let good = output(eval(&w.run.join("checkpoints/best.safetensors")));
    assert_ok(&good);
    assert!(String::from_utf8_lossy(&good.stdout).contains("test error"));

    let truncated = spoiled_copy(&w, "truncated", truncate);
    let damaged = spoiled_copy(&w, "damaged", flip_a_weight);
    let version = spoiled_copy(&w, "version", set_version);
    let depth = spoiled_copy(&w, "depth", claim_depth_14);
    let best = |run: &Path| run.join("checkpoints/best.safetensors");
    let cases: Vec<(PathBuf, Vec<&str>, Vec<&str>)> = vec![
        (
            truncated.clone(),
            vec!["not a resnet-tui checkpoint"],
            vec!["no readable checkpoint", "not a resnet-tui checkpoint"],
        ),
        (damaged.clone(), vec!["damaged (checksum mismatch)"], vec!["no readable checkpoint", "damaged"]),
        (
            version.clone(),
            vec!["checkpoint version 2.0 is newer than this build reads (1.x)"],
            vec!["no readable checkpoint", "version 2.0"],
        ),
        (
            depth.clone(),
            vec!["best.safetensors", "does not hold the ResNet-14 it names"],
            vec!["checkpoint is of ResNet-14, the run is ResNet-8"],
        ),
    ];
    for (run, eval_needles, resume_needles) in &cases {
        let before = snapshot(run);
        let line = assert_refused(&output(eval(&best(run))), eval_needles);
        eprintln!("eval {} -> {line}", run.display());
        // The run directory itself: eval reads its best checkpoint.
        assert_refused(&output(eval(run)), eval_needles);
        let line = assert_refused(&output(resume(run)), resume_needles);
        eprintln!("resume {} -> {line}", run.display());
        assert!(snapshot(run) == before, "{} was touched", run.display());
    }

    let not_a_checkpoint = w.s.path("notes.txt");
    std::fs::write(&not_a_checkpoint, "hello").unwrap();
    assert_refused(&output(eval(&not_a_checkpoint)), &["notes.txt", "not a resnet-tui checkpoint"]);
    assert_refused(&output(eval(&w.s.path("absent.safetensors"))), &["absent.safetensors", "cannot read"]);
    assert_refused(&output(eval(&w.s.data())), &["no best.safetensors"]);
}

#[test]
fn a_damaged_newest_checkpoint_is_skipped_and_the_run_resumes_from_an_older_one() {
    let w = with_run();
    let newest = w.run.join("checkpoints/iter-00000004.safetensors");
    flip_a_weight(&newest);
    let out = output(resume(&w.run));
    assert_ok(&out);
    assert!(stderr(&out).contains("skipping") && stderr(&out).contains("damaged"), "{}", stderr(&out));
    assert_eq!(start_iters(&w.run), vec![0, 2]);
    assert_eq!(finished(&w.run).pop().unwrap().iters, 4);
}

#[test]
fn resume_of_what_is_not_a_run_and_an_uncreatable_runs_folder_are_refused() {
    let w = with_run();
    let s = &w.s;
    let file = s.path("plain-file");
    std::fs::write(&file, "x").unwrap();
    let bad_config = s.path("bad-config");
    std::fs::create_dir(&bad_config).unwrap();
    std::fs::write(bad_config.join("config.json"), "{ not json").unwrap();
    let before = snapshot(&s.runs());
    for (dir, needles) in [
        (s.data(), vec!["not a run directory"]),
        (s.path("absent"), vec!["absent", "not a run directory"]),
        (file.clone(), vec!["plain-file", "not a run directory"]),
        (bad_config.clone(), vec!["bad-config", "config.json is damaged"]),
    ] {
        let line = assert_refused(&output(resume(&dir)), &needles);
        eprintln!("resume {} -> {line}", dir.display());
    }
    assert!(snapshot(&s.runs()) == before);

    for runs in [file.join("runs"), file.clone()] {
        let mut cmd = bin();
        cmd.arg("train").args(tiny_args(&s.data(), &runs)).args(["--iters", "2"]);
        let line = assert_refused(&output(cmd), &["cannot create the runs folder", runs.to_str().unwrap()]);
        eprintln!("--runs-dir {} -> {line}", runs.display());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn a_data_folder_named_on_resume_is_used_as_named_and_refused_when_empty() {
    let w = with_run();
    let s = &w.s;
    let nowhere = s.path("nowhere");
    let before = snapshot(&w.run);
    // CIFAR10_DIR names a good data set: a folder named on the command line still wins over it.
    for named in [
        vec!["--data-dir".to_string(), nowhere.display().to_string()],
        vec!["--set".to_string(), format!("data_dir={}", nowhere.display())],
    ] {
        let mut cmd = resume(&w.run);
        cmd.args(["--set", "iters=6"]).args(&named).env("CIFAR10_DIR", s.data());
        let line = assert_refused(&output(cmd), &[nowhere.to_str().unwrap(), "data_batch_1.bin", "not found"]);
        eprintln!("resume {named:?} -> {line}");
    }
    assert!(snapshot(&w.run) == before, "a refused resume leaves the run as it was");
}

#[test]
fn bad_logs_are_refused_by_replay_and_summary() {
    let s = Sandbox::new();
    let empty = s.path("empty.jsonl");
    std::fs::write(&empty, b"").unwrap();
    let garbage = s.path("garbage.jsonl");
    std::fs::write(&garbage, (0..600u32).map(|i| (i * 7919 % 256) as u8).collect::<Vec<u8>>()).unwrap();
    let other = s.path("other.jsonl");
    std::fs::write(&other, "{\"name\":\"not ours\"}\n{\"step\":1}\n").unwrap();
    let cases: [(&Path, &[&str]); 3] = [
        (&empty, &["empty.jsonl", "empty"]),
        (&garbage, &["garbage.jsonl", "not a resnet-tui run log"]),
        (&other, &["other.jsonl", "not a resnet-tui run log"]),
    ];
    for (log, needles) in cases {
        let before = std::fs::read(log).unwrap();
        let mut replay = bin();
        replay.arg("replay").arg(log).arg("--no-ui");
        let line = assert_refused(&output(replay), needles);
        eprintln!("replay {} -> {line}", log.display());
        let mut summary = bin();
        summary.arg("summary").arg(log);
        let line = assert_refused(&output(summary), needles);
        eprintln!("summary {} -> {line}", log.display());
        assert_eq!(std::fs::read(log).unwrap(), before);
    }
}

/// Counts that would overflow a type, or reach libtorch as a number it cannot use, are refused
/// at the command line with the flag and its range, before anything is read or written.
#[test]
fn counts_out_of_range_are_refused_naming_the_flag_and_the_range() {
    let w = with_run();
    let huge = "99999999999999999999999";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--threads", "99999999999"], vec!["--threads", "from 1 to 1024"]),
        (vec!["--threads", huge], vec!["--threads", "from 1 to 1024"]),
        (vec!["--epochs", "1e30"], vec!["--epochs", "at most"]),
        (vec!["--iters", "18446744073709551615"], vec!["--iters", "from 1 to 1000000000"]),
        (vec!["--iters", huge], vec!["--iters", "from 1 to 1000000000"]),
        (vec!["--eval-every", huge], vec!["--eval-every", "from 1 to 1000000000"]),
        (vec!["--checkpoint-every", huge], vec!["--checkpoint-every", "from 1 to 1000000000"]),
        (vec!["--keep-checkpoints", huge], vec!["--keep-checkpoints", "from 1 to 1000000000"]),
        (vec!["--batch-size", "99999999999"], vec!["--batch-size", "from 1 to 50000"]),
        (vec!["--batch-size", huge], vec!["--batch-size", "from 1 to 50000"]),
        (vec!["--warmup-iters", huge], vec!["--warmup-iters", "from 0 to 1000000000"]),
        (vec!["--val-split", "99999999999"], vec!["--val-split", "from 0 to 49999"]),
    ];
    let data = w.s.data();
    refuse_all(&w, &cases, |case| train_case(&w.s, &data, case));

    // The same bounds hold for a recipe changed on resume; clap's line names the field by its
    // FIELD=VALUE text, a part of a value (the warm-up's iterations) by its own flag.
    let set_cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["threads=99999999999"], vec!["'threads=99999999999'", "--set", "from 1 to 1024"]),
        (vec!["iters=18446744073709551615"], vec!["'iters=18446744073709551615'", "from 1 to 1000000000"]),
        (vec!["batch_size=99999999999"], vec!["'batch_size=99999999999'", "from 1 to 50000"]),
        (vec!["eval_every=18446744073709551615"], vec!["'eval_every=18446744073709551615'", "from 1 to 1000000000"]),
        (vec!["keep_checkpoints=18446744073709551615"], vec!["'keep_checkpoints=", "from 1 to 1000000000"]),
        (
            vec!["warmup={\"iters\":18446744073709551615,\"lr\":0.01}"],
            vec!["iters must be a whole number from 0 to 1000000000"],
        ),
    ];
    let before = snapshot(&w.run);
    for (set, needles) in &set_cases {
        let mut cmd = resume(&w.run);
        cmd.arg("--set").arg(set[0]);
        let line = assert_refused(&output(cmd), needles);
        eprintln!("resume --set {} -> {line}", set[0]);
    }
    assert!(snapshot(&w.run) == before, "a refused resume leaves the run as it was");

    // Runs at once: every one gets at least one thread.
    for jobs in ["0", "99999999999", huge] {
        let mut c = bin();
        c.args(["sweep", "run"]).arg(w.s.path("nothing")).args(["--jobs", jobs, "--no-ui"]);
        assert_refused(&output(c), &["--jobs", "from 1 to 1024"]);
    }
    // What a Slurm array asks for: refused before a script sbatch would refuse is written.
    let sweep = w.s.path("slurm-sweep");
    let mut c = bin();
    c.args(["sweep", "create"]).arg(&sweep).args(["--depths", "20", "--seeds", "1", "--iters", "10"]);
    c.arg("--data-dir").arg(w.s.data());
    assert!(output(c).status.success(), "a sweep to submit");
    for (flag, value, range) in [
        ("--cpus-per-task", "0", "from 1 to 1024"),
        ("--cpus-per-task", huge, "from 1 to 1024"),
        ("--gpus-per-task", "99999999999", "from 0 to 64"),
        ("--max-parallel", "0", "from 1 to 1000000"),
        ("--signal-secs", "0", "from 1 to 65535"),
        ("--signal-secs", "70000", "from 1 to 65535"),
    ] {
        let mut c = bin();
        c.args(["sweep", "slurm"]).arg(&sweep).args(["--print", flag, value]);
        assert_refused(&output(c), &[flag, range]);
    }
    assert!(!sweep.join("slurm").exists(), "no script is written for a refused request");
    // The benchmark hands its threads to libtorch too.
    for (flag, value, range) in
        [("--threads", "99999999999", "from 1 to 1024"), ("--batch-size", huge, "from 1 to 50000")]
    {
        let mut c = bin();
        c.args(["bench", "--only", "step", flag, value]).arg("--data-dir").arg(w.s.data());
        assert_refused(&output(c), &[flag, range]);
    }
}
