//! The memory a control group still lets this process take. A container's limit, or a Slurm job's
//! under its cgroup plugin, ends a run with an out-of-memory kill well before the machine's free
//! memory runs out, so the check before a run counts the tightest limit above the process.
//!
//! Both cgroup versions: v2 (`memory.max`, `memory.current`) and v1's memory controller
//! (`memory.limit_in_bytes`, `memory.usage_in_bytes`). Page cache the kernel can drop at once
//! (inactive file pages) is not counted as used, as the kernel's own reclaim would not.

use std::path::{Path, PathBuf};

/// Where the cgroup file systems are mounted.
const MOUNT: &str = "/sys/fs/cgroup";
/// v1 writes "no limit" as the largest page-aligned 63-bit number; anything this large is none.
const NO_LIMIT: u64 = 1 << 60;

/// What a limited group still allows and its limit, in bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Room {
    pub free: u64,
    pub limit: u64,
}

/// The room of the tightest limited cgroup from this process's own up to the root (the one with
/// the least free); `None` where none is limited or the groups cannot be read (not Linux).
pub fn headroom() -> Option<Room> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    headroom_in(Path::new(MOUNT), &membership)
}

/// As [`headroom`], for the cgroup file systems mounted at `mount` and the membership lines of
/// `/proc/self/cgroup` (`ID:CONTROLLERS:PATH`).
pub fn headroom_in(mount: &Path, membership: &str) -> Option<Room> {
    let (version, own) = own_group(mount, membership)?;
    let base = match version {
        Version::V1 => mount.join("memory"),
        Version::V2 => mount.to_path_buf(),
    };
    // In a container the group's path can name the host's hierarchy, which is not mounted here:
    // then the mount's root is this process's group.
    let relative = own.trim_start_matches('/');
    let mut dir = if base.join(relative).is_dir() { base.join(relative) } else { base.clone() };
    let mut tightest: Option<Room> = None;
    loop {
        if let Some(room) = room_in(&dir, version) {
            tightest = Some(tightest.map_or(room, |t| if room.free < t.free { room } else { t }));
        }
        if dir == base || !dir.pop() || !dir.starts_with(&base) {
            break;
        }
    }
    tightest
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Version {
    V1,
    V2,
}

/// Which hierarchy holds the memory controller, and this process's path in it: v1's line names
/// `memory` among its controllers; v2's is the single line `0::PATH`.
fn own_group(mount: &Path, membership: &str) -> Option<(Version, String)> {
    let mut unified = None;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            return Some((Version::V1, path.to_string()));
        }
        if id == "0" && controllers.is_empty() {
            unified = Some(path.to_string());
        }
    }
    // A v2 line alone does not say that the memory controller is enabled: its files do.
    unified
        .filter(|_| mount.join("memory.current").is_file() || mount.join("cgroup.controllers").is_file())
        .map(|path| (Version::V2, path))
}

/// What the group at `dir` still allows: its limit less what it uses (less droppable page cache);
/// `None` when it sets no limit or its files cannot be read.
fn room_in(dir: &Path, version: Version) -> Option<Room> {
    let (limit, usage, stat, inactive_key) = match version {
        Version::V1 => ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "total_inactive_file"),
        Version::V2 => ("memory.max", "memory.current", "memory.stat", "inactive_file"),
    };
    let limit = read_number(&dir.join(limit))?;
    if limit >= NO_LIMIT {
        return None;
    }
    let usage = read_number(&dir.join(usage)).unwrap_or(0);
    let droppable = stat_value(&dir.join(stat), inactive_key).unwrap_or(0);
    Some(Room { free: limit.saturating_sub(usage.saturating_sub(droppable)), limit })
}

