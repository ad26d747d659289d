//! Errors of the IR layer. These are internal errors (a bug in lowering or in a pass, or a
//! caller handing the interpreter a wrong buffer), never user errors: shapes in model files
//! are checked by `sema` before anything reaches the IR. The one exception is a dense
//! Jacobian too large to build, which a valid model with many states reaches.

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum IrError {
    /// A constructor was given operands whose shapes do not fit; the graph is poisoned.
    #[error("IR shape error in {op}: {detail}")]
    Shape { op: &'static str, detail: String },
    #[error("no argument named `{0}` in this function")]
    UnknownArg(String),
    #[error("argument `{name}` has length {len}, but an input node reads {offset}..{end}")]
    InputOutOfRange {
        name: String,
        len: usize,
        offset: usize,
        end: usize,
    },
    #[error("argument `{name}`: expected a buffer of {expected} values, got {got}")]
    BufferLength {
        name: String,
        expected: usize,
        got: usize,
    },
    #[error("expected {expected} argument buffers, got {got}")]
    ArgCount { expected: usize, got: usize },
    #[error("{0}")]
    Invalid(String),
    /// The one IR error a valid model can cause: a dense Jacobian past
    /// [`MAX_JACOBIAN_ENTRIES`](super::MAX_JACOBIAN_ENTRIES), refused before it is built.
    #[error(
        "the dense Jacobian would be {rows} × {cols} = {} entries, more than the limit of {}",
        crate::diag::grouped(rows.saturating_mul(*cols)),
        crate::diag::grouped(*limit)
    )]
    JacobianTooLarge {
        rows: usize,
        cols: usize,
        limit: usize,
    },
}
