//! What an SDE solver integrates: `du = f(t, u) dt + g(t, u) ∘ dW`, with one diffusion value
//! per state component and a [`NoiseMap`] saying which Wiener process drives each component.
//!
//! Diagonal noise (one process per component) and scalar noise (one process for a whole
//! state) are both maps; a model mixing states of either kind is a map too. The diffusion's
//! derivative enters Milstein as `J_g(u)·g(u)` ([`SdeField::diffusion_jvp`]); with a map it
//! is the right correction when `g_i` depends only on the components driven by the same
//! process as component `i` (commutative noise; Kloeden–Platen's "diagonal noise"). Where
//! that fails (a linear layer mixing components under diagonal noise) Milstein and the SRI
//! methods still run, with strong order ½.
//!
//! Invariant: like [`crate::solve::VectorField`], evaluations never fail; a field that
//! cannot answer writes NaN and the solver reports it.

use crate::ir::{self, Function};
use crate::sema::{EquationKind, Model, Noise};
use crate::solve::{IrField, SolveError, VectorField};

/// Which Wiener process drives each state component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseMap {
    processes: usize,
    of: Vec<usize>,
}

impl NoiseMap {
    /// One independent process per component.
    pub fn diagonal(n: usize) -> NoiseMap {
        NoiseMap {
            processes: n,
            of: (0..n).collect(),
        }
    }

    /// One process shared by every component.
    pub fn scalar(n: usize) -> NoiseMap {
        NoiseMap {
            processes: usize::from(n > 0),
            of: vec![0; n],
        }
    }

    /// `of[i]` is the process of component `i`; processes are numbered `0..=max(of)`.
    pub fn new(of: Vec<usize>) -> NoiseMap {
        let processes = of.iter().map(|&k| k + 1).max().unwrap_or(0);
        NoiseMap { processes, of }
    }

    /// From a checked SDE model: a state with scalar noise shares one process among its
    /// components, every other component (diagonal noise, or no noise) has its own.
    pub fn from_model(model: &Model) -> NoiseMap {
        let mut of = vec![0; model.state_size];
        let mut next = 0;
        for (state, eq) in model.states.iter().zip(&model.equations) {
            let len = state.shape.size();
            let shared = matches!(
                eq.kind,
                EquationKind::Sde {
                    noise: Noise::Scalar,
                    ..
                }
            );
            for slot in of.iter_mut().skip(state.offset).take(len) {
                *slot = next;
                if !shared {
                    next += 1;
                }
            }
            if shared && len > 0 {
                next += 1;
            }
        }
        NoiseMap {
            processes: next,
            of,
        }
    }

    pub fn processes(&self) -> usize {
        self.processes
    }

    pub fn dim(&self) -> usize {
        self.of.len()
    }

    /// The process of every component.
    pub fn of(&self) -> &[usize] {
        &self.of
    }
}

pub trait SdeField {
    /// Length of the state.
    fn dim(&self) -> usize;
    /// Which process drives each component (`noise().dim() == dim()`).
    fn noise(&self) -> &NoiseMap;
    /// Writes the drift `f(t, u)` into `du`.
    fn drift(&mut self, t: f64, u: &[f64], du: &mut [f64]);
    /// Writes the diffusion `g(t, u)` (one value per component) into `g`.
    fn diffusion(&mut self, t: f64, u: &[f64], g: &mut [f64]);
    /// Writes `J_g(t, u)·v` (the diffusion's Jacobian times `v`) into `out`. The default is a
    /// central difference, `(g(u + εv) − g(u − εv)) / 2ε` with
    /// `ε = ∛eps · (1 + ‖u‖∞) / ‖v‖∞` (error O(ε²) ≈ 1e-10 relative), two diffusion calls.
    fn diffusion_jvp(&mut self, t: f64, u: &[f64], v: &[f64], out: &mut [f64]) {
        central_jvp(|x, o| self.diffusion(t, x, o), u, v, out)
    }
    /// Whether the drift may depend on `t`. `false` promises `f(t, u) = f(s, u)` for all
    /// `t, s` (bit for bit), which lets the stiffness estimate compare two drift stages at
    /// different abscissae without an extra evaluation (`stiffness.rs`). The default, `true`,
    /// is always safe.
    fn drift_reads_t(&self) -> bool {
        true
    }
}

