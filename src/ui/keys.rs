//! The key table: the one list that both dispatches key presses and writes the key bar and the
//! `?` help overlay, so what the screen promises is what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    TogglePause,
    Checkpoint,
    ChooseDepth,
    CycleSmoothing,
    ToggleLogLoss,
    CycleXAxis,
    Help,
    Quit,
    Recover,
    PlaybackPause,
    PlaybackFaster,
    PlaybackSlower,
    PlaybackStart,
    PlaybackEnd,
    ChooserUp,
    ChooserDown,
    ChooserFresh,
    ChooserGrow,
    ConfirmQuit,
    QuitNow,
    Close,
    /// Attached: leave the run, which goes on.
    Detach,
    /// Attached: ask the run to checkpoint and stop, then leave.
    StopRun,
    TableUp,
    TableDown,
    TableMark,
    TableOpen,
    /// Show the last evaluation's confusion matrix and misclassified images.
    Confusion,
    /// Show the newest evaluation's layer responses (the paper's Figure 7).
    Responses,
    /// Several runs overlaid: make the next one current (header, panels; attached: the keys steer it).
    NextRun,
}

/// When a binding is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Always, live or replay.
    Any,
    /// A run that is still training, live or attached: the keys that steer it.
    Steering,
    /// A live run of this process that is still training.
    Training,
    /// A run started elsewhere, followed through its log (`attach`, or opened from the table).
    Attached,
    /// The question after `q` in an attached run: stop it, or leave it running.
    ConfirmDetach,
    /// The table of runs.
    Table,
    /// A live run that diverged and waits to be recovered or stopped.
    Diverged,
    /// Playing recorded runs.
    Replay,
    /// The depth chooser is open.
    Chooser,
    /// The quit question is asked.
    Confirm,
    /// A live run was told to stop and writes its final checkpoint.
    Stopping,
    /// The help overlay is open.
    Help,
    /// Several runs overlaid (replayed or attached): one of them is current.
    Overlaid,
}

/// A key as the table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Enter,
    Esc,
    Up,
    Down,
    Home,
    End,
    Tab,
}

