//! The whole screen, drawn from the `App` and nothing else: header, charts, side panel, system
//! line, key bar, and the overlays (help, depth chooser, quit question, divergence).

use super::app::{App, Mode, Overlay};
use super::keys::{self, Scope};
use super::theme::Theme;
use crate::config::{Depth, Shortcut};
use crate::format::secs as format_secs;
use crate::frontend::history::RunState;
use crate::protocol::EndReason;
use crate::reference::paper_result;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, LineGauge, Paragraph, Wrap};

/// Below this the dashboard shows one line asking for a bigger terminal.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn view(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small: {}x{}, resnet-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT} (q quits)",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let [header, body, system, keybar] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0), Constraint::Length(1), Constraint::Length(1)])
            .areas(area);
    let side_width = (area.width * 3 / 10).clamp(34, 56);
    let [charts, side] = Layout::horizontal([Constraint::Min(0), Constraint::Length(side_width)]).areas(body);
    draw_header(frame, header, app);
    if app.runs.iter().all(|r| r.loss.is_empty()) {
        draw_waiting(frame, charts, app);
    } else {
        super::charts::draw(frame, charts, app);
    }
    super::panels::draw(frame, side, app);
    draw_system(frame, system, app);
    draw_keybar(frame, keybar, app);
    match app.overlay {
        Overlay::Help => draw_help(frame, body, app),
        Overlay::Confusion => super::confusion::draw_overlay(frame, body, app),
        Overlay::Responses => super::responses::draw_overlay(frame, body, app),
        Overlay::Chooser(selected) => draw_chooser(frame, body, app, selected),
        Overlay::ConfirmQuit => draw_confirm(frame, body, app),
        Overlay::None => draw_alert(frame, body, app),
    }
}

