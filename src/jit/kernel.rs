//! The compiled kernel: [`Kernel`] owns one JIT-compiled (or linked) function and calls it,
//! checking every buffer first ([`Kernel::call`], [`Kernel::call_batch`]).
//!
//! `unsafe` here (allowed in `jit/mod.rs`): turning the finalized code address into a function
//! pointer, and calling it. Soundness rests on one invariant (the module invariant): the code
//! reads and writes only the buffers it is handed, within the lengths of the argument specs it
//! was generated from, and its own scratch buffer (whose length `codegen::lower` reports).
//! [`check`] proves the buffers fit before each call; a bound call (`bound.rs`) allocates them
//! with exactly those lengths instead. [`Kernel::linked`] wraps code linked into a standalone
//! binary, whose caller vouches for its spec.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::module::{Owned, build_module};
use super::{KernelSpec, Options, codegen, internal};
use crate::diag::Diag;
use crate::ir::{ArgSpec, Function};

/// `fn(args, out, scratch)`: see `codegen.rs` for the layout.
pub(crate) type Entry = unsafe extern "C" fn(*const *const f64, *mut f64, *mut f64);

/// Most functions have at most six arguments (`t, u, p, x, v, w`); their pointers go in an
/// array on the stack, more in a `Vec`.
pub(super) const INLINE_ARGS: usize = 8;

/// A call's argument-pointer array: `inline` (on the stack) for up to [`INLINE_ARGS`]
/// arguments, else `spill` grown to `n`.
pub(super) fn arg_pointers<'a>(
    n: usize,
    inline: &'a mut [*const f64; INLINE_ARGS],
    spill: &'a mut Vec<*const f64>,
) -> &'a mut [*const f64] {
    if n <= INLINE_ARGS {
        &mut inline[..n]
    } else {
        spill.resize(n, std::ptr::null());
        spill
    }
}

/// A compiled IR function. Not `Sync` (calls share one scratch buffer); compile one per thread.
pub struct Kernel {
    pub(super) name: String,
    pub(super) args: Vec<ArgSpec>,
    pub(super) out_len: usize,
    pub(super) scratch_len: usize,
    scratch: RefCell<Vec<f64>>,
    pub(super) entry: Entry,
    clif: String,
    compile_time: Duration,
    /// Shared with every [`Bound`](super::Bound) of this kernel, so the code outlives each
    /// copy of `entry`.
    pub(super) module: Arc<Owned>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("out_len", &self.out_len)
            .field("scratch_len", &self.scratch_len())
            .field("compile_time", &self.compile_time)
            .finish()
    }
}

pub(super) fn build(f: &Function, name: &str, options: Options) -> Result<Kernel, Diag> {
    let start = Instant::now();
    f.validate().map_err(|e| internal(name, "invalid IR", e))?;
    let symbols = codegen::needed_symbols(f, options);
    let built = build_module(
        name,
        3,
        &symbols,
        Box::new(|b, funcs| codegen::lower(b, f, funcs, options)),
    )?;
    // SAFETY: `code` is the finalized address of the function just defined with exactly the
    // signature `Entry` describes (three pointer-sized parameters, no results, the platform's
    // C calling convention that `make_signature` chose). It stays valid while `owned` lives,
    // and `owned` moves into the kernel with it.
    let entry = unsafe { std::mem::transmute::<*const u8, Entry>(built.code) };
    Ok(Kernel {
        name: name.to_string(),
        args: f.args.clone(),
        out_len: f.output_len(),
        scratch_len: built.scratch_len,
        scratch: RefCell::new(vec![0.0; built.scratch_len]),
        entry,
        clif: built.clif,
        compile_time: start.elapsed(),
        module: Arc::new(built.owned),
    })
}

