//! `plot --figure 1|6|7`: runs laid out as the paper's figures. Figure 1: plain nets, training
//! error (left) and test error (right). Figure 6: plain nets (left) and ResNets (right), training
//! error thin and dashed, test error bold, one colour per depth. Figure 7: the standard deviation
//! of every 3x3 layer's response at a run's newest evaluation, by layer (top) and sorted by
//! magnitude (bottom), one colour per run.

use super::kit::{
    self, Axes, Format, Picture, Scale, check_size, clip_y, colour, labelled_line, legend, line_swatch, panel,
    render_picture,
};
use crate::cli::PlotArgs;
use crate::config::Shortcut;
use crate::format::{count_short, iteration_label};
use crate::frontend::history::History;
use crate::frontend::series::Series;
use crate::train::evaluate::CheckpointEval;
use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// The error axis of Figures 1 and 6 (the paper's), raised only where a run ends above it.
const ERROR_AXIS: f64 = 20.0;
/// Training curves are merged to at most this many points (and at least half as many), each
/// the mean of its batches: a batch's error is noisy.
const TRAIN_POINTS: usize = 128;

/// The figures the paper's CIFAR-10 section has that runs can be drawn as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    One,
    Six,
    Seven,
}

impl Figure {
    pub fn from_number(n: u8) -> Option<Figure> {
        match n {
            1 => Some(Figure::One),
            6 => Some(Figure::Six),
            7 => Some(Figure::Seven),
            _ => None,
        }
    }
}

/// What a figure needs of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureRun {
    /// `Plain-56`, `ResNet-20`.
    pub network: String,
    pub depth: u32,
    pub plain: bool,
    /// (iteration, training error %), the batches merged by their mean.
    pub train_error: Vec<(f64, f64)>,
    /// (iteration, test error %) of each evaluation.
    pub test_error: Vec<(f64, f64)>,
    /// The newest evaluation's layer responses and its iteration (empty before schema 1.5).
    pub responses: Vec<f64>,
    pub responses_iter: u64,
    /// The iterations the run's recipe plans, and how far it has come.
    pub planned: u64,
    pub reached: u64,
}

impl FigureRun {
    pub fn from_history(history: &History) -> Option<FigureRun> {
        let config = &history.info.as_ref()?.config;
        let train_error =
            Series::of_steps(&history.steps, TRAIN_POINTS, |s| s.error).iter().map(|p| (p.iter, p.y)).collect();
        let evals = history.evals.iter().filter(|e| e.error.is_finite());
        let latest = history.evals.iter().rev().find(|e| !e.responses.is_empty());
        Some(FigureRun {
            network: config.network_name(),
            depth: config.depth.get(),
            plain: config.shortcut == Shortcut::None,
            train_error,
            test_error: evals.map(|e| (e.iter as f64, e.error)).collect(),
            responses: latest.map(|e| e.responses.clone()).unwrap_or_default(),
            responses_iter: latest.map_or(0, |e| e.iter),
            planned: config.iters,
            reached: history.iters(),
        })
    }

    /// The legend's name: the network, and how far a run still training has come
    /// (`Plain-56 (8.2k of 64k)`), since its curve stops short of the axis's end.
    pub fn label(&self) -> String {
        if self.reached < self.planned {
            format!("{} ({} of {})", self.network, count_short(self.reached), count_short(self.planned))
        } else {
            self.network.clone()
        }
    }
}

/// The end of the iteration axis: the furthest any run plans to go, as the paper draws its
/// figures to the recipe's end, or the furthest point drawn where a run went past its plan.
fn iteration_axis(runs: &[&FigureRun]) -> f64 {
    let drawn = runs.iter().flat_map(|r| r.train_error.iter().chain(&r.test_error)).map(|p| p.0);
    let planned = runs.iter().map(|r| r.planned as f64);
    drawn.chain(planned).fold(1.0, f64::max)
}

