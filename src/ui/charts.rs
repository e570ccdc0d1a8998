//! The three charts (loss, top-1 error, learning rate): curves of every run, axes that follow the
//! data, the paper's reference lines. Only draws; all numbers come from the `App`.

use super::app::{App, Mode, XAxis};
use super::runs::RunView;
use super::theme::Marker as MarkerChoice;
use crate::format::{iteration_label, secs as format_secs};
use crate::frontend::series::{Point, Series, smooth};
use crate::reference::paper_result;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition};

/// One line on a chart, owning its points (ratatui's `Dataset` borrows them).
struct Curve {
    name: Option<String>,
    style: Style,
    data: Vec<(f64, f64)>,
}

fn marker(m: MarkerChoice) -> Marker {
    match m {
        MarkerChoice::Braille => Marker::Braille,
        MarkerChoice::Dot => Marker::Dot,
        MarkerChoice::Block => Marker::HalfBlock,
    }
}

fn x_of(p: &Point, axis: XAxis) -> f64 {
    match axis {
        XAxis::Iterations => p.iter,
        XAxis::Epochs => p.epoch,
        XAxis::Time => p.secs,
    }
}

/// Points as chart pairs, `y` passed through `f` (log scale) and non-finite results dropped.
fn pairs(series: &Series, axis: XAxis, ys: Option<&[f64]>, f: fn(f64) -> f64) -> Vec<(f64, f64)> {
    series
        .iter()
        .enumerate()
        .map(|(i, p)| (x_of(p, axis), f(ys.map_or(p.y, |v| v[i]))))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// A merged series as its range: for each point its highest then its lowest raw sample, so the
/// faint line runs up and down through every spike however much the curve has been merged.
fn envelope(series: &Series, axis: XAxis, f: fn(f64) -> f64) -> Vec<(f64, f64)> {
    series
        .iter()
        .flat_map(|p| [(x_of(p, axis), f(p.hi)), (x_of(p, axis), f(p.lo))])
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

fn ident(y: f64) -> f64 {
    y
}

fn log10(y: f64) -> f64 {
    if y > 0.0 { y.log10() } else { f64::NAN }
}

/// How each run is drawn: its colour, whether it is the current one, its legend name.
struct RunLook {
    base: Style,
    current: bool,
    label: String,
}

fn looks(app: &App) -> Vec<RunLook> {
    let current_id = app.current().map(|r| r.id);
    app.runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let same = app.runs[..i].iter().filter(|o| o.same_network(r)).count();
            // Overlaid runs are all in front; a live session's earlier depths are not.
            let current = Some(r.id) == current_id || app.overlaid();
            let mut base = app.theme.run(color_index(r));
            // Earlier runs of a live session stay on the chart, dimmed.
            if !current {
                base = base.add_modifier(Modifier::DIM);
            }
            RunLook { base, current, label: r.label(same) }
        })
        .collect()
}

/// Colours follow the run id, so a run keeps its colour when another becomes current.
fn color_index(run: &RunView) -> usize {
    run.id as usize
}

/// Draws the three charts into `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    // The learning-rate chart needs a few rows to show its two decades; the others share the rest.
    let lr_height = (area.height / 5).max(7).min(area.height / 3);
    let [loss, error, lr] = area.layout(&ratatui::layout::Layout::vertical([
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(lr_height),
    ]));
    let looks = looks(app);
    loss_chart(frame, loss, app, &looks);
    error_chart(frame, error, app, &looks);
    lr_chart(frame, lr, app, &looks);
}

