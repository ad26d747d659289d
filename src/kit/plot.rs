//! PNGs of [`Figure`]s (`app::figure`: panels, axes and styled series already decided) —
//! `solve --plot` and the figures of a training run. Every series is clipped to its panel's
//! ranges, so nothing is drawn over an axis or the title. Text uses a DejaVu Sans subset
//! embedded in the binary (`assets/fonts`), since no system fonts are assumed. Written to a
//! temporary file beside the target and renamed, so no half-written PNG remains.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::app::figure::{self, Corner, Figure, Panel, Series, Style, Trajectories};
use crate::app::sde::{self, mean_sd};
use crate::diag::Diag;
use crate::solve::Solution;
use crate::solve::sde::SdeSolution;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
/// Matplotlib's `tab10`: distinct and readable on white.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// An ODE solve's PNG, titled `model: method (rtol R)`.
pub fn plot_ode(
    path: &Path,
    model: &str,
    names: &[String],
    sol: &Solution,
    rtol: f64,
) -> Result<(), Diag> {
    let title = format!("{model}: {} (rtol {rtol:e})", sol.method);
    let tr = Trajectories {
        title: &title,
        names,
        ts: &sol.ts,
        us: &sol.us,
        sd: None,
    };
    plot_trajectories(path, &tr)
}

/// An SDE solve's PNG: mean ± one sd over the paths, titled with the method, paths and seed.
pub fn plot_sde(
    path: &Path,
    model: &str,
    names: &[String],
    plan: &sde::Plan,
    sol: &SdeSolution,
) -> Result<(), Diag> {
    let ts = plan.opts.save_at.as_slice();
    let (mean, sd) = mean_sd(sol, ts.len(), names.len());
    let paths = if plan.paths == 1 { "path" } else { "paths" };
    let title = format!(
        "{model}: {}, {} {paths}, seed {}",
        plan.method.name(),
        plan.paths,
        plan.seed
    );
    let tr = Trajectories {
        title: &title,
        names,
        ts,
        us: &mean,
        sd: Some(&sd),
    };
    plot_trajectories(path, &tr)
}

fn plot_trajectories(path: &Path, tr: &Trajectories) -> Result<(), Diag> {
    let fig = figure::trajectories(tr).ok_or_else(|| plot_error(path, "no saved times to plot"))?;
    plot(path, &fig)
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Diag {
    Diag::error(
        "glassbox::plot_failed",
        format!("cannot draw `{}`: {e}", path.display()),
    )
    .help(
        "the figure itself could not be drawn (nothing was written); `-o FILE.csv` writes its data",
    )
}

/// Draw `fig` into the PNG `path`.
pub fn plot(path: &Path, fig: &Figure) -> Result<(), Diag> {
    static REGISTER: Once = Once::new();
    let mut registered = Ok(());
    REGISTER.call_once(|| {
        registered = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "the embedded font is invalid");
    });
    registered.map_err(|e| plot_error(path, e))?;

    let png = render_png(fig).map_err(|e| plot_error(path, e))?;
    // The file through the one atomic writer: a full disk or a missing directory is the same
    // `glassbox::io_error` as for a CSV, and never a half-written PNG.
    super::io::write_atomic(path, &png)
}

/// `fig` drawn into an RGB buffer and encoded as PNG bytes (no file touched).
fn render_png(fig: &Figure) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let (w, h) = size(fig.grid);
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    draw(BitMapBackend::with_buffer(&mut rgb, (w, h)), fig)?;
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(png)
}

