//! `glassbox solve`: CSV and JSON output against a direct solve, `--stats`, `--plot`, and
//! failures that exit 1 and leave no file behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use glassbox::solve::{self, JitField, Method, SolveOptions};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx-cli-solve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn robertson_direct(save_at: Vec<f64>) -> solve::Solution {
    let text = std::fs::read_to_string(example("robertson.gbx")).expect("readable");
    let file = glassbox::source::SourceFile::new("robertson.gbx".to_string(), text);
    let m = glassbox::check_source(&file, &glassbox::source::DiskLoader)
        .model
        .expect("checks");
    let mut f = JitField::new(&m, &[]).expect("compiles");
    let opts = SolveOptions {
        rtol: 1e-8,
        atol: 1e-10,
        save_at,
        ..Default::default()
    };
    solve::solve_with(
        Method::auto(1e-8),
        &mut f,
        0.0,
        1e5,
        &[1.0, 0.0, 0.0],
        &opts,
    )
    .expect("solves")
}

#[test]
fn csv_has_a_header_and_the_direct_solution() {
    let d = tmpdir("csv");
    let out = d.join("r.csv");
    let st = bin()
        .arg("solve")
        .arg(example("robertson.gbx"))
        .args(["--at", "0:1e5:11", "-o"])
        .arg(&out)
        .status()
        .expect("runs");
    assert!(st.success());
    let text = std::fs::read_to_string(&out).expect("written");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("t,y1,y2,y3"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|x| x.parse().expect("number")).collect())
        .collect();
    assert_eq!(rows.len(), 11);
    let grid: Vec<f64> = (0..11).map(|k| 1e5 * k as f64 / 10.0).collect();
    let direct = robertson_direct(grid.clone());
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row[0], grid[k]);
        let u = direct.u(k).expect("saved");
        for i in 0..3 {
            assert!(
                (row[i + 1] - u[i]).abs() <= 1e-14 * u[i].abs().max(1e-300),
                "row {k}"
            );
        }
    }
    // No temporary files left beside it.
    assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 1);
}

