//! JSON: one pretty-printed document and a newline, for tools (the side-by-side benchmarks
//! read `timing`).

use serde::Serialize;

use crate::app::grad::OF;
use crate::app::sde;
use crate::app::solve::Timing;
use crate::grad::FinalMean;
use crate::sema::Model;
use crate::solve::sde::SdeSolution;
use crate::solve::{Solution, Stats};

/// What to write as JSON.
pub enum Json<'a> {
    /// `glassbox solve` of an ODE model.
    Solve {
        model: &'a str,
        names: &'a [String],
        sol: &'a Solution,
        timing: Timing,
    },
    /// `glassbox solve` of an SDE model: every path on the plan's grid.
    Paths {
        model: &'a str,
        names: &'a [String],
        plan: &'a sde::Plan,
        sol: &'a SdeSolution,
        timing: Timing,
    },
    /// `glassbox solve --grad`: `L` and its gradient by parameter.
    Gradient {
        model: &'a Model,
        plan: &'a sde::Plan,
        g: &'a FinalMean,
        timing: Timing,
    },
    /// A standalone binary: one solve per input sample.
    Samples {
        model: &'a str,
        names: &'a [String],
        sols: &'a [Solution],
    },
}

pub fn to_json(what: &Json) -> String {
    match *what {
        Json::Solve {
            model,
            names,
            sol,
            timing,
        } => pretty(&SolveOut {
            model,
            method: sol.method,
            names,
            t: &sol.ts,
            u: rows(sol),
            stats: sol.stats,
            timing,
        }),
        Json::Paths {
            model,
            names,
            plan,
            sol,
            timing,
        } => pretty(&PathsOut {
            model,
            method: plan.method.name(),
            seed: plan.seed,
            names,
            t: &plan.opts.save_at,
            u: sol.paths.iter().map(rows).collect(),
            stats: sol.stats,
            timing,
        }),
        Json::Gradient {
            model,
            plan,
            g,
            timing,
        } => pretty(&GradientOut {
            model: &model.name,
            method: plan.method.name(),
            seed: plan.seed,
            paths: plan.paths,
            t0: plan.t0,
            t1: plan.t1,
            of: OF,
            loss: g.loss,
            params: model
                .params
                .iter()
                .map(|q| ParamGrad {
                    name: &q.name,
                    shape: crate::train::io::dims(&q.shape),
                    grad: g.dp.get(q.offset..q.offset + q.shape.size()).unwrap_or(&[]),
                })
                .collect(),
            stats: g.stats,
            timing,
        }),
        Json::Samples { model, names, sols } => pretty(&SamplesOut {
            model,
            names,
            samples: sols
                .iter()
                .map(|s| SampleOut {
                    method: s.method,
                    t: &s.ts,
                    u: rows(s),
                    stats: s.stats,
                })
                .collect(),
        }),
    }
}

fn pretty(out: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(out).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// One row of states per saved time.
fn rows(sol: &Solution) -> Vec<&[f64]> {
    (0..sol.ts.len()).filter_map(|i| sol.u(i)).collect()
}

#[derive(Serialize)]
struct SolveOut<'a> {
    model: &'a str,
    method: &'a str,
    names: &'a [String],
    t: &'a [f64],
    /// One row per saved time.
    u: Vec<&'a [f64]>,
    stats: Stats,
    timing: Timing,
}

#[derive(Serialize)]
struct PathsOut<'a> {
    model: &'a str,
    method: &'a str,
    seed: u64,
    names: &'a [String],
    /// The saved times, shared by every path.
    t: &'a [f64],
    /// `u[path][time]`: one row of states per saved time.
    u: Vec<Vec<&'a [f64]>>,
    /// Summed over paths.
    stats: Stats,
    timing: Timing,
}

#[derive(Serialize)]
struct ParamGrad<'a> {
    name: &'a str,
    /// `[]`, `[n]` or `[rows, cols]`; `grad` is row-major.
    shape: Vec<usize>,
    grad: &'a [f64],
}

#[derive(Serialize)]
struct GradientOut<'a> {
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

#[derive(Serialize)]
struct SampleOut<'a> {
    method: &'a str,
    t: &'a [f64],
    u: Vec<&'a [f64]>,
    stats: Stats,
}

#[derive(Serialize)]
struct SamplesOut<'a> {
    model: &'a str,
    names: &'a [String],
    /// One per sample (one for a model without inputs).
    samples: Vec<SampleOut<'a>>,
}
