//! The stiffness estimate `S_j` of the adaptive SDE methods (SRI: sriw1, sosri; SRA: sra1,
//! sosra), recorded per accepted step like the ODE solver's and read by the `stiffness`
//! regularizer (SRNODE, `R_S = Σ_j S_j |h_j|`).
//!
//! Definition (DESIGN.md, "Regularizers"; Hairer–Wanner II p. 22): a secant of the drift over
//! two arguments at ONE time `s`. By the mean value theorem
//! `f(s, x_q) − f(s, x_p) = J̄ (x_q − x_p)` with `J̄` the drift Jacobian `∂f/∂u` averaged on the
//! segment, so `‖f(s, x_q) − f(s, x_p)‖ / ‖x_q − x_p‖` estimates the magnitude of `J` along
//! `x_q − x_p` (exactly `|λ|` for `f = λu + b(t)`). At two times `s_p ≠ s_q` the numerator
//! gains `(s_q − s_p)·∂f/∂t`, `O(h)` like the denominator's drift part, so the error does not
//! vanish as `h → 0`: the same abscissa is what makes the secant honest.
//!
//! The tableaux have no such pair among their stages: SRIW1's `c0 = (0, ¾, 0, 0)`, and its
//! stages 2 and 3 reuse `f(t_n, u_n)` (their arguments are `u_n` itself: a pair of them is
//! 0/0); SOSRI's `c0 ≈ (0, −0.042, 0.790, 3.750)`, SRA1's `(0, ¾)`, SOSRA's `(0, 0.692, 1)`
//! are distinct. So, with the tableau's `stiffness_pair` `(p, q)`, `H0_s` the stage arguments
//! and `f_s = f(t_n + c0_s h, H0_s)`:
//!
//! ```text
//! S_j = ‖f(t_n + c0_p h, H0_q) − f_p‖ / ‖H0_q − H0_p‖
//! ```
//!
//! stage `q`'s argument taken to stage `p`'s abscissa (`p = 0` in every tableau: `t_n`, `u_n`).
//! Where the drift does not read `t` ([`SdeField::drift_reads_t`], from the IR) that value is
//! `f_q` bit for bit and costs nothing; otherwise it is one more drift evaluation per accepted
//! step, counted in the step's `nfe`. It is spent only when [`SdeOptions::stiffness`] asks
//! (the default; the trainer asks only when the objective has a global `stiffness` term):
//! about one evaluation in seven (SRIW1 spends 6 a step), paid by time-dependent drifts only.
//!
//! `q` is the stage whose argument lies farthest from `u_n` (largest `c0`; SOSRI's 3.75,
//! SOSRA's 1): the larger `‖H0_q − H0_p‖`, the smaller the rounding of both differences
//! relative to them. The pair is fixed per tableau, so `S_j` is one smooth function of the
//! stage values (a pair chosen per step would jump). SOSRA's stage at `c0 = 1` could pair with
//! the next step's `f(t_{n+1}, u_{n+1})` for free, FSAL-like, but that ties step `j`'s estimate
//! to the next step's first evaluation (the last step would still pay one, and the abscissae
//! `t_n + 1·h` and `t_{n+1}` may differ in the last bit); one rule serves all four methods.
//!
//! `S_j = 0` when the two arguments coincide (0/0; e.g. drift and diffusion vanishing at
//! `u_n`), as in the ODE solver. Euler–Maruyama, Euler–Heun and Milstein have no estimate.
//!
//! [`SdeOptions::stiffness`]: super::SdeOptions::stiffness

use super::field::SdeField;
use super::method::SdeMethod;
use super::step::Work;
use crate::solve::step::quotient;

/// `‖ka − kb‖ / ‖xa − xb‖`, 0 when `xa = xb`: the ODE step's quotient.
pub(crate) fn secant(ka: &[f64], kb: &[f64], xa: &[f64], xb: &[f64]) -> f64 {
    quotient(xa.len(), |m| ka[m] - kb[m], |m| xa[m] - xb[m])
}

