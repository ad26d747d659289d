//! Hash-consing, constant folding, the exact identities, prune and simplify.

use glassbox::ir::{ArgSpec, Binary, Function, Graph, Op, Shape, Unary, prune, simplify};

use crate::check::eval1;

fn scalar_fn() -> (Function, glassbox::ir::NodeId, glassbox::ir::NodeId) {
    let mut f = Function::new(vec![ArgSpec::new("x", 2, true)]);
    let x = f.input("x", 0, Shape::Scalar).unwrap();
    let y = f.input("x", 1, Shape::Scalar).unwrap();
    (f, x, y)
}

#[test]
fn equal_expressions_are_one_node() {
    let (mut f, x, y) = scalar_fn();
    let g = &mut f.graph;
    let a = g.mul(x, y);
    let ta = g.unary(Unary::Tanh, a);
    let before = g.len();
    let b = g.mul(y, x); // commutative: canonical order
    let tb = g.unary(Unary::Tanh, b);
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    assert_eq!(g.len(), before, "no new nodes for a repeated expression");
    // Not commutative: distinct nodes.
    let s1 = g.sub(x, y);
    let s2 = g.sub(y, x);
    assert_ne!(s1, s2);
    // Inputs read the same slot once.
    let x2 = f.input("x", 0, Shape::Scalar).unwrap();
    assert_eq!(x, x2);
}

#[test]
fn constants_fold() {
    let mut g = Graph::new();
    let two = g.constant(2.0);
    let three = g.constant(3.0);
    let s = g.add(two, three);
    assert_eq!(g.const_value(s), Some(5.0));
    let p = g.pow(two, three);
    assert_eq!(g.const_value(p), Some(8.0));
    let e = g.unary(Unary::Exp, two);
    assert_eq!(g.const_value(e), Some(2.0f64.exp()));
    let v = g.filled(2.0, Shape::Vector(3));
    let w = g.mul(v, three);
    assert!(matches!(g.node(w).op, Op::Broadcast(c) if g.const_value(c) == Some(6.0)));
    assert_eq!(g.shape(w), Shape::Vector(3));
    let i = g.index(w, 1);
    assert_eq!(g.const_value(i), Some(6.0));
}

#[test]
fn exact_identities_apply() {
    let (mut f, x, y) = scalar_fn();
    let g = &mut f.graph;
    let one = g.constant(1.0);
    let m1 = g.constant(-1.0);
    let zero = g.constant(0.0);
    let nzero = g.constant(-0.0);
    let two = g.constant(2.0);
    assert_eq!(g.mul(x, one), x);
    assert_eq!(g.mul(one, x), x);
    assert_eq!(g.div(x, one), x);
    assert_eq!(g.sub(x, zero), x);
    assert_eq!(g.add(x, nzero), x);
    assert_eq!(g.pow(x, one), x);
    let nx = g.neg(x);
    assert_eq!(g.mul(x, m1), nx);
    assert_eq!(g.neg(nx), x);
    let sq = g.pow(x, two);
    assert!(matches!(g.node(sq).op, Op::Unary(Unary::Square, a) if a == x));
    let ny = g.neg(y);
    let d = g.sub(x, y);
    assert_eq!(g.add(x, ny), d);
    let s = g.add(x, y);
    assert_eq!(g.sub(x, ny), s);
    let p0 = g.pow(x, zero);
    assert_eq!(g.const_value(p0), Some(1.0));
}

#[test]
fn inexact_identities_do_not_apply() {
    let (mut f, x, y) = scalar_fn();
    let g = &mut f.graph;
    let zero = g.constant(0.0);
    let a = g.add(x, zero); // wrong for x = -0
    let m = g.mul(x, zero); // wrong for x = inf, NaN, negative
    let s = g.sub(x, x); // wrong for inf
    let d = g.div(y, y);
    for n in [a, m, s, d] {
        assert!(matches!(g.node(n).op, Op::Binary(..)), "{:?}", g.node(n));
    }
    f.push_output("a", a);
    f.push_output("m", m);
    let out = eval1(&f, &[&[-0.0, f64::INFINITY]]);
    assert!(
        out[0].is_sign_positive(),
        "-0 + 0 = +0: the rewrite would have been wrong"
    );
    assert_eq!(out[1].to_bits(), (-0.0f64).to_bits());
}

