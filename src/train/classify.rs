//! Classification: a table of features and labels, an encoder that computes the initial state
//! from the features (`state h[32] = enc(x)`), the solve, and a head read at the end time
//! (`output logits = dec(h(1))`), trained with `cross_entropy(logits, c)`.
//!
//! One dfdx node ([`classify_op`]) maps `θ` to the batch's logits `[B, classes]`; dfdx computes
//! the loss (`cross_entropy_with_logits_loss` on one-hot targets) and backpropagates into the
//! node, whose backward chains, per sample, the head's VJP (`dL/du(t1)`, `dL/dp`), the discrete
//! adjoint of that sample's solve (`dL/du0`, `dL/dp`, with `R_E`/`R_S`) and the encoder's VJP
//! (`dL/dp`). Encoder and head are the model file's own expressions, lowered to the IR and
//! compiled like the field (why: `docs/architecture.md`).
//!
//! Each sample is solved on its own (its own adaptive steps): a sample's logits never depend on
//! which samples share its batch, so training, validation and `predict` agree exactly.

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::prelude::*;
use ndarray::Array2;
use rand::Rng;
use serde::Serialize;

use super::forward::{ForwardStats, MIN_BATCH_ROWS, predict_rows};
use super::op::{self, Forward, Observations, SolveCtx, Tape, Weights};
use super::plan::{DataLoss, Plan};
use super::rows::{self, Rows};
use super::trainer::{Evaluation, LOCAL_STREAM, Trainer};
use crate::data::{Dataset, batch};
use crate::diag::Diag;
use crate::grad::{self, AdjointOptions, JitVjpField};
use crate::ir::{self, Function, lower};
use crate::jit::{self, Kernel};
use crate::sema::{DataLayout, Loss, Model, SolveTimes, TExpr, TExprKind, Target, Term, TermKind};
use crate::solve::{self, BatchControl, SolveOptions, Tableau};

/// The compiled pieces around the solve.
pub struct Classify {
    /// `u0(t, u, p, x)` (the states' initial values) and `(∂u0/∂p)ᵀ v`.
    enc: Kernel,
    enc_vjp: Kernel,
    /// `logits(t, u, p, x)` with `u` the state at `t1`, and `[vᵀ∂/∂u, vᵀ∂/∂p]`.
    head: Kernel,
    head_vjp: Kernel,
    pub t0: f64,
    pub t1: f64,
    pub classes: usize,
    state_size: usize,
    n_params: usize,
}

fn unsupported(span: crate::source::Span, msg: String, help: &str) -> Diag {
    Diag::error("glassbox::train_unsupported", msg)
        .label(span, "here")
        .help(help.to_string())
}

/// The plan's data loss for a `cross_entropy(pred, label)` term: the first table source with a
/// label column (its labels are the classes).
pub(super) fn data_loss(model: &Model, term: &Term) -> Result<DataLoss, Diag> {
    let data = model
        .data
        .iter()
        .position(|d| matches!(d.layout, DataLayout::Table { label: Some(_), .. }))
        .ok_or_else(|| {
            Diag::error(
                "glassbox::train_missing",
                "`cross_entropy` needs a data table with a label column",
            )
            .label(term.span, "compares against labels")
            .help("declare e.g. `data d = csv(\"file.csv\", features = 0..64, label = 64)`")
        })?;
    Ok(DataLoss {
        loss: Loss::CrossEntropy,
        coef: term.coef,
        data,
        columns: Vec::new(),
    })
}

