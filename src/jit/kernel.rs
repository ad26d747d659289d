//! The compiled kernel: builds the Cranelift module, owns it, and calls into it.
//!
//! This is the only file of the crate with `unsafe` code, each use commented: turning the
//! finalized code address into a function pointer, calling it, freeing the module's executable
//! memory on drop, the buffers of a [`Bound`] call, and [`load_scalar`]'s volatile read of a
//! reference (sound for any reference). Soundness rests on one invariant: the
//! code reads and writes only the buffers it is handed, within the lengths of the argument
//! specs it was generated from, and its own scratch buffer (whose length `codegen::lower`
//! reports). [`Kernel::call`] / [`Kernel::call_batch`] check every buffer before each call;
//! [`Bound`] allocates its buffers with exactly those lengths once, at [`Kernel::bind`], and
//! hands out only slices of them, so its [`Bound::run`] has nothing left to check.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{AbiParam, FuncRef, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

use super::{Options, batch, codegen, dense, internal, runtime};
use crate::aot::{KernelSpec, Meta};
use crate::diag::Diag;
use crate::ir::{ArgSpec, Function};
use crate::math;

/// `fn(args, out, scratch)`: see `codegen.rs` for the layout.
pub(super) type Entry = unsafe extern "C" fn(*const *const f64, *mut f64, *mut f64);

/// `fn(args, out, sums, scratch, buffers, batch)`: see `batch.rs`.
type BatchEntry =
    unsafe extern "C" fn(*const *const f64, *mut f64, *mut f64, *mut f64, *mut f64, usize);

/// `C[m×n] = A[m×k]·B[k×n]` with element strides (rows, columns) for each matrix.
type GemmFn = extern "C" fn(
    usize,
    usize,
    usize,
    *const f64,
    isize,
    isize,
    *const f64,
    isize,
    isize,
    *mut f64,
    isize,
    isize,
);

/// The GEMM runtime symbol batched kernels call (`matrixmultiply`, single-threaded).
#[allow(clippy::too_many_arguments)]
extern "C" fn glassbox_dgemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    csb: isize,
    c: *mut f64,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: only batched kernels call this symbol, with matrices inside the buffers that
    // `BatchKernel::call` checked (batched arguments: `batch` rows of their length) or sized
    // (its buffer area: `batch` rows of each buffered node; the sums): `batch.rs` derives every
    // extent from the same plan the Rust side sized them from. `C` never overlaps `A` or `B`
    // (a GEMM result is a buffer or sums region of its own).
    unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
}

type SliceFn = unsafe extern "C" fn(*const f64, *mut f64, usize);

/// `out[i] = tanh(x[i])` for `i < n`: the slice symbol kernels call for a tensor `tanh`
/// (`runtime::TANH_N`), exported unmangled like the scalar symbols for standalone binaries.
///
/// # Safety
/// `x` must be valid for reading and `out` for writing `n` `f64`s, and they must not overlap:
/// the kernels pass a node's address (an argument or scratch) and a fresh scratch region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_tanh_n(x: *const f64, out: *mut f64, n: usize) {
    // SAFETY: the caller's contract above.
    let (x, out) = unsafe {
        (
            std::slice::from_raw_parts(x, n),
            std::slice::from_raw_parts_mut(out, n),
        )
    };
    tanh_slice(x, out);
}

/// `out[i] = math::tanh(x[i])`, with the widest vector unit the CPU has (the same bits
/// whatever the width: see `math::tanh`).
pub fn tanh_slice(x: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { tanh_avx512(x, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { tanh_avx2(x, out) };
        }
    }
    math::tanh_into(x, out)
}

/// `out[i] = op(x[i])` on slices.
pub type SliceMap = fn(&[f64], &mut [f64]);

