//! `resnet-tui export RUN --share DIR`: a copy of a run to hand on or to ship in a repository.
//! It holds the run's config, its log compressed, and its newest and best checkpoints, with the
//! paths of the machine it ran on taken out: paths inside the run become relative to it, and the
//! data set and `--init-from` files keep only their names. `replay`, `summary`, `plot`, `eval`
//! and `export` read the copy as they read the run; `resume` continues it after
//! `--set data_dir=...` names the data set on the new machine.

use crate::protocol::{Event, RunConfig};
use crate::train::checkpoint;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Writes the shareable copy of `run` into `out`, a new or empty folder.
pub fn share(run: &Path, out: &Path) -> Result<()> {
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{}: is not empty: give a new folder for the copy", out.display());
    }
    if !run.is_dir() {
        bail!("{}: not a run directory", run.display());
    }
    let config = crate::rundir::read_config(run)?;
    let log = crate::report::load(run)?;
    // Where the run was when each start logged it, and where it is now.
    let mut homes: Vec<PathBuf> = log
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RunStarted { run, .. } => Some(run.dir.clone()),
            _ => None,
        })
        .collect();
    homes.extend(std::fs::canonicalize(run).ok());
    let events: Vec<Event> = log.events.iter().map(|e| portable_event(e, &homes)).collect();

    let checkpoints_out = out.join(crate::rundir::CHECKPOINT_DIR);
    std::fs::create_dir_all(&checkpoints_out).with_context(|| format!("{}: cannot create", out.display()))?;
    let config_json = serde_json::to_vec_pretty(&portable_config(&config)).expect("a config serialises");
    write(&out.join(crate::rundir::CONFIG_NAME), &config_json)?;

    let mut packed = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    crate::runlog::write_all(&mut packed, &events).expect("writing to memory");
    let packed = packed.finish().expect("compressing in memory");
    write(&out.join(format!("{}.gz", crate::runlog::LOG_NAME)), &packed)?;

    let dir = run.join(crate::rundir::CHECKPOINT_DIR);
    let newest = checkpoint::list_periodic(&dir).pop().map(|(_, p)| p);
    let best = Some(dir.join(checkpoint::BEST_NAME)).filter(|p| p.is_file());
    let mut copied = Vec::new();
    for path in newest.into_iter().chain(best) {
        let mut c = checkpoint::read(&path)?;
        c.state.config = portable_config(&c.state.config);
        let sorted = |m: &std::collections::HashMap<String, tch::Tensor>| {
            let mut v: Vec<(String, tch::Tensor)> = m.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let bytes = checkpoint::encode(&c.state, &sorted(&c.model), &sorted(&c.momentum));
        let name = path.file_name().expect("a checkpoint file has a name");
        write(&checkpoints_out.join(name), &bytes)?;
        copied.push(name.to_string_lossy().into_owned());
    }
    let checkpoints = if copied.is_empty() { "no checkpoint".to_string() } else { copied.join(" and ") };
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

/// `path` relative to the run directory it lies in (`checkpoints/best.safetensors`), or its
/// name alone when it lies in none of them.
fn inside_run(path: &Path, homes: &[PathBuf]) -> PathBuf {
    homes
        .iter()
        .find_map(|home| path.strip_prefix(home).ok())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.file_name().map(PathBuf::from).unwrap_or_default())
}

fn portable_event(event: &Event, homes: &[PathBuf]) -> Event {
    let mut event = event.clone();
    match &mut event {
        Event::RunStarted { run, .. } => {
            run.dir = PathBuf::from(".");
            run.config = portable_config(&run.config);
        }
        Event::Checkpoint { path, .. } => *path = inside_run(path, homes),
        Event::Diverged { last_good: Some(path), .. } => *path = inside_run(path, homes),
        _ => {}
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::info;
    use crate::protocol::CheckpointReason;

    #[test]
    fn paths_inside_the_run_become_relative_and_others_keep_their_name() {
        let homes = [PathBuf::from("/work/runs/r1"), PathBuf::from("/home/me/r1")];
        let at = |p: &str| inside_run(Path::new(p), &homes);
        assert_eq!(
            at("/work/runs/r1/checkpoints/iter-00001000.safetensors"),
            Path::new("checkpoints/iter-00001000.safetensors")
        );
        assert_eq!(at("/home/me/r1/checkpoints/best.safetensors"), Path::new("checkpoints/best.safetensors"));
        assert_eq!(at("/elsewhere/x.safetensors"), Path::new("x.safetensors"));

        let mut started = info(20, 0);
        started.dir = "/work/runs/r1".into();
        started.config.data_dir = "/work/shared/cifar10".into();
        started.config.init_from = Some("/home/me/resnet20.safetensors".into());
        let Event::RunStarted { run, .. } =
            portable_event(&Event::RunStarted { time: 0.0, run: Box::new(started) }, &homes)
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
        let text = serde_json::to_string(&portable_event(&ckpt, &homes)).unwrap();
        assert!(!text.contains("/work") && text.contains("\"checkpoints/iter-00001000.safetensors\""), "{text}");
    }
}
