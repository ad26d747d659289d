//! One step of any SDE method from `(t, u)` with the Brownian increments of the step.
//!
//! Invariant: the drift and diffusion at `(t, u)` are handed in (`f0`, `g0`; computed once
//! per accepted state, so rejected attempts do not repeat them); the step leaves `u_{n+1}`
//! in `w.u1` and, for the adaptive methods, the error parts `E1`, `E2` in `w.e1`, `w.e2`.
//! Buffers live in [`Work`]; the hot path does not allocate.

// The formulas are component-wise over several parallel buffers; indices read like the paper.
#![allow(clippy::needless_range_loop)]

use super::field::SdeField;
use super::method::{SdeMethod, SraTableau, SriTableau};

pub(crate) struct Work {
    n: usize,
    /// Per component: `ΔW`, `I_(1,0)` of its process, and `χ1, χ2, χ3`.
    pub dw: Vec<f64>,
    pub i10: Vec<f64>,
    pub chi: [Vec<f64>; 3],
    /// Stage values, stage-major (4 stages at most).
    pub fs: Vec<f64>,
    pub gs: Vec<f64>,
    /// Stage arguments `H0_s`, `H1_s`, stage-major: kept so the SDE adjoint
    /// (`grad::sde`) can take the VJPs where the step evaluated (Euler–Heun: `H0 = u + g ΔW`,
    /// `H1 = g(t + h, H0)` in the first `n`).
    pub h0: Vec<f64>,
    pub h1: Vec<f64>,
    pub u1: Vec<f64>,
    pub e1: Vec<f64>,
    pub e2: Vec<f64>,
    /// The stiffness pair's second drift value (`stiffness.rs`).
    pub fx: Vec<f64>,
}

impl Work {
    pub fn new(n: usize) -> Work {
        let v = || vec![0.0; n];
        Work {
            n,
            dw: v(),
            i10: v(),
            chi: [v(), v(), v()],
            fs: vec![0.0; 4 * n],
            gs: vec![0.0; 4 * n],
            h0: vec![0.0; 4 * n],
            h1: vec![0.0; 4 * n],
            u1: v(),
            e1: v(),
            e2: v(),
            fx: v(),
        }
    }
}

/// Takes one step of size `h`; returns the evaluations it spent (drift, diffusion and JVP
/// calls, each counted once). `w.dw`, `w.i10` hold the increments per component.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sde_step<S: SdeField + ?Sized>(
    method: SdeMethod,
    field: &mut S,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    g0: &[f64],
    w: &mut Work,
) -> u32 {
    let n = w.n;
    match method {
        SdeMethod::EulerMaruyama => {
            for i in 0..n {
                w.u1[i] = u[i] + h * f0[i] + g0[i] * w.dw[i];
            }
            0
        }
        SdeMethod::EulerHeun => {
            for i in 0..n {
                w.h0[i] = u[i] + g0[i] * w.dw[i];
            }
            field.diffusion(t + h, &w.h0[..n], &mut w.h1[..n]);
            for i in 0..n {
                w.u1[i] = u[i] + h * f0[i] + 0.5 * (g0[i] + w.h1[i]) * w.dw[i];
            }
            1
        }
        SdeMethod::Milstein => {
            field.diffusion_jvp(t, u, g0, &mut w.h1[..n]);
            for i in 0..n {
                let dw = w.dw[i];
                w.u1[i] = u[i] + h * f0[i] + g0[i] * dw + 0.5 * w.h1[i] * (dw * dw - h);
            }
            1
        }
        SdeMethod::Sri(tab) => sri_step(tab, field, t, u, h, f0, g0, w),
        SdeMethod::Sra(tab) => sra_step(tab, field, t, u, h, f0, w),
    }
}

fn chis(w: &mut Work, h: f64) {
    let sq = h.sqrt();
    for i in 0..w.n {
        let dw = w.dw[i];
        w.chi[0][i] = (dw * dw - h) / (2.0 * sq);
        w.chi[1][i] = w.i10[i] / h;
        w.chi[2][i] = (dw * dw * dw - 3.0 * h * dw) / (6.0 * h);
    }
}