/// A linear axis' tick label: plotters' ticks are sums like `0.30000000000000004`, so print
/// three significant digits of the axis span and drop trailing zeros; scientific notation
/// where the axis' magnitude is below 1e-3 or from 1e5 up.
fn tick(v: f64, span: f64) -> String {
    let a = v.abs().max(span.abs());
    if v == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (3.0 - span.abs().max(1e-300).log10().floor()).clamp(0.0, 12.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A log axis' tick label for the exponent `e`: `10^e` in plain digits from 0.001 to 10 000,
/// else in scientific notation; two significant digits between the decades.
fn log_tick(e: f64) -> String {
    let v = 10f64.powf(e);
    let decade = (e - e.round()).abs() < 1e-9;
    if !(-3.5..4.5).contains(&e) {
        return if decade {
            format!("1e{}", e.round())
        } else {
            format!("{v:.1e}")
        };
    }
    let digits = if decade { 0.0 } else { 1.0 };
    let decimals = (digits - e.floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// `(width, height)` of a figure with a `(rows, columns)` grid of panels.
fn size(grid: (usize, usize)) -> (u32, u32) {
    let (rows, cols) = (grid.0.max(1) as u32, grid.1.max(1) as u32);
    let width = 1000 + 400 * (cols - 1);
    let height = (260 * rows).max(540) + 50;
    (width, height)
}

fn draw(backend: BitMapBackend, fig: &Figure) -> Result<(), Box<dyn std::error::Error>> {
    let root = backend.into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&fig.title, ("sans-serif", 26))?;
    let areas = root.split_evenly(fig.grid);
    let rows = fig.grid.0.max(1);
    for (k, (area, panel)) in areas.iter().zip(&fig.panels).enumerate() {
        // Only the bottom row names the abscissa; the others keep room for its ticks.
        let bottom = k / fig.grid.1.max(1) + 1 == rows || k + fig.grid.1 >= fig.panels.len();
        draw_panel(area, panel, bottom)?;
    }
    root.present()?;
    Ok(())
}

/// `p` moved into the ranges: a line leaving the frame runs along its edge rather than over
/// the axes or the title.
fn clamp((x, y): (f64, f64), xr: (f64, f64), yr: (f64, f64)) -> (f64, f64) {
    (x.clamp(xr.0, xr.1), y.clamp(yr.0, yr.1))
}

fn inside((x, y): (f64, f64), xr: (f64, f64), yr: (f64, f64)) -> bool {
    (xr.0..=xr.1).contains(&x) && (yr.0..=yr.1).contains(&y)
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    panel: &Panel,
    bottom: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let (xr, yr) = (ordered(panel.x.range), ordered(panel.y.range));
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .margin_right(24)
        .x_label_area_size(if bottom { 48 } else { 28 })
        .y_label_area_size(88);
    if let Some(c) = &panel.caption {
        builder.caption(c, ("sans-serif", 18));
    }
    let mut chart = builder.build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?;
    let x_fmt = |v: &f64| {
        if panel.x.log {
            log_tick(*v)
        } else {
            tick(*v, xr.1 - xr.0)
        }
    };
    let y_fmt = |v: &f64| {
        if panel.y.log {
            log_tick(*v)
        } else {
            tick(*v, yr.1 - yr.0)
        }
    };
    chart
        .configure_mesh()
        .x_desc(if bottom { panel.x.label.as_str() } else { "" })
        .y_desc(panel.y.label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(244, 244, 244))
        .draw()?;
    for s in &panel.series {
        draw_series(&mut chart, s, xr, yr)?;
    }
    if panel.series.iter().any(|s| s.label.is_some()) {
        chart
            .configure_series_labels()
            .position(match panel.legend {
                Corner::UpperRight => SeriesLabelPosition::UpperRight,
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    Ok(())
}

/// A range with its ends in order and apart (plotters cannot map an empty range).
fn ordered((a, b): (f64, f64)) -> (f64, f64) {
    let (lo, hi) = (a.min(b), a.max(b));
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    }
}

fn draw_series<'a>(
    chart: &mut Chart<'a, 'a>,
    s: &Series,
    xr: (f64, f64),
    yr: (f64, f64),
) -> Result<(), Box<dyn std::error::Error>> {
    let color = COLORS[s.color % COLORS.len()];
    let clamped = s.points.iter().map(move |&p| clamp(p, xr, yr));
    let drawn = match s.style {
        Style::Line { width } => {
            chart.draw_series(LineSeries::new(clamped, color.stroke_width(width)))?
        }
        Style::Faint => {
            chart.draw_series(LineSeries::new(clamped, color.mix(0.3).stroke_width(1)))?
        }
        Style::Markers => chart.draw_series(
            s.points
                .iter()
                .filter(|&&p| inside(p, xr, yr))
                .map(|&p| Circle::new(p, 3, color.mix(0.6).filled())),
        )?,
        Style::Band => chart.draw_series(std::iter::once(Polygon::new(
            clamped.collect::<Vec<_>>(),
            color.mix(0.18).filled(),
        )))?,
    };
    let Some(label) = &s.label else {
        return Ok(());
    };
    let drawn = drawn.label(label.as_str());
    let line = move |(x, y): (i32, i32), w: u32| {
        PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(w))
    };
    match s.style {
        Style::Line { width } => drawn.legend(move |p| line(p, width + 1)),
        Style::Faint => drawn.legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 22, y)], color.mix(0.3).stroke_width(2))
        }),
        Style::Markers => drawn.legend(move |(x, y)| Circle::new((x + 11, y), 3, color.filled())),
        Style::Band => drawn.legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + Rectangle::new([(0, -7), (22, 7)], color.mix(0.18).filled())
                + PathElement::new(vec![(0, 0), (22, 0)], color.stroke_width(3))
        }),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{log_tick, tick};

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.30000000000000004, 1.0), "0.3");
        assert_eq!(tick(0.7999999999999999, 1.0), "0.8");
        assert_eq!(tick(15.0, 40.0), "15");
        assert_eq!(tick(2.5, 40.0), "2.5");
        assert_eq!(tick(0.0, 1.0), "0");
        assert_eq!(tick(2e5, 1e6), "2.00e5");
        assert_eq!(tick(3.5e-5, 3.6e-5), "3.50e-5");
        assert_eq!(tick(0.0005, 0.002), "0.0005");
    }

    #[test]
    fn log_ticks_read_as_values() {
        assert_eq!(log_tick(0.0), "1");
        assert_eq!(log_tick(-2.0), "0.01");
        assert_eq!(log_tick(3.0), "1000");
        assert_eq!(log_tick(-2.5), "0.0032");
        assert_eq!(log_tick(-6.0), "1e-6");
        assert_eq!(log_tick(-5.5), "3.2e-6");
    }
}
