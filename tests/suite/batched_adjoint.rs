//! The batched discrete adjoint (`src/grad/batched.rs`): per-row control is the single-row
//! adjoint row by row (bit for bit in `du0` on a field evaluated row by row, to rounding with
//! the GEMM kernels), both step controls match central finite differences of a replay of the
//! steps taken, regularizers included, and checkpointed rows give the kept-stages gradients.

use glassbox::grad::{
    self, AdjointOptions, BatchAdjointWork, JitVjpField, VjpField, batch_adjoint, row_by_row,
    vjp_from_fn,
};
use glassbox::sema::Model;
use glassbox::solve::{
    self, BatchControl, BatchRow, BatchSolution, JitBatchField, Solution, SolveOptions, from_fn,
    solve_batch, tableau,
};
use glassbox::source::{DiskLoader, SourceFile};

const N: usize = 3;
const NP: usize = N * N + N;

/// `f(t, u) = tanh(W u + b (1 + t))`, `p = [W (row-major), b]`.
fn eval(p: &[f64], t: f64, u: &[f64], du: &mut [f64]) {
    for i in 0..N {
        let z: f64 = (0..N).map(|j| p[i * N + j] * u[j]).sum::<f64>() + p[N * N + i] * (1.0 + t);
        du[i] = z.tanh();
    }
}

/// Its VJP, by hand: `s = v ⊙ (1 − y²)`, `∂u = Wᵀ s`, `∂W = s ⊗ u`, `∂b = s (1 + t)`.
fn vjp(p: &[f64], t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]) {
    let mut y = [0.0; N];
    eval(p, t, u, &mut y);
    let s: Vec<f64> = (0..N).map(|i| v[i] * (1.0 - y[i] * y[i])).collect();
    for j in 0..N {
        out_u[j] = (0..N).map(|i| p[i * N + j] * s[i]).sum();
    }
    for i in 0..N {
        for j in 0..N {
            out_p[i * N + j] = s[i] * u[j];
        }
        out_p[N * N + i] = s[i] * (1.0 + t);
    }
}

fn field(p: &[f64]) -> impl VjpField + '_ {
    vjp_from_fn(
        N,
        NP,
        move |t, u, du| eval(p, t, u, du),
        move |t, u, v, ou, op| vjp(p, t, u, v, ou, op),
    )
}

fn params() -> Vec<f64> {
    vec![
        -0.9, 1.7, 0.3, -1.4, -0.6, 1.1, 0.8, -1.3, -0.7, 0.5, -0.4, 0.9,
    ]
}

/// Initial states of different sizes, so that the rows take different numbers of steps (and
/// small enough that no row's stiffness ratio is ill-conditioned for finite differences: from
/// |u0| ≈ 3 on, some steps' `‖k_p − k_q‖/‖g_p − g_q‖` made them noisy at 1e-5).
fn starts() -> Vec<Vec<f64>> {
    (0..5)
        .map(|r| {
            let a = 0.4 + 0.45 * r as f64;
            vec![a, -0.5 * a, 0.3 - 0.2 * a]
        })
        .collect()
}

const SAVES: [f64; 3] = [0.0, 0.37, 2.0];

/// rtol = 1e-4 as in `tests/suite/grad.rs`: `E_j` divides a cancelling sum of stages by `rtol·|u|`,
/// so its rounding grows like 1e-16/rtol, and at tighter tolerances central differences of
/// `R_E` are noisy at 1e-4 relative (`docs/gradients.md`).
const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-6;

fn options(checkpoint_every: Option<usize>) -> SolveOptions {
    SolveOptions {
        rtol: RTOL,
        atol: ATOL,
        keep_stages: true,
        checkpoint_every,
        save_at: SAVES.to_vec(),
        ..SolveOptions::default()
    }
}

fn adjoint_options() -> AdjointOptions {
    AdjointOptions {
        error_weight: 0.3,
        stiffness_weight: 0.2,
        ..AdjointOptions::new(RTOL, ATOL)
    }
}

/// `dL/du` at each row's saves: a fixed pattern per row.
fn loss_weights(rows: usize) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|r| {
            (0..SAVES.len() * N)
                .map(|i| ((i * 7 + r * 3) % 5) as f64 * 0.25 - 0.5)
                .collect()
        })
        .collect()
}

