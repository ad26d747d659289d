//! Trajectory windows trained batched (`src/train/windows.rs`) on
//! `benches/models/spiral_wide.gbx` (the spiral, field 2→64→64→2 tanh: its 64·64 layer is a
//! GEMM): the choice is automatic and reported, the gradient is the per-window path's to
//! rounding with every solver regularizer (whole trajectories too), the weights are
//! bit-identical at 1, 2 and 3 threads, an integral term falls back to the per-window path,
//! and `glassbox train` on the file says which path ran (summary and `run.json`).

use std::path::PathBuf;
use std::process::Command;

use glassbox::data::Dataset;
use glassbox::sema::{Model, Stop};
use glassbox::solve::BatchControl;
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{Overrides, Segment, Trainer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_path() -> PathBuf {
    root().join("benches/models/spiral_wide.gbx")
}

/// The model file with its objective's regularizers replaced by `regs` (read from the file's
/// own path, so its data path resolves), at rtol = 1e-4 (see the regularizers' test).
fn load(regs: &str) -> (Model, Vec<Dataset>) {
    load_windows(regs, 64)
}

/// [`load`] with `count` windows an iteration.
fn load_windows(regs: &str, count: u64) -> (Model, Vec<Dataset>) {
    let path = model_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = (text.replace("+ 0.3 * error_estimate", regs))
        .replace("rtol = 1e-7, atol = 1e-9", "rtol = 1e-4, atol = 1e-6")
        .replace("windows(64,", &format!("windows({count},"));
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    let m = checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags));
    let ds = glassbox::data::load_model(&m, Some(&file), &DiskLoader).unwrap();
    (m, ds)
}

/// Both global solver regularizers and a sampled local one.
const REGS: &str =
    "+ 0.3 * error_estimate + 0.01 * stiffness + 0.05 * error_estimate(sample = unbiased)";

fn trainer(m: &Model, ds: Vec<Dataset>, threads: usize, iterations: u64) -> Trainer {
    let ov = Overrides {
        threads: Some(threads),
        stop: Some(Stop::Iterations { n: iterations }),
        ..Default::default()
    };
    Trainer::new(m, ds, &ov).unwrap()
}

/// 40 windows of 10 observations (one full chunk of 32 and a partial one), spread over the
/// spiral, and their targets.
fn windows(ds: &[Dataset]) -> (Vec<Segment>, Vec<f64>) {
    let Dataset::Trajectories { paths, .. } = &ds[0] else {
        panic!("trajectories")
    };
    let p = &paths[0];
    let (mut segs, mut target) = (Vec::new(), Vec::new());
    for w in 0..40 {
        let s = w * 23;
        let y = p.y.slice(ndarray::s![s..s + 10, ..]);
        segs.push(Segment {
            t: p.t.slice(ndarray::s![s..s + 10]).to_vec(),
            u0: y.row(0).to_vec(),
        });
        target.extend(y.iter().copied());
    }
    (segs, target)
}

/// The batched segments' loss, regularizers, NFE and gradient are the per-segment path's: the
/// loss to 1e-12, the regularizers and the gradient to `tol` (of the gradient's scale). The
/// accepted steps are the same (NFE equal); the GEMMs sum in another order, which moves the
/// states by a few ulps per step (`tests/suite/batched.rs`). `segments` picks the segments.
fn same_as_per_segment(
    (m, ds): (Model, Vec<Dataset>),
    segments: impl Fn(&Trainer, &[Dataset]) -> (Vec<Segment>, Vec<f64>),
    tol: f64,
) {
    let mut batched = trainer(&m, ds.clone(), 2, 1);
    let path = batched.training_path().unwrap();
    assert!(
        path.batched && path.control == BatchControl::PerRow,
        "{path:?}"
    );
    assert!(path.describe().contains("batched forward and adjoint"));
    let mut alone = trainer(&m, ds.clone(), 2, 1);
    alone.train_per_row();
    assert!(!alone.training_path().unwrap().batched);
    let (segs, target) = segments(&batched, &ds);
    let theta = batched.state().theta.clone();
    let w = batched.weights(0);
    let a = batched
        .evaluate(&theta, &segs, target.clone(), &w, 0)
        .unwrap();
    let b = alone.evaluate(&theta, &segs, target, &w, 0).unwrap();
    assert_eq!(a.nfe, b.nfe, "the same steps");
    let close = |x: f64, y: f64, tol: f64| (x - y).abs() <= tol * y.abs();
    assert!(close(a.loss, b.loss, 1e-12), "{} vs {}", a.loss, b.loss);
    assert!(close(a.reg, b.reg, tol), "{} vs {}", a.reg, b.reg);
    let scale = b.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(scale > 0.0);
    for (i, (x, y)) in a.grad.iter().zip(&b.grad).enumerate() {
        assert!((x - y).abs() <= tol * scale, "grad[{i}]: {x} vs {y}");
    }
}

/// [`same_as_per_segment`] on [`windows`] of the model file with `regs`.
fn same_as_per_window(regs: &str, tol: f64) {
    same_as_per_segment(load(regs), |_, ds| windows(ds), tol);
}

