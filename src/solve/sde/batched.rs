//! Batched SDE paths: many Brownian paths of one SDE advance together, and each evaluation
//! of a step (a stage's drift or diffusion, Euler–Heun's predictor, Milstein's JVP) is one
//! [`SdeBatchField`] call for every running path — with a [`super::JitBatchSde`] one GEMM per
//! dense layer instead of one mat-vec per path.
//!
//! Every path keeps its own Brownian tree, step size, accept/reject, save times, records and
//! counts: each is a [`Track`], the single-path driver's own state and code (`track.rs`,
//! `step.rs`'s `Work::{start, prepare, slots, finish}`, `stiffness.rs`), so a path's solve is
//! the per-path solve's arithmetic; only the field's evaluation differs (a GEMM sums in
//! another order). Paths that finished (or failed) leave the batch, which stays dense.
//!
//! Threads ([`solve_sde_batched_on`]): the paths are cut into fixed chunks of
//! [`CHUNK_PATHS`], each chunk one batched solve on whichever worker is free
//! (`Pool::each`): a chunk's result depends on its paths only, so the paths are bit-identical
//! at any thread count.
//!
//! Invariant: as [`super::solve_sde`], the first path (in path order) that fails is the
//! error, never a panic; the counts are summed in path order.

use std::ops::Range;

use super::batch_field::{SdeBatchField, SdePart};
use super::brownian::BrownianTree;
use super::integrate::{SdeOptions, SdeSolution, check_inputs, tree_depth};
use super::method::SdeMethod;
use super::step::Schedule;
use super::stiffness::{stiffness_point, stiffness_secant};
use super::track::Track;
use crate::diag::Diag;
use crate::solve::threads::Pool;
use crate::solve::{BatchControl, BatchStats, Solution, SolveError};

/// Paths per batched solve: the chunk a thread takes (`solve_sde_batched_on`). Large enough
/// that a dense layer's GEMM has rows to work on, small enough that 2 cores share 128 paths.
pub const CHUNK_PATHS: usize = 64;

/// Solves paths `paths` (numbered as in [`super::solve_sde`]: path `k` on tree `k` of
/// `seed`) together on the batched field `field`. Path `k`'s solution is the one
/// `solve_sde` returns for it, up to the rounding of the field's GEMMs.
#[allow(clippy::too_many_arguments)]
pub fn solve_sde_batched<B: SdeBatchField + ?Sized>(
    method: SdeMethod,
    field: &mut B,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SdeOptions,
    seed: u64,
    paths: Range<usize>,
) -> Result<SdeSolution, SolveError> {
    let noise = field.noise().clone();
    check_inputs(method, (field.dim(), &noise), t0, t1, u0, opts)?;
    let (m, depth) = (noise.processes(), tree_depth(t0, t1, opts));
    let trees: Vec<BrownianTree> = paths
        .map(|k| BrownianTree::with_depth(seed, k as u64, t0, t1, m, depth))
        .collect();
    let tracks = trees
        .iter()
        .map(|tree| Track::new(method, noise.of(), u0, opts, tree))
        .collect();
    let mut run = Run {
        method,
        schedule: Schedule::of(method),
        tracks,
        failed: vec![None; trees.len()],
        batch: Batch::new(u0.len()),
    };
    run.solve(field, opts);
    let Run {
        tracks,
        failed,
        batch,
        ..
    } = run;
    if let Some(e) = failed.into_iter().flatten().next() {
        return Err(e);
    }
    let sols: Vec<Solution> = tracks.into_iter().map(Track::finish).collect();
    let mut sol = SdeSolution::of(sols);
    sol.batch = Some(batch.stats);
    Ok(sol)
}

