//! Stage 7: training. dfdx owns the learned values (one tensor `θ`), the losses and the
//! optimiser kernels; the solve is one custom node of dfdx's graph whose backward is the
//! discrete adjoint (`grad::adjoint`), with the solver regularizers (ERNODE's `R_E`, SRNODE's
//! `R_S`, global or locally sampled) and the integral terms (`kinetic`, `jacobian_frobenius`,
//! `taylor(K)`) folded into the same sweep; `steer(b)` moves each solve's end time. See `docs/training.md`.
//!
//! Invariants: fixed parameters never change (θ holds only the learned values); one seed
//! drives every random choice, so the same model, data, seed and iteration count give
//! bit-identical weights, and a resumed run equals the uninterrupted one. The core does no IO:
//! [`io`] turns weights and checkpoints into bytes, the CLI writes them.

mod batched;
mod classify;
mod forward;
mod integrals;
pub mod io;
mod op;
mod optim;
mod plan;
mod rows;
mod scratch;
mod sde;
mod sde_reg;
mod tape;
mod trainer;
mod validate;
mod windows;

pub use batched::{PER_ROW_CHUNK, TrainingPath, chunk_rows};
pub use classify::{
    ClassReport, Head, argmax, call as call_kernel, head as classifier_head, predict_table, score,
};
pub use forward::{
    BATCH_ROWS, BatchEnds, ForwardPath, ForwardStats, MIN_BATCH_ROWS, predict_batched,
    solves_batched,
};
pub use integrals::{IntegralKind, IntegralTerm, STEER_STREAM, Steer, steer};
pub use op::{Forward, LocalWeight, Segment, Weights};
pub use optim::OptState;
pub use plan::{DataLoss, Overrides, Plan, Regularizer, coef_at, plan};
pub use sde::{SDE_STREAM, SdePlan, brownian_seed, data_mean};
pub use tape::{Backend, DeviceKind, cuda_not_built};
pub use trainer::{Evaluation, LOCAL_STREAM, Metric, TrainState, Trainer, data_loss, predict};
