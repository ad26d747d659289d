//! The arena DAG: nodes, shapes, and the smart constructors that hash-cons them.
//!
//! Invariants:
//! - A node's operands always have smaller ids than the node (the arena is in topological
//!   order), so every pass is one forward or backward sweep over `0..len`.
//! - Structurally equal nodes are one node (`intern`); commutative operands (`+`, `*`, `dot`)
//!   are put in a canonical order first, so `a + b` and `b + a` are one node too.
//! - Constructors fold constants with the very functions the interpreter uses
//!   ([`Unary::apply`], [`Binary::apply`] of `crate::math`), and rewrite only by identities
//!   exact in IEEE arithmetic (listed in `docs/ir.md` and on [`Graph::binary`]).
//! - A shape mismatch never panics: the constructor records an [`IrError`] (the graph is
//!   "poisoned", see [`Graph::error`]) and returns a node of the shape it guessed. Passes check
//!   the poison before handing a function out. User shape errors are caught earlier, by `sema`.
//!
//! The tensor constructors (broadcast, sum, dot, mat-vec, concat, slice, …) live in `tensor.rs`.

use std::collections::HashMap;

use super::error::IrError;

/// Index of a node in its [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Shapes are row-major: a `Matrix(m, n)` is `m` rows of `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    Scalar,
    Vector(usize),
    Matrix(usize, usize),
}

