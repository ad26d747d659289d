//! Training SDE models: per iteration, `N` model paths (the `moments` term's `samples`,
//! default 100) on fresh Brownian paths solved from the model's initial state and saved at
//! the data's common times, one dfdx node whose backward is the SDE discrete adjoint
//! (`grad::sde_adjoint`, one per path), and the loss on dfdx's tape:
//!
//! - `moments(u, data)`: `mse(mean_N(x), mean(data)) + mse(var_N(x), var(data))` per time and
//!   column, variances unbiased (`1/(N−1)`) on both sides;
//! - `mse` / `l1` against path data: the model's mean path against the data's mean path.
//!
//! Reproducibility: the Brownian seed of iteration `i` is the first `u64` of stream
//! [`SDE_STREAM`] `+ i` of the run seed, so a rerun (or a resumed run) with the same seed draws
//! the same paths and gives bit-identical weights.
//!
//! `error_estimate` and `stiffness` (the adaptive methods' `R_E`, `R_S`, `sde_reg.rs`) add
//! `c · mean_N R_E` (`R_S`) to the objective; the adjoint of each path differentiates them with
//! the path's data loss. Their local variants (`sample = ...`, `grad::sde_local_term`) add one
//! step's `c·E·|h|` (`c·S·|h|`) on one path drawn uniformly, the draws from stream
//! `LOCAL_STREAM + i` like the ODE trainer's. The solves record `S_j` only when a global
//! `stiffness` term reads it (it may cost a drift evaluation a step).
//!
//! Invariant: every method `solve::sde` has is differentiated exactly on its recorded steps;
//! what the SDE trainer cannot do (the other regularizers, windows, data without a common time
//! grid) is a `glassbox::train_unsupported` diagnostic at plan time, never a silent skip.

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::losses::{mae_loss, mse_loss};
use dfdx::prelude::*;
use dfdx::tensor::Tape as _;
use rand::Rng;
use serde::Serialize;

use super::op::{LocalWeight, Observations, Weights};
use super::plan::{DataLoss, Plan, coef_at, data_loss, unsupported};
use super::trainer::Evaluation;
use super::trainer::LOCAL_STREAM;
use crate::data::{Dataset, batch};
use crate::diag::Diag;
use crate::grad::{JitSdeVjp, SdeRegularizer, sde_adjoint_with, sde_local_term, sde_sample};
use crate::sema::{Loss, Model, Objective, Observable, Term, TermKind, TrainSpec};
use crate::solve::registry::{self, Method};
use crate::solve::sde::{BrownianTree, SdeMethod, SdeOptions, solve_path, tree_depth};
use crate::solve::threads::Pool;
use crate::solve::{self, Solution};

/// The Brownian seed of iteration `i` comes from stream `SDE_STREAM + i` of the run seed.
pub const SDE_STREAM: u64 = 2 << 32;

/// Model paths per iteration when the loss does not say (`mse`/`l1` on an SDE).
pub const DEFAULT_SAMPLES: u64 = 100;

/// The SDE part of a [`Plan`].
#[derive(Clone, Debug, Serialize)]
pub struct SdePlan {
    #[serde(skip)]
    pub method: SdeMethod,
    /// Model paths per iteration.
    pub samples: usize,
    /// `moments` (mean and variance); otherwise the plan's `mse`/`l1` on the mean path.
    pub moments: bool,
    #[serde(skip)]
    pub opts: SdeOptions,
}

/// The plan's data loss for a `moments` term (recorded as `mse`: the SDE plan says
/// `moments`).
pub(super) fn moments_loss(model: &Model, term: &Term, second: bool) -> Result<DataLoss, Diag> {
    let TermKind::Moments { pred, data, .. } = &term.kind else {
        return Err(unsupported(
            term.span,
            "this term",
            "use `moments(u, data)`",
        ));
    };
    // Recorded as `mse`: the SDE plan says `moments`.
    data_loss(model, term, pred, *data, Loss::Mse, second)
}

