//! The discrete adjoint against central finite differences of the same computation (a replay
//! of the recorded step sequence, so the step sizes are frozen), for every explicit method,
//! with and without the regularizers, on a small nonlinear ODE (closures) and on the spiral MLP
//! (JIT kernels); exponential decay against its analytic gradient; checkpointing against stored
//! stages; the local regularizer terms.
//!
//! Tolerance: the finite differences are the five-point central stencil, truncation error
//! O(ε⁴·L⁽⁵⁾), rounding error O(δ/ε) where δ is the rounding error of one evaluation of `L`.
//! The regularizers make δ large: `E_j` is a cancelling sum of stages divided by `rtol·|u|`
//! (and `S_j` a difference quotient), so δ grows like 1e-16/rtol; at rtol = 1e-6 the
//! differences were noisy at 1e-4 relative, so the solves here use rtol = 1e-4 (δ ≈ 1e-13).
//! ε = 1e-5 keeps the truncation part negligible and the rounding part ≈ 1e-8, and is small
//! enough not to straddle the kinks of `max(|u_n|, |u_n+1|)` (the kink is crossed where
//! `|u_n| ≈ |u_n+1|`, near an extremum of a component; ε = 1e-4 and 1e-3 did cross one for
//! bs3 and heun_euler, and the differences then converged to the adjoint as ε shrank). A
//! relative mismatch above 1e-6 is a wrong gradient.

use std::path::Path;

use glassbox::grad::{
    self, AdjointOptions, AdjointWork, JitVjpField, Sampling, VjpField, adjoint, adjoint_in,
    local_step, local_term, recorded_regularizers, regularizers_from_stages, replay, step_sequence,
    vjp_from_fn,
};
use glassbox::sema::Model;
use glassbox::solve::tableau::METHODS;
use glassbox::solve::{self, Method, Solution, SolveOptions, Tableau, param_values};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T1: f64 = 3.0;

/// A damped nonlinear oscillator with a time-dependent forcing:
/// `u0' = p0 u1 + 0.1 sin t`, `u1' = −p1 u0 − p2 u1 (1 − u0²)`.
fn oscillator(p: [f64; 3]) -> impl VjpField {
    vjp_from_fn(
        2,
        3,
        move |t, u, du| {
            du[0] = p[0] * u[1] + 0.1 * t.sin();
            du[1] = -p[1] * u[0] - p[2] * u[1] * (1.0 - u[0] * u[0]);
        },
        move |_t, u, v, out_u, out_p| {
            out_u[0] = v[1] * (-p[1] + 2.0 * p[2] * u[0] * u[1]);
            out_u[1] = v[0] * p[0] - v[1] * p[2] * (1.0 - u[0] * u[0]);
            out_p[0] = v[0] * u[1];
            out_p[1] = -v[1] * u[0];
            out_p[2] = -v[1] * u[1] * (1.0 - u[0] * u[0]);
        },
    )
}

const P: [f64; 3] = [1.0, 2.0, 0.3];
const U0: [f64; 2] = [0.8, -0.4];

/// The loss `Σ ⟨c_i, u(ts_i)⟩ + w_E R_E + w_S R_S` of a solution, with the regularizers from
/// the solver's records.
fn loss(sol: &Solution, c: &[f64], o: &AdjointOptions) -> f64 {
    let (re, rs) = recorded_regularizers(sol);
    let data: f64 = sol.us.iter().zip(c).map(|(u, c)| u * c).sum();
    data + o.error_weight * re + o.stiffness_weight * rs
}

