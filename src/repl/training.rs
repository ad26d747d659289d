//! `:train N` and `:save DIR`: the trainer (`crate::train::Trainer`) inside a session.
//!
//! The trainer is built from the session's program on the first `:train` and kept with the
//! program's text: further `:train N` continue the same run (same seed stream, optimiser state
//! and schedule), and `:solve` solves with the trained parameters. Any edit of the program,
//! `:load`, `:reload` and `:clear` discard the trained state (the weights belong to the program
//! they were trained with). `:save DIR` writes what `glassbox train` writes for an interrupted
//! run: `weights.safetensors`, `checkpoint.json` and `run.json`, each atomically.
//!
//! Progress: an indicatif bar on stderr when it is a terminal; otherwise (scripts,
//! transcripts) a line on stdout every tenth of the iterations, with the loss to four
//! significant digits so transcripts stay stable.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;

use super::commands::usage;
use super::session::Session;
use crate::app::train::{self as training, progress_message};
use crate::diag::Diag;
use crate::kit::progress::progress_bar;
use crate::kit::run_dir::{self, save_checkpoint, save_run};
use crate::source::DiskLoader;
use crate::train::{Overrides, Trainer};

/// A run in progress: the trainer and the program text it was built from.
pub struct Trained {
    program: String,
    trainer: Trainer,
}

impl Trained {
    /// The trained parameters, when they still belong to `session`'s program.
    pub fn params_for(&self, session: &Session) -> Option<Vec<f64>> {
        (self.program == session.text()).then(|| self.trainer.params())
    }
}

/// `:train N`: continue (or start) training the session's model for `N` iterations.
pub fn train(
    trained: &mut Option<Trained>,
    session: &Session,
    rest: &str,
) -> Result<String, Vec<Diag>> {
    let Some(n) = rest.parse::<u64>().ok().filter(|&n| n > 0) else {
        return Err(usage(
            ":train N",
            "give a positive number of iterations, e.g. `:train 50`",
        ));
    };
    let program = session.text();
    if trained.as_ref().is_none_or(|t| t.program != program) {
        let (file, model) = session.model()?;
        let ov = Overrides::default();
        let trainer = training::setup(&file, model, &DiskLoader, &ov, None)?.trainer;
        *trained = Some(Trained { program, trainer });
    }
    let Some(Trained { trainer, .. }) = trained.as_mut() else {
        return Ok(String::new());
    };
    let terminal = std::io::stderr().is_terminal();
    let bar = progress_bar(n);
    let every = (n / 10).max(1);
    let mut last = None;
    for k in 1..=n {
        let m = match trainer.step() {
            Ok(m) => m,
            Err(d) => {
                bar.finish_and_clear();
                // A diverged run keeps the parameters of its last good iteration.
                return Err(vec![d]);
            }
        };
        bar.set_position(k);
        bar.set_message(progress_message(&m, &trainer.state().metrics));
        if !terminal && (k % every == 0 || k == n) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "iteration {}: loss {:.4e}", m.iteration + 1, m.loss);
            let _ = out.flush();
        }
        last = Some(m);
    }
    bar.finish_and_clear();
    let mut out = String::new();
    if let Some(m) = last {
        let _ = writeln!(
            out,
            "trained {n} iteration{} ({} in this session): loss {:.4e}, regularizer {:.4e}, {} evaluations",
            if n == 1 { "" } else { "s" },
            trainer.state().iteration,
            m.loss,
            m.reg,
            m.nfe
        );
    }
    Ok(out)
}

/// `:save DIR`: the run directory of the session's training.
pub fn save(trained: &Option<Trained>, session: &Session, dir: &str) -> Result<String, Vec<Diag>> {
    if dir.is_empty() {
        return Err(usage(
            ":save DIR",
            "give the directory to write the weights to",
        ));
    }
    let Some(t) = trained.as_ref().filter(|t| t.program == session.text()) else {
        return Err(vec![
            Diag::error(
                "glassbox::repl_not_trained",
                "nothing trained in this session",
            )
            .help("run `:train N` first (editing the model discards trained weights)"),
        ]);
    };
    // `:save DIR --overwrite`, as `glassbox train --overwrite`: never mix two runs' files.
    let (dir, overwrite) = match dir.strip_suffix("--overwrite") {
        Some(d) if d.ends_with(char::is_whitespace) => (d.trim_end(), true),
        _ => (dir, false),
    };
    let dir = Path::new(dir);
    run_dir::prepare_new(dir, overwrite).map_err(|ds| {
        ds.into_iter()
            .map(|d| match d.code {
                "glassbox::run_dir_not_empty" => d.help(
                    "save into a new directory, or replace that run's files with \
                     `:save DIR --overwrite`",
                ),
                _ => d,
            })
            .collect::<Vec<_>>()
    })?;
    save_checkpoint(dir, &t.trainer)?;
    save_run(dir, &t.trainer, None)?;
    Ok(format!(
        "wrote {} (weights.safetensors, checkpoint.json, run.json)\n",
        dir.display()
    ))
}
