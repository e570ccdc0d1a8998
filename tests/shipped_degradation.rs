//! The degradation sweep shipped in `assets/degradation` is what the README says it is: on a fresh
//! clone, with no data, its four cells replay, `summary` prints its 2x2 table beside the
//! reference, the README quotes that table's errors, Plain-56 trains worse than Plain-20 (the
//! degradation the paper shows), and `plot --figure 1|6|7` draws it from the folder alone.
mod common;

use common::*;
use std::path::{Path, PathBuf};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/degradation")
}

/// `summary --format json` of the shipped sweep: one object per network.
fn rows() -> Vec<serde_json::Value> {
    let mut cmd = bin();
    cmd.arg("summary").arg("--format").arg("json").arg(shipped());
    let out = output(cmd);
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The row of `network` (`Plain-56`, ...): final test error and last-epoch training error.
fn errors(rows: &[serde_json::Value], network: &str) -> (f64, f64) {
    let row = rows.iter().find(|r| r["label"] == network).unwrap_or_else(|| panic!("no {network} in {rows:?}"));
    assert_eq!(row["done"], 1, "{network} has not finished: {row}");
    (row["final_mean"].as_f64().unwrap(), row["final_train_mean"].as_f64().unwrap())
}

#[test]
fn the_shipped_degradation_sweep_replays_with_no_data_and_summarises_as_its_2x2_table() {
    let cells = run_dirs(&shipped());
    assert_eq!(cells.len(), 4, "{cells:?}");
    for cell in &cells {
        let mut replay = bin();
        replay.arg("replay").arg("--no-ui").arg(cell).env_remove("CIFAR10_DIR");
        assert_ok(&output(replay));
    }

    let mut summary = bin();
    summary.arg("summary").arg(shipped()).env_remove("CIFAR10_DIR");
    let out = output(summary);
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    for network in ["Plain-20 ", "ResNet-20 ", "Plain-56 ", "ResNet-56 "] {
        assert!(table.lines().any(|l| l.starts_with(network)), "no {network}row:\n{table}");
    }
    assert!(table.contains("a-martyn/resnet"), "the plain nets' reference is not named:\n{table}");
}

#[test]
fn plain_56_trains_worse_than_plain_20_in_the_shipped_sweep_and_the_readme_quotes_its_table() {
    let rows = rows();
    let (plain20_test, plain20_train) = errors(&rows, "Plain-20");
    let (plain56_test, plain56_train) = errors(&rows, "Plain-56");
    assert!(plain56_train > plain20_train, "training error: Plain-56 {plain56_train} %, Plain-20 {plain20_train} %");
    assert!(plain56_test > plain20_test, "test error: Plain-56 {plain56_test} %, Plain-20 {plain20_test} %");

    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for network in ["Plain-20", "ResNet-20", "Plain-56", "ResNet-56"] {
        let (test, train) = errors(&rows, network);
        let quoted = format!("| {network} | {train:.2} % | {test:.2} % |");
        assert!(readme.contains(&quoted), "the README does not quote {network} as {quoted}");
    }
}

#[test]
fn the_shipped_sweep_draws_figures_1_6_and_7_from_its_folder() {
    let s = Sandbox::new();
    for figure in ["1", "6", "7"] {
        let png = s.path(&format!("figure{figure}.png"));
        let mut plot = bin();
        plot.arg("plot").arg("--figure").arg(figure).arg(shipped()).arg("-o").arg(&png).env_remove("CIFAR10_DIR");
        assert_ok(&output(plot));
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "figure {figure}: {} bytes", bytes.len());
    }
}

#[test]
fn each_shipped_cells_final_checkpoint_evaluates_to_the_error_its_log_records() {
    // Another machine and thread count than training: two images of 10,000 may change sides.
    let tolerance = 0.02 + 1e-9;
    let rows = rows();
    for cell in run_dirs(&shipped()) {
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cell.join("config.json")).unwrap()).unwrap();
        let plain = config["shortcut"] == "none";
        let network = format!("{}-{}", if plain { "Plain" } else { "ResNet" }, config["depth"]);
        let (logged, _) = errors(&rows, &network);
        let last = resnet_tui::train::checkpoint::list_periodic(&cell.join("checkpoints")).pop().expect("a checkpoint");
        let got = eval_error(&last.1);
        assert!((got - logged).abs() <= tolerance, "{network}: {got} %, log {logged} %");
    }
}
