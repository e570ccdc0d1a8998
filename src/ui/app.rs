//! The dashboard's state and the only code that changes it: `App::update` folds a message (an
//! event from the trainer or the replay, a key, a signal, a system sample) into the state and
//! queues effects (commands for the trainer, playback controls) for the loop to carry out.

use super::keys::{self, Action, Scope};
use super::runs::RunView;
use super::theme::{Marker, Theme};
use crate::config::Depth;
use crate::frontend::describe::{Tone, describe};
use crate::frontend::history::RunState;
use crate::frontend::outcome::{ExitStatus, Outcome, final_missing_note};
use crate::protocol::{Command, Envelope, Event, RunId, SwitchMode};
use crossterm::event::KeyEvent;
use std::collections::VecDeque;

/// Where the events come from; decides which keys are active, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Replay,
    /// A run started elsewhere, followed through its log and steered through command files.
    Attached,
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
    /// The depth chooser, with the highlighted entry of `Depth::PAPER`.
    Chooser(usize),
    ConfirmQuit,
    /// The last evaluation's confusion matrix and a few misclassified images.
    Confusion,
    /// The newest evaluation's layer responses (Figure 7).
    Responses,
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
    /// Memory this process could still take (`memory::room_beside`), for the depth chooser's estimates.
    pub available_bytes: Option<u64>,
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
    /// A resumed run's events from its log, before this session started it: folded into its
    /// curves and history, without lines of their own or a say in how the session ends.
    Past(RunId, Vec<Event>),
    Key(KeyEvent),
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// The event source has ended (the trainer thread is gone).
    SourceClosed,
    System(SystemSample),
    Playback(PlaybackStatus),
    /// A line to show in the event list (replay warnings, for instance).
    Warning(String),
    /// The pixels of misclassified images asked for with `Effect::LoadImages`, or why not.
    Images(Result<Vec<(u32, Vec<u8>)>, crate::data::cifar::DataError>),
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
    /// A command for run `to` (the current one; `None` before any run has started).
    Send {
        to: Option<RunId>,
        command: Command,
    },
    Playback(Playback),
    /// Read these images of the evaluated split from the data set's files.
    LoadImages {
        data_dir: std::path::PathBuf,
        set: crate::protocol::EvalSet,
        val_split: usize,
        indices: Vec<u32>,
    },
}

pub struct App {
    pub mode: Mode,
    pub theme: Theme,
    pub marker: Marker,
    /// Runs in the order they appeared; the last one is the current one unless `chosen` says.
    pub runs: Vec<RunView>,
    /// The run made current with tab among overlaid ones (replayed or attached).
    chosen: Option<RunId>,
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
    /// Attached: the run told to stop, whose end (not another overlaid run's) ends the watching.
    stopped_run: Option<RunId>,
    pub source_closed: bool,
    /// How the live session ends, folded from its events as `--no-ui` folds them; a second stop
    /// request while stopping sets `interrupted` (quit at once, without waiting for the trainer).
    pub outcome: Outcome,
    pub system: Option<SystemSample>,
    pub playback: Option<PlaybackStatus>,
    /// Replayed runs whose log was found to end before the run did (said once each).
    unfinished_noted: Vec<RunId>,
    /// Pixels of the misclassified images the confusion overlay shows, by index in the split.
    pub images: Vec<(u32, Vec<u8>)>,
    /// Why they could not be read (a replay on a machine without the data set).
    pub images_note: Option<String>,
    quit: bool,
    effects: Vec<Effect>,
}

