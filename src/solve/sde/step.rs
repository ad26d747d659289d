//! One step of any SDE method from `(t, u)` with the Brownian increments of the step.
//!
//! Invariant: the drift and diffusion at `(t, u)` are handed in (`f0`, `g0`; computed once
//! per accepted state, so rejected attempts do not repeat them); the step leaves `u_{n+1}`
//! in `w.u1` and, for the adaptive methods, the error parts `E1`, `E2` in `w.e1`, `w.e2`.
//! Buffers live in [`Work`]; the hot path does not allocate.

// The formulas are component-wise over several parallel buffers; indices read like the paper.
#![allow(clippy::needless_range_loop)]

use super::batch_field::SdePart;
use super::field::SdeField;
use super::method::{SdeMethod, SraTableau, SriTableau};

pub(crate) struct Work {
    n: usize,
    /// Per component: `ΔW`, `I_(1,0)` of its process, and `χ1, χ2, χ3`.
    pub dw: Vec<f64>,
    pub i10: Vec<f64>,
    pub chi: [Vec<f64>; 3],
    /// Stage values, stage-major (4 stages at most).
    pub fs: Vec<f64>,
    pub gs: Vec<f64>,
    /// Stage arguments `H0_s`, `H1_s`, stage-major: kept so the SDE adjoint
    /// (`grad::sde`) can take the VJPs where the step evaluated (Euler–Heun: `H0 = u + g ΔW`,
    /// `H1 = g(t + h, H0)` in the first `n`).
    pub h0: Vec<f64>,
    pub h1: Vec<f64>,
    pub u1: Vec<f64>,
    pub e1: Vec<f64>,
    pub e2: Vec<f64>,
    /// The stiffness pair's second drift value (`stiffness.rs`).
    pub fx: Vec<f64>,
}

impl Work {
    pub fn new(n: usize) -> Work {
        let v = || vec![0.0; n];
        Work {
            n,
            dw: v(),
            i10: v(),
            chi: [v(), v(), v()],
            fs: vec![0.0; 4 * n],
            gs: vec![0.0; 4 * n],
            h0: vec![0.0; 4 * n],
            h1: vec![0.0; 4 * n],
            u1: v(),
            e1: v(),
            e2: v(),
            fx: v(),
        }
    }
}

/// One evaluation a step makes, in the order the step makes them: the drift or diffusion of
/// a tableau stage, Euler–Heun's predictor diffusion `g(t + h, u + g ΔW)`, or Milstein's
/// `J_g(u)·g(u)`. The list depends on the method only ([`Schedule`]), so a batch of paths
/// makes the same evaluations in the same order, each one call for all of them
/// (`batched.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eval {
    Drift(usize),
    Diffusion(usize),
    Predictor,
    Jvp,
}

impl Eval {
    /// Which function it calls.
    pub(crate) fn part(self) -> SdePart {
        match self {
            Eval::Drift(_) => SdePart::Drift,
            Eval::Diffusion(_) | Eval::Predictor => SdePart::Diffusion,
            Eval::Jvp => SdePart::DiffusionJvp,
        }
    }
}

/// Whether an SRI stage's argument is `u` itself at `c = 0` (its value is `f(t, u)` or
/// `g(t, u)`, reused: the invariant of `method.rs`).
fn at_u(a: &[f64; 4], b: &[f64; 4], c: f64) -> bool {
    a.iter().chain(b).all(|&x| x == 0.0) && c == 0.0
}

/// The evaluations one step of a method makes, in order (each counts one in `nfe`): at most
/// two per stage of four, held inline (the hot path does not allocate).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    evals: [Eval; 8],
    len: usize,
}

impl Schedule {
    pub(crate) fn of(method: SdeMethod) -> Schedule {
        let mut sc = Schedule {
            evals: [Eval::Jvp; 8],
            len: 0,
        };
        match method {
            SdeMethod::EulerMaruyama => {}
            SdeMethod::EulerHeun => sc.push(Eval::Predictor),
            SdeMethod::Milstein => sc.push(Eval::Jvp),
            SdeMethod::Sri(tab) => {
                for s in 0..4 {
                    if !at_u(&tab.a0[s], &tab.b0[s], tab.c0[s]) {
                        sc.push(Eval::Drift(s));
                    }
                    if !at_u(&tab.a1[s], &tab.b1[s], tab.c1[s]) {
                        sc.push(Eval::Diffusion(s));
                    }
                }
            }
            SdeMethod::Sra(tab) => {
                for s in 0..tab.stages {
                    if s != 0 || tab.c0[0] != 0.0 {
                        sc.push(Eval::Drift(s));
                    }
                    sc.push(Eval::Diffusion(s));
                }
            }
        }
        sc
    }

