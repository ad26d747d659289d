//! `solve --grad` for SDE models: the sensitivity of the expected final value to every
//! parameter. `L` is the mean of `u(T1)` over the plan's paths (the paths an SDE solve draws)
//! and the state values; the gradient is the discrete adjoint of each path on its own
//! Brownian path (`grad::final_mean_gradient`), exact for the computation done. Timed
//! `repeat` times forward + gradient, the JIT compile apart (what the side-by-side
//! benchmarks read).

use std::time::Instant;

use super::sde::Plan;
use super::solve::{Timing, repeat_median};
use crate::diag::Diag;
use crate::grad::{FinalMean, JitSdeVjp, final_mean_gradient};
use crate::sema::Model;
use crate::solve::sde::SdeMethod;

/// What `L` is, in the JSON output and the statistics.
pub const OF: &str = "mean of u(t1) over the paths and the state values";

/// `L`, its gradient and how long they took.
pub struct GradRun {
    pub g: FinalMean,
    pub timing: Timing,
}

/// The gradient of `L` at parameters `p`, computed `repeat` times (at least once).
pub fn run(model: &Model, plan: &Plan, p: &[f64], repeat: usize) -> Result<GradRun, Vec<Diag>> {
    let compile_start = Instant::now();
    let milstein = plan.method == SdeMethod::Milstein;
    let mut field = JitSdeVjp::new(model, p, &[], milstein).map_err(|d| vec![d])?;
    let compile = compile_start.elapsed();
    let repeat = repeat.max(1);
    let (g, median) = repeat_median(repeat, || {
        final_mean_gradient(
            model,
            plan.method,
            &mut field,
            p,
            (plan.t0, plan.t1),
            &plan.opts,
            plan.seed,
            plan.paths,
        )
        .map_err(|d| vec![d])
    })?;
    Ok(GradRun {
        g,
        timing: Timing::new(compile, median, repeat),
    })
}
