//! The side panel: the run's recipe, best and last numbers and checkpoint; the per-class errors
//! of the last evaluation; the list of recent events.

use super::app::{App, EventLine};
use crate::format::group_digits;
use crate::frontend::describe::Tone;
use crate::protocol::{Precision, Shortcut};
use crate::reference::paper_result_for;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// Height of the run block (borders included).
const RUN_HEIGHT: u16 = 10;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    // The class list folds into two columns when the screen is short.
    let class_height = if area.height >= RUN_HEIGHT + 12 + 6 { 12 } else { 7 };
    // The most confused pairs, under the classes, when there is room for them and the events.
    let pairs = super::confusion::pair_lines(app);
    let pairs_height = if !pairs.is_empty() && area.height >= RUN_HEIGHT + class_height + 5 + 6 { 5 } else { 0 };
    let [run, classes, confused, events] = Layout::vertical([
        Constraint::Length(RUN_HEIGHT),
        Constraint::Length(class_height),
        Constraint::Length(pairs_height),
        Constraint::Min(0),
    ])
    .areas(area);
    draw_run(frame, run, app);
    draw_classes(frame, classes, app);
    if pairs_height > 0 {
        let block = Block::bordered().title(Span::styled(" most confused (m: matrix) ", app.theme.title()));
        frame.render_widget(Paragraph::new(pairs).block(block), confused);
    }
    draw_events(frame, events, app);
}

fn kv<'a>(app: &App, key: &'a str, value: String) -> Line<'a> {
    Line::from(vec![Span::styled(format!("{key:<7}"), app.theme.muted()), Span::raw(value)])
}

