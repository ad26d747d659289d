//! The example data files are well-formed and say what `examples/data/README.md` says.
//!
//! Shape checks (header, row count, finite numbers, sorted times per path) for every file;
//! the ODE files are recomputed with this file's own RK4 at a different (finer) step, so a
//! wrong equation, parameter, time grid or noise level in the generator fails here; the SDE
//! file is checked statistically (it is fixed data, so the check cannot flake); every `csv(...)`
//! in an example model must name an existing file and existing columns.

use std::path::{Path, PathBuf};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl Table {
    fn col(&self, name: &str) -> Vec<f64> {
        let i = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.header));
        self.rows.iter().map(|r| r[i]).collect()
    }
}

/// Reads `examples/data/NAME`; every row must have as many cells as the first line and every
/// cell must parse as a finite number.
fn load(name: &str, has_header: bool) -> Table {
    let path = examples_dir().join("data").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = if has_header {
        let first = lines.next().expect("empty file");
        first.split(',').map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let row: Vec<f64> = line
            .split(',')
            .map(|cell| {
                let v: f64 = cell
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} row {n}: not a number: {cell:?}"));
                assert!(v.is_finite(), "{name} row {n}: {cell} is not finite");
                v
            })
            .collect();
        let width = if has_header {
            header.len()
        } else {
            rows.first().map_or(row.len(), Vec::len)
        };
        assert_eq!(row.len(), width, "{name} row {n}: wrong number of cells");
        rows.push(row);
    }
    Table { header, rows }
}

