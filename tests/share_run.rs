//! `export RUN --share DIR`: a copy of a run without this machine's paths, that every reader
//! takes as it takes the run, and that `resume` continues on another machine.
mod common;

use common::*;
use resnet_tui::protocol::Event;
use std::path::Path;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_shared_copy_holds_no_path_of_this_machine_and_reads_and_resumes_like_the_run() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "30", "--checkpoint-every", "10", "--eval-every", "10"])));
    let run = s.only_run();
    let copy = s.path("shared/run");
    let mut export = bin();
    export.arg("export").arg(&run).arg("--share").arg(&copy);
    let out = output(export);
    assert_ok(&out);
    assert!(stderr(&out).contains("no path of this machine inside"), "{}", stderr(&out));

    let files = contents(&copy);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["checkpoints/best.safetensors", "checkpoints/iter-00000030.safetensors", "config.json", "events.jsonl.gz"]
    );
    let sandbox = s.dir.path().to_str().unwrap().as_bytes();
    let holds_path = |bytes: &[u8]| bytes.windows(sandbox.len()).any(|w| w == sandbox);
    assert!(contents(&run).iter().any(|(_, b)| holds_path(b)), "the run itself names its paths");
    for (name, bytes) in &files {
        assert!(!holds_path(bytes), "{name} holds a path of this machine");
    }

    // The readers see the same run in the copy.
    let summary = |dir: &Path| {
        let mut cmd = bin();
        cmd.arg("summary").arg("--format").arg("json").arg(dir);
        let out = output(cmd);
        assert_ok(&out);
        let mut json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        json[0].as_object_mut().unwrap().remove("name");
        json
    };
    assert_eq!(summary(&copy), summary(&run));
    // No --data-dir: the run finds its recorded data folder, the copy (which names it only)
    // the one CIFAR10_DIR names.
    let eval = |dir: &Path| {
        let mut cmd = bin();
        cmd.arg("eval").arg(dir).arg("--device").arg("cpu").env("CIFAR10_DIR", s.data());
        let out = output(cmd);
        assert_ok(&out);
        let text = stdout(&out);
        text[text.find("test loss").unwrap()..].to_string()
    };
    assert_eq!(eval(&copy), eval(&run), "the same weights");
    let mut replay = bin();
    replay.arg("replay").arg("--no-ui").arg(&copy);
    assert_ok(&output(replay));
    let mut plot = bin();
    plot.arg("plot").arg(&copy).arg("-o").arg(s.path("copy.png"));
    assert_ok(&output(plot));

    // On another machine the copy resumes with that machine's data set, found through
    // CIFAR10_DIR or named with --data-dir: where the data lies is not a change of recipe.
    let mut cmd = resume(&copy);
    cmd.arg("--set").arg("iters=40").env("CIFAR10_DIR", s.data());
    assert_ok(&output(cmd));
    let mut cmd = resume(&copy);
    cmd.arg("--set").arg("iters=50").arg("--data-dir").arg(s.data()).env_remove("CIFAR10_DIR");
    assert_ok(&output(cmd));
    assert_eq!(start_iters(&copy), [0, 30, 40]);
    assert_eq!(checkpoint_iters(&copy).last(), Some(&50));
    let changed: Vec<Vec<String>> = events(&copy)
        .into_iter()
        .filter_map(|e| match e {
            Event::ConfigChanged { changes, .. } => Some(changes.into_iter().map(|c| c.field).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(changed, [["iters"], ["iters"]]);

    // A second copy into the same folder is refused in one line.
    let mut again = bin();
    again.arg("export").arg(&run).arg("--share").arg(&copy);
    assert_refused(&output(again), &["is not empty"]);
}
