//! The command-line front end (clap). It does the IO the core does not: reading files,
//! printing, rendering diagnostics. Each subcommand lives in its own module.

mod build;
mod check;
mod fmt;
pub(crate) mod plot;
pub(crate) mod predict;
mod render;
mod show;
pub(crate) mod solve;
mod solve_grad;
pub(crate) mod solve_sde;
pub(crate) mod train;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diag::Diag;
use crate::source::SourceFile;

pub use render::render_diag;

/// glassbox: a compiler and trainer for differential models whose solver is a glass box.
#[derive(Debug, Parser)]
#[command(name = "glassbox", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check model files: parse, resolve names, check shapes, options and data declarations.
    ///
    /// Exits 0 and prints a short summary of each model (states, parameters, nets, equations,
    /// solver, objective), or exits 1 and prints every diagnostic.
    Check(check::CheckArgs),
    /// Print the simplified vector field of a model, or a derived object (VJP, JVP, Jacobian,
    /// time derivatives), as readable math or LaTeX.
    Show(show::ShowArgs),
    /// Print model files in canonical form (or check that they already are).
    Fmt(fmt::FmtArgs),
    /// Solve a model (compiled with the JIT) and write its trajectory, a plot and statistics.
    Solve(Box<solve::SolveArgs>),
    /// Train a model's learned parameters on its data (dfdx; discrete adjoint through the
    /// solver) and write weights, checkpoints, metrics and plots to a run directory.
    Train(Box<train::TrainArgs>),
    /// Solve a model with trained weights and write the trajectory as CSV.
    Predict(predict::PredictArgs),
    /// An interactive session: enter declarations and expressions, show, differentiate and
    /// solve the model as it grows. With piped input, runs it as a script.
    Repl(crate::repl::ReplArgs),
    /// Compile a model (with trained weights) ahead of time into a standalone executable that
    /// needs only the C library and libm; links with the system C compiler.
    Build(build::BuildArgs),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people, with rendered diagnostics.
    #[default]
    Human,
    /// One JSON document on stdout, for tools.
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Defence in depth: the parser bounds nesting, but run the compiler on a large stack so no
    // input can overflow it.
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(move || run(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("glassbox: internal error (this is a bug; please report it with the input)");
            ExitCode::from(101)
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Solve(args) => solve::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Repl(args) => crate::repl::run(&args),
        Command::Build(args) => build::run(&args),
    }
}

/// Read and decode a model file; IO and encoding problems are diagnostics like any other.
pub(crate) fn load_source(path: &Path) -> Result<Arc<SourceFile>, Diag> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diag::error(
            "glassbox::io_error",
            format!("cannot read `{}`: {e}", path.display()),
        )
        .help(match e.kind() {
            std::io::ErrorKind::NotFound => {
                "check the path: it is relative to the current directory"
            }
            std::io::ErrorKind::PermissionDenied => "check the file's permissions",
            _ => "check that the path names a readable file",
        })
    })?;
    crate::syntax::decode(&path.display().to_string(), bytes)
}
