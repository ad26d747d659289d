//! What a standalone binary does, decided at build time: the IR functions it runs, its weights,
//! and its solver settings, taken from the same code `glassbox predict` (for a model with a
//! `train` clause) or `glassbox solve` (for any other model) uses, so the binary's numbers
//! are theirs. SDE models: `sde.rs`; what the binary records: `meta.rs`.

mod meta;
mod sde;

use std::sync::Arc;

pub use meta::{BatchMeta, KernelSpec, Meta, SdeMeta};

use super::SolveRequest;
use super::located;
use super::predict::default_times;
use super::solve::{method_options, state_names};
use crate::diag::Diag;
use crate::ir::{Function, jacobian, lower};
use crate::sema::{Loss, Model, ModelKind, Shape, SolveTimes};
use crate::solve::{self, BatchControl, Method, SolveOptions, StepControl};
use crate::source::{Loader, SourceFile};
use crate::train::{self, Overrides};

/// The functions to compile, the weights to embed and the description of the binary (its
/// kernel specs still without scratch lengths, which code generation reports).
pub struct Parts {
    pub field: Function,
    pub derivs: Option<(Function, Function)>,
    /// SDE models: the diffusion and (Milstein) its JVP; `field` is the drift.
    pub sde: Option<(Function, Option<Function>)>,
    pub init: Function,
    /// Classifiers: the head, run on each row's final state.
    pub head: Option<Function>,
    /// Classifiers: the model's step control; `field`, `init` and `head` are then also
    /// compiled as batched kernels, whose specs code generation adds to `meta.batch`.
    pub batch_control: Option<BatchControl>,
    pub p: Vec<f64>,
    pub meta: Meta,
}

/// Trained weights to embed, and where they came from (for `--help`).
pub struct Weights {
    pub values: Vec<f64>,
    pub source: String,
}

/// Plans the binary for `model` (from `file`), with `weights` or the model's initial values;
/// `loader` reads the data files whose times a trainable model predicts at.
pub fn plan(
    model: &Model,
    file: &Arc<SourceFile>,
    weights: Option<Weights>,
    loader: &dyn Loader,
) -> Result<Parts, Vec<Diag>> {
    let (p, source) = match weights {
        Some(w) => (w.values, Some(w.source)),
        None => (solve::param_values(model), None),
    };
    let loc = located(file);
    let field = lower::lower(model, lower::Part::Field).map_err(&loc)?;
    let init = lower::lower_init(model).map_err(&loc)?;
    let (mut head, mut batch_control) = (None, None);
    let (solver, derivs, sde) = if model.kind == ModelKind::Sde {
        let sde = sde::plan(model, file, loader)?;
        (sde.solver.clone(), None, Some(sde))
    } else {
        let (method, mut solver) = ode_solver(model, file, loader)?;
        if let Some((h, control)) = classifier_head(model).map_err(&loc)? {
            // `glassbox predict`'s solve: from t0 to the time the head reads, saving only it.
            solver.span = vec![h.t0, h.t1];
            solver.times = vec![h.t1];
            head = Some(h.head);
            batch_control = Some(control);
        }
        let derivs = if crate::solve::uses_jacobian(method, model.state_size) {
            let j = jacobian(&field, "u").map_err(|e| vec![lower::internal(e)])?;
            let d = jacobian(&field, "t").map_err(|e| vec![lower::internal(e)])?;
            Some((j, d))
        } else {
            None
        };
        (solver, derivs, None)
    };

    let name = &model.name;
    let spec = |what: &str, f: &Function| KernelSpec::new(format!("{name}.{what}"), f, 0);
    let meta = Meta {
        format: Meta::FORMAT,
        model: model.name.clone(),
        source: file.name.clone(),
        weights: source.unwrap_or_else(|| "the model's initial values".to_string()),
        columns: state_names(model),
        states: model
            .states
            .iter()
            .map(|s| declared(&s.name, s.shape))
            .collect(),
        outputs: model
            .outputs
            .iter()
            .map(|o| declared(&o.name, o.value.shape))
            .collect(),
        inputs: model
            .inputs
            .iter()
            .map(|i| declared(&i.name, i.shape))
            .collect(),
        input_len: model.inputs.iter().map(|i| i.shape.size()).sum(),
        method: solver.method,
        tolerances: solver.tolerances,
        h0: solver.h0,
        control: solver.control.to_values(),
        dt: solver.dt,
        max_steps: solver.max_steps,
        detect_stiffness: solver.detect_stiffness,
        span: solver.span,
        times: solver.times,
        same_as: solver.same_as,
        field: spec("field", &field),
        jacobian: derivs.as_ref().map(|(j, _)| spec("jacobian", j)),
        dfdt: derivs.as_ref().map(|(_, d)| spec("dfdt", d)),
        init: spec("init", &init),
        sde: sde.as_ref().map(|s| s.meta(spec)),
        head: head.as_ref().map(|h| spec("head", h)),
        batch: None,
    };
    Ok(Parts {
        field,
        derivs,
        sde: sde.map(|s| (s.diffusion, s.jvp)),
        init,
        head,
        batch_control,
        p,
        meta,
    })
}

