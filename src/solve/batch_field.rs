//! The right-hand side of many independent problems of one model at once: [`BatchField`]
//! fills `du = f(t_a, u_a; x_row(a))` for every slot `a` of a dense batch, which is what the
//! batched driver (`batched.rs`) hands it once per stage.
//!
//! [`JitBatchField`] is the model's field compiled as a [`BatchKernel`] (`jit::compile_batch`):
//! the parameters unbatched, `t`, `u` and `x` batched, so every dense layer of the field is one
//! GEMM over the batch. [`batch_from_fn`] wraps a per-row closure (tests, references).
//!
//! Invariant (as [`VectorField`](super::VectorField)): `eval_batch` never fails; a field that
//! cannot answer writes NaN, which the solver reports for the row it belongs to.

use std::time::Duration;

use crate::diag::Diag;
use crate::ir::{Function, lower};
use crate::jit::{self, BatchKernel};
use crate::sema::Model;

pub trait BatchField {
    /// Length of one row's state.
    fn dim(&self) -> usize;
    /// For every slot `a` of the batch (`rows.len()` of them): `du[a·n..(a+1)·n] =
    /// f(t[a], u[a·n..(a+1)·n])` with the inputs of problem `rows[a]`.
    fn eval_batch(&mut self, rows: &[usize], t: &[f64], u: &[f64], du: &mut [f64]);
    /// Whether a batch is evaluated as matrix products (GEMMs), so that solving rows together
    /// pays; a field evaluated row by row says `false`.
    fn uses_gemm(&self) -> bool {
        false
    }
}

impl<B: BatchField + ?Sized> BatchField for &mut B {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn eval_batch(&mut self, rows: &[usize], t: &[f64], u: &[f64], du: &mut [f64]) {
        (**self).eval_batch(rows, t, u, du)
    }
    fn uses_gemm(&self) -> bool {
        (**self).uses_gemm()
    }
}

/// A closure `|row, t, u, du|` evaluated row by row, with its state length.
pub struct FnBatch<F> {
    dim: usize,
    f: F,
}

/// Wraps a per-row closure as a batched field of the given dimension.
pub fn batch_from_fn<F: FnMut(usize, f64, &[f64], &mut [f64])>(dim: usize, f: F) -> FnBatch<F> {
    FnBatch { dim, f }
}

impl<F: FnMut(usize, f64, &[f64], &mut [f64])> BatchField for FnBatch<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn eval_batch(&mut self, rows: &[usize], t: &[f64], u: &[f64], du: &mut [f64]) {
        let n = self.dim;
        for (a, (&row, &ta)) in rows.iter().zip(t).enumerate() {
            (self.f)(row, ta, &u[a * n..(a + 1) * n], &mut du[a * n..(a + 1) * n]);
        }
    }
}

/// A model's vector field `f(t, u, p[, x])` as one batched kernel, its parameters set once
/// and every problem's inputs `x` held (row `r` at `[r·len_x, (r+1)·len_x)`).
pub struct JitBatchField {
    kernel: BatchKernel,
    dim: usize,
    /// Each argument's part in a call, in the kernel's order.
    roles: Vec<Role>,
    p: Vec<f64>,
    x_len: usize,
    /// Every problem's inputs, row-major.
    inputs: Vec<f64>,
    /// The inputs of the rows of the latest call, gathered (the batch changes only when rows
    /// finish, so this is copied rarely).
    gathered: Vec<f64>,
    gathered_rows: Vec<usize>,
    /// The field's VJP `[vᵀ∂f/∂u, Σ_b vᵀ∂f/∂p]` as a batched kernel, its parameter gradient
    /// summed over the batch (one GEMM `Vᵀ·X` per dense layer), for the batched adjoint
    /// (`grad::batched`); `None` until [`JitBatchField::with_vjp`].
    vjp: Option<BatchKernel>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    T,
    U,
    P,
    X,
    /// A tangent, one per row: the argument of a JVP (`ir::jvp`), given by
    /// [`JitBatchField::eval_along`].
    V,
}

