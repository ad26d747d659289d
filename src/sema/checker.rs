//! The checker's state and its pass sequence: collecting items across `use`d files and
//! registering every declared name before anything is resolved (so declaration order does not
//! matter), then running the passes of `mod.rs`'s list.
//!
//! Items that failed to parse (`Program::broken`) are registered too, after every parsed item:
//! their names become [`GlobalKind::Broken`], which resolves silently to `Shape::Error` in any
//! use, and a broken equation counts as its state's equation. Invariant: a broken item never
//! causes a diagnostic here; its parse error is its only one.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::model::*;
use super::{CheckCtx, stdlib};
use crate::diag::{Diag, did_you_mean};
use crate::source::{SourceFile, Span};
use crate::syntax::ast::{
    self, BrokenItem, ConstDecl, FnDecl, Ident, Item, ItemKind, Program, UseTarget,
};

/// What a declared name stands for (an index into the matching table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GlobalKind {
    State(usize),
    Param(usize),
    Const(usize),
    Input(usize),
    Label(usize),
    Net(usize),
    Fn(usize),
    Data(usize),
    Output(usize),
    /// Declared by an item that did not parse: every use resolves silently to `Shape::Error`.
    Broken,
}

impl GlobalKind {
    pub fn noun(self) -> &'static str {
        match self {
            GlobalKind::State(_) => "state",
            GlobalKind::Param(_) => "parameter",
            GlobalKind::Const(_) => "constant",
            GlobalKind::Input(_) => "input",
            GlobalKind::Label(_) => "label",
            GlobalKind::Net(_) => "net",
            GlobalKind::Fn(_) => "function",
            GlobalKind::Data(_) => "data source",
            GlobalKind::Output(_) => "output",
            GlobalKind::Broken => "name from an item that did not parse",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Global {
    pub kind: GlobalKind,
    pub span: Span,
    pub file: usize,
}

pub(super) enum ConstState {
    Pending,
    InProgress,
    Done(Value),
    Failed,
}

pub(super) struct ConstSlot {
    pub decl: ConstDecl,
    pub file: usize,
    pub state: ConstState,
}

pub(super) struct FnDef {
    pub decl: FnDecl,
    pub file: usize,
}

/// Names the language gives a meaning of its own; declaring them is an error.
pub(super) const RESERVED: [&str; 3] = ["t", "concat", "jacobian"];

pub(super) struct Checker<'a> {
    pub ctx: &'a CheckCtx<'a>,
    pub files: Vec<Arc<SourceFile>>,
    /// Index into `files` of the file whose spans are being checked.
    pub cur: usize,
    pub diags: Vec<Diag>,
    pub globals: HashMap<String, Global>,
    pub m: Model,
    pub consts: Vec<ConstSlot>,
    pub fns: Vec<FnDef>,
    /// User functions being inlined, innermost last (recursion guard).
    pub inline_stack: Vec<usize>,
    /// Argument bindings of the function being inlined, innermost last.
    pub frames: Vec<Vec<(String, TExpr)>>,
    /// Which state each equation item defines, and where the first one was written.
    pub eq_seen: Vec<Option<(Span, usize)>>,
    /// Whether the model name was given by `model NAME`.
    model_named: Option<Span>,
    /// Items that did not parse, each with its file and its place among the collected items
    /// (it stood just before `items[place]`).
    broken: Vec<(usize, usize, BrokenItem)>,
    /// States whose equation did not parse: they have one, it just cannot be checked.
    pub broken_equations: HashSet<String>,
    /// A `use` did not parse, so any name may have come from it: an unknown name is not
    /// reported.
    pub open_world: bool,
}

pub(super) fn run(
    program: &Program,
    file: &Arc<SourceFile>,
    ctx: &CheckCtx,
) -> (Option<Model>, Vec<Diag>) {
    let stem = Path::new(&file.name)
        .file_stem()
        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
    let mut c = Checker {
        ctx,
        files: vec![file.clone()],
        cur: 0,
        diags: Vec::new(),
        globals: HashMap::new(),
        m: Model {
            name: stem,
            kind: ModelKind::Ode,
            states: Vec::new(),
            state_size: 0,
            params: Vec::new(),
            param_size: 0,
            consts: Vec::new(),
            inputs: Vec::new(),
            labels: Vec::new(),
            nets: Vec::new(),
            equations: Vec::new(),
            outputs: Vec::new(),
            data: Vec::new(),
            solve: None,
            objective: None,
            train: None,
        },
        consts: Vec::new(),
        fns: Vec::new(),
        inline_stack: Vec::new(),
        frames: Vec::new(),
        eq_seen: Vec::new(),
        model_named: None,
        broken: Vec::new(),
        broken_equations: HashSet::new(),
        open_world: false,
    };
    let mut items = Vec::new();
    let mut loaded = HashSet::new();
    let mut stack = vec![file_key(&file.name)];
    loaded.insert(file_key(&file.name));
    c.collect(program, 0, &mut stack, &mut loaded, &mut items);
    c.register(&items);
    c.register_broken();
    c.passes(&items);
    let diags = dedup(std::mem::take(&mut c.diags));
    let ok = !diags.iter().any(Diag::is_error);
    (ok.then_some(c.m), diags)
}

fn dedup(diags: Vec<Diag>) -> Vec<Diag> {
    let mut seen = HashSet::new();
    diags
        .into_iter()
        .filter(|d| {
            let span = d.span().map(|s| s.range());
            let file = d.file.as_ref().map(|f| f.name.clone());
            seen.insert((d.code, file, span))
        })
        .collect()
}

/// A lexically normalised path, so `a/../b.gbx` and `b.gbx` are one file for cycle detection.
pub(super) fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn file_key(name: &str) -> String {
    normalise(Path::new(name)).to_string_lossy().into_owned()
}

impl Checker<'_> {
    pub fn file(&self) -> &Arc<SourceFile> {
        // `cur` always indexes `files`: it is only ever set from an index into it.
        &self.files[self.cur.min(self.files.len() - 1)]
    }

