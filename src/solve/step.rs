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
    copy_state(&mut k[..n], f0);
    let (p0, p1) = tab.stiffness_pair.unwrap_or((usize::MAX, usize::MAX));
    if p0 == 0 {
        copy_state(&mut pair[..n], u);
    }
    let mut nfe = 0;
    for (i, row) in tab.a.iter().enumerate().skip(1) {
        combine(u, h, row, k, n, g);
        f.eval(t + tab.c[i] * h, g, &mut k[i * n..(i + 1) * n]);
        nfe += 1;
        if i == p0 {
            copy_state(&mut pair[..n], g);
        } else if i == p1 {
            copy_state(&mut pair[n..], g);
        }
    }
    if tab.fsal && tab.stages() > 1 {
        // The last stage's argument is `u + h Σ a_(s−1)j k_j` with `a_(s−1) = b` and
        // `b_(s−1) = 0` (tested in `tableau.rs`): `u_{n+1}` itself, the same operations in
        // the same order, so copying it is bit-identical to combining again.
        copy_state(u1, g);
    } else {
        combine(u, h, tab.b, k, n, u1);
    }

    let error = tab.btilde.map(|bt| {
        if n == 0 {
            return 0.0;
        }
        let mut sum = 0.0;
        with_error_terms(bt, k, n, |m, acc| {
            let e = h * acc;
            let scale = atol + u[m].abs().max(u1[m].abs()) * rtol;
            if e != 0.0 {
                sum += (e / scale).powi(2);
            }
        });
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

/// `dst.copy_from_slice(src)` that inlines for 1–4 states: the general form calls libc's
/// `memmove`, and a step copies states six times (5 % of a Lorenz solve in the call alone).
#[inline(always)]
pub(crate) fn copy_state(dst: &mut [f64], src: &[f64]) {
    match src.len() {
        1 => dst[..1].copy_from_slice(&src[..1]),
        2 => dst[..2].copy_from_slice(&src[..2]),
        3 => dst[..3].copy_from_slice(&src[..3]),
        4 => dst[..4].copy_from_slice(&src[..4]),
        _ => dst.copy_from_slice(src),
    }
}

/// The largest state whose step keeps one accumulator per component in registers.
const SMALL: usize = 4;

/// `out = u + h Σ_j w_j k_j` over the first `w.len()` stages, zero weights skipped.
///
/// Each component adds its terms in stage order, one rounding each (`h·w_j` rounds the same
/// for every component), so every form below gives the same bits as accumulating stage by
/// stage in `out`. Small states keep all components' sums in registers and run the stages
/// outermost, so the components' dependency chains overlap (one serial chain of adds per
/// component, component after component, cost Lorenz's step half its time); larger states
/// keep the sum of one component in a register at a time.
// Inlined into the stage loop: 3 % of a Lorenz solve was the call and the dispatch on `n`.
#[inline(always)]
fn combine(u: &[f64], h: f64, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    match n {
        1 => combine_small::<1>(u, h, w, k, out),
        2 => combine_small::<2>(u, h, w, k, out),
        3 => combine_small::<3>(u, h, w, k, out),
        SMALL => combine_small::<SMALL>(u, h, w, k, out),
        _ => {
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
    }
}

fn combine_small<const N: usize>(u: &[f64], h: f64, w: &[f64], k: &[f64], out: &mut [f64]) {
    let mut acc = [0.0; N];
    acc.copy_from_slice(&u[..N]);
    for (wj, kj) in w.iter().zip(k.chunks_exact(N)) {
        if *wj != 0.0 {
            let hw = h * wj;
            for (a, x) in acc.iter_mut().zip(kj) {
                *a += hw * x;
            }
        }
    }
    out[..N].copy_from_slice(&acc);
}

/// Calls `each(m, Σ_j bt_j k_j,m)` for every component `m` in order, each sum from −0.0 in
/// stage order (as `Iterator::sum` adds: the same bits in every form), zero weights included.
fn with_error_terms(bt: &[f64], k: &[f64], n: usize, each: impl FnMut(usize, f64)) {
    match n {
        1 => error_terms_small::<1>(bt, k, each),
        2 => error_terms_small::<2>(bt, k, each),
        3 => error_terms_small::<3>(bt, k, each),
        SMALL => error_terms_small::<SMALL>(bt, k, each),
        _ => {
            let mut each = each;
            for m in 0..n {
                let mut acc = -0.0;
                for (j, b) in bt.iter().enumerate() {
                    acc += b * k[j * n + m];
                }
                each(m, acc);
            }
        }
    }
}

fn error_terms_small<const N: usize>(bt: &[f64], k: &[f64], mut each: impl FnMut(usize, f64)) {
    let mut acc = [-0.0; N];
    for (b, kj) in bt.iter().zip(k.chunks_exact(N)) {
        for (a, x) in acc.iter_mut().zip(kj) {
            *a += b * x;
        }
    }
    for (m, a) in acc.into_iter().enumerate() {
        each(m, a);
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

    /// Every form (registers for 1–4 states, one component at a time above) gives the bits
    /// of accumulating stage by stage: no sum is reordered, zero weights skipped alike.
    #[test]
    fn combine_forms_agree_bit_for_bit() {
        let stages = 19;
        for n in 1..=SMALL + 2 {
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
                assert_eq!(bits(&a), bits(&b), "{n} states, {len} weights");
            }
        }
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The error terms: each component's `Σ_j bt_j k_j` from −0.0 in stage order, as
    /// `Iterator::sum` adds them, for the register and the general form.
    #[test]
    fn error_terms_agree_with_iterator_sum() {
        let stages = 7;
        let bt = [0.25, -0.0, 1e-3, 0.0, -0.5, 3.0, -1.0 / 3.0];
        for n in 1..=SMALL + 2 {
            let k: Vec<f64> = (0..stages * n)
                .map(|i| ((i * 104_729) % 997) as f64 / 41.0 - 11.0)
                .collect();
            let mut got = Vec::new();
            with_error_terms(&bt, &k, n, |m, acc| got.push((m, acc)));
            let want: Vec<(usize, f64)> = (0..n)
                .map(|m| {
                    (
                        m,
                        bt.iter().enumerate().map(|(j, b)| b * k[j * n + m]).sum(),
                    )
                })
                .collect();
            assert_eq!(got.len(), n);
            for ((gm, g), (wm, w)) in got.iter().zip(&want) {
                assert_eq!((gm, g.to_bits()), (wm, w.to_bits()), "{n} states");
            }
        }
    }
}
