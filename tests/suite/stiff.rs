//! Rosenbrock methods, `auto` and the JIT-backed field: measured orders, Robertson against a
//! tight independent reference, switching, and JitField against the interpreter.

use std::path::Path;

use glassbox::ir::lower::{Part, lower};
use glassbox::sema::Model;
use glassbox::solve::{
    self, IrField, JitField, Method, RODAS4, RODAS5P, ROSENBROCK23, Rosenbrock, SolveOptions,
    VectorField, from_fn, tableau,
};

/// Robertson's y(40) and y(1e5): scipy 1.17.1 `solve_ivp(method="Radau", rtol=1e-13,
/// atol=1e-22)` with the analytic Jacobian; LSODA and BDF at rtol 1e-13 agree to 3e-12
/// relative. They round to the classic values [0.7158271, 9.185535e-6, 0.2841637] and
/// [0.0178659, 7.27475e-8, 0.982134] (Hairer & Wanner II, §IV.10).
const Y40: [f64; 3] = [7.158270687194e-01, 9.185534764557e-06, 2.841637457458e-01];
const Y1E5: [f64; 3] = [1.786592114210e-02, 7.274751468437e-08, 9.821340061104e-01];

fn model(name: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("example readable");
    let file = glassbox::source::SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &glassbox::source::DiskLoader);
    assert!(checked.diags.is_empty(), "{:?}", checked.diags);
    checked.model.expect("checked model")
}

fn opts(rtol: f64, atol: f64) -> SolveOptions {
    SolveOptions {
        rtol,
        atol,
        max_steps: 200_000,
        ..Default::default()
    }
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) / y).abs())
        .fold(0.0, f64::max)
}

fn slope(hs: &[f64], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = hs.iter().map(|h| h.ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    sxy / sxx
}

/// Largest error at the grid points and (dense output) at θ = 0.3, 0.5, 0.8 of every step.
fn order_on(
    m: &'static Rosenbrock,
    field: fn() -> Box<dyn VectorField>,
    exact: fn(f64) -> [f64; 2],
    u0: [f64; 2],
    linear: bool,
) -> (f64, f64) {
    // Rodas4 approaches its order from above (ratios 27, 21, 18 at h = 0.2 … 0.025 on the
    // nonlinear problem), so it is measured on smaller steps. Rodas5P approaches its order
    // from below on the nonlinear problem (ratios 23, 29, 31 at h = 0.4 … 0.05), and its
    // order-6 linear errors reach round-off (1e-14) below h = 0.05.
    let hs = match (m.order, linear) {
        (5.., true) => [0.4, 0.2, 0.1, 0.05],
        (5.., false) => [0.1, 0.05, 0.025, 0.0125],
        (4, _) => [0.05, 0.025, 0.0125, 0.00625],
        _ => [0.2, 0.1, 0.05, 0.025],
    };
    let (mut grid, mut dense) = (Vec::new(), Vec::new());
    for &h in &hs {
        let mut f = field();
        let sol = solve::solve_with(
            Method::Rosenbrock(m),
            &mut *f,
            0.0,
            2.0,
            &u0,
            &SolveOptions {
                dt: Some(h),
                dense: true,
                ..Default::default()
            },
        )
        .expect("solves");
        let err = |u: &[f64], t: f64| {
            let e = exact(t);
            (u[0] - e[0]).abs().max((u[1] - e[1]).abs())
        };
        grid.push(
            sol.ts
                .iter()
                .enumerate()
                .map(|(i, &t)| err(sol.u(i).expect("saved"), t))
                .fold(0.0, f64::max),
        );
        let d = sol.dense.as_ref().expect("dense kept");
        let mut worst: f64 = 0.0;
        for s in &sol.steps {
            for th in [0.3, 0.5, 0.8] {
                let t = s.t + th * s.h;
                worst = worst.max(err(&d.eval(t).expect("inside"), t));
            }
        }
        dense.push(worst);
    }
    eprintln!("{} errors {grid:?} dense {dense:?}", m.name);
    (slope(&hs, &grid), slope(&hs, &dense))
}

fn damped(t: f64) -> [f64; 2] {
    let d = (-0.5 * t).exp();
    [d * (2.0 * t).cos(), -d * (2.0 * t).sin()]
}

fn damped_field() -> Box<dyn VectorField> {
    Box::new(from_fn(2, |_t, u: &[f64], du: &mut [f64]| {
        du[0] = -0.5 * u[0] + 2.0 * u[1];
        du[1] = -2.0 * u[0] - 0.5 * u[1];
    }))
}

/// Non-autonomous and nonlinear: a' = −a cos t, b' = b(1 − b) (exercises ∂f/∂t).
fn nonlinear(t: f64) -> [f64; 2] {
    [(-t.sin()).exp(), 1.0 / (1.0 + (-t).exp())]
}

/// With its analytic Jacobian and ∂f/∂t: Rodas4 keeps its order only with an exact `J`, and
/// forward differences (√ε relative error) put a floor near 1e-12 under the errors.
struct Nonlinear;

impl VectorField for Nonlinear {
    fn dim(&self) -> usize {
        2
    }
    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        du[0] = -u[0] * t.cos();
        du[1] = u[1] * (1.0 - u[1]);
    }
    fn jacobian(&mut self, t: f64, u: &[f64], jac: &mut [f64]) -> bool {
        jac.copy_from_slice(&[-t.cos(), 0.0, 0.0, 1.0 - 2.0 * u[1]]);
        true
    }
    fn time_derivative(&mut self, t: f64, u: &[f64], dfdt: &mut [f64]) -> bool {
        dfdt.copy_from_slice(&[u[0] * t.sin(), 0.0]);
        true
    }
}