/// `(g(u + εv) − g(u − εv)) / 2ε` with `ε = ∛eps · (1 + ‖u‖∞) / ‖v‖∞`; zero for `v = 0`.
fn central_jvp(mut g: impl FnMut(&[f64], &mut [f64]), u: &[f64], v: &[f64], out: &mut [f64]) {
    let vmax = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if vmax == 0.0 || !vmax.is_finite() {
        out.fill(if vmax == 0.0 { 0.0 } else { f64::NAN });
        return;
    }
    let umax = u.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let eps = f64::EPSILON.cbrt() * (1.0 + umax) / vmax;
    let plus: Vec<f64> = u.iter().zip(v).map(|(a, b)| a + eps * b).collect();
    let minus: Vec<f64> = u.iter().zip(v).map(|(a, b)| a - eps * b).collect();
    let mut gm = vec![0.0; out.len()];
    g(&plus, out);
    g(&minus, &mut gm);
    for (o, m) in out.iter_mut().zip(&gm) {
        *o = (*o - m) / (2.0 * eps);
    }
}

impl<S: SdeField + ?Sized> SdeField for &mut S {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn noise(&self) -> &NoiseMap {
        (**self).noise()
    }
    fn drift(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        (**self).drift(t, u, du)
    }
    fn diffusion(&mut self, t: f64, u: &[f64], g: &mut [f64]) {
        (**self).diffusion(t, u, g)
    }
    fn diffusion_jvp(&mut self, t: f64, u: &[f64], v: &[f64], out: &mut [f64]) {
        (**self).diffusion_jvp(t, u, v, out)
    }
    fn drift_reads_t(&self) -> bool {
        (**self).drift_reads_t()
    }
}

/// Drift and diffusion closures `|t, u, out|`, with the noise map; the diffusion's JVP by
/// finite differences unless given ([`FnSde::with_jvp`]).
pub struct FnSde<F, G> {
    noise: NoiseMap,
    f: F,
    g: G,
    jvp: Option<JvpFn>,
    autonomous: bool,
}

type JvpFn = Box<dyn FnMut(f64, &[f64], &[f64], &mut [f64])>;

/// Wraps drift and diffusion closures as an SDE of `noise.dim()` components.
pub fn sde_from_fn<F, G>(noise: NoiseMap, f: F, g: G) -> FnSde<F, G>
where
    F: FnMut(f64, &[f64], &mut [f64]),
    G: FnMut(f64, &[f64], &mut [f64]),
{
    FnSde {
        noise,
        f,
        g,
        jvp: None,
        autonomous: false,
    }
}

impl<F, G> FnSde<F, G> {
    /// Supplies `J_g(t, u)·v` as a closure `|t, u, v, out|`.
    pub fn with_jvp(mut self, jvp: impl FnMut(f64, &[f64], &[f64], &mut [f64]) + 'static) -> Self {
        self.jvp = Some(Box::new(jvp));
        self
    }

    /// Promises that the drift closure ignores its `t` ([`SdeField::drift_reads_t`]).
    pub fn autonomous(mut self) -> Self {
        self.autonomous = true;
        self
    }
}

impl<F, G> SdeField for FnSde<F, G>
where
    F: FnMut(f64, &[f64], &mut [f64]),
    G: FnMut(f64, &[f64], &mut [f64]),
{
    fn dim(&self) -> usize {
        self.noise.dim()
    }
    fn noise(&self) -> &NoiseMap {
        &self.noise
    }
    fn drift(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        (self.f)(t, u, du)
    }
    fn diffusion(&mut self, t: f64, u: &[f64], g: &mut [f64]) {
        (self.g)(t, u, g)
    }
    fn diffusion_jvp(&mut self, t: f64, u: &[f64], v: &[f64], out: &mut [f64]) {
        match self.jvp.as_mut() {
            Some(j) => j(t, u, v, out),
            None => central_jvp(|x, o| (self.g)(t, x, o), u, v, out),
        }
    }
    fn drift_reads_t(&self) -> bool {
        !self.autonomous
    }
}

