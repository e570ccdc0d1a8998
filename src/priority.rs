//! A background run's low priority made real. With the kernel's autogroup scheduling (on by
//! default in most distributions' kernels: `/proc/sys/kernel/sched_autogroup_enabled`), a nice
//! value only orders the processes of one session: sessions share the CPU equally. A run started
//! in a session of its own (`setsid nohup nice -n 19 resnet-tui sweep run ...`, as the campaign is
//! run) therefore takes as much CPU as the user's whole login session, nice 19 or not, and a
//! benchmark or a build beside it gets half the machine.
//!
//! So a process that leads its own session and runs at a positive nice gives its session's
//! autogroup the same nice, which is what the user asked for. A process in someone else's session
//! (a shell's job, a terminal's program) leaves the autogroup alone: that would lower the whole
//! session, the user's shell included.

use std::path::Path;

const AUTOGROUP: &str = "/proc/self/autogroup";

/// Gives this process's autogroup its nice value when it leads its own session and runs at a
/// positive nice; returns the nice given, or `None` where nothing was changed (not a session
/// leader, nice 0 or below, no autogroup scheduling).
pub fn carry_nice_to_own_session() -> Option<i32> {
    // SAFETY: getpid and getsid(0) only read this process's ids.
    let (pid, sid) = unsafe { (libc::getpid(), libc::getsid(0)) };
    let nice = own_nice()?;
    let wanted = wanted_autogroup_nice(pid == sid, nice)?;
    set_autogroup_nice(Path::new(AUTOGROUP), wanted).then_some(wanted)
}

/// The nice an autogroup should take: the process's own, when it leads its session and is
/// positive.
fn wanted_autogroup_nice(leads_session: bool, nice: i32) -> Option<i32> {
    (leads_session && nice > 0).then_some(nice)
}

/// This process's nice value, from /proc (getpriority's -1 is also a valid nice).
fn own_nice() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    nice_of_stat(&stat)
}

/// Field 19 of /proc/PID/stat, counted after the command name's closing parenthesis (the name
/// may hold spaces and parentheses).
fn nice_of_stat(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow the name; nice is field 19, the 17th of these.
    after_name.split_whitespace().nth(16)?.parse().ok()
}

/// Writes `nice` to an autogroup file; false where it cannot (no autogroup scheduling).
fn set_autogroup_nice(file: &Path, nice: i32) -> bool {
    file.exists() && std::fs::write(file, nice.to_string()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_session_leader_at_a_positive_nice_lowers_its_autogroup() {
        assert_eq!(wanted_autogroup_nice(true, 19), Some(19));
        assert_eq!(wanted_autogroup_nice(true, 0), None);
        assert_eq!(wanted_autogroup_nice(true, -5), None);
        assert_eq!(wanted_autogroup_nice(false, 19), None);
    }

    #[test]
    fn the_nice_value_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 39 19 3 0 123 456";
        assert_eq!(nice_of_stat(stat), Some(19));
        assert_eq!(nice_of_stat("4242 (x) S 1"), None);
        assert!(own_nice().is_some(), "this process's own stat reads");
    }

    #[test]
    fn a_missing_autogroup_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!set_autogroup_nice(&dir.path().join("autogroup"), 19));
        assert!(!dir.path().join("autogroup").exists());
    }
}
