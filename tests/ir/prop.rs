//! Random expression DAGs (bounded size, inputs kept in safe domains: `log` and `sqrt` of
//! `x² + 1`, division by `x² + 1`, `exp` of a `tanh`) checked pass against pass and against
//! finite differences.

use glassbox::ir::{
    ArgSpec, Binary, Function, NodeId, Shape, Unary, eval, jacobian, jvp, print_latex, print_text,
    simplify, vjp,
};
use proptest::prelude::*;

use crate::check::{assert_close, dot, eval1, fd_dir};
use crate::models::{rng, uniform};

const N: usize = 3;

/// Pools of nodes by shape: scalars, vectors of `N`, `N×N` matrices.
struct Pools {
    s: Vec<NodeId>,
    v: Vec<NodeId>,
    m: Vec<NodeId>,
}

fn pick(pool: &[NodeId], k: u16) -> NodeId {
    pool[k as usize % pool.len()]
}

/// `x² + 1`: positive, so `log`, `sqrt`, division and `pow` stay in their domains.
fn positive(f: &mut Function, x: NodeId) -> NodeId {
    let g = &mut f.graph;
    let one = g.constant(1.0);
    let sq = g.unary(Unary::Square, x);
    g.add(sq, one)
}

fn build(program: &[(u8, u16, u16)]) -> Function {
    let mut f = Function::new(vec![
        ArgSpec::new("t", 1, true),
        ArgSpec::new("u", N, true),
        ArgSpec::new("p", N * N + 2, false),
    ]);
    let u = f.input("u", 0, Shape::Vector(N)).unwrap();
    let t = f.input("t", 0, Shape::Scalar).unwrap();
    let w = f.input("p", 0, Shape::Matrix(N, N)).unwrap();
    let a = f.input("p", N * N, Shape::Scalar).unwrap();
    let b = f.input("p", N * N + 1, Shape::Scalar).unwrap();
    // Overlapping reads: u[0] inside u, p[7..10] across the matrix and a scalar.
    let u0 = f.input("u", 0, Shape::Scalar).unwrap();
    let pv = f.input("p", N * N - 2, Shape::Vector(N)).unwrap();
    let mut pools = Pools {
        s: vec![t, a, b, u0],
        v: vec![u, pv],
        m: vec![w],
    };
    let mut last = (u, t, w);
    for &(op, i, j) in program {
        let (x, y) = (pick(&pools.v, i), pick(&pools.v, j));
        let (s, r) = (pick(&pools.s, i), pick(&pools.s, j));
        let mm = pick(&pools.m, i);
        let g = &mut f.graph;
        // Each op adds one node to the pool of its shape.
        let (node, shape) = match op % 22 {
            0 => (g.unary(Unary::Tanh, x), 1),
            1 => (g.unary(Unary::Sin, x), 1),
            2 => (g.unary(Unary::Sigmoid, s), 0),
            3 => (g.unary(Unary::Softplus, x), 1),
            4 => {
                let h = g.unary(Unary::Tanh, s);
                (g.unary(Unary::Exp, h), 0)
            }
            5 => {
                let q = positive(&mut f, x);
                (f.graph.unary(Unary::Log, q), 1)
            }
            6 => {
                let q = positive(&mut f, s);
                (f.graph.unary(Unary::Sqrt, q), 0)
            }
            7 => {
                let q = positive(&mut f, y);
                (f.graph.div(x, q), 1)
            }
            8 => (g.add(x, y), 1),
            9 => (g.sub(s, r), 0),
            10 => (g.mul(x, y), 1),
            11 => (g.mul(s, x), 1),
            12 => (g.matvec(mm, x), 1),
            13 => (g.dot(x, y), 0),
            14 => (g.sum(x), 0),
            15 => (g.index(x, i as usize % N), 0),
            16 => {
                let c = g.concat(&[s, x]);
                (g.slice(c, j as usize % 2, N), 1)
            }
            17 => {
                let th = g.unary(Unary::Tanh, s);
                let q = positive(&mut f, x);
                (f.graph.pow(q, th), 1)
            }
            18 => (g.outer(x, y), 2),
            19 => {
                let tr = g.transpose(mm);
                let m2 = pick(&pools.m, j);
                (g.matmul(tr, m2), 2)
            }
            20 => (g.unary(Unary::Cos, s), 0),
            _ => (g.unary(Unary::Neg, x), 1),
        };
        match shape {
            0 => {
                pools.s.push(node);
                last.1 = node;
            }
            1 => {
                pools.v.push(node);
                last.0 = node;
            }
            _ => {
                pools.m.push(node);
                last.2 = node;
            }
        }
    }
    f.push_output("v", last.0);
    f.push_output("s", last.1);
    f.push_output("m", last.2);
    f
}