/// Every version of [`tanh_slice`] this CPU can run, by name (for tests and benchmarks: each
/// must give the scalar bits).
pub fn tanh_slice_versions() -> Vec<(&'static str, SliceMap)> {
    let mut all: Vec<(&'static str, SliceMap)> = vec![("baseline", math::tanh_into as SliceMap)];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: listed only when the CPU has AVX2.
            all.push(("avx2", |x, out| unsafe { tanh_avx2(x, out) }));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: listed only when the CPU has AVX-512F.
            all.push(("avx512f", |x, out| unsafe { tanh_avx512(x, out) }));
        }
    }
    all
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(x: &[f64], out: &mut [f64]) {
    math::tanh_into(x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tanh_avx512(x: &[f64], out: &mut [f64]) {
    math::tanh_into(x, out)
}

/// A dense product on slices (`dense.rs`): `(w, x, out)` for the mat-vecs, `(a, b, out)` for
/// the outer product.
pub type DenseFn = fn(&[f64], &[f64], &mut [f64]);

/// The dense products kernels call (`runtime::MATVEC`, `MATVEC_T`, `OUTER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dense {
    /// `out = w·x`, `w` row-major with `out.len()` rows.
    MatVec,
    /// `out = wᵀ·x`, `w` row-major with `x.len()` rows.
    MatVecT,
    /// `out = a ⊗ b`, row-major.
    Outer,
}

/// One dense product for every vector unit: the AVX2 and AVX-512 versions are the safe slice
/// function of `dense.rs` inlined where the wider unit is enabled.
macro_rules! dense_versions {
    ($($op:ident => $f:path, $avx2:ident, $avx512:ident;)*) => {
        $(#[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2(a: &[f64], b: &[f64], out: &mut [f64]) {
            $f(a, b, out)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn $avx512(a: &[f64], b: &[f64], out: &mut [f64]) {
            $f(a, b, out)
        })*

        /// Every version of `op` this CPU can run, by name (for tests and benchmarks: each must
        /// give the baseline's bits), the widest last.
        pub fn dense_versions(op: Dense) -> Vec<(&'static str, DenseFn)> {
            match op {
                $(Dense::$op => {
                    let mut all: Vec<(&'static str, DenseFn)> = vec![("baseline", $f as DenseFn)];
                    #[cfg(target_arch = "x86_64")]
                    {
                        if std::arch::is_x86_feature_detected!("avx2") {
                            // SAFETY: listed only when the CPU has AVX2.
                            all.push(("avx2", |a, b, out| unsafe { $avx2(a, b, out) }));
                        }
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            // SAFETY: listed only when the CPU has AVX-512F.
                            all.push(("avx512f", |a, b, out| unsafe { $avx512(a, b, out) }));
                        }
                    }
                    all
                })*
            }
        }

        /// `op` with the widest vector unit the CPU has (the same bits whatever the width).
        pub fn dense_product(op: Dense, a: &[f64], b: &[f64], out: &mut [f64]) {
            match op {
                $(Dense::$op => {
                    #[cfg(target_arch = "x86_64")]
                    {
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            // SAFETY: the CPU has AVX-512F (checked just above).
                            return unsafe { $avx512(a, b, out) };
                        }
                        if std::arch::is_x86_feature_detected!("avx2") {
                            // SAFETY: the CPU has AVX2 (checked just above).
                            return unsafe { $avx2(a, b, out) };
                        }
                    }
                    $f(a, b, out)
                })*
            }
        }
    };
}

dense_versions! {
    MatVec => dense::matvec, matvec_avx2, matvec_avx512;
    MatVecT => dense::matvec_t, matvec_t_avx2, matvec_t_avx512;
    Outer => dense::outer, outer_avx2, outer_avx512;
}

/// `fn(a, b, out, m, n)`: the dense symbols' C signature.
type DenseSym = unsafe extern "C" fn(*const f64, *const f64, *mut f64, usize, usize);

/// [`dense_product`] on raw operands `(pointer, length)`, for the three exported symbols.
///
/// # Safety
/// Each pointer must be valid for its length (`out` for writing) and `out` must overlap
/// neither input.
unsafe fn dense_raw(
    op: Dense,
    (a, a_len): (*const f64, usize),
    (b, b_len): (*const f64, usize),
    (out, out_len): (*mut f64, usize),
) {
    // SAFETY: the caller's contract above.
    let (a, b, out) = unsafe {
        (
            std::slice::from_raw_parts(a, a_len),
            std::slice::from_raw_parts(b, b_len),
            std::slice::from_raw_parts_mut(out, out_len),
        )
    };
    dense_product(op, a, b, out);
}

/// `out[r] = Σ_j w[r·n + j]·x[j]`, `r < rows` (`runtime::MATVEC`).
///
/// # Safety
/// `w` must be valid for reading `rows·n` `f64`s, `x` for `n`, `out` for writing `rows`, and
/// `out` must overlap neither: the kernels pass node addresses (arguments or scratch) and a
/// fresh scratch region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_matvec(
    w: *const f64,
    x: *const f64,
    out: *mut f64,
    rows: usize,
    n: usize,
) {
    // SAFETY: the caller's contract above.
    unsafe { dense_raw(Dense::MatVec, (w, rows * n), (x, n), (out, rows)) };
}

