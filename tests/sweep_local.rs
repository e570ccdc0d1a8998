//! A sweep on this machine's queue: cells created up front, run N at once as child processes,
//! each started idempotently (done cells skipped on a second run), and the paper's table.
mod common;

use common::*;
use resnet_tui::frontend::history::History;
use resnet_tui::protocol::{Command, EndReason, Event};

const GRID: [&str; 12] = [
    "--depths",
    "8,14",
    "--seeds",
    "1,2",
    "--iters",
    "30",
    "--batch-size",
    "16",
    "--device",
    "cpu",
    "--eval-every",
    "15",
];

#[test]
fn a_local_sweep_runs_every_cell_once_and_prints_the_table() {
    let s = Sandbox::new();
    let sweep = s.path("table");
    // One command: the grid is created, then run.
    let run = || {
        let mut c = bin();
        c.args(["sweep", "run"]).arg(&sweep).args(GRID).arg("--data-dir").arg(s.data());
        c.args(["--jobs", "2", "--no-ui"]);
        output(c)
    };
    let first = run();
    assert_ok(&first);
    let log = stderr(&first);
    for cell in ["resnet8-seed1", "resnet8-seed2", "resnet14-seed1", "resnet14-seed2"] {
        assert!(log.contains(&format!("started {cell} (pid")), "{log}");
        let h = History::from_events(&events(&sweep.join(cell)));
        assert_eq!(h.end(), Some(EndReason::Completed), "{cell}");
        assert_eq!(h.starts, 1, "{cell}");
        // The threads the queue gave it are the ones it trained on.
        let given = started_threads(&log, cell);
        let device = h.info.as_ref().unwrap().device.to_string();
        assert!(device.starts_with(&format!("cpu ({given} thread")), "{cell}: {device:?}");
        assert!(sweep.join(cell).join("output.log").is_file());
    }
    // Two runs at once while four cells are left: each got its share of this machine's cores.
    let cores = std::thread::available_parallelism().unwrap().get();
    for cell in ["resnet8-seed1", "resnet8-seed2"] {
        assert_eq!(started_threads(&log, cell), (cores / 2).max(1), "{log}");
    }
    let table = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(table.lines().any(|l| l.starts_with("ResNet-8 ") && l.contains("2/0/0/0") && l.contains("±")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("ResNet-14") && l.contains("2/0/0/0")), "{table}");

    // `sweep create` of the same grid finds it as it is; `sweep run` again repeats nothing.
    let create = output({
        let mut c = bin();
        c.args(["sweep", "create"]).arg(&sweep).args(GRID).arg("--data-dir").arg(s.data());
        c
    });
    assert_ok(&create);
    let said = String::from_utf8_lossy(&create.stdout).into_owned();
    assert!(said.contains("4 cells: resnet8-seed1, resnet8-seed2, resnet14-seed1, resnet14-seed2"), "{said}");
    let second = output({
        let mut c = bin();
        c.args(["sweep", "run"]).arg(&sweep).args(["--jobs", "2", "--no-ui"]);
        c
    });
    assert_ok(&second);
    let log = stderr(&second);
    assert_eq!(log.matches("already done").count(), 4, "{log}");
    assert!(!log.contains("started "), "{log}");
    for cell in ["resnet8-seed1", "resnet14-seed2"] {
        assert_eq!(History::from_events(&events(&sweep.join(cell))).starts, 1);
    }

    // The same table from summary, for a README.
    let md = output({
        let mut c = bin();
        c.arg("summary").arg(&sweep).args(["--format", "markdown"]);
        c
    });
    assert_ok(&md);
    let md = String::from_utf8_lossy(&md.stdout).into_owned();
    assert!(md.starts_with("| network | params | runs | done/running/pending/failed |"), "{md}");
    assert_eq!(md.lines().count(), 4, "{md}");
}

#[test]
fn a_sweep_refuses_bad_grids_in_one_line() {
    let s = Sandbox::new();
    for (args, needle) in [
        (vec!["--depths", "21"], "--depth"),
        (vec!["--seeds", "1"], "--depths"),
        (vec!["--depths", "20", "--vary", "lr"], "expected FIELD=V1,V2"),
        (vec!["--depths", "20", "--vary", "colour=red"], "no field colour"),
        (vec!["--depths", "20", "--seeds", "1,1"], "given twice"),
    ] {
        let mut c = bin();
        c.args(["sweep", "create"]).arg(s.path("bad")).args(&args).arg("--data-dir").arg(s.data());
        assert_refused(&output(c), &[needle]);
    }
    let mut c = bin();
    c.args(["sweep", "run"]).arg(s.path("nothing"));
    assert_refused(&output(c), &["not a sweep"]);
}

