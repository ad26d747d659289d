//! Diagnostics as Python values: each `Diag` becomes a [`Diagnostic`], and a failure raises
//! [`GlassboxError`] carrying the first one's fields and all of them in `.diagnostics`.

use glassbox::diag::{Diag, Severity};
use glassbox::kit::render::render_plain;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    glassbox,
    GlassboxError,
    PyException,
    "A model that does not check, a bad argument or a failed solve. `.code`, `.message`, \
     `.help`, `.span`, `.line`, `.column`, `.file` and `.rendered` are the first \
     diagnostic's; `.diagnostics` holds them all."
);

/// One diagnostic: what the CLI prints, as fields.
#[pyclass(frozen, get_all, module = "glassbox")]
pub struct Diagnostic {
    /// `glassbox::<kind>`, stable (the list is in docs/language.md).
    pub code: String,
    /// `"error"` or `"warning"`.
    pub severity: String,
    pub message: String,
    pub help: Option<String>,
    /// The primary label's byte range `(start, end)` in the file, or `None`.
    pub span: Option<(usize, usize)>,
    /// The primary label's start as 1-based line and column (characters), when the span is
    /// in a file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The file's name as the model was loaded (`from_file`'s path, `from_source`'s name).
    pub file: Option<String>,
    /// The miette text exactly as `glassbox` prints it without colour.
    pub rendered: String,
}

#[pymethods]
impl Diagnostic {
    fn __str__(&self) -> String {
        summary(self)
    }

    fn __repr__(&self) -> String {
        format!("<Diagnostic {}: {:?}>", self.code, self.message)
    }
}

impl Diagnostic {
    fn of(d: &Diag) -> Diagnostic {
        let span = d.span();
        let place = span.and_then(|s| d.file.as_ref().map(|f| f.line_col(s.start)));
        Diagnostic {
            code: d.code.to_string(),
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            }
            .to_string(),
            message: d.message.clone(),
            help: d.help.clone(),
            span: span.map(|s| (s.start, s.end)),
            line: place.map(|p| p.0),
            column: place.map(|p| p.1),
            file: d.file.as_ref().map(|f| f.name.clone()),
            rendered: render_plain(d),
        }
    }
}

/// `code: message (file:line:column)` and the help line.
fn summary(d: &Diagnostic) -> String {
    let mut s = format!("{}: {}", d.code, d.message);
    match (&d.file, d.line, d.column) {
        (Some(f), Some(l), Some(c)) => s.push_str(&format!(" ({f}:{l}:{c})")),
        (Some(f), _, _) => s.push_str(&format!(" ({f})")),
        _ => {}
    }
    if let Some(h) = &d.help {
        s.push_str(&format!("\nhelp: {h}"));
    }
    s
}

/// A diagnostic as the one-line summary (and help line) a Python warning carries.
pub fn summary_of(d: &Diag) -> String {
    summary(&Diagnostic::of(d))
}

/// Every diagnostic as a [`Diagnostic`].
pub fn diagnostics(py: Python<'_>, diags: &[Diag]) -> PyResult<Vec<Py<Diagnostic>>> {
    diags
        .iter()
        .map(|d| Py::new(py, Diagnostic::of(d)))
        .collect()
}

/// The [`GlassboxError`] for `diags` (errors first: a warning is never the headline).
pub fn raise(py: Python<'_>, diags: Vec<Diag>) -> PyErr {
    let mut diags = diags;
    diags.sort_by_key(|d| !d.is_error());
    let all = match diagnostics(py, &diags) {
        Ok(all) => all,
        Err(e) => return e,
    };
    let Some(first) = all.first() else {
        return GlassboxError::new_err("glassbox failed without a diagnostic");
    };
    let head = first.get();
    let mut text = summary(head);
    if all.len() > 1 {
        text.push_str(&format!("\n(and {} more in .diagnostics)", all.len() - 1));
    }
    let err = GlassboxError::new_err(text);
    let set = || -> PyResult<()> {
        let value = err.value(py);
        value.setattr("code", &head.code)?;
        value.setattr("severity", &head.severity)?;
        value.setattr("message", &head.message)?;
        value.setattr("help", &head.help)?;
        value.setattr("span", head.span)?;
        value.setattr("line", head.line)?;
        value.setattr("column", head.column)?;
        value.setattr("file", &head.file)?;
        value.setattr("rendered", &head.rendered)?;
        value.setattr("diagnostics", &all)?;
        Ok(())
    };
    match set() {
        Ok(()) => err,
        Err(e) => e,
    }
}