/// Loss: raw faint with each merged point's extremes (current run only), smoothed bold,
/// evaluation loss.
fn loss_chart(frame: &mut Frame, area: Rect, app: &App, looks: &[RunLook]) {
    let single = app.runs.len() == 1;
    let w = app.smoothing_weight();
    let axis = app.x_axis;
    let f = if app.log_loss { log10 } else { ident };
    let mut curves = Vec::new();
    for (run, look) in app.runs.iter().zip(looks) {
        if look.current && (single || app.mode == Mode::Live) && w > 0.0 {
            curves.push(Curve { name: None, style: app.theme.faint(), data: envelope(&run.loss, axis, f) });
        }
        let smoothed = smooth(run.loss.iter(), w);
        let style = if look.current { look.base.add_modifier(Modifier::BOLD) } else { look.base };
        let name = if single { "train".to_string() } else { format!("{} train", look.label) };
        curves.push(Curve { name: Some(name), style, data: pairs(&run.loss, axis, Some(&smoothed), f) });
        let eval_style = if single { app.theme.eval() } else { look.base.add_modifier(Modifier::BOLD) };
        let name = if single { "test".to_string() } else { format!("{} test", look.label) };
        if !run.eval_loss.is_empty() {
            curves.push(Curve { name: Some(name), style: eval_style, data: pairs(&run.eval_loss, axis, None, f) });
        }
    }
    let scale = if app.log_loss { "log" } else { "linear" };
    let title = format!(" loss ({scale}, smoothing {:.2}) ", w);
    let title = Line::styled(title, app.theme.title());
    chart(frame, area, app, title, curves, Vec::new(), app.log_loss, false);
}

/// Top-1 error: smoothed training error, test error, reference lines.
fn error_chart(frame: &mut Frame, area: Rect, app: &App, looks: &[RunLook]) {
    let single = app.runs.len() == 1;
    let w = app.smoothing_weight();
    let mut curves = Vec::new();
    for (run, look) in app.runs.iter().zip(looks) {
        let smoothed = smooth(run.train_error.iter(), w);
        let name = if single { "train".to_string() } else { format!("{} train", look.label) };
        curves.push(Curve {
            name: Some(name),
            style: look.base,
            data: pairs(&run.train_error, app.x_axis, Some(&smoothed), ident),
        });
        let set = run.history.last_eval().map(|e| e.set.name()).unwrap_or("test");
        let eval_style = if single { app.theme.eval() } else { look.base.add_modifier(Modifier::BOLD) };
        let name = if single { set.to_string() } else { format!("{} {set}", look.label) };
        if !run.eval_error.is_empty() {
            curves.push(Curve {
                name: Some(name),
                style: eval_style,
                data: pairs(&run.eval_error, app.x_axis, None, ident),
            });
        }
    }
    // The paper's lines are for its ResNets: a plain run draws none.
    let resnets = app.runs.iter().filter(|r| r.shortcut() != crate::config::Shortcut::None);
    let mut depths: Vec<u32> = resnets.filter_map(|r| r.depth()).map(|d| d.get()).collect();
    depths.dedup();
    depths.sort_unstable();
    depths.dedup();
    let mut refs = Vec::new();
    for &d in &depths {
        let Some(r) = paper_result(d) else { continue };
        let tag = if depths.len() == 1 { String::new() } else { format!(" R{d}") };
        refs.push((format!("paper{tag} {:.2}%", r.paper_error), r.paper_error, app.theme.paper()));
        if let (Some(e), true) = (r.reimpl_error, depths.len() == 1) {
            refs.push((format!("reimpl {e:.2}%"), e, app.theme.reimpl()));
        }
    }
    let title = Line::styled(" top-1 error % ", app.theme.title());
    chart(frame, area, app, title, curves, refs, false, false);
}

/// Learning rate, always on a log scale; with the current run's update-to-weight ratio per
/// group of layers (its health: about 1e-3 in healthy SGD), on the same scale.
fn lr_chart(frame: &mut Frame, area: Rect, app: &App, looks: &[RunLook]) {
    let single = app.runs.len() == 1;
    let axis = app.x_axis;
    let mut curves: Vec<Curve> = app
        .runs
        .iter()
        .zip(looks)
        .map(|(run, look)| Curve {
            name: Some(if single { "lr".to_string() } else { look.label.clone() }),
            style: look.base.add_modifier(Modifier::BOLD),
            data: pairs(&run.lr, axis, None, log10),
        })
        .collect();
    // The ratios' names go in the title, each in its curve's colour: a legend of six entries
    // would not fit this short chart.
    let mut ratio_names = Vec::new();
    if let Some(run) = app.current() {
        for (g, series) in run.update_ratio.iter().enumerate().filter(|(_, s)| !s.is_empty()) {
            let style = app.theme.run(g + 1);
            ratio_names.push(Span::styled(format!(" {}", crate::protocol::HEALTH_GROUPS[g]), style));
            curves.push(Curve { name: None, style, data: pairs(series, axis, None, log10) });
        }
    }
    // Where the current run's warm-up handed over to the schedule (the paper's "until the training
    // error is below 80%" makes it a measured point, not a fixed one).
    let mut title = vec![Span::styled(" learning rate (log)", app.theme.title())];
    if !ratio_names.is_empty() {
        title.push(Span::styled(" · update/weight:", app.theme.title()));
        title.extend(ratio_names);
    }
    if let Some(iter) = app.current().and_then(|r| r.history.warmup_ended) {
        let text = format!(" · warm-up ended at iteration {}", crate::format::group_digits(iter));
        title.push(Span::styled(text, app.theme.title()));
    }
    title.push(Span::raw(" "));
    chart(frame, area, app, Line::from(title), curves, Vec::new(), true, true);
}

