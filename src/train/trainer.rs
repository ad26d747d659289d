//! The training loop for trajectory models: per iteration, draw a batch (`data::batch::Sampler`),
//! build the segments to solve (windows start at their first observation; whole trajectories
//! at the model's initial state), run the solve node ([`op::solve_op`]) inside a dfdx loss,
//! backpropagate, and update the learned tensor with the model's optimiser.
//!
//! Reproducibility: every random draw comes from the run's seed — the split from
//! `SPLIT_STREAM`, batches from `BATCH_STREAM` (one `Sampler`), local regularizer samples from
//! stream `LOCAL_STREAM + iteration`, STEER's end times from `STEER_STREAM + iteration` — so a run is a pure function of (model, data, seed,
//! iterations), and [`Trainer::resume`] rebuilds the exact state of iteration `k` from a
//! [`TrainState`] by replaying the sampler's `k` draws.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use dfdx::losses::{cross_entropy_with_logits_loss, mae_loss, mse_loss};
use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use super::classify::Classify;
use super::integrals;
use super::op::{self, Forward, LocalWeight, Observations, Segment, SolveCtx, Weights};
use super::optim::{self, OptState};
use super::plan::{Overrides, Plan, coef_at, plan};
use super::tape::{Backend, DeviceKind, TapeEngine, dev_err};
use crate::data::Dataset;
use crate::data::batch::{self, Draw, Sampler};
use crate::diag::Diag;
use crate::grad::JitVjpField;
use crate::sema::{Batch, Loss, Model, Observable, Stop, TExprKind};
use crate::solve::{self, JitField, Method, Solution};

/// Local regularizer samples of iteration `i` come from stream `LOCAL_STREAM + i`.
pub const LOCAL_STREAM: u64 = 1 << 32;

/// One iteration's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub iteration: u64,
    /// Data loss (with its coefficient) plus weight decay.
    pub loss: f64,
    /// Weighted solver regularizers.
    pub reg: f64,
    /// Field evaluations of the forward solves.
    pub nfe: u64,
    /// Wall time of the iteration, seconds.
    pub time_s: f64,
    /// Classifiers: the batch's accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// The data loss on the `split`'s validation part (no coefficient, no regularizers), at
    /// the end of each epoch (`validate.rs` says when).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
}

/// Everything a resumed run needs: the learned values, the optimiser state, the iteration
/// count and the history. Serialised as JSON, with `θ` and the optimiser buffers as f64 bit
/// patterns so a resumed run continues from exactly the same numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub model: String,
    pub seed: u64,
    pub iteration: u64,
    pub total: u64,
    #[serde(with = "super::io::bits")]
    pub theta: Vec<f64>,
    pub opt: OptState,
    pub metrics: Vec<Metric>,
}

/// A loss value and its gradient w.r.t. the learned values (for tests and one step).
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub loss: f64,
    pub reg: f64,
    pub nfe: u64,
    pub grad: Vec<f64>,
    /// Classifiers: the batch's accuracy.
    pub accuracy: Option<f64>,
}

pub struct Trainer {
    pub plan: Plan,
    pub(super) model: Model,
    /// The training part of the data.
    pub(super) data: Dataset,
    /// The validation part (`split`).
    pub(super) valid: Option<Dataset>,
    /// Which samples of the file the validation part holds (`run.json`'s `split`).
    held_out: Option<batch::HeldOut>,
    pub(super) classify: Option<Rc<Classify>>,
    pub(super) ctx: Rc<RefCell<SolveCtx>>,
    theta: Tensor<(usize,), f64, Cpu>,
    sampler: Sampler,
    state: TrainState,
    /// SDE models: the paths node and the data's moments (`train/sde.rs`).
    sde: Option<super::sde::SdeTrainer>,
    /// The tape backend, when chosen ([`Trainer::set_backend`]); the adjoint otherwise.
    tape: Option<TapeEngine>,
}

fn train_diag(model: &Model, d: Diag) -> Diag {
    match (&model.train, d.labels.is_empty()) {
        (Some(t), true) => d.label(t.span, "while training with this clause"),
        _ => d,
    }
}