fn weights(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `d/de g(e)` at 0 by the five-point central stencil with step `e`.
fn derivative(e: f64, mut g: impl FnMut(f64) -> f64) -> f64 {
    (-g(2.0 * e) + 8.0 * g(e) - 8.0 * g(-e) + g(-2.0 * e)) / (12.0 * e)
}

fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

/// The options of the forward solve for a method: adaptive where it can be, else `dt`.
fn forward_opts(tab: &Tableau, save_at: Vec<f64>) -> SolveOptions {
    SolveOptions {
        rtol: 1e-4,
        atol: 1e-7,
        dt: (!tab.is_adaptive()).then_some(0.05),
        save_at,
        keep_stages: true,
        ..Default::default()
    }
}

/// The regularizer settings a method supports: none, R_E, R_S, both.
fn reg_settings(tab: &Tableau, rtol: f64, atol: f64) -> Vec<AdjointOptions> {
    let mut out = vec![AdjointOptions::new(rtol, atol)];
    if tab.is_adaptive() {
        out.push(AdjointOptions {
            error_weight: 0.7,
            ..AdjointOptions::new(rtol, atol)
        });
    }
    if tab.stiffness_pair.is_some() {
        out.push(AdjointOptions {
            stiffness_weight: 0.4,
            ..AdjointOptions::new(rtol, atol)
        });
    }
    if tab.is_adaptive() && tab.stiffness_pair.is_some() {
        out.push(AdjointOptions {
            error_weight: 0.7,
            stiffness_weight: 0.4,
            ..AdjointOptions::new(rtol, atol)
        });
    }
    out
}

#[test]
fn oscillator_adjoint_matches_central_differences_for_every_method() {
    // All step ends, and interior save times (dense output: free and Hermite interpolants).
    let save_sets = [Vec::new(), vec![0.0, 0.37, 0.9, 2.21, T1]];
    for tab in METHODS {
        for save_at in &save_sets {
            let fopts = forward_opts(tab, save_at.clone());
            let sol = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &fopts).expect("solves");
            let steps = step_sequence(&sol);
            assert!(steps.len() >= 10, "{}: {} steps", tab.name, steps.len());
            let c = weights(sol.us.len(), 7);
            for o in reg_settings(tab, fopts.rtol, fopts.atol) {
                let g = adjoint(tab, &mut oscillator(P), &sol, &c, &o).expect("adjoint");
                let run = |p: [f64; 3], u0: [f64; 2]| {
                    let s = replay(tab, &mut oscillator(p), &u0, &steps, &fopts).expect("replay");
                    loss(&s, &c, &o)
                };
                let fd_p: Vec<f64> = (0..3)
                    .map(|i| {
                        derivative(1e-5, |e| {
                            let mut q = P;
                            q[i] += e;
                            run(q, U0)
                        })
                    })
                    .collect();
                let fd_u: Vec<f64> = (0..2)
                    .map(|i| {
                        derivative(1e-5, |e| {
                            let mut u = U0;
                            u[i] += e;
                            run(P, u)
                        })
                    })
                    .collect();
                let what = format!(
                    "{} saves {:?} w_E {} w_S {}",
                    tab.name, save_at, o.error_weight, o.stiffness_weight
                );
                assert!(
                    rel_err(&g.dp, &fd_p) < 1e-6,
                    "{what}: dp {:?} vs {fd_p:?}",
                    g.dp
                );
                assert!(
                    rel_err(&g.du0, &fd_u) < 1e-6,
                    "{what}: du0 {:?} vs {fd_u:?}",
                    g.du0
                );
            }
        }
    }
}

/// The regularizers are visible in the gradient: switching them on changes it by far more than
/// the tolerance, so the tests above would catch a dropped term.
#[test]
fn regularizers_change_the_gradient() {
    let tab = &solve::tableau::TSIT5;
    let fopts = forward_opts(tab, Vec::new());
    let sol = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &fopts).expect("solves");
    let c = weights(sol.us.len(), 7);
    let plain = AdjointOptions::new(fopts.rtol, fopts.atol);
    let g0 = adjoint(tab, &mut oscillator(P), &sol, &c, &plain).expect("adjoint");
    for o in &reg_settings(tab, fopts.rtol, fopts.atol)[1..] {
        let g = adjoint(tab, &mut oscillator(P), &sol, &c, o).expect("adjoint");
        assert!(rel_err(&g.dp, &g0.dp) > 1e-4, "{o:?}");
    }
}