impl Kernel {
    /// Another handle on the same compiled code with a scratch buffer of its own: a `Kernel` is
    /// `Send` but not `Sync`, so each thread of a parallel loop takes one (no compiling again).
    pub fn duplicate(&self) -> Kernel {
        Kernel {
            name: self.name.clone(),
            args: self.args.clone(),
            out_len: self.out_len,
            scratch_len: self.scratch_len,
            scratch: RefCell::new(vec![0.0; self.scratch_len]),
            entry: self.entry,
            clif: self.clif.clone(),
            compile_time: self.compile_time,
            module: Arc::clone(&self.module),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn args(&self) -> &[ArgSpec] {
        &self.args
    }

    pub fn output_len(&self) -> usize {
        self.out_len
    }

    /// `f64`s of scratch memory one call uses for tensors kept in memory.
    pub fn scratch_len(&self) -> usize {
        self.scratch_len
    }

    /// The Cranelift IR handed to the code generator (before its own optimisations).
    pub fn clif(&self) -> &str {
        &self.clif
    }

    /// Wall time from IR to executable code.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Evaluates one sample: `args` in the function's order with their declared lengths,
    /// `out` of [`Kernel::output_len`].
    pub fn call(&self, args: &[&[f64]], out: &mut [f64]) -> Result<(), Diag> {
        // The hot path of solvers (one small call per stage): the same checks as `call_batch`
        // for one sample, without its loop, and no scratch borrow when there is no scratch.
        let fits = args.len() == self.args.len()
            && out.len() == self.out_len
            && self.args.iter().zip(args).all(|(s, b)| b.len() == s.len);
        if !fits || args.len() > INLINE_ARGS || self.scratch_len > 0 {
            return self.call_batch(args, 1, out);
        }
        let mut ptrs = [std::ptr::null::<f64>(); INLINE_ARGS];
        for (ptr, buf) in ptrs.iter_mut().zip(args) {
            *ptr = buf.as_ptr();
        }
        // SAFETY: just checked: one buffer per argument, each of its declared length, and `out`
        // of `out_len`; the code reads and writes only those (module invariant above) and, with
        // `scratch_len == 0`, no scratch at all, so a dangling scratch pointer is never read.
        unsafe {
            (self.entry)(
                ptrs.as_ptr(),
                out.as_mut_ptr(),
                std::ptr::NonNull::dangling().as_ptr(),
            )
        };
        Ok(())
    }

    /// Evaluates `batch` samples: batched arguments are `[batch, len]` row-major, unbatched
    /// ones (parameters) are shared; `out` is `[batch, output_len]`. Equal to `ir::eval`.
    pub fn call_batch(&self, args: &[&[f64]], batch: usize, out: &mut [f64]) -> Result<(), Diag> {
        check(&self.name, &self.args, self.out_len, args, batch, out)?;
        let mut fresh = Vec::new();
        let mut borrowed = self.scratch.try_borrow_mut();
        let scratch: &mut Vec<f64> = match &mut borrowed {
            Ok(s) => s,
            Err(_) => {
                // Unreachable today (the code never calls back into Rust); a fresh buffer keeps
                // it panic-free should that change.
                fresh.resize(self.scratch_len, 0.0);
                &mut fresh
            }
        };
        let mut inline = [std::ptr::null::<f64>(); INLINE_ARGS];
        let mut spill = Vec::new();
        let ptrs = arg_pointers(args.len(), &mut inline, &mut spill);
        for b in 0..batch {
            for ((ptr, spec), buf) in ptrs.iter_mut().zip(&self.args).zip(args) {
                let at = if spec.batched { b * spec.len } else { 0 };
                *ptr = buf.as_ptr().wrapping_add(at);
            }
            let dst = out.as_mut_ptr().wrapping_add(b * self.out_len);
            // SAFETY: `check` proved every argument buffer holds `len` values from each
            // sample's start and `out` holds `out_len` from `dst`; the code reads and writes
            // only those and `scratch.len()` values of scratch (module invariant above).
            unsafe { (self.entry)(ptrs.as_ptr(), dst, scratch.as_mut_ptr()) };
        }
        Ok(())
    }
}

/// The buffer checks every call makes before entering generated code.
pub(super) fn check(
    name: &str,
    specs: &[ArgSpec],
    out_len: usize,
    args: &[&[f64]],
    batch: usize,
    out: &[f64],
) -> Result<(), Diag> {
    let bad = |msg: String| {
        Diag::error("glassbox::kernel_buffers", msg)
            .help("pass one buffer per argument, in the function's order, with its declared length (times the batch for batched arguments)")
    };
    if args.len() != specs.len() {
        return Err(bad(format!(
            "`{}` takes {} argument buffers, got {}",
            name,
            specs.len(),
            args.len()
        )));
    }
    for (spec, buf) in specs.iter().zip(args) {
        let expected = if spec.batched {
            spec.len.checked_mul(batch)
        } else {
            Some(spec.len)
        };
        if expected != Some(buf.len()) {
            return Err(bad(format!(
                "`{}`: argument `{}` needs {} values, got {}",
                name,
                spec.name,
                expected.map_or("more than usize::MAX".to_string(), |e| e.to_string()),
                buf.len()
            )));
        }
    }
    let expected = out_len.checked_mul(batch);
    if expected != Some(out.len()) {
        return Err(bad(format!(
            "`{}`: the output needs {} values, got {}",
            name,
            expected.map_or("more than usize::MAX".to_string(), |e| e.to_string()),
            out.len()
        )));
    }
    Ok(())
}

impl Kernel {
    /// A kernel around code linked into this executable, described by `spec`.
    ///
    /// # Safety
    /// `entry` must be the code generated for `spec` (same arguments, output and scratch
    /// lengths), alive for the rest of the process: only the standalone binary's entry point
    /// (`aot/entry.rs`) can vouch for that, since `glassbox build` wrote both from one IR.
    pub(crate) unsafe fn linked(entry: Entry, spec: &KernelSpec) -> Kernel {
        Kernel {
            name: spec.name.clone(),
            args: spec.arg_specs(),
            out_len: spec.out_len,
            scratch_len: spec.scratch_len,
            scratch: RefCell::new(vec![0.0; spec.scratch_len]),
            entry,
            clif: String::new(),
            compile_time: Duration::ZERO,
            // Linked code lives as long as the process: nothing to free.
            module: Arc::new(Owned(Mutex::new(None))),
        }
    }
}
