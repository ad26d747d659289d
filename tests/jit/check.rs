//! The one comparison every JIT test makes: compile, call (per sample and batched), and compare
//! with `ir::eval` on the same buffers.

use glassbox::ir::{Function, eval};
use glassbox::jit::{Kernel, Options, compile_with};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn random(rng: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

pub fn refs(args: &[Vec<f64>]) -> Vec<&[f64]> {
    args.iter().map(Vec::as_slice).collect()
}

/// Every code shape: the default (small tensors unrolled, large products calls of the dense
/// runtime), everything inline as loops over memory (`unroll: 0`, no calls), and every product
/// a dense call (`call_min: 1`), so each path of `codegen.rs` meets every function.
pub fn options() -> [Options; 3] {
    [
        Options::default(),
        Options {
            unroll: 0,
            call_min: usize::MAX,
            ..Options::default()
        },
        Options {
            call_min: 1,
            ..Options::default()
        },
    ]
}

/// Same value bit for bit (NaN equals NaN): the kernels perform the interpreter's operations in
/// the interpreter's order and call its own scalar functions, so nothing less is expected. The
/// issue's bound (relative 1e-12) is implied.
pub fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

pub fn assert_same(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (x, y)) in got.iter().zip(want).enumerate() {
        assert!(same(*x, *y), "{what}: element {i}: jit {x:e} vs eval {y:e}");
    }
}

pub fn call(k: &Kernel, args: &[&[f64]]) -> Vec<f64> {
    let mut out = vec![f64::NAN; k.output_len()];
    k.call(args, &mut out).expect("buffers match the kernel");
    out
}

/// `args` for one sample; a batch of `batch` samples is built by perturbing the batched ones.
/// Checks single calls, batched calls, and both code shapes against `ir::eval`.
pub fn agree(what: &str, f: &Function, args: &[&[f64]], batch: usize) {
    let want = eval(f, args, 1).expect("interpreter accepts the buffers");
    let mut batched: Vec<Vec<f64>> = Vec::new();
    for (spec, a) in f.args.iter().zip(args) {
        if spec.batched {
            batched.push(
                (0..batch)
                    .flat_map(|b| a.iter().map(move |x| x * (1.0 + 0.1 * b as f64)))
                    .collect(),
            );
        } else {
            batched.push(a.to_vec());
        }
    }
    let bargs = refs(&batched);
    let want_batch = eval(f, &bargs, batch).expect("interpreter accepts the batch");
    for options in options() {
        let k = compile_with(f, what, options)
            .unwrap_or_else(|d| panic!("{what}: compile failed: {}", d.message));
        assert_same(&format!("{what} ({options:?})"), &call(&k, args), &want);
        check_bound(&format!("{what} bound ({options:?})"), f, &k, args, &want);
        let mut out = vec![f64::NAN; batch * f.output_len()];
        k.call_batch(&bargs, batch, &mut out)
            .expect("batch buffers match");
        assert_same(&format!("{what} batch ({options:?})"), &out, &want_batch);
    }
}

/// The bound call ([`Kernel::bind`]) equals the checked call: on the same arguments, again on
/// a second run (scratch reused), and after its batched arguments are rewritten in place (the
/// solver's use: `u` changes, `p` stays) — each against the interpreter.
fn check_bound(what: &str, f: &Function, k: &Kernel, args: &[&[f64]], want: &[f64]) {
    let mut b = k.bind_with(args).expect("bound buffers match");
    assert_eq!(b.out().len(), k.output_len(), "{what}: output length");
    b.run();
    assert_same(what, b.out(), want);
    b.run();
    assert_same(&format!("{what}, second run"), b.out(), want);

    let moved: Vec<Vec<f64>> = f
        .args
        .iter()
        .zip(args)
        .map(|(spec, a)| {
            let scale = if spec.batched { 0.75 } else { 1.0 };
            a.iter().map(|x| x * scale).collect()
        })
        .collect();
    for (i, (spec, a)) in f.args.iter().zip(&moved).enumerate() {
        if spec.batched {
            b.arg_mut(i).expect("argument exists").copy_from_slice(a);
        }
    }
    b.run();
    let want_moved = eval(f, &refs(&moved), 1).expect("interpreter accepts the buffers");
    assert_same(
        &format!("{what}, arguments rewritten"),
        b.out(),
        &want_moved,
    );
    let mut checked = vec![f64::NAN; k.output_len()];
    k.call(&refs(&moved), &mut checked).expect("buffers match");
    assert_same(&format!("{what}, vs checked call"), b.out(), &checked);

    // `run_with`: one batched argument read in place from the caller's buffer (the original
    // value), the output into the caller's; the bound output and buffers stay as they were.
    if let Some(i) = f.args.iter().position(|s| s.batched) {
        let mut with = moved.clone();
        with[i] = args[i].to_vec();
        let want_with = eval(f, &refs(&with), 1).expect("interpreter accepts the buffers");
        let mut out = vec![f64::NAN; k.output_len()];
        b.run_with(i, args[i], &mut out).expect("lengths match");
        assert_same(&format!("{what}, run_with"), &out, &want_with);
        assert_same(&format!("{what}, out kept"), b.out(), &want_moved);
        b.run();
        assert_same(&format!("{what}, own buffer again"), b.out(), &want_moved);
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
