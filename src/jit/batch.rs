//! Batched kernels: the loop over samples is inside the generated code, and a dense layer over
//! the batch is one matrix product (GEMM) instead of `batch` mat-vecs.
//!
//! Plan ([`plan`]): nodes that read no batched argument are *invariant* and computed once, in
//! a prologue. A `MatVec(W, x)` with `W` invariant and `x` varying (and enough work) becomes a
//! GEMM `Y = X·Wᵀ` over the whole batch. A GEMM needs all of `X` first, so the varying nodes
//! are split into *phases*: loops over the samples separated by the GEMMs between them. A
//! varying node read outside its own phase (or by a GEMM) is kept in a `[batch, len]` buffer;
//! batched inputs are re-read in every phase (address arithmetic, no copies).
//!
//! Summed outputs: outputs the caller names (the VJP's parameter gradients, which training
//! sums over the batch) are `Σ_b out_b` in one `[len]` buffer instead of `[batch, len]`. An
//! outer product of two varying vectors summed over the batch (`Σ_b v_b ⊗ x_b`, a weight
//! gradient) is one GEMM `Vᵀ·X`; other summed outputs are added sample by sample, in sample
//! order, from zero.
//!
//! Invariant: GEMMs change the summation order (and may fuse multiply-adds), so batched kernels
//! equal `ir::eval` up to rounding only (tested with a bound in `tests/jit/batch.rs`); nodes
//! that are not GEMMs are lowered by `codegen.rs` exactly as in the per-sample kernel.

use std::collections::HashMap;

