//! The IO the front ends share: loading model files and weights ([`source`]), one atomic
//! writer and one `glassbox::io_error` constructor ([`io`]), diagnostic rendering
//! ([`render`]), progress bars ([`progress`]), PNG plots ([`plot`]), the run directory of a
//! training run ([`run_dir`]) and resuming one ([`resume`]), the process's peak memory ([`memory`]), where results go
//! ([`output`]), the solve flags the CLI and the REPL both parse ([`flags`]), command-line
//! mistakes as diagnostics ([`usage`]) and writing a standalone binary ([`build`], linked by
//! [`link`]).
//!
//! Above `crate::app` (which does no IO) and below the front ends (`cli`, `repl`, `aot`),
//! which import this instead of each other (`tests/suite/tidy.rs`).

pub mod build;
pub mod flags;
pub mod io;
pub mod link;
pub mod memory;
pub mod output;
pub mod plot;
pub mod progress;
pub mod render;
pub mod resume;
pub mod run_dir;
pub mod source;
pub mod usage;

pub use io::{io_error, write_atomic};
pub use render::{emit, render_diag};
pub use source::{load_params, load_source, load_weights};