/// A solve that fails after training has moved the parameters (iteration > 0) says at which
/// iteration, and that training led there: a learning rate too large for the field is the
/// usual cause (`lr = 1e6` on the spiral ends in `max_steps`, not in a non-finite loss).
fn failed_solve_at(mut d: Diag, i: u64) -> Diag {
    const DIVERGING: [&str; 5] = [
        "glassbox::max_steps",
        "glassbox::step_underflow",
        "glassbox::span_too_long",
        "glassbox::non_finite_state",
        "glassbox::stiff_for_explicit",
    ];
    if i > 0 && DIVERGING.contains(&d.code) {
        d.message = format!("iteration {i}: {}", d.message);
        d.help = Some(format!(
            "the solve worked with the initial parameters, so training moved them to where it \
             fails (after iteration {i}): lower the learning rate in the `train` clause"
        ));
    }
    d
}

/// Iterations per epoch for `stop = epochs`: batches of N → ⌈len/N⌉; full batches and
/// windows → 1.
pub(super) fn per_epoch(batch: Option<Batch>, len: usize) -> u64 {
    match batch {
        Some(Batch::Size { n }) if n > 0 => (len as u64).div_ceil(n),
        _ => 1,
    }
}

impl Trainer {
    /// A fresh run. `datasets` are the model's data sources, loaded (`data::load_model`).
    pub fn new(model: &Model, datasets: Vec<Dataset>, ov: &Overrides) -> Result<Trainer, Diag> {
        let plan = plan(model, ov)?;
        super::forward::check_trainable(model, &plan)?;
        let Some(data) = datasets.into_iter().nth(plan.loss.data) else {
            return Err(Diag::error(
                "glassbox::train_missing",
                "the loss's data source was not loaded",
            )
            .help("load every data source of the model (`data::load_model`)"));
        };
        if plan.loss.loss == Loss::CrossEntropy
            && (!plan.integrals.is_empty() || plan.steer.is_some())
        {
            return Err(Diag::error(
                "glassbox::train_unsupported",
                "a classifier cannot train with `kinetic`, `jacobian_frobenius`, `taylor` or `steer` yet",
            )
            .help("use `error_estimate` or `stiffness` (global or sampled) to regularize a classifier"));
        }
        let classify = match plan.loss.loss {
            Loss::CrossEntropy => Some(Rc::new(
                Classify::new(model).map_err(|d| train_diag(model, d))?,
            )),
            _ => None,
        };
        let paths: &[crate::data::Trajectory] = match (&data, &classify) {
            (Dataset::Trajectories { paths, .. }, _) => paths,
            (Dataset::Table { .. }, Some(c)) => c
                .table(model, &data)
                .map(|_| &[][..])
                .map_err(|d| train_diag(model, d))?,
            _ => return Err(train_diag(
                model,
                Diag::error(
                    "glassbox::train_unsupported",
                    "the loss's data is a table; the trajectory trainer needs time series",
                )
                .help("compare states with time-series data, or use `cross_entropy(logits, label)` with a table"),
            )),
        };
        if let Some(p) = paths
            .iter()
            .find(|p| p.y.ncols() != plan.loss.columns.len())
        {
            return Err(train_diag(
                model,
                Diag::error(
                    "glassbox::train_shape",
                    format!(
                        "the data has {} columns, the prediction {}",
                        p.y.ncols(),
                        plan.loss.columns.len()
                    ),
                )
                .help("compare as many states as the data source declares columns"),
            ));
        }
        let windows = matches!(plan.batch, Some(Batch::Windows { .. }));
        if windows {
            let mut cols = plan.loss.columns.clone();
            cols.sort_unstable();
            if cols != (0..model.state_size).collect::<Vec<_>>() {
                return Err(train_diag(
                    model,
                    Diag::error(
                        "glassbox::train_unsupported",
                        "windows start from their first observation, but the data does not observe every state",
                    )
                    .help("observe every state once, or train on whole trajectories (no `batch = windows(...)`)"),
                ));
            }
        } else if classify.is_none()
            && let Some(s) = model
                .states
                .iter()
                .find(|s| !matches!(s.init.kind, TExprKind::Const { .. }))
        {
            return Err(Diag::error(
                "glassbox::train_unsupported",
                format!("the initial value of `{}` is computed; only constant initial states train yet", s.name),
            )
            .label(s.span, "computed initial state")
            .help("give a constant initial value, or use `batch = windows(...)` to start from the data"));
        }
        let (data, valid, held_out) = match plan.split {
            Some(f) => {
                let s = batch::split(&data, f, &mut batch::rng(plan.seed, batch::SPLIT_STREAM))
                    .map_err(|d| train_diag(model, d))?;
                (s.train, Some(s.valid), Some(s.held_out))
            }
            None => (data, None, None),
        };

        if let Some(s) = plan.steer {
            integrals::check_steer(s.b, s.span, &data)?;
        }
        let sde =
            super::sde::SdeTrainer::new(model, &plan, &data).map_err(|d| train_diag(model, d))?;
        let p = solve::param_values(model);
        let inputs: usize = model.inputs.iter().map(|i| i.shape.size()).sum();
        let mut field = JitVjpField::new(model, &p, &vec![0.0; inputs])?;
        // The adjoint's VJPs sit at the forward stages: reuse their activations.
        field.share_activations()?;
        let theta0: Vec<f64> = plan.learned.iter().map(|&i| p[i]).collect();
        let dev = Cpu::seed_from_u64(plan.seed);
        let theta = dev.tensor_from_vec(theta0.clone(), (theta0.len(),));
        let total = match plan.stop {
            Stop::Iterations { n } => n,
            Stop::Epochs { n } => n.saturating_mul(per_epoch(plan.batch, data.len())),
        };
        let state = TrainState {
            model: model.name.clone(),
            seed: plan.seed,
            iteration: 0,
            total,
            opt: OptState::new(theta0.len()),
            theta: theta0,
            metrics: Vec::new(),
        };
        let integrand = integrals::compile(model, &plan.integrals, &p)?;
        let cls = classify.as_deref();
        let mut rows = super::rows::rows(plan.threads, &field, cls, integrand.as_ref())?;
        let training = match &classify {
            Some(_) => {
                let batch = match plan.batch {
                    Some(Batch::Size { n }) => n as usize,
                    _ => data.len(),
                };
                let path = super::batched::prepare(model, &mut rows, &p, batch, plan.step_control);
                Some(path.map_err(|d| train_diag(model, d))?)
            }
            // A trajectory model's segments per iteration (`train/windows.rs`).
            None if sde.is_none() => {
                let segments = match plan.batch {
                    Some(Batch::Windows { count, .. }) => count as usize,
                    Some(Batch::Size { n }) => (n as usize).min(data.len()),
                    None => data.len(),
                };
                let path = super::windows::prepare(model, &plan, &mut rows, &p, segments);
                Some(path.map_err(|d| train_diag(model, d))?)
            }
            None => None,
        };
        let ctx = SolveCtx {
            field,
            p,
            learned: plan.learned.clone(),
            tab: plan.tab,
            opts: plan.solve.clone(),
            columns: plan.loss.columns.clone(),
            integrand,
            backward_error: None,
            scratch: Default::default(),
            rows,
            training,
            timing: (0.0, 0.0),
        };
        Ok(Trainer {
            sampler: Sampler::new(plan.seed, plan.batch),
            plan,
            model: model.clone(),
            data,
            valid,
            held_out,
            classify,
            ctx: Rc::new(RefCell::new(ctx)),
            theta,
            state,
            sde,
            tape: None,
        })
    }

