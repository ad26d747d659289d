//! The dense runtime products (`glassbox_matvec`, `glassbox_matvec_t`, `glassbox_outer`): every
//! vector version the CPU has gives the interpreter's bits on every shape around the vector
//! widths and block sizes, and kernels that call them (alone, transposed, inside VJPs and
//! Jacobians) equal `ir::eval` bit for bit.

use glassbox::ir::{ArgSpec, Function, Shape, Unary, eval, jacobian, vjp};
use glassbox::jit::{Dense, Options, compile_with, dense_versions};
use rand::Rng;

use crate::check::{agree, assert_same, options, random, refs, rng};

/// 1, the vector widths (2, 4, 8 doubles) ± 1, the blocks (16) ± 1, and larger odd sizes.
const SIZES: [usize; 14] = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 50];

/// Random values with signed zeros, infinities and NaN sprinkled in: the sums must keep the
/// interpreter's order and its −0 / NaN outcomes too.
pub fn values(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<f64> {
    let mut v = random(rng, n, -2.0, 2.0);
    for x in v.iter_mut() {
        match rng.random_range(0..40) {
            0 => *x = 0.0,
            1 => *x = -0.0,
            2 => *x = f64::INFINITY,
            3 => *x = 1e300,
            4 if n > 8 => *x = f64::NAN,
            _ => {}
        }
    }
    v
}

/// `w·x`, `transpose(w')·x` (for `w'` of `n×m`) or `a ⊗ b` as an IR function of `a` (the
/// matrix or left vector, unbatched) and `b` (batched), the result `m×n` or `m`.
pub fn product(op: Dense, m: usize, n: usize) -> Function {
    let (la, lb) = match op {
        Dense::MatVec => (m * n, n),
        Dense::MatVecT => (m * n, n),
        Dense::Outer => (m, n),
    };
    let mut f = Function::new(vec![
        ArgSpec::new("a", la, false),
        ArgSpec::new("b", lb, true),
    ]);
    let b = f.input("b", 0, Shape::Vector(lb)).unwrap();
    let r = match op {
        Dense::MatVec => {
            let w = f.input("a", 0, Shape::Matrix(m, n)).unwrap();
            f.graph.matvec(w, b)
        }
        Dense::MatVecT => {
            let w = f.input("a", 0, Shape::Matrix(n, m)).unwrap();
            let t = f.graph.transpose(w);
            f.graph.matvec(t, b)
        }
        Dense::Outer => {
            let a = f.input("a", 0, Shape::Vector(m)).unwrap();
            f.graph.outer(a, b)
        }
    };
    f.push_output("r", r);
    f
}

#[test]
fn every_dense_version_gives_the_interpreters_bits() {
    let mut rng = rng(21);
    for op in [Dense::MatVec, Dense::MatVecT, Dense::Outer] {
        let versions = dense_versions(op);
        assert_eq!(versions[0].0, "baseline");
        for &m in &SIZES {
            for &n in &SIZES {
                let f = product(op, m, n);
                let (a, b) = (
                    values(&mut rng, f.args[0].len),
                    values(&mut rng, f.args[1].len),
                );
                let want = eval(&f, &[&a, &b], 1).expect("interpreter");
                for (name, run) in &versions {
                    let mut out = vec![f64::NAN; want.len()];
                    // The transposed product takes the source matrix (n×m) and its `n` rows.
                    run(&a, &b, &mut out);
                    crate::check::assert_same(&format!("{op:?} {m}×{n} {name}"), &out, &want);
                }
            }
        }
    }
}

#[test]
fn empty_sums_are_negative_zero() {
    // A product with no terms is the interpreter's empty sum, −0.
    for (op, a, b, len) in [(Dense::MatVec, 0, 0, 3), (Dense::MatVecT, 0, 0, 3)] {
        for (name, run) in dense_versions(op) {
            let mut out = vec![1.0; len];
            run(&vec![0.0; a], &vec![0.0; b], &mut out);
            assert!(
                out.iter().all(|x| x.to_bits() == (-0.0f64).to_bits()),
                "{op:?} {name}: {out:?}"
            );
        }
    }
}

#[test]
fn kernels_calling_dense_products_match_the_interpreter() {
    // `agree` compiles each with no calls, with calls from the default size on, and with every
    // product a call.
    let mut rng = rng(22);
    for op in [Dense::MatVec, Dense::MatVecT, Dense::Outer] {
        for (m, n) in [
            (1, 1),
            (2, 50),
            (50, 2),
            (3, 17),
            (17, 3),
            (9, 9),
            (33, 5),
            (8, 16),
        ] {
            let f = product(op, m, n);
            let (a, b) = (
                values(&mut rng, f.args[0].len),
                values(&mut rng, f.args[1].len),
            );
            agree(&format!("{op:?} {m}×{n}"), &f, &[&a, &b], 3);
        }
    }
}

/// `W2·tanh(W1·u³ + b1)` with `W1` of `h×n`, `W2` of `n×h`: the spiral's shape at any size.
pub fn mlp(n: usize, h: usize) -> Function {
    let len = 2 * h * n + h;
    let mut f = Function::new(vec![
        ArgSpec::new("u", n, true),
        ArgSpec::new("p", len, false),
    ]);
    let u = f.input("u", 0, Shape::Vector(n)).unwrap();
    let w1 = f.input("p", 0, Shape::Matrix(h, n)).unwrap();
    let b1 = f.input("p", h * n, Shape::Vector(h)).unwrap();
    let w2 = f.input("p", h * n + h, Shape::Matrix(n, h)).unwrap();
    let three = f.graph.constant(3.0);
    let u3 = f.graph.pow(u, three);
    let z = f.graph.matvec(w1, u3);
    let z = f.graph.add(z, b1);
    let a = f.graph.unary(Unary::Tanh, z);
    let y = f.graph.matvec(w2, a);
    f.push_output("y", y);
    f
}

#[test]
fn mlp_vjps_and_jacobians_with_dense_calls_match_the_interpreter() {
    // The VJP holds `W2ᵀ·v`, `W1ᵀ·g` (transposed, read in place) and the weight gradients
    // `v ⊗ a`, `g ⊗ u³` (outer products); the Jacobian more of each.
    let mut rng = rng(23);
    for (n, h) in [(2, 50), (3, 7), (1, 17), (5, 9), (4, 33)] {
        let f = mlp(n, h);
        let p = random(&mut rng, f.args[1].len, -0.5, 0.5);
        let u = random(&mut rng, n, -1.5, 1.5);
        let v = random(&mut rng, n, -1.0, 1.0);
        agree(&format!("mlp {n}-{h}"), &f, &[&u, &p], 3);
        let g = vjp(&f, &["u", "p"], "v").expect("vjp");
        agree(
            &format!("mlp {n}-{h} vjp"),
            &g,
            &refs(&[u.clone(), p.clone(), v]),
            3,
        );
        let j = jacobian(&f, "u").expect("jacobian");
        agree(&format!("mlp {n}-{h} jacobian"), &j, &[&u, &p], 3);
    }
}

/// `Options::accumulate_from` (the trainer's adjoint adds each VJP's `∂p` into its running
/// gradient inside the kernel): the outputs before the index are written as by the plain
/// kernel, those from it on are the held value plus the plain kernel's, bit for bit (signed
/// zeros, infinities and NaN included), with outputs in registers, in loops (`unroll: 0`) and
/// written by dense calls (`call_min: 1`; the outer product's output is the call's result), and
/// with the index inside an output.
#[test]
fn accumulating_kernels_add_into_the_output_bit_for_bit() {
    let mut rng = rng(29);
    let mut cases: Vec<(String, Function, usize)> = [(2, 50), (3, 7)]
        .into_iter()
        .map(|(n, h)| {
            let g = vjp(&mlp(n, h), &["u", "p"], "v").expect("vjp");
            (format!("mlp {n}-{h} vjp"), g, n)
        })
        .collect();
    cases.push(("outer 3×5".into(), product(Dense::Outer, 3, 5), 4));
    for (name, g, split) in cases {
        let len = g.output_len();
        let args: Vec<Vec<f64>> = (g.args.iter())
            .map(|a| random(&mut rng, a.len, -1.0, 1.0))
            .collect();
        for base in options() {
            let plain = compile_with(&g, "plain", base).expect("compiles");
            let mut fresh = vec![0.0; len];
            plain.call(&refs(&args), &mut fresh).expect("runs");
            for from in [split, split + 3, 0] {
                let adding = Options {
                    accumulate_from: from,
                    ..base
                };
                let k = compile_with(&g, "adding", adding).expect("compiles");
                let held = values(&mut rng, len);
                let mut out = held.clone();
                k.call(&refs(&args), &mut out).expect("runs");
                let want: Vec<f64> = (0..len)
                    .map(|i| {
                        if i < from {
                            fresh[i]
                        } else {
                            held[i] + fresh[i]
                        }
                    })
                    .collect();
                assert_same(&format!("{name} {base:?} from {from}"), &out, &want);
            }
        }
    }
}