/// The SDE plan of an SDE model (`None` for an ODE model): method, options, paths per
/// iteration; refuses what the SDE trainer cannot do.
pub(super) fn plan_sde(
    model: &Model,
    objective: &Objective,
    train: &TrainSpec,
) -> Result<Option<SdePlan>, Diag> {
    if model.kind != crate::sema::ModelKind::Sde {
        return Ok(None);
    }
    let spec = model.solve.as_ref();
    if train.batch.is_some() {
        return Err(unsupported(
            train.span,
            "batches of SDE data",
            "remove `batch = ...`: every iteration matches the moments of all data paths",
        ));
    }
    let name = spec.map_or(Method::Sosri, |s| s.method);
    let Some(method) = name.sde() else {
        return Err(Diag::error(
            "glassbox::train_unsupported",
            format!("`{name}` is not an SDE method"),
        )
        .label(
            spec.map(|s| s.span).unwrap_or(train.span),
            "not an SDE method",
        )
        .help(format!(
            "use {}",
            registry::one_of(&registry::names(Method::is_sde))
        )));
    };
    super::sde_reg::check_terms(objective, method, spec.map(|s| s.span))?;
    let o = spec.map(|s| s.options.clone()).unwrap_or_default();
    let d = SdeOptions::default();
    let mut opts = SdeOptions {
        rtol: o.rtol.unwrap_or(d.rtol),
        atol: o.atol.unwrap_or(d.atol),
        h0: o.h0,
        dt: o.dt,
        stiffness: super::sde_reg::global_stiffness(objective),
        ..d
    };
    if let Some(m) = o.max_steps {
        opts.max_steps = usize::try_from(m).unwrap_or(usize::MAX);
    }
    if opts.dt.is_none() && !method.is_adaptive() {
        return Err(Diag::error(
            "glassbox::train_unsupported",
            format!("`{name}` is a fixed-step method and the solve clause gives no `dt`"),
        )
        .label(
            spec.map(|s| s.span).unwrap_or(train.span),
            "needs `dt = ...`",
        )
        .help(format!("write e.g. `solve {name}(dt = 0.01)`")));
    }
    let samples = objective.terms.iter().find_map(|t| match t.kind {
        TermKind::Moments { samples, .. } => Some(samples),
        _ => None,
    });
    let moments = samples.is_some();
    let samples = samples.unwrap_or(DEFAULT_SAMPLES);
    if moments && samples < 2 {
        let span = objective
            .terms
            .first()
            .map(|t| t.span)
            .unwrap_or(train.span);
        return Err(Diag::error(
            "glassbox::train_unsupported",
            "a variance needs at least 2 sample paths",
        )
        .label(span, "samples = 1")
        .help("use `samples = 2` or more (100 is the default)"));
    }
    Ok(Some(SdePlan {
        method,
        samples: usize::try_from(samples).unwrap_or(usize::MAX),
        moments,
        opts,
    }))
}

/// Mean and unbiased variance (Welford) over rows of equal length; variance 0 for one row.
fn moments_of<'a>(rows: impl Iterator<Item = &'a [f64]>, len: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut mean, mut m2) = (vec![0.0; len], vec![0.0; len]);
    let mut k = 0usize;
    for row in rows {
        k += 1;
        for ((m, s), &x) in mean.iter_mut().zip(&mut m2).zip(row) {
            let d = x - *m;
            *m += d / k as f64;
            *s += d * (x - *m);
        }
    }
    let var = m2
        .iter()
        .map(|s| s / k.saturating_sub(1).max(1) as f64)
        .collect();
    (mean, var)
}

