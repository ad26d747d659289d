//! `glassbox build FILE [--weights DIR] -o BIN`: compile a model ahead of time into a
//! standalone executable (`src/aot`, `docs/build.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::build::Weights;
use crate::diag::Diag;
use crate::kit::{build, emit, link, load_source, load_weights};
use crate::source::DiskLoader;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The model file (`*.gbx`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Trained weights: a run directory (with weights.safetensors) or a safetensors file.
    /// Default: the model's initial values.
    #[arg(long, value_name = "DIR")]
    pub weights: Option<PathBuf>,
    /// The executable to write (default: the model's name, in the current directory).
    #[arg(short = 'o', long = "output", value_name = "BIN")]
    pub output: Option<PathBuf>,
}

pub fn run(args: &BuildArgs) -> ExitCode {
    match build(args) {
        Ok(out) => {
            eprintln!("built {}", out.display());
            ExitCode::SUCCESS
        }
        Err(diags) => {
            emit(&diags);
            ExitCode::FAILURE
        }
    }
}

fn build(args: &BuildArgs) -> Result<PathBuf, Vec<Diag>> {
    let file = load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    // Before compiling: a missing runtime is the user's setup, not the model's.
    let runtime = link::runtime_library().map_err(|d| vec![d])?;
    let weights = match &args.weights {
        Some(path) => Some(Weights {
            values: load_weights(&model, path)?,
            source: path.display().to_string(),
        }),
        None => None,
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&model.name));
    build::write_binary(&model, &file, weights, &runtime, &out)?;
    Ok(out)
}
