//! A run inside a memory-limited control group (a container's limit, a Slurm job's under its
//! cgroup plugin) is checked against that limit, not against the machine's free memory: refused
//! at once with the one line, instead of killed by the group's out-of-memory killer mid-step.
//!
//! The test makes a real memory cgroup, so it needs root and a writable cgroup file system (as
//! the Slurm test needs root); it fails, never skips, where it cannot make one.

mod common;

use common::*;
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

const GIB: u64 = 1 << 30;

/// A memory cgroup made for one test, removed when dropped.
struct MemoryGroup {
    dir: PathBuf,
}

impl MemoryGroup {
    fn create(limit: u64) -> MemoryGroup {
        let name = format!("resnet-tui-test-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (dir, limit_file) = if v1.join("memory.limit_in_bytes").is_file() {
            (v1.join(&name), "memory.limit_in_bytes")
        } else {
            let root = Path::new("/sys/fs/cgroup");
            // v2: the memory controller must be handed down to the new group.
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory");
            (root.join(&name), "memory.max")
        };
        std::fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!("cannot make a memory cgroup at {} (this test needs root and cgroups): {e}", dir.display())
        });
        let group = MemoryGroup { dir };
        std::fs::write(group.dir.join(limit_file), limit.to_string())
            .unwrap_or_else(|e| panic!("cannot limit {}: {e}", group.dir.display()));
        group
    }

    /// Makes `cmd` join this group between fork and exec (writing "0" to `cgroup.procs` moves
    /// the writer itself), so everything it runs is held to the limit.
    fn enter(&self, cmd: &mut std::process::Command) {
        let procs = CString::new(self.dir.join("cgroup.procs").to_str().unwrap()).unwrap();
        // SAFETY: only async-signal-safe calls (open, write, close) on memory prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
            });
        }
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn train_in(group: &MemoryGroup, s: &Sandbox, depth: &str, batch: &str) -> std::process::Output {
    let mut cmd = bin();
    cmd.arg("train").args(["--no-ui", "--depth", depth, "--batch-size", batch, "--iters", "2", "--threads", "1"]);
    cmd.args(["--device", "cpu", "--data-dir", s.data().to_str().unwrap(), "--runs-dir", s.runs().to_str().unwrap()]);
    group.enter(&mut cmd);
    output(cmd)
}

/// The "only N GiB is available" figure of a refusal, in bytes.
fn available_in(line: &str) -> u64 {
    let figure = line.split("only ").nth(1).and_then(|r| r.split(" GiB").next()).expect("an available figure");
    (figure.parse::<f64>().expect("a number of GiB") * GIB as f64) as u64
}

#[test]
fn a_run_that_does_not_fit_in_its_cgroups_limit_is_refused_though_the_machine_has_room() {
    let limit = 3 * GIB;
    let group = MemoryGroup::create(limit);
    let s = Sandbox::new();

    // ResNet-110 at batch 512 needs about 5.3 GiB: fine for the machine, not for the group.
    let out = train_in(&group, &s, "110", "512");
    let line = assert_refused(&out, &["ResNet-110 at batch 512 needs about", "--force", "--batch-size"]);
    let available = available_in(&line);
    assert!(available <= limit, "the group's limit decides, not the machine's free memory: {line}");
    assert!(available > limit / 2, "most of the group's limit is still free: {line}");
    assert!(run_dirs(&s.runs()).is_empty(), "nothing was started");

    // A run that fits trains to its end inside the same group.
    let out = train_in(&group, &s, "8", "16");
    assert_ok(&out);
    assert_eq!(finished(&s.only_run()).len(), 1);
}
