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
    let me = Stat::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let wanted = me.autogroup_nice()?;
    set_autogroup_nice(Path::new(AUTOGROUP), wanted).then_some(wanted)
}

/// What a process's /proc/PID/stat line says about its session and its priority.
#[derive(Debug, PartialEq)]
struct Stat {
    pid: i64,
    session: i64,
    nice: i32,
}

impl Stat {
    /// Fields 1 (the pid), 6 (the session) and 19 (the nice value); those after the command
    /// name are counted from its closing parenthesis, since the name may hold spaces and
    /// parentheses.
    fn parse(line: &str) -> Option<Stat> {
        let pid = line.split_whitespace().next()?.parse().ok()?;
        let after_name: Vec<&str> = line[line.rfind(')')? + 1..].split_whitespace().collect();
        // Fields 3.. follow the name: the session is the 4th of them, the nice value the 17th.
        Some(Stat { pid, session: after_name.get(3)?.parse().ok()?, nice: after_name.get(16)?.parse().ok()? })
    }

    /// The nice its autogroup should take: its own, when it leads its session and is positive.
    fn autogroup_nice(&self) -> Option<i32> {
        (self.pid == self.session && self.nice > 0).then_some(self.nice)
    }
}

/// Writes `nice` to an autogroup file; false where it cannot (no autogroup scheduling).
fn set_autogroup_nice(file: &Path, nice: i32) -> bool {
    file.exists() && std::fs::write(file, nice.to_string()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: i64, session: i64, nice: i32) -> Stat {
        Stat { pid, session, nice }
    }

    #[test]
    fn only_a_session_leader_at_a_positive_nice_lowers_its_autogroup() {
        assert_eq!(stat(42, 42, 19).autogroup_nice(), Some(19));
        assert_eq!(stat(42, 42, 0).autogroup_nice(), None);
        assert_eq!(stat(42, 42, -5).autogroup_nice(), None);
        assert_eq!(stat(42, 7, 19).autogroup_nice(), None);
    }

    #[test]
    fn the_stat_line_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 1 4242 4240 0 -1 4194560 100 0 0 0 5 3 0 0 39 19 3 0 123 456";
        assert_eq!(Stat::parse(line), Some(stat(4242, 4240, 19)));
        assert_eq!(Stat::parse("4242 (x) S 1"), None);
        let me = Stat::parse(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert_eq!(me.pid, i64::from(std::process::id()), "this process's own line reads");
    }

    #[test]
    fn a_missing_autogroup_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!set_autogroup_nice(&dir.path().join("autogroup"), 19));
        assert!(!dir.path().join("autogroup").exists());
    }
}
