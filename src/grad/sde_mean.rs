//! The gradient of an SDE's expected final value: `L = (1/(N·n)) Σ_k Σ_i u_k(t1)_i`, the mean
//! over `N` sample paths and the `n` state values of the state at the span's end, with
//! respect to every parameter (`glassbox solve --grad`). The paths are those of
//! `solve::sde::solve_sde` with the same seed: path `k` is driven by the tree
//! `BrownianTree::with_depth(seed, k, t0, t1, m, tree_depth(..))`, so `--grad` differentiates
//! exactly the paths `glassbox solve` prints.
//!
//! Each path's gradient is its own discrete adjoint (`sde_adjoint`, seeded `1/(N·n)` at
//! `u(t1)`); `dL/du0` is summed over paths and handed once to the initial state's VJP, so a
//! parameter in `state u = [a, 0]` gets its share too.

use super::init::initial_state_vjp;
use super::sde::{JitSdeVjp, sde_adjoint};
use crate::diag::Diag;
use crate::sema::Model;
use crate::solve::Stats;
use crate::solve::sde::{BrownianTree, SdeField, SdeMethod, SdeOptions, solve_path, tree_depth};

/// The mean final value over the paths and its gradient.
#[derive(Clone, Debug)]
pub struct FinalMean {
    /// `L`, the mean of `u(t1)` over paths and state values.
    pub loss: f64,
    /// `dL/dp`, laid out like the model's parameter vector.
    pub dp: Vec<f64>,
    /// The forward solves' counts, summed over the paths.
    pub stats: Stats,
}

/// `L` and `dL/dp` for `paths` paths of Brownian seed `seed` on `[t0, t1]`, solved with
/// `method` and `opts` (its `save_at` is replaced by `[t0, t1]`: only the end is needed) from
/// the model's initial state at parameters `p`. `field` must have been built for `model`
/// with parameters `p` (and the Milstein kernels when `method` is Milstein).
#[allow(clippy::too_many_arguments)]
pub fn final_mean_gradient(
    model: &Model,
    method: SdeMethod,
    field: &mut JitSdeVjp,
    p: &[f64],
    (t0, t1): (f64, f64),
    opts: &SdeOptions,
    seed: u64,
    paths: usize,
) -> Result<FinalMean, Diag> {
    let u0 = crate::solve::initial_state(model, p, &[], t0)?;
    let n = u0.len();
    let opts = SdeOptions {
        save_at: vec![t0, t1],
        ..opts.clone()
    };
    let m = field.noise().processes();
    let depth = tree_depth(t0, t1, &opts);
    let w = 1.0 / (paths.max(1) * n.max(1)) as f64;
    let mut out = FinalMean {
        loss: 0.0,
        dp: vec![0.0; p.len()],
        stats: Stats::default(),
    };
    let mut du0 = vec![0.0; n];
    let mut seeds = vec![0.0; 2 * n];
    seeds[n..].fill(w);
    for k in 0..paths {
        let tree = BrownianTree::with_depth(seed, k as u64, t0, t1, m, depth);
        let sol = solve_path(method, field, &u0, &opts, &tree).map_err(Diag::from)?;
        let end = sol.us.len().saturating_sub(n);
        out.loss += sol.us[end..].iter().sum::<f64>() * w;
        out.stats.nfe += sol.stats.nfe;
        out.stats.accepted += sol.stats.accepted;
        out.stats.rejected += sol.stats.rejected;
        let g = sde_adjoint(method, field, &sol, &u0, &tree, &seeds).map_err(Diag::from)?;
        for (a, d) in out.dp.iter_mut().zip(&g.dp) {
            *a += d;
        }
        for (a, d) in du0.iter_mut().zip(&g.du0) {
            *a += d;
        }
    }
    let init = initial_state_vjp(model, p, &[], t0, &du0)?;
    for (a, d) in out.dp.iter_mut().zip(&init) {
        *a += d;
    }
    Ok(out)
}
