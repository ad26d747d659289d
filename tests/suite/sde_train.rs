//! SDE training: the SDE discrete adjoint (`grad::sde_adjoint`) against central differences on
//! a fixed Brownian path for every SDE method, the `moments` and mean-path losses through the
//! whole dfdx path against differences, an Ornstein–Uhlenbeck fit recovering its parameters,
//! determinism and resume, and the SDE trainer's diagnostics.
//!
//! Why central differences reach 1e-6 here: every solve is on a fixed grid (`dt`), so the
//! perturbed solves take the same steps on the same Brownian path (the tree is a pure function
//! of `(seed, path, t)`), and the loss is a smooth function of `(p, u0)`; with ε = 1e-6 the
//! truncation error is O(ε²) ≈ 1e-12 and the rounding error ≈ 1e-16/ε = 1e-10, relative.

use std::path::{Path, PathBuf};
use std::process::Command;

use glassbox::data;
use glassbox::grad::{
    JitSdeVjp, Sampling, SdeRegularizer, recorded_regularizers, sde_adjoint, sde_adjoint_with,
    sde_local_step, sde_local_term, sde_sample,
};
use glassbox::sema::Model;
use glassbox::solve::sde::{
    BrownianTree, SdeField, SdeOptions, sde_method, solve_path, tree_depth,
};
use glassbox::solve::{Solution, param_values};
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{Overrides, Trainer, Weights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx_sdetrain_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check(path: &Path) -> (Model, std::sync::Arc<SourceFile>) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    let model = checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags));
    (model, file)
}

fn model_from(dir: &Path, src: &str) -> Model {
    let path = dir.join("model.gbx");
    std::fs::write(&path, src).unwrap();
    check(&path).0
}

fn load(path: &Path) -> (Model, Vec<data::Dataset>) {
    let (model, file) = check(path);
    let ds = data::load_model(&model, Some(&file), &DiskLoader).unwrap();
    (model, ds)
}

fn ou_data() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/data/ou.csv")
        .display()
        .to_string()
}

/// Nonlinear drift, state-dependent diagonal noise (the second component's also reads the
/// first: non-commutative, which Milstein and SRI still compute, and the adjoint differentiates).
const DIAGONAL: &str = r#"
model g
state x = 0.8, y = -0.4
param a = 0.7, b = -0.3, s = 0.4, c = 0.25
dx = (a * x - x^3 + b * y) dt + s * cos(x) dW
dy = (-y + a * sin(x) + t) dt + (c * y + s * x * x) dW
solve euler_maruyama(dt = 0.05) over [0, 1]
"#;

/// Additive (time-dependent) noise, for the SRA methods.
const ADDITIVE: &str = r#"
model ga
state x = 0.8, y = -0.4
param a = 0.7, b = -0.3, s = 0.4, c = 0.25
dx = (a * x - x^3 + b * y) dt + s * (1 + t) dW
dy = (-y + a * sin(x)) dt + c * s dW
solve sra1 over [0, 1]
"#;

fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    (num / den.max(1e-300)).sqrt()
}

