//! CSV files: UTF-8 text, one row a line (`\n` or `\r\n`), cells separated by commas.
//!
//! Deliberately small, and matched to what the checker reads from a header
//! (`sema/data.rs`): cells are trimmed and lose surrounding double quotes; quoted commas are not
//! supported; blank lines are skipped (their line numbers still count, so a diagnostic's line
//! is the one an editor shows). Trajectory files have a header, tables do not.

use super::frame::{Cells, Ctx, Frame, clip};
use crate::diag::Diag;

fn cells(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|c| c.trim().trim_matches('"'))
        .collect()
}

/// Parse `bytes` into a frame of text cells; `header` says whether the first non-blank line
/// names the columns.
pub(crate) fn parse<'t>(bytes: &'t [u8], header: bool, ctx: &Ctx) -> Result<Frame<'t>, Diag> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes
                .get(..e.valid_up_to())
                .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
                + 1;
            return Err(ctx.diag(
                "glassbox::data_not_utf8",
                format!("{}, line {line}: the file is not UTF-8 text", ctx.file()),
                "a CSV file must be UTF-8 text; for binary arrays use `npy(...)`",
            ));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());

    let mut names = None;
    let mut rows = Vec::new();
    let mut positions = Vec::new();
    let mut width: Option<(usize, usize)> = None; // (cells, line that fixed it)
    if header {
        let Some((n, first)) = lines.next() else {
            return Err(empty(ctx, "is empty"));
        };
        let h: Vec<String> = cells(first).into_iter().map(str::to_string).collect();
        width = Some((h.len(), n));
        names = Some(h);
    }
    for (n, line) in lines {
        let row = cells(line);
        match width {
            None => width = Some((row.len(), n)),
            Some((w, wline)) if w != row.len() => {
                let against = if header {
                    "the header has".to_string()
                } else {
                    format!("line {wline} has")
                };
                return Err(ctx.diag(
                    "glassbox::data_ragged_row",
                    format!(
                        "{}, line {n}: {} cells, {against} {w} (`{}`)",
                        ctx.file(),
                        row.len(),
                        clip(line)
                    ),
                    "every row needs one value per column (quoted commas are not supported)",
                ));
            }
            Some(_) => {}
        }
        rows.push(row);
        positions.push(n);
    }
    if rows.is_empty() {
        return Err(empty(
            ctx,
            if header {
                "has a header but no data rows"
            } else {
                "is empty"
            },
        ));
    }
    Ok(Frame {
        names,
        ncols: width.map_or(0, |(w, _)| w),
        cells: Cells::Text(rows),
        rows: positions,
        unit: "line",
    })
}

pub(crate) fn empty(ctx: &Ctx, what: &str) -> Diag {
    ctx.diag(
        "glassbox::data_empty",
        format!("data file `{}` {what}", ctx.file()),
        "a data file needs at least one row of values",
    )
}