impl App {
    pub fn new(mode: Mode, theme: Theme, marker: Marker) -> App {
        App {
            mode,
            theme,
            marker,
            runs: Vec::new(),
            chosen: None,
            status: None,
            events: VecDeque::new(),
            smoothing: DEFAULT_SMOOTHING,
            log_loss: false,
            x_axis: XAxis::Iterations,
            overlay: Overlay::None,
            pause_pending: None,
            stopping: false,
            stopped_run: None,
            source_closed: false,
            outcome: Outcome::default(),
            system: None,
            playback: None,
            unfinished_noted: Vec::new(),
            images: Vec::new(),
            images_note: None,
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

    /// The run the header and panels describe and the steering keys reach: the one chosen with
    /// tab, else the newest.
    pub fn current(&self) -> Option<&RunView> {
        self.chosen.and_then(|id| self.runs.iter().find(|r| r.id == id)).or(self.runs.last())
    }

    /// Several recorded or attached runs are shown together (a live session's earlier depths do
    /// not count: only its newest run is still going).
    pub fn overlaid(&self) -> bool {
        self.mode != Mode::Live && self.runs.len() > 1
    }

    pub fn smoothing_weight(&self) -> f64 {
        SMOOTHING[self.smoothing]
    }

    /// How the session ends once the dashboard closes: as `--no-ui` would for a live run; a
    /// replay only reports a quit without waiting.
    pub fn exit_status(&self) -> ExitStatus {
        match self.mode {
            Mode::Live => self.outcome.status(),
            Mode::Replay if self.outcome.interrupted => ExitStatus::Interrupted,
            Mode::Replay | Mode::Attached => ExitStatus::Success,
        }
    }

    /// The fatal error that ended the session (or the recorded run), shown over the charts.
    pub fn fatal(&self) -> Option<&str> {
        self.outcome.fatal.as_deref()
    }

    /// The key scopes active now, most specific first.
    pub fn scopes(&self) -> Vec<Scope> {
        match self.overlay {
            Overlay::Help | Overlay::Confusion | Overlay::Responses => return vec![Scope::Help],
            Overlay::Chooser(_) => return vec![Scope::Chooser],
            Overlay::ConfirmQuit if self.mode == Mode::Attached => return vec![Scope::ConfirmDetach],
            Overlay::ConfirmQuit => return vec![Scope::Confirm],
            Overlay::None => {}
        }
        let mut scopes = Vec::new();
        match self.mode {
            Mode::Replay => scopes.push(Scope::Replay),
            Mode::Attached => {
                if !self.stopping && self.current().is_some_and(|r| r.history.is_active()) {
                    scopes.push(Scope::Steering);
                }
                scopes.push(Scope::Attached);
            }
            Mode::Live if self.source_closed => {}
            Mode::Live if self.stopping => scopes.push(Scope::Stopping),
            Mode::Live => match self.current().map(|r| &r.history.state) {
                Some(RunState::Diverged { .. }) => scopes.push(Scope::Diverged),
                None => scopes.extend([Scope::Steering, Scope::Training]),
                Some(_) if self.current().is_some_and(|r| r.history.is_active()) => {
                    scopes.extend([Scope::Steering, Scope::Training])
                }
                Some(_) => {}
            },
        }
        if self.overlaid() {
            scopes.push(Scope::Overlaid);
        }
        scopes.push(Scope::Any);
        scopes
    }

    pub fn update(&mut self, msg: Msg) {
        match msg {
            Msg::Event(envelope) => self.on_event(envelope),
            Msg::Past(run, events) => self.on_past(run, &events),
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
                if self.mode == Mode::Attached {
                    // The run is another process's: a signal here only ends the watching.
                    self.quit = true;
                } else if self.running() {
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
                // After a stop request the trainer's end is expected, its summary or not.
                if self.mode == Mode::Live && !self.stopping {
                    self.outcome.source_closed();
                }
                if self.stopping {
                    self.quit = true;
                }
                if self.overlay == Overlay::ConfirmQuit || matches!(self.overlay, Overlay::Chooser(_)) {
                    self.overlay = Overlay::None;
                }
            }
            Msg::System(sample) => self.system = Some(sample),
            Msg::Playback(status) => {
                self.playback = Some(status);
                self.note_unfinished_runs();
            }
            Msg::Warning(text) => self.note(text, Tone::Warn),
            Msg::Images(Ok(images)) => {
                self.images = images;
                self.images_note = None;
            }
            Msg::Images(Err(why)) => self.images_note = Some(why.to_string()),
        }
    }

    /// A replay has played the whole of a log (not followed) that leaves `run` still going: the
    /// process was killed, or trains it still. Either way "running" would be the log's word,
    /// not the run's.
    pub fn log_ended_unfinished(&self, run: &RunView) -> bool {
        self.mode == Mode::Replay
            && self.playback.as_ref().is_some_and(|p| p.at_end && !p.following)
            && run.history.is_active()
    }

    /// Says once per run, when the replay reaches the end of its log, that the run did not end
    /// there, and what a user can do about it.
    fn note_unfinished_runs(&mut self) {
        let ended: Vec<(RunId, String, u64)> = self
            .runs
            .iter()
            .filter(|r| self.log_ended_unfinished(r) && !self.unfinished_noted.contains(&r.id))
            .map(|r| {
                let name = r.history.info.as_ref().map(|i| i.name.clone()).unwrap_or_else(|| format!("run {}", r.id));
                (r.id, name, r.history.iters())
            })
            .collect();
        for (id, name, iter) in ended {
            self.unfinished_noted.push(id);
            self.note(
                format!(
                    "{name}: the log ends at iteration {} without the run's end: it was killed \
                     (`resnet-tui resume` continues it) or is still training (`replay --follow` follows it)",
                    crate::format::group_digits(iter)
                ),
                Tone::Warn,
            );
        }
    }

    /// A live run is still going: quitting must checkpoint and stop it first.
    fn running(&self) -> bool {
        self.mode == Mode::Live
            && !self.source_closed
            && !self.stopping
            && self.current().is_none_or(|r| r.history.is_active())
    }

    /// The user will not wait for the final checkpoint: the loop ends and the process exits
    /// without joining the trainer.
    fn quit_at_once(&mut self) {
        self.outcome.interrupted = true;
        self.quit = true;
    }

    /// Queues a command for the current run.
    fn send(&mut self, command: Command) {
        let to = self.current().map(|r| r.id);
        self.effects.push(Effect::Send { to, command });
    }

    fn stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.send(Command::Stop);
        }
        self.overlay = Overlay::None;
    }

