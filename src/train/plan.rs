//! What a training run does, read off a checked model: the learned slice of `p`, the data
//! loss, the solver regularizers with their coefficient schedules, the solver and its
//! tolerances, the optimiser and the stopping rule. Everything the trainer cannot do yet is a
//! `glassbox::train_unsupported` diagnostic on the offending term's span, never a silent skip.

use serde::Serialize;

use super::integrals::{IntegralKind, IntegralTerm, Steer, check_taylor};
use crate::diag::Diag;
use crate::sema::{
    Batch, Coef, IndexSel, Loss, Model, Observable, Optimizer, Sampling, Shape, Stop, TExpr,
    TExprKind, Target, Term, TermKind,
};
use crate::solve::registry::{self, Method};
use crate::solve::{BatchControl, SolveOptions, Tableau};

/// The data loss: `coef · loss(pred, data)`, pred = the states `columns` (one state index per
/// data column, in the data's column order).
#[derive(Clone, Debug, Serialize)]
pub struct DataLoss {
    pub loss: Loss,
    pub coef: Coef,
    pub data: usize,
    pub columns: Vec<usize>,
}

/// A solver regularizer: global (`sample: None`, over every accepted step) or local.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Regularizer {
    pub observable: Observable,
    pub sample: Option<Sampling>,
    pub coef: Coef,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub model: String,
    /// The explicit method of an ODE plan (unused by SDE plans, which hold `euler`'s).
    #[serde(skip)]
    pub tab: &'static Tableau,
    pub method: &'static str,
    pub rtol: f64,
    pub atol: f64,
    #[serde(skip)]
    pub solve: SolveOptions,
    /// Step control of batched forward solves (the solve clause's `batch`; `train/forward.rs`).
    pub step_control: BatchControl,
    /// Indices into `p` of the learned values, in `p` order (the dfdx tensor's layout).
    pub learned: Vec<usize>,
    pub loss: DataLoss,
    pub regularizers: Vec<Regularizer>,
    /// `weight_decay` terms: `coef · ‖θ‖²` over the learned values.
    pub weight_decay: Vec<Coef>,
    /// `kinetic`, `jacobian_frobenius`, `taylor(K)`: integrals along each segment's solve.
    pub integrals: Vec<IntegralTerm>,
    /// `steer(b)`: end times drawn from `U[T − b, T + b]`.
    pub steer: Option<Steer>,
    pub optimizer: Optimizer,
    pub stop: Stop,
    pub batch: Option<Batch>,
    pub split: Option<f64>,
    pub seed: u64,
    pub checkpoint_every: Option<u64>,
    /// Threads the rows (samples, windows, paths) run on: `--threads N`, default every core
    /// (`solve::threads`; the results are the same at any count).
    pub threads: usize,
    /// SDE models: method, options, paths per iteration (`train/sde.rs`).
    pub sde: Option<super::sde::SdePlan>,
}

/// Flags that override the model's `train` clause.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub stop: Option<Stop>,
    pub seed: Option<u64>,
    pub checkpoint_every: Option<u64>,
    /// Threads for the rows (`None`: every core).
    pub threads: Option<usize>,
}

pub(super) fn unsupported(span: crate::source::Span, what: &str, help: &str) -> Diag {
    Diag::error(
        "glassbox::train_unsupported",
        format!("training does not support {what} yet"),
    )
    .label(span, "not supported by the trainer")
    .help(help.to_string())
}

/// The coefficient at iteration `e` of a run of `total`: constant, or
/// `decay(a -> b)`: `a·exp(−k·e)` with `k = ln(a/b)/total`.
pub fn coef_at(c: Coef, e: u64, total: u64) -> f64 {
    match c {
        Coef::Const { value } => value,
        Coef::Decay { from, to } => {
            let k = (from / to).ln() / total.max(1) as f64;
            from * (-k * e as f64).exp()
        }
    }
}

