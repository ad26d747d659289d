//! The papers' baseline regularizers in the trainer: the integral terms (RNODE's `kinetic` and
//! `jacobian_frobenius`, TayNODE's `taylor(K)`), integrated as a quadrature state of each
//! segment's solve (`grad::integral`, see its docs for why the error control does not see
//! it), and STEER's random end time.
//!
//! `jacobian_frobenius(estimator = hutchinson)` integrates `‖(∂f/∂u) ε‖²` with one Rademacher
//! probe `ε` per segment solve, held fixed across it (FFJORD, RNODE): unbiased for
//! `‖∂f/∂u‖_F²`, one JVP per stage instead of the n² Jacobian entries. `ε` is a constant of
//! the backward pass (the same probe in the forward quadrature and the adjoint), drawn from
//! the run's seed ([`probe_seed`]), so a rerun gives bit-identical weights.
//!
//! STEER (Ghosh et al. 2020): each training solve ends at `T' ~ U[T − b, T + b]` instead of at
//! its last observation time `T`, and the prediction at `T'` is compared with the observation
//! at `T`. `T'` is a constant of the backward pass. The draws of iteration `i` come from stream
//! `STEER_STREAM + i` of the run's seed, so a run (and a resumed run) stays a pure function of
//! the seed. `b` must stay below every gap between consecutive observations, so `T'` never
//! passes the previous observation.

use rand::Rng;
use serde::Serialize;

use super::op::Segment;
use crate::data::{Dataset, batch};
use crate::diag::Diag;
use crate::grad::{JitIntegrand, rademacher};
use crate::ir::lower::{self, Integrand};
use crate::sema::{Coef, Estimator, Model};
use crate::source::Span;

/// STEER's end times of iteration `i` come from stream `STEER_STREAM + i` (the local
/// regularizers use `LOCAL_STREAM + i`, `1 << 32` onwards).
pub const STEER_STREAM: u64 = 2 << 32;

/// Hutchinson's probes of iteration `i` come from a seed drawn from stream `PROBE_STREAM + i`
/// (see [`probe_seed`]).
pub const PROBE_STREAM: u64 = 3 << 32;

/// `jacobian_frobenius` without `estimator = ...` is exact up to this many states and
/// Hutchinson's estimate beyond: the symbolic Jacobian has n² entries, the estimate costs one
/// JVP.
pub const EXACT_MAX_STATES: usize = 16;

/// Highest `taylor(K)`: the symbolic K-th time derivative grows quickly with K (TayNODE
/// trains with K ≤ 3).
pub const MAX_TAYLOR: u32 = 4;

/// Which integrand, as the plan (and `run.json`) names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegralKind {
    Kinetic,
    JacobianFrobenius { estimator: Estimator },
    Taylor { order: u32 },
}

/// `coef · ∫ r dt`, per segment, averaged over the batch's segments.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct IntegralTerm {
    pub kind: IntegralKind,
    pub coef: Coef,
}

/// `steer(b)`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Steer {
    pub b: f64,
    #[serde(skip)]
    pub span: Span,
}

impl IntegralKind {
    fn integrand(self) -> Integrand {
        match self {
            IntegralKind::Kinetic => Integrand::Kinetic,
            IntegralKind::JacobianFrobenius {
                estimator: Estimator::Exact,
            } => Integrand::JacobianFrobenius,
            IntegralKind::JacobianFrobenius {
                estimator: Estimator::Hutchinson,
            } => Integrand::JacobianFrobeniusHutchinson,
            IntegralKind::Taylor { order } => Integrand::Taylor(order as usize),
        }
    }
}

/// The estimator of a `jacobian_frobenius` term: as written, else by the state size.
pub fn estimator(written: Option<Estimator>, states: usize) -> Estimator {
    written.unwrap_or(if states <= EXACT_MAX_STATES {
        Estimator::Exact
    } else {
        Estimator::Hutchinson
    })
}