impl Shape {
    /// Number of `f64`s in a value of this shape.
    pub fn len(self) -> usize {
        match self {
            Shape::Scalar => 1,
            Shape::Vector(n) => n,
            Shape::Matrix(m, n) => m * n,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn is_scalar(self) -> bool {
        self == Shape::Scalar
    }
}

/// The elementwise operators are the scalar-math module's: their semantics live there, once,
/// for folding, the interpreter and the JIT alike.
pub use crate::math::{Binary, Unary};

/// Whether the constructor may put the operands in canonical order (exact in IEEE arithmetic).
fn commutative(op: Binary) -> bool {
    matches!(op, Binary::Add | Binary::Mul)
}

/// The node set. Shape-determining data that the operands do not fix (an input's shape, a
/// slice's length, a broadcast's target) lives in [`Node::shape`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A scalar constant, stored as its bit pattern so that `-0.0` and `0.0` stay distinct.
    Const(u64),
    /// `arg[offset .. offset + shape.len()]` of the function's argument number `arg`, read
    /// row-major into the node's shape (a weight matrix is one matrix-shaped input).
    Input {
        arg: usize,
        offset: usize,
    },
    Unary(Unary, NodeId),
    Binary(Binary, NodeId, NodeId),
    /// A scalar repeated to the node's shape.
    Broadcast(NodeId),
    /// Sum of all elements → scalar.
    Sum(NodeId),
    /// Vector · vector → scalar.
    Dot(NodeId, NodeId),
    /// Matrix(m, n) · vector(n) → vector(m).
    MatVec(NodeId, NodeId),
    /// Matrix(m, k) · matrix(k, n) → matrix(m, n).
    MatMul(NodeId, NodeId),
    Transpose(NodeId),
    /// vector(m) ⊗ vector(n) → matrix(m, n).
    Outer(NodeId, NodeId),
    /// Scalars and vectors laid end to end → vector (also the "pack" of scalars).
    Concat(Vec<NodeId>),
    /// `x[start .. start + len]` of a vector → vector(len).
    Slice {
        x: NodeId,
        start: usize,
    },
    /// `x[i]` of a vector → scalar.
    Index {
        x: NodeId,
        i: usize,
    },
    /// Same data, another shape of equal length (row-major).
    Reshape(NodeId),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub op: Op,
    pub shape: Shape,
}

/// The arena. Build it only through the constructors below.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    index: HashMap<Node, NodeId>,
    error: Option<IrError>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Precondition: `id` belongs to this graph (ids are only made by its constructors).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn shape(&self, id: NodeId) -> Shape {
        self.node(id).shape
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (NodeId(i as u32), n))
    }

    /// The first shape error any constructor met, if any.
    pub fn error(&self) -> Option<&IrError> {
        self.error.as_ref()
    }

    /// The scalar value of a constant node.
    pub fn const_value(&self, id: NodeId) -> Option<f64> {
        match self.node(id).op {
            Op::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    /// The value of a constant node or of a broadcast constant.
    pub(super) fn const_like(&self, id: NodeId) -> Option<f64> {
        match self.node(id).op {
            Op::Const(bits) => Some(f64::from_bits(bits)),
            Op::Broadcast(s) => self.const_value(s),
            _ => None,
        }
    }

    fn is_const_bits(&self, id: NodeId, value: f64) -> bool {
        self.const_like(id)
            .is_some_and(|c| c.to_bits() == value.to_bits())
    }

    /// Canonical operand order of commutative ops: constants, then computed nodes, then
    /// inputs (so `W·x + b` and `3 * y²` read naturally), ties by id.
    fn order_key(&self, id: NodeId) -> (u8, NodeId) {
        let class = match self.node(id).op {
            Op::Const(_) | Op::Broadcast(_) => 0,
            Op::Input { .. } => 2,
            _ => 1,
        };
        (class, id)
    }

    pub(super) fn intern(&mut self, op: Op, shape: Shape) -> NodeId {
        let node = Node { op, shape };
        if let Some(&id) = self.index.get(&node) {
            return id;
        }
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(node.clone());
        self.index.insert(node, id);
        id
    }

    /// The node `op` of `shape` if this graph already holds it (hash-consing's lookup).
    pub(crate) fn find(&self, op: &Op, shape: Shape) -> Option<NodeId> {
        self.index
            .get(&Node {
                op: op.clone(),
                shape,
            })
            .copied()
    }

    pub(super) fn poison(&mut self, op: &'static str, detail: String) {
        if self.error.is_none() {
            self.error = Some(IrError::Shape { op, detail });
        }
    }

    pub(crate) fn inherit_error(&mut self, e: IrError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    // ---- leaves ----------------------------------------------------------------------------

    pub fn constant(&mut self, value: f64) -> NodeId {
        self.intern(Op::Const(value.to_bits()), Shape::Scalar)
    }

    /// A constant of any shape, every element `value`.
    pub fn filled(&mut self, value: f64, shape: Shape) -> NodeId {
        let c = self.constant(value);
        self.broadcast(c, shape)
    }

    pub fn zeros(&mut self, shape: Shape) -> NodeId {
        self.filled(0.0, shape)
    }

    /// Reads `shape.len()` values of argument `arg` from `offset`. Bounds are checked when the
    /// graph becomes a [`super::Function`].
    pub fn input(&mut self, arg: usize, offset: usize, shape: Shape) -> NodeId {
        self.intern(Op::Input { arg, offset }, shape)
    }

    // ---- elementwise -----------------------------------------------------------------------

    /// Identities: `neg(neg x) → x`, `neg(x - y)` is left alone (not exact for x = y),
    /// constants fold, `f(broadcast c) → broadcast f(c)`, `x^2` is `square`.
    pub fn unary(&mut self, op: Unary, x: NodeId) -> NodeId {
        let shape = self.shape(x);
        if let Some(c) = self.const_value(x) {
            return self.constant(op.apply(c));
        }
        if let Op::Broadcast(s) = self.node(x).op
            && let Some(c) = self.const_value(s)
        {
            let folded = self.constant(op.apply(c));
            return self.broadcast(folded, shape);
        }
        if op == Unary::Neg
            && let Op::Unary(Unary::Neg, inner) = self.node(x).op
        {
            return inner;
        }
        self.intern(Op::Unary(op, x), shape)
    }

    pub fn neg(&mut self, x: NodeId) -> NodeId {
        self.unary(Unary::Neg, x)
    }

    /// Elementwise binary operation with scalar broadcasting.
    ///
    /// Identities applied (each exact for every IEEE value of `x`, including ±0, ±∞, NaN):
    /// `x * 1 → x`, `x * -1 → -x`, `x / 1 → x`, `x / -1 → -x`, `x - (+0) → x`,
    /// `x + (-0) → x`, `x + (-y) → x - y`, `x - (-y) → x + y`, `x ^ 1 → x`,
    /// `x ^ 0 → 1` (IEEE pow(x, ±0) = 1 even for NaN), `x ^ 2 → square(x)` (x² is *defined*
    /// as x·x), `broadcast(a) ∘ y → a ∘ y` when `y` has the full shape. Not applied, because
    /// not exact: `x + 0` (fails for -0), `x * 0` (fails for ∞, NaN, -x), `x - x`, `x / x`.
    pub fn binary(&mut self, op: Binary, a: NodeId, b: NodeId) -> NodeId {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let shape = if sa == sb || sb.is_scalar() {
            sa
        } else if sa.is_scalar() {
            sb
        } else {
            self.poison(op.name(), format!("operands of shapes {sa:?} and {sb:?}"));
            sa
        };
        // Constants fold, also through broadcasts.
        if let (Some(ca), Some(cb)) = (self.const_like(a), self.const_like(b)) {
            let c = self.constant(op.apply(ca, cb));
            return self.broadcast(c, shape);
        }
        // A broadcast operand is redundant next to a full-shape operand.
        if let Op::Broadcast(s) = self.node(a).op
            && sb == shape
        {
            return self.binary(op, s, b);
        }
        if let Op::Broadcast(s) = self.node(b).op
            && sa == shape
        {
            return self.binary(op, a, s);
        }
        let (a, b) = if commutative(op) && self.order_key(b) < self.order_key(a) {
            (b, a)
        } else {
            (a, b)
        };
        let (sa, sb) = (self.shape(a), self.shape(b));
        match op {
            Binary::Mul => {
                if self.is_const_bits(b, 1.0) && sa == shape {
                    return a;
                }
                if self.is_const_bits(a, 1.0) && sb == shape {
                    return b;
                }
                if self.is_const_bits(b, -1.0) && sa == shape {
                    return self.neg(a);
                }
                if self.is_const_bits(a, -1.0) && sb == shape {
                    return self.neg(b);
                }
            }
            Binary::Div => {
                if self.is_const_bits(b, 1.0) && sa == shape {
                    return a;
                }
                if self.is_const_bits(b, -1.0) && sa == shape {
                    return self.neg(a);
                }
            }
            Binary::Sub => {
                if self.is_const_bits(b, 0.0) && sa == shape {
                    return a;
                }
                if let Op::Unary(Unary::Neg, y) = self.node(b).op
                    && self.shape(y) == sb
                {
                    return self.binary(Binary::Add, a, y);
                }
            }
            Binary::Add => {
                if self.is_const_bits(b, -0.0) && sa == shape {
                    return a;
                }
                if self.is_const_bits(a, -0.0) && sb == shape {
                    return b;
                }
                if let Op::Unary(Unary::Neg, y) = self.node(b).op {
                    return self.binary(Binary::Sub, a, y);
                }
                if let Op::Unary(Unary::Neg, y) = self.node(a).op {
                    return self.binary(Binary::Sub, b, y);
                }
            }
            Binary::Pow => {
                if self.is_const_bits(b, 1.0) && sa == shape {
                    return a;
                }
                if self.const_like(b) == Some(0.0) {
                    return self.filled(1.0, shape);
                }
                if self.is_const_bits(b, 2.0) && sa == shape {
                    return self.unary(Unary::Square, a);
                }
            }
            Binary::Max | Binary::Min => {}
        }
        self.intern(Op::Binary(op, a, b), shape)
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Binary::Add, a, b)
    }
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Binary::Sub, a, b)
    }
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Binary::Mul, a, b)
    }
    pub fn div(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Binary::Div, a, b)
    }
    pub fn pow(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Binary::Pow, a, b)
    }

    /// Rebuilds `op` (whose operands already live in `self`) through the smart constructors.
    /// `shape` supplies what the operands do not fix (inputs, slices, broadcasts, reshapes).
    pub fn apply(&mut self, op: &Op, shape: Shape) -> NodeId {
        match *op {
            Op::Const(bits) => self.constant(f64::from_bits(bits)),
            Op::Input { arg, offset } => self.input(arg, offset, shape),
            Op::Unary(u, x) => self.unary(u, x),
            Op::Binary(b, x, y) => self.binary(b, x, y),
            Op::Broadcast(s) => self.broadcast(s, shape),
            Op::Sum(x) => self.sum(x),
            Op::Dot(a, b) => self.dot(a, b),
            Op::MatVec(m, x) => self.matvec(m, x),
            Op::MatMul(a, b) => self.matmul(a, b),
            Op::Transpose(a) => self.transpose(a),
            Op::Outer(a, b) => self.outer(a, b),
            Op::Concat(ref parts) => self.concat(parts),
            Op::Slice { x, start } => self.slice(x, start, shape.len()),
            Op::Index { x, i } => self.index(x, i),
            Op::Reshape(x) => self.reshape(x, shape),
        }
    }

    /// The same node interned verbatim (no rewriting): used by `prune`.
    pub(crate) fn intern_raw(&mut self, op: Op, shape: Shape) -> NodeId {
        self.intern(op, shape)
    }
}

