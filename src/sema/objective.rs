//! `minimize`: a sum of `coef * term`. The expression is taken apart at its top-level `+`;
//! each summand is a term, optionally multiplied (either side) by a coefficient — a constant or
//! `decay(a -> b)`. Terms are losses against data or labels, `moments` for SDE paths, solver
//! observables and the papers' baseline regularizers.

use super::checker::{Checker, GlobalKind};
use super::expr::Place;
use super::model::*;
use super::options::Want;
use crate::diag::did_you_mean;
use crate::source::Span;
use crate::syntax::ast::{Arg, BinOp, Expr, ExprKind, Ident};

const TERMS: [&str; 13] = [
    "mse",
    "l1",
    "cross_entropy",
    "moments",
    "error_estimate",
    "stiffness",
    "nfe",
    "kinetic",
    "jacobian_frobenius",
    "taylor",
    "steer",
    "weight_decay",
    "decay",
];

fn summands<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary {
            op: BinOp::Add,
            lhs,
            rhs,
        } => {
            summands(lhs, out);
            summands(rhs, out);
        }
        _ => out.push(e),
    }
}

/// Whether an expression reads as a coefficient (numbers, consts, `decay`), not a term.
fn is_coef(e: &Expr, consts: &dyn Fn(&str) -> bool) -> bool {
    match &e.kind {
        ExprKind::Num { .. } | ExprKind::Decay { .. } => true,
        ExprKind::Name(n) => consts(n),
        ExprKind::Unary { expr, .. } => is_coef(expr, consts),
        ExprKind::Binary { lhs, rhs, .. } => is_coef(lhs, consts) && is_coef(rhs, consts),
        _ => false,
    }
}

