//! One path's driver state between evaluations: what [`super::solve_path`] keeps while it
//! steps one path, cut at every point where the step needs the drift or diffusion, so the
//! batched driver (`batched.rs`) can run many paths with the very same code and evaluate
//! each stage for all of them at once.
//!
//! The life of a path: its `f(t0, u0)`, `g(t0, u0)` into `f0`, `g0`, then [`Track::begin`];
//! while [`Track::plan`] says there is an attempt: the step's evaluations (`step.rs`'s
//! `Work::{start, prepare, slots, finish}`), [`Track::judge`]; once accepted, the stiffness
//! estimate (`stiffness.rs`), [`Track::accept`] and, when the path goes on, `f0`, `g0` at the
//! new state and [`Track::restart`].
//!
//! Invariant: the arithmetic, the controller and the counts are the single-path driver's of
//! before this split, in the same order: a path solved through a track equals that solve bit
//! for bit.

use std::iter::{Copied, Peekable};
use std::slice::Iter;

use super::brownian::{BrownianCache, BrownianPoint, BrownianTree, increments};
use super::integrate::{SdeOptions, check_finite, error_estimate, initial_step};
use super::method::SdeMethod;
use super::step::Work;
use crate::solve::{Solution, SolveError, StepRecord};

pub(crate) struct Track<'a> {
    method: SdeMethod,
    opts: &'a SdeOptions,
    tree: &'a BrownianTree,
    /// The process of every component.
    of: Vec<usize>,
    fixed: bool,
    /// The current state, and `f`, `g` there.
    pub t: f64,
    pub u: Vec<f64>,
    pub f0: Vec<f64>,
    pub g0: Vec<f64>,
    /// The step's buffers: increments, stages, `u_{n+1}`, the error parts.
    pub w: Work,
    sol: Solution,
    saves: Peekable<Copied<Iter<'a, f64>>>,
    dw: Vec<f64>,
    i10: Vec<f64>,
    cache: BrownianCache,
    here: BrownianPoint,
    there: BrownianPoint,
    /// The controller's step.
    h: f64,
    grid_steps: u64,
    step_nfe: u32,
    rejected_last: bool,
    non_finite: Option<SolveError>,
    /// The current attempt: where it ends, whether that is a grid point, whether it was cut
    /// short to land on a save time, and its error estimate once judged.
    t_next: f64,
    on_grid: bool,
    landed_short: bool,
    e: Option<f64>,
}

