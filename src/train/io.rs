//! Weights and checkpoints as bytes (the CLI does the file IO, atomically).
//!
//! `weights.safetensors`: one f64 tensor per model parameter, named as the model names it
//! (`alpha`, `f.W1`, `f.b1`), shaped as declared (`[]`, `[n]`, `[rows, cols]`), row-major —
//! what `safetensors.torch.load_file` reads into PyTorch tensors. Metadata: `model`.
//! `checkpoint.json`: a [`TrainState`].

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::trainer::TrainState;
use crate::diag::Diag;
use crate::sema::{Model, Shape};

/// `[]`, `[n]` or `[rows, cols]`.
pub(crate) fn dims(shape: &Shape) -> Vec<usize> {
    match *shape {
        Shape::Scalar | Shape::Error => Vec::new(),
        Shape::Vector { n } => vec![n],
        Shape::Matrix { rows, cols } => vec![rows, cols],
    }
}

fn bad_weights(msg: String) -> Diag {
    Diag::error("glassbox::bad_weights", msg)
        .help("use the weights.safetensors that `glassbox train` wrote for this model")
}

/// A tensor of a weights file, read without the model.
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// Every f64 tensor of a weights file, by name (the file does not record the model's order:
/// `kit::source::load_tensors` takes it from the run), and the model's name when recorded.
pub fn named_tensors(bytes: &[u8]) -> Result<(Option<String>, Vec<NamedTensor>), Diag> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad_weights(format!("not a safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad_weights(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let t = st
            .tensor(&name)
            .map_err(|e| bad_weights(format!("cannot read `{name}`: {e}")))?;
        if t.dtype() != Dtype::F64 {
            return Err(bad_weights(format!("`{name}` is {:?}, not f64", t.dtype())));
        }
        out.push(NamedTensor {
            shape: t.shape().to_vec(),
            values: f64s(t.data()),
            name,
        });
    }
    Ok((meta.get("model").cloned(), out))
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            f64::from_le_bytes(a)
        })
        .collect()
}

/// Serialise the full parameter vector `p` of `model`.
pub fn weights_to_safetensors(model: &Model, p: &[f64]) -> Result<Vec<u8>, Diag> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .params
        .iter()
        .map(|q| {
            let vals = p.get(q.offset..q.offset + q.shape.size()).unwrap_or(&[]);
            let b: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            (q.name.clone(), dims(&q.shape), b)
        })
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (name, shape, b) in &bytes {
        let v = TensorView::new(Dtype::F64, shape.clone(), b)
            .map_err(|e| bad_weights(format!("cannot serialise `{name}`: {e}")))?;
        views.push((name.clone(), v));
    }
    let meta = HashMap::from([("model".to_string(), model.name.clone())]);
    safetensors::serialize(views, Some(meta))
        .map_err(|e| bad_weights(format!("cannot serialise the weights: {e}")))
}

/// Read weights for `model`: every parameter must be present with its declared shape and
/// dtype f64. Returns the full parameter vector.
pub fn weights_from_safetensors(model: &Model, bytes: &[u8]) -> Result<Vec<f64>, Diag> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad_weights(format!("not a safetensors file: {e}")))?;
    let mut p = vec![0.0; model.param_size];
    for q in &model.params {
        let t = st
            .tensor(&q.name)
            .map_err(|_| bad_weights(format!("the weights have no tensor `{}`", q.name)))?;
        if t.dtype() != Dtype::F64 || t.shape() != dims(&q.shape).as_slice() {
            return Err(bad_weights(format!(
                "`{}` is {:?} {:?}, the model declares f64 {:?}",
                q.name,
                t.dtype(),
                t.shape(),
                dims(&q.shape)
            )));
        }
        let vals = f64s(t.data());
        if let Some(dst) = p.get_mut(q.offset..q.offset + vals.len()) {
            dst.copy_from_slice(&vals);
        }
    }
    Ok(p)
}

pub fn state_to_json(state: &TrainState) -> Vec<u8> {
    let mut s = serde_json::to_vec(state).unwrap_or_default();
    s.push(b'\n');
    s
}

pub fn state_from_json(bytes: &[u8]) -> Result<TrainState, Diag> {
    serde_json::from_slice(bytes).map_err(|e| {
        Diag::error(
            "glassbox::bad_checkpoint",
            format!("the checkpoint is not readable: {e}"),
        )
        .help("resume from a directory written by `glassbox train` (its checkpoint.json)")
    })
}

/// `Vec<f64>` as the values' bit patterns: JSON's decimal floats need not parse back to the
/// same bits, and a resumed run must continue from exactly the saved numbers.
pub mod bits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.to_bits()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<u64>::deserialize(d)?
            .into_iter()
            .map(f64::from_bits)
            .collect())
    }
}

/// Three `Vec<f64>` as bit patterns (the optimiser buffers).
pub mod bits3 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<f64>; 3], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|b| b.iter().map(|x| x.to_bits()).collect::<Vec<u64>>()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[Vec<f64>; 3], D::Error> {
        let [a, b, c] = <[Vec<u64>; 3]>::deserialize(d)?;
        let f = |v: Vec<u64>| v.into_iter().map(f64::from_bits).collect();
        Ok([f(a), f(b), f(c)])
    }
}
