//! The papers' baseline regularizers in training: the integral terms (`kinetic`,
//! `jacobian_frobenius`, `taylor(K)`) against analytic integrals on linear fields and against
//! an explicitly augmented solve, their gradients through the whole dfdx path against finite
//! differences, and STEER's end-time draws.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use glassbox::data;
use glassbox::grad::{self, AdjointOptions, JitIntegrand, JitVjpField};
use glassbox::ir::lower::{self, Integrand as Which};
use glassbox::sema::Model;
use glassbox::solve::{self, SolveOptions, VectorField, tableau};
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{Overrides, STEER_STREAM, Segment, Trainer, Weights};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx_integrals_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check(path: &str, text: String) -> (Arc<SourceFile>, Model) {
    let file = SourceFile::new(path.to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    let model = checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags));
    (file, model)
}

/// Three Adam iterations of `objective` with `seed`, on `windows` windows of 4 points.
fn trained(name: &str, objective: &str, seed: u64, windows: usize) -> Trainer {
    let train = format!(
        "adam(lr = 1e-2), iterations = 3, seed = {seed}, batch = windows({windows}, length = 4)"
    );
    let (mut t, _) = trainer(&format!("{name}{seed}"), objective, &train).unwrap();
    while !t.done() {
        t.step().unwrap();
    }
    t
}

/// A model file in its own directory, the spiral data beside the crate's examples.
fn trainer(
    name: &str,
    objective: &str,
    train: &str,
) -> Result<(Trainer, Vec<data::Dataset>), String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/spiral.csv");
    let src = format!(
        r#"model tiny
state y[2] = [2.0, 0.0]
net f = mlp(2, 5, 2; act = tanh)
dy/dt = f(y)
data obs = csv("{}", time = "t", columns = ["y1", "y2"])
solve tsit5(rtol = 1e-6, atol = 1e-8)
minimize {objective}
train {train}
"#,
        data.display()
    );
    let path = tmp(name).join("model.gbx");
    let (file, model) = check(&path.display().to_string(), src);
    let ds = data::load_model(&model, Some(&file), &DiskLoader).map_err(|d| d.code.to_string())?;
    let t =
        Trainer::new(&model, ds.clone(), &Overrides::default()).map_err(|d| d.code.to_string())?;
    Ok((t, ds))
}

/// `y' = -k y` (scalar) or `y' = A y` (two states), tsit5 at tight tolerances.
const DECAY: &str = "model decay\nstate y = 1.5\nparam k = 0.7 learn\ndy/dt = -k * y\n";
const LINEAR: &str = "model linear\nstate y[2] = [1.0, -0.5]\nparam A[2, 2] = [-0.5, 1.0; -2.0, 0.25] learn\ndy/dt = A @ y\n";

fn tight() -> SolveOptions {
    SolveOptions {
        rtol: 1e-11,
        atol: 1e-12,
        keep_stages: true,
        ..Default::default()
    }
}

