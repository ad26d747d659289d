//! The discrete adjoint of an SDE solve on one Brownian path: the accepted steps (sizes and
//! start times as recorded: constants of the backward pass) walked backwards with VJPs of the
//! drift and the diffusion (and, for Milstein, of the diffusion's JVP `J_g·w`), the Brownian
//! increments replayed from the path's [`BrownianTree`].
//!
//! The SDE steppers keep no stages, so the adjoint first replays the path forward with the
//! solver's own stepper (`solve::sde::sde_step`, the same increments: the tree is a pure
//! function of `(seed, path, t)`) and checks the replay against the solution's saved states
//! bit for bit — a solution of another path, field or method is an error, never a wrong
//! gradient. Each step is then recomputed once more on the way back (it refills the stage
//! values in `Work`) and differentiated.
//!
//! With a weight on `R_E = Σ_j E_j |h_j|` (the adaptive methods' error estimate,
//! [`sde_adjoint_with`]), each step's `∂E_j/∂(u_n, u_{n+1}, E1, E2)` (`sde_reg.rs`) is added
//! before the step is reversed: `E1`, `E2` are sums of the stage values, so their cotangents
//! travel through the same stage sweep as the state's. A weight on `R_S = Σ_j S_j |h_j|` (the
//! stiffness estimate, `solve/sde/stiffness.rs`) seeds the stage values and stage arguments of
//! the estimate's pair the same way.
//!
//! Invariant: exact for the computation done; every method of `solve::sde` is covered
//! (Euler–Maruyama, Euler–Heun, Milstein, SRI and SRA tableaux), and `R_E`, `R_S` for the
//! adaptive ones.

// The step formulas are component-wise over parallel buffers, as in `solve/sde/step.rs`.
#![allow(clippy::needless_range_loop)]

use super::adjoint::Gradients;
use super::field::{JitVjpField, VjpField};
use super::sde_reg::{
    ErrorSeeds, StiffnessSeeds, error_seeds, stage_seeds, stiffness_seeds, stiffness_stage_seeds,
};
use crate::diag::Diag;
use crate::ir::{self, lower};
use crate::jit::{self, Kernel};
use crate::sema::Model;
use crate::solve::sde::{
    BrownianCache, BrownianPoint, BrownianTree, NoiseMap, SdeField, SdeMethod, SdeOptions, Work,
    increments, sde_step,
};
use crate::solve::{Solution, SolveError, VectorField};

/// An SDE with the VJPs its adjoint needs. Each `*_vjp` overwrites its outputs.
pub trait SdeVjpField: SdeField {
    /// Length of the parameter vector `p`.
    fn n_params(&self) -> usize;
    /// `vᵀ∂f/∂u`, `vᵀ∂f/∂p` of the drift at `(t, u)`.
    fn drift_vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]);
    /// `vᵀ∂g/∂u`, `vᵀ∂g/∂p` of the diffusion at `(t, u)`.
    fn diffusion_vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]);
    /// With `m(u, p, w) = J_g(t, u, p)·w` (what [`SdeField::diffusion_jvp`] computes):
    /// `vᵀ∂m/∂u`, `vᵀ∂m/∂p`, `vᵀ∂m/∂w`. Only Milstein needs it.
    #[allow(clippy::too_many_arguments)]
    fn diffusion_jvp_vjp(
        &mut self,
        t: f64,
        u: &[f64],
        w: &[f64],
        v: &[f64],
        out_u: &mut [f64],
        out_p: &mut [f64],
        out_w: &mut [f64],
    );
}

/// The Milstein kernels: `m = J_g·v` (args `t, u, p[, x], v`) and its VJP w.r.t. `u, p, v`
/// (args as `m`'s plus the cotangent `w`).
struct MilsteinKernels {
    jvp: Kernel,
    vjp: Kernel,
    /// Argument buffers of the VJP kernel by position (`t`, `u`, `v`, `w` per call).
    bufs: Vec<Vec<f64>>,
    pos: [usize; 5],
    out: Vec<f64>,
}

