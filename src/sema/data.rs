//! Data declarations: `csv(path, time = "t", columns = [...], group = "path")` (trajectories,
//! with a header), `csv(path, features = 0..64, label = 64)` (samples, no header) and
//! `npy(path, ...)`. Paths resolve against the model file's directory; the file must exist
//! (read through the `Loader`); a CSV header is checked for the named columns, a headerless CSV
//! for enough columns. NPY contents are not inspected at check time.

use std::path::Path;

use super::checker::{Checker, GlobalKind};
use super::model::*;
use crate::diag::did_you_mean;
use crate::syntax::ast::{DataDecl, Expr, ExprKind};

const CSV_OPTIONS: [&str; 5] = ["time", "columns", "group", "features", "label"];

fn split_row(line: &str) -> Vec<String> {
    line.trim_end_matches('\r')
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_string())
        .collect()
}

impl Checker<'_> {
    pub fn data_decl(&mut self, d: &DataDecl) {
        if self.owned(&d.name).is_none() {
            return;
        }
        let src = &d.source;
        let format = match src.callee.name.as_str() {
            "csv" => DataFormat::Csv,
            "npy" => DataFormat::Npy,
            other => {
                let help = match did_you_mean(other, ["csv", "npy"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "data sources are `csv(\"file.csv\", ...)` and `npy(\"file.npy\", ...)`"
                            .into()
                    }
                };
                self.error(
                    "glassbox::unknown_data_format",
                    src.callee.span,
                    format!("there is no data source `{other}`"),
                    "unknown source",
                    help,
                );
                return;
            }
        };
        let (pos, named) = self.named_options(&src.args, 1, &CSV_OPTIONS, &src.callee.name);
        let Some(path_arg) = pos.first() else {
            self.error(
                "glassbox::bad_data",
                src.span,
                "a data source needs a file path",
                "no path",
                format!(
                    "write `{}(\"data/file.{}\", ...)`",
                    src.callee.name, src.callee.name
                ),
            );
            return;
        };
        let ExprKind::Str(rel) = &path_arg.value.kind else {
            self.error(
                "glassbox::bad_data",
                path_arg.span,
                "the first argument of a data source is its file path, a string",
                "not a string",
                "write the path in quotes, relative to the model file",
            );
            return;
        };
        let trajectory = named.contains_key("columns")
            || named.contains_key("time")
            || named.contains_key("group");
        let table = named.contains_key("features") || named.contains_key("label");
        let layout = match (trajectory, table) {
            (true, true) => {
                let span = named
                    .get("features")
                    .or(named.get("label"))
                    .map_or(src.span, |(n, _)| n.span);
                self.error(
                    "glassbox::bad_data",
                    span,
                    "a data source is either a trajectory (`time`, `columns`) or a table (`features`, `label`)",
                    "mixes both layouts",
                    "use `time`/`columns`/`group` for observations over time, `features`/`label` for samples",
                );
                return;
            }
            (false, false) => {
                self.error(
                    "glassbox::bad_data",
                    src.callee.span,
                    "a data source must say which columns it uses",
                    "no columns",
                    "add `columns = [\"y1\", ...]` (trajectories) or `features = 0..n` (samples)",
                );
                return;
            }
            (true, false) => {
                let time = match named.get("time") {
                    Some((n, e)) => self.option_string(&n.name, e),
                    None => Some("t".to_string()),
                };
                let columns = match named.get("columns") {
                    Some((_, e)) => self.string_list(e),
                    None => {
                        self.error(
                            "glassbox::bad_data",
                            src.callee.span,
                            "a trajectory source needs its state columns",
                            "no `columns`",
                            "add `columns = [\"y1\", \"y2\"]`",
                        );
                        None
                    }
                };
                let group: Option<Option<String>> = match named.get("group") {
                    Some((n, e)) => self.option_string(&n.name, e).map(Some),
                    None => Some(None),
                };
                let (Some(time), Some(columns), Some(group)) = (time, columns, group) else {
                    return;
                };
                DataLayout::Trajectory {
                    time,
                    columns: columns.into_iter().map(|(c, _)| c).collect(),
                    group,
                }
            }
            (false, true) => {
                let features = match named.get("features") {
                    Some((_, e)) => self.column_range(e),
                    None => {
                        self.error(
                            "glassbox::bad_data",
                            src.callee.span,
                            "a table source needs its feature columns",
                            "no `features`",
                            "add `features = 0..n` (column indices, end exclusive)",
                        );
                        None
                    }
                };
                let label = match named.get("label") {
                    Some((_, e)) => self.const_int(e, "a column index").map(Some),
                    None => Some(None),
                };
                let (Some(features), Some(label)) = (features, label) else {
                    return;
                };
                DataLayout::Table { features, label }
            }
        };
        let path = super::checker::normalise(&self.base_dir().join(rel));
        let bytes = match self.ctx.loader.read(&path) {
            Ok(b) => b,
            Err(e) => {
                self.error(
                    "glassbox::data_not_found",
                    path_arg.value.span,
                    match e.kind() {
                        std::io::ErrorKind::NotFound => {
                            format!("data file `{}` not found", path.display())
                        }
                        _ => format!("cannot read data file `{}`: {e}", path.display()),
                    },
                    "file not found",
                    format!(
                        "data paths are relative to the model file's directory (`{}`)",
                        display_dir(&self.base_dir())
                    ),
                );
                return;
            }
        };
        if format == DataFormat::Csv {
            self.check_csv(&bytes, &layout, &named, src.callee.span);
        }
        let i = self.m.data.len();
        self.m.data.push(DataSource {
            name: d.name.name.clone(),
            path,
            format,
            layout,
            span: d.name.span,
        });
        self.set_global(&d.name, GlobalKind::Data(i));
    }

    fn check_csv(
        &mut self,
        bytes: &[u8],
        layout: &DataLayout,
        named: &std::collections::HashMap<&str, (&crate::syntax::ast::Ident, &Expr)>,
        callee: crate::source::Span,
    ) {
        let text = String::from_utf8_lossy(bytes);
        // Read the header as the loader will (`data/csv.rs`): a byte-order mark and blank
        // lines before it are skipped, so neither hides a column name.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
            self.error(
                "glassbox::data_empty",
                callee,
                "the data file is empty".to_string(),
                "this file has no rows",
                "a data file needs at least one row of values (and a trajectory file a header)"
                    .to_string(),
            );
            return;
        };
        let header = split_row(first);
        match layout {
            DataLayout::Trajectory { time, group, .. } => {
                let mut wanted: Vec<(String, crate::source::Span)> = Vec::new();
                if let Some((n, e)) = named.get("time") {
                    wanted.push((
                        time.clone(),
                        if matches!(e.kind, ExprKind::Str(_)) {
                            e.span
                        } else {
                            n.span
                        },
                    ));
                } else {
                    // The default time column `t` must exist too; point at the call.
                    wanted.push((time.clone(), callee));
                }
                if let Some((_, e)) = named.get("columns")
                    && let Some(cols) = self.string_list_quiet(e)
                {
                    wanted.extend(cols);
                }
                if let (Some(g), Some((_, e))) = (group, named.get("group")) {
                    wanted.push((g.clone(), e.span));
                }
                for (col, span) in wanted {
                    if header.contains(&col) {
                        continue;
                    }
                    let help = match did_you_mean(&col, header.iter().map(String::as_str)) {
                        Some(s) => {
                            format!("did you mean `{s}`? the header is: {}", header.join(", "))
                        }
                        None => format!("the file's header is: {}", header.join(", ")),
                    };
                    self.error(
                        "glassbox::unknown_column",
                        span,
                        format!("the data file has no column `{col}`"),
                        "no such column",
                        help,
                    );
                }
            }
            DataLayout::Table { features, label } => {
                let ncols = header.len();
                let too_far = |i: usize| i >= ncols;
                if features.1 > ncols {
                    let span = named
                        .get("features")
                        .map_or(Default::default(), |(_, e)| e.span);
                    self.error(
                        "glassbox::column_out_of_range",
                        span,
                        format!(
                            "features {}..{} need {} columns, the file has {ncols}",
                            features.0, features.1, features.1
                        ),
                        "beyond the last column",
                        format!("columns are numbered from 0; the file has columns 0..{ncols}"),
                    );
                }
                if let Some(l) = label
                    && too_far(*l)
                {
                    let span = named
                        .get("label")
                        .map_or(Default::default(), |(_, e)| e.span);
                    self.error(
                        "glassbox::column_out_of_range",
                        span,
                        format!("label column {l} does not exist, the file has {ncols} columns"),
                        "beyond the last column",
                        format!(
                            "columns are numbered from 0; the last is {}",
                            ncols.saturating_sub(1)
                        ),
                    );
                }
            }
        }
    }

    fn string_list_quiet(&self, e: &Expr) -> Option<Vec<(String, crate::source::Span)>> {
        let ExprKind::Vector(items) = &e.kind else {
            return None;
        };
        items
            .iter()
            .map(|x| match &x.kind {
                ExprKind::Str(s) => Some((s.clone(), x.span)),
                _ => None,
            })
            .collect()
    }

    fn string_list(&mut self, e: &Expr) -> Option<Vec<(String, crate::source::Span)>> {
        let list = self.string_list_quiet(e);
        if list.as_ref().is_none_or(Vec::is_empty) {
            self.error(
                "glassbox::bad_option_value",
                e.span,
                "`columns` expects a list of column names",
                "expected `[\"a\", \"b\"]`",
                "write `columns = [\"y1\", \"y2\"]`",
            );
            return None;
        }
        list
    }

    fn column_range(&mut self, e: &Expr) -> Option<(usize, usize)> {
        if let ExprKind::Range {
            start,
            end: Some(end),
        } = &e.kind
        {
            let s = match start {
                Some(s) => self.const_int(s, "a column index")?,
                None => 0,
            };
            let t = self.const_int(end, "a column index")?;
            if s < t {
                return Some((s, t));
            }
        }
        self.error(
            "glassbox::bad_option_value",
            e.span,
            "`features` expects a non-empty column range `a..b`",
            "expected a range",
            "write `features = 0..64` (column indices, end exclusive)",
        );
        None
    }
}

fn display_dir(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        ".".into()
    } else {
        p.display().to_string()
    }
}
