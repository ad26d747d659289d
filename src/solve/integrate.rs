//! The driver: runs any tableau from `t0` to `t1` (either direction), adaptive (PID control) or
//! on a fixed grid, and records every accepted step's heuristics.
//!
//! Invariants: `Stats::nfe` counts every evaluation of the field (also rejected attempts and
//! the initial-step probe) and equals `setup_nfe + Σ step.nfe`; `ts` is monotone in the
//! direction of integration; the last accepted step ends exactly at `t1`; a non-finite state
//! or failure to progress is an error, never a panic or a silent NaN.

use serde::{Deserialize, Serialize};

use crate::ir;

use super::control::{Controller, StepControl, initial_step};
use super::dense::{Dense, StepData, interpolate_into};
use super::error::{SolveError, check_first_step};
use super::field::VectorField;
use super::method::{AutoSwitch, Method, SWITCH_DT_FACTOR};
use super::rosenbrock::{RosWork, Rosenbrock, probe_stiffness, ros_interpolate, ros_step};
use super::step::{Work, copy_state, extend_state, rk_step};
use super::tableau::{TSIT5, Tableau};

#[derive(Clone, Debug)]
pub struct SolveOptions {
    pub rtol: f64,
    pub atol: f64,
    /// First step of an adaptive solve; `None`: Hairer–Wanner's automatic choice.
    pub h0: Option<f64>,
    /// Most accepted steps before `glassbox::max_steps`.
    pub max_steps: usize,
    /// Fixed step size. Required by methods without an error estimate; with an adaptive
    /// tableau it switches control off (the estimates are still computed and recorded).
    pub dt: Option<f64>,
    /// Output times (within the span, in the direction of integration). Empty: output at `t0`
    /// and after every accepted step.
    pub save_at: Vec<f64>,
    /// Keep the data for [`Solution::dense`].
    pub dense: bool,
    /// Keep each accepted step's starting state and stages in its [`StepRecord`].
    pub keep_stages: bool,
    /// With `keep_stages`: keep only every N-th step's starting state (stages empty) and
    /// nothing for the others; the adjoint recomputes the stages segment by segment.
    pub checkpoint_every: Option<usize>,
    /// The step-size controller's gains and limits (adaptive solves).
    pub control: StepControl,
    /// Stop with `glassbox::stiff_for_explicit` when an adaptive solve sits at the method's
    /// stability limit (Hairer's test: h·S ≥ 0.98·stability size on 15 accepted steps, without
    /// 6 consecutive steps below it in between).
    pub detect_stiffness: bool,
}

impl Default for SolveOptions {
    fn default() -> SolveOptions {
        SolveOptions {
            rtol: 1e-3,
            atol: 1e-6,
            h0: None,
            max_steps: 100_000,
            dt: None,
            save_at: Vec::new(),
            dense: false,
            keep_stages: false,
            checkpoint_every: None,
            control: StepControl::default(),
            detect_stiffness: true,
        }
    }
}

/// What the solver saw in one accepted step: the values the regularizers read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    /// Start time and signed size of the step.
    pub t: f64,
    pub h: f64,
    /// `E_j` (see `step.rs`); `None` for methods without an embedded pair.
    pub error_estimate: Option<f64>,
    /// `S_j`; `None` for methods with a single stage.
    pub stiffness_estimate: Option<f64>,
    /// Evaluations spent since the previous accepted step (rejected attempts included).
    pub nfe: u32,
    /// Boxed: most solves keep no stages, and a record of 40 bytes instead of 88 halves what
    /// the step log copies as it grows (a measurable share of a small system's solve).
    pub stages: Option<Box<Stages>>,
}

/// A step's inputs and stage derivatives, for the discrete adjoint (which re-forms the stage
/// arguments `g_i = u0 + h Σ a_ij k_j` from them).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stages {
    pub u0: Vec<f64>,
    /// Stage-major: `k[i*n..(i+1)*n] = f(t + c_i h, g_i)`; empty at a checkpoint
    /// (`SolveOptions::checkpoint_every`), where only `u0` is kept.
    pub k: Vec<f64>,
}

