//! What a run will be, decided before anything is built: its config, its directory, the
//! checkpoint it continues and the changes made on record. The decisions (`resume_recipe`,
//! `data_folder`) are pure functions of what the run directory holds and what was asked;
//! `resolve` reads the directory for them.

use super::checkpoint::{self, Checkpoint};
use super::{Plan, Session, TrainError};
use crate::config::setting as fields;
use crate::config::{ConfigChange, RunConfig, Setting};
use crate::protocol::Event;
use crate::rundir::RunDir;
use std::path::{Path, PathBuf};

/// Where a run's directory comes from.
#[derive(Debug)]
pub(super) enum Destination {
    /// The run directory being resumed, open (and locked).
    Existing(RunDir),
    /// A new directory in this folder, made once nothing can fail early.
    New(PathBuf),
}

/// What to run.
pub(super) struct Resolved {
    pub config: RunConfig,
    pub destination: Destination,
    /// The checkpoint a resume continues; `None` for a new run or one killed before its first.
    pub checkpoint: Option<Checkpoint>,
    /// How the recipe changed on resume (`--set`, a recovery), against the checkpoint's.
    pub changes: Vec<ConfigChange>,
}

/// A resumed run's recipe as its directory holds it.
pub(super) struct Recorded<'a> {
    /// The run directory, for the errors that name it.
    pub dir: &'a Path,
    /// Its `config.json`.
    pub stored: &'a RunConfig,
    /// The recipe of its newest readable checkpoint; `None` before the first one.
    pub checkpoint: Option<&'a RunConfig>,
}

/// The recipe a resume trains with, and how it differs from its checkpoint's.
#[derive(Debug, PartialEq)]
pub(super) struct Recipe {
    pub config: RunConfig,
    pub changes: Vec<ConfigChange>,
}

/// Decides what `plan` runs, reading the run directory of a resume.
pub(super) fn resolve(session: &Session, plan: Plan) -> Result<Resolved, TrainError> {
    match plan {
        Plan::New { config, runs_dir } => fresh(config, runs_dir),
        Plan::Resume { run_dir, set, data_dir } => resume(session, &run_dir, &set, data_dir),
    }
}

/// A new run: the config as given, checked; its directory comes later.
fn fresh(config: RunConfig, runs_dir: PathBuf) -> Result<Resolved, TrainError> {
    crate::config::validate(&config)?;
    Ok(Resolved { config, destination: Destination::New(runs_dir), checkpoint: None, changes: Vec::new() })
}

/// A resume: the run directory and its newest readable checkpoint read, then decided on.
fn resume(
    session: &Session,
    run_dir: &Path,
    set: &[Setting],
    data_dir: Option<PathBuf>,
) -> Result<Resolved, TrainError> {
    let (dir, stored) = RunDir::open(run_dir)?;
    let config_file = run_dir.join(crate::rundir::CONFIG_NAME);
    crate::config::validate(&stored).map_err(|e| TrainError::StoredConfig(config_file, e))?;
    // A run killed before its first checkpoint has nothing to lose: it starts again at 0.
    let checkpoint = if checkpoint::list_periodic(&dir.checkpoints()).is_empty() {
        session.status("no checkpoint yet: starting the run from iteration 0");
        None
    } else {
        Some(newest_checkpoint(session, &dir)?)
    };
    let recorded = Recorded { dir: run_dir, stored: &stored, checkpoint: checkpoint.as_ref().map(|c| &c.state.config) };
    let Recipe { mut config, changes } = resume_recipe(&recorded, set, |config| changed_on_record(&dir, config))?;
    config.data_dir = data_folder(&config.data_dir, set, data_dir, crate::data::fetch::recorded_or_configured);
    Ok(Resolved { config, destination: Destination::Existing(dir), checkpoint, changes })
}

