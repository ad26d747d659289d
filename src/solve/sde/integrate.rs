//! The SDE driver: runs any method over `[t0, t1]` on a fixed grid or adaptively (rejected
//! steps re-query the same Brownian tree), for one path or many, and records every accepted
//! step's `E_j` and `S_j` (`stiffness.rs`) in the ODE solver's [`StepRecord`].
//!
//! Invariants: `Stats::nfe` counts every drift, diffusion and diffusion-JVP call (rejected
//! attempts included) and equals `Σ_paths (2 + Σ_j nfe_j)` — the 2 being `f, g` at `t0`;
//! the last accepted step ends exactly on `t1`; every save time is a step end (steps are
//! shortened to land on it; nothing is interpolated); the Brownian path of a solve depends
//! only on `(seed, path)`, never on the steps taken.

use super::brownian::{BrownianCache, BrownianPoint, BrownianTree, DEFAULT_DEPTH, increments};
use super::field::SdeField;
use super::method::SdeMethod;
use super::step::{Work, sde_step};
use super::stiffness::stiffness_estimate;
use crate::diag::Diag;
use crate::solve::threads::Pool;
use crate::solve::{Solution, SolveError, Stats, StepRecord};

#[derive(Clone, Debug)]
pub struct SdeOptions {
    pub rtol: f64,
    pub atol: f64,
    /// First step of an adaptive solve; `None`: see [`initial_step`].
    pub h0: Option<f64>,
    /// Fixed step. Required by methods without an error estimate; with an adaptive method it
    /// switches control off (`E_j` is still computed and recorded).
    pub dt: Option<f64>,
    /// Most accepted steps per path before `glassbox::max_steps`.
    pub max_steps: usize,
    /// Output times, inside `[t0, t1]`, non-decreasing; steps land on them. Empty: `t0` and
    /// every accepted step.
    pub save_at: Vec<f64>,
    /// Weight of the drift part in the error estimate, `E = RMS((δ|E1| + |E2|)/sc)`.
    pub delta: f64,
    /// Depth of the Brownian tree (leaves are `2^-depth` of the span). `None`: see
    /// [`tree_depth`] — shallow enough to be cheap, deep enough that no two step ends of the
    /// solve share a leaf. The path drawn depends on `(seed, path, depth)`: give the depth to
    /// compare solves with different `dt` on one and the same path.
    pub depth: Option<u32>,
    /// Record the adaptive methods' stiffness estimate `S_j`. Free for a drift that does not
    /// read `t`; otherwise one drift evaluation per accepted step (`stiffness.rs`). Off: no
    /// `S_j` is recorded.
    pub stiffness: bool,
}

impl Default for SdeOptions {
    fn default() -> SdeOptions {
        SdeOptions {
            rtol: 1e-3,
            atol: 1e-6,
            h0: None,
            dt: None,
            max_steps: 100_000,
            save_at: Vec::new(),
            // StochasticDiffEq.jl's default.
            delta: 1.0 / 6.0,
            depth: None,
            stiffness: true,
        }
    }
}

/// Every path's solution, and the counts summed over paths.
#[derive(Clone, Debug)]
pub struct SdeSolution {
    pub paths: Vec<Solution>,
    pub stats: Stats,
}

/// Solves `du = f dt + g dW` (Itô, or Stratonovich for `euler_heun`) from `u(t0) = u0` on
/// `paths` independent Brownian paths numbered `0..paths` of the generator `seed`.
#[allow(clippy::too_many_arguments)]
pub fn solve_sde<S: SdeField + ?Sized>(
    method: SdeMethod,
    field: &mut S,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SdeOptions,
    seed: u64,
    paths: usize,
) -> Result<SdeSolution, SolveError> {
    check_inputs(method, field, t0, t1, u0, opts)?;
    let m = field.noise().processes();
    let depth = tree_depth(t0, t1, opts);
    let mut sols = Vec::with_capacity(paths);
    for path in 0..paths {
        let tree = BrownianTree::with_depth(seed, path as u64, t0, t1, m, depth);
        sols.push(solve_path(method, field, u0, opts, &tree)?);
    }
    Ok(SdeSolution::of(sols))
}