impl Stages {
    /// `(u0, k)` in a record from `pool` (its buffers reused) or a new one.
    // The pool holds the records' own boxes, handed back as they are (no move out of the box).
    #[allow(clippy::vec_box)]
    fn reuse(pool: &mut Vec<Box<Stages>>, u0: &[f64], k: &[f64]) -> Box<Stages> {
        let Some(mut s) = pool.pop() else {
            return Box::new(Stages {
                u0: u0.to_vec(),
                k: k.to_vec(),
            });
        };
        s.u0.clear();
        s.u0.extend_from_slice(u0);
        s.k.clear();
        s.k.extend_from_slice(k);
        s
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub nfe: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Jacobian evaluations (analytic, or one finite-difference sweep each); 0 for explicit
    /// methods.
    pub jacobian_evals: u64,
    /// Factorisations of `W = I − hγJ` (one per Rosenbrock attempt, rejected ones included).
    pub lu_factorizations: u64,
    /// Accepted steps taken by a Rosenbrock method.
    pub stiff_steps: u64,
    /// Method switches of `auto`.
    pub switches: u64,
}

impl Stats {
    /// Adds `o`'s counts (many solves' totals: SDE paths, a batch of initial states).
    pub fn add(&mut self, o: &Stats) {
        self.nfe += o.nfe;
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.jacobian_evals += o.jacobian_evals;
        self.lu_factorizations += o.lu_factorizations;
        self.stiff_steps += o.stiff_steps;
        self.switches += o.switches;
    }
}

/// `Solution::default()` is empty: the buffer [`solve_into`] fills.
#[derive(Clone, Debug, Default)]
pub struct Solution {
    pub method: &'static str,
    pub dim: usize,
    pub ts: Vec<f64>,
    /// Row-major `[ts.len(), dim]`.
    pub us: Vec<f64>,
    pub steps: Vec<StepRecord>,
    pub stats: Stats,
    pub dense: Option<Dense>,
}

impl Solution {
    /// The saved state number `i`.
    pub fn u(&self, i: usize) -> Option<&[f64]> {
        self.us.get(i * self.dim..(i + 1) * self.dim)
    }

    /// Empties the solution for a new solve, keeping its buffers; returns the kept stages'
    /// records for reuse.
    #[allow(clippy::vec_box)]
    pub(super) fn reset(
        &mut self,
        method: &'static str,
        dim: usize,
        dense: bool,
    ) -> Vec<Box<Stages>> {
        self.method = method;
        self.dim = dim;
        self.ts.clear();
        self.us.clear();
        self.stats = Stats::default();
        self.dense = dense.then(|| Dense::new(dim));
        self.steps.drain(..).filter_map(|s| s.stages).collect()
    }

    /// The final state (at `t1` unless `save_at` stops earlier).
    pub fn last(&self) -> Option<&[f64]> {
        self.u(self.ts.len().checked_sub(1)?)
    }
}

const STIFF_HITS: u32 = 15;
const NONSTIFF_RESET: u32 = 6;
/// `auto` measures J's spectral radius every this many explicit steps.
const PROBE_EVERY: u64 = 10;

/// Solves `u' = f(t, u)`, `u(t0) = u0` from `t0` to `t1` with the given tableau.
pub fn solve<F: VectorField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SolveOptions,
) -> Result<Solution, SolveError> {
    solve_with(Method::Explicit(tab), f, t0, t1, u0, opts)
}

