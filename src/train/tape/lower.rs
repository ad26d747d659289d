//! The IR lowered to dfdx tensor operations, generic over the dfdx device (`Cpu`, `Cuda`), so
//! that a vector field evaluated here sits on dfdx's tape and backpropagates with dfdx.
//!
//! Values are 2-D tensors: a scalar or vector node is `[rows, len]`, with `rows` the batch
//! (a *batched* value, one row per segment) or 1 (a *shared* value: parameters, constants);
//! a matrix node is `[m, n]` and always shared. Two operands broadcast numpy-style (a
//! dimension of 1 against any other), which is the IR's scalar broadcast plus the batch.
//!
//! Invariant: the tape is one [`Rec`]. Every op reads its operands through `retaped` copies
//! (same tensor id, empty tape) and merges the op's backward into the recorder, so a node used
//! by many others is one tensor whose gradient dfdx accumulates by id; dfdx runs the merged
//! backward ops in reverse creation order, which is a reverse topological order.
//! Ops dfdx has no equivalent for are `glassbox::tape_unsupported` diagnostics, never panics.

use dfdx::prelude::*;
use dfdx::tensor::{Merge, OwnedTape};

use crate::diag::Diag;
use crate::ir::{Binary, Function, NodeId, Op, Shape, Unary, operands};
use crate::math::tanh;

pub(crate) type TapeOf<D> = OwnedTape<f64, D>;
/// A value without its tape (the tape lives in the [`Rec`]).
pub(crate) type Mat<D> = Tensor<(usize, usize), f64, D>;
/// The same on a tape, as dfdx's ops take and return it.
pub(crate) type MatT<D> = Tensor<(usize, usize), f64, D, TapeOf<D>>;

/// A device failure (allocation, a CUDA kernel launch) as a diagnostic.
pub(crate) fn dev_err<E: std::fmt::Debug>(e: E) -> Diag {
    Diag::error(
        "glassbox::tape_device",
        format!("the dfdx device failed: {e:?}"),
    )
    .help("train on the CPU (`--device cpu`), or with the adjoint backend")
}

pub(crate) fn unsupported(what: impl Into<String>) -> Diag {
    Diag::error(
        "glassbox::tape_unsupported",
        format!("the tape backend cannot lower {} to dfdx", what.into()),
    )
    .help("train with the default adjoint backend (`--backend adjoint`)")
}

/// A node's value: the tensor, whether it has one row per segment, whether it depends on the
/// learned values (only those are recorded).
#[derive(Clone, Debug)]
pub(crate) struct Val<D: Device<f64>> {
    pub x: Mat<D>,
    pub batched: bool,
    pub live: bool,
}

impl<D: Device<f64>> Val<D> {
    pub fn dims(&self) -> (usize, usize) {
        *self.x.shape()
    }
}

/// The recorder: the device and the one tape every live op is merged into.
pub(crate) struct Rec<D: Device<f64>> {
    pub dev: D,
    tape: TapeOf<D>,
}

impl<D: Device<f64>> Rec<D> {
    pub fn new(dev: D) -> Rec<D> {
        Rec {
            dev,
            tape: OwnedTape::default(),
        }
    }

    /// A leaf on the tape (the learned values): its gradient is read by id after backward.
    pub fn leaf(&mut self, x: Mat<D>) -> Val<D> {
        Val {
            x,
            batched: false,
            live: true,
        }
    }

    /// A constant `[rows, cols]` tensor from row-major values.
    pub fn constant(
        &self,
        data: Vec<f64>,
        dims: (usize, usize),
        batched: bool,
    ) -> Result<Val<D>, Diag> {
        let x = self.dev.try_tensor_from_vec(data, dims).map_err(dev_err)?;
        Ok(Val {
            x,
            batched,
            live: false,
        })
    }

    pub fn index(&self, idx: Vec<usize>) -> Result<Tensor<(usize,), usize, D>, Diag> {
        let n = idx.len();
        self.dev.try_tensor_from_vec(idx, (n,)).map_err(dev_err)
    }

