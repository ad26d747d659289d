//! Linearly implicit (Rosenbrock) methods for stiff problems: Rosenbrock23 and Rodas4.
//!
//! Both solve with one matrix `W = I − hγJ` per step, `J = ∂f/∂u` at the step's start
//! (analytic from the field when it offers one, else forward differences), factorised once
//! by an LU with partial pivoting in the solve's own buffers (`lu.rs`) and reused for every
//! stage.
//!
//! - **Rosenbrock23** (Shampine & Reichelt 1997, MATLAB's `ode23s`; OrdinaryDiffEq's
//!   `Rosenbrock23`): order 2, L-stable, `d = 1/(2 + √2)`; the error estimate
//!   `h/6 (k1 − 2k2 + k3)` compares with a third-order W-method (so the controller's `q = 3`);
//!   `f(t + h, u_{n+1})` is its third stage (FSAL); dense output
//!   `u0 + h(θ(1−θ) k1 + θ(θ−2d) k2)/(1 − 2d)`, order 2.
//! - **Rodas4** (Hairer & Wanner, `RODAS`, coefficient set 1): order 4, embedded order 3,
//!   stiffly accurate, 6 stages (5 new evaluations, plus `f(t + h, u_{n+1})` after acceptance),
//!   error estimate = the last stage; dense output of order 3 from the `h2j`, `h3j` weights.
//!
//! Invariants: the Jacobian is evaluated at most once per accepted step (a rejected attempt
//! refactorises `W` with its new `h` but keeps `J`); a singular `W` or a non-finite stage makes
//! the attempt's error infinite (rejection), never a panic. The stiffness estimate `S_j` of a
//! Rosenbrock step is the spectral radius of `J` by power iteration (`spectral_radius`).

// Stage formulas are written index by index, as the papers write them.
#![allow(clippy::needless_range_loop)]

use super::field::VectorField;
use super::lu::Lu;

/// Which scheme a [`Rosenbrock`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Rosenbrock23,
    Rodas4,
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
    scheme: Scheme::Rodas4,
    order: 4,
    embedded_order: 3,
    fsal: false,
};

pub const ROSENBROCK_METHODS: [&Rosenbrock; 2] = [&ROSENBROCK23, &RODAS4];

pub fn rosenbrock(name: &str) -> Option<&'static Rosenbrock> {
    ROSENBROCK_METHODS.iter().copied().find(|m| m.name == name)
}

const R23_D: f64 = 0.292_893_218_813_452_5; // 1 / (2 + √2)
const R23_E32: f64 = 7.414_213_562_373_095; // 6 + √2

