//! The gradient of an ODE solve for a caller's loss: the Python package's `Model.vjp` (and the
//! JAX/PyTorch wrappers over it). The caller gives `dL/dy` at every saved state; the discrete
//! adjoint (`grad::adjoint`) of the planned explicit solve gives `dL/dy0` and `dL/dp`, with the
//! error-estimate and stiffness regularizers `w_E R_E + w_S R_S` added to `L` when weighted.
//! Where the initial state is the model's own (no `y0`) and depends on parameters
//! (`state h = a * c`), `dL/dy0` is carried on into `dL/dp` (`grad::initial_state_vjp`), so `dp`
//! is the whole derivative of `L` in the parameters.

use std::time::Instant;

use super::bad_arg;
use super::solve::{Plan, Timing, start_state};
use crate::diag::Diag;
use crate::grad::{self, AdjointOptions, JitVjpField};
use crate::sema::Model;
use crate::solve::{self, Solution, Tableau};

/// What [`run`] differentiates besides the caller's `⟨dL/dy, y⟩`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Regularizers {
    /// The weight of `R_E = Σ_j E_j |h_j|`.
    pub error: f64,
    /// The weight of `R_S = Σ_j S_j |h_j|` (every explicit method but `euler`).
    pub stiffness: f64,
}

/// A solve and its gradient.
pub struct VjpRun {
    pub sol: Solution,
    /// `dL/dy0`, one value per state element.
    pub dy0: Vec<f64>,
    /// `dL/dp` over the model's flat parameter vector (`params::values` names the parts).
    pub dp: Vec<f64>,
    /// `R_E` and `R_S` of the solve, unweighted (as recorded by the solver).
    pub error_estimate: f64,
    pub stiffness: f64,
    /// The JIT compile of the field and its VJP, and the solve with its adjoint sweep.
    pub timing: Timing,
}

/// The planned solve from `y0` (else the model's initial state) with parameters `p`, and the
/// gradient of `L = Σ_i ⟨dl_dy_i, y(t_i)⟩ + w_E R_E + w_S R_S`, where `dl_dy` holds one row of
/// state values per saved time, row-major, and the saved times are the plan's (`save_at`, or
/// every accepted step when it has none: then `dl_dy` must match the steps this solve takes,
/// so give save times).
pub fn run(
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0: Option<&[f64]>,
    dl_dy: &[f64],
    reg: Regularizers,
) -> Result<VjpRun, Vec<Diag>> {
    run_cached(&mut None, model, plan, p, y0, dl_dy, reg)
}

/// [`run`] on the field and VJP kernels an earlier call compiled when `field` holds them
/// (parameters replaced by `p`), else compiled now and left in `field` (which must be
/// `model`'s): the Python package compiles once per model. The timing's compile part is then
/// only the parameter update.
pub fn run_cached(
    field: &mut Option<JitVjpField>,
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0: Option<&[f64]>,
    dl_dy: &[f64],
    reg: Regularizers,
) -> Result<VjpRun, Vec<Diag>> {
    let kept = solve_kept(field, model, plan, p, y0)?;
    let g = sweep(field, model, &kept, dl_dy, reg)?;
    let timing = Timing {
        compile_ms: kept.timing.compile_ms + g.timing.compile_ms,
        median_solve_ms: kept.timing.median_solve_ms + g.timing.median_solve_ms,
        repeat: 1,
    };
    Ok(VjpRun {
        timing,
        sol: kept.sol,
        dy0: g.dy0,
        dp: g.dp,
        error_estimate: g.error_estimate,
        stiffness: g.stiffness,
    })
}

/// A solve with every step's stages kept, and what it was solved from: what [`sweep`]
/// differentiates afterwards, for any number of cotangents (the Python package's
/// `solve(keep=True)` and `solve_adjoint`).
pub struct KeptSolve {
    pub sol: Solution,
    how: Solved,
    /// The compile (or parameter update) and the solve.
    pub timing: Timing,
}

impl Solved {
    /// What a solve of `plan` with `tab` at parameters `p` ran with.
    pub(super) fn new(tab: &'static Tableau, p: &[f64], plan: &Plan, y0_given: bool) -> Solved {
        Solved {
            tab,
            p: p.to_vec(),
            rtol: plan.opts.rtol,
            atol: plan.opts.atol,
            t0: plan.t0,
            y0_given,
        }
    }
}

/// What a kept solve ran with, which its sweep needs: a single solve's or every row's of a
/// batch (`app::rows`).
#[derive(Clone, Debug)]
pub(super) struct Solved {
    pub(super) tab: &'static Tableau,
    /// The parameters and the tolerances.
    pub(super) p: Vec<f64>,
    pub(super) rtol: f64,
    pub(super) atol: f64,
    pub(super) t0: f64,
    /// Whether the initial state was the caller's (else the model's, from `p`: the sweep
    /// then carries `dL/dy0` on into `dL/dp`).
    pub(super) y0_given: bool,
}