/// A model's drift and diffusion with their VJPs as JIT kernels (and, with `milstein`, the
/// diffusion's JVP and its VJP); parameters replaceable without recompiling.
pub struct JitSdeVjp {
    drift: JitVjpField,
    diffusion: JitVjpField,
    milstein: Option<MilsteinKernels>,
    noise: NoiseMap,
    drift_reads_t: bool,
}

impl JitSdeVjp {
    /// The same SDE on the same compiled kernels with buffers of its own (current parameters
    /// and inputs): one per thread of a parallel loop over paths; it computes exactly what
    /// this one computes.
    pub fn fork(&self) -> JitSdeVjp {
        JitSdeVjp {
            drift: self.drift.fork(),
            diffusion: self.diffusion.fork(),
            milstein: self.milstein.as_ref().map(|m| MilsteinKernels {
                jvp: m.jvp.duplicate(),
                vjp: m.vjp.duplicate(),
                bufs: m.bufs.clone(),
                pos: m.pos,
                out: m.out.clone(),
            }),
            noise: self.noise.clone(),
            drift_reads_t: self.drift_reads_t,
        }
    }

    /// The SDE of `model` with parameters `p` and inputs `x`; `milstein` also compiles what
    /// Milstein's step and its adjoint need.
    pub fn new(model: &Model, p: &[f64], x: &[f64], milstein: bool) -> Result<JitSdeVjp, Diag> {
        let drift_ir = lower::lower(model, lower::Part::Field)?;
        let diffusion_ir = lower::lower(model, lower::Part::Diffusion)?;
        let drift = JitVjpField::from_function(&drift_ir, &format!("{}.drift", model.name), p, x)?;
        let diffusion =
            JitVjpField::from_function(&diffusion_ir, &format!("{}.diffusion", model.name), p, x)?;
        let milstein = if milstein {
            let m = ir::jvp(&diffusion_ir, "u", "v").map_err(lower::internal)?;
            let mv = ir::vjp(&m, &["u", "p", "v"], "w").map_err(lower::internal)?;
            let jvp = jit::compile(&m, &format!("{}.diffusion_jvp", model.name))?;
            let vjp = jit::compile(&mv, &format!("{}.diffusion_jvp_vjp", model.name))?;
            let n = model.state_size;
            let mut bufs = Vec::new();
            for spec in &mv.args {
                bufs.push(match spec.name.as_str() {
                    "p" => p.to_vec(),
                    "x" => x.to_vec(),
                    _ => vec![0.0; spec.len],
                });
            }
            let idx = |name: &str| mv.arg_index(name).unwrap_or(usize::MAX);
            let pos = [idx("t"), idx("u"), idx("p"), idx("v"), idx("w")];
            if pos.contains(&usize::MAX) || mv.args.iter().zip(&bufs).any(|(a, b)| a.len != b.len())
            {
                return Err(Diag::error(
                    "glassbox::input_size",
                    format!(
                        "the diffusion JVP of `{}` takes other arguments",
                        model.name
                    ),
                )
                .help("give one value per declared parameter and input element"));
            }
            let out = vec![0.0; 2 * n + p.len()];
            Some(MilsteinKernels {
                jvp,
                vjp,
                bufs,
                pos,
                out,
            })
        } else {
            None
        };
        Ok(JitSdeVjp {
            drift,
            diffusion,
            milstein,
            noise: NoiseMap::from_model(model),
            drift_reads_t: drift_ir.reads("t"),
        })
    }

    /// Replaces the parameters (no recompilation); `p` must be as long as before.
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Diag> {
        self.drift.set_params(p)?;
        self.diffusion.set_params(p)?;
        if let Some(m) = &mut self.milstein {
            m.bufs[m.pos[2]].copy_from_slice(p);
        }
        Ok(())
    }
}

impl MilsteinKernels {
    /// Sets `t`, `u` and the JVP's direction (the kernels' `v`).
    fn set(&mut self, t: f64, u: &[f64], dir: &[f64]) {
        let [pt, pu, _, pv, _] = self.pos;
        self.bufs[pt][0] = t;
        self.bufs[pu].copy_from_slice(u);
        self.bufs[pv].copy_from_slice(dir);
    }
}

