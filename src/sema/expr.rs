//! Expressions: name resolution, shapes, builtins, net applications, inlining of user functions.
//!
//! `check_expr` never fails: an expression with a mistake reports it and comes back with
//! `Shape::Error`, which every rule accepts silently. Which names an expression may use depends
//! on where it stands ([`Place`]): a constant may use only consts, an initial value also params,
//! inputs and nets, an equation also states and `t`, outputs and the objective also `X(t1)`.

use std::collections::HashSet;

use super::checker::{Checker, ConstState, GlobalKind, poison};
use super::fold::fold;
use super::limits::MAX_ELEMENTS;
use super::model::*;
use super::shape::{broadcast, matmul};
use crate::diag::{did_you_mean, grouped};
use crate::source::Span;
use crate::syntax::ast::{Arg, BinOp, Call, Expr, ExprKind};

/// Where an expression stands; decides which names it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    Const,
    Init,
    Equation,
    Output,
    Objective,
}

impl Place {
    fn describe(self) -> &'static str {
        match self {
            Place::Const => "a constant expression",
            Place::Init => "an initial value",
            Place::Equation => "an equation",
            Place::Output => "an output",
            Place::Objective => "the objective",
        }
    }

    fn allows(self, kind: GlobalKind) -> bool {
        match kind {
            // What a broken item declared is unknown: any use is accepted silently.
            GlobalKind::Const(_) | GlobalKind::Fn(_) | GlobalKind::Broken => true,
            GlobalKind::Param(_) | GlobalKind::Input(_) | GlobalKind::Net(_) => {
                self != Place::Const
            }
            GlobalKind::State(_) => self.allows_states(),
            GlobalKind::Output(_) => self == Place::Objective,
            GlobalKind::Label(_) | GlobalKind::Data(_) => false,
        }
    }

    fn allows_states(self) -> bool {
        matches!(self, Place::Equation | Place::Output | Place::Objective)
    }

    fn allows_state_at(self) -> bool {
        matches!(self, Place::Output | Place::Objective)
    }

    fn help(self) -> &'static str {
        match self {
            Place::Const => "constant expressions use numbers, consts and functions of them",
            Place::Init => {
                "initial values use constants, params, inputs and nets; not states or `t`"
            }
            Place::Equation => "equations use states, params, consts, inputs, nets and `t`",
            Place::Output => {
                "outputs use states (also at a time: `h(1)`), params, nets, consts and inputs"
            }
            Place::Objective => "the objective's expressions use states, outputs, params and nets",
        }
    }
}

const OBSERVABLES: [&str; 6] = [
    "error_estimate",
    "stiffness",
    "nfe",
    "kinetic",
    "jacobian_frobenius",
    "weight_decay",
];

fn tex(kind: TExprKind, shape: Shape, span: Span) -> TExpr {
    TExpr { kind, shape, span }
}

fn binop_verb(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "add",
        BinOp::Sub => "subtract",
        BinOp::Mul => "multiply",
        BinOp::Div => "divide",
        BinOp::Pow => "raise to a power",
        BinOp::MatMul => "matrix-multiply",
    }
}