/// What the paths node shares between forward and backward.
struct PathsCtx {
    field: JitSdeVjp,
    /// One copy of `field` per thread: the paths run on them (`solve::threads`).
    paths: Pool<JitSdeVjp>,
    p: Vec<f64>,
    learned: Vec<usize>,
    columns: Vec<usize>,
    method: SdeMethod,
    opts: SdeOptions,
    u0: Vec<f64>,
    /// Weights of `R_E`, `R_S` per path this forward pass (the terms' coefficients over the
    /// paths).
    error_weight: f64,
    stiffness_weight: f64,
    backward_error: Option<Diag>,
}

/// The SDE half of a [`super::Trainer`]: the compiled SDE and the data's moments.
pub struct SdeTrainer {
    ctx: Rc<RefCell<PathsCtx>>,
    samples: usize,
    moments: bool,
    /// The data's mean and variance over paths, `[times, columns]` row-major.
    mean: Vec<f64>,
    var: Vec<f64>,
    dev: Cpu,
}

fn not_a_grid() -> Diag {
    Diag::error(
        "glassbox::train_unsupported",
        "the SDE's data paths are not observed at common times",
    )
    .help("observe every path at the same times (the moments are taken per time)")
}

impl SdeTrainer {
    /// `None` for a plan without an SDE part.
    pub(super) fn new(
        model: &Model,
        plan: &Plan,
        data: &Dataset,
    ) -> Result<Option<SdeTrainer>, Diag> {
        let Some(sp) = &plan.sde else {
            return Ok(None);
        };
        let Dataset::Trajectories {
            times: Some(times),
            paths,
        } = data
        else {
            return Err(not_a_grid());
        };
        let ts = times.to_vec();
        if ts.len() < 2 {
            return Err(not_a_grid().help("the SDE data needs at least two times"));
        }
        let ncols = plan.loss.columns.len();
        let rows: Vec<Vec<f64>> = paths
            .iter()
            .map(|p| p.y.iter().copied().collect())
            .collect();
        let (mean, var) = moments_of(rows.iter().map(|r| r.as_slice()), ts.len() * ncols);
        let p = solve::param_values(model);
        let field = JitSdeVjp::new(model, &p, &[], matches!(sp.method, SdeMethod::Milstein))?;
        let u0 = solve::initial_state(model, &p, &[], ts[0])?;
        let mut opts = sp.opts.clone();
        opts.save_at = ts;
        let paths = Pool::new(plan.threads, || Ok(field.fork()))?;
        let ctx = PathsCtx {
            paths,
            field,
            p,
            learned: plan.learned.clone(),
            columns: plan.loss.columns.clone(),
            method: sp.method,
            opts,
            u0,
            error_weight: 0.0,
            stiffness_weight: 0.0,
            backward_error: None,
        };
        Ok(Some(SdeTrainer {
            ctx: Rc::new(RefCell::new(ctx)),
            samples: sp.samples,
            moments: sp.moments,
            mean,
            var,
            dev: Cpu::default(),
        }))
    }