impl SdeSolution {
    /// The paths, in path order, with their counts summed.
    fn of(paths: Vec<Solution>) -> SdeSolution {
        let mut stats = Stats::default();
        for sol in &paths {
            stats.add(&sol.stats);
        }
        SdeSolution { paths, stats }
    }
}

/// [`solve_sde`] with the paths on `pool`'s threads (one copy of the field per thread): path
/// `k` is solved exactly as there, and the paths and counts come back in path order.
#[allow(clippy::too_many_arguments)]
pub fn solve_sde_on<S: SdeField + Send>(
    method: SdeMethod,
    pool: &mut Pool<S>,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SdeOptions,
    seed: u64,
    paths: usize,
) -> Result<SdeSolution, Diag> {
    let Some(first) = pool.workers_mut().first() else {
        return Ok(SdeSolution {
            paths: Vec::new(),
            stats: Stats::default(),
        });
    };
    check_inputs(method, first, t0, t1, u0, opts)?;
    let m = first.noise().processes();
    let depth = tree_depth(t0, t1, opts);
    let mut sols = vec![Solution::default(); paths];
    pool.blocks(&mut sols, |field, first, block| {
        for (j, sol) in block.iter_mut().enumerate() {
            let tree = BrownianTree::with_depth(seed, (first + j) as u64, t0, t1, m, depth);
            *sol = solve_path(method, field, u0, opts, &tree)?;
        }
        Ok(())
    })?;
    Ok(SdeSolution::of(sols))
}

