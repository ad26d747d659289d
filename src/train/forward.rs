//! A classifier's forward solves for prediction and scoring (`glassbox predict`, the final
//! report, validation), batched where that pays: every row's solve advances together and each
//! stage evaluates the field for all running rows in one batched kernel call
//! (`solve::solve_batch`), so each dense layer is one GEMM over the rows.
//!
//! The choice is automatic ([`batch_field`]): batched when the field's batched kernel has
//! GEMM-sized layers (`jit::DEFAULT_GEMM_MIN`) and there are at least [`MIN_BATCH_ROWS`] rows;
//! otherwise today's per-row code (`Classify::predict`), which is faster for small fields
//! (a mat-vec of a few dozen multiply-adds costs less than gathering a batch). Joint step
//! control (`batch = joint`) is always batched: it is a property of the batch. The choice is
//! reported in [`ForwardStats`] (`glassbox predict --stats`, the training report's JSON);
//! `GLASSBOX_BATCHED=0` turns the batched path off for A/B timings.
//!
//! Training batches its forward and adjoint the same way, in fixed chunks (`train/batched.rs`).

use std::time::Instant;

use ndarray::Array2;
use serde::Serialize;

use super::classify::Classify;
use super::plan::Plan;
use super::rows::Rows;
use crate::diag::Diag;
use crate::sema::Model;
use crate::solve::{self, BatchControl, BatchField, BatchRow, JitBatchField, Tableau};

/// The rows one batched solve takes (the table's rows in order, block by block): measured on
/// the digits field (`benches/batched.rs`, release), a row costs 20 µs in a batch of 128, 23 µs
/// in one of 512 and 34 µs in one of 1 797, where the GEMMs' operands outgrow the caches.
/// Under joint control a block is the one state whose steps its rows share.
pub const BATCH_ROWS: usize = 128;

/// A row error of block row `row` as the table's row.
fn offset_row(e: solve::SolveError, start: usize) -> solve::SolveError {
    match e {
        solve::SolveError::Row { row, error } => solve::SolveError::Row {
            row: row + start,
            error,
        },
        e => e,
    }
}

/// Fewer rows than this are solved one by one under per-row control: a batch of a handful of
/// rows gains little from a GEMM and pays the batched kernel's compile.
pub const MIN_BATCH_ROWS: usize = 8;

/// Which code ran a classifier's forward solves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardPath {
    /// Each row's solve alone (`Classify::predict`).
    PerRow,
    /// All rows through `solve::solve_batch` on the batched field.
    Batched,
}

/// How a classifier's forward solves ran, and what they cost.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ForwardStats {
    pub path: ForwardPath,
    pub control: BatchControl,
    pub rows: usize,
    /// Field evaluations of all rows (a batched call of `b` rows counts `b`).
    pub nfe: u64,
    /// Batched field calls and the rows they evaluated (0 on the per-row path).
    pub calls: u64,
    pub row_evals: u64,
    /// Wall time of the encoder, the solves and the head, compile of the batched kernel apart.
    pub solve_ms: f64,
}

impl ForwardStats {
    /// The lines `glassbox predict --stats` prints.
    pub fn describe(&self) -> String {
        let path = match self.path {
            ForwardPath::PerRow => "per-row solves".to_string(),
            ForwardPath::Batched => format!(
                "batched solves ({} step control), {} calls, mean batch {:.1} rows",
                self.control.name(),
                self.calls,
                self.row_evals as f64 / self.calls.max(1) as f64
            ),
        };
        format!(
            "forward     {path}\nrows        {}\nnfe         {} ({:.1} per row)\nsolve time  {:.3} ms\n",
            self.rows,
            self.nfe,
            self.nfe as f64 / self.rows.max(1) as f64,
            self.solve_ms
        )
    }
}

