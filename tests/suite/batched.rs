//! Batched solves (`src/solve/batched.rs`): per-row control gives each row's own solve — bit
//! for bit on a field without GEMMs, to rounding on the digits-shaped field with them — with
//! rejections, different step counts, inputs, initial states and spans; joint control is the
//! single-row solve of the stacked state; edge cases fail by row, never by panic.

use glassbox::sema::Model;
use glassbox::solve::{
    self, BatchControl, BatchField, BatchRow, JitBatchField, JitField, Solution, SolveError,
    SolveOptions, StepControl, batch_from_fn, from_fn, solve_batch, tableau,
};
use glassbox::source::{DiskLoader, SourceFile};

fn model(src: &str) -> Model {
    let file = SourceFile::new("batched.gbx".to_string(), src.to_string());
    let checked = glassbox::check_source(&file, &DiskLoader);
    checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags))
}

/// Layers of 6·6 and 6·3 multiply-adds, far below `jit::DEFAULT_GEMM_MIN`: the batched kernel
/// is the per-sample code in a loop. The field reads the row's inputs.
const SMALL: &str = "
model small
input x[2]
net f = mlp(6, 6, 3; act = tanh)
state h[3] = [0.1, 0.2, 0.3]
dh/dt = f(concat(h, x, t))
";

/// The digits classifier's field: 33→64→32, tanh, on `concat(h, t)` — two GEMMs per call.
const DIGITS: &str = "
model digits_field
net f = mlp(33, 64, 32; act = tanh)
state h[32] = 0.0
dh/dt = f(concat(h, t))
";

/// A deterministic spread of values in [-scale, scale].
fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// The model's initial weights scaled up, so the field is far from linear and rows differ.
fn params(m: &Model, scale: f64) -> Vec<f64> {
    solve::param_values(m).iter().map(|p| p * scale).collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Everything a solve returns, compared exactly: saved times and states, every step's record
/// (time, size, `E_j`, `S_j`, evaluations, kept stages) and the statistics.
fn assert_same(batched: &Solution, alone: &Solution, what: &str) {
    assert_eq!(bits(&batched.ts), bits(&alone.ts), "ts: {what}");
    assert_eq!(bits(&batched.us), bits(&alone.us), "us: {what}");
    assert_eq!(batched.stats, alone.stats, "stats: {what}");
    assert_eq!(batched.steps.len(), alone.steps.len(), "steps: {what}");
    for (j, (a, b)) in batched.steps.iter().zip(&alone.steps).enumerate() {
        let key = |s: &solve::StepRecord| {
            (
                s.t.to_bits(),
                s.h.to_bits(),
                s.error_estimate.map(f64::to_bits),
                s.stiffness_estimate.map(f64::to_bits),
                s.nfe,
            )
        };
        assert_eq!(key(a), key(b), "step {j}: {what}");
        let stages =
            |s: &solve::StepRecord| s.stages.as_ref().map(|st| (bits(&st.u0), bits(&st.k)));
        assert_eq!(stages(a), stages(b), "stages of step {j}: {what}");
    }
}

struct Problem {
    spans: Vec<(f64, f64)>,
    u0: Vec<Vec<f64>>,
    x: Vec<Vec<f64>>,
}

impl Problem {
    fn rows(&self) -> Vec<BatchRow<'_>> {
        self.spans
            .iter()
            .zip(&self.u0)
            .map(|(&(t0, t1), u0)| BatchRow::new(t0, t1, u0))
            .collect()
    }
}

/// Eight rows of `SMALL`: different inputs, initial states of different sizes (so different
/// step counts), spans forward, backward, shorter, and one empty.
fn small_problem() -> Problem {
    let rows = 8;
    Problem {
        spans: (0..rows)
            .map(|r| match r {
                3 => (0.0, -1.5),
                5 => (0.2, 0.7),
                6 => (0.4, 0.4),
                _ => (0.0, 2.0),
            })
            .collect(),
        u0: (0..rows)
            .map(|r| values(3, r as u64 + 1, 0.2 + r as f64))
            .collect(),
        x: (0..rows).map(|r| values(2, 100 + r as u64, 3.0)).collect(),
    }
}