/// `e` with every output replaced by its definition and every `X(t)` by `X`; the times read
/// are collected (the head is evaluated on the state at one end time).
fn at_end(model: &Model, e: &TExpr, times: &mut Vec<(f64, TExpr)>) -> TExpr {
    let mut go = |x: &TExpr| Box::new(at_end(model, x, times));
    let kind = match &e.kind {
        TExprKind::Output { output } => match model.outputs.get(*output) {
            Some(o) => return at_end(model, &o.value, times),
            None => e.kind.clone(),
        },
        TExprKind::StateAt { state, time } => {
            times.push((*time, e.clone()));
            TExprKind::State { state: *state }
        }
        TExprKind::Unary { op, expr } => TExprKind::Unary {
            op: *op,
            expr: go(expr),
        },
        TExprKind::Binary { op, lhs, rhs } => TExprKind::Binary {
            op: *op,
            lhs: go(lhs),
            rhs: go(rhs),
        },
        TExprKind::NetApply { net, input } => TExprKind::NetApply {
            net: *net,
            input: go(input),
        },
        TExprKind::Index { base, index } => TExprKind::Index {
            base: go(base),
            index: index.clone(),
        },
        TExprKind::Vector { items } => TExprKind::Vector {
            items: items.iter().map(|i| at_end(model, i, times)).collect(),
        },
        TExprKind::Concat { items } => TExprKind::Concat {
            items: items.iter().map(|i| at_end(model, i, times)).collect(),
        },
        TExprKind::Builtin { f, args } => TExprKind::Builtin {
            f: *f,
            args: args.iter().map(|i| at_end(model, i, times)).collect(),
        },
        TExprKind::Matrix { rows } => TExprKind::Matrix {
            rows: rows
                .iter()
                .map(|r| r.iter().map(|i| at_end(model, i, times)).collect())
                .collect(),
        },
        other => other.clone(),
    };
    TExpr {
        kind,
        shape: e.shape,
        span: e.span,
    }
}

fn compile_pair(f: &Function, wrt: &[&str], name: &str) -> Result<(Kernel, Kernel), Diag> {
    let v = ir::vjp(f, wrt, "v").map_err(lower::internal)?;
    Ok((
        jit::compile(f, name)?,
        jit::compile(&v, &format!("{name}.vjp"))?,
    ))
}

/// Calls a model function kernel with its arguments by name (`v`: the cotangent).
pub fn call(
    k: &Kernel,
    t: f64,
    u: &[f64],
    p: &[f64],
    x: &[f64],
    v: &[f64],
) -> Result<Vec<f64>, Diag> {
    let tt = [t];
    let args: Vec<&[f64]> = k
        .args()
        .iter()
        .map(|s| match s.name.as_str() {
            "t" => &tt[..],
            "u" => u,
            "p" => p,
            "x" => x,
            _ => v,
        })
        .collect();
    let mut out = vec![0.0; k.output_len()];
    k.call(&args, &mut out)?;
    Ok(out)
}

/// A classifier's head, lowered (see [`head`]).
pub struct Head {
    pub head: Function,
    pub t0: f64,
    pub t1: f64,
    pub classes: usize,
}

/// The head of `model`'s `cross_entropy` term as an IR function of the final state
/// (`logits(t, u, p, x)`), and the solve's span: from the solve clause's start (else 0) to the
/// time the head reads (`h(1)`). Shared with `glassbox build`, whose binaries run it too.
pub fn head(model: &Model) -> Result<Head, Diag> {
    let Some((term, pred, label)) =
        model
            .objective
            .iter()
            .flat_map(|o| &o.terms)
            .find_map(|t| match &t.kind {
                TermKind::Loss {
                    loss: Loss::CrossEntropy,
                    pred,
                    target: Target::Label { label },
                } => Some((t, pred, *label)),
                _ => None,
            })
    else {
        return Err(Diag::error(
            "glassbox::train_missing",
            "the model has no `cross_entropy(logits, label)` term",
        )
        .help("add e.g. `minimize cross_entropy(logits, c)`"));
    };
    let classes = model.labels.get(label).map_or(0, |l| l.classes);
    let mut times = Vec::new();
    let head_expr = at_end(model, pred, &mut times);
    let span_times = model.solve.as_ref().and_then(|s| s.times.clone());
    let t0 = match &span_times {
        Some(SolveTimes::Over { t0, .. }) => *t0,
        Some(SolveTimes::At { times }) => times.first().copied().unwrap_or(0.0),
        None => 0.0,
    };
    let t1 = match (times.first(), &span_times) {
        (Some((t, _)), _) => *t,
        (None, Some(SolveTimes::Over { t1, .. })) => *t1,
        (None, Some(SolveTimes::At { times })) => times.last().copied().unwrap_or(t0),
        (None, None) => t0,
    };
    if let Some((_, e)) = times.iter().find(|(t, _)| *t != t1) {
        return Err(unsupported(
            e.span,
            format!("the prediction reads the state at two times ({t1} and another)"),
            "read every state at one end time, e.g. `dec(h(1))`",
        ));
    }
    if t1 <= t0 || !t1.is_finite() {
        return Err(unsupported(
            pred.span,
            format!("the prediction is read at t = {t1}, not after the start {t0}"),
            "read the state at a time after the solve's start, e.g. `dec(h(1))` with `solve ... over [0, 1]`",
        ));
    }
    if head_expr.shape.size() != classes {
        return Err(Diag::error(
            "glassbox::train_shape",
            format!(
                "the prediction has {} values for {classes} classes",
                head_expr.shape.size()
            ),
        )
        .label(term.span, "one logit per class")
        .help("make the head return one value per class"));
    }
    let mut head = lower::model_function(model);
    let node = lower::lower_expr(model, &mut head, &head_expr)?;
    let node = head.graph.flatten(node);
    head.push_output("logits", node);
    let head = ir::simplify(&head);
    head.validate().map_err(lower::internal)?;
    Ok(Head {
        head,
        t0,
        t1,
        classes,
    })
}

