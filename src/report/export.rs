//! `resnet-tui export RUN --csv FILE`: every step and evaluation of a run as one CSV row each,
//! for spreadsheets and pandas.

use crate::cli::ExportArgs;
use crate::frontend::history::{History, Record};
use anyhow::{Context, Result};
use std::io::Write;

/// Columns every row has; evaluations add one error column per class after these.
pub const COLUMNS: [&str; 10] =
    ["kind", "iter", "epoch", "elapsed", "time", "loss", "error", "lr", "images_per_sec", "eval_set"];

/// The export command: the curves as CSV, the weights for PyTorch, or both.
pub fn run(args: &ExportArgs) -> Result<()> {
    if let Some(out) = &args.pytorch {
        pytorch(&args.run, out, args.best)?;
    }
    if let Some(csv) = &args.csv {
        curves(args, csv)?;
    }
    if let Some(dir) = &args.tensorboard {
        tensorboard(&args.run, dir)?;
    }
    if let Some(dir) = &args.share {
        super::share::share(&args.run, dir)?;
    }
    Ok(())
}

/// `export RUN --tensorboard DIR`: the run's curves (superseded steps left out) and config as one
/// TensorBoard event file.
fn tensorboard(run: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let log = crate::report::load(run)?;
    let history = History::from_events(&log.events);
    let info = history.info.as_ref().with_context(|| format!("{}: the run never started", run.display()))?;
    let mut w = crate::tensorboard::EventWriter::create(dir)?;
    let first = log.events.first().map(|e| e.time()).unwrap_or(0.0);
    w.started(first, 0, &info.config, &info.classes)?;
    for record in history.records() {
        match record {
            Record::Step(s) => w.step(s)?,
            Record::Eval(e) => w.eval(e)?,
        }
    }
    w.flush()?;
    eprintln!(
        "wrote {} steps and {} evaluations to {} (tensorboard --logdir {})",
        history.steps.len(),
        history.evals.len(),
        w.path().display(),
        dir.display()
    );
    Ok(())
}

/// `export RUN --pytorch FILE`: the newest (or best) checkpoint's weights in PyTorch's names.
fn pytorch(run: &std::path::Path, out: &std::path::Path, best: bool) -> Result<()> {
    use crate::train::checkpoint;
    let dir = run.join(crate::rundir::CHECKPOINT_DIR);
    // The newest periodic or final checkpoint; a run shipped with its best one only exports that.
    let newest = checkpoint::list_periodic(&dir).pop().map(|(_, p)| p);
    let best_file = dir.join(checkpoint::BEST_NAME);
    let path = match (best, newest) {
        (false, Some(p)) => p,
        _ if best_file.is_file() => best_file,
        _ => anyhow::bail!("{}: no checkpoint to export (is it a run directory?)", run.display()),
    };
    let ck = checkpoint::read(&path)?;
    let c = &ck.state.config;
    let tensors = crate::interchange::to_pytorch(&ck.model, c.depth, c.shortcut, ck.state.iter)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    crate::interchange::write(out, &tensors)?;
    eprintln!(
        "wrote {} at iteration {} ({}) to {} in PyTorch's names",
        c.network_name(),
        ck.state.iter,
        path.display(),
        out.display()
    );
    Ok(())
}

fn curves(args: &ExportArgs, csv: &std::path::Path) -> Result<()> {
    let log = crate::report::load(&args.run)?;
    let history = History::from_events(&log.events);
    let file = std::fs::File::create(csv).with_context(|| format!("{}: cannot create", csv.display()))?;
    let rows =
        write(&history, std::io::BufWriter::new(file)).with_context(|| format!("{}: cannot write", csv.display()))?;
    eprintln!("wrote {rows} rows to {}", csv.display());
    Ok(())
}

/// Writes the header and one row per step and evaluation, in log order (superseded ones left
/// out, as in the run's curves). Returns the number of rows.
pub fn write<W: Write>(history: &History, out: W) -> Result<usize> {
    let classes = class_names(history);
    let mut w = csv::Writer::from_writer(out);
    let header = COLUMNS.iter().map(|c| c.to_string()).chain(classes.iter().map(|c| format!("error_{c}")));
    w.write_record(header.collect::<Vec<_>>())?;
    let empty = || std::iter::repeat_n(String::new(), classes.len());
    let mut rows = 0;
    for record in history.records() {
        match record {
            Record::Step(s) => {
                let fixed = [
                    "step".to_string(),
                    s.iter.to_string(),
                    s.epoch.to_string(),
                    s.elapsed.to_string(),
                    s.time.to_string(),
                    s.loss.to_string(),
                    s.error.to_string(),
                    s.lr.to_string(),
                    s.images_per_sec.to_string(),
                    String::new(),
                ];
                w.write_record(fixed.into_iter().chain(empty()))?;
            }
            Record::Eval(e) => {
                let fixed = [
                    "eval".to_string(),
                    e.iter.to_string(),
                    e.epoch.to_string(),
                    e.elapsed.to_string(),
                    e.time.to_string(),
                    e.loss.to_string(),
                    e.error.to_string(),
                    String::new(),
                    e.images_per_sec.to_string(),
                    e.set.name().to_string(),
                ];
                let per_class =
                    (0..classes.len()).map(|i| e.class_errors.get(i).map(|v| v.to_string()).unwrap_or_default());
                w.write_record(fixed.into_iter().chain(per_class))?;
            }
        }
        rows += 1;
    }
    w.flush()?;
    Ok(rows)
}

/// The run's class names, or `class0`.. when its start was not recorded.
fn class_names(history: &History) -> Vec<String> {
    match &history.info {
        Some(info) if !info.classes.is_empty() => info.classes.clone(),
        _ => {
            let n = history.evals.iter().map(|e| e.class_errors.len()).max().unwrap_or(0);
            (0..n).map(|i| format!("class{i}")).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, started, step};

    #[test]
    fn steps_and_evaluations_interleave_by_iteration() {
        let h = History::from_events(&[started(20, 0), step(1, 90.0), step(2, 80.0), eval(2, 70.0), step(3, 60.0)]);
        let mut out = Vec::new();
        assert_eq!(write(&h, &mut out).unwrap(), 4);
        let text = String::from_utf8(out).unwrap();
        let kinds: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(kinds, ["step", "step", "eval", "step"]);
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        assert_eq!(header.len(), COLUMNS.len() + 10);
        assert_eq!(header[COLUMNS.len()], "error_class0");
    }
}
