//! The solve as one node of dfdx's graph. Forward: scatter the learned tensor `θ` into `p`,
//! solve every segment (a window, or a whole trajectory) with the model's explicit method,
//! saving at the segment's observation times, and return the observed components as a
//! `[rows, columns]` tensor. Backward: the discrete adjoint (`grad::adjoint`) of each
//! segment's solve with `dL/du` read from dfdx's gradient of that tensor, the solver
//! regularizers (`R_E`, `R_S`, global and local) and the integral terms (`kinetic`, ...)
//! folded into the same sweep, and the result
//! gathered back onto `θ`. Where the field has GEMM-sized layers the segments are solved and
//! differentiated in batched chunks instead (`train/windows.rs`), with the same sums.
//!
//! Invariant: the node's backward is exact for the forward it recorded (the accepted steps are
//! constants), so a whole dfdx loss built on it matches finite differences of a replay.
//! Errors in the backward pass cannot travel through dfdx's `CpuError`; they are parked in
//! [`SolveCtx::backward_error`] and the trainer checks it after `backward()`.

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::prelude::*;
use dfdx::tensor::Tape as _;
use rand::Rng;

use super::batched::TrainingPath;
use super::forward::MIN_BATCH_ROWS;
use super::rows::{self, Rows};
use super::scratch::Scratch;
use crate::diag::Diag;
use crate::grad::{self, AdjointOptions, Integrand, JitIntegrand, JitVjpField};
use crate::sema::{Observable, Sampling};
use crate::solve::{self, Method, Solution, SolveOptions, Tableau};

/// One solve: from `u0` at `t[0]`, saved at every `t`.
#[derive(Clone, Debug)]
pub struct Segment {
    pub t: Vec<f64>,
    pub u0: Vec<f64>,
}

/// A local regularizer of this step: weight, what it estimates, how `t_r` is drawn.
#[derive(Clone, Copy, Debug)]
pub struct LocalWeight {
    pub observable: Observable,
    pub sampling: Sampling,
    pub weight: f64,
}

/// What the node shares between forward and backward.
pub struct SolveCtx {
    pub field: JitVjpField,
    /// The full parameter vector; learned entries are overwritten from `θ` on each forward.
    pub p: Vec<f64>,
    pub learned: Vec<usize>,
    pub tab: &'static Tableau,
    pub opts: SolveOptions,
    /// Observed state index per output column.
    pub columns: Vec<usize>,
    /// The integral regularizers' integrands (`kinetic`, ...), weighted per forward pass.
    pub integrand: Option<JitIntegrand>,
    pub backward_error: Option<Diag>,
    /// Buffers reused across windows and iterations.
    pub scratch: Scratch,
    /// The row workers: samples, windows run on them, one thread each (`solve::threads`).
    pub rows: Rows,
    /// How a classifier trains: batched or per row (`train/batched.rs`); `None` otherwise.
    pub training: Option<TrainingPath>,
    /// Wall seconds of the last classifier forward (encoder, solves, head, local terms) and
    /// backward (the node's VJP): for the backward/forward ratio (`benches/batched_train.rs`).
    pub timing: (f64, f64),
}

/// Regularizer weights of one forward pass (already scheduled for this iteration).
#[derive(Clone, Debug, Default)]
pub struct Weights {
    pub error: f64,
    pub stiffness: f64,
    pub local: Vec<LocalWeight>,
    /// Weights of the integral terms, in the plan's order.
    pub integrals: Vec<f64>,
    /// Seed of this pass's Hutchinson probes (`integrals::probes`).
    pub probe_seed: u64,
}

/// What the forward pass measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Forward {
    /// Weighted regularizer value (global: mean over segments; local: one sampled step).
    pub reg: f64,
    /// Field evaluations of the forward solves.
    pub nfe: u64,
}

pub(super) type Tape = OwnedTape<f64, Cpu>;
/// The node's output: observed components, `[rows, columns]`, on the learned tensor's tape.
pub type Observations = Tensor<(usize, usize), f64, Cpu, Tape>;

pub(super) fn scatter(ctx: &mut SolveCtx, theta: &[f64]) -> Result<(), Diag> {
    for (&i, &v) in ctx.learned.iter().zip(theta) {
        if let Some(x) = ctx.p.get_mut(i) {
            *x = v;
        }
    }
    let p = ctx.p.clone();
    if let Some(r) = &mut ctx.integrand {
        r.set_params(&p);
    }
    rows::set_params(&mut ctx.rows, &p)?;
    ctx.field.set_params(&p)
}

