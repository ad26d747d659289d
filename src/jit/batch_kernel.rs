//! A batched kernel: [`BatchKernel`] owns a JIT function (or wraps one linked into a standalone
//! binary, [`BatchKernel::linked`]) whose loop over samples runs inside the generated code
//! (`batch.rs` plans and lowers it), and calls it after checking every buffer.
//!
//! `unsafe` here (allowed in `jit/mod.rs`): the code address as a function pointer, and the
//! call, sound by the module invariant of `kernel.rs` and because the buffer area and sums are
//! sized from the same plan the code was generated from.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::kernel::{INLINE_ARGS, arg_pointers, check};
use super::module::{Body, Owned, build_module};
use super::{BatchSpec, KernelSpec, Options, batch, codegen, internal};
use crate::diag::Diag;
use crate::ir::{ArgSpec, Function};

/// `fn(args, out, sums, scratch, buffers, batch)`: see `batch.rs`.
pub(crate) type BatchEntry =
    unsafe extern "C" fn(*const *const f64, *mut f64, *mut f64, *mut f64, *mut f64, usize);

/// A batched kernel: the loop over samples runs inside the generated code, dense layers over
/// the batch are GEMMs, and the named outputs are summed over the batch (see `batch.rs`).
/// Not `Sync` (calls share scratch buffers); compile one per thread.
pub struct BatchKernel {
    name: String,
    args: Vec<ArgSpec>,
    out_len: usize,
    sums_len: usize,
    per_sample: usize,
    scratch: RefCell<(Vec<f64>, Vec<f64>)>,
    scratch_len: usize,
    gemms: bool,
    entry: BatchEntry,
    clif: String,
    compile_time: Duration,
    _module: Owned,
}

impl std::fmt::Debug for BatchKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchKernel")
            .field("name", &self.name)
            .field("out_len", &self.out_len)
            .field("sums_len", &self.sums_len)
            .field("per_sample", &self.per_sample)
            .field("compile_time", &self.compile_time)
            .finish()
    }
}

/// The batch plan of `f` and the runtime symbols its code imports: what both the JIT
/// ([`build_batch`]) and the object files of `glassbox build` (`object.rs`) generate a batched
/// kernel from, so that the two are the same code.
pub(super) fn prepare(
    f: &Function,
    name: &str,
    summed: &[bool],
    options: Options,
) -> Result<(batch::Plan, Vec<&'static str>), Diag> {
    f.validate().map_err(|e| internal(name, "invalid IR", e))?;
    let plan =
        batch::plan(f, summed, options.gemm_min).map_err(|e| internal(name, "batch plan", e))?;
    let mut symbols = codegen::needed_symbols(f, options);
    if plan.uses_gemm() {
        symbols.push(batch::GEMM);
        symbols.push(batch::GEMM_ADD);
    }
    Ok((plan, symbols))
}

/// The body of a batched kernel of `f` under `plan` (its six parameters: `BatchEntry`'s).
pub(super) fn body<'x>(f: &'x Function, plan: &'x batch::Plan, options: Options) -> Box<Body<'x>> {
    Box::new(move |b, funcs| {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let &[args, out, sums, scratch, bufs, batch] = b.block_params(entry) else {
            return Err("batched kernel signature has the wrong parameters".into());
        };
        let params = batch::Params {
            args,
            out,
            sums,
            scratch,
            bufs,
            batch,
        };
        batch::lower(b, f, plan, funcs, options, &params)
    })
}

/// The parameters of a batched kernel's function (see `BatchEntry`).
pub(super) const PARAMS: usize = 6;

pub(super) fn build_batch(
    f: &Function,
    name: &str,
    summed: &[bool],
    options: Options,
) -> Result<BatchKernel, Diag> {
    let start = Instant::now();
    let (plan, symbols) = prepare(f, name, summed, options)?;
    let built = build_module(name, PARAMS, &symbols, body(f, &plan, options))?;
    // SAFETY: as in `kernel::build`: the finalized address of the function just defined with
    // the six pointer-sized parameters `BatchEntry` describes; `owned` moves into the kernel
    // with it.
    let entry = unsafe { std::mem::transmute::<*const u8, BatchEntry>(built.code) };
    Ok(BatchKernel {
        name: name.to_string(),
        args: f.args.clone(),
        out_len: plan.out_len,
        sums_len: plan.sums_len,
        per_sample: plan.per_sample,
        scratch: RefCell::new((vec![0.0; built.scratch_len], Vec::new())),
        scratch_len: built.scratch_len,
        gemms: plan.uses_gemm(),
        entry,
        clif: built.clif,
        compile_time: start.elapsed(),
        _module: built.owned,
    })
}

/// The spec a linked batched kernel is called by: `plan`'s extents and the scratch length its
/// code generation reported (`object.rs`).
pub(super) fn spec(name: &str, f: &Function, plan: &batch::Plan, scratch_len: usize) -> BatchSpec {
    BatchSpec {
        kernel: KernelSpec::new(name.to_string(), f, scratch_len),
        sums_len: plan.sums_len,
        per_sample: plan.per_sample,
        gemms: plan.uses_gemm(),
    }
}

