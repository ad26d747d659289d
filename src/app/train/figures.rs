//! The figures of a run directory as plain data (`app::figure`): the loss on a log axis (raw
//! values faint, their moving average bold; the regularizer only when the objective has one;
//! validation points when there is a split), the NFE, the accuracy of a classifier, and the
//! fit: one panel per observed state, its data as markers and its fit as a line on top in
//! the same colour.

use super::first_path;
use crate::app::figure::{
    Axis, Corner, Figure, Panel, Series, Style, ema, finite_points, legend_corner, log_ema,
    log_points, log_range, padded_range, smoothing_window, tight,
};
use crate::app::solve::state_names;
use crate::data::Dataset;
use crate::diag::Diag;
use crate::train::{Metric, Trainer};

/// One PNG of a run directory: its file name and what it shows.
pub struct RunFigure {
    pub file: &'static str,
    pub figure: Figure,
}

/// The run directory's figures: loss, NFE, accuracy (classifiers) over the iterations (from
/// two iterations on), and the fit of the first trajectory against its data.
pub fn figures(t: &Trainer, full: &[Dataset]) -> Result<Vec<RunFigure>, Diag> {
    let s = t.state();
    let mut out = Vec::new();
    if s.metrics.len() >= 2 {
        let has_reg = !t.plan.regularizers.is_empty() || !t.plan.integrals.is_empty();
        out.push(RunFigure {
            file: "loss.png",
            figure: loss_figure(&s.model, &s.metrics, has_reg),
        });
        out.push(RunFigure {
            file: "nfe.png",
            figure: nfe_figure(&s.model, &s.metrics),
        });
        if s.metrics.iter().any(|m| m.accuracy.is_some()) {
            out.push(RunFigure {
                file: "accuracy.png",
                figure: accuracy_figure(&s.model, &s.metrics),
            });
        }
    }
    if let Some((ts, y)) = first_path(t, full) {
        // The fit is drawn finer than the data are observed, so it is a curve between them.
        let sol = t.predict_on(&fine_times(&ts))?;
        let state = state_names(t.model());
        let cols = &t.plan.loss.columns;
        let names: Vec<String> = cols
            .iter()
            .map(|&k| state.get(k).cloned().unwrap_or_default())
            .collect();
        let mut fit = Vec::with_capacity(sol.ts.len() * cols.len());
        for i in 0..sol.ts.len() {
            let u = sol.u(i).unwrap_or(&[]);
            fit.extend(cols.iter().map(|&k| u.get(k).copied().unwrap_or(f64::NAN)));
        }
        let fit = Fit {
            names: &names,
            ts: &ts,
            fit_ts: &sol.ts,
            fit: &fit,
            data: &y,
            mean: t.plan.sde.is_some(),
        };
        out.push(RunFigure {
            file: "fit.png",
            figure: fit_figure(&s.model, &fit),
        });
    }
    Ok(out)
}

