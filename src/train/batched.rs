//! A classifier's training step batched forward and backward: the batch's rows are cut into
//! fixed chunks ([`chunk_rows`]), each chunk is one batched solve (`solve::solve_batch`, every
//! stage one GEMM per dense layer over its rows) and one batched discrete adjoint
//! (`grad::batch_adjoint`, every stage one batched VJP, `Σ_rows vᵀ∂f/∂p` added inside the
//! kernel into the chunk's `dp`).
//!
//! The choice is automatic ([`prepare`]): batched when the field's batched kernel has
//! GEMM-sized layers (as `train/forward.rs` decides for predictions) — otherwise the per-row
//! code (`classify_op`), faster for small fields; joint step control is always batched. It
//! is reported in the run's classification report ([`TrainingPath`]); `GLASSBOX_BATCHED=0`
//! turns it off for A/B timings. A trajectory model's windows train batched the same way
//! (`train/windows.rs`).
//!
//! Invariant: bit-identical at any thread count. The chunks are fixed by the batch alone
//! (never by the thread count), each whole chunk runs on whichever thread is free
//! (`Pool::each`), each chunk's `dp` starts from zero, and the chunks' `dp` are summed in
//! chunk order after the parallel part (`solve::threads`).

use serde::Serialize;

use super::forward::{BATCH_ROWS, BatchEnds, batch_field, call_rows, offset_row};
use super::op::SolveCtx;
use super::rows::Rows;
use crate::diag::Diag;
use crate::grad::{self, AdjointOptions, BatchAdjointWork};
use crate::ir::{self, Function, lower};
use crate::jit::{self, BatchKernel};
use crate::sema::Model;
use crate::solve::{self, BatchControl, BatchRow, JitBatchField, Solution, SolveOptions};

/// Rows per chunk under per-row control: enough for the GEMMs to pay (the digits field's
/// layers are 33·64 and 64·32), small enough that a batch of 128 gives every one of a few
/// threads a chunk.
pub const PER_ROW_CHUNK: usize = 32;

/// The chunk size of a batch under `control`: under joint control a chunk is the one state
/// whose steps its rows share, so it is prediction's block ([`BATCH_ROWS`]) and training's
/// model of the batch is the one predictions use.
pub fn chunk_rows(control: BatchControl) -> usize {
    match control {
        BatchControl::PerRow => PER_ROW_CHUNK,
        BatchControl::Joint => BATCH_ROWS,
    }
}

/// Which code trains a classifier's samples or a trajectory model's windows (run.json's
/// `classification.training` / `training`, the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TrainingPath {
    /// Batched forward and backward (`true`), or each sample on its own.
    pub batched: bool,
    pub control: BatchControl,
    /// Rows per chunk on the batched path.
    pub chunk_rows: usize,
}

impl TrainingPath {
    pub fn describe(&self) -> String {
        if self.batched {
            format!(
                "batched forward and adjoint ({} step control, chunks of {} rows)",
                self.control.name(),
                self.chunk_rows
            )
        } else {
            "per-row forward and adjoint".to_string()
        }
    }
}

/// What a row worker keeps for the batched path: the batched field with its VJP, the
/// encoder and head as batched kernels (their VJPs' `∂p` summed over the chunk), and the
/// sweep's buffers.
pub struct BatchWorker {
    field: JitBatchField,
    ends: Ends,
    work: BatchAdjointWork,
}

/// The encoder and the head as batched kernels (`forward.rs`), with their VJPs
/// `Σ_rows (∂u0/∂p)ᵀ v` and `[vᵀ∂logits/∂u, Σ_rows vᵀ∂logits/∂p]`.
struct Ends {
    fwd: BatchEnds,
    enc_vjp: BatchKernel,
    head_vjp: BatchKernel,
}

impl Ends {
    fn new(model: &Model) -> Result<Ends, Diag> {
        let init = lower::lower_init(model)?;
        let head = super::classify::head(model)?.head;
        let vjp = |f: &Function, wrt: &[&str], name: &str| -> Result<_, Diag> {
            let v = ir::vjp(f, wrt, "v").map_err(lower::internal)?;
            jit::compile_batch(&v, &format!("{name}.vjp.batch"), &["vjp_p"])
        };
        Ok(Ends {
            fwd: BatchEnds::new(model)?,
            enc_vjp: vjp(&init, &["p"], &format!("{}.init", model.name))?,
            head_vjp: vjp(&head, &["u", "p"], &format!("{}.head", model.name))?,
        })
    }
}

/// Gives every row worker a batched field (one compile per thread: a batched kernel is not
/// shared) where the batched path is the better one, and says which path training takes.
pub(super) fn prepare(
    model: &Model,
    rows: &mut Rows,
    p: &[f64],
    batch: usize,
    control: BatchControl,
) -> Result<TrainingPath, Diag> {
    let chunk = chunk_rows(control);
    let batched = batch_field(model, p, batch, control)?.is_some();
    if batched {
        for w in rows.workers_mut() {
            w.batch = Some(BatchWorker {
                field: JitBatchField::with_vjp(model, p)?,
                ends: Ends::new(model)?,
                work: BatchAdjointWork::default(),
            });
        }
    }
    Ok(TrainingPath {
        batched,
        control,
        chunk_rows: chunk,
    })
}

/// A chunk's forward: its solutions and logits.
type Chunk = (Vec<Solution>, Vec<Vec<f64>>);

