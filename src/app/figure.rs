//! Figures as plain data: panels of styled series over axes whose ranges are already decided,
//! so everything a reader judges a plot by (which series, which scale, which range, which
//! colour pairs with which) is computed and tested here, and `kit::plot` only draws it.
//!
//! A logarithmic axis holds `log10` of its values (`Axis::log`): the drawing stays linear and
//! labels the ticks with `10^v`; values that have no logarithm (zero, negative, NaN) are left
//! out of such a series rather than drawn at an arbitrary floor.

/// One PNG: a title over a grid of panels, filled row by row.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    /// `(rows, columns)` of the panel grid.
    pub grid: (usize, usize),
    pub panels: Vec<Panel>,
}

/// One chart of a figure.
#[derive(Clone, Debug)]
pub struct Panel {
    /// A caption above the chart (a state's name when each state has its panel).
    pub caption: Option<String>,
    pub x: Axis,
    pub y: Axis,
    /// Drawn in order: later series on top.
    pub series: Vec<Series>,
    pub legend: Corner,
}

/// An axis: its title and the range shown (in `log10` units when `log`).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub label: String,
    pub range: (f64, f64),
    pub log: bool,
}

/// A legend's place: where the curves are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corner {
    UpperRight,
    LowerRight,
}

/// A series: its points in axis units (already `log10` on a log axis), how it looks, and its
/// legend entry (`None`: not in the legend, e.g. the raw values under a smoothed line).
#[derive(Clone, Debug)]
pub struct Series {
    pub label: Option<String>,
    /// An index into the palette: a state's data and fit share it.
    pub color: usize,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A line, `width` pixels wide.
    Line { width: u32 },
    /// A thin translucent line: the raw values a smoothed line summarises.
    Faint,
    /// Filled circles, no line: observations.
    Markers,
    /// A translucent filled polygon (its points go out along the upper edge and back along
    /// the lower one): mean ± sd.
    Band,
}

/// `log10` of the values that have one, paired with their abscissae.
pub fn log_points(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
    xs.iter()
        .zip(ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite() && **y > 0.0)
        .map(|(&x, &y)| (x, y.log10()))
        .collect()
}

/// Finite points only (NaN breaks would otherwise reach the drawing).
pub fn finite_points(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
    xs.iter()
        .zip(ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(&x, &y)| (x, y))
        .collect()
}

/// The range that shows every finite value with 5% room on each side; a single value gets a
/// range of ±half its magnitude (at least ±0.5), no finite value `(0, 1)`.
pub fn padded_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi > lo {
        let pad = 0.05 * (hi - lo);
        return (lo - pad, hi + pad);
    }
    let half = 0.5 * lo.abs().max(1.0);
    (lo - half, hi + half)
}

/// The most decades a log axis shows: a loss that dips to 1e-20 once would otherwise flatten
/// the rest of its run against the top (the dip runs along the bottom edge instead).
pub const MAX_DECADES: f64 = 6.0;

/// The range of a log axis (in `log10` units) for positive values: at least one decade, so a
/// flat loss does not magnify its rounding into a landscape, and at most [`MAX_DECADES`]
/// below the largest value. `None` when no value is positive and finite (the caller draws
/// that axis linear).
pub fn log_range(values: &[f64]) -> Option<(f64, f64)> {
    let logs: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v > 0.0)
        .map(|v| v.log10())
        .collect();
    if logs.is_empty() {
        return None;
    }
    let (lo, hi) = padded_range(logs);
    let mid = 0.5 * (lo + hi);
    let (lo, hi) = (lo.min(mid - 0.5), hi.max(mid + 0.5));
    Some((lo.max(hi - MAX_DECADES), hi))
}

/// The smoothing window for `n` points: a twentieth of the run, at least 1 (no smoothing).
pub fn smoothing_window(n: usize) -> usize {
    (n / 20).max(1)
}

/// An exponential moving average with span `window` (`α = 2/(window+1)`), bias-corrected as
/// Adam's moments are so the start is not pulled towards 0. Non-finite values are skipped
/// (the average carries on over them); before the first finite value the result is NaN.
pub fn ema(values: &[f64], window: usize) -> Vec<f64> {
    let alpha = 2.0 / (window.max(1) as f64 + 1.0);
    let (mut avg, mut weight) = (0.0, 0.0);
    values
        .iter()
        .map(|&v| {
            if v.is_finite() {
                avg = (1.0 - alpha) * avg + alpha * v;
                weight = (1.0 - alpha) * weight + alpha;
            }
            if weight > 0.0 { avg / weight } else { f64::NAN }
        })
        .collect()
}

