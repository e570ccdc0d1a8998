//! `resnet-tui plot`: error and loss curves of one or several runs, with the paper's errors as
//! reference lines, drawn to a PNG or SVG file with plotters.

use crate::cli::PlotArgs;
use crate::frontend::history::History;
use crate::protocol::EvalSet;
use crate::reference;
use anyhow::{Context, Result, anyhow, bail};
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/): there is no system font lookup, so
/// text is drawn with the font built into the binary.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub(super) const FAMILY: &str = "sans-serif";

/// Colours that stay apart for the eye (the "tableau 10" set), one per run, in order.
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Training curves are averaged over buckets to about this many points: a batch's error is
/// noisy, and 64,000 points would make an SVG of megabytes for no visible gain.
const TRAIN_POINTS: usize = 400;

/// Runs with at most this many evaluations have them marked with dots.
const MAX_MARKED_EVALS: usize = 40;

/// The labels and grid both charts share: quiet lines, so the curves stand out.
/// `px` scales a size given for a 1200x800 picture.
pub(super) fn styled<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
    px: impl Fn(f64) -> u32,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.label_style((FAMILY, px(15.0)))
        .axis_desc_style((FAMILY, px(16.0)))
        .light_line_style(BLACK.mix(0.04))
        .max_light_lines(4)
        .bold_line_style(BLACK.mix(0.12))
}

/// Sizes accepted for `--width` and `--height`.
const MIN_SIDE: u32 = 200;
const MAX_SIDE: u32 = 10_000;

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
    pub train_error_range: Vec<(f64, f64, f64)>,
    pub train_loss_range: Vec<(f64, f64, f64)>,
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
        let steps: Vec<_> = history.steps.iter().filter(|s| s.loss.is_finite()).collect();
        let bucket = steps.len().div_ceil(TRAIN_POINTS).max(1);
        let mean = |f: &dyn Fn(usize) -> f64, chunk: std::ops::Range<usize>| {
            let n = chunk.len() as f64;
            chunk.map(f).sum::<f64>() / n
        };
        let buckets: Vec<_> = (0..steps.len()).step_by(bucket).map(|i| i..(i + bucket).min(steps.len())).collect();
        let iter_at = |i: usize| steps[i].iter as f64;
        let train = |value: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
            buckets.iter().map(|b| (mean(&iter_at, b.clone()), mean(value, b.clone()))).collect()
        };
        let range = |value: &dyn Fn(usize) -> f64| -> Vec<(f64, f64, f64)> {
            buckets
                .iter()
                .map(|b| {
                    let lo = b.clone().map(value).fold(f64::INFINITY, f64::min);
                    let hi = b.clone().map(value).fold(f64::NEG_INFINITY, f64::max);
                    (mean(&iter_at, b.clone()), lo, hi)
                })
                .collect()
        };
        let evals = history.evals.iter().filter(|e| e.loss.is_finite());
        Curves {
            label,
            depth,
            train_error: train(&|i| steps[i].error),
            train_loss: train(&|i| steps[i].loss),
            train_error_range: range(&|i| steps[i].error),
            train_loss_range: range(&|i| steps[i].loss),
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

/// The image formats, told by the output file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            Some(other) => bail!("{}: unknown image format .{other}: use .png or .svg", path.display()),
            None => bail!("{}: no file extension: end the name in .png or .svg", path.display()),
        }
    }
}

pub(super) fn check_size(width: u32, height: u32) -> Result<()> {
    for (flag, v) in [("--width", width), ("--height", height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
            bail!("{flag} {v}: must be between {MIN_SIDE} and {MAX_SIDE} pixels");
        }
    }
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

/// Something drawn onto a drawing area of any backend: the same picture as PNG or as SVG.
pub(super) trait Picture {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Draws `picture` to `path` in `format`, with the built-in font.
pub(super) fn render_picture(picture: &impl Picture, path: &Path, format: Format, size: (u32, u32)) -> Result<()> {
    register_fonts()?;
    match format {
        Format::Png => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            picture.draw(&root)?;
            root.present().map_err(|e| anyhow!("{e}"))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            picture.draw(&root)?;
            root.present().map_err(|e| anyhow!("{e}"))
        }
    }
}

/// The legend at `position` (the upper right unless the curves run there), on a faint white box,
/// as every chart here has it.
pub(super) fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
    px: impl Fn(f64) -> u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, px(15.0)))
        .background_style(WHITE.mix(0.88))
        .border_style(BLACK.mix(0.25))
        .margin(px(10.0))
        .legend_area_size(px(30.0))
        .draw()
        .map_err(|e| anyhow!("{e}"))
}

pub(super) fn register_fonts() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        // Bold and the others fall back to the regular face.
        register_font(FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if *ok { Ok(()) } else { bail!("the built-in font does not load") }
}

