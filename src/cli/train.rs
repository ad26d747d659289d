//! `glassbox train FILE`: check the model, load its data, train (progress bar on a terminal),
//! and write the run directory: `weights.safetensors`, `checkpoint.json` (every N iterations,
//! on Ctrl-C and at the end; temp file + rename), `run.json` (plan, seed, per-iteration
//! metrics, final report) and, with `--plot`, `loss.png`, `nfe.png`, `fit.png`.
//! `--resume DIR` continues from `DIR/checkpoint.json` to the same result as an uninterrupted
//! run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::plot::{Trajectories, plot};
use super::render::emit;
use super::solve::{state_names, write_atomic};
use crate::data::{self, Dataset};
use crate::diag::Diag;
use crate::sema::{Model, Stop};
use crate::source::{DiskLoader, SourceFile};
use crate::train::{
    self, Backend, ClassReport, DeviceKind, Metric, Overrides, Plan, TrainState, Trainer, io,
};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The model file (`*.gbx`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Train for N iterations (overrides the model's `train` clause).
    #[arg(long, value_name = "N", conflicts_with = "epochs")]
    pub iterations: Option<u64>,
    /// Train for E epochs.
    #[arg(long, value_name = "E")]
    pub epochs: Option<u64>,
    /// The run's one seed (default: the model's `seed`, else 0).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// The run directory (default `runs/<model>`, or the `--resume` directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write loss.png, nfe.png and fit.png into the run directory.
    #[arg(long)]
    pub plot: bool,
    /// Continue the run saved in DIR (its checkpoint.json).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Write a checkpoint every N iterations (default: the model's `checkpoint_every`).
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// The gradient path: `adjoint` (the discrete adjoint; default on the CPU) or `tape`
    /// (the field as dfdx ops, backpropagated through the unrolled solver).
    #[arg(long, value_enum, value_name = "PATH")]
    pub backend: Option<BackendArg>,
    /// Where to train: `cpu` or `cuda` (implies `--backend tape`; needs a build with
    /// `--features cuda`).
    #[arg(long, value_enum, value_name = "DEVICE", default_value = "cpu")]
    pub device: DeviceArg,
    /// Stop (as Ctrl-C would, checkpoint written) after this iteration; for tests.
    #[arg(long, value_name = "K", hide = true)]
    pub stop_after: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Adjoint,
    Tape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

/// The backend and device of the flags: `cuda` implies the tape.
fn backend(args: &TrainArgs) -> (Backend, DeviceKind) {
    let device = match args.device {
        DeviceArg::Cpu => DeviceKind::Cpu,
        DeviceArg::Cuda => DeviceKind::Cuda,
    };
    let backend = match (args.backend, device) {
        (Some(BackendArg::Adjoint), _) => Backend::Adjoint,
        (Some(BackendArg::Tape), _) | (None, DeviceKind::Cuda) => Backend::Tape,
        (None, DeviceKind::Cpu) => Backend::Adjoint,
    };
    (backend, device)
}

pub fn run(args: &TrainArgs) -> ExitCode {
    match train_file(args) {
        Ok(code) => code,
        Err(diags) => {
            emit(&diags);
            ExitCode::FAILURE
        }
    }
}

/// Attach the model file to diagnostics that point into it.
pub(crate) fn located(file: &Arc<SourceFile>) -> impl Fn(Diag) -> Vec<Diag> + '_ {
    move |d: Diag| {
        if d.file.is_none() && !d.labels.is_empty() {
            vec![d.in_file(file)]
        } else {
            vec![d]
        }
    }
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> Vec<Diag> {
    vec![
        Diag::error(
            "glassbox::io_error",
            format!("cannot access `{}`: {e}", path.display()),
        )
        .help("check that the directory exists and is writable"),
    ]
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
}

#[derive(Serialize)]
struct RunJson<'a> {
    model: &'a str,
    seed: u64,
    plan: &'a Plan,
    report: Option<&'a Report>,
    metrics: &'a [Metric],
}

pub(crate) fn save_checkpoint(dir: &Path, model: &Model, t: &Trainer) -> Result<(), Vec<Diag>> {
    let w = io::weights_to_safetensors(model, &t.params()).map_err(|d| vec![d])?;
    write_atomic(&dir.join("weights.safetensors"), &w).map_err(|d| vec![d])?;
    write_atomic(&dir.join("checkpoint.json"), &io::state_to_json(t.state())).map_err(|d| vec![d])
}

pub(crate) fn save_run(dir: &Path, t: &Trainer, report: Option<&Report>) -> Result<(), Vec<Diag>> {
    let s = t.state();
    let json = RunJson {
        model: &s.model,
        seed: s.seed,
        plan: &t.plan,
        report,
        metrics: &s.metrics,
    };
    let mut text = serde_json::to_vec_pretty(&json).unwrap_or_default();
    text.push(b'\n');
    write_atomic(&dir.join("run.json"), &text).map_err(|d| vec![d])
}

/// The training progress bar: drawn on stderr when it is a terminal, hidden otherwise.
pub(crate) fn progress_bar(total: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `glassbox train FILE`: train, checkpoint, report, plot.
fn train_file(args: &TrainArgs) -> Result<ExitCode, Vec<Diag>> {
    let file = super::load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    // A resumed run takes its parameters from the checkpoint.
    let model = match args.resume {
        None => crate::driver::seeded_for_training(&file, &DiskLoader, model, args.seed)?,
        Some(_) => model,
    };
    let loc = located(&file);
    let datasets = data::load_model(&model, Some(&file), &DiskLoader).map_err(&loc)?;
    let full = datasets.clone();
    let ov = Overrides {
        stop: args
            .iterations
            .map(|n| Stop::Iterations { n })
            .or(args.epochs.map(|n| Stop::Epochs { n })),
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
    };
    let mut trainer = match &args.resume {
        Some(dir) => {
            let path = dir.join("checkpoint.json");
            let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
            let state: TrainState = io::state_from_json(&bytes).map_err(|d| vec![d])?;
            Trainer::resume(&model, datasets, &ov, state).map_err(&loc)?
        }
        None => Trainer::new(&model, datasets, &ov).map_err(&loc)?,
    };
    let (b, d) = backend(args);
    trainer.set_backend(b, d).map_err(&loc)?;
    let dir = args
        .out
        .clone()
        .or_else(|| args.resume.clone())
        .unwrap_or_else(|| PathBuf::from("runs").join(&model.name));
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        // Fails only when a handler is already installed (a second run in one process).
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let total = trainer.state().total;
    let bar = progress_bar(total);
    bar.set_position(trainer.state().iteration);
    let every = trainer.plan.checkpoint_every.filter(|&n| n > 0);
    while !trainer.done() {
        let m = trainer.step().map_err(&loc)?;
        let done = trainer.state().iteration;
        bar.set_position(done);
        bar.set_message(progress_message(&m, trainer.state().metrics.as_slice()));
        if every.is_some_and(|n| done % n == 0) {
            save_checkpoint(&dir, &model, &trainer)?;
        }
        let stop = args.stop_after.is_some_and(|k| done >= k);
        if (interrupted.load(Ordering::SeqCst) || stop) && !trainer.done() {
            bar.finish_and_clear();
            save_checkpoint(&dir, &model, &trainer)?;
            save_run(&dir, &trainer, None)?;
            eprintln!(
                "interrupted after iteration {done} of {total}: checkpoint in `{}`; continue with --resume {}",
                dir.display(),
                dir.display()
            );
            return Ok(ExitCode::from(130));
        }
    }
    bar.finish_and_clear();

    let report = final_report(&trainer, &full).map_err(&loc)?;
    save_checkpoint(&dir, &model, &trainer)?;
    save_run(&dir, &trainer, Some(&report))?;
    if args.plot {
        plots(&dir, &trainer, &full).map_err(&loc)?;
    }
    println!("model             {}", model.name);
    println!("iterations        {}", report.iterations);
    println!("training time     {:.3} s", report.training_time_s);
    match &report.classification {
        Some(c) => print_classification(c),
        None => {
            println!(
                "final loss        {:.6e} (full data span)",
                report.final_loss
            );
            if let Some(v) = report.val_loss {
                println!("validation loss   {v:.6e}");
            }
            println!("prediction nfe    {}", report.prediction_nfe);
            println!("prediction time   {:.3} ms", report.prediction_time_ms);
        }
    }
    println!("run directory     {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The progress bar's message: the iteration's numbers and the latest validation.
pub(crate) fn progress_message(m: &Metric, all: &[Metric]) -> String {
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

fn print_classification(c: &ClassReport) {
    println!(
        "train             accuracy {:.4}, cross-entropy {:.4e}",
        c.train_accuracy, c.train_loss
    );
    if let (Some(a), Some(l)) = (c.val_accuracy, c.val_loss) {
        println!("validation        accuracy {a:.4}, cross-entropy {l:.4e}");
    }
    println!(
        "prediction nfe    {} ({:.1} per sample, {} samples)",
        c.prediction_nfe,
        c.prediction_nfe as f64 / c.samples.max(1) as f64,
        c.samples
    );
    println!("prediction time   {:.3} ms", c.prediction_time_ms);
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

fn final_report(t: &Trainer, full: &[Dataset]) -> Result<Report, Diag> {
    let s = t.state();
    let training_time_s = s.metrics.iter().map(|m| m.time_s).sum();
    let classification = t.class_report()?;
    let (nfe, ms, loss) = match (first_path(t, full), &classification) {
        (_, Some(c)) => (c.prediction_nfe, c.prediction_time_ms, c.train_loss),
        (Some((ts, y)), None) => {
            // One solve is too noisy to compare trained models by; the median of a few is not.
            let internal = || Diag::error("glassbox::train_internal", "no prediction solve ran");
            let (sol, median) = super::solve::repeat_median(PREDICTION_REPEAT, || {
                t.predict_on(&ts).map_err(|d| vec![d])
            })
            .map_err(|ds| ds.into_iter().next().unwrap_or_else(internal))?
            .ok_or_else(internal)?;
            let ms = median.as_secs_f64() * 1e3;
            (sol.stats.nfe, ms, train::data_loss(&t.plan, &sol, &y))
        }
        (None, None) => (0, 0.0, f64::NAN),
    };
    let val_loss = s.metrics.iter().rev().find_map(|m| m.val_loss);
    Ok(Report {
        iterations: s.iteration,
        training_time_s,
        final_loss: loss,
        prediction_nfe: nfe,
        prediction_time_ms: ms,
        val_loss,
        classification,
    })
}

/// One PNG of curves over the iterations (`us`: row-major, one column per name).
fn curves(
    path: &Path,
    (title, y_label): (&str, &str),
    names: &[String],
    (x_label, xs): (&str, &[f64]),
    us: &[f64],
) -> Result<(), Diag> {
    plot(
        path,
        &Trajectories {
            title,
            names,
            ts: xs,
            us,
            sd: None,
            axes: (x_label, y_label),
        },
    )
}

/// A validation series at every iteration: each value held until the next validation (and
/// the first one before it), since the plot draws one line through all iterations.
fn held(v: impl Iterator<Item = Option<f64>>) -> Vec<f64> {
    let v: Vec<Option<f64>> = v.collect();
    let mut last = v.iter().flatten().next().copied().unwrap_or(f64::NAN);
    v.iter()
        .map(|x| {
            last = x.unwrap_or(last);
            last
        })
        .collect()
}

fn plots(dir: &Path, t: &Trainer, full: &[Dataset]) -> Result<(), Diag> {
    let s = t.state();
    let its: Vec<f64> = s.metrics.iter().map(|m| m.iteration as f64).collect();
    let nan = f64::NAN;
    let val_loss = held(s.metrics.iter().map(|m| m.val_loss));
    let val_acc = held(s.metrics.iter().map(|m| m.val_accuracy));
    if its.len() >= 2 {
        let val = s.metrics.iter().any(|m| m.val_loss.is_some());
        let mut names = vec!["loss".to_string(), "regularizer".to_string()];
        if val {
            names.push("validation loss".to_string());
        }
        let loss: Vec<f64> = s
            .metrics
            .iter()
            .zip(&val_loss)
            .flat_map(|(m, &v)| [m.loss, m.reg, v])
            .enumerate()
            .filter(|(i, _)| val || i % 3 != 2)
            .map(|(_, v)| v)
            .collect();
        let title = format!("{}: training loss", s.model);
        curves(
            &dir.join("loss.png"),
            (&title, "loss"),
            &names,
            ("iteration", &its),
            &loss,
        )?;
        let nfe: Vec<f64> = s.metrics.iter().map(|m| m.nfe as f64).collect();
        let names = ["nfe per iteration".to_string()];
        let title = format!("{}: forward NFE per iteration", s.model);
        curves(
            &dir.join("nfe.png"),
            (&title, "nfe"),
            &names,
            ("iteration", &its),
            &nfe,
        )?;
        if s.metrics.iter().any(|m| m.accuracy.is_some()) {
            let acc: Vec<f64> = s
                .metrics
                .iter()
                .zip(&val_acc)
                .flat_map(|(m, &v)| [m.accuracy.unwrap_or(nan), v])
                .collect();
            let names = [
                "batch accuracy".to_string(),
                "validation accuracy".to_string(),
            ];
            let title = format!("{}: accuracy", s.model);
            let acc_png = dir.join("accuracy.png");
            curves(
                &acc_png,
                (&title, "accuracy"),
                &names,
                ("iteration", &its),
                &acc,
            )?;
        }
    }
    if let Some((ts, y)) = first_path(t, full) {
        let sol = t.predict_on(&ts)?;
        let state = state_names(t.model());
        let cols = &t.plan.loss.columns;
        let mut names = Vec::new();
        for &k in cols {
            let n = state.get(k).cloned().unwrap_or_default();
            names.push(format!("{n} (fit)"));
        }
        for &k in cols {
            let n = state.get(k).cloned().unwrap_or_default();
            names.push(format!("{n} (data)"));
        }
        let mut us = Vec::with_capacity(ts.len() * 2 * cols.len());
        for i in 0..sol.ts.len() {
            let u = sol.u(i).unwrap_or(&[]);
            us.extend(cols.iter().map(|&k| u.get(k).copied().unwrap_or(f64::NAN)));
            us.extend(y.iter().skip(i * cols.len()).take(cols.len()));
        }
        let title = format!("{}: fitted trajectories vs data", s.model);
        curves(
            &dir.join("fit.png"),
            (&title, "state"),
            &names,
            ("t", &sol.ts),
            &us,
        )?;
    }
    Ok(())
}
