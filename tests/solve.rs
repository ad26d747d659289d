//! The explicit Runge–Kutta solvers against problems with known solutions: measured orders,
//! tolerance proportionality, dense output, both directions of time, save-at times, the
//! heuristics E_j and S_j against hand computation, and every failure as the right error.

use glassbox::diag::Diag;
use glassbox::solve::tableau::{self, METHODS, Tableau};
use glassbox::solve::{self, IrField, Solution, SolveError, SolveOptions, Stats, from_fn};

/// u' = A u with A = [[-1/2, 2], [-2, -1/2]]: a damped rotation, u(t) = e^{-t/2} R(2t) u(0).
fn damped(t: f64) -> [f64; 2] {
    let d = (-0.5 * t).exp();
    [d * (2.0 * t).cos(), -d * (2.0 * t).sin()]
}

fn damped_field() -> impl solve::VectorField {
    from_fn(2, |_t, u: &[f64], du: &mut [f64]| {
        du[0] = -0.5 * u[0] + 2.0 * u[1];
        du[1] = -2.0 * u[0] - 0.5 * u[1];
    })
}

/// A nonlinear, non-autonomous pair: a' = −a cos t (a = e^{−sin t}) and the logistic
/// b' = b(1 − b) (b = 1/(1 + e^{−t})).
fn nonlinear(t: f64) -> [f64; 2] {
    [(-t.sin()).exp(), 1.0 / (1.0 + (-t).exp())]
}

fn nonlinear_field() -> impl solve::VectorField {
    from_fn(2, |t, u: &[f64], du: &mut [f64]| {
        du[0] = -u[0] * t.cos();
        du[1] = u[1] * (1.0 - u[1]);
    })
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Least-squares slope of log(err) against log(h).
fn slope(hs: &[f64], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = hs.iter().map(|h| h.ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    sxy / sxx
}

/// Largest error over the saved grid and over three interior points of every step (dense).
fn grid_and_dense_errors(sol: &Solution, exact: fn(f64) -> [f64; 2]) -> (f64, f64) {
    let grid = sol
        .ts
        .iter()
        .enumerate()
        .map(|(i, &t)| max_err(sol.u(i).expect("saved"), &exact(t)))
        .fold(0.0, f64::max);
    let dense = sol.dense.as_ref().expect("dense output kept");
    let mut worst: f64 = 0.0;
    for s in &sol.steps {
        for theta in [0.3, 0.5, 0.8] {
            let t = s.t + theta * s.h;
            worst = worst.max(max_err(&dense.eval(t).expect("inside"), &exact(t)));
        }
    }
    (grid, worst)
}

/// Step counts per method for the linear system: in the asymptotic range and above round-off
/// (errors from about 1e-2 down to about 1e-12).
fn linear_counts(tab: &Tableau) -> [usize; 4] {
    match tab.name {
        "tsit5" => [40, 80, 160, 320],
        "dopri5" => [30, 60, 120, 240],
        "euler" => [160, 320, 640, 1280],
        _ => [20, 40, 80, 160],
    }
}

/// The same for the (smoother, shorter) nonlinear problem.
fn nonlinear_counts(tab: &Tableau) -> [usize; 4] {
    match tab.name {
        "tsit5" | "dopri5" => [20, 40, 80, 160],
        "euler" => [160, 320, 640, 1280],
        _ => [10, 20, 40, 80],
    }
}

/// (order of the grid values, order of the dense output): the method's order, and for the
/// interpolant min(p, q + 1) with q = 4 for the free interpolants and 3 for Hermite.
fn expected_orders(tab: &Tableau) -> (f64, f64) {
    let p = f64::from(tab.order);
    let q = match tab.interpolant {
        tableau::Interpolant::Free(_) => 4.0,
        tableau::Interpolant::Hermite => 3.0,
    };
    (p, p.min(q + 1.0))
}

fn measured_orders(
    tab: &'static Tableau,
    field: &mut dyn solve::VectorField,
    exact: fn(f64) -> [f64; 2],
    t1: f64,
    counts: [usize; 4],
) -> (f64, f64, Vec<f64>) {
    let mut hs = Vec::new();
    let (mut grid, mut dense) = (Vec::new(), Vec::new());
    for n in counts {
        let h = t1 / n as f64;
        let opts = SolveOptions {
            dt: Some(h),
            dense: true,
            ..Default::default()
        };
        let sol = solve::solve(tab, field, 0.0, t1, &exact(0.0), &opts).expect("solves");
        assert_eq!(
            sol.steps.len(),
            n,
            "{}: a fixed grid of {n} steps",
            tab.name
        );
        assert_eq!(sol.ts.last(), Some(&t1));
        let (g, d) = grid_and_dense_errors(&sol, exact);
        hs.push(h);
        grid.push(g);
        dense.push(d);
    }
    (slope(&hs, &grid), slope(&hs, &dense), grid)
}

#[test]
fn every_method_converges_at_its_order_on_a_linear_system() {
    for tab in METHODS {
        let (p, pd) = expected_orders(tab);
        let mut f = damped_field();
        let (got, got_dense, errs) = measured_orders(tab, &mut f, damped, 3.0, linear_counts(tab));
        eprintln!("{}: linear order {got:.3}, dense {got_dense:.3}", tab.name);
        assert!(
            (got - p).abs() <= 0.2,
            "{}: order {got:.3}, expected {p} (errors {errs:?})",
            tab.name
        );
        assert!(
            (got_dense - pd).abs() <= 0.2,
            "{}: dense output order {got_dense:.3}, expected {pd}",
            tab.name
        );
    }
}

/// On the nonlinear problem Tsit5 approaches its order from above (measured 5.8, 5.7, 5.5,
/// 5.3 between successive halvings before round-off): its fifth-order error coefficients are
/// minimised, so sixth-order terms dominate at practical step sizes. The others are within
/// ±0.2.
#[test]
fn every_method_converges_at_its_order_on_a_nonlinear_problem() {
    for tab in METHODS {
        let (p, pd) = expected_orders(tab);
        let mut f = nonlinear_field();
        let (got, got_dense, errs) =
            measured_orders(tab, &mut f, nonlinear, 2.0, nonlinear_counts(tab));
        let above = if tab.name == "tsit5" { 0.6 } else { 0.2 };
        eprintln!(
            "{}: nonlinear order {got:.3}, dense {got_dense:.3}",
            tab.name
        );
        assert!(
            got >= p - 0.2 && got <= p + above,
            "{}: order {got:.3}, expected {p} (errors {errs:?})",
            tab.name
        );
        assert!(
            got_dense >= pd - 0.2 && got_dense <= pd + above,
            "{}: dense output order {got_dense:.3}, expected {pd}",
            tab.name
        );
    }
}