/// The method taking the current step.
#[derive(Clone, Copy)]
enum Mode {
    Rk(&'static Tableau),
    Ros(&'static Rosenbrock),
}

/// Solves `u' = f(t, u)`, `u(t0) = u0` from `t0` to `t1` with any [`Method`]: explicit,
/// Rosenbrock, or `auto` switching between the two.
pub fn solve_with<F: VectorField + ?Sized>(
    method: Method,
    f: &mut F,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SolveOptions,
) -> Result<Solution, SolveError> {
    let mut sol = Solution::default();
    solve_into(method, f, t0, t1, u0, opts, &mut sol)?;
    Ok(sol)
}

/// [`solve_with`] into `sol`, replacing what it held but reusing its buffers (the kept stages
/// included), for a caller that solves many times (the trainer). After an error `sol` holds
/// a partial solve.
pub fn solve_into<F: VectorField + ?Sized>(
    method: Method,
    f: &mut F,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SolveOptions,
    sol: &mut Solution,
) -> Result<(), SolveError> {
    let n = f.dim();
    check_inputs(method, n, t0, t1, u0, opts)?;
    let fixed = opts.dt.is_some() || !method.is_adaptive();
    let tol = (opts.rtol, opts.atol);
    let (explicit, stiff) = method.parts();
    // Past the dense Jacobian's limit an implicit method is refused before its n × n work
    // buffers are allocated, and `auto` stays explicit: no probes, no switch.
    let fits = ir::jacobian_fits(n, n);
    if explicit.is_none() && stiff.is_some() && !fits {
        return Err(SolveError::JacobianTooLarge {
            method: method.name(),
            n,
        });
    }
    let stiff = stiff.filter(|_| fits);
    let mut mode = match (explicit, stiff) {
        (Some(tab), _) => Mode::Rk(tab),
        (None, Some(m)) => Mode::Ros(m),
        (None, None) => return Err(SolveError::InvalidOption("no method".into())),
    };

    let mut stats = Stats::default();
    let mut pool = sol.reset(method.name(), n, opts.dense);
    let mut u = u0.to_vec();
    let mut t = t0;
    let mut f_cur = vec![0.0; n];
    f.eval(t, &u, &mut f_cur);
    stats.nfe += 1;
    check_finite(&f_cur, t)?;

    let course = Course::new(t0, t1, fixed);
    let mut saves = SaveTimes::new(&opts.save_at, course.dir);
    saves.start(sol, t0, u0);

    let rk_tab = explicit.unwrap_or(&TSIT5);
    let mut w = Work::new(rk_tab, if explicit.is_some() { n } else { 0 });
    let mut rw = RosWork::new(if stiff.is_some() { n } else { 0 });
    let mut f_next = vec![0.0; n];
    let mut scratch = vec![0.0; n];
    let first_order = match mode {
        Mode::Rk(tab) => tab.order,
        Mode::Ros(m) => m.order,
    };
    let mut h = match course.given_first_step(opts) {
        Some(h) => h,
        None => {
            let (h, nfe) = initial_step(
                f,
                first_order,
                t0,
                t1,
                &u,
                &f_cur,
                tol,
                (&mut scratch, &mut f_next),
            );
            stats.nfe += u64::from(nfe);
            opts.control.limit(h)
        }
    };
    if !fixed {
        check_first_step(t0, t1, h, opts.max_steps)?;
    }
    let mut ctrl_rk = Controller::new(rk_tab, &opts.control);
    let mut ctrl_ros = Controller::with_q(stiff.map_or(3, |m| m.embedded_order + 1), &opts.control);
    let mut stiff_test = StiffnessTest::default();
    let mut switch = AutoSwitch::default();
    let mut probed = 0.0;
    let mut step_nfe = 0u32;
    // The first NaN/Inf stage value of the latest rejected attempt, if that is why it failed.
    let mut non_finite: Option<SolveError> = None;
    let mut interp = vec![0.0; n];
    let mut thetas = Vec::new();

    while course.running(t) {
        let t_next = course.attempt_end(t, h, &u, stats.accepted, opts, &mut non_finite)?;
        let h_try = t_next - t;

        let (error, stiffness, nfe) = match mode {
            Mode::Rk(tab) => {
                let r = rk_step(tab, f, t, &u, h_try, &f_cur, tol, &mut w);
                (r.error, r.stiffness, r.nfe)
            }
            Mode::Ros(m) => {
                let r = ros_step(m, f, t, &u, h_try, &f_cur, tol, &mut rw);
                stats.jacobian_evals += u64::from(r.jacobian_evals);
                stats.lu_factorizations += u64::from(r.lu_factorizations);
                (Some(r.error), Some(r.stiffness), r.nfe)
            }
        };
        stats.nfe += u64::from(nfe);
        step_nfe += nfe;
        let e = error.unwrap_or(0.0);
        let acceptable = e <= 1.0; // false for NaN too
        if !fixed && !acceptable {
            stats.rejected += 1;
            let (h_retry, why) = match mode {
                Mode::Rk(tab) => (
                    ctrl_rk.rejected(h_try, e),
                    first_non_finite(tab, &w.k, n, t, h_try),
                ),
                Mode::Ros(_) => (
                    ctrl_ros.rejected(h_try, e),
                    rw.first_non_finite()
                        .map(|(component, value)| SolveError::NonFinite {
                            component,
                            value,
                            t: t + h_try,
                        }),
                ),
            };
            non_finite = why;
            h = h_retry;
            continue;
        }
        let u1: &[f64] = match mode {
            Mode::Rk(_) => &w.u1,
            Mode::Ros(_) => &rw.u1,
        };
        check_finite(u1, t_next)?;

        // f(t_{n+1}, u_{n+1}): the FSAL stage, or one evaluation the next step needs anyway
        // (skipped after the last step unless an interpolant needs it).
        let last = t_next == t1;
        let needs_f1 = !last || opts.dense || !opts.save_at.is_empty();
        match mode {
            Mode::Rk(tab) if tab.fsal => {
                let s = tab.stages();
                copy_state(&mut f_next, &w.k[(s - 1) * n..s * n]);
            }
            Mode::Ros(m) if m.fsal => f_next.copy_from_slice(&rw.f1),
            _ if needs_f1 => {
                f.eval(t_next, u1, &mut f_next);
                stats.nfe += 1;
                step_nfe += 1;
            }
            _ => {}
        }
        check_finite(&f_next, t_next)?;

        let data = StepData {
            h: h_try,
            u0: &u,
            u1,
            k: &w.k,
            f1: &f_next,
        };
        let record = StepRecord {
            t,
            h: h_try,
            error_estimate: error,
            stiffness_estimate: stiffness,
            nfe: step_nfe,
            // The discrete adjoint's stages are those of explicit steps.
            stages: match mode {
                Mode::Rk(_) => kept_stages(opts, &mut pool, sol.steps.len(), &u, &w.k),
                Mode::Ros(_) => None,
            },
        };
        let at = Accepted { t_next, u1, record };
        match mode {
            Mode::Rk(tab) => record_rk_step(tab, sol, (&mut saves, &mut thetas), &data, at),
            Mode::Ros(m) => {
                let dense = (&u[..], u1, &rw.dense[..]);
                record_step(sol, (&mut saves, &mut thetas), at, |thetas, sol| {
                    for &theta in thetas {
                        ros_interpolate(m, &u, u1, &rw.dense, theta, &mut interp);
                        extend_state(&mut sol.us, &interp);
                    }
                    if let Some(d) = sol.dense.as_mut() {
                        d.push_ros(m, t, h_try, dense);
                    }
                })
            }
        }
        stats.accepted += 1;
        if let Mode::Ros(_) = mode {
            stats.stiff_steps += 1;
        }
        step_nfe = 0;
        non_finite = None;

        let h_lambda = h_try.abs() * stiffness.unwrap_or(0.0);
        if !fixed
            && opts.detect_stiffness
            && let (Method::Explicit(_), Mode::Rk(tab)) = (method, mode)
        {
            stiff_test.observe(tab, h_lambda, t_next)?;
        }

        t = t_next;
        copy_state(&mut u, u1);
        std::mem::swap(&mut f_cur, &mut f_next);
        rw.jac_valid = false;
        // auto, while explicit: the stage-pair S_j can underestimate the stiff eigenvalue
        // badly (Robertson: 30×), so every PROBE_EVERY steps J's spectral radius is measured
        // too, and the larger of the two is tested until the next probe.
        let mut probe_nfe = 0;
        if let (Mode::Rk(_), Method::Auto { .. }, false, true) =
            (mode, method, last, stiff.is_some())
        {
            if stats.accepted % PROBE_EVERY == 1 {
                let (rho, nfe) = probe_stiffness(f, t, &u, &f_cur, &mut rw);
                probed = rho;
                probe_nfe = nfe;
                stats.jacobian_evals += 1;
            }
        } else {
            probed = 0.0;
        }
        stats.nfe += u64::from(probe_nfe);
        // Charged to the next step, so Stats::nfe stays setup + Σ step.nfe.
        step_nfe += probe_nfe;
        let h_lambda = h_lambda.max(h_try.abs() * probed);

        if !fixed {
            h = match mode {
                Mode::Rk(_) => ctrl_rk.accepted(h_try, e),
                Mode::Ros(_) => ctrl_ros.accepted(h_try, e),
            };
            if let (Some(tab), Some(m)) = (explicit, stiff) {
                let in_stiff = matches!(mode, Mode::Ros(_));
                match switch.observe(in_stiff, h_lambda, tab.stability_size) {
                    Some(true) => {
                        mode = Mode::Ros(m);
                        ctrl_ros = Controller::with_q(m.embedded_order + 1, &opts.control);
                        h = opts.control.limit(h * SWITCH_DT_FACTOR);
                        stats.switches += 1;
                    }
                    Some(false) => {
                        mode = Mode::Rk(tab);
                        ctrl_rk = Controller::new(tab, &opts.control);
                        h /= SWITCH_DT_FACTOR;
                        stats.switches += 1;
                    }
                    None => {}
                }
            }
        }
    }
    sol.stats = stats;
    Ok(())
}

/// Whether a solve of dimension `n` with `method` evaluates the dense Jacobian `∂f/∂u`: an
/// implicit method always (past [`ir::MAX_JACOBIAN_ENTRIES`] the solve refuses it, with
/// `SolveError::JacobianTooLarge`), `auto` only while `n × n` is within that limit (past it,
/// it solves with its explicit method alone).
pub fn uses_jacobian(method: Method, n: usize) -> bool {
    match method.parts() {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(_), Some(_)) => ir::jacobian_fits(n, n),
    }
}

/// A solve's span and how it steps: what decides where each attempt ends.
#[derive(Clone, Copy)]
pub(super) struct Course {
    t0: f64,
    t1: f64,
    pub dir: f64,
    /// On the grid `t0 + k·dt` (a `dt`, or a method without an error estimate).
    pub fixed: bool,
}

impl Course {
    pub fn new(t0: f64, t1: f64, fixed: bool) -> Course {
        let dir = if t1 >= t0 { 1.0 } else { -1.0 };
        Course { t0, t1, dir, fixed }
    }

