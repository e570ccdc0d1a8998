//! `summary`, `plot` and `export` as a user runs them, on logs written here with `LogWriter`.

use resnet_tui::protocol::*;
use resnet_tui::runlog::{LOG_NAME, LogWriter};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnet-tui")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn started(name: &str, depth: u32, start_iter: u64) -> Event {
    let mut config = resnet_tui::config::paper(resnet_tui::config::Depth::new(depth).unwrap(), PathBuf::from("data"));
    config.iters = 100;
    config.eval_every = 20;
    Event::RunStarted {
        time: 0.0,
        run: Box::new(RunInfo {
            name: name.into(),
            dir: PathBuf::from("runs").join(name),
            config,
            params: 853_018,
            device: "cpu (2 threads)".into(),
            train_images: 50_000,
            eval_images: 10_000,
            eval_set: EvalSet::Test,
            classes: (0..10).map(|c| format!("c{c}")).collect(),
            start_iter,
            grown_from: None,
            best_before: None,
            build: None,
            cpu: None,
        }),
    }
}

fn step(iter: u64) -> Event {
    Event::Step(StepRecord {
        time: 10.0 + iter as f64,
        iter,
        epoch: iter as f64 * 128.0 / 50_000.0,
        elapsed: iter as f64 * 0.25,
        loss: 2.5 / (1.0 + iter as f64 / 20.0),
        error: 90.0 - iter as f64 * 0.5,
        lr: 0.1,
        images_per_sec: 512.0,
    })
}

fn eval(iter: u64, error: f64) -> Event {
    Event::Eval(EvalRecord {
        time: 10.5 + iter as f64,
        iter,
        epoch: iter as f64 * 128.0 / 50_000.0,
        elapsed: iter as f64 * 0.25 + 0.1,
        set: EvalSet::Test,
        loss: error / 30.0,
        error,
        class_errors: vec![error; 10],
        images_per_sec: 4000.0,
        confusion: Vec::new(),
        misclassified: Vec::new(),
        responses: Vec::new(),
    })
}

fn finished(iters: u64, final_error: f64, best: (f64, u64), train_secs: f64) -> Event {
    Event::Finished {
        time: 200.0,
        summary: Summary {
            reason: EndReason::Completed,
            iters,
            final_error: Some(final_error),
            best_error: Some(best.0),
            best_iter: Some(best.1),
            train_secs,
        },
    }
}

/// A completed 100-iteration ResNet-56 run evaluated every 20 iterations; best at 80.
fn complete_run() -> Vec<Event> {
    let errors = [70.0, 60.0, 55.0, 41.5, 42.25];
    let mut events = vec![started("run-resnet56", 56, 0)];
    for i in 1..=100 {
        events.push(step(i));
        if i % 20 == 0 {
            events.push(eval(i, errors[i as usize / 20 - 1]));
        }
        if i == 50 {
            events.push(Event::Checkpoint {
                time: 1.0,
                iter: 50,
                path: "ck".into(),
                reason: CheckpointReason::Periodic,
                secs: 0.1,
            });
        }
    }
    events.push(finished(100, 42.25, (41.5, 80), 25.5));
    events
}

fn write_log(dir: &Path, name: &str, events: &[Event]) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    let mut w = LogWriter::open(&run.join(LOG_NAME)).unwrap();
    for e in events {
        w.write(e).unwrap();
    }
    run
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn summary_table_matches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "run-resnet56", &complete_run());
    let out = bin(&["summary", s(&run)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for header in [
        "run",
        "depth",
        "params",
        "iters",
        "best",
        "final",
        "paper",
        "reimpl",
        "time",
        "device",
        "cpu",
        "img/s",
        "precision",
        "status",
    ] {
        assert!(lines[0].contains(header), "no {header} column: {text}");
    }
    let cells: Vec<&str> = lines[1].split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cells,
        [
            "run-resnet56",
            "56",
            "853,018",
            "100",
            "42.25",
            "41.50",
            "6.97",
            "7.50",
            "26s",
            "cpu (2 threads)",
            // No CPU named (a log before schema 1.6); its steps logged 512 img/s.
            "-",
            "512",
            "fp32",
            "completed"
        ]
    );
}

