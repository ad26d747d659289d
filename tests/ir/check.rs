//! Shared helpers: evaluation at one point and central finite differences.

use glassbox::ir::{Function, eval};

/// Evaluates `f` at one sample; `args` in `f`'s argument order.
pub fn eval1(f: &Function, args: &[&[f64]]) -> Vec<f64> {
    eval(f, args, 1).expect("valid test function and buffers")
}

/// Central finite difference of `f` along `dir` in argument number `arg`:
/// `(f(x + εd) − f(x − εd)) / 2ε`. With ε = 1e-6 and O(1) values the rounding error is
/// ~1e-16/ε = 1e-10 and the truncation error ε²·f'''/6 ~ 1e-12, well inside the tolerance.
pub fn fd_dir(f: &Function, args: &[&[f64]], arg: usize, dir: &[f64]) -> Vec<f64> {
    let eps = 1e-6;
    let shifted = |sign: f64| {
        let moved: Vec<f64> = args[arg]
            .iter()
            .zip(dir)
            .map(|(x, d)| x + sign * eps * d)
            .collect();
        let mut a: Vec<&[f64]> = args.to_vec();
        a[arg] = &moved;
        eval1(f, &a)
    };
    let (plus, minus) = (shifted(1.0), shifted(-1.0));
    plus.iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * eps))
        .collect()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `|a − b| ≤ rel·max(|a|, |b|) + abs`, elementwise, with a message naming the first miss.
pub fn assert_close(what: &str, a: &[f64], b: &[f64], rel: f64, abs: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = rel * x.abs().max(y.abs()) + abs;
        assert!(
            (x - y).abs() <= tol && x.is_finite() && y.is_finite(),
            "{what}: element {i}: {x} vs {y} (tolerance {tol})"
        );
    }
}
