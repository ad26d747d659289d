//! Stage 4: IR functions compiled to native code with Cranelift.
//!
//! [`compile`] turns one IR [`Function`] into a [`Kernel`] that evaluates one sample (or a
//! batch, sample by sample) exactly as the reference interpreter `ir::eval` does, bit for bit;
//! [`compile_batch`] into a [`BatchKernel`] whose loop over samples is in the generated code,
//! with dense layers as one GEMM over the batch and chosen outputs summed (`batch.rs`). Same
//! operations, same summation order, the interpreter's own scalar functions for what Cranelift
//! has no instruction for (`runtime.rs`); only GEMMs reorder sums (equal up to rounding).
//!
//! By job: `codegen.rs` builds the Cranelift IR (safe code; `codegen/simd.rs` its two-wide
//! code), `batch.rs` the batch plan and loops; `module.rs` builds and owns the Cranelift
//! modules (host ISA, kernel definition, the JIT module); `kernel.rs` is [`Kernel`] and its
//! checked calls, `bound.rs` [`Bound`], `batch_kernel.rs` [`BatchKernel`]; `runtime.rs` and
//! `slice_runtime.rs` the runtime symbols kernels call (scalar math; GEMM, tensor `tanh`, dense
//! products over `dense.rs`); `object.rs` the object files of `glassbox build`; `linked.rs` what
//! a kernel linked into a standalone binary is ([`KernelSpec`], [`BatchSpec`], [`Linked`]).
//! Nothing here depends on `aot`: the binary's entry point is `aot/entry.rs`.
//!
//! Two ways to call a [`Kernel`]: [`Kernel::call`] on the caller's buffers, checked on every
//! call; and [`Kernel::bind`], a [`Bound`] call that owns its buffers (sized once, exactly) and
//! runs with no checks — the solvers' hot path.
//!
//! Architecture Invariant: `unsafe` only in the modules declared `#[allow(unsafe_code)]` below
//! (the crate denies it in Cargo.toml's `[lints]`; `tests/suite/tidy.rs` keeps the list), each use
//! with a `SAFETY:` comment. A call is sound because [`Kernel::call`] checks the number and
//! length of every buffer against the function's argument specs before entering (a [`Bound`]
//! call allocates them with those lengths instead), and the generated code reads and writes
//! only inside those lengths (input nodes are bounds-checked by `Function::validate` at compile
//! time) and inside its own scratch buffer.

mod batch;
// `unsafe_code` is denied crate-wide (Cargo.toml `[lints]`); these are the exceptions, each
// for the reason given (the same list is in `tests/suite/tidy.rs`).
#[allow(unsafe_code)] // the batched code address as a function pointer, and its call
mod batch_kernel;
#[allow(unsafe_code)] // a bound call's slices, calls and `Send`; `load_scalar`'s read
mod bound;
mod codegen;
mod dense;
#[allow(unsafe_code)] // the code address as a function pointer, the checked calls
mod kernel;
mod linked;
#[allow(unsafe_code)] // freeing the JIT module's executable memory
mod module;
pub mod object;
#[allow(unsafe_code)] // `#[unsafe(no_mangle)]` math symbols, for linked kernels to find
mod runtime;
#[allow(unsafe_code)] // symbols reading raw pointers; calls after the CPU-feature check
mod slice_runtime;

pub use codegen::{DEFAULT_CALL_MIN, DEFAULT_UNROLL};

/// Mat-vecs of at least this many multiply-adds become GEMMs in batched kernels.
pub const DEFAULT_GEMM_MIN: usize = 512;
pub(crate) use batch_kernel::BatchEntry;
pub use batch_kernel::BatchKernel;
pub use bound::{Bound, load_scalar};
pub use dense::Combination;
pub(crate) use kernel::Entry;
pub use kernel::Kernel;
pub use linked::{BatchSpec, BatchSpecs, KernelSpec, Linked, LinkedBatch};
pub use slice_runtime::{
    Dense, DenseFn, dense_product, dense_versions, stage_combination, tanh_slice,
    tanh_slice_versions,
};

