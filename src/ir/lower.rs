//! Lowering: checked model → IR functions.
//!
//! The vector field becomes `f(t, u, p[, x]) -> du` with one output per state (`dy/dt`), the
//! SDE diffusion `g(t, u, p[, x])`, and the initial state `u0(p[, x])`. Every state and
//! parameter is a named slot, so printers say `f.W1` and `y`, not offsets.
//!
//! Architecture Invariant: lowering reads only the checked `Model` (never the AST). A dense
//! layer lowers to one mat-vec over a matrix-shaped parameter input — never scalarised.
//! Errors here are internal (the checker has already rejected what users can get wrong), and
//! still come back as diagnostics, never panics.

use crate::diag::Diag;
use crate::ir::{Function, IrError, NodeId, Shape as IrShape, Unary};
use crate::sema::{
    Activation, BinOp, Builtin, EquationKind, IndexSel, Model, ModelKind, Shape, TExpr, TExprKind,
    UnOp,
};

/// Which function of the model to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The ODE right-hand side, or the SDE drift.
    Field,
    /// The SDE diffusion (one output per state; zero where a state has no noise).
    Diffusion,
}

pub fn ir_shape(s: Shape) -> IrShape {
    match s {
        Shape::Scalar | Shape::Error => IrShape::Scalar,
        Shape::Vector { n } => IrShape::Vector(n),
        Shape::Matrix { rows, cols } => IrShape::Matrix(rows, cols),
    }
}

/// The arguments every model function takes: time, flat state, flat parameters, and the flat
/// per-sample inputs when the model declares any.
pub fn model_function(model: &Model) -> Function {
    use crate::ir::ArgSpec;
    let mut args = vec![
        ArgSpec::new("t", 1, true),
        ArgSpec::new("u", model.state_size, true),
        ArgSpec::new("p", model.param_size, false),
    ];
    let input_len: usize = model.inputs.iter().map(|i| i.shape.size()).sum();
    if input_len > 0 {
        args.push(ArgSpec::new("x", input_len, true));
    }
    let mut f = Function::new(args);
    let _ = f.slot("t", "t", 0, IrShape::Scalar);
    for s in &model.states {
        let _ = f.slot(&s.name, "u", s.offset, ir_shape(s.shape));
    }
    for p in &model.params {
        let _ = f.slot(&p.name, "p", p.offset, ir_shape(p.shape));
    }
    for i in &model.inputs {
        let _ = f.slot(&i.name, "x", i.offset, ir_shape(i.shape));
    }
    f
}

/// Lower the vector field (ODE right-hand side or SDE drift), or the SDE diffusion.
pub fn lower(model: &Model, part: Part) -> Result<Function, Diag> {
    let mut f = model_function(model);
    for (eq, state) in model.equations.iter().zip(&model.states) {
        let shape = ir_shape(state.shape);
        let node = match (&eq.kind, part) {
            (EquationKind::Ode { rhs }, Part::Field) => lower_expr(model, &mut f, rhs)?,
            (EquationKind::Sde { drift, .. }, Part::Field) => lower_expr(model, &mut f, drift)?,
            (
                EquationKind::Sde {
                    diffusion: Some(g), ..
                },
                Part::Diffusion,
            ) => {
                let node = lower_expr(model, &mut f, g)?;
                broadcast_to(&mut f, node, shape)
            }
            (_, Part::Diffusion) => f.graph.zeros(shape),
        };
        let name = match (part, model.kind) {
            (Part::Field, ModelKind::Ode) => format!("d{}/dt", state.name),
            (Part::Field, ModelKind::Sde) => format!("drift {}", state.name),
            (Part::Diffusion, _) => format!("diffusion {}", state.name),
        };
        f.push_output(&name, node);
    }
    finish(f)
}

/// The initial state `u0(p[, x])` as a function with the model's usual arguments.
pub fn lower_init(model: &Model) -> Result<Function, Diag> {
    let mut f = model_function(model);
    for s in &model.states {
        let node = lower_expr(model, &mut f, &s.init)?;
        let node = broadcast_to(&mut f, node, ir_shape(s.shape));
        f.push_output(&format!("{}(t0)", s.name), node);
    }
    finish(f)
}

fn finish(f: Function) -> Result<Function, Diag> {
    let f = crate::ir::simplify(&f);
    f.validate().map_err(internal)?;
    Ok(f)
}

/// An IR error as a diagnostic: `glassbox::internal` (a bug), except a dense Jacobian too
/// large to build (`glassbox::jacobian_too_large`).
pub fn internal(e: IrError) -> Diag {
    // Not a bug: a valid model with many states, differentiated densely.
    if let IrError::JacobianTooLarge { .. } = e {
        return Diag::error("glassbox::jacobian_too_large", e.to_string()).help(
            "a dense Jacobian has at most 2048 × 2048 entries; to solve a model this large use \
             an explicit method such as `tsit5`, or `auto`, which stays explicit for it",
        );
    }
    Diag::error(
        "glassbox::internal",
        format!("internal error while building the IR: {e}"),
    )
    .help("this is a bug in glassbox; please report it with the model file")
}