#[allow(clippy::too_many_arguments)]
fn sri_step<S: SdeField + ?Sized>(
    tab: &SriTableau,
    field: &mut S,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    g0: &[f64],
    w: &mut Work,
) -> u32 {
    let n = w.n;
    let sq = h.sqrt();
    chis(w, h);
    let mut nfe = 0;
    for s in 0..4 {
        let (fs_done, fs_rest) = w.fs.split_at_mut(s * n);
        let (gs_done, gs_rest) = w.gs.split_at_mut(s * n);
        let at_u0 = tab.a0[s].iter().chain(&tab.b0[s]).all(|&x| x == 0.0);
        let h0 = &mut w.h0[s * n..(s + 1) * n];
        let h1 = &mut w.h1[s * n..(s + 1) * n];
        if at_u0 && tab.c0[s] == 0.0 {
            fs_rest[..n].copy_from_slice(f0);
            h0.copy_from_slice(u);
        } else {
            for i in 0..n {
                let (mut a, mut b) = (0.0, 0.0);
                for j in 0..s {
                    a += tab.a0[s][j] * fs_done[j * n + i];
                    b += tab.b0[s][j] * gs_done[j * n + i];
                }
                h0[i] = u[i] + h * a + w.chi[1][i] * b;
            }
            field.drift(t + tab.c0[s] * h, h0, &mut fs_rest[..n]);
            nfe += 1;
        }
        let at_u1 = tab.a1[s].iter().chain(&tab.b1[s]).all(|&x| x == 0.0);
        if at_u1 && tab.c1[s] == 0.0 {
            gs_rest[..n].copy_from_slice(g0);
            h1.copy_from_slice(u);
        } else {
            for i in 0..n {
                let (mut a, mut b) = (0.0, 0.0);
                for j in 0..s {
                    a += tab.a1[s][j] * fs_done[j * n + i];
                    b += tab.b1[s][j] * gs_done[j * n + i];
                }
                h1[i] = u[i] + h * a + sq * b;
            }
            field.diffusion(t + tab.c1[s] * h, h1, &mut gs_rest[..n]);
            nfe += 1;
        }
    }
    for i in 0..n {
        let (dw, c1, c2, c3) = (w.dw[i], w.chi[0][i], w.chi[1][i], w.chi[2][i]);
        let (mut drift, mut noise, mut e2, mut e1) = (0.0, 0.0, 0.0, 0.0);
        for s in 0..4 {
            let (f, g) = (w.fs[s * n + i], w.gs[s * n + i]);
            drift += tab.alpha[s] * f;
            noise += (tab.beta1[s] * dw + tab.beta2[s] * c1) * g;
            e2 += (tab.beta3[s] * c2 + tab.beta4[s] * c3) * g;
            if s < tab.error_stages {
                e1 += f;
            }
        }
        w.u1[i] = u[i] + h * drift + noise + e2;
        w.e1[i] = h * e1;
        w.e2[i] = e2;
    }
    nfe
}

fn sra_step<S: SdeField + ?Sized>(
    tab: &SraTableau,
    field: &mut S,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    w: &mut Work,
) -> u32 {
    let n = w.n;
    chis(w, h);
    let mut nfe = 0;
    for s in 0..tab.stages {
        let (fs_done, fs_rest) = w.fs.split_at_mut(s * n);
        let (gs_done, gs_rest) = w.gs.split_at_mut(s * n);
        let h0 = &mut w.h0[s * n..(s + 1) * n];
        for i in 0..n {
            let (mut a, mut b) = (0.0, 0.0);
            for j in 0..s {
                a += tab.a0[s][j] * fs_done[j * n + i];
                b += tab.b0[s][j] * gs_done[j * n + i];
            }
            h0[i] = u[i] + h * a + w.chi[1][i] * b;
        }
        if s == 0 && tab.c0[0] == 0.0 {
            fs_rest[..n].copy_from_slice(f0);
        } else {
            field.drift(t + tab.c0[s] * h, h0, &mut fs_rest[..n]);
            nfe += 1;
        }
        field.diffusion(t + tab.c1[s] * h, h0, &mut gs_rest[..n]);
        nfe += 1;
    }
    for i in 0..n {
        let (dw, c2) = (w.dw[i], w.chi[1][i]);
        let (mut drift, mut noise, mut e2, mut e1) = (0.0, 0.0, 0.0, 0.0);
        for s in 0..tab.stages {
            let (f, g) = (w.fs[s * n + i], w.gs[s * n + i]);
            drift += tab.alpha[s] * f;
            noise += tab.beta1[s] * dw * g;
            e2 += tab.beta2[s] * c2 * g;
            e1 += f;
        }
        w.u1[i] = u[i] + h * drift + noise + e2;
        w.e1[i] = h * e1;
        w.e2[i] = e2;
    }
    nfe
}