    fn tr(&self, v: &Val<D>) -> MatT<D> {
        v.x.retaped::<TapeOf<D>>()
    }

    fn keep(&mut self, y: MatT<D>, batched: bool, live: bool) -> Val<D> {
        let (x, tape) = y.split_tape();
        if live {
            self.tape = std::mem::take(&mut self.tape).merge(tape);
        }
        Val { x, batched, live }
    }

    /// The value with the whole recorded tape, ready for a loss and `backward()`.
    pub fn finish(self, v: &Val<D>) -> MatT<D> {
        v.x.clone().put_tape(self.tape)
    }

    pub fn unary(
        &mut self,
        a: &Val<D>,
        f: impl FnOnce(MatT<D>) -> Result<MatT<D>, D::Err>,
    ) -> Result<Val<D>, Diag> {
        let y = f(self.tr(a)).map_err(dev_err)?;
        Ok(self.keep(y, a.batched, a.live))
    }

    /// `a` broadcast to `[rows, cols]` (a dimension of 1 repeats).
    pub fn expand(&mut self, a: &Val<D>, (rows, cols): (usize, usize)) -> Result<Val<D>, Diag> {
        let (r, c) = a.dims();
        if (r, c) == (rows, cols) {
            return Ok(a.clone());
        }
        let batched = a.batched || rows > r;
        let x = self.tr(a);
        let y = match (r == rows, c == cols) {
            (true, false) if c == 1 => x
                .try_reshape_like(&(r,))
                .and_then(|x| x.try_broadcast_like::<_, Axis<1>>(&(rows, cols))),
            (false, true) if r == 1 => x
                .try_reshape_like(&(c,))
                .and_then(|x| x.try_broadcast_like::<_, Axis<0>>(&(rows, cols))),
            (false, false) if r == 1 && c == 1 => x
                .try_reshape_like(&())
                .and_then(|x| x.try_broadcast_like::<_, Axes2<0, 1>>(&(rows, cols))),
            _ => {
                return Err(unsupported(format!(
                    "a broadcast of [{r}, {c}] to [{rows}, {cols}]"
                )));
            }
        }
        .map_err(dev_err)?;
        Ok(self.keep(y, batched, a.live))
    }

    /// An elementwise binary op with broadcasting.
    pub fn binary(
        &mut self,
        a: &Val<D>,
        b: &Val<D>,
        f: impl FnOnce(MatT<D>, MatT<D>) -> Result<MatT<D>, D::Err>,
    ) -> Result<Val<D>, Diag> {
        let ((ra, ca), (rb, cb)) = (a.dims(), b.dims());
        let ok = |x: usize, y: usize| x == y || x == 1 || y == 1;
        if !ok(ra, rb) || !ok(ca, cb) {
            return Err(unsupported(format!(
                "an elementwise op on [{ra}, {ca}] and [{rb}, {cb}]"
            )));
        }
        let dims = (ra.max(rb), ca.max(cb));
        let (a, b) = (self.expand(a, dims)?, self.expand(b, dims)?);
        let y = f(self.tr(&a), self.tr(&b)).map_err(dev_err)?;
        Ok(self.keep(y, a.batched || b.batched, a.live || b.live))
    }

    pub fn add(&mut self, a: &Val<D>, b: &Val<D>) -> Result<Val<D>, Diag> {
        self.binary(a, b, |x, y| x.try_add(y))
    }
    pub fn sub(&mut self, a: &Val<D>, b: &Val<D>) -> Result<Val<D>, Diag> {
        self.binary(a, b, |x, y| x.try_sub(y))
    }
    pub fn mul(&mut self, a: &Val<D>, b: &Val<D>) -> Result<Val<D>, Diag> {
        self.binary(a, b, |x, y| x.try_mul(y))
    }
    pub fn div(&mut self, a: &Val<D>, b: &Val<D>) -> Result<Val<D>, Diag> {
        self.binary(a, b, |x, y| x.try_div(y))
    }
    pub fn scale(&mut self, a: &Val<D>, c: f64) -> Result<Val<D>, Diag> {
        self.unary(a, |x| x.try_mul(c))
    }