    /// The objective at learned values `theta` on iteration `iteration`'s Brownian paths,
    /// and its gradient through dfdx (the node's backward is the SDE adjoint). `weights.error`
    /// and `weights.stiffness` weigh `R_E` and `R_S` averaged over the paths (the plan refuses
    /// the other solver regularizers).
    pub(super) fn evaluate(
        &self,
        theta: &[f64],
        plan: &Plan,
        weights: &Weights,
        (iteration, total): (u64, u64),
    ) -> Result<Evaluation, Diag> {
        let theta_t = self.dev.tensor_from_vec(theta.to_vec(), (theta.len(),));
        let seed = brownian_seed(plan.seed, iteration);
        if let Some(sp) = &plan.sde {
            // The plan's options are public (a test freezes the steps with `dt`).
            let mut c = self.ctx.borrow_mut();
            let save_at = std::mem::take(&mut c.opts.save_at);
            c.opts = SdeOptions {
                save_at,
                ..sp.opts.clone()
            };
            c.error_weight = weights.error / self.samples.max(1) as f64;
            c.stiffness_weight = weights.stiffness / self.samples.max(1) as f64;
        }
        let mut rng = batch::rng(plan.seed, LOCAL_STREAM + iteration);
        let local = Local {
            weights: &weights.local,
            rng: &mut rng,
        };
        let (x, nfe, reg) = paths_op(theta_t.leaky_trace(), &self.ctx, seed, self.samples, local)?;
        let cols = self.mean.len();
        let mean_d = self.dev.tensor_from_vec(self.mean.clone(), (cols,));
        let coef = coef_at(plan.loss.coef, iteration, total);
        let mut loss = if self.moments {
            // The mean's copy starts an empty tape; the node's backward stays on `x`'s,
            // which the variance carries into the sum.
            let mean_m = x.retaped::<Tape>().mean::<(usize,), Axis<0>>();
            // dfdx's `var` divides by N; the data's variance is unbiased, so is the model's.
            let n = self.samples as f64;
            let var_m = x.var::<(usize,), Axis<0>>() * (n / (n - 1.0));
            let var_d = self.dev.tensor_from_vec(self.var.clone(), (cols,));
            mse_loss(mean_m, mean_d) + mse_loss(var_m, var_d)
        } else if plan.loss.loss == Loss::L1 {
            mae_loss(x.mean::<(usize,), Axis<0>>(), mean_d)
        } else {
            mse_loss(x.mean::<(usize,), Axis<0>>(), mean_d)
        } * coef;
        for &c in &plan.weight_decay {
            let w = coef_at(c, iteration, total);
            loss = loss + theta_t.leaky_trace().square().sum() * w;
        }
        let value = loss.array();
        let grads = loss.backward();
        if let Some(d) = self.ctx.borrow_mut().backward_error.take() {
            return Err(d);
        }
        Ok(Evaluation {
            loss: value,
            reg,
            nfe,
            grad: grads.get(&theta_t).as_vec(),
            accuracy: None,
        })
    }
}

type Tape = OwnedTape<f64, Cpu>;

/// The Brownian seed of iteration `i` of a run with seed `seed`.
pub fn brownian_seed(seed: u64, i: u64) -> u64 {
    batch::rng(seed, SDE_STREAM.wrapping_add(i)).random()
}

fn tree(ctx: &PathsCtx, seed: u64, path: usize) -> BrownianTree {
    tree_of(&ctx.opts, ctx.field_processes(), seed, path)
}

/// Path `path`'s Brownian tree of `m` processes over the span of `opts`.
fn tree_of(opts: &SdeOptions, m: usize, seed: u64, path: usize) -> BrownianTree {
    let (t0, t1) = span(opts);
    BrownianTree::with_depth(seed, path as u64, t0, t1, m, tree_depth(t0, t1, opts))
}

fn span(opts: &SdeOptions) -> (f64, f64) {
    let t0 = opts.save_at.first().copied().unwrap_or(0.0);
    (t0, opts.save_at.last().copied().unwrap_or(t0))
}

impl PathsCtx {
    fn field_processes(&self) -> usize {
        use crate::solve::sde::SdeField;
        self.field.noise().processes()
    }
}

/// The local terms of one forward pass and the stream their draws come from.
struct Local<'a, R: Rng> {
    weights: &'a [LocalWeight],
    rng: &'a mut R,
}

