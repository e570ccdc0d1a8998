//! What every picture here is drawn with, written once: the built-in font, the palette, the
//! scale of sizes with the picture, a panel (caption, axes, grid), the legend and its swatches,
//! clipping, and drawing one picture as PNG or SVG. `plot` and `plot --figure` only lay out
//! their charts with it.

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;

/// A point on the picture, in pixels, where a legend entry draws its swatch.
type BackendCoord = (i32, i32);

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/): there is no system font lookup, so
/// text is drawn with the font built into the binary.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

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

/// The `i`th colour of the palette, starting over after the last.
pub(super) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Sizes accepted for `--width` and `--height`.
const MIN_SIDE: u32 = 200;
const MAX_SIDE: u32 = 10_000;

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

/// Refuses a `--width` or `--height` outside what can be drawn, naming the flag.
pub(super) fn check_size(width: u32, height: u32) -> Result<()> {
    for (flag, v) in [("--width", width), ("--height", height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
            bail!("{flag} {v}: must be between {MIN_SIDE} and {MAX_SIDE} pixels");
        }
    }
    Ok(())
}

/// Something drawn onto a drawing area of any backend: the same picture as PNG or as SVG.
pub(super) trait Picture {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Draws `picture` to `path` in `format`, with the built-in font. The picture is drawn in memory
/// and written atomically: a kill leaves the previous file or none, never half of one, and a
/// path that cannot be written is said as such.
pub(super) fn render_picture(picture: &impl Picture, path: &Path, format: Format, size: (u32, u32)) -> Result<()> {
    register_fonts()?;
    let bytes = match format {
        Format::Png => {
            let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                picture.draw(&root)?;
                root.present().map_err(failed)?;
            }
            png(rgb, size)?
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                picture.draw(&root)?;
                root.present().map_err(failed)?;
            }
            svg.into_bytes()
        }
    };
    crate::atomic::write(path, &bytes).context("cannot write")
}

/// An RGB picture of `size` as PNG bytes.
fn png(rgb: Vec<u8>, size: (u32, u32)) -> Result<Vec<u8>> {
    let image = image::RgbImage::from_raw(size.0, size.1, rgb).context("a picture's buffer matches its size")?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).context("encoding the PNG")?;
    Ok(bytes.into_inner())
}

pub(super) fn register_fonts() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        // Bold and the others fall back to the regular face.
        register_font(FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if *ok { Ok(()) } else { bail!("the built-in font does not load") }
}

/// A drawing error as the report's error, in plotters' words: its backend's error types need
/// not be `'static`, so they are carried as text.
pub(super) fn failed<E: std::error::Error + Send + Sync>(
    e: plotters::drawing::DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow!("{e}")
}

/// Sizes in pixels for one picture, from sizes given for a 1200x800 one: text and lines grow
/// with the image, so that a large plot for print is not all lines and no labels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Scale(f64);

impl Scale {
    /// The scale of a picture of `root`'s size.
    pub fn of<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) -> Scale {
        let (w, h) = root.dim_in_pixel();
        Scale((w as f64 / 1200.0).min(h as f64 / 800.0).clamp(0.6, 4.0))
    }

    /// `size`, given for a 1200x800 picture, in this one's pixels.
    pub fn px(self, size: f64) -> u32 {
        (size * self.0).round() as u32
    }
}

/// A panel's axes: their descriptions and how their values are written.
pub(super) struct Axes<'f> {
    /// `None` for a panel above another that says it.
    pub x_desc: Option<&'f str>,
    pub y_desc: &'f str,
    pub x_label: &'f dyn Fn(&f64) -> String,
    pub y_label: &'f dyn Fn(&f64) -> String,
}

/// A chart of `x` and `y` axes.
pub(super) type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

/// A chart whose axes are both linear.
pub(super) type LinearChart<'a, DB> = Chart<'a, DB, RangedCoordf64, RangedCoordf64>;