/// One path driven by the given tree, over the tree's span.
pub fn solve_path<S: SdeField + ?Sized>(
    method: SdeMethod,
    field: &mut S,
    u0: &[f64],
    opts: &SdeOptions,
    tree: &BrownianTree,
) -> Result<Solution, SolveError> {
    let (t0, t1) = tree.span();
    check_inputs(method, field, t0, t1, u0, opts)?;
    if tree.processes() != field.noise().processes() {
        return Err(SolveError::InvalidOption(format!(
            "the Brownian tree has {} processes, the noise map {}",
            tree.processes(),
            field.noise().processes()
        )));
    }
    let n = field.dim();
    let of = field.noise().of().to_vec();
    let m = tree.processes();
    let fixed = opts.dt.is_some();
    let adaptive_method = method.is_adaptive();

    let mut stats = Stats::default();
    let mut sol = Solution {
        method: method.name(),
        dim: n,
        ts: Vec::new(),
        us: Vec::new(),
        steps: Vec::new(),
        stats,
        dense: None,
    };
    if let Some(dt) = opts.dt {
        // The grid's steps and those save times add: no regrowth of the step records.
        let grid = ((t1 - t0) / dt).ceil();
        let steps = if grid.is_finite() { grid as usize } else { 0 };
        // Capped: a huge grid (or max_steps) must not reserve memory it may never use.
        let steps = steps.saturating_add(opts.save_at.len());
        sol.steps.reserve(steps.min(opts.max_steps).min(1 << 20));
    }
    let mut u = u0.to_vec();
    let mut t = t0;
    let (mut f0, mut g0) = (vec![0.0; n], vec![0.0; n]);
    field.drift(t, &u, &mut f0);
    field.diffusion(t, &u, &mut g0);
    stats.nfe += 2;
    check_finite(&f0, t)?;
    check_finite(&g0, t)?;

    let mut saves = opts.save_at.iter().copied().peekable();
    if opts.save_at.is_empty() {
        sol.ts.push(t0);
        sol.us.extend_from_slice(u0);
    }
    while saves.peek() == Some(&t0) {
        sol.ts.push(t0);
        sol.us.extend_from_slice(u0);
        saves.next();
    }

    let mut w = Work::new(n);
    let (mut dw, mut i10) = (vec![0.0; m], vec![0.0; m]);
    let mut cache = BrownianCache::new();
    let mut here = BrownianPoint::origin(t0, m);
    let mut there = BrownianPoint::origin(t0, m);
    let mut h = match (opts.dt, opts.h0) {
        (Some(dt), _) => dt,
        (None, Some(h0)) => h0.min(t1 - t0),
        (None, None) => initial_step(&u, &f0, &g0, t1 - t0, opts),
    };
    if opts.dt.is_none() {
        crate::solve::error::check_first_step(t0, t1, h, opts.max_steps)?;
    }
    let mut grid_steps = 0u64;
    let mut step_nfe = 0u32;
    let mut rejected_last = false;
    let mut non_finite: Option<SolveError> = None;

    while t < t1 {
        if sol.steps.len() >= opts.max_steps {
            return Err(SolveError::MaxSteps {
                max_steps: opts.max_steps,
                t,
                t1,
            });
        }
        let target = if fixed {
            let grid = t0 + (grid_steps + 1) as f64 * h;
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
        let (t_next, on_grid) = match saves.peek() {
            Some(&s) if fixed && s > t && (s - target).abs() <= 1e-12 * (t1 - t0) => (s, true),
            Some(&s) if s < target && s > t => (s, false),
            _ => (target, true),
        };
        let h_try = t_next - t;
        // Cut short to land on a save time: the controller's step `h` still stands after it.
        let landed_short = !fixed && h_try < h;
        if !fixed && h_try <= 16.0 * f64::EPSILON * t.abs().max(t1 - t0) {
            return Err(non_finite.unwrap_or(SolveError::StepUnderflow {
                t,
                h: h_try,
                norm: u.iter().map(|x| x * x).sum::<f64>().sqrt(),
            }));
        }

        tree.point_cached(t_next, &mut cache, &mut there);
        increments(&here, &there, &mut dw, &mut i10);
        for i in 0..n {
            w.dw[i] = dw[of[i]];
            w.i10[i] = i10[of[i]];
        }
        let nfe = sde_step(method, field, t, &u, h_try, &f0, &g0, &mut w);
        stats.nfe += u64::from(nfe);
        step_nfe += nfe;
        let e = adaptive_method.then(|| error_estimate(&u, &w, opts));
        if !fixed {
            let e = e.unwrap_or(0.0);
            let acceptable = e <= 1.0; // false for NaN too
            if !acceptable {
                stats.rejected += 1;
                non_finite = w.u1.iter().position(|x| !x.is_finite()).map(|component| {
                    SolveError::NonFinite {
                        component,
                        value: w.u1[component],
                        t: t_next,
                    }
                });
                rejected_last = true;
                h = h_try * reject_factor(e);
                continue;
            }
        }
        check_finite(&w.u1, t_next)?;
        let s = if opts.stiffness {
            stiffness_estimate(method, field, t, h_try, &mut w)
        } else {
            None
        };
        if let Some((_, nfe)) = s {
            stats.nfe += u64::from(nfe);
            step_nfe += nfe;
        }

        sol.steps.push(StepRecord {
            t,
            h: h_try,
            error_estimate: e,
            stiffness_estimate: s.map(|(s, _)| s),
            nfe: step_nfe,
            stages: None,
        });
        stats.accepted += 1;
        if fixed && on_grid {
            grid_steps += 1;
        }
        t = t_next;
        u.copy_from_slice(&w.u1);
        std::mem::swap(&mut here, &mut there);
        while saves.peek() == Some(&t) {
            sol.ts.push(t);
            sol.us.extend_from_slice(&u);
            saves.next();
        }
        if opts.save_at.is_empty() {
            sol.ts.push(t);
            sol.us.extend_from_slice(&u);
        }
        step_nfe = 0;
        non_finite = None;
        if t < t1 {
            field.drift(t, &u, &mut f0);
            field.diffusion(t, &u, &mut g0);
            stats.nfe += 2;
            step_nfe = 2;
            check_finite(&f0, t)?;
            check_finite(&g0, t)?;
        }
        if !fixed {
            let mut fac = accept_factor(e.unwrap_or(0.0));
            if rejected_last {
                fac = fac.min(1.0);
            }
            rejected_last = false;
            // After a step shortened to hit a save time, the step planned before it stands:
            // scaling the short step instead would shorten the next one too, and a solve would
            // pay about one extra step per observation interval (0.73x NFE on the spiral SDE
            // with 20 save times, docs/results_sde.md).
            h = if landed_short {
                (h_try * fac).max(h)
            } else {
                h_try * fac
            };
        }
    }
    // Step records count the evaluations at each step's start to the step before it, so the
    // totals agree: 2 at t0 + Σ_j nfe_j.
    sol.stats = stats;
    Ok(sol)
}

/// The tree depth of a solve on `[t0, t1]`: `opts.depth` when given; on a fixed grid the
/// shallowest tree whose leaves are at most half the solve's smallest step (diffrax's
/// `tol = dt/2`: 11 levels for 1 000 steps), the steps being the grid's, the last one to `t1`
/// and those that save times off the grid cut; adaptively [`DEFAULT_DEPTH`] (the steps are
/// not known ahead). Never deeper than [`DEFAULT_DEPTH`].
///
/// Why that suffices: step ends at least `h_min` apart never fall into one leaf, so every
/// value the solve reads is bridged from exact tree nodes on its own, and the values are
/// jointly exact samples of Brownian motion, as with the deepest tree.
pub fn tree_depth(t0: f64, t1: f64, opts: &SdeOptions) -> u32 {
    if let Some(d) = opts.depth {
        return d;
    }
    let span = t1 - t0;
    let Some(dt) = opts.dt.filter(|_| span > 0.0) else {
        return DEFAULT_DEPTH;
    };
    // Within this of a grid point a time is that grid point (the driver's rule).
    let snap = 1e-12 * span;
    let mut h_min = dt.min(span);
    let last = span - (span / dt).floor() * dt;
    if last > snap {
        h_min = h_min.min(last);
    }
    let mut prev = t0;
    for &s in &opts.save_at {
        let x = (s - t0) / dt;
        let off = (x - x.floor()).min(x.ceil() - x) * dt;
        if off > snap {
            h_min = h_min.min(off);
        }
        if s > prev {
            h_min = h_min.min(s - prev);
        }
        prev = s;
    }
    let mut depth = 0;
    while depth < DEFAULT_DEPTH && span * 0.5f64.powi(depth as i32) > 0.5 * h_min {
        depth += 1;
    }
    depth
}

/// `E = RMS_i((δ|E1_i| + |E2_i|) / (atol + max(|u_n,i|, |u_{n+1},i|)·rtol))`; also the value
/// the SDE adjoint differentiates (`grad::sde_reg`).
pub(crate) fn error_estimate(u: &[f64], w: &Work, opts: &SdeOptions) -> f64 {
    if u.is_empty() {
        return 0.0;
    }
    let mut sum = 0.0;
    for (((u0, u1), e1), e2) in u.iter().zip(&w.u1).zip(&w.e1).zip(&w.e2) {
        let sc = opts.atol + u0.abs().max(u1.abs()) * opts.rtol;
        let e = opts.delta * e1.abs() + e2.abs();
        if e != 0.0 {
            sum += (e / sc).powi(2);
        }
    }
    (sum / u.len() as f64).sqrt()
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

/// An adaptive solve's first step: with `sc = atol + |u0|·rtol` and RMS norms
/// `d_f = ‖f0/sc‖`, `d_g = ‖g0/sc‖`, `h = min(0.01 / max(d_f, d_g), span)` (the span when
/// both vanish). Deliberately cautious; the controller grows it tenfold per step.
pub(crate) fn initial_step(
    u0: &[f64],
    f0: &[f64],
    g0: &[f64],
    span: f64,
    opts: &SdeOptions,
) -> f64 {
    let rms = |v: &[f64]| {
        if v.is_empty() {
            return 0.0;
        }
        let s: f64 = v
            .iter()
            .zip(u0)
            .map(|(x, u)| (x / (opts.atol + u.abs() * opts.rtol)).powi(2))
            .sum();
        (s / v.len() as f64).sqrt()
    };
    let d = rms(f0).max(rms(g0));
    if d > 0.0 && d.is_finite() {
        (0.01 / d).min(span)
    } else {
        span
    }
}

fn check_finite(v: &[f64], t: f64) -> Result<(), SolveError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(component) => Err(SolveError::NonFinite {
            component,
            value: v[component],
            t,
        }),
        None => Ok(()),
    }
}

