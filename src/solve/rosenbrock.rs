//! Linearly implicit (Rosenbrock) methods for stiff problems: Rosenbrock23, Rodas4 and
//! Rodas5P.
//!
//! All solve with one matrix `W = I − hγJ` per step, `J = ∂f/∂u` at the step's start
//! (analytic from the field when it offers one, else forward differences), factorised once
//! by an LU with partial pivoting in the solve's own buffers (`lu.rs`) and reused for every
//! stage.
//!
//! - **Rosenbrock23** (Shampine & Reichelt 1997, MATLAB's `ode23s`; OrdinaryDiffEq's
//!   `Rosenbrock23`): order 2, L-stable, `d = 1/(2 + √2)`; the error estimate
//!   `h/6 (k1 − 2k2 + k3)` compares with a third-order W-method (so the controller's `q = 3`);
//!   `f(t + h, u_{n+1})` is its third stage (FSAL); dense output
//!   `u0 + h(θ(1−θ) k1 + θ(θ−2d) k2)/(1 − 2d)`, order 2.
//! - **Rodas4** and **Rodas5P** (`rodas.rs`, one stepper for both tableaux): orders 4(3) and
//!   5(4), stiffly accurate, 6 and 8 stages (5 and 7 new evaluations, plus `f(t + h, u_{n+1})`
//!   after acceptance), error estimate = the last stage; dense output of order 3 and 4.
//!
//! Invariants: the Jacobian is evaluated at most once per accepted step (a rejected attempt
//! refactorises `W` with its new `h` but keeps `J`); a singular `W` or a non-finite stage makes
//! the attempt's error infinite (rejection), never a panic. The stiffness estimate `S_j` of a
//! Rosenbrock step is the spectral radius of `J` by power iteration (`spectral_radius`).

// Stage formulas are written index by index, as the papers write them.
#![allow(clippy::needless_range_loop)]

use super::field::VectorField;
use super::lu::{Lu, small_n};
use super::rodas::{
    MAX_DENSE, MAX_STAGES, RODAS4_TAB, RODAS5P_TAB, RodasBufs, RodasTableau, rodas_interpolate,
    rodas_stages,
};

/// Which scheme a [`Rosenbrock`] runs.
#[derive(Clone, Copy, Debug)]
pub enum Scheme {
    Rosenbrock23,
    Rodas(&'static RodasTableau),
}

/// A Rosenbrock method as the driver sees it.
#[derive(Debug)]
pub struct Rosenbrock {
    pub name: &'static str,
    pub scheme: Scheme,
    pub order: u32,
    /// Order of the solution the error estimate compares against, minus one: the controller
    /// uses `q = embedded_order + 1` (the estimate is `O(h^q)`).
    pub embedded_order: u32,
    /// `f(t + h, u_{n+1})` is evaluated inside the step.
    pub fsal: bool,
}

pub const ROSENBROCK23: Rosenbrock = Rosenbrock {
    name: "rosenbrock23",
    scheme: Scheme::Rosenbrock23,
    order: 2,
    embedded_order: 2,
    fsal: true,
};

pub const RODAS4: Rosenbrock = Rosenbrock {
    name: "rodas4",
    scheme: Scheme::Rodas(&RODAS4_TAB),
    order: 4,
    embedded_order: 3,
    fsal: false,
};

pub const RODAS5P: Rosenbrock = Rosenbrock {
    name: "rodas5p",
    scheme: Scheme::Rodas(&RODAS5P_TAB),
    order: 5,
    embedded_order: 4,
    fsal: false,
};

impl Rosenbrock {
    /// How many vectors of length `dim` its dense output keeps per step (besides `u_n`,
    /// `u_{n+1}`).
    pub fn dense_vectors(&self) -> usize {
        match self.scheme {
            Scheme::Rosenbrock23 => 2,
            Scheme::Rodas(tab) => tab.h.len(),
        }
    }
}

/// A Rosenbrock method by its model-file name (`registry::METHODS`).
pub fn rosenbrock(name: &str) -> Option<&'static Rosenbrock> {
    match super::registry::Method::from_name(name)?.kind() {
        super::registry::Kind::Rosenbrock(m) => Some(m),
        _ => None,
    }
}

const R23_D: f64 = 0.292_893_218_813_452_5; // 1 / (2 + √2)
const R23_E32: f64 = 7.414_213_562_373_095; // 6 + √2

