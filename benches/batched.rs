//! The forward solve of a batch of digits rows (`examples/digits.gbx`: field 33→64→32 tanh,
//! Tsit5, rtol = atol = 1e-5, over [0, 1]): each row solved alone on the per-sample kernel
//! (`JitField`, today's `Classify::predict`) against `solve::solve_batch` on the batched kernel
//! (`JitBatchField`: the field's two layers as GEMMs over the running rows), under per-row and
//! joint step control.
//!
//! Initial states are the encoder's (`initial_state`) on the first rows of the digits table,
//! with the model's initial weights. Rounds alternate the three (interleaved), and each is the
//! median over the rounds.
//!
//! Run: `cargo bench --bench batched` (`-- 64` for another batch size).

use std::path::PathBuf;
use std::time::Instant;

use glassbox::solve::{
    self, BatchControl, BatchRow, JitBatchField, JitField, SolveOptions, solve_batch, tableau,
};
use glassbox::source::{DiskLoader, SourceFile};

const ROUNDS: usize = 15;

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(128);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/digits.gbx");
    let file = SourceFile::new(
        path.display().to_string(),
        std::fs::read_to_string(&path).expect("examples/digits.gbx"),
    );
    let model = glassbox::check_source(&file, &DiskLoader)
        .model
        .expect("digits checks");
    let table = std::fs::read_to_string(path.with_file_name("data/digits.csv")).expect("data");
    let p = solve::param_values(&model);
    let u0s: Vec<Vec<f64>> = table
        .lines()
        .take(rows)
        .map(|line| {
            let x: Vec<f64> = line
                .split(',')
                .take(64)
                .map(|v| v.parse().unwrap())
                .collect();
            solve::initial_state(&model, &p, &x, 0.0).expect("encoder")
        })
        .collect();
    let opts = SolveOptions {
        rtol: 1e-5,
        atol: 1e-5,
        save_at: vec![1.0],
        ..SolveOptions::default()
    };
    let tab = &tableau::TSIT5;
    let mut alone = JitField::with_params(&model, &p, &vec![0.0; 64]).expect("field");
    let mut batched = JitBatchField::new(&model, &p).expect("batched field");
    batched.set_inputs(&vec![0.0; 64 * rows]).expect("inputs");
    let batch = BatchRow::all(0.0, 1.0, &u0s);

    let mut per_row_alone = || {
        let mut nfe = 0;
        for u0 in &u0s {
            nfe += solve::solve(tab, &mut alone, 0.0, 1.0, u0, &opts)
                .expect("solve")
                .stats
                .nfe;
        }
        nfe
    };
    let mut run_batched = |control| {
        let sol = solve_batch(tab, &mut batched, &batch, &opts, control).expect("batched solve");
        let nfe: u64 = sol.rows.iter().map(|s| s.stats.nfe).sum();
        (nfe, sol.stats)
    };

    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    let mut info = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let nfe = per_row_alone();
        times[0].push(start.elapsed().as_secs_f64() * 1e3);
        info.clear();
        info.push(format!("{nfe} nfe"));
        for (i, control) in [BatchControl::PerRow, BatchControl::Joint]
            .into_iter()
            .enumerate()
        {
            let start = Instant::now();
            let (nfe, stats) = run_batched(control);
            times[i + 1].push(start.elapsed().as_secs_f64() * 1e3);
            info.push(format!(
                "{nfe} nfe, {} calls, mean batch {:.1}",
                stats.calls,
                stats.row_evals as f64 / stats.calls.max(1) as f64
            ));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let m: Vec<f64> = times.iter_mut().map(median).collect();
    println!(
        "forward solve of {rows} digits rows (Tsit5, rtol = atol = 1e-5), median of {ROUNDS} interleaved rounds"
    );
    println!("| solve | time | vs per-row alone | work |");
    println!("|---|---|---|---|");
    let names = [
        "each row alone (JitField)",
        "batched, per_row control",
        "batched, joint control",
    ];
    for (i, name) in names.iter().enumerate() {
        println!(
            "| {name} | {:.3} ms | {:.2}x | {} |",
            m[i],
            m[0] / m[i],
            info[i]
        );
    }
}
