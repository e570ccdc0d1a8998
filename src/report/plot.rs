//! `resnet-tui plot`: error and loss curves of one or several runs, with the paper's errors as
//! reference lines, drawn to a PNG or SVG file with the drawing kit (`kit`).

use super::kit::{
    self, Axes, Format, LinearChart, Picture, Scale, check_size, colour, dashed_swatch, labelled_line, legend, panel,
    render_picture, tick_swatch,
};
use crate::cli::PlotArgs;
use crate::format::iteration_label;
use crate::frontend::history::History;
use crate::frontend::series::Series;
use crate::protocol::EvalSet;
use crate::reference;
use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Training curves are merged to at most this many points (and at least half as many), each
/// the mean of its batches with their extremes kept: a batch's error is noisy, and 64,000
/// points would make an SVG of megabytes for no visible gain.
const TRAIN_POINTS: usize = 512;

/// Runs with at most this many evaluations have them marked with dots.
const MAX_MARKED_EVALS: usize = 40;

/// Each merged point's (iteration, lowest, highest) batch.
type Band = Vec<(f64, f64, f64)>;

/// One run's curves, in (iteration, value) pairs.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    pub label: String,
    /// The ResNet depth whose paper error is drawn beside the run; `None` for a plain net, for
    /// which the paper gives no CIFAR figure.
    pub depth: Option<u32>,
    pub train_error: Vec<(f64, f64)>,
    pub train_loss: Vec<(f64, f64)>,
    /// Each bucket's lowest and highest batch, (iteration, lowest, highest): the band that keeps
    /// spikes visible behind the bucket means.
    pub train_error_range: Band,
    pub train_loss_range: Band,
    pub eval_error: Vec<(f64, f64)>,
    pub eval_loss: Vec<(f64, f64)>,
    pub eval_set: Option<EvalSet>,
    /// Where the run was resumed: ticks on the error chart, so that a seam would show where
    /// to look for it.
    pub resumed_at: Vec<f64>,
    /// How many times it was resumed (`summary`'s starts less one; a resume from an older
    /// checkpoint than an earlier one's leaves that one no tick).
    pub resumes: usize,
}

impl Curves {
    pub fn from_history(history: &History, fallback_name: &str) -> Curves {
        let name = history.info.as_ref().map(|i| i.name.clone()).unwrap_or_else(|| fallback_name.to_string());
        let network = history.info.as_ref().map(|i| i.config.network_name());
        let config = history.info.as_ref().map(|i| &i.config);
        let depth = config.filter(|c| c.shortcut != crate::config::Shortcut::None).map(|c| c.depth.get());
        let label = match network {
            Some(n) if !name.ends_with(&n.to_ascii_lowercase().replace('-', "")) => format!("{name} ({n})"),
            _ => name,
        };
        let (train_error, train_error_range) =
            means_and_band(&Series::of_steps(&history.steps, TRAIN_POINTS, |s| s.error));
        let (train_loss, train_loss_range) =
            means_and_band(&Series::of_steps(&history.steps, TRAIN_POINTS, |s| s.loss));
        let evals = history.evals.iter().filter(|e| e.loss.is_finite());
        Curves {
            label,
            depth,
            train_error,
            train_loss,
            train_error_range,
            train_loss_range,
            eval_error: evals.clone().map(|e| (e.iter as f64, e.error)).collect(),
            eval_loss: evals.map(|e| (e.iter as f64, e.loss)).collect(),
            eval_set: history.evals.last().map(|e| e.set),
            resumed_at: history.resumed_at.iter().map(|&i| i as f64).collect(),
            resumes: history.starts.saturating_sub(1),
        }
    }

    fn is_empty(&self) -> bool {
        self.train_error.is_empty() && self.eval_error.is_empty()
    }
}

/// A merged series as a chart draws it: its points' means as the line, and their lowest and
/// highest batch as the band behind it.
fn means_and_band(series: &Series) -> (Vec<(f64, f64)>, Band) {
    series.iter().map(|p| ((p.iter, p.y), (p.iter, p.lo, p.hi))).unzip()
}

/// The plot command.
pub fn run(args: &PlotArgs) -> Result<()> {
    let format = Format::of(&args.output)?;
    check_size(args.width, args.height)?;
    let mut runs = Vec::new();
    for path in &args.runs {
        let log = crate::report::load(path)?;
        let curves = Curves::from_history(&History::from_events(&log.events), &crate::report::fallback_name(path));
        if curves.is_empty() {
            eprintln!("resnet-tui: warning: {}: no steps or evaluations to plot", path.display());
        }
        runs.push(curves);
    }
    if runs.iter().all(Curves::is_empty) {
        bail!("nothing to plot: no run has a step or an evaluation");
    }
    render(&runs, &args.output, format, (args.width, args.height))
        .with_context(|| format!("{}: cannot draw the plot", args.output.display()))?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

/// Draws the runs to `path`.
pub fn render(runs: &[Curves], path: &Path, format: Format, size: (u32, u32)) -> Result<()> {
    struct Drawn<'a>(&'a [Curves]);
    impl Picture for Drawn<'_> {
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
            draw(root, self.0)
        }
    }
    render_picture(&Drawn(runs), path, format, size)
}