impl Checker<'_> {
    pub fn check_expr(&mut self, e: &Expr, place: Place) -> TExpr {
        let t = self.check_expr_kind(e, place);
        // A matrix product, `concat` or `jacobian` can be far larger than its operands.
        let size = t.shape.size();
        if size > MAX_ELEMENTS {
            self.within_limit(Some(size), MAX_ELEMENTS, "this expression", e.span);
            return poison(e.span);
        }
        t
    }

    fn check_expr_kind(&mut self, e: &Expr, place: Place) -> TExpr {
        match &e.kind {
            ExprKind::Num { value, .. } => tex(
                TExprKind::Const {
                    value: vec![*value],
                },
                Shape::Scalar,
                e.span,
            ),
            ExprKind::Name(name) => self.check_name(name, e.span, place),
            ExprKind::Str(_) => {
                self.error(
                    "glassbox::bad_expression",
                    e.span,
                    "a string is not a value",
                    "string here",
                    "strings name files and columns in `data` declarations only",
                );
                poison(e.span)
            }
            ExprKind::Range { .. } => {
                self.error(
                    "glassbox::bad_expression",
                    e.span,
                    "a range is not a value",
                    "range here",
                    "ranges slice vectors (`y[0..2]`), give label classes and data columns",
                );
                poison(e.span)
            }
            ExprKind::Decay { .. } => {
                self.error(
                    "glassbox::bad_expression",
                    e.span,
                    "`decay(a -> b)` is only a coefficient of a `minimize` term",
                    "schedule here",
                    "write it as `decay(100 -> 10) * error_estimate` inside `minimize`",
                );
                poison(e.span)
            }
            ExprKind::Vector(items) => self.check_vector(items, e.span, place),
            ExprKind::Matrix(rows) => self.check_matrix(rows, e.span, place),
            ExprKind::Unary { op, expr } => {
                let x = self.check_expr(expr, place);
                let shape = x.shape;
                tex(
                    TExprKind::Unary {
                        op: *op,
                        expr: Box::new(x),
                    },
                    shape,
                    e.span,
                )
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.check_expr(lhs, place);
                let r = self.check_expr(rhs, place);
                let rule = if *op == BinOp::MatMul {
                    matmul(l.shape, r.shape)
                } else {
                    broadcast(l.shape, r.shape)
                };
                let shape = match rule {
                    Some(s) => s,
                    None => {
                        let help = if *op == BinOp::MatMul {
                            "`@` takes [m, n] @ [n] or [m, n] @ [n, k]; `*` is elementwise"
                                .to_string()
                        } else {
                            "elementwise operators take a scalar with anything, or two equal shapes"
                                .to_string()
                        };
                        let (ls, rs) = (l.shape, r.shape);
                        let at = self
                            .operator_span(*op, lhs.span, rhs.span)
                            .unwrap_or(e.span);
                        self.push(
                            crate::diag::Diag::error(
                                "glassbox::shape_mismatch",
                                format!("cannot {} {ls} and {rs}", binop_verb(*op)),
                            )
                            .label(at, "shapes do not match")
                            .label(lhs.span, format!("{ls}"))
                            .label(rhs.span, format!("{rs}"))
                            .help(help),
                        );
                        Shape::Error
                    }
                };
                tex(
                    TExprKind::Binary {
                        op: *op,
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                    },
                    shape,
                    e.span,
                )
            }
            ExprKind::Call(call) => self.check_call(call, e.span, place),
            ExprKind::Index { base, index } => self.check_index(base, index, e.span, place),
            ExprKind::TimeDeriv(inner) => {
                if !place.allows_states() {
                    self.error(
                        "glassbox::not_allowed_here",
                        e.span,
                        format!("a time derivative cannot be used in {}", place.describe()),
                        "not allowed here",
                        place.help(),
                    );
                    return poison(e.span);
                }
                let x = self.check_expr(inner, place);
                let shape = x.shape;
                tex(TExprKind::TimeDeriv { expr: Box::new(x) }, shape, e.span)
            }
        }
    }

    /// The operator token between two operands (the AST keeps only the operands' spans).
    fn operator_span(&self, op: BinOp, lhs: Span, rhs: Span) -> Option<Span> {
        let sym = match op {
            BinOp::Add => '+',
            BinOp::Sub => '-',
            BinOp::Mul => '*',
            BinOp::Div => '/',
            BinOp::Pow => '^',
            BinOp::MatMul => '@',
        };
        let between = self.file().text.get(lhs.end..rhs.start)?;
        let at = lhs.end + between.find(sym)?;
        Some(Span::new(at, at + 1))
    }

    /// Every name visible here, for "did you mean".
    fn names_in_scope(&self) -> Vec<String> {
        let mut names: Vec<String> = self.globals.keys().cloned().collect();
        if let Some(frame) = self.frames.last() {
            names.extend(frame.iter().map(|(n, _)| n.clone()));
        }
        names.push("t".into());
        names.extend(Builtin::ALL.iter().map(|(n, _)| n.to_string()));
        names.push("concat".into());
        names.push("jacobian".into());
        names.sort();
        names
    }

    /// Report an unknown name, unless a broken `use` may have declared it.
    pub fn undefined(&mut self, what: &str, name: &str, span: Span) {
        if self.open_world {
            return;
        }
        let names = self.names_in_scope();
        let help = match did_you_mean(name, names.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => {
                "declare it first (`state`, `param`, `const`, `input`, `net`, `fn`, ...)".into()
            }
        };
        self.error(
            "glassbox::undefined_name",
            span,
            format!("{what} `{name}` is not defined"),
            "not found",
            help,
        );
    }

    fn not_allowed(&mut self, noun: &str, name: &str, span: Span, place: Place) {
        let code = if place == Place::Const {
            "glassbox::not_constant"
        } else {
            "glassbox::not_allowed_here"
        };
        self.error(
            code,
            span,
            format!("{noun} `{name}` cannot be used in {}", place.describe()),
            "not allowed here",
            place.help(),
        );
    }

    fn check_name(&mut self, name: &str, span: Span, place: Place) -> TExpr {
        if let Some(frame) = self.frames.last()
            && let Some((_, bound)) = frame.iter().rev().find(|(n, _)| n == name)
        {
            return bound.clone();
        }
        if name == "t" {
            if place.allows_states() {
                return tex(TExprKind::Time, Shape::Scalar, span);
            }
            self.not_allowed("time", "t", span, place);
            return poison(span);
        }
        let Some(g) = self.globals.get(name).copied() else {
            if Builtin::from_name(name).is_some() || name == "concat" || name == "jacobian" {
                self.error(
                    "glassbox::not_a_value",
                    span,
                    format!("`{name}` is a function, not a value"),
                    "function",
                    format!("call it: `{name}(...)`"),
                );
            } else if OBSERVABLES.contains(&name) {
                self.error(
                    "glassbox::not_allowed_here",
                    span,
                    format!("`{name}` is a solver observable, only a term of `minimize`"),
                    "observable",
                    "write it as a term of the objective: `minimize ... + 0.1 * error_estimate`",
                );
            } else {
                self.undefined("name", name, span);
            }
            return poison(span);
        };
        match g.kind {
            GlobalKind::Net(_) | GlobalKind::Fn(_) => {
                self.error(
                    "glassbox::not_a_value",
                    span,
                    format!("`{name}` is a {}, not a value", g.kind.noun()),
                    g.kind.noun(),
                    format!("apply it: `{name}(...)`"),
                );
                return poison(span);
            }
            GlobalKind::Label(_) | GlobalKind::Data(_) => {
                self.error(
                    "glassbox::not_a_value",
                    span,
                    format!("`{name}` is a {}, not a value", g.kind.noun()),
                    g.kind.noun(),
                    "labels and data sources are targets of losses in `minimize`: `mse(y, obs)`",
                );
                return poison(span);
            }
            _ => {}
        }
        if !place.allows(g.kind) {
            self.not_allowed(g.kind.noun(), name, span, place);
            return poison(span);
        }
        match g.kind {
            GlobalKind::State(i) => match self.m.states.get(i) {
                Some(s) => tex(TExprKind::State { state: i }, s.shape, span),
                None => poison(span),
            },
            GlobalKind::Param(i) => match self.m.params.get(i) {
                Some(p) => tex(TExprKind::Param { param: i }, p.shape, span),
                None => poison(span),
            },
            GlobalKind::Input(i) => match self.m.inputs.get(i) {
                Some(p) => tex(TExprKind::Input { input: i }, p.shape, span),
                None => poison(span),
            },
            GlobalKind::Output(i) => match self.m.outputs.get(i) {
                Some(o) => tex(TExprKind::Output { output: i }, o.value.shape, span),
                None => poison(span),
            },
            GlobalKind::Const(i) => match self.const_value(i) {
                Some(v) => tex(TExprKind::Const { value: v.data }, v.shape, span),
                None => {
                    if matches!(
                        self.consts.get(i).map(|s| &s.state),
                        Some(ConstState::InProgress)
                    ) {
                        self.error(
                            "glassbox::const_cycle",
                            span,
                            format!("constant `{name}` is defined in terms of itself"),
                            "refers back to the constant being defined",
                            "constants must be defined without a cycle",
                        );
                    }
                    poison(span)
                }
            },
            GlobalKind::Net(_)
            | GlobalKind::Fn(_)
            | GlobalKind::Label(_)
            | GlobalKind::Data(_)
            | GlobalKind::Broken => poison(span),
        }
    }

    /// The folded value of const `i`, evaluating it on first use.
    pub fn const_value(&mut self, i: usize) -> Option<Value> {
        let slot = self.consts.get_mut(i)?;
        match &slot.state {
            ConstState::Done(v) => return Some(v.clone()),
            ConstState::InProgress | ConstState::Failed => return None,
            ConstState::Pending => slot.state = ConstState::InProgress,
        }
        let expr = slot.decl.value.clone();
        let file = slot.file;
        let saved = std::mem::replace(&mut self.cur, file);
        let saved_frames = std::mem::take(&mut self.frames);
        let v = self.const_expr(&expr);
        self.frames = saved_frames;
        self.cur = saved;
        if let Some(slot) = self.consts.get_mut(i) {
            slot.state = match &v {
                Some(v) => ConstState::Done(v.clone()),
                None => ConstState::Failed,
            };
        }
        v
    }

    /// Check and fold a constant expression (`None` after reporting why not).
    pub fn const_expr(&mut self, e: &Expr) -> Option<Value> {
        let t = self.check_expr(e, Place::Const);
        if t.shape.is_error() {
            return None;
        }
        let v = fold(&t);
        if v.is_none() {
            self.error(
                "glassbox::not_constant",
                e.span,
                "this expression is not constant",
                "not foldable at check time",
                Place::Const.help(),
            );
        }
        v
    }

    /// A non-negative integer constant (sizes, indices, counts).
    pub fn const_int(&mut self, e: &Expr, what: &str) -> Option<usize> {
        let v = self.const_expr(e)?;
        match v.data.as_slice() {
            [x] if v.shape == Shape::Scalar && x.fract() == 0.0 && *x >= 0.0 && *x < 1e15 => {
                Some(*x as usize)
            }
            _ => {
                let found = if v.shape == Shape::Scalar {
                    format!("{}", v.data.first().copied().unwrap_or(f64::NAN))
                } else {
                    v.shape.to_string()
                };
                self.error(
                    "glassbox::expected_integer",
                    e.span,
                    format!("{what} must be a non-negative integer, found {found}"),
                    "not a non-negative integer",
                    format!("write {what} as a whole number such as `2`"),
                );
                None
            }
        }
    }

    fn check_vector(&mut self, items: &[Expr], span: Span, place: Place) -> TExpr {
        if items.is_empty() {
            self.error(
                "glassbox::bad_expression",
                span,
                "an empty vector has no shape",
                "empty",
                "vectors have at least one element",
            );
            return poison(span);
        }
        let mut out = Vec::new();
        let mut bad = false;
        for it in items {
            let x =
                self.check_literal_element(it, place, "vector", "join vectors with `concat(a, b)`");
            bad |= x.shape != Shape::Scalar;
            out.push(x);
        }
        let shape = if bad {
            Shape::Error
        } else {
            Shape::vector(out.len())
        };
        tex(TExprKind::Vector { items: out }, shape, span)
    }

    /// An element of a vector or matrix literal: a scalar, or an error saying so (an element
    /// that already failed stays silent).
    fn check_literal_element(
        &mut self,
        it: &Expr,
        place: Place,
        literal: &str,
        help: &str,
    ) -> TExpr {
        let x = self.check_expr(it, place);
        if !matches!(x.shape, Shape::Scalar | Shape::Error) {
            let s = x.shape;
            self.error(
                "glassbox::shape_mismatch",
                it.span,
                format!("{literal} literal elements must be scalars, found {s}"),
                format!("{s}"),
                help,
            );
        }
        x
    }

    fn check_matrix(&mut self, rows: &[Vec<Expr>], span: Span, place: Place) -> TExpr {
        let cols = rows.first().map_or(0, Vec::len);
        let mut out = Vec::new();
        let mut bad = cols == 0;
        for row in rows {
            if row.len() != cols {
                bad = true;
                let rspan = match (row.first(), row.last()) {
                    (Some(a), Some(b)) => a.span.to(b.span),
                    _ => span,
                };
                self.error(
                    "glassbox::ragged_matrix",
                    rspan,
                    format!(
                        "this row has {} elements but the first has {cols}",
                        row.len()
                    ),
                    "row length differs",
                    "every row of a matrix literal has the same length",
                );
            }
            let mut r = Vec::new();
            for it in row {
                let x = self.check_literal_element(
                    it,
                    place,
                    "matrix",
                    "matrix literals are written `[a, b; c, d]` with scalar entries",
                );
                bad |= x.shape != Shape::Scalar;
                r.push(x);
            }
            out.push(r);
        }
        let shape = if bad {
            Shape::Error
        } else {
            Shape::matrix(rows.len(), cols)
        };
        tex(TExprKind::Matrix { rows: out }, shape, span)
    }

    fn no_named_args(&mut self, args: &[Arg], callee: &str) -> bool {
        let mut ok = true;
        for a in args {
            if let Some(n) = &a.name {
                ok = false;
                self.error(
                    "glassbox::unexpected_named_arg",
                    n.span,
                    format!("`{callee}` takes no named argument `{}`", n.name),
                    "unexpected",
                    "pass the arguments by position",
                );
            }
        }
        ok
    }

    fn arity(&mut self, call: &Call, min: usize, max: Option<usize>, callee: &str) -> bool {
        let n = call.args.len();
        let expected = match max {
            Some(m) if m == min => format!("{min}"),
            Some(m) => format!("{min} to {m}"),
            None => format!("at least {min}"),
        };
        let plural = if expected == "1" { "" } else { "s" };
        if let Some(m) = max
            && n > m
        {
            let extra = call.args.get(m).map_or(call.span, |a| a.span);
            self.error(
                "glassbox::wrong_arity",
                extra,
                format!("`{callee}` takes {expected} argument{plural}, got {n}"),
                "extra argument",
                format!("remove the extra arguments of `{callee}`"),
            );
            return false;
        }
        if n < min {
            self.error(
                "glassbox::wrong_arity",
                call.span,
                format!("`{callee}` takes {expected} argument{plural}, got {n}"),
                "missing arguments",
                format!("give `{callee}` {expected} argument{plural}"),
            );
            return false;
        }
        true
    }

    fn check_call(&mut self, call: &Call, span: Span, place: Place) -> TExpr {
        let name = call.callee.name.as_str();
        let cspan = call.callee.span;
        if self
            .frames
            .last()
            .is_some_and(|f| f.iter().any(|(n, _)| n == name))
        {
            self.error(
                "glassbox::not_callable",
                cspan,
                format!("`{name}` is a function argument, not a function"),
                "not callable",
                "only nets, functions and builtins can be called",
            );
            return poison(span);
        }
        if let Some(g) = self.globals.get(name).copied() {
            return match g.kind {
                GlobalKind::State(i) => self.state_at(call, i, span, place),
                GlobalKind::Net(i) => self.net_apply(call, i, span, place),
                GlobalKind::Fn(i) => self.inline(call, i, span, place),
                GlobalKind::Broken => {
                    // The arguments may still hold mistakes of their own.
                    for a in &call.args {
                        self.check_expr(&a.value, place);
                    }
                    poison(span)
                }
                other => {
                    self.error(
                        "glassbox::not_callable",
                        cspan,
                        format!("`{name}` is a {}, not a function", other.noun()),
                        "not callable",
                        "only nets, functions and builtins can be called; index with `[i]`",
                    );
                    poison(span)
                }
            };
        }
        if !self.no_named_args(&call.args, name) {
            return poison(span);
        }
        match name {
            "concat" => return self.concat(call, span, place),
            "jacobian" => return self.jacobian(call, span, place),
            _ => {}
        }
        let Some(f) = Builtin::from_name(name) else {
            if OBSERVABLES.contains(&name)
                || ["taylor", "steer", "mse", "l1", "cross_entropy", "moments"].contains(&name)
            {
                self.error(
                    "glassbox::not_allowed_here",
                    cspan,
                    format!("`{name}` is a term of `minimize`, not a function"),
                    "objective term",
                    "losses and regularizers are summed at the top of `minimize`",
                );
            } else {
                self.undefined("function", name, cspan);
            }
            for a in &call.args {
                self.check_expr(&a.value, place);
            }
            return poison(span);
        };
        if !self.arity(call, f.arity(), Some(f.arity()), name) {
            return poison(span);
        }
        let args: Vec<TExpr> = call
            .args
            .iter()
            .map(|a| self.check_expr(&a.value, place))
            .collect();
        if args.iter().any(|a| a.shape.is_error()) {
            return poison(span);
        }
        let shape = if f.is_elementwise() {
            args.first().map_or(Shape::Error, |a| a.shape)
        } else if f == Builtin::Dot {
            let (a, b) = match args.as_slice() {
                [a, b] => (a.shape, b.shape),
                _ => return poison(span),
            };
            if a != b {
                self.push(
                    crate::diag::Diag::error(
                        "glassbox::shape_mismatch",
                        format!("cannot take `dot` of {a} and {b}"),
                    )
                    .label(span, "shapes differ")
                    .help("`dot` takes two values of the same shape"),
                );
                return poison(span);
            }
            Shape::Scalar
        } else {
            Shape::Scalar
        };
        tex(TExprKind::Builtin { f, args }, shape, span)
    }

    fn state_at(&mut self, call: &Call, i: usize, span: Span, place: Place) -> TExpr {
        let name = call.callee.name.clone();
        if !place.allows_state_at() {
            self.error(
                "glassbox::not_allowed_here",
                span,
                format!(
                    "state `{name}` at a time cannot be used in {}",
                    place.describe()
                ),
                "not allowed here",
                "`X(t1)` (a state at a time) is for outputs and the objective",
            );
            return poison(span);
        }
        if !self.no_named_args(&call.args, &name) || !self.arity(call, 1, Some(1), &name) {
            return poison(span);
        }
        let Some(arg) = call.args.first() else {
            return poison(span);
        };
        let v = self.const_expr(&arg.value);
        let Some(time) = v.as_ref().and_then(|v| {
            (v.shape == Shape::Scalar)
                .then(|| v.data.first().copied())
                .flatten()
        }) else {
            if v.is_some() {
                self.error(
                    "glassbox::bad_expression",
                    arg.span,
                    "the time of `X(t1)` must be a constant scalar",
                    "not a scalar",
                    "write a time such as `h(1)`",
                );
            }
            return poison(span);
        };
        let shape = self.m.states.get(i).map_or(Shape::Error, |s| s.shape);
        tex(TExprKind::StateAt { state: i, time }, shape, span)
    }

    fn net_apply(&mut self, call: &Call, i: usize, span: Span, place: Place) -> TExpr {
        let name = call.callee.name.clone();
        if !self.no_named_args(&call.args, &name) || !self.arity(call, 1, None, &name) {
            return poison(span);
        }
        let args: Vec<TExpr> = call
            .args
            .iter()
            .map(|a| self.check_expr(&a.value, place))
            .collect();
        let Some(net) = self.m.nets.get(i) else {
            return poison(span);
        };
        let (n_in, out) = (net.input_size(), net.output_shape());
        let mut total = 0;
        for (a, ast) in args.iter().zip(&call.args) {
            match a.shape {
                Shape::Error => return poison(span),
                Shape::Matrix { .. } => {
                    self.error(
                        "glassbox::net_input_size",
                        ast.span,
                        format!("net `{name}` takes scalars and vectors, found {}", a.shape),
                        "matrix argument",
                        "flatten it by indexing rows, or pass vectors",
                    );
                    return poison(span);
                }
                s => total += s.size(),
            }
        }
        if total != n_in {
            let aspan = match (call.args.first(), call.args.last()) {
                (Some(a), Some(b)) => a.span.to(b.span),
                _ => span,
            };
            let got = if args.len() == 1 {
                args.first().map_or(Shape::Error, |a| a.shape).to_string()
            } else {
                format!("{total} values")
            };
            self.error(
                "glassbox::net_input_size",
                aspan,
                format!("net `{name}` takes {n_in} input{}, got {got}", if n_in == 1 { "" } else { "s" }),
                format!("{total} value{}", if total == 1 { "" } else { "s" }),
                format!("the first layer size of `{name}` is {n_in}; pass {n_in} values (several arguments are concatenated)"),
            );
            return poison(span);
        }
        let input = if args.len() == 1 {
            args.into_iter().next().unwrap_or_else(|| poison(span))
        } else {
            tex(
                TExprKind::Concat { items: args },
                Shape::vector(total),
                span,
            )
        };
        tex(
            TExprKind::NetApply {
                net: i,
                input: Box::new(input),
            },
            out,
            span,
        )
    }

    fn inline(&mut self, call: &Call, i: usize, span: Span, place: Place) -> TExpr {
        let Some(def) = self.fns.get(i) else {
            return poison(span);
        };
        let (decl, file) = (def.decl.clone(), def.file);
        let name = decl.name.name.clone();
        if !self.no_named_args(&call.args, &name)
            || !self.arity(call, decl.params.len(), Some(decl.params.len()), &name)
        {
            return poison(span);
        }
        let args: Vec<TExpr> = call
            .args
            .iter()
            .map(|a| self.check_expr(&a.value, place))
            .collect();
        if self.inline_stack.contains(&i) || self.inline_stack.len() > 64 {
            // Reported once at the definition by `check_fn_cycles`.
            return poison(span);
        }
        let frame = decl
            .params
            .iter()
            .map(|p| p.name.clone())
            .zip(args)
            .collect();
        self.frames.push(frame);
        self.inline_stack.push(i);
        let saved = std::mem::replace(&mut self.cur, file);
        let mut body = self.check_expr(&decl.body, place);
        self.cur = saved;
        self.inline_stack.pop();
        self.frames.pop();
        body.span = span;
        body
    }

    fn concat(&mut self, call: &Call, span: Span, place: Place) -> TExpr {
        if !self.arity(call, 1, None, "concat") {
            return poison(span);
        }
        let mut items = Vec::new();
        let mut total = 0;
        let mut bad = false;
        for a in &call.args {
            let x = self.check_expr(&a.value, place);
            match x.shape {
                Shape::Error => bad = true,
                Shape::Matrix { .. } => {
                    bad = true;
                    self.error(
                        "glassbox::shape_mismatch",
                        a.span,
                        format!("`concat` joins scalars and vectors, found {}", x.shape),
                        "matrix",
                        "index a matrix's rows (`M[0]`) to concatenate them",
                    );
                }
                s => total += s.size(),
            }
            items.push(x);
        }
        if bad {
            return poison(span);
        }
        tex(TExprKind::Concat { items }, Shape::vector(total), span)
    }

    fn jacobian(&mut self, call: &Call, span: Span, place: Place) -> TExpr {
        if !place.allows_states() {
            self.error(
                "glassbox::not_allowed_here",
                span,
                format!("`jacobian` cannot be used in {}", place.describe()),
                "not allowed here",
                place.help(),
            );
            return poison(span);
        }
        if !self.arity(call, 2, Some(2), "jacobian") {
            return poison(span);
        }
        let (Some(of), Some(wrt)) = (call.args.first(), call.args.get(1)) else {
            return poison(span);
        };
        let x = self.check_expr(&of.value, place);
        let state = match &wrt.value.kind {
            ExprKind::Name(n) => {
                match self.globals.get(n).map(|g| g.kind) {
                    Some(GlobalKind::State(i)) => Some(i),
                    Some(GlobalKind::Broken) => None,
                    Some(_) | None if self.globals.contains_key(n) => {
                        self.error(
                        "glassbox::not_a_state",
                        wrt.span,
                        format!("`jacobian` differentiates with respect to a state; `{n}` is not one"),
                        "not a state",
                        "write `jacobian(expr, X)` with a declared state `X`",
                    );
                        None
                    }
                    _ => {
                        self.undefined("state", n, wrt.span);
                        None
                    }
                }
            }
            _ => {
                self.error(
                    "glassbox::not_a_state",
                    wrt.span,
                    "`jacobian` differentiates with respect to a state name",
                    "not a state name",
                    "write `jacobian(expr, X)` with a declared state `X`",
                );
                None
            }
        };
        let Some(s) = state else { return poison(span) };
        let sshape = self.m.states.get(s).map_or(Shape::Error, |st| st.shape);
        let shape = match (x.shape, sshape) {
            (Shape::Error, _) | (_, Shape::Error) => return poison(span),
            (Shape::Scalar, Shape::Scalar) => Shape::Scalar,
            (Shape::Scalar, Shape::Vector { n }) | (Shape::Vector { n }, Shape::Scalar) => {
                Shape::vector(n)
            }
            (Shape::Vector { n: m }, Shape::Vector { n }) => Shape::matrix(m, n),
            (a, b) => {
                self.error(
                    "glassbox::shape_mismatch",
                    span,
                    format!("`jacobian` of {a} with respect to {b} is not a matrix"),
                    "too many axes",
                    "jacobians take scalars and vectors",
                );
                return poison(span);
            }
        };
        // Refused here, with its place, rather than when lowering builds it.
        if let Shape::Matrix { rows, cols } = shape
            && !crate::ir::jacobian_fits(rows, cols)
        {
            self.error(
                "glassbox::jacobian_too_large",
                span,
                format!(
                    "this Jacobian would be {rows} × {cols} = {} entries, more than the limit of {}",
                    grouped(shape.size()),
                    grouped(crate::ir::MAX_JACOBIAN_ENTRIES)
                ),
                "too large",
                "a dense Jacobian has at most 2048 × 2048 entries; differentiate a smaller expression or state",
            );
            return poison(span);
        }
        tex(
            TExprKind::Jacobian {
                expr: Box::new(x),
                state: s,
            },
            shape,
            span,
        )
    }

    fn check_index(&mut self, base: &Expr, index: &[Expr], span: Span, place: Place) -> TExpr {
        let b = self.check_expr(base, place);
        let dims: Vec<usize> = match b.shape {
            Shape::Error => return poison(span),
            Shape::Scalar => {
                self.error(
                    "glassbox::bad_index",
                    span,
                    "a scalar cannot be indexed",
                    "scalar",
                    "only vectors and matrices have elements",
                );
                return poison(span);
            }
            Shape::Vector { n } => vec![n],
            Shape::Matrix { rows, cols } => vec![rows, cols],
        };
        if index.len() > dims.len() || index.is_empty() {
            let at = index.get(dims.len()).map_or(span, |e| e.span);
            self.error(
                "glassbox::bad_index",
                at,
                format!(
                    "{} takes {} ind{}, got {}",
                    b.shape,
                    dims.len(),
                    if dims.len() == 1 { "ex" } else { "ices" },
                    index.len()
                ),
                "too many indices",
                "index a vector with `[i]`, a matrix with `[i, j]`",
            );
            return poison(span);
        }
        let mut sels = Vec::new();
        let mut out_dims = Vec::new();
        for (k, (ix, n)) in index.iter().zip(&dims).enumerate() {
            let sel = match &ix.kind {
                ExprKind::Range { start, end } => {
                    let s = match start {
                        Some(e) => self.const_int(e, "a slice bound"),
                        None => Some(0),
                    };
                    let e = match end {
                        Some(e) => self.const_int(e, "a slice bound"),
                        None => Some(*n),
                    };
                    let (Some(s), Some(e)) = (s, e) else {
                        return poison(span);
                    };
                    if s >= e || e > *n {
                        self.error(
                            "glassbox::index_out_of_range",
                            ix.span,
                            format!("slice {s}..{e} is out of range for {}", b.shape),
                            "out of range",
                            format!("slices are half-open `a..b` with a < b ≤ {n}"),
                        );
                        return poison(span);
                    }
                    out_dims.push(e - s);
                    IndexSel::Slice { start: s, end: e }
                }
                _ => {
                    let Some(i) = self.const_int(ix, "an index") else {
                        return poison(span);
                    };
                    if i >= *n {
                        self.error(
                            "glassbox::index_out_of_range",
                            ix.span,
                            format!("index {i} is out of range for {}", b.shape),
                            "out of range",
                            format!("indices start at 0; axis {k} has valid indices 0..{n}"),
                        );
                        return poison(span);
                    }
                    IndexSel::At { i }
                }
            };
            sels.push(sel);
        }
        // A matrix indexed by one index keeps its columns: `M[i]` is row i.
        if dims.len() == 2 && index.len() == 1 {
            out_dims.push(dims[1]);
        }
        let shape = Shape::from_dims(&out_dims).unwrap_or(Shape::Error);
        tex(
            TExprKind::Index {
                base: Box::new(b),
                index: sels,
            },
            shape,
            span,
        )
    }

    /// Names in user function bodies resolve at the definition, so a function that is never
    /// called still reports its undefined names (instantiation reports the same (code, span),
    /// which de-duplication drops).
    pub fn check_fn_names(&mut self) {
        for i in 0..self.fns.len() {
            let Some(def) = self.fns.get(i) else { continue };
            let (decl, file) = (def.decl.clone(), def.file);
            let mut missing = Vec::new();
            collect_names(&decl.body, &mut |name, span, call| {
                let known = decl.params.iter().any(|p| p.name == name)
                    || self.globals.contains_key(name)
                    || name == "t"
                    || Builtin::from_name(name).is_some()
                    || (call && (name == "concat" || name == "jacobian"))
                    || OBSERVABLES.contains(&name);
                if !known {
                    missing.push((name.to_string(), span, call));
                }
            });
            let saved = std::mem::replace(&mut self.cur, file);
            self.frames.push(
                decl.params
                    .iter()
                    .map(|p| (p.name.clone(), poison(p.span)))
                    .collect(),
            );
            for (name, span, call) in missing {
                self.undefined(if call { "function" } else { "name" }, &name, span);
            }
            self.frames.pop();
            self.cur = saved;
        }
    }

    /// Report recursive user functions once, at the call that closes the cycle.
    pub fn check_fn_cycles(&mut self) {
        let calls: Vec<Vec<(usize, Span)>> = self
            .fns
            .iter()
            .map(|f| {
                let mut out = Vec::new();
                collect_calls(&f.decl.body, &mut |name, span| {
                    if let Some(GlobalKind::Fn(j)) = self.globals.get(name).map(|g| g.kind) {
                        out.push((j, span));
                    }
                });
                out
            })
            .collect();
        let mut in_reported = HashSet::new();
        for start in 0..self.fns.len() {
            if in_reported.contains(&start) {
                continue;
            }
            // DFS from `start`; the stack holds the current path, so a call back to `start`
            // closes a cycle through exactly the functions on it.
            let mut stack = vec![(start, 0usize)];
            let mut seen = HashSet::new();
            while let Some((f, k)) = stack.pop() {
                let Some(&(g, span)) = calls.get(f).and_then(|c| c.get(k)) else {
                    continue;
                };
                stack.push((f, k + 1));
                if g == start {
                    let path: Vec<usize> = stack.iter().map(|(f, _)| *f).collect();
                    in_reported.extend(path.iter().copied());
                    let names: Vec<String> = path
                        .iter()
                        .filter_map(|i| self.fns.get(*i).map(|d| format!("`{}`", d.decl.name.name)))
                        .collect();
                    let message = match names.as_slice() {
                        [one] => format!("function {one} calls itself"),
                        many => format!("functions {} call each other in a cycle", many.join(", ")),
                    };
                    let file = self.fns.get(f).map_or(0, |d| d.file);
                    let saved = std::mem::replace(&mut self.cur, file);
                    self.error(
                        "glassbox::recursive_fn",
                        span,
                        message,
                        "recursive call",
                        "functions are inlined at every call, so they cannot recurse",
                    );
                    self.cur = saved;
                    break;
                } else if seen.insert(g) {
                    stack.push((g, 0));
                }
            }
        }
    }
}

