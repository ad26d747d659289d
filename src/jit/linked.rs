//! What a kernel linked into a standalone binary is, seen from the JIT: its ABI description
//! ([`KernelSpec`]: arguments, output and scratch lengths, written by `glassbox build` beside
//! the code from the same IR function) and the set of linked kernels the binary's entry point
//! (`aot/entry.rs`) hands to its runtime ([`Linked`]); a batched kernel's ([`BatchSpec`]: the
//! batch plan's extents besides). Safe code: `Kernel::linked` (`kernel.rs`) and
//! `BatchKernel::linked` (`batch_kernel.rs`) are the places a spec is trusted.

use serde::{Deserialize, Serialize};

use super::{BatchKernel, Kernel};
use crate::ir::{ArgSpec, Function};

/// The kernels linked into a standalone binary (`glassbox build`), as its entry point hands
/// them to the runtime: the field, `(∂f/∂u, ∂f/∂t)` for implicit methods, the initial state;
/// for an SDE, `field` is the drift and `sde` the diffusion and (Milstein) its JVP.
pub struct Linked {
    pub field: Kernel,
    pub derivs: Option<(Kernel, Kernel)>,
    pub sde: Option<(Kernel, Option<Kernel>)>,
    pub init: Kernel,
    /// A classifier's head, run on each row's final state.
    pub head: Option<Kernel>,
    /// A classifier's field, encoder and head as batched kernels (`glassbox predict`'s
    /// batched path, `train::forward`).
    pub batch: Option<LinkedBatch>,
}

/// A classifier's batched kernels in a standalone binary: the vector field, the initial state
/// (the encoder) and the head, each the `jit::compile_batch` of the same IR function as its
/// per-sample kernel, with no summed outputs.
pub struct LinkedBatch {
    pub field: BatchKernel,
    pub init: BatchKernel,
    pub head: BatchKernel,
}

/// What calling one linked kernel needs: its arguments, output length and scratch length.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KernelSpec {
    pub name: String,
    /// `(name, len, batched)` of each argument, in order.
    pub args: Vec<(String, usize, bool)>,
    pub out_len: usize,
    pub scratch_len: usize,
}

impl KernelSpec {
    pub fn new(name: String, f: &Function, scratch_len: usize) -> KernelSpec {
        KernelSpec {
            name,
            args: f
                .args
                .iter()
                .map(|a| (a.name.clone(), a.len, a.batched))
                .collect(),
            out_len: f.output_len(),
            scratch_len,
        }
    }

    /// The argument specs, as the IR function had them.
    pub fn arg_specs(&self) -> Vec<ArgSpec> {
        self.args
            .iter()
            .map(|(name, len, batched)| ArgSpec {
                name: name.clone(),
                len: *len,
                batched: *batched,
            })
            .collect()
    }
}

/// The specs of a classifier's batched kernels ([`LinkedBatch`]'s), as `object::emit` reports
/// them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchSpecs {
    pub field: BatchSpec,
    pub init: BatchSpec,
    pub head: BatchSpec,
}

/// What calling one linked batched kernel needs: its per-sample spec (arguments, the length of
/// one sample's outputs, scratch) and the extents of the batch plan the code was generated
/// from (`batch.rs`): the summed outputs' length and the buffer area's `f64`s per sample. Made
/// only by `object::emit` from the plan it generated the code with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchSpec {
    pub kernel: KernelSpec,
    pub sums_len: usize,
    pub per_sample: usize,
    /// Whether some dense layer is a GEMM over the batch (`BatchKernel::uses_gemm`).
    pub gemms: bool,
}
