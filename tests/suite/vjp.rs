//! `app::vjp` (the Python package's `Model.vjp`): the discrete adjoint of a planned solve for
//! a caller's `dL/dy`, against the analytic gradient of exponential decay and against central
//! differences of the solve itself with the regularizers; and the errors a caller can cause.
//!
//! Tolerances: at rtol = 1e-10 the solve is within ~1e-10 of `y0·e^(−kt)`, and the adjoint is
//! the exact derivative of that solve, so it is within ~1e-9 of the analytic one (1e-7 leaves
//! room; a wrong sign or a missing term is O(1)). The finite differences of `L` with `R_E` and
//! `R_S` follow `tests/suite/grad.rs`: rtol = 1e-4 (the estimates' rounding grows like
//! 1e-16/rtol), steps fixed by `dt` so that no step size moves under the differences, and
//! ε = 1e-6 (truncation O(ε²) ≈ 1e-12, rounding ≈ 1e-13/ε = 1e-7 relative at most; a
//! mismatch above 1e-6 relative is a wrong gradient).

use glassbox::app::SolveRequest;
use glassbox::app::solve::plan_ode;
use glassbox::app::vjp::{self, Regularizers};
use glassbox::sema::Model;
use glassbox::solve::param_values;
use glassbox::source::{DiskLoader, SourceFile};

fn model(src: &str) -> Model {
    let file = SourceFile::new("vjp.gbx", src);
    let checked = glassbox::check_source(&file, &DiskLoader);
    checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags))
}

const DECAY: &str = "model decay\nstate x = 1.5\nparam k = 0.7\ndx/dt = -k * x\nsolve tsit5(rtol = 1e-10, atol = 1e-12) over [0, 1]\n";

fn plan(m: &Model, req: SolveRequest) -> glassbox::app::solve::Plan {
    plan_ode(&req, m).unwrap_or_else(|d| panic!("{d:?}"))
}

/// `L = y(0.5) + 2 y(1)` for `y = y0 e^(−k t)`: `dL/dy0 = e^(−k/2) + 2e^(−k)`,
/// `dL/dk = −y0 (e^(−k/2)/2 + 2 e^(−k))`.
#[test]
fn decay_matches_the_analytic_gradient() {
    let m = model(DECAY);
    let p = param_values(&m);
    let pl = plan(
        &m,
        SolveRequest {
            save_at: Some(vec![0.0, 0.5, 1.0]),
            ..Default::default()
        },
    );
    let (y0, k) = (1.5f64, 0.7f64);
    let run = vjp::run(
        &m,
        &pl,
        &p,
        Some(&[y0]),
        &[0.0, 1.0, 2.0],
        Regularizers::default(),
    )
    .unwrap();
    let dy0 = (-k / 2.0f64).exp() + 2.0 * (-k).exp();
    let dk = -y0 * ((-k / 2.0f64).exp() / 2.0 + 2.0 * (-k).exp());
    assert!((run.dy0[0] - dy0).abs() < 1e-7, "{} vs {dy0}", run.dy0[0]);
    assert!((run.dp[0] - dk).abs() < 1e-7, "{} vs {dk}", run.dp[0]);
    assert_eq!(run.sol.ts, vec![0.0, 0.5, 1.0]);
}

/// With no `y0` the model's initial state `x = a` depends on `a`: `dL/da` is then `dL/dy0`.
#[test]
fn the_models_initial_state_carries_its_parameters_gradient() {
    let m = model(
        "model decay2\nparam a = 1.5, k = 0.7\nstate x = a\ndx/dt = -k * x\nsolve tsit5(rtol = 1e-10, atol = 1e-12) over [0, 1]\n",
    );
    let p = param_values(&m);
    let pl = plan(
        &m,
        SolveRequest {
            save_at: Some(vec![0.0, 1.0]),
            ..Default::default()
        },
    );
    let run = vjp::run(&m, &pl, &p, None, &[0.0, 1.0], Regularizers::default()).unwrap();
    let index = |name: &str| {
        let mut at = 0;
        for (decl, values) in glassbox::app::params::values(&m, &p) {
            if decl.name == name {
                return at;
            }
            at += values.len();
        }
        panic!("no parameter {name}")
    };
    let (ia, ik) = (index("a"), index("k"));
    assert!((run.dp[ia] - (-0.7f64).exp()).abs() < 1e-7, "{:?}", run.dp);
    assert!(
        (run.dp[ik] + 1.5 * (-0.7f64).exp()).abs() < 1e-7,
        "{:?}",
        run.dp
    );
    assert!((run.dy0[0] - run.dp[ia]).abs() < 1e-15);
    // Given y0 the parameter `a` no longer enters.
    let run = vjp::run(
        &m,
        &pl,
        &p,
        Some(&[1.5]),
        &[0.0, 1.0],
        Regularizers::default(),
    )
    .unwrap();
    assert_eq!(run.dp[ia], 0.0);
}