/// The run directories named: each run as given, each sweep (or folder of runs) as its runs.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let holds_runs = path.is_dir()
            && (path.join(crate::sweep::SWEEP_FILE).is_file()
                || (!path.join(crate::rundir::CONFIG_NAME).exists() && !crate::runlog::log_path(path).exists()));
        if holds_runs {
            let members = crate::sweep::members(path)?;
            out.extend(members.into_iter().map(|m| m.dir).filter(|d| crate::runlog::log_path(d).exists()));
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// `plot --figure N`: the runs (or sweeps) drawn as figure N.
pub fn run(args: &PlotArgs, n: u8) -> Result<()> {
    let format = Format::of(&args.output)?;
    check_size(args.width, args.height)?;
    let figure = Figure::from_number(n).ok_or_else(|| anyhow!("--figure {n}: choose 1, 6 or 7"))?;
    plot(figure, &args.runs, args.data_dir.as_deref(), &args.output, format, (args.width, args.height))
        .with_context(|| format!("{}: cannot draw figure {n}", args.output.display()))?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

/// Reads the runs and draws `figure` to `path`.
pub fn plot(
    figure: Figure,
    paths: &[PathBuf],
    data_dir: Option<&Path>,
    path: &Path,
    format: Format,
    size: (u32, u32),
) -> Result<()> {
    let mut runs = Vec::new();
    for run in expand(paths)? {
        let log = super::load(&run)?;
        let history = History::from_events(&log.events);
        let mut figure_run =
            FigureRun::from_history(&history).with_context(|| format!("{}: the run never started", run.display()))?;
        if figure == Figure::Seven && figure_run.responses.is_empty() {
            match responses_from_checkpoint(&run, &history, data_dir) {
                Ok((e, logged)) => {
                    eprintln!("{}", computed_line(&run, &e, logged));
                    figure_run.responses = e.result.responses;
                    figure_run.responses_iter = e.iter;
                }
                Err(why) => eprintln!("{}: left out: its log has no layer responses, {why:#}", run.display()),
            }
        }
        runs.push(figure_run);
    }
    check(figure, &runs)?;
    render(figure, &runs, path, format, size)
}

/// The layer responses of a run whose log has none (logs before schema 1.5), computed from its
/// newest checkpoint on the test set as its evaluations would have; with the error its log
/// records at that iteration, to compare.
fn responses_from_checkpoint(
    run: &Path,
    history: &History,
    data_dir: Option<&Path>,
) -> Result<(CheckpointEval, Option<f64>)> {
    // A log given by its path stands for the run directory it is in.
    let dir = if run.is_dir() { run } else { run.parent().unwrap_or(Path::new(".")) };
    let checkpoints = dir.join(crate::rundir::CHECKPOINT_DIR);
    let (_, newest) = crate::train::checkpoint::list_periodic(&checkpoints)
        .pop()
        .ok_or_else(|| anyhow!("and {} holds no periodic checkpoint to compute them from", checkpoints.display()))?;
    let e = crate::train::evaluate::evaluate_checkpoint(
        &newest,
        tch::Device::Cpu,
        None,
        data_dir,
        crate::train::evaluate::EvalImages::Test,
    )
    .context("and they cannot be computed from its checkpoint")?;
    let logged = history.evals.iter().rev().find(|r| r.iter == e.iter).map(|r| r.error);
    Ok((e, logged))
}

/// `RUN: its log has no layer responses: computed from its checkpoint at iteration 64000 (fp32):
/// test error 8.51 %, as its log records`.
fn computed_line(run: &Path, e: &CheckpointEval, logged: Option<f64>) -> String {
    let against = match logged {
        Some(l) if (l - e.result.error).abs() < 0.005 => ", as its log records".to_string(),
        Some(l) => format!(", where its log records {l:.2} %"),
        None => String::new(),
    };
    format!(
        "{}: its log has no layer responses: computed from its checkpoint at iteration {} ({}): test error {:.2} %{against}",
        run.display(),
        e.iter,
        e.precision,
        e.result.error,
    )
}

/// Refuses a figure its runs cannot make, in one line.
pub fn check(figure: Figure, runs: &[FigureRun]) -> Result<()> {
    match figure {
        Figure::One if !runs.iter().any(|r| r.plain) => {
            bail!("figure 1 compares plain nets: none of these runs is one (train them with --plain)")
        }
        Figure::Six | Figure::One if runs.iter().all(|r| r.train_error.is_empty() && r.test_error.is_empty()) => {
            bail!("nothing to plot: no run has a step or an evaluation")
        }
        Figure::Seven if runs.iter().all(|r| r.responses.is_empty()) => bail!(
            "figure 7 needs layer responses: none of these runs has logged them, nor could they be computed from their \
             checkpoints (logs before schema 1.5 have none; they come with each evaluation)"
        ),
        _ => Ok(()),
    }
}

pub fn render(figure: Figure, runs: &[FigureRun], path: &Path, format: Format, size: (u32, u32)) -> Result<()> {
    struct Drawn<'a>(Figure, &'a [FigureRun]);
    impl Picture for Drawn<'_> {
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
            draw(self.0, root, self.1)
        }
    }
    render_picture(&Drawn(figure, runs), path, format, size)
}

