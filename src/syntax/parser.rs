//! One item's text → one [`Item`], via pest and pest's Pratt parser; pest errors → [`Diag`]s.
//!
//! Spans are shifted from chunk offsets back to file offsets here, so everything this module
//! returns points into the whole file. The chunk has passed `lex::prescan`, so brackets match,
//! strings are closed, and the Pratt parser's recursion is bounded by the operator count.

use std::sync::LazyLock;

use pest::Parser;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::*;
use super::lex::{self, Chunk, RESERVED};
use crate::diag::Diag;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/glassbox.pest"]
struct GbxParser;

/// Operator table, loosest first (see the precedence table in `syntax/mod.rs`).
static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::matmul, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::infix(Rule::pow, Assoc::Right))
        .op(Op::postfix(Rule::call_args) | Op::postfix(Rule::index))
});

/// Parse one pre-scanned chunk. `Ok` carries the item and any non-fatal diagnostics (a number
/// out of range); `Err` is the one diagnostic for a broken item.
pub fn parse_item(text: &str, chunk: &Chunk) -> Result<(Item, Vec<Diag>), Diag> {
    let src = &text[chunk.start..chunk.code_end];
    let mut pairs = GbxParser::parse(Rule::item, src).map_err(|e| syntax_error(text, chunk, &e))?;
    let mut b = Builder {
        off: chunk.start,
        diags: Vec::new(),
    };
    // `item` is silent: its first pair is the item itself (then `EOI`).
    let item = pairs.next().ok_or_else(|| internal(chunk))?;
    let item = b.item(item)?;
    Ok((item, b.diags))
}

/// A grammar/builder mismatch; never expected, but reported rather than panicking.
fn internal(chunk: &Chunk) -> Diag {
    Diag::error("glassbox::parse_error", "this item could not be read")
        .label(Span::new(chunk.start, chunk.code_end), "here")
        .help("this is a bug in glassbox's parser; please report it with this item")
}

/// Tokens that only matter to pest (and to error messages), not to the tree.
fn is_token(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_model
            | Rule::kw_use
            | Rule::kw_state
            | Rule::kw_param
            | Rule::kw_const
            | Rule::kw_input
            | Rule::kw_label
            | Rule::kw_net
            | Rule::kw_data
            | Rule::kw_fn
            | Rule::kw_output
            | Rule::kw_solve
            | Rule::kw_minimize
            | Rule::kw_train
            | Rule::kw_in
            | Rule::kw_dt
            | Rule::kw_dW
            | Rule::assign
            | Rule::comma
            | Rule::semi
            | Rule::rparen
            | Rule::rbrack
            | Rule::arrow
            | Rule::EOI
    )
}

