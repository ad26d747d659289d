//! The batched discrete adjoint: the backward sweep of many solves of one model (the rows of
//! a [`BatchSolution`](crate::solve::BatchSolution)) together, stage by stage, each stage one
//! batched VJP call ([`BatchVjpField`]) for every row that needs it — with a
//! [`JitBatchField`] one GEMM per dense layer for `vᵀ∂f/∂u` and one GEMM `Vᵀ·X` per weight for
//! `Σ_rows vᵀ∂f/∂p`, added inside the kernel into the one `dp` buffer of the whole sweep.
//!
//! Both step controls of the batched solve:
//!
//! - per row ([`BatchControl::PerRow`]): every row replays its own accepted steps. Step `j` of
//!   every row that took more than `j` steps is reversed in the same pass, the sweep going
//!   from the longest row's last step down to step 0; rows with fewer steps join when the
//!   sweep reaches their last step, and a stage's call holds only the rows whose cotangent is
//!   not zero, so the batch stays dense. Each row's bookkeeping (saves, `R_E`, `R_S`, FSAL,
//!   the stage recursion) is the single-row sweep's own (`adjoint::RowBufs`).
//! - joint ([`BatchControl::Joint`]): the batch was one state of `rows·n` values with one step
//!   sequence, so its adjoint is the single-row sweep on that stacked state
//!   ([`adjoint_in`](super::adjoint_in)), every VJP a batched call over all rows; the
//!   regularizers then read the joint error and stiffness estimates, as the joint solve did.
//!
//! Memory: stages come from the rows' solutions (`keep_stages`); a row whose steps kept only
//! checkpoints (`checkpoint_every`) has its segment recomputed on its own, through the batched
//! field called for that one row, as the single-row sweep recomputes it.
//!
//! Invariant: per row, the sweep does the single-row sweep's arithmetic; only the VJPs'
//! summation order differs (a GEMM's), and `dp` sums the rows' parts per stage instead of per
//! row. So `du0` and `dp` equal [`adjoint`](super::adjoint)'s row by row to rounding
//! (`tests/suite/batched_adjoint.rs`), and bit for bit with a field evaluated row by row
//! ([`RowByRow`]) for `du0`.

use crate::solve::{BatchControl, BatchField, JitBatchField, Solution, SolveError, Tableau};
use crate::solve::{Stages, StepRecord, VectorField};

use super::adjoint::{
    AdjointOptions, AdjointWork, RowBufs, Segment, adjoint_in, stage_arg, stages_of, validate,
};
use super::field::{VjpField, add_into as add};
use super::saves::{SaveAt, locate_into, step_end};

/// A batched field with its batched VJP, the parameter part summed over the batch.
pub trait BatchVjpField: BatchField {
    /// Length of the parameter vector `p`.
    fn n_params(&self) -> usize;
    /// For every slot `a` (`rows.len()` of them): `out_u[a·n..(a+1)·n] = v_aᵀ ∂f/∂u` at
    /// `(t[a], u_a)` with the inputs of problem `rows[a]`, and `dp += Σ_a v_aᵀ ∂f/∂p`. Never
    /// fails: a call that cannot run writes NaN into `out_u`.
    fn vjp_batch_add(
        &mut self,
        rows: &[usize],
        t: &[f64],
        uv: (&[f64], &[f64]),
        out_u: &mut [f64],
        dp: &mut [f64],
    );
}

impl<B: BatchVjpField + ?Sized> BatchVjpField for &mut B {
    fn n_params(&self) -> usize {
        (**self).n_params()
    }
    fn vjp_batch_add(
        &mut self,
        rows: &[usize],
        t: &[f64],
        uv: (&[f64], &[f64]),
        out_u: &mut [f64],
        dp: &mut [f64],
    ) {
        (**self).vjp_batch_add(rows, t, uv, out_u, dp)
    }
}

