//! Steering a run from another process: command files in the run directory, obeyed at step
//! boundaries and answered in the log; bad, stale and duplicated ones ignored with a warning.
mod common;

use common::*;
use resnet_tui::mailbox::{self, COMMANDS_DIR};
use resnet_tui::protocol::Command;
use resnet_tui::protocol::{EndReason, Event};
use std::path::Path;
use std::time::Duration;

fn answers(run: &Path) -> Vec<(String, String, Option<String>)> {
    events(run)
        .into_iter()
        .filter_map(|e| match e {
            Event::CommandReceived { id, request, ignored, .. } => Some((id, request, ignored)),
            _ => None,
        })
        .collect()
}

fn paused_at(run: &Path) -> Option<u64> {
    events(run).into_iter().rev().find_map(|e| match e {
        Event::Paused { iter, .. } => Some(iter),
        _ => None,
    })
}

#[test]
fn a_run_started_elsewhere_pauses_resumes_checkpoints_and_stops_by_command_files() {
    let s = Sandbox::new();
    let mut child = spawn(s.train(&["--iters", "100000", "--eval-every", "100000"]), &s.path("train.stderr"));
    let run = wait_for_run(&mut child, &s.runs());
    wait_until(&mut child, "steps are logged", || steps_logged(&run) >= 3);

    let pause = mailbox::send(&run, &Command::Pause).unwrap();
    wait_until(&mut child, "the pause is obeyed", || paused_at(&run).is_some());
    let at = paused_at(&run).unwrap();
    let steps = steps_logged(&run);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(steps_logged(&run), steps, "a paused run takes no step");
    assert!(std::fs::read_dir(run.join(COMMANDS_DIR)).unwrap().next().is_none(), "answered files are removed");

    // A command file that is not one, one for another run, and a stale one: each answered as
    // ignored, none obeyed. Then a checkpoint while paused, and the resume. Each file is written
    // whole and renamed into place, as `mailbox::send` does: the trainer reads the folder at
    // any moment, and a file caught half written would be "not understood" for the wrong reason.
    write_atomically(&run.join(COMMANDS_DIR).join("0000-garbled.json"), b"{\"request\":");
    let foreign = mailbox::Letter {
        id: "0001-foreign".into(),
        request: Command::Stop,
        run: "someone-elses-run".into(),
        issued: resnet_tui::protocol::now(),
        from: String::new(),
    };
    write_atomically(&run.join(COMMANDS_DIR).join("0001-foreign.json"), &serde_json::to_vec(&foreign).unwrap());
    let stale = mailbox::Letter {
        id: "0002-stale".into(),
        request: Command::Stop,
        run: run.file_name().unwrap().to_string_lossy().into_owned(),
        issued: resnet_tui::protocol::now() - mailbox::STALE_SECS - 60.0,
        from: String::new(),
    };
    write_atomically(&run.join(COMMANDS_DIR).join("0002-stale.json"), &serde_json::to_vec(&stale).unwrap());
    let checkpoint = mailbox::send(&run, &Command::Checkpoint).unwrap();
    wait_until(&mut child, "the checkpoint is written", || checkpoint_iters(&run).contains(&at));
    let resume = mailbox::send(&run, &Command::Resume).unwrap();
    wait_until(&mut child, "training resumes", || steps_logged(&run) > steps + 2);

    // The same command again (a sender that wrote it twice): a duplicate, not a second pause.
    let again = mailbox::Letter {
        id: pause.clone(),
        request: Command::Pause,
        run: run.file_name().unwrap().to_string_lossy().into_owned(),
        issued: resnet_tui::protocol::now(),
        from: String::new(),
    };
    write_atomically(&run.join(COMMANDS_DIR).join(format!("{pause}.json")), &serde_json::to_vec(&again).unwrap());
    wait_until(&mut child, "the duplicate is answered", || answers(&run).len() >= 7);
    let stop = mailbox::send(&run, &Command::Stop).unwrap();
    let status = wait_exit(&mut child);
    assert!(status.success(), "a run stopped by a command file exits 0: {status}");

    let got = answers(&run);
    let verdict =
        |id: &str| got.iter().find(|(i, _, _)| i == id).unwrap_or_else(|| panic!("no answer to {id}: {got:?}"));
    for (id, request) in [(&pause, "pause"), (&checkpoint, "checkpoint"), (&resume, "resume"), (&stop, "stop")] {
        assert_eq!(verdict(id).1, request);
        assert_eq!(verdict(id).2, None, "{request} obeyed");
    }
    assert!(verdict("0000-garbled").2.as_ref().unwrap().starts_with("not understood"), "{got:?}");
    assert!(verdict("0001-foreign").2.as_ref().unwrap().contains("meant for run"), "{got:?}");
    assert!(verdict("0002-stale").2.as_ref().unwrap().starts_with("stale"), "{got:?}");
    let dups: Vec<_> = got.iter().filter(|(i, _, _)| *i == pause).collect();
    assert_eq!(dups.len(), 2, "{got:?}");
    assert!(dups[1].2.as_ref().unwrap().contains("duplicate"), "{got:?}");
    let pauses = events(&run).iter().filter(|e| matches!(e, Event::Paused { .. })).count();
    assert_eq!(pauses, 1, "obeyed once");
    assert_eq!(finished(&run).last().unwrap().reason, EndReason::Stopped);
    // The answers are lines of the log like any event: headless printed them.
    let printed = std::fs::read_to_string(s.path("train.stderr")).unwrap();
    assert!(printed.contains(": pause (at iteration") && printed.contains("ignored a command file"), "{printed}");
}
