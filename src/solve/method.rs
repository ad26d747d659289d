//! Which solver runs: an explicit tableau, a Rosenbrock method, or `auto`, which starts
//! explicit and switches to the stiff method while the problem is stiff.
//!
//! `auto` follows OrdinaryDiffEq's `AutoSwitch` (as in `AutoTsit5(Rosenbrock23())`): after
//! every accepted step it tests `|h_j|·S_j > 0.9 · stability size` of the explicit method
//! (`S_j` is the explicit method's stage-pair estimate while explicit, `‖J‖∞` while stiff).
//! While explicit, positive tests are counted and the count is cleared only by
//! [`NONSTIFF_RESET`] negative tests in a row (Hairer's DOPRI5 rule: at the stability limit
//! the PI controller oscillates around `h·S ≈ stability size`, so single negative tests are
//! noise); more than [`MAX_STIFF_STEPS`] positives switch to the stiff method (the next step
//! ×2). While stiff, more than [`MAX_NONSTIFF_STEPS`] negative tests in a row switch back
//! (the next step ÷2); a positive test clears that count. The counters are the hysteresis:
//! one odd step never flips the method.

use super::registry;
use super::rosenbrock::{RODAS5P, ROSENBROCK23, Rosenbrock};
use super::tableau::{TSIT5, Tableau};

/// What the ODE driver runs: a registry row ([`registry::Method`], what the checker and the
/// command line name) resolved for a tolerance by [`registry::Method::solver`] (`auto`'s stiff
/// partner depends on `rtol`).
#[derive(Clone, Copy, Debug)]
pub enum Method {
    Explicit(&'static Tableau),
    Rosenbrock(&'static Rosenbrock),
    Auto {
        explicit: &'static Tableau,
        stiff: &'static Rosenbrock,
    },
}

/// Positive stiffness tests in a row (more than this) that switch `auto` to the stiff method.
pub const MAX_STIFF_STEPS: i32 = 10;
/// Negative tests in a row (more than this) that switch `auto` back.
pub const MAX_NONSTIFF_STEPS: i32 = 3;
/// Negative tests in a row that clear the explicit method's stiff count.
pub const NONSTIFF_RESET: i32 = 6;
/// `|h|·S` above this fraction of the explicit method's stability size counts as stiff.
pub const STIFF_FRACTION: f64 = 0.9;
pub(crate) const SWITCH_DT_FACTOR: f64 = 2.0;
/// `auto` pairs with Rodas5P below this rtol, with Rosenbrock23 at or above it.
pub const AUTO_RODAS_BELOW_RTOL: f64 = 1e-4;

impl Method {
    /// `auto` for a tolerance: Tsit5 with Rodas5P (order 5) for tight tolerances, with
    /// Rosenbrock23 (order 2, cheaper steps) for loose ones. Rodas5P rather than Rodas4:
    /// measured on Robertson at rtol 1e-4 … 1e-10 it takes 26–81 % fewer steps and less
    /// time at every tolerance (docs/solvers.md), as in OrdinaryDiffEq's default choice.
    pub fn auto(rtol: f64) -> Method {
        Method::Auto {
            explicit: &TSIT5,
            stiff: if rtol < AUTO_RODAS_BELOW_RTOL {
                &RODAS5P
            } else {
                &ROSENBROCK23
            },
        }
    }

    /// An ODE method by its model-file name (`auto` resolved for `rtol`): the registry's
    /// row, as [`registry::Method::solver`] runs it.
    pub fn from_name(name: &str, rtol: f64) -> Option<Method> {
        registry::Method::from_name(name)?.solver(rtol)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Method::Explicit(t) => t.name,
            Method::Rosenbrock(m) => m.name,
            Method::Auto { .. } => "auto",
        }
    }

    pub fn is_adaptive(&self) -> bool {
        match self {
            Method::Explicit(t) => t.is_adaptive(),
            _ => true,
        }
    }

    /// The explicit and the stiff part.
    pub fn parts(&self) -> (Option<&'static Tableau>, Option<&'static Rosenbrock>) {
        match *self {
            Method::Explicit(t) => (Some(t), None),
            Method::Rosenbrock(m) => (None, Some(m)),
            Method::Auto { explicit, stiff } => (Some(explicit), Some(stiff)),
        }
    }
}

/// The switching state of `auto`: stiff tests counted (explicit mode) and non-stiff tests in
/// a row.
#[derive(Debug, Default)]
pub(crate) struct AutoSwitch {
    stiff: i32,
    nonstiff: i32,
}

impl AutoSwitch {
    /// Records one accepted step; `Some(true)`: switch to the stiff method, `Some(false)`:
    /// switch to the explicit one.
    pub fn observe(&mut self, in_stiff: bool, h_lambda: f64, stability_size: f64) -> Option<bool> {
        let stiff = h_lambda > STIFF_FRACTION * stability_size;
        if stiff {
            self.stiff = self.stiff.saturating_add(1);
            self.nonstiff = 0;
        } else {
            self.nonstiff = self.nonstiff.saturating_add(1);
            if !in_stiff && self.nonstiff >= NONSTIFF_RESET {
                self.stiff = 0;
            }
        }
        if !in_stiff && self.stiff > MAX_STIFF_STEPS {
            *self = AutoSwitch::default();
            Some(true)
        } else if in_stiff && self.nonstiff > MAX_NONSTIFF_STEPS {
            *self = AutoSwitch::default();
            Some(false)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis() {
        let mut s = AutoSwitch::default();
        // Ten stiff steps are not enough; single misses do not clear the count, six do.
        for _ in 0..10 {
            assert_eq!(s.observe(false, 4.0, 3.5), None);
            assert_eq!(s.observe(false, 1.0, 3.5), None);
        }
        assert_eq!(s.observe(false, 4.0, 3.5), Some(true));
        for _ in 0..10 {
            assert_eq!(s.observe(false, 4.0, 3.5), None);
        }
        for _ in 0..6 {
            assert_eq!(s.observe(false, 1.0, 3.5), None);
        }
        for _ in 0..10 {
            assert_eq!(s.observe(false, 4.0, 3.5), None);
        }
        assert_eq!(s.observe(false, 4.0, 3.5), Some(true));
        // Back: more than three non-stiff steps in a row; a stiff one clears the count.
        for _ in 0..3 {
            assert_eq!(s.observe(true, 1.0, 3.5), None);
        }
        assert_eq!(s.observe(true, 4.0, 3.5), None);
        for _ in 0..3 {
            assert_eq!(s.observe(true, 1.0, 3.5), None);
        }
        assert_eq!(s.observe(true, 1.0, 3.5), Some(false));
    }

    #[test]
    fn names() {
        assert_eq!(
            Method::from_name("rodas4", 1e-6).map(|m| m.name()),
            Some("rodas4")
        );
        assert_eq!(
            Method::from_name("tsit5", 1e-6).map(|m| m.name()),
            Some("tsit5")
        );
        assert!(matches!(
            Method::from_name("auto", 1e-8),
            Some(Method::Auto { stiff, .. }) if stiff.name == "rodas5p"
        ));
        assert_eq!(
            Method::from_name("rodas5p", 1e-6).map(|m| m.name()),
            Some("rodas5p")
        );
        assert!(matches!(
            Method::from_name("auto", 1e-3),
            Some(Method::Auto { stiff, .. }) if stiff.name == "rosenbrock23"
        ));
        assert!(Method::from_name("euler_maruyama", 1e-3).is_none());
    }
}