/// The operands of an op, in order.
pub fn operands(op: &Op) -> Vec<NodeId> {
    match op {
        Op::Const(_) | Op::Input { .. } => Vec::new(),
        Op::Unary(_, x)
        | Op::Broadcast(x)
        | Op::Sum(x)
        | Op::Transpose(x)
        | Op::Slice { x, .. }
        | Op::Index { x, .. }
        | Op::Reshape(x) => vec![*x],
        Op::Binary(_, a, b)
        | Op::Dot(a, b)
        | Op::MatVec(a, b)
        | Op::MatMul(a, b)
        | Op::Outer(a, b) => vec![*a, *b],
        Op::Concat(parts) => parts.clone(),
    }
}

/// The op with every operand replaced through `map`.
pub fn map_operands(op: &Op, map: impl Fn(NodeId) -> NodeId) -> Op {
    match *op {
        Op::Const(_) | Op::Input { .. } => op.clone(),
        Op::Unary(u, x) => Op::Unary(u, map(x)),
        Op::Binary(b, x, y) => Op::Binary(b, map(x), map(y)),
        Op::Broadcast(x) => Op::Broadcast(map(x)),
        Op::Sum(x) => Op::Sum(map(x)),
        Op::Dot(a, b) => Op::Dot(map(a), map(b)),
        Op::MatVec(a, b) => Op::MatVec(map(a), map(b)),
        Op::MatMul(a, b) => Op::MatMul(map(a), map(b)),
        Op::Transpose(a) => Op::Transpose(map(a)),
        Op::Outer(a, b) => Op::Outer(map(a), map(b)),
        Op::Concat(ref parts) => Op::Concat(parts.iter().map(|&p| map(p)).collect()),
        Op::Slice { x, start } => Op::Slice { x: map(x), start },
        Op::Index { x, i } => Op::Index { x: map(x), i },
        Op::Reshape(x) => Op::Reshape(map(x)),
    }
}

