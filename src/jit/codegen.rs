//! IR → Cranelift IR for one sample. Safe code: it only builds CLIF.
//!
//! The kernel's signature is `fn(args: *const *const f64, out: *mut f64, scratch: *mut f64)`:
//! one pointer per argument in the function's argument order, the flat output row-major, and a
//! scratch buffer (its length is returned by [`lower`]) for tensors kept in memory.
//!
//! Each live node becomes one of two forms, chosen by the work it takes (flops, elements):
//! - *registers*: one SSA value per element, straight-line code (small tensors, all scalars);
//! - *memory*: an address in an argument or the scratch buffer, filled by loops (large tensors).
//!
//! Products past `Options::call_min` multiplies (mat-vecs, `Wᵀ·x` read from `W` in place, outer
//! products) are instead one call of a dense runtime symbol (`dense.rs`) that writes memory —
//! the node's slot of the output buffer when it is an output.
//!
//! A consumer asks for the form it needs; conversions (loads, stores) are emitted once and
//! cached. Slices, reshapes and inputs in memory are address arithmetic, never copies.
//!
//! Invariant: every reduction adds in the interpreter's order (left to right, starting from the
//! first term; an empty sum is −0, like `Iterator::sum`), and every operation without a
//! Cranelift instruction calls the interpreter's own scalar function (`runtime.rs`), so kernels
//! agree with `ir::eval` bit for bit.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{FuncRef, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::{Options, runtime};
use simd::Pairs;

mod simd;
use crate::ir::{Binary, Function, NodeId, Op, Shape, Unary, operands};

/// Up to this much work (elements or multiply-adds) a node is unrolled into registers.
/// Measured (debug build of glassbox, Cranelift at opt-level 2): the spiral field (a 2-50-2
/// tanh net) takes 1.0 µs per call unrolled vs 1.4 µs as loops, compiled in 5 ms; at 4096 the
/// digits net (33-64-32) unrolls its 64×33 layer, calls get slower (5.7 vs 3.5 µs) and its
/// Jacobian takes 50 s to compile. Above 256 nothing got faster.
pub const DEFAULT_UNROLL: usize = 256;

/// Mat-vecs, transposed mat-vecs and outer products of at least this many multiplies call the
/// vectorised runtime (`dense.rs`): those past the unroll limit, which would otherwise be
/// scalar loops. Measured (`cargo bench --bench kernels`, docs/benchmarks.md): a call is 2–8x
/// faster than those loops from 512 multiplies on; at 64–128 one product alone is faster as a
/// call too, but inside the spiral's VJP (outer products of 100) the calls made the kernel
/// slower than its unrolled registers, so unrolled products stay inline.
pub const DEFAULT_CALL_MIN: usize = DEFAULT_UNROLL + 1;

/// Inner dimensions up to this size are unrolled inside a loop (a 50×2 layer's rows).
const INNER_UNROLL: usize = 16;

pub(super) fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Loads from the argument pointer array and from argument buffers at fixed offsets: neither is
/// written while the code runs (arguments are inputs; the output and scratch are disjoint) and
/// both are valid from entry on (checked or bound lengths), so the loads are pure (`readonly`,
/// `can_move`): unused ones vanish, repeated ones fold, and each is placed at its first use.
pub(super) fn arg_ptr_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly().with_can_move()
}

/// The runtime symbols `f` calls (so only those are imported).
pub(super) fn needed_symbols(f: &Function, options: Options) -> Vec<&'static str> {
    let live = f.live();
    let mut names = Vec::new();
    for (id, node) in f.graph.nodes() {
        if !live[id.index()] {
            continue;
        }
        let name = match node.op {
            Op::Unary(u, _) => {
                runtime::slice_symbol(u, node.shape.len()).or_else(|| runtime::unary_symbol(u))
            }
            Op::Binary(Binary::Pow, _, _) => Some(runtime::POW),
            _ => dense_call(f, id, options.call_min).map(|c| c.symbol()),
        };
        if let Some(n) = name
            && !names.contains(&n)
        {
            names.push(n);
        }
    }
    names
}

/// A product node lowered as a call of a dense runtime symbol: its operands as that symbol
/// takes them.
#[derive(Clone, Copy, Debug)]
enum DenseCall {
    /// `w·x`.
    MatVec { w: NodeId, x: NodeId },
    /// `wᵀ·x`: a mat-vec whose matrix is `transpose(w)`, read in place.
    MatVecT { w: NodeId, x: NodeId },
    /// `a ⊗ b`.
    Outer { a: NodeId, b: NodeId },
}

impl DenseCall {
    fn symbol(self) -> &'static str {
        match self {
            DenseCall::MatVec { .. } => runtime::MATVEC,
            DenseCall::MatVecT { .. } => runtime::MATVEC_T,
            DenseCall::Outer { .. } => runtime::OUTER,
        }
    }
}