impl Checker<'_> {
    pub fn minimize(&mut self, e: &Expr) {
        let mut parts = Vec::new();
        summands(e, &mut parts);
        let mut terms = Vec::new();
        let mut ok = true;
        for part in parts {
            match self.term(part) {
                Some(t) => terms.push(t),
                None => ok = false,
            }
        }
        if ok {
            self.m.objective = Some(Objective { terms });
        }
    }

    fn term(&mut self, e: &Expr) -> Option<Term> {
        let globals = &self.globals;
        let consts = |n: &str| {
            matches!(
                globals.get(n).map(|g| g.kind),
                Some(GlobalKind::Const(_) | GlobalKind::Broken)
            )
        };
        if let ExprKind::Binary {
            op: BinOp::Mul,
            lhs,
            rhs,
        } = &e.kind
        {
            let (c, t) = if is_coef(lhs, &consts) {
                (lhs, rhs)
            } else if is_coef(rhs, &consts) {
                (rhs, lhs)
            } else {
                (lhs, rhs)
            };
            if is_coef(c, &consts) {
                let coef = self.coef(c);
                let kind = self.term_kind(t);
                return Some(Term {
                    coef: coef?,
                    kind: kind?,
                    span: e.span,
                });
            }
        }
        let kind = self.term_kind(e)?;
        Some(Term {
            coef: Coef::Const { value: 1.0 },
            kind,
            span: e.span,
        })
    }

    fn coef(&mut self, e: &Expr) -> Option<Coef> {
        if let ExprKind::Decay { from, to } = &e.kind {
            let a = self.option_number("decay", from, Want::Positive);
            let b = self.option_number("decay", to, Want::Positive);
            return Some(Coef::Decay { from: a?, to: b? });
        }
        let v = self.option_number("a coefficient", e, Want::NonNegative)?;
        Some(Coef::Const { value: v })
    }

    fn term_kind(&mut self, e: &Expr) -> Option<TermKind> {
        let (callee, args, span): (&Ident, &[Arg], Span) = match &e.kind {
            ExprKind::Call(c) => (&c.callee, &c.args, c.span),
            ExprKind::Name(n) => {
                // A bare name: an observable or baseline with no arguments.
                return self.term_by_name(
                    &Ident {
                        name: n.clone(),
                        span: e.span,
                    },
                    &[],
                    e.span,
                );
            }
            _ => {
                self.error(
                    "glassbox::bad_objective",
                    e.span,
                    "`minimize` is a sum of terms such as `mse(y, obs)` or `0.1 * error_estimate`",
                    "not a term",
                    "each summand is a loss, an observable or a regularizer, optionally times a coefficient",
                );
                return None;
            }
        };
        self.term_by_name(callee, args, span)
    }

    fn term_by_name(&mut self, callee: &Ident, args: &[Arg], span: Span) -> Option<TermKind> {
        let name = callee.name.as_str();
        match name {
            "mse" | "l1" | "cross_entropy" => {
                let loss = match name {
                    "mse" => Loss::Mse,
                    "l1" => Loss::L1,
                    _ => Loss::CrossEntropy,
                };
                let (pos, _) = self.named_options(args, 2, &[], name);
                let [p, t] = pos.as_slice() else {
                    self.term_arity(name, 2, pos.len(), span);
                    return None;
                };
                let pred = self.check_expr(&p.value, Place::Objective);
                let target = self.target(&t.value, loss, pred.shape)?;
                if pred.shape.is_error() {
                    return None;
                }
                Some(TermKind::Loss { loss, pred, target })
            }
            "moments" => {
                let (pos, named) = self.named_options(args, 2, &["samples"], name);
                let [p, d] = pos.as_slice() else {
                    self.term_arity(name, 2, pos.len(), span);
                    return None;
                };
                if self.m.kind != ModelKind::Sde {
                    self.error(
                        "glassbox::bad_objective",
                        callee.span,
                        "`moments` compares sample paths, but this is an ODE model",
                        "needs an SDE",
                        "use `mse` or `l1` for a deterministic model",
                    );
                    return None;
                }
                let samples = match named.get("samples") {
                    Some((_, e)) => self.option_number("samples", e, Want::PositiveInt)? as u64,
                    None => 100,
                };
                let pred = self.check_expr(&p.value, Place::Objective);
                let Target::Data { data } = self.target(&d.value, Loss::Mse, pred.shape)? else {
                    self.error(
                        "glassbox::bad_target",
                        d.span,
                        "`moments` compares against a data source of sample paths",
                        "not a data source",
                        "declare `data paths = csv(..., group = \"path\")`",
                    );
                    return None;
                };
                if pred.shape.is_error() {
                    return None;
                }
                Some(TermKind::Moments {
                    pred,
                    data,
                    samples,
                })
            }
            "error_estimate" | "stiffness" | "nfe" => {
                let (_, named) = self.named_options(args, 0, &["sample"], name);
                let sample = match named.get("sample") {
                    Some((n, e)) => match self.option_word(&n.name, e, &["unbiased", "biased"])? {
                        "unbiased" => Some(Sampling::Unbiased),
                        _ => Some(Sampling::Biased),
                    },
                    None => None,
                };
                let observable = match name {
                    "error_estimate" => Observable::ErrorEstimate,
                    "stiffness" => Observable::Stiffness,
                    _ => Observable::Nfe,
                };
                if observable != Observable::Nfe
                    && let Some(s) = &self.m.solve
                    && s.method.is_fixed_step()
                {
                    let m = s.method.name();
                    let help = if s.method.is_sde() {
                        format!(
                            "solve with an adaptive SDE method (they have error and stiffness estimates): {}",
                            crate::solve::registry::adaptive_sde_methods()
                        )
                    } else {
                        "solve with an adaptive method such as `tsit5`".to_string()
                    };
                    self.error(
                        "glassbox::bad_objective",
                        callee.span,
                        format!("`{name}` needs an adaptive solver, but `{m}` takes fixed steps"),
                        "no estimate to penalise",
                        help,
                    );
                    return None;
                }
                Some(TermKind::Observable { observable, sample })
            }
            "jacobian_frobenius" => {
                let (_, named) = self.named_options(args, 0, &["estimator"], name);
                if args.len() != named.len() {
                    return None;
                }
                let estimator = match named.get("estimator") {
                    Some((n, e)) => Some(
                        match self.option_word(&n.name, e, &["exact", "hutchinson"])? {
                            "exact" => Estimator::Exact,
                            _ => Estimator::Hutchinson,
                        },
                    ),
                    None => None,
                };
                Some(TermKind::JacobianFrobenius { estimator })
            }
            "kinetic" | "weight_decay" => {
                self.named_options(args, 0, &[], name);
                if !args.is_empty() {
                    return None;
                }
                Some(match name {
                    "kinetic" => TermKind::Kinetic,
                    _ => TermKind::WeightDecay,
                })
            }
            "taylor" | "steer" => {
                let (pos, _) = self.named_options(args, 1, &[], name);
                let [a] = pos.as_slice() else {
                    self.term_arity(name, 1, pos.len(), span);
                    return None;
                };
                if name == "taylor" {
                    let k = self.option_number("taylor", &a.value, Want::PositiveInt)?;
                    Some(TermKind::Taylor {
                        order: k.min(u32::MAX as f64) as u32,
                    })
                } else {
                    let b = self.option_number("steer", &a.value, Want::Positive)?;
                    Some(TermKind::Steer { b })
                }
            }
            _ => {
                let help = match did_you_mean(name, TERMS) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "terms are losses (mse, l1, cross_entropy, moments), observables (error_estimate, stiffness, nfe) and regularizers (kinetic, jacobian_frobenius, taylor(K), steer(b), weight_decay)".into(),
                };
                self.error(
                    "glassbox::unknown_term",
                    callee.span,
                    format!("`{name}` is not an objective term"),
                    "unknown term",
                    help,
                );
                None
            }
        }
    }

    fn term_arity(&mut self, name: &str, want: usize, got: usize, span: Span) {
        self.error(
            "glassbox::wrong_arity",
            span,
            format!(
                "`{name}` takes {want} argument{}, got {got}",
                if want == 1 { "" } else { "s" }
            ),
            "wrong number of arguments",
            match want {
                1 => format!("write `{name}(x)`"),
                _ => format!("write `{name}(prediction, target)`"),
            },
        );
    }

    /// A loss target: a data source (its width matches the prediction) or a label (its class
    /// count matches the logits, `cross_entropy` only).
    fn target(&mut self, e: &Expr, loss: Loss, pred: Shape) -> Option<Target> {
        let ExprKind::Name(n) = &e.kind else {
            self.error(
                "glassbox::bad_target",
                e.span,
                "a loss target is a data source or a label",
                "not a data source or label",
                "declare `data obs = csv(...)` and write `mse(y, obs)`",
            );
            return None;
        };
        match self.globals.get(n).map(|g| g.kind) {
            Some(GlobalKind::Data(i)) => {
                let d = self.m.data.get(i)?;
                let width = d.layout.width();
                if loss == Loss::CrossEntropy {
                    self.error(
                        "glassbox::bad_target",
                        e.span,
                        "`cross_entropy` compares logits with a label",
                        "a data source",
                        "declare `label c in 0..n` and write `cross_entropy(logits, c)`",
                    );
                    return None;
                }
                if !pred.is_error() && pred.size() != width {
                    self.error(
                        "glassbox::target_size",
                        e.span,
                        format!(
                            "the prediction is {pred} but `{n}` has {width} column{}",
                            if width == 1 { "" } else { "s" }
                        ),
                        format!("{width} column{}", if width == 1 { "" } else { "s" }),
                        "predict as many values as the data source has columns",
                    );
                    return None;
                }
                Some(Target::Data { data: i })
            }
            Some(GlobalKind::Label(i)) => {
                let classes = self.m.labels.get(i).map_or(0, |l| l.classes);
                if loss != Loss::CrossEntropy {
                    self.error(
                        "glassbox::bad_target",
                        e.span,
                        "a label is the target of `cross_entropy`",
                        "a label",
                        "write `cross_entropy(logits, c)`",
                    );
                    return None;
                }
                if !pred.is_error() && classes > 0 && pred != Shape::vector(classes) {
                    self.error(
                        "glassbox::target_size",
                        e.span,
                        format!("the logits are {pred} but `{n}` has {classes} classes"),
                        format!("{classes} classes"),
                        format!("predict a vector of {classes} logits"),
                    );
                    return None;
                }
                Some(Target::Label { label: i })
            }
            Some(GlobalKind::Broken) => None,
            Some(other) => {
                self.error(
                    "glassbox::bad_target",
                    e.span,
                    format!(
                        "`{n}` is a {}; a loss target is a data source or a label",
                        other.noun()
                    ),
                    "not a target",
                    "declare `data obs = csv(...)` and write `mse(y, obs)`",
                );
                None
            }
            None => {
                self.undefined("data source", n, e.span);
                None
            }
        }
    }
}
