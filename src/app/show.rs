//! What `glassbox show` prints, as data: the simplified vector field (and an SDE's diffusion)
//! or an object derived from it, each with a one-line title. The CLI prints them as text, LaTeX,
//! IR nodes or Cranelift IR; the Python package's `Model.show` and `_repr_latex_` as text and
//! LaTeX ([`render`]).

use crate::diag::Diag;
use crate::ir::lower::{Part, internal, lower, split_output_by_slots};
use crate::ir::{Function, jacobian, jvp, print_latex, print_text, time_derivatives, vjp};
use crate::sema::{Model, ModelKind};

/// Which function to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The vector field (an SDE's drift and diffusion).
    Field,
    /// `vᵀ·∂f/∂(u, p)`: what the adjoint calls each step.
    Vjp,
    /// `(∂f/∂u)·w`.
    Jvp,
    /// The dense `∂f/∂u`.
    Jacobian,
    /// The K-th time derivative along the flow.
    TimeDerivative(u8),
}

impl View {
    /// The names the Python package takes (`Model.show(view=...)`), in [`View::from_name`]'s
    /// spelling; `dtK` for a time derivative.
    pub const NAMES: [&'static str; 5] = ["field", "vjp", "jvp", "jacobian", "dtK (K = 1..8)"];

    pub fn from_name(name: &str) -> Option<View> {
        match name {
            "field" => Some(View::Field),
            "vjp" => Some(View::Vjp),
            "jvp" => Some(View::Jvp),
            "jacobian" => Some(View::Jacobian),
            _ => {
                let k: u8 = name.strip_prefix("dt")?.parse().ok()?;
                (1..=8).contains(&k).then_some(View::TimeDerivative(k))
            }
        }
    }

    /// What the kernel computes, for its name in diagnostics.
    pub fn kernel_name(self) -> String {
        match self {
            View::Field => "field".into(),
            View::Vjp => "vjp".into(),
            View::Jvp => "jvp".into(),
            View::Jacobian => "jacobian".into(),
            View::TimeDerivative(k) => format!("dt{k}"),
        }
    }
}

/// The parts as `glassbox show` prints them: `# title` then the text, or (`latex`) `% title`
/// then the body of an `align*` environment; parts separated by a blank line.
pub fn render(parts: &[(String, Function)], latex: bool) -> String {
    let mut out = String::new();
    for (i, (title, f)) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if latex {
            out.push_str(&format!("% {title}\n{}", print_latex(f)));
        } else {
            out.push_str(&format!("# {title}\n{}", print_text(f)));
        }
    }
    out
}

/// The functions to print, each with a one-line title saying what its arguments are.
pub fn derived(model: &Model, view: View) -> Result<Vec<(String, Function)>, Diag> {
    let field = lower(model, Part::Field)?;
    let states = state_list(model);
    let what = if view == View::Vjp {
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
    } else if view == View::Jvp {
        let f = jvp(&field, "u", "w").map_err(internal)?;
        (
            format!("Jacobian-vector product (∂f/∂u)·w, u = {states}, w a tangent of u"),
            f,
        )
    } else if view == View::Jacobian {
        let f = jacobian(&field, "u").map_err(internal)?;
        (format!("Jacobian ∂f/∂u, u = {states}, row-major"), f)
    } else if let View::TimeDerivative(k) = view {
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