/// One panel: its caption, and axes spanning `x` and `y` with quiet grid lines, so that the
/// curves stand out; laid out alike in every picture. `scale` sizes it for the picture.
pub(super) fn panel<'a, DB, X, Y>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    (x, y): (X, Y),
    axes: &Axes,
    scale: Scale,
) -> Result<Chart<'a, DB, X::CoordDescType, Y::CoordDescType>>
where
    DB: DrawingBackend + 'a,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    // An axis description needs a line of its own under the labels.
    let x_label_area = if axes.x_desc.is_some() { 46.0 } else { 34.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, scale.px(22.0)))
        .margin(scale.px(12.0))
        .margin_right(scale.px(28.0))
        .x_label_area_size(scale.px(x_label_area))
        .y_label_area_size(scale.px(64.0))
        .build_cartesian_2d(x, y)
        .map_err(failed)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(axes.x_label)
        .y_label_formatter(axes.y_label)
        .y_desc(axes.y_desc)
        .label_style((FAMILY, scale.px(15.0)))
        .axis_desc_style((FAMILY, scale.px(16.0)))
        .light_line_style(BLACK.mix(0.04))
        .max_light_lines(4)
        .bold_line_style(BLACK.mix(0.12));
    if let Some(desc) = axes.x_desc {
        mesh.x_desc(desc);
    }
    mesh.draw().map_err(failed)?;
    Ok(chart)
}

/// The legend at `position` (the upper right unless the curves run there), on a faint white box,
/// as every chart here has it.
pub(super) fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
    scale: Scale,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, scale.px(15.0)))
        .background_style(WHITE.mix(0.88))
        .border_style(BLACK.mix(0.25))
        .margin(scale.px(10.0))
        .legend_area_size(scale.px(30.0))
        .draw()
        .map_err(failed)
}

/// A line's sample in the legend: a short stroke in its style.
pub(super) fn line_swatch(style: ShapeStyle, scale: Scale) -> impl Fn(BackendCoord) -> PathElement<BackendCoord> {
    let length = scale.px(24.0) as i32;
    move |(x, y)| PathElement::new(vec![(x, y), (x + length, y)], style)
}

/// A dashed line's sample in the legend: a short dashed stroke in its style.
pub(super) fn dashed_swatch(
    style: ShapeStyle,
    scale: Scale,
) -> impl Fn(BackendCoord) -> DashedPathElement<std::vec::IntoIter<BackendCoord>, u32> {
    let (length, dash, gap) = (scale.px(24.0) as i32, scale.px(6.0), scale.px(3.0));
    move |(x, y)| DashedPathElement::new(vec![(x, y), (x + length, y)], dash, gap, style)
}

/// A tick's sample in the legend: a short upright stroke in the middle of a line's place.
pub(super) fn tick_swatch(style: ShapeStyle, scale: Scale) -> impl Fn(BackendCoord) -> PathElement<BackendCoord> {
    let (middle, half) = (scale.px(12.0) as i32, scale.px(6.0) as i32);
    move |(x, y)| PathElement::new(vec![(x + middle, y - half), (x + middle, y + half)], style)
}

/// Draws a run's line, in `pieces` (see [`clip_y`]), under one legend entry with `label`. With
/// no piece in the chart the entry is still made: a run whose line lies outside it, or that has
/// none, keeps its place in the legend.
pub(super) fn labelled_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut LinearChart<'a, DB>,
    pieces: Vec<Vec<(f64, f64)>>,
    style: ShapeStyle,
    label: &str,
    scale: Scale,
) -> Result<()> {
    let mut pieces = pieces.into_iter();
    let first = match pieces.next() {
        Some(piece) => chart.draw_series(LineSeries::new(piece, style)).map_err(failed)?,
        None => chart.draw_series(std::iter::empty::<Circle<(f64, f64), u32>>()).map_err(failed)?,
    };
    first.label(label).legend(line_swatch(style, scale));
    for piece in pieces {
        chart.draw_series(LineSeries::new(piece, style)).map_err(failed)?;
    }
    Ok(())
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
    fn sizes_grow_with_the_picture_within_bounds() {
        let mut svg = String::new();
        let root = SVGBackend::with_string(&mut svg, (2400, 1600)).into_drawing_area();
        assert_eq!(Scale::of(&root).px(15.0), 30);
        let mut svg = String::new();
        let root = SVGBackend::with_string(&mut svg, (300, 200)).into_drawing_area();
        assert_eq!(Scale::of(&root).px(10.0), 6, "never below 0.6 of the size given");
    }
}
