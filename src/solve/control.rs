//! Step-size control: the PI controller and the automatic initial step.
//!
//! PI controller (Gustafsson; Hairer–Wanner II, IV.2; the gains OrdinaryDiffEq uses): with
//! `q = embedded order + 1`, `β1 = 0.7/q`, `β2 = 0.4/q`, an accepted step with estimate `E_n`
//! (previous accepted `E_{n−1}`, initially 1e-4) scales `h` by
//! `clamp(0.9 · E_n^(−β1) · E_{n−1}^(β2), 0.2, 10)`, and by at most 1 right after a rejection.
//! A rejected step (`E > 1`, or not finite) scales `h` by `max(0.2, 0.9 · E^(−1/q))`.

use super::field::VectorField;
use super::tableau::Tableau;

pub(crate) const SAFETY: f64 = 0.9;
pub(crate) const FAC_MIN: f64 = 0.2;
pub(crate) const FAC_MAX: f64 = 10.0;
/// The first step's stand-in for `E_{n−1}`.
const E_PREV_INIT: f64 = 1e-4;

pub(crate) struct Controller {
    q: f64,
    /// `β1 = 0.7/q` and `β2 = 0.4/q`, divided once (two divisions a step otherwise).
    b1: f64,
    b2: f64,
    /// `β2 · ln E_{n−1}`: the previous step's factor, kept as a logarithm so an accepted step
    /// costs one `ln` and one `exp` instead of two `pow` (which were a tenth of a small
    /// system's step).
    b2_ln_e_prev: f64,
    rejected_last: bool,
}

impl Controller {
    pub fn new(tab: &Tableau) -> Controller {
        Controller::with_q(tab.embedded_order.unwrap_or(tab.order) + 1)
    }

    /// A controller for an error estimate of order `O(h^q)`.
    pub fn with_q(q: u32) -> Controller {
        let q = f64::from(q);
        Controller {
            q,
            b1: 0.7 / q,
            b2: 0.4 / q,
            b2_ln_e_prev: 0.4 / q * E_PREV_INIT.ln(),
            rejected_last: false,
        }
    }

    /// The factor for the next step after an accepted step with estimate `e` (≤ 1).
    #[inline]
    pub fn accept(&mut self, e: f64) -> f64 {
        let (b1, b2) = (self.b1, self.b2);
        // E^(−β1)·E_prev^(β2) = exp(−β1 ln E + β2 ln E_prev); E = 0 gives exp(+∞) = ∞,
        // clamped to FAC_MAX as the power form is. (Polynomial ln/exp of 1e-12 accuracy
        // were slower than libm's table-driven ones: their Horner chains are serial.)
        let ln_e = e.ln();
        let mut fac = (SAFETY * (self.b2_ln_e_prev - b1 * ln_e).exp()).clamp(FAC_MIN, FAC_MAX);
        if fac.is_nan() {
            fac = 1.0;
        }
        if self.rejected_last {
            fac = fac.min(1.0);
        }
        self.b2_ln_e_prev = b2 * ln_e.max(E_PREV_INIT.ln());
        self.rejected_last = false;
        fac
    }

    /// The factor for retrying after a rejected step with estimate `e` (> 1 or not finite).
    #[inline]
    pub fn reject(&mut self, e: f64) -> f64 {
        self.rejected_last = true;
        let fac = SAFETY * e.powf(-1.0 / self.q);
        if fac.is_finite() {
            fac.clamp(FAC_MIN, 1.0)
        } else {
            FAC_MIN
        }
    }
}

/// Hairer–Wanner's initial step (I, II.4, "Starting step size"): `h0 = 0.01·d0/d1` from the
/// scaled norms of `u0` and `f0`, an explicit Euler probe for the second derivative `d2`, then
/// `h1 = (0.01 / max(d1, d2))^(1/order)`; returns `min(100·h0, h1, |t1 − t0|)` with the sign of
/// `t1 − t0`. Costs one evaluation (returned second).
#[allow(clippy::too_many_arguments)]
pub(crate) fn initial_step<F: VectorField + ?Sized>(
    f: &mut F,
    order: u32,
    t0: f64,
    t1: f64,
    u0: &[f64],
    f0: &[f64],
    tol: (f64, f64),
    scratch: (&mut [f64], &mut [f64]),
) -> (f64, u32) {
    let (u1, f1) = scratch;
    let probe = InitialProbe::new(order, t0, t1, u0, f0, tol, u1);
    f.eval(probe.t(), u1, f1);
    (probe.finish(u0, f0, f1), 1)
}

