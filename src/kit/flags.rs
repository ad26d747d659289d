//! The solve flags, parsed by clap in two places: `glassbox solve FILE [FLAGS]` and the REPL's
//! `:solve [FLAGS]`. One definition, so both accept the same flags with the same help, and
//! one conversion into the application layer's plain [`SolveRequest`].

use std::path::PathBuf;

use clap::Args;

use crate::app::SolveRequest;
use crate::solve::registry;

#[derive(Debug, Args)]
pub struct SolveFlags {
    /// Time span `T0:T1`; the output has every accepted step.
    // Hyphen values: a span may start below zero (`--over -1:1`).
    #[arg(
        long,
        value_name = "T0:T1",
        conflicts_with = "at",
        allow_hyphen_values = true
    )]
    pub over: Option<String>,
    /// `N` equally spaced output times from `T0` to `T1` (dense output between steps).
    #[arg(long, value_name = "T0:T1:N", allow_hyphen_values = true)]
    pub at: Option<String>,
    #[arg(long, value_name = "M", help = method_help())]
    pub method: Option<String>,
    /// Relative tolerance of the adaptive step control (default: the model's solve clause,
    /// else 1e-6).
    #[arg(long, value_name = "R")]
    pub rtol: Option<f64>,
    /// Absolute tolerance of the adaptive step control (default: the model's solve clause,
    /// else 1e-9).
    #[arg(long, value_name = "A")]
    pub atol: Option<f64>,
    /// Fixed step size: needed by fixed-step methods (euler, rk4, euler_maruyama, milstein,
    /// ...) unless the model's solve clause gives `dt`; adaptive methods given `dt` run on that
    /// grid and still record their error estimates (not with `auto`).
    // Hyphen values: a negative step reaches the solver's own check, which says what is wrong.
    #[arg(long, value_name = "DT", allow_hyphen_values = true)]
    pub dt: Option<f64>,
    /// SDE models only: the seed of the Brownian paths (default 0).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// SDE models only: the number of sample paths (default 1, or 100 with --plot).
    #[arg(long, value_name = "N")]
    pub paths: Option<usize>,
    /// SDE models only: threads the paths run on (default: every core; the same paths at any
    /// count).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
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

/// `--method`'s help: the registry's methods.
fn method_help() -> String {
    let names = |sde: bool| registry::names(|m| m.is_sde() == sde).join(" ");
    format!(
        "Solver (default: the model's). ODE: {}; SDE: {}",
        names(false),
        names(true)
    )
}

impl From<&SolveFlags> for SolveRequest {
    fn from(f: &SolveFlags) -> SolveRequest {
        SolveRequest {
            over: f.over.clone(),
            at: f.at.clone(),
            save_at: None,
            method: f.method.clone(),
            rtol: f.rtol,
            atol: f.atol,
            dt: f.dt,
            seed: f.seed,
            paths: f.paths,
            threads: f.threads.map(|n| n as usize),
            repeat: f.repeat,
            grad: f.grad,
            plot: f.plot.is_some(),
        }
    }
}