impl Classify {
    /// Encoder and head of `model`'s `cross_entropy` term, compiled, and the solve's span:
    /// from the solve clause's start (else 0) to the time the head reads (`h(1)`).
    pub fn new(model: &Model) -> Result<Classify, Diag> {
        let Head {
            head,
            t0,
            t1,
            classes,
        } = head(model)?;
        let (head, head_vjp) = compile_pair(&head, &["u", "p"], &format!("{}.head", model.name))?;
        let init = lower::lower_init(model)?;
        let (enc, enc_vjp) = compile_pair(&init, &["p"], &format!("{}.init", model.name))?;
        Ok(Classify {
            enc,
            enc_vjp,
            head,
            head_vjp,
            t0,
            t1,
            classes,
            state_size: model.state_size,
            n_params: model.param_size,
        })
    }

    /// The same encoder and head on the same compiled code, with scratch of their own: one per
    /// thread of a parallel loop over samples.
    pub(super) fn fork(&self) -> Classify {
        Classify {
            enc: self.enc.duplicate(),
            enc_vjp: self.enc_vjp.duplicate(),
            head: self.head.duplicate(),
            head_vjp: self.head_vjp.duplicate(),
            ..*self
        }
    }

    /// The features and labels of a loaded table, checked against the model's inputs.
    pub fn table<'d>(
        &self,
        model: &Model,
        data: &'d Dataset,
    ) -> Result<(&'d Array2<f64>, &'d [usize]), Diag> {
        let inputs: usize = model.inputs.iter().map(|i| i.shape.size()).sum();
        match data {
            Dataset::Table { x, labels: Some(l) } if x.ncols() == inputs => Ok((x, l.as_slice())),
            Dataset::Table { x, labels: Some(_) } => Err(Diag::error(
                "glassbox::train_shape",
                format!(
                    "the data has {} features, the model's inputs {inputs}",
                    x.ncols()
                ),
            )
            .help("declare `features = a..b` with as many columns as the model's `input`s hold")),
            _ => Err(Diag::error(
                "glassbox::train_unsupported",
                "`cross_entropy` needs a table of features with a label column",
            )
            .help("declare e.g. `data d = csv(\"file.csv\", features = 0..64, label = 64)`")),
        }
    }

    /// Logits of one sample from a solve's final state.
    pub(super) fn logits(&self, p: &[f64], x: &[f64], u1: &[f64]) -> Result<Vec<f64>, Diag> {
        call(&self.head, self.t1, u1, p, x, &[])
    }

    pub(super) fn encode(&self, p: &[f64], x: &[f64]) -> Result<Vec<f64>, Diag> {
        call(&self.enc, self.t0, &vec![0.0; self.state_size], p, x, &[])
    }

    /// Forward only: the logits of every row of `x` (`[rows, classes]`), and the solves' NFE,
    /// with the row workers' parameters set to `p` (the rows run on the workers' threads).
    pub fn predict(
        &self,
        rows: &mut Rows,
        tab: &'static Tableau,
        opts: &SolveOptions,
        p: &[f64],
        x: &Array2<f64>,
    ) -> Result<(Vec<f64>, u64), Diag> {
        rows::set_params(rows, p)?;
        let opts = self.forward_options(opts);
        let mut xs: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
        let blocks = rows.blocks(&mut xs, |w, _, block| {
            let (cls, field) = rows::classifier(w)?;
            let mut out = Vec::with_capacity(block.len());
            for xr in block.iter() {
                field.set_inputs(xr)?;
                let u0 = cls.encode(p, xr)?;
                let sol =
                    solve::solve(tab, field, cls.t0, cls.t1, &u0, &opts).map_err(Diag::from)?;
                let logits = cls.logits(p, xr, sol.last().unwrap_or(&u0))?;
                out.push((logits, sol.stats.nfe));
            }
            Ok(out)
        })?;
        let mut out = Vec::with_capacity(x.nrows() * self.classes);
        let mut nfe = 0;
        for (logits, n) in blocks.into_iter().flatten() {
            nfe += n;
            out.extend(logits);
        }
        Ok((out, nfe))
    }

    /// A forward solve's options: the final state only, nothing kept for an adjoint.
    pub(super) fn forward_options(&self, opts: &SolveOptions) -> SolveOptions {
        super::forward::forward_options(opts, self.t1)
    }

    /// `dL/dp` of one sample (head VJP, the adjoint of its solve, encoder VJP), summed per
    /// parameter in that order: what the batch's sum adds for this sample.
    fn sample_vjp(
        &self,
        (field, tab, p): (&mut JitVjpField, &'static Tableau, &[f64]),
        sol: &solve::Solution,
        x: &[f64],
        g: &[f64],
        aopts: &AdjointOptions,
    ) -> Result<Vec<f64>, Diag> {
        let n = self.state_size;
        let u1 = sol.last().unwrap_or(&[]);
        let hv = call(&self.head_vjp, self.t1, u1, p, x, g)?;
        let mut dl_du = vec![0.0; sol.us.len()];
        let k = dl_du.len().saturating_sub(n);
        dl_du[k..].copy_from_slice(&hv[..n]);
        field.set_inputs(x)?;
        let adj = grad::adjoint(tab, field, sol, &dl_du, aopts).map_err(Diag::from)?;
        let ev = call(&self.enc_vjp, self.t0, &vec![0.0; n], p, x, &adj.du0)?;
        Ok((0..self.n_params)
            .map(|i| hv[n + i] + adj.dp[i] + ev[i])
            .collect())
    }
}

