//! The discrete adjoint of an explicit Runge–Kutta solve: the exact gradient of the computation
//! the solver did, with its accepted step sizes held constant.
//!
//! One step from `u_n` with stage arguments `g_i = u_n + h Σ_{j<i} a_ij k_j`, stages
//! `k_i = f(t_n + c_i h, g_i, p)` and `u_{n+1} = u_n + h Σ b_i k_i` is reversed as follows,
//! given `λ = dL/du_{n+1}`: every contribution that reads `u_{n+1}` or a stage (saved states,
//! interpolated saves, the regularizers' `∂E/∂·`, `∂S/∂·`) is added first; then
//! `λ_k_i += h b_i λ`, `λ_u = λ`, and for `i = s−1 … 0`:
//! `(w_u, w_p) = VJP(t_n + c_i h, g_i; λ_k_i)`, `dp += w_p`, `λ_g_i = w_u (+ ∂S/∂g_i)`,
//! `λ_u += λ_g_i`, `λ_k_j += h a_ij λ_g_i (j < i)`. `λ_u` is then `dL/du_n`.
//!
//! FSAL: the first stage of step `n+1` *is* the last stage of step `n` (same argument, bit for
//! bit), so its cotangent is handed to step `n`'s last stage instead of spending a VJP.
//!
//! Memory: the stages come from the solution (`keep_stages`); steps without them are
//! recomputed segment by segment from the last kept state (`checkpoint_every`) with the
//! solver's own stepper, so the gradients are bit-identical to those from stored stages.
//!
//! Invariant: the sweep reads only recorded step sizes and start times; it never re-runs the
//! controller.

use crate::solve::{Interpolant, Solution, SolveError, Tableau, Work, rk_step};

use super::field::{VjpField, add_into as add};
use super::integral::Integrand;
use super::regularize::{error_estimate_adjoint, stiffness_adjoint};
use super::saves::{SaveAt, locate_into, step_end};

/// Tolerances of the solve (they scale `E`) and the weights of `R_E` and `R_S` in the loss.
#[derive(Clone, Copy, Debug)]
pub struct AdjointOptions {
    pub rtol: f64,
    pub atol: f64,
    /// Weight of `R_E = Σ_j E_j |h_j|` (0: no error regularizer).
    pub error_weight: f64,
    /// Weight of `R_S = Σ_j S_j |h_j|` (0: no stiffness regularizer).
    pub stiffness_weight: f64,
}

