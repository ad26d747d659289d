//! A kernel call bound to buffers of its own ([`Bound`], made by [`Kernel::bind`]): the solvers'
//! hot path, which calls the code with no checks; and [`load_scalar`], how small solvers read
//! the outputs back.
//!
//! `unsafe` here (allowed in `jit/mod.rs`): the slices of the one allocation handed out, the
//! calls, `Send`, and the volatile read. Each rests on the type invariant of [`Bound`] below
//! and the module invariant of `kernel.rs`.

use std::sync::Arc;

use super::kernel::{Entry, Kernel, check};
use super::module::Owned;
use crate::diag::Diag;

/// A kernel call bound to buffers of its own: one per argument, the output and the scratch,
/// each of exactly the length the code was generated for, allocated once by [`Kernel::bind`].
/// [`Bound::run`] then calls the code with no checks at all (the pointer array handed to the
/// code is built once, too): the form for a solver, which calls one kernel many times.
///
/// Fill the arguments through [`Bound::arg_mut`] (or the checked [`Bound::set_arg`]), call
/// [`Bound::run`], read [`Bound::out`]. Arguments keep their values between runs, so fixed
/// ones (parameters, inputs) are written once. Each bound call has its own scratch, so several
/// may exist for one kernel; the code stays alive while any of them does.
///
/// Invariant (what makes `run` sound): all buffers live in `mem`, allocated at bind time and
/// never touched again except through `base` (so it never reallocates, and no reference into it
/// outlives the borrow of `self` that made it); between calls `ptrs[i]` is `base + at[i]` (only
/// [`Bound::run_with`] points one elsewhere, for the duration of its call), and the argument's
/// `lens[i]` values, the output's `out_len` and the scratch's `scratch_len` are disjoint ranges
/// inside `mem`.
pub struct Bound {
    /// The one allocation; held only to own it (and free it on drop).
    _mem: Vec<f64>,
    base: *mut f64,
    at: Vec<usize>,
    lens: Vec<usize>,
    ptrs: Vec<*const f64>,
    out: *mut f64,
    out_len: usize,
    scratch: *mut f64,
    entry: Entry,
    name: String,
    /// Keeps the code behind `entry` alive.
    _module: Arc<Owned>,
}

// SAFETY: the raw pointers of a `Bound` point only into its own allocation `_mem`, which it
// owns exclusively (like the `Vec` it is), and the code is kept alive by an `Arc` of a `Sync`
// owner; nothing is shared with another value, so moving it to another thread is sound. It is
// not `Sync`: `run` needs `&mut self`, and `&Bound` hands out only shared slices.
unsafe impl Send for Bound {}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("name", &self.name)
            .field("arg_lens", &self.lens)
            .field("out_len", &self.out_len)
            .finish()
    }
}

impl Kernel {
    /// A bound call with every argument zero (see [`Bound`]).
    pub fn bind(&self) -> Bound {
        let lens: Vec<usize> = self.args.iter().map(|a| a.len).collect();
        let code = (self.entry, self.name.clone(), Arc::clone(&self.module));
        Bound::allocate(lens, self.out_len, self.scratch_len, code)
    }

    /// A bound call with its arguments set from `args` (checked as [`Kernel::call`] checks).
    pub fn bind_with(&self, args: &[&[f64]]) -> Result<Bound, Diag> {
        // The argument checks of an unbound call, with the same messages (no output here).
        check(&self.name, &self.args, 0, args, 1, &[])?;
        let mut bound = self.bind();
        for (i, a) in args.iter().enumerate() {
            bound.set_arg(i, a)?;
        }
        Ok(bound)
    }
}

impl Bound {
    /// Buffers for arguments of `lens`, the output and the scratch, all zero, for `code`.
    fn allocate(
        lens: Vec<usize>,
        out_len: usize,
        scratch_len: usize,
        (entry, name, module): (Entry, String, Arc<Owned>),
    ) -> Bound {
        let mut at = Vec::with_capacity(lens.len());
        let mut total = 0;
        for len in &lens {
            at.push(total);
            total += len;
        }
        let out_at = total;
        let scratch_at = out_at + out_len;
        let mut mem = vec![0.0; scratch_at + scratch_len];
        // `as_mut_ptr` creates no reference to the elements, so the pointers derived from
        // `base` stay valid for as long as `mem` is neither touched nor reallocated (never).
        let base = mem.as_mut_ptr();
        let ptrs = at
            .iter()
            .map(|&a| base.wrapping_add(a).cast_const())
            .collect();
        Bound {
            _mem: mem,
            base,
            at,
            lens,
            ptrs,
            out: base.wrapping_add(out_at),
            out_len,
            scratch: base.wrapping_add(scratch_at),
            entry,
            name,
            _module: module,
        }
    }

    /// Another bound call of the same code with buffers of its own, its arguments copied from
    /// this one's (output and scratch zero, as after [`Kernel::bind`]): bound calls are `Send`,
    /// so each thread of a parallel loop gets its own without compiling again.
    pub fn duplicate(&self) -> Bound {
        let args: usize = self.lens.iter().sum();
        let scratch_len = self._mem.len() - args - self.out_len;
        let code = (self.entry, self.name.clone(), Arc::clone(&self._module));
        let mut copy = Bound::allocate(self.lens.clone(), self.out_len, scratch_len, code);
        for i in 0..self.lens.len() {
            if let (Some(src), Some(dst)) = (self.arg(i), copy.arg_mut(i)) {
                dst.copy_from_slice(src);
            }
        }
        copy
    }
}