impl BatchVjpField for JitBatchField {
    fn n_params(&self) -> usize {
        JitBatchField::n_params(self)
    }
    fn vjp_batch_add(
        &mut self,
        rows: &[usize],
        t: &[f64],
        uv: (&[f64], &[f64]),
        out_u: &mut [f64],
        dp: &mut [f64],
    ) {
        JitBatchField::vjp_batch_add(self, rows, t, uv, out_u, dp);
    }
}

/// A single-row field evaluated row by row as a batched one (every row the same field, no
/// inputs): the reference the batched sweep is tested against, and a way to run it on any
/// [`VjpField`].
pub struct RowByRow<F> {
    f: F,
    wp: Vec<f64>,
}

/// Wraps a single-row field (see [`RowByRow`]).
pub fn row_by_row<F: VjpField>(f: F) -> RowByRow<F> {
    let wp = vec![0.0; f.n_params()];
    RowByRow { f, wp }
}

impl<F: VjpField> BatchField for RowByRow<F> {
    fn dim(&self) -> usize {
        self.f.dim()
    }
    fn eval_batch(&mut self, _rows: &[usize], t: &[f64], u: &[f64], du: &mut [f64]) {
        let n = self.f.dim();
        for (a, &ta) in t.iter().enumerate() {
            self.f
                .eval(ta, &u[a * n..(a + 1) * n], &mut du[a * n..(a + 1) * n]);
        }
    }
}

impl<F: VjpField> BatchVjpField for RowByRow<F> {
    fn n_params(&self) -> usize {
        self.f.n_params()
    }
    fn vjp_batch_add(
        &mut self,
        _rows: &[usize],
        t: &[f64],
        (u, v): (&[f64], &[f64]),
        out_u: &mut [f64],
        dp: &mut [f64],
    ) {
        let n = self.f.dim();
        for (a, &ta) in t.iter().enumerate() {
            let r = a * n..(a + 1) * n;
            let (ua, va) = (&u[r.clone()], &v[r.clone()]);
            self.f.vjp(ta, ua, va, &mut out_u[r], &mut self.wp);
            add(dp, &self.wp);
        }
    }
}

/// One problem `row` of a batched field as a single-row [`VjpField`]: how a row's
/// checkpointed segment is recomputed, and the VJP at a step's end for a non-FSAL interpolant.
struct OneRow<'f, F: ?Sized> {
    f: &'f mut F,
    row: [usize; 1],
}

impl<F: BatchVjpField + ?Sized> VectorField for OneRow<'_, F> {
    fn dim(&self) -> usize {
        self.f.dim()
    }
    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        self.f.eval_batch(&self.row, &[t], u, du);
    }
}

impl<F: BatchVjpField + ?Sized> VjpField for OneRow<'_, F> {
    fn n_params(&self) -> usize {
        self.f.n_params()
    }
    fn vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]) {
        out_p.fill(0.0);
        self.f.vjp_batch_add(&self.row, &[t], (u, v), out_u, out_p);
    }
}

/// The gradients of a batched adjoint: `dL/du0` of every row (`[rows, n]`); `dp` is added
/// into the caller's buffer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchGradients {
    pub du0: Vec<f64>,
}

/// One row's state during a per-row sweep.
#[derive(Default)]
struct Lane {
    steps: Vec<(f64, f64)>,
    locs: Vec<SaveAt>,
    /// The saves not yet reversed are `locs[..hi]`.
    hi: usize,
    b: RowBufs,
    cache: Segment,
    pair: Option<(usize, usize)>,
}

/// The buffers of batched sweeps, kept by a caller that differentiates many batches (the
/// trainer), so a sweep allocates nothing once they have grown. Reuse changes no result.
#[derive(Default)]
pub struct BatchAdjointWork {
    lanes: Vec<Lane>,
    /// Rows (lanes) of the current call, and its times, arguments, cotangents, results.
    slots: Vec<usize>,
    t: Vec<f64>,
    g: Vec<f64>,
    v: Vec<f64>,
    out: Vec<f64>,
    /// Joint control: the single-row sweep's buffers on the stacked state.
    stacked: AdjointWork,
}