/// Solve the segments and return the observations tensor `[Σ rows, columns]` on `θ`'s tape.
/// The segments are solved on the context's row workers (`rows`); every sum over them is taken
/// afterwards, in segment order, so the result does not depend on the thread count.
pub fn solve_op(
    theta: Tensor<(usize,), f64, Cpu, Tape>,
    ctx: &Rc<RefCell<SolveCtx>>,
    segments: &[Segment],
    weights: &Weights,
    rng: &mut impl Rng,
) -> Result<(Observations, Forward), Diag> {
    let (theta, tape) = theta.split_tape();
    let mut guard = ctx.borrow_mut();
    let c = &mut *guard;
    scatter(c, &theta.as_vec())?;
    let mut opts = c.opts.clone();
    opts.keep_stages = true;
    opts.dense = weights
        .local
        .iter()
        .any(|l| l.sampling == Sampling::Unbiased);

    let ncols = c.columns.len();
    let mut out = Vec::new();
    let mut fwd = Forward::default();
    let nseg = segments.len().max(1) as f64;
    // Integral terms: mean over the segments, like the global regularizers.
    let integrals = weights.integrals.iter().any(|w| *w != 0.0) && c.integrand.is_some();
    let w: Vec<f64> = weights.integrals.iter().map(|w| w / nseg).collect();
    if let Some(r) = c.integrand.as_mut() {
        r.set_weights(&w);
    }
    rows::set_integral_weights(&mut c.rows, &w);
    let probes = match &c.integrand {
        Some(r) if integrals && r.has_probe() => super::integrals::probes(
            weights.probe_seed,
            segments.len(),
            solve::VectorField::dim(&c.field),
        ),
        _ => Vec::new(),
    };
    // The segments with observations, by their index in `segments` (the probes' numbering).
    let live: Vec<(usize, &Segment)> = (segments.iter().enumerate())
        .filter(|(_, s)| !s.t.is_empty())
        .collect();
    // Last pass's solutions, overwritten in place; the list is cut to this pass's length.
    let mut sols = std::mem::take(&mut c.scratch.sols);
    sols.resize_with(live.len(), Solution::default);
    // The batched path (`train/windows.rs`) where it was chosen and the batch is large enough
    // (never with an integral term, which only the single-row sweep folds in).
    let large = live.len() >= MIN_BATCH_ROWS && !integrals;
    let batched = (c.training).is_some_and(|t| t.batched && large);
    let segs: Vec<&Segment> = live.iter().map(|&(_, s)| s).collect();
    let blocks = match batched {
        true => {
            sols = super::windows::forward(c, &segs, &opts)?;
            vec![vec![None; sols.len()]]
        }
        false => per_segment_forward(c, &live, &mut sols, (&opts, integrals, &probes))?,
    };
    let sums = (weights, nseg);
    fwd_sums(&c.columns, &sols, blocks, sums, &mut out, &mut fwd);
    // The probe of each kept solve, for the backward pass.
    let sol_probes: Vec<Vec<f64>> = live
        .iter()
        .filter_map(|&(k, _)| probes.get(k).cloned())
        .collect();
    let (reg, local_dp) = local_terms(c, &sols, weights, &opts, rng, |_, _| Ok(()))?;
    fwd.reg += reg;
    drop(guard);

    let rows = out.len() / ncols.max(1);
    let (ew, sw) = (weights.error / nseg, weights.stiffness / nseg);
    let node = custom_node(theta, tape, out, (rows, ncols), ctx, move |c, g_out| {
        let dtheta = backward(
            c,
            &sols,
            g_out,
            (ew, sw, integrals, batched),
            &sol_probes,
            local_dp.as_deref(),
        );
        c.scratch.sols = sols;
        dtheta
    });
    Ok((node, fwd))
}

/// Each segment's solve on the row workers, one segment at a time, and its integral term
/// (when active) beside it: per block, the terms in segment order.
fn per_segment_forward(
    c: &mut SolveCtx,
    live: &[(usize, &Segment)],
    sols: &mut [Solution],
    (opts, integrals, probes): (&SolveOptions, bool, &[Vec<f64>]),
) -> Result<Vec<Vec<Option<f64>>>, Diag> {
    let tab = c.tab;
    c.rows.blocks(sols, |w, first, block| {
        let mut opts = opts.clone();
        let mut values = Vec::with_capacity(block.len());
        for (sol, &(k, seg)) in block.iter_mut().zip(&live[first..]) {
            let (Some(&t0), Some(&t1)) = (seg.t.first(), seg.t.last()) else {
                values.push(None);
                continue;
            };
            opts.save_at.clear();
            opts.save_at.extend_from_slice(&seg.t);
            let field = &mut w.field;
            solve::solve_into(Method::Explicit(tab), field, t0, t1, &seg.u0, &opts, sol)
                .map_err(Diag::from)?;
            values.push(match w.integrand.as_mut().filter(|_| integrals) {
                Some(r) => {
                    if let Some(eps) = probes.get(k) {
                        r.set_probe(eps);
                    }
                    Some(grad::integral(tab, r, sol).map_err(Diag::from)?)
                }
                None => None,
            });
        }
        Ok(values)
    })
}