/// Reads `x` with one 8-byte load, never merged with a neighbour's into a wider one.
///
/// Kernels store their outputs one `f64` at a time. A small solver reads an output right
/// after the call (the next stage's argument from the stage just computed); the vectoriser
/// would load two neighbours with one 16-byte load, which the store buffer cannot forward
/// from two 8-byte stores, so it waits until both reach the cache: a stall on every stage of
/// a 3-state solve (a sixth of Lorenz's step). Only small states use it.
#[inline(always)]
pub fn load_scalar(x: &f64) -> f64 {
    // SAFETY: `x` is a reference, so valid, aligned and initialised for this read; a volatile
    // read of it is an ordinary load the compiler keeps as it is.
    unsafe { std::ptr::read_volatile(x) }
}

impl Bound {
    /// The kernel's name (for diagnostics).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of argument buffers.
    pub fn arg_count(&self) -> usize {
        self.lens.len()
    }

    /// Argument `i`'s buffer (the function's argument order), `None` past the last.
    pub fn arg(&self, i: usize) -> Option<&[f64]> {
        let (&at, &len) = self.at.get(i).zip(self.lens.get(i))?;
        // SAFETY: `at..at + len` is argument `i`'s range inside `mem` (type invariant); the
        // shared borrow of `self` excludes every `&mut` into `mem` for the slice's lifetime.
        Some(unsafe { std::slice::from_raw_parts(self.base.add(at), len) })
    }

    /// Argument `i`'s buffer to write into; its length is the argument's declared length.
    pub fn arg_mut(&mut self, i: usize) -> Option<&mut [f64]> {
        let (&at, &len) = self.at.get(i).zip(self.lens.get(i))?;
        // SAFETY: as in `arg`; the exclusive borrow of `self` excludes every other reference
        // into `mem` (and any `run`) for the slice's lifetime, and argument ranges are disjoint.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.add(at), len) })
    }

    /// Copies `values` into argument `i`, checking the index and the length.
    pub fn set_arg(&mut self, i: usize, values: &[f64]) -> Result<(), Diag> {
        let name = self.name.clone();
        let count = self.arg_count();
        let Some(dst) = self.arg_mut(i) else {
            return Err(Diag::error(
                "glassbox::kernel_buffers",
                format!("`{name}` takes {count} argument buffers, no argument {i}"),
            )
            .help("arguments are numbered in the function's order, from 0"));
        };
        if dst.len() != values.len() {
            return Err(Diag::error(
                "glassbox::kernel_buffers",
                format!(
                    "`{name}`: argument {i} needs {} values, got {}",
                    dst.len(),
                    values.len()
                ),
            )
            .help("pass the argument's declared length"));
        }
        dst.copy_from_slice(values);
        Ok(())
    }

    /// Evaluates the kernel on the current arguments into [`Bound::out`]. No checks: there is
    /// nothing a caller can get wrong.
    #[inline]
    pub fn run(&mut self) {
        // SAFETY: `ptrs` holds one pointer per argument to exactly its declared length, `out`
        // points to `out_len` values and `scratch` to the kernel's scratch length, all disjoint
        // ranges of `mem` (type invariant), which no reference can point into while `run` holds
        // `&mut self`; the code reads and writes only those (module invariant), and it is alive
        // (`_module`).
        unsafe { (self.entry)(self.ptrs.as_ptr(), self.out, self.scratch) }
    }

    /// Runs with argument `arg` read from `values` in place of its own buffer, and the output
    /// written to `out` instead of [`Bound::out`] (which keeps its value): for a solver whose
    /// state and result live in its own buffers, which change from call to call. Checks only
    /// those two lengths (and the index), so no copies in or out are needed.
    #[inline]
    pub fn run_with(&mut self, arg: usize, values: &[f64], out: &mut [f64]) -> Result<(), Diag> {
        let fits = self.lens.get(arg) == Some(&values.len()) && out.len() == self.out_len;
        let Some(slot) = self.ptrs.get_mut(arg).filter(|_| fits) else {
            return Err(self.run_with_mismatch(arg, values.len(), out.len()));
        };
        let own = std::mem::replace(slot, values.as_ptr());
        // SAFETY: as in `run`, with argument `arg` at `values` (just checked to hold its
        // declared length) and the output at `out` (just checked to hold `out_len`); `values`
        // is borrowed shared and `out` exclusively, so neither overlaps the other nor `mem`.
        unsafe { (self.entry)(self.ptrs.as_ptr(), out.as_mut_ptr(), self.scratch) };
        // Back to the own buffer before `values` can go away (type invariant: `ptrs` point
        // into `mem` between calls).
        if let Some(slot) = self.ptrs.get_mut(arg) {
            *slot = own;
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn run_with_mismatch(&self, arg: usize, got: usize, out: usize) -> Diag {
        let msg = match self.lens.get(arg) {
            None => format!(
                "`{}` takes {} argument buffers, no argument {arg}",
                self.name,
                self.arg_count()
            ),
            Some(&len) if len != got => {
                format!(
                    "`{}`: argument {arg} needs {len} values, got {got}",
                    self.name
                )
            }
            Some(_) => format!(
                "`{}`: the output needs {} values, got {out}",
                self.name, self.out_len
            ),
        };
        Diag::error("glassbox::kernel_buffers", msg)
            .help("pass the argument's declared length and an output of the kernel's length")
    }

    /// The output of the last [`Bound::run`] (zeros before the first).
    pub fn out(&self) -> &[f64] {
        // SAFETY: `out..out + out_len` lies inside `mem` (type invariant); shared borrow as in
        // `arg`.
        unsafe { std::slice::from_raw_parts(self.out, self.out_len) }
    }
}
