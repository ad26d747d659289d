//! `glassbox solve --grad` for SDE models: the sensitivity of the expected final value to
//! every parameter. `L` is the mean of `u(T1)` over the `--paths` paths (seed `--seed`, the
//! paths `glassbox solve` prints) and the state values; the gradient is the discrete adjoint
//! of each path on its own Brownian path (`grad::final_mean_gradient`), exact for the
//! computation done. Output: CSV `param,gradient`, one row per parameter element, or JSON
//! (`-o out.json`) with `L`, the gradient by parameter, statistics and timing (`--repeat`
//! times forward + gradient, the JIT compile apart: what the side-by-side benchmarks read).

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use super::solve::{SolveArgs, Timing, element_names, print_stats, repeat_median, write_atomic};
use super::solve_sde::Plan;
use crate::diag::Diag;
use crate::grad::{FinalMean, JitSdeVjp, final_mean_gradient};
use crate::sema::Model;
use crate::solve::sde::SdeMethod;
use crate::solve::{self, Stats};

pub(crate) fn solve_grad(args: &SolveArgs, model: &Model, plan: &Plan) -> Result<(), Vec<Diag>> {
    let p = solve::param_values(model);
    let compile_start = Instant::now();
    let milstein = plan.method == SdeMethod::Milstein;
    let mut field = JitSdeVjp::new(model, &p, &[], milstein).map_err(|d| vec![d])?;
    let compile = compile_start.elapsed();
    let Some((g, median)) = repeat_median(args.repeat, || {
        final_mean_gradient(
            model,
            plan.method,
            &mut field,
            &p,
            (plan.t0, plan.t1),
            &plan.opts,
            plan.seed,
            plan.paths,
        )
        .map_err(|d| vec![d])
    })?
    else {
        return Ok(());
    };
    let timing = Timing::new(compile, median, args.repeat);
    let csv_to_stdout = args.output.is_none();
    match &args.output {
        Some(path) if path.extension().is_some_and(|e| e == "json") => {
            write_atomic(path, to_json(model, plan, &g, timing).as_bytes())
        }
        Some(path) => write_atomic(path, to_csv(model, &g).as_bytes()),
        None => {
            print!("{}", to_csv(model, &g));
            Ok(())
        }
    }
    .map_err(|d| vec![d])?;
    if args.stats {
        print_stats(&stats_text(plan, &g, timing), csv_to_stdout);
    }
    Ok(())
}

fn to_csv(model: &Model, g: &FinalMean) -> String {
    let mut out = String::from("param,gradient\n");
    for q in &model.params {
        let values = g.dp.get(q.offset..q.offset + q.shape.size()).unwrap_or(&[]);
        for (name, v) in element_names(&q.name, &q.shape).iter().zip(values) {
            let _ = writeln!(out, "{name},{v:e}");
        }
    }
    out
}

#[derive(Serialize)]
struct ParamGrad<'a> {
    name: &'a str,
    /// `[]`, `[n]` or `[rows, cols]`; `grad` is row-major.
    shape: Vec<usize>,
    grad: &'a [f64],
}

#[derive(Serialize)]
struct JsonOut<'a> {
    model: &'a str,
    method: &'a str,
    seed: u64,
    paths: usize,
    t0: f64,
    t1: f64,
    /// What `loss` is.
    of: &'static str,
    loss: f64,
    params: Vec<ParamGrad<'a>>,
    /// The forward solves', summed over paths.
    stats: Stats,
    /// `median_solve_ms`: forward solves and gradient together.
    timing: Timing,
}

const OF: &str = "mean of u(t1) over the paths and the state values";

fn to_json(model: &Model, plan: &Plan, g: &FinalMean, timing: Timing) -> String {
    let params = model
        .params
        .iter()
        .map(|q| ParamGrad {
            name: &q.name,
            shape: crate::train::io::dims(&q.shape),
            grad: g.dp.get(q.offset..q.offset + q.shape.size()).unwrap_or(&[]),
        })
        .collect();
    let out = JsonOut {
        model: &model.name,
        method: plan.method.name(),
        seed: plan.seed,
        paths: plan.paths,
        t0: plan.t0,
        t1: plan.t1,
        of: OF,
        loss: g.loss,
        params,
        stats: g.stats,
        timing,
    };
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

fn stats_text(plan: &Plan, g: &FinalMean, timing: Timing) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "method            {}", plan.method.name());
    let _ = writeln!(out, "paths             {} (seed {})", plan.paths, plan.seed);
    let _ = writeln!(out, "loss              {:.12e} ({OF})", g.loss);
    let _ = writeln!(out, "nfe               {} (forward)", g.stats.nfe);
    let _ = writeln!(
        out,
        "steps             {} accepted, {} rejected",
        g.stats.accepted, g.stats.rejected
    );
    let _ = writeln!(out, "compile time      {:.3} ms", timing.compile_ms);
    let what = if timing.repeat > 1 {
        format!(" (median of {})", timing.repeat)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "gradient time     {:.3} ms{what} (forward + gradient)",
        timing.median_solve_ms
    );
    out
}