/// Scratch of one Rosenbrock solve; the hot path does not allocate.
pub(crate) struct RosWork {
    n: usize,
    /// `J`, row-major, valid for the current step start while `jac_valid`.
    jac: Vec<f64>,
    /// `∂f/∂t` at the step start.
    dfdt: Vec<f64>,
    pub jac_valid: bool,
    /// Spectral-radius estimate of the current `J`.
    jac_norm: f64,
    /// Stages, stage-major (up to 8: Rodas5P).
    k: Vec<f64>,
    g: Vec<f64>,
    fk: Vec<f64>,
    rhs: Vec<f64>,
    pub u1: Vec<f64>,
    /// `f(t + h, u_{n+1})` for FSAL methods.
    pub f1: Vec<f64>,
    /// The dense-output vectors of the step (2 or 3).
    pub dense: Vec<f64>,
    /// `W`'s factors, valid after a successful `factor`.
    lu: Lu,
    /// The LU solve's scratch.
    lu_tmp: Vec<f64>,
}

impl RosWork {
    pub fn new(n: usize) -> RosWork {
        RosWork {
            n,
            jac: vec![0.0; n * n],
            dfdt: vec![0.0; n],
            jac_valid: false,
            jac_norm: 0.0,
            k: vec![0.0; MAX_STAGES * n],
            g: vec![0.0; n],
            fk: vec![0.0; n],
            rhs: vec![0.0; n],
            u1: vec![0.0; n],
            f1: vec![0.0; n],
            dense: vec![0.0; MAX_DENSE * n],
            lu: Lu::new(n),
            lu_tmp: vec![0.0; n],
        }
    }

    /// The first non-finite value among the stages (component), for error reports.
    pub fn first_non_finite(&self) -> Option<(usize, f64)> {
        let n = self.n.max(1);
        self.k
            .iter()
            .chain(&self.u1)
            .enumerate()
            .find(|(_, x)| !x.is_finite())
            .map(|(i, x)| (i % n, *x))
    }
}

pub(crate) struct RosResult {
    pub error: f64,
    /// Spectral-radius estimate of `J`.
    pub stiffness: f64,
    pub nfe: u32,
    pub jacobian_evals: u32,
    pub lu_factorizations: u32,
}

/// Evaluates `J` and `∂f/∂t` at `(t, u)`: the field's own when it has them, forward
/// differences otherwise (`δ_j = √ε·max(|u_j|, 1)`, `δ_t = √ε·max(|t|, 1)`). Returns the
/// evaluations spent.
fn evaluate_jacobian<F: VectorField + ?Sized>(
    f: &mut F,
    t: f64,
    u: &[f64],
    f0: &[f64],
    w: &mut RosWork,
) -> u32 {
    let n = w.n;
    let sqrt_eps = f64::EPSILON.sqrt();
    let mut nfe = 0;
    if !f.jacobian(t, u, &mut w.jac) {
        w.g.copy_from_slice(u);
        for j in 0..n {
            let delta = sqrt_eps * u[j].abs().max(1.0);
            w.g[j] = u[j] + delta;
            // The representable step, so the quotient divides by what was actually added.
            let delta = w.g[j] - u[j];
            f.eval(t, &w.g, &mut w.fk);
            nfe += 1;
            for i in 0..n {
                w.jac[i * n + j] = (w.fk[i] - f0[i]) / delta;
            }
            w.g[j] = u[j];
        }
    }
    if !f.time_derivative(t, u, &mut w.dfdt) {
        let delta = sqrt_eps * t.abs().max(1.0);
        let delta = (t + delta) - t;
        f.eval(t + delta, u, &mut w.fk);
        nfe += 1;
        for i in 0..n {
            w.dfdt[i] = (w.fk[i] - f0[i]) / delta;
        }
    }
    w.jac_norm = spectral_radius(&w.jac, n, &mut w.g, &mut w.fk);
    w.jac_valid = true;
    nfe
}

