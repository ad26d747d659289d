//! The tensor constructors of [`Graph`]: broadcast, sum, dot, mat-vec, mat-mat, transpose,
//! outer, concat, slice, index, reshape. Same contract as the elementwise ones in `graph.rs`:
//! hash-consed, shape-checked by poisoning, and rewriting only by data movement (which is exact).

use super::graph::{Graph, NodeId, Op, Shape};

impl Graph {
    /// A scalar repeated to `shape`; a scalar target returns the scalar itself.
    pub fn broadcast(&mut self, s: NodeId, shape: Shape) -> NodeId {
        if !self.shape(s).is_scalar() {
            if self.shape(s) != shape {
                self.poison("broadcast", format!("{:?} to {shape:?}", self.shape(s)));
            }
            return s;
        }
        if shape.is_scalar() {
            return s;
        }
        self.intern(Op::Broadcast(s), shape)
    }

    /// Sum of all elements; the sum of a scalar is the scalar.
    pub fn sum(&mut self, x: NodeId) -> NodeId {
        if self.shape(x).is_scalar() {
            return x;
        }
        if let Some(c) = self.const_value(x) {
            return self.constant(c);
        }
        self.intern(Op::Sum(x), Shape::Scalar)
    }

    pub fn dot(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let (sa, sb) = (self.shape(a), self.shape(b));
        if sa.is_scalar() && sb.is_scalar() {
            return self.mul(a, b);
        }
        if !matches!(sa, Shape::Vector(_)) || sa != sb {
            self.poison("dot", format!("operands of shapes {sa:?} and {sb:?}"));
        }
        let (a, b) = if b < a { (b, a) } else { (a, b) };
        self.intern(Op::Dot(a, b), Shape::Scalar)
    }

