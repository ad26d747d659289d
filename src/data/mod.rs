//! Data for training: a model's `data` sources loaded into arrays, and the batches drawn from
//! them.
//!
//! [`load`] reads a checked [`DataSource`] through a [`Loader`] (the core does no IO), parses
//! CSV (`csv.rs`) or NPY (`npy.rs`) into a frame (`frame.rs`), then applies the declared
//! layout (`layout.rs`). Every problem a data file can have is a `glassbox::data_*` [`Diag`]
//! whose message names the file, the 1-based line (CSV, as an editor counts, header included)
//! or row (NPY), and the column (name and 0-based index, or index alone for tables); its label
//! is the `data` declaration's span. No bytes make it panic.
//!
//! Invariants of a loaded [`Dataset`]: every value is finite; every trajectory has at least
//! two observations, strictly increasing times, and `y.nrows() == t.len()`,
//! `y.ncols() == columns.len()`; a table's `labels`, when present, has one class per row of
//! `x`, each below the class count when one was given.
//!
//! NPY trajectories have no header, so their columns are positional: `(group?, time,
//! columns...)` in the order of the declaration, e.g. `path, t, u1, u2` for
//! `npy(..., time = "t", columns = ["u1", "u2"], group = "path")`.
//!
//! Batching and the train/validation split live in [`batch`].

pub mod batch;
mod csv;
mod frame;
mod layout;
mod npy;

use std::sync::Arc;

use ndarray::{Array1, Array2};

use crate::diag::Diag;
use crate::sema::{DataFormat, DataLayout, DataSource, Model};
use crate::source::{Loader, SourceFile};
use frame::Ctx;

/// One sample path: observation times and the observed columns at those times.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// The path id (the `group` cell's text) for grouped data; `None` for a single trajectory.
    pub id: Option<String>,
    /// Strictly increasing.
    pub t: Array1<f64>,
    /// `t.len()` rows, one column per declared state column.
    pub y: Array2<f64>,
}

impl Trajectory {
    /// Number of observations.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Dataset {
    Trajectories {
        /// The common time grid when every path has the same times (SDE data observed at
        /// fixed times, and any single trajectory); `None` when the paths differ.
        times: Option<Array1<f64>>,
        /// In order of first appearance in the file.
        paths: Vec<Trajectory>,
    },
    Table {
        /// One row per sample, one column per feature.
        x: Array2<f64>,
        /// One class per row, when the source declares a `label` column.
        labels: Option<Vec<usize>>,
    },
}

impl Dataset {
    /// A trajectory dataset, with its common time grid worked out.
    pub fn trajectories(paths: Vec<Trajectory>) -> Dataset {
        let times = match paths.split_first() {
            Some((first, rest)) if rest.iter().all(|p| p.t == first.t) => Some(first.t.clone()),
            _ => None,
        };
        Dataset::Trajectories { times, paths }
    }

    /// What batching counts: paths of a trajectory dataset, rows of a table.
    pub fn len(&self) -> usize {
        match self {
            Dataset::Trajectories { paths, .. } => paths.len(),
            Dataset::Table { x, .. } => x.nrows(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How to load: the model file the source's span points into (for rendering), the class
/// count that labels must stay below, and whether a table's label column may be absent (a
/// file of new samples given to `predict --input`: labelled, it is scored; unlabelled, only
/// classified).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions<'a> {
    pub model_file: Option<&'a Arc<SourceFile>>,
    pub classes: Option<usize>,
    pub label_optional: bool,
}

/// Load one data source; labels are only checked to be class indices (no upper bound).
pub fn load(source: &DataSource, loader: &dyn Loader) -> Result<Dataset, Diag> {
    load_with(source, loader, LoadOptions::default())
}

pub fn load_with(
    source: &DataSource,
    loader: &dyn Loader,
    opts: LoadOptions,
) -> Result<Dataset, Diag> {
    let ctx = Ctx {
        source,
        model_file: opts.model_file,
    };
    let bytes = loader.read(&source.path).map_err(|e| {
        ctx.diag(
            "glassbox::data_not_found",
            format!("cannot read data file `{}`: {e}", ctx.file()),
            "the file was found when the model was checked; was it moved or deleted?",
        )
    })?;
    match (&source.layout, source.format) {
        (DataLayout::Trajectory { .. }, DataFormat::Csv) => {
            let frame = csv::parse(&bytes, true, &ctx)?;
            apply(&frame, &ctx, &source.layout, &opts)
        }
        (DataLayout::Table { .. }, DataFormat::Csv) => {
            let frame = csv::parse(&bytes, false, &ctx)?;
            apply(&frame, &ctx, &source.layout, &opts)
        }
        (
            DataLayout::Trajectory {
                time,
                columns,
                group,
            },
            DataFormat::Npy,
        ) => {
            let mut frame = npy::parse(&bytes, &ctx)?;
            let names: Vec<String> = group
                .iter()
                .chain(std::iter::once(time))
                .chain(columns)
                .cloned()
                .collect();
            if names.len() != frame.ncols {
                return Err(ctx.diag(
                    "glassbox::data_npy_format",
                    format!(
                        "{}: the array has {} columns, the declaration needs {} ({})",
                        ctx.file(),
                        frame.ncols,
                        names.len(),
                        names.join(", ")
                    ),
                    "an NPY trajectory holds, in order: the group column (if any), the time, \
                     then the declared columns",
                ));
            }
            frame.names = Some(names);
            apply(&frame, &ctx, &source.layout, &opts)
        }
        (DataLayout::Table { .. }, DataFormat::Npy) => {
            let frame = npy::parse(&bytes, &ctx)?;
            apply(&frame, &ctx, &source.layout, &opts)
        }
    }
}

fn apply(
    frame: &frame::Frame,
    ctx: &Ctx,
    layout: &DataLayout,
    opts: &LoadOptions,
) -> Result<Dataset, Diag> {
    match layout {
        DataLayout::Trajectory {
            time,
            columns,
            group,
        } => layout::trajectories(frame, ctx, time, columns, group.as_deref()),
        DataLayout::Table { features, label } => {
            // An optional label the file does not have: classify without scoring.
            let label = label.filter(|&l| !opts.label_optional || l < frame.ncols);
            layout::table(frame, ctx, *features, label, opts.classes)
        }
    }
}

/// Load every data source of a checked model, in declaration order. A table's labels are
/// bounded by the model's label declaration when it has exactly one (`label c in 0..10`).
pub fn load_model(
    model: &Model,
    model_file: Option<&Arc<SourceFile>>,
    loader: &dyn Loader,
) -> Result<Vec<Dataset>, Diag> {
    let classes = match model.labels.as_slice() {
        [l] => Some(l.classes),
        _ => None,
    };
    model
        .data
        .iter()
        .map(|s| {
            load_with(
                s,
                loader,
                LoadOptions {
                    model_file,
                    classes,
                    label_optional: false,
                },
            )
        })
        .collect()
}
