//! Named options of clauses and constructors (`tsit5(rtol = 1e-7)`, `adam(lr = 1e-3)`,
//! `mlp(...; act = tanh)`): unknown names get a "did you mean", values are checked against the
//! type the option expects, and the error names that type.

use std::collections::HashMap;

use super::checker::Checker;
use super::model::Shape;
use crate::diag::{Diag, did_you_mean};
use crate::syntax::ast::{Arg, Expr, ExprKind, Ident};

/// What an option's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Want {
    /// A number > 0.
    Positive,
    /// A number ≥ 0.
    NonNegative,
    /// A number in [0, 1).
    UnitInterval,
    /// A number strictly between 0 and 1.
    Fraction,
    /// A number in (0, 1].
    UpToOne,
    /// A finite number > 1.
    AboveOne,
    /// An integer > 0.
    PositiveInt,
    /// An integer ≥ 0.
    Int,
}

impl Want {
    fn describe(self) -> &'static str {
        match self {
            Want::Positive => "a positive number",
            Want::NonNegative => "a non-negative number",
            Want::UnitInterval => "a number in [0, 1)",
            Want::Fraction => "a number strictly between 0 and 1",
            Want::UpToOne => "a number in (0, 1]",
            Want::AboveOne => "a number greater than 1",
            Want::PositiveInt => "a positive integer",
            Want::Int => "a non-negative integer",
        }
    }

    fn accepts(self, x: f64) -> bool {
        let int = x.fract() == 0.0 && x.abs() < 1e15;
        match self {
            Want::Positive => x > 0.0 && x.is_finite(),
            Want::NonNegative => x >= 0.0 && x.is_finite(),
            Want::UnitInterval => (0.0..1.0).contains(&x),
            Want::Fraction => x > 0.0 && x < 1.0,
            Want::UpToOne => x > 0.0 && x <= 1.0,
            Want::AboveOne => x > 1.0 && x.is_finite(),
            Want::PositiveInt => int && x > 0.0,
            Want::Int => int && x >= 0.0,
        }
    }
}

impl Checker<'_> {
    /// Split `args` into named options, reporting positional ones (`positional` of them are
    /// allowed first and returned separately), unknown names and repeats.
    pub fn named_options<'e>(
        &mut self,
        args: &'e [Arg],
        positional: usize,
        known: &[&str],
        owner: &str,
    ) -> (Vec<&'e Arg>, HashMap<&'e str, (&'e Ident, &'e Expr)>) {
        let mut pos = Vec::new();
        let mut named: HashMap<&str, (&Ident, &Expr)> = HashMap::new();
        for a in args {
            let Some(name) = &a.name else {
                if pos.len() < positional && named.is_empty() {
                    pos.push(a);
                } else {
                    let list = known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.error(
                        "glassbox::unexpected_positional",
                        a.span,
                        format!("`{owner}` takes no positional argument here"),
                        "unexpected",
                        format!("name the option (`name = value`); `{owner}` knows {list}"),
                    );
                }
                continue;
            };
            if !known.contains(&name.name.as_str()) {
                let help = match did_you_mean(&name.name, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "`{owner}` knows {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.error(
                    "glassbox::unknown_option",
                    name.span,
                    format!("`{owner}` has no option `{}`", name.name),
                    "unknown option",
                    help,
                );
                continue;
            }
            if let Some((prev, _)) = named.get(name.name.as_str()) {
                let prev = prev.span;
                self.push(
                    Diag::error(
                        "glassbox::duplicate_option",
                        format!("option `{}` is given twice", name.name),
                    )
                    .label(name.span, "given again here")
                    .label(prev, "first here")
                    .help("give each option once"),
                );
                continue;
            }
            named.insert(name.name.as_str(), (name, &a.value));
        }
        (pos, named)
    }

    /// A numeric option value checked against `want`.
    pub fn option_number(&mut self, name: &str, e: &Expr, want: Want) -> Option<f64> {
        let found = match &e.kind {
            ExprKind::Str(_) => Some("a string".to_string()),
            ExprKind::Name(n) if !self.globals.contains_key(n) => Some(format!("the name `{n}`")),
            ExprKind::Vector(_) | ExprKind::Matrix(_) => Some("a vector".to_string()),
            ExprKind::Range { .. } => Some("a range".to_string()),
            ExprKind::Call(c) if !self.globals.contains_key(&c.callee.name) => {
                Some(format!("a call of `{}`", c.callee.name))
            }
            _ => None,
        };
        let value = match found {
            Some(f) => Err(f),
            None => {
                let v = self.const_expr(e)?;
                match (v.shape, v.data.first()) {
                    (Shape::Scalar, Some(&x)) if want.accepts(x) => Ok(x),
                    (Shape::Scalar, Some(&x)) => Err(format!("{x}")),
                    (s, _) => Err(s.to_string()),
                }
            }
        };
        match value {
            Ok(x) => Some(x),
            Err(found) => {
                self.error(
                    "glassbox::bad_option_value",
                    e.span,
                    format!("`{name}` expects {}, found {found}", want.describe()),
                    format!("expected {}", want.describe()),
                    format!("give `{name}` {}", want.describe()),
                );
                None
            }
        }
    }

    /// An option whose value is one of a few bare words (`act = tanh`, `sample = unbiased`).
    pub fn option_word<'w>(&mut self, name: &str, e: &Expr, words: &[&'w str]) -> Option<&'w str> {
        let given = match &e.kind {
            ExprKind::Name(n) => n.as_str(),
            _ => "",
        };
        if let Some(w) = words.iter().find(|w| **w == given) {
            return Some(w);
        }
        let list = words
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match did_you_mean(given, words.iter().copied()) {
            Some(s) if !given.is_empty() => {
                format!("did you mean `{s}`? `{name}` is one of {list}")
            }
            _ => format!("`{name}` is one of {list}"),
        };
        let found = if given.is_empty() {
            "this".to_string()
        } else {
            format!("`{given}`")
        };
        self.error(
            "glassbox::bad_option_value",
            e.span,
            format!("`{name}` expects one of {list}, found {found}"),
            "unknown value",
            help,
        );
        None
    }

    /// A string option (`time = "t"`).
    pub fn option_string(&mut self, name: &str, e: &Expr) -> Option<String> {
        if let ExprKind::Str(s) = &e.kind {
            return Some(s.clone());
        }
        self.error(
            "glassbox::bad_option_value",
            e.span,
            format!("`{name}` expects a string"),
            "expected a string",
            format!("write `{name} = \"...\"`"),
        );
        None
    }
}
