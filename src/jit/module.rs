//! Module building: the host ISA (shared by the JIT and `glassbox build`'s object files),
//! one kernel function defined in a Cranelift module with its runtime symbols imported
//! ([`define_kernel`]), and a finalized one-function JIT module ([`build_module`]) together with
//! its owner [`Owned`], which frees the executable memory.
//!
//! `unsafe` here (allowed in `jit/mod.rs`): only freeing that memory, when the last owner of the
//! code (a kernel or one of its bound calls) is dropped, so no call can follow.

use std::collections::HashMap;
use std::sync::Mutex;

use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{AbiParam, FuncRef, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

use super::slice_runtime::{
    DenseSym, GemmFn, SliceFn, glassbox_dgemm, glassbox_dgemm_add, glassbox_matvec,
    glassbox_matvec_t, glassbox_outer, glassbox_tanh_n,
};
use super::{batch, internal, runtime};
use crate::diag::Diag;

/// The JIT module, whose executable memory is freed when its last owner (the kernel or one of
/// its bound calls) is dropped. The mutex is never locked on a call path; it only makes the
/// owner `Sync`, so `Arc<Owned>` keeps [`Kernel`](super::Kernel) `Send` as `JITModule` is.
pub(super) struct Owned(pub(super) Mutex<Option<JITModule>>);

impl Owned {
    pub(super) fn new(module: JITModule) -> Owned {
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

/// What the module builder hands back: the module, the code address, the CLIF text and the
/// scratch length the body reported.
pub(super) struct Built {
    pub(super) owned: Owned,
    pub(super) code: *const u8,
    pub(super) clif: String,
    pub(super) scratch_len: usize,
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
        if symbol == batch::GEMM || symbol == batch::GEMM_ADD {
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
pub(super) fn build_module(
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
    jit.symbol(batch::GEMM_ADD, glassbox_dgemm_add as GemmFn as *const u8);
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
