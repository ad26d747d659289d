//! The `glassbox` executable: parses the command line and dispatches each command to its front
//! end — the CLI's subcommands (`glassbox::cli`) or the REPL (`glassbox::repl`). The top-level
//! command lives here, not in `cli`, so no front end imports another (`tests/suite/tidy.rs`).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use glassbox::kit::usage;
use glassbox::{cli, kit, repl};

/// glassbox: a compiler and trainer for differential models whose solver is a glass box.
#[derive(Debug, Parser)]
#[command(name = "glassbox", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check model files: parse, resolve names, check shapes, options and data declarations.
    ///
    /// Exits 0 and prints a short summary of each model (states, parameters, nets, equations,
    /// solver, objective), or exits 1 and prints every diagnostic.
    Check(cli::check::CheckArgs),
    /// Print the simplified vector field of a model, or a derived object (VJP, JVP, Jacobian,
    /// time derivatives), as readable math or LaTeX.
    Show(cli::show::ShowArgs),
    /// Print model files in canonical form (or check that they already are).
    Fmt(cli::fmt::FmtArgs),
    /// Solve a model (compiled with the JIT) and write its trajectory, a plot and statistics.
    Solve(Box<cli::solve::SolveArgs>),
    /// Train a model's learned parameters on its data (dfdx; discrete adjoint through the
    /// solver) and write weights, checkpoints, metrics and plots to a run directory.
    Train(Box<cli::train::TrainArgs>),
    /// Solve a model with trained weights and write the trajectory as CSV.
    Predict(cli::predict::PredictArgs),
    /// Print a training run's parameters: scalars and small tensors by value, larger ones by
    /// shape and norm (read from its weights.safetensors).
    Params(cli::params::ParamsArgs),
    /// An interactive session: enter declarations and expressions, show, differentiate and
    /// solve the model as it grows. With piped input, runs it as a script.
    Repl(repl::ReplArgs),
    /// Compile a model (with trained weights) ahead of time into a standalone executable that
    /// needs only the C library and libm; links with the system C compiler.
    Build(cli::build::BuildArgs),
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
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

/// The command line, or the exit status after `--help`, `--version` or a mistake — the
/// mistake printed as a `glassbox::bad_argument` diagnostic with a help line (exit status 2,
/// clap's for a usage error).
fn parse() -> Result<Cli, ExitCode> {
    let mut cmd = usage::allow_negative_numbers(Cli::command());
    let matches = cmd.try_get_matches_from_mut(std::env::args_os());
    let parsed = matches.and_then(|m| Cli::from_arg_matches(&m));
    parsed.map_err(|e| {
        if usage::is_answer(&e) {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        let command = std::env::args().nth(1).filter(|c| !c.starts_with('-'));
        let known = command
            .as_deref()
            .filter(|c| cmd.find_subcommand(c).is_some());
        let help = match known {
            Some(c) => format!("`glassbox {c} --help` lists its flags"),
            None => "`glassbox --help` lists the commands".to_string(),
        };
        kit::emit(&[usage::clap_diag(&e, None, &help)]);
        ExitCode::from(2)
    })
}

/// The one place that knows every front end: each command goes to its module.
fn run(parsed: Cli) -> ExitCode {
    match parsed.command {
        Command::Check(args) => cli::check::run(&args),
        Command::Show(args) => cli::show::run(&args),
        Command::Fmt(args) => cli::fmt::run(&args),
        Command::Solve(args) => cli::solve::run(&args),
        Command::Train(args) => cli::train::run(&args),
        Command::Predict(args) => cli::predict::run(&args),
        Command::Params(args) => cli::params::run(&args),
        Command::Repl(args) => repl::run(&args),
        Command::Build(args) => cli::build::run(&args),
    }
}