/// The dense call for node `id`, if it is a product of at least `call_min` multiplies (below,
/// the call and its stores cost more than inline code).
fn dense_call(f: &Function, id: NodeId, call_min: usize) -> Option<DenseCall> {
    let g = &f.graph;
    let (call, work) = match g.node(id).op {
        Op::MatVec(m, x) => {
            let work = g.shape(m).len();
            match g.node(m).op {
                Op::Transpose(w) => (DenseCall::MatVecT { w, x }, work),
                _ => (DenseCall::MatVec { w: m, x }, work),
            }
        }
        Op::Outer(a, b) => (DenseCall::Outer { a, b }, g.shape(id).len()),
        _ => return None,
    };
    (work >= call_min.max(1)).then_some(call)
}

/// Transposes that only feed dense `wᵀ·x` calls (which read the source in place): they are
/// never lowered.
fn read_in_place(f: &Function, call_min: usize) -> HashSet<NodeId> {
    let live = f.live();
    let mut other_use = HashSet::new();
    for o in &f.outputs {
        other_use.insert(o.node);
    }
    for (id, node) in f.graph.nodes() {
        if !live[id.index()] {
            continue;
        }
        let in_place = match dense_call(f, id, call_min) {
            Some(DenseCall::MatVecT { .. }) => Some(operands(&node.op)[0]),
            _ => None,
        };
        for x in operands(&node.op) {
            if Some(x) != in_place {
                other_use.insert(x);
            }
        }
    }
    f.graph
        .nodes()
        .filter(|(id, node)| {
            matches!(node.op, Op::Transpose(_)) && live[id.index()] && !other_use.contains(id)
        })
        .map(|(id, _)| id)
        .collect()
}

/// The lowering state: each node's value in registers and/or memory, cached per form.
/// `batch.rs` drives it too, resetting the batch-varying nodes at each loop over samples.
pub(super) struct Lower<'a, 'b> {
    pub(super) b: &'b mut FunctionBuilder<'a>,
    f: &'b Function,
    funcs: &'b HashMap<&'static str, FuncRef>,
    regs: Vec<Option<Vec<Value>>>,
    mem: Vec<Option<Value>>,
    /// Two-wide vectors (`simd.rs`), when the node was lowered as vector code.
    pairs: Vec<Option<Pairs>>,
    /// Whether vector code is emitted (`Options::simd` on a target with `F64X2`).
    simd: bool,
    /// The current sample's pointer for each argument (batch loops move the batched ones).
    pub(super) args: Vec<Value>,
    scratch: Value,
    pub(super) scratch_len: usize,
    unroll: usize,
    call_min: usize,
    /// Transposes never lowered (see [`read_in_place`]).
    in_place: HashSet<NodeId>,
    /// The output buffer and each output node's first offset in it (per-sample kernels only):
    /// a runtime call writes such a node straight into its slot instead of scratch, which
    /// saves the copy; `placed` lists the nodes written so.
    out: Option<Value>,
    out_slots: HashMap<NodeId, usize>,
    placed: HashSet<NodeId>,
    /// Addresses inside argument buffers at fixed offsets from the entry's pointers: their
    /// loads are pure (`readonly`: nothing writes an argument during a call; `can_move`: valid
    /// from entry on), so Cranelift places each at its first use instead of keeping it live
    /// (spilled across runtime calls) from where it was asked for.
    readonly: HashSet<Value>,
}

/// Emits the body of the kernel into `b` (whose function has the kernel signature) and returns
/// the scratch length in `f64`s. `funcs` holds the imported runtime symbols.
pub(super) fn lower(
    b: &mut FunctionBuilder<'_>,
    f: &Function,
    funcs: &HashMap<&'static str, FuncRef>,
    options: Options,
) -> Result<usize, String> {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let [args_ptr, out, scratch] = params[..] else {
        return Err(format!(
            "kernel signature has {} parameters, expected 3",
            params.len()
        ));
    };
    let args = (0..f.args.len())
        .map(|k| b.ins().load(I64, arg_ptr_flags(), args_ptr, (8 * k) as i32))
        .collect();
    let mut l = Lower::new(b, f, funcs, args, scratch, options);
    let from = options.accumulate_from;
    let mut at = 0;
    for o in &f.outputs {
        let len = f.graph.shape(o.node).len();
        // An accumulated slot holds the caller's sum until the end: nothing is placed there.
        if at + len <= from {
            l.out_slots.entry(o.node).or_insert(at);
        }
        at += len;
    }
    l.out = Some(out);
    let live = f.live();
    for (id, _) in f.graph.nodes() {
        if live[id.index()] {
            l.node(id)?;
        }
    }
    let mut at = 0;
    for o in &f.outputs {
        let len = f.graph.shape(o.node).len();
        let written = from.saturating_sub(at).min(len);
        if written < len {
            l.write(o.node, out, at, written)?;
            l.accumulate(o.node, out, at, written..len)?;
        } else if !(l.placed.contains(&o.node) && l.out_slots.get(&o.node) == Some(&at)) {
            l.write(o.node, out, at, len)?;
        }
        at += len;
    }
    l.b.ins().return_(&[]);
    l.b.seal_all_blocks();
    Ok(l.scratch_len)
}

