//! Tidy tests: rules about the source tree itself, checked by reading `src/` (in the style of
//! rust-analyzer's `tidy.rs`). Each rule is one `#[test]` over [`source_files`]; a broken rule
//! names every offending `file:line`.
//!
//! - `layers_are_ordered`: the crate is layered — core (syntax, sema, ir, jit, solve, grad,
//!   data, train, diag, source, driver, math, and any other module not named below) < `app`
//!   (requests, plans, runs, exporters; no IO) < `kit` (the IO the front ends share) < the front
//!   ends (`cli`, `repl`, `aot`) < `src/main.rs`. A module may use its own layer and those
//!   below, never one above, and no front end may use another. Read from every `crate::…` path
//!   in code (`use crate::x…`, `crate::x::…`, `use crate::{x, y}`); comments and strings are
//!   blanked first. `src/main.rs` sees the library as `glassbox::…`, so it may use everything.
//! - `unsafe_only_in_allowed_modules`: `unsafe` only in the listed modules, each use documented.

use std::path::{Path, PathBuf};

/// The modules allowed `unsafe` code: the crate denies `unsafe_code` (Cargo.toml `[lints]`), and
/// these are declared `#[allow(unsafe_code)]`, each with its reason, in `src/jit/mod.rs` and
/// `src/aot/mod.rs`. Keep the three in step (the test checks the declarations).
const UNSAFE_ALLOWED: &[&str] = &[
    "src/aot/entry.rs",
    "src/jit/batch_kernel.rs",
    "src/jit/bound.rs",
    "src/jit/kernel.rs",
    "src/jit/module.rs",
    "src/jit/runtime.rs",
    "src/jit/slice_runtime.rs",
];

/// One Rust source file: its path relative to the crate root (with `/`), its text, and the same
/// text with comments and string/char literals blanked (newlines kept, so offsets and line
/// numbers agree).
struct SourceFile {
    path: String,
    text: String,
    code: String,
}

impl SourceFile {
    fn line_of(&self, offset: usize) -> usize {
        self.code[..offset].matches('\n').count() + 1
    }

    fn lines(&self) -> Vec<&str> {
        self.text.lines().collect()
    }
}

/// Every `.rs` file under `dir` (relative to the crate root), sorted by path.
fn source_files(dir: &str) -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    collect_rs(&root.join(dir), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let path = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            SourceFile {
                path,
                code: code_only(&text),
                text,
            }
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` with every comment (line, doc, nested block) and every string, raw-string, byte-string
/// and char literal replaced by spaces, newlines kept. Lifetimes (`'a`) stay code.
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let at = |k: usize| b.get(i + k).copied().unwrap_or('\0');
        let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if at(0) == '/' && at(1) == '/' {
            while i < b.len() && b[i] != '\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if !ident_before && (at(0) == 'r' || (at(0) == 'b' && at(1) == 'r')) && {
            let start = if at(0) == 'b' { 2 } else { 1 };
            let hashes = (start..).take_while(|&k| at(k) == '#').count();
            at(start + hashes) == '"'
        } {
            // Raw string: r"..." / r#"..."# / br"...", no escapes.
            let start = if at(0) == 'b' { 2 } else { 1 };
            let hashes = (start..).take_while(|&k| at(k) == '#').count();
            let open = start + hashes + 1;
            for _ in 0..open {
                out.push(' ');
            }
            i += open;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < b.len() && !b[i..].starts_with(&close) {
                blank(&mut out, b[i]);
                i += 1;
            }
            for _ in 0..close.len().min(b.len() - i) {
                out.push(' ');
            }
            i += close.len();
        } else if at(0) == '"' {
            i = blank_quoted(&b, i, '"', &mut out);
        } else if at(0) == '\'' && (at(1) == '\\' || at(2) == '\'') {
            // A char literal ('x', '\n', '\u{..}'); anything else after `'` is a lifetime.
            i = blank_quoted(&b, i, '\'', &mut out);
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn blank(out: &mut String, c: char) {
    out.push(if c == '\n' { '\n' } else { ' ' });
}

/// Blanks the literal opening with `quote` at `b[i]`, escapes included, up to its closing quote;
/// returns the index after it.
fn blank_quoted(b: &[char], mut i: usize, quote: char, out: &mut String) -> usize {
    out.push(' ');
    i += 1;
    while i < b.len() && b[i] != quote {
        if b[i] == '\\' {
            blank(out, b[i]);
            i += 1;
        }
        if i < b.len() {
            blank(out, b[i]);
            i += 1;
        }
    }
    out.push(' ');
    i + 1
}

/// Byte offsets of the keyword `word` in `code` (whole identifier, not part of a longer one).
fn keyword_offsets<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).filter_map(move |(at, _)| {
        let before = code[..at].chars().next_back().is_some_and(ident);
        let after = code[at + word.len()..].chars().next().is_some_and(ident);
        (!before && !after).then_some(at)
    })
}