/// The data loss alone: measured 3.5e-14 of the gradient's scale apart (40 windows of about
/// two steps each); 1e-12 allows for other rounding, and a wrong or missing term (a window's
/// `dL/du` at the wrong save, a chunk counted twice or left out) moves it by 1e-3 or more.
#[test]
fn batched_windows_give_the_per_window_gradient() {
    same_as_per_window("", 1e-12);
}

/// With `R_E`, `R_S` and a sampled local `R_E`. These windows are one or two steps each, cut
/// short by their spans, so their `E_j` and `S_j` are far below 1: differences of nearly
/// equal stage sums divided by `rtol·|u|`, whose rounding relative to them is about
/// 1e-16/(rtol·E_j) (at rtol = 1e-7, 3e-4 of `R_E`: why this file solves at 1e-4). Measured
/// at rtol = 1e-4: `R_E` 4e-10, `R_S` 1e-9 and the gradient 1e-9 of its scale apart; 1e-7 is
/// above that and far below a regularizer left out or counted twice (the global ones are 1e-3
/// of the loss; the sampled one is the same code on both paths, equal bit for bit here).
#[test]
fn batched_windows_give_the_per_window_gradient_with_regularizers() {
    same_as_per_window(REGS, 1e-7);
}

/// Three iterations (100 windows each: three chunks of 32 and one of 4) on 1, 2 and 3 threads
/// give the same losses, regularizers, NFE and weights bit for bit.
#[test]
fn batched_window_training_is_bit_identical_at_any_thread_count() {
    let (m, ds) = load_windows(REGS, 100);
    let run = |threads: usize| {
        let mut t = trainer(&m, ds.clone(), threads, 3);
        assert!(t.training_path().unwrap().batched);
        let mut bits = Vec::new();
        let mut losses = Vec::new();
        while !t.done() {
            let s = t.step().unwrap();
            bits.extend([s.loss.to_bits(), s.reg.to_bits(), s.nfe]);
            losses.push(s.loss);
        }
        bits.extend(t.state().theta.iter().map(|x| x.to_bits()));
        (bits, losses)
    };
    let (one, losses) = run(1);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert_eq!(run(2).0, one, "2 threads");
    assert_eq!(run(3).0, one, "3 threads");
}

/// The integral terms are folded into the single-row sweep only: a plan with one trains one
/// window at a time, and says so.
#[test]
fn an_integral_term_trains_per_window() {
    let (m, ds) = load("+ 1e-3 * kinetic");
    let mut t = trainer(&m, ds, 2, 1);
    let path = t.training_path().unwrap();
    assert!(!path.batched, "{path:?}");
    assert_eq!(path.describe(), "per-row forward and adjoint");
    assert!(t.step().unwrap().reg > 0.0);
}

/// `glassbox train` on the model file trains batched and reports it: the summary's `training
/// path` line and `run.json`'s `report.training`.
#[test]
fn cli_reports_the_batched_windows_path() {
    let dir = root()
        .join("target")
        .join("cli-tests")
        .join("batched_windows");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["train", model_path().to_str().unwrap(), "--iterations", "2"])
        .args(["--threads", "2", "--out", dir.join("run").to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("training path     batched forward and adjoint (per_row step control, chunks of 32 rows)"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run/run.json")).unwrap()).unwrap();
    let training = &json["report"]["training"];
    assert_eq!(training["batched"], true, "{training}");
    assert_eq!(training["control"], "per_row");
    assert_eq!(training["chunk_rows"], 32);
}

/// Whole trajectories batch the same way: 12 of the spiral SDE's 100 sample paths (each from
/// the model's constant initial state, saved at the path's 20 times) as one iteration's
/// segments, an ODE with the wide field fitted to them. The batched gradient is the
/// per-trajectory one to rounding: measured 1e-13 of its scale apart; 1e-11 allows for other
/// CPUs' GEMM kernels and is far below a wrong or missing term (1e-3 or more).
#[test]
fn whole_trajectories_give_the_per_trajectory_gradient() {
    let data = root().join("examples/data/spiral_sde.csv");
    let src = format!(
        r#"model paths_wide
state u[2] = [2.0, 0.0]
net f = mlp(2, 64, 64, 2; act = tanh)
du/dt = f(u)
data obs = csv("{}", time = "t", columns = ["u1", "u2"], group = "path")
solve tsit5(rtol = 1e-6, atol = 1e-8)
minimize mse(u, obs)
train adam(lr = 1e-3), iterations = 1, batch = 12
"#,
        data.display()
    );
    let file = SourceFile::new("paths_wide.gbx".to_string(), src);
    let m = glassbox::check_source(&file, &DiskLoader).model.unwrap();
    let ds = glassbox::data::load_model(&m, Some(&file), &DiskLoader).unwrap();
    let draw = glassbox::data::batch::Draw::Samples((0..12).map(|i| i * 7).collect());
    same_as_per_segment((m, ds), |t, _| t.segments(&draw).unwrap(), 1e-11);
}
