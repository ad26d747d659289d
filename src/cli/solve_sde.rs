//! `glassbox solve` for SDE models: compile drift and diffusion ([`JitSde`]), solve `--paths`
//! Brownian paths of generator `--seed`, and write every path (CSV `path,t,<states>`, or
//! JSON), the mean ± one standard deviation plot, and the statistics summed over paths.
//!
//! Every path is saved on one grid (SDE steps land on save times, nothing is interpolated):
//! `--at`, the model's `at` list, or else [`DEFAULT_POINTS`] equally spaced times over the
//! span (`--over` or the model's `over`). So the mean and deviation are taken over paths at
//! the same times. Defaults: `--seed 0`; `--paths 1`, or [`PLOT_PATHS`] with `--plot` (a band
//! over one path says nothing).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::plot::{Trajectories, plot};
use super::solve::{
    SolveArgs, Timing, bad_arg, dt_flag, grid, print_stats, repeat_median, state_names, time_span,
    write_atomic,
};
use crate::diag::{Diag, did_you_mean};
use crate::sema::Model;
use crate::solve::registry;
use crate::solve::sde::{JitSde, SdeMethod, SdeOptions, SdeSolution, sde_method};
use crate::solve::{self, Stats};

/// Save times when neither `--at` nor the model's `at` gives them.
pub const DEFAULT_POINTS: usize = 101;
/// Paths drawn by `--plot` when `--paths` is not given.
pub const PLOT_PATHS: usize = 100;
/// The most paths one run solves (memory: paths × times × states values).
pub const MAX_PATHS: usize = 1_000_000;
/// The method of an SDE model without a solve clause: adaptive, strong order 1.5, and the
/// stability-optimised SRI (StochasticDiffEq.jl's choice for diagonal noise).
pub const DEFAULT_METHOD: &str = registry::Method::Sosri.name();

/// What a solve does: also what `glassbox build` records for an SDE model (`aot::plan`).
pub(crate) struct Plan {
    pub(crate) method: SdeMethod,
    pub(crate) t0: f64,
    pub(crate) t1: f64,
    pub(crate) opts: SdeOptions,
    pub(crate) seed: u64,
    pub(crate) paths: usize,
}

