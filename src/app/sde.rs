//! An SDE solve: compile drift and diffusion ([`JitSde`]), solve `paths` Brownian paths of
//! generator `seed`, every path saved on one grid.
//!
//! Every path is saved on one grid (SDE steps land on save times, nothing is interpolated):
//! `--at`, the model's `at` list, or else [`DEFAULT_POINTS`] equally spaced times over the
//! span (`--over` or the model's `over`). So the mean and deviation are taken over paths at
//! the same times. Defaults: `--seed 0`; `--paths 1`, or [`PLOT_PATHS`] with a plot (a band
//! over one path says nothing).

use std::time::Instant;

use super::SolveRequest;
use super::bad_arg;
use super::solve::{Timing, dt_flag, grid, repeat_median, start_state, time_span};
use crate::diag::{Diag, did_you_mean};
use crate::sema::Model;
use crate::solve;
use crate::solve::registry;
use crate::solve::sde::{
    JitBatchSde, JitSde, SdeBatchField, SdeMethod, SdeOptions, SdeSolution, sde_method,
};
use crate::solve::threads::Pool;
use crate::train;

/// Save times when neither `--at` nor the model's `at` gives them.
pub const DEFAULT_POINTS: usize = 101;
/// Paths drawn by `--plot` when `--paths` is not given.
pub const PLOT_PATHS: usize = 100;
/// The most paths one run solves (memory: paths × times × states values).
pub const MAX_PATHS: usize = 1_000_000;
/// The method of an SDE model without a solve clause: adaptive, strong order 1.5, and the
/// stability-optimised SRI (StochasticDiffEq.jl's choice for diagonal noise).
pub const DEFAULT_METHOD: &str = registry::Method::Sosri.name();

/// What a solve does: also what `glassbox build` records for an SDE model (`super::build`).
pub struct Plan {
    pub method: SdeMethod,
    pub t0: f64,
    pub t1: f64,
    pub opts: SdeOptions,
    pub seed: u64,
    pub paths: usize,
    /// Threads the paths run on (`--threads`, default every core; same paths at any count).
    pub threads: usize,
}

fn method(req: &SolveRequest, model: &Model) -> Result<SdeMethod, Vec<Diag>> {
    let name = match (&req.method, &model.solve) {
        (Some(m), _) => m.clone(),
        (None, Some(s)) => s.method.name().to_string(),
        (None, None) => DEFAULT_METHOD.to_string(),
    };
    if let Some(m) = sde_method(&name) {
        return Ok(m);
    }
    let sde_methods = registry::names(registry::Method::is_sde);
    let list = sde_methods.join(" ");
    if solve::Method::from_name(&name, 1e-6).is_some() {
        return Err(vec![
            Diag::error(
                "glassbox::method_mismatch",
                format!(
                    "`{name}` is an ODE method but `{}` is an SDE model",
                    model.name
                ),
            )
            .help(format!("SDE methods: {list}")),
        ]);
    }
    let help = match did_you_mean(&name, sde_methods.iter().copied()) {
        Some(m) => format!("did you mean `{m}`?"),
        None => format!("SDE methods: {list}"),
    };
    Err(vec![
        Diag::error(
            "glassbox::unknown_method",
            format!("there is no SDE solver `{name}`"),
        )
        .help(help),
    ])
}

pub fn plan(req: &SolveRequest, model: &Model) -> Result<Plan, Vec<Diag>> {
    let method = method(req, model)?;
    let o = model
        .solve
        .as_ref()
        .map(|s| s.options.clone())
        .unwrap_or_default();
    let d = SdeOptions::default();
    let mut opts = SdeOptions {
        rtol: req.rtol.or(o.rtol).unwrap_or(d.rtol),
        atol: req.atol.or(o.atol).unwrap_or(d.atol),
        h0: o.h0,
        // The model's `dt` belongs to its (fixed-step) method; another adaptive method
        // chosen by --method chooses its own steps.
        dt: o
            .dt
            .filter(|_| !method.is_adaptive() || req.method.is_none()),
        ..d
    };
    if let Some(dt) = dt_flag(req)? {
        opts.dt = Some(dt);
    }
    if let Some(m) = o.max_steps {
        opts.max_steps = usize::try_from(m).unwrap_or(usize::MAX);
    }
    if opts.dt.is_none() && !method.is_adaptive() {
        return Err(vec![
            Diag::error(
                "glassbox::missing_dt",
                format!("`{}` is a fixed-step method and needs a step size", method.name()),
            )
            .help("give --dt DT (e.g. --dt 0.01), add `dt = …` to the solve clause, or use an adaptive method such as `sosri`"),
        ]);
    }
    let (t0, t1, save_at) = time_span(req, model)?;
    if t1 < t0 {
        return Err(bad_arg(
            format!("the time span [{t0}, {t1}] runs backwards"),
            "SDE solves run forward in time: give T0 < T1",
        ));
    }
    opts.save_at = if save_at.is_empty() {
        grid(t0, t1, DEFAULT_POINTS)
    } else {
        save_at
    };
    let paths = req.paths.unwrap_or(if req.plot { PLOT_PATHS } else { 1 });
    if paths == 0 || paths > MAX_PATHS {
        return Err(bad_arg(
            format!("--paths {paths} is outside 1 to {MAX_PATHS}"),
            "give the number of sample paths, e.g. --paths 100",
        ));
    }
    Ok(Plan {
        method,
        t0,
        t1,
        opts,
        seed: req.seed.unwrap_or(0),
        paths,
        threads: req.threads.unwrap_or_else(solve::threads::available).max(1),
    })
}