    /// Train with `backend` on `device` (CUDA only with the tape backend and the `cuda`
    /// feature); the default is the adjoint on the CPU.
    pub fn set_backend(&mut self, backend: Backend, device: DeviceKind) -> Result<(), Diag> {
        self.tape = match (backend, device) {
            (Backend::Adjoint, DeviceKind::Cpu) => None,
            (Backend::Adjoint, DeviceKind::Cuda) => {
                return Err(Diag::error(
                    "glassbox::train_backend",
                    "the adjoint backend runs on the CPU only",
                )
                .help("`--device cuda` trains with the tape backend: drop `--backend adjoint`"));
            }
            (Backend::Tape, _) if self.classify.is_some() => {
                return Err(Diag::error(
                    "glassbox::train_backend",
                    "the tape backend trains trajectory models only, not classifiers",
                )
                .help("train classifiers with the default adjoint backend"));
            }
            (Backend::Tape, _) if self.sde.is_some() => {
                return Err(Diag::error(
                    "glassbox::train_backend",
                    "the tape backend trains ODE models only",
                )
                .help("train SDE models with the default adjoint backend"));
            }
            (Backend::Tape, _) if !self.plan.integrals.is_empty() || self.plan.steer.is_some() => {
                return Err(Diag::error(
                    "glassbox::train_backend",
                    "the tape backend does not unroll `kinetic`, `jacobian_frobenius`, `taylor` or `steer`",
                )
                .help("train with the default adjoint backend, or drop those terms"));
            }
            (Backend::Tape, d) => Some(TapeEngine::new(&self.model, d, self.plan.seed)?),
        };
        Ok(())
    }

