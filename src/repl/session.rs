//! The session program: the items a user entered (or loaded), checked as one model file.
//!
//! Each entry is the source text of one item plus the names it declares (its keys). Entering
//! an item whose key an entry already has replaces that declaration in place (a multi-name
//! item such as `param a = 1, b = 2` loses only the replaced name), and the whole program is
//! rechecked, so everything that depends on the name is checked again.
//!
//! Invariant: the committed entries always check with no error except
//! `glassbox::missing_equation` (a state may wait for its equation). A change that breaks the
//! program is rejected with its diagnostics and the session stays as it was.

use std::path::PathBuf;
use std::sync::Arc;

use crate::diag::Diag;
use crate::driver::{Checked, check_source};
use crate::sema::Model;
use crate::source::{DiskLoader, SourceFile};
use crate::syntax::ast::{Equation, Item, ItemKind};

/// The one error code a session may carry: a state still waiting for its equation.
pub const INCOMPLETE: &str = "glassbox::missing_equation";

/// The name of the synthetic output an evaluated expression becomes.
pub const VALUE: &str = "_repl_value";

#[derive(Clone, Debug)]
pub struct Entry {
    /// What it declares: names, `d/X` for the equation of `X`, or the clause keyword.
    pub keys: Vec<String>,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Session {
    pub entries: Vec<Entry>,
    /// The file `:load` read (`:reload` reads it again); data paths resolve against it.
    pub path: Option<PathBuf>,
}

/// How entering an item changed the session, for the one-line confirmation.
pub enum Change {
    Defined(Vec<String>),
    Replaced(Vec<String>),
}

impl Session {
    /// The source file name: the loaded file (so relative data paths resolve as in the file),
    /// else `repl` (the model's default name).
    pub fn file_name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "repl".to_string(), |p| p.display().to_string())
    }

    pub fn text(&self) -> String {
        join(&self.entries)
    }

    /// Parse and check the committed program.
    pub fn check(&self) -> (Arc<SourceFile>, Checked) {
        let file = SourceFile::new(self.file_name(), self.text());
        let checked = check_source(&file, &DiskLoader);
        (file, checked)
    }

    /// Names the session declares (for completion): every key that is a name.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .flat_map(|e| e.keys.iter())
            .filter(|k| !k.contains('/') && !k.starts_with(':'))
            .cloned()
            .collect()
    }

    /// Enter the items of `input` (already known to parse). On success the session holds the
    /// new program; on failure it is unchanged and the diagnostics come back, those inside the
    /// new text pointing into `input_file`.
    pub fn enter(&mut self, input_file: &Arc<SourceFile>) -> Result<Vec<Change>, Vec<Diag>> {
        let (program, diags) = crate::syntax::parse(input_file);
        if diags.iter().any(Diag::is_error) {
            return Err(diags);
        }
        let mut entries = self.entries.clone();
        let mut changes = Vec::new();
        let mut spans = Vec::new();
        for item in &program.items {
            let text = input_file
                .text
                .get(item.span.range())
                .unwrap_or_default()
                .to_string();
            let keys = keys_of(item);
            let replaced = replace(
                &mut entries,
                &keys,
                Entry {
                    keys: keys.clone(),
                    text,
                },
            );
            spans.push(item.span);
            let shown: Vec<String> = keys.iter().filter_map(|k| shown_key(k)).collect();
            changes.push(if replaced {
                Change::Replaced(shown)
            } else {
                Change::Defined(shown)
            });
        }
        let text = join(&entries);
        let file = SourceFile::new(self.file_name(), text.clone());
        let checked = check_source(&file, &DiskLoader);
        let errors: Vec<Diag> = checked
            .diags
            .into_iter()
            .filter(|d| d.is_error() && d.code != INCOMPLETE)
            .collect();
        if !errors.is_empty() {
            return Err(errors
                .into_iter()
                .map(|d| relocate(d, &text, input_file))
                .collect());
        }
        self.entries = entries;
        Ok(changes)
    }

    /// Replace the whole session by a file's items (`:load`, `:reload`).
    pub fn load(&mut self, path: PathBuf, file: &Arc<SourceFile>) -> Result<usize, Vec<Diag>> {
        let checked = check_source(file, &DiskLoader);
        let errors: Vec<Diag> = checked
            .diags
            .into_iter()
            .filter(|d| d.is_error() && d.code != INCOMPLETE)
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let entries: Vec<Entry> = checked
            .program
            .items
            .iter()
            .map(|item| Entry {
                keys: keys_of(item),
                text: file
                    .text
                    .get(item.span.range())
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect();
        let n = entries.len();
        self.entries = entries;
        self.path = Some(path);
        Ok(n)
    }

    /// The checked model, or the diagnostics that say why there is none (e.g. a state still
    /// without its equation): for `:show`, `:jacobian`, `:solve`.
    pub fn model(&self) -> Result<(Arc<SourceFile>, Model), Vec<Diag>> {
        let (file, checked) = self.check();
        match checked.model {
            Some(m) => Ok((file, m)),
            None => Err(checked.diags.into_iter().filter(Diag::is_error).collect()),
        }
    }

    /// Check the session plus `output _repl_value = EXPR`, with a zero equation standing in
    /// for every missing one so expressions can be evaluated before the model is complete.
    /// Diagnostics inside the expression point into `expr_file`.
    pub fn with_expr(&self, expr_file: &Arc<SourceFile>) -> Result<(Model, usize), Vec<Diag>> {
        let expr = expr_file.text.trim_end();
        if let Some(d) = parse_expr(expr_file) {
            return Err(vec![d]);
        }
        let mut entries = self.entries.clone();
        for state in self.waiting_states() {
            entries.push(Entry {
                keys: vec![],
                text: format!("d{state}/dt = 0 * {state}"),
            });
        }
        let base = join(&entries);
        let prefix = format!("\noutput {VALUE} = ");
        let offset = base.len() + prefix.len();
        let text = format!("{base}{prefix}{expr}\n");
        let file = SourceFile::new(self.file_name(), text.clone());
        let checked = check_source(&file, &DiskLoader);
        let Some(model) = checked.model else {
            let errors = checked.diags.into_iter().filter(Diag::is_error);
            return Err(errors.map(|d| relocate_at(d, offset, expr_file)).collect());
        };
        let index = model
            .outputs
            .iter()
            .position(|o| o.name == VALUE)
            .ok_or_else(|| {
                vec![
                    Diag::error(
                        "glassbox::internal",
                        "the expression's output is missing from the checked model",
                    )
                    .help("this is a bug in glassbox; please report it with the session"),
                ]
            })?;
        Ok((model, index))
    }

    /// States declared without an equation yet.
    fn waiting_states(&self) -> Vec<String> {
        let keys: Vec<&String> = self.entries.iter().flat_map(|e| e.keys.iter()).collect();
        let mut out = Vec::new();
        for e in &self.entries {
            if let Some(states) = e.keys.iter().find(|k| k.starts_with(":state ")) {
                for name in states.trim_start_matches(":state ").split(' ') {
                    let eq = format!("d/{name}");
                    if !keys.iter().any(|k| **k == eq) {
                        out.push(name.to_string());
                    }
                }
            }
        }
        out
    }
}

/// Parse errors of a bare expression, reported against its own text: the expression is parsed
/// as the value of an output so that the grammar is the language's own.
fn parse_expr(expr_file: &Arc<SourceFile>) -> Option<Diag> {
    let prefix = format!("output {VALUE} = ");
    let wrapped = SourceFile::new(
        expr_file.name.clone(),
        format!("{prefix}{}", expr_file.text),
    );
    let (program, diags) = crate::syntax::parse(&wrapped);
    if let Some(d) = diags.into_iter().find(Diag::is_error) {
        return Some(relocate_at(d, prefix.len(), expr_file));
    }
    (program.items.len() != 1).then(|| {
        Diag::error(
            "glassbox::repl_not_an_expression",
            "this input is neither one expression nor a declaration",
        )
        .help("enter one expression, a declaration (`state`, `param`, ...) or an equation `dX/dt = ...`")
        .in_file(expr_file)
    })
}

/// A diagnostic whose spans all lie in the last `input.text.len()` bytes of `text` is moved
/// to point into `input`; any other keeps the session file.
fn relocate(d: Diag, text: &str, input: &Arc<SourceFile>) -> Diag {
    let offset = text.len().saturating_sub(input.text.trim_end().len() + 1);
    // The new items were appended last only when nothing was replaced; find them by text.
    let at = text.rfind(input.text.trim()).unwrap_or(offset);
    relocate_at(d, at, input)
}

fn relocate_at(mut d: Diag, offset: usize, input: &Arc<SourceFile>) -> Diag {
    let end = offset + input.text.len();
    let inside = !d.labels.is_empty()
        && d.labels
            .iter()
            .all(|l| l.span.start >= offset && l.span.end <= end);
    if inside {
        for l in &mut d.labels {
            l.span = crate::source::Span::new(l.span.start - offset, l.span.end - offset);
        }
        d.file = Some(input.clone());
    }
    d
}

fn join(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        s.push_str(&e.text);
        s.push('\n');
    }
    s
}

