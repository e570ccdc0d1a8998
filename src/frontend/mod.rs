//! What every front end derives from a run's events, written once below them all: the run's
//! history (`history`), the one line that says each event (`describe`), and how a watched session
//! ends: its exit status and the line that explains it (`outcome`); a run's values as bounded curves,
//! downsampled alike for every picture of them (`series`). The dashboard, headless mode,
//! replay and the reports say the same thing about the same run because they use these; the
//! table of many runs (`board`) folds those histories into the paper's table.
pub mod board;
pub mod describe;
pub mod history;
pub mod outcome;
pub mod series;
