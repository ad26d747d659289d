//! The entry point of a standalone binary (`glassbox_aot_main`): the C `main` that
//! `jit::object::emit` generates calls it with the binary's own data objects (metadata,
//! weights) and its linked kernels; it wraps each kernel with the [`KernelSpec`] `glassbox
//! build` wrote beside it and hands them to the binary's runtime (`runtime.rs`).
//!
//! `unsafe` here (allowed in `aot/mod.rs`): the symbol is exported unmangled (the generated
//! `main` imports it by name; a name must be unique in a link), the data objects are read
//! through the pointers `main` passes, and the kernels are trusted to match their specs
//! (`Kernel::linked`), which the `aot` module invariant guarantees.

use super::Meta;
use crate::jit::{
    BatchEntry, BatchKernel, BatchSpec, Entry, Kernel, KernelSpec, Linked, LinkedBatch,
};

/// The entry point of a standalone binary: the `main` that `jit::object::emit` generates calls
/// it with its read-only data (the metadata and the weights) and its kernels (null when
/// absent; a classifier's batched field, encoder and head last), and returns its exit status.
#[allow(clippy::too_many_arguments)]
// SAFETY: the name is unique in a link (the crate's `glassbox_` prefix, defined once), and the
// signature is the one `jit::object::emit` declares for `object::ENTRY` (eleven pointer-sized
// arguments, an `i32` status), so the generated `main` calls it correctly.
#[unsafe(no_mangle)]
pub extern "C" fn glassbox_aot_main(
    meta: *const u8,
    meta_len: usize,
    weights: *const f64,
    weights_len: usize,
    field: Option<Entry>,
    jacobian: Option<Entry>,
    dfdt: Option<Entry>,
    init: Option<Entry>,
    field_batch: Option<BatchEntry>,
    init_batch: Option<BatchEntry>,
    head_batch: Option<BatchEntry>,
) -> i32 {
    // SAFETY: only the generated `main` calls this symbol, with the address and length of its
    // own data objects: `meta_len` bytes of metadata and `weights_len` little-endian `f64`s,
    // 8-byte aligned, never empty (so never null), read-only for the life of the process.
    let (meta, weights) = unsafe {
        (
            std::slice::from_raw_parts(meta, meta_len),
            std::slice::from_raw_parts(weights, weights_len),
        )
    };
    // A description of another layout is never trusted: never the case in a binary `glassbox
    // build` linked (its object and runtime come from one glassbox), but named if it were.
    let meta = match Meta::read(meta) {
        Ok(meta) => meta,
        Err(message) => {
            eprintln!("error: {message}");
            return 101;
        }
    };
    // The metadata and the kernels were written together from the same IR functions
    // (`aot` module invariant), so each spec describes its kernel's code: the calls `Kernel`
    // makes with buffers checked against it are sound as for JIT kernels.
    let wrap = |entry: Entry, spec: &KernelSpec| {
        // SAFETY: `entry` is one of this executable's kernels and `spec` the description
        // `glassbox build` wrote for it from the same IR function (module invariant above);
        // linked code lives as long as the process.
        unsafe { Kernel::linked(entry, spec) }
    };
    let derivs = match (jacobian, dfdt, &meta.jacobian, &meta.dfdt) {
        (Some(j), Some(d), Some(js), Some(ds)) => Some((wrap(j, js), wrap(d, ds))),
        _ => None,
    };
    // An SDE's diffusion and JVP take the middle slots (`object::Kernels`).
    let sde = match (jacobian, &meta.sde) {
        (Some(g), Some(s)) => Some((
            wrap(g, &s.diffusion),
            dfdt.zip(s.jvp.as_ref()).map(|(e, js)| wrap(e, js)),
        )),
        _ => None,
    };
    // So does a classifier's head (the second slot).
    let head = match (jacobian, &meta.head) {
        (Some(h), Some(s)) => Some(wrap(h, s)),
        _ => None,
    };
    let wrap_batch = |entry: BatchEntry, spec: &BatchSpec| {
        // SAFETY: as for `wrap`: `entry` is this executable's batched kernel and `spec` the
        // description (`object::emit`'s, from the plan it generated the code with) beside it.
        unsafe { BatchKernel::linked(entry, spec) }
    };
    // A classifier's batched kernels: all three with their specs, or none.
    let batch = match (&meta.batch, field_batch, init_batch, head_batch) {
        (Some(b), Some(f), Some(i), Some(h)) => Some(LinkedBatch {
            field: wrap_batch(f, &b.kernels.field),
            init: wrap_batch(i, &b.kernels.init),
            head: wrap_batch(h, &b.kernels.head),
        }),
        (None, None, None, None) => None,
        _ => {
            eprintln!(
                "error: this binary's batched kernels and their description disagree; \
                 rebuild it with `glassbox build`"
            );
            return 101;
        }
    };
    let (Some(field), Some(init)) = (field, init) else {
        eprintln!("error: this binary has no vector field; rebuild it with `glassbox build`");
        return 101;
    };
    let linked = Linked {
        field: wrap(field, &meta.field),
        derivs,
        sde,
        init: wrap(init, &meta.init),
        head,
        batch,
    };
    super::runtime::main(&meta, weights, linked)
}
