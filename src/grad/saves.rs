//! Where each saved state of a solution comes from: the initial state, or step `j` at
//! `θ = (t_save − t_j)/h_j` (θ = 1: the step's end state; otherwise its interpolant).
//!
//! Invariant: the assignment is the solver's own (`solve/integrate.rs`): saves equal to `t0`
//! are taken before the first step; every later save belongs to the first step whose end is at
//! or past it; θ is computed the same way, so θ is exactly 1 (or 0) where the solver copied the
//! end (start) state instead of interpolating.

use crate::solve::SolveError;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum SaveAt {
    Start,
    Step { step: usize, theta: f64 },
}

/// The source of each of `ts` for a solve that took the steps `(t_j, h_j)` from `t0`.
pub(crate) fn locate(ts: &[f64], t0: f64, steps: &[(f64, f64)]) -> Result<Vec<SaveAt>, SolveError> {
    let mut out = Vec::with_capacity(ts.len());
    locate_into(ts, t0, steps, &mut out)?;
    Ok(out)
}

/// [`locate`] into `out` (cleared first), for a caller that keeps the buffer. The steps of
/// the entries never decrease, and `Start` entries come first.
pub(crate) fn locate_into(
    ts: &[f64],
    t0: f64,
    steps: &[(f64, f64)],
    out: &mut Vec<SaveAt>,
) -> Result<(), SolveError> {
    out.clear();
    let mut i = 0;
    while i < ts.len() && ts[i] == t0 {
        out.push(SaveAt::Start);
        i += 1;
    }
    let dir = steps.first().map_or(1.0, |&(_, h)| h.signum());
    let mut j = 0;
    for &s in &ts[i..] {
        while j + 1 < steps.len() && (s - steps[j + 1].0) * dir > 0.0 {
            j += 1;
        }
        let Some(&(t, h)) = steps.get(j) else {
            return Err(SolveError::InvalidOption(format!(
                "save time {s} lies outside the solved span"
            )));
        };
        let theta = (s - t) / h;
        if !(-1e-12..=1.0 + 1e-12).contains(&theta) {
            return Err(SolveError::InvalidOption(format!(
                "save time {s} lies outside the solved span"
            )));
        }
        out.push(SaveAt::Step { step: j, theta });
    }
    Ok(())
}

/// The end time of step `j` as the solver used it: the next step's start, or `t + h` for the
/// last one (the solver's `t1`, up to an ulp).
pub(crate) fn step_end(steps: &[(f64, f64)], j: usize) -> f64 {
    match (steps.get(j + 1), steps.get(j)) {
        (Some(&(t, _)), _) => t,
        (None, Some(&(t, h))) => t + h,
        (None, None) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_map_to_the_solvers_steps() {
        let steps = [(0.0, 0.5), (0.5, 0.25), (0.75, 0.25)];
        let got = locate(&[0.0, 0.0, 0.25, 0.5, 0.6, 1.0], 0.0, &steps).expect("inside");
        assert_eq!(
            got,
            [
                SaveAt::Start,
                SaveAt::Start,
                SaveAt::Step {
                    step: 0,
                    theta: 0.5
                },
                SaveAt::Step {
                    step: 0,
                    theta: 1.0
                },
                SaveAt::Step {
                    step: 1,
                    theta: (0.6 - 0.5) / 0.25
                },
                SaveAt::Step {
                    step: 2,
                    theta: 1.0
                },
            ]
        );
        // Backwards in time.
        let back = [(1.0, -0.5), (0.5, -0.5)];
        let got = locate(&[1.0, 0.75, 0.0], 1.0, &back).expect("inside");
        assert_eq!(
            got[1],
            SaveAt::Step {
                step: 0,
                theta: 0.5
            }
        );
        assert_eq!(
            got[2],
            SaveAt::Step {
                step: 1,
                theta: 1.0
            }
        );
        assert!(locate(&[0.0, 2.0], 0.0, &steps).is_err());
        assert_eq!(
            locate(&[3.0], 3.0, &[]).expect("empty span"),
            [SaveAt::Start]
        );
    }
}