fn collect_names(e: &Expr, f: &mut impl FnMut(&str, Span, bool)) {
    match &e.kind {
        ExprKind::Name(n) => f(n, e.span, false),
        ExprKind::Call(c) => {
            f(&c.callee.name, c.callee.span, true);
            c.args.iter().for_each(|a| collect_names(&a.value, f));
        }
        ExprKind::Vector(items) => items.iter().for_each(|x| collect_names(x, f)),
        ExprKind::Matrix(rows) => rows.iter().flatten().for_each(|x| collect_names(x, f)),
        ExprKind::Range { start, end } => {
            start
                .iter()
                .chain(end.iter())
                .for_each(|x| collect_names(x, f));
        }
        ExprKind::Unary { expr, .. } | ExprKind::TimeDeriv(expr) => collect_names(expr, f),
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Decay { from: lhs, to: rhs } => {
            collect_names(lhs, f);
            collect_names(rhs, f);
        }
        ExprKind::Index { base, index } => {
            collect_names(base, f);
            index.iter().for_each(|x| collect_names(x, f));
        }
        ExprKind::Num { .. } | ExprKind::Str(_) => {}
    }
}

fn collect_calls(e: &Expr, f: &mut impl FnMut(&str, Span)) {
    collect_names(e, &mut |name, span, is_call| {
        if is_call {
            f(name, span)
        }
    });
}