/// [`initial_step`] in two halves around its one evaluation, for a caller that evaluates many
/// probes in one call (the batched driver): [`InitialProbe::new`] writes the Euler probe's
/// point, [`InitialProbe::finish`] takes `f` there.
pub(crate) struct InitialProbe {
    order: u32,
    t0: f64,
    dir: f64,
    span: f64,
    h0: f64,
    d1: f64,
    tol: (f64, f64),
}

impl InitialProbe {
    /// `h0` from `d0`, `d1`, and the probe point `u0 + h0·f0` in `u1`.
    pub fn new(
        order: u32,
        t0: f64,
        t1: f64,
        u0: &[f64],
        f0: &[f64],
        tol: (f64, f64),
        u1: &mut [f64],
    ) -> InitialProbe {
        let dir = (t1 - t0).signum();
        let span = (t1 - t0).abs();
        let scale = |x: f64| scaled(tol, x);
        let d0 = rms(&mut u0.iter().map(|&u| u / scale(u)));
        let d1 = rms(&mut u0.iter().zip(f0).map(|(&u, &f)| f / scale(u)));
        let h0 = if d0 < 1e-5 || d1 < 1e-5 || !d0.is_finite() || !d1.is_finite() {
            1e-6
        } else {
            0.01 * d0 / d1
        }
        .min(span);
        for ((v, &u), &f) in u1.iter_mut().zip(u0).zip(f0) {
            *v = u + dir * h0 * f;
        }
        InitialProbe {
            order,
            t0,
            dir,
            span,
            h0,
            d1,
            tol,
        }
    }

    /// The probe's time.
    pub fn t(&self) -> f64 {
        self.t0 + self.dir * self.h0
    }

    /// The first step, signed, from `f1 = f(t(), u1)`.
    pub fn finish(&self, u0: &[f64], f0: &[f64], f1: &[f64]) -> f64 {
        let InitialProbe { h0, d1, .. } = *self;
        let d2 = rms(&mut u0
            .iter()
            .zip(f0)
            .zip(f1)
            .map(|((&u, &a), &b)| (b - a) / scaled(self.tol, u)))
            / h0;
        let dmax = d1.max(d2);
        let h1 = if dmax <= 1e-15 || !dmax.is_finite() {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / dmax).powf(1.0 / f64::from(self.order))
        };
        let h = (100.0 * h0).min(h1).min(self.span);
        self.dir * h
    }
}

fn scaled((rtol, atol): (f64, f64), x: f64) -> f64 {
    atol + x.abs() * rtol
}

fn rms(v: &mut dyn Iterator<Item = f64>) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for x in v {
        sum += x * x;
        count += 1;
    }
    if count == 0 {
        0.0
    } else {
        (sum / count as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The logarithmic form equals the textbook `0.9·E^(−β1)·E_prev^(β2)` (clamped) to 1e-13
    /// (libm's ln and exp each within an ulp, times the exponents' size) over the estimates a solve meets (1e-12 … 1), with the first step's stand-in, an
    /// exact 0 (→ the largest factor) and after a rejection (≤ 1).
    #[test]
    fn accept_matches_the_power_form() {
        let q = 5.0;
        let (b1, b2) = (0.7 / q, 0.4 / q);
        let reference = |e: f64, e_prev: f64| {
            (SAFETY * e.powf(-b1) * e_prev.max(E_PREV_INIT).powf(b2)).clamp(FAC_MIN, FAC_MAX)
        };
        let estimates = [1.0, 0.9, 0.5, 0.1, 3e-2, 1e-3, 1e-4, 2e-5, 1e-8, 1e-12];
        let mut c = Controller::with_q(5);
        let mut e_prev = E_PREV_INIT;
        for &e in estimates.iter().chain(estimates.iter().rev()) {
            let (got, want) = (c.accept(e), reference(e, e_prev));
            assert!(
                (got - want).abs() <= 1e-13 * want,
                "E = {e}: {got} vs {want}"
            );
            e_prev = e;
        }
        assert_eq!(c.accept(0.0), FAC_MAX);
        assert_eq!(c.accept(5e-324), FAC_MAX);
        assert_eq!(Controller::with_q(4).accept(f64::NAN), 1.0);
        c.reject(2.0);
        assert!(c.accept(1e-6) <= 1.0);
    }
}
