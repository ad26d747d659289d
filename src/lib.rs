//! glassbox: a compiler and trainer for differential models.
//!
//! Stages (see `docs/architecture.md`): `syntax` (parse, format) → `sema` (check) →
//! `ir` (lower, simplify, differentiate, evaluate, print) → `jit` (Cranelift kernels) → later
//! `solve`, `grad`, `train`. Front ends: `cli`.
//!
//! `unsafe` is denied in every target (Cargo.toml `[lints]`); the few modules that need it are
//! declared `#[allow(unsafe_code)]` in `jit` and `aot`, each with its reason, and
//! `tests/tidy.rs` checks that list and a `// SAFETY:` comment on every use.

pub mod aot;
pub mod cli;
pub mod data;
pub mod diag;
pub mod driver;
pub mod grad;
pub mod ir;
pub mod jit;
pub mod repl;
pub mod sema;
pub mod solve;
pub mod source;
pub mod syntax;
pub mod train;

pub use driver::{Checked, check_source, check_source_with};