    pub fn end(&self) -> f64 {
        self.t1
    }

    /// Whether `t` is short of `t1`.
    #[inline(always)]
    pub fn running(&self, t: f64) -> bool {
        (self.t1 - t) * self.dir > 0.0
    }

    /// The first step when the options fix it (`dt`, `h0`, an empty span); `None`: the
    /// automatic choice ([`initial_step`]).
    pub fn given_first_step(&self, opts: &SolveOptions) -> Option<f64> {
        let (t0, t1, dir) = (self.t0, self.t1, self.dir);
        match (opts.dt, opts.h0) {
            (Some(dt), _) => Some(dir * dt),
            (None, Some(h0)) => Some(opts.control.limit(dir * h0.min((t1 - t0).abs()))),
            (None, None) if t1 != t0 => None,
            (None, None) => Some(0.0),
        }
    }

    /// Where the next attempt from `(t, u)` with step `h` ends, after `accepted` steps; an
    /// error past `max_steps` or when the step underflows (`non_finite`: why the last
    /// attempt failed, if the field returned NaN/Inf).
    #[inline(always)]
    pub fn attempt_end(
        &self,
        t: f64,
        h: f64,
        u: &[f64],
        accepted: u64,
        opts: &SolveOptions,
        non_finite: &mut Option<SolveError>,
    ) -> Result<f64, SolveError> {
        let (t0, t1, dir, fixed) = (self.t0, self.t1, self.dir, self.fixed);
        if accepted as usize >= opts.max_steps {
            return Err(SolveError::MaxSteps {
                max_steps: opts.max_steps,
                t,
                t1,
            });
        }
        // Land exactly on t1: on a fixed grid the grid point, adaptively the remaining span
        // when the step would reach (or nearly reach) past it.
        let t_next = if fixed {
            // Grid points t0 + k·dt, not accumulated sums.
            let k = accepted as f64 + 1.0;
            let grid = t0 + k * h;
            if (t1 - grid) * dir <= 1e-12 * (t1 - t0).abs() {
                t1
            } else {
                grid
            }
        } else if (t + h - t1) * dir >= -1e-12 * h.abs() {
            t1
        } else {
            t + h
        };
        let h_try = t_next - t;
        if !fixed && h_try.abs() <= 16.0 * f64::EPSILON * t.abs().max((t1 - t0).abs()) {
            // Shrinking because the field kept returning NaN/Inf is that, not an underflow.
            return Err(non_finite.take().unwrap_or(SolveError::StepUnderflow {
                t,
                h: h_try,
                norm: norm(u),
            }));
        }
        Ok(t_next)
    }
}

/// The save times not yet reached (`SolveOptions::save_at`).
pub(super) struct SaveTimes<'a> {
    rest: &'a [f64],
    dir: f64,
    /// Save after every accepted step (no save times given).
    every_step: bool,
}