    /// Row sums: `[rows, cols] → [rows, 1]`.
    pub fn row_sum(&mut self, a: &Val<D>) -> Result<Val<D>, Diag> {
        let (r, _) = a.dims();
        self.unary(a, |x| {
            x.try_sum::<(usize,), Axis<1>>()
                .and_then(|s| s.try_reshape_like(&(r, 1)))
        })
    }

    /// The sum of every element: `→ [1, 1]`, shared.
    pub fn total(&mut self, a: &Val<D>) -> Result<Val<D>, Diag> {
        let y = self
            .tr(a)
            .try_sum::<(), Axes2<0, 1>>()
            .and_then(|s| s.try_reshape_like(&(1, 1)))
            .map_err(dev_err)?;
        Ok(self.keep(y, false, a.live))
    }

    /// Columns `start .. start + len`.
    pub fn cols(&mut self, a: &Val<D>, start: usize, len: usize) -> Result<Val<D>, Diag> {
        if start == 0 && a.dims().1 == len {
            return Ok(a.clone());
        }
        self.unary(a, |x| x.try_slice((.., start..start + len)))
    }

    /// Rows `idx` of `a` (gather along axis 0), in that order.
    pub fn rows(&mut self, a: &Val<D>, idx: &[usize]) -> Result<Val<D>, Diag> {
        let i = self.index(idx.to_vec())?;
        self.unary(a, |x| x.try_gather::<(usize, usize), (usize,)>(i))
    }

    /// `[a; b]` along axis `AX` (0: rows, 1: columns).
    pub fn concat(&mut self, a: &Val<D>, b: &Val<D>, rows: bool) -> Result<Val<D>, Diag> {
        let (x, y) = (self.tr(a), self.tr(b));
        let out = if rows {
            (x, y).try_concat_along(Axis::<0>)
        } else {
            (x, y).try_concat_along(Axis::<1>)
        }
        .map_err(dev_err)?;
        Ok(self.keep(out, a.batched || b.batched, a.live || b.live))
    }

    /// `a · b` of two `[m, k]`, `[k, n]` tensors.
    pub fn matmul(&mut self, a: &Val<D>, b: &Val<D>) -> Result<Val<D>, Diag> {
        let y = self.tr(a).try_matmul(self.tr(b)).map_err(dev_err)?;
        Ok(self.keep(y, a.batched || b.batched, a.live || b.live))
    }

    /// `W·x` per row: `x` `[R, n]`, a shared `W` `[m, n]` → `[R, m]`. As a broadcast product
    /// summed over `n` rather than a GEMM: dfdx's CPU sum adds left to right like the JIT
    /// kernels and the interpreter, so the field rounds as theirs does (a GEMM's blocked FMA
    /// sums do not), which the regularizers' cancelling differences would amplify.
    pub fn matvec(&mut self, w: &Val<D>, x: &Val<D>) -> Result<Val<D>, Diag> {
        let ((m, n), (r, _)) = (w.dims(), x.dims());
        let (wt, xt) = (self.tr(w), self.tr(x));
        let y = wt
            .try_broadcast_like::<_, Axis<0>>(&(r, m, n))
            .and_then(|wb| {
                xt.try_broadcast_like::<_, Axis<1>>(&(r, m, n))
                    .and_then(|xb| wb.try_mul(xb))
            })
            .and_then(|p| p.try_sum::<(usize, usize), Axis<2>>())
            .map_err(dev_err)?;
        Ok(self.keep(y, x.batched, x.live || w.live))
    }

    pub fn transpose(&mut self, a: &Val<D>) -> Result<Val<D>, Diag> {
        self.unary(a, |x| x.try_permute::<(usize, usize), Axes2<1, 0>>())
    }

