//! Step-size control: the PID controller and the automatic initial step.
//!
//! PID controller (Söderlind; Hairer–Wanner II, IV.2; the parametrisation of diffrax's
//! `PIDController`): with `q = embedded order + 1` and the gains of [`StepControl`],
//! `β1 = (p + i + d)/q`, `β2 = −(p + 2d)/q`, `β3 = d/q`, an accepted step with estimate `E_n`
//! (previous accepted `E_{n−1}`, `E_{n−2}`, each floored at and initially 1e-4) scales `h` by
//! `clamp(safety · E_n^(−β1) · E_{n−1}^(−β2) · E_{n−2}^(−β3), min_factor, max_factor)` — by
//! at most `first_max_factor` after the first accepted step (as CVODE's `etamx1`: an easy field
//! ramps up from its cautious first step at once), by at most 1 right after a rejection — and
//! `|h|` never exceeds `max_dt`. A rejected step (`E > 1`, or not finite) scales `h` by
//! `clamp(safety · E^(−1/q), min_factor, 1)`. The defaults `p = 0.4, i = 0.3, d = 0` are the
//! PI gains OrdinaryDiffEq uses (`β1 = 0.7/q`, `β2 = −0.4/q`); `p = 0, i = 1` is the
//! classical integral controller (diffrax's default).

use serde::{Deserialize, Serialize};

use super::field::VectorField;
use super::tableau::Tableau;

/// The first steps' stand-in for `E_{n−1}` and `E_{n−2}`, and their floor.
const E_PREV_INIT: f64 = 1e-4;

/// The controller's gains and limits: the `solve` clause's `pcoeff`, `icoeff`, `dcoeff`,
/// `safety`, `min_factor`, `max_factor`, `first_max_factor`, `max_dt` (`docs/solvers.md`,
/// "Step-size control"). Valid values: [`StepControl::check`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepControl {
    /// Proportional, integral and derivative gains (diffrax's names).
    pub pcoeff: f64,
    pub icoeff: f64,
    pub dcoeff: f64,
    /// The factor in front of every step-size update, in (0, 1].
    pub safety: f64,
    /// The smallest and largest factor one step may change `h` by.
    pub min_factor: f64,
    pub max_factor: f64,
    /// The largest factor after the first accepted step (at least `max_factor`).
    pub first_max_factor: f64,
    /// The largest step size; `None`: the span.
    pub max_dt: Option<f64>,
}

impl Default for StepControl {
    fn default() -> StepControl {
        StepControl {
            pcoeff: 0.4,
            icoeff: 0.3,
            dcoeff: 0.0,
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 10.0,
            first_max_factor: 1e4,
            max_dt: None,
        }
    }
}

impl StepControl {
    /// The names of the `solve` clause options, in the order of the fields.
    pub const OPTIONS: [&'static str; 8] = [
        "pcoeff",
        "icoeff",
        "dcoeff",
        "safety",
        "min_factor",
        "max_factor",
        "first_max_factor",
        "max_dt",
    ];

    /// Sets the option `name` (one of [`StepControl::OPTIONS`]); `false` for another name.
    pub fn set(&mut self, name: &str, v: f64) -> bool {
        match name {
            "pcoeff" => self.pcoeff = v,
            "icoeff" => self.icoeff = v,
            "dcoeff" => self.dcoeff = v,
            "safety" => self.safety = v,
            "min_factor" => self.min_factor = v,
            "max_factor" => self.max_factor = v,
            "first_max_factor" => self.first_max_factor = v,
            "max_dt" => self.max_dt = Some(v),
            _ => return false,
        }
        true
    }

