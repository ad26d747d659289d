//! Differentiation as IR passes: each takes a [`Function`] and returns a new, simplified one.
//!
//! - [`vjp`]: reverse mode; one sweep from the outputs back, seeded by a cotangent argument.
//! - [`jvp`]: forward mode; one sweep from the inputs, seeded by a tangent argument.
//! - [`jacobian`]: dense, row-major, by one forward sweep per input column.
//! - [`time_derivatives`]: total derivatives along the flow of `du/dt = f(t, u, p)`.
//!
//! Invariants: zero derivatives are *structural* (`None`), never `0 * x` nodes, because
//! `x * 0 → 0` is not an exact identity and the constructors will not remove it. Derivatives of
//! activations are written with the forward outputs (`tanh' = 1 − y²`, `exp' = y`,
//! `sigmoid' = y(1 − y)`), so the derivative graph shares the forward nodes by hash-consing.
//! The derivative passes add nodes to a copy of the source graph, so the forward values they
//! need are the very same nodes.

use super::error::IrError;
use super::function::{ArgSpec, Function, Output, simplify};
use super::graph::{Binary, Graph, Node, NodeId, Op, Shape, Unary, operands};

/// Elementwise dy/dx of `y = op(x)`, or `None` where it is zero everywhere.
pub(super) fn unary_partial(g: &mut Graph, op: Unary, x: NodeId, y: NodeId) -> Option<NodeId> {
    let one = g.constant(1.0);
    Some(match op {
        Unary::Neg => g.constant(-1.0),
        Unary::Exp => y,
        Unary::Log => g.div(one, x),
        Unary::Sin => g.unary(Unary::Cos, x),
        Unary::Cos => {
            let s = g.unary(Unary::Sin, x);
            g.neg(s)
        }
        Unary::Tan => {
            let y2 = g.unary(Unary::Square, y);
            g.add(one, y2)
        }
        Unary::Tanh => {
            let y2 = g.unary(Unary::Square, y);
            g.sub(one, y2)
        }
        Unary::Sigmoid => {
            let c = g.sub(one, y);
            g.mul(y, c)
        }
        Unary::Relu => g.unary(Unary::Step, x),
        Unary::Step | Unary::Sign => return None,
        Unary::Softplus => g.unary(Unary::Sigmoid, x),
        Unary::Sqrt => {
            let half = g.constant(0.5);
            g.div(half, y)
        }
        Unary::Abs => g.unary(Unary::Sign, x),
        Unary::Square => {
            let two = g.constant(2.0);
            g.mul(two, x)
        }
    })
}

/// Elementwise partials of `y = a op b` with respect to `a` and `b`; each is computed only
/// when asked for (`want_a`, `want_b`), and `None` otherwise.
pub(super) fn binary_partials(
    g: &mut Graph,
    op: Binary,
    (a, b, y): (NodeId, NodeId, NodeId),
    (want_a, want_b): (bool, bool),
) -> (Option<NodeId>, Option<NodeId>) {
    let one = g.constant(1.0);
    let mut pa = None;
    let mut pb = None;
    match op {
        Binary::Add => {
            pa = Some(one);
            pb = Some(one);
        }
        Binary::Sub => {
            pa = Some(one);
            pb = Some(g.constant(-1.0));
        }
        Binary::Mul => {
            pa = Some(b);
            pb = Some(a);
        }
        Binary::Div => {
            if want_a {
                pa = Some(g.div(one, b));
            }
            if want_b {
                let q = g.div(y, b);
                pb = Some(g.neg(q));
            }
        }
        Binary::Pow => {
            if want_a {
                let bm1 = g.sub(b, one);
                let p = g.pow(a, bm1);
                pa = Some(g.mul(b, p));
            }
            if want_b {
                let l = g.unary(Unary::Log, a);
                pb = Some(g.mul(y, l));
            }
        }
        Binary::Max | Binary::Min => {
            // Ties go to `a`, as in `Binary::apply`: a ≥ b picks a for max, a ≤ b for min.
            let d = if op == Binary::Max {
                g.sub(b, a)
            } else {
                g.sub(a, b)
            };
            let b_wins = g.unary(Unary::Step, d);
            pa = Some(g.sub(one, b_wins));
            pb = Some(b_wins);
        }
    }
    (
        if want_a { pa } else { None },
        if want_b { pb } else { None },
    )
}

