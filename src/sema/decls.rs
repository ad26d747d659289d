//! Declarations (params, inputs, labels, states and their initial values, outputs) and
//! equations: shapes from constant dimensions, the flat layouts of `u`, `p` and the inputs, and
//! "exactly one equation per state".

use super::checker::{Checker, GlobalKind, poison};
use super::expr::Place;
use super::fold::fold;
use super::limits::MAX_ELEMENTS;
use super::model::*;
use crate::diag::Diag;
use crate::source::Span;
use crate::syntax::ast::{
    self, Expr, ExprKind, InputDecl, LabelDecl, OutputDecl, ParamDecl, StateDecl,
};

impl Checker<'_> {
    /// The shape `[n]` / `[m, n]` of a declaration (`owner` names it: "state `W`"); `None`
    /// after reporting.
    fn dims(&mut self, dims: &Option<Vec<Expr>>, owner: &str) -> Option<Shape> {
        let Some(dims) = dims else {
            return Some(Shape::Scalar);
        };
        if let Some(extra) = dims.get(2) {
            self.error(
                "glassbox::bad_shape",
                extra.span,
                format!("values have at most 2 axes, this shape has {}", dims.len()),
                "third axis",
                "declare a scalar, a vector `[n]` or a matrix `[m, n]`",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut elements = Some(1usize);
        for d in dims {
            match self.const_int(d, "a dimension")? {
                0 => {
                    self.error(
                        "glassbox::bad_shape",
                        d.span,
                        "a dimension must be at least 1",
                        "zero",
                        "give every axis a positive size",
                    );
                    return None;
                }
                n => {
                    elements = elements.and_then(|e| e.checked_mul(n));
                    out.push(n);
                }
            }
        }
        let (first, last) = (dims.first()?, dims.last()?);
        if !self.within_limit(elements, MAX_ELEMENTS, owner, first.span.to(last.span)) {
            return None;
        }
        Shape::from_dims(&out)
    }

    /// Fit a constant value to a declared shape: equal shapes, or a scalar filling it.
    fn fit(&mut self, v: Value, shape: Shape, what: &str, span: Span) -> Option<Vec<f64>> {
        if v.shape == shape {
            return Some(v.data);
        }
        if v.shape == Shape::Scalar {
            let x = v.data.first().copied().unwrap_or(0.0);
            return Some(vec![x; shape.size()]);
        }
        self.error(
            "glassbox::shape_mismatch",
            span,
            format!("{what} is {shape} but its value is {}", v.shape),
            format!("{}", v.shape),
            format!("give a value of shape {shape}, or a scalar to fill it"),
        );
        None
    }

    pub fn param_decl(&mut self, d: &ParamDecl) {
        if self.owned(&d.name).is_none() {
            return;
        }
        let name = &d.name.name;
        let declared = if d.shape.is_some() {
            self.dims(&d.shape, &format!("param `{name}`"))
        } else {
            None
        };
        // Refused before `fit` fills the declared shape.
        let declared = declared
            .filter(|s| self.param_room(Some(s.size()), &format!("param `{name}`"), d.name.span));
        let (shape, init) = match (&d.value, declared) {
            (Some(e), _) => {
                let v = self.const_expr(e);
                match (v, declared) {
                    (Some(v), Some(s)) => {
                        let data = self.fit(v, s, &format!("param `{name}`"), e.span);
                        (s, data)
                    }
                    (Some(v), None) if d.shape.is_none() => (v.shape, Some(v.data)),
                    (_, s) => (s.unwrap_or(Shape::Error), None),
                }
            }
            (None, s) => {
                let s = if d.shape.is_none() {
                    Shape::Scalar
                } else {
                    s.unwrap_or(Shape::Error)
                };
                if !d.learn {
                    self.error(
                        "glassbox::missing_value",
                        d.name.span,
                        format!("fixed param `{name}` has no value"),
                        "no value",
                        format!("give it a value (`param {name} = 1.0`) or mark it `learn` to start at zero"),
                    );
                }
                (s, Some(vec![0.0; s.size()]))
            }
        };
        // A param whose value failed still gets a slot, so its uses resolve without cascades.
        let init = init.unwrap_or_else(|| vec![0.0; shape.size()]);
        let i = self.add_param(
            name.clone(),
            shape,
            d.learn,
            init,
            ParamOrigin::User,
            d.name.span,
        );
        self.set_global(&d.name, GlobalKind::Param(i));
    }

    pub fn input_decl(&mut self, d: &InputDecl) {
        let Some(GlobalKind::Input(i)) = self.owned(&d.name) else {
            return;
        };
        let owner = format!("input `{}`", d.name.name);
        let shape = self.dims(&d.shape, &owner).unwrap_or(Shape::Error);
        let offset = self.m.inputs.iter().take(i).map(|x| x.shape.size()).sum();
        if let Some(x) = self.m.inputs.get_mut(i) {
            x.shape = shape;
            x.offset = offset;
        }
    }

    pub fn label_decl(&mut self, d: &LabelDecl) {
        let Some(GlobalKind::Label(i)) = self.owned(&d.name) else {
            return;
        };
        let classes = match &d.classes.kind {
            ExprKind::Range {
                start,
                end: Some(end),
            } => {
                let s = match start {
                    Some(s) => self.const_int(s, "the first class"),
                    None => Some(0),
                };
                match (s, self.const_int(end, "the class count")) {
                    // Targets are one-hot vectors over the classes.
                    (Some(0), Some(n)) if n > MAX_ELEMENTS => {
                        let what = format!("label `{}`", d.name.name);
                        self.within_limit(Some(n), MAX_ELEMENTS, &what, end.span);
                        None
                    }
                    (Some(0), Some(n)) if n >= 2 => Some(n),
                    (Some(0), Some(n)) => {
                        self.error(
                            "glassbox::bad_label",
                            end.span,
                            format!("a label needs at least 2 classes, this one has {n}"),
                            "too few classes",
                            "write the classes as `0..n` with n ≥ 2",
                        );
                        None
                    }
                    (Some(_), Some(_)) => {
                        let span = start.as_ref().map_or(d.classes.span, |s| s.span);
                        self.error(
                            "glassbox::bad_label",
                            span,
                            "label classes start at 0",
                            "not 0",
                            "write the classes as `0..n`",
                        );
                        None
                    }
                    _ => None,
                }
            }
            _ => {
                self.error(
                    "glassbox::bad_label",
                    d.classes.span,
                    "a label's classes are a range `0..n`",
                    "not a range",
                    "write `label c in 0..10`",
                );
                None
            }
        };
        if let (Some(n), Some(l)) = (classes, self.m.labels.get_mut(i)) {
            l.classes = n;
        }
    }

    pub fn state_shape(&mut self, d: &StateDecl) {
        let Some(GlobalKind::State(i)) = self.owned(&d.name) else {
            return;
        };
        let owner = format!("state `{}`", d.name.name);
        let mut shape = self.dims(&d.shape, &owner).unwrap_or(Shape::Error);
        let offset: usize = self.m.states.iter().take(i).map(|x| x.shape.size()).sum();
        // Every state is held whole by the solver: the limit is on all of them together.
        let total = offset.checked_add(shape.size());
        let what = format!("state `{}`, with the states before it,", d.name.name);
        if offset > 0 && !self.within_limit(total, MAX_ELEMENTS, &what, d.name.span) {
            shape = Shape::Error;
        }
        if let Some(s) = self.m.states.get_mut(i) {
            s.shape = shape;
            s.offset = offset;
        }
        self.m.state_size = self.m.states.iter().map(|s| s.shape.size()).sum();
    }

    pub fn state_init(&mut self, d: &StateDecl) {
        let Some(GlobalKind::State(i)) = self.owned(&d.name) else {
            return;
        };
        let Some(shape) = self.m.states.get(i).map(|s| s.shape) else {
            return;
        };
        let name = &d.name.name;
        let init = match &d.init {
            None => TExpr {
                kind: TExprKind::Const {
                    value: vec![0.0; shape.size()],
                },
                shape,
                span: d.name.span,
            },
            Some(e) => {
                let t = self.check_expr(e, Place::Init);
                match fold(&t) {
                    // Constants are folded and broadcast to the state's shape.
                    Some(v) if !shape.is_error() => {
                        match self.fit(v, shape, &format!("state `{name}`"), e.span) {
                            Some(data) => TExpr {
                                kind: TExprKind::Const { value: data },
                                shape,
                                span: e.span,
                            },
                            None => poison(e.span),
                        }
                    }
                    _ if t.shape.is_error()
                        || shape.is_error()
                        || t.shape == shape
                        || t.shape == Shape::Scalar =>
                    {
                        t
                    }
                    _ => {
                        self.error(
                            "glassbox::shape_mismatch",
                            e.span,
                            format!(
                                "state `{name}` is {shape} but its initial value is {}",
                                t.shape
                            ),
                            format!("{}", t.shape),
                            format!("give an initial value of shape {shape}"),
                        );
                        poison(e.span)
                    }
                }
            }
        };
        if let Some(s) = self.m.states.get_mut(i) {
            s.init = init;
        }
    }

    pub fn output_decl(&mut self, d: &OutputDecl) {
        if self.owned(&d.name).is_none() {
            return;
        }
        let value = self.check_expr(&d.value, Place::Output);
        let i = self.m.outputs.len();
        self.m.outputs.push(Output {
            name: d.name.name.clone(),
            value,
            span: d.name.span,
        });
        self.set_global(&d.name, GlobalKind::Output(i));
    }

    pub fn equation(&mut self, eq: &ast::Equation, span: Span) {
        let (ident, is_sde) = match eq {
            ast::Equation::Ode { state, .. } => (state, false),
            ast::Equation::Sde { state, .. } => (state, true),
        };
        let target = self.equation_target(ident);
        if is_sde != (self.m.kind == ModelKind::Sde) {
            let (this, other) = if is_sde {
                ("an SDE", "ODE")
            } else {
                ("an ODE", "SDE")
            };
            self.error(
                "glassbox::mixed_equations",
                ident.span,
                format!("`{}` has {this} equation but the model's first equation is an {other}", ident.name),
                format!("{this} equation"),
                "write every equation in one form; in an SDE model a state without noise is `dX = a dt`",
            );
        }
        let shape = target
            .and_then(|i| self.m.states.get(i))
            .map_or(Shape::Error, |s| s.shape);
        let kind = match eq {
            ast::Equation::Ode { rhs, .. } => {
                let rhs = self.check_rhs(rhs, shape, &format!("d{}/dt", ident.name));
                EquationKind::Ode { rhs }
            }
            ast::Equation::Sde {
                drift, diffusion, ..
            } => {
                let drift = self.check_rhs(drift, shape, &format!("the drift of d{}", ident.name));
                let (diffusion, noise) = match diffusion {
                    None => (None, Noise::None),
                    Some(e) => {
                        let b = self.check_expr(e, Place::Equation);
                        let noise = match b.shape {
                            Shape::Scalar => Noise::Scalar,
                            s if s == shape || s.is_error() || shape.is_error() => Noise::Diagonal,
                            s => {
                                self.error(
                                    "glassbox::diffusion_shape",
                                    e.span,
                                    format!("the diffusion of `{}` is {s}, but it must be a scalar or {shape}", ident.name),
                                    format!("{s}"),
                                    "a scalar diffusion shares one Wiener process; the state's shape gives diagonal noise",
                                );
                                Noise::Diagonal
                            }
                        };
                        (Some(b), noise)
                    }
                };
                EquationKind::Sde {
                    drift,
                    diffusion,
                    noise,
                }
            }
        };
        if let Some(i) = target
            && self.eq_seen.get(i).is_some_and(Option::is_none)
        {
            if let Some(slot) = self.eq_seen.get_mut(i) {
                *slot = Some((ident.span, self.cur));
            }
            self.m.equations.push(Equation {
                state: i,
                kind,
                span,
            });
        }
    }

    /// The state an equation defines, reporting unknown names and second equations.
    fn equation_target(&mut self, ident: &ast::Ident) -> Option<usize> {
        let name = &ident.name;
        match self.globals.get(name).map(|g| g.kind) {
            Some(GlobalKind::State(i)) => {
                if let Some(Some((prev, file))) = self.eq_seen.get(i).copied() {
                    let mut d = Diag::error(
                        "glassbox::duplicate_equation",
                        format!("state `{name}` has two equations"),
                    )
                    .label(ident.span, "second equation");
                    if file == self.cur {
                        d = d.label(prev, "first equation");
                    }
                    self.push(d.help("every state has exactly one equation; remove or merge one"));
                    return None;
                }
                Some(i)
            }
            // Declared by a broken item: whether it is a state is unknown.
            Some(GlobalKind::Broken) => None,
            Some(other) => {
                self.error(
                    "glassbox::not_a_state",
                    ident.span,
                    format!(
                        "`{name}` is a {}, not a state; only states have equations",
                        other.noun()
                    ),
                    "not a state",
                    format!("declare it with `state {name} = ...` to give it an equation"),
                );
                None
            }
            None if self.open_world => None,
            None => {
                let states: Vec<String> = self.m.states.iter().map(|s| s.name.clone()).collect();
                let help = match crate::diag::did_you_mean(name, states.iter().map(String::as_str))
                {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("declare it first: `state {name} = ...`"),
                };
                self.error(
                    "glassbox::undefined_name",
                    ident.span,
                    format!("state `{name}` is not defined"),
                    "not found",
                    help,
                );
                None
            }
        }
    }

    fn check_rhs(&mut self, e: &Expr, shape: Shape, what: &str) -> TExpr {
        let t = self.check_expr(e, Place::Equation);
        if t.shape != shape && !t.shape.is_error() && !shape.is_error() {
            self.error(
                "glassbox::equation_shape",
                e.span,
                format!("{what} is {shape} but the right-hand side is {}", t.shape),
                format!("{}", t.shape),
                format!("the right-hand side must have the state's shape, {shape}"),
            );
        }
        t
    }

    pub fn missing_equations(&mut self) {
        let missing: Vec<(String, Span)> = self
            .m
            .states
            .iter()
            .zip(&self.eq_seen)
            .filter(|(s, seen)| seen.is_none() && !self.broken_equations.contains(&s.name))
            .map(|(s, _)| (s.name.clone(), s.span))
            .collect();
        for (name, span) in missing {
            let g = self.globals.get(&name).map_or(0, |g| g.file);
            let saved = std::mem::replace(&mut self.cur, g);
            let form = if self.m.kind == ModelKind::Sde {
                format!("d{name} = ... dt + ... dW")
            } else {
                format!("d{name}/dt = ...")
            };
            self.error(
                "glassbox::missing_equation",
                span,
                format!("state `{name}` has no equation"),
                "declared here",
                format!("add its equation: `{form}`"),
            );
            self.cur = saved;
        }
        self.m.equations.sort_by_key(|e| e.state);
    }
}
