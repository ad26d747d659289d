//! `glassbox.Model`: a checked model and its solve. Loading goes through `kit::load_source`
//! and `glassbox::check_source` with the `DiskLoader`, planning and running through
//! `app::solve` / `app::sde` — the calls `glassbox solve` makes — so the defaults are the
//! model file's own solve clause, as on the command line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use glassbox::app::build::Weights;
use glassbox::app::params;
use glassbox::app::rows as app_rows;
use glassbox::app::show::{self, View};
use glassbox::app::solve::{self as plans, SolvePlan, state_names};
use glassbox::app::vjp::{self, Regularizers};
use glassbox::app::{SolveRequest, sde};
use glassbox::diag::Diag;
use glassbox::grad::JitVjpField;
use glassbox::sema::{self, ModelKind};
use glassbox::solve::{JitBatchField, JitField};
use glassbox::source::{DiskLoader, SourceFile};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{AllowTypeChange, IntoPyArray, PyArrayLike1, PyArrayLikeDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{Diagnostic, diagnostics, raise};
use crate::solution::{Kept, KeptRuns, Solution};
use crate::train as training;

/// A model file that checked: its states, parameters and solve clause.
#[pyclass(module = "glassbox")]
pub struct Model {
    model: sema::Model,
    /// The checked file (training reads its data relative to it).
    file: std::sync::Arc<SourceFile>,
    /// The checker's warnings (a model with errors raises instead).
    warnings: Vec<Diag>,
    /// The parameter values every solve and gradient starts from: the model file's, then
    /// whatever `model.params = {...}` set (flat, in `params::values` order).
    p: Vec<f64>,
    /// The compiled field and field+VJP of the first solve and gradient, reused by every later
    /// one with new parameters (compiling is most of a short solve's time). Locked only with
    /// the GIL released, so two Python threads solving one model never deadlock.
    ode_field: Mutex<Option<JitField>>,
    vjp_field: Mutex<Option<JitVjpField>>,
    /// The batched field (and its VJP) of the first batched rows.
    batch_field: Mutex<Option<JitBatchField>>,
    /// This model's identity, which a kept `Solution` carries (`solve_adjoint` refuses
    /// another model's solutions).
    id: u64,
}

/// The next `Model`'s identity.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[pymethods]
impl Model {
    /// Read and check the model file at `path`; files it names (imports, data) are found
    /// relative to it, as by the CLI.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
        let file = glassbox::kit::load_source(&path).map_err(|d| raise(py, vec![d]))?;
        check(py, &file)
    }

    /// Check the model in `text`; `name` stands for the file name in diagnostics.
    #[staticmethod]
    #[pyo3(signature = (text, name = "<source>"))]
    fn from_source(py: Python<'_>, text: &str, name: &str) -> PyResult<Model> {
        check(py, &SourceFile::new(name, text))
    }

    /// The model's name (`model NAME`).
    #[getter]
    fn name(&self) -> &str {
        &self.model.name
    }

    /// `"ode"` or `"sde"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.model.kind {
            ModelKind::Ode => "ode",
            ModelKind::Sde => "sde",
        }
    }

    /// The state columns, as in the CLI's CSV header: `x`, `v[0]`, `m[0,1]`.
    #[getter]
    fn states(&self) -> Vec<String> {
        state_names(&self.model)
    }

    /// Every parameter (user params and net layers, `f.W1`) by name: a NumPy array of its
    /// shape (0-d for a scalar) holding the model's current values (the file's, unless set).
    /// A fresh copy each time: writing into an array changes nothing, assigning does.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        params_dict(py, &self.model, &self.p)
    }

    /// `model.params = {name: value}`: the named parameters take these values (each of the
    /// parameter's shape) for every later solve and gradient; the others keep theirs. All or
    /// nothing: a bad name or shape raises and changes no value.
    #[setter]
    fn set_params<'py>(&mut self, py: Python<'py>, values: Bound<'py, PyDict>) -> PyResult<()> {
        let mut p = self.p.clone();
        override_params(py, &self.model, &mut p, Some(values))?;
        self.p = p;
        Ok(())
    }

    /// The checker's warnings, as `Diagnostic`s.
    #[getter]
    fn warnings(&self, py: Python<'_>) -> PyResult<Vec<Py<Diagnostic>>> {
        diagnostics(py, &self.warnings)
    }

    /// Solve the model as `glassbox solve` does; every argument left `None` is the model's
    /// solve clause's (else the CLI's default). `t`: save times (strictly increasing);
    /// `over`: `(t0, t1)`, saving every accepted step; `y0`: the initial state (one value per
    /// state column); `params`: `{name: value}` overrides; SDE models: `paths`, `seed`.
    /// `keep=True` (ODE, explicit methods): keep every step's stages in the solution, so that
    /// `solve_adjoint` differentiates it later without solving again. `batched` (a 2-D `y0`):
    /// `True` solves the rows together (one batched kernel call a stage, GEMMs), `False` one
    /// after another, `None` chooses as the CLI does (GEMM-sized layers and at least 8 rows).
    #[pyo3(signature = (t=None, y0=None, params=None, method=None, rtol=None, atol=None, over=None, dt=None, paths=None, seed=None, keep=false, batched=None))]
    #[allow(clippy::too_many_arguments)]
    fn solve<'py>(
        &self,
        py: Python<'py>,
        t: Option<PyArrayLike1<'py, f64, AllowTypeChange>>,
        y0: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        params: Option<Bound<'py, PyDict>>,
        method: Option<String>,
        rtol: Option<f64>,
        atol: Option<f64>,
        over: Option<(f64, f64)>,
        dt: Option<f64>,
        paths: Option<usize>,
        seed: Option<u64>,
        keep: bool,
        batched: Option<bool>,
    ) -> PyResult<Solution> {
        let model = &self.model;
        let mut p = self.p.clone();
        override_params(py, model, &mut p, params)?;
        let (y0, rows) = match y0 {
            Some(y0) if y0.as_array().ndim() == 2 => {
                (None, Some(batch_rows(py, model, &y0, over.is_some())?))
            }
            y0 => (initial_state(py, y0)?, None),
        };
        let req = SolveRequest {
            over: over.map(|(a, b)| format!("{a:?}:{b:?}")),
            save_at: t.map(|t| t.as_array().to_vec()),
            method,
            rtol,
            atol,
            dt,
            seed,
            paths,
            ..SolveRequest::default()
        };
        let plan = plans::plan(&req, model).map_err(|d| raise(py, d))?;
        let names = state_names(model);
        if rows.is_some() && matches!(&plan, SolvePlan::Ode(plan) if plan.opts.save_at.is_empty()) {
            return Err(raise(
                py,
                vec![bad_argument(
                    "a batched y0 needs save times: the solve clause saves every accepted step, which differ by row".into(),
                    "give the save times `t=`",
                )],
            ));
        }
        if keep && !matches!(plan, SolvePlan::Ode(_)) {
            return Err(raise(
                py,
                vec![bad_argument(
                    format!(
                        "`{}` is an SDE model; keep=True keeps ODE solves for solve_adjoint",
                        model.name
                    ),
                    "leave keep out (the CLI's `glassbox solve --grad` gives an SDE's gradient)",
                )],
            ));
        }
        let y0 = y0.as_deref();
        match plan {
            SolvePlan::Ode(plan) if rows.is_some() => {
                let rows = rows.unwrap_or_default();
                let together = self.use_batched(py, &plan, &p, rows.len(), batched)?;
                if keep || together {
                    let runs = self.solve_rows(py, &plan, &p, &rows, keep, together)?;
                    let solution = runs.solution(py, names)?;
                    return Ok(Solution {
                        kept: keep.then(|| {
                            Arc::new(Kept {
                                model: self.id,
                                runs,
                                batched: true,
                            })
                        }),
                        ..solution
                    });
                }
                let cache = &self.ode_field;
                let runs = py
                    .detach(|| {
                        let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                        plans::run_ode_rows_cached(&mut field, model, &plan, &p, &rows)
                    })
                    .map_err(|d| raise(py, d))?;
                let pairs: Vec<_> = runs.iter().map(|r| (&r.sol, r.timing)).collect();
                Solution::rows(py, names, &pairs, false)
            }
            SolvePlan::Ode(plan) if keep => {
                let cache = &self.vjp_field;
                let run = py
                    .detach(|| {
                        let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                        vjp::solve_kept(&mut field, model, &plan, &p, y0)
                    })
                    .map_err(|d| raise(py, d))?;
                let solution = Solution::ode(py, names, &run.sol, &run.timing)?;
                Ok(Solution {
                    kept: Some(Arc::new(Kept {
                        model: self.id,
                        runs: KeptRuns::Solves(vec![run]),
                        batched: false,
                    })),
                    ..solution
                })
            }
            SolvePlan::Ode(plan) => {
                let cache = &self.ode_field;
                let run = py
                    .detach(|| {
                        let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                        plans::run_ode_cached(&mut field, model, &plan, &p, y0, 1)
                    })
                    .map_err(|d| raise(py, d))?;
                Solution::ode(py, names, &run.sol, &run.timing)
            }
            SolvePlan::Sde(plan) => {
                let run = py
                    .detach(|| sde::run_from(model, &plan, &p, y0, 1))
                    .map_err(|d| raise(py, d))?;
                Solution::sde(py, names, &plan, &run)
            }
            SolvePlan::Gradient(_) => Err(raise(
                py,
                vec![internal("a plain solve was planned as a gradient".into())],
            )),
        }
    }

    /// The gradient of `L = Σ_i ⟨cotangent[i], y(t[i])⟩ + error_weight·R_E +
    /// stiffness_weight·R_S` for the solve `solve(t=t, y0=y0, params=params, ...)` would do:
    /// `cotangent` is `dL/dy`, of the shape of that solve's `y` (`(len(t), n_states)`). The
    /// discrete adjoint of the solve (explicit methods), exact for the computation done.
    /// Returns a dict: `y0` (`dL/dy0`), `params` (`{name: dL/dp}` of each parameter's shape,
    /// through the initial state too when `y0` is not given), `solution` (the `Solution`),
    /// `error_estimate` and `stiffness` (`R_E`, `R_S` of the solve, unweighted).
    /// SDE models: the gradient over the paths `solve(t=t, paths=paths, seed=seed, ...)`
    /// draws, `cotangent` of their `y`'s shape `(paths, len(t), n_states)`, each path's
    /// discrete adjoint on its own Brownian path; `dL/dy0` summed over the paths, and
    /// `error_estimate`/`stiffness` one per path.
    #[pyo3(signature = (cotangent, t, y0=None, params=None, method=None, rtol=None, atol=None, dt=None, error_weight=0.0, stiffness_weight=0.0, paths=None, seed=None))]
    #[allow(clippy::too_many_arguments)]
    fn vjp<'py>(
        &self,
        py: Python<'py>,
        cotangent: PyArrayLikeDyn<'py, f64, AllowTypeChange>,
        t: PyArrayLike1<'py, f64, AllowTypeChange>,
        y0: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        params: Option<Bound<'py, PyDict>>,
        method: Option<String>,
        rtol: Option<f64>,
        atol: Option<f64>,
        dt: Option<f64>,
        error_weight: f64,
        stiffness_weight: f64,
        paths: Option<usize>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let model = &self.model;
        let reg = Regularizers {
            error: error_weight,
            stiffness: stiffness_weight,
        };
        if model.kind == ModelKind::Sde {
            let settings = (method, rtol, atol, dt);
            return self.sde_vjp(py, cotangent, &t, y0, params, settings, (paths, seed), reg);
        }
        let mut p = self.p.clone();
        override_params(py, model, &mut p, params)?;
        let y0 = initial_state(py, y0)?;
        let plan = gradient_plan(py, model, &t, method, (rtol, atol, dt))?;
        let cot = cotangent.as_array();
        let want = [plan.opts.save_at.len(), model.state_size];
        if cot.shape() != want {
            return Err(raise(
                py,
                vec![bad_argument(
                    format!(
                        "the cotangent has shape {:?}; the solve saves y of shape {want:?}",
                        cot.shape()
                    ),
                    "give dL/dy with one row per time in t and one column per state",
                )],
            ));
        }
        let cot: Vec<f64> = cot.iter().copied().collect();
        let cache = &self.vjp_field;
        let run = py
            .detach(|| {
                let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                vjp::run_cached(&mut field, model, &plan, &p, y0.as_deref(), &cot, reg)
            })
            .map_err(|d| raise(py, d))?;
        let out = gradient_dict(
            py,
            model,
            &run.dy0,
            &run.dp,
            run.error_estimate,
            run.stiffness,
        )?;
        let names = state_names(model);
        out.set_item("solution", Solution::ode(py, names, &run.sol, &run.timing)?)?;
        Ok(out)
    }

    /// `vjp` for many initial states at once, each row on its own steps (the GIL released for
    /// the whole batch): `cotangents` `(rows, len(t), n_states)`, `y0` `(rows, n_states)`,
    /// `error_weights` / `stiffness_weights` one for all rows or one per row (default 0).
    /// Returns `y0` `(rows, n_states)`, `params` `{name: (rows, *shape)}` (each row's own
    /// gradient: what `jax.vmap` of `glassbox.jax.odeint` needs; with `sum_rows=True` their
    /// sum, `{name: shape}`), `error_estimate` and `stiffness` `(rows,)`. `batched` as for
    /// `solve`: the rows solved and (summed, one weight for all) swept batched.
    #[pyo3(signature = (cotangents, t, y0, params=None, method=None, rtol=None, atol=None, dt=None, error_weights=None, stiffness_weights=None, sum_rows=false, batched=None))]
    #[allow(clippy::too_many_arguments)]
    fn vjp_rows<'py>(
        &self,
        py: Python<'py>,
        cotangents: PyArrayLikeDyn<'py, f64, AllowTypeChange>,
        t: PyArrayLike1<'py, f64, AllowTypeChange>,
        y0: PyArrayLikeDyn<'py, f64, AllowTypeChange>,
        params: Option<Bound<'py, PyDict>>,
        method: Option<String>,
        rtol: Option<f64>,
        atol: Option<f64>,
        dt: Option<f64>,
        error_weights: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        stiffness_weights: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        sum_rows: bool,
        batched: Option<bool>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let model = &self.model;
        let mut p = self.p.clone();
        override_params(py, model, &mut p, params)?;
        let rows = batch_rows(py, model, &y0, false)?;
        let plan = gradient_plan(py, model, &t, method, (rtol, atol, dt))?;
        let (b, n) = (rows.len(), model.state_size);
        let cot = cotangents.as_array();
        if cot.shape() != [b, plan.opts.save_at.len(), n] {
            return Err(raise(
                py,
                vec![bad_argument(
                    format!(
                        "the cotangents have shape {:?}; the rows' solves save y of shape {:?}",
                        cot.shape(),
                        [b, plan.opts.save_at.len(), n]
                    ),
                    "give dL/dy with one block per row of y0, one row per time in t and one column per state",
                )],
            ));
        }
        let cot: Vec<f64> = cot.iter().copied().collect();
        let we = row_weights(py, error_weights, b, "error_weights")?;
        let ws = row_weights(py, stiffness_weights, b, "stiffness_weights")?;
        let together = self.use_batched(py, &plan, &p, b, batched)?;
        let runs = self.solve_rows(py, &plan, &p, &rows, true, together)?;
        self.adjoint_rows(py, &runs, &cot, (&we, &ws), sum_rows)
    }

    /// The gradient of `L = Σ ⟨cotangent, y⟩ + error_weight·R_E + stiffness_weight·R_S` for
    /// a solution of `solve(..., keep=True)`: the discrete adjoint of that very solve (its
    /// steps, its parameters), without solving again, as often as needed. `cotangent` has the
    /// shape of `solution.y`. One initial state: returns what `vjp` returns, but `solution`.
    /// A batched `y0`: what `vjp_rows` returns (each row's own gradient, or with
    /// `sum_rows=True` their sum, which the batched sweep gives in one pass), with the weights
    /// one number for every row or one per row.
    #[pyo3(signature = (solution, cotangent, error_weight=None, stiffness_weight=None, sum_rows=false))]
    fn solve_adjoint<'py>(
        &self,
        py: Python<'py>,
        solution: PyRef<'py, Solution>,
        cotangent: PyArrayLikeDyn<'py, f64, AllowTypeChange>,
        error_weight: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        stiffness_weight: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        sum_rows: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let model = &self.model;
        let Some(kept) = solution.kept.clone() else {
            return Err(raise(
                py,
                vec![bad_argument(
                    "the solution was not kept for an adjoint".into(),
                    "solve with keep=True (or use vjp, which solves and differentiates in one call)",
                )],
            ));
        };
        if kept.model != self.id {
            return Err(raise(
                py,
                vec![bad_argument(
                    "the solution is another model's".into(),
                    "call solve_adjoint on the model whose solve(keep=True) gave the solution",
                )],
            ));
        }
        let sols = kept.runs.sols();
        let b = sols.len();
        let want: Vec<usize> = {
            let times = sols.first().map_or(0, |s| s.ts.len());
            let mut w = vec![times, model.state_size];
            if kept.batched {
                w.insert(0, b);
            }
            w
        };
        let cot = cotangent.as_array();
        if cot.shape() != want.as_slice() {
            return Err(raise(
                py,
                vec![bad_argument(
                    format!(
                        "the cotangent has shape {:?}; the solution's y has shape {want:?}",
                        cot.shape()
                    ),
                    "give dL/dy of the shape of solution.y",
                )],
            ));
        }
        let cot: Vec<f64> = cot.iter().copied().collect();
        let we = row_weights(py, error_weight, b, "error_weight")?;
        let ws = row_weights(py, stiffness_weight, b, "stiffness_weight")?;
        match (&kept.runs, kept.batched) {
            (KeptRuns::Solves(runs), false) => {
                let reg = Regularizers {
                    error: we[0],
                    stiffness: ws[0],
                };
                let cache = &self.vjp_field;
                let g = py
                    .detach(|| {
                        let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                        vjp::sweep(&mut field, model, &runs[0], &cot, reg)
                    })
                    .map_err(|d| raise(py, d))?;
                gradient_dict(py, model, &g.dy0, &g.dp, g.error_estimate, g.stiffness)
            }
            (runs, _) => self.adjoint_rows(py, runs, &cot, (&we, &ws), sum_rows),
        }
    }

    /// The simplified vector field (an SDE's drift and diffusion), or `view` = `"vjp"`,
    /// `"jvp"`, `"jacobian"`, `"dtK"` (K = 1..8), as text or (`latex=True`) the body of an
    /// `align*` environment: exactly what `glassbox show [--vjp ...] [--latex]` prints.
    #[pyo3(signature = (view = "field", latex = false))]
    fn show(&self, py: Python<'_>, view: &str, latex: bool) -> PyResult<String> {
        let Some(v) = View::from_name(view) else {
            return Err(raise(
                py,
                vec![bad_argument(
                    format!("`{view}` is not a view of the model"),
                    &format!("give one of: {}", View::NAMES.join(", ")),
                )],
            ));
        };
        let parts = show::derived(&self.model, v).map_err(|d| raise(py, vec![d]))?;
        Ok(show::render(&parts, latex))
    }

    /// The field as LaTeX for Jupyter: the `align*` body of `show(latex=True)` without its
    /// `%` title lines, in an `aligned` environment.
    fn _repr_latex_(&self) -> Option<String> {
        let parts = show::derived(&self.model, View::Field).ok()?;
        let body: String = parts
            .iter()
            .map(|(_, f)| glassbox::ir::print_latex(f))
            .collect::<Vec<_>>()
            .join(" \\\\\n");
        Some(format!("$$\\begin{{aligned}}\n{body}\\end{{aligned}}$$"))
    }

    /// Set every parameter from trained weights, as `glassbox predict --weights PATH` reads
    /// them: a run directory (its `weights.safetensors`, refused when a crash left it older
    /// than the checkpoint) or a weights file; names and shapes must be this model's.
    fn load_weights(&mut self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.p = glassbox::kit::load_weights(&self.model, &path).map_err(|d| raise(py, d))?;
        Ok(())
    }

    /// Write the current parameters as a safetensors file (the format `glassbox train`
    /// writes), atomically: a failed write leaves any file already at `path` as it was.
    fn save_weights(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let bytes = glassbox::train::io::weights_to_safetensors(&self.model, &self.p)
            .map_err(|d| raise(py, vec![d]))?;
        glassbox::kit::io::write_atomic(&path, &bytes).map_err(|d| raise(py, vec![d]))
    }

    /// Predict as `glassbox predict` does, with the model's current parameters and its `train`
    /// clause's solver settings. A classifier (a `cross_entropy` loss): the logits of every
    /// row of `x` `(rows, n_inputs)` (one sample a row, the inputs' values in order; the rows
    /// batched or per row as `predict` chooses, on `threads` threads, default every core),
    /// returned as a dict: `logits` `(rows, classes)`, `classes` `(rows,)` (the argmax),
    /// `forward` (the path taken, rows, field evaluations, time). Any other trainable model:
    /// its states at `t` (default: the times of the loss's data, else 101 points over the
    /// solve clause's span) as a `Solution`.
    #[pyo3(signature = (x=None, t=None, threads=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        t: Option<PyArrayLike1<'py, f64, AllowTypeChange>>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let model = &self.model;
        let plan = glassbox::app::predict::plan(model, &self.file).map_err(|d| raise(py, d))?;
        let (p, file) = (&self.p, &self.file);
        if plan.loss.loss == sema::Loss::CrossEntropy {
            let inputs: usize = model.inputs.iter().map(|i| i.shape.size()).sum();
            let Some(x) = x else {
                return Err(raise(
                    py,
                    vec![bad_argument(
                        format!(
                            "`{}` is a classifier: predict needs its samples",
                            model.name
                        ),
                        &format!("give x, an array (rows, {inputs}) of one sample a row"),
                    )],
                ));
            };
            let a = x.as_array();
            if a.ndim() != 2 || a.shape()[1] != inputs {
                return Err(raise(
                    py,
                    vec![bad_argument(
                        format!(
                            "x has shape {:?}; the model's inputs take {inputs} values a sample",
                            a.shape()
                        ),
                        &format!("give x as an array (rows, {inputs})"),
                    )],
                ));
            }
            if let Some(v) = a.iter().find(|v| !v.is_finite()) {
                return Err(raise(
                    py,
                    vec![bad_argument(
                        format!("x holds {v}, not a finite number"),
                        "give finite input values",
                    )],
                ));
            }
            let x = a
                .to_owned()
                .into_dimensionality::<numpy::ndarray::Ix2>()
                .map_err(|e| raise(py, vec![internal(e.to_string())]))?;
            let threads = threads.unwrap_or(plan.threads);
            let (logits, forward, k) = py
                .detach(|| glassbox::train::predict_table(model, &plan, p, &x, threads))
                .map_err(|d| raise(py, glassbox::app::located(file)(d)))?;
            let rows = x.nrows();
            let classes: Vec<i64> = logits
                .chunks(k.max(1))
                .map(|z| glassbox::train::argmax(z) as i64)
                .collect();
            let out = PyDict::new(py);
            out.set_item("logits", matrix(py, (rows, k), logits)?)?;
            out.set_item("classes", classes.into_pyarray(py))?;
            out.set_item("forward", crate::train::json(py, &forward)?)?;
            return Ok(out.into_any());
        }
        let times = match t {
            Some(t) => t.as_array().to_vec(),
            None => glassbox::app::predict::default_times(model, file, &plan, &DiskLoader)
                .map_err(|d| raise(py, d))?
                .ok_or_else(|| {
                    raise(
                        py,
                        vec![bad_argument(
                            "no prediction times: the model's data and solve clause give none"
                                .into(),
                            "give the times t=",
                        )],
                    )
                })?,
        };
        let start = std::time::Instant::now();
        let sol = py
            .detach(|| glassbox::train::predict(model, p, &plan, &times))
            .map_err(|d| raise(py, glassbox::app::located(file)(d)))?;
        let timing = plans::Timing::new(std::time::Duration::ZERO, start.elapsed(), 1);
        Ok(Solution::ode(py, state_names(model), &sol, &timing)?
            .into_pyobject(py)?
            .into_any())
    }

    /// Compile the model ahead of time into a standalone executable, as `glassbox build` does
    /// (`docs/build.md`): `output` (default: the model's name, in the current directory), with
    /// the model's current parameter values, or those of `weights` (a run directory or a
    /// weights file). Needs a C compiler (`cc`, or `$CC`) and glassbox's runtime library of
    /// the same version: `runtime`, else `$GLASSBOX_RUNTIME`, else the one beside a
    /// `glassbox` executable on `PATH` (`cargo build --release` writes both). A failed build
    /// leaves an earlier `output` as it was. Returns the path written.
    #[pyo3(signature = (output=None, weights=None, runtime=None))]
    fn build(
        &self,
        py: Python<'_>,
        output: Option<PathBuf>,
        weights: Option<PathBuf>,
        runtime: Option<PathBuf>,
    ) -> PyResult<String> {
        let model = &self.model;
        let runtime = match runtime {
            Some(path) if path.is_file() => path,
            Some(path) => {
                return Err(raise(
                    py,
                    vec![
                        Diag::error(
                            "glassbox::runtime_missing",
                            format!("runtime=`{}` is not a file", path.display()),
                        )
                        .help("give the libglassbox.a that `cargo build --release` writes into target/release/"),
                    ],
                ));
            }
            None => {
                glassbox::kit::link::runtime_library_on_path().map_err(|d| raise(py, vec![d]))?
            }
        };
        let weights = match weights {
            Some(path) => Weights {
                values: glassbox::kit::load_weights(model, &path).map_err(|d| raise(py, d))?,
                source: path.display().to_string(),
            },
            None => Weights {
                values: self.p.clone(),
                source: "the parameters of the Python model it was built from".into(),
            },
        };
        let out = output.unwrap_or_else(|| PathBuf::from(&model.name));
        let file = &self.file;
        py.detach(|| {
            glassbox::kit::build::write_binary(model, file, Some(weights), &runtime, &out)
        })
        .map_err(|d| raise(py, d))?;
        Ok(out.display().to_string())
    }

    /// Train the model's learned parameters on its data with its own objective, as
    /// `glassbox train` does (same seed, same weights bit for bit): `iterations` or `epochs`
    /// override the `train` clause, `seed` the run's seed (it draws the nets' initial
    /// weights, so values set with `model.params = ...` before are not the start), `threads`
    /// the rows' threads. `out`: also write the run directory there (weights, checkpoints,
    /// run.json; an existing run is refused unless `overwrite=True`). `progress`: `True` for a
    /// progress line on stderr, a callable `f(iteration, total, metric)`, or `False`.
    /// `resume=DIR`: continue the run in `DIR` from its checkpoint, as `glassbox train
    /// --resume DIR` (to the same weights as an uninterrupted run; in `DIR` unless `out` names
    /// a new directory; a `seed` other than the run's and a changed model are refused, the
    /// latter unless `force=True`; `iterations` may extend it).
    /// Afterwards the model holds the trained values (`model.params`). Returns a dict:
    /// `metrics` (one dict per iteration), `report` (run.json's final report), `out`.
    #[pyo3(signature = (iterations=None, epochs=None, seed=None, threads=None, out=None, overwrite=false, progress=None, resume=None, force=false))]
    #[allow(clippy::too_many_arguments)]
    fn train<'py>(
        &mut self,
        py: Python<'py>,
        iterations: Option<u64>,
        epochs: Option<u64>,
        seed: Option<u64>,
        threads: Option<usize>,
        out: Option<PathBuf>,
        overwrite: bool,
        progress: Option<Py<PyAny>>,
        resume: Option<PathBuf>,
        force: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let progress =
            progress.or_else(|| Some(true.into_pyobject(py).ok()?.to_owned().into_any().unbind()));
        let req = training::Request {
            iterations,
            epochs,
            seed,
            threads,
            out,
            overwrite,
            progress,
            resume,
            force,
        };
        let (p, results) = training::run(py, &self.file, &self.model, req)?;
        self.p = p;
        Ok(results)
    }

    fn __repr__(&self) -> String {
        format!(
            "<glassbox.Model {} ({}): states {}, {} parameter values>",
            self.model.name,
            self.kind(),
            state_names(&self.model).join(", "),
            self.model.param_size
        )
    }
}

