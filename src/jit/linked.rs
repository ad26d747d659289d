//! What a kernel linked into a standalone binary is, seen from the JIT: its ABI description
//! ([`KernelSpec`]: arguments, output and scratch lengths, written by `glassbox build` beside
//! the code from the same IR function) and the set of linked kernels the binary's entry point
//! (`aot/entry.rs`) hands to its runtime ([`Linked`]). Safe code: `Kernel::linked` (`kernel.rs`)
//! is the one place a spec is trusted.

use serde::{Deserialize, Serialize};

use super::Kernel;
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
