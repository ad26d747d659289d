//! `glassbox solve FILE`: check, compile the field (JIT), integrate, and write the trajectory
//! (CSV or JSON), a plot and the solver's statistics.
//!
//! Defaults come from the model's `solve` clause; flags override them. Output files are
//! written to a temporary file in the target's directory and renamed, so a failed solve or
//! write never leaves a half-written file; a failure is a diagnostic and exit status 1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::plot::{Trajectories, plot};
use super::render::emit;
use crate::diag::{Diag, did_you_mean};
use crate::sema::{Model, ModelKind, SolveTimes};
use crate::solve::{self, JitField, Method, Solution, SolveOptions, Stats, registry};
use crate::source::DiskLoader;

#[derive(Debug, Args)]
pub struct SolveArgs {
    /// The model file (`*.gbx`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Time span `T0:T1`; the output has every accepted step.
    #[arg(long, value_name = "T0:T1", conflicts_with = "at")]
    pub over: Option<String>,
    /// `N` equally spaced output times from `T0` to `T1` (dense output between steps).
    #[arg(long, value_name = "T0:T1:N")]
    pub at: Option<String>,
    #[arg(long, value_name = "M", help = method_help())]
    pub method: Option<String>,
    #[arg(long, value_name = "R")]
    pub rtol: Option<f64>,
    #[arg(long, value_name = "A")]
    pub atol: Option<f64>,
    /// Fixed step size: needed by fixed-step methods (euler, rk4, euler_maruyama, milstein,
    /// ...) unless the model's solve clause gives `dt`; adaptive methods given `dt` run on that
    /// grid and still record their error estimates (not with `auto`).
    #[arg(long, value_name = "DT")]
    pub dt: Option<f64>,
    /// SDE models only: the seed of the Brownian paths (default 0).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// SDE models only: the number of sample paths (default 1, or 100 with --plot).
    #[arg(long, value_name = "N")]
    pub paths: Option<usize>,
    /// Write the trajectory to `out.csv` (header `t,<states>`; SDEs `path,t,<states>`) or
    /// `out.json`. Without `-o` and `--plot` the CSV goes to stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Draw the trajectories into a PNG (SDEs: mean ± one standard deviation over the paths).
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    /// Print evaluations, steps, rejections, Jacobians, LU factorisations, switches, the summed
    /// error and stiffness estimates and the compile and solve times.
    #[arg(long)]
    pub stats: bool,
    /// Solve this many times and report the median solve time.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: usize,
    /// SDE models only: differentiate instead of printing paths. L = the mean of u(T1) over
    /// the --paths paths and the state values; writes L's gradient with respect to every
    /// parameter as CSV `param,gradient` (or JSON with `-o out.json`), by the discrete adjoint
    /// on each path's own Brownian path. --repeat times forward + gradient.
    #[arg(long, conflicts_with = "plot")]
    pub grad: bool,
}

pub fn run(args: &SolveArgs) -> ExitCode {
    match solve_file(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(diags) => {
            emit(&diags);
            ExitCode::FAILURE
        }
    }
}

/// `--method`'s help: the registry's methods.
fn method_help() -> String {
    let names = |sde: bool| registry::names(|m| m.is_sde() == sde).join(" ");
    format!(
        "Solver (default: the model's). ODE: {}; SDE: {}",
        names(false),
        names(true)
    )
}

pub(crate) fn bad_arg(msg: String, help: &str) -> Vec<Diag> {
    vec![Diag::error("glassbox::bad_argument", msg).help(help.to_string())]
}

/// The solve this run does, after flags and the model's `solve` clause are combined.
pub(crate) struct Plan {
    pub method: Method,
    pub t0: f64,
    pub t1: f64,
    pub opts: SolveOptions,
}

pub(crate) fn parse_floats(s: &str, flag: &str, want: usize) -> Result<Vec<f64>, Vec<Diag>> {
    let parts: Vec<&str> = s.split(':').collect();
    let help = if want == 2 {
        "write the span as T0:T1, e.g. --over 0:1e5"
    } else {
        "write the grid as T0:T1:N, e.g. --at 0:40:401"
    };
    if parts.len() != want {
        return Err(bad_arg(
            format!("`--{flag} {s}` needs {want} fields separated by `:`"),
            help,
        ));
    }
    parts
        .iter()
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    bad_arg(
                        format!("`{p}` in `--{flag} {s}` is not a finite number"),
                        help,
                    )
                })
        })
        .collect()
}

