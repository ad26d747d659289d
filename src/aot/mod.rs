//! The standalone binaries' front end: what runs inside an executable `glassbox build` made
//! (a model's kernels compiled ahead of time, linked with this crate as the runtime, needing
//! only the C library and libm).
//!
//! - `app::build` decided at build time what the binary does, exactly as `glassbox predict`
//!   (trainable models) or `glassbox solve` decides it, and wrote it down as [`Meta`];
//!   `jit::object` emitted the object file and `kit::link` linked it.
//! - `entry.rs` is the binary's entry point: it wraps the linked kernels with their specs.
//! - `runtime.rs` is what runs inside the binary: its command line, the solve (the crate's own
//!   `solve::solve_with` on the linked kernels; a classifier's rows batched where `glassbox
//!   predict` batches them, through its `train::predict_batched` on the linked batched
//!   kernels), CSV/JSON output through `app::export`;
//!   `run_sde.rs` the SDE solve (`solve::sde::solve_sde` on the linked drift, diffusion and
//!   JVP).
//!
//! The entry point (`entry.rs`: `glassbox_aot_main`) relies on [`Meta`]'s invariant (see
//! `app::build::meta`) to call the linked kernels.

// `unsafe_code` is denied crate-wide (Cargo.toml `[lints]`); the one exception in `aot` (the
// list is in `tests/suite/tidy.rs`): the binary's unmangled entry point, reading its data objects and
// trusting its linked kernels' specs.
#[allow(unsafe_code)]
mod entry;
mod run_sde;
pub mod runtime;

pub use crate::app::build::{KernelSpec, Meta, SdeMeta};
