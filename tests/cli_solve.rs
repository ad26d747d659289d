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