#[test]
fn replay_reproduces_the_solve() {
    for tab in METHODS {
        for save_at in [Vec::new(), vec![0.0, 0.37, 0.9, T1]] {
            let fopts = forward_opts(tab, save_at);
            let sol = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &fopts).expect("solves");
            let re =
                replay(tab, &mut oscillator(P), &U0, &step_sequence(&sol), &fopts).expect("ok");
            assert_eq!(re.ts, sol.ts, "{}", tab.name);
            // Bit for bit, except that the solver evaluates f at the last step's end at t1
            // itself and the replay at t + h (an ulp apart at most).
            assert!(rel_err(&re.us, &sol.us) < 1e-15, "{}", tab.name);
            for (a, b) in re.steps.iter().zip(&sol.steps) {
                assert_eq!(a.error_estimate, b.error_estimate, "{}", tab.name);
                assert_eq!(a.stiffness_estimate, b.stiffness_estimate, "{}", tab.name);
            }
        }
    }
}

#[test]
fn regularizers_from_stages_equal_the_solvers_records() {
    for tab in METHODS {
        let fopts = forward_opts(tab, Vec::new());
        let sol = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &fopts).expect("solves");
        let (re, rs) = recorded_regularizers(&sol);
        let (se, ss) =
            regularizers_from_stages(tab, &sol, fopts.rtol, fopts.atol).expect("stages kept");
        assert_eq!((se, ss), (re, rs), "{}", tab.name);
        assert_eq!(re > 0.0, tab.is_adaptive(), "{}", tab.name);
        assert_eq!(rs > 0.0, tab.stiffness_pair.is_some(), "{}", tab.name);
    }
}

/// y' = −k y: dy(T)/dk = −T y0 e^{−kT}, dy(T)/dy0 = e^{−kT}. The discrete gradient differs
/// from the analytic one by the solver's error, ≈ rtol.
#[test]
fn exponential_decay_against_the_analytic_gradient() {
    let (k, y0, t1) = (0.7, 1.3, 2.0);
    let decay = || {
        vjp_from_fn(
            1,
            1,
            move |_t, u, du| du[0] = -k * u[0],
            move |_t, u, v, out_u, out_p| {
                out_u[0] = -k * v[0];
                out_p[0] = -u[0] * v[0];
            },
        )
    };
    for tab in [&solve::tableau::TSIT5, &solve::tableau::DOPRI5] {
        let fopts = SolveOptions {
            rtol: 1e-10,
            atol: 1e-12,
            save_at: vec![t1],
            keep_stages: true,
            ..Default::default()
        };
        let sol = solve::solve(tab, &mut decay(), 0.0, t1, &[y0], &fopts).expect("solves");
        let g = adjoint(
            tab,
            &mut decay(),
            &sol,
            &[1.0],
            &AdjointOptions::new(1e-10, 1e-12),
        )
        .expect("adjoint");
        let dk = -t1 * y0 * (-k * t1).exp();
        let dy0 = (-k * t1).exp();
        assert!(
            ((g.dp[0] - dk) / dk).abs() < 1e-8,
            "{}: {} vs {dk}",
            tab.name,
            g.dp[0]
        );
        assert!(((g.du0[0] - dy0) / dy0).abs() < 1e-8, "{}", tab.name);
    }
    // RK4 on a fixed grid: the same to O(dt⁴).
    let fopts = SolveOptions {
        dt: Some(0.01),
        keep_stages: true,
        ..Default::default()
    };
    let tab = &solve::tableau::RK4;
    let sol = solve::solve(tab, &mut decay(), 0.0, t1, &[y0], &fopts).expect("solves");
    let mut dl = vec![0.0; sol.us.len()];
    if let Some(last) = dl.last_mut() {
        *last = 1.0;
    }
    let g = adjoint(
        tab,
        &mut decay(),
        &sol,
        &dl,
        &AdjointOptions::new(1e-3, 1e-6),
    )
    .expect("ok");
    let dk = -t1 * y0 * (-k * t1).exp();
    assert!(
        ((g.dp[0] - dk) / dk).abs() < 1e-8,
        "rk4: {} vs {dk}",
        g.dp[0]
    );
}