/// The method's stage pair `(p, q)`; `None` for the methods without an estimate.
pub(crate) fn stiffness_pair(method: SdeMethod) -> Option<(usize, usize)> {
    match method {
        SdeMethod::Sri(tab) => Some(tab.stiffness_pair),
        SdeMethod::Sra(tab) => Some(tab.stiffness_pair),
        SdeMethod::EulerMaruyama | SdeMethod::EulerHeun | SdeMethod::Milstein => None,
    }
}

/// Stage `s`'s drift row: `A0_s`, `B0_s` (`H0_s = u + h Σ A0_sj f_j + χ2 Σ B0_sj g_j`) and
/// `c0_s`.
pub(crate) fn drift_row(
    method: SdeMethod,
    s: usize,
) -> Option<(&'static [f64], &'static [f64], f64)> {
    match method {
        SdeMethod::Sri(tab) => Some((&tab.a0[s][..s], &tab.b0[s][..s], tab.c0[s])),
        SdeMethod::Sra(tab) => Some((&tab.a0[s][..s], &tab.b0[s][..s], tab.c0[s])),
        SdeMethod::EulerMaruyama | SdeMethod::EulerHeun | SdeMethod::Milstein => None,
    }
}

/// `S_j` of the step from `t` of size `h` whose stages `w` holds; leaves the pair's second
/// drift value `f(t + c0_p h, H0_q)` in `w.fx`. Returns `S_j` and the evaluations spent (1 when
/// the drift reads `t`, else 0), `None` for a method without an estimate.
pub(crate) fn stiffness_estimate<S: SdeField + ?Sized>(
    method: SdeMethod,
    field: &mut S,
    t: f64,
    h: f64,
    w: &mut Work,
) -> Option<(f64, u32)> {
    let (at, q) = stiffness_point(method, t, h, w.fx.len())?;
    let nfe = if field.drift_reads_t() {
        field.drift(at, &w.h0[q], &mut w.fx);
        1
    } else {
        w.fx.copy_from_slice(&w.fs[q]);
        0
    };
    Some((stiffness_secant(method, w)?, nfe))
}

/// Where `S_j`'s second drift value is taken for the step `(t, h)` of an `n`-component state:
/// stage `p`'s abscissa, computed as the stepper computed it, and stage `q`'s range in
/// `Work::h0` (its argument) and `Work::fs` (its drift value, the estimate's value when the
/// drift does not read `t`); `None` for a method without an estimate.
pub(crate) fn stiffness_point(
    method: SdeMethod,
    t: f64,
    h: f64,
    n: usize,
) -> Option<(f64, std::ops::Range<usize>)> {
    let (p, q) = stiffness_pair(method)?;
    let (_, _, cp) = drift_row(method, p)?;
    Some((t + cp * h, q * n..(q + 1) * n))
}