impl<'a> SaveTimes<'a> {
    pub fn new(times: &'a [f64], dir: f64) -> SaveTimes<'a> {
        SaveTimes {
            rest: times,
            dir,
            every_step: times.is_empty(),
        }
    }

    /// Saves `u0` at `t0`: always without save times, else once per save time at `t0`.
    pub fn start(&mut self, sol: &mut Solution, t0: f64, u0: &[f64]) {
        if self.every_step {
            sol.ts.push(t0);
            sol.us.extend_from_slice(u0);
        }
        while let [ts, rest @ ..] = self.rest {
            if *ts != t0 {
                break;
            }
            sol.ts.push(t0);
            sol.us.extend_from_slice(u0);
            self.rest = rest;
        }
    }

    /// The save times up to `t_next` of the step `(t, h)`: their `θ` into `thetas`, the
    /// times onto `ts`.
    #[inline]
    fn through(&mut self, t: f64, h: f64, t_next: f64, thetas: &mut Vec<f64>, ts: &mut Vec<f64>) {
        thetas.clear();
        while let [s, rest @ ..] = self.rest {
            if (s - t_next) * self.dir > 0.0 {
                break;
            }
            thetas.push((s - t) / h);
            ts.push(*s);
            self.rest = rest;
        }
    }
}

/// An accepted step's end and record, to save and log.
pub(super) struct Accepted<'a> {
    pub t_next: f64,
    pub u1: &'a [f64],
    pub record: StepRecord,
}

