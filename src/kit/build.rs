//! Writing a standalone binary (`glassbox build`, the Python package's `Model.build`): the
//! build plan (`app::build::plan`) compiled ahead of time into an object file
//! (`jit::object`), linked with the runtime library (`link`).

use std::path::Path;
use std::sync::Arc;

use super::{io_error, link};
use crate::app::build::{self, Weights};
use crate::diag::Diag;
use crate::jit::object;
use crate::sema::Model;
use crate::source::{DiskLoader, SourceFile};

/// Compiles `model` (from `file`) with `weights` (else its initial values) into the
/// executable `out`, linked against the runtime archive `runtime`: a failed build leaves any
/// earlier `out` as it was (`link::link` renames the finished binary over it).
pub fn write_binary(
    model: &Model,
    file: &Arc<SourceFile>,
    weights: Option<Weights>,
    runtime: &Path,
    out: &Path,
) -> Result<(), Vec<Diag>> {
    let mut parts = build::plan(model, file, weights, &DiskLoader)?;
    let kernels = object::Kernels {
        field: &parts.field,
        derivs: parts.derivs.as_ref().map(|(j, d)| (j, d)),
        sde: parts.sde.as_ref().map(|(g, jvp)| (g, jvp.as_ref())),
        init: &parts.init,
        head: parts.head.as_ref(),
        batched: parts.batch_control.is_some(),
    };
    let control = parts.batch_control;
    let meta = &mut parts.meta;
    let bytes = object::emit(
        &model.name,
        &kernels,
        |object::Layout {
             scratch: [field, jacobian, dfdt, init],
             batch,
         }| {
            meta.field.scratch_len = field;
            if let Some(j) = meta.jacobian.as_mut() {
                j.scratch_len = jacobian;
            }
            if let Some(d) = meta.dfdt.as_mut() {
                d.scratch_len = dfdt;
            }
            // An SDE's diffusion and JVP take the same slots (`object::Kernels`).
            if let Some(s) = meta.sde.as_mut() {
                s.diffusion.scratch_len = jacobian;
                if let Some(j) = s.jvp.as_mut() {
                    j.scratch_len = dfdt;
                }
            }
            if let Some(h) = meta.head.as_mut() {
                h.scratch_len = jacobian;
            }
            meta.init.scratch_len = init;
            meta.batch = batch
                .zip(control)
                .map(|(kernels, control)| build::BatchMeta {
                    control: control.name().to_string(),
                    kernels,
                });
            meta.to_bytes()
        },
        &parts.p,
    )
    .map_err(|d| vec![d])?;

    let dir = std::env::temp_dir().join(format!(
        "glassbox-build-{}-{}",
        std::process::id(),
        model.name
    ));
    let io = |what: &str, e: std::io::Error| {
        vec![
            io_error(format_args!("write {what}"), &e)
                .help("check that the temporary directory (TMPDIR) is writable"),
        ]
    };
    std::fs::create_dir_all(&dir).map_err(|e| io("a temporary directory", e))?;
    let obj = dir.join(format!("{}.o", model.name));
    let linked = std::fs::write(&obj, bytes)
        .map_err(|e| io("the object file", e))
        .and_then(|()| link::link(&obj, runtime, out).map_err(|d| vec![d]));
    let _ = std::fs::remove_dir_all(&dir);
    linked
}
