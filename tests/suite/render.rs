//! Rendered diagnostics, as a user sees them: miette's graphical handler, unicode without
//! colour, fixed width. Snapshots live in `tests/snapshots/`.

use glassbox::source::{DiskLoader, SourceFile};
use miette::{GraphicalReportHandler, GraphicalTheme};

fn render(name: &str, src: &str) -> String {
    let file = SourceFile::new(format!("tests/diagnostics/{name}.gbx"), src);
    let checked = glassbox::check_source(&file, &DiskLoader);
    assert!(!checked.diags.is_empty(), "{name}: expected a diagnostic");
    let handler =
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(90);
    let mut out = String::new();
    for d in &checked.diags {
        handler
            .render_report(&mut out, d)
            .expect("rendering into a String cannot fail");
    }
    out
}

#[test]
fn misspelled_state() {
    insta::assert_snapshot!(render(
        "snap_misspelled",
        "model m\nstate y[2] = [1, 0]\ndy/dt = -yy\n"
    ));
}

#[test]
fn shape_mismatch() {
    insta::assert_snapshot!(render(
        "snap_shapes",
        "model m\nstate y[2] = [1, 0]\nparam w[3] = 1\ndy/dt = y + w\n"
    ));
}

#[test]
fn missing_data_file() {
    insta::assert_snapshot!(render(
        "snap_data",
        "model m\nstate y[2] = [1, 0]\ndy/dt = -y\ndata obs = csv(\"data/nothere.csv\", columns = [\"y1\", \"y2\"])\n"
    ));
}

#[test]
fn ode_method_on_sde() {
    insta::assert_snapshot!(render(
        "snap_method",
        "model m\nstate u = 1\ndu = -u dt + 0.1 dW\nsolve tsit5(rtol = 1e-3)\n"
    ));
}
