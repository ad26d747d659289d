//! Batched kernels (`jit::compile_batch`) against the interpreter: per-sample outputs against
//! `ir::eval` on the batch, summed outputs against the per-sample results summed in sample
//! order. Without GEMMs the code does the interpreter's operations in its order, so equality
//! is bit for bit; with GEMMs (which reorder sums and may fuse multiply-adds) the bound is
//! relative 1e-12 of the element's own size, or of the output's scale for elements that are
//! small through cancellation: a length-k dot product in f64 errs by at most k·2⁻⁵³·Σ|terms|
//! (k ≤ 128 here: ≈1.4e-14 of the terms' size), and the layers that follow (tanh, sums of a
//! few such products) do not amplify it by 70. Measured worst: 1.4e-13 (digits VJP sums).

use std::path::PathBuf;

use glassbox::ir::lower::{Part, lower};
use glassbox::ir::{Function, eval, vjp};
use glassbox::jit::{BatchKernel, Options, compile_batch, compile_batch_with, unbatched_gradients};
use glassbox::sema::Model;

use crate::check::{assert_same, random, refs, rng};
use crate::examples::model;

/// Arguments for `batch` samples: initial parameters, small states, random cotangents.
fn batch_args(f: &Function, m: &Model, batch: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = rng(seed);
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    f.args
        .iter()
        .map(|a| {
            let n = if a.batched { a.len * batch } else { a.len };
            match a.name.as_str() {
                "p" => p.clone(),
                "t" => random(&mut rng, n, 0.1, 0.9),
                "u" => random(&mut rng, n, 0.05, 0.5),
                _ => random(&mut rng, n, -1.0, 1.0),
            }
        })
        .collect()
}

/// What the batched kernel must produce, from the interpreter: the per-sample outputs as one
/// `[batch, len]` block and the summed ones added up in sample order from zero.
fn expected(f: &Function, summed: &[&str], args: &[&[f64]], batch: usize) -> (Vec<f64>, Vec<f64>) {
    let all = eval(f, args, batch).expect("interpreter accepts the batch");
    let out_len = f.output_len();
    let sums_len: usize = f
        .outputs
        .iter()
        .filter(|o| summed.contains(&o.name.as_str()))
        .map(|o| f.graph.shape(o.node).len())
        .sum();
    let (mut out, mut sums) = (Vec::new(), vec![0.0; sums_len]);
    for b in 0..batch {
        let mut at = b * out_len;
        for o in &f.outputs {
            let len = f.graph.shape(o.node).len();
            let row = &all[at..at + len];
            if summed.contains(&o.name.as_str()) {
                let s = offset_of(f, summed, &o.name);
                for (s, x) in sums[s..s + len].iter_mut().zip(row) {
                    *s += x;
                }
            } else {
                out.extend_from_slice(row);
            }
            at += len;
        }
    }
    (out, sums)
}

/// Offset of a summed output among the summed outputs (in output order).
fn offset_of(f: &Function, summed: &[&str], name: &str) -> usize {
    f.outputs
        .iter()
        .take_while(|o| o.name != name)
        .filter(|o| summed.contains(&o.name.as_str()))
        .map(|o| f.graph.shape(o.node).len())
        .sum()
}

fn run(k: &BatchKernel, args: &[&[f64]], batch: usize) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![f64::NAN; batch * k.output_len()];
    let mut sums = vec![f64::NAN; k.sums_len()];
    k.call(args, batch, &mut out, &mut sums)
        .expect("buffers match the kernel");
    (out, sums)
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(0.0f64, |s, x| s.max(x.abs()));
    for (i, (x, y)) in got.iter().zip(want).enumerate() {
        let bound = 1e-12 * y.abs().max(1e-3 * scale);
        assert!(
            (x - y).abs() <= bound,
            "{what}: element {i}: jit {x:e} vs eval {y:e} (bound {bound:e})"
        );
    }
}

/// The field and its VJP (w.r.t. u and p, the parameter gradient summed) of every example, at
/// several batch sizes, with GEMMs forced everywhere possible, by default, and never.
#[test]
fn batched_kernels_agree_with_the_interpreter() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in [
        "spiral",
        "lorenz",
        "robertson",
        "reaction_diffusion",
        "digits",
    ] {
        let m = model(&dir.join(format!("{name}.gbx")));
        let field = lower(&m, Part::Field).expect("field lowers");
        let grad = vjp(&field, &["u", "p"], "v").expect("vjp");
        for (what, f) in [("field", &field), ("vjp", &grad)] {
            let summed = unbatched_gradients(f);
            if what == "vjp" {
                assert_eq!(
                    summed,
                    ["vjp_p"],
                    "{name}: the parameter gradient is summed"
                );
            }
            for batch in [1, 3, 7] {
                let args = batch_args(f, &m, batch, batch as u64);
                let args = refs(&args);
                let (want_out, want_sums) = expected(f, &summed, &args, batch);
                for (label, options) in [
                    (
                        "gemm always",
                        Options {
                            gemm_min: 1,
                            ..Options::default()
                        },
                    ),
                    ("default", Options::default()),
                    (
                        "loops",
                        Options {
                            unroll: 0,
                            gemm_min: 1,
                            call_min: usize::MAX,
                            ..Options::default()
                        },
                    ),
                    (
                        "no gemm",
                        // Every other product a call of the dense runtime.
                        Options {
                            gemm_min: usize::MAX,
                            call_min: 1,
                            ..Options::default()
                        },
                    ),
                ] {
                    let k = compile_batch_with(f, name, &summed, options)
                        .unwrap_or_else(|d| panic!("{name} {what}: {}", d.message));
                    let (out, sums) = run(&k, &args, batch);
                    let tag = format!("{name} {what} batch {batch} ({label})");
                    let dense = matches!(name, "spiral" | "digits");
                    assert_eq!(
                        k.uses_gemm(),
                        dense
                            && (label.starts_with("gemm")
                                || label == "loops"
                                || (label == "default" && name == "digits")),
                        "{tag}: GEMMs where the plan promises them"
                    );
                    if k.uses_gemm() {
                        assert_close(&tag, &out, &want_out);
                        assert_close(&format!("{tag} sums"), &sums, &want_sums);
                    } else {
                        assert_same(&tag, &out, &want_out);
                        assert_same(&format!("{tag} sums"), &sums, &want_sums);
                    }
                }
            }
        }
    }
}

