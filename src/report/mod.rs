//! Reports on recorded runs, read from their logs: summary tables (of runs, and of a sweep as the
//! paper's table, both written by `tabular`), plotted curves (`plot`, and the paper's `figures`,
//! both drawn with `kit`), CSV exports.

pub mod export;
pub mod figures;
mod kit;
pub mod plot;
pub mod share;
pub mod summary;
pub mod table;
mod tabular;

use crate::runlog::{self, LogError, RunLog};
use std::path::Path;

/// How many skipped-line warnings are printed per log before they are only counted: a badly
/// damaged log should not bury the report under thousands of lines.
const MAX_WARNINGS: usize = 5;

/// Reads a run log (or a run directory's log), insisting it is one, and prints on stderr which
/// lines were skipped.
pub fn load(run: &Path) -> Result<RunLog, LogError> {
    let log = runlog::read_strict(run)?;
    let path = runlog::log_path(run);
    for warning in log.warnings.iter().take(MAX_WARNINGS) {
        eprintln!("resnet-tui: warning: {}: {warning}", path.display());
    }
    if log.warnings.len() > MAX_WARNINGS {
        eprintln!("resnet-tui: warning: {}: {} more lines skipped", path.display(), log.warnings.len() - MAX_WARNINGS);
    }
    Ok(log)
}

/// A name for a run whose log has no `run_started` (killed before it began): its directory's
/// name, or the file's when the log is not in a run directory.
pub fn fallback_name(run: &Path) -> String {
    let path = runlog::log_path(run);
    let packed = format!("{}.gz", runlog::LOG_NAME);
    let in_run = path.file_name().is_some_and(|n| n == runlog::LOG_NAME || *n == *packed);
    let named = if in_run { path.parent() } else { Some(&*path) };
    named
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