/// A data loss comparing `pred` (states or elements of states) with data source `data`;
/// `second` when the objective already has one (one data source per model).
pub(super) fn data_loss(
    model: &Model,
    term: &Term,
    pred: &TExpr,
    data: usize,
    loss: Loss,
    second: bool,
) -> Result<DataLoss, Diag> {
    if second {
        return Err(unsupported(
            term.span,
            "a second data loss",
            "fit one data source per model for now",
        ));
    }
    let Some(columns) = state_elements(model, pred) else {
        return Err(unsupported(
            pred.span,
            "a loss on a computed prediction",
            "compare states (or elements of states) with the data, e.g. `mse([x, y], obs)`",
        ));
    };
    Ok(DataLoss {
        loss,
        coef: term.coef,
        data,
        columns,
    })
}

/// The state index of each element `e` denotes (a state, an element of a state, a vector or
/// concatenation of those); `None` for anything computed.
pub(super) fn state_elements(model: &Model, e: &TExpr) -> Option<Vec<usize>> {
    match &e.kind {
        TExprKind::State { state } => {
            let s = model.states.get(*state)?;
            Some((s.offset..s.offset + s.shape.size()).collect())
        }
        TExprKind::Index { base, index } => {
            let all = state_elements(model, base)?;
            match (index.as_slice(), &base.shape) {
                ([IndexSel::At { i }], Shape::Vector { .. }) => Some(vec![*all.get(*i)?]),
                _ => None,
            }
        }
        TExprKind::Vector { items } | TExprKind::Concat { items } => {
            let mut out = Vec::new();
            for it in items {
                out.extend(state_elements(model, it)?);
            }
            Some(out)
        }
        _ => None,
    }
}