impl Model {
    /// `vjp` on an SDE model: the plan's paths and the gradient over them
    /// (`app::sde_vjp::run`).
    #[allow(clippy::too_many_arguments)]
    fn sde_vjp<'py>(
        &self,
        py: Python<'py>,
        cotangent: PyArrayLikeDyn<'py, f64, AllowTypeChange>,
        t: &PyArrayLike1<'py, f64, AllowTypeChange>,
        y0: Option<PyArrayLikeDyn<'py, f64, AllowTypeChange>>,
        params: Option<Bound<'py, PyDict>>,
        (method, rtol, atol, dt): (Option<String>, Option<f64>, Option<f64>, Option<f64>),
        (paths, seed): (Option<usize>, Option<u64>),
        reg: Regularizers,
    ) -> PyResult<Bound<'py, PyDict>> {
        let model = &self.model;
        let mut p = self.p.clone();
        override_params(py, model, &mut p, params)?;
        let y0 = initial_state(py, y0)?;
        let req = SolveRequest {
            save_at: Some(t.as_array().to_vec()),
            method,
            rtol,
            atol,
            dt,
            paths,
            seed,
            ..SolveRequest::default()
        };
        let SolvePlan::Sde(plan) = plans::plan(&req, model).map_err(|d| raise(py, d))? else {
            return Err(raise(
                py,
                vec![internal(
                    "an SDE's gradient was not planned as an SDE solve".into(),
                )],
            ));
        };
        let cot = cotangent.as_array();
        let want = [plan.paths, plan.opts.save_at.len(), model.state_size];
        if cot.shape() != want {
            return Err(raise(
                py,
                vec![bad_argument(
                    format!(
                        "the cotangent has shape {:?}; the paths' y has shape {want:?}",
                        cot.shape()
                    ),
                    "give dL/dy with one block per path, one row per time in t and one column per state",
                )],
            ));
        }
        let cot: Vec<f64> = cot.iter().copied().collect();
        let run = py
            .detach(|| glassbox::app::sde_vjp::run(model, &plan, &p, y0.as_deref(), &cot, reg))
            .map_err(|d| raise(py, d))?;
        let out = PyDict::new(py);
        out.set_item("y0", run.dy0.clone().into_pyarray(py))?;
        out.set_item("params", params_dict(py, model, &run.dp)?)?;
        out.set_item(
            "error_estimate",
            run.error_estimate.clone().into_pyarray(py),
        )?;
        out.set_item("stiffness", run.stiffness.clone().into_pyarray(py))?;
        let mut stats = glassbox::solve::Stats::default();
        for s in &run.paths {
            stats.add(&s.stats);
        }
        let solved = sde::SdeRun {
            sol: glassbox::solve::sde::SdeSolution {
                paths: run.paths,
                stats,
                batch: None,
            },
            timing: run.timing,
        };
        out.set_item(
            "solution",
            Solution::sde(py, state_names(model), &plan, &solved)?,
        )?;
        Ok(out)
    }

    /// Whether `rows` initial states go through the batched solver: as `batched` says, else
    /// the CLI's rule (an explicit method, GEMM-sized layers, at least 8 rows).
    fn use_batched(
        &self,
        py: Python<'_>,
        plan: &plans::Plan,
        p: &[f64],
        rows: usize,
        batched: Option<bool>,
    ) -> PyResult<bool> {
        let explicit = matches!(plan.method, glassbox::solve::Method::Explicit(_));
        match batched {
            Some(b) => Ok(b),
            None if !explicit || rows < glassbox::train::MIN_BATCH_ROWS => Ok(false),
            None => {
                let (model, cache) = (&self.model, &self.batch_field);
                py.detach(|| {
                    let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                    app_rows::field_with(&mut field, model, p).map(|f| app_rows::batched(f, rows))
                })
                .map_err(|d| raise(py, d))
            }
        }
    }

    /// The rows' solves: batched (`together`), or one after another with their stages kept
    /// (`keep` must then be true: the plain per-row solve is `run_ode_rows_cached`).
    fn solve_rows(
        &self,
        py: Python<'_>,
        plan: &plans::Plan,
        p: &[f64],
        rows: &[Vec<f64>],
        keep: bool,
        together: bool,
    ) -> PyResult<KeptRuns> {
        let model = &self.model;
        if together {
            let cache = &self.batch_field;
            let run = py
                .detach(|| {
                    let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                    app_rows::solve(&mut field, model, plan, p, rows, keep)
                })
                .map_err(|d| raise(py, d))?;
            return Ok(KeptRuns::Batch(run));
        }
        let cache = &self.vjp_field;
        let runs = py
            .detach(|| {
                let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                rows.iter()
                    .enumerate()
                    .map(|(i, y0)| {
                        vjp::solve_kept(&mut field, model, plan, p, Some(y0))
                            .map_err(|d| plans::in_row(i, d))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|d| raise(py, d))?;
        Ok(KeptRuns::Solves(runs))
    }

    /// The gradients of kept rows for the cotangents `cot` (the rows' `y`, row-major) and the
    /// per-row weights: each row's own (`vjp_rows`'s dict), or with `sum_rows` `dL/dp` summed
    /// over the rows — by the batched sweep when the rows were solved batched and every row
    /// has the same weights, else by adding the rows' sweeps.
    fn adjoint_rows<'py>(
        &self,
        py: Python<'py>,
        runs: &KeptRuns,
        cot: &[f64],
        (we, ws): (&[f64], &[f64]),
        sum_rows: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let model = &self.model;
        let same = |w: &[f64]| w.windows(2).all(|x| x[0] == x[1]);
        let sols = runs.sols();
        let recorded: (Vec<f64>, Vec<f64>) = sols
            .iter()
            .map(|s| glassbox::grad::recorded_regularizers(s))
            .unzip();
        if let (KeptRuns::Batch(run), true, true, true) = (runs, sum_rows, same(we), same(ws)) {
            let reg = Regularizers {
                error: we.first().copied().unwrap_or(0.0),
                stiffness: ws.first().copied().unwrap_or(0.0),
            };
            let cache = &self.batch_field;
            let (dy0, dp, _) = py
                .detach(|| {
                    let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                    app_rows::sweep(&mut field, model, run, cot, reg)
                })
                .map_err(|d| raise(py, d))?;
            return summed_dict(py, model, dy0, &dp, recorded);
        }
        let cache = &self.vjp_field;
        let sweeps = py
            .detach(|| {
                let mut field = cache.lock().unwrap_or_else(PoisonError::into_inner);
                let mut start = 0;
                (sols.iter().enumerate())
                    .map(|(i, sol)| {
                        let c = &cot[start..start + sol.us.len()];
                        start += sol.us.len();
                        let reg = Regularizers {
                            error: we[i],
                            stiffness: ws[i],
                        };
                        runs.sweep_row(&mut field, model, i, c, reg)
                            .map_err(|d| plans::in_row(i, d))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|d| raise(py, d))?;
        if sum_rows {
            let mut dp = vec![0.0; self.p.len()];
            for g in &sweeps {
                for (a, d) in dp.iter_mut().zip(&g.dp) {
                    *a += d;
                }
            }
            let dy0 = sweeps.iter().flat_map(|g| g.dy0.iter().copied()).collect();
            return summed_dict(py, model, dy0, &dp, recorded);
        }
        let grads: Vec<_> = sweeps
            .iter()
            .map(|g| {
                (
                    g.dy0.as_slice(),
                    g.dp.as_slice(),
                    g.error_estimate,
                    g.stiffness,
                )
            })
            .collect();
        rows_gradient_dict(py, model, &self.p, &grads)
    }
}

/// The dict of a batch's gradient with `dL/dp` summed over the rows: `y0` `(rows, n_states)`,
/// `params` `{name: dL/dp}` of each parameter's shape, `error_estimate` and `stiffness`
/// `(rows,)`.
fn summed_dict<'py>(
    py: Python<'py>,
    model: &sema::Model,
    dy0: Vec<f64>,
    dp: &[f64],
    (e, s): (Vec<f64>, Vec<f64>),
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let rows = e.len();
    out.set_item("y0", matrix(py, (rows, model.state_size), dy0)?)?;
    out.set_item("params", params_dict(py, model, dp)?)?;
    out.set_item("error_estimate", e.into_pyarray(py))?;
    out.set_item("stiffness", s.into_pyarray(py))?;
    Ok(out)
}

/// Check `file` as the CLI does; errors raise, warnings stay with the model.
fn check(py: Python<'_>, file: &std::sync::Arc<SourceFile>) -> PyResult<Model> {
    let checked = glassbox::check_source(file, &DiskLoader);
    match checked.model {
        Some(model) => Ok(Model {
            file: file.clone(),
            p: glassbox::solve::param_values(&model),
            ode_field: Mutex::new(None),
            vjp_field: Mutex::new(None),
            batch_field: Mutex::new(None),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            model,
            warnings: checked.diags,
        }),
        None => Err(raise(py, checked.diags)),
    }
}

/// The solve a gradient differentiates: saved at `t`, with the given settings over the model's.
fn gradient_plan(
    py: Python<'_>,
    model: &sema::Model,
    t: &PyArrayLike1<'_, f64, AllowTypeChange>,
    method: Option<String>,
    (rtol, atol, dt): (Option<f64>, Option<f64>, Option<f64>),
) -> PyResult<plans::Plan> {
    let req = SolveRequest {
        save_at: Some(t.as_array().to_vec()),
        method,
        rtol,
        atol,
        dt,
        ..SolveRequest::default()
    };
    plans::plan_ode(&req, model).map_err(|d| raise(py, d))
}

/// `{name: array}` of the parameters' values `p` (or their gradients), each of its shape.
fn params_dict<'py>(
    py: Python<'py>,
    model: &sema::Model,
    p: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (decl, values) in params::values(model, p) {
        let array = ArrayD::from_shape_vec(IxDyn(&decl.shape), values.to_vec())
            .map_err(|e| raise(py, vec![internal(e.to_string())]))?;
        out.set_item(decl.name, array.into_pyarray(py))?;
    }
    Ok(out)
}

/// `p` with the `{name: value}` overrides applied (`params::set` checks names and shapes).
fn override_params<'py>(
    py: Python<'py>,
    model: &sema::Model,
    p: &mut [f64],
    params: Option<Bound<'py, PyDict>>,
) -> PyResult<()> {
    let Some(params) = params else {
        return Ok(());
    };
    for (name, value) in params.iter() {
        let name: String = name.extract()?;
        let value: PyArrayLikeDyn<'py, f64, AllowTypeChange> = value.extract()?;
        let value = value.as_array();
        let values: Vec<f64> = value.iter().copied().collect();
        params::set(model, p, &name, value.shape(), &values).map_err(|d| raise(py, vec![d]))?;
    }
    Ok(())
}

/// A 2-D `y0` as its rows, each one initial state (`solve`'s batched `y0`): ODE models with
/// save times only, since every row's `y` must have the same times.
fn batch_rows(
    py: Python<'_>,
    model: &sema::Model,
    y0: &PyArrayLikeDyn<'_, f64, AllowTypeChange>,
    over: bool,
) -> PyResult<Vec<Vec<f64>>> {
    let refuse = |msg: String, help: &str| Err(raise(py, vec![bad_argument(msg, help)]));
    if model.kind == ModelKind::Sde {
        return refuse(
            format!(
                "`{}` is an SDE model; a batched y0 is for ODE models",
                model.name
            ),
            "give one initial state and `paths=` for many sample paths",
        );
    }
    if over {
        return refuse(
            "a batched y0 with `over=` would save each row at its own steps".into(),
            "give the save times `t=` instead, so that every row has the same times",
        );
    }
    let a = y0.as_array();
    Ok(a.outer_iter()
        .map(|row| row.iter().copied().collect())
        .collect())
}

/// `y0` as one initial state (checked against the model by the app layer).
fn initial_state(
    py: Python<'_>,
    y0: Option<PyArrayLikeDyn<'_, f64, AllowTypeChange>>,
) -> PyResult<Option<Vec<f64>>> {
    match y0 {
        Some(y0) if y0.as_array().ndim() != 1 => Err(raise(
            py,
            vec![bad_argument(
                format!(
                    "y0 has {} dimensions; here it is one initial state",
                    y0.as_array().ndim()
                ),
                "give y0 as a 1-D array (one initial state) or, to `solve`, a 2-D array (one per row)",
            )],
        )),
        Some(y0) => Ok(Some(y0.as_array().iter().copied().collect())),
        None => Ok(None),
    }
}

/// `vjp`'s dict of one gradient: `y0`, `params` (`{name: dL/dp}`), `error_estimate`,
/// `stiffness`.
fn gradient_dict<'py>(
    py: Python<'py>,
    model: &sema::Model,
    dy0: &[f64],
    dp: &[f64],
    error_estimate: f64,
    stiffness: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("y0", dy0.to_vec().into_pyarray(py))?;
    out.set_item("params", params_dict(py, model, dp)?)?;
    out.set_item("error_estimate", error_estimate)?;
    out.set_item("stiffness", stiffness)?;
    Ok(out)
}

