//! `glassbox build FILE [--weights DIR] -o BIN`: compile a model ahead of time into a
//! standalone executable (`src/aot`, `docs/build.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::build::{self, Weights};
use crate::diag::Diag;
use crate::jit::object;
use crate::kit::{emit, load_source};
use crate::kit::{io_error, link, load_weights};
use crate::source::DiskLoader;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The model file (`*.gbx`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Trained weights: a run directory (with weights.safetensors) or a safetensors file.
    /// Default: the model's initial values.
    #[arg(long, value_name = "DIR")]
    pub weights: Option<PathBuf>,
    /// The executable to write (default: the model's name, in the current directory).
    #[arg(short = 'o', long = "output", value_name = "BIN")]
    pub output: Option<PathBuf>,
}

pub fn run(args: &BuildArgs) -> ExitCode {
    match build(args) {
        Ok(out) => {
            eprintln!("built {}", out.display());
            ExitCode::SUCCESS
        }
        Err(diags) => {
            emit(&diags);
            ExitCode::FAILURE
        }
    }
}

fn build(args: &BuildArgs) -> Result<PathBuf, Vec<Diag>> {
    let file = load_source(&args.file).map_err(|d| vec![d])?;
    let checked = crate::check_source(&file, &DiskLoader);
    let Some(model) = checked.model else {
        return Err(checked.diags);
    };
    // Before compiling: a missing runtime is the user's setup, not the model's.
    let runtime = link::runtime_library().map_err(|d| vec![d])?;
    let weights = match &args.weights {
        Some(path) => Some(Weights {
            values: load_weights(&model, path)?,
            source: path.display().to_string(),
        }),
        None => None,
    };
    let mut parts = build::plan(&model, &file, weights, &DiskLoader)?;
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

    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&model.name));
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
        .and_then(|()| link::link(&obj, &runtime, &out).map_err(|d| vec![d]));
    let _ = std::fs::remove_dir_all(&dir);
    linked.map(|()| out)
}