    fn push(&mut self, e: Eval) {
        self.evals[self.len] = e;
        self.len += 1;
    }

    pub(crate) fn evals(&self) -> &[Eval] {
        &self.evals[..self.len]
    }

    /// The evaluations a step spends.
    pub(crate) fn nfe(&self) -> u32 {
        self.len as u32
    }
}

/// Takes one step of size `h`; returns the evaluations it spent (drift, diffusion and JVP
/// calls, each counted once). `w.dw`, `w.i10` hold the increments per component.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sde_step<S: SdeField + ?Sized>(
    method: SdeMethod,
    field: &mut S,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    g0: &[f64],
    w: &mut Work,
) -> u32 {
    let schedule = Schedule::of(method);
    w.start(method, u, h, f0, g0);
    for &e in schedule.evals() {
        let te = w.prepare(method, e, (t, h), u, g0);
        let (arg, out) = w.slots(method, e);
        match e.part() {
            SdePart::Drift => field.drift(te, arg, out),
            SdePart::Diffusion => field.diffusion(te, arg, out),
            SdePart::DiffusionJvp => field.diffusion_jvp(te, u, g0, out),
        }
    }
    w.finish(method, u, h, f0, g0);
    schedule.nfe()
}

impl Work {
    /// Before a step's evaluations: the `χ` of the SRI/SRA methods and the stages that reuse
    /// `f(t, u)`, `g(t, u)`.
    pub(crate) fn start(&mut self, method: SdeMethod, u: &[f64], h: f64, f0: &[f64], g0: &[f64]) {
        let n = self.n;
        match method {
            SdeMethod::Sri(tab) => {
                chis(self, h);
                for s in 0..4 {
                    if at_u(&tab.a0[s], &tab.b0[s], tab.c0[s]) {
                        self.fs[s * n..(s + 1) * n].copy_from_slice(f0);
                        self.h0[s * n..(s + 1) * n].copy_from_slice(u);
                    }
                    if at_u(&tab.a1[s], &tab.b1[s], tab.c1[s]) {
                        self.gs[s * n..(s + 1) * n].copy_from_slice(g0);
                        self.h1[s * n..(s + 1) * n].copy_from_slice(u);
                    }
                }
            }
            SdeMethod::Sra(tab) => {
                chis(self, h);
                if tab.c0[0] == 0.0 {
                    self.fs[..n].copy_from_slice(f0);
                }
            }
            SdeMethod::EulerMaruyama | SdeMethod::EulerHeun | SdeMethod::Milstein => {}
        }
    }

    /// Writes evaluation `e`'s argument (its stage's `H0`/`H1`, from the stages before it)
    /// and returns its time; step `(t, h)` from `u`, `g0 = g(t, u)`.
    pub(crate) fn prepare(
        &mut self,
        method: SdeMethod,
        e: Eval,
        (t, h): (f64, f64),
        u: &[f64],
        g0: &[f64],
    ) -> f64 {
        let n = self.n;
        let (fs, gs, chi2) = (&self.fs, &self.gs, &self.chi[1]);
        let stage = |s: usize| s * n..(s + 1) * n;
        match (method, e) {
            (SdeMethod::Sri(tab), Eval::Drift(s)) => {
                let rows = (&tab.a0[s][..s], &tab.b0[s][..s]);
                combine(rows, (fs, gs), u, h, |i| chi2[i], &mut self.h0[stage(s)]);
                t + tab.c0[s] * h
            }
            (SdeMethod::Sri(tab), Eval::Diffusion(s)) => {
                let (rows, sq) = ((&tab.a1[s][..s], &tab.b1[s][..s]), h.sqrt());
                combine(rows, (fs, gs), u, h, |_| sq, &mut self.h1[stage(s)]);
                t + tab.c1[s] * h
            }
            (SdeMethod::Sra(tab), Eval::Drift(s) | Eval::Diffusion(s)) => {
                // Drift and diffusion of a stage share `H0_s`, computed alike for both.
                let rows = (&tab.a0[s][..s], &tab.b0[s][..s]);
                combine(rows, (fs, gs), u, h, |i| chi2[i], &mut self.h0[stage(s)]);
                match e {
                    Eval::Drift(_) => t + tab.c0[s] * h,
                    _ => t + tab.c1[s] * h,
                }
            }
            (SdeMethod::EulerHeun, Eval::Predictor) => {
                for i in 0..n {
                    self.h0[i] = u[i] + g0[i] * self.dw[i];
                }
                t + h
            }
            // Milstein's JVP is taken at `(t, u)` along `g0`: nothing to write.
            _ => t,
        }
    }