    /// Continue a run from `state` (a checkpoint of the same model, seed and data): the result
    /// equals the uninterrupted run's bit for bit.
    pub fn resume(
        model: &Model,
        datasets: Vec<Dataset>,
        ov: &Overrides,
        state: TrainState,
    ) -> Result<Trainer, Diag> {
        let ov = Overrides {
            seed: Some(state.seed),
            stop: ov.stop.or(Some(Stop::Iterations { n: state.total })),
            ..*ov
        };
        let mut t = Trainer::new(model, datasets, &ov)?;
        if state.model != model.name || state.theta.len() != t.state.theta.len() {
            return Err(Diag::error(
                "glassbox::train_state_mismatch",
                format!(
                    "the checkpoint is of model `{}` with {} learned values; `{}` learns {}",
                    state.model,
                    state.theta.len(),
                    model.name,
                    t.state.theta.len()
                ),
            )
            .help("resume with the model file the run was started from"));
        }
        for _ in 0..state.iteration {
            t.sampler.next(&t.data).map_err(|d| train_diag(model, d))?;
        }
        t.theta = t
            .theta
            .device()
            .tensor_from_vec(state.theta.clone(), (state.theta.len(),));
        let total = t.state.total;
        t.state = TrainState { total, ..state };
        Ok(t)
    }

    /// How a classifier (`train/batched.rs`) or a trajectory model's segments
    /// (`train/windows.rs`) train, batched or per row; `None` for SDEs and the tape backend.
    pub fn training_path(&self) -> Option<super::batched::TrainingPath> {
        match self.tape {
            Some(_) => None,
            None => self.ctx.borrow().training,
        }
    }

    /// Wall seconds of the last classifier evaluation's forward and backward (the solve node's
    /// two halves; dfdx's loss is in neither).
    pub fn last_timing(&self) -> (f64, f64) {
        self.ctx.borrow().timing
    }

    /// Trains a classifier per row (a trajectory model per segment) from now on, whatever the
    /// automatic choice was: for A/B comparisons of the two paths in one process (tests,
    /// benchmarks).
    pub fn train_per_row(&mut self) {
        if let Some(t) = &mut self.ctx.borrow_mut().training {
            t.batched = false;
        }
    }

    /// Which samples of the data validate (`split`), in the file's numbering.
    pub fn held_out(&self) -> Option<&batch::HeldOut> {
        self.held_out.as_ref()
    }

