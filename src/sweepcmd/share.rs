//! `resnet-tui sweep share DIR OUT [--now] [--parts N]`: a snapshot of a whole sweep, to ship in a
//! repository and continue on another machine. With `--parts`, a cell in training is written again
//! only when what it would hold lies in a later part of its run than what the snapshot holds: a
//! repository keeps every replaced snapshot in its history, and this bounds how many there are of
//! each run.

use crate::cli::SweepShareArgs;
use crate::frontend::history::History;
use crate::frontend::outcome::ExitStatus;
use crate::protocol::{CheckpointReason, Command, EndReason, Event};
use crate::report::share::{Keep, portable_config, share_keeping};
use crate::sweep::Sweep;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the new snapshot holds of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Not started: its config.
    ConfigOnly,
    /// Written from the sweep: what continues it, or a finished cell's final weights.
    Share,
    /// Copied unchanged from the snapshot in OUT, which holds checkpoint `held` (0: none), while
    /// a snapshot taken now would hold `would_hold`, still in the same part of the run.
    Keep { held: u64, would_hold: u64 },
}

/// `sweep share DIR OUT`: every cell as `export --share` writes it, keeping only what continues
/// it (a cell not yet started: its config), and `sweep.json`; written beside OUT and swapped in
/// at the end, so that a failure leaves the previous snapshot whole.
pub(super) fn share(args: &SweepShareArgs) -> Result<ExitStatus> {
    let sweep = Sweep::load(&args.dir)?;
    let plans: Vec<(&str, Plan)> =
        sweep.cells.iter().map(|cell| Ok((cell.name.as_str(), plan(args, &cell.name)?))).collect::<Result<_>>()?;
    if args.now {
        let renewed: Vec<&str> = plans.iter().filter(|(_, p)| *p == Plan::Share).map(|(c, _)| *c).collect();
        checkpoint_cells_in_training(&args.dir, &renewed)?;
    }
    let name = args.out.file_name().context("the snapshot's folder needs a name")?.to_string_lossy().into_owned();
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fresh = parent.join(format!(".{name}.new"));
    let old = parent.join(format!(".{name}.old"));
    for leftover in [&fresh, &old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover).with_context(|| format!("{}: cannot remove", leftover.display()))?;
        }
    }
    std::fs::create_dir_all(&fresh).with_context(|| format!("{}: cannot create", fresh.display()))?;
    for (cell, plan) in plans {
        let (from, to) = (args.dir.join(cell), fresh.join(cell));
        match plan {
            Plan::Share => share_keeping(&from, &to, Keep::Snapshot).with_context(|| format!("cell {cell}"))?,
            Plan::ConfigOnly => {
                let config = crate::rundir::read_config(&from)?;
                crate::rundir::prepare(&to, &portable_config(&config))?;
                eprintln!("wrote {}: config only (not started)", to.display());
            }
            Plan::Keep { held, would_hold } => {
                copy_tree(&args.out.join(cell), &to)?;
                let digits = |i: u64| crate::format::group_digits(i);
                let holding =
                    if held == 0 { "no checkpoint".to_string() } else { format!("checkpoint {}", digits(held)) };
                let would = digits(would_hold);
                eprintln!("kept {cell} as the snapshot holds it ({holding}): it would hold {would}, in the same part");
            }
        }
    }
    let sweep_file = crate::sweep::SWEEP_FILE;
    std::fs::copy(args.dir.join(sweep_file), fresh.join(sweep_file))
        .with_context(|| format!("{}: cannot copy {sweep_file}", args.dir.display()))?;
    swap_in(&fresh, &args.out, &old)?;
    eprintln!("snapshot of {} in {}: `resnet-tui sweep run` continues it", args.dir.display(), args.out.display());
    Ok(ExitStatus::Success)
}

