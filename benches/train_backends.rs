//! The two gradient paths side by side: one training evaluation (forward solves + gradient of
//! the objective) of `examples/spiral.gbx` — mlp(2, 50, 2) of y^3, Tsit5 at rtol 1e-7 /
//! atol 1e-9, `windows(20, length = 10)`, `l1` + decaying `R_E` — with the discrete adjoint
//! (`--backend adjoint`) and with dfdx's tape through the unrolled solve (`--backend tape`,
//! CPU), on the same batch and weights. The optimiser update (the same for both) is left out.
//!
//! Run: `cargo bench --bench train_backends`. Before timing, both gradients are checked to
//! agree, so the rows measure the same computation: to 1e-6 here, because at rtol 1e-7 with
//! `R_E` weighted 100 the two backward passes' rounding (amplified ~1/rtol by `R_E`'s
//! cancelling cotangents) leaves ~1e-8 between them (measured 1.2e-8).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use glassbox::data;
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::{Backend, DeviceKind, Overrides, Trainer};

/// Both trainers and the full data (the batch is drawn from it as the trainer would).
fn setup() -> (Trainer, Trainer, data::Dataset) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/spiral.gbx");
    let text = std::fs::read_to_string(&path).expect("spiral.gbx readable");
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    let model = checked.model.expect("spiral.gbx checks");
    let ds = data::load_model(&model, Some(&file), &DiskLoader).expect("spiral data loads");
    let full = ds.first().cloned().expect("one data source");
    let adjoint = Trainer::new(&model, ds.clone(), &Overrides::default()).expect("trainer");
    let mut tape = Trainer::new(&model, ds, &Overrides::default()).expect("trainer");
    tape.set_backend(Backend::Tape, DeviceKind::Cpu)
        .expect("tape backend");
    (adjoint, tape, full)
}

fn bench(c: &mut Criterion) {
    let (mut adjoint, mut tape, full) = setup();
    let mut sampler = data::batch::Sampler::new(0, adjoint.plan.batch);
    let draw = sampler.next(&full).expect("a batch");
    let (segs, target) = adjoint.segments(&draw).expect("segments");
    let w = adjoint.weights(0);
    let theta = adjoint.state().theta.clone();

    let a = adjoint
        .evaluate(&theta, &segs, target.clone(), &w, 0)
        .expect("adjoint");
    let t = tape
        .evaluate(&theta, &segs, target.clone(), &w, 0)
        .expect("tape");
    let scale = a.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let diff = a
        .grad
        .iter()
        .zip(&t.grad)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= 1e-6 * scale,
        "the backends disagree: {diff:e} of {scale:e}"
    );
    println!(
        "spiral batch: {} segments, forward nfe {}, gradients differ by {:.1e} (relative)",
        segs.len(),
        a.nfe,
        diff / scale
    );

    let mut g = c.benchmark_group("spiral_evaluation");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("adjoint", |b| {
        b.iter(|| black_box(adjoint.evaluate(&theta, &segs, target.clone(), &w, 0)))
    });
    g.bench_function("tape_cpu", |b| {
        b.iter(|| black_box(tape.evaluate(&theta, &segs, target.clone(), &w, 0)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
