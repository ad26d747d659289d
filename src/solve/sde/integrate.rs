//! The SDE driver: runs any method over `[t0, t1]` on a fixed grid or adaptively (rejected
//! steps re-query the same Brownian tree), for one path or many, and records every accepted
//! step's `E_j` and `S_j` (`stiffness.rs`) in the ODE solver's [`StepRecord`].
//!
//! Invariants: `Stats::nfe` counts every drift, diffusion and diffusion-JVP call (rejected
//! attempts included) and equals `Σ_paths (2 + Σ_j nfe_j)` — the 2 being `f, g` at `t0`;
//! the last accepted step ends exactly on `t1`; every save time is a step end (steps are
//! shortened to land on it; nothing is interpolated); the Brownian path of a solve depends
//! only on `(seed, path)`, never on the steps taken.

use super::brownian::{BrownianTree, DEFAULT_DEPTH};
use super::field::{NoiseMap, SdeField};
use super::method::SdeMethod;
use super::step::{Work, sde_step};
use super::stiffness::stiffness_estimate;
use super::track::Track;
use crate::diag::Diag;
use crate::solve::threads::Pool;
use crate::solve::{BatchStats, Solution, SolveError, Stats};

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
    /// The batched field's calls when the paths were solved batched (`batched.rs`); `None`
    /// when each path was solved alone.
    pub batch: Option<BatchStats>,
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
    check_inputs(method, (field.dim(), field.noise()), t0, t1, u0, opts)?;
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
    /// The paths, in path order, with their counts summed (solved one by one).
    pub(super) fn of(paths: Vec<Solution>) -> SdeSolution {
        let mut stats = Stats::default();
        for sol in &paths {
            stats.add(&sol.stats);
        }
        SdeSolution {
            paths,
            stats,
            batch: None,
        }
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
        return Ok(SdeSolution::of(Vec::new()));
    };
    check_inputs(method, (first.dim(), first.noise()), t0, t1, u0, opts)?;
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
    check_inputs(method, (field.dim(), field.noise()), t0, t1, u0, opts)?;
    if tree.processes() != field.noise().processes() {
        return Err(SolveError::InvalidOption(format!(
            "the Brownian tree has {} processes, the noise map {}",
            tree.processes(),
            field.noise().processes()
        )));
    }
    let of = field.noise().of().to_vec();
    let mut tr = Track::new(method, &of, u0, opts, tree);
    field.drift(tr.t, &tr.u, &mut tr.f0);
    field.diffusion(tr.t, &tr.u, &mut tr.g0);
    tr.begin()?;
    while tr.plan()? {
        let (t, h) = (tr.t, tr.h_try());
        let nfe = sde_step(method, field, t, &tr.u, h, &tr.f0, &tr.g0, &mut tr.w);
        if !tr.judge(nfe)? {
            continue;
        }
        let s = if opts.stiffness {
            stiffness_estimate(method, field, t, h, &mut tr.w)
        } else {
            None
        };
        if tr.accept(s) {
            field.drift(tr.t, &tr.u, &mut tr.f0);
            field.diffusion(tr.t, &tr.u, &mut tr.g0);
            tr.restart()?;
        }
    }
    Ok(tr.finish())
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

/// The checks of every SDE solve's inputs, for a field of `n` components and noise map
/// `noise`.
pub(super) fn check_inputs(
    method: SdeMethod,
    (n, noise): (usize, &NoiseMap),
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SdeOptions,
) -> Result<(), SolveError> {
    let invalid = |s: String| Err(SolveError::InvalidOption(s));
    if u0.len() != n {
        return invalid(format!(
            "the initial state has {} values but the SDE has dimension {n}",
            u0.len()
        ));
    }
    if noise.dim() != n || noise.of().iter().any(|&k| k >= noise.processes()) {
        return invalid(format!(
            "the noise map covers {} components of {n}",
            noise.dim()
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
    use crate::solve::sde::{BrownianPoint, SdeMethod, sde_from_fn};

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
