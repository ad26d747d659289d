//! Which objective terms an SDE trains with, beyond its data loss and `weight_decay`:
//! `error_estimate` (global, or local with `sample = ...`) on the adaptive methods.
//! Everything else is refused here, at plan time, on the term's span:
//!
//! - `error_estimate` on Euler–Maruyama, Euler–Heun or Milstein: they have no error estimate;
//! - `stiffness`: the ODE definition compares two drift stages at one abscissa
//!   (`‖k_p − k_q‖ / ‖g_p − g_q‖`), and no SDE tableau here has such a pair with distinct
//!   arguments (SRIW1's drift stages at `c0 = 0` all read `u_n` itself; SOSRI's, SRA1's and
//!   SOSRA's abscissae are all distinct), so there is no honest `S_j` to penalise;
//! - `kinetic`, `jacobian_frobenius`, `taylor(K)`, `steer(b)`: integrals along the drift and
//!   STEER's end times are built on the ODE solves.

use crate::diag::Diag;
use crate::sema::{Objective, Observable, TermKind};
use crate::solve::sde::SdeMethod;
use crate::source::Span;

/// The SDE methods with an error estimate, as the help lines name them.
pub(super) const ADAPTIVE: &str = "sriw1, sosri (diagonal noise), sra1, sosra (additive noise)";

fn refuse(span: Span, message: String, label: &str, help: String) -> Diag {
    Diag::error("glassbox::train_unsupported", message)
        .label(span, label.to_string())
        .help(help)
}

/// Refuses the objective terms an SDE of `method` cannot train with (`solve` is the solve
/// clause's span, for the fixed-step case).
pub(super) fn check_terms(
    objective: &Objective,
    method: SdeMethod,
    solve: Option<Span>,
) -> Result<(), Diag> {
    for t in &objective.terms {
        match &t.kind {
            TermKind::Observable {
                observable: Observable::ErrorEstimate,
                ..
            } if !method.is_adaptive() => {
                let mut d = refuse(
                    t.span,
                    format!(
                        "`error_estimate` needs an adaptive SDE method, but `{}` has no error estimate",
                        method.name()
                    ),
                    "no estimate to penalise",
                    format!("solve with an SDE method that has one: {ADAPTIVE}"),
                );
                if let Some(s) = solve {
                    d = d.label(s, "a fixed-step method");
                }
                return Err(d);
            }
            TermKind::Observable {
                observable: Observable::Stiffness,
                ..
            } => {
                return Err(refuse(
                    t.span,
                    "SDE solves have no stiffness estimate".into(),
                    "no estimate to penalise",
                    format!(
                        "no SDE method has two drift stages at one abscissa to compare; penalise `error_estimate` (the drift and diffusion error of {ADAPTIVE}) instead"
                    ),
                ));
            }
            TermKind::Kinetic
            | TermKind::JacobianFrobenius { .. }
            | TermKind::Taylor { .. }
            | TermKind::Steer { .. } => {
                return Err(refuse(
                    t.span,
                    "training does not support `kinetic`, `jacobian_frobenius`, `taylor` or `steer` on an SDE yet".into(),
                    "an ODE regularizer",
                    "regularize an SDE with `error_estimate` (or `weight_decay`)".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