impl AdjointOptions {
    /// No regularizers, for a solve with these tolerances.
    pub fn new(rtol: f64, atol: f64) -> AdjointOptions {
        AdjointOptions {
            rtol,
            atol,
            error_weight: 0.0,
            stiffness_weight: 0.0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gradients {
    /// `dL/du0`: hand it on to whatever computed the initial state (an encoder).
    pub du0: Vec<f64>,
    /// `dL/dp`.
    pub dp: Vec<f64>,
}

/// The gradient of `L = Σ_i ⟨dl_du_i, u(ts_i)⟩ + w_E R_E + w_S R_S` (linearised at the
/// solution: `dl_du` holds `dL/du` at every saved state, row-major like `sol.us`) with respect
/// to the initial state and the parameters of `f`.
///
/// `sol` must come from an explicit solve with `tab` and `keep_stages` (optionally with
/// `checkpoint_every`), or from [`replay`](super::replay).
pub fn adjoint<F: VjpField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    sol: &Solution,
    dl_du: &[f64],
    opts: &AdjointOptions,
) -> Result<Gradients, SolveError> {
    adjoint_with(tab, f, sol, dl_du, opts, None)
}

/// [`adjoint`] of the loss plus `∫ r dt` computed by [`integral`](super::integral): each stage
/// argument `g_i` of each step also receives `h b_i ∇r(t_i, g_i)` (the augmented system's
/// quadrature state has the constant cotangent 1; weights live in `r`).
pub fn adjoint_with<F: VjpField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    sol: &Solution,
    dl_du: &[f64],
    opts: &AdjointOptions,
    integrand: Option<&mut dyn Integrand>,
) -> Result<Gradients, SolveError> {
    let mut work = AdjointWork::default();
    adjoint_in(tab, f, sol, dl_du, opts, integrand, &mut work)?;
    Ok(work.grads)
}

/// The buffers of one sweep, kept by a caller that differentiates many solves (the trainer:
/// every window of every iteration), so that a sweep allocates nothing once they have grown.
/// Reuse changes no result: every buffer is cleared or overwritten before it is read.
#[derive(Default)]
pub struct AdjointWork {
    b: Buffers,
    steps: Vec<(f64, f64)>,
    locs: Vec<SaveAt>,
    cache: Segment,
    grads: Gradients,
}

impl AdjointWork {
    /// The gradients of the last [`adjoint_in`].
    pub fn grads(&self) -> &Gradients {
        &self.grads
    }
}

/// [`adjoint_with`] with the caller's buffers; the gradients are left in
/// [`AdjointWork::grads`].
pub fn adjoint_in<F: VjpField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    sol: &Solution,
    dl_du: &[f64],
    opts: &AdjointOptions,
    mut integrand: Option<&mut dyn Integrand>,
    work: &mut AdjointWork,
) -> Result<(), SolveError> {
    validate(tab, f.dim(), sol, dl_du)?;
    let (n, s) = (sol.dim, tab.stages());
    let AdjointWork {
        b,
        steps,
        locs,
        cache,
        grads,
    } = work;
    steps.clear();
    steps.extend(sol.steps.iter().map(|s| (s.t, s.h)));
    let t0 = steps
        .first()
        .map(|s| s.0)
        .or(sol.ts.first().copied())
        .unwrap_or(0.0);
    locate_into(&sol.ts, t0, steps, locs)?;
    let np = f.n_params();
    zeroed(&mut grads.du0, n);
    zeroed(&mut grads.dp, np);
    // The saves of step j are the rows `lo..hi` (`locs` is ordered by step, starts first).
    let mut hi = locs.len();
    for (row, loc) in locs.iter().enumerate() {
        if *loc == SaveAt::Start {
            add(&mut grads.du0, &dl_du[row * n..(row + 1) * n]);
        }
    }

    let tol = (opts.rtol, opts.atol);
    b.reset(s, n, np);
    // `dp` lives in `b.acc[n..]` during the sweep: a field that adds in place accumulates
    // straight into it (the same sums in the same order as adding each output afterwards).
    let adds = f.adds_in_place();
    cache.first = 0;
    cache.u0.clear();
    cache.k.clear();
    // FSAL: the cotangent of step n+1's first stage (in `b.row.carry`), owed to step n's last
    // stage.
    for j in (0..steps.len()).rev() {
        let (t, h) = steps[j];
        cache.ensure(tab, f, sol, steps, j, tol)?;
        let (u0, k) = stages_of(sol, cache, j)?;
        let r = &mut b.row;
        let f1_used = r.saves(tab, (u0, k, h), (j, locs, &mut hi), dl_du);
        if f1_used && !tab.fsal {
            // The solver evaluated f(t_{n+1}, u_{n+1}): a VJP there feeds u_{n+1}.
            f.vjp(step_end(steps, j), &r.u1, &r.f1bar, &mut b.wu, &mut b.wp);
            add(&mut r.lam, &b.wu);
            b.pending.flush(&mut b.acc[n..]);
            add(&mut b.acc[n..], &b.wp);
        }
        let pair = r.close(tab, (u0, k, h), opts);

        for i in (0..s).rev() {
            let r = &mut b.row;
            let lk = &r.lam_k[i * n..(i + 1) * n];
            if i == 0 && tab.fsal && j > 0 {
                r.carry.copy_from_slice(lk);
                r.carried = true;
                r.lam_g.fill(0.0);
            } else if lk.iter().any(|x| *x != 0.0) {
                stage_arg(tab, u0, h, k, i, &mut r.g);
                if adds {
                    f.vjp_add(t + tab.c[i] * h, (&r.g, lk), &mut b.acc);
                    r.lam_g.copy_from_slice(&b.acc[..n]);
                } else {
                    let out = b.pending.slot(&mut b.acc[n..]);
                    f.vjp_flat(t + tab.c[i] * h, (&r.g, lk), out);
                    r.lam_g.copy_from_slice(&out[..n]);
                }
            } else {
                r.lam_g.fill(0.0);
            }
            if let Some(ig) = integrand.as_deref_mut().filter(|_| tab.b[i] != 0.0) {
                stage_arg(tab, u0, h, k, i, &mut r.g);
                ig.vjp(t + tab.c[i] * h, &r.g, h * tab.b[i], &mut b.wu, &mut b.wp);
                add(&mut r.lam_g, &b.wu);
                b.pending.flush(&mut b.acc[n..]);
                add(&mut b.acc[n..], &b.wp);
            }
            r.stage_done(tab, i, h, pair);
        }
        b.row.lam_u0_to_lam();
    }
    b.pending.flush(&mut b.acc[n..]);
    grads.dp.copy_from_slice(&b.acc[n..]);
    add(&mut grads.du0, &b.row.lam);
    Ok(())
}

