//! SDE solvers: `du = f(t, u) dt + g(t, u) dW` with diagonal or scalar noise, driven by a
//! seeded virtual Brownian tree.
//!
//! Methods ([`method`]): Euler–Maruyama (Itô), Euler–Heun (Stratonovich), Milstein (Itô;
//! `J_g·g` from [`SdeField::diffusion_jvp`]), the adaptive strong-order-1.5 SRI tableaux
//! SRIW1 and SOSRI (Itô, diagonal/scalar noise) and SRA1/SOSRA (additive noise), each
//! adaptive one with the error estimate `E_j` the regularizers read, recorded per accepted
//! step exactly like the ODE solver's, and the stiffness estimate `S_j` (`stiffness.rs`: a
//! drift secant at one abscissa). Brownian motion ([`brownian`]) is a pure function of
//! `(seed, path, t)`, so rejected steps and later re-queries see the same path.
//!
//! [`JitSde`] (`jit.rs`) is the model's drift, diffusion and diffusion JVP as JIT kernels.
//!
//! Architecture Invariant: the SDE solvers know models only through [`SdeField`] and its
//! adapters (`field.rs`); every failure is a [`crate::solve::SolveError`], never a panic.
//! See `docs/solvers.md`, "SDEs".

mod batch_field;
mod batched;
pub mod brownian;
mod field;
mod integrate;
mod jit;
pub mod method;
mod step;
mod stiffness;
mod track;

pub use batch_field::{JitBatchSde, PathByPath, SdeBatchField, SdePart};
pub use batched::{CHUNK_PATHS, solve_sde_batched, solve_sde_batched_on};
pub use brownian::{BrownianCache, BrownianPoint, BrownianTree, increments};
pub use field::{FnSde, IrSde, NoiseMap, SdeField, sde_from_fn};
pub use integrate::{SdeOptions, SdeSolution, solve_path, solve_sde, solve_sde_on, tree_depth};
pub(crate) use integrate::{error_estimate, initial_step};
pub use jit::JitSde;
pub use method::{Calculus, SdeMethod, sde_method};
pub(crate) use step::{Work, sde_step};
pub(crate) use stiffness::{drift_row, stiffness_estimate, stiffness_pair};