fn nonlinear_field() -> Box<dyn VectorField> {
    Box::new(Nonlinear)
}

#[test]
fn rosenbrock_methods_converge_at_their_orders() {
    // (method, order on the linear problem, on the nonlinear one, dense order). On a linear
    // constant-coefficient problem a Rosenbrock step is its stability function R(hλ), and
    // Rodas5P's R matches exp to order 6 (R(z) − e^z = −1.3e-12, −8.6e-15 at z = 0.1, 0.05:
    // a ratio of 148 ≈ 2^7.2, evaluated in 40-digit arithmetic from the stored coefficients),
    // one order above the method's 5, which the nonlinear problem measures.
    let mut failures = Vec::new();
    for (m, p_lin, p_nonlin, pd) in [
        (&ROSENBROCK23, 2.0, 2.0, 2.0),
        (&RODAS4, 4.0, 4.0, 3.0),
        (&RODAS5P, 6.0, 5.0, 4.0),
    ] {
        for (name, field, exact, u0, p) in [
            (
                "linear",
                damped_field as fn() -> _,
                damped as fn(f64) -> _,
                [1.0, 0.0],
                p_lin,
            ),
            (
                "nonlinear",
                nonlinear_field,
                nonlinear,
                [1.0, 0.5],
                p_nonlin,
            ),
        ] {
            let (g, d) = order_on(m, field, exact, u0, name == "linear");
            eprintln!("{} {name}: grid {g:.2}, dense {d:.2}", m.name);
            if (g - p).abs() > 0.2 || d < pd - 0.2 {
                failures.push(format!("{} {name}: grid order {g}, dense {d}", m.name));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

fn robertson_jit() -> (JitField, Vec<f64>) {
    let m = model("robertson.gbx");
    let p = solve::param_values(&m);
    let u0 = solve::initial_state(&m, &p, &[], 0.0).expect("u0");
    (JitField::new(&m, &[]).expect("compiles"), u0)
}

#[test]
fn robertson_matches_the_reference_with_rosenbrock_and_auto() {
    let (mut f, u0) = robertson_jit();
    for method in [
        Method::Rosenbrock(&RODAS4),
        Method::Rosenbrock(&RODAS5P),
        Method::Rosenbrock(&ROSENBROCK23),
        Method::auto(1e-8),
    ] {
        for (t1, reference) in [(40.0, Y40), (1e5, Y1E5)] {
            let sol = solve::solve_with(method, &mut f, 0.0, t1, &u0, &opts(1e-8, 1e-14))
                .expect("solves");
            let err = max_rel(sol.last().expect("end"), &reference);
            eprintln!(
                "{} t = {t1:e}: rel err {err:.2e}, {:?}",
                method.name(),
                sol.stats
            );
            assert!(err <= 1e-6, "{} at {t1}: {err:e}", method.name());
            assert!(sol.stats.jacobian_evals > 0 && sol.stats.lu_factorizations > 0);
        }
    }
}

#[test]
fn auto_switches_on_robertson_and_stays_explicit_on_lorenz() {
    let (mut f, u0) = robertson_jit();
    let sol = solve::solve_with(
        Method::auto(1e-6),
        &mut f,
        0.0,
        1e5,
        &u0,
        &opts(1e-6, 1e-10),
    )
    .expect("solves");
    eprintln!("robertson auto: {:?}", sol.stats);
    assert!(sol.stats.switches >= 1, "{:?}", sol.stats);
    // Nearly all of the span is stiff.
    assert!(
        sol.stats.stiff_steps * 2 > sol.stats.accepted,
        "{:?}",
        sol.stats
    );
    assert!(max_rel(sol.last().expect("end"), &Y1E5) < 1e-3);
    // It starts explicit and needs more than 10 stiff-looking steps in a row to switch.
    assert!(
        sol.stats.accepted - sol.stats.stiff_steps > 10,
        "{:?}",
        sol.stats
    );
    assert!(
        sol.steps[0].nfe % 6 == 0,
        "the first step is a Tsit5 step (6 per attempt)"
    );

    let m = model("lorenz.gbx");
    let mut lorenz = JitField::new(&m, &[]).expect("compiles");
    let sol = solve::solve_with(
        Method::auto(1e-6),
        &mut lorenz,
        0.0,
        100.0,
        &[1.0, 0.0, 0.0],
        &opts(1e-6, 1e-9),
    )
    .expect("solves");
    assert_eq!(sol.stats.switches, 0, "{:?}", sol.stats);
    assert_eq!(sol.stats.stiff_steps, 0);
    // Only the spectral-radius probes, one per 10 explicit steps.
    let probes = sol.stats.jacobian_evals;
    assert!((sol.stats.accepted / 10..=sol.stats.accepted / 10 + 1).contains(&probes));
    // Step for step what Tsit5 alone does.
    let tsit = solve::solve(
        &tableau::TSIT5,
        &mut lorenz,
        0.0,
        100.0,
        &[1.0, 0.0, 0.0],
        &opts(1e-6, 1e-9),
    )
    .expect("solves");
    assert_eq!(sol.stats.accepted, tsit.stats.accepted);
}

#[test]
fn explicit_methods_still_refuse_robertson() {
    let (mut f, u0) = robertson_jit();
    let e = solve::solve(&tableau::TSIT5, &mut f, 0.0, 1e5, &u0, &opts(1e-6, 1e-10))
        .expect_err("stiff");
    assert!(
        matches!(e, solve::SolveError::StiffForExplicit { .. }),
        "{e:?}"
    );
}

#[test]
fn finite_difference_jacobian_gives_the_same_solution() {
    let (mut jit, u0) = robertson_jit();
    let mut fd = from_fn(3, |t, y: &[f64], dy: &mut [f64]| jit_eval(t, y, dy));
    let a = solve::solve_with(
        Method::Rosenbrock(&RODAS4),
        &mut jit,
        0.0,
        40.0,
        &u0,
        &opts(1e-8, 1e-14),
    )
    .expect("solves");
    let b = solve::solve_with(
        Method::Rosenbrock(&RODAS4),
        &mut fd,
        0.0,
        40.0,
        &u0,
        &opts(1e-8, 1e-14),
    )
    .expect("solves");
    assert!(max_rel(a.last().expect("end"), b.last().expect("end")) < 1e-6);
    // Forward differences cost dim + 1 (∂f/∂t) evaluations per Jacobian, on top of Rodas4's
    // five per step; the compiled Jacobian costs none.
    let s = &b.stats;
    assert!(s.nfe >= 4 * s.jacobian_evals + 5 * s.accepted, "{s:?}");
    assert!(a.stats.nfe < 4 * a.stats.jacobian_evals + 5 * a.stats.accepted + 10);
}

fn jit_eval(_t: f64, y: &[f64], dy: &mut [f64]) {
    dy[0] = -0.04 * y[0] + 1e4 * y[1] * y[2];
    dy[1] = 0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] * y[1];
    dy[2] = 3e7 * y[1] * y[1];
}

#[test]
fn jit_field_equals_ir_field() {
    for name in ["lorenz.gbx", "robertson.gbx", "van_der_pol.gbx"] {
        let m = model(name);
        let p = solve::param_values(&m);
        let func = lower(&m, Part::Field).expect("lowers");
        let mut ir = IrField::new(&func, &p, &[]).expect("fits");
        let mut jit = JitField::new(&m, &[]).expect("compiles");
        let u0 = solve::initial_state(&m, &p, &[], 0.0).expect("u0");
        let n = u0.len();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        for k in 0..5 {
            let u: Vec<f64> = u0
                .iter()
                .enumerate()
                .map(|(i, x)| x + 0.1 * (i + k) as f64)
                .collect();
            ir.eval(0.3 * k as f64, &u, &mut a);
            jit.eval(0.3 * k as f64, &u, &mut b);
            assert_eq!(a, b, "{name}: the JIT equals the interpreter bit for bit");
        }
        // The compiled Jacobian against central differences of the compiled field.
        let mut jac = vec![0.0; n * n];
        assert!(jit.jacobian(0.5, &u0, &mut jac));
        for j in 0..n {
            let h = 1e-6 * u0[j].abs().max(1.0);
            let (mut up, mut um) = (u0.clone(), u0.clone());
            up[j] += h;
            um[j] -= h;
            jit.eval(0.5, &up, &mut a);
            jit.eval(0.5, &um, &mut b);
            for i in 0..n {
                let fd = (a[i] - b[i]) / (2.0 * h);
                let scale = fd.abs().max(jac[i * n + j].abs()).max(1.0);
                assert!(
                    (fd - jac[i * n + j]).abs() <= 1e-6 * scale,
                    "{name} J[{i},{j}]"
                );
            }
        }
    }
}

#[test]
fn past_the_dense_jacobian_limit_auto_stays_explicit_and_implicit_methods_are_refused() {
    // 2049² entries is just past ir::MAX_JACOBIAN_ENTRIES = 2048²; stiff enough (λ = −1000)
    // that `auto` would switch on a smaller system.
    let n = 2049;
    assert!(!glassbox::ir::jacobian_fits(n, n) && glassbox::ir::jacobian_fits(2048, 2048));
    let field = |_t: f64, u: &[f64], du: &mut [f64]| {
        for (d, x) in du.iter_mut().zip(u) {
            *d = -1000.0 * x;
        }
    };
    let u0 = vec![1.0; n];
    let mut f = from_fn(n, field);
    let sol = solve::solve_with(Method::auto(1e-6), &mut f, 0.0, 1.0, &u0, &opts(1e-6, 1e-8))
        .expect("auto solves explicitly");
    assert_eq!(
        (sol.stats.switches, sol.stats.jacobian_evals),
        (0, 0),
        "{:?}",
        sol.stats
    );
    assert!(!solve::uses_jacobian(Method::auto(1e-6), n));
    for m in [&ROSENBROCK23, &RODAS5P] {
        let err = solve::solve_with(
            Method::Rosenbrock(m),
            &mut f,
            0.0,
            1.0,
            &u0,
            &opts(1e-6, 1e-8),
        )
        .expect_err("refused before allocating n × n");
        assert!(
            matches!(err, solve::SolveError::JacobianTooLarge { n: 2049, .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), "glassbox::jacobian_too_large");
    }
}