fn unsupported(what: &str, e: &TExpr) -> Diag {
    Diag::error(
        "glassbox::not_in_vector_field",
        format!("{what} cannot appear here"),
    )
    .label(e.span, "not available inside the vector field")
    .help("use it in `output` or `minimize`, which are evaluated after the solve")
}

fn broadcast_to(f: &mut Function, node: NodeId, shape: IrShape) -> NodeId {
    if f.graph.shape(node) == shape || !f.graph.shape(node).is_scalar() {
        node
    } else {
        f.graph.broadcast(node, shape)
    }
}

fn arg_input(f: &mut Function, arg: &str, offset: usize, shape: IrShape) -> Result<NodeId, Diag> {
    f.input(arg, offset, shape).map_err(internal)
}

/// Lower one typed expression into `f`'s graph.
pub fn lower_expr(model: &Model, f: &mut Function, e: &TExpr) -> Result<NodeId, Diag> {
    let shape = ir_shape(e.shape);
    let node = match &e.kind {
        TExprKind::Const { value } => constant(f, value, shape),
        TExprKind::State { state } => {
            let s = &model.states[*state];
            arg_input(f, "u", s.offset, shape)?
        }
        TExprKind::Param { param } => {
            let p = &model.params[*param];
            arg_input(f, "p", p.offset, shape)?
        }
        TExprKind::Input { input } => {
            let i = &model.inputs[*input];
            arg_input(f, "x", i.offset, shape)?
        }
        TExprKind::Time => arg_input(f, "t", 0, IrShape::Scalar)?,
        TExprKind::StateAt { .. } => return Err(unsupported("a state at a time", e)),
        TExprKind::Output { .. } => return Err(unsupported("an output", e)),
        TExprKind::TimeDeriv { .. } => return Err(unsupported("`d(…)/dt`", e)),
        TExprKind::Vector { items } | TExprKind::Concat { items } => {
            let parts = items
                .iter()
                .map(|i| {
                    let n = lower_expr(model, f, i)?;
                    Ok(if f.graph.shape(n).is_scalar() {
                        n
                    } else {
                        f.graph.flatten(n)
                    })
                })
                .collect::<Result<Vec<_>, Diag>>()?;
            f.graph.concat(&parts)
        }
        TExprKind::Matrix { rows } => {
            let mut parts = Vec::new();
            for row in rows {
                for item in row {
                    parts.push(lower_expr(model, f, item)?);
                }
            }
            let flat = f.graph.concat(&parts);
            f.graph.reshape(flat, shape)
        }
        TExprKind::Unary {
            op: UnOp::Neg,
            expr,
        } => {
            let x = lower_expr(model, f, expr)?;
            f.graph.neg(x)
        }
        TExprKind::Binary { op, lhs, rhs } => {
            let a = lower_expr(model, f, lhs)?;
            let b = lower_expr(model, f, rhs)?;
            match op {
                BinOp::Add => f.graph.add(a, b),
                BinOp::Sub => f.graph.sub(a, b),
                BinOp::Mul => f.graph.mul(a, b),
                BinOp::Div => f.graph.div(a, b),
                BinOp::Pow => f.graph.pow(a, b),
                BinOp::MatMul => match f.graph.shape(b) {
                    IrShape::Matrix(..) => f.graph.matmul(a, b),
                    _ => f.graph.matvec(a, b),
                },
            }
        }
        TExprKind::Builtin { f: builtin, args } => {
            let xs = args
                .iter()
                .map(|a| lower_expr(model, f, a))
                .collect::<Result<Vec<_>, Diag>>()?;
            lower_builtin(f, *builtin, &xs, e)?
        }
        TExprKind::NetApply { net, input } => {
            let x = lower_expr(model, f, input)?;
            lower_net(model, f, *net, x)?
        }
        TExprKind::Index { base, index } => {
            let x = lower_expr(model, f, base)?;
            lower_index(f, x, index, shape)
        }
        TExprKind::Jacobian { expr, state } => lower_jacobian(model, f, expr, *state, shape)?,
    };
    if let Some(err) = f.graph.error() {
        return Err(internal(err.clone()));
    }
    Ok(node)
}

fn constant(f: &mut Function, value: &[f64], shape: IrShape) -> NodeId {
    if shape.is_scalar() {
        return f.graph.constant(value.first().copied().unwrap_or(0.0));
    }
    let parts: Vec<NodeId> = value.iter().map(|&v| f.graph.constant(v)).collect();
    let flat = f.graph.concat(&parts);
    if matches!(shape, IrShape::Matrix(..)) {
        f.graph.reshape(flat, shape)
    } else {
        flat
    }
}