/// The digits field and VJP take the GEMM path by default (its layers are 64×33 and 32×64).
#[test]
fn dense_layers_over_a_batch_are_gemms() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let m = model(&dir.join("digits.gbx"));
    let field = lower(&m, Part::Field).expect("field lowers");
    let grad = vjp(&field, &["u", "p"], "v").expect("vjp");
    for f in [&field, &grad] {
        let k = compile_batch(f, "digits", &unbatched_gradients(f)).expect("compiles");
        assert!(k.uses_gemm(), "{}", k.clif());
        assert!(
            k.clif().contains("call fn"),
            "the GEMM is a call:\n{}",
            k.clif()
        );
    }
    // The spiral's 50×2 layers stay loops by default.
    let m = model(&dir.join("spiral.gbx"));
    let field = lower(&m, Part::Field).expect("field lowers");
    let k = compile_batch(&field, "spiral", &[]).expect("compiles");
    assert!(!k.uses_gemm());
}

#[test]
fn batched_calls_check_their_buffers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let m = model(&dir.join("lorenz.gbx"));
    let field = lower(&m, Part::Field).expect("field lowers");
    let grad = vjp(&field, &["u", "p"], "v").expect("vjp");
    let k = compile_batch(&grad, "lorenz", &["vjp_p"]).expect("compiles");
    assert_eq!((k.output_len(), k.sums_len()), (3, 3));
    let args = batch_args(&grad, &m, 2, 5);
    let args = refs(&args);
    let mut out = vec![0.0; 6];
    let mut short = vec![0.0; 2];
    let e = k.call(&args, 2, &mut out, &mut short).unwrap_err();
    assert_eq!(e.code, "glassbox::kernel_buffers");
    let mut sums = vec![1.0; 3];
    let e = k.call(&args, 3, &mut out, &mut sums).unwrap_err();
    assert_eq!(e.code, "glassbox::kernel_buffers");
    // An empty batch sums to zero.
    let empty: Vec<Vec<f64>> = grad
        .args
        .iter()
        .map(|a| {
            if a.batched {
                Vec::new()
            } else {
                vec![0.5; a.len]
            }
        })
        .collect();
    k.call(&refs(&empty), 0, &mut [], &mut sums)
        .expect("empty batch");
    assert_eq!(sums, [0.0; 3]);
    let e = compile_batch(&grad, "lorenz", &["vjp_q"]).unwrap_err();
    assert!(e.message.contains("vjp_q"), "{}", e.message);
}

/// `call_add` adds the summed outputs into the caller's buffer (the batched adjoint's one
/// `dp`): on zeros it gives `call`'s bits; on held values `held + call` to rounding (a GEMM
/// adds its partial sums into `C` block by block, one rounding more per term than adding the
/// finished sum); the per-sample outputs are `call`'s bit for bit.
#[test]
fn call_add_adds_the_summed_outputs_into_the_buffer() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let m = model(&dir.join("digits.gbx"));
    let field = lower(&m, Part::Field).expect("field lowers");
    let grad = vjp(&field, &["u", "p"], "v").expect("vjp");
    let k = compile_batch(&grad, "digits", &["vjp_p"]).expect("compiles");
    assert!(k.uses_gemm());
    let rows = 9;
    let args = batch_args(&grad, &m, rows, 3);
    let args = refs(&args);
    let (mut out, mut sums) = (vec![0.0; rows * k.output_len()], vec![0.0; k.sums_len()]);
    k.call(&args, rows, &mut out, &mut sums).unwrap();
    let (mut out2, mut zeros) = (vec![0.0; out.len()], vec![0.0; sums.len()]);
    k.call_add(&args, rows, &mut out2, &mut zeros).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&out2), bits(&out));
    assert_eq!(bits(&zeros), bits(&sums));
    let held: Vec<f64> = (0..sums.len()).map(|i| (i % 7) as f64 - 3.0).collect();
    let mut acc = held.clone();
    k.call_add(&args, rows, &mut out2, &mut acc).unwrap();
    for (i, ((a, h), s)) in acc.iter().zip(&held).zip(&sums).enumerate() {
        assert!(
            (a - (h + s)).abs() <= 1e-14 * (h.abs() + s.abs()).max(1.0),
            "sum {i}: {a} vs {h} + {s}"
        );
    }
}
