//! Explicit Runge–Kutta methods as data: a Butcher tableau with its embedded weights, its
//! stiffness-estimate stage pair and its interpolant. One generic stepper (`step.rs`) runs them
//! all; a new explicit method is a new constant here plus its row in `registry.rs`, not a new
//! loop.
//!
//! Invariants (tested in this file): `a[i]` has exactly `i` entries and sums to `c[i]`;
//! `b` sums to 1; `btilde` (the difference of the two solutions' weights, `b − b̂` or `b̂ − b`:
//! only its magnitude is used) sums to 0; a free interpolant's weights equal `b` at θ = 1;
//! `stability_size` is where the stability polynomial leaves the unit disc on the negative real
//! axis.

use super::registry;

/// Dense output of one step.
#[derive(Clone, Copy, Debug)]
pub enum Interpolant {
    /// Cubic Hermite on `u_n, u_{n+1}, f(t_n, u_n), f(t_{n+1}, u_{n+1})`.
    Hermite,
    /// Free (no extra evaluation) interpolant `u(t_n + θh) = u_n + h Σ_i b_i(θ) k_i` with
    /// `b_i(θ) = Σ_p w[i][p] θ^(p+1)`.
    Free(&'static [[f64; 4]]),
}

#[derive(Debug)]
pub struct Tableau {
    pub name: &'static str,
    pub c: &'static [f64],
    /// Strictly lower-triangular rows: `a[i]` holds `a_i0 … a_i(i−1)`.
    pub a: &'static [&'static [f64]],
    pub b: &'static [f64],
    /// Weights of the local error estimate `ũ = h Σ btilde_i k_i`; `None` for fixed-step-only
    /// methods (no embedded pair).
    pub btilde: Option<&'static [f64]>,
    pub order: u32,
    pub embedded_order: Option<u32>,
    /// The last stage is evaluated at `(t + h, u_{n+1})`, so it is the next step's first stage.
    pub fsal: bool,
    /// Zero-based stages whose difference quotient ‖k_i − k_j‖ / ‖g_i − g_j‖ estimates the
    /// dominant eigenvalue's magnitude. Same abscissa where the tableau has such a pair (Tsit5,
    /// Dopri5: the last two; RK4: the two at c = 1/2); otherwise the closest pair there is.
    pub stiffness_pair: Option<(usize, usize)>,
    /// Length of the stability interval on the negative real axis.
    pub stability_size: f64,
    pub interpolant: Interpolant,
}

impl Tableau {
    pub fn stages(&self) -> usize {
        self.c.len()
    }

    pub fn is_adaptive(&self) -> bool {
        self.btilde.is_some()
    }
}

/// The explicit methods of the registry (`registry::METHODS`), in its order, default first.
pub const METHODS: [&Tableau; registry::EXPLICIT_COUNT] = registry::explicit_tableaux();

/// An explicit method's tableau by its model-file name.
pub fn tableau(name: &str) -> Option<&'static Tableau> {
    registry::Method::from_name(name).and_then(registry::Method::tableau)
}

/// Tsitouras (2011), "Runge–Kutta pairs of order 5(4) satisfying only the first column
/// simplifying assumption"; coefficients and interpolant as in OrdinaryDiffEq / diffrax.
pub const TSIT5: Tableau = Tableau {
    name: "tsit5",
    c: &[0.0, 0.161, 0.327, 0.9, 0.980_025_540_904_509_7, 1.0, 1.0],
    a: &[
        &[],
        &[0.161],
        &[-0.008_480_655_492_356_989, 0.335_480_655_492_357],
        &[
            2.897_153_057_105_493_5,
            -6.359_448_489_975_075,
            4.362_295_432_869_581_5,
        ],
        &[
            5.325_864_828_439_257,
            -11.748_883_564_062_828,
            7.495_539_342_889_836_5,
            -0.092_495_066_361_755_25,
        ],
        &[
            5.861_455_442_946_42,
            -12.920_969_317_847_11,
            8.159_367_898_576_159,
            -0.071_584_973_281_401,
            -0.028_269_050_394_068_383,
        ],
        &TSIT5_B6,
    ],
    b: &[
        TSIT5_B6[0],
        TSIT5_B6[1],
        TSIT5_B6[2],
        TSIT5_B6[3],
        TSIT5_B6[4],
        TSIT5_B6[5],
        0.0,
    ],
    btilde: Some(&[
        -0.001_780_011_052_225_777,
        -0.000_816_434_459_656_746_9,
        0.007_880_878_010_261_995,
        -0.144_711_007_173_262_9,
        0.582_357_165_452_555_2,
        -0.458_082_105_929_186_97,
        1.0 / 66.0,
    ]),
    order: 5,
    embedded_order: Some(4),
    fsal: true,
    stiffness_pair: Some((5, 6)),
    stability_size: 3.5068,
    interpolant: Interpolant::Free(&[
        [
            1.0,
            -2.763_706_197_274_826,
            2.913_255_461_821_912_6,
            -1.053_088_497_729_021_6,
        ],
        [0.0, 0.131_7, -0.223_4, 0.101_7],
        [
            0.0,
            3.930_296_236_894_751_6,
            -5.941_033_872_131_505,
            2.490_627_285_651_253,
        ],
        [
            0.0,
            -12.411_077_166_933_676,
            30.338_188_630_282_32,
            -16.548_102_889_244_902,
        ],
        [
            0.0,
            37.509_313_416_511_04,
            -88.178_904_894_766_4,
            47.379_521_962_819_28,
        ],
        [
            0.0,
            -27.896_526_289_197_286,
            65.091_894_674_793_66,
            -34.870_657_861_496_61,
        ],
        [0.0, 1.5, -4.0, 2.5],
    ]),
};