    fn on_action(&mut self, action: Action) {
        match action {
            Action::TogglePause => self.toggle_pause(),
            Action::Checkpoint => {
                self.send(Command::Checkpoint);
                self.note("checkpoint requested (written at the next step)", Tone::Info);
            }
            Action::ChooseDepth => {
                let depth = self.current().and_then(|r| r.depth()).unwrap_or(Depth::PAPER[0]);
                let next = Depth::PAPER.iter().position(|&d| d > depth).unwrap_or(0);
                self.overlay = Overlay::Chooser(next);
            }
            Action::CycleSmoothing => self.smoothing = (self.smoothing + 1) % SMOOTHING.len(),
            Action::ToggleLogLoss => self.log_loss = !self.log_loss,
            Action::CycleXAxis => self.x_axis = self.x_axis.next(),
            Action::Help => self.overlay = Overlay::Help,
            Action::Confusion => {
                self.overlay = Overlay::Confusion;
                self.request_images();
            }
            Action::Responses => self.overlay = Overlay::Responses,
            Action::Close => self.overlay = Overlay::None,
            Action::Quit => self.ask_to_quit(),
            Action::Detach => self.quit = true,
            Action::StopRun => self.stop_run(),
            Action::TableUp | Action::TableDown | Action::TableMark | Action::TableOpen => {}
            Action::NextRun => self.next_run(),
            Action::ConfirmQuit => {
                self.note("checkpointing and quitting… (ctrl-c again quits at once)", Tone::Info);
                self.stop();
            }
            Action::QuitNow => self.quit_at_once(),
            Action::Recover => {
                self.send(Command::Recover { lr_factor: 0.1 });
                self.note("recovering from the last good checkpoint at lr x0.1…", Tone::Info);
            }
            Action::ChooserUp => self.move_chooser(-1),
            Action::ChooserDown => self.move_chooser(1),
            Action::ChooserFresh => self.switch_depth(SwitchMode::Fresh),
            Action::ChooserGrow => self.switch_depth(SwitchMode::Grow),
            Action::PlaybackPause => self.effects.push(Effect::Playback(Playback::TogglePause)),
            Action::PlaybackFaster => self.effects.push(Effect::Playback(Playback::Faster)),
            Action::PlaybackSlower => self.effects.push(Effect::Playback(Playback::Slower)),
            Action::PlaybackEnd => self.effects.push(Effect::Playback(Playback::End)),
            Action::PlaybackStart => self.restart_playback(),
        }
    }

