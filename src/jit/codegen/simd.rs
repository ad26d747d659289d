//! Two-wide vector code (`F64X2`: SSE2 on x86_64, NEON on aarch64) for unrolled tensor nodes,
//! bit for bit the scalar code.
//!
//! A vector lane performs exactly the scalar IEEE operation on its element, so working on two
//! neighbouring *output elements* at once changes no result: each element still gets the same
//! multiplies and adds, in the same order, with the same operands on the same sides. Nothing here
//! reassociates a reduction: a mat-vec's pair of outputs is two sums carried side by side, each
//! adding its terms left to right from the first.
//!
//! A node lowered here holds a third form next to registers and memory: *pairs*, one vector per
//! elements `2k, 2k + 1` (flat, row-major) and the odd last element as a scalar. The scalar
//! forms are derived from it on demand (`extractlane`, stores), and it from them (vector loads,
//! or two scalars packed into one vector).

use cranelift_codegen::ir::types::{F64X2, I8X16};
use cranelift_codegen::ir::{ConstantData, Endianness, InstBuilder, MemFlagsData, Value};

use super::{Lower, Unary};
use crate::ir::{Binary, NodeId, Op};

/// The pairs form of a node: `v[k]` holds elements `2k, 2k + 1`; `tail` the last one when the
/// length is odd.
#[derive(Clone, Debug)]
pub(super) struct Pairs {
    pub(super) v: Vec<Value>,
    pub(super) tail: Option<Value>,
}

/// Vector accesses carry no `aligned` flag: the buffers are only 8-byte aligned, and on x86_64
/// an aligned access may become an SSE memory operand, which faults unless 16-byte aligned.
fn vflags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Byte masks (on `I8X16`) of the shuffles used: lane `k` of the first operand in both lanes
/// (`pshufd`), and the low or high lanes of two operands side by side (`punpck{l,h}qdq`).
fn lanes_mask(first: u8, second: u8) -> [u8; 16] {
    std::array::from_fn(|i| if i < 8 { first * 8 } else { second * 8 } + (i % 8) as u8)
}

impl Lower<'_, '_> {
    /// Whether the vector code applies to this build (the option, and a target with `F64X2`
    /// registers: both JIT and object code are for the host).
    pub(super) fn simd_target(enabled: bool) -> bool {
        enabled && cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
    }

    /// A node whose pairs cost no packing: already pairs, or in memory (vector loads).
    fn ready(&self, id: NodeId) -> bool {
        self.pairs[id.index()].is_some() || self.mem[id.index()].is_some()
    }

    pub(super) fn has_pairs(&self, id: NodeId) -> bool {
        self.pairs[id.index()].is_some()
    }

    fn vload(&mut self, base: Value, elems: usize) -> Value {
        let pure = self.readonly.contains(&base);
        let (p, o) = self.offset(base, elems);
        let flags = if pure {
            vflags().with_readonly().with_can_move()
        } else {
            vflags()
        };
        self.b.ins().load(F64X2, flags, p, o)
    }

    pub(super) fn vstore(&mut self, x: Value, base: Value, elems: usize) {
        let (p, o) = self.offset(base, elems);
        self.b.ins().store(vflags(), x, p, o);
    }

    fn shuffle(&mut self, a: Value, b: Value, mask: [u8; 16]) -> Value {
        let le = MemFlagsData::new().with_endianness(Endianness::Little);
        let imm = self
            .b
            .func
            .dfg
            .immediates
            .push(ConstantData::from(&mask[..]));
        let (xa, xb) = (
            self.b.ins().bitcast(I8X16, le, a),
            self.b.ins().bitcast(I8X16, le, b),
        );
        let s = self.b.ins().shuffle(xa, xb, imm);
        self.b.ins().bitcast(F64X2, le, s)
    }

    fn pack(&mut self, lo: Value, hi: Value) -> Value {
        if lo == hi {
            return self.b.ins().splat(F64X2, lo);
        }
        let v = self.b.ins().scalar_to_vector(F64X2, lo);
        self.b.ins().insertlane(v, hi, 1)
    }