fn solve_rows(p: &[f64], control: BatchControl, checkpoint_every: Option<usize>) -> BatchSolution {
    let u0s = starts();
    let rows = BatchRow::all(0.0, 2.0, &u0s);
    let opts = options(checkpoint_every);
    solve_batch(
        tableau("tsit5").unwrap(),
        &mut row_by_row(field(p)),
        &rows,
        &opts,
        control,
    )
    .unwrap()
}

fn batched_gradients(p: &[f64], sols: &[Solution], control: BatchControl) -> (Vec<f64>, Vec<f64>) {
    let dl = loss_weights(sols.len());
    let dl: Vec<&[f64]> = dl.iter().map(Vec::as_slice).collect();
    let mut dp = vec![0.0; NP];
    let mut work = BatchAdjointWork::default();
    let g = batch_adjoint(
        tableau("tsit5").unwrap(),
        &mut row_by_row(field(p)),
        sols,
        &dl,
        &adjoint_options(),
        control,
        &mut dp,
        &mut work,
    )
    .unwrap();
    (g.du0, dp)
}

/// `|a − b| ≤ tol · max(1, |b|)` component by component.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

#[test]
fn per_row_batched_adjoint_is_the_single_row_adjoint() {
    let p = params();
    let batch = solve_rows(&p, BatchControl::PerRow, None);
    let steps: Vec<usize> = batch.rows.iter().map(|s| s.steps.len()).collect();
    assert!(
        steps.iter().any(|&s| s != steps[0]),
        "the rows should take different step counts: {steps:?}"
    );
    let (du0, dp) = batched_gradients(&p, &batch.rows, BatchControl::PerRow);

    let tab = tableau("tsit5").unwrap();
    let dl = loss_weights(batch.rows.len());
    let mut want_dp = vec![0.0; NP];
    for (r, sol) in batch.rows.iter().enumerate() {
        let g = grad::adjoint(tab, &mut field(&p), sol, &dl[r], &adjoint_options()).unwrap();
        // The same VJPs, combined in the same order per row: dL/du0 bit for bit.
        assert_eq!(
            du0[r * N..(r + 1) * N]
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            g.du0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "row {r}"
        );
        for (w, d) in want_dp.iter_mut().zip(&g.dp) {
            *w += d;
        }
    }
    // dp: the same terms, summed stage by stage across rows instead of row by row. The
    // regularizers' terms are scaled by 1/(rtol·|u|) and cancel, so each sum rounds at about
    // 1e-16/rtol = 1e-12 of its largest term; 1e-9 is far above that and far below any
    // wrong or missing term (the regularizers alone move dp by ~1e-2).
    assert_close("dp", &dp, &want_dp, 1e-9);
}

#[test]
fn checkpointed_rows_give_the_kept_stages_gradients() {
    let p = params();
    let kept = solve_rows(&p, BatchControl::PerRow, None);
    let checkpointed = solve_rows(&p, BatchControl::PerRow, Some(3));
    assert!(
        checkpointed.rows[0].steps[1].stages.is_none(),
        "steps between checkpoints keep no stages"
    );
    // The recomputed stages are the solver's own (same field, same stepper): same bits.
    assert_eq!(
        batched_gradients(&p, &kept.rows, BatchControl::PerRow),
        batched_gradients(&p, &checkpointed.rows, BatchControl::PerRow)
    );
}

/// `L(p, u0s)` of a replay of every row's recorded steps (what the adjoint differentiates):
/// `Σ_r ⟨dl_r, u_r(SAVES)⟩ + w_E R_E + w_S R_S`, per row for per-row control, of the stacked
/// state for joint control.
fn replayed_loss(p: &[f64], u0s: &[Vec<f64>], batch: &BatchSolution, control: BatchControl) -> f64 {
    let tab = tableau("tsit5").unwrap();
    let a = adjoint_options();
    let opts = SolveOptions {
        checkpoint_every: None,
        ..options(None)
    };
    let dl = loss_weights(u0s.len());
    let score = |sol: &Solution, dl: &[f64]| {
        let (re, rs) = grad::regularizers_from_stages(tab, sol, a.rtol, a.atol).unwrap();
        let obs: f64 = sol.us.iter().zip(dl).map(|(u, d)| u * d).sum();
        obs + a.error_weight * re + a.stiffness_weight * rs
    };
    match control {
        BatchControl::PerRow => (0..u0s.len())
            .map(|r| {
                let steps = grad::step_sequence(&batch.rows[r]);
                let sol = grad::replay(tab, &mut field(p), &u0s[r], &steps, &opts).unwrap();
                score(&sol, &dl[r])
            })
            .sum(),
        BatchControl::Joint => {
            let rows = u0s.len();
            let mut stacked = from_fn(rows * N, |t, u: &[f64], du: &mut [f64]| {
                for r in 0..rows {
                    eval(p, t, &u[r * N..(r + 1) * N], &mut du[r * N..(r + 1) * N]);
                }
            });
            let steps = grad::step_sequence(&batch.rows[0]);
            let sol = grad::replay(tab, &mut stacked, &u0s.concat(), &steps, &opts).unwrap();
            // Stacked dl: save by save, rows after one another.
            let d: Vec<f64> = (0..SAVES.len())
                .flat_map(|i| dl.iter().flat_map(move |g| g[i * N..(i + 1) * N].to_vec()))
                .collect();
            score(&sol, &d)
        }
    }
}