/// Draws error (top) and loss (bottom) charts onto `root`.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[Curves]) -> Result<()> {
    let scale = Scale::of(root);
    root.fill(&WHITE).map_err(kit::failed)?;
    let (_, h) = root.dim_in_pixel();
    let (top, bottom) = root.split_vertically(h * 57 / 100);
    let x_max = runs.iter().flat_map(|r| r.train_error.iter().chain(&r.eval_error)).map(|p| p.0).fold(1.0, f64::max);
    let eval_name = if runs.iter().any(|r| r.eval_set == Some(EvalSet::Validation)) { "evaluation" } else { "test" };
    let plot = Plot { runs, x_max, eval_name, scale };
    error_chart(&top, plot)?;
    loss_chart(&bottom, plot)
}

/// What both charts of a plot share: its runs, one iteration axis, what the evaluations were
/// measured on, the sizes.
#[derive(Clone, Copy)]
struct Plot<'r> {
    runs: &'r [Curves],
    x_max: f64,
    eval_name: &'static str,
    scale: Scale,
}

/// The error chart: each run's training band and line, its evaluations bold, its resumes as
/// ticks, and the paper's numbers as dashed lines.
fn error_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, plot: Plot) -> Result<()> {
    let Plot { runs, x_max, eval_name, scale } = plot;
    let depths = depths_in_order(runs);
    let y_max = error_axis_max(runs, &depths);
    let x_label = |x: &f64| iteration_label(*x, x_max);
    let axes = Axes { x_desc: None, y_desc: "error %", x_label: &x_label, y_label: &|y| format!("{y:.0}") };
    let caption = format!("Top-1 error: {eval_name} (thick), training batches (thin), paper (dashed)");
    let mut chart = panel(area, &caption, (0.0..x_max, 0.0..y_max), &axes, scale)?;
    for (i, run) in runs.iter().enumerate() {
        let color = colour(i);
        chart.draw_series(std::iter::once(band(&run.train_error_range, 0.0, y_max, color))).map_err(kit::failed)?;
        for piece in kit::clip_y(&run.train_error, 0.0, y_max) {
            chart
                .draw_series(LineSeries::new(piece, color.mix(0.35).stroke_width(scale.px(1.5))))
                .map_err(kit::failed)?;
        }
        let evals = kit::clip_y(&run.eval_error, 0.0, y_max);
        labelled_line(&mut chart, evals, color.stroke_width(scale.px(3.0)), &run.label, scale)?;
        let inside = run.eval_error.iter().filter(|p| p.1 <= y_max && marked(run)).copied();
        chart.draw_series(inside.map(|p| Circle::new(p, scale.px(3.5), color.filled()))).map_err(kit::failed)?;
    }
    resume_ticks(&mut chart, runs, y_max, scale)?;
    paper_lines(&mut chart, &depths, x_max, scale)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight, scale)
}

/// A tick at the foot of the error chart where each run was resumed, with one legend line per
/// resumed run: a seam in its curves would show there.
fn resume_ticks<'a, DB: DrawingBackend + 'a>(
    chart: &mut LinearChart<'a, DB>,
    runs: &[Curves],
    y_max: f64,
    scale: Scale,
) -> Result<()> {
    for (i, run) in runs.iter().enumerate().filter(|(_, r)| r.resumes > 0) {
        let style = colour(i).mix(0.8).stroke_width(scale.px(2.0));
        let tick = y_max * 0.04;
        let ticks = run.resumed_at.iter().map(|&x| PathElement::new(vec![(x, 0.0), (x, tick)], style));
        let n = run.resumes;
        let what = if runs.len() > 1 { format!("{}: ", run.label) } else { String::new() };
        chart
            .draw_series(ticks)
            .map_err(kit::failed)?
            .label(format!("{what}resumed {n} time{} (ticks)", if n == 1 { "" } else { "s" }))
            .legend(tick_swatch(style, scale));
    }
    Ok(())
}