    /// Elements `e, e + 1` of a node as one vector, from whichever form is cheapest; the last
    /// element of an odd length in both lanes (never a read past the end).
    fn pair_at(&mut self, id: NodeId, e: usize) -> Result<Value, String> {
        if e + 1 >= self.len(id) {
            let x = self.elem(id, e)?;
            return Ok(self.b.ins().splat(F64X2, x));
        }
        if let Some(p) = &self.pairs[id.index()]
            && e.is_multiple_of(2)
            && let Some(&v) = p.v.get(e / 2)
        {
            return Ok(v);
        }
        if let Some(base) = self.mem[id.index()] {
            return Ok(self.vload(base, e));
        }
        let (lo, hi) = (self.elem(id, e)?, self.elem(id, e + 1)?);
        Ok(self.pack(lo, hi))
    }

    /// Element `i` of a node in both lanes.
    fn splat_elem(&mut self, id: NodeId, i: usize) -> Result<Value, String> {
        if self.regs[id.index()].is_none()
            && let Some(p) = &self.pairs[id.index()]
            && let Some(&v) = p.v.get(i / 2)
        {
            let k = (i % 2) as u8;
            return Ok(self.shuffle(v, v, lanes_mask(k, k)));
        }
        let x = self.elem(id, i)?;
        Ok(self.b.ins().splat(F64X2, x))
    }

    /// The scalar elements of a pairs form.
    pub(super) fn unpack(&mut self, p: &Pairs) -> Vec<Value> {
        let mut r = Vec::with_capacity(2 * p.v.len() + 1);
        for &v in &p.v {
            r.push(self.b.ins().extractlane(v, 0));
            r.push(self.b.ins().extractlane(v, 1));
        }
        r.extend(p.tail);
        r
    }

    /// Element `i` of a pairs form.
    pub(super) fn pair_elem(&mut self, p: &Pairs, i: usize) -> Option<Value> {
        match p.v.get(i / 2) {
            Some(&v) => Some(self.b.ins().extractlane(v, (i % 2) as u8)),
            None if i == 2 * p.v.len() => p.tail,
            None => None,
        }
    }

    /// Stores a pairs form at `base`.
    pub(super) fn store_pairs(&mut self, p: &Pairs, base: Value) {
        for (k, &v) in p.v.iter().enumerate() {
            self.vstore(v, base, 2 * k);
        }
        if let Some(t) = p.tail {
            self.store(t, base, 2 * p.v.len());
        }
    }

    /// `dst[at + i] = id[i]` for `i < len`, pairs at a time. False (nothing emitted) where the
    /// node would have to be packed from scalars first.
    pub(super) fn write_pairs(
        &mut self,
        id: NodeId,
        dst: Value,
        at: usize,
        len: usize,
    ) -> Result<bool, String> {
        if !self.simd || !self.ready(id) || len < 2 {
            return Ok(false);
        }
        for k in 0..len / 2 {
            let v = self.pair_at(id, 2 * k)?;
            self.vstore(v, dst, at + 2 * k);
        }
        if len % 2 == 1 {
            let x = self.elem(id, len - 1)?;
            self.store(x, dst, at + len - 1);
        }
        Ok(true)
    }

    /// `dst[at + i] += id[i]` for `i` in `range`, pairs at a time (the held value first, as the
    /// scalar code adds). False where the vector code does not apply.
    pub(super) fn accumulate_pairs(
        &mut self,
        id: NodeId,
        dst: Value,
        at: usize,
        range: &std::ops::Range<usize>,
    ) -> Result<bool, String> {
        if !self.simd || range.len() < 2 {
            return Ok(false);
        }
        let mut i = range.start;
        while i < range.end {
            if i + 1 < range.end {
                let x = self.pair_at(id, i)?;
                let held = self.vload(dst, at + i);
                let sum = self.b.ins().fadd(held, x);
                self.vstore(sum, dst, at + i);
                i += 2;
            } else {
                let x = self.elem(id, i)?;
                let held = self.load(dst, at + i);
                let sum = self.b.ins().fadd(held, x);
                self.store(sum, dst, at + i);
                i += 1;
            }
        }
        Ok(true)
    }

