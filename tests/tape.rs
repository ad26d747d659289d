//! The tape backend (`src/train/tape`): its gradient equals the discrete adjoint's on the same
//! objective, and `--device cuda` without the `cuda` feature is a diagnostic.
//!
//! Why 1e-10: both differentiate the same replayed steps, and the forward passes round alike
//! (the tape combines stages in the solver's order, and its mat-vecs sum left to right like
//! the JIT kernels), so the losses and regularizers agree to a few ulps. The backward passes
//! differ in order: dfdx's chain rule vs the adjoint's hand-derived partials. Without
//! regularizers that costs ~1e-16; `E` and `S` divide cancelling differences of stages
//! (`ũ = h Σ b̃ k` is ~rtol of `h k`; `g_p − g_q` is small), whose large, nearly cancelling
//! cotangents amplify it: measured ~2e-13 with `R_E`, 1e-11–7e-11 with `R_S`. At rtol 1e-6
//! the same cases reached 2–4e-10, so the regularized cases run at rtol 1e-4 (as
//! `tests/grad.rs` does, for the same reason).

use std::path::{Path, PathBuf};
use std::process::Command;

use glassbox::data;
use glassbox::sema::Model;
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{Backend, DeviceKind, Overrides, Trainer, Weights};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx_tape_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spiral_csv() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/data/spiral.csv")
        .display()
        .to_string()
}

fn write_model(dir: &Path, src: &str) -> PathBuf {
    let path = dir.join("model.gbx");
    std::fs::write(&path, src.replace("DATA", &spiral_csv())).unwrap();
    path
}

fn load(path: &Path) -> (Model, Vec<data::Dataset>) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    let model = checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags));
    let ds = data::load_model(&model, Some(&file), &DiskLoader).unwrap();
    (model, ds)
}

/// The spiral's MLP field (cubed state, tanh) on windows of the spiral data.
const SPIRAL: &str = r#"
model tiny
state y[2] = [2.0, 0.0]
net f = mlp(2, 8, 2; act = tanh)
dy/dt = f(y^3)
data obs = csv("DATA", time = "t", columns = ["y1", "y2"])
solve SOLVE
minimize LOSS(y, obs) + REGS
train adam(lr = 1e-2), iterations = 4, batch = windows(4, length = 7)
"#;

fn model(solve: &str, loss: &str, regs: &str) -> String {
    SPIRAL
        .replace("SOLVE", solve)
        .replace("LOSS", loss)
        .replace("REGS", regs)
}

/// Relative difference of two gradients, in the max norm.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / scale.max(f64::MIN_POSITIVE)
}

/// Evaluates one batch's objective with both backends at the initial weights and at iteration
/// 1's weights (after one adjoint update), and compares.
fn compare(src: &str, name: &str) {
    let dir = tmp(name);
    let path = write_model(&dir, src);
    let (m, ds) = load(&path);
    let mut adj = Trainer::new(&m, ds.clone(), &Overrides::default()).unwrap();
    let mut tape = Trainer::new(&m, ds, &Overrides::default()).unwrap();
    tape.set_backend(Backend::Tape, DeviceKind::Cpu).unwrap();
    let full = load(&path).1.remove(0);
    let mut sampler = data::batch::Sampler::new(7, adj.plan.batch);
    let draw = sampler.next(&full).unwrap();
    let (segs, target) = adj.segments(&draw).unwrap();
    let w: Weights = adj.weights(1);
    for round in 0..2 {
        let theta = adj.state().theta.clone();
        let a = adj.evaluate(&theta, &segs, target.clone(), &w, 1).unwrap();
        let t = tape.evaluate(&theta, &segs, target.clone(), &w, 1).unwrap();
        assert_eq!(a.nfe, t.nfe, "{name}: the same forward solves");
        assert!(
            (a.loss - t.loss).abs() <= 1e-12 * a.loss.abs(),
            "{name}: loss {} vs {}",
            a.loss,
            t.loss
        );
        // The same stages: only the order of summing `E_j|h_j|` over steps and rows differs.
        assert!(
            (a.reg - t.reg).abs() <= 1e-12 * a.reg.abs().max(1e-300),
            "{name}: regularizer {} vs {}",
            a.reg,
            t.reg
        );
        let r = rel(&a.grad, &t.grad);
        eprintln!("{name} round {round}: gradient relative difference {r:e}");
        assert!(
            r <= 1e-10,
            "{name} round {round}: relative difference {r:e}"
        );
        assert!(a.grad.iter().any(|g| *g != 0.0));
        adj.step().unwrap();
    }
}

