//! `resnet-tui eval CHECKPOINT`: the test error of saved weights, computed as the run computed
//! its own evaluations, so that a shipped run's weights give the error its log records.
mod common;

use common::*;

#[test]
fn eval_computes_in_the_precision_the_run_trained_in_and_gives_its_logged_final_error() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "30", "--eval-every", "30", "--precision", "bf16"])));
    let run = s.only_run();
    let logged = finished(&run).last().unwrap().final_error.expect("a completed run has a final error");
    let (_, last) = resnet_tui::train::checkpoint::list_periodic(&run.join("checkpoints")).pop().unwrap();

    let (said, error) = eval_said(&last, &s.data(), &[]);
    assert!(said.ends_with("images, bf16)"), "{said}");
    // Printed to two decimals; one image of the small test set is more than a point.
    assert!((error - logged).abs() <= 0.005, "eval {error} %, the log {logged} %");
    let (said, _) = eval_said(&last, &s.data(), &["--precision", "fp32"]);
    assert!(said.ends_with("images, fp32)"), "{said}");
}

#[test]
fn eval_on_the_training_images_takes_those_the_run_trained_on_without_its_held_out_ones() {
    // A data set whose five training files and test file hold the same images: the training
    // images are five copies of the test set, and a run holding the last copy out trains on four.
    let s = Sandbox::new();
    let data = s.path("copies");
    let records = 40;
    resnet_tui::data::cifar::write_synthetic(&data, records, |_, r, b| ((r * 104_729 + b * 31) % 251) as u8).unwrap();
    let mut train = bin();
    train.arg("train").args(tiny_args(&data, &s.runs()));
    train.args(["--iters", "20", "--eval-every", "20", "--precision", "fp32", "--val-split", &records.to_string()]);
    assert_ok(&output(train));
    let (_, last) = resnet_tui::train::checkpoint::list_periodic(&s.only_run().join("checkpoints")).pop().unwrap();

    let said = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.arg("eval").arg(&last).args(["--device", "cpu"]).arg("--data-dir").arg(&data).args(extra);
        let out = output(cmd);
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // `loss 2.3026, test error 87.50% (40 images, fp32)`: the loss, the error and the count.
    let numbers = |line: &str, set: &str| -> (f64, f64, usize) {
        let after =
            |key: &str| line[line.find(key).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len()..].to_string();
        let loss = after(&format!("{set} loss ")).split(',').next().unwrap().parse().unwrap();
        let error = after(&format!("{set} error ")).split('%').next().unwrap().parse().unwrap();
        let images = after("% (").split(' ').next().unwrap().replace(',', "").parse().unwrap();
        (loss, error, images)
    };
    let test_line = said(&[]);
    let train_line = said(&["--images", "train"]);
    let (test_loss, test_error, test_images) = numbers(&test_line, "test");
    let (train_loss, train_error, train_images) = numbers(&train_line, "train");
    assert_eq!((test_images, train_images), (records, 4 * records), "{train_line}");
    assert!(train_line.contains("images it trained on, without crops or flips, fp32)"), "{train_line}");
    // The same images four times over: the same error, and the same mean loss up to rounding.
    assert_eq!(train_error, test_error, "{train_line} / {test_line}");
    assert!((train_loss - test_loss).abs() <= 1e-3, "{train_line} / {test_line}");
}

/// Takes the layer responses out of a run's log, as logs written before schema 1.5 are.
fn strip_responses(run: &std::path::Path) {
    let log = run.join("events.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(eval) = v.get_mut("eval").and_then(|e| e.as_object_mut()) {
                eval.remove("responses");
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
}

#[test]
fn figure_7_computes_the_responses_an_older_log_lacks_from_the_runs_newest_checkpoint() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "30", "--eval-every", "30"])));
    let run = s.only_run();
    strip_responses(&run);
    let plot = |data: &std::path::Path, png: &std::path::Path| {
        let mut c = bin();
        c.args(["plot", "--figure", "7"]).arg(&run).arg("--data-dir").arg(data).arg("-o").arg(png);
        c.env_remove("CIFAR10_DIR");
        output(c)
    };
    let png = s.path("figure7.png");
    let out = plot(&s.data(), &png);
    assert_ok(&out);
    let said = stderr(&out);
    // Computed as the run's own evaluation at that iteration was: the same test error.
    assert!(said.contains("computed from its checkpoint at iteration 30"), "{said}");
    assert!(said.contains("as its log records"), "{said}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} bytes", bytes.len());

    // Without the data they cannot be computed: the run is left out, and alone it makes no figure.
    let out = plot(&s.path("no-data"), &s.path("none.png"));
    assert_refused(&out, &["figure 7 needs layer responses"]);
    let said = stderr(&out);
    assert!(said.contains("left out: its log has no layer responses"), "{said}");
}