/// `out[c] = Σ_r w[r·n + c]·x[r]`, `c < n` (`runtime::MATVEC_T`).
///
/// # Safety
/// `w` must be valid for reading `rows·n` `f64`s, `x` for `rows`, `out` for writing `n`, and
/// `out` must overlap neither (as for [`glassbox_matvec`]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_matvec_t(
    w: *const f64,
    x: *const f64,
    out: *mut f64,
    rows: usize,
    n: usize,
) {
    // SAFETY: the caller's contract above.
    unsafe { dense_raw(Dense::MatVecT, (w, rows * n), (x, rows), (out, n)) };
}

/// `out[i·n + j] = a[i]·b[j]`, `i < m`, `j < n` (`runtime::OUTER`).
///
/// # Safety
/// `a` must be valid for reading `m` `f64`s, `b` for `n`, `out` for writing `m·n`, and `out`
/// must overlap neither (as for [`glassbox_matvec`]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_outer(
    a: *const f64,
    b: *const f64,
    out: *mut f64,
    m: usize,
    n: usize,
) {
    // SAFETY: the caller's contract above.
    unsafe { dense_raw(Dense::Outer, (a, m), (b, n), (out, m * n)) };
}

/// Most functions have at most six arguments (`t, u, p, x, v, w`); their pointers go in an
/// array on the stack, more in a `Vec`.
const INLINE_ARGS: usize = 8;

/// A compiled IR function. Not `Sync` (calls share one scratch buffer); compile one per thread.
pub struct Kernel {
    name: String,
    args: Vec<ArgSpec>,
    out_len: usize,
    scratch_len: usize,
    scratch: RefCell<Vec<f64>>,
    entry: Entry,
    clif: String,
    compile_time: Duration,
    /// Shared with every [`Bound`] of this kernel, so the code outlives each copy of `entry`.
    module: Arc<Owned>,
}

/// The JIT module, whose executable memory is freed when its last owner (the kernel or one of
/// its bound calls) is dropped. The mutex is never locked on a call path; it only makes the
/// owner `Sync`, so `Arc<Owned>` keeps [`Kernel`] `Send` as `JITModule` is.
struct Owned(Mutex<Option<JITModule>>);

impl Owned {
    fn new(module: JITModule) -> Owned {
        Owned(Mutex::new(Some(module)))
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let slot = match self.0.get_mut() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(module) = slot.take() {
            // SAFETY: every pointer into this memory (`entry` of a kernel or of a bound call)
            // is held next to an `Arc` of this owner, and this is the last one being dropped,
            // so no call can follow.
            unsafe { module.free_memory() };
        }
    }
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

/// What the module builder hands back: the module, the code address, the CLIF text and the
/// scratch length the body reported.
struct Built {
    owned: Owned,
    code: *const u8,
    clif: String,
    scratch_len: usize,
}

/// The body emitter: given the builder (its entry block holds the parameters) and the imported
/// symbols, emits the code and returns the scratch length.
pub(super) type Body<'x> = dyn FnOnce(&mut FunctionBuilder<'_>, &HashMap<&'static str, FuncRef>) -> Result<usize, String>
    + 'x;

/// The host's Cranelift target: the JIT's, and the object files' of `glassbox build` (`pic`:
/// position-independent code, for executables the system linker makes position-independent).
/// The same ISA flags for both, so AOT and JIT kernels are the same instructions.
pub(super) fn host_isa(name: &str, pic: bool) -> Result<OwnedTargetIsa, Diag> {
    let err = |what: &str, detail: &dyn std::fmt::Display| internal(name, what, detail);
    let mut flags = settings::builder();
    for (key, value) in [
        ("opt_level", "speed"),
        ("is_pic", if pic { "true" } else { "false" }),
        ("use_colocated_libcalls", "false"),
        ("enable_verifier", "true"),
    ] {
        flags
            .set(key, value)
            .map_err(|e| err("Cranelift setting", &e))?;
    }
    cranelift_native::builder()
        .map_err(|e| err("host not supported by Cranelift", &e))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| err("Cranelift target", &e))
}