/// The seed of iteration `i`'s Hutchinson probes in a run with seed `seed`: one Rademacher
/// `ε` per solve (FFJORD, RNODE), held fixed across that solve, drawn in segment order from
/// `batch::rng(probe_seed, 0)` ([`probes`]).
pub fn probe_seed(seed: u64, i: u64) -> u64 {
    batch::rng(seed, PROBE_STREAM.wrapping_add(i)).random()
}

/// One probe of length `n` per segment.
pub fn probes(probe_seed: u64, segments: usize, n: usize) -> Vec<Vec<f64>> {
    let mut rng = batch::rng(probe_seed, 0);
    (0..segments).map(|_| rademacher(&mut rng, n)).collect()
}

/// `taylor(K)` beyond [`MAX_TAYLOR`] is refused at its term.
pub fn check_taylor(order: u32, span: Span) -> Result<(), Diag> {
    if order <= MAX_TAYLOR {
        return Ok(());
    }
    Err(Diag::error(
        "glassbox::train_unsupported",
        format!("training supports `taylor(K)` up to K = {MAX_TAYLOR}, got {order}"),
    )
    .label(span, "order too high")
    .help("TayNODE regularizes with K = 2 or 3; the K-th derivative's expression grows quickly with K"))
}

/// The compiled integrands of `terms`, in order (`None` without terms).
pub fn compile(
    model: &Model,
    terms: &[IntegralTerm],
    p: &[f64],
) -> Result<Option<JitIntegrand>, Diag> {
    if terms.is_empty() {
        return Ok(None);
    }
    let fs = terms
        .iter()
        .map(|t| lower::lower_integrand(model, t.kind.integrand()))
        .collect::<Result<Vec<_>, Diag>>()?;
    JitIntegrand::new(&fs, &model.name, p, &[]).map(Some)
}

/// `steer(b)` needs `b` below every gap between consecutive observation times (so a window's
/// or trajectory's end can move by `b` without passing the observation before it).
pub fn check_steer(b: f64, span: Span, data: &Dataset) -> Result<(), Diag> {
    let Dataset::Trajectories { paths, .. } = data else {
        return Ok(());
    };
    let gap = paths
        .iter()
        .flat_map(|p| p.t.iter().zip(p.t.iter().skip(1)).map(|(a, b)| b - a))
        .fold(f64::INFINITY, f64::min);
    if b < gap {
        return Ok(());
    }
    Err(Diag::error(
        "glassbox::train_steer_span",
        format!("`steer({b})` moves end times by up to {b}, but observations are {gap} apart"),
    )
    .label(span, "too wide for the data's time grid")
    .help(format!(
        "choose b below {gap} (STEER uses a fraction of the observation spacing)"
    )))
}

/// Move each segment's end time to `T' ~ U[T − b, T + b]` (segments with one time stay).
pub fn steer(segments: &mut [Segment], b: f64, rng: &mut impl Rng) {
    for seg in segments {
        if seg.t.len() < 2 {
            continue;
        }
        if let Some(last) = seg.t.last_mut() {
            let u: f64 = rng.random();
            *last += b * (2.0 * u - 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written estimators win; unwritten ones are exact up to `EXACT_MAX_STATES` states.
    #[test]
    fn the_default_estimator_follows_the_state_size() {
        assert_eq!(estimator(None, 2), Estimator::Exact);
        assert_eq!(estimator(None, EXACT_MAX_STATES), Estimator::Exact);
        assert_eq!(estimator(None, EXACT_MAX_STATES + 1), Estimator::Hutchinson);
        assert_eq!(
            estimator(Some(Estimator::Hutchinson), 2),
            Estimator::Hutchinson
        );
        assert_eq!(estimator(Some(Estimator::Exact), 100), Estimator::Exact);
        // One probe per segment, ±1, reproducible from the seed.
        let a = probes(9, 3, 5);
        assert_eq!(a, probes(9, 3, 5));
        assert_ne!(a, probes(10, 3, 5));
        assert!(a.iter().flatten().all(|x| x.abs() == 1.0) && a.len() == 3);
        assert_ne!(probe_seed(1, 0), probe_seed(1, 1));
    }
}