impl SdeField for JitSdeVjp {
    fn dim(&self) -> usize {
        self.noise.dim()
    }
    fn noise(&self) -> &NoiseMap {
        &self.noise
    }
    fn drift(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        self.drift.eval(t, u, du)
    }
    fn diffusion(&mut self, t: f64, u: &[f64], g: &mut [f64]) {
        self.diffusion.eval(t, u, g)
    }
    fn diffusion_jvp(&mut self, t: f64, u: &[f64], v: &[f64], out: &mut [f64]) {
        let Some(m) = &mut self.milstein else {
            return out.fill(f64::NAN);
        };
        // The JVP kernel's arguments are the VJP kernel's without the trailing cotangent.
        if u.len() != m.bufs[m.pos[1]].len() || v.len() != u.len() {
            return out.fill(f64::NAN);
        }
        m.set(t, u, v);
        let k = m.pos[4];
        let args: Vec<&[f64]> = m.bufs[..k].iter().map(|b| b.as_slice()).collect();
        if m.jvp.call(&args, out).is_err() {
            out.fill(f64::NAN);
        }
    }
    fn drift_reads_t(&self) -> bool {
        self.drift_reads_t
    }
}

impl SdeVjpField for JitSdeVjp {
    fn n_params(&self) -> usize {
        self.drift.n_params()
    }
    fn drift_vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]) {
        self.drift.vjp(t, u, v, out_u, out_p)
    }
    fn diffusion_vjp(
        &mut self,
        t: f64,
        u: &[f64],
        v: &[f64],
        out_u: &mut [f64],
        out_p: &mut [f64],
    ) {
        self.diffusion.vjp(t, u, v, out_u, out_p)
    }
    fn diffusion_jvp_vjp(
        &mut self,
        t: f64,
        u: &[f64],
        w: &[f64],
        v: &[f64],
        out_u: &mut [f64],
        out_p: &mut [f64],
        out_w: &mut [f64],
    ) {
        let n = u.len();
        let np = out_p.len();
        let ok = match &mut self.milstein {
            Some(m) if m.out.len() == 2 * n + np && m.bufs[m.pos[1]].len() == n => {
                m.set(t, u, w);
                let pw = m.pos[4];
                m.bufs[pw].copy_from_slice(v);
                let args: Vec<&[f64]> = m.bufs.iter().map(|b| b.as_slice()).collect();
                let mut out = std::mem::take(&mut m.out);
                let ok = m.vjp.call(&args, &mut out).is_ok();
                if ok {
                    out_u.copy_from_slice(&out[..n]);
                    out_p.copy_from_slice(&out[n..n + np]);
                    out_w.copy_from_slice(&out[n + np..]);
                }
                m.out = out;
                ok
            }
            _ => false,
        };
        if !ok {
            out_u.fill(f64::NAN);
            out_p.fill(f64::NAN);
            out_w.fill(f64::NAN);
        }
    }
}

/// The path's step ends `T_0 … T_N` (`T_0` the span start, `T_N` its end).
fn step_times(sol: &Solution, tree: &BrownianTree) -> Vec<f64> {
    let (t0, t1) = tree.span();
    let mut ts = Vec::with_capacity(sol.steps.len() + 1);
    ts.push(t0);
    ts.extend(sol.steps.iter().skip(1).map(|s| s.t));
    if !sol.steps.is_empty() {
        ts.push(t1);
    }
    ts
}

/// Buffers of the backward sweep.
pub(super) struct Sweep {
    n: usize,
    f0: Vec<f64>,
    g0: Vec<f64>,
    /// Cotangents of the stage values `f_s`, `g_s` (stage-major).
    lf: Vec<f64>,
    lg: Vec<f64>,
    wu: Vec<f64>,
    wp: Vec<f64>,
    ww: Vec<f64>,
    /// SRA: the summed state cotangent of a stage's drift and diffusion VJPs.
    wsum: Vec<f64>,
}

impl Sweep {
    pub(super) fn new(n: usize, np: usize) -> Sweep {
        Sweep {
            n,
            f0: vec![0.0; n],
            g0: vec![0.0; n],
            lf: vec![0.0; 4 * n],
            lg: vec![0.0; 4 * n],
            wu: vec![0.0; n],
            wp: vec![0.0; np],
            ww: vec![0.0; n],
            wsum: vec![0.0; n],
        }
    }