/// `(t0, t1, save times)` from `--over`, `--at` or the model's solve clause; no save times
/// means every accepted step.
pub(super) fn time_span(
    args: &SolveArgs,
    model: &Model,
) -> Result<(f64, f64, Vec<f64>), Vec<Diag>> {
    let spec = model.solve.as_ref();
    let (t0, t1, save_at) = if let Some(s) = &args.over {
        let v = parse_floats(s, "over", 2)?;
        (v[0], v[1], Vec::new())
    } else if let Some(s) = &args.at {
        let v = parse_floats(s, "at", 3)?;
        let n = v[2];
        if !(n >= 2.0 && n.fract() == 0.0 && n <= 1e7) {
            return Err(bad_arg(
                format!("`--at {s}`: N = {n} must be a whole number from 2 to 10 000 000"),
                "N counts the output times, both ends included",
            ));
        }
        (v[0], v[1], grid(v[0], v[1], n as usize))
    } else {
        match spec.and_then(|s| s.times.clone()) {
            Some(SolveTimes::Over { t0, t1 }) => (t0, t1, Vec::new()),
            Some(SolveTimes::At { times }) => {
                let (Some(&a), Some(&b)) = (times.first(), times.last()) else {
                    return Err(bad_arg(
                        "the model's `at` list is empty".into(),
                        "give --over T0:T1",
                    ));
                };
                (a, b, times)
            }
            None => {
                return Err(bad_arg(
                    "no time span: the model's solve clause has none and no --over or --at was given".into(),
                    "give --over T0:T1 or --at T0:T1:N, or add `over [t0, t1]` to the solve clause",
                ));
            }
        }
    };
    if t0 == t1 {
        return Err(bad_arg(
            format!("the time span [{t0}, {t1}] is empty"),
            "give two different times",
        ));
    }
    Ok((t0, t1, save_at))
}

/// `n ≥ 2` equally spaced times from `t0` to `t1`, both included exactly.
pub(crate) fn grid(t0: f64, t1: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            if k + 1 == n {
                t1
            } else {
                t0 + (t1 - t0) * k as f64 / (n - 1) as f64
            }
        })
        .collect()
}

/// `--dt`: positive and finite.
pub(super) fn dt_flag(args: &SolveArgs) -> Result<Option<f64>, Vec<Diag>> {
    match args.dt {
        Some(dt) if !(dt > 0.0 && dt.is_finite()) => Err(bad_arg(
            format!("`--dt {dt}` must be a positive step size"),
            "give e.g. --dt 0.01",
        )),
        dt => Ok(dt),
    }
}

/// `--repeat`: from 1 to [`MAX_REPEAT`].
pub(super) fn check_repeat(args: &SolveArgs) -> Result<(), Vec<Diag>> {
    if args.repeat == 0 || args.repeat > MAX_REPEAT {
        return Err(bad_arg(
            format!("--repeat {} is outside 1 to {MAX_REPEAT}", args.repeat),
            "give --repeat 1 or more",
        ));
    }
    Ok(())
}

pub(super) const MAX_REPEAT: usize = 100_000;

pub(crate) fn plan(args: &SolveArgs, model: &Model) -> Result<Plan, Vec<Diag>> {
    let (method, mut opts) = method_options(args, model)?;
    let (t0, t1, save_at) = time_span(args, model)?;
    opts.save_at = save_at;
    Ok(Plan {
        method,
        t0,
        t1,
        opts,
    })
}

