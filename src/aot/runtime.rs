//! What runs inside a standalone binary (after `entry.rs`'s `glassbox_aot_main` has wrapped
//! the linked kernels): its command line, the solve, and the output. The solve is the crate's
//! own `solve::solve_with` on the linked kernels with the settings `glassbox build` recorded
//! (a classifier's `--input` rows: `glassbox predict`'s batched path, `train::predict_batched`
//! on the linked batched kernels, where `predict` takes it), and the CSV is `glassbox
//! predict`'s, so the numbers equal theirs.
//!
//! Invariant: bad input (flags, `--y0`, the `--input` file) is a diagnostic and exit status 1,
//! never a panic; `--help` and `--version` exit 0, flag syntax errors 2 (clap's convention).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

use super::Meta;
use crate::app::bad_arg;
use crate::app::export::{Csv, Json, StatsOf, stats_text, to_csv, to_json};
use crate::app::predict::at_grid;
use crate::app::solve::Timing;
use crate::diag::Diag;
use crate::jit::{Kernel, Linked, LinkedBatch};
use crate::kit::io::path_error;
use crate::kit::output::{is_json, print_stats, write_or_print};
use crate::kit::render_diag;
use crate::solve::{
    BatchControl, JitBatchField, JitField, Method, Solution, SolveOptions, StepControl, solve_with,
};
use crate::train::{
    BatchEnds, ForwardPath, ForwardStats, call_kernel, predict_batched, solves_batched,
};

/// Runs the binary with the process's arguments; returns the exit status. A panic (a bug:
/// user input never causes one) is reported as such, with status 101, instead of aborting
/// at the C boundary.
pub fn main(meta: &Meta, weights: &[f64], kernels: Linked) -> i32 {
    let run = std::panic::AssertUnwindSafe(move || main_inner(meta, weights, kernels));
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        eprintln!(
            "{}: internal error (this is a bug in glassbox; please report it with the model)",
            meta.model
        );
        101
    })
}

fn main_inner(meta: &Meta, weights: &[f64], kernels: Linked) -> i32 {
    let matches = match command(meta).try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(meta, weights, kernels, &matches) {
        Ok(()) => 0,
        Err(diags) => {
            for d in &diags {
                eprint!("{}", render_diag(d));
            }
            1
        }
    }
}

/// The command line, with the model described in `--help`.
pub fn command(meta: &Meta) -> Command {
    // clap names commands with `&'static str`; one name for the life of the process.
    let name: &'static str = meta.model.clone().leak();
    Command::new(name)
        .about(format!(
            "The model `{}`, compiled by glassbox: solves it and writes the trajectory as CSV.",
            meta.model
        ))
        .long_about(describe(meta))
        .version(env!("CARGO_PKG_VERSION"))
        .arg(
            Arg::new("at")
                .long("at")
                .value_name("T0:T1:N")
                .help("N equally spaced output times from T0 to T1 (default: the model's)"),
        )
        .arg(
            Arg::new("y0")
                .long("y0")
                .value_name("V,V,...")
                .allow_hyphen_values(true)
                .help("The initial state, one value per state column (default: the model's)"),
        )
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("FILE.csv")
                .value_parser(value_parser!(PathBuf))
                .help("Per-sample inputs, one row per sample (models with `input`s)"),
        )
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("Write out.csv or out.json instead of CSV to stdout"),
        )
        .arg(
            Arg::new("stats")
                .long("stats")
                .action(ArgAction::SetTrue)
                .help("Print evaluations, steps, rejections and the solve time"),
        )
        .arg(
            Arg::new("seed")
                .long("seed")
                .value_name("S")
                .value_parser(value_parser!(u64))
                .help("The seed of the Brownian paths (SDE models only; default: the model's)"),
        )
        .arg(
            Arg::new("paths")
                .long("paths")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .help("The number of Brownian paths (SDE models only; default: the model's)"),
        )
}