impl JitBatchField {
    /// Compiles `model`'s vector field as a batched kernel with parameters `p` (no inputs yet:
    /// [`JitBatchField::set_inputs`]).
    pub fn new(model: &Model, p: &[f64]) -> Result<JitBatchField, Diag> {
        let field = lower::lower(model, lower::Part::Field)?;
        JitBatchField::from_function(&field, &format!("{}.field.batch", model.name), p)
    }

    /// Any function with arguments `t` (scalar), `u`, `p` and optionally `x` (and a tangent
    /// `v`, for [`JitBatchField::eval_along`]) returning as many values as `u` has.
    pub fn from_function(f: &Function, name: &str, p: &[f64]) -> Result<JitBatchField, Diag> {
        JitBatchField::from_kernel(jit::compile_batch(f, name, &[])?, p)
    }

    /// A batched kernel of such a function, compiled here or linked into a standalone binary
    /// (`aot`): the same field either way.
    pub fn from_kernel(kernel: BatchKernel, p: &[f64]) -> Result<JitBatchField, Diag> {
        let name = kernel.name();
        let mut roles = Vec::with_capacity(kernel.args().len());
        let (mut dim, mut x_len) = (None, 0);
        for spec in kernel.args() {
            roles.push(match spec.name.as_str() {
                "t" if spec.len == 1 => Role::T,
                "u" => {
                    dim = Some(spec.len);
                    Role::U
                }
                "p" if spec.len == p.len() => Role::P,
                "x" => {
                    x_len = spec.len;
                    Role::X
                }
                "v" => Role::V,
                other => {
                    return Err(internal(format!(
                        "`{name}`: unexpected argument `{other}` ({} values)",
                        spec.len
                    )));
                }
            });
        }
        let Some(dim) = dim.filter(|&d| {
            d == kernel.output_len() && kernel.sums_len() == 0 && roles.contains(&Role::T)
        }) else {
            return Err(internal(format!(
                "`{name}` is not a vector field f(t, u, p[, x]) of its state"
            )));
        };
        Ok(JitBatchField {
            kernel,
            dim,
            roles,
            p: p.to_vec(),
            x_len,
            inputs: Vec::new(),
            gathered: Vec::new(),
            gathered_rows: Vec::new(),
            vjp: None,
        })
    }

    /// [`JitBatchField::new`] with the field's VJP compiled too (for `grad::batch_adjoint`).
    pub fn with_vjp(model: &Model, p: &[f64]) -> Result<JitBatchField, Diag> {
        let field = lower::lower(model, lower::Part::Field)?;
        let mut f =
            JitBatchField::from_function(&field, &format!("{}.field.batch", model.name), p)?;
        f.compile_vjp(&field, &format!("{}.vjp.batch", model.name))?;
        Ok(f)
    }

    /// Compiles the VJP of `f` (the function this field was made from) as a batched kernel.
    pub fn compile_vjp(&mut self, f: &Function, name: &str) -> Result<(), Diag> {
        let v = crate::ir::vjp(f, &["u", "p"], "v").map_err(lower::internal)?;
        let summed: Vec<&str> = v
            .outputs
            .iter()
            .filter(|o| o.name == "vjp_p")
            .map(|o| o.name.as_str())
            .collect();
        let kernel = jit::compile_batch(&v, name, &summed)?;
        if kernel.output_len() != self.dim || kernel.sums_len() != self.p.len() {
            return Err(internal(format!(
                "`{name}` returns {} values per row and {} summed for {} states and {} parameters",
                kernel.output_len(),
                kernel.sums_len(),
                self.dim,
                self.p.len()
            )));
        }
        self.vjp = Some(kernel);
        Ok(())
    }

    /// Length of the parameter vector.
    pub fn n_params(&self) -> usize {
        self.p.len()
    }

    /// For every slot `a`: `out_u[a] = v_aᵀ ∂f/∂u` at `(t[a], u[a])` with row `rows[a]`'s
    /// inputs, and `dp += Σ_a v_aᵀ ∂f/∂p` (inside the kernel: a GEMM per dense layer adding
    /// into `dp`). `false` when there is no VJP kernel or a buffer does not fit (then `out_u`
    /// is NaN and `dp` untouched).
    pub fn vjp_batch_add(
        &mut self,
        rows: &[usize],
        t: &[f64],
        (u, v): (&[f64], &[f64]),
        out_u: &mut [f64],
        dp: &mut [f64],
    ) -> bool {
        if self.vjp.is_none() || !self.gather(rows) {
            out_u.fill(f64::NAN);
            return false;
        }
        // A field with a tangent of its own has no VJP kernel: its `v` is empty.
        let mut args = self.call_args(t, u, &[]);
        args.push(v);
        let ok = self
            .vjp
            .as_ref()
            .is_some_and(|k| k.call_add(&args, rows.len(), out_u, dp).is_ok());
        if !ok {
            out_u.fill(f64::NAN);
        }
        ok
    }