/// At least 2 000 times (four per observation, for longer series) spanning `ts` evenly.
fn fine_times(ts: &[f64]) -> Vec<f64> {
    let (Some(&a), Some(&b)) = (ts.first(), ts.last()) else {
        return ts.to_vec();
    };
    let n = (4 * ts.len()).max(2000);
    if ts.len() < 2 || b <= a {
        return ts.to_vec();
    }
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

/// One quantity per iteration as the raw values (faint) under their moving average (bold),
/// on a log axis (`log`) or a linear one; the raw values are left out when there is no
/// smoothing (a short run), since they would be the same line.
fn smoothed(name: &str, color: usize, its: &[f64], values: &[f64], log: bool) -> Vec<Series> {
    let window = smoothing_window(values.len());
    let mut series = Vec::new();
    let points = |v: &[f64]| {
        if log {
            log_points(its, v)
        } else {
            finite_points(its, v)
        }
    };
    if window > 1 {
        series.push(Series {
            label: Some(format!("{name}, per iteration")),
            color,
            style: Style::Faint,
            points: points(values),
        });
        let avg = if log {
            log_ema(values, window)
        } else {
            ema(values, window)
        };
        series.push(Series {
            label: Some(format!("{name}, moving average ({window} it.)")),
            color,
            style: Style::Line { width: 3 },
            points: finite_points(its, &avg),
        });
    } else {
        series.push(Series {
            label: Some(name.to_string()),
            color,
            style: Style::Line { width: 2 },
            points: points(values),
        });
    }
    series
}

/// The points of an optional per-iteration value (validation), as a line through markers.
fn sparse(name: &str, color: usize, its: &[f64], values: &[Option<f64>], log: bool) -> Vec<Series> {
    let ys: Vec<f64> = values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let points = if log {
        log_points(its, &ys)
    } else {
        finite_points(its, &ys)
    };
    if points.is_empty() {
        return Vec::new();
    }
    vec![
        Series {
            label: None,
            color,
            style: Style::Line { width: 2 },
            points: points.clone(),
        },
        Series {
            label: Some(name.to_string()),
            color,
            style: Style::Markers,
            points,
        },
    ]
}

fn iterations(metrics: &[Metric]) -> (Vec<f64>, Axis) {
    let its: Vec<f64> = metrics.iter().map(|m| m.iteration as f64).collect();
    let range = tight(its.iter().copied()).unwrap_or_else(|| padded_range(its.iter().copied()));
    let axis = Axis {
        label: "iteration".into(),
        range,
        log: false,
    };
    (its, axis)
}

/// A figure of one panel over the iterations.
fn over_iterations(title: String, x: Axis, y: Axis, series: Vec<Series>) -> Figure {
    Figure {
        title,
        grid: (1, 1),
        panels: vec![Panel {
            caption: None,
            legend: Corner::UpperRight,
            x,
            y,
            series,
        }],
    }
}

/// The y axis that shows `values`: logarithmic when `log` and some value is positive.
fn value_axis(label: &str, values: &[f64], log: bool) -> Axis {
    match log.then(|| log_range(values)).flatten() {
        Some(range) => Axis {
            label: format!("{label} (log scale)"),
            range,
            log: true,
        },
        None => Axis {
            label: label.into(),
            range: padded_range(values.iter().copied()),
            log: false,
        },
    }
}

/// Series whose typical magnitudes (medians) differ by more than this many decades get
/// panels of their own, so neither is flattened against its axis.
const SHARED_DECADES: f64 = 2.0;

/// `loss.png`: the loss and the validation loss on a log axis; when the objective has
/// regularizers, the data loss and their weighted sum, in one panel or (far apart) two.
pub fn loss_figure(model: &str, metrics: &[Metric], has_reg: bool) -> Figure {
    let (its, x) = iterations(metrics);
    let loss: Vec<f64> = metrics.iter().map(|m| m.loss).collect();
    let reg: Vec<f64> = metrics.iter().map(|m| m.reg).collect();
    let val: Vec<Option<f64>> = metrics.iter().map(|m| m.val_loss).collect();
    let mut main = loss.clone();
    main.extend(val.iter().flatten());
    let apart = has_reg
        && match (log_median(&main), log_median(&reg)) {
            (Some(a), Some(b)) => (a - b).abs() > SHARED_DECADES,
            _ => true,
        };
    if has_reg && !apart {
        main.extend(&reg);
    }
    let y = value_axis("loss", &main, true);
    let name = if has_reg { "data loss" } else { "loss" };
    let mut series = smoothed(name, 0, &its, &loss, y.log);
    if has_reg && !apart {
        series.extend(smoothed("regularizer", 1, &its, &reg, y.log));
    }
    series.extend(sparse("validation loss", 2, &its, &val, y.log));
    let mut f = over_iterations(format!("{model}: training loss"), x.clone(), y, series);
    if apart {
        let y = value_axis("regularizer", &reg, true);
        f.panels.push(Panel {
            caption: None,
            legend: Corner::UpperRight,
            series: smoothed("regularizer", 1, &its, &reg, y.log),
            x,
            y,
        });
        f.grid = (2, 1);
    }
    f
}

/// The median of `log10` of the positive values.
fn log_median(values: &[f64]) -> Option<f64> {
    let mut logs: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v > 0.0)
        .map(|v| v.log10())
        .collect();
    logs.sort_by(f64::total_cmp);
    logs.get(logs.len() / 2).copied()
}