/// The long `--help` text: states, inputs, outputs, solver, provenance.
fn describe(meta: &Meta) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let span = match meta.span.as_slice() {
        [a, b] if meta.times.is_empty() => format!("over [{a}, {b}], every accepted step"),
        [a, b] => format!("at {} times from {a} to {b}", meta.times.len()),
        _ => "none: give --at".to_string(),
    };
    let mut s = format!(
        "The model `{}`, compiled ahead of time by glassbox {}.\n\n\
         states:   {} ({} columns: {})\n\
         inputs:   {}\n\
         outputs:  {} ({})\n\
         solver:   {} (rtol {:e}, atol {:e})\n\
         times:    {span}\n\
         source:   {}\n\
         weights:  {}\n\n\
         The numbers equal `glassbox {}` on the same model and weights.",
        meta.model,
        env!("CARGO_PKG_VERSION"),
        list(&meta.states),
        meta.columns.len(),
        meta.columns.join(","),
        list(&meta.inputs),
        list(&meta.outputs),
        if meta.head.is_some() {
            "a classifier: the binary writes each row's class and logits"
        } else {
            "declared; the binary writes the states"
        },
        meta.method,
        meta.tolerances.first().copied().unwrap_or(0.0),
        meta.tolerances.get(1).copied().unwrap_or(0.0),
        meta.source,
        meta.weights,
        meta.same_as,
    );
    if let Some(sde) = &meta.sde {
        let what = if sde.mean {
            "their mean path (CSV `t,...`)"
        } else {
            "every path (CSV `path,t,...`)"
        };
        s.push_str(&format!(
            "\n\nAn SDE model: solves --paths N Brownian paths (default {}) of the generator \
             --seed S (default {}) and writes {what}.",
            sde.paths, sde.seed
        ));
    }
    if meta.input_len > 0 {
        s.push_str(&format!(
            "\n\nGive --input FILE.csv with {} values per row (one sample a row, an optional \
             header); the output then {}.",
            meta.input_len,
            if meta.head.is_some() {
                "has one row per sample: `class,logit_0,...`"
            } else {
                "starts with a `sample` column"
            }
        ));
    }
    s
}

fn run(meta: &Meta, weights: &[f64], k: Linked, m: &ArgMatches) -> Result<(), Vec<Diag>> {
    if let Some(sde) = &meta.sde {
        return super::run_sde::run(meta, sde, weights, k, m);
    }
    for flag in ["seed", "paths"] {
        if let Some(v) = m.get_raw(flag).and_then(|mut v| v.next()) {
            return Err(bad_arg(
                format!(
                    "`--{flag} {}`: `{}` is an ODE model, which has no random paths",
                    v.to_string_lossy(),
                    meta.model
                ),
                &format!("remove --{flag}"),
            ));
        }
    }
    if let (Some(at), Some(_)) = (m.get_one::<String>("at"), &meta.head) {
        return Err(bad_arg(
            format!(
                "`--at {at}`: `{}` is a classifier, read at the end of its solve",
                meta.model
            ),
            "remove --at: the binary writes each row's class and logits",
        ));
    }
    if let (Some(y0), Some(_)) = (m.get_one::<String>("y0"), &meta.head) {
        return Err(bad_arg(
            format!(
                "`--y0 {y0}`: `{}` is a classifier, its initial state is the encoder's output \
                 for each --input row",
                meta.model
            ),
            "remove --y0: give the samples with --input",
        ));
    }
    let (t0, t1, save_at) = output_times(meta, m)?;
    let y0 = match m.get_one::<String>("y0") {
        Some(s) => Some(parse_y0(s, meta.columns.len())?),
        None => None,
    };
    let samples = match (m.get_one::<PathBuf>("input"), meta.input_len) {
        (None, 0) => vec![Vec::new()],
        (Some(path), 0) => return Err(no_inputs(path, &meta.model)),
        (None, n) => {
            return Err(bad_arg(
                format!(
                    "`{}` needs per-sample inputs ({n} values a sample)",
                    meta.model
                ),
                "give --input FILE.csv with one sample a row",
            ));
        }
        (Some(path), n) => read_inputs(path, n)?,
    };

    let settings = Settings::new(meta, save_at)?;
    let mut k = k;
    let batch = k.batch.take();
    if let Some(head) = k.head.as_ref() {
        let output = m.get_one::<PathBuf>("output").map(PathBuf::as_path);
        let kernels = (&k, head, batch);
        let (text, stats) = classify(meta, weights, kernels, &settings, &samples, (t0, t1))?;
        write_or_print(output, &text)?;
        if m.get_flag("stats") {
            print_stats(&stats.describe(), output.is_none());
        }
        return Ok(());
    }
    let span = (t0, t1, y0);
    let (sols, solve_times) = solve_rows(meta, weights, &k, &settings, &samples, span)?;

    let output = m.get_one::<PathBuf>("output");
    let text = match output {
        Some(path) if is_json(path) => json(meta, &sols),
        _ => csv(&meta.columns, &sols, meta.input_len > 0),
    };
    write_or_print(output.map(PathBuf::as_path), &text)?;
    if m.get_flag("stats") {
        for (i, (sol, took)) in sols.iter().zip(solve_times).enumerate() {
            // Compiled ahead of time: no compile time.
            let timing = Timing::new(Duration::ZERO, took, 1);
            let mut s = stats_text(&StatsOf::Solve { sol, timing });
            if sols.len() > 1 {
                s = format!("sample {i}\n{s}");
            }
            print_stats(&s, output.is_none());
        }
    }
    Ok(())
}

