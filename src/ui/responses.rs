//! The paper's Figure 7 in the terminal, on `v`: the standard deviation of each 3x3 layer's
//! response at the newest evaluation, by layer (top) and sorted by size (bottom), one line per
//! shown run, redrawn as each evaluation arrives.

use super::app::App;
use super::runs::RunView;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Clear, Dataset, GraphType, LegendPosition, Paragraph};

/// One run's profile: its legend name, colour and the responses of its newest evaluation.
struct Profile {
    name: String,
    style: Style,
    iter: u64,
    by_layer: Points,
    sorted: Points,
}

/// Chart points: (layer position from 1, standard deviation).
type Points = Vec<(f64, f64)>;

/// Responses in layer order as (layer index from 1, std), and the same values largest first.
pub fn profile_points(responses: &[f64]) -> (Points, Points) {
    let by_layer = responses.iter().enumerate().map(|(i, &s)| ((i + 1) as f64, s)).collect();
    let mut sorted = responses.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let sorted = sorted.into_iter().enumerate().map(|(i, s)| ((i + 1) as f64, s)).collect();
    (by_layer, sorted)
}

fn profiles(app: &App) -> Vec<Profile> {
    let shown: Vec<&RunView> =
        if app.overlaid() { app.runs.iter().collect() } else { app.current().into_iter().collect() };
    shown
        .into_iter()
        .filter_map(|r| {
            let eval = r.history.evals.iter().rev().find(|e| !e.responses.is_empty())?;
            let same = app.runs.iter().take_while(|o| o.id != r.id).filter(|o| o.same_network(r)).count();
            let (by_layer, sorted) = profile_points(&eval.responses);
            Some(Profile {
                name: r.label(same),
                style: app.theme.run(r.id as usize),
                iter: eval.iter,
                by_layer,
                sorted,
            })
        })
        .collect()
}

/// The overlay: both panels, or a line saying why there is nothing to draw yet.
pub fn draw_overlay(frame: &mut Frame, area: Rect, app: &App) {
    frame.render_widget(Clear, area);
    let t = &app.theme;
    let profiles = profiles(app);
    let Some(newest) = profiles.iter().map(|p| p.iter).max() else {
        let block = Block::bordered().title(Span::styled(" layer responses (esc closes) ", t.title()));
        let text = "after the first evaluation (logs written before schema 1.5 have none)";
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    };
    let title = format!(
        " layer responses, iteration {newest}: std of each 3x3 layer's output after BN, before ReLU/addition (esc closes) "
    );
    let block = Block::bordered().title(Span::styled(title, t.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [top, bottom] = Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
    let y_max = profiles.iter().flat_map(|p| p.by_layer.iter().map(|q| q.1)).fold(0.0, f64::max) * 1.05;
    let x_max = profiles.iter().map(|p| p.by_layer.len()).max().unwrap_or(1) as f64;
    panel(frame, top, app, "by layer index", &profiles, |p| &p.by_layer, x_max, y_max);
    panel(frame, bottom, app, "sorted by magnitude", &profiles, |p| &p.sorted, x_max, y_max);
}

#[allow(clippy::too_many_arguments)]
fn panel(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    what: &str,
    profiles: &[Profile],
    points: fn(&Profile) -> &Points,
    x_max: f64,
    y_max: f64,
) {
    let t = &app.theme;
    let datasets: Vec<Dataset> = profiles
        .iter()
        .map(|p| {
            Dataset::default()
                .name(p.name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(p.style)
                .data(points(p))
        })
        .collect();
    let label = |v: f64| Span::styled(format!("{v:.2}"), t.muted());
    let x_axis = Axis::default()
        .title(Span::styled(format!("layer ({what})"), t.muted()))
        .bounds([1.0, x_max.max(2.0)])
        .labels([Span::styled("1", t.muted()), Span::styled(format!("{x_max:.0}"), t.muted())]);
    let y_axis = Axis::default().title(Line::styled("std", t.muted())).bounds([0.0, y_max.max(1e-6)]).labels([
        label(0.0),
        label(y_max / 2.0),
        label(y_max),
    ]);
    let chart = Chart::new(datasets)
        .x_axis(x_axis)
        .y_axis(y_axis)
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(40), Constraint::Percentage(60)));
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_drawn_by_layer_from_one_and_sorted_largest_first() {
        let (by_layer, sorted) = profile_points(&[0.5, 2.0, 1.0]);
        assert_eq!(by_layer, vec![(1.0, 0.5), (2.0, 2.0), (3.0, 1.0)]);
        assert_eq!(sorted, vec![(1.0, 2.0), (2.0, 1.0), (3.0, 0.5)]);
    }
}