fn draw<DB: DrawingBackend>(figure: Figure, root: &DrawingArea<DB, Shift>, runs: &[FigureRun]) -> Result<()> {
    root.fill(&WHITE).map_err(kit::failed)?;
    let (w, h) = root.dim_in_pixel();
    let scale = Scale::of(root);
    let depths = depth_colours(runs);
    match figure {
        Figure::Six => {
            let (plain, residual): (Vec<&FigureRun>, Vec<&FigureRun>) = runs.iter().partition(|r| r.plain);
            let y_max = error_axis(runs.iter());
            let (left, right) = root.split_horizontally(w / 2);
            errors(&left, "plain networks", &plain, &depths, Curves::Both, y_max, scale)?;
            errors(&right, "ResNets", &residual, &depths, Curves::Both, y_max, scale)?;
        }
        Figure::One => {
            let plain: Vec<&FigureRun> = runs.iter().filter(|r| r.plain).collect();
            let y_max = error_axis(plain.iter().copied());
            let (left, right) = root.split_horizontally(w / 2);
            errors(&left, "training error", &plain, &depths, Curves::Train, y_max, scale)?;
            errors(&right, "test error", &plain, &depths, Curves::Test, y_max, scale)?;
        }
        Figure::Seven => {
            let with: Vec<&FigureRun> = runs.iter().filter(|r| !r.responses.is_empty()).collect();
            let (top, bottom) = root.split_vertically(h / 2);
            responses(&top, "layer index (original)", &with, false, scale)?;
            responses(&bottom, "layer index (sorted by magnitude)", &with, true, scale)?;
        }
    }
    Ok(())
}

/// The palette index of each depth: the shallowest first, the same in every panel.
fn depth_colours(runs: &[FigureRun]) -> Vec<u32> {
    let mut depths: Vec<u32> = runs.iter().map(|r| r.depth).collect();
    depths.sort_unstable();
    depths.dedup();
    depths
}

fn colour_of(depths: &[u32], depth: u32) -> RGBColor {
    colour(depths.iter().position(|&d| d == depth).unwrap_or(0))
}