    pub fn reshape(&mut self, a: &Val<D>, dims: (usize, usize)) -> Result<Val<D>, Diag> {
        if a.dims() == dims {
            return Ok(a.clone());
        }
        self.unary(a, |x| x.try_reshape_like(&dims))
    }

    /// A constant tensor that is 1 where `a`'s value satisfies `pred` against `c`, else 0
    /// (no gradient: a mask, or a step function).
    pub fn mask(&mut self, a: &Val<D>, cmp: Cmp, c: f64) -> Result<Val<D>, Diag> {
        let dims = a.dims();
        let ones = self.dev.try_ones_like(&dims).map_err(dev_err)?;
        let zeros = self.dev.try_zeros_like(&dims).map_err(dev_err)?;
        let m = match cmp {
            Cmp::Eq => a.x.try_eq(c),
            Cmp::Gt => a.x.try_gt(c),
            Cmp::Lt => a.x.try_lt(c),
        }
        .and_then(|m| m.try_choose(ones, zeros))
        .map_err(dev_err)?;
        Ok(Val {
            x: m,
            batched: a.batched,
            live: false,
        })
    }

    /// `sqrt(a)` with gradient 0 where `a = 0` (where dfdx's would be infinite): the branch
    /// the adjoint takes for `E = 0`, `S = 0`.
    pub fn safe_sqrt(&mut self, a: &Val<D>) -> Result<Val<D>, Diag> {
        let z = self.mask(a, Cmp::Eq, 0.0)?;
        let shifted = self.add(a, &z)?;
        let r = self.unary(&shifted, |x| x.try_sqrt())?;
        self.sub(&r, &z)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Lt,
}

/// A lowered field `f(t, u, p[, x])`. The nodes that depend only on `p` and `x` (weights,
/// their transposes, constants) are evaluated once per tape; the rest per evaluation.
pub(crate) struct Lowered<D: Device<f64>> {
    f: Function,
    t_arg: Option<usize>,
    u_arg: Option<usize>,
    /// Per node: depends on `t` or `u`.
    dynamic: Vec<bool>,
    live: Vec<bool>,
    statics: Vec<Option<Val<D>>>,
}

impl<D: Device<f64>> Lowered<D> {
    /// `p` is the full parameter vector as a shared `[1, P]` value (on the tape where
    /// learned), `x` the model's inputs (`[1, X]`), if it takes any.
    pub fn new(
        rec: &mut Rec<D>,
        f: &Function,
        p: &Val<D>,
        x: Option<&Val<D>>,
    ) -> Result<Lowered<D>, Diag> {
        let arg = |name: &str| f.arg_index(name);
        let (t_arg, u_arg) = (arg("t"), arg("u"));
        let g = &f.graph;
        let mut dynamic = vec![false; g.len()];
        for (id, node) in g.nodes() {
            dynamic[id.index()] = match node.op {
                Op::Input { arg, .. } => Some(arg) == t_arg || Some(arg) == u_arg,
                ref op => operands(op).iter().any(|o| dynamic[o.index()]),
            };
        }
        let mut me = Lowered {
            live: f.live(),
            f: f.clone(),
            t_arg,
            u_arg,
            dynamic,
            statics: vec![None; g.len()],
        };
        let mut shared = vec![None; me.f.args.len()];
        if let Some(i) = arg("p") {
            shared[i] = Some(p.clone());
        }
        if let (Some(i), Some(x)) = (arg("x"), x) {
            shared[i] = Some(x.clone());
        }
        for i in 0..me.f.graph.len() {
            if me.live[i] && !me.dynamic[i] {
                let v = me.node(rec, NodeId(i as u32), &shared, None)?;
                me.statics[i] = Some(v);
            }
        }
        Ok(me)
    }

