//! Batched solves: many independent problems of one model (classifier rows, trajectory
//! windows, each with its own span and save times; later SDE paths) advance together, stage by
//! stage, and every stage evaluates
//! the field for all running rows in one [`BatchField`] call — with a [`JitBatchField`]
//! (`super::JitBatchField`) one GEMM per dense layer instead of one mat-vec per row.
//!
//! Two kinds of step control ([`BatchControl`], the solve clause's `batch = per_row | joint`):
//!
//! - [`BatchControl::PerRow`] (the default): every row keeps its own `t`, `h`, PI controller,
//!   accept/reject, save times, records and statistics — exactly the single-row driver's
//!   (`integrate.rs`), built from the same pieces (`Course`, `SaveTimes`, `record_rk_step`,
//!   `kept_stages`, `StiffnessTest`, `Controller`, `InitialProbe`, the step's
//!   `Work::{start, stage_argument, finish}`). Each iteration every running row attempts one
//!   step; stage `i` gathers the rows' stage arguments into one dense `[rows, n]` buffer. Rows
//!   that reached their end (or failed) leave the batch, so it stays dense as it shrinks.
//! - [`BatchControl::Joint`]: one step size for the batch, the error norm an RMS over every
//!   component of every row, one accept/reject: the single-row driver on the stacked state of
//!   `rows·n` values (what diffrax and torchdiffeq do with a batch as one state). Cheaper (no
//!   per-row bookkeeping, one controller), but a different model of the batch: a row's result
//!   depends on the other rows.
//!
//! Invariant: the per-row batched solve is the per-row solve: same controller, same
//! arithmetic per row; only the field's evaluation differs (a GEMM sums in another order).
//! A failing row is an error naming it (`SolveError::Row`), never a panic.

use serde::Serialize;

use super::batch_field::BatchField;
use super::control::{Controller, InitialProbe};
use super::dense::StepData;
use super::error::{SolveError, check_first_step};
use super::field::VectorField;
use super::integrate::{
    Accepted, Course, SaveTimes, Solution, SolveOptions, Stages, StepRecord, StiffnessTest,
    check_finite, check_inputs, check_inputs_saving, first_non_finite, kept_stages, record_rk_step,
    solve_with,
};
use super::method::Method;
use super::step::{StepResult, Work};
use super::tableau::Tableau;

/// How a batch's steps are controlled (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchControl {
    /// Each row its own steps: the results of solving every row alone.
    #[default]
    PerRow,
    /// One step size for all rows, the error norm over all of them.
    Joint,
}

impl BatchControl {
    /// The solve clause's words for the two (`batch = per_row | joint`).
    pub const NAMES: [&'static str; 2] = ["per_row", "joint"];

    pub fn from_name(name: &str) -> Option<BatchControl> {
        match name {
            "per_row" => Some(BatchControl::PerRow),
            "joint" => Some(BatchControl::Joint),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BatchControl::PerRow => "per_row",
            BatchControl::Joint => "joint",
        }
    }
}

/// One problem of a batch: its span, initial state (`u0.len()` = the field's dimension) and
/// save times: its own (`save_at`, e.g. a trajectory window's observation times), or
/// `SolveOptions::save_at` where it has none; either is checked against its own span.
#[derive(Clone, Copy, Debug)]
pub struct BatchRow<'a> {
    pub t0: f64,
    pub t1: f64,
    pub u0: &'a [f64],
    /// The row's save times in place of the options' (`None`: the options').
    pub save_at: Option<&'a [f64]>,
}

