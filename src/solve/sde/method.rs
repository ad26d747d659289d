//! The SDE methods, as data where they are a family: Rößler's SRI (Itô, diagonal/scalar
//! noise, strong order 1.5) and SRA (additive noise, strong order 1.5) tableaux run by one
//! stepper each; Euler–Maruyama, Euler–Heun and Milstein are one line each.
//!
//! SRI (Rößler 2010; the form StochasticDiffEq.jl runs), per component with the increments
//! of its process, `χ1 = I_(1,1)/√h = (ΔW² − h)/(2√h)`, `χ2 = I_(1,0)/h`,
//! `χ3 = I_(1,1,1)/h = (ΔW³ − 3hΔW)/(6h)`:
//!
//! ```text
//! H0_i = u + h Σ_j A0_ij f_j + χ2 Σ_j B0_ij g_j      f_i = f(t + c0_i h, H0_i)
//! H1_i = u + h Σ_j A1_ij f_j + √h Σ_j B1_ij g_j      g_i = g(t + c1_i h, H1_i)
//! u1   = u + h Σ α_i f_i + Σ (β1_i ΔW + β2_i χ1) g_i + E2
//! E2   = Σ (β3_i χ2 + β4_i χ3) g_i          E1 = h Σ_{i < error_stages} f_i
//! ```
//!
//! SRA (additive noise, `g` independent of `u`): `H0_i = u + h Σ A0_ij f_j + χ2 Σ B0_ij g_j`,
//! `g_i = g(t + c1_i h, H0_i)`, `u1 = u + h Σ α_i f_i + ΔW Σ β1_i g_i + E2`,
//! `E2 = χ2 Σ β2_i g_i`, `E1 = h Σ_i f_i`.
//!
//! Error estimate of the adaptive methods (Rackauckas & Nie 2017, DESIGN.md "Regularizers"):
//! `E = RMS_i( (δ|E1_i| + |E2_i|) / (atol + max(|u_n,i|, |u_{n+1},i|)·rtol) )`.
//!
//! Invariant: a stage whose `H` is `u` itself at `c = 0` reuses `f(t, u)` / `g(t, u)`
//! instead of evaluating again (SRIW1 costs 2 drift + 4 diffusion evaluations a step).

/// Itô or Stratonovich: which SDE a method solves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calculus {
    Ito,
    Stratonovich,
}

/// Rößler's SRI tableau (4 stages; rows of the strictly lower triangular matrices).
#[derive(Debug, PartialEq)]
pub struct SriTableau {
    pub name: &'static str,
    pub c0: [f64; 4],
    pub c1: [f64; 4],
    pub a0: [[f64; 4]; 4],
    pub a1: [[f64; 4]; 4],
    pub b0: [[f64; 4]; 4],
    pub b1: [[f64; 4]; 4],
    pub alpha: [f64; 4],
    pub beta1: [f64; 4],
    pub beta2: [f64; 4],
    pub beta3: [f64; 4],
    pub beta4: [f64; 4],
    /// `E1 = h Σ f_i` over the first this many stages.
    pub error_stages: usize,
    /// The drift stages `(p, q)` whose secant is the stiffness estimate (`stiffness.rs`).
    pub stiffness_pair: (usize, usize),
}

/// Rößler's SRA tableau (up to 3 stages; unused stages have zero weights).
#[derive(Debug, PartialEq)]
pub struct SraTableau {
    pub name: &'static str,
    pub stages: usize,
    pub c0: [f64; 3],
    pub c1: [f64; 3],
    pub a0: [[f64; 3]; 3],
    pub b0: [[f64; 3]; 3],
    pub alpha: [f64; 3],
    pub beta1: [f64; 3],
    pub beta2: [f64; 3],
    /// The drift stages `(p, q)` whose secant is the stiffness estimate (`stiffness.rs`).
    pub stiffness_pair: (usize, usize),
}