impl Key {
    fn matches(self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        match (self, event.code) {
            (Key::Char(c), KeyCode::Char(k)) => !ctrl && c == k,
            (Key::Ctrl(c), KeyCode::Char(k)) => ctrl && c.eq_ignore_ascii_case(&k),
            (Key::Enter, KeyCode::Enter) => true,
            (Key::Esc, KeyCode::Esc) => true,
            (Key::Up, KeyCode::Up) => true,
            (Key::Down, KeyCode::Down) => true,
            (Key::Home, KeyCode::Home) => true,
            (Key::End, KeyCode::End) => true,
            (Key::Tab, KeyCode::Tab) => true,
            _ => false,
        }
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written on screen.
    pub label: &'static str,
    /// The key bar's word for it; `None` keeps it to the help overlay.
    pub short: Option<&'static str>,
    pub help: &'static str,
    pub action: Action,
    pub scope: Scope,
}

const fn bind(
    keys: &'static [Key],
    label: &'static str,
    short: Option<&'static str>,
    help: &'static str,
    action: Action,
    scope: Scope,
) -> Binding {
    Binding { keys, label, short, help, action, scope }
}

use Action as A;
use Key as K;
use Scope as S;

/// Every key of the dashboard. Earlier entries win when two match in the active scopes.
pub const KEYS: &[Binding] = &[
    bind(
        &[K::Char('y'), K::Char('q'), K::Ctrl('c')],
        "y/q",
        Some("confirm"),
        "checkpoint the run and quit",
        A::ConfirmQuit,
        S::Confirm,
    ),
    bind(
        &[K::Ctrl('c')],
        "ctrl-c",
        Some("quit now"),
        "quit at once, without waiting for the final checkpoint",
        A::QuitNow,
        S::Stopping,
    ),
    bind(
        &[K::Char('y')],
        "y",
        Some("stop it"),
        "stop the run (it writes a checkpoint first) and leave",
        A::StopRun,
        S::ConfirmDetach,
    ),
    bind(
        &[K::Char('d'), K::Char('q'), K::Esc, K::Ctrl('c')],
        "d/q",
        Some("leave it running"),
        "leave the run, which goes on training",
        A::Detach,
        S::ConfirmDetach,
    ),
    bind(&[K::Up, K::Char('k')], "↑/k", None, "previous depth", A::ChooserUp, S::Chooser),
    bind(&[K::Down, K::Char('j')], "↓/j", None, "next depth", A::ChooserDown, S::Chooser),
    bind(
        &[K::Enter, K::Char('f')],
        "enter/f",
        Some("fresh"),
        "switch to a freshly initialised network",
        A::ChooserFresh,
        S::Chooser,
    ),
    bind(
        &[K::Char('g')],
        "g",
        Some("grow"),
        "grow the current network (new blocks start as identities)",
        A::ChooserGrow,
        S::Chooser,
    ),
    bind(&[K::Esc, K::Char('d'), K::Char('q')], "esc", Some("cancel"), "close the depth chooser", A::Close, S::Chooser),
    bind(&[K::Esc, K::Char('?'), K::Char('q')], "esc/?", Some("close"), "close this help", A::Close, S::Help),
    bind(
        &[K::Char(' '), K::Char('p')],
        "space/p",
        Some("pause"),
        "pause or resume training (at the next step)",
        A::TogglePause,
        S::Steering,
    ),
    bind(&[K::Char('c')], "c", Some("checkpoint"), "write a checkpoint now", A::Checkpoint, S::Steering),
    bind(
        &[K::Char('d')],
        "d",
        Some("depth"),
        "switch depth: fresh network or grown from this one",
        A::ChooseDepth,
        S::Training,
    ),
    bind(
        &[K::Char('r')],
        "r",
        Some("recover"),
        "go back to the last good checkpoint at lr x0.1",
        A::Recover,
        S::Diverged,
    ),
    bind(
        &[K::Char(' '), K::Char('p')],
        "space/p",
        Some("pause"),
        "pause or resume playback",
        A::PlaybackPause,
        S::Replay,
    ),
    bind(&[K::Char('+'), K::Char('=')], "+", Some("faster"), "play faster", A::PlaybackFaster, S::Replay),
    bind(
        &[K::Char('-')],
        "-",
        Some("slower"),
        "play slower (down to the recorded pace / 4)",
        A::PlaybackSlower,
        S::Replay,
    ),
    bind(&[K::Home, K::Char('0')], "home/0", Some("start"), "jump to the start", A::PlaybackStart, S::Replay),
    bind(&[K::End, K::Char('$')], "end/$", Some("end"), "jump to the end", A::PlaybackEnd, S::Replay),
    bind(
        &[K::Esc, K::Ctrl('c')],
        "esc",
        Some("leave"),
        "leave the run, which goes on training (back to the table)",
        A::Detach,
        S::Attached,
    ),
    bind(&[K::Up, K::Char('k')], "↑/k", None, "previous line", A::TableUp, S::Table),
    bind(&[K::Down, K::Char('j')], "↓/j", None, "next line", A::TableDown, S::Table),
    bind(&[K::Char(' ')], "space", Some("mark"), "mark a run, to open several overlaid", A::TableMark, S::Table),
    bind(
        &[K::Enter],
        "enter",
        Some("open"),
        "open the marked runs, else the selected run or row, in the dashboard",
        A::TableOpen,
        S::Table,
    ),
    bind(&[K::Char('?')], "?", Some("help"), "show this help", A::Help, S::Table),
    bind(&[K::Char('q'), K::Ctrl('c')], "q", Some("quit"), "quit the table", A::Quit, S::Table),
    bind(
        &[K::Tab],
        "tab",
        Some("next run"),
        "bring the next overlaid run forward; attached: steer it",
        A::NextRun,
        S::Overlaid,
    ),
    bind(&[K::Char('s')], "s", Some("smooth"), "cycle the smoothing of training curves", A::CycleSmoothing, S::Any),
    bind(&[K::Char('l')], "l", Some("log"), "linear or log scale for the loss", A::ToggleLogLoss, S::Any),
    bind(&[K::Char('x')], "x", Some("x-axis"), "x axis: iterations, epochs, training time", A::CycleXAxis, S::Any),
    bind(&[K::Char('m')], "m", None, "confusion matrix and misclassified images", A::Confusion, S::Any),
    bind(&[K::Char('v')], "v", None, "layer responses, by layer and sorted (Figure 7)", A::Responses, S::Any),
    bind(&[K::Char('?')], "?", Some("help"), "show this help", A::Help, S::Any),
    bind(
        &[K::Char('q'), K::Ctrl('c')],
        "q",
        Some("quit"),
        "quit (a running run is checkpointed first)",
        A::Quit,
        S::Any,
    ),
];

/// The action for a key press in the given scopes; releases and repeats do nothing.
pub fn lookup(event: &KeyEvent, active: &[Scope]) -> Option<Action> {
    if event.kind != KeyEventKind::Press {
        return None;
    }
    KEYS.iter()
        .filter(|b| active.contains(&b.scope))
        .find(|b| b.keys.iter().any(|k| k.matches(event)))
        .map(|b| b.action)
}

/// The bindings active in these scopes, in table order.
pub fn active(scopes: &[Scope]) -> impl Iterator<Item = &'static Binding> + '_ {
    KEYS.iter().filter(move |b| scopes.contains(&b.scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn releases_are_ignored_and_scopes_decide() {
        let mut release = press(KeyCode::Char('p'));
        release.kind = KeyEventKind::Release;
        assert_eq!(lookup(&release, &[Scope::Training]), None);
        assert_eq!(lookup(&press(KeyCode::Char('p')), &[Scope::Steering, Scope::Any]), Some(Action::TogglePause));
        assert_eq!(lookup(&press(KeyCode::Char('p')), &[Scope::Replay, Scope::Any]), Some(Action::PlaybackPause));
        assert_eq!(lookup(&press(KeyCode::Char('c')), &[Scope::Replay, Scope::Any]), None);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(&ctrl_c, &[Scope::Training, Scope::Any]), Some(Action::Quit));
        // Attached: ctrl-c leaves the run going, and q asks first.
        assert_eq!(lookup(&ctrl_c, &[Scope::Steering, Scope::Attached, Scope::Any]), Some(Action::Detach));
        assert_eq!(lookup(&press(KeyCode::Char('q')), &[Scope::Attached, Scope::Any]), Some(Action::Quit));
        assert_eq!(lookup(&press(KeyCode::Char('d')), &[Scope::Steering, Scope::Attached, Scope::Any]), None);
        assert_eq!(lookup(&press(KeyCode::Char(' ')), &[Scope::Table]), Some(Action::TableMark));
        assert_eq!(lookup(&ctrl_c, &[Scope::Stopping, Scope::Any]), Some(Action::QuitNow));
        assert_eq!(lookup(&press(KeyCode::Char('q')), &[Scope::Stopping, Scope::Any]), Some(Action::Quit));
        assert_eq!(lookup(&press(KeyCode::Tab), &[Scope::Steering, Scope::Attached, Scope::Any]), None);
        assert_eq!(lookup(&press(KeyCode::Tab), &[Scope::Overlaid, Scope::Any]), Some(Action::NextRun));
    }
}