// Rodas4: Hairer & Wanner, RODAS (ROCOE, METH = 1).
const GAMMA: f64 = 0.25;
const C: [f64; 3] = [0.386, 0.21, 0.63];
const D: [f64; 4] = [0.25, -0.1043, 0.1035, -0.036_200_000_000_000_23];
const A: [&[f64]; 4] = [
    &[1.544],
    &[0.946_678_528_081_582_6, 0.255_701_169_898_328_4],
    &[
        3.314_825_187_068_521,
        2.896_124_015_972_201,
        0.998_641_913_997_781_7,
    ],
    &[
        1.221_224_509_226_641,
        6.019_134_481_288_629,
        12.537_083_329_320_87,
        -0.687_886_036_105_895,
    ],
];
const CC: [&[f64]; 5] = [
    &[-5.6688],
    &[-2.430_093_356_833_875, -0.206_359_915_709_191_5],
    &[
        -0.107_352_905_815_137_5,
        -9.594_562_251_023_355,
        -20.470_286_148_096_16,
    ],
    &[
        7.496_443_313_967_647,
        -10.246_804_314_643_52,
        -33.999_903_528_199_05,
        11.708_908_932_061_6,
    ],
    &[
        8.083_246_795_921_522,
        -7.981_132_988_064_893,
        -31.521_594_328_743_71,
        16.319_305_431_231_36,
        -6.058_818_238_834_054,
    ],
];
const H2: [f64; 5] = [
    10.126_235_083_445_86,
    -7.487_995_877_610_167,
    -34.800_918_615_557_47,
    -7.992_771_707_568_823,
    1.025_137_723_295_662,
];
const H3: [f64; 5] = [
    -0.676_280_339_280_125_3,
    6.087_714_651_680_015,
    16.430_843_208_924_78,
    24.767_225_114_183_86,
    -6.594_389_125_716_872,
];

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
    /// Stages, stage-major (6 for Rodas4, 3 for Rosenbrock23).
    k: Vec<f64>,
    g: Vec<f64>,
    fk: Vec<f64>,
    rhs: Vec<f64>,
    pub u1: Vec<f64>,
    /// `f(t + h, u_{n+1})` for FSAL methods.
    pub f1: Vec<f64>,
    /// The two dense-output vectors of the step.
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
            k: vec![0.0; 6 * n],
            g: vec![0.0; n],
            fk: vec![0.0; n],
            rhs: vec![0.0; n],
            u1: vec![0.0; n],
            f1: vec![0.0; n],
            dense: vec![0.0; 2 * n],
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
        for i in 0..n {
            b[i] = jac[i * n..(i + 1) * n]
                .iter()
                .zip(a.iter())
                .map(|(j, x)| j * x)
                .sum();
        }
        if b.iter().any(|x| !x.is_finite()) {
            return inf_norm;
        }
        let m = b.iter().fold(0.0, |m: f64, x| m.max(x.abs()));
        if m == 0.0 {
            return 0.0;
        }
        scale *= m;
        if !(1e-100..=1e100).contains(&scale) {
            log_scale += scale.ln();
            scale = 1.0;
        }
        for (x, y) in a.iter_mut().zip(b.iter()) {
            *x = y / m;
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

/// `out = u + Σ_j w_j k_j`.
fn combine(u: &[f64], w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    out.copy_from_slice(u);
    for (j, wj) in w.iter().enumerate() {
        for (o, kj) in out.iter_mut().zip(&k[j * n..(j + 1) * n]) {
            *o += wj * kj;
        }
    }
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
        Scheme::Rodas4 => GAMMA,
    };
    r.lu_factorizations = 1;
    if !factor(w, h * gamma) {
        return r;
    }
    match m.scheme {
        Scheme::Rosenbrock23 => r23_stages(f, t, u, h, f0, w, &mut r.nfe),
        Scheme::Rodas4 => rodas4_stages(f, t, u, h, f0, w, &mut r.nfe),
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

fn rodas4_stages<F: VectorField + ?Sized>(
    f: &mut F,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    w: &mut RosWork,
    nfe: &mut u32,
) {
    let n = w.n;
    let hg = h * GAMMA;
    let lu = &w.lu;
    for s in 0..6 {
        // Stage argument and its derivative.
        if s == 0 {
            w.fk.copy_from_slice(f0);
        } else if s < 5 {
            combine(u, A[s - 1], &w.k, n, &mut w.g);
            let c = if s == 4 { 1.0 } else { C[s - 1] };
            f.eval(t + c * h, &w.g, &mut w.fk);
            *nfe += 1;
        } else {
            // Stage 6 starts from stage 5's argument plus k5 (stiffly accurate form).
            for i in 0..n {
                w.g[i] += w.k[4 * n + i];
            }
            f.eval(t + h, &w.g, &mut w.fk);
            *nfe += 1;
        }
        // rhs = hγ (F + h d_s f_t + Σ_j C_sj/h k_j)
        let ds = D.get(s).copied().unwrap_or(0.0);
        // C_sj/h once per stage, not per component (the same quotients).
        let mut ch = [0.0; 5];
        let cs = if s > 0 { CC[s - 1] } else { &[] };
        for (q, c) in ch.iter_mut().zip(cs) {
            *q = c / h;
        }
        for i in 0..n {
            let mut acc = w.fk[i] + h * ds * w.dfdt[i];
            for (j, q) in ch[..cs.len()].iter().enumerate() {
                acc += q * w.k[j * n + i];
            }
            w.rhs[i] = hg * acc;
        }
        let ks = &mut w.k[s * n..(s + 1) * n];
        ks.copy_from_slice(&w.rhs);
        lu.solve(ks, &mut w.lu_tmp);
    }
    for i in 0..n {
        let k6 = w.k[5 * n + i];
        w.u1[i] = w.g[i] + k6;
        w.rhs[i] = k6;
        let (mut d1, mut d2) = (0.0, 0.0);
        for j in 0..5 {
            d1 += H2[j] * w.k[j * n + i];
            d2 += H3[j] * w.k[j * n + i];
        }
        w.dense[i] = d1;
        w.dense[n + i] = d2;
    }
}

/// Dense output of a Rosenbrock step at `t_n + θh` from `u0`, `u1` and the step's two dense
/// vectors.
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
    let th = theta;
    for i in 0..n {
        let (d1, d2) = (d[i], d[n + i]);
        out[i] = match m.scheme {
            Scheme::Rosenbrock23 => u0[i] + th * (1.0 - th) * d1 + th * (th - 2.0 * R23_D) * d2,
            Scheme::Rodas4 => u0[i] + th * (u1[i] - u0[i] + (1.0 - th) * (d1 + th * d2)),
        };
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
