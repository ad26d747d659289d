//! Solver benchmarks: the side-by-side problems of `benches/peers` through the library API, so
//! that a regression in the solvers' hot path (stepper, controller, output, Brownian tree) shows
//! without the peers' Python stack.
//!
//! Rows, each on its model file in `benches/peers/models/` with the settings `run.py` passes
//! the release CLI:
//! - `lorenz`: Tsit5, rtol 1e-6, atol 1e-9 over [0, 100] (≈5 000 steps, output every step);
//! - `robertson`: Rodas4 and Rodas5P, rtol 1e-6, atol 1e-10 over [0, 1e5];
//! - `spiral_forward`: the spiral MLP, Tsit5, rtol 1e-7, atol 1e-9 over [0, 25], 1 000 save
//!   points;
//! - `neural_sde`: Euler–Maruyama, dt 1e-3 over [0, 1], 20 paths, seed 0, saved at 0 and 1.
//!
//! Run: `cargo bench --bench solvers`. Compilation (JIT) happens once, outside the timings, as
//! in the CLI's `--repeat` timing. Each row also prints the step count it measures, so a
//! change in the steps taken (not in their cost) is visible too.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use glassbox::sema::Model;
use glassbox::solve::sde::{JitSde, SdeOptions, sde_method, solve_sde};
use glassbox::solve::{JitField, Method, SolveOptions, initial_state, param_values, solve_with};
use glassbox::source::{DiskLoader, SourceFile};

fn model(name: &str) -> Model {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers/models")
        .join(format!("{name}.gbx"));
    let text = std::fs::read_to_string(&path).expect("model file readable");
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    assert!(checked.diags.is_empty(), "{}", path.display());
    checked.model.expect("checked model")
}

struct Ode {
    name: &'static str,
    method: &'static str,
    t1: f64,
    rtol: f64,
    atol: f64,
    save_points: usize,
}

const ODES: [Ode; 4] = [
    Ode {
        name: "lorenz",
        method: "tsit5",
        t1: 100.0,
        rtol: 1e-6,
        atol: 1e-9,
        save_points: 0,
    },
    Ode {
        name: "robertson",
        method: "rodas4",
        t1: 1e5,
        rtol: 1e-6,
        atol: 1e-10,
        save_points: 0,
    },
    Ode {
        name: "robertson",
        method: "rodas5p",
        t1: 1e5,
        rtol: 1e-6,
        atol: 1e-10,
        save_points: 0,
    },
    Ode {
        name: "spiral_fixed",
        method: "tsit5",
        t1: 25.0,
        rtol: 1e-7,
        atol: 1e-9,
        save_points: 1000,
    },
];

fn bench_odes(c: &mut Criterion) {
    for ode in &ODES {
        let m = model(ode.name);
        let method = Method::from_name(ode.method, ode.rtol).expect("known method");
        let mut field = JitField::new(&m, &[]).expect("field compiles");
        if method.parts().1.is_some() {
            field.prepare_jacobian().expect("jacobian compiles");
        }
        let u0 = initial_state(&m, &param_values(&m), &[], 0.0).expect("initial state");
        let opts = SolveOptions {
            rtol: ode.rtol,
            atol: ode.atol,
            save_at: if ode.save_points > 0 {
                glassbox::app::solve::grid(0.0, ode.t1, ode.save_points)
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let sol = solve_with(method, &mut field, 0.0, ode.t1, &u0, &opts).expect("solves");
        eprintln!(
            "{} {}: {} steps, {} evaluations",
            ode.name, ode.method, sol.stats.accepted, sol.stats.nfe
        );
        c.bench_function(&format!("{}_{}", ode.name, ode.method), |b| {
            b.iter(|| {
                solve_with(method, &mut field, 0.0, ode.t1, black_box(&u0), &opts).expect("solves")
            })
        });
    }
}

fn bench_sde(c: &mut Criterion) {
    let m = model("neural_sde");
    let method = sde_method("euler_maruyama").expect("known method");
    let mut field = JitSde::new(&m, &[]).expect("SDE compiles");
    let u0 = initial_state(&m, &param_values(&m), &[], 0.0).expect("initial state");
    let opts = SdeOptions {
        dt: Some(1e-3),
        save_at: vec![0.0, 1.0],
        ..Default::default()
    };
    let sol = solve_sde(method, &mut field, 0.0, 1.0, &u0, &opts, 0, 20).expect("solves");
    eprintln!(
        "neural_sde euler_maruyama: {} steps over 20 paths",
        sol.stats.accepted
    );
    c.bench_function("neural_sde_em_20_paths", |b| {
        b.iter(|| {
            solve_sde(method, &mut field, 0.0, 1.0, black_box(&u0), &opts, 0, 20).expect("solves")
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_odes, bench_sde
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