/// Draws one chart: the curves, horizontal reference lines across the x range, rescaled axes.
#[allow(clippy::too_many_arguments)]
fn chart(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    title: Line<'static>,
    mut curves: Vec<Curve>,
    refs: Vec<(String, f64, Style)>,
    log_y: bool,
    small: bool,
) {
    let points = curves.iter().flat_map(|c| c.data.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let has_data = x0.is_finite();
    if !has_data {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    for (name, y, style) in refs {
        y0 = y0.min(y);
        y1 = y1.max(y);
        curves.push(Curve { name: Some(name), style, data: vec![(x0, y), (x1, y)] });
    }
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    let (y0, y1) = if log_y {
        // Whole decades, with some room when the data sits on one.
        let lo = if y0 - y0.floor() < 0.05 { y0.floor() - 1.0 } else { y0.floor() };
        let hi = if y1.ceil() - y1 < 0.05 { y1.ceil() + 1.0 } else { y1.ceil() };
        (lo, hi.max(lo + 1.0))
    } else {
        let pad = ((y1 - y0) * 0.05).max(1e-3);
        ((y0 - pad).max(0.0).min(y0), y1 + pad)
    };

    let label = |v: f64| if log_y { format_log(v) } else { format_value(v) };
    let y_labels: Vec<Span> = if small {
        vec![Span::raw(label(y0)), Span::raw(label(y1))]
    } else {
        vec![Span::raw(label(y0)), Span::raw(label((y0 + y1) / 2.0)), Span::raw(label(y1))]
    };
    let x_label = |v: f64| match app.x_axis {
        XAxis::Iterations => iteration_label(v, x1),
        XAxis::Epochs => format!("{v:.1}"),
        XAxis::Time => format_secs(v),
    };
    let x_labels = vec![Span::raw(x_label(x0)), Span::raw(x_label((x0 + x1) / 2.0)), Span::raw(x_label(x1))];

    // Legend names padded to one width: ratatui leaves the cells after a short name undrawn.
    let name_width = curves.iter().filter_map(|c| c.name.as_ref()).map(|n| n.chars().count()).max().unwrap_or(0);
    for c in &mut curves {
        if let Some(n) = &mut c.name {
            let pad = name_width - n.chars().count();
            n.push_str(&" ".repeat(pad));
        }
    }
    let m = marker(app.marker);
    let datasets: Vec<Dataset> = curves
        .iter()
        .map(|c| {
            let d = Dataset::default().data(&c.data).style(c.style).marker(m).graph_type(GraphType::Line);
            match &c.name {
                Some(n) => d.name(n.clone()),
                None => d,
            }
        })
        .collect();
    let axis_style = app.theme.muted();
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(title))
        .x_axis(
            Axis::default()
                .title(Span::styled(app.x_axis.title(), axis_style))
                .style(axis_style)
                .bounds([x0, x1])
                .labels(x_labels),
        )
        .y_axis(Axis::default().style(axis_style).bounds([y0, y1]).labels(y_labels))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(3, 4)));
    frame.render_widget(chart, area);
}

/// A value with as many digits as its size deserves.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// A log10 coordinate written as the value it stands for: `0.01`, `0.32`, `10`, `1e-4`.
fn format_log(v: f64) -> String {
    let x = 10f64.powf(v);
    if (0.001..10_000.0).contains(&x) {
        let s = format!("{:.*}", (2.0 - v.floor()).max(0.0) as usize, x);
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    } else {
        format!("{x:.0e}")
    }
}
