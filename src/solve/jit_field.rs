//! The vector field of a checked model, compiled with the JIT: what `glassbox solve` integrates.
//!
//! [`JitField`] lowers the model's field (`ir::lower`), compiles it (`jit::compile`) and holds
//! the parameters (the model's initial values unless given) and the per-sample inputs. The
//! Jacobian `∂f/∂u` (`ir::jacobian`) and `∂f/∂t` are compiled on first use, so explicit solves
//! never pay for them; a Jacobian that fails to compile leaves the solver its finite-difference
//! fallback.
//!
//! Every kernel is held as a bound call ([`jit::Bound`]): its buffers are sized when it is
//! compiled and `p`, `x` written once, so an evaluation writes `t` into its buffer and runs the
//! code on the solver's `u` and result buffers in place (two length checks, no copies).
//!
//! Invariant: the bound buffers have the lengths of the field's arguments and output (checked
//! once in the constructor), so `eval` cannot fail afterwards; should a length still disagree
//! (a solver passing a state of the wrong size) it writes NaN, which the solver reports.

use std::time::Duration;

use crate::diag::Diag;
use crate::ir::{self, ArgSpec, Function, lower};
use crate::jit::{self, Bound, Kernel};
use crate::sema::Model;

use super::field::VectorField;

pub struct JitField {
    /// The IR the derivatives are compiled from; `None` for kernels linked ahead of time
    /// (`JitField::linked`), which come with theirs.
    field: Option<Function>,
    name: String,
    /// The field `f(t, u, p, x)`, bound with `p` and `x` set.
    kernel: Bound,
    /// `(∂f/∂u, ∂f/∂t)` once compiled, bound like `kernel`; `Err` after a failed compile.
    derivs: Option<Result<(Bound, Bound), Diag>>,
    dim: usize,
    /// Positions of `t` and `u` among the arguments (the same in all three functions, which
    /// `ir::jacobian` derives with the field's argument list).
    t_arg: usize,
    u_arg: usize,
    p_arg: Option<usize>,
    compile_time: Duration,
}

/// The model's parameters as one flat vector (`p`), from their initial values.
pub fn param_values(model: &Model) -> Vec<f64> {
    let mut p = vec![0.0; model.param_size];
    for q in &model.params {
        if let Some(dst) = p.get_mut(q.offset..q.offset + q.init.len()) {
            dst.copy_from_slice(&q.init);
        }
    }
    p
}

/// The model's initial state `u0(p, x)` at `t0`, by the interpreter.
pub fn initial_state(model: &Model, p: &[f64], x: &[f64], t0: f64) -> Result<Vec<f64>, Diag> {
    let f = lower::lower_init(model)?;
    let bufs = arg_buffers(&f.args, p, x, "initial state")?;
    let t = [t0];
    let u = vec![0.0; model.state_size];
    let refs: Vec<&[f64]> = f
        .args
        .iter()
        .zip(&bufs)
        .map(|(spec, b)| match spec.name.as_str() {
            "t" => &t[..],
            "u" => &u[..],
            _ => b.as_slice(),
        })
        .collect();
    ir::eval(&f, &refs, 1).map_err(lower::internal)
}

/// Buffers for `p` and `x` (empty for `t`, `u`), checked against the function's arguments.
fn arg_buffers(args: &[ArgSpec], p: &[f64], x: &[f64], what: &str) -> Result<Vec<Vec<f64>>, Diag> {
    let mut out = Vec::with_capacity(args.len());
    for spec in args {
        let buf = match spec.name.as_str() {
            "t" | "u" => Vec::new(),
            "p" => p.to_vec(),
            "x" => x.to_vec(),
            other => {
                return Err(internal(format!(
                    "the {what} takes an unexpected argument `{other}`"
                )));
            }
        };
        if matches!(spec.name.as_str(), "p" | "x") && buf.len() != spec.len {
            return Err(Diag::error(
                "glassbox::input_size",
                format!(
                    "the {what} needs {} values for `{}`, got {}",
                    spec.len,
                    spec.name,
                    buf.len()
                ),
            )
            .help("give one value per declared input element (parameters come from the model)"));
        }
        out.push(buf);
    }
    Ok(out)
}