#[test]
fn tape_equals_adjoint_tsit5_l1_with_and_without_error_estimate() {
    let solve = "tsit5(rtol = 1e-6, atol = 1e-8)";
    compare(&model(solve, "l1", "0.0 * error_estimate"), "plain");
    let solve = "tsit5(rtol = 1e-4, atol = 1e-6)";
    compare(&model(solve, "l1", "0.5 * error_estimate"), "re");
}

#[test]
fn tape_equals_adjoint_with_stiffness_and_weight_decay_mse() {
    let solve = "tsit5(rtol = 1e-4, atol = 1e-6)";
    compare(
        &model(
            solve,
            "mse",
            "decay(0.5 -> 0.05) * error_estimate + 0.01 * stiffness + 1e-3 * weight_decay",
        ),
        "rs",
    );
}

#[test]
fn tape_equals_adjoint_for_other_tableaux_and_interpolants() {
    // Dopri5 (free interpolant), BS3 (FSAL, Hermite), RK4 on a grid (Hermite, no FSAL).
    for (solve, regs, name) in [
        (
            "dopri5(rtol = 1e-4, atol = 1e-6)",
            "0.1 * stiffness",
            "dopri5",
        ),
        ("bs3(rtol = 1e-4, atol = 1e-6)", "0.1 * stiffness", "bs3"),
        // Fixed steps have no estimates to penalise.
        ("rk4(dt = 0.07)", "1e-3 * weight_decay", "rk4"),
    ] {
        compare(&model(solve, "l1", regs), name);
    }
}

#[test]
fn tape_equals_adjoint_for_local_terms() {
    let solve = "tsit5(rtol = 1e-4, atol = 1e-6)";
    compare(
        &model(
            solve,
            "l1",
            "0.1 * error_estimate(sample = unbiased) + 0.1 * stiffness(sample = biased)",
        ),
        "local",
    );
}

fn glassbox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
}

#[test]
fn cli_trains_with_the_tape_backend() {
    let dir = tmp("cli");
    let path = write_model(
        &dir,
        &model(
            "tsit5(rtol = 1e-6, atol = 1e-8)",
            "l1",
            "0.1 * error_estimate",
        ),
    );
    let out = glassbox()
        .args(["train", path.to_str().unwrap(), "--iterations", "2"])
        .args(["--backend", "tape", "--out"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("run/weights.safetensors").is_file());
}

#[cfg(not(feature = "cuda"))]
#[test]
fn device_cuda_without_the_feature_is_a_diagnostic() {
    let dir = tmp("cuda");
    let path = write_model(
        &dir,
        &model(
            "tsit5(rtol = 1e-6, atol = 1e-8)",
            "l1",
            "0.0 * error_estimate",
        ),
    );
    let out = glassbox()
        .args(["train", path.to_str().unwrap(), "--device", "cuda", "--out"])
        .arg(dir.join("run"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("glassbox::cuda_not_built") && err.contains("--features cuda"),
        "{err}"
    );
    // The adjoint backend does not run on CUDA, feature or not.
    let out = glassbox()
        .args(["train", path.to_str().unwrap(), "--device", "cuda"])
        .args(["--backend", "adjoint", "--out"])
        .arg(dir.join("run"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("glassbox::train_backend"));
}
