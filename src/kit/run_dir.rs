//! A training run's directory: `weights.safetensors`, `checkpoint.json`, `run.json` (plan,
//! seed, per-iteration metrics, final report) and the figures, each written atomically.
//! Written by `glassbox train` and the REPL's `:save`.
//!
//! A checkpoint is one unit: `checkpoint.json` is its commit record (everything `--resume`
//! reads, the model's fingerprint and the hash of the weights that go with it), written
//! durably (synced, renamed, directory synced) before `weights.safetensors`. A crash between
//! the two leaves the weights one checkpoint *older*, never newer, and the hash shows it:
//! `--resume` rewrites them from the checkpoint, `predict`/`build` refuse them
//! (`glassbox::stale_weights`). Temporary files of a killed writer are deleted on the next
//! checkpoint and on `--resume`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::io::{access_error, create_dir, remove_stale_temps, write_durable};
use super::plot::plot;
use crate::app::params::{self, ParamDecl};
use crate::app::train::{Report, RunFigure, fingerprint, fnv1a};
use crate::data::batch::HeldOut;
use crate::diag::Diag;
use crate::train::{Metric, Plan, TrainState, Trainer, io};

pub const WEIGHTS: &str = "weights.safetensors";
pub const CHECKPOINT: &str = "checkpoint.json";
pub const RUN: &str = "run.json";

/// Every file a run writes into its directory: what `--overwrite` deletes, and what makes a
/// directory hold a run (so a second run into it is refused rather than mixed with it).
const ARTEFACTS: [&str; 7] = [
    WEIGHTS,
    CHECKPOINT,
    RUN,
    "loss.png",
    "nfe.png",
    "fit.png",
    "accuracy.png",
];

#[derive(Serialize)]
struct RunJson<'a> {
    model: &'a str,
    seed: u64,
    /// Every parameter's name, shape and whether it is learned, in the model's order.
    params: Vec<ParamDecl>,
    plan: &'a Plan,
    report: Option<&'a Report>,
    metrics: &'a [Metric],
    /// The `split`: its fraction and the samples that validate (absent without a split).
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<SplitJson<'a>>,
    /// The training process's peak resident set when this file was written.
    peak_memory: super::memory::PeakMemory,
}

#[derive(Serialize)]
struct SplitJson<'a> {
    /// The fraction that trains (`split = f`).
    train_fraction: f64,
    /// The validation part in the data file's numbering (rows, paths or observations, from 0).
    validation: &'a HeldOut,
}

/// Create the run directory.
pub fn create(dir: &Path) -> Result<(), Vec<Diag>> {
    create_dir(dir).map_err(|d| vec![d])
}

/// The run artefacts `dir` holds, in [`ARTEFACTS`] order.
fn artefacts(dir: &Path) -> Vec<&'static str> {
    ARTEFACTS
        .into_iter()
        .filter(|a| dir.join(a).exists())
        .collect()
}

/// The directory of a new run: created, and refused if it already holds a run's files, unless
/// `overwrite`, which deletes those files first (only those: other files are the user's).
pub fn prepare_new(dir: &Path, overwrite: bool) -> Result<(), Vec<Diag>> {
    remove_stale_temps(dir);
    let found = artefacts(dir);
    if !found.is_empty() && !overwrite {
        let d = dir.display();
        return Err(vec![
            Diag::error(
                "glassbox::run_dir_not_empty",
                format!("`{d}` already holds a run ({})", found.join(", ")),
            )
            .help(format!(
                "train into a new directory with `--out DIR`, continue that run with \
                 `--resume {d}`, or pass `--overwrite` to delete its files first"
            )),
        ]);
    }
    for a in found {
        std::fs::remove_file(dir.join(a)).map_err(|e| vec![access_error(&dir.join(a), &e)])?;
    }
    create(dir)
}

/// What `checkpoint.json` holds beside the [`TrainState`] (both absent in checkpoints older
/// than them).
#[derive(Deserialize)]
struct Stamp {
    iteration: u64,
    #[serde(default)]
    fingerprint: Option<String>,
    /// [`weights_hash`] of the `weights.safetensors` written with this checkpoint.
    #[serde(default)]
    weights: Option<String>,
}

/// The hash a checkpoint records of its weights file.
fn weights_hash(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(bytes))
}

/// A checkpoint read back: the state, and the fingerprint of the model it was trained with
/// (absent in checkpoints older than fingerprints).
pub struct Saved {
    pub state: TrainState,
    pub fingerprint: Option<String>,
}

