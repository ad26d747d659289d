//! The Rodas family of stiffly accurate Rosenbrock methods, as data run by one stepper:
//! Rodas4 (order 4(3)) and Rodas5P (order 5(4)).
//!
//! Both are written in Hairer–Wanner's transformed variables (`RODAS`): with
//! `W = I − hγJ`, stage `i` solves
//! `W k_i = hγ (f(t + c_i h, g_i) + h d_i ∂f/∂t + Σ_{j<i} (C_ij / h) k_j)`, where
//! `g_i = u + Σ_{j<i} a_ij k_j` for the stages given by rows of `a`, and every later stage
//! starts from the previous one, `g_i = g_{i−1} + k_{i−1}` at `c = 1` (the stiffly accurate
//! tail). The step is `u_{n+1} = g_s + k_s`, so the last stage `k_s` is the difference to the
//! embedded solution `g_s`: it is the error estimate.
//!
//! Dense output from `m` vectors `D_l = Σ_j H_lj k_j` (`m` = rows of `H`):
//! `u(θ) = u_n + θ (u_{n+1} − u_n + (1 − θ)(D_1 + θ (D_2 + θ D_3)))`.
//!
//! - **Rodas4**: Hairer & Wanner, `RODAS` coefficient set 1 (checked against the Fortran
//!   `ROCOE`), γ = 1/4, 6 stages (5 new evaluations per step), dense output of order 3.
//! - **Rodas5P**: Steinebach (2023), "Construction of Rosenbrock–Wanner method Rodas5P and
//!   numerical benchmarks within the Julia Differential Equations package", BIT 63:27;
//!   γ = 0.2119…, 8 stages (7 new evaluations), dense output of order 4. Coefficients as
//!   OrdinaryDiffEq's `Rodas5PTableau` prints them (17 digits), checked here by the order
//!   tests in `tests/suite/stiff.rs`.
//!
//! Invariant: `stages = cc.len() + 1`, `a.len() + 1 ≤ stages`, `c.len() = a.len()`, and the
//! last row of `a` is at `c = 1` (the tail's stages share it).

// Stage formulas are written index by index, as the papers write them.
#![allow(clippy::needless_range_loop)]

use super::field::VectorField;
use super::lu::{Lu, small_n};

/// The most stages of a Rodas tableau (Rodas5P), for stack-sized scratch.
pub(crate) const MAX_STAGES: usize = 8;
/// The most dense-output vectors (Rodas5P).
pub(crate) const MAX_DENSE: usize = 3;

#[derive(Debug)]
pub struct RodasTableau {
    pub gamma: f64,
    /// `a[i]` gives stage `i + 2`'s argument from `k_1 … k_{i+1}`.
    pub a: &'static [&'static [f64]],
    /// Abscissae of the stages given by `a` (stage 1 is at `c = 0`).
    pub c: &'static [f64],
    /// `d_i` of the `∂f/∂t` term, stages 1, 2, …; missing entries are 0.
    pub d: &'static [f64],
    /// `cc[i]` are stage `i + 2`'s `C_ij` over `k_1 … k_{i+1}`.
    pub cc: &'static [&'static [f64]],
    /// Dense-output weights, one row per vector `D_l`.
    pub h: &'static [&'static [f64]],
}

impl RodasTableau {
    pub fn stages(&self) -> usize {
        self.cc.len() + 1
    }
}

pub const RODAS4_TAB: RodasTableau = RodasTableau {
    gamma: 0.25,
    a: &[
        &[1.544],
        &[0.946_678_528_081_582_6, 0.255_701_169_898_328_4],
        &[
            3.314_825_187_068_521,
            2.896_124_015_972_201,
            0.998_641_913_997_781_7,
        ],
        &[
            1.221_224_509_226_641,
            6.019_134_481_288_629,
            12.537_083_329_320_87,
            -0.687_886_036_105_895,
        ],
    ],
    c: &[0.386, 0.21, 0.63, 1.0],
    d: &[0.25, -0.1043, 0.1035, -0.036_200_000_000_000_23],
    cc: &[
        &[-5.6688],
        &[-2.430_093_356_833_875, -0.206_359_915_709_191_5],
        &[
            -0.107_352_905_815_137_5,
            -9.594_562_251_023_355,
            -20.470_286_148_096_16,
        ],
        &[
            7.496_443_313_967_647,
            -10.246_804_314_643_52,
            -33.999_903_528_199_05,
            11.708_908_932_061_6,
        ],
        &[
            8.083_246_795_921_522,
            -7.981_132_988_064_893,
            -31.521_594_328_743_71,
            16.319_305_431_231_36,
            -6.058_818_238_834_054,
        ],
    ],
    h: &[
        &[
            10.126_235_083_445_86,
            -7.487_995_877_610_167,
            -34.800_918_615_557_47,
            -7.992_771_707_568_823,
            1.025_137_723_295_662,
        ],
        &[
            -0.676_280_339_280_125_3,
            6.087_714_651_680_015,
            16.430_843_208_924_78,
            24.767_225_114_183_86,
            -6.594_389_125_716_872,
        ],
    ],
};