/// `L = y(1) + w R_E` at fixed steps (`dt`, so the step sequence cannot move under the
/// differences): the adjoint against the central difference of the solve's own `L`.
#[test]
fn the_error_estimate_regularizer_matches_central_differences() {
    let src = "model osc\nparam k = 1.3, c = 0.4\nstate x = 1.0, v = 0.0\ndx/dt = v\ndv/dt = -k * x - c * v * (1 - x * x)\nsolve tsit5(rtol = 1e-4, atol = 1e-6) over [0, 2]\n";
    let m = model(src);
    let p = param_values(&m);
    let pl = plan(
        &m,
        SolveRequest {
            save_at: Some(vec![0.0, 2.0]),
            dt: Some(0.1),
            ..Default::default()
        },
    );
    let w = Regularizers {
        error: 3.0,
        stiffness: 0.5,
    };
    let cot = [0.0, 0.0, 1.0, -0.5];
    let lossf = |p: &[f64]| {
        let r = vjp::run(&m, &pl, p, None, &cot, w).unwrap();
        let y = &r.sol.us;
        y[2] - 0.5 * y[3] + w.error * r.error_estimate + w.stiffness * r.stiffness
    };
    let run = vjp::run(&m, &pl, &p, None, &cot, w).unwrap();
    assert!(run.error_estimate > 0.0 && run.stiffness > 0.0);
    for i in 0..p.len() {
        let eps = 1e-6;
        let (mut a, mut b) = (p.clone(), p.clone());
        a[i] += eps;
        b[i] -= eps;
        let fd = (lossf(&a) - lossf(&b)) / (2.0 * eps);
        assert!(
            (fd - run.dp[i]).abs() < 1e-6 * (1.0 + fd.abs()),
            "param {i}: {fd} vs {}",
            run.dp[i]
        );
    }
}

#[test]
fn a_caller_s_mistakes_are_diagnostics() {
    let m = model(DECAY);
    let p = param_values(&m);
    let with = |method: &str, dt: Option<f64>| {
        plan(
            &m,
            SolveRequest {
                save_at: Some(vec![0.0, 1.0]),
                method: Some(method.into()),
                dt,
                ..Default::default()
            },
        )
    };
    let (tsit5, euler, rodas) = (
        with("tsit5", None),
        with("euler", Some(0.1)),
        with("rodas5p", None),
    );
    let none = Regularizers::default();
    let weight = |error, stiffness| Regularizers { error, stiffness };
    let cases: [(&str, &glassbox::app::solve::Plan, &[f64], Regularizers); 5] = [
        ("a cotangent of the wrong length", &tsit5, &[1.0], none),
        (
            "a cotangent that is not finite",
            &tsit5,
            &[1.0, f64::NAN],
            none,
        ),
        (
            "a weight that is not finite",
            &tsit5,
            &[0.0, 1.0],
            weight(f64::INFINITY, 0.0),
        ),
        (
            "a stiffness weight without the estimate",
            &euler,
            &[0.0, 1.0],
            weight(0.0, 1.0),
        ),
        ("an implicit method", &rodas, &[0.0, 1.0], none),
    ];
    for (what, pl, cot, reg) in cases {
        let d = vjp::run(&m, pl, &p, None, cot, reg)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(d[0].code, "glassbox::bad_argument", "{what}");
        assert!(d[0].help.is_some(), "{what}");
    }
}

/// A field compiled by one call and reused by the next with other parameters (the Python
/// package's cache) gives the fresh compile's results bit for bit, solves and gradients, an
/// implicit method's Jacobian included; the reusing call compiles nothing.
#[test]
fn cached_kernels_give_a_fresh_compile_s_bits() {
    let m = model(
        "model osc2\nparam k = 1.3, c = 0.4\nstate x = 1.0, v = 0.0\ndx/dt = v\ndv/dt = -k * x - c * v * (1 - x * x)\nsolve tsit5(rtol = 1e-8, atol = 1e-10) over [0, 3]\n",
    );
    let p0 = param_values(&m);
    let p1: Vec<f64> = p0.iter().map(|v| v * 1.7 + 0.1).collect();
    for method in ["tsit5", "rodas5p"] {
        let pl = plan(
            &m,
            SolveRequest {
                save_at: Some(vec![0.0, 1.0, 3.0]),
                method: Some(method.into()),
                ..Default::default()
            },
        );
        let mut cache = None;
        let first =
            glassbox::app::solve::run_ode_cached(&mut cache, &m, &pl, &p0, None, 1).unwrap();
        let again =
            glassbox::app::solve::run_ode_cached(&mut cache, &m, &pl, &p1, None, 1).unwrap();
        let fresh = glassbox::app::solve::run_ode_from(&m, &pl, &p1, None, 1).unwrap();
        assert_eq!(again.sol.us, fresh.sol.us, "{method}");
        assert_ne!(first.sol.us, again.sol.us);
        assert_eq!(again.timing.compile_ms, 0.0, "{method}");
    }
    let pl = plan(
        &m,
        SolveRequest {
            save_at: Some(vec![0.0, 1.0, 3.0]),
            ..Default::default()
        },
    );
    let cot = [0.0, 0.0, 1.0, 0.5, -1.0, 2.0];
    let w = Regularizers {
        error: 0.5,
        stiffness: 0.25,
    };
    let mut cache = None;
    vjp::run_cached(&mut cache, &m, &pl, &p0, None, &cot, w).unwrap();
    let again = vjp::run_cached(&mut cache, &m, &pl, &p1, None, &cot, w).unwrap();
    let fresh = vjp::run(&m, &pl, &p1, None, &cot, w).unwrap();
    assert_eq!((again.dp, again.dy0), (fresh.dp, fresh.dy0));
}