/// Joint step control trains batched (`train/batched.rs`), but a joint solve keeps no dense
/// output per row, which an unbiased local regularizer samples from.
pub(super) fn check_trainable(model: &Model, plan: &Plan) -> Result<(), Diag> {
    let unbiased = plan
        .regularizers
        .iter()
        .any(|r| r.sample == Some(crate::sema::Sampling::Unbiased));
    if plan.step_control != BatchControl::Joint || !unbiased {
        return Ok(());
    }
    let mut d = Diag::error(
        "glassbox::train_unsupported",
        "`batch = joint` keeps no dense output per row, which `sample = unbiased` draws from",
    )
    .help("train with `batch = per_row` (the default), or use `sample = biased`");
    if let Some(s) = &model.solve {
        d = d.label(s.span, "joint step control");
    }
    Err(d)
}

/// The batched field for solving `rows` rows of `model` under `control`, or `None` where the
/// per-row code is the better choice (see the module docs).
pub fn batch_field(
    model: &Model,
    p: &[f64],
    rows: usize,
    control: BatchControl,
) -> Result<Option<JitBatchField>, Diag> {
    if control == BatchControl::PerRow && (rows < MIN_BATCH_ROWS || !batching_allowed()) {
        return Ok(None);
    }
    let f = JitBatchField::new(model, p)?;
    Ok((control == BatchControl::Joint || f.uses_gemm()).then_some(f))
}

/// `GLASSBOX_BATCHED=0` keeps per-row control on the per-row code (read once: for A/B
/// timings, as `GLASSBOX_SIMD`).
fn batching_allowed() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GLASSBOX_BATCHED").is_none_or(|v| v != "0"))
}

/// Logits of every row of `x` (`[rows, classes]`) with parameters `p`, batched or per row as
/// [`batch_field`] decides; the row workers serve the per-row path (on their threads; the
/// batched path runs its blocks on the calling thread).
pub fn predict_rows(
    cls: &Classify,
    model: &Model,
    workers: &mut Rows,
    plan: &Plan,
    p: &[f64],
    x: &Array2<f64>,
) -> Result<(Vec<f64>, ForwardStats), Diag> {
    let control = plan.step_control;
    let batched = batch_field(model, p, x.nrows(), control)?;
    let start = Instant::now();
    let mut stats = ForwardStats {
        path: ForwardPath::PerRow,
        control,
        rows: x.nrows(),
        nfe: 0,
        calls: 0,
        row_evals: 0,
        solve_ms: 0.0,
    };
    let logits = match batched {
        None => {
            let (logits, nfe) = cls.predict(workers, plan.tab, &plan.solve, p, x)?;
            stats.nfe = nfe;
            logits
        }
        Some(mut bf) => {
            stats.path = ForwardPath::Batched;
            cls.predict_batched(&mut bf, plan.tab, &plan.solve, control, p, x, &mut stats)?
        }
    };
    stats.solve_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok((logits, stats))
}

impl Classify {
    /// [`Classify::predict`] with every row's solve in one batched solve on `field` under
    /// `control`; the same logits under per-row control (to the GEMM's rounding).
    #[allow(clippy::too_many_arguments)]
    pub fn predict_batched(
        &self,
        field: &mut JitBatchField,
        tab: &'static Tableau,
        opts: &solve::SolveOptions,
        control: BatchControl,
        p: &[f64],
        x: &Array2<f64>,
        stats: &mut ForwardStats,
    ) -> Result<Vec<f64>, Diag> {
        field.set_params(p)?;
        let opts = self.forward_options(opts);
        let mut out = Vec::with_capacity(x.nrows() * self.classes);
        let xs: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
        for (block, xs) in xs.chunks(BATCH_ROWS).enumerate() {
            if field.input_len() > 0 {
                field.set_inputs(&xs.concat())?;
            }
            let u0s = xs
                .iter()
                .map(|xr| self.encode(p, xr))
                .collect::<Result<Vec<_>, Diag>>()?;
            let rows = BatchRow::all(self.t0, self.t1, &u0s);
            let sol = solve::solve_batch(tab, field, &rows, &opts, control)
                .map_err(|e| Diag::from(offset_row(e, block * BATCH_ROWS)))?;
            stats.calls += sol.stats.calls;
            stats.row_evals += sol.stats.row_evals;
            for ((xr, u0), s) in xs.iter().zip(&u0s).zip(&sol.rows) {
                stats.nfe += s.stats.nfe;
                out.extend(self.logits(p, xr, s.last().unwrap_or(u0))?);
            }
        }
        Ok(out)
    }
}