    /// `f(t, u)` for a batch: `t` is `[B, 1]`, `u` `[B, n]`; the result `[B, n]`.
    pub fn eval(&self, rec: &mut Rec<D>, t: &Val<D>, u: &Val<D>) -> Result<Val<D>, Diag> {
        let mut args: Vec<Option<Val<D>>> = vec![None; self.f.args.len()];
        if let Some(i) = self.t_arg {
            args[i] = Some(t.clone());
        }
        if let Some(i) = self.u_arg {
            args[i] = Some(u.clone());
        }
        let mut vals: Vec<Option<Val<D>>> = vec![None; self.f.graph.len()];
        for i in 0..self.f.graph.len() {
            if self.live[i] && self.dynamic[i] {
                let v = self.node(rec, NodeId(i as u32), &args, Some(&vals))?;
                vals[i] = Some(v);
            }
        }
        let rows = u.dims().0;
        let mut out: Option<Val<D>> = None;
        for o in &self.f.outputs {
            let v = self.get(o.node, Some(&vals))?;
            let v = if v.dims().0 == rows {
                v
            } else {
                let cols = v.dims().1;
                rec.expand(&v, (rows, cols))?
            };
            out = Some(match out {
                None => v,
                Some(acc) => rec.concat(&acc, &v, false)?,
            });
        }
        out.ok_or_else(|| unsupported("a vector field without outputs"))
    }

    fn get(&self, id: NodeId, vals: Option<&Vec<Option<Val<D>>>>) -> Result<Val<D>, Diag> {
        self.statics[id.index()]
            .clone()
            .or_else(|| vals.and_then(|v| v[id.index()].clone()))
            .ok_or_else(|| unsupported(format!("node {} (evaluated out of order)", id.0)))
    }

    /// One node from its operands' values; `args` by argument position.
    fn node(
        &self,
        rec: &mut Rec<D>,
        id: NodeId,
        args: &[Option<Val<D>>],
        vals: Option<&Vec<Option<Val<D>>>>,
    ) -> Result<Val<D>, Diag> {
        let g = &self.f.graph;
        let node = g.node(id);
        let shape = node.shape;
        let v = |i: NodeId| self.get(i, vals);
        let shared_only = |v: &Val<D>, what: &str| {
            if v.batched {
                Err(unsupported(format!("{what} of a state-dependent matrix")))
            } else {
                Ok(())
            }
        };
        Ok(match node.op {
            Op::Const(bits) => rec.constant(vec![f64::from_bits(bits)], (1, 1), false)?,
            Op::Input { arg, offset } => {
                let src = args
                    .get(arg)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| unsupported(format!("argument #{arg} of the field")))?;
                let part = rec.cols(&src, offset, shape.len())?;
                match shape {
                    Shape::Matrix(m, n) => {
                        shared_only(&part, "a read")?;
                        rec.reshape(&part, (m, n))?
                    }
                    _ => part,
                }
            }
            Op::Unary(u, a) => unary(rec, u, &v(a)?)?,
            Op::Binary(b, xi, yi) => {
                let (x, y) = (v(xi)?, v(yi)?);
                if let Shape::Matrix(..) = shape {
                    shared_only(&x, "an elementwise op")?;
                    shared_only(&y, "an elementwise op")?;
                }
                binary(rec, g, b, (&x, &y), yi)?
            }
            Op::Broadcast(s) => {
                let s = v(s)?;
                let rows = s.dims().0;
                match shape {
                    Shape::Matrix(m, n) => {
                        shared_only(&s, "a broadcast")?;
                        rec.expand(&s, (m, n))?
                    }
                    _ => rec.expand(&s, (rows, shape.len()))?,
                }
            }
            Op::Sum(a) => {
                let a = v(a)?;
                match g.shape(operand(&node.op)) {
                    Shape::Matrix(..) => rec.total(&a)?,
                    _ => rec.row_sum(&a)?,
                }
            }
            Op::Dot(a, b) => {
                let prod = rec.mul(&v(a)?, &v(b)?)?;
                rec.row_sum(&prod)?
            }
            Op::MatVec(w, x) => {
                let w = v(w)?;
                shared_only(&w, "a product")?;
                rec.matvec(&w, &v(x)?)?
            }
            Op::MatMul(a, b) => {
                let (a, b) = (v(a)?, v(b)?);
                shared_only(&a, "a product")?;
                shared_only(&b, "a product")?;
                rec.matmul(&a, &b)?
            }
            Op::Transpose(a) => {
                let a = v(a)?;
                shared_only(&a, "a transpose")?;
                rec.transpose(&a)?
            }
            Op::Outer(a, b) => {
                let (a, b) = (v(a)?, v(b)?);
                shared_only(&a, "an outer product")?;
                shared_only(&b, "an outer product")?;
                let col = rec.reshape(&a, (a.dims().1, 1))?;
                rec.matmul(&col, &b)?
            }
            Op::Concat(ref parts) => {
                let vals = parts.iter().map(|&p| v(p)).collect::<Result<Vec<_>, _>>()?;
                let rows = vals.iter().map(|p| p.dims().0).max().unwrap_or(1);
                let mut acc: Option<Val<D>> = None;
                for p in &vals {
                    let p = rec.expand(p, (rows, p.dims().1))?;
                    acc = Some(match acc {
                        None => p,
                        Some(a) => rec.concat(&a, &p, false)?,
                    });
                }
                acc.ok_or_else(|| unsupported("an empty concatenation"))?
            }
            Op::Slice { x, start } => rec.cols(&v(x)?, start, shape.len())?,
            Op::Index { x, i } => rec.cols(&v(x)?, i, 1)?,
            Op::Reshape(x) => {
                let x = v(x)?;
                match shape {
                    Shape::Matrix(m, n) => {
                        shared_only(&x, "a reshape")?;
                        rec.reshape(&x, (m, n))?
                    }
                    _ if x.batched => x,
                    _ => rec.reshape(&x, (1, shape.len()))?,
                }
            }
        })
    }
}

