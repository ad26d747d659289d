//! The compiled kernel: builds the Cranelift module, owns it, and calls into it.
//!
//! This is the only file of the crate with `unsafe` code, three uses, each commented:
//! turning the finalized code address into a function pointer, calling it, and freeing the
//! module's executable memory on drop. Soundness rests on one invariant: before every call,
//! [`Kernel::call`] / [`Kernel::call_batch`] check the number and length of all buffers against
//! the argument specs the code was generated from, and the code touches nothing else but its
//! own scratch buffer (whose length `codegen::lower` reports and the kernel allocates).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{AbiParam, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};

use super::{Options, codegen, internal, runtime};
use crate::diag::Diag;
use crate::ir::{ArgSpec, Function};

/// `fn(args, out, scratch)`: see `codegen.rs` for the layout.
type Entry = unsafe extern "C" fn(*const *const f64, *mut f64, *mut f64);

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
    /// Declared last so the code outlives every other field's use of it.
    _module: Owned,
}

/// The JIT module, whose executable memory is freed when the kernel is dropped.
struct Owned(Option<JITModule>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(module) = self.0.take() {
            // SAFETY: the only pointer into this memory is `Kernel::entry`, and the kernel owning
            // both is being dropped, so no call can follow.
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

pub(super) fn build(f: &Function, name: &str, options: Options) -> Result<Kernel, Diag> {
    let start = Instant::now();
    let err = |what: &str, detail: &dyn std::fmt::Display| internal(name, what, detail);
    f.validate().map_err(|e| err("invalid IR", &e))?;

    let mut flags = settings::builder();
    for (key, value) in [
        ("opt_level", "speed"),
        ("is_pic", "false"),
        ("use_colocated_libcalls", "false"),
        ("enable_verifier", "true"),
    ] {
        flags
            .set(key, value)
            .map_err(|e| err("Cranelift setting", &e))?;
    }
    let isa = cranelift_native::builder()
        .map_err(|e| err("host not supported by Cranelift", &e))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| err("Cranelift target", &e))?;
    let mut jit = JITBuilder::with_isa(isa, default_libcall_names());
    for (symbol, address, _) in runtime::symbols() {
        jit.symbol(symbol, address);
    }
    let mut owned = Owned(Some(JITModule::new(jit)));
    let Some(module) = owned.0.as_mut() else {
        return Err(err("module", &"missing"));
    };
    if module.target_config().pointer_type() != I64 {
        return Err(err("target", &"only 64-bit targets are supported"));
    }

    let mut sig = module.make_signature();
    sig.params.extend([AbiParam::new(I64); 3]);
    let id = module
        .declare_function("kernel", Linkage::Local, &sig)
        .map_err(|e| err("declaring the kernel", &e))?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());

    let arity: HashMap<&str, usize> = runtime::symbols()
        .into_iter()
        .map(|(n, _, a)| (n, a))
        .collect();
    let mut funcs = HashMap::new();
    for symbol in codegen::needed_symbols(f) {
        let mut s = module.make_signature();
        let n = arity.get(symbol).copied().unwrap_or(1);
        s.params.extend(std::iter::repeat_n(AbiParam::new(F64), n));
        s.returns.push(AbiParam::new(F64));
        let fid = module
            .declare_function(symbol, Linkage::Import, &s)
            .map_err(|e| err("declaring a runtime symbol", &e))?;
        funcs.insert(symbol, module.declare_func_in_func(fid, &mut ctx.func));
    }

    let mut fctx = FunctionBuilderContext::new();
    let mut builder = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let scratch_len =
        codegen::lower(&mut builder, f, &funcs, options.unroll).map_err(|e| err("codegen", &e))?;
    builder.finalize(module.target_config());
    let clif = ctx.func.display().to_string();
    module
        .define_function(id, &mut ctx)
        .map_err(|e| err("Cranelift rejected the code", &format!("{e:?}")))?;
    module
        .finalize_definitions()
        .map_err(|e| err("linking", &e))?;
    let code = module.get_finalized_function(id);
    // SAFETY: `code` is the finalized address of the function just defined with exactly the
    // signature `Entry` describes (three pointer-sized parameters, no results, the platform's
    // C calling convention that `make_signature` chose). It stays valid while `owned` lives,
    // and `owned` moves into the kernel with it.
    let entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
    Ok(Kernel {
        name: name.to_string(),
        args: f.args.clone(),
        out_len: f.output_len(),
        scratch_len,
        scratch: RefCell::new(vec![0.0; scratch_len]),
        entry,
        clif,
        compile_time: start.elapsed(),
        _module: owned,
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
        self.call_batch(args, 1, out)
    }

    /// Evaluates `batch` samples: batched arguments are `[batch, len]` row-major, unbatched
    /// ones (parameters) are shared; `out` is `[batch, output_len]`. Equal to `ir::eval`.
    pub fn call_batch(&self, args: &[&[f64]], batch: usize, out: &mut [f64]) -> Result<(), Diag> {
        self.check(args, batch, out)?;
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

    fn check(&self, args: &[&[f64]], batch: usize, out: &[f64]) -> Result<(), Diag> {
        let bad = |msg: String| {
            Diag::error("glassbox::kernel_buffers", msg)
                .help("pass one buffer per argument, in the function's order, with its declared length (times the batch for batched arguments)")
        };
        if args.len() != self.args.len() {
            return Err(bad(format!(
                "`{}` takes {} argument buffers, got {}",
                self.name,
                self.args.len(),
                args.len()
            )));
        }
        for (spec, buf) in self.args.iter().zip(args) {
            let expected = if spec.batched {
                spec.len.checked_mul(batch)
            } else {
                Some(spec.len)
            };
            if expected != Some(buf.len()) {
                return Err(bad(format!(
                    "`{}`: argument `{}` needs {} values, got {}",
                    self.name,
                    spec.name,
                    expected.map_or("more than usize::MAX".to_string(), |e| e.to_string()),
                    buf.len()
                )));
            }
        }
        let expected = self.out_len.checked_mul(batch);
        if expected != Some(out.len()) {
            return Err(bad(format!(
                "`{}`: the output needs {} values, got {}",
                self.name,
                expected.map_or("more than usize::MAX".to_string(), |e| e.to_string()),
                out.len()
            )));
        }
        Ok(())
    }
}
