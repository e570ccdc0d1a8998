//! `resnet-tui export RUN --share DIR`: a copy of a run to hand on or to ship in a repository.
//! It holds the run's config, its log compressed, and its newest and best checkpoints, with the
//! paths of the machine it ran on taken out: paths inside the run become relative to it, and the
//! data set and `--init-from` files keep only their names. `replay`, `summary`, `plot`, `eval`
//! and `export` read the copy as they read the run; `resume` continues it after
//! `--set data_dir=...` names the data set on the new machine.

use crate::protocol::{EndReason, Event, RunConfig};
use crate::train::checkpoint;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Which checkpoints a copy keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The newest and the best, with momentum (`export --share`: to hand on or continue).
    NewestAndBest,
    /// Only what continues the run exactly: the newest checkpoint with its momentum; for a
    /// completed run, which is not continued, its final weights alone (`sweep share`).
    Snapshot,
}

/// Writes the shareable copy of `run` into `out`, a new or empty folder.
pub fn share(run: &Path, out: &Path) -> Result<()> {
    share_keeping(run, out, Keep::NewestAndBest)
}

/// Writes the shareable copy of `run` into `out`, a new or empty folder, with the checkpoints
/// `keep` says.
pub fn share_keeping(run: &Path, out: &Path, keep: Keep) -> Result<()> {
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{}: is not empty: give a new folder for the copy", out.display());
    }
    if !run.is_dir() {
        bail!("{}: not a run directory", run.display());
    }
    let config = crate::rundir::read_config(run)?;
    let log = crate::report::load(run)?;
    // Where the run and its data set were when each start logged them, and where they are now.
    let (mut homes, mut data_dirs): (Vec<PathBuf>, Vec<PathBuf>) = log
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RunStarted { run, .. } => Some((run.dir.clone(), run.config.data_dir.clone())),
            _ => None,
        })
        .unzip();
    homes.extend(std::fs::canonicalize(run).ok());
    data_dirs.push(config.data_dir.clone());
    homes.retain(|h| h.is_absolute());
    data_dirs.retain(|d| d.is_absolute());
    let machine = Machine { homes, data_dirs };
    let events: Vec<Event> = log.events.iter().map(|e| machine.portable_event(e)).collect();

    // Everything is read and encoded before anything is written: a failure leaves no half copy.
    let dir = run.join(crate::rundir::CHECKPOINT_DIR);
    let mut checkpoints = Vec::new();
    // The newest periodic checkpoint that reads back (as `resume` takes it), and the best.
    let newest =
        checkpoint::list_periodic(&dir).into_iter().rev().find_map(|(_, path)| match checkpoint::read(&path) {
            Ok(c) => Some((path, c)),
            Err(e) => {
                eprintln!("resnet-tui: warning: skipping {e}");
                None
            }
        });
    checkpoints.extend(newest);
    let best = dir.join(checkpoint::BEST_NAME);
    if keep == Keep::NewestAndBest && best.is_file() {
        checkpoints.push((best.clone(), checkpoint::read(&best)?));
    }
    let completed = crate::frontend::history::History::from_events(&log.events).end() == Some(EndReason::Completed);
    if keep == Keep::Snapshot && completed {
        for (_, c) in &mut checkpoints {
            c.momentum.clear();
        }
    }
    let checkpoints: Vec<(String, Vec<u8>)> = checkpoints
        .into_iter()
        .map(|(path, mut c)| {
            c.state.config = portable_config(&c.state.config);
            // `encode` puts the tensors in name order itself.
            let named = |m: &std::collections::HashMap<String, tch::Tensor>| -> Vec<(String, tch::Tensor)> {
                m.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()
            };
            let name = path.file_name().expect("a checkpoint file has a name").to_string_lossy().into_owned();
            (name, checkpoint::encode(&c.state, &named(&c.model), &named(&c.momentum)))
        })
        .collect();
    let config_json = serde_json::to_vec_pretty(&portable_config(&config)).expect("a config serialises");
    let mut packed = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    crate::runlog::write_all(&mut packed, &events).expect("writing to memory");
    let packed = packed.finish().expect("compressing in memory");

    let checkpoints_out = out.join(crate::rundir::CHECKPOINT_DIR);
    std::fs::create_dir_all(&checkpoints_out).with_context(|| format!("{}: cannot create", out.display()))?;
    write(&out.join(crate::rundir::CONFIG_NAME), &config_json)?;
    write(&out.join(format!("{}.gz", crate::runlog::LOG_NAME)), &packed)?;
    for (name, bytes) in &checkpoints {
        write(&checkpoints_out.join(name), bytes)?;
    }
    let names: Vec<&str> = checkpoints.iter().map(|(n, _)| n.as_str()).collect();
    let checkpoints = if names.is_empty() { "no checkpoint".to_string() } else { names.join(" and ") };
    eprintln!(
        "wrote {}: config, {} events ({}, compressed), {checkpoints}; no path of this machine inside",
        out.display(),
        crate::format::group_digits(events.len() as u64),
        crate::format::bytes(packed.len() as u64),
    );
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// The config without this machine's paths: the data set and the initial weights by name only.
pub fn portable_config(config: &RunConfig) -> RunConfig {
    let name_only = |p: &Path| p.file_name().map(PathBuf::from).unwrap_or_default();
    RunConfig {
        data_dir: name_only(&config.data_dir),
        init_from: config.init_from.as_deref().map(name_only),
        ..config.clone()
    }
}