/// Puts the snapshot written in `fresh` in place of `out`, which is moved aside to `old` and
/// removed only once `fresh` is in place.
fn swap_in(fresh: &Path, out: &Path, old: &Path) -> Result<()> {
    if out.exists() {
        std::fs::rename(out, old).with_context(|| format!("{}: cannot move aside", out.display()))?;
    }
    std::fs::rename(fresh, out).with_context(|| format!("{}: cannot write", out.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(old).with_context(|| format!("{}: cannot remove", old.display()))?;
    }
    Ok(())
}

/// What the snapshot holds of `cell`: its config until it starts; with `--parts`, the snapshot
/// in OUT kept while what a new one would hold lies in the same part of the run as what OUT holds.
fn plan(args: &SweepShareArgs, cell: &str) -> Result<Plan> {
    let run = args.dir.join(cell);
    if !crate::runlog::log_path(&run).is_file() {
        return Ok(Plan::ConfigOnly);
    }
    let Some(parts) = args.parts else { return Ok(Plan::Share) };
    let previous = args.out.join(cell);
    if !previous.join(crate::rundir::CONFIG_NAME).is_file() {
        return Ok(Plan::Share);
    }
    let history = History::from_events(&crate::report::load(&run)?.events);
    // A finished run is written at its end, and a diverged one to show it.
    if matches!(history.end(), Some(EndReason::Completed | EndReason::Diverged)) {
        return Ok(Plan::Share);
    }
    let held = newest_checkpoint(&previous);
    // `--now` has a cell in training write a checkpoint where it stands; otherwise the snapshot
    // takes its newest one.
    let would_hold =
        if args.now && crate::rundir::is_training(&run) { history.iters() } else { newest_checkpoint(&run) };
    let iters = crate::rundir::read_config(&run)?.iters;
    Ok(if in_later_part(held, would_hold, iters, parts.get()) { Plan::Share } else { Plan::Keep { held, would_hold } })
}

/// The iteration of the run's newest periodic checkpoint; 0 when it has none.
fn newest_checkpoint(run: &Path) -> u64 {
    crate::train::checkpoint::list_periodic(&run.join(crate::rundir::CHECKPOINT_DIR))
        .last()
        .map_or(0, |(iter, _)| *iter)
}

/// Whether iteration `would_hold` lies in a later one of a run's `parts` equal parts than `held`.
fn in_later_part(held: u64, would_hold: u64, iters: u64, parts: u64) -> bool {
    let part = |i: u64| u128::from(i.min(iters)) * u128::from(parts) / u128::from(iters.max(1));
    part(would_hold) > part(held)
}

/// `from`'s files and folders, copied into `to` (created).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("{}: cannot create", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("{}: cannot read", from.display()))? {
        let entry = entry.with_context(|| format!("{}: cannot read", from.display()))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).with_context(|| format!("{}: cannot copy", source.display()))?;
        }
    }
    Ok(())
}

/// How long `sweep share --now` waits for the cells in training: each takes the request at its
/// next step boundary, and a deep cell on one slow thread takes seconds a step, a minute or more
/// when an evaluation comes first.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(15 * 60);