/// Declares and defines one function `symbol` in `module`: `params` pointer-sized parameters,
/// no results, importing `symbols` (runtime math symbols of `f64`s, and the GEMM). Returns its
/// id, its CLIF text and the scratch length the body reported.
pub(super) fn define_kernel<M: Module>(
    module: &mut M,
    name: &str,
    (symbol, linkage): (&str, Linkage),
    params: usize,
    symbols: &[&'static str],
    body: Box<Body<'_>>,
) -> Result<(FuncId, String, usize), Diag> {
    let err = |what: &str, detail: &dyn std::fmt::Display| internal(name, what, detail);
    if module.target_config().pointer_type() != I64 {
        return Err(err("target", &"only 64-bit targets are supported"));
    }
    let mut sig = module.make_signature();
    sig.params
        .extend(std::iter::repeat_n(AbiParam::new(I64), params));
    let id = module
        .declare_function(symbol, linkage, &sig)
        .map_err(|e| err("declaring the kernel", &e))?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());

    let arity: HashMap<&str, usize> = runtime::symbols()
        .into_iter()
        .map(|(n, _, a)| (n, a))
        .collect();
    let mut funcs = HashMap::new();
    for &symbol in symbols {
        let mut s = module.make_signature();
        if symbol == batch::GEMM {
            s.params.extend(std::iter::repeat_n(AbiParam::new(I64), 12));
        } else if let Some(n) = runtime::pointer_arity(symbol) {
            s.params.extend(std::iter::repeat_n(AbiParam::new(I64), n));
        } else {
            let n = arity.get(symbol).copied().unwrap_or(1);
            s.params.extend(std::iter::repeat_n(AbiParam::new(F64), n));
            s.returns.push(AbiParam::new(F64));
        }
        let fid = module
            .declare_function(symbol, Linkage::Import, &s)
            .map_err(|e| err("declaring a runtime symbol", &e))?;
        funcs.insert(symbol, module.declare_func_in_func(fid, &mut ctx.func));
    }

    let mut fctx = FunctionBuilderContext::new();
    let mut builder = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let scratch_len = body(&mut builder, &funcs).map_err(|e| err("codegen", &e))?;
    builder.finalize(module.target_config());
    let clif = ctx.func.display().to_string();
    module
        .define_function(id, &mut ctx)
        .map_err(|e| err("Cranelift rejected the code", &format!("{e:?}")))?;
    Ok((id, clif, scratch_len))
}