    fn toggle_pause(&mut self) {
        let paused = self.current().is_some_and(|r| r.history.state == RunState::Paused);
        let want_pause = match self.pause_pending {
            Some(p) => !p,
            None => !paused,
        };
        self.pause_pending = Some(want_pause);
        self.send(if want_pause { Command::Pause } else { Command::Resume });
    }

    /// `q`: asks first while a run trains; an attached dashboard leaves the run training.
    fn ask_to_quit(&mut self) {
        if self.mode == Mode::Attached {
            if self.current().is_some_and(|r| r.history.is_active()) && !self.stopping {
                self.overlay = Overlay::ConfirmQuit;
            } else {
                self.quit = true;
            }
        } else if self.running() {
            self.overlay = Overlay::ConfirmQuit;
        } else if self.mode == Mode::Live && !self.source_closed && !self.stopping {
            // Diverged or finished but the trainer still waits: tell it to end.
            self.stop();
            self.quit = true;
        } else {
            self.quit = true;
        }
    }

    /// An attached dashboard's `s`: the run writes a checkpoint and ends.
    fn stop_run(&mut self) {
        self.overlay = Overlay::None;
        self.stopping = true;
        self.stopped_run = self.current().map(|r| r.id);
        self.send(Command::Stop);
        self.note("stop sent: the run writes a checkpoint and ends (esc leaves without waiting)", Tone::Info);
    }

    /// Moves the depth chooser's cursor by `by` (wrapping).
    fn move_chooser(&mut self, by: isize) {
        if let Overlay::Chooser(i) = self.overlay {
            let n = Depth::PAPER.len() as isize;
            self.overlay = Overlay::Chooser((i as isize + by).rem_euclid(n) as usize);
        }
    }

    /// Switches the run to the depth under the chooser's cursor, fresh or grown from this one.
    fn switch_depth(&mut self, mode: SwitchMode) {
        if let Overlay::Chooser(i) = self.overlay {
            let depth = Depth::PAPER[i];
            if mode == SwitchMode::Grow
                && let Some(Err(e)) = self.current().and_then(|r| Some(r.depth()?.grow_to(r.shortcut(), depth)))
            {
                self.note(e.to_string(), Tone::Warn);
                return;
            }
            self.overlay = Overlay::None;
            self.send(Command::SwitchDepth { depth, mode });
            let how = if mode == SwitchMode::Grow { "grown from this one" } else { "fresh" };
            let name = crate::config::network_name(depth, self.current().map(|r| r.shortcut()).unwrap_or_default());
            self.note(format!("switching to {name} ({how})…"), Tone::Info);
        }
    }

    /// The player starts over; forget what it played, and the run tab chose.
    fn restart_playback(&mut self) {
        self.runs.clear();
        self.chosen = None;
        self.unfinished_noted.clear();
        self.events.clear();
        self.status = None;
        self.effects.push(Effect::Playback(Playback::Start));
    }

