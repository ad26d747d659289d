//! `glassbox train FILE`: check the model, load its data, train (progress bar on a terminal),
//! and write the run directory: `weights.safetensors`, `checkpoint.json` (every N iterations,
//! on Ctrl-C and at the end; temp file + rename), `run.json` (plan, seed, per-iteration
//! metrics, final report) and, with `--plot`, `loss.png`, `nfe.png`, `fit.png`.
//! `--resume DIR` continues from `DIR/checkpoint.json` to the same result as an uninterrupted
//! run; it refuses a `--seed` other than the run's and a model whose fingerprint differs from
//! the checkpoint's (unless `--force`). A new run refuses a directory that holds another run's
//! files unless `--overwrite`, so two runs' artefacts never mix. SIGTERM is handled like
//! Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};

use crate::app::located;
use crate::app::params::{self, ParamSummary};
use crate::app::train::{self as training, Setup, figures, final_report, progress_message};
use crate::diag::Diag;
use crate::kit::progress::TrainProgress;
use crate::kit::resume::{self, Resume};
use crate::kit::run_dir::{self, save_checkpoint, save_figures, save_run};
use crate::kit::{emit, load_source};
use crate::sema::Stop;
use crate::source::DiskLoader;
use crate::train::{Backend, ClassReport, DeviceKind, Overrides};

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
    /// Delete the run already in the run directory (its weights, checkpoint, run.json and
    /// plots; nothing else) before training; without it such a directory is refused.
    #[arg(long)]
    pub overwrite: bool,
    /// With --resume: continue even though the model file differs from the one the
    /// checkpoint was trained with.
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// Write a checkpoint every N iterations (default: the model's `checkpoint_every`).
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// The gradient path: `adjoint` (the discrete adjoint; default on the CPU) or `tape`
    /// (the field as dfdx ops, backpropagated through the unrolled solver; ~20x slower). The
    /// two gradients agree to ~1e-10 at the same weights, but a long run amplifies rounding,
    /// so final losses differ as much as for a run from weights perturbed by 1e-8
    /// (docs/training.md, "Backends and devices").
    #[arg(long, value_enum, value_name = "PATH")]
    pub backend: Option<BackendArg>,
    /// Where to train: `cpu` or `cuda` (implies `--backend tape`; needs a build with
    /// `--features cuda`).
    #[arg(long, value_enum, value_name = "DEVICE", default_value = "cpu")]
    pub device: DeviceArg,
    /// Threads the samples, windows or paths run on (default: every core; the weights are the
    /// same at any count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
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

/// `glassbox train FILE`: train, checkpoint, report, plot.
fn train_file(args: &TrainArgs) -> Result<ExitCode, Vec<Diag>> {
    let file = load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    let loc = located(&file);
    let ov = Overrides {
        stop: args
            .iterations
            .map(|n| Stop::Iterations { n })
            .or(args.epochs.map(|n| Stop::Epochs { n })),
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
        threads: args.threads.map(|n| n as usize),
    };
    let resume = args.resume.as_deref().map(|from| Resume {
        from,
        seed: args.seed,
        force: args.force,
        spelling: &resume::CLI,
    });
    let Setup { mut trainer, full } = match &resume {
        Some(r) => resume::setup_resumed(&file, model, &DiskLoader, &ov, r)?,
        None => training::setup(&file, model, &DiskLoader, &ov, None)?,
    };
    let (b, d) = backend(args);
    trainer.set_backend(b, d).map_err(&loc)?;
    let dir = args
        .out
        .clone()
        .or_else(|| args.resume.clone())
        .unwrap_or_else(|| PathBuf::from("runs").join(&trainer.model().name));
    match &resume {
        Some(r) => {
            resume::prepare_dir(r, &dir, args.overwrite, &trainer)?;
            if trainer.done() {
                emit(&[resume::already_finished(r.from, &trainer, "--iterations N")]);
            }
        }
        None => {
            run_dir::prepare_new(&dir, args.overwrite)?;
            // From the start, so a run stopped before its first checkpoint is recognisable.
            save_run(&dir, &trainer, None)?;
        }
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        // Ctrl-C and (the `termination` feature) SIGTERM and SIGHUP. Fails only when a
        // handler is already installed (a second run in one process).
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let total = trainer.state().total;
    let mut bar = TrainProgress::new(total, trainer.state().iteration);
    let every = trainer.plan.checkpoint_every.filter(|&n| n > 0);
    while !trainer.done() {
        let m = trainer.step().map_err(&loc)?;
        let done = trainer.state().iteration;
        bar.update(
            done,
            progress_message(&m, trainer.state().metrics.as_slice()),
        );
        if every.is_some_and(|n| done % n == 0) {
            save_checkpoint(&dir, &trainer)?;
        }
        let stop = args.stop_after.is_some_and(|k| done >= k);
        if (interrupted.load(Ordering::SeqCst) || stop) && !trainer.done() {
            bar.finish();
            save_checkpoint(&dir, &trainer)?;
            save_run(&dir, &trainer, None)?;
            eprintln!(
                "interrupted after iteration {done} of {total}: checkpoint in `{}`; continue with --resume {}",
                dir.display(),
                dir.display()
            );
            return Ok(ExitCode::from(130));
        }
    }
    bar.finish();

    let report = final_report(&trainer, &full).map_err(&loc)?;
    save_checkpoint(&dir, &trainer)?;
    save_run(&dir, &trainer, Some(&report))?;
    if args.plot {
        let figures = figures(&trainer, &full).map_err(&loc)?;
        save_figures(&dir, &figures).map_err(&loc)?;
    }
    println!("model             {}", trainer.model().name);
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
            if let Some(t) = &report.training {
                println!("training path     {}", t.describe());
            }
        }
    }
    print_learned(&report.learned_params);
    print!("{}", crate::kit::memory::stats_line());
    println!("run directory     {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The learned parameters, one a line under the report's heading (`glassbox params DIR`
/// prints them again later).
fn print_learned(params: &[ParamSummary]) {
    for (i, line) in params::text(params).lines().enumerate() {
        let head = if i == 0 { "learned" } else { "" };
        println!("{head:17} {line}");
    }
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
    if let Some(t) = &c.training {
        println!("training path     {}", t.describe());
    }
}
