//! The table screen's state and the only code that changes it: `TableApp::update` folds what the
//! board's collector read, a key, a queue report or a signal into it and queues effects (open
//! runs in the dashboard, stop the local queue) for the loop to carry out. It reads no file:
//! the collector's thread does.

use crate::executor::local::QueueEvent;
use crate::frontend::board::{Board, Change};
use crate::ui::keys::{self, Action, Scope};
use crate::ui::theme::Theme;
use crossterm::event::{KeyEvent, KeyEventKind};
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;

/// Lines kept of what the queue and the table said.
const NOTE_LINES: usize = 50;

/// One selectable line of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableLine {
    /// A row of the paper's table (index into `Board::rows`).
    Row(usize),
    /// One run of it (index into `Board::runs`).
    Run(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOverlay {
    None,
    Help,
    /// q while the local queue runs: stop its runs (each checkpoints) and quit?
    ConfirmStop,
}

pub enum TableMsg {
    /// What the board's collector found in the logs and locks since its last batch.
    Board(Vec<Change>),
    Key(KeyEvent),
    Queue(QueueEvent),
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TableEffect {
    /// Open these runs in the dashboard, overlaid, following their logs.
    Open(Vec<PathBuf>),
    /// Stop the local queue's runs (each writes a checkpoint); pending cells stay pending.
    StopQueue,
}

pub struct TableApp {
    pub board: Board,
    pub theme: Theme,
    pub lines: Vec<TableLine>,
    pub selected: usize,
    /// Runs marked to open together (indices into `Board::runs`).
    pub marked: BTreeSet<usize>,
    pub notes: VecDeque<String>,
    pub overlay: TableOverlay,
    /// A local queue runs in this process (`sweep run`): quitting stops its runs.
    pub queue: bool,
    /// The queue has started or skipped every cell and every run has ended.
    pub drained: bool,
    quit: bool,
    effects: Vec<TableEffect>,
}

impl TableApp {
    pub fn new(board: Board, theme: Theme, queue: bool) -> TableApp {
        let mut app = TableApp {
            board,
            theme,
            lines: Vec::new(),
            selected: 0,
            marked: BTreeSet::new(),
            notes: VecDeque::new(),
            overlay: TableOverlay::None,
            queue,
            drained: false,
            quit: false,
            effects: Vec::new(),
        };
        app.relayout();
        app
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    pub fn take_effects(&mut self) -> Vec<TableEffect> {
        std::mem::take(&mut self.effects)
    }

    pub fn scopes(&self) -> Vec<Scope> {
        match self.overlay {
            TableOverlay::Help => vec![Scope::Help],
            TableOverlay::ConfirmStop => vec![Scope::Confirm],
            TableOverlay::None => vec![Scope::Table],
        }
    }

    pub fn update(&mut self, msg: TableMsg) {
        match msg {
            TableMsg::Board(changes) => {
                if self.board.apply_all(changes) {
                    self.relayout();
                }
            }
            TableMsg::Key(key) => {
                if let Some(action) = keys::lookup(&key, &self.scopes()) {
                    self.on_action(action);
                } else if self.overlay == TableOverlay::ConfirmStop && key.kind == KeyEventKind::Press {
                    self.overlay = TableOverlay::None;
                    self.note("quit cancelled".into());
                }
            }
            TableMsg::Queue(event) => {
                match &event {
                    QueueEvent::Drained => self.drained = true,
                    QueueEvent::FailedToStart { cell, why } => self.board.failed_to_start(cell, why.clone()),
                    _ => {}
                }
                self.note(event.line(&self.board.dir));
            }
            TableMsg::Signal => self.quit_or_ask(true),
        }
    }

    fn on_action(&mut self, action: Action) {
        match action {
            Action::TableUp => self.selected = self.selected.saturating_sub(1),
            Action::TableDown => self.selected = (self.selected + 1).min(self.lines.len().saturating_sub(1)),
            Action::TableMark => {
                if let Some(TableLine::Run(i)) = self.lines.get(self.selected).copied()
                    && !self.marked.remove(&i)
                {
                    self.marked.insert(i);
                }
            }
            Action::TableOpen => self.open(),
            Action::Help => self.overlay = TableOverlay::Help,
            Action::Close => self.overlay = TableOverlay::None,
            Action::Quit => self.quit_or_ask(false),
            Action::ConfirmQuit => {
                self.overlay = TableOverlay::None;
                self.effects.push(TableEffect::StopQueue);
                self.quit = true;
            }
            _ => {}
        }
    }

    /// Quits; with runs of the local queue still going, asks first (a signal does not ask).
    fn quit_or_ask(&mut self, signal: bool) {
        if self.queue && !self.drained {
            if signal || self.overlay == TableOverlay::ConfirmStop {
                self.effects.push(TableEffect::StopQueue);
                self.quit = true;
            } else {
                self.overlay = TableOverlay::ConfirmStop;
            }
        } else {
            self.quit = true;
        }
    }

    /// Opens the marked runs, else the selected run, else the selected row's runs: those that
    /// have a log to follow.
    fn open(&mut self) {
        let runs: Vec<usize> = if !self.marked.is_empty() {
            self.marked.iter().copied().collect()
        } else {
            match self.lines.get(self.selected) {
                Some(TableLine::Run(i)) => vec![*i],
                Some(TableLine::Row(r)) => self.board.rows().get(*r).map(|row| row.runs.clone()).unwrap_or_default(),
                None => Vec::new(),
            }
        };
        let (started, waiting): (Vec<usize>, Vec<usize>) =
            runs.into_iter().partition(|&i| self.board.runs[i].history.info.is_some());
        if !waiting.is_empty() {
            let names: Vec<&str> = waiting.iter().map(|&i| self.board.runs[i].member.name.as_str()).collect();
            self.note(format!("not started yet, nothing to show: {}", names.join(", ")));
        }
        if !started.is_empty() {
            let dirs = started.iter().map(|&i| self.board.runs[i].member.dir.clone()).collect();
            self.effects.push(TableEffect::Open(dirs));
            self.marked.clear();
        }
    }

    fn note(&mut self, line: String) {
        if self.notes.len() == NOTE_LINES {
            self.notes.pop_front();
        }
        self.notes.push_back(line);
    }

    /// One line per row, each followed by its runs.
    fn relayout(&mut self) {
        let selected = self.lines.get(self.selected).copied();
        self.lines.clear();
        for (r, row) in self.board.rows().iter().enumerate() {
            self.lines.push(TableLine::Row(r));
            self.lines.extend(row.runs.iter().map(|&i| TableLine::Run(i)));
        }
        self.selected = selected
            .and_then(|s| self.lines.iter().position(|l| *l == s))
            .unwrap_or(self.selected)
            .min(self.lines.len().saturating_sub(1));
    }
}
