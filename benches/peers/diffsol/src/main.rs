//! diffsol peer benchmark: Lorenz (Tsit45, diffsol's explicit method) and Robertson
//! (BDF, ESDIRK34, TR-BDF2), models written in DiffSL and JIT-compiled with Cranelift.
//!
//! Also the spiral MLP forward (Tsit45, 1 000 dense-output points) with the shared weights.
//!
//! Prints one JSON object per (problem, method, tolerance) on stdout, the same schema as the
//! Python peers (see ../README.md). The DiffSL compile happens once per problem and tolerance,
//! outside the timed loop; its time is reported as `compile_ms`. Each timed run builds a fresh
//! solver from the compiled problem and steps to the final time.
//!
//! Usage: diffsol-bench [--repeat N] [--reference FILE] [--weights FILE] [--quick]
//!   --reference: JSON object {problem: [final values]} written by run.py; adds `error`.
//!   --weights: the spiral MLP weights (default spiral_weights.json in the working directory).

use std::time::Instant;

use diffsol::{
    CraneliftJitModule, DenseMatrix, DiffSl, DiffsolError, MatrixCommon, NalgebraLU, NalgebraMat,
    OdeBuilder, OdeEquations, OdeSolverMethod, OdeSolverProblem, OdeSolverStopReason, Op, Vector,
};
use serde_json::{json, Value};

type M = NalgebraMat<f64>;
type LS = NalgebraLU<f64>;
type Eqn = DiffSl<M, CraneliftJitModule>;

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
    weights: Option<Value>,
    quick: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        repeat: 20,
        reference: None,
        weights: None,
        quick: false,
    };
    let mut weights_path = String::from("spiral_weights.json");
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
            "--weights" => weights_path = it.next().ok_or("--weights needs a file")?,
            "--quick" => args.quick = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    // The spiral row needs the shared weights (run.py runs this from benches/peers/).
    match std::fs::read_to_string(&weights_path) {
        Ok(text) => {
            args.weights =
                Some(serde_json::from_str(&text).map_err(|e| format!("{weights_path}: {e}"))?)
        }
        Err(e) => eprintln!("diffsol-bench: {weights_path}: {e}; spiral row skipped"),
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

/// Steps a fresh solver to `t_end`; returns (final state, steps).
fn step_to<'a, Eqn, S>(
    solver: Result<S, DiffsolError>,
    t_end: f64,
) -> Result<(Vec<f64>, usize), String>
where
    Eqn: OdeEquations<T = f64> + 'a,
    S: OdeSolverMethod<'a, Eqn>,
{
    let mut solver = solver.map_err(|e| e.to_string())?;
    solver.set_stop_time(t_end).map_err(|e| e.to_string())?;
    loop {
        match solver.step().map_err(|e| e.to_string())? {
            OdeSolverStopReason::TstopReached => break,
            OdeSolverStopReason::InternalTimestep | OdeSolverStopReason::RootFound(..) => {}
        }
    }
    let y = solver.state().y.clone_as_vec();
    Ok((y, solver.get_statistics().number_of_steps))
}

#[allow(clippy::too_many_arguments)]
fn bench<'a, Eqn, F>(
    args: &Args,
    problem_name: &str,
    method: &str,
    rtol: f64,
    atol: f64,
    t_end: f64,
    compile_ms: f64,
    problem: &'a OdeSolverProblem<Eqn>,
    solve: F,
) -> Result<Value, String>
where
    Eqn: OdeEquations<T = f64> + 'a,
    F: Fn(&'a OdeSolverProblem<Eqn>) -> Result<(Vec<f64>, usize), String>,
{
    // Warm-up run (page faults, caches; counts the rhs calls of one solve), then `repeat`
    // timed runs.
    let nfe0 = problem.eqn.rhs().statistics().number_of_calls;
    let (y, steps) = solve(problem)?;
    let nfe = problem.eqn.rhs().statistics().number_of_calls - nfe0;
    let mut times = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let start = Instant::now();
        let out = solve(problem)?;
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
        "compile_ms": compile_ms,
        "final": y,
    });
    // DiffSL's generated rhs keeps no call count (it reads 0): leave nfe out rather than report 0.
    if nfe > 0 {
        row["nfe"] = json!(nfe);
    }
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

fn build(code: &str, rtol: f64, atol: f64) -> Result<(f64, OdeSolverProblem<Eqn>), String> {
    let start = Instant::now();
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .build_from_diffsl::<CraneliftJitModule>(code)
        .map_err(|e| e.to_string())?;
    Ok((start.elapsed().as_secs_f64() * 1e3, problem))
}

