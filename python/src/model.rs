//! `glassbox.Model`: a checked model and its solve. Loading goes through `kit::load_source`
//! and `glassbox::check_source` with the `DiskLoader`, planning and running through
//! `app::solve` / `app::sde` — the calls `glassbox solve` makes — so the defaults are the
//! model file's own solve clause, as on the command line.

use std::path::PathBuf;

use glassbox::app::params;
use glassbox::app::solve::{self as plans, SolvePlan, state_names};
use glassbox::app::{SolveRequest, sde};
use glassbox::diag::Diag;
use glassbox::sema::{self, ModelKind};
use glassbox::source::{DiskLoader, SourceFile};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{AllowTypeChange, IntoPyArray, PyArrayLike1, PyArrayLikeDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{Diagnostic, diagnostics, raise};
use crate::solution::Solution;

/// A model file that checked: its states, parameters and solve clause.
#[pyclass(frozen, module = "glassbox")]
pub struct Model {
    model: sema::Model,
    /// The checker's warnings (a model with errors raises instead).
    warnings: Vec<Diag>,
}

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
    /// shape (0-d for a scalar) holding the model file's values. A fresh copy each time.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = glassbox::solve::param_values(&self.model);
        let out = PyDict::new(py);
        for (decl, values) in params::values(&self.model, &p) {
            let array = ArrayD::from_shape_vec(IxDyn(&decl.shape), values.to_vec())
                .map_err(|e| raise(py, vec![internal(e.to_string())]))?;
            out.set_item(decl.name, array.into_pyarray(py))?;
        }
        Ok(out)
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
    #[pyo3(signature = (t=None, y0=None, params=None, method=None, rtol=None, atol=None, over=None, dt=None, paths=None, seed=None))]
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
    ) -> PyResult<Solution> {
        let model = &self.model;
        let mut p = glassbox::solve::param_values(model);
        if let Some(params) = params {
            for (name, value) in params.iter() {
                let name: String = name.extract()?;
                let value: PyArrayLikeDyn<'py, f64, AllowTypeChange> = value.extract()?;
                let value = value.as_array();
                let values: Vec<f64> = value.iter().copied().collect();
                params::set(model, &mut p, &name, value.shape(), &values)
                    .map_err(|d| raise(py, vec![d]))?;
            }
        }
        let y0 = match y0 {
            Some(y0) if y0.as_array().ndim() != 1 => {
                return Err(raise(
                    py,
                    vec![bad_argument(
                        format!(
                            "y0 has {} dimensions; this package solves one initial state at a time",
                            y0.as_array().ndim()
                        ),
                        "give y0 as a 1-D array, one value per state column (batched y0 is not in the package yet)",
                    )],
                ));
            }
            Some(y0) => Some(y0.as_array().iter().copied().collect::<Vec<f64>>()),
            None => None,
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
        let y0 = y0.as_deref();
        match plan {
            SolvePlan::Ode(plan) => {
                let run = py
                    .detach(|| plans::run_ode_from(model, &plan, &p, y0, 1))
                    .map_err(|d| raise(py, d))?;
                Solution::ode(py, names, &run)
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

/// Check `file` as the CLI does; errors raise, warnings stay with the model.
fn check(py: Python<'_>, file: &std::sync::Arc<SourceFile>) -> PyResult<Model> {
    let checked = glassbox::check_source(file, &DiskLoader);
    match checked.model {
        Some(model) => Ok(Model {
            model,
            warnings: checked.diags,
        }),
        None => Err(raise(py, checked.diags)),
    }
}

fn bad_argument(msg: String, help: &str) -> Diag {
    Diag::error("glassbox::bad_argument", msg).help(help.to_string())
}

fn internal(msg: String) -> Diag {
    Diag::error("glassbox::internal", msg).help("this is a bug in glassbox's Python package")
}
