//! A parsed frame given the layout the model declared: trajectories (a time column, state
//! columns, optionally a path-id column) or a table (feature columns, optionally a label).
//!
//! Checked here, with the file, row and column in each message: missing columns, non-numeric
//! and non-finite cells (only in the columns used), times strictly increasing within each
//! path, at least two observations per path, labels integral and inside the class range.

use ndarray::{Array1, Array2};

use super::frame::{Col, Ctx, Frame};
use super::{Dataset, Trajectory};
use crate::diag::{Diag, did_you_mean};

fn column(frame: &Frame, ctx: &Ctx, name: &str) -> Result<Col, Diag> {
    let names = frame.names.as_deref().unwrap_or(&[]);
    if let Some(i) = names.iter().position(|n| n == name) {
        return Ok(frame.col(i));
    }
    let header = names.join(", ");
    let help = match did_you_mean(name, names.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`? the header is: {header}"),
        None => format!("the header is: {header}"),
    };
    Err(ctx.diag(
        "glassbox::data_missing_column",
        format!("{}: there is no column `{name}`", ctx.file()),
        help,
    ))
}

fn index_column(frame: &Frame, ctx: &Ctx, i: usize, role: &str) -> Result<Col, Diag> {
    if i < frame.ncols {
        return Ok(frame.col(i));
    }
    Err(ctx.diag(
        "glassbox::data_missing_column",
        format!(
            "{}: the {role} column {i} does not exist, the file has {} columns",
            ctx.file(),
            frame.ncols
        ),
        format!(
            "columns are numbered from 0; this file has columns 0..{}",
            frame.ncols
        ),
    ))
}

pub(crate) fn trajectories(
    frame: &Frame,
    ctx: &Ctx,
    time: &str,
    columns: &[String],
    group: Option<&str>,
) -> Result<Dataset, Diag> {
    let tcol = column(frame, ctx, time)?;
    let ycols = columns
        .iter()
        .map(|c| column(frame, ctx, c))
        .collect::<Result<Vec<_>, _>>()?;
    let gcol = group.map(|g| column(frame, ctx, g)).transpose()?;

    // Rows of each path, paths in order of first appearance (rows need not be contiguous).
    let mut ids: Vec<Option<String>> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    match &gcol {
        None => {
            ids.push(None);
            members.push((0..frame.len()).collect());
        }
        Some(g) => {
            let mut index = std::collections::HashMap::new();
            for r in 0..frame.len() {
                let key = frame.key(ctx, r, g)?;
                let p = *index.entry(key.clone()).or_insert_with(|| {
                    ids.push(Some(key));
                    members.push(Vec::new());
                    members.len() - 1
                });
                if let Some(m) = members.get_mut(p) {
                    m.push(r);
                }
            }
        }
    }

    let mut paths = Vec::with_capacity(members.len());
    for (id, rows) in ids.into_iter().zip(members) {
        let which = match &id {
            Some(id) => format!("path `{id}`"),
            None => "the trajectory".into(),
        };
        if rows.len() < 2 {
            return Err(ctx.diag(
                "glassbox::data_too_few_rows",
                format!(
                    "{}: {which} has {} observation{}, a trajectory needs at least 2",
                    ctx.file(),
                    rows.len(),
                    if rows.len() == 1 { "" } else { "s" }
                ),
                "a trajectory is fitted from its first observation to the later ones",
            ));
        }
        let mut t = Vec::with_capacity(rows.len());
        let mut y = Vec::with_capacity(rows.len() * ycols.len());
        let mut prev: Option<(f64, usize)> = None;
        for &r in &rows {
            let tr = frame.number(ctx, r, &tcol)?;
            if let Some((tp, rp)) = prev
                && tr <= tp
            {
                let what = if tr == tp {
                    "a duplicate time"
                } else {
                    "times out of order"
                };
                return Err(ctx.diag(
                    "glassbox::data_unsorted_times",
                    format!(
                        "{}, {tcol}: {what} in {which}: {tr} follows {tp} ({} {})",
                        frame.at(ctx, r),
                        frame.unit,
                        frame.rows.get(rp).copied().unwrap_or(rp + 1)
                    ),
                    "sort the rows by time; times must increase strictly within each path",
                ));
            }
            prev = Some((tr, r));
            t.push(tr);
            for c in &ycols {
                y.push(frame.number(ctx, r, c)?);
            }
        }
        let n = t.len();
        let y = Array2::from_shape_vec((n, ycols.len()), y).map_err(|e| internal(ctx, e))?;
        paths.push(Trajectory {
            id,
            t: Array1::from(t),
            y,
        });
    }
    Ok(Dataset::trajectories(paths))
}

pub(crate) fn table(
    frame: &Frame,
    ctx: &Ctx,
    features: (usize, usize),
    label: Option<usize>,
    classes: Option<usize>,
) -> Result<Dataset, Diag> {
    let (a, b) = features;
    if b > 0 {
        index_column(frame, ctx, b - 1, "feature")?;
    }
    let lcol = label
        .map(|l| index_column(frame, ctx, l, "label"))
        .transpose()?;
    let width = b.saturating_sub(a);
    let mut x = Vec::with_capacity(frame.len() * width);
    let mut labels = lcol.as_ref().map(|_| Vec::with_capacity(frame.len()));
    for r in 0..frame.len() {
        for c in a..b {
            x.push(frame.number(ctx, r, &frame.col(c))?);
        }
        if let (Some(c), Some(out)) = (&lcol, labels.as_mut()) {
            out.push(class(frame, ctx, r, c, classes)?);
        }
    }
    let x = Array2::from_shape_vec((frame.len(), width), x).map_err(|e| internal(ctx, e))?;
    Ok(Dataset::Table { x, labels })
}

fn class(
    frame: &Frame,
    ctx: &Ctx,
    r: usize,
    c: &Col,
    classes: Option<usize>,
) -> Result<usize, Diag> {
    let v = frame.number(ctx, r, c)?;
    if v.fract() != 0.0 {
        return Err(ctx.diag(
            "glassbox::data_label_not_integer",
            format!(
                "{}, {c}: the label {v} is not a whole number",
                frame.at(ctx, r)
            ),
            "labels are class indices 0, 1, 2, ...",
        ));
    }
    // Above 2^53 whole f64s are no longer every integer; no class count gets near that.
    let limit = classes.map_or(9.007_199_254_740_992e15, |k| k as f64);
    if v < 0.0 || v >= limit {
        let range = classes.map_or("0, 1, 2, ...".to_string(), |k| format!("0..{k}"));
        return Err(ctx.diag(
            "glassbox::data_label_out_of_range",
            format!(
                "{}, {c}: the label {v} is outside the classes {range}",
                frame.at(ctx, r)
            ),
            "the model's `label ... in 0..K` declares the classes; every label must be one of them",
        ));
    }
    Ok(v as usize)
}

fn internal(ctx: &Ctx, e: impl std::fmt::Display) -> Diag {
    ctx.diag(
        "glassbox::internal",
        format!("data loading: {e}"),
        "this is a bug in glassbox; please report it with the data file",
    )
}