/// Each sample's solve on its own (`solve::solve_with` on the linked kernels), from `y0` or
/// the linked initial state, and how long each took.
fn solve_rows(
    meta: &Meta,
    weights: &[f64],
    k: &Linked,
    settings: &Settings,
    samples: &[Vec<f64>],
    (t0, t1, y0): (f64, f64, Option<Vec<f64>>),
) -> Result<(Vec<Solution>, Vec<Duration>), Vec<Diag>> {
    let derivs = k.derivs.as_ref().map(|(j, d)| (j, d));
    let mut sols = Vec::with_capacity(samples.len());
    let mut solve_times = Vec::with_capacity(samples.len());
    for x in samples {
        let u0 = match &y0 {
            Some(y) => y.clone(),
            None => initial_state(k, weights, x, t0, meta.columns.len())?,
        };
        let mut field = JitField::linked(&k.field, derivs, weights, x).map_err(|d| vec![d])?;
        let start = Instant::now();
        let sol = solve_with(settings.method, &mut field, t0, t1, &u0, &settings.opts)
            .map_err(|e| vec![Diag::from(e)])?;
        solve_times.push(start.elapsed());
        sols.push(sol);
    }
    Ok((sols, solve_times))
}

/// A classifier's `--input` rows: `glassbox predict --input`'s CSV (`class,logit_0,...`) and
/// its `--stats`. Batched or per row by `predict`'s rule (`train::solves_batched`, on the
/// linked batched field) and, batched, through `predict`'s own code (`train::predict_batched`
/// on the linked batched kernels); per row, each row's solve on its own and the head on its
/// state at `t1`.
fn classify(
    meta: &Meta,
    weights: &[f64],
    (k, head, batch): (&Linked, &Kernel, Option<LinkedBatch>),
    settings: &Settings,
    samples: &[Vec<f64>],
    (t0, t1): (f64, f64),
) -> Result<(String, ForwardStats), Vec<Diag>> {
    let control = match &meta.batch {
        Some(b) => BatchControl::from_name(&b.control).ok_or_else(damaged)?,
        None => BatchControl::PerRow,
    };
    let classes = head.output_len();
    let (logits, stats) = match batch {
        Some(b) if solves_batched(control, samples.len(), b.field.uses_gemm()) => {
            let Method::Explicit(tab) = settings.method else {
                return Err(damaged());
            };
            let mut field = JitBatchField::from_kernel(b.field, weights).map_err(|d| vec![d])?;
            let ends = BatchEnds::from_kernels(b.init, b.head, (t0, t1));
            let kernels = (&mut field, &ends);
            predict_batched(kernels, tab, &settings.opts, control, weights, samples)
                .map_err(|d| vec![d])?
        }
        _ => {
            let start = Instant::now();
            let mut stats = ForwardStats::new(ForwardPath::PerRow, control, samples.len());
            let span = (t0, t1, None);
            let (sols, _) = solve_rows(meta, weights, k, settings, samples, span)?;
            let mut z = Vec::with_capacity(samples.len() * classes);
            for (x, sol) in samples.iter().zip(&sols) {
                stats.nfe += sol.stats.nfe;
                let u1 = sol.last().unwrap_or(&[]);
                z.extend(call_kernel(head, t1, u1, weights, x, &[]).map_err(|d| vec![d])?);
            }
            stats.solve_ms = start.elapsed().as_secs_f64() * 1e3;
            (z, stats)
        }
    };
    let csv = to_csv(&Csv::Logits {
        logits: &logits,
        k: classes,
        labels: None,
    });
    Ok((csv, stats))
}

/// `--at`, else the times the model gives (`[t0, t1]` and the save times).
pub(super) fn output_times(meta: &Meta, m: &ArgMatches) -> Result<(f64, f64, Vec<f64>), Vec<Diag>> {
    Ok(match m.get_one::<String>("at") {
        Some(s) => {
            let times = at_grid(s)?;
            let (Some(&a), Some(&b)) = (times.first(), times.last()) else {
                return Err(bad_arg(
                    format!("`--at {s}` gives no times"),
                    "e.g. --at 0:10:101",
                ));
            };
            (a, b, times)
        }
        None => match meta.span.as_slice() {
            &[a, b] => (a, b, meta.times.clone()),
            _ => {
                return Err(bad_arg(
                    "no output times: the model gives none".into(),
                    "give --at T0:T1:N, e.g. --at 0:10:101",
                ));
            }
        },
    })
}

/// The method and options `glassbox build` recorded.
struct Settings {
    method: Method,
    opts: SolveOptions,
}