/// 20 %, as the paper's Figure 6, or higher where a run's last training or test error is above
/// it: a tenth more than the highest end, rounded up to 10 %, so that a noisy training curve
/// around that end stays in the picture.
fn error_axis<'a>(runs: impl Iterator<Item = &'a FigureRun>) -> f64 {
    let ends = runs.flat_map(|r| r.train_error.last().into_iter().chain(r.test_error.last()).map(|p| p.1));
    let top = ends.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if top <= ERROR_AXIS { ERROR_AXIS } else { ((top * 1.1 / 10.0).ceil() * 10.0).min(100.0) }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Curves {
    Train,
    Test,
    Both,
}

fn errors<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    runs: &[&FigureRun],
    depths: &[u32],
    curves: Curves,
    y_max: f64,
    scale: Scale,
) -> Result<()> {
    let x_max = iteration_axis(runs);
    let caption = match curves {
        Curves::Both => format!("{title}: training (dashed), test (bold)"),
        _ => title.to_string(),
    };
    let x_label = |x: &f64| iteration_label(*x, x_max);
    let axes =
        Axes { x_desc: Some("iteration"), y_desc: "error (%)", x_label: &x_label, y_label: &|y| format!("{y:.0}") };
    let mut chart = panel(area, &caption, (0.0..x_max, 0.0..y_max), &axes, scale)?;
    if runs.is_empty() {
        return Ok(());
    }
    for run in runs {
        let color = colour_of(depths, run.depth);
        if curves != Curves::Test {
            let style = color.stroke_width(scale.px(if curves == Curves::Both { 1.5 } else { 3.0 }));
            for piece in clip_y(&run.train_error, 0.0, y_max) {
                if curves == Curves::Both {
                    chart
                        .draw_series(DashedLineSeries::new(piece, scale.px(6.0), scale.px(4.0), style))
                        .map_err(kit::failed)?;
                } else {
                    chart.draw_series(LineSeries::new(piece, style)).map_err(kit::failed)?;
                }
            }
        }
        let mut tests = Vec::new();
        if curves != Curves::Train {
            // A dot at each evaluation: the first one alone would make no line.
            let inside = run.test_error.iter().filter(|p| p.1 <= y_max).copied();
            chart.draw_series(inside.map(|p| Circle::new(p, scale.px(3.0), color.filled()))).map_err(kit::failed)?;
            tests = clip_y(&run.test_error, 0.0, y_max);
        }
        labelled_line(&mut chart, tests, color.stroke_width(scale.px(3.0)), &run.label(), scale)?;
    }
    // Error curves fall from the upper left to the lower right: the lower left stays empty.
    legend(&mut chart, SeriesLabelPosition::LowerLeft, scale)
}