fn operand(op: &Op) -> NodeId {
    operands(op).first().copied().unwrap_or(NodeId(0))
}

fn unary<D: Device<f64>>(rec: &mut Rec<D>, u: Unary, a: &Val<D>) -> Result<Val<D>, Diag> {
    match u {
        Unary::Neg => rec.unary(a, |x| x.try_negate()),
        Unary::Exp => rec.unary(a, |x| x.try_exp()),
        Unary::Log => rec.unary(a, |x| x.try_ln()),
        Unary::Sin => rec.unary(a, |x| x.try_sin()),
        Unary::Cos => rec.unary(a, |x| x.try_cos()),
        Unary::Tan => {
            let (s, c) = (
                rec.unary(a, |x| x.try_sin())?,
                rec.unary(a, |x| x.try_cos())?,
            );
            rec.div(&s, &c)
        }
        Unary::Tanh => {
            // dfdx's tanh is libm's (or CUDA's); the IR's is `math::tanh`, up to 2 ulp
            // away, and `E`/`S` amplify stage rounding by ~1/rtol. So the difference is added
            // as a constant: exact (Sterbenz), giving the IR's bits and dfdx's `1 − t²`.
            let t = rec.unary(a, |x| x.try_tanh())?;
            let diff =
                a.x.as_vec()
                    .iter()
                    .zip(t.x.as_vec())
                    .map(|(x, lib)| tanh(*x) - lib)
                    .collect();
            let d = rec.constant(diff, t.dims(), t.batched)?;
            rec.add(&t, &d)
        }
        Unary::Sigmoid => rec.unary(a, |x| x.try_sigmoid()),
        Unary::Relu => rec.unary(a, |x| x.try_relu()),
        // Piecewise constant: no gradient, so a mask computed on the device.
        Unary::Step => rec.mask(a, Cmp::Gt, 0.0),
        Unary::Sign => {
            let (p, n) = (rec.mask(a, Cmp::Gt, 0.0)?, rec.mask(a, Cmp::Lt, 0.0)?);
            rec.sub(&p, &n)
        }
        // The IR's stable form: max(x, 0) + log(1 + e^{−|x|}).
        Unary::Softplus => {
            let r = rec.unary(a, |x| x.try_relu())?;
            let l = rec.unary(a, |x| {
                x.try_abs()
                    .and_then(|x| x.try_negate())
                    .and_then(|x| x.try_exp())
                    .and_then(|x| x.try_add(1.0))
                    .and_then(|x| x.try_ln())
            })?;
            rec.add(&r, &l)
        }
        Unary::Sqrt => rec.unary(a, |x| x.try_sqrt()),
        Unary::Abs => rec.unary(a, |x| x.try_abs()),
        Unary::Square => rec.unary(a, |x| x.try_square()),
    }
}

