//! The second gradient path: the vector field lowered to dfdx tensor ops ([`lower`]) and the
//! solve unrolled on dfdx's tape ([`solve`]), so dfdx's own backward differentiates it. It is
//! the path for `--device cuda`: everything here is generic over the dfdx device, and the CPU
//! and CUDA runs differ only in the device type.
//!
//! Per evaluation: the normal adaptive solve (JIT field) picks the accepted steps; they are
//! replayed on the tape as constants with the same tableau and interpolants (the function the
//! discrete adjoint differentiates), batched over the batch's segments; `R_E`/`R_S` are built
//! from the stage values, the local terms from one replayed step. The data loss and weight
//! decay are the trainer's ([`super::trainer::objective`]), so both backends minimise the same
//! objective, and their gradients agree to rounding (tested at 1e-10).

mod lower;
mod solve;

use dfdx::prelude::*;
use rand::Rng;

pub(crate) use self::lower::dev_err;
use self::lower::{Lowered, Rec};
use self::solve::{Replay, error_term, step, stiffness_term, unroll};
use super::Segment;
use super::op::{SolveCtx, Weights, local_sampling, scatter};
use super::plan::Plan;
use super::trainer::{Evaluation, objective};
use crate::diag::Diag;
use crate::grad::{self, AdjointOptions};
use crate::ir::{Function, lower as ir_lower};
use crate::sema::{Model, Observable, Sampling};
use crate::solve::{self as solver, Solution};

/// Which gradient path trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The solve is one dfdx node whose backward is the discrete adjoint (CPU, JIT kernels).
    #[default]
    Adjoint,
    /// The field as dfdx ops, the solve unrolled on dfdx's tape.
    Tape,
}

/// Where the tape backend's tensors live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

enum Dev {
    Cpu(Cpu),
    #[cfg(feature = "cuda")]
    Cuda(Cuda),
}

/// The tape backend of one trainer: the lowered field and the device.
pub struct TapeEngine {
    field: Function,
    dev: Dev,
}

/// The diagnostic for `--device cuda` in a build without the `cuda` feature.
pub fn cuda_not_built() -> Diag {
    Diag::error(
        "glassbox::cuda_not_built",
        "this glassbox was built without CUDA support",
    )
    .help("build with `cargo build --release --features cuda` (needs the CUDA toolkit: nvcc and nvidia-smi), or train with `--device cpu`")
}

impl TapeEngine {
    pub fn new(model: &Model, device: DeviceKind, seed: u64) -> Result<TapeEngine, Diag> {
        let field = ir_lower::lower(model, ir_lower::Part::Field)?;
        let dev = match device {
            DeviceKind::Cpu => Dev::Cpu(Cpu::seed_from_u64(seed)),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => Dev::Cuda(Cuda::try_seed_from_u64(seed).map_err(dev_err)?),
            #[cfg(not(feature = "cuda"))]
            DeviceKind::Cuda => return Err(cuda_not_built()),
        };
        Ok(TapeEngine { field, dev })
    }

    /// The objective at learned values `theta` and its gradient through dfdx's tape; the same
    /// contract as the adjoint path's `Trainer::evaluate`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn evaluate(
        &self,
        ctx: &mut SolveCtx,
        plan: &Plan,
        theta: &[f64],
        segs: &[Segment],
        target: Vec<f64>,
        weights: &Weights,
        (iteration, total): (u64, u64),
        rng: &mut impl Rng,
    ) -> Result<Evaluation, Diag> {
        let job = Job {
            field: &self.field,
            plan,
            theta,
            segs,
            target,
            weights,
            iteration,
            total,
        };
        match &self.dev {
            Dev::Cpu(d) => job.run(d, ctx, rng),
            #[cfg(feature = "cuda")]
            Dev::Cuda(d) => job.run(d, ctx, rng),
        }
    }
}

struct Job<'a> {
    field: &'a Function,
    plan: &'a Plan,
    theta: &'a [f64],
    segs: &'a [Segment],
    target: Vec<f64>,
    weights: &'a Weights,
    iteration: u64,
    total: u64,
}