fn integrand(model: &Model, which: Which) -> JitIntegrand {
    let f = lower::lower_integrand(model, which).unwrap();
    JitIntegrand::new(&[f], &model.name, &solve::param_values(model), &[]).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn kinetic_and_taylor_integrals_of_exponential_decay_are_analytic() {
    let (_, model) = check("decay.gbx", DECAY.into());
    let p = solve::param_values(&model);
    let (k, y0, t1) = (0.7f64, 1.5f64, 2.0f64);
    let tab = tableau("tsit5").unwrap();
    let mut f = JitVjpField::new(&model, &p, &[]).unwrap();
    let sol = solve::solve(tab, &mut f, 0.0, t1, &[y0], &tight()).unwrap();
    // ∫ (k y)² dt = k y0² (1 − e^{−2kT}) / 2; y'' = k² y, so ∫ (y'')² = k³ y0² (1 − e^{−2kT}) / 2.
    let decay = 1.0 - (-2.0 * k * t1).exp();
    let kinetic = k * y0 * y0 * decay / 2.0;
    let mut r = integrand(&model, Which::Kinetic);
    let got = grad::integral(tab, &mut r, &sol).unwrap();
    assert!(rel(got, kinetic) < 1e-9, "kinetic {got} vs {kinetic}");
    let mut r2 = integrand(&model, Which::Taylor(2));
    let got2 = grad::integral(tab, &mut r2, &sol).unwrap();
    let taylor2 = k.powi(3) * y0 * y0 * decay / 2.0;
    assert!(rel(got2, taylor2) < 1e-9, "taylor(2) {got2} vs {taylor2}");
    // Weights scale the value linearly.
    r.set_weights(&[0.25]);
    let quarter = grad::integral(tab, &mut r, &sol).unwrap();
    assert!(rel(quarter, 0.25 * kinetic) < 1e-9);

    // The gradient: d/dk of the kinetic integral (the adjoint of the quadrature state, the
    // solution's own dependence on k included) against the analytic derivative.
    r.set_weights(&[1.0]);
    let dl_du = vec![0.0; sol.us.len()];
    let opts = AdjointOptions::new(1e-11, 1e-12);
    let g = grad::adjoint_with(tab, &mut f, &sol, &dl_du, &opts, Some(&mut r)).unwrap();
    let dk = y0 * y0 * decay / 2.0 + k * y0 * y0 * t1 * (-2.0 * k * t1).exp();
    assert!(rel(g.dp[0], dk) < 1e-8, "d/dk {} vs {dk}", g.dp[0]);
    // d/dy0 = 2 · kinetic / y0.
    assert!(rel(g.du0[0], 2.0 * kinetic / y0) < 1e-8);
}

#[test]
fn jacobian_frobenius_of_a_linear_field_is_its_norm_times_the_span() {
    let (_, model) = check("linear.gbx", LINEAR.into());
    let p = solve::param_values(&model);
    let tab = tableau("dopri5").unwrap();
    let mut f = JitVjpField::new(&model, &p, &[]).unwrap();
    let sol = solve::solve(tab, &mut f, 0.0, 3.0, &[1.0, -0.5], &tight()).unwrap();
    let mut r = integrand(&model, Which::JacobianFrobenius);
    let got = grad::integral(tab, &mut r, &sol).unwrap();
    let norm2: f64 = p.iter().map(|a| a * a).sum();
    assert!(rel(got, 3.0 * norm2) < 1e-12, "{got} vs {}", 3.0 * norm2);
    // d/dA_ij = 2 T A_ij, and nothing flows to the state (the Jacobian does not depend on it).
    let dl_du = vec![0.0; sol.us.len()];
    let g = grad::adjoint_with(
        tab,
        &mut f,
        &sol,
        &dl_du,
        &AdjointOptions::new(1e-11, 1e-12),
        Some(&mut r),
    )
    .unwrap();
    for (d, a) in g.dp.iter().zip(&p) {
        assert!((d - 6.0 * a).abs() < 1e-10, "{d} vs {}", 6.0 * a);
    }
    assert!(g.du0.iter().all(|x| x.abs() < 1e-12));
}

/// The quadrature equals the last component of the augmented system `[y, q]' = [f, ‖f‖²]`
/// solved by the same method on the same fixed grid.
#[test]
fn the_quadrature_is_the_augmented_solve() {
    let (_, model) = check("linear.gbx", LINEAR.into());
    let p = solve::param_values(&model);
    let opts = SolveOptions {
        dt: Some(0.1),
        keep_stages: true,
        ..Default::default()
    };
    for name in ["rk4", "tsit5", "bs3", "midpoint"] {
        let tab = tableau(name).unwrap();
        let mut f = JitVjpField::new(&model, &p, &[]).unwrap();
        let sol = solve::solve(tab, &mut f, 0.0, 2.0, &[1.0, -0.5], &opts).unwrap();
        let mut r = integrand(&model, Which::Kinetic);
        let q = grad::integral(tab, &mut r, &sol).unwrap();
        let mut inner = JitVjpField::new(&model, &p, &[]).unwrap();
        let mut aug = solve::from_fn(3, move |t, u: &[f64], du: &mut [f64]| {
            inner.eval(t, &u[..2], &mut du[..2]);
            du[2] = du[0] * du[0] + du[1] * du[1];
        });
        let opts_aug = SolveOptions {
            keep_stages: false,
            ..opts.clone()
        };
        let a = solve::solve(tab, &mut aug, 0.0, 2.0, &[1.0, -0.5, 0.0], &opts_aug).unwrap();
        let q_aug = a.last().unwrap()[2];
        assert!(rel(q, q_aug) < 1e-13, "{name}: {q} vs augmented {q_aug}");
        assert_eq!(sol.stats.accepted, a.stats.accepted);
    }
}

/// The gradient of a whole iteration's objective through dfdx (solve node, data loss, the
/// integral term) against central differences of a fixed-step solve.
#[test]
fn integral_term_gradients_match_finite_differences() {
    for (i, term) in [
        "0.1 * kinetic",
        "0.05 * jacobian_frobenius",
        "0.05 * jacobian_frobenius(estimator = hutchinson)",
        "0.01 * taylor(2)",
        "decay(0.2 -> 0.02) * kinetic + 0.01 * taylor(3) + 0.02 * jacobian_frobenius + 0.1 * error_estimate",
    ]
    .iter()
    .enumerate()
    {
        let objective = format!("mse(y, obs) + {term}");
        let (mut t, ds) = trainer(
            &format!("fd{i}"),
            &objective,
            "adam(lr = 1e-2), iterations = 4, batch = windows(2, length = 5)",
        )
        .unwrap();
        t.plan.solve.dt = Some(0.05);
        let mut sampler = data::batch::Sampler::new(5, t.plan.batch);
        let draw = sampler.next(&ds[0]).unwrap();
        let (segs, target) = t.segments(&draw).unwrap();
        let w = t.weights(1);
        assert!(w.integrals.iter().all(|x| *x > 0.0) && !w.integrals.is_empty());
        let theta = t.state().theta.clone();
        let ev = t.evaluate(&theta, &segs, target.clone(), &w, 1).unwrap();
        let plain = t
            .evaluate(&theta, &segs, target.clone(), &Weights::default(), 1)
            .unwrap();
        assert!(ev.reg > 0.0 && plain.reg == 0.0, "{term}: the term adds nothing");
        assert_ne!(ev.grad, plain.grad, "{term}: the term changes no gradient");
        let dirs: Vec<Vec<f64>> = (1..=3u64)
            .map(|s| {
                (0..theta.len())
                    .map(|i| (((i as u64 + 1) * 2654435761 * s) % 1000) as f64 / 500.0 - 1.0)
                    .collect()
            })
            .collect();
        let h = 1e-5;
        for d in &dirs {
            let mut objective = |th: &[f64]| {
                let e = t.evaluate(th, &segs, target.clone(), &w, 1).unwrap();
                e.loss + e.reg
            };
            let plus: Vec<f64> = theta.iter().zip(d).map(|(a, b)| a + h * b).collect();
            let minus: Vec<f64> = theta.iter().zip(d).map(|(a, b)| a - h * b).collect();
            let fd = (objective(&plus) - objective(&minus)) / (2.0 * h);
            let an: f64 = ev.grad.iter().zip(d).map(|(g, b)| g * b).sum();
            // The last case carries R_E, whose cancelling stage sums make differences noisier
            // (see tests/suite/train.rs): 1e-5 there, 1e-6 for the smooth integrals.
            let tol = if term.contains("error_estimate") { 1e-5 } else { 1e-6 };
            assert!(
                (fd - an).abs() <= tol * an.abs().max(1e-3),
                "{term}: adjoint {an}, finite differences {fd}"
            );
        }
    }
}

#[test]
fn steer_draws_end_times_in_range_deterministically() {
    let segs = vec![
        Segment {
            t: vec![0.0, 0.1, 0.2, 0.3],
            u0: vec![1.0],
        },
        Segment {
            t: vec![1.0, 1.5],
            u0: vec![1.0],
        },
        Segment {
            t: vec![2.0],
            u0: vec![1.0],
        },
    ];
    let b = 0.05;
    let draw = |seed: u64, i: u64| {
        let mut s = segs.clone();
        let mut rng = data::batch::rng(seed, STEER_STREAM + i);
        glassbox::train::steer(&mut s, b, &mut rng);
        s
    };
    let mut ends = Vec::new();
    for i in 0..200 {
        let s = draw(7, i);
        for (new, old) in s.iter().zip(&segs) {
            let n = old.t.len();
            assert_eq!(new.t[..n - 1], old.t[..n - 1], "only the end time moves");
            let (t_new, t_old) = (new.t[n - 1], old.t[n - 1]);
            if n == 1 {
                assert_eq!(t_new, t_old, "a single observation has no span to steer");
            } else {
                assert!((t_new - t_old).abs() <= b, "{t_new} outside {t_old} ± {b}");
                ends.push(t_new - t_old);
            }
        }
        assert_eq!(
            draw(7, i)[0].t,
            s[0].t,
            "same seed and iteration, same draw"
        );
    }
    assert_ne!(
        draw(7, 0)[0].t,
        draw(8, 0)[0].t,
        "another seed draws elsewhere"
    );
    assert_ne!(
        draw(7, 0)[0].t,
        draw(7, 1)[0].t,
        "each iteration draws anew"
    );
    // Both sides of T are used (uniform on [T − b, T + b]: mean near 0, spread near b/√3).
    let mean = ends.iter().sum::<f64>() / ends.len() as f64;
    assert!(mean.abs() < 0.01 && ends.iter().any(|d| *d > 0.04) && ends.iter().any(|d| *d < -0.04));
}

#[test]
fn steer_trains_deterministically_and_checks_its_width() {
    let run = |seed: u64| {
        trained("steer", "mse(y, obs) + steer(0.01)", seed, 2)
            .state()
            .theta
            .clone()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    // The spiral data are 0.025 apart: b = 0.03 could pass the observation before the end.
    let e = trainer(
        "steerwide",
        "mse(y, obs) + steer(0.03)",
        "adam(lr = 1e-2), iterations = 1",
    )
    .err();
    assert_eq!(e.as_deref(), Some("glassbox::train_steer_span"));
}

#[test]
fn nfe_and_high_taylor_orders_are_diagnostics() {
    let e = trainer(
        "nfe",
        "mse(y, obs) + 0.1 * nfe",
        "adam(lr = 1e-2), iterations = 1",
    )
    .err();
    assert_eq!(e.as_deref(), Some("glassbox::train_not_differentiable"));
    let e = trainer(
        "tay",
        "mse(y, obs) + 0.1 * taylor(9)",
        "adam(lr = 1e-2), iterations = 1",
    )
    .err();
    assert_eq!(e.as_deref(), Some("glassbox::train_unsupported"));
}

/// A 4-state linear field `y' = A y`: Hutchinson's integrand is the constant `‖A ε‖²`, so its
/// integral over `[0, T]` is `T ‖A ε‖²` for every probe, and over Rademacher probes its mean is
/// `T ‖A‖_F²` with variance `σ² = T² · 2 Σ_{i≠j} M_ij²`, `M = AᵀA` (the diagonal of `εεᵀ` is
/// always 1, the off-diagonal entries are independent ±1). The mean of N = 4000 draws is then
/// within `4σ/√N` of `T ‖A‖_F²` except with probability below 1e-4 (Chebyshev would give
/// 1/16; the sum of bounded independent terms is close to normal); the draws are seeded, so
/// the test is deterministic.
#[test]
fn hutchinson_estimate_is_unbiased_on_a_linear_field() {
    let a = [
        [-0.5, 1.0, 0.2, 0.0],
        [-2.0, 0.25, 0.0, 0.7],
        [0.3, -0.1, -1.0, 0.4],
        [0.0, 0.6, -0.8, -0.2],
    ];
    let flat: Vec<String> = a
        .iter()
        .map(|r| r.iter().map(f64::to_string).collect::<Vec<_>>().join(", "))
        .collect();
    let src = format!(
        "model lin4\nstate y[4] = [1.0, -0.5, 0.3, 0.8]\nparam A[4, 4] = [{}] learn\ndy/dt = A @ y\n",
        flat.join("; ")
    );
    let (_, model) = check("lin4.gbx", src);
    let p = solve::param_values(&model);
    let tab = tableau("dopri5").unwrap();
    let mut f = JitVjpField::new(&model, &p, &[]).unwrap();
    let t1 = 2.0;
    let sol = solve::solve(tab, &mut f, 0.0, t1, &[1.0, -0.5, 0.3, 0.8], &tight()).unwrap();
    let mut r = integrand(&model, Which::JacobianFrobeniusHutchinson);
    assert!(r.has_probe());
    let n = 4;
    let mut m = [[0.0; 4]; 4];
    for i in 0..n {
        for j in 0..n {
            m[i][j] = (0..n).map(|k| a[k][i] * a[k][j]).sum();
        }
    }
    let exact = t1 * a.iter().flatten().map(|x| x * x).sum::<f64>();
    let off: f64 = (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .map(|(i, j)| m[i][j] * m[i][j])
        .sum();
    let sigma = t1 * (2.0 * off).sqrt();
    let draws = 4000;
    let mut rng = data::batch::rng(3, 0);
    let mut sum = 0.0;
    for _ in 0..draws {
        let eps = grad::rademacher(&mut rng, n);
        assert!(eps.iter().all(|e| e.abs() == 1.0));
        r.set_probe(&eps);
        let got = grad::integral(tab, &mut r, &sol).unwrap();
        // Each draw: T ‖A ε‖² exactly (the quadrature of a constant).
        let ae: f64 = (0..n)
            .map(|i| (0..n).map(|j| a[i][j] * eps[j]).sum::<f64>().powi(2))
            .sum();
        assert!(rel(got, t1 * ae) < 1e-12, "{got} vs {}", t1 * ae);
        sum += got;
    }
    let mean = sum / draws as f64;
    let tol = 4.0 * sigma / (draws as f64).sqrt();
    assert!(
        (mean - exact).abs() <= tol,
        "mean {mean} vs exact {exact} (4σ/√N = {tol})"
    );
    // The exact integrand agrees with the estimate's expectation.
    let mut ex = integrand(&model, Which::JacobianFrobenius);
    assert!(rel(grad::integral(tab, &mut ex, &sol).unwrap(), exact) < 1e-12);
}

/// With the probe fixed, the estimate's gradient (JVP inside the VJP) matches central
/// differences of the quadrature on a fixed grid, for a nonlinear field.
#[test]
fn hutchinson_gradient_with_a_fixed_probe_matches_finite_differences() {
    let src = "model nl\nstate y[3] = [0.5, -0.2, 0.8]\nparam k[3] = [0.7, -0.3, 1.1] learn\ndy/dt = [sin(k[0] * y[1]) - y[0]^2, k[1] * y[0] * y[2], tanh(k[2] * y[0] + y[1])]\n";
    let (_, model) = check("nl.gbx", src.into());
    let p0 = solve::param_values(&model);
    let tab = tableau("rk4").unwrap();
    let opts = SolveOptions {
        dt: Some(0.05),
        keep_stages: true,
        ..Default::default()
    };
    let u0 = [0.5, -0.2, 0.8];
    let eps = [1.0, -1.0, -1.0];
    let value = |p: &[f64], u0: &[f64]| {
        let mut f = JitVjpField::new(&model, p, &[]).unwrap();
        let sol = solve::solve(tab, &mut f, 0.0, 1.0, u0, &opts).unwrap();
        let mut r = integrand(&model, Which::JacobianFrobeniusHutchinson);
        r.set_params(p);
        r.set_probe(&eps);
        grad::integral(tab, &mut r, &sol).unwrap()
    };
    let mut f = JitVjpField::new(&model, &p0, &[]).unwrap();
    let sol = solve::solve(tab, &mut f, 0.0, 1.0, &u0, &opts).unwrap();
    let mut r = integrand(&model, Which::JacobianFrobeniusHutchinson);
    r.set_probe(&eps);
    let dl_du = vec![0.0; sol.us.len()];
    let g = grad::adjoint_with(
        tab,
        &mut f,
        &sol,
        &dl_du,
        &AdjointOptions::new(1e-6, 1e-9),
        Some(&mut r),
    )
    .unwrap();
    let h = 1e-6;
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for i in 0..p0.len() {
        let (mut a, mut b) = (p0.clone(), p0.clone());
        a[i] += h;
        b[i] -= h;
        want.push((value(&a, &u0) - value(&b, &u0)) / (2.0 * h));
        got.push(g.dp[i]);
    }
    for i in 0..u0.len() {
        let (mut a, mut b) = (u0, u0);
        a[i] += h;
        b[i] -= h;
        want.push((value(&p0, &a) - value(&p0, &b)) / (2.0 * h));
        got.push(g.du0[i]);
    }
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1e-2),
            "adjoint {got:?}\ndifferences {want:?}"
        );
    }
    assert!(want.iter().all(|w| w.abs() > 1e-4), "{want:?}");
    // Another probe is another estimate.
    r.set_probe(&[1.0, 1.0, -1.0]);
    assert_ne!(grad::integral(tab, &mut r, &sol).unwrap(), value(&p0, &u0));
}

/// The probes come from the run's seed: a rerun gives bit-identical weights, another seed
/// other ones, and successive iterations draw new probes.
#[test]
fn hutchinson_probes_follow_the_seed() {
    let objective = "mse(y, obs) + 0.5 * jacobian_frobenius(estimator = hutchinson)";
    let run = |seed: u64| trained("hutch", objective, seed, 3);
    let a = run(1);
    assert_eq!(a.state().theta, run(1).state().theta);
    assert_ne!(a.state().theta, run(2).state().theta);
    assert!(a.state().metrics.iter().all(|m| m.reg > 0.0));
    let seeds: Vec<u64> = (0..4).map(|i| a.weights(i).probe_seed).collect();
    assert!(seeds.windows(2).all(|w| w[0] != w[1]), "{seeds:?}");
    // The default for two states is the exact Jacobian.
    let (t, _) = trainer(
        "hutchdefault",
        "mse(y, obs) + 0.5 * jacobian_frobenius",
        "adam(lr = 1e-2), iterations = 1",
    )
    .unwrap();
    assert!(matches!(
        t.plan.integrals[0].kind,
        glassbox::train::IntegralKind::JacobianFrobenius {
            estimator: glassbox::sema::Estimator::Exact
        }
    ));
}