    /// Lowers an unrolled node as vector code where it applies; false (nothing emitted)
    /// otherwise, for the scalar code to take it.
    pub(super) fn node_pairs(&mut self, id: NodeId) -> Result<bool, String> {
        let len = self.len(id);
        if !self.simd || len < 2 || len > self.unroll {
            return Ok(false);
        }
        let op = self.f.graph.node(id).op.clone();
        let p = match op {
            Op::Unary(u, x)
                if matches!(u, Unary::Neg | Unary::Abs | Unary::Sqrt | Unary::Square)
                    && self.ready(x) =>
            {
                self.map_pairs(len, |l, e| {
                    let v = l.pair_at(x, e)?;
                    Ok(match u {
                        Unary::Neg => l.b.ins().fneg(v),
                        Unary::Abs => l.b.ins().fabs(v),
                        Unary::Sqrt => l.b.ins().sqrt(v),
                        _ => l.b.ins().fmul(v, v),
                    })
                })?
            }
            Op::Binary(Binary::Pow, a, b)
                if self.len(a) == len
                    && self.f.graph.const_value(b) == Some(3.0)
                    && self.ready(a) =>
            {
                // `x^3` is `(x·x)·x`, as in the scalar code.
                self.map_pairs(len, |l, e| {
                    let v = l.pair_at(a, e)?;
                    let v2 = l.b.ins().fmul(v, v);
                    Ok(l.b.ins().fmul(v2, v))
                })?
            }
            Op::Binary(op @ (Binary::Add | Binary::Sub | Binary::Mul | Binary::Div), a, b)
                if [a, b].iter().any(|&x| self.len(x) == len && self.ready(x)) =>
            {
                let operand = |l: &mut Self, x: NodeId, e: usize| {
                    if l.len(x) == 1 {
                        l.splat_elem(x, 0)
                    } else {
                        l.pair_at(x, e)
                    }
                };
                self.map_pairs(len, |l, e| {
                    let (va, vb) = (operand(l, a, e)?, operand(l, b, e)?);
                    Ok(match op {
                        Binary::Add => l.b.ins().fadd(va, vb),
                        Binary::Sub => l.b.ins().fsub(va, vb),
                        Binary::Mul => l.b.ins().fmul(va, vb),
                        _ => l.b.ins().fdiv(va, vb),
                    })
                })?
            }
            Op::Outer(a, b) if self.len(b).is_multiple_of(2) => {
                // Row i: a[i] in both lanes times b's pairs.
                let n = self.len(b);
                let mut v = Vec::with_capacity(len / 2);
                for i in 0..self.len(a) {
                    let s = self.splat_elem(a, i)?;
                    for j in (0..n).step_by(2) {
                        let q = self.pair_at(b, j)?;
                        v.push(self.b.ins().fmul(s, q));
                    }
                }
                Pairs { v, tail: None }
            }
            Op::MatVec(m, x) if self.len(x) > 0 => match self.f.graph.node(m).op {
                Op::Transpose(w) if self.ready(w) => self.matvec_t_pairs(w, x, len)?,
                _ if self.ready(m) => self.matvec_pairs(m, x, len)?,
                _ => return Ok(false),
            },
            _ => return Ok(false),
        };
        self.pairs[id.index()] = Some(p);
        Ok(true)
    }

