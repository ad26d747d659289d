//! One classifier training iteration (forward, loss, backward: `Trainer::evaluate_rows`, the
//! optimiser's update apart), per row against batched (`src/train/batched.rs`), on one thread,
//! with the backward/forward ratio of each path (the solve node's two halves,
//! `Trainer::last_timing`).
//!
//! Models: `examples/digits.gbx` (encoder 64→32, field 33→64→32 tanh on `concat(h, t)`, head
//! 32→10, Tsit5 rtol = atol = 1e-5, the local unbiased `R_E`) on its first 128 training rows;
//! `mnist`: 784 → latent 100, field 101→100→100 tanh, head 100→10, batch 256, on synthetic
//! data (the model's initial weights). Rounds alternate the two paths (interleaved); each
//! number is the median over the rounds.
//!
//! `windows`: trajectory windows (`src/train/windows.rs`) on `benches/models/spiral_wide.gbx`
//! (the spiral, field 2→64→64→2 tanh, 64 windows of 10 observations, Tsit5 rtol = 1e-7,
//! `R_E`): whole iterations (`Trainer::step`: draw, forward, backward, update), batched
//! against one window at a time (what `GLASSBOX_BATCHED=0` runs), both from the same weights
//! and the same draws.
//!
//! Run: `taskset -c 0 cargo bench --bench batched_train -- digits 15` (or `mnist 5`,
//! `windows 15`).

use std::path::PathBuf;
use std::time::Instant;

use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{Overrides, Trainer};

const MNIST: &str = r#"
model mnist_like
input x[784]
label c in 0..10
net enc = linear(784, 100)
net f = mlp(101, 100, 100; act = tanh)
net dec = linear(100, 10)
state h[100] = enc(x)
dh/dt = f(concat(h, t))
solve tsit5(rtol = 1e-5, atol = 1e-5) over [0, 1]
output logits = dec(h(1))
data d = csv("DATA", features = 0..784, label = 784)
minimize cross_entropy(logits, c)
train adam(lr = 1e-3), iterations = 1, batch = 256
"#;

/// Two one-thread trainers of the model file `src` (at `path`): on the per-row path and on
/// the batched one (which it reports).
fn trainers(path: &std::path::Path, src: String, case: &str) -> (Trainer, Trainer) {
    let file = SourceFile::new(path.display().to_string(), src);
    let model = glassbox::check_source(&file, &DiskLoader)
        .model
        .expect("the model checks");
    let ov = Overrides {
        threads: Some(1),
        ..Overrides::default()
    };
    let make = || {
        let ds = glassbox::data::load_model(&model, Some(&file), &DiskLoader).expect("data");
        Trainer::new(&model, ds, &ov).expect("trainer")
    };
    let batched = make();
    let mut per_row = make();
    per_row.train_per_row();
    println!(
        "{case}: batched path: {}",
        batched.training_path().unwrap().describe()
    );
    (per_row, batched)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args
        .iter()
        .find(|a| ["digits", "mnist", "windows"].contains(&a.as_str()))
        .cloned()
        .unwrap_or_else(|| "digits".into());
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(15);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if which == "windows" {
        return windows(&root, rounds);
    }
    let (path, src, batch) = match which.as_str() {
        "digits" => {
            let path = root.join("examples/digits.gbx");
            let src = std::fs::read_to_string(&path).expect("examples/digits.gbx");
            (path, src, 128)
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("gbx_bench_mnist_{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let csv = dir.join("d.csv");
            let mut s = 0x9E37_79B9_7F4A_7C15u64;
            let mut table = String::new();
            for r in 0..256 {
                let cells: Vec<String> = (0..784)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        format!("{:.3}", (s >> 11) as f64 / (1u64 << 53) as f64)
                    })
                    .collect();
                table.push_str(&format!("{},{}\n", cells.join(","), r % 10));
            }
            std::fs::write(&csv, table).unwrap();
            let src = MNIST.replace("DATA", csv.to_str().unwrap());
            (dir.join("mnist.gbx"), src, 256)
        }
    };
    let (mut per_row, mut batched) = trainers(&path, src, &which);
    let theta = batched.state().theta.clone();
    let rows: Vec<usize> = (0..batch).collect();
    let w = batched.weights(0);
    let mut times = [Vec::new(), Vec::new()];
    let mut fwd = [Vec::new(), Vec::new()];
    let mut bwd = [Vec::new(), Vec::new()];
    let mut losses = [0.0, 0.0];
    for round in 0..rounds + 1 {
        for (i, t) in [&mut per_row, &mut batched].into_iter().enumerate() {
            let start = Instant::now();
            let ev = t.evaluate_rows(&theta, &rows, &w, 0).expect("evaluates");
            let dt = start.elapsed().as_secs_f64() * 1e3;
            losses[i] = ev.loss;
            // Round 0 warms caches and allocations.
            if round > 0 {
                times[i].push(dt);
                let (f, b) = t.last_timing();
                fwd[i].push(f * 1e3);
                bwd[i].push(b * 1e3);
            }
        }
    }
    println!("loss per row {:.12}, batched {:.12}", losses[0], losses[1]);
    let mut med = [0.0; 2];
    for (i, name) in ["per row", "batched"].iter().enumerate() {
        med[i] = median(&mut times[i]);
        let (f, b) = (median(&mut fwd[i]), median(&mut bwd[i]));
        println!(
            "{name:8} iteration {:9.3} ms   forward {:9.3} ms   backward {:9.3} ms   backward/forward {:.2}",
            med[i],
            f,
            b,
            b / f
        );
    }
    println!(
        "batched / per row: {:.3}x faster ({rounds} interleaved rounds, medians)",
        med[0] / med[1]
    );
}

/// The `windows` case (see the module docs): per-iteration wall time of `Trainer::step` on
/// both paths, rounds interleaved, medians.
fn windows(root: &std::path::Path, rounds: usize) {
    let path = root.join("benches/models/spiral_wide.gbx");
    let src = std::fs::read_to_string(&path).expect("benches/models/spiral_wide.gbx");
    let (mut per_window, mut batched) = trainers(&path, src, "windows");
    let mut times = [Vec::new(), Vec::new()];
    let mut last = [(0.0, 0), (0.0, 0)];
    for round in 0..rounds + 1 {
        for (i, t) in [&mut per_window, &mut batched].into_iter().enumerate() {
            let start = Instant::now();
            let m = t.step().expect("steps");
            let dt = start.elapsed().as_secs_f64() * 1e3;
            last[i] = (m.loss, m.nfe);
            // Round 0 warms caches and allocations.
            if round > 0 {
                times[i].push(dt);
            }
        }
    }
    println!(
        "last iteration: loss per window {:.12} (nfe {}), batched {:.12} (nfe {})",
        last[0].0, last[0].1, last[1].0, last[1].1
    );
    let mut med = [0.0; 2];
    for (i, name) in ["per window", "batched"].iter().enumerate() {
        med[i] = median(&mut times[i]);
        println!("{name:10} iteration {:9.3} ms", med[i]);
    }
    println!(
        "batched / per window: {:.3}x faster ({rounds} interleaved rounds, medians)",
        med[0] / med[1]
    );
}
