//! A run's directory: `config.json`, the event log, `checkpoints/`, and a lock held while a
//! process trains in it.

use crate::protocol::RunConfig;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

pub const CONFIG_NAME: &str = "config.json";
pub const CHECKPOINT_DIR: &str = "checkpoints";
const LOCK_NAME: &str = ".lock";
/// How long opening a run waits for a lock held by someone else before saying it is taken.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{}: cannot create the runs folder: {}", .0.display(), .1)]
    CreateRuns(PathBuf, std::io::Error),
    #[error("{}: cannot write: {}", .0.display(), .1)]
    Write(PathBuf, std::io::Error),
    #[error("{}: not a run directory (no {CONFIG_NAME})", .0.display())]
    NotARun(PathBuf),
    #[error("{}: {CONFIG_NAME} is damaged: {}", .0.display(), .1)]
    BadConfig(PathBuf, String),
    #[error("{}: another resnet-tui process is training in this run", .0.display())]
    Locked(PathBuf),
    #[error("{}: cannot unpack the compressed log: {}", .0.display(), .1)]
    Unpack(PathBuf, std::io::Error),
}

/// An open run directory; the lock is released when it is dropped.
#[derive(Debug)]
pub struct RunDir {
    pub path: PathBuf,
    pub name: String,
    _lock: File,
}

impl RunDir {
    /// Creates a new run directory under `runs` named after the time and depth.
    pub fn create(runs: &Path, config: &RunConfig) -> Result<RunDir, RunDirError> {
        std::fs::create_dir_all(runs).map_err(|e| RunDirError::CreateRuns(runs.to_path_buf(), e))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let base = format!("{stamp}-{}", config.network_name().to_ascii_lowercase().replace('-', ""));
        let mut name = base.clone();
        let mut k = 2;
        let path = loop {
            let candidate = runs.join(&name);
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    name = format!("{base}-{k}");
                    k += 1;
                }
                Err(e) => return Err(RunDirError::CreateRuns(runs.to_path_buf(), e)),
            }
        };
        let run = RunDir::lock(path, name)?;
        run.write_config(config)?;
        std::fs::create_dir_all(run.checkpoints()).map_err(|e| RunDirError::Write(run.checkpoints(), e))?;
        Ok(run)
    }

    /// Opens an existing run directory for resuming, with its config.
    pub fn open(path: &Path) -> Result<(RunDir, RunConfig), RunDirError> {
        let config = read_config(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
        let run = RunDir::lock(path.to_path_buf(), name)?;
        std::fs::create_dir_all(run.checkpoints()).map_err(|e| RunDirError::Write(run.checkpoints(), e))?;
        run.remove_stale_temps();
        run.unpack_log()?;
        Ok((run, config))
    }

    /// A run shipped or shared with its log compressed (`export --share`) goes on writing the
    /// plain log: unpack it first, so that the log stays one file with the whole run.
    fn unpack_log(&self) -> Result<(), RunDirError> {
        let (plain, packed) = (self.log(), self.path.join(format!("{}.gz", crate::runlog::LOG_NAME)));
        if plain.exists() || !packed.is_file() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        let file = File::open(&packed).map_err(|e| RunDirError::Unpack(packed.clone(), e))?;
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(file), &mut bytes)
            .map_err(|e| RunDirError::Unpack(packed.clone(), e))?;
        crate::atomic::write(&plain, &bytes).map_err(|e| RunDirError::Write(plain, e))?;
        std::fs::remove_file(&packed).map_err(|e| RunDirError::Write(packed, e))
    }

    /// Removes what a process killed mid-write left: the temporary files of its checkpoints and
    /// config. Only under the lock: no other process can be writing them now.
    fn remove_stale_temps(&self) {
        use crate::atomic::remove_stale_temps;
        remove_stale_temps(&self.checkpoints(), |name| name.ends_with(".safetensors"));
        remove_stale_temps(&self.path, |name| name == CONFIG_NAME);
    }

    fn lock(path: PathBuf, name: String) -> Result<RunDir, RunDirError> {
        let lock_path = path.join(LOCK_NAME);
        let file = File::create(&lock_path).map_err(|e| RunDirError::Write(lock_path.clone(), e))?;
        // A table of runs probes the lock for an instant (`is_training`): wait that out.
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(RunDir { path, name, _lock: file }),
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(TryLockError::WouldBlock) => return Err(RunDirError::Locked(path)),
                Err(TryLockError::Error(e)) => return Err(RunDirError::Write(lock_path, e)),
            }
        }
    }

    /// Replaces the run's `config.json` atomically (a recovery changes the learning rate).
    pub fn write_config(&self, config: &RunConfig) -> Result<(), RunDirError> {
        let path = self.path.join(CONFIG_NAME);
        let json = serde_json::to_vec_pretty(config).expect("a config serialises");
        crate::atomic::write(&path, &json).map_err(|e| RunDirError::Write(path, e))
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.path.join(CHECKPOINT_DIR)
    }

    pub fn log(&self) -> PathBuf {
        self.path.join(crate::runlog::LOG_NAME)
    }
}

/// Makes `path` a run directory that has not started: its `config.json` and `checkpoints/`
/// (a sweep's cell, written up front). One that exists with the same config is left as it is.
pub fn prepare(path: &Path, config: &RunConfig) -> Result<(), RunDirError> {
    match read_config(path) {
        Ok(stored) if stored == *config => return Ok(()),
        Ok(_) => return Err(RunDirError::BadConfig(path.to_path_buf(), "it holds another run's config".into())),
        Err(_) => {}
    }
    let checkpoints = path.join(CHECKPOINT_DIR);
    std::fs::create_dir_all(&checkpoints).map_err(|e| RunDirError::Write(checkpoints, e))?;
    let file = path.join(CONFIG_NAME);
    let json = serde_json::to_vec_pretty(config).expect("a config serialises");
    crate::atomic::write(&file, &json).map_err(|e| RunDirError::Write(file, e))
}

