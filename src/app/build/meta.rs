//! What a standalone binary knows about its model besides the code and the weights: written by
//! `glassbox build` ([`super::plan`]) into the object file, read by the binary's runtime.
//!
//! Invariant: [`Meta`] and the kernels in one object are written together from the same IR
//! functions, so the argument specs and scratch lengths in `Meta` are those the code was
//! generated for (a batched kernel's [`BatchSpec`] also the extents of the batch plan its code
//! was made from: `jit::object::emit` reports them, never the planner); the runtime relies on
//! that to call them. [`Meta::FORMAT`] names this layout, and the entry point refuses any
//! other with a message (a description is never read as another's). Numbers that must survive
//! exactly (tolerances, times) are stored as bit patterns.

use serde::{Deserialize, Serialize};

pub use crate::jit::{BatchSpecs, KernelSpec};
use crate::train::io::bits;

/// Everything the binary knows about its model besides the code and the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    /// The layout of this description ([`Meta::FORMAT`]; 0 in those written before it was
    /// recorded).
    #[serde(default)]
    pub format: u32,
    pub model: String,
    /// Where it came from: the model file and the weights (or "initial values").
    pub source: String,
    pub weights: String,
    /// Column names of the state (`x`, `y[0]`, ...) and the states as declared (`y[2]`).
    pub columns: Vec<String>,
    pub states: Vec<String>,
    /// Declared outputs and inputs, for `--help`.
    pub outputs: Vec<String>,
    pub inputs: Vec<String>,
    pub input_len: usize,
    pub method: String,
    #[serde(with = "bits")]
    pub tolerances: Vec<f64>,
    /// `[h0]` and `[dt]` when set.
    #[serde(with = "bits")]
    pub h0: Vec<f64>,
    #[serde(with = "bits")]
    pub dt: Vec<f64>,
    /// The step-size controller's settings, `StepControl::to_values`.
    #[serde(with = "bits")]
    pub control: Vec<f64>,
    pub max_steps: usize,
    pub detect_stiffness: bool,
    /// `[t0, t1]` when the model gives a span; the binary then saves `times`, or every
    /// accepted step when `times` is empty.
    #[serde(with = "bits")]
    pub span: Vec<f64>,
    #[serde(with = "bits")]
    pub times: Vec<f64>,
    /// Which `glassbox` command gives the same numbers (`predict` or `solve`), for `--help`.
    pub same_as: String,
    pub field: KernelSpec,
    pub jacobian: Option<KernelSpec>,
    pub dfdt: Option<KernelSpec>,
    pub init: KernelSpec,
    /// SDE models: the diffusion and how to sample; `field` is then the drift.
    pub sde: Option<SdeMeta>,
    /// Classifiers (`cross_entropy`): the head `logits(t, u, p, x)`, run on each row's final
    /// state; it takes the object's second kernel slot (an explicit method needs no `∂f/∂u`).
    pub head: Option<KernelSpec>,
    /// Classifiers: the field, encoder and head as batched kernels (the last three kernel
    /// slots) and the model's step control, for `glassbox predict`'s batched path
    /// (`train::forward`).
    pub batch: Option<BatchMeta>,
}

/// A classifier's batched kernels and how their rows' steps are controlled.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchMeta {
    /// `batch = per_row | joint` of the model's `solve` clause (`BatchControl::name`).
    pub control: String,
    pub kernels: BatchSpecs,
}

/// An SDE model's part of [`Meta`]. The diffusion and its JVP take the object's second and
/// third kernel slots (an ODE model's `∂f/∂u` and `∂f/∂t`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SdeMeta {
    pub diffusion: KernelSpec,
    /// Milstein's `J_g·v`; absent for every other method.
    pub jvp: Option<KernelSpec>,
    /// The Brownian process of each state component (`NoiseMap::of`).
    pub noise: Vec<usize>,
    /// Default `--seed` and `--paths`.
    pub seed: u64,
    pub paths: usize,
    /// Write the mean over the paths (`glassbox predict` of a trained SDE model) rather than
    /// every path (`glassbox solve`).
    pub mean: bool,
    /// Whether the drift reads `t` (`SdeField::drift_reads_t`: the stiffness estimate's cost).
    pub drift_reads_t: bool,
}

impl Meta {
    /// This layout's number: 2 added the batched kernels.
    pub const FORMAT: u32 = 2;

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The description a binary's runtime may trust: of this layout ([`Meta::FORMAT`], read
    /// first, so that another layout is named as such whatever its fields), else the message
    /// the binary prints (rebuild it).
    pub fn read(bytes: &[u8]) -> Result<Meta, String> {
        #[derive(Deserialize)]
        struct Format {
            #[serde(default)]
            format: u32,
        }
        let rebuild = "rebuild it with `glassbox build`";
        let damaged = || format!("this binary's model description is damaged; {rebuild}");
        let Format { format } = serde_json::from_slice(bytes).map_err(|_| damaged())?;
        if format != Meta::FORMAT {
            return Err(format!(
                "this binary's model description has format {format}, its runtime reads \
                 format {}; {rebuild}",
                Meta::FORMAT
            ));
        }
        serde_json::from_slice(bytes).map_err(|_| damaged())
    }
}
