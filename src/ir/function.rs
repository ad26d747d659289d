//! A [`Function`]: a graph plus its named argument buffers, named outputs and the slot table
//! that names regions of the arguments (`f.W1` = a 50×2 matrix at offset 0 of `p`). Also the
//! two structural passes every other pass ends with: [`prune`] and [`simplify`].
//!
//! Invariants of a valid function (checked by [`Function::validate`]): the graph is not
//! poisoned, every input node reads inside its argument, and the flat output is the
//! concatenation of the outputs, each flattened row-major.

use super::error::IrError;
use super::graph::{Graph, NodeId, Op, Shape, map_operands, operands};

/// One argument buffer. A batched argument is `[batch, len]` row-major at evaluation time; an
/// unbatched one (parameters) is shared by the whole batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgSpec {
    pub name: String,
    pub len: usize,
    pub batched: bool,
}

/// A named region of an argument, for printing (`f.W1`, `alpha`, `y`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub arg: usize,
    pub offset: usize,
    pub shape: Shape,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    pub node: NodeId,
}

#[derive(Clone, Debug)]
pub struct Function {
    pub graph: Graph,
    pub args: Vec<ArgSpec>,
    pub outputs: Vec<Output>,
    pub slots: Vec<Slot>,
}

impl ArgSpec {
    pub fn new(name: &str, len: usize, batched: bool) -> ArgSpec {
        ArgSpec {
            name: name.to_string(),
            len,
            batched,
        }
    }
}

impl Function {
    /// An empty function over the given arguments; build into `graph`, then push outputs.
    pub fn new(args: Vec<ArgSpec>) -> Function {
        Function {
            graph: Graph::new(),
            args,
            outputs: Vec::new(),
            slots: Vec::new(),
        }
    }

    pub fn arg_index(&self, name: &str) -> Option<usize> {
        self.args.iter().position(|a| a.name == name)
    }

    pub fn arg(&self, name: &str) -> Result<usize, IrError> {
        self.arg_index(name)
            .ok_or_else(|| IrError::UnknownArg(name.to_string()))
    }

    /// Adds an input node reading `len`-shaped data at `offset` of the named argument.
    pub fn input(&mut self, name: &str, offset: usize, shape: Shape) -> Result<NodeId, IrError> {
        let arg = self.arg(name)?;
        Ok(self.graph.input(arg, offset, shape))
    }

    /// Names a region of an argument and returns its input node.
    pub fn slot(
        &mut self,
        name: &str,
        arg: &str,
        offset: usize,
        shape: Shape,
    ) -> Result<NodeId, IrError> {
        let index = self.arg(arg)?;
        self.slots.push(Slot {
            name: name.to_string(),
            arg: index,
            offset,
            shape,
        });
        Ok(self.graph.input(index, offset, shape))
    }

    pub fn push_output(&mut self, name: &str, node: NodeId) {
        self.outputs.push(Output {
            name: name.to_string(),
            node,
        });
    }

    /// Length of the flat output (all outputs flattened and laid end to end).
    pub fn output_len(&self) -> usize {
        self.outputs
            .iter()
            .map(|o| self.graph.shape(o.node).len())
            .sum()
    }

    pub fn validate(&self) -> Result<(), IrError> {
        if let Some(e) = self.graph.error() {
            return Err(e.clone());
        }
        for (_, node) in self.graph.nodes() {
            if let Op::Input { arg, offset } = node.op {
                let spec = self.args.get(arg).ok_or_else(|| {
                    IrError::Invalid(format!(
                        "input node reads argument #{arg}, which does not exist"
                    ))
                })?;
                let end = offset + node.shape.len();
                if end > spec.len {
                    return Err(IrError::InputOutOfRange {
                        name: spec.name.clone(),
                        len: spec.len,
                        offset,
                        end,
                    });
                }
            }
        }
        for s in &self.slots {
            let spec = self.args.get(s.arg).ok_or_else(|| {
                IrError::Invalid(format!("slot `{}` names a missing argument", s.name))
            })?;
            if s.offset + s.shape.len() > spec.len {
                return Err(IrError::InputOutOfRange {
                    name: spec.name.clone(),
                    len: spec.len,
                    offset: s.offset,
                    end: s.offset + s.shape.len(),
                });
            }
        }
        Ok(())
    }

    /// Which nodes the outputs reach.
    pub fn live(&self) -> Vec<bool> {
        let mut live = vec![false; self.graph.len()];
        for o in &self.outputs {
            live[o.node.index()] = true;
        }
        for i in (0..self.graph.len()).rev() {
            if live[i] {
                for x in operands(&self.graph.node(NodeId(i as u32)).op) {
                    live[x.index()] = true;
                }
            }
        }
        live
    }

    /// Whether an output depends on the argument `name` (a live node reads it): a field
    /// whose `t` is not read is autonomous, which the SDE stiffness estimate exploits.
    pub fn reads(&self, name: &str) -> bool {
        let Some(index) = self.arg_index(name) else {
            return false;
        };
        let live = self.live();
        self.graph.nodes().any(|(id, node)| {
            live[id.index()] && matches!(node.op, Op::Input { arg, .. } if arg == index)
        })
    }

    /// Number of nodes the outputs reach.
    pub fn live_count(&self) -> usize {
        self.live().iter().filter(|&&l| l).count()
    }

    /// The outputs with their nodes renumbered through `map` (old id → new id), for a rebuild.
    pub(crate) fn renumbered_outputs(&self, map: &[NodeId]) -> Vec<Output> {
        self.outputs
            .iter()
            .map(|o| Output {
                name: o.name.clone(),
                node: map[o.node.index()],
            })
            .collect()
    }

    /// The function with the same metadata and a new graph and outputs.
    pub(crate) fn with_graph(&self, graph: Graph, outputs: Vec<Output>) -> Function {
        Function {
            graph,
            args: self.args.clone(),
            outputs,
            slots: self.slots.clone(),
        }
    }
}

/// Copies the nodes the outputs reach, verbatim and renumbered (dead-node removal).
pub fn prune(f: &Function) -> Function {
    rebuild(f, false)
}

/// Rebuilds the reachable nodes through the smart constructors: folds constants, applies the
/// exact identities, re-shares what became equal, and drops dead nodes.
pub fn simplify(f: &Function) -> Function {
    rebuild(f, true)
}

fn rebuild(f: &Function, through_constructors: bool) -> Function {
    let live = f.live();
    let mut graph = Graph::new();
    let mut map: Vec<NodeId> = Vec::with_capacity(f.graph.len());
    for (id, node) in f.graph.nodes() {
        // Dead nodes map to a placeholder no live node refers to.
        if !live[id.index()] {
            map.push(NodeId(u32::MAX));
            continue;
        }
        let op = map_operands(&node.op, |x| map[x.index()]);
        let new = if through_constructors {
            graph.apply(&op, node.shape)
        } else {
            graph.intern_raw(op, node.shape)
        };
        map.push(new);
    }
    let outputs = f.renumbered_outputs(&map);
    // A poisoned source stays poisoned: validation must still fail downstream.
    if let Some(e) = f.graph.error() {
        graph.inherit_error(e.clone());
    }
    f.with_graph(graph, outputs)
}
