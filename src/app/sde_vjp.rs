//! The gradient of an SDE solve for a caller's loss over its sample paths: the Python
//! package's `Model.vjp` on an SDE model. The paths are the plan's, those `glassbox solve
//! --paths N --seed S` prints (path `k` driven by `BrownianTree::with_depth(seed, k, ..)`,
//! as `solve_sde` draws it); the caller gives `dL/dy` at every saved state of every path, and
//! each path's discrete adjoint on its own Brownian path (`grad::sde_adjoint_with`, exact for
//! the computation done, as `solve --grad`'s) gives its share of `dL/dy0` and `dL/dp`, with
//! the solver-heuristic regularizers `w_E R_E + w_S R_S` of every path added when weighted.

use std::time::Instant;

use super::bad_arg;
use super::sde::Plan;
use super::solve::{Timing, start_state};
use super::vjp::Regularizers;
use crate::diag::Diag;
use crate::grad::{self, JitSdeVjp, SdeRegularizer, add_into};
use crate::sema::Model;
use crate::solve::Solution;
use crate::solve::sde::{BrownianTree, SdeMethod, solve_path, tree_depth};

/// An SDE's paths and the gradient of the caller's loss over them.
pub struct SdeVjpRun {
    /// Every path's solution, in path order.
    pub paths: Vec<Solution>,
    /// `dL/dy0` (the paths share the initial state: their parts added).
    pub dy0: Vec<f64>,
    /// `dL/dp`, through the model's initial state too when `y0` was not given.
    pub dp: Vec<f64>,
    /// Every path's `R_E` and `R_S` (unweighted; `R_S` only computed where weighted).
    pub error_estimate: Vec<f64>,
    pub stiffness: Vec<f64>,
    pub timing: Timing,
}

/// The plan's paths from `y0` (else the model's initial state) with parameters `p`, and the
/// gradient of `L = Σ_k Σ_i ⟨dl_dy[k]_i, y_k(t_i)⟩ + w_E Σ_k R_E,k + w_S Σ_k R_S,k`
/// (`dl_dy`: path after path, each saved state's values row-major, the shape of the
/// solution's `y`). The plan must save at given times (every path then has the same).
pub fn run(
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0: Option<&[f64]>,
    dl_dy: &[f64],
    reg: Regularizers,
) -> Result<SdeVjpRun, Vec<Diag>> {
    super::vjp::finite_weights(reg)?;
    let n = model.state_size;
    let per = plan.opts.save_at.len() * n;
    if dl_dy.len() != plan.paths * per {
        return Err(bad_arg(
            format!(
                "the cotangent has {} values; {} paths of {} saved states of {n} values need {}",
                dl_dy.len(),
                plan.paths,
                plan.opts.save_at.len(),
                plan.paths * per
            ),
            "give dL/dy of the shape of the solution's y: (paths, len(t), n_states)",
        ));
    }
    super::vjp::check_finite(dl_dy)?;
    let u0 = start_state(model, p, plan.t0, y0)?;
    let compile_start = Instant::now();
    let milstein = plan.method == SdeMethod::Milstein;
    let mut field = JitSdeVjp::new(model, p, &[], milstein).map_err(|d| vec![d])?;
    let compile = compile_start.elapsed();
    let run_start = Instant::now();
    let m = crate::solve::sde::SdeField::noise(&field).processes();
    let depth = tree_depth(plan.t0, plan.t1, &plan.opts);
    let sreg = SdeRegularizer {
        opts: &plan.opts,
        error_weight: reg.error,
        stiffness_weight: reg.stiffness,
    };
    let (mut dy0, mut dp) = (vec![0.0; n], vec![0.0; p.len()]);
    let mut paths = Vec::with_capacity(plan.paths);
    let (mut error_estimate, mut stiffness) = (Vec::new(), Vec::new());
    for k in 0..plan.paths {
        let in_path = |e: crate::solve::SolveError| {
            let mut d = Diag::from(e);
            d.message = format!("path {k}: {}", d.message);
            vec![d]
        };
        let tree = BrownianTree::with_depth(plan.seed, k as u64, plan.t0, plan.t1, m, depth);
        let sol = solve_path(plan.method, &mut field, &u0, &plan.opts, &tree).map_err(in_path)?;
        let seeds = &dl_dy[k * per..(k + 1) * per];
        let (g, (r_e, r_s)) =
            grad::sde_adjoint_with(plan.method, &mut field, &sol, &u0, &tree, seeds, &sreg)
                .map_err(in_path)?;
        add_into(&mut dp, &g.dp);
        add_into(&mut dy0, &g.du0);
        error_estimate.push(r_e);
        stiffness.push(r_s);
        paths.push(sol);
    }
    if y0.is_none() {
        let init = grad::initial_state_vjp(model, p, &[], plan.t0, &dy0).map_err(|d| vec![d])?;
        add_into(&mut dp, &init);
    }
    Ok(SdeVjpRun {
        paths,
        dy0,
        dp,
        error_estimate,
        stiffness,
        timing: Timing::new(compile, run_start.elapsed(), 1),
    })
}