/// The method and options from the flags and the model's `solve` clause (no save times).
pub(crate) fn method_options(
    args: &SolveArgs,
    model: &Model,
) -> Result<(Method, SolveOptions), Vec<Diag>> {
    let spec = model.solve.as_ref();
    let o = spec.map(|s| s.options.clone()).unwrap_or_default();
    let rtol = args.rtol.or(o.rtol).unwrap_or(1e-6);
    let atol = args.atol.or(o.atol).unwrap_or(1e-9);
    let name = match (&args.method, spec) {
        (Some(m), _) => m.clone(),
        (None, Some(s)) => s.method.name().to_string(),
        (None, None) => registry::Method::Auto.name().to_string(),
    };
    let ode_methods = || registry::names(|m| !m.is_sde());
    let Some(method) = Method::from_name(&name, rtol) else {
        if crate::solve::sde::sde_method(&name).is_some() {
            return Err(vec![
                Diag::error(
                    "glassbox::method_mismatch",
                    format!(
                        "`{name}` is an SDE method but `{}` is an ODE model",
                        model.name
                    ),
                )
                .help(format!("ODE methods: {}", ode_methods().join(" "))),
            ]);
        }
        let help = match did_you_mean(&name, ode_methods()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("ODE methods: {}", ode_methods().join(" ")),
        };
        return Err(vec![
            Diag::error(
                "glassbox::unknown_method",
                format!("there is no ODE solver `{name}`"),
            )
            .help(help),
        ]);
    };
    let mut opts = SolveOptions {
        rtol,
        atol,
        h0: o.h0,
        dt: o
            .dt
            .filter(|_| !method.is_adaptive() || args.method.is_none()),
        ..Default::default()
    };
    if let Some(m) = o.max_steps {
        opts.max_steps = usize::try_from(m).unwrap_or(usize::MAX);
    }
    if matches!(method, Method::Auto { .. }) {
        opts.dt = None;
    }
    if let Some(dt) = dt_flag(args)? {
        if matches!(method, Method::Auto { .. }) {
            return Err(bad_arg(
                "--dt does not apply to `auto`, which chooses its own steps and methods".into(),
                "give --method tsit5 (or another method) with --dt, or drop --dt",
            ));
        }
        opts.dt = Some(dt);
    }
    Ok((method, opts))
}

fn solve_file(args: &SolveArgs) -> Result<(), Vec<Diag>> {
    let file = super::load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    check_repeat(args)?;
    if model.kind == ModelKind::Sde {
        return super::solve_sde::solve_sde(args, &model);
    }
    if args.grad {
        return Err(bad_arg(
            format!(
                "`{}` is an ODE model; --grad differentiates SDE models",
                model.name
            ),
            "an ODE model's gradient runs inside `glassbox train` (discrete adjoint)",
        ));
    }
    if args.seed.is_some() || args.paths.is_some() {
        return Err(bad_arg(
            format!(
                "`{}` is an ODE model; --seed and --paths apply to SDE models",
                model.name
            ),
            "remove --seed and --paths",
        ));
    }
    let plan = plan(args, &model)?;
    let compile_start = Instant::now();
    let mut field = JitField::new(&model, &[]).map_err(|d| vec![d])?;
    if plan.method.parts().1.is_some() {
        // Compiled now, so the solve times below measure solving only.
        field.prepare_jacobian().map_err(|d| vec![d])?;
    }
    let compile_wall = compile_start.elapsed();
    let p = solve::param_values(&model);
    let u0 = solve::initial_state(&model, &p, &[], plan.t0).map_err(|d| vec![d])?;

    let Some((sol, median)) = repeat_median(args.repeat, || {
        solve::solve_with(plan.method, &mut field, plan.t0, plan.t1, &u0, &plan.opts)
            .map_err(|e| vec![Diag::from(e)])
    })?
    else {
        return Ok(());
    };
    let names = state_names(&model);

    let csv_to_stdout = args.output.is_none() && args.plot.is_none();
    if let Some(path) = &args.output {
        let text = if path.extension().is_some_and(|e| e == "json") {
            let compile = compile_wall.max(field.compile_time());
            to_json(
                &model,
                &names,
                &sol,
                Timing::new(compile, median, args.repeat),
            )
        } else {
            to_csv(&names, &sol)
        };
        write_atomic(path, text.as_bytes()).map_err(|d| vec![d])?;
    }
    if let Some(path) = &args.plot {
        let title = format!("{}: {} (rtol {:e})", model.name, sol.method, plan.opts.rtol);
        let tr = Trajectories {
            title: &title,
            names: &names,
            ts: &sol.ts,
            us: &sol.us,
            axes: ("t", "state"),
            sd: None,
        };
        plot(path, &tr).map_err(|d| vec![d])?;
    }
    if csv_to_stdout {
        print!("{}", to_csv(&names, &sol));
    }
    if args.stats {
        let text = stats_text(
            &sol,
            compile_wall.max(field.compile_time()),
            median,
            args.repeat,
        );
        print_stats(&text, csv_to_stdout);
    }
    Ok(())
}

