//! Training, as the CLI's `train` and the REPL's `:train` run it: the trainer set up from the
//! checked model and its data, the progress line, the final report, and the figures of a run
//! directory as plain data (`figures`; drawing and writing them is `kit::run_dir`'s).

use serde::Serialize;

mod figures;

pub use figures::{Fit, RunFigure, accuracy_figure, figures, fit_figure, loss_figure, nfe_figure};

use super::located;
use super::params::ParamSummary;
use super::solve::repeat_median;
use crate::data::{self, Dataset};
use crate::diag::Diag;
use crate::sema::Model;
use crate::source::{Loader, SourceFile};
use crate::train::{self, ClassReport, Metric, Overrides, TrainState, Trainer, TrainingPath};
use std::sync::Arc;

/// A trainer and the full datasets (the report and the fit plot use all of the data).
pub struct Setup {
    pub trainer: Trainer,
    pub full: Vec<Dataset>,
}

/// The trainer for `model` (from `file`): a new run, whose nets' initial weights the run's
/// seed draws, or one resumed from the state `resume` reads (after the data is loaded, so a
/// data problem is reported first).
pub fn setup(
    file: &Arc<SourceFile>,
    model: Model,
    loader: &dyn Loader,
    ov: &Overrides,
    resume: Option<&dyn Fn() -> Result<TrainState, Vec<Diag>>>,
) -> Result<Setup, Vec<Diag>> {
    // A resumed run takes its parameters from the checkpoint.
    let model = match resume {
        None => crate::driver::seeded_for_training(file, loader, model, ov.seed)?,
        Some(_) => model,
    };
    let loc = located(file);
    let datasets = data::load_model(&model, Some(file), loader).map_err(&loc)?;
    let full = datasets.clone();
    let trainer = match resume {
        Some(read) => Trainer::resume(&model, datasets, ov, read()?).map_err(&loc)?,
        None => Trainer::new(&model, datasets, ov).map_err(&loc)?,
    };
    Ok(Setup { trainer, full })
}

/// What a checkpoint must have been trained with to be resumed by `t`: a hash (FNV-1a, 64
/// bits, hex) of the run's plan without the flags a resume may change (the stop, the
/// checkpoint interval, the thread count; the seed is checked on its own), the lowered vector field (drift and
/// diffusion) and initial state, and the parameters' names, shapes and fixed values. Lowered IR
/// rather than source text, so comments and formatting do not count; the learned values do
/// not either (they are the checkpoint's).
pub fn fingerprint(t: &Trainer) -> String {
    fingerprint_of(t, true)
}

/// The fingerprint checkpoints had before the thread count was left out of it (they resume
/// as before, at the thread count they were trained with).
pub fn fingerprint_with_threads(t: &Trainer) -> String {
    fingerprint_of(t, false)
}