#[test]
fn a_cell_that_cannot_be_started_is_reported_once_by_name_the_queue_drains_and_the_sweep_fails() {
    let s = Sandbox::new();
    let sweep = s.path("unstartable");
    let mut create = bin();
    create.args(["sweep", "create"]).arg(&sweep).args(GRID).arg("--data-dir").arg(s.data());
    assert_ok(&output(create));
    // A folder where the cell's output file goes: its process cannot be started.
    std::fs::create_dir(sweep.join("resnet8-seed1").join("output.log")).unwrap();
    let mut run = bin();
    run.args(["sweep", "run"]).arg(&sweep).args(["--jobs", "2", "--no-ui"]);
    let log_file = s.path("queue.log");
    let mut child = spawn(run, &log_file);
    // Before the fix the queue retried the same cell every 300 ms and never drained.
    let status = wait_exit(&mut child);
    let log = std::fs::read_to_string(&log_file).unwrap();
    // A cell that will not run is a failed one, not a pending one: the sweep did not succeed.
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("failed runs: resnet8-seed1"), "{log}");
    assert_eq!(log.matches("resnet8-seed1 failed to start").count(), 1, "{log}");
    assert!(log.lines().any(|l| l.contains("resnet8-seed1 failed to start") && l.contains("output.log")), "{log}");
    assert!(!log.contains("skipped ?"), "{log}");
    for cell in ["resnet8-seed2", "resnet14-seed1", "resnet14-seed2"] {
        assert!(log.contains(&format!("started {cell} (pid")), "{log}");
        assert_eq!(History::from_events(&events(&sweep.join(cell))).end(), Some(EndReason::Completed), "{cell}");
    }
}

