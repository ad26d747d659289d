//! diffsol peer benchmark: Lorenz (Tsit45, diffsol's explicit method) and Robertson
//! (BDF, ESDIRK34, TR-BDF2), models written in DiffSL and JIT-compiled with Cranelift.
//!
//! Prints one JSON object per (problem, method, tolerance) on stdout, the same schema as the
//! Python peers (see ../README.md). The DiffSL compile happens once per problem and tolerance,
//! outside the timed loop; its time is reported as `compile_ms`. Each timed run builds a fresh
//! solver from the compiled problem and steps to the final time.
//!
//! Usage: diffsol-bench [--repeat N] [--reference FILE] [--quick]
//!   FILE: JSON object {problem: [final values]} written by run.py; adds `error` to each row.

use std::time::Instant;

use diffsol::{
    CraneliftJitModule, NalgebraLU, NalgebraMat, OdeBuilder, OdeEquations, OdeSolverMethod,
    OdeSolverProblem, OdeSolverStopReason, Vector,
};
use serde_json::{Value, json};

type M = NalgebraMat<f64>;
type LS = NalgebraLU<f64>;

const LORENZ: &str = "
    u_i { x = 1.0, y = 0.0, z = 0.0 }
    F_i {
        10.0 * (y - x),
        x * (28.0 - z) - y,
        x * y - (8.0 / 3.0) * z,
    }
";

// Robertson as a plain ODE (no mass matrix), so every tool integrates the same system.
const ROBERTSON: &str = "
    u_i { y1 = 1.0, y2 = 0.0, y3 = 0.0 }
    F_i {
        -0.04 * y1 + 10000.0 * y2 * y3,
        0.04 * y1 - 10000.0 * y2 * y3 - 30000000.0 * y2 * y2,
        30000000.0 * y2 * y2,
    }
";

struct Args {
    repeat: usize,
    reference: Option<Value>,
    quick: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        repeat: 20,
        reference: None,
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--repeat" => {
                let v = it.next().ok_or("--repeat needs a value")?;
                args.repeat = v.parse().map_err(|e| format!("--repeat {v}: {e}"))?;
            }
            "--reference" => {
                let path = it.next().ok_or("--reference needs a file")?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                args.reference =
                    Some(serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?);
            }
            "--quick" => args.quick = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// Max over components of |y - ref| / |ref|: the same error measure run.py uses for every tool.
fn rel_error(y: &[f64], reference: &[f64]) -> f64 {
    y.iter()
        .zip(reference)
        .map(|(a, r)| (a - r).abs() / r.abs())
        .fold(0.0, f64::max)
}

/// One solve to `t_end`; returns (final state, steps, rhs evaluations).
fn solve_once<'a, Eqn, S>(mut solver: S, t_end: f64) -> Result<(Vec<f64>, usize, usize), String>
where
    Eqn: OdeEquations<T = f64, V = <M as diffsol::MatrixCommon>::V> + 'a,
    S: OdeSolverMethod<'a, Eqn>,
{
    solver.set_stop_time(t_end).map_err(|e| e.to_string())?;
    loop {
        match solver.step().map_err(|e| e.to_string())? {
            OdeSolverStopReason::TstopReached => break,
            OdeSolverStopReason::InternalTimestep | OdeSolverStopReason::RootFound(..) => {}
        }
    }
    let y = solver.state().y.clone_as_vec();
    let steps = solver.get_statistics().number_of_steps;
    let nfe = solver.problem().eqn.rhs().statistics().number_of_calls;
    Ok((y, steps, nfe))
}

