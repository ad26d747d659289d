//! Regenerates the data files under `examples/data/` (all but `digits.csv`, which is copied
//! from scikit-learn; see `examples/data/README.md`).
//!
//!     cargo run --release --example gen_data            # writes examples/data/*.csv
//!     cargo run --release --example gen_data -- DIR     # writes into DIR instead
//!     cargo run --example gen_data -- --check           # fails if a file is stale (CI)
//!
//! Self-contained on purpose: the data must not depend on glassbox's own solvers, which the
//! data are used to test. ODEs use classic fixed-step RK4 with a fine step (many substeps per
//! sample interval, so the sampled values are exact to well below the printed digits); the
//! SDE uses Euler–Maruyama with a fine step. Noise comes from seeded ChaCha8 streams.
//!
//! Invariant: the output is a pure function of this file (same bytes on every rerun and
//! platform): sample times are computed from their index, never accumulated, every random
//! stream has a fixed seed, and numbers are printed with a fixed number of decimals.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// One classic RK4 step of `y' = f(t, y)`.
fn rk4_step<const N: usize>(
    f: &impl Fn(f64, &[f64; N]) -> [f64; N],
    t: f64,
    y: &[f64; N],
    h: f64,
) -> [f64; N] {
    let shifted = |base: &[f64; N], k: &[f64; N], c: f64| -> [f64; N] {
        std::array::from_fn(|i| base[i] + c * k[i])
    };
    let k1 = f(t, y);
    let k2 = f(t + 0.5 * h, &shifted(y, &k1, 0.5 * h));
    let k3 = f(t + 0.5 * h, &shifted(y, &k2, 0.5 * h));
    let k4 = f(t + h, &shifted(y, &k3, h));
    std::array::from_fn(|i| y[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// `n` equally spaced times from `t0` to `t1` inclusive, each computed from its index.
fn linspace(t0: f64, t1: f64, n: usize) -> Vec<f64> {
    let last = (n - 1) as f64;
    (0..n).map(|i| t0 + (t1 - t0) * (i as f64) / last).collect()
}

/// The solution at each of `times` (the first is the initial time), integrating each sample
/// interval with `substeps` equal RK4 steps.
fn solve_ode<const N: usize>(
    f: impl Fn(f64, &[f64; N]) -> [f64; N],
    y0: [f64; N],
    times: &[f64],
    substeps: usize,
) -> Vec<[f64; N]> {
    let mut out = Vec::with_capacity(times.len());
    let mut y = y0;
    out.push(y);
    for w in times.windows(2) {
        let h = (w[1] - w[0]) / substeps as f64;
        for s in 0..substeps {
            y = rk4_step(&f, w[0] + h * s as f64, &y, h);
        }
        out.push(y);
    }
    out
}

/// Adds independent N(0, sigma_i^2) noise to component i of every row.
fn add_noise<const N: usize>(rows: &mut [[f64; N]], sigma: [f64; N], seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for row in rows.iter_mut() {
        for (x, s) in row.iter_mut().zip(sigma) {
            let z: f64 = StandardNormal.sample(&mut rng);
            *x += s * z;
        }
    }
}

/// CSV text: a header line, then one line per row, `decimals` digits after the point.
fn csv_text(header: &[&str], rows: impl Iterator<Item = Vec<f64>>, decimals: usize) -> String {
    let mut s = header.join(",");
    s.push('\n');
    for row in rows {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.decimals$}")).collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

/// Time column followed by the state components.
fn with_time<const N: usize>(times: &[f64], ys: &[[f64; N]]) -> impl Iterator<Item = Vec<f64>> {
    times.iter().zip(ys).map(|(t, y)| {
        let mut row = vec![*t];
        row.extend_from_slice(y);
        row
    })
}

/// torchdiffeq's `ode_demo.py`: dy/dt = (y^3) A with y a row vector.
fn spiral_drift(y: &[f64; 2]) -> [f64; 2] {
    const A: [[f64; 2]; 2] = [[-0.1, 2.0], [-2.0, -0.1]];
    let c = [y[0].powi(3), y[1].powi(3)];
    [
        c[0] * A[0][0] + c[1] * A[1][0],
        c[0] * A[0][1] + c[1] * A[1][1],
    ]
}

fn spiral() -> String {
    let times = linspace(0.0, 25.0, 1000);
    let ys = solve_ode(|_, y| spiral_drift(y), [2.0, 0.0], &times, 40);
    csv_text(&["t", "y1", "y2"], with_time(&times, &ys), 10)
}

fn lotka_volterra() -> String {
    let (alpha, beta, gamma, delta) = (1.3, 0.9, 0.8, 1.8);
    let f = move |_: f64, u: &[f64; 2]| {
        let (x, y) = (u[0], u[1]);
        [alpha * x - beta * x * y, gamma * x * y - delta * y]
    };
    let times = linspace(0.0, 10.0, 101);
    let mut ys = solve_ode(f, [1.0, 1.0], &times, 100);
    add_noise(&mut ys, [0.02, 0.02], 0x4c56);
    csv_text(&["t", "x", "y"], with_time(&times, &ys), 6)
}

fn lorenz() -> String {
    let (sigma, rho, beta) = (10.0, 28.0, 8.0 / 3.0);
    let f = move |_: f64, u: &[f64; 3]| {
        let (x, y, z) = (u[0], u[1], u[2]);
        [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]
    };
    let times = linspace(0.0, 100.0, 501);
    let mut ys = solve_ode(f, [1.0, 0.0, 0.0], &times, 2000);
    add_noise(&mut ys, [0.1, 0.1, 0.1], 0x10e2);
    csv_text(&["t", "x", "y", "z"], with_time(&times, &ys), 6)
}

fn van_der_pol() -> String {
    // The known part of the model is Van der Pol; the data also carry a hardening spring
    // -kappa x^3 that the model's small mlp correction is meant to learn.
    let (mu, kappa) = (10.0, 0.5);
    let f = move |_: f64, u: &[f64; 2]| {
        let (x, v) = (u[0], u[1]);
        [v, mu * (1.0 - x * x) * v - x - kappa * x * x * x]
    };
    let times = linspace(0.0, 40.0, 401);
    let mut ys = solve_ode(f, [2.0, 0.0], &times, 200);
    add_noise(&mut ys, [0.02, 0.05], 0x7d9);
    csv_text(&["t", "x", "v"], with_time(&times, &ys), 6)
}

/// Itô SDE du = (u^3) A dt + 0.2 u dW (diagonal multiplicative noise), the DiffEqFlux neural
/// SDE tutorial's truth; one seeded stream per path so paths do not depend on each other.
fn spiral_sde() -> String {
    const PATHS: usize = 100;
    const SUBSTEPS: usize = 200;
    let noise = 0.2;
    let times = linspace(0.0, 1.0, 20);
    let mut rows = Vec::with_capacity(PATHS * times.len());
    for path in 0..PATHS {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5de_0000 + path as u64);
        let mut u = [2.0_f64, 0.0];
        rows.push(vec![path as f64, times[0], u[0], u[1]]);
        for w in times.windows(2) {
            let h = (w[1] - w[0]) / SUBSTEPS as f64;
            let sqrt_h = h.sqrt();
            for _ in 0..SUBSTEPS {
                let a = spiral_drift(&u);
                let z0: f64 = StandardNormal.sample(&mut rng);
                let z1: f64 = StandardNormal.sample(&mut rng);
                u = [
                    u[0] + a[0] * h + noise * u[0] * sqrt_h * z0,
                    u[1] + a[1] * h + noise * u[1] * sqrt_h * z1,
                ];
            }
            rows.push(vec![path as f64, w[1], u[0], u[1]]);
        }
    }
    // The path id is an integer column; print it without decimals.
    let mut s = String::from("path,t,u1,u2\n");
    for r in rows {
        let _ = writeln!(s, "{},{:.6},{:.6},{:.6}", r[0] as usize, r[1], r[2], r[3]);
    }
    s
}

/// Ornstein–Uhlenbeck dx = θ(μ − x) dt + σ dW, θ = 2, μ = 0.5, σ = 0.4, x0 = 2: 200 paths
/// sampled with the exact Gaussian transition (no discretisation error), one seeded stream per
/// path.
fn ou() -> String {
    const PATHS: usize = 200;
    let (theta, mu, sigma) = (2.0_f64, 0.5_f64, 0.4_f64);
    let times = linspace(0.0, 2.0, 21);
    let mut s = String::from("path,t,x\n");
    for path in 0..PATHS {
        let mut rng = ChaCha8Rng::seed_from_u64(0x0c0_0000 + path as u64);
        let mut x = 2.0_f64;
        let _ = writeln!(s, "{path},{:.6},{x:.6}", times[0]);
        for w in times.windows(2) {
            let decay = (-theta * (w[1] - w[0])).exp();
            let sd = sigma * ((1.0 - decay * decay) / (2.0 * theta)).sqrt();
            let z: f64 = StandardNormal.sample(&mut rng);
            x = mu + (x - mu) * decay + sd * z;
            let _ = writeln!(s, "{path},{:.6},{x:.6}", w[1]);
        }
    }
    s
}

/// A data file: its name under `examples/data/` and the function that makes its text.
type DataFile = (&'static str, fn() -> String);

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    for arg in std::env::args_os().skip(1) {
        if arg == "--check" {
            check = true;
        } else {
            dir = PathBuf::from(arg);
        }
    }
    let files: [DataFile; 6] = [
        ("spiral.csv", spiral),
        ("lv.csv", lotka_volterra),
        ("lorenz.csv", lorenz),
        ("van_der_pol.csv", van_der_pol),
        ("spiral_sde.csv", spiral_sde),
        ("ou.csv", ou),
    ];
    let mut ok = true;
    for (name, make) in files {
        let text = make();
        let path = dir.join(name);
        let result = if check {
            match std::fs::read_to_string(&path) {
                Ok(old) if old == text => {
                    println!("up to date: {}", path.display());
                    Ok(())
                }
                Ok(_) => {
                    eprintln!("stale: {} differs from what gen_data makes", path.display());
                    ok = false;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, &text))
                .map(|()| println!("wrote {} ({} bytes)", path.display(), text.len()))
        };
        if let Err(e) = result {
            eprintln!("{}: {e}", path.display());
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