/// `vjp_rows`'s dict of every row's gradient `(dL/dy0, dL/dp, R_E, R_S)`: `y0`
/// `(rows, n_states)`, `params` `{name: (rows, *shape)}`, `error_estimate` and `stiffness`
/// `(rows,)`.
fn rows_gradient_dict<'py>(
    py: Python<'py>,
    model: &sema::Model,
    p: &[f64],
    grads: &[(&[f64], &[f64], f64, f64)],
) -> PyResult<Bound<'py, PyDict>> {
    let (b, n) = (grads.len(), model.state_size);
    let out = PyDict::new(py);
    let dy0: Vec<f64> = grads.iter().flat_map(|g| g.0.iter().copied()).collect();
    out.set_item("y0", matrix(py, (b, n), dy0)?)?;
    let params = PyDict::new(py);
    // Each parameter's slice of every row's flat gradient, rows stacked in front.
    for ((decl, _), q) in params::values(model, p).into_iter().zip(&model.params) {
        let mut shape = vec![b];
        shape.extend(&decl.shape);
        let range = q.offset..q.offset + q.shape.size();
        let mut values = Vec::with_capacity(b * range.len());
        for g in grads {
            values.extend_from_slice(g.1.get(range.clone()).unwrap_or(&[]));
        }
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|e| raise(py, vec![internal(e.to_string())]))?;
        params.set_item(decl.name.clone(), array.into_pyarray(py))?;
    }
    out.set_item("params", params)?;
    let e: Vec<f64> = grads.iter().map(|g| g.2).collect();
    let s: Vec<f64> = grads.iter().map(|g| g.3).collect();
    out.set_item("error_estimate", e.into_pyarray(py))?;
    out.set_item("stiffness", s.into_pyarray(py))?;
    Ok(out)
}