/// Draws error (top) and loss (bottom) charts onto `root`.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[Curves]) -> Result<()> {
    let e = |e: plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    let (w, h) = root.dim_in_pixel();
    // Text grows with the image so that a large plot for print is not all lines and no labels.
    let scale = (w as f64 / 1200.0).min(h as f64 / 800.0).clamp(0.6, 4.0);
    let px = |v: f64| (v * scale).round() as u32;
    root.fill(&WHITE).map_err(e)?;
    let (top, bottom) = root.split_vertically(h * 57 / 100);
    let x_max = runs.iter().flat_map(|r| r.train_error.iter().chain(&r.eval_error)).map(|p| p.0).fold(1.0, f64::max);
    let x_fmt = |x: &f64| iteration_label(*x, x_max);
    let eval_name = if runs.iter().any(|r| r.eval_set == Some(EvalSet::Validation)) { "evaluation" } else { "test" };

    // Error, with the paper's numbers as dashed lines.
    let depths = depths_in_order(runs);
    let y_max = error_axis_max(runs, &depths);
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("Top-1 error: {eval_name} (thick), training batches (thin), paper (dashed)"),
            (FAMILY, px(22.0)),
        )
        .margin(px(12.0))
        .margin_right(px(28.0))
        .x_label_area_size(px(34.0))
        .y_label_area_size(px(64.0))
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(e)?;
    styled(
        chart.configure_mesh().x_label_formatter(&x_fmt).y_label_formatter(&|y| format!("{y:.0}")).y_desc("error %"),
        px,
    )
    .draw()
    .map_err(e)?;
    for (i, run) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart.draw_series(std::iter::once(band(&run.train_error_range, 0.0, y_max, color))).map_err(e)?;
        for piece in clip_y(&run.train_error, 0.0, y_max) {
            chart.draw_series(LineSeries::new(piece, color.mix(0.35).stroke_width(px(1.5)))).map_err(e)?;
        }
        let thick = color.stroke_width(px(3.0));
        let mut first = true;
        for piece in clip_y(&run.eval_error, 0.0, y_max) {
            let series = chart.draw_series(LineSeries::new(piece, thick)).map_err(e)?;
            if std::mem::take(&mut first) {
                series.label(run.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + px(24.0) as i32, y)], color.stroke_width(px(3.0)))
                });
            }
        }
        let inside = run.eval_error.iter().filter(|p| p.1 <= y_max && marked(run)).copied();
        chart.draw_series(inside.map(|p| Circle::new(p, px(3.5), color.filled()))).map_err(e)?;
        if first {
            // No evaluation in range: the run still needs its legend entry.
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                .map_err(e)?
                .label(run.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + px(24.0) as i32, y)], color.stroke_width(px(3.0)))
                });
        }
    }
    for (i, run) in runs.iter().enumerate().filter(|(_, r)| r.resumes > 0) {
        let style = PALETTE[i % PALETTE.len()].mix(0.8).stroke_width(px(2.0));
        let tick = y_max * 0.04;
        let ticks = run.resumed_at.iter().map(|&x| PathElement::new(vec![(x, 0.0), (x, tick)], style));
        let n = run.resumes;
        let what = if runs.len() > 1 { format!("{}: ", run.label) } else { String::new() };
        chart
            .draw_series(ticks)
            .map_err(e)?
            .label(format!("{what}resumed {n} time{} (ticks)", if n == 1 { "" } else { "s" }))
            .legend(move |(x, y)| {
                PathElement::new(
                    vec![(x + px(12.0) as i32, y - px(6.0) as i32), (x + px(12.0) as i32, y + px(6.0) as i32)],
                    style,
                )
            });
    }
    for &(depth, run_index) in &depths {
        let Some(paper) = reference::paper_result(depth) else { continue };
        let color = PALETTE[run_index % PALETTE.len()];
        let style = color.mix(0.9).stroke_width(px(1.5));
        let line = vec![(0.0, paper.paper_error), (x_max, paper.paper_error)];
        chart
            .draw_series(DashedLineSeries::new(line, px(8.0), px(5.0), style))
            .map_err(e)?
            .label(format!("paper ResNet-{depth}: {:.2}%", paper.paper_error))
            .legend(move |(x, y)| {
                plotters::element::DashedPathElement::new(
                    vec![(x, y), (x + px(24.0) as i32, y)],
                    px(6.0),
                    px(3.0),
                    style,
                )
            });
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, px)?;

    // Loss, on a log scale: it falls by two orders of magnitude over a full run.
    // The axis spans the bands' extremes too: a spike is drawn, not cut off.
    let extremes = runs.iter().flat_map(|r| r.train_loss_range.iter().flat_map(|&(_, l, h)| [l, h]));
    let losses = runs
        .iter()
        .flat_map(|r| r.train_loss.iter().chain(&r.eval_loss))
        .map(|p| p.1)
        .chain(extremes)
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = losses.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo / 1.3, hi * 1.3) } else { (0.01, 10.0) };
    let mut chart = ChartBuilder::on(&bottom)
        .caption(format!("Cross-entropy loss: {eval_name} (thick), training batches (thin)"), (FAMILY, px(22.0)))
        .margin(px(12.0))
        .margin_right(px(28.0))
        .x_label_area_size(px(46.0))
        .y_label_area_size(px(64.0))
        .build_cartesian_2d(0.0..x_max, {
            let (bold, light) = log_ticks(lo, hi);
            (lo..hi).log_scale().with_key_points(bold).with_light_points(light)
        })
        .map_err(e)?;
    styled(
        chart
            .configure_mesh()
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|y| format_loss(*y))
            .x_desc("iteration")
            .y_desc("loss"),
        px,
    )
    .draw()
    .map_err(e)?;
    for (i, run) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let positive = |v: &[(f64, f64)]| v.iter().copied().filter(|p| p.1 > 0.0).collect::<Vec<_>>();
        chart.draw_series(std::iter::once(band(&run.train_loss_range, lo, hi, color))).map_err(e)?;
        chart
            .draw_series(LineSeries::new(positive(&run.train_loss), color.mix(0.35).stroke_width(px(1.5))))
            .map_err(e)?;
        let eval = positive(&run.eval_loss);
        chart.draw_series(LineSeries::new(eval.clone(), color.stroke_width(px(3.0)))).map_err(e)?;
        let points = eval.into_iter().filter(|_| marked(run));
        chart.draw_series(points.map(|p| Circle::new(p, px(3.5), color.filled()))).map_err(e)?;
    }
    Ok(())
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