#[test]
fn summary_csv_has_one_parsable_record_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_log(dir.path(), "a", &complete_run());
    let mut killed = vec![started("run-resnet20", 20, 0)];
    killed.extend((1..=30).map(step));
    killed.push(eval(20, 77.0));
    let b = write_log(dir.path(), "b", &killed);
    let out = bin(&["summary", "--format", "csv", s(&a), s(&b.join(LOG_NAME))]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let get = |row: &csv::StringRecord, col: &str| row[headers.iter().position(|h| h == col).unwrap()].to_string();
    assert_eq!(get(&rows[0], "best_error").parse::<f64>().unwrap(), 41.5);
    assert_eq!(get(&rows[0], "best_iter"), "80");
    assert_eq!(get(&rows[0], "train_secs").parse::<f64>().unwrap(), 25.5);
    assert_eq!(get(&rows[0], "status"), "completed");
    // The killed run: derived from its last events.
    assert_eq!(get(&rows[1], "run"), "run-resnet20");
    assert_eq!(get(&rows[1], "iters"), "30");
    assert_eq!(get(&rows[1], "final_error"), "77");
    assert_eq!(get(&rows[1], "train_secs").parse::<f64>().unwrap(), 7.5);
    assert_eq!(get(&rows[1], "paper_error"), "8.75");
    assert_eq!(get(&rows[1], "status"), "unfinished");
}

#[test]
fn summary_json_is_valid_and_follows_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    // Killed at 70 after a bad evaluation at 60, resumed from the checkpoint at 50.
    let mut events = vec![started("run-resnet56", 56, 0)];
    events.extend((1..=50).map(step));
    events.push(eval(40, 50.0));
    events.extend((51..=70).map(step));
    events.push(eval(60, 1.0));
    events.push(started("run-resnet56", 56, 50));
    events.extend((51..=100).map(step));
    events.push(eval(60, 45.0));
    events.push(eval(100, 44.0));
    events.push(finished(100, 44.0, (44.0, 100), 30.0));
    let run = write_log(dir.path(), "r", &events);
    let out = bin(&["summary", "--format", "json", s(&run)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &json[0];
    assert_eq!(r["name"], "run-resnet56");
    assert_eq!(r["best_error"], 44.0, "the superseded evaluation at 60 does not count: {r}");
    assert_eq!(r["best_iter"], 100);
    assert_eq!((r["iters"].as_u64(), r["starts"].as_u64()), (Some(100), Some(2)));
    assert_eq!(r["status"], "completed");
}

#[test]
fn summary_markdown_is_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "r", &complete_run());
    let out = bin(&["summary", "--format", "markdown", s(&run)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| l.starts_with('|') && l.ends_with('|')), "{text}");
    let columns = |l: &str| l.matches('|').count();
    assert!(lines.iter().all(|l| columns(l) == columns(lines[0])), "{text}");
    assert!(lines[1].chars().all(|c| "|:- ".contains(c)), "{text}");
    assert!(lines[2].contains("| 41.50 |") && lines[2].contains("| 6.97 |"), "{text}");
}

