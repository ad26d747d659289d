//! `glassbox show`: the simplified vector field and the objects derived from it, printed by
//! the IR printers (text or LaTeX).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::render::emit;
use crate::diag::Diag;
use crate::ir::lower::{Part, internal, lower, split_output_by_slots};
use crate::ir::{Function, jacobian, jvp, print_latex, print_text, time_derivatives, vjp};
use crate::sema::{Model, ModelKind};
use crate::source::DiskLoader;

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
    #[arg(long, group = "what", value_name = "K", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub dt: Option<u8>,
    /// Print LaTeX (the body of an `align*` environment) instead of plain text.
    #[arg(long)]
    pub latex: bool,
}

pub fn run(args: &ShowArgs) -> ExitCode {
    let file = match super::load_source(&args.file) {
        Ok(f) => f,
        Err(d) => {
            emit(&[d]);
            return ExitCode::FAILURE;
        }
    };
    let checked = crate::check_source(&file, &DiskLoader);
    emit(&checked.diags);
    let Some(model) = checked.model else {
        return ExitCode::FAILURE;
    };
    match derived(&model, args) {
        Ok(parts) => {
            for (i, (title, f)) in parts.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                if args.latex {
                    println!("% {title}");
                    print!("{}", print_latex(f));
                } else {
                    println!("# {title}");
                    print!("{}", print_text(f));
                }
            }
            ExitCode::SUCCESS
        }
        Err(d) => {
            emit(&[d.in_file(&file)]);
            ExitCode::FAILURE
        }
    }
}

/// The functions to print, each with a one-line title saying what its arguments are.
fn derived(model: &Model, args: &ShowArgs) -> Result<Vec<(String, Function)>, Diag> {
    let field = lower(model, Part::Field)?;
    let states = state_list(model);
    let what = if args.vjp {
        let f = vjp(&field, &["u", "p"], "v").map_err(internal)?;
        let f = split_output_by_slots(&f, "vjp_u", "u", "vjp_");
        let f = split_output_by_slots(&f, "vjp_p", "p", "vjp_");
        (
            format!(
                "vector-Jacobian product: vjp_X = vᵀ·∂f/∂X for each state and parameter X, \
                 u = {states}, v a cotangent of u"
            ),
            f,
        )
    } else if args.jvp {
        let f = jvp(&field, "u", "w").map_err(internal)?;
        (
            format!("Jacobian-vector product (∂f/∂u)·w, u = {states}, w a tangent of u"),
            f,
        )
    } else if args.jacobian {
        let f = jacobian(&field, "u").map_err(internal)?;
        (format!("Jacobian ∂f/∂u, u = {states}, row-major"), f)
    } else if let Some(k) = args.dt {
        let mut all = time_derivatives(&field, k.into(), Some("t"), "u").map_err(internal)?;
        let f = all
            .pop()
            .ok_or_else(|| internal(crate::ir::IrError::Invalid("no derivative".into())))?;
        (
            format!("time derivative d^{k}u/dt^{k} along the flow, u = {states}"),
            f,
        )
    } else {
        let mut parts = vec![(
            match model.kind {
                ModelKind::Ode => format!("vector field of `{}`", model.name),
                ModelKind::Sde => format!("drift of `{}`", model.name),
            },
            field,
        )];
        if model.kind == ModelKind::Sde {
            parts.push((
                format!("diffusion of `{}`", model.name),
                lower(model, Part::Diffusion)?,
            ));
        }
        return Ok(parts);
    };
    Ok(vec![what])
}

fn state_list(model: &Model) -> String {
    let names: Vec<&str> = model.states.iter().map(|s| s.name.as_str()).collect();
    format!("[{}]", names.join(", "))
}
