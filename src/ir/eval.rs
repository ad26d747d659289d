//! The reference interpreter: the oracle every backend (JIT, tape) and every derivative pass is
//! tested against. Deliberately plain: one sample at a time, one `Vec<f64>` per live node,
//! row-major, no cleverness.
//!
//! Buffers: argument `k` is `[batch, len_k]` row-major when batched, `[len_k]` when not (shared
//! by the batch). The result is `[batch, output_len]`.

use super::error::IrError;
use super::function::Function;
use super::graph::{NodeId, Op, Shape};
use crate::math;

/// Evaluates `f` on `batch` samples. Errors on a wrong number or length of buffers, or on an
/// invalid function; never panics on well-formed input.
pub fn eval(f: &Function, args: &[&[f64]], batch: usize) -> Result<Vec<f64>, IrError> {
    f.validate()?;
    if args.len() != f.args.len() {
        return Err(IrError::ArgCount {
            expected: f.args.len(),
            got: args.len(),
        });
    }
    for (spec, buf) in f.args.iter().zip(args) {
        let expected = if spec.batched {
            batch * spec.len
        } else {
            spec.len
        };
        if buf.len() != expected {
            return Err(IrError::BufferLength {
                name: spec.name.clone(),
                expected,
                got: buf.len(),
            });
        }
    }
    let live = f.live();
    let out_len = f.output_len();
    let mut out = Vec::with_capacity(batch * out_len);
    for b in 0..batch {
        let sample: Vec<&[f64]> = f
            .args
            .iter()
            .zip(args)
            .map(|(spec, buf)| {
                if spec.batched {
                    &buf[b * spec.len..(b + 1) * spec.len]
                } else {
                    *buf
                }
            })
            .collect();
        let values = eval_sample(f, &sample, &live);
        for o in &f.outputs {
            out.extend_from_slice(&values[o.node.index()]);
        }
    }
    Ok(out)
}

/// Evaluates one sample; `args` have been validated against the specs.
fn eval_sample(f: &Function, args: &[&[f64]], live: &[bool]) -> Vec<Vec<f64>> {
    let g = &f.graph;
    let mut v: Vec<Vec<f64>> = Vec::with_capacity(g.len());
    for (id, node) in g.nodes() {
        if !live[id.index()] {
            v.push(Vec::new());
            continue;
        }
        let val = |x: NodeId| -> &[f64] { &v[x.index()] };
        let shape = node.shape;
        let value: Vec<f64> = match node.op {
            Op::Const(bits) => vec![f64::from_bits(bits)],
            Op::Input { arg, offset } => args[arg][offset..offset + shape.len()].to_vec(),
            Op::Unary(u, x) => val(x).iter().map(|&a| u.apply(a)).collect(),
            Op::Binary(op, a, b) => {
                let (xa, xb) = (val(a), val(b));
                (0..shape.len())
                    .map(|i| {
                        let ea = if xa.len() == 1 { xa[0] } else { xa[i] };
                        let eb = if xb.len() == 1 { xb[0] } else { xb[i] };
                        op.apply(ea, eb)
                    })
                    .collect()
            }
            Op::Broadcast(s) => vec![val(s)[0]; shape.len()],
            Op::Sum(x) => vec![math::sum(val(x))],
            Op::Dot(a, b) => vec![math::dot(val(a), val(b))],
            Op::MatVec(m, x) => {
                let (mv, xv) = (val(m), val(x));
                let n = xv.len();
                (0..shape.len())
                    .map(|r| math::dot(&mv[r * n..(r + 1) * n], xv))
                    .collect()
            }
            Op::MatMul(a, b) => {
                let (av, bv) = (val(a), val(b));
                let (m, n) = dims(shape);
                let k = av.len().checked_div(m).unwrap_or(0);
                let mut r = vec![0.0; m * n];
                for i in 0..m {
                    for j in 0..n {
                        r[i * n + j] = (0..k).map(|l| av[i * k + l] * bv[l * n + j]).sum();
                    }
                }
                r
            }
            Op::Transpose(a) => {
                let av = val(a);
                let (m, n) = dims(shape); // shape of the result: n×m source
                let mut r = vec![0.0; m * n];
                for i in 0..m {
                    for j in 0..n {
                        r[i * n + j] = av[j * m + i];
                    }
                }
                r
            }
            Op::Outer(a, b) => {
                let (av, bv) = (val(a), val(b));
                av.iter()
                    .flat_map(|&p| bv.iter().map(move |&q| p * q))
                    .collect()
            }
            Op::Concat(ref parts) => parts.iter().flat_map(|&p| val(p).iter().copied()).collect(),
            Op::Slice { x, start } => val(x)[start..start + shape.len()].to_vec(),
            Op::Index { x, i } => vec![val(x)[i]],
            Op::Reshape(x) => val(x).to_vec(),
        };
        v.push(value);
    }
    v
}

fn dims(shape: Shape) -> (usize, usize) {
    match shape {
        Shape::Matrix(m, n) => (m, n),
        Shape::Vector(n) => (n, 1),
        Shape::Scalar => (1, 1),
    }
}
