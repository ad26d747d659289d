//! The dense Jacobian, one forward sweep per input column, with *sparse* tangents.
//!
//! A column's seed is one-hot. Pushed through the graph as a dense vector it would leave
//! `x ⊙ [1, 0, 0]` everywhere, and the constructors may not fold those (`x · 0 → 0` is not
//! exact). But the derivative of the seed's zero entries is exactly zero by construction, so
//! this pass tracks tangents as a few scalar entries at flat positions ([`Tan::Sparse`]) and
//! densifies only where an op mixes them (a mat-vec turns one entry into a column of the
//! matrix). Elementwise ops, concat, slice, index, sum and dot stay sparse, so for scalar
//! models each Jacobian entry is exactly its symbolic partial derivative.

use super::diff::{add_opt, binary_partials, dense_tangent, finish, reached_from, unary_partial};
use super::error::IrError;
use super::function::{Function, Output};
use super::graph::{Graph, NodeId, Op, Shape};

/// The most entries of a dense Jacobian: 2^22 = 4 194 304, a 2048 × 2048 matrix of 32 MiB.
/// The symbolic pass sweeps the graph once per column and holds every entry as a node, an
/// implicit solver factorises it (O(n³) per factorisation), so past a few thousand states
/// neither is useful; far past it (300 000 states: 720 GB) they would abort. `show
/// --jacobian`, `jacobian(e, X)`, the implicit solvers and `glassbox build` refuse larger ones
/// (`glassbox::jacobian_too_large`); `auto` stays explicit instead (`docs/solvers.md`).
pub const MAX_JACOBIAN_ENTRIES: usize = 1 << 22;

/// Whether an `m × n` dense Jacobian is within [`MAX_JACOBIAN_ENTRIES`] (without overflow).
pub fn jacobian_fits(m: usize, n: usize) -> bool {
    m.checked_mul(n).is_some_and(|e| e <= MAX_JACOBIAN_ENTRIES)
}

#[derive(Clone, Debug)]
enum Tan {
    Zero,
    Dense(NodeId),
    /// Nonzero scalar entries at flat (row-major) positions; sorted, unique, never empty.
    Sparse(Vec<(usize, NodeId)>),
}

fn from_opt(t: Option<NodeId>) -> Tan {
    t.map_or(Tan::Zero, Tan::Dense)
}

/// Element `i` of a value of any shape (a scalar broadcasts: its every element is itself).
fn element(g: &mut Graph, x: NodeId, i: usize) -> NodeId {
    match g.shape(x) {
        Shape::Scalar => x,
        Shape::Vector(_) => g.index(x, i),
        Shape::Matrix(..) => {
            let flat = g.flatten(x);
            g.index(flat, i)
        }
    }
}

/// Sums entries at equal positions and sorts; `Zero` when nothing is left.
fn sparse(g: &mut Graph, mut entries: Vec<(usize, NodeId)>) -> Tan {
    entries.sort_by_key(|&(i, _)| i);
    let mut out: Vec<(usize, NodeId)> = Vec::with_capacity(entries.len());
    for (i, e) in entries {
        match out.last_mut() {
            Some((j, acc)) if *j == i => *acc = g.add(*acc, e),
            _ => out.push((i, e)),
        }
    }
    if out.is_empty() {
        Tan::Zero
    } else {
        Tan::Sparse(out)
    }
}

/// The tangent as one node of `shape` (`None` for zero).
fn densify(g: &mut Graph, shape: Shape, t: &Tan) -> Option<NodeId> {
    match t {
        Tan::Zero => None,
        Tan::Dense(d) => Some(*d),
        Tan::Sparse(entries) => {
            if shape.is_scalar() {
                return entries.first().map(|&(_, e)| e);
            }
            let mut parts = Vec::new();
            let mut at = 0;
            for &(i, e) in entries {
                if i > at {
                    parts.push(g.zeros(Shape::Vector(i - at)));
                }
                parts.push(e);
                at = i + 1;
            }
            if shape.len() > at {
                parts.push(g.zeros(Shape::Vector(shape.len() - at)));
            }
            let v = g.concat(&parts);
            Some(g.reshape(v, shape))
        }
    }
}