/// The recipe a resume trains with. The checkpoint's recipe is the run's. A `config.json` that
/// says otherwise holds a change made on record (`--set`) before the next checkpoint, which
/// stands, or was edited by hand: then a change must be asked for by name. The settings go on
/// top. `on_record` says whether a config is one a resume started with after a recorded change
/// (it reads the log: asked only when `config.json` differs).
pub(super) fn resume_recipe(
    recorded: &Recorded,
    set: &[Setting],
    on_record: impl FnOnce(&RunConfig) -> bool,
) -> Result<Recipe, TrainError> {
    let base = recorded.checkpoint.unwrap_or(recorded.stored);
    if base.depth != recorded.stored.depth {
        let (checkpoint, run) = (base.depth, recorded.stored.depth);
        return Err(TrainError::DepthMismatch { dir: recorded.dir.to_path_buf(), checkpoint, run });
    }
    let edited = crate::config::differences(base, recorded.stored);
    let stands = !edited.is_empty() && on_record(recorded.stored);
    if !edited.is_empty() && !stands && set.is_empty() {
        let file = recorded.dir.join(crate::rundir::CONFIG_NAME);
        return Err(TrainError::ConfigEdited { file, fields: edited.into_iter().map(|c| c.field).collect() });
    }
    let config = crate::config::apply_settings(if stands { recorded.stored } else { base }, set)?;
    let changes = crate::config::differences(base, &config);
    Ok(Recipe { config, changes })
}

/// Where a resume reads the data set from. Where it lies is this machine's business, not the
/// recipe's: a folder given (`--data-dir`) is used; one named in a setting (`--set data_dir=`)
/// is used as named, so that one without the data fails to load instead of giving way to
/// another; else `locate` finds the recorded one here, or this machine's configured one for a
/// run copied from elsewhere (`export --share` names the folder only).
pub(super) fn data_folder(
    recorded: &Path,
    set: &[Setting],
    given: Option<PathBuf>,
    locate: impl FnOnce(&Path) -> PathBuf,
) -> PathBuf {
    match given {
        Some(dir) => dir,
        None if set.iter().any(|s| s.sets(&fields::DATA_DIR)) => recorded.to_path_buf(),
        None => locate(recorded),
    }
}

/// Whether `config` is one that a resume of this run started with after a recorded change: the
/// log has a `run_started` with it followed by the `config_changed` that made it.
fn changed_on_record(dir: &RunDir, config: &RunConfig) -> bool {
    let Ok(log) = crate::runlog::read(&dir.log()) else { return false };
    log.events.windows(2).any(|w| {
        matches!((&w[0], &w[1]), (Event::RunStarted { run, .. }, Event::ConfigChanged { .. })
            if crate::config::differences(&run.config, config).is_empty())
    })
}

