//! Rendering diagnostics for people (miette's graphical handler) and for tools (JSON).

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::diag::Diag;

/// Render one diagnostic as miette draws it: colour only on a terminal without `NO_COLOR`.
pub fn render_diag(diag: &Diag) -> String {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if !colour {
        return render_plain(diag);
    }
    render_with(diag, GraphicalTheme::unicode(), 100)
}

/// Render one diagnostic without colour, exactly as the CLI prints it when stderr is not a
/// terminal (the Python package's `GlassboxError.rendered`).
pub fn render_plain(diag: &Diag) -> String {
    render_with(diag, GraphicalTheme::unicode_nocolor(), 100)
}

fn render_with(diag: &Diag, theme: GraphicalTheme, width: usize) -> String {
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width);
    let mut out = String::new();
    if handler.render_report(&mut out, diag).is_err() {
        // Rendering into a String cannot fail for IO reasons; fall back to the bare message.
        out = format!("error[{}]: {}\n", diag.code, diag.message);
    }
    out
}

/// Print diagnostics to stderr; returns how many were errors.
pub fn emit(diags: &[Diag]) -> usize {
    for d in diags {
        eprint!("{}", render_diag(d));
    }
    diags.iter().filter(|d| d.is_error()).count()
}
