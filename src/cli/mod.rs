//! The command-line front end (clap): each subcommand's arguments and what it prints or
//! writes, one module each. The work itself is `crate::app`'s (plans, runs, exporters), the
//! shared IO `crate::kit`'s; `src/main.rs` parses the command line and dispatches here or to
//! the REPL (`crate::repl`), so the CLI does not know the other front ends.

pub mod build;
pub mod check;
pub mod fmt;
pub mod params;
pub mod predict;
pub mod show;
pub mod solve;
pub mod train;

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people, with rendered diagnostics.
    #[default]
    Human,
    /// One JSON document on stdout, for tools.
    Json,
}