/// The paper's error of each depth plotted, dashed across the chart in the colour of the first
/// run of that depth.
fn paper_lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut LinearChart<'a, DB>,
    depths: &[(u32, usize)],
    x_max: f64,
    scale: Scale,
) -> Result<()> {
    for &(depth, run_index) in depths {
        let Some(paper) = reference::paper_result(depth) else { continue };
        let style = colour(run_index).mix(0.9).stroke_width(scale.px(1.5));
        let line = vec![(0.0, paper.paper_error), (x_max, paper.paper_error)];
        chart
            .draw_series(DashedLineSeries::new(line, scale.px(8.0), scale.px(5.0), style))
            .map_err(kit::failed)?
            .label(format!("paper ResNet-{depth}: {:.2}%", paper.paper_error))
            .legend(dashed_swatch(style, scale));
    }
    Ok(())
}

/// The loss chart, on a log scale: the loss falls by two orders of magnitude over a full run.
fn loss_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, plot: Plot) -> Result<()> {
    let Plot { runs, x_max, eval_name, scale } = plot;
    let (lo, hi) = loss_axis(runs);
    let (bold, light) = log_ticks(lo, hi);
    let y = (lo..hi).log_scale().with_key_points(bold).with_light_points(light);
    let x_label = |x: &f64| iteration_label(*x, x_max);
    let axes = Axes { x_desc: Some("iteration"), y_desc: "loss", x_label: &x_label, y_label: &|y| format_loss(*y) };
    let caption = format!("Cross-entropy loss: {eval_name} (thick), training batches (thin)");
    let mut chart = panel(area, &caption, (0.0..x_max, y), &axes, scale)?;
    for (i, run) in runs.iter().enumerate() {
        let color = colour(i);
        let positive = |v: &[(f64, f64)]| v.iter().copied().filter(|p| p.1 > 0.0).collect::<Vec<_>>();
        chart.draw_series(std::iter::once(band(&run.train_loss_range, lo, hi, color))).map_err(kit::failed)?;
        chart
            .draw_series(LineSeries::new(positive(&run.train_loss), color.mix(0.35).stroke_width(scale.px(1.5))))
            .map_err(kit::failed)?;
        let eval = positive(&run.eval_loss);
        chart.draw_series(LineSeries::new(eval.clone(), color.stroke_width(scale.px(3.0)))).map_err(kit::failed)?;
        let points = eval.into_iter().filter(|_| marked(run));
        chart.draw_series(points.map(|p| Circle::new(p, scale.px(3.5), color.filled()))).map_err(kit::failed)?;
    }
    Ok(())
}

/// The loss axis spans every positive loss with some room, the bands' extremes too: a spike is
/// drawn, not cut off.
fn loss_axis(runs: &[Curves]) -> (f64, f64) {
    let extremes = runs.iter().flat_map(|r| r.train_loss_range.iter().flat_map(|&(_, l, h)| [l, h]));
    let losses = runs
        .iter()
        .flat_map(|r| r.train_loss.iter().chain(&r.eval_loss))
        .map(|p| p.1)
        .chain(extremes)
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = losses.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() && hi > lo { (lo / 1.3, hi * 1.3) } else { (0.01, 10.0) }
}

/// Evaluations get a dot each when they are few enough to tell apart: a short run with two
/// evaluations would otherwise show as a bare straight line.
fn marked(run: &Curves) -> bool {
    run.eval_error.len() <= MAX_MARKED_EVALS
}

/// The depths plotted, each with the first run of that depth (whose colour its line takes).
fn depths_in_order(runs: &[Curves]) -> Vec<(u32, usize)> {
    let mut out: Vec<(u32, usize)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if let Some(d) = r.depth.filter(|d| !out.iter().any(|o| o.0 == *d)) {
            out.push((d, i));
        }
    }
    out
}

/// The error axis ends above the evaluations once training is under way (the first tenth of
/// a run is left out, where every network is near chance) and never below twice the paper's
/// errors, so that those lines sit in the lower part of the chart.
fn error_axis_max(runs: &[Curves], depths: &[(u32, usize)]) -> f64 {
    let evals = runs.iter().flat_map(|r| {
        let end = r.eval_error.last().map_or(0.0, |p| p.0);
        let later: Vec<f64> = r.eval_error.iter().filter(|p| p.0 >= 0.1 * end).map(|p| p.1).collect();
        if later.is_empty() { r.train_error.iter().map(|p| p.1).collect() } else { later }
    });
    let data_max = evals.filter(|v| v.is_finite()).fold(0.0, f64::max);
    let paper_max =
        depths.iter().filter_map(|(d, _)| reference::paper_result(*d)).map(|p| p.paper_error).fold(0.0, f64::max);
    let top = (data_max * 1.15).max(paper_max * 2.0).clamp(10.0, 100.0);
    (top / 5.0).ceil() * 5.0
}

