//! A run started at low priority in a session of its own (`setsid nice -n N resnet-tui ...`, how
//! the campaign and long background runs are started) gives its session's autogroup that nice:
//! with the kernel's autogroup scheduling, sessions share the CPU equally whatever their
//! processes' nice, so without it the run would take half the machine from the user's session.
mod common;

use common::*;
use std::process::{Command, Stdio};

/// `cmd` run as `WRAPPER... cmd`: the same program, arguments and environment.
fn wrapped(wrapper: &[&str], cmd: &Command) -> Command {
    let mut out = Command::new(wrapper[0]);
    out.args(&wrapper[1..]).arg(cmd.get_program()).args(cmd.get_args()).stdin(Stdio::null());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => out.env(key, v),
            None => out.env_remove(key),
        };
    }
    out
}

/// A process's autogroup line ("/autogroup-97 nice 7"); None without autogroup scheduling.
fn autogroup_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/autogroup")).ok().map(|s| s.trim().to_string())
}

/// This process's nice value (field 19 of its stat line, counted after the command name).
fn own_nice() -> i32 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(16).unwrap().parse().unwrap()
}

#[test]
fn a_run_at_low_priority_in_a_session_of_its_own_gives_that_session_its_nice_and_leaves_a_shared_one_alone() {
    for tool in ["setsid", "nice"] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).status();
        assert!(found.is_ok_and(|s| s.success()), "{tool} (util-linux, coreutils) is needed to start the runs");
    }
    let s = Sandbox::new();
    // `nice -n 7` adds to the nice the tests run at.
    let nice = (own_nice() + 7).min(19);
    let ours_before = autogroup_of(std::process::id());
    for (wrapper, runs) in
        [(&["setsid", "nice", "-n", "7"][..], s.path("own")), (&["nice", "-n", "7"][..], s.path("shared"))]
    {
        let mut train = bin();
        train.arg("train").args(tiny_args(&s.data(), &runs)).args(["--iters", "4000", "--checkpoint-every", "100000"]);
        let mut child = spawn(wrapped(wrapper, &train), &s.path("stderr"));
        let run = wait_for_run(&mut child, &runs);
        wait_until(&mut child, "the run logs a step", || steps_logged(&run) >= 1);
        let (group, ours) = (autogroup_of(child.id()), autogroup_of(std::process::id()));
        signal(&child, SIGTERM);
        assert!(wait_exit(&mut child).success());
        match (wrapper[0], group) {
            (_, None) => assert_eq!(ours, None, "no autogroup for the run, but one for the test"),
            ("setsid", Some(group)) => {
                assert_ne!(Some(&group), ours.as_ref(), "a session of its own");
                assert!(group.ends_with(&format!(" nice {nice}")), "its session's group takes its nice: {group}");
            }
            (_, Some(group)) => {
                assert_eq!(Some(&group), ours.as_ref(), "a run in the test's session stays in its group");
                assert_eq!(ours, ours_before, "and leaves it as it was");
            }
        }
    }
}
