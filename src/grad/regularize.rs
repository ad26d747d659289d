//! The solver-heuristic regularizers and their derivatives with respect to one step's values.
//!
//! Per accepted step (DESIGN.md, "Regularizers"), with `ũ = h Σ btilde_i k_i` and
//! `s_m = atol + rtol·max(|u_n,m|, |u_n+1,m|)`:
//! - `E = sqrt((1/n) Σ_m (ũ_m / s_m)²)`, so `∂E/∂ũ_m = ũ_m / (n E s_m²)` and
//!   `∂E/∂s_m = −ũ_m² / (n E s_m³)`;
//! - `S = ‖k_p − k_q‖ / ‖g_p − g_q‖` over the tableau's stage pair, so
//!   `∂S/∂k_p = (k_p − k_q) / (S ‖g_p − g_q‖²) = −∂S/∂k_q` and
//!   `∂S/∂g_p = −S (g_p − g_q) / ‖g_p − g_q‖² = −∂S/∂g_q`.
//!
//! `R_E = Σ_j E_j |h_j|`, `R_S = Σ_j S_j |h_j|`; the step sizes are constants.
//!
//! Branches (subgradients of the piecewise parts, chosen like the forward pass computes them):
//! the `max` in `s_m` differentiates through the argument it returned, `u_n` on a tie; `|x|`
//! has derivative `sign(x)`, 0 at 0; `E = 0` or `S = 0` (the square root at 0) and a vanishing
//! `‖g_p − g_q‖` (where the solver defines `S = 0`) have zero gradient.
//!
//! Invariant: the values are computed with the solver's formulas and operation order
//! (`solve/step.rs`), so they equal the recorded `error_estimate`/`stiffness_estimate`.

use crate::solve::Tableau;

/// `E` of one step, or `None` for a tableau without an embedded pair.
pub fn error_estimate(
    tab: &Tableau,
    h: f64,
    (u0, u1): (&[f64], &[f64]),
    k: &[f64],
    (rtol, atol): (f64, f64),
) -> Option<f64> {
    let bt = tab.btilde?;
    let n = u0.len();
    if n == 0 {
        return Some(0.0);
    }
    let mut sum = 0.0;
    for m in 0..n {
        let e = h * bt
            .iter()
            .enumerate()
            .map(|(j, b)| b * k[j * n + m])
            .sum::<f64>();
        let scale = atol + u0[m].abs().max(u1[m].abs()) * rtol;
        if e != 0.0 {
            sum += (e / scale).powi(2);
        }
    }
    Some((sum / n as f64).sqrt())
}

/// Adds `weight · ∂E/∂(u0, u1, k)` into `(lam_u0, lam_u1, lam_k)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn error_estimate_adjoint(
    tab: &Tableau,
    h: f64,
    (u0, u1): (&[f64], &[f64]),
    k: &[f64],
    (rtol, atol): (f64, f64),
    weight: f64,
    (lam_u0, lam_u1): (&mut [f64], &mut [f64]),
    lam_k: &mut [f64],
) {
    let (Some(bt), Some(e_val)) = (
        tab.btilde,
        error_estimate(tab, h, (u0, u1), k, (rtol, atol)),
    ) else {
        return;
    };
    let n = u0.len();
    if weight == 0.0 || e_val == 0.0 || !e_val.is_finite() {
        return;
    }
    let c = weight / (n as f64 * e_val);
    for m in 0..n {
        let e = h * bt
            .iter()
            .enumerate()
            .map(|(j, b)| b * k[j * n + m])
            .sum::<f64>();
        let scale = atol + u0[m].abs().max(u1[m].abs()) * rtol;
        let de = c * e / (scale * scale);
        for (j, b) in bt.iter().enumerate() {
            lam_k[j * n + m] += de * h * b;
        }
        let ds = -c * e * e / (scale * scale * scale) * rtol;
        if u0[m].abs() >= u1[m].abs() {
            lam_u0[m] += ds * sign(u0[m]);
        } else {
            lam_u1[m] += ds * sign(u1[m]);
        }
    }
}

/// `S` of one step from its stages and the pair's arguments `g_p`, `g_q`, or `None` without a
/// stage pair.
pub fn stiffness_estimate(tab: &Tableau, k: &[f64], (gp, gq): (&[f64], &[f64])) -> Option<f64> {
    let (p, q) = tab.stiffness_pair?;
    let n = gp.len();
    let (mut num, mut den) = (0.0, 0.0);
    for m in 0..n {
        num += (k[p * n + m] - k[q * n + m]).powi(2);
        den += (gp[m] - gq[m]).powi(2);
    }
    Some(if den > 0.0 { (num / den).sqrt() } else { 0.0 })
}

