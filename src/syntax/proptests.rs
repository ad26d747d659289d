//! Property: for generated ASTs of bounded depth, `parse(format(p)) == p` and `format` is
//! idempotent. Spans are ignored by `PartialEq`, so generated trees carry default spans.

use proptest::prelude::*;

use super::ast::*;
use super::{RESERVED, format, parse};
use crate::source::SourceFile;

fn sp() -> Span {
    Span::default()
}

fn e(kind: ExprKind) -> Expr {
    Expr { kind, span: sp() }
}

fn ident(name: String) -> Ident {
    Ident { name, span: sp() }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,5}".prop_filter("reserved", |n| !RESERVED.contains(&n.as_str()))
}

fn number() -> impl Strategy<Value = Expr> {
    prop_oneof![
        "[0-9]{1,4}",
        "[0-9]{1,3}\\.[0-9]{1,3}",
        "\\.[0-9]{1,2}",
        "[0-9]{1,2}(\\.[0-9])?[eE][+-]?[0-9]{1,2}",
    ]
    .prop_map(|text| {
        let value = text.parse::<f64>().unwrap_or(0.0);
        e(ExprKind::Num { value, text })
    })
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        4 => number(),
        4 => name().prop_map(|n| e(ExprKind::Name(n))),
        1 => "[a-z \"\\\\#]{0,6}".prop_map(|s| e(ExprKind::Str(s))),
    ]
}

fn binop() -> impl Strategy<Value = BinOp> {
    prop_oneof![
        Just(BinOp::Add),
        Just(BinOp::Sub),
        Just(BinOp::Mul),
        Just(BinOp::Div),
        Just(BinOp::Pow),
        Just(BinOp::MatMul),
    ]
}

fn call(inner: impl Strategy<Value = Expr> + Clone) -> impl Strategy<Value = Call> {
    (
        name(),
        prop::collection::vec(inner.clone(), 0..3),
        prop::collection::vec((name(), inner), 0..3),
        any::<bool>(),
    )
        .prop_map(|(callee, pos, named, semicolon)| {
            let semicolon = semicolon && !pos.is_empty() && !named.is_empty();
            let mut args: Vec<Arg> = pos
                .into_iter()
                .map(|value| Arg {
                    name: None,
                    value,
                    span: sp(),
                })
                .collect();
            args.extend(named.into_iter().map(|(n, value)| Arg {
                name: Some(ident(n)),
                value,
                span: sp(),
            }));
            Call {
                callee: ident(callee),
                args,
                parens: true,
                semicolon,
                span: sp(),
            }
        })
}

fn expr() -> impl Strategy<Value = Expr> + Clone {
    leaf().prop_recursive(4, 48, 4, |inner| {
        let boxed = |s: BoxedStrategy<Expr>| s.prop_map(Box::new);
        let b = inner.clone().boxed();
        prop_oneof![
            (binop(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| e(ExprKind::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r)
            })),
            inner.clone().prop_map(|x| e(ExprKind::Unary {
                op: UnOp::Neg,
                expr: Box::new(x)
            })),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| e(ExprKind::Vector(v))),
            prop::collection::vec(prop::collection::vec(inner.clone(), 1..3), 2..4)
                .prop_map(|m| e(ExprKind::Matrix(m))),
            (
                prop::option::of(boxed(b.clone())),
                prop::option::of(boxed(b.clone()))
            )
                .prop_map(|(start, end)| e(ExprKind::Range { start, end })),
            call(inner.clone()).prop_map(|c| e(ExprKind::Call(c))),
            (inner.clone(), prop::collection::vec(inner.clone(), 1..3)).prop_map(
                |(base, index)| {
                    e(ExprKind::Index {
                        base: Box::new(base),
                        index,
                    })
                }
            ),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| e(ExprKind::Decay {
                from: Box::new(a),
                to: Box::new(b)
            })),
            inner.prop_map(|x| e(ExprKind::TimeDeriv(Box::new(x)))),
        ]
    })
}

fn item() -> impl Strategy<Value = Item> {
    let kind = prop_oneof![
        expr().prop_map(ItemKind::Minimize),
        (name(), expr()).prop_map(|(n, value)| ItemKind::Const(vec![ConstDecl {
            name: ident(n),
            value,
            span: sp()
        }])),
        (
            name(),
            prop::option::of(prop::collection::vec(expr(), 1..3)),
            prop::option::of(expr()),
            any::<bool>()
        )
            .prop_map(|(n, shape, value, learn)| ItemKind::Param(vec![ParamDecl {
                name: ident(n),
                shape,
                value,
                learn,
                span: sp()
            }])),
        (name(), expr()).prop_map(|(n, rhs)| ItemKind::Equation(Equation::Ode {
            state: ident(n),
            rhs
        })),
        (name(), expr(), prop::option::of(expr())).prop_map(|(n, drift, diffusion)| {
            ItemKind::Equation(Equation::Sde {
                state: ident(n),
                drift,
                diffusion,
            })
        }),
        (name(), prop::collection::vec(name(), 0..3), expr()).prop_map(|(n, ps, body)| {
            ItemKind::Fn(FnDecl {
                name: ident(n),
                params: ps.into_iter().map(ident).collect(),
                body,
                span: sp(),
            })
        }),
        (call(expr()), any::<bool>(), prop::option::of(expr())).prop_map(|(mut c, bare, over)| {
            if bare {
                c.args.clear();
                c.parens = false;
                c.semicolon = false;
            }
            ItemKind::Solve(SolveClause {
                method: c,
                span_kind: over.map(SolveSpan::Over),
            })
        }),
    ];
    kind.prop_map(|kind| Item { kind, span: sp() })
}

fn check(p: &Program) -> Result<(), TestCaseError> {
    let out = format(p);
    let (q, diags) = parse(&SourceFile::new("gen.gbx", out.clone()));
    prop_assert!(diags.is_empty(), "{out}\n{diags:#?}");
    prop_assert_eq!(&q, p, "{}", out);
    prop_assert_eq!(format(&q), out);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn expressions_round_trip(x in expr()) {
        let p = Program {
            items: vec![Item { kind: ItemKind::Minimize(x), span: sp() }],
            ..Program::default()
        };
        check(&p)?;
    }

    #[test]
    fn programs_round_trip(items in prop::collection::vec(item(), 0..6)) {
        check(&Program { items, ..Program::default() })?;
    }
}