fn lower_builtin(f: &mut Function, b: Builtin, xs: &[NodeId], e: &TExpr) -> Result<NodeId, Diag> {
    let x = *xs
        .first()
        .ok_or_else(|| unsupported("a builtin without arguments", e))?;
    if let Some(op) = b.unary() {
        return Ok(f.graph.unary(op, x));
    }
    // The reductions, spelled as `sema::fold` computes them from the same `crate::math`.
    Ok(match b {
        Builtin::Sum => f.graph.sum(x),
        Builtin::Mean => {
            let n = f.graph.shape(x).len() as f64;
            let s = f.graph.sum(x);
            let n = f.graph.constant(n);
            f.graph.div(s, n)
        }
        Builtin::Norm => {
            let sq = f.graph.unary(Unary::Square, x);
            let s = f.graph.sum(sq);
            f.graph.unary(Unary::Sqrt, s)
        }
        Builtin::Dot => {
            let y = *xs
                .get(1)
                .ok_or_else(|| unsupported("`dot` with one argument", e))?;
            f.graph.dot(x, y)
        }
        _ => {
            return Err(unsupported(
                "an elementwise builtin without its scalar op",
                e,
            ));
        }
    })
}

/// A dense network: `W·h + b` per layer, the activation between layers.
fn lower_net(model: &Model, f: &mut Function, net: usize, x: NodeId) -> Result<NodeId, Diag> {
    let net = &model.nets[net];
    let mut h = if f.graph.shape(x).is_scalar() {
        f.graph.concat(&[x])
    } else {
        x
    };
    for (i, layer) in net.layers.iter().enumerate() {
        let w = &model.params[layer.weight];
        let b = &model.params[layer.bias];
        let wn = arg_input(f, "p", w.offset, ir_shape(w.shape))?;
        let bn = arg_input(f, "p", b.offset, ir_shape(b.shape))?;
        let wx = f.graph.matvec(wn, h);
        h = f.graph.add(wx, bn);
        if i + 1 < net.layers.len() {
            h = match net.act {
                Activation::Tanh => f.graph.unary(Unary::Tanh, h),
                Activation::Relu => f.graph.unary(Unary::Relu, h),
                Activation::Sigmoid => f.graph.unary(Unary::Sigmoid, h),
                Activation::Softplus => f.graph.unary(Unary::Softplus, h),
                Activation::Identity => h,
            };
        }
    }
    Ok(if net.output_size() == 1 {
        f.graph.index(h, 0)
    } else {
        h
    })
}

fn lower_index(f: &mut Function, x: NodeId, index: &[IndexSel], shape: IrShape) -> NodeId {
    match (f.graph.shape(x), index) {
        (_, [IndexSel::At { i }]) => f.graph.index(x, *i),
        (_, [IndexSel::Slice { start, end }]) => f.graph.slice(x, *start, end - start),
        (IrShape::Matrix(_, n), [rows, cols]) => {
            let flat = f.graph.flatten(x);
            let (r0, r1) = sel_range(*rows);
            let (c0, c1) = sel_range(*cols);
            let mut parts = Vec::new();
            for r in r0..r1 {
                parts.push(f.graph.slice(flat, r * n + c0, c1 - c0));
            }
            let out = f.graph.concat(&parts);
            if shape.is_scalar() {
                f.graph.index(out, 0)
            } else {
                f.graph.reshape(out, shape)
            }
        }
        _ => f.graph.reshape(x, shape),
    }
}

fn sel_range(s: IndexSel) -> (usize, usize) {
    match s {
        IndexSel::At { i } => (i, i + 1),
        IndexSel::Slice { start, end } => (start, end),
    }
}

/// `jacobian(expr, X)`: lower `expr` on its own, differentiate it as an IR pass, and splice the
/// result back into the graph (its inputs are the same arguments, so they map one to one).
fn lower_jacobian(
    model: &Model,
    f: &mut Function,
    expr: &TExpr,
    state: usize,
    shape: IrShape,
) -> Result<NodeId, Diag> {
    let mut inner = model_function(model);
    let node = lower_expr(model, &mut inner, expr)?;
    inner.push_output("e", node);
    let jac = crate::ir::jacobian(&inner, "u").map_err(internal)?;
    let full = splice(f, &jac)?;
    // Columns of the state `X` only.
    let s = &model.states[state];
    let m = jac.output_len() / model.state_size.max(1);
    let flat = f.graph.flatten(full[0]);
    let mut parts = Vec::new();
    for r in 0..m {
        parts.push(
            f.graph
                .slice(flat, r * model.state_size + s.offset, s.shape.size()),
        );
    }
    let out = f.graph.concat(&parts);
    Ok(if shape.is_scalar() {
        f.graph.index(out, 0)
    } else {
        f.graph.reshape(out, shape)
    })
}