/// Column `k` of a matrix node, as a vector (a row of its transpose).
fn column(g: &mut Graph, m: NodeId, k: usize) -> NodeId {
    let Shape::Matrix(rows, _) = g.shape(m) else {
        return m;
    };
    let mt = g.transpose(m);
    let flat = g.flatten(mt);
    g.slice(flat, k * rows, rows)
}

/// The sparse-aware rule for `node`, or `None` when the op has none (then it densifies).
fn sparse_rule(g: &mut Graph, id: NodeId, tan: &[Tan]) -> Option<Tan> {
    let node = g.node(id).clone();
    let t = |x: NodeId| &tan[x.index()];
    let scaled = |g: &mut Graph, p: NodeId, entries: &[(usize, NodeId)]| -> Vec<(usize, NodeId)> {
        entries
            .iter()
            .map(|&(i, e)| {
                let pi = element(g, p, i);
                (i, g.mul(pi, e))
            })
            .collect()
    };
    Some(match node.op {
        Op::Unary(op, x) => {
            let Tan::Sparse(entries) = t(x) else {
                return None;
            };
            match unary_partial(g, op, x, id) {
                None => Tan::Zero,
                Some(p) => {
                    let e = scaled(g, p, entries);
                    sparse(g, e)
                }
            }
        }
        Op::Binary(op, a, b) => {
            let sparse_or_zero = |x: NodeId| matches!(t(x), Tan::Sparse(_) | Tan::Zero);
            if !(sparse_or_zero(a) && sparse_or_zero(b)) {
                return None;
            }
            let want = (!matches!(t(a), Tan::Zero), !matches!(t(b), Tan::Zero));
            let (pa, pb) = binary_partials(g, op, (a, b, id), want);
            let mut entries = Vec::new();
            for (x, p) in [(a, pa), (b, pb)] {
                if let (Tan::Sparse(es), Some(p)) = (t(x), p) {
                    entries.extend(scaled(g, p, es));
                }
            }
            sparse(g, entries)
        }
        Op::Concat(ref parts) => {
            let mut entries = Vec::new();
            let mut off = 0;
            for &p in parts {
                let s = g.shape(p);
                match t(p) {
                    Tan::Zero => {}
                    Tan::Dense(d) if s.is_scalar() => entries.push((off, *d)),
                    Tan::Dense(_) => return None,
                    Tan::Sparse(es) => entries.extend(es.iter().map(|&(i, e)| (off + i, e))),
                }
                off += s.len();
            }
            sparse(g, entries)
        }
        Op::Slice { x, start } => {
            let Tan::Sparse(es) = t(x) else { return None };
            let len = node.shape.len();
            let kept = es
                .iter()
                .filter(|&&(i, _)| start <= i && i < start + len)
                .map(|&(i, e)| (i - start, e))
                .collect();
            sparse(g, kept)
        }
        Op::Index { x, i } => {
            let Tan::Sparse(es) = t(x) else { return None };
            es.iter()
                .find(|&&(j, _)| j == i)
                .map_or(Tan::Zero, |&(_, e)| Tan::Dense(e))
        }
        Op::Sum(x) => {
            let Tan::Sparse(es) = t(x) else { return None };
            let mut acc = None;
            for &(_, e) in es {
                acc = add_opt(g, acc, Some(e));
            }
            from_opt(acc)
        }
        Op::Reshape(x) => {
            let Tan::Sparse(es) = t(x) else { return None };
            Tan::Sparse(es.clone())
        }
        Op::Dot(a, b) => {
            let sparse_or_zero = |x: NodeId| matches!(t(x), Tan::Sparse(_) | Tan::Zero);
            if !(sparse_or_zero(a) && sparse_or_zero(b)) {
                return None;
            }
            let mut acc = None;
            for (x, other) in [(a, b), (b, a)] {
                if let Tan::Sparse(es) = t(x) {
                    for &(i, e) in es {
                        let o = element(g, other, i);
                        let c = g.mul(o, e);
                        acc = add_opt(g, acc, Some(c));
                    }
                }
            }
            from_opt(acc)
        }
        Op::MatVec(m, x) => {
            let dense_x = match t(x) {
                Tan::Sparse(es) => {
                    // M·(Σ e_k 1_k) = Σ e_k · column k of M.
                    let mut acc = None;
                    for &(k, e) in es {
                        let col = column(g, m, k);
                        let c = g.mul(col, e);
                        acc = add_opt(g, acc, Some(c));
                    }
                    acc
                }
                Tan::Zero => None,
                Tan::Dense(_) => return None,
            };
            let (from_m, dense_m) = match t(m) {
                // A weight entry (r, c) moves output r by e · x[c].
                Tan::Sparse(es) => {
                    let Shape::Matrix(_, cols) = g.shape(m) else {
                        return None;
                    };
                    let entries = es
                        .iter()
                        .map(|&(f, e)| {
                            let xc = element(g, x, f % cols);
                            (f / cols, g.mul(e, xc))
                        })
                        .collect();
                    (sparse(g, entries), None)
                }
                Tan::Zero => (Tan::Zero, None),
                Tan::Dense(d) => (Tan::Zero, Some(g.matvec(*d, x))),
            };
            let dense = add_opt(g, dense_x, dense_m);
            match (from_m, dense) {
                (sp, None) => sp,
                (Tan::Zero, Some(d)) => Tan::Dense(d),
                (sp, Some(d)) => {
                    let s = densify(g, node.shape, &sp);
                    from_opt(add_opt(g, s, Some(d)))
                }
            }
        }
        _ => return None,
    })
}

