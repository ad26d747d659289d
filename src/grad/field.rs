//! What the discrete adjoint needs from a vector field: the field itself (to recompute stages)
//! and its vector–Jacobian products `vᵀ∂f/∂u`, `vᵀ∂f/∂p` at a point.
//!
//! [`VjpField`] is implemented over closures ([`FnVjpField`], for tests and hand-written
//! fields) and over JIT kernels of a lowered model and of `ir::vjp(&field, &["u", "p"], "v")`
//! ([`JitVjpField`]), whose parameters can be replaced without recompiling (finite differences,
//! training).
//!
//! Invariant: `vjp` overwrites both outputs (the adjoint accumulates); like `eval`, it never
//! fails once constructed: a kernel call that cannot run writes NaN.

use super::activations::Activations;
use crate::diag::Diag;
use crate::ir::{self, Function, lower};
use crate::jit::{self, Bound};
use crate::sema::Model;
use crate::solve::VectorField;

pub trait VjpField: VectorField {
    /// Length of the parameter vector `p`.
    fn n_params(&self) -> usize;
    /// Writes `vᵀ ∂f/∂u` into `out_u` and `vᵀ ∂f/∂p` into `out_p`, at `(t, u)`.
    fn vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]);

    /// [`vjp`](Self::vjp) into one buffer `out = [vᵀ ∂f/∂u, vᵀ ∂f/∂p]` (`dim + n_params`
    /// values): the adjoint keeps several such outputs and sums their `∂p` parts in one pass,
    /// and a field may write them there without a copy.
    fn vjp_flat(&mut self, t: f64, (u, v): (&[f64], &[f64]), out: &mut [f64]) {
        let (out_u, out_p) = out.split_at_mut(self.dim().min(out.len()));
        self.vjp(t, u, v, out_u, out_p);
    }

    /// Whether [`vjp_add`](Self::vjp_add) adds in place, cheaper than [`vjp_flat`](Self::vjp_flat)
    /// and adding afterwards: the adjoint then keeps its `dp` in the output's `∂p` part.
    fn adds_in_place(&self) -> bool {
        false
    }

    /// [`vjp_flat`](Self::vjp_flat), except that `vᵀ ∂f/∂p` is added into `out[dim..]`
    /// (`out[dim + m] + (vᵀ ∂f/∂p)_m`, bit for bit what adding afterwards gives).
    fn vjp_add(&mut self, t: f64, uv: (&[f64], &[f64]), out: &mut [f64]) {
        let mut fresh = vec![0.0; out.len()];
        self.vjp_flat(t, uv, &mut fresh);
        add_fresh(self.dim(), &fresh, out);
    }
}

/// `out[..dim] = fresh[..dim]`, `out[dim..] += fresh[dim..]`.
fn add_fresh(dim: usize, fresh: &[f64], out: &mut [f64]) {
    let (u, p) = out.split_at_mut(dim.min(out.len()));
    u.copy_from_slice(&fresh[..u.len()]);
    add_into(p, &fresh[u.len()..]);
}

/// `acc += x`, element by element.
pub(crate) fn add_into(acc: &mut [f64], x: &[f64]) {
    for (a, x) in acc.iter_mut().zip(x) {
        *a += x;
    }
}

impl<V: VjpField + ?Sized> VjpField for &mut V {
    fn n_params(&self) -> usize {
        (**self).n_params()
    }
    fn vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]) {
        (**self).vjp(t, u, v, out_u, out_p)
    }
    fn vjp_flat(&mut self, t: f64, uv: (&[f64], &[f64]), out: &mut [f64]) {
        (**self).vjp_flat(t, uv, out)
    }
    fn adds_in_place(&self) -> bool {
        (**self).adds_in_place()
    }
    fn vjp_add(&mut self, t: f64, uv: (&[f64], &[f64]), out: &mut [f64]) {
        (**self).vjp_add(t, uv, out)
    }
}

