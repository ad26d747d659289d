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
use crate::jit::{self, load_scalar};

/// Scratch buffers of one solve.
pub(crate) struct Work {
    /// Stage derivatives, stage-major: `k[i*n..(i+1)*n]`.
    pub k: Vec<f64>,
    /// The stage argument being built.
    g: Vec<f64>,
    /// The arguments of the stiffness pair's two stages.
    pair: Vec<f64>,
    pub u1: Vec<f64>,
    /// The error sums `Σ_j btilde_j k_j` of [`Work::finish`], per component.
    err: Vec<f64>,
}

impl Work {
    pub fn new(tab: &Tableau, n: usize) -> Work {
        Work {
            k: vec![0.0; tab.stages() * n],
            g: vec![0.0; n],
            pair: vec![0.0; 2 * n],
            u1: vec![0.0; n],
            err: vec![0.0; n],
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
    tol: (f64, f64),
    w: &mut Work,
) -> StepResult {
    let at = Attempt { t, u, h, f0, tol };
    if !on_arrays(tab, u.len()) {
        return rk_step_any(tab, f, at, w);
    }
    match u.len() {
        1 => rk_step_small::<1, F>(tab, f, at, w),
        2 => rk_step_small::<2, F>(tab, f, at, w),
        3 => rk_step_small::<3, F>(tab, f, at, w),
        _ => rk_step_small::<SMALL, F>(tab, f, at, w),
    }
}

/// Whether a step of `tab` on `n` states runs on fixed arrays ([`rk_step_small`]): a
/// property of the state size and the stage count alone, so every tableau, registered or
/// not, takes it when it fits.
pub(crate) fn on_arrays(tab: &Tableau, n: usize) -> bool {
    (1..=SMALL).contains(&n) && (1..=MAX_STAGES).contains(&tab.stages())
}

/// One attempt's inputs: a step of `h` from `(t, u)` with `f0 = f(t, u)`, tolerances
/// `(rtol, atol)`.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    t: f64,
    u: &'a [f64],
    h: f64,
    f0: &'a [f64],
    tol: (f64, f64),
}

/// The largest state whose step runs on fixed arrays.
const SMALL: usize = 4;
/// The most stages a step on arrays takes (every tableau of `tableau::METHODS`; tested).
const MAX_STAGES: usize = 7;

/// [`rk_step`] for a state of `N ≤ SMALL`, specialised by the stage count: with `S` a
/// constant the stage code below is spelled out for exactly `S` stages and its sums have
/// constant lengths, so they unroll, whichever tableau it is (the coefficients are read from
/// it). The arithmetic is [`rk_step_any`]'s, operation for operation (tested bit for bit).
fn rk_step_small<const N: usize, F: VectorField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    at: Attempt,
    w: &mut Work,
) -> StepResult {
    match tab.stages() {
        1 => small_stages::<N, 1, F>(tab, f, at, w),
        2 => small_stages::<N, 2, F>(tab, f, at, w),
        3 => small_stages::<N, 3, F>(tab, f, at, w),
        4 => small_stages::<N, 4, F>(tab, f, at, w),
        5 => small_stages::<N, 5, F>(tab, f, at, w),
        6 => small_stages::<N, 6, F>(tab, f, at, w),
        // `on_arrays`: at most MAX_STAGES.
        _ => small_stages::<N, MAX_STAGES, F>(tab, f, at, w),
    }
}