fn internal(msg: String) -> Diag {
    Diag::error("glassbox::internal", msg)
        .help("this is a bug in glassbox; please report it with the model file")
}

impl JitField {
    /// Compiles the model's vector field with its parameters' initial values and inputs `x`
    /// (empty for a model without `input`s).
    pub fn new(model: &Model, x: &[f64]) -> Result<JitField, Diag> {
        JitField::with_params(model, &param_values(model), x)
    }

    pub fn with_params(model: &Model, p: &[f64], x: &[f64]) -> Result<JitField, Diag> {
        let field = lower::lower(model, lower::Part::Field)?;
        let fixed = arg_buffers(&field.args, p, x, "vector field")?;
        let (Some(t_arg), Some(u_arg)) = (field.arg_index("t"), field.arg_index("u")) else {
            return Err(internal("the vector field takes no `t` or no `u`".into()));
        };
        let dim = model.state_size;
        if field.output_len() != dim {
            return Err(internal(format!(
                "the vector field returns {} values for {dim} states",
                field.output_len()
            )));
        }
        let kernel = jit::compile(&field, &format!("{}.field", model.name))?;
        let compile_time = kernel.compile_time();
        let bound = bind_fixed(&kernel, &fixed)?;
        Ok(JitField {
            p_arg: field.arg_index("p"),
            field: Some(field),
            name: model.name.clone(),
            kernel: bound,
            derivs: None,
            dim,
            t_arg,
            u_arg,
            compile_time,
        })
    }

    /// The field of kernels compiled ahead of time (a standalone binary's), with parameters
    /// `p` and inputs `x`; `derivs` are `(∂f/∂u, ∂f/∂t)` when linked (without them implicit
    /// methods use finite differences).
    pub fn linked(
        field: &Kernel,
        derivs: Option<(&Kernel, &Kernel)>,
        p: &[f64],
        x: &[f64],
    ) -> Result<JitField, Diag> {
        let arg = |name: &str| field.args().iter().position(|a| a.name == name);
        let (Some(t_arg), Some(u_arg)) = (arg("t"), arg("u")) else {
            return Err(internal("the vector field takes no `t` or no `u`".into()));
        };
        let fixed = arg_buffers(field.args(), p, x, "vector field")?;
        let bound = bind_fixed(field, &fixed)?;
        let derivs = match derivs {
            Some((j, d)) => Ok((bind_fixed(j, &fixed)?, bind_fixed(d, &fixed)?)),
            None => Err(internal(format!(
                "`{}` has no linked Jacobian",
                field.name()
            ))),
        };
        Ok(JitField {
            field: None,
            name: field.name().to_string(),
            kernel: bound,
            derivs: Some(derivs),
            dim: field.args()[u_arg].len,
            t_arg,
            u_arg,
            p_arg: arg("p"),
            compile_time: Duration::ZERO,
        })
    }

    /// Compiles `∂f/∂u` and `∂f/∂t` now (they are otherwise compiled on first use), so their
    /// compile time is not counted as solve time. A Jacobian past the dense limit
    /// (`ir::MAX_JACOBIAN_ENTRIES`) is never built: that is not an error here, since the solve
    /// refuses an implicit method for such a field itself and `auto` stays explicit.
    pub fn prepare_jacobian(&mut self) -> Result<(), Diag> {
        if !ir::jacobian_fits(self.dim, self.dim) {
            return Ok(());
        }
        if self.derivs.is_none() {
            let r = self.compile_derivs().map(|(j, d, took)| {
                self.compile_time += took;
                (j, d)
            });
            self.derivs = Some(r);
        }
        match &self.derivs {
            Some(Err(d)) => Err(d.clone()),
            _ => Ok(()),
        }
    }