/// The state word of the header, with its style.
fn state(app: &App) -> (String, Style) {
    let t = &app.theme;
    if app.stopping {
        return ("stopping…".into(), t.warn());
    }
    let Some(run) = app.current() else {
        return ("starting".into(), t.muted());
    };
    if app.log_ended_unfinished(run) {
        return ("unfinished".into(), t.warn());
    }
    match (&run.history.state, app.pause_pending) {
        (RunState::Running | RunState::Starting, Some(true)) => ("pausing…".into(), t.warn()),
        (RunState::Paused, Some(false)) => ("resuming…".into(), t.warn()),
        (RunState::Starting, _) => ("starting".into(), t.muted()),
        (RunState::Running, _) => ("running".into(), t.good()),
        (RunState::Paused, _) => ("paused".into(), t.warn()),
        (RunState::Diverged { .. }, _) => ("diverged".into(), t.bad()),
        (RunState::Finished(EndReason::Completed), _) => ("finished".into(), t.good()),
        (RunState::Finished(EndReason::Stopped), _) => ("stopped".into(), t.warn()),
        (RunState::Finished(EndReason::Switched), _) => ("switched".into(), t.muted()),
        (RunState::Finished(EndReason::Diverged), _) => ("diverged".into(), t.bad()),
        (RunState::Failed, _) => ("failed".into(), t.bad()),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let [top, gauge, bottom] = Layout::vertical([Constraint::Length(1); 3]).areas(area);
    let t = &app.theme;
    let run = app.current();
    let mut spans = vec![Span::styled(" resnet-tui ", t.selected()), Span::raw(" ")];
    match app.mode {
        Mode::Replay => spans.push(Span::styled("replay ", t.warn())),
        Mode::Attached => spans.push(Span::styled("attached ", t.warn())),
        Mode::Live => {}
    }
    match run.and_then(|r| r.history.info.as_ref()) {
        Some(info) => {
            spans.push(Span::styled(info.config.network_name(), t.title()));
            spans.push(Span::raw(format!(
                " · {} · {} params · {} · ",
                info.name,
                crate::format::group_digits(info.params),
                info.device
            )));
        }
        None => spans.push(Span::raw("waiting for the run · ")),
    }
    let (word, style) = state(app);
    spans.push(Span::styled(word.to_uppercase(), style));
    // The headline: the error the paper reports is the final one; until then, the latest.
    if let Some(e) = run.and_then(|r| r.history.last_eval()) {
        let done = run.is_some_and(|r| r.history.end() == Some(EndReason::Completed));
        let which = if done { "final" } else { "latest" };
        let set = e.set.name();
        spans.push(Span::styled(format!(" · {set} error {:.2}% ({which})", e.error), t.title()));
    }
    if app.runs.len() > 1 {
        // The run named on the left is the current one (tab changes it); attached, the keys steer it.
        let which = match app.mode {
            Mode::Live => "",
            Mode::Attached => ", the keys steer this one",
            Mode::Replay => ", this one in front",
        };
        spans.push(Span::styled(format!(" · {} runs{which}", app.runs.len()), t.muted()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), top);

    let total = run.and_then(|r| r.total_iters()).unwrap_or(0);
    let step = run.and_then(|r| r.history.last_step);
    let iter = step.map(|s| s.iter).or(run.and_then(|r| r.history.info.as_ref().map(|i| i.start_iter))).unwrap_or(0);
    let ratio = if total > 0 { (iter as f64 / total as f64).clamp(0.0, 1.0) } else { 0.0 };
    let epoch = step.map(|s| format!(" · epoch {:.2}", s.epoch)).unwrap_or_default();
    let label = format!(
        "iter {}/{}{epoch} · {:.1}%",
        crate::format::group_digits(iter),
        if total > 0 { crate::format::group_digits(total) } else { "?".into() },
        ratio * 100.0
    );
    let gauge_widget = LineGauge::default()
        .ratio(ratio)
        .label(Span::styled(format!("{label} "), t.title()))
        .filled_style(t.gauge())
        .unfilled_style(t.faint());
    frame.render_widget(gauge_widget, gauge);

    let mut spans = Vec::new();
    if let Some(s) = step {
        // A log that stopped before its run did has no end to count down to.
        let eta = run
            .filter(|r| !app.log_ended_unfinished(r))
            .and_then(|r| r.history.eta_secs())
            .map(crate::format::eta)
            .unwrap_or_else(|| "-".into());
        spans.push(Span::raw(format!(
            "elapsed {} · ETA {eta} · {:.0} img/s · loss {:.3} · lr {}",
            format_secs(s.elapsed),
            s.images_per_sec,
            s.loss,
            super::charts::format_value(s.lr)
        )));
    }
    if let Some(p) = &app.playback {
        let speed = p.speed.map(|s| format!("{s}x recorded pace")).unwrap_or_else(|| "as fast as possible".into());
        let what = if p.paused {
            "playback paused".to_string()
        } else if p.at_end && p.following {
            "following the log".to_string()
        } else if p.at_end {
            "end of the log".to_string()
        } else {
            format!("playing {speed}")
        };
        spans.push(Span::styled(format!("  [{what} · {}/{} events]", p.played, p.total), t.warn()));
    }
    if let Some(status) =
        app.status.as_ref().filter(|_| step.is_none() || run.is_some_and(|r| r.history.state == RunState::Starting))
    {
        spans.push(Span::styled(format!("  {status}…"), t.warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), bottom);
}

/// Before the first step: what the trainer is busy with, in the middle of the chart area.
fn draw_waiting(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(" charts ", app.theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let what = app.status.clone().unwrap_or_else(|| match app.mode {
        Mode::Live => "starting the trainer".into(),
        Mode::Replay | Mode::Attached => "reading the logs".into(),
    });
    let lines = vec![
        Line::styled("waiting for the first training step", app.theme.title()),
        Line::raw(""),
        Line::styled(format!("{what}…"), app.theme.warn()),
    ];
    let [mid] = Layout::vertical([Constraint::Length(3)]).flex(ratatui::layout::Flex::Center).areas(inner);
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center), mid);
}

fn draw_system(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    // Replayed or attached, the process measured is this viewer, not the run's trainer.
    let who = if app.mode == Mode::Live { "process" } else { "this viewer" };
    let text = match &app.system {
        None => format!("{who}: measuring…"),
        Some(s) => {
            let mut text = format!("{who} cpu {:.0}% · memory {}", s.cpu_percent, crate::format::bytes(s.memory_bytes));
            if let Some((used, total)) = s.gpu_memory {
                text.push_str(&format!(
                    " · gpu memory {} / {}",
                    crate::format::bytes(used),
                    crate::format::bytes(total)
                ));
            } else if let Some(note) = &s.gpu_note {
                text.push_str(&format!(" · gpu memory: {note}"));
            }
            text
        }
    };
    frame.render_widget(Paragraph::new(Span::styled(text, t.muted())), area);
}

/// The active keys, from the same table that dispatches them.
fn draw_keybar(frame: &mut Frame, area: Rect, app: &App) {
    draw_keys(frame, area, &app.theme, &app.scopes(), app.overlay == Overlay::ConfirmQuit);
}

/// The key bar of any screen: the active keys with a short word each, from the key table.
pub(crate) fn draw_keys(frame: &mut Frame, area: Rect, t: &Theme, scopes: &[Scope], question: bool) {
    let mut spans = Vec::new();
    for b in keys::active(scopes) {
        let Some(short) = b.short else { continue };
        spans.push(Span::styled(b.label.to_string(), t.key()));
        spans.push(Span::raw(format!(" {short}  ")));
    }
    if question {
        spans.push(Span::raw("any other key cancels"));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A bordered box in the middle of `area`, cleared; returns its inside.
pub(crate) fn popup_box(frame: &mut Frame, area: Rect, width: u16, height: u16, title: &str, t: &Theme) -> Rect {
    let rect = area.centered(Constraint::Length(width.min(area.width)), Constraint::Length(height.min(area.height)));
    frame.render_widget(Clear, rect);
    let block = Block::bordered().title(Span::styled(format!(" {title} "), t.title()));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    inner
}

fn popup(frame: &mut Frame, area: Rect, width: u16, height: u16, title: &str, app: &App) -> Rect {
    popup_box(frame, area, width, height, title, &app.theme)
}

fn draw_help(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mode_scopes: &[Scope] = match app.mode {
        Mode::Live => &[
            Scope::Steering,
            Scope::Training,
            Scope::Diverged,
            Scope::Any,
            Scope::Chooser,
            Scope::Confirm,
            Scope::Stopping,
        ],
        Mode::Replay if app.runs.len() > 1 => &[Scope::Replay, Scope::Overlaid, Scope::Any],
        Mode::Replay => &[Scope::Replay, Scope::Any],
        Mode::Attached if app.runs.len() > 1 => {
            &[Scope::Steering, Scope::Attached, Scope::Overlaid, Scope::Any, Scope::ConfirmDetach]
        }
        Mode::Attached => &[Scope::Steering, Scope::Attached, Scope::Any, Scope::ConfirmDetach],
    };
    let mut lines = Vec::new();
    for scope in mode_scopes {
        let heading = match scope {
            Scope::Steering => "while training",
            Scope::Training => "while training here",
            Scope::Attached => "attached to a run started elsewhere",
            Scope::ConfirmDetach => "after q",
            Scope::Table => "table",
            Scope::Diverged => "after a divergence",
            Scope::Replay => "replay",
            Scope::Any => "always",
            Scope::Chooser => "depth chooser",
            Scope::Confirm => "quit question",
            Scope::Stopping => "while stopping",
            Scope::Help => "help",
            Scope::Overlaid => "several runs overlaid",
        };
        lines.push(Line::styled(heading, t.title()));
        for b in keys::active(&[*scope]) {
            lines.push(Line::from(vec![Span::styled(format!("  {:<9}", b.label), t.key()), Span::raw(b.help)]));
        }
    }
    let height = lines.len() as u16 + 2;
    let inner = popup(frame, area, 70, height, "keys (esc closes)", app);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_chooser(frame: &mut Frame, area: Rect, app: &App, selected: usize) {
    let t = &app.theme;
    let current = app.current().and_then(|r| r.depth());
    let shortcut = app.current().map(|r| r.shortcut()).unwrap_or_default();
    let family = shortcut.family();
    let from = current.map(|d| d.to_string()).unwrap_or_else(|| "?".into());
    let mut lines = vec![
        Line::raw(format!("From {family}-{from}: the run is checkpointed and closed; a new one starts.")),
        Line::raw(""),
    ];
    // Each depth's memory at this run's batch and precision, against what this process holds
    // plus what the machine has free (the trainer checks the same before it switches).
    let config = app.current().and_then(|r| r.history.info.as_ref()).map(|i| &i.config);
    let (batch, precision) = config.map(|c| (c.batch_size, c.precision)).unwrap_or((128, Default::default()));
    let cuda = app.current().and_then(|r| r.history.info.as_ref()).is_some_and(|i| i.device.gpu().is_some());
    let free = app.system.as_ref().and_then(|s| match (cuda, s.gpu_memory, s.available_bytes) {
        (true, Some((used, total)), _) => Some(total.saturating_sub(used)),
        (false, _, Some(available)) => Some(available + s.memory_bytes),
        _ => None,
    });
    for (i, &d) in Depth::PAPER.iter().enumerate() {
        let r = paper_result(d.get());
        let params = r.map(|r| crate::format::group_digits(r.params)).unwrap_or_default();
        // The paper's errors are its ResNets'; it gives no CIFAR figure for a plain net.
        let err = r.filter(|_| shortcut != Shortcut::None).map(|r| format!("{:.2}%", r.paper_error));
        let err = err.unwrap_or_else(|| "-".into());
        let grow = if current.is_none_or(|c| c.grow_to(shortcut, d).is_ok()) { "fresh or grow" } else { "fresh only" };
        let mark = if Some(d) == current { "·" } else { " " };
        let need = crate::memory::estimate(d, batch, precision, cuda);
        let need = need.device.unwrap_or(need.host);
        let fits = free.is_none_or(|f| need <= f);
        let memory = format!("{:>9}{}", crate::format::bytes(need), if fits { "" } else { " won't fit" });
        let text = format!("{mark} {family}-{:<5} {params:>11} params  paper {err:>6}  {memory:<19} {grow}", d.get());
        let style = match (i == selected, fits) {
            (true, _) => t.selected(),
            (false, false) => t.bad(),
            (false, true) => Style::new(),
        };
        lines.push(Line::styled(text, style));
    }
    lines.push(Line::raw(""));
    let mut keys_line = Vec::new();
    for b in keys::active(&[Scope::Chooser]) {
        keys_line.push(Span::styled(b.label.to_string(), t.key()));
        keys_line.push(Span::raw(format!(" {}  ", b.short.unwrap_or(b.help))));
    }
    lines.push(Line::from(keys_line));
    lines.push(Line::styled(
        "grow: the new blocks start as identities, so the deeper net computes the same function",
        t.muted(),
    ));
    let height = lines.len() as u16 + 2;
    let inner = popup(frame, area, 92, height, "switch depth", app);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn draw_confirm(frame: &mut Frame, area: Rect, app: &App) {
    if app.mode == Mode::Attached {
        let k = app.theme.key();
        let lines = vec![
            Line::raw("This run belongs to another process, which goes on training."),
            Line::raw(""),
            Line::from(vec![
                Span::styled("y", k),
                Span::raw(" stops the run (checkpoint first) · "),
                Span::styled("d", k),
                Span::raw(" or "),
                Span::styled("q", k),
                Span::raw(" leaves it running"),
            ]),
        ];
        let inner = popup(frame, area, 70, 5, "leave?", app);
        frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center), inner);
        return;
    }
    let lines = vec![
        Line::raw("The run is still going. Write a checkpoint, stop it and quit?"),
        Line::raw(""),
        Line::from(vec![
            Span::styled("y", app.theme.key()),
            Span::raw(" or "),
            Span::styled("q", app.theme.key()),
            Span::raw(" quits · any other key cancels"),
        ]),
    ];
    let inner = popup(frame, area, 66, 5, "quit?", app);
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center), inner);
}

/// A divergence or a fatal error: what happened and what the user can do now.
fn draw_alert(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    if let Some(message) = app.fatal() {
        let lines = vec![Line::styled(message.to_string(), t.bad()), Line::raw(""), Line::raw("q quits")];
        let inner = popup(frame, area, 70, 6, "error", app);
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
        return;
    }
    let Some(RunState::Diverged { iter, loss, last_good }) = app.current().map(|r| &r.history.state) else { return };
    if app.mode != Mode::Live || app.stopping {
        return;
    }
    let back = last_good
        .as_ref()
        .map(|p| format!("the last good checkpoint {}", p.display()))
        .unwrap_or_else(|| "a fresh start (no checkpoint yet)".into());
    let lines = vec![
        Line::styled(format!("Training diverged at iteration {iter}: the loss is {loss}."), t.bad()),
        Line::raw(""),
        Line::from(vec![Span::styled("r", t.key()), Span::raw(format!(" recovers from {back} at lr x0.1"))]),
        Line::from(vec![Span::styled("q", t.key()), Span::raw(" quits")]),
    ];
    let inner = popup(frame, area, 76, 7, "diverged", app);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}
