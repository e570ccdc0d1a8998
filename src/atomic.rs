//! Files that are either wholly old or wholly new: written to a hidden temporary file, synced,
//! renamed over the target, and the folder synced; what a kill mid-write leaves is removed later.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name(path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The name `write` gives the temporary file for `name`: hidden, in the same folder (a
/// rename is only atomic within one file system).
fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Removes the temporary files that `write` left in `dir` when the process was killed
/// mid-write, for the files named `is_target`; nothing else, and no folder. Only for a folder
/// that no other process writes into (a run directory under its lock). Returns what it removed.
pub fn remove_stale_temps(dir: &Path, is_target: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let stale = std::fs::read_dir(dir).into_iter().flatten().flatten().filter(|e| {
        let name = e.file_name();
        let target = name.to_str().and_then(|n| n.strip_prefix('.')).and_then(|n| n.strip_suffix(".tmp"));
        // The entry's own type: a symbolic link of that name is not followed, and is left alone.
        target.is_some_and(|t| !t.is_empty() && is_target(t)) && e.file_type().is_ok_and(|t| t.is_file())
    });
    stale.map(|e| e.path()).filter(|p| std::fs::remove_file(p).is_ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_writers_stale_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let stale = [".iter-00000004.safetensors.tmp", ".best.safetensors.tmp"];
        let kept =
            ["iter-00000002.safetensors", "iter-00000002.safetensors.tmp", ".notes.tmp", ".safetensors.tmp", "x.tmp"];
        for name in stale.iter().chain(&kept) {
            std::fs::write(d.join(name), b"partial").unwrap();
        }
        // A folder of the temporary files' name (how the fault tests block a write) stays.
        std::fs::create_dir(d.join(".iter-00000006.safetensors.tmp")).unwrap();
        let mut removed = remove_stale_temps(d, |t| t.ends_with(".safetensors"));
        removed.sort();
        let mut expected: Vec<PathBuf> = stale.iter().map(|n| d.join(n)).collect();
        expected.sort();
        assert_eq!(removed, expected);
        let mut left: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let mut want: Vec<String> =
            kept.iter().chain(&[".iter-00000006.safetensors.tmp"]).map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(left, want);
    }
}
