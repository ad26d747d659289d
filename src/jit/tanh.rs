//! `tanh` inline, two lanes per instruction (`f64x2`): the operations of `ir::tanh` on
//! Cranelift values, so a kernel agrees with the interpreter bit for bit. A node's elements in
//! registers go through in pairs; an odd one out (and the loop form's single element) rides
//! in a pair with itself.

#![deny(unsafe_code)]

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F64, F64X2, I64, I64X2};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

use crate::ir::tanh::{TanhOps, tanh_with};

struct Lanes<'x, 'a> {
    b: &'x mut FunctionBuilder<'a>,
}

impl TanhOps for Lanes<'_, '_> {
    type V = Value;
    fn constant(&mut self, c: f64) -> Value {
        let s = self.b.ins().f64const(c);
        self.b.ins().splat(F64X2, s)
    }
    fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }
    fn sub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }
    fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }
    fn div(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }
    fn abs(&mut self, a: Value) -> Value {
        self.b.ins().fabs(a)
    }
    fn select_lt(&mut self, (a, b): (Value, Value), x: Value, y: Value) -> Value {
        let m = self.b.ins().fcmp(FloatCC::UnorderedOrLessThan, a, b);
        let m = self.b.ins().bitcast(F64X2, MemFlagsData::new(), m);
        self.b.ins().bitselect(m, x, y)
    }
    fn exp2_of_shifted(&mut self, kk: Value) -> Value {
        let bits = self.b.ins().bitcast(I64X2, MemFlagsData::new(), kk);
        let bias = self.b.ins().iconst(I64, 1023);
        let bias = self.b.ins().splat(I64X2, bias);
        let e = self.b.ins().iadd(bits, bias);
        let e = self.b.ins().ishl_imm_u(e, 52);
        self.b.ins().bitcast(F64X2, MemFlagsData::new(), e)
    }
    fn with_sign_of(&mut self, r: Value, x: Value) -> Value {
        let sign = self.constant(-0.0);
        let s = self.b.ins().band(x, sign);
        self.b.ins().bor(r, s)
    }
}

/// `tanh` of every value in `xs` (scalars `F64`), in pairs.
pub(super) fn tanh_values(b: &mut FunctionBuilder<'_>, xs: &[Value]) -> Vec<Value> {
    let mut out = Vec::with_capacity(xs.len());
    for pair in xs.chunks(2) {
        let v = b.ins().splat(F64X2, pair[0]);
        let v = match pair.get(1) {
            Some(&x1) => b.ins().insertlane(v, x1, 1),
            None => v,
        };
        let r = tanh_with(&mut Lanes { b: &mut *b }, v);
        for lane in 0..pair.len() {
            let lane = u8::try_from(lane).unwrap_or(0);
            out.push(b.ins().extractlane(r, lane));
        }
    }
    debug_assert!(out.iter().all(|&v| b.func.dfg.value_type(v) == F64));
    out
}