/// Step `j`'s kept stages `(u_j, k)`, from the solution or recomputed into `cache`.
pub(super) fn stages_of<'a>(
    sol: &'a Solution,
    cache: &'a Segment,
    j: usize,
) -> Result<(&'a [f64], &'a [f64]), SolveError> {
    match sol.steps[j].stages.as_ref() {
        Some(g) if !g.k.is_empty() => Ok((g.u0.as_slice(), g.k.as_slice())),
        _ => cache.get(j),
    }
}

/// One row's cotangents during a sweep (all `n` long but `lam_k`, `s·n`): what the
/// single-row adjoint keeps, and what the batched one keeps per row (`batched.rs`).
#[derive(Default)]
pub(super) struct RowBufs {
    /// `dL/du_{n+1}` on entry to step n's reversal, `dL/du_n` after it.
    pub lam: Vec<f64>,
    /// FSAL: the first stage's cotangent of the step reversed last, owed to this step's last
    /// stage (`carried`: it is set).
    pub carry: Vec<f64>,
    pub carried: bool,
    pub lam_k: Vec<f64>,
    pub lam_u0: Vec<f64>,
    /// The cotangent of the current stage's argument.
    pub lam_g: Vec<f64>,
    lam_gp: Vec<f64>,
    lam_gq: Vec<f64>,
    /// The cotangent of `f(t_{n+1}, u_{n+1})` from interpolated saves (Hermite).
    pub f1bar: Vec<f64>,
    /// `u_{n+1}` of the current step.
    pub u1: Vec<f64>,
    /// A stage argument.
    pub g: Vec<f64>,
    gp: Vec<f64>,
    gq: Vec<f64>,
}

impl RowBufs {
    /// Zeros of the sizes of a sweep with `s` stages and `n` states.
    pub fn reset(&mut self, s: usize, n: usize) {
        let RowBufs {
            lam,
            carry,
            carried,
            lam_k,
            lam_u0,
            lam_g,
            lam_gp,
            lam_gq,
            f1bar,
            u1,
            g,
            gp,
            gq,
        } = self;
        for v in [
            lam, carry, lam_u0, lam_g, lam_gp, lam_gq, f1bar, u1, g, gp, gq,
        ] {
            zeroed(v, n);
        }
        zeroed(lam_k, s * n);
        *carried = false;
    }