pub const RODAS5P_TAB: RodasTableau = RodasTableau {
    gamma: 0.211_937_563_194_290_14,
    a: &[
        &[3.0],
        &[2.849_394_379_747_939, 0.458_422_422_044_639_23],
        &[
            -6.954_028_509_809_101,
            2.489_845_061_869_568,
            -10.358_996_098_473_584,
        ],
        &[
            2.802_998_627_562_896_4,
            0.507_246_473_622_820_6,
            -0.398_831_254_177_052_4,
            -0.047_211_872_304_046_41,
        ],
        &[
            -7.502_846_399_306_121,
            2.561_846_144_803_919,
            -11.627_539_656_261_098,
            -0.182_687_676_599_422_56,
            0.030_198_172_008_377_946,
        ],
    ],
    c: &[
        0.635_812_689_582_870_4,
        0.409_579_839_339_753_5,
        0.976_930_672_506_071_6,
        0.428_840_360_955_866_4,
        1.0,
    ],
    d: &[
        0.211_937_563_194_290_14,
        -0.423_875_126_388_580_27,
        -0.338_462_712_623_592_4,
        1.804_645_287_288_273_4,
        2.325_825_639_765_069,
    ],
    cc: &[
        &[-14.155_112_264_123_755],
        &[-17.972_960_358_859_52, -2.859_693_295_451_294],
        &[
            147.121_502_757_117_16,
            -1.412_214_027_182_13,
            71.689_402_513_023_58,
        ],
        &[
            165.435_170_248_716_76,
            -0.459_282_345_649_112_6,
            42.909_383_369_586_03,
            -5.961_986_721_573_306,
        ],
        &[
            24.854_864_614_690_072,
            -3.000_922_700_283_218_6,
            47.493_111_002_076_8,
            5.581_419_782_155_812_5,
            -0.661_069_182_524_947_1,
        ],
        &[
            30.912_732_140_285_99,
            -3.120_824_334_993_797_4,
            77.799_546_460_708_92,
            34.286_460_282_947_83,
            -19.097_331_116_725_623,
            -28.087_943_162_872_662,
        ],
        &[
            37.802_771_233_905_63,
            -3.257_196_902_907_227_6,
            112.269_188_494_963_27,
            66.934_723_124_404_7,
            -40.066_189_370_910_02,
            -54.667_802_628_779_68,
            -9.488_616_523_096_27,
        ],
    ],
    h: &[
        &[
            25.948_786_856_663_858,
            -2.557_972_484_584_623_5,
            10.433_815_404_888_879,
            -2.367_925_102_268_520_4,
            0.524_948_541_321_073,
            1.124_108_831_045_040_4,
            0.427_287_619_443_187_4,
            -0.172_022_210_701_554_93,
        ],
        &[
            -9.915_688_506_951_71,
            -0.968_994_459_411_515_4,
            3.043_803_724_297_845_3,
            -24.495_224_566_215_796,
            20.176_138_334_709_044,
            15.980_663_614_246_51,
            -6.789_040_303_419_874,
            -6.710_236_069_923_372,
        ],
        &[
            11.419_903_575_922_262,
            2.887_964_514_613_699_4,
            72.921_379_959_960_29,
            80.125_118_346_226_43,
            -52.072_871_366_152_654,
            -59.789_936_252_667_29,
            -0.155_826_842_827_519_13,
            4.883_087_185_713_722,
        ],
    ],
};

/// The buffers one Rodas attempt reads and writes (all of `RosWork`'s that it needs).
pub(crate) struct RodasBufs<'a> {
    pub lu: &'a Lu,
    pub lu_tmp: &'a mut [f64],
    pub dfdt: &'a [f64],
    /// Stages, stage-major, at least `stages · n`.
    pub k: &'a mut [f64],
    pub g: &'a mut [f64],
    pub fk: &'a mut [f64],
    /// Left holding the error vector `k_s`.
    pub err: &'a mut [f64],
    pub u1: &'a mut [f64],
    /// The dense vectors, `h.len() · n`.
    pub dense: &'a mut [f64],
}