/// `resnet-tui sweep ARGS...`.
/// The threads the queue's line `started CELL (pid N, T thread(s))` gave the cell.
fn started_threads(log: &str, cell: &str) -> usize {
    let line = log.lines().find(|l| l.contains(&format!("started {cell} (pid"))).unwrap_or_else(|| panic!("{log}"));
    let threads = line.split(", ").nth(1).and_then(|t| t.split(' ').next());
    threads.and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

fn sweep_cmd(args: &[&str]) -> std::process::Command {
    let mut c = bin();
    c.arg("sweep").args(args);
    c
}

/// A sweep of one cell, resnet8-seed1 (batch 16, fp32, on one CPU thread), of `iters` iterations with
/// a checkpoint every `checkpoint_every` and one evaluation at the end or every 50,000.
fn create_resnet8(s: &Sandbox, sweep: &std::path::Path, iters: u64, checkpoint_every: u64) {
    let eval_every = iters.min(50_000).to_string();
    let (iters, every) = (iters.to_string(), checkpoint_every.to_string());
    let mut create = sweep_cmd(&["create", sweep.to_str().unwrap(), "--nets", "resnet8", "--seeds", "1"]);
    create.args(["--iters", &iters, "--checkpoint-every", &every, "--eval-every", &eval_every, "--batch-size", "16"]);
    // One thread: two tests run at once, and a child on every core beside another one busy
    // spins in OpenMP's barriers (ResNet-8 took 8.5x as long on 2 threads as on 1 beside a busy
    // core, docs/performance.md).
    create.args(["--device", "cpu", "--precision", "fp32", "--threads", "1", "--data-dir"]).arg(s.data());
    assert_ok(&output(create));
}

/// The names of the files under `dir`, relative to it.
fn file_names(dir: &std::path::Path) -> Vec<String> {
    contents(dir).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn a_sweep_snapshot_keeps_what_continues_each_cell_and_sweep_run_continues_it() {
    let s = Sandbox::new();
    let sweep = s.path("campaign");
    let mut create = sweep_cmd(&["create", sweep.to_str().unwrap(), "--nets", "plain8,resnet8,resnet14"]);
    create.args(["--seeds", "1", "--iters", "20", "--checkpoint-every", "5", "--eval-every", "10"]);
    create.args(["--batch-size", "16", "--device", "cpu", "--precision", "fp32", "--threads", "1", "--data-dir"]);
    create.arg(s.data());
    assert_ok(&output(create));
    // The networks start in the order given: plain8 first.
    assert_ok(&output(sweep_cmd(&["cell", sweep.to_str().unwrap(), "0"])));
    // resnet8 stopped after its first checkpoints: in progress.
    let mut cell = spawn(sweep_cmd(&["cell", sweep.to_str().unwrap(), "resnet8-seed1"]), &s.path("cell.err"));
    let run = sweep.join("resnet8-seed1");
    wait_until(&mut cell, "a checkpoint at 10", || checkpoint_iters(&run).contains(&10));
    signal(&cell, 15);
    wait_exit(&mut cell);
    let newest = *checkpoint_iters(&run).last().unwrap();
    assert!(newest < 20, "stopped before its end: {newest}");

    let snapshot = s.path("repo/campaign");
    let share = || output(sweep_cmd(&["share", sweep.to_str().unwrap(), snapshot.to_str().unwrap()]));
    assert_ok(&share());
    let names = file_names(&snapshot);
    assert_eq!(
        names,
        [
            "plain8-seed1/checkpoints/iter-00000020.safetensors".to_string(),
            "plain8-seed1/config.json".into(),
            "plain8-seed1/events.jsonl.gz".into(),
            "resnet14-seed1/config.json".into(),
            format!("resnet8-seed1/checkpoints/iter-{newest:08}.safetensors"),
            "resnet8-seed1/config.json".into(),
            "resnet8-seed1/events.jsonl.gz".into(),
            "sweep.json".into(),
        ]
    );
    let momentum = |path: std::path::PathBuf| checkpoint_tensors(&path).iter().any(|(n, _)| n.starts_with("momentum/"));
    assert!(
        !momentum(snapshot.join("plain8-seed1/checkpoints/iter-00000020.safetensors")),
        "a done cell: weights only"
    );
    assert!(momentum(snapshot.join(format!("resnet8-seed1/checkpoints/iter-{newest:08}.safetensors"))));
    // Again: replaced whole, nothing left beside it.
    assert_ok(&share());
    assert_eq!(file_names(&snapshot), names);
    assert_eq!(file_names(&s.path("repo")).len(), names.len(), "{:?}", file_names(&s.path("repo")));

    // On another machine: the snapshot continues where each cell stood.
    let mut again = sweep_cmd(&["run", snapshot.to_str().unwrap(), "--jobs", "1", "--no-ui"]);
    again.env("CIFAR10_DIR", s.data());
    let out = output(again);
    assert_ok(&out);
    let log = stderr(&out);
    assert!(log.contains("skipped plain8-seed1"), "{log}");
    for (cell, starts) in [("resnet8-seed1", 2), ("resnet14-seed1", 1)] {
        let h = History::from_events(&events(&snapshot.join(cell)));
        assert_eq!((h.end(), h.starts), (Some(EndReason::Completed), starts), "{cell}");
    }
    let resumed = History::from_events(&events(&snapshot.join("resnet8-seed1")));
    assert_eq!(resumed.resumed_at, [newest]);
}

#[test]
fn a_snapshot_taken_now_holds_each_training_cell_at_its_current_iteration_with_steps_past_it() {
    let s = Sandbox::new();
    let sweep = s.path("campaign");
    // Far from its first periodic checkpoint: without asking, a snapshot would have nothing to
    // resume from.
    create_resnet8(&s, &sweep, 100_000, 50_000);
    let run = sweep.join("resnet8-seed1");
    let mut cell = KillOnDrop(spawn(sweep_cmd(&["cell", sweep.to_str().unwrap(), "0"]), &s.path("cell.err")));
    wait_until(&mut cell.0, "five steps", || steps_logged(&run) >= 5);
    let asked_after = step_losses(&run).last().unwrap().0;

    let snapshot = s.path("repo/campaign");
    let out = output(sweep_cmd(&["share", "--now", sweep.to_str().unwrap(), snapshot.to_str().unwrap()]));
    assert_ok(&out);
    let at = *checkpoint_iters(&snapshot.join("resnet8-seed1")).last().expect("the snapshot has a checkpoint");
    assert!(at >= asked_after && at < 50_000, "checkpoint at {at}, asked after step {asked_after}");
    assert!(stderr(&out).contains("resnet8-seed1: checkpoint at iteration"), "{}", stderr(&out));
    let shared: Vec<u64> = step_losses(&snapshot.join("resnet8-seed1")).into_iter().map(|(i, _)| i).collect();
    assert!(shared.contains(&(at + 1)) && shared.contains(&(at + 2)), "steps past {at}: {shared:?}");
    // The cell trains on: asking did not stop it.
    assert!(cell.0.try_wait().unwrap().is_none(), "the cell stopped");
    signal(&cell.0, SIGTERM);
    assert!(wait_exit(&mut cell.0).success());
}

#[test]
fn a_snapshot_in_parts_keeps_a_cell_until_it_reaches_a_later_part_and_always_takes_it_finished() {
    let s = Sandbox::new();
    let sweep = s.path("campaign");
    let dir = sweep.to_str().unwrap();
    create_resnet8(&s, &sweep, 1000, 5);
    let run = sweep.join("resnet8-seed1");
    // Trains until a checkpoint past `after`, then stops (SIGTERM checkpoints it where it stands).
    let train_past = |after: u64| {
        let mut cell = KillOnDrop(spawn(sweep_cmd(&["cell", dir, "0"]), &s.path("cell.err")));
        wait_until(&mut cell.0, "a newer checkpoint", || checkpoint_iters(&run).last().is_some_and(|&i| i > after));
        signal(&cell.0, SIGTERM);
        assert!(wait_exit(&mut cell.0).success());
        *checkpoint_iters(&run).last().unwrap()
    };
    let snapshot = s.path("repo/campaign");
    let share = |parts: Option<&str>| {
        let mut c = sweep_cmd(&["share", dir, snapshot.to_str().unwrap()]);
        c.args(parts.map(|n| ["--parts", n]).iter().flatten());
        output(c)
    };
    let held = || checkpoint_iters(&snapshot.join("resnet8-seed1"));

    let first = train_past(0);
    assert_ok(&share(None));
    assert_eq!(held(), [first]);
    let second = train_past(first);
    assert!(second < 1000, "stopped before its end: {second}");

    // One part: a run in progress is never written again, and the snapshot stays byte for byte.
    let before = contents(&snapshot);
    let kept = share(Some("1"));
    assert_ok(&kept);
    let said = format!("kept resnet8-seed1 as the snapshot holds it (checkpoint {first}): it would hold {second}");
    assert!(stderr(&kept).contains(&said), "{}", stderr(&kept));
    assert!(contents(&snapshot) == before, "the kept snapshot changed");
    // As many parts as iterations: any checkpoint further on is in a later part.
    assert_ok(&share(Some("1000")));
    assert_eq!(held(), [second]);
    // Finished, a cell is written whatever the parts: its final weights.
    assert_ok(&output(sweep_cmd(&["cell", dir, "0"])));
    assert_ok(&share(Some("1")));
    assert_eq!(held(), [1000]);
}

#[test]
fn a_snapshot_taken_now_refuses_a_paused_cell_at_once_and_writes_nothing() {
    let s = Sandbox::new();
    let sweep = s.path("campaign");
    let dir = sweep.to_str().unwrap();
    create_resnet8(&s, &sweep, 100_000, 50_000);
    let run = sweep.join("resnet8-seed1");
    let mut cell = KillOnDrop(spawn(sweep_cmd(&["cell", dir, "0"]), &s.path("cell.err")));
    wait_until(&mut cell.0, "five steps", || steps_logged(&run) >= 5);
    // Paused as `attach` pauses it: through its mailbox.
    resnet_tui::mailbox::send(&run, &resnet_tui::protocol::Command::Pause).unwrap();
    let paused = || events(&run).iter().any(|e| matches!(e, resnet_tui::protocol::Event::Paused { .. }));
    wait_until(&mut cell.0, "the pause logged", paused);

    let snapshot = s.path("repo/campaign");
    let out = output(sweep_cmd(&["share", "--now", dir, snapshot.to_str().unwrap()]));
    assert!(!out.status.success(), "a paused cell was shared as if it trained on");
    let err = stderr(&out);
    assert!(err.contains("resnet8-seed1: paused at iteration") && err.contains("nothing shared"), "{err}");
    assert!(!s.path("repo").exists() || file_names(&s.path("repo")).is_empty(), "something was written");

    // Stopped while paused and started again, it trains unpaused, with no `Resumed` in its log.
    signal(&cell.0, SIGTERM);
    assert!(wait_exit(&mut cell.0).success());
    let stopped_at = last_step(&run);
    let mut cell = KillOnDrop(spawn(sweep_cmd(&["cell", dir, "0"]), &s.path("cell2.err")));
    wait_until(&mut cell.0, "steps after the restart", || last_step(&run) > stopped_at);
    let out = output(sweep_cmd(&["share", "--now", dir, snapshot.to_str().unwrap()]));
    assert_ok(&out);
    assert!(*checkpoint_iters(&snapshot.join("resnet8-seed1")).last().unwrap() > stopped_at);
    signal(&cell.0, SIGTERM);
    assert!(wait_exit(&mut cell.0).success());
}

/// The iteration of the last step in the log of a run that may be writing it (0: none yet).
fn last_step(run: &std::path::Path) -> u64 {
    let log = resnet_tui::runlog::read(run).map(|log| log.events).unwrap_or_default();
    log.iter().rev().find_map(|e| if let Event::Step(s) = e { Some(s.iter) } else { None }).unwrap_or(0)
}

/// Where the run stands paused, by its log (`None`: not paused).
fn paused_at(run: &std::path::Path) -> Option<u64> {
    let log = resnet_tui::runlog::read(run).map(|log| log.events).unwrap_or_default();
    log.iter().fold(None, |paused, e| match e {
        Event::Paused { iter, .. } => Some(*iter),
        Event::Resumed { .. } | Event::RunStarted { .. } => None,
        _ => paused,
    })
}

#[test]
fn a_snapshot_in_parts_goes_by_the_checkpoint_it_would_hold_not_by_the_last_step_logged() {
    let s = Sandbox::new();
    let sweep = s.path("campaign");
    let dir = sweep.to_str().unwrap();
    // Two parts of 1,000 iterations, the second from 500; periodic checkpoints at 400 and 800.
    create_resnet8(&s, &sweep, 1000, 400);
    let run = sweep.join("resnet8-seed1");
    let mut cell = KillOnDrop(spawn(sweep_cmd(&["cell", dir, "0"]), &s.path("cell.err")));
    let steer = |command| drop(resnet_tui::mailbox::send(&run, &command).unwrap());
    // Paused as `attach` pauses it, once its log is past `iter`: a snapshot in between is exact.
    let mut pause_past = |iter: u64| {
        wait_until(&mut cell.0, "the log past it", || last_step(&run) > iter);
        steer(Command::Pause);
        wait_until(&mut cell.0, "the pause logged", || paused_at(&run).is_some());
        let at = paused_at(&run).unwrap();
        assert!(at > iter && at < 800, "paused at {at}");
        at
    };
    let snapshot = s.path("repo/campaign");
    let share = |args: &[&str]| {
        let mut c = sweep_cmd(&["share", dir, snapshot.to_str().unwrap()]);
        c.args(args);
        output(c)
    };
    let held = || checkpoint_iters(&snapshot.join("resnet8-seed1"));

    pause_past(400);
    assert_ok(&share(&[]));
    assert_eq!(held(), [400]);
    // The log is past 500, in the second part; its newest checkpoint, 400, is not.
    steer(Command::Resume);
    let paused = pause_past(500);
    let kept = share(&["--parts", "2"]);
    assert_ok(&kept);
    let said = "kept resnet8-seed1 as the snapshot holds it (checkpoint 400): it would hold 400, in the same part";
    assert!(stderr(&kept).contains(said), "{}", stderr(&kept));
    assert_eq!(held(), [400]);
    // With --now it would hold where it stands: in the second part, so it is written.
    steer(Command::Resume);
    wait_until(&mut cell.0, "steps after the pause", || last_step(&run) > paused);
    assert_ok(&share(&["--now", "--parts", "2"]));
    let at = held();
    assert!(at.len() == 1 && at[0] > paused, "{at:?}");
    signal(&cell.0, SIGTERM);
    assert!(wait_exit(&mut cell.0).success());
}
