//! Constant folding of typed expressions: what `const`, shapes, indices, options and initial
//! values need at check time. `None` means "not a constant" (it mentions a state, a param, a
//! net, `t`, ...); the caller decides whether that is an error.
//!
//! Every scalar operation is `crate::math`'s, the one the IR interpreter and the JIT run, and
//! each builtin is computed as `ir::lower` lowers it, so folding `c = f(x)` gives the bits that
//! evaluating `f(x)` gives (`tests/ir/fold_eval.rs` checks every builtin).

use super::model::*;
use crate::math::{self, Binary, Unary};
use crate::syntax::ast::{BinOp, UnOp};

pub(super) fn fold(e: &TExpr) -> Option<Value> {
    let shape = e.shape;
    if shape.is_error() {
        return None;
    }
    let data = match &e.kind {
        TExprKind::Const { value } => value.clone(),
        TExprKind::Vector { items } => items
            .iter()
            .map(|x| fold(x).and_then(|v| v.data.first().copied()))
            .collect::<Option<Vec<f64>>>()?,
        TExprKind::Matrix { rows } => rows
            .iter()
            .flatten()
            .map(|x| fold(x).and_then(|v| v.data.first().copied()))
            .collect::<Option<Vec<f64>>>()?,
        TExprKind::Unary {
            op: UnOp::Neg,
            expr,
        } => fold(expr)?
            .data
            .iter()
            .map(|&x| Unary::Neg.apply(x))
            .collect(),
        TExprKind::Binary {
            op: BinOp::MatMul,
            lhs,
            rhs,
        } => {
            let (a, b) = (fold(lhs)?, fold(rhs)?);
            let (m, n) = match a.shape {
                Shape::Matrix { rows, cols } => (rows, cols),
                _ => return None,
            };
            let k = match b.shape {
                Shape::Vector { .. } => 1,
                Shape::Matrix { cols, .. } => cols,
                _ => return None,
            };
            let mut out = vec![0.0; m * k];
            for i in 0..m {
                for j in 0..k {
                    // `ir::eval`'s `MatMul` order: products in `l` order, summed from -0.
                    out[i * k + j] = (0..n).map(|l| a.data[i * n + l] * b.data[l * k + j]).sum();
                }
            }
            out
        }
        TExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (fold(lhs)?, fold(rhs)?);
            let n = shape.size();
            let at = |v: &Value, i: usize| {
                if v.data.len() == 1 {
                    v.data[0]
                } else {
                    v.data[i]
                }
            };
            if (a.data.len() != 1 && a.data.len() != n) || (b.data.len() != 1 && b.data.len() != n)
            {
                return None;
            }
            let op = scalar_binary(*op)?;
            (0..n).map(|i| op.apply(at(&a, i), at(&b, i))).collect()
        }
        TExprKind::Builtin { f, args } => {
            let vals = args.iter().map(fold).collect::<Option<Vec<Value>>>()?;
            let first = vals.first()?;
            if let Some(op) = f.unary() {
                first.data.iter().map(|&x| op.apply(x)).collect()
            } else {
                vec![reduce(
                    *f,
                    &first.data,
                    vals.get(1).map(|v| v.data.as_slice()),
                )?]
            }
        }
        TExprKind::Concat { items } => {
            let mut out = Vec::new();
            for x in items {
                out.extend(fold(x)?.data);
            }
            out
        }
        TExprKind::Index { base, index } => {
            let b = fold(base)?;
            let cols = match b.shape {
                Shape::Matrix { cols, .. } => cols,
                _ => 1,
            };
            let axis = |sel: &IndexSel| match *sel {
                IndexSel::At { i } => i..i + 1,
                IndexSel::Slice { start, end } => start..end,
            };
            match (b.shape, index.as_slice()) {
                (Shape::Vector { .. }, [s]) => b.data.get(axis(s))?.to_vec(),
                (Shape::Matrix { .. }, [r]) => {
                    let rows = axis(r);
                    b.data.get(rows.start * cols..rows.end * cols)?.to_vec()
                }
                (Shape::Matrix { .. }, [r, c]) => {
                    let mut out = Vec::new();
                    for i in axis(r) {
                        for j in axis(c) {
                            out.push(*b.data.get(i * cols + j)?);
                        }
                    }
                    out
                }
                _ => return None,
            }
        }
        TExprKind::State { .. }
        | TExprKind::StateAt { .. }
        | TExprKind::Param { .. }
        | TExprKind::Input { .. }
        | TExprKind::Output { .. }
        | TExprKind::Time
        | TExprKind::NetApply { .. }
        | TExprKind::Jacobian { .. }
        | TExprKind::TimeDeriv { .. } => return None,
    };
    (data.len() == shape.size()).then_some(Value { shape, data })
}

/// The scalar operation of an elementwise operator (`@` is not one).
fn scalar_binary(op: BinOp) -> Option<Binary> {
    Some(match op {
        BinOp::Add => Binary::Add,
        BinOp::Sub => Binary::Sub,
        BinOp::Mul => Binary::Mul,
        BinOp::Div => Binary::Div,
        BinOp::Pow => Binary::Pow,
        BinOp::MatMul => return None,
    })
}

/// A reduction builtin, as `ir::lower` builds it: `mean` is `sum / n`, `norm` is
/// `sqrt(sum(square))`. `None` for an elementwise builtin or a missing second argument.
fn reduce(f: Builtin, x: &[f64], y: Option<&[f64]>) -> Option<f64> {
    Some(match f {
        Builtin::Sum => math::sum(x),
        Builtin::Mean => Binary::Div.apply(math::sum(x), x.len() as f64),
        Builtin::Norm => {
            let squares: Vec<f64> = x.iter().map(|&v| Unary::Square.apply(v)).collect();
            Unary::Sqrt.apply(math::sum(&squares))
        }
        Builtin::Dot => math::dot(x, y?),
        _ => return None,
    })
}