/// Asks each of `cells` that is training for a checkpoint at its current iteration (through its
/// mailbox, as `attach` does) and waits until each has written it and logged two steps past it:
/// the steps a resume of the snapshot can be checked against. A cell that stops training
/// meanwhile is shared as it stands.
fn checkpoint_cells_in_training(dir: &Path, cells: &[&str]) -> Result<()> {
    let mut waiting = Vec::new();
    for cell in cells {
        let run = dir.join(cell);
        if crate::rundir::is_training(&run) {
            let id = crate::mailbox::send(&run, &Command::Checkpoint)?;
            let log = crate::runlog::LogTail::open(&crate::runlog::log_path(&run))?;
            let cell = cell.to_string();
            waiting.push(CheckpointAsked { cell, run, id, log, answered: false, at: None, paused_at: None });
        }
    }
    if waiting.is_empty() {
        eprintln!("no cell to snapshot is training: each is shared from its newest checkpoint");
        return Ok(());
    }
    let names: Vec<&str> = waiting.iter().map(|w| w.cell.as_str()).collect();
    eprintln!("asked {} for a checkpoint at the current iteration; waiting for two steps past it", names.join(", "));
    let deadline = Instant::now() + CHECKPOINT_WAIT;
    loop {
        let mut still = Vec::new();
        for mut asked in waiting {
            match asked.poll()? {
                Some(at) => eprintln!("{}: checkpoint at iteration {}", asked.cell, crate::format::group_digits(at)),
                None if !crate::rundir::is_training(&asked.run) => {
                    eprintln!("{}: stopped training; shared from its newest checkpoint", asked.cell)
                }
                None => still.push(asked),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let names: Vec<&str> = still.iter().map(|w| w.cell.as_str()).collect();
            bail!("{}: no checkpoint within 15 minutes of asking; nothing shared", names.join(", "));
        }
        waiting = still;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A cell asked for a checkpoint, its log followed until the answer.
struct CheckpointAsked {
    cell: String,
    run: PathBuf,
    /// The command's id, as the log confirms it.
    id: String,
    log: crate::runlog::LogTail,
    answered: bool,
    /// The iteration of the checkpoint written after the command was confirmed.
    at: Option<u64>,
    /// Where the run stands paused (`attach`, p), as far as its log has been read.
    paused_at: Option<u64>,
}

impl CheckpointAsked {
    /// Reads what the log gained; the checkpoint's iteration once two steps past it are logged.
    /// A paused run logs no step until it is resumed: refused at once rather than waited for.
    fn poll(&mut self) -> Result<Option<u64>> {
        let mut read = crate::runlog::RunLog::default();
        self.log.poll(&mut read)?;
        for event in &read.events {
            // A run stopped while paused starts again unpaused, with no `Resumed`: a start or a
            // step says it trains.
            if matches!(event, Event::Resumed { .. } | Event::RunStarted { .. } | Event::Step(_)) {
                self.paused_at = None;
            }
            match event {
                Event::Paused { iter, .. } => self.paused_at = Some(*iter),
                Event::CommandReceived { id, ignored: Some(why), .. } if *id == self.id => {
                    bail!("{}: the checkpoint was not taken: {why}", self.cell)
                }
                Event::CommandReceived { id, .. } if *id == self.id => self.answered = true,
                Event::Checkpoint { iter, reason: CheckpointReason::Requested, .. } if self.answered => {
                    self.at.get_or_insert(*iter);
                }
                Event::Step(step) if self.at.is_some_and(|at| step.iter >= at + 2) => return Ok(self.at),
                _ => {}
            }
        }
        if let Some(iter) = self.paused_at {
            bail!(
                "{}: paused at iteration {}, so it logs no step past a checkpoint: resume it (`resnet-tui \
                 attach {}`, then p), or share without --now; nothing shared",
                self.cell,
                crate::format::group_digits(iter),
                self.run.display()
            );
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::in_later_part;

    #[test]
    fn a_cell_is_written_again_only_once_it_reaches_a_later_part_of_its_run() {
        // 64,000 iterations in quarters: parts begin at 16,000, 32,000 and 48,000.
        let later = |shared, now| in_later_part(shared, now, 64_000, 4);
        assert!(!later(0, 15_999), "still in the first quarter");
        assert!(later(0, 16_000));
        assert!(!later(13_871, 15_000));
        assert!(later(13_871, 24_000), "crossed 16,000: written, though only 10,129 on");
        assert!(!later(16_000, 31_999));
        assert!(later(44_183, 48_000));
        assert!(later(50_000, 64_000), "at its last iteration a run is past its last part");
        assert!(!later(30_000, 20_000), "never back to an older checkpoint");
        // One part: nothing in progress is written again; as many parts as iterations: any step on.
        assert!(!in_later_part(0, 63_999, 64_000, 1));
        assert!(in_later_part(10, 11, 64_000, 64_000));
        assert!(!in_later_part(10, 10, 64_000, 64_000));
    }
}
