//! Stage 5: solvers whose heuristics are first-class values.
//!
//! Explicit Runge–Kutta methods are Butcher tableaux ([`tableau`]); stiff problems get the
//! Rosenbrock methods ([`rosenbrock`]) and `auto` switches between the two ([`Method`]). One
//! driver runs them all, adaptive (PID control, automatic initial step) or on a fixed grid, in
//! either direction of time, with dense output and save-at times. Every accepted step hands out its local error
//! estimate `E_j`, its stiffness estimate `S_j`, its size and its evaluation count
//! ([`StepRecord`]); the regularizers read those and never re-derive them.
//!
//! Architecture Invariant: solvers are generic over [`VectorField`] and know nothing of models,
//! the IR or the JIT beyond the adapters in `field.rs` and `jit_field.rs`. A new explicit method is a new tableau
//! and its row in [`registry`], not a new loop. Every failure is a [`SolveError`] (a `Diag` with a stable code), never a
//! panic. See `docs/solvers.md`.

mod batch_field;
mod batched;
mod control;
mod dense;
mod error;
mod field;
mod integrate;
mod jit_field;
mod lu;
mod method;
pub mod registry;
pub mod rodas;
pub mod rosenbrock;
pub mod sde;
pub(crate) mod step;
pub mod tableau;
pub mod threads;

pub use batch_field::{BatchField, FnBatch, JitBatchField, batch_from_fn};
pub use batched::{BatchControl, BatchRow, BatchSolution, BatchStats, solve_batch};
pub use control::StepControl;
pub use dense::Dense;
pub use error::SolveError;
pub use field::{FnField, IrField, VectorField, from_fn};
pub use integrate::{
    Solution, SolveOptions, Stages, Stats, StepRecord, solve, solve_into, solve_with, uses_jacobian,
};
pub use jit_field::{JitField, initial_state, param_values};
pub use method::Method;
pub use rosenbrock::{RODAS4, RODAS5P, ROSENBROCK23, Rosenbrock, rosenbrock};
pub use tableau::{Interpolant, Tableau, tableau};

// For the discrete adjoint (`grad`): it replays steps with the solver's own stepper and
// interpolant, so recomputed stages are bit-identical to the recorded ones.
pub(crate) use control::initial_step;
pub(crate) use dense::{StepData, interpolate};
pub(crate) use step::{Work, rk_step};
