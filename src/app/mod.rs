//! The application layer: what `glassbox solve`, `predict`, `train` and `build`, the REPL and
//! the standalone binaries *do*, once, as plain requests → plans → runs → plain data.
//!
//! A front end turns its arguments into a request ([`SolveRequest`]), asks for a plan (the
//! flags combined with the model's clauses: [`solve::plan`], [`predict::predict`],
//! [`build::plan`], ...), runs it ([`solve::run_ode`], [`sde::run`], [`grad::run`],
//! [`train::setup`]) and hands the result to an exporter ([`export`]: CSV, JSON, statistics).
//!
//! Invariant: nothing here touches the file system or the terminal — files the model names
//! come through a `Loader`, and writing, printing, plotting and progress bars belong to
//! `crate::kit` and the front ends (`tests/suite/tidy.rs` checks the layer order).

pub mod build;
pub mod export;
pub mod figure;
pub mod grad;
pub mod params;
pub mod predict;
pub mod request;
pub mod rows;
pub mod sde;
pub mod sde_vjp;
pub mod show;
pub mod solve;
pub mod train;
pub mod vjp;

use std::sync::Arc;

use crate::diag::Diag;
use crate::source::SourceFile;

pub use request::SolveRequest;

/// Attach the model file to diagnostics that point into it (checker, planner and data
/// diagnostics carry labels but no file).
pub fn located(file: &Arc<SourceFile>) -> impl Fn(Diag) -> Vec<Diag> + '_ {
    move |d: Diag| {
        if d.file.is_none() && !d.labels.is_empty() {
            vec![d.in_file(file)]
        } else {
            vec![d]
        }
    }
}

/// A flag's value is wrong: `glassbox::bad_argument` with a help line.
pub fn bad_arg(msg: String, help: &str) -> Vec<Diag> {
    vec![Diag::error("glassbox::bad_argument", msg).help(help.to_string())]
}
