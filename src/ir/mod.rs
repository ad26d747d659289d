//! Stage 3: the symbolic IR: a hash-consed arena DAG of scalar and tensor nodes.
//!
//! A [`Function`] is a [`Graph`] plus named argument buffers (`t`, `u`, `p`, …; an input node
//! reads a slice of one, shaped: a weight matrix is one matrix-shaped input), named outputs (the
//! flat output is their row-major concatenation), and a slot table naming regions of the
//! arguments for printing.
//!
//! Node set ([`Op`]): scalar constants; inputs; elementwise unary (neg, exp, log, sin, cos, tan,
//! tanh, sigmoid, relu, step, softplus, sqrt, abs, sign, square) and binary (add, sub, mul, div,
//! pow, max, min; a scalar operand broadcasts); broadcast, sum, dot, mat-vec, mat-mat,
//! transpose, outer, concat (also packs scalars), slice, index, reshape.
//!
//! Passes, each a function IR → IR: [`prune`], [`simplify`], [`vjp`], [`jvp`], [`jacobian`],
//! [`time_derivatives`]; the oracle [`eval`]; the printers [`print_text`], [`print_latex`].
//!
//! Architecture Invariant: the IR is plain data and never refers to the AST. Nodes are
//! hash-consed, so equal subexpressions are one node (CSE by construction). Constructors fold
//! constants with the interpreter's own scalar functions (`crate::math`) and apply only
//! identities exact in IEEE arithmetic: `x·1 → x`, `x·(−1) → −x`, `x/1 → x`, `x/(−1) → −x`, `x − (+0) → x`,
//! `x + (−0) → x`, `x + (−y) → x − y`, `x − (−y) → x + y`, `−(−x) → x`, `x^1 → x`,
//! `x^0 → 1`, `x^2 → square(x)` (defined as x·x), `(Aᵀ)ᵀ → A`, and data-movement
//! rewrites (slices/indexes of concats, slices, broadcasts and inputs). Never `x + 0`,
//! `x·0`, `x − x`. Shape errors poison the graph instead of panicking (see [`IrError`]).

mod diff;
mod error;
mod eval;
mod function;
mod graph;
mod jacobian;
pub mod lower;
mod print;
mod share;
mod tensor;

/// The scalar semantics sit below the IR (`crate::math`); `ir::math` is the older path to them.
pub use crate::math;
pub use diff::{jvp, time_derivatives, vjp};
pub use error::IrError;
pub use eval::eval;
pub use function::{ArgSpec, Function, Output, Slot, prune, simplify};
pub use graph::{Binary, Graph, Node, NodeId, Op, Shape, Unary, map_operands, operands};
pub use jacobian::{MAX_JACOBIAN_ENTRIES, jacobian, jacobian_fits};
pub use print::{print_latex, print_text};
pub use share::{SharedTanh, share_tanh};
