//! An ODE solve: the request's flags combined with the model's `solve` clause into a [`Plan`],
//! and the one pipeline every front end runs — compile the field (JIT), the initial state,
//! integrate (`--repeat` times, timed). [`plan`] is the entry for any model: SDE models go to
//! [`super::sde`], `--grad` to [`super::grad`].

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{SolveRequest, bad_arg, sde};
use crate::diag::{Diag, did_you_mean};
use crate::sema::{Model, ModelKind, SolveTimes};
use crate::solve::{self, JitField, Method, Solution, SolveOptions, registry};

/// The solve this run does, after flags and the model's `solve` clause are combined.
pub struct Plan {
    pub method: Method,
    pub t0: f64,
    pub t1: f64,
    pub opts: SolveOptions,
}

/// What a request asks of a model: an ODE solve, an SDE solve, or an SDE gradient.
pub enum SolvePlan {
    Ode(Plan),
    Sde(sde::Plan),
    Gradient(sde::Plan),
}

/// Plans the request for `model`, whatever its kind.
pub fn plan(req: &SolveRequest, model: &Model) -> Result<SolvePlan, Vec<Diag>> {
    check_repeat(req)?;
    if let Some(input) = model.inputs.first() {
        // A model with per-sample inputs has one solve per sample; `solve` has no samples.
        return Err(vec![
            Diag::error(
                "glassbox::needs_inputs",
                format!(
                    "`{}` reads per-sample inputs (`input {}`), which a plain solve has none of",
                    model.name, input.name
                ),
            )
            .help(
                "solve it per sample with `glassbox predict MODEL --weights RUN --input rows.csv` \
                 (one sample a row), or train it with `glassbox train`",
            ),
        ]);
    }
    if model.kind == ModelKind::Sde {
        let plan = sde::plan(req, model)?;
        return Ok(if req.grad {
            SolvePlan::Gradient(plan)
        } else {
            SolvePlan::Sde(plan)
        });
    }
    if req.grad {
        return Err(bad_arg(
            format!(
                "`{}` is an ODE model; --grad differentiates SDE models",
                model.name
            ),
            "an ODE model's gradient runs inside `glassbox train` (discrete adjoint)",
        ));
    }
    if req.seed.is_some() || req.paths.is_some() {
        return Err(bad_arg(
            format!(
                "`{}` is an ODE model; --seed and --paths apply to SDE models",
                model.name
            ),
            "remove --seed and --paths",
        ));
    }
    plan_ode(req, model).map(SolvePlan::Ode)
}

/// An ODE model's plan: method, options and save times.
pub fn plan_ode(req: &SolveRequest, model: &Model) -> Result<Plan, Vec<Diag>> {
    let (method, mut opts) = method_options(req, model)?;
    let (t0, t1, save_at) = time_span(req, model)?;
    opts.save_at = save_at;
    Ok(Plan {
        method,
        t0,
        t1,
        opts,
    })
}

/// A finished ODE solve and how long it took.
pub struct OdeRun {
    pub sol: Solution,
    pub timing: Timing,
}

/// Compile the field with parameters `p`, compute the initial state and solve `repeat`
/// times (at least once); the timing has the compile time and the median solve time.
pub fn run_ode(model: &Model, plan: &Plan, p: &[f64], repeat: usize) -> Result<OdeRun, Vec<Diag>> {
    run_ode_from(model, plan, p, None, repeat)
}

/// [`run_ode`] from the initial state `y0` when one is given (the Python package's `y0=`),
/// else the model's.
pub fn run_ode_from(
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0: Option<&[f64]>,
    repeat: usize,
) -> Result<OdeRun, Vec<Diag>> {
    let mut field = None;
    run_ode_cached(&mut field, model, plan, p, y0, repeat)
}

