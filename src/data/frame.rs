//! A data file after parsing, before it is given a layout: a rectangle of cells (text for
//! CSV, numbers for NPY), each row remembering where it sits in the file, and the one place
//! that builds data diagnostics.
//!
//! Invariants: every text row has exactly `ncols` cells (ragged rows are rejected by the
//! reader); `rows.len()` is the number of data rows; a number handed out by [`Frame::number`]
//! is finite. Cells are converted only when a layout asks for them, so columns a model does
//! not use may hold anything.

use std::sync::Arc;

use ndarray::Array2;

use crate::diag::Diag;
use crate::sema::DataSource;
use crate::source::SourceFile;

/// Who is loading what: the source declaration (its span labels every diagnostic) and,
/// when the caller has it, the model file that span points into.
pub(crate) struct Ctx<'a> {
    pub source: &'a DataSource,
    pub model_file: Option<&'a Arc<SourceFile>>,
}

impl Ctx<'_> {
    /// The data file as diagnostics name it: the resolved path.
    pub fn file(&self) -> String {
        self.source.path.display().to_string()
    }

    pub fn diag(&self, code: &'static str, message: String, help: impl Into<String>) -> Diag {
        let d = Diag::error(code, message)
            .label(
                self.source.span,
                format!("`{}` is loaded from here", self.source.name),
            )
            .help(help);
        match self.model_file {
            Some(f) => d.in_file(f),
            None => d,
        }
    }
}

pub(crate) enum Cells<'t> {
    Text(Vec<Vec<&'t str>>),
    Numbers(Array2<f64>),
}

pub(crate) struct Frame<'t> {
    /// Column names: a CSV header, or the names an NPY trajectory's layout implies.
    pub names: Option<Vec<String>>,
    pub ncols: usize,
    pub cells: Cells<'t>,
    /// Where each data row sits: the 1-based line of a CSV file, the 1-based row of an array.
    pub rows: Vec<usize>,
    /// `"line"` or `"row"`, the unit of `rows`.
    pub unit: &'static str,
}

/// A column as diagnostics show it: by name and index when the file has a header, by index
/// (0-based, as the model's `features = a..b` counts) otherwise.
#[derive(Clone, Debug)]
pub(crate) struct Col {
    pub index: usize,
    pub name: Option<String>,
}

impl std::fmt::Display for Col {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "column `{n}` (index {})", self.index),
            None => write!(f, "column {}", self.index),
        }
    }
}

impl Frame<'_> {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// `file, line 7` / `file, row 7` for data row `r` (0-based).
    pub fn at(&self, ctx: &Ctx, r: usize) -> String {
        let pos = self.rows.get(r).copied().unwrap_or(r + 1);
        format!("{}, {} {pos}", ctx.file(), self.unit)
    }

    pub fn col(&self, index: usize) -> Col {
        Col {
            index,
            name: self.names.as_ref().and_then(|n| n.get(index).cloned()),
        }
    }

    /// The cell at data row `r`, column `c`, as a finite number.
    pub fn number(&self, ctx: &Ctx, r: usize, c: &Col) -> Result<f64, Diag> {
        let value = match &self.cells {
            Cells::Numbers(a) => a.get((r, c.index)).copied(),
            Cells::Text(rows) => match rows.get(r).and_then(|row| row.get(c.index)) {
                Some(s) => match s.parse::<f64>() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        let what = if s.is_empty() {
                            "the cell is empty".to_string()
                        } else {
                            format!("`{}` is not a number", clip(s))
                        };
                        return Err(ctx.diag(
                            "glassbox::data_not_a_number",
                            format!("{}, {c}: {what}", self.at(ctx, r)),
                            "every cell a model uses must be a number (`1.5`, `-2`, `3e-4`)",
                        ));
                    }
                },
                None => None,
            },
        };
        let Some(v) = value else {
            // Unreachable after the reader's ragged-row check; reported, never a panic.
            return Err(ctx.diag(
                "glassbox::data_ragged_row",
                format!("{}: there is no {c}", self.at(ctx, r)),
                "every row needs one value per column",
            ));
        };
        if !v.is_finite() {
            return Err(ctx.diag(
                "glassbox::data_not_finite",
                format!("{}, {c}: the value is {v}", self.at(ctx, r)),
                "remove or fill in missing and infinite values; glassbox does not interpolate",
            ));
        }
        Ok(v)
    }

    /// The cell as a key for grouping rows into paths: its text (CSV) or its value (NPY).
    pub fn key(&self, ctx: &Ctx, r: usize, c: &Col) -> Result<String, Diag> {
        match &self.cells {
            Cells::Text(rows) => match rows.get(r).and_then(|row| row.get(c.index)) {
                Some(s) => Ok((*s).to_string()),
                None => self.number(ctx, r, c).map(|v| v.to_string()),
            },
            Cells::Numbers(_) => self.number(ctx, r, c).map(|v| v.to_string()),
        }
    }
}

/// A cell quoted in a message: at most 40 characters, so garbage does not flood the terminal.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(40).collect::<String>())
    }
}