/// The step on arrays of `N`: each stage argument `g_i = u + Σ_j (h a_ij) k_j` summed in
/// registers in stage order, zero weights skipped (as [`combine`]); the stages are read
/// back one value at a time (`jit::load_scalar`), as the kernel wrote them.
#[inline(always)]
fn small_stages<const N: usize, const S: usize, F: VectorField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    at: Attempt,
    w: &mut Work,
) -> StepResult {
    let Attempt { t, u, h, f0, tol } = at;
    let u: [f64; N] = std::array::from_fn(|m| load_scalar(&u[m]));
    let k = &mut w.k.as_chunks_mut::<N>().0[..S];
    k[0] = std::array::from_fn(|m| load_scalar(&f0[m]));
    let (p0, p1) = tab.stiffness_pair.unwrap_or((usize::MAX, usize::MAX));
    let mut pair = [u; 2];
    let mut g = u;
    // Stage `i` of the `S`, spelled out: the stage count and the sums' lengths are then
    // constants, so the compiler unrolls them (it left the loop form rolled).
    macro_rules! stages {
        ($($i:literal)*) => {$(
            if $i < S {
                g = weighted_sum::<N, $i>(u, h, tab.a[$i], k);
                eval_stage(f, t + tab.c[$i] * h, &g, &mut k[$i]);
                if $i == p0 {
                    pair[0] = g;
                } else if $i == p1 {
                    pair[1] = g;
                }
            }
        )*};
    }
    stages!(1 2 3 4 5 6);
    // FSAL: the last stage's argument is `u_{n+1}` (see `rk_step_any`).
    let u1 = if tab.fsal && S > 1 {
        g
    } else {
        weighted_sum::<N, S>(u, h, tab.b, k)
    };
    w.u1[..N].copy_from_slice(&u1);

    let error = tab.btilde.map(|bt| {
        let mut acc = [-0.0; N];
        for (b, kj) in bt.iter().zip(&*k) {
            for (a, x) in acc.iter_mut().zip(kj) {
                *a += b * load_scalar(x);
            }
        }
        error_norm(h, &u, &u1, tol, &mut acc)
    });
    let stiffness = tab.stiffness_pair.map(|(i, j)| {
        quotient(
            N,
            |m| load_scalar(&k[i][m]) - load_scalar(&k[j][m]),
            |m| pair[0][m] - pair[1][m],
        )
    });

    StepResult {
        error,
        stiffness,
        nfe: S as u32 - 1,
    }
}

/// `u + Σ_j (h w_j) k_j` over the first `M` weights and stages (fewer if there are fewer),
/// zero weights skipped, each component in stage order: [`combine`]'s operations.
#[inline(always)]
fn weighted_sum<const N: usize, const M: usize>(
    u: [f64; N],
    h: f64,
    w: &[f64],
    k: &[[f64; N]],
) -> [f64; N] {
    let mut acc = u;
    for (wj, kj) in w.iter().zip(k).take(M) {
        if *wj != 0.0 {
            let hw = h * wj;
            for (a, x) in acc.iter_mut().zip(kj) {
                *a += hw * load_scalar(x);
            }
        }
    }
    acc
}

/// `f.eval`, kept out of line (as the JIT call was before): the stage code is spelled out six
/// times per state size and tableau.
#[inline(never)]
fn eval_stage<F: VectorField + ?Sized>(f: &mut F, t: f64, u: &[f64], du: &mut [f64]) {
    f.eval(t, u, du);
}

/// [`rk_step`] for any state length: the stages one after another, each argument formed
/// ([`Work::stage_argument`]) and evaluated, then [`Work::finish`]. The batched driver
/// (`batched.rs`) runs the same two pieces with the evaluations of many rows in one call.
fn rk_step_any<F: VectorField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    at: Attempt,
    w: &mut Work,
) -> StepResult {
    let Attempt { t, u, h, f0, tol } = at;
    let n = u.len();
    w.start(tab, u, f0);
    let mut g = std::mem::take(&mut w.g);
    for i in 1..tab.stages() {
        w.stage_argument(tab, i, u, h, &mut g);
        f.eval(t + tab.c[i] * h, &g, &mut w.k[i * n..(i + 1) * n]);
    }
    let r = w.finish(tab, u, h, tol, &g);
    w.g = g;
    r
}

impl Work {
    /// A step's first stage `k_0 = f0` (and `u` as the stiffness pair's argument when the pair
    /// starts at stage 0).
    pub(crate) fn start(&mut self, tab: &Tableau, u: &[f64], f0: &[f64]) {
        let n = u.len();
        self.k[..n].copy_from_slice(f0);
        if tab.stiffness_pair.is_some_and(|(p0, _)| p0 == 0) {
            self.pair[..n].copy_from_slice(u);
        }
    }

