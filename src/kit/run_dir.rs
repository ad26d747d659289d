//! A training run's directory: `weights.safetensors`, `checkpoint.json`, `run.json` (plan,
//! seed, per-iteration metrics, final report) and the figures, each written atomically.
//! Written by `glassbox train` and the REPL's `:save`.

use std::path::Path;

use serde::Serialize;

use super::io::{create_dir, write_atomic};
use super::plot::{Trajectories, plot};
use crate::app::train::{Figure, Report};
use crate::diag::Diag;
use crate::train::{Metric, Plan, Trainer, io};

#[derive(Serialize)]
struct RunJson<'a> {
    model: &'a str,
    seed: u64,
    plan: &'a Plan,
    report: Option<&'a Report>,
    metrics: &'a [Metric],
}

/// Create the run directory.
pub fn create(dir: &Path) -> Result<(), Vec<Diag>> {
    create_dir(dir).map_err(|d| vec![d])
}

/// `weights.safetensors` and `checkpoint.json` (what `--resume` continues from): the
/// trainer's parameters in its model's layout.
pub fn save_checkpoint(dir: &Path, t: &Trainer) -> Result<(), Vec<Diag>> {
    let w = io::weights_to_safetensors(t.model(), &t.params()).map_err(|d| vec![d])?;
    write_atomic(&dir.join("weights.safetensors"), &w).map_err(|d| vec![d])?;
    write_atomic(&dir.join("checkpoint.json"), &io::state_to_json(t.state())).map_err(|d| vec![d])
}

/// `run.json`: the plan, the seed, the metrics and (a finished run) the report.
pub fn save_run(dir: &Path, t: &Trainer, report: Option<&Report>) -> Result<(), Vec<Diag>> {
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

/// Draw each figure into its PNG in `dir`.
pub fn save_figures(dir: &Path, figures: &[Figure]) -> Result<(), Diag> {
    for f in figures {
        let tr = Trajectories {
            title: &f.title,
            names: &f.names,
            ts: &f.xs,
            us: &f.us,
            sd: None,
            axes: f.axes,
        };
        plot(&dir.join(f.file), &tr)?;
    }
    Ok(())
}