/// SRIW1 (Rößler 2010, table 5.7 "SRI1W1" as StochasticDiffEq.jl prints it).
pub static SRIW1: SriTableau = SriTableau {
    name: "sriw1",
    c0: [0.0, 0.75, 0.0, 0.0],
    c1: [0.0, 0.25, 1.0, 0.25],
    a0: [[0.0; 4], [0.75, 0.0, 0.0, 0.0], [0.0; 4], [0.0; 4]],
    a1: [
        [0.0; 4],
        [0.25, 0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.25, 0.0],
    ],
    b0: [[0.0; 4], [1.5, 0.0, 0.0, 0.0], [0.0; 4], [0.0; 4]],
    b1: [
        [0.0; 4],
        [0.5, 0.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0, 0.0],
        [-5.0, 3.0, 0.5, 0.0],
    ],
    alpha: [1.0 / 3.0, 2.0 / 3.0, 0.0, 0.0],
    beta1: [-1.0, 4.0 / 3.0, 2.0 / 3.0, 0.0],
    beta2: [-1.0, 4.0 / 3.0, -1.0 / 3.0, 0.0],
    beta3: [2.0, -4.0 / 3.0, -2.0 / 3.0, 0.0],
    beta4: [-2.0, 5.0 / 3.0, -2.0 / 3.0, 1.0],
    error_stages: 2,
    // Stages 2 and 3 reuse f(t, u_n): stage 1 is the only other drift argument.
    stiffness_pair: (0, 1),
};

/// SOSRI: the stability-optimised SRI of Rackauckas & Nie (2018), coefficients as
/// StochasticDiffEq.jl prints them (`c = A·1`).
pub static SOSRI: SriTableau = SriTableau {
    name: "sosri",
    c0: [
        0.0,
        -0.04199224421316468,
        0.2842612915017106e1 - 0.20527723684000727e1,
        0.4338237071435815e1 - 0.28895936137439793e1 + 0.23017575594644466e1,
    ],
    c1: [
        0.0,
        0.26204282091330466,
        0.20903646383505375 - 0.1502377115150361,
        0.05836595312746999 + 0.6149440396332373 + 0.08535117634046772,
    ],
    a0: [
        [0.0; 4],
        [-0.04199224421316468, 0.0, 0.0, 0.0],
        [2.842612915017106, -2.0527723684000727, 0.0, 0.0],
        [
            4.338237071435815,
            -2.8895936137439793,
            2.3017575594644466,
            0.0,
        ],
    ],
    a1: [
        [0.0; 4],
        [0.26204282091330466, 0.0, 0.0, 0.0],
        [0.20903646383505375, -0.1502377115150361, 0.0, 0.0],
        [
            0.05836595312746999,
            0.6149440396332373,
            0.08535117634046772,
            0.0,
        ],
    ],
    b0: [
        [0.0; 4],
        [-0.21641093549612528, 0.0, 0.0, 0.0],
        [1.5336352863679572, 0.26066223492647056, 0.0, 0.0],
        [
            -1.0536037558179159,
            1.7015284721089472,
            -0.20725685784180017,
            0.0,
        ],
    ],
    b1: [
        [0.0; 4],
        [-0.5119011827621657, 0.0, 0.0, 0.0],
        [2.67767339866713, -4.9395031322250995, 0.0, 0.0],
        [
            0.15580956238299215,
            3.2361551006624674,
            -1.4223118283355949,
            0.0,
        ],
    ],
    alpha: [
        1.140099274172029,
        -0.6401334255743456,
        0.4736296532772559,
        0.026404498125060714,
    ],
    beta1: [
        -1.8453464565104432,
        2.688764531100726,
        -0.2523866501071323,
        0.40896857551684956,
    ],
    beta2: [
        0.4969658141589478,
        -0.5771202869753592,
        -0.12919702470322217,
        0.2093514975196336,
    ],
    beta3: [
        2.8453464565104425,
        -2.688764531100725,
        0.2523866501071322,
        -0.40896857551684945,
    ],
    beta4: [
        0.11522663875443433,
        -0.57877086147738,
        0.2857851028163886,
        0.17775911990655704,
    ],
    error_stages: 4,
    // c0 ≈ 3.75: the drift argument farthest from u_n (best-conditioned difference).
    stiffness_pair: (0, 3),
};

