//! The runtime symbols kernels call on whole tensors, through raw pointers: the GEMM of batched
//! kernels (`glassbox_dgemm`, `matrixmultiply`), the tensor `tanh` (`glassbox_tanh_n`) and the
//! dense products (`glassbox_matvec`, `glassbox_matvec_t`, `glassbox_outer`, on the safe slice
//! loops of `dense.rs`), with their CPU-feature dispatch (AVX2 / AVX-512 versions of the same
//! safe code, the same bits whatever the width).
//!
//! `unsafe` here (allowed in `jit/mod.rs`): each symbol turns the pointers the kernel passes
//! into slices, under the contract in its `# Safety` section, which the generated code keeps
//! (it passes node addresses inside its buffers and a fresh scratch region); the wider versions
//! are called only after the CPU check. The scalar math symbols are in `runtime.rs`.

use super::dense;
use crate::math;

/// `C[m×n] = A[m×k]·B[k×n]` with element strides (rows, columns) for each matrix.
pub(super) type GemmFn = extern "C" fn(
    usize,
    usize,
    usize,
    *const f64,
    isize,
    isize,
    *const f64,
    isize,
    isize,
    *mut f64,
    isize,
    isize,
);

/// The GEMM runtime symbol batched kernels call (`matrixmultiply`, single-threaded), exported
/// unmangled for the batched kernels linked into standalone binaries.
#[allow(clippy::too_many_arguments)]
// SAFETY: the `glassbox_` prefix keeps the name clear of the C library's and every other
// crate's symbols, and the crate defines it once, so the unmangled name is unique in a link.
#[unsafe(no_mangle)]
pub(super) extern "C" fn glassbox_dgemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    csb: isize,
    c: *mut f64,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: only batched kernels call this symbol, with matrices inside the buffers that
    // `BatchKernel::call` checked (batched arguments: `batch` rows of their length) or sized
    // (its buffer area: `batch` rows of each buffered node; the sums): `batch.rs` derives every
    // extent from the same plan the Rust side sized them from. `C` never overlaps `A` or `B`
    // (a GEMM result is a buffer or sums region of its own).
    unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
}

/// `C[m×n] += A[m×k]·B[k×n]`: the GEMM of a summed outer product (`Σ_b v_b ⊗ x_b`), which adds
/// into the sums so that a caller can accumulate one gradient over many calls
/// (`BatchKernel::call_add`). On sums cleared to zero it gives [`glassbox_dgemm`]'s bits
/// (`0 + x = x`, and `alpha = 1` multiplies exactly). Exported unmangled as `glassbox_dgemm`.
#[allow(clippy::too_many_arguments)]
// SAFETY: as for `glassbox_dgemm`: a unique name in a link.
#[unsafe(no_mangle)]
pub(super) extern "C" fn glassbox_dgemm_add(
    m: usize,
    k: usize,
    n: usize,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    csb: isize,
    c: *mut f64,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: as for `glassbox_dgemm`; `C` is a region of the sums, which `BatchKernel::call`
    // and `call_add` size to the plan's `sums_len` and which holds initialised values.
    unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 1.0, c, rsc, csc) }
}

pub(super) type SliceFn = unsafe extern "C" fn(*const f64, *mut f64, usize);

/// `out[i] = tanh(x[i])` for `i < n`: the slice symbol kernels call for a tensor `tanh`
/// (`runtime::TANH_N`), exported unmangled like the scalar symbols for standalone binaries.
///
/// # Safety
/// `x` must be valid for reading and `out` for writing `n` `f64`s, and they must not overlap:
/// the kernels pass a node's address (an argument or scratch) and a fresh scratch region.
// SAFETY: the `glassbox_` prefix keeps the name clear of the C library's and every other
// crate's symbols, and the crate defines it once, so the unmangled name is unique in a link.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_tanh_n(x: *const f64, out: *mut f64, n: usize) {
    // SAFETY: the caller's contract above.
    let (x, out) = unsafe {
        (
            std::slice::from_raw_parts(x, n),
            std::slice::from_raw_parts_mut(out, n),
        )
    };
    tanh_slice(x, out);
}