impl<'a> BatchRow<'a> {
    /// A row over `[t0, t1]` from `u0`, saving at the options' times.
    pub fn new(t0: f64, t1: f64, u0: &'a [f64]) -> BatchRow<'a> {
        BatchRow {
            t0,
            t1,
            u0,
            save_at: None,
        }
    }

    /// A row per initial state, all over `[t0, t1]`.
    pub fn all(t0: f64, t1: f64, u0s: &'a [Vec<f64>]) -> Vec<BatchRow<'a>> {
        u0s.iter().map(|u0| BatchRow::new(t0, t1, u0)).collect()
    }

    /// The times this row saves at under `opts`.
    pub fn saves<'o>(&self, opts: &'o SolveOptions) -> &'o [f64]
    where
        'a: 'o,
    {
        self.save_at.unwrap_or(&opts.save_at)
    }
}

/// Every row's solution (`rows[r]` as [`solve_with`] would return it for row `r` in per-row
/// control) and what the batched evaluations cost.
#[derive(Clone, Debug, Default)]
pub struct BatchSolution {
    pub rows: Vec<Solution>,
    pub stats: BatchStats,
}

/// The batched field's calls: `row_evals / calls` is the mean batch a call evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    pub control: BatchControl,
    pub calls: u64,
    pub row_evals: u64,
}

/// Solves every row of `rows` with `tab` on the batched field `f` under `control`. The first
/// row (in order) that fails is the error, as `SolveError::Row`.
pub fn solve_batch<F: BatchField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    rows: &[BatchRow],
    opts: &SolveOptions,
    control: BatchControl,
) -> Result<BatchSolution, SolveError> {
    match control {
        BatchControl::PerRow => per_row(tab, f, rows, opts),
        BatchControl::Joint => joint(tab, f, rows, opts),
    }
}

/// The batch's buffers for one call: the slots' rows, times, arguments and results.
struct Batch {
    n: usize,
    rows: Vec<usize>,
    t: Vec<f64>,
    u: Vec<f64>,
    du: Vec<f64>,
    stats: BatchStats,
}

impl Batch {
    fn new(n: usize, capacity: usize, control: BatchControl) -> Batch {
        Batch {
            n,
            rows: Vec::with_capacity(capacity),
            t: Vec::with_capacity(capacity),
            u: Vec::with_capacity(capacity * n),
            du: Vec::with_capacity(capacity * n),
            stats: BatchStats {
                control,
                ..BatchStats::default()
            },
        }
    }

    /// Sizes the buffers for the slots `rows` (zeroed arguments, to be written).
    fn slots(&mut self, rows: impl Iterator<Item = usize>) {
        self.rows.clear();
        self.rows.extend(rows);
        let a = self.rows.len();
        self.t.resize(a, 0.0);
        self.u.resize(a * self.n, 0.0);
        self.du.resize(a * self.n, 0.0);
    }

    /// Slot `a`'s argument (to write) — and its row's time.
    fn arg(&mut self, a: usize, t: f64) -> &mut [f64] {
        self.t[a] = t;
        &mut self.u[a * self.n..(a + 1) * self.n]
    }

    fn result(&self, a: usize) -> &[f64] {
        &self.du[a * self.n..(a + 1) * self.n]
    }

    fn eval<F: BatchField + ?Sized>(&mut self, f: &mut F) {
        if self.rows.is_empty() {
            return;
        }
        f.eval_batch(&self.rows, &self.t, &self.u, &mut self.du);
        self.stats.calls += 1;
        self.stats.row_evals += self.rows.len() as u64;
    }
}

/// One row of a per-row batched solve: the single-row driver's state for an explicit method.
struct Track<'a> {
    course: Course,
    tol: (f64, f64),
    t: f64,
    h: f64,
    u: Vec<f64>,
    f_cur: Vec<f64>,
    f_next: Vec<f64>,
    w: Work,
    ctrl: Controller,
    stiff: StiffnessTest,
    saves: SaveTimes<'a>,
    /// Whether the row has save times (its own or the options'): then its last step's
    /// `f(t_{n+1}, u_{n+1})` feeds the interpolant.
    has_saves: bool,
    thetas: Vec<f64>,
    sol: Solution,
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Stages>>,
    step_nfe: u32,
    /// Why the latest rejected attempt failed, if the field returned NaN/Inf.
    non_finite: Option<SolveError>,
    /// The current attempt: where it ends, and its estimates once its stages are in.
    t_next: f64,
    step: Option<StepResult>,
    failed: Option<SolveError>,
}