/// [`run_ode_from`] on a field compiled by an earlier call when `field` holds one (its
/// parameters replaced by `p`), else compiled now and left in `field`: a caller that solves
/// one model many times (the Python package) compiles once. `field` must be `model`'s. The
/// timing's compile part is what this call compiled (zero when nothing was).
pub fn run_ode_cached(
    field: &mut Option<JitField>,
    model: &Model,
    plan: &Plan,
    p: &[f64],
    y0: Option<&[f64]>,
    repeat: usize,
) -> Result<OdeRun, Vec<Diag>> {
    let compile_start = Instant::now();
    let before = field.as_ref().map(JitField::compile_time);
    let field = match field {
        Some(f) => {
            f.set_params(p).map_err(|d| vec![d])?;
            f
        }
        None => field.insert(JitField::with_params(model, p, &[]).map_err(|d| vec![d])?),
    };
    if plan.method.parts().1.is_some() {
        // Compiled now, so the solve times below measure solving only.
        field.prepare_jacobian().map_err(|d| vec![d])?;
    }
    let compile_wall = compile_start.elapsed();
    let u0 = start_state(model, p, plan.t0, y0)?;
    let repeat = repeat.max(1);
    let (sol, median) = repeat_median(repeat, || {
        solve::solve_with(plan.method, field, plan.t0, plan.t1, &u0, &plan.opts)
            .map_err(|e| vec![Diag::from(e)])
    })?;
    let compile = match before {
        Some(b) => field.compile_time().saturating_sub(b),
        None => compile_wall.max(field.compile_time()),
    };
    Ok(OdeRun {
        sol,
        timing: Timing::new(compile, median, repeat),
    })
}

/// [`run_ode_cached`] from each initial state of `rows` in turn, on the one field (the Python
/// package's batched `y0`); a failing row's diagnostics name it (`row 3: ...`).
pub fn run_ode_rows_cached(
    field: &mut Option<JitField>,
    model: &Model,
    plan: &Plan,
    p: &[f64],
    rows: &[Vec<f64>],
) -> Result<Vec<OdeRun>, Vec<Diag>> {
    rows.iter()
        .enumerate()
        .map(|(i, y0)| {
            run_ode_cached(field, model, plan, p, Some(y0), 1).map_err(|ds| in_row(i, ds))
        })
        .collect()
}

/// `ds` with their messages prefixed by the row they came from.
pub fn in_row(row: usize, ds: Vec<Diag>) -> Vec<Diag> {
    ds.into_iter()
        .map(|mut d| {
            d.message = format!("row {row}: {}", d.message);
            d
        })
        .collect()
}

/// The initial state: `y0` when given (one finite value per state element), else the model's
/// own at `t0` with parameters `p`.
pub fn start_state(
    model: &Model,
    p: &[f64],
    t0: f64,
    y0: Option<&[f64]>,
) -> Result<Vec<f64>, Vec<Diag>> {
    let Some(y0) = y0 else {
        return solve::initial_state(model, p, &[], t0).map_err(|d| vec![d]);
    };
    if y0.len() != model.state_size {
        return Err(bad_arg(
            format!(
                "the initial state has {} values but `{}` has {} state elements ({})",
                y0.len(),
                model.name,
                model.state_size,
                state_names(model).join(", ")
            ),
            "give one value per state element, in the order of the state columns",
        ));
    }
    if let Some(k) = y0.iter().position(|v| !v.is_finite()) {
        return Err(bad_arg(
            format!(
                "the initial state's value {} for `{}` is not a finite number",
                y0[k],
                state_names(model)[k]
            ),
            "give finite initial values",
        ));
    }
    Ok(y0.to_vec())
}