const TSIT5_B6: [f64; 6] = [
    0.096_460_766_818_065_23,
    0.01,
    0.479_889_650_414_499_6,
    1.379_008_574_103_742,
    -3.290_069_515_436_081,
    2.324_710_524_099_774,
];

const DOPRI5_B: [f64; 7] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
    0.0,
];

/// Shampine's (1986) dense output coefficients for Dopri5 (Hairer's `d1 … d7`).
const DOPRI5_D: [f64; 7] = [
    -12_715_105_075.0 / 11_282_082_432.0,
    0.0,
    87_487_479_700.0 / 32_700_410_799.0,
    -10_690_763_975.0 / 1_880_347_072.0,
    701_980_252_875.0 / 199_316_789_632.0,
    -1_453_857_185.0 / 822_651_844.0,
    69_997_945.0 / 29_380_423.0,
];

/// Hairer's dense output `u_n + θ(r2 + (1−θ)(r3 + θ(r4 + (1−θ) r5)))` with `r2 = hΣb k`,
/// `r3 = h k1 − r2`, `r4 = r2 − h k7 − r3`, `r5 = hΣd k`, expanded into weights on the stages.
const fn dopri5_interpolant() -> [[f64; 4]; 7] {
    let mut w = [[0.0; 4]; 7];
    let mut i = 0;
    while i < 7 {
        let first = if i == 0 { 1.0 } else { 0.0 };
        let last = if i == 6 { 1.0 } else { 0.0 };
        let (b, d) = (DOPRI5_B[i], DOPRI5_D[i]);
        w[i] = [
            first,
            3.0 * b - 2.0 * first - last + d,
            -2.0 * b + first + last - 2.0 * d,
            d,
        ];
        i += 1;
    }
    w
}

const DOPRI5_W: [[f64; 4]; 7] = dopri5_interpolant();

/// Dormand–Prince 5(4), as in Hairer–Nørsett–Wanner's `DOPRI5`.
pub const DOPRI5: Tableau = Tableau {
    name: "dopri5",
    c: &[0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0],
    a: &[
        &[],
        &[0.2],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
        ],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            DOPRI5_B[0],
            DOPRI5_B[1],
            DOPRI5_B[2],
            DOPRI5_B[3],
            DOPRI5_B[4],
            DOPRI5_B[5],
        ],
    ],
    b: &DOPRI5_B,
    btilde: Some(&[
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ]),
    order: 5,
    embedded_order: Some(4),
    fsal: true,
    stiffness_pair: Some((5, 6)),
    stability_size: 3.3066,
    interpolant: Interpolant::Free(&DOPRI5_W),
};

/// Bogacki–Shampine 3(2), FSAL.
pub const BS3: Tableau = Tableau {
    name: "bs3",
    c: &[0.0, 0.5, 0.75, 1.0],
    a: &[
        &[],
        &[0.5],
        &[0.0, 0.75],
        &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0],
    ],
    b: &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
    btilde: Some(&[-5.0 / 72.0, 1.0 / 12.0, 1.0 / 9.0, -1.0 / 8.0]),
    order: 3,
    embedded_order: Some(2),
    fsal: true,
    stiffness_pair: Some((2, 3)),
    stability_size: 2.5127,
    interpolant: Interpolant::Hermite,
};

/// Heun's method with Euler as the embedded solution, 2(1).
pub const HEUN_EULER: Tableau = Tableau {
    name: "heun_euler",
    c: &[0.0, 1.0],
    a: &[&[], &[1.0]],
    b: &[0.5, 0.5],
    btilde: Some(&[-0.5, 0.5]),
    order: 2,
    embedded_order: Some(1),
    fsal: false,
    stiffness_pair: Some((0, 1)),
    stability_size: 2.0,
    interpolant: Interpolant::Hermite,
};

pub const EULER: Tableau = Tableau {
    name: "euler",
    c: &[0.0],
    a: &[&[]],
    b: &[1.0],
    btilde: None,
    order: 1,
    embedded_order: None,
    fsal: false,
    stiffness_pair: None,
    stability_size: 2.0,
    interpolant: Interpolant::Hermite,
};

/// Explicit midpoint rule.
pub const MIDPOINT: Tableau = Tableau {
    name: "midpoint",
    c: &[0.0, 0.5],
    a: &[&[], &[0.5]],
    b: &[0.0, 1.0],
    btilde: None,
    order: 2,
    embedded_order: None,
    fsal: false,
    stiffness_pair: Some((0, 1)),
    stability_size: 2.0,
    interpolant: Interpolant::Hermite,
};