use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{FuncRef, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

use super::Options;
use super::codegen::Lower;
use crate::ir::{Function, NodeId, Op, operands};

/// Summed outputs up to this length are accumulated by straight-line code.
const UNROLLED_SUM: usize = 256;

/// The runtime symbol for `C = A·B` with arbitrary strides (see `slice_runtime.rs`).
pub(super) const GEMM: &str = "glassbox_dgemm";

/// The runtime symbol for `C += A·B` (summed outer products add into the sums).
pub(super) const GEMM_ADD: &str = "glassbox_dgemm_add";

/// Where a batch matrix lives: a batched argument (row stride = the argument's length) or a
/// buffer of the plan (row stride = the node's length).
#[derive(Clone, Copy, Debug)]
enum Rows {
    Arg {
        arg: usize,
        offset: usize,
        stride: usize,
    },
    Buffer {
        index: usize,
        stride: usize,
    },
}

/// A GEMM between loops: `Y[batch, rows] = X[batch, n]·Mᵀ` for a mat-vec, or
/// `S[m, n] = Aᵀ·B` (`Σ_b a_b ⊗ b_b`) for a summed outer product.
#[derive(Clone, Debug)]
enum Gemm {
    MatVec {
        /// The invariant matrix node, and whether it is read transposed (`M = mᵀ`).
        m: NodeId,
        transposed: bool,
        rows: usize,
        n: usize,
        x: Rows,
        y: usize,
    },
    SummedOuter {
        a: Rows,
        b: Rows,
        m: usize,
        n: usize,
        /// Offset in the sums buffer.
        at: usize,
    },
}

/// What the batched kernel computes, and where.
#[derive(Clone, Debug, Default)]
pub(super) struct Plan {
    varying: Vec<bool>,
    /// Invariant nodes the prologue computes.
    prologue: Vec<NodeId>,
    /// Per loop phase: the varying nodes it computes (inputs excluded: re-read each phase).
    phases: Vec<Vec<NodeId>>,
    /// The GEMMs that run before loop phase `k` (index `phases.len()`: after the last loop).
    gemms: Vec<Vec<Gemm>>,
    /// Per node: the buffer holding its `[batch, len]` values, if any.
    buffer: Vec<Option<usize>>,
    /// Per buffer: its offset in the buffer area (in units of `batch` f64s) and row length.
    buffers: Vec<(usize, usize)>,
    /// What the loops write: a node, the phase it is written (or accumulated) in, whether it
    /// is summed, and its offset in the per-sample row or in the sums.
    writes: Vec<(NodeId, usize, bool, usize)>,
    /// Varying inputs, re-read in every phase.
    inputs: Vec<NodeId>,
    pub(super) out_len: usize,
    pub(super) sums_len: usize,
    /// `f64`s of buffer per sample.
    pub(super) per_sample: usize,
}

impl Plan {
    pub(super) fn uses_gemm(&self) -> bool {
        self.gemms.iter().any(|g| !g.is_empty())
    }
}

/// Plans the batched kernel of `f`; `summed[o]` says whether output `o` is summed over the
/// batch. A mat-vec becomes a GEMM when it has at least `gemm_min` multiply-adds per sample.
pub(super) fn plan(f: &Function, summed: &[bool], gemm_min: usize) -> Result<Plan, String> {
    let g = &f.graph;
    let n = g.len();
    let mut varying = vec![false; n];
    for (id, node) in g.nodes() {
        varying[id.index()] = match node.op {
            Op::Input { arg, .. } => f.args.get(arg).is_some_and(|a| a.batched),
            ref op => operands(op).iter().any(|x| varying[x.index()]),
        };
    }
    let len = |id: NodeId| g.shape(id).len();

    // Which mat-vecs and summed outer products become GEMMs.
    let mut matvec_gemm: Vec<Option<(NodeId, bool)>> = vec![None; n];
    for (id, node) in g.nodes() {
        if let Op::MatVec(m, x) = node.op
            && !varying[m.index()]
            && varying[x.index()]
            && len(m) >= gemm_min.max(1)
        {
            // A transposed invariant matrix is read in place with swapped strides.
            matvec_gemm[id.index()] = Some(match g.node(m).op {
                Op::Transpose(a) => (a, true),
                _ => (m, false),
            });
        }
    }
    // What the loops write: each per-sample output whole; each summed output as the leaves of
    // its concatenation (a VJP's `vjp_p` is a concat of per-slot pieces), where zero pieces
    // (gradients of slots `f` does not read) need nothing: the sums start at zero.
    let (mut writes, mut at_out, mut at_sum) = (Vec::new(), 0, 0);
    for (k, o) in f.outputs.iter().enumerate() {
        if summed.get(k).copied().unwrap_or(false) {
            let mut leaves = Vec::new();
            concat_leaves(f, o.node, at_sum, &mut leaves);
            for (node, at) in leaves {
                if !is_zero(f, node) {
                    writes.push(Write {
                        node,
                        summed: true,
                        at,
                    });
                }
            }
            at_sum += len(o.node);
        } else {
            writes.push(Write {
                node: o.node,
                summed: false,
                at: at_out,
            });
            at_out += len(o.node);
        }
    }
    let mut outer_gemm: Vec<Option<(NodeId, NodeId)>> = vec![None; writes.len()];
    for (k, o) in writes.iter().enumerate() {
        if o.summed
            && let Op::Outer(a, b) = g.node(o.node).op
            && varying[a.index()]
            && varying[b.index()]
            && len(o.node) >= gemm_min.max(1)
        {
            outer_gemm[k] = Some((a, b));
        }
    }

    // Needed nodes, from the outputs back; a GEMM needs its operands, not its own node's.
    let mut needed = vec![false; n];
    for (k, o) in writes.iter().enumerate() {
        match outer_gemm[k] {
            Some((a, b)) => {
                needed[a.index()] = true;
                needed[b.index()] = true;
            }
            None => needed[o.node.index()] = true,
        }
    }
    for i in (0..n).rev() {
        if !needed[i] {
            continue;
        }
        let id = NodeId(i as u32);
        match (matvec_gemm[i], &g.node(id).op) {
            (Some((m, _)), Op::MatVec(_, x)) => {
                needed[m.index()] = true;
                needed[x.index()] = true;
            }
            (_, op) => {
                for x in operands(op) {
                    needed[x.index()] = true;
                }
            }
        }
    }

    // Phases: `avail` is the first loop in which a varying node can be read.
    let is_input = |id: NodeId| matches!(g.node(id).op, Op::Input { .. });
    // The gap (before loop k) at which all of these are complete.
    let ready = |avail: &[usize], xs: &[NodeId]| -> usize {
        xs.iter()
            .filter(|x| varying[x.index()] && !is_input(**x))
            .map(|x| avail[x.index()] + 1)
            .max()
            .unwrap_or(0)
    };
    let mut avail = vec![0usize; n];
    let mut plan = Plan {
        varying: varying.clone(),
        ..Plan::default()
    };
    let mut gemm_at: Vec<(usize, NodeId)> = Vec::new();
    let mut loop_nodes: Vec<(usize, NodeId)> = Vec::new();
    for (id, node) in g.nodes() {
        let i = id.index();
        if !needed[i] {
            continue;
        }
        if !varying[i] {
            plan.prologue.push(id);
            continue;
        }
        if is_input(id) {
            plan.inputs.push(id);
            continue;
        }
        if matvec_gemm[i].is_some() {
            let Op::MatVec(_, x) = node.op else {
                return Err("GEMM plan on a node that is not a mat-vec".into());
            };
            avail[i] = ready(&avail, &[x]);
            gemm_at.push((avail[i], id));
        } else {
            avail[i] = operands(&node.op)
                .iter()
                .filter(|x| varying[x.index()])
                .map(|x| avail[x.index()])
                .max()
                .unwrap_or(0);
            loop_nodes.push((avail[i], id));
        }
    }
    let mut out_phase = Vec::new();
    for (k, o) in writes.iter().enumerate() {
        out_phase.push(match outer_gemm[k] {
            Some((a, b)) => ready(&avail, &[a, b]),
            None if varying[o.node.index()] => avail[o.node.index()],
            None => 0,
        });
    }
    let loops = loop_nodes
        .iter()
        .map(|&(p, _)| p + 1)
        .chain(gemm_at.iter().map(|&(p, _)| p + 1))
        .chain(
            out_phase
                .iter()
                .zip(&outer_gemm)
                .map(|(&p, og)| if og.is_some() { p } else { p + 1 }),
        )
        .max()
        .unwrap_or(0)
        .max(1);
    plan.phases = vec![Vec::new(); loops];
    plan.gemms = vec![Vec::new(); loops + 1];
    for &(p, id) in &loop_nodes {
        plan.phases[p].push(id);
    }

    // Buffers: loop nodes read in another phase or by a GEMM, and every GEMM result.
    let mut buffered = vec![false; n];
    for &(p, id) in &loop_nodes {
        for x in operands(&g.node(id).op) {
            let xi = x.index();
            if varying[xi] && !is_input(x) && avail[xi] != p {
                buffered[xi] = true;
            }
        }
    }
    for (k, o) in writes.iter().enumerate() {
        let oi = o.node.index();
        if outer_gemm[k].is_none() && varying[oi] && !is_input(o.node) && avail[oi] != out_phase[k]
        {
            buffered[oi] = true;
        }
    }
    for &(_, id) in &gemm_at {
        buffered[id.index()] = true;
        if let Op::MatVec(_, x) = g.node(id).op
            && !is_input(x)
        {
            buffered[x.index()] = true;
        }
    }
    for og in outer_gemm.iter().flatten() {
        for x in [og.0, og.1] {
            if !is_input(x) {
                buffered[x.index()] = true;
            }
        }
    }
    plan.buffer = vec![None; n];
    for (i, _) in buffered.iter().enumerate().filter(|(_, b)| **b) {
        let l = len(NodeId(i as u32));
        plan.buffer[i] = Some(plan.buffers.len());
        plan.buffers.push((plan.per_sample, l));
        plan.per_sample += l;
    }
    let rows = |plan: &Plan, x: NodeId| -> Result<Rows, String> {
        match (g.node(x).op.clone(), plan.buffer[x.index()]) {
            (Op::Input { arg, offset }, _) => Ok(Rows::Arg {
                arg,
                offset,
                stride: f.args.get(arg).map_or(0, |a| a.len),
            }),
            (_, Some(index)) => Ok(Rows::Buffer {
                index,
                stride: len(x),
            }),
            _ => Err(format!("GEMM operand {} has no rows", x.0)),
        }
    };
    for &(p, id) in &gemm_at {
        let (Op::MatVec(_, x), Some((m, transposed)), Some(y)) = (
            g.node(id).op.clone(),
            matvec_gemm[id.index()],
            plan.buffer[id.index()],
        ) else {
            return Err("GEMM plan lost its mat-vec".into());
        };
        let gemm = Gemm::MatVec {
            m,
            transposed,
            rows: len(id),
            n: len(x),
            x: rows(&plan, x)?,
            y,
        };
        plan.gemms[p].push(gemm);
    }
    for (k, o) in writes.iter().enumerate() {
        if let Some((a, b)) = outer_gemm[k] {
            let gemm = Gemm::SummedOuter {
                a: rows(&plan, a)?,
                b: rows(&plan, b)?,
                m: len(a),
                n: len(b),
                at: o.at,
            };
            plan.gemms[out_phase[k]].push(gemm);
        } else {
            plan.writes.push((o.node, out_phase[k], o.summed, o.at));
        }
    }
    plan.out_len = at_out;
    plan.sums_len = at_sum;
    Ok(plan)
}

/// One output region the batched kernel fills.
struct Write {
    node: NodeId,
    summed: bool,
    at: usize,
}

/// The leaves of nested concatenations under `id`, with their offsets from `at`, seen through
/// reshapes (which keep the flat layout), so a reshaped outer product is found as one.
fn concat_leaves(f: &Function, id: NodeId, at: usize, out: &mut Vec<(NodeId, usize)>) {
    match &f.graph.node(id).op {
        Op::Reshape(x) => concat_leaves(f, *x, at, out),
        Op::Concat(parts) => {
            let mut at = at;
            for &p in parts {
                concat_leaves(f, p, at, out);
                at += f.graph.shape(p).len();
            }
        }
        _ => out.push((id, at)),
    }
}

/// A zero constant, or a broadcast of one: summing it over a batch from zero gives +0.
fn is_zero(f: &Function, id: NodeId) -> bool {
    let zero =
        |x: NodeId| matches!(f.graph.node(x).op, Op::Const(bits) if f64::from_bits(bits) == 0.0);
    match f.graph.node(id).op {
        Op::Broadcast(c) => zero(c),
        _ => zero(id),
    }
}

/// The pointers the batched kernel receives (its signature, in order).
pub(super) struct Params {
    pub args: Value,
    pub out: Value,
    pub sums: Value,
    pub scratch: Value,
    pub bufs: Value,
    pub batch: Value,
}

/// Emits the batched kernel's body: prologue, then loops and GEMMs in plan order.
pub(super) fn lower(
    b: &mut FunctionBuilder<'_>,
    f: &Function,
    plan: &Plan,
    funcs: &HashMap<&'static str, FuncRef>,
    options: Options,
    p: &Params,
) -> Result<usize, String> {
    let bases: Vec<Value> = (0..f.args.len())
        .map(|k| {
            b.ins()
                .load(I64, super::codegen::arg_ptr_flags(), p.args, (8 * k) as i32)
        })
        .collect();
    let mut l = Lower::new(b, f, funcs, bases.clone(), p.scratch, options);
    for &id in &plan.prologue {
        l.node(id)?;
    }
    // Invariant GEMM matrices in memory before any loop, so their addresses dominate.
    for gemm in plan.gemms.iter().flatten() {
        if let Gemm::MatVec { m, .. } = gemm {
            l.mem(*m)?;
        }
    }
    let buffer_base = |l: &mut Lower, index: usize| -> Result<Value, String> {
        let &(offset, _) = plan.buffers.get(index).ok_or("missing buffer")?;
        let scaled = l.b.ins().imul_imm_s(p.batch, (8 * offset) as i64);
        Ok(l.b.ins().iadd(p.bufs, scaled))
    };
    let rows_base = |l: &mut Lower, r: Rows| -> Result<(Value, usize), String> {
        match r {
            Rows::Arg {
                arg,
                offset,
                stride,
            } => {
                let base = *bases.get(arg).ok_or("missing argument")?;
                Ok((l.addr(base, offset), stride))
            }
            Rows::Buffer { index, stride } => Ok((buffer_base(l, index)?, stride)),
        }
    };
    for (k, phase) in plan.phases.iter().enumerate() {
        emit_gemms(&mut l, plan, k, p, &rows_base, &buffer_base)?;
        l.for_count(p.batch, |l, s| {
            for (a, spec) in f.args.iter().enumerate() {
                if spec.batched {
                    let base = *bases.get(a).ok_or("missing argument")?;
                    l.args[a] = l.dyn_addr(base, s, spec.len, 0);
                }
            }
            // Varying values of earlier loops are stale here: forget them, then point the
            // buffered ones at this sample's row.
            for (i, &v) in plan.varying.iter().enumerate() {
                if v {
                    l.forget(NodeId(i as u32));
                }
            }
            for &id in &plan.inputs {
                l.node(id)?;
            }
            for (i, buf) in plan.buffer.iter().enumerate() {
                let id = NodeId(i as u32);
                if let Some(index) = *buf
                    && !phase.contains(&id)
                {
                    let base = buffer_base(l, index)?;
                    let row = l.dyn_addr(base, s, l.len(id), 0);
                    l.set_mem(id, row);
                }
            }
            for &id in phase {
                l.node(id)?;
                if let Some(index) = plan.buffer[id.index()] {
                    let base = buffer_base(l, index)?;
                    let len = l.len(id);
                    let row = l.dyn_addr(base, s, len, 0);
                    l.write(id, row, 0, len)?;
                }
            }
            let out_row = l.dyn_addr(p.out, s, plan.out_len, 0);
            for &(node, ph, is_summed, at) in &plan.writes {
                if ph != k {
                    continue;
                }
                let len = l.len(node);
                if is_summed {
                    accumulate(l, node, p.sums, at, len)?;
                } else {
                    l.write(node, out_row, at, len)?;
                }
            }
            Ok(())
        })?;
    }
    emit_gemms(&mut l, plan, plan.phases.len(), p, &rows_base, &buffer_base)?;
    l.b.ins().return_(&[]);
    l.b.seal_all_blocks();
    Ok(l.scratch_len)
}

type Base<'x> = dyn Fn(&mut Lower, usize) -> Result<Value, String> + 'x;
type RowsBase<'x> = dyn Fn(&mut Lower, Rows) -> Result<(Value, usize), String> + 'x;

fn emit_gemms(
    l: &mut Lower,
    plan: &Plan,
    gap: usize,
    p: &Params,
    rows_base: &RowsBase,
    buffer_base: &Base,
) -> Result<(), String> {
    let Some(gemms) = plan.gemms.get(gap) else {
        return Ok(());
    };
    for gemm in gemms {
        // dgemm(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, csc): C[m×n] = A[m×k]·B[k×n].
        let (dims, a, b_mat, c, symbol) = match *gemm {
            Gemm::MatVec {
                m,
                transposed,
                rows,
                n,
                x,
                y,
            } => {
                // Y = X·Mᵀ: B[j][r] = M[r][j]; M is m (rows×n, row-major) or mᵀ (m is n×rows).
                let (xb, xs) = rows_base(l, x)?;
                let mb = l.mem(m)?;
                let (rsb, csb) = if transposed { (rows, 1) } else { (1, n) };
                let yb = buffer_base(l, y)?;
                let dims = (None, n, rows);
                (dims, (xb, xs, 1), (mb, rsb, csb), (yb, rows, 1), GEMM)
            }
            Gemm::SummedOuter { a, b, m, n, at } => {
                // S = Aᵀ·B: A[i][s] = a_s[i], B[s][j] = b_s[j], k = batch.
                let (ab, astride) = rows_base(l, a)?;
                let (bb, bstride) = rows_base(l, b)?;
                let sb = l.addr(p.sums, at);
                (
                    (Some(m), 0, n),
                    (ab, 1, astride),
                    (bb, bstride, 1),
                    (sb, n, 1),
                    GEMM_ADD,
                )
            }
        };
        let int = |l: &mut Lower, v: usize| l.b.ins().iconst(I64, v as i64);
        // A mat-vec GEMM runs over m = batch rows; a summed outer product over k = batch.
        let (m, k) = match dims.0 {
            None => (p.batch, int(l, dims.1)),
            Some(m) => (int(l, m), p.batch),
        };
        let args = [
            m,
            k,
            int(l, dims.2),
            a.0,
            int(l, a.1),
            int(l, a.2),
            b_mat.0,
            int(l, b_mat.1),
            int(l, b_mat.2),
            c.0,
            int(l, c.1),
            int(l, c.2),
        ];
        l.call_void(symbol, &args)?;
    }
    Ok(())
}

/// `sums[at..at + len] += node`, element by element.
fn accumulate(l: &mut Lower, id: NodeId, sums: Value, at: usize, len: usize) -> Result<(), String> {
    if len <= UNROLLED_SUM || l.has_regs(id) {
        for i in 0..len {
            let x = l.elem(id, i)?;
            let s = l.load(sums, at + i);
            let t = l.b.ins().fadd(s, x);
            l.store(t, sums, at + i);
        }
        return Ok(());
    }
    let src = l.mem(id)?;
    let dst = l.addr(sums, at);
    let count = l.b.ins().iconst(I64, len as i64);
    l.for_count(count, |l, i| {
        let ps = l.dyn_addr(src, i, 1, 0);
        let x = l.load(ps, 0);
        let pd = l.dyn_addr(dst, i, 1, 0);
        let s = l.load(pd, 0);
        let t = l.b.ins().fadd(s, x);
        l.store(t, pd, 0);
        Ok(())
    })
}
