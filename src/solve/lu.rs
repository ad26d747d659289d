//! Dense LU with partial pivoting, in place in buffers sized once per solve: the Rosenbrock
//! methods factorise `W = I − hγJ` once per attempt, and for the small systems they meet
//! (a handful of states) the cost of the matrix algebra is below that of allocating a
//! `DMatrix` and its permutation each time (Robertson: 3×3, several hundred factorisations).
//!
//! Invariant: `factor` reports a singular or non-finite matrix as `false` (a rejected attempt
//! for the caller), never a panic or a silent NaN; after a `true` every `solve` is finite for
//! finite right-hand sides.

// Elimination is written index by index, as textbooks write it.
#![allow(clippy::needless_range_loop)]

/// Evaluates `$body` with `$n` rebound to a constant for the sizes stiff models usually have
/// (1 to 4 states), so that LLVM unrolls the loops over it (with `#[inline(always)]` bodies),
/// and to its run-time value otherwise. Measured on Robertson (3 states): the LU solves and
/// the power iteration, rolled loops of trip count 3, were half of a Rodas step.
macro_rules! small_n {
    ($n:ident => $body:expr) => {
        match $n {
            1 => {
                let $n = 1usize;
                $body
            }
            2 => {
                let $n = 2usize;
                $body
            }
            3 => {
                let $n = 3usize;
                $body
            }
            4 => {
                let $n = 4usize;
                $body
            }
            _ => $body,
        }
    };
}
pub(crate) use small_n;

pub(crate) struct Lu {
    n: usize,
    /// Row-major; after `factor`: `U` on and above the diagonal, `L`'s multipliers below
    /// (unit diagonal implied).
    a: Vec<f64>,
    /// Row `i` of the factorised matrix was row `piv[i]` of the input.
    piv: Vec<usize>,
    /// `1 / U_ii`: a solve multiplies (several solves per factorisation, each of whose
    /// divisions would sit on the back substitution's dependency chain).
    inv_diag: Vec<f64>,
}

impl Lu {
    pub fn new(n: usize) -> Lu {
        Lu {
            n,
            a: vec![0.0; n * n],
            piv: (0..n).collect(),
            inv_diag: vec![0.0; n],
        }
    }

    /// Factorises the matrix with entries `entry(i, j)`; `false` when it is singular or has
    /// a non-finite entry.
    pub fn factor(&mut self, mut entry: impl FnMut(usize, usize) -> f64) -> bool {
        let n = self.n;
        small_n!(n => self.factor_n(n, &mut entry))
    }

    #[inline(always)]
    fn factor_n(&mut self, n: usize, entry: &mut impl FnMut(usize, usize) -> f64) -> bool {
        for i in 0..n {
            for j in 0..n {
                self.a[i * n + j] = entry(i, j);
            }
        }
        if self.a[..n * n].iter().any(|x| !x.is_finite()) {
            return false;
        }
        for (i, p) in self.piv[..n].iter_mut().enumerate() {
            *p = i;
        }
        let a = &mut self.a[..n * n];
        for k in 0..n {
            let mut best = k;
            for i in k + 1..n {
                if a[i * n + k].abs() > a[best * n + k].abs() {
                    best = i;
                }
            }
            let pivot = a[best * n + k];
            if pivot == 0.0 {
                return false;
            }
            if best != k {
                for j in 0..n {
                    a.swap(k * n + j, best * n + j);
                }
                self.piv.swap(k, best);
            }
            for i in k + 1..n {
                let l = a[i * n + k] / pivot;
                a[i * n + k] = l;
                if l != 0.0 {
                    for j in k + 1..n {
                        a[i * n + j] -= l * a[k * n + j];
                    }
                }
            }
        }
        for (i, d) in self.inv_diag[..n].iter_mut().enumerate() {
            *d = 1.0 / a[i * n + i];
        }
        a.iter().all(|x| x.is_finite()) && self.inv_diag[..n].iter().all(|x| x.is_finite())
    }

