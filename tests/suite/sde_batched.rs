//! Batched SDE paths (`solve::sde::solve_sde_batched`): every method of the registry, the
//! paths advanced together, equals the per-path solve — bit for bit on a field evaluated path
//! by path (`PathByPath`: the same arithmetic), to rounding on the compiled batched kernels
//! (`JitBatchSde`, whose dense layers are GEMMs) — and the threaded chunks are bit-identical
//! at any thread count.

use glassbox::solve::sde::{
    self, JitBatchSde, JitSde, NoiseMap, PathByPath, SdeBatchField, SdeField, SdeMethod,
    SdeOptions, SdeSolution, sde_from_fn, sde_method,
};
use glassbox::solve::threads::Pool;
use glassbox::solve::{Solution, SolveError, registry};

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every SDE method of the registry, with the options it runs under: a `dt` for the
/// fixed-step ones, tolerances loose enough that the adaptive ones reject steps too.
fn methods() -> Vec<(SdeMethod, SdeOptions)> {
    let names = registry::names(registry::Method::is_sde);
    assert!(names.len() >= 7, "{names:?}");
    names
        .iter()
        .map(|name| {
            let method = sde_method(name).expect("an SDE method");
            let opts = SdeOptions {
                rtol: 1e-2,
                atol: 1e-2,
                dt: (!method.is_adaptive()).then_some(0.02),
                ..SdeOptions::default()
            };
            (method, opts)
        })
        .collect()
}

/// A nonlinear drift that reads `t` (so the stiffness estimate spends a drift evaluation)
/// and a state-dependent diagonal diffusion (additive for the SRA methods), with its JVP
/// by finite differences (Milstein).
fn field(additive: bool) -> impl SdeField {
    sde_from_fn(
        NoiseMap::diagonal(2),
        |t, u: &[f64], du: &mut [f64]| {
            du[0] = -u[1] + 0.5 * (u[0] * u[1]).sin() + t;
            du[1] = u[0] - 0.3 * u[1].powi(3);
        },
        move |_t, u: &[f64], g: &mut [f64]| {
            for i in 0..2 {
                g[i] = if additive { 0.4 } else { 0.4 * u[i].cos() };
            }
        },
    )
}

fn same_paths(a: &SdeSolution, b: &SdeSolution, what: &str) {
    assert_eq!(a.paths.len(), b.paths.len(), "{what}");
    assert_eq!(a.stats, b.stats, "{what}");
    for (k, (x, y)) in a.paths.iter().zip(&b.paths).enumerate() {
        same_path(x, y, &format!("{what}, path {k}"));
    }
}

fn same_path(x: &Solution, y: &Solution, what: &str) {
    assert_eq!(x.stats, y.stats, "{what}");
    assert_eq!(bits(&x.ts), bits(&y.ts), "{what}");
    assert_eq!(bits(&x.us), bits(&y.us), "{what}");
    assert_eq!(x.steps.len(), y.steps.len(), "{what}");
    for (s, r) in x.steps.iter().zip(&y.steps) {
        assert_eq!(s.t.to_bits(), r.t.to_bits(), "{what}");
        assert_eq!(s.h.to_bits(), r.h.to_bits(), "{what}");
        assert_eq!(s.nfe, r.nfe, "{what}");
        assert_eq!(
            s.error_estimate.map(f64::to_bits),
            r.error_estimate.map(f64::to_bits)
        );
        let (a, b) = (s.stiffness_estimate, r.stiffness_estimate);
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{what}");
    }
}