/// Put `new` in place of the entries that declare any of its keys (the first one's place),
/// else at the end. Returns whether something was replaced. A multi-name item keeps its
/// other names.
fn replace(entries: &mut Vec<Entry>, keys: &[String], new: Entry) -> bool {
    let hits = |e: &Entry| {
        e.keys
            .iter()
            .any(|k| !k.starts_with(":state ") && keys.contains(k))
    };
    let Some(first) = entries.iter().position(hits) else {
        entries.push(new);
        return false;
    };
    let mut kept = Vec::new();
    for (i, e) in entries.drain(..).enumerate() {
        if i == first {
            kept.push(new.clone());
        }
        if hits(&e) {
            if let Some(rest) = without(&e, keys) {
                kept.push(rest);
            }
        } else {
            kept.push(e);
        }
    }
    *entries = kept;
    true
}

/// The entry with the declarations named in `keys` removed (`None` when nothing is left).
fn without(e: &Entry, keys: &[String]) -> Option<Entry> {
    let file = SourceFile::new("entry", e.text.clone());
    let (program, _) = crate::syntax::parse(&file);
    let mut item = program.items.into_iter().next()?;
    let keep = |name: &str| !keys.iter().any(|k| k == name);
    // Each declaration list has its own type; the same pruning for each.
    macro_rules! drop_named {
        ($v:expr) => {{
            $v.retain(|d| keep(&d.name.name));
            $v.is_empty()
        }};
    }
    let empty = match &mut item.kind {
        ItemKind::State(v) => drop_named!(v),
        ItemKind::Param(v) => drop_named!(v),
        ItemKind::Const(v) => drop_named!(v),
        ItemKind::Input(v) => drop_named!(v),
        ItemKind::Label(v) => drop_named!(v),
        ItemKind::Net(v) => drop_named!(v),
        ItemKind::Data(v) => drop_named!(v),
        ItemKind::Output(v) => drop_named!(v),
        _ => true,
    };
    if empty {
        return None;
    }
    let text = crate::syntax::format_item(&item).trim_end().to_string();
    Some(Entry {
        keys: keys_of(&item),
        text,
    })
}

