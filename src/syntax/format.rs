//! AST → canonical source text.
//!
//! One item per line, single spaces around binary operators except `^`, the fewest parentheses
//! that keep the tree (from the precedence table in `syntax/mod.rs`), numbers as written.
//! Own-line comments stay before the item they preceded, trailing comments after their item, and
//! one blank line is kept wherever the source had blank lines. Invariant (tested):
//! `parse(format(p)) == p` for every `p` that `parse` produced, hence `format` is idempotent.

use super::ast::*;

/// Binding strength of an expression's outermost construct; larger binds tighter.
fn prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Range { .. } => 0,
        ExprKind::Binary { op, .. } => match op {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div | BinOp::MatMul => 2,
            BinOp::Pow => 4,
        },
        ExprKind::Unary { .. } => 3,
        ExprKind::Call(_) | ExprKind::Index { .. } => 5,
        _ => 6,
    }
}

/// Format a whole program.
pub fn format(program: &Program) -> String {
    enum Line<'a> {
        Comment(&'a Comment),
        Item(usize),
    }
    let mut lines: Vec<(usize, Line<'_>)> = Vec::new();
    // Trailing comments belong to the last item that starts before them.
    let mut trailing: Vec<Vec<&Comment>> = vec![Vec::new(); program.items.len()];
    for c in &program.comments {
        let owner = program
            .items
            .iter()
            .rposition(|it| it.span.start <= c.span.start);
        match (c.own_line, owner) {
            (false, Some(i)) => trailing[i].push(c),
            _ => lines.push((c.span.start, Line::Comment(c))),
        }
    }
    for (i, item) in program.items.iter().enumerate() {
        lines.push((item.span.start, Line::Item(i)));
    }
    // Stable: an item and a comment never share a start offset in parsed programs.
    lines.sort_by_key(|(start, _)| *start);

    let mut out = String::new();
    for (_, line) in lines {
        let blank = match line {
            Line::Comment(c) => c.blank_before,
            Line::Item(i) => program.blank_before_items.contains(&i),
        };
        if blank && !out.is_empty() {
            out.push('\n');
        }
        match line {
            Line::Comment(c) => {
                push_comment(&mut out, c);
                out.push('\n');
            }
            Line::Item(i) => {
                out.push_str(&item(&program.items[i]));
                let mut extra = trailing[i].iter();
                if let Some(c) = extra.next() {
                    out.push_str("  ");
                    push_comment(&mut out, c);
                }
                out.push('\n');
                for c in extra {
                    push_comment(&mut out, c);
                    out.push('\n');
                }
            }
        }
    }
    out
}

fn push_comment(out: &mut String, c: &Comment) {
    out.push('#');
    out.push_str(&c.text);
}

/// Format one item (no trailing newline).
pub fn item(item: &Item) -> String {
    match &item.kind {
        ItemKind::Model(name) => format!("model {}", name.name),
        ItemKind::Use(UseTarget::Path { path, .. }) => format!("use {}", string(path)),
        ItemKind::Use(UseTarget::Module(m)) => format!("use {}", m.name),
        ItemKind::State(ds) => list("state", ds, |d| {
            let mut s = d.name.name.clone() + &shape(&d.shape);
            if let Some(init) = &d.init {
                s += &format!(" = {}", expr(init));
            }
            s
        }),
        ItemKind::Param(ds) => list("param", ds, |d| {
            let mut s = d.name.name.clone() + &shape(&d.shape);
            if let Some(v) = &d.value {
                s += &format!(" = {}", expr(v));
            }
            if d.learn {
                s += " learn";
            }
            s
        }),
        ItemKind::Const(ds) => list("const", ds, |d| {
            format!("{} = {}", d.name.name, expr(&d.value))
        }),
        ItemKind::Input(ds) => list("input", ds, |d| d.name.name.clone() + &shape(&d.shape)),
        ItemKind::Label(ds) => list("label", ds, |d| {
            format!("{} in {}", d.name.name, expr(&d.classes))
        }),
        ItemKind::Net(ds) => list("net", ds, |d| {
            format!("{} = {}", d.name.name, call(&d.ctor))
        }),
        ItemKind::Data(ds) => list("data", ds, |d| {
            format!("{} = {}", d.name.name, call(&d.source))
        }),
        ItemKind::Fn(f) => {
            let params: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
            format!(
                "fn {}({}) = {}",
                f.name.name,
                params.join(", "),
                expr(&f.body)
            )
        }
        ItemKind::Output(ds) => list("output", ds, |d| {
            format!("{} = {}", d.name.name, expr(&d.value))
        }),
        ItemKind::Equation(Equation::Ode { state, rhs }) => {
            format!("d{}/dt = {}", state.name, expr(rhs))
        }
        ItemKind::Equation(Equation::Sde {
            state,
            drift,
            diffusion,
        }) => {
            // A loose drift or diffusion reads as if `dt`/`dW` bound to its last term: bracket it.
            let term = |e: &Expr| {
                if prec(e) < 2 {
                    format!("({})", expr(e))
                } else {
                    expr(e)
                }
            };
            let mut s = format!("d{} = {} dt", state.name, term(drift));
            if let Some(b) = diffusion {
                s += &format!(" + {} * dW", term(b));
            }
            s
        }
        ItemKind::Solve(sc) => {
            let mut s = format!("solve {}", call(&sc.method));
            match &sc.span_kind {
                Some(SolveSpan::Over(e)) => s += &format!(" over {}", expr(e)),
                Some(SolveSpan::At(e)) => s += &format!(" at {}", expr(e)),
                None => {}
            }
            s
        }
        ItemKind::Minimize(e) => format!("minimize {}", expr(e)),
        ItemKind::Train(tc) => {
            let mut s = format!("train {}", call(&tc.optimizer));
            for a in &tc.settings {
                s += ", ";
                s += &arg(a);
            }
            s
        }
    }
}

fn list<T>(kw: &str, decls: &[T], one: impl Fn(&T) -> String) -> String {
    let parts: Vec<String> = decls.iter().map(one).collect();
    format!("{kw} {}", parts.join(", "))
}

fn shape(s: &Option<Vec<Expr>>) -> String {
    match s {
        Some(dims) => format!("[{}]", exprs(dims)),
        None => String::new(),
    }
}

fn exprs(es: &[Expr]) -> String {
    es.iter().map(expr).collect::<Vec<_>>().join(", ")
}

fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn call(c: &Call) -> String {
    if !c.parens {
        return c.callee.name.clone();
    }
    let positional: Vec<String> = c
        .args
        .iter()
        .filter(|a| a.name.is_none())
        .map(arg)
        .collect();
    let named: Vec<String> = c
        .args
        .iter()
        .filter(|a| a.name.is_some())
        .map(arg)
        .collect();
    let sep = match (positional.is_empty() || named.is_empty(), c.semicolon) {
        (true, _) => "",
        (false, true) => "; ",
        (false, false) => ", ",
    };
    format!(
        "{}({}{sep}{})",
        c.callee.name,
        positional.join(", "),
        named.join(", ")
    )
}

fn arg(a: &Arg) -> String {
    match &a.name {
        Some(n) => format!("{} = {}", n.name, expr(&a.value)),
        None => expr(&a.value),
    }
}

/// `e`, bracketed when it binds looser than `min`.
fn operand(e: &Expr, min: u8) -> String {
    if prec(e) < min {
        format!("({})", expr(e))
    } else {
        expr(e)
    }
}

/// Format one expression.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Num { text, .. } => text.clone(),
        ExprKind::Str(s) => string(s),
        ExprKind::Name(n) => n.clone(),
        ExprKind::Vector(items) => format!("[{}]", exprs(items)),
        ExprKind::Matrix(rows) => {
            let rows: Vec<String> = rows.iter().map(|r| exprs(r)).collect();
            format!("[{}]", rows.join("; "))
        }
        ExprKind::Range { start, end } => {
            // Range bounds are arithmetic; a nested range needs brackets.
            let side = |b: &Option<Box<Expr>>| b.as_ref().map_or(String::new(), |b| operand(b, 1));
            format!("{}..{}", side(start), side(end))
        }
        ExprKind::Unary {
            op: UnOp::Neg,
            expr,
        } => format!("-{}", operand(expr, 3)),
        ExprKind::Binary { op, lhs, rhs } => {
            let p = prec(e);
            if *op == BinOp::Pow {
                // Right-associative; a negation may follow `^` unbracketed (`2^-1`).
                let r = match rhs.kind {
                    ExprKind::Unary { .. } => self::expr(rhs),
                    _ => operand(rhs, p),
                };
                return format!("{}^{r}", operand(lhs, p + 1));
            }
            let sym = match op {
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::MatMul => "@",
                BinOp::Pow => "^",
            };
            format!("{} {sym} {}", operand(lhs, p), operand(rhs, p + 1))
        }
        ExprKind::Call(c) => call(c),
        ExprKind::Index { base, index } => format!("{}[{}]", operand(base, 5), exprs(index)),
        ExprKind::Decay { from, to } => format!("decay({} -> {})", expr(from), expr(to)),
        ExprKind::TimeDeriv(inner) => format!("d({})/dt", expr(inner)),
    }
}