#[test]
fn json_output_and_stats() {
    let d = tmpdir("json");
    let out = d.join("r.json");
    let o = bin()
        .arg("solve")
        .arg(example("robertson.gbx"))
        .args(["--stats", "--repeat", "3", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats = String::from_utf8_lossy(&o.stdout);
    for field in [
        "method            auto",
        "nfe ",
        "steps ",
        "rejected",
        "jacobians ",
        "lu factorizations ",
        "switches          1",
        "sum E_j*|h_j|",
        "sum S_j*|h_j|",
        "compile time",
        "solve time",
        "(median of 3)",
    ] {
        assert!(stats.contains(field), "missing `{field}` in\n{stats}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    assert_eq!(v["names"], serde_json::json!(["y1", "y2", "y3"]));
    let t = v["t"].as_array().expect("t");
    let u = v["u"].as_array().expect("u");
    assert_eq!(t.len(), u.len());
    assert_eq!(t.last().and_then(|x| x.as_f64()), Some(1e5));
    let y1 = u.last().and_then(|r| r[0].as_f64()).expect("y1");
    assert!((y1 - 1.786592114210e-02).abs() < 1e-6 * 1.8e-2, "{y1}");
    assert_eq!(v["stats"]["switches"], 1);
}

#[test]
fn plot_writes_a_png() {
    let d = tmpdir("plot");
    let png = d.join("r.png");
    let st = bin()
        .arg("solve")
        .arg(example("robertson.gbx"))
        .arg("--plot")
        .arg(&png)
        .status()
        .expect("runs");
    assert!(st.success());
    let bytes = std::fs::read(&png).expect("written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // A 1000-pixel-wide RGB picture with text and three curves: tens of kilobytes at least.
    assert!(
        bytes.len() > 20_000 && bytes.len() < 5_000_000,
        "{}",
        bytes.len()
    );
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    assert_eq!(width, 1000);
    assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 1);
}

#[test]
fn a_failing_solve_exits_1_and_writes_nothing() {
    let d = tmpdir("fail");
    let out = d.join("r.csv");
    let png = d.join("r.png");
    // Tsit5 on Robertson stops: the problem is stiff.
    let o = bin()
        .arg("solve")
        .arg(example("robertson.gbx"))
        .args(["--method", "tsit5", "--rtol", "1e-6", "-o"])
        .arg(&out)
        .arg("--plot")
        .arg(&png)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stiff_for_explicit"), "{err}");
    assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 0);

    // Unknown methods and malformed spans are diagnostics too.
    let bad = bin()
        .arg("solve")
        .arg(example("lorenz.gbx"))
        .args(["--method", "tsit6", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean"));
    let bad = bin()
        .arg("solve")
        .arg(example("lorenz.gbx"))
        .args(["--over", "0:x"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad_argument"));
    assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 0);
}

#[test]
fn csv_goes_to_stdout_without_output_flags() {
    let o = bin()
        .arg("solve")
        .arg(example("lorenz.gbx"))
        .args(["--at", "0:1:5"])
        .output()
        .expect("runs");
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("t,x,y,z\n"), "{text}");
    assert_eq!(text.lines().count(), 6);
}

fn sde_csv(args: &[&str], out: &Path) -> String {
    let o = bin()
        .arg("solve")
        .arg(example("spiral_sde.gbx"))
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(out).expect("written")
}

#[test]
fn sde_csv_has_every_path_on_one_grid_and_the_seed_decides() {
    let d = tmpdir("sde-csv");
    let out = d.join("x.csv");
    let text = sde_csv(&["--paths", "8", "--seed", "1"], &out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("path,t,u[0],u[1]"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|x| x.parse().expect("number")).collect())
        .collect();
    // 8 paths × the default 101 times over the model's `over [0, 1]`.
    assert_eq!(rows.len(), 8 * 101);
    for (j, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 4);
        assert_eq!(row[0], (j / 101) as f64);
        let k = j % 101;
        assert!((row[1] - k as f64 / 100.0).abs() < 1e-15, "{row:?}");
        if k == 0 {
            assert_eq!(&row[2..], &[2.0, 0.0]);
        }
        assert!(row[2..].iter().all(|x| x.is_finite()));
    }
    // The paths differ from each other.
    assert_ne!(rows[100][2], rows[201][2]);
    // Same seed, same bytes; another seed, other paths (same grid).
    let again = sde_csv(&["--paths", "8", "--seed", "1"], &out);
    assert_eq!(again, text);
    let other = sde_csv(&["--paths", "8", "--seed", "2"], &out);
    assert_ne!(other, text);
    assert_eq!(other.lines().count(), text.lines().count());
    // A path does not depend on how many others are solved with it.
    let first = sde_csv(&["--paths", "1", "--seed", "1"], &out);
    assert!(text.starts_with(&first));
    assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 1);
}

#[test]
fn sde_methods_dt_json_and_stats() {
    let d = tmpdir("sde-json");
    let out = d.join("x.json");
    let o = bin()
        .arg("solve")
        .arg(example("spiral_sde.gbx"))
        .args([
            "--method", "milstein", "--dt", "0.01", "--paths", "3", "--at", "0:0.5:6", "--stats",
            "--repeat", "3", "-o",
        ])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats = String::from_utf8_lossy(&o.stdout);
    for field in [
        "method            milstein",
        "paths             3 (seed 0)",
        // 50 steps of 0.01 per path: f and g at t0, then f, g and the JVP per step (the
        // last step's end is not evaluated again) — the save times fall on the grid.
        "nfe               450",
        "steps             150 accepted, 0 rejected",
        "steps per path    50.0",
        "sum S_j*|h_j|     - (no stiffness estimate)",
        "compile time",
        "(median of 3)",
    ] {
        assert!(stats.contains(field), "missing `{field}` in\n{stats}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    assert_eq!(v["method"], "milstein");
    assert_eq!(v["names"], serde_json::json!(["u[0]", "u[1]"]));
    assert_eq!(v["t"].as_array().map(Vec::len), Some(6));
    let u = v["u"].as_array().expect("u");
    assert_eq!(u.len(), 3);
    assert!(u.iter().all(|p| p.as_array().map(Vec::len) == Some(6)));
    assert_eq!(v["stats"]["accepted"], 150);

    // The adaptive default records E_j and S_j.
    let o = bin()
        .arg("solve")
        .arg(example("spiral_sde.gbx"))
        .args(["--stats", "--paths", "2"])
        .output()
        .expect("runs");
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("method            sosri"), "{err}");
    assert!(!err.contains("no error estimate"), "{err}");
    assert!(err.contains("sum S_j*|h_j|     "), "{err}");
    assert!(!err.contains("no stiffness estimate"), "{err}");
}

#[test]
fn sde_plot_and_failures() {
    let d = tmpdir("sde-plot");
    let png = d.join("s.png");
    let st = bin()
        .arg("solve")
        .arg(example("spiral_sde.gbx"))
        .args(["--paths", "20", "--plot"])
        .arg(&png)
        .status()
        .expect("runs");
    assert!(st.success());
    let bytes = std::fs::read(&png).expect("written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 20_000, "{}", bytes.len());
    std::fs::remove_file(&png).expect("removable");

    let fails = |args: &[&str], code: &str, text: &str| {
        let o = bin()
            .arg("solve")
            .arg(example("spiral_sde.gbx"))
            .args(args)
            .arg("-o")
            .arg(d.join("x.csv"))
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(code) && err.contains(text), "{args:?}: {err}");
    };
    fails(
        &["--method", "sosr"],
        "unknown_method",
        "did you mean `sosra`?",
    );
    fails(
        &["--method", "euler_maruyam"],
        "unknown_method",
        "did you mean `euler_maruyama`?",
    );
    fails(&["--method", "tsit5"], "method_mismatch", "SDE methods");
    fails(&["--method", "euler_maruyama"], "missing_dt", "--dt");
    fails(&["--dt=-1"], "bad_argument", "positive");
    fails(&["--paths", "0"], "bad_argument", "--paths");
    fails(&["--over", "1:0"], "bad_argument", "forward");
    assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 0);

    // ODE models refuse SDE methods and SDE flags.
    let o = bin()
        .arg("solve")
        .arg(example("lorenz.gbx"))
        .args(["--method", "sosri"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("method_mismatch"));
}

#[test]
fn ode_dt_flag_runs_a_fixed_grid() {
    let o = bin()
        .arg("solve")
        .arg(example("lorenz.gbx"))
        .args([
            "--method", "rk4", "--dt", "0.01", "--over", "0:1", "--stats",
        ])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("100 accepted"));
    let o = bin()
        .arg("solve")
        .arg(example("robertson.gbx"))
        .args(["--dt", "0.01"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("auto"));
}

/// `--grad` differentiates exactly the paths `solve` prints: its loss is their mean final
/// value; JSON and CSV carry the same gradient, one value per parameter element. (The
/// gradient's values are checked against central differences in tests/suite/sde_train.rs.)
#[test]
fn sde_grad_differentiates_the_printed_paths() {
    let d = tmpdir("sde-grad");
    let common = [
        "--method",
        "euler_maruyama",
        "--dt",
        "0.01",
        "--paths",
        "4",
        "--seed",
        "3",
        "--at",
        "0:1:2",
    ];
    let paths: serde_json::Value =
        serde_json::from_str(&sde_csv(&common, &d.join("x.json"))).expect("json");
    let finals: Vec<f64> = paths["u"]
        .as_array()
        .expect("u")
        .iter()
        .flat_map(|p| p[1].as_array().expect("u(1)").clone())
        .map(|x| x.as_f64().expect("number"))
        .collect();
    assert_eq!(finals.len(), 8);
    let mean = finals.iter().sum::<f64>() / 8.0;

    let out = d.join("g.json");
    let o = solve_with(
        "spiral_sde.gbx",
        &common,
        &["--grad", "--stats", "--repeat", "2", "-o"],
        Some(&out),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats = String::from_utf8_lossy(&o.stdout);
    for field in [
        "paths             4 (seed 3)",
        "gradient time",
        "(median of 2)",
    ] {
        assert!(stats.contains(field), "missing `{field}` in\n{stats}");
    }
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    let loss = g["loss"].as_f64().expect("loss");
    assert!(
        (loss - mean).abs() <= 1e-14 * mean.abs(),
        "{loss} vs {mean}"
    );
    assert_eq!(g["stats"]["accepted"], 400);
    assert!(g["timing"]["median_solve_ms"].as_f64().expect("timing") > 0.0);
    let mut flat = Vec::new();
    for q in g["params"].as_array().expect("params") {
        let size: u64 = q["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|x| x.as_u64().expect("dim"))
            .product();
        let grad = q["grad"].as_array().expect("grad");
        assert_eq!(grad.len() as u64, size, "{q}");
        flat.extend(grad.iter().map(|x| x.as_f64().expect("number")));
    }
    // drift: 50·2 + 50 + 2·50 + 2, noise: 2·2 + 2.
    assert_eq!(flat.len(), 258);
    assert!(flat.iter().all(|x| x.is_finite()) && flat.iter().any(|x| x.abs() > 1e-3));

    // Without -o: CSV `param,gradient` on stdout, the same numbers.
    let o = solve_with("spiral_sde.gbx", &common, &["--grad"], None);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("param,gradient"));
    let rows: Vec<(String, f64)> = lines
        .map(|l| {
            let (name, v) = l.rsplit_once(',').expect("two fields");
            (name.to_string(), v.parse().expect("number"))
        })
        .collect();
    // serde_json parses floats to within an ulp (no `float_roundtrip`), Rust's parser exactly.
    assert_eq!(rows.len(), flat.len());
    for ((name, a), b) in rows.iter().zip(&flat) {
        assert!((a - b).abs() <= 1e-15 * b.abs(), "{name}: {a} vs {b}");
    }
    assert_eq!(
        rows[0].0,
        format!("{}[0,0]", g["params"][0]["name"].as_str().expect("name"))
    );

    // ODE models and --plot refuse it.
    let o = solve_with("lorenz.gbx", &[], &["--grad"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad_argument") && err.contains("--grad"),
        "{err}"
    );
    let o = solve_with(
        "spiral_sde.gbx",
        &["--grad", "--plot"],
        &[],
        Some(&d.join("x.png")),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.join("x.png").exists());
}

/// `glassbox solve MODEL ARGS MORE [LAST]`.
fn solve_with(
    model: &str,
    args: &[&str],
    more: &[&str],
    last: Option<&Path>,
) -> std::process::Output {
    let mut c = bin();
    c.arg("solve").arg(example(model)).args(args).args(more);
    if let Some(p) = last {
        c.arg(p);
    }
    c.output().expect("runs")
}

/// Negative numbers reach glassbox's own parsers instead of being taken for flags: a span
/// that starts below zero solves, and a negative step is a coded diagnostic naming the flag.
#[test]
fn negative_numbers_are_values_not_flags() {
    let lorenz = example("lorenz.gbx");
    let out = bin()
        .arg("solve")
        .arg(&lorenz)
        .args(["--at", "-1:1:3"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.lines().nth(1).is_some_and(|l| l.starts_with("-1e0,")),
        "{csv}"
    );

    let out = bin()
        .arg("solve")
        .arg(&lorenz)
        .args(["--method", "euler", "--dt", "-1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("glassbox::bad_argument"), "{err}");
    assert!(
        err.contains("`--dt -1` must be a positive step size"),
        "{err}"
    );
}

/// A negative number given to a flag that counts or seeds (`--seed -1`, `--paths -3`,
/// `--iterations -5`) is refused by that flag's parser as a coded diagnostic that says what
/// the flag takes (exit status 2, a usage error); so is any other mistake the argument parser
/// finds, while `--help` still prints the help and succeeds.
#[test]
fn command_line_mistakes_are_coded_diagnostics() {
    let lorenz = example("lorenz.gbx");
    let spiral = example("spiral.gbx");
    let sde = example("spiral_sde.gbx");
    let cases: [(&[&std::ffi::OsStr], &str); 4] = [
        (
            &[
                "train".as_ref(),
                spiral.as_os_str(),
                "--seed".as_ref(),
                "-1".as_ref(),
            ],
            "`--seed` takes a whole number, 0 or more",
        ),
        (
            &[
                "train".as_ref(),
                spiral.as_os_str(),
                "--iterations".as_ref(),
                "-5".as_ref(),
            ],
            "`--iterations` takes a whole number, 0 or more",
        ),
        (
            &[
                "solve".as_ref(),
                sde.as_os_str(),
                "--paths".as_ref(),
                "-3".as_ref(),
            ],
            "`--paths` takes a whole number, 0 or more",
        ),
        (
            &["solve".as_ref(), lorenz.as_os_str(), "--bogus".as_ref()],
            "`glassbox solve --help` lists its flags",
        ),
    ];
    for (args, help) in cases {
        let out = bin()
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("glassbox::bad_argument"), "{args:?}: {err}");
        assert!(err.contains(help), "{args:?}: {err}");
    }
    let out = bin()
        .args(["frobnicate"])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("glassbox::bad_argument")
            && err.contains("`glassbox --help` lists the commands"),
        "{err}"
    );
    let out = bin().args(["train", "--help"]).output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--backend"));
}

/// `--over 0:1e308`: no step the problem allows can cover such a span in f64 (16 ε × 1e308
/// is 3.5e93). Said as a span too long for the problem's time scale, with how far
/// `max_steps` steps of its size reach, not as a step underflow at t = 3.6e-5.
#[test]
fn a_span_too_long_for_any_step_says_so() {
    let out = bin()
        .arg("solve")
        .arg(example("lorenz.gbx"))
        .args(["--over", "0:1e308"])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("glassbox::span_too_long"), "{err}");
    assert!(err.contains("too long for this problem's steps"), "{err}");
    assert!(err.contains("shorten the time span"), "{err}");
    assert!(!err.contains("step_underflow"), "{err}");
    // An ordinary long span still solves.
    let out = bin()
        .arg("solve")
        .arg(example("robertson.gbx"))
        .args(["--over", "0:1e5", "-o", "/dev/null"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A full disk (Linux's `/dev/full`: every write fails with ENOSPC) is the same
/// `glassbox::io_error` for a plot as for a CSV, naming the file and the OS error, never
/// plotters' `ImageError(IoError(…))`.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_io_error_for_plots_and_csv() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    for flag in ["--plot", "-o"] {
        let out = bin()
            .arg("solve")
            .arg(example("lorenz.gbx"))
            .args(["--at", "0:1:11", flag, "/dev/full"])
            .env("NO_COLOR", "1")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("glassbox::io_error"), "{flag}: {err}");
        assert!(
            err.contains("/dev/full") && err.contains("No space left on device"),
            "{flag}: {err}"
        );
        assert!(!err.contains("ImageError"), "{flag}: {err}");
    }
}

/// A model with per-sample inputs (the digits classifier) has nothing to solve without
/// samples: `solve` says so and names the command that takes them, instead of reporting a
/// buffer of 0 values.
#[test]
fn solve_on_a_model_with_inputs_points_at_predict() {
    let out = bin()
        .arg("solve")
        .arg(example("digits.gbx"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("glassbox::needs_inputs"), "{err}");
    assert!(err.contains("--input rows.csv"), "{err}");
}

/// The `solve` clause's controller options reach the solver: `max_dt = 0.05` over [0, 1] takes
/// at least twenty steps where the default takes a handful, and `--stats` ends with the peak
/// resident set (Linux) of the process.
#[test]
fn step_control_options_reach_the_solver() {
    let dir = std::env::temp_dir().join(format!("gbx-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let accepted = |clause: &str| {
        let model = dir.join("decay.gbx");
        let text = format!("model decay\nstate x = 1\ndx/dt = -x\nsolve {clause} over [0, 1]\n");
        std::fs::write(&model, text).unwrap();
        let o = bin()
            .arg("solve")
            .arg(&model)
            .args(["--stats", "-o"])
            .arg(dir.join("out.csv"))
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stats = String::from_utf8_lossy(&o.stdout).to_string();
        if cfg!(target_os = "linux") {
            assert!(stats.contains("MiB (resident)"), "{stats}");
        }
        let line = stats
            .lines()
            .find(|l| l.starts_with("steps"))
            .expect("steps line");
        let n: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        (n, stats)
    };
    let (free, _) = accepted("tsit5(rtol = 1e-3)");
    let (capped, stats) = accepted("tsit5(rtol = 1e-3, max_dt = 0.05, pcoeff = 0, icoeff = 1)");
    assert!(free < 20, "{free}");
    assert!(capped >= 20, "{stats}");
    std::fs::remove_dir_all(&dir).ok();
}
