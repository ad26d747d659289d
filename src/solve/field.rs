//! The right-hand side a solver integrates: anything that can fill `du = f(t, u)`.
//!
//! Solvers are generic over [`VectorField`], so they are developed and tested on plain Rust
//! closures ([`FnField`]); [`IrField`] runs a lowered model through the reference interpreter
//! (`ir::eval`), and a JIT adapter will implement the same trait.
//!
//! Invariant: `eval` never allocates in the solver's name and never fails; a field that cannot
//! produce a value writes NaN, which the solver reports as `glassbox::non_finite_state`.

use crate::ir::{self, Function};

use super::error::SolveError;

pub trait VectorField {
    /// Length of the state.
    fn dim(&self) -> usize;
    /// Writes `f(t, u)` into `du` (`u.len() == du.len() == self.dim()`).
    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]);
    /// Writes `∂f/∂u` at `(t, u)` into `jac` (row-major `dim × dim`: `jac[i*dim + j] =
    /// ∂f_i/∂u_j`) and returns `true`, or returns `false` when the field has no Jacobian; the
    /// implicit solvers then use forward differences.
    fn jacobian(&mut self, _t: f64, _u: &[f64], _jac: &mut [f64]) -> bool {
        false
    }
    /// Writes `∂f/∂t` at `(t, u)` into `dfdt` and returns `true`, or `false` when not
    /// available (forward differences then).
    fn time_derivative(&mut self, _t: f64, _u: &[f64], _dfdt: &mut [f64]) -> bool {
        false
    }
}

impl<V: VectorField + ?Sized> VectorField for &mut V {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        (**self).eval(t, u, du)
    }
    fn jacobian(&mut self, t: f64, u: &[f64], jac: &mut [f64]) -> bool {
        (**self).jacobian(t, u, jac)
    }
    fn time_derivative(&mut self, t: f64, u: &[f64], dfdt: &mut [f64]) -> bool {
        (**self).time_derivative(t, u, dfdt)
    }
}

/// A closure `|t, u, du|` with its state length.
pub struct FnField<F> {
    dim: usize,
    f: F,
}

/// Wraps a closure as a vector field of the given dimension.
pub fn from_fn<F: FnMut(f64, &[f64], &mut [f64])>(dim: usize, f: F) -> FnField<F> {
    FnField { dim, f }
}

impl<F: FnMut(f64, &[f64], &mut [f64])> VectorField for FnField<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        (self.f)(t, u, du)
    }
}

/// A lowered vector field `f(t, u, p[, x]) -> du` evaluated by the interpreter, with its
/// parameters (and per-sample inputs) fixed.
pub struct IrField<'a> {
    f: &'a Function,
    dim: usize,
    /// Argument buffers in the function's order; `t` and `u` are overwritten on every call.
    args: Vec<Vec<f64>>,
    t_arg: usize,
    u_arg: usize,
}

impl<'a> IrField<'a> {
    /// Checks the function's signature once, so that `eval` cannot fail later: arguments named
    /// `t` (length 1), `u`, `p` and optionally `x`, and an output as long as `u`.
    pub fn new(f: &'a Function, p: &[f64], x: &[f64]) -> Result<IrField<'a>, SolveError> {
        let bad = |why: String| SolveError::Field(why);
        f.validate().map_err(|e| bad(e.to_string()))?;
        let (mut t_arg, mut u_arg) = (None, None);
        let mut args = Vec::with_capacity(f.args.len());
        for (i, spec) in f.args.iter().enumerate() {
            let buf = match spec.name.as_str() {
                "t" => {
                    t_arg = Some(i);
                    vec![0.0; spec.len]
                }
                "u" => {
                    u_arg = Some(i);
                    vec![0.0; spec.len]
                }
                "p" => p.to_vec(),
                "x" => x.to_vec(),
                other => return Err(bad(format!("unexpected argument `{other}`"))),
            };
            if buf.len() != spec.len {
                return Err(bad(format!(
                    "argument `{}` needs {} values, got {}",
                    spec.name,
                    spec.len,
                    buf.len()
                )));
            }
            args.push(buf);
        }
        let (Some(t_arg), Some(u_arg)) = (t_arg, u_arg) else {
            return Err(bad("the function takes no `t` or no `u` argument".into()));
        };
        if f.args[t_arg].len != 1 {
            return Err(bad("argument `t` must be a scalar".into()));
        }
        let dim = f.args[u_arg].len;
        if f.output_len() != dim {
            return Err(bad(format!(
                "the function returns {} values for a state of {dim}",
                f.output_len()
            )));
        }
        Ok(IrField {
            f,
            dim,
            args,
            t_arg,
            u_arg,
        })
    }
}

impl VectorField for IrField<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        self.args[self.t_arg][0] = t;
        self.args[self.u_arg].copy_from_slice(u);
        let refs: Vec<&[f64]> = self.args.iter().map(Vec::as_slice).collect();
        match ir::eval(self.f, &refs, 1) {
            Ok(out) if out.len() == du.len() => du.copy_from_slice(&out),
            // Unreachable after `new`'s checks; NaN makes the solver report it, not panic.
            _ => du.fill(f64::NAN),
        }
    }
}