    /// Solves `A x = b` in place (`x` holds `b` on entry), with `tmp` as scratch (length `n`).
    ///
    /// The forward substitution reads `b` through the permutation into `tmp`; the backward
    /// one writes `x` directly (rows from the last, each reading only entries already
    /// solved), so nothing is copied back: on the small systems of stiff models a
    /// `copy_from_slice` is a `memmove` call that cost as much as the arithmetic.
    pub fn solve(&self, x: &mut [f64], tmp: &mut [f64]) {
        let n = self.n;
        small_n!(n => self.solve_n(n, x, tmp))
    }

    #[inline(always)]
    fn solve_n(&self, n: usize, x: &mut [f64], tmp: &mut [f64]) {
        let (a, x, tmp) = (&self.a[..n * n], &mut x[..n], &mut tmp[..n]);
        for i in 0..n {
            let mut s = x[self.piv[i]];
            for (l, y) in a[i * n..i * n + i].iter().zip(&tmp[..i]) {
                s -= l * y;
            }
            tmp[i] = s;
        }
        for i in (0..n).rev() {
            let mut s = tmp[i];
            for (u, xj) in a[i * n + i + 1..(i + 1) * n].iter().zip(&x[i + 1..]) {
                s -= u * xj;
            }
            x[i] = s * self.inv_diag[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the exact solution of systems built from a known `x` (needing row swaps, badly
    /// scaled like `I − hγJ` of a stiff problem): residual at rounding level.
    #[test]
    fn solves_pivoted_and_badly_scaled_systems() {
        let cases: [&[f64]; 3] = [
            &[0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0],
            &[
                1.0 + 4e-3,
                -1e2,
                -3e4,
                -4e-3,
                1.0 + 6e5,
                3e4,
                0.0,
                -6e5,
                1.0,
            ],
            &[4.0, -2.0, 1.0, 3.0, 6.0, -4.0, 2.0, 1.0, 8.0],
        ];
        let want = [1.0, -2.0, 0.5];
        for m in cases {
            let mut lu = Lu::new(3);
            assert!(lu.factor(|i, j| m[i * 3 + j]));
            let mut x: Vec<f64> = (0..3)
                .map(|i| (0..3).map(|j| m[i * 3 + j] * want[j]).sum())
                .collect();
            let mut tmp = [0.0; 3];
            lu.solve(&mut x, &mut tmp);
            for (a, b) in x.iter().zip(want) {
                assert!((a - b).abs() < 1e-9, "{x:?} vs {want:?}");
            }
        }
    }

    /// Every size through `small_n!`: the constant-size arms (1 to 4) and the run-time one,
    /// on matrices that need row swaps (small diagonal, large off-diagonal entries).
    #[test]
    fn solves_every_size() {
        for n in 1..=7 {
            let m = |i: usize, j: usize| {
                if i == j {
                    0.01 * (i + 1) as f64
                } else {
                    ((3 * i + 7 * j) % 11) as f64 - 4.5
                }
            };
            let want: Vec<f64> = (0..n).map(|i| 1.0 - 0.3 * i as f64).collect();
            let mut lu = Lu::new(n);
            assert!(lu.factor(m), "n = {n}");
            let mut x: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| m(i, j) * want[j]).sum())
                .collect();
            let mut tmp = vec![0.0; n];
            lu.solve(&mut x, &mut tmp);
            for (a, b) in x.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "n = {n}: {x:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn singular_and_non_finite_matrices_fail() {
        let mut lu = Lu::new(2);
        assert!(!lu.factor(|i, _| (i + 1) as f64));
        assert!(!lu.factor(|i, j| if i == j { f64::NAN } else { 0.0 }));
        assert!(!lu.factor(|_, _| 0.0));
        assert!(lu.factor(|i, j| if i == j { 2.0 } else { 1.0 }));
    }
}
