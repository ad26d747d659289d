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