    /// Stage `i`'s argument `g = u + h Σ_{j<i} a_ij k_j` (stages before `i` in `self.k`), kept
    /// as the stiffness pair's when stage `i` is one of it.
    pub(crate) fn stage_argument(
        &mut self,
        tab: &Tableau,
        i: usize,
        u: &[f64],
        h: f64,
        g: &mut [f64],
    ) {
        let n = u.len();
        combine(u, h, tab.a[i], &self.k, n, g);
        let (p0, p1) = tab.stiffness_pair.unwrap_or((usize::MAX, usize::MAX));
        if i == p0 {
            self.pair[..n].copy_from_slice(g);
        } else if i == p1 {
            self.pair[n..].copy_from_slice(g);
        }
    }

    /// Stage `i`'s derivative `k_i`, evaluated elsewhere (a batched call).
    pub(crate) fn set_stage(&mut self, i: usize, k_i: &[f64]) {
        let n = k_i.len();
        self.k[i * n..(i + 1) * n].copy_from_slice(k_i);
    }

    /// The step's end once every stage is in `self.k`: `u_{n+1}` into `self.u1` (`g_last`, the
    /// last stage's argument, for FSAL tableaux), `E` and `S`.
    pub(crate) fn finish(
        &mut self,
        tab: &Tableau,
        u: &[f64],
        h: f64,
        tol: (f64, f64),
        g_last: &[f64],
    ) -> StepResult {
        let n = u.len();
        let Work {
            k, pair, u1, err, ..
        } = self;
        if tab.fsal && tab.stages() > 1 {
            // The last stage's argument is `u + h Σ a_(s−1)j k_j` with `a_(s−1) = b` and
            // `b_(s−1) = 0` (tested in `tableau.rs`): `u_{n+1}` itself, the same operations in
            // the same order, so copying it is bit-identical to combining again.
            u1.copy_from_slice(g_last);
        } else {
            combine(u, h, tab.b, k, n, u1);
        }

        let error = tab.btilde.map(|bt| {
            if n == 0 {
                return 0.0;
            }
            // Σ_j bt_j k_j from −0.0 in stage order, as `Iterator::sum` adds: all components
            // at once (vectorised across them), then the norm in component order.
            err.resize(n, 0.0);
            weighted_terms(-0.0, bt, k, n, err);
            error_norm(h, u, u1, tol, err)
        });
        let stiffness = tab.stiffness_pair.map(|(i, j)| {
            quotient(
                n,
                |m| k[i * n + m] - k[j * n + m],
                |m| pair[m] - pair[n + m],
            )
        });

        StepResult {
            error,
            stiffness,
            nfe: tab.stages().saturating_sub(1) as u32,
        }
    }
}

/// `E = RMS_m(h·ũ_m / (atol + max(|u_m|, |u1_m|)·rtol))` with the error sums `ũ_m = acc[m]`
/// (overwritten), components in order, exact zeros left out of the sum (they add nothing but
/// could be `0/0`). The scaled squares are independent per component, so they are formed in
/// one vectorisable pass; only the sum runs in order (a zero left out and a `+0` added give the
/// same bits: the sum is never `−0`).
#[inline(always)]
fn error_norm(h: f64, u: &[f64], u1: &[f64], (rtol, atol): (f64, f64), acc: &mut [f64]) -> f64 {
    for ((q, u), u1) in acc.iter_mut().zip(u).zip(u1) {
        let e = h * *q;
        let scale = atol + u.abs().max(u1.abs()) * rtol;
        *q = if e != 0.0 { (e / scale).powi(2) } else { 0.0 };
    }
    let sum = acc.iter().take(u.len()).fold(0.0, |s, q| s + q);
    (sum / u.len() as f64).sqrt()
}