/// Solve `repeat` times; the last result and the median wall time (`None` for zero repeats).
pub(crate) fn repeat_median<T>(
    repeat: usize,
    mut solve_once: impl FnMut() -> Result<T, Vec<Diag>>,
) -> Result<Option<(T, Duration)>, Vec<Diag>> {
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat {
        let start = Instant::now();
        last = Some(solve_once()?);
        times.push(start.elapsed());
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    Ok(last.map(|sol| (sol, median)))
}

/// Statistics go to stderr when the CSV itself goes to stdout, so the two never mix.
pub(crate) fn print_stats(text: &str, csv_to_stdout: bool) {
    if csv_to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// Column names: scalar states by name, vector states `name[i]`, matrices `name[i,j]`.
pub(crate) fn state_names(model: &Model) -> Vec<String> {
    let mut names = Vec::with_capacity(model.state_size);
    for s in &model.states {
        names.extend(element_names(&s.name, &s.shape));
    }
    names
}

/// The elements of a declared value, row-major: `name`, `name[i]` or `name[i,j]`.
pub(crate) fn element_names(name: &str, shape: &crate::sema::Shape) -> Vec<String> {
    let len = shape.size();
    match *shape {
        crate::sema::Shape::Scalar if len == 1 => vec![name.to_string()],
        crate::sema::Shape::Matrix { cols, .. } => (0..len)
            .map(|k| format!("{name}[{},{}]", k / cols, k % cols))
            .collect(),
        _ => (0..len).map(|k| format!("{name}[{k}]")).collect(),
    }
}

pub(crate) fn to_csv(names: &[String], sol: &Solution) -> String {
    let mut out = csv_header("t", names);
    for (i, &t) in sol.ts.iter().enumerate() {
        push_csv_row(&mut out, "", t, sol.u(i).unwrap_or(&[]));
    }
    out
}

/// `lead,<names>` and a newline.
pub(crate) fn csv_header(lead: &str, names: &[String]) -> String {
    let mut out = String::from(lead);
    for n in names {
        out.push(',');
        out.push_str(n);
    }
    out.push('\n');
    out
}

/// One row `<prefix>t,u...` (`prefix` ends in a comma or is empty), numbers in `{:e}` form so
/// they round-trip exactly.
pub(crate) fn push_csv_row(out: &mut String, prefix: &str, t: f64, u: &[f64]) {
    let _ = write!(out, "{prefix}{t:e}");
    for x in u {
        let _ = write!(out, ",{x:e}");
    }
    out.push('\n');
}

/// How long compiling and solving took, in the JSON output (what the side-by-side benchmarks
/// read): the median over `--repeat` solves, compile time apart.
#[derive(Clone, Copy, Serialize)]
pub(crate) struct Timing {
    pub compile_ms: f64,
    pub median_solve_ms: f64,
    pub repeat: usize,
}

impl Timing {
    pub fn new(compile: Duration, median: Duration, repeat: usize) -> Timing {
        Timing {
            compile_ms: compile.as_secs_f64() * 1e3,
            median_solve_ms: median.as_secs_f64() * 1e3,
            repeat,
        }
    }
}

#[derive(Serialize)]
struct JsonOut<'a> {
    model: &'a str,
    method: &'a str,
    names: &'a [String],
    t: &'a [f64],
    /// One row per saved time.
    u: Vec<&'a [f64]>,
    stats: Stats,
    timing: Timing,
}

fn to_json(model: &Model, names: &[String], sol: &Solution, timing: Timing) -> String {
    let out = JsonOut {
        model: &model.name,
        method: sol.method,
        names,
        t: &sol.ts,
        u: (0..sol.ts.len()).filter_map(|i| sol.u(i)).collect(),
        stats: sol.stats,
        timing,
    };
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

pub(crate) fn stats_text(
    sol: &Solution,
    compile: Duration,
    solve: Duration,
    repeat: usize,
) -> String {
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
    let mut out = String::new();
    let _ = writeln!(out, "method            {}", sol.method);
    let _ = writeln!(out, "nfe               {}", s.nfe);
    let _ = writeln!(
        out,
        "steps             {} accepted, {} rejected",
        s.accepted, s.rejected
    );
    let _ = writeln!(out, "stiff steps       {}", s.stiff_steps);
    let _ = writeln!(out, "switches          {}", s.switches);
    let _ = writeln!(out, "jacobians         {}", s.jacobian_evals);
    let _ = writeln!(out, "lu factorizations {}", s.lu_factorizations);
    let _ = writeln!(out, "sum E_j*|h_j|     {sum_e:.6e}");
    let _ = writeln!(out, "sum S_j*|h_j|     {sum_s:.6e}");
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

/// A temporary path beside `path` (same directory, so the rename is atomic), ending in `ext`.
pub(crate) fn temp_path(path: &Path, ext: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}.{ext}", std::process::id()))
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Diag> {
    let tmp = temp_path(path, "tmp");
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Diag::error(
            "glassbox::io_error",
            format!("cannot write `{}`: {e}", path.display()),
        )
        .help("check that the directory exists and is writable")
    };
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