impl<'a, 'b> Lower<'a, 'b> {
    pub(super) fn new(
        b: &'b mut FunctionBuilder<'a>,
        f: &'b Function,
        funcs: &'b HashMap<&'static str, FuncRef>,
        args: Vec<Value>,
        scratch: Value,
        options: Options,
    ) -> Lower<'a, 'b> {
        let n = f.graph.len();
        let readonly = args.iter().copied().collect();
        Lower {
            in_place: read_in_place(f, options.call_min),
            out: None,
            out_slots: HashMap::new(),
            placed: HashSet::new(),
            readonly,
            b,
            f,
            funcs,
            regs: vec![None; n],
            mem: vec![None; n],
            pairs: vec![None; n],
            simd: Self::simd_target(options.simd),
            args,
            scratch,
            scratch_len: 0,
            unroll: options.unroll,
            call_min: options.call_min,
        }
    }

    /// Drops a node's cached forms (its value belongs to a sample loop that has ended).
    pub(super) fn forget(&mut self, id: NodeId) {
        self.regs[id.index()] = None;
        self.mem[id.index()] = None;
        self.pairs[id.index()] = None;
    }

    pub(super) fn has_regs(&self, id: NodeId) -> bool {
        self.regs[id.index()].is_some()
    }

    fn shape(&self, id: NodeId) -> Shape {
        self.f.graph.shape(id)
    }

    pub(super) fn len(&self, id: NodeId) -> usize {
        self.shape(id).len()
    }

    // ---- addresses, loads, stores ----------------------------------------------------------

    /// `base + 8·elems`, folded into the instruction's offset when it fits.
    fn offset(&mut self, base: Value, elems: usize) -> (Value, i32) {
        match i32::try_from(8 * elems) {
            Ok(o) => (base, o),
            Err(_) => (self.b.ins().iadd_imm_s(base, (8 * elems) as i64), 0),
        }
    }

    pub(super) fn addr(&mut self, base: Value, elems: usize) -> Value {
        if elems == 0 {
            return base;
        }
        let a = self.b.ins().iadd_imm_s(base, (8 * elems) as i64);
        if self.readonly.contains(&base) {
            self.readonly.insert(a);
        }
        a
    }

    pub(super) fn load(&mut self, base: Value, elems: usize) -> Value {
        let pure = self.readonly.contains(&base);
        let (p, o) = self.offset(base, elems);
        let flags = if pure { arg_ptr_flags() } else { flags() };
        self.b.ins().load(F64, flags, p, o)
    }

    pub(super) fn store(&mut self, x: Value, base: Value, elems: usize) {
        let (p, o) = self.offset(base, elems);
        self.b.ins().store(flags(), x, p, o);
    }

    /// Address of element `i` (a dynamic index) times `stride` plus `extra` elements.
    pub(super) fn dyn_addr(&mut self, base: Value, i: Value, stride: usize, extra: usize) -> Value {
        let scaled = self.b.ins().imul_imm_s(i, (8 * stride) as i64);
        let p = self.b.ins().iadd(base, scaled);
        self.addr(p, extra)
    }

    /// Where a runtime call writes node `id`: its output slot if it has one, else scratch.
    fn destination(&mut self, id: NodeId) -> Value {
        match (self.out, self.out_slots.get(&id).copied()) {
            (Some(out), Some(at)) => {
                self.placed.insert(id);
                self.addr(out, at)
            }
            _ => self.alloc(self.len(id)),
        }
    }

    fn alloc(&mut self, len: usize) -> Value {
        let at = self.scratch_len;
        self.scratch_len += len;
        let s = self.scratch;
        self.addr(s, at)
    }

    // ---- forms -------------------------------------------------------------------------------

    /// The node's elements as SSA values (loads them once if it lives in memory).
    pub(super) fn regs(&mut self, id: NodeId) -> Result<Vec<Value>, String> {
        if let Some(r) = &self.regs[id.index()] {
            return Ok(r.clone());
        }
        if self.mem[id.index()].is_none()
            && let Some(p) = self.pairs[id.index()].clone()
        {
            let r = self.unpack(&p);
            self.regs[id.index()] = Some(r.clone());
            return Ok(r);
        }
        let base = self.mem[id.index()].ok_or_else(|| format!("node {} not lowered", id.0))?;
        let r: Vec<Value> = (0..self.len(id)).map(|i| self.load(base, i)).collect();
        self.regs[id.index()] = Some(r.clone());
        Ok(r)
    }

    /// The node's address in memory (stores it to scratch once if it lives in registers).
    pub(super) fn mem(&mut self, id: NodeId) -> Result<Value, String> {
        if let Some(m) = self.mem[id.index()] {
            return Ok(m);
        }
        if self.regs[id.index()].is_none()
            && let Some(p) = self.pairs[id.index()].clone()
        {
            let base = self.alloc(self.len(id));
            self.store_pairs(&p, base);
            self.mem[id.index()] = Some(base);
            return Ok(base);
        }
        let r = self.regs[id.index()]
            .clone()
            .ok_or_else(|| format!("node {} not lowered", id.0))?;
        let base = self.alloc(r.len());
        for (i, &x) in r.iter().enumerate() {
            self.store(x, base, i);
        }
        self.mem[id.index()] = Some(base);
        Ok(base)
    }

