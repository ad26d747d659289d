//! What each thread of a training run owns for its rows (samples or windows): a field of its
//! own on the run's compiled kernels, the classifier's encoder and head, the integrands, and
//! the adjoint's buffers. Made once per run ([`rows`]), given the new parameters on every
//! forward pass ([`set_params`]); see `solve::threads` for why the results do not depend on
//! the thread count.

use super::batched::BatchWorker;
use super::classify::Classify;
use super::windows::WindowWorker;
use crate::diag::Diag;
use crate::grad::{AdjointWork, JitIntegrand, JitVjpField};
use crate::solve::threads::Pool;

pub struct RowWorker {
    pub(super) field: JitVjpField,
    pub(super) cls: Option<Classify>,
    pub(super) integrand: Option<JitIntegrand>,
    pub(super) adjoint: AdjointWork,
    /// `dL/du` at one window's saved states.
    pub(super) dl_du: Vec<f64>,
    /// A classifier's batched field and sweep buffers, where training is batched
    /// (`train/batched.rs`).
    pub(super) batch: Option<BatchWorker>,
    /// A trajectory model's batched field and sweep buffers, where its segments train batched
    /// (`train/windows.rs`).
    pub(super) windows: Option<WindowWorker>,
}

/// The row workers of a run.
pub type Rows = Pool<RowWorker>;

/// `threads` workers, each with copies of `field`, `cls` and `integrand` (same code).
pub(super) fn rows(
    threads: usize,
    field: &JitVjpField,
    cls: Option<&Classify>,
    integrand: Option<&JitIntegrand>,
) -> Result<Rows, Diag> {
    Pool::new(threads, || {
        Ok(RowWorker {
            field: field.fork(),
            cls: cls.map(Classify::fork),
            integrand: integrand.map(JitIntegrand::fork),
            adjoint: AdjointWork::default(),
            dl_du: Vec::new(),
            batch: None,
            windows: None,
        })
    })
}

/// Gives every worker the parameters `p`.
pub(super) fn set_params(rows: &mut Rows, p: &[f64]) -> Result<(), Diag> {
    for w in rows.workers_mut() {
        w.field.set_params(p)?;
        if let Some(r) = &mut w.integrand {
            r.set_params(p);
        }
    }
    Ok(())
}

/// Gives every worker's integrand this pass's weights.
pub(super) fn set_integral_weights(rows: &mut Rows, w: &[f64]) {
    for r in rows
        .workers_mut()
        .iter_mut()
        .filter_map(|w| w.integrand.as_mut())
    {
        r.set_weights(w);
    }
}

/// A worker's classifier and its field; a trainer builds workers with a classifier whenever
/// it classifies.
pub(super) fn classifier(w: &mut RowWorker) -> Result<(&Classify, &mut JitVjpField), Diag> {
    match &w.cls {
        Some(c) => Ok((c, &mut w.field)),
        None => Err(
            Diag::error("glassbox::internal", "a row worker without the classifier")
                .help("this is a bug in glassbox; please report it"),
        ),
    }
}