    /// `dp += wp`, `λ_u += wu` after a VJP.
    fn gather(&self, lu: &mut [f64], dp: &mut [f64]) {
        for (a, b) in lu.iter_mut().zip(&self.wu) {
            *a += b;
        }
        for (a, b) in dp.iter_mut().zip(&self.wp) {
            *a += b;
        }
    }
}

fn nonzero(v: &[f64]) -> bool {
    v.iter().any(|&x| x != 0.0)
}

/// Refills `w` (increments and stage values) for step `(t, h)` from `u`.
pub(super) fn redo_step<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    (t, h): (f64, f64),
    u: &[f64],
    (dw, i10): (&[f64], &[f64]),
    s: &mut Sweep,
    w: &mut Work,
) {
    field.drift(t, u, &mut s.f0);
    field.diffusion(t, u, &mut s.g0);
    w.dw.copy_from_slice(dw);
    w.i10.copy_from_slice(i10);
    sde_step(method, field, t, u, h, &s.f0, &s.g0, w);
}

/// A replayed path: the step ends `T_0 … T_N`, the states at them (row-major) and each step's
/// per-component increments (`ΔW` then `I_(1,0)`, `2n` values a step).
pub(super) struct Replayed {
    pub ts: Vec<f64>,
    pub us: Vec<f64>,
    pub incs: Vec<f64>,
}

/// Checks that `sol` is a solve of `method` on `tree` from `u0` and replays it with the
/// solver's stepper.
pub(super) fn replay<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    sol: &Solution,
    u0: &[f64],
    tree: &BrownianTree,
    s: &mut Sweep,
    w: &mut Work,
) -> Result<Replayed, SolveError> {
    let n = field.dim();
    let bad = |m: String| Err(SolveError::InvalidOption(m));
    if sol.method != method.name() {
        return bad(format!(
            "the solution is of `{}`, the adjoint was asked for `{}`",
            sol.method,
            method.name()
        ));
    }
    if sol.dim != n || u0.len() != n {
        return bad(format!(
            "sizes disagree: {n} states, u0 of {}, a solution of dimension {}",
            u0.len(),
            sol.dim
        ));
    }
    let m = tree.processes();
    if m != field.noise().processes() || sol.steps.first().is_some_and(|s| s.t != tree.span().0) {
        return bad("the Brownian tree does not belong to this solve".into());
    }
    let ts = step_times(sol, tree);
    let steps = sol.steps.len();
    let of = field.noise().of().to_vec();
    let mut us = Vec::with_capacity((steps + 1) * n);
    us.extend_from_slice(u0);
    let mut incs = vec![0.0; 2 * steps * n];
    let (mut dwm, mut i10m) = (vec![0.0; m], vec![0.0; m]);
    let mut u = vec![0.0; n];
    let mut here = BrownianPoint::origin(ts[0], m);
    let mut there = BrownianPoint::origin(ts[0], m);
    // The replay queries the step ends in order, as the solve did: the cache makes that cheap
    // (its values equal uncached ones bit for bit).
    let mut cache = BrownianCache::new();
    for j in 0..steps {
        tree.point_cached(ts[j + 1], &mut cache, &mut there);
        increments(&here, &there, &mut dwm, &mut i10m);
        std::mem::swap(&mut here, &mut there);
        let (dw, i10) = incs[2 * j * n..2 * (j + 1) * n].split_at_mut(n);
        for i in 0..n {
            dw[i] = dwm[of[i]];
            i10[i] = i10m[of[i]];
        }
        let (dw, i10) = incs[2 * j * n..2 * (j + 1) * n].split_at(n);
        u.copy_from_slice(&us[j * n..(j + 1) * n]);
        redo_step(method, field, (ts[j], sol.steps[j].h), &u, (dw, i10), s, w);
        us.extend_from_slice(&w.u1);
    }
    Ok(Replayed { ts, us, incs })
}

