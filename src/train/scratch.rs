//! Buffers the ODE solve node keeps from one window and one iteration to the next: the
//! solutions (their saved states and kept stages), the adjoint's sweep buffers and the loss
//! cotangent of one window. Training solves and differentiates the same shapes over and over;
//! reusing the buffers takes the allocator out of the loop.
//!
//! Invariant: reuse changes no result. Every buffer is cleared or overwritten before it is
//! read (`solve_into`, `adjoint_in`), so an iteration's numbers do not depend on what the
//! previous one left behind.

use crate::grad::AdjointWork;
use crate::solve::Solution;

#[derive(Default)]
pub struct Scratch {
    /// The solutions of the last forward pass, handed back by its backward pass.
    pub(super) sols: Vec<Solution>,
    pub(super) adjoint: AdjointWork,
    /// `dL/du` at one window's saved states.
    pub(super) dl_du: Vec<f64>,
    /// `dL/dp` of each window, row by row.
    pub(super) dps: Vec<f64>,
}

/// Entry `i` of `sols`, appending an empty solution when the list is shorter.
pub(super) fn slot(sols: &mut Vec<Solution>, i: usize) -> &mut Solution {
    if sols.len() <= i {
        sols.push(Solution::default());
    }
    &mut sols[i]
}
