//! A trajectory model's training step batched: the segments of an iteration (windows, or
//! whole trajectories) are cut into fixed chunks of [`PER_ROW_CHUNK`] segments; each chunk is
//! one batched solve (`solve::solve_batch` under per-row control, every row with its own span
//! and its own save times — the segment's observation times, `BatchRow::save_at`) and one
//! batched discrete adjoint (`grad::batch_adjoint`, `dL/du` at each row's saved times, every
//! stage one batched VJP with `Σ_rows vᵀ∂f/∂p` added inside the kernel into the chunk's `dp`).
//!
//! The choice is automatic ([`prepare`]), the classifiers' (`train/batched.rs`): batched when
//! the field's batched kernel has GEMM-sized layers and an iteration solves at least
//! `MIN_BATCH_ROWS` segments, otherwise the per-segment code (`op.rs`), faster for small
//! fields. The integral terms (`kinetic`, `jacobian_frobenius`, `taylor`) are folded into the
//! single-row sweep only, so a plan with one trains per segment; the solver regularizers
//! (`R_E`, `R_S`, global and sampled) and `steer` train batched. Step control is always per
//! row: windows have their own spans, so they cannot share one step sequence (`batch =
//! joint` applies to classifiers). The path is reported (`TrainingPath`, the train summary's
//! `training path` line, `run.json`'s `report.training`); `GLASSBOX_BATCHED=0` turns it off.
//!
//! Invariant: bit-identical at any thread count. The chunks are fixed by the iteration's
//! segments alone, each taken by whichever thread is free (`Pool::each`: a chunk's result
//! depends on its rows only), each chunk's `dp` starts from zero, and the chunks' `dp` are
//! summed in chunk order.

use super::batched::{PER_ROW_CHUNK, TrainingPath, add_chunks};
use super::forward::{batch_field, offset_row};
use super::op::{Segment, SolveCtx, dl_du_of, first_rows};
use super::plan::Plan;
use super::rows::{RowWorker, Rows};
use crate::diag::Diag;
use crate::grad::{self, AdjointOptions, BatchAdjointWork};
use crate::sema::Model;
use crate::solve::{self, BatchControl, BatchRow, JitBatchField, Solution, SolveOptions};

/// What a row worker keeps for batched segments: the batched field with its VJP, and the
/// sweep's buffers.
pub struct WindowWorker {
    field: JitBatchField,
    work: BatchAdjointWork,
}

/// Gives every row worker a batched field where the batched path is the better one for
/// `segments` segments an iteration (see the module docs), and says which path training takes.
pub(super) fn prepare(
    model: &Model,
    plan: &Plan,
    rows: &mut Rows,
    p: &[f64],
    segments: usize,
) -> Result<TrainingPath, Diag> {
    let control = BatchControl::PerRow;
    // A field the batched kernels cannot take keeps the per-segment path, which trained it
    // before: the choice is a speed-up, never a new way to fail.
    let wanted = plan.integrals.is_empty()
        && matches!(batch_field(model, p, segments, control), Ok(Some(_)));
    let mut first = wanted
        .then(|| JitBatchField::with_vjp(model, p).ok())
        .flatten();
    let batched = first.is_some();
    if batched {
        for w in rows.workers_mut() {
            let field = match first.take() {
                Some(f) => f,
                None => JitBatchField::with_vjp(model, p)?,
            };
            w.windows = Some(WindowWorker {
                field,
                work: BatchAdjointWork::default(),
            });
        }
    }
    Ok(TrainingPath {
        batched,
        control,
        chunk_rows: PER_ROW_CHUNK,
    })
}

/// A worker's batched field, its parameters `p` and (for a field that reads inputs, which a
/// trajectory model's solve sets to zero) `rows` rows of zero inputs.
fn ready<'w>(w: &'w mut RowWorker, p: &[f64], rows: usize) -> Result<&'w mut WindowWorker, Diag> {
    let Some(ww) = &mut w.windows else {
        return Err(Diag::error(
            "glassbox::internal",
            "a row worker without the batched field for windows",
        )
        .help("this is a bug in glassbox; please report it"));
    };
    ww.field.set_params(p)?;
    let len = ww.field.input_len();
    if len > 0 {
        ww.field.set_inputs(&vec![0.0; rows * len])?;
    }
    Ok(ww)
}

/// Every segment's solve (saved at its own times, `opts`' other settings), chunk by chunk on
/// the row workers, in segment order. Every segment has at least one time.
pub(super) fn forward(
    c: &mut SolveCtx,
    segs: &[&Segment],
    opts: &SolveOptions,
) -> Result<Vec<Solution>, Diag> {
    let (tab, p) = (c.tab, &c.p);
    let mut chunks: Vec<&[&Segment]> = segs.chunks(PER_ROW_CHUNK).collect();
    let parts = c.rows.each(&mut chunks, |w, ci, segs| {
        let ww = ready(w, p, segs.len())?;
        let rows: Vec<BatchRow> = (segs.iter())
            .map(|s| {
                let (t0, t1) = (s.t[0], s.t[s.t.len() - 1]);
                BatchRow {
                    save_at: Some(&s.t),
                    ..BatchRow::new(t0, t1, &s.u0)
                }
            })
            .collect();
        let sol = solve::solve_batch(tab, &mut ww.field, &rows, opts, BatchControl::PerRow)
            .map_err(|e| Diag::from(offset_row(e, ci * PER_ROW_CHUNK)))?;
        Ok(sol.rows)
    })?;
    Ok(parts.into_iter().flatten().collect())
}

/// `dL/dp` of the segments' solves `sols` from the observations' cotangent `g_out` (row-major
/// `[Σ saves, columns]`), added into `dp`: per chunk the batched adjoint into the chunk's `dp`
/// (from zero), then the chunks' `dp` in chunk order.
pub(super) fn backward(
    c: &mut SolveCtx,
    sols: &[Solution],
    g_out: &[f64],
    aopts: &AdjointOptions,
    dp: &mut [f64],
) -> Result<(), Diag> {
    let (tab, p, columns) = (c.tab, &c.p, &c.columns);
    let np = p.len();
    let starts = first_rows(sols);
    let mut chunks: Vec<usize> = (0..sols.len().div_ceil(PER_ROW_CHUNK)).collect();
    let parts = c.rows.each(&mut chunks, |w, _, &mut ci| {
        let range = ci * PER_ROW_CHUNK..((ci + 1) * PER_ROW_CHUNK).min(sols.len());
        let ww = ready(w, p, range.len())?;
        let dl_du: Vec<Vec<f64>> = (range.clone())
            .map(|k| {
                let mut dl = Vec::new();
                dl_du_of(&sols[k], columns, starts[k], g_out, &mut dl);
                dl
            })
            .collect();
        let dls: Vec<&[f64]> = dl_du.iter().map(Vec::as_slice).collect();
        let mut dp = vec![0.0; np];
        let (field, work) = (&mut ww.field, &mut ww.work);
        let control = BatchControl::PerRow;
        grad::batch_adjoint(
            tab,
            field,
            &sols[range.clone()],
            &dls,
            aopts,
            control,
            &mut dp,
            work,
        )
        .map_err(|e| Diag::from(offset_row(e, range.start)))?;
        Ok(dp)
    })?;
    add_chunks(dp, &parts);
    Ok(())
}