/// How a key reads in a confirmation: `mu`, `dx/dt`, `solve`; `None` for the state list.
fn shown_key(k: &str) -> Option<String> {
    if k.starts_with(":state ") {
        None
    } else if let Some(state) = k.strip_prefix("d/") {
        Some(format!("d{state}/dt"))
    } else {
        Some(k.trim_start_matches(':').to_string())
    }
}

/// The keys of an item: the names it declares, `d/X` for the equation of `X`, `:KEYWORD` for
/// a clause there is one of, and `:state a b` listing states (to find missing equations).
pub fn keys_of(item: &Item) -> Vec<String> {
    fn names<T>(v: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
        v.iter().map(|d| f(d).to_string()).collect()
    }
    match &item.kind {
        ItemKind::Model(_) => vec![":model".into()],
        ItemKind::Use(_) => vec![],
        ItemKind::State(v) => {
            let mut k = names(v, |d| &d.name.name);
            k.push(format!(":state {}", k.join(" ")));
            k
        }
        ItemKind::Param(v) => names(v, |d| &d.name.name),
        ItemKind::Const(v) => names(v, |d| &d.name.name),
        ItemKind::Input(v) => names(v, |d| &d.name.name),
        ItemKind::Label(v) => names(v, |d| &d.name.name),
        ItemKind::Net(v) => names(v, |d| &d.name.name),
        ItemKind::Data(v) => names(v, |d| &d.name.name),
        ItemKind::Fn(d) => vec![d.name.name.clone()],
        ItemKind::Output(v) => names(v, |d| &d.name.name),
        ItemKind::Equation(Equation::Ode { state, .. } | Equation::Sde { state, .. }) => {
            vec![format!("d/{}", state.name)]
        }
        ItemKind::Solve(_) => vec![":solve".into()],
        ItemKind::Minimize(_) => vec![":minimize".into()],
        ItemKind::Train(_) => vec![":train".into()],
    }
}