/// A field `|t, u, du|` with its VJP `|t, u, v, out_u, out_p|`.
pub struct FnVjpField<F, G> {
    dim: usize,
    n_params: usize,
    f: F,
    vjp: G,
}

/// Wraps two closures (the field and its VJP) as a [`VjpField`].
pub fn vjp_from_fn<F, G>(dim: usize, n_params: usize, f: F, vjp: G) -> FnVjpField<F, G>
where
    F: FnMut(f64, &[f64], &mut [f64]),
    G: FnMut(f64, &[f64], &[f64], &mut [f64], &mut [f64]),
{
    FnVjpField {
        dim,
        n_params,
        f,
        vjp,
    }
}

impl<F, G> VectorField for FnVjpField<F, G>
where
    F: FnMut(f64, &[f64], &mut [f64]),
    G: FnMut(f64, &[f64], &[f64], &mut [f64], &mut [f64]),
{
    fn dim(&self) -> usize {
        self.dim
    }
    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        (self.f)(t, u, du)
    }
}

impl<F, G> VjpField for FnVjpField<F, G>
where
    F: FnMut(f64, &[f64], &mut [f64]),
    G: FnMut(f64, &[f64], &[f64], &mut [f64], &mut [f64]),
{
    fn n_params(&self) -> usize {
        self.n_params
    }
    fn vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]) {
        (self.vjp)(t, u, v, out_u, out_p)
    }
}

/// A lowered field `f(t, u, p[, x])` and its VJP, both compiled and held as bound calls
/// ([`jit::Bound`]: `p` and `x` written once, each call writes `t` (and the cotangent) into
/// its buffer and runs on the caller's `u` in place, no per-call argument list or checks).
pub struct JitVjpField {
    field: Bound,
    vjp: Bound,
    dim: usize,
    t_arg: usize,
    u_arg: usize,
    p_arg: usize,
    x_arg: Option<usize>,
    /// The VJP's cotangent argument (after the field's arguments).
    v_arg: usize,
    /// The VJP kernel's flat output `[vᵀ∂f/∂u, vᵀ∂f/∂p]` for [`VjpField::vjp`].
    out: Vec<f64>,
    /// The field and its VJP, kept for [`JitVjpField::share_activations`].
    source: Option<(Function, Function)>,
    shared: Option<Activations>,
}

impl JitVjpField {
    /// The model's vector field with parameters `p` and per-sample inputs `x`.
    pub fn new(model: &Model, p: &[f64], x: &[f64]) -> Result<JitVjpField, Diag> {
        let f = lower::lower(model, lower::Part::Field)?;
        JitVjpField::from_function(&f, &model.name, p, x)
    }

    /// Any function with arguments `t` (scalar), `u`, `p` and optionally `x`, returning as many
    /// values as `u` has.
    pub fn from_function(
        f: &Function,
        name: &str,
        p: &[f64],
        x: &[f64],
    ) -> Result<JitVjpField, Diag> {
        let bad = |msg: String| {
            Diag::error("glassbox::internal", msg)
                .help("this is a bug in glassbox; please report it with the model file")
        };
        let (Some(t_arg), Some(u_arg), Some(p_arg)) =
            (f.arg_index("t"), f.arg_index("u"), f.arg_index("p"))
        else {
            return Err(bad("the vector field takes no `t`, `u` or `p`".into()));
        };
        let dim = f.args[u_arg].len;
        if f.output_len() != dim || f.args[t_arg].len != 1 {
            return Err(bad(format!(
                "the vector field returns {} values for {dim} states",
                f.output_len()
            )));
        }
        let v = ir::vjp(f, &["u", "p"], "v").map_err(lower::internal)?;
        let field_k = jit::compile(f, &format!("{name}.field"))?;
        let vjp_k = jit::compile(&v, &format!("{name}.vjp"))?;
        let (mut field, mut vjp) = (field_k.bind(), vjp_k.bind());
        for (i, spec) in f.args.iter().enumerate() {
            let values = match spec.name.as_str() {
                "t" | "u" => continue,
                "p" => p,
                "x" => x,
                other => return Err(bad(format!("unexpected argument `{other}`"))),
            };
            if values.len() != spec.len {
                return Err(Diag::error(
                    "glassbox::input_size",
                    format!(
                        "the vector field needs {} values for `{}`, got {}",
                        spec.len,
                        spec.name,
                        values.len()
                    ),
                )
                .help("give one value per declared element (parameters come from the model)"));
            }
            field.set_arg(i, values)?;
            vjp.set_arg(i, values)?;
        }
        let out = vec![0.0; vjp_k.output_len()];
        Ok(JitVjpField {
            field,
            vjp,
            dim,
            t_arg,
            u_arg,
            p_arg,
            x_arg: f.arg_index("x"),
            v_arg: f.args.len(),
            out,
            source: Some((f.clone(), v)),
            shared: None,
        })
    }