/// The batched driver on a field evaluated path by path is the per-path solve bit for bit,
/// for every method, saving on a grid and at every step, the stiffness estimate on and off.
#[test]
fn batched_paths_are_the_per_path_solves_bit_for_bit() {
    let u0 = [1.0, -0.5];
    for (method, base) in methods() {
        let additive = matches!(method, SdeMethod::Sra(_));
        for (save_at, stiffness) in [
            ((0..=10).map(|k| k as f64 / 10.0).collect::<Vec<_>>(), true),
            (Vec::new(), false),
        ] {
            let opts = SdeOptions {
                save_at,
                stiffness,
                ..base.clone()
            };
            let what = format!("{}, stiffness {stiffness}", method.name());
            let mut f = field(additive);
            let want = sde::solve_sde(method, &mut f, 0.0, 1.0, &u0, &opts, 3, 9).expect("solves");
            if method.is_adaptive() {
                assert!(want.stats.rejected > 0, "{what}: no rejection tested");
            }
            let mut batched = PathByPath(field(additive));
            let got = sde::solve_sde_batched(method, &mut batched, 0.0, 1.0, &u0, &opts, 3, 0..9)
                .expect("solves");
            same_paths(&want, &got, &what);
            let b = got.batch.expect("batched stats");
            assert!(b.calls > 0 && b.row_evals > b.calls, "{what}: {b:?}");
            // A range of paths is those paths of the whole solve.
            let tail = sde::solve_sde_batched(method, &mut batched, 0.0, 1.0, &u0, &opts, 3, 5..9)
                .expect("solves");
            for (k, p) in tail.paths.iter().enumerate() {
                same_path(&want.paths[5 + k], p, &format!("{what}, path {}", 5 + k));
            }
        }
    }
}