fn kids(pair: Pair<'_, Rule>) -> Vec<Pair<'_, Rule>> {
    pair.into_inner()
        .filter(|p| !is_token(p.as_rule()))
        .collect()
}

struct Builder {
    off: usize,
    diags: Vec<Diag>,
}

type R<T> = Result<T, Diag>;

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.off + s.start(), self.off + s.end())
    }

    fn mismatch(&self, span: Span) -> Diag {
        Diag::error("glassbox::parse_error", "this item could not be read")
            .label(span, "here")
            .help("this is a bug in glassbox's parser; please report it with this item")
    }

    /// The `i`th significant child, or an internal error.
    fn nth<'i>(&self, ks: &[Pair<'i, Rule>], i: usize, parent: Span) -> R<Pair<'i, Rule>> {
        ks.get(i).cloned().ok_or_else(|| self.mismatch(parent))
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    fn item(&mut self, pair: Pair<'_, Rule>) -> R<Item> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let ks = kids(pair);
        let kind = match rule {
            Rule::model_item => ItemKind::Model(self.ident(&self.nth(&ks, 0, span)?)),
            Rule::use_item => {
                let target = self.nth(&ks, 0, span)?;
                ItemKind::Use(if target.as_rule() == Rule::string {
                    UseTarget::Path {
                        path: unescape(&target),
                        span: self.span(&target),
                    }
                } else {
                    UseTarget::Module(self.ident(&target))
                })
            }
            Rule::state_item => ItemKind::State(self.decls(ks, Builder::state_decl)?),
            Rule::param_item => ItemKind::Param(self.decls(ks, Builder::param_decl)?),
            Rule::const_item => ItemKind::Const(self.decls(ks, |b, p| {
                let span = b.span(&p);
                let ks = kids(p);
                Ok(ConstDecl {
                    name: b.ident(&b.nth(&ks, 0, span)?),
                    value: b.expr(b.nth(&ks, 1, span)?)?,
                    span,
                })
            })?),
            Rule::input_item => ItemKind::Input(self.decls(ks, |b, p| {
                let span = b.span(&p);
                let ks = kids(p);
                let shape = match ks.get(1) {
                    Some(s) => Some(b.exprs(s.clone())?),
                    None => None,
                };
                Ok(InputDecl {
                    name: b.ident(&b.nth(&ks, 0, span)?),
                    shape,
                    span,
                })
            })?),
            Rule::label_item => ItemKind::Label(self.decls(ks, |b, p| {
                let span = b.span(&p);
                let ks = kids(p);
                Ok(LabelDecl {
                    name: b.ident(&b.nth(&ks, 0, span)?),
                    classes: b.expr(b.nth(&ks, 1, span)?)?,
                    span,
                })
            })?),
            Rule::net_item => ItemKind::Net(self.decls(ks, |b, p| {
                let (name, ctor, span) = b.ctor_decl(p)?;
                Ok(NetDecl { name, ctor, span })
            })?),
            Rule::data_item => ItemKind::Data(self.decls(ks, |b, p| {
                let (name, source, span) = b.ctor_decl(p)?;
                Ok(DataDecl { name, source, span })
            })?),
            Rule::fn_item => {
                let (last, names) = ks.split_last().ok_or_else(|| self.mismatch(span))?;
                let name = self.ident(&self.nth(names, 0, span)?);
                let params = names.iter().skip(1).map(|p| self.ident(p)).collect();
                ItemKind::Fn(FnDecl {
                    name,
                    params,
                    body: self.expr(last.clone())?,
                    span,
                })
            }
            Rule::output_item => ItemKind::Output(self.decls(ks, |b, p| {
                let span = b.span(&p);
                let ks = kids(p);
                Ok(OutputDecl {
                    name: b.ident(&b.nth(&ks, 0, span)?),
                    value: b.expr(b.nth(&ks, 1, span)?)?,
                    span,
                })
            })?),
            Rule::solve_item => {
                let method = self.method(self.nth(&ks, 0, span)?)?;
                let span_kind = match (ks.get(1).map(Pair::as_rule), ks.get(2)) {
                    (Some(Rule::kw_over), Some(e)) => Some(SolveSpan::Over(self.expr(e.clone())?)),
                    (Some(Rule::kw_at), Some(e)) => Some(SolveSpan::At(self.expr(e.clone())?)),
                    _ => None,
                };
                ItemKind::Solve(SolveClause { method, span_kind })
            }
            Rule::minimize_item => ItemKind::Minimize(self.expr(self.nth(&ks, 0, span)?)?),
            Rule::train_item => {
                let optimizer = self.method(self.nth(&ks, 0, span)?)?;
                let settings = ks
                    .iter()
                    .skip(1)
                    .map(|p| self.named_arg(p.clone()))
                    .collect::<R<Vec<_>>>()?;
                ItemKind::Train(TrainClause {
                    optimizer,
                    settings,
                })
            }
            Rule::ode => ItemKind::Equation(Equation::Ode {
                state: self.dstate(&self.nth(&ks, 0, span)?)?,
                rhs: self.expr(self.nth(&ks, 1, span)?)?,
            }),
            Rule::sde => ItemKind::Equation(Equation::Sde {
                state: self.dstate(&self.nth(&ks, 0, span)?)?,
                drift: self.expr(self.nth(&ks, 1, span)?)?,
                // ks[2] is the `+` between the two terms.
                diffusion: match ks.get(3) {
                    Some(e) => Some(self.expr(e.clone())?),
                    None => None,
                },
            }),
            _ => return Err(self.mismatch(span)),
        };
        Ok(Item { kind, span })
    }

    fn decls<T>(
        &mut self,
        ks: Vec<Pair<'_, Rule>>,
        mut one: impl FnMut(&mut Builder, Pair<'_, Rule>) -> R<T>,
    ) -> R<Vec<T>> {
        ks.into_iter().map(|p| one(self, p)).collect()
    }

    fn state_decl(&mut self, pair: Pair<'_, Rule>) -> R<StateDecl> {
        let span = self.span(&pair);
        let ks = kids(pair);
        let name = self.ident(&self.nth(&ks, 0, span)?);
        let (mut shape, mut init) = (None, None);
        for p in ks.into_iter().skip(1) {
            match p.as_rule() {
                Rule::shape => shape = Some(self.exprs(p)?),
                _ => init = Some(self.expr(p)?),
            }
        }
        Ok(StateDecl {
            name,
            shape,
            init,
            span,
        })
    }

    fn param_decl(&mut self, pair: Pair<'_, Rule>) -> R<ParamDecl> {
        let span = self.span(&pair);
        let ks = kids(pair);
        let name = self.ident(&self.nth(&ks, 0, span)?);
        let (mut shape, mut value, mut learn) = (None, None, false);
        for p in ks.into_iter().skip(1) {
            match p.as_rule() {
                Rule::shape => shape = Some(self.exprs(p)?),
                Rule::kw_learn => learn = true,
                _ => value = Some(self.expr(p)?),
            }
        }
        Ok(ParamDecl {
            name,
            shape,
            value,
            learn,
            span,
        })
    }

    fn ctor_decl(&mut self, pair: Pair<'_, Rule>) -> R<(Ident, Call, Span)> {
        let span = self.span(&pair);
        let ks = kids(pair);
        let name = self.ident(&self.nth(&ks, 0, span)?);
        let call = self.nth(&ks, 1, span)?;
        let call_span = self.span(&call);
        let cks = kids(call);
        let callee = self.ident(&self.nth(&cks, 0, call_span)?);
        let (args, semicolon) = self.call_args(self.nth(&cks, 1, call_span)?)?;
        Ok((
            name,
            Call {
                callee,
                args,
                parens: true,
                semicolon,
                span: call_span,
            },
            span,
        ))
    }

    /// `tsit5(rtol = 1e-7)` or a bare `tsit5`.
    fn method(&mut self, pair: Pair<'_, Rule>) -> R<Call> {
        let span = self.span(&pair);
        let ks = kids(pair);
        let callee = self.ident(&self.nth(&ks, 0, span)?);
        let ((args, semicolon), parens) = match ks.get(1) {
            Some(a) => (self.call_args(a.clone())?, true),
            None => ((Vec::new(), false), false),
        };
        Ok(Call {
            callee,
            args,
            parens,
            semicolon,
            span,
        })
    }

    fn dstate(&self, pair: &Pair<'_, Rule>) -> R<Ident> {
        let span = self.span(pair);
        let name = pair
            .clone()
            .into_inner()
            .next()
            .ok_or_else(|| self.mismatch(span))?;
        Ok(self.ident(&name))
    }

    /// The arguments, and whether `;` set the named ones apart (kept so `fmt` writes the call
    /// the way its author did: `mlp(2, 50, 2; act = tanh)` but `windows(20, length = 10)`).
    fn call_args(&mut self, pair: Pair<'_, Rule>) -> R<(Vec<Arg>, bool)> {
        let has_semi = pair.clone().into_inner().any(|p| p.as_rule() == Rule::semi);
        let mut args: Vec<Arg> = Vec::new();
        for arg in kids(pair) {
            let span = self.span(&arg);
            let inner = self.nth(&kids(arg), 0, span)?;
            let arg = if inner.as_rule() == Rule::named_arg {
                self.named_arg(inner)?
            } else {
                Arg {
                    name: None,
                    value: self.expr(inner)?,
                    span,
                }
            };
            if arg.name.is_none() && args.iter().any(|a| a.name.is_some()) {
                return Err(Diag::error(
                    "glassbox::positional_after_named",
                    "a positional argument follows a named one",
                )
                .label(span, "positional argument after named arguments")
                .help("put positional arguments first, then `name = value` arguments"));
            }
            args.push(arg);
        }
        let both = args.iter().any(|a| a.name.is_some()) && args.iter().any(|a| a.name.is_none());
        Ok((args, has_semi && both))
    }

    fn named_arg(&mut self, pair: Pair<'_, Rule>) -> R<Arg> {
        let span = self.span(&pair);
        let ks = kids(pair);
        Ok(Arg {
            name: Some(self.ident(&self.nth(&ks, 0, span)?)),
            value: self.expr(self.nth(&ks, 1, span)?)?,
            span,
        })
    }

    /// The expressions of a `shape`, `index` or `row`.
    fn exprs(&mut self, pair: Pair<'_, Rule>) -> R<Vec<Expr>> {
        kids(pair).into_iter().map(|p| self.expr(p)).collect()
    }

    /// `expr`: a range or plain arithmetic.
    fn expr(&mut self, pair: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&pair);
        if pair.as_rule() != Rule::expr {
            return Err(self.mismatch(span));
        }
        let ks = kids(pair);
        let mut start = None;
        let mut end = None;
        let mut range = false;
        for p in ks {
            match p.as_rule() {
                Rule::dotdot => range = true,
                _ if range => end = Some(Box::new(self.arith(p)?)),
                _ => start = Some(self.arith(p)?),
            }
        }
        if range {
            return Ok(Expr {
                kind: ExprKind::Range {
                    start: start.map(Box::new),
                    end,
                },
                span,
            });
        }
        start.ok_or_else(|| self.mismatch(span))
    }

    fn arith(&mut self, pair: Pair<'_, Rule>) -> R<Expr> {
        let ops = kids(pair);
        // The closures below all need `self`; a RefCell-free way is to collect into a local.
        let this = std::cell::RefCell::new(self);
        PRATT
            .map_primary(|p| this.borrow_mut().primary(p))
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let span = this.borrow().span(&op).to(rhs.span);
                Ok(Expr {
                    kind: ExprKind::Unary {
                        op: UnOp::Neg,
                        expr: Box::new(rhs),
                    },
                    span,
                })
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let op = match op.as_rule() {
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::matmul => BinOp::MatMul,
                    _ => BinOp::Pow,
                };
                let span = lhs.span.to(rhs.span);
                Ok(Expr {
                    kind: ExprKind::Binary {
                        op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    span,
                })
            })
            .map_postfix(|base, op| {
                let base = base?;
                let mut b = this.borrow_mut();
                let span = base.span.to(b.span(&op));
                let kind = if op.as_rule() == Rule::call_args {
                    let ExprKind::Name(name) = &base.kind else {
                        return Err(Diag::error(
                            "glassbox::call_of_non_name",
                            "only a name can be called",
                        )
                        .label(
                            b.span(&op),
                            "these arguments follow something that is not a name",
                        )
                        .help("call a function, net or state by its name, e.g. `f(x)` or `h(1)`"));
                    };
                    let (args, semicolon) = b.call_args(op)?;
                    ExprKind::Call(Call {
                        callee: Ident {
                            name: name.clone(),
                            span: base.span,
                        },
                        args,
                        parens: true,
                        semicolon,
                        span,
                    })
                } else {
                    ExprKind::Index {
                        base: Box::new(base),
                        index: b.exprs(op)?,
                    }
                };
                Ok(Expr { kind, span })
            })
            .parse(ops.into_iter())
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => {
                let text = pair.as_str().to_string();
                let value = text.parse::<f64>().unwrap_or(f64::INFINITY);
                if !value.is_finite() {
                    self.diags.push(
                        Diag::error(
                            "glassbox::number_out_of_range",
                            format!("the number `{text}` is too large for a 64-bit float"),
                        )
                        .label(span, "out of range")
                        .help("numbers must be below about 1.8e308 in magnitude"),
                    );
                }
                ExprKind::Num { value, text }
            }
            Rule::string => ExprKind::Str(unescape(&pair)),
            Rule::ident => ExprKind::Name(pair.as_str().to_string()),
            Rule::expr => return self.expr(pair),
            Rule::decay => {
                let ks = kids(pair);
                ExprKind::Decay {
                    from: Box::new(self.expr(self.nth(&ks, 0, span)?)?),
                    to: Box::new(self.expr(self.nth(&ks, 1, span)?)?),
                }
            }
            Rule::time_deriv => {
                let ks = kids(pair);
                ExprKind::TimeDeriv(Box::new(self.expr(self.nth(&ks, 0, span)?)?))
            }
            Rule::matrix => {
                let mut rows = kids(pair)
                    .into_iter()
                    .filter(|p| p.as_rule() == Rule::row)
                    .map(|r| self.exprs(r))
                    .collect::<R<Vec<_>>>()?;
                if rows.len() > 1 {
                    ExprKind::Matrix(rows)
                } else {
                    ExprKind::Vector(rows.pop().unwrap_or_default())
                }
            }
            _ => return Err(self.mismatch(span)),
        };
        Ok(Expr { kind, span })
    }
}