/// The gradient of `L = Σ_rows Σ_i ⟨dl_du[r]_i, u_r(ts_i)⟩ + w_E R_E + w_S R_S` over the rows
/// `sols` of a batched solve under `control`: `dp` gets `dL/dp` added, the result holds every
/// row's `dL/du0`. Row `r` of `sols` is problem `r` of `f` (its inputs). `sols` must come from
/// `solve_batch` with `tab` and `keep_stages` (optionally `checkpoint_every`).
#[allow(clippy::too_many_arguments)]
pub fn batch_adjoint<F: BatchVjpField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    sols: &[Solution],
    dl_du: &[&[f64]],
    opts: &AdjointOptions,
    control: BatchControl,
    dp: &mut [f64],
    work: &mut BatchAdjointWork,
) -> Result<BatchGradients, SolveError> {
    if dl_du.len() != sols.len() || dp.len() != f.n_params() {
        return Err(SolveError::InvalidOption(format!(
            "{} loss gradients and {} parameter gradients for {} rows of a field with {} \
             parameters",
            dl_du.len(),
            dp.len(),
            sols.len(),
            f.n_params()
        )));
    }
    for (row, (sol, d)) in sols.iter().zip(dl_du).enumerate() {
        validate(tab, f.dim(), sol, d).map_err(|e| in_row(e, row))?;
    }
    match control {
        BatchControl::PerRow => per_row(tab, f, sols, dl_du, opts, dp, work),
        BatchControl::Joint => joint(tab, f, sols, dl_du, opts, dp, work),
    }
}

fn in_row(error: SolveError, row: usize) -> SolveError {
    SolveError::Row {
        row,
        error: Box::new(error),
    }
}