    /// Another field on the same compiled kernels, with buffers of its own and the current
    /// parameters and inputs (sharing activations if this one does, with no records yet):
    /// one per thread of a parallel loop over samples, windows or paths. It computes exactly
    /// what this one computes.
    pub fn fork(&self) -> JitVjpField {
        JitVjpField {
            field: self.field.duplicate(),
            vjp: self.vjp.duplicate(),
            dim: self.dim,
            t_arg: self.t_arg,
            u_arg: self.u_arg,
            p_arg: self.p_arg,
            x_arg: self.x_arg,
            v_arg: self.v_arg,
            out: vec![0.0; self.out.len()],
            source: self.source.clone(),
            shared: self.shared.as_ref().map(Activations::fork),
        }
    }

    /// From now on, records the `tanh` activations of every evaluation and lets a VJP at a
    /// recorded point read them instead of recomputing them (module `activations`): for
    /// training, where the adjoint's VJPs sit at the forward solve's stages. Same results bit for
    /// bit; memory grows by the activations per evaluation until the parameters or inputs
    /// change. Returns whether the field has activations to share.
    pub fn share_activations(&mut self) -> Result<bool, Diag> {
        if let Some((f, v)) = self.source.take() {
            self.shared = Activations::compile(&f, &v, self.field.name())?;
            if let Some(a) = &mut self.shared {
                // The current parameters and inputs, as the plain kernels hold them.
                for i in std::iter::once(self.p_arg).chain(self.x_arg) {
                    a.set_arg(i, self.field.arg(i).unwrap_or(&[]))?;
                }
            }
        }
        Ok(self.shared.is_some())
    }

    /// Evaluations whose activations were recorded, and VJPs that reused them, since the
    /// parameters or inputs last changed (`(0, 0)` without sharing).
    pub fn shared_activations(&self) -> (usize, usize) {
        self.shared.as_ref().map_or((0, 0), Activations::counts)
    }

    pub fn params(&self) -> &[f64] {
        self.field.arg(self.p_arg).unwrap_or(&[])
    }

    /// Replaces the parameters (no recompilation); `p` must be as long as before.
    pub fn set_params(&mut self, p: &[f64]) -> Result<(), Diag> {
        let len = self.params().len();
        if len != p.len() {
            return Err(Diag::error(
                "glassbox::input_size",
                format!("the field has {len} parameters, got {}", p.len()),
            )
            .help("pass the full flat parameter vector"));
        }
        if let Some(a) = &mut self.shared {
            a.set_arg(self.p_arg, p)?;
        }
        self.field.set_arg(self.p_arg, p)?;
        self.vjp.set_arg(self.p_arg, p)
    }

