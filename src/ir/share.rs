//! Sharing a field's `tanh` activations between its forward kernel and its VJP.
//!
//! The VJP of `f` ([`vjp`](super::vjp)) recomputes `f`'s primal `tanh` nodes, which the
//! forward evaluation at the same `(t, u)` already computed. [`share_tanh`] returns a forward
//! function that also outputs those activations and a VJP that reads them from an extra
//! argument instead of recomputing them.
//!
//! Invariant: a shared node is the *same* expression in both graphs (found by hash-consing
//! lookup, operand by operand), so the values the forward kernel writes are the very values the
//! VJP would have recomputed, and the VJP's results do not change.

use super::function::{ArgSpec, Function, Output, prune};
use super::graph::{NodeId, Op, Unary, map_operands};

/// `forward`: `f` with the activations appended to its outputs (`len` values after `f`'s own);
/// `vjp`: the VJP with one more argument (`len` values, last) holding them.
pub struct SharedTanh {
    pub forward: Function,
    pub vjp: Function,
    pub len: usize,
}

/// The sharing of `f`'s `tanh` activations with `v = vjp(f, ..)`, whose new argument is named
/// `arg`; `None` when `v` recomputes none of them.
pub fn share_tanh(f: &Function, v: &Function, arg: &str) -> Option<SharedTanh> {
    let live_f = f.live();
    let live_v = v.live();
    // f's nodes as they appear in v (`None`: not there, or built from something not there).
    let mut in_v: Vec<Option<NodeId>> = Vec::with_capacity(f.graph.len());
    let mut shared: Vec<(NodeId, NodeId)> = Vec::new();
    for (id, node) in f.graph.nodes() {
        let operands_there = super::graph::operands(&node.op)
            .iter()
            .all(|x| in_v[x.index()].is_some());
        let found = if live_f[id.index()] && operands_there {
            let op = map_operands(&node.op, |x| in_v[x.index()].unwrap_or(x));
            v.graph.find(&op, node.shape)
        } else {
            None
        };
        in_v.push(found);
        if let (Op::Unary(Unary::Tanh, _), Some(w)) = (&node.op, found)
            && live_v[w.index()]
        {
            shared.push((id, w));
        }
    }
    if shared.is_empty() {
        return None;
    }

    let mut outputs = f.outputs.clone();
    for (i, &(id, _)) in shared.iter().enumerate() {
        outputs.push(Output {
            name: format!("{arg}{i}"),
            node: id,
        });
    }
    let forward = f.with_graph(f.graph.clone(), outputs);

    // v with each shared node read from the new argument; what only fed them is pruned.
    let h_arg = v.args.len();
    let batched = v.args.iter().any(|a| a.batched);
    let mut graph = super::graph::Graph::new();
    let mut map: Vec<NodeId> = Vec::with_capacity(v.graph.len());
    // Offsets in the forward's output order (f's node order).
    let mut offsets = Vec::with_capacity(shared.len());
    let mut len = 0;
    for &(_, w) in &shared {
        offsets.push(len);
        len += v.graph.shape(w).len();
    }
    for (id, node) in v.graph.nodes() {
        let new = match shared.iter().position(|s| s.1 == id) {
            Some(i) => graph.input(h_arg, offsets[i], node.shape),
            None => graph.intern_raw(map_operands(&node.op, |x| map[x.index()]), node.shape),
        };
        map.push(new);
    }
    let mut vjp = v.with_graph(graph, v.renumbered_outputs(&map));
    vjp.args.push(ArgSpec::new(arg, len, batched));
    Some(SharedTanh {
        forward,
        vjp: prune(&vjp),
        len,
    })
}
