//! Validation on the `split`'s held-out part, for trajectory models and classifiers alike.
//!
//! When: after the last iteration of every epoch, at most about 100 times a run (every
//! `max(iterations per epoch, ⌈total/100⌉)` iterations) and after the run's last iteration. A
//! windows draw or a full batch is one epoch per iteration, so those validate every
//! `⌈total/100⌉` iterations.
//!
//! What: classifiers, the mean cross-entropy and the accuracy on the validation rows (forward
//! solves only). Trajectory models, the data loss (`mse`/`l1`, no coefficient, no
//! regularizers) at the validation observations of a prediction: each held-out path solved
//! from the model's initial state at its first time (from its first observation with
//! `batch = windows(...)`, as training starts windows); a single trajectory split by time is
//! solved from the start of the training part through the held-out times (extrapolation).

use super::trainer::{Trainer, data_loss, per_epoch};
use crate::data::Dataset;
use crate::diag::Diag;
use crate::sema::Batch;
use crate::solve;

impl Trainer {
    /// The validation numbers `(loss, accuracy)` after the iteration just taken, when due.
    pub(super) fn validate_now(&self) -> Result<(Option<f64>, Option<f64>), Diag> {
        let Some(valid) = &self.valid else {
            return Ok((None, None));
        };
        let s = self.state();
        let every = per_epoch(self.plan.batch, self.data.len()).max(s.total.div_ceil(100));
        if !s.iteration.is_multiple_of(every.max(1)) && s.iteration != s.total {
            return Ok((None, None));
        }
        self.validation(valid)
    }

    /// `(loss, accuracy)` of the current weights on `valid` (accuracy for classifiers only).
    pub fn validation(&self, valid: &Dataset) -> Result<(Option<f64>, Option<f64>), Diag> {
        if self.classify.is_some() {
            let (ce, acc, _) = self.score_table(valid)?;
            return Ok((Some(ce), Some(acc)));
        }
        let (Dataset::Trajectories { paths: vp, .. }, Dataset::Trajectories { paths: tp, .. }) =
            (valid, &self.data)
        else {
            return Ok((None, None));
        };
        let p = self.params();
        let windows = matches!(self.plan.batch, Some(Batch::Windows { .. }));
        let cols = &self.plan.loss.columns;
        let mut c = self.ctx.borrow_mut();
        c.field.set_params(&p)?;
        let mut opts = self.plan.solve.clone();
        opts.keep_stages = false;
        opts.dense = false;
        let mut total = 0.0;
        for path in vp {
            // A time split: the held-out part continues the one training path.
            let start = match tp.as_slice() {
                [train] if vp.len() == 1 && train.t.last() < path.t.first() => train,
                _ => path,
            };
            let (Some(&t0), Some(&t1)) = (start.t.first(), path.t.last()) else {
                continue;
            };
            let u0 = if windows {
                let mut u0 = vec![0.0; self.model.state_size];
                for (j, &k) in cols.iter().enumerate() {
                    u0[k] = start.y.get((0, j)).copied().unwrap_or(f64::NAN);
                }
                u0
            } else {
                solve::initial_state(&self.model, &p, &[], t0)?
            };
            opts.save_at = path.t.to_vec();
            let tab = self.plan.tab;
            let sol = solve::solve(tab, &mut c.field, t0, t1, &u0, &opts).map_err(Diag::from)?;
            let y: Vec<f64> = path.y.iter().copied().collect();
            total += data_loss(&self.plan, &sol, &y);
        }
        Ok((Some(total / vp.len().max(1) as f64), None))
    }
}
