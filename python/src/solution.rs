//! `glassbox.Solution`: a run's results as NumPy arrays and plain dicts — the saved times and
//! states, the solver's statistics, per-step records (ODE) and the timing.

use glassbox::app::sde;
use std::sync::Arc;

use glassbox::app::rows::BatchRun;
use glassbox::app::solve::Timing;
use glassbox::app::vjp::{self, KeptSolve, Regularizers, Sweep};
use glassbox::grad::JitVjpField;
use glassbox::solve::Stats;
use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What `Model.solve` returns.
#[pyclass(frozen, module = "glassbox")]
pub struct Solution {
    /// The saved times, shape `(len(t),)`.
    #[pyo3(get)]
    pub t: Py<PyAny>,
    /// The saved states: `(len(t), n_states)` for an ODE, `(paths, len(t), n_states)` for an
    /// SDE.
    #[pyo3(get)]
    pub y: Py<PyAny>,
    /// The state columns of `y`'s last axis.
    #[pyo3(get)]
    pub states: Vec<String>,
    /// The method, as the CLI's JSON output names it.
    #[pyo3(get)]
    pub method: String,
    /// `nfe`, `accepted`, `rejected`, `jacobian_evals`, `lu_factorizations`, `stiff_steps`,
    /// `switches` (SDEs: summed over paths).
    #[pyo3(get)]
    pub stats: Py<PyDict>,
    /// One entry per accepted step, as arrays `t`, `h`, `error_estimate`,
    /// `stiffness_estimate` (NaN where the method has none) and `nfe`; SDEs: every path's steps
    /// one after another, with `path` (the path's index); `None` for a batched `y0`.
    #[pyo3(get)]
    pub steps: Option<Py<PyDict>>,
    /// `compile_ms`, `solve_ms`.
    #[pyo3(get)]
    pub timing: Py<PyDict>,
    /// SDEs: the Brownian seed and the number of paths; `None` for ODEs.
    #[pyo3(get)]
    pub seed: Option<u64>,
    #[pyo3(get)]
    pub paths: Option<usize>,
    /// A batched `y0`: the number of rows (`y` is then `(rows, len(t), n_states)`); `None`
    /// for one initial state.
    #[pyo3(get)]
    pub rows: Option<usize>,
    /// `error_estimate` (`R_E = Σ E_j|h_j|`) and `stiffness` (`R_S = Σ S_j|h_j|`) of the
    /// solve, floats (arrays over the rows for a batched `y0`, over the paths for an SDE).
    #[pyo3(get)]
    pub regularizers: Option<Py<PyDict>>,
    /// A batched `y0`: whether its rows were solved together (the batched solver, GEMMs) or
    /// one after another; `None` otherwise.
    #[pyo3(get)]
    pub batched: Option<bool>,
    /// `solve(keep=True)`: the solves with their stages, for `Model.solve_adjoint`.
    pub kept: Option<Arc<Kept>>,
}

#[pymethods]
impl Solution {
    /// Whether the solve's stages were kept (`solve(keep=True)`), so that
    /// `Model.solve_adjoint` can differentiate it.
    #[getter(kept)]
    fn is_kept(&self) -> bool {
        self.kept.is_some()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let shape: Vec<usize> = self.y.bind(py).getattr("shape")?.extract()?;
        Ok(format!(
            "<glassbox.Solution {}: y {:?}, states {}>",
            self.method,
            shape,
            self.states.join(", ")
        ))
    }
}

/// The solves of `solve(keep=True)`, stages and all (one per row of a batched `y0`), and the
/// model they belong to (`Model.solve_adjoint` refuses another model's).
pub struct Kept {
    pub model: u64,
    pub runs: KeptRuns,
    /// Whether `y0` was a batch of rows (even of one).
    pub batched: bool,
}

/// Kept solves: one after another (one, or a batch's rows), or a batch solved together.
pub enum KeptRuns {
    Solves(Vec<KeptSolve>),
    Batch(BatchRun),
}

impl KeptRuns {
    /// Every row's solution, in order.
    pub fn sols(&self) -> Vec<&glassbox::solve::Solution> {
        match self {
            KeptRuns::Solves(runs) => runs.iter().map(|r| &r.sol).collect(),
            KeptRuns::Batch(run) => run.sols.iter().collect(),
        }
    }