#[cfg(test)]
mod tests {
    //! The rewrites are exact: a smart-built node evaluates bit for bit like the raw node it
    //! replaces, on every special IEEE value.

    use super::*;
    use crate::ir::{ArgSpec, Function, eval};

    const SPECIAL: [f64; 11] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.0,
        1.5,
        -2.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        5e-324,
    ];

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Evaluates `(raw, smart)` pairs built by `build` at every pair of special values.
    fn check(build: impl Fn(&mut Graph, NodeId, NodeId, f64) -> Vec<(NodeId, NodeId)>) {
        for &c in &SPECIAL {
            let mut f = Function::new(vec![ArgSpec::new("x", 2, true)]);
            let x = f.graph.input(0, 0, Shape::Scalar);
            let y = f.graph.input(0, 1, Shape::Scalar);
            let pairs = build(&mut f.graph, x, y, c);
            for (k, (raw, smart)) in pairs.iter().enumerate() {
                f.push_output(&format!("raw{k}"), *raw);
                f.push_output(&format!("smart{k}"), *smart);
            }
            for &a in &SPECIAL {
                for &b in &SPECIAL {
                    let out = eval(&f, &[&[a, b]], 1).unwrap();
                    for (k, pair) in out.chunks(2).enumerate() {
                        assert!(
                            same(pair[0], pair[1]),
                            "rewrite {k} with c = {c}, x = {a}, y = {b}: {} vs {}",
                            pair[0],
                            pair[1]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn binary_rewrites_with_constants_are_exact() {
        let ops = Binary::ALL;
        check(|g, x, _, c| {
            let k = g.constant(c);
            let mut pairs = Vec::new();
            for op in ops {
                let raw = g.intern_raw(Op::Binary(op, x, k), Shape::Scalar);
                pairs.push((raw, g.binary(op, x, k)));
                let raw = g.intern_raw(Op::Binary(op, k, x), Shape::Scalar);
                pairs.push((raw, g.binary(op, k, x)));
                // Folding agrees with evaluation.
                let two = g.constant(2.0);
                let raw = g.intern_raw(Op::Binary(op, k, two), Shape::Scalar);
                pairs.push((raw, g.binary(op, k, two)));
            }
            pairs
        });
    }

    #[test]
    fn negation_rewrites_are_exact() {
        check(|g, x, y, _| {
            let ny = g.intern_raw(Op::Unary(Unary::Neg, y), Shape::Scalar);
            let nx = g.intern_raw(Op::Unary(Unary::Neg, x), Shape::Scalar);
            let nnx = g.intern_raw(Op::Unary(Unary::Neg, nx), Shape::Scalar);
            vec![
                (
                    g.intern_raw(Op::Binary(Binary::Add, x, ny), Shape::Scalar),
                    g.add(x, ny),
                ),
                (
                    g.intern_raw(Op::Binary(Binary::Add, ny, x), Shape::Scalar),
                    g.add(ny, x),
                ),
                (
                    g.intern_raw(Op::Binary(Binary::Sub, x, ny), Shape::Scalar),
                    g.sub(x, ny),
                ),
                (nnx, g.neg(nx)),
                // Commutation: the raw node keeps the non-canonical order.
                (
                    g.intern_raw(Op::Binary(Binary::Mul, y, x), Shape::Scalar),
                    g.mul(y, x),
                ),
                (
                    g.intern_raw(Op::Binary(Binary::Add, y, x), Shape::Scalar),
                    g.add(y, x),
                ),
            ]
        });
    }

    #[test]
    fn shape_errors_poison_instead_of_panicking() {
        let mut g = Graph::new();
        let v = g.input(0, 0, Shape::Vector(3));
        let m = g.input(0, 0, Shape::Matrix(2, 2));
        let _ = g.matvec(m, v);
        assert!(matches!(
            g.error(),
            Some(IrError::Shape { op: "matvec", .. })
        ));
        let mut g = Graph::new();
        let v = g.input(0, 0, Shape::Vector(3));
        let _ = g.slice(v, 2, 5);
        let _ = g.index(v, 7);
        let _ = g.reshape(v, Shape::Matrix(2, 2));
        let _ = g.transpose(v);
        assert!(g.error().is_some());
    }
}