/// The gradient of `L = Σ_i ⟨dl_du_i, u(ts_i)⟩` (linearised at the solution: `dl_du` holds
/// `dL/du` at every saved state, row-major like `sol.us`) w.r.t. the initial state `u0` and
/// the parameters, for a path solved by `solve_path(method, field, u0, _, tree)` (or path `k`
/// of `solve_sde`, whose tree is `BrownianTree::with_depth(seed, k, t0, t1, m,
/// tree_depth(..))`).
pub fn sde_adjoint<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    sol: &Solution,
    u0: &[f64],
    tree: &BrownianTree,
    dl_du: &[f64],
) -> Result<Gradients, SolveError> {
    let reg = SdeRegularizer {
        opts: &SdeOptions::default(),
        error_weight: 0.0,
        stiffness_weight: 0.0,
    };
    sde_adjoint_with(method, field, sol, u0, tree, dl_du, &reg).map(|(g, _)| g)
}

/// The solver-heuristic regularizers of an SDE solve: `error_weight · R_E + stiffness_weight ·
/// R_S`, `R_E = Σ_j E_j |h_j|` with `E_j` scaled by the solve's `rtol`, `atol` and `delta`
/// (`opts`; pass the options the path was solved with, or `R_E` is another function than the
/// recorded one), `R_S = Σ_j S_j |h_j|`.
#[derive(Clone, Copy, Debug)]
pub struct SdeRegularizer<'a> {
    pub opts: &'a SdeOptions,
    pub error_weight: f64,
    pub stiffness_weight: f64,
}

/// [`sde_adjoint`] of the loss plus the weighted `R_E` and `R_S`; also returns `(R_E, R_S)` as
/// the sweep recomputed them from the replayed steps (equal to the recorded sums; 0 for the
/// methods without estimates, and `R_S` is 0 unless `stiffness_weight` is nonzero: it may
/// cost a drift evaluation per step).
pub fn sde_adjoint_with<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    sol: &Solution,
    u0: &[f64],
    tree: &BrownianTree,
    dl_du: &[f64],
    reg: &SdeRegularizer,
) -> Result<(Gradients, (f64, f64)), SolveError> {
    let n = field.dim();
    let np = field.n_params();
    let bad = |m: String| Err(SolveError::InvalidOption(m));
    if dl_du.len() != sol.us.len() {
        return bad(format!(
            "{} saved values but {} seeds",
            sol.us.len(),
            dl_du.len()
        ));
    }
    let mut w = Work::new(n);
    let mut s = Sweep::new(n, np);
    let Replayed { ts, us, incs } = replay(method, field, sol, u0, tree, &mut s, &mut w)?;
    let steps = sol.steps.len();

    // Seeds: each saved time is a step end (or t0); the replay must reproduce the save.
    let mut seeds = vec![0.0; (steps + 1) * n];
    let mut j = 0;
    for (k, &t) in sol.ts.iter().enumerate() {
        while j <= steps && ts[j] != t {
            j += 1;
        }
        let (Some(state), Some(saved)) = (us.get(j * n..(j + 1) * n), sol.u(k)) else {
            return bad(format!("saved time {t} is not a step end of this solve"));
        };
        if state
            .iter()
            .zip(saved)
            .any(|(a, b)| a.to_bits() != b.to_bits())
        {
            return bad(format!(
                "replaying the steps on this Brownian path does not reproduce the saved state at t = {t}: another path, field or parameters"
            ));
        }
        for (a, d) in seeds[j * n..(j + 1) * n].iter_mut().zip(&dl_du[k * n..]) {
            *a += d;
        }
    }

    let mut dp = vec![0.0; np];
    let mut lam = seeds[steps * n..].to_vec();
    let mut lu = vec![0.0; n];
    let mut err = method.is_adaptive().then(|| ErrorSeeds::new(n));
    let mut stiff =
        (method.is_adaptive() && reg.stiffness_weight != 0.0).then(|| StiffnessSeeds::new(n));
    let (mut r_e, mut r_s) = (0.0, 0.0);
    for j in (0..steps).rev() {
        let u = &us[j * n..(j + 1) * n];
        let (dw, i10) = incs[2 * j * n..2 * (j + 1) * n].split_at(n);
        let (t, h) = (ts[j], sol.steps[j].h);
        redo_step(method, field, (t, h), u, (dw, i10), &mut s, &mut w);
        if let Some(e) = &mut err {
            r_e += error_seeds(u, &w, reg.opts, reg.error_weight * h.abs(), e) * h.abs();
            for (a, b) in lam.iter_mut().zip(&e.u1) {
                *a += b;
            }
        }
        if let Some(d) = &mut stiff {
            let weight = reg.stiffness_weight * h.abs();
            let s_j = stiffness_seeds(method, field, (t, h), &mut w, weight, d);
            r_s += s_j.unwrap_or(0.0) * h.abs();
        }
        lu.copy_from_slice(&lam);
        let de = err.as_ref().filter(|_| reg.error_weight != 0.0);
        step_vjp(
            method,
            field,
            (t, h),
            u,
            &w,
            &lam,
            (de, stiff.as_ref()),
            &mut s,
            &mut lu,
            &mut dp,
        );
        if let Some(e) = de {
            for (a, b) in lu.iter_mut().zip(&e.u0) {
                *a += b;
            }
        }
        for i in 0..n {
            lam[i] = lu[i] + seeds[j * n + i];
        }
    }
    Ok((Gradients { du0: lam, dp }, (r_e, r_s)))
}