/// The forward's outputs and sums over segments, in segment order: the observed components
/// onto `out`, the global regularizers (mean over the segments), NFE and integral terms.
fn fwd_sums(
    columns: &[usize],
    sols: &[Solution],
    integrals: Vec<Vec<Option<f64>>>,
    (weights, nseg): (&Weights, f64),
    out: &mut Vec<f64>,
    fwd: &mut Forward,
) {
    for (sol, integral) in sols.iter().zip(integrals.into_iter().flatten()) {
        for i in 0..sol.ts.len() {
            let u = sol.u(i).unwrap_or(&[]);
            out.extend(
                columns
                    .iter()
                    .map(|&k| u.get(k).copied().unwrap_or(f64::NAN)),
            );
        }
        let (re, rs) = grad::recorded_regularizers(sol);
        fwd.reg += (weights.error * re + weights.stiffness * rs) / nseg;
        fwd.nfe += sol.stats.nfe;
        if let Some(v) = integral {
            fwd.reg += v;
        }
    }
}

/// Puts `out` (`[rows, cols]`, row-major) on `θ`'s tape as one node whose backward maps the
/// output's cotangent to `dL/dθ` with `backward` (errors parked in the context).
pub(super) fn custom_node(
    theta: Tensor<(usize,), f64, Cpu>,
    mut tape: Tape,
    out: Vec<f64>,
    shape: (usize, usize),
    ctx: &Rc<RefCell<SolveCtx>>,
    backward: impl FnOnce(&mut SolveCtx, &[f64]) -> Result<Vec<f64>, Diag> + 'static,
) -> Observations {
    let result: Tensor<(usize, usize), f64, Cpu> = theta.device().tensor_from_vec(out, shape);
    let out_ref = result.clone();
    let ctx = Rc::clone(ctx);
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&out_ref)?;
        let g_out = grads.get(&out_ref).as_vec();
        let mut c = ctx.borrow_mut();
        match backward(&mut c, &g_out) {
            Ok(dtheta) => {
                let g = grads.get_or_alloc_mut(&theta)?;
                for (a, d) in g.iter_mut().zip(&dtheta) {
                    *a += d;
                }
            }
            Err(d) => c.backward_error = Some(d),
        }
        Ok(())
    });
    result.put_tape(tape)
}

/// The local terms: for each, one sampled step of one sampled solve (`prepare` readies the
/// field for that solve's sample, e.g. its inputs), differentiated w.r.t. `p`. Returns the
/// weighted value and `dp` (`None` when no term is active).
pub(super) fn local_terms(
    c: &mut SolveCtx,
    sols: &[Solution],
    weights: &Weights,
    opts: &SolveOptions,
    rng: &mut impl Rng,
    mut prepare: impl FnMut(&mut SolveCtx, usize) -> Result<(), Diag>,
) -> Result<(f64, Option<Vec<f64>>), Diag> {
    let mut reg = 0.0;
    let mut local_dp: Option<Vec<f64>> = None;
    for lw in &weights.local {
        if sols.is_empty() || lw.weight == 0.0 {
            continue;
        }
        let j = rng.random_range(0..sols.len());
        let sol = &sols[j];
        prepare(c, j)?;
        let (t_r, u_r) = grad::sample(sol, local_sampling(lw.sampling), rng).map_err(Diag::from)?;
        let t1 = sol.ts.last().copied().unwrap_or(t_r);
        let mut aopts = AdjointOptions::new(opts.rtol, opts.atol);
        match lw.observable {
            Observable::ErrorEstimate => aopts.error_weight = lw.weight,
            _ => aopts.stiffness_weight = lw.weight,
        }
        let tab = c.tab;
        let term =
            grad::local_term(tab, &mut c.field, t_r, &u_r, t1, &aopts).map_err(Diag::from)?;
        reg += term.value;
        let acc = local_dp.get_or_insert_with(|| vec![0.0; term.dp.len()]);
        for (a, d) in acc.iter_mut().zip(&term.dp) {
            *a += d;
        }
    }
    Ok((reg, local_dp))
}