fn responses<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x_desc: &str,
    runs: &[&FigureRun],
    sorted: bool,
    scale: Scale,
) -> Result<()> {
    let x_max = runs.iter().map(|r| r.responses.len()).max().unwrap_or(1) as f64;
    let y_max = runs.iter().flat_map(|r| r.responses.iter().copied()).fold(0.0, f64::max) * 1.1;
    let title = if sorted { "std of layer responses, sorted by magnitude" } else { "std of layer responses" };
    let axes =
        Axes { x_desc: Some(x_desc), y_desc: "std", x_label: &|x| format!("{x:.0}"), y_label: &|y| format!("{y:.1}") };
    let mut chart = panel(area, title, (0.0..x_max + 1.0, 0.0..y_max.max(1e-6)), &axes, scale)?;
    for (i, run) in runs.iter().enumerate() {
        let color = colour(i);
        let mut values = run.responses.clone();
        if sorted {
            values.sort_by(|a, b| b.total_cmp(a));
        }
        let points: Vec<(f64, f64)> = values.iter().enumerate().map(|(k, &v)| ((k + 1) as f64, v)).collect();
        let label = format!("{} (iteration {})", run.network, run.responses_iter);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(scale.px(2.0))))
            .map_err(kit::failed)?
            .label(label)
            .legend(line_swatch(color.stroke_width(scale.px(2.0)), scale));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, scale.px(2.5), color.filled())))
            .map_err(kit::failed)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::history::tests::{eval, started, step};
    use crate::protocol::Event;

    fn plain_run(depth: u32, responses: Vec<f64>) -> History {
        let mut events = vec![started(depth, 0)];
        if let Event::RunStarted { run, .. } = &mut events[0] {
            run.config.shortcut = Shortcut::None;
        }
        events.extend((1..=50).map(|i| step(i, 40.0)));
        let mut last = eval(50, 30.0);
        if let Event::Eval(e) = &mut last {
            e.responses = responses;
        }
        events.push(last);
        History::from_events(&events)
    }

    #[test]
    fn a_run_gives_its_network_its_curves_and_its_newest_responses() {
        let run = FigureRun::from_history(&plain_run(56, vec![1.0, 2.0])).unwrap();
        assert_eq!((run.network.as_str(), run.depth, run.plain), ("Plain-56", 56, true));
        assert_eq!(run.test_error, vec![(50.0, 30.0)]);
        assert_eq!((run.responses, run.responses_iter), (vec![1.0, 2.0], 50));
        assert!(run.train_error.iter().all(|p| p.1 == 40.0) && !run.train_error.is_empty());
    }

    #[test]
    fn a_run_still_training_spans_the_axis_to_its_plan_and_says_how_far_it_came() {
        let mut run = FigureRun::from_history(&plain_run(56, Vec::new())).unwrap();
        assert_eq!((run.reached, run.planned), (50, 100));
        assert_eq!(run.label(), "Plain-56 (50 of 100)");
        assert_eq!(iteration_axis(&[&run]), 100.0);
        run.planned = 64_000;
        run.reached = 8_235;
        assert_eq!(run.label(), "Plain-56 (8.2k of 64k)");
        assert_eq!(iteration_axis(&[&run]), 64_000.0);
        run.reached = 64_000;
        assert_eq!(run.label(), "Plain-56", "a finished run is named alone");
        run.planned = 20;
        assert_eq!(iteration_axis(&[&run]), 50.0, "a point past the plan stays in the picture");
    }

    #[test]
    fn figures_refuse_runs_that_cannot_make_them() {
        let resnet = FigureRun::from_history(&History::from_events(&[started(20, 0), step(1, 50.0)])).unwrap();
        let err = check(Figure::One, std::slice::from_ref(&resnet)).unwrap_err().to_string();
        assert!(err.contains("--plain"), "{err}");
        let err = check(Figure::Seven, &[resnet]).unwrap_err().to_string();
        assert!(err.contains("schema 1.5"), "{err}");
        let plain = FigureRun::from_history(&plain_run(20, vec![1.0])).unwrap();
        assert!(check(Figure::One, std::slice::from_ref(&plain)).is_ok());
        assert!(check(Figure::Seven, &[plain]).is_ok());
    }

    #[test]
    fn the_error_axis_is_the_papers_unless_a_run_ends_above_it() {
        let mut run = FigureRun::from_history(&plain_run(20, Vec::new())).unwrap();
        run.test_error = vec![(1.0, 90.0), (50.0, 12.0)];
        run.train_error = vec![(50.0, 8.0)];
        assert_eq!(error_axis(std::iter::once(&run)), 20.0);
        run.test_error.push((60.0, 23.4));
        assert_eq!(error_axis(std::iter::once(&run)), 30.0);
        run.train_error.push((60.0, 63.88));
        assert_eq!(error_axis(std::iter::once(&run)), 80.0);
        run.train_error.push((70.0, 95.0));
        assert_eq!(error_axis(std::iter::once(&run)), 100.0);
    }

    #[test]
    fn each_depth_keeps_one_colour_in_both_panels() {
        let runs: Vec<FigureRun> =
            [56, 20, 56].iter().map(|&d| FigureRun::from_history(&plain_run(d, Vec::new())).unwrap()).collect();
        let depths = depth_colours(&runs);
        assert_eq!(depths, vec![20, 56]);
        assert_eq!(colour_of(&depths, 56), crate::report::kit::PALETTE[1]);
    }
}
