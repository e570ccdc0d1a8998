//! The runs shipped in `assets/runs/` are what the README says they are: on a fresh clone every
//! reader takes them, they name no path of the machine they ran on, their checkpoints evaluate on
//! the real test set to the errors their logs record, and the README quotes their final errors.
mod common;

use common::*;
use resnet_tui::protocol::Event;
use std::path::{Path, PathBuf};

fn shipped_runs() -> Vec<PathBuf> {
    let runs = run_dirs(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/runs"));
    assert!(!runs.is_empty(), "assets/runs holds no run");
    runs
}

fn summary(run: &Path) -> serde_json::Value {
    let mut cmd = bin();
    cmd.arg("summary").arg("--format").arg("json").arg(run);
    let out = output(cmd);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json[0].clone()
}

/// The JSON text of a safetensors file: its first 8 bytes give the header's length.
fn safetensors_header(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    String::from_utf8(bytes[8..8 + len].to_vec()).unwrap()
}

#[test]
fn every_shipped_run_is_a_completed_run_that_names_no_machine_path() {
    for run in shipped_runs() {
        let name = run.display();
        let s = summary(&run);
        assert_eq!(s["status"], "completed", "{name}: {s}");
        assert_eq!(s["iters"], s["planned_iters"], "{name}: {s}");
        assert!(s["final_error"].is_f64(), "{name}: {s}");
        assert!(s["best_error"].is_f64(), "{name}: {s}");

        // A path of the machine shows as a JSON string that starts at the root (in a checkpoint,
        // in its JSON header: its tensors' bytes may hold anything).
        for (file, bytes) in contents(&run) {
            let text = if file.ends_with(".safetensors") {
                safetensors_header(&run.join(&file))
            } else {
                String::from_utf8(bytes).unwrap()
            };
            assert!(!text.contains("\"/"), "{name}/{file} names a path");
        }

        let mut replay = bin();
        replay.arg("replay").arg("--no-ui").arg(&run);
        assert_ok(&output(replay));
    }
}

#[test]
fn shipped_checkpoints_evaluate_to_the_errors_their_logs_record() {
    // Evaluation runs on another machine and thread count than training did: summation order
    // may move a borderline image across the decision, so two images of 10,000 are allowed.
    let tolerance = 0.02 + 1e-9;
    for run in shipped_runs() {
        let s = summary(&run);
        let best = s["best_error"].as_f64().unwrap();
        let got = eval_error(&run);
        assert!((got - best).abs() <= tolerance, "{}: best checkpoint {got} %, log {best} %", run.display());

        // Each periodic checkpoint against the last evaluation the log holds at its iteration
        // (a resume repeats iterations; the later record is the one the run went on from).
        let evals: Vec<(u64, f64)> = events(&run)
            .into_iter()
            .filter_map(|e| match e {
                Event::Eval(e) => Some((e.iter, e.error)),
                _ => None,
            })
            .collect();
        for (iter, ck) in resnet_tui::train::checkpoint::list_periodic(&run.join("checkpoints")) {
            let logged = evals.iter().rev().find(|(i, _)| *i == iter).map(|(_, e)| *e);
            let logged = logged.unwrap_or_else(|| panic!("{}: no evaluation logged at {iter}", run.display()));
            let got = eval_error(&ck);
            assert!((got - logged).abs() <= tolerance, "{}: {got} %, log {logged} %", ck.display());
        }
    }
}

#[test]
fn the_readme_quotes_each_shipped_runs_final_error() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for run in shipped_runs() {
        let final_error = summary(&run)["final_error"].as_f64().unwrap();
        let quoted = format!("**{final_error:.2} %** final");
        assert!(readme.contains(&quoted), "the README does not quote {} as {quoted}", run.display());
    }
}

#[test]
fn figure_7_takes_the_full_recipe_resnet20s_responses_from_its_final_weights() {
    // Its log is older than the logged responses (schema 1.5): the figure computes them from its
    // final checkpoint, on the real test set, as its own final evaluation was computed.
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/runs/resnet20-paper");
    let s = Sandbox::new();
    let png = s.path("figure7.png");
    let mut plot = bin();
    plot.args(["plot", "--figure", "7"]).arg(&run).arg("--data-dir").arg(real_data()).arg("-o").arg(&png);
    let out = output(plot);
    assert_ok(&out);
    let said = stderr(&out);
    assert!(said.contains("computed from its checkpoint at iteration 64000"), "{said}");
    // As `eval` of it: two images of 10,000 may move on another CPU than training's.
    let at = said.find("test error ").unwrap_or_else(|| panic!("{said}")) + "test error ".len();
    let error: f64 = said[at..].split(' ').next().unwrap().parse().unwrap();
    assert!((error - 8.51).abs() <= 0.02 + 1e-9, "{said}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
}