fn binary<D: Device<f64>>(
    rec: &mut Rec<D>,
    g: &crate::ir::Graph,
    op: Binary,
    (a, b): (&Val<D>, &Val<D>),
    b_id: NodeId,
) -> Result<Val<D>, Diag> {
    match op {
        Binary::Add => rec.add(a, b),
        Binary::Sub => rec.sub(a, b),
        Binary::Mul => rec.mul(a, b),
        Binary::Div => rec.div(a, b),
        Binary::Max => rec.binary(a, b, |x, y| x.try_maximum(y)),
        Binary::Min => rec.binary(a, b, |x, y| x.try_minimum(y)),
        Binary::Pow => match g.const_value(b_id).or_else(|| match g.node(b_id).op {
            Op::Broadcast(s) => g.const_value(s),
            _ => None,
        }) {
            // `x^3` is `(x·x)·x` in the IR (`Binary::apply`): the same rounding here.
            Some(3.0) => {
                let x2 = rec.unary(a, |x| x.try_square())?;
                rec.mul(&x2, a)
            }
            Some(c) => rec.unary(a, |x| x.try_powf(c)),
            None => Err(unsupported("`pow` with a computed exponent")),
        },
    }
}

#[cfg(test)]
mod tests {
    //! The lowering against the IR interpreter (the oracle): every op of the node set, on a
    //! batch, agrees to 1e-13 relative (dfdx computes `tan` as `sin/cos` and `softplus` via
    //! `ln(1 + ·)`, a few ulps away from the interpreter's functions).

    use super::*;
    use crate::ir::{ArgSpec, Graph, eval};

    fn field() -> (Function, Vec<f64>) {
        let mut f = Function::new(vec![
            ArgSpec::new("t", 1, true),
            ArgSpec::new("u", 3, true),
            ArgSpec::new("p", 23, false),
        ]);
        let g: &mut Graph = &mut f.graph;
        let t = g.input(0, 0, Shape::Scalar);
        let u = g.input(1, 0, Shape::Vector(3));
        let w = g.input(2, 0, Shape::Matrix(3, 3));
        let b = g.input(2, 9, Shape::Vector(3));
        let a = g.input(2, 12, Shape::Scalar);
        let m2 = g.input(2, 13, Shape::Matrix(3, 3));
        let wu = g.matvec(w, u);
        let pre = g.add(wu, b);
        let h = g.unary(Unary::Tanh, pre);
        // Scalars of the state and time.
        let u0 = g.index(u, 0);
        let u1 = g.index(u, 1);
        let u2 = g.index(u, 2);
        let s0 = g.unary(Unary::Sin, u0);
        let ct = g.unary(Unary::Cos, t);
        let e1 = g.unary(Unary::Exp, u1);
        let sq = g.unary(Unary::Square, u2);
        let one = g.constant(1.0);
        let sq1 = g.add(sq, one);
        let l2 = g.unary(Unary::Log, sq1);
        let s = g.mul(s0, ct);
        let s = g.add(s, e1);
        let s = g.sub(s, l2);
        // Elementwise activations.
        let sig = g.unary(Unary::Sigmoid, h);
        let relu = g.unary(Unary::Relu, u);
        let sp = g.unary(Unary::Softplus, u);
        let ab = g.unary(Unary::Abs, u);
        let ab1 = g.add(ab, one);
        let rt = g.unary(Unary::Sqrt, ab1);
        let st = g.unary(Unary::Step, u);
        let sg = g.unary(Unary::Sign, u);
        let ss = g.mul(st, sg);
        let c3 = g.constant(0.3);
        let u3 = g.mul(u, c3);
        let tn = g.unary(Unary::Tan, u3);
        let three = g.constant(3.0);
        let cube = g.pow(u, three);
        let mx = g.binary(Binary::Max, u, h);
        let mn = g.binary(Binary::Min, u, b);
        let neg = g.neg(mn);
        let dv = g.div(mx, ab1);
        let mut z = sig;
        for v in [relu, sp, ss, tn, cube, dv] {
            z = g.add(z, v);
        }
        z = g.sub(z, rt);
        z = g.add(z, neg);
        // Tensor ops on shared matrices, then on the state.
        let m2t = g.transpose(m2);
        let wm = g.matmul(w, m2t);
        let ob = g.outer(b, b);
        let mm = g.add(wm, ob);
        let mu = g.matvec(mm, z);
        let flat = g.reshape(w, Shape::Vector(9));
        let head = g.slice(flat, 3, 3);
        let back = g.reshape(head, Shape::Vector(3));
        let d = g.dot(u, h);
        let sh = g.sum(h);
        let sm = g.sum(mm);
        let dsh = g.add(d, sh);
        let packed = g.concat(&[dsh, u2, sm]);
        let ab = g.broadcast(a, Shape::Vector(3));
        let au = g.mul(ab, u);
        let sv = g.broadcast(s, Shape::Vector(3));
        let mut out = g.add(mu, packed);
        for v in [au, sv, back] {
            out = g.add(out, v);
        }
        f.push_output("du/dt", out);
        let p: Vec<f64> = (0..23)
            .map(|i| ((i * 37 % 23) as f64 - 11.0) / 13.0)
            .collect();
        (f, p)
    }

