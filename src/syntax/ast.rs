//! The syntax tree: what the user wrote, with spans, before any name or shape is known.
//!
//! Architecture Invariant: the AST is produced only by `syntax::parse` and consumed by
//! `syntax::format` and `sema`; the IR never refers to it. `PartialEq` ignores spans (see
//! [`Span`]), so equality means "says the same thing".

pub use crate::source::Span;

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub items: Vec<Item>,
    /// Every comment, in source order, so `fmt` keeps them (`# ...` and `// ...`).
    pub comments: Vec<Comment>,
    /// Indices into `items` of the items that a blank line separated from what came before
    /// them (layout only: `format` keeps one blank line there).
    pub blank_before_items: Vec<usize>,
    /// The items that failed to parse, in source order, with what they would have declared,
    /// so the checker can run on the rest without follow-on errors. Empty for a clean file
    /// (and so for anything `format` sees).
    pub broken: Vec<BrokenItem>,
}

/// An item that did not parse, read cheaply from its tokens (see `syntax::recover`).
#[derive(Clone, Debug, PartialEq)]
pub struct BrokenItem {
    /// `state`, `param`, ..., `solve` (a misspelt keyword as the one it most resembles, or as
    /// written when it resembles none); `None` for an equation.
    pub keyword: Option<String>,
    /// The names it declares; for an equation, the state from its head `dX/dt =` or `dX =`.
    pub names: Vec<Ident>,
    /// An equation written in SDE form (`dX = ...`), which decides the model's kind when it
    /// is the first equation.
    pub sde: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// The text after the marker, as written (`# ` style is normalised by `fmt`).
    pub text: String,
    /// On a line of its own (leading) rather than after code (trailing).
    pub own_line: bool,
    /// An own-line comment that a blank line separated from what came before it (layout only).
    pub blank_before: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    /// `model spiral`
    Model(Ident),
    /// `use "lib/physics.gbx"` or `use nn` (a stdlib module).
    Use(UseTarget),
    /// `state y[2] = [2.0, 0.0]`, `state x = 1.0, y = 1.0`, `state h[32] = enc(x)`
    State(Vec<StateDecl>),
    /// `param alpha = 1.3 learn, delta = 1.8`
    Param(Vec<ParamDecl>),
    /// `const g = 9.81`
    Const(Vec<ConstDecl>),
    /// `input x[64]`
    Input(Vec<InputDecl>),
    /// `label c in 0..10`
    Label(Vec<LabelDecl>),
    /// `net f = mlp(2, 50, 2; act = tanh)`
    Net(Vec<NetDecl>),
    /// `data obs = csv("data/spiral.csv", time = "t", columns = ["y1", "y2"])`
    Data(Vec<DataDecl>),
    /// `fn sq(x) = x * x`
    Fn(FnDecl),
    /// `output logits = dec(h(1))`
    Output(Vec<OutputDecl>),
    /// `dy/dt = f(y^3)` or `du = a dt + b * dW`
    Equation(Equation),
    /// `solve tsit5(rtol = 1e-7) over [0, 25]`
    Solve(SolveClause),
    /// `minimize l1(y, obs) + 0.1 * error_estimate`
    Minimize(Expr),
    /// `train adam(lr = 1e-3), iterations = 500, batch = 128`
    Train(TrainClause),
}

#[derive(Clone, Debug, PartialEq)]
pub enum UseTarget {
    /// A file path, relative to the importing file.
    Path { path: String, span: Span },
    /// A stdlib module by name (`use nn`).
    Module(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub struct StateDecl {
    pub name: Ident,
    /// `[2]` or `[3, 3]`; `None` for a scalar.
    pub shape: Option<Vec<Expr>>,
    pub init: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    pub name: Ident,
    pub shape: Option<Vec<Expr>>,
    pub value: Option<Expr>,
    /// Marked `learn`: trained, not fixed.
    pub learn: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConstDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputDecl {
    pub name: Ident,
    pub shape: Option<Vec<Expr>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LabelDecl {
    pub name: Ident,
    /// The class range, `0..10`.
    pub classes: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetDecl {
    pub name: Ident,
    /// The stdlib constructor call, `mlp(2, 50, 2; act = tanh)`.
    pub ctor: Call,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataDecl {
    pub name: Ident,
    /// The source call, `csv("path", time = "t", ...)` or `npy(...)`.
    pub source: Call,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    pub name: Ident,
    pub params: Vec<Ident>,
    pub body: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutputDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Equation {
    /// `dX/dt = rhs`; `state` is the `X` (its span excludes the leading `d`).
    Ode { state: Ident, rhs: Expr },
    /// `dX = drift dt + diffusion * dW` (`* dW` and plain `dW` are the same: diagonal noise,
    /// or scalar noise when the diffusion is a scalar). No diffusion term means `dX = a dt`.
    Sde {
        state: Ident,
        drift: Expr,
        diffusion: Option<Expr>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct SolveClause {
    /// `tsit5(rtol = 1e-7, atol = 1e-9)`; a bare method name is a call with no arguments.
    pub method: Call,
    pub span_kind: Option<SolveSpan>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SolveSpan {
    /// `over [t0, t1]`
    Over(Expr),
    /// `at TIMES` (a vector, a range, or a data column)
    At(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainClause {
    /// `adam(lr = 1e-3)`; a bare optimiser name is a call with no arguments.
    pub optimizer: Call,
    /// `iterations = 500, batch = windows(20, length = 10)`: always named.
    pub settings: Vec<Arg>,
}

/// A call: `callee(positional..., name = value...)`. Named arguments follow positional ones;
/// `;` and `,` both separate them in the source (`mlp(2, 50, 2; act = tanh)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub callee: Ident,
    pub args: Vec<Arg>,
    /// Whether an argument list was written at all: `tsit5` vs `tsit5()`. Only the `solve`
    /// and `train` clauses allow it to be absent.
    pub parens: bool,
    /// `;` (rather than `,`) sets the named arguments apart from the positional ones; only
    /// ever true when there are both. A matter of style, kept so `fmt` preserves it.
    pub semicolon: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    /// Elementwise (with broadcasting), or scaling by a scalar.
    Mul,
    Div,
    /// Elementwise power; right-associative and tighter than unary minus: `-x^2` is `-(x^2)`.
    Pow,
    /// Matrix product: matrix·matrix, matrix·vector.
    MatMul,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number literal; `text` is kept so `fmt` prints it as written (`1e-7`, `2000`).
    Num {
        value: f64,
        text: String,
    },
    Str(String),
    /// A name: a state, parameter, constant, input, `t`, a function, an observable...
    Name(String),
    /// `[a, b, c]`
    Vector(Vec<Expr>),
    /// `[1, 2; 3, 4]`: rows separated by `;`.
    Matrix(Vec<Vec<Expr>>),
    /// `a..b`, `a..`, `..b`: class ranges, column ranges, slices.
    Range {
        start: Option<Box<Expr>>,
        end: Option<Box<Expr>>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `f(x)`, `mlp(...)`, `h(1)` (a state at a time), `error_estimate(sample = unbiased)`.
    Call(Call),
    /// `u(x, y)[0]`, `W[1, 2]`, `y[0..2]`.
    Index {
        base: Box<Expr>,
        index: Vec<Expr>,
    },
    /// `decay(a -> b)`: a coefficient schedule over the training run.
    Decay {
        from: Box<Expr>,
        to: Box<Expr>,
    },
    /// `d(expr)/dt`: the time derivative along the flow.
    TimeDeriv(Box<Expr>),
}