impl<'a> Track<'a> {
    /// A path from `u0` driven by `tree`, over the tree's span; the inputs checked by the
    /// caller (`check_inputs`), `of` the noise map's processes.
    pub fn new(
        method: SdeMethod,
        of: &[usize],
        u0: &[f64],
        opts: &'a SdeOptions,
        tree: &'a BrownianTree,
    ) -> Track<'a> {
        let (t0, t1) = tree.span();
        let n = u0.len();
        let m = tree.processes();
        let mut sol = Solution {
            method: method.name(),
            dim: n,
            ..Solution::default()
        };
        if let Some(dt) = opts.dt {
            // The grid's steps and those save times add: no regrowth of the step records.
            let grid = ((t1 - t0) / dt).ceil();
            let steps = if grid.is_finite() { grid as usize } else { 0 };
            // Capped: a huge grid (or max_steps) must not reserve memory it may never use.
            let steps = steps.saturating_add(opts.save_at.len());
            sol.steps.reserve(steps.min(opts.max_steps).min(1 << 20));
        }
        Track {
            method,
            opts,
            tree,
            of: of.to_vec(),
            fixed: opts.dt.is_some(),
            t: t0,
            u: u0.to_vec(),
            f0: vec![0.0; n],
            g0: vec![0.0; n],
            w: Work::new(n),
            sol,
            saves: opts.save_at.iter().copied().peekable(),
            dw: vec![0.0; m],
            i10: vec![0.0; m],
            cache: BrownianCache::new(),
            here: BrownianPoint::origin(t0, m),
            there: BrownianPoint::origin(t0, m),
            h: 0.0,
            grid_steps: 0,
            step_nfe: 0,
            rejected_last: false,
            non_finite: None,
            t_next: t0,
            on_grid: true,
            landed_short: false,
            e: None,
        }
    }

    /// After `f0`, `g0` at `(t0, u0)`: their check, the saves at `t0` and the first step.
    pub fn begin(&mut self) -> Result<(), SolveError> {
        let (t0, t1) = self.tree.span();
        let opts = self.opts;
        self.sol.stats.nfe += 2;
        check_finite(&self.f0, t0)?;
        check_finite(&self.g0, t0)?;
        if opts.save_at.is_empty() {
            self.sol.ts.push(t0);
            self.sol.us.extend_from_slice(&self.u);
        }
        while self.saves.peek() == Some(&t0) {
            self.sol.ts.push(t0);
            self.sol.us.extend_from_slice(&self.u);
            self.saves.next();
        }
        self.h = match (opts.dt, opts.h0) {
            (Some(dt), _) => dt,
            (None, Some(h0)) => h0.min(t1 - t0),
            (None, None) => initial_step(&self.u, &self.f0, &self.g0, t1 - t0, opts),
        };
        if opts.dt.is_none() {
            crate::solve::error::check_first_step(t0, t1, self.h, opts.max_steps)?;
        }
        Ok(())
    }

    /// Plans the next attempt and puts its increments in `w` (`false`: the path is done).
    pub fn plan(&mut self) -> Result<bool, SolveError> {
        let (t0, t1) = self.tree.span();
        let (t, h, opts) = (self.t, self.h, self.opts);
        if t >= t1 {
            return Ok(false);
        }
        if self.sol.steps.len() >= opts.max_steps {
            return Err(SolveError::MaxSteps {
                max_steps: opts.max_steps,
                t,
                t1,
            });
        }
        let fixed = self.fixed;
        let target = if fixed {
            let grid = t0 + (self.grid_steps + 1) as f64 * h;
            if t1 - grid <= 1e-12 * (t1 - t0) {
                t1
            } else {
                grid
            }
        } else if t + h >= t1 - 1e-12 * h {
            t1
        } else {
            t + h
        };
        // A save time within rounding of the grid point (`k/100` against `k·0.01`) is that
        // grid point: the step lands on the save time instead of stopping 1e-17 short of
        // the grid and taking a microscopic step after it.
        let (t_next, on_grid) = match self.saves.peek() {
            Some(&s) if fixed && s > t && (s - target).abs() <= 1e-12 * (t1 - t0) => (s, true),
            Some(&s) if s < target && s > t => (s, false),
            _ => (target, true),
        };
        let h_try = t_next - t;
        // Cut short to land on a save time: the controller's step `h` still stands after it.
        self.landed_short = !fixed && h_try < h;
        if !fixed && h_try <= 16.0 * f64::EPSILON * t.abs().max(t1 - t0) {
            return Err(self.non_finite.take().unwrap_or(SolveError::StepUnderflow {
                t,
                h: h_try,
                norm: self.u.iter().map(|x| x * x).sum::<f64>().sqrt(),
            }));
        }
        (self.t_next, self.on_grid) = (t_next, on_grid);
        self.tree
            .point_cached(t_next, &mut self.cache, &mut self.there);
        increments(&self.here, &self.there, &mut self.dw, &mut self.i10);
        for (i, &k) in self.of.iter().enumerate() {
            self.w.dw[i] = self.dw[k];
            self.w.i10[i] = self.i10[k];
        }
        Ok(true)
    }

    /// The attempt's size.
    pub fn h_try(&self) -> f64 {
        self.t_next - self.t
    }

    /// Judges the attempt whose step (of `nfe` evaluations) is in `w`: `false` when rejected
    /// (the retry's step is set), `true` when accepted.
    pub fn judge(&mut self, nfe: u32) -> Result<bool, SolveError> {
        let h_try = self.h_try();
        let stats = &mut self.sol.stats;
        stats.nfe += u64::from(nfe);
        self.step_nfe += nfe;
        self.e = self
            .method
            .is_adaptive()
            .then(|| error_estimate(&self.u, &self.w, self.opts));
        if !self.fixed {
            let e = self.e.unwrap_or(0.0);
            let acceptable = e <= 1.0; // false for NaN too
            if !acceptable {
                stats.rejected += 1;
                let u1 = &self.w.u1;
                let t_next = self.t_next;
                self.non_finite =
                    u1.iter()
                        .position(|x| !x.is_finite())
                        .map(|component| SolveError::NonFinite {
                            component,
                            value: u1[component],
                            t: t_next,
                        });
                self.rejected_last = true;
                self.h = h_try * reject_factor(e);
                return Ok(false);
            }
        }
        check_finite(&self.w.u1, self.t_next)?;
        Ok(true)
    }

    /// Records the accepted step (with its stiffness estimate and the evaluations it cost)
    /// and advances to its end; `true` when the path goes on (then `f0`, `g0` at the new
    /// state, and [`Track::restart`]).
    pub fn accept(&mut self, s: Option<(f64, u32)>) -> bool {
        let t1 = self.tree.span().1;
        let (t, t_next, h_try) = (self.t, self.t_next, self.h_try());
        if let Some((_, nfe)) = s {
            self.sol.stats.nfe += u64::from(nfe);
            self.step_nfe += nfe;
        }
        self.sol.steps.push(StepRecord {
            t,
            h: h_try,
            error_estimate: self.e,
            stiffness_estimate: s.map(|(s, _)| s),
            nfe: self.step_nfe,
            stages: None,
        });
        self.sol.stats.accepted += 1;
        if self.fixed && self.on_grid {
            self.grid_steps += 1;
        }
        self.t = t_next;
        self.u.copy_from_slice(&self.w.u1);
        std::mem::swap(&mut self.here, &mut self.there);
        while self.saves.peek() == Some(&t_next) {
            self.sol.ts.push(t_next);
            self.sol.us.extend_from_slice(&self.u);
            self.saves.next();
        }
        if self.opts.save_at.is_empty() {
            self.sol.ts.push(t_next);
            self.sol.us.extend_from_slice(&self.u);
        }
        self.step_nfe = 0;
        self.non_finite = None;
        if !self.fixed {
            let mut fac = accept_factor(self.e.unwrap_or(0.0));
            if self.rejected_last {
                fac = fac.min(1.0);
            }
            self.rejected_last = false;
            // After a step shortened to hit a save time, the step planned before it stands:
            // scaling the short step instead would shorten the next one too, and a solve would
            // pay about one extra step per observation interval (0.73x NFE on the spiral SDE
            // with 20 save times, docs/results_sde.md).
            self.h = if self.landed_short {
                (h_try * fac).max(self.h)
            } else {
                h_try * fac
            };
        }
        self.t < t1
    }

    /// After `f0`, `g0` at the accepted step's end: their count and check.
    pub fn restart(&mut self) -> Result<(), SolveError> {
        self.sol.stats.nfe += 2;
        self.step_nfe = 2;
        check_finite(&self.f0, self.t)?;
        check_finite(&self.g0, self.t)
    }

    /// The path's solution. Step records count the evaluations at each step's start to the
    /// step before it, so the totals agree: 2 at t0 + Σ_j nfe_j.
    pub fn finish(self) -> Solution {
        self.sol
    }
}

/// The estimates are O(h) random variables, so the controller is a plain I-controller with
/// exponent ½ (q = 2): `h ← h · clamp(0.9 E^{-1/2}, 0.2, 10)`.
fn accept_factor(e: f64) -> f64 {
    let fac = 0.9 * e.powf(-0.5);
    if fac.is_nan() {
        1.0
    } else {
        fac.clamp(0.2, 10.0)
    }
}

fn reject_factor(e: f64) -> f64 {
    let fac = 0.9 * e.powf(-0.5);
    if fac.is_finite() {
        fac.clamp(0.2, 1.0)
    } else {
        0.2
    }
}
