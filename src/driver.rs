//! The core's front door: source text → parse → check, with every diagnostic of both stages.
//! No IO here: files are reached through the `Loader` the front end passes in.

use std::sync::Arc;

use crate::diag::Diag;
use crate::sema::{CheckCtx, Model};
use crate::source::{Loader, SourceFile};
use crate::syntax::ast::Program;

/// The result of checking one file.
#[derive(Debug)]
pub struct Checked {
    pub program: Program,
    /// `Some` exactly when no diagnostic is an error.
    pub model: Option<Model>,
    /// Parse diagnostics first, then the checker's.
    pub diags: Vec<Diag>,
}

/// Parse and check a file with seed 0.
pub fn check_source(file: &Arc<SourceFile>, loader: &dyn Loader) -> Checked {
    check_source_with(file, &CheckCtx { loader, seed: 0 })
}

/// Parse and check a file with an explicit context (seed for net initialisation).
///
/// The checker runs even when some items failed to parse, so one run reports every mistake:
/// what a broken item would have declared is poisoned (`Program::broken`), so checking around
/// the holes adds no follow-on errors (a state whose equation failed to parse is not "missing
/// an equation").
pub fn check_source_with(file: &Arc<SourceFile>, ctx: &CheckCtx) -> Checked {
    let (program, mut diags) = crate::syntax::parse(file);
    let (model, sema_diags) = crate::sema::check(&program, file, ctx);
    diags.extend(sema_diags);
    let model = model.filter(|_| !diags.iter().any(Diag::is_error));
    Checked {
        program,
        model,
        diags,
    }
}

/// `model` (the file checked with seed 0) as training initialises it: checked again under the
/// run's seed — `seed`, else the model's `train` clause's, else 0 — when that is not 0, so the
/// seed draws the nets' initial weights too (`glassbox train`, the REPL's `:train`).
pub fn seeded_for_training(
    file: &Arc<SourceFile>,
    loader: &dyn Loader,
    model: Model,
    seed: Option<u64>,
) -> Result<Model, Vec<Diag>> {
    let seed = seed
        .or(model.train.as_ref().and_then(|t| t.seed))
        .unwrap_or(0);
    if seed == 0 {
        return Ok(model);
    }
    let again = check_source_with(file, &CheckCtx { loader, seed });
    again.model.ok_or(again.diags)
}
