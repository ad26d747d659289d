//! `glassbox predict FILE --weights DIR`: solve a model with trained weights
//! (`DIR/weights.safetensors`, or the file itself) and write the trajectory as CSV
//! (`t,<states>`), to `-o FILE` atomically or to stdout. A classifier (`cross_entropy`)
//! instead predicts table rows: `--input FILE` (a CSV laid out like the model's data; only
//! its feature columns are read), else the model's own data with its labels (accuracy on
//! stderr); CSV `class[,label],logit_0,...`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::render::emit;
use super::solve::{bad_arg, grid, parse_floats, state_names, to_csv, write_atomic};
use crate::data::{self, Dataset};
use crate::diag::Diag;
use crate::sema::{DataLayout, Loss, Model, SolveTimes};
use crate::source::{DiskLoader, SourceFile};
use crate::train::{self, Overrides, Plan, io};

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
    /// the model's data, all of it).
    #[arg(long, value_name = "FILE", conflicts_with = "at")]
    pub input: Option<PathBuf>,
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
    let file = super::load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    let loc = |d: Diag| in_file(d, &file);
    let plan = train::plan(&model, &Overrides::default()).map_err(loc)?;
    let p = load_weights(&model, &args.weights)?;
    if plan.loss.loss == Loss::CrossEntropy {
        let text = classify(&model, &plan, &p, args.input.as_deref(), &file).map_err(loc)?;
        return write_out(args, &text);
    }
    let times = match &args.at {
        Some(s) => at_grid(s)?,
        None => default_times(&model, &file, &plan)?.ok_or_else(|| {
            bad_arg(
                "no prediction times: give --at T0:T1:N".into(),
                "e.g. --at 0:10:101",
            )
        })?,
    };
    let sol = train::predict(&model, &p, &plan, &times).map_err(loc)?;
    write_out(args, &to_csv(&state_names(&model), &sol))
}

/// `--at T0:T1:N` as its grid.
pub(crate) fn at_grid(s: &str) -> Result<Vec<f64>, Vec<Diag>> {
    let v = parse_floats(s, "at", 3)?;
    let n = v[2];
    if !(n >= 2.0 && n.fract() == 0.0 && n <= 1e7) || v[0] == v[1] {
        return Err(bad_arg(
            format!(
                "`--at {s}`: N = {n} must be a whole number from 2 to 10 000 000 over a non-empty span"
            ),
            "N counts the output times, both ends included",
        ));
    }
    Ok(grid(v[0], v[1], n as usize))
}

/// The times a prediction is saved at without `--at`: the first trajectory of the loss's
/// data, else the model's solve clause (101 points over its span); `None` when neither gives
/// any.
pub(crate) fn default_times(
    model: &Model,
    file: &Arc<SourceFile>,
    plan: &Plan,
) -> Result<Option<Vec<f64>>, Vec<Diag>> {
    let datasets =
        data::load_model(model, Some(file), &DiskLoader).map_err(|d| in_file(d, file))?;
    Ok(match datasets.get(plan.loss.data) {
        Some(Dataset::Trajectories { paths, .. }) if !paths.is_empty() => Some(paths[0].t.to_vec()),
        _ => match model.solve.as_ref().and_then(|s| s.times.clone()) {
            Some(SolveTimes::At { times }) => Some(times),
            Some(SolveTimes::Over { t0, t1 }) => Some(grid(t0, t1, 101)),
            None => None,
        },
    })
}

/// A diagnostic with labels but no file gets the model file (checker and planner
/// diagnostics point into it).
pub(crate) fn in_file(d: Diag, file: &Arc<SourceFile>) -> Vec<Diag> {
    if d.file.is_none() && !d.labels.is_empty() {
        vec![d.in_file(file)]
    } else {
        vec![d]
    }
}

/// The weights in `path`: a run directory (its `weights.safetensors`) or the file itself.
pub(crate) fn load_weights(model: &Model, path: &Path) -> Result<Vec<f64>, Vec<Diag>> {
    let path = if path.is_dir() {
        path.join("weights.safetensors")
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        vec![
            Diag::error(
                "glassbox::io_error",
                format!("cannot read `{}`: {e}", path.display()),
            )
            .help(
                "give the run directory `glassbox train` wrote (--out), or its weights.safetensors",
            ),
        ]
    })?;
    io::weights_from_safetensors(model, &bytes).map_err(|d| vec![d])
}

fn write_out(args: &PredictArgs, text: &str) -> Result<(), Vec<Diag>> {
    match &args.output {
        Some(out) => write_atomic(out, text.as_bytes()).map_err(|d| vec![d])?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Logits (`[rows, k]`) as CSV `class[,label],logit_0,...` (shared with the binaries of
/// `glassbox build`, so both write the same bytes).
pub(crate) fn logits_csv(logits: &[f64], k: usize, labels: Option<&[usize]>) -> String {
    let mut text = String::from("class");
    if labels.is_some() {
        text += ",label";
    }
    for i in 0..k {
        text += &format!(",logit_{i}");
    }
    text.push('\n');
    for (i, z) in logits.chunks(k.max(1)).enumerate() {
        text += &train::argmax(z).to_string();
        if let Some(l) = labels.and_then(|l| l.get(i)) {
            text += &format!(",{l}");
        }
        for v in z {
            text += &format!(",{v}");
        }
        text.push('\n');
    }
    text
}

/// A classifier's predictions as CSV: `class[,label],logit_0,...` per row of `input` (its
/// feature columns), else of the model's data (with its labels; accuracy on stderr).
fn classify(
    model: &Model,
    plan: &train::Plan,
    p: &[f64],
    input: Option<&Path>,
    file: &Arc<SourceFile>,
) -> Result<String, Diag> {
    let Some(source) = model.data.get(plan.loss.data) else {
        return Err(
            Diag::error("glassbox::train_missing", "the model has no data source")
                .help("declare the data the classifier was trained on"),
        );
    };
    let mut source = source.clone();
    if let Some(path) = input {
        source.path = path.to_path_buf();
        if let DataLayout::Table { label, .. } = &mut source.layout {
            *label = None;
        }
    }
    let classes = model.labels.first().map(|l| l.classes);
    let opts = data::LoadOptions {
        model_file: Some(file),
        classes,
    };
    let Dataset::Table { x, labels } = data::load_with(&source, &DiskLoader, opts)? else {
        return Err(
            Diag::error("glassbox::bad_argument", "a classifier predicts table rows")
                .help("give --input with one sample per row"),
        );
    };
    let (logits, _, k) = train::predict_table(model, plan, p, &x)?;
    let text = logits_csv(&logits, k, labels.as_deref());
    if let Some(l) = &labels {
        let (ce, acc) = train::score(&logits, l, k);
        eprintln!(
            "accuracy {acc:.4} over {} samples (cross-entropy {ce:.4e})",
            l.len()
        );
    }
    Ok(text)
}
