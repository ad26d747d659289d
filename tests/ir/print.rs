//! Printing: snapshots of text and LaTeX, and LaTeX well-formedness on every model and pass.

use glassbox::ir::{Function, jacobian, print_latex, print_text, time_derivatives, vjp};

use crate::models;

#[test]
fn spiral_text() {
    insta::assert_snapshot!(print_text(&models::spiral().f));
}

#[test]
fn lorenz_text_and_jacobian() {
    let m = models::lorenz();
    let text = format!(
        "{}\n{}",
        print_text(&m.f),
        print_text(&jacobian(&m.f, "u").unwrap())
    );
    insta::assert_snapshot!(text);
}

#[test]
fn spiral_vjp_shares_forward_values() {
    let m = models::spiral();
    let text = print_text(&vjp(&m.f, &["u"], "v").unwrap());
    // The derivative is written with the forward activation (1 − tanh(…)²): one tanh.
    assert_eq!(text.matches("tanh(").count(), 1, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn latex_snapshots() {
    let text = format!(
        "{}\n{}\n{}",
        print_latex(&models::spiral().f),
        print_latex(&models::robertson().f),
        print_latex(&models::assorted().f)
    );
    insta::assert_snapshot!(text);
}

/// Braces, `\left`/`\right` and environments balance, and no line is empty.
fn assert_balanced(what: &str, latex: &str) {
    let mut depth: i64 = 0;
    for c in latex.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0, "{what}: closing brace before opening\n{latex}");
    }
    assert_eq!(depth, 0, "{what}: unbalanced braces\n{latex}");
    assert_eq!(
        latex.matches("\\left").count(),
        latex.matches("\\right").count(),
        "{what}"
    );
    assert_eq!(
        latex.matches("\\begin{").count(),
        latex.matches("\\end{").count(),
        "{what}"
    );
    for line in latex.lines() {
        assert!(
            line.contains("&="),
            "{what}: line without an alignment point: {line}"
        );
    }
}

#[test]
fn latex_is_balanced_for_every_model_and_pass() {
    for m in models::all() {
        let mut fs: Vec<Function> = vec![m.f.clone(), vjp(&m.f, &["u", "p"], "v").unwrap()];
        fs.push(jacobian(&m.f, "u").unwrap());
        fs.extend(time_derivatives(&m.f, 2, Some("t"), "u").unwrap());
        for f in &fs {
            assert_balanced(m.name, &print_latex(f));
            assert!(!print_text(f).contains('?'), "{}: unprinted node", m.name);
        }
    }
}

#[test]
fn spiral_jacobian_uses_matrix_columns() {
    // One-hot seeds never appear: column k of W1 is a slice of W1ᵀ.
    let text = print_text(&jacobian(&models::spiral().f, "u").unwrap());
    assert!(!text.contains("fill("), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn spiral_gradients_and_second_derivative() {
    let m = models::spiral();
    let grads = print_text(&vjp(&m.f, &["u", "p"], "v").unwrap());
    // Weight gradients stay dense: outer products, not 100 scalar entries.
    assert!(grads.contains("⊗"), "{grads}");
    let d2 = print_text(&time_derivatives(&m.f, 2, Some("t"), "u").unwrap()[1]);
    insta::assert_snapshot!(format!("{grads}\n{d2}"));
}