/// The planned solve from `y0` (else the model's initial state) with parameters `p`, its
/// stages kept for [`sweep`]; on `field`'s kernels when it holds them, as [`run_cached`].
/// Explicit methods only (the ones with a discrete adjoint).
pub fn solve_kept(
    field: &mut Option<JitVjpField>,
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0: Option<&[f64]>,
) -> Result<KeptSolve, Vec<Diag>> {
    let solve::Method::Explicit(tab) = plan.method else {
        return Err(bad_arg(
            format!(
                "`{}` has no discrete adjoint here: gradients need an explicit Runge–Kutta method",
                plan.method.name()
            ),
            "give method=\"tsit5\" (or dopri5, bs3, rk4, ...) for the gradient",
        ));
    };
    let u0 = start_state(model, p, plan.t0, y0)?;
    let compile_start = Instant::now();
    let field = with_params(field, model, p)?;
    let compile = compile_start.elapsed();
    let run_start = Instant::now();
    let mut opts = plan.opts.clone();
    opts.keep_stages = true;
    let sol =
        solve::solve(tab, field, plan.t0, plan.t1, &u0, &opts).map_err(|e| vec![Diag::from(e)])?;
    Ok(KeptSolve {
        sol,
        how: Solved::new(tab, p, plan, y0.is_some()),
        timing: Timing::new(compile, run_start.elapsed(), 1),
    })
}

/// The gradient [`sweep`] gives for a kept solve.
pub struct Sweep {
    pub dy0: Vec<f64>,
    pub dp: Vec<f64>,
    pub error_estimate: f64,
    pub stiffness: f64,
    /// The parameter update of the kernels, and the sweep.
    pub timing: Timing,
}

/// The discrete adjoint of the kept solve for `L = Σ_i ⟨dl_dy_i, y(t_i)⟩ + w_E R_E + w_S R_S`
/// (`dl_dy`: one row of state values per saved state of `kept.sol`, row-major), on `field`'s
/// kernels (compiled now if empty) set to the parameters the solve ran with.
pub fn sweep(
    field: &mut Option<JitVjpField>,
    model: &Model,
    kept: &KeptSolve,
    dl_dy: &[f64],
    reg: Regularizers,
) -> Result<Sweep, Vec<Diag>> {
    sweep_of(field, model, &kept.how, &kept.sol, dl_dy, reg)
}

/// [`sweep`] of the solution `sol`, solved as `how` says (a batch's row, in place).
pub(super) fn sweep_of(
    field: &mut Option<JitVjpField>,
    model: &Model,
    how: &Solved,
    sol: &Solution,
    dl_dy: &[f64],
    reg: Regularizers,
) -> Result<Sweep, Vec<Diag>> {
    check_weights(reg, how.tab)?;
    if dl_dy.len() != sol.us.len() {
        return Err(bad_arg(
            format!(
                "the cotangent has {} values but the solve saved {} states of {} values ({})",
                dl_dy.len(),
                sol.ts.len(),
                model.state_size,
                sol.us.len()
            ),
            "give dL/dy with one row per saved time and one column per state (the shape of the solution's y)",
        ));
    }
    check_finite(dl_dy)?;
    let compile_start = Instant::now();
    let field = with_params(field, model, &how.p)?;
    let compile = compile_start.elapsed();
    let run_start = Instant::now();
    let aopts = AdjointOptions {
        error_weight: reg.error,
        stiffness_weight: reg.stiffness,
        ..AdjointOptions::new(how.rtol, how.atol)
    };
    let g = grad::adjoint(how.tab, field, sol, dl_dy, &aopts).map_err(|e| vec![Diag::from(e)])?;
    let mut dp = g.dp;
    if !how.y0_given {
        let through_init =
            grad::initial_state_vjp(model, &how.p, &[], how.t0, &g.du0).map_err(|d| vec![d])?;
        grad::add_into(&mut dp, &through_init);
    }
    let (error_estimate, stiffness) = grad::recorded_regularizers(sol);
    Ok(Sweep {
        dy0: g.du0,
        dp,
        error_estimate,
        stiffness,
        timing: Timing::new(compile, run_start.elapsed(), 1),
    })
}

/// The regularizer weights must be finite, and `R_S` needs a method with a stiffness estimate.
pub(super) fn check_weights(reg: Regularizers, tab: &Tableau) -> Result<(), Vec<Diag>> {
    finite_weights(reg)?;
    if reg.stiffness != 0.0 && tab.stiffness_pair.is_none() {
        return Err(bad_arg(
            format!(
                "`{}` has no stiffness estimate, so stiffness_weight must be 0",
                tab.name
            ),
            "use an adaptive explicit method (tsit5, dopri5, bs3, ...), whose stages give the estimate",
        ));
    }
    Ok(())
}

/// The regularizer weights must be finite numbers.
pub(super) fn finite_weights(reg: Regularizers) -> Result<(), Vec<Diag>> {
    for (w, what) in [
        (reg.error, "error_weight"),
        (reg.stiffness, "stiffness_weight"),
    ] {
        if !w.is_finite() {
            return Err(bad_arg(
                format!("{what} = {w} is not a finite number"),
                "give a finite weight (0 turns the regularizer off)",
            ));
        }
    }
    Ok(())
}

/// Every value of the cotangent `dL/dy` must be finite.
pub(super) fn check_finite(dl_dy: &[f64]) -> Result<(), Vec<Diag>> {
    match dl_dy.iter().position(|v| !v.is_finite()) {
        Some(k) => Err(bad_arg(
            format!(
                "the cotangent's value {} at index {k} is not a finite number",
                dl_dy[k]
            ),
            "give finite values of dL/dy",
        )),
        None => Ok(()),
    }
}

/// `field`'s kernels with parameters `p`, compiled for `model` first if it holds none.
fn with_params<'f>(
    field: &'f mut Option<JitVjpField>,
    model: &Model,
    p: &[f64],
) -> Result<&'f mut JitVjpField, Vec<Diag>> {
    match field {
        Some(f) => {
            f.set_params(p).map_err(|d| vec![d])?;
            Ok(f)
        }
        None => Ok(field.insert(JitVjpField::new(model, p, &[]).map_err(|d| vec![d])?)),
    }
}
