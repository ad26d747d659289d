//! Annotated parse-error files: every `tests/diagnostics/parse_*.gbx` states its diagnostics as
//! `#! error glassbox::CODE L1:C1-L2:C2` lines (1-based, columns in characters, end exclusive);
//! the set of annotations must equal the set of diagnostics `parse` produces.
//! `GLASSBOX_SHOW=1 cargo test --test syntax_diagnostics -- --nocapture` prints what each file
//! produces, to write the annotations of a new file.

use std::collections::BTreeSet;
use std::path::Path;

use glassbox::source::SourceFile;
use glassbox::syntax::parse;

fn annotations(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("#! "))
        .map(|a| a.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn produced(name: &str, text: &str) -> BTreeSet<String> {
    let file = SourceFile::new(name, text);
    let (_, diags) = parse(&file);
    diags
        .iter()
        .map(|d| {
            let s = d.span().expect("parse diagnostics have a span");
            let (l1, c1) = file.line_col(s.start);
            let (l2, c2) = file.line_col(s.end);
            let kind = if d.is_error() { "error" } else { "warning" };
            assert!(d.help.is_some(), "{name}: {} has no help line", d.code);
            assert!(
                !d.message.contains("Rule"),
                "{name}: pest rule names leak: {}",
                d.message
            );
            format!("{kind} {} {l1}:{c1}-{l2}:{c2}", d.code)
        })
        .collect()
}

#[test]
fn parse_diagnostic_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/diagnostics")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("parse_") && n.ends_with(".gbx"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "only {} parse_*.gbx files", files.len());
    let show = std::env::var_os("GLASSBOX_SHOW").is_some();
    let mut failures = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("utf-8 test file");
        let want = annotations(&text);
        let got = produced(&name, &text);
        if show {
            let file = SourceFile::new(name.clone(), text.clone());
            for d in parse(&file).1 {
                println!(
                    "{name}: {} / {:?} / {:?}",
                    d.message,
                    d.labels.first().map(|l| &l.text),
                    d.help
                );
            }
            for g in &got {
                println!("#! {g}");
            }
        }
        if want.is_empty() {
            failures.push(format!("{name} has no annotations"));
        }
        if want != got {
            failures.push(format!("{name}\n  expected: {want:?}\n  produced: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
