//! `glassbox predict`: a model solved with trained weights, at the times asked for or the
//! data's. A classifier (`cross_entropy`) instead predicts table rows: an input file laid out
//! like the model's data (only its feature columns are read), else the model's own data with
//! its labels (then scored). Also the times a standalone binary records (`super::build`).

use std::path::Path;
use std::sync::Arc;

use super::export::{Csv, to_csv};
use super::solve::{grid, parse_floats, state_names};
use super::{bad_arg, located};
use crate::data::{self, Dataset};
use crate::diag::Diag;
use crate::sema::{Loss, Model, SolveTimes};
use crate::source::{Loader, SourceFile};
use crate::train::{self, Overrides, Plan};

/// What `glassbox predict` is asked: the output times (`--at T0:T1:N`) or, for a
/// classifier, the samples (`--input FILE`).
#[derive(Clone, Debug, Default)]
pub struct PredictRequest<'a> {
    pub at: Option<&'a str>,
    pub input: Option<&'a Path>,
    /// Classifiers: threads the samples run on (`None`: every core; same logits at any count).
    pub threads: Option<usize>,
}

/// A prediction as CSV; a classifier scored on labelled data also has its score.
pub struct Prediction {
    pub csv: String,
    pub score: Option<Score>,
    /// A classifier's forward solves: batched or per row, and their cost (`--stats`).
    pub forward: Option<train::ForwardStats>,
}

/// A classifier's cross-entropy and accuracy over `samples` labelled samples.
pub struct Score {
    pub cross_entropy: f64,
    pub accuracy: f64,
    pub samples: usize,
}

/// How `model` (from `file`) trains, which is how it predicts.
pub fn plan(model: &Model, file: &Arc<SourceFile>) -> Result<Plan, Vec<Diag>> {
    train::plan(model, &Overrides::default()).map_err(located(file))
}

/// Predict `model` (from `file`, planned by [`plan`]) with parameters `p`.
pub fn predict(
    model: &Model,
    file: &Arc<SourceFile>,
    plan: &Plan,
    p: &[f64],
    req: &PredictRequest,
    loader: &dyn Loader,
) -> Result<Prediction, Vec<Diag>> {
    let loc = located(file);
    if plan.loss.loss == Loss::CrossEntropy {
        return classify(model, plan, p, req, file, loader).map_err(&loc);
    }
    let times = match req.at {
        Some(s) => at_grid(s)?,
        None => default_times(model, file, plan, loader)?.ok_or_else(|| {
            bad_arg(
                "no prediction times: give --at T0:T1:N".into(),
                "e.g. --at 0:10:101",
            )
        })?,
    };
    let sol = train::predict(model, p, plan, &times).map_err(&loc)?;
    let names = state_names(model);
    Ok(Prediction {
        csv: to_csv(&Csv::Trajectory {
            names: &names,
            sol: &sol,
        }),
        score: None,
        forward: None,
    })
}

/// `--at T0:T1:N` as its grid.
pub fn at_grid(s: &str) -> Result<Vec<f64>, Vec<Diag>> {
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
pub fn default_times(
    model: &Model,
    file: &Arc<SourceFile>,
    plan: &Plan,
    loader: &dyn Loader,
) -> Result<Option<Vec<f64>>, Vec<Diag>> {
    let datasets = data::load_model(model, Some(file), loader).map_err(located(file))?;
    Ok(match datasets.get(plan.loss.data) {
        Some(Dataset::Trajectories { paths, .. }) if !paths.is_empty() => Some(paths[0].t.to_vec()),
        _ => match model.solve.as_ref().and_then(|s| s.times.clone()) {
            Some(SolveTimes::At { times }) => Some(times),
            Some(SolveTimes::Over { t0, t1 }) => Some(grid(t0, t1, 101)),
            None => None,
        },
    })
}

/// A classifier's predictions as CSV: `class[,label],logit_0,...` per row of `input` (its
/// feature columns), else of the model's data (with its labels, and scored).
fn classify(
    model: &Model,
    plan: &train::Plan,
    p: &[f64],
    req: &PredictRequest,
    file: &Arc<SourceFile>,
    loader: &dyn Loader,
) -> Result<Prediction, Diag> {
    let input = req.input;
    let Some(source) = model.data.get(plan.loss.data) else {
        return Err(
            Diag::error("glassbox::train_missing", "the model has no data source")
                .help("declare the data the classifier was trained on"),
        );
    };
    let mut source = source.clone();
    if let Some(path) = input {
        source.path = path.to_path_buf();
    }
    let classes = model.labels.first().map(|l| l.classes);
    let opts = data::LoadOptions {
        model_file: Some(file),
        classes,
        // New samples laid out like the data: with the label column they are scored too.
        label_optional: input.is_some(),
    };
    let loaded = data::load_with(&source, loader, opts).map_err(|d| match input {
        Some(path) => about_input(d, path),
        None => d,
    })?;
    let Dataset::Table { x, labels } = loaded else {
        return Err(
            Diag::error("glassbox::bad_argument", "a classifier predicts table rows")
                .help("give --input with one sample per row"),
        );
    };
    let threads = req.threads.unwrap_or(plan.threads);
    let (logits, forward, k) = train::predict_table(model, plan, p, &x, threads)?;
    let csv = to_csv(&Csv::Logits {
        logits: &logits,
        k,
        labels: labels.as_deref(),
    });
    let score = labels.as_ref().map(|l| {
        let (cross_entropy, accuracy) = train::score(&logits, l, k);
        Score {
            cross_entropy,
            accuracy,
            samples: l.len(),
        }
    });
    Ok(Prediction {
        csv,
        score,
        forward: Some(forward),
    })
}

/// A problem with `--input FILE` is the user's file, not the model's `data` line: drop the
/// label that points there, and for a missing file say which flag named it.
fn about_input(mut d: Diag, path: &Path) -> Diag {
    d.labels.clear();
    d.file = None;
    if d.code == "glassbox::data_not_found" {
        d.message = d
            .message
            .replacen("cannot read data file", "cannot read --input file", 1);
        d.help = Some(format!(
            "check the path `{}`: it is relative to the current directory",
            path.display()
        ));
    }
    d
}
