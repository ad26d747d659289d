//! Every derivative pass against central finite differences of the interpreter, and the
//! passes against each other, on functions that mirror the real models.

use glassbox::ir::{eval, jacobian, jvp, time_derivatives, vjp};

use crate::check::{assert_close, dot, eval1, fd_dir};
use crate::models::{self, Model, rng, uniform};

/// FD tolerance: relative 1e-6 with an absolute floor of 1e-7 (see `fd_dir` for the error
/// budget; the floor covers entries that are zero up to cancellation).
const REL: f64 = 1e-6;
const ABS: f64 = 1e-7;

fn args(m: &Model) -> [&[f64]; 3] {
    [&m.t, &m.u, &m.p]
}

#[test]
fn vjp_matches_finite_differences() {
    for m in models::all() {
        let g = vjp(&m.f, &["u", "p"], "v").unwrap();
        let mut r = rng(10);
        let v = uniform(&mut r, m.f.output_len(), 1.0);
        let out = eval1(&g, &[&m.t, &m.u, &m.p, &v]);
        let (gu, gp) = out.split_at(m.u.len());
        assert_eq!(gp.len(), m.p.len(), "{}", m.name);
        // Every state coordinate, and three random directions in parameter space.
        for j in 0..m.u.len() {
            let mut e = vec![0.0; m.u.len()];
            e[j] = 1.0;
            let fd = dot(&v, &fd_dir(&m.f, &args(&m), 1, &e));
            assert_close(&format!("{} vjp u[{j}]", m.name), &[gu[j]], &[fd], REL, ABS);
        }
        for k in 0..3 {
            let w = uniform(&mut r, m.p.len(), 1.0);
            let fd = dot(&v, &fd_dir(&m.f, &args(&m), 2, &w));
            assert_close(
                &format!("{} vjp p dir {k}", m.name),
                &[dot(gp, &w)],
                &[fd],
                REL,
                ABS,
            );
        }
    }
}

#[test]
fn vjp_per_parameter_on_small_models() {
    for m in [models::lorenz(), models::robertson(), models::assorted()] {
        let g = vjp(&m.f, &["p", "t"], "v").unwrap();
        let v = uniform(&mut rng(11), m.f.output_len(), 1.0);
        let out = eval1(&g, &[&m.t, &m.u, &m.p, &v]);
        for j in 0..m.p.len() {
            let mut e = vec![0.0; m.p.len()];
            e[j] = 1.0;
            let fd = dot(&v, &fd_dir(&m.f, &args(&m), 2, &e));
            assert_close(
                &format!("{} vjp p[{j}]", m.name),
                &[out[j]],
                &[fd],
                REL,
                ABS,
            );
        }
        let fd_t = dot(&v, &fd_dir(&m.f, &args(&m), 0, &[1.0]));
        assert_close(
            &format!("{} vjp t", m.name),
            &[out[m.p.len()]],
            &[fd_t],
            REL,
            ABS,
        );
    }
}

#[test]
fn jvp_matches_finite_differences() {
    for m in models::all() {
        for (arg, name) in [(1, "u"), (2, "p"), (0, "t")] {
            let g = jvp(&m.f, name, "w").unwrap();
            let w = uniform(&mut rng(12), m.f.args[arg].len, 1.0);
            let out = eval1(&g, &[&m.t, &m.u, &m.p, &w]);
            let fd = fd_dir(&m.f, &args(&m), arg, &w);
            assert_close(&format!("{} jvp {name}", m.name), &out, &fd, REL, ABS);
        }
    }
}

#[test]
fn vjp_and_jvp_agree_on_v_j_w() {
    for m in models::all() {
        let mut r = rng(13);
        let v = uniform(&mut r, m.f.output_len(), 1.0);
        let w = uniform(&mut r, m.p.len(), 1.0);
        let back = eval1(&vjp(&m.f, &["p"], "v").unwrap(), &[&m.t, &m.u, &m.p, &v]);
        let fwd = eval1(&jvp(&m.f, "p", "w").unwrap(), &[&m.t, &m.u, &m.p, &w]);
        // Same quantity by two orders of summation: agreement to rounding.
        assert_close(
            &format!("{} <v, Jw>", m.name),
            &[dot(&back, &w)],
            &[dot(&v, &fwd)],
            1e-10,
            1e-12,
        );
    }
}