    /// Element `i` of a node, in whichever form it has.
    pub(super) fn elem(&mut self, id: NodeId, i: usize) -> Result<Value, String> {
        if let Some(r) = &self.regs[id.index()] {
            return r
                .get(i)
                .copied()
                .ok_or_else(|| format!("element {i} of node {}", id.0));
        }
        if self.mem[id.index()].is_none()
            && let Some(p) = self.pairs[id.index()].clone()
        {
            return self
                .pair_elem(&p, i)
                .ok_or_else(|| format!("element {i} of node {}", id.0));
        }
        let base = self.mem(id)?;
        Ok(self.load(base, i))
    }

    fn scalar(&mut self, id: NodeId) -> Result<Value, String> {
        self.elem(id, 0)
    }

    fn set_regs(&mut self, id: NodeId, r: Vec<Value>) {
        self.regs[id.index()] = Some(r);
    }

    pub(super) fn set_mem(&mut self, id: NodeId, m: Value) {
        self.mem[id.index()] = Some(m);
    }

    /// Copies `len` elements of `id` to `dst + at`.
    pub(super) fn write(
        &mut self,
        id: NodeId,
        dst: Value,
        at: usize,
        len: usize,
    ) -> Result<(), String> {
        if len <= self.unroll && self.write_pairs(id, dst, at, len)? {
            return Ok(());
        }
        if self.regs[id.index()].is_some() || len <= self.unroll {
            for i in 0..len {
                let x = self.elem(id, i)?;
                self.store(x, dst, at + i);
            }
            return Ok(());
        }
        let src = self.mem(id)?;
        let dst = self.addr(dst, at);
        self.for_range(0, len, |l, i| {
            let s = l.dyn_addr(src, i, 1, 0);
            let x = l.b.ins().load(F64, flags(), s, 0);
            let d = l.dyn_addr(dst, i, 1, 0);
            l.b.ins().store(flags(), x, d, 0);
            Ok(())
        })
    }

    /// `dst[at + i] += id[i]` for `i` in `range` (the sum's order: the held value first).
    fn accumulate(
        &mut self,
        id: NodeId,
        dst: Value,
        at: usize,
        range: std::ops::Range<usize>,
    ) -> Result<(), String> {
        let inline = self.regs[id.index()].is_some() || range.len() <= self.unroll;
        if inline && self.accumulate_pairs(id, dst, at, &range)? {
            return Ok(());
        }
        if inline {
            for i in range {
                let x = self.elem(id, i)?;
                let held = self.load(dst, at + i);
                let sum = self.b.ins().fadd(held, x);
                self.store(sum, dst, at + i);
            }
            return Ok(());
        }
        let src = self.mem(id)?;
        let dst = self.addr(dst, at);
        self.for_range(range.start, range.end, |l, i| {
            let s = l.dyn_addr(src, i, 1, 0);
            let x = l.b.ins().load(F64, flags(), s, 0);
            let d = l.dyn_addr(dst, i, 1, 0);
            let held = l.b.ins().load(F64, flags(), d, 0);
            let sum = l.b.ins().fadd(held, x);
            l.b.ins().store(flags(), sum, d, 0);
            Ok(())
        })
    }

    // ---- loops -------------------------------------------------------------------------------