pub fn plan(model: &Model, ov: &Overrides) -> Result<Plan, Diag> {
    let no_clause = |what: &str, help: &str| {
        Diag::error(
            "glassbox::train_missing",
            format!("model `{}` has no {what}", model.name),
        )
        .help(help.to_string())
    };
    let Some(train) = &model.train else {
        return Err(no_clause(
            "`train` clause",
            "add e.g. `train adam(lr = 1e-2), iterations = 500`",
        ));
    };
    let Some(objective) = &model.objective else {
        return Err(no_clause(
            "`minimize` clause",
            "add e.g. `minimize mse(y, obs)`",
        ));
    };

    let mut loss = None;
    let mut regularizers = Vec::new();
    let mut weight_decay = Vec::new();
    let mut integrals = Vec::new();
    let mut steer = None;
    for term in &objective.terms {
        match &term.kind {
            TermKind::Loss {
                loss: kind @ (Loss::Mse | Loss::L1),
                pred,
                target: Target::Data { data },
            } => {
                let second = loss.is_some();
                loss = Some(data_loss(model, term, pred, *data, *kind, second)?);
            }
            TermKind::Moments { .. } => {
                loss = Some(super::sde::moments_loss(model, term, loss.is_some())?);
            }
            TermKind::Loss {
                loss: Loss::CrossEntropy,
                target: Target::Label { .. },
                ..
            } if loss.is_none() => loss = Some(super::classify::data_loss(model, term)?),
            TermKind::Loss { .. } => {
                return Err(unsupported(
                    term.span,
                    "a second loss, or this loss against this target",
                    "use one data loss: `mse`/`l1` against trajectory data, or `cross_entropy(logits, label)`",
                ));
            }
            TermKind::Observable {
                observable: observable @ (Observable::ErrorEstimate | Observable::Stiffness),
                sample,
            } => regularizers.push(Regularizer {
                observable: *observable,
                sample: *sample,
                coef: term.coef,
            }),
            TermKind::WeightDecay => weight_decay.push(term.coef),
            TermKind::Observable { .. } => {
                // NFE is piecewise constant in the parameters: its gradient is zero almost
                // everywhere, so training on it would silently do nothing.
                return Err(Diag::error(
                    "glassbox::train_not_differentiable",
                    "`nfe` cannot be a training term: it has no gradient",
                )
                .label(term.span, "piecewise constant in the parameters")
                .help("penalise `error_estimate` (ERNODE) or `stiffness` (SRNODE) to make solves cheaper; the NFE of every iteration is reported anyway"));
            }
            TermKind::Kinetic => integrals.push(IntegralTerm {
                kind: IntegralKind::Kinetic,
                coef: term.coef,
            }),
            TermKind::JacobianFrobenius { estimator } => integrals.push(IntegralTerm {
                kind: IntegralKind::JacobianFrobenius {
                    estimator: super::integrals::estimator(*estimator, model.state_size),
                },
                coef: term.coef,
            }),
            TermKind::Taylor { order } => {
                check_taylor(*order, term.span)?;
                integrals.push(IntegralTerm {
                    kind: IntegralKind::Taylor { order: *order },
                    coef: term.coef,
                });
            }
            TermKind::Steer { b } => {
                steer = Some(Steer {
                    b: *b,
                    span: term.span,
                })
            }
        }
    }
    let Some(loss) = loss else {
        return Err(no_clause(
            "data loss in its objective",
            "add e.g. `mse(y, obs)` to the `minimize` clause",
        ));
    };

    let sde = super::sde::plan_sde(model, objective, train)?;
    let spec = model.solve.as_ref();
    let o = spec.map(|s| s.options.clone()).unwrap_or_default();
    let (rtol, atol) = match &sde {
        Some(s) => (s.opts.rtol, s.opts.atol),
        None => (o.rtol.unwrap_or(1e-6), o.atol.unwrap_or(1e-9)),
    };
    let method = spec.map_or(Method::Tsit5, |s| s.method);
    let method_name = match &sde {
        Some(s) => s.method.name(),
        None => method.name(),
    };
    let tab = match (&sde, method.tableau()) {
        (Some(_), _) => &crate::solve::tableau::EULER,
        (None, Some(t)) => t,
        _ => {
            let span = spec.map(|s| s.span).unwrap_or(train.span);
            let explicit = registry::names(|m| m.trains() && !m.is_sde());
            return Err(Diag::error(
                "glassbox::train_unsupported",
                format!(
                    "training needs an explicit Runge–Kutta method, the model uses `{method_name}`"
                ),
            )
            .label(span, "the discrete adjoint needs an explicit method")
            .help(format!("use {} for training", registry::one_of(&explicit))));
        }
    };
    let mut solve = SolveOptions {
        rtol,
        atol,
        h0: o.h0,
        control: o.control,
        dt: o.dt,
        keep_stages: true,
        // Training must not abort on a transiently stiff field; the solver's max_steps still bounds the work.
        detect_stiffness: false,
        ..Default::default()
    };
    if let Some(m) = o.max_steps {
        solve.max_steps = usize::try_from(m).unwrap_or(usize::MAX);
    }
    if sde.is_none() && tab.btilde.is_none() && solve.dt.is_none() {
        return Err(Diag::error(
            "glassbox::train_unsupported",
            format!("`{method_name}` is a fixed-step method and the solve clause gives no `dt`"),
        )
        .label(
            spec.map(|s| s.span).unwrap_or(train.span),
            "needs `dt = ...`",
        )
        .help(format!("write e.g. `solve {method_name}(dt = 0.01)`")));
    }

    let learned: Vec<usize> = model
        .params
        .iter()
        .filter(|q| q.learn)
        .flat_map(|q| q.offset..q.offset + q.shape.size())
        .collect();
    if learned.is_empty() {
        return Err(Diag::error(
            "glassbox::train_nothing_to_learn",
            format!("model `{}` has no learned parameter", model.name),
        )
        .label(train.span, "nothing for this to train")
        .help("mark a parameter `learn` (`param k = 1.0 learn`) or add a net"));
    }
    Ok(Plan {
        model: model.name.clone(),
        tab,
        method: method_name,
        rtol,
        atol,
        solve,
        step_control: o.batch.unwrap_or_default(),
        learned,
        loss,
        regularizers,
        weight_decay,
        integrals,
        steer,
        optimizer: train.optimizer,
        stop: ov.stop.unwrap_or(train.stop),
        batch: train.batch,
        split: train.split,
        seed: ov.seed.or(train.seed).unwrap_or(0),
        checkpoint_every: ov.checkpoint_every.or(train.checkpoint_every),
        threads: ov
            .threads
            .unwrap_or_else(crate::solve::threads::available)
            .max(1),
        sde,
    })
}