/// The newest periodic checkpoint that reads back; damaged newer ones are reported and skipped.
fn newest_checkpoint(session: &Session, dir: &RunDir) -> Result<Checkpoint, TrainError> {
    let all = checkpoint::list_periodic(&dir.checkpoints());
    let mut newest_error = None;
    for (_, path) in all.iter().rev() {
        match checkpoint::read(path) {
            Ok(ck) => return Ok(ck),
            Err(e) => {
                session.status(format!("skipping {e}"));
                newest_error.get_or_insert(e);
            }
        }
    }
    Err(TrainError::NoCheckpoint { dir: dir.path.clone(), newest: newest_error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Depth, paper};

    fn recipe() -> RunConfig {
        paper(Depth::PAPER[0], "/data/cifar10".into())
    }

    fn no_log(_: &RunConfig) -> bool {
        panic!("the log is read only when config.json differs from the checkpoint")
    }

    fn recorded<'a>(stored: &'a RunConfig, checkpoint: Option<&'a RunConfig>) -> Recorded<'a> {
        Recorded { dir: Path::new("/runs/r"), stored, checkpoint }
    }

    fn fields(changes: &[ConfigChange]) -> Vec<&str> {
        changes.iter().map(|c| c.field.as_str()).collect()
    }

    #[test]
    fn a_fresh_run_is_its_config_checked_with_a_directory_to_come() {
        let r = fresh(recipe(), "runs".into()).unwrap();
        assert_eq!(r.config, recipe());
        assert!(matches!(r.destination, Destination::New(ref d) if d == Path::new("runs")));
        assert!(r.checkpoint.is_none() && r.changes.is_empty());
        let err = fresh(RunConfig { lr: -1.0, ..recipe() }, "runs".into()).err().unwrap().to_string();
        assert!(err.contains("--lr"), "{err}");
    }

    #[test]
    fn a_resume_continues_the_checkpoints_recipe_and_before_one_the_stored_one() {
        let stored = RunConfig { data_dir: "/elsewhere/cifar10".into(), ..recipe() };
        let ck = recipe();
        let r = resume_recipe(&recorded(&stored, Some(&ck)), &[], no_log).unwrap();
        assert_eq!(r, Recipe { config: ck.clone(), changes: Vec::new() }, "where the data lies is no edit");
        let before = resume_recipe(&recorded(&stored, None), &[], no_log).unwrap();
        assert_eq!(before, Recipe { config: stored.clone(), changes: Vec::new() });
    }

    #[test]
    fn a_hand_edited_config_is_refused_by_its_fields_and_a_setting_replaces_the_edit() {
        let ck = recipe();
        let stored = RunConfig { momentum: 0.5, lr: 0.2, ..recipe() };
        let err = resume_recipe(&recorded(&stored, Some(&ck)), &[], |_| false).err().unwrap();
        match err {
            TrainError::ConfigEdited { file, fields } => {
                assert_eq!(file, Path::new("/runs/r/config.json"));
                assert_eq!(fields, ["lr", "momentum"]);
            }
            other => panic!("{other}"),
        }
        // Asked by name: the checkpoint's recipe with the setting; the hand edit is gone.
        let r = resume_recipe(&recorded(&stored, Some(&ck)), &[fields::LR.to(0.05)], |_| false).unwrap();
        assert_eq!((r.config.lr, r.config.momentum), (0.05, ck.momentum));
        assert_eq!(fields(&r.changes), ["lr"]);
    }

    #[test]
    fn a_change_on_record_stands_and_settings_go_on_top_of_it() {
        let ck = recipe();
        let stored = RunConfig { lr: 0.05, ..recipe() };
        let r = resume_recipe(&recorded(&stored, Some(&ck)), &[], |c| c.lr == 0.05).unwrap();
        assert_eq!(r.config, stored);
        assert_eq!(fields(&r.changes), ["lr"]);
        let more = resume_recipe(&recorded(&stored, Some(&ck)), &[fields::MOMENTUM.to(0.85)], |_| true).unwrap();
        assert_eq!((more.config.lr, more.config.momentum), (0.05, 0.85));
        assert_eq!(fields(&more.changes), ["lr", "momentum"]);
    }

    #[test]
    fn settings_override_the_recipe_and_are_checked() {
        let ck = recipe();
        let set = [fields::ITERS.to(80_000), fields::MILESTONES.to(vec![40_000, 60_000])];
        let r = resume_recipe(&recorded(&ck, Some(&ck)), &set, no_log).unwrap();
        assert_eq!((r.config.iters, r.config.milestones.clone()), (80_000, vec![40_000, 60_000]));
        assert_eq!(fields(&r.changes), ["iters", "milestones"]);
        let err = resume_recipe(&recorded(&ck, Some(&ck)), &[fields::ITERS.to(1000)], no_log).err().unwrap();
        assert!(err.to_string().contains("--milestones"), "{err}");
    }

    #[test]
    fn a_checkpoint_of_another_depth_is_refused() {
        let stored = recipe();
        let ck = RunConfig { depth: Depth::PAPER[1], ..recipe() };
        let err = resume_recipe(&recorded(&stored, Some(&ck)), &[], no_log).err().unwrap();
        assert_eq!(err.to_string(), "/runs/r: checkpoint is of ResNet-32, the run is ResNet-20");
    }

    #[test]
    fn the_data_folder_is_the_one_given_else_the_one_named_else_the_one_found_here() {
        let recorded = Path::new("/moved/away/cifar10");
        let nowhere = |_: &Path| -> PathBuf { panic!("not looked for") };
        let given = data_folder(recorded, &[], Some("/here/cifar10".into()), nowhere);
        assert_eq!(given, Path::new("/here/cifar10"));
        let named = [fields::DATA_DIR.to(recorded.to_path_buf())];
        assert_eq!(data_folder(recorded, &named, None, nowhere), recorded, "named: used as named");
        // The recorded folder has moved: this machine's configured one stands in for it.
        let found = data_folder(recorded, &[fields::LR.to(0.1)], None, |d| {
            assert_eq!(d, recorded);
            PathBuf::from("/configured/cifar10")
        });
        assert_eq!(found, Path::new("/configured/cifar10"));
    }
}
