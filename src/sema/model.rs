//! The checked model: the contract between the checker and lowering to the IR.
//!
//! Plain data. Every name is resolved to an index into one of the model's tables, every
//! expression carries its shape, user functions are already inlined, constants are folded.
//! Invariants (when `check` returns `Some(model)`): `equations[i].state == i` for every state;
//! state offsets tile `0..state_size` in declaration order; parameter offsets tile
//! `0..param_size`; every `TExpr` has a shape other than `Shape::Error`.

use std::path::PathBuf;

use serde::Serialize;

pub use super::shape::Shape;
use crate::math::Unary;
use crate::source::Span;
pub use crate::syntax::ast::{BinOp, UnOp};

#[derive(Clone, Debug, Serialize)]
pub struct Model {
    /// From `model NAME`; the file stem when absent.
    pub name: String,
    /// ODE unless some equation is written in SDE form (`dX = a dt + b dW`).
    pub kind: ModelKind,
    /// In declaration order; `offset` places each in the flat state vector `u`.
    pub states: Vec<State>,
    /// Length of `u`.
    pub state_size: usize,
    /// User params and net layers, in declaration order, tiling the flat vector `p`.
    pub params: Vec<Param>,
    /// Length of `p`.
    pub param_size: usize,
    pub consts: Vec<Const>,
    /// Per-sample inputs (`input x[64]`), tiling a flat input vector.
    pub inputs: Vec<Input>,
    pub labels: Vec<LabelDef>,
    pub nets: Vec<Net>,
    /// One per state, in state order (`equations[i].state == i`).
    pub equations: Vec<Equation>,
    pub outputs: Vec<Output>,
    pub data: Vec<DataSource>,
    pub solve: Option<SolveSpec>,
    pub objective: Option<Objective>,
    pub train: Option<TrainSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Ode,
    Sde,
}