    /// The start of step `j`'s reversal (`(u_j, k, h)` its stages and size): the stages'
    /// cotangents cleared (but the FSAL carry), `u_{j+1}` formed, and the cotangents of the
    /// saved states of this step added (`locs[..*hi]` ends with them; `*hi` moves past them).
    /// Returns whether `f1bar` (the cotangent of `f(t_{j+1}, u_{j+1})`) received a part: under
    /// FSAL it has been handed to the last stage; otherwise the caller owes a VJP at `u1`.
    pub fn saves(
        &mut self,
        tab: &Tableau,
        (u0, k, h): (&[f64], &[f64], f64),
        (j, locs, hi): (usize, &[SaveAt], &mut usize),
        dl_du: &[f64],
    ) -> bool {
        let n = u0.len();
        let s = tab.stages();
        self.lam_k.fill(0.0);
        if std::mem::take(&mut self.carried) {
            add(&mut self.lam_k[(s - 1) * n..], &self.carry);
        }
        combine(u0, h, tab.b, k, n, &mut self.u1);

        // Saved states of this step: its end state, or its interpolant.
        self.lam_u0.fill(0.0);
        let mut f1_used = false;
        let mut lo = *hi;
        while lo > 0 && matches!(locs[lo - 1], SaveAt::Step { step, .. } if step == j) {
            lo -= 1;
        }
        if lo < *hi {
            self.f1bar.fill(0.0);
        }
        let lam = &mut self.lam;
        for (row, loc) in locs.iter().enumerate().take(*hi).skip(lo) {
            let SaveAt::Step { theta, .. } = *loc else {
                continue;
            };
            let d = &dl_du[row * n..(row + 1) * n];
            if theta == 1.0 {
                add(lam, d);
            } else if theta == 0.0 {
                add(&mut self.lam_u0, d);
            } else {
                match tab.interpolant {
                    Interpolant::Free(w) => {
                        add(&mut self.lam_u0, d);
                        for (i, wi) in w.iter().enumerate() {
                            let bi =
                                theta * (wi[0] + theta * (wi[1] + theta * (wi[2] + theta * wi[3])));
                            axpy(&mut self.lam_k[i * n..(i + 1) * n], h * bi, d);
                        }
                    }
                    Interpolant::Hermite => {
                        let c = theta * (theta - 1.0);
                        axpy(&mut self.lam_u0, (1.0 - theta) - c * (1.0 - 2.0 * theta), d);
                        axpy(lam, theta + c * (1.0 - 2.0 * theta), d);
                        axpy(&mut self.lam_k[..n], c * (theta - 1.0) * h, d);
                        axpy(&mut self.f1bar, c * theta * h, d);
                        f1_used = true;
                    }
                }
            }
        }
        *hi = lo;
        if f1_used && tab.fsal {
            // f(t_{n+1}, u_{n+1}) is the last stage.
            add(&mut self.lam_k[(s - 1) * n..], &self.f1bar);
        }
        f1_used
    }

    /// After [`saves`](Self::saves) (and the caller's VJP for `f1bar`): the regularizers'
    /// cotangents (E reads u_n, u_{n+1} and the stages; S the pair's stages and arguments) and
    /// `u_{n+1} = u_n + h Σ b_i k_i` reversed into the stages and `lam_u0`. Returns the
    /// stiffness pair whose arguments received cotangents (for [`stage_done`](Self::stage_done)).
    pub fn close(
        &mut self,
        tab: &Tableau,
        (u0, k, h): (&[f64], &[f64], f64),
        opts: &AdjointOptions,
    ) -> Option<(usize, usize)> {
        let n = u0.len();
        let tol = (opts.rtol, opts.atol);
        let w_e = opts.error_weight * h.abs();
        if w_e != 0.0 {
            error_estimate_adjoint(
                tab,
                h,
                (u0, &self.u1),
                k,
                tol,
                w_e,
                (&mut self.lam_u0, &mut self.lam),
                &mut self.lam_k,
            );
        }
        let w_s = opts.stiffness_weight * h.abs();
        let pair = tab.stiffness_pair.filter(|_| w_s != 0.0);
        if let Some((p, q)) = pair {
            self.lam_gp.fill(0.0);
            self.lam_gq.fill(0.0);
            stage_arg(tab, u0, h, k, p, &mut self.gp);
            stage_arg(tab, u0, h, k, q, &mut self.gq);
            stiffness_adjoint(
                tab,
                k,
                (&self.gp, &self.gq),
                w_s,
                &mut self.lam_k,
                (&mut self.lam_gp, &mut self.lam_gq),
            );
        }
        for (i, bi) in tab.b.iter().enumerate() {
            if *bi != 0.0 {
                axpy(&mut self.lam_k[i * n..(i + 1) * n], h * bi, &self.lam);
            }
        }
        add(&mut self.lam_u0, &self.lam);
        pair
    }

    /// Stage `i` reversed once `lam_g` holds its argument's cotangent from the VJP: the
    /// stiffness pair's part added, then `g_i = u_n + h Σ_{m<i} a_im k_m` reversed.
    pub fn stage_done(&mut self, tab: &Tableau, i: usize, h: f64, pair: Option<(usize, usize)>) {
        let n = self.lam_g.len();
        match pair {
            Some((p, _)) if p == i => add(&mut self.lam_g, &self.lam_gp),
            Some((_, q)) if q == i => add(&mut self.lam_g, &self.lam_gq),
            _ => {}
        }
        add(&mut self.lam_u0, &self.lam_g);
        for (m, a) in tab.a[i].iter().enumerate() {
            if *a != 0.0 {
                axpy(&mut self.lam_k[m * n..(m + 1) * n], h * a, &self.lam_g);
            }
        }
    }