/// A file holding one number; v2's "max" (no limit) reads as `u64::MAX`.
fn read_number(path: &PathBuf) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    match text.trim() {
        "max" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// One `KEY VALUE` line of a `memory.stat` file.
fn stat_value(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn group(dir: &Path, files: &[(&str, String)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    fn v2(dir: &Path, max: &str, current: u64, inactive_file: u64) {
        let stat = format!("anon {current}\ninactive_file {inactive_file}\nactive_file 0\n");
        group(
            dir,
            &[("memory.max", format!("{max}\n")), ("memory.current", format!("{current}\n")), ("memory.stat", stat)],
        );
    }

    fn v1(dir: &Path, limit: u64, usage: u64, inactive_file: u64) {
        let stat = format!("inactive_file 1\ntotal_inactive_file {inactive_file}\n");
        group(
            dir,
            &[
                ("memory.limit_in_bytes", format!("{limit}\n")),
                ("memory.usage_in_bytes", format!("{usage}\n")),
                ("memory.stat", stat),
            ],
        );
    }

    #[test]
    fn a_v2_job_limit_leaves_its_limit_less_what_the_job_uses_without_droppable_cache() {
        let mount = tempfile::tempdir().unwrap();
        std::fs::write(mount.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        v2(mount.path(), "max", 20 * GIB, 0);
        v2(&mount.path().join("slurm/job_7"), &(16 * GIB).to_string(), 10 * GIB, 2 * GIB);
        v2(&mount.path().join("slurm/job_7/step_batch"), "max", 9 * GIB, GIB);
        let room = headroom_in(mount.path(), "0::/slurm/job_7/step_batch\n");
        let expected = Room { free: 8 * GIB, limit: 16 * GIB };
        assert_eq!(room, Some(expected), "16 GiB limit less 10 GiB used, 2 GiB of it droppable cache");
    }

    #[test]
    fn the_tightest_of_nested_limits_counts() {
        let mount = tempfile::tempdir().unwrap();
        std::fs::write(mount.path().join("cgroup.controllers"), "memory\n").unwrap();
        v2(&mount.path().join("outer"), &(4 * GIB).to_string(), GIB, 0);
        v2(&mount.path().join("outer/inner"), &(32 * GIB).to_string(), GIB, 0);
        assert_eq!(headroom_in(mount.path(), "0::/outer/inner\n"), Some(Room { free: 3 * GIB, limit: 4 * GIB }));
    }

    #[test]
    fn a_v1_memory_controller_is_read_from_its_own_hierarchy() {
        let mount = tempfile::tempdir().unwrap();
        v1(&mount.path().join("memory"), 9_223_372_036_854_771_712, 7 * GIB, 0);
        v1(&mount.path().join("memory/box"), 12 * GIB, 5 * GIB, GIB);
        let membership = "9:cpu,cpuacct:/box\n4:memory:/box\n0::/\n";
        assert_eq!(headroom_in(mount.path(), membership), Some(Room { free: 8 * GIB, limit: 12 * GIB }));
    }

    #[test]
    fn no_limit_anywhere_is_no_headroom_figure() {
        let mount = tempfile::tempdir().unwrap();
        v1(&mount.path().join("memory"), 9_223_372_036_854_771_712, 7 * GIB, 0);
        v1(&mount.path().join("memory/free"), 9_223_372_036_854_771_712, GIB, 0);
        assert_eq!(headroom_in(mount.path(), "4:memory:/free\n"), None);
    }

    #[test]
    fn a_group_path_from_the_hosts_hierarchy_falls_back_to_the_mounted_root() {
        // A container with its own cgroup namespace mounts its group as the root.
        let mount = tempfile::tempdir().unwrap();
        std::fs::write(mount.path().join("cgroup.controllers"), "memory\n").unwrap();
        v2(mount.path(), &(6 * GIB).to_string(), 2 * GIB, 0);
        assert_eq!(headroom_in(mount.path(), "0::/kubepods/pod1/abc\n"), Some(Room { free: 4 * GIB, limit: 6 * GIB }));
    }

    #[test]
    fn unreadable_or_missing_groups_say_nothing() {
        let mount = tempfile::tempdir().unwrap();
        assert_eq!(headroom_in(mount.path(), "0::/\n"), None);
        assert_eq!(headroom_in(mount.path(), "garbage"), None);
    }
}