/// Labelled (1, 2, 5 in each decade) and unlabelled (1 to 9) ticks for a log axis: plotters'
/// own labels only the powers of ten, which leaves a short run's loss axis with one label.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
    let wide = decades.clone().count() > 5;
    for d in decades {
        for m in 1..=9 {
            let v = m as f64 * 10f64.powi(d);
            if v < lo || v > hi {
                continue;
            }
            if m == 1 || (!wide && (m == 2 || m == 5)) {
                bold.push(v);
            } else {
                light.push(v);
            }
        }
    }
    (bold, light)
}

/// `2`, `0.5`, `0.02`: a loss with the digits its size needs.
fn format_loss(y: f64) -> String {
    if y >= 1.0 {
        format!("{y:.0}")
    } else {
        let digits = (-y.log10()).ceil().max(1.0) as usize;
        format!("{y:.digits$}")
    }
}

/// The faint band between each bucket's lowest and highest batch, clamped to the chart's range.
fn band(range: &[(f64, f64, f64)], lo: f64, hi: f64, color: RGBColor) -> Polygon<(f64, f64)> {
    let clamp = |y: f64| y.clamp(lo, hi);
    let upper = range.iter().map(|&(x, _, h)| (x, clamp(h)));
    let lower = range.iter().rev().map(|&(x, l, _)| (x, clamp(l)));
    Polygon::new(upper.chain(lower).collect::<Vec<_>>(), color.mix(0.12).filled())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, started, step};
    use kit::{PALETTE, register_fonts};

    #[test]
    fn a_one_batch_spike_survives_bucketing_in_the_band() {
        let mut events = vec![started(20, 0)];
        events.extend((1..=8_000).map(|i| step(i, if i == 5_555 { 99.0 } else { 10.0 })));
        let curves = Curves::from_history(&History::from_events(&events), "r");
        assert!(curves.train_error.len() <= TRAIN_POINTS);
        let mean_max = curves.train_error.iter().map(|p| p.1).fold(0.0, f64::max);
        let band_max = curves.train_error_range.iter().map(|p| p.2).fold(0.0, f64::max);
        assert!(mean_max < 20.0, "the mean of its bucket hides it: {mean_max}");
        assert_eq!(band_max, 99.0);
        assert!(curves.train_error_range.iter().all(|&(_, lo, hi)| lo <= hi && lo == 10.0));
    }

    #[test]
    fn long_runs_are_averaged_to_a_few_hundred_points() {
        let mut events = vec![started(20, 0)];
        events.extend((1..=4000).map(|i| step(i, if i % 2 == 0 { 10.0 } else { 20.0 })));
        let c = Curves::from_history(&History::from_events(&events), "x");
        assert!((TRAIN_POINTS / 2..=TRAIN_POINTS).contains(&c.train_error.len()), "{}", c.train_error.len());
        assert!(c.train_error.iter().all(|p| (p.1 - 15.0).abs() < 1e-9));
        assert_eq!(c.label, "run-resnet20");
    }

    #[test]
    fn two_runs_of_different_depths_are_both_drawn_in_their_colours() {
        register_fonts().unwrap();
        let make = |depth: u32, err: f64| {
            let mut events = vec![started(depth, 0)];
            for i in 1..=100 {
                events.push(step(i, err + 5.0));
                if i % 20 == 0 {
                    events.push(eval(i, err));
                }
            }
            Curves::from_history(&History::from_events(&events), "x")
        };
        let runs = [make(20, 40.0), make(56, 30.0)];
        let (w, h) = (600u32, 400u32);
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            draw(&root, &runs).unwrap();
            root.present().unwrap();
        }
        let count = |c: RGBColor| pixels.chunks(3).filter(|p| (p[0], p[1], p[2]) == (c.0, c.1, c.2)).count();
        assert!(count(PALETTE[0]) > 100, "first run's colour is missing");
        assert!(count(PALETTE[1]) > 100, "second run's colour is missing");
        assert_eq!(count(PALETTE[2]), 0);
    }

    #[test]
    fn a_resumed_run_has_a_tick_and_a_legend_line_for_its_resumes() {
        register_fonts().unwrap();
        let mut events = vec![started(20, 0)];
        events.extend((1..=60).map(|i| step(i, 30.0)));
        // Killed at 60, resumed from the checkpoint at 50 twice.
        for _ in 0..2 {
            events.push(started(20, 50));
            events.extend((51..=55).map(|i| step(i, 30.0)));
        }
        events.extend((56..=100).map(|i| step(i, 30.0)));
        events.push(eval(100, 25.0));
        let c = Curves::from_history(&History::from_events(&events), "x");
        assert_eq!(c.resumed_at, [50.0, 50.0]);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (600, 400)).into_drawing_area();
            draw(&root, &[c]).unwrap();
            root.present().unwrap();
        }
        assert!(svg.contains("resumed 2 times (ticks)"), "no legend line for the resumes");
    }
}