/// Saves an accepted step (the save times it covers, `write` interpolating them into
/// `sol.us` and extending the dense output; its end without save times) and logs its record.
#[inline(always)]
pub(super) fn record_step(
    sol: &mut Solution,
    (saves, thetas): (&mut SaveTimes, &mut Vec<f64>),
    at: Accepted,
    write: impl FnOnce(&[f64], &mut Solution),
) {
    let (t, h) = (at.record.t, at.record.h);
    saves.through(t, h, at.t_next, thetas, &mut sol.ts);
    write(thetas, sol);
    // The solve's own save times (a batched row may have its own, `BatchRow::save_at`).
    if saves.every_step {
        sol.ts.push(at.t_next);
        extend_state(&mut sol.us, at.u1);
    }
    sol.steps.push(at.record);
}

/// [`record_step`] for an explicit step: the tableau's interpolant and dense output.
#[inline(always)]
pub(super) fn record_rk_step(
    tab: &'static Tableau,
    sol: &mut Solution,
    saves: (&mut SaveTimes, &mut Vec<f64>),
    data: &StepData,
    at: Accepted,
) {
    let t = at.record.t;
    record_step(sol, saves, at, |thetas, sol| {
        interpolate_into(tab, data, thetas, &mut sol.us);
        if let Some(d) = sol.dense.as_mut() {
            d.push(tab, t, data);
        }
    });
}

/// What an explicit step's record keeps for the discrete adjoint (`keep_stages`): its start
/// and stages, or at a checkpoint its start alone, in a record from `pool` where one is free.
#[allow(clippy::vec_box)]
pub(super) fn kept_stages(
    opts: &SolveOptions,
    pool: &mut Vec<Box<Stages>>,
    step: usize,
    u: &[f64],
    k: &[f64],
) -> Option<Box<Stages>> {
    if !opts.keep_stages {
        return None;
    }
    match opts.checkpoint_every {
        None => Some(Stages::reuse(pool, u, k)),
        Some(every) if step.is_multiple_of(every.max(1)) => Some(Box::new(Stages {
            u0: u.to_vec(),
            k: Vec::new(),
        })),
        Some(_) => None,
    }
}

/// Hairer's stiffness test of an adaptive explicit solve: `h·S ≥ 0.98·stability size` on
/// `STIFF_HITS` accepted steps without `NONSTIFF_RESET` consecutive steps below it between.
#[derive(Default)]
pub(super) struct StiffnessTest {
    hits: u32,
    nonstiff: u32,
}