    /// For every slot `a`: `out[a] = f(t[a], u[a], v[a])` with row `rows[a]`'s inputs, for a
    /// function with a tangent argument `v` (a JVP, `ir::jvp`; as long as `u`); for one
    /// without, `v` is not read.
    pub fn eval_along(&mut self, rows: &[usize], t: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        if !self.gather(rows) {
            out.fill(f64::NAN);
            return;
        }
        let args = self.call_args(t, u, v);
        // The lengths are the driver's (`rows.len()` slots of `dim`); should one disagree, the
        // kernel's checks refuse the call and NaN reports it.
        if self.kernel.call(&args, rows.len(), out, &mut []).is_err() {
            out.fill(f64::NAN);
        }
    }

    /// Replaces the parameters (no recompilation); `p` must be as long as before.
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Diag> {
        if p.len() != self.p.len() {
            return Err(Diag::error(
                "glassbox::input_size",
                format!("the field has {} parameters, got {}", self.p.len(), p.len()),
            )
            .help("pass the full flat parameter vector"));
        }
        self.p.copy_from_slice(p);
        Ok(())
    }

    /// Every problem's inputs, row-major `[rows, len_x]` (empty for a field without inputs).
    pub fn set_inputs(&mut self, x: &[f64]) -> Result<(), Diag> {
        if (self.x_len == 0 && !x.is_empty()) || !x.len().is_multiple_of(self.x_len.max(1)) {
            return Err(Diag::error(
                "glassbox::input_size",
                format!(
                    "the field takes {} inputs per row, got {} values",
                    self.x_len,
                    x.len()
                ),
            )
            .help("give one value per declared input element for every row"));
        }
        self.inputs.clear();
        self.inputs.extend_from_slice(x);
        self.gathered_rows.clear();
        Ok(())
    }

    /// Inputs per row (0: the field reads none).
    pub fn input_len(&self) -> usize {
        self.x_len
    }

    pub fn compile_time(&self) -> Duration {
        self.kernel.compile_time()
    }

    /// The kernel's arguments in its order (`gather` done).
    fn call_args<'a>(&'a self, t: &'a [f64], u: &'a [f64], v: &'a [f64]) -> Vec<&'a [f64]> {
        self.roles
            .iter()
            .map(|role| match role {
                Role::T => t,
                Role::U => u,
                Role::P => &self.p[..],
                Role::X => &self.gathered[..],
                Role::V => v,
            })
            .collect()
    }

    /// The inputs of `rows`, gathered into `self.gathered` unless they are the last call's;
    /// `false` when a row has no inputs.
    fn gather(&mut self, rows: &[usize]) -> bool {
        if self.x_len == 0 || self.gathered_rows == rows {
            return true;
        }
        let len = self.x_len;
        self.gathered.clear();
        for &r in rows {
            match self.inputs.get(r * len..(r + 1) * len) {
                Some(x) => self.gathered.extend_from_slice(x),
                None => return false,
            }
        }
        self.gathered_rows.clear();
        self.gathered_rows.extend_from_slice(rows);
        true
    }
}

fn internal(msg: String) -> Diag {
    Diag::error("glassbox::internal", msg)
        .help("this is a bug in glassbox; please report it with the model file")
}

impl BatchField for JitBatchField {
    fn dim(&self) -> usize {
        self.dim
    }

    fn eval_batch(&mut self, rows: &[usize], t: &[f64], u: &[f64], du: &mut [f64]) {
        // A kernel with a tangent is called through `eval_along`; here its empty `v` is
        // refused by the kernel's checks, and NaN reports it.
        self.eval_along(rows, t, u, &[], du)
    }

    fn uses_gemm(&self) -> bool {
        self.kernel.uses_gemm()
    }
}