    /// `for i in start..end { body(i) }` as a do-while loop (the range is known non-empty).
    pub(super) fn for_range(
        &mut self,
        start: usize,
        end: usize,
        mut body: impl FnMut(&mut Self, Value) -> Result<(), String>,
    ) -> Result<(), String> {
        if start >= end {
            return Ok(());
        }
        let var = self.b.declare_var(I64);
        let first = self.b.ins().iconst(I64, start as i64);
        self.b.def_var(var, first);
        let head = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let i = self.b.use_var(var);
        body(self, i)?;
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(var, next);
        let more = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, next, end as i64);
        self.b.ins().brif(more, head, &[], exit, &[]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    /// `for i in 0..end { body(i) }` for a dynamic `end` known to be at least 1 (the batch).
    pub(super) fn for_count(
        &mut self,
        end: Value,
        mut body: impl FnMut(&mut Self, Value) -> Result<(), String>,
    ) -> Result<(), String> {
        let var = self.b.declare_var(I64);
        let first = self.b.ins().iconst(I64, 0);
        self.b.def_var(var, first);
        let head = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        let i = self.b.use_var(var);
        body(self, i)?;
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(var, next);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, next, end);
        self.b.ins().brif(more, head, &[], exit, &[]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    /// `Σ_{l<n} term(l)` in the interpreter's order, `term` given a dynamic index.
    fn sum_loop(
        &mut self,
        n: usize,
        mut term: impl FnMut(&mut Self, Value) -> Result<Value, String>,
    ) -> Result<Value, String> {
        if n == 0 {
            return Ok(self.b.ins().f64const(-0.0));
        }
        let zero = self.b.ins().iconst(I64, 0);
        let first = term(self, zero)?;
        let acc: Variable = self.b.declare_var(F64);
        self.b.def_var(acc, first);
        self.for_range(1, n, |l, i| {
            let t = term(l, i)?;
            let a = l.b.use_var(acc);
            let s = l.b.ins().fadd(a, t);
            l.b.def_var(acc, s);
            Ok(())
        })?;
        Ok(self.b.use_var(acc))
    }

    /// Left-to-right sum of values (−0 when empty).
    fn sum_regs(&mut self, terms: &[Value]) -> Value {
        match terms.split_first() {
            None => self.b.ins().f64const(-0.0),
            Some((&first, rest)) => rest.iter().fold(first, |acc, &t| self.b.ins().fadd(acc, t)),
        }
    }

    // ---- scalar operations -------------------------------------------------------------------

    pub(super) fn call(&mut self, name: &str, args: &[Value]) -> Result<Value, String> {
        let func = *self
            .funcs
            .get(name)
            .ok_or_else(|| format!("runtime symbol {name} not imported"))?;
        let inst = self.b.ins().call(func, args);
        self.b
            .inst_results(inst)
            .first()
            .copied()
            .ok_or_else(|| format!("runtime symbol {name} returns nothing"))
    }

    /// Calls a runtime symbol that returns nothing (the GEMM).
    pub(super) fn call_void(&mut self, name: &str, args: &[Value]) -> Result<(), String> {
        let func = *self
            .funcs
            .get(name)
            .ok_or_else(|| format!("runtime symbol {name} not imported"))?;
        self.b.ins().call(func, args);
        Ok(())
    }

    fn unary(&mut self, op: Unary, x: Value) -> Result<Value, String> {
        Ok(match op {
            Unary::Neg => self.b.ins().fneg(x),
            Unary::Abs => self.b.ins().fabs(x),
            Unary::Sqrt => self.b.ins().sqrt(x),
            Unary::Square => self.b.ins().fmul(x, x),
            Unary::Relu => {
                // x > 0 or NaN → x, else +0.
                let zero = self.b.ins().f64const(0.0);
                let keep = self.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
                self.b.ins().select(keep, x, zero)
            }
            Unary::Step => {
                // x > 0 → 1, NaN → NaN, else 0.
                let (zero, one) = (self.b.ins().f64const(0.0), self.b.ins().f64const(1.0));
                let pos = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                let nan = self.b.ins().fcmp(FloatCC::Unordered, x, x);
                let rest = self.b.ins().select(nan, x, zero);
                self.b.ins().select(pos, one, rest)
            }
            Unary::Sign => {
                // x > 0 → 1, x < 0 → −1, ±0 and NaN → x.
                let (zero, one) = (self.b.ins().f64const(0.0), self.b.ins().f64const(1.0));
                let minus = self.b.ins().f64const(-1.0);
                let pos = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                let neg = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                let rest = self.b.ins().select(neg, minus, x);
                self.b.ins().select(pos, one, rest)
            }
            _ => {
                let name = runtime::unary_symbol(op)
                    .ok_or_else(|| format!("no runtime symbol for {}", op.name()))?;
                self.call(name, &[x])?
            }
        })
    }

    fn binary(&mut self, op: Binary, a: Value, b: Value) -> Result<Value, String> {
        Ok(match op {
            Binary::Add => self.b.ins().fadd(a, b),
            Binary::Sub => self.b.ins().fsub(a, b),
            Binary::Mul => self.b.ins().fmul(a, b),
            Binary::Div => self.b.ins().fdiv(a, b),
            Binary::Pow => self.call(runtime::POW, &[a, b])?,
            Binary::Max | Binary::Min => {
                // a ≥ b (a ≤ b) or b is NaN → a, else b: the interpreter's NaN rules.
                let cc = if op == Binary::Max {
                    FloatCC::GreaterThanOrEqual
                } else {
                    FloatCC::LessThanOrEqual
                };
                let wins = self.b.ins().fcmp(cc, a, b);
                let nan = self.b.ins().fcmp(FloatCC::Unordered, b, b);
                let keep = self.b.ins().bor(wins, nan);
                self.b.ins().select(keep, a, b)
            }
        })
    }

    // ---- nodes -------------------------------------------------------------------------------

    pub(super) fn node(&mut self, id: NodeId) -> Result<(), String> {
        let node = self.f.graph.node(id).clone();
        let len = node.shape.len();
        let small = len <= self.unroll;
        if let Some(call) = dense_call(self.f, id, self.call_min) {
            return self.call_dense(id, call);
        }
        if self.in_place.contains(&id) || self.node_pairs(id)? {
            return Ok(());
        }
        match node.op {
            Op::Const(bits) => {
                let c = self.b.ins().f64const(f64::from_bits(bits));
                self.set_regs(id, vec![c]);
            }
            Op::Input { arg, offset } => {
                let base = *self
                    .args
                    .get(arg)
                    .ok_or_else(|| format!("input reads missing argument #{arg}"))?;
                let m = self.addr(base, offset);
                self.set_mem(id, m);
            }
            Op::Unary(op, x) if runtime::slice_symbol(op, len).is_some() => {
                // One vectorised call for the tensor (its argument stored once if it lives in
                // registers) instead of one call per element, each spilling the live values.
                let name = runtime::slice_symbol(op, len).ok_or("slice symbol")?;
                let src = self.mem(x)?;
                let dst = self.destination(id);
                let n = self.b.ins().iconst(I64, len as i64);
                self.call_void(name, &[src, dst, n])?;
                self.set_mem(id, dst);
            }
            Op::Unary(op, x) if small => {
                let xs = self.regs(x)?;
                let r = xs
                    .iter()
                    .map(|&v| self.unary(op, v))
                    .collect::<Result<_, _>>()?;
                self.set_regs(id, r);
            }
            Op::Unary(op, x) => {
                let src = self.mem(x)?;
                let dst = self.alloc(len);
                self.for_range(0, len, |l, i| {
                    let s = l.dyn_addr(src, i, 1, 0);
                    let v = l.b.ins().load(F64, flags(), s, 0);
                    let r = l.unary(op, v)?;
                    let d = l.dyn_addr(dst, i, 1, 0);
                    l.b.ins().store(flags(), r, d, 0);
                    Ok(())
                })?;
                self.set_mem(id, dst);
            }
            Op::Binary(Binary::Pow, a, b)
                if small && self.len(a) == len && self.f.graph.const_value(b) == Some(3.0) =>
            {
                // `x^3` is `(x·x)·x` (`Binary::apply`): two multiplies, not a `pow` call.
                let xs = self.regs(a)?;
                let r = xs
                    .iter()
                    .map(|&x| {
                        let x2 = self.b.ins().fmul(x, x);
                        self.b.ins().fmul(x2, x)
                    })
                    .collect();
                self.set_regs(id, r);
            }
            Op::Binary(op, a, b) if small => {
                let (xa, xb) = (self.regs(a)?, self.regs(b)?);
                let r = (0..len)
                    .map(|i| {
                        let ea = if xa.len() == 1 { xa[0] } else { xa[i] };
                        let eb = if xb.len() == 1 { xb[0] } else { xb[i] };
                        self.binary(op, ea, eb)
                    })
                    .collect::<Result<_, _>>()?;
                self.set_regs(id, r);
            }
            Op::Binary(op, a, b) => {
                // A scalar operand stays in a register; a full one is read from memory.
                let operand = |l: &mut Self, x: NodeId| -> Result<Result<Value, Value>, String> {
                    if l.len(x) == 1 {
                        Ok(Ok(l.scalar(x)?))
                    } else {
                        Ok(Err(l.mem(x)?))
                    }
                };
                let (oa, ob) = (operand(self, a)?, operand(self, b)?);
                let dst = self.alloc(len);
                self.for_range(0, len, |l, i| {
                    let mut get = |o: Result<Value, Value>| match o {
                        Ok(v) => v,
                        Err(base) => {
                            let s = l.dyn_addr(base, i, 1, 0);
                            l.b.ins().load(F64, flags(), s, 0)
                        }
                    };
                    let (ea, eb) = (get(oa), get(ob));
                    let r = l.binary(op, ea, eb)?;
                    let d = l.dyn_addr(dst, i, 1, 0);
                    l.b.ins().store(flags(), r, d, 0);
                    Ok(())
                })?;
                self.set_mem(id, dst);
            }
            Op::Broadcast(s) => {
                let v = self.scalar(s)?;
                if small {
                    self.set_regs(id, vec![v; len]);
                } else {
                    let dst = self.alloc(len);
                    self.for_range(0, len, |l, i| {
                        let d = l.dyn_addr(dst, i, 1, 0);
                        l.b.ins().store(flags(), v, d, 0);
                        Ok(())
                    })?;
                    self.set_mem(id, dst);
                }
            }
            Op::Sum(x) => {
                let n = self.len(x);
                let r = if n <= self.unroll {
                    let xs = self.regs(x)?;
                    self.sum_regs(&xs)
                } else {
                    let base = self.mem(x)?;
                    self.sum_loop(n, |l, i| {
                        let s = l.dyn_addr(base, i, 1, 0);
                        Ok(l.b.ins().load(F64, flags(), s, 0))
                    })?
                };
                self.set_regs(id, vec![r]);
            }
            Op::Dot(a, b) => {
                let n = self.len(a);
                let r = if n <= self.unroll {
                    let (xa, xb) = (self.regs(a)?, self.regs(b)?);
                    let terms: Vec<Value> = xa
                        .iter()
                        .zip(&xb)
                        .map(|(&p, &q)| self.b.ins().fmul(p, q))
                        .collect();
                    self.sum_regs(&terms)
                } else {
                    let (ma, mb) = (self.mem(a)?, self.mem(b)?);
                    self.sum_loop(n, |l, i| {
                        let pa = l.dyn_addr(ma, i, 1, 0);
                        let pb = l.dyn_addr(mb, i, 1, 0);
                        let p = l.b.ins().load(F64, flags(), pa, 0);
                        let q = l.b.ins().load(F64, flags(), pb, 0);
                        Ok(l.b.ins().fmul(p, q))
                    })?
                };
                self.set_regs(id, vec![r]);
            }
            Op::MatVec(m, x) => self.matvec(id, m, x)?,
            Op::MatMul(a, b) => self.matmul(id, a, b)?,
            Op::Transpose(a) => {
                // Result m×n from an n×m source: r[i][j] = a[j][i].
                let (m, n) = dims(node.shape);
                if small {
                    let src = self.regs(a)?;
                    let r = (0..m)
                        .flat_map(|i| (0..n).map(move |j| j * m + i))
                        .map(|k| src.get(k).copied().ok_or("transpose out of range"))
                        .collect::<Result<_, _>>()?;
                    self.set_regs(id, r);
                } else {
                    let src = self.mem(a)?;
                    let dst = self.alloc(len);
                    self.for_range(0, m, |l, i| {
                        for j in 0..n {
                            let s = l.dyn_addr(src, i, 1, j * m);
                            let v = l.b.ins().load(F64, flags(), s, 0);
                            let d = l.dyn_addr(dst, i, n, j);
                            l.b.ins().store(flags(), v, d, 0);
                        }
                        Ok(())
                    })?;
                    self.set_mem(id, dst);
                }
            }
            Op::Outer(a, b) => {
                let (m, n) = (self.len(a), self.len(b));
                if small {
                    let (xa, xb) = (self.regs(a)?, self.regs(b)?);
                    let mut r = Vec::with_capacity(m * n);
                    for &p in &xa {
                        for &q in &xb {
                            r.push(self.b.ins().fmul(p, q));
                        }
                    }
                    self.set_regs(id, r);
                } else {
                    let ma = self.mem(a)?;
                    let inner = if n <= INNER_UNROLL {
                        Ok(self.regs(b)?)
                    } else {
                        Err(self.mem(b)?)
                    };
                    let dst = self.alloc(len);
                    self.for_range(0, m, |l, i| {
                        let pa = l.dyn_addr(ma, i, 1, 0);
                        let p = l.b.ins().load(F64, flags(), pa, 0);
                        let row = l.dyn_addr(dst, i, n, 0);
                        match &inner {
                            Ok(xb) => {
                                for (j, &q) in xb.iter().enumerate() {
                                    let v = l.b.ins().fmul(p, q);
                                    l.store(v, row, j);
                                }
                                Ok(())
                            }
                            Err(mb) => {
                                let mb = *mb;
                                l.for_range(0, n, |l, j| {
                                    let pb = l.dyn_addr(mb, j, 1, 0);
                                    let q = l.b.ins().load(F64, flags(), pb, 0);
                                    let v = l.b.ins().fmul(p, q);
                                    let d = l.dyn_addr(row, j, 1, 0);
                                    l.b.ins().store(flags(), v, d, 0);
                                    Ok(())
                                })
                            }
                        }
                    })?;
                    self.set_mem(id, dst);
                }
            }
            Op::Concat(ref parts) => {
                if small {
                    let mut r = Vec::with_capacity(len);
                    for &p in parts {
                        r.extend(self.regs(p)?);
                    }
                    self.set_regs(id, r);
                } else {
                    let dst = self.alloc(len);
                    let mut at = 0;
                    for &p in parts {
                        let n = self.len(p);
                        self.write(p, dst, at, n)?;
                        at += n;
                    }
                    self.set_mem(id, dst);
                }
            }
            Op::Slice { x, start } => {
                if self.regs[x.index()].is_some() || self.has_pairs(x) {
                    let r = self.regs(x)?;
                    let r = r
                        .get(start..start + len)
                        .ok_or("slice out of range")?
                        .to_vec();
                    self.set_regs(id, r);
                } else {
                    let base = self.mem(x)?;
                    let m = self.addr(base, start);
                    self.set_mem(id, m);
                }
            }
            Op::Index { x, i } => {
                let v = self.elem(x, i)?;
                self.set_regs(id, vec![v]);
            }
            Op::Reshape(x) => {
                if let Some(r) = self.regs[x.index()].clone() {
                    self.set_regs(id, r);
                } else if let Some(p) = self.pairs[x.index()].clone() {
                    self.pairs[id.index()] = Some(p);
                } else {
                    let m = self.mem(x)?;
                    self.set_mem(id, m);
                }
            }
        }
        Ok(())
    }

    /// One call of a dense runtime symbol into a fresh scratch region; the operands are stored
    /// once if they live in registers (a transposed matrix is read in place).
    fn call_dense(&mut self, id: NodeId, call: DenseCall) -> Result<(), String> {
        let (a, b, m, n) = match call {
            DenseCall::MatVec { w, x } => (w, x, self.len(id), self.len(x)),
            DenseCall::MatVecT { w, x } => (w, x, self.len(x), self.len(id)),
            DenseCall::Outer { a, b } => (a, b, self.len(a), self.len(b)),
        };
        let (pa, pb) = (self.mem(a)?, self.mem(b)?);
        let dst = self.destination(id);
        let m = self.b.ins().iconst(I64, m as i64);
        let n = self.b.ins().iconst(I64, n as i64);
        self.call_void(call.symbol(), &[pa, pb, dst, m, n])?;
        self.set_mem(id, dst);
        Ok(())
    }

    /// Row r of the result: Σ_j m[r][j]·x[j], left to right.
    fn matvec(&mut self, id: NodeId, m: NodeId, x: NodeId) -> Result<(), String> {
        let rows = self.len(id);
        let n = self.len(x);
        if rows * n <= self.unroll {
            let (mm, xs) = (self.regs(m)?, self.regs(x)?);
            let r = (0..rows)
                .map(|r| {
                    let terms: Vec<Value> = (0..n)
                        .map(|j| self.b.ins().fmul(mm[r * n + j], xs[j]))
                        .collect();
                    self.sum_regs(&terms)
                })
                .collect();
            self.set_regs(id, r);
            return Ok(());
        }
        let mm = self.mem(m)?;
        let dst = self.alloc(rows);
        if n <= INNER_UNROLL {
            let xs = self.regs(x)?;
            self.for_range(0, rows, |l, r| {
                let row = l.dyn_addr(mm, r, n, 0);
                let terms: Vec<Value> = (0..n)
                    .map(|j| {
                        let a = l.load(row, j);
                        l.b.ins().fmul(a, xs[j])
                    })
                    .collect();
                let s = l.sum_regs(&terms);
                let d = l.dyn_addr(dst, r, 1, 0);
                l.b.ins().store(flags(), s, d, 0);
                Ok(())
            })?;
        } else {
            let xm = self.mem(x)?;
            self.for_range(0, rows, |l, r| {
                let row = l.dyn_addr(mm, r, n, 0);
                let s = l.sum_loop(n, |l, j| {
                    let pa = l.dyn_addr(row, j, 1, 0);
                    let pb = l.dyn_addr(xm, j, 1, 0);
                    let a = l.b.ins().load(F64, flags(), pa, 0);
                    let q = l.b.ins().load(F64, flags(), pb, 0);
                    Ok(l.b.ins().fmul(a, q))
                })?;
                let d = l.dyn_addr(dst, r, 1, 0);
                l.b.ins().store(flags(), s, d, 0);
                Ok(())
            })?;
        }
        self.set_mem(id, dst);
        Ok(())
    }

    /// r[i][j] = Σ_l a[i][l]·b[l][j], left to right.
    fn matmul(&mut self, id: NodeId, a: NodeId, b: NodeId) -> Result<(), String> {
        let (m, n) = dims(self.shape(id));
        let k = self.len(a).checked_div(m).unwrap_or(0);
        if m * n * k <= self.unroll {
            let (xa, xb) = (self.regs(a)?, self.regs(b)?);
            let mut r = Vec::with_capacity(m * n);
            for i in 0..m {
                for j in 0..n {
                    let terms: Vec<Value> = (0..k)
                        .map(|l| self.b.ins().fmul(xa[i * k + l], xb[l * n + j]))
                        .collect();
                    r.push(self.sum_regs(&terms));
                }
            }
            self.set_regs(id, r);
            return Ok(());
        }
        let (ma, mb) = (self.mem(a)?, self.mem(b)?);
        let dst = self.alloc(m * n);
        self.for_range(0, m, |l, i| {
            let arow = l.dyn_addr(ma, i, k, 0);
            let drow = l.dyn_addr(dst, i, n, 0);
            l.for_range(0, n, |l, j| {
                let bcol = l.dyn_addr(mb, j, 1, 0);
                let s = l.sum_loop(k, |l, q| {
                    let pa = l.dyn_addr(arow, q, 1, 0);
                    let pb = l.dyn_addr(bcol, q, n, 0);
                    let x = l.b.ins().load(F64, flags(), pa, 0);
                    let y = l.b.ins().load(F64, flags(), pb, 0);
                    Ok(l.b.ins().fmul(x, y))
                })?;
                let d = l.dyn_addr(drow, j, 1, 0);
                l.b.ins().store(flags(), s, d, 0);
                Ok(())
            })
        })?;
        self.set_mem(id, dst);
        Ok(())
    }
}

fn dims(shape: Shape) -> (usize, usize) {
    match shape {
        Shape::Matrix(m, n) => (m, n),
        Shape::Vector(n) => (n, 1),
        Shape::Scalar => (1, 1),
    }
}
