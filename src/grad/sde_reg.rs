//! The error-estimate and stiffness regularizers of the adaptive SDE methods and their
//! derivatives with respect to one step's values, for the SDE adjoint (`grad::sde`).
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
//! The stiffness regularizer `R_S = Σ_j S_j |h_j|` (`solve/sde/stiffness.rs`:
//! `S = ‖f_p − f_x‖ / ‖H0_q − H0_p‖`, `f_x = f(t + c0_p h, H0_q)`) has the ODE secant's
//! partials ([`stiffness_seeds`]); they reach `f_p`, `f_x` and the stage arguments `H0_p`,
//! `H0_q`, which are sums of `u_n` and the earlier stage values, so [`stiffness_stage_seeds`]
//! hands them to the same stage sweep (and `f_x`, when it is an evaluation of its own, through
//! one more drift VJP). `S = 0` (0/0 included) has zero gradient.
//!
//! Invariant: the values are the solver's own `error_estimate` and `stiffness_estimate` (the
//! same functions, on the same replayed step), so `R_E`, `R_S` here equal the sums of the
//! recorded `E_j |h_j|`, `S_j |h_j|`.

// The partials are component-wise over several parallel buffers, as in `solve/sde/step.rs`.
#![allow(clippy::needless_range_loop)]

use super::regularize::sign;
use super::sde::SdeVjpField;
use crate::solve::sde::{
    SdeField, SdeMethod, SdeOptions, Work, drift_row, error_estimate, stiffness_estimate,
    stiffness_pair,
};

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

/// The cotangents one step's `S` hands on (`solve/sde/stiffness.rs`:
/// `S = ‖f_p − f_x‖ / ‖H0_q − H0_p‖`, `f_x = f(t + c0_p h, H0_q)`): to the stage value `f_p`,
/// to `f_x`, and to the stage arguments `H0_p`, `H0_q`.
pub(super) struct StiffnessSeeds {
    pub kp: Vec<f64>,
    pub kx: Vec<f64>,
    pub xp: Vec<f64>,
    pub xq: Vec<f64>,
}

impl StiffnessSeeds {
    pub fn new(n: usize) -> StiffnessSeeds {
        StiffnessSeeds {
            kp: vec![0.0; n],
            kx: vec![0.0; n],
            xp: vec![0.0; n],
            xq: vec![0.0; n],
        }
    }
}

/// `S` of the step `(t, h)` in `w` (the solver's own `stiffness_estimate`, which refills
/// `w.fx`, evaluating the drift when it reads `t`), and `weight · ∂S/∂(f_p, f_x, H0_p, H0_q)`
/// written into `seeds`: with `d = f_p − f_x`, `Δ = H0_p − H0_q`,
/// `∂S/∂f_p = d / (S ‖Δ‖²) = −∂S/∂f_x`, `∂S/∂H0_p = −S Δ / ‖Δ‖² = −∂S/∂H0_q` (zero where
/// `S` is 0, as at 0/0, or not finite). `None` for a method without an estimate.
pub(super) fn stiffness_seeds<F: SdeField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    (t, h): (f64, f64),
    w: &mut Work,
    weight: f64,
    seeds: &mut StiffnessSeeds,
) -> Option<f64> {
    let (s_val, _) = stiffness_estimate(method, field, t, h, w)?;
    let (p, q) = stiffness_pair(method)?;
    for v in [&mut seeds.kp, &mut seeds.kx, &mut seeds.xp, &mut seeds.xq] {
        v.fill(0.0);
    }
    if weight == 0.0 || s_val == 0.0 || !s_val.is_finite() {
        return Some(s_val);
    }
    let n = w.fx.len();
    let (hp, hq) = (&w.h0[p * n..(p + 1) * n], &w.h0[q * n..(q + 1) * n]);
    let fp = &w.fs[p * n..(p + 1) * n];
    let den: f64 = hp.iter().zip(hq).map(|(a, b)| (a - b).powi(2)).sum();
    for m in 0..n {
        let dk = weight * (fp[m] - w.fx[m]) / (s_val * den);
        seeds.kp[m] = dk;
        seeds.kx[m] = -dk;
        let dx = -weight * s_val * (hp[m] - hq[m]) / den;
        seeds.xp[m] = dx;
        seeds.xq[m] = -dx;
    }
    Some(s_val)
}

/// Hands a step's `S` seeds to the stage cotangents `lf`, `lg` (stage-major) and `lu`, `dp`:
/// `f_p`'s to `lf[p]`; `f_x`'s to `lf[q]` when the drift does not read `t` (`f_x` is `f_q`
/// then), else through the drift's VJP at `(t + c0_p h, H0_q)` (`wu`, `wp` scratch) to
/// `H0_q`; each argument's cotangent `λ` to what forms it,
/// `H0_s = u + h Σ A0_sj f_j + χ2 Σ B0_sj g_j`.
#[allow(clippy::too_many_arguments)]
pub(super) fn stiffness_stage_seeds<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    (t, h): (f64, f64),
    w: &Work,
    seeds: &StiffnessSeeds,
    (lf, lg): (&mut [f64], &mut [f64]),
    (wu, wp): (&mut [f64], &mut [f64]),
    (lu, dp): (&mut [f64], &mut [f64]),
) {
    let Some((p, q)) = stiffness_pair(method) else {
        return;
    };
    let Some((_, _, cp)) = drift_row(method, p) else {
        return;
    };
    let n = seeds.kp.len();
    for m in 0..n {
        lf[p * n + m] += seeds.kp[m];
    }
    // `H0_q`'s cotangent gains the extra evaluation's `∂u` (left in `wu`) when there is one.
    let reads_t = field.drift_reads_t();
    if reads_t {
        field.drift_vjp(t + cp * h, &w.h0[q * n..(q + 1) * n], &seeds.kx, wu, wp);
        for (a, b) in dp.iter_mut().zip(wp.iter()) {
            *a += b;
        }
    } else {
        for m in 0..n {
            lf[q * n + m] += seeds.kx[m];
        }
    }
    let wu: &[f64] = wu;
    for (s, lam, extra) in [(p, &seeds.xp, None), (q, &seeds.xq, reads_t.then_some(wu))] {
        let Some((a0, b0, _)) = drift_row(method, s) else {
            return;
        };
        for m in 0..n {
            let l = match extra {
                Some(e) => lam[m] + e[m],
                None => lam[m],
            };
            lu[m] += l;
            for j in 0..s {
                lf[j * n + m] += h * a0[j] * l;
                lg[j * n + m] += w.chi[1][m] * b0[j] * l;
            }
        }
    }
}