fn finite_differences_match(control: BatchControl) {
    let p = params();
    let u0s = starts();
    let batch = solve_rows(&p, control, None);
    let (du0, dp) = batched_gradients(&p, &batch.rows, control);
    let eps = 1e-3;
    for m in 0..NP {
        let fd = five_point(eps, |d| {
            let mut q = p.clone();
            q[m] += d;
            replayed_loss(&q, &u0s, &batch, control)
        });
        assert_close(&format!("{control:?} dp[{m}]"), &[dp[m]], &[fd], TOL_FD);
    }
    for (r, i) in [(0, 0), (2, 1), (4, 2)] {
        let fd = five_point(eps, |d| {
            let mut u = u0s.clone();
            u[r][i] += d;
            replayed_loss(&p, &u, &batch, control)
        });
        let got = du0[r * N + i];
        assert_close(&format!("{control:?} du0[{r}][{i}]"), &[got], &[fd], TOL_FD);
    }
}

/// Five-point central differences of `f` at 0: truncation `O(eps⁴)`. `R_S` and `R_E` are
/// ratios of `O(h)` differences of stages, whose rounding noise in `L` (about 1e-10 here)
/// swamps two-point differences at the small steps their large third derivatives need; the
/// five-point rule reaches the same accuracy at eps = 1e-3, where that noise is 1e-7 of the
/// derivative.
fn five_point(eps: f64, mut f: impl FnMut(f64) -> f64) -> f64 {
    (-f(2.0 * eps) + 8.0 * f(eps) - 8.0 * f(-eps) + f(-2.0 * eps)) / (12.0 * eps)
}

/// Relative (at least absolute) agreement with the differences: above their truncation and
/// noise (about 1e-7 at eps = 1e-3), far below any missing term (the regularizers alone move
/// the gradient by about 1e-2).
const TOL_FD: f64 = 1e-6;

#[test]
fn per_row_batched_adjoint_matches_finite_differences() {
    finite_differences_match(BatchControl::PerRow);
}

#[test]
fn joint_batched_adjoint_matches_finite_differences() {
    finite_differences_match(BatchControl::Joint);
}

fn model(src: &str) -> Model {
    let file = SourceFile::new("batched_adjoint.gbx".to_string(), src.to_string());
    let checked = glassbox::check_source(&file, &DiskLoader);
    checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags))
}

/// The digits classifier's field: 33→64→32, tanh, on `concat(h, t)`: its batched VJP has two
/// GEMMs for `vᵀ∂f/∂u` and two `Vᵀ·X` GEMMs for the weights' gradients per call.
const DIGITS: &str = "
model digits_field
net f = mlp(33, 64, 32; act = tanh)
state h[32] = 0.0
dh/dt = f(concat(h, t))
";

