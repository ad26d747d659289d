//! `Model.train`: the CLI's training run (`app::train::setup`, `Trainer::step`,
//! `final_report`, `kit::run_dir` for an optional run directory) driven from Python, with a
//! progress line that works in a terminal and in Jupyter (`\r` updates on `sys.stderr`, at
//! most ten a second) or a caller's callback, and Ctrl-C honoured between iterations.
//!
//! The trainer holds `Rc`s (dfdx's tape), so it runs on the calling thread with the GIL held;
//! `py.check_signals()` after every iteration turns Ctrl-C into `KeyboardInterrupt`, after
//! the run directory (if any) got its checkpoint, exactly as `glassbox train` saves one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glassbox::app::located;
use glassbox::app::train::{Setup, final_report, progress_message, setup};
use glassbox::diag::Diag;
use glassbox::kit::resume::{Resume, Spelling, already_finished, prepare_dir, setup_resumed};
use glassbox::kit::run_dir::{prepare_new, save_checkpoint, save_run};
use glassbox::sema::{self, Stop};
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{Metric, Overrides};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{raise, summary_of};

/// How `Model.train`'s options are spelled in the resume diagnostics.
const PYTHON: Spelling = Spelling {
    seed: |s| format!("seed={s}"),
    overwrite: "overwrite=True",
    out: "out=DIR",
    force: "force=True",
};

/// What `Model.train` was asked for.
pub struct Request {
    pub iterations: Option<u64>,
    pub epochs: Option<u64>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    pub out: Option<PathBuf>,
    pub overwrite: bool,
    /// Continue the run in this directory from its checkpoint (`glassbox train --resume`).
    pub resume: Option<PathBuf>,
    /// With `resume`: continue although the model differs from the checkpoint's.
    pub force: bool,
    /// `True`: the built-in progress line; `False`/`None`: silent; a callable: called with
    /// `(iteration, total, metric)` after every iteration.
    pub progress: Option<Py<PyAny>>,
}

/// The trained parameters (flat) and the run's results as a dict: `metrics` (one dict per
/// iteration, as in run.json), `report` (run.json's final report), `out` (the run directory
/// or `None`).
pub fn run<'py>(
    py: Python<'py>,
    file: &Arc<SourceFile>,
    model: &sema::Model,
    req: Request,
) -> PyResult<(Vec<f64>, Bound<'py, PyDict>)> {
    if req.iterations.is_some() && req.epochs.is_some() {
        return Err(raise(
            py,
            vec![
                Diag::error(
                    "glassbox::bad_argument",
                    "iterations and epochs were both given",
                )
                .help("give one of them (or neither: the model's `train` clause)"),
            ],
        ));
    }
    let ov = Overrides {
        stop: req
            .iterations
            .map(|n| Stop::Iterations { n })
            .or(req.epochs.map(|n| Stop::Epochs { n })),
        seed: req.seed,
        checkpoint_every: None,
        threads: req.threads,
    };
    let fail = |d: Vec<Diag>| raise(py, d);
    if req.force && req.resume.is_none() {
        return Err(fail(vec![
            Diag::error(
                "glassbox::bad_argument",
                "force=True applies to a resumed run",
            )
            .help("give resume=DIR with it, or leave force out"),
        ]));
    }
    let resume = req.resume.as_deref().map(|from| Resume {
        from,
        seed: req.seed,
        force: req.force,
        spelling: &PYTHON,
    });
    let Setup { mut trainer, full } = match &resume {
        Some(r) => setup_resumed(file, model.clone(), &DiskLoader, &ov, r),
        None => setup(file, model.clone(), &DiskLoader, &ov, None),
    }
    .map_err(fail)?;
    // A resumed run goes on in its own directory unless `out` names another.
    let out = req.out.clone().or_else(|| req.resume.clone());
    match (&resume, &out) {
        (Some(r), Some(dir)) => {
            prepare_dir(r, dir, req.overwrite, &trainer).map_err(fail)?;
            if trainer.done() {
                let note = already_finished(r.from, &trainer, "iterations=N");
                py.import("warnings")?
                    .call_method1("warn", (summary_of(&note),))?;
            }
        }
        (None, Some(dir)) => {
            prepare_new(dir, req.overwrite).map_err(fail)?;
            save_run(dir, &trainer, None).map_err(fail)?;
        }
        (_, None) => {}
    }
    let req = Request { out, ..req };
    let loc = located(file);
    let total = trainer.state().total;
    let every = trainer.plan.checkpoint_every.filter(|&n| n > 0);
    let progress = match req.progress {
        Some(f) if f.bind(py).is_callable() => Progress::Callback(f),
        Some(f) if f.bind(py).is_truthy()? => Progress::Line,
        _ => Progress::Silent,
    };
    let stderr = py.import("sys")?.getattr("stderr")?;
    let mut last_print = Instant::now() - Duration::from_secs(1);
    while !trainer.done() {
        let m = trainer.step().map_err(|d| fail(loc(d)))?;
        let done = trainer.state().iteration;
        if let Some(dir) = &req.out
            && every.is_some_and(|n| done % n == 0)
        {
            save_checkpoint(dir, &trainer).map_err(fail)?;
        }
        match &progress {
            Progress::Line => {
                if last_print.elapsed() >= Duration::from_millis(100) || done == total {
                    let msg = progress_message(&m, trainer.state().metrics.as_slice());
                    stderr.call_method1("write", (format!("\riteration {done}/{total} {msg}"),))?;
                    stderr.call_method0("flush")?;
                    last_print = Instant::now();
                }
            }
            Progress::Callback(f) => {
                f.call1(py, (done, total, metric_dict(py, &m)?))?;
            }
            Progress::Silent => {}
        }
        if let Err(e) = py.check_signals() {
            if let Some(dir) = &req.out {
                save_checkpoint(dir, &trainer).map_err(fail)?;
                save_run(dir, &trainer, None).map_err(fail)?;
            }
            return Err(e);
        }
    }
    if matches!(progress, Progress::Line) {
        stderr.call_method1("write", ("\n",))?;
    }
    let report = final_report(&trainer, &full).map_err(|d| fail(loc(d)))?;
    if let Some(dir) = &req.out {
        save_checkpoint(dir, &trainer).map_err(fail)?;
        save_run(dir, &trainer, Some(&report)).map_err(fail)?;
    }
    let out = PyDict::new(py);
    let metrics = trainer
        .state()
        .metrics
        .iter()
        .map(|m| metric_dict(py, m))
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item("metrics", metrics)?;
    out.set_item("report", json(py, &report)?)?;
    out.set_item("out", req.out.as_ref().map(|d| d.display().to_string()))?;
    Ok((trainer.params(), out))
}

enum Progress {
    Silent,
    Line,
    Callback(Py<PyAny>),
}

fn metric_dict<'py>(py: Python<'py>, m: &Metric) -> PyResult<Bound<'py, PyAny>> {
    json(py, m)
}

/// A serde value as Python objects (through `json.loads`: dicts, lists, floats).
pub fn json<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}
