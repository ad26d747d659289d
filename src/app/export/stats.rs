//! Statistics text (`--stats`, `:stats`): the solver's counters, the summed error and
//! stiffness estimates, and the compile and solve times, one aligned line each.

use std::fmt::Write as _;

use crate::app::grad::OF;
use crate::app::sde;
use crate::app::solve::Timing;
use crate::grad::FinalMean;
use crate::solve::Solution;
use crate::solve::sde::SdeSolution;

/// Whose statistics.
pub enum StatsOf<'a> {
    /// One ODE solve.
    Solve { sol: &'a Solution, timing: Timing },
    /// An SDE solve, summed over its paths.
    Paths {
        plan: &'a sde::Plan,
        sol: &'a SdeSolution,
        timing: Timing,
    },
    /// `solve --grad`: the forward solves and the gradient.
    Gradient {
        plan: &'a sde::Plan,
        g: &'a FinalMean,
        timing: Timing,
    },
}

pub fn stats_text(what: &StatsOf) -> String {
    let mut out = String::new();
    match *what {
        StatsOf::Solve { sol, timing } => {
            let s = &sol.stats;
            let sum_e: f64 = sol
                .steps
                .iter()
                .map(|st| st.error_estimate.unwrap_or(0.0) * st.h.abs())
                .sum();
            let sum_s: f64 = sol
                .steps
                .iter()
                .map(|st| st.stiffness_estimate.unwrap_or(0.0) * st.h.abs())
                .sum();
            let _ = writeln!(out, "method            {}", sol.method);
            let _ = writeln!(out, "nfe               {}", s.nfe);
            steps(&mut out, s.accepted, s.rejected);
            let _ = writeln!(out, "stiff steps       {}", s.stiff_steps);
            let _ = writeln!(out, "switches          {}", s.switches);
            let _ = writeln!(out, "jacobians         {}", s.jacobian_evals);
            let _ = writeln!(out, "lu factorizations {}", s.lu_factorizations);
            let _ = writeln!(out, "sum E_j*|h_j|     {sum_e:.6e}");
            let _ = writeln!(out, "sum S_j*|h_j|     {sum_s:.6e}");
            times(&mut out, timing, "solve time        ", "");
        }
        StatsOf::Paths { plan, sol, timing } => {
            let s = &sol.stats;
            let paths = sol.paths.len().max(1) as f64;
            let (sum_e, sum_s) = sol
                .paths
                .iter()
                .map(crate::grad::recorded_regularizers)
                .fold((0.0, 0.0), |(e, s), (a, b)| (e + a, s + b));
            let _ = writeln!(out, "method            {}", plan.method.name());
            let _ = writeln!(
                out,
                "paths             {} (seed {})",
                sol.paths.len(),
                plan.seed
            );
            let solved = match sol.batch {
                Some(b) => format!(
                    "batched, {} calls, mean batch {:.1} paths",
                    b.calls,
                    b.row_evals as f64 / b.calls.max(1) as f64
                ),
                None => "one by one".to_string(),
            };
            let _ = writeln!(out, "paths solved      {solved}");
            let _ = writeln!(out, "nfe               {}", s.nfe);
            steps(&mut out, s.accepted, s.rejected);
            let _ = writeln!(
                out,
                "steps per path    {:.1} (mean)",
                s.accepted as f64 / paths
            );
            let summed = |sum: f64| {
                format!(
                    "{sum:.6e} (summed over paths; {:.6e} per path)",
                    sum / paths
                )
            };
            let e = if plan.method.is_adaptive() {
                summed(sum_e)
            } else {
                "- (no error estimate)".to_string()
            };
            let _ = writeln!(out, "sum E_j*|h_j|     {e}");
            let s = if plan.method.is_adaptive() && plan.opts.stiffness {
                summed(sum_s)
            } else {
                "- (no stiffness estimate)".to_string()
            };
            let _ = writeln!(out, "sum S_j*|h_j|     {s}");
            times(&mut out, timing, "solve time        ", "");
        }
        StatsOf::Gradient { plan, g, timing } => {
            let _ = writeln!(out, "method            {}", plan.method.name());
            let _ = writeln!(out, "paths             {} (seed {})", plan.paths, plan.seed);
            let _ = writeln!(out, "loss              {:.12e} ({OF})", g.loss);
            let _ = writeln!(out, "nfe               {} (forward)", g.stats.nfe);
            steps(&mut out, g.stats.accepted, g.stats.rejected);
            times(
                &mut out,
                timing,
                "gradient time     ",
                " (forward + gradient)",
            );
        }
    }
    out
}

fn steps(out: &mut String, accepted: u64, rejected: u64) {
    let _ = writeln!(
        out,
        "steps             {accepted} accepted, {rejected} rejected"
    );
}

/// The compile time and the (median) solve time, labelled `label`, `suffix` after it.
fn times(out: &mut String, timing: Timing, label: &str, suffix: &str) {
    let _ = writeln!(out, "compile time      {:.3} ms", timing.compile_ms);
    let what = if timing.repeat > 1 {
        format!(" (median of {})", timing.repeat)
    } else {
        String::new()
    };
    let _ = writeln!(out, "{label}{:.3} ms{what}{suffix}", timing.median_solve_ms);
}
