//! The SDE half of [`super::plan`]: a trainable SDE model runs as `glassbox predict` runs it
//! (the mean over the train plan's paths, Brownian seed from the run seed), any other as
//! `glassbox solve` with no flags (every path; `--seed 0`, `--paths 1`, the model's grid).
//! Both settings come from the very functions those commands call.

use std::sync::Arc;

use super::{KernelSpec, SdeMeta, Solver};
use crate::app::predict::default_times;
use crate::app::{SolveRequest, located, sde};
use crate::diag::Diag;
use crate::ir::{self, Function, lower};
use crate::sema::Model;
use crate::solve::sde::{NoiseMap, SdeMethod, SdeOptions};
use crate::source::{Loader, SourceFile};
use crate::train::{self, Overrides};

/// The diffusion (and Milstein's JVP) to compile, and the solver settings.
pub(super) struct SdeParts {
    pub diffusion: Function,
    pub jvp: Option<Function>,
    pub solver: Solver,
    /// [`SdeMeta`] still without the kernel specs, which need scratch lengths.
    pub noise: Vec<usize>,
    pub seed: u64,
    pub paths: usize,
    pub mean: bool,
    pub drift_reads_t: bool,
}

pub(super) fn plan(
    model: &Model,
    file: &Arc<SourceFile>,
    loader: &dyn Loader,
) -> Result<SdeParts, Vec<Diag>> {
    if let Some(input) = model.inputs.first() {
        return Err(located(file)(
            Diag::error(
                "glassbox::build_unsupported",
                format!(
                    "`{}` is an SDE model with inputs; standalone binaries of those are not supported",
                    model.name
                ),
            )
            .label(input.span, "an input")
            .help("build an SDE model without `input`s (a fixed value can be a `param`)"),
        ));
    }
    let trained = train::plan(model, &Overrides::default())
        .ok()
        .and_then(|mut tp| tp.sde.take().map(|sp| (tp, sp)));
    let (method, opts, span, seed, paths, mean) = match trained {
        Some((tp, sp)) => {
            let times = default_times(model, file, &tp, loader)?.unwrap_or_default();
            let seed = train::brownian_seed(tp.seed, 0);
            // `predict_mean` solves from the first to the last time.
            let span = match (times.first(), times.last()) {
                (Some(&a), Some(&b)) => vec![a, b],
                _ => Vec::new(),
            };
            let opts = SdeOptions {
                save_at: times,
                ..sp.opts
            };
            (sp.method, opts, span, seed, sp.samples, true)
        }
        None => {
            let p = sde::plan(&SolveRequest::default(), model)?;
            (p.method, p.opts, vec![p.t0, p.t1], p.seed, p.paths, false)
        }
    };
    let diffusion = lower::lower(model, lower::Part::Diffusion).map_err(located(file))?;
    let drift = lower::lower(model, lower::Part::Field).map_err(located(file))?;
    let jvp = if method == SdeMethod::Milstein {
        Some(ir::jvp(&diffusion, "u", "v").map_err(|e| vec![lower::internal(e)])?)
    } else {
        None
    };
    Ok(SdeParts {
        diffusion,
        jvp,
        solver: solver(method, &opts, span, mean),
        noise: NoiseMap::from_model(model).of().to_vec(),
        seed,
        paths,
        mean,
        drift_reads_t: drift.reads("t"),
    })
}

fn solver(method: SdeMethod, o: &SdeOptions, span: Vec<f64>, mean: bool) -> Solver {
    Solver {
        method: method.name().to_string(),
        tolerances: vec![o.rtol, o.atol],
        h0: o.h0.into_iter().collect(),
        // SDE solvers have their own controller (`docs/solvers.md`); recorded as the defaults.
        control: crate::solve::StepControl::default(),
        dt: o.dt.into_iter().collect(),
        max_steps: o.max_steps,
        detect_stiffness: false,
        span,
        times: o.save_at.clone(),
        same_as: if mean { "predict" } else { "solve" }.to_string(),
    }
}

impl SdeParts {
    /// The binary's SDE description, with the kernel specs `spec` makes.
    pub fn meta(&self, spec: impl Fn(&str, &Function) -> KernelSpec) -> SdeMeta {
        SdeMeta {
            diffusion: spec("diffusion", &self.diffusion),
            jvp: self.jvp.as_ref().map(|f| spec("diffusion_jvp", f)),
            noise: self.noise.clone(),
            seed: self.seed,
            paths: self.paths,
            mean: self.mean,
            drift_reads_t: self.drift_reads_t,
        }
    }
}