/// Per-row control: see the module docs.
fn per_row<F: BatchVjpField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    sols: &[Solution],
    dl_du: &[&[f64]],
    opts: &AdjointOptions,
    dp: &mut [f64],
    work: &mut BatchAdjointWork,
) -> Result<BatchGradients, SolveError> {
    let (n, s) = (f.dim(), tab.stages());
    let tol = (opts.rtol, opts.atol);
    let rows = sols.len();
    let BatchAdjointWork {
        lanes,
        slots,
        t: bt,
        g: bg,
        v: bv,
        out: bo,
        ..
    } = work;
    lanes.resize_with(rows, Lane::default);
    let mut du0 = vec![0.0; rows * n];
    for (r, (lane, sol)) in lanes.iter_mut().zip(sols).enumerate() {
        lane.steps.clear();
        lane.steps.extend(sol.steps.iter().map(|s| (s.t, s.h)));
        let t0 = lane
            .steps
            .first()
            .map(|s| s.0)
            .or(sol.ts.first().copied())
            .unwrap_or(0.0);
        locate_into(&sol.ts, t0, &lane.steps, &mut lane.locs).map_err(|e| in_row(e, r))?;
        lane.hi = lane.locs.len();
        for (i, loc) in lane.locs.iter().enumerate() {
            if *loc == SaveAt::Start {
                add(&mut du0[r * n..(r + 1) * n], &dl_du[r][i * n..(i + 1) * n]);
            }
        }
        lane.b.reset(s, n);
        lane.cache.first = 0;
        lane.cache.u0.clear();
        lane.cache.k.clear();
    }

    let longest = lanes.iter().map(|l| l.steps.len()).max().unwrap_or(0);
    let mut active = Vec::with_capacity(rows);
    for j in (0..longest).rev() {
        active.clear();
        active.extend((0..rows).filter(|&r| lanes[r].steps.len() > j));
        // Each row's step j up to its stages: saves, the regularizers, u_{j+1}'s reversal.
        for &r in &active {
            let lane = &mut lanes[r];
            let (sol, h) = (&sols[r], lane.steps[j].1);
            let mut one = OneRow {
                f: &mut *f,
                row: [r],
            };
            (lane.cache)
                .ensure(tab, &mut one, sol, &lane.steps, j, tol)
                .map_err(|e| in_row(e, r))?;
            let (u0, k) = stages_of(sol, &lane.cache, j).map_err(|e| in_row(e, r))?;
            let b = &mut lane.b;
            let at = (j, &lane.locs[..], &mut lane.hi);
            if b.saves(tab, (u0, k, h), at, dl_du[r]) && !tab.fsal {
                // The solver evaluated f(t_{j+1}, u_{j+1}): a VJP there feeds u_{j+1}.
                let end = step_end(&lane.steps, j);
                bo.resize(n, 0.0);
                f.vjp_batch_add(&[r], &[end], (&b.u1, &b.f1bar), &mut bo[..n], dp);
                add(&mut b.lam, &bo[..n]);
            }
            lane.pair = b.close(tab, (u0, k, h), opts);
        }
        // The stages, last first: one batched VJP for every row whose stage cotangent is
        // not zero (FSAL: step j+1's first stage is step j's last, carried instead).
        for i in (0..s).rev() {
            slots.clear();
            bt.clear();
            bg.clear();
            bv.clear();
            for &r in &active {
                let lane = &mut lanes[r];
                let (t, h) = lane.steps[j];
                let b = &mut lane.b;
                let lk = &b.lam_k[i * n..(i + 1) * n];
                b.lam_g.fill(0.0);
                if i == 0 && tab.fsal && j > 0 {
                    b.carry.copy_from_slice(lk);
                    b.carried = true;
                } else if lk.iter().any(|x| *x != 0.0) {
                    let (u0, k) = stages_of(&sols[r], &lane.cache, j).map_err(|e| in_row(e, r))?;
                    let a = slots.len();
                    slots.push(r);
                    bt.push(t + tab.c[i] * h);
                    bg.resize((a + 1) * n, 0.0);
                    stage_arg(tab, u0, h, k, i, &mut bg[a * n..]);
                    bv.extend_from_slice(lk);
                }
            }
            if !slots.is_empty() {
                bo.resize(slots.len() * n, 0.0);
                f.vjp_batch_add(
                    slots,
                    bt,
                    (&bg[..], &bv[..]),
                    &mut bo[..slots.len() * n],
                    dp,
                );
                for (a, &r) in slots.iter().enumerate() {
                    lanes[r].b.lam_g.copy_from_slice(&bo[a * n..(a + 1) * n]);
                }
            }
            for &r in &active {
                let lane = &mut lanes[r];
                lane.b.stage_done(tab, i, lane.steps[j].1, lane.pair);
            }
        }
        for &r in &active {
            lanes[r].b.lam_u0_to_lam();
        }
    }
    for (r, lane) in lanes.iter().enumerate().take(rows) {
        add(&mut du0[r * n..(r + 1) * n], &lane.b.lam);
    }
    Ok(BatchGradients { du0 })
}

/// The batch as one state of `rows·n` values for the single-row sweep, every VJP one batched
/// call over all rows at the shared time.
struct Stacked<'f, F: ?Sized> {
    f: &'f mut F,
    rows: Vec<usize>,
    t: Vec<f64>,
}

impl<F: BatchVjpField + ?Sized> VectorField for Stacked<'_, F> {
    fn dim(&self) -> usize {
        self.rows.len() * self.f.dim()
    }
    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        self.t.fill(t);
        self.f.eval_batch(&self.rows, &self.t, u, du);
    }
}

