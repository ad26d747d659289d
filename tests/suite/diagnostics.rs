//! The diagnostics suite: every `tests/diagnostics/*.gbx` is checked with the disk loader
//! (data paths resolve against the file, tiny data files live in `tests/diagnostics/data/`),
//! and the set of (severity, code, primary span) of its diagnostics must equal the file's
//! annotations, one per line:
//!
//! ```text
//! #! error glassbox::CODE L1:C1-L2:C2
//! ```
//!
//! (1-based lines and columns in characters, end exclusive). A diagnostic pointing into another
//! file (an import) is written with ` in NAME` after the span. On failure the test prints, per
//! file, what is missing and what is unexpected, and the actual annotation block to paste.

use std::collections::BTreeSet;
use std::path::Path;

use glassbox::diag::{Diag, Severity};
use glassbox::source::{DiskLoader, SourceFile};

fn annotation(d: &Diag, file: &SourceFile) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let place = match (d.span(), &d.file) {
        (Some(span), Some(f)) => {
            let (l1, c1) = f.line_col(span.start);
            let (l2, c2) = f.line_col(span.end);
            let other = if f.name == file.name {
                String::new()
            } else {
                format!(" in {}", f.name)
            };
            format!(" {l1}:{c1}-{l2}:{c2}{other}")
        }
        _ => String::new(),
    };
    format!("#! {sev} {}{place}", d.code)
}

fn expected(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("#! "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn diagnostics_suite() {
    let dir = Path::new("tests/diagnostics");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/diagnostics exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gbx"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 25, "the suite has {} files", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("readable test file");
        let file = SourceFile::new(path.to_string_lossy(), text.clone());
        let checked = glassbox::check_source(&file, &DiskLoader);
        let want = expected(&text);
        if want.is_empty() {
            failures.push(format!(
                "{}: a diagnostics test asserts at least one diagnostic",
                path.display()
            ));
        }
        let got: BTreeSet<String> = checked.diags.iter().map(|d| annotation(d, &file)).collect();
        // Every diagnostic must carry a code, a primary span and a help line.
        for d in &checked.diags {
            if d.span().is_none() || d.help.is_none() {
                failures.push(format!(
                    "{}: `{}` lacks a span or a help line",
                    path.display(),
                    d.code
                ));
            }
        }
        if got != want || got.len() != checked.diags.len() {
            let mut report = format!("── {} ──\n", path.display());
            for w in want.difference(&got) {
                report += &format!("  missing:    {w}\n");
            }
            for d in &checked.diags {
                let a = annotation(d, &file);
                if !want.contains(&a) {
                    report += &format!("  unexpected: {a}   // {}\n", d.message);
                }
            }
            if got.len() != checked.diags.len() {
                report += "  (two diagnostics share a code and span)\n";
            }
            report += "  actual (paste):\n";
            for d in &checked.diags {
                report += &format!("{}\n", annotation(d, &file));
            }
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "diagnostics differ from annotations:\n{}",
        failures.join("\n")
    );
}
