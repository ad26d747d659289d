//! Many initial states of one ODE model, on the same span and save times, solved together and
//! differentiated together: the Python package's batched `y0` (and so `jax.vmap` and PyTorch
//! batches over `glassbox.jax`/`glassbox.torch`). The rows advance through the batched
//! solver (`solve::solve_batch`, per-row step control: each row its own steps, as alone) on a
//! [`JitBatchField`], every stage one batched kernel call, every dense layer one GEMM; the
//! gradient is the batched discrete adjoint (`grad::batch_adjoint`), `dL/dp` summed over the
//! rows by GEMMs. [`batched`] says when that beats solving the rows one by one (the CLI's
//! rule, `train::solves_batched`); the per-row results equal the single-row solve's to
//! rounding (a GEMM sums in another order), not bit for bit.

use std::time::Instant;

use super::bad_arg;
use super::solve::{Plan, Timing};
use super::vjp::{Regularizers, Solved, Sweep, sweep_of};
use crate::diag::Diag;
use crate::grad::{self, AdjointOptions, BatchAdjointWork, JitVjpField};
use crate::sema::Model;
use crate::solve::{self, BatchControl, BatchRow, BatchStats, JitBatchField, Solution};
use crate::train::solves_batched;

/// Whether `rows` rows of the model whose batched field is `field` are better solved batched.
pub fn batched(field: &JitBatchField, rows: usize) -> bool {
    solves_batched(
        BatchControl::PerRow,
        rows,
        solve::BatchField::uses_gemm(field),
    )
}

/// `field`'s batched kernels (field and VJP) with parameters `p`, compiled for `model` first
/// if it holds none (the Python package keeps one per model).
pub fn field_with<'f>(
    field: &'f mut Option<JitBatchField>,
    model: &Model,
    p: &[f64],
) -> Result<&'f mut JitBatchField, Vec<Diag>> {
    match field {
        Some(f) => {
            f.set_params(p).map_err(|d| vec![d])?;
            Ok(f)
        }
        None => Ok(field.insert(JitBatchField::with_vjp(model, p).map_err(|d| vec![d])?)),
    }
}

/// The rows' solves, their stages kept when `keep` (for [`sweep`]).
pub struct BatchRun {
    pub sols: Vec<Solution>,
    pub stats: BatchStats,
    how: Solved,
    keep: bool,
    /// The compile (or parameter update) and the solve.
    pub timing: Timing,
}

/// Solves every row of `y0s` (each one initial state) over the plan's span, saved at its
/// times, with parameters `p`, batched. Explicit methods only.
pub fn solve(
    field: &mut Option<JitBatchField>,
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0s: &[Vec<f64>],
    keep: bool,
) -> Result<BatchRun, Vec<Diag>> {
    let solve::Method::Explicit(tab) = plan.method else {
        return Err(bad_arg(
            format!(
                "`{}` is not batched here: batched rows need an explicit Runge–Kutta method",
                plan.method.name()
            ),
            "give an explicit method (tsit5, dopri5, ...), or batched=False",
        ));
    };
    for (i, y0) in y0s.iter().enumerate() {
        super::solve::start_state(model, p, plan.t0, Some(y0))
            .map_err(|d| super::solve::in_row(i, d))?;
    }
    let compile_start = Instant::now();
    let f = field_with(field, model, p)?;
    let compile = compile_start.elapsed();
    let run_start = Instant::now();
    let mut opts = plan.opts.clone();
    opts.keep_stages = keep;
    let rows: Vec<BatchRow> = BatchRow::all(plan.t0, plan.t1, y0s);
    let sol = solve::solve_batch(tab, f, &rows, &opts, BatchControl::PerRow)
        .map_err(|e| vec![Diag::from(e)])?;
    Ok(BatchRun {
        sols: sol.rows,
        stats: sol.stats,
        how: Solved::new(tab, p, plan, true),
        keep,
        timing: Timing::new(compile, run_start.elapsed(), 1),
    })
}

impl BatchRun {
    /// Row `i`'s own gradient (`vjp::sweep` on its solution, in place): what the batched
    /// sweep sums over the rows, for a caller that needs each row's `dL/dp`.
    pub fn sweep_row(
        &self,
        field: &mut Option<JitVjpField>,
        model: &Model,
        i: usize,
        dl_dy: &[f64],
        reg: Regularizers,
    ) -> Result<Sweep, Vec<Diag>> {
        self.require_stages()?;
        sweep_of(field, model, &self.how, &self.sols[i], dl_dy, reg)
    }

    fn require_stages(&self) -> Result<(), Vec<Diag>> {
        if self.keep {
            return Ok(());
        }
        Err(vec![
            Diag::error(
                "glassbox::internal",
                "a batched solve without its stages was differentiated",
            )
            .help("this is a bug in glassbox; please report it"),
        ])
    }
}

/// The batched gradient of `L = Σ_rows Σ_i ⟨dl_dy[r]_i, y_r(t_i)⟩ + w_E Σ R_E + w_S Σ R_S`
/// (`dl_dy`: every row's saved states' cotangents, rows one after another, as the rows' `us`):
/// every row's `dL/dy0` (`[rows, n]`) and `dL/dp` summed over the rows. The weights are the
/// same for every row (the batched sweep has one).
pub fn sweep(
    field: &mut Option<JitBatchField>,
    model: &Model,
    run: &BatchRun,
    dl_dy: &[f64],
    reg: Regularizers,
) -> Result<(Vec<f64>, Vec<f64>, Timing), Vec<Diag>> {
    run.require_stages()?;
    super::vjp::check_weights(reg, run.how.tab)?;
    let total: usize = run.sols.iter().map(|s| s.us.len()).sum();
    if dl_dy.len() != total {
        return Err(bad_arg(
            format!(
                "the cotangent has {} values but the rows saved {total}",
                dl_dy.len()
            ),
            "give dL/dy of the shape of the solution's y",
        ));
    }
    super::vjp::check_finite(dl_dy)?;
    let mut parts = Vec::with_capacity(run.sols.len());
    let mut start = 0;
    for s in &run.sols {
        parts.push(&dl_dy[start..start + s.us.len()]);
        start += s.us.len();
    }
    let compile_start = Instant::now();
    let f = field_with(field, model, &run.how.p)?;
    let compile = compile_start.elapsed();
    let run_start = Instant::now();
    let aopts = AdjointOptions {
        error_weight: reg.error,
        stiffness_weight: reg.stiffness,
        ..AdjointOptions::new(run.how.rtol, run.how.atol)
    };
    let mut dp = vec![0.0; run.how.p.len()];
    let g = grad::batch_adjoint(
        run.how.tab,
        f,
        &run.sols,
        &parts,
        &aopts,
        BatchControl::PerRow,
        &mut dp,
        &mut BatchAdjointWork::default(),
    )
    .map_err(|e| vec![Diag::from(e)])?;
    Ok((g.du0, dp, Timing::new(compile, run_start.elapsed(), 1)))
}