/// `S_j` once `w.fx` holds the drift at [`stiffness_point`].
pub(crate) fn stiffness_secant(method: SdeMethod, w: &Work) -> Option<f64> {
    let (p, q) = stiffness_pair(method)?;
    let n = w.fx.len();
    let (hp, hq) = (p * n..(p + 1) * n, q * n..(q + 1) * n);
    Some(secant(&w.fs[hp.clone()], &w.fx, &w.h0[hp], &w.h0[hq]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::sde::method::{SOSRA, SOSRI, SRA1, SRIW1};
    use crate::solve::sde::{NoiseMap, sde_from_fn, sde_step};

    /// `du = (λu + βt) dt + σu dW` (SRI) or `+ σ dW` (SRA): the secant at one abscissa is
    /// `|λ|` up to rounding; the same two stages without it are off by `β(c0_q − c0_p)h / ΔH`.
    #[test]
    fn the_secant_at_one_abscissa_is_exact_on_a_linear_drift() {
        let (lam, beta, sigma) = (-3.0, 40.0, 0.3);
        for method in [
            SdeMethod::Sri(&SRIW1),
            SdeMethod::Sri(&SOSRI),
            SdeMethod::Sra(&SRA1),
            SdeMethod::Sra(&SOSRA),
        ] {
            let additive = matches!(method, SdeMethod::Sra(_));
            let mut field = sde_from_fn(
                NoiseMap::diagonal(2),
                move |t, u: &[f64], du: &mut [f64]| {
                    for i in 0..2 {
                        du[i] = lam * u[i] + beta * t;
                    }
                },
                move |_t, u: &[f64], g: &mut [f64]| {
                    for i in 0..2 {
                        g[i] = if additive { sigma } else { sigma * u[i] };
                    }
                },
            );
            let (t, h, u) = (0.5, 0.05, [1.0, -0.7]);
            let mut w = Work::new(2);
            w.dw.copy_from_slice(&[0.1, -0.05]);
            w.i10.copy_from_slice(&[0.002, -0.001]);
            let (mut f0, mut g0) = ([0.0; 2], [0.0; 2]);
            field.drift(t, &u, &mut f0);
            field.diffusion(t, &u, &mut g0);
            sde_step(method, &mut field, t, &u, h, &f0, &g0, &mut w);
            let (s, nfe) = stiffness_estimate(method, &mut field, t, h, &mut w).expect("adaptive");
            assert_eq!(nfe, 1, "{}: the drift reads t", method.name());
            assert!((s - lam.abs()).abs() <= 1e-10, "{}: {s}", method.name());
            let (p, q) = stiffness_pair(method).expect("pair");
            let r = |s: usize| s * 2..(s + 1) * 2;
            let naive = secant(&w.fs[r(p)], &w.fs[r(q)], &w.h0[r(p)], &w.h0[r(q)]);
            assert!(
                (naive - lam.abs()).abs() > 0.1,
                "{}: the naive secant {naive} is no test",
                method.name()
            );
        }
    }

    /// With `drift_reads_t` false the stage value is reused: no evaluation, the same `S_j`.
    #[test]
    fn an_autonomous_drift_costs_nothing() {
        let drift = |_t: f64, u: &[f64], du: &mut [f64]| du[0] = -2.0 * u[0] + u[0].powi(3);
        let diffusion = |_t: f64, u: &[f64], g: &mut [f64]| g[0] = 0.2 * u[0];
        let method = SdeMethod::Sri(&SOSRI);
        let mut out = Vec::new();
        for autonomous in [false, true] {
            let f = sde_from_fn(NoiseMap::diagonal(1), drift, diffusion);
            let mut f = if autonomous { f.autonomous() } else { f };
            let mut w = Work::new(1);
            w.dw[0] = 0.07;
            w.i10[0] = 0.001;
            let (u, mut f0, mut g0) = ([0.9], [0.0], [0.0]);
            f.drift(0.0, &u, &mut f0);
            f.diffusion(0.0, &u, &mut g0);
            sde_step(method, &mut f, 0.0, &u, 0.1, &f0, &g0, &mut w);
            out.push(stiffness_estimate(method, &mut f, 0.0, 0.1, &mut w).expect("adaptive"));
        }
        assert_eq!(out[0].1, 1);
        assert_eq!(out[1].1, 0);
        assert_eq!(out[0].0, out[1].0);
        assert!(out[0].0 > 0.5, "{out:?}");
    }

    /// Identical arguments (zero drift and diffusion at `u_n`) are 0/0: `S = 0`.
    #[test]
    fn identical_arguments_give_zero() {
        let mut f = sde_from_fn(
            NoiseMap::diagonal(1),
            |_t, u: &[f64], du: &mut [f64]| du[0] = u[0] * u[0],
            |_t, u: &[f64], g: &mut [f64]| g[0] = u[0],
        );
        let method = SdeMethod::Sri(&SRIW1);
        let mut w = Work::new(1);
        w.dw[0] = 0.1;
        sde_step(method, &mut f, 0.0, &[0.0], 0.1, &[0.0], &[0.0], &mut w);
        let (s, _) = stiffness_estimate(method, &mut f, 0.0, 0.1, &mut w).expect("adaptive");
        assert_eq!(s, 0.0);
        assert!(stiffness_estimate(SdeMethod::EulerMaruyama, &mut f, 0.0, 0.1, &mut w).is_none());
    }
}