/// `500`, `12k`, `1.5k`: iterations as axis labels.
pub(super) fn iteration_label(x: f64, x_max: f64) -> String {
    if x_max >= 10_000.0 && x != 0.0 {
        let k = x / 1000.0;
        if (k - k.round()).abs() < 1e-9 { format!("{k:.0}k") } else { format!("{k:.1}k") }
    } else {
        format!("{x:.0}")
    }
}

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

/// The parts of a polyline that lie within `lo..=hi` in y, cut where it crosses a bound:
/// plotters draws whatever it is given, even outside the chart.
pub fn clip_y(points: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |p: &(f64, f64)| p.1 >= lo && p.1 <= hi;
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    if let [only] = points {
        if inside(only) {
            pieces.push(vec![*only]);
        }
        return pieces;
    }
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let at = |t: f64| (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
        let (t0, t1) = if a.1 == b.1 {
            if inside(&a) { (0.0, 1.0) } else { (1.0, 0.0) }
        } else {
            let (tl, th) = ((lo - a.1) / (b.1 - a.1), (hi - a.1) / (b.1 - a.1));
            (tl.min(th).max(0.0), tl.max(th).min(1.0))
        };
        if t0 > t1 {
            if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
            }
            continue;
        }
        if t0 > 0.0 && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current.push(at(t0));
        }
        current.push(at(t1));
        if t1 < 1.0 {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, started, step};

    #[test]
    fn a_one_batch_spike_survives_bucketing_in_the_band() {
        let mut events = vec![started(20, 0)];
        events.extend((1..=8_000).map(|i| step(i, if i == 5_555 { 99.0 } else { 10.0 })));
        let curves = Curves::from_history(&History::from_events(&events), "r");
        assert!(curves.train_error.len() <= TRAIN_POINTS);
        let mean_max = curves.train_error.iter().map(|p| p.1).fold(0.0, f64::max);
        let band_max = curves.train_error_range.iter().map(|p| p.2).fold(0.0, f64::max);
        assert!(mean_max < 15.0, "the mean of its bucket hides it: {mean_max}");
        assert_eq!(band_max, 99.0);
        assert!(curves.train_error_range.iter().all(|&(_, lo, hi)| lo <= hi && lo == 10.0));
    }

    #[test]
    fn clipping_cuts_lines_at_the_bounds() {
        assert_eq!(
            clip_y(&[(0.0, 5.0), (1.0, 15.0), (2.0, 5.0)], 0.0, 10.0),
            [vec![(0.0, 5.0), (0.5, 10.0)], vec![(1.5, 10.0), (2.0, 5.0)]]
        );
        assert_eq!(
            clip_y(&[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)], 0.0, 10.0),
            [vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]]
        );
        assert!(clip_y(&[(0.0, 20.0), (1.0, 30.0)], 0.0, 10.0).is_empty());
        assert_eq!(clip_y(&[(0.0, 5.0)], 0.0, 10.0), [vec![(0.0, 5.0)]]);
    }

    #[test]
    fn unknown_extensions_are_refused_by_name() {
        assert_eq!(Format::of(Path::new("a.PNG")).unwrap(), Format::Png);
        assert_eq!(Format::of(Path::new("a.svg")).unwrap(), Format::Svg);
        let err = Format::of(Path::new("curves.jpg")).unwrap_err().to_string();
        assert!(err.contains("curves.jpg") && err.contains(".png or .svg"), "{err}");
        assert!(Format::of(Path::new("curves")).is_err());
    }

    #[test]
    fn long_runs_are_averaged_to_a_few_hundred_points() {
        let mut events = vec![started(20, 0)];
        events.extend((1..=4000).map(|i| step(i, if i % 2 == 0 { 10.0 } else { 20.0 })));
        let c = Curves::from_history(&History::from_events(&events), "x");
        assert_eq!(c.train_error.len(), 400);
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