/// Power-iteration estimate of the spectral radius: `(‖J^k v‖₂ / ‖v‖₂)^(1/k)` with `k` =
/// [`POWER_STEPS`] from a fixed vector with distinct entries (so no eigenvector of a
/// structured `J` is missed by symmetry). Converges to ρ(J) also for complex dominant pairs;
/// capped by `‖J‖∞`, an upper bound. Uses `a`, `b` as scratch.
///
/// `J^i v` is kept rescaled by its largest entry (a max and a division per iteration; the
/// scales' product is kept and its `ln` taken once), and only the end vector's 2-norm is
/// taken: the same quotient as normalising every iterate, without a square root and a `ln`
/// per iteration (once per Rosenbrock step, this was most of a small system's step).
fn spectral_radius(jac: &[f64], n: usize, a: &mut [f64], b: &mut [f64]) -> f64 {
    small_n!(n => spectral_radius_n(jac, n, a, b))
}

#[inline(always)]
fn spectral_radius_n(jac: &[f64], n: usize, a: &mut [f64], b: &mut [f64]) -> f64 {
    let (jac, a, b) = (&jac[..n * n], &mut a[..n], &mut b[..n]);
    let inf_norm = (0..n)
        .map(|i| jac[i * n..(i + 1) * n].iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    if n == 0 || !inf_norm.is_finite() {
        return inf_norm;
    }
    for (i, x) in a.iter_mut().enumerate() {
        *x = 1.0 + 1.0 / (1.0 + i as f64);
    }
    let norm2 = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let start = norm2(a);
    // J^i v = a · scale · e^log_scale; `scale` is folded into `log_scale` before it can
    // overflow or underflow.
    let (mut log_scale, mut scale) = (0.0, 1.0);
    for _ in 0..POWER_STEPS {
        // One pass: the product, its largest entry, and whether it stayed finite (a NaN
        // would slip past `max`).
        let (mut m, mut finite) = (0.0f64, true);
        for (bi, row) in b.iter_mut().zip(jac.chunks_exact(n)) {
            let s: f64 = row.iter().zip(a.iter()).map(|(j, x)| j * x).sum();
            finite &= s.is_finite();
            m = m.max(s.abs());
            *bi = s;
        }
        if !finite {
            return inf_norm;
        }
        if m == 0.0 {
            return 0.0;
        }
        scale *= m;
        if !(1e-100..=1e100).contains(&scale) {
            log_scale += scale.ln();
            scale = 1.0;
        }
        let r = 1.0 / m;
        for (x, y) in a.iter_mut().zip(b.iter()) {
            *x = y * r;
        }
    }
    ((log_scale + scale.ln() + (norm2(a) / start).ln()) / POWER_STEPS as f64)
        .exp()
        .min(inf_norm)
}

const POWER_STEPS: usize = 12;

/// Evaluates `J` at `(t, u)` (the state `auto` probes while explicit) and returns its
/// spectral-radius estimate and the evaluations spent. Leaves `J` valid for a step from there.
pub(crate) fn probe_stiffness<F: VectorField + ?Sized>(
    f: &mut F,
    t: f64,
    u: &[f64],
    f0: &[f64],
    w: &mut RosWork,
) -> (f64, u32) {
    let nfe = evaluate_jacobian(f, t, u, f0, w);
    (w.jac_norm, nfe)
}

/// Factorises `W = I − hγJ`; `false` when it is singular or not finite.
fn factor(w: &mut RosWork, hgamma: f64) -> bool {
    let (n, jac) = (w.n, &w.jac);
    w.lu.factor(|i, j| {
        let delta = if i == j { 1.0 } else { 0.0 };
        delta - hgamma * jac[i * n + j]
    })
}

fn rms_error(err: &[f64], u0: &[f64], u1: &[f64], (rtol, atol): (f64, f64)) -> f64 {
    if err.is_empty() {
        return 0.0;
    }
    let sum: f64 = err
        .iter()
        .zip(u0.iter().zip(u1))
        .map(|(e, (a, b))| {
            let scale = atol + a.abs().max(b.abs()) * rtol;
            if *e == 0.0 { 0.0 } else { (e / scale).powi(2) }
        })
        .sum();
    (sum / err.len() as f64).sqrt()
}

/// One Rosenbrock attempt of size `h` from `(t, u)`, `f0 = f(t, u)`. Leaves `u_{n+1}` in
/// `w.u1`, the dense vectors in `w.dense` and (FSAL methods) `f(t + h, u_{n+1})` in `w.f1`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ros_step<F: VectorField + ?Sized>(
    m: &Rosenbrock,
    f: &mut F,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    tol: (f64, f64),
    w: &mut RosWork,
) -> RosResult {
    let mut r = RosResult {
        error: f64::INFINITY,
        stiffness: 0.0,
        nfe: 0,
        jacobian_evals: 0,
        lu_factorizations: 0,
    };
    if !w.jac_valid {
        r.nfe += evaluate_jacobian(f, t, u, f0, w);
        r.jacobian_evals = 1;
    }
    r.stiffness = w.jac_norm;
    let gamma = match m.scheme {
        Scheme::Rosenbrock23 => R23_D,
        Scheme::Rodas(tab) => tab.gamma,
    };
    r.lu_factorizations = 1;
    if !factor(w, h * gamma) {
        return r;
    }
    match m.scheme {
        Scheme::Rosenbrock23 => r23_stages(f, t, u, h, f0, w, &mut r.nfe),
        Scheme::Rodas(tab) => {
            let bufs = RodasBufs {
                lu: &w.lu,
                lu_tmp: &mut w.lu_tmp,
                dfdt: &w.dfdt,
                k: &mut w.k,
                g: &mut w.g,
                fk: &mut w.fk,
                err: &mut w.rhs,
                u1: &mut w.u1,
                dense: &mut w.dense,
            };
            r.nfe += rodas_stages(tab, f, t, u, h, f0, bufs);
        }
    }
    // The error vector was left in `rhs`.
    let e = rms_error(&w.rhs, u, &w.u1, tol);
    r.error = if e.is_finite() { e } else { f64::INFINITY };
    r
}

