//! Rows on all cores (`solve::threads`): training a classifier, a trajectory model on windows
//! and an SDE on paths gives bit-identical weights, losses, regularizers and NFE at 1, 2 and 3
//! threads, and so do a classifier's predictions. The batches are large enough (≥ 12 rows)
//! that 3 threads really cut them into 3 blocks; summing per block first would change the
//! last bits and fail these tests.

use std::path::{Path, PathBuf};

use glassbox::data::{self, Dataset};
use glassbox::sema::Model;
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{self, Overrides, Trainer};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx_threads_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load(path: &Path, src: &str) -> (Model, Vec<Dataset>) {
    std::fs::write(path, src).unwrap();
    let file = SourceFile::new(path.display().to_string(), src.to_string());
    let checked = glassbox::check_source(&file, &DiskLoader);
    let model = checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags));
    let ds = data::load_model(&model, Some(&file), &DiskLoader).unwrap();
    (model, ds)
}

/// Everything a run produces that could depend on the order of a sum, as bits.
fn run_bits(model: &Model, ds: &[Dataset], threads: usize) -> Vec<u64> {
    let ov = Overrides {
        threads: Some(threads),
        ..Default::default()
    };
    let mut t = Trainer::new(model, ds.to_vec(), &ov).unwrap();
    assert_eq!(t.plan.threads, threads);
    let mut bits = Vec::new();
    while !t.done() {
        let m = t.step().unwrap();
        bits.extend([m.loss.to_bits(), m.reg.to_bits(), m.nfe]);
        bits.extend(m.accuracy.map(f64::to_bits));
    }
    bits.extend(t.state().theta.iter().map(|v| v.to_bits()));
    bits
}

fn same_at_1_2_3(model: &Model, ds: &[Dataset]) {
    let one = run_bits(model, ds, 1);
    for threads in [2, 3] {
        assert!(
            run_bits(model, ds, threads) == one,
            "{threads} threads differ from one"
        );
    }
}

/// Windows, both global regularizers, a sampled local one and an integral term with a
/// Hutchinson probe (the workers' own integrands).
#[test]
fn window_training_is_bit_identical_across_thread_counts() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/spiral.csv");
    let src = format!(
        r#"model tiny
state y[2] = [2.0, 0.0]
net f = mlp(2, 6, 2; act = tanh)
dy/dt = f(y)
data obs = csv("{}", time = "t", columns = ["y1", "y2"])
solve tsit5(rtol = 1e-6, atol = 1e-8)
minimize l1(y, obs) + 0.1 * error_estimate + 0.01 * stiffness + 0.05 * error_estimate(sample = unbiased) + 1e-3 * jacobian_frobenius
train adam(lr = 1e-2), iterations = 3, batch = windows(13, length = 5)
"#,
        data.display()
    );
    let (model, ds) = load(&tmp("windows").join("model.gbx"), &src);
    same_at_1_2_3(&model, &ds);
}

/// `n` rows of 3 features `sin(1.3·i + 2·j)`, labelled by their largest feature.
fn table(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let x: Vec<f64> = (0..3)
            .map(|j| (1.3 * i as f64 + 2.0 * j as f64).sin())
            .collect();
        let c = (0..3).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap_or(0);
        out += &format!("{},{},{},{c}\n", x[0], x[1], x[2]);
    }
    out
}

/// Three states, the inputs in the field too, both global regularizers and a sampled one.
const CLASSIFIER: &str = r#"
model three
input x[3]
label c in 0..3
net enc = linear(3, 3)
net f = mlp(6, 4, 3; act = tanh)
net dec = linear(3, 3)
state h[3] = enc(x)
dh/dt = f(concat(h, x))
solve tsit5(rtol = 1e-4, atol = 1e-5) over [0, 1]
output logits = dec(h(1))
data d = csv("DATA", features = 0..3, label = 3)
minimize cross_entropy(logits, c) + 0.05 * error_estimate + 0.01 * stiffness + 0.05 * error_estimate(sample = biased)
train adam(lr = 0.02), iterations = 3, batch = 14, split = 0.75
"#;

/// In its own directory `name` (the tests run in parallel).
fn classifier(name: &str) -> (Model, Vec<Dataset>) {
    let dir = tmp(name);
    let csv = dir.join("data.csv");
    std::fs::write(&csv, table(40)).unwrap();
    let src = CLASSIFIER.replace("DATA", csv.to_str().unwrap());
    load(&dir.join("model.gbx"), &src)
}