/// A lowered SDE model run by the interpreter: drift `ir::lower(.., Part::Field)`, diffusion
/// `ir::lower(.., Part::Diffusion)`, and the diffusion's JVP generated once with `ir::jvp`.
pub struct IrSde<'a> {
    drift: IrField<'a>,
    diffusion: IrField<'a>,
    jvp: Function,
    /// The JVP's argument buffers in its order; `t`, `u`, `v` overwritten on every call.
    jvp_args: Vec<Vec<f64>>,
    slots: (usize, usize, usize),
    noise: NoiseMap,
    drift_reads_t: bool,
}

impl<'a> IrSde<'a> {
    /// Checks both signatures once (as [`IrField::new`]) and builds the JVP.
    pub fn new(
        drift: &'a Function,
        diffusion: &'a Function,
        p: &[f64],
        x: &[f64],
        noise: NoiseMap,
    ) -> Result<IrSde<'a>, SolveError> {
        let bad = |why: String| SolveError::Field(why);
        let fd = IrField::new(drift, p, x)?;
        let gd = IrField::new(diffusion, p, x)?;
        if fd.dim() != gd.dim() || noise.dim() != fd.dim() {
            return Err(bad(format!(
                "drift, diffusion and noise map have {}, {} and {} components",
                fd.dim(),
                gd.dim(),
                noise.dim()
            )));
        }
        let jvp = ir::jvp(diffusion, "u", "v").map_err(|e| bad(e.to_string()))?;
        let (mut t_arg, mut u_arg, mut v_arg) = (None, None, None);
        let mut jvp_args = Vec::with_capacity(jvp.args.len());
        for (i, spec) in jvp.args.iter().enumerate() {
            let buf = match spec.name.as_str() {
                "t" => {
                    t_arg = Some(i);
                    vec![0.0; spec.len]
                }
                "u" => {
                    u_arg = Some(i);
                    vec![0.0; spec.len]
                }
                "v" => {
                    v_arg = Some(i);
                    vec![0.0; spec.len]
                }
                "p" => p.to_vec(),
                "x" => x.to_vec(),
                other => return Err(bad(format!("unexpected argument `{other}`"))),
            };
            jvp_args.push(buf);
        }
        let (Some(t), Some(u), Some(v)) = (t_arg, u_arg, v_arg) else {
            return Err(bad("the diffusion's JVP lacks `t`, `u` or `v`".into()));
        };
        Ok(IrSde {
            drift: fd,
            diffusion: gd,
            jvp,
            jvp_args,
            slots: (t, u, v),
            noise,
            drift_reads_t: drift.reads("t"),
        })
    }
}

impl SdeField for IrSde<'_> {
    fn dim(&self) -> usize {
        self.drift.dim()
    }
    fn noise(&self) -> &NoiseMap {
        &self.noise
    }
    fn drift(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        self.drift.eval(t, u, du)
    }
    fn diffusion(&mut self, t: f64, u: &[f64], g: &mut [f64]) {
        self.diffusion.eval(t, u, g)
    }
    fn diffusion_jvp(&mut self, t: f64, u: &[f64], v: &[f64], out: &mut [f64]) {
        let (ta, ua, va) = self.slots;
        self.jvp_args[ta][0] = t;
        self.jvp_args[ua].copy_from_slice(u);
        self.jvp_args[va].copy_from_slice(v);
        let refs: Vec<&[f64]> = self.jvp_args.iter().map(Vec::as_slice).collect();
        match ir::eval(&self.jvp, &refs, 1) {
            Ok(r) if r.len() == out.len() => out.copy_from_slice(&r),
            // Unreachable after `new`'s checks; NaN makes the solver report it.
            _ => out.fill(f64::NAN),
        }
    }
    fn drift_reads_t(&self) -> bool {
        self.drift_reads_t
    }
}
