//! A resumed run continues its checkpoint's recipe: a `config.json` edited by hand is refused
//! with the fields that differ, and a change made on purpose (`resume --set`) is applied,
//! written to the run's config and logged, so `summary` shows it.

mod common;

use common::*;
use resnet_tui::protocol::{Event, RunConfig};

#[test]
fn an_edited_config_is_refused_and_set_changes_the_recipe_on_record() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "4", "--checkpoint-every", "2", "--eval-every", "2"])));
    let run = s.only_run();
    let config_path = run.join("config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();

    let mut edited: serde_json::Value = serde_json::from_str(&original).unwrap();
    edited["lr"] = 0.05.into();
    edited["momentum"] = 0.8.into();
    std::fs::write(&config_path, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    assert_refused(&output(resume(&run)), &["config.json", "in lr, momentum", "resume --set"]);
    assert_eq!(start_iters(&run), vec![0], "the refused resume started nothing");

    let mut on_purpose = resume(&run);
    on_purpose.args(["--set", "lr=0.05", "--set", "iters=6"]);
    assert_ok(&output(on_purpose));
    // The checkpoint's recipe with the two changes: the hand edit of the momentum is gone.
    let config: RunConfig = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!((config.lr, config.iters, config.momentum), (0.05, 6, 0.9));
    let changes: Vec<(u64, Vec<String>)> = events(&run)
        .into_iter()
        .filter_map(|e| match e {
            Event::ConfigChanged { iter, changes, .. } => Some((iter, changes.into_iter().map(|c| c.field).collect())),
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![(4, vec!["iters".to_string(), "lr".to_string()])]);
    assert_eq!(finished(&run).last().map(|f| f.iters), Some(6), "the longer run went on to its new end");

    let mut summary = bin();
    summary.arg("summary").arg(&run).args(["--format", "json"]);
    let out = output(summary);
    assert_ok(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let said = rows[0]["changes"].to_string();
    assert!(said.contains("lr 0.1 -> 0.05 at 4") && said.contains("iters 4 -> 6 at 4"), "{said}");

    // A change on record whose checkpoint was never written (every write blocked) stands: a plain
    // resume keeps it, and a further --set goes on top of it.
    let dir = run.join("checkpoints");
    let blockers = [".iter-00000008.safetensors.tmp", ".best.safetensors.tmp"].map(|n| dir.join(n));
    for b in &blockers {
        std::fs::create_dir(b).unwrap();
    }
    let mut longer = resume(&run);
    longer.args(["--set", "iters=8"]);
    assert_eq!(output(longer).status.code(), Some(4), "the final checkpoint could not be written");
    for b in &blockers {
        std::fs::remove_dir(b).unwrap();
    }
    let mut more = resume(&run);
    more.args(["--set", "momentum=0.85"]);
    assert_ok(&output(more));
    let config: RunConfig = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!((config.lr, config.iters, config.momentum), (0.05, 8, 0.85));
    assert_eq!(finished(&run).last().map(|f| f.iters), Some(8));

    // What cannot change is refused in one line, and the run stays as it was.
    let mut deeper = resume(&run);
    deeper.args(["--set", "depth=14"]);
    assert_refused(&output(deeper), &["--set", "depth=14", "cannot change"]);
}
