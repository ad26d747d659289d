//! `glassbox show`: the simplified vector field and the objects derived from it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The model file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The vector-Jacobian product vᵀ·∂f/∂(u, p): what the adjoint calls each step.
    #[arg(long, group = "what")]
    pub vjp: bool,
    /// The Jacobian-vector product (∂f/∂u)·w.
    #[arg(long, group = "what")]
    pub jvp: bool,
    /// The dense Jacobian ∂f/∂u.
    #[arg(long, group = "what")]
    pub jacobian: bool,
    /// The K-th time derivative along the flow (K = 2: J·f + ∂f/∂t).
    #[arg(long, group = "what", value_name = "K")]
    pub dt: Option<usize>,
    /// Print LaTeX (an `align*` body) instead of plain text.
    #[arg(long)]
    pub latex: bool,
}

pub fn run(args: &ShowArgs) -> ExitCode {
    let _ = args;
    ExitCode::SUCCESS
}