/// The head of a model that trains as a classifier (`cross_entropy`), as `glassbox predict`
/// lowers it, and its step control (`batch = per_row | joint`); `None` for every other model.
fn classifier_head(model: &Model) -> Result<Option<(train::Head, BatchControl)>, Diag> {
    match train::plan(model, &Overrides::default()) {
        Ok(plan) if plan.loss.loss == Loss::CrossEntropy => {
            let head = train::classifier_head(model)?;
            Ok(Some((head, plan.step_control)))
        }
        _ => Ok(None),
    }
}

/// The solver settings a binary records (the fields of [`Meta`] of the same names).
#[derive(Clone)]
struct Solver {
    pub method: String,
    pub tolerances: Vec<f64>,
    pub h0: Vec<f64>,
    pub control: StepControl,
    pub dt: Vec<f64>,
    pub max_steps: usize,
    pub detect_stiffness: bool,
    pub span: Vec<f64>,
    pub times: Vec<f64>,
    pub same_as: String,
}

/// An ODE model's method and settings: a trainable model runs as `glassbox predict` runs it;
/// any other as `glassbox solve`.
fn ode_solver(
    model: &Model,
    file: &Arc<SourceFile>,
    loader: &dyn Loader,
) -> Result<(Method, Solver), Vec<Diag>> {
    let (method, opts, span, times, same_as) = match train::plan(model, &Overrides::default()) {
        Ok(plan) => {
            let times = default_times(model, file, &plan, loader)?.unwrap_or_default();
            let span = match (times.first(), times.last()) {
                (Some(&a), Some(&b)) => vec![a, b],
                _ => Vec::new(),
            };
            let opts = SolveOptions {
                keep_stages: false,
                ..plan.solve.clone()
            };
            (Method::Explicit(plan.tab), opts, span, times, "predict")
        }
        Err(_) => {
            let (method, opts) = method_options(&SolveRequest::default(), model)?;
            let (span, times) = match model.solve.as_ref().and_then(|s| s.times.clone()) {
                Some(SolveTimes::Over { t0, t1 }) => (vec![t0, t1], Vec::new()),
                Some(SolveTimes::At { times }) => match (times.first(), times.last()) {
                    (Some(&a), Some(&b)) => (vec![a, b], times.clone()),
                    _ => (Vec::new(), Vec::new()),
                },
                None => (Vec::new(), Vec::new()),
            };
            (method, opts, span, times, "solve")
        }
    };
    let solver = Solver {
        method: method.name().to_string(),
        tolerances: vec![opts.rtol, opts.atol],
        h0: opts.h0.into_iter().collect(),
        control: opts.control,
        dt: opts.dt.into_iter().collect(),
        max_steps: opts.max_steps,
        detect_stiffness: opts.detect_stiffness,
        span,
        times,
        same_as: same_as.to_string(),
    };
    Ok((method, solver))
}

/// `y`, `y[2]`, `W[3, 4]`: a name as declared.
fn declared(name: &str, shape: Shape) -> String {
    match shape {
        Shape::Vector { n } => format!("{name}[{n}]"),
        Shape::Matrix { rows, cols } => format!("{name}[{rows}, {cols}]"),
        Shape::Scalar | Shape::Error => name.to_string(),
    }
}
