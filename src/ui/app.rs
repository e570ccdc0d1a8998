//! The dashboard's state and the only code that changes it: `App::update` folds a message (an
//! event from the trainer or the replay, a key, a signal, a system sample) into the state and
//! queues effects (commands for the trainer, playback controls) for the loop to carry out.

use super::keys::{self, Action, Scope};
use super::runs::{RunState, RunView};
use super::theme::Theme;
use crate::cli::MarkerArg;
use crate::protocol::{CheckpointReason, Command, EndReason, Envelope, Event, FinalCheckpoint, RunId, SwitchMode};
use crate::reference::PAPER_DEPTHS;
use crossterm::event::KeyEvent;
use std::collections::VecDeque;

/// Where the events come from; decides which keys are active, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Replay,
}

/// The smoothing weights `s` cycles through (per training step, as TensorBoard's slider).
pub const SMOOTHING: [f64; 4] = [0.0, 0.6, 0.9, 0.99];
const DEFAULT_SMOOTHING: usize = 2;
/// Lines kept in the recent-events list.
const EVENT_LINES: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    Iterations,
    Epochs,
    Time,
}

impl XAxis {
    fn next(self) -> XAxis {
        match self {
            XAxis::Iterations => XAxis::Epochs,
            XAxis::Epochs => XAxis::Time,
            XAxis::Time => XAxis::Iterations,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            XAxis::Iterations => "iteration",
            XAxis::Epochs => "epoch",
            XAxis::Time => "training time",
        }
    }
}

/// What covers the screen's middle, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    /// The depth chooser, with the highlighted entry of `PAPER_DEPTHS`.
    Chooser(usize),
    ConfirmQuit,
}

/// How a line of the event list reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Warn,
    Bad,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventLine {
    /// Unix seconds (the event's own time), or `None` for lines of the dashboard itself.
    pub time: Option<f64>,
    pub text: String,
    pub tone: Tone,
}

/// Process figures sampled off the UI thread.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemSample {
    /// Percent of one core (can pass 100 with several threads).
    pub cpu_percent: f32,
    pub memory_bytes: u64,
    /// GPU memory used and total, in bytes, when the run is on CUDA and it could be read.
    pub gpu_memory: Option<(u64, u64)>,
    /// Why there is no GPU figure on a CUDA run.
    pub gpu_note: Option<String>,
}

/// Where a replay stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlaybackStatus {
    /// Times the recorded pace; `None` is as fast as possible.
    pub speed: Option<f64>,
    pub paused: bool,
    /// Every event read so far has been played.
    pub at_end: bool,
    pub following: bool,
    /// Events played over events read.
    pub played: usize,
    pub total: usize,
}

pub enum Msg {
    Event(Envelope),
    Key(KeyEvent),
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// The event source has ended (the trainer thread is gone).
    SourceClosed,
    System(SystemSample),
    Playback(PlaybackStatus),
    /// A line to show in the event list (replay warnings, for instance).
    Warning(String),
}

/// Playback controls for the replay player.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playback {
    TogglePause,
    Faster,
    Slower,
    Start,
    End,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Send(Command),
    Playback(Playback),
}

pub struct App {
    pub mode: Mode,
    pub theme: Theme,
    pub marker: MarkerArg,
    /// Runs in the order they appeared; the last one is the current one.
    pub runs: Vec<RunView>,
    /// The newest status message (what the trainer is busy with before the first step).
    pub status: Option<String>,
    pub events: VecDeque<EventLine>,
    pub smoothing: usize,
    pub log_loss: bool,
    pub x_axis: XAxis,
    pub overlay: Overlay,
    /// A pause (true) or resume (false) was asked for and not yet confirmed by the trainer.
    pub pause_pending: Option<bool>,
    /// Stop was sent; the dashboard quits when the trainer has ended.
    pub stopping: bool,
    /// A second stop request while stopping: quit at once, without waiting for the trainer.
    pub interrupted: bool,
    pub source_closed: bool,
    pub fatal: Option<String>,
    /// Whether each live run's final checkpoint was written (as `--no-ui` tracks it).
    pub final_checkpoint: FinalCheckpoint,
    pub system: Option<SystemSample>,
    pub playback: Option<PlaybackStatus>,
    quit: bool,
    effects: Vec<Effect>,
}

