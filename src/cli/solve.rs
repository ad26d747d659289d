//! `glassbox solve FILE`: check, compile the field (JIT), integrate, and write the trajectory
//! (CSV or JSON), a plot and the solver's statistics. SDE models: every path (CSV
//! `path,t,<states>`, or JSON), the mean ± one standard deviation plot, the statistics summed
//! over paths; `--grad`: the gradient of the mean final value (CSV `param,gradient`, or JSON).
//!
//! Defaults come from the model's `solve` clause; flags override them (`app::solve::plan`).
//! Output files are written to a temporary file in the target's directory and renamed, so a
//! failed solve or write never leaves a half-written file; a failure is a diagnostic and exit
//! status 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::app::export::{Csv, Json, StatsOf, stats_text, to_csv, to_json};
use crate::app::solve::{self as plans, SolvePlan, state_names};
use crate::app::{SolveRequest, grad, sde};
use crate::diag::Diag;
use crate::kit::flags::SolveFlags;
use crate::kit::output::{is_json, print_stats, write_or_print};
use crate::kit::plot::{plot_ode, plot_sde};
use crate::kit::{emit, load_source, write_atomic};
use crate::sema::Model;
use crate::solve;
use crate::source::DiskLoader;

#[derive(Debug, Args)]
pub struct SolveArgs {
    /// The model file (`*.gbx`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub flags: SolveFlags,
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

fn solve_file(args: &SolveArgs) -> Result<(), Vec<Diag>> {
    let file = load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    let flags = &args.flags;
    let p = solve::param_values(&model);
    match plans::plan(&SolveRequest::from(flags), &model)? {
        SolvePlan::Ode(plan) => ode(flags, &model, &plan, &p),
        SolvePlan::Sde(plan) => paths(flags, &model, &plan, &p),
        SolvePlan::Gradient(plan) => gradient(flags, &model, &plan, &p),
    }
}

fn ode(flags: &SolveFlags, model: &Model, plan: &plans::Plan, p: &[f64]) -> Result<(), Vec<Diag>> {
    let run = plans::run_ode(model, plan, p, flags.repeat)?;
    let (sol, timing) = (&run.sol, run.timing);
    let names = &state_names(model);
    let name = &model.name;
    write_solution(
        flags,
        &Results {
            csv: &|| to_csv(&Csv::Trajectory { names, sol }),
            json: &|| {
                let model = name;
                to_json(&Json::Solve {
                    model,
                    names,
                    sol,
                    timing,
                })
            },
            plot: &|path| plot_ode(path, name, names, sol, plan.opts.rtol),
            stats: &|| stats_text(&StatsOf::Solve { sol, timing }),
        },
    )
}

fn paths(flags: &SolveFlags, model: &Model, plan: &sde::Plan, p: &[f64]) -> Result<(), Vec<Diag>> {
    let run = sde::run(model, plan, p, flags.repeat)?;
    let (sol, timing) = (&run.sol, run.timing);
    let names = &state_names(model);
    let name = &model.name;
    write_solution(
        flags,
        &Results {
            csv: &|| to_csv(&Csv::Paths { names, sol }),
            json: &|| {
                let model = name;
                to_json(&Json::Paths {
                    model,
                    names,
                    plan,
                    sol,
                    timing,
                })
            },
            plot: &|path| plot_sde(path, name, names, plan, sol),
            // The thread count only here: the REPL's and a binary's statistics stay the same
            // on every machine.
            stats: &|| {
                let text = stats_text(&StatsOf::Paths { plan, sol, timing });
                format!("{text}threads           {}\n", plan.threads)
            },
        },
    )
}

/// A solve's results, each made only when it is written.
struct Results<'a> {
    csv: &'a dyn Fn() -> String,
    json: &'a dyn Fn() -> String,
    plot: &'a dyn Fn(&Path) -> Result<(), Diag>,
    stats: &'a dyn Fn() -> String,
}

/// `-o FILE` (CSV, or JSON by extension), `--plot`, the CSV on stdout when neither is given,
/// and `--stats` (on stderr when the CSV is on stdout).
fn write_solution(flags: &SolveFlags, r: &Results) -> Result<(), Vec<Diag>> {
    let csv_to_stdout = flags.output.is_none() && flags.plot.is_none();
    if let Some(path) = &flags.output {
        let text = if is_json(path) { (r.json)() } else { (r.csv)() };
        write_atomic(path, text.as_bytes()).map_err(|d| vec![d])?;
    }
    if let Some(path) = &flags.plot {
        (r.plot)(path).map_err(|d| vec![d])?;
    }
    if csv_to_stdout {
        print!("{}", (r.csv)());
    }
    if flags.stats {
        print_stats(&(r.stats)(), csv_to_stdout);
    }
    Ok(())
}

fn gradient(
    flags: &SolveFlags,
    model: &Model,
    plan: &sde::Plan,
    p: &[f64],
) -> Result<(), Vec<Diag>> {
    let run = grad::run(model, plan, p, flags.repeat)?;
    let (g, timing) = (&run.g, run.timing);
    let output = flags.output.as_deref();
    let text = if output.is_some_and(is_json) {
        to_json(&Json::Gradient {
            model,
            plan,
            g,
            timing,
        })
    } else {
        to_csv(&Csv::Gradient { model, g })
    };
    write_or_print(output, &text)?;
    if flags.stats {
        let text = stats_text(&StatsOf::Gradient { plan, g, timing });
        print_stats(&text, output.is_none());
    }
    Ok(())
}