/// A regularizer weight for `rows` rows: none (0), one number for all, or one per row.
fn row_weights(
    py: Python<'_>,
    w: Option<PyArrayLikeDyn<'_, f64, AllowTypeChange>>,
    rows: usize,
    what: &str,
) -> PyResult<Vec<f64>> {
    let Some(w) = w else {
        return Ok(vec![0.0; rows]);
    };
    let w = w.as_array();
    match w.len() {
        1 if w.ndim() <= 1 => Ok(vec![w.iter().copied().next().unwrap_or(0.0); rows]),
        k if k == rows && w.ndim() == 1 => Ok(w.iter().copied().collect()),
        k => Err(raise(
            py,
            vec![bad_argument(
                format!("{what} has {k} values for {rows} rows"),
                "give one weight for every row, or one per row",
            )],
        )),
    }
}

/// `values` (row-major) as a NumPy array of `shape`.
fn matrix<'py>(
    py: Python<'py>,
    shape: (usize, usize),
    values: Vec<f64>,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let a = numpy::ndarray::Array2::from_shape_vec(shape, values)
        .map_err(|e| raise(py, vec![internal(e.to_string())]))?;
    Ok(a.into_pyarray(py))
}

fn bad_argument(msg: String, help: &str) -> Diag {
    Diag::error("glassbox::bad_argument", msg).help(help.to_string())
}

fn internal(msg: String) -> Diag {
    Diag::error("glassbox::internal", msg).help("this is a bug in glassbox's Python package")
}