/// `L = Σ c · u(saves)` of one path; the adjoint and central differences in `p` (random
/// direction and each coordinate) and in each `u0` component.
fn check_method(model: &Model, method: &str, seed: u64) {
    let m = sde_method(method).unwrap();
    let milstein = method == "milstein";
    let p0 = param_values(model);
    let u0 = vec![0.8, -0.4];
    let opts = SdeOptions {
        dt: Some(0.05),
        save_at: vec![0.0, 0.25, 0.5, 0.6, 1.0],
        ..Default::default()
    };
    let mut f = JitSdeVjp::new(model, &p0, &[], milstein).unwrap();
    let m_proc = f.noise().processes();
    let tree = BrownianTree::with_depth(seed, 3, 0.0, 1.0, m_proc, tree_depth(0.0, 1.0, &opts));
    let sol = solve_path(m, &mut f, &u0, &opts, &tree).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c: Vec<f64> = (0..sol.us.len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let g = sde_adjoint(m, &mut f, &sol, &u0, &tree, &c).unwrap();
    let loss = |f: &mut JitSdeVjp, p: &[f64], u0: &[f64]| -> f64 {
        f.set_params(p).unwrap();
        let s: Solution = solve_path(m, f, u0, &opts, &tree).unwrap();
        s.us.iter().zip(&c).map(|(a, b)| a * b).sum()
    };
    let (got, want) =
        central_differences(|p, u| loss(&mut f, p, u), &p0, &u0, &g.dp, &g.du0, &mut rng);
    let e = rel_err(&got, &want);
    assert!(
        e <= 1e-6,
        "{method}: relative error {e:e}\n got {got:?}\nwant {want:?}"
    );
    assert!(
        want.iter().all(|w| w.abs() > 1e-8),
        "{method}: a vanishing derivative tests nothing: {want:?}"
    );
}

#[test]
fn sde_adjoint_matches_central_differences_for_every_method() {
    let dir = tmp("adjoint");
    let diag = model_from(&dir, DIAGONAL);
    for method in ["euler_maruyama", "euler_heun", "milstein", "sriw1", "sosri"] {
        check_method(&diag, method, 11);
    }
    let add = model_from(&dir, ADDITIVE);
    for method in ["sra1", "sosra", "euler_maruyama"] {
        check_method(&add, method, 12);
    }
}

#[test]
fn sde_adjoint_refuses_another_brownian_path() {
    let dir = tmp("refuse");
    let model = model_from(&dir, DIAGONAL);
    let m = sde_method("euler_maruyama").unwrap();
    let p = param_values(&model);
    let mut f = JitSdeVjp::new(&model, &p, &[], false).unwrap();
    let opts = SdeOptions {
        dt: Some(0.1),
        ..Default::default()
    };
    let depth = tree_depth(0.0, 1.0, &opts);
    let tree = BrownianTree::with_depth(1, 0, 0.0, 1.0, 2, depth);
    let other = BrownianTree::with_depth(2, 0, 0.0, 1.0, 2, depth);
    let u0 = [0.8, -0.4];
    let sol = solve_path(m, &mut f, &u0, &opts, &tree).unwrap();
    let seeds = vec![1.0; sol.us.len()];
    assert!(sde_adjoint(m, &mut f, &sol, &u0, &tree, &seeds).is_ok());
    let e = sde_adjoint(m, &mut f, &sol, &u0, &other, &seeds).unwrap_err();
    assert!(e.to_string().contains("does not reproduce"), "{e}");
    let milstein = sde_method("milstein").unwrap();
    assert!(sde_adjoint(milstein, &mut f, &sol, &u0, &tree, &seeds).is_err());
    assert!(sde_adjoint(m, &mut f, &sol, &u0, &tree, &seeds[1..]).is_err());
}

/// A small OU model on the OU data: `LOSS` and `SAMPLES` replaced.
const OU: &str = r#"
model ou
state x = 2.0
param theta = 1.2 learn, mu = 0.2 learn, sigma = 0.3 learn
dx = theta * (mu - x) dt + sigma * (1 + 0.1 * x * x) dW
solve METHOD(dt = 0.1)
data paths = csv("DATA", time = "t", columns = ["x"], group = "path")
minimize LOSS
train adam(lr = 0.05), iterations = ITERS
"#;

fn ou_model(dir: &Path, method: &str, loss: &str, iters: u64) -> (Model, Vec<data::Dataset>) {
    let src = OU
        .replace("METHOD", method)
        .replace("LOSS", loss)
        .replace("ITERS", &iters.to_string())
        .replace("DATA", &ou_data());
    let path = dir.join("ou.gbx");
    std::fs::write(&path, src).unwrap();
    load(&path)
}

/// The whole objective (paths node, moments or mean loss, weight decay) through dfdx against
/// central differences of the objective itself at the same iteration (same Brownian paths).
#[test]
fn moments_and_mean_losses_match_central_differences() {
    let dir = tmp("moments");
    for (method, loss) in [
        (
            "euler_maruyama",
            "moments(x, paths; samples = 6) + 1e-2 * weight_decay",
        ),
        ("euler_heun", "2 * moments(x, paths; samples = 5)"),
        ("euler_maruyama", "mse(x, paths)"),
        ("euler_heun", "l1(x, paths)"),
    ] {
        let (model, ds) = ou_model(&dir, method, loss, 3);
        let mut t = Trainer::new(&model, ds, &Overrides::default()).unwrap();
        let theta = t.state().theta.clone();
        let w = Weights::default();
        let ev = t.evaluate(&theta, &[], Vec::new(), &w, 1).unwrap();
        let eps = 1e-6;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut dirs: Vec<Vec<f64>> = (0..theta.len())
            .map(|i| (0..theta.len()).map(|j| f64::from(i == j)).collect())
            .collect();
        dirs.push(
            (0..theta.len())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect(),
        );
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for d in &dirs {
            let tp: Vec<f64> = theta.iter().zip(d).map(|(a, b)| a + eps * b).collect();
            let tm: Vec<f64> = theta.iter().zip(d).map(|(a, b)| a - eps * b).collect();
            let lp = t.evaluate(&tp, &[], Vec::new(), &w, 1).unwrap().loss;
            let lm = t.evaluate(&tm, &[], Vec::new(), &w, 1).unwrap().loss;
            want.push((lp - lm) / (2.0 * eps));
            got.push(ev.grad.iter().zip(d).map(|(a, b)| a * b).sum::<f64>());
        }
        let e = rel_err(&got, &want);
        assert!(
            e <= 1e-6,
            "{method} {loss}: {e:e}\n got {got:?}\nwant {want:?}"
        );
        // Another iteration draws other Brownian paths: another loss.
        let other = t.evaluate(&theta, &[], Vec::new(), &w, 2).unwrap().loss;
        assert_ne!(other, ev.loss, "{loss}");
    }
}

/// OU with θ = 2, μ = 0.5, σ = 0.4 (the data, exact transitions, 200 paths), fitted from
/// θ = 1, μ = 0, σ = 0.2 with Euler–Maruyama at dt = 0.05 and 100 model paths per iteration.
///
/// Tolerances (θ within 20 %, μ within 0.1, σ within 20 %): the data's own moments carry
/// sampling error (variance ±10 % for 200 paths, so σ ±5 %; the mean ±0.03), the model's 100
/// fresh paths per iteration make the last Adam steps jitter by about the learning rate, and
/// Euler–Maruyama at dt = 0.05 decays the mean by (1 − θ dt)^k instead of e^(−θt), a bias of
/// about 5 % in θ. The loss must also drop at least tenfold.
#[test]
fn ou_fit_recovers_its_parameters() {
    let dir = tmp("oufit");
    let src = r#"
model ou
state x = 2.0
param theta = 1.0 learn, mu = 0.0 learn, sigma = 0.2 learn
dx = theta * (mu - x) dt + sigma dW
solve euler_maruyama(dt = 0.05)
data paths = csv("DATA", time = "t", columns = ["x"], group = "path")
minimize moments(x, paths; samples = 100)
train adam(lr = 0.05), iterations = 150, seed = 3
"#
    .replace("DATA", &ou_data());
    let path = dir.join("ou.gbx");
    std::fs::write(&path, src).unwrap();
    let (model, ds) = load(&path);
    let mut t = Trainer::new(&model, ds, &Overrides::default()).unwrap();
    while !t.done() {
        t.step().unwrap();
    }
    let p = t.params();
    let (theta, mu, sigma) = (p[0], p[1], p[2]);
    let m = &t.state().metrics;
    let first = m[0].loss;
    let last: f64 = m[m.len() - 10..].iter().map(|x| x.loss).sum::<f64>() / 10.0;
    assert!(last < first / 10.0, "loss {first} -> {last}");
    assert!((theta - 2.0).abs() < 0.4, "theta {theta}");
    assert!((mu - 0.5).abs() < 0.1, "mu {mu}");
    assert!((sigma - 0.4).abs() < 0.08, "sigma {sigma}");
}

#[test]
fn same_seed_same_weights_and_resume_equals_uninterrupted() {
    let dir = tmp("seed");
    let run = |seed: u64, n: u64| {
        let (model, ds) = ou_model(&dir, "euler_maruyama", "moments(x, paths; samples = 8)", 4);
        let ov = Overrides {
            seed: Some(seed),
            ..Default::default()
        };
        let mut t = Trainer::new(&model, ds, &ov).unwrap();
        for _ in 0..n {
            t.step().unwrap();
        }
        t
    };
    let a = run(7, 4).state().theta.clone();
    let b = run(7, 4).state().theta.clone();
    assert_eq!(a, b);
    assert_ne!(a, run(8, 4).state().theta.clone());
    let half = run(7, 2).state().clone();
    let json = glassbox::train::io::state_to_json(&half);
    let state = glassbox::train::io::state_from_json(&json).unwrap();
    let (model, ds) = ou_model(&dir, "euler_maruyama", "moments(x, paths; samples = 8)", 4);
    let ov = Overrides {
        seed: Some(7),
        ..Default::default()
    };
    let mut r = Trainer::resume(&model, ds, &ov, state).unwrap();
    while !r.done() {
        r.step().unwrap();
    }
    assert_eq!(r.state().theta, a);
}

fn train_err(dir: &Path, src: &str) -> String {
    let path = dir.join("bad.gbx");
    std::fs::write(&path, src.replace("DATA", &ou_data())).unwrap();
    let (model, ds) = load(&path);
    match Trainer::new(&model, ds, &Overrides::default()) {
        Ok(_) => panic!("expected a diagnostic for\n{src}"),
        Err(d) => format!("{} {}", d.code, d.message),
    }
}

#[test]
fn what_sde_training_cannot_do_is_a_diagnostic() {
    let dir = tmp("diag");
    let base = OU.replace("METHOD", "euler_maruyama").replace("ITERS", "2");
    let e = train_err(
        &dir,
        &base.replace("LOSS", "moments(x, paths)").replace(
            "iterations = 2",
            "iterations = 2, batch = windows(2, length = 3)",
        ),
    );
    assert!(
        e.contains("train_unsupported") && e.contains("batches"),
        "{e}"
    );
    let e = train_err(
        &dir,
        &base.replace("LOSS", "moments(x, paths; samples = 1)"),
    );
    assert!(e.contains("2 sample paths"), "{e}");
    // The spiral SDE example's `error_estimate` term (sosri's R_E) trains.
    let (model, ds) = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/spiral_sde.gbx"));
    let plan = glassbox::train::plan(&model, &Overrides::default()).unwrap();
    assert_eq!(plan.regularizers.len(), 1);
    assert!(Trainer::new(&model, ds, &Overrides::default()).is_ok());
}

/// `glassbox train` on the example: trains, writes weights and run.json; `predict` writes the
/// mean path.
#[test]
fn cli_trains_the_ou_example_and_predicts() {
    let dir = tmp("cli");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ou_fit.gbx");
    let out = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args([
            "train",
            example.to_str().unwrap(),
            "--iterations",
            "2",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("final loss"), "{text}");
    assert!(dir.join("weights.safetensors").exists());
    let run = std::fs::read_to_string(dir.join("run.json")).unwrap();
    assert!(run.contains("\"moments\": true"), "{run}");
    let csv = dir.join("mean.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["predict", example.to_str().unwrap(), "--weights"])
        .arg(&dir)
        .args(["--at", "0:2:5", "-o"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 6, "{csv}");
}

/// `L = Σ c · u(saves) + w_E · R_E + w_S · R_S` on one adaptive path, `R_E = Σ_j E_j |h_j|`
/// the adaptive SDE methods' error estimate (drift part δ·E1 plus diffusion part E2),
/// `R_S = Σ_j S_j |h_j|` their stiffness estimate (the drift secant at one abscissa). The
/// adaptive solve's accepted steps are then replayed as a fixed sequence (`dt` = the span,
/// saved at every step end: the steps land on the saves) on the same Brownian tree: same steps
/// and same recorded `E_j`, `S_j`, bit for bit, and a smooth function of `(p, u0)`, which
/// central differences can check. `R_E`, `R_S` as the adjoint recomputes them equal the
/// solver's per-step report.
fn check_regularizer(
    model: &Model,
    method: &str,
    seed: u64,
    data_weight: f64,
    (we, ws): (f64, f64),
) {
    let m = sde_method(method).unwrap();
    let p0 = param_values(model);
    let u0 = vec![0.8, -0.4];
    let adaptive = SdeOptions {
        rtol: 1e-2,
        atol: 1e-2,
        save_at: vec![0.0, 0.5, 1.0],
        ..Default::default()
    };
    let mut f = JitSdeVjp::new(model, &p0, &[], false).unwrap();
    let procs = f.noise().processes();
    let tree = BrownianTree::with_depth(seed, 1, 0.0, 1.0, procs, tree_depth(0.0, 1.0, &adaptive));
    let sol = solve_path(m, &mut f, &u0, &adaptive, &tree).unwrap();
    assert!(sol.steps.len() >= 5, "{method}: {} steps", sol.steps.len());
    let ends: Vec<f64> = sol.steps.iter().map(|s| s.t + s.h).collect();
    let fixed = SdeOptions {
        dt: Some(1.0),
        save_at: ends,
        ..adaptive.clone()
    };
    let replay = solve_path(m, &mut f, &u0, &fixed, &tree).unwrap();
    assert_eq!(replay.steps.len(), sol.steps.len(), "{method}");
    for (a, b) in replay.steps.iter().zip(&sol.steps) {
        assert_eq!(a.h.to_bits(), b.h.to_bits(), "{method}: step sizes");
        assert_eq!(a.error_estimate, b.error_estimate, "{method}: E_j");
        assert_eq!(a.stiffness_estimate, b.stiffness_estimate, "{method}: S_j");
    }
    let recorded = recorded_regularizers(&sol);
    assert!(
        recorded.0 > 0.0 && recorded.1 > 0.0,
        "{method}: {recorded:?}"
    );

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c: Vec<f64> = (0..replay.us.len())
        .map(|_| data_weight * rng.random_range(-1.0..1.0))
        .collect();
    let reg = SdeRegularizer {
        opts: &fixed,
        error_weight: we,
        stiffness_weight: ws,
    };
    let (g, (r_e, r_s)) = sde_adjoint_with(m, &mut f, &replay, &u0, &tree, &c, &reg).unwrap();
    assert!(
        (r_e - recorded.0).abs() <= 1e-13 * recorded.0,
        "{method}: R_E {r_e} vs the solver's {}",
        recorded.0
    );
    if ws != 0.0 {
        assert!(
            (r_s - recorded.1).abs() <= 1e-13 * recorded.1,
            "{method}: R_S {r_s} vs the solver's {}",
            recorded.1
        );
    }
    let loss = |f: &mut JitSdeVjp, p: &[f64], u0: &[f64]| -> f64 {
        f.set_params(p).unwrap();
        let s: Solution = solve_path(m, f, u0, &fixed, &tree).unwrap();
        let data: f64 = s.us.iter().zip(&c).map(|(a, b)| a * b).sum();
        let (r_e, r_s) = recorded_regularizers(&s);
        data + we * r_e + ws * r_s
    };
    let (got, want) =
        central_differences(|p, u| loss(&mut f, p, u), &p0, &u0, &g.dp, &g.du0, &mut rng);
    let e = rel_err(&got, &want);
    eprintln!("{method} (data {data_weight}, w_E {we}, w_S {ws}): relative error {e:.1e}");
    assert!(
        e <= 1e-6,
        "{method} (data weight {data_weight}): relative error {e:e}\n got {got:?}\nwant {want:?}"
    );
    assert!(
        want.iter().filter(|w| w.abs() > 1e-8).count() >= want.len() - 1,
        "{method}: vanishing derivatives test nothing: {want:?}"
    );
    // Without the weight the regularizer's part is gone: the gradients differ.
    let none = SdeRegularizer {
        opts: &fixed,
        error_weight: 0.0,
        stiffness_weight: 0.0,
    };
    let (g0, _) = sde_adjoint_with(m, &mut f, &replay, &u0, &tree, &c, &none).unwrap();
    assert!(
        rel_err(&g0.dp, &g.dp) > 1e-3,
        "{method}: the regularizer adds nothing"
    );
}

#[test]
fn error_regularizer_of_adaptive_sde_methods_matches_central_differences() {
    let dir = tmp("sdereg");
    let diag = model_from(&dir, DIAGONAL);
    let add = model_from(&dir, ADDITIVE);
    for (model, method, seed) in [
        (&diag, "sriw1", 21),
        (&diag, "sosri", 22),
        (&add, "sra1", 23),
        (&add, "sosra", 24),
    ] {
        // The regularizer alone, then with a data loss.
        check_regularizer(model, method, seed, 0.0, (0.7, 0.0));
        check_regularizer(model, method, seed, 1.0, (0.7, 0.0));
    }
}

/// DIAGONAL with a drift whose derivatives read `t` (`b·t·x`: a VJP at another time differs).
fn diagonal_t() -> String {
    DIAGONAL.replace(" + t) dt", " + b * t * x) dt")
}

/// `R_S` (SRNODE for SDEs) alone and with a data loss and `R_E`, for the SRI and SRA methods,
/// each on a drift that reads `t` (the secant's second value is a drift evaluation of its own,
/// differentiated through one more VJP, at the pair's abscissa) and on one that does not (it
/// is a stage value).
#[test]
fn stiffness_regularizer_of_adaptive_sde_methods_matches_central_differences() {
    let dir = tmp("sdestiff");
    let diag_t = model_from(&dir, &diagonal_t());
    let diag = model_from(&dir, &DIAGONAL.replace(" + t) dt", ") dt"));
    let add = model_from(&dir, ADDITIVE);
    let add_t = model_from(
        &dir,
        &ADDITIVE.replace("a * sin(x))", "a * sin(x) + a * t * y)"),
    );
    for (model, method, seed) in [
        (&diag_t, "sriw1", 41),
        (&diag, "sriw1", 42),
        (&diag_t, "sosri", 43),
        (&diag, "sosri", 44),
        (&add, "sra1", 45),
        (&add_t, "sra1", 46),
        (&add, "sosra", 47),
        (&add_t, "sosra", 48),
    ] {
        check_regularizer(model, method, seed, 0.0, (0.0, 0.4));
        check_regularizer(model, method, seed, 1.0, (0.3, 0.4));
    }
}

/// The whole objective with `error_estimate` through the SDE trainer (paths node, moments,
/// `R_E` averaged over the paths) against central differences of `loss + reg` at the same
/// iteration. The plan's options get `dt = 0.1` (the model file cannot give an adaptive
/// method `dt`): sosri on a fixed grid still records `E_j`, on steps that do not move with θ.
#[test]
fn sde_trainer_error_estimate_matches_central_differences() {
    for term in ["error_estimate", "stiffness"] {
        check_trainer_regularizer(term);
    }
}

/// The trainer test above for one term (`R_S` of the OU drift `θ(μ − x)` is `|θ|·T` exactly:
/// the secant of a linear drift is its slope).
fn check_trainer_regularizer(term: &str) {
    let dir = tmp(&format!("sdereg_train_{term}"));
    let src = OU
        .replace("METHOD(dt = 0.1)", "sosri(rtol = 1e-2, atol = 1e-2)")
        .replace(
            "LOSS",
            &format!("moments(x, paths; samples = 4) + 0.3 * {term}"),
        )
        .replace("ITERS", "3")
        .replace("DATA", &ou_data());
    let path = dir.join("ou.gbx");
    std::fs::write(&path, src).unwrap();
    let (model, ds) = load(&path);
    let mut t = Trainer::new(&model, ds, &Overrides::default()).unwrap();
    let sp = t.plan.sde.as_mut().unwrap();
    assert_eq!(sp.opts.stiffness, term == "stiffness", "S_j only when read");
    sp.opts.dt = Some(0.1);
    let theta = t.state().theta.clone();
    let w = t.weights(1);
    assert_eq!(
        (w.error, w.stiffness),
        if term == "stiffness" {
            (0.0, 0.3)
        } else {
            (0.3, 0.0)
        }
    );
    let ev = t.evaluate(&theta, &[], Vec::new(), &w, 1).unwrap();
    assert!(ev.reg > 0.0, "{term} is reported: {}", ev.reg);
    if term == "stiffness" {
        // Mean over the paths of Σ_j |θ| h_j = |θ|·2 (θ = 1.2, the span [0, 2]).
        let want = 0.3 * 1.2 * 2.0;
        assert!((ev.reg - want).abs() <= 1e-12, "{} vs {want}", ev.reg);
    }
    let no_reg = t
        .evaluate(&theta, &[], Vec::new(), &Weights::default(), 1)
        .unwrap();
    assert_eq!(no_reg.reg, 0.0);
    assert_eq!(no_reg.loss, ev.loss, "the data loss does not see R_E");
    let eps = 1e-6;
    let total = |t: &mut Trainer, th: &[f64]| {
        let e = t.evaluate(th, &[], Vec::new(), &w, 1).unwrap();
        e.loss + e.reg
    };
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for i in 0..theta.len() {
        let (mut tp, mut tm) = (theta.clone(), theta.clone());
        tp[i] += eps;
        tm[i] -= eps;
        want.push((total(&mut t, &tp) - total(&mut t, &tm)) / (2.0 * eps));
        got.push(ev.grad[i]);
    }
    let e = rel_err(&got, &want);
    assert!(e <= 1e-6, "{term}: {e:e}\n got {got:?}\nwant {want:?}");
    assert!(
        rel_err(&no_reg.grad, &ev.grad) > 1e-4,
        "{term}: the regularizer changes the gradient"
    );
}

fn check_errors(dir: &Path, src: &str) -> Vec<glassbox::diag::Diag> {
    let path = dir.join("bad_check.gbx");
    std::fs::write(&path, src.replace("DATA", &ou_data())).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let file = SourceFile::new(path.display().to_string(), text);
    glassbox::check_source(&file, &DiskLoader).diags
}

#[test]
fn sde_regularizers_the_trainer_cannot_take_are_diagnostics() {
    let dir = tmp("sdereg_diag");
    let base = OU
        .replace("ITERS", "2")
        .replace("METHOD(dt = 0.1)", "sosri");
    for (loss, what) in [
        ("moments(x, paths) + 0.1 * kinetic", "`kinetic`"),
        ("moments(x, paths) + 0.1 * taylor(2)", "`taylor`"),
    ] {
        let src = base.replace("LOSS", loss);
        let path = dir.join("bad.gbx");
        std::fs::write(&path, src.replace("DATA", &ou_data())).unwrap();
        let (model, ds) = load(&path);
        let e = Trainer::new(&model, ds, &Overrides::default())
            .err()
            .unwrap_or_else(|| panic!("{loss} trains"));
        assert_eq!(e.code, "glassbox::train_unsupported", "{e:?}");
        assert!(e.message.contains(what), "{loss}: {e:?}");
        let span = e.labels.first().expect("a span").span;
        let text = std::fs::read_to_string(&path).unwrap();
        let term = format!("0.1 * {}", loss.split(" + 0.1 * ").nth(1).unwrap());
        let at = text.find(&term).unwrap();
        assert_eq!((span.start, span.end), (at, at + term.len()), "{loss}");
        assert!(e.help.is_some(), "{e:?}");
    }
    // A fixed-step SDE method has no error or stiffness estimate: refused by the checker, its
    // help naming the adaptive SDE methods.
    for term in ["error_estimate", "stiffness", "stiffness(sample = biased)"] {
        let src = OU
            .replace("ITERS", "2")
            .replace("METHOD", "euler_maruyama")
            .replace("LOSS", &format!("moments(x, paths) + 0.1 * {term}"));
        let diags = check_errors(&dir, &src);
        let d = diags
            .iter()
            .find(|d| d.code == "glassbox::bad_objective")
            .unwrap_or_else(|| panic!("{term}: {diags:?}"));
        let help = d.help.clone().unwrap_or_default();
        for m in ["sriw1", "sosri", "sra1", "sosra"] {
            assert!(help.contains(m), "{term}: {help}");
        }
    }
}

/// The local SDE term: `t_r` drawn from an adaptive path (biased: a step start; unbiased:
/// uniform on the span), one step with the automatic initial step size on the same Brownian
/// path, `w·E·|h|` or `w·S·|h|`; with `u(t_r)` and `h` held (constants of the backward pass, as
/// the gradient treats them), its `dp` against central differences of that step (1e-6). The
/// SRI cases' drift reads `t` (the secant's second value is an evaluation of its own), the
/// SRA cases' does not.
#[test]
fn local_sde_error_term_matches_central_differences() {
    let dir = tmp("sdelocal");
    let diag = model_from(&dir, &diagonal_t());
    let add = model_from(&dir, ADDITIVE);
    for (model, method, seed) in [
        (&diag, "sriw1", 31),
        (&diag, "sosri", 32),
        (&add, "sosra", 33),
        (&add, "sra1", 34),
    ] {
        let m = sde_method(method).unwrap();
        let p0 = param_values(model);
        let u0 = vec![0.8, -0.4];
        let opts = SdeOptions {
            rtol: 1e-2,
            atol: 1e-2,
            save_at: vec![0.0, 1.0],
            ..Default::default()
        };
        let mut f = JitSdeVjp::new(model, &p0, &[], false).unwrap();
        let procs = f.noise().processes();
        let tree = BrownianTree::with_depth(seed, 2, 0.0, 1.0, procs, tree_depth(0.0, 1.0, &opts));
        let sol = solve_path(m, &mut f, &u0, &opts, &tree).unwrap();
        let starts: Vec<f64> = sol.steps.iter().map(|s| s.t).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for sampling in [Sampling::Biased, Sampling::Unbiased] {
            let (t_r, u_r) = sde_sample(m, &mut f, &sol, &u0, &tree, sampling, &mut rng).unwrap();
            let mut again = ChaCha8Rng::seed_from_u64(seed);
            if sampling == Sampling::Biased {
                assert!(starts.contains(&t_r), "{method}: {t_r} is no step start");
                let (t2, u2) =
                    sde_sample(m, &mut f, &sol, &u0, &tree, sampling, &mut again).unwrap();
                assert_eq!(
                    (t2, u2.clone()),
                    (t_r, u_r.clone()),
                    "same draw, same sample"
                );
            } else {
                assert!((0.0..=1.0).contains(&t_r));
            }
            for (we, ws) in [(0.8, 0.0), (0.0, 0.8)] {
                let reg = SdeRegularizer {
                    opts: &opts,
                    error_weight: we,
                    stiffness_weight: ws,
                };
                let term = sde_local_term(m, &mut f, &tree, (t_r, &u_r), 1.0, &reg).unwrap();
                let s = term.stiffness.unwrap_or(0.0);
                assert!(term.h > 0.0 && term.error > 0.0);
                assert_eq!(term.stiffness.is_some(), ws != 0.0, "{method}");
                assert_eq!(term.value, term.h * (we * term.error + ws * s));
                let value = |f: &mut JitSdeVjp, p: &[f64]| {
                    f.set_params(p).unwrap();
                    let v = sde_local_step(m, f, &tree, (t_r, term.h), &u_r, &reg)
                        .unwrap()
                        .value;
                    f.set_params(&p0).unwrap();
                    v
                };
                let eps = 1e-6;
                let (mut got, mut want) = (Vec::new(), Vec::new());
                for i in 0..p0.len() {
                    let (mut a, mut b) = (p0.clone(), p0.clone());
                    a[i] += eps;
                    b[i] -= eps;
                    want.push((value(&mut f, &a) - value(&mut f, &b)) / (2.0 * eps));
                    got.push(term.dp[i]);
                }
                let e = rel_err(&got, &want);
                assert!(
                    e <= 1e-6,
                    "{method} {sampling:?} ({we}, {ws}): {e:e}\n got {got:?}\nwant {want:?}"
                );
                assert!(want.iter().any(|x| x.abs() > 1e-8), "{want:?}");
            }
        }
    }
}

/// The local SDE terms in training: reported, reproducible per seed, another seed differs.
#[test]
fn local_sde_error_terms_train_deterministically() {
    let dir = tmp("sdelocal_train");
    let run = |(k, term): (usize, &str), seed: u64| {
        let src = OU
            .replace("METHOD(dt = 0.1)", "sosri(rtol = 1e-2, atol = 1e-2)")
            .replace(
                "LOSS",
                &format!("moments(x, paths; samples = 4) + 0.5 * {term}"),
            )
            .replace("ITERS", "2")
            .replace("DATA", &ou_data());
        let path = dir.join(format!("ou_{k}.gbx"));
        std::fs::write(&path, src).unwrap();
        let (model, ds) = load(&path);
        let ov = Overrides {
            seed: Some(seed),
            ..Default::default()
        };
        let mut t = Trainer::new(&model, ds, &ov).unwrap();
        while !t.done() {
            t.step().unwrap();
        }
        t.state().clone()
    };
    for term in [
        "error_estimate(sample = biased)",
        "error_estimate(sample = unbiased)",
        "stiffness(sample = biased)",
        "stiffness(sample = unbiased)",
    ]
    .into_iter()
    .enumerate()
    {
        let a = run(term, 3);
        assert!(a.metrics.iter().all(|m| m.reg > 0.0), "{term:?}");
        assert_eq!(a.theta, run(term, 3).theta, "{term:?}");
        assert_ne!(a.theta, run(term, 4).theta, "{term:?}");
    }
}

/// Central differences (step 1e-6) of `loss(p, u0)` along every parameter axis, one random
/// parameter direction and every initial-state axis, with the adjoint's directional
/// derivatives (`dp`, `du0`) in the same order: `(got, want)`.
fn central_differences(
    mut loss: impl FnMut(&[f64], &[f64]) -> f64,
    p0: &[f64],
    u0: &[f64],
    dp: &[f64],
    du0: &[f64],
    rng: &mut ChaCha8Rng,
) -> (Vec<f64>, Vec<f64>) {
    let eps = 1e-6;
    let mut dirs: Vec<Vec<f64>> = (0..p0.len())
        .map(|i| (0..p0.len()).map(|j| f64::from(i == j)).collect())
        .collect();
    dirs.push((0..p0.len()).map(|_| rng.random_range(-1.0..1.0)).collect());
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for d in &dirs {
        let pp: Vec<f64> = p0.iter().zip(d).map(|(a, b)| a + eps * b).collect();
        let pm: Vec<f64> = p0.iter().zip(d).map(|(a, b)| a - eps * b).collect();
        want.push((loss(&pp, u0) - loss(&pm, u0)) / (2.0 * eps));
        got.push(dp.iter().zip(d).map(|(a, b)| a * b).sum::<f64>());
    }
    for k in 0..u0.len() {
        let (mut up, mut um) = (u0.to_vec(), u0.to_vec());
        up[k] += eps;
        um[k] -= eps;
        want.push((loss(p0, &up) - loss(p0, &um)) / (2.0 * eps));
        got.push(du0[k]);
    }
    (got, want)
}

/// A small neural SDE whose initial state depends on a parameter (`a`), so the gradient of
/// the mean final value must also pass through the initial state's VJP.
const FINAL_MEAN: &str = "model final_mean
state u[2] = [a, 0.3]
param a = 1.2
param W1[3, 2] = [0.5, -0.3; 0.2, 0.4; -0.6, 0.1]
param b1[3] = [0.1, -0.2, 0.05]
param W2[2, 3] = [0.3, -0.5, 0.2; 0.4, 0.1, -0.3]
param Wg[2, 2] = [0.2, -0.1; 0.05, 0.3]
param bg[2] = [0.1, 0.2]
du = (W2 @ tanh(W1 @ u^3 + b1)) dt + (Wg @ u + bg) * dW
solve euler_maruyama(dt = 0.01) over [0, 1]
";

/// `glassbox solve --grad`'s gradient (`grad::final_mean_gradient`: the mean of `u(1)` over
/// paths and state values) against central differences of that mean computed by the plain
/// forward solver (`solve_sde`, the paths `glassbox solve` prints) on the same seed. Fixed
/// grid, same Brownian paths: a smooth function of `p`, so 1e-6 holds (module comment).
#[test]
fn final_mean_gradient_matches_central_differences_of_the_solved_paths() {
    use glassbox::grad::final_mean_gradient;
    use glassbox::solve::initial_state;
    use glassbox::solve::sde::solve_sde;
    let dir = tmp("final_mean");
    let model = model_from(&dir, FINAL_MEAN);
    let p0 = param_values(&model);
    let (seed, paths) = (7, 5);
    for (method, dt) in [("euler_maruyama", 0.01), ("sosri", 0.05)] {
        let m = sde_method(method).unwrap();
        let opts = SdeOptions {
            dt: Some(dt),
            ..Default::default()
        };
        let mut f = JitSdeVjp::new(&model, &p0, &[], false).unwrap();
        let g =
            final_mean_gradient(&model, m, &mut f, &p0, (0.0, 1.0), &opts, seed, paths).unwrap();
        let mut loss = |p: &[f64], _: &[f64]| -> f64 {
            f.set_params(p).unwrap();
            let u0 = initial_state(&model, p, &[], 0.0).unwrap();
            let o = SdeOptions {
                save_at: vec![0.0, 0.5, 1.0],
                ..opts.clone()
            };
            let sol = solve_sde(m, &mut f, 0.0, 1.0, &u0, &o, seed, paths).unwrap();
            let finals: Vec<f64> = sol
                .paths
                .iter()
                .flat_map(|s| s.u(2).unwrap())
                .copied()
                .collect();
            finals.iter().sum::<f64>() / finals.len() as f64
        };
        let want_loss = loss(&p0, &[]);
        assert!(
            (g.loss - want_loss).abs() <= 1e-14 * want_loss.abs(),
            "{method}: the loss is the solved paths' mean: {} vs {want_loss}",
            g.loss
        );
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (got, want) = central_differences(&mut loss, &p0, &[], &g.dp, &[], &mut rng);
        let e = rel_err(&got, &want);
        assert!(
            e <= 1e-6,
            "{method}: relative error {e:e}\n got {got:?}\nwant {want:?}"
        );
        // `a` only enters through the initial state.
        assert!(want[0].abs() > 1e-3, "{method}: {want:?}");
        assert_eq!(g.stats.accepted as f64, (paths as f64 / dt).round());
    }
}