use crate::diag::Diag;
use crate::ir::Function;

/// Code-generation choices; the defaults are what the benchmarks chose.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Nodes whose work (elements, or multiply-adds for products) is at most this are unrolled
    /// into straight-line SSA; larger ones become loops over memory.
    pub unroll: usize,
    /// In batched kernels, a mat-vec of an invariant matrix with at least this many
    /// multiply-adds per sample becomes one GEMM over the batch.
    pub gemm_min: usize,
    /// Mat-vecs, transposed mat-vecs and outer products with at least this many multiplies
    /// call the vectorised runtime (`dense.rs`) instead of being lowered inline.
    pub call_min: usize,
    /// Output elements from this index on are added into the output buffer (load, add, store)
    /// instead of overwriting it (per-sample kernels): a VJP whose `∂p` accumulates into a
    /// running gradient, with the additions the caller would have done, in the same order.
    /// `usize::MAX` (the default): every output is written.
    pub accumulate_from: usize,
    /// Unrolled tensor nodes as two-wide vector code (`F64X2`) where two neighbouring elements
    /// undergo the same operations: the same bits as the scalar code (`codegen/simd.rs`).
    /// Defaults to on unless the environment variable `GLASSBOX_SIMD` is `0` (read once: for
    /// A/B timings); ignored on targets without `F64X2` registers.
    pub simd: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            unroll: DEFAULT_UNROLL,
            gemm_min: DEFAULT_GEMM_MIN,
            call_min: DEFAULT_CALL_MIN,
            accumulate_from: usize::MAX,
            simd: simd_default(),
        }
    }
}

fn simd_default() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GLASSBOX_SIMD").is_none_or(|v| v != "0"))
}

/// Compiles `f` with the default options. `name` (e.g. `spiral.field`) names the function in
/// diagnostics.
pub fn compile(f: &Function, name: &str) -> Result<Kernel, Diag> {
    compile_with(f, name, Options::default())
}

pub fn compile_with(f: &Function, name: &str, options: Options) -> Result<Kernel, Diag> {
    kernel::build(f, name, options)
}

/// Compiles the batched variant of `f` (see [`BatchKernel`]): the outputs named in `summed`
/// are summed over the batch (for a VJP: the gradients of the unbatched arguments, which is
/// what training needs); the others are per sample.
pub fn compile_batch(f: &Function, name: &str, summed: &[&str]) -> Result<BatchKernel, Diag> {
    compile_batch_with(f, name, summed, Options::default())
}

pub fn compile_batch_with(
    f: &Function,
    name: &str,
    summed: &[&str],
    options: Options,
) -> Result<BatchKernel, Diag> {
    if let Some(unknown) = summed
        .iter()
        .find(|s| !f.outputs.iter().any(|o| o.name == **s))
    {
        return Err(internal(
            name,
            "summed output",
            format!("no output named `{unknown}`"),
        ));
    }
    let flags: Vec<bool> = f
        .outputs
        .iter()
        .map(|o| summed.contains(&o.name.as_str()))
        .collect();
    batch_kernel::build_batch(f, name, &flags, options)
}

/// The outputs of a VJP (`ir::vjp`) that training sums over a batch: the gradients of the
/// unbatched arguments (`vjp_p`).
pub fn unbatched_gradients(vjp: &Function) -> Vec<&str> {
    vjp.outputs
        .iter()
        .filter(|o| {
            o.name
                .strip_prefix("vjp_")
                .and_then(|a| vjp.args.iter().find(|s| s.name == a))
                .is_some_and(|s| !s.batched)
        })
        .map(|o| o.name.as_str())
        .collect()
}

/// The one internal-error diagnostic of this stage: a bug in glassbox, never the user's input.
fn internal(name: &str, what: &str, detail: impl std::fmt::Display) -> Diag {
    Diag::error(
        "glassbox::internal",
        format!("internal error while compiling `{name}`: {what}: {detail}"),
    )
    .help("this is a bug in glassbox; please report it with the model file")
}