#[derive(Clone, Debug, Serialize)]
pub struct State {
    pub name: String,
    pub shape: Shape,
    /// First element in `u`; the state occupies `offset..offset + shape.size()` (row-major).
    pub offset: usize,
    /// The initial value: a constant, or an expression of inputs, params and nets (`enc(x)`).
    /// A state declared without one starts at zero (`Const` zeros).
    pub init: TExpr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Param {
    /// `alpha` for a user param, `f.W1` / `f.b1` for a net layer.
    pub name: String,
    pub shape: Shape,
    /// First element in `p`; the param occupies `offset..offset + shape.size()` (row-major).
    pub offset: usize,
    /// Trained (`learn`, and every net layer) or fixed.
    pub learn: bool,
    /// Initial values, `shape.size()` of them, row-major.
    pub init: Vec<f64>,
    pub origin: ParamOrigin,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParamOrigin {
    User,
    /// Weight matrix of layer `layer` (1-based) of net `net`.
    NetWeight {
        net: usize,
        layer: usize,
    },
    /// Bias vector of layer `layer` (1-based) of net `net`.
    NetBias {
        net: usize,
        layer: usize,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Const {
    pub name: String,
    pub value: Value,
    pub span: Span,
}

/// A folded constant: shape and row-major data (`data.len() == shape.size()`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Value {
    pub shape: Shape,
    pub data: Vec<f64>,
}

impl Value {
    pub fn scalar(x: f64) -> Value {
        Value {
            shape: Shape::Scalar,
            data: vec![x],
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Input {
    pub name: String,
    pub shape: Shape,
    /// First element in the flat per-sample input vector.
    pub offset: usize,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabelDef {
    pub name: String,
    /// Number of classes: `label c in 0..10` has 10, the classes are `0..classes`.
    pub classes: usize,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Net {
    pub name: String,
    pub kind: NetKind,
    /// `[n0, n1, ..., nk]`: input size, hidden sizes, output size.
    pub sizes: Vec<usize>,
    /// Applied between layers, never after the last.
    pub act: Activation,
    pub init: Init,
    /// Layer `i` (0-based here, named `W{i+1}`/`b{i+1}`) maps `sizes[i]` to `sizes[i+1]`.
    pub layers: Vec<Layer>,
    pub span: Span,
}

impl Net {
    pub fn input_size(&self) -> usize {
        self.sizes.first().copied().unwrap_or(0)
    }

    pub fn output_size(&self) -> usize {
        self.sizes.last().copied().unwrap_or(0)
    }

    /// Shape of an application: a net with one output returns a scalar.
    pub fn output_shape(&self) -> Shape {
        match self.output_size() {
            1 => Shape::Scalar,
            n => Shape::vector(n),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Layer {
    /// Index into `Model::params` of `W` (`sizes[i+1]` × `sizes[i]`, row-major).
    pub weight: usize,
    /// Index into `Model::params` of `b` (`sizes[i+1]`).
    pub bias: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    Mlp,
    Linear,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
    Sigmoid,
    Softplus,
    Identity,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Init {
    /// Uniform on ±sqrt(6 / (fan_in + fan_out)) (the default).
    Glorot,
    /// Normal(0, sqrt(2 / fan_in)).
    He,
    /// Normal(0, sigma).
    Normal { sigma: f64 },
}

#[derive(Clone, Debug, Serialize)]
pub struct Equation {
    /// Index into `Model::states`.
    pub state: usize,
    pub kind: EquationKind,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EquationKind {
    /// `dX/dt = rhs`; `rhs` has the state's shape.
    Ode { rhs: TExpr },
    /// `dX = drift dt + diffusion dW`; `drift` has the state's shape.
    Sde {
        drift: TExpr,
        /// `None` for `dX = a dt` (no noise on this state).
        diffusion: Option<TExpr>,
        noise: Noise,
    },
}

/// How the diffusion multiplies the Wiener process. Every state has its own Wiener process,
/// independent of the other states'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Noise {
    /// No diffusion term.
    None,
    /// A scalar diffusion: one Wiener process shared by every component of the state.
    Scalar,
    /// A diffusion of the state's shape: one independent Wiener process per component.
    Diagonal,
}

#[derive(Clone, Debug, Serialize)]
pub struct Output {
    pub name: String,
    pub value: TExpr,
    pub span: Span,
}

/// A typed, resolved expression.
#[derive(Clone, Debug, Serialize)]
pub struct TExpr {
    pub kind: TExprKind,
    pub shape: Shape,
    /// Where it was written (inside a user function's body for inlined code).
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum TExprKind {
    /// A constant (number literal or folded `const`); row-major, `shape.size()` values.
    Const {
        value: Vec<f64>,
    },
    State {
        state: usize,
    },
    /// `X(t1)`: state `state` at the constant time `time` (outputs and objective only).
    StateAt {
        state: usize,
        time: f64,
    },
    Param {
        param: usize,
    },
    Input {
        input: usize,
    },
    /// A declared output (objective only).
    Output {
        output: usize,
    },
    Time,
    /// `[a, b, c]` of scalars.
    Vector {
        items: Vec<TExpr>,
    },
    /// `[a, b; c, d]` of scalars, row by row.
    Matrix {
        rows: Vec<Vec<TExpr>>,
    },
    Unary {
        #[serde(serialize_with = "debug_str")]
        op: UnOp,
        expr: Box<TExpr>,
    },
    /// Elementwise with scalar broadcasting, or `MatMul`.
    Binary {
        #[serde(serialize_with = "debug_str")]
        op: BinOp,
        lhs: Box<TExpr>,
        rhs: Box<TExpr>,
    },
    /// A builtin applied to checked arguments.
    Builtin {
        f: Builtin,
        args: Vec<TExpr>,
    },
    /// Scalars and vectors laid end to end.
    Concat {
        items: Vec<TExpr>,
    },
    /// A net applied to its (concatenated) input; `input` is a vector of the net's input size
    /// (or a scalar for a one-input net).
    NetApply {
        net: usize,
        input: Box<TExpr>,
    },
    /// `base[...]` with constant indices, one per axis of `base`.
    Index {
        base: Box<TExpr>,
        index: Vec<IndexSel>,
    },
    /// `jacobian(expr, X)`: ∂expr/∂X.
    Jacobian {
        expr: Box<TExpr>,
        state: usize,
    },
    /// `d(expr)/dt` along the flow.
    TimeDeriv {
        expr: Box<TExpr>,
    },
}

/// AST operators are not serde types; they serialise by name (`Add`, `MatMul`, `Neg`).
fn debug_str<T: std::fmt::Debug, S: serde::Serializer>(x: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{x:?}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IndexSel {
    /// One position (the axis disappears).
    At { i: usize },
    /// Half-open `start..end` (the axis keeps `end - start` elements).
    Slice { start: usize, end: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    Exp,
    Log,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    Sqrt,
    Abs,
    /// Sum of all elements → scalar.
    Sum,
    /// Mean of all elements → scalar.
    Mean,
    /// Euclidean (Frobenius) norm → scalar.
    Norm,
    /// `dot(a, b)` of equal shapes → scalar.
    Dot,
}

impl Builtin {
    pub const ALL: [(&'static str, Builtin); 15] = [
        ("exp", Builtin::Exp),
        ("log", Builtin::Log),
        ("sin", Builtin::Sin),
        ("cos", Builtin::Cos),
        ("tan", Builtin::Tan),
        ("tanh", Builtin::Tanh),
        ("sigmoid", Builtin::Sigmoid),
        ("relu", Builtin::Relu),
        ("softplus", Builtin::Softplus),
        ("sqrt", Builtin::Sqrt),
        ("abs", Builtin::Abs),
        ("sum", Builtin::Sum),
        ("mean", Builtin::Mean),
        ("norm", Builtin::Norm),
        ("dot", Builtin::Dot),
    ];

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }

    pub fn is_elementwise(self) -> bool {
        self.unary().is_some()
    }

    pub fn arity(self) -> usize {
        if self == Builtin::Dot { 2 } else { 1 }
    }

    /// The scalar operation an elementwise builtin applies to each element (`None` for the
    /// reductions): the one mapping constant folding and lowering both use, so a folded
    /// `const` and the lowered IR compute the same function.
    pub fn unary(self) -> Option<Unary> {
        Some(match self {
            Builtin::Exp => Unary::Exp,
            Builtin::Log => Unary::Log,
            Builtin::Sin => Unary::Sin,
            Builtin::Cos => Unary::Cos,
            Builtin::Tan => Unary::Tan,
            Builtin::Tanh => Unary::Tanh,
            Builtin::Sigmoid => Unary::Sigmoid,
            Builtin::Relu => Unary::Relu,
            Builtin::Softplus => Unary::Softplus,
            Builtin::Sqrt => Unary::Sqrt,
            Builtin::Abs => Unary::Abs,
            Builtin::Sum | Builtin::Mean | Builtin::Norm | Builtin::Dot => return None,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DataSource {
    pub name: String,
    /// Resolved against the model file's directory.
    pub path: PathBuf,
    pub format: DataFormat,
    pub layout: DataLayout,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Csv,
    Npy,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataLayout {
    /// Observations over time, with a header: a time column, state columns, and optionally a
    /// path-id column grouping several sample paths (SDE data).
    Trajectory {
        time: String,
        columns: Vec<String>,
        group: Option<String>,
    },
    /// Rows of samples, no header: feature columns `features` (half-open, by index) and an
    /// optional label column.
    Table {
        features: (usize, usize),
        label: Option<usize>,
    },
}

impl DataLayout {
    /// How many values one observation (trajectory) or one sample (table) holds.
    pub fn width(&self) -> usize {
        match self {
            DataLayout::Trajectory { columns, .. } => columns.len(),
            DataLayout::Table { features, .. } => features.1.saturating_sub(features.0),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SolveSpec {
    pub method: Method,
    pub options: SolveOptions,
    pub times: Option<SolveTimes>,
    pub span: Span,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SolveOptions {
    pub rtol: Option<f64>,
    pub atol: Option<f64>,
    /// Fixed step size (required by fixed-step methods).
    pub dt: Option<f64>,
    pub max_steps: Option<u64>,
    /// Initial step size for adaptive methods.
    pub h0: Option<f64>,
    /// Step control of batched solves (`batch = per_row | joint`; explicit methods).
    pub batch: Option<crate::solve::BatchControl>,
    /// The step-size controller's gains and limits (adaptive ODE methods; the defaults where
    /// not given).
    pub control: crate::solve::StepControl,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SolveTimes {
    Over {
        t0: f64,
        t1: f64,
    },
    /// Strictly increasing observation times.
    At {
        times: Vec<f64>,
    },
}

/// The solver method of a `solve` clause: a row of the one method registry (which lives
/// with the solvers as plain data; `docs/architecture.md`, "Decisions").
pub use crate::solve::registry::Method;

#[derive(Clone, Debug, Serialize)]
pub struct Objective {
    pub terms: Vec<Term>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Term {
    pub coef: Coef,
    pub kind: TermKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Coef {
    Const {
        value: f64,
    },
    /// `decay(from -> to)`: λ(e) = from·exp(−k·e), k = ln(from/to)/E over the run.
    Decay {
        from: f64,
        to: f64,
    },
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TermKind {
    /// `mse`, `l1`, `cross_entropy`: `pred` against `target`.
    Loss {
        loss: Loss,
        pred: TExpr,
        target: Target,
    },
    /// `moments(X, data; samples = N)`: match the mean and variance of N sample paths.
    Moments {
        pred: TExpr,
        data: usize,
        samples: u64,
    },
    /// A solver observable (`error_estimate`, `stiffness`, `nfe`); `sample` selects the local
    /// (one-step) variant.
    Observable {
        observable: Observable,
        sample: Option<Sampling>,
    },
    /// RNODE's ∫‖f‖² dt.
    Kinetic,
    /// RNODE's ∫‖∂f/∂u‖_F² dt; `estimator` as written (`None`: the trainer picks by the
    /// state size, `train::integrals::EXACT_MAX_STATES`).
    JacobianFrobenius { estimator: Option<Estimator> },
    /// TayNODE's ∫‖d^K u/dt^K‖² dt.
    Taylor { order: u32 },
    /// STEER: end time drawn from U(T − b, T + b).
    Steer { b: f64 },
    /// ‖p_learned‖².
    WeightDecay,
}

/// How `jacobian_frobenius` computes ‖∂f/∂u‖_F²: the symbolic Jacobian, or Hutchinson's
/// `‖(∂f/∂u) ε‖²` with a Rademacher probe `ε` (one JVP, unbiased).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    Exact,
    Hutchinson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    Mse,
    L1,
    CrossEntropy,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// A data source (index into `Model::data`); its width equals the prediction's size.
    Data { data: usize },
    /// A label (index into `Model::labels`); its class count equals the logits' size.
    Label { label: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observable {
    ErrorEstimate,
    Stiffness,
    Nfe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    Unbiased,
    Biased,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainSpec {
    pub optimizer: Optimizer,
    pub stop: Stop,
    pub batch: Option<Batch>,
    /// Fraction of the data used for training (the rest validates), 0 < split < 1.
    pub split: Option<f64>,
    pub seed: Option<u64>,
    pub checkpoint_every: Option<u64>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Optimizer {
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    AdamW {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    Sgd {
        lr: f64,
        momentum: f64,
    },
    RmsProp {
        lr: f64,
        decay: f64,
        eps: f64,
        momentum: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Stop {
    Iterations { n: u64 },
    Epochs { n: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Batch {
    /// Samples (or trajectories) per step.
    Size { n: u64 },
    /// `windows(B, length = L)`: B windows of L consecutive observations per step.
    Windows { count: u64, length: u64 },
}