impl App {
    pub fn new(mode: Mode, theme: Theme, marker: MarkerArg) -> App {
        App {
            mode,
            theme,
            marker,
            runs: Vec::new(),
            status: None,
            events: VecDeque::new(),
            smoothing: DEFAULT_SMOOTHING,
            log_loss: false,
            x_axis: XAxis::Iterations,
            overlay: Overlay::None,
            pause_pending: None,
            stopping: false,
            interrupted: false,
            source_closed: false,
            fatal: None,
            final_checkpoint: FinalCheckpoint::default(),
            system: None,
            playback: None,
            quit: false,
            effects: Vec::new(),
        }
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Takes the effects queued by `update` calls so far.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn current(&self) -> Option<&RunView> {
        self.runs.last()
    }

    pub fn smoothing_weight(&self) -> f64 {
        SMOOTHING[self.smoothing]
    }

    /// The process exit code once the dashboard closes, as `--no-ui`'s: 130 when quit without
    /// waiting for the trainer, 1 after a fatal error, 3 when the last run diverged and was not
    /// recovered, 4 when a run ended without its final checkpoint, 0 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            return crate::signals::EXIT_INTERRUPTED;
        }
        if self.fatal.is_some() && self.mode == Mode::Live {
            return 1;
        }
        match self.current().map(|r| &r.state) {
            Some(RunState::Diverged { .. }) if self.mode == Mode::Live => crate::headless::EXIT_DIVERGED,
            _ if self.mode == Mode::Live && self.final_checkpoint.missing.is_some() => {
                crate::headless::EXIT_FINAL_CHECKPOINT_FAILED
            }
            _ => 0,
        }
    }

    /// The key scopes active now, most specific first.
    pub fn scopes(&self) -> Vec<Scope> {
        match self.overlay {
            Overlay::Help => return vec![Scope::Help],
            Overlay::Chooser(_) => return vec![Scope::Chooser],
            Overlay::ConfirmQuit => return vec![Scope::Confirm],
            Overlay::None => {}
        }
        let mut scopes = Vec::new();
        match self.mode {
            Mode::Replay => scopes.push(Scope::Replay),
            Mode::Live if self.source_closed => {}
            Mode::Live if self.stopping => scopes.push(Scope::Stopping),
            Mode::Live => match self.current().map(|r| &r.state) {
                Some(RunState::Diverged { .. }) => scopes.push(Scope::Diverged),
                None => scopes.push(Scope::Training),
                Some(_) if self.current().is_some_and(|r| r.is_active()) => scopes.push(Scope::Training),
                Some(_) => {}
            },
        }
        scopes.push(Scope::Any);
        scopes
    }

    pub fn update(&mut self, msg: Msg) {
        match msg {
            Msg::Event(envelope) => self.on_event(envelope),
            Msg::Key(key) => {
                if let Some(action) = keys::lookup(&key, &self.scopes()) {
                    self.on_action(action);
                } else if self.overlay == Overlay::ConfirmQuit && key.kind == crossterm::event::KeyEventKind::Press {
                    // Any other key answers "no".
                    self.overlay = Overlay::None;
                    self.note("quit cancelled", Tone::Info);
                }
            }
            Msg::Signal => {
                if self.running() {
                    self.note("signal received: checkpointing and quitting (ctrl-c again quits at once)", Tone::Warn);
                    self.stop();
                } else if self.mode == Mode::Live && self.stopping && !self.source_closed {
                    self.quit_at_once();
                } else {
                    self.quit = true;
                }
            }
            Msg::SourceClosed => {
                self.source_closed = true;
                self.pause_pending = None;
                if self.mode == Mode::Live && self.fatal.is_none() {
                    let unfinished = self.current().is_some_and(|r| r.is_active());
                    if unfinished && !self.stopping {
                        self.fatal = Some("the trainer ended without finishing the run".into());
                    }
                }
                if self.stopping {
                    self.quit = true;
                }
                if self.overlay == Overlay::ConfirmQuit || matches!(self.overlay, Overlay::Chooser(_)) {
                    self.overlay = Overlay::None;
                }
            }
            Msg::System(sample) => self.system = Some(sample),
            Msg::Playback(status) => self.playback = Some(status),
            Msg::Warning(text) => self.note(text, Tone::Warn),
        }
    }

    /// A live run is still going: quitting must checkpoint and stop it first.
    fn running(&self) -> bool {
        self.mode == Mode::Live && !self.source_closed && !self.stopping && self.current().is_none_or(|r| r.is_active())
    }

    /// The user will not wait for the final checkpoint: the loop ends and the process exits
    /// without joining the trainer.
    fn quit_at_once(&mut self) {
        self.interrupted = true;
        self.quit = true;
    }

    fn stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.effects.push(Effect::Send(Command::Stop));
        }
        self.overlay = Overlay::None;
    }

    fn on_action(&mut self, action: Action) {
        match action {
            Action::TogglePause => {
                let paused = self.current().is_some_and(|r| r.state == RunState::Paused);
                let want_pause = match self.pause_pending {
                    Some(p) => !p,
                    None => !paused,
                };
                self.pause_pending = Some(want_pause);
                self.effects.push(Effect::Send(if want_pause { Command::Pause } else { Command::Resume }));
            }
            Action::Checkpoint => {
                self.effects.push(Effect::Send(Command::Checkpoint));
                self.note("checkpoint requested (written at the next step)", Tone::Info);
            }
            Action::ChooseDepth => {
                let depth = self.current().and_then(|r| r.depth()).unwrap_or(20);
                let next = PAPER_DEPTHS.iter().position(|&d| d > depth).unwrap_or(0);
                self.overlay = Overlay::Chooser(next);
            }
            Action::CycleSmoothing => self.smoothing = (self.smoothing + 1) % SMOOTHING.len(),
            Action::ToggleLogLoss => self.log_loss = !self.log_loss,
            Action::CycleXAxis => self.x_axis = self.x_axis.next(),
            Action::Help => self.overlay = Overlay::Help,
            Action::Close => self.overlay = Overlay::None,
            Action::Quit => {
                if self.running() {
                    self.overlay = Overlay::ConfirmQuit;
                } else if self.mode == Mode::Live && !self.source_closed && !self.stopping {
                    // Diverged or finished but the trainer still waits: tell it to end.
                    self.stop();
                    self.quit = true;
                } else {
                    self.quit = true;
                }
            }
            Action::ConfirmQuit => {
                self.note("checkpointing and quitting… (ctrl-c again quits at once)", Tone::Info);
                self.stop();
            }
            Action::QuitNow => self.quit_at_once(),
            Action::Recover => {
                self.effects.push(Effect::Send(Command::Recover { lr_factor: 0.1 }));
                self.note("recovering from the last good checkpoint at lr x0.1…", Tone::Info);
            }
            Action::ChooserUp | Action::ChooserDown => {
                if let Overlay::Chooser(i) = self.overlay {
                    let n = PAPER_DEPTHS.len();
                    let i = if action == Action::ChooserUp { (i + n - 1) % n } else { (i + 1) % n };
                    self.overlay = Overlay::Chooser(i);
                }
            }
            Action::ChooserFresh | Action::ChooserGrow => {
                if let Overlay::Chooser(i) = self.overlay {
                    let depth = PAPER_DEPTHS[i];
                    let mode = if action == Action::ChooserGrow { SwitchMode::Grow } else { SwitchMode::Fresh };
                    let current = self.current().and_then(|r| r.depth()).unwrap_or(0);
                    if mode == SwitchMode::Grow && depth <= current {
                        self.note(
                            format!("cannot grow ResNet-{current} into ResNet-{depth}: pick a deeper one"),
                            Tone::Warn,
                        );
                        return;
                    }
                    self.overlay = Overlay::None;
                    self.effects.push(Effect::Send(Command::SwitchDepth { depth, mode }));
                    let how = if mode == SwitchMode::Grow { "grown from this one" } else { "fresh" };
                    self.note(format!("switching to ResNet-{depth} ({how})…"), Tone::Info);
                }
            }
            Action::PlaybackPause => self.effects.push(Effect::Playback(Playback::TogglePause)),
            Action::PlaybackFaster => self.effects.push(Effect::Playback(Playback::Faster)),
            Action::PlaybackSlower => self.effects.push(Effect::Playback(Playback::Slower)),
            Action::PlaybackEnd => self.effects.push(Effect::Playback(Playback::End)),
            Action::PlaybackStart => {
                // The player starts over; forget what it played.
                self.runs.clear();
                self.events.clear();
                self.status = None;
                self.effects.push(Effect::Playback(Playback::Start));
            }
        }
    }

    fn run_mut(&mut self, id: RunId) -> &mut RunView {
        let index = match self.runs.iter().position(|r| r.id == id) {
            Some(i) => i,
            None => {
                self.runs.push(RunView::new(id));
                self.runs.len() - 1
            }
        };
        &mut self.runs[index]
    }

    fn on_event(&mut self, Envelope { run, event }: Envelope) {
        let time = Some(event.time());
        let line = |text: String, tone: Tone| EventLine { time, text, tone };
        let mut lines = Vec::new();
        let lost_final = if self.mode == Mode::Live { self.final_checkpoint.see(&event) } else { None };
        match &event {
            Event::RunStarted { run: info, .. } => {
                let text = if let Some(from) = &info.grown_from {
                    format!("started ResNet-{} grown from {from}", info.config.depth)
                } else if info.start_iter > 0 {
                    format!("resumed {} at iteration {}", info.name, info.start_iter)
                } else {
                    format!("started ResNet-{} in {}", info.config.depth, info.dir.display())
                };
                lines.push(line(text, Tone::Good));
                self.status = None;
                // A run seen again moves to the end: it is the current one.
                if let Some(i) = self.runs.iter().position(|r| r.id == run) {
                    let view = self.runs.remove(i);
                    self.runs.push(view);
                }
            }
            Event::Status { message, .. } => {
                self.status = Some(message.clone());
                lines.push(line(message.clone(), Tone::Info));
            }
            Event::Step { .. } => self.status = None,
            Event::Eval { iter, set, error, .. } => {
                let best = self.runs.iter().find(|r| r.id == run).and_then(|r| r.best).is_none_or(|(b, _)| *error < b);
                let mark = if best { " (best)" } else { "" };
                lines.push(line(format!("iter {iter}: {} error {error:.2}%{mark}", set_name(*set)), Tone::Info));
            }
            Event::Checkpoint { path, reason, .. } => {
                if *reason != CheckpointReason::Best {
                    let why = format!("{reason:?}").to_lowercase();
                    lines.push(line(format!("checkpoint ({why}): {}", path.display()), Tone::Good));
                }
            }
            Event::Paused { iter, .. } => {
                self.pause_pending = None;
                lines.push(line(format!("paused at iteration {iter}"), Tone::Warn));
            }
            Event::Resumed { iter, .. } => {
                self.pause_pending = None;
                lines.push(line(format!("resumed at iteration {iter}"), Tone::Good));
            }
            Event::Diverged { iter, loss, .. } => {
                self.pause_pending = None;
                lines.push(line(format!("diverged at iteration {iter}: loss {loss}"), Tone::Bad));
            }
            Event::Finished { summary, .. } => {
                self.pause_pending = None;
                let why = match summary.reason {
                    EndReason::Completed => "completed",
                    EndReason::Stopped => "stopped",
                    EndReason::Switched => "closed for a depth switch",
                    EndReason::Diverged => "ended: diverged",
                };
                let err = summary.final_error.map(|e| format!(", final error {e:.2}%")).unwrap_or_default();
                lines.push(line(format!("run {why} after {} iterations{err}", summary.iters), Tone::Good));
            }
            Event::Error { message, fatal, .. } => {
                if *fatal {
                    self.fatal = Some(message.clone());
                }
                lines.push(line(message.clone(), if *fatal { Tone::Bad } else { Tone::Warn }));
            }
        }
        // After the run's end line: the warning before it said why the write failed.
        if let Some(iter) = lost_final {
            let text =
                format!("final checkpoint (iteration {iter}) not written: resume continues from the newest on disk");
            lines.push(line(text, Tone::Bad));
        }
        let view = self.run_mut(run);
        view.apply(&event);
        // Overlaid replays interleave their logs: say whose line it is.
        let tag = view.depth().map(|d| format!("R{d} #{run}: ")).unwrap_or_default();
        let overlaid = self.mode == Mode::Replay && self.runs.len() > 1;
        for mut l in lines {
            if overlaid {
                l.text.insert_str(0, &tag);
            }
            self.push_line(l);
        }
    }

    fn note(&mut self, text: impl Into<String>, tone: Tone) {
        self.push_line(EventLine { time: None, text: text.into(), tone });
    }

    fn push_line(&mut self, line: EventLine) {
        if self.events.len() == EVENT_LINES {
            self.events.pop_front();
        }
        self.events.push_back(line);
    }
}

pub fn set_name(set: crate::protocol::EvalSet) -> &'static str {
    match set {
        crate::protocol::EvalSet::Test => "test",
        crate::protocol::EvalSet::Validation => "validation",
    }
}
