//! The `glassbox` Python module: a model file checked into a [`model::Model`], solved through
//! the application layer the CLI uses (`glassbox::app`: the same request → plan → run, so a
//! solve here equals `glassbox solve` bit for bit), NumPy arrays out, and every diagnostic
//! raised as a [`error::GlassboxError`] with its code, span, help and miette rendering.
//!
//! Nothing here solves, checks or renders anything itself: it converts Python values into
//! the app layer's plain requests and its results into Python objects (`docs/python.md`).
//! The compiled module is `glassbox._glassbox`; `pysrc/glassbox/__init__.py` re-exports it as
//! `glassbox`, and `pysrc/glassbox/jax.py` wraps `Model.solve`/`Model.vjp` for JAX.

mod error;
mod model;
mod solution;
mod train;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_glassbox")]
fn glassbox_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GlassboxError", m.py().get_type::<error::GlassboxError>())?;
    m.add_class::<error::Diagnostic>()?;
    m.add_class::<model::Model>()?;
    m.add_class::<solution::Solution>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
