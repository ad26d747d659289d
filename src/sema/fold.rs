//! Constant folding of typed expressions: what `const`, shapes, indices, options and initial
//! values need at check time. `None` means "not a constant" (it mentions a state, a param, a
//! net, `t`, ...); the caller decides whether that is an error.

use super::model::*;
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
        } => fold(expr)?.data.iter().map(|x| -x).collect(),
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
            (0..n)
                .map(|i| {
                    let (x, y) = (at(&a, i), at(&b, i));
                    match op {
                        BinOp::Add => x + y,
                        BinOp::Sub => x - y,
                        BinOp::Mul => x * y,
                        BinOp::Div => x / y,
                        BinOp::Pow => crate::ir::Binary::Pow.apply(x, y),
                        BinOp::MatMul => f64::NAN,
                    }
                })
                .collect()
        }
        TExprKind::Builtin { f, args } => {
            let vals = args.iter().map(fold).collect::<Option<Vec<Value>>>()?;
            let first = vals.first()?;
            match f {
                Builtin::Sum => vec![first.data.iter().sum()],
                Builtin::Mean => {
                    vec![first.data.iter().sum::<f64>() / first.data.len().max(1) as f64]
                }
                Builtin::Norm => vec![first.data.iter().map(|x| x * x).sum::<f64>().sqrt()],
                Builtin::Dot => {
                    let second = vals.get(1)?;
                    vec![
                        first
                            .data
                            .iter()
                            .zip(&second.data)
                            .map(|(x, y)| x * y)
                            .sum(),
                    ]
                }
                f => first.data.iter().map(|&x| elementwise(*f, x)).collect(),
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

pub(super) fn elementwise(f: Builtin, x: f64) -> f64 {
    match f {
        Builtin::Exp => x.exp(),
        Builtin::Log => x.ln(),
        Builtin::Sin => x.sin(),
        Builtin::Cos => x.cos(),
        Builtin::Tan => x.tan(),
        Builtin::Tanh => crate::ir::math::tanh(x),
        Builtin::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Builtin::Relu => x.max(0.0),
        Builtin::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        Builtin::Sqrt => x.sqrt(),
        Builtin::Abs => x.abs(),
        Builtin::Sum | Builtin::Mean | Builtin::Norm | Builtin::Dot => x,
    }
}