fn rk4<const N: usize>(f: &impl Fn(&[f64; N]) -> [f64; N], y: &[f64; N], h: f64) -> [f64; N] {
    let at = |k: &[f64; N], c: f64| -> [f64; N] { std::array::from_fn(|i| y[i] + c * k[i]) };
    let k1 = f(y);
    let k2 = f(&at(&k1, h / 2.0));
    let k3 = f(&at(&k2, h / 2.0));
    let k4 = f(&at(&k3, h));
    std::array::from_fn(|i| y[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Solves the autonomous ODE from `y0` at `times[0]` and returns the state at each time.
fn reference<const N: usize>(
    f: impl Fn(&[f64; N]) -> [f64; N],
    y0: [f64; N],
    times: &[f64],
    substeps: usize,
) -> Vec<[f64; N]> {
    let mut y = y0;
    let mut out = vec![y];
    for w in times.windows(2) {
        let h = (w[1] - w[0]) / substeps as f64;
        for _ in 0..substeps {
            y = rk4(&f, &y, h);
        }
        out.push(y);
    }
    out
}

/// `t` is `n` equally spaced points on `[t0, t1]` (to the printed precision).
fn assert_grid(name: &str, t: &[f64], t0: f64, t1: f64, n: usize, tol: f64) {
    assert_eq!(t.len(), n, "{name}: row count");
    for (i, ti) in t.iter().enumerate() {
        let want = t0 + (t1 - t0) * i as f64 / (n - 1) as f64;
        assert!(
            (ti - want).abs() <= tol,
            "{name}: t[{i}] = {ti}, want {want}"
        );
    }
}

/// The residuals data − truth, over the first `rows` rows, look like N(0, sigma²) noise:
/// every one within 5 sigma, their RMS within 20 % of sigma (each column has ≥ 100 draws, so
/// the RMS of the draws is within ±20 % far beyond 3 standard errors of about 7 %).
fn assert_noise(name: &str, column: &str, data: &[f64], truth: &[f64], sigma: f64) {
    let n = data.len().min(truth.len());
    let mut sum_sq = 0.0;
    for i in 0..n {
        let r = data[i] - truth[i];
        assert!(
            r.abs() < 5.0 * sigma,
            "{name}.{column} row {i}: residual {r} vs noise {sigma}"
        );
        sum_sq += r * r;
    }
    let rms = (sum_sq / n as f64).sqrt();
    assert!(
        (rms / sigma - 1.0).abs() < 0.2,
        "{name}.{column}: residual RMS {rms}, documented noise {sigma}"
    );
}

fn spiral_field(y: &[f64; 2]) -> [f64; 2] {
    let (a, b) = (y[0].powi(3), y[1].powi(3));
    // Row vector (a, b) times A = [[-0.1, 2.0], [-2.0, -0.1]].
    [-0.1 * a - 2.0 * b, 2.0 * a - 0.1 * b]
}

#[test]
fn spiral_matches_an_independent_finer_solve() {
    let table = load("spiral.csv", true);
    assert_eq!(table.header, ["t", "y1", "y2"]);
    let t = table.col("t");
    assert_grid("spiral", &t, 0.0, 25.0, 1000, 1e-9);
    // The generator takes 40 RK4 steps per interval; 400 here. RK4's global error at the
    // generator's step (h ≈ 6e-4, Lipschitz constant ≲ 25) is ~1e-11, and the file keeps 10
    // decimals, so 1e-8 leaves margin yet catches any wrong coefficient, sign or time grid.
    let truth = reference(spiral_field, [2.0, 0.0], &t, 400);
    let (y1, y2) = (table.col("y1"), table.col("y2"));
    for (i, y) in truth.iter().enumerate() {
        let err = (y1[i] - y[0]).abs().max((y2[i] - y[1]).abs());
        assert!(err < 1e-8, "spiral row {i}: off by {err}");
    }
}

#[test]
fn lotka_volterra_is_the_documented_system_plus_noise() {
    let table = load("lv.csv", true);
    assert_eq!(table.header, ["t", "x", "y"]);
    let t = table.col("t");
    assert_grid("lv", &t, 0.0, 10.0, 101, 1e-6);
    let (alpha, beta, gamma, delta) = (1.3, 0.9, 0.8, 1.8);
    let f = |u: &[f64; 2]| {
        [
            alpha * u[0] - beta * u[0] * u[1],
            gamma * u[0] * u[1] - delta * u[1],
        ]
    };
    let truth = reference(f, [1.0, 1.0], &t, 300);
    let column = |k: usize| truth.iter().map(|y| y[k]).collect::<Vec<_>>();
    assert_noise("lv", "x", &table.col("x"), &column(0), 0.02);
    assert_noise("lv", "y", &table.col("y"), &column(1), 0.02);
}

#[test]
fn lorenz_is_the_documented_system_plus_noise() {
    let table = load("lorenz.csv", true);
    assert_eq!(table.header, ["t", "x", "y", "z"]);
    let t = table.col("t");
    assert_grid("lorenz", &t, 0.0, 100.0, 501, 1e-6);
    // Chaos: two accurate solutions agree only for a while (error growth ~ e^{0.9 t}), so
    // compare the first 101 rows (t ≤ 20), where RK4's error stays far below the noise.
    let rows = 101;
    let (sigma, rho, beta) = (10.0, 28.0, 8.0 / 3.0);
    let f = |u: &[f64; 3]| {
        [
            sigma * (u[1] - u[0]),
            u[0] * (rho - u[2]) - u[1],
            u[0] * u[1] - beta * u[2],
        ]
    };
    let truth = reference(f, [1.0, 0.0, 0.0], &t[..rows], 1000);
    for (k, name) in ["x", "y", "z"].into_iter().enumerate() {
        let col: Vec<f64> = truth.iter().map(|y| y[k]).collect();
        assert_noise("lorenz", name, &table.col(name)[..rows], &col, 0.1);
    }
}

#[test]
fn van_der_pol_is_the_documented_system_plus_noise() {
    let table = load("van_der_pol.csv", true);
    assert_eq!(table.header, ["t", "x", "v"]);
    let t = table.col("t");
    assert_grid("van_der_pol", &t, 0.0, 40.0, 401, 1e-6);
    let (mu, kappa) = (10.0, 0.5);
    let f = |u: &[f64; 2]| {
        let (x, v) = (u[0], u[1]);
        [v, mu * (1.0 - x * x) * v - x - kappa * x * x * x]
    };
    let truth = reference(f, [2.0, 0.0], &t, 100);
    let column = |k: usize| truth.iter().map(|y| y[k]).collect::<Vec<_>>();
    assert_noise("van_der_pol", "x", &table.col("x"), &column(0), 0.02);
    assert_noise("van_der_pol", "v", &table.col("v"), &column(1), 0.05);
}

#[test]
fn spiral_sde_paths_are_complete_sorted_and_spread_as_documented() {
    let table = load("spiral_sde.csv", true);
    assert_eq!(table.header, ["path", "t", "u1", "u2"]);
    assert_eq!(table.rows.len(), 100 * 20);
    let (path, t, u1, u2) = (
        table.col("path"),
        table.col("t"),
        table.col("u1"),
        table.col("u2"),
    );
    for p in 0..100 {
        let rows = p * 20..(p + 1) * 20;
        assert!(
            path[rows.clone()].iter().all(|&q| q == p as f64),
            "path {p}: ids"
        );
        assert_grid(
            &format!("spiral_sde path {p}"),
            &t[rows.clone()],
            0.0,
            1.0,
            20,
            1e-6,
        );
        assert!(
            t[rows.clone()].windows(2).all(|w| w[0] < w[1]),
            "path {p}: times"
        );
        assert_eq!(
            (u1[p * 20], u2[p * 20]),
            (2.0, 0.0),
            "path {p}: initial value"
        );
    }
    // At the first sample time h = 1/19, u1 ≈ 2 + drift·h + 0.2·2·√h·Z: the 100 draws must have
    // a mean near the drift step (sd of the mean ≈ 0.009; 0.04 is > 4 sd plus the drift's
    // curvature over h) and a spread near 0.4·√h ≈ 0.092 (sd of a sample sd ≈ 7 %; ±25 %).
    let h = 1.0 / 19.0;
    let first: Vec<f64> = (0..100).map(|p| u1[p * 20 + 1]).collect();
    let mean = first.iter().sum::<f64>() / 100.0;
    let sd = (first.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 99.0).sqrt();
    let deterministic = reference(spiral_field, [2.0, 0.0], &[0.0, h], 200)[1][0];
    assert!(
        (mean - deterministic).abs() < 0.04,
        "mean {mean} vs {deterministic}"
    );
    let want = 0.4 * h.sqrt();
    assert!(
        (sd / want - 1.0).abs() < 0.25,
        "spread {sd}, want about {want}"
    );
}

/// OU paths (exact transitions): complete, on the grid, and with the exact mean
/// `μ + (x0 − μ)e^(−θt)` and variance `σ²(1 − e^(−2θt))/(2θ)` at every time, within 4.5
/// standard errors over the 200 paths (variance s.e. ≈ var·√(2/199)).
#[test]
fn ou_paths_have_the_documented_moments() {
    let table = load("ou.csv", true);
    assert_eq!(table.header, ["path", "t", "x"]);
    assert_eq!(table.rows.len(), 200 * 21);
    let (path, t, x) = (table.col("path"), table.col("t"), table.col("x"));
    let (theta, mu, sigma, x0) = (2.0_f64, 0.5_f64, 0.4_f64, 2.0_f64);
    for k in 0..21 {
        let ti = 0.1 * k as f64;
        let xs: Vec<f64> = (0..200)
            .map(|p| {
                assert_eq!(path[p * 21 + k], p as f64);
                assert!((t[p * 21 + k] - ti).abs() < 1e-9, "path {p} time {k}");
                x[p * 21 + k]
            })
            .collect();
        let mean = xs.iter().sum::<f64>() / 200.0;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 199.0;
        let (m, v) = (
            mu + (x0 - mu) * (-theta * ti).exp(),
            sigma * sigma * (1.0 - (-2.0 * theta * ti).exp()) / (2.0 * theta),
        );
        assert!(
            (mean - m).abs() <= 4.5 * (v / 200.0).sqrt() + 1e-6,
            "t = {ti}: mean {mean} vs {m}"
        );
        assert!(
            (var - v).abs() <= 4.5 * v * (2.0f64 / 199.0).sqrt() + 1e-9,
            "t = {ti}: var {var} vs {v}"
        );
    }
}

#[test]
fn digits_are_8x8_images_with_labels() {
    let table = load("digits.csv", false);
    assert_eq!(table.rows.len(), 1797);
    let mut per_class = [0usize; 10];
    for (i, row) in table.rows.iter().enumerate() {
        assert_eq!(row.len(), 65, "digits row {i}");
        for &v in &row[..64] {
            assert!(
                v.fract() == 0.0 && (0.0..=16.0).contains(&v),
                "digits row {i}: {v}"
            );
        }
        let label = row[64];
        assert!(
            label.fract() == 0.0 && (0.0..=9.0).contains(&label),
            "row {i}: {label}"
        );
        per_class[label as usize] += 1;
    }
    assert!(
        per_class.iter().all(|&n| n >= 150),
        "classes: {per_class:?}"
    );
}

/// The string literals in `text`, in order (the examples use no escapes).
fn strings(text: &str) -> Vec<&str> {
    text.split('"').skip(1).step_by(2).collect()
}

/// The value of the string option `key = "..."` inside a `csv(...)` call, if present.
fn option<'a>(call: &'a str, key: &str) -> Option<&'a str> {
    let at = call.find(&format!("{key} = \""))?;
    strings(&call[at..]).first().copied()
}

#[test]
fn every_example_names_existing_data_files_and_columns() {
    let mut models = 0;
    let mut entries: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "gbx"))
        .collect();
    entries.sort();
    for model in entries {
        models += 1;
        let text = std::fs::read_to_string(&model).expect("model file");
        for (start, _) in text.match_indices("csv(\"") {
            let call = &text[start..];
            let call = &call[..call.find(')').expect("csv call closes")];
            let file = strings(call)[0];
            let name = file
                .strip_prefix("data/")
                .unwrap_or_else(|| panic!("{}: {file} is not under data/", model.display()));
            assert!(
                examples_dir().join("data").join(name).is_file(),
                "{}: {file} missing",
                model.display()
            );
            if name == "digits.csv" {
                continue; // no header: columns are positions, checked by the digits test
            }
            let table = load(name, true);
            let mut named: Vec<&str> = ["time", "group"]
                .into_iter()
                .filter_map(|k| option(call, k))
                .collect();
            if let Some(at) = call.find("columns = [") {
                let list = &call[at..];
                named.extend(strings(&list[..list.find(']').expect("list closes")]));
            }
            assert!(!named.is_empty(), "{}: no columns named", model.display());
            for col in named {
                assert!(
                    table.header.iter().any(|h| h == col),
                    "{}: column {col:?} not in {name}",
                    model.display()
                );
            }
        }
    }
    assert!(models >= 8, "every example model, found {models}");
}