fn r23_stages<F: VectorField + ?Sized>(
    f: &mut F,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    w: &mut RosWork,
    nfe: &mut u32,
) {
    let n = w.n;
    let hd = h * R23_D;
    let lu = &w.lu;
    let (k1, rest) = w.k.split_at_mut(n);
    let (k2, rest) = rest.split_at_mut(n);
    let k3 = &mut rest[..n];
    for i in 0..n {
        k1[i] = f0[i] + hd * w.dfdt[i];
    }
    lu.solve(k1, &mut w.lu_tmp);
    for i in 0..n {
        w.g[i] = u[i] + 0.5 * h * k1[i];
    }
    f.eval(t + 0.5 * h, &w.g, &mut w.fk);
    *nfe += 1;
    for i in 0..n {
        k2[i] = w.fk[i] - k1[i];
    }
    lu.solve(k2, &mut w.lu_tmp);
    for i in 0..n {
        k2[i] += k1[i];
        w.u1[i] = u[i] + h * k2[i];
    }
    f.eval(t + h, &w.u1, &mut w.f1);
    *nfe += 1;
    for i in 0..n {
        k3[i] = w.f1[i] - R23_E32 * (k2[i] - w.fk[i]) - 2.0 * (k1[i] - f0[i]) + hd * w.dfdt[i];
    }
    lu.solve(k3, &mut w.lu_tmp);
    let s = h / (1.0 - 2.0 * R23_D);
    for i in 0..n {
        w.rhs[i] = h / 6.0 * (k1[i] - 2.0 * k2[i] + k3[i]);
        w.dense[i] = s * k1[i];
        w.dense[n + i] = s * k2[i];
    }
}

/// Dense output of a Rosenbrock step at `t_n + θh` from `u0`, `u1` and the step's dense
/// vectors (`dense_vectors()` of them).
pub(crate) fn ros_interpolate(
    m: &Rosenbrock,
    u0: &[f64],
    u1: &[f64],
    d: &[f64],
    theta: f64,
    out: &mut [f64],
) {
    let n = u0.len();
    if theta == 0.0 {
        out.copy_from_slice(u0);
        return;
    }
    if theta == 1.0 {
        out.copy_from_slice(u1);
        return;
    }
    match m.scheme {
        Scheme::Rosenbrock23 => {
            for i in 0..n {
                let (d1, d2) = (d[i], d[n + i]);
                out[i] = u0[i] + theta * (1.0 - theta) * d1 + theta * (theta - 2.0 * R23_D) * d2;
            }
        }
        Scheme::Rodas(tab) => rodas_interpolate(tab, u0, u1, d, theta, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r23_constants() {
        assert!((R23_D - 1.0 / (2.0 + 2f64.sqrt())).abs() < 1e-16);
        assert!((R23_E32 - (6.0 + 2f64.sqrt())).abs() < 1e-15);
    }
}