impl<'a> Track<'a> {
    fn new(
        tab: &'static Tableau,
        row: &BatchRow<'a>,
        opts: &'a SolveOptions,
        n: usize,
    ) -> Track<'a> {
        let course = Course::new(row.t0, row.t1, opts.dt.is_some() || !tab.is_adaptive());
        let mut sol = Solution::default();
        let pool = sol.reset(tab.name, n, opts.dense);
        let save_at = row.saves(opts);
        let span = (row.t0, row.t1, row.u0);
        let failed = check_inputs_saving(Method::Explicit(tab), n, span, opts, save_at).err();
        Track {
            course,
            tol: (opts.rtol, opts.atol),
            t: row.t0,
            h: 0.0,
            u: if failed.is_some() {
                vec![0.0; n]
            } else {
                row.u0.to_vec()
            },
            f_cur: vec![0.0; n],
            f_next: vec![0.0; n],
            w: Work::new(tab, n),
            ctrl: Controller::new(tab, &opts.control),
            stiff: StiffnessTest::default(),
            saves: SaveTimes::new(save_at, course.dir),
            has_saves: !save_at.is_empty(),
            thetas: Vec::new(),
            sol,
            pool,
            step_nfe: 0,
            non_finite: None,
            t_next: row.t0,
            step: None,
            failed,
        }
    }

    fn ok(&self) -> bool {
        self.failed.is_none()
    }

    fn running(&self) -> bool {
        self.ok() && self.course.running(self.t)
    }

    fn fail(&mut self, e: SolveError) {
        self.failed = Some(e);
        self.step = None;
    }

    /// After `f(t0, u0)` is in `f_cur`: its check, the saves at `t0`, and the first step when
    /// the options fix it (`false`: the automatic choice needs its probe).
    fn begin(&mut self, opts: &SolveOptions) -> bool {
        self.sol.stats.nfe += 1;
        if let Err(e) = check_finite(&self.f_cur, self.t) {
            self.fail(e);
            return true;
        }
        self.saves.start(&mut self.sol, self.t, &self.u);
        match self.course.given_first_step(opts) {
            Some(h) => {
                self.h = h;
                true
            }
            None => false,
        }
    }

    /// Plans the next attempt (`false`: the row failed instead).
    fn plan(&mut self, opts: &SolveOptions) -> bool {
        let accepted = self.sol.stats.accepted;
        match (self.course).attempt_end(
            self.t,
            self.h,
            &self.u,
            accepted,
            opts,
            &mut self.non_finite,
        ) {
            Ok(t_next) => {
                self.t_next = t_next;
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// The attempt's size.
    fn h_try(&self) -> f64 {
        self.t_next - self.t
    }

    /// Judges the attempt whose stages are in: a rejection sets the retry's step; an accepted
    /// step with a finite end returns `true` (its `f(t_{n+1}, u_{n+1})` is needed next).
    fn judge(&mut self, tab: &Tableau) -> bool {
        let Some(r) = &self.step else { return false };
        self.sol.stats.nfe += u64::from(r.nfe);
        self.step_nfe += r.nfe;
        let e = r.error.unwrap_or(0.0);
        let h_try = self.h_try();
        let acceptable = e <= 1.0; // false for NaN too
        if !self.course.fixed && !acceptable {
            self.sol.stats.rejected += 1;
            let n = self.u.len();
            self.non_finite = first_non_finite(tab, &self.w.k, n, self.t, h_try);
            self.h = self.ctrl.rejected(h_try, e);
            self.step = None;
            return false;
        }
        if let Err(e) = check_finite(&self.w.u1, self.t_next) {
            self.fail(e);
            return false;
        }
        true
    }

    /// Whether the accepted step needs `f(t_{n+1}, u_{n+1})` evaluated (not FSAL, and a next
    /// step or an interpolant reads it), as the single-row driver decides.
    fn needs_f1(&self, tab: &Tableau, opts: &SolveOptions) -> bool {
        let last = self.t_next == self.course.end();
        !tab.fsal && (!last || opts.dense || self.has_saves)
    }

    /// Records the accepted step (`f_next` set) and advances to its end.
    fn accept(&mut self, tab: &'static Tableau, opts: &SolveOptions) {
        let Some(r) = self.step.take() else { return };
        let n = self.u.len();
        if tab.fsal {
            let s = tab.stages();
            self.f_next.copy_from_slice(&self.w.k[(s - 1) * n..s * n]);
        }
        if let Err(e) = check_finite(&self.f_next, self.t_next) {
            return self.fail(e);
        }
        let (t, t_next, h_try) = (self.t, self.t_next, self.h_try());
        let data = StepData {
            h: h_try,
            u0: &self.u,
            u1: &self.w.u1,
            k: &self.w.k,
            f1: &self.f_next,
        };
        let record = StepRecord {
            t,
            h: h_try,
            error_estimate: r.error,
            stiffness_estimate: r.stiffness,
            nfe: self.step_nfe,
            stages: kept_stages(
                opts,
                &mut self.pool,
                self.sol.steps.len(),
                &self.u,
                &self.w.k,
            ),
        };
        let at = Accepted {
            t_next,
            u1: &self.w.u1,
            record,
        };
        let saves = (&mut self.saves, &mut self.thetas);
        record_rk_step(tab, &mut self.sol, saves, &data, at);
        self.sol.stats.accepted += 1;
        self.step_nfe = 0;
        self.non_finite = None;
        if !self.course.fixed && opts.detect_stiffness {
            let h_lambda = h_try.abs() * r.stiffness.unwrap_or(0.0);
            if let Err(e) = self.stiff.observe(tab, h_lambda, t_next) {
                return self.fail(e);
            }
        }
        self.t = t_next;
        self.u.copy_from_slice(&self.w.u1);
        std::mem::swap(&mut self.f_cur, &mut self.f_next);
        if !self.course.fixed {
            self.h = self.ctrl.accepted(h_try, r.error.unwrap_or(0.0));
        }
    }
}

/// Per-row control: every row the single-row driver's solve, the field evaluated for all
/// running rows at once.
fn per_row<F: BatchField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    rows: &[BatchRow],
    opts: &SolveOptions,
) -> Result<BatchSolution, SolveError> {
    let n = f.dim();
    let mut tracks: Vec<Track> = rows.iter().map(|r| Track::new(tab, r, opts, n)).collect();
    let mut batch = Batch::new(n, rows.len(), BatchControl::PerRow);
    let all = |tracks: &[Track]| -> Vec<usize> {
        (0..tracks.len()).filter(|&r| tracks[r].ok()).collect()
    };

    // f(t0, u0), then the automatic first steps' probes, each one call for all rows.
    let live = all(&tracks);
    batch.slots(live.iter().copied());
    for (a, &r) in live.iter().enumerate() {
        let tr = &tracks[r];
        batch.arg(a, tr.t).copy_from_slice(&tr.u);
    }
    batch.eval(f);
    let mut probes = Vec::new();
    for (a, &r) in live.iter().enumerate() {
        let tr = &mut tracks[r];
        tr.f_cur.copy_from_slice(batch.result(a));
        if !tr.begin(opts) {
            probes.push(r);
        }
    }
    batch.slots(probes.iter().copied());
    let mut pending = Vec::with_capacity(probes.len());
    for (a, &r) in probes.iter().enumerate() {
        let tr = &tracks[r];
        let (t0, t1) = (tr.t, rows[r].t1);
        let mut point = vec![0.0; n];
        let probe = InitialProbe::new(tab.order, t0, t1, &tr.u, &tr.f_cur, tr.tol, &mut point);
        batch.arg(a, probe.t()).copy_from_slice(&point);
        pending.push(probe);
    }
    batch.eval(f);
    for ((a, &r), probe) in probes.iter().enumerate().zip(&pending) {
        let tr = &mut tracks[r];
        tr.f_next.copy_from_slice(batch.result(a));
        tr.h = opts
            .control
            .limit(probe.finish(&tr.u, &tr.f_cur, &tr.f_next));
        tr.sol.stats.nfe += 1;
        if let Err(e) = check_first_step(tr.t, rows[r].t1, tr.h, opts.max_steps) {
            tr.fail(e);
        }
    }

    let mut active: Vec<usize> = Vec::with_capacity(rows.len());
    let mut f1_rows = Vec::with_capacity(rows.len());
    loop {
        active.clear();
        for (r, tr) in tracks.iter_mut().enumerate() {
            if tr.running() && tr.plan(opts) {
                active.push(r);
            }
        }
        if active.is_empty() {
            break;
        }
        attempt(tab, f, &mut tracks, &active, &mut batch);
        // Accepted rows that need f(t_{n+1}, u_{n+1}): one more call for all of them.
        f1_rows.clear();
        for &r in &active {
            let tr = &mut tracks[r];
            if tr.judge(tab) && tr.needs_f1(tab, opts) {
                f1_rows.push(r);
            }
        }
        batch.slots(f1_rows.iter().copied());
        for (a, &r) in f1_rows.iter().enumerate() {
            let tr = &tracks[r];
            batch.arg(a, tr.t_next).copy_from_slice(&tr.w.u1);
        }
        batch.eval(f);
        for (a, &r) in f1_rows.iter().enumerate() {
            let tr = &mut tracks[r];
            tr.f_next.copy_from_slice(batch.result(a));
            tr.sol.stats.nfe += 1;
            tr.step_nfe += 1;
        }
        for &r in &active {
            tracks[r].accept(tab, opts);
        }
    }

    let mut out = Vec::with_capacity(tracks.len());
    for (row, tr) in tracks.into_iter().enumerate() {
        if let Some(e) = tr.failed {
            return Err(SolveError::Row {
                row,
                error: Box::new(e),
            });
        }
        out.push(tr.sol);
    }
    Ok(BatchSolution {
        rows: out,
        stats: batch.stats,
    })
}

/// One attempted step of every `active` row: each stage's arguments gathered into one dense
/// batch, evaluated in one call, scattered back into the rows' stages.
fn attempt<F: BatchField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    tracks: &mut [Track],
    active: &[usize],
    batch: &mut Batch,
) {
    batch.slots(active.iter().copied());
    for &r in active {
        let tr = &mut tracks[r];
        tr.w.start(tab, &tr.u, &tr.f_cur);
    }
    for i in 1..tab.stages() {
        for (a, &r) in active.iter().enumerate() {
            let tr = &mut tracks[r];
            let h = tr.h_try();
            let g = batch.arg(a, tr.t + tab.c[i] * h);
            tr.w.stage_argument(tab, i, &tr.u, h, g);
        }
        batch.eval(f);
        for (a, &r) in active.iter().enumerate() {
            tracks[r].w.set_stage(i, batch.result(a));
        }
    }
    for (a, &r) in active.iter().enumerate() {
        let tr = &mut tracks[r];
        let n = tr.u.len();
        // The last stage's argument (FSAL: `u_{n+1}`) is still in the batch's buffer.
        let g_last = &batch.u[a * n..(a + 1) * n];
        let (tol, h) = (tr.tol, tr.h_try());
        tr.step = Some(tr.w.finish(tab, &tr.u, h, tol, g_last));
    }
}