#[test]
fn gemm_batched_adjoint_is_the_single_row_adjoint_to_rounding() {
    let m = model(DIGITS);
    let p: Vec<f64> = solve::param_values(&m).iter().map(|x| x * 3.0).collect();
    let n = m.state_size;
    let u0s: Vec<Vec<f64>> = (0..12)
        .map(|r| {
            (0..n)
                .map(|i| ((i * 5 + r * 11) % 13) as f64 * 0.15 - 0.9)
                .collect()
        })
        .collect();
    let tab = tableau("tsit5").unwrap();
    let opts = SolveOptions {
        rtol: 1e-6,
        atol: 1e-6,
        keep_stages: true,
        save_at: vec![0.0, 1.0],
        ..SolveOptions::default()
    };
    let mut bf = JitBatchField::with_vjp(&m, &p).unwrap();
    assert!(solve::BatchField::uses_gemm(&bf));
    let rows = BatchRow::all(0.0, 1.0, &u0s);
    let batch = solve_batch(tab, &mut bf, &rows, &opts, BatchControl::PerRow).unwrap();
    let dl: Vec<Vec<f64>> = (0..u0s.len())
        .map(|r| {
            (0..2 * n)
                .map(|i| ((i + r) % 7) as f64 * 0.1 - 0.3)
                .collect()
        })
        .collect();
    let dls: Vec<&[f64]> = dl.iter().map(Vec::as_slice).collect();
    let aopts = AdjointOptions {
        error_weight: 0.5,
        ..AdjointOptions::new(1e-6, 1e-6)
    };
    let mut dp = vec![0.0; p.len()];
    let g = batch_adjoint(
        tab,
        &mut bf,
        &batch.rows,
        &dls,
        &aopts,
        BatchControl::PerRow,
        &mut dp,
        &mut BatchAdjointWork::default(),
    )
    .unwrap();
    let mut single = JitVjpField::new(&m, &p, &[]).unwrap();
    let mut want_dp = vec![0.0; p.len()];
    for (r, sol) in batch.rows.iter().enumerate() {
        let w = grad::adjoint(tab, &mut single, sol, &dl[r], &aopts).unwrap();
        // The GEMMs sum the layers' products in another order (and fuse multiply-adds): each
        // VJP differs by a few ulps, and the sweep over ~30 steps of 7 stages carries that
        // forward through a contractive-to-mildly-expanding linear recursion, so 1e-10 is
        // orders above rounding and orders below any wrong term.
        assert_close(
            &format!("du0 row {r}"),
            &g.du0[r * n..(r + 1) * n],
            &w.du0,
            1e-10,
        );
        for (a, d) in want_dp.iter_mut().zip(&w.dp) {
            *a += d;
        }
    }
    assert_close("dp", &dp, &want_dp, 1e-10);
}

/// A classifier with the digits architecture's field (33→64→32 tanh, GEMM-sized) on a small
/// synthetic table, with both kinds of solver regularizer.
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
minimize cross_entropy(logits, c) + REGS
train adam(lr = 1e-2), iterations = 3, batch = 40
"#;