/// [`solve_sde_batched`] of paths `0..paths` in chunks of [`CHUNK_PATHS`] on `pool`'s
/// workers (one batched field each), the paths and counts in path order.
#[allow(clippy::too_many_arguments)]
pub fn solve_sde_batched_on<B: SdeBatchField + Send>(
    method: SdeMethod,
    pool: &mut Pool<B>,
    t0: f64,
    t1: f64,
    u0: &[f64],
    opts: &SdeOptions,
    seed: u64,
    paths: usize,
) -> Result<SdeSolution, Diag> {
    let mut chunks: Vec<Range<usize>> = (0..paths)
        .step_by(CHUNK_PATHS)
        .map(|a| a..(a + CHUNK_PATHS).min(paths))
        .collect();
    let parts = pool.each(&mut chunks, |field, _, chunk| {
        solve_sde_batched(method, field, t0, t1, u0, opts, seed, chunk.clone()).map_err(Diag::from)
    })?;
    let mut stats = BatchStats {
        control: BatchControl::PerRow,
        ..BatchStats::default()
    };
    let mut sols = Vec::with_capacity(paths);
    for part in parts {
        if let Some(b) = part.batch {
            stats.calls += b.calls;
            stats.row_evals += b.row_evals;
        }
        sols.extend(part.paths);
    }
    let mut sol = SdeSolution::of(sols);
    sol.batch = Some(stats);
    Ok(sol)
}

/// The batch's buffers for one call: the slots' times, arguments, tangents and results.
struct Batch {
    n: usize,
    t: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    out: Vec<f64>,
    stats: BatchStats,
}

impl Batch {
    fn new(n: usize) -> Batch {
        Batch {
            n,
            t: Vec::new(),
            u: Vec::new(),
            v: Vec::new(),
            out: Vec::new(),
            stats: BatchStats {
                control: BatchControl::PerRow,
                ..BatchStats::default()
            },
        }
    }

    /// Sizes the buffers for `slots` slots (the tangents only when `along`).
    fn slots(&mut self, slots: usize, along: bool) {
        self.t.resize(slots, 0.0);
        self.u.resize(slots * self.n, 0.0);
        self.v.resize(if along { slots * self.n } else { 0 }, 0.0);
        self.out.resize(slots * self.n, 0.0);
    }

    fn slot(&self, a: usize) -> Range<usize> {
        a * self.n..(a + 1) * self.n
    }

    fn eval<B: SdeBatchField + ?Sized>(&mut self, field: &mut B, part: SdePart) {
        if self.t.is_empty() {
            return;
        }
        field.eval_batch(part, &self.t, &self.u, &self.v, &mut self.out);
        self.stats.calls += 1;
        self.stats.row_evals += self.t.len() as u64;
    }
}

/// A batched solve in progress: every path's track, and why a path failed.
struct Run<'a> {
    method: SdeMethod,
    schedule: Schedule,
    tracks: Vec<Track<'a>>,
    failed: Vec<Option<SolveError>>,
    batch: Batch,
}

