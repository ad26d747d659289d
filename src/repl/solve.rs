//! `:solve [OPTIONS]`: the CLI's solve flags (`kit::flags`), planned and run by the same
//! `app::solve` pipeline, shown as a summary and a text plot — for ODE models the solve, for
//! SDE models the mean ± one standard deviation over the paths at the final time and a plot
//! of the mean path. `-o FILE.csv` and `--plot FILE.png` write what `glassbox solve` writes.

use std::fmt::Write as _;
use std::path::Path;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::math::format_number;
use super::textplot;
use crate::app::export::{Csv, StatsOf, stats_text, to_csv};
use crate::app::sde::{self, mean_sd};
use crate::app::solve::{self as plans, SolvePlan, state_names};
use crate::app::{SolveRequest, grad};
use crate::diag::Diag;
use crate::kit::flags::SolveFlags;
use crate::kit::plot::{plot_ode, plot_sde};
use crate::kit::{usage, write_atomic};
use crate::sema::Model;

/// A clap parser for `:solve`'s options: the CLI's own flags.
#[derive(Debug, Parser)]
#[command(name = ":solve", no_binary_name = true, disable_version_flag = true)]
struct SolveCmd {
    #[command(flatten)]
    flags: SolveFlags,
}

/// What `:solve` printed, and the statistics `:stats` shows.
pub struct Solved {
    pub out: String,
    pub stats: String,
}

/// The text plot's size in characters.
const PLOT: (usize, usize) = (64, 14);

/// Parse `rest` as `:solve`'s options.
pub fn flags(rest: &str) -> Result<SolveFlags, Vec<Diag>> {
    let cmd = usage::allow_negative_numbers(SolveCmd::command());
    let matches = cmd.try_get_matches_from(rest.split_whitespace());
    let cmd = matches
        .and_then(|m| SolveCmd::from_arg_matches(&m))
        .map_err(|e| {
            vec![usage::clap_diag(
                &e,
                Some(":solve"),
                "options: --over T0:T1, --at T0:T1:N, --method M, --rtol R, --atol A, --dt DT, \
                 --plot FILE.png, -o FILE.csv, --stats",
            )]
        })?;
    Ok(cmd.flags)
}

/// Solve `model` with parameters `p` as `flags` ask.
pub fn solve(flags: &SolveFlags, model: &Model, p: &[f64]) -> Result<Solved, Vec<Diag>> {
    match plans::plan(&SolveRequest::from(flags), model)? {
        SolvePlan::Ode(plan) => ode(flags, model, &plan, p),
        SolvePlan::Sde(plan) => paths(flags, model, &plan, p),
        SolvePlan::Gradient(plan) => gradient(flags, model, &plan, p),
    }
}

fn ode(
    flags: &SolveFlags,
    model: &Model,
    plan: &plans::Plan,
    p: &[f64],
) -> Result<Solved, Vec<Diag>> {
    let run = plans::run_ode(model, plan, p, flags.repeat)?;
    let sol = &run.sol;
    let names = state_names(model);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: t = {} → {}, {} steps ({} rejected), {} evaluations",
        sol.method,
        format_number(plan.t0),
        format_number(plan.t1),
        sol.stats.accepted,
        sol.stats.rejected,
        sol.stats.nfe
    );
    if let Some(last) = sol.last() {
        let finals: Vec<String> = names
            .iter()
            .zip(last)
            .map(|(n, x)| format!("{n} = {}", format_number(*x)))
            .collect();
        let _ = writeln!(out, "final: {}", finals.join(", "));
    }
    out.push_str(&textplot::plot(&names, &sol.ts, &sol.us, PLOT.0, PLOT.1));
    let csv = || to_csv(&Csv::Trajectory { names: &names, sol });
    let plot = |path: &Path| plot_ode(path, &model.name, &names, sol, plan.opts.rtol);
    let stats = stats_text(&StatsOf::Solve {
        sol,
        timing: run.timing,
    });
    files(flags, &mut out, csv, plot)?;
    Ok(finish(flags, out, stats))
}

fn paths(
    flags: &SolveFlags,
    model: &Model,
    plan: &sde::Plan,
    p: &[f64],
) -> Result<Solved, Vec<Diag>> {
    let run = sde::run(model, plan, p, flags.repeat)?;
    let sol = &run.sol;
    let names = state_names(model);
    let ts = plan.opts.save_at.as_slice();
    let (mean, sd) = mean_sd(sol, ts.len(), names.len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: t = {} → {}, {} path{} (seed {}), {} steps ({} rejected), {} evaluations",
        plan.method.name(),
        format_number(plan.t0),
        format_number(plan.t1),
        plan.paths,
        if plan.paths == 1 { "" } else { "s" },
        plan.seed,
        sol.stats.accepted,
        sol.stats.rejected,
        sol.stats.nfe
    );
    let last = ts.len().saturating_sub(1) * names.len();
    if let (Some(m), Some(s)) = (mean.get(last..), sd.get(last..)) {
        let finals: Vec<String> = names
            .iter()
            .zip(m.iter().zip(s))
            .map(|(n, (m, s))| format!("{n} = {} ± {}", format_number(*m), format_number(*s)))
            .collect();
        let _ = writeln!(out, "final (mean ± sd): {}", finals.join(", "));
    }
    out.push_str("mean path:\n");
    out.push_str(&textplot::plot(&names, ts, &mean, PLOT.0, PLOT.1));
    let csv = || to_csv(&Csv::Paths { names: &names, sol });
    let plot = |path: &Path| plot_sde(path, &model.name, &names, plan, sol);
    let stats = stats_text(&StatsOf::Paths {
        plan,
        sol,
        timing: run.timing,
    });
    files(flags, &mut out, csv, plot)?;
    Ok(finish(flags, out, stats))
}

/// `--grad`: the gradient as `glassbox solve --grad` prints it (or into `-o FILE`).
fn gradient(
    flags: &SolveFlags,
    model: &Model,
    plan: &sde::Plan,
    p: &[f64],
) -> Result<Solved, Vec<Diag>> {
    let run = grad::run(model, plan, p, flags.repeat)?;
    let (g, timing) = (&run.g, run.timing);
    let csv = to_csv(&Csv::Gradient { model, g });
    let mut out = String::new();
    match &flags.output {
        Some(path) => {
            write_atomic(path, csv.as_bytes()).map_err(|d| vec![d])?;
            let _ = writeln!(out, "wrote {}", path.display());
        }
        None => out = csv,
    }
    let stats = stats_text(&StatsOf::Gradient { plan, g, timing });
    Ok(finish(flags, out, stats))
}

/// `-o FILE.csv` and `--plot FILE.png`, each noted in the output.
fn files(
    flags: &SolveFlags,
    out: &mut String,
    csv: impl FnOnce() -> String,
    plot: impl FnOnce(&Path) -> Result<(), Diag>,
) -> Result<(), Vec<Diag>> {
    if let Some(path) = &flags.output {
        write_atomic(path, csv().as_bytes()).map_err(|d| vec![d])?;
        let _ = writeln!(out, "wrote {}", path.display());
    }
    if let Some(path) = &flags.plot {
        plot(path).map_err(|d| vec![d])?;
        let _ = writeln!(out, "wrote {}", path.display());
    }
    Ok(())
}

fn finish(flags: &SolveFlags, mut out: String, stats: String) -> Solved {
    if flags.stats {
        out.push_str(&stats);
    }
    Solved { out, stats }
}
