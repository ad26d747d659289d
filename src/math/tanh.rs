//! glassbox's own `tanh`: the one definition the interpreter and constant folding (through
//! `Unary::apply`) and the JIT's runtime (`glassbox_tanh`, `glassbox_tanh_n`) all use, so
//! kernels and `ir::eval` agree bit for bit.
//!
//! Why not libm's: a network field calls `tanh` once per hidden unit, and libm's is a scalar
//! call with branches on the range. This one is branch-free (both ranges computed, one
//! selected), so a loop over a slice ([`tanh_into`]) vectorises (two, four or eight lanes) and
//! gives every element the bits of the scalar version: only IEEE-exact operations (`+ − × ÷`,
//! `abs`, `copysign`, integer bit moves), no FMA (Rust never contracts `a * b + c`).
//!
//! Accuracy: at most 1.1 ulp from the exact value (measured against mpmath at 200 bits on
//! `tests/data/tanh_reference.csv`; glibc's `tanh` is within 2 ulp). `tanh(±0) = ±0`,
//! `tanh(±∞) = ±1`, NaN stays NaN.

/// Cephes' rational for `|x| < 0.625`: `tanh x = x + x·z·P(z)/Q(z)`, `z = x²`.
const P: [f64; 3] = [-0.9643991794250523, -99.28772310019185, -1614.6876844170845];
const Q: [f64; 3] = [112.81167849163293, 2235.4883906010045, 4844.063053251255];
const SMALL: f64 = 0.625;
/// Above this `tanh` rounds to 1 (it does from 19.1 on); clamping keeps `e^{2|x|}` finite.
const BIG: f64 = 22.0;
/// `ln 2` split so that `k·LN2_HI` is exact for the `k ≤ 64` used here (Cody–Waite).
const LN2_HI: f64 = 0.6931471803691238;
const LN2_LO: f64 = 1.9082149292705877e-10;
/// `1.5·2^52`: adding it rounds to an integer, which then sits in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// `1/n!` for n = 0..=13: Taylor's `e^r` on `|r| ≤ ln2/2` (the remainder `r^14/14!` is below
/// 5e-18, a twentieth of an ulp).
const INV_FACT: [f64; 14] = [
    1.0,
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// `tanh x` for one `f64` (see the module comment).
///
/// Both forms are `base + num/den` with one division: below 0.625 Cephes' rational
/// (`|x| + |x|·P/Q`), above it `1 − 2/(e^{2|x|} + 1)` with `e^y = 2^k·e^r`, `k = round(y/ln2)`.
/// The sign is copied on last (so `−0 → −0`).
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    let a = x.abs();
    let z = a * a;
    let p = ((P[0] * z + P[1]) * z + P[2]) * z;
    let q = ((z + Q[0]) * z + Q[1]) * z + Q[2];
    // NaN fails the comparison and stays NaN through the exponential.
    let y = 2.0 * if a > BIG { BIG } else { a };
    let shifted = y * std::f64::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    // e^r − 1 by Estrin's scheme (pairs, then powers r², r⁴): a dependency chain of 5
    // multiply-adds instead of Horner's 13, which bounds the vectorised loop's speed.
    let c = &INV_FACT;
    let r2 = r * r;
    let r4 = r2 * r2;
    let q0 = r + r2 * (c[2] + r * c[3]);
    let q1 = (c[4] + r * c[5]) + r2 * (c[6] + r * c[7]);
    let q2 = (c[8] + r * c[9]) + r2 * (c[10] + r * c[11]);
    let q3 = c[12] + r * c[13];
    let em1 = q0 + r4 * (q1 + r4 * (q2 + r4 * q3));
    // 2^k from k's integer bits (0 ≤ k ≤ 64 wherever this branch is taken).
    let k_bits = shifted.to_bits().wrapping_sub(SHIFT.to_bits());
    let two_k = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    let (base, num, den) = if a < SMALL {
        (a, a * p, q)
    } else {
        // e^y + 1 = (2^k + 1) + 2^k·(e^r − 1): scaling by 2^k is exact and so is 2^k + 1
        // (k ≤ 52; beyond it tanh rounds to 1 anyway), so two roundings.
        (1.0, -2.0, (two_k + 1.0) + two_k * em1)
    };
    (base + num / den).copysign(x)
}

/// `out[i] = tanh(x[i])`, the same bits as [`tanh`] per element. Inlined into callers compiled
/// with wider vector units (the JIT runtime's AVX2 and AVX-512 versions), where it vectorises.
#[inline(always)]
pub fn tanh_into(x: &[f64], out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = tanh(v);
    }
}