impl Run<'_> {
    fn solve<B: SdeBatchField + ?Sized>(&mut self, field: &mut B, opts: &SdeOptions) {
        let all: Vec<usize> = (0..self.tracks.len()).collect();
        self.start_values(field, &all);
        for r in all {
            let begun = self.tracks[r].begin();
            self.check(r, begun.map(|()| true));
        }
        let mut active = Vec::with_capacity(self.tracks.len());
        let mut accepted = Vec::with_capacity(self.tracks.len());
        let mut going_on = Vec::with_capacity(self.tracks.len());
        loop {
            active.clear();
            for r in 0..self.tracks.len() {
                if self.failed[r].is_none() {
                    let planned = self.tracks[r].plan();
                    if self.check(r, planned) {
                        active.push(r);
                    }
                }
            }
            if active.is_empty() {
                return;
            }
            self.attempt(field, &active);
            accepted.clear();
            for &r in &active {
                let nfe = self.schedule.nfe();
                let judged = self.tracks[r].judge(nfe);
                if self.check(r, judged) {
                    accepted.push(r);
                }
            }
            let s = self.stiffness(field, &accepted, opts);
            going_on.clear();
            for (&r, s) in accepted.iter().zip(s) {
                if self.tracks[r].accept(s) {
                    going_on.push(r);
                }
            }
            self.start_values(field, &going_on);
            for &r in &going_on {
                let restarted = self.tracks[r].restart();
                self.check(r, restarted.map(|()| true));
            }
        }
    }

    /// `Ok(b)` is `b`; an error fails path `r` (`false`).
    fn check(&mut self, r: usize, result: Result<bool, SolveError>) -> bool {
        match result {
            Ok(b) => b,
            Err(e) => {
                self.failed[r] = Some(e);
                false
            }
        }
    }

    /// `f0`, `g0` at the current state of the paths `rows`: two calls.
    fn start_values<B: SdeBatchField + ?Sized>(&mut self, field: &mut B, rows: &[usize]) {
        let batch = &mut self.batch;
        batch.slots(rows.len(), false);
        for (a, &r) in rows.iter().enumerate() {
            let tr = &self.tracks[r];
            batch.t[a] = tr.t;
            let slot = batch.slot(a);
            batch.u[slot].copy_from_slice(&tr.u);
        }
        batch.eval(field, SdePart::Drift);
        for (a, &r) in rows.iter().enumerate() {
            let slot = batch.slot(a);
            self.tracks[r].f0.copy_from_slice(&batch.out[slot]);
        }
        batch.eval(field, SdePart::Diffusion);
        for (a, &r) in rows.iter().enumerate() {
            let slot = batch.slot(a);
            self.tracks[r].g0.copy_from_slice(&batch.out[slot]);
        }
    }

    /// One attempted step of every `active` path: each evaluation of the schedule one call.
    fn attempt<B: SdeBatchField + ?Sized>(&mut self, field: &mut B, active: &[usize]) {
        let method = self.method;
        for &r in active {
            let tr = &mut self.tracks[r];
            let h = tr.h_try();
            tr.w.start(method, &tr.u, h, &tr.f0, &tr.g0);
        }
        let batch = &mut self.batch;
        for &e in self.schedule.evals() {
            let along = e.part() == SdePart::DiffusionJvp;
            batch.slots(active.len(), along);
            for (a, &r) in active.iter().enumerate() {
                let tr = &mut self.tracks[r];
                let h = tr.h_try();
                batch.t[a] = tr.w.prepare(method, e, (tr.t, h), &tr.u, &tr.g0);
                let slot = batch.slot(a);
                if along {
                    batch.u[slot.clone()].copy_from_slice(&tr.u);
                    batch.v[slot].copy_from_slice(&tr.g0);
                } else {
                    batch.u[slot].copy_from_slice(tr.w.slots(method, e).0);
                }
            }
            batch.eval(field, e.part());
            for (a, &r) in active.iter().enumerate() {
                let slot = batch.slot(a);
                let tr = &mut self.tracks[r];
                tr.w.slots(method, e).1.copy_from_slice(&batch.out[slot]);
            }
        }
        for &r in active {
            let tr = &mut self.tracks[r];
            let h = tr.h_try();
            tr.w.finish(method, &tr.u, h, &tr.f0, &tr.g0);
        }
    }

    /// The stiffness estimates of the `accepted` paths' steps (with the evaluations each
    /// cost): one drift call for all of them when the drift reads `t`.
    fn stiffness<B: SdeBatchField + ?Sized>(
        &mut self,
        field: &mut B,
        accepted: &[usize],
        opts: &SdeOptions,
    ) -> Vec<Option<(f64, u32)>> {
        let method = self.method;
        let n = self.batch.n;
        let points: Vec<_> = accepted
            .iter()
            .map(|&r| {
                let tr = &self.tracks[r];
                stiffness_point(method, tr.t, tr.h_try(), n).filter(|_| opts.stiffness)
            })
            .collect();
        if points.iter().all(Option::is_none) {
            return vec![None; accepted.len()];
        }
        let nfe = if field.drift_reads_t() {
            let batch = &mut self.batch;
            batch.slots(accepted.len(), false);
            for (a, (&r, point)) in accepted.iter().zip(&points).enumerate() {
                let Some((at, q)) = point else { continue };
                batch.t[a] = *at;
                let slot = batch.slot(a);
                batch.u[slot].copy_from_slice(&self.tracks[r].w.h0[q.clone()]);
            }
            batch.eval(field, SdePart::Drift);
            for (a, &r) in accepted.iter().enumerate() {
                let slot = batch.slot(a);
                self.tracks[r].w.fx.copy_from_slice(&batch.out[slot]);
            }
            1
        } else {
            for (&r, point) in accepted.iter().zip(&points) {
                let Some((_, q)) = point else { continue };
                let w = &mut self.tracks[r].w;
                w.fx.copy_from_slice(&w.fs[q.clone()]);
            }
            0
        };
        accepted
            .iter()
            .map(|&r| stiffness_secant(method, &self.tracks[r].w).map(|s| (s, nfe)))
            .map(|s| s.filter(|_| opts.stiffness))
            .collect()
    }
}