#[test]
fn checkpointed_gradients_equal_stored_ones() {
    for tab in [
        &solve::tableau::TSIT5,
        &solve::tableau::BS3,
        &solve::tableau::HEUN_EULER,
        &solve::tableau::RK4,
    ] {
        let stored_opts = forward_opts(tab, vec![0.0, 0.37, 0.9, T1]);
        let sol =
            solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &stored_opts).expect("solves");
        let c = weights(sol.us.len(), 3);
        let o = AdjointOptions {
            error_weight: if tab.is_adaptive() { 0.5 } else { 0.0 },
            stiffness_weight: 0.2,
            ..AdjointOptions::new(stored_opts.rtol, stored_opts.atol)
        };
        let want = adjoint(tab, &mut oscillator(P), &sol, &c, &o).expect("stored");
        for every in [1, 3, 7, 1000] {
            let copts = SolveOptions {
                checkpoint_every: Some(every),
                ..stored_opts.clone()
            };
            let cp = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &copts).expect("solves");
            let kept = cp.steps.iter().filter(|s| s.stages.is_some()).count();
            assert_eq!(kept, cp.steps.len().div_ceil(every), "{}", tab.name);
            assert!(
                cp.steps
                    .iter()
                    .filter_map(|s| s.stages.as_ref())
                    .all(|g| g.k.is_empty())
            );
            let got = adjoint(tab, &mut oscillator(P), &cp, &c, &o).expect("checkpointed");
            assert_eq!(got, want, "{} every {every}", tab.name);
            // The replay facility keeps checkpoints the same way.
            let re =
                replay(tab, &mut oscillator(P), &U0, &step_sequence(&sol), &copts).expect("replay");
            let got = adjoint(tab, &mut oscillator(P), &re, &c, &o).expect("checkpointed");
            assert_eq!(got, want, "{} replay every {every}", tab.name);
        }
    }
}

/// The local term with `u(t_r)` and `h` frozen, against central differences in `p`.
#[test]
fn local_terms_match_central_differences() {
    let fopts = SolveOptions {
        dense: true,
        keep_stages: true,
        ..forward_opts(&solve::tableau::TSIT5, Vec::new())
    };
    for tab in [
        &solve::tableau::TSIT5,
        &solve::tableau::BS3,
        &solve::tableau::HEUN_EULER,
    ] {
        let sol = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &fopts).expect("solves");
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for sampling in [Sampling::Unbiased, Sampling::Biased] {
            let (t_r, u_r) = grad::sample(&sol, sampling, &mut rng).expect("sample");
            assert!((0.0..=T1).contains(&t_r));
            if sampling == Sampling::Biased {
                assert!(sol.steps.iter().any(|s| s.t == t_r));
            }
            let o = AdjointOptions {
                error_weight: 1.0,
                stiffness_weight: 0.3,
                ..AdjointOptions::new(fopts.rtol, fopts.atol)
            };
            let term = local_term(tab, &mut oscillator(P), t_r, &u_r, T1, &o).expect("term");
            assert!(term.h > 0.0 && term.value > 0.0, "{term:?}");
            let value = |p: [f64; 3]| {
                local_step(tab, &mut oscillator(p), t_r, &u_r, term.h, &o)
                    .expect("step")
                    .value
            };
            assert_eq!(value(P), term.value);
            let fd: Vec<f64> = (0..3)
                .map(|i| {
                    derivative(1e-5, |e| {
                        let mut q = P;
                        q[i] += e;
                        value(q)
                    })
                })
                .collect();
            assert!(
                rel_err(&term.dp, &fd) < 1e-6,
                "{} {sampling:?}: {:?} vs {fd:?}",
                tab.name,
                term.dp
            );
        }
    }
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let tab = &solve::tableau::TSIT5;
    let plain = SolveOptions::default();
    let sol = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &plain).expect("solves");
    let o = AdjointOptions::new(1e-3, 1e-6);
    let dl = vec![0.0; sol.us.len()];
    let code = |r: Result<grad::Gradients, solve::SolveError>| {
        glassbox::diag::Diag::from(r.expect_err("must fail")).code
    };
    // No stages kept.
    assert_eq!(
        code(adjoint(tab, &mut oscillator(P), &sol, &dl, &o)),
        "glassbox::invalid_solve_option"
    );
    let kept = SolveOptions {
        keep_stages: true,
        ..plain
    };
    let sol = solve::solve(tab, &mut oscillator(P), 0.0, T1, &U0, &kept).expect("solves");
    // Wrong seed length, wrong method.
    assert!(adjoint(tab, &mut oscillator(P), &sol, &dl[1..], &o).is_err());
    let dl = vec![0.0; sol.us.len()];
    assert!(adjoint(&solve::tableau::DOPRI5, &mut oscillator(P), &sol, &dl, &o).is_err());
    assert!(replay(tab, &mut oscillator(P), &U0, &[], &kept).is_err());
    assert!(
        replay(
            tab,
            &mut oscillator(P),
            &U0[..1],
            &step_sequence(&sol),
            &kept
        )
        .is_err()
    );
}