fn draw_run(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(" run ", app.theme.title()));
    let Some(run) = app.current() else {
        frame.render_widget(Paragraph::new("no run yet").style(app.theme.muted()).block(block), area);
        return;
    };
    let mut lines = Vec::new();
    if let Some(info) = &run.history.info {
        let c = &info.config;
        lines.push(kv(app, "recipe", format!("lr {} mom {} wd {:e}", c.lr, c.momentum, c.weight_decay)));
        let milestones: Vec<String> =
            c.milestones.iter().map(|&m| crate::format::iteration_label(m as f64, m as f64)).collect();
        let warmup = c.warmup.map(|w| format!(" warm {}@{}", w.iters, w.lr)).unwrap_or_default();
        // Only the unusual precision is named: fp32 is what the paper trained in.
        let precision = if c.precision == Precision::Bf16 { " · bf16" } else { "" };
        let shortcut = match c.shortcut {
            Shortcut::A => "A",
            Shortcut::B => "B",
            Shortcut::None => "no shortcuts",
        };
        lines.push(kv(
            app,
            "",
            format!("batch {} · {shortcut}{precision} · lr/10 at {}{warmup}", c.batch_size, milestones.join(",")),
        ));
        let plain = crate::reference::plain_reproduction(c.depth.get()).filter(|_| c.shortcut == Shortcut::None);
        let refs = match (paper_result_for(c.depth.get(), c.shortcut == Shortcut::None), plain) {
            (Some(r), _) => {
                let reimpl = r.reimpl_error.map(|e| format!(" · reimpl {e:.2}%")).unwrap_or_default();
                format!("{:.2}%{reimpl}", r.paper_error)
            }
            (None, Some(r)) => format!(
                "none for plain nets · {} {:.2}% (train {:.2}%)",
                crate::reference::DEGRADATION_SOURCE,
                r.test_error,
                r.train_error
            ),
            (None, None) if c.shortcut == Shortcut::None => "none for plain nets".into(),
            (None, None) => "no reference for this depth".into(),
        };
        lines.push(kv(app, "paper", refs));
    }
    let best = run.history.best().map(|(e, i)| format!("{e:.2}% at iter {i}")).unwrap_or_else(|| "-".into());
    lines.push(Line::from(vec![
        Span::styled(format!("{:<7}", "best"), app.theme.muted()),
        Span::styled(best, app.theme.good()),
    ]));
    let last = run
        .history
        .last_eval()
        .map(|e| format!("{:.2}% {} (loss {:.3}) at {}", e.error, e.set.name(), e.loss, e.iter))
        .unwrap_or_else(|| "-".into());
    lines.push(kv(app, "last", last));
    let ckpt = run
        .history
        .last_checkpoint
        .as_ref()
        .map(|(p, i)| format!("{} @ {i}", p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()))
        .unwrap_or_else(|| "none yet".into());
    lines.push(kv(app, "ckpt", ckpt));
    if let Some(h) = &run.history.last_health {
        lines.push(kv(app, "health", format!("|grad| {:.3} · |w| {:.1} @ {}", h.grad_norm, h.weight_norm, h.iter)));
    }
    if let Some(info) = &run.history.info {
        lines.push(kv(
            app,
            "data",
            format!(
                "{} train · {} {}",
                group_digits(info.train_images as u64),
                group_digits(info.eval_images as u64),
                info.eval_set.name()
            ),
        ));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_classes(frame: &mut Frame, area: Rect, app: &App) {
    let run = app.current();
    let eval = run.and_then(|r| r.history.last_eval());
    let title = match eval {
        Some(e) => format!(" {} error by class (iter {}) ", e.set.name(), e.iter),
        None => " error by class ".to_string(),
    };
    let block = Block::bordered().title(Span::styled(title, app.theme.title()));
    let Some(eval) = eval else {
        frame.render_widget(Paragraph::new("after the first evaluation").style(app.theme.muted()).block(block), area);
        return;
    };
    let classes: Vec<String> = run
        .and_then(|r| r.history.info.as_ref())
        .map(|i| i.classes.clone())
        .unwrap_or_else(|| (0..eval.class_errors.len()).map(|i| format!("class {i}")).collect());
    // The three worst classes stand out: the ones the network still confuses.
    let mut order: Vec<usize> = (0..eval.class_errors.len()).collect();
    order.sort_by(|&a, &b| eval.class_errors[b].total_cmp(&eval.class_errors[a]));
    let worst: Vec<usize> = order.into_iter().take(3).collect();
    let style = |i: usize| if worst.contains(&i) { app.theme.warn() } else { Style::new() };
    let inner = block.inner(area);
    let rows = inner.height as usize;
    let n = eval.class_errors.len();
    let mut lines: Vec<Line> = Vec::new();
    if rows >= n {
        let bar_width = (inner.width as usize).saturating_sub(18);
        for (i, e) in eval.class_errors.iter().enumerate() {
            let name = classes.get(i).map(String::as_str).unwrap_or("?");
            let filled = ((e / 100.0).clamp(0.0, 1.0) * bar_width as f64).round() as usize;
            lines.push(Line::from(vec![
                Span::styled(format!("{name:<10.10} {e:>5.1}% "), style(i)),
                Span::styled("█".repeat(filled), app.theme.run(0)),
            ]));
        }
    } else {
        // Two columns: class i beside class i + half.
        let half = n.div_ceil(2);
        let col = (inner.width as usize).saturating_sub(1) / 2;
        for i in 0..half {
            let mut spans = Vec::new();
            for j in [i, i + half] {
                if let (Some(e), Some(name)) = (eval.class_errors.get(j), classes.get(j)) {
                    let cell = format!("{:<w$.w$}{e:>5.1}", name, w = col.saturating_sub(6).max(3));
                    spans.push(Span::styled(format!("{cell:<col$} "), style(j)));
                }
            }
            lines.push(Line::from(spans));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_events(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(Span::styled(" events ", app.theme.title()));
    let inner = block.inner(area);
    let rows = inner.height as usize;
    let width = (inner.width as usize).saturating_sub(TIME_WIDTH).max(8);
    // Newest at the bottom; long lines (paths) wrap under their text rather than being cut.
    let mut lines: Vec<Line> = Vec::new();
    for l in app.events.iter().rev() {
        if lines.len() >= rows {
            break;
        }
        let mut wrapped = event_lines(app, l, width);
        wrapped.append(&mut lines);
        lines = wrapped;
    }
    let skip = lines.len().saturating_sub(rows);
    frame.render_widget(Paragraph::new(lines.split_off(skip)).block(block), area);
}

/// Width of the time column of the event list.
const TIME_WIDTH: usize = 9;

fn event_lines(app: &App, line: &EventLine, width: usize) -> Vec<Line<'static>> {
    let time = line
        .time
        .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M:%S ").to_string())
        .unwrap_or_else(|| " ".repeat(TIME_WIDTH));
    let style = match line.tone {
        Tone::Info => Style::new(),
        Tone::Good => app.theme.good(),
        Tone::Warn => app.theme.warn(),
        Tone::Bad => app.theme.bad(),
    };
    wrap(&line.text, width)
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let lead =
                if i == 0 { Span::styled(time.clone(), app.theme.muted()) } else { Span::raw(" ".repeat(TIME_WIDTH)) };
            Line::from(vec![lead, Span::styled(part, style)])
        })
        .collect()
}

/// Splits text into pieces of at most `width` characters, at a space or a `/` where one is near.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > width {
        // A space may sit just past the width (it is dropped); a `/` stays on its line.
        let cut = rest[..=width]
            .iter()
            .enumerate()
            .rposition(|(j, &c)| c == ' ' || (c == '/' && j < width))
            .filter(|&i| i > width / 2)
            .map(|i| if rest[i] == ' ' { i } else { i + 1 })
            .unwrap_or(width);
        out.push(rest[..cut].iter().collect::<String>().trim_end().to_string());
        rest = rest[cut..].to_vec();
        while rest.first() == Some(&' ') {
            rest.remove(0);
        }
    }
    out.push(rest.into_iter().collect());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrapping_keeps_every_piece_within_the_width() {
        let text = "checkpoint (final): /tmp/shot-runs/20261128-052628-resnet20/checkpoints/iter-00000500.safetensors";
        let parts = super::wrap(text, 37);
        assert!(parts.iter().all(|p| p.chars().count() <= 37), "{parts:?}");
        assert_eq!(parts.concat().replace(' ', ""), text.replace(' ', ""));
        assert!(parts[0].ends_with("shot-runs/"), "{parts:?}");
    }
}
