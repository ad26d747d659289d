//! The local error-estimate and stiffness regularizers of an SDE solve (the 2023 variant on
//! the replayed Brownian path): from a sampled time `t_r` and the state there, ONE step of the
//! method with the SDE solver's automatic initial step size, driven by the same path's
//! increments over `[t_r, t_r + h]`, penalised by `w_E·E·|h| + w_S·S·|h|`. `u(t_r)` and `h`
//! are constants of the backward pass, so only `dp` is returned.
//!
//! Sampling: biased, `t_r` one of the accepted step starts, with the replayed state there;
//! unbiased, `t_r ~ U[t0, t1]`, the state there one step of the method (the same path) from
//! the start of the accepted step containing `t_r` — the SDE solves have no dense output, and
//! this is the solver's own state at `t_r` had it stopped there.

use rand::Rng;

use super::local::Sampling;
use super::sde::{Replayed, SdeRegularizer, SdeVjpField, Sweep, redo_step, replay, step_vjp};
use super::sde_reg::{ErrorSeeds, StiffnessSeeds, error_seeds, stiffness_seeds};
use crate::solve::sde::{BrownianPoint, BrownianTree, SdeMethod, Work, increments, initial_step};
use crate::solve::{Solution, SolveError};

/// One local term: its step, the estimates, `w_E·E·|h| + w_S·S·|h|` and its gradient in `p`.
#[derive(Clone, Debug)]
pub struct SdeLocalTerm {
    pub t: f64,
    pub h: f64,
    pub error: f64,
    /// `S` of the step; `None` when the stiffness weight is 0 (not computed: it may cost an
    /// evaluation).
    pub stiffness: Option<f64>,
    pub value: f64,
    pub dp: Vec<f64>,
}

/// Per-component `ΔW`, `I_(1,0)` of `tree` over `[a, b]`.
fn path_increments(tree: &BrownianTree, of: &[usize], a: f64, b: f64) -> (Vec<f64>, Vec<f64>) {
    let m = tree.processes();
    let (mut pa, mut pb) = (BrownianPoint::origin(a, m), BrownianPoint::origin(a, m));
    tree.point(a, &mut pa);
    tree.point(b, &mut pb);
    let (mut dw, mut i10) = (vec![0.0; m], vec![0.0; m]);
    increments(&pa, &pb, &mut dw, &mut i10);
    (
        of.iter().map(|&k| dw[k]).collect(),
        of.iter().map(|&k| i10[k]).collect(),
    )
}

/// Draws `t_r` and the state there from the solve `sol` of `u0` on `tree`.
#[allow(clippy::too_many_arguments)]
pub fn sde_sample<F: SdeVjpField + ?Sized, R: Rng + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    sol: &Solution,
    u0: &[f64],
    tree: &BrownianTree,
    sampling: Sampling,
    rng: &mut R,
) -> Result<(f64, Vec<f64>), SolveError> {
    let n = field.dim();
    let (mut s, mut w) = (Sweep::new(n, field.n_params()), Work::new(n));
    let Replayed { ts, us, .. } = replay(method, field, sol, u0, tree, &mut s, &mut w)?;
    let steps = sol.steps.len();
    if steps == 0 {
        return Err(SolveError::InvalidOption(
            "the solution keeps no steps".into(),
        ));
    }
    let (t, j) = match sampling {
        Sampling::Biased => {
            let j = rng.random_range(0..steps);
            (ts[j], j)
        }
        Sampling::Unbiased => {
            let t = ts[0] + (ts[steps] - ts[0]) * rng.random::<f64>();
            let j = ts[..steps].partition_point(|&x| x <= t).saturating_sub(1);
            (t, j)
        }
    };
    let u = &us[j * n..(j + 1) * n];
    if t <= ts[j] {
        return Ok((ts[j], u.to_vec()));
    }
    let (dw, i10) = path_increments(tree, field.noise().of(), ts[j], t);
    redo_step(
        method,
        field,
        (ts[j], t - ts[j]),
        u,
        (&dw, &i10),
        &mut s,
        &mut w,
    );
    Ok((t, w.u1.clone()))
}

/// The local term at `(t_r, u_r)` of the path `tree`, stepping towards `t1` with the automatic
/// initial step size; `reg.opts` the solve's tolerances and `delta`, `reg`'s weights those of
/// `E·|h|` and `S·|h|`.
pub fn sde_local_term<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    tree: &BrownianTree,
    (t_r, u_r): (f64, &[f64]),
    t1: f64,
    reg: &SdeRegularizer,
) -> Result<SdeLocalTerm, SolveError> {
    let n = field.dim();
    check(method, n, u_r)?;
    let (mut f0, mut g0) = (vec![0.0; n], vec![0.0; n]);
    field.drift(t_r, u_r, &mut f0);
    field.diffusion(t_r, u_r, &mut g0);
    let h = initial_step(u_r, &f0, &g0, t1 - t_r, reg.opts);
    sde_local_step(method, field, tree, (t_r, h), u_r, reg)
}

/// The local term of one step `(t_r, h)` (held constant) from `u_r` on the path `tree`.
pub fn sde_local_step<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    tree: &BrownianTree,
    (t_r, h): (f64, f64),
    u_r: &[f64],
    reg: &SdeRegularizer,
) -> Result<SdeLocalTerm, SolveError> {
    let n = field.dim();
    check(method, n, u_r)?;
    let np = field.n_params();
    let mut term = SdeLocalTerm {
        t: t_r,
        h,
        error: 0.0,
        stiffness: None,
        value: 0.0,
        dp: vec![0.0; np],
    };
    if h <= 0.0 || !h.is_finite() {
        return Ok(term);
    }
    let (mut s, mut w) = (Sweep::new(n, np), Work::new(n));
    let (dw, i10) = path_increments(tree, field.noise().of(), t_r, t_r + h);
    redo_step(method, field, (t_r, h), u_r, (&dw, &i10), &mut s, &mut w);
    let mut e = ErrorSeeds::new(n);
    term.error = error_seeds(u_r, &w, reg.opts, reg.error_weight * h, &mut e);
    let mut d = StiffnessSeeds::new(n);
    if reg.stiffness_weight != 0.0 {
        let weight = reg.stiffness_weight * h;
        term.stiffness = stiffness_seeds(method, field, (t_r, h), &mut w, weight, &mut d);
    }
    term.value =
        h * (reg.error_weight * term.error + reg.stiffness_weight * term.stiffness.unwrap_or(0.0));
    // `u_{n+1}` reads `p` through the stages: its part of `∂E` enters as the step's `λ`; the
    // cotangents left on `u_r` are dropped (a constant).
    let lam = e.u1.clone();
    let mut lu = lam.clone();
    step_vjp(
        method,
        field,
        (t_r, h),
        u_r,
        &w,
        &lam,
        (Some(&e), term.stiffness.map(|_| &d)),
        &mut s,
        &mut lu,
        &mut term.dp,
    );
    Ok(term)
}

fn check(method: SdeMethod, n: usize, u_r: &[f64]) -> Result<(), SolveError> {
    if !method.is_adaptive() {
        return Err(SolveError::InvalidOption(format!(
            "`{}` has no error or stiffness estimate",
            method.name()
        )));
    }
    if u_r.len() != n {
        return Err(SolveError::InvalidOption(format!(
            "the state has {} values but the SDE has dimension {n}",
            u_r.len()
        )));
    }
    Ok(())
}