/// The batch as one state of `rows·n` values for the single-row driver: `t` shared, every
/// row's field in one call.
struct Stacked<'f, F: ?Sized> {
    f: &'f mut F,
    rows: Vec<usize>,
    t: Vec<f64>,
    stats: BatchStats,
}

impl<F: BatchField + ?Sized> VectorField for Stacked<'_, F> {
    fn dim(&self) -> usize {
        self.rows.len() * self.f.dim()
    }

    fn eval(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        self.t.fill(t);
        self.f.eval_batch(&self.rows, &self.t, u, du);
        self.stats.calls += 1;
        self.stats.row_evals += self.rows.len() as u64;
    }
}

/// Joint control: the single-row driver on the stacked state, split into rows.
fn joint<F: BatchField + ?Sized>(
    tab: &'static Tableau,
    f: &mut F,
    rows: &[BatchRow],
    opts: &SolveOptions,
) -> Result<BatchSolution, SolveError> {
    let n = f.dim();
    let Some(first) = rows.first() else {
        return Ok(BatchSolution::default());
    };
    let invalid = |s: &str| SolveError::InvalidOption(s.to_string());
    if rows.iter().any(|r| r.t0 != first.t0 || r.t1 != first.t1) {
        return Err(invalid(
            "joint step control needs one time span for all rows",
        ));
    }
    let save_at = first.saves(opts);
    if rows.iter().any(|r| r.saves(opts) != save_at) {
        return Err(invalid(
            "joint step control needs one set of save times for all rows",
        ));
    }
    // The rows' shared save times, where they have their own.
    let own;
    let opts = match first.save_at {
        Some(times) => {
            own = SolveOptions {
                save_at: times.to_vec(),
                ..opts.clone()
            };
            &own
        }
        None => opts,
    };
    if opts.dense {
        return Err(invalid("joint step control keeps no per-row dense output"));
    }
    if let Some(row) = rows.iter().position(|r| r.u0.len() != n) {
        let error = check_inputs(
            Method::Explicit(tab),
            n,
            first.t0,
            first.t1,
            rows[row].u0,
            opts,
        )
        .err()
        .unwrap_or_else(|| invalid("wrong initial state length"));
        return Err(SolveError::Row {
            row,
            error: Box::new(error),
        });
    }
    let u0: Vec<f64> = rows.iter().flat_map(|r| r.u0.iter().copied()).collect();
    let mut stacked = Stacked {
        f,
        rows: (0..rows.len()).collect(),
        t: vec![0.0; rows.len()],
        stats: BatchStats {
            control: BatchControl::Joint,
            ..BatchStats::default()
        },
    };
    let sol = solve_with(
        Method::Explicit(tab),
        &mut stacked,
        first.t0,
        first.t1,
        &u0,
        opts,
    )
    .map_err(|e| in_row(e, n))?;
    Ok(BatchSolution {
        rows: (0..rows.len())
            .map(|r| row_of(&sol, r, rows.len(), n))
            .collect(),
        stats: stacked.stats,
    })
}