    /// The end of a step's reversal: `lam = dL/du_n`.
    pub fn lam_u0_to_lam(&mut self) {
        self.lam.copy_from_slice(&self.lam_u0);
    }
}

/// The checks every sweep makes before it starts: the field's dimension and method match the
/// solution, `dl_du` has a value per saved value, and the stages were kept.
pub(super) fn validate(
    tab: &Tableau,
    dim: usize,
    sol: &Solution,
    dl_du: &[f64],
) -> Result<(), SolveError> {
    let invalid = |s: String| Err(SolveError::InvalidOption(s));
    let n = sol.dim;
    let s = tab.stages();
    if dim != n {
        return invalid(format!(
            "the field has dimension {} but the solution {n}",
            dim
        ));
    }
    if sol.method != tab.name {
        return invalid(format!(
            "the solution was computed with `{}`, not `{}`",
            sol.method, tab.name
        ));
    }
    if dl_du.len() != sol.us.len() {
        return invalid(format!(
            "the loss gradient has {} values for {} saved values",
            dl_du.len(),
            sol.us.len()
        ));
    }
    for (j, st) in sol.steps.iter().enumerate() {
        match &st.stages {
            Some(g) if g.u0.len() == n && (g.k.len() == s * n || g.k.is_empty()) => {}
            Some(_) => return invalid(format!("step {j} has stages of the wrong size")),
            None if j == 0 => {
                return invalid(
                    "the solution kept no stages; solve with `keep_stages` (an explicit method)"
                        .into(),
                );
            }
            None => {}
        }
    }
    Ok(())
}

/// VJP outputs whose `∂p` parts are not yet added into `dp`, at most [`Pending::SLOTS`].
/// Adding them in one pass keeps each sum's order (`dp_m + g1_m + g2_m + …`, one rounding per
/// term, as adding after every VJP did) with `dp` loaded and stored once per pass instead of
/// once per VJP: the sweep's largest cost besides the kernels, for hundreds of parameters.
#[derive(Default)]
struct Pending {
    buf: Vec<f64>,
    /// Outputs held, and the state dimension `n` (each output is `[∂u (n), ∂p]`).
    count: usize,
    n: usize,
}

impl Pending {
    const SLOTS: usize = 8;

    fn reset(&mut self, n: usize, np: usize) {
        (self.count, self.n) = (0, n);
        // Not zeroed: a slot is written by its VJP before it is read.
        let len = Self::SLOTS * (n + np);
        if self.buf.len() < len {
            self.buf.resize(len, 0.0);
        }
    }

    /// A free output slot, after adding the held ones into `dp` if all are taken.
    fn slot(&mut self, dp: &mut [f64]) -> &mut [f64] {
        if self.count == Self::SLOTS {
            self.flush(dp);
        }
        let w = self.n + dp.len();
        self.count += 1;
        &mut self.buf[(self.count - 1) * w..self.count * w]
    }

    /// `dp += ∂p` of every held output, in the order they were taken.
    fn flush(&mut self, dp: &mut [f64]) {
        // Eight two-wide sums in flight: enough to hide the adds' latency (SSE2).
        const L: usize = 16;
        let (n, w) = (self.n, self.n + dp.len());
        if self.count == 0 || w == 0 {
            return;
        }
        let held = &self.buf[..self.count * w];
        let rest = dp.len() - dp.len() % L;
        // L components at a time, their sums in registers across the outputs.
        for (c, d) in dp.chunks_exact_mut(L).enumerate() {
            let mut acc = [0.0; L];
            acc.copy_from_slice(d);
            for g in held.chunks_exact(w) {
                let g = &g[n + c * L..n + (c + 1) * L];
                for (a, x) in acc.iter_mut().zip(g) {
                    *a += x;
                }
            }
            d.copy_from_slice(&acc);
        }
        for g in held.chunks_exact(w) {
            add(&mut dp[rest..], &g[n + rest..]);
        }
        self.count = 0;
    }
}

/// `v` as `len` zeros, keeping its allocation.
pub(super) fn zeroed(v: &mut Vec<f64>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}