/// The paths of the machine a run's log names: where the run directory was, and the data set.
struct Machine {
    homes: Vec<PathBuf>,
    data_dirs: Vec<PathBuf>,
}

impl Machine {
    /// `path` relative to the run directory it lies in (`checkpoints/best.safetensors`), or its
    /// name alone when it lies in none of them; a relative path (a copy shared again) as it is.
    fn inside_run(&self, path: &Path) -> PathBuf {
        if path.is_relative() {
            return path.to_path_buf();
        }
        self.homes
            .iter()
            .find_map(|home| path.strip_prefix(home).ok())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| path.file_name().map(PathBuf::from).unwrap_or_default())
    }

    /// Free text (an error's message) with the run directory's and the data set's paths
    /// shortened the same way.
    fn text(&self, text: &str) -> String {
        let mut text = text.to_string();
        for home in &self.homes {
            let home = home.display().to_string();
            text = text.replace(&format!("{home}/"), "").replace(&home, ".");
        }
        for dir in &self.data_dirs {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            text = text.replace(&dir.display().to_string(), &name);
        }
        text
    }

    fn portable_event(&self, event: &Event) -> Event {
        let mut event = event.clone();
        match &mut event {
            Event::RunStarted { run, .. } => {
                run.dir = PathBuf::from(".");
                run.config = portable_config(&run.config);
            }
            Event::Checkpoint { path, .. } => *path = self.inside_run(path),
            Event::Diverged { last_good: Some(path), .. } => *path = self.inside_run(path),
            // `resume --set data_dir=...` on the machine: the folders by name, as in the config.
            Event::ConfigChanged { changes, .. } => {
                for c in changes.iter_mut().filter(|c| c.field == "data_dir" || c.field == "init_from") {
                    for value in [&mut c.from, &mut c.to] {
                        if let Some(path) = value.as_str() {
                            let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned());
                            *value = serde_json::Value::from(name.unwrap_or_default());
                        }
                    }
                }
            }
            Event::Error { message, .. } | Event::Status { message, .. } => *message = self.text(message),
            _ => {}
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::info;
    use crate::protocol::CheckpointReason;

    fn machine() -> Machine {
        Machine {
            homes: vec![PathBuf::from("/work/runs/r1"), PathBuf::from("/home/me/r1")],
            data_dirs: vec![PathBuf::from("/work/shared/cifar10")],
        }
    }

    #[test]
    fn paths_inside_the_run_become_relative_and_others_keep_their_name() {
        let m = machine();
        let at = |p: &str| m.inside_run(Path::new(p));
        assert_eq!(
            at("/work/runs/r1/checkpoints/iter-00001000.safetensors"),
            Path::new("checkpoints/iter-00001000.safetensors")
        );
        assert_eq!(at("/home/me/r1/checkpoints/best.safetensors"), Path::new("checkpoints/best.safetensors"));
        assert_eq!(at("/elsewhere/x.safetensors"), Path::new("x.safetensors"));
        assert_eq!(at("checkpoints/x.safetensors"), Path::new("checkpoints/x.safetensors"), "shared again");

        let mut started = info(20, 0);
        started.dir = "/work/runs/r1".into();
        started.config.data_dir = "/work/shared/cifar10".into();
        started.config.init_from = Some("/home/me/resnet20.safetensors".into());
        let Event::RunStarted { run, .. } = m.portable_event(&Event::RunStarted { time: 0.0, run: Box::new(started) })
        else {
            panic!()
        };
        assert_eq!(run.dir, Path::new("."));
        assert_eq!(run.config.data_dir, Path::new("cifar10"));
        assert_eq!(run.config.init_from.as_deref(), Some(Path::new("resnet20.safetensors")));
        let ckpt = Event::Checkpoint {
            time: 1.0,
            iter: 1000,
            path: "/work/runs/r1/checkpoints/iter-00001000.safetensors".into(),
            reason: CheckpointReason::Periodic,
            secs: 0.1,
        };
        let text = serde_json::to_string(&m.portable_event(&ckpt)).unwrap();
        assert!(!text.contains("/work") && text.contains("\"checkpoints/iter-00001000.safetensors\""), "{text}");
    }

    #[test]
    fn changes_and_messages_lose_the_machines_paths_too() {
        let m = machine();
        let change = Event::ConfigChanged {
            time: 0.0,
            iter: 30,
            changes: vec![
                crate::config::ConfigChange {
                    field: "data_dir".into(),
                    from: "cifar10".into(),
                    to: "/work/shared/cifar10".into(),
                },
                crate::config::ConfigChange { field: "lr".into(), from: 0.1.into(), to: 0.05.into() },
            ],
        };
        let Event::ConfigChanged { changes, .. } = m.portable_event(&change) else { panic!() };
        assert_eq!((changes[0].from.as_str(), changes[0].to.as_str()), (Some("cifar10"), Some("cifar10")));
        assert_eq!(changes[1].to, serde_json::Value::from(0.05));
        let error = Event::Error {
            time: 0.0,
            message: "/work/runs/r1/checkpoints/iter-00000040.safetensors: cannot write; data in /work/shared/cifar10"
                .into(),
            fatal: false,
        };
        let Event::Error { message, .. } = m.portable_event(&error) else { panic!() };
        assert_eq!(message, "checkpoints/iter-00000040.safetensors: cannot write; data in cifar10");
    }

    #[test]
    fn a_damaged_newest_checkpoint_is_skipped_and_the_copy_is_whole() {
        use crate::train::checkpoint::{TrainState, encode};
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("r1");
        let mut config = crate::config::paper(crate::config::Depth::PAPER[0], tmp.path().join("data"));
        config.iters = 30;
        crate::rundir::prepare(&run, &config).unwrap();
        let mut log = crate::runlog::LogWriter::open(&run.join(crate::runlog::LOG_NAME)).unwrap();
        let mut started = info(20, 0);
        started.dir = run.clone();
        started.config = config.clone();
        log.write(&Event::RunStarted { time: 0.0, run: Box::new(started) }).unwrap();
        let state = TrainState {
            config: config.clone(),
            iter: 10,
            elapsed: 1.0,
            best_error: None,
            best_iter: None,
            run: "r1".into(),
            warmup: Default::default(),
        };
        let w = vec![("w".to_string(), tch::Tensor::from_slice(&[1.0f32, 2.0]))];
        let checkpoints = run.join(crate::rundir::CHECKPOINT_DIR);
        std::fs::write(checkpoints.join("iter-00000010.safetensors"), encode(&state, &w, &w)).unwrap();
        std::fs::write(checkpoints.join("iter-00000020.safetensors"), b"torn").unwrap();

        let out = tmp.path().join("copy");
        share(&run, &out).unwrap();
        let copied = checkpoint::list_periodic(&out.join(crate::rundir::CHECKPOINT_DIR));
        assert_eq!(copied.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [10], "the newest that reads back");
        let back = checkpoint::read(&copied[0].1).unwrap();
        assert_eq!(back.state.config.data_dir, Path::new("data"));
        assert_eq!(Vec::<f32>::try_from(&back.model["w"]).unwrap(), [1.0, 2.0]);
        let stored = crate::rundir::read_config(&out).unwrap();
        assert_eq!(stored, portable_config(&config));

        // Not a run: refused before anything is written.
        let err = share(tmp.path(), &tmp.path().join("copy2")).unwrap_err().to_string();
        assert!(err.contains("not a run directory"), "{err}");
        assert!(!tmp.path().join("copy2").exists());
    }
}
