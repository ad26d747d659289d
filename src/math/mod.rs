//! The scalar semantics of every builtin function and operator, written once: the checker's
//! constant folding (`sema::fold`), the IR's constructors and interpreter (`ir::eval`) and the
//! JIT's runtime symbols (`jit::runtime`) all call [`Unary::apply`], [`Binary::apply`], [`sum`]
//! and [`dot`], so a folded `const`, an evaluated field and a compiled kernel agree bit for bit.
//!
//! This module sits below `sema` and `ir` and depends on neither; the operator enums are the
//! IR's node operators (`ir::Unary`, `ir::Binary` are these), and `sema::Builtin` names which
//! one each elementwise builtin is (`Builtin::unary`).
//!
//! NaN rules: every operation propagates a NaN operand, except `max`/`min`, which keep `a` when
//! `b` is NaN (the JIT emits exactly these comparisons inline: `jit::codegen`).

mod tanh;

pub use tanh::{tanh, tanh_into};

/// Elementwise unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    Neg,
    Exp,
    Log,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sigmoid,
    Relu,
    /// Heaviside step with step(0) = 0: the derivative of `relu`.
    Step,
    Softplus,
    Sqrt,
    Abs,
    /// sign(0) = 0: the derivative of `abs`.
    Sign,
    /// `x * x`.
    Square,
}

impl Unary {
    /// Every operation, for tests that must cover each one.
    pub const ALL: [Unary; 15] = [
        Unary::Neg,
        Unary::Exp,
        Unary::Log,
        Unary::Sin,
        Unary::Cos,
        Unary::Tan,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::Relu,
        Unary::Step,
        Unary::Softplus,
        Unary::Sqrt,
        Unary::Abs,
        Unary::Sign,
        Unary::Square,
    ];

    /// The semantics of the operation on one `f64`.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Unary::Neg => -x,
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tan => x.tan(),
            Unary::Tanh => tanh(x),
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            // NaN stays NaN (as in torch and jax): `relu(log(-1))` must show the bad input, not
            // hide it as 0. Not `x.max(0.0)`, which returns the non-NaN operand, and whose
            // `relu(-0)` is unspecified; here it is +0, as the JIT's `select` gives.
            Unary::Relu => {
                if x > 0.0 || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            Unary::Step => {
                if x > 0.0 {
                    1.0
                } else if x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            // Stable form: log(1 + e^x) = max(x, 0) + log1p(e^-|x|); a NaN reaches the sum
            // through the second term.
            Unary::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    // ±0 → 0, NaN → NaN.
                    x
                }
            }
            Unary::Square => x * x,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Tan => "tan",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Relu => "relu",
            Unary::Step => "step",
            Unary::Softplus => "softplus",
            Unary::Sqrt => "sqrt",
            Unary::Abs => "abs",
            Unary::Sign => "sign",
            Unary::Square => "square",
        }
    }
}

/// Elementwise binary operations (a scalar operand broadcasts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
}

impl Binary {
    /// Every operation, for tests that must cover each one.
    pub const ALL: [Binary; 7] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Pow,
        Binary::Max,
        Binary::Min,
    ];

    /// The semantics on one pair of `f64`s.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Pow => {
                // `x^2` is defined as `x * x` (the IR's constructor rewrites to `square`); keep
                // folding consistent with that definition. `x^3` is `(x * x) * x` (as jax's
                // `integer_pow` and torch compute it; the JIT inlines it for a constant 3): a
                // cubed state is common in fields, and libm's `pow` costs as much as the rest
                // of a small one.
                if b == 2.0 {
                    a * a
                } else if b == 3.0 {
                    a * a * a
                } else {
                    a.powf(b)
                }
            }
            Binary::Max => {
                if a >= b || b.is_nan() {
                    a
                } else {
                    b
                }
            }
            Binary::Min => {
                if a <= b || b.is_nan() {
                    a
                } else {
                    b
                }
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Pow => "pow",
            Binary::Max => "max",
            Binary::Min => "min",
        }
    }
}

/// `x₀ + x₁ + …` left to right, from `-0.0` (Rust's `Sum` for `f64`: the sum of `[-0.0]` is
/// `-0.0`); the JIT adds in the same order.
pub fn sum(xs: &[f64]) -> f64 {
    xs.iter().sum()
}

/// `Σ aᵢ·bᵢ` in index order (each product rounded, then summed as [`sum`] does).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}