fn program() -> impl Strategy<Value = Vec<(u8, u16, u16)>> {
    prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 1..14)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_dags_differentiate_correctly(prog in program(), seed in 0u64..1000) {
        let f = build(&prog);
        let mut r = rng(seed);
        let t = uniform(&mut r, 1, 1.0);
        let u = uniform(&mut r, N, 1.0);
        let p = uniform(&mut r, N * N + 2, 1.0);
        let args: [&[f64]; 3] = [&t, &u, &p];
        let value = eval1(&f, &args);
        let scale = value.iter().fold(1.0f64, |s, x| s.max(x.abs()));

        // simplify is value-preserving, bit for bit (only exact identities).
        let s = simplify(&f);
        prop_assert_eq!(eval1(&s, &args), value.clone());
        prop_assert!(s.live_count() <= f.live_count());

        let v = uniform(&mut r, f.output_len(), 1.0);
        let back = eval1(&vjp(&f, &["t", "u", "p"], "v").unwrap(), &[&t, &u, &p, &v]);
        let mut off = 0;
        for (arg, len) in [(0, 1), (1, N), (2, N * N + 2)] {
            let w = uniform(&mut r, len, 1.0);
            let fd = dot(&v, &fd_dir(&f, &args, arg, &w));
            let bw = dot(&back[off..off + len], &w);
            // Nested random functions have larger third derivatives than the models: a looser
            // relative bound, floored by the size of the values.
            assert_close(&format!("vjp arg {arg} {prog:?}"), &[bw], &[fd], 1e-5, 1e-6 * scale);
            let fwd = eval1(&jvp(&f, f.args[arg].name.as_str(), "w").unwrap(), &[&t, &u, &p, &w]);
            assert_close(&format!("<v,Jw> arg {arg}"), &[dot(&v, &fwd)], &[bw], 1e-9, 1e-12 * scale);
            off += len;
        }

        // Printing never leaves a node out, and LaTeX stays balanced.
        let latex = print_latex(&f);
        prop_assert_eq!(latex.matches('{').count(), latex.matches('}').count());
        prop_assert!(!print_text(&f).contains('?'));

        // Jacobians (sparse seeds: vector u, scalar t, matrix and scalars in p) vs JVP columns.
        let rows = f.output_len();
        for wrt in ["u", "t", "p"] {
            let n = f.args[f.arg(wrt).unwrap()].len;
            let jac = eval(&jacobian(&f, wrt).unwrap(), &args, 1).unwrap();
            let jv = jvp(&f, wrt, "w").unwrap();
            for j in 0..n {
                let mut e = vec![0.0; n];
                e[j] = 1.0;
                let mut a: Vec<&[f64]> = args.to_vec();
                a.push(&e);
                let col = eval1(&jv, &a);
                let from_jac: Vec<f64> = (0..rows).map(|i| jac[i * n + j]).collect();
                assert_close(&format!("jacobian {wrt} column {j}"), &from_jac, &col, 1e-12, 1e-14 * scale);
            }
        }
    }
}

#[test]
fn binary_ops_unused_by_the_generator_differentiate() {
    // abs, relu, max, min, tan, and pow with a variable exponent, away from their kinks.
    let mut f = Function::new(vec![ArgSpec::new("x", 2, true)]);
    let a = f.input("x", 0, Shape::Scalar).unwrap();
    let b = f.input("x", 1, Shape::Scalar).unwrap();
    let g = &mut f.graph;
    let outs = [
        g.unary(Unary::Abs, a),
        g.unary(Unary::Relu, a),
        g.unary(Unary::Relu, b),
        g.binary(Binary::Max, a, b),
        g.binary(Binary::Min, a, b),
        g.unary(Unary::Tan, b),
        g.pow(b, a),
        g.unary(Unary::Exp, a),
        g.unary(Unary::Log, b),
    ];
    let all = g.concat(&outs);
    f.push_output("o", all);
    let x = [-0.7, 0.4];
    let jac = eval1(&jacobian(&f, "x").unwrap(), &[&x]);
    for j in 0..2 {
        let mut e = [0.0; 2];
        e[j] = 1.0;
        let fd = fd_dir(&f, &[&x], 0, &e);
        let col: Vec<f64> = (0..outs.len()).map(|i| jac[i * 2 + j]).collect();
        assert_close(&format!("column {j}"), &col, &fd, 1e-6, 1e-8);
    }
}