/// The EMA of a series drawn on a log axis: averaged in `log10` (a geometric mean, so one
/// spike does not lift the line for a whole window), values without a logarithm skipped.
pub fn log_ema(values: &[f64], window: usize) -> Vec<f64> {
    let logs: Vec<f64> = values
        .iter()
        .map(|&v| if v > 0.0 { v.log10() } else { f64::NAN })
        .collect();
    ema(&logs, window)
}

/// Where the legend goes: at the bottom right when the curves end in the upper half.
pub fn legend_corner(series: &[Series], y: (f64, f64)) -> Corner {
    let tails: Vec<f64> = series
        .iter()
        .filter(|s| s.style != Style::Band)
        .flat_map(|s| s.points[s.points.len() * 3 / 4..].iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .collect();
    let mean = tails.iter().sum::<f64>() / tails.len().max(1) as f64;
    if !tails.is_empty() && mean > 0.5 * (y.0 + y.1) {
        Corner::LowerRight
    } else {
        Corner::UpperRight
    }
}

/// What `solve --plot` draws: saved times, row-major states `[ts.len(), names.len()]`; with
/// `sd` (same layout) `us` is a mean over sample paths, drawn as a line inside a band of
/// ± `sd`.
pub struct Trajectories<'a> {
    pub title: &'a str,
    pub names: &'a [String],
    pub ts: &'a [f64],
    pub us: &'a [f64],
    pub sd: Option<&'a [f64]>,
}

/// States whose magnitudes differ by more than this get one panel each.
const PANEL_RATIO: f64 = 100.0;