    pub fn matvec(&mut self, m: NodeId, x: NodeId) -> NodeId {
        let (sm, sx) = (self.shape(m), self.shape(x));
        let rows = match (sm, sx) {
            (Shape::Matrix(r, c), Shape::Vector(n)) if c == n => r,
            (Shape::Matrix(r, _), _) => {
                self.poison("matvec", format!("{sm:?} · {sx:?}"));
                r
            }
            _ => {
                self.poison("matvec", format!("{sm:?} · {sx:?}"));
                sx.len()
            }
        };
        self.intern(Op::MatVec(m, x), Shape::Vector(rows))
    }

    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let shape = match (sa, sb) {
            (Shape::Matrix(m, k), Shape::Matrix(k2, n)) if k == k2 => Shape::Matrix(m, n),
            _ => {
                self.poison("matmul", format!("{sa:?} · {sb:?}"));
                sa
            }
        };
        self.intern(Op::MatMul(a, b), shape)
    }

    /// `transpose(transpose A) → A`.
    pub fn transpose(&mut self, a: NodeId) -> NodeId {
        let shape = match self.shape(a) {
            Shape::Matrix(m, n) => Shape::Matrix(n, m),
            other => {
                self.poison("transpose", format!("of {other:?}"));
                other
            }
        };
        if let Op::Transpose(inner) = self.node(a).op {
            return inner;
        }
        self.intern(Op::Transpose(a), shape)
    }

    pub fn outer(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let shape = match (sa, sb) {
            (Shape::Vector(m), Shape::Vector(n)) => Shape::Matrix(m, n),
            _ => {
                self.poison("outer", format!("{sa:?} ⊗ {sb:?}"));
                Shape::Matrix(sa.len(), sb.len())
            }
        };
        self.intern(Op::Outer(a, b), shape)
    }

    /// Lays scalars and vectors end to end. Nested concats flatten, empty parts vanish, and a
    /// single vector part is returned as is.
    pub fn concat(&mut self, parts: &[NodeId]) -> NodeId {
        let mut flat = Vec::with_capacity(parts.len());
        for &p in parts {
            match (&self.node(p).op, self.shape(p)) {
                (Op::Concat(inner), _) => flat.extend(inner.iter().copied()),
                (_, Shape::Vector(0)) => {}
                (_, Shape::Scalar | Shape::Vector(_)) => flat.push(p),
                (_, s @ Shape::Matrix(..)) => {
                    self.poison("concat", format!("part of shape {s:?}"));
                    flat.push(p);
                }
            }
        }
        let flat = self.merge_contiguous(flat);
        if let [single] = flat[..]
            && matches!(self.shape(single), Shape::Vector(_))
        {
            return single;
        }
        let len = flat.iter().map(|&p| self.shape(p).len()).sum();
        self.intern(Op::Concat(flat), Shape::Vector(len))
    }

    /// Merges neighbouring parts that read contiguous ranges of one source (an argument, or one
    /// vector node through index/slice), so `[u[0], u[1]]` is `u[0..2]` and `[x[0], x[1]]` of a
    /// 2-vector is `x`: pure data movement, exact.
    fn merge_contiguous(&mut self, parts: Vec<NodeId>) -> Vec<NodeId> {
        #[derive(PartialEq, Clone, Copy)]
        enum Source {
            Arg(usize),
            Node(NodeId),
        }
        let view = |g: &Graph, p: NodeId| -> Option<(Source, usize, usize)> {
            let len = g.shape(p).len();
            match g.node(p).op {
                Op::Input { arg, offset } if !matches!(g.shape(p), Shape::Matrix(..)) => {
                    Some((Source::Arg(arg), offset, len))
                }
                Op::Index { x, i } => Some((Source::Node(x), i, 1)),
                Op::Slice { x, start } => Some((Source::Node(x), start, len)),
                _ => None,
            }
        };
        let mut out: Vec<NodeId> = Vec::with_capacity(parts.len());
        let mut run: Option<(Source, usize, usize)> = None;
        let mut run_first = None;
        let flush = |g: &mut Graph,
                     out: &mut Vec<NodeId>,
                     run: Option<(Source, usize, usize)>,
                     first: Option<NodeId>| {
            match (run, first) {
                (Some((Source::Arg(arg), start, len)), Some(p)) if g.shape(p).len() != len => {
                    out.push(g.input(arg, start, Shape::Vector(len)));
                }
                (Some((Source::Node(x), start, len)), Some(p)) if g.shape(p).len() != len => {
                    out.push(g.slice(x, start, len));
                }
                (_, Some(p)) => out.push(p),
                _ => {}
            }
        };
        for p in parts {
            let v = view(self, p);
            match (run, v) {
                (Some((src, start, len)), Some((s2, st2, l2)))
                    if src == s2 && start + len == st2 =>
                {
                    run = Some((src, start, len + l2));
                }
                _ => {
                    flush(self, &mut out, run, run_first);
                    run = v;
                    run_first = Some(p);
                    if v.is_none() {
                        out.push(p);
                        run_first = None;
                    }
                }
            }
        }
        flush(self, &mut out, run, run_first);
        out
    }

    /// `x[start .. start + len]` of a vector. Slices of slices compose, slices of broadcasts
    /// are broadcasts, a slice that is exactly one part of a concat is that part.
    pub fn slice(&mut self, x: NodeId, start: usize, len: usize) -> NodeId {
        let n = match self.shape(x) {
            Shape::Vector(n) => n,
            other => {
                self.poison("slice", format!("of {other:?}"));
                return self.zeros(Shape::Vector(len));
            }
        };
        if start + len > n {
            self.poison(
                "slice",
                format!("{start}..{} of a vector of {n}", start + len),
            );
            return self.zeros(Shape::Vector(len));
        }
        if start == 0 && len == n {
            return x;
        }
        match self.node(x).op.clone() {
            Op::Slice {
                x: inner,
                start: s0,
            } => return self.slice(inner, s0 + start, len),
            Op::Broadcast(s) => return self.broadcast(s, Shape::Vector(len)),
            Op::Input { arg, offset } => {
                return self.input(arg, offset + start, Shape::Vector(len));
            }
            Op::Concat(parts) => {
                // Keep only the parts the range covers, trimming the two ends.
                let mut picked = Vec::new();
                let mut off = 0;
                for p in parts {
                    let plen = self.shape(p).len();
                    let (lo, hi) = (off.max(start), (off + plen).min(start + len));
                    if lo < hi {
                        if lo == off && hi == off + plen {
                            picked.push(p);
                        } else if hi - lo == 1 {
                            picked.push(self.index(p, lo - off));
                        } else {
                            picked.push(self.slice(p, lo - off, hi - lo));
                        }
                    }
                    off += plen;
                }
                return self.concat(&picked);
            }
            _ => {}
        }
        self.intern(Op::Slice { x, start }, Shape::Vector(len))
    }

    /// `x[i]` of a vector (of a scalar, `x` itself when `i = 0`).
    pub fn index(&mut self, x: NodeId, i: usize) -> NodeId {
        let n = match self.shape(x) {
            Shape::Vector(n) => n,
            Shape::Scalar if i == 0 => return x,
            other => {
                self.poison("index", format!("[{i}] of {other:?}"));
                return self.constant(0.0);
            }
        };
        if i >= n {
            self.poison("index", format!("[{i}] of a vector of {n}"));
            return self.constant(0.0);
        }
        match self.node(x).op.clone() {
            Op::Broadcast(s) => return s,
            Op::Slice { x: inner, start } => return self.index(inner, start + i),
            Op::Concat(parts) => {
                let mut off = 0;
                for p in parts {
                    let plen = self.shape(p).len();
                    if i < off + plen {
                        return self.index(p, i - off);
                    }
                    off += plen;
                }
            }
            Op::Input { arg, offset } => return self.input(arg, offset + i, Shape::Scalar),
            _ => {}
        }
        self.intern(Op::Index { x, i }, Shape::Scalar)
    }

    /// Same data in another shape of equal length.
    pub fn reshape(&mut self, x: NodeId, shape: Shape) -> NodeId {
        let from = self.shape(x);
        if from.len() != shape.len() {
            self.poison("reshape", format!("{from:?} to {shape:?}"));
            return self.zeros(shape);
        }
        if from == shape {
            return x;
        }
        match self.node(x).op {
            Op::Reshape(inner) => return self.reshape(inner, shape),
            Op::Broadcast(s) => return self.broadcast(s, shape),
            Op::Input { arg, offset } => return self.input(arg, offset, shape),
            _ => {}
        }
        if from.len() == 1 && shape.is_scalar() {
            return self.index(x, 0);
        }
        self.intern(Op::Reshape(x), shape)
    }

    /// Flattens any node to a vector (a scalar becomes a vector of one).
    pub fn flatten(&mut self, x: NodeId) -> NodeId {
        match self.shape(x) {
            Shape::Vector(_) => x,
            Shape::Scalar => self.concat(&[x]),
            s => self.reshape(x, Shape::Vector(s.len())),
        }
    }
}