/// Whether a process trains in the run now: it holds the run's lock. Probed with a shared lock
/// taken and dropped at once (a trainer opening the run meanwhile waits that instant out), so
/// it needs no write permission and works on a cluster's shared file system.
pub fn is_training(path: &Path) -> bool {
    let Ok(file) = File::open(path.join(LOCK_NAME)) else { return false };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// Reads a run directory's config.
pub fn read_config(path: &Path) -> Result<RunConfig, RunDirError> {
    let file = path.join(CONFIG_NAME);
    let text = std::fs::read_to_string(&file).map_err(|_| RunDirError::NotARun(path.to_path_buf()))?;
    serde_json::from_str(&text).map_err(|e| RunDirError::BadConfig(path.to_path_buf(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RunConfig {
        serde_json::from_str(include_str!("../tests/data/config.json")).unwrap()
    }

    #[test]
    fn a_compressed_log_is_unpacked_whole_on_open_and_a_damaged_one_is_left_alone() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = RunDir::create(dir.path(), &config()).unwrap().path;
        let packed = path.join(format!("{}.gz", crate::runlog::LOG_NAME));
        // Two gzip members, as `cat a.gz b.gz` makes: both are the log.
        let gz = |text: &str| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        std::fs::write(&packed, [gz("line 1\n"), gz("line 2\n")].concat()).unwrap();
        drop(RunDir::open(&path).unwrap());
        assert_eq!(std::fs::read_to_string(path.join(crate::runlog::LOG_NAME)).unwrap(), "line 1\nline 2\n");
        assert!(!packed.exists(), "one log, not two");

        // A plain log is there already: the compressed one is not touched.
        std::fs::write(&packed, gz("older\n")).unwrap();
        drop(RunDir::open(&path).unwrap());
        assert_eq!(std::fs::read_to_string(path.join(crate::runlog::LOG_NAME)).unwrap(), "line 1\nline 2\n");
        assert!(packed.exists());

        // Cut short: refused in one line, and nothing lost.
        std::fs::remove_file(path.join(crate::runlog::LOG_NAME)).unwrap();
        let whole = gz(&"a line of the log\n".repeat(100));
        std::fs::write(&packed, &whole[..whole.len() / 2]).unwrap();
        let err = RunDir::open(&path).unwrap_err().to_string();
        assert!(err.contains("cannot unpack the compressed log"), "{err}");
        assert!(packed.exists() && !path.join(crate::runlog::LOG_NAME).exists());
    }

    #[test]
    fn second_open_of_a_locked_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &config()).unwrap();
        let err = RunDir::open(&run.path).unwrap_err().to_string();
        assert!(err.contains("another resnet-tui process"), "{err}");
        let path = run.path.clone();
        drop(run);
        let (_again, cfg) = RunDir::open(&path).unwrap();
        assert_eq!(cfg, config());
    }

    #[test]
    fn runs_started_in_the_same_second_get_distinct_directories() {
        let dir = tempfile::tempdir().unwrap();
        let a = RunDir::create(dir.path(), &config()).unwrap();
        let b = RunDir::create(dir.path(), &config()).unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.name.ends_with("resnet20") || a.name.contains("resnet20"));
    }

    #[test]
    fn opening_a_run_removes_the_temporary_files_of_interrupted_writes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = RunDir::create(dir.path(), &config()).unwrap().path;
        let checkpoints = path.join(CHECKPOINT_DIR);
        let stale = [
            checkpoints.join(".iter-00000004.safetensors.tmp"),
            checkpoints.join(".best.safetensors.tmp"),
            path.join(".config.json.tmp"),
        ];
        let kept =
            [checkpoints.join("iter-00000002.safetensors"), checkpoints.join("notes.tmp"), path.join(".notes.tmp")];
        for file in stale.iter().chain(&kept) {
            std::fs::write(file, b"partial").unwrap();
        }
        let (_run, cfg) = RunDir::open(&path).unwrap();
        assert_eq!(cfg, config());
        for file in &stale {
            assert!(!file.exists(), "{} is left", file.display());
        }
        for file in &kept {
            assert_eq!(std::fs::read(file).unwrap(), b"partial", "{}", file.display());
        }
    }

    #[test]
    fn a_run_is_training_while_its_lock_is_held_and_probing_does_not_block_it() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &config()).unwrap();
        assert!(is_training(&run.path));
        let path = run.path.clone();
        drop(run);
        assert!(!is_training(&path));
        // A probe holding the lock for a moment: the trainer waits it out instead of refusing.
        let probe = File::open(path.join(LOCK_NAME)).unwrap();
        probe.lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(probe);
        });
        let (_run, _) = RunDir::open(&path).unwrap();
        release.join().unwrap();
    }

    #[test]
    fn a_prepared_run_keeps_its_config_and_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cell");
        prepare(&path, &config()).unwrap();
        prepare(&path, &config()).unwrap();
        assert_eq!(read_config(&path).unwrap(), config());
        assert!(path.join(CHECKPOINT_DIR).is_dir());
        let other = RunConfig { seed: 99, ..config() };
        assert!(prepare(&path, &other).unwrap_err().to_string().contains("another run's config"));
    }

    #[test]
    fn a_folder_without_config_is_not_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a run directory"), "{err}");
    }
}