/// The classical fourth-order method.
pub const RK4: Tableau = Tableau {
    name: "rk4",
    c: &[0.0, 0.5, 0.5, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    btilde: None,
    order: 4,
    embedded_order: None,
    fsal: false,
    stiffness_pair: Some((1, 2)),
    stability_size: 2.785_3,
    interpolant: Interpolant::Hermite,
};

/// The stability function `R(z)` of an explicit tableau at a real `z`.
pub fn stability_function(tab: &Tableau, z: f64) -> f64 {
    let mut g = vec![0.0; tab.stages()];
    for (i, row) in tab.a.iter().enumerate() {
        g[i] = 1.0 + z * row.iter().zip(&g).map(|(a, gj)| a * gj).sum::<f64>();
    }
    1.0 + z * tab.b.iter().zip(&g).map(|(b, gi)| b * gi).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-14;

    #[test]
    fn tableaux_are_consistent() {
        for tab in METHODS {
            let s = tab.stages();
            assert_eq!(tab.a.len(), s, "{}", tab.name);
            assert_eq!(tab.b.len(), s, "{}", tab.name);
            for (i, row) in tab.a.iter().enumerate() {
                assert_eq!(row.len(), i, "{} row {i}", tab.name);
                let sum: f64 = row.iter().sum();
                assert!((sum - tab.c[i]).abs() < EPS, "{} row {i}: {sum}", tab.name);
            }
            let sum_b: f64 = tab.b.iter().sum();
            assert!((sum_b - 1.0).abs() < EPS, "{}: Σb = {sum_b}", tab.name);
            if let Some(bt) = tab.btilde {
                assert_eq!(bt.len(), s);
                let sum: f64 = bt.iter().sum();
                assert!(sum.abs() < EPS, "{}: Σbtilde = {sum}", tab.name);
            }
            assert_eq!(tab.btilde.is_some(), tab.embedded_order.is_some());
            if tab.fsal {
                // The last stage is evaluated at (t + h, u_{n+1}).
                assert_eq!(tab.c[s - 1], 1.0);
                assert_eq!(tab.b[s - 1], 0.0);
                for (a, b) in tab.a[s - 1].iter().zip(tab.b) {
                    assert_eq!(a, b, "{}", tab.name);
                }
            }
            if let Some((i, j)) = tab.stiffness_pair {
                assert!(i < j && j < s);
            }
            if let Interpolant::Free(w) = tab.interpolant {
                assert_eq!(w.len(), s);
                for (i, wi) in w.iter().enumerate() {
                    let at_one: f64 = wi.iter().sum();
                    assert!((at_one - tab.b[i]).abs() < 1e-12, "{} b_{i}(1)", tab.name);
                }
            }
        }
    }

    /// Order conditions up to order 4 (the trees of Hairer–Nørsett–Wanner I, Table II.2.1);
    /// order 5 is measured by the convergence tests.
    #[test]
    fn order_conditions_up_to_four() {
        for tab in METHODS {
            let s = tab.stages();
            let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
            let amul = |v: &[f64]| -> Vec<f64> { tab.a.iter().map(|row| dot(row, v)).collect() };
            let c = tab.c;
            let c2: Vec<f64> = c.iter().map(|x| x * x).collect();
            let c3: Vec<f64> = c.iter().map(|x| x * x * x).collect();
            let ac = amul(c);
            let ac2 = amul(&c2);
            let aac = amul(&ac);
            let cac: Vec<f64> = (0..s).map(|i| c[i] * ac[i]).collect();
            let conditions: [(u32, f64, f64); 8] = [
                (1, dot(tab.b, &vec![1.0; s]), 1.0),
                (2, dot(tab.b, c), 0.5),
                (3, dot(tab.b, &c2), 1.0 / 3.0),
                (3, dot(tab.b, &ac), 1.0 / 6.0),
                (4, dot(tab.b, &c3), 0.25),
                (4, dot(tab.b, &cac), 1.0 / 8.0),
                (4, dot(tab.b, &ac2), 1.0 / 12.0),
                (4, dot(tab.b, &aac), 1.0 / 24.0),
            ];
            for (order, got, want) in conditions {
                if order <= tab.order {
                    assert!((got - want).abs() < 1e-12, "{} order {order}", tab.name);
                }
            }
        }
    }

    #[test]
    fn stability_size_is_where_the_stability_function_leaves_the_unit_disc() {
        for tab in METHODS {
            let s = tab.stability_size;
            assert!(
                stability_function(tab, -0.999 * s).abs() <= 1.0,
                "{}",
                tab.name
            );
            assert!(
                stability_function(tab, -1.001 * s).abs() > 1.0,
                "{}",
                tab.name
            );
        }
    }

    #[test]
    fn lookup_by_name() {
        assert_eq!(tableau("tsit5").map(|t| t.order), Some(5));
        assert_eq!(tableau("heun_euler").map(|t| t.stages()), Some(2));
        assert!(tableau("rk45").is_none());
    }
}
