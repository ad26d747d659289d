//! A small terminal plot of trajectories: one character per series on a character grid, the
//! value range on the left, the time span below. Plain ASCII so it reads in any terminal and
//! in transcripts.

use std::fmt::Write as _;

const MARKS: [char; 8] = ['*', '+', 'o', 'x', '#', '@', '%', '&'];

/// Plot columns of `us` (row-major `[ts.len(), names.len()]`) against `ts`. At most
/// `MARKS.len()` series are drawn; later ones are named as left out.
pub fn plot(names: &[String], ts: &[f64], us: &[f64], width: usize, height: usize) -> String {
    let dim = names.len();
    let shown = dim.min(MARKS.len());
    let (Some(&t0), Some(&t1)) = (ts.first(), ts.last()) else {
        return String::new();
    };
    let finite = us.iter().copied().filter(|x| x.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || width < 2 || height < 2 || dim == 0 {
        return String::new();
    }
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let span_t = if t1 != t0 { t1 - t0 } else { 1.0 };
    let mut grid = vec![vec![' '; width]; height];
    for (i, &t) in ts.iter().enumerate() {
        let col = (((t - t0) / span_t) * (width - 1) as f64).round() as usize;
        for (k, mark) in MARKS.iter().enumerate().take(shown) {
            let Some(&y) = us.get(i * dim + k) else {
                continue;
            };
            if !y.is_finite() {
                continue;
            }
            let row = (((hi - y) / (hi - lo)) * (height - 1) as f64).round() as usize;
            if let Some(cell) = grid.get_mut(row).and_then(|r| r.get_mut(col)) {
                *cell = *mark;
            }
        }
    }
    let label = |x: f64| super::math::format_number(sig(x));
    let top = label(hi);
    let bottom = label(lo);
    let pad = top.len().max(bottom.len());
    let mut out = String::new();
    for (r, row) in grid.iter().enumerate() {
        let l = match r {
            0 => top.as_str(),
            _ if r + 1 == height => bottom.as_str(),
            _ => "",
        };
        let line: String = row.iter().collect();
        let _ = writeln!(out, "{l:>pad$} |{}", line.trim_end());
    }
    let _ = writeln!(out, "{:>pad$} +{}", "", "-".repeat(width));
    let left = format!("t = {}", label(t0));
    let right = label(t1);
    let gap = (width + 1).saturating_sub(left.len() + right.len());
    let _ = writeln!(out, "{:>pad$}  {left}{}{right}", "", " ".repeat(gap));
    let legend: Vec<String> = names
        .iter()
        .zip(MARKS)
        .map(|(n, m)| format!("{m} {n}"))
        .collect();
    let _ = write!(out, "{:>pad$}  {}", "", legend.join("   "));
    if dim > shown {
        let _ = write!(out, "   (+{} more not drawn)", dim - shown);
    }
    out.push('\n');
    out
}

/// Four significant digits, so axis labels carry no float noise.
fn sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let e = x.abs().log10().floor() as i32 - 3;
    let m = 10f64.powi(e.abs());
    if e >= 0 {
        (x / m).round() * m
    } else {
        (x * m).round() / m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_line_goes_from_bottom_left_to_top_right() {
        let ts: Vec<f64> = (0..5).map(f64::from).collect();
        let us = ts.clone();
        let p = plot(&["y".into()], &ts, &us, 5, 5);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "4 |    *");
        assert_eq!(lines[4], "0 |*");
        assert!(lines[6].contains("t = 0") && lines[6].ends_with('4'));
        assert!(lines[7].contains("* y"));
    }

    #[test]
    fn nothing_to_plot_is_empty() {
        assert_eq!(plot(&["y".into()], &[], &[], 10, 5), "");
        assert_eq!(plot(&["y".into()], &[0.0], &[f64::NAN], 10, 5), "");
    }

    #[test]
    fn labels_have_four_significant_digits() {
        assert_eq!(sig(0.1 + 0.2), 0.3);
        assert_eq!(sig(123456.0), 123500.0);
    }
}
