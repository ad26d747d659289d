//! `glassbox predict FILE --weights DIR`: solve a model with trained weights
//! (`DIR/weights.safetensors`, or the file itself) and write the trajectory as CSV
//! (`t,<states>`), to `-o FILE` atomically or to stdout. A classifier (`cross_entropy`)
//! instead predicts table rows: `--input FILE` (a CSV laid out like the model's data; only
//! its feature columns are read), else the model's own data with its labels (accuracy on
//! stderr); CSV `class[,label],logit_0,...`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::predict::{self, PredictRequest};
use crate::diag::Diag;
use crate::kit::output::write_or_print;
use crate::kit::{emit, load_source, load_weights};
use crate::source::DiskLoader;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file (`*.gbx`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The run directory (with weights.safetensors) or a safetensors file.
    #[arg(long, value_name = "DIR")]
    pub weights: PathBuf,
    /// `N` equally spaced output times from `T0` to `T1` (default: the data's times, else the
    /// model's solve clause).
    #[arg(long, value_name = "T0:T1:N")]
    pub at: Option<String>,
    /// Classifiers: the samples to classify, a CSV laid out like the model's data (default:
    /// the model's data, all of it); with the data's label column too, they are also scored.
    #[arg(long, value_name = "FILE", conflicts_with = "at")]
    pub input: Option<PathBuf>,
    /// Classifiers: threads the samples run on (default: every core; same logits at any count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
    /// Classifiers: print how the forward solves ran (batched or per row) and their cost to
    /// stderr.
    #[arg(long)]
    pub stats: bool,
    /// Write the CSV here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: &PredictArgs) -> ExitCode {
    match predict_file(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(diags) => {
            emit(&diags);
            ExitCode::FAILURE
        }
    }
}

fn predict_file(args: &PredictArgs) -> Result<(), Vec<Diag>> {
    let file = load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    let plan = predict::plan(&model, &file)?;
    let p = load_weights(&model, &args.weights)?;
    let req = PredictRequest {
        at: args.at.as_deref(),
        input: args.input.as_deref(),
        threads: args.threads.map(|n| n as usize),
    };
    let prediction = predict::predict(&model, &file, &plan, &p, &req, &DiskLoader)?;
    if let Some(s) = &prediction.score {
        eprintln!(
            "accuracy {:.4} over {} samples (cross-entropy {:.4e})",
            s.accuracy, s.samples, s.cross_entropy
        );
    }
    if let (true, Some(f)) = (args.stats, &prediction.forward) {
        eprint!("{}{}", f.describe(), crate::kit::memory::stats_line());
    }
    write_or_print(args.output.as_deref(), &prediction.csv)
}
