//! Dense output: the solution between the accepted steps, from each step's own data.
//!
//! Tsit5 and Dopri5 use their free interpolants (order 4, no extra evaluation); every other
//! method uses cubic Hermite interpolation on `u_n, u_{n+1}, f(t_n, u_n), f(t_{n+1}, u_{n+1})`.
//! Rosenbrock steps use their own (`rosenbrock.rs`). The same functions serve `save_at`
//! during the solve and [`Dense::eval`] after it.

use super::rosenbrock::{Rosenbrock, ros_interpolate};
use super::tableau::{Interpolant, Tableau};

/// The data of one step an interpolant needs: `u0`, `u1`, the stages (stage-major) and
/// `f1 = f(t + h, u1)`.
pub(crate) struct StepData<'a> {
    pub h: f64,
    pub u0: &'a [f64],
    pub u1: &'a [f64],
    pub k: &'a [f64],
    pub f1: &'a [f64],
}

/// Writes the interpolated state at `t_n + θh` into `out`.
pub(crate) fn interpolate(tab: &Tableau, s: &StepData, theta: f64, out: &mut [f64]) {
    let n = s.u0.len();
    // The step's end points exactly, not up to the interpolant's rounding.
    if theta == 0.0 {
        out.copy_from_slice(s.u0);
        return;
    }
    if theta == 1.0 {
        out.copy_from_slice(s.u1);
        return;
    }
    match tab.interpolant {
        Interpolant::Free(w) => {
            out.copy_from_slice(s.u0);
            for (i, wi) in w.iter().enumerate() {
                let b = theta * (wi[0] + theta * (wi[1] + theta * (wi[2] + theta * wi[3])));
                if b != 0.0 {
                    let hb = s.h * b;
                    for (o, k) in out.iter_mut().zip(&s.k[i * n..(i + 1) * n]) {
                        *o += hb * k;
                    }
                }
            }
        }
        Interpolant::Hermite => {
            let f0 = &s.k[..n];
            let th = theta;
            for m in 0..n {
                let du = s.u1[m] - s.u0[m];
                out[m] = (1.0 - th) * s.u0[m]
                    + th * s.u1[m]
                    + th * (th - 1.0)
                        * ((1.0 - 2.0 * th) * du + (th - 1.0) * s.h * f0[m] + th * s.h * s.f1[m]);
            }
        }
    }
}

/// Which interpolant a stored step uses.
#[derive(Clone, Copy, Debug)]
enum StepKind {
    /// Block: `u0`, `u1`, `f1` (`3n`) and the stages (`s·n`).
    Rk(&'static Tableau),
    /// Block: `u0`, `u1` and the method's dense vectors (`(2 + dense_vectors)·n`).
    Ros(&'static Rosenbrock),
}

/// The continuous solution over `[t0, t1]`, kept when `SolveOptions::dense` is set. Steps may
/// come from different methods (`auto`); each keeps its own interpolant.
#[derive(Clone, Debug)]
pub struct Dense {
    dim: usize,
    /// Step start times and signed step sizes.
    ts: Vec<f64>,
    hs: Vec<f64>,
    kinds: Vec<StepKind>,
    /// Start of each step's block in `data`.
    offsets: Vec<usize>,
    data: Vec<f64>,
}

impl Dense {
    pub(crate) fn new(dim: usize) -> Dense {
        Dense {
            dim,
            ts: Vec::new(),
            hs: Vec::new(),
            kinds: Vec::new(),
            offsets: Vec::new(),
            data: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, tab: &'static Tableau, t: f64, s: &StepData) {
        self.start(t, s.h, StepKind::Rk(tab));
        self.data.extend_from_slice(s.u0);
        self.data.extend_from_slice(s.u1);
        self.data.extend_from_slice(s.f1);
        self.data.extend_from_slice(s.k);
    }

    pub(crate) fn push_ros(
        &mut self,
        m: &'static Rosenbrock,
        t: f64,
        h: f64,
        (u0, u1, d): (&[f64], &[f64], &[f64]),
    ) {
        self.start(t, h, StepKind::Ros(m));
        self.data.extend_from_slice(u0);
        self.data.extend_from_slice(u1);
        self.data
            .extend_from_slice(&d[..m.dense_vectors() * u0.len()]);
    }

    fn start(&mut self, t: f64, h: f64, kind: StepKind) {
        self.ts.push(t);
        self.hs.push(h);
        self.kinds.push(kind);
        self.offsets.push(self.data.len());
    }

    /// The state at `t`, or `None` outside the solved span (or before the first step).
    pub fn eval(&self, t: f64) -> Option<Vec<f64>> {
        let (&first, &last_t, &last_h) = (self.ts.first()?, self.ts.last()?, self.hs.last()?);
        let dir = last_h.signum();
        let end = last_t + last_h;
        if !((t - first) * dir >= 0.0 && (end - t) * dir >= 0.0) {
            return None;
        }
        // The last step whose start is at or before t (in the direction of integration).
        let j = self
            .ts
            .partition_point(|&tj| (t - tj) * dir >= 0.0)
            .saturating_sub(1);
        let n = self.dim;
        let h = *self.hs.get(j)?;
        let at = *self.offsets.get(j)?;
        let theta = if t == end { 1.0 } else { (t - self.ts[j]) / h };
        let mut out = vec![0.0; n];
        match *self.kinds.get(j)? {
            StepKind::Rk(tab) => {
                let d = self.data.get(at..at + 3 * n + tab.stages() * n)?;
                let step = StepData {
                    h,
                    u0: &d[..n],
                    u1: &d[n..2 * n],
                    f1: &d[2 * n..3 * n],
                    k: &d[3 * n..],
                };
                interpolate(tab, &step, theta, &mut out);
            }
            StepKind::Ros(m) => {
                let d = self.data.get(at..at + (2 + m.dense_vectors()) * n)?;
                ros_interpolate(m, &d[..n], &d[n..2 * n], &d[2 * n..], theta, &mut out);
            }
        }
        Some(out)
    }
}