impl Settings {
    fn new(meta: &Meta, save_at: Vec<f64>) -> Result<Settings, Vec<Diag>> {
        let &[rtol, atol] = meta.tolerances.as_slice() else {
            return Err(damaged());
        };
        let method = Method::from_name(&meta.method, rtol).ok_or_else(damaged)?;
        Ok(Settings {
            method,
            opts: SolveOptions {
                rtol,
                atol,
                h0: meta.h0.first().copied(),
                control: StepControl::from_values(&meta.control).ok_or_else(damaged)?,
                dt: meta.dt.first().copied(),
                max_steps: meta.max_steps,
                detect_stiffness: meta.detect_stiffness,
                save_at,
                ..SolveOptions::default()
            },
        })
    }
}

/// Settings `glassbox build` recorded that this runtime cannot read (never the user's doing).
fn damaged() -> Vec<Diag> {
    vec![
        Diag::error(
            "glassbox::internal",
            "this binary's solver settings are damaged",
        )
        .help("rebuild it with `glassbox build`"),
    ]
}

/// `u0(p, x)` at `t0` from the linked initial-state kernel (equal to the interpreter's, which
/// `glassbox predict` uses).
pub(super) fn initial_state(
    k: &Linked,
    p: &[f64],
    x: &[f64],
    t0: f64,
    dim: usize,
) -> Result<Vec<f64>, Vec<Diag>> {
    let t = [t0];
    let u = vec![0.0; dim];
    let args: Vec<&[f64]> = k
        .init
        .args()
        .iter()
        .map(|a| match a.name.as_str() {
            "t" => &t[..],
            "u" => &u[..],
            "p" => p,
            _ => x,
        })
        .collect();
    let mut out = vec![0.0; k.init.output_len()];
    k.init.call(&args, &mut out).map_err(|d| vec![d])?;
    Ok(out)
}

/// `--y0 1,0.5,-2`: exactly one finite value per state column.
pub(super) fn parse_y0(s: &str, dim: usize) -> Result<Vec<f64>, Vec<Diag>> {
    let help = format!("give {dim} comma-separated numbers, e.g. --y0 {}", {
        vec!["0"; dim].join(",")
    });
    let values: Vec<f64> = s
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    bad_arg(format!("`{v}` in `--y0 {s}` is not a finite number"), &help)
                })
        })
        .collect::<Result<_, _>>()?;
    if values.len() != dim {
        return Err(bad_arg(
            format!(
                "`--y0 {s}` has {} values for {dim} state columns",
                values.len()
            ),
            &help,
        ));
    }
    Ok(values)
}

/// The rows of an input CSV: `n` finite numbers each; a first line that is not numbers is a
/// header.
fn read_inputs(path: &Path, n: usize) -> Result<Vec<Vec<f64>>, Vec<Diag>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![
            path_error("read", path, &e)
                .help("check the path: it is relative to the current directory"),
        ]
    })?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Option<Vec<f64>> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect();
        let Some(row) = parsed else {
            if rows.is_empty() && i == 0 {
                continue; // a header
            }
            return Err(bad_arg(
                format!(
                    "`{}` line {}: not all fields are finite numbers",
                    path.display(),
                    i + 1
                ),
                "write one sample a row: numbers separated by commas",
            ));
        };
        if row.len() != n {
            return Err(bad_arg(
                format!(
                    "`{}` line {}: {} values, the model's inputs take {n}",
                    path.display(),
                    i + 1,
                    row.len()
                ),
                "write one sample a row, its input values in declaration order",
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(bad_arg(
            format!("`{}` holds no samples", path.display()),
            "write one sample a row",
        ));
    }
    Ok(rows)
}

/// `glassbox predict`'s CSV; with several samples, a leading `sample` column.
pub(super) fn csv(columns: &[String], sols: &[Solution], per_sample: bool) -> String {
    match (per_sample, sols.first()) {
        (true, _) => to_csv(&Csv::Samples {
            names: columns,
            sols,
        }),
        (false, Some(sol)) => to_csv(&Csv::Trajectory {
            names: columns,
            sol,
        }),
        (false, None) => String::new(),
    }
}

/// The binary's JSON: one solve per sample.
pub(super) fn json(meta: &Meta, sols: &[Solution]) -> String {
    to_json(&Json::Samples {
        model: &meta.model,
        names: &meta.columns,
        sols,
    })
}

/// `--input` given to a binary whose model declares no `input`.
pub(super) fn no_inputs(path: &std::path::Path, model: &str) -> Vec<Diag> {
    bad_arg(
        format!(
            "`--input {}`: `{model}` declares no `input`",
            path.display()
        ),
        "remove --input",
    )
}
