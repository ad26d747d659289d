//! glassbox: a compiler and trainer for differential models.
//!
//! Layers (see `docs/architecture.md`; `tests/suite/tidy.rs` checks the order from the `use
//! crate::` lines): the core stages `syntax` (parse, format) → `sema` (check) → `ir` (lower,
//! simplify, differentiate, evaluate, print) → `jit` (Cranelift kernels) → `solve`, `grad`,
//! `train`, with `data`, `diag`, `source`, `driver`; then `app` (requests → plans → runs →
//! plain data and the CSV/JSON/statistics exporters, no IO); then `kit` (the IO the front
//! ends share); then the front ends `cli`, `repl` and `aot` (the standalone binaries'
//! runtime), none of which imports another; `src/main.rs` dispatches between them. Below `sema`,
//! `ir` and `jit`: `math`, the one scalar semantics of every builtin and operator that
//! folding, evaluation and kernels share.
//!
//! `unsafe` is denied in every target (Cargo.toml `[lints]`); the few modules that need it are
//! declared `#[allow(unsafe_code)]` in `jit` and `aot`, each with its reason, and
//! `tests/suite/tidy.rs` checks that list and a `// SAFETY:` comment on every use.

pub mod aot;
pub mod app;
pub mod cli;
pub mod data;
pub mod diag;
pub mod driver;
pub mod grad;
pub mod ir;
pub mod jit;
pub mod kit;
pub mod math;
pub mod repl;
pub mod sema;
pub mod solve;
pub mod source;
pub mod syntax;
pub mod train;

pub use driver::{Checked, check_source, check_source_with};
