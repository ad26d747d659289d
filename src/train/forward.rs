//! A classifier's forward solves for prediction and scoring (`glassbox predict`, the final
//! report, validation), batched where that pays: every row's solve advances together and each
//! stage evaluates the field for all running rows in one batched kernel call
//! (`solve::solve_batch`), so each dense layer is one GEMM over the rows; the encoder and the
//! head are batched kernels over each block too ([`BatchEnds`], which training shares).
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

use super::classify::{Classify, Head, head as classifier_head};
use super::plan::Plan;
use super::rows::Rows;
use crate::diag::Diag;
use crate::ir::lower;
use crate::jit::{self, BatchKernel};
use crate::sema::Model;
use crate::solve::{self, BatchControl, BatchField, BatchRow, JitBatchField, Tableau};

/// The rows one batched solve takes (the table's rows in order, block by block): measured on
/// the digits field (`benches/batched.rs`, release), a row costs 20 µs in a batch of 128, 23 µs
/// in one of 512 and 34 µs in one of 1 797, where the GEMMs' operands outgrow the caches.
/// Under joint control a block is the one state whose steps its rows share.
pub const BATCH_ROWS: usize = 128;

/// A row error of block row `row` as the table's row.
pub(super) fn offset_row(e: solve::SolveError, start: usize) -> solve::SolveError {
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

/// Whether `rows` rows under `control` are solved batched, given whether the field's batched
/// kernel has GEMM-sized layers (`uses_gemm`): the automatic choice of the module docs, the
/// one rule of `glassbox predict`, training and the standalone binaries (`aot`).
pub fn solves_batched(control: BatchControl, rows: usize, uses_gemm: bool) -> bool {
    control == BatchControl::Joint || (uses_gemm && rows >= MIN_BATCH_ROWS && batching_allowed())
}

/// The batched field for solving `rows` rows of `model` under `control`, or `None` where the
/// per-row code is the better choice ([`solves_batched`]; no compile where even GEMMs would
/// not make it batched).
pub fn batch_field(
    model: &Model,
    p: &[f64],
    rows: usize,
    control: BatchControl,
) -> Result<Option<JitBatchField>, Diag> {
    if !solves_batched(control, rows, true) {
        return Ok(None);
    }
    let f = JitBatchField::new(model, p)?;
    Ok(solves_batched(control, rows, f.uses_gemm()).then_some(f))
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
    let batched = match batch_field(model, p, x.nrows(), control)? {
        Some(f) => Some((f, BatchEnds::new(model)?)),
        None => None,
    };
    match batched {
        None => {
            let start = Instant::now();
            let mut stats = ForwardStats::new(ForwardPath::PerRow, control, x.nrows());
            let (logits, nfe) = cls.predict(workers, plan.tab, &plan.solve, p, x)?;
            stats.nfe = nfe;
            stats.solve_ms = start.elapsed().as_secs_f64() * 1e3;
            Ok((logits, stats))
        }
        Some((mut bf, ends)) => {
            let xs: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
            predict_batched((&mut bf, &ends), plan.tab, &plan.solve, control, p, &xs)
        }
    }
}

impl ForwardStats {
    /// Nothing run yet on `rows` rows.
    pub fn new(path: ForwardPath, control: BatchControl, rows: usize) -> ForwardStats {
        ForwardStats {
            path,
            control,
            rows,
            nfe: 0,
            calls: 0,
            row_evals: 0,
            solve_ms: 0.0,
        }
    }
}

/// A classifier's forward solve options: `opts` keeping no stages or dense output, saving only
/// at `t1`, the time the head reads.
pub(super) fn forward_options(opts: &solve::SolveOptions, t1: f64) -> solve::SolveOptions {
    solve::SolveOptions {
        keep_stages: false,
        dense: false,
        save_at: vec![t1],
        ..opts.clone()
    }
}

/// A classifier's encoder `u0(t, u, p, x)` and head `logits(t, u, p, x)` as batched kernels:
/// for a block of rows each is one GEMM per dense layer (the 784-input encoder of an
/// MNIST-sized model is a tenth of its forward's multiply-adds), where the per-row kernels
/// are one mat-vec per row. JIT-compiled ([`BatchEnds::new`]) or linked into a standalone
/// binary ([`BatchEnds::from_kernels`]).
pub struct BatchEnds {
    pub enc: BatchKernel,
    pub head: BatchKernel,
    pub t0: f64,
    pub t1: f64,
    /// The state's length.
    pub n: usize,
    pub classes: usize,
}

impl BatchEnds {
    pub fn new(model: &Model) -> Result<BatchEnds, Diag> {
        let init = lower::lower_init(model)?;
        let Head {
            head,
            t0,
            t1,
            classes,
        } = classifier_head(model)?;
        let name = &model.name;
        let ends = BatchEnds::from_kernels(
            jit::compile_batch(&init, &format!("{name}.init.batch"), &[])?,
            jit::compile_batch(&head, &format!("{name}.head.batch"), &[])?,
            (t0, t1),
        );
        if (ends.n, ends.classes) != (model.state_size, classes) {
            return Err(Diag::error(
                "glassbox::internal",
                format!("`{name}`: the batched encoder or head has the wrong output length"),
            )
            .help("this is a bug in glassbox; please report it with the model file"));
        }
        Ok(ends)
    }

    /// The encoder `enc` and head `head` (batched kernels of the model's initial state and
    /// head, as [`BatchEnds::new`] compiles them), solving from `t0` to `t1`: the state's
    /// length is the encoder's output, the classes the head's. A kernel that does not fit
    /// its buffers refuses the call with a diagnostic (`BatchKernel::call`).
    pub fn from_kernels(enc: BatchKernel, head: BatchKernel, (t0, t1): (f64, f64)) -> BatchEnds {
        BatchEnds {
            n: enc.output_len(),
            classes: head.output_len(),
            enc,
            head,
            t0,
            t1,
        }
    }

    /// The initial states `[rows, n]` of the rows whose inputs are `x` (`[rows, len_x]`).
    pub fn encode(&self, p: &[f64], x: &[f64], rows: usize) -> Result<Vec<f64>, Diag> {
        let mut u0 = vec![0.0; rows * self.n];
        let zeros = vec![0.0; rows * self.n];
        let args = (&zeros[..], p, x, &[][..]);
        call_rows(&self.enc, rows, self.t0, args, &mut u0, &mut [])?;
        Ok(u0)
    }

    /// The logits `[rows, classes]` of the final states `u1` (`[rows, n]`).
    pub fn logits(&self, p: &[f64], x: &[f64], u1: &[f64], rows: usize) -> Result<Vec<f64>, Diag> {
        let mut logits = vec![0.0; rows * self.classes];
        let args = (u1, p, x, &[][..]);
        call_rows(&self.head, rows, self.t1, args, &mut logits, &mut [])?;
        Ok(logits)
    }
}

/// Calls a batched model-function kernel on `rows` rows at the one time `t`, its arguments
/// by name (`v`: the cotangent), the summed outputs added into `sums`.
pub(super) fn call_rows(
    k: &BatchKernel,
    rows: usize,
    t: f64,
    (u, p, x, v): (&[f64], &[f64], &[f64], &[f64]),
    out: &mut [f64],
    sums: &mut [f64],
) -> Result<(), Diag> {
    let ts = vec![t; rows];
    let args: Vec<&[f64]> = k
        .args()
        .iter()
        .map(|s| match s.name.as_str() {
            "t" => &ts[..],
            "u" => u,
            "p" => p,
            "x" => x,
            _ => v,
        })
        .collect();
    k.call_add(&args, rows, out, sums)
}

/// The logits `[rows, classes]` of the rows `xs` (each its inputs) with parameters `p`: the
/// rows' solves in batched solves of [`BATCH_ROWS`] rows on `field` under `control`, the
/// encoder and head batched over each block (`opts`: the plan's solve options, made the
/// forward solve's here). `glassbox predict`'s batched path, on JIT-compiled kernels or on
/// those linked into a standalone binary (`aot/runtime.rs`); under per-row control the logits
/// of the per-row path (`Classify::predict`), to the GEMMs' rounding.
pub fn predict_batched(
    (field, ends): (&mut JitBatchField, &BatchEnds),
    tab: &'static Tableau,
    opts: &solve::SolveOptions,
    control: BatchControl,
    p: &[f64],
    xs: &[Vec<f64>],
) -> Result<(Vec<f64>, ForwardStats), Diag> {
    let start = Instant::now();
    let mut stats = ForwardStats::new(ForwardPath::Batched, control, xs.len());
    field.set_params(p)?;
    let opts = forward_options(opts, ends.t1);
    let n = ends.n.max(1);
    let mut out = Vec::with_capacity(xs.len() * ends.classes);
    for (block, xs) in xs.chunks(BATCH_ROWS).enumerate() {
        let (rows, x) = (xs.len(), xs.concat());
        if field.input_len() > 0 {
            field.set_inputs(&x)?;
        }
        let u0 = ends.encode(p, &x, rows)?;
        let starts: Vec<BatchRow> = (u0.chunks(n).take(rows))
            .map(|u0| BatchRow::new(ends.t0, ends.t1, u0))
            .collect();
        let sol = solve::solve_batch(tab, &mut *field, &starts, &opts, control)
            .map_err(|e| Diag::from(offset_row(e, block * BATCH_ROWS)))?;
        stats.calls += sol.stats.calls;
        stats.row_evals += sol.stats.row_evals;
        let mut u1 = Vec::with_capacity(u0.len());
        for (s, u0) in sol.rows.iter().zip(u0.chunks(n)) {
            stats.nfe += s.stats.nfe;
            u1.extend_from_slice(s.last().unwrap_or(u0));
        }
        out.extend(ends.logits(p, &x, &u1, rows)?);
    }
    stats.solve_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok((out, stats))
}
