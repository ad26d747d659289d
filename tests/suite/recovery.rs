//! Error recovery, as a property: break one line of a sketch program (which checks cleanly) by
//! inserting a stray token, and the checker adds nothing to the parse error: above all, no
//! `undefined_name`, `missing_equation` or `not_a_state` for a name the broken line declared.
//!
//! The stray tokens are ones that hide no code: brackets, quotes, operators, words, but not a
//! comment marker (a comment really does remove the names after it). They go where a mistake
//! typically sits: after the declared name, after the first `=`, before a top-level comma, or
//! at the end of the line.

use std::path::PathBuf;
use std::sync::Arc;

use glassbox::source::{MemoryLoader, SourceFile};
use glassbox::syntax::ast::{ItemKind, Program};
use proptest::prelude::*;

const SKETCHES: &[(&str, &str)] = &[
    (
        "spiral",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/syntax/testdata/spiral.gbx"
        )),
    ),
    (
        "lotka_volterra_ude",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/syntax/testdata/lotka_volterra_ude.gbx"
        )),
    ),
    (
        "digits",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/syntax/testdata/digits.gbx"
        )),
    ),
    (
        "spiral_sde",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/syntax/testdata/spiral_sde.gbx"
        )),
    ),
    (
        "robertson",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/syntax/testdata/robertson.gbx"
        )),
    ),
];

const JUNK: &[&str] = &[
    ")",
    "]",
    "(",
    "[",
    "\"",
    "* /",
    "= =",
    "$",
    "@",
    "1 2",
    "learn learn",
    ",",
    "..",
    "->",
    "+",
    "x y",
];

fn loader() -> MemoryLoader {
    let digits = format!("{}\n", vec!["0"; 65].join(","));
    let files: [(&str, &str); 4] = [
        ("models/data/spiral.csv", "t,y1,y2\n0,2,0\n"),
        ("models/data/lv.csv", "t,x,y\n0,1,1\n"),
        ("models/data/digits.csv", &digits),
        ("models/data/spiral_sde.csv", "path,t,u1,u2\n0,0,2,0\n"),
    ];
    MemoryLoader(
        files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec()))
            .collect(),
    )
}

fn file(name: &str, text: &str) -> Arc<SourceFile> {
    SourceFile::new(format!("models/{name}.gbx"), text)
}

/// The names the item starting on `line` (a byte range) declares; for an equation, its state.
fn declared(program: &Program, line: std::ops::Range<usize>) -> Vec<String> {
    let Some(item) = program.items.iter().find(|i| line.contains(&i.span.start)) else {
        return Vec::new();
    };
    match &item.kind {
        ItemKind::State(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Param(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Const(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Input(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Label(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Net(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Data(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Output(ds) => ds.iter().map(|d| d.name.name.clone()).collect(),
        ItemKind::Fn(f) => vec![f.name.name.clone()],
        ItemKind::Equation(
            glassbox::syntax::ast::Equation::Ode { state, .. }
            | glassbox::syntax::ast::Equation::Sde { state, .. },
        ) => vec![state.name.clone()],
        _ => Vec::new(),
    }
}

/// Where a stray token may go in `line` (file offsets): after the declared name (keyword lines
/// only, so an equation head stays an equation head), after the first `=`, before each comma at
/// bracket depth 0, and at the end of the code.
fn insertion_points(text: &str, line: std::ops::Range<usize>) -> Vec<usize> {
    let code = &text[line.clone()];
    let bytes = code.as_bytes();
    let mut points = Vec::new();
    let (mut depth, mut in_string, mut first_eq, mut end) = (0i32, false, true, code.len());
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'#' => {
                end = i;
                break;
            }
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b',' if depth == 0 => points.push(i),
            b'=' if first_eq => {
                first_eq = false;
                points.push(i + 1);
            }
            _ => {}
        }
    }
    points.push(code[..end].trim_end().len());
    let first = code.split_whitespace().next().unwrap_or("");
    let is_keyword = [
        "model", "state", "param", "const", "input", "label", "net", "data", "fn", "output",
        "solve", "minimize", "train",
    ]
    .contains(&first);
    if is_keyword {
        let after_kw =
            first.len() + (code[first.len()..].len() - code[first.len()..].trim_start().len());
        let name_len = code[after_kw..]
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count();
        points.push(after_kw + name_len);
    }
    points.into_iter().map(|p| line.start + p).collect()
}

/// The byte ranges of the lines holding code.
fn code_lines(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for l in text.split_inclusive('\n') {
        let body = l.trim_end_matches('\n');
        let t = body.trim_start();
        if !t.is_empty() && !t.starts_with('#') {
            out.push(start..start + body.len());
        }
        start += l.len();
    }
    out
}

#[test]
fn sketches_check_cleanly() {
    for (name, text) in SKETCHES {
        let checked = glassbox::check_source(&file(name, text), &loader());
        assert!(checked.diags.is_empty(), "{name}: {:#?}", checked.diags);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn one_broken_line_adds_no_checker_error(
        sketch in 0..SKETCHES.len(),
        line_pick in any::<prop::sample::Index>(),
        point_pick in any::<prop::sample::Index>(),
        junk in prop::sample::select(JUNK),
    ) {
        let (name, text) = SKETCHES[sketch];
        let lines = code_lines(text);
        let line = lines[line_pick.index(lines.len())].clone();
        let points = insertion_points(text, line.clone());
        let at = points[point_pick.index(points.len())];
        let corrupted = format!("{} {junk} {}", &text[..at], &text[at..]);
        let f = file(name, &corrupted);

        let (original, _) = glassbox::syntax::parse(&file(name, text));
        let names = declared(&original, line);
        let (_, parse_diags) = glassbox::syntax::parse(&f);
        // A stray token that happens to leave valid text proves nothing here.
        prop_assume!(!parse_diags.is_empty());

        let checked = glassbox::check_source(&f, &loader());
        let checker_diags = &checked.diags[parse_diags.len().min(checked.diags.len())..];
        prop_assert!(checked.model.is_none());
        for d in checker_diags {
            let span_text = d
                .span()
                .and_then(|s| corrupted.get(s.range()))
                .unwrap_or("");
            prop_assert!(
                !(["glassbox::undefined_name", "glassbox::missing_equation", "glassbox::not_a_state"]
                    .contains(&d.code)
                    && names.iter().any(|n| n == span_text)),
                "{} about a name of the broken line in\n{corrupted}", d.code
            );
        }
        prop_assert!(
            checker_diags.is_empty(),
            "follow-on errors in\n{corrupted}\n{:#?}",
            checker_diags.iter().map(|d| (d.code, d.message.clone())).collect::<Vec<_>>()
        );
    }
}