    /// Row `i`'s own gradient, on its kept solution in place.
    pub fn sweep_row(
        &self,
        field: &mut Option<JitVjpField>,
        model: &glassbox::sema::Model,
        i: usize,
        dl_dy: &[f64],
        reg: Regularizers,
    ) -> Result<Sweep, Vec<glassbox::diag::Diag>> {
        match self {
            KeptRuns::Solves(runs) => vjp::sweep(field, model, &runs[i], dl_dy, reg),
            KeptRuns::Batch(run) => run.sweep_row(field, model, i, dl_dy, reg),
        }
    }

    /// The rows as a batched `y0`'s `Solution` (not yet holding them).
    pub fn solution(&self, py: Python<'_>, states: Vec<String>) -> PyResult<Solution> {
        match self {
            KeptRuns::Solves(runs) => {
                let pairs: Vec<_> = runs.iter().map(|r| (&r.sol, r.timing)).collect();
                Solution::rows(py, states, &pairs, false)
            }
            KeptRuns::Batch(run) => {
                // The batch's one timing, on its first row (the rows' timings are summed).
                let zero = Timing {
                    compile_ms: 0.0,
                    median_solve_ms: 0.0,
                    repeat: 1,
                };
                let pairs: Vec<_> = (run.sols.iter().enumerate())
                    .map(|(i, s)| (s, if i == 0 { run.timing } else { zero }))
                    .collect();
                Solution::rows(py, states, &pairs, true)
            }
        }
    }
}

impl Solution {
    pub fn ode(
        py: Python<'_>,
        states: Vec<String>,
        sol: &glassbox::solve::Solution,
        run_timing: &Timing,
    ) -> PyResult<Solution> {
        let y = Array2::from_shape_vec((sol.ts.len(), sol.dim), sol.us.clone())
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        let steps = step_records(py, &[sol], false)?;
        Ok(Solution {
            t: PyArray1::from_vec(py, sol.ts.clone()).into_any().unbind(),
            y: y.into_pyarray(py).into_any().unbind(),
            states,
            method: sol.method.to_string(),
            stats: stats(py, &sol.stats)?,
            steps: Some(steps),
            timing: timing(py, run_timing)?,
            seed: None,
            paths: None,
            rows: None,
            regularizers: Some(regularizers(py, [sol].into_iter(), false)?),
            batched: None,
            kept: None,
        })
    }

    /// One solve per row of a batched `y0`, on the same save times: `y` is
    /// `(rows, len(t), n_states)`, `stats` and `timing` are summed over the rows, and the
    /// per-step records are left out (`None`), as for SDE paths.
    pub fn rows(
        py: Python<'_>,
        states: Vec<String>,
        runs: &[(&glassbox::solve::Solution, Timing)],
        batched: bool,
    ) -> PyResult<Solution> {
        let n = states.len();
        let (ts, method) = match runs.first() {
            Some((sol, _)) => (sol.ts.clone(), sol.method.to_string()),
            None => (Vec::new(), String::new()),
        };
        let mut values = Vec::with_capacity(runs.len() * ts.len() * n);
        let mut total = Stats::default();
        let (mut compile, mut solve) = (0.0, 0.0);
        for (sol, t) in runs {
            values.extend_from_slice(&sol.us);
            total.add(&sol.stats);
            compile += t.compile_ms;
            solve += t.median_solve_ms;
        }
        let y = Array3::from_shape_vec((runs.len(), ts.len(), n), values)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        let timing = PyDict::new(py);
        timing.set_item("compile_ms", compile)?;
        timing.set_item("solve_ms", solve)?;
        Ok(Solution {
            t: PyArray1::from_vec(py, ts).into_any().unbind(),
            y: y.into_pyarray(py).into_any().unbind(),
            states,
            method,
            stats: stats(py, &total)?,
            steps: None,
            timing: timing.unbind(),
            seed: None,
            paths: None,
            rows: Some(runs.len()),
            regularizers: Some(regularizers(py, runs.iter().map(|(sol, _)| *sol), true)?),
            batched: Some(batched),
            kept: None,
        })
    }

