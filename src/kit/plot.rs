//! `--plot`: trajectories as a PNG people want to read — title, axes with labels, a legend.
//!
//! States whose magnitudes differ by more than [`PANEL_RATIO`] get one panel each (Robertson's
//! y2 is 1e-5 next to y1, y3 ≈ 1); a time axis starting at 0 whose saved times span more than
//! four decades is drawn logarithmic (as the classic Robertson figure is). Text uses a DejaVu
//! Sans subset embedded in the binary (`assets/fonts`), since no system fonts are assumed.
//! Written to a temporary file beside the target and renamed, so no half-written PNG remains.
//! SDE solves pass a mean and a standard deviation: each state is a translucent band of
//! mean ± one sd under its mean line, legend "name mean ± 1 sd".

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::app::sde::{self, mean_sd};
use crate::diag::Diag;
use crate::solve::Solution;
use crate::solve::sde::SdeSolution;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
const PANEL_RATIO: f64 = 100.0;
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

/// What to draw: saved times, row-major states `[ts.len(), names.len()]`; with `sd` (same
/// layout) `us` is a mean over sample paths, drawn as a line inside a band of ± `sd`.
pub struct Trajectories<'a> {
    pub title: &'a str,
    pub names: &'a [String],
    pub ts: &'a [f64],
    pub us: &'a [f64],
    pub sd: Option<&'a [f64]>,
    /// Axis titles: the abscissa (`t`, `iteration`), and the ordinate of a panel with several
    /// series (a panel with one series is titled by its name).
    pub axes: (&'a str, &'a str),
}

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
        axes: ("t", "state"),
        sd: None,
    };
    plot(path, &tr)
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
        axes: ("t", "state"),
        sd: Some(&sd),
    };
    plot(path, &tr)
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Diag {
    Diag::error(
        "glassbox::plot_failed",
        format!("cannot draw `{}`: {e}", path.display()),
    )
    .help("check that the directory exists and is writable")
}

