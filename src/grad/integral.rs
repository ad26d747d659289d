//! Integral regularizers `∫ r(t, u, p) dt` (RNODE's kinetic energy and Jacobian norm,
//! TayNODE's `‖dᴷu/dtᴷ‖²`) as a quadrature state of the solve.
//!
//! The augmented system `d/dt [u, q] = [f(t, u, p), r(t, u, p)]`, integrated by the same
//! Runge–Kutta method on the same accepted steps, gives `q_{n+1} = q_n + h Σ_i b_i r(t_n + c_i h,
//! g_i)`: `q` never feeds back into `f`, so its update is a quadrature over the stage
//! arguments `g_i` the solver already formed. We compute it from the kept stages instead of
//! widening the state, which makes one choice explicit: **the error control does not see `q`**
//! (RNODE's torchdiffeq code and TayNODE's JAX code put it in the error norm). The steps are
//! then those of the model alone, so prediction (which has no `q`) takes the same steps as
//! training, and `R_E`, `R_S` measure the model's field, not the regularizer's.
//!
//! The adjoint of the augmented system has `λ_q ≡ w` (the term's weight) on every step, so
//! each stage adds `w h b_i ∇_{u,p} r(t_i, g_i)` to the stage argument's and the parameters'
//! cotangents ([`super::adjoint_with`]).
//!
//! Invariant: [`integral`] forms `g_i` with the adjoint's own `combine`, so the value and the
//! gradient differentiate the same numbers.

use crate::diag::Diag;
use crate::ir::lower::PROBE;
use crate::ir::{self, Function};
use crate::jit::{self, Kernel};
use crate::solve::{Solution, SolveError, Tableau};

/// A scalar integrand with its gradient, evaluated at stage arguments.
pub trait Integrand {
    /// `r(t, u)`.
    fn value(&mut self, t: f64, u: &[f64]) -> f64;
    /// Writes `w ∂r/∂u` into `out_u` and `w ∂r/∂p` into `out_p`.
    fn vjp(&mut self, t: f64, u: &[f64], w: f64, out_u: &mut [f64], out_p: &mut [f64]);
}

/// `Σ_k w_k r_k(t, u, p)`: JIT kernels of several scalar functions of the model's arguments
/// `(t, u, p[, x])` and of their VJPs, with weights that may change between solves. A term
/// may also read the probe `ε` (a trailing argument [`PROBE`], as long as `u`: Hutchinson's
/// `‖(∂f/∂u) ε‖²`), held fixed until [`JitIntegrand::set_probe`] replaces it.
pub struct JitIntegrand {
    /// Value and VJP kernels, and whether the term reads the probe.
    terms: Vec<(Kernel, Kernel, bool)>,
    weights: Vec<f64>,
    probe: Vec<f64>,
    /// Buffers by argument position (`t`, `u` are replaced per call).
    bufs: Vec<Vec<f64>>,
    t_arg: usize,
    u_arg: usize,
    p_arg: usize,
    out: Vec<f64>,
    grad: Vec<f64>,
}

impl JitIntegrand {
    /// `functions` share the arguments `t`, `u`, `p` (and `x`), each with one scalar output;
    /// every weight starts at 1.
    pub fn new(functions: &[Function], name: &str, p: &[f64], x: &[f64]) -> Result<Self, Diag> {
        let bad = |msg: String| {
            Diag::error("glassbox::internal", msg)
                .help("this is a bug in glassbox; please report it with the model file")
        };
        let Some(first) = functions.first() else {
            return Err(bad("an integral regularizer without an integrand".into()));
        };
        let (Some(t_arg), Some(u_arg), Some(p_arg)) = (
            first.arg_index("t"),
            first.arg_index("u"),
            first.arg_index("p"),
        ) else {
            return Err(bad("the integrand takes no `t`, `u` or `p`".into()));
        };
        // The model's arguments, without a probe.
        let common = &first.args[..first.args.len() - usize::from(has_probe(first))];
        let n = first.args[u_arg].len;
        let mut terms = Vec::with_capacity(functions.len());
        for (i, f) in functions.iter().enumerate() {
            let probe = has_probe(f);
            let own = &f.args[..f.args.len() - usize::from(probe)];
            if own != common || f.output_len() != 1 || (probe && f.args[own.len()].len != n) {
                return Err(bad(format!(
                    "integrand {i} is not a scalar of the model's arguments"
                )));
            }
            let v = ir::vjp(f, &["u", "p"], "v").map_err(ir::lower::internal)?;
            terms.push((
                jit::compile(f, &format!("{name}.integrand{i}"))?,
                jit::compile(&v, &format!("{name}.integrand{i}.vjp"))?,
                probe,
            ));
        }
        let bufs = common
            .iter()
            .map(|a| match a.name.as_str() {
                "p" => p.to_vec(),
                "x" => x.to_vec(),
                _ => vec![0.0; a.len],
            })
            .collect();
        let np = first.args[p_arg].len;
        Ok(JitIntegrand {
            weights: vec![1.0; terms.len()],
            probe: vec![0.0; n],
            terms,
            bufs,
            t_arg,
            u_arg,
            p_arg,
            out: vec![0.0; 1],
            grad: vec![0.0; n + np],
        })
    }