/// Training (forward, backward, validation) and the final report's scores.
#[test]
fn classifier_training_is_bit_identical_across_thread_counts() {
    let (model, ds) = classifier("classify_train");
    same_at_1_2_3(&model, &ds);
    let report = |threads| {
        let ov = Overrides {
            threads: Some(threads),
            ..Default::default()
        };
        let mut t = Trainer::new(&model, ds.clone(), &ov).unwrap();
        t.step().unwrap();
        let r = t.class_report().unwrap().unwrap();
        let v = (
            r.val_loss.unwrap_or(f64::NAN),
            r.val_accuracy.unwrap_or(0.0),
        );
        (
            r.train_loss.to_bits(),
            v.0.to_bits(),
            v.1.to_bits(),
            r.prediction_nfe,
        )
    };
    let one = report(1);
    assert_eq!(report(2), one);
    assert_eq!(report(3), one);
}

/// `glassbox predict --input`'s rows (`predict_table`).
#[test]
fn classifier_predictions_are_bit_identical_across_thread_counts() {
    let (model, ds) = classifier("classify_predict");
    let Dataset::Table { x, .. } = &ds[0] else {
        panic!("a table")
    };
    let plan = train::plan(&model, &Overrides::default()).unwrap();
    let p = glassbox::solve::param_values(&model);
    let bits = |threads| {
        let (logits, forward, _) = train::predict_table(&model, &plan, &p, x, threads).unwrap();
        (
            logits.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            forward.nfe,
        )
    };
    let one = bits(1);
    assert_eq!(bits(2), one);
    assert_eq!(bits(3), one);
}

/// An Ornstein–Uhlenbeck SDE with a small net in its drift, trained on its moments over 13
/// paths.
#[test]
fn sde_path_training_is_bit_identical_across_thread_counts() {
    let dir = tmp("sde");
    let mut csv = String::from("path,t,x\n");
    for path in 0..4 {
        for i in 0..6 {
            let t = f64::from(i) * 0.2;
            let x = 2.0 * (-t).exp() + 0.1 * f64::from(path) * t;
            csv += &format!("{path},{t},{x}\n");
        }
    }
    let data = dir.join("paths.csv");
    std::fs::write(&data, csv).unwrap();
    let src = format!(
        r#"model ou
state x = 2.0
param theta = 1.2 learn, mu = 0.2 learn, sigma = 0.3 learn
net f = mlp(1, 6, 1; act = tanh)
dx = (theta * (mu - x) + sum(f([x]))) dt + sigma * (1 + 0.1 * x * x) dW
solve sriw1(rtol = 1e-2, atol = 1e-3)
data paths = csv("{}", time = "t", columns = ["x"], group = "path")
minimize moments(x, paths; samples = 13) + 0.01 * error_estimate
train adam(lr = 0.05), iterations = 3
"#,
        data.display()
    );
    let (model, ds) = load(&dir.join("ou.gbx"), &src);
    same_at_1_2_3(&model, &ds);
}

/// `glassbox solve --paths N --threads T`: the paths of `solve_sde_on` equal `solve_sde`'s bit
/// for bit at 1, 2 and 3 threads.
#[test]
fn sde_path_solves_are_bit_identical_across_thread_counts() {
    use glassbox::solve::sde::{JitSde, SdeOptions, sde_method, solve_sde, solve_sde_on};
    use glassbox::solve::threads::Pool;
    let src = r#"model ou
state x = 2.0
param theta = 1.2, mu = 0.2, sigma = 0.3
dx = theta * (mu - x) dt + sigma * (1 + 0.1 * x * x) dW
solve sriw1(rtol = 1e-3, atol = 1e-4) over [0, 1]
"#;
    let (model, _) = load(&tmp("sde_solve").join("ou.gbx"), src);
    let p = glassbox::solve::param_values(&model);
    let method = sde_method("sriw1").unwrap();
    let opts = SdeOptions {
        rtol: 1e-3,
        atol: 1e-4,
        ..SdeOptions::default()
    };
    let mut field = JitSde::with_params(&model, &p, &[]).unwrap();
    let want = solve_sde(method, &mut field, 0.0, 1.0, &[2.0], &opts, 9, 14).unwrap();
    let bits = |sol: &glassbox::solve::sde::SdeSolution| -> Vec<u64> {
        (sol.paths.iter())
            .flat_map(|s| s.ts.iter().chain(&s.us).map(|v| v.to_bits()))
            .chain([sol.stats.nfe])
            .collect()
    };
    for threads in [1, 2, 3] {
        let mut pool = Pool::new(threads, || Ok(field.fork())).unwrap();
        let got = solve_sde_on(method, &mut pool, 0.0, 1.0, &[2.0], &opts, 9, 14).unwrap();
        assert!(bits(&got) == bits(&want), "{threads} threads");
    }
}
