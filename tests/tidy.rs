//! Tidiness rules read from the source, as rust-analyzer's `tidy` tests do: cheap, textual,
//! and each failure names the file and line to fix.
//!
//! `layers_are_ordered`: the crate is layered — core (syntax, sema, ir, jit, solve, grad,
//! data, train, diag, source, driver, and any other module not named below) < `app` (requests,
//! plans, runs, exporters; no IO) < `kit` (the IO the front ends share) < the front ends
//! (`cli`, `repl`, `aot`) < `src/main.rs`. A module may use its own layer and those below,
//! never one above, and no front end may use another. Read from every `crate::…` path in
//! `src/**/*.rs` (`use crate::x…`, `crate::x::…` in code, `use crate::{x, y}`); comments are
//! skipped. `src/main.rs` sees the library as `glassbox::…`, so it may use everything.

use std::path::{Path, PathBuf};

/// A module's layer; higher layers may use lower ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Core,
    App,
    Kit,
    FrontEnd,
}

fn layer(module: &str) -> Layer {
    match module {
        "app" => Layer::App,
        "kit" => Layer::Kit,
        "cli" | "repl" | "aot" => Layer::FrontEnd,
        _ => Layer::Core,
    }
}

/// Upward imports that are known and on their way out, `(file prefix, module)`.
///
/// The standalone binary's entry point `glassbox_aot_main` still sits in `src/jit/kernel.rs`
/// (it needs `unsafe`) and reads `aot::Meta` and calls `aot::runtime::main`; the JIT split
/// moves it to `src/aot/entry.rs`, and then this entry goes.
const KNOWN_UPWARD: &[(&str, &str)] = &[("src/jit/kernel.rs", "aot")];

/// The top-level module of a file under `src/` (`src/cli/solve.rs` → `cli`, `src/diag.rs` →
/// `diag`); `None` for `lib.rs` and `main.rs`.
fn module_of(rel: &str) -> Option<String> {
    let rest = rel.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The line without its `//` comment (a `//` inside a string is rare enough in `use` lines
/// and paths to ignore).
fn code_of(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("//") {
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

/// The top-level modules a line's `crate::` paths name: `crate::x::…`, `crate::x;` and each
/// first segment of a `crate::{x, y::…}` group.
fn crate_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `glassbox_crate::` or `$crate::` are not this crate's paths.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            let mut depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(first_segment(&inner[start..k]));
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            out.push(first_segment(&inner[start..]));
        } else {
            out.push(first_segment(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every violation as `file:line: message`.
fn layer_violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut problems = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let Some(from) = module_of(&rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        problems.extend(check_file(&rel, &from, &text));
    }
    problems
}

/// The violations in one file of module `from`.
fn check_file(rel: &str, from: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // A `use crate::{…}` group may span lines: join until its braces close.
    let mut pending = String::new();
    let mut pending_line = 0;
    for (i, line) in text.lines().enumerate() {
        let code = code_of(line);
        if pending.is_empty() {
            pending_line = i + 1;
        }
        pending.push_str(code);
        pending.push(' ');
        let open = pending.matches('{').count();
        let close = pending.matches('}').count();
        if pending.contains("crate::{") && open > close {
            continue;
        }
        let joined = std::mem::take(&mut pending);
        for to in crate_modules(&joined) {
            if let Some(why) = forbidden(rel, from, &to) {
                problems.push(format!("{rel}:{pending_line}: {why}"));
            }
        }
    }
    problems
}

/// Why `from` (in file `rel`) may not use `to`, or `None` when it may.
fn forbidden(rel: &str, from: &str, to: &str) -> Option<String> {
    if from == to {
        return None;
    }
    let (lf, lt) = (layer(from), layer(to));
    if KNOWN_UPWARD
        .iter()
        .any(|(file, module)| rel.starts_with(file) && *module == to)
    {
        return None;
    }
    if lf == Layer::FrontEnd && lt == Layer::FrontEnd {
        return Some(format!(
            "front end `{from}` uses front end `{to}`: share it through `app` or `kit`, or dispatch in `src/main.rs`"
        ));
    }
    if lt > lf {
        return Some(format!(
            "`{from}` ({lf:?}) uses `{to}` ({lt:?}), a higher layer (core < app < kit < front ends)"
        ));
    }
    None
}

#[test]
fn layers_are_ordered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let problems = layer_violations(root);
    assert!(
        problems.is_empty(),
        "layer rule broken (see docs/architecture.md, \"Layers\"):\n{}",
        problems.join("\n")
    );
}

/// The checker itself: it finds each kind of forbidden import, names the line, and lets the
/// allowed ones through.
#[test]
fn layer_check_catches_forbidden_imports() {
    let text = "\
//! use crate::cli::x; in a comment is fine
use crate::app::solve;
use crate::repl::Repl;
use crate::{diag::Diag,
    cli::render};
fn f() { crate::kit::emit(&[]); }
";
    let problems = check_file("src/aot/x.rs", "aot", text);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("src/aot/x.rs:3: front end `aot` uses front end `repl`"));
    assert!(problems[1].starts_with("src/aot/x.rs:4: front end `aot` uses front end `cli`"));
    let core = check_file("src/solve/x.rs", "solve", "use crate::app::SolveRequest;\n");
    assert_eq!(core.len(), 1, "{core:?}");
    assert!(core[0].contains("`solve` (Core) uses `app` (App), a higher layer"));
    let app = check_file(
        "src/app/x.rs",
        "app",
        "let x = crate::kit::io::write_atomic;\n",
    );
    assert_eq!(app.len(), 1, "{app:?}");
    assert!(check_file("src/kit/x.rs", "kit", "use crate::app::export::to_csv;\n").is_empty());
}