    pub fn push(&mut self, d: Diag) {
        let file = self.file().clone();
        self.diags.push(d.in_file(&file));
    }

    /// An error whose primary label sits on `span`.
    pub fn error(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Diag::error(code, message).label(span, label).help(help));
    }

    /// The directory relative paths in the current file resolve against.
    pub fn base_dir(&self) -> PathBuf {
        Path::new(&self.file().name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    fn collect(
        &mut self,
        program: &Program,
        file: usize,
        stack: &mut Vec<String>,
        loaded: &mut HashSet<String>,
        items: &mut Vec<(usize, Item)>,
    ) {
        let mut broken = program.broken.iter().peekable();
        for item in &program.items {
            while let Some(b) = broken.next_if(|b| b.span.start <= item.span.start) {
                self.broken.push((file, items.len(), b.clone()));
            }
            let ItemKind::Use(target) = &item.kind else {
                if file == 0 || !matches!(item.kind, ItemKind::Model(_)) {
                    items.push((file, item.clone()));
                }
                continue;
            };
            self.cur = file;
            let (key, span, text) = match target {
                UseTarget::Path { path, span } => {
                    let resolved = normalise(&self.base_dir().join(path));
                    let key = resolved.to_string_lossy().into_owned();
                    if stack.contains(&key) || loaded.contains(&key) {
                        (key, *span, None)
                    } else {
                        match self.ctx.loader.read(&resolved) {
                            Ok(bytes) => match String::from_utf8(bytes) {
                                Ok(text) => (key, *span, Some(text)),
                                Err(_) => {
                                    self.error(
                                        "glassbox::import_not_found",
                                        *span,
                                        format!("`{key}` is not a UTF-8 text file"),
                                        "imported here",
                                        "a `use` names a glassbox model file",
                                    );
                                    continue;
                                }
                            },
                            Err(e) => {
                                self.error(
                                    "glassbox::import_not_found",
                                    *span,
                                    match e.kind() {
                                        std::io::ErrorKind::NotFound => {
                                            format!("imported file `{key}` not found")
                                        }
                                        _ => format!("cannot read imported file `{key}`: {e}"),
                                    },
                                    "imported here",
                                    "`use` paths are relative to the importing file",
                                );
                                continue;
                            }
                        }
                    }
                }
                UseTarget::Module(ident) => match stdlib::stdlib_module(&ident.name) {
                    Some(text) => {
                        let key = format!("<stdlib>/{}.gbx", ident.name);
                        let text = (!stack.contains(&key) && !loaded.contains(&key))
                            .then(|| text.to_string());
                        (key, ident.span, text)
                    }
                    None => {
                        let names = stdlib::STDLIB.iter().map(|(n, _)| *n);
                        let help = match did_you_mean(&ident.name, names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!(
                                "the stdlib modules are {}; import a file with `use \"path.gbx\"`",
                                stdlib::STDLIB
                                    .iter()
                                    .map(|(n, _)| format!("`{n}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        self.error(
                            "glassbox::unknown_module",
                            ident.span,
                            format!("there is no stdlib module `{}`", ident.name),
                            "unknown module",
                            help,
                        );
                        continue;
                    }
                },
            };
            if stack.contains(&key) {
                self.error(
                    "glassbox::import_cycle",
                    span,
                    format!("`{key}` imports itself (through this `use`)"),
                    "cycle closes here",
                    "files must not import each other in a cycle; move the shared part into a third file",
                );
                continue;
            }
            let Some(text) = text else { continue };
            loaded.insert(key.clone());
            let sub = SourceFile::new(key.clone(), text);
            let (sub_program, parse_diags) = crate::syntax::parse(&sub);
            self.diags.extend(parse_diags);
            self.files.push(sub);
            let idx = self.files.len() - 1;
            stack.push(key);
            self.collect(&sub_program, idx, stack, loaded, items);
            stack.pop();
        }
        for b in broken {
            self.broken.push((file, items.len(), b.clone()));
        }
        self.cur = 0;
    }

    /// Declare a name; false (with a diagnostic) if it is reserved or already declared.
    pub fn declare(&mut self, ident: &Ident, kind: GlobalKind) -> bool {
        let name = ident.name.as_str();
        if RESERVED.contains(&name) || Builtin::from_name(name).is_some() {
            self.error(
                "glassbox::reserved_name",
                ident.span,
                format!("`{name}` is a built-in name and cannot be declared"),
                "reserved",
                "choose another name",
            );
            return false;
        }
        if let Some(prev) = self.globals.get(name).copied() {
            let mut d = Diag::error(
                "glassbox::duplicate_declaration",
                format!("`{name}` is declared twice"),
            )
            .label(ident.span, "declared again here");
            if prev.file == self.cur {
                d = d.label(
                    prev.span,
                    format!("first declared here as a {}", prev.kind.noun()),
                );
            }
            self.push(d.help("rename one of them; every name in a model is declared once"));
            return false;
        }
        self.globals.insert(
            name.to_string(),
            Global {
                kind,
                span: ident.span,
                file: self.cur,
            },
        );
        true
    }

    /// The table entry a declaration owns, if its `declare` succeeded.
    pub fn owned(&self, ident: &Ident) -> Option<GlobalKind> {
        let g = self.globals.get(&ident.name)?;
        (g.file == self.cur && g.span.range() == ident.span.range()).then_some(g.kind)
    }

    fn register(&mut self, items: &[(usize, Item)]) {
        for (file, item) in items {
            self.cur = *file;
            match &item.kind {
                ItemKind::Model(ident) => {
                    if let Some(prev) = self.model_named {
                        self.push(
                            Diag::error(
                                "glassbox::duplicate_clause",
                                "a file declares `model` once",
                            )
                            .label(ident.span, "second model name")
                            .label(prev, "first here")
                            .help("remove one of the `model` lines"),
                        );
                    } else {
                        self.model_named = Some(ident.span);
                        self.m.name = ident.name.clone();
                    }
                }
                ItemKind::State(decls) => {
                    for d in decls {
                        let i = self.m.states.len();
                        if self.declare(&d.name, GlobalKind::State(i)) {
                            self.m.states.push(State {
                                name: d.name.name.clone(),
                                shape: Shape::Error,
                                offset: 0,
                                init: poison(d.span),
                                span: d.name.span,
                            });
                            self.eq_seen.push(None);
                        }
                    }
                }
                ItemKind::Param(decls) => {
                    // Param slots are allocated in the params-and-nets pass (layout order);
                    // here only the name is reserved, pointing at a slot filled later.
                    for d in decls {
                        self.declare(&d.name, GlobalKind::Param(usize::MAX));
                    }
                }
                ItemKind::Const(decls) => {
                    for d in decls {
                        let i = self.consts.len();
                        if self.declare(&d.name, GlobalKind::Const(i)) {
                            self.consts.push(ConstSlot {
                                decl: d.clone(),
                                file: *file,
                                state: ConstState::Pending,
                            });
                        }
                    }
                }
                ItemKind::Input(decls) => {
                    for d in decls {
                        let i = self.m.inputs.len();
                        if self.declare(&d.name, GlobalKind::Input(i)) {
                            self.m.inputs.push(Input {
                                name: d.name.name.clone(),
                                shape: Shape::Error,
                                offset: 0,
                                span: d.name.span,
                            });
                        }
                    }
                }
                ItemKind::Label(decls) => {
                    for d in decls {
                        let i = self.m.labels.len();
                        if self.declare(&d.name, GlobalKind::Label(i)) {
                            self.m.labels.push(LabelDef {
                                name: d.name.name.clone(),
                                classes: 0,
                                span: d.name.span,
                            });
                        }
                    }
                }
                ItemKind::Net(decls) => {
                    for d in decls {
                        self.declare(&d.name, GlobalKind::Net(usize::MAX));
                    }
                }
                ItemKind::Data(decls) => {
                    for d in decls {
                        self.declare(&d.name, GlobalKind::Data(usize::MAX));
                    }
                }
                ItemKind::Fn(d) => {
                    let i = self.fns.len();
                    if self.declare(&d.name, GlobalKind::Fn(i)) {
                        self.fns.push(FnDef {
                            decl: d.clone(),
                            file: *file,
                        });
                    }
                }
                ItemKind::Output(decls) => {
                    for d in decls {
                        self.declare(&d.name, GlobalKind::Output(usize::MAX));
                    }
                }
                ItemKind::Use(_)
                | ItemKind::Equation(_)
                | ItemKind::Solve(_)
                | ItemKind::Minimize(_)
                | ItemKind::Train(_) => {}
            }
        }
        self.cur = 0;
    }

    /// Register what the broken items would have declared, after every parsed declaration so
    /// that a name declared both ways keeps its parsed meaning and no duplicate is reported.
    fn register_broken(&mut self) {
        let broken = std::mem::take(&mut self.broken);
        for (file, _, b) in &broken {
            match b.keyword.as_deref() {
                None => {
                    if let Some(state) = b.names.first() {
                        self.broken_equations.insert(state.name.clone());
                    }
                }
                Some("use") => self.open_world = true,
                Some(_) => {
                    for name in &b.names {
                        let n = name.name.as_str();
                        let builtin = RESERVED.contains(&n) || Builtin::from_name(n).is_some();
                        if !builtin && !self.globals.contains_key(n) {
                            self.globals.insert(
                                n.to_string(),
                                Global {
                                    kind: GlobalKind::Broken,
                                    span: name.span,
                                    file: *file,
                                },
                            );
                        }
                    }
                }
            }
        }
        self.broken = broken;
    }

    /// Point a registered name at its table slot once it is allocated.
    pub fn set_global(&mut self, ident: &Ident, kind: GlobalKind) {
        if let Some(g) = self.globals.get_mut(&ident.name) {
            g.kind = kind;
        }
    }

    fn passes(&mut self, items: &[(usize, Item)]) {
        for i in 0..self.consts.len() {
            self.const_value(i);
        }
        self.m.consts = self
            .consts
            .iter()
            .filter_map(|s| match &s.state {
                ConstState::Done(v) => Some(Const {
                    name: s.decl.name.name.clone(),
                    value: v.clone(),
                    span: s.decl.name.span,
                }),
                _ => None,
            })
            .collect();
        self.each(items, |c, item| match &item.kind {
            ItemKind::Param(decls) => decls.iter().for_each(|d| c.param_decl(d)),
            ItemKind::Net(decls) => decls.iter().for_each(|d| c.net_decl(d)),
            _ => {}
        });
        self.each(items, |c, item| match &item.kind {
            ItemKind::Input(decls) => decls.iter().for_each(|d| c.input_decl(d)),
            ItemKind::Label(decls) => decls.iter().for_each(|d| c.label_decl(d)),
            ItemKind::State(decls) => decls.iter().for_each(|d| c.state_shape(d)),
            _ => {}
        });
        self.check_fn_names();
        self.check_fn_cycles();
        self.each(items, |c, item| {
            if let ItemKind::State(decls) = &item.kind {
                decls.iter().for_each(|d| c.state_init(d));
            }
        });
        self.equation_kind(items);
        self.each(items, |c, item| {
            if let ItemKind::Equation(eq) = &item.kind {
                c.equation(eq, item.span);
            }
        });
        self.missing_equations();
        self.each(items, |c, item| {
            if let ItemKind::Data(decls) = &item.kind {
                decls.iter().for_each(|d| c.data_decl(d));
            }
        });
        self.each(items, |c, item| {
            if let ItemKind::Output(decls) = &item.kind {
                decls.iter().for_each(|d| c.output_decl(d));
            }
        });
        let mut first: [Option<Span>; 3] = [None; 3];
        self.each(items, |c, item| {
            let (slot, span) = match &item.kind {
                ItemKind::Solve(s) => (0, s.method.callee.span),
                ItemKind::Minimize(e) => (1, e.span),
                ItemKind::Train(t) => (2, t.optimizer.callee.span),
                _ => return,
            };
            if let Some(prev) = first[slot] {
                let what = ["solve", "minimize", "train"][slot];
                c.push(
                    Diag::error(
                        "glassbox::duplicate_clause",
                        format!("a model has one `{what}` clause"),
                    )
                    .label(span, "second clause")
                    .label(prev, "first here")
                    .help(format!("merge the two `{what}` clauses into one")),
                );
                return;
            }
            first[slot] = Some(span);
            match &item.kind {
                ItemKind::Solve(s) => c.solve_clause(s),
                ItemKind::Minimize(e) => c.minimize(e),
                ItemKind::Train(t) => c.train_clause(t),
                _ => {}
            }
        });
        self.cur = 0;
    }

    fn each(&mut self, items: &[(usize, Item)], mut f: impl FnMut(&mut Self, &Item)) {
        for (file, item) in items {
            self.cur = *file;
            f(self, item);
        }
        self.cur = 0;
    }

    /// The set of equation forms, deciding ODE vs SDE: the first equation's form wins, even
    /// when that equation did not parse (its head still shows the form).
    fn equation_kind(&mut self, items: &[(usize, Item)]) {
        let kind = |sde| if sde { ModelKind::Sde } else { ModelKind::Ode };
        let first = items
            .iter()
            .enumerate()
            .find_map(|(i, (_, item))| match &item.kind {
                ItemKind::Equation(eq) => Some((i, kind(matches!(eq, ast::Equation::Sde { .. })))),
                _ => None,
            });
        let first_broken = self
            .broken
            .iter()
            .find(|(_, _, b)| b.keyword.is_none() && !b.names.is_empty())
            .map(|(_, place, b)| (*place, kind(b.sde)));
        self.m.kind = match (first, first_broken) {
            (Some((i, k)), Some((place, kb))) => {
                if place <= i {
                    kb
                } else {
                    k
                }
            }
            (Some((_, k)), None) | (None, Some((_, k))) => k,
            (None, None) => ModelKind::Ode,
        };
    }
}

/// A placeholder expression of the poisoned shape.
pub(super) fn poison(span: Span) -> TExpr {
    TExpr {
        kind: TExprKind::Const { value: Vec::new() },
        shape: Shape::Error,
        span,
    }
}