#[test]
fn jacobian_equals_stacked_jvps() {
    for m in models::all() {
        let n = m.u.len();
        let rows = m.f.output_len();
        let jac = eval1(&jacobian(&m.f, "u").unwrap(), &args(&m));
        assert_eq!(jac.len(), rows * n, "{}", m.name);
        let jv = jvp(&m.f, "u", "w").unwrap();
        for j in 0..n {
            let mut e = vec![0.0; n];
            e[j] = 1.0;
            let col = eval1(&jv, &[&m.t, &m.u, &m.p, &e]);
            let from_jac: Vec<f64> = (0..rows).map(|i| jac[i * n + j]).collect();
            assert_close(
                &format!("{} jacobian column {j}", m.name),
                &from_jac,
                &col,
                1e-12,
                1e-14,
            );
        }
    }
}

#[test]
fn lorenz_jacobian_is_analytic() {
    let m = models::lorenz();
    let jac = eval1(&jacobian(&m.f, "u").unwrap(), &args(&m));
    let (x, y, z) = (m.u[0], m.u[1], m.u[2]);
    let (s, r, b) = (m.p[0], m.p[1], m.p[2]);
    let expected = [-s, s, 0.0, r - z, -1.0, -x, y, x, -b];
    assert_close("lorenz jacobian", &jac, &expected, 1e-15, 0.0);
}

/// `d²u/dt² = J·f + ∂f/∂t` by FD along the flow: `(f(t+ε, u+εf) − f(t−ε, u−εf)) / 2ε`; and the
/// third derivative the same way from the second.
#[test]
fn time_derivatives_match_flow_differences() {
    for m in models::all() {
        let ds = time_derivatives(&m.f, 3, Some("t"), "u").unwrap();
        assert_eq!(ds.len(), 3);
        let d1 = eval1(&ds[0], &args(&m));
        assert_eq!(
            d1,
            eval1(&m.f, &args(&m)),
            "{}: first derivative is f",
            m.name
        );
        for k in 1..3 {
            let got = eval1(&ds[k], &args(&m));
            let eps = 1e-6;
            let along = |sign: f64| {
                let t = [m.t[0] + sign * eps];
                let u: Vec<f64> =
                    m.u.iter()
                        .zip(&d1)
                        .map(|(u, f)| u + sign * eps * f)
                        .collect();
                eval(&ds[k - 1], &[&t, &u, &m.p], 1).unwrap()
            };
            let (a, b) = (along(1.0), along(-1.0));
            let fd: Vec<f64> = a
                .iter()
                .zip(&b)
                .map(|(p, q)| (p - q) / (2.0 * eps))
                .collect();
            // Scale the floor by the field's size: Lorenz and Robertson have |f| ≫ 1.
            let scale = fd.iter().fold(1.0f64, |s, x| s.max(x.abs()));
            assert_close(
                &format!("{} d{}u/dt", m.name, k + 1),
                &got,
                &fd,
                REL,
                ABS * scale,
            );
        }
    }
}

#[test]
fn derivative_passes_reject_unknown_arguments() {
    let m = models::lorenz();
    assert!(vjp(&m.f, &["q"], "v").is_err());
    assert!(vjp(&m.f, &["u"], "p").is_err());
    assert!(jvp(&m.f, "q", "w").is_err());
    assert!(jacobian(&m.f, "q").is_err());
    assert!(time_derivatives(&m.f, 2, Some("s"), "u").is_err());
    // p has 3 entries like u, but the spiral's output (2) is not as long as its p.
    let s = models::spiral();
    assert!(time_derivatives(&s.f, 2, Some("t"), "p").is_err());
}

/// Passes compose: regularizers differentiate derivatives (the gradient of ‖J‖²_F or of
/// ‖d²u/dt²‖² w.r.t. the parameters), so the VJP of a Jacobian and of a time derivative must
/// match finite differences too.
#[test]
fn passes_compose_second_order() {
    for m in [
        models::spiral(),
        models::lorenz(),
        models::lotka_volterra(),
        models::assorted(),
    ] {
        let jac = jacobian(&m.f, "u").unwrap();
        let d2 = time_derivatives(&m.f, 2, Some("t"), "u").unwrap().remove(1);
        for (what, g) in [("jacobian", jac), ("d2u", d2)] {
            let back = vjp(&g, &["p", "u"], "v").unwrap();
            let mut r = rng(14);
            let v = uniform(&mut r, g.output_len(), 1.0);
            let out = eval1(&back, &[&m.t, &m.u, &m.p, &v]);
            for (arg, off, len) in [(2, 0, m.p.len()), (1, m.p.len(), m.u.len())] {
                let w = uniform(&mut r, len, 1.0);
                let fd = dot(&v, &fd_dir(&g, &args(&m), arg, &w));
                let scale = fd.abs().max(1.0);
                assert_close(
                    &format!("{} vjp of {what}, arg {arg}", m.name),
                    &[dot(&out[off..off + len], &w)],
                    &[fd],
                    REL,
                    ABS * scale,
                );
            }
        }
    }
}