/// Scratch of the sweep.
#[derive(Default)]
struct Buffers {
    row: RowBufs,
    wu: Vec<f64>,
    wp: Vec<f64>,
    /// `[∂u of the last VJP, dp]` (see `adjoint_in`).
    acc: Vec<f64>,
    pending: Pending,
}

impl Buffers {
    /// Zeros of the sizes of a sweep with `s` stages, `n` states and `np` parameters.
    fn reset(&mut self, s: usize, n: usize, np: usize) {
        self.row.reset(s, n);
        zeroed(&mut self.wu, n);
        zeroed(&mut self.wp, np);
        zeroed(&mut self.acc, n + np);
        self.pending.reset(n, np);
    }
}

/// Recomputed stages of the steps `first..first + len` (one checkpoint segment).
#[derive(Default)]
pub(super) struct Segment {
    pub first: usize,
    pub u0: Vec<Vec<f64>>,
    pub k: Vec<Vec<f64>>,
}

impl Segment {
    pub fn get(&self, j: usize) -> Result<(&[f64], &[f64]), SolveError> {
        let i = j.wrapping_sub(self.first);
        match (self.u0.get(i), self.k.get(i)) {
            (Some(u), Some(k)) => Ok((u, k)),
            _ => Err(SolveError::InvalidOption(format!(
                "step {j} has no stages and none could be recomputed"
            ))),
        }
    }

    /// Makes step `j`'s stages available: kept in `sol`, cached, or recomputed here from the
    /// last kept state at or before `j` through `j`.
    pub fn ensure<F: VjpField + ?Sized>(
        &mut self,
        tab: &Tableau,
        f: &mut F,
        sol: &Solution,
        steps: &[(f64, f64)],
        j: usize,
        tol: (f64, f64),
    ) -> Result<(), SolveError> {
        if sol.steps[j]
            .stages
            .as_ref()
            .is_some_and(|g| !g.k.is_empty())
            || self.get(j).is_ok()
        {
            return Ok(());
        }
        let Some(c) = (0..=j).rev().find(|&i| sol.steps[i].stages.is_some()) else {
            return Err(SolveError::InvalidOption(format!(
                "step {j} has no kept state before it"
            )));
        };
        let Some(start) = sol.steps[c].stages.as_ref() else {
            return Err(SolveError::InvalidOption(format!(
                "step {c} lost its state"
            )));
        };
        let n = sol.dim;
        let s = tab.stages();
        let mut u = start.u0.clone();
        // The first stage exactly as the solver had it: f(t0, u0) on the first step, the
        // previous step's last stage under FSAL, else f(t_c, u_c).
        let mut f0 = vec![0.0; n];
        let t_f0 = match c {
            0 => steps[0].0,
            _ if tab.fsal => steps[c - 1].0 + tab.c[s - 1] * steps[c - 1].1,
            _ => steps[c].0,
        };
        f.eval(t_f0, &u, &mut f0);
        let mut w = Work::new(tab, n);
        self.first = c;
        self.u0.clear();
        self.k.clear();
        for i in c..=j {
            let (t, h) = steps[i];
            rk_step(tab, f, t, &u, h, &f0, tol, &mut w);
            self.u0.push(u.clone());
            self.k.push(w.k.clone());
            u.copy_from_slice(&w.u1);
            if tab.fsal {
                f0.copy_from_slice(&w.k[(s - 1) * n..s * n]);
            } else if i < j {
                f.eval(steps[i + 1].0, &u, &mut f0);
            }
        }
        Ok(())
    }
}

/// `out = u + h Σ_j w_j k_j` with the solver's operations: `solve/step.rs`'s own function, so
/// the sweep's recomputed stage arguments are the solve's bits.
pub(crate) use crate::solve::step::combine;

/// The argument `g_i` of stage `i`.
pub(super) fn stage_arg(tab: &Tableau, u0: &[f64], h: f64, k: &[f64], i: usize, out: &mut [f64]) {
    combine(u0, h, tab.a[i], k, u0.len(), out);
}

pub(super) fn axpy(dst: &mut [f64], a: f64, x: &[f64]) {
    for (d, s) in dst.iter_mut().zip(x) {
        *d += a * s;
    }
}