#[test]
fn data_movement_rewrites() {
    let mut f = Function::new(vec![
        ArgSpec::new("x", 6, true),
        ArgSpec::new("p", 4, false),
    ]);
    let x = f.input("x", 0, Shape::Vector(6)).unwrap();
    let w = f.input("p", 0, Shape::Matrix(2, 2)).unwrap();
    let g = &mut f.graph;
    let a = g.slice(x, 1, 4);
    let b = g.slice(a, 1, 2);
    assert!(matches!(g.node(b).op, Op::Input { arg: 0, offset: 2 }));
    let i = g.index(x, 3);
    assert!(matches!(g.node(i).op, Op::Input { arg: 0, offset: 3 }));
    let t = g.unary(Unary::Tanh, x);
    let e = g.unary(Unary::Exp, x);
    let c = g.concat(&[t, e]);
    assert_eq!(g.slice(c, 6, 6), e);
    let i7 = g.index(c, 7);
    let e1 = g.index(e, 1);
    assert_eq!(i7, e1);
    let wt = g.transpose(w);
    assert_eq!(g.transpose(wt), w);
    let cc = g.concat(&[c, t]);
    assert!(matches!(&g.node(cc).op, Op::Concat(parts) if parts.len() == 3));
    assert_eq!(g.shape(cc), Shape::Vector(18));
}

#[test]
fn prune_removes_dead_nodes_and_keeps_values() {
    let (mut f, x, y) = scalar_fn();
    let g = &mut f.graph;
    let dead = g.unary(Unary::Sin, y);
    let _dead2 = g.mul(dead, x);
    let live = g.unary(Unary::Exp, x);
    let out = g.binary(Binary::Max, live, y);
    f.push_output("out", out);
    let before = f.graph.len();
    let p = prune(&f);
    assert_eq!(p.graph.len(), 4, "x, y, exp(x), max(..)");
    assert!(p.graph.len() < before);
    assert!(
        p.graph
            .nodes()
            .all(|(_, n)| !matches!(n.op, Op::Unary(Unary::Sin, _)))
    );
    let args: [&[f64]; 1] = [&[0.3, 1.2]];
    assert_eq!(eval1(&p, &args), eval1(&f, &args));
    let s = simplify(&f);
    assert_eq!(eval1(&s, &args), eval1(&f, &args));
    assert_eq!(s.graph.len(), 4);
}

#[test]
fn differentiation_reuses_forward_activations() {
    // tanh' = 1 − h²: the VJP graph contains the forward tanh node and no second tanh.
    let m = crate::models::spiral();
    let g = glassbox::ir::vjp(&m.f, &["p"], "v").unwrap();
    let tanhs = g
        .graph
        .nodes()
        .filter(|(_, n)| matches!(n.op, Op::Unary(Unary::Tanh, _)))
        .count();
    assert_eq!(tanhs, 1);
    // The weight matrices stay matrices: no scalarisation of W1 into 100 index nodes.
    let indexes = g
        .graph
        .nodes()
        .filter(|(_, n)| matches!(n.op, Op::Index { .. }))
        .count();
    assert_eq!(indexes, 0);
}

#[test]
fn jacobian_of_an_elementwise_field_is_structurally_diagonal() {
    let m = crate::models::assorted();
    let j = glassbox::ir::jacobian(&m.f, "u").unwrap();
    let out = j.outputs[0].node;
    let Op::Reshape(flat) = j.graph.node(out).op else {
        panic!("jacobian is a reshaped concat: {:?}", j.graph.node(out));
    };
    let Op::Concat(entries) = &j.graph.node(flat).op else {
        panic!("jacobian entries are a concat");
    };
    assert_eq!(entries.len(), 9);
    for (k, &e) in entries.iter().enumerate() {
        let is_zero = j.graph.const_value(e) == Some(0.0);
        assert_eq!(is_zero, k % 4 != 0, "entry {k}");
    }
}

#[test]
fn concat_of_contiguous_reads_is_one_read() {
    let mut f = Function::new(vec![ArgSpec::new("u", 3, true)]);
    let parts: Vec<_> = (0..3)
        .map(|i| f.input("u", i, Shape::Scalar).unwrap())
        .collect();
    let whole = f.input("u", 0, Shape::Vector(3)).unwrap();
    assert_eq!(f.graph.concat(&parts), whole);
    let t = f.graph.unary(Unary::Tanh, whole);
    let i0 = f.graph.index(t, 0);
    let i1 = f.graph.index(t, 1);
    let c = f.graph.concat(&[i0, i1]);
    assert!(matches!(f.graph.node(c).op, Op::Slice { x, start: 0 } if x == t));
    let i2 = f.graph.index(t, 2);
    assert_eq!(f.graph.concat(&[i0, i1, i2]), t);
}