/// Mean and sample standard deviation (`n − 1`; 0 for one path) over paths, per saved time
/// and state, row-major `[times, states]`.
pub fn mean_sd(sol: &SdeSolution, times: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let len = times * n;
    let mut mean = vec![0.0; len];
    let mut m2 = vec![0.0; len];
    // Welford: stable for many paths with a large mean.
    for (k, path) in sol.paths.iter().enumerate() {
        for (i, x) in path.us.iter().take(len).enumerate() {
            let d = x - mean[i];
            mean[i] += d / (k + 1) as f64;
            m2[i] += d * (x - mean[i]);
        }
    }
    let paths = sol.paths.len();
    let sd = m2
        .iter()
        .map(|s| {
            if paths > 1 {
                (s / (paths - 1) as f64).sqrt()
            } else {
                0.0
            }
        })
        .collect();
    (mean, sd)
}

/// A finished SDE solve (every path) and how long it took.
pub struct SdeRun {
    pub sol: SdeSolution,
    pub timing: Timing,
}

/// Compile drift and diffusion with parameters `p`, compute the initial state and solve the
/// plan's paths `repeat` times (at least once).
pub fn run(model: &Model, plan: &Plan, p: &[f64], repeat: usize) -> Result<SdeRun, Vec<Diag>> {
    run_from(model, plan, p, None, repeat)
}

/// [`run`] from the initial state `y0` when one is given, else the model's
/// ([`super::solve::start_state`]).
pub fn run_from(
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0: Option<&[f64]>,
    repeat: usize,
) -> Result<SdeRun, Vec<Diag>> {
    let compile_start = Instant::now();
    let mut field = JitSde::with_params(model, p, &[]).map_err(|d| vec![d])?;
    if plan.method == SdeMethod::Milstein {
        // Compiled now, so the solve times below measure solving only.
        field.prepare_jvp().map_err(|d| vec![d])?;
    }
    let batched = batch_field(model, p, plan).map_err(|d| vec![d])?;
    let compile_wall = compile_start.elapsed();
    let u0 = start_state(model, p, plan.t0, y0)?;
    let repeat = repeat.max(1);
    let mut pool = match batched {
        Some(first) => {
            // One batched field per thread that has a chunk of paths, compiled before the
            // clock starts.
            let chunks = plan.paths.div_ceil(solve::sde::CHUNK_PATHS);
            let mut first = Some(first);
            let threads = plan.threads.min(chunks);
            Workers::Batched(
                Pool::new(threads, || match first.take() {
                    Some(f) => Ok(f),
                    None => JitBatchSde::new(model, p, plan.method),
                })
                .map_err(|d| vec![d])?,
            )
        }
        // One copy of the field per thread, made before the clock starts.
        None => {
            Workers::PerPath(Pool::new(plan.threads, || Ok(field.fork())).map_err(|d| vec![d])?)
        }
    };
    let (sol, median) = repeat_median(repeat, || pool.solve(plan, &u0).map_err(|d| vec![d]))?;
    let compile = compile_wall.max(field.compile_time());
    Ok(SdeRun {
        sol,
        timing: Timing::new(compile, median, repeat),
    })
}

/// The threads' fields: batched kernels (chunks of paths), or per-path kernels (blocks).
enum Workers {
    Batched(Pool<JitBatchSde>),
    PerPath(Pool<JitSde>),
}

impl Workers {
    fn solve(&mut self, plan: &Plan, u0: &[f64]) -> Result<SdeSolution, Diag> {
        let (method, t0, t1, opts) = (plan.method, plan.t0, plan.t1, &plan.opts);
        let (seed, paths) = (plan.seed, plan.paths);
        match self {
            Workers::Batched(pool) => {
                solve::sde::solve_sde_batched_on(method, pool, t0, t1, u0, opts, seed, paths)
            }
            Workers::PerPath(pool) => {
                solve::sde::solve_sde_on(method, pool, t0, t1, u0, opts, seed, paths)
            }
        }
    }
}

/// The batched drift and diffusion for the plan's paths, or `None` where solving each path
/// alone is the better choice: the rule of classifier rows (`train::solves_batched`: at least
/// `MIN_BATCH_ROWS` paths and GEMM-sized layers; `GLASSBOX_BATCHED=0` turns it off), no
/// compile where even GEMMs would not make it batched.
fn batch_field(model: &Model, p: &[f64], plan: &Plan) -> Result<Option<JitBatchSde>, Diag> {
    let per_path = solve::BatchControl::PerRow;
    if !train::solves_batched(per_path, plan.paths, true) {
        return Ok(None);
    }
    let f = JitBatchSde::new(model, p, plan.method)?;
    Ok(train::solves_batched(per_path, plan.paths, f.uses_gemm()).then_some(f))
}