    pub fn state(&self) -> &TrainState {
        &self.state
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn done(&self) -> bool {
        self.state.iteration >= self.state.total
    }

    /// The full parameter vector with the current learned values.
    pub fn params(&self) -> Vec<f64> {
        let mut p = self.ctx.borrow().p.clone();
        for (&i, &v) in self.plan.learned.iter().zip(&self.state.theta) {
            p[i] = v;
        }
        p
    }

    /// The regularizer weights at iteration `i`.
    pub fn weights(&self, i: u64) -> Weights {
        let mut w = Weights::default();
        for r in &self.plan.regularizers {
            let c = coef_at(r.coef, i, self.state.total);
            match (r.sample, r.observable) {
                (None, Observable::ErrorEstimate) => w.error += c,
                (None, _) => w.stiffness += c,
                (Some(sampling), observable) => w.local.push(LocalWeight {
                    observable,
                    sampling,
                    weight: c,
                }),
            }
        }
        w.integrals = (self.plan.integrals.iter())
            .map(|r| coef_at(r.coef, i, self.state.total))
            .collect();
        w.probe_seed = integrals::probe_seed(self.plan.seed, i);
        w
    }

    /// The segments and the stacked targets (row-major `[rows, columns]`) of a draw.
    pub fn segments(&self, draw: &Draw) -> Result<(Vec<Segment>, Vec<f64>), Diag> {
        let Dataset::Trajectories { paths, .. } = &self.data else {
            return Ok((Vec::new(), Vec::new()));
        };
        let cols = &self.plan.loss.columns;
        let mut segs = Vec::new();
        let mut target = Vec::new();
        match draw {
            Draw::Windows(ws) => {
                for w in ws {
                    let Some(traj) = paths.get(w.path) else {
                        continue;
                    };
                    let y = w.y(traj);
                    let mut u0 = vec![0.0; self.model.state_size];
                    for (j, &k) in cols.iter().enumerate() {
                        u0[k] = y[[0, j]];
                    }
                    segs.push(Segment {
                        t: w.t(traj).to_vec(),
                        u0,
                    });
                    target.extend(y.iter().copied());
                }
            }
            Draw::Samples(idx) => {
                let p = self.params();
                for &i in idx {
                    let Some(traj) = paths.get(i) else { continue };
                    let t0 = traj.t.first().copied().unwrap_or(0.0);
                    let u0 = solve::initial_state(&self.model, &p, &[], t0)?;
                    segs.push(Segment {
                        t: traj.t.to_vec(),
                        u0,
                    });
                    target.extend(traj.y.iter().copied());
                }
            }
        }
        Ok((segs, target))
    }

    /// The loss at learned values `theta` on the given segments, and its gradient through
    /// dfdx (the solve node's backward is the discrete adjoint).
    pub fn evaluate(
        &mut self,
        theta: &[f64],
        segs: &[Segment],
        target: Vec<f64>,
        weights: &Weights,
        iteration: u64,
    ) -> Result<Evaluation, Diag> {
        if let Some(s) = &self.sde {
            return s.evaluate(theta, &self.plan, weights, (iteration, self.state.total));
        }
        let theta_t = self.tensor(theta);
        let mut rng = batch::rng(self.plan.seed, LOCAL_STREAM + iteration);
        // The plan's solve options are public (a test freezes the steps with `dt`).
        self.ctx.borrow_mut().opts = self.plan.solve.clone();
        if let Some(engine) = &self.tape {
            let run = (iteration, self.state.total);
            let c = &mut self.ctx.borrow_mut();
            return engine.evaluate(c, &self.plan, theta, segs, target, weights, run, &mut rng);
        }
        let (pred, fwd) = op::solve_op(theta_t.leaky_trace(), &self.ctx, segs, weights, &mut rng)?;
        self.finish(&theta_t, pred, fwd, target, iteration)
    }

    pub(super) fn tensor(&self, theta: &[f64]) -> Tensor<(usize,), f64, Cpu> {
        self.theta
            .device()
            .tensor_from_vec(theta.to_vec(), (theta.len(),))
    }

    /// The plan's loss of a prediction node against `target` (row-major like it), plus weight
    /// decay, and its gradient w.r.t. `θ` (the node's backward runs inside `backward()`).
    pub(super) fn finish(
        &mut self,
        theta_t: &Tensor<(usize,), f64, Cpu>,
        pred: Observations,
        fwd: Forward,
        target: Vec<f64>,
        iteration: u64,
    ) -> Result<Evaluation, Diag> {
        let loss = objective(
            &self.plan,
            pred,
            target,
            theta_t,
            iteration,
            self.state.total,
        )?;
        let value = loss.array();
        let grads = loss.backward();
        if let Some(d) = self.ctx.borrow_mut().backward_error.take() {
            return Err(d);
        }
        Ok(Evaluation {
            loss: value,
            reg: fwd.reg,
            nfe: fwd.nfe,
            grad: grads.get(theta_t).as_vec(),
            accuracy: None,
        })
    }

    /// One iteration: draw, evaluate, update. Returns its metric (also appended to the state).
    pub fn step(&mut self) -> Result<Metric, Diag> {
        let start = Instant::now();
        let i = self.state.iteration;
        let draw = self
            .sampler
            .next(&self.data)
            .map_err(|d| train_diag(&self.model, d))?;
        let weights = self.weights(i);
        let theta = self.state.theta.clone();
        let ev = match (&self.classify, &draw) {
            (Some(_), Draw::Samples(rows)) => self.evaluate_rows(&theta, rows, &weights, i),
            _ => self.segments(&draw).and_then(|(mut segs, target)| {
                if let Some(s) = self.plan.steer {
                    let mut rng = batch::rng(self.plan.seed, integrals::STEER_STREAM + i);
                    integrals::steer(&mut segs, s.b, &mut rng);
                }
                self.evaluate(&theta, &segs, target, &weights, i)
            }),
        }
        .map_err(|d| failed_solve_at(d, i))?;
        if !(ev.loss.is_finite() && ev.reg.is_finite() && ev.grad.iter().all(|g| g.is_finite())) {
            return Err(train_diag(
                &self.model,
                Diag::error(
                    "glassbox::train_diverged",
                    format!("iteration {i}: the loss or its gradient is not finite (loss {}, regularizer {})", ev.loss, ev.reg),
                ),
            )
            .help("lower the learning rate, or tighten the solver tolerances"));
        }
        optim::update(
            &self.plan.optimizer,
            &mut self.state.opt,
            &mut self.theta,
            &ev.grad,
        )?;
        self.state.theta = self.theta.as_vec();
        self.state.iteration += 1;
        // Validation is not training time.
        let time_s = start.elapsed().as_secs_f64();
        let (val_loss, val_accuracy) = self.validate_now()?;
        let m = Metric {
            iteration: i,
            loss: ev.loss,
            reg: ev.reg,
            nfe: ev.nfe,
            time_s,
            accuracy: ev.accuracy,
            val_loss,
            val_accuracy,
        };
        self.state.metrics.push(m.clone());
        Ok(m)
    }

    /// The trained model on the first trajectory of the data (all of it, before any split):
    /// from the model's initial state, saved at the data's times.
    pub fn predict_on(&self, t: &[f64]) -> Result<Solution, Diag> {
        predict(&self.model, &self.params(), &self.plan, t)
    }
}

/// The data loss of `pred` against `target` (row-major like `pred`) times its coefficient,
/// plus the weight decay terms on `theta`: the objective of both backends, on any device.
pub(crate) fn objective<S: Shape, D: Device<f64>>(
    plan: &Plan,
    pred: Tensor<(usize, usize), f64, D, OwnedTape<f64, D>>,
    target: Vec<f64>,
    theta: &Tensor<S, f64, D>,
    iteration: u64,
    total: u64,
) -> Result<Tensor<Rank0, f64, D, OwnedTape<f64, D>>, Diag> {
    let shape = *pred.shape();
    if target.len() != shape.0 * shape.1 {
        return Err(Diag::error(
            "glassbox::train_shape",
            format!(
                "{} target values for a prediction of {}",
                target.len(),
                shape.0 * shape.1
            ),
        )
        .help("this is a bug in the trainer; please report it"));
    }
    let targ = pred
        .device()
        .try_tensor_from_vec(target, shape)
        .map_err(dev_err)?;
    let coef = coef_at(plan.loss.coef, iteration, total);
    let mut loss = match plan.loss.loss {
        Loss::L1 => mae_loss(pred, targ),
        Loss::CrossEntropy => cross_entropy_with_logits_loss(pred, targ),
        _ => mse_loss(pred, targ),
    }
    .try_mul(coef)
    .map_err(dev_err)?;
    for &c in &plan.weight_decay {
        let w = coef_at(c, iteration, total);
        let wd = theta
            .leaky_trace()
            .try_square()
            .and_then(|x| x.try_sum::<Rank0, _>())
            .and_then(|x| x.try_mul(w))
            .map_err(dev_err)?;
        loss = loss.try_add(wd).map_err(dev_err)?;
    }
    Ok(loss)
}

/// Solve `model` with parameters `p` from its initial state at `t[0]`, saved at `t`, with the
/// plan's method and tolerances (JIT, no stages kept).
/// SDE plans: the mean path over the plan's paths (`sde::predict_mean`).
pub fn predict(model: &Model, p: &[f64], plan: &Plan, t: &[f64]) -> Result<Solution, Diag> {
    if let Some(s) = &plan.sde {
        return super::sde::predict_mean(model, p, plan, s, t);
    }
    let (Some(&t0), Some(&t1)) = (t.first(), t.last()) else {
        return Err(Diag::error("glassbox::bad_argument", "no prediction times")
            .help("give at least two times"));
    };
    let mut field = JitField::with_params(model, p, &[])?;
    let u0 = solve::initial_state(model, p, &[], t0)?;
    let mut opts = plan.solve.clone();
    opts.keep_stages = false;
    opts.save_at = t.to_vec();
    solve::solve_with(Method::Explicit(plan.tab), &mut field, t0, t1, &u0, &opts)
        .map_err(Diag::from)
}

/// The plan's data loss (without coefficient) of a prediction against observations
/// (row-major `[rows, columns]`).
pub fn data_loss(plan: &Plan, sol: &Solution, y: &[f64]) -> f64 {
    let cols = &plan.loss.columns;
    let mut sum = 0.0;
    let mut n = 0usize;
    for i in 0..sol.ts.len() {
        let u = sol.u(i).unwrap_or(&[]);
        for (j, &k) in cols.iter().enumerate() {
            if let (Some(a), Some(b)) = (u.get(k), y.get(i * cols.len() + j)) {
                let d = a - b;
                sum += if plan.loss.loss == Loss::L1 {
                    d.abs()
                } else {
                    d * d
                };
                n += 1;
            }
        }
    }
    sum / n.max(1) as f64
}
