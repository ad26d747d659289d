//! Runtime symbols the compiled kernels import: the math functions Cranelift has no
//! instruction for. Each wraps the interpreter's own scalar semantics ([`Unary::apply`],
//! [`Binary::apply`]), so a JIT kernel and `ir::eval` agree bit for bit by construction.
//!
//! Invariant: every symbol here is a plain `extern "C"` function of `f64`s with no side effects;
//! `kernel.rs` registers them with `JITBuilder::symbol` under the names `codegen.rs` calls.

#![deny(unsafe_code)]

use crate::ir::{Binary, Unary};

macro_rules! unary_symbols {
    ($($fn_name:ident => $op:ident),* $(,)?) => {
        $(extern "C" fn $fn_name(x: f64) -> f64 {
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
extern "C" fn glassbox_pow(a: f64, b: f64) -> f64 {
    Binary::Pow.apply(a, b)
}

pub(super) const POW: &str = "glassbox_pow";

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
