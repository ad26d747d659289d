//! The standalone binaries' front end: what runs inside an executable `glassbox build` made
//! (a model's kernels compiled ahead of time, linked with this crate as the runtime, needing
//! only the C library and libm).
//!
//! - `app::build` decided at build time what the binary does, exactly as `glassbox predict`
//!   (trainable models) or `glassbox solve` decides it, and wrote it down as [`Meta`];
//!   `jit::object` emitted the object file and `kit::link` linked it.
//! - `runtime.rs` is what runs inside the binary: its command line, the solve (the crate's own
//!   `solve::solve_with` on the linked kernels), CSV/JSON output through `app::export`;
//!   `run_sde.rs` the SDE solve (`solve::sde::solve_sde` on the linked drift, diffusion and
//!   JVP).
//!
//! The runtime (`jit::kernel::glassbox_aot_main`) relies on [`Meta`]'s invariant (see
//! `app::build::meta`) to call the linked kernels.

mod run_sde;
pub mod runtime;

pub use crate::app::build::{KernelSpec, Meta, SdeMeta};