/// `nfe.png`: the forward solves' field evaluations per iteration; logarithmic only when
/// they span more than a decade.
pub fn nfe_figure(model: &str, metrics: &[Metric]) -> Figure {
    let (its, x) = iterations(metrics);
    let nfe: Vec<f64> = metrics.iter().map(|m| m.nfe as f64).collect();
    let spread =
        tight(nfe.iter().copied().filter(|v| *v > 0.0)).is_some_and(|(lo, hi)| hi > 10.0 * lo);
    let y = value_axis("NFE", &nfe, spread);
    let series = smoothed("NFE", 0, &its, &nfe, y.log);
    over_iterations(format!("{model}: forward NFE per iteration"), x, y, series)
}

/// `accuracy.png`: the batch accuracy and the validation accuracy, on [0, 1].
pub fn accuracy_figure(model: &str, metrics: &[Metric]) -> Figure {
    let (its, x) = iterations(metrics);
    let acc: Vec<f64> = metrics
        .iter()
        .map(|m| m.accuracy.unwrap_or(f64::NAN))
        .collect();
    let val: Vec<Option<f64>> = metrics.iter().map(|m| m.val_accuracy).collect();
    let y = Axis {
        label: "accuracy".into(),
        range: (0.0, 1.02),
        log: false,
    };
    let mut series = smoothed("batch accuracy", 0, &its, &acc, false);
    series.extend(sparse("validation accuracy", 2, &its, &val, false));
    let mut f = over_iterations(format!("{model}: accuracy"), x, y, series);
    f.panels[0].legend = Corner::LowerRight;
    f
}

/// The fit of one trajectory: its observed states' names, the data and the fit (each
/// row-major `[times, names.len()]`); `mean`: an SDE's mean paths.
pub struct Fit<'a> {
    pub names: &'a [String],
    /// The data's times.
    pub ts: &'a [f64],
    pub data: &'a [f64],
    /// The fit's times (finer than the data's).
    pub fit_ts: &'a [f64],
    pub fit: &'a [f64],
    pub mean: bool,
}