/// The text of a `string` pair without quotes, escapes resolved.
fn unescape(pair: &Pair<'_, Rule>) -> String {
    let raw = pair.as_str();
    let inner = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ------------------------------------------------------------------------------ error reports

/// How an expected rule reads in a message, and its place in the list.
fn expected_words(rule: Rule) -> (u8, &'static str) {
    match rule {
        Rule::expr
        | Rule::arith
        | Rule::number
        | Rule::string
        | Rule::decay
        | Rule::time_deriv
        | Rule::matrix
        | Rule::neg
        | Rule::row => (0, "an expression"),
        Rule::ident | Rule::state_name | Rule::arg_name => (1, "a name"),
        Rule::arg => (2, "an argument"),
        Rule::named_arg => (3, "a setting `name = value`"),
        Rule::assign => (4, "`=`"),
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::matmul | Rule::pow => {
            (5, "an operator")
        }
        Rule::call_args => (6, "`(`"),
        Rule::index | Rule::shape => (7, "`[`"),
        Rule::dotdot => (8, "`..`"),
        Rule::arrow => (9, "`->`"),
        Rule::kw_learn => (10, "`learn`"),
        Rule::kw_over => (11, "`over`"),
        Rule::kw_at => (12, "`at`"),
        Rule::kw_in => (13, "`in`"),
        Rule::kw_dt => (14, "`dt`"),
        Rule::kw_dW => (15, "`dW`"),
        Rule::comma => (16, "`,`"),
        Rule::semi => (17, "`;`"),
        Rule::rparen => (18, "`)`"),
        Rule::rbrack => (19, "`]`"),
        Rule::EOI => (20, "the end of the item"),
        _ => (21, "an item"),
    }
}

fn join_words(words: &[&str]) -> String {
    match words {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The byte range of the token starting at `at` (which is inside `text`).
fn token_at(text: &str, at: usize) -> std::ops::Range<usize> {
    let rest = &text[at..];
    let bytes = rest.as_bytes();
    let Some(&c) = bytes.first() else {
        return at..at;
    };
    let len = if c.is_ascii_alphanumeric() || c == b'_' {
        // A word or a number (`1e999`, `2.5`): letters, digits, `_`, `.` and an exponent sign.
        let mut n = 0;
        while n < bytes.len() {
            let b = bytes[n];
            let exp_sign = (b == b'+' || b == b'-')
                && c.is_ascii_digit()
                && n > 0
                && matches!(bytes[n - 1], b'e' | b'E');
            let dot = b == b'.' && c.is_ascii_digit() && bytes.get(n + 1) != Some(&b'.');
            if b.is_ascii_alphanumeric() || b == b'_' || exp_sign || dot {
                n += 1;
            } else {
                break;
            }
        }
        n
    } else if rest.starts_with("..") || rest.starts_with("->") {
        2
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    at..at + len
}

/// The byte range of the last token ending at `end`.
fn token_before(text: &str, end: usize) -> std::ops::Range<usize> {
    let before = &text[..end];
    let bytes = before.as_bytes();
    let mut start = end;
    while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
        start -= 1;
    }
    if start < end {
        return start..end;
    }
    if before.ends_with("..") || before.ends_with("->") {
        return end - 2..end;
    }
    let len = before.chars().next_back().map_or(0, char::len_utf8);
    end - len..end
}

fn syntax_error(text: &str, chunk: &Chunk, err: &pest::error::Error<Rule>) -> Diag {
    let rel = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let at = (chunk.start + rel).min(chunk.code_end);
    let positives: Vec<Rule> = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut expected: Vec<(u8, &str)> = positives.iter().map(|r| expected_words(*r)).collect();
    expected.sort();
    expected.dedup();
    // "an expression" covers names; after an operand, "an operator" covers `(`, `[` and `..`.
    let has_expr = expected.iter().any(|(k, _)| *k == 0);
    let has_op = expected.iter().any(|(k, _)| *k == 5);
    expected.retain(|(k, _)| {
        let covered = (has_expr && *k == 1) || (has_op && matches!(k, 6..=8));
        !covered
    });
    let words: Vec<&str> = expected.iter().map(|(_, w)| *w).collect();
    let wants = |r: Rule| positives.contains(&r);
    let at_end = at >= chunk.code_end;
    let (span, found) = if at_end {
        let r = token_before(text, chunk.code_end);
        (Span::from(r), "the end of the item".to_string())
    } else {
        let r = token_at(text, at);
        let tok = &text[r.clone()];
        (Span::from(r), format!("`{}`", tok.escape_debug()))
    };
    let found_text = if at_end { "" } else { &text[span.range()] };
    let label = if at_end {
        format!("expected {} after this", join_words(&words))
    } else {
        format!("expected {}", join_words(&words))
    };
    if !at_end && RESERVED.contains(&found_text) && (wants(Rule::ident) || wants(Rule::expr)) {
        return Diag::error(
            "glassbox::reserved_word",
            format!("`{found_text}` is a reserved word and cannot be used as a name"),
        )
        .label(span, "reserved word")
        .help(format!(
            "choose another name; the reserved words are {}",
            RESERVED.join(", ")
        ));
    }
    let has_operator = positives.iter().any(|r| expected_words(*r).0 == 5);
    let (code, help) = if wants(Rule::assign) && !has_operator {
        (
            "glassbox::missing_equals",
            "write `name = value`, e.g. `state x = 1.0`".to_string(),
        )
    } else if wants(Rule::kw_dW) {
        (
            "glassbox::parse_error",
            "an SDE reads `dX = drift dt + diffusion * dW`, or `dX = drift dt` without noise"
                .to_string(),
        )
    } else if words.first() == Some(&"an expression") {
        (
            "glassbox::parse_error",
            "write a number, a name, a call or a bracketed expression here".to_string(),
        )
    } else if wants(Rule::EOI) && words.len() <= 2 {
        (
            "glassbox::parse_error",
            "each item goes on its own line; remove this or start a new line".to_string(),
        )
    } else {
        (
            "glassbox::parse_error",
            "see the item syntax in docs/language.md".to_string(),
        )
    };
    Diag::error(
        code,
        format!("expected {}, found {found}", join_words(&words)),
    )
    .label(span, label)
    .help(help)
}

/// Report a chunk whose first token is neither an item keyword nor an equation head.
pub fn unknown_item(text: &str, chunk: &Chunk) -> Diag {
    let word = lex::word_at(text, chunk.start);
    let r = if word.is_empty() {
        token_at(text, chunk.start)
    } else {
        word
    };
    let found = &text[r.clone()];
    let help = match crate::diag::did_you_mean(found, lex::ITEM_KEYWORDS.iter().copied()) {
        Some(k) => format!("did you mean `{k}`?"),
        None => "an item starts with a keyword (model, use, state, param, const, input, label, \
                 net, data, fn, output, solve, minimize, train) or is an equation `dX/dt = ...`"
            .to_string(),
    };
    Diag::error(
        "glassbox::unknown_item",
        format!("expected an item, found `{}`", found.escape_debug()),
    )
    .label(Span::from(r), "not the start of an item")
    .help(help)
}