/// Whether the comment lines right above line `line` (1-based) include one starting with
/// `// SAFETY:`.
fn has_safety_comment(lines: &[&str], line: usize) -> bool {
    lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//") && !l.starts_with("///") && !l.starts_with("//!"))
        .any(|l| l.starts_with("// SAFETY:"))
}

/// Whether the doc comment of the item on line `line` has a `# Safety` section (its doc and
/// attribute lines right above it).
fn has_safety_section(lines: &[&str], line: usize) -> bool {
    lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//") || l.starts_with("#["))
        .any(|l| l == "/// # Safety")
}

/// `unsafe` only in [`UNSAFE_ALLOWED`], and there documented: every `unsafe` block, `unsafe impl`
/// and `#[unsafe(..)]` attribute right below a `// SAFETY:` comment saying why it is sound, every
/// `unsafe fn` with a `# Safety` doc section (its contract); `#[allow(unsafe_code)]` only on the
/// declarations of those modules.
#[test]
fn unsafe_only_in_allowed_modules() {
    let files = source_files("src");
    let mut problems = Vec::new();
    for allowed in UNSAFE_ALLOWED {
        if !files.iter().any(|f| f.path == *allowed) {
            problems.push(format!("{allowed}: in UNSAFE_ALLOWED but no such file"));
        }
    }
    for file in &files {
        let lines = file.lines();
        let allowed = UNSAFE_ALLOWED.contains(&file.path.as_str());
        for at in keyword_offsets(&file.code, "unsafe") {
            let line = file.line_of(at);
            let here = format!("{}:{line}", file.path);
            if !allowed {
                problems.push(format!(
                    "{here}: `unsafe` outside the modules allowed it (tests/suite/tidy.rs UNSAFE_ALLOWED)"
                ));
                continue;
            }
            let rest = file.code[at + "unsafe".len()..].trim_start();
            // The ABI string is blanked, so `unsafe extern "C" fn` reads `unsafe extern     fn`.
            let after_extern = rest.strip_prefix("extern").map_or(rest, str::trim_start);
            if let Some(f) = after_extern.strip_prefix("fn") {
                // A declaration (`unsafe fn name`) states a contract; a pointer type
                // (`unsafe extern "C" fn(..)`) states nothing.
                if !f.trim_start().starts_with('(') && !has_safety_section(&lines, line) {
                    problems.push(format!(
                        "{here}: `unsafe fn` without a `# Safety` doc section"
                    ));
                }
            } else if !has_safety_comment(&lines, line) {
                problems.push(format!(
                    "{here}: `unsafe` without a `// SAFETY:` comment above"
                ));
            }
        }
        for at in keyword_offsets(&file.code, "unsafe_code") {
            let line = file.line_of(at);
            let attr = file.code[..at].trim_end();
            let Some(attr) = attr.strip_suffix("allow(").map(str::trim_end) else {
                continue;
            };
            // `#![allow(unsafe_code)]` allows the file itself; `#[allow(unsafe_code)] mod m;`
            // the module `m` declared next to it.
            let allows = if attr.ends_with("#![") {
                Some(file.path.clone())
            } else {
                file.code[at..]
                    .split_once(']')
                    .map(|(_, rest)| rest.trim_start())
                    .map(|rest| rest.strip_prefix("pub").map_or(rest, str::trim_start))
                    .map(|rest| rest.strip_prefix("(crate)").map_or(rest, str::trim_start))
                    .and_then(|rest| rest.strip_prefix("mod "))
                    .and_then(|rest| rest.split_once(';'))
                    .map(|(name, _)| {
                        let dir = file.path.rsplit_once('/').map_or("", |(d, _)| d);
                        format!("{dir}/{}.rs", name.trim())
                    })
            };
            if !allows.is_some_and(|m| UNSAFE_ALLOWED.contains(&m.as_str())) {
                problems.push(format!(
                    "{}:{line}: `allow(unsafe_code)` not on a module in UNSAFE_ALLOWED",
                    file.path
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "unsafe code rules broken:\n{}",
        problems.join("\n")
    );
}

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

/// The top-level module of a file under `src/` (`src/cli/solve.rs` → `cli`, `src/diag.rs` →
/// `diag`); `None` for `lib.rs` and `main.rs`.
fn module_of(rel: &str) -> Option<String> {
    let rest = rel.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
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
fn layer_violations() -> Vec<String> {
    let mut problems = Vec::new();
    for file in source_files("src") {
        if let Some(from) = module_of(&file.path) {
            problems.extend(check_file(&file.path, &from, &file.code));
        }
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
            if let Some(why) = forbidden(from, &to) {
                problems.push(format!("{rel}:{pending_line}: {why}"));
            }
        }
    }
    problems
}

/// Why `from` may not use `to`, or `None` when it may.
fn forbidden(from: &str, to: &str) -> Option<String> {
    if from == to {
        return None;
    }
    let (lf, lt) = (layer(from), layer(to));
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
    let problems = layer_violations();
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
