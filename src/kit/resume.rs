//! Resuming a training run, as `glassbox train --resume DIR` and the Python package's
//! `Model.train(resume=DIR)` do it: the checkpoint read, a seed it cannot honour and a model
//! that is not the one it was trained with refused, and the directory the run goes on in made
//! ready. The two front ends differ only in how they spell their options ([`Spelling`]).

use std::path::Path;
use std::sync::Arc;

use super::run_dir;
use crate::app::train::{Setup, fingerprint, fingerprint_with_threads, setup};
use crate::diag::Diag;
use crate::sema::Model;
use crate::source::{Loader, SourceFile};
use crate::train::{Overrides, Trainer};

/// How a front end spells the options the diagnostics name.
pub struct Spelling {
    /// The seed option with a value (`--seed 5`, `seed=5`).
    pub seed: fn(u64) -> String,
    pub overwrite: &'static str,
    /// A new run directory (`--out DIR`).
    pub out: &'static str,
    pub force: &'static str,
}

/// The command line's spelling.
pub const CLI: Spelling = Spelling {
    seed: |s| format!("--seed {s}"),
    overwrite: "--overwrite",
    out: "--out DIR",
    force: "--force",
};

/// What a resume is asked for: the run directory and the options that bear on it.
pub struct Resume<'a> {
    pub from: &'a Path,
    /// The seed asked for, if any: it must be the run's own.
    pub seed: Option<u64>,
    /// Continue even though the model differs from the checkpoint's.
    pub force: bool,
    pub spelling: &'a Spelling,
}

/// The trainer of the run in `r.from`, resumed from its checkpoint with `model` (from
/// `file`): refused when `r.seed` is not the run's seed, or when the model's fingerprint is
/// not the checkpoint's (unless `r.force`).
pub fn setup_resumed(
    file: &Arc<SourceFile>,
    model: Model,
    loader: &dyn Loader,
    ov: &Overrides,
    r: &Resume<'_>,
) -> Result<Setup, Vec<Diag>> {
    // The checkpoint's fingerprint, kept by the reader for the check once the trainer is built.
    let saved_fingerprint = std::cell::RefCell::new(None);
    let read = || {
        let saved = run_dir::read_checkpoint(r.from).map_err(|d| vec![d])?;
        match r.seed {
            Some(s) if s != saved.state.seed => {
                return Err(vec![ignored(
                    r.spelling,
                    &(r.spelling.seed)(s),
                    &format!("the run continues with its own seed {}", saved.state.seed),
                )]);
            }
            _ => {}
        }
        *saved_fingerprint.borrow_mut() = saved.fingerprint;
        Ok(saved.state)
    };
    let set = setup(file, model, loader, ov, Some(&read))?;
    let now = fingerprint(&set.trainer);
    match saved_fingerprint.take() {
        Some(saved)
            if saved != now && saved != fingerprint_with_threads(&set.trainer) && !r.force =>
        {
            Err(vec![
                Diag::error(
                    "glassbox::resume_model_changed",
                    format!(
                        "`{}` is not the model the run in `{}` was trained with: its solver, \
                     objective, optimiser, field, initial state or fixed parameters differ \
                     (fingerprint {now}, the checkpoint's {saved})",
                        file.name,
                        r.from.display()
                    ),
                )
                .help(format!(
                    "resume with the model file the run was started from, start a new run with \
                 `{}`, or pass `{}` to continue under the changed model",
                    r.spelling.out, r.spelling.force
                )),
            ])
        }
        _ => Ok(set),
    }
}

/// Makes `dir` ready for the resumed run of `r.from`: its own directory (the weights file
/// rewritten if a crash left it older than the checkpoint; `overwrite` refused, it has no
/// meaning there), or a new one (refused if it holds another run, unless `overwrite`).
pub fn prepare_dir(
    r: &Resume<'_>,
    dir: &Path,
    overwrite: bool,
    trainer: &Trainer,
) -> Result<(), Vec<Diag>> {
    if r.from == dir {
        if overwrite {
            return Err(vec![ignored(
                r.spelling,
                r.spelling.overwrite,
                "a resumed run continues in its own directory",
            )]);
        }
        run_dir::repair_weights(dir, trainer)
    } else {
        run_dir::prepare_new(dir, overwrite)
    }
}

/// `glassbox::resume_flag`: an option a resumed run cannot honour.
fn ignored(spelling: &Spelling, flag: &str, why: &str) -> Diag {
    Diag::error(
        "glassbox::resume_flag",
        format!("`{flag}` does not apply to a resumed run: {why}"),
    )
    .help(format!(
        "drop `{flag}`, or start a new run with it: `{}` (a new directory)",
        spelling.out
    ))
}

/// The note before a finished run's report is given again (`glassbox::run_finished`).
pub fn already_finished(from: &Path, t: &Trainer, iterations: &str) -> Diag {
    let s = t.state();
    Diag::warning(
        "glassbox::run_finished",
        format!(
            "the run in `{}` is already finished (iteration {} of {}): nothing to train; its \
             report again below",
            from.display(),
            s.iteration,
            s.total
        ),
    )
    .help(format!(
        "train it further with `{iterations}` (N > {})",
        s.iteration
    ))
}