/// A stacked solve's error, its component read as (row, component).
fn in_row(e: SolveError, n: usize) -> SolveError {
    match e {
        SolveError::NonFinite {
            component,
            value,
            t,
        } if n > 0 => SolveError::Row {
            row: component / n,
            error: Box::new(SolveError::NonFinite {
                component: component % n,
                value,
                t,
            }),
        },
        e => e,
    }
}

/// Row `r` of a stacked solution of `rows` rows of `n`: its columns of the saved states and
/// of the kept stages (stage-major, so each stage's block of the row), the steps' records and
/// statistics shared.
fn row_of(sol: &Solution, r: usize, rows: usize, n: usize) -> Solution {
    let width = rows * n;
    let columns = |v: &[f64]| -> Vec<f64> {
        v.chunks(width.max(1))
            .flat_map(|block| block[r * n..(r + 1) * n].iter().copied())
            .collect()
    };
    Solution {
        method: sol.method,
        dim: n,
        ts: sol.ts.clone(),
        us: columns(&sol.us),
        steps: sol
            .steps
            .iter()
            .map(|s| StepRecord {
                stages: s.stages.as_ref().map(|st| {
                    Box::new(Stages {
                        u0: columns(&st.u0),
                        k: columns(&st.k),
                    })
                }),
                ..*s
            })
            .collect(),
        stats: sol.stats,
        dense: None,
    }
}
