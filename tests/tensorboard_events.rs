//! TensorBoard event files checked with TensorBoard's own reader (the `tensorboard` package the
//! set-up installs for the tests): every scalar arrives at its step with its value, the config as
//! text, and a run killed and resumed shows the steps of the resumed run only.
mod common;

use common::*;
use resnet_tui::frontend::history::History;
use std::collections::BTreeMap;
use std::path::Path;

/// Every scalar TensorBoard reads from the event files in `dir`: tag -> [(step, value)], and the
/// text of the config.
fn read_with_tensorboard(dir: &Path) -> (BTreeMap<String, Vec<(u64, f64)>>, String) {
    let code = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
scalars = {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}
texts = [e.tensor_proto.string_val[0].decode() for t in tags["tensors"] for e in acc.Tensors(t)]
print(json.dumps({"scalars": scalars, "text": "\n".join(texts)}))
"#;
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = std::process::Command::new(python).arg("-c").arg(code).arg(dir).output().expect("run python");
    assert!(
        out.status.success(),
        "TensorBoard could not read {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let scalars = v["scalars"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, pts)| {
            let pts = pts.as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()));
            (t.clone(), pts.collect())
        })
        .collect();
    (scalars, v["text"].as_str().unwrap().to_string())
}

/// The run's curves as the log tells them, in float32 as TensorBoard stores them.
fn expected(run: &Path) -> BTreeMap<String, Vec<(u64, f64)>> {
    let h = History::from_events(&events(run));
    let f = |v: f64| v as f32 as f64;
    let mut m: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for s in &h.steps {
        for (tag, v) in [("train/loss", s.loss), ("train/error", s.error), ("train/lr", s.lr)] {
            m.entry(tag.into()).or_default().push((s.iter, f(v)));
        }
    }
    let classes = &h.info.as_ref().unwrap().classes;
    for e in &h.evals {
        m.entry("test/loss".into()).or_default().push((e.iter, f(e.loss)));
        m.entry("test/error".into()).or_default().push((e.iter, f(e.error)));
        for (c, err) in classes.iter().zip(&e.class_errors) {
            m.entry(format!("test_class_error/{c}")).or_default().push((e.iter, f(*err)));
        }
    }
    m
}

fn assert_same(got: &BTreeMap<String, Vec<(u64, f64)>>, want: &BTreeMap<String, Vec<(u64, f64)>>) {
    for (tag, points) in want {
        assert_eq!(got.get(tag), Some(points), "{tag}");
    }
    assert!(got.contains_key("train/images_per_sec"));
}

#[test]
fn an_exported_run_reads_back_in_tensorboard_scalar_for_scalar() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "12", "--eval-every", "6"])));
    let run = s.only_run();
    let tb = s.path("tb");
    let mut export = bin();
    export.arg("export").arg(&run).arg("--tensorboard").arg(&tb);
    let out = output(export);
    assert_ok(&out);
    assert!(stderr(&out).contains("wrote 12 steps and 2 evaluations"), "{}", stderr(&out));
    let (scalars, text) = read_with_tensorboard(&tb);
    let want = expected(&run);
    assert_eq!(want["train/loss"].len(), 12);
    let per_class: Vec<usize> =
        want.iter().filter(|(t, _)| t.starts_with("test_class_error/")).map(|(_, p)| p.len()).collect();
    assert_eq!(per_class, vec![2; 10], "ten classes, two evaluations");
    assert_same(&scalars, &want);
    assert!(text.contains("\"batch_size\": 16") && text.contains("\"depth\": 8"), "{text}");
}

#[test]
fn a_live_run_killed_and_resumed_shows_the_resumed_steps_only() {
    let s = Sandbox::new();
    let recipe = ["--iters", "30", "--eval-every", "10", "--checkpoint-every", "5", "--tensorboard"];
    let mut child = spawn(s.train(&recipe), &s.path("train.stderr"));
    let run = wait_for_run(&mut child, &s.runs());
    wait_until(&mut child, "a checkpoint and steps after it", || {
        checkpoint_iters(&run).contains(&10) && steps_logged(&run) >= 13
    });
    signal(&child, SIGKILL);
    wait_exit(&mut child);
    let mut again = resume(&run);
    again.arg("--tensorboard");
    assert_ok(&output(again));
    let files = std::fs::read_dir(run.join("tensorboard")).unwrap().count();
    assert_eq!(files, 2, "one event file per start");
    let (scalars, _) = read_with_tensorboard(&run.join("tensorboard"));
    let want = expected(&run);
    assert_eq!(want["train/loss"].iter().map(|p| p.0).collect::<Vec<_>>(), (1..=30).collect::<Vec<u64>>());
    assert_same(&scalars, &want);
}