impl<F: BatchVjpField + ?Sized> VjpField for Stacked<'_, F> {
    fn n_params(&self) -> usize {
        self.f.n_params()
    }
    fn vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]) {
        out_p.fill(0.0);
        self.t.fill(t);
        self.f
            .vjp_batch_add(&self.rows, &self.t, (u, v), out_u, out_p);
    }
    fn adds_in_place(&self) -> bool {
        true
    }
    fn vjp_add(&mut self, t: f64, uv: (&[f64], &[f64]), out: &mut [f64]) {
        let dim = VectorField::dim(self);
        let (out_u, dp) = out.split_at_mut(dim);
        self.t.fill(t);
        self.f.vjp_batch_add(&self.rows, &self.t, uv, out_u, dp);
    }
}

/// Joint control: the single-row sweep on the stacked solution (see the module docs).
fn joint<F: BatchVjpField + ?Sized>(
    tab: &Tableau,
    f: &mut F,
    sols: &[Solution],
    dl_du: &[&[f64]],
    opts: &AdjointOptions,
    dp: &mut [f64],
    work: &mut BatchAdjointWork,
) -> Result<BatchGradients, SolveError> {
    let n = f.dim();
    let rows = sols.len();
    let Some(first) = sols.first() else {
        return Ok(BatchGradients::default());
    };
    let same = |s: &Solution| {
        s.ts == first.ts
            && s.steps.len() == first.steps.len()
            && (s.steps.iter().zip(&first.steps)).all(|(a, b)| a.t == b.t && a.h == b.h)
    };
    if let Some(row) = sols.iter().position(|s| !same(s)) {
        return Err(in_row(
            SolveError::InvalidOption(
                "joint step control needs one step sequence for all rows".into(),
            ),
            row,
        ));
    }
    let sol = stack(sols, n);
    let saves = first.ts.len();
    let mut d = Vec::with_capacity(saves * rows * n);
    for i in 0..saves {
        for g in dl_du {
            d.extend_from_slice(&g[i * n..(i + 1) * n]);
        }
    }
    let mut stacked = Stacked {
        f,
        rows: (0..rows).collect(),
        t: vec![0.0; rows],
    };
    adjoint_in(tab, &mut stacked, &sol, &d, opts, None, &mut work.stacked)?;
    let grads = work.stacked.grads();
    add(dp, &grads.dp);
    Ok(BatchGradients {
        du0: grads.du0.clone(),
    })
}

/// The rows of a joint solve as the one stacked solution they were split from (the inverse
/// of the split in `solve/batched.rs`): saved states and stages row after row within each
/// save and stage.
fn stack(sols: &[Solution], n: usize) -> Solution {
    let first = &sols[0];
    let us: Vec<&[f64]> = sols.iter().map(|s| s.us.as_slice()).collect();
    let steps = (0..first.steps.len())
        .map(|j| {
            let part = |u: bool| -> Vec<&[f64]> {
                (sols.iter())
                    .map(|s| match s.steps[j].stages.as_deref() {
                        Some(g) if u => g.u0.as_slice(),
                        Some(g) => g.k.as_slice(),
                        None => &[],
                    })
                    .collect()
            };
            StepRecord {
                stages: first.steps[j].stages.as_ref().map(|_| {
                    Box::new(Stages {
                        u0: interleave(&part(true), n),
                        k: interleave(&part(false), n),
                    })
                }),
                ..first.steps[j]
            }
        })
        .collect();
    Solution {
        method: first.method,
        dim: n * sols.len(),
        ts: first.ts.clone(),
        us: interleave(&us, n),
        steps,
        stats: first.stats,
        dense: None,
    }
}

/// Blocks of `n` values of each part in turn: block 0 of every part, then block 1, ….
fn interleave(parts: &[&[f64]], n: usize) -> Vec<f64> {
    let blocks = parts.first().map_or(0, |p| p.len() / n.max(1));
    let mut out = Vec::with_capacity(blocks * n * parts.len());
    for b in 0..blocks {
        for p in parts {
            out.extend_from_slice(&p[b * n..(b + 1) * n]);
        }
    }
    out
}
