//! Loading what the user names: model files and trained weights.

use std::path::Path;
use std::sync::Arc;

use super::io::{path_error, read_error};
use super::run_dir;
use crate::app::params::{self, ParamSummary};
use crate::diag::Diag;
use crate::sema::Model;
use crate::source::SourceFile;
use crate::train::io;

/// Read and decode a model file; IO and encoding problems are diagnostics like any other.
pub fn load_source(path: &Path) -> Result<Arc<SourceFile>, Diag> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, &e))?;
    crate::syntax::decode(&path.display().to_string(), bytes)
}

/// The weights in `path`: a run directory (its `weights.safetensors`, refused when a crash
/// left it older than the checkpoint beside it) or the file itself.
pub fn load_weights(model: &Model, path: &Path) -> Result<Vec<f64>, Vec<Diag>> {
    let bytes = read_weights(path)?;
    io::weights_from_safetensors(model, &bytes).map_err(|d| vec![d])
}

/// The parameters in `path` (as [`load_weights`] finds them) read without the model:
/// `glassbox params`. A run directory's `run.json` gives their order and which are learned;
/// a bare weights file lists them by name. Also the model's name when the file records it.
pub fn load_params(path: &Path) -> Result<(Option<String>, Vec<ParamSummary>), Vec<Diag>> {
    let bytes = read_weights(path)?;
    let (model, tensors) = io::named_tensors(&bytes).map_err(|d| vec![d])?;
    let decls = path.is_dir().then(|| run_dir::read_params(path)).flatten();
    Ok((model, params::of_tensors(&tensors, decls.as_deref())))
}

/// The bytes of a run directory's weights (checked current) or of a weights file.
fn read_weights(path: &Path) -> Result<Vec<u8>, Vec<Diag>> {
    let dir = path.is_dir().then_some(path);
    let path = match dir {
        Some(d) => d.join(run_dir::WEIGHTS),
        None => path.to_path_buf(),
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        vec![path_error("read", &path, &e).help(
            "give the run directory `glassbox train` wrote (--out), or its weights.safetensors",
        )]
    })?;
    if let Some(dir) = dir {
        check_weights_current(dir, &bytes).map_err(|d| vec![d])?;
    }
    Ok(bytes)
}

/// A run directory's weights must be the ones its checkpoint was written with (`kit::run_dir`).
fn check_weights_current(dir: &Path, weights: &[u8]) -> Result<(), Diag> {
    let Some(iteration) = run_dir::weights_older_than_checkpoint(dir, weights) else {
        return Ok(());
    };
    Err(Diag::error(
        "glassbox::stale_weights",
        format!(
            "the weights in `{}` are not those of its checkpoint (iteration {iteration}): the \
             run was stopped while saving them",
            dir.display()
        ),
    )
    .help(format!(
        "`glassbox train MODEL --resume {}` rewrites the weights from the checkpoint",
        dir.display()
    )))
}