/// The batch's logits `[rows, classes]` as one node on `θ`'s tape (see the module docs), the
/// forward's regularizer and NFE, and the logits' values.
pub fn classify_op(
    theta: Tensor<(usize,), f64, Cpu, Tape>,
    ctx: &Rc<RefCell<SolveCtx>>,
    cls: &Rc<Classify>,
    xs: Vec<Vec<f64>>,
    weights: &Weights,
    rng: &mut impl Rng,
) -> Result<(Observations, Forward, Vec<f64>), Diag> {
    let (theta, tape) = theta.split_tape();
    let start = std::time::Instant::now();
    let mut guard = ctx.borrow_mut();
    let c = &mut *guard;
    op::scatter(c, &theta.as_vec())?;
    let mut opts = c.opts.clone();
    opts.keep_stages = true;
    opts.dense = weights
        .local
        .iter()
        .any(|l| l.sampling == crate::sema::Sampling::Unbiased);
    opts.save_at = vec![cls.t0, cls.t1];
    let nseg = xs.len().max(1) as f64;
    let batched = c
        .training
        .filter(|t| t.batched && xs.len() >= MIN_BATCH_ROWS);
    let (sols, logits) = match batched {
        Some(t) => super::batched::forward(c, &xs, &opts, t.control)?,
        None => per_row_forward(c, &xs, &opts)?,
    };
    let mut fwd = Forward::default();
    let mut out = Vec::with_capacity(xs.len() * cls.classes);
    for (r, (sol, logits)) in sols.iter().zip(logits).enumerate() {
        out.extend(logits);
        fwd.nfe += sol.stats.nfe;
        // Under joint control a chunk's rows share one step sequence and its estimates, which
        // the chunk's regularizer counts once.
        let joint = batched.filter(|t| t.control == BatchControl::Joint);
        if joint.is_some_and(|t| r % t.chunk_rows != 0) {
            continue;
        }
        let (re, rs) = grad::recorded_regularizers(sol);
        fwd.reg += (weights.error * re + weights.stiffness * rs) / nseg;
    }
    let (reg, local_dp) = op::local_terms(c, &sols, weights, &opts, rng, |c, j| {
        c.field.set_inputs(xs.get(j).map_or(&[][..], |x| x))
    })?;
    fwd.reg += reg;
    c.timing = (start.elapsed().as_secs_f64(), 0.0);
    drop(guard);

    let aopts = AdjointOptions {
        rtol: opts.rtol,
        atol: opts.atol,
        error_weight: weights.error / nseg,
        stiffness_weight: weights.stiffness / nseg,
    };
    let k = cls.classes;
    let values = out.clone();
    let node = op::custom_node(theta, tape, out, (xs.len(), k), ctx, move |c, g_out| {
        let start = std::time::Instant::now();
        let mut dp = local_dp.clone().unwrap_or_else(|| vec![0.0; c.p.len()]);
        match batched {
            Some(t) => {
                super::batched::backward(c, (&sols, &xs), g_out, &aopts, t.control, &mut dp)?
            }
            None => per_row_backward(c, (&sols, &xs), g_out, &aopts, k, &mut dp)?,
        }
        c.timing.1 = start.elapsed().as_secs_f64();
        Ok(op::gather(&c.learned, &dp))
    });
    Ok((node, fwd, values))
}

