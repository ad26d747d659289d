//! Classification (`src/train/classify.rs`): the gradient of a whole classification objective
//! (encoder, field, head, cross-entropy, global and local error estimates) against central
//! finite differences; a small problem learned well above chance; the validation split; the
//! CLI's train/predict and diagnostics. Tables are small and synthetic so the tests stay fast.

use std::path::{Path, PathBuf};
use std::process::Command;

use glassbox::data::{self, Dataset, batch};
use glassbox::grad::{self, AdjointOptions, JitVjpField};
use glassbox::sema::Model;
use glassbox::solve;
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{LOCAL_STREAM, Overrides, Trainer, Weights};
use rand::Rng;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx_classify_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` rows of 3 features in [-1, 1] (a fixed LCG) and the label argmax of the features:
/// three linearly separable classes.
fn table(n: usize) -> String {
    let mut s: u64 = 12345;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let mut out = String::new();
    for _ in 0..n {
        let x = [next(), next(), next()];
        let c = (0..3).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap_or(0);
        out += &format!("{},{},{},{c}\n", x[0], x[1], x[2]);
    }
    out
}

const TOY: &str = r#"
model toy
input x[3]
label c in 0..3
net enc = linear(3, 2)
net f = mlp(3, 5, 2; act = tanh)
net dec = linear(2, 3)
state h[2] = enc(x)
dh/dt = f(concat(h, t))
solve tsit5(rtol = 1e-3, atol = 1e-4) over [0, 1]
output logits = dec(h(1))
data d = csv("DATA", features = 0..3, label = 3)
minimize cross_entropy(logits, c) + 0.1 * error_estimate + 0.05 * error_estimate(sample = unbiased)
train adam(lr = 0.05), epochs = 40, batch = 16, split = 0.75
"#;

fn setup(name: &str, src: &str, rows: usize) -> (PathBuf, Model, Vec<Dataset>) {
    let dir = tmp(name);
    let csv = dir.join("data.csv");
    std::fs::write(&csv, table(rows)).unwrap();
    let path = dir.join("model.gbx");
    std::fs::write(&path, src.replace("DATA", csv.to_str().unwrap())).unwrap();
    let file = SourceFile::new(
        path.display().to_string(),
        std::fs::read_to_string(&path).unwrap(),
    );
    let checked = glassbox::check_source(&file, &DiskLoader);
    let model = checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags));
    let ds = data::load_model(&model, Some(&file), &DiskLoader).unwrap();
    (dir, model, ds)
}

/// The training part's features, as the trainer holds them (same split stream and seed).
fn train_rows(ds: &[Dataset], seed: u64) -> Dataset {
    batch::split(&ds[0], 0.75, &mut batch::rng(seed, batch::SPLIT_STREAM))
        .unwrap()
        .train
}

#[test]
fn classification_gradient_matches_finite_differences() {
    let (_dir, model, ds) = setup("fd", TOY, 12);
    let train = train_rows(&ds, 0);
    let mut t = Trainer::new(&model, ds, &Overrides::default()).unwrap();
    // A fixed step: finite differences see the same steps; E is still estimated per step.
    t.plan.solve.dt = Some(0.125);
    let rows = [0usize, 3, 5, 8];
    let it = 1;
    let theta = t.state().theta.clone();
    let all = t.weights(it);
    assert!(all.error > 0.0 && all.local.len() == 1);
    let global = Weights {
        local: Vec::new(),
        ..all.clone()
    };
    let ev = t.evaluate_rows(&theta, &rows, &all, it).unwrap();
    assert!(ev.reg > 0.0 && ev.accuracy.is_some());

    // The local term holds u(t_r) and h constant (`grad::local_step`): replay its draw at θ0
    // (same stream, same sampled sample and time) to freeze them for the differences.
    let Dataset::Table { x, .. } = &train else {
        panic!("a table")
    };
    let p0 = t.params();
    let mut field = JitVjpField::new(&model, &p0, &[0.0; 3]).unwrap();
    let mut rng = batch::rng(t.plan.seed, LOCAL_STREAM + it);
    let j = rng.random_range(0..rows.len());
    let xj = x.row(rows[j]).to_vec();
    field.set_inputs(&xj).unwrap();
    let u0 = solve::initial_state(&model, &p0, &xj, 0.0).unwrap();
    let mut opts = t.plan.solve.clone();
    opts.keep_stages = true;
    opts.dense = true;
    opts.save_at = vec![0.0, 1.0];
    let sol = solve::solve(t.plan.tab, &mut field, 0.0, 1.0, &u0, &opts).unwrap();
    let (t_r, u_r) = grad::sample(&sol, grad::Sampling::Unbiased, &mut rng).unwrap();
    let mut aopts = AdjointOptions::new(opts.rtol, opts.atol);
    aopts.error_weight = all.local[0].weight;
    let h = grad::local_term(t.plan.tab, &mut field, t_r, &u_r, 1.0, &aopts)
        .unwrap()
        .h;
    let learned = t.plan.learned.clone();

    let mut objective = |th: &[f64]| {
        let e = t.evaluate_rows(th, &rows, &global, it).unwrap();
        let mut p = p0.clone();
        for (&i, &v) in learned.iter().zip(th) {
            p[i] = v;
        }
        field.set_params(&p).unwrap();
        let local = grad::local_step(t.plan.tab, &mut field, t_r, &u_r, h, &aopts).unwrap();
        e.loss + e.reg + local.value
    };
    // Coordinates in the encoder, the field and the head, and two random directions.
    let mut dirs: Vec<Vec<f64>> = Vec::new();
    for k in [0usize, 9, 20, theta.len() - 1] {
        let mut d = vec![0.0; theta.len()];
        d[k] = 1.0;
        dirs.push(d);
    }
    for s in [1u64, 2] {
        dirs.push(
            (0..theta.len())
                .map(|i| (((i as u64 + 1) * 2654435761 * s) % 1000) as f64 / 500.0 - 1.0)
                .collect(),
        );
    }
    let step = 1e-5;
    for d in &dirs {
        let plus: Vec<f64> = theta.iter().zip(d).map(|(a, b)| a + step * b).collect();
        let minus: Vec<f64> = theta.iter().zip(d).map(|(a, b)| a - step * b).collect();
        let fd = (objective(&plus) - objective(&minus)) / (2.0 * step);
        let an: f64 = ev.grad.iter().zip(d).map(|(g, b)| g * b).sum();
        // Central differences of step 1e-5 on an O(1) smooth objective: truncation ~1e-10,
        // rounding ~1e-16/1e-5 = 1e-11, far inside 1e-6.
        assert!(
            (fd - an).abs() <= 1e-6 * an.abs().max(1e-3),
            "directional derivative: adjoint {an}, finite differences {fd}"
        );
    }
}

#[test]
fn a_small_classifier_learns_well_above_chance() {
    let (_dir, model, ds) = setup("learn", TOY, 64);
    let train = train_rows(&ds, 0);
    let mut t = Trainer::new(&model, ds, &Overrides::default()).unwrap();
    let (_, before, _) = t.score_table(&train).unwrap();
    while !t.done() {
        t.step().unwrap();
    }
    let (ce, after, nfe) = t.score_table(&train).unwrap();
    assert!(nfe > 0 && ce.is_finite());
    // Three classes: chance is 1/3.
    assert!(after >= 0.8, "train accuracy {before} -> {after}");
    let last = t.state().metrics.last().unwrap();
    let val = last
        .val_accuracy
        .expect("validated after the last iteration");
    assert!(val >= 0.6, "validation accuracy {val}");
    assert!(last.val_loss.is_some_and(f64::is_finite));
    // Validated once per epoch: 48 training rows in batches of 16.
    let n_val = t
        .state()
        .metrics
        .iter()
        .filter(|m| m.val_loss.is_some())
        .count();
    assert_eq!(n_val, 40);
}

#[test]
fn the_validation_split_is_disjoint_and_deterministic() {
    let (_dir, _model, ds) = setup("split", TOY, 40);
    let Dataset::Table { x, .. } = &ds[0] else {
        panic!("a table")
    };
    let key = |d: &Dataset| -> Vec<Vec<u64>> {
        let Dataset::Table { x, .. } = d else {
            panic!("a table")
        };
        x.rows()
            .into_iter()
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    let a = batch::split(&ds[0], 0.75, &mut batch::rng(7, batch::SPLIT_STREAM)).unwrap();
    let b = batch::split(&ds[0], 0.75, &mut batch::rng(7, batch::SPLIT_STREAM)).unwrap();
    let c = batch::split(&ds[0], 0.75, &mut batch::rng(8, batch::SPLIT_STREAM)).unwrap();
    assert_eq!(a, b);
    assert_ne!(key(&a.valid), key(&c.valid));
    let (tr, va) = (key(&a.train), key(&a.valid));
    assert_eq!((tr.len(), va.len()), (30, 10));
    assert!(va.iter().all(|r| !tr.contains(r)));
    let all: Vec<Vec<u64>> = x
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect();
    assert!(all.iter().all(|r| tr.contains(r) || va.contains(r)));
}

fn glassbox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
}

fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = glassbox()
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_trains_and_predicts_a_classifier() {
    let (dir, _, _) = setup("cli", TOY, 24);
    let (code, out, err) = run(
        &["train", "model.gbx", "--epochs", "2", "--out", "run"],
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("validation        accuracy"), "{out}");
    let run_json = std::fs::read_to_string(dir.join("run/run.json")).unwrap();
    assert!(run_json.contains("\"val_accuracy\"") && run_json.contains("\"classification\""));

    // run.json names the validation rows: predicted again, with their labels, they score the
    // report's validation accuracy exactly (same weights, same solves).
    let record: serde_json::Value = serde_json::from_str(&run_json).unwrap();
    assert_eq!(record["split"]["train_fraction"], 0.75);
    let held: Vec<usize> = record["split"]["validation"]["samples"]
        .as_array()
        .expect("validation rows")
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(held.len(), 6, "round(0.25 * 24) rows validate: {held:?}");
    assert!(held.windows(2).all(|w| w[0] < w[1]) && held.iter().all(|&r| r < 24));
    let rows: Vec<String> = std::fs::read_to_string(dir.join("data.csv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let valid: String = held.iter().map(|&r| format!("{}\n", rows[r])).collect();
    std::fs::write(dir.join("valid.csv"), valid).unwrap();
    let (code, _, err) = run(
        &[
            "predict",
            "model.gbx",
            "--weights",
            "run",
            "--input",
            "valid.csv",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    let val_accuracy = record["report"]["classification"]["val_accuracy"]
        .as_f64()
        .unwrap();
    let want = format!("accuracy {val_accuracy:.4} over 6 samples");
    assert!(err.contains(&want), "want `{want}`: {err}");

    let (code, out, err) = run(&["predict", "model.gbx", "--weights", "run"], &dir);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("accuracy"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "class,label,logit_0,logit_1,logit_2");
    assert_eq!(lines.len(), 25);

    std::fs::write(dir.join("new.csv"), "0.9,-0.5,0.1\n-1,0.2,0.8\n").unwrap();
    let (code, out, err) = run(
        &[
            "predict",
            "model.gbx",
            "--weights",
            "run",
            "--input",
            "new.csv",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "class,logit_0,logit_1,logit_2");
    assert_eq!(lines.len(), 3);
    assert!(
        !err.contains("accuracy"),
        "unlabelled rows are not scored: {err}"
    );

    // New rows laid out like the data, label column included: classified and scored.
    std::fs::write(dir.join("labelled.csv"), "0.9,-0.5,0.1,0\n-1,0.2,0.8,2\n").unwrap();
    let (code, out, err) = run(
        &[
            "predict",
            "model.gbx",
            "--weights",
            "run",
            "--input",
            "labelled.csv",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "class,label,logit_0,logit_1,logit_2");
    assert!(lines[1].split(',').nth(1) == Some("0") && lines[2].split(',').nth(1) == Some("2"));
    // Two rows: the accuracy is 0, 0.5 or 1, and it is the CSV's own.
    let hits = lines[1..]
        .iter()
        .filter(|l| {
            let mut c = l.split(',');
            c.next() == c.next()
        })
        .count();
    let want = format!("accuracy {:.4} over 2 samples", hits as f64 / 2.0);
    assert!(err.contains(&want), "want `{want}`: {err}");

    // A missing --input file is the user's file: named as such, with no label on the model's
    // `data` line (it was never the model's data that went missing).
    let (code, _, err) = run(
        &[
            "predict",
            "model.gbx",
            "--weights",
            "run",
            "--input",
            "gone.csv",
        ],
        &dir,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("glassbox::data_not_found"), "{err}");
    assert!(err.contains("cannot read --input file `gone.csv`"), "{err}");
    assert!(
        !err.contains("moved or deleted") && !err.contains("model.gbx:"),
        "{err}"
    );
}

#[test]
fn classifier_mistakes_are_diagnostics() {
    let (dir, _, _) = setup("diag", TOY, 12);
    let train_err = |src: &str, data: &str| {
        std::fs::write(dir.join("bad.csv"), data).unwrap();
        std::fs::write(dir.join("bad.gbx"), src.replace("DATA", "bad.csv")).unwrap();
        let (code, _, err) = run(&["train", "bad.gbx", "--epochs", "1", "--out", "r"], &dir);
        assert_eq!(code, 1, "{err}");
        err
    };
    let good = table(12);
    // A label outside `0..3`.
    let e = train_err(TOY, &good.replacen(",0\n", ",5\n", 1));
    assert!(e.contains("glassbox::data_label_out_of_range"), "{e}");
    let e = train_err(TOY, &good.replacen(",0\n", ",1.5\n", 1));
    assert!(e.contains("glassbox::data_label_not_integer"), "{e}");
    // A head reading the state at two times.
    let e = train_err(&TOY.replace("dec(h(1))", "dec(h(1)) + dec(h(0.5))"), &good);
    assert!(
        e.contains("glassbox::train_unsupported") && e.contains("two times"),
        "{e}"
    );
}

const LV: &str = r#"
model lv
state x = 1.0, y = 1.0
param alpha = 1.0 learn, beta = 0.9, gamma = 0.8, delta = 1.8
dx/dt = alpha * x - beta * x * y
dy/dt = gamma * x * y - delta * y
data obs = csv("DATA", time = "t", columns = ["x", "y"])
solve tsit5(rtol = 1e-8, atol = 1e-10)
minimize mse([x, y], obs)
train adam(lr = 0.05), iterations = 3, split = 0.75
"#;

/// A trajectory model validates too: one trajectory split by time, the held-out tail scored
/// by a solve from the initial state; checked against `predict` over the whole span.
#[test]
fn trajectory_models_validate_on_the_held_out_tail() {
    let dir = tmp("lv");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/lv.csv");
    let path = dir.join("lv.gbx");
    std::fs::write(&path, LV.replace("DATA", csv.to_str().unwrap())).unwrap();
    let file = SourceFile::new(
        path.display().to_string(),
        std::fs::read_to_string(&path).unwrap(),
    );
    let model = glassbox::check_source(&file, &DiskLoader).model.unwrap();
    let ds = data::load_model(&model, Some(&file), &DiskLoader).unwrap();
    let Dataset::Trajectories { paths, .. } = &ds[0] else {
        panic!("a trajectory")
    };
    let (t_all, y_all) = (paths[0].t.to_vec(), paths[0].y.clone());
    let mut t = Trainer::new(&model, ds, &Overrides::default()).unwrap();
    while !t.done() {
        t.step().unwrap();
    }
    let metrics = &t.state().metrics;
    assert!(metrics.iter().all(|m| m.val_loss.is_some()));
    let val = metrics.last().unwrap().val_loss.unwrap();
    // Independently: predict the whole span, mse over the last quarter of the observations.
    let n = t_all.len();
    let k = (0.75 * n as f64).round() as usize;
    let sol = glassbox::train::predict(&model, &t.params(), &t.plan, &t_all).unwrap();
    let mut sum = 0.0;
    for i in k..n {
        for j in 0..2 {
            sum += (sol.u(i).unwrap()[j] - y_all[[i, j]]).powi(2);
        }
    }
    let want = sum / (2 * (n - k)) as f64;
    assert!(
        val > 0.0 && (val - want).abs() <= 1e-6 * want,
        "{val} vs {want}"
    );
}