    /// The two bound kernels and their compile time.
    fn compile_derivs(&self) -> Result<(Bound, Bound, Duration), Diag> {
        let Some(field) = &self.field else {
            return Err(internal(format!(
                "`{}` has no IR to differentiate",
                self.name
            )));
        };
        let j = ir::jacobian(field, "u").map_err(lower::internal)?;
        let dt = ir::jacobian(field, "t").map_err(lower::internal)?;
        let name = &self.name;
        let kj = jit::compile(&j, &format!("{name}.jacobian"))?;
        let kd = jit::compile(&dt, &format!("{name}.dfdt"))?;
        // The fixed arguments as the field holds them (`t` and `u` are set per call).
        let fixed: Vec<Vec<f64>> = (0..self.kernel.arg_count())
            .map(|i| self.kernel.arg(i).map_or_else(Vec::new, <[f64]>::to_vec))
            .collect();
        Ok((
            bind_fixed(&kj, &fixed)?,
            bind_fixed(&kd, &fixed)?,
            kj.compile_time() + kd.compile_time(),
        ))
    }

    /// Compile time of every kernel compiled so far.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// The parameter vector `p` the field uses.
    pub fn params(&self) -> &[f64] {
        self.p_arg.and_then(|i| self.kernel.arg(i)).unwrap_or(&[])
    }

    /// Replaces the parameters in the field and its derivatives (no recompilation): a caller
    /// that solves one model many times (the Python package) compiles once. `p` must be as
    /// long as before.
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Diag> {
        let Some(i) = self.p_arg else {
            return if p.is_empty() {
                Ok(())
            } else {
                Err(internal(format!("`{}` takes no parameters", self.name)))
            };
        };
        self.kernel.set_arg(i, p)?;
        if let Some(Ok((j, d))) = &mut self.derivs {
            j.set_arg(i, p)?;
            d.set_arg(i, p)?;
        }
        Ok(())
    }
}

/// Binds `kernel` with the fixed arguments `p`, `x` from `fixed` (by position; `t` and `u`
/// stay zero until a call sets them).
fn bind_fixed(kernel: &Kernel, fixed: &[Vec<f64>]) -> Result<Bound, Diag> {
    let mut bound = kernel.bind();
    for (i, spec) in kernel.args().iter().enumerate() {
        if matches!(spec.name.as_str(), "t" | "u") {
            continue;
        }
        let values = fixed.get(i).map_or(&[][..], Vec::as_slice);
        bound.set_arg(i, values)?;
    }
    Ok(bound)
}

/// One evaluation on a bound kernel: `t` into its buffer, `u` read and the result written in
/// place (NaN if a length disagrees, which the constructor's checks rule out for states of the
/// field's dimension).
fn run(kernel: &mut Bound, (t_arg, u_arg): (usize, usize), t: f64, u: &[f64], out: &mut [f64]) {
    if let Some(slot) = kernel.arg_mut(t_arg).and_then(|a| a.first_mut()) {
        *slot = t;
    }
    if kernel.run_with(u_arg, u, out).is_err() {
        out.fill(f64::NAN);
    }
}

impl VectorField for JitField {
    fn dim(&self) -> usize {
        self.dim
    }

    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        run(&mut self.kernel, (self.t_arg, self.u_arg), t, u, du);
    }

    fn jacobian(&mut self, t: f64, u: &[f64], jac: &mut [f64]) -> bool {
        if self.prepare_jacobian().is_err() {
            return false;
        }
        match &mut self.derivs {
            Some(Ok((j, _))) => {
                run(j, (self.t_arg, self.u_arg), t, u, jac);
                true
            }
            _ => false,
        }
    }

    fn time_derivative(&mut self, t: f64, u: &[f64], dfdt: &mut [f64]) -> bool {
        if self.prepare_jacobian().is_err() {
            return false;
        }
        match &mut self.derivs {
            Some(Ok((_, d))) => {
                run(d, (self.t_arg, self.u_arg), t, u, dfdt);
                true
            }
            _ => false,
        }
    }
}