    /// Why these settings cannot control a solve, naming the options at fault: every value
    /// finite; `safety` in (0, 1]; `0 < min_factor < 1 < max_factor ≤ first_max_factor`;
    /// `max_dt > 0`; a positive `β1` (so a larger error never gives a larger step).
    pub fn check(&self) -> Result<(), (&'static [&'static str], String)> {
        let c = self;
        // `to_values` lists the settings in the order of `OPTIONS`, so a position names one.
        if let Some(i) = c.to_values().iter().position(|v| !v.is_finite()) {
            let name = &Self::OPTIONS[i..=i];
            return Err((name, format!("`{}` must be finite", name[0])));
        }
        if !(c.safety > 0.0 && c.safety <= 1.0) {
            return Err((&["safety"], "`safety` must be in (0, 1]".into()));
        }
        if !(c.min_factor > 0.0 && c.min_factor < 1.0) {
            return Err((&["min_factor"], "`min_factor` must be in (0, 1)".into()));
        }
        if c.max_factor <= 1.0 {
            return Err((
                &["max_factor"],
                "`max_factor` must be greater than 1".into(),
            ));
        }
        if c.first_max_factor < c.max_factor {
            return Err((
                &["first_max_factor", "max_factor"],
                format!(
                    "`first_max_factor` = {} is smaller than `max_factor` = {}",
                    c.first_max_factor, c.max_factor
                ),
            ));
        }
        if c.max_dt.is_some_and(|d| d <= 0.0) {
            return Err((&["max_dt"], "`max_dt` must be positive".into()));
        }
        if c.pcoeff + c.icoeff + c.dcoeff <= 0.0 {
            return Err((
                &["pcoeff", "icoeff", "dcoeff"],
                format!(
                    "`pcoeff + icoeff + dcoeff` = {} must be positive: otherwise a larger error \
                     would not give a smaller step",
                    c.pcoeff + c.icoeff + c.dcoeff
                ),
            ));
        }
        Ok(())
    }

    /// The settings as numbers, in the order of [`StepControl::OPTIONS`] (`max_dt` last, only
    /// when set): what a standalone binary stores, as bit patterns (`app::build::Meta`).
    pub fn to_values(&self) -> Vec<f64> {
        let c = self;
        let mut v = vec![
            c.pcoeff,
            c.icoeff,
            c.dcoeff,
            c.safety,
            c.min_factor,
            c.max_factor,
            c.first_max_factor,
        ];
        v.extend(c.max_dt);
        v
    }

    /// The settings [`StepControl::to_values`] wrote; `None` for a list of another length.
    pub fn from_values(v: &[f64]) -> Option<StepControl> {
        let &[
            pcoeff,
            icoeff,
            dcoeff,
            safety,
            min_factor,
            max_factor,
            first_max_factor,
            ref rest @ ..,
        ] = v
        else {
            return None;
        };
        (rest.len() <= 1).then(|| StepControl {
            pcoeff,
            icoeff,
            dcoeff,
            safety,
            min_factor,
            max_factor,
            first_max_factor,
            max_dt: rest.first().copied(),
        })
    }

    /// `h` with its size capped at `max_dt`.
    #[inline]
    pub fn limit(&self, h: f64) -> f64 {
        match self.max_dt {
            Some(d) if h.abs() > d => d.copysign(h),
            _ => h,
        }
    }
}

pub(crate) struct Controller {
    q: f64,
    /// `β1`, `β2`, `β3`, divided by `q` once (divisions a step otherwise).
    b1: f64,
    b2: f64,
    b3: f64,
    /// `ln E_{n−1}` and `ln E_{n−2}` (floored at `ln 1e-4`): kept as logarithms so an
    /// accepted step costs one `ln` and one `exp` instead of three `pow` (which were a tenth
    /// of a small system's step).
    ln_e_prev: f64,
    ln_e_prev2: f64,
    rejected_last: bool,
    /// The factor cap of the next accepted step: `first_max_factor`, then `max_factor`.
    cap: f64,
    c: StepControl,
}

impl Controller {
    pub fn new(tab: &Tableau, c: &StepControl) -> Controller {
        Controller::with_q(tab.embedded_order.unwrap_or(tab.order) + 1, c)
    }

    /// A controller for an error estimate of order `O(h^q)`.
    pub fn with_q(q: u32, c: &StepControl) -> Controller {
        let q = f64::from(q);
        let (p, i, d) = (c.pcoeff, c.icoeff, c.dcoeff);
        Controller {
            q,
            b1: (p + i + d) / q,
            b2: -(p + 2.0 * d) / q,
            b3: d / q,
            ln_e_prev: E_PREV_INIT.ln(),
            ln_e_prev2: E_PREV_INIT.ln(),
            rejected_last: false,
            cap: c.first_max_factor,
            c: *c,
        }
    }

    /// The next signed step after an accepted step `h` with estimate `e` (≤ 1).
    #[inline]
    pub fn accepted(&mut self, h: f64, e: f64) -> f64 {
        let fac = self.accept(e);
        self.c.limit(h * fac)
    }