/// Each sample's solve and logits on the row workers, one sample at a time.
fn per_row_forward(
    c: &mut SolveCtx,
    xs: &[Vec<f64>],
    opts: &SolveOptions,
) -> Result<(Vec<solve::Solution>, Vec<Vec<f64>>), Diag> {
    let (tab, p) = (c.tab, &c.p);
    let mut sols = vec![solve::Solution::default(); xs.len()];
    let blocks = c.rows.blocks(&mut sols, |w, first, block| {
        let (wc, field) = rows::classifier(w)?;
        let mut logits = Vec::with_capacity(block.len());
        for (sol, x) in block.iter_mut().zip(&xs[first..]) {
            field.set_inputs(x)?;
            let u0 = wc.encode(p, x)?;
            *sol = solve::solve(tab, field, wc.t0, wc.t1, &u0, opts).map_err(Diag::from)?;
            logits.push(wc.logits(p, x, sol.last().unwrap_or(&u0))?);
        }
        Ok(logits)
    })?;
    Ok((sols, blocks.into_iter().flatten().collect()))
}

/// Each sample's `dL/dp` on the row workers (`k` classes), then added into `dp` in sample
/// order.
fn per_row_backward(
    c: &mut SolveCtx,
    (sols, xs): (&[solve::Solution], &[Vec<f64>]),
    g_out: &[f64],
    aopts: &AdjointOptions,
    k: usize,
    dp: &mut [f64],
) -> Result<(), Diag> {
    let (tab, p) = (c.tab, &c.p);
    let mut idx: Vec<usize> = (0..sols.len()).collect();
    let blocks = c.rows.blocks(&mut idx, |w, _, block| {
        let (wc, field) = rows::classifier(w)?;
        (block.iter())
            .map(|&i| {
                let g = g_out.get(i * k..(i + 1) * k).unwrap_or(&[]);
                wc.sample_vjp((&mut *field, tab, p), &sols[i], &xs[i], g, aopts)
            })
            .collect::<Result<Vec<_>, Diag>>()
    })?;
    for sample in blocks.iter().flatten() {
        for (d, s) in dp.iter_mut().zip(sample) {
            *d += s;
        }
    }
    Ok(())
}

/// Mean cross-entropy and accuracy of logits (`[rows, classes]`) against labels.
pub fn score(logits: &[f64], labels: &[usize], classes: usize) -> (f64, f64) {
    let mut ce = 0.0;
    let mut right = 0usize;
    for (z, &l) in logits.chunks(classes.max(1)).zip(labels) {
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        ce += lse - z.get(l).copied().unwrap_or(f64::NAN);
        if argmax(z) == l {
            right += 1;
        }
    }
    let n = labels.len().max(1) as f64;
    (ce / n, right as f64 / n)
}

