//! The exporters: one for CSV, one for JSON, one for statistics text. Each takes a case of one
//! enum (an ODE solve, SDE paths, a gradient, a binary's samples, a classifier's logits), so
//! the CLI, the REPL and the standalone binaries write the same bytes for the same result.

pub mod csv;
pub mod json;
pub mod stats;

pub use csv::{Csv, to_csv};
pub use json::{Json, to_json};
pub use stats::{StatsOf, stats_text};