fn method(args: &SolveArgs, model: &Model) -> Result<SdeMethod, Vec<Diag>> {
    let name = match (&args.method, &model.solve) {
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

pub(crate) fn plan(args: &SolveArgs, model: &Model) -> Result<Plan, Vec<Diag>> {
    let method = method(args, model)?;
    let o = model
        .solve
        .as_ref()
        .map(|s| s.options.clone())
        .unwrap_or_default();
    let d = SdeOptions::default();
    let mut opts = SdeOptions {
        rtol: args.rtol.or(o.rtol).unwrap_or(d.rtol),
        atol: args.atol.or(o.atol).unwrap_or(d.atol),
        h0: o.h0,
        // The model's `dt` belongs to its (fixed-step) method; another adaptive method
        // chosen by --method chooses its own steps.
        dt: o
            .dt
            .filter(|_| !method.is_adaptive() || args.method.is_none()),
        ..d
    };
    if let Some(dt) = dt_flag(args)? {
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
    let (t0, t1, save_at) = time_span(args, model)?;
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
    let paths = args
        .paths
        .unwrap_or(if args.plot.is_some() { PLOT_PATHS } else { 1 });
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
        seed: args.seed.unwrap_or(0),
        paths,
    })
}

pub(crate) fn solve_sde(args: &SolveArgs, model: &Model) -> Result<(), Vec<Diag>> {
    let plan = plan(args, model)?;
    if args.grad {
        return super::solve_grad::solve_grad(args, model, &plan);
    }
    let compile_start = Instant::now();
    let mut field = JitSde::new(model, &[]).map_err(|d| vec![d])?;
    if plan.method == SdeMethod::Milstein {
        // Compiled now, so the solve times below measure solving only.
        field.prepare_jvp().map_err(|d| vec![d])?;
    }
    let compile_wall = compile_start.elapsed();
    let p = solve::param_values(model);
    let u0 = solve::initial_state(model, &p, &[], plan.t0).map_err(|d| vec![d])?;

    let Some((sol, median)) = repeat_median(args.repeat, || {
        solve::sde::solve_sde(
            plan.method,
            &mut field,
            plan.t0,
            plan.t1,
            &u0,
            &plan.opts,
            plan.seed,
            plan.paths,
        )
        .map_err(|e| vec![Diag::from(e)])
    })?
    else {
        return Ok(());
    };
    let names = state_names(model);
    let ts = plan.opts.save_at.as_slice();

    let csv_to_stdout = args.output.is_none() && args.plot.is_none();
    if let Some(path) = &args.output {
        let text = if path.extension().is_some_and(|e| e == "json") {
            let compile = compile_wall.max(field.compile_time());
            let timing = Timing::new(compile, median, args.repeat);
            to_json(&model.name, &names, &plan, &sol, timing)
        } else {
            to_csv(&names, &sol)
        };
        write_atomic(path, text.as_bytes()).map_err(|d| vec![d])?;
    }
    if let Some(path) = &args.plot {
        let (mean, sd) = mean_sd(&sol, ts.len(), names.len());
        let paths = if plan.paths == 1 { "path" } else { "paths" };
        let title = format!(
            "{}: {}, {} {paths}, seed {}",
            model.name,
            plan.method.name(),
            plan.paths,
            plan.seed
        );
        let tr = Trajectories {
            title: &title,
            names: &names,
            ts,
            us: &mean,
            axes: ("t", "state"),
            sd: Some(&sd),
        };
        plot(path, &tr).map_err(|d| vec![d])?;
    }
    if csv_to_stdout {
        print!("{}", to_csv(&names, &sol));
    }
    if args.stats {
        let text = stats_text(
            &plan,
            &sol,
            compile_wall.max(field.compile_time()),
            median,
            args.repeat,
        );
        print_stats(&text, csv_to_stdout);
    }
    Ok(())
}

/// Mean and sample standard deviation (`n − 1`; 0 for one path) over paths, per saved time
/// and state, row-major `[times, states]`.
pub(crate) fn mean_sd(sol: &SdeSolution, times: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
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

/// `path,t,<states>`, paths in order, each at every saved time. The path column is always
/// there for SDE models, so the file's shape does not depend on `--paths`.
pub(crate) fn to_csv(names: &[String], sol: &SdeSolution) -> String {
    let mut out = super::solve::csv_header("path,t", names);
    for (k, path) in sol.paths.iter().enumerate() {
        let prefix = format!("{k},");
        for (i, &t) in path.ts.iter().enumerate() {
            super::solve::push_csv_row(&mut out, &prefix, t, path.u(i).unwrap_or(&[]));
        }
    }
    out
}

#[derive(Serialize)]
struct JsonOut<'a> {
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

pub(crate) fn to_json(
    model: &str,
    names: &[String],
    plan: &Plan,
    sol: &SdeSolution,
    timing: Timing,
) -> String {
    let out = JsonOut {
        model,
        method: plan.method.name(),
        seed: plan.seed,
        names,
        t: &plan.opts.save_at,
        u: sol
            .paths
            .iter()
            .map(|p| (0..p.ts.len()).filter_map(|i| p.u(i)).collect())
            .collect(),
        stats: sol.stats,
        timing,
    };
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

pub(crate) fn stats_text(
    plan: &Plan,
    sol: &SdeSolution,
    compile: Duration,
    solve: Duration,
    repeat: usize,
) -> String {
    let s = &sol.stats;
    let paths = sol.paths.len().max(1) as f64;
    let (sum_e, sum_s) = sol
        .paths
        .iter()
        .map(crate::grad::recorded_regularizers)
        .fold((0.0, 0.0), |(e, s), (a, b)| (e + a, s + b));
    let mut out = String::new();
    let _ = writeln!(out, "method            {}", plan.method.name());
    let _ = writeln!(
        out,
        "paths             {} (seed {})",
        sol.paths.len(),
        plan.seed
    );
    let _ = writeln!(out, "nfe               {}", s.nfe);
    let _ = writeln!(
        out,
        "steps             {} accepted, {} rejected",
        s.accepted, s.rejected
    );
    let _ = writeln!(
        out,
        "steps per path    {:.1} (mean)",
        s.accepted as f64 / paths
    );
    let e = if plan.method.is_adaptive() {
        format!(
            "{sum_e:.6e} (summed over paths; {:.6e} per path)",
            sum_e / paths
        )
    } else {
        "- (no error estimate)".to_string()
    };
    let _ = writeln!(out, "sum E_j*|h_j|     {e}");
    let s = if plan.method.is_adaptive() && plan.opts.stiffness {
        format!(
            "{sum_s:.6e} (summed over paths; {:.6e} per path)",
            sum_s / paths
        )
    } else {
        "- (no stiffness estimate)".to_string()
    };
    let _ = writeln!(out, "sum S_j*|h_j|     {s}");
    let _ = writeln!(
        out,
        "compile time      {:.3} ms",
        compile.as_secs_f64() * 1e3
    );
    let what = if repeat > 1 {
        format!(" (median of {repeat})")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "solve time        {:.3} ms{what}",
        solve.as_secs_f64() * 1e3
    );
    out
}
