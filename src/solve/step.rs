//! One explicit Runge–Kutta step of any tableau, with the two heuristics the regularizers read.
//!
//! - Error estimate (DESIGN.md, "Regularizers"): `E = RMS_i(ũ_i / (atol + max(|u_n,i|,
//!   |u_n+1,i|)·rtol))` with `ũ = h Σ btilde_i k_i`.
//! - Stiffness estimate: `S = ‖k_i − k_j‖₂ / ‖g_i − g_j‖₂` over the tableau's stage pair, where
//!   `g` are the stage arguments and `k = f(t + c h, g)` (Hairer–Wanner II, p. 22); 0 when the
//!   two arguments coincide.
//!
//! Invariant: the first stage `k_0 = f(t_n, u_n)` is handed in (FSAL or evaluated by the
//! caller), so a step costs `stages − 1` evaluations; all buffers live in [`Work`], so the hot
//! path does not allocate.

use super::field::VectorField;
use super::tableau::Tableau;

/// Scratch buffers of one solve.
pub(crate) struct Work {
    /// Stage derivatives, stage-major: `k[i*n..(i+1)*n]`.
    pub k: Vec<f64>,
    /// The stage argument being built.
    g: Vec<f64>,
    /// The arguments of the stiffness pair's two stages.
    pair: Vec<f64>,
    pub u1: Vec<f64>,
}

impl Work {
    pub fn new(tab: &Tableau, n: usize) -> Work {
        Work {
            k: vec![0.0; tab.stages() * n],
            g: vec![0.0; n],
            pair: vec![0.0; 2 * n],
            u1: vec![0.0; n],
        }
    }
}

pub(crate) struct StepResult {
    pub error: Option<f64>,
    pub stiffness: Option<f64>,
    /// Evaluations of the field in this attempt.
    pub nfe: u32,
}

/// Takes one step of size `h` from `(t, u)`; `f0 = f(t, u)`. Leaves `u_{n+1}` in `w.u1` and
/// the stages in `w.k`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rk_step<F: VectorField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    (rtol, atol): (f64, f64),
    w: &mut Work,
) -> StepResult {
    let n = u.len();
    let Work { k, g, pair, u1 } = w;
    k[..n].copy_from_slice(f0);
    let (p0, p1) = tab.stiffness_pair.unwrap_or((usize::MAX, usize::MAX));
    if p0 == 0 {
        pair[..n].copy_from_slice(u);
    }
    let mut nfe = 0;
    for (i, row) in tab.a.iter().enumerate().skip(1) {
        combine(u, h, row, k, n, g);
        f.eval(t + tab.c[i] * h, g, &mut k[i * n..(i + 1) * n]);
        nfe += 1;
        if i == p0 {
            pair[..n].copy_from_slice(g);
        } else if i == p1 {
            pair[n..].copy_from_slice(g);
        }
    }
    if tab.fsal && tab.stages() > 1 {
        // The last stage's argument is `u + h Σ a_(s−1)j k_j` with `a_(s−1) = b` and
        // `b_(s−1) = 0` (tested in `tableau.rs`): `u_{n+1}` itself, the same operations in
        // the same order, so copying it is bit-identical to combining again.
        u1.copy_from_slice(g);
    } else {
        combine(u, h, tab.b, k, n, u1);
    }

    let error = tab.btilde.map(|bt| {
        if n == 0 {
            return 0.0;
        }
        let mut sum = 0.0;
        for m in 0..n {
            // Summed from −0.0 in stage order, as `Iterator::sum` does: the same bits.
            let mut acc = -0.0;
            for (j, b) in bt.iter().enumerate() {
                acc += b * k[j * n + m];
            }
            let e = h * acc;
            let scale = atol + u[m].abs().max(u1[m].abs()) * rtol;
            if e != 0.0 {
                sum += (e / scale).powi(2);
            }
        }
        (sum / n as f64).sqrt()
    });

    let stiffness = tab.stiffness_pair.map(|(i, j)| {
        let (mut num, mut den) = (0.0, 0.0);
        for m in 0..n {
            num += (k[i * n + m] - k[j * n + m]).powi(2);
            den += (pair[m] - pair[n + m]).powi(2);
        }
        if den > 0.0 { (num / den).sqrt() } else { 0.0 }
    });

    StepResult {
        error,
        stiffness,
        nfe,
    }
}

/// `out = u + h Σ_j w_j k_j` over the first `w.len()` stages, zero weights skipped.
///
/// Component by component with the sum in a register: each component still adds its terms
/// in stage order, one rounding each (`h·w_j` rounds the same for every component), so the
/// result equals accumulating stage by stage in `out` bit for bit, without a store and reload
/// per term (the hot loop of small states).
fn combine(u: &[f64], h: f64, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    for (m, (o, ui)) in out.iter_mut().zip(u).enumerate() {
        let mut acc = *ui;
        for (j, wj) in w.iter().enumerate() {
            if *wj != 0.0 {
                acc += h * wj * k[j * n + m];
            }
        }
        *o = acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accumulation stage by stage in `out` that `combine` replaces.
    fn combine_by_stage(u: &[f64], h: f64, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
        out.copy_from_slice(u);
        for (j, wj) in w.iter().enumerate() {
            if *wj != 0.0 {
                let hw = h * wj;
                for (o, kj) in out.iter_mut().zip(&k[j * n..(j + 1) * n]) {
                    *o += hw * kj;
                }
            }
        }
    }

    /// Both forms give the same bits (the register form must not reorder sums), zero
    /// weights included.
    #[test]
    fn combine_forms_agree_bit_for_bit() {
        let n = 5;
        let stages = 19;
        let k: Vec<f64> = (0..stages * n)
            .map(|i| ((i * 7919) % 1000) as f64 / 37.0 - 13.0)
            .collect();
        let u: Vec<f64> = (0..n).map(|i| 1.0 / (i as f64 + 3.0)).collect();
        for len in [0, 1, 4, 7, 16, stages] {
            let w: Vec<f64> = (0..len)
                .map(|j| {
                    if j % 3 == 2 {
                        0.0
                    } else {
                        0.1 * j as f64 - 0.37
                    }
                })
                .collect();
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            combine(&u, 0.013, &w, &k, n, &mut a);
            combine_by_stage(&u, 0.013, &w, &k, n, &mut b);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{len} weights");
        }
    }
}