    /// The same integrand on the same compiled kernels, with buffers of its own: one per
    /// thread of a parallel loop over windows.
    pub fn fork(&self) -> JitIntegrand {
        JitIntegrand {
            terms: (self.terms.iter())
                .map(|(f, v, probe)| (f.duplicate(), v.duplicate(), *probe))
                .collect(),
            weights: self.weights.clone(),
            probe: self.probe.clone(),
            bufs: self.bufs.clone(),
            t_arg: self.t_arg,
            u_arg: self.u_arg,
            p_arg: self.p_arg,
            out: self.out.clone(),
            grad: self.grad.clone(),
        }
    }

    pub fn terms(&self) -> usize {
        self.terms.len()
    }

    /// One weight per term (extra entries are ignored, missing ones count 0).
    pub fn set_weights(&mut self, w: &[f64]) {
        for (i, dst) in self.weights.iter_mut().enumerate() {
            *dst = w.get(i).copied().unwrap_or(0.0);
        }
    }

    /// Whether a term reads the probe `ε`.
    pub fn has_probe(&self) -> bool {
        self.terms.iter().any(|t| t.2)
    }

    /// Replaces the probe `ε` (as long as the state; other lengths are ignored).
    pub fn set_probe(&mut self, eps: &[f64]) {
        if self.probe.len() == eps.len() {
            self.probe.copy_from_slice(eps);
        }
    }

    pub fn set_params(&mut self, p: &[f64]) {
        let dst = &mut self.bufs[self.p_arg];
        if dst.len() == p.len() {
            dst.copy_from_slice(p);
        }
    }

    fn args<'a>(
        &'a self,
        t: &'a [f64],
        u: &'a [f64],
        probe: bool,
        v: Option<&'a [f64]>,
    ) -> Vec<&'a [f64]> {
        let mut refs: Vec<&[f64]> = self
            .bufs
            .iter()
            .enumerate()
            .map(|(i, b)| match i {
                _ if i == self.t_arg => t,
                _ if i == self.u_arg => u,
                _ => b.as_slice(),
            })
            .collect();
        if probe {
            refs.push(&self.probe);
        }
        refs.extend(v);
        refs
    }
}

impl Integrand for JitIntegrand {
    fn value(&mut self, t: f64, u: &[f64]) -> f64 {
        let tt = [t];
        let mut out = std::mem::take(&mut self.out);
        let mut sum = 0.0;
        for (k, (f, _, probe)) in self.terms.iter().enumerate() {
            let w = self.weights[k];
            if w == 0.0 {
                continue;
            }
            sum += match f.call(&self.args(&tt, u, *probe, None), &mut out) {
                Ok(()) => w * out[0],
                Err(_) => f64::NAN,
            };
        }
        self.out = out;
        sum
    }

    fn vjp(&mut self, t: f64, u: &[f64], w: f64, out_u: &mut [f64], out_p: &mut [f64]) {
        out_u.fill(0.0);
        out_p.fill(0.0);
        let tt = [t];
        let n = out_u.len();
        let mut grad = std::mem::take(&mut self.grad);
        for (k, (_, vjp, probe)) in self.terms.iter().enumerate() {
            let v = [w * self.weights[k]];
            if v[0] == 0.0 {
                continue;
            }
            let ok = vjp
                .call(&self.args(&tt, u, *probe, Some(&v)), &mut grad)
                .is_ok();
            if !ok || grad.len() != n + out_p.len() {
                out_u.fill(f64::NAN);
                out_p.fill(f64::NAN);
                break;
            }
            for (o, g) in out_u.iter_mut().zip(&grad[..n]) {
                *o += g;
            }
            for (o, g) in out_p.iter_mut().zip(&grad[n..]) {
                *o += g;
            }
        }
        self.grad = grad;
    }
}

fn has_probe(f: &Function) -> bool {
    f.args.last().is_some_and(|a| a.name == PROBE)
}

/// A Rademacher vector (±1, each with probability ½) of length `n`: Hutchinson's probe, for
/// which `E[‖Jε‖²] = ‖J‖_F²` with variance `2 Σ_{i≠j} (JᵀJ)_ij²`.
pub fn rademacher<R: rand::Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect()
}

/// `∫ r dt` over `sol` by the solve's own quadrature: `Σ_j h_j Σ_i b_i r(t_j + c_i h_j, g_ij)`
/// (the last component of the augmented solve, see the module docs). Needs the stages of
/// every step (`keep_stages`, no `checkpoint_every`).
pub fn integral<R: Integrand + ?Sized>(
    tab: &Tableau,
    r: &mut R,
    sol: &Solution,
) -> Result<f64, SolveError> {
    let n = sol.dim;
    let mut g = vec![0.0; n];
    let mut total = 0.0;
    for (j, st) in sol.steps.iter().enumerate() {
        let Some(stages) = st.stages.as_ref().filter(|s| s.k.len() == tab.stages() * n) else {
            return Err(SolveError::InvalidOption(format!(
                "step {j} kept no stages; integral regularizers need `keep_stages` without checkpoints"
            )));
        };
        let mut step = 0.0;
        for (i, bi) in tab.b.iter().enumerate() {
            if *bi != 0.0 {
                super::adjoint::combine(&stages.u0, st.h, tab.a[i], &stages.k, n, &mut g);
                step += bi * r.value(st.t + tab.c[i] * st.h, &g);
            }
        }
        total += st.h * step;
    }
    Ok(total)
}