/// A path that fails fails the batched solve with the error the per-path solve gives (the
/// first failing path in order), while the others run on.
#[test]
fn a_failing_path_is_the_per_path_error() {
    // Blows up for paths whose noise pushes u past 1 (u' = u², from 0.9).
    let make = || {
        sde_from_fn(
            NoiseMap::diagonal(1),
            |_t, u: &[f64], du: &mut [f64]| du[0] = 5.0 * u[0] * u[0],
            |_t, _u: &[f64], g: &mut [f64]| g[0] = 1.0,
        )
    };
    let method = sde_method("euler_maruyama").expect("known");
    let opts = SdeOptions {
        dt: Some(0.01),
        ..SdeOptions::default()
    };
    let want = sde::solve_sde(method, &mut make(), 0.0, 1.0, &[0.9], &opts, 1, 8);
    let got = sde::solve_sde_batched(
        method,
        &mut PathByPath(make()),
        0.0,
        1.0,
        &[0.9],
        &opts,
        1,
        0..8,
    );
    let (Err(a), Err(b)) = (&want, &got) else {
        panic!("both fail: {:?} / {:?}", want.is_ok(), got.is_ok());
    };
    assert!(matches!(a, SolveError::NonFinite { .. }), "{a:?}");
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

/// A model whose drift has a 64×64 layer (a GEMM over the paths), with a linear diffusion
/// net, or additive noise (for the SRA methods).
fn wide_model(additive: bool) -> glassbox::sema::Model {
    let noise = if additive {
        "param s[2] = [0.3, 0.2]\ndu = drift(u^3) dt + s * dW\n"
    } else {
        "net noise = linear(2, 2)\ndu = drift(u^3) dt + noise(u) * dW\n"
    };
    let src = format!(
        "model wide\nstate u[2] = [2.0, 0.0]\nnet drift = mlp(2, 64, 64, 2; act = tanh)\n{noise}"
    );
    let file = glassbox::source::SourceFile::new("wide.gbx", &src);
    let checked = glassbox::check_source(&file, &glassbox::source::DiskLoader);
    assert!(checked.diags.is_empty(), "{:?}", checked.diags);
    checked.model.expect("checked model")
}

/// On the compiled batched kernels (GEMMs) every method gives the per-path solve on
/// `JitSde` to rounding where the steps are fixed: the same steps, the states within 1e-11
/// relative (the kernels differ in the last bits, GEMM order: 1e-12 relative,
/// `tests/jit/batch.rs`; the cubic drift over 50 steps amplifies that a little).
///
/// Adaptive steps are not equal to rounding, and cannot be: a step's end follows its error
/// estimate, so a last-bit difference of the drift moves the end by rounding, and the
/// Brownian path there differs by `√δt` (≈ 1e-8 for δt ≈ 1e-16), which the next estimates
/// feed back into the steps. Each path is still the same algorithm on the same Brownian path
/// (bit for bit where the evaluations are: the test above); here the paths agree within the
/// solver's tolerance (ten times it for one path), and their means over the paths within it.
/// (Where the save times, not the controller, end the steps, the adaptive paths agree to
/// rounding too: `sosri` at rtol 1e-2 on 101 save times, seen through the CLI.)
#[test]
fn compiled_batched_paths_equal_the_per_path_solves_to_rounding() {
    let paths = 24;
    for (method, base) in methods() {
        let m = wide_model(matches!(method, SdeMethod::Sra(_)));
        let p = glassbox::solve::param_values(&m);
        let u0 = glassbox::solve::initial_state(&m, &p, &[], 0.0).expect("u0");
        let opts = SdeOptions {
            save_at: (0..=20).map(|k| k as f64 / 20.0).collect(),
            ..base
        };
        let tol = opts.rtol;
        let mut per_path = JitSde::with_params(&m, &p, &[]).expect("compiles");
        let want =
            sde::solve_sde(method, &mut per_path, 0.0, 1.0, &u0, &opts, 11, paths).expect("solves");
        let mut batched = JitBatchSde::new(&m, &p, method).expect("compiles");
        assert!(batched.uses_gemm());
        let got = sde::solve_sde_batched(method, &mut batched, 0.0, 1.0, &u0, &opts, 11, 0..paths)
            .expect("solves");
        let name = method.name();
        let (mut worst, mut mean_diff) = (0.0f64, vec![0.0; want.paths[0].us.len()]);
        for (k, (x, y)) in want.paths.iter().zip(&got.paths).enumerate() {
            assert_eq!(bits(&x.ts), bits(&y.ts), "{name}, path {k}");
            for (i, (a, b)) in x.us.iter().zip(&y.us).enumerate() {
                worst = worst.max((a - b).abs() / (1.0 + a.abs()));
                mean_diff[i] += (a - b) / paths as f64;
            }
            if !method.is_adaptive() {
                assert_eq!(x.stats, y.stats, "{name}, path {k}");
            }
        }
        let mean_worst = mean_diff.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        if method.is_adaptive() {
            assert!(worst <= 10.0 * tol, "{name}: {worst:e}");
            assert!(mean_worst <= tol, "{name}: {mean_worst:e}");
        } else {
            assert_eq!(want.stats, got.stats, "{name}");
            assert!(worst <= 1e-11, "{name}: {worst:e}");
        }
    }
}

/// The chunks of paths on 1, 2 or 3 threads: the same paths, bit for bit.
#[test]
fn batched_paths_are_bit_identical_at_any_thread_count() {
    let m = wide_model(false);
    let p = glassbox::solve::param_values(&m);
    let u0 = glassbox::solve::initial_state(&m, &p, &[], 0.0).expect("u0");
    let method = sde_method("sosri").expect("known");
    let opts = SdeOptions {
        rtol: 1e-2,
        atol: 1e-2,
        save_at: vec![0.25, 0.5, 1.0],
        ..SdeOptions::default()
    };
    let paths = 2 * sde::CHUNK_PATHS + 5;
    let solve = |threads: usize| {
        let mut pool = Pool::new(threads, || JitBatchSde::new(&m, &p, method)).expect("compiles");
        sde::solve_sde_batched_on(method, &mut pool, 0.0, 1.0, &u0, &opts, 2, paths)
            .expect("solves")
    };
    let one = solve(1);
    assert_eq!(one.paths.len(), paths);
    // A path does not depend on the others in its batch either: path k of 10 is path k of
    // 133 (its GEMM row is summed alike whatever the batch's size).
    let mut f = JitBatchSde::new(&m, &p, method).expect("compiles");
    let few =
        sde::solve_sde_batched(method, &mut f, 0.0, 1.0, &u0, &opts, 2, 0..10).expect("solves");
    for (k, path) in few.paths.iter().enumerate() {
        same_path(&one.paths[k], path, &format!("path {k} of 10"));
    }
    for threads in [2, 3] {
        same_paths(&one, &solve(threads), &format!("{threads} threads"));
    }
}
