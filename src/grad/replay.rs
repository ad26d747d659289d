//! Re-running a solve on a recorded step sequence: the same tableau, start times and step
//! sizes, with whatever field (perturbed parameters, another initial state). This is the
//! function the discrete adjoint differentiates, so finite differences of a replay are what the
//! adjoint must match; finite differences through the adaptive controller are not.
//!
//! Invariant: the stepper, the first-stage reuse and the interpolant are the solver's own, so
//! replaying the unperturbed problem reproduces the solve bit for bit.

use crate::solve::{
    Interpolant, Solution, SolveError, SolveOptions, Stages, Stats, StepData, StepRecord, Tableau,
    VectorField, Work, interpolate, rk_step,
};

use super::saves::{SaveAt, locate, step_end};

/// The `(t_j, h_j)` of every accepted step.
pub fn step_sequence(sol: &Solution) -> Vec<(f64, f64)> {
    sol.steps.iter().map(|s| (s.t, s.h)).collect()
}

/// Takes exactly the steps `(t_j, h_j)` from `u0` (no control, no rejections). Uses of `opts`:
/// `rtol`/`atol` (for the recorded `E_j`), `save_at` (empty: `t0` and every step end),
/// `keep_stages` and `checkpoint_every`.
pub fn replay<F: VectorField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    u0: &[f64],
    steps: &[(f64, f64)],
    opts: &SolveOptions,
) -> Result<Solution, SolveError> {
    let n = f.dim();
    if u0.len() != n {
        return Err(SolveError::InvalidOption(format!(
            "the initial state has {} values but the vector field has dimension {n}",
            u0.len()
        )));
    }
    let Some(&(t0, _)) = steps.first() else {
        return Err(SolveError::InvalidOption("no steps to replay".into()));
    };
    let ts: Vec<f64> = if opts.save_at.is_empty() {
        std::iter::once(t0)
            .chain((0..steps.len()).map(|j| step_end(steps, j)))
            .collect()
    } else {
        opts.save_at.clone()
    };
    let locs = locate(&ts, t0, steps)?;
    let s = tab.stages();
    let mut sol = Solution {
        method: tab.name,
        dim: n,
        ts: ts.clone(),
        us: vec![0.0; ts.len() * n],
        steps: Vec::with_capacity(steps.len()),
        stats: Stats::default(),
        dense: None,
    };
    for (row, loc) in locs.iter().enumerate() {
        if *loc == SaveAt::Start {
            sol.us[row * n..(row + 1) * n].copy_from_slice(u0);
        }
    }
    let mut rows = locs.iter().enumerate().filter_map(|(row, loc)| match *loc {
        SaveAt::Step { step, theta } => Some((row, step, theta)),
        SaveAt::Start => None,
    });
    let mut next_row = rows.next();

    let mut u = u0.to_vec();
    let mut f_cur = vec![0.0; n];
    let mut f_next = vec![0.0; n];
    let mut interp = vec![0.0; n];
    f.eval(t0, &u, &mut f_cur);
    let mut nfe = 1u64;
    let mut w = Work::new(tab, n);
    for (j, &(t, h)) in steps.iter().enumerate() {
        let r = rk_step(tab, f, t, &u, h, &f_cur, (opts.rtol, opts.atol), &mut w);
        nfe += u64::from(r.nfe);
        let mut step_nfe = r.nfe;
        let t_next = step_end(steps, j);
        if tab.fsal {
            f_next.copy_from_slice(&w.k[(s - 1) * n..s * n]);
        } else if j + 1 < steps.len() || matches!(tab.interpolant, Interpolant::Hermite) {
            f.eval(t_next, &w.u1, &mut f_next);
            nfe += 1;
            step_nfe += 1;
        }
        let data = StepData {
            h,
            u0: &u,
            u1: &w.u1,
            k: &w.k,
            f1: &f_next,
        };
        while let Some((row, step, theta)) = next_row {
            if step != j {
                break;
            }
            interpolate(tab, &data, theta, &mut interp);
            sol.us[row * n..(row + 1) * n].copy_from_slice(&interp);
            next_row = rows.next();
        }
        let keep = match opts.checkpoint_every {
            _ if !opts.keep_stages => None,
            None => Some(w.k.clone()),
            Some(every) if j.is_multiple_of(every.max(1)) => Some(Vec::new()),
            Some(_) => None,
        };
        sol.steps.push(StepRecord {
            t,
            h,
            error_estimate: r.error,
            stiffness_estimate: r.stiffness,
            nfe: step_nfe,
            stages: keep.map(|k| Box::new(Stages { u0: u.clone(), k })),
        });
        u.copy_from_slice(&w.u1);
        std::mem::swap(&mut f_cur, &mut f_next);
    }
    sol.stats.nfe = nfe;
    sol.stats.accepted = steps.len() as u64;
    Ok(sol)
}
