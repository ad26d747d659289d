//! Mat-vecs, transposed mat-vecs and outer products on slices: what the kernels call for the
//! larger tensor products (`codegen.rs` decides which, by size) instead of scalar code.
//!
//! Every output element adds its terms exactly as `ir::eval` does — left to right from the
//! first term, a separate multiply and add (no FMA), an empty sum being −0 — so a kernel that
//! calls these equals the interpreter bit for bit. The speed comes from working on several
//! *outputs* at once (independent sums side by side in vector registers), never from
//! reassociating one sum. The functions are written so that LLVM vectorises them across
//! outputs, and inlined into the AVX2 / AVX-512 versions `slice_runtime.rs` picks at run time.

/// `out[r] = Σ_j w[r·n + j]·x[j]` for `w` of `out.len()` rows and `n = x.len()` columns.
#[inline(always)]
pub fn matvec(w: &[f64], x: &[f64], out: &mut [f64]) {
    // A constant column count lets LLVM load the rows' elements as interleaved vectors.
    match x.len() {
        0 => out.fill(-0.0),
        1 => matvec_n::<1>(w, x, out),
        2 => matvec_n::<2>(w, x, out),
        3 => matvec_n::<3>(w, x, out),
        4 => matvec_n::<4>(w, x, out),
        _ => blocks(out.len(), |r, len| match len {
            8 => rows::<8>(w, x, out, r),
            4 => rows::<4>(w, x, out, r),
            2 => rows::<2>(w, x, out, r),
            _ => rows::<1>(w, x, out, r),
        }),
    }
}

/// Calls `block(start, len)` over `0..total` in blocks of 8, then 4, 2 and 1: wide blocks where
/// they fit, and no scalar remainder loop (whose outputs would be summed one after another).
#[inline(always)]
fn blocks(total: usize, mut block: impl FnMut(usize, usize)) {
    let mut at = 0;
    for len in [8, 4, 2, 1] {
        while total - at >= len {
            block(at, len);
            at += len;
        }
    }
}

#[inline(always)]
fn matvec_n<const N: usize>(w: &[f64], x: &[f64], out: &mut [f64]) {
    let Ok(x) = <&[f64; N]>::try_from(x) else {
        return;
    };
    for (o, row) in out.iter_mut().zip(w.chunks_exact(N)) {
        let mut s = row[0] * x[0];
        for j in 1..N {
            s += row[j] * x[j];
        }
        *o = s;
    }
}

/// Rows `r..r + B` of `w·x`: `B` independent sums side by side, in registers.
#[inline(always)]
fn rows<const B: usize>(w: &[f64], x: &[f64], out: &mut [f64], r: usize) {
    let n = x.len();
    let w = &w[r * n..(r + B) * n];
    let mut acc = [0.0; B];
    for (k, a) in acc.iter_mut().enumerate() {
        *a = w[k * n] * x[0];
    }
    for (j, &xj) in x.iter().enumerate().skip(1) {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += w[k * n + j] * xj;
        }
    }
    out[r..r + B].copy_from_slice(&acc);
}

/// `out[c] = Σ_r w[r·n + c]·x[r]` (`wᵀ·x`) for `w` of `x.len()` rows and `n = out.len()`
/// columns: the rows of `w` are contiguous runs of outputs, so this vectorises directly.
#[inline(always)]
pub fn matvec_t(w: &[f64], x: &[f64], out: &mut [f64]) {
    if x.is_empty() {
        out.fill(-0.0);
        return;
    }
    let n = out.len();
    let mut at = 0;
    while n - at >= 16 {
        cols::<16>(w, x, out, at);
        at += 16;
    }
    blocks(n - at, |c, len| match len {
        8 => cols::<8>(w, x, out, at + c),
        4 => cols::<4>(w, x, out, at + c),
        2 => cols::<2>(w, x, out, at + c),
        _ => cols::<1>(w, x, out, at + c),
    });
}

