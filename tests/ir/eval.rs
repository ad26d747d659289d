//! The interpreter: hand-computed values, batching, buffer errors.

use glassbox::ir::{ArgSpec, Function, IrError, Shape, Unary, eval};

use crate::check::eval1;
use crate::models::{self, rng, uniform};

#[test]
fn hand_computed_tensor_ops() {
    let mut f = Function::new(vec![
        ArgSpec::new("x", 2, true),
        ArgSpec::new("p", 6, false),
    ]);
    let x = f.input("x", 0, Shape::Vector(2)).unwrap();
    let w = f.input("p", 0, Shape::Matrix(2, 2)).unwrap();
    let b = f.input("p", 4, Shape::Vector(2)).unwrap();
    let g = &mut f.graph;
    let wx = g.matvec(w, x);
    let z = g.add(wx, b);
    let s = g.sum(z);
    let o = g.outer(x, b);
    let wt = g.transpose(w);
    let ww = g.matmul(w, wt);
    let d = g.dot(x, b);
    let sl = g.slice(z, 1, 1);
    let c = g.concat(&[s, d, sl]);
    f.push_output("z", z);
    f.push_output("c", c);
    f.push_output("o", o);
    f.push_output("ww", ww);
    // W = [[1, 2], [3, 4]], b = [5, 6], x = [1, -1].
    let out = eval1(&f, &[&[1.0, -1.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]);
    let expected = [
        4.0, 5.0, // W·x + b = [-1 + 5, -1 + 6]
        9.0, -1.0, 5.0, // sum, x·b, z[1..2]
        5.0, 6.0, -5.0, -6.0, // x ⊗ b
        5.0, 11.0, 11.0, 25.0, // W·Wᵀ
    ];
    assert_eq!(out, expected);
}

#[test]
fn hand_computed_elementwise() {
    let mut f = Function::new(vec![ArgSpec::new("x", 3, true)]);
    let x = f.input("x", 0, Shape::Vector(3)).unwrap();
    let g = &mut f.graph;
    let two = g.constant(2.0);
    let r = g.unary(Unary::Relu, x);
    let s = g.unary(Unary::Sign, x);
    let st = g.unary(Unary::Step, x);
    let sq = g.pow(x, two);
    let mx = g.binary(glassbox::ir::Binary::Max, x, two);
    for (name, n) in [("r", r), ("s", s), ("st", st), ("sq", sq), ("mx", mx)] {
        f.push_output(name, n);
    }
    let out = eval1(&f, &[&[-1.5, 0.0, 3.0]]);
    let expected = [
        0.0, 0.0, 3.0, // relu
        -1.0, 0.0, 1.0, // sign(0) = 0
        0.0, 0.0, 1.0, // step(0) = 0
        2.25, 0.0, 9.0, // x^2
        2.0, 2.0, 3.0, // max(x, 2)
    ];
    assert_eq!(out, expected);
}

#[test]
fn batched_eval_equals_per_sample() {
    for m in models::all() {
        let batch = 4;
        let mut r = rng(20);
        let t = uniform(&mut r, batch, 1.0);
        let u: Vec<f64> = (0..batch)
            .flat_map(|_| m.u.iter().map(|x| x * 0.9))
            .zip(uniform(&mut r, batch * m.u.len(), 0.1))
            .map(|(a, b)| a + b * a.abs())
            .collect();
        let all = eval(&m.f, &[&t, &u, &m.p], batch).unwrap();
        let n = m.u.len();
        let out = m.f.output_len();
        for b in 0..batch {
            let one = eval1(&m.f, &[&t[b..b + 1], &u[b * n..(b + 1) * n], &m.p]);
            assert_eq!(
                &all[b * out..(b + 1) * out],
                &one[..],
                "{} sample {b}",
                m.name
            );
        }
    }
}

#[test]
fn wrong_buffers_are_errors() {
    let m = models::lorenz();
    let err = eval(&m.f, &[&m.t, &m.u[..2], &m.p], 1).unwrap_err();
    assert!(matches!(err, IrError::BufferLength { ref name, expected: 3, got: 2 } if name == "u"));
    assert!(matches!(
        eval(&m.f, &[&m.t, &m.u], 1),
        Err(IrError::ArgCount {
            expected: 3,
            got: 2
        })
    ));
    // Unbatched parameters are shared: their length does not scale with the batch.
    assert!(
        eval(
            &m.f,
            &[&[0.0, 0.0], &[m.u.clone(), m.u.clone()].concat(), &m.p],
            2
        )
        .is_ok()
    );
}

#[test]
fn out_of_range_inputs_and_shape_errors_are_errors() {
    let mut f = Function::new(vec![ArgSpec::new("x", 2, true)]);
    let x = f.input("x", 1, Shape::Vector(2)).unwrap();
    f.push_output("x", x);
    assert!(matches!(
        eval(&f, &[&[1.0, 2.0]], 1),
        Err(IrError::InputOutOfRange { .. })
    ));

    let mut f = Function::new(vec![ArgSpec::new("x", 5, true)]);
    let a = f.input("x", 0, Shape::Vector(2)).unwrap();
    let b = f.input("x", 2, Shape::Vector(3)).unwrap();
    let bad = f.graph.add(a, b);
    f.push_output("bad", bad);
    assert!(matches!(
        f.validate(),
        Err(IrError::Shape { op: "add", .. })
    ));
    assert!(eval(&f, &[&[0.0; 5]], 1).is_err());
    assert!(f.input("nope", 0, Shape::Scalar).is_err());
}
