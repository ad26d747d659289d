//! Stage 6: gradients of a solve — the discrete adjoint through explicit Runge–Kutta steps,
//! with the solver-heuristic regularizers `R_E = Σ E_j|h_j|` and `R_S = Σ S_j|h_j|` (global and
//! local) folded into the same backward sweep.
//!
//! Architecture Invariant (DESIGN.md): gradients are exact for the computation done. The
//! adjoint walks the accepted steps backwards with VJPs of the field ([`VjpField`], compiled by
//! the JIT for models); the recorded step sizes are constants; gradients flow through every
//! stage, including those forming `E_j` and `S_j`. [`replay`] re-runs a recorded step sequence,
//! which is the function being differentiated. See `docs/gradients.md`.

mod activations;
mod adjoint;
mod batched;
mod field;
mod init;
mod integral;
mod local;
mod regularize;
mod replay;
mod saves;
mod sde;
mod sde_local;
mod sde_mean;
mod sde_reg;

pub use adjoint::{AdjointOptions, AdjointWork, Gradients, adjoint, adjoint_in, adjoint_with};
pub use batched::{
    BatchAdjointWork, BatchGradients, BatchVjpField, RowByRow, batch_adjoint, row_by_row,
};
pub(crate) use field::add_into;
pub use field::{FnVjpField, JitVjpField, VjpField, vjp_from_fn};
pub use init::initial_state_vjp;
pub use integral::{Integrand, JitIntegrand, integral, rademacher};
pub use local::{LocalTerm, Sampling, local_step, local_term, sample};
pub use regularize::{error_estimate, stiffness_estimate};
pub use replay::{replay, step_sequence};
pub(crate) use saves::{SaveAt, locate, step_end};
pub use sde::{JitSdeVjp, SdeRegularizer, SdeVjpField, sde_adjoint, sde_adjoint_with};
pub use sde_local::{SdeLocalTerm, sde_local_step, sde_local_term, sde_sample};
pub use sde_mean::{FinalMean, final_mean_gradient};

use crate::solve::{Solution, Tableau};

/// `(R_E, R_S)` from the solver's records: `Σ_j E_j |h_j|`, `Σ_j S_j |h_j|` (steps without an
/// estimate count 0).
pub fn recorded_regularizers(sol: &Solution) -> (f64, f64) {
    sol.steps.iter().fold((0.0, 0.0), |(e, s), st| {
        (
            e + st.error_estimate.unwrap_or(0.0) * st.h.abs(),
            s + st.stiffness_estimate.unwrap_or(0.0) * st.h.abs(),
        )
    })
}

/// `(R_E, R_S)` recomputed from the kept stages (what the adjoint differentiates); equals
/// [`recorded_regularizers`]. `None` when a step kept no stages.
pub fn regularizers_from_stages(
    tab: &Tableau,
    sol: &Solution,
    rtol: f64,
    atol: f64,
) -> Option<(f64, f64)> {
    let n = sol.dim;
    let (mut re, mut rs) = (0.0, 0.0);
    let (mut u1, mut gp, mut gq) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for st in &sol.steps {
        let g = st
            .stages
            .as_ref()
            .filter(|g| g.k.len() == tab.stages() * n)?;
        adjoint::combine(&g.u0, st.h, tab.b, &g.k, n, &mut u1);
        re +=
            error_estimate(tab, st.h, (&g.u0, &u1), &g.k, (rtol, atol)).unwrap_or(0.0) * st.h.abs();
        if let Some((p, q)) = tab.stiffness_pair {
            adjoint::combine(&g.u0, st.h, tab.a[p], &g.k, n, &mut gp);
            adjoint::combine(&g.u0, st.h, tab.a[q], &g.k, n, &mut gq);
            rs += stiffness_estimate(tab, &g.k, (&gp, &gq)).unwrap_or(0.0) * st.h.abs();
        }
    }
    Some((re, rs))
}