fn fingerprint_of(t: &Trainer, drop_threads: bool) -> String {
    use crate::ir::lower::{Part, lower, lower_init};
    let model = t.model();
    let mut text = String::new();
    let mut plan = serde_json::to_value(&t.plan).unwrap_or_default();
    if let Some(fields) = plan.as_object_mut() {
        // The thread count too: the results are the same at any count, and the default is
        // the machine's core count, so a run may continue on another machine.
        for resumable in ["stop", "seed", "checkpoint_every"] {
            fields.remove(resumable);
        }
        if drop_threads {
            fields.remove("threads");
        }
    }
    text += &plan.to_string();
    let mut parts = vec![lower(model, Part::Field)];
    if model.kind == crate::sema::ModelKind::Sde {
        parts.push(lower(model, Part::Diffusion));
    }
    parts.push(lower_init(model));
    for f in parts.iter().flatten() {
        text += &crate::ir::print_text(f);
    }
    for q in &model.params {
        text += &format!("\n{} {:?} {}", q.name, q.shape, q.learn);
        if !q.learn {
            text.extend(q.init.iter().map(|v| format!(" {:x}", v.to_bits())));
        }
    }
    format!("{:016x}", fnv1a(text.as_bytes()))
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The final report, also in `run.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub iterations: u64,
    pub training_time_s: f64,
    pub final_loss: f64,
    pub prediction_nfe: u64,
    pub prediction_time_ms: f64,
    /// The last validation loss (the `split`'s held-out part), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Classifiers: accuracies and losses on both parts; prediction NFE and time are then those
    /// of predicting every sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassReport>,
    /// The learned parameters: small ones by value, larger ones by shape and norm.
    pub learned_params: Vec<ParamSummary>,
    /// Trajectory models: how the segments trained, batched or one by one
    /// (`train/windows.rs`; classifiers say it in `classification.training`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingPath>,
}

/// The progress bar's message: the iteration's numbers and the latest validation.
pub fn progress_message(m: &Metric, all: &[Metric]) -> String {
    let mut msg = format!("loss {:.4e} reg {:.3e} nfe {}", m.loss, m.reg, m.nfe);
    if let Some(a) = m.accuracy {
        msg += &format!(" acc {a:.3}");
    }
    if let Some(v) = all.iter().rev().find(|m| m.val_loss.is_some()) {
        msg += &format!(" val {:.4e}", v.val_loss.unwrap_or(f64::NAN));
        if let Some(a) = v.val_accuracy {
            msg += &format!(" val acc {a:.3}");
        }
    }
    msg
}

/// The loss's data, first trajectory (SDE: the mean path): times and row-major observations.
fn first_path(t: &Trainer, full: &[Dataset]) -> Option<(Vec<f64>, Vec<f64>)> {
    let data = full.get(t.plan.loss.data)?;
    // An SDE's prediction is its mean path: compare it with the data's.
    if t.plan.sde.is_some() {
        return train::data_mean(data);
    }
    match data {
        Dataset::Trajectories { paths, .. } => {
            let p = paths.first()?;
            Some((p.t.to_vec(), p.y.iter().copied().collect()))
        }
        Dataset::Table { .. } => None,
    }
}

/// Prediction solves timed for the report (median).
const PREDICTION_REPEAT: usize = 7;

/// The report `run.json` ends with and `glassbox train` prints.
pub fn final_report(t: &Trainer, full: &[Dataset]) -> Result<Report, Diag> {
    let s = t.state();
    // A fold from +0.0: `Sum` of no f64 is −0.0, which printed "-0.000 s" for `--iterations 0`.
    let training_time_s = s.metrics.iter().fold(0.0, |acc, m| acc + m.time_s);
    let classification = t.class_report()?;
    let (nfe, ms, loss) = match (first_path(t, full), &classification) {
        (_, Some(c)) => (c.prediction_nfe, c.prediction_time_ms, c.train_loss),
        (Some((ts, y)), None) => {
            // One solve is too noisy to compare trained models by; the median of a few is not.
            let internal = || Diag::error("glassbox::train_internal", "no prediction solve ran");
            let (sol, median) =
                repeat_median(PREDICTION_REPEAT, || t.predict_on(&ts).map_err(|d| vec![d]))
                    .map_err(|ds| ds.into_iter().next().unwrap_or_else(internal))?;
            let ms = median.as_secs_f64() * 1e3;
            (sol.stats.nfe, ms, train::data_loss(&t.plan, &sol, &y))
        }
        (None, None) => (0, 0.0, f64::NAN),
    };
    let val_loss = s.metrics.iter().rev().find_map(|m| m.val_loss);
    let training = t.training_path().filter(|_| classification.is_none());
    Ok(Report {
        iterations: s.iteration,
        training_time_s,
        final_loss: loss,
        prediction_nfe: nfe,
        prediction_time_ms: ms,
        val_loss,
        classification,
        learned_params: super::params::learned(t.model(), &t.params()),
        training,
    })
}