    /// Evaluation `e`'s argument (as [`Work::prepare`] left it; empty for the JVP, whose
    /// arguments are `u` and `g0`) and the buffer its value goes to.
    pub(crate) fn slots(&mut self, method: SdeMethod, e: Eval) -> (&[f64], &mut [f64]) {
        let n = self.n;
        let stage = |s: usize| s * n..(s + 1) * n;
        match e {
            Eval::Drift(s) => (&self.h0[stage(s)], &mut self.fs[stage(s)]),
            Eval::Diffusion(s) if matches!(method, SdeMethod::Sra(_)) => {
                (&self.h0[stage(s)], &mut self.gs[stage(s)])
            }
            Eval::Diffusion(s) => (&self.h1[stage(s)], &mut self.gs[stage(s)]),
            Eval::Predictor => (&self.h0[..n], &mut self.h1[..n]),
            Eval::Jvp => (&[], &mut self.h1[..n]),
        }
    }

    /// After the evaluations: `u_{n+1}` into `u1` and, for the adaptive methods, `E1`, `E2`.
    pub(crate) fn finish(&mut self, method: SdeMethod, u: &[f64], h: f64, f0: &[f64], g0: &[f64]) {
        let n = self.n;
        match method {
            SdeMethod::EulerMaruyama => {
                for i in 0..n {
                    self.u1[i] = u[i] + h * f0[i] + g0[i] * self.dw[i];
                }
            }
            SdeMethod::EulerHeun => {
                for i in 0..n {
                    self.u1[i] = u[i] + h * f0[i] + 0.5 * (g0[i] + self.h1[i]) * self.dw[i];
                }
            }
            SdeMethod::Milstein => {
                for i in 0..n {
                    let dw = self.dw[i];
                    self.u1[i] = u[i] + h * f0[i] + g0[i] * dw + 0.5 * self.h1[i] * (dw * dw - h);
                }
            }
            SdeMethod::Sri(tab) => sri_finish(tab, self, u, h),
            SdeMethod::Sra(tab) => sra_finish(tab, self, u, h),
        }
    }
}

/// `out_i = u_i + h Σ_j a_j f_j,i + scale(i) Σ_j b_j g_j,i` over the stages before this one
/// (`a`, `b` their coefficients; `fs`, `gs` stage-major).
fn combine(
    (a, b): (&[f64], &[f64]),
    (fs, gs): (&[f64], &[f64]),
    u: &[f64],
    h: f64,
    scale: impl Fn(usize) -> f64,
    out: &mut [f64],
) {
    let n = out.len();
    for i in 0..n {
        let (mut sa, mut sb) = (0.0, 0.0);
        for j in 0..a.len() {
            sa += a[j] * fs[j * n + i];
            sb += b[j] * gs[j * n + i];
        }
        out[i] = u[i] + h * sa + scale(i) * sb;
    }
}

fn chis(w: &mut Work, h: f64) {
    let sq = h.sqrt();
    for i in 0..w.n {
        let dw = w.dw[i];
        w.chi[0][i] = (dw * dw - h) / (2.0 * sq);
        w.chi[1][i] = w.i10[i] / h;
        w.chi[2][i] = (dw * dw * dw - 3.0 * h * dw) / (6.0 * h);
    }
}

fn sri_finish(tab: &SriTableau, w: &mut Work, u: &[f64], h: f64) {
    let n = w.n;
    for i in 0..n {
        let (dw, c1, c2, c3) = (w.dw[i], w.chi[0][i], w.chi[1][i], w.chi[2][i]);
        let (mut drift, mut noise, mut e2, mut e1) = (0.0, 0.0, 0.0, 0.0);
        for s in 0..4 {
            let (f, g) = (w.fs[s * n + i], w.gs[s * n + i]);
            drift += tab.alpha[s] * f;
            noise += (tab.beta1[s] * dw + tab.beta2[s] * c1) * g;
            e2 += (tab.beta3[s] * c2 + tab.beta4[s] * c3) * g;
            if s < tab.error_stages {
                e1 += f;
            }
        }
        w.u1[i] = u[i] + h * drift + noise + e2;
        w.e1[i] = h * e1;
        w.e2[i] = e2;
    }
}

fn sra_finish(tab: &SraTableau, w: &mut Work, u: &[f64], h: f64) {
    let n = w.n;
    for i in 0..n {
        let (dw, c2) = (w.dw[i], w.chi[1][i]);
        let (mut drift, mut noise, mut e2, mut e1) = (0.0, 0.0, 0.0, 0.0);
        for s in 0..tab.stages {
            let (f, g) = (w.fs[s * n + i], w.gs[s * n + i]);
            drift += tab.alpha[s] * f;
            noise += tab.beta1[s] * dw * g;
            e2 += tab.beta2[s] * c2 * g;
            e1 += f;
        }
        w.u1[i] = u[i] + h * drift + noise + e2;
        w.e1[i] = h * e1;
        w.e2[i] = e2;
    }
}
