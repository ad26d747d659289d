//! The integration tests that drive glassbox as a user does (the CLI, the REPL, the README and
//! the language page as written) or through its library API: one test binary, one module per
//! concern. One binary links the crate once instead of once per file (issue 16: 25 binaries
//! took minutes to link and gigabytes of `target/`); `tests/ir`, `tests/jit` and `tests/fuzz`
//! are binaries of their own. Run one module with `cargo test --test suite MODULE::`.

mod batched;
mod batched_adjoint;
mod batched_windows;
mod build;
mod classify;
mod cli;
mod cli_solve;
mod data;
mod diagnostics;
mod examples_data;
mod grad;
mod integrals;
mod language_doc;
mod methods;
mod readme;
mod recovery;
mod render;
mod repl;
mod sde;
mod sde_batched;
mod sde_train;
mod sema_models;
mod solve;
mod stiff;
mod threads;
mod tidy;
mod train;
mod vjp;