/// `out[i] = math::tanh(x[i])`, with the widest vector unit the CPU has (the same bits
/// whatever the width: see `math::tanh`).
pub fn tanh_slice(x: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { tanh_avx512(x, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { tanh_avx2(x, out) };
        }
    }
    math::tanh_into(x, out)
}

/// `out[i] = op(x[i])` on slices.
pub type SliceMap = fn(&[f64], &mut [f64]);

/// Every version of [`tanh_slice`] this CPU can run, by name (for tests and benchmarks: each
/// must give the scalar bits).
pub fn tanh_slice_versions() -> Vec<(&'static str, SliceMap)> {
    let mut all: Vec<(&'static str, SliceMap)> = vec![("baseline", math::tanh_into as SliceMap)];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: listed only when the CPU has AVX2.
            all.push(("avx2", |x, out| unsafe { tanh_avx2(x, out) }));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: listed only when the CPU has AVX-512F.
            all.push(("avx512f", |x, out| unsafe { tanh_avx512(x, out) }));
        }
    }
    all
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(x: &[f64], out: &mut [f64]) {
    math::tanh_into(x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tanh_avx512(x: &[f64], out: &mut [f64]) {
    math::tanh_into(x, out)
}

/// [`dense::combination`] (a Runge–Kutta step's stage combinations, which the solvers form
/// per row and stage) with the widest vector unit the CPU has: the same bits whatever the
/// width (separate multiplies and adds, each component's terms in stage order).
pub fn stage_combination(c: dense::Combination, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { combination_avx512(c, w, k, n, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { combination_avx2(c, w, k, n, out) };
        }
    }
    dense::combination(c, w, k, n, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn combination_avx2(c: dense::Combination, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    dense::combination(c, w, k, n, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn combination_avx512(c: dense::Combination, w: &[f64], k: &[f64], n: usize, out: &mut [f64]) {
    dense::combination(c, w, k, n, out)
}

/// A dense product on slices (`dense.rs`): `(w, x, out)` for the mat-vecs, `(a, b, out)` for
/// the outer product.
pub type DenseFn = fn(&[f64], &[f64], &mut [f64]);

/// The dense products kernels call (`runtime::MATVEC`, `MATVEC_T`, `OUTER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dense {
    /// `out = w·x`, `w` row-major with `out.len()` rows.
    MatVec,
    /// `out = wᵀ·x`, `w` row-major with `x.len()` rows.
    MatVecT,
    /// `out = a ⊗ b`, row-major.
    Outer,
}

/// One dense product for every vector unit: the AVX2 and AVX-512 versions are the safe slice
/// function of `dense.rs` inlined where the wider unit is enabled.
macro_rules! dense_versions {
    ($($op:ident => $f:path, $avx2:ident, $avx512:ident;)*) => {
        $(#[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2(a: &[f64], b: &[f64], out: &mut [f64]) {
            $f(a, b, out)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn $avx512(a: &[f64], b: &[f64], out: &mut [f64]) {
            $f(a, b, out)
        })*

        /// Every version of `op` this CPU can run, by name (for tests and benchmarks: each must
        /// give the baseline's bits), the widest last.
        pub fn dense_versions(op: Dense) -> Vec<(&'static str, DenseFn)> {
            match op {
                $(Dense::$op => {
                    let mut all: Vec<(&'static str, DenseFn)> = vec![("baseline", $f as DenseFn)];
                    #[cfg(target_arch = "x86_64")]
                    {
                        if std::arch::is_x86_feature_detected!("avx2") {
                            // SAFETY: listed only when the CPU has AVX2.
                            all.push(("avx2", |a, b, out| unsafe { $avx2(a, b, out) }));
                        }
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            // SAFETY: listed only when the CPU has AVX-512F.
                            all.push(("avx512f", |a, b, out| unsafe { $avx512(a, b, out) }));
                        }
                    }
                    all
                })*
            }
        }

        /// `op` with the widest vector unit the CPU has (the same bits whatever the width).
        pub fn dense_product(op: Dense, a: &[f64], b: &[f64], out: &mut [f64]) {
            match op {
                $(Dense::$op => {
                    #[cfg(target_arch = "x86_64")]
                    {
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            // SAFETY: the CPU has AVX-512F (checked just above).
                            return unsafe { $avx512(a, b, out) };
                        }
                        if std::arch::is_x86_feature_detected!("avx2") {
                            // SAFETY: the CPU has AVX2 (checked just above).
                            return unsafe { $avx2(a, b, out) };
                        }
                    }
                    $f(a, b, out)
                })*
            }
        }
    };
}

dense_versions! {
    MatVec => dense::matvec, matvec_avx2, matvec_avx512;
    MatVecT => dense::matvec_t, matvec_t_avx2, matvec_t_avx512;
    Outer => dense::outer, outer_avx2, outer_avx512;
}

/// `fn(a, b, out, m, n)`: the dense symbols' C signature.
pub(super) type DenseSym = unsafe extern "C" fn(*const f64, *const f64, *mut f64, usize, usize);

/// [`dense_product`] on raw operands `(pointer, length)`, for the three exported symbols.
///
/// # Safety
/// Each pointer must be valid for its length (`out` for writing) and `out` must overlap
/// neither input.
unsafe fn dense_raw(
    op: Dense,
    (a, a_len): (*const f64, usize),
    (b, b_len): (*const f64, usize),
    (out, out_len): (*mut f64, usize),
) {
    // SAFETY: the caller's contract above.
    let (a, b, out) = unsafe {
        (
            std::slice::from_raw_parts(a, a_len),
            std::slice::from_raw_parts(b, b_len),
            std::slice::from_raw_parts_mut(out, out_len),
        )
    };
    dense_product(op, a, b, out);
}

/// `out[r] = Σ_j w[r·n + j]·x[j]`, `r < rows` (`runtime::MATVEC`).
///
/// # Safety
/// `w` must be valid for reading `rows·n` `f64`s, `x` for `n`, `out` for writing `rows`, and
/// `out` must overlap neither: the kernels pass node addresses (arguments or scratch) and a
/// fresh scratch region.
// SAFETY: unique in a link, as for `glassbox_tanh_n`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_matvec(
    w: *const f64,
    x: *const f64,
    out: *mut f64,
    rows: usize,
    n: usize,
) {
    // SAFETY: the caller's contract above.
    unsafe { dense_raw(Dense::MatVec, (w, rows * n), (x, n), (out, rows)) };
}

/// `out[c] = Σ_r w[r·n + c]·x[r]`, `c < n` (`runtime::MATVEC_T`).
///
/// # Safety
/// `w` must be valid for reading `rows·n` `f64`s, `x` for `rows`, `out` for writing `n`, and
/// `out` must overlap neither (as for [`glassbox_matvec`]).
// SAFETY: unique in a link, as for `glassbox_tanh_n`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_matvec_t(
    w: *const f64,
    x: *const f64,
    out: *mut f64,
    rows: usize,
    n: usize,
) {
    // SAFETY: the caller's contract above.
    unsafe { dense_raw(Dense::MatVecT, (w, rows * n), (x, rows), (out, n)) };
}

/// `out[i·n + j] = a[i]·b[j]`, `i < m`, `j < n` (`runtime::OUTER`).
///
/// # Safety
/// `a` must be valid for reading `m` `f64`s, `b` for `n`, `out` for writing `m·n`, and `out`
/// must overlap neither (as for [`glassbox_matvec`]).
// SAFETY: unique in a link, as for `glassbox_tanh_n`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn glassbox_outer(
    a: *const f64,
    b: *const f64,
    out: *mut f64,
    m: usize,
    n: usize,
) {
    // SAFETY: the caller's contract above.
    unsafe { dense_raw(Dense::Outer, (a, m), (b, n), (out, m * n)) };
}