/// Paths `0..samples` of Brownian seed `seed` as a `[samples, times·columns]` tensor on
/// `θ`'s tape, the forward solves' NFE and the weighted `R_E`, `R_S` (from the solver's
/// records) plus the local terms (each on one path drawn uniformly).
fn paths_op<R: Rng>(
    theta: Tensor<(usize,), f64, Cpu, Tape>,
    ctx: &Rc<RefCell<PathsCtx>>,
    seed: u64,
    samples: usize,
    local: Local<R>,
) -> Result<(Observations, u64, f64), Diag> {
    let (theta, mut tape) = theta.split_tape();
    let dev = theta.device().clone();
    let mut c = ctx.borrow_mut();
    for (&i, &v) in c.learned.clone().iter().zip(&theta.as_vec()) {
        if let Some(x) = c.p.get_mut(i) {
            *x = v;
        }
    }
    let p = c.p.clone();
    c.field.set_params(&p)?;
    for f in c.paths.workers_mut() {
        f.set_params(&p)?;
    }
    // The paths on the workers' threads; the sums over paths below, in path order.
    let mut sols = vec![Solution::default(); samples];
    let cr = &mut *c;
    let (method, u0, opts) = (cr.method, &cr.u0, &cr.opts);
    let m = cr.field_processes();
    let trees = |k| tree_of(opts, m, seed, k);
    cr.paths.blocks(&mut sols, |field, first, block| {
        for (j, sol) in block.iter_mut().enumerate() {
            *sol = solve_path(method, field, u0, opts, &trees(first + j)).map_err(Diag::from)?;
        }
        Ok(())
    })?;
    let mut out = Vec::new();
    let (mut nfe, mut reg) = (0, 0.0);
    for sol in &sols {
        for i in 0..sol.ts.len() {
            let u = sol.u(i).unwrap_or(&[]);
            out.extend(
                c.columns
                    .iter()
                    .map(|&j| u.get(j).copied().unwrap_or(f64::NAN)),
            );
        }
        nfe += sol.stats.nfe;
        let (r_e, r_s) = crate::grad::recorded_regularizers(sol);
        reg += c.error_weight * r_e + c.stiffness_weight * r_s;
    }
    let mut local_dp: Option<Vec<f64>> = None;
    for lw in local.weights {
        if sols.is_empty() || lw.weight == 0.0 {
            continue;
        }
        let k = local.rng.random_range(0..sols.len());
        let tr = tree(&c, seed, k);
        let (method, u0, opts) = (c.method, c.u0.clone(), c.opts.clone());
        let sampling = super::op::local_sampling(lw.sampling);
        let (t_r, u_r) = sde_sample(
            method,
            &mut c.field,
            &sols[k],
            &u0,
            &tr,
            sampling,
            local.rng,
        )
        .map_err(Diag::from)?;
        let t1 = tr.span().1;
        let stiffness = lw.observable == Observable::Stiffness;
        let weights = SdeRegularizer {
            opts: &opts,
            error_weight: if stiffness { 0.0 } else { lw.weight },
            stiffness_weight: if stiffness { lw.weight } else { 0.0 },
        };
        let term = sde_local_term(method, &mut c.field, &tr, (t_r, &u_r), t1, &weights)
            .map_err(Diag::from)?;
        reg += term.value;
        let acc = local_dp.get_or_insert_with(|| vec![0.0; term.dp.len()]);
        for (a, d) in acc.iter_mut().zip(&term.dp) {
            *a += d;
        }
    }
    drop(c);
    let width = out.len() / samples.max(1);
    let result: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(out, (samples, width));
    let out_ref = result.clone();
    let theta_ref = theta.clone();
    let ctx = Rc::clone(ctx);
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&out_ref)?;
        let g_out = grads.get(&out_ref).as_vec();
        let mut c = ctx.borrow_mut();
        match backward(&mut c, &sols, &g_out, seed, local_dp.as_deref()) {
            Ok(dtheta) => {
                let g = grads.get_or_alloc_mut(&theta_ref)?;
                for (a, d) in g.iter_mut().zip(&dtheta) {
                    *a += d;
                }
            }
            Err(d) => c.backward_error = Some(d),
        }
        Ok(())
    });
    Ok((result.put_tape(tape), nfe, reg))
}