/// `S = ‖dk‖₂ / ‖dg‖₂` over `n` components; 0 when `dg` is zero.
#[inline(always)]
pub(crate) fn quotient(n: usize, dk: impl Fn(usize) -> f64, dg: impl Fn(usize) -> f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for m in 0..n {
        num += dk(m).powi(2);
        den += dg(m).powi(2);
    }
    if den > 0.0 { (num / den).sqrt() } else { 0.0 }
}

/// `dst.copy_from_slice(src)` for a state: value by value for 1–4 states, where the general
/// form calls libc's `memmove` (5 % of a Lorenz solve in the call alone) and a vectorised
/// copy would stall on a kernel output just written (see `jit::load_scalar`).
#[inline(always)]
pub(crate) fn copy_state(dst: &mut [f64], src: &[f64]) {
    match src.len() {
        1 => copy_small::<1>(dst, src),
        2 => copy_small::<2>(dst, src),
        3 => copy_small::<3>(dst, src),
        SMALL => copy_small::<SMALL>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// `dst.extend_from_slice(src)` for a state: inline moves for 1–4 states instead of a
/// `memcpy` call for every saved state.
#[inline(always)]
pub(crate) fn extend_state(dst: &mut Vec<f64>, src: &[f64]) {
    match src.len() {
        1 => dst.extend_from_slice(&src[..1]),
        2 => dst.extend_from_slice(&src[..2]),
        3 => dst.extend_from_slice(&src[..3]),
        SMALL => dst.extend_from_slice(&src[..SMALL]),
        _ => dst.extend_from_slice(src),
    }
}

#[inline(always)]
fn copy_small<const N: usize>(dst: &mut [f64], src: &[f64]) {
    for (d, x) in dst[..N].iter_mut().zip(&src[..N]) {
        *d = load_scalar(x);
    }
}

/// `out = u + h Σ_j w_j k_j` over the first `w.len()` stages, zero weights skipped, each
/// component adding its terms in stage order (`h·w_j` rounds the same for every component, so
/// this is the bits of accumulating stage by stage in `out`). Vectorised across components
/// with the widest unit the CPU has (`jit::stage_combination`; one component at a time, the
/// stride-`n` reads of `k` kept it scalar: 10 % of a batched digits forward).
pub(crate) fn combine(u: &[f64], h: f64, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    jit::stage_combination(jit::Combination::Stages { u, h }, w, k, n, out);
}

/// `out_m = start + Σ_j w_j k_j[m]`, every term added in stage order (zero weights too).
fn weighted_terms(start: f64, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    jit::stage_combination(jit::Combination::Terms { start }, w, k, n, out);
}

#[cfg(test)]
mod tests {
    use super::super::field::from_fn;
    use super::super::tableau::{BS3, Interpolant, METHODS, TSIT5};
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

    /// One component at a time gives the bits of accumulating stage by stage: no sum is
    /// reordered, zero weights skipped alike.
    #[test]
    fn combine_agrees_with_stage_by_stage_bit_for_bit() {
        let stages = 19;
        // Up to and past whole blocks of `LANES` components, with remainders.
        for n in (1..=SMALL + 2).chain([8, 9, 19, 33]) {
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

    /// The error sums in blocks are each component's sum from −0 in stage order, as
    /// `Iterator::sum` adds them one component at a time.
    #[test]
    fn weighted_terms_agree_with_one_component_at_a_time_bit_for_bit() {
        let stages = 7;
        for n in [1, 3, 8, 9, 21, 100] {
            let k: Vec<f64> = (0..stages * n)
                .map(|i| ((i * 7919) % 1000) as f64 / 37.0 - 13.0)
                .collect();
            let w: Vec<f64> = (0..stages).map(|j| 0.1 * j as f64 - 0.37).collect();
            let mut got = vec![0.0; n];
            weighted_terms(-0.0, &w, &k, n, &mut got);
            let want: Vec<f64> = (0..n)
                .map(|m| w.iter().enumerate().map(|(j, b)| b * k[j * n + m]).sum())
                .collect();
            assert_eq!(bits(&got), bits(&want), "{n} states");
        }
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The step on arrays (1–4 states, every registered tableau and a renamed copy of Tsit5)
    /// gives the general step's bits: `u_{n+1}`, every stage, `E`, `S` and the evaluation
    /// count, on a nonlinear field whose components all differ, for steps of either sign.
    #[test]
    fn small_steps_match_the_general_step_bit_for_bit() {
        let renamed = Tableau {
            name: "tsit5 as data",
            ..TSIT5
        };
        for tab in METHODS.iter().copied().chain([&renamed]) {
            assert_array_step_is_the_general_step(tab);
        }
    }

    /// Kutta's third-order method with the midpoint rule as its embedded pair: three stages,
    /// a count no registered tableau has, and in no registry row.
    const KUTTA3: Tableau = Tableau {
        name: "kutta3 (test only)",
        c: &[0.0, 0.5, 1.0],
        a: &[&[], &[0.5], &[-1.0, 2.0]],
        b: &[1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0],
        btilde: Some(&[1.0 / 6.0, -1.0 / 3.0, 1.0 / 6.0]),
        order: 3,
        embedded_order: Some(2),
        fsal: false,
        stiffness_pair: Some((1, 2)),
        stability_size: 2.5127,
        interpolant: Interpolant::Hermite,
    };

    /// The array path keys on properties (state size, stage count; FSAL inside), never on a
    /// name: a tableau outside the registry takes it, and so does an impostor with Tsit5's
    /// name on Bogacki–Shampine's coefficients (FSAL, four stages); each gives its own general
    /// step's bits, so nothing on the path mistakes one method for another.
    #[test]
    fn the_array_path_keys_on_properties_not_names() {
        let impostor = Tableau {
            name: TSIT5.name,
            ..BS3
        };
        for tab in [&KUTTA3, &impostor] {
            assert!((1..=SMALL).all(|n| on_arrays(tab, n)), "{}", tab.stages());
            assert_array_step_is_the_general_step(tab);
        }
        assert!(!on_arrays(&KUTTA3, SMALL + 1));
    }

    fn assert_array_step_is_the_general_step(tab: &Tableau) {
        let field = |t: f64, u: &[f64], du: &mut [f64]| {
            let n = u.len();
            for (m, d) in du.iter_mut().enumerate() {
                let next = u[(m + 1) % n];
                *d = (next * 1.3).sin() * (1.0 + t) - 0.4 * u[m] * u[m] + m as f64 * 0.25;
            }
        };
        // More would send every state size to `rk_step_any`, and this test past the arrays.
        assert!(tab.stages() <= MAX_STAGES, "{}", tab.name);
        for n in 1..=SMALL {
            let u: Vec<f64> = (0..n).map(|m| 0.7 - 0.45 * m as f64).collect();
            let mut f0 = vec![0.0; n];
            field(0.3, &u, &mut f0);
            for h in [0.11, -0.02, 1e-5] {
                let mut f = from_fn(n, field);
                let (mut small, mut any) = (Work::new(tab, n), Work::new(tab, n));
                let a = rk_step(tab, &mut f, 0.3, &u, h, &f0, (1e-6, 1e-9), &mut small);
                let at = Attempt {
                    t: 0.3,
                    u: &u,
                    h,
                    f0: &f0,
                    tol: (1e-6, 1e-9),
                };
                let b = rk_step_any(tab, &mut f, at, &mut any);
                let what = format!("{} with {n} states, h = {h}", tab.name);
                assert_eq!(bits(&small.u1), bits(&any.u1), "u1: {what}");
                assert_eq!(bits(&small.k), bits(&any.k), "stages: {what}");
                assert_eq!(
                    a.error.map(f64::to_bits),
                    b.error.map(f64::to_bits),
                    "E: {what}"
                );
                assert_eq!(
                    a.stiffness.map(f64::to_bits),
                    b.stiffness.map(f64::to_bits),
                    "S: {what}"
                );
                assert_eq!((a.nfe, b.nfe), (tab.stages() as u32 - 1, a.nfe), "{what}");
                assert!(
                    a.error.is_none_or(|e| e > 0.0),
                    "a zero E tests nothing: {what}"
                );
            }
        }
    }
}
