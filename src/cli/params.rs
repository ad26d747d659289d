//! `glassbox params RUN`: a run's parameters, read from its `weights.safetensors` (or that
//! file itself) without the model, in the order its `run.json` lists them — scalars and small tensors by value, larger ones by shape
//! and norm, marked `(fixed)` when not learned; `--format json` for tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::OutputFormat;
use crate::app::params::{self, ParamSummary};
use crate::diag::Diag;
use crate::kit::{emit, load_params};

#[derive(Debug, Args)]
pub struct ParamsArgs {
    /// The run directory `glassbox train` wrote (its weights.safetensors), or a weights file.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Output format: `human` (one line per parameter) or `json` (one document).
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Serialize)]
struct ParamsJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    params: &'a [ParamSummary],
}

pub fn run(args: &ParamsArgs) -> ExitCode {
    match print_params(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(diags) => {
            emit(&diags);
            ExitCode::FAILURE
        }
    }
}

fn print_params(args: &ParamsArgs) -> Result<(), Vec<Diag>> {
    let (model, summaries) = load_params(&args.run)?;
    match args.format {
        OutputFormat::Human => {
            if let Some(m) = &model {
                println!("model {m}");
            }
            print!("{}", params::text(&summaries));
        }
        OutputFormat::Json => {
            let json = ParamsJson {
                model: model.as_deref(),
                params: &summaries,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
    }
    Ok(())
}