/// The index of the largest logit (the first on ties).
pub fn argmax(z: &[f64]) -> usize {
    z.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// A classifier's final numbers (report and `run.json`).
#[derive(Clone, Debug, Serialize)]
pub struct ClassReport {
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Total NFE and wall time of predicting every sample (training and validation parts).
    pub prediction_nfe: u64,
    pub prediction_time_ms: f64,
    pub samples: usize,
    /// How the training part's forward solves ran (per row or batched; `train/forward.rs`).
    pub forward: ForwardStats,
    /// How training's forward and adjoint ran (per row or batched; `train/batched.rs`).
    pub training: Option<super::batched::TrainingPath>,
}

impl Trainer {
    /// The classification loss at learned values `theta` on table rows `rows` of the training
    /// data, and its gradient through dfdx (one-hot targets, `cross_entropy_with_logits_loss`).
    pub fn evaluate_rows(
        &mut self,
        theta: &[f64],
        rows: &[usize],
        weights: &Weights,
        iteration: u64,
    ) -> Result<Evaluation, Diag> {
        let Some(cls) = self.classify.clone() else {
            return Err(
                Diag::error("glassbox::internal", "evaluate_rows on a trajectory model")
                    .help("this is a bug in glassbox; please report it"),
            );
        };
        let (x, labels) = cls.table(&self.model, &self.data)?;
        let xs: Vec<Vec<f64>> = rows
            .iter()
            .filter(|&&r| r < x.nrows())
            .map(|&r| x.row(r).to_vec())
            .collect();
        let labels: Vec<usize> = rows
            .iter()
            .filter_map(|&r| labels.get(r).copied())
            .collect();
        let mut onehot = vec![0.0; labels.len() * cls.classes];
        for (i, &l) in labels.iter().enumerate() {
            if let Some(v) = onehot.get_mut(i * cls.classes + l) {
                *v = 1.0;
            }
        }
        let theta_t = self.tensor(theta);
        let mut rng = batch::rng(self.plan.seed, LOCAL_STREAM + iteration);
        self.ctx.borrow_mut().opts = self.plan.solve.clone();
        let (pred, fwd, values) = classify_op(
            theta_t.leaky_trace(),
            &self.ctx,
            &cls,
            xs,
            weights,
            &mut rng,
        )?;
        let mut ev = self.finish(&theta_t, pred, fwd, onehot, iteration)?;
        ev.accuracy = Some(score(&values, &labels, cls.classes).1);
        Ok(ev)
    }

    /// Cross-entropy and accuracy of the current weights on a table (forward solves only).
    pub fn score_table(&self, data: &Dataset) -> Result<(f64, f64, u64), Diag> {
        let (ce, acc, stats) = self.score_forward(data)?;
        Ok((ce, acc, stats.map_or(0, |s| s.nfe)))
    }

    /// [`Trainer::score_table`] and how its forward solves ran (`None`: not a classifier).
    fn score_forward(&self, data: &Dataset) -> Result<(f64, f64, Option<ForwardStats>), Diag> {
        let Some(cls) = &self.classify else {
            return Ok((f64::NAN, f64::NAN, None));
        };
        let (x, labels) = cls.table(&self.model, data)?;
        let p = self.params();
        let mut c = self.ctx.borrow_mut();
        let (logits, stats) = predict_rows(cls, &self.model, &mut c.rows, &self.plan, &p, x)?;
        let (ce, acc) = score(&logits, labels, cls.classes);
        Ok((ce, acc, Some(stats)))
    }

    /// Final train and validation scores, and the NFE and time of predicting every sample.
    pub fn class_report(&self) -> Result<Option<ClassReport>, Diag> {
        if self.classify.is_none() {
            return Ok(None);
        }
        let start = std::time::Instant::now();
        let (train_loss, train_accuracy, forward) = self.score_forward(&self.data)?;
        let Some(forward) = forward else {
            return Ok(None);
        };
        let mut nfe = forward.nfe;
        let mut samples = self.data.len();
        let (mut val_loss, mut val_accuracy) = (None, None);
        if let Some(v) = &self.valid {
            let (l, a, n) = self.score_table(v)?;
            (val_loss, val_accuracy) = (Some(l), Some(a));
            nfe += n;
            samples += v.len();
        }
        Ok(Some(ClassReport {
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
            prediction_nfe: nfe,
            prediction_time_ms: start.elapsed().as_secs_f64() * 1e3,
            samples,
            forward,
            training: self.ctx.borrow().training,
        }))
    }
}

/// Logits of `x`'s rows with parameters `p` (for `glassbox predict`): `[rows, classes]`, how
/// the forward solves ran (batched, or per row on `threads` threads; `train/forward.rs`), and
/// the class count.
pub fn predict_table(
    model: &Model,
    plan: &Plan,
    p: &[f64],
    x: &Array2<f64>,
    threads: usize,
) -> Result<(Vec<f64>, ForwardStats, usize), Diag> {
    let cls = Classify::new(model)?;
    let inputs: usize = model.inputs.iter().map(|i| i.shape.size()).sum();
    let field = JitVjpField::new(model, p, &vec![0.0; inputs])?;
    let mut workers = rows::rows(threads, &field, Some(&cls), None)?;
    let (logits, stats) = predict_rows(&cls, model, &mut workers, plan, p, x)?;
    Ok((logits, stats, cls.classes))
}