/// Adds `weight · ∂S/∂(k, g_p, g_q)` into `lam_k`, `lam_gp`, `lam_gq`.
pub(crate) fn stiffness_adjoint(
    tab: &Tableau,
    k: &[f64],
    (gp, gq): (&[f64], &[f64]),
    weight: f64,
    lam_k: &mut [f64],
    (lam_gp, lam_gq): (&mut [f64], &mut [f64]),
) {
    let (Some((p, q)), Some(s)) = (tab.stiffness_pair, stiffness_estimate(tab, k, (gp, gq))) else {
        return;
    };
    if weight == 0.0 || s == 0.0 || !s.is_finite() {
        return;
    }
    let n = gp.len();
    let den: f64 = gp.iter().zip(gq).map(|(a, b)| (a - b).powi(2)).sum();
    for m in 0..n {
        let dk = weight * (k[p * n + m] - k[q * n + m]) / (s * den);
        lam_k[p * n + m] += dk;
        lam_k[q * n + m] -= dk;
        let dg = -weight * s * (gp[m] - gq[m]) / den;
        lam_gp[m] += dg;
        lam_gq[m] -= dg;
    }
}

pub(super) fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::tableau::{BS3, TSIT5};

    /// The hand-derived partials against central differences of the value functions.
    #[test]
    fn step_partials_match_central_differences() {
        let tab = &TSIT5;
        let n = 3;
        let s = tab.stages();
        let k: Vec<f64> = (0..s * n)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3)
            .collect();
        let u0 = [0.5, -1.2, 0.01];
        let u1 = [0.7, -1.0, -0.02];
        let tol = (1e-3, 1e-4);
        let h = 0.1;
        let mut lk = vec![0.0; s * n];
        let (mut l0, mut l1) = (vec![0.0; n], vec![0.0; n]);
        error_estimate_adjoint(
            tab,
            h,
            (&u0, &u1),
            &k,
            tol,
            2.0,
            (&mut l0, &mut l1),
            &mut lk,
        );
        let e = |u0: &[f64], u1: &[f64], k: &[f64]| {
            2.0 * error_estimate(tab, h, (u0, u1), k, tol).expect("adaptive")
        };
        let eps = 1e-7;
        for i in 0..s * n {
            let (mut kp, mut km) = (k.clone(), k.clone());
            kp[i] += eps;
            km[i] -= eps;
            let fd = (e(&u0, &u1, &kp) - e(&u0, &u1, &km)) / (2.0 * eps);
            assert!(
                (fd - lk[i]).abs() <= 1e-6 * fd.abs().max(1.0),
                "k{i}: {fd} vs {}",
                lk[i]
            );
        }
        for m in 0..n {
            let (mut a, mut b) = (u0, u0);
            a[m] += eps;
            b[m] -= eps;
            let fd = (e(&a, &u1, &k) - e(&b, &u1, &k)) / (2.0 * eps);
            assert!((fd - l0[m]).abs() <= 1e-6 * fd.abs().max(1.0), "u0 {m}");
            let (mut a, mut b) = (u1, u1);
            a[m] += eps;
            b[m] -= eps;
            let fd = (e(&u0, &a, &k) - e(&u0, &b, &k)) / (2.0 * eps);
            assert!((fd - l1[m]).abs() <= 1e-6 * fd.abs().max(1.0), "u1 {m}");
        }

        let tab = &BS3;
        let k: Vec<f64> = (0..4 * n)
            .map(|i| ((i * 5 % 7) as f64 - 3.0) * 0.2)
            .collect();
        let (gp, gq) = ([0.1, 0.2, 0.3], [0.4, -0.1, 0.0]);
        let mut lk = vec![0.0; 4 * n];
        let (mut lp, mut lq) = (vec![0.0; n], vec![0.0; n]);
        stiffness_adjoint(tab, &k, (&gp, &gq), 1.5, &mut lk, (&mut lp, &mut lq));
        let sf = |k: &[f64], gp: &[f64], gq: &[f64]| {
            1.5 * stiffness_estimate(tab, k, (gp, gq)).expect("pair")
        };
        for i in 0..4 * n {
            let (mut kp, mut km) = (k.clone(), k.clone());
            kp[i] += eps;
            km[i] -= eps;
            let fd = (sf(&kp, &gp, &gq) - sf(&km, &gp, &gq)) / (2.0 * eps);
            assert!((fd - lk[i]).abs() <= 1e-6 * fd.abs().max(1.0), "k{i}");
        }
        for m in 0..n {
            let (mut a, mut b) = (gp, gp);
            a[m] += eps;
            b[m] -= eps;
            let fd = (sf(&k, &a, &gq) - sf(&k, &b, &gq)) / (2.0 * eps);
            assert!((fd - lp[m]).abs() <= 1e-6 * fd.abs().max(1.0), "gp {m}");
            let (mut a, mut b) = (gq, gq);
            a[m] += eps;
            b[m] -= eps;
            let fd = (sf(&k, &gp, &a) - sf(&k, &gp, &b)) / (2.0 * eps);
            assert!((fd - lq[m]).abs() <= 1e-6 * fd.abs().max(1.0), "gq {m}");
        }
    }
}
