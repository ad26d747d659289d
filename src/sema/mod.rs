//! Stage 2: AST → checked model (names, shapes, stdlib nets, options, data declarations).
//!
//! `check` reads a parsed program (plus the files it imports, through the `Loader`) and returns
//! the [`Model`] when there is no error, and every diagnostic of the run. It never panics and
//! never stops at the first error: a name that fails to resolve gets the `Shape::Error` type,
//! which silences follow-on shape errors. Items that failed to parse (`Program::broken`) are
//! not checked, but what they would have declared is registered as poisoned: every use of such
//! a name resolves silently to `Shape::Error`, and a state whose equation did not parse still
//! counts as having one. Diagnostics are de-duplicated by (code, file, span), so a user function inlined at
//! several call sites reports a mistake in its body once.
//!
//! Passes, in order: collect items (following `use`), register names, consts (folded lazily),
//! params and nets (flat parameter layout), inputs, labels, states, user functions (call-graph
//! cycles), state initial values, equations, data, outputs, solve, objective, train.

mod checker;
mod data;
mod decls;
mod expr;
mod fold;
mod limits;
mod model;
mod nets;
mod objective;
mod options;
mod shape;
mod solve;
mod stdlib;
mod summary;
mod train;

use std::sync::Arc;

pub use limits::MAX_ELEMENTS;
pub use model::*;
pub use nets::{init_values, net_input_size};
pub use shape::{Shape, broadcast, matmul};
pub use stdlib::{STDLIB, stdlib_module};
pub use summary::{Summary, summary};

use crate::diag::Diag;
use crate::source::{Loader, SourceFile};
use crate::syntax::ast::Program;

/// What the checker needs from outside: file access and the initialisation seed.
pub struct CheckCtx<'a> {
    /// Reads imported model files and data-file headers (paths resolved against the file).
    pub loader: &'a dyn Loader,
    /// Seeds net initialisation (with each parameter's name).
    pub seed: u64,
}

/// Check one parsed file. `Some(model)` exactly when no diagnostic is an error.
pub fn check(
    program: &Program,
    file: &Arc<SourceFile>,
    ctx: &CheckCtx,
) -> (Option<Model>, Vec<Diag>) {
    checker::run(program, file, ctx)
}