/// Adds step `(t, h)`'s `λᵀ∂u_{n+1}/∂(u_n, p)` to `lu` (which holds `λ` itself, the identity
/// part) and `dp`, and with `de` the error parts' (with `ds` the stiffness pair's) cotangents
/// carried through the stages; `w` holds the step as the solver took it.
#[allow(clippy::too_many_arguments)]
pub(super) fn step_vjp<F: SdeVjpField + ?Sized>(
    method: SdeMethod,
    field: &mut F,
    (t, h): (f64, f64),
    u: &[f64],
    w: &Work,
    lam: &[f64],
    (de, ds): (Option<&ErrorSeeds>, Option<&StiffnessSeeds>),
    s: &mut Sweep,
    lu: &mut [f64],
    dp: &mut [f64],
) {
    let n = s.n;
    s.lf.fill(0.0);
    s.lg.fill(0.0);
    match method {
        SdeMethod::EulerMaruyama | SdeMethod::EulerHeun | SdeMethod::Milstein => {
            for i in 0..n {
                s.lf[i] = h * lam[i];
                s.lg[i] = w.dw[i] * lam[i];
            }
            if matches!(method, SdeMethod::EulerHeun) {
                // u1 = u + h f0 + ½(g0 + g(t + h, H0)) ΔW, H0 = u + g0 ΔW.
                let lh: Vec<f64> = (0..n).map(|i| 0.5 * s.lg[i]).collect();
                s.lg[..n].copy_from_slice(&lh);
                field.diffusion_vjp(t + h, &w.h0[..n], &lh, &mut s.wu, &mut s.wp);
                s.gather(lu, dp);
                for i in 0..n {
                    s.lg[i] += w.dw[i] * s.wu[i];
                }
            } else if matches!(method, SdeMethod::Milstein) {
                // u1 = u + h f0 + g0 ΔW + ½ (J_g g0)(ΔW² − h).
                let lm: Vec<f64> = (0..n)
                    .map(|i| 0.5 * (w.dw[i] * w.dw[i] - h) * lam[i])
                    .collect();
                let g0 = s.g0.clone();
                field.diffusion_jvp_vjp(t, u, &g0, &lm, &mut s.wu, &mut s.wp, &mut s.ww);
                s.gather(lu, dp);
                for i in 0..n {
                    s.lg[i] += s.ww[i];
                }
            }
            field.drift_vjp(t, u, &s.lf[..n], &mut s.wu, &mut s.wp);
            s.gather(lu, dp);
            field.diffusion_vjp(t, u, &s.lg[..n], &mut s.wu, &mut s.wp);
            s.gather(lu, dp);
        }
        SdeMethod::Sri(tab) => {
            let sq = h.sqrt();
            for st in 0..4 {
                for i in 0..n {
                    let (dw, c1, c2, c3) = (w.dw[i], w.chi[0][i], w.chi[1][i], w.chi[2][i]);
                    s.lf[st * n + i] = h * tab.alpha[st] * lam[i];
                    s.lg[st * n + i] = (tab.beta1[st] * dw
                        + tab.beta2[st] * c1
                        + tab.beta3[st] * c2
                        + tab.beta4[st] * c3)
                        * lam[i];
                }
            }
            if let Some(e) = de {
                stage_seeds(method, h, w, e, &mut s.lf, &mut s.lg);
            }
            if let Some(d) = ds {
                let Sweep { lf, lg, wu, wp, .. } = &mut *s;
                stiffness_stage_seeds(method, field, (t, h), w, d, (lf, lg), (wu, wp), (lu, dp));
            }
            for st in (0..4).rev() {
                let r = st * n..(st + 1) * n;
                // g_s = g(t + c1 h, H1_s), H1_s = u + h Σ A1 f_j + √h Σ B1 g_j.
                if nonzero(&s.lg[r.clone()]) {
                    field.diffusion_vjp(
                        t + tab.c1[st] * h,
                        &w.h1[r.clone()],
                        &s.lg[r.clone()],
                        &mut s.wu,
                        &mut s.wp,
                    );
                    s.gather(lu, dp);
                    for jj in 0..st {
                        for i in 0..n {
                            s.lf[jj * n + i] += h * tab.a1[st][jj] * s.wu[i];
                            s.lg[jj * n + i] += sq * tab.b1[st][jj] * s.wu[i];
                        }
                    }
                }
                // f_s = f(t + c0 h, H0_s), H0_s = u + h Σ A0 f_j + χ2 Σ B0 g_j.
                if nonzero(&s.lf[r.clone()]) {
                    field.drift_vjp(
                        t + tab.c0[st] * h,
                        &w.h0[r.clone()],
                        &s.lf[r.clone()],
                        &mut s.wu,
                        &mut s.wp,
                    );
                    s.gather(lu, dp);
                    for jj in 0..st {
                        for i in 0..n {
                            s.lf[jj * n + i] += h * tab.a0[st][jj] * s.wu[i];
                            s.lg[jj * n + i] += w.chi[1][i] * tab.b0[st][jj] * s.wu[i];
                        }
                    }
                }
            }
        }
        SdeMethod::Sra(tab) => {
            for st in 0..tab.stages {
                for i in 0..n {
                    s.lf[st * n + i] = h * tab.alpha[st] * lam[i];
                    s.lg[st * n + i] =
                        (tab.beta1[st] * w.dw[i] + tab.beta2[st] * w.chi[1][i]) * lam[i];
                }
            }
            if let Some(e) = de {
                stage_seeds(method, h, w, e, &mut s.lf, &mut s.lg);
            }
            if let Some(d) = ds {
                let Sweep { lf, lg, wu, wp, .. } = &mut *s;
                stiffness_stage_seeds(method, field, (t, h), w, d, (lf, lg), (wu, wp), (lu, dp));
            }
            for st in (0..tab.stages).rev() {
                let r = st * n..(st + 1) * n;
                // f_s and g_s both at H0_s = u + h Σ A0 f_j + χ2 Σ B0 g_j.
                let Sweep {
                    lf,
                    lg,
                    wu,
                    wp,
                    wsum,
                    ..
                } = &mut *s;
                wsum.fill(0.0);
                for (lv, c, is_drift) in [(&*lg, tab.c1[st], false), (&*lf, tab.c0[st], true)] {
                    let v = &lv[r.clone()];
                    if !nonzero(v) {
                        continue;
                    }
                    if is_drift {
                        field.drift_vjp(t + c * h, &w.h0[r.clone()], v, wu, wp);
                    } else {
                        field.diffusion_vjp(t + c * h, &w.h0[r.clone()], v, wu, wp);
                    }
                    for (a, b) in wsum.iter_mut().zip(wu.iter()) {
                        *a += b;
                    }
                    for (a, b) in dp.iter_mut().zip(wp.iter()) {
                        *a += b;
                    }
                }
                for i in 0..n {
                    lu[i] += wsum[i];
                }
                for jj in 0..st {
                    for i in 0..n {
                        lf[jj * n + i] += h * tab.a0[st][jj] * wsum[i];
                        lg[jj * n + i] += w.chi[1][i] * tab.b0[st][jj] * wsum[i];
                    }
                }
            }
        }
    }
}