/// The dense Jacobian of `f`'s flat output with respect to argument `wrt`: one output named
/// `jacobian`, a matrix (outputs × inputs), row-major.
pub fn jacobian(f: &Function, wrt: &str) -> Result<Function, IrError> {
    f.validate()?;
    let wrt_arg = f.arg(wrt)?;
    let n = f.args[wrt_arg].len;
    let m = f.output_len();
    if !jacobian_fits(m, n) {
        return Err(IrError::JacobianTooLarge {
            rows: m,
            cols: n,
            limit: MAX_JACOBIAN_ENTRIES,
        });
    }
    let mut g = f.graph.clone();
    let upto = g.len();
    let targets: Vec<NodeId> = f.outputs.iter().map(|o| o.node).collect();
    let live = reached_from(&g, upto, &targets);
    let zero = g.constant(0.0);
    let mut entries = vec![zero; m * n];
    for j in 0..n {
        let mut tan = vec![Tan::Zero; upto];
        for i in 0..upto {
            if !live[i] {
                continue;
            }
            let id = NodeId(i as u32);
            let node = g.node(id).clone();
            tan[i] = match node.op {
                Op::Const(_) => Tan::Zero,
                Op::Input { arg, offset } => {
                    let len = node.shape.len();
                    if arg != wrt_arg || j < offset || j >= offset + len {
                        Tan::Zero
                    } else if node.shape.is_scalar() {
                        // Scalars are never sparse: a scalar's tangent broadcasts.
                        Tan::Dense(g.constant(1.0))
                    } else {
                        Tan::Sparse(vec![(j - offset, g.constant(1.0))])
                    }
                }
                _ => match sparse_rule(&mut g, id, &tan) {
                    Some(Tan::Sparse(es)) if node.shape.is_scalar() => Tan::Dense(es[0].1),
                    Some(t) => t,
                    None => {
                        // No sparse rule: densify the operands and use the dense one.
                        let ops = super::graph::operands(&node.op);
                        let mut dense = Vec::with_capacity(ops.len());
                        for x in ops {
                            let s = g.shape(x);
                            dense.push((x, densify(&mut g, s, &tan[x.index()])));
                        }
                        let lookup =
                            |x: NodeId| dense.iter().find(|(y, _)| *y == x).and_then(|(_, d)| *d);
                        from_opt(dense_tangent(&mut g, id, &node, lookup))
                    }
                },
            };
        }
        // Gather column j: sparse entries directly, dense tangents element by element.
        let mut row = 0;
        for o in &f.outputs {
            let s = g.shape(o.node);
            match tan[o.node.index()].clone() {
                Tan::Zero => {}
                Tan::Sparse(es) => {
                    for (i, e) in es {
                        entries[(row + i) * n + j] = e;
                    }
                }
                Tan::Dense(d) => {
                    for i in 0..s.len() {
                        entries[(row + i) * n + j] = element(&mut g, d, i);
                    }
                }
            }
            row += s.len();
        }
    }
    let flat = g.concat(&entries);
    let node = g.reshape(flat, Shape::Matrix(m, n));
    let outputs = vec![Output {
        name: "jacobian".to_string(),
        node,
    }];
    finish(f, g, f.args.clone(), outputs)
}