    /// Tab among overlaid runs: the next one in order of appearance becomes current. A pause
    /// asked of the one before is no longer this header's to show.
    fn next_run(&mut self) {
        let Some(i) = self.current().and_then(|c| self.runs.iter().position(|r| r.id == c.id)) else { return };
        let next = &self.runs[(i + 1) % self.runs.len()];
        let id = next.id;
        let name = next.history.info.as_ref().map(|info| info.name.clone()).unwrap_or_else(|| format!("run {id}"));
        self.chosen = Some(id);
        self.pause_pending = None;
        let what = if self.mode == Mode::Attached { "the keys steer" } else { "in front:" };
        self.note(format!("{what} {name}"), Tone::Info);
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
        let mut lines = Vec::new();
        // Replays show a recorded fatal error too; only a live run's lost checkpoint is news.
        let lost_final = self.outcome.see(&event).filter(|_| self.mode == Mode::Live);
        match &event {
            Event::RunStarted { .. } => {
                self.status = None;
                // A run seen again moves to the end: it is the current one, unless tab chose one.
                if let Some(i) = self.runs.iter().position(|r| r.id == run) {
                    let view = self.runs.remove(i);
                    self.runs.push(view);
                }
            }
            Event::Status { message, .. } => self.status = Some(message.clone()),
            Event::Step(_) => self.status = None,
            // The pending pause is the current run's: another overlaid run's answer is not it.
            Event::Paused { .. } | Event::Resumed { .. } | Event::Diverged { .. } => {
                if self.current().is_none_or(|r| r.id == run) {
                    self.pause_pending = None;
                }
            }
            Event::Finished { .. } => {
                if self.current().is_none_or(|r| r.id == run) {
                    self.pause_pending = None;
                }
                // Attached and asked to stop: the run has, so there is nothing left to watch.
                if self.mode == Mode::Attached && self.stopping && self.stopped_run.is_none_or(|id| id == run) {
                    self.quit = true;
                }
            }
            Event::Eval(_)
            | Event::Health(_)
            | Event::Checkpoint { .. }
            | Event::WarmupEnded { .. }
            | Event::ConfigChanged { .. }
            | Event::CommandReceived { .. }
            | Event::Error { .. } => {}
        }
        let view = self.run_mut(run);
        if let Some(said) = describe(&event, &view.history) {
            lines.push(EventLine { time, text: said.text, tone: said.tone });
        }
        // After the run's end line: the warning before it said why the write failed.
        if let Some(iter) = lost_final {
            lines.push(EventLine { time, text: final_missing_note(iter), tone: Tone::Bad });
        }
        view.apply(&event);
        // Overlaid replays interleave their logs: say whose line it is.
        let tag = view.depth().map(|d| format!("R{d} #{run}: ")).unwrap_or_default();
        if matches!(event, Event::Eval(_)) && self.overlay == Overlay::Confusion {
            self.request_images();
        }
        let overlaid = self.overlaid();
        for mut l in lines {
            if overlaid {
                l.text.insert_str(0, &tag);
            }
            self.push_line(l);
        }
    }

    fn on_past(&mut self, run: RunId, events: &[Event]) {
        let view = self.run_mut(run);
        for event in events {
            view.apply(event);
        }
        let h = &view.history;
        let best = h
            .best()
            .map(|(e, i)| format!(", best {e:.2}% at iteration {}", crate::format::group_digits(i)))
            .unwrap_or_default();
        let text = format!(
            "earlier in this run (from its log): {} start{}, {} evaluations{best}",
            h.starts,
            if h.starts == 1 { "" } else { "s" },
            h.evals.len()
        );
        self.note(text, Tone::Info);
    }

    /// Asks the loop for the pixels of the current run's last misclassified examples.
    fn request_images(&mut self) {
        let Some(run) = self.current() else { return };
        let (Some(info), Some(eval)) = (run.history.info.as_ref(), run.history.last_eval()) else { return };
        let indices: Vec<u32> = eval.misclassified.iter().map(|m| m.index).collect();
        if indices.is_empty() || self.images.iter().map(|i| i.0).eq(indices.iter().copied()) {
            return;
        }
        let effect = Effect::LoadImages {
            data_dir: info.config.data_dir.clone(),
            set: eval.set,
            val_split: info.config.val_split,
            indices,
        };
        self.effects.push(effect);
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