fn spiral_model() -> Model {
    example_model("spiral")
}

fn example_model(name: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.gbx"));
    let text = std::fs::read_to_string(&path).expect("example readable");
    let file = glassbox::source::SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &glassbox::source::DiskLoader);
    assert!(checked.diags.is_empty(), "{:?}", checked.diags);
    checked.model.expect("checked model")
}

/// The spiral MLP (2→50→2, tanh; 252 parameters) through JIT-compiled field and VJP kernels:
/// directional central differences in two random parameter directions and in each initial
/// state component.
#[test]
fn spiral_mlp_adjoint_matches_central_differences_for_every_method() {
    let model = spiral_model();
    // The initial weights ×3: a nonlinear field whose steps are not tiny (at the initial
    // weights the first steps are so short that `S_j` is rounding noise).
    let p: Vec<f64> = param_values(&model).iter().map(|x| 3.0 * x).collect();
    assert_eq!(p.len(), 252);
    let mut field = JitVjpField::new(&model, &p, &[]).expect("compiles");
    let u0 = [2.0, 0.0];
    let t1 = 1.0;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let dirs: Vec<Vec<f64>> = (0..2)
        .map(|_| (0..p.len()).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    for tab in METHODS {
        let fopts = SolveOptions {
            dt: (!tab.is_adaptive()).then_some(0.02),
            h0: Some(0.05),
            save_at: vec![0.1, 0.25, 0.7, t1],
            ..forward_opts(tab, Vec::new())
        };
        field.set_params(&p).expect("same length");
        let sol = solve::solve(tab, &mut field, 0.0, t1, &u0, &fopts).expect("solves");
        let steps = step_sequence(&sol);
        let c = weights(sol.us.len(), 9);
        for o in reg_settings(tab, fopts.rtol, fopts.atol) {
            field.set_params(&p).expect("same length");
            let g = adjoint(tab, &mut field, &sol, &c, &o).expect("adjoint");
            let mut run = |q: &[f64], u: &[f64]| {
                field.set_params(q).expect("same length");
                loss(
                    &replay(tab, &mut field, u, &steps, &fopts).expect("replay"),
                    &c,
                    &o,
                )
            };
            let (mut ad, mut fd) = (Vec::new(), Vec::new());
            for d in &dirs {
                fd.push(derivative(1e-4, |e| {
                    let q: Vec<f64> = p.iter().zip(d).map(|(x, y)| x + e * y).collect();
                    run(&q, &u0)
                }));
                ad.push(g.dp.iter().zip(d).map(|(x, y)| x * y).sum::<f64>());
            }
            for i in 0..2 {
                fd.push(derivative(1e-4, |e| {
                    let mut u = u0;
                    u[i] += e;
                    run(&p, &u)
                }));
                ad.push(g.du0[i]);
            }
            assert!(
                rel_err(&ad, &fd) < 1e-6,
                "{} w_E {} w_S {}: {ad:?} vs {fd:?}",
                tab.name,
                o.error_weight,
                o.stiffness_weight
            );
        }
    }
}

/// The whole chain for a model whose initial state is computed by a net from an input:
/// `dL/dp = (field part) + (∂u0/∂p)ᵀ dL/du0`, against differences of the full computation.
#[test]
fn gradient_flows_into_the_initial_state_encoder() {
    let src = "model enc\ninput z[2]\nnet e = mlp(2, 3, 2; act = tanh)\nstate y[2] = e(z)\nparam k = 0.5 learn\ndy/dt = -k * y + 0.3 * tanh(y)\n";
    let file = glassbox::source::SourceFile::new("enc.gbx".to_string(), src.to_string());
    let checked = glassbox::check_source(&file, &glassbox::source::DiskLoader);
    assert!(checked.diags.is_empty(), "{:?}", checked.diags);
    let model = checked.model.expect("checked model");
    let p = param_values(&model);
    let z = [0.4, -0.9];
    let tab = &solve::tableau::TSIT5;
    let fopts = SolveOptions {
        save_at: vec![1.0],
        ..forward_opts(tab, Vec::new())
    };
    let mut field = JitVjpField::new(&model, &p, &z).expect("compiles");
    let u0 = solve::initial_state(&model, &p, &z, 0.0).expect("initial state");
    let sol = solve::solve(tab, &mut field, 0.0, 1.0, &u0, &fopts).expect("solves");
    let c = [0.7, -1.1];
    let g = adjoint(
        tab,
        &mut field,
        &sol,
        &c,
        &AdjointOptions::new(fopts.rtol, fopts.atol),
    )
    .expect("adjoint");
    let from_init = grad::initial_state_vjp(&model, &p, &z, 0.0, &g.du0).expect("init vjp");
    assert!(from_init.iter().any(|x| x.abs() > 1e-3));
    let total: Vec<f64> = g.dp.iter().zip(&from_init).map(|(a, b)| a + b).collect();
    let steps = step_sequence(&sol);
    let fd: Vec<f64> = (0..p.len())
        .map(|i| {
            derivative(1e-5, |e| {
                let mut q = p.clone();
                q[i] += e;
                field.set_params(&q).expect("same length");
                let u0 = solve::initial_state(&model, &q, &z, 0.0).expect("initial state");
                let s = replay(tab, &mut field, &u0, &steps, &fopts).expect("replay");
                s.us.iter().zip(&c).map(|(u, c)| u * c).sum()
            })
        })
        .collect();
    assert!(rel_err(&total, &fd) < 1e-6, "{total:?} vs {fd:?}");
}

/// Training's activation sharing (`JitVjpField::share_activations`): the VJPs read the forward
/// stages' `tanh` values instead of recomputing them, and the solution and the gradients stay
/// the same bit for bit (the recorded values are the recomputation's values), with the
/// regularizers' extra VJPs and the checkpointed recomputation included.
#[test]
fn shared_activations_leave_gradients_bit_identical() {
    let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (name, scale, u0) in [
        ("spiral", 3.0, [2.0, 0.0]),
        ("lotka_volterra_ude", 1.0, [1.0, 1.0]),
    ] {
        let model = example_model(name);
        let p: Vec<f64> = param_values(&model).iter().map(|x| scale * x).collect();
        let mut plain = JitVjpField::new(&model, &p, &[]).expect("compiles");
        let mut shared = JitVjpField::new(&model, &p, &[]).expect("compiles");
        assert!(shared.share_activations().expect("compiles"), "{name}");
        for tab in [
            &solve::tableau::TSIT5,
            &solve::tableau::DOPRI5,
            &solve::tableau::BS3,
        ] {
            for every in [None, Some(3)] {
                let fopts = SolveOptions {
                    h0: Some(0.05),
                    checkpoint_every: every,
                    ..forward_opts(tab, vec![0.1, 0.25, 0.7, 1.0])
                };
                let c = weights(fopts.save_at.len() * 2, 4);
                for o in reg_settings(tab, fopts.rtol, fopts.atol) {
                    shared.set_params(&p).expect("same length");
                    let a = solve::solve(tab, &mut plain, 0.0, 1.0, &u0, &fopts).expect("solves");
                    let b = solve::solve(tab, &mut shared, 0.0, 1.0, &u0, &fopts).expect("solves");
                    assert_eq!(bits(&a.us), bits(&b.us), "{name} {}", tab.name);
                    let want = adjoint(tab, &mut plain, &a, &c, &o).expect("adjoint");
                    let got = adjoint(tab, &mut shared, &b, &c, &o).expect("adjoint");
                    let (recorded, reused) = shared.shared_activations();
                    // Every step but the first reverses at least its non-FSAL stages from records.
                    assert!(
                        recorded > 0 && reused >= b.steps.len(),
                        "{name} {}: {recorded} {reused}",
                        tab.name
                    );
                    assert_eq!(
                        bits(&got.dp),
                        bits(&want.dp),
                        "{name} {} {every:?}",
                        tab.name
                    );
                    assert_eq!(
                        bits(&got.du0),
                        bits(&want.du0),
                        "{name} {} {every:?}",
                        tab.name
                    );
                }
            }
        }
    }
}

/// The buffers the trainer keeps across windows and iterations (`solve_into`'s solutions and
/// kept stages, `adjoint_in`'s sweep buffers, the shared activations' records) change nothing:
/// solves of different lengths through the same buffers, differentiated last to first as the
/// trainer does, equal fresh solves and adjoints bit for bit, on the second pass (every buffer
/// holding a longer or a shorter solve's leftovers) as on the first.
#[test]
fn reused_buffers_give_the_fresh_results() {
    let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let model = example_model("spiral");
    let p: Vec<f64> = param_values(&model).iter().map(|x| 3.0 * x).collect();
    let mut plain = JitVjpField::new(&model, &p, &[]).expect("compiles");
    let mut shared = JitVjpField::new(&model, &p, &[]).expect("compiles");
    assert!(shared.share_activations().expect("compiles"));
    let tab = &solve::tableau::TSIT5;
    let long = (vec![0.0, 0.5, 1.0, 1.5, 2.0], [2.0, 0.0]);
    let short = (vec![0.2, 0.35, 0.7], [1.5, -0.5]);
    let o = AdjointOptions {
        error_weight: 0.7,
        stiffness_weight: 0.4,
        ..AdjointOptions::new(1e-4, 1e-7)
    };
    let mut sols = [Solution::default(), Solution::default()];
    let mut work = AdjointWork::default();
    for pass in [[&long, &short], [&short, &long]] {
        shared.set_params(&p).expect("same length");
        for (sol, (ts, u0)) in sols.iter_mut().zip(pass) {
            let opts = forward_opts(tab, ts.clone());
            let (t0, t1) = (ts[0], ts[ts.len() - 1]);
            let m = Method::Explicit(tab);
            solve::solve_into(m, &mut shared, t0, t1, u0, &opts, sol).expect("solves");
        }
        for (sol, (ts, u0)) in sols.iter().zip(pass).rev() {
            let opts = forward_opts(tab, ts.clone());
            let (t0, t1) = (ts[0], ts[ts.len() - 1]);
            let fresh = solve::solve(tab, &mut plain, t0, t1, u0, &opts).expect("solves");
            assert_eq!(bits(&sol.us), bits(&fresh.us));
            assert_eq!(sol.steps.len(), fresh.steps.len());
            let c = weights(sol.us.len(), 5);
            let want = adjoint(tab, &mut plain, &fresh, &c, &o).expect("adjoint");
            adjoint_in(tab, &mut shared, sol, &c, &o, None, &mut work).expect("adjoint");
            assert_eq!(bits(&work.grads().dp), bits(&want.dp));
            assert_eq!(bits(&work.grads().du0), bits(&want.du0));
        }
        let (recorded, reused) = shared.shared_activations();
        let steps: usize = sols.iter().map(|s| s.steps.len()).sum();
        assert!(reused >= steps && recorded > reused, "{recorded} {reused}");
    }
}