/// Copy `src`'s graph into `dst`, mapping inputs by argument name; returns `src`'s outputs as
/// nodes of `dst`.
fn splice(dst: &mut Function, src: &Function) -> Result<Vec<NodeId>, Diag> {
    use crate::ir::Op;
    let mut map: Vec<NodeId> = Vec::with_capacity(src.graph.len());
    for (_, node) in src.graph.nodes() {
        let new = match &node.op {
            Op::Input { arg, offset } => {
                let name = &src.args[*arg].name;
                arg_input(dst, name, *offset, node.shape)?
            }
            op => {
                let op = crate::ir::map_operands(op, |id| map[id.index()]);
                dst.graph.apply(&op, node.shape)
            }
        };
        map.push(new);
    }
    Ok(src.outputs.iter().map(|o| map[o.node.index()]).collect())
}

/// Split the flat output `output` (a gradient over argument `arg`, such as `vjp_p`) into one
/// output per slot of that argument, named `{prefix}{slot}`, so each parameter's gradient
/// prints under its own name (`vjp_f.W1 = …`). Simplification then reduces each slice of the
/// assembled gradient to the piece that produced it.
pub fn split_output_by_slots(f: &Function, output: &str, arg: &str, prefix: &str) -> Function {
    let Some(arg_index) = f.arg_index(arg) else {
        return f.clone();
    };
    let mut g = f.clone();
    let mut outputs = Vec::new();
    for o in &f.outputs {
        if o.name != output {
            outputs.push(o.clone());
            continue;
        }
        let flat = g.graph.flatten(o.node);
        for slot in f.slots.iter().filter(|s| s.arg == arg_index) {
            let node = match slot.shape {
                IrShape::Scalar => g.graph.index(flat, slot.offset),
                shape => {
                    let piece = g.graph.slice(flat, slot.offset, shape.len());
                    g.graph.reshape(piece, shape)
                }
            };
            outputs.push(crate::ir::Output {
                name: format!("{prefix}{}", slot.name),
                node,
            });
        }
    }
    g.outputs = outputs;
    crate::ir::simplify(&g)
}

/// The integrands of the baseline regularizers the seed papers compare against, each a scalar
/// function of the model's usual arguments `(t, u, p[, x])`: the objective terms the JIT
/// compiles beside the vector field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrand {
    /// RNODE's kinetic energy ‖f‖².
    Kinetic,
    /// RNODE's ‖∂f/∂u‖_F² (exact, symbolic: meant for small states).
    JacobianFrobenius,
    /// Hutchinson's estimate of it, `‖(∂f/∂u) ε‖²`: one JVP (its cost does not grow with
    /// n²), with the probe `ε` an extra trailing argument [`PROBE`] as long as `u`.
    JacobianFrobeniusHutchinson,
    /// TayNODE's ‖dᴷu/dtᴷ‖², K ≥ 1 (K = 1 is the kinetic energy).
    Taylor(usize),
}

/// The probe argument of [`Integrand::JacobianFrobeniusHutchinson`].
pub const PROBE: &str = "probe";

/// Lower one regularizer integrand: the squared norm of the field, of its Jacobian, or of the
/// K-th time derivative along the flow, as one scalar output.
pub fn lower_integrand(model: &Model, which: Integrand) -> Result<Function, Diag> {
    let field = lower(model, Part::Field)?;
    let (base, name) = match which {
        Integrand::Kinetic => (field, "kinetic".to_string()),
        Integrand::JacobianFrobenius => (
            crate::ir::jacobian(&field, "u").map_err(internal)?,
            "jacobian_frobenius".to_string(),
        ),
        Integrand::JacobianFrobeniusHutchinson => (
            crate::ir::jvp(&field, "u", PROBE).map_err(internal)?,
            "jacobian_frobenius_hutchinson".to_string(),
        ),
        Integrand::Taylor(k) => {
            let k = k.max(1);
            let mut all =
                crate::ir::time_derivatives(&field, k, Some("t"), "u").map_err(internal)?;
            let last = all.pop().ok_or_else(|| {
                internal(IrError::Invalid("no time derivative was produced".into()))
            })?;
            (last, format!("taylor({k})"))
        }
    };
    let mut f = base.clone();
    let mut total = None;
    for o in &base.outputs {
        let sq = f.graph.unary(Unary::Square, o.node);
        let s = f.graph.sum(sq);
        total = Some(match total {
            None => s,
            Some(acc) => f.graph.add(acc, s),
        });
    }
    let total = total.unwrap_or_else(|| f.graph.constant(0.0));
    f.outputs.clear();
    f.push_output(&name, total);
    finish(crate::ir::prune(&f))
}