/// `dL/dθ` from the output cotangent `g_out` (row-major like the forward's output): each
/// solve's adjoint on the row workers, its `dp` kept, and the sum taken first to last.
fn backward(
    c: &mut SolveCtx,
    sols: &[Solution],
    g_out: &[f64],
    (ew, sw, integrals, batched): (f64, f64, bool, bool),
    probes: &[Vec<f64>],
    local_dp: Option<&[f64]>,
) -> Result<Vec<f64>, Diag> {
    let mut dp = vec![0.0; c.p.len()];
    let aopts = AdjointOptions {
        rtol: c.opts.rtol,
        atol: c.opts.atol,
        error_weight: ew,
        stiffness_weight: sw,
    };
    match batched {
        true => super::windows::backward(c, sols, g_out, &aopts, &mut dp)?,
        false => per_segment_backward(c, sols, g_out, (&aopts, integrals, probes), &mut dp)?,
    }
    if let Some(l) = local_dp {
        for (a, d) in dp.iter_mut().zip(l) {
            *a += d;
        }
    }
    Ok(gather(&c.learned, &dp))
}

/// Each solve's first row in the observations (`[Σ saves, columns]`).
pub(super) fn first_rows(sols: &[Solution]) -> Vec<usize> {
    (sols.iter())
        .scan(0, |row, s| {
            let first = *row;
            *row += s.ts.len();
            Some(first)
        })
        .collect()
}

/// `dL/du` at the saved states of `sol` (whose first observation row is `row`) from the
/// observations' cotangent `g_out`, into `dl_du` (cleared first).
pub(super) fn dl_du_of(
    sol: &Solution,
    columns: &[usize],
    row: usize,
    g_out: &[f64],
    dl_du: &mut Vec<f64>,
) {
    let (n, ncols) = (sol.dim, columns.len());
    dl_du.clear();
    dl_du.resize(sol.us.len(), 0.0);
    for i in 0..sol.ts.len() {
        for (j, &k) in columns.iter().enumerate() {
            if let (Some(d), Some(&g)) =
                (dl_du.get_mut(i * n + k), g_out.get((row + i) * ncols + j))
            {
                *d += g;
            }
        }
    }
}

/// Each solve's adjoint on the row workers, its `dp` kept, and the sum taken first to last
/// into `dp`.
fn per_segment_backward(
    c: &mut SolveCtx,
    sols: &[Solution],
    g_out: &[f64],
    (aopts, integrals, probes): (&AdjointOptions, bool, &[Vec<f64>]),
    dp: &mut [f64],
) -> Result<(), Diag> {
    let np = c.p.len();
    let starts = first_rows(sols);
    let mut dps = std::mem::take(&mut c.scratch.dps);
    dps.clear();
    dps.resize(sols.len() * np, 0.0);
    let mut parts: Vec<&mut [f64]> = match np {
        0 => sols.iter().map(|_| &mut [][..]).collect(),
        _ => dps.chunks_mut(np).collect(),
    };
    let (tab, columns) = (c.tab, &c.columns);
    c.rows.blocks(&mut parts, |w, first, block| {
        // Last solve first: the reverse of the evaluation order, in which the worker's field
        // finds its recorded activations by a short scan (`grad::activations`).
        for (j, part) in block.iter_mut().enumerate().rev() {
            let k = first + j;
            let (sol, row) = (&sols[k], starts[k]);
            let dl_du = &mut w.dl_du;
            dl_du_of(sol, columns, row, g_out, dl_du);
            let r = match &mut w.integrand {
                Some(r) if integrals => {
                    if let Some(eps) = probes.get(k) {
                        r.set_probe(eps);
                    }
                    Some(r as &mut dyn Integrand)
                }
                _ => None,
            };
            let work = &mut w.adjoint;
            grad::adjoint_in(tab, &mut w.field, sol, dl_du, aopts, r, work).map_err(Diag::from)?;
            for (a, d) in part.iter_mut().zip(&work.grads().dp) {
                *a = *d;
            }
        }
        Ok(())
    })?;
    // The gradient's bits depend on the order of this sum: first solve to last, always.
    for g in dps.chunks_exact(np.max(1)) {
        for (a, d) in dp.iter_mut().zip(g) {
            *a += d;
        }
    }
    c.scratch.dps = dps;
    Ok(())
}

/// The learned entries of a full `dL/dp`, in `θ` order.
pub(super) fn gather(learned: &[usize], dp: &[f64]) -> Vec<f64> {
    learned
        .iter()
        .map(|&i| dp.get(i).copied().unwrap_or(0.0))
        .collect()
}

pub(super) fn local_sampling(s: Sampling) -> grad::Sampling {
    match s {
        Sampling::Unbiased => grad::Sampling::Unbiased,
        Sampling::Biased => grad::Sampling::Biased,
    }
}
