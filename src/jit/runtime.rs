//! Runtime symbols the compiled kernels import: the math functions Cranelift has no
//! instruction for. Each wraps the scalar semantics of `crate::math` ([`Unary::apply`],
//! [`Binary::apply`]), which the interpreter and constant folding call too, so a JIT kernel,
//! `ir::eval` and a folded constant agree bit for bit by construction.
//!
//! A `tanh` of a tensor is one call of a slice symbol (`TANH_N`, defined in `slice_runtime.rs`
//! since it reads raw pointers) that gives each element the scalar symbol's bits, vectorised.
//!
//! Invariant: every symbol here is a plain `extern "C"` function of `f64`s with no side effects;
//! `module.rs` registers them with `JITBuilder::symbol` under the names `codegen.rs` calls. They
//! are also exported unmangled (the only "unsafe" here: a symbol name must be unique in a
//! link), so the kernels of a standalone binary (`jit::object`) resolve the same names to the
//! same functions in the runtime library.

use crate::math::{Binary, Unary};

macro_rules! unary_symbols {
    ($($fn_name:ident => $op:ident),* $(,)?) => {
        $(
        // SAFETY: the `glassbox_` prefix keeps the name clear of the C library's and other
        // crates' symbols, and the crate defines it once: the unmangled name is unique in a link.
        #[unsafe(no_mangle)]
        pub extern "C" fn $fn_name(x: f64) -> f64 {
            Unary::$op.apply(x)
        })*

        /// The imported unary symbol for `op`, if it is not emitted inline.
        pub(super) fn unary_symbol(op: Unary) -> Option<&'static str> {
            match op {
                $(Unary::$op => Some(stringify!($fn_name)),)*
                _ => None,
            }
        }

        /// Every unary symbol with its address, for `JITBuilder::symbol`.
        pub(super) fn unary_table() -> Vec<(&'static str, *const u8)> {
            vec![$((stringify!($fn_name), $fn_name as extern "C" fn(f64) -> f64 as *const u8)),*]
        }
    };
}

unary_symbols! {
    glassbox_exp => Exp,
    glassbox_log => Log,
    glassbox_sin => Sin,
    glassbox_cos => Cos,
    glassbox_tan => Tan,
    glassbox_tanh => Tanh,
    glassbox_sigmoid => Sigmoid,
    glassbox_softplus => Softplus,
}

/// `pow` keeps the interpreter's definition `x^2 = x·x` (see [`Binary::apply`]).
// SAFETY: unique in a link, as the unary symbols above.
#[unsafe(no_mangle)]
pub extern "C" fn glassbox_pow(a: f64, b: f64) -> f64 {
    Binary::Pow.apply(a, b)
}

pub(super) const POW: &str = "glassbox_pow";

/// Slice symbols, `fn(x: *const f64, out: *mut f64, n: usize)` with `out[i] = op(x[i])`: one
/// call per tensor node instead of one per element, vectorised, each element bit for bit the
/// scalar symbol's (`slice_runtime.rs` defines them: they read raw pointers).
pub(super) const TANH_N: &str = "glassbox_tanh_n";

/// Dense products, `fn(a, b, out, m, n)` (`slice_runtime.rs` defines them on `dense.rs`): a
/// mat-vec of an `m×n` matrix, the transposed mat-vec `aᵀ·b` of an `m×n` matrix `a`, and the `m×n`
/// outer product — each output element summed in the interpreter's order, vectorised across
/// outputs.
pub(super) const MATVEC: &str = "glassbox_matvec";
pub(super) const MATVEC_T: &str = "glassbox_matvec_t";
pub(super) const OUTER: &str = "glassbox_outer";

/// The number of pointer-sized parameters of a symbol that takes no `f64`s (and returns
/// nothing): the slice and dense symbols.
pub(super) fn pointer_arity(symbol: &str) -> Option<usize> {
    match symbol {
        TANH_N => Some(3),
        MATVEC | MATVEC_T | OUTER => Some(5),
        _ => None,
    }
}

/// The slice symbol for `op` applied to a tensor of `len` elements, if it has one.
pub(super) fn slice_symbol(op: Unary, len: usize) -> Option<&'static str> {
    match op {
        Unary::Tanh if len > 1 => Some(TANH_N),
        _ => None,
    }
}

/// Every runtime symbol with its address and arity.
pub(super) fn symbols() -> Vec<(&'static str, *const u8, usize)> {
    let mut all: Vec<(&'static str, *const u8, usize)> =
        unary_table().into_iter().map(|(n, p)| (n, p, 1)).collect();
    all.push((
        POW,
        glassbox_pow as extern "C" fn(f64, f64) -> f64 as *const u8,
        2,
    ));
    all
}