impl StiffnessTest {
    pub fn observe(&mut self, tab: &Tableau, h_lambda: f64, t: f64) -> Result<(), SolveError> {
        if h_lambda >= 0.98 * tab.stability_size {
            self.hits += 1;
            self.nonstiff = 0;
            if self.hits >= STIFF_HITS {
                return Err(SolveError::StiffForExplicit {
                    method: tab.name,
                    t,
                    h_lambda,
                });
            }
        } else {
            self.nonstiff += 1;
            if self.nonstiff >= NONSTIFF_RESET {
                self.hits = 0;
            }
        }
        Ok(())
    }
}

fn norm(u: &[f64]) -> f64 {
    u.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The first non-finite stage value (stage order, then component), as an error at its time.
pub(super) fn first_non_finite(
    tab: &Tableau,
    k: &[f64],
    n: usize,
    t: f64,
    h: f64,
) -> Option<SolveError> {
    let at = k.iter().position(|x| !x.is_finite())?;
    let stage = at / n.max(1);
    Some(SolveError::NonFinite {
        component: at % n.max(1),
        value: k[at],
        t: t + tab.c.get(stage).copied().unwrap_or(1.0) * h,
    })
}

pub(super) fn check_finite(v: &[f64], t: f64) -> Result<(), SolveError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(component) => Err(SolveError::NonFinite {
            component,
            value: v[component],
            t,
        }),
        None => Ok(()),
    }
}

pub(super) fn check_inputs(
    method: Method,
    n: usize,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SolveOptions,
) -> Result<(), SolveError> {
    check_inputs_saving(method, n, (t0, t1, u0), opts, &opts.save_at)
}

/// [`check_inputs`] with the save times `save_at` in place of the options' (a batched row's
/// own, `BatchRow::save_at`).
pub(super) fn check_inputs_saving(
    method: Method,
    n: usize,
    (t0, t1, u0): (f64, f64, &[f64]),
    opts: &SolveOptions,
    save_at: &[f64],
) -> Result<(), SolveError> {
    let invalid = |s: String| Err(SolveError::InvalidOption(s));
    if u0.len() != n {
        return invalid(format!(
            "the initial state has {} values but the vector field has dimension {n}",
            u0.len()
        ));
    }
    if let Some(component) = u0.iter().position(|x| !x.is_finite()) {
        return Err(SolveError::NonFinite {
            component,
            value: u0[component],
            t: t0,
        });
    }
    if !t0.is_finite() || !t1.is_finite() {
        return invalid(format!("the time span [{t0}, {t1}] is not finite"));
    }
    check_step_options(opts.rtol, opts.atol, opts.dt, opts.h0)?;
    if let Err((_, why)) = opts.control.check() {
        return invalid(why);
    }
    if opts.dt.is_none() && !method.is_adaptive() {
        return Err(SolveError::MissingDt {
            method: method.name(),
        });
    }
    if opts.dt.is_some() && matches!(method, Method::Auto { .. }) {
        return invalid("`auto` chooses its own steps and takes no `dt`".into());
    }
    let dir = if t1 >= t0 { 1.0 } else { -1.0 };
    let mut prev = t0;
    for &s in save_at {
        if !s.is_finite() || (s - prev) * dir < 0.0 || (t1 - s) * dir < 0.0 {
            return invalid(format!(
                "save time {s} is outside [{t0}, {t1}] or out of order"
            ));
        }
        prev = s;
    }
    Ok(())
}

/// The tolerance and step options every solver (ODE and SDE) shares: positive finite `rtol`,
/// non-negative finite `atol`, positive finite `dt` and `h0` when given.
pub(crate) fn check_step_options(
    rtol: f64,
    atol: f64,
    dt: Option<f64>,
    h0: Option<f64>,
) -> Result<(), SolveError> {
    let invalid = |s: String| Err(SolveError::InvalidOption(s));
    if !(rtol > 0.0 && rtol.is_finite()) {
        return invalid(format!("rtol = {rtol} must be positive"));
    }
    if !(atol >= 0.0 && atol.is_finite()) {
        return invalid(format!("atol = {atol} must not be negative"));
    }
    for (name, v) in [("dt", dt), ("h0", h0)] {
        if let Some(v) = v
            && !(v > 0.0 && v.is_finite())
        {
            return invalid(format!("{name} = {v} must be positive"));
        }
    }
    Ok(())
}