/// `dL/dθ` from the node's output cotangent (row `k`: path `k`, `[times, columns]`).
fn backward(
    c: &mut PathsCtx,
    sols: &[Solution],
    g_out: &[f64],
    seed: u64,
    local_dp: Option<&[f64]>,
) -> Result<Vec<f64>, Diag> {
    let ncols = c.columns.len();
    let mut offsets = Vec::with_capacity(sols.len());
    let mut off = 0;
    for sol in sols {
        offsets.push(off);
        off += sol.ts.len() * ncols;
    }
    let (method, u0, opts, columns) = (c.method, &c.u0, &c.opts, &c.columns);
    let processes = c.field_processes();
    let reg = SdeRegularizer {
        opts,
        error_weight: c.error_weight,
        stiffness_weight: c.stiffness_weight,
    };
    // Each path's `dp` on the workers' threads, then the sum in path order.
    let mut idx: Vec<usize> = (0..sols.len()).collect();
    let dps = c.paths.blocks(&mut idx, |field, _, block| {
        let mut dps = Vec::with_capacity(block.len());
        for &k in block.iter() {
            let sol = &sols[k];
            let n = sol.dim;
            let mut dl_du = vec![0.0; sol.us.len()];
            for i in 0..sol.ts.len() {
                for (j, &s) in columns.iter().enumerate() {
                    if let (Some(d), Some(&g)) = (
                        dl_du.get_mut(i * n + s),
                        g_out.get(offsets[k] + i * ncols + j),
                    ) {
                        *d += g;
                    }
                }
            }
            let tr = tree_of(opts, processes, seed, k);
            let (g, _) =
                sde_adjoint_with(method, field, sol, u0, &tr, &dl_du, &reg).map_err(Diag::from)?;
            dps.push(g.dp);
        }
        Ok(dps)
    })?;
    let mut dp = local_dp.map_or_else(|| vec![0.0; c.p.len()], <[f64]>::to_vec);
    for g in dps.iter().flatten() {
        for (a, d) in dp.iter_mut().zip(g) {
            *a += d;
        }
    }
    Ok(super::op::gather(&c.learned, &dp))
}

/// The model's mean path over the plan's `samples` paths (Brownian seed: the run seed's
/// iteration-0 seed), saved at `t`, from the initial state at `t[0]`: what `predict`, the
/// final report and the fit plot show for an SDE. NFE summed over the paths.
pub fn predict_mean(
    model: &Model,
    p: &[f64],
    plan: &Plan,
    sp: &SdePlan,
    t: &[f64],
) -> Result<Solution, Diag> {
    if t.len() < 2 {
        return Err(Diag::error("glassbox::bad_argument", "no prediction times")
            .help("give at least two times"));
    }
    let mut field = JitSdeVjp::new(model, p, &[], matches!(sp.method, SdeMethod::Milstein))?;
    let u0 = solve::initial_state(model, p, &[], t[0])?;
    let mut opts = sp.opts.clone();
    opts.save_at = t.to_vec();
    // Prediction reads no `S_j`: its NFE is the model's cost alone.
    opts.stiffness = false;
    let (t0, t1) = span(&opts);
    let seed = brownian_seed(plan.seed, 0);
    let sol = solve::sde::solve_sde(sp.method, &mut field, t0, t1, &u0, &opts, seed, sp.samples)
        .map_err(Diag::from)?;
    let n = model.state_size;
    let (mean, _) = moments_of(sol.paths.iter().map(|s| s.us.as_slice()), t.len() * n);
    Ok(Solution {
        method: sp.method.name(),
        dim: n,
        ts: t.to_vec(),
        us: mean,
        steps: Vec::new(),
        stats: sol.stats,
        dense: None,
    })
}

/// The data's mean path (times and row-major `[times, columns]`), for reports and plots.
pub fn data_mean(data: &Dataset) -> Option<(Vec<f64>, Vec<f64>)> {
    let Dataset::Trajectories {
        times: Some(times),
        paths,
    } = data
    else {
        return None;
    };
    let len = paths.first()?.y.len();
    let rows: Vec<Vec<f64>> = paths
        .iter()
        .map(|p| p.y.iter().copied().collect())
        .collect();
    Some((
        times.to_vec(),
        moments_of(rows.iter().map(|r| r.as_slice()), len).0,
    ))
}
