//! Mat-vecs, transposed mat-vecs and outer products on slices: what the kernels call for the
//! larger tensor products (`codegen.rs` decides which, by size) instead of scalar code.
//!
//! Every output element adds its terms exactly as `ir::eval` does — left to right from the
//! first term, a separate multiply and add (no FMA), an empty sum being −0 — so a kernel that
//! calls these equals the interpreter bit for bit. The speed comes from working on several
//! *outputs* at once (independent sums side by side in vector registers), never from
//! reassociating one sum. The functions are written so that LLVM vectorises them across
//! outputs, and inlined into the AVX2 / AVX-512 versions `kernel.rs` picks at run time.

#![deny(unsafe_code)]

/// Rows summed side by side in [`matvec`]: two AVX-512 vectors, or four AVX2 ones.
const ROWS: usize = 16;

/// Columns accumulated side by side in [`matvec_t`].
const COLS: usize = 16;

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
        _ => matvec_any(w, x, out),
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

#[inline(always)]
fn matvec_any(w: &[f64], x: &[f64], out: &mut [f64]) {
    let n = x.len();
    let done = out.len() - out.len() % ROWS;
    for (b, block) in out.chunks_exact_mut(ROWS).enumerate() {
        let w = &w[b * ROWS * n..(b + 1) * ROWS * n];
        let mut acc = [0.0; ROWS];
        for (k, a) in acc.iter_mut().enumerate() {
            *a = w[k * n] * x[0];
        }
        for (j, &xj) in x.iter().enumerate().skip(1) {
            for (k, a) in acc.iter_mut().enumerate() {
                *a += w[k * n + j] * xj;
            }
        }
        block.copy_from_slice(&acc);
    }
    for (o, row) in out[done..].iter_mut().zip(w[done * n..].chunks_exact(n)) {
        let mut s = row[0] * x[0];
        for (p, q) in row.iter().zip(x).skip(1) {
            s += p * q;
        }
        *o = s;
    }
}

/// `out[c] = Σ_r w[r·n + c]·x[r]` (`wᵀ·x`) for `w` of `x.len()` rows and `n = out.len()`
/// columns: the rows of `w` are contiguous runs of outputs, so this vectorises directly.
#[inline(always)]
pub fn matvec_t(w: &[f64], x: &[f64], out: &mut [f64]) {
    let n = out.len();
    let Some((&x0, rest)) = x.split_first() else {
        out.fill(-0.0);
        return;
    };
    let mut c = 0;
    // Accumulators stay in registers across the rows, block of columns by block.
    while c + COLS <= n {
        let mut acc = [0.0; COLS];
        for (a, &p) in acc.iter_mut().zip(&w[c..c + COLS]) {
            *a = p * x0;
        }
        for (r, &xr) in rest.iter().enumerate() {
            let row = &w[(r + 1) * n + c..(r + 1) * n + c + COLS];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += p * xr;
            }
        }
        out[c..c + COLS].copy_from_slice(&acc);
        c += COLS;
    }
    if c < n {
        let tail = &mut out[c..];
        for (o, &p) in tail.iter_mut().zip(&w[c..n]) {
            *o = p * x0;
        }
        for (r, &xr) in rest.iter().enumerate() {
            let row = &w[(r + 1) * n + c..(r + 2) * n];
            for (o, &p) in tail.iter_mut().zip(row) {
                *o += p * xr;
            }
        }
    }
}

/// `out[i·n + j] = a[i]·b[j]` for `n = b.len()`.
#[inline(always)]
pub fn outer(a: &[f64], b: &[f64], out: &mut [f64]) {
    if b.is_empty() {
        return;
    }
    for (row, &p) in out.chunks_exact_mut(b.len()).zip(a) {
        for (o, &q) in row.iter_mut().zip(b) {
            *o = p * q;
        }
    }
}
