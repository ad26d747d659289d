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

/// Save points interpolated together: their operations are independent, so four at a time
/// overlap the latency chains one point's stage sum is made of.
const LANES: usize = 4;

/// Appends the interpolated states at `t_n + θh` for every `θ` of `thetas` to `out`, in order.
/// Bit for bit what [`interpolate`] gives point by point: each point goes through the same
/// operations in the same order (the free interpolant's points merely run side by side).
pub(crate) fn interpolate_into(tab: &Tableau, s: &StepData, thetas: &[f64], out: &mut Vec<f64>) {
    let Interpolant::Free(w) = tab.interpolant else {
        return interpolate_each(tab, s, thetas, out);
    };
    let mut rest = thetas;
    while !rest.is_empty() {
        let take = rest.len().min(LANES);
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        // The step's end points are copies (`interpolate`); short chunks gain nothing.
        if take < LANES || chunk.iter().any(|&th| th == 0.0 || th == 1.0) {
            interpolate_each(tab, s, chunk, out);
            continue;
        }
        let th = [chunk[0], chunk[1], chunk[2], chunk[3]];
        match s.u0.len() {
            1 => free_lanes::<1>(w, s, th, out),
            2 => free_lanes::<2>(w, s, th, out),
            3 => free_lanes::<3>(w, s, th, out),
            4 => free_lanes::<4>(w, s, th, out),
            _ => interpolate_each(tab, s, chunk, out),
        }
    }
}

/// Four points of a free interpolant for `N` states, all in registers.
#[inline(always)]
fn free_lanes<const N: usize>(w: &[[f64; 4]], s: &StepData, th: [f64; LANES], out: &mut Vec<f64>) {
    let mut acc = [[0.0f64; LANES]; N];
    for (a, &u) in acc.iter_mut().zip(&s.u0[..N]) {
        *a = [u; LANES];
    }
    for (i, wi) in w.iter().enumerate() {
        if *wi == [0.0; 4] {
            continue; // b(θ) = 0 for every θ: `interpolate` skips the stage too
        }
        let k: &[f64; N] = s.k[i * N..(i + 1) * N]
            .try_into()
            .expect("N states a stage");
        let mut b = [0.0; LANES];
        let mut hb = [0.0; LANES];
        for j in 0..LANES {
            let t = th[j];
            b[j] = t * (wi[0] + t * (wi[1] + t * (wi[2] + t * wi[3])));
            hb[j] = s.h * b[j];
        }
        for (a, &km) in acc.iter_mut().zip(k) {
            for j in 0..LANES {
                // A root of b(θ) skips the term, as `interpolate` does.
                a[j] = if b[j] != 0.0 { a[j] + hb[j] * km } else { a[j] };
            }
        }
    }
    for j in 0..LANES {
        let mut point = [0.0; N];
        for (p, a) in point.iter_mut().zip(&acc) {
            *p = a[j];
        }
        out.extend_from_slice(&point);
    }
}

fn interpolate_each(tab: &Tableau, s: &StepData, thetas: &[f64], out: &mut Vec<f64>) {
    let n = s.u0.len();
    for &theta in thetas {
        let at = out.len();
        out.resize(at + n, 0.0);
        interpolate(tab, s, theta, &mut out[at..]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::tableau::METHODS;

    /// Deterministic values in (-2, 2) (a small LCG: no dependency for a test's noise).
    fn values(seed: &mut u64, len: usize) -> Vec<f64> {
        (0..len)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn interpolating_many_points_gives_each_points_bits() {
        let mut seed = 7;
        for tab in METHODS {
            for n in 1..=6 {
                for h in [0.37, -0.05] {
                    let u0 = values(&mut seed, n);
                    let u1 = values(&mut seed, n);
                    let f1 = values(&mut seed, n);
                    let k = values(&mut seed, tab.stages() * n);
                    let s = StepData {
                        h,
                        u0: &u0,
                        u1: &u1,
                        k: &k,
                        f1: &f1,
                    };
                    // Full chunks, a short tail, and the end points inside a chunk.
                    let mut thetas: Vec<f64> = (1..=9).map(|i| i as f64 / 10.0 + 0.013).collect();
                    thetas.extend([0.0, 0.5, 1.0, 0.25, 0.75, 0.999, 1e-7]);
                    let mut many = Vec::new();
                    interpolate_into(tab, &s, &thetas, &mut many);
                    let mut one = vec![0.0; n];
                    let mut each = Vec::new();
                    for &th in &thetas {
                        interpolate(tab, &s, th, &mut one);
                        each.extend_from_slice(&one);
                    }
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&many), bits(&each), "{} n = {n} h = {h}", tab.name);
                }
            }
        }
    }
}
