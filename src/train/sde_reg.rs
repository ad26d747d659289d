//! Which objective terms an SDE trains with, beyond its data loss and `weight_decay`:
//! `error_estimate` and `stiffness` (global, or local with `sample = ...`) on the adaptive
//! methods (`stiffness`: the drift secant at one abscissa of `solve/sde/stiffness.rs`).
//! Everything else is refused here, at plan time, on the term's span:
//!
//! - `error_estimate` or `stiffness` on Euler–Maruyama, Euler–Heun or Milstein: they have no
//!   estimates (the checker refuses them first, as `glassbox::bad_objective`);
//! - `kinetic`, `jacobian_frobenius`, `taylor(K)`, `steer(b)`: integrals along the drift and
//!   STEER's end times are built on the ODE solves.

use crate::diag::Diag;
use crate::sema::{Objective, Observable, TermKind};

/// Whether the objective has a global `stiffness` term: only then do the solves record `S_j`
/// (it may cost a drift evaluation a step; the local terms take their own step).
pub(super) fn global_stiffness(objective: &Objective) -> bool {
    objective.terms.iter().any(|t| {
        matches!(
            t.kind,
            TermKind::Observable {
                observable: Observable::Stiffness,
                sample: None,
            }
        )
    })
}
use crate::solve::registry;
use crate::solve::sde::SdeMethod;
use crate::source::Span;

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
                observable: observable @ (Observable::ErrorEstimate | Observable::Stiffness),
                ..
            } if !method.is_adaptive() => {
                let what = match observable {
                    Observable::Stiffness => "stiffness",
                    _ => "error_estimate",
                };
                let mut d = refuse(
                    t.span,
                    format!(
                        "`{what}` needs an adaptive SDE method, but `{}` has no such estimate",
                        method.name()
                    ),
                    "no estimate to penalise",
                    format!(
                        "solve with an SDE method that has one: {}",
                        registry::adaptive_sde_methods()
                    ),
                );
                if let Some(s) = solve {
                    d = d.label(s, "a fixed-step method");
                }
                return Err(d);
            }
            TermKind::Kinetic
            | TermKind::JacobianFrobenius { .. }
            | TermKind::Taylor { .. }
            | TermKind::Steer { .. } => {
                return Err(refuse(
                    t.span,
                    "training does not support `kinetic`, `jacobian_frobenius`, `taylor` or `steer` on an SDE yet".into(),
                    "an ODE regularizer",
                    "regularize an SDE with `error_estimate` or `stiffness` (or `weight_decay`)"
                        .into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