fn check_inputs<S: SdeField + ?Sized>(
    method: SdeMethod,
    field: &S,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SdeOptions,
) -> Result<(), SolveError> {
    let invalid = |s: String| Err(SolveError::InvalidOption(s));
    let n = field.dim();
    if u0.len() != n {
        return invalid(format!(
            "the initial state has {} values but the SDE has dimension {n}",
            u0.len()
        ));
    }
    if field.noise().dim() != n
        || field
            .noise()
            .of()
            .iter()
            .any(|&k| k >= field.noise().processes())
    {
        return invalid(format!(
            "the noise map covers {} components of {n}",
            field.noise().dim()
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
    if t1 < t0 {
        return invalid(format!(
            "the time span [{t0}, {t1}] runs backwards; SDE solves run forward in time"
        ));
    }
    crate::solve::integrate::check_step_options(opts.rtol, opts.atol, opts.dt, opts.h0)?;
    if !(opts.delta >= 0.0 && opts.delta.is_finite()) {
        return invalid(format!("delta = {} must not be negative", opts.delta));
    }
    if opts.dt.is_none() && !method.is_adaptive() {
        return Err(SolveError::MissingDt {
            method: method.name(),
        });
    }
    let mut prev = t0;
    for &s in &opts.save_at {
        if !s.is_finite() || s < prev || s > t1 {
            return invalid(format!(
                "save time {s} is outside [{t0}, {t1}] or out of order"
            ));
        }
        prev = s;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::sde::{NoiseMap, SdeMethod, sde_from_fn};

    fn opts(dt: Option<f64>, save_at: Vec<f64>) -> SdeOptions {
        SdeOptions {
            dt,
            save_at,
            ..Default::default()
        }
    }

    /// Leaves at most half the smallest step: 2^-11 ≤ 1e-3/2 < 2^-10 on [0, 1].
    #[test]
    fn the_depth_follows_the_smallest_step() {
        assert_eq!(tree_depth(0.0, 1.0, &opts(Some(1e-3), vec![])), 11);
        assert_eq!(tree_depth(0.0, 2.0, &opts(Some(1e-3), vec![])), 12);
        assert_eq!(tree_depth(0.0, 1.0, &opts(Some(0.25), vec![])), 3);
        // Save times on the grid (within rounding: k/100 against k·0.01) cut no steps.
        let on_grid = (0..=100).map(|k| k as f64 / 100.0).collect();
        assert_eq!(tree_depth(0.0, 1.0, &opts(Some(0.01), on_grid)), 8);
        // One off the grid cuts a step of 1e-4 (2^-15 ≤ 5e-5 < 2^-14).
        assert_eq!(tree_depth(0.0, 1.0, &opts(Some(0.01), vec![0.0101])), 15);
        // The last step to t1 is short: 1 − 3·0.3 = 0.1.
        assert_eq!(tree_depth(0.0, 1.0, &opts(Some(0.3), vec![])), 5);
        // Adaptive: the steps are not known, the deepest tree.
        assert_eq!(tree_depth(0.0, 1.0, &opts(None, vec![])), DEFAULT_DEPTH);
        let given = SdeOptions {
            depth: Some(7),
            ..opts(Some(1e-3), vec![])
        };
        assert_eq!(tree_depth(0.0, 1.0, &given), 7);
    }

    /// `du = dW` sums the increments, so the saved states are the path the solve drew: on
    /// the automatic depth, equal to that tree queried directly (every step end bridged
    /// from exact nodes, save times off the grid included).
    #[test]
    fn a_solve_reads_the_tree_of_its_depth() {
        let mut f = sde_from_fn(
            NoiseMap::diagonal(2),
            |_t, _u: &[f64], du: &mut [f64]| du.fill(0.0),
            |_t, _u: &[f64], g: &mut [f64]| g.fill(1.0),
        );
        let save_at = vec![0.3, 0.5, 0.71, 1.0];
        let o = opts(Some(0.1), save_at.clone());
        let depth = tree_depth(0.0, 1.0, &o);
        let sol = solve_sde(
            SdeMethod::EulerMaruyama,
            &mut f,
            0.0,
            1.0,
            &[0.0; 2],
            &o,
            4,
            3,
        )
        .expect("ok");
        let tree = BrownianTree::with_depth(4, 2, 0.0, 1.0, 2, depth);
        let mut want = Vec::new();
        for &t in &save_at {
            let mut p = BrownianPoint::origin(0.0, 2);
            tree.point(t, &mut p);
            want.extend(p.w);
        }
        assert_eq!(sol.paths[2].ts, save_at);
        for (a, b) in sol.paths[2].us.iter().zip(&want) {
            assert!((a - b).abs() < 1e-13, "{a} vs {b}");
        }
    }
}