fn per_row_reference(
    m: &Model,
    p: &[f64],
    prob: &Problem,
    tab: &'static solve::Tableau,
    opts: &SolveOptions,
) -> Vec<Solution> {
    prob.rows()
        .iter()
        .zip(&prob.x)
        .map(|(row, x)| {
            let mut f = JitField::with_params(m, p, x).unwrap();
            solve::solve(tab, &mut f, row.t0, row.t1, row.u0, opts).unwrap()
        })
        .collect()
}

fn small_field(m: &Model, p: &[f64], prob: &Problem) -> JitBatchField {
    let mut f = JitBatchField::new(m, p).unwrap();
    assert!(!f.uses_gemm(), "SMALL should stay below the GEMM threshold");
    f.set_inputs(&prob.x.concat()).unwrap();
    f
}

/// Per-row control equals each row solved alone, bit for bit, without GEMMs: Tsit5 (FSAL) with
/// rejections from a large first step and kept stages, with save times; Heun–Euler (no FSAL:
/// the extra `f(t_{n+1})` call) with dense output; Dopri5 under a PID controller with `max_dt`;
/// RK4 on a fixed grid.
#[test]
fn per_row_batched_equals_per_row_solves_bit_for_bit() {
    let m = model(SMALL);
    let p = params(&m, 2.5);
    let prob = small_problem();
    let cases: Vec<(&str, SolveOptions)> = vec![
        (
            "tsit5",
            SolveOptions {
                rtol: 1e-7,
                atol: 1e-9,
                h0: Some(0.8),
                keep_stages: true,
                ..SolveOptions::default()
            },
        ),
        (
            "tsit5",
            SolveOptions {
                rtol: 1e-5,
                atol: 1e-7,
                save_at: vec![0.4, 0.4, 0.5],
                ..SolveOptions::default()
            },
        ),
        (
            "heun_euler",
            SolveOptions {
                rtol: 1e-4,
                atol: 1e-6,
                dense: true,
                ..SolveOptions::default()
            },
        ),
        // The controller's options reach both drivers through the one `Controller`: a PID
        // setting, a tight growth cap and `max_dt`.
        (
            "dopri5",
            SolveOptions {
                rtol: 1e-6,
                atol: 1e-8,
                control: StepControl {
                    pcoeff: 0.2,
                    icoeff: 0.4,
                    dcoeff: 0.1,
                    safety: 0.8,
                    max_factor: 3.0,
                    max_dt: Some(0.05),
                    ..StepControl::default()
                },
                ..SolveOptions::default()
            },
        ),
        (
            "rk4",
            SolveOptions {
                dt: Some(0.1),
                ..SolveOptions::default()
            },
        ),
    ];
    for (name, opts) in cases {
        let tab = tableau(name).unwrap();
        // Save times must lie in every row's span: the case with them solves rows 5 and 6's.
        let prob = if opts.save_at.is_empty() {
            small_problem()
        } else {
            Problem {
                spans: vec![(0.2, 0.7); 3]
                    .into_iter()
                    .chain([(0.4, 0.9)])
                    .collect(),
                u0: prob.u0[..4].to_vec(),
                x: prob.x[..4].to_vec(),
            }
        };
        let alone = per_row_reference(&m, &p, &prob, tab, &opts);
        let mut f = small_field(&m, &p, &prob);
        let got = solve_batch(tab, &mut f, &prob.rows(), &opts, BatchControl::PerRow).unwrap();
        for (r, (b, a)) in got.rows.iter().zip(&alone).enumerate() {
            assert_same(b, a, &format!("{name}, row {r}"));
            if let Some(d) = &b.dense {
                let (t0, t1) = prob.spans[r];
                let mid = 0.5 * (t0 + t1);
                assert_eq!(
                    d.eval(mid),
                    a.dense.as_ref().unwrap().eval(mid),
                    "dense, row {r}"
                );
            }
        }
        if opts.h0.is_some() {
            assert!(alone.iter().any(|s| s.stats.rejected > 0), "no rejections");
            let steps: Vec<u64> = alone.iter().map(|s| s.stats.accepted).collect();
            assert!(steps.iter().any(|&s| s != steps[0]), "{steps:?}");
            // Rows leave as they finish: fewer row evaluations than calls × rows.
            assert!(got.stats.row_evals < got.stats.calls * prob.spans.len() as u64);
        }
    }
}