/// Every row's solve and logits, chunk by chunk on the row workers (see the module docs).
pub(super) fn forward(
    c: &mut SolveCtx,
    xs: &[Vec<f64>],
    opts: &SolveOptions,
    control: BatchControl,
) -> Result<Chunk, Diag> {
    let (tab, p) = (c.tab, &c.p);
    let size = chunk_rows(control);
    let mut chunks: Vec<&[Vec<f64>]> = xs.chunks(size).collect();
    // Chunk by chunk on whichever thread is free: a chunk's result depends on its rows only.
    let parts = c.rows.each(&mut chunks, |w, ci, xs| {
        let bw = worker(w)?;
        bw.field.set_params(p)?;
        let e = &bw.ends.fwd;
        let (rows, x) = (xs.len(), xs.concat());
        if bw.field.input_len() > 0 {
            bw.field.set_inputs(&x)?;
        }
        let u0 = e.encode(p, &x, rows)?;
        let starts_u: Vec<BatchRow> = u0
            .chunks(e.n.max(1))
            .take(rows)
            .map(|u0| BatchRow::new(e.t0, e.t1, u0))
            .collect();
        let sol = solve::solve_batch(tab, &mut bw.field, &starts_u, opts, control)
            .map_err(|e| Diag::from(offset_row(e, ci * size)))?;
        let u1: Vec<f64> = (sol.rows.iter().zip(u0.chunks(e.n.max(1))))
            .flat_map(|(s, u0)| s.last().unwrap_or(u0).to_vec())
            .collect();
        let logits: Vec<Vec<f64>> = e
            .logits(p, &x, &u1, rows)?
            .chunks(e.classes.max(1))
            .map(<[f64]>::to_vec)
            .collect();
        Ok((sol.rows, logits))
    })?;
    let (mut sols, mut logits) = (Vec::with_capacity(xs.len()), Vec::with_capacity(xs.len()));
    for (s, l) in parts {
        sols.extend(s);
        logits.extend(l);
    }
    Ok((sols, logits))
}

/// A worker's batched pieces.
fn worker(w: &mut super::rows::RowWorker) -> Result<&mut BatchWorker, Diag> {
    match &mut w.batch {
        Some(b) => Ok(b),
        _ => Err(Diag::error(
            "glassbox::internal",
            "a row worker without the batched classifier",
        )
        .help("this is a bug in glassbox; please report it")),
    }
}

/// `dL/dp` of the batch from the logits' cotangent `g_out` (`[rows, classes]`), added into
/// `dp`: per chunk the batched adjoint of the chunk's solves, the heads' and the encoder's
/// VJPs added into the chunk's `dp` (from zero); then the chunks' `dp` in chunk order.
pub(super) fn backward(
    c: &mut SolveCtx,
    (sols, xs): (&[Solution], &[Vec<f64>]),
    g_out: &[f64],
    aopts: &AdjointOptions,
    control: BatchControl,
    dp: &mut [f64],
) -> Result<(), Diag> {
    let (tab, p) = (c.tab, &c.p);
    let np = p.len();
    let size = chunk_rows(control);
    let mut chunks: Vec<usize> = (0..sols.len().div_ceil(size)).collect();
    let parts = c.rows.each(&mut chunks, |w, _, &mut ci| {
        let bw = worker(w)?;
        // Whichever worker takes the chunk, not necessarily the one that solved it forward.
        bw.field.set_params(p)?;
        let range = ci * size..((ci + 1) * size).min(sols.len());
        let (sols, xs) = (&sols[range.clone()], &xs[range.clone()]);
        let (rows, x) = (xs.len(), xs.concat());
        if bw.field.input_len() > 0 {
            bw.field.set_inputs(&x)?;
        }
        let e = &bw.ends;
        let (n, classes) = (e.fwd.n, e.fwd.classes);
        let mut dp = vec![0.0; np];
        // The heads: dL/du(t1) per row, Σ_rows dL/dp into dp.
        let u1: Vec<f64> = sols
            .iter()
            .flat_map(|s| s.last().map_or(vec![0.0; n], <[f64]>::to_vec))
            .collect();
        let g = g_out
            .get(range.start * classes..range.end * classes)
            .unwrap_or(&[]);
        let mut du1 = vec![0.0; rows * n];
        call_rows(
            &e.head_vjp,
            rows,
            e.fwd.t1,
            (&u1[..], &p[..], &x[..], g),
            &mut du1,
            &mut dp,
        )?;
        let dl_du: Vec<Vec<f64>> = (sols.iter().zip(du1.chunks(n.max(1))))
            .map(|(s, d)| {
                let mut dl = vec![0.0; s.us.len()];
                let k = dl.len().saturating_sub(n);
                let len = dl.len() - k;
                dl[k..].copy_from_slice(&d[..len]);
                dl
            })
            .collect();
        let dls: Vec<&[f64]> = dl_du.iter().map(Vec::as_slice).collect();
        let adj = grad::batch_adjoint(
            tab,
            &mut bw.field,
            sols,
            &dls,
            aopts,
            control,
            &mut dp,
            &mut bw.work,
        )
        .map_err(|e| Diag::from(offset_row(e, range.start)))?;
        // The encoders: Σ_rows (∂u0/∂p)ᵀ dL/du0 into dp.
        let zeros = vec![0.0; rows * n];
        call_rows(
            &e.enc_vjp,
            rows,
            e.fwd.t0,
            (&zeros[..], &p[..], &x[..], &adj.du0[..]),
            &mut [],
            &mut dp,
        )?;
        Ok(dp)
    })?;
    add_chunks(dp, &parts);
    Ok(())
}

/// The chunks' `dp` added into `dp` first chunk to last, always: the gradient's bits depend on
/// the order of this sum (the invariant in the module docs; `train/windows.rs` too).
pub(super) fn add_chunks(dp: &mut [f64], parts: &[Vec<f64>]) {
    for part in parts {
        for (d, x) in dp.iter_mut().zip(part) {
            *d += x;
        }
    }
}