impl BatchKernel {
    /// A batched kernel around code linked into this executable, described by `spec`.
    ///
    /// # Safety
    /// `entry` must be the code generated for `spec` (same arguments, output length, batch
    /// plan extents and scratch length), alive for the rest of the process: only the standalone
    /// binary's entry point (`aot/entry.rs`) can vouch for that, since `glassbox build` wrote
    /// both from one IR function and one plan (`object.rs`).
    pub(crate) unsafe fn linked(entry: BatchEntry, spec: &BatchSpec) -> BatchKernel {
        let k = &spec.kernel;
        BatchKernel {
            name: k.name.clone(),
            args: k.arg_specs(),
            out_len: k.out_len,
            sums_len: spec.sums_len,
            per_sample: spec.per_sample,
            scratch: RefCell::new((vec![0.0; k.scratch_len], Vec::new())),
            scratch_len: k.scratch_len,
            gemms: spec.gemms,
            entry,
            clif: String::new(),
            compile_time: Duration::ZERO,
            // Linked code lives as long as the process: nothing to free.
            _module: Owned(std::sync::Mutex::new(None)),
        }
    }
}

impl BatchKernel {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments, in call order.
    pub fn args(&self) -> &[ArgSpec] {
        &self.args
    }

    /// Length of one sample's row of the per-sample outputs.
    pub fn output_len(&self) -> usize {
        self.out_len
    }

    /// Length of the summed outputs, laid end to end in output order.
    pub fn sums_len(&self) -> usize {
        self.sums_len
    }

    /// Whether some dense layer became a GEMM over the batch.
    pub fn uses_gemm(&self) -> bool {
        self.gemms
    }

    pub fn clif(&self) -> &str {
        &self.clif
    }

    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Evaluates `batch` samples: arguments as for
    /// [`Kernel::call_batch`](super::Kernel::call_batch); `out` is `[batch, output_len]` (the
    /// outputs that are not summed), `sums` is `[sums_len]` (the summed outputs, each `Σ_b` of
    /// its per-sample value).
    pub fn call(
        &self,
        args: &[&[f64]],
        batch: usize,
        out: &mut [f64],
        sums: &mut [f64],
    ) -> Result<(), Diag> {
        self.run(args, batch, out, sums, true)
    }

    /// [`call`](Self::call), except that the summed outputs are added into `sums`
    /// (`sums + Σ_b`): a batched adjoint accumulates its parameter gradient over every stage of
    /// every step in one buffer, never clearing it per call. On zeroed `sums` it gives
    /// `call`'s bits.
    pub fn call_add(
        &self,
        args: &[&[f64]],
        batch: usize,
        out: &mut [f64],
        sums: &mut [f64],
    ) -> Result<(), Diag> {
        self.run(args, batch, out, sums, false)
    }

    fn run(
        &self,
        args: &[&[f64]],
        batch: usize,
        out: &mut [f64],
        sums: &mut [f64],
        clear: bool,
    ) -> Result<(), Diag> {
        check(&self.name, &self.args, self.out_len, args, batch, out)?;
        if sums.len() != self.sums_len {
            return Err(Diag::error(
                "glassbox::kernel_buffers",
                format!(
                    "`{}`: the summed outputs need {} values, got {}",
                    self.name,
                    self.sums_len,
                    sums.len()
                ),
            )
            .help("pass one buffer for the summed outputs, as long as all of them together"));
        }
        if clear {
            sums.fill(0.0);
        }
        if batch == 0 {
            return Ok(());
        }
        let need = self.per_sample.checked_mul(batch).ok_or_else(|| {
            Diag::error(
                "glassbox::kernel_buffers",
                format!("`{}`: a batch of {batch} is too large", self.name),
            )
            .help("split the batch")
        })?;
        let mut fresh = (Vec::new(), Vec::new());
        let mut borrowed = self.scratch.try_borrow_mut();
        let (scratch, bufs) = match &mut borrowed {
            Ok(s) => {
                let (scratch, bufs) = &mut **s;
                (scratch, bufs)
            }
            Err(_) => {
                fresh.0.resize(self.scratch_len, 0.0);
                (&mut fresh.0, &mut fresh.1)
            }
        };
        if bufs.len() < need {
            bufs.resize(need, 0.0);
        }
        let mut inline = [std::ptr::null::<f64>(); INLINE_ARGS];
        let mut spill = Vec::new();
        let ptrs = arg_pointers(args.len(), &mut inline, &mut spill);
        for (ptr, buf) in ptrs.iter_mut().zip(args) {
            *ptr = buf.as_ptr();
        }
        // SAFETY: `check` proved every argument holds `batch` rows of its length (one row when
        // unbatched) and `out` holds `batch` rows of `out_len`; `sums` holds `sums_len`; the
        // buffer area holds `batch · per_sample` and the scratch `scratch_len`, the extents the
        // plan the code was generated from uses (module invariant; GEMMs: `glassbox_dgemm`).
        unsafe {
            (self.entry)(
                ptrs.as_ptr(),
                out.as_mut_ptr(),
                sums.as_mut_ptr(),
                scratch.as_mut_ptr(),
                bufs.as_mut_ptr(),
                batch,
            )
        };
        Ok(())
    }
}