/// Rows with their own save times (`BatchRow::save_at`, what a trajectory window is: its own
/// span and observation times) equal each row solved alone with those times as the options'
/// `save_at`, bit for bit without GEMMs: windows forward and backward in time, of different
/// lengths, one with a repeated time, one without its own times (the options' apply), one
/// with an empty list (a save after every step, although the options have times). Tsit5
/// (FSAL) with kept stages and rejections, Heun–Euler (no FSAL: the extra `f(t_{n+1})` the
/// interpolant of the last step needs only when the row saves) with dense output.
#[test]
fn rows_with_their_own_save_times_equal_their_solves_bit_for_bit() {
    let m = model(SMALL);
    let p = params(&m, 2.5);
    let own: Vec<Option<Vec<f64>>> = vec![
        Some(vec![0.0, 0.25, 0.5, 0.75, 1.0]),
        Some(vec![0.3, 0.31, 0.9, 1.7]),
        Some(vec![1.0, 0.5, 0.5, -0.5]),
        None,
        Some(vec![0.6, 2.0]),
        Some(Vec::new()),
        Some(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
    ];
    let spans: Vec<(f64, f64)> = (own.iter().enumerate())
        .map(|(r, t)| match t.as_deref() {
            Some([a, .., b]) => (*a, *b),
            _ if r == 3 => (0.2, 0.7),
            _ => (0.0, 1.3),
        })
        .collect();
    let prob = Problem {
        u0: (0..own.len())
            .map(|r| values(3, r as u64 + 3, 0.3 + r as f64))
            .collect(),
        x: (0..own.len())
            .map(|r| values(2, 50 + r as u64, 3.0))
            .collect(),
        spans,
    };
    let mut rows = prob.rows();
    for (row, t) in rows.iter_mut().zip(&own) {
        row.save_at = t.as_deref();
    }
    let cases = [
        (
            "tsit5",
            SolveOptions {
                rtol: 1e-7,
                atol: 1e-9,
                h0: Some(0.8),
                keep_stages: true,
                save_at: vec![0.4, 0.5],
                ..SolveOptions::default()
            },
        ),
        (
            "heun_euler",
            SolveOptions {
                rtol: 1e-4,
                atol: 1e-6,
                dense: true,
                save_at: vec![0.2, 0.7],
                ..SolveOptions::default()
            },
        ),
    ];
    for (name, opts) in cases {
        let tab = tableau(name).unwrap();
        let mut f = small_field(&m, &p, &prob);
        let got = solve_batch(tab, &mut f, &rows, &opts, BatchControl::PerRow).unwrap();
        for (r, (row, x)) in rows.iter().zip(&prob.x).enumerate() {
            let alone_opts = SolveOptions {
                save_at: row.save_at.unwrap_or(&opts.save_at).to_vec(),
                ..opts.clone()
            };
            let mut fr = JitField::with_params(&m, &p, x).unwrap();
            let alone = solve::solve(tab, &mut fr, row.t0, row.t1, row.u0, &alone_opts).unwrap();
            assert_same(&got.rows[r], &alone, &format!("{name}, row {r}"));
            let expected = match own[r].as_deref() {
                Some([]) => alone.stats.accepted as usize + 1,
                Some(t) => t.len(),
                None => opts.save_at.len(),
            };
            assert_eq!(got.rows[r].ts.len(), expected, "{name}, row {r}: saves");
        }
        if opts.h0.is_some() {
            assert!(
                got.rows.iter().any(|s| s.stats.rejected > 0),
                "no rejections"
            );
        }
    }
    // A row's own save time outside its span is that row's error, by row.
    let bad = [0.0, 2.0];
    rows[4].save_at = Some(&bad);
    let mut f = small_field(&m, &p, &prob);
    let opts = SolveOptions::default();
    let err = solve_batch(&tableau::TSIT5, &mut f, &rows, &opts, BatchControl::PerRow).unwrap_err();
    match err {
        SolveError::Row { row, error } => {
            assert_eq!(row, 4);
            assert_eq!(error.code(), "glassbox::invalid_solve_option");
        }
        e => panic!("{e:?}"),
    }
}

/// The same with GEMMs (the digits-shaped field): windows of their own spans and times match
/// their solves alone to rounding, as in the test below.
#[test]
fn rows_with_their_own_save_times_match_their_solves_with_gemms() {
    let m = model(DIGITS);
    let p = params(&m, 3.0);
    let rows = 10;
    let times: Vec<Vec<f64>> = (0..rows)
        .map(|r| (0..5).map(|i| 0.1 * r as f64 + 0.2 * i as f64).collect())
        .collect();
    let u0: Vec<Vec<f64>> = (0..rows)
        .map(|r| values(32, r as u64 + 11, 0.5 + 0.3 * r as f64))
        .collect();
    let batch: Vec<BatchRow> = (times.iter().zip(&u0))
        .map(|(t, u0)| BatchRow {
            save_at: Some(t),
            ..BatchRow::new(t[0], t[4], u0)
        })
        .collect();
    let opts = SolveOptions {
        rtol: 1e-6,
        atol: 1e-6,
        keep_stages: true,
        ..SolveOptions::default()
    };
    let mut f = JitBatchField::new(&m, &p).unwrap();
    assert!(f.uses_gemm(), "33→64→32 should be GEMMs");
    let got = solve_batch(&tableau::TSIT5, &mut f, &batch, &opts, BatchControl::PerRow).unwrap();
    for (r, row) in batch.iter().enumerate() {
        let alone_opts = SolveOptions {
            save_at: times[r].clone(),
            ..opts.clone()
        };
        let mut fr = JitField::with_params(&m, &p, &[]).unwrap();
        let a = solve::solve(
            &tableau::TSIT5,
            &mut fr,
            row.t0,
            row.t1,
            row.u0,
            &alone_opts,
        )
        .unwrap();
        let b = &got.rows[r];
        assert_eq!(b.stats, a.stats, "row {r}");
        assert_eq!(bits(&b.ts), bits(&a.ts), "row {r}: ts");
        let scale = a.us.iter().fold(1.0f64, |s, x| s.max(x.abs()));
        let diff = (b.us.iter().zip(&a.us)).fold(0.0f64, |d, (x, y)| d.max((x - y).abs()));
        assert!(diff <= 1e-11 * scale, "row {r}: {diff:e} of {scale}");
    }
}

/// On the digits-shaped field every call is two GEMMs, which sum in another order than the
/// per-sample mat-vecs: evaluations differ by a few ulps (`tests/jit/batch.rs` bounds them at
/// 1e-12 relative). Through ~20 steps those differences move the final states by what the
/// solve's own rounding does, measured at most 3e-15 of the states' scale here; the test
/// allows 1e-11 of it, far above that and far below any change of the steps themselves (one
/// accepted or rejected step more or less moves the state by about the tolerance, 1e-6).
/// `E_j` is a difference of nearly equal sums (`ũ ≈ 1e-6` against states of 1–10), so its
/// rounding is relatively larger, and so is that of the `h` it chooses: steps to 1e-8 relative.
/// The accepted and rejected step counts must be equal.
#[test]
fn per_row_batched_equals_per_row_solves_to_rounding_with_gemms() {
    let m = model(DIGITS);
    let p = params(&m, 3.0);
    let rows = 12;
    let prob = Problem {
        spans: vec![(0.0, 1.0); rows],
        u0: (0..rows)
            .map(|r| values(32, r as u64 + 7, 0.5 + 0.4 * r as f64))
            .collect(),
        x: vec![Vec::new(); rows],
    };
    let opts = SolveOptions {
        rtol: 1e-6,
        atol: 1e-6,
        h0: Some(0.5),
        save_at: vec![1.0],
        ..SolveOptions::default()
    };
    let alone = per_row_reference(&m, &p, &prob, &tableau::TSIT5, &opts);
    let mut f = JitBatchField::new(&m, &p).unwrap();
    assert!(f.uses_gemm(), "33→64→32 should be GEMMs");
    let got = solve_batch(
        &tableau::TSIT5,
        &mut f,
        &prob.rows(),
        &opts,
        BatchControl::PerRow,
    )
    .unwrap();
    assert!(alone.iter().any(|s| s.stats.rejected > 0), "no rejections");
    let counts: Vec<u64> = alone.iter().map(|s| s.stats.accepted).collect();
    assert!(counts.iter().any(|&c| c != counts[0]), "{counts:?}");
    for (r, (b, a)) in got.rows.iter().zip(&alone).enumerate() {
        assert_eq!(b.stats, a.stats, "row {r}");
        for (sb, sa) in b.steps.iter().zip(&a.steps) {
            assert!((sb.h - sa.h).abs() <= 1e-8 * sa.h.abs(), "row {r}: h");
        }
        let (ub, ua) = (b.last().unwrap(), a.last().unwrap());
        let scale = ua.iter().fold(1.0f64, |s, x| s.max(x.abs()));
        let diff = ub
            .iter()
            .zip(ua)
            .fold(0.0f64, |d, (x, y)| d.max((x - y).abs()));
        assert!(diff <= 1e-11 * scale, "row {r}: {diff:e} of {scale}");
    }
}

/// Joint control is the single-row driver on the stacked state (one `t`, the RMS error norm
/// over all `rows·n` components): against a hand-built stacked field of per-row kernels, bit
/// for bit, and each row's part of it.
#[test]
fn joint_control_is_the_stacked_solve() {
    let m = model(SMALL);
    let p = params(&m, 2.5);
    let mut prob = small_problem();
    prob.spans = vec![(0.0, 2.0); prob.u0.len()];
    let (rows, n) = (prob.u0.len(), 3);
    let opts = SolveOptions {
        rtol: 1e-6,
        atol: 1e-8,
        keep_stages: true,
        ..SolveOptions::default()
    };
    let mut kernels: Vec<JitField> = prob
        .x
        .iter()
        .map(|x| JitField::with_params(&m, &p, x).unwrap())
        .collect();
    let mut stacked = from_fn(rows * n, |t, u: &[f64], du: &mut [f64]| {
        for (r, k) in kernels.iter_mut().enumerate() {
            solve::VectorField::eval(k, t, &u[r * n..(r + 1) * n], &mut du[r * n..(r + 1) * n]);
        }
    });
    let reference = solve::solve(
        &tableau::TSIT5,
        &mut stacked,
        0.0,
        2.0,
        &prob.u0.concat(),
        &opts,
    )
    .unwrap();
    let mut f = small_field(&m, &p, &prob);
    let got = solve_batch(
        &tableau::TSIT5,
        &mut f,
        &prob.rows(),
        &opts,
        BatchControl::Joint,
    )
    .unwrap();
    assert_eq!(got.stats.calls, reference.stats.nfe);
    assert_eq!(got.stats.row_evals, reference.stats.nfe * rows as u64);
    for (r, row) in got.rows.iter().enumerate() {
        assert_eq!(bits(&row.ts), bits(&reference.ts));
        assert_eq!(row.stats, reference.stats);
        for (i, t) in reference.ts.iter().enumerate() {
            let all = reference.u(i).unwrap();
            assert_eq!(
                bits(row.u(i).unwrap()),
                bits(&all[r * n..(r + 1) * n]),
                "row {r} at t = {t}"
            );
        }
        for (a, b) in row.steps.iter().zip(&reference.steps) {
            assert_eq!((a.t, a.h, a.error_estimate), (b.t, b.h, b.error_estimate));
            let (sa, sb) = (a.stages.as_ref().unwrap(), b.stages.as_ref().unwrap());
            assert_eq!(bits(&sa.u0), bits(&sb.u0[r * n..(r + 1) * n]));
            for j in 0..tableau::TSIT5.stages() {
                let block = &sb.k[j * rows * n..(j + 1) * rows * n];
                assert_eq!(
                    bits(&sa.k[j * n..(j + 1) * n]),
                    bits(&block[r * n..(r + 1) * n])
                );
            }
        }
    }
    // A different model of the batch: rows share steps, so a row's steps are not its own.
    let alone = per_row_reference(&m, &p, &prob, &tableau::TSIT5, &opts);
    assert!(
        alone
            .iter()
            .all(|s| s.stats.accepted < reference.stats.accepted)
    );
}

/// One row is that row's solve; an empty span is `u0` at `t0` after one evaluation; an empty
/// batch is empty.
#[test]
fn one_row_and_an_empty_span() {
    let m = model(SMALL);
    let p = params(&m, 2.5);
    let prob = small_problem();
    let opts = SolveOptions::default();
    let alone = per_row_reference(&m, &p, &prob, &tableau::TSIT5, &opts);
    for r in [0, 6] {
        let one = Problem {
            spans: vec![prob.spans[r]],
            u0: vec![prob.u0[r].clone()],
            x: vec![prob.x[r].clone()],
        };
        let mut f = small_field(&m, &p, &one);
        let got = solve_batch(
            &tableau::TSIT5,
            &mut f,
            &one.rows(),
            &opts,
            BatchControl::PerRow,
        )
        .unwrap();
        assert_same(&got.rows[0], &alone[r], &format!("row {r} alone"));
    }
    let empty = &alone[6];
    assert_eq!((empty.ts.as_slice(), empty.stats.nfe), (&[0.4][..], 1));
    let mut f = small_field(&m, &p, &prob);
    for control in [BatchControl::PerRow, BatchControl::Joint] {
        let got = solve_batch(&tableau::TSIT5, &mut f, &[], &opts, control).unwrap();
        assert!(got.rows.is_empty());
    }
}

/// A NaN — in one row's initial state, or from the field in one row mid-solve — is an error
/// naming that row (the first failing row in order) with the per-row solve's own error; the
/// other rows are not affected. Joint control names the row of the stacked component.
#[test]
fn a_nan_in_one_row_is_an_error_naming_the_row() {
    let n = 2;
    let field = |row: usize, t: f64, u: &[f64], du: &mut [f64]| {
        du[0] = u[1];
        du[1] = -u[0] * (1.0 + row as f64);
        if row == 2 && t > 0.5 {
            du[1] = f64::NAN;
        }
    };
    let u0s: Vec<Vec<f64>> = (0..4).map(|r| vec![1.0 + r as f64, 0.0]).collect();
    let rows = BatchRow::all(0.0, 1.0, &u0s);
    let opts = SolveOptions::default();
    let alone = |r: usize| {
        let mut f = from_fn(n, |t, u: &[f64], du: &mut [f64]| field(r, t, u, du));
        solve::solve(&tableau::TSIT5, &mut f, 0.0, 1.0, &u0s[r], &opts)
    };
    let err = solve_batch(
        &tableau::TSIT5,
        &mut batch_from_fn(n, field),
        &rows,
        &opts,
        BatchControl::PerRow,
    )
    .unwrap_err();
    let SolveError::Row { row, error } = &err else {
        panic!("{err:?}");
    };
    // (NaN ≠ NaN, so the errors are compared as they read.)
    assert_eq!(
        (*row, error.to_string()),
        (2, alone(2).unwrap_err().to_string())
    );
    assert!(matches!(
        **error,
        SolveError::NonFinite { component: 1, .. }
    ));
    assert_eq!(err.code(), "glassbox::non_finite_state");
    assert!(err.to_string().starts_with("row 2: "), "{err}");

    let mut bad = u0s.clone();
    bad[1][1] = f64::NAN;
    bad[3][0] = f64::INFINITY;
    let rows = BatchRow::all(0.0, 1.0, &bad);
    let ok = |_: usize, _: f64, u: &[f64], du: &mut [f64]| du.copy_from_slice(u);
    for control in [BatchControl::PerRow, BatchControl::Joint] {
        let err = solve_batch(
            &tableau::TSIT5,
            &mut batch_from_fn(n, ok),
            &rows,
            &opts,
            control,
        )
        .unwrap_err();
        let SolveError::Row { row, error } = &err else {
            panic!("{control:?}: {err:?}");
        };
        assert_eq!(*row, 1, "{control:?}");
        assert!(
            matches!(**error, SolveError::NonFinite { component: 1, .. }),
            "{control:?}: {error:?}"
        );
    }
}

/// Joint control needs one span; a field of the wrong length is refused for its row.
#[test]
fn joint_control_refuses_different_spans() {
    let f = |_: usize, _: f64, u: &[f64], du: &mut [f64]| du.copy_from_slice(u);
    let (a, b) = (vec![1.0], vec![2.0]);
    let rows = [BatchRow::new(0.0, 1.0, &a), BatchRow::new(0.0, 2.0, &b)];
    let err = solve_batch(
        &tableau::TSIT5,
        &mut batch_from_fn(1, f),
        &rows,
        &SolveOptions::default(),
        BatchControl::Joint,
    )
    .unwrap_err();
    assert_eq!(err.code(), "glassbox::invalid_solve_option");
    // One span but different save times: refused too; the same own times are the options'.
    const T1: [f64; 3] = [0.0, 0.5, 1.0];
    const T2: [f64; 2] = [0.0, 1.0];
    let (t1, t2) = (&T1[..], &T2[..]);
    let own = |t: &'static [f64], u0| BatchRow {
        save_at: Some(t),
        ..BatchRow::new(0.0, 1.0, u0)
    };
    let opts = SolveOptions::default();
    let mut field = batch_from_fn(1, f);
    let rows = [own(t1, &a), own(t2, &b)];
    let err = solve_batch(
        &tableau::TSIT5,
        &mut field,
        &rows,
        &opts,
        BatchControl::Joint,
    );
    assert_eq!(err.unwrap_err().code(), "glassbox::invalid_solve_option");
    let rows = [own(t1, &a), own(t1, &b)];
    let got = solve_batch(
        &tableau::TSIT5,
        &mut field,
        &rows,
        &opts,
        BatchControl::Joint,
    )
    .unwrap();
    let given = SolveOptions {
        save_at: t1.to_vec(),
        ..SolveOptions::default()
    };
    let plain = [BatchRow::new(0.0, 1.0, &a), BatchRow::new(0.0, 1.0, &b)];
    let want = solve_batch(
        &tableau::TSIT5,
        &mut field,
        &plain,
        &given,
        BatchControl::Joint,
    );
    for (g, w) in got.rows.iter().zip(&want.unwrap().rows) {
        assert_same(g, w, "joint, own save times");
    }
    assert_eq!(got.rows[0].ts, t1);
    assert_eq!(BatchField::dim(&field), 1);
    let short: [f64; 0] = [];
    let rows = [BatchRow::new(0.0, 1.0, &short)];
    let err = solve_batch(
        &tableau::TSIT5,
        &mut field,
        &rows,
        &SolveOptions::default(),
        BatchControl::PerRow,
    )
    .unwrap_err();
    assert!(matches!(err, SolveError::Row { row: 0, .. }), "{err:?}");
}