impl Job<'_> {
    fn run<D: Device<f64>>(
        self,
        dev: &D,
        ctx: &mut SolveCtx,
        rng: &mut impl Rng,
    ) -> Result<Evaluation, Diag> {
        let w = self.weights;
        // 1. The normal solves pick the steps (and the local terms' samples, drawn as the
        //    adjoint path draws them).
        scatter(ctx, self.theta)?;
        let mut opts = ctx.opts.clone();
        opts.keep_stages = !w.local.is_empty();
        opts.dense = w.local.iter().any(|l| l.sampling == Sampling::Unbiased);
        let tab = ctx.tab;
        let mut sols: Vec<Solution> = Vec::with_capacity(self.segs.len());
        let mut kept: Vec<&Segment> = Vec::with_capacity(self.segs.len());
        let mut nfe = 0;
        for seg in self.segs {
            let (Some(&t0), Some(&t1)) = (seg.t.first(), seg.t.last()) else {
                continue;
            };
            opts.save_at = seg.t.clone();
            let sol =
                solver::solve(tab, &mut ctx.field, t0, t1, &seg.u0, &opts).map_err(Diag::from)?;
            nfe += sol.stats.nfe;
            sols.push(sol);
            kept.push(seg);
        }
        let mut locals = Vec::new();
        for lw in &w.local {
            if sols.is_empty() || lw.weight == 0.0 {
                continue;
            }
            let sol = &sols[rng.random_range(0..sols.len())];
            let (t_r, u_r) =
                grad::sample(sol, local_sampling(lw.sampling), rng).map_err(Diag::from)?;
            let t1 = sol.ts.last().copied().unwrap_or(t_r);
            // The JIT term gives the step size (the solver's automatic initial step).
            let aopts = AdjointOptions::new(opts.rtol, opts.atol);
            let term =
                grad::local_term(tab, &mut ctx.field, t_r, &u_r, t1, &aopts).map_err(Diag::from)?;
            locals.push((*lw, term.t, term.h, u_r));
        }

        // 2. The tape: θ → p → field → unrolled solves.
        let mut rec = Rec::new(dev.clone());
        let nl = self.theta.len();
        let theta_t: lower::Mat<D> = dev
            .try_tensor_from_vec(self.theta.to_vec(), (nl, 1))
            .map_err(dev_err)?;
        let p = params(&mut rec, &theta_t, &ctx.p, &ctx.learned)?;
        let f = Lowered::new(&mut rec, self.field, &p, None)?;
        let u0: Vec<Vec<f64>> = kept.iter().map(|s| s.u0.clone()).collect();
        let steps: Vec<Vec<(f64, f64)>> = sols.iter().map(grad::step_sequence).collect();
        let save_at: Vec<Vec<f64>> = kept.iter().map(|s| s.t.clone()).collect();
        let out = unroll(
            &mut rec,
            &f,
            &Replay {
                tab,
                tol: (opts.rtol, opts.atol),
                u0: &u0,
                steps: &steps,
                save_at: &save_at,
                error: w.error != 0.0,
                stiffness: w.stiffness != 0.0,
            },
        )?;
        let n = u0.first().map_or(0, Vec::len);
        let pred = observed(&mut rec, &out.saves, n, &ctx.columns)?;

        let nseg = kept.len().max(1) as f64;
        let mut reg: Option<lower::Val<D>> = None;
        for (term, weight) in [(out.re, w.error), (out.rs, w.stiffness)] {
            if let Some(t) = term {
                let t = rec.scale(&t, weight / nseg)?;
                reg = Some(sum(&mut rec, reg, t)?);
            }
        }
        for (lw, t_r, h, u_r) in locals {
            let u = rec.constant(u_r.clone(), (1, u_r.len()), true)?;
            let tcol = rec.constant(vec![t_r], (1, 1), true)?;
            let k0 = f.eval(&mut rec, &tcol, &u)?;
            let s = step(&mut rec, &f, tab, (&[t_r], &[h]), &u, k0)?;
            let term = match lw.observable {
                Observable::ErrorEstimate => {
                    error_term(&mut rec, tab, &[h], &u, &s, (opts.rtol, opts.atol))?
                }
                _ => stiffness_term(&mut rec, tab, &[h], &s)?,
            };
            if let Some(t) = term {
                let t = rec.scale(&t, lw.weight)?;
                reg = Some(sum(&mut rec, reg, t)?);
            }
        }

        // 3. The trainer's objective on the predictions, plus the regularizers; backward.
        let reg_value = match &reg {
            Some(r) => r.x.as_vec().first().copied().unwrap_or(0.0),
            None => 0.0,
        };
        let pred_t = rec.finish(&pred);
        let loss = objective(
            self.plan,
            pred_t,
            self.target,
            &theta_t,
            self.iteration,
            self.total,
        )?;
        let value = loss.as_vec().first().copied().unwrap_or(f64::NAN);
        let full = match reg {
            Some(r) => loss
                .try_add(
                    r.x.retaped::<lower::TapeOf<D>>()
                        .try_reshape_like(&())
                        .map_err(dev_err)?,
                )
                .map_err(dev_err)?,
            None => loss,
        };
        let grads = full.try_backward().map_err(dev_err)?;
        Ok(Evaluation {
            loss: value,
            reg: reg_value,
            nfe,
            grad: grads.get(&theta_t).as_vec(),
            accuracy: None,
        })
    }
}

fn sum<D: Device<f64>>(
    rec: &mut Rec<D>,
    acc: Option<lower::Val<D>>,
    t: lower::Val<D>,
) -> Result<lower::Val<D>, Diag> {
    match acc {
        Some(a) => rec.add(&a, &t),
        None => Ok(t),
    }
}

/// The full parameter vector `[1, P]`: learned entries from `θ` (on the tape), the others
/// constants, by one gather from `[θ, p]`.
fn params<D: Device<f64>>(
    rec: &mut Rec<D>,
    theta: &lower::Mat<D>,
    p: &[f64],
    learned: &[usize],
) -> Result<lower::Val<D>, Diag> {
    let nl = learned.len();
    let th = rec.leaf(theta.clone());
    let fixed = rec.constant(p.to_vec(), (p.len(), 1), false)?;
    let both = rec.concat(&th, &fixed, true)?;
    let mut idx: Vec<usize> = (0..p.len()).map(|i| nl + i).collect();
    for (k, &i) in learned.iter().enumerate() {
        if let Some(slot) = idx.get_mut(i) {
            *slot = k;
        }
    }
    let col = rec.rows(&both, &idx)?;
    rec.reshape(&col, (1, p.len()))
}

/// The observed columns of the saved states.
fn observed<D: Device<f64>>(
    rec: &mut Rec<D>,
    saves: &lower::Val<D>,
    n: usize,
    columns: &[usize],
) -> Result<lower::Val<D>, Diag> {
    if columns.iter().copied().eq(0..n) {
        return Ok(saves.clone());
    }
    // A 0/1 selection matrix: each output column is one state, exactly.
    let mut sel = vec![0.0; n * columns.len()];
    for (j, &k) in columns.iter().enumerate() {
        if let Some(x) = sel.get_mut(k * columns.len() + j) {
            *x = 1.0;
        }
    }
    let sel = rec.constant(sel, (n, columns.len()), false)?;
    rec.matmul(saves, &sel)
}