    /// The retry's signed step after a rejected step `h` with estimate `e`.
    #[inline]
    pub fn rejected(&mut self, h: f64, e: f64) -> f64 {
        h * self.reject(e)
    }

    /// The factor for the next step after an accepted step with estimate `e` (≤ 1).
    #[inline]
    fn accept(&mut self, e: f64) -> f64 {
        // E^(−β1)·E_prev^(−β2)·E_prev2^(−β3) = exp(−β1 ln E − β2 ln E_prev − β3 ln E_prev2);
        // E = 0 gives exp(+∞) = ∞, clamped to the cap as the power form is. (Polynomial
        // ln/exp of 1e-12 accuracy were slower than libm's table-driven ones: their Horner
        // chains are serial.)
        let ln_e = e.ln();
        let history = self.b2 * self.ln_e_prev + self.b3 * self.ln_e_prev2;
        let mut fac =
            (self.c.safety * (-self.b1 * ln_e - history).exp()).clamp(self.c.min_factor, self.cap);
        if fac.is_nan() {
            fac = 1.0;
        }
        if self.rejected_last {
            fac = fac.min(1.0);
        }
        self.ln_e_prev2 = self.ln_e_prev;
        self.ln_e_prev = ln_e.max(E_PREV_INIT.ln());
        self.rejected_last = false;
        self.cap = self.c.max_factor;
        fac
    }

    /// The factor for retrying after a rejected step with estimate `e` (> 1 or not finite).
    #[inline]
    fn reject(&mut self, e: f64) -> f64 {
        self.rejected_last = true;
        let fac = self.c.safety * e.powf(-1.0 / self.q);
        if fac.is_finite() {
            fac.clamp(self.c.min_factor, 1.0)
        } else {
            self.c.min_factor
        }
    }
}