/// Groups of state indices sharing a panel: all together unless their scales differ widely
/// (Robertson's y2 is 1e-5 next to y1, y3 ≈ 1).
fn panels(names: usize, us: &[f64]) -> Vec<Vec<usize>> {
    let n = names;
    let scale: Vec<f64> = (0..n)
        .map(|i| {
            us.iter()
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

/// A time axis starting at 0 is logarithmic when the steps crowd the start — more than half
/// of the saved times in the first 1% of the span (a stiff transient) — over at least four
/// decades, as the classic Robertson figure is.
fn log_time(ts: &[f64]) -> bool {
    let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else {
        return false;
    };
    let early = ts
        .iter()
        .filter(|&&t| (t - first).abs() <= 0.01 * (last - first).abs())
        .count();
    match ts.iter().copied().find(|t| *t > 0.0) {
        Some(tp) => first >= 0.0 && last / tp > 1e4 && 2 * early > ts.len(),
        None => false,
    }
}

/// A solve's figure: one panel, or one per state when their scales differ widely; an SDE's
/// mean inside its ± 1 sd band. `None` when there is no saved time.
pub fn trajectories(tr: &Trajectories) -> Option<Figure> {
    let n = tr.names.len();
    tr.ts.first()?;
    let log_t = log_time(tr.ts);
    // On a log time axis t = 0 has no place; it is left out.
    let rows: Vec<usize> = (0..tr.ts.len())
        .filter(|&k| !log_t || tr.ts[k] > 0.0)
        .collect();
    let x_of = |k: usize| if log_t { tr.ts[k].log10() } else { tr.ts[k] };
    let xs = || rows.iter().map(|&k| x_of(k));
    let x = Axis {
        label: if log_t {
            "t (log scale)".into()
        } else {
            "t".into()
        },
        // Time axes end at the span's ends, no padding.
        range: tight(xs()).unwrap_or_else(|| padded_range(xs())),
        log: log_t,
    };
    let sd = |j: usize| tr.sd.and_then(|s| s.get(j)).copied().unwrap_or(0.0);
    let groups = panels(n, tr.us);
    let panels = groups
        .iter()
        .map(|group| {
            let mut series = Vec::new();
            for &i in group {
                let at = |k: usize| k * n + i;
                if tr.sd.is_some() {
                    let upper = rows.iter().map(|&k| (x_of(k), tr.us[at(k)] + sd(at(k))));
                    let lower = rows
                        .iter()
                        .rev()
                        .map(|&k| (x_of(k), tr.us[at(k)] - sd(at(k))));
                    series.push(Series {
                        label: Some(format!("{} mean ± 1 sd", tr.names[i])),
                        color: i,
                        style: Style::Band,
                        points: upper
                            .chain(lower)
                            .filter(|(x, y)| x.is_finite() && y.is_finite())
                            .collect(),
                    });
                }
            }
            // The lines on top of every band.
            for &i in group {
                series.push(Series {
                    label: tr.sd.is_none().then(|| tr.names[i].clone()),
                    color: i,
                    style: Style::Line { width: 2 },
                    points: rows
                        .iter()
                        .map(|&k| (x_of(k), tr.us[k * n + i]))
                        .filter(|(x, y)| x.is_finite() && y.is_finite())
                        .collect(),
                });
            }
            let range = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            let label = match group.as_slice() {
                [i] => tr.names[*i].clone(),
                _ => "state".into(),
            };
            Panel {
                caption: None,
                x: x.clone(),
                legend: legend_corner(&series, range),
                y: Axis {
                    label,
                    range,
                    log: false,
                },
                series,
            }
        })
        .collect::<Vec<_>>();
    Some(Figure {
        title: tr.title.to_string(),
        grid: (panels.len(), 1),
        panels,
    })
}

/// The finite values' range without padding; `None` when empty or a single value.
pub fn tight(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (hi > lo).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_ignore_what_cannot_be_drawn() {
        assert_eq!(padded_range([f64::NAN, f64::INFINITY]), (0.0, 1.0));
        let (lo, hi) = padded_range([0.0, 10.0, f64::NAN]);
        assert!((lo + 0.5).abs() < 1e-12 && (hi - 10.5).abs() < 1e-12);
        assert_eq!(padded_range([3.0]), (1.5, 4.5));
        // Zero, negative and NaN losses have no logarithm; the rest decide the range.
        let (lo, hi) = log_range(&[0.0, -1.0, f64::NAN, 1e-4, 1.0]).unwrap();
        assert!(lo < -4.0 && lo > -4.5 && hi > 0.0 && hi < 0.5, "{lo} {hi}");
        assert_eq!(log_range(&[0.0, -2.0, f64::NAN]), None);
        let (lo, hi) = log_range(&[1e-20, 1.0]).unwrap();
        assert_eq!(hi - lo, MAX_DECADES);
        // A flat loss still gets a decade.
        let (lo, hi) = log_range(&[0.01, 0.01]).unwrap();
        assert!(hi - lo >= 1.0 && (lo + hi + 4.0).abs() < 1e-12, "{lo} {hi}");
    }

    #[test]
    fn smoothing_starts_unbiased_and_skips_gaps() {
        assert_eq!(ema(&[2.0, 2.0, 2.0], 10), vec![2.0, 2.0, 2.0]);
        let s = ema(&[f64::NAN, 1.0, f64::NAN, 3.0], 1);
        assert!(s[0].is_nan());
        assert_eq!(&s[1..], &[1.0, 1.0, 3.0]);
        // A spike moves the geometric mean less than the arithmetic one.
        let v = [1.0, 1.0, 1.0, 1000.0, 1.0];
        let lin = ema(&v, 5)[4].log10();
        let log = log_ema(&v, 5)[4];
        assert!(log < lin, "{log} {lin}");
        assert!(log_ema(&[0.0, -1.0], 3).iter().all(|v| v.is_nan()));
        assert_eq!(smoothing_window(19), 1);
        assert_eq!(smoothing_window(2000), 100);
    }

    #[test]
    fn log_points_drop_values_without_a_logarithm() {
        let p = log_points(&[0.0, 1.0, 2.0, 3.0], &[10.0, 0.0, f64::NAN, 0.1]);
        assert_eq!(p, vec![(0.0, 1.0), (3.0, -1.0)]);
    }

    #[test]
    fn scales_far_apart_get_their_own_panels() {
        let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let ts = [0.0, 1.0];
        let tr = |us: &'static [f64]| Trajectories {
            title: "m",
            names: &names,
            ts: &ts,
            us,
            sd: None,
        };
        let f = trajectories(&tr(&[1.0, 1e-5, 0.5, 2e-5])).unwrap();
        assert_eq!((f.grid, f.panels.len()), ((2, 1), 2));
        let f = trajectories(&tr(&[1.0, 2.0, 0.5, 1.0])).unwrap();
        assert_eq!(f.panels.len(), 1);
        assert_eq!(f.panels[0].series.len(), 2);
    }
}