pub fn parse_floats(s: &str, flag: &str, want: usize) -> Result<Vec<f64>, Vec<Diag>> {
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
pub fn time_span(req: &SolveRequest, model: &Model) -> Result<(f64, f64, Vec<f64>), Vec<Diag>> {
    let spec = model.solve.as_ref();
    let (t0, t1, save_at) = if let Some(times) = &req.save_at {
        if req.over.is_some() || req.at.is_some() {
            return Err(bad_arg(
                "save times were given twice: as a list of times and as a span".into(),
                "give the times alone, or the span alone",
            ));
        }
        let increasing = times.windows(2).all(|w| w[0] < w[1]);
        let (Some(&a), Some(&b)) = (times.first(), times.last()) else {
            return Err(bad_arg(
                "the list of save times is empty".into(),
                "give at least two times",
            ));
        };
        if times.len() < 2 || !increasing || !times.iter().all(|t| t.is_finite()) {
            return Err(bad_arg(
                format!(
                    "the {} save times from {a} to {b} are not at least two strictly increasing finite times",
                    times.len()
                ),
                "give strictly increasing finite times, e.g. numpy.linspace(0, 1, 11)",
            ));
        }
        (a, b, times.clone())
    } else if let Some(s) = &req.over {
        let v = parse_floats(s, "over", 2)?;
        (v[0], v[1], Vec::new())
    } else if let Some(s) = &req.at {
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
pub fn grid(t0: f64, t1: f64, n: usize) -> Vec<f64> {
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
pub fn dt_flag(req: &SolveRequest) -> Result<Option<f64>, Vec<Diag>> {
    match req.dt {
        Some(dt) if !(dt > 0.0 && dt.is_finite()) => Err(bad_arg(
            format!("`--dt {dt}` must be a positive step size"),
            "give e.g. --dt 0.01",
        )),
        dt => Ok(dt),
    }
}

/// `--repeat`: from 1 to [`MAX_REPEAT`].
pub fn check_repeat(req: &SolveRequest) -> Result<(), Vec<Diag>> {
    if req.repeat == 0 || req.repeat > MAX_REPEAT {
        return Err(bad_arg(
            format!("--repeat {} is outside 1 to {MAX_REPEAT}", req.repeat),
            "give --repeat 1 or more",
        ));
    }
    Ok(())
}

/// The most `--repeat` solves one run does.
pub const MAX_REPEAT: usize = 100_000;

/// The method and options from the flags and the model's `solve` clause (no save times).
pub fn method_options(
    req: &SolveRequest,
    model: &Model,
) -> Result<(Method, SolveOptions), Vec<Diag>> {
    let spec = model.solve.as_ref();
    let o = spec.map(|s| s.options.clone()).unwrap_or_default();
    let rtol = req.rtol.or(o.rtol).unwrap_or(1e-6);
    let atol = req.atol.or(o.atol).unwrap_or(1e-9);
    let name = match (&req.method, spec) {
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
        control: o.control,
        dt: o
            .dt
            .filter(|_| !method.is_adaptive() || req.method.is_none()),
        ..Default::default()
    };
    if let Some(m) = o.max_steps {
        opts.max_steps = usize::try_from(m).unwrap_or(usize::MAX);
    }
    if matches!(method, Method::Auto { .. }) {
        opts.dt = None;
    }
    if let Some(dt) = dt_flag(req)? {
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

/// Run `solve_once` `repeat` times (at least once); the last result and the median wall time.
pub fn repeat_median<T>(
    repeat: usize,
    mut solve_once: impl FnMut() -> Result<T, Vec<Diag>>,
) -> Result<(T, Duration), Vec<Diag>> {
    let mut times = Vec::with_capacity(repeat.max(1));
    let start = Instant::now();
    let mut last = solve_once()?;
    times.push(start.elapsed());
    for _ in 1..repeat {
        let start = Instant::now();
        last = solve_once()?;
        times.push(start.elapsed());
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    Ok((last, median))
}

/// Column names: scalar states by name, vector states `name[i]`, matrices `name[i,j]`.
pub fn state_names(model: &Model) -> Vec<String> {
    let mut names = Vec::with_capacity(model.state_size);
    for s in &model.states {
        names.extend(element_names(&s.name, &s.shape));
    }
    names
}

/// The elements of a declared value, row-major: `name`, `name[i]` or `name[i,j]`.
pub fn element_names(name: &str, shape: &crate::sema::Shape) -> Vec<String> {
    let len = shape.size();
    match *shape {
        crate::sema::Shape::Scalar if len == 1 => vec![name.to_string()],
        crate::sema::Shape::Matrix { cols, .. } => (0..len)
            .map(|k| format!("{name}[{},{}]", k / cols, k % cols))
            .collect(),
        _ => (0..len).map(|k| format!("{name}[{k}]")).collect(),
    }
}

/// How long compiling and solving took, in the JSON output (what the side-by-side benchmarks
/// read): the median over `--repeat` solves, compile time apart.
#[derive(Clone, Copy, Serialize)]
pub struct Timing {
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