/// The panel grid for `n` panels: one column up to three, then two, then three.
fn grid(n: usize) -> (usize, usize) {
    let cols = match n {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    (n.div_ceil(cols).max(1), cols)
}

/// `fit.png`: one panel per observed state, the data as markers and the fit as a line on top,
/// in the state's colour.
pub fn fit_figure(model: &str, f: &Fit) -> Figure {
    let n = f.names.len();
    let column = |v: &[f64], times: usize, i: usize| -> Vec<f64> {
        (0..times)
            .map(|k| v.get(k * n + i).copied().unwrap_or(f64::NAN))
            .collect()
    };
    let x = Axis {
        label: "t".into(),
        range: tight(f.ts.iter().copied()).unwrap_or_else(|| padded_range(f.ts.iter().copied())),
        log: false,
    };
    let (data_name, fit_name) = if f.mean {
        ("data mean", "model mean")
    } else {
        ("data", "fit")
    };
    let panels = (0..n)
        .map(|i| {
            let series = vec![
                Series {
                    label: Some(format!("{} {data_name}", f.names[i])),
                    color: i,
                    style: Style::Markers,
                    points: finite_points(f.ts, &column(f.data, f.ts.len(), i)),
                },
                Series {
                    label: Some(format!("{} {fit_name}", f.names[i])),
                    color: i,
                    style: Style::Line { width: 2 },
                    points: finite_points(f.fit_ts, &column(f.fit, f.fit_ts.len(), i)),
                },
            ];
            let range = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            Panel {
                caption: None,
                x: x.clone(),
                legend: legend_corner(&series, range),
                y: Axis {
                    label: f.names[i].clone(),
                    range,
                    log: false,
                },
                series,
            }
        })
        .collect();
    Figure {
        title: format!("{model}: fitted trajectories vs data"),
        grid: grid(n),
        panels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(n: usize, val_every: Option<usize>) -> Vec<Metric> {
        (0..n)
            .map(|i| Metric {
                iteration: i as u64,
                loss: if i == 3 { 0.0 } else { 1.0 / (1.0 + i as f64) },
                reg: 0.01,
                nfe: 100 + (i % 7) as u64,
                time_s: 0.01,
                accuracy: None,
                val_loss: val_every.filter(|k| i % k == 0).map(|_| 0.5),
                val_accuracy: None,
            })
            .collect()
    }

    fn labels(f: &Figure) -> Vec<String> {
        f.panels[0]
            .series
            .iter()
            .filter_map(|s| s.label.clone())
            .collect()
    }

    #[test]
    fn the_regularizer_is_drawn_only_when_the_objective_has_one() {
        let m = metrics(10, None);
        let f = loss_figure("m", &m, false);
        assert_eq!(labels(&f), ["loss"]);
        assert!(f.panels[0].y.log);
        // The zero loss has no logarithm: left out, not drawn at a floor.
        assert_eq!(f.panels[0].series[0].points.len(), 9);
        // A regularizer near the loss shares its panel; one decades below gets its own.
        let f = loss_figure("m", &m, true);
        assert_eq!(
            (f.panels.len(), labels(&f)),
            (1, vec!["data loss".into(), "regularizer".into()])
        );
        let tiny: Vec<Metric> = m
            .iter()
            .map(|m| Metric {
                reg: 1e-9,
                ..m.clone()
            })
            .collect();
        let f = loss_figure("m", &tiny, true);
        assert_eq!(
            (f.grid, labels(&f)),
            ((2, 1), vec!["data loss".to_string()])
        );
    }

    #[test]
    fn long_runs_get_a_moving_average_over_their_raw_values() {
        let f = loss_figure("m", &metrics(500, Some(50)), false);
        let s = &f.panels[0].series;
        assert_eq!(s[0].style, Style::Faint);
        assert_eq!(s[1].style, Style::Line { width: 3 });
        assert_eq!(s[1].label.as_deref(), Some("loss, moving average (25 it.)"));
        let val = s.iter().find(|s| s.style == Style::Markers).unwrap();
        assert_eq!(val.points.len(), 10);
        // Every point lies inside the axis' range.
        let (lo, hi) = f.panels[0].y.range;
        assert!(
            s.iter()
                .flat_map(|s| &s.points)
                .all(|p| p.1 >= lo && p.1 <= hi)
        );
    }

    #[test]
    fn nfe_that_varies_little_is_linear() {
        let f = nfe_figure("m", &metrics(10, None));
        assert!(!f.panels[0].y.log);
    }

    #[test]
    fn each_state_has_its_panel_with_data_and_fit_in_one_colour() {
        let names: Vec<String> = ["x", "v"].map(String::from).to_vec();
        let fit = Fit {
            names: &names,
            ts: &[0.0, 1.0, 2.0],
            data: &[1.1, f64::NAN, 1.4, 2.4, 2.1, 3.2],
            fit_ts: &[0.0, 0.5, 1.0, 1.5, 2.0],
            fit: &[1.0, 2.0, 1.2, 2.2, 1.5, 2.5, 1.8, 2.8, 2.0, 3.0],
            mean: false,
        };
        let f = fit_figure("m", &fit);
        assert_eq!((f.grid, f.panels.len()), ((2, 1), 2));
        let v = &f.panels[1];
        assert_eq!(v.y.label, "v");
        assert_eq!(v.series[0].style, Style::Markers);
        assert_eq!(
            v.series[0].points.len(),
            2,
            "the missing observation is left out"
        );
        assert_eq!(v.series[1].style, Style::Line { width: 2 });
        assert_eq!(v.series[1].points.len(), 5);
        assert!(v.series.iter().all(|s| s.color == 1));
        assert_eq!(grid(4), (2, 2));
        assert_eq!(grid(9), (3, 3));
    }
}
