//! Loading what the user names: model files and trained weights.

use std::path::Path;
use std::sync::Arc;

use super::io::{path_error, read_error};
use crate::diag::Diag;
use crate::sema::Model;
use crate::source::SourceFile;
use crate::train::io;

/// Read and decode a model file; IO and encoding problems are diagnostics like any other.
pub fn load_source(path: &Path) -> Result<Arc<SourceFile>, Diag> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, &e))?;
    crate::syntax::decode(&path.display().to_string(), bytes)
}

/// The weights in `path`: a run directory (its `weights.safetensors`) or the file itself.
pub fn load_weights(model: &Model, path: &Path) -> Result<Vec<f64>, Vec<Diag>> {
    let path = if path.is_dir() {
        path.join("weights.safetensors")
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        vec![path_error("read", &path, &e).help(
            "give the run directory `glassbox train` wrote (--out), or its weights.safetensors",
        )]
    })?;
    io::weights_from_safetensors(model, &bytes).map_err(|d| vec![d])
}