/// A classifier with the digits field's shape (33→64→32 on `concat(h, t)`) on 8 features.
const CLASSIFIER: &str = r#"
model cls
input x[8]
label c in 0..3
net enc = linear(8, 32)
net f = mlp(33, 64, 32; act = tanh)
net dec = linear(32, 3)
state h[32] = enc(x)
dh/dt = f(concat(h, t))
solve tsit5(rtol = 1e-5, atol = 1e-5BATCH) over [0, 1]
output logits = dec(h(1))
data d = csv("DATA", features = 0..8, label = 8)
minimize cross_entropy(logits, c)
train adam(lr = 1e-3), epochs = 1, batch = 16
"#;

fn classifier(name: &str, batch: &str) -> (Model, ndarray::Array2<f64>) {
    let dir = std::env::temp_dir().join(format!("gbx_batched_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("d.csv");
    let rows = 20;
    let x = values(rows * 8, 3, 2.0);
    let table: String = x
        .chunks(8)
        .enumerate()
        .map(|(r, row)| {
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            format!("{},{}\n", cells.join(","), r % 3)
        })
        .collect();
    std::fs::write(&csv, table).unwrap();
    let src = CLASSIFIER
        .replace("DATA", csv.to_str().unwrap())
        .replace("BATCH", batch);
    let m = model(&src);
    let x = ndarray::Array2::from_shape_vec((rows, 8), x).unwrap();
    (m, x)
}

/// `predict_table` batches 20 rows (GEMM-sized field) and solves 7 one by one (below
/// `MIN_BATCH_ROWS`): the first 7 rows' logits agree to rounding (the GEMMs' order of
/// summation, as above), and the stats say which path ran.
#[test]
fn classifier_predictions_batch_automatically_with_the_same_logits() {
    use glassbox::train::{ForwardPath, MIN_BATCH_ROWS, Overrides, predict_table};
    let (m, x) = classifier("auto", "");
    let plan = glassbox::train::plan(&m, &Overrides::default()).unwrap();
    assert_eq!(plan.step_control, BatchControl::PerRow);
    let p = solve::param_values(&m);
    let few = x.slice(ndarray::s![..7, ..]).to_owned();
    assert!(few.nrows() < MIN_BATCH_ROWS && x.nrows() >= MIN_BATCH_ROWS);
    let (alone, st_alone, k) = predict_table(&m, &plan, &p, &few, 1).unwrap();
    let (batched, st_batched, _) = predict_table(&m, &plan, &p, &x, 2).unwrap();
    assert_eq!(st_alone.path, ForwardPath::PerRow);
    assert_eq!(st_batched.path, ForwardPath::Batched);
    assert!(st_batched.calls > 0 && st_batched.row_evals <= st_batched.calls * 20);
    assert!(
        st_batched
            .describe()
            .contains("batched solves (per_row step control)")
    );
    assert_eq!(batched.len(), 20 * k);
    for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
        assert!(
            (a - b).abs() <= 1e-10 * a.abs().max(1.0),
            "logit {i}: {a} vs {b}"
        );
    }

    // `batch = joint`: one step size for all rows, always batched; it trains batched too
    // (`tests/suite/batched_adjoint.rs`).
    let (m, x) = classifier("joint", ", batch = joint");
    let plan = glassbox::train::plan(&m, &Overrides::default()).unwrap();
    assert_eq!(plan.step_control, BatchControl::Joint);
    let (joint, st, _) = predict_table(&m, &plan, &p, &x, 2).unwrap();
    assert_eq!(
        (st.path, st.control),
        (ForwardPath::Batched, BatchControl::Joint)
    );
    assert_eq!(st.row_evals, st.calls * 20);
    assert!(
        joint
            .iter()
            .zip(&batched)
            .all(|(a, b)| (a - b).abs() < 1e-3 * a.abs().max(1.0))
    );
    let ds = glassbox::data::load_model(&m, None, &DiskLoader).unwrap();
    let t = glassbox::train::Trainer::new(&m, ds, &Overrides::default()).unwrap();
    let path = t.training_path().unwrap();
    assert!(path.batched && path.control == BatchControl::Joint);
}

/// `batch` takes `per_row` or `joint`, and only for explicit methods.
#[test]
fn the_batch_option_is_checked() {
    let check = |solve: &str| {
        let src = format!("model m\nstate x = 1.0\ndx/dt = -x\nsolve {solve} over [0, 1]\n");
        let file = SourceFile::new("m.gbx".to_string(), src);
        glassbox::check_source(&file, &DiskLoader)
            .diags
            .iter()
            .map(|d| d.code)
            .collect::<Vec<_>>()
    };
    assert!(check("tsit5(batch = joint)").is_empty());
    assert!(check("rk4(dt = 0.1, batch = per_row)").is_empty());
    assert_eq!(check("tsit5(batch = rows)"), ["glassbox::bad_option_value"]);
    assert_eq!(
        check("rodas4(batch = joint)"),
        ["glassbox::option_not_applicable"]
    );
}