/// The stages of one attempt of size `h` from `(t, u)`, `f0 = f(t, u)`, with `W` already
/// factorised in `b.lu`. Returns the evaluations spent.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rodas_stages<F: VectorField + ?Sized>(
    tab: &RodasTableau,
    f: &mut F,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    b: RodasBufs,
) -> u32 {
    let n = u.len();
    small_n!(n => rodas_stages_n(tab, f, t, u, h, f0, b, n))
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rodas_stages_n<F: VectorField + ?Sized>(
    tab: &RodasTableau,
    f: &mut F,
    t: f64,
    u: &[f64],
    h: f64,
    f0: &[f64],
    b: RodasBufs,
    n: usize,
) -> u32 {
    let s_count = tab.stages();
    let hg = h * tab.gamma;
    let mut nfe = 0;
    for s in 0..s_count {
        // Stage argument and its derivative (written without `copy_from_slice`: on a small
        // system each is a `memmove` call costing as much as the arithmetic).
        if s > 0 {
            if let Some(row) = tab.a.get(s - 1) {
                for i in 0..n {
                    let mut x = u[i];
                    for (j, aj) in row.iter().enumerate() {
                        x += aj * b.k[j * n + i];
                    }
                    b.g[i] = x;
                }
            } else {
                // The stiffly accurate tail: from the previous stage's argument plus its k.
                for (x, kp) in b.g.iter_mut().zip(&b.k[(s - 1) * n..s * n]) {
                    *x += kp;
                }
            }
            let c = tab.c.get(s - 1).copied().unwrap_or(1.0);
            f.eval(t + c * h, b.g, b.fk);
            nfe += 1;
        }
        let fs: &[f64] = if s == 0 { f0 } else { &*b.fk };
        // rhs = hγ (F + h d_s f_t + Σ_j C_sj/h k_j); C_sj/h once per stage.
        let ds = h * tab.d.get(s).copied().unwrap_or(0.0);
        let cs = if s > 0 { tab.cc[s - 1] } else { &[] };
        let mut ch = [0.0; MAX_STAGES];
        for (q, c) in ch.iter_mut().zip(cs) {
            *q = c / h;
        }
        let (done, rest) = b.k.split_at_mut(s * n);
        let ks = &mut rest[..n];
        for i in 0..n {
            let mut acc = fs[i] + ds * b.dfdt[i];
            for (j, q) in ch[..cs.len()].iter().enumerate() {
                acc += q * done[j * n + i];
            }
            ks[i] = hg * acc;
        }
        b.lu.solve(ks, b.lu_tmp);
    }
    let last = (s_count - 1) * n;
    for i in 0..n {
        let ks = b.k[last + i];
        b.u1[i] = b.g[i] + ks;
        b.err[i] = ks;
    }
    for (l, row) in tab.h.iter().enumerate() {
        let d = &mut b.dense[l * n..(l + 1) * n];
        d.fill(0.0);
        for (j, hj) in row.iter().enumerate() {
            for (x, kj) in d.iter_mut().zip(&b.k[j * n..(j + 1) * n]) {
                *x += hj * kj;
            }
        }
    }
    nfe
}

/// `u(t_n + θh)` from `u_n`, `u_{n+1}` and the step's dense vectors `d` (`h.len() · n`).
pub(crate) fn rodas_interpolate(
    tab: &RodasTableau,
    u0: &[f64],
    u1: &[f64],
    d: &[f64],
    theta: f64,
    out: &mut [f64],
) {
    let n = u0.len();
    let m = tab.h.len();
    for i in 0..n {
        // Horner from the highest vector: D_1 + θ(D_2 + θ D_3).
        let mut p = 0.0;
        for l in (0..m).rev() {
            p = d[l * n + i] + theta * p;
        }
        out[i] = u0[i] + theta * (u1[i] - u0[i] + (1.0 - theta) * p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes the stepper relies on, and `d_1 = γ` (the first stage's `∂f/∂t` weight is
    /// the diagonal). The coefficients themselves are checked by the measured orders in
    /// `tests/suite/stiff.rs`: in this transformed form the order conditions are not linear in them.
    #[test]
    fn shapes() {
        for (tab, stages, dense) in [(&RODAS4_TAB, 6, 2), (&RODAS5P_TAB, 8, 3)] {
            assert_eq!(tab.stages(), stages);
            assert!(stages <= MAX_STAGES && tab.h.len() == dense && dense <= MAX_DENSE);
            assert_eq!(tab.c.len(), tab.a.len());
            assert_eq!(tab.c.last(), Some(&1.0));
            assert!(tab.d.len() <= tab.a.len() + 1);
            assert_eq!(tab.d[0], tab.gamma);
            for (i, row) in tab.a.iter().enumerate() {
                assert_eq!(row.len(), i + 1);
            }
            for (i, row) in tab.cc.iter().enumerate() {
                assert_eq!(row.len(), i + 1);
            }
            for row in tab.h {
                assert!(row.len() <= stages);
            }
        }
    }
}