/// Builds a one-function JIT module (see [`define_kernel`]).
fn build_module(
    name: &str,
    params: usize,
    symbols: &[&'static str],
    body: Box<Body<'_>>,
) -> Result<Built, Diag> {
    let err = |what: &str, detail: &dyn std::fmt::Display| internal(name, what, detail);
    let mut jit = JITBuilder::with_isa(host_isa(name, false)?, default_libcall_names());
    for (symbol, address, _) in runtime::symbols() {
        jit.symbol(symbol, address);
    }
    jit.symbol(batch::GEMM, glassbox_dgemm as GemmFn as *const u8);
    jit.symbol(runtime::TANH_N, glassbox_tanh_n as SliceFn as *const u8);
    for (symbol, address) in [
        (runtime::MATVEC, glassbox_matvec as DenseSym),
        (runtime::MATVEC_T, glassbox_matvec_t as DenseSym),
        (runtime::OUTER, glassbox_outer as DenseSym),
    ] {
        jit.symbol(symbol, address as *const u8);
    }
    let mut owned = Owned::new(JITModule::new(jit));
    let Some(module) = owned.0.get_mut().ok().and_then(Option::as_mut) else {
        return Err(err("module", &"missing"));
    };
    let (id, clif, scratch_len) = define_kernel(
        module,
        name,
        ("kernel", Linkage::Local),
        params,
        symbols,
        body,
    )?;
    module
        .finalize_definitions()
        .map_err(|e| err("linking", &e))?;
    let code = module.get_finalized_function(id);
    Ok(Built {
        owned,
        code,
        clif,
        scratch_len,
    })
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
        let ptrs: &mut [*const f64] = if args.len() <= INLINE_ARGS {
            &mut inline[..args.len()]
        } else {
            spill.resize(args.len(), std::ptr::null());
            &mut spill
        };
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
        let mut at = Vec::with_capacity(lens.len());
        let mut total = 0;
        for len in &lens {
            at.push(total);
            total += len;
        }
        let out_at = total;
        let scratch_at = out_at + self.out_len;
        let mut mem = vec![0.0; scratch_at + self.scratch_len];
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
            out_len: self.out_len,
            scratch: base.wrapping_add(scratch_at),
            entry: self.entry,
            name: self.name.clone(),
            _module: Arc::clone(&self.module),
        }
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

pub(super) fn build_batch(
    f: &Function,
    name: &str,
    summed: &[bool],
    options: Options,
) -> Result<BatchKernel, Diag> {
    let start = Instant::now();
    f.validate().map_err(|e| internal(name, "invalid IR", e))?;
    let plan =
        batch::plan(f, summed, options.gemm_min).map_err(|e| internal(name, "batch plan", e))?;
    let mut symbols = codegen::needed_symbols(f, options);
    if plan.uses_gemm() {
        symbols.push(batch::GEMM);
    }
    let built = build_module(
        name,
        6,
        &symbols,
        Box::new(|b, funcs| {
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
            batch::lower(b, f, &plan, funcs, options, &params)
        }),
    )?;
    // SAFETY: as in `build`: the finalized address of the function just defined with the six
    // pointer-sized parameters `BatchEntry` describes; `owned` moves into the kernel with it.
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

impl BatchKernel {
    pub fn name(&self) -> &str {
        &self.name
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

    /// Evaluates `batch` samples: arguments as for [`Kernel::call_batch`]; `out` is
    /// `[batch, output_len]` (the outputs that are not summed), `sums` is `[sums_len]` (the
    /// summed outputs, each `Σ_b` of its per-sample value).
    pub fn call(
        &self,
        args: &[&[f64]],
        batch: usize,
        out: &mut [f64],
        sums: &mut [f64],
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
        sums.fill(0.0);
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
        let ptrs: &mut [*const f64] = if args.len() <= INLINE_ARGS {
            &mut inline[..args.len()]
        } else {
            spill.resize(args.len(), std::ptr::null());
            &mut spill
        };
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

/// The buffer checks every call makes before entering generated code.
fn check(
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

/// The kernels linked into a standalone binary (`glassbox build`), as its entry point hands
/// them to the runtime: the field, `(∂f/∂u, ∂f/∂t)` for implicit methods, the initial state;
/// for an SDE, `field` is the drift and `sde` the diffusion and (Milstein) its JVP.
pub struct Linked {
    pub field: Kernel,
    pub derivs: Option<(Kernel, Kernel)>,
    pub sde: Option<(Kernel, Option<Kernel>)>,
    pub init: Kernel,
    /// A classifier's head (`aot::Meta::head`).
    pub head: Option<Kernel>,
}

impl Kernel {
    /// A kernel around code linked into this executable, described by `spec`. Private: only
    /// [`glassbox_aot_main`] can vouch that `spec` is what `entry` was generated for.
    fn linked(entry: Entry, spec: &KernelSpec) -> Kernel {
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

/// The entry point of a standalone binary: the `main` that `jit::object::emit` generates calls
/// it with its read-only data (the metadata and the weights) and its kernels (null when
/// absent), and returns its exit status.
#[allow(clippy::too_many_arguments)]
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
    let Some(meta) = Meta::from_bytes(meta) else {
        eprintln!(
            "error: this binary's model description is damaged; rebuild it with `glassbox build`"
        );
        return 101;
    };
    // The metadata and the kernels were written together from the same IR functions
    // (`aot` module invariant), so each spec describes its kernel's code: the calls `Kernel`
    // makes with buffers checked against it are sound as for JIT kernels.
    let derivs = match (jacobian, dfdt, &meta.jacobian, &meta.dfdt) {
        (Some(j), Some(d), Some(js), Some(ds)) => {
            Some((Kernel::linked(j, js), Kernel::linked(d, ds)))
        }
        _ => None,
    };
    // An SDE's diffusion and JVP take the middle slots (`object::Kernels`).
    let sde = match (jacobian, &meta.sde) {
        (Some(g), Some(s)) => Some((
            Kernel::linked(g, &s.diffusion),
            dfdt.zip(s.jvp.as_ref())
                .map(|(e, js)| Kernel::linked(e, js)),
        )),
        _ => None,
    };
    // So does a classifier's head (the second slot).
    let head = match (jacobian, &meta.head) {
        (Some(h), Some(s)) => Some(Kernel::linked(h, s)),
        _ => None,
    };
    let (Some(field), Some(init)) = (field, init) else {
        eprintln!("error: this binary has no vector field; rebuild it with `glassbox build`");
        return 101;
    };
    let linked = Linked {
        field: Kernel::linked(field, &meta.field),
        derivs,
        sde,
        init: Kernel::linked(init, &meta.init),
        head,
    };
    crate::aot::runtime::main(&meta, weights, linked)
}