/// Hairer–Wanner's initial step (I, II.4, "Starting step size"): `h0 = 0.01·d0/d1` from the
/// scaled norms of `u0` and `f0`, an explicit Euler probe for the second derivative `d2`, then
/// `h1 = (0.01 / max(d1, d2))^(1/order)`; returns `min(100·h0, h1, |t1 − t0|)` with the sign of
/// `t1 − t0` — the whole span where `f` is negligible at both points (see
/// [`InitialProbe::finish`]). Costs one evaluation (returned second). The caller caps it at
/// `max_dt` ([`StepControl::limit`]).
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
        let h = if dmax <= 1e-15 {
            // f is negligible at both points (it moves u by under 1e-15 tolerances per unit
            // time): the whole span, which is the formula's own limit as d1, d2 → 0 (h0 and
            // h1 grow without bound). Hairer–Wanner take max(1e-6, h0·1e-3) here, which costs
            // a field that is identically zero seven steps to cross [0, 1]; the step's error
            // estimate judges the long step as it judges any other.
            self.span
        } else if !dmax.is_finite() {
            (h0 * 1e-3).max(1e-6).min(self.span)
        } else {
            let h1 = (0.01 / dmax).powf(1.0 / f64::from(self.order));
            (100.0 * h0).min(h1).min(self.span)
        };
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

    /// The logarithmic form equals the textbook PID factor
    /// `safety·E^(−β1)·E_prev^(−β2)·E_prev2^(−β3)` (history floored at 1e-4, clamped) to 1e-13
    /// (libm's ln and exp each within an ulp, times the exponents' size) over the estimates a
    /// solve meets (1e-12 … 1), for the default PI gains and a PID setting; an exact 0 gives the
    /// cap (`first_max_factor` on the first step, `max_factor` after), and a step right after a
    /// rejection grows by at most 1.
    #[test]
    fn accept_matches_the_power_form() {
        let pid = StepControl {
            pcoeff: 0.3,
            icoeff: 0.4,
            dcoeff: 0.1,
            safety: 0.8,
            ..StepControl::default()
        };
        for c in [StepControl::default(), pid] {
            let q = 5.0;
            let b1 = (c.pcoeff + c.icoeff + c.dcoeff) / q;
            let b2 = -(c.pcoeff + 2.0 * c.dcoeff) / q;
            let b3 = c.dcoeff / q;
            let reference = |e: f64, prev: f64, prev2: f64, cap: f64| {
                let (prev, prev2) = (prev.max(E_PREV_INIT), prev2.max(E_PREV_INIT));
                (c.safety * e.powf(-b1) * prev.powf(-b2) * prev2.powf(-b3)).clamp(c.min_factor, cap)
            };
            let estimates = [1.0, 0.9, 0.5, 0.1, 3e-2, 1e-3, 1e-4, 2e-5, 1e-8, 1e-12];
            let mut ctrl = Controller::with_q(5, &c);
            let (mut prev, mut prev2) = (E_PREV_INIT, E_PREV_INIT);
            let mut cap = c.first_max_factor;
            for &e in estimates.iter().chain(estimates.iter().rev()) {
                let (got, want) = (ctrl.accept(e), reference(e, prev, prev2, cap));
                assert!(
                    (got - want).abs() <= 1e-13 * want,
                    "E = {e}: {got} vs {want}"
                );
                (prev2, prev, cap) = (prev, e, c.max_factor);
            }
            assert_eq!(ctrl.accept(0.0), c.max_factor);
            assert_eq!(ctrl.accept(5e-324), c.max_factor);
            assert_eq!(Controller::with_q(4, &c).accept(0.0), c.first_max_factor);
            assert_eq!(Controller::with_q(4, &c).accept(f64::NAN), 1.0);
            ctrl.reject(2.0);
            assert!(ctrl.accept(1e-6) <= 1.0);
        }
    }

    /// `max_dt` caps accepted steps in either direction; a rejection shrinks by at least
    /// `min_factor` and never grows.
    #[test]
    fn limits_hold() {
        let c = StepControl {
            max_dt: Some(0.5),
            min_factor: 0.25,
            ..StepControl::default()
        };
        let mut ctrl = Controller::with_q(5, &c);
        assert_eq!(ctrl.accepted(0.1, 0.0), 0.5);
        assert_eq!(ctrl.accepted(-0.1, 0.0), -0.5);
        assert_eq!(ctrl.rejected(1.0, 1e30), 0.25);
        assert!(ctrl.rejected(1.0, 1.0 + 1e-9) <= 1.0);
        assert_eq!(ctrl.rejected(1.0, f64::NAN), 0.25);
    }

    /// The `solve` clause offers every option of the controller (the registry's list is the
    /// one the checker reads; this one names the fields).
    #[test]
    fn the_registry_lists_every_option() {
        for o in StepControl::OPTIONS {
            assert!(super::super::registry::OPTIONS.contains(&o), "{o}");
            assert!(StepControl::default().set(o, 2.0), "{o}");
        }
        assert!(!StepControl::default().set("rtol", 2.0));
    }

    /// A standalone binary's copy of the settings is the settings, with and without `max_dt`.
    #[test]
    fn values_round_trip() {
        let with = StepControl {
            dcoeff: 0.1,
            max_dt: Some(0.25),
            ..StepControl::default()
        };
        for c in [StepControl::default(), with] {
            assert_eq!(StepControl::from_values(&c.to_values()), Some(c));
        }
        assert_eq!(StepControl::from_values(&[1.0; 6]), None);
        assert_eq!(StepControl::from_values(&[1.0; 9]), None);
    }

    /// Each invalid setting is refused, naming its option.
    #[test]
    fn check_names_the_option_at_fault() {
        let bad = |f: fn(&mut StepControl)| {
            let mut c = StepControl::default();
            f(&mut c);
            c.check().err().map(|(names, _)| names[0])
        };
        assert_eq!(StepControl::default().check(), Ok(()));
        assert_eq!(bad(|c| c.safety = 1.5), Some("safety"));
        assert_eq!(bad(|c| c.safety = 0.0), Some("safety"));
        assert_eq!(bad(|c| c.min_factor = 1.0), Some("min_factor"));
        assert_eq!(bad(|c| c.max_factor = 1.0), Some("max_factor"));
        assert_eq!(bad(|c| c.first_max_factor = 5.0), Some("first_max_factor"));
        assert_eq!(bad(|c| c.max_dt = Some(0.0)), Some("max_dt"));
        assert_eq!(bad(|c| c.icoeff = -0.7), Some("pcoeff"));
        assert_eq!(bad(|c| c.dcoeff = f64::INFINITY), Some("dcoeff"));
    }
}