    #[test]
    fn lowered_field_equals_the_interpreter() {
        let (f, p) = field();
        f.validate().unwrap();
        let batch = 4;
        let t: Vec<f64> = (0..batch).map(|b| 0.3 + 0.7 * b as f64).collect();
        let u: Vec<f64> = (0..batch * 3)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 4.0)
            .collect();
        let want = eval(&f, &[&t, &u, &p], batch).unwrap();

        let mut rec = Rec::new(Cpu::default());
        let pv = rec.constant(p.clone(), (1, p.len()), false).unwrap();
        let lowered = Lowered::new(&mut rec, &f, &pv, None).unwrap();
        let tv = rec.constant(t, (batch, 1), true).unwrap();
        let uv = rec.constant(u, (batch, 3), true).unwrap();
        let got = lowered.eval(&mut rec, &tv, &uv).unwrap();
        assert_eq!(got.dims(), (batch, 3));
        let got = got.x.as_vec();
        for (i, (a, b)) in want.iter().zip(&got).enumerate() {
            assert!(
                (a - b).abs() <= 1e-13 * a.abs().max(1.0),
                "entry {i}: interpreter {a}, dfdx {b}"
            );
        }
    }

    #[test]
    fn a_computed_exponent_is_a_diagnostic() {
        let mut f = Function::new(vec![
            ArgSpec::new("t", 1, true),
            ArgSpec::new("u", 2, true),
            ArgSpec::new("p", 1, false),
        ]);
        let u = f.graph.input(1, 0, Shape::Vector(2));
        let k = f.graph.input(2, 0, Shape::Scalar);
        let y = f.graph.pow(u, k);
        f.push_output("du/dt", y);
        let mut rec = Rec::new(Cpu::default());
        let pv = rec.constant(vec![1.5], (1, 1), false).unwrap();
        let lowered = Lowered::new(&mut rec, &f, &pv, None).unwrap();
        let tv = rec.constant(vec![0.0], (1, 1), true).unwrap();
        let uv = rec.constant(vec![1.0, 2.0], (1, 2), true).unwrap();
        let e = lowered.eval(&mut rec, &tv, &uv).unwrap_err();
        assert_eq!(e.code, "glassbox::tape_unsupported");
        assert!(e.message.contains("pow"), "{}", e.message);
    }
}