pub fn plot(path: &Path, tr: &Trajectories) -> Result<(), Diag> {
    static REGISTER: Once = Once::new();
    let mut registered = Ok(());
    REGISTER.call_once(|| {
        registered = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "the embedded font is invalid");
    });
    registered.map_err(|e| plot_error(path, e))?;

    let tmp = super::io::temp_path(path, "png");
    let result = draw(&tmp, tr).map_err(|e| plot_error(path, e));
    let result = result.and_then(|()| std::fs::rename(&tmp, path).map_err(|e| plot_error(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Groups of state indices sharing a panel: all together unless their scales differ widely.
fn panels(tr: &Trajectories) -> Vec<Vec<usize>> {
    let n = tr.names.len();
    let scale: Vec<f64> = (0..n)
        .map(|i| {
            tr.us
                .iter()
                .skip(i)
                .step_by(n.max(1))
                .fold(0.0f64, |m, x| m.max(x.abs()))
        })
        .collect();
    let (lo, hi) = scale
        .iter()
        .filter(|s| **s > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), s| {
            (lo.min(*s), hi.max(*s))
        });
    if n <= 1 || hi / lo <= PANEL_RATIO || n > 6 {
        vec![(0..n).collect()]
    } else {
        (0..n).map(|i| vec![i]).collect()
    }
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

fn draw(tmp: &Path, tr: &Trajectories) -> Result<(), Box<dyn std::error::Error>> {
    let n = tr.names.len();
    let groups = panels(tr);
    let (Some(&t_first), Some(&t_last)) = (tr.ts.first(), tr.ts.last()) else {
        return Err("no saved times to plot".into());
    };
    let first_positive = tr.ts.iter().copied().find(|t| *t > 0.0);
    // Logarithmic when the steps crowd the start: more than half of the saved times in the
    // first 1% of the span (a stiff transient), over at least four decades.
    let early = tr
        .ts
        .iter()
        .filter(|&&t| (t - t_first).abs() <= 0.01 * (t_last - t_first).abs())
        .count();
    let log_t = match first_positive {
        Some(tp) => t_first >= 0.0 && t_last / tp > 1e4 && 2 * early > tr.ts.len(),
        None => false,
    };
    let x_of = |t: f64| if log_t { t.log10() } else { t };
    let points: Vec<usize> = (0..tr.ts.len())
        .filter(|&k| !log_t || tr.ts[k] > 0.0)
        .collect();
    let (x0, x1) = if log_t {
        (x_of(first_positive.unwrap_or(1.0)), x_of(t_last))
    } else {
        (t_first.min(t_last), t_first.max(t_last))
    };
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };

    let sd_at = |j: usize| tr.sd.and_then(|s| s.get(j)).copied().unwrap_or(0.0);

    let height = (220 * groups.len() as u32).max(520) + 60;
    let root = BitMapBackend::new(tmp, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(tr.title, ("sans-serif", 26))?;
    let areas = root.split_evenly((groups.len(), 1));
    for (g, (area, group)) in areas.iter().zip(&groups).enumerate() {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &k in &points {
            for &i in group {
                let v = tr.us[k * n + i];
                let d = sd_at(k * n + i);
                if v.is_finite() && d.is_finite() {
                    lo = lo.min(v - d);
                    hi = hi.max(v + d);
                }
            }
        }
        if !(lo.is_finite() && hi.is_finite()) {
            (lo, hi) = (-1.0, 1.0);
        }
        let pad = if hi > lo {
            0.05 * (hi - lo)
        } else {
            0.5 * lo.abs().max(1.0)
        };
        let last_panel = g + 1 == groups.len();
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(if last_panel { 45 } else { 25 })
            .y_label_area_size(90)
            .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))?;
        let x_desc = if log_t {
            format!("{} (log scale)", tr.axes.0)
        } else {
            tr.axes.0.to_string()
        };
        let y_desc = if group.len() == 1 {
            tr.names[group[0]].clone()
        } else {
            tr.axes.1.to_string()
        };
        let x_fmt = |v: &f64| {
            if log_t {
                format!("1e{v:.0}")
            } else {
                tick(*v, x1 - x0)
            }
        };
        let span = hi - lo;
        let y_fmt = move |v: &f64| tick(*v, span);
        chart
            .configure_mesh()
            .x_desc(if last_panel { x_desc.as_str() } else { "" })
            .y_desc(y_desc)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 15))
            .light_line_style(RGBColor(244, 244, 244))
            .draw()?;
        for &i in group {
            let color = COLORS[i % COLORS.len()];
            if tr.sd.is_none() {
                chart
                    .draw_series(LineSeries::new(
                        points.iter().map(|&k| (x_of(tr.ts[k]), tr.us[k * n + i])),
                        color.stroke_width(2),
                    ))?
                    .label(tr.names[i].as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
                    });
                continue;
            }
            // The band goes out along the upper edge and back along the lower one.
            let upper = points
                .iter()
                .map(|&k| (x_of(tr.ts[k]), tr.us[k * n + i] + sd_at(k * n + i)));
            let lower = points
                .iter()
                .rev()
                .map(|&k| (x_of(tr.ts[k]), tr.us[k * n + i] - sd_at(k * n + i)));
            let band: Vec<(f64, f64)> = upper
                .chain(lower)
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.18).filled(),
                )))?
                .label(format!("{} mean ± 1 sd", tr.names[i]))
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new([(0, -7), (22, 7)], color.mix(0.18).filled())
                        + PathElement::new(vec![(0, 0), (22, 0)], color.stroke_width(3))
                });
        }
        if tr.sd.is_some() {
            // The mean lines on top of every band.
            for &i in group {
                let color = COLORS[i % COLORS.len()];
                chart.draw_series(LineSeries::new(
                    points.iter().map(|&k| (x_of(tr.ts[k]), tr.us[k * n + i])),
                    color.stroke_width(2),
                ))?;
            }
        }
        // The legend goes where the curves are not at the right edge.
        let tail = &points[points.len() * 3 / 4..];
        let mean_end = tail
            .iter()
            .flat_map(|&k| group.iter().map(move |&i| tr.us[k * n + i]))
            .filter(|v| v.is_finite())
            .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
        let high_end = mean_end.1 > 0 && mean_end.0 / mean_end.1 as f64 > 0.5 * (lo + hi);
        chart
            .configure_series_labels()
            .position(if high_end {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tick;

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
}
