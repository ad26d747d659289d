//! glassbox: a compiler and trainer for differential models.
//!
//! Stages (see `docs/architecture.md`): `syntax` (parse, format) → `sema` (check) →
//! `ir` (lower, simplify, differentiate, evaluate, print) → `jit` (Cranelift kernels) → later
//! `solve`, `grad`, `train`. Front ends: `cli`. Below `sema`, `ir` and `jit`: `math`, the one
//! scalar semantics of every builtin and operator that folding, evaluation and kernels share.
#![deny(unsafe_code)]

pub mod aot;
pub mod cli;
pub mod data;
pub mod diag;
pub mod driver;
pub mod grad;
pub mod ir;
// The one exception to `deny(unsafe_code)`: calling JIT-compiled code (see `src/jit/mod.rs`).
#[allow(unsafe_code)]
pub mod jit;
pub mod math;
pub mod repl;
pub mod sema;
pub mod solve;
pub mod source;
pub mod syntax;
pub mod train;

pub use driver::{Checked, check_source, check_source_with};