/// DiffSL for the spiral MLP f(y) = W2 tanh(W1 y^3 + b1) + b2, weights spelled out entry by entry.
/// Each contraction gets its own tensor: DiffSL sums over a repeated index at the level of the
/// whole expression, so `tanh(W1_ij * c_j)` would be the sum of the tanh's, not the tanh of the sum.
fn spiral_code(weights: &Value) -> Result<String, String> {
    let matrix = |name: &str| -> Result<String, String> {
        let rows: Vec<Vec<f64>> = serde_json::from_value(weights[name].clone())
            .map_err(|e| format!("spiral weights {name}: {e}"))?;
        let mut entries = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                entries.push(format!("({i}, {j}): {v:e}"));
            }
        }
        Ok(entries.join(", "))
    };
    let vector = |name: &str| -> Result<String, String> {
        let v: Vec<f64> = serde_json::from_value(weights[name].clone())
            .map_err(|e| format!("spiral weights {name}: {e}"))?;
        Ok(v.iter()
            .map(|x| format!("{x:e}"))
            .collect::<Vec<_>>()
            .join(", "))
    };
    Ok(format!(
        "
    W1_ij {{ {w1} }}
    b1_i {{ {b1} }}
    W2_ij {{ {w2} }}
    b2_i {{ {b2} }}
    u_i {{ y1 = 2.0, y2 = 0.0 }}
    c_i {{ u_i * u_i * u_i }}
    z_i {{ W1_ij * c_j }}
    h_i {{ tanh(z_i + b1_i) }}
    o_i {{ W2_ij * h_j }}
    F_i {{ o_i + b2_i }}
",
        w1 = matrix("W1")?,
        b1 = vector("b1")?,
        w2 = matrix("W2")?,
        b2 = vector("b2")?,
    ))
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
        let (ms, p) = build(LORENZ, 1e-6, 1e-9)?;
        emit(bench(
            args,
            "lorenz",
            "tsit45",
            1e-6,
            1e-9,
            100.0,
            ms,
            &p,
            |p| step_to(p.tsit45(), 100.0),
        )?);
    }
    for &rtol in sweep {
        let atol = rtol * 1e-3;
        let (ms, p) = build(LORENZ, rtol, atol)?;
        emit(bench(
            args,
            "lorenz_t10",
            "tsit45",
            rtol,
            atol,
            10.0,
            ms,
            &p,
            |p| step_to(p.tsit45(), 10.0),
        )?);
    }
    // Robertson over [0, 1e5]: sweep with atol = rtol * 1e-4 (rtol 1e-6 is the headline row).
    for &rtol in sweep {
        let atol = rtol * 1e-4;
        let (ms, p) = build(ROBERTSON, rtol, atol)?;
        let t = 1e5;
        emit(bench(
            args,
            "robertson",
            "bdf",
            rtol,
            atol,
            t,
            ms,
            &p,
            |p| step_to(p.bdf::<LS>(), t),
        )?);
        emit(bench(
            args,
            "robertson",
            "esdirk34",
            rtol,
            atol,
            t,
            ms,
            &p,
            |p| step_to(p.esdirk34::<LS>(), t),
        )?);
        emit(bench(
            args,
            "robertson",
            "tr_bdf2",
            rtol,
            atol,
            t,
            ms,
            &p,
            |p| step_to(p.tr_bdf2::<LS>(), t),
        )?);
    }
    // Spiral forward, 1 000 save points (dense output at the requested times).
    if let Some(weights) = &args.weights {
        let (rtol, atol, t_end) = (1e-7, 1e-9, 25.0);
        let t_eval: Vec<f64> = (0..1000).map(|i| t_end * i as f64 / 999.0).collect();
        let (ms, p) = build(&spiral_code(weights)?, rtol, atol)?;
        emit(bench(
            args,
            "spiral_forward",
            "tsit45",
            rtol,
            atol,
            t_end,
            ms,
            &p,
            |p| {
                let mut s = p.tsit45().map_err(|e| e.to_string())?;
                let (ys, _) = s.solve_dense(&t_eval).map_err(|e| e.to_string())?;
                let last = ys.ncols() - 1;
                let y = (0..ys.nrows()).map(|i| ys.get_index(i, last)).collect();
                Ok((y, s.get_statistics().number_of_steps))
            },
        )?);
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