pub(super) fn add_opt(g: &mut Graph, a: Option<NodeId>, b: Option<NodeId>) -> Option<NodeId> {
    match (a, b) {
        (Some(a), Some(b)) => Some(g.add(a, b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Which nodes depend on `roots` (inclusive).
fn depends_on(g: &Graph, upto: usize, roots: impl Fn(&Node) -> bool) -> Vec<bool> {
    let mut active = vec![false; upto];
    for i in 0..upto {
        let node = g.node(NodeId(i as u32));
        active[i] = roots(node) || operands(&node.op).iter().any(|x| active[x.index()]);
    }
    active
}

/// Which of the first `upto` nodes `targets` reach.
pub(super) fn reached_from(g: &Graph, upto: usize, targets: &[NodeId]) -> Vec<bool> {
    let mut live = vec![false; upto];
    for t in targets {
        if t.index() < upto {
            live[t.index()] = true;
        }
    }
    for i in (0..upto).rev() {
        if live[i] {
            for x in operands(&g.node(NodeId(i as u32)).op) {
                live[x.index()] = true;
            }
        }
    }
    live
}

/// Forward-mode sweep over the first `upto` nodes that `targets` reach. `seed` gives the
/// tangent of an input node (`None` = zero). Returns the tangent of every swept node.
fn forward(
    g: &mut Graph,
    upto: usize,
    targets: &[NodeId],
    mut seed: impl FnMut(&mut Graph, NodeId, usize, usize, Shape) -> Option<NodeId>,
) -> Vec<Option<NodeId>> {
    let live = reached_from(g, upto, targets);
    let mut tan: Vec<Option<NodeId>> = vec![None; upto];
    for i in 0..upto {
        if !live[i] {
            continue;
        }
        let id = NodeId(i as u32);
        let node = g.node(id).clone();
        tan[i] = match node.op {
            Op::Input { arg, offset } => seed(g, id, arg, offset, node.shape),
            _ => dense_tangent(g, id, &node, |x| tan[x.index()]),
        };
    }
    tan
}

/// The tangent of a non-input node from its operands' tangents `t` (`None` = zero).
pub(super) fn dense_tangent(
    g: &mut Graph,
    id: NodeId,
    node: &Node,
    t: impl Fn(NodeId) -> Option<NodeId>,
) -> Option<NodeId> {
    let shape = node.shape;
    match node.op {
        Op::Const(_) | Op::Input { .. } => None,
        Op::Unary(op, x) => match t(x) {
            None => None,
            Some(tx) => unary_partial(g, op, x, id).map(|p| g.mul(p, tx)),
        },
        Op::Binary(op, a, b) => {
            let (ta, tb) = (t(a), t(b));
            let (pa, pb) = binary_partials(g, op, (a, b, id), (ta.is_some(), tb.is_some()));
            let ca = pa.zip(ta).map(|(p, d)| g.mul(p, d));
            let cb = pb.zip(tb).map(|(p, d)| g.mul(p, d));
            add_opt(g, ca, cb).map(|s| g.broadcast(s, shape))
        }
        Op::Broadcast(s) => t(s).map(|d| g.broadcast(d, shape)),
        Op::Sum(x) => t(x).map(|d| g.sum(d)),
        Op::Dot(a, b) => {
            let ca = t(a).map(|d| g.dot(d, b));
            let cb = t(b).map(|d| g.dot(a, d));
            add_opt(g, ca, cb)
        }
        Op::MatVec(m, x) => {
            let cm = t(m).map(|d| g.matvec(d, x));
            let cx = t(x).map(|d| g.matvec(m, d));
            add_opt(g, cm, cx)
        }
        Op::MatMul(a, b) => {
            let ca = t(a).map(|d| g.matmul(d, b));
            let cb = t(b).map(|d| g.matmul(a, d));
            add_opt(g, ca, cb)
        }
        Op::Transpose(a) => t(a).map(|d| g.transpose(d)),
        Op::Outer(a, b) => {
            let ca = t(a).map(|d| g.outer(d, b));
            let cb = t(b).map(|d| g.outer(a, d));
            add_opt(g, ca, cb)
        }
        Op::Concat(ref parts) => {
            if parts.iter().all(|&p| t(p).is_none()) {
                None
            } else {
                let pieces: Vec<NodeId> = parts
                    .iter()
                    .map(|&p| t(p).unwrap_or_else(|| g.zeros(g.shape(p))))
                    .collect();
                Some(g.concat(&pieces))
            }
        }
        Op::Slice { x, start } => t(x).map(|d| g.slice(d, start, shape.len())),
        Op::Index { x, i } => t(x).map(|d| g.index(d, i)),
        Op::Reshape(x) => t(x).map(|d| g.reshape(d, shape)),
    }
}

/// Sums pieces `(offset, value)` of a flat value of `shape` into one node; positions no piece
/// covers are zero. `None` when there are no pieces.
fn assemble(g: &mut Graph, shape: Shape, pieces: &[(usize, NodeId)]) -> Option<NodeId> {
    if pieces.is_empty() {
        return None;
    }
    if pieces.iter().all(|&(o, p)| o == 0 && g.shape(p) == shape) {
        let mut acc = pieces[0].1;
        for &(_, p) in &pieces[1..] {
            acc = g.add(acc, p);
        }
        return Some(acc);
    }
    let total = shape.len();
    let flat: Vec<(usize, usize, NodeId)> = pieces
        .iter()
        .map(|&(o, p)| (o, g.shape(p).len(), g.flatten(p)))
        .collect();
    let mut cuts: Vec<usize> = vec![0, total];
    for &(o, len, _) in &flat {
        cuts.push(o);
        cuts.push(o + len);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut segments = Vec::new();
    for w in cuts.windows(2) {
        let (s, e) = (w[0], w[1]);
        if e > total {
            break;
        }
        let mut acc: Option<NodeId> = None;
        for &(o, len, p) in &flat {
            if o <= s && e <= o + len {
                let part = if e - s == 1 {
                    g.index(p, s - o)
                } else {
                    g.slice(p, s - o, e - s)
                };
                acc = add_opt(g, acc, Some(part));
            }
        }
        let seg = match acc {
            Some(a) => a,
            None if e - s == 1 => g.constant(0.0),
            None => g.zeros(Shape::Vector(e - s)),
        };
        segments.push(seg);
    }
    let v = g.concat(&segments);
    Some(g.reshape(v, shape))
}

/// Reverse sweep over the first `upto` nodes, seeded with `seeds` (node, adjoint). Only nodes
/// in `active` receive adjoints. Returns the finished adjoint of every node.
fn reverse(
    g: &mut Graph,
    upto: usize,
    seeds: &[(NodeId, NodeId)],
    active: &[bool],
) -> Vec<Option<NodeId>> {
    let mut pieces: Vec<Vec<(usize, NodeId)>> = vec![Vec::new(); upto];
    for &(n, v) in seeds {
        if active[n.index()] {
            pieces[n.index()].push((0, v));
        }
    }
    let mut adj: Vec<Option<NodeId>> = vec![None; upto];
    for i in (0..upto).rev() {
        let id = NodeId(i as u32);
        let node = g.node(id).clone();
        let Some(bar) = assemble(g, node.shape, &pieces[i]) else {
            continue;
        };
        adj[i] = Some(bar);
        let act = |x: NodeId| active[x.index()];
        let mut give = |x: NodeId, offset: usize, v: NodeId| pieces[x.index()].push((offset, v));
        match node.op {
            Op::Const(_) | Op::Input { .. } => {}
            Op::Unary(op, x) => {
                if act(x)
                    && let Some(p) = unary_partial(g, op, x, id)
                {
                    give(x, 0, g.mul(bar, p));
                }
            }
            Op::Binary(op, a, b) => {
                let (pa, pb) = binary_partials(g, op, (a, b, id), (act(a), act(b)));
                for (x, p) in [(a, pa), (b, pb)] {
                    if let Some(p) = p {
                        let mut c = g.mul(bar, p);
                        if g.shape(x).is_scalar() && !g.shape(c).is_scalar() {
                            c = g.sum(c);
                        }
                        give(x, 0, c);
                    }
                }
            }
            Op::Broadcast(s) => {
                if act(s) {
                    give(s, 0, g.sum(bar));
                }
            }
            Op::Sum(x) => {
                if act(x) {
                    let s = g.shape(x);
                    give(x, 0, g.broadcast(bar, s));
                }
            }
            Op::Dot(a, b) => {
                if act(a) {
                    give(a, 0, g.mul(bar, b));
                }
                if act(b) {
                    give(b, 0, g.mul(bar, a));
                }
            }
            Op::MatVec(m, x) => {
                if act(m) {
                    give(m, 0, g.outer(bar, x));
                }
                if act(x) {
                    let mt = g.transpose(m);
                    give(x, 0, g.matvec(mt, bar));
                }
            }
            Op::MatMul(a, b) => {
                if act(a) {
                    let bt = g.transpose(b);
                    give(a, 0, g.matmul(bar, bt));
                }
                if act(b) {
                    let at = g.transpose(a);
                    give(b, 0, g.matmul(at, bar));
                }
            }
            Op::Transpose(a) => {
                if act(a) {
                    give(a, 0, g.transpose(bar));
                }
            }
            Op::Outer(a, b) => {
                if act(a) {
                    give(a, 0, g.matvec(bar, b));
                }
                if act(b) {
                    let bt = g.transpose(bar);
                    give(b, 0, g.matvec(bt, a));
                }
            }
            Op::Concat(ref parts) => {
                let mut off = 0;
                for &p in parts {
                    let s = g.shape(p);
                    if act(p) {
                        let v = if s.is_scalar() {
                            g.index(bar, off)
                        } else {
                            g.slice(bar, off, s.len())
                        };
                        give(p, 0, v);
                    }
                    off += s.len();
                }
            }
            Op::Slice { x, start } => {
                if act(x) {
                    give(x, start, bar);
                }
            }
            Op::Index { x, i } => {
                if act(x) {
                    give(x, i, bar);
                }
            }
            Op::Reshape(x) => {
                if act(x) {
                    let s = g.shape(x);
                    give(x, 0, g.reshape(bar, s));
                }
            }
        }
    }
    adj
}

pub(super) fn finish(
    f: &Function,
    graph: Graph,
    args: Vec<ArgSpec>,
    outputs: Vec<Output>,
) -> Result<Function, IrError> {
    let mut out = f.with_graph(graph, outputs);
    out.args = args;
    let out = simplify(&out);
    out.validate()?;
    Ok(out)
}

fn any_batched(f: &Function) -> bool {
    f.args.iter().any(|a| a.batched)
}

/// Reverse mode: a function of `f`'s arguments plus a cotangent argument `cotangent` (as long
/// as `f`'s flat output) whose outputs are `vᵀ ∂f/∂a` for each `a` in `wrt`, in order, each
/// as long as its argument. Output names are `vjp_<arg>`.
pub fn vjp(f: &Function, wrt: &[&str], cotangent: &str) -> Result<Function, IrError> {
    f.validate()?;
    let wrt_idx: Vec<usize> = wrt.iter().map(|n| f.arg(n)).collect::<Result<_, _>>()?;
    if f.arg_index(cotangent).is_some() {
        return Err(IrError::Invalid(format!(
            "argument `{cotangent}` already exists"
        )));
    }
    let mut g = f.graph.clone();
    let upto = g.len();
    let v_arg = f.args.len();
    let mut args = f.args.clone();
    args.push(ArgSpec::new(cotangent, f.output_len(), any_batched(f)));

    let active = depends_on(
        &g,
        upto,
        |n| matches!(n.op, Op::Input { arg, .. } if wrt_idx.contains(&arg)),
    );
    let mut seeds = Vec::new();
    let mut off = 0;
    for o in &f.outputs {
        let s = g.shape(o.node);
        seeds.push((o.node, g.input(v_arg, off, s)));
        off += s.len();
    }
    let adj = reverse(&mut g, upto, &seeds, &active);

    let mut outputs = Vec::new();
    for (&name, &arg) in wrt.iter().zip(&wrt_idx) {
        let mut pieces = Vec::new();
        for (i, bar) in adj.iter().enumerate() {
            if let (Op::Input { arg: a, offset }, Some(bar)) = (&g.node(NodeId(i as u32)).op, *bar)
                && *a == arg
            {
                pieces.push((*offset, bar));
            }
        }
        let shape = Shape::Vector(f.args[arg].len);
        let node = assemble(&mut g, shape, &pieces).unwrap_or_else(|| g.zeros(shape));
        outputs.push(Output {
            name: format!("vjp_{name}"),
            node,
        });
    }
    finish(f, g, args, outputs)
}

/// Forward mode: a function of `f`'s arguments plus a tangent argument `tangent` (as long as
/// `wrt`) whose outputs are `∂f/∂wrt · w`, one per output of `f` (named `jvp_<output>`).
pub fn jvp(f: &Function, wrt: &str, tangent: &str) -> Result<Function, IrError> {
    f.validate()?;
    let wrt_arg = f.arg(wrt)?;
    if f.arg_index(tangent).is_some() {
        return Err(IrError::Invalid(format!(
            "argument `{tangent}` already exists"
        )));
    }
    let mut g = f.graph.clone();
    let upto = g.len();
    let w_arg = f.args.len();
    let mut args = f.args.clone();
    args.push(ArgSpec::new(tangent, f.args[wrt_arg].len, any_batched(f)));
    let targets: Vec<NodeId> = f.outputs.iter().map(|o| o.node).collect();
    let tan = forward(&mut g, upto, &targets, |g, _, arg, offset, shape| {
        (arg == wrt_arg).then(|| g.input(w_arg, offset, shape))
    });
    let outputs = f
        .outputs
        .iter()
        .map(|o| {
            let s = g.shape(o.node);
            Output {
                name: format!("jvp_{}", o.name),
                node: tan[o.node.index()].unwrap_or_else(|| g.zeros(s)),
            }
        })
        .collect();
    finish(f, g, args, outputs)
}

/// Time derivatives along the flow of `du/dt = f(t, u, p)`: element `k - 1` is `dᵏu/dtᵏ` as a
/// function of the same arguments, so element 0 is `f` itself and element 1 is
/// `∂f/∂u · f + ∂f/∂t`. `f`'s flat output must be as long as `state`; `time` may be `None`
/// (or name no argument) for an autonomous field.
pub fn time_derivatives(
    f: &Function,
    k: usize,
    time: Option<&str>,
    state: &str,
) -> Result<Vec<Function>, IrError> {
    f.validate()?;
    let u_arg = f.arg(state)?;
    let t_arg = match time {
        Some(name) => Some(f.arg(name)?),
        None => None,
    };
    let n = f.args[u_arg].len;
    if f.output_len() != n {
        return Err(IrError::Invalid(format!(
            "time derivatives need an output as long as the state `{state}` ({n}), got {}",
            f.output_len()
        )));
    }
    let mut g = f.graph.clone();
    let parts: Vec<NodeId> = f.outputs.iter().map(|o| g.flatten(o.node)).collect();
    let field = g.concat(&parts);
    let mut result = Vec::with_capacity(k);
    let mut current = field;
    for order in 1..=k {
        if order > 1 {
            let upto = g.len();
            let tan = forward(&mut g, upto, &[current], |g, _, arg, offset, shape| {
                if arg == u_arg {
                    let v = if shape.is_scalar() {
                        g.index(field, offset)
                    } else {
                        g.slice(field, offset, shape.len())
                    };
                    Some(g.reshape(v, shape))
                } else if Some(arg) == t_arg {
                    Some(g.filled(1.0, shape))
                } else {
                    None
                }
            });
            current = tan[current.index()].unwrap_or_else(|| g.zeros(Shape::Vector(n)));
        }
        let outputs = vec![Output {
            name: format!("d{order}{state}"),
            node: current,
        }];
        result.push(finish(f, g.clone(), f.args.clone(), outputs)?);
    }
    Ok(result)
}