#[test]
fn a_truncated_log_is_summarised_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "r", &complete_run()[..60]);
    let mut f = std::fs::OpenOptions::new().append(true).open(run.join(LOG_NAME)).unwrap();
    f.write_all(br#"{"step":{"time":70.0,"iter":5"#).unwrap();
    let out = bin(&["summary", "--format", "csv", s(&run)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("partial last line"), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text.lines().nth(1).unwrap();
    // 60 events: the start, 56 steps, 2 evaluations (at 20 and 40) and a checkpoint.
    assert!(row.starts_with("run-resnet56,56,a,853018,56,"), "{row}");
    assert!(row.contains(",unfinished,"), "{row}");
}

#[test]
fn garbage_lines_are_skipped_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "r", &complete_run()[..30]);
    let path = run.join(LOG_NAME);
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"\x00\xff\xfe garbage\n{\"gradient_norm\":{\"iter\":30}}\nnot json either\n").unwrap();
    let mut w = LogWriter::open(&path).unwrap();
    w.write(&step(30)).unwrap();
    let out = bin(&["summary", "--format", "csv", s(&path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().filter(|l| l.contains("warning")).count(), 3, "{err}");
    assert!(err.contains("gradient_norm"), "{err}");
    assert!(stdout(&out).lines().nth(1).unwrap().starts_with("run-resnet56,56,a,853018,30,"), "{}", stdout(&out));
}

/// One line on stderr, naming the file and the problem; a failure exit code.
fn assert_one_line_error(out: &Output, file: &Path, problem: &str) {
    assert!(!out.status.success());
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(s(file)) && err.contains(problem), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn empty_missing_binary_and_foreign_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let binary = dir.path().join("model.bin");
    std::fs::write(&binary, [0x89u8, b'P', b'N', b'G', 0, 0, 0xff, 10, 1, 2, 3]).unwrap();
    let foreign = dir.path().join("other.json");
    std::fs::write(&foreign, "{\"name\": \"not ours\"}\n").unwrap();
    let missing = dir.path().join("nowhere");
    let good = write_log(dir.path(), "good", &complete_run());
    for command in [&["summary"][..], &["plot", "-o", "x.png"][..], &["export", "--csv", "x.csv"][..]] {
        for (file, problem) in
            [(&empty, "empty"), (&missing, "cannot read"), (&binary, "not a resnet-tui run log"), (&foreign, "not a")]
        {
            let mut args = command.to_vec();
            args.insert(1, s(file));
            let out = bin(&args);
            assert_one_line_error(&out, file, problem);
        }
    }
    // One bad run among good ones still fails, naming the bad one.
    let out = bin(&["summary", s(&good), s(&missing)]);
    assert_one_line_error(&out, &missing, "cannot read");
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn plot_writes_png_and_svg_of_the_asked_size() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_log(dir.path(), "a", &complete_run());
    let mut short = vec![started("short-resnet20", 20, 0)];
    short.extend((1..=40).map(step));
    short.push(eval(40, 66.0));
    let b = write_log(dir.path(), "b", &short);

    let png = dir.path().join("curves.png");
    let out = bin(&["plot", s(&a), s(&b), "-o", s(&png), "--width", "900", "--height", "500"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (900, 500));

    let svg = dir.path().join("curves.svg");
    let out = bin(&["plot", s(&a), "-o", s(&svg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    let open = &text[text.find("<svg").expect("an <svg> element")..];
    let open = &open[..open.find('>').unwrap()];
    assert!(open.contains("width=\"1200\"") && open.contains("height=\"800\""), "{open}");
    assert!(text.trim_end().ends_with("</svg>"));
    assert!(text.contains("paper ResNet-56"), "the reference line is labelled");
}

#[test]
fn plot_refuses_unknown_extensions_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "a", &complete_run());
    let jpg = dir.path().join("curves.jpg");
    let out = bin(&["plot", s(&run), "-o", s(&jpg)]);
    assert_one_line_error(&out, &jpg, ".png or .svg");
    assert!(!jpg.exists());
    let out = bin(&["plot", s(&run), "-o", s(&dir.path().join("c.png")), "--width", "0"]);
    assert!(!out.status.success() && stderr(&out).contains("--width"), "{}", stderr(&out));
}

#[test]
fn a_plot_that_cannot_be_written_is_one_line_and_leaves_the_old_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "a", &complete_run());
    let nowhere = dir.path().join("missing").join("curves.png");
    let out = bin(&["plot", s(&run), "-o", s(&nowhere)]);
    assert_one_line_error(&out, &nowhere, "cannot write: No such file or directory");

    // Drawn again over an existing picture: the new one replaces it whole, with no temporary
    // file left beside it.
    let png = dir.path().join("curves.png");
    std::fs::write(&png, b"the previous picture").unwrap();
    let out = bin(&["plot", s(&run), "-o", s(&png)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (1200, 800));
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn export_has_one_row_per_step_and_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "a", &complete_run());
    let csv_path = dir.path().join("curves.csv");
    let out = bin(&["export", s(&run), "--csv", s(&csv_path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    for col in ["iter", "epoch", "elapsed", "kind", "loss", "error", "lr", "images_per_sec", "eval_set", "error_c9"] {
        assert!(headers.iter().any(|h| h == col), "no {col} column: {headers:?}");
    }
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let kinds = |k: &str| rows.iter().filter(|r| &r[col("kind")] == k).count();
    assert_eq!((rows.len(), kinds("step"), kinds("eval")), (105, 100, 5));
    let first_eval = rows.iter().find(|r| &r[col("kind")] == "eval").unwrap();
    assert_eq!((&first_eval[col("iter")], &first_eval[col("error")]), ("20", "70"));
    assert_eq!((&first_eval[col("eval_set")], &first_eval[col("error_c0")]), ("test", "70"));
    let iters: Vec<u64> = rows.iter().map(|r| r[col("iter")].parse().unwrap()).collect();
    assert!(iters.windows(2).all(|w| w[0] <= w[1]), "rows are in iteration order");
    assert_eq!(rows[0][col("loss")].parse::<f64>().unwrap(), 2.5 / (1.0 + 1.0 / 20.0));
}

#[test]
fn a_log_on_standard_input_is_read_as_dash() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_log(dir.path(), "run-resnet56", &complete_run());
    let log = std::fs::read(run.join(LOG_NAME)).unwrap();
    for args in [&["summary", "-"][..], &["replay", "--no-ui", "-"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_resnet-tui"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&log).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("run-resnet56") && text.contains("42.25"), "{args:?}: {text}");
    }
}
