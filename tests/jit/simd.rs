//! The two-wide vector code of per-sample kernels (`Options::simd`, `src/jit/codegen/simd.rs`):
//! for mat-vecs, transposed mat-vecs and outer products of many shapes (odd ones included),
//! elementwise chains and the spiral's VJP accumulating its `∂p`, the vector kernel, the scalar
//! kernel and `ir::eval` give the same bits on inputs with signed zeros, infinities and NaN.

use glassbox::ir::{ArgSpec, Binary, Function, Shape, Unary, eval, vjp};
use glassbox::jit::{Dense, Options, compile_with};

use crate::check::{assert_same, refs, rng};
use crate::dense::{mlp, product, values};

/// Shapes around the vector width: odd and even rows and columns, 1, and the spiral's 50.
const SHAPES: [(usize, usize); 9] = [
    (1, 1),
    (1, 2),
    (2, 1),
    (2, 2),
    (3, 5),
    (5, 3),
    (4, 7),
    (2, 50),
    (50, 2),
];

/// `a ⊙ b − 1.5`, divided by `b`, negated, its absolute value's square root, `a³`, `a²`, and
/// `3·a` (a scalar operand): every elementwise operation the vector code takes, with tensor
/// and scalar operands.
fn elementwise(n: usize) -> Function {
    let mut f = Function::new(vec![
        ArgSpec::new("a", n, true),
        ArgSpec::new("b", n, false),
    ]);
    let a = f.input("a", 0, Shape::Vector(n)).unwrap();
    let b = f.input("b", 0, Shape::Vector(n)).unwrap();
    let c = f.graph.constant(1.5);
    let three = f.graph.constant(3.0);
    let ab = f.graph.mul(a, b);
    let d = f.graph.sub(ab, c);
    let q = f.graph.div(d, b);
    let neg = f.graph.neg(q);
    let abs = f.graph.unary(Unary::Abs, neg);
    let root = f.graph.unary(Unary::Sqrt, abs);
    let cube = f.graph.pow(a, three);
    let square = f.graph.unary(Unary::Square, a);
    let scaled = f.graph.binary(Binary::Mul, three, a);
    let sum = f.graph.add(root, cube);
    f.push_output("q", q);
    f.push_output("sum", sum);
    f.push_output("square", square);
    f.push_output("scaled", scaled);
    f
}

/// Whether the vector code takes (part of) a product with output length `m·n` or `m`
/// written from `from` on: a pair of outputs of a mat-vec, a row of even length of an outer
/// product, or two neighbouring outputs added into the buffer.
fn vectorised(op: Dense, m: usize, n: usize, from: usize) -> bool {
    let len = if op == Dense::Outer { m * n } else { m };
    let product = match op {
        Dense::Outer => n.is_multiple_of(2),
        _ => m >= 2,
    };
    product || len.saturating_sub(from) >= 2
}

/// A function to check, with the `accumulate_from` indices to compile it with and whether
/// vector code is expected there.
type Case = (String, Function, Vec<(usize, bool)>);

fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    for (m, n) in SHAPES {
        for op in [Dense::MatVec, Dense::MatVecT, Dense::Outer] {
            let f = product(op, m, n);
            let from = [usize::MAX, 0, 1].map(|k| (k, vectorised(op, m, n, k)));
            all.push((format!("{op:?} {m}×{n}"), f, from.to_vec()));
        }
    }
    for n in [2, 3, 7, 50] {
        let from = vec![(usize::MAX, true), (1, true)];
        all.push((format!("elementwise {n}"), elementwise(n), from));
    }
    for (n, h) in [(2, 50), (3, 7), (1, 5)] {
        let f = mlp(n, h);
        let g = vjp(&f, &["u", "p"], "v").expect("vjp");
        // The trainer's kernel: the state's cotangent written, the `∂p` added.
        all.push((format!("mlp {n}-{h}"), f, vec![(usize::MAX, true)]));
        let from = [usize::MAX, n, n + 1].map(|k| (k, true));
        all.push((format!("mlp {n}-{h} vjp"), g, from.to_vec()));
    }
    all
}

#[test]
fn vector_kernels_equal_scalar_kernels_and_the_interpreter() {
    let mut rng = rng(41);
    for (name, f, froms) in cases() {
        for (from, expected) in froms {
            let options = |simd| Options {
                simd,
                accumulate_from: from,
                ..Options::default()
            };
            let vector = compile_with(&f, &name, options(true)).expect("compiles");
            let scalar = compile_with(&f, &name, options(false)).expect("compiles");
            assert!(
                !scalar.clif().contains("f64x2"),
                "{name}: the scalar kernel has vector code"
            );
            if expected && cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
                assert!(
                    vector.clif().contains("f64x2"),
                    "{name}: no vector code in\n{}",
                    vector.clif()
                );
            }
            for _ in 0..4 {
                let args: Vec<Vec<f64>> =
                    (f.args.iter()).map(|a| values(&mut rng, a.len)).collect();
                let len = f.output_len();
                let mut want = eval(&f, &refs(&args), 1).expect("interpreter accepts the buffers");
                let held = values(&mut rng, len);
                for (i, w) in want.iter_mut().enumerate().skip(from) {
                    *w += held[i];
                }
                for (what, k) in [("vector", &vector), ("scalar", &scalar)] {
                    let mut out = held.clone();
                    k.call(&refs(&args), &mut out).expect("runs");
                    assert_same(&format!("{name} {what} from {from}"), &out, &want);
                }
            }
        }
    }
}