    /// Replaces the per-sample inputs `x` (one sample after another in a classifier's batch);
    /// a field without inputs takes an empty `x`.
    pub fn set_inputs(&mut self, x: &[f64]) -> Result<(), Diag> {
        match self.x_arg {
            Some(i) => {
                if let Some(a) = &mut self.shared {
                    a.set_arg(i, x)?;
                }
                self.field.set_arg(i, x)?;
                self.vjp.set_arg(i, x)
            }
            None if x.is_empty() => Ok(()),
            None => Err(Diag::error(
                "glassbox::input_size",
                format!("the field has no inputs, got {}", x.len()),
            )
            .help("give one value per declared input element")),
        }
    }
}

/// Writes `t` into a bound kernel's time argument.
pub(super) fn set_t(k: &mut Bound, t_arg: usize, t: f64) {
    if let Some(slot) = k.arg_mut(t_arg).and_then(|a| a.first_mut()) {
        *slot = t;
    }
}

impl VectorField for JitVjpField {
    fn dim(&self) -> usize {
        self.dim
    }

    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        if let Some(a) = &mut self.shared {
            if !a.eval((self.t_arg, self.u_arg), t, u, du) {
                du.fill(f64::NAN);
            }
            return;
        }
        set_t(&mut self.field, self.t_arg, t);
        if self.field.run_with(self.u_arg, u, du).is_err() {
            du.fill(f64::NAN);
        }
    }
}

impl VjpField for JitVjpField {
    fn n_params(&self) -> usize {
        self.params().len()
    }

    fn vjp(&mut self, t: f64, u: &[f64], v: &[f64], out_u: &mut [f64], out_p: &mut [f64]) {
        let mut out = std::mem::take(&mut self.out);
        let n = self.dim;
        if self.run_vjp(t, (u, v), &mut out) && out.len() == n + out_p.len() && out_u.len() == n {
            out_u.copy_from_slice(&out[..n]);
            out_p.copy_from_slice(&out[n..]);
        } else {
            out_u.fill(f64::NAN);
            out_p.fill(f64::NAN);
        }
        self.out = out;
    }

    fn vjp_flat(&mut self, t: f64, uv: (&[f64], &[f64]), out: &mut [f64]) {
        if !self.run_vjp(t, uv, out) {
            out.fill(f64::NAN);
        }
    }

    /// With shared activations (training): a recorded point runs the sharing VJP compiled to
    /// add its `∂p` (no output copy, no later pass over `dp`); any other point runs the plain
    /// VJP and adds.
    fn adds_in_place(&self) -> bool {
        self.shared.is_some()
    }

    fn vjp_add(&mut self, t: f64, uv: (&[f64], &[f64]), out: &mut [f64]) {
        let args = (self.t_arg, self.u_arg, self.v_arg);
        let shared = (self.shared.as_mut()).and_then(|a| a.vjp_add(args, t, uv, out));
        let ok = shared.unwrap_or_else(|| {
            let mut fresh = std::mem::take(&mut self.out);
            let ok = fresh.len() == out.len() && self.run_vjp(t, uv, &mut fresh);
            if ok {
                add_fresh(self.dim, &fresh, out);
            }
            self.out = fresh;
            ok
        });
        if !ok {
            out.fill(f64::NAN);
        }
    }
}

impl JitVjpField {
    /// Runs the VJP kernel into `out` (`[vᵀ ∂f/∂u, vᵀ ∂f/∂p]`); `false` when it could not
    /// run (a length does not fit).
    fn run_vjp(&mut self, t: f64, (u, v): (&[f64], &[f64]), out: &mut [f64]) -> bool {
        // The sharing VJP when this point's activations were recorded, else the plain one.
        let args = (self.t_arg, self.u_arg, self.v_arg);
        let shared = (self.shared.as_mut()).and_then(|a| a.vjp(args, t, (u, v), out));
        shared.unwrap_or_else(|| {
            let kernel = &mut self.vjp;
            set_t(kernel, self.t_arg, t);
            match kernel.arg_mut(self.v_arg) {
                Some(dst) if dst.len() == v.len() => {
                    dst.copy_from_slice(v);
                    kernel.run_with(self.u_arg, u, out).is_ok()
                }
                _ => false,
            }
        })
    }
}
