//! Buffers the ODE solve node keeps from one window and one iteration to the next: the
//! solutions (their saved states and kept stages) and each window's `dL/dp` (the adjoint's
//! sweep buffers live with the row workers, `rows.rs`). Training solves and differentiates the same shapes over and over;
//! reusing the buffers takes the allocator out of the loop.
//!
//! The batched path (`train/windows.rs`) takes the solutions `solve_batch` returns instead
//! (and hands them back the same way).
//!
//! Invariant: reuse changes no result. Every buffer is cleared or overwritten before it is
//! read (`solve_into`, `adjoint_in`), so an iteration's numbers do not depend on what the
//! previous one left behind.

use crate::solve::Solution;

#[derive(Default)]
pub struct Scratch {
    /// The solutions of the last forward pass, handed back by its backward pass.
    pub(super) sols: Vec<Solution>,
    /// `dL/dp` of each window, row by row.
    pub(super) dps: Vec<f64>,
}