trait CloneAsVec {
    fn clone_as_vec(&self) -> Vec<f64>;
}
impl<V: Vector<T = f64>> CloneAsVec for V {
    fn clone_as_vec(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.get_index(i)).collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn bench<'a, Eqn, S, F>(
    args: &Args,
    problem_name: &str,
    method: &str,
    rtol: f64,
    atol: f64,
    t_end: f64,
    compile_ms: f64,
    problem: &'a OdeSolverProblem<Eqn>,
    make: F,
) -> Result<Value, String>
where
    Eqn: OdeEquations<T = f64, V = <M as diffsol::MatrixCommon>::V> + 'a,
    S: OdeSolverMethod<'a, Eqn>,
    F: Fn(&'a OdeSolverProblem<Eqn>) -> Result<S, diffsol::error::DiffsolError>,
{
    // Warm-up run (page faults, caches), then `repeat` timed runs.
    let nfe0 = problem.eqn.rhs().statistics().number_of_calls;
    let (y, steps, nfe1) = solve_once(make(problem).map_err(|e| e.to_string())?, t_end)?;
    let nfe = nfe1 - nfe0;
    let mut times = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let start = Instant::now();
        let solver = make(problem).map_err(|e| e.to_string())?;
        let out = solve_once(solver, t_end)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(out);
    }
    let mut row = json!({
        "tool": "diffsol",
        "version": "0.18",
        "method": method,
        "problem": problem_name,
        "t_end": t_end,
        "rtol": rtol,
        "atol": atol,
        "median_ms": median(times),
        "runs": args.repeat,
        "steps": steps,
        "nfe": nfe,
        "compile_ms": compile_ms,
        "final": y,
    });
    if let Some(reference) = args
        .reference
        .as_ref()
        .and_then(|r| r.get(problem_name))
        .and_then(|v| serde_json::from_value::<Vec<f64>>(v.clone()).ok())
    {
        row["error"] = json!(rel_error(&y, &reference));
    }
    Ok(row)
}

fn build(code: &str, rtol: f64, atol: f64) -> Result<(f64, OdeSolverProblem<impl OdeEquations<T = f64, V = <M as diffsol::MatrixCommon>::V> + diffsol::OdeEquationsImplicit>), String> {
    let start = Instant::now();
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .build_from_diffsl::<CraneliftJitModule>(code)
        .map_err(|e| e.to_string())?;
    Ok((start.elapsed().as_secs_f64() * 1e3, problem))
}

fn run(args: &Args) -> Result<(), String> {
    let sweep: &[f64] = if args.quick {
        &[1e-6]
    } else {
        &[1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]
    };
    let emit = |row: Value| println!("{row}");

    // Lorenz: the headline row over [0, 100], then the work-precision sweep over [0, 10]
    // (see README: past t ~ 20 no double-precision reference is meaningful).
    {
        let (compile_ms, p) = build(LORENZ, 1e-6, 1e-9)?;
        emit(bench(args, "lorenz", "tsit45", 1e-6, 1e-9, 100.0, compile_ms, &p, |p| p.tsit45())?);
    }
    for &rtol in sweep {
        let atol = rtol * 1e-3;
        let (compile_ms, p) = build(LORENZ, rtol, atol)?;
        emit(bench(args, "lorenz_t10", "tsit45", rtol, atol, 10.0, compile_ms, &p, |p| p.tsit45())?);
    }
    // Robertson over [0, 1e5]: sweep with atol = rtol * 1e-4 (rtol 1e-6 gives the headline row).
    for &rtol in sweep {
        let atol = rtol * 1e-4;
        let (compile_ms, p) = build(ROBERTSON, rtol, atol)?;
        emit(bench(args, "robertson", "bdf", rtol, atol, 1e5, compile_ms, &p, |p| p.bdf::<LS>())?);
        emit(bench(args, "robertson", "esdirk34", rtol, atol, 1e5, compile_ms, &p, |p| {
            p.esdirk34::<LS>()
        })?);
        emit(bench(args, "robertson", "tr_bdf2", rtol, atol, 1e5, compile_ms, &p, |p| {
            p.tr_bdf2::<LS>()
        })?);
    }
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|a| run(&a));
    if let Err(e) = result {
        eprintln!("diffsol-bench: {e}");
        std::process::exit(1);
    }
}
