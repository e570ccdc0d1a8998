//! What the kernel says about this process and machine: peak memory, age, logical CPUs.

/// Peak resident memory of this process so far (VmHWM), in MiB; None off Linux.
pub fn peak_rss_mib() -> Option<f64> {
    status_kib("VmHWM:").map(|kib| kib as f64 / 1024.0)
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Seconds since this process was started by the kernel (10 ms resolution), so start-up costs
/// before `main` (loading libtorch and its CUDA libraries) count too.
pub fn process_age_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 22 is the start time in clock ticks since boot; fields after the command's closing
    // parenthesis are space-separated, starting at field 3.
    let after = &stat[stat.rfind(')')? + 2..];
    let start_ticks: f64 = after.split(' ').nth(22 - 3)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split(' ').next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI libtorch supports.
    Some(uptime - start_ticks / 100.0)
}

/// The number of logical CPUs this process may use.
pub fn logical_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_peak_memory_and_an_age() {
        assert!(peak_rss_mib().unwrap() > 1.0);
        let age = process_age_secs().unwrap();
        assert!((0.0..3600.0 * 24.0).contains(&age), "{age}");
        assert!(logical_cpus() >= 1);
    }
}
