//! The error-estimate regularizer of the adaptive SDE methods and its derivative with respect
//! to one step's values, for the SDE adjoint (`grad::sde`).
//!
//! Per accepted step (DESIGN.md, "Regularizers"; `solve/sde/integrate.rs`), with the step's
//! error parts `E1` (drift) and `E2` (diffusion) and `s_m = atol + rtol·max(|u_n,m|, |u_n+1,m|)`:
//! `e_m = δ|E1_m| + |E2_m|`, `E = sqrt((1/n) Σ_m (e_m / s_m)²)`, so
//! `∂E/∂e_m = e_m / (n E s_m²)` and `∂E/∂s_m = −e_m² / (n E s_m³)`. `R_E = Σ_j E_j |h_j|`
//! with the step sizes constants.
//!
//! `E1`, `E2` are linear in the stage values (SRI: `E1 = h Σ_{s < error_stages} f_s`,
//! `E2 = Σ_s (β3_s χ2 + β4_s χ3) g_s`; SRA: `E1 = h Σ_s f_s`, `E2 = χ2 Σ_s β2_s g_s`), the
//! `χ` being functions of the replayed Brownian increments, so the adjoint hands
//! `∂E/∂E1`, `∂E/∂E2` to the stages ([`stage_seeds`]) and lets the step's own sweep carry
//! them to `u_n` and the parameters.
//!
//! Branches as in the ODE regularizer (`regularize.rs`): the `max` in `s_m` differentiates
//! through the argument it returned, `u_n` on a tie; `|x|` has derivative `sign(x)`, 0 at 0;
//! `E = 0` has zero gradient.
//!
//! Invariant: the value is the solver's own `error_estimate` (the same function, on the same
//! replayed step), so `R_E` here equals the sum of the recorded `E_j |h_j|`.

// The partials are component-wise over several parallel buffers, as in `solve/sde/step.rs`.
#![allow(clippy::needless_range_loop)]

use super::regularize::sign;
use crate::solve::sde::{SdeMethod, SdeOptions, Work, error_estimate};

/// The cotangents one step's `E` hands on: to `u_n`, `u_{n+1}` and the error parts.
pub(super) struct ErrorSeeds {
    pub u0: Vec<f64>,
    pub u1: Vec<f64>,
    pub e1: Vec<f64>,
    pub e2: Vec<f64>,
}

impl ErrorSeeds {
    pub fn new(n: usize) -> ErrorSeeds {
        ErrorSeeds {
            u0: vec![0.0; n],
            u1: vec![0.0; n],
            e1: vec![0.0; n],
            e2: vec![0.0; n],
        }
    }
}

/// `E` of the step in `w` from `u0`, and `weight · ∂E/∂(u_n, u_{n+1}, E1, E2)` written into
/// `seeds` (zero where `E` is 0 or not finite).
pub(super) fn error_seeds(
    u0: &[f64],
    w: &Work,
    opts: &SdeOptions,
    weight: f64,
    seeds: &mut ErrorSeeds,
) -> f64 {
    let e_val = error_estimate(u0, w, opts);
    for v in [&mut seeds.u0, &mut seeds.u1, &mut seeds.e1, &mut seeds.e2] {
        v.fill(0.0);
    }
    if weight == 0.0 || e_val == 0.0 || !e_val.is_finite() {
        return e_val;
    }
    let n = u0.len();
    let c = weight / (n as f64 * e_val);
    for m in 0..n {
        let (a, b) = (u0[m], w.u1[m]);
        let scale = opts.atol + a.abs().max(b.abs()) * opts.rtol;
        let e = opts.delta * w.e1[m].abs() + w.e2[m].abs();
        let de = c * e / (scale * scale);
        seeds.e1[m] = de * opts.delta * sign(w.e1[m]);
        seeds.e2[m] = de * sign(w.e2[m]);
        let ds = -c * e * e / (scale * scale * scale) * opts.rtol;
        if a.abs() >= b.abs() {
            seeds.u0[m] = ds * sign(a);
        } else {
            seeds.u1[m] = ds * sign(b);
        }
    }
    e_val
}

/// Adds the stage cotangents of `E1`, `E2`'s seeds to `lf`, `lg` (stage-major, as the step
/// sweep keeps them) for step size `h`.
pub(super) fn stage_seeds(
    method: SdeMethod,
    h: f64,
    w: &Work,
    seeds: &ErrorSeeds,
    lf: &mut [f64],
    lg: &mut [f64],
) {
    let n = seeds.e1.len();
    match method {
        SdeMethod::Sri(tab) => {
            for s in 0..4 {
                for i in 0..n {
                    if s < tab.error_stages {
                        lf[s * n + i] += h * seeds.e1[i];
                    }
                    let c = tab.beta3[s] * w.chi[1][i] + tab.beta4[s] * w.chi[2][i];
                    lg[s * n + i] += c * seeds.e2[i];
                }
            }
        }
        SdeMethod::Sra(tab) => {
            for s in 0..tab.stages {
                for i in 0..n {
                    lf[s * n + i] += h * seeds.e1[i];
                    lg[s * n + i] += tab.beta2[s] * w.chi[1][i] * seeds.e2[i];
                }
            }
        }
        // No error estimate: `error_estimate` reads zero error parts.
        SdeMethod::EulerMaruyama | SdeMethod::EulerHeun | SdeMethod::Milstein => {}
    }
}