/// `checkpoint.json` with the hash of the weights, then `weights.safetensors` (see the module
/// comment for why in this order); both durable.
pub fn save_checkpoint(dir: &Path, t: &Trainer) -> Result<(), Vec<Diag>> {
    remove_stale_temps(dir);
    let weights = weights_bytes(t)?;
    let mut state = serde_json::to_value(t.state()).unwrap_or_default();
    if let Some(fields) = state.as_object_mut() {
        fields.insert("fingerprint".into(), fingerprint(t).into());
        fields.insert("weights".into(), weights_hash(&weights).into());
    }
    let mut json = serde_json::to_vec(&state).unwrap_or_default();
    json.push(b'\n');
    write_durable(&dir.join(CHECKPOINT), &json).map_err(|d| vec![d])?;
    write_durable(&dir.join(WEIGHTS), &weights).map_err(|d| vec![d])
}

fn weights_bytes(t: &Trainer) -> Result<Vec<u8>, Vec<Diag>> {
    io::weights_to_safetensors(t.model(), &t.params()).map_err(|d| vec![d])
}

/// After a resume: rewrite the weights from the checkpoint when a crash left them older.
pub fn repair_weights(dir: &Path, t: &Trainer) -> Result<(), Vec<Diag>> {
    let weights = weights_bytes(t)?;
    if std::fs::read(dir.join(WEIGHTS)).ok().as_ref() == Some(&weights) {
        return Ok(());
    }
    write_durable(&dir.join(WEIGHTS), &weights).map_err(|d| vec![d])
}

/// `DIR/checkpoint.json` of `--resume DIR`, after deleting a killed writer's temporary files.
pub fn read_checkpoint(dir: &Path) -> Result<Saved, Diag> {
    let path = dir.join(CHECKPOINT);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_checkpoint(dir)),
        Err(e) => return Err(access_error(&path, &e)),
    };
    remove_stale_temps(dir);
    let state = io::state_from_json(&bytes)?;
    let fingerprint = serde_json::from_slice::<Stamp>(&bytes)
        .ok()
        .and_then(|s| s.fingerprint);
    Ok(Saved { state, fingerprint })
}

/// `--resume DIR` of a directory without a checkpoint: say which case it is.
fn no_checkpoint(dir: &Path) -> Diag {
    let d = dir.display();
    if !dir.is_dir() {
        return Diag::error(
            "glassbox::no_checkpoint",
            format!("cannot resume `{d}`: there is no such directory"),
        )
        .help("--resume takes the run directory `glassbox train` wrote (its --out)");
    }
    let why = if dir.join(RUN).exists() {
        "the run was stopped before its first checkpoint"
    } else {
        "it holds no glassbox run"
    };
    Diag::error(
        "glassbox::no_checkpoint",
        format!("cannot resume `{d}`: it has no {CHECKPOINT} ({why})"),
    )
    .help(format!(
        "start the run again with `--out {d} --overwrite`; `--checkpoint-every N` saves a \
         checkpoint every N iterations (one is also written on Ctrl-C, SIGTERM and at the end)"
    ))
}

/// Whether `weights` (read from `dir`) are the ones its checkpoint was written with: the
/// checkpoint's iteration when they are not, `None` when they are or nothing says.
pub fn weights_older_than_checkpoint(dir: &Path, weights: &[u8]) -> Option<u64> {
    let bytes = std::fs::read(dir.join(CHECKPOINT)).ok()?;
    let stamp = serde_json::from_slice::<Stamp>(&bytes).ok()?;
    (stamp.weights? != weights_hash(weights)).then_some(stamp.iteration)
}

/// `run.json`: the plan, the seed, the metrics and (a finished run) the report.
pub fn save_run(dir: &Path, t: &Trainer, report: Option<&Report>) -> Result<(), Vec<Diag>> {
    let s = t.state();
    let json = RunJson {
        model: &s.model,
        seed: s.seed,
        params: params::decls(t.model()),
        plan: &t.plan,
        report,
        metrics: &s.metrics,
        split: t
            .plan
            .split
            .zip(t.held_out())
            .map(|(train_fraction, validation)| SplitJson {
                train_fraction,
                validation,
            }),
        peak_memory: super::memory::peak(),
    };
    let mut text = serde_json::to_vec_pretty(&json).unwrap_or_default();
    text.push(b'\n');
    write_durable(&dir.join(RUN), &text).map_err(|d| vec![d])
}

/// The parameter list of the run in `dir` (its `run.json`), when it has one.
pub fn read_params(dir: &Path) -> Option<Vec<ParamDecl>> {
    #[derive(Deserialize)]
    struct Params {
        params: Vec<ParamDecl>,
    }
    let bytes = std::fs::read(dir.join(RUN)).ok()?;
    serde_json::from_slice::<Params>(&bytes)
        .ok()
        .map(|p| p.params)
}

/// Draw each figure into its PNG in `dir`.
pub fn save_figures(dir: &Path, figures: &[RunFigure]) -> Result<(), Diag> {
    for f in figures {
        plot(&dir.join(f.file), &f.figure)?;
    }
    Ok(())
}