    pub fn sde(
        py: Python<'_>,
        states: Vec<String>,
        plan: &sde::Plan,
        run: &sde::SdeRun,
    ) -> PyResult<Solution> {
        let sol = &run.sol;
        let times = plan.opts.save_at.len();
        let n = states.len();
        let mut values = Vec::with_capacity(sol.paths.len() * times * n);
        for path in &sol.paths {
            values.extend_from_slice(&path.us);
        }
        let y = Array3::from_shape_vec((sol.paths.len(), times, n), values)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        let ts = sol
            .paths
            .first()
            .map_or_else(|| plan.opts.save_at.clone(), |p| p.ts.clone());
        Ok(Solution {
            t: PyArray1::from_vec(py, ts).into_any().unbind(),
            y: y.into_pyarray(py).into_any().unbind(),
            states,
            method: plan.method.name().to_string(),
            stats: stats(py, &sol.stats)?,
            steps: Some(step_records(
                py,
                &sol.paths.iter().collect::<Vec<_>>(),
                true,
            )?),
            timing: timing(py, &run.timing)?,
            seed: Some(plan.seed),
            paths: Some(plan.paths),
            rows: None,
            regularizers: Some(regularizers(py, sol.paths.iter(), true)?),
            batched: None,
            kept: None,
        })
    }
}

/// Every accepted step of `sols`, as arrays: `t`, `h`, `error_estimate`,
/// `stiffness_estimate` (NaN where the method has none), `nfe`; with `paths`, also `path` (the
/// solution's index: an SDE's paths one after another).
fn step_records(
    py: Python<'_>,
    sols: &[&glassbox::solve::Solution],
    paths: bool,
) -> PyResult<Py<PyDict>> {
    let records = || {
        sols.iter()
            .enumerate()
            .flat_map(|(k, s)| s.steps.iter().map(move |r| (k, r)))
    };
    let column = |f: &dyn Fn(usize, &glassbox::solve::StepRecord) -> f64| {
        PyArray1::from_vec(py, records().map(|(k, r)| f(k, r)).collect())
    };
    let steps = PyDict::new(py);
    if paths {
        steps.set_item("path", column(&|k, _| k as f64))?;
    }
    steps.set_item("t", column(&|_, s| s.t))?;
    steps.set_item("h", column(&|_, s| s.h))?;
    steps.set_item(
        "error_estimate",
        column(&|_, s| s.error_estimate.unwrap_or(f64::NAN)),
    )?;
    steps.set_item(
        "stiffness_estimate",
        column(&|_, s| s.stiffness_estimate.unwrap_or(f64::NAN)),
    )?;
    steps.set_item("nfe", column(&|_, s| f64::from(s.nfe)))?;
    Ok(steps.unbind())
}

/// `{error_estimate, stiffness}` of the solves: floats for one, arrays (`rows`) for many.
fn regularizers<'a>(
    py: Python<'_>,
    sols: impl Iterator<Item = &'a glassbox::solve::Solution>,
    rows: bool,
) -> PyResult<Py<PyDict>> {
    let (e, s): (Vec<f64>, Vec<f64>) = sols.map(glassbox::grad::recorded_regularizers).unzip();
    let d = PyDict::new(py);
    if rows {
        d.set_item("error_estimate", PyArray1::from_vec(py, e))?;
        d.set_item("stiffness", PyArray1::from_vec(py, s))?;
    } else {
        d.set_item("error_estimate", e.first().copied().unwrap_or(0.0))?;
        d.set_item("stiffness", s.first().copied().unwrap_or(0.0))?;
    }
    Ok(d.unbind())
}

fn stats(py: Python<'_>, s: &Stats) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("nfe", s.nfe)?;
    d.set_item("accepted", s.accepted)?;
    d.set_item("rejected", s.rejected)?;
    d.set_item("jacobian_evals", s.jacobian_evals)?;
    d.set_item("lu_factorizations", s.lu_factorizations)?;
    d.set_item("stiff_steps", s.stiff_steps)?;
    d.set_item("switches", s.switches)?;
    Ok(d.unbind())
}

fn timing(py: Python<'_>, t: &Timing) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("compile_ms", t.compile_ms)?;
    d.set_item("solve_ms", t.median_solve_ms)?;
    Ok(d.unbind())
}
