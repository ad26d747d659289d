//! The optimisers, run by dfdx's own update kernels (`AdamConfig::try_update` and friends) on
//! the learned tensor, with their state (moments, step count) held here as plain vectors so a
//! checkpoint can save and restore it exactly.
//!
//! Mapping of the model's options: `adam` → L2 weight decay, `adamw` → decoupled decay;
//! `sgd(momentum = m)` → classic momentum; `rmsprop(decay, eps, momentum)` → `alpha = decay`.
//! RMSprop starts its running average of squared gradients at 0 as PyTorch (and so
//! torchdiffeq's examples) does, not at 1 as dfdx's own `RMSprop` wrapper does; dfdx's kernel
//! adds `eps` inside the square root (`g / sqrt(v + eps)`, PyTorch: `g / (sqrt(v) + eps)`).

use dfdx::prelude::*;
use dfdx::tensor::{CpuError, Storage};
use dfdx::tensor_ops::{AdamConfig, Momentum, RMSpropConfig, SgdConfig, WeightDecay};
use serde::{Deserialize, Serialize};

use crate::diag::Diag;
use crate::sema::Optimizer;

/// Optimiser state: the step count and up to three per-parameter buffers (Adam: first and
/// second moments; SGD: velocity; RMSprop: momentum, square average, gradient average).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptState {
    pub t: i32,
    #[serde(with = "super::io::bits3")]
    pub buffers: [Vec<f64>; 3],
}

impl OptState {
    pub fn new(n: usize) -> OptState {
        OptState {
            t: 0,
            buffers: [vec![0.0; n], vec![0.0; n], vec![0.0; n]],
        }
    }
}

fn decay(wd: f64, decoupled: bool) -> Option<WeightDecay> {
    (wd > 0.0).then_some(if decoupled {
        WeightDecay::Decoupled(wd)
    } else {
        WeightDecay::L2(wd)
    })
}

/// One update of `theta` with gradient `grad`.
pub fn update(
    opt: &Optimizer,
    state: &mut OptState,
    theta: &mut Tensor<(usize,), f64, Cpu>,
    grad: &[f64],
) -> Result<(), Diag> {
    let n = theta.shape().0;
    if grad.len() != n || state.buffers.iter().any(|b| b.len() != n) {
        return Err(Diag::error(
            "glassbox::train_state_mismatch",
            format!(
                "optimiser state for {} values, the model learns {n}",
                grad.len()
            ),
        )
        .help("resume only from a run of the same model"));
    }
    state.t = state.t.saturating_add(1);
    // dfdx's kernels take its own vector type; copy the state in and out.
    let dev = theta.device().clone();
    let fail = |e: CpuError| {
        Diag::error(
            "glassbox::train_failed",
            format!("optimiser update failed: {e}"),
        )
        .help("this is a device error; retry with fewer parameters")
    };
    let mut bufs = Vec::with_capacity(4);
    for src in state
        .buffers
        .iter()
        .map(Vec::as_slice)
        .chain(std::iter::once(grad))
    {
        let mut v = dev.try_alloc_len(n).map_err(fail)?;
        v.copy_from_slice(src);
        bufs.push(v);
    }
    let Some((grad, rest)) = bufs.split_last_mut() else {
        return Ok(());
    };
    let [b0, b1, b2] = rest else {
        return Ok(());
    };
    let grad = &*grad;
    let r = match *opt {
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        }
        | Optimizer::AdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let cfg = AdamConfig {
                lr,
                betas: [beta1, beta2],
                eps,
                weight_decay: decay(weight_decay, matches!(opt, Optimizer::AdamW { .. })),
            };
            cfg.try_update(state.t, theta, b0, b1, grad)
        }
        Optimizer::Sgd { lr, momentum } => {
            let cfg = SgdConfig {
                lr,
                momentum: (momentum > 0.0).then_some(Momentum::Classic(momentum)),
                weight_decay: None,
            };
            cfg.try_update(theta, b0, grad)
        }
        Optimizer::RmsProp {
            lr,
            decay,
            eps,
            momentum,
        } => {
            let cfg = RMSpropConfig {
                lr,
                alpha: decay,
                eps,
                momentum: (momentum > 0.0).then_some(momentum),
                centered: false,
                weight_decay: None,
            };
            cfg.try_update(theta, b0, b1, b2, grad)
        }
    };
    r.map_err(fail)?;
    for (dst, src) in state.buffers.iter_mut().zip(rest.iter()) {
        dst.copy_from_slice(src);
    }
    Ok(())
}