/// SRA1 (Rößler 2010).
pub static SRA1: SraTableau = SraTableau {
    name: "sra1",
    stages: 2,
    c0: [0.0, 0.75, 0.0],
    c1: [1.0, 0.0, 0.0],
    a0: [[0.0; 3], [0.75, 0.0, 0.0], [0.0; 3]],
    b0: [[0.0; 3], [1.5, 0.0, 0.0], [0.0; 3]],
    alpha: [1.0 / 3.0, 2.0 / 3.0, 0.0],
    beta1: [1.0, 0.0, 0.0],
    beta2: [-1.0, 1.0, 0.0],
    stiffness_pair: (0, 1),
};

/// SOSRA: the stability-optimised SRA of Rackauckas & Nie (2018).
pub static SOSRA: SraTableau = SraTableau {
    name: "sosra",
    stages: 3,
    c0: [0.0, 0.6923962376159507, 1.0],
    c1: [0.0, 0.041248171110700504, 1.0],
    a0: [
        [0.0; 3],
        [0.6923962376159507, 0.0, 0.0],
        [-3.1609142252828395, 4.1609142252828395, 0.0],
    ],
    b0: [
        [0.0; 3],
        [1.3371632704399763, 0.0, 0.0],
        [1.442371048468624, 1.8632741501139225, 0.0],
    ],
    alpha: [0.2889874966892885, 0.6859880440839937, 0.025024459226717772],
    beta1: [-16.792534242221663, 17.514995785380226, 0.27753845684143835],
    beta2: [0.4237535769069274, 0.6010381474428539, -1.0247917243497813],
    // c0 = 1: the drift argument farthest from u_n (and 1.44 + 1.86 of χ2·g).
    stiffness_pair: (0, 2),
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SdeMethod {
    /// `u1 = u + h f + g ΔW` (Itô; strong order ½, weak 1).
    EulerMaruyama,
    /// Heun's predictor on the noise: `ū = u + g ΔW`, `u1 = u + h f + ½(g(u) + g(ū)) ΔW`
    /// (Stratonovich; strong order ½ in general, 1 for commutative noise).
    EulerHeun,
    /// `u1 = u + h f + g ΔW + ½ (J_g g)(ΔW² − h)` (Itô; strong order 1 for commutative noise).
    Milstein,
    /// Rößler SRI tableau (Itô, diagonal/scalar noise; strong order 1.5; adaptive).
    Sri(&'static SriTableau),
    /// Rößler SRA tableau (additive noise; strong order 1.5; adaptive).
    Sra(&'static SraTableau),
}

/// An SDE method by its model-file name or command-line shorthand (`registry::METHODS`).
pub fn sde_method(name: &str) -> Option<SdeMethod> {
    crate::solve::registry::Method::parse(name)?.sde()
}

impl SdeMethod {
    pub const fn name(self) -> &'static str {
        match self {
            SdeMethod::EulerMaruyama => "euler_maruyama",
            SdeMethod::EulerHeun => "euler_heun",
            SdeMethod::Milstein => "milstein",
            SdeMethod::Sri(t) => t.name,
            SdeMethod::Sra(t) => t.name,
        }
    }

    /// Has an error estimate, so runs adaptively without `dt`.
    pub fn is_adaptive(self) -> bool {
        matches!(self, SdeMethod::Sri(_) | SdeMethod::Sra(_))
    }

    pub fn calculus(self) -> Calculus {
        match self {
            SdeMethod::EulerHeun => Calculus::Stratonovich,
            _ => Calculus::Ito,
        }
    }

    /// Strong order on the noise class the method is made for.
    pub fn strong_order(self) -> f64 {
        match self {
            SdeMethod::EulerMaruyama | SdeMethod::EulerHeun => 0.5,
            SdeMethod::Milstein => 1.0,
            SdeMethod::Sri(_) | SdeMethod::Sra(_) => 1.5,
        }
    }
}
