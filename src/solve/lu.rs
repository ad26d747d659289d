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

pub(crate) struct Lu {
    n: usize,
    /// Row-major; after `factor`: `U` on and above the diagonal, `L`'s multipliers below
    /// (unit diagonal implied).
    a: Vec<f64>,
    /// Row `i` of the factorised matrix was row `piv[i]` of the input.
    piv: Vec<usize>,
}

impl Lu {
    pub fn new(n: usize) -> Lu {
        Lu {
            n,
            a: vec![0.0; n * n],
            piv: (0..n).collect(),
        }
    }

    /// Factorises the matrix with entries `entry(i, j)`; `false` when it is singular or has
    /// a non-finite entry.
    pub fn factor(&mut self, mut entry: impl FnMut(usize, usize) -> f64) -> bool {
        let n = self.n;
        for i in 0..n {
            for j in 0..n {
                self.a[i * n + j] = entry(i, j);
            }
        }
        if self.a.iter().any(|x| !x.is_finite()) {
            return false;
        }
        for (i, p) in self.piv.iter_mut().enumerate() {
            *p = i;
        }
        let a = &mut self.a;
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
        a.iter().all(|x| x.is_finite())
    }

    /// Solves `A x = b` in place (`x` holds `b` on entry), with `tmp` as scratch (length `n`).
    pub fn solve(&self, x: &mut [f64], tmp: &mut [f64]) {
        let n = self.n;
        let a = &self.a;
        for i in 0..n {
            tmp[i] = x[self.piv[i]];
        }
        for i in 0..n {
            let mut s = tmp[i];
            for j in 0..i {
                s -= a[i * n + j] * tmp[j];
            }
            tmp[i] = s;
        }
        for i in (0..n).rev() {
            let mut s = tmp[i];
            for j in i + 1..n {
                s -= a[i * n + j] * tmp[j];
            }
            tmp[i] = s / a[i * n + i];
        }
        x.copy_from_slice(&tmp[..n]);
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

    #[test]
    fn singular_and_non_finite_matrices_fail() {
        let mut lu = Lu::new(2);
        assert!(!lu.factor(|i, _| (i + 1) as f64));
        assert!(!lu.factor(|i, j| if i == j { f64::NAN } else { 0.0 }));
        assert!(!lu.factor(|_, _| 0.0));
        assert!(lu.factor(|i, j| if i == j { 2.0 } else { 1.0 }));
    }
}
