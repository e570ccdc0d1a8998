//! What the network confuses: the most confused pairs of the last evaluation (side panel), and on
//! `m` its whole confusion matrix with a few misclassified images drawn in half-block characters
//! (two pixels a cell: the upper one as the foreground of `▀`, the lower as its background).

use super::app::App;
use crate::confusion_matrix::top_pairs;
use crate::protocol::EvalRecord;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

/// Pairs listed in the side panel and highlighted in the matrix.
const TOP: usize = 3;
const SIDE: usize = 32;

fn class_names(app: &App, n: usize) -> Vec<String> {
    app.current()
        .and_then(|r| r.history.info.as_ref())
        .map(|i| i.classes.clone())
        .unwrap_or_else(|| (0..n).map(|i| format!("class {i}")).collect())
}

fn last_eval(app: &App) -> Option<&EvalRecord> {
    app.current().and_then(|r| r.history.last_eval()).filter(|e| !e.confusion.is_empty())
}

/// The side panel's lines: `cat → dog  112 (11.2% of cats)`, worst first.
pub fn pair_lines(app: &App) -> Vec<Line<'static>> {
    let Some(eval) = last_eval(app) else { return Vec::new() };
    let names = class_names(app, eval.confusion.len());
    top_pairs(&eval.confusion, TOP)
        .into_iter()
        .map(|(t, p, count)| {
            let of: u32 = eval.confusion[t].iter().sum();
            let share = 100.0 * count as f64 / of.max(1) as f64;
            let text = format!("{} → {} {count} ({share:.1}%)", names[t], names[p]);
            Line::styled(text, app.theme.warn())
        })
        .collect()
}

/// The overlay: the matrix, the most confused pairs marked, and the misclassified images.
pub fn draw_overlay(frame: &mut Frame, area: Rect, app: &App) {
    frame.render_widget(Clear, area);
    let t = &app.theme;
    let Some(eval) = last_eval(app) else {
        let block = Block::bordered().title(Span::styled(" confusions (esc closes) ", t.title()));
        frame.render_widget(Paragraph::new("after the first evaluation").block(block), area);
        return;
    };
    let title = format!(" confusion matrix, iteration {}: rows true, columns predicted (esc closes) ", eval.iter);
    let block = Block::bordered().title(Span::styled(title, t.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let names = class_names(app, eval.confusion.len());
    let [matrix, images] = Layout::vertical([Constraint::Length(12), Constraint::Min(0)]).areas(inner);
    draw_matrix(frame, matrix, app, eval, &names);
    draw_images(frame, images, app, eval, &names);
}

fn draw_matrix(frame: &mut Frame, area: Rect, app: &App, eval: &EvalRecord, names: &[String]) {
    let t = &app.theme;
    let top: Vec<(usize, usize)> = top_pairs(&eval.confusion, TOP).into_iter().map(|(a, b, _)| (a, b)).collect();
    let short = |n: &String| n.chars().take(5).collect::<String>();
    let mut lines = vec![Line::from(
        std::iter::once(Span::raw(format!("{:>11}", "")))
            .chain(names.iter().map(|n| Span::styled(format!("{:>6}", short(n)), t.muted())))
            .collect::<Vec<_>>(),
    )];
    for (i, row) in eval.confusion.iter().enumerate() {
        let mut spans = vec![Span::styled(format!("{:>10} ", names[i]), t.muted())];
        for (j, &c) in row.iter().enumerate() {
            let style = if i == j {
                t.good()
            } else if top.contains(&(i, j)) {
                t.bad()
            } else if c == 0 {
                t.faint()
            } else {
                Style::new()
            };
            spans.push(Span::styled(format!("{c:>6}"), style));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_images(frame: &mut Frame, area: Rect, app: &App, eval: &EvalRecord, names: &[String]) {
    let t = &app.theme;
    if eval.misclassified.is_empty() || area.height < 3 {
        return;
    }
    if let Some(why) = &app.images_note {
        frame.render_widget(Paragraph::new(format!("images not shown: {why}")).style(t.muted()), area);
        return;
    }
    if !t.color {
        frame.render_widget(Paragraph::new("images need colour (NO_COLOR is set)").style(t.muted()), area);
        return;
    }
    let fits = (area.width as usize / (SIDE + 2)).max(1);
    let mut x = area.x;
    for m in eval.misclassified.iter().take(fits) {
        let Some((_, pixels)) = app.images.iter().find(|(i, _)| *i == m.index) else { continue };
        let cell = Rect { x, y: area.y, width: (SIDE as u16 + 2).min(area.right() - x), height: area.height };
        let caption = format!("{} as {}", names[m.label as usize], names[m.predicted as usize]);
        let mut lines = vec![Line::styled(caption, t.warn())];
        lines.extend(half_blocks(pixels).into_iter().take(area.height as usize - 1));
        frame.render_widget(Paragraph::new(lines), cell);
        x += SIDE as u16 + 2;
    }
}

/// A 32x32 RGB image (planes R, G, B) as 16 lines of `▀` cells.
pub fn half_blocks(pixels: &[u8]) -> Vec<Line<'static>> {
    let rgb = |y: usize, x: usize| {
        let at = |plane: usize| pixels.get(plane * SIDE * SIDE + y * SIDE + x).copied().unwrap_or(0);
        Color::Rgb(at(0), at(1), at(2))
    };
    (0..SIDE / 2)
        .map(|r| {
            Line::from(
                (0..SIDE)
                    .map(|x| Span::styled("▀", Style::new().fg(rgb(2 * r, x)).bg(rgb(2 * r + 1, x))))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}