/// The model with `batch` in its solve clause and `regs` in its objective, and its data:
/// 40 rows of 8 features whose class is the sign pattern of two of them (learnable).
fn classifier(name: &str, batch: &str, regs: &str) -> (Model, Vec<glassbox::data::Dataset>) {
    let dir = std::env::temp_dir().join(format!("gbx_badj_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("d.csv");
    let table: String = (0..40)
        .map(|r| {
            let x: Vec<f64> = (0..8)
                .map(|i| (((r * 13 + i * 7) % 17) as f64 / 8.0 - 1.0) * 1.5)
                .collect();
            let c = usize::from(x[0] > 0.0) + usize::from(x[3] > 0.3);
            let cells: Vec<String> = x.iter().map(|v| v.to_string()).collect();
            format!("{},{c}\n", cells.join(","))
        })
        .collect();
    std::fs::write(&csv, table).unwrap();
    let src = CLASSIFIER
        .replace("DATA", csv.to_str().unwrap())
        .replace("BATCH", batch)
        .replace("REGS", regs);
    let m = model(&src);
    let ds = glassbox::data::load_model(&m, None, &DiskLoader).unwrap();
    (m, ds)
}

const REGS: &str =
    "0.01 * error_estimate(sample = unbiased) + 0.02 * error_estimate + 0.01 * stiffness";

fn trainer(
    m: &Model,
    ds: Vec<glassbox::data::Dataset>,
    threads: usize,
) -> glassbox::train::Trainer {
    let ov = glassbox::train::Overrides {
        threads: Some(threads),
        ..Default::default()
    };
    glassbox::train::Trainer::new(m, ds, &ov).unwrap()
}

/// The batched training step's gradient is the per-row one to rounding (the GEMMs' order
/// of summation, as in `gemm_batched_adjoint_is_the_single_row_adjoint_to_rounding`), with
/// the local unbiased and the global regularizers.
#[test]
fn batched_training_gradient_is_the_per_row_gradient() {
    let (m, ds) = classifier("grad", "", REGS);
    let mut batched = trainer(&m, ds.clone(), 1);
    let path = batched.training_path().unwrap();
    assert!(path.batched && path.control == BatchControl::PerRow);
    assert!(path.describe().contains("batched forward and adjoint"));
    let mut per_row = trainer(&m, ds, 1);
    per_row.train_per_row();
    assert!(!per_row.training_path().unwrap().batched);
    let theta = batched.state().theta.clone();
    let rows: Vec<usize> = (0..40).collect();
    let w = batched.weights(0);
    let a = batched.evaluate_rows(&theta, &rows, &w, 0).unwrap();
    let b = per_row.evaluate_rows(&theta, &rows, &w, 0).unwrap();
    assert_close("loss", &[a.loss], &[b.loss], 1e-10);
    assert_close("reg", &[a.reg], &[b.reg], 1e-10);
    assert!(a.reg > 0.0);
    let scale = b.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    for (i, (x, y)) in a.grad.iter().zip(&b.grad).enumerate() {
        assert!((x - y).abs() <= 1e-9 * scale, "grad[{i}]: {x} vs {y}");
    }
}

/// Three iterations on 1, 2 and 3 threads give the same weights bit for bit: the chunks are
/// fixed by the batch, and their gradients are summed in chunk order.
#[test]
fn batched_training_is_bit_identical_at_any_thread_count() {
    let (m, ds) = classifier("threads", "", REGS);
    let run = |threads: usize| {
        let mut t = trainer(&m, ds.clone(), threads);
        assert!(t.training_path().unwrap().batched);
        let mut losses = Vec::new();
        while !t.done() {
            losses.push(t.step().unwrap().loss);
        }
        (
            t.state()
                .theta
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            losses,
        )
    };
    let (one, losses) = run(1);
    assert!(losses.last() < losses.first(), "{losses:?}");
    assert_eq!(run(2).0, one);
    assert_eq!(run(3).0, one);
}

/// Joint step control trains batched (a chunk of rows shares its steps); with an unbiased
/// local regularizer, which needs per-row dense output, it is refused with a diagnostic.
#[test]
fn joint_control_trains_batched() {
    let (m, ds) = classifier("joint", ", batch = joint", "0.02 * error_estimate");
    let mut t = trainer(&m, ds, 2);
    let path = t.training_path().unwrap();
    assert!(path.batched && path.control == BatchControl::Joint);
    let mut losses = Vec::new();
    while !t.done() {
        losses.push(t.step().unwrap().loss);
    }
    assert!(losses.last() < losses.first(), "{losses:?}");

    let (m, ds) = classifier("joint_unbiased", ", batch = joint", REGS);
    let ov = glassbox::train::Overrides::default();
    let err = glassbox::train::Trainer::new(&m, ds, &ov)
        .err()
        .expect("refused");
    assert_eq!(err.code, "glassbox::train_unsupported");
    assert!(err.help.is_some());
}

/// `examples/digits.gbx` trains on the batched path: 48 iterations (four epochs of its 1 437
/// training rows, batch 128) take the loss from about 13 to about 1.4 and the batches'
/// accuracy to about 0.67 (chance: 0.1); the bounds leave room for other rounding.
#[test]
fn digits_trains_batched() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/digits.gbx");
    let file = SourceFile::new(
        path.display().to_string(),
        std::fs::read_to_string(&path).unwrap(),
    );
    let m = glassbox::check_source(&file, &DiskLoader).model.unwrap();
    let ds = glassbox::data::load_model(&m, Some(&file), &DiskLoader).unwrap();
    let ov = glassbox::train::Overrides {
        stop: Some(glassbox::sema::Stop::Iterations { n: 48 }),
        threads: Some(2),
        ..Default::default()
    };
    let mut t = glassbox::train::Trainer::new(&m, ds, &ov).unwrap();
    assert!(t.training_path().unwrap().batched);
    let mut metrics = Vec::new();
    while !t.done() {
        metrics.push(t.step().unwrap());
    }
    let mean = |ms: &[glassbox::train::Metric], f: fn(&glassbox::train::Metric) -> f64| {
        ms.iter().map(f).sum::<f64>() / ms.len() as f64
    };
    let (first, last) = (&metrics[..3], &metrics[metrics.len() - 3..]);
    let (l0, l1) = (mean(first, |m| m.loss), mean(last, |m| m.loss));
    let acc = mean(last, |m| m.accuracy.unwrap());
    eprintln!("loss {l0} -> {l1}, accuracy {acc}");
    assert!(l1 < 0.3 * l0, "loss {l0} -> {l1}");
    assert!(acc > 0.4, "accuracy {acc}");
}

/// Windows: rows with their own spans and save times (`BatchRow::save_at`, a trajectory
/// window's observation times, of different counts), one backward in time, one saving at its
/// start twice. Their batched adjoint is each row's single-row adjoint (`du0` bit for bit, `dp`
/// to the per-stage summation's rounding, as above) and matches central finite differences of
/// a replay of each row's steps saved at its own times (`R_E`, `R_S` included).
#[test]
fn windows_with_their_own_save_times_match_the_single_row_adjoint_and_differences() {
    let tab = tableau("tsit5").unwrap();
    let p = params();
    let u0s = starts();
    let times: Vec<Vec<f64>> = vec![
        vec![0.0, 0.3, 0.6, 0.9],
        vec![0.5, 0.5, 1.2],
        vec![1.4, 1.0, 0.2],
        vec![0.2, 0.4, 0.6, 0.8, 1.0, 2.2],
        vec![0.9, 1.1],
    ];
    let rows: Vec<BatchRow> = (times.iter().zip(&u0s))
        .map(|(t, u0)| BatchRow {
            save_at: Some(t),
            ..BatchRow::new(t[0], t[t.len() - 1], u0)
        })
        .collect();
    let opts = SolveOptions {
        save_at: Vec::new(),
        ..options(None)
    };
    let mut f = row_by_row(field(&p));
    let batch = solve_batch(tab, &mut f, &rows, &opts, BatchControl::PerRow).unwrap();
    let dl: Vec<Vec<f64>> = (times.iter().enumerate())
        .map(|(r, t)| {
            (0..t.len() * N)
                .map(|i| ((i * 7 + r * 3) % 5) as f64 * 0.25 - 0.5)
                .collect()
        })
        .collect();
    let dls: Vec<&[f64]> = dl.iter().map(Vec::as_slice).collect();
    let a = adjoint_options();
    let gradients = |p: &[f64], sols: &[Solution]| {
        let mut dp = vec![0.0; NP];
        let mut work = BatchAdjointWork::default();
        let mut f = row_by_row(field(p));
        let control = BatchControl::PerRow;
        let g = batch_adjoint(tab, &mut f, sols, &dls, &a, control, &mut dp, &mut work).unwrap();
        (g.du0, dp)
    };
    let (du0, dp) = gradients(&p, &batch.rows);

    let mut want_dp = vec![0.0; NP];
    for (r, sol) in batch.rows.iter().enumerate() {
        assert_eq!(sol.ts, times[r], "row {r}: saved at its own times");
        let g = grad::adjoint(tab, &mut field(&p), sol, &dl[r], &a).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&du0[r * N..(r + 1) * N]), bits(&g.du0), "row {r}");
        for (w, d) in want_dp.iter_mut().zip(&g.dp) {
            *w += d;
        }
    }
    assert_close("windows dp", &dp, &want_dp, 1e-9);

    // The loss of a replay of every row's recorded steps, saved at its own times.
    let loss = |p: &[f64], u0s: &[Vec<f64>]| -> f64 {
        (0..u0s.len())
            .map(|r| {
                let steps = grad::step_sequence(&batch.rows[r]);
                let o = SolveOptions {
                    save_at: times[r].clone(),
                    ..opts.clone()
                };
                let sol = grad::replay(tab, &mut field(p), &u0s[r], &steps, &o).unwrap();
                let (re, rs) = grad::regularizers_from_stages(tab, &sol, a.rtol, a.atol).unwrap();
                let obs: f64 = sol.us.iter().zip(&dl[r]).map(|(u, d)| u * d).sum();
                obs + a.error_weight * re + a.stiffness_weight * rs
            })
            .sum()
    };
    let eps = 1e-3;
    for m in 0..NP {
        let fd = five_point(eps, |d| {
            let mut q = p.clone();
            q[m] += d;
            loss(&q, &u0s)
        });
        assert_close(&format!("windows dp[{m}]"), &[dp[m]], &[fd], TOL_FD);
    }
    for (r, i) in [(0, 0), (1, 2), (2, 1), (4, 0)] {
        let fd = five_point(eps, |d| {
            let mut u = u0s.clone();
            u[r][i] += d;
            loss(&p, &u)
        });
        assert_close(
            &format!("windows du0[{r}][{i}]"),
            &[du0[r * N + i]],
            &[fd],
            TOL_FD,
        );
    }
}