/// Columns `c..c + B` of `wᵀ·x`: `B` sums side by side in registers, row after row.
#[inline(always)]
fn cols<const B: usize>(w: &[f64], x: &[f64], out: &mut [f64], c: usize) {
    let n = out.len();
    let mut acc = [0.0; B];
    for (a, &p) in acc.iter_mut().zip(&w[c..c + B]) {
        *a = p * x[0];
    }
    for (r, &xr) in x.iter().enumerate().skip(1) {
        let row = &w[r * n + c..r * n + c + B];
        for (a, &p) in acc.iter_mut().zip(row) {
            *a += p * xr;
        }
    }
    out[c..c + B].copy_from_slice(&acc);
}

/// `out[i·n + j] = a[i]·b[j]` for `n = b.len()`.
#[inline(always)]
pub fn outer(a: &[f64], b: &[f64], out: &mut [f64]) {
    match b.len() {
        0 => {}
        1 => outer_n::<1>(a, b, out),
        2 => outer_n::<2>(a, b, out),
        3 => outer_n::<3>(a, b, out),
        4 => outer_n::<4>(a, b, out),
        n => {
            for (row, &p) in out.chunks_exact_mut(n).zip(a) {
                for (o, &q) in row.iter_mut().zip(b) {
                    *o = p * q;
                }
            }
        }
    }
}

#[inline(always)]
fn outer_n<const N: usize>(a: &[f64], b: &[f64], out: &mut [f64]) {
    let Ok(b) = <&[f64; N]>::try_from(b) else {
        return;
    };
    for (row, &p) in out.chunks_exact_mut(N).zip(a) {
        for j in 0..N {
            row[j] = p * b[j];
        }
    }
}

/// What [`combination`] starts each component's sum from: `u + Σ_j (h w_j) k_j` with zero
/// weights skipped (a Runge–Kutta stage argument or step end), or `start + Σ_j w_j k_j` over
/// every weight (an error estimate's sums).
#[derive(Clone, Copy, Debug)]
pub enum Combination<'a> {
    Stages { u: &'a [f64], h: f64 },
    Terms { start: f64 },
}

/// Components per block of [`combination`]: one AVX-512 register, two AVX2.
const LANES: usize = 8;

/// `out[m] = first(m) + Σ_j c_j k[j·n + m]` (see [`Combination`]) for `m < out.len()`, every
/// component adding its terms in stage order. The components go in blocks of [`LANES`] held
/// in registers, so the sums run side by side across components, never reassociated.
#[inline(always)]
pub fn combination(c: Combination, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    let len = match c {
        Combination::Stages { u, .. } => out.len().min(u.len()),
        Combination::Terms { .. } => out.len(),
    };
    let mut m = 0;
    while len - m >= LANES {
        combination_block::<LANES>(c, w, k, (n, m), &mut out[m..m + LANES]);
        m += LANES;
    }
    for m in m..len {
        combination_block::<1>(c, w, k, (n, m), &mut out[m..m + 1]);
    }
}

/// Components `m..m + B` of [`combination`].
#[inline(always)]
fn combination_block<const B: usize>(
    c: Combination,
    w: &[f64],
    k: &[f64],
    (n, m): (usize, usize),
    out: &mut [f64],
) {
    let mut acc = [0.0; B];
    match c {
        Combination::Stages { u, h } => {
            acc.copy_from_slice(&u[m..m + B]);
            for (j, wj) in w.iter().enumerate() {
                if *wj != 0.0 {
                    let hw = h * wj;
                    for (a, x) in acc.iter_mut().zip(&k[j * n + m..j * n + m + B]) {
                        *a += hw * x;
                    }
                }
            }
        }
        Combination::Terms { start } => {
            acc = [start; B];
            for (j, wj) in w.iter().enumerate() {
                for (a, x) in acc.iter_mut().zip(&k[j * n + m..j * n + m + B]) {
                    *a += wj * x;
                }
            }
        }
    }
    out[..B].copy_from_slice(&acc);
}