    /// Pairs `k` from `pair(2k)`, and the odd last element from lane 0 of `pair(len − 1)`
    /// (whose operands are that element in both lanes: `pair_at`).
    fn map_pairs(
        &mut self,
        len: usize,
        mut pair: impl FnMut(&mut Self, usize) -> Result<Value, String>,
    ) -> Result<Pairs, String> {
        let v = (0..len / 2)
            .map(|k| pair(self, 2 * k))
            .collect::<Result<_, _>>()?;
        let tail = if len % 2 == 1 {
            let last = pair(self, len - 1)?;
            Some(self.b.ins().extractlane(last, 0))
        } else {
            None
        };
        Ok(Pairs { v, tail })
    }

    /// `wᵀ·x` with `w` of `x.len()` rows and `n` columns: output columns `c, c + 1` are
    /// contiguous in each row of `w`, so `Σ_r [w[r][c], w[r][c+1]]·x[r]`, rows in order.
    fn matvec_t_pairs(&mut self, w: NodeId, x: NodeId, n: usize) -> Result<Pairs, String> {
        let rows = self.len(x);
        let xs: Vec<Value> = (0..rows)
            .map(|r| self.splat_elem(x, r))
            .collect::<Result<_, _>>()?;
        // `rows > 0` (checked by the caller): `sum_regs` never makes its scalar −0 here.
        let sum = |l: &mut Self, c: usize| -> Result<Value, String> {
            let terms = xs
                .iter()
                .enumerate()
                .map(|(r, &xr)| {
                    let wv = l.pair_at(w, r * n + c)?;
                    Ok(l.b.ins().fmul(wv, xr))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(l.sum_regs(&terms))
        };
        let v = (0..n / 2)
            .map(|k| sum(self, 2 * k))
            .collect::<Result<_, _>>()?;
        let tail = if n % 2 == 1 {
            Some(self.scalar_dot(w, x, |r| r * n + n - 1)?)
        } else {
            None
        };
        Ok(Pairs { v, tail })
    }

    /// `m·x` two rows at a time: the column `[m[r][j], m[r+1][j]]` comes from the rows' pairs
    /// by a 2×2 transpose (`punpck{l,h}qdq`); `Σ_j` column·x[j], columns in order.
    fn matvec_pairs(&mut self, m: NodeId, x: NodeId, rows: usize) -> Result<Pairs, String> {
        let n = self.len(x);
        let xs: Vec<Value> = (0..n)
            .map(|j| self.splat_elem(x, j))
            .collect::<Result<_, _>>()?;
        let mut v = Vec::with_capacity(rows / 2);
        for r in (0..rows - rows % 2).step_by(2) {
            let mut terms = Vec::with_capacity(n);
            let mut j = 0;
            while j < n {
                let cols = if j + 1 < n {
                    let a = self.pair_at(m, r * n + j)?;
                    let b = self.pair_at(m, (r + 1) * n + j)?;
                    vec![
                        self.shuffle(a, b, lanes_mask(0, 2)),
                        self.shuffle(a, b, lanes_mask(1, 3)),
                    ]
                } else {
                    let (a, b) = (self.elem(m, r * n + j)?, self.elem(m, (r + 1) * n + j)?);
                    vec![self.pack(a, b)]
                };
                for (c, col) in cols.into_iter().enumerate() {
                    terms.push(self.b.ins().fmul(col, xs[j + c]));
                }
                j += 2;
            }
            v.push(self.sum_regs(&terms));
        }
        let tail = if rows % 2 == 1 {
            let r = rows - 1;
            Some(self.scalar_dot(m, x, |j| r * n + j)?)
        } else {
            None
        };
        Ok(Pairs { v, tail })
    }

    /// `Σ_k w[at(k)]·x[k]` over `x`'s elements in order, scalar: the odd output of a mat-vec
    /// (a row of `m`, or the last column of a transposed `w`).
    fn scalar_dot(
        &mut self,
        w: NodeId,
        x: NodeId,
        at: impl Fn(usize) -> usize,
    ) -> Result<Value, String> {
        let terms = (0..self.len(x))
            .map(|k| {
                let (a, q) = (self.elem(w, at(k))?, self.elem(x, k)?);
                Ok(self.b.ins().fmul(a, q))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(self.sum_regs(&terms))
    }
}
