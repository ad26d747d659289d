//! The local regularizers (the 2023 variant): from a sampled time `t_r` and the state there,
//! take ONE step with the automatic initial step size and penalise `E·|h|` (and/or `S·|h|`).
//! `u(t_r)` and `h` are constants of the backward pass, so only `dp` is returned.
//!
//! Sampling: unbiased, `t_r ~ U[t0, t1]` with the state from the dense output; biased, `t_r`
//! one of the accepted step times of the main solve, with the state kept there.

use rand::Rng;

use crate::solve::{Solution, SolveError, Tableau, Work, initial_step, rk_step};

use super::adjoint::{AdjointOptions, adjoint};
use super::field::VjpField;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    Unbiased,
    Biased,
}

/// One local term: its step, the two estimates, the weighted value and its gradient.
#[derive(Clone, Debug)]
pub struct LocalTerm {
    pub t: f64,
    pub h: f64,
    pub error: Option<f64>,
    pub stiffness: Option<f64>,
    /// `w_E·E·|h| + w_S·S·|h|`.
    pub value: f64,
    pub dp: Vec<f64>,
}

/// Draws `t_r` and the state there from a solution: unbiased needs `sol.dense`, biased the
/// kept starting states (`keep_stages`, no checkpoints) or a solution saved at every step.
pub fn sample<R: Rng + ?Sized>(
    sol: &Solution,
    sampling: Sampling,
    rng: &mut R,
) -> Result<(f64, Vec<f64>), SolveError> {
    let missing = |what: &str| SolveError::InvalidOption(format!("the solution keeps no {what}"));
    let (Some(first), Some(last)) = (sol.steps.first(), sol.steps.last()) else {
        return Err(missing("steps"));
    };
    match sampling {
        Sampling::Unbiased => {
            let (a, b) = (first.t, last.t + last.h);
            let t = a + (b - a) * rng.random::<f64>();
            let u = sol.dense.as_ref().and_then(|d| d.eval(t));
            u.map(|u| (t, u)).ok_or_else(|| missing("dense output"))
        }
        Sampling::Biased => {
            let j = rng.random_range(0..sol.steps.len());
            let step = &sol.steps[j];
            let kept = step.stages.as_ref().map(|g| g.u0.clone());
            // Saved at t0 and every step end: row j is the state at step j's start.
            let saved = (sol.ts.get(j) == Some(&step.t))
                .then(|| sol.u(j).map(<[f64]>::to_vec))
                .flatten();
            kept.or(saved)
                .map(|u| (step.t, u))
                .ok_or_else(|| missing("state at the step times"))
        }
    }
}

/// The local term at `(t_r, u_r)`, stepping towards `t1`.
pub fn local_term<F: VjpField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    t_r: f64,
    u_r: &[f64],
    t1: f64,
    opts: &AdjointOptions,
) -> Result<LocalTerm, SolveError> {
    let n = f.dim();
    if u_r.len() != n {
        return Err(SolveError::InvalidOption(format!(
            "the state has {} values but the vector field has dimension {n}",
            u_r.len()
        )));
    }
    let tol = (opts.rtol, opts.atol);
    let mut f0 = vec![0.0; n];
    f.eval(t_r, u_r, &mut f0);
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    let (h, _) = initial_step(f, tab.order, t_r, t1, u_r, &f0, tol, (&mut a, &mut b));
    local_step(tab, f, t_r, u_r, h, opts)
}

/// The local term of one step of size `h` (held constant) from `(t_r, u_r)`.
pub fn local_step<F: VjpField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    t_r: f64,
    u_r: &[f64],
    h: f64,
    opts: &AdjointOptions,
) -> Result<LocalTerm, SolveError> {
    let n = f.dim();
    if u_r.len() != n {
        return Err(SolveError::InvalidOption(format!(
            "the state has {} values but the vector field has dimension {n}",
            u_r.len()
        )));
    }
    let tol = (opts.rtol, opts.atol);
    let mut f0 = vec![0.0; n];
    f.eval(t_r, u_r, &mut f0);
    let mut term = LocalTerm {
        t: t_r,
        h,
        error: None,
        stiffness: None,
        value: 0.0,
        dp: vec![0.0; f.n_params()],
    };
    if h == 0.0 || !h.is_finite() {
        return Ok(term);
    }
    let mut w = Work::new(tab, n);
    let r = rk_step(tab, f, t_r, u_r, h, &f0, tol, &mut w);
    term.error = r.error;
    term.stiffness = r.stiffness;
    term.value = h.abs()
        * (opts.error_weight * r.error.unwrap_or(0.0)
            + opts.stiffness_weight * r.stiffness.unwrap_or(0.0));
    // The one step as a solution with no saved states: only the regularizers seed the sweep.
    let one = crate::solve::Solution {
        method: tab.name,
        dim: n,
        ts: Vec::new(),
        us: Vec::new(),
        steps: vec![crate::solve::StepRecord {
            t: t_r,
            h,
            error_estimate: r.error,
            stiffness_estimate: r.stiffness,
            nfe: r.nfe,
            stages: Some(Box::new(crate::solve::Stages {
                u0: u_r.to_vec(),
                k: w.k.clone(),
            })),
        }],
        stats: Default::default(),
        dense: None,
    };
    term.dp = adjoint(tab, f, &one, &[], opts)?.dp;
    Ok(term)
}
